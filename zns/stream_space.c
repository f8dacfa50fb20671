/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Dead space and inspection of a stream: bytes the owner no longer needs
 * are counted per zone and a zone whose bytes are all dead is reset;
 * the rows, zones and write pointers a recovery compares with the device.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "zns/store_private.h"

/* ---------------- dead space ---------------- */

/* A zone given back holds nothing of this stream: what it lost does not
 * matter to a later row that gets it again. */
static void stream_forget_lost(struct zns_stream *st, uint32_t zone)
{
	for (uint32_t i = 0; i < st->n_lost; i++)
		if (st->lost_zone[i] == zone) {
			st->lost_zone[i] = st->lost_zone[--st->n_lost];
			st->lost_wp[i] = st->lost_wp[st->n_lost];
			return;
		}
}

/* A zone of a finished row whose data is all dead goes back to the free pool. */
static void stream_maybe_reset(struct zns_stream *st, uint64_t row, uint32_t slot)
{
	struct zns_store *s = st->s;
	uint32_t zone = row_zone(st, row, slot);
	bool all_dead;

	if (zone == NO_ZONE || row + 1 >= st->nrows)
		return;
	pthread_mutex_lock(&s->lock);
	all_dead = s->use[zone].dead >= st->cap;
	pthread_mutex_unlock(&s->lock);
	if (all_dead && !zns_store_give_back_zone(s, zone)) {
		st->rows[row * st->k + slot] = NO_ZONE;
		stream_forget_lost(st, zone);
	}
}

void zns_stream_add_dead_locked(struct zns_stream *st, uint64_t off, uint64_t len)
{
	uint64_t unit = st->s->unit;

	while (len) {
		struct zns_stripe_pos pos = zns_stripe_locate(off, unit, st->k, st->cap);
		uint64_t n = unit - off % unit;
		uint32_t zone = row_zone(st, pos.row, pos.slot);

		if (n > len)
			n = len;
		if (zone != NO_ZONE) {
			pthread_mutex_lock(&st->s->lock);
			st->s->use[zone].dead += n;
			if (st->s->use[zone].dead > st->cap)
				st->s->use[zone].dead = st->cap;
			pthread_mutex_unlock(&st->s->lock);
		}
		off += n;
		len -= n;
	}
}

/* Rows before the current one are full: reset those all dead. */
void zns_stream_reclaim_locked(struct zns_stream *st, uint64_t from_row, uint64_t to_row)
{
	for (uint64_t r = from_row; r <= to_row && r + 1 < st->nrows; r++)
		for (uint32_t i = 0; i < st->k; i++)
			stream_maybe_reset(st, r, i);
}

/* The reverse of stream_add_dead_locked, never below zero. */
static void stream_sub_dead_locked(struct zns_stream *st, uint64_t off, uint64_t len)
{
	uint64_t unit = st->s->unit;

	while (len) {
		struct zns_stripe_pos pos = zns_stripe_locate(off, unit, st->k, st->cap);
		uint64_t n = min64(unit - off % unit, len);
		uint32_t zone = row_zone(st, pos.row, pos.slot);

		if (zone != NO_ZONE) {
			pthread_mutex_lock(&st->s->lock);
			st->s->use[zone].dead -= min64(n, st->s->use[zone].dead);
			pthread_mutex_unlock(&st->s->lock);
		}
		off += n;
		len -= n;
	}
}

static uint64_t expected_wp(const struct zns_stream *st, uint64_t row, uint32_t slot);

int zns_stream_recount_dead(struct zns_stream *st, const struct zns_range *live, size_t n)
{
	pthread_rwlock_wrlock(&st->lock);
	if (st->nrows)
		zns_stream_drain(st);
	for (uint64_t r = 0; r < st->nrows; r++)
		for (uint32_t i = 0; i < st->k; i++) {
			uint32_t z = row_zone(st, r, i);

			if (z == NO_ZONE)
				continue;
			pthread_mutex_lock(&st->s->lock);
			st->s->use[z].dead = expected_wp(st, r, i);
			pthread_mutex_unlock(&st->s->lock);
		}
	for (size_t i = 0; i < n; i++)
		if (live[i].off < st->end)
			stream_sub_dead_locked(st, live[i].off, min64(live[i].len, st->end - live[i].off));
	if (st->nrows)
		zns_stream_reclaim_locked(st, 0, st->nrows - 1);
	pthread_rwlock_unlock(&st->lock);
	return 0;
}

