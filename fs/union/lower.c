/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Reading a layer's metadata. The union asks here instead of calling
 * *at() on a layer's fd: for an HDD layer with a metadata image on NVM
 * (layer_meta=on) the image answers whatever it covers, so that the path
 * walks of a cold start cost no HDD reads; everything else, and the upper
 * layer always, gets the real call. The answers are the same either way:
 * st_dev is the layer's current device, as the real lstat gives it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs/union/union.h"
#include "fs/union/tier_glue.h"

/* The tier context and tier layer of union layer @layer, when its
 * metadata may come from an image. */
static struct tier_ctx *meta_of(struct nl_mount *m, int layer, int *tl)
{
	struct nl_tier *t = m->tier;
	struct tier_ctx *ctx;

	if (!t || !t->cfg.layer_meta || m->layers[layer].upper || layer >= t->n_layers)
		return NULL;
	ctx = __atomic_load_n(&t->ctx, __ATOMIC_ACQUIRE);
	*tl = t->layer_of[layer];
	return *tl >= 0 ? ctx : NULL;
}

int nl_lower_lstat(struct nl_mount *m, int layer, const char *path, struct stat *st)
{
	struct tier_ctx *ctx;
	int tl, r;

	ctx = meta_of(m, layer, &tl);
	if (ctx) {
		r = tier_meta_lstat(ctx, tl, path, st);
		if (r != TIER_META_MISS)
			return r;
	}
	return nl_lstat_beneath(m->layers[layer].fd, path, st);
}

bool nl_lower_imaged(struct nl_mount *m, int layer)
{
	int tl;

	return meta_of(m, layer, &tl) != NULL;
}

/*
 * lstat of @name in the directory node @dir (@path is the entry's path):
 * from the image when it covers @path, else one fstatat on the node's kept
 * handle of that directory, with no walk from the layer's root.
 */
int nl_lower_lstat_in(struct nl_mount *m, int layer, struct nl_node *dir, const char *name,
		      const char *path, struct stat *st)
{
	struct tier_ctx *ctx;
	bool owned;
	int tl, r, dfd;

	ctx = meta_of(m, layer, &tl);
	if (ctx) {
		r = tier_meta_lstat(ctx, tl, path, st);
		if (r != TIER_META_MISS)
			return r;
	}
	dfd = nl_node_dirfd(m, dir, layer, &owned);
	if (dfd < 0)
		return dfd;
	r = fstatat(dfd, name, st, AT_SYMLINK_NOFOLLOW) ? -errno : 0;
	if (owned)
		close(dfd);
	return r;
}

ssize_t nl_lower_readlink(struct nl_mount *m, int layer, const char *path, char *buf,
			  size_t size)
{
	int tl;
	struct tier_ctx *ctx = meta_of(m, layer, &tl);
	ssize_t n = ctx ? tier_meta_readlink(ctx, tl, path, buf, size) : TIER_META_MISS;

	return n != TIER_META_MISS ? n :
	       nl_readlink_beneath(m->layers[layer].fd, path, buf, size);
}

ssize_t nl_lower_getxattr(struct nl_mount *m, int layer, const char *path, const char *name,
			  void *buf, size_t size)
{
	int tl;
	struct tier_ctx *ctx = meta_of(m, layer, &tl);
	ssize_t n = ctx ? tier_meta_getxattr(ctx, tl, path, name, buf, size) : TIER_META_MISS;

	return n != TIER_META_MISS ? n :
	       nl_getxattr_beneath(m->layers[layer].fd, path, name, buf, size);
}

ssize_t nl_lower_listxattr(struct nl_mount *m, int layer, const char *path, char *buf,
			   size_t size)
{
	int tl;
	struct tier_ctx *ctx = meta_of(m, layer, &tl);
	ssize_t n = ctx ? tier_meta_listxattr(ctx, tl, path, buf, size) : TIER_META_MISS;

	return n != TIER_META_MISS ? n :
	       nl_listxattr_beneath(m->layers[layer].fd, path, buf, size);
}

struct image_dirent {
	nl_lower_dirent_fn fn;
	void *arg;
};

static int from_image(void *arg, const char *name, const struct stat *st)
{
	struct image_dirent *d = arg;

	return d->fn(d->arg, name, st->st_ino, (unsigned char)IFTODT(st->st_mode),
		     nl_is_whiteout(st));
}

/* Only a character device can be a whiteout; others need no lstat. */
static bool dirent_is_whiteout(DIR *d, const struct dirent *de)
{
	struct stat st;

	if (de->d_type != DT_CHR && de->d_type != DT_UNKNOWN)
		return false;
	if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW))
		return false;
	return nl_is_whiteout(&st);
}

/* Lists the directory open on @fd, and closes it. */
int nl_readdir_fd(int fd, nl_lower_dirent_fn fn, void *arg)
{
	struct dirent *de;
	DIR *d;
	int r = 0;

	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while (r == 0 && (errno = 0, de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		r = fn(arg, de->d_name, de->d_ino, de->d_type, dirent_is_whiteout(d, de));
	}
	if (r == 0 && errno)
		r = -errno;
	closedir(d);
	return r;
}

int nl_lower_readdir(struct nl_mount *m, int layer, const char *path, nl_lower_dirent_fn fn,
		     void *arg)
{
	struct image_dirent d = { fn, arg };
	struct tier_ctx *ctx;
	int tl, r, fd;

	ctx = meta_of(m, layer, &tl);
	if (ctx) {
		r = tier_meta_readdir(ctx, tl, path, from_image, &d);
		if (r != TIER_META_MISS)
			return r;
	}
	fd = nl_open_beneath(m->layers[layer].fd, path, O_RDONLY | O_DIRECTORY, 0);
	return fd < 0 ? fd : nl_readdir_fd(fd, fn, arg);
}

/* The data of a lower file was opened from its layer: what the real file
 * says must match the image, else the layer changed behind our back. */
void nl_lower_opened(struct nl_mount *m, int layer, const char *path, int fd)
{
	struct tier_ctx *ctx;
	struct stat st;
	int tl;

	ctx = meta_of(m, layer, &tl);
	if (ctx && fstat(fd, &st) == 0)
		tier_meta_check(ctx, tl, path, &st);
}
