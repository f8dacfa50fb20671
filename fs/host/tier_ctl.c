/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The control socket of a tiered mount: /run/nlayerfs/<hash>.sock, root
 * only, so that nothing appears in the tree a container sees. One thread
 * answers one command per connection, one at a time:
 *
 *   request:  "<command> [argument]\n" (import: the hot list follows;
 *             promote-paths, evict-paths: one merged-tree path a line)
 *   reply:    lines of text, then "ok" or "error <message>"
 */
#include <errno.h>
#include <limits.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fs/union/union.h"
#include "fs/union/tier_glue.h"

/* Range copies of big files: NVM bytes against the sizes of the files. */
static void put_range_status(struct nl_tier *t, FILE *f)
{
	struct tier_range_status r;

	if (tier_range_status(t->ctx, &r))
		return;
	fprintf(f, "range_files %" PRIu64 "\nrange_nvm_bytes %" PRIu64 "\nrange_file_bytes %" PRIu64
		"\nrange_traced_files %" PRIu64 "\nrange_traced_bytes %" PRIu64 "\n",
		r.files, r.nvm_bytes, r.file_bytes, r.traced_files, r.traced_bytes);
	fprintf(f, "range_read_nvm %" PRIu64 "\nrange_read_layer %" PRIu64 "\n",
		r.served_nvm, r.served_layer);
}

/* Metadata images of HDD layers: lookups answered from NVM or the layer. */
static void put_meta_status(struct nl_tier *t, FILE *f)
{
	struct tier_meta_status m;

	if (tier_meta_status(t->ctx, &m) || !m.on)
		return;
	fprintf(f, "metadata images: %" PRIu64 " layers, %" PRIu64 " bytes\n", m.layers, m.bytes);
	fprintf(f, "meta_layers %" PRIu64 "\nmeta_partial %" PRIu64 "\nmeta_bytes %" PRIu64
		"\nmeta_entries %" PRIu64 "\n", m.layers, m.partial, m.bytes, m.entries);
	fprintf(f, "meta_hits %" PRIu64 "\nmeta_misses %" PRIu64 "\nmeta_builds %" PRIu64
		"\nmeta_rebuilds %" PRIu64 "\nmeta_pending %d\n", m.hits, m.misses, m.builds,
		m.rebuilds, m.pending);
}

/* Write-back of cold NVM-home files: what the index holds, what is left
 * for later, and the last pass. */
static void put_wb_status(struct nl_tier *t, FILE *f)
{
	struct nl_wb *wb = &t->host->wb;
	struct tier_wb_status w;

	if (tier_writeback_status(t->ctx, &w))
		return;
	fprintf(f, "writeback %s\nwriteback_files %" PRIu64 "\nwriteback_bytes %" PRIu64
		"\nwriteback_busy %" PRIu64 "\n",
		!wb->on ? "unavailable" : t->host->cfg.writeback ? "on" : "off",
		w.files, w.bytes, w.busy);
	if (!wb->on)
		return;
	pthread_mutex_lock(&wb->lock);
	fprintf(f, "writeback_passes %" PRIu64 "\nwriteback_last_files %" PRIu64
		"\nwriteback_last_released_bytes %" PRIu64 "\n", wb->passes,
		wb->last.files, wb->last.released_bytes);
	pthread_mutex_unlock(&wb->lock);
}

/* Where each layer is ("placement N WHERE OWNER HOLDERS": nvm, hdd,
 * moving, leaving (moved, its NVM copy still held), moved; store: the
 * store's, may move; path: named by its path, stays) and what the moves did. */
static void put_move_status(struct nl_tier *t, FILE *f)
{
	struct tier_move_status m;

	for (size_t i = 0; i < tier_layer_count(t->ctx); i++) {
		struct tier_layer_info li;

		if (tier_layer_info(t->ctx, (int)i, &li))
			continue;
		fprintf(f, "placement %zu %s %s %u\n", i, tier_place_name(li.place),
			li.place == TIER_PLACE_HDD ? "-" : li.movable || li.place != TIER_PLACE_NVM ?
			"store" : "path", li.holders);
	}
	if (tier_move_status(t->ctx, &m))
		return;
	fprintf(f, "moves %" PRIu64 "\nmoved_bytes %" PRIu64 "\nmove_hot_copies %" PRIu64
		"\nmove_reaped %" PRIu64 "\nmove_failures %" PRIu64 "\n", m.moves, m.moved_bytes,
		m.hot_copies, m.reaped, m.failures);
	if (*m.last_error)
		fprintf(f, "move_last_error %s\n", m.last_error);
}

