// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Directory listings of the checkpoint mount.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/ckpt/ckpt.h"

/*
 * A listing is built at opendir, so readdir offsets stay stable. The reader
 * wakes up as soon as the kernel has the reply, so RELEASEDIR may arrive
 * while the readdir thread is still in fuse_reply_buf: the last of the
 * open handle and the readdirs in progress frees the listing. The handle
 * number (fh) is an entry of the keeper's table; the listing is this
 * server's, in c->dirs.
 */
struct ckpt_dirbuf {
	char *p;
	size_t len;
	size_t *ends;		/* where each entry ends (its readdir offset) */
	size_t n;
	unsigned int refs;	/* the open handle + readdirs in progress */
};

static void dirbuf_put(struct ckpt_dirbuf *b)
{
	if (__atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL))
		return;
	free(b->p);
	free(b->ends);
	free(b);
}

static int build_listing(fuse_req_t req, struct ckpt_ctx *c, struct ckpt_node *d,
			 struct ckpt_dirbuf *b)
{
	size_t cap = 4096;

	b->p = malloc(cap);
	if (!b->p)
		return -ENOMEM;
	for (uint64_t i = 0; i < c->n_nodes; i++) {
		struct ckpt_node *n = c->nodes[i];
		const char *name = n && n->parent == d->ino && n->ino != d->ino ? n->name : NULL;
		struct stat st = { 0 };
		size_t need;

		if (i == 0 || i == 1) {
			name = i ? ".." : ".";
			n = d;
		}
		if (!name)
			continue;
		st.st_ino = n->ino;
		st.st_mode = n->mode;
		need = fuse_add_direntry(req, NULL, 0, name, NULL, 0);
		while (b->len + need > cap) {
			char *p = realloc(b->p, cap *= 2);

			if (!p)
				return -ENOMEM;
			b->p = p;
		}
		if (!(b->n & (b->n + 1))) {
			size_t *e = realloc(b->ends, (2 * b->n + 2) * sizeof(*e));

			if (!e)
				return -ENOMEM;
			b->ends = e;
		}
		fuse_add_direntry(req, b->p + b->len, need, name, &st, b->len + need);
		b->len += need;
		b->ends[b->n++] = b->len;
	}
	return 0;
}

/* The listing of a handle, in c->dirs (c->lock held). */
static int dirs_set(struct ckpt_ctx *c, uint64_t fh, struct ckpt_dirbuf *b)
{
	if (fh >= c->n_dirs) {
		uint64_t n = fh + 64;
		struct ckpt_dirbuf **d = realloc(c->dirs, n * sizeof(*d));

		if (!d)
			return -ENOMEM;
		memset(d + c->n_dirs, 0, (n - c->n_dirs) * sizeof(*d));
		c->dirs = d;
		c->n_dirs = n;
	}
	c->dirs[fh] = b;
	return 0;
}

static struct ckpt_dirbuf *listing_new(fuse_req_t req, struct ckpt_ctx *c, struct ckpt_node *d,
				       int *r)
{
	struct ckpt_dirbuf *b = calloc(1, sizeof(*b));

	*r = b ? build_listing(req, c, d, b) : -ENOMEM;
	if (*r && b) {
		free(b->p);
		free(b->ends);
		free(b);
		return NULL;
	}
	if (b)
		b->refs = 1;
	return b;
}

/*
 * The listing of an open directory, with a reference for the caller. A
 * handle a server before this one opened has none here: it is listed
 * again, and its offsets count in the new listing.
 */
static struct ckpt_dirbuf *listing_get(fuse_req_t req, struct ckpt_ctx *c, fuse_ino_t ino,
				       uint64_t fh, int *r)
{
	struct ckpt_dirbuf *b = NULL;
	struct ckpt_node *d;

	*r = 0;
	pthread_mutex_lock(&c->lock);
	if (fh < c->n_dirs)
		b = c->dirs[fh];
	if (!b) {
		d = ckpt_get(c, ino);
		b = d ? listing_new(req, c, d, r) : NULL;
		if (!d)
			*r = -ENOENT;
		if (b && (*r = dirs_set(c, fh, b))) {
			dirbuf_put(b);
			b = NULL;
		}
	}
	if (b)
		__atomic_add_fetch(&b->refs, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_unlock(&c->lock);
	return b;
}

void ckpt_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ckpt_ctx *c = ckpt_ctx_of(req);
	struct ckpt_dirbuf *b = NULL;
	struct ckpt_node *d;
	uint64_t fh = 0;
	int r, opened = -1;

	r = ckpt_lock_get(c, ino, &d);
	if (!r && !S_ISDIR(d->mode))
		r = -ENOTDIR;
	if (!r)
		b = listing_new(req, c, d, &r);
	/* an opendir sent again gets the handle the dead server made for it */
	if (!r && !ckpt_fh_live(c, fh = nl_tab_replay_open(&c->replay, ino), ino) &&
	    !(fh = nl_tab_handle_alloc(c->tab, NL_TAB_DIR, ino, 0)))
		r = -ENFILE;
	if (!r)
		opened = nl_tab_intent_begin(c->tab, NL_INTENT_OPEN, ino, "", fh, NULL);
	if (!r)
		r = dirs_set(c, fh, b);
	if (r) {
		if (fh)
			nl_tab_handle_free(c->tab, fh);
		if (b)
			dirbuf_put(b);
	}
	pthread_mutex_unlock(&c->lock);
	if (r) {
		fuse_reply_err(req, -r);
	} else {
		fi->fh = fh;
		fuse_reply_open(req, fi);
	}
	nl_tab_intent_end(c->tab, opened);
}

void ckpt_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			 struct fuse_file_info *fi)
{
	struct ckpt_ctx *c = ckpt_ctx_of(req);
	struct ckpt_dirbuf *b;
	size_t end = (size_t)off;
	int r;

	b = listing_get(req, c, ino, fi->fh, &r);
	if (!b) {
		fuse_reply_err(req, -r);
		return;
	}
	if ((size_t)off >= b->len) {
		fuse_reply_buf(req, NULL, 0);
		dirbuf_put(b);
		return;
	}
	/* whole entries only: walk them to the last one that fits */
	for (size_t i = 0; i < b->n; i++) {
		if (b->ends[i] <= (size_t)off)
			continue;
		if (b->ends[i] - off > size)
			break;
		end = b->ends[i];
	}
	fuse_reply_buf(req, b->p + off, end - off);
	dirbuf_put(b);
}

void ckpt_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ckpt_ctx *c = ckpt_ctx_of(req);
	struct ckpt_dirbuf *b = NULL;

	pthread_mutex_lock(&c->lock);
	if (fi->fh < c->n_dirs) {
		b = c->dirs[fi->fh];
		c->dirs[fi->fh] = NULL;
	}
	/* not twice for a release the dead server carried out */
	if (ckpt_fh_live(c, fi->fh, ino))
		nl_tab_handle_free(c->tab, fi->fh);
	pthread_mutex_unlock(&c->lock);
	if (b)
		dirbuf_put(b);
	fuse_reply_err(req, 0);
}

/* At unmount: listings of handles the kernel never released. */
void ckpt_dirs_free(struct ckpt_ctx *c)
{
	for (uint64_t i = 0; i < c->n_dirs; i++)
		if (c->dirs[i])
			dirbuf_put(c->dirs[i]);
	free(c->dirs);
	c->dirs = NULL;
	c->n_dirs = 0;
}
