// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The checkpoint mount's tree in memory: nodes by inode number, each file's
 * extents, and the discards deferred until the next commit.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/ckpt/ckpt.h"

struct ckpt_node *ckpt_get(struct ckpt_ctx *c, uint64_t ino)
{
	return ino < c->n_nodes ? c->nodes[ino] : NULL;
}

struct ckpt_node *ckpt_child(struct ckpt_ctx *c, uint64_t parent, const char *name)
{
	for (uint64_t i = 1; i < c->n_nodes; i++) {
		struct ckpt_node *n = c->nodes[i];

		if (n && n->parent == parent && n->ino != parent && !strcmp(n->name, name))
			return n;
	}
	return NULL;
}

bool ckpt_has_children(struct ckpt_ctx *c, uint64_t ino)
{
	for (uint64_t i = 1; i < c->n_nodes; i++)
		if (c->nodes[i] && c->nodes[i]->parent == ino && i != ino)
			return true;
	return false;
}

void ckpt_touch(struct ckpt_node *n)
{
	clock_gettime(CLOCK_REALTIME, &n->mtime);
	n->ctime = n->mtime;
}

void ckpt_wait_appends(struct ckpt_ctx *c, struct ckpt_node *t)
{
	while (t->appending)
		pthread_cond_wait(&c->idle, &c->lock);
}

struct ckpt_node *ckpt_node_alloc(void)
{
	struct ckpt_node *n = calloc(1, sizeof(*n));

	if (n)
		pthread_mutex_init(&n->append_lock, NULL);
	return n;
}

void ckpt_node_release(struct ckpt_node *n)
{
	free(n->name);
	free(n->target);
	free(n->ext);
	free(n->st_blob);
	pthread_mutex_destroy(&n->append_lock);
	free(n);
}

int ckpt_place(struct ckpt_ctx *c, struct ckpt_node *n)
{
	if (n->ino >= c->n_nodes) {
		uint64_t nn = c->n_nodes ? c->n_nodes : 64;
		struct ckpt_node **p;

		while (nn <= n->ino)
			nn *= 2;
		p = realloc(c->nodes, nn * sizeof(*p));
		if (!p)
			return -ENOMEM;
		memset(p + c->n_nodes, 0, (nn - c->n_nodes) * sizeof(*p));
		c->nodes = p;
		c->n_nodes = nn;
	}
	c->nodes[n->ino] = n;
	if (n->ino >= c->next_ino)
		c->next_ino = n->ino + 1;
	return 0;
}

int ckpt_new_node(struct ckpt_ctx *c, uint64_t parent, const char *name, uint32_t mode,
		  struct ckpt_node **np)
{
	struct ckpt_node *n = ckpt_node_alloc();
	struct ckpt_node *p = ckpt_get(c, parent);

	if (!n || !(n->name = strdup(name))) {
		if (n)
			ckpt_node_release(n);
		return -ENOMEM;
	}
	/* inode numbers are never reused, so a stale kernel inode can
	 * never reach a new file */
	n->ino = c->next_ino ? c->next_ino : 2;
	n->parent = parent;
	n->mode = mode;
	n->tino = p && p->tino ? p->tino : n->ino;
	ckpt_touch(n);
	if (ckpt_place(c, n)) {
		ckpt_node_release(n);
		return -ENOMEM;
	}
	*np = n;
	return 0;
}

void ckpt_free_node(struct ckpt_ctx *c, struct ckpt_node *n)
{
	struct zns_stream *st = ckpt_stream_of(c, n);

	for (size_t i = 0; st && i < n->n_ext; i++)
		ckpt_queue_discard(c, st, n->ext[i].soff, n->ext[i].len);
	if (n->ino < c->n_nodes)
		c->nodes[n->ino] = NULL;
	ckpt_node_release(n);
}

struct zns_stream *ckpt_stream_of(struct ckpt_ctx *c, struct ckpt_node *n)
{
	struct ckpt_node *t = ckpt_get(c, n->tino);

