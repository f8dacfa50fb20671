/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The store: each tenant has one stream laid over the zones of its groups.
 * A row is one zone per group; stripe units go round-robin over the row's
 * zones (zns_stripe_locate) and a full row is continued by a new row in the
 * same groups. Appends are staged per zone and written by one writer thread
 * per zone, all zones at once, always at each zone's write pointer. Each
 * zone has two buffers: one is written out while the next fills. The only
 * per-stream table is the list of rows (k zone numbers each).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "zns/store_private.h"

#define DEFAULT_UNIT (64u << 10)
#define DEFAULT_BATCH (1u << 20)
#define DEFAULT_ZONE_BW (100ull << 20)

/* ---------------- store ---------------- */

static int store_check_opts(const struct zns_geometry *g, uint64_t unit)
{
	if (!unit || unit % g->block_size || g->zone_cap % unit)
		return -EINVAL;
	return 0;
}

int zns_store_new(struct zns_dev *dev, const struct zns_store_opts *opts,
		  struct zns_store **sp)
{
	const struct zns_geometry *g = zns_dev_geometry(dev);
	struct zns_store *s;
	uint64_t unit = opts && opts->stripe_unit ? opts->stripe_unit : DEFAULT_UNIT;
	int rc = store_check_opts(g, unit);

	if (rc)
		return rc;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->use = calloc(g->nr_zones, sizeof(*s->use));
	rc = s->use ? zns_alloc_new(zns_nr_groups(g),
				    opts ? opts->admission : ZNS_ADMIT_FAIR, &s->alloc)
		    : -ENOMEM;
	if (rc) {
		free(s->use);
		free(s);
		return rc;
	}
	s->dev = dev;
	s->g = g;
	s->reserved = opts ? opts->reserved_zones : 0;
	s->unit = unit;
	s->batch = opts && opts->batch ? opts->batch : DEFAULT_BATCH;
	s->zone_bw = opts && opts->zone_bw ? opts->zone_bw
					   : g->zone_bw ? g->zone_bw : DEFAULT_ZONE_BW;
	pthread_mutex_init(&s->lock, NULL);
	*sp = s;
	return 0;
}

void zns_store_free(struct zns_store *s)
{
	if (!s)
		return;
	zns_alloc_free(s->alloc);
	pthread_mutex_destroy(&s->lock);
	free(s->use);
	free(s);
}

struct zns_alloc *zns_store_alloc(struct zns_store *s)
{
	return s->alloc;
}

