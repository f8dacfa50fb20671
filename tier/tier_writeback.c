/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Write-back of NVM-home layer files that no traced start needed: each is
 * copied to HDD/writeback/<layer id>/<path> (temp + fsync + rename + fsync
 * of the directory), the index records it, and only then, if asked, its
 * NVM blocks are released by punching a hole (the file keeps its size and
 * inode, so the union tree is unchanged). From the index commit on, opens
 * read the HDD copy (tier_lookup_data()).
 *
 * Descriptors opened on the layer file before the commit must keep their
 * bytes, so a file is released only when nothing can read it through the
 * layer any more: the opens that may have looked the file up before the
 * commit are waited for (a grace period over tier_open_begin/end()), then
 * the descriptors of this process are listed, and a file one of them holds
 * is left for a later pass. A crash anywhere leaves either the layer file
 * whole, or a committed HDD copy (and the layer file whole, partly or
 * fully punched): every file reads its original bytes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/falloc.h>
#include "tier/tier_private.h"
#include "tier/tier_util.h"
#include "tier/tier_index.h"
#include "tier/tier_promote.h"

#define WB_TMP_PREFIX ".nlwb-tmp-"
#define WB_BATCH 256		/* files committed before one release step */

struct wb_item {
	int layer;
	char *rel;
};

struct wb_run {
	struct tier_ctx *ctx;
	bool release;
	bool force;		/* one file by hand: traced or not */
	struct wb_item *pend;	/* committed, blocks not released yet */
	size_t n, cap;
	struct tier_wb_result res;
};

/* Descriptors of this process, as (device, inode), sorted. */
struct held_key {
	dev_t dev;
	ino_t ino;
};

struct held {
	struct held_key *v;
	size_t n;
};

static void pause_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* ---- the open side: a grace period without a lock ---- */

unsigned tier_open_begin(struct tier_ctx *ctx)
{
	for (;;) {
		uint64_t e = atomic_load(&ctx->open_epoch);

		atomic_fetch_add(&ctx->opens[e & 1], 1);
		/* counted under the epoch a write-back waits for, or retry */
		if (atomic_load(&ctx->open_epoch) == e)
			return (unsigned)(e & 1);
		atomic_fetch_sub(&ctx->opens[e & 1], 1);
	}
}

void tier_open_end(struct tier_ctx *ctx, unsigned ticket)
{
	atomic_fetch_sub(&ctx->opens[ticket & 1], 1);
}

/* Every open that began before this call has ended. */
static int grace_wait(struct tier_ctx *ctx)
{
	uint64_t old = atomic_fetch_add(&ctx->open_epoch, 1) & 1;

	while (atomic_load(&ctx->opens[old])) {
		if (atomic_load(&ctx->wb_abort))
			return -ECANCELED;
		pause_ms(1);
	}
	return 0;
}

bool tier_trace_active(struct tier_ctx *ctx)
{
	uint64_t end = atomic_load(&ctx->trace_end);

	return end && end > tier_now_mono_ns();
}

/* ---- what this process holds open ---- */

static int cmp_key(const void *pa, const void *pb)
{
	const struct held_key *a = pa, *b = pb;

	if (a->dev != b->dev)
		return a->dev < b->dev ? -1 : 1;
	return a->ino < b->ino ? -1 : a->ino > b->ino;
}

/* The descriptor table is the one list of open files that cannot miss
 * one: every FUSE file handle of the mount is a descriptor here. */
static int held_load(struct held *h)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	size_t cap = 0;

	h->v = NULL;
	h->n = 0;
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name);
		struct stat st;

		if (de->d_name[0] == '.' || fd == dirfd(d) || fstat(fd, &st) || !S_ISREG(st.st_mode))
			continue;
		if (h->n == cap) {
			void *nv = realloc(h->v, (cap = cap ? 2 * cap : 64) * sizeof(*h->v));

			if (!nv) {
				closedir(d);
				return -ENOMEM;
			}
			h->v = nv;
		}
		h->v[h->n].dev = st.st_dev;
		h->v[h->n].ino = st.st_ino;
		h->n++;
	}
	closedir(d);
	if (h->n)	/* h->v is NULL while empty */
		qsort(h->v, h->n, sizeof(*h->v), cmp_key);
	return 0;
}

