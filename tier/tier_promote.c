/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Promotion: background workers copy hot files of HDD layers into
 * content-addressed objects on NVM (NVM/objects/<sha256>), earliest-needed
 * first. A copy is a temp file, fsync, rename, and only then an index
 * commit, so a crash leaves at worst an unnamed object that the next open
 * removes. The NVM budget is enforced here: room is made by evicting
 * strictly colder files, or the file is not promoted.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>
#include "tier/tier_private.h"
#include "tier/tier_util.h"
#include "tier/tier_index.h"
#include "tier/tier_promote.h"
#include "tier/tier_scrub.h"
#include "tier/range/range.h"

#define QSET_SIZE 4096

static struct tier_qitem **qset_slot(struct tier_ctx *ctx, const struct tier_qitem *it)
{
	return &ctx->qset[it->hash % QSET_SIZE];
}

/* Under qlock: the same file queued or being copied. */
static bool qset_has(struct tier_ctx *ctx, const struct tier_qitem *it)
{
	for (struct tier_qitem *o = *qset_slot(ctx, it); o; o = o->hnext)
		if (o->hash == it->hash && o->layer == it->layer && !strcmp(o->path, it->path))
			return true;
	return false;
}

static void qset_remove(struct tier_ctx *ctx, struct tier_qitem *it)
{
	for (struct tier_qitem **pp = qset_slot(ctx, it); *pp; pp = &(*pp)->hnext)
		if (*pp == it) {
			*pp = it->hnext;
			return;
		}
}

static void qitem_free(struct tier_qitem *it)
{
	if (it)
		free(it->path);
	free(it);
}

/* Under qlock: insert by order (earliest-needed first). */
static void queue_insert(struct tier_ctx *ctx, struct tier_qitem *it)
{
	struct tier_qitem **pp;

	if (!ctx->qtail || ctx->qtail->order <= it->order) {
		if (ctx->qtail)
			ctx->qtail->next = it;
		else
			ctx->qhead = it;
		ctx->qtail = it;
	} else {
		for (pp = &ctx->qhead; *pp && (*pp)->order <= it->order; pp = &(*pp)->next)
			;
		it->next = *pp;
		*pp = it;
	}
	ctx->qlen++;
}

/* A file already queued, or being copied, is not queued again: two
 * starts asking for it must not make two copies of it at once. */
int tier_queue_push(struct tier_ctx *ctx, int layer, const char *path, uint64_t order)
{
	struct tier_qitem *it = calloc(1, sizeof(*it));
	int rc = 0;

	if (!it || !(it->path = strdup(path))) {
		free(it);
		return -ENOMEM;
	}
	it->layer = layer;
	it->order = order;
	it->hash = tier_hash_key("", path) + (uint64_t)layer;
	pthread_mutex_lock(&ctx->qlock);
	if (!ctx->qset && !(ctx->qset = calloc(QSET_SIZE, sizeof(*ctx->qset))))
		rc = -ENOMEM;
	else if (ctx->stopping)
		rc = -ESHUTDOWN;
	else if (qset_has(ctx, it))
		rc = 1;
	if (rc) {
		pthread_mutex_unlock(&ctx->qlock);
		qitem_free(it);
		return rc < 0 ? rc : 0;
	}
	it->hnext = *qset_slot(ctx, it);
	*qset_slot(ctx, it) = it;
	queue_insert(ctx, it);
	pthread_cond_signal(&ctx->qcond);
	pthread_mutex_unlock(&ctx->qlock);
	return 0;
}

uint64_t tier_nvm_used_locked(struct tier_ctx *ctx)
{
	uint64_t used = ctx->root->object_bytes + atomic_load(&ctx->meta_bytes);

	for (size_t i = 0; i < ctx->nlayers; i++)
		if (ctx->layers[i].home == TIER_HOME_NVM)
			used += ctx->layers[i].bytes;
	return used;
}

static bool colder(const struct tier_pentry *a, const struct tier_pentry *b)
{
	if (a->heat != b->heat)
		return a->heat < b->heat;
	return a->last_time < b->last_time;
}

static int cmp_cold(const void *pa, const void *pb)
{
	const struct tier_pentry *a = *(struct tier_pentry *const *)pa;
	const struct tier_pentry *b = *(struct tier_pentry *const *)pb;

	return colder(a, b) ? -1 : colder(b, a) ? 1 : 0;
}

