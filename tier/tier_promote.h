/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Promotion (tier_promote.c): the queue of files to copy to NVM, the
 * workers that copy them, eviction and room in the NVM budget.
 */
#ifndef NLAYERFS_TIER_PROMOTE_H
#define NLAYERFS_TIER_PROMOTE_H

#include <sys/stat.h>
#include "tier/tier_index.h"

struct tier_qitem {
	struct tier_qitem *next;
	struct tier_qitem *hnext;	/* in qset while queued or copying */
	uint64_t hash;
	int layer;
	char *path;
	uint64_t order;
};

bool tier_cancelled(struct tier_ctx *ctx);
int tier_workers_start(struct tier_ctx *ctx);
void tier_workers_stop(struct tier_ctx *ctx);
int tier_queue_push(struct tier_ctx *ctx, int layer, const char *path, uint64_t order);
bool tier_entry_matches(const struct tier_pentry *e, const struct stat *st);
bool tier_same_source(const struct stat *a, const struct stat *b);
uint64_t tier_nvm_used_locked(struct tier_ctx *ctx);
int64_t tier_evict_locked(struct tier_ctx *ctx, uint64_t bytes);
int tier_make_room_locked(struct tier_ctx *ctx, uint64_t need, const struct tier_pentry *than);

#endif
