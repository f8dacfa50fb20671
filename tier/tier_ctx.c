/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The tier context: open/close, layers and their identity, data lookup,
 * status and write-back of cold NVM-home files. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "tier/tier_private.h"
#include "tier/tier_util.h"
#include "tier/tier_index.h"
#include "tier/tier_trace.h"
#include "tier/tier_promote.h"

static int mkdir_p(const char *path)
{
	char tmp[PATH_MAX];

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int copy_config(struct tier_config *dst, const struct tier_config *src)
{
	*dst = *src;
	dst->nvm_dir = src->nvm_dir ? realpath(src->nvm_dir, NULL) : NULL;
	dst->hdd_dir = src->hdd_dir ? strdup(src->hdd_dir) : NULL;
	if (!dst->nvm_dir || (src->hdd_dir && !dst->hdd_dir))
		return src->nvm_dir ? -errno : -EINVAL;
	if (!dst->workers)
		dst->workers = 1;
	if (dst->index_size < PMEMOBJ_MIN_POOL)
		dst->index_size = PMEMOBJ_MIN_POOL;
	return 0;
}

static int ctx_start(struct tier_ctx *ctx, char *err, size_t errlen)
{
	int rc;

	if (asprintf(&ctx->objdir, "%s/%s", ctx->cfg.nvm_dir, TIER_OBJECTS_DIR) < 0)
		return -ENOMEM;
	rc = mkdir_p(ctx->objdir);
	if (rc) {
		tier_err(err, errlen, "%s: %s", ctx->objdir, strerror(-rc));
		return rc;
	}
	rc = tier_index_open(ctx, err, errlen);
	if (rc)
		return rc;
	rc = tier_index_clean_objects(ctx);
	if (rc < 0) {
		tier_err(err, errlen, "%s: %s", ctx->objdir, strerror(-rc));
		return rc;
	}
	rc = tier_trace_init(ctx);
	if (!rc && ctx->cfg.promote)
		rc = tier_workers_start(ctx);
	if (!rc)
		rc = tier_move_init(ctx);
	if (!rc && ctx->cfg.trace && ctx->cfg.trace_at_open)
		rc = tier_trace_start(ctx);
	if (rc)
		tier_err(err, errlen, "cannot start the tier threads: %s", strerror(-rc));
	return rc;
}

int tier_open(const struct tier_config *c, struct tier_ctx **out, char *err, size_t errlen)
{
	struct tier_ctx *ctx = calloc(1, sizeof(*ctx));
	int rc;

	*out = NULL;
	if (!ctx)
		return -ENOMEM;
	/* SHA-256 is all we ask of OpenSSL: its config file is one more cold
	 * file on the host disk before the mount is up, and mounts are started
	 * right when a container starts. No-op once OpenSSL is initialised. */
	OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
	pthread_rwlock_init(&ctx->lock, NULL);
	pthread_mutex_init(&ctx->start_lock, NULL);
	pthread_mutex_init(&ctx->qlock, NULL);
	pthread_cond_init(&ctx->qcond, NULL);
	pthread_cond_init(&ctx->idle, NULL);
	ctx->layers = calloc(TIER_MAX_LAYERS, sizeof(*ctx->layers));
	rc = ctx->layers ? copy_config(&ctx->cfg, c) : -ENOMEM;
	if (rc == -ENOMEM)
		tier_err(err, errlen, "%s", strerror(ENOMEM));
	else if (rc)
		tier_err(err, errlen, "nvm=%s: %s", c->nvm_dir ? c->nvm_dir : "(not set)",
			 c->nvm_dir ? strerror(-rc) : "the NVM directory is required");
	else
		rc = ctx_start(ctx, err, errlen);
	if (rc) {
		tier_close(ctx);
		return rc;
	}
	*out = ctx;
	return 0;
}

void tier_close(struct tier_ctx *ctx)
{
	if (!ctx)
		return;
	tier_shutdown(ctx);
	tier_move_fini(ctx);
	tier_meta_stop(ctx);
	tier_trace_fini(ctx);
	tier_workers_stop(ctx);
	tier_index_close(ctx);
	for (size_t i = 0; i < ctx->nlayers; i++) {
		free(ctx->layers[i].dir);
		if (ctx->layers[i].pin >= 0)
			close(ctx->layers[i].pin);
	}
	free(ctx->layers);
	free(ctx->objdir);
	tier_config_free(&ctx->cfg);
	pthread_rwlock_destroy(&ctx->lock);
	pthread_mutex_destroy(&ctx->start_lock);
	pthread_mutex_destroy(&ctx->qlock);
	pthread_cond_destroy(&ctx->qcond);
	pthread_cond_destroy(&ctx->idle);
	if (ctx->drain_lock_init) {
		pthread_mutex_destroy(&ctx->drain_lock);
		pthread_cond_destroy(&ctx->drain_cond);
	}
	free(ctx);
}

/* Physical bytes under @dir: what an NVM-home layer costs the budget. */
static uint64_t dir_bytes(int dirfd_)
{
	DIR *d = fdopendir(dirfd_);
	struct dirent *de;
	uint64_t sum = 0;

	if (!d) {
		close(dirfd_);
		return 0;
	}
	while ((de = readdir(d))) {
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISREG(st.st_mode))
			sum += (uint64_t)st.st_blocks * 512;
		else if (S_ISDIR(st.st_mode)) {
			int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (fd >= 0)
				sum += dir_bytes(fd);
		}
	}
	closedir(d);
	return sum;
}

