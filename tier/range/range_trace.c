/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Read-range traces of big files. An open of a big HDD-layer file during
 * the trace window gets a bitmap of range_unit blocks, one per file and
 * window, shared by every open of it; a read sets its blocks with atomic
 * ORs, so the read path has no lock and no I/O. The drain thread folds the
 * bitmaps into the index as extent lists (unions over all starts): at most
 * once a second while the window is open, so that a crash loses little,
 * and a last time when it closes, when the files that gained ranges are
 * queued for promotion. Copying during the window would copy a file again
 * for each new range.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "tier/tier_private.h"
#include "tier/tier_util.h"
#include "tier/tier_index.h"
#include "tier/tier_promote.h"
#include "tier/range/range.h"
#include "tier/range/range_private.h"

#define FOLD_INTERVAL_NS 1000000000ULL

struct tier_range_trace {
	struct tier_range_trace *next;	/* ctx->rt_head, under rt_lock */
	_Atomic uint64_t refs;		/* the window's list + each open */
	_Atomic bool dirty;		/* blocks set since the last fold */
	bool grew;			/* the index gained ranges (folder only) */
	int layer;
	char *path;
	uint64_t size, unit, nbits;
	_Atomic uint64_t bits[];
};

static bool window_open(struct tier_ctx *ctx)
{
	uint64_t end = atomic_load_explicit(&ctx->trace_end, memory_order_relaxed);

	return end && tier_now_mono_ns() <= end;
}

static struct tier_range_trace *trace_new(struct tier_ctx *ctx, int layer, const char *rel,
					  uint64_t size)
{
	uint64_t unit = ctx->cfg.range_unit ? ctx->cfg.range_unit : 65536;
	uint64_t nbits = (size + unit - 1) / unit;
	struct tier_range_trace *t = calloc(1, sizeof(*t) + (nbits + 63) / 64 * sizeof(uint64_t));

	if (!t)
		return NULL;
	t->path = strdup(rel);
	if (!t->path) {
		free(t);
		return NULL;
	}
	t->layer = layer;
	t->size = size;
	t->unit = unit;
	t->nbits = nbits;
	atomic_init(&t->refs, 1);
	return t;
}

struct tier_range_trace *tier_range_trace_get(struct tier_ctx *ctx, int layer, const char *rel,
					      uint64_t size)
{
	struct tier_range_trace *t;

	if (!ctx->rt_lock_init || !window_open(ctx))
		return NULL;
	pthread_mutex_lock(&ctx->rt_lock);
	for (t = ctx->rt_head; t; t = t->next)
		if (t->layer == layer && t->size == size && !strcmp(t->path, rel))
			break;
	if (!t && (t = trace_new(ctx, layer, rel, size))) {
		t->next = ctx->rt_head;
		ctx->rt_head = t;
	}
	if (t)
		atomic_fetch_add(&t->refs, 1);
	pthread_mutex_unlock(&ctx->rt_lock);
	return t;
}

void tier_range_trace_put(struct tier_range_trace *t)
{
	if (t && atomic_fetch_sub(&t->refs, 1) == 1) {
		free(t->path);
		free(t);
	}
}

void tier_range_note_read(struct tier_range_trace *t, uint64_t off, uint64_t len)
{
	uint64_t end, b, last;

	if (!t || !len || off >= t->size)
		return;
	end = off + len < t->size && off + len > off ? off + len : t->size;
	last = (end - 1) / t->unit;
	for (b = off / t->unit; b <= last; b++) {
		_Atomic uint64_t *w = &t->bits[b / 64];
		uint64_t mask = 1ULL << (b % 64);

		/* pages read again cost a load, not a locked write */
		if (atomic_load_explicit(w, memory_order_relaxed) & mask)
			continue;
		if (!(atomic_fetch_or_explicit(w, mask, memory_order_relaxed) & mask))
			atomic_store_explicit(&t->dirty, true, memory_order_release);
	}
}

