/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Checks of NVM copies against their digests (tier_scrub.c).
 */
#ifndef NLAYERFS_TIER_SCRUB_H
#define NLAYERFS_TIER_SCRUB_H

#include "tier/tier_private.h"

int tier_copy_check(struct tier_ctx *ctx, const char *path, const uint8_t *digest,
		    const struct tier_extent *ext, size_t n, uint64_t size);
void tier_copy_bad(struct tier_ctx *ctx, const char *layer_id, const char *rel,
		   const char *path, int rc, const char *what);

#endif
