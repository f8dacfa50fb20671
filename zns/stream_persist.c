/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Persistence of streams and of the store's allocation: a stream is
 * encoded into a description its owner stores; attaching one checks it
 * against the device before the stream is used again.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "zns/store_private.h"

/* ---------------- persistence and recovery ---------------- */

#define STREAM_MAGIC 0x4e4c5a53u	/* "NLZS" */
#define STREAM_VERSION 1u
#define STREAM_HDR 40

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return get32(p) | (uint64_t)get32(p + 4) << 32;
}

static size_t stream_encoded_size(const struct zns_stream *st)
{
	return STREAM_HDR + (size_t)(st->k + st->nrows * st->k) * 4;
}

/* The stream's description into @buf (room for stream_encoded_size; lock held). */
static void stream_encode_locked(const struct zns_stream *st, uint8_t *p)
{
	put32(p, STREAM_MAGIC);
	put32(p + 4, STREAM_VERSION);
	put32(p + 8, st->tenant);
	put32(p + 12, st->k);
	put64(p + 16, st->s->unit);
	put64(p + 24, st->end);
	put64(p + 32, st->nrows);
	p += STREAM_HDR;
	for (uint32_t i = 0; i < st->k; i++, p += 4)
		put32(p, st->groups[i]);
	for (uint64_t i = 0; i < st->nrows * st->k; i++, p += 4)
		put32(p, st->rows[i]);
}

ssize_t zns_stream_encode(struct zns_stream *st, void *buf, size_t len)
{
	size_t need;

	pthread_rwlock_wrlock(&st->lock);
	if (st->nrows && zns_stream_drain(st)) {
		pthread_rwlock_unlock(&st->lock);
		return st->error;
	}
	for (uint32_t i = 0; i < st->k && st->nrows; i++) {
		if (st->stage_len[i]) {
			pthread_rwlock_unlock(&st->lock);
			return -EBUSY;
		}
	}
	need = stream_encoded_size(st);
	if (buf && len >= need)
		stream_encode_locked(st, buf);
	pthread_rwlock_unlock(&st->lock);
	return (ssize_t)need;
}

ssize_t zns_stream_snapshot(struct zns_stream *st, void **bufp)
{
	uint8_t *buf = NULL;
	size_t need = 0;
	int rc;

	pthread_rwlock_wrlock(&st->lock);
	rc = zns_stream_flush_locked(st);
	if (!rc) {
		need = stream_encoded_size(st);
		buf = malloc(need);
		if (buf)
			stream_encode_locked(st, buf);
		else
			rc = -ENOMEM;
	}
	pthread_rwlock_unlock(&st->lock);
	if (rc)
		return rc;
	*bufp = buf;
	return (ssize_t)need;
}

/* Bytes of slot @slot in the first @o bytes of a row. */
static uint64_t slot_bytes(uint64_t o, uint64_t unit, uint32_t k, uint32_t slot)
{
	uint64_t full = o / (unit * k), rem = o % (unit * k), lo = (uint64_t)slot * unit;
	uint64_t part = rem > lo ? rem - lo : 0;

	return full * unit + (part > unit ? unit : part);
}

/*
 * The zones of a decoded stream must fit its groups, be nobody else's and
 * appear once: a stream never holds a zone twice, so the live zones are at
 * most the device's even when its rows (reset ones included) are more.
 */
static int attach_check_rows(struct zns_store *s, const struct zns_stream *st)
{
	bool *seen = calloc(s->g->nr_zones, sizeof(*seen));
	int rc = 0;

	if (!seen)
		return -ENOMEM;
	for (uint64_t i = 0; i < st->nrows * st->k && !rc; i++) {
		uint32_t z = st->rows[i];

		if (z == NO_ZONE)
			continue;
		if (z >= s->g->nr_zones || seen[z] ||
		    zns_zone_group(s->g, z) != st->groups[i % st->k] ||
		    (s->use[z].owner && s->use[z].owner != st->tenant + 1))
			rc = -EINVAL;
		else
			seen[z] = true;
	}
	free(seen);
	return rc;
}

/*
 * The header against the image's size. The row count keeps the rows whose
 * zones were reset (their slots say NO_ZONE, stream offsets never move), so
 * a long-lived stream has more rows than the device has zones: only the
 * image's size bounds it.
 */
static int attach_check_header(const struct zns_store *s, const struct zns_stream *st,
			       uint64_t unit, uint64_t nrows, size_t len)
{
	uint64_t words = (len - STREAM_HDR) / 4, row_bytes;

	if (!st->k || st->k > 256 || unit != s->unit || st->end % s->g->block_size ||
	    (len - STREAM_HDR) % 4 || words % st->k || words / st->k - 1 != nrows)
		return -EINVAL;
	row_bytes = st->cap * st->k;
	if (nrows > UINT64_MAX / row_bytes || st->end > nrows * row_bytes ||
	    (nrows && st->end <= (nrows - 1) * row_bytes))
		return -EINVAL;
	return 0;
}

