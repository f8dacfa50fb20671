/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Private to the store of libnlzns (store.c, stream_io.c, stream_space.c,
 * stream_persist.c): the store, the streams laid over its zones, and the
 * calls those files make of each other.
 */
#ifndef NLAYERFS_ZNS_STORE_PRIVATE_H
#define NLAYERFS_ZNS_STORE_PRIVATE_H

#include <pthread.h>

#include "zns/zns_private.h"

#define NO_ZONE UINT32_MAX

struct zns_store {
	struct zns_dev *dev;
	const struct zns_geometry *g;
	uint64_t unit;
	uint64_t batch;
	uint64_t zone_bw;
	struct zns_alloc *alloc;
	pthread_mutex_t lock;		/* zone use and allocation */
	struct zns_zone_use *use;
	uint32_t reserved;		/* zones below this one are never allocated */
};

/* One writer per zone slot: a queue of depth one. */
struct slot_writer {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct zns_dev *dev;
	bool has_job, stop;
	uint32_t zone;
	uint64_t off;
	const void *buf;
	size_t len;
	ssize_t rc;
};

struct zns_stream {
	struct zns_store *s;
	pthread_rwlock_t lock;		/* appends write, reads share */
	uint32_t tenant;
	uint32_t k;
	uint32_t *groups;
	uint64_t cap;
	uint32_t *rows;			/* nrows x k zones; NO_ZONE once reset */
	uint64_t nrows;
	uint64_t end;			/* stream end, staged bytes included */
	int error;			/* a failed zone write breaks the stream */
	/*
	 * Staging of the last row: stage[s] holds zone bytes from stage_zoff[s];
	 * the bytes before stage_zoff[s] are on the device or in flight from
	 * spare[s] (inflight[s] bytes).
	 */
	size_t stage_cap;
	unsigned char **stage;
	unsigned char **spare;
	size_t *inflight;
	size_t *stage_len;
	uint64_t *stage_zoff;
	struct slot_writer *w;
	/* zones found short of the description at recovery: bytes from
	 * lost_wp[i] of zone lost_zone[i] are gone */
	uint32_t *lost_zone;
	uint64_t *lost_wp;
	uint32_t n_lost;
};

/* store.c */
/* A free zone of @group, emptied if a previous owner left data (s->lock held). */
uint32_t zns_store_take_zone(struct zns_store *s, uint32_t group, uint32_t tenant);
/* Room for @need more active zones, or -EOVERFLOW (s->lock held). */
int zns_store_active_room(struct zns_store *s, uint32_t need);
int zns_store_give_back_zone(struct zns_store *s, uint32_t zone);
struct zns_stream *zns_stream_new(struct zns_store *s, uint32_t tenant);
/* Buffers and writers, once k is known. */
int zns_stream_start(struct zns_stream *st);
void zns_stream_free(struct zns_stream *st);

/* stream_io.c */
int zns_writers_start(struct zns_stream *st);
/* Stop the first @n writers (each finishes its job first) and free them. */
void zns_writers_stop(struct zns_stream *st, uint32_t n);
/* Wait for the writes in flight; a failed one breaks the stream. */
int zns_stream_drain(struct zns_stream *st);
/* Write out everything staged, the end padded to a block (lock held). */
int zns_stream_flush_locked(struct zns_stream *st);

/* stream_space.c; st->lock held for writing */
void zns_stream_add_dead_locked(struct zns_stream *st, uint64_t off, uint64_t len);
/* Rows before the current one are full: reset those all dead. */
void zns_stream_reclaim_locked(struct zns_stream *st, uint64_t from_row, uint64_t to_row);

/* The zone of @slot in @row; NO_ZONE once reset or past the end. */
static inline uint32_t row_zone(const struct zns_stream *st, uint64_t row, uint32_t slot)
{
	return row < st->nrows ? st->rows[row * st->k + slot] : NO_ZONE;
}

static inline uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static inline uint64_t max64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

#endif
