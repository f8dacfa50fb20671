/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Internals of the tiering library; not installed, not used outside tier/. */
#ifndef NLAYERFS_TIER_PRIVATE_H
#define NLAYERFS_TIER_PRIVATE_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <libpmemobj.h>
#include <openssl/evp.h>
#include "tier/tier.h"

#define TIER_ID_LEN 64			/* hex SHA-256 */
#define TIER_INDEX_LAYOUT "nlayerfs-tier-index"
#define TIER_INDEX_MAGIC 0x58444e4952454954ULL /* "TIERINDX" */
#define TIER_INDEX_VERSION 2		/* 2: range copies */
#define TIER_INDEX_FILE "tier.index"
#define TIER_OBJECTS_DIR "objects"
#define TIER_SEEN_BITS 16
#define TIER_RING_BITS 12
/* Layers of one context: allocated whole at open, so that readers without
 * the lock never see the array move while mounts add layers. */
#define TIER_MAX_LAYERS 4096

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

struct tier_layer {
	char *dir;			/* realpath */
	char id[TIER_ID_LEN + 1];
	enum tier_home home;
	uint64_t bytes;			/* data bytes of NVM-home layers */
	int place;			/* enum tier_place, __atomic */
	bool owned;			/* in the store's NVM/layers and registry */
	unsigned holders;		/* leaving: holders seen last, __atomic */
	uint64_t old_bytes;		/* leaving: NVM bytes of the old copy,
					 * out of the budget from the switch */
	uint64_t move_failed_ns;	/* last failed move: not retried at once */
};

struct tier_trace_rec {
	int layer;
	char *path;
	uint64_t size, time, order;
};

struct tier_ring_slot {
	_Atomic uint64_t seq;
	struct tier_trace_rec rec;
};

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

struct tier_qitem {
	struct tier_qitem *next;
	struct tier_qitem *hnext;	/* in qset while queued or copying */
	uint64_t hash;
	int layer;
	char *path;
	uint64_t order;
};

struct tier_ctx {
	struct tier_config cfg;
	char *objdir;
	PMEMobjpool *pop;
	struct tier_proot *root;
	struct tier_pentry *ent;
	pthread_rwlock_t lock;		/* index, map, objects, layers */

	struct tier_layer *layers;	/* TIER_MAX_LAYERS entries */
	size_t nlayers;			/* published with a release store */

	struct tier_map_node **map;
	size_t map_size;
	struct tier_obj **objs;
	size_t objs_size;
	struct tier_prange **range_of;	/* by entry slot, rebuilt at open */
	uint64_t nobjs;
	uint64_t free_hint;		/* where to look for a free entry */
	uint64_t nindexed;		/* entries in use */
	_Atomic bool index_full;	/* a new entry did not fit: no tracing */

	/* trace */
	_Atomic uint64_t *seen;
	struct tier_ring_slot *ring;
	_Atomic uint64_t ring_head;
	uint64_t ring_tail;		/* drain side, under drain_lock */
	pthread_mutex_t drain_lock;
	_Atomic uint64_t trace_base;	/* ring position where this trace began */
	_Atomic uint64_t trace_end;	/* 0: closed; else CLOCK_MONOTONIC ns */
	_Atomic uint64_t trace_records, trace_dropped;
	/* starts (mounts) in the current window: it closes when they are
	 * over, quiet, or at trace_window, whichever is first */
	_Atomic uint64_t trace_gen;		/* windows opened */
	_Atomic uint64_t trace_starts;		/* starts of trace_gen not over */
	_Atomic uint64_t trace_last_ns;		/* last first open (or window start) */
	_Atomic uint64_t trace_folded_gen;	/* last window whose end was handled */
	pthread_mutex_t start_lock;		/* tier_trace_begin/end */
	pthread_t drainer;
	bool drainer_on, drainer_stop;
	pthread_cond_t drain_cond;
	bool drain_lock_init;

	/* promotion queue */
	pthread_mutex_t qlock;
	pthread_cond_t qcond, idle;
	struct tier_qitem *qhead, *qtail;
	struct tier_qitem **qset;	/* files queued or copying, by hash */
	uint64_t qlen;
	unsigned busy;
	bool stopping;
	_Atomic bool cancel;		/* unmount: copies in flight stop now */
	_Atomic uint64_t scrubs, scrub_dropped;	/* copies failing a check */
	pthread_t *workers;
	unsigned nworkers;

	/* read-range traces of big files (tier_range_trace.c) */
	pthread_mutex_t rt_lock;
	struct tier_range_trace *rt_head;	/* this window's, under rt_lock */
	uint64_t rt_folded_ns;			/* last fold while the window is open */
	bool rt_lock_init;
	_Atomic uint64_t range_served_nvm, range_served_layer;

	/* write-back of NVM-home layers (tier_writeback.c) */
	_Atomic bool wb_running;		/* one pass or file at a time */
	_Atomic bool wb_abort;			/* unmount: stop passes now */
	_Atomic uint64_t open_epoch;		/* grace periods of lower opens */
	_Atomic uint64_t opens[2];		/* opens in flight, by epoch parity */
	_Atomic uint64_t wb_busy;		/* written back, held open, not released */

