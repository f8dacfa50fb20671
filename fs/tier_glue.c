/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Tiering in the union mount. The policy is all in tier/; here the mount
 * builds its tier configuration, registers its lower layers, and asks on
 * each lower open where the data lives.
 *
 * The tier context runs threads, and the daemon forks after mounting, so
 * the context is opened twice: once before the mount with tracing and
 * promotion off, only to refuse a broken pool with a clear error, and for
 * real in the daemon at FUSE INIT, before the kernel sends any request.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "fs/nlayerfs.h"
#include "fs/tier_glue.h"

static int load_config(struct tier_config *c, const struct nl_options *o,
		       char *err, size_t errlen)
{
	const char *file = nl_options_extra(o, "config");
	int r;

	tier_config_defaults(c);
	r = tier_config_load(c, file ? file : tier_config_default_path(), err, errlen);
	/* Only a missing default file is normal; a named one must exist. */
	if (r == -ENOENT && !file)
		r = 0;
	else if (r == -ENOENT)
		snprintf(err, errlen, "config=%s: %s", file, strerror(ENOENT));
	/* In the order given, so that a later option wins; the tier library
	 * says which options are its own. */
	for (size_t i = 0; !r && i < o->n_extra; i++) {
		const char *eq = strchr(o->extra[i], '=');
		char key[64], real[PATH_MAX];
		const char *v = eq ? eq + 1 : "";

		snprintf(key, sizeof(key), "%.*s", (int)(eq ? eq - o->extra[i] : 63),
			 o->extra[i]);
		if (!tier_config_has_key(key))
			continue;
		/* Directories relative to where the mount was started, as for
		 * lowerdir=; the daemon itself runs in "/". */
		if ((!strcmp(key, "nvm") || !strcmp(key, "hdd")) && v[0] != '/' &&
		    realpath(v, real))
			v = real;
		r = tier_config_set(c, key, v, err, errlen);
	}
	return r;
}

/* Open and close the pool once, so that a broken one fails the mount. */
static int check_pool(const struct tier_config *c, char *err, size_t errlen)
{
	struct tier_config probe = *c;
	struct tier_ctx *ctx;
	char msg[1024] = "";
	int r;

	probe.trace = false;
	probe.promote = false;
	r = tier_open(&probe, &ctx, msg, sizeof(msg));
	if (r) {
		snprintf(err, errlen, "tiering: %s", *msg ? msg : strerror(-r));
		return r;
	}
	tier_close(ctx);
	return 0;
}

static int sock_path_of(const char *mountpoint, struct nl_tier *t, char *err,
			size_t errlen)
{
	char real[PATH_MAX];

	if (!realpath(mountpoint, real)) {
		snprintf(err, errlen, "cannot resolve %s: %s", mountpoint, strerror(errno));
		return -errno;
	}
	return nl_tier_sock_path(real, t->sock_path, sizeof(t->sock_path));
}

int nl_tier_setup(struct nl_mount *m, char *err, size_t errlen)
{
	struct nl_tier *t = calloc(1, sizeof(*t));
	int r;

	if (!t)
		return -ENOMEM;
	t->listen_fd = -1;
	pthread_mutex_init(&t->cmd_lock, NULL);
	r = load_config(&t->cfg, m->opt, err, errlen);
	if (!r && t->cfg.nvm_dir)
		r = check_pool(&t->cfg, err, errlen);
	/* the daemon, forked from here, opens what was just found sound */
	t->cfg.pool_checked = !r;
	if (!r && t->cfg.nvm_dir)
		r = sock_path_of(m->opt->mountpoint, t, err, errlen);
	if (r || !t->cfg.nvm_dir) {
		tier_config_free(&t->cfg);
		pthread_mutex_destroy(&t->cmd_lock);
		free(t);
		return r;
	}
	t->m = m;
	m->tier = t;
	return 0;
}