static void put_status(struct nl_tier *t, FILE *f)
{
	struct tier_status s;
	int r = tier_status(t->ctx, &s);

	if (r) {
		fprintf(f, "error %s\n", strerror(-r));
		return;
	}
	fprintf(f, "nvm_used %" PRIu64 "\nnvm_budget %" PRIu64 "\n", s.nvm_used, s.nvm_budget);
	fprintf(f, "promoted_files %" PRIu64 "\npromoted_bytes %" PRIu64 "\nobjects %" PRIu64 "\n",
		s.promoted_files, s.promoted_bytes, s.objects);
	fprintf(f, "queue %" PRIu64 "\nindexed_files %" PRIu64 "\nindex_full %s\n", s.queue_len,
		s.indexed_files, s.index_full ? "yes" : "no");
	fprintf(f, "trace %s\ntrace_records %" PRIu64 "\ntrace_dropped %" PRIu64 "\n",
		s.trace_active ? "active" : "stopped", s.trace_records, s.trace_dropped);
	fprintf(f, "cold_starts %" PRIu64 "\npromote %s\n", s.cold_starts,
		s.promote_on ? "on" : "off");
	fprintf(f, "scrubs %" PRIu64 "\nbad_copies %" PRIu64 "\n", s.scrubs, s.bad_copies);
	put_range_status(t, f);
	put_wb_status(t, f);
	put_meta_status(t, f);
	/* the service and its mounts, then what this mount's start traced */
	if (t->host->put_status)
		t->host->put_status(t->host->arg, f);
	fprintf(f, "mount %s\nmount_traced %" PRIu64 "\nmount_tracing %s\n", t->mountpoint,
		__atomic_load_n(&t->traced, __ATOMIC_RELAXED),
		t->tracing && tier_trace_active(t->ctx) ? "yes" : "no");
	for (size_t i = 0; i < tier_layer_count(t->ctx); i++)
		fprintf(f, "layer %zu %s %s %" PRIu64 " %s\n", i, tier_layer_id(t->ctx, (int)i),
			tier_layer_home(t->ctx, (int)i) == TIER_HOME_NVM ? "nvm" : "hdd",
			tier_layer_nvm_bytes(t->ctx, (int)i), tier_layer_dir(t->ctx, (int)i));
	put_move_status(t, f);
	fputs("ok\n", f);
}

/* Check every NVM copy now; damaged ones are dropped. */
static void do_scrub(struct nl_tier *t, FILE *f)
{
	struct tier_scrub_result res;
	int r = tier_scrub(t->ctx, &res);

	if (r < 0)
		fprintf(f, "error %s\n", strerror(-r));
	else
		fprintf(f, "checked %" PRIu64 "\ndropped %" PRIu64 "\nok\n", res.checked, res.dropped);
}

static void put_result(FILE *f, int64_t r, const char *what)
{
	if (r < 0)
		fprintf(f, "error %s\n", strerror((int)-r));
	else
		fprintf(f, "%s %" PRId64 "\nok\n", what, r);
}

static void do_import(struct nl_tier *t, FILE *in, FILE *f)
{
	char err[512] = "";
	unsigned skipped = 0;
	int r = tier_hotlist_import(t->ctx, in, "hot list", &skipped, err, sizeof(err));

	if (r < 0)
		fprintf(f, "error %s\n", *err ? err : strerror(-r));
	else
		fprintf(f, "queued %d\nskipped %u\nok\n", r, skipped);
}

static void do_wait(struct nl_tier *t, FILE *f, const char *arg)
{
	int ms = arg && *arg ? atoi(arg) * 1000 : -1;
	int r;

	/* Records still in the ring count as work not done yet. */
	tier_trace_flush(t->ctx);
	r = tier_wait_idle(t->ctx, ms);
	/* and the metadata images still to build */
	if (!r && tier_meta_wait(t->ctx, false, ms) == -ETIMEDOUT)
		r = -ETIMEDOUT;
	put_result(f, r, "idle");
}

/* evict [BYTES]: nlayerfsctl checked the size; a bad one is refused here
 * too rather than read as a number it is not. */
static void do_evict(struct nl_tier *t, FILE *f, const char *arg)
{
	uint64_t bytes = UINT64_MAX;

	if (arg && *arg && tier_parse_size(arg, &bytes))
		put_result(f, -EINVAL, "freed");
	else
		put_result(f, tier_evict(t->ctx, bytes), "freed");
}

/* Build the missing metadata images now (with @verify: compare every
 * image with its layer first), even in a trace window. */