	/* whole-layer moves to HDD (tier_move.c) */
	struct tier_move_state *move;

	/* metadata images of HDD layers (tier_meta.c) */
	struct tier_meta_state *meta;
	_Atomic uint64_t meta_bytes;		/* in the NVM budget */
};

/* tier_util.c */
void tier_fault(const char *point);
void tier_write_behind(int fd, uint64_t written, uint64_t *started);
void tier_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
uint64_t tier_hash_key(const char *layer_id, const char *path);
uint64_t tier_now_mono_ns(void);
void tier_hex(const uint8_t *d, size_t n, char *out);
int tier_fsync_dir(const char *dir);
bool tier_path_ok(const char *relpath);

/* tier_index.c — callers hold ctx->lock (write for changes) */
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

/* tier_trace.c */
int tier_trace_init(struct tier_ctx *ctx);
/* the window ended: fold, queue the hot files (drainer thread) */
void tier_trace_window_ended(struct tier_ctx *ctx);
void tier_trace_fini(struct tier_ctx *ctx);

/* tier_writeback.c: a crash's temps under HDD/writeback/<id>/ of one layer */
int tier_writeback_clean_layer(struct tier_ctx *ctx, size_t layer);

/* tier_ctx.c: a layer record; under the write lock */
int tier_layer_append_locked(struct tier_ctx *ctx, const struct tier_layer *l);

/* tier_move.c: the mover thread (recovery, reaping, moves over budget) */
int tier_move_init(struct tier_ctx *ctx);
void tier_move_fini(struct tier_ctx *ctx);

/* tier_meta.c: a layer registered after tier_meta_start() */
void tier_meta_layer_added(struct tier_ctx *ctx, size_t layer);

/* tier_promote.c */
bool tier_cancelled(struct tier_ctx *ctx);
int tier_workers_start(struct tier_ctx *ctx);
void tier_workers_stop(struct tier_ctx *ctx);
int tier_queue_push(struct tier_ctx *ctx, int layer, const char *path, uint64_t order);
bool tier_entry_matches(const struct tier_pentry *e, const struct stat *st);
bool tier_same_source(const struct stat *a, const struct stat *b);
uint64_t tier_nvm_used_locked(struct tier_ctx *ctx);
int64_t tier_evict_locked(struct tier_ctx *ctx, uint64_t bytes);
int tier_make_room_locked(struct tier_ctx *ctx, uint64_t need, const struct tier_pentry *than);

/* tier_range_*.c: range copies of big files */
bool tier_range_big(const struct tier_ctx *ctx, uint64_t size);
size_t tier_bitmap_extents(const uint64_t *bits, uint64_t nbits, uint64_t unit, uint64_t size,
			   struct tier_extent *out);
size_t tier_extents_union(const struct tier_extent *a, size_t na, const struct tier_extent *b,
			  size_t nb, struct tier_extent *out);
void tier_extent_push_merged(struct tier_extent *out, size_t *n, uint64_t off, uint64_t len);
bool tier_extents_cover(const struct tier_extent *have, size_t nh, const struct tier_extent *want,
			size_t nw);
struct tier_range_trace *tier_range_trace_get(struct tier_ctx *ctx, int layer, const char *rel,
					      uint64_t size);
void tier_range_trace_put(struct tier_range_trace *t);
int tier_range_trace_init(struct tier_ctx *ctx);
void tier_range_trace_fini(struct tier_ctx *ctx);
int tier_range_fold(struct tier_ctx *ctx, bool window_closed);
struct tier_prange *tier_range_rec(struct tier_ctx *ctx, const struct tier_pentry *e);
int tier_range_index_upgrade(struct tier_ctx *ctx);
int tier_range_index_load(struct tier_ctx *ctx);
int tier_range_add_traced(struct tier_ctx *ctx, struct tier_pentry *e,
			  const struct tier_extent *ext, size_t n, bool *grew);
int tier_range_set_copy(struct tier_ctx *ctx, struct tier_pentry *e, const uint8_t *digest,
			const struct stat *src, const struct tier_extent *ext, size_t n,
			uint64_t bytes);
void tier_range_tx_clear_copy(struct tier_ctx *ctx, const struct tier_pentry *e);
int tier_range_promote(struct tier_ctx *ctx, int layer, const char *rel, int fd,
		       const struct stat *st);
void tier_range_digest_head(EVP_MD_CTX *md, uint64_t size, const struct tier_extent *ext,
			    size_t n);

/* tier_scrub.c: checks of NVM copies against their digests */
int tier_copy_check(struct tier_ctx *ctx, const char *path, const uint8_t *digest,
		    const struct tier_extent *ext, size_t n, uint64_t size);
void tier_copy_bad(struct tier_ctx *ctx, const char *layer_id, const char *rel,
		   const char *path, int rc, const char *what);

#endif