static bool held_has(const struct held *h, const struct stat *st)
{
	struct held_key k = { st->st_dev, st->st_ino };

	return h->n && bsearch(&k, h->v, h->n, sizeof(*h->v), cmp_key);
}

/* ---- the HDD copy ---- */

/* Create the directories of @path; a new one is made durable in its
 * parent, or a crash could lose a committed copy's name. */
static int make_parents(char *path)
{
	for (char *p = path + 1; *p; p++) {
		int rc = 0;

		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) == 0) {
			char *slash = strrchr(path, '/');

			*slash = '\0';
			rc = tier_fsync_dir(*path ? path : "/");
			*slash = '/';
		} else if (errno != EEXIST) {
			rc = -errno;
		}
		*p = '/';
		if (rc)
			return rc;
	}
	return 0;
}

static int write_all(int fd, const char *buf, size_t n)
{
	while (n) {
		ssize_t w = write(fd, buf, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		buf += w;
		n -= (size_t)w;
	}
	return 0;
}

/* @in to @dst: temp in the same directory, fsync, rename, fsync dir.
 * -ECANCELED when the pass is aborted: the temp goes. */
static int copy_durably(struct tier_ctx *ctx, int in, char *dst)
{
	char tmp[PATH_MAX], *slash = strrchr(dst, '/');
	const size_t bufsz = 1 << 20;
	char *buf = malloc(bufsz);
	uint64_t done = 0, started = 0;
	ssize_t r = 0;
	int out, rc = 0;

	if (!buf)
		return -ENOMEM;
	*slash = '\0';
	if (snprintf(tmp, sizeof(tmp), "%s/" WB_TMP_PREFIX "XXXXXX", dst) >= (int)sizeof(tmp)) {
		*slash = '/';
		free(buf);
		return -ENAMETOOLONG;
	}
	*slash = '/';
	out = mkostemp(tmp, O_CLOEXEC);
	if (out < 0) {
		free(buf);
		return -errno;
	}
	while (!rc && (r = read(in, buf, bufsz)) > 0) {
		rc = write_all(out, buf, (size_t)r);
		tier_fault("writeback-copying");
		if (!rc && (atomic_load(&ctx->wb_abort) || tier_cancelled(ctx)))
			rc = -ECANCELED;
		done += (uint64_t)r;
		if (!rc)
			tier_write_behind(out, done, &started);
	}
	if (!rc && r < 0)
		rc = -errno;
	if (!rc && fsync(out) < 0)
		rc = -errno;
	if (close(out) < 0 && !rc)
		rc = -errno;
	if (!rc && rename(tmp, dst) < 0)
		rc = -errno;
	if (rc) {
		unlink(tmp);
	} else {
		*slash = '\0';
		rc = tier_fsync_dir(dst);
		*slash = '/';
	}
	free(buf);
	return rc;
}

static int wb_path(const struct tier_ctx *ctx, const struct tier_layer *l, const char *rel,
		   char *out, size_t n)
{
	if (snprintf(out, n, "%s/writeback/%s/%s", ctx->cfg.hdd_dir, l->id, rel) >= (int)n)
		return -ENAMETOOLONG;
	return 0;
}

/* Copy one file to HDD and commit it in the index. */
static int copy_and_commit(struct wb_run *w, int layer, const char *rel)
{
	struct tier_ctx *ctx = w->ctx;
	struct tier_layer *l = &ctx->layers[layer];
	char dst[PATH_MAX];
	struct stat st, st2;
	int fd, rc;

	rc = wb_path(ctx, l, rel, dst, sizeof(dst));
	if (rc)
		return rc;
	fd = tier_layer_open(l->dir, rel, O_RDONLY | O_NOFOLLOW);
	if (fd < 0)
		return fd;
	rc = fstat(fd, &st) < 0 ? -errno : !S_ISREG(st.st_mode) ? -EINVAL : make_parents(dst);
	if (!rc)
		rc = copy_durably(ctx, fd, dst);
	/* changed while copying: the copy may be torn, do not name it */
	if (!rc && (fstat(fd, &st2) < 0 || !tier_same_source(&st, &st2)))
		rc = -EAGAIN;
	close(fd);
	if (rc)
		return rc;
	tier_fault("writeback-renamed");
	pthread_rwlock_wrlock(&ctx->lock);
	rc = tier_index_set_written_back(ctx, l->id, rel, &st);
	pthread_rwlock_unlock(&ctx->lock);
	if (!rc) {
		w->res.files++;
		w->res.bytes += (uint64_t)st.st_size;
	}
	return rc;
}

/* ---- releasing NVM blocks ---- */

static int pend_add(struct wb_run *w, int layer, const char *rel)
{
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 64;
		struct wb_item *v = realloc(w->pend, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		w->pend = v;
		w->cap = cap;
	}
	w->pend[w->n].rel = strdup(rel);
	if (!w->pend[w->n].rel)
		return -ENOMEM;
	w->pend[w->n++].layer = layer;
	return 0;
}

static void pend_clear(struct wb_run *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->pend[i].rel);
	w->n = 0;
}

