/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Range copies of big files: what the rest of the tiering engine calls.
 * The index stores one record per big file (struct tier_prange, in the
 * pool since layout v2); the trace folds read ranges into it at the end of
 * a window; promotion hands big files to tier_range_promote(); the scrub
 * hashes a copy the way tier_range_digest_head() names it. The public
 * calls (tier_range_open and the others) are in tier/tier.h.
 */
#ifndef NLAYERFS_TIER_RANGE_H
#define NLAYERFS_TIER_RANGE_H

#include <sys/stat.h>
#include <openssl/evp.h>
#include "tier/tier_index.h"

/* The ranges of one big file (v2). */
struct tier_prange {
	PMEMoid next;
	uint64_t slot;			/* its entry */
	uint64_t traced_n;		/* union of what every start read */
	PMEMoid traced;			/* traced_n * struct tier_extent */
	uint64_t copy_n;		/* what the committed copy holds */
	PMEMoid copy;
	uint64_t copy_bytes;		/* allocated bytes of that copy */
};

/* Big enough for a range copy (range_threshold). */
bool tier_range_big(const struct tier_ctx *ctx, uint64_t size);
/* true when every byte of @want lies inside @have (both sorted, merged). */
bool tier_extents_cover(const struct tier_extent *have, size_t nh, const struct tier_extent *want,
			size_t nw);

/* The index (range_index.c); callers hold ctx->lock. */
struct tier_prange *tier_range_rec(struct tier_ctx *ctx, const struct tier_pentry *e);
int tier_range_index_upgrade(struct tier_ctx *ctx);
int tier_range_index_load(struct tier_ctx *ctx);
void tier_range_tx_clear_copy(struct tier_ctx *ctx, const struct tier_pentry *e);

/* The trace of read ranges (range_trace.c). */
int tier_range_trace_init(struct tier_ctx *ctx);
void tier_range_trace_fini(struct tier_ctx *ctx);
int tier_range_fold(struct tier_ctx *ctx, bool window_closed);

/* The copy (range_promote.c). */
int tier_range_promote(struct tier_ctx *ctx, int layer, const char *rel, int fd,
		       const struct stat *st);
void tier_range_digest_head(EVP_MD_CTX *md, uint64_t size, const struct tier_extent *ext,
			    size_t n);

#endif
