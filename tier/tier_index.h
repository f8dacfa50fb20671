/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The hot-file index (tier_index.c): the layout of the libpmemobj pool
 * (one entry per traced file, the objects promoted files are copied to)
 * and its DRAM maps, rebuilt at open.
 */
#ifndef NLAYERFS_TIER_INDEX_H
#define NLAYERFS_TIER_INDEX_H

#include <sys/stat.h>
#include <libpmemobj.h>
#include "tier/tier_private.h"

#define TIER_INDEX_LAYOUT "nlayerfs-tier-index"
#define TIER_INDEX_MAGIC 0x58444e4952454954ULL /* "TIERINDX" */
#define TIER_INDEX_VERSION 2		/* 2: range copies */
#define TIER_INDEX_FILE "tier.index"

enum tier_state { TIER_ST_TRACED = 0, TIER_ST_PROMOTED = 1, TIER_ST_WRITTEN_BACK = 2,
		  TIER_ST_RANGE = 3 /* a sparse copy of traced ranges (v2) */ };

/* One file in the pool. Laid out for persistence: fixed-size fields only. */
struct tier_pentry {
	uint8_t used, state;
	uint8_t wb;			/* written back: the HDD copy holds the
					 * data, the layer file may be a hole */
	uint8_t pad[5];
	char layer[TIER_ID_LEN + 1];
	char pad2[7];
	PMEMoid path;			/* pmemobj string */
	uint64_t heat;			/* cold starts that needed it */
	uint64_t last_time;		/* seconds, last cold start needing it */
	uint64_t order;			/* first-open order in its last trace */
	uint64_t src_size, src_mtime_ns, src_ino;
	uint8_t digest[32];		/* object of a promoted file */
};

struct tier_proot {
	uint64_t magic;
	uint32_t version, pad;
	uint64_t capacity;
	uint64_t cold_starts;
	uint64_t object_bytes;		/* bytes of distinct objects */
	PMEMoid entries;		/* capacity * struct tier_pentry */
	/* v2 */
	PMEMoid ranges;			/* list of struct tier_prange */
};
#define TIER_PROOT_V1_SIZE offsetof(struct tier_proot, ranges)

/* DRAM map (layer id, path) -> entry slot, rebuilt at open. */
struct tier_map_node {
	struct tier_map_node *next;
	uint64_t hash;
	uint64_t slot;
};

/* DRAM refcounts of objects: digest -> files using it. */
struct tier_obj {
	struct tier_obj *next;
	uint8_t digest[32];
	uint64_t size, refs;
};

struct tier_trace_rec;

/* Callers hold ctx->lock (write for changes). */
/* One transaction: snapshot @obj (@size bytes of the pool), let @change
 * modify it; 0, or -EIO when the transaction aborted (nothing changed). */
int tier_index_tx(struct tier_ctx *ctx, void *obj, size_t size,
		  void (*change)(void *obj, const void *arg), const void *arg);
int tier_index_open(struct tier_ctx *ctx, char *err, size_t errlen);
void tier_index_close(struct tier_ctx *ctx);
struct tier_pentry *tier_index_find(struct tier_ctx *ctx, const char *layer_id, const char *path);
int tier_index_ensure(struct tier_ctx *ctx, const char *layer_id, const char *path,
		      struct tier_pentry **out);
int tier_index_record_trace(struct tier_ctx *ctx, const struct tier_trace_rec *r);
void tier_index_full(struct tier_ctx *ctx);
int tier_index_new_cold_start(struct tier_ctx *ctx);
int tier_index_set_promoted(struct tier_ctx *ctx, struct tier_pentry *e,
			    const uint8_t *digest, const struct stat *src);
int tier_index_drop_copy(struct tier_ctx *ctx, struct tier_pentry *e);
int tier_index_set_written_back(struct tier_ctx *ctx, const char *layer_id,
				const char *path, const struct stat *src);
int tier_index_clear_written_back(struct tier_ctx *ctx, struct tier_pentry *e);
struct tier_obj *tier_obj_find(struct tier_ctx *ctx, const uint8_t *digest);
int tier_obj_ref(struct tier_ctx *ctx, const uint8_t *digest, uint64_t size);
void tier_object_path(const struct tier_ctx *ctx, const uint8_t *digest, char *out, size_t n);
int tier_index_clean_objects(struct tier_ctx *ctx);
const char *tier_entry_path(const struct tier_pentry *e);

#endif
