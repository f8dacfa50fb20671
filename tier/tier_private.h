/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The tier context: the state every part of the tiering engine works on,
 * one per NVM directory. Not installed, not used outside tier/. Each part
 * keeps its own interface in its own header: tier_util.h, tier_index.h,
 * tier_trace.h, tier_promote.h, tier_scrub.h, range/range.h, meta/meta.h.
 */
#ifndef NLAYERFS_TIER_PRIVATE_H
#define NLAYERFS_TIER_PRIVATE_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <libpmemobj.h>
#include "tier/tier.h"

#define TIER_ID_LEN 64			/* hex SHA-256 */
#define TIER_OBJECTS_DIR "objects"
/* Layers of one context: allocated whole at open, so that readers without
 * the lock never see the array move while mounts add layers. */
#define TIER_MAX_LAYERS 4096

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
	int pin;			/* HDD layers: O_PATH of the root, or -1 */
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
	/* last request of a start that reached the tier (a first open, a
	 * lookup, a read of a big file) or the window's start: the window
	 * closes after trace_quiet without one, and background work that
	 * reads the HDD waits while they come (tier_yield_to_starts) */
	_Atomic uint64_t trace_last_ns;
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

	/* read-range traces of big files (range/range_trace.c) */
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

	/* metadata images of HDD layers (meta/meta.c) */
	struct tier_meta_state *meta;
	_Atomic uint64_t meta_bytes;		/* in the NVM budget */
};

/* Called by tier_ctx.c when a layer is registered. */

/* tier_writeback.c: a crash's temps under HDD/writeback/<id>/ of one layer */
int tier_writeback_clean_layer(struct tier_ctx *ctx, size_t layer);

/* tier_ctx.c: a layer record; under the write lock */
int tier_layer_append_locked(struct tier_ctx *ctx, const struct tier_layer *l);

/* tier_move.c: the mover thread (recovery, reaping, moves over budget) */
int tier_move_init(struct tier_ctx *ctx);
void tier_move_fini(struct tier_ctx *ctx);

/* meta/meta.c: a layer registered after tier_meta_start() */
void tier_meta_layer_added(struct tier_ctx *ctx, size_t layer);

#endif
