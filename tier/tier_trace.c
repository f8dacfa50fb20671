/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * First-open trace. The open path only touches two lock-free structures:
 * a "seen" set (open addressing over 64-bit key hashes, claimed by CAS)
 * so each file is recorded once per cold start, and a bounded ring of
 * records (per-slot sequence numbers, multi-producer) whose position is the
 * first-open order. A background thread drains the ring into the index.
 * A hash collision can hide a file from one trace; that only costs a
 * missed promotion, never wrong data.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "tier/tier_private.h"
#include "tier/tier_util.h"
#include "tier/tier_index.h"
#include "tier/tier_trace.h"
#include "tier/tier_promote.h"
#include "tier/range/range.h"

#define SEEN_SIZE (1u << TIER_SEEN_BITS)
#define RING_SIZE (1u << TIER_RING_BITS)

/* true when this call is the first to claim @h in the set */
static bool seen_claim(struct tier_ctx *ctx, uint64_t h)
{
	for (uint32_t k = 0; k < SEEN_SIZE / 2; k++) {
		_Atomic uint64_t *slot = &ctx->seen[(h + k) & (SEEN_SIZE - 1)];
		uint64_t cur = atomic_load_explicit(slot, memory_order_relaxed);

		if (cur == h)
			return false;
		if (cur == 0) {
			if (atomic_compare_exchange_strong(slot, &cur, h))
				return true;
			if (cur == h)
				return false;
		}
	}
	return false;	/* set too full: stop recording rather than block */
}

static bool ring_push(struct tier_ctx *ctx, const struct tier_trace_rec *r)
{
	uint64_t pos = atomic_load_explicit(&ctx->ring_head, memory_order_relaxed);

	for (;;) {
		struct tier_ring_slot *s = &ctx->ring[pos & (RING_SIZE - 1)];
		uint64_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
		int64_t diff = (int64_t)(seq - pos);

		if (diff == 0) {
			if (atomic_compare_exchange_weak(&ctx->ring_head, &pos, pos + 1)) {
				s->rec = *r;
				s->rec.order = pos - atomic_load_explicit(&ctx->trace_base, memory_order_relaxed);
				atomic_store_explicit(&s->seq, pos + 1, memory_order_release);
				return true;
			}
		} else if (diff < 0) {
			return false;	/* full: the drainer is behind */
		} else {
			pos = atomic_load_explicit(&ctx->ring_head, memory_order_relaxed);
		}
	}
}

static bool ring_pop(struct tier_ctx *ctx, struct tier_trace_rec *r)
{
	uint64_t pos = ctx->ring_tail;
	struct tier_ring_slot *s = &ctx->ring[pos & (RING_SIZE - 1)];

	if (atomic_load_explicit(&s->seq, memory_order_acquire) != pos + 1)
		return false;
	*r = s->rec;
	atomic_store_explicit(&s->seq, pos + RING_SIZE, memory_order_release);
	ctx->ring_tail = pos + 1;
	return true;
}

bool tier_trace_open(struct tier_ctx *ctx, int layer, const char *relpath, uint64_t size)
{
	uint64_t end = atomic_load_explicit(&ctx->trace_end, memory_order_relaxed), now;
	struct tier_trace_rec r;

	if (!end || layer < 0 || (size_t)layer >= tier_layer_count(ctx) || !relpath)
		return false;
	if (atomic_load_explicit(&ctx->index_full, memory_order_relaxed))
		return false;
	now = tier_now_mono_ns();
	if (now > end)
		return false;
	if (!seen_claim(ctx, tier_hash_key(ctx->layers[layer].id, relpath)))
		return false;
	/* a start that still opens new files is not quiet */
	atomic_store_explicit(&ctx->trace_last_ns, now, memory_order_relaxed);
	r.layer = layer;
	r.size = size;
	r.time = (uint64_t)time(NULL);
	r.path = strdup(relpath);
	if (!r.path || !ring_push(ctx, &r)) {
		free(r.path);
		atomic_fetch_add(&ctx->trace_dropped, 1);
		return false;
	}
	atomic_fetch_add_explicit(&ctx->trace_records, 1, memory_order_relaxed);
	return true;
}

/* Read ranges of big files; the fold after the window closes queues them. */
static int fold_ranges(struct tier_ctx *ctx)
{
	uint64_t end = atomic_load(&ctx->trace_end);

	return tier_range_fold(ctx, !end || tier_now_mono_ns() > end);
}

/* Once per window, at the first flush after it ended (its records and
 * ranges are folded by then): the hot files of every start not on NVM yet are queued. */
static void end_of_window(struct tier_ctx *ctx)
{
	uint64_t gen = atomic_load(&ctx->trace_gen), done = atomic_load(&ctx->trace_folded_gen);

	if (atomic_load(&ctx->trace_end) || done == gen ||
	    !atomic_compare_exchange_strong(&ctx->trace_folded_gen, &done, gen))
		return;
	if (ctx->cfg.promote)
		tier_promote_hot(ctx);
}

int tier_trace_flush(struct tier_ctx *ctx)
{
	struct tier_trace_rec r;
	int rc = 0, n = 0, e;

	pthread_mutex_lock(&ctx->drain_lock);
	while (ring_pop(ctx, &r)) {
		pthread_rwlock_wrlock(&ctx->lock);
		e = tier_index_record_trace(ctx, &r);
		pthread_rwlock_unlock(&ctx->lock);
		/* big files are queued when their read ranges are known */
		if (!e && ctx->cfg.promote && ctx->layers[r.layer].home == TIER_HOME_HDD &&
		    !tier_range_big(ctx, r.size))
			e = tier_queue_push(ctx, r.layer, r.path, r.order);
		if (e && !rc)
			rc = e;
		free(r.path);
		n++;
	}
	e = fold_ranges(ctx);
	if (e && !rc)
		rc = e;
	pthread_mutex_unlock(&ctx->drain_lock);
	end_of_window(ctx);
	return rc ? rc : n;
}