/* Drop copies, coldest first, until @bytes are freed; only files colder
 * than @than when it is given. Returns the bytes freed. */
static int64_t evict_colder(struct tier_ctx *ctx, uint64_t bytes, const struct tier_pentry *than)
{
	struct tier_pentry **v = malloc(ctx->root->capacity * sizeof(*v));
	size_t n = 0;
	uint64_t freed = 0;

	if (!v)
		return -ENOMEM;
	for (uint64_t i = 0; i < ctx->root->capacity; i++) {
		struct tier_pentry *e = &ctx->ent[i];

		if (e->used && (e->state == TIER_ST_PROMOTED || e->state == TIER_ST_RANGE) &&
		    (!than || colder(e, than)))
			v[n++] = e;
	}
	qsort(v, n, sizeof(*v), cmp_cold);
	for (size_t i = 0; i < n && freed < bytes; i++) {
		uint64_t before = ctx->root->object_bytes;

		if (tier_index_drop_copy(ctx, v[i]) == 0)
			freed += before - ctx->root->object_bytes;
	}
	free(v);
	return (int64_t)freed;
}

int64_t tier_evict_locked(struct tier_ctx *ctx, uint64_t bytes)
{
	return evict_colder(ctx, bytes, NULL);
}

/* Room for @need more bytes within the budget, by evicting files colder
 * than @than; -ENOSPC when there is not enough. */
int tier_make_room_locked(struct tier_ctx *ctx, uint64_t need, const struct tier_pentry *than)
{
	uint64_t used = tier_nvm_used_locked(ctx), budget = ctx->cfg.nvm_size;

	if (!budget)
		return 0;
	if (used + need > budget)
		evict_colder(ctx, used + need - budget, than);
	return tier_nvm_used_locked(ctx) + need > budget ? -ENOSPC : 0;
}

int64_t tier_evict(struct tier_ctx *ctx, uint64_t bytes)
{
	int64_t freed;

	pthread_rwlock_wrlock(&ctx->lock);
	freed = evict_colder(ctx, bytes, NULL);
	pthread_rwlock_unlock(&ctx->lock);
	return freed;
}

int tier_evict_file(struct tier_ctx *ctx, int layer, const char *relpath)
{
	struct tier_pentry *e;
	int rc = -ENOENT;

	if (layer < 0 || (size_t)layer >= ctx->nlayers || !relpath)
		return -EINVAL;
	pthread_rwlock_wrlock(&ctx->lock);
	e = tier_index_find(ctx, ctx->layers[layer].id, relpath);
	if (e && (e->state == TIER_ST_PROMOTED || e->state == TIER_ST_RANGE))
		rc = tier_index_drop_copy(ctx, e);
	pthread_rwlock_unlock(&ctx->lock);
	return rc;
}

bool tier_cancelled(struct tier_ctx *ctx)
{
	return atomic_load_explicit(&ctx->cancel, memory_order_relaxed);
}

void tier_shutdown(struct tier_ctx *ctx)
{
	if (ctx)
		atomic_store(&ctx->cancel, true);
}

/* Copy @in to a new temp file in the objects dir, hashing on the way.
 * -ECANCELED at unmount: the temp is removed, the next mount copies
 * again. */
static int copy_hashed(struct tier_ctx *ctx, int in, char *tmp, size_t tmplen, uint8_t *digest)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	char buf[1 << 16];
	uint64_t done = 0, started = 0;
	ssize_t r = 0;
	int out, rc = 0;

	snprintf(tmp, tmplen, "%s/tmp.XXXXXX", ctx->objdir);
	out = mkostemp(tmp, O_CLOEXEC);
	if (out < 0 || !md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		rc = out < 0 ? -errno : -ENOMEM;
		goto done;
	}
	while ((r = read(in, buf, sizeof(buf))) > 0) {
		if (tier_cancelled(ctx)) {
			rc = -ECANCELED;
			goto done;
		}
		for (ssize_t off = 0; off < r;) {
			ssize_t w = write(out, buf + off, (size_t)(r - off));

			if (w < 0) {
				rc = -errno;
				goto done;
			}
			off += w;
		}
		EVP_DigestUpdate(md, buf, (size_t)r);
		done += (uint64_t)r;
		if (done == (uint64_t)r)
			tier_fault("promote-copying");
		tier_write_behind(out, done, &started);
	}
	if (r < 0)
		rc = -errno;
	else if (fsync(out) < 0)
		rc = -errno;
	else
		EVP_DigestFinal_ex(md, digest, NULL);