static int attach_decode(struct zns_store *s, const uint8_t *p, size_t len,
			 struct zns_stream *st)
{
	uint64_t unit, nrows;
	uint32_t want[256];
	int n;

	if (len < STREAM_HDR || get32(p) != STREAM_MAGIC || get32(p + 4) != STREAM_VERSION)
		return -EINVAL;
	st->tenant = get32(p + 8);
	st->k = get32(p + 12);
	unit = get64(p + 16);
	st->end = get64(p + 24);
	nrows = get64(p + 32);
	if (attach_check_header(s, st, unit, nrows, len))
		return -EINVAL;
	st->groups = calloc(st->k, sizeof(*st->groups));
	st->rows = calloc(nrows ? nrows * st->k : 1, sizeof(*st->rows));
	if (!st->groups || !st->rows)
		return -ENOMEM;
	p += STREAM_HDR;
	for (uint32_t i = 0; i < st->k; i++, p += 4)
		st->groups[i] = get32(p);
	for (uint64_t i = 0; i < nrows * st->k; i++, p += 4)
		st->rows[i] = get32(p);
	st->nrows = nrows;
	n = zns_alloc_groups(s->alloc, st->tenant, want, 256);
	if (n != (int)st->k || memcmp(want, st->groups, st->k * sizeof(*want)))
		return -EINVAL;
	return attach_check_rows(s, st);
}

/* Mark the stream's zones as its own (@owner = tenant + 1) or free (0); lock held. */
static void stream_claim_rows(struct zns_stream *st, uint32_t owner)
{
	for (uint64_t i = 0; i < st->nrows * st->k; i++)
		if (st->rows[i] != NO_ZONE)
			st->s->use[st->rows[i]].owner = owner;
}

/* Where each zone of the last row stands, from the stream end alone. */
static void stream_restore_wps(struct zns_stream *st)
{
	uint64_t o;

	if (!st->nrows)
		return;
	o = st->end - (st->nrows - 1) * st->cap * st->k;
	for (uint32_t i = 0; i < st->k; i++)
		st->stage_zoff[i] = slot_bytes(o, st->s->unit, st->k, i);
}

int zns_stream_attach(struct zns_store *s, const void *buf, size_t len,
		      struct zns_stream **stp)
{
	struct zns_stream *st = zns_stream_new(s, 0);
	int rc;

	if (!st)
		return -ENOMEM;
	pthread_mutex_lock(&s->lock);
	rc = attach_decode(s, buf, len, st);
	if (!rc)
		stream_claim_rows(st, st->tenant + 1);
	pthread_mutex_unlock(&s->lock);
	if (rc) {
		zns_stream_free(st);
		return rc;
	}
	rc = zns_stream_start(st);
	if (rc) {
		pthread_mutex_lock(&s->lock);
		stream_claim_rows(st, 0);
		pthread_mutex_unlock(&s->lock);
		zns_stream_free(st);
		return rc;
	}
	stream_restore_wps(st);
	*stp = st;
	return 0;
}

int zns_stream_seal(struct zns_stream *st)
{
	uint64_t row = st->nrows - 1;
	int rc = 0;

	pthread_rwlock_wrlock(&st->lock);
	if (!st->nrows || st->end == st->nrows * st->cap * st->k) {
		pthread_rwlock_unlock(&st->lock);
		return 0;
	}
	zns_stream_drain(st);
	for (uint32_t i = 0; i < st->k; i++) {
		uint32_t z = row_zone(st, row, i);
		uint64_t tail = st->cap - st->stage_zoff[i];

		st->stage_len[i] = 0;
		st->stage_zoff[i] = st->cap;
		if (z == NO_ZONE)
			continue;
		rc = zns_zone_finish(st->s->dev, z) ?: rc;
		pthread_mutex_lock(&st->s->lock);
		st->s->use[z].dead += tail;
		if (st->s->use[z].dead > st->cap)
			st->s->use[z].dead = st->cap;
		pthread_mutex_unlock(&st->s->lock);
	}
	st->end = st->nrows * st->cap * st->k;
	st->error = 0;
	pthread_rwlock_unlock(&st->lock);
	return rc;
}

int zns_store_restore_alloc(struct zns_store *s, const void *buf, size_t len)
{
	struct zns_alloc *a;
	int rc = zns_alloc_decode(buf, len, &a);

	if (rc)
		return rc;
	if (zns_alloc_nr_groups(a) != zns_nr_groups(s->g)) {
		zns_alloc_free(a);
		return -ERANGE;
	}
	pthread_mutex_lock(&s->lock);
	/* the image's mode is that of the run that wrote it: ours wins */
	zns_alloc_set_admission(a, zns_alloc_admission(s->alloc));
	zns_alloc_free(s->alloc);
	s->alloc = a;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

int zns_store_set_dead(struct zns_store *s, uint32_t zone, uint64_t dead)
{
	if (zone >= s->g->nr_zones || dead > s->g->zone_cap)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	s->use[zone].dead = dead;
	pthread_mutex_unlock(&s->lock);
	return 0;
}
