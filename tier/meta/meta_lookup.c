/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The request path of metadata images: lstat, readlink, xattrs, readdir and
 * the open-time check, answered from the mapped image of a layer without a
 * lock; misses and hits counted. The images themselves are made in meta.c.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "tier/meta/meta.h"
#include "tier/tier_trace.h"

static struct tier_meta_img *img_of(struct tier_ctx *ctx, int layer, dev_t *dev)
{
	struct tier_meta_state *s = ctx->meta;
	struct tier_meta_img *img;

	if (!s || layer < 0 || (size_t)layer >= s->n)
		return NULL;
	img = atomic_load_explicit(&s->l[layer].img, memory_order_acquire);
	if (img && dev)
		*dev = s->l[layer].dev;
	return img;
}

static long counted(struct tier_ctx *ctx, long r)
{
	/* a start walking its layers has not gone quiet */
	tier_note_start_activity(ctx);
	atomic_fetch_add_explicit(r == TIER_META_MISS ? &ctx->meta->misses : &ctx->meta->hits, 1,
				  memory_order_relaxed);
	return r;
}

/* The entry of @relpath: >= 0, -ENOENT, -ENOTDIR or MISS. */
static long entry_of(struct tier_ctx *ctx, int layer, const char *relpath,
		     struct tier_meta_img **imgp, dev_t *dev)
{
	struct tier_meta_img *img = img_of(ctx, layer, dev);
	long e;

	if (!ctx->meta)
		return TIER_META_MISS;
	if (!img) {
		tier_meta_note_miss(ctx, layer, relpath, false);
		return counted(ctx, TIER_META_MISS);
	}
	e = tier_meta_img_find(img, relpath);
	if (e == TIER_META_MISS)
		tier_meta_note_miss(ctx, layer, relpath, false);
	else if (e >= 0 && (img->ents[e].flags & TIER_META_E_FOREIGN))
		e = TIER_META_MISS;	/* another file system: never imaged */
	*imgp = img;
	return counted(ctx, e);
}

/* The opaque marker of a directory whose listing is not covered. */
static long marker_of(struct tier_ctx *ctx, int layer, const char *relpath)
{
	const char *slash = strrchr(relpath, '/');
	struct tier_meta_img *img = img_of(ctx, layer, NULL);
	char parent[PATH_MAX];
	long pe;

	if (!img || strcmp(slash ? slash + 1 : relpath, ".wh..wh..opq"))
		return TIER_META_MISS;
	snprintf(parent, sizeof(parent), "%.*s", slash ? (int)(slash - relpath) : 1,
		 slash ? relpath : ".");
	pe = tier_meta_img_find(img, parent);
	if (pe < 0 || !S_ISDIR(img->ents[pe].mode) ||
	    (img->ents[pe].flags & (TIER_META_E_FOREIGN | TIER_META_E_OPQ_MARKER)))
		return TIER_META_MISS;
	return -ENOENT;
}

int tier_meta_lstat(struct tier_ctx *ctx, int layer, const char *relpath, struct stat *st)
{
	struct tier_meta_img *img;
	dev_t dev = 0;
	long e = entry_of(ctx, layer, relpath, &img, &dev);

	if (e == TIER_META_MISS)
		return (int)marker_of(ctx, layer, relpath);
	if (e < 0)
		return (int)e;
	tier_meta_img_stat(img, e, dev, st);
	return 0;
}

ssize_t tier_meta_readlink(struct tier_ctx *ctx, int layer, const char *relpath,
			   char *buf, size_t size)
{
	struct tier_meta_img *img;
	long e = entry_of(ctx, layer, relpath, &img, NULL);
	const struct tier_meta_ent *ent;
	size_t n;

	if (e < 0)
		return e;
	ent = &img->ents[e];
	if (!S_ISLNK(ent->mode))
		return -EINVAL;
	n = ent->link_len < size ? ent->link_len : size;
	if (n)
		memcpy(buf, img->strs + ent->link_off, n);
	return (ssize_t)n;
}

static long xattr_entry(struct tier_ctx *ctx, int layer, const char *relpath,
			struct tier_meta_img **img)
{
	long e = entry_of(ctx, layer, relpath, img, NULL);

