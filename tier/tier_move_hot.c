/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The files traced starts needed stay on NVM when their layer moves to
 * HDD: before the switch each gets a content-addressed copy in
 * NVM/objects, read from the layer's NVM copy (the fast one; the HDD copy
 * was compared with it) and committed under the identity (inode, size,
 * mtime) of the file in the HDD copy, which mounts read after the switch.
 * Mounts still reading the NVM copy read it, not these copies.
 *
 * Room is made within the budget as if the layer's NVM copy were gone
 * already: it goes within moments, and NVM use then never rises above
 * what it was when the move began.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>
#include "tier/tier_move.h"

struct hot_file {
	char *rel;
};

/* The traced files of layer @id (a copy made by an earlier attempt may
 * name files of an HDD copy that is gone). */
static size_t list_hot(struct tier_ctx *ctx, const char *id, struct hot_file **out)
{
	struct hot_file *v = NULL;
	size_t n = 0, cap = 0;

	pthread_rwlock_rdlock(&ctx->lock);
	for (uint64_t i = 0; i < ctx->root->capacity; i++) {
		const struct tier_pentry *e = &ctx->ent[i];

		if (!e->used || !e->heat || strcmp(e->layer, id))
			continue;
		if (n == cap) {
			struct hot_file *nv = realloc(v, (cap = cap ? 2 * cap : 64) * sizeof(*v));

			if (!nv)
				break;
			v = nv;
		}
		v[n].rel = strdup(tier_entry_path(e));
		n += v[n].rel != NULL;
	}
	pthread_rwlock_unlock(&ctx->lock);
	*out = v;
	return n;
}

/* @in to a new temp file in the objects directory, hashed on the way. */
static int copy_hashed(struct tier_ctx *ctx, int in, char *tmp, size_t len, uint8_t *digest)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	char *buf = malloc(1 << 16);
	ssize_t r = 0;
	int out = -1, rc = 0;

	snprintf(tmp, len, "%s/tmp.XXXXXX", ctx->objdir);
	if (!md || !buf || !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
		rc = -ENOMEM;
	else if ((out = mkostemp(tmp, O_CLOEXEC)) < 0)
		rc = -errno;
	while (!rc && (r = read(in, buf, 1 << 16)) > 0) {
		if (write(out, buf, (size_t)r) != r)
			rc = -errno ? -errno : -EIO;
		else if (!EVP_DigestUpdate(md, buf, (size_t)r))
			rc = -EIO;
		else if (tier_cancelled(ctx))
			rc = -ECANCELED;
	}
	if (!rc && r < 0)
		rc = -errno;
	if (!rc && (fsync(out) || !EVP_DigestFinal_ex(md, digest, NULL)))
		rc = -EIO;
	if (out >= 0)
		close(out);
	if (rc && out >= 0)
		unlink(tmp);
	EVP_MD_CTX_free(md);
	free(buf);
	return rc;
}

/* Under the write lock: room for @need as if @layer's NVM copy were gone. */
static int room_without(struct tier_ctx *ctx, int layer, uint64_t need,
			const struct tier_pentry *e)
{
	struct tier_layer *l = &ctx->layers[layer];
	uint64_t saved = l->bytes;
	int rc;

	l->bytes = 0;
	rc = tier_make_room_locked(ctx, need, e);
	l->bytes = saved;
	return rc;
}

/* Under the write lock: name the object and commit the entry. */
static int commit_hot(struct tier_ctx *ctx, int layer, const char *rel, const char *tmp,
		      const uint8_t *digest, const struct stat *hst)
{
	struct tier_pentry *e = tier_index_find(ctx, ctx->layers[layer].id, rel);
	char obj[PATH_MAX];
	int rc;

	if (!e || (e->state == TIER_ST_PROMOTED && tier_entry_matches(e, hst)))
		return 0;	/* gone from the index, or copied meanwhile */
	if (e->state == TIER_ST_PROMOTED || e->state == TIER_ST_RANGE)
		tier_index_drop_copy(ctx, e);	/* of an earlier HDD copy */
	if (!tier_obj_find(ctx, digest)) {
		rc = room_without(ctx, layer, (uint64_t)hst->st_size, e);
		if (rc)
			return rc;
		tier_object_path(ctx, digest, obj, sizeof(obj));
		if (rename(tmp, obj))
			return -errno;
		rc = tier_fsync_dir(ctx->objdir);
		if (rc)
			return rc;
	}
	return tier_index_set_promoted(ctx, e, digest, hst);
}

static bool copied_already(struct tier_ctx *ctx, int layer, const char *rel,
			   const struct stat *hst)
{
	struct tier_pentry *e;
	bool yes;

	pthread_rwlock_rdlock(&ctx->lock);
	e = tier_index_find(ctx, ctx->layers[layer].id, rel);
	yes = e && e->state == TIER_ST_PROMOTED && tier_entry_matches(e, hst);
	pthread_rwlock_unlock(&ctx->lock);
	return yes;
}

static int hot_one(struct tier_ctx *ctx, int layer, const char *nvm, const char *hdd,
		   const char *rel)
{
	char tmp[PATH_MAX];
	uint8_t digest[32];
	struct stat hst, nst;
	int fd, rc, h = tier_layer_open(hdd, rel, O_PATH | O_NOFOLLOW);

	if (h < 0)
		return h;
	rc = fstat(h, &hst) ? -errno : 0;
	close(h);
	if (rc || !S_ISREG(hst.st_mode) || !hst.st_size ||
	    (ctx->cfg.nvm_size && (uint64_t)hst.st_size > ctx->cfg.nvm_size))
		return rc ? rc : 1;	/* nothing to copy */
	if (copied_already(ctx, layer, rel, &hst))
		return 1;
	fd = tier_layer_open(nvm, rel, O_RDONLY | O_NOFOLLOW);
	if (fd < 0)
		return fd;
	rc = fstat(fd, &nst) ? -errno : nst.st_size != hst.st_size ? -ESTALE : 0;
	if (!rc)
		rc = copy_hashed(ctx, fd, tmp, sizeof(tmp), digest);
	close(fd);
	if (rc)
		return rc;
	pthread_rwlock_wrlock(&ctx->lock);
	rc = commit_hot(ctx, layer, rel, tmp, digest, &hst);
	pthread_rwlock_unlock(&ctx->lock);
	unlink(tmp);	/* gone after the rename; removes a copy not kept */
	return rc;
}

uint64_t tier_move_hot_copies(struct tier_ctx *ctx, int layer, const char *nvm, const char *hdd)
{
	struct hot_file *v;
	size_t n = list_hot(ctx, ctx->layers[layer].id, &v);
	uint64_t made = 0;

	for (size_t i = 0; i < n; i++) {
		/* one that does not fit or fails is promoted later, from HDD */
		if (!tier_cancelled(ctx) && !hot_one(ctx, layer, nvm, hdd, v[i].rel))
			made++;
		free(v[i].rel);
	}
	free(v);
	tier_fault("move-hot");
	return made;
}