static int add_layers(struct nl_mount *m, struct nl_tier *t)
{
	t->layer_of = calloc(m->n_layers, sizeof(*t->layer_of));
	if (!t->layer_of)
		return -ENOMEM;
	t->n_layers = m->n_layers;
	for (int i = 0; i < m->n_layers; i++) {
		t->layer_of[i] = -1;
		if (m->layers[i].upper)
			continue;
		t->layer_of[i] = tier_layer_add(t->ctx, m->layers[i].path);
		if (t->layer_of[i] < 0)
			return t->layer_of[i];
	}
	return 0;
}

/* ---- write-back of cold NVM-home files ---- */

/* The window's hot files first (written-back ones needed again come back
 * from HDD), then the rest of NVM goes to HDD. Never on a request path. */
static int writeback_pass(struct nl_tier *t, struct tier_wb_result *res)
{
	int r;

	memset(res, 0, sizeof(*res));
	tier_trace_flush(t->ctx);
	if (t->cfg.promote) {
		r = tier_promote_hot(t->ctx);
		if (r < 0)
			return r;
		/* short waits, so that an unmount is not held up */
		while ((r = tier_wait_idle(t->ctx, 500)) == -ETIMEDOUT)
			if (__atomic_load_n(&t->wb.stop, __ATOMIC_RELAXED))
				return -ECANCELED;
	}
	return tier_writeback_run(t->ctx, true, res);
}

static void wb_log(const struct tier_wb_result *res, int r)
{
	if (r && r != -ECANCELED)
		syslog(LOG_WARNING, "nlayerfs: write-back: %s", strerror(-r));
	else if (res->files || res->released)
		syslog(LOG_INFO, "nlayerfs: write-back: %llu files (%llu bytes) to HDD, "
		       "%llu NVM bytes released, %llu held open",
		       (unsigned long long)res->files, (unsigned long long)res->bytes,
		       (unsigned long long)res->released_bytes, (unsigned long long)res->busy);
}

/* Wait up to @ms for a request or the stop; the caller holds wb.lock. */
static void wb_sleep(struct nl_wb *wb, long ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&wb->wake, &wb->lock, &ts);
}

/*
 * Files earlier starts needed that are not on NVM (evicted, over the budget
 * then, changed since) are queued only once this start is over: the window
 * closed, or a window's time passed without tracing. Queued at the mount,
 * their copies would read the HDD while the container starts from it.
 */
static void hot_when_quiet(struct nl_tier *t, bool closed, uint64_t since)
{
	struct timespec now;

	if (!t->wb.hot_due || tier_trace_active(t->ctx))
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!closed && (uint64_t)now.tv_sec < since + t->cfg.trace_window)
		return;
	t->wb.hot_due = false;
	/* a write-back pass after a window queues them itself */
	if (t->cfg.promote && !(closed && t->wb.on && t->cfg.writeback))
		tier_promote_hot(t->ctx);
}

/* Once per daemon, after the start: copies damaged on NVM since their
 * last check are found and dropped before later starts read them. */
static void scrub_when_quiet(struct nl_tier *t)
{
	struct tier_scrub_result res;
	int r;

	if (!t->wb.scrub_due || t->wb.hot_due)
		return;
	t->wb.scrub_due = false;
	pthread_mutex_unlock(&t->wb.lock);
	r = tier_scrub(t->ctx, &res);
	if (r && r != -ECANCELED)
		syslog(LOG_WARNING, "nlayerfs: scrub of the NVM copies: %s", strerror(-r));
	else if (!r && res.dropped)
		syslog(LOG_WARNING, "nlayerfs: scrub: %llu of %llu NVM copies damaged, dropped",
		       (unsigned long long)res.dropped, (unsigned long long)res.checked);
	pthread_mutex_lock(&t->wb.lock);
}

