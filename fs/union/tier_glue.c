/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Tiering in the union mount. The policy is all in tier/; here the host
 * service opens the tier once, each mount it serves registers its lower
 * layers in it, traces its start, and asks on each lower open where the
 * data lives.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fs/union/union.h"
#include "fs/union/tier_glue.h"
#include "fs/log.h"
#include "tier/image/image.h"

int nl_tier_load_config(const struct nl_options *o, struct tier_config *c, char *err,
			size_t errlen)
{
	const char *file = nl_options_extra(o, "config");
	int r;

	tier_config_defaults(c);
	c->log = nl_log_msg;
	c->store = &nl_image_store;
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
		if (tier_config_key_is_dir(key) && v[0] != '/' && realpath(v, real))
			v = real;
		r = tier_config_set(c, key, v, err, errlen);
	}
	return r;
}

int nl_tier_setup(struct nl_mount *m, char *err, size_t errlen)
{
	struct nl_tier *t = calloc(1, sizeof(*t));
	int r;

	if (!t)
		return -ENOMEM;
	t->listen_fd = -1;
	r = nl_tier_load_config(m->opt, &t->cfg, err, errlen);
	if (r || !t->cfg.nvm_dir) {
		tier_config_free(&t->cfg);
		free(t);
		return r;
	}
	t->m = m;
	m->tier = t;
	return 0;
}

static int add_layers(struct nl_mount *m, struct nl_tier *t, char *err, size_t errlen)
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
		if (t->layer_of[i] < 0) {
			snprintf(err, errlen, "tiering: layer %s: %s", m->layers[i].path,
				 strerror(-t->layer_of[i]));
			return t->layer_of[i];
		}
	}
	return 0;
}

static bool same_dir(const char *a, const char *b)
{
	char ra[PATH_MAX], rb[PATH_MAX];

	return realpath(a, ra) && realpath(b, rb) && !strcmp(ra, rb);
}

int nl_tier_attach(struct nl_mount *m, struct nl_tier_host *h, const char *mountpoint,
		   char *err, size_t errlen)
{
	struct nl_tier *t = m->tier;
	int r;

	if (!t)
		return 0;
	if (!same_dir(t->cfg.nvm_dir, h->cfg.nvm_dir)) {
		snprintf(err, errlen, "nvm=%s: not the NVM directory of this tier service (%s)",
			 t->cfg.nvm_dir, h->cfg.nvm_dir);
		return -EINVAL;
	}
	t->host = h;
	t->ctx = h->ctx;
	snprintf(t->mountpoint, sizeof(t->mountpoint), "%s", mountpoint);
	r = add_layers(m, t, err, errlen);
	if (!r)
		r = tier_ctl_sock_path(mountpoint, "sock", t->sock_path, sizeof(t->sock_path));
	if (!r) {
		r = nl_tier_ctl_start(t);
		if (r)
			snprintf(err, errlen, "control socket of %s: %s", mountpoint, strerror(-r));
	}
	return r;
}

/* ---- write-back of cold NVM-home files ---- */

/* The hot files first (written-back ones needed again come back from
 * HDD), then copies of the rest of NVM go to HDD. The layer files stay
 * whole: layers are never written. Never on a request path. */
static int writeback_pass(struct nl_tier_host *h, struct tier_wb_result *res)
{
	int r;

	memset(res, 0, sizeof(*res));
	tier_trace_flush(h->ctx);
	if (h->cfg.promote) {
		r = tier_promote_hot(h->ctx);
		if (r < 0)
			return r;
		/* short waits, so that a stop is not held up */
		while ((r = tier_wait_idle(h->ctx, 500)) == -ETIMEDOUT)
			if (__atomic_load_n(&h->wb.stop, __ATOMIC_RELAXED))
				return -ECANCELED;
	}
	return tier_writeback_run(h->ctx, false, res);
}

