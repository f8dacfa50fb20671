/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Reads of big lower files that have a range copy on NVM.
 *
 * Beside the open's descriptor the range keeps the sparse NVM copy and the
 * extents it holds. A read inside an extent is answered from the copy, one
 * outside from the layer file, one across a boundary with a buffer vector
 * of both; all of them are fd-backed buffers, so the kernel splices. The
 * extent map is the one of the copy this open found: a copy evicted or
 * replaced later stays readable through its descriptor. While a trace
 * window is open each read also marks its blocks.
 *
 * With a copy, the open's descriptor is the copy too, and the layer file
 * is opened only when something needs it (a read outside the extents,
 * lseek for data or holes, copy_file_range): opening it walks the layer's
 * directories and reads its inode on the HDD, which is most of what a
 * start that the copy serves would otherwise wait for.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/union/union.h"
#include "tier/tier.h"

struct nl_range {
	struct tier_ctx *ctx;
	struct tier_range tr;	/* trace handle, extents of the copy */
	int nvm_fd;		/* the copy; -1: none, read the layer */
	/* the layer file, opened at its first use when the open's
	 * descriptor is the copy (lazy) */
	struct nl_mount *m;
	int layer;
	char *path;
	bool lazy;
	int layer_fd;
	pthread_mutex_t lock;
};

void nl_range_free(struct nl_range *r)
{
	if (!r)
		return;
	if (r->nvm_fd >= 0)
		close(r->nvm_fd);
	if (r->layer_fd >= 0)
		close(r->layer_fd);
	pthread_mutex_destroy(&r->lock);
	tier_range_close(&r->tr);
	free(r->path);
	free(r);
}

struct nl_range *nl_range_open(struct nl_mount *m, struct tier_ctx *ctx, int layer, int tl,
			       const char *path, const struct stat *st)
{
	struct nl_range *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->ctx = ctx;
	r->m = m;
	r->layer = layer;
	r->nvm_fd = -1;
	r->layer_fd = -1;
	pthread_mutex_init(&r->lock, NULL);
	r->path = strdup(path);
	if (!r->path || tier_range_open(ctx, tl, path, st, &r->tr) <= 0) {
		pthread_mutex_destroy(&r->lock);
		free(r->path);
		free(r);
		return NULL;
	}
	if (r->tr.copy) {
		r->nvm_fd = open(r->tr.copy, O_RDONLY | O_CLOEXEC);
		/* evicted meanwhile: no error, the layer has every byte */
		if (r->nvm_fd < 0)
			r->tr.n_ext = 0;
	}
	if (!r->tr.trace && r->nvm_fd < 0) {
		nl_range_free(r);
		return NULL;
	}
	return r;
}

/* The open's descriptor when the range has a copy: a second one of the
 * copy, and from now on the layer file is opened when needed. */
int nl_range_copy_fd(struct nl_range *r)
{
	int fd = r->nvm_fd >= 0 ? fcntl(r->nvm_fd, F_DUPFD_CLOEXEC, 0) : -1;

	r->lazy = fd >= 0;
	return fd;
}

/* The layer file: @open_fd unless the open's descriptor is the copy. */
int nl_range_data_fd(struct nl_range *r, int open_fd)
{
	int fd;

	if (!r->lazy)
		return open_fd;
	fd = __atomic_load_n(&r->layer_fd, __ATOMIC_ACQUIRE);
	if (fd >= 0)
		return fd;
	pthread_mutex_lock(&r->lock);
	fd = r->layer_fd;
	if (fd < 0) {
		/* a failure is tried again by the next caller */
		fd = nl_tier_open_layer_file(r->m, r->layer, r->path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			__atomic_store_n(&r->layer_fd, fd, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&r->lock);
	return fd;
}

/* The first extent that ends after @off. */
static size_t extent_after(const struct nl_range *r, uint64_t off)
{
	size_t lo = 0, hi = r->tr.n_ext;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (r->tr.ext[mid].off + r->tr.ext[mid].len <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Split [off, off + size) into pieces alternating between the copy and
 * the layer. With @bv NULL only counts them. */
static size_t split_read(const struct nl_range *r, int layer_fd, uint64_t off, uint64_t size,
			 struct fuse_bufvec *bv, uint64_t *nvm_bytes)
{
	uint64_t pos = off, end = off + size;
	size_t i = extent_after(r, off), n = 0;

	*nvm_bytes = 0;
	while (pos < end) {
		const struct tier_extent *x = i < r->tr.n_ext ? &r->tr.ext[i] : NULL;
		bool in_copy = x && x->off <= pos;
		uint64_t stop = in_copy ? x->off + x->len : x ? x->off : end;

		if (stop > end)
			stop = end;
		if (bv) {
			bv->buf[n].size = stop - pos;
			bv->buf[n].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
			bv->buf[n].fd = in_copy ? r->nvm_fd : layer_fd;
			bv->buf[n].pos = (off_t)pos;
		}
		if (in_copy) {
			*nvm_bytes += stop - pos;
			i++;
		}
		pos = stop;
		n++;
	}
	return n;
}

void nl_range_read(fuse_req_t req, struct nl_range *r, int open_fd, size_t size, off_t off)
{
	struct fuse_bufvec one = FUSE_BUFVEC_INIT(size), *bv = &one;
	uint64_t nvm_bytes = 0;
	int layer_fd = -1;
	size_t n = 1;

	if (!size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	tier_range_note_read(r->tr.trace, (uint64_t)off, size);
	if (r->nvm_fd >= 0)
		n = split_read(r, -1, (uint64_t)off, size, NULL, &nvm_bytes);
	if (nvm_bytes < size) {
		layer_fd = nl_range_data_fd(r, open_fd);
		if (layer_fd < 0) {
			fuse_reply_err(req, -layer_fd);
			return;
		}
	}
	if (n > 1) {
		bv = calloc(1, sizeof(*bv) + (n - 1) * sizeof(bv->buf[0]));
		if (!bv) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		bv->count = n;
		split_read(r, layer_fd, (uint64_t)off, size, bv, &nvm_bytes);
	} else {
		one.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		one.buf[0].fd = nvm_bytes ? r->nvm_fd : layer_fd;
		one.buf[0].pos = off;
	}
	tier_range_note_served(r->ctx, nvm_bytes, size - nvm_bytes);
	fuse_reply_data(req, bv, FUSE_BUF_SPLICE_MOVE);
	if (bv != &one)
		free(bv);
}
