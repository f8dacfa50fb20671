/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The shared node table (nodetab.h): its memory, ids and handles.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs/keeper/nodetab.h"

static size_t tab_size(void)
{
	return sizeof(struct nl_tab_head) + (size_t)NL_TAB_NODES * sizeof(struct nl_tab_node) +
	       (size_t)NL_TAB_HANDLES * sizeof(struct nl_tab_handle) +
	       (size_t)NL_TAB_ORIGINS * sizeof(struct nl_tab_origin) +
	       sizeof(struct nl_tab_journal) + (size_t)NL_TAB_REQS * sizeof(struct nl_tab_req);
}

static int rec_claim(struct nl_recorder *r, void **buf, size_t *size);
static void rec_set(struct nl_recorder *r, int slot, enum nl_rec_state state);
static void rec_release(struct nl_recorder *r, int slot);

static int tab_map(struct nl_tab *t, int fd)
{
	char *p;

	t->size = tab_size();
	/* the table is sparse: only entries ever used take memory */
	p = mmap(NULL, t->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	t->fd = fd;
	t->head = (struct nl_tab_head *)p;
	p += sizeof(struct nl_tab_head);
	t->nodes = (struct nl_tab_node *)p;
	p += (size_t)NL_TAB_NODES * sizeof(struct nl_tab_node);
	t->handles = (struct nl_tab_handle *)p;
	p += (size_t)NL_TAB_HANDLES * sizeof(struct nl_tab_handle);
	t->origins = (struct nl_tab_origin *)p;
	p += (size_t)NL_TAB_ORIGINS * sizeof(struct nl_tab_origin);
	t->journal = (struct nl_tab_journal *)p;
	p += sizeof(struct nl_tab_journal);
	t->reqs = (struct nl_tab_req *)p;
	t->rec = (struct nl_recorder){ rec_claim, rec_set, rec_release };
	pthread_mutex_init(&t->handle_lock, NULL);
	pthread_mutex_init(&t->origin_lock, NULL);
	return 0;
}

int nl_tab_create(struct nl_tab *t)
{
	int fd = memfd_create("nlayerfs-nodes", MFD_CLOEXEC), r;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)tab_size())) {
		r = -errno;
		close(fd);
		return r;
	}
	r = tab_map(t, fd);
	if (r) {
		close(fd);
		return r;
	}
	memcpy(t->head->magic, NL_TAB_MAGIC, 8);
	t->head->node_size = sizeof(struct nl_tab_node);
	t->head->n_nodes = NL_TAB_NODES;
	/* 0 is no id, 1 the root's */
	atomic_store(&t->head->node_high, 2);
	atomic_store(&t->head->handle_high, 1);
	return 0;
}

/* A table a dead server left: checked before anything in it is used. */
int nl_tab_attach(struct nl_tab *t, int fd)
{
	struct stat st;
	int r;

	if (fstat(fd, &st))
		return -errno;
	if ((size_t)st.st_size != tab_size())
		return -EPROTO;
	r = tab_map(t, fd);
	if (r)
		return r;
	if (memcmp(t->head->magic, NL_TAB_MAGIC, 8) ||
	    t->head->node_size != sizeof(struct nl_tab_node) ||
	    t->head->n_nodes != NL_TAB_NODES || atomic_load(&t->head->node_high) > NL_TAB_NODES ||
	    atomic_load(&t->head->handle_high) > NL_TAB_HANDLES ||
	    atomic_load(&t->head->n_origins) > NL_TAB_ORIGINS ||
	    t->head->init_len > NL_TAB_INIT_MAX ||
	    atomic_load(&t->journal->used) > NL_TAB_JOURNAL) {
		munmap(t->head, t->size);
		t->head = NULL;
		return -EPROTO;
	}
	for (uint64_t i = 2; i < atomic_load(&t->head->node_high); i++)
		if (atomic_load(&t->nodes[i].state) == NL_TAB_FREE)
			nl_tab_node_free(t, i);
	for (uint64_t i = 1; i < atomic_load(&t->head->handle_high); i++)
		if (atomic_load(&t->handles[i].state) == NL_TAB_FREE)
			nl_tab_handle_free(t, i);
	return 0;
}