int zns_store_zone_use(struct zns_store *s, uint32_t zone, struct zns_zone_use *u)
{
	if (zone >= s->g->nr_zones)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	*u = s->use[zone];
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* A free zone of @group, emptied if a previous owner left data (lock held). */
uint32_t zns_store_take_zone(struct zns_store *s, uint32_t group, uint32_t tenant)
{
	uint32_t m = zns_nr_groups(s->g);

	for (uint32_t z = group; z < s->g->nr_zones; z += m) {
		struct zns_zone_info zi;

		if (z < s->reserved || s->use[z].owner || zns_zone_report(s->dev, z, &zi))
			continue;
		if (zi.state == ZNS_ZONE_READONLY || zi.state == ZNS_ZONE_OFFLINE)
			continue;
		if ((zi.state != ZNS_ZONE_EMPTY || zi.wp) && zns_zone_reset(s->dev, z))
			continue;
		s->use[z].owner = tenant + 1;
		s->use[z].dead = 0;
		return z;
	}
	return NO_ZONE;
}

/*
 * A new row opens k zones at once: check the device's active-zone limit up
 * front (lock held), so that a refusal leaves the stream usable instead of
 * failing a write half-way.
 */
int zns_store_active_room(struct zns_store *s, uint32_t need)
{
	int active;

	if (!s->g->max_active)
		return 0;
	active = zns_dev_active_zones(s->dev);
	if (active < 0)
		return active;
	return (uint32_t)active + need <= s->g->max_active ? 0 : -EOVERFLOW;
}

int zns_store_give_back_zone(struct zns_store *s, uint32_t zone)
{
	int rc = zns_zone_reset(s->dev, zone);

	pthread_mutex_lock(&s->lock);
	s->use[zone].owner = 0;
	s->use[zone].dead = 0;
	pthread_mutex_unlock(&s->lock);
	return rc;
}


/* ---------------- stream ---------------- */

void zns_stream_free(struct zns_stream *st)
{
	for (uint32_t i = 0; i < st->k; i++) {
		if (st->stage)
			free(st->stage[i]);
		if (st->spare)
			free(st->spare[i]);
	}
	free(st->stage);
	free(st->spare);
	free(st->inflight);
	free(st->stage_len);
	free(st->stage_zoff);
	free(st->rows);
	free(st->groups);
	free(st->lost_zone);
	free(st->lost_wp);
	pthread_rwlock_destroy(&st->lock);
	free(st);
}

static int stream_alloc_staging(struct zns_stream *st)
{
	uint64_t unit = st->s->unit;

	/* Room for a batch plus one unit, so a piece always fits after a dispatch. */
	st->stage_cap = (size_t)(((st->s->batch + unit - 1) / unit) * unit + unit);
	st->stage = calloc(st->k, sizeof(*st->stage));
	st->spare = calloc(st->k, sizeof(*st->spare));
	st->inflight = calloc(st->k, sizeof(*st->inflight));
	st->stage_len = calloc(st->k, sizeof(*st->stage_len));
	st->stage_zoff = calloc(st->k, sizeof(*st->stage_zoff));
	if (!st->stage || !st->spare || !st->inflight || !st->stage_len || !st->stage_zoff)
		return -ENOMEM;
	for (uint32_t i = 0; i < st->k; i++)
		if (posix_memalign((void **)&st->stage[i], st->s->g->block_size, st->stage_cap) ||
		    posix_memalign((void **)&st->spare[i], st->s->g->block_size, st->stage_cap))
			return -ENOMEM;
	return 0;
}

struct zns_stream *zns_stream_new(struct zns_store *s, uint32_t tenant)
{
	struct zns_stream *st = calloc(1, sizeof(*st));

	if (!st)
		return NULL;
	pthread_rwlock_init(&st->lock, NULL);
	st->s = s;
	st->tenant = tenant;
	st->cap = s->g->zone_cap;
	return st;
}

/* Buffers and writers, once k is known. */
int zns_stream_start(struct zns_stream *st)
{
	return stream_alloc_staging(st) ?: zns_writers_start(st);
}

int zns_stream_create(struct zns_store *s, uint32_t tenant, uint64_t bandwidth,
		      struct zns_stream **stp)
{
	uint32_t k = zns_groups_for_bandwidth(bandwidth, s->zone_bw);
	struct zns_stream *st;
	int rc;

	if (tenant == UINT32_MAX)
		return -EINVAL;
	if (k > zns_nr_groups(s->g))
		k = zns_nr_groups(s->g);
	st = zns_stream_new(s, tenant);
	if (!st)
		return -ENOMEM;
	st->groups = calloc(k, sizeof(*st->groups));
	if (!st->groups) {
		zns_stream_free(st);
		return -ENOMEM;
	}
	pthread_mutex_lock(&s->lock);
	rc = zns_alloc_tenant(s->alloc, tenant, k, st->groups);
	pthread_mutex_unlock(&s->lock);
	if (!rc) {
		st->k = k;
		rc = zns_stream_start(st);
		if (rc) {
			pthread_mutex_lock(&s->lock);
			zns_alloc_release(s->alloc, tenant);
			pthread_mutex_unlock(&s->lock);
		}
	}
	if (rc) {
		zns_stream_free(st);
		return rc;
	}
	*stp = st;
	return 0;
}

/* Start a new row: one fresh zone in each of the tenant's groups. */

int zns_stream_close(struct zns_stream *st)
{
	int rc;

	if (!st)
		return 0;
	rc = zns_stream_flush(st);
	zns_writers_stop(st, st->k);
	zns_stream_free(st);
	return rc;
}

int zns_stream_destroy(struct zns_stream *st)
{
	struct zns_store *s = st->s;
	int rc = 0;

	zns_writers_stop(st, st->k);
	for (uint64_t r = 0; r < st->nrows; r++)
		for (uint32_t i = 0; i < st->k; i++) {
			uint32_t z = row_zone(st, r, i);

			if (z != NO_ZONE)
				rc = zns_store_give_back_zone(s, z) ?: rc;
		}
	pthread_mutex_lock(&s->lock);
	zns_alloc_release(s->alloc, st->tenant);
	pthread_mutex_unlock(&s->lock);
	zns_stream_free(st);
	return rc;
}