static void do_meta_wait(struct nl_tier *t, FILE *f, const char *arg, bool verify)
{
	int ms = arg && *arg ? atoi(arg) * 1000 : -1;

	put_result(f, tier_meta_wait(t->ctx, verify, ms), "idle");
}

static void do_writeback(struct nl_tier *t, FILE *f, const char *arg)
{
	bool wait = arg && !strcmp(arg, "wait");
	struct tier_wb_result res = { 0 };
	int r;

	if (!t->host->cfg.hdd_dir) {
		fputs("error write-back needs an HDD tier (the hdd= option)\n", f);
		return;
	}
	r = nl_tier_writeback_now(t->host, wait, &res);
	if (r < 0) {
		fprintf(f, "error %s\n", strerror(-r));
		return;
	}
	if (wait)
		fprintf(f, "written_back %" PRIu64 "\nwritten_back_bytes %" PRIu64
			"\nreleased %" PRIu64 "\nreleased_bytes %" PRIu64 "\nbusy %" PRIu64 "\n",
			res.files, res.bytes, res.released, res.released_bytes, res.busy);
	else
		fputs("started\n", f);
	fputs("ok\n", f);
}

/* The next name of @p into @name; its length, or -errno. */
static int next_name(const char *p, char *name)
{
	size_t len = strcspn(p, "/");

	if (!len)
		return -EINVAL;
	if (len > NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(name, p, len);
	name[len] = 0;
	return (int)len;
}

/*
 * A path of the merged tree to the layer that shows it, by the union's own
 * lookup (namei.c): the directories on the way become nodes for as long as
 * the walk needs them; the last name's stat is the layer file's own.
 */
static int find_in_layers(struct nl_mount *m, const char *rel, int *layer, struct stat *st)
{
	struct nl_node *dir = &m->root, *next;
	struct fuse_entry_param e;
	char name[NAME_MAX + 1];
	int len, lowest, r;

	if (!*rel || strlen(rel) >= NL_PATH_BUF)
		return -EINVAL;
	for (;;) {
		len = next_name(rel, name);
		r = len < 0 ? len : 0;
		if (r || !rel[len])
			break;
		r = nl_lookup_child(m, dir, name, &e);
		next = r ? NULL : (struct nl_node *)(uintptr_t)e.ino;
		if (next && !S_ISDIR(e.attr.st_mode))
			r = -ENOTDIR;
		if (dir != &m->root)
			nl_node_forget(m, dir, 1);
		dir = next;
		if (r)
			break;
		rel += len + 1;
	}
	if (!r && nl_name_is_private(name))
		r = -ENOENT;
	if (!r) {
		pthread_rwlock_rdlock(&m->names);
		r = nl_resolve(m, dir, name, 0, layer, &lowest, st);
		pthread_rwlock_unlock(&m->names);
	}
	if (dir && dir != &m->root)
		nl_node_forget(m, dir, 1);
	return r;
}

/* @rel to a tier layer and a message when it is not a lower regular file. */
static int resolve_lower(struct nl_tier *t, const char *rel, int *tl, struct stat *stp,
			 char *why, size_t len)
{
	struct stat st;
	int layer, r;

	while (*rel == '/')
		rel++;
	r = find_in_layers(t->m, rel, &layer, &st);
	if (r) {
		snprintf(why, len, "%s", r == -EINVAL ? "not a file of the mount" : strerror(-r));
		return r;
	}
	if (t->m->layers[layer].upper || layer >= t->n_layers || t->layer_of[layer] < 0) {
		snprintf(why, len, "in the upper layer (new or copied up), not a lower file");
		return -EXDEV;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, len, "not a regular file");
		return -EINVAL;
	}
	*tl = t->layer_of[layer];
	*stp = st;
	return 0;
}

/* promote: an HDD-layer file, or a written-back one, is queued. */
static int promote_path(struct nl_tier *t, int tl, const char *rel, const struct stat *st,
			char *msg, size_t len)
{
	char copy[NL_PATH_BUF];
	int r;

	if (tier_layer_home(t->ctx, tl) == TIER_HOME_NVM &&
	    tier_lookup_data(t->ctx, tl, rel, st, copy, sizeof(copy)) != TIER_DATA_HDD_COPY) {
		snprintf(msg, len, "on NVM already (its layer's home tier)");
		return -EALREADY;
	}
	r = tier_promote_file(t->ctx, tl, rel);

	if (!r)
		snprintf(msg, len, "queued");
	return r;
}