	if (e < 0)
		return e;
	if ((*img)->ents[e].flags & TIER_META_E_XATTR_NOTSUP)
		return -ENOTSUP;
	if ((*img)->ents[e].flags & TIER_META_E_XATTR_MISS)
		return TIER_META_MISS;
	return e;
}

ssize_t tier_meta_getxattr(struct tier_ctx *ctx, int layer, const char *relpath,
			   const char *name, void *buf, size_t size)
{
	struct tier_meta_img *img;
	long e = xattr_entry(ctx, layer, relpath, &img);
	const struct tier_meta_ent *ent;

	if (e < 0)
		return e;
	ent = &img->ents[e];
	for (uint32_t k = 0; k < ent->xattr_n; k++) {
		const struct tier_meta_xattr *x = &img->xattrs[ent->xattr_first + k];

		if (strcmp(img->strs + x->name_off, name))
			continue;
		if (!size)
			return x->val_len;
		if (size < x->val_len)
			return -ERANGE;
		memcpy(buf, img->strs + x->val_off, x->val_len);
		return x->val_len;
	}
	return -ENODATA;
}

ssize_t tier_meta_listxattr(struct tier_ctx *ctx, int layer, const char *relpath,
			    char *buf, size_t size)
{
	struct tier_meta_img *img;
	long e = xattr_entry(ctx, layer, relpath, &img);
	const struct tier_meta_ent *ent;
	size_t total = 0;

	if (e < 0)
		return e;
	ent = &img->ents[e];
	for (uint32_t k = 0; k < ent->xattr_n; k++)
		total += img->xattrs[ent->xattr_first + k].name_len + 1;
	if (!size)
		return (ssize_t)total;
	if (size < total)
		return -ERANGE;
	for (uint32_t k = 0, pos = 0; k < ent->xattr_n; k++) {
		const struct tier_meta_xattr *x = &img->xattrs[ent->xattr_first + k];

		memcpy(buf + pos, img->strs + x->name_off, x->name_len + 1);
		pos += x->name_len + 1;
	}
	return (ssize_t)total;
}

int tier_meta_readdir(struct tier_ctx *ctx, int layer, const char *relpath,
		      tier_meta_dirent_fn fn, void *arg)
{
	struct tier_meta_img *img;
	dev_t dev = 0;
	long e = entry_of(ctx, layer, relpath, &img, &dev);
	const struct tier_meta_dir *d;

	if (e < 0)
		return (int)e;
	if (!S_ISDIR(img->ents[e].mode))
		return -ENOTDIR;
	if (img->ents[e].dir == TIER_META_NONE) {
		/* counted as a hit above; the listing itself is a miss */
		atomic_fetch_sub_explicit(&ctx->meta->hits, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&ctx->meta->misses, 1, memory_order_relaxed);
		tier_meta_note_miss(ctx, layer, relpath, true);
		return TIER_META_MISS;
	}
	d = &img->dirs[img->ents[e].dir];
	for (uint32_t k = 0; k < d->count; k++) {
		struct stat st;
		int r;

		tier_meta_img_stat(img, d->first + k, dev, &st);
		r = fn(arg, img->strs + img->ents[d->first + k].name_off, &st);
		if (r)
			return r;
	}
	return 0;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_mode == b->st_mode && a->st_size == b->st_size &&
	       a->st_nlink == b->st_nlink && a->st_uid == b->st_uid && a->st_gid == b->st_gid &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

int tier_meta_check(struct tier_ctx *ctx, int layer, const char *relpath, const struct stat *real)
{
	struct tier_meta_img *img = img_of(ctx, layer, NULL);
	struct stat st;
	long e;

	if (!img)
		return 0;
	e = tier_meta_img_find(img, relpath);
	if (e == TIER_META_MISS || (e >= 0 && (img->ents[e].flags & TIER_META_E_FOREIGN)))
		return 0;
	if (e >= 0) {
		tier_meta_img_stat(img, e, real->st_dev, &st);
		if (same_file(&st, real))
			return 0;
	}
	tier_meta_drop_stale(ctx, (size_t)layer, img, relpath);
	return 1;
}