/* Still written back, the same file, its copy committed? */
static bool committed(struct tier_ctx *ctx, const struct tier_layer *l, const char *rel,
		      const struct stat *st)
{
	struct tier_pentry *e;
	bool yes;

	pthread_rwlock_rdlock(&ctx->lock);
	e = tier_index_find(ctx, l->id, rel);
	yes = e && e->wb && tier_entry_matches(e, st);
	pthread_rwlock_unlock(&ctx->lock);
	return yes;
}

static off_t round_up(off_t n, off_t unit)
{
	return (n + unit - 1) / unit * unit;
}

static int release_one(struct wb_run *w, const struct held *h, const struct wb_item *it)
{
	struct tier_ctx *ctx = w->ctx;
	struct tier_layer *l = &ctx->layers[it->layer];
	char src[PATH_MAX];
	struct stat st, after;
	uint64_t freed;
	int fd;

	if (snprintf(src, sizeof(src), "%s/%s", l->dir, it->rel) >= (int)sizeof(src))
		return -ENAMETOOLONG;
	fd = open(src, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || !st.st_blocks ||
	    !committed(ctx, l, it->rel, &st)) {
		close(fd);
		return 0;
	}
	if (held_has(h, &st)) {
		w->res.busy++;
		close(fd);
		return 0;
	}
	/* up to a whole block: a partial last block would only be zeroed */
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
		      round_up(st.st_size, st.st_blksize > 4096 ? st.st_blksize : 4096)) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	if (fstat(fd, &after) < 0)
		after.st_blocks = 0;
	/* the layer's times stay what the image says */
	futimens(fd, (struct timespec[2]){ st.st_atim, st.st_mtim });
	close(fd);
	freed = after.st_blocks < st.st_blocks ? (uint64_t)(st.st_blocks - after.st_blocks) * 512 : 0;
	pthread_rwlock_wrlock(&ctx->lock);
	l->bytes -= freed < l->bytes ? freed : l->bytes;
	pthread_rwlock_unlock(&ctx->lock);
	w->res.released++;
	w->res.released_bytes += freed;
	return 0;
}

/* Release the blocks of the committed files no open can reach. */
static int release_pending(struct wb_run *w)
{
	struct held h = { 0 };
	int rc = 0;

	if (!w->release || !w->n) {
		pend_clear(w);
		return 0;
	}
	/* opens that looked a file up before its commit end first, so that
	 * what they opened is in the descriptor table read next */
	rc = grace_wait(w->ctx);
	if (!rc)
		rc = held_load(&h);
	for (size_t i = 0; !rc && i < w->n; i++) {
		if (atomic_load(&w->ctx->wb_abort))
			rc = -ECANCELED;
		else
			release_one(w, &h, &w->pend[i]);	/* a failed one: next pass */
	}
	free(h.v);
	pend_clear(w);
	return rc;
}

