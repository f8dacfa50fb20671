/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Shared by the files of tier/range/ only: extent arithmetic, the trace
 * handles of open big files, and the index updates of a fold and a copy.
 */
#ifndef NLAYERFS_TIER_RANGE_PRIVATE_H
#define NLAYERFS_TIER_RANGE_PRIVATE_H

#include "tier/range/range.h"

/* range.c */
size_t tier_bitmap_extents(const uint64_t *bits, uint64_t nbits, uint64_t unit, uint64_t size,
			   struct tier_extent *out);
size_t tier_extents_union(const struct tier_extent *a, size_t na, const struct tier_extent *b,
			  size_t nb, struct tier_extent *out);
void tier_extent_push_merged(struct tier_extent *out, size_t *n, uint64_t off, uint64_t len);

/* range_trace.c */
struct tier_range_trace *tier_range_trace_get(struct tier_ctx *ctx, int layer, const char *rel,
					      uint64_t size);
void tier_range_trace_put(struct tier_range_trace *t);

/* range_index.c; callers hold ctx->lock for writing */
int tier_range_add_traced(struct tier_ctx *ctx, struct tier_pentry *e,
			  const struct tier_extent *ext, size_t n, bool *grew);
int tier_range_set_copy(struct tier_ctx *ctx, struct tier_pentry *e, const uint8_t *digest,
			const struct stat *src, const struct tier_extent *ext, size_t n,
			uint64_t bytes);

#endif