done:
	EVP_MD_CTX_free(md);
	if (out >= 0)
		close(out);
	if (rc && out >= 0)
		unlink(tmp);
	return rc;
}

/* The copy as it reached NVM, read back, before the index names it: what
 * the device stored must hash as what was read from the layer. */
static int check_written(struct tier_ctx *ctx, int layer, const char *rel, const char *tmp,
			 const uint8_t *digest)
{
	int rc = tier_copy_check(ctx, tmp, digest, NULL, 0, 0);

	if (rc && rc != -ECANCELED)
		tier_copy_bad(ctx, ctx->layers[layer].id, rel, tmp, rc, "right after the copy");
	return rc == -ECANCELED || rc == -ENOMEM ? rc : rc ? -EBADMSG : 0;
}

/* The same source file, unchanged, as far as a copy cares: a rewrite in
 * place changes the mtime, a replacement the inode. */
bool tier_same_source(const struct stat *a, const struct stat *b)
{
	return a->st_size == b->st_size && a->st_ino == b->st_ino &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

bool tier_entry_matches(const struct tier_pentry *e, const struct stat *st)
{
	/* releasing a written-back file's blocks changes its mtime until the
	 * old one is set back (or for good after a crash in between): size
	 * and inode identify it */
	if (e->wb)
		return e->src_size == (uint64_t)st->st_size && e->src_ino == st->st_ino;
	return e->src_size == (uint64_t)st->st_size && e->src_ino == st->st_ino &&
	       e->src_mtime_ns == (uint64_t)st->st_mtim.tv_sec * 1000000000ULL +
				  (uint64_t)st->st_mtim.tv_nsec;
}

/* Under the write lock: make room, rename the temp into place, commit. */
static int commit_copy(struct tier_ctx *ctx, int layer, const char *rel, const char *tmp,
		       const uint8_t *digest, const struct stat *st)
{
	const char *lid = ctx->layers[layer].id;
	struct tier_pentry *e = tier_index_find(ctx, lid, rel);
	char obj[PATH_MAX];
	uint64_t used, budget = ctx->cfg.nvm_size;
	int rc;

	/* no entry: queued from a hot list or by hand, never traced here */
	if (!e && (rc = tier_index_ensure(ctx, lid, rel, &e)))
		return rc;
	if (e->state == TIER_ST_PROMOTED && tier_entry_matches(e, st) && !memcmp(e->digest, digest, 32))
		return 0;	/* another worker got there first */
	if (e->state == TIER_ST_PROMOTED || e->state == TIER_ST_RANGE)
		tier_index_drop_copy(ctx, e);	/* stale, or ranges only */
	tier_object_path(ctx, digest, obj, sizeof(obj));
	if (!tier_obj_find(ctx, digest)) {
		used = tier_nvm_used_locked(ctx);
		if (budget && used + (uint64_t)st->st_size > budget)
			evict_colder(ctx, used + (uint64_t)st->st_size - budget, e);
		if (budget && tier_nvm_used_locked(ctx) + (uint64_t)st->st_size > budget)
			return -ENOSPC;
		if (rename(tmp, obj) < 0)
			return -errno;
		rc = tier_fsync_dir(ctx->objdir);
		if (rc)
			return rc;
		tier_fault("promote-renamed");
	}
	return tier_index_set_promoted(ctx, e, digest, st);
}

static bool already_promoted(struct tier_ctx *ctx, int layer, const char *rel, const struct stat *st)
{
	struct tier_pentry *e;
	bool yes;

	pthread_rwlock_rdlock(&ctx->lock);
	e = tier_index_find(ctx, ctx->layers[layer].id, rel);
	yes = e && e->state == TIER_ST_PROMOTED && tier_entry_matches(e, st);
	pthread_rwlock_unlock(&ctx->lock);
	return yes;
}

/* A written-back file of an NVM-home layer needed again: its layer file
 * may be a hole now, so the object is copied from the HDD copy, and the
 * layer file only names the entry (size and inode). */
static int promote_written_back(struct tier_ctx *ctx, int layer, const char *rel)
{
	const struct tier_layer *l = &ctx->layers[layer];
	char src[PATH_MAX], hdd[PATH_MAX], tmp[PATH_MAX];
	struct stat st, st2, h1, h2;
	struct tier_pentry *e;
	uint8_t digest[32];
	bool wb;
	int fd, rc;

	if (!ctx->cfg.hdd_dir ||
	    snprintf(src, sizeof(src), "%s/%s", l->dir, rel) >= (int)sizeof(src) ||
	    snprintf(hdd, sizeof(hdd), "%s/writeback/%s/%s", ctx->cfg.hdd_dir, l->id, rel) >=
	    (int)sizeof(hdd) || lstat(src, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	pthread_rwlock_rdlock(&ctx->lock);
	e = tier_index_find(ctx, l->id, rel);
	wb = e && e->wb && e->state == TIER_ST_WRITTEN_BACK && tier_entry_matches(e, &st);
	pthread_rwlock_unlock(&ctx->lock);
	/* a whole layer file is on NVM already: only a hole an earlier
	 * version punched needs a copy */
	if (!wb || st.st_blocks || (ctx->cfg.nvm_size && (uint64_t)st.st_size > ctx->cfg.nvm_size))
		return 0;
	fd = open(hdd, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = fstat(fd, &h1) < 0 ? -errno : h1.st_size != st.st_size ? -ESTALE : 0;
	if (!rc)
		rc = copy_hashed(ctx, fd, tmp, sizeof(tmp), digest);
	if (!rc && (fstat(fd, &h2) < 0 || !tier_same_source(&h1, &h2) || lstat(src, &st2) < 0 ||
		    st2.st_size != st.st_size || st2.st_ino != st.st_ino)) {
		unlink(tmp);
		rc = -EAGAIN;
	}
	close(fd);
	if (!rc && (rc = check_written(ctx, layer, rel, tmp, digest)))
		unlink(tmp);
	if (rc)
		return rc;
	pthread_rwlock_wrlock(&ctx->lock);
	rc = commit_copy(ctx, layer, rel, tmp, digest, &st);
	pthread_rwlock_unlock(&ctx->lock);
	unlink(tmp);
	return rc;
}

static int promote_one(struct tier_ctx *ctx, int layer, const char *rel)
{
	char tmp[PATH_MAX];
	uint8_t digest[32];
	struct stat st, st2;
	int fd, rc;

	if (ctx->layers[layer].home == TIER_HOME_NVM)
		return promote_written_back(ctx, layer, rel);
	fd = tier_layer_open(ctx->layers[layer].dir, rel, O_RDONLY | O_NOFOLLOW);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || already_promoted(ctx, layer, rel, &st)) {
		close(fd);
		return 0;
	}
	/* big files: only the ranges starts read */
	if (tier_range_big(ctx, (uint64_t)st.st_size)) {
		rc = tier_range_promote(ctx, layer, rel, fd, &st);
		close(fd);
		return rc;
	}
	if (ctx->cfg.nvm_size && (uint64_t)st.st_size > ctx->cfg.nvm_size) {
		close(fd);
		return 0;
	}
	rc = copy_hashed(ctx, fd, tmp, sizeof(tmp), digest);
	if (!rc && (fstat(fd, &st2) < 0 || !tier_same_source(&st, &st2)))
		rc = -EAGAIN;	/* changed while copying: do not keep it */
	close(fd);
	if (!rc)
		rc = check_written(ctx, layer, rel, tmp, digest);
	if (rc) {
		if (rc == -EAGAIN || rc == -EBADMSG)
			unlink(tmp);
		return rc;
	}
	tier_fault("promote-written");
	pthread_rwlock_wrlock(&ctx->lock);
	rc = commit_copy(ctx, layer, rel, tmp, digest, &st);
	pthread_rwlock_unlock(&ctx->lock);
	if (!rc)
		tier_fault("promote-committed");
	unlink(tmp);	/* gone after rename; removes it when not renamed */
	return rc;
}

static void *worker_main(void *arg)
{
	struct tier_ctx *ctx = arg;
	struct tier_qitem *it;

	pthread_mutex_lock(&ctx->qlock);
	for (;;) {
		while (!ctx->stopping && !ctx->qhead)
			pthread_cond_wait(&ctx->qcond, &ctx->qlock);
		if (ctx->stopping)
			break;
		it = ctx->qhead;
		ctx->qhead = it->next;
		if (!ctx->qhead)
			ctx->qtail = NULL;
		ctx->qlen--;
		ctx->busy++;
		pthread_mutex_unlock(&ctx->qlock);
		if (!tier_cancelled(ctx))
			promote_one(ctx, it->layer, it->path);
		pthread_mutex_lock(&ctx->qlock);
		qset_remove(ctx, it);
		qitem_free(it);
		ctx->busy--;
		if (!ctx->qhead && !ctx->busy)
			pthread_cond_broadcast(&ctx->idle);
	}
	pthread_mutex_unlock(&ctx->qlock);
	return NULL;
}

int tier_workers_start(struct tier_ctx *ctx)
{
	ctx->workers = calloc(ctx->cfg.workers, sizeof(*ctx->workers));
	if (!ctx->workers)
		return -ENOMEM;
	for (unsigned i = 0; i < ctx->cfg.workers; i++) {
		if (pthread_create(&ctx->workers[i], NULL, worker_main, ctx))
			return -EAGAIN;
		ctx->nworkers++;
	}
	return 0;
}

void tier_workers_stop(struct tier_ctx *ctx)
{
	struct tier_qitem *it;

	tier_shutdown(ctx);
	pthread_mutex_lock(&ctx->qlock);
	ctx->stopping = true;
	pthread_cond_broadcast(&ctx->qcond);
	pthread_mutex_unlock(&ctx->qlock);
	for (unsigned i = 0; i < ctx->nworkers; i++)
		pthread_join(ctx->workers[i], NULL);
	free(ctx->workers);
	ctx->workers = NULL;
	ctx->nworkers = 0;
	while ((it = ctx->qhead)) {
		ctx->qhead = it->next;
		qitem_free(it);
	}
	free(ctx->qset);
	ctx->qset = NULL;
	ctx->qtail = NULL;
	ctx->qlen = 0;
	pthread_cond_broadcast(&ctx->idle);
}

int tier_wait_idle(struct tier_ctx *ctx, int timeout_ms)
{
	struct timespec ts;
	int rc = 0;

	tier_trace_flush(ctx);
	clock_gettime(CLOCK_REALTIME, &ts);
	if (timeout_ms >= 0) {
		ts.tv_sec += timeout_ms / 1000;
		ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&ctx->qlock);
	while ((ctx->qhead && ctx->nworkers) || ctx->busy) {
		if (timeout_ms < 0)
			pthread_cond_wait(&ctx->idle, &ctx->qlock);
		else if (pthread_cond_timedwait(&ctx->idle, &ctx->qlock, &ts) == ETIMEDOUT) {
			rc = -ETIMEDOUT;
			break;
		}
	}
	pthread_mutex_unlock(&ctx->qlock);
	return rc;
}

int tier_promote_file(struct tier_ctx *ctx, int layer, const char *relpath)
{
	if (layer < 0 || (size_t)layer >= ctx->nlayers || !tier_path_ok(relpath))
		return -EINVAL;
	return tier_queue_push(ctx, layer, relpath, 0);
}

/* A range copy that holds every traced range already: queueing it would
 * only make a worker read its source on the HDD to learn that. */
static bool range_copy_done(struct tier_ctx *ctx, const struct tier_pentry *e)
{
	struct tier_prange *rec;

	if (e->state != TIER_ST_RANGE)
		return false;
	rec = tier_range_rec(ctx, e);
	return rec && rec->copy_n &&
	       tier_extents_cover(pmemobj_direct(rec->copy), rec->copy_n,
				  pmemobj_direct(rec->traced), rec->traced_n);
}

int tier_promote_hot(struct tier_ctx *ctx)
{
	int queued = 0, rc = 0;

	pthread_rwlock_rdlock(&ctx->lock);
	for (uint64_t i = 0; i < ctx->root->capacity && !rc; i++) {
		struct tier_pentry *e = &ctx->ent[i];

		if (!e->used || !e->heat || e->state == TIER_ST_PROMOTED ||
		    range_copy_done(ctx, e))
			continue;
		for (size_t l = 0; l < ctx->nlayers; l++) {
			/* NVM-home files only when written back and needed again */
			if ((ctx->layers[l].home != TIER_HOME_HDD && !e->wb) ||
			    strcmp(ctx->layers[l].id, e->layer))
				continue;
			rc = tier_queue_push(ctx, (int)l, tier_entry_path(e), e->order);
			queued += !rc;
		}
	}
	pthread_rwlock_unlock(&ctx->lock);
	return rc ? rc : queued;
}
