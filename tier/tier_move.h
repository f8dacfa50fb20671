/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared by the files of a layer move (tier_move*.c). */
#ifndef NLAYERFS_TIER_MOVE_H
#define NLAYERFS_TIER_MOVE_H

#include "tier/tier_private.h"
#include "tier/tier_util.h"
#include "tier/tier_index.h"
#include "tier/tier_promote.h"

#define MOVE_TMP_PREFIX ".nlmove-tmp-"	/* HDD/layers: a copy being made */
#define MOVE_OLD_PREFIX ".nlmove-old-"	/* NVM/layers: a moved layer's NVM copy */

/* tier_move_copy.c: the tree under @src into the empty directory @dst,
 * flushed to its disk; then compared with it, read back from the disk.
 * -EBADMSG and a message in @why when they differ. */
int tier_move_copy_tree(struct tier_ctx *ctx, int src, int dst, uint64_t *bytes);
int tier_move_verify_tree(struct tier_ctx *ctx, int src, int dst, char *why, size_t whylen);

/* tier_move_hold.c: processes holding anything under @dir (descriptors,
 * working or root directories) and overlay mounts naming @dir or @name. */
unsigned tier_move_holders(const char *dir, const char *name);
/* rm -rf; a fault point between two entries. */
int tier_move_rm_tree(const char *path);

/* tier_move_hot.c: NVM copies of the traced files of @layer, read from its
 * NVM copy @nvm and named by the files of its HDD copy @hdd. */
uint64_t tier_move_hot_copies(struct tier_ctx *ctx, int layer, const char *nvm, const char *hdd);

#endif