/* evict: an HDD-layer file loses its NVM copy; an NVM-home file gets a
 * write-back copy on HDD, and its layer file stays whole: layers are never
 * written, so its NVM is freed only with its whole layer. */
static int evict_path(struct nl_tier *t, int tl, const char *rel, char *msg, size_t len)
{
	struct tier_wb_result res;
	int r;

	if (tier_layer_home(t->ctx, tl) == TIER_HOME_HDD) {
		r = tier_evict_file(t->ctx, tl, rel);
		if (r == -ENOENT)
			snprintf(msg, len, "has no NVM copy");
		else if (!r)
			snprintf(msg, len, "evicted");
		return r == -ENOENT ? -EALREADY : r;
	}
	if (!t->host->cfg.hdd_dir) {
		snprintf(msg, len, "an NVM-home file needs the hdd= tier to be evicted");
		return -ENOENT;
	}
	/* a promoted copy of a written-back file goes first */
	tier_evict_file(t->ctx, tl, rel);
	r = tier_writeback_file(t->ctx, tl, rel, false, &res);
	if (r == -EALREADY)
		snprintf(msg, len, "already written back");
	else if (!r)
		snprintf(msg, len, "written back to HDD (%" PRIu64 " bytes); the layer file stays "
			 "on NVM, layers are never modified", res.bytes);
	return r;
}

/* One path a line; each gets "PATH: what happened", the end says how
 * many failed. */
static void do_paths(struct nl_tier *t, FILE *in, FILE *f, bool promote)
{
	char *line = NULL, why[256] = "";
	size_t cap = 0;
	unsigned bad = 0, n = 0;
	ssize_t len;

	while ((len = getline(&line, &cap, in)) > 0) {
		struct stat st;
		int tl, r;

		line[strcspn(line, "\n")] = 0;
		if (!*line)
			continue;
		n++;
		r = resolve_lower(t, line, &tl, &st, why, sizeof(why));
		if (!r)
			r = promote ? promote_path(t, tl, line + strspn(line, "/"), &st, why, sizeof(why)) :
				      evict_path(t, tl, line + strspn(line, "/"), why, sizeof(why));
		if (r && r != -EALREADY && !*why)
			snprintf(why, sizeof(why), "%s", strerror(-r));
		bad += r && r != -EALREADY;
		fprintf(f, "%s: %s\n", line, why);
		*why = 0;
	}
	free(line);
	if (!n)
		fputs("error no paths given\n", f);
	else if (bad)
		fprintf(f, "error %u of %u paths failed\n", bad, n);
	else
		fputs("ok\n", f);
}

/* A layer by its number in the status, its id (or 12 and more of its
 * first hex digits) or its directory; -1 when none is. */
static int layer_named(struct nl_tier *t, const char *arg)
{
	size_t n = tier_layer_count(t->ctx), alen = strlen(arg);
	char real[PATH_MAX], *end;
	long num = strtol(arg, &end, 10);
	bool path = realpath(arg, real) != NULL;

	if (*arg && !*end && num >= 0 && (size_t)num < n && alen < 12)
		return (int)num;
	for (size_t i = 0; i < n; i++) {
		struct tier_layer_info li;

		if (tier_layer_info(t->ctx, (int)i, &li) || li.place == TIER_PLACE_LEAVING ||
		    li.place == TIER_PLACE_MOVED)
			continue;
		if ((alen >= 12 && !strncmp(tier_layer_id(t->ctx, (int)i), arg, alen)) ||
		    (path && !strcmp(tier_layer_dir(t->ctx, (int)i), real)))
			return (int)i;
	}
	return -1;
}

/* move LAYER: the whole layer to HDD now; its NVM copy is deleted once
 * no mount holds it. */
static void do_move(struct nl_tier *t, FILE *f, const char *arg)
{
	char err[1024] = "";
	int layer = arg && *arg ? layer_named(t, arg) : -1;
	int r;

	if (layer < 0) {
		fprintf(f, "error no layer '%s' (a number, an id or a directory from the status)\n",
			arg ? arg : "");
		return;
	}
	r = tier_layer_move(t->ctx, layer, err, sizeof(err));
	if (r)
		fprintf(f, "error %s\n", *err ? err : strerror(-r));
	else
		fprintf(f, "moved %s\nreaped %d\nok\n", tier_layer_id(t->ctx, layer),
			tier_move_reap(t->ctx));
}