int zns_stream_discard(struct zns_stream *st, uint64_t off, uint64_t len)
{
	uint64_t row_bytes;

	pthread_rwlock_wrlock(&st->lock);
	if (off > st->end || len > st->end - off) {
		pthread_rwlock_unlock(&st->lock);
		return -EINVAL;
	}
	row_bytes = st->cap * st->k;
	if (len) {
		zns_stream_add_dead_locked(st, off, len);
		zns_stream_reclaim_locked(st, off / row_bytes, (off + len - 1) / row_bytes);
	}
	pthread_rwlock_unlock(&st->lock);
	return 0;
}

/* ---------------- inspection and recovery ---------------- */

/* A field the appends change, read under the stream's lock. */
static uint64_t stream_load(struct zns_stream *st, const uint64_t *field)
{
	uint64_t v;

	pthread_rwlock_rdlock(&st->lock);
	v = *field;
	pthread_rwlock_unlock(&st->lock);
	return v;
}

uint64_t zns_stream_end(struct zns_stream *st)
{
	return stream_load(st, &st->end);
}

uint32_t zns_stream_tenant(const struct zns_stream *st)
{
	return st->tenant;
}

uint32_t zns_stream_k(const struct zns_stream *st)
{
	return st->k;
}

uint64_t zns_stream_nrows(struct zns_stream *st)
{
	return stream_load(st, &st->nrows);
}

int zns_stream_zone(struct zns_stream *st, uint64_t row, uint32_t slot)
{
	uint32_t z;

	if (slot >= st->k)
		return -EINVAL;
	pthread_rwlock_rdlock(&st->lock);
	z = row_zone(st, row, slot);
	pthread_rwlock_unlock(&st->lock);
	return z == NO_ZONE ? -ENOENT : (int)z;
}

/* What the zone of (@row, @slot) should hold on the device. */
static uint64_t expected_wp(const struct zns_stream *st, uint64_t row, uint32_t slot)
{
	return row + 1 < st->nrows ? st->cap : st->stage_zoff[slot];
}

int zns_stream_check(struct zns_stream *st, uint32_t *zone, uint64_t *wp,
		     uint64_t *expect)
{
	int bad = 0;

	pthread_rwlock_wrlock(&st->lock);
	if (st->nrows)
		zns_stream_drain(st);
	for (uint64_t r = 0; r < st->nrows; r++) {
		for (uint32_t i = 0; i < st->k; i++) {
			uint32_t z = row_zone(st, r, i);
			struct zns_zone_info zi;
			uint64_t want = expected_wp(st, r, i);

			if (z == NO_ZONE)
				continue;
			if (zns_zone_report(st->s->dev, z, &zi))
				zi.wp = UINT64_MAX;
			if (zi.wp == want)
				continue;
			if (!bad++) {
				if (zone)
					*zone = z;
				if (wp)
					*wp = zi.wp;
				if (expect)
					*expect = want;
			}
		}
	}
	pthread_rwlock_unlock(&st->lock);
	return bad;
}

static int stream_note_lost(struct zns_stream *st, uint32_t zone, uint64_t wp)
{
	uint32_t *z = realloc(st->lost_zone, (st->n_lost + 1) * sizeof(*z));
	uint64_t *w;

	if (!z)
		return -ENOMEM;
	st->lost_zone = z;
	w = realloc(st->lost_wp, (st->n_lost + 1) * sizeof(*w));
	if (!w)
		return -ENOMEM;
	st->lost_wp = w;
	z[st->n_lost] = zone;
	w[st->n_lost++] = wp;
	return 0;
}

uint32_t zns_stream_lost_zones(struct zns_stream *st)
{
	uint32_t n;

	pthread_rwlock_rdlock(&st->lock);
	n = st->n_lost;
	pthread_rwlock_unlock(&st->lock);
	return n;
}

int zns_stream_verify(struct zns_stream *st, struct zns_stream_damage *d)
{
	int rc = 0;

	memset(d, 0, sizeof(*d));
	pthread_rwlock_wrlock(&st->lock);
	if (st->nrows)
		zns_stream_drain(st);
	for (uint64_t r = 0; r < st->nrows && !rc; r++) {
		for (uint32_t i = 0; i < st->k && !rc; i++) {
			uint32_t z = row_zone(st, r, i);
			uint64_t want = expected_wp(st, r, i);
			struct zns_zone_info zi;

			if (z == NO_ZONE)
				continue;
			rc = zns_zone_report(st->s->dev, z, &zi);
			if (rc || zi.wp == want)
				continue;
			if (zi.wp > want) {
				d->zones_ahead++;
				d->bytes_ahead += zi.wp - want;
				continue;
			}
			if (!d->zones_behind++)
				d->first_behind = z;
			d->bytes_behind += want - zi.wp;
			rc = stream_note_lost(st, z, zi.wp);
		}
	}
	pthread_rwlock_unlock(&st->lock);
	return rc;
}