/* ---- choosing files ---- */

/* One regular file of an NVM-home layer. */
static int consider(struct wb_run *w, int layer, const char *rel, const struct stat *st)
{
	struct tier_ctx *ctx = w->ctx;
	struct tier_pentry *e;
	bool hot, done;
	int rc;

	pthread_rwlock_rdlock(&ctx->lock);
	e = tier_index_find(ctx, ctx->layers[layer].id, rel);
	done = e && e->wb && tier_entry_matches(e, st);
	hot = e && e->heat && !w->force;
	pthread_rwlock_unlock(&ctx->lock);
	if (done)	/* committed by an earlier pass; released? */
		return w->release && st->st_blocks ? pend_add(w, layer, rel) : 0;
	if (hot)
		return 0;
	rc = copy_and_commit(w, layer, rel);
	if (rc == -EAGAIN || rc == -ENOENT)
		return 0;	/* changed or gone meanwhile: a later pass */
	return rc ? rc : pend_add(w, layer, rel);
}

static int walk(struct wb_run *w, int layer, const char *rel)
{
	const struct tier_layer *l = &w->ctx->layers[layer];
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if (snprintf(path, sizeof(path), "%s%s%s", l->dir, *rel ? "/" : "", rel) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	d = opendir(path);
	if (!d)
		return -errno;
	while (!rc && (de = readdir(d))) {
		char sub[PATH_MAX];
		struct stat st;

		if (atomic_load(&w->ctx->wb_abort)) {
			rc = -ECANCELED;
			break;
		}
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "", de->d_name) >=
		    (int)sizeof(sub))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode))
			rc = walk(w, layer, sub);
		else if (S_ISREG(st.st_mode) && st.st_size)
			rc = consider(w, layer, sub, &st);
		if (!rc && w->n >= WB_BATCH)
			rc = release_pending(w);
	}
	closedir(d);
	return rc;
}

/* One pass or one file at a time; waits for a running one. */
static int run_lock(struct tier_ctx *ctx)
{
	while (atomic_exchange(&ctx->wb_running, true)) {
		if (atomic_load(&ctx->wb_abort))
			return -ECANCELED;
		pause_ms(10);
	}
	if (atomic_load(&ctx->wb_abort)) {
		atomic_store(&ctx->wb_running, false);
		return -ECANCELED;
	}
	return 0;
}

static void run_unlock(struct tier_ctx *ctx)
{
	atomic_store(&ctx->wb_running, false);
}

int tier_writeback_run(struct tier_ctx *ctx, bool release, struct tier_wb_result *res)
{
	struct wb_run w = { .ctx = ctx, .release = release };
	int rc, rc2;

	if (!ctx->cfg.hdd_dir)
		return -ENOENT;
	rc = run_lock(ctx);
	if (rc)
		return rc;
	/* the last window's opens count as needed before anything moves */
	tier_trace_flush(ctx);
	/* a layer of the store is reclaimed whole (tier_move.c); one moving
	 * or moved is not walked */
	for (size_t i = 0; i < ctx->nlayers && !rc; i++)
		if (ctx->layers[i].home == TIER_HOME_NVM && !ctx->layers[i].owned &&
		    __atomic_load_n(&ctx->layers[i].place, __ATOMIC_ACQUIRE) == TIER_PLACE_NVM)
			rc = walk(&w, (int)i, "");
	rc2 = release_pending(&w);
	rc = rc ? rc : rc2;
	free(w.pend);
	if (!rc || rc == -ECANCELED)
		atomic_store(&ctx->wb_busy, w.res.busy);
	run_unlock(ctx);
	if (res)
		*res = w.res;
	return rc;
}

int tier_writeback_cold(struct tier_ctx *ctx, bool release)
{
	struct tier_wb_result r;
	int rc = tier_writeback_run(ctx, release, &r);

	return rc ? rc : (int)r.files;
}

int tier_writeback_file(struct tier_ctx *ctx, int layer, const char *relpath, bool release,
			struct tier_wb_result *res)
{
	struct wb_run w = { .ctx = ctx, .release = release, .force = true };
	char src[PATH_MAX];
	struct stat st;
	int rc;