/* Merge the trace's blocks into the file's index entry. */
static int fold_one(struct tier_ctx *ctx, struct tier_range_trace *t)
{
	uint64_t words = (t->nbits + 63) / 64;
	uint64_t *snap = malloc((words ? words : 1) * sizeof(*snap));
	struct tier_extent *ext = malloc(((t->nbits + 1) / 2 + 1) * sizeof(*ext));
	struct tier_pentry *e;
	bool grew = false;
	size_t n;
	int rc = -ENOMEM;

	if (!snap || !ext)
		goto out;
	for (uint64_t i = 0; i < words; i++)
		snap[i] = atomic_load_explicit(&t->bits[i], memory_order_relaxed);
	n = tier_bitmap_extents(snap, t->nbits, t->unit, t->size, ext);
	pthread_rwlock_wrlock(&ctx->lock);
	rc = tier_index_ensure(ctx, ctx->layers[t->layer].id, t->path, &e);
	if (!rc)
		rc = tier_range_add_traced(ctx, e, ext, n, &grew);
	pthread_rwlock_unlock(&ctx->lock);
	t->grew |= grew;
out:
	free(snap);
	free(ext);
	return rc;
}

/* The window is over: promote what the files gained. */
static int queue_grown(struct tier_ctx *ctx, struct tier_range_trace *t)
{
	struct tier_pentry *e;
	uint64_t order = 0;

	if (!t->grew || !ctx->cfg.promote)
		return 0;
	pthread_rwlock_rdlock(&ctx->lock);
	e = tier_index_find(ctx, ctx->layers[t->layer].id, t->path);
	if (e)
		order = e->order;
	pthread_rwlock_unlock(&ctx->lock);
	return tier_queue_push(ctx, t->layer, t->path, order);
}

/* Callers serialise folds (the drain lock). */
int tier_range_fold(struct tier_ctx *ctx, bool window_closed)
{
	struct tier_range_trace **v, *t;
	size_t n = 0, i = 0;
	uint64_t now = tier_now_mono_ns();
	int rc = 0, e;

	if (!ctx->rt_lock_init)
		return 0;
	pthread_mutex_lock(&ctx->rt_lock);
	for (t = ctx->rt_head; t; t = t->next)
		n++;
	if (!n || (!window_closed && now - ctx->rt_folded_ns < FOLD_INTERVAL_NS)) {
		pthread_mutex_unlock(&ctx->rt_lock);
		return 0;
	}
	v = malloc(n * sizeof(*v));
	if (!v) {
		pthread_mutex_unlock(&ctx->rt_lock);
		return -ENOMEM;
	}
	ctx->rt_folded_ns = now;
	/* a closed window hands the list's references over to this fold */
	for (t = ctx->rt_head; t; t = t->next) {
		v[i++] = t;
		if (!window_closed)
			atomic_fetch_add(&t->refs, 1);
	}
	if (window_closed)
		ctx->rt_head = NULL;
	pthread_mutex_unlock(&ctx->rt_lock);
	for (i = 0; i < n; i++) {
		e = 0;
		if (atomic_exchange(&v[i]->dirty, false) && (e = fold_one(ctx, v[i])))
			atomic_store(&v[i]->dirty, true);	/* try again next time */
		if (!e && window_closed)
			e = queue_grown(ctx, v[i]);
		if (e && !rc)
			rc = e;
		tier_range_trace_put(v[i]);
	}
	free(v);
	return rc;
}

int tier_range_trace_init(struct tier_ctx *ctx)
{
	if (pthread_mutex_init(&ctx->rt_lock, NULL))
		return -EAGAIN;
	ctx->rt_lock_init = true;
	return 0;
}

void tier_range_trace_fini(struct tier_ctx *ctx)
{
	struct tier_range_trace *t;

	if (!ctx->rt_lock_init)
		return;
	while ((t = ctx->rt_head)) {
		ctx->rt_head = t->next;
		tier_range_trace_put(t);
	}
	pthread_mutex_destroy(&ctx->rt_lock);
	ctx->rt_lock_init = false;
}
