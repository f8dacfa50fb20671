/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Write-back of NVM-home layer files that no traced start needed: each is
 * copied to HDD/writeback/<layer id>/<path> (temp + fsync + rename), the
 * index records it, and only then, if asked, its NVM blocks are released
 * by punching a hole (the file keeps its size and inode, so the union tree
 * is unchanged). Reads of such files must go to the HDD copy.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/falloc.h>
#include "tier/tier_private.h"

struct wb_run {
	struct tier_ctx *ctx;
	struct tier_layer *layer;
	bool release;
	int done;
};

static int mkdirs_for(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			*p = '/';
			return -errno;
		}
		*p = '/';
	}
	return 0;
}

static int copy_fd_to(int in, const char *dst)
{
	char tmp[PATH_MAX], buf[1 << 16];
	ssize_t r;
	int out, rc = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", dst) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	out = mkostemp(tmp, O_CLOEXEC);
	if (out < 0)
		return -errno;
	while ((r = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)r) != r) {
			rc = -EIO;
			break;
		}
	if (!rc && (r < 0 || fsync(out) < 0))
		rc = -errno;
	close(out);
	if (!rc && rename(tmp, dst) < 0)
		rc = -errno;
	if (rc)
		unlink(tmp);
	return rc;
}

static bool needed_by_trace(struct tier_ctx *ctx, const char *lid, const char *rel)
{
	struct tier_pentry *e;
	bool yes;

	pthread_rwlock_rdlock(&ctx->lock);
	e = tier_index_find(ctx, lid, rel);
	yes = e && (e->heat || e->state == TIER_ST_WRITTEN_BACK);
	pthread_rwlock_unlock(&ctx->lock);
	return yes;
}

static int writeback_file(struct wb_run *w, const char *rel)
{
	struct tier_ctx *ctx = w->ctx;
	char src[PATH_MAX], dst[PATH_MAX];
	struct stat st;
	int fd, rc;

	if (needed_by_trace(ctx, w->layer->id, rel))
		return 0;
	if (snprintf(src, sizeof(src), "%s/%s", w->layer->dir, rel) >= (int)sizeof(src) ||
	    snprintf(dst, sizeof(dst), "%s/writeback/%s/%s", ctx->cfg.hdd_dir, w->layer->id, rel) >=
	    (int)sizeof(dst))
		return -ENAMETOOLONG;
	fd = open(src, (w->release ? O_RDWR : O_RDONLY) | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = fstat(fd, &st) < 0 ? -errno : mkdirs_for(dst);
	if (!rc)
		rc = copy_fd_to(fd, dst);
	if (!rc) {
		pthread_rwlock_wrlock(&ctx->lock);
		rc = tier_index_set_written_back(ctx, w->layer->id, rel, &st);
		pthread_rwlock_unlock(&ctx->lock);
	}
	if (!rc && w->release && st.st_size &&
	    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, st.st_size) == 0) {
		struct timespec t[2] = { st.st_atim, st.st_mtim };
		uint64_t freed = (uint64_t)st.st_blocks * 512;

		futimens(fd, t);
		pthread_rwlock_wrlock(&ctx->lock);
		w->layer->bytes -= freed < w->layer->bytes ? freed : w->layer->bytes;
		pthread_rwlock_unlock(&ctx->lock);
	}
	close(fd);
	w->done += !rc;
	return rc;
}

static int walk(struct wb_run *w, const char *rel)
{
	char path[PATH_MAX];
	DIR *d;
	struct dirent *de;
	int rc = 0;

	if (snprintf(path, sizeof(path), "%s%s%s", w->layer->dir, *rel ? "/" : "", rel) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	d = opendir(path);
	if (!d)
		return -errno;
	while (!rc && (de = readdir(d))) {
		char sub[PATH_MAX];
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "", de->d_name) >=
		    (int)sizeof(sub))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode))
			rc = walk(w, sub);
		else if (S_ISREG(st.st_mode) && st.st_size)
			rc = writeback_file(w, sub);
	}
	closedir(d);
	return rc;
}

int tier_writeback_cold(struct tier_ctx *ctx, bool release)
{
	struct wb_run w = { .ctx = ctx, .release = release };
	int rc = 0;

	if (!ctx->cfg.hdd_dir)
		return -ENOENT;
	tier_trace_flush(ctx);
	for (size_t i = 0; i < ctx->nlayers && !rc; i++) {
		if (ctx->layers[i].home != TIER_HOME_NVM)
			continue;
		w.layer = &ctx->layers[i];
		rc = walk(&w, "");
	}
	return rc ? rc : w.done;
}
