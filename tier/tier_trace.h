/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The trace of first opens (tier_trace.c): a lock-free "seen" set and a
 * ring the open path writes, drained into the index by a thread that also
 * ends trace windows. Read ranges of big files are traced in range/.
 */
#ifndef NLAYERFS_TIER_TRACE_H
#define NLAYERFS_TIER_TRACE_H

#include "tier/tier_private.h"

#define TIER_SEEN_BITS 16
#define TIER_RING_BITS 12

struct tier_trace_rec {
	int layer;
	char *path;
	uint64_t size, time, order;
};

struct tier_ring_slot {
	_Atomic uint64_t seq;
	struct tier_trace_rec rec;
};

int tier_trace_init(struct tier_ctx *ctx);
/* the window ended: fold, queue the hot files (drainer thread) */
void tier_trace_window_ended(struct tier_ctx *ctx);
void tier_trace_fini(struct tier_ctx *ctx);

#endif