static void wb_log(const struct tier_wb_result *res, int r)
{
	if (r && r != -ECANCELED)
		nl_log(LOG_WARNING, "write-back: %s", strerror(-r));
	else if (res->files)
		nl_log(LOG_INFO, "write-back: %llu files (%llu bytes) copied to HDD",
		       (unsigned long long)res->files, (unsigned long long)res->bytes);
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

/* Once per service, after its first start: copies damaged on NVM since
 * their last check are found and dropped before later starts read them. */
static void scrub_when_quiet(struct nl_tier_host *h, bool closed)
{
	struct tier_scrub_result res;
	int r;

	if (!h->wb.scrub_due || !closed)
		return;
	h->wb.scrub_due = false;
	pthread_mutex_unlock(&h->wb.lock);
	r = tier_scrub(h->ctx, &res);
	if (r && r != -ECANCELED)
		nl_log(LOG_WARNING, "scrub of the NVM copies: %s", strerror(-r));
	else if (!r && res.dropped)
		nl_log(LOG_WARNING, "scrub: %llu of %llu NVM copies damaged, dropped",
		       (unsigned long long)res.dropped, (unsigned long long)res.checked);
	pthread_mutex_lock(&h->wb.lock);
}

static void *wb_main(void *arg)
{
	struct nl_tier_host *h = arg;
	struct nl_wb *wb = &h->wb;
	uint64_t handled = tier_trace_windows(h->ctx);
	struct tier_wb_result res;
	int r;

	pthread_mutex_lock(&wb->lock);
	while (!wb->stop) {
		bool active, closed;
		uint64_t asked;

		wb_sleep(wb, 1000);
		if (wb->stop)
			break;
		/* a window ended since the last look, however short it was */
		active = tier_trace_active(h->ctx);
		closed = !active && tier_trace_windows(h->ctx) != handled;
		if (closed)
			handled = tier_trace_windows(h->ctx);
		scrub_when_quiet(h, closed);
		if (wb->stop)
			break;
		if (wb->asked == wb->finished && !(wb->on && h->cfg.writeback && closed))
			continue;
		asked = wb->asked;
		wb->busy = true;
		pthread_mutex_unlock(&wb->lock);
		r = writeback_pass(h, &res);
		wb_log(&res, r);
		pthread_mutex_lock(&wb->lock);
		wb->busy = false;
		wb->finished = asked;
		wb->last_rc = r;
		wb->last = res;
		wb->passes++;
		pthread_cond_broadcast(&wb->done);
	}
	wb->exited = true;
	wb->finished = wb->asked;
	wb->last_rc = -ECANCELED;
	pthread_cond_broadcast(&wb->done);
	pthread_mutex_unlock(&wb->lock);
	return NULL;
}

int nl_tier_writeback_now(struct nl_tier_host *h, bool wait, struct tier_wb_result *res)
{
	struct nl_wb *wb = &h->wb;
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

/* Write-back only with an HDD tier to write to; the thread always. */
static int wb_start(struct nl_tier_host *h)
{
	struct nl_wb *wb = &h->wb;

	wb->on = h->cfg.hdd_dir != NULL;	/* before the thread reads it */
	wb->scrub_due = true;
	pthread_mutex_init(&wb->lock, NULL);
	pthread_cond_init(&wb->wake, NULL);
	pthread_cond_init(&wb->done, NULL);
	if (pthread_create(&wb->thread, NULL, wb_main, h)) {
		pthread_mutex_destroy(&wb->lock);
		pthread_cond_destroy(&wb->wake);
		pthread_cond_destroy(&wb->done);
		wb->on = false;
		return -EAGAIN;
	}
	wb->running = true;
	return 0;
}

static void wb_stop(struct nl_tier_host *h)
{
	struct nl_wb *wb = &h->wb;

	if (!wb->running)
		return;
	pthread_mutex_lock(&wb->lock);
	wb->stop = true;
	pthread_cond_broadcast(&wb->wake);
	pthread_mutex_unlock(&wb->lock);
	/* a pass in progress stops between two files */
	tier_writeback_abort(h->ctx);
	pthread_join(wb->thread, NULL);
	wb->running = false;
	wb->on = false;
	pthread_mutex_destroy(&wb->lock);
	pthread_cond_destroy(&wb->wake);
	pthread_cond_destroy(&wb->done);
}

/* ---- the host's tier ---- */

int nl_tier_host_open(struct nl_tier_host *h, const struct tier_config *c, char *err,
		      size_t errlen)
{
	struct tier_config cfg = *c;
	char msg[1024] = "";
	int r;

	/* windows are opened by the starts of the mounts, not by the service */
	cfg.trace_at_open = false;
	pthread_mutex_init(&h->cmd_lock, NULL);
	r = tier_open(&cfg, &h->ctx, msg, sizeof(msg));
	if (r) {
		snprintf(err, errlen, "tiering: %s", *msg ? msg : strerror(-r));
		return r;
	}
	h->cfg = *c;
	h->cfg.nvm_dir = strdup(c->nvm_dir);
	h->cfg.hdd_dir = c->hdd_dir ? strdup(c->hdd_dir) : NULL;
	if (c->layer_meta)
		r = tier_meta_start(h->ctx);
	if (!r)
		r = wb_start(h);
	if (r)
		snprintf(err, errlen, "tiering: cannot start the tier threads: %s", strerror(-r));
	return r;
}

void nl_tier_host_close(struct nl_tier_host *h)
{
	/* copies in flight stop now: the exit must not wait for them */
	tier_shutdown(h->ctx);
	wb_stop(h);
	tier_close(h->ctx);
	h->ctx = NULL;
	tier_config_free(&h->cfg);
	pthread_mutex_destroy(&h->cmd_lock);
}

bool nl_tier_host_idle(struct nl_tier_host *h)
{
	struct tier_meta_status ms;
	bool busy;

	/* records still in the ring and an ended window not yet handled
	 * are work to do: queued by the flush */
	tier_trace_flush(h->ctx);
	if (tier_trace_active(h->ctx) || tier_wait_idle(h->ctx, 0) ||
	    (!tier_meta_status(h->ctx, &ms) && ms.pending))
		return false;
	if (!h->wb.running)
		return true;
	pthread_mutex_lock(&h->wb.lock);
	busy = h->wb.busy || h->wb.asked != h->wb.finished;
	pthread_mutex_unlock(&h->wb.lock);
	return !busy;
}

/* ---- one mount ---- */

/* At FUSE INIT, before the kernel sends any request: this start's trace. */
void nl_tier_start(struct nl_mount *m)
{
	struct nl_tier *t = m->tier;

	if (!t || !t->ctx || !t->cfg.trace)
		return;
	t->trace_gen = tier_trace_begin(t->ctx);
	t->tracing = true;
}

void nl_tier_stop(struct nl_mount *m)
{
	struct nl_tier *t = m->tier;

	if (!t)
		return;
	nl_tier_ctl_stop(t);
	/* the start is over with its mount at the latest */
	if (t->tracing)
		tier_trace_end(t->ctx, t->trace_gen);
	tier_config_free(&t->cfg);
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
	 * every data open from the layer, and by a walk of the layer after a
	 * trace window (at most every 10 minutes). A source changed behind
	 * the mount is found by that walk at the latest, and its copy is
	 * dropped at the next open. */
	if (tl < 0 || (flags & O_ACCMODE) != O_RDONLY ||
	    nl_lower_lstat(m, layer, path, &st) || !S_ISREG(st.st_mode))
		return nl_tier_open_layer_file(m, layer, path, flags);
	if (t->cfg.trace && tier_trace_open(ctx, tl, path, (uint64_t)st.st_size))
		__atomic_fetch_add(&t->traced, 1, __ATOMIC_RELAXED);
	return open_tiered(m, ctx, layer, tl, path, flags, &st, range);
}