static void run_command(struct nl_tier *t, FILE *in, FILE *f, char *cmd, char *arg)
{
	if (!strcmp(cmd, "status")) {
		put_status(t, f);
	} else if (!strcmp(cmd, "trace-start")) {
		put_result(f, tier_trace_start(t->ctx), "started");
	} else if (!strcmp(cmd, "trace-stop")) {
		tier_trace_stop(t->ctx);
		put_result(f, tier_trace_flush(t->ctx), "flushed");
	} else if (!strcmp(cmd, "export")) {
		tier_trace_flush(t->ctx);
		put_result(f, tier_hotlist_export(t->ctx, f), "exported");
	} else if (!strcmp(cmd, "import")) {
		do_import(t, in, f);
	} else if (!strcmp(cmd, "promote")) {
		tier_trace_flush(t->ctx);
		put_result(f, tier_promote_hot(t->ctx), "queued");
	} else if (!strcmp(cmd, "evict")) {
		do_evict(t, f, arg);
	} else if (!strcmp(cmd, "wait")) {
		do_wait(t, f, arg);
	} else if (!strcmp(cmd, "scrub")) {
		do_scrub(t, f);
	} else if (!strcmp(cmd, "writeback")) {
		do_writeback(t, f, arg);
	} else if (!strcmp(cmd, "promote-paths")) {
		do_paths(t, in, f, true);
	} else if (!strcmp(cmd, "evict-paths")) {
		do_paths(t, in, f, false);
	} else if (!strcmp(cmd, "meta-wait") || !strcmp(cmd, "meta-verify")) {
		do_meta_wait(t, f, arg, !strcmp(cmd, "meta-verify"));
	} else {
		fprintf(f, "error unknown command '%s'\n", cmd);
	}
}

static void serve_client(struct nl_tier *t, int fd)
{
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	char line[512], *arg;
	FILE *in, *out = NULL;
	int wfd;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) || cred.uid != 0) {
		close(fd);
		return;
	}
	/* Two streams: a socket cannot seek, which one read/write stream
	 * would need between reading the request and writing the reply. */
	in = fdopen(fd, "r");
	wfd = in ? dup(fd) : -1;
	if (wfd >= 0 && !(out = fdopen(wfd, "w")))
		close(wfd);
	if (out && fgets(line, sizeof(line), in)) {
		line[strcspn(line, "\n")] = 0;
		arg = strchr(line, ' ');
		if (arg)
			*arg++ = 0;
		/* a move takes long and has its own lock: status meanwhile */
		if (!strcmp(line, "move")) {
			do_move(t, out, arg);
		} else {
			pthread_mutex_lock(&t->host->cmd_lock);
			run_command(t, in, out, line, arg);
			pthread_mutex_unlock(&t->host->cmd_lock);
		}
	}
	if (out)
		fclose(out);
	if (in)
		fclose(in);
	else
		close(fd);
}

static void *ctl_main(void *arg)
{
	struct nl_tier *t = arg;
	int fd;

	for (;;) {
		fd = accept4(t->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			serve_client(t, fd);
		else if (errno != EINTR && errno != ECONNABORTED)
			break;	/* shut down at unmount */
	}
	return NULL;
}

static int ctl_listen(struct nl_tier *t)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (mkdir(TIER_RUN_DIR, 0700) && errno != EEXIST)
		return -errno;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	strcpy(sa.sun_path, t->sock_path);
	/* A socket left by a daemon that was killed: same mountpoint, ours. */
	unlink(t->sock_path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || chmod(t->sock_path, 0600) ||
	    listen(fd, 8) || stat(t->sock_path, &st)) {
		int e = errno;

		close(fd);
		return -e;
	}
	t->listen_fd = fd;
	t->sock_ino = st.st_ino;
	return 0;
}

int nl_tier_ctl_start(struct nl_tier *t)
{
	int r = ctl_listen(t);

	if (r) {
		t->sock_path[0] = 0;
		return r;
	}
	if (pthread_create(&t->thread, NULL, ctl_main, t))
		return -EAGAIN;
	t->thread_on = true;
	return 0;
}

void nl_tier_ctl_stop(struct nl_tier *t)
{
	struct stat st;

	if (t->listen_fd >= 0)
		shutdown(t->listen_fd, SHUT_RDWR);
	if (t->thread_on)
		pthread_join(t->thread, NULL);
	t->thread_on = false;
	if (t->listen_fd >= 0)
		close(t->listen_fd);
	t->listen_fd = -1;
	/* a remount on the same mountpoint may have its socket there now */
	if (t->sock_path[0] && !stat(t->sock_path, &st) && st.st_ino == t->sock_ino)
		unlink(t->sock_path);
	t->sock_path[0] = 0;
}
