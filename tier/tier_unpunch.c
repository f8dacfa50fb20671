/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Layers are never modified, but earlier versions released the NVM blocks
 * of written-back files by punching holes into the layer file: such a
 * layer read zeros to every reader but the index's owner. The first time
 * the tier sees an NVM-home layer, every file of it the index marks as
 * written back gets its bytes back from its HDD copy (the one write into a
 * layer that is allowed: it makes the layer whole again), once the layer
 * file is still the one the index recorded (inode and size) and the copy
 * has that size. The bytes are compared after an fsync, the file gets its
 * recorded mtime back, and only then the index forgets the copy.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/stat.h>
#include <unistd.h>
#include "tier/tier_private.h"
#include "tier/tier_util.h"
#include "tier/tier_index.h"

#define UNPUNCH_BUF (1 << 20)

struct punched {
	char *rel;
	uint64_t size, ino, mtime_ns;
};

/* Under no lock: the written-back entries of layer @id. */
static size_t list_written_back(struct tier_ctx *ctx, const char *id, struct punched **out)
{
	struct punched *v = NULL;
	size_t n = 0, cap = 0;

	pthread_rwlock_rdlock(&ctx->lock);
	for (uint64_t i = 0; i < ctx->root->capacity; i++) {
		const struct tier_pentry *e = &ctx->ent[i];

		if (!e->used || !e->wb || strcmp(e->layer, id))
			continue;
		if (n == cap) {
			struct punched *nv = realloc(v, (cap = cap ? 2 * cap : 16) * sizeof(*v));

			if (!nv)
				break;
			v = nv;
		}
		v[n].rel = strdup(tier_entry_path(e));
		v[n].size = e->src_size;
		v[n].ino = e->src_ino;
		v[n].mtime_ns = e->src_mtime_ns;
		n += v[n].rel != NULL;
	}
	pthread_rwlock_unlock(&ctx->lock);
	*out = v;
	return n;
}

static int copy_back(int from, int to, uint64_t size, char *buf)
{
	for (uint64_t off = 0; off < size;) {
		ssize_t n = pread(from, buf, UNPUNCH_BUF, (off_t)off);

		if (n <= 0)
			return n ? -errno : -EIO;
		for (ssize_t w = 0; w < n;) {
			ssize_t k = pwrite(to, buf + w, (size_t)(n - w), (off_t)(off + (uint64_t)w));

			if (k <= 0)
				return k ? -errno : -EIO;
			w += k;
		}
		off += (uint64_t)n;
	}
	return fsync(to) ? -errno : 0;
}

static int same_bytes(int a, int b, uint64_t size, char *buf)
{
	char *other = buf + UNPUNCH_BUF;

	for (uint64_t off = 0; off < size;) {
		ssize_t n = pread(a, buf, UNPUNCH_BUF, (off_t)off);

		if (n <= 0 || pread(b, other, (size_t)n, (off_t)off) != n)
			return -EIO;
		if (memcmp(buf, other, (size_t)n))
			return -EIO;
		off += (uint64_t)n;
	}
	return 0;
}

/* One file: the HDD copy @copy back into the layer file. 1: the layer
 * file is not a hole, left alone. */
static int unpunch_one(const struct tier_layer *l, const char *copy, const struct punched *p,
		       char *buf)
{
	struct timespec times[2] = { { 0, UTIME_OMIT },
				     { (time_t)(p->mtime_ns / 1000000000ULL),
				       (long)(p->mtime_ns % 1000000000ULL) } };
	struct stat cs, ls;
	int in, out, r;

	in = open(copy, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (in < 0)
		return -errno;
	out = tier_layer_open(l->dir, p->rel, O_RDWR | O_NOFOLLOW);
	if (out < 0) {
		close(in);
		return out;
	}
	r = fstat(in, &cs) || fstat(out, &ls) ? -errno : 0;
	/* the file the index knows, and a copy of all of it */
	if (!r && (!S_ISREG(ls.st_mode) || (uint64_t)ls.st_ino != p->ino ||
		   (uint64_t)ls.st_size != p->size || (uint64_t)cs.st_size != p->size))
		r = -ESTALE;
	/* whole (written back without a release): nothing to do, and the
	 * layer is not written */
	if (!r && (ls.st_blocks || !p->size)) {
		close(in);
		close(out);
		return 1;
	}
	if (!r)
		r = copy_back(in, out, p->size, buf);
	if (!r)
		r = same_bytes(in, out, p->size, buf);
	if (!r && futimens(out, times))
		r = -errno;
	close(in);
	close(out);
	return r;
}

static void forget_copy(struct tier_ctx *ctx, const char *id, const char *rel, const char *copy)
{
	struct tier_pentry *e;
	int r = -ENOENT;

	pthread_rwlock_wrlock(&ctx->lock);
	e = tier_index_find(ctx, id, rel);
	if (e)
		r = tier_index_clear_written_back(ctx, e);
	pthread_rwlock_unlock(&ctx->lock);
	if (!r)
		unlink(copy);
}

int tier_writeback_unpunch(struct tier_ctx *ctx, int layer)
{
	const struct tier_layer *l = &ctx->layers[layer];
	struct punched *v = NULL;
	char copy[PATH_MAX], *buf;
	size_t n;
	int done = 0;

	if (l->home != TIER_HOME_NVM || !ctx->cfg.hdd_dir)
		return 0;
	n = list_written_back(ctx, l->id, &v);
	buf = n ? malloc(2 * UNPUNCH_BUF) : NULL;
	for (size_t i = 0; i < n; i++) {
		int r = -ENOMEM;

		if (buf && snprintf(copy, sizeof(copy), "%s/writeback/%s/%s", ctx->cfg.hdd_dir, l->id,
				    v[i].rel) < (int)sizeof(copy))
			r = unpunch_one(l, copy, &v[i], buf);
		if (!r) {
			forget_copy(ctx, l->id, v[i].rel, copy);
			done++;
		} else if (r < 0) {
			/* the HDD copy keeps serving it; tried again at the next start */
			tier_log(ctx, LOG_WARNING, "layer %.12s: %s not made whole from %s: %s",
				 l->id, v[i].rel, copy, strerror(-r));
		}
		free(v[i].rel);
	}
	if (done)
		tier_log(ctx, LOG_INFO, "layer %.12s: %d written-back files copied back into "
			 "the layer (punched by an earlier version)", l->id, done);
	free(buf);
	free(v);
	return done;
}