static bool is_hex64(const char *s)
{
	if (strlen(s) != TIER_ID_LEN)
		return false;
	for (; *s; s++)
		if (!strchr("0123456789abcdef", *s))
			return false;
	return true;
}

/* chainID directory names are already stable identities; anything else
 * is named by where it is and which inode it is. */
static int layer_identity(const char *real, const struct stat *st, char *id)
{
	const char *base = strrchr(real, '/');
	char buf[PATH_MAX + 64];
	unsigned char md[32];
	int n;

	base = base ? base + 1 : real;
	if (is_hex64(base)) {
		memcpy(id, base, TIER_ID_LEN + 1);
		return 0;
	}
	n = snprintf(buf, sizeof(buf), "%s\n%llu\n%llu", real, (unsigned long long)st->st_dev,
		     (unsigned long long)st->st_ino);
	if (!EVP_Digest(buf, (size_t)n, md, NULL, EVP_sha256(), NULL))
		return -EIO;
	tier_hex(md, 32, id);
	return 0;
}

static bool under_dir(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return !strncmp(path, dir, n) && (path[n] == '/' || path[n] == '\0');
}

/* Under the write lock: the number of the layer with @id, or -1. The
 * record of a moved layer's NVM copy serves only the mounts that held it
 * before the move. */
static int layer_find_locked(const struct tier_ctx *ctx, const char *id)
{
	for (size_t i = 0; i < ctx->nlayers; i++) {
		int place = __atomic_load_n(&ctx->layers[i].place, __ATOMIC_ACQUIRE);

		if (!strcmp(ctx->layers[i].id, id) && place != TIER_PLACE_LEAVING &&
		    place != TIER_PLACE_MOVED)
			return (int)i;
	}
	return -1;
}

/* The root of an HDD layer stays open while the tier knows the layer: the
 * kernel keeps the inodes and dentries of the root and of every directory
 * above it, so the next mount of the layer resolves its path without
 * reading the disk, whatever the page cache lost meanwhile (the mount
 * invocation and the service both walk it). NVM layers need no such pin. */