void nl_tab_close(struct nl_tab *t)
{
	if (t->head)
		munmap(t->head, t->size);
	t->head = NULL;
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	free(t->free_ids);
	free(t->free_handles);
	t->free_ids = t->free_handles = NULL;
	pthread_mutex_destroy(&t->handle_lock);
	pthread_mutex_destroy(&t->origin_lock);
}

static int push_id(uint64_t **v, size_t *n, size_t *cap, uint64_t id)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 256;
		uint64_t *nv = realloc(*v, c * sizeof(**v));

		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = id;
	return 0;
}

/* Caller holds the mount's ns lock for writing. 0: the table is full. */
uint64_t nl_tab_node_alloc(struct nl_tab *t)
{
	uint64_t id;

	if (t->n_free)
		return t->free_ids[--t->n_free];
	id = atomic_load(&t->head->node_high);
	if (id >= NL_TAB_NODES)
		return 0;
	atomic_store(&t->head->node_high, id + 1);
	return id;
}

/* The id may be handed out again, under another generation. */
void nl_tab_node_free(struct nl_tab *t, uint64_t id)
{
	struct nl_tab_node *e = &t->nodes[id];

	atomic_store(&e->state, NL_TAB_FREE);
	atomic_store(&e->nlookup, 0);
	/* an id the list cannot hold is lost until unmount, nothing else */
	push_id(&t->free_ids, &t->n_free, &t->cap_free, id);
}

static void write_slot(struct nl_tab_name *s, uint64_t parent, const char *name)
{
	size_t l = strnlen(name, NAME_MAX);

	s->parent = parent;
	memcpy(s->name, name, l);
	s->name[l] = 0;
}

void nl_tab_node_set(struct nl_tab *t, uint64_t id, uint64_t parent, const char *name,
		     unsigned type)
{
	struct nl_tab_node *e = &t->nodes[id];

	e->gen++;
	e->type = (uint8_t)type;
	write_slot(&e->slot[0], parent, name);
	atomic_store(&e->cur, 0);
	atomic_store(&e->nlookup, 0);
	atomic_store(&e->state, NL_TAB_LIVE);
}

void nl_tab_node_rename(struct nl_tab *t, uint64_t id, uint64_t parent, const char *name)
{
	struct nl_tab_node *e = &t->nodes[id];
	uint8_t next = !atomic_load(&e->cur);

	write_slot(&e->slot[next], parent, name);
	atomic_store(&e->cur, next);
}

uint64_t nl_tab_handle_alloc(struct nl_tab *t, int kind, uint64_t node, int flags)
{
	struct nl_tab_handle *h;
	uint64_t fh = 0;

	pthread_mutex_lock(&t->handle_lock);
	if (t->n_free_handles) {
		fh = t->free_handles[--t->n_free_handles];
	} else if (atomic_load(&t->head->handle_high) < NL_TAB_HANDLES) {
		fh = atomic_load(&t->head->handle_high);
		atomic_store(&t->head->handle_high, fh + 1);
	}
	pthread_mutex_unlock(&t->handle_lock);
	if (!fh)
		return 0;
	h = &t->handles[fh];
	h->kind = (uint8_t)kind;
	h->node = node;
	h->flags = flags;
	atomic_store(&h->state, NL_TAB_LIVE);
	return fh;
}

void nl_tab_handle_free(struct nl_tab *t, uint64_t fh)
{
	atomic_store(&t->handles[fh].state, NL_TAB_FREE);
	pthread_mutex_lock(&t->handle_lock);
	push_id(&t->free_handles, &t->n_free_handles, &t->cap_free_handles, fh);
	pthread_mutex_unlock(&t->handle_lock);
}

/* Written whole before it is counted: a server killed in between leaves
 * nothing half-written behind. */
void nl_tab_origin_add(struct nl_tab *t, dev_t udev, ino_t uino, dev_t odev, ino_t oino)
{
	uint64_t i;

	pthread_mutex_lock(&t->origin_lock);
	i = atomic_load(&t->head->n_origins);
	if (i < NL_TAB_ORIGINS) {
		t->origins[i] = (struct nl_tab_origin){ udev, uino, odev, oino };
		atomic_store(&t->head->n_origins, i + 1);
	}
	pthread_mutex_unlock(&t->origin_lock);
}

