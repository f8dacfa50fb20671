/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Range records in the index pool (layout version 2). The root heads a
 * list of records, one per big file with traced ranges, each naming its
 * entry's slot; DRAM maps slots to records, rebuilt at open, so a pool
 * pays only for the files that have ranges. A record keeps the union of
 * the ranges every start read and the extents of the committed copy, each
 * an array of struct tier_extent replaced as a whole in one transaction.
 * A version 1 pool is upgraded in place: its list is empty.
 * Callers hold ctx->lock for writing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "tier/tier_private.h"
#include "tier/tier_index.h"
#include "tier/range/range.h"
#include "tier/range/range_private.h"

enum { TYPE_RANGE_REC = 16, TYPE_EXTENTS };

struct tier_prange *tier_range_rec(struct tier_ctx *ctx, const struct tier_pentry *e)
{
	return ctx->range_of ? ctx->range_of[e - ctx->ent] : NULL;
}

static void root_to_v2(void *root, const void *arg)
{
	struct tier_proot *r = root;

	(void)arg;
	r->ranges = OID_NULL;
	r->version = 2;
}

/* Version 1 -> 2: the root was already grown (new bytes zeroed) by
 * pmemobj_root(); entries keep their layout and slots. */
int tier_range_index_upgrade(struct tier_ctx *ctx)
{
	return tier_index_tx(ctx, ctx->root, sizeof(*ctx->root), root_to_v2, NULL);
}

/* The DRAM map entry slot -> record, from the persistent list. */
int tier_range_index_load(struct tier_ctx *ctx)
{
	uint64_t cap = ctx->root->capacity;
	struct tier_prange *rec;

	ctx->range_of = calloc(cap, sizeof(*ctx->range_of));
	if (!ctx->range_of)
		return -ENOMEM;
	for (PMEMoid o = ctx->root->ranges; !OID_IS_NULL(o); o = rec->next) {
		rec = pmemobj_direct(o);
		if (!rec || pmemobj_alloc_usable_size(o) < sizeof(*rec) || rec->slot >= cap ||
		    !ctx->ent[rec->slot].used || ctx->range_of[rec->slot])
			return -EUCLEAN;	/* never written so: refuse, do not guess */
		ctx->range_of[rec->slot] = rec;
	}
	return 0;
}

/* Inside a transaction: the record of @e, allocated when missing. The
 * DRAM map learns of a new one only once the transaction commits. */
static struct tier_prange *rec_tx(struct tier_ctx *ctx, const struct tier_pentry *e,
				  bool *fresh)
{
	struct tier_prange *rec = tier_range_rec(ctx, e);
	PMEMoid o;

	*fresh = !rec;
	if (rec) {
		pmemobj_tx_add_range_direct(rec, sizeof(*rec));
		return rec;
	}
	o = pmemobj_tx_zalloc(sizeof(*rec), TYPE_RANGE_REC);
	rec = pmemobj_direct(o);
	rec->slot = (uint64_t)(e - ctx->ent);
	rec->next = ctx->root->ranges;
	pmemobj_tx_add_range_direct(&ctx->root->ranges, sizeof(PMEMoid));
	ctx->root->ranges = o;
	return rec;
}

static void rec_committed(struct tier_ctx *ctx, const struct tier_pentry *e)
{
	ctx->range_of[e - ctx->ent] = pmemobj_direct(ctx->root->ranges);
}

/* Inside a transaction: a new persistent array holding @ext, the old one
 * freed. */
static void replace_extents_tx(PMEMoid *oid, uint64_t *n, const struct tier_extent *ext, size_t count)
{
	PMEMoid fresh = OID_NULL;

	if (count) {
		fresh = pmemobj_tx_alloc(count * sizeof(*ext), TYPE_EXTENTS);
		memcpy(pmemobj_direct(fresh), ext, count * sizeof(*ext));
	}
	if (!OID_IS_NULL(*oid))
		pmemobj_tx_free(*oid);
	*oid = fresh;
	*n = count;
}

static int store_traced(struct tier_ctx *ctx, const struct tier_pentry *e,
			const struct tier_extent *ext, size_t n)
{
	volatile int rc = 0;

	bool fresh = false;

	TX_BEGIN(ctx->pop) {
		struct tier_prange *rec = rec_tx(ctx, e, &fresh);

		replace_extents_tx(&rec->traced, &rec->traced_n, ext, n);
	} TX_ONABORT {
		rc = -ENOSPC;
	} TX_END
	if (!rc && fresh)
		rec_committed(ctx, e);
	return rc;
}

int tier_range_add_traced(struct tier_ctx *ctx, struct tier_pentry *e,
			  const struct tier_extent *ext, size_t n, bool *grew)
{
	struct tier_prange *rec = tier_range_rec(ctx, e);
	const struct tier_extent *old = rec ? pmemobj_direct(rec->traced) : NULL;
	size_t nold = rec ? rec->traced_n : 0, nu;
	struct tier_extent *u = malloc((nold + n + 1) * sizeof(*u));
	int rc = 0;

	*grew = false;
	if (!u)
		return -ENOMEM;
	nu = tier_extents_union(old, nold, ext, n, u);
	if (nu != nold || (nu && memcmp(u, old, nu * sizeof(*u)))) {
		rc = store_traced(ctx, e, u, nu);
		*grew = !rc;
	}
	free(u);
	return rc;
}

int tier_range_set_copy(struct tier_ctx *ctx, struct tier_pentry *e, const uint8_t *digest,
			const struct stat *src, const struct tier_extent *ext, size_t n,
			uint64_t bytes)
{
	bool new_obj = !tier_obj_find(ctx, digest), fresh = false;
	volatile int rc = 0;

	if (e->state == TIER_ST_PROMOTED || e->state == TIER_ST_RANGE)
		return -EEXIST;
	TX_BEGIN(ctx->pop) {
		struct tier_prange *rec = rec_tx(ctx, e, &fresh);

		pmemobj_tx_add_range_direct(e, sizeof(*e));
		e->src_size = (uint64_t)src->st_size;
		e->src_mtime_ns = (uint64_t)src->st_mtim.tv_sec * 1000000000ULL +
				  (uint64_t)src->st_mtim.tv_nsec;
		e->src_ino = src->st_ino;
		memcpy(e->digest, digest, 32);
		e->state = TIER_ST_RANGE;
		replace_extents_tx(&rec->copy, &rec->copy_n, ext, n);
		rec->copy_bytes = bytes;
		if (new_obj) {
			pmemobj_tx_add_range_direct(&ctx->root->object_bytes, sizeof(uint64_t));
			ctx->root->object_bytes += bytes;
		}
	} TX_ONABORT {
		rc = -ENOSPC;
	} TX_END
	if (!rc && fresh)
		rec_committed(ctx, e);
	if (!rc)
		rc = tier_obj_ref(ctx, digest, bytes);
	return rc;
}

/* Inside the transaction that drops the copy of @e. */
void tier_range_tx_clear_copy(struct tier_ctx *ctx, const struct tier_pentry *e)
{
	struct tier_prange *rec = tier_range_rec(ctx, e);
	uint64_t n;

	if (!rec)
		return;
	pmemobj_tx_add_range_direct(rec, sizeof(*rec));
	replace_extents_tx(&rec->copy, &n, NULL, 0);
	rec->copy_n = 0;
	rec->copy_bytes = 0;
}