static int pin_root(const struct tier_layer *l)
{
	return l->home == TIER_HOME_HDD ? open(l->dir, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
}

/* Under the write lock: append @l; its number or -ENOSPC. The caller has
 * just resolved @l->dir: pinning it reads nothing. */
int tier_layer_append_locked(struct tier_ctx *ctx, const struct tier_layer *l)
{
	size_t n = ctx->nlayers;

	if (n >= TIER_MAX_LAYERS)
		return -ENOSPC;
	ctx->layers[n] = *l;
	ctx->layers[n].pin = pin_root(l);
	/* readers index the array without the lock once they see the count */
	__atomic_store_n(&ctx->nlayers, n + 1, __ATOMIC_RELEASE);
	return (int)n;
}

/* Under the write lock: a new NVM-home layer takes room from the coldest
 * copies, and so does the first layer after a start with a smaller budget. */
static void make_room_for_layer(struct tier_ctx *ctx)
{
	uint64_t used = tier_nvm_used_locked(ctx), budget = ctx->cfg.nvm_size;

	if (budget && used > budget)
		tier_evict_locked(ctx, used - budget);
}

/* NVM/layers/<chainID>, listed in the registry: the store's, movable. */
static bool store_owns(const struct tier_ctx *ctx, const struct tier_layer *l)
{
	char layers[PATH_MAX], *base = strrchr(l->dir, '/');

	if (snprintf(layers, sizeof(layers), "%s/layers", ctx->cfg.nvm_dir) >= (int)sizeof(layers) ||
	    !base || strncmp(l->dir, layers, strlen(layers)) ||
	    base != l->dir + strlen(layers) || !is_hex64(base + 1))
		return false;
	return ctx->cfg.store && ctx->cfg.store->owns(ctx->cfg.nvm_dir, base + 1, l->dir) == 1;
}

int tier_layer_add(struct tier_ctx *ctx, const char *dir)
{
	struct tier_layer l = { 0 };
	struct stat st;
	bool added = false;
	int rc;

	l.dir = realpath(dir, NULL);
	if (!l.dir)
		return -errno;
	if (stat(l.dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		rc = errno ? -errno : -ENOTDIR;
		goto fail;
	}
	rc = layer_identity(l.dir, &st, l.id);
	if (rc)
		goto fail;
	l.home = under_dir(l.dir, ctx->cfg.nvm_dir) ? TIER_HOME_NVM : TIER_HOME_HDD;
	l.place = l.home == TIER_HOME_NVM ? TIER_PLACE_NVM : TIER_PLACE_HDD;
	l.owned = l.home == TIER_HOME_NVM && store_owns(ctx, &l);
	pthread_rwlock_wrlock(&ctx->lock);
	/* every mount of an image shares the tier layer of each of its layers */
	rc = layer_find_locked(ctx, l.id);
	if (rc < 0) {
		if (l.home == TIER_HOME_NVM)
			l.bytes = dir_bytes(open(l.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
		rc = tier_layer_append_locked(ctx, &l);
		added = rc >= 0;
		if (added)
			make_room_for_layer(ctx);
	}
	pthread_rwlock_unlock(&ctx->lock);
	if (added) {
		/* the first time the tier sees the layer: a crash's temps go,
		 * the layer is whole again, its image */
		tier_writeback_clean_layer(ctx, (size_t)rc);
		tier_writeback_unpunch(ctx, rc);
		tier_meta_layer_added(ctx, (size_t)rc);
		return rc;
	}
fail:
	free(l.dir);
	return rc;
}

uint64_t tier_trace_windows(struct tier_ctx *ctx)
{
	return atomic_load(&ctx->trace_gen);
}

size_t tier_layer_count(const struct tier_ctx *ctx)
{
	return __atomic_load_n(&ctx->nlayers, __ATOMIC_ACQUIRE);
}

static const struct tier_layer *layer_at(const struct tier_ctx *ctx, int layer)
{
	return layer >= 0 && (size_t)layer < __atomic_load_n(&ctx->nlayers, __ATOMIC_ACQUIRE) ?
	       &ctx->layers[layer] : NULL;
}

const char *tier_layer_id(const struct tier_ctx *ctx, int layer)
{
	return layer_at(ctx, layer) ? layer_at(ctx, layer)->id : NULL;
}

const char *tier_layer_dir(const struct tier_ctx *ctx, int layer)
{
	return layer_at(ctx, layer) ? layer_at(ctx, layer)->dir : NULL;
}

enum tier_home tier_layer_home(const struct tier_ctx *ctx, int layer)
{
	return layer_at(ctx, layer) ? layer_at(ctx, layer)->home : TIER_HOME_HDD;
}

uint64_t tier_layer_nvm_bytes(struct tier_ctx *ctx, int layer)
{
	uint64_t n = 0;

	pthread_rwlock_rdlock(&ctx->lock);
	if (layer_at(ctx, layer) && ctx->layers[layer].home == TIER_HOME_NVM)
		n = ctx->layers[layer].bytes;
	pthread_rwlock_unlock(&ctx->lock);
	return n;
}

static int writeback_path(const struct tier_ctx *ctx, const char *lid, const char *rel,
			  char *out, size_t n)
{
	if (!ctx->cfg.hdd_dir)
		return -ENOENT;
	if (snprintf(out, n, "%s/writeback/%s/%s", ctx->cfg.hdd_dir, lid, rel) >= (int)n)
		return -ENAMETOOLONG;
	return 0;
}

/* Under the read lock: what the index says about this file. */
static int lookup_locked(struct tier_ctx *ctx, const struct tier_layer *l, const char *rel,
			 const struct stat *st, char *out, size_t outlen, bool *stale)
{
	int place = __atomic_load_n(&l->place, __ATOMIC_ACQUIRE);
	struct tier_pentry *e;
	bool hole = st->st_size > 0 && st->st_blocks == 0;

	*stale = false;
	/* the NVM copy of a moved layer, still held: the index names the
	 * files of its HDD copy now */
	if (place == TIER_PLACE_LEAVING || place == TIER_PLACE_MOVED)
		return TIER_DATA_LAYER;
	e = tier_index_find(ctx, l->id, rel);
	if (!e)
		return TIER_DATA_LAYER;
	/* a whole file of an NVM-home layer is read where it is: a copy of it
	 * is made for its layer's HDD copy (a move) */
	if (e->state == TIER_ST_PROMOTED && l->home == TIER_HOME_NVM && !hole)
		return TIER_DATA_LAYER;
	if (e->state == TIER_ST_PROMOTED) {
		if (!tier_entry_matches(e, st)) {
			*stale = true;
			return TIER_DATA_LAYER;
		}
		tier_object_path(ctx, e->digest, out, outlen);
		return TIER_DATA_NVM_COPY;
	}
	/* only a layer file an earlier version punched (a hole) is read from
	 * its HDD copy; its blocks (and so its mtime) were changed then: size
	 * and inode identify it. Any other is whole: read the layer. */
	if (e->state == TIER_ST_WRITTEN_BACK && hole && e->src_size == (uint64_t)st->st_size &&
	    e->src_ino == st->st_ino && !writeback_path(ctx, l->id, rel, out, outlen))
		return TIER_DATA_HDD_COPY;
	return TIER_DATA_LAYER;
}

int tier_lookup_data(struct tier_ctx *ctx, int layer, const char *relpath,
		     const struct stat *st, char *out, size_t outlen)
{
	const struct tier_layer *l = layer_at(ctx, layer);
	struct tier_pentry *e;
	bool stale;
	int rc;

	if (!l || !relpath || !st)
		return -EINVAL;
	pthread_rwlock_rdlock(&ctx->lock);
	rc = lookup_locked(ctx, l, relpath, st, out, outlen, &stale);
	pthread_rwlock_unlock(&ctx->lock);
	if (!stale)
		return rc;
	pthread_rwlock_wrlock(&ctx->lock);
	e = tier_index_find(ctx, l->id, relpath);
	if (e && e->state == TIER_ST_PROMOTED && !tier_entry_matches(e, st))
		tier_index_drop_copy(ctx, e);
	pthread_rwlock_unlock(&ctx->lock);
	return TIER_DATA_LAYER;
}

int tier_status(struct tier_ctx *ctx, struct tier_status *s)
{
	memset(s, 0, sizeof(*s));
	pthread_rwlock_rdlock(&ctx->lock);
	s->nvm_used = tier_nvm_used_locked(ctx);
	s->meta_bytes = atomic_load(&ctx->meta_bytes);
	s->nvm_budget = ctx->cfg.nvm_size;
	s->objects = ctx->nobjs;
	s->cold_starts = ctx->root->cold_starts;
	for (uint64_t i = 0; i < ctx->root->capacity; i++) {
		const struct tier_pentry *e = &ctx->ent[i];

		if (!e->used)
			continue;
		s->indexed_files++;
		if (e->state == TIER_ST_PROMOTED) {
			s->promoted_files++;
			s->promoted_bytes += e->src_size;
		}
	}
	pthread_rwlock_unlock(&ctx->lock);
	pthread_mutex_lock(&ctx->qlock);
	s->queue_len = ctx->qlen + ctx->busy;
	pthread_mutex_unlock(&ctx->qlock);
	s->index_full = atomic_load(&ctx->index_full);
	s->trace_records = atomic_load(&ctx->trace_records);
	s->trace_dropped = atomic_load(&ctx->trace_dropped);
	s->trace_active = atomic_load(&ctx->trace_end) > tier_now_mono_ns();
	s->promote_on = ctx->cfg.promote;
	s->scrubs = atomic_load(&ctx->scrubs);
	s->bad_copies = atomic_load(&ctx->scrub_dropped);
	return 0;
}
