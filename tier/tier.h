/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libnltier — layers and storage tiers of nlayerfs.
 *
 * The one public header of tier/. No FUSE headers here or below: the union
 * mount (fs/) and the tools report events to this library and ask it where a
 * file's data lives. Calls return 0 or a negative errno unless said otherwise.
 */
#ifndef NLAYERFS_TIER_H
#define NLAYERFS_TIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- Layers, tiers, trace, hot-file index, promotion ---- */

/* ---- LASS: layer-aware storage placement ---- */

#endif