	if (layer < 0 || (size_t)layer >= ctx->nlayers || !tier_path_ok(relpath) ||
	    ctx->layers[layer].home != TIER_HOME_NVM)
		return -EINVAL;
	if (!ctx->cfg.hdd_dir)
		return -ENOENT;
	if (snprintf(src, sizeof(src), "%s/%s", ctx->layers[layer].dir, relpath) >= (int)sizeof(src))
		return -ENAMETOOLONG;
	if (lstat(src, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	rc = run_lock(ctx);
	if (rc)
		return rc;
	rc = consider(&w, layer, relpath, &st);
	if (!rc)
		rc = release_pending(&w);
	free(w.pend);
	atomic_fetch_add(&ctx->wb_busy, w.res.busy);
	run_unlock(ctx);
	if (!rc && !w.res.files && !w.res.released && !w.res.busy)
		rc = -EALREADY;
	if (res)
		*res = w.res;
	return rc;
}

void tier_writeback_abort(struct tier_ctx *ctx)
{
	atomic_store(&ctx->wb_abort, true);
	tier_shutdown(ctx);
}

int tier_writeback_status(struct tier_ctx *ctx, struct tier_wb_status *s)
{
	memset(s, 0, sizeof(*s));
	pthread_rwlock_rdlock(&ctx->lock);
	for (uint64_t i = 0; i < ctx->root->capacity; i++) {
		const struct tier_pentry *e = &ctx->ent[i];

		if (e->used && e->wb) {
			s->files++;
			s->bytes += e->src_size;
		}
	}
	pthread_rwlock_unlock(&ctx->lock);
	s->busy = atomic_load(&ctx->wb_busy);
	return 0;
}

/* ---- after a crash ---- */

/* A temp of ours, not a committed copy of a file named like one. */
static bool stale_temp(struct tier_ctx *ctx, const char *lid, const char *rel, const char *name)
{
	struct tier_pentry *e;
	bool committed_copy;

	if (strncmp(name, WB_TMP_PREFIX, strlen(WB_TMP_PREFIX)) ||
	    strlen(name) != strlen(WB_TMP_PREFIX) + 6)
		return false;
	pthread_rwlock_rdlock(&ctx->lock);
	e = tier_index_find(ctx, lid, rel);
	committed_copy = e && e->wb;
	pthread_rwlock_unlock(&ctx->lock);
	return !committed_copy;
}

static int clean_dir(struct tier_ctx *ctx, const char *lid, const char *dir, const char *rel)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		char sub[PATH_MAX], subrel[PATH_MAX];

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name) >= (int)sizeof(sub) ||
		    snprintf(subrel, sizeof(subrel), "%s%s%s", rel, *rel ? "/" : "", de->d_name) >=
		    (int)sizeof(subrel))
			continue;
		if (de->d_type == DT_DIR) {
			int r = clean_dir(ctx, lid, sub, subrel);

			n += r > 0 ? r : 0;
		} else if (stale_temp(ctx, lid, subrel, de->d_name) &&
			   unlinkat(dirfd(d), de->d_name, 0) == 0) {
			n++;
		}
	}
	closedir(d);
	return n;
}

int tier_writeback_clean_layer(struct tier_ctx *ctx, size_t layer)
{
	char dir[PATH_MAX];

	if (!ctx->cfg.hdd_dir || ctx->layers[layer].home != TIER_HOME_NVM ||
	    snprintf(dir, sizeof(dir), "%s/writeback/%s", ctx->cfg.hdd_dir, ctx->layers[layer].id) >=
	    (int)sizeof(dir))
		return 0;
	return clean_dir(ctx, ctx->layers[layer].id, dir, "");
}

int tier_writeback_clean(struct tier_ctx *ctx)
{
	int n = 0;

	for (size_t i = 0; i < tier_layer_count(ctx); i++) {
		int r = tier_writeback_clean_layer(ctx, i);

		if (r < 0)
			return r;
		n += r;
	}
	return n;
}
