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
 * open handle and the readdirs in progress frees the listing.
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

void ckpt_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ckpt_ctx *c = ckpt_ctx_of(req);
	struct ckpt_dirbuf *b = calloc(1, sizeof(*b));
	struct ckpt_node *d;
	int r;

	r = ckpt_lock_get(c, ino, &d);
	if (!r && !b)
		r = -ENOMEM;
	else if (!r && !S_ISDIR(d->mode))
		r = -ENOTDIR;
	else if (!r)
		r = build_listing(req, c, d, b);
	pthread_mutex_unlock(&c->lock);
	if (r) {
		if (b) {
			free(b->p);
			free(b->ends);
		}
		free(b);
		fuse_reply_err(req, -r);
		return;
	}
	b->refs = 1;
	fi->fh = (uintptr_t)b;
	fuse_reply_open(req, fi);
}

void ckpt_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			 struct fuse_file_info *fi)
{
	struct ckpt_dirbuf *b = (struct ckpt_dirbuf *)(uintptr_t)fi->fh;
	size_t end = (size_t)off;

	(void)ino;
	if ((size_t)off >= b->len) {
		fuse_reply_buf(req, NULL, 0);
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
	/* the open handle holds a reference: releasedir cannot have run yet */
	__atomic_add_fetch(&b->refs, 1, __ATOMIC_ACQ_REL);
	fuse_reply_buf(req, b->p + off, end - off);
	dirbuf_put(b);
}

void ckpt_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ckpt_dirbuf *b = (struct ckpt_dirbuf *)(uintptr_t)fi->fh;

	(void)ino;
	dirbuf_put(b);
	fuse_reply_err(req, 0);
}