	return t ? t->st : NULL;
}

int ckpt_queue_discard(struct ckpt_ctx *c, struct zns_stream *st, uint64_t off, uint64_t len)
{
	if (!len)
		return 0;
	if (c->n_pend == c->cap_pend) {
		size_t nc = c->cap_pend ? 2 * c->cap_pend : 64;
		struct ckpt_discard *p = realloc(c->pend, nc * sizeof(*p));

		if (!p)
			return -ENOMEM;	/* the space just stays in use */
		c->pend = p;
		c->cap_pend = nc;
	}
	c->pend[c->n_pend++] = (struct ckpt_discard){ st, off, len };
	return 0;
}

void ckpt_drop_pending(struct ckpt_ctx *c, struct zns_stream *st)
{
	size_t j = 0;

	for (size_t i = 0; i < c->n_pend; i++)
		if (c->pend[i].st != st)
			c->pend[j++] = c->pend[i];
	c->n_pend = j;
}

static int ext_push(struct ckpt_ext **v, size_t *n, size_t *cap, struct ckpt_ext e)
{
	if (*n == *cap) {
		size_t nc = *cap ? 2 * *cap : 8;
		struct ckpt_ext *p = realloc(*v, nc * sizeof(*p));

		if (!p)
			return -ENOMEM;
		*v = p;
		*cap = nc;
	}
	(*v)[(*n)++] = e;
	return 0;
}

/* Remove [off, off + len) from the file's extents; the cut pieces become
 * pending discards. len 0 means "to the end". */
int ckpt_punch(struct ckpt_ctx *c, struct ckpt_node *n, uint64_t off, uint64_t len)
{
	struct zns_stream *st = ckpt_stream_of(c, n);
	uint64_t end = len ? off + len : UINT64_MAX;
	struct ckpt_ext *v = NULL;
	size_t nv = 0, cap = 0;
	int r = 0;

	for (size_t i = 0; i < n->n_ext && !r; i++) {
		struct ckpt_ext e = n->ext[i];
		uint64_t eend = e.off + e.len;

		if (eend <= off || e.off >= end) {
			r = ext_push(&v, &nv, &cap, e);
			continue;
		}
		if (e.off < off)
			r = ext_push(&v, &nv, &cap, (struct ckpt_ext){ e.off, off - e.off, e.soff });
		if (!r && eend > end)
			r = ext_push(&v, &nv, &cap, (struct ckpt_ext){ end, eend - end,
								     e.soff + (end - e.off) });
		if (!r && st) {
			uint64_t a = e.off > off ? e.off : off, b = eend < end ? eend : end;

			ckpt_queue_discard(c, st, e.soff + (a - e.off), b - a);
		}
	}
	if (r) {
		free(v);
		return r;
	}
	free(n->ext);
	n->ext = v;
	n->n_ext = nv;
	n->cap_ext = cap;
	return 0;
}

/* Insert an extent that covers a range no other extent covers (after
 * ckpt_punch), merging it with its left neighbour when both are contiguous
 * in the file and in the stream: sequential writes stay one extent. */
int ckpt_add_ext(struct ckpt_ctx *c, struct ckpt_node *n, uint64_t off, uint64_t len,
		 uint64_t soff)
{
	size_t i = n->n_ext;
	int r;

	(void)c;
	while (i > 0 && n->ext[i - 1].off > off)
		i--;
	if (i > 0) {
		struct ckpt_ext *l = &n->ext[i - 1];

		if (l->off + l->len == off && l->soff + l->len == soff) {
			l->len += len;
			return 0;
		}
	}
	r = ext_push(&n->ext, &n->n_ext, &n->cap_ext, (struct ckpt_ext){ 0, 0, 0 });
	if (r)
		return r;
	memmove(&n->ext[i + 1], &n->ext[i], (n->n_ext - 1 - i) * sizeof(*n->ext));
	n->ext[i] = (struct ckpt_ext){ off, len, soff };
	return 0;
}