static void *wb_main(void *arg)
{
	struct nl_tier *t = arg;
	struct nl_wb *wb = &t->wb;
	bool was_active = tier_trace_active(t->ctx);
	struct tier_wb_result res;
	struct timespec start;
	unsigned idle = 0;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &start);
	/* temps of copies a crash interrupted */
	tier_writeback_clean(t->ctx);
	pthread_mutex_lock(&wb->lock);
	while (!wb->stop) {
		bool active, closed, due;
		uint64_t asked;

		wb_sleep(wb, 1000);
		if (wb->stop)
			break;
		active = tier_trace_active(t->ctx);
		closed = was_active && !active;
		was_active = active;
		hot_when_quiet(t, closed, (uint64_t)start.tv_sec);
		scrub_when_quiet(t);
		if (wb->stop)
			break;
		/* busy files: retried every few seconds while the window is shut */
		due = wb->retry && !active && ++idle >= 5;
		if (wb->asked == wb->finished &&
		    !(wb->on && t->cfg.writeback && (closed || due)))
			continue;
		asked = wb->asked;
		idle = 0;
		pthread_mutex_unlock(&wb->lock);
		r = writeback_pass(t, &res);
		wb_log(&res, r);
		pthread_mutex_lock(&wb->lock);
		wb->finished = asked;
		wb->last_rc = r;
		wb->last = res;
		wb->passes++;
		wb->retry = !r && res.busy;
		pthread_cond_broadcast(&wb->done);
	}
	wb->exited = true;
	wb->finished = wb->asked;
	wb->last_rc = -ECANCELED;
	pthread_cond_broadcast(&wb->done);
	pthread_mutex_unlock(&wb->lock);
	return NULL;
}

int nl_tier_writeback_now(struct nl_tier *t, bool wait, struct tier_wb_result *res)
{
	struct nl_wb *wb = &t->wb;
	uint64_t mine;
	int r = 0;

	if (!wb->on)
		return -ENOENT;
	pthread_mutex_lock(&wb->lock);
	mine = ++wb->asked;
	pthread_cond_signal(&wb->wake);
	while (wait && !wb->exited && wb->finished < mine)
		pthread_cond_wait(&wb->done, &wb->lock);
	if (wait) {
		r = wb->exited ? -ECANCELED : wb->last_rc;
		if (res)
			*res = wb->last;
	}
	pthread_mutex_unlock(&wb->lock);
	return r;
}

void nl_tier_writeback_retry(struct nl_tier *t)
{
	if (!t->wb.on)
		return;
	pthread_mutex_lock(&t->wb.lock);
	t->wb.retry = true;
	pthread_mutex_unlock(&t->wb.lock);
}

/* Write-back only with an HDD tier to write to; the thread always. */
static int wb_start(struct nl_tier *t)
{
	struct nl_wb *wb = &t->wb;

	wb->hot_due = true;
	wb->scrub_due = true;
	wb->on = t->cfg.hdd_dir != NULL;	/* before the thread reads it */
	pthread_mutex_init(&wb->lock, NULL);
	pthread_cond_init(&wb->wake, NULL);
	pthread_cond_init(&wb->done, NULL);
	if (pthread_create(&wb->thread, NULL, wb_main, t)) {
		pthread_mutex_destroy(&wb->lock);
		pthread_cond_destroy(&wb->wake);
		pthread_cond_destroy(&wb->done);
		wb->on = false;
		return -EAGAIN;
	}
	wb->running = true;
	return 0;
}

static void wb_stop(struct nl_tier *t)
{
	struct nl_wb *wb = &t->wb;

	if (!wb->running)
		return;
	pthread_mutex_lock(&wb->lock);
	wb->stop = true;
	pthread_cond_broadcast(&wb->wake);
	pthread_mutex_unlock(&wb->lock);
	/* a pass in progress stops between two files */
	tier_writeback_abort(t->ctx);
	pthread_join(wb->thread, NULL);
	wb->running = false;
	wb->on = false;
	pthread_mutex_destroy(&wb->lock);
	pthread_cond_destroy(&wb->wake);
	pthread_cond_destroy(&wb->done);
}

void nl_tier_start(struct nl_mount *m)
{
	struct nl_tier *t = m->tier;
	char msg[1024] = "";
	int r;

	if (!t)
		return;
	r = tier_open(&t->cfg, &t->ctx, msg, sizeof(msg));
	if (!r)
		r = add_layers(m, t);
	if (!r && t->cfg.layer_meta)
		r = tier_meta_start(t->ctx);
	/* queues the hot files not on NVM yet, after this start */
	if (!r)
		r = wb_start(t);
	if (!r)
		r = nl_tier_ctl_start(t);
	if (r) {
		/* The mount is up already: serve every file from its layer. */
		syslog(LOG_ERR, "nlayerfs: tiering off: %s", *msg ? msg : strerror(-r));
		fprintf(stderr, "nlayerfs: tiering off: %s\n", *msg ? msg : strerror(-r));
		wb_stop(t);
		nl_tier_ctl_stop(t);
		tier_close(t->ctx);
		__atomic_store_n(&t->ctx, NULL, __ATOMIC_RELEASE);
	}
}