/* A free slot, or -1 when all are taken (the change then goes without). */
int nl_tab_intent_begin(struct nl_tab *t, int op, uint64_t parent, const char *name,
			uint64_t to_parent, const char *to_name)
{
	for (int i = 0; i < NL_TAB_INTENTS; i++) {
		struct nl_tab_intent *in = &t->head->intents[i];
		uint8_t free_state = NL_TAB_FREE;

		if (atomic_load(&in->state) != NL_TAB_FREE ||
		    !atomic_compare_exchange_strong(&in->state, &free_state, 3))
			continue;
		/* 3: being written; whole before it is live */
		in->op = (uint8_t)op;
		write_slot(&in->at, parent, name);
		write_slot(&in->to, to_parent, to_name ? to_name : "");
		atomic_store(&in->state, NL_TAB_LIVE);
		return i;
	}
	return -1;
}

void nl_tab_intent_end(struct nl_tab *t, int slot)
{
	if (slot >= 0)
		atomic_store(&t->head->intents[slot].state, NL_TAB_FREE);
}

/* ---- intents left by a dead server ---- */

static long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

int nl_tab_replay_take(struct nl_tab *t, struct nl_tab_replay *r)
{
	r->v = calloc(NL_TAB_INTENTS, sizeof(*r->v));
	r->n = 0;
	r->until = mono_ms() + NL_TAB_REPLAY_MS;
	pthread_mutex_init(&r->lock, NULL);
	for (int i = 0; i < NL_TAB_INTENTS; i++) {
		struct nl_tab_intent *in = &t->head->intents[i];

		if (r->v && atomic_load(&in->state) == NL_TAB_LIVE &&
		    memchr(in->at.name, 0, sizeof(in->at.name)))
			memcpy(&r->v[r->n++], in, sizeof(*in));
		atomic_store(&in->state, NL_TAB_FREE);
	}
	return r->v ? 0 : -ENOMEM;
}

bool nl_tab_replay_match(struct nl_tab_replay *r, int op, uint64_t parent, const char *name)
{
	bool found = false;

	if (!__atomic_load_n(&r->n, __ATOMIC_ACQUIRE) || mono_ms() > r->until)
		return false;
	pthread_mutex_lock(&r->lock);
	for (int i = 0; i < r->n && !found; i++) {
		struct nl_tab_intent *in = &r->v[i];

		if (in->op == op && in->at.parent == parent && !strcmp(in->at.name, name)) {
			*in = r->v[--r->n];
			found = true;
		}
	}
	pthread_mutex_unlock(&r->lock);
	return found;
}

const struct nl_tab_name *nl_tab_replay_renamed(struct nl_tab_replay *r, uint64_t parent,
						const char *name)
{
	for (int i = 0; i < r->n; i++) {
		const struct nl_tab_intent *in = &r->v[i];

		if (in->op == NL_INTENT_RENAME && in->at.parent == parent &&
		    !strcmp(in->at.name, name) && memchr(in->to.name, 0, sizeof(in->to.name)))
			return &in->to;
	}
	return NULL;
}

uint64_t nl_tab_replay_open(struct nl_tab_replay *r, uint64_t node)
{
	uint64_t fh = 0;

	if (!__atomic_load_n(&r->n, __ATOMIC_ACQUIRE) || mono_ms() > r->until)
		return 0;
	pthread_mutex_lock(&r->lock);
	for (int i = 0; i < r->n && !fh; i++) {
		struct nl_tab_intent *in = &r->v[i];

		if (in->op == NL_INTENT_OPEN && in->at.parent == node) {
			fh = in->to.parent;
			*in = r->v[--r->n];
		}
	}
	pthread_mutex_unlock(&r->lock);
	return fh < NL_TAB_HANDLES ? fh : 0;
}

void nl_tab_replay_free(struct nl_tab_replay *r)
{
	if (!r->v)
		return;
	free(r->v);
	r->v = NULL;
	r->n = 0;
	pthread_mutex_destroy(&r->lock);
}

/* ---- the journal of uncommitted writes ---- */

#define JREC_SIZE(len) ((sizeof(struct nl_tab_jrec) + (len) + 7) & ~(uint64_t)7)

int nl_tab_journal_add(struct nl_tab *t, uint64_t ino, uint64_t off, const void *buf,
		       uint64_t len)
{
	uint64_t used = atomic_load(&t->journal->used);
	struct nl_tab_jrec rec = { ino, off, len };

	if (len > NL_TAB_JOURNAL || JREC_SIZE(len) > NL_TAB_JOURNAL - used)
		return -ENOSPC;
	memcpy(t->journal->data + used, &rec, sizeof(rec));
	memcpy(t->journal->data + used + sizeof(rec), buf, len);
	/* whole before it counts: a server killed while copying leaves none */
	atomic_store_explicit(&t->journal->used, used + JREC_SIZE(len), memory_order_release);
	return 0;
}