/* The window is over by time: its length, or quiet since the last first
 * open. Closed here, so that the end is handled without any mount. */
static void close_if_due(struct tier_ctx *ctx)
{
	uint64_t end = atomic_load(&ctx->trace_end), now = tier_now_mono_ns();
	uint64_t quiet = (uint64_t)ctx->cfg.trace_quiet * 1000000000ULL;

	if (!end)
		return;
	if (now > end || (quiet && now > atomic_load(&ctx->trace_last_ns) + quiet))
		atomic_compare_exchange_strong(&ctx->trace_end, &end, 0);
}

static void *drainer_main(void *arg)
{
	struct tier_ctx *ctx = arg;

	pthread_mutex_lock(&ctx->drain_lock);
	while (!ctx->drainer_stop) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20 * 1000000L;	/* 20 ms: traces are not urgent */
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&ctx->drain_cond, &ctx->drain_lock, &ts);
		if (ctx->drainer_stop)
			break;
		pthread_mutex_unlock(&ctx->drain_lock);
		close_if_due(ctx);
		tier_trace_flush(ctx);
		pthread_mutex_lock(&ctx->drain_lock);
	}
	pthread_mutex_unlock(&ctx->drain_lock);
	return NULL;
}

int tier_trace_start(struct tier_ctx *ctx)
{
	int rc;

	atomic_store(&ctx->trace_end, 0);
	tier_trace_flush(ctx);
	for (uint32_t i = 0; i < SEEN_SIZE; i++)
		atomic_store_explicit(&ctx->seen[i], 0, memory_order_relaxed);
	atomic_store(&ctx->trace_base, atomic_load(&ctx->ring_head));
	pthread_rwlock_wrlock(&ctx->lock);
	rc = tier_index_new_cold_start(ctx);
	pthread_rwlock_unlock(&ctx->lock);
	atomic_store(&ctx->trace_starts, 0);
	atomic_store(&ctx->trace_last_ns, tier_now_mono_ns());
	atomic_fetch_add(&ctx->trace_gen, 1);
	atomic_store(&ctx->trace_end,
		     tier_now_mono_ns() + (uint64_t)ctx->cfg.trace_window * 1000000000ULL);
	return rc;
}

void tier_trace_stop(struct tier_ctx *ctx)
{
	atomic_store(&ctx->trace_end, 0);
}

/* Starts running at once share one window (one seen-set): a start that
 * finds a window open joins it and keeps it open with its first opens. */
uint64_t tier_trace_begin(struct tier_ctx *ctx)
{
	uint64_t gen;

	pthread_mutex_lock(&ctx->start_lock);
	if (!tier_trace_active(ctx))
		tier_trace_start(ctx);
	else
		atomic_store(&ctx->trace_last_ns, tier_now_mono_ns());
	atomic_fetch_add(&ctx->trace_starts, 1);
	gen = atomic_load(&ctx->trace_gen);
	pthread_mutex_unlock(&ctx->start_lock);
	return gen;
}

void tier_trace_end(struct tier_ctx *ctx, uint64_t gen)
{
	pthread_mutex_lock(&ctx->start_lock);
	/* a start of a window that closed already has nothing to end */
	if (gen == atomic_load(&ctx->trace_gen) && tier_trace_active(ctx) &&
	    atomic_fetch_sub(&ctx->trace_starts, 1) == 1)
		tier_trace_stop(ctx);
	pthread_mutex_unlock(&ctx->start_lock);
	pthread_mutex_lock(&ctx->drain_lock);
	pthread_cond_signal(&ctx->drain_cond);
	pthread_mutex_unlock(&ctx->drain_lock);
}

int tier_trace_init(struct tier_ctx *ctx)
{
	ctx->seen = calloc(SEEN_SIZE, sizeof(*ctx->seen));
	ctx->ring = calloc(RING_SIZE, sizeof(*ctx->ring));
	if (!ctx->seen || !ctx->ring)
		return -ENOMEM;
	for (uint32_t i = 0; i < RING_SIZE; i++)
		atomic_init(&ctx->ring[i].seq, i);
	pthread_mutex_init(&ctx->drain_lock, NULL);
	pthread_cond_init(&ctx->drain_cond, NULL);
	ctx->drain_lock_init = true;
	if (tier_range_trace_init(ctx))
		return -EAGAIN;
	if (pthread_create(&ctx->drainer, NULL, drainer_main, ctx))
		return -EAGAIN;
	ctx->drainer_on = true;
	return 0;
}

void tier_trace_fini(struct tier_ctx *ctx)
{
	atomic_store(&ctx->trace_end, 0);
	if (ctx->drainer_on) {
		pthread_mutex_lock(&ctx->drain_lock);
		ctx->drainer_stop = true;
		pthread_cond_signal(&ctx->drain_cond);
		pthread_mutex_unlock(&ctx->drain_lock);
		pthread_join(ctx->drainer, NULL);
		ctx->drainer_on = false;
	}
	if (ctx->ring && ctx->pop && ctx->drain_lock_init)
		tier_trace_flush(ctx);
	tier_range_trace_fini(ctx);
	free(ctx->seen);
	free(ctx->ring);
	ctx->seen = NULL;
	ctx->ring = NULL;
}