void nl_tier_stop(struct nl_mount *m)
{
	struct nl_tier *t = m->tier;

	if (!t)
		return;
	/* copies in flight stop now: the unmount must not wait for them */
	tier_shutdown(t->ctx);
	/* first: a control command may be waiting for a pass */
	wb_stop(t);
	nl_tier_ctl_stop(t);
	tier_close(t->ctx);
	tier_config_free(&t->cfg);
	pthread_mutex_destroy(&t->cmd_lock);
	free(t->layer_of);
	free(t);
	m->tier = NULL;
}

int nl_tier_open_layer_file(struct nl_mount *m, int layer, const char *path, int flags)
{
	int fd = nl_open_beneath(m->layers[layer].fd, path, flags, 0);

	if (fd < 0)
		return fd;
	nl_lower_opened(m, layer, path, fd);
	return fd;
}

/* Where the data is, and open it. Between the lookup and the open the
 * file may be written back; the bracket makes its release wait for us. */
static int open_tiered(struct nl_mount *m, struct tier_ctx *ctx, int layer, int tl,
		       const char *path, int flags, const struct stat *st,
		       struct nl_range **range)
{
	char copy[NL_PATH_BUF];
	unsigned ticket = tier_open_begin(ctx);
	int where = tier_lookup_data(ctx, tl, path, st, copy, sizeof(copy));
	int fd;

	if (where <= TIER_DATA_LAYER) {
		/* a big file: its read ranges traced, some of them on NVM */
		if (range)
			*range = nl_range_open(m, ctx, layer, tl, path, st);
		/* With a range copy the layer file is opened at the first read
		 * outside it: a start the copy serves walks no HDD directory. */
		fd = range && *range ? nl_range_copy_fd(*range) : -1;
		if (fd < 0)
			fd = nl_tier_open_layer_file(m, layer, path, flags);
	} else {
		fd = open(copy, flags | O_CLOEXEC);
		if (fd < 0)
			fd = -errno;
		/* A promoted copy that went away (evicted meanwhile) is no
		 * error: the layer has the file. A written-back file's layer
		 * file may be a hole: never read that instead. */
		if (fd < 0 && where == TIER_DATA_NVM_COPY)
			fd = nl_tier_open_layer_file(m, layer, path, flags);
	}
	tier_open_end(ctx, ticket);
	return fd;
}

int nl_tier_open_data(struct nl_mount *m, int layer, const char *path, int flags,
		      struct nl_range **range)
{
	struct nl_tier *t = m->tier;
	struct tier_ctx *ctx = t ? __atomic_load_n(&t->ctx, __ATOMIC_ACQUIRE) : NULL;
	struct stat st;
	int tl;

	tl = ctx && layer < t->n_layers ? t->layer_of[layer] : -1;
	/* Copies are read-only; a write open of lower data does not happen
	 * (copy-up comes first), but never hand one a copy.
	 * With layer_meta=on the stat that validates a promoted copy comes
	 * from the layer's metadata image, so serving it costs no HDD read.
	 * The image stands in for the source because it is checked itself:
	 * against the layer root at every mount, against the real file at
	 * every data open from the layer, and by a walk of the layer after
	 * each trace window. A source changed behind the mount is found by
	 * that walk at the latest, and its copy is dropped at the next open. */
	if (tl < 0 || (flags & O_ACCMODE) != O_RDONLY ||
	    nl_lower_lstat(m, layer, path, &st) || !S_ISREG(st.st_mode))
		return nl_tier_open_layer_file(m, layer, path, flags);
	tier_trace_open(ctx, tl, path, (uint64_t)st.st_size);
	return open_tiered(m, ctx, layer, tl, path, flags, &st, range);
}