void nl_tab_journal_reset(struct nl_tab *t)
{
	uint64_t used = atomic_load(&t->journal->used);
	off_t at = (off_t)((char *)t->journal->data - (char *)t->head);
	off_t from = (at + 4095) & ~(off_t)4095, to = (at + (off_t)used) & ~(off_t)4095;

	atomic_store(&t->journal->used, 0);
	/* the pages of a big journal go back to the host until the next writes */
	if (used > (1u << 20) && to > from)
		fallocate(t->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, from, to - from);
}

bool nl_tab_journal_next(const struct nl_tab *t, uint64_t *pos, struct nl_tab_jrec *rec,
			 const void **data)
{
	uint64_t used = atomic_load_explicit(&t->journal->used, memory_order_acquire);

	if (*pos + sizeof(*rec) > used)
		return false;
	memcpy(rec, t->journal->data + *pos, sizeof(*rec));
	if (rec->len > used - *pos - sizeof(*rec))
		return false;
	*data = t->journal->data + *pos + sizeof(*rec);
	*pos += JREC_SIZE(rec->len);
	return true;
}

/* ---- requests being served ---- */

struct nl_recorder *nl_tab_recorder(struct nl_tab *t)
{
	return atomic_load(&t->head->keep_requests) ? &t->rec : NULL;
}

static struct nl_tab *rec_tab(struct nl_recorder *r)
{
	return (struct nl_tab *)((char *)r - offsetof(struct nl_tab, rec));
}

static int rec_claim(struct nl_recorder *r, void **buf, size_t *size)
{
	struct nl_tab *t = rec_tab(r);

	for (int i = 0; i < NL_TAB_REQS; i++) {
		struct nl_tab_req *q = &t->reqs[i];
		uint32_t free_state = NL_REQ_FREE;

		if (!atomic_compare_exchange_strong(&q->state, &free_state, NL_REC_IDLE))
			continue;
		/* written through: the kernel's copy into it never faults */
		for (size_t off = 0; off < NL_TAB_REQ_MAX; off += 4096)
			((volatile uint8_t *)q->data)[off] = 0;
		*buf = q->data;
		*size = NL_TAB_REQ_MAX;
		return i;
	}
	return -1;
}

static void rec_set(struct nl_recorder *r, int slot, enum nl_rec_state state)
{
	struct nl_tab_req *q = &rec_tab(r)->reqs[slot];

	/* a request read while READING has a length again: kept as well */
	if (state == NL_REC_READING)
		((struct fuse_in_header *)q->data)->len = 0;
	atomic_store_explicit(&q->state, state, memory_order_release);
}

static void rec_release(struct nl_recorder *r, int slot)
{
	atomic_store(&rec_tab(r)->reqs[slot].state, NL_REQ_FREE);
}

/* Requests without an answer are not served again: a FORGET served twice
 * would drop a lookup the kernel still holds. */
static bool req_answered(const struct fuse_in_header *h)
{
	return h->opcode != FUSE_FORGET && h->opcode != FUSE_BATCH_FORGET &&
	       h->opcode != FUSE_INTERRUPT && h->opcode != FUSE_INIT &&
	       h->opcode != FUSE_DESTROY;
}

int nl_tab_req_take(struct nl_tab *t, int slot, void **req, size_t *len)
{
	struct nl_tab_req *q = &t->reqs[slot];
	uint32_t state = atomic_load_explicit(&q->state, memory_order_acquire);
	const struct fuse_in_header *h = (const struct fuse_in_header *)q->data;

	/* the threads that held these places are gone */
	atomic_store(&q->state, NL_REQ_FREE);
	*req = NULL;
	if ((state != NL_REC_SERVING && state != NL_REC_READING) ||
	    h->len < sizeof(*h) || h->len > NL_TAB_REQ_MAX || !req_answered(h))
		return 0;
	*req = malloc(h->len);
	if (!*req)
		return -ENOMEM;
	memcpy(*req, q->data, h->len);
	*len = h->len;
	return 1;
}
