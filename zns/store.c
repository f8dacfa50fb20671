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

#include "zns/zns_private.h"

#define DEFAULT_UNIT (64u << 10)
#define DEFAULT_BATCH (1u << 20)
#define DEFAULT_ZONE_BW (100ull << 20)
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
static uint32_t store_take_zone(struct zns_store *s, uint32_t group, uint32_t tenant)
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
static int store_active_room(struct zns_store *s, uint32_t need)
{
	int active;

	if (!s->g->max_active)
		return 0;
	active = zns_dev_active_zones(s->dev);
	if (active < 0)
		return active;
	return (uint32_t)active + need <= s->g->max_active ? 0 : -EOVERFLOW;
}

static int store_give_back_zone(struct zns_store *s, uint32_t zone)
{
	int rc = zns_zone_reset(s->dev, zone);

	pthread_mutex_lock(&s->lock);
	s->use[zone].owner = 0;
	s->use[zone].dead = 0;
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* ---------------- writers ---------------- */

static void *writer_main(void *arg)
{
	struct slot_writer *w = arg;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->has_job && !w->stop)
			pthread_cond_wait(&w->cond, &w->lock);
		if (!w->has_job)
			break;
		pthread_mutex_unlock(&w->lock);
		ssize_t rc = zns_zone_write(w->dev, w->zone, w->off, w->buf, w->len);
		pthread_mutex_lock(&w->lock);
		w->rc = rc;
		w->has_job = false;
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static void writer_post(struct slot_writer *w, uint32_t zone, uint64_t off,
			const void *buf, size_t len)
{
	pthread_mutex_lock(&w->lock);
	w->zone = zone;
	w->off = off;
	w->buf = buf;
	w->len = len;
	w->rc = 0;
	w->has_job = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static ssize_t writer_wait(struct slot_writer *w)
{
	ssize_t rc;

	pthread_mutex_lock(&w->lock);
	while (w->has_job)
		pthread_cond_wait(&w->cond, &w->lock);
	rc = w->rc;
	pthread_mutex_unlock(&w->lock);
	return rc;
}

static void writers_stop(struct zns_stream *st, uint32_t n);

static int writers_start(struct zns_stream *st)
{
	st->w = calloc(st->k, sizeof(*st->w));
	if (!st->w)
		return -ENOMEM;
	for (uint32_t i = 0; i < st->k; i++) {
		struct slot_writer *w = &st->w[i];

		w->dev = st->s->dev;
		pthread_mutex_init(&w->lock, NULL);
		pthread_cond_init(&w->cond, NULL);
		if (pthread_create(&w->thread, NULL, writer_main, w)) {
			pthread_mutex_destroy(&w->lock);
			pthread_cond_destroy(&w->cond);
			writers_stop(st, i);
			return -EAGAIN;
		}
	}
	return 0;
}

/* Stop the first @n writers (each finishes its job first) and free them. */
static void writers_stop(struct zns_stream *st, uint32_t n)
{
	if (!st->w)
		return;
	for (uint32_t i = 0; i < n; i++) {
		struct slot_writer *w = &st->w[i];

		pthread_mutex_lock(&w->lock);
		w->stop = true;
		pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->lock);
		pthread_join(w->thread, NULL);
		pthread_mutex_destroy(&w->lock);
		pthread_cond_destroy(&w->cond);
	}
	free(st->w);
	st->w = NULL;
}

/* ---------------- stream ---------------- */

static void stream_free(struct zns_stream *st)
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

static struct zns_stream *stream_new(struct zns_store *s, uint32_t tenant)
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
static int stream_start(struct zns_stream *st)
{
	return stream_alloc_staging(st) ?: writers_start(st);
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
	st = stream_new(s, tenant);
	if (!st)
		return -ENOMEM;
	st->groups = calloc(k, sizeof(*st->groups));
	if (!st->groups) {
		stream_free(st);
		return -ENOMEM;
	}
	pthread_mutex_lock(&s->lock);
	rc = zns_alloc_tenant(s->alloc, tenant, k, st->groups);
	pthread_mutex_unlock(&s->lock);
	if (!rc) {
		st->k = k;
		rc = stream_start(st);
		if (rc) {
			pthread_mutex_lock(&s->lock);
			zns_alloc_release(s->alloc, tenant);
			pthread_mutex_unlock(&s->lock);
		}
	}
	if (rc) {
		stream_free(st);
		return rc;
	}
	*stp = st;
	return 0;
}

/* Start a new row: one fresh zone in each of the tenant's groups. */
static int stream_new_row(struct zns_stream *st)
{
	struct zns_store *s = st->s;
	uint32_t *rows = realloc(st->rows, (st->nrows + 1) * st->k * sizeof(*rows));
	uint32_t *row;
	int rc = 0;

	if (!rows)
		return -ENOMEM;
	st->rows = rows;
	row = rows + st->nrows * st->k;
	pthread_mutex_lock(&s->lock);
	rc = store_active_room(s, st->k);
	for (uint32_t i = 0; i < st->k && !rc; i++) {
		row[i] = store_take_zone(s, st->groups[i], st->tenant);
		if (row[i] == NO_ZONE) {
			rc = -ENOSPC;
			while (i--)
				s->use[row[i]].owner = 0;
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
	if (rc)
		return rc;
	for (uint32_t i = 0; i < st->k; i++) {
		st->stage_len[i] = 0;
		st->stage_zoff[i] = 0;
	}
	st->nrows++;
	return 0;
}

static uint32_t row_zone(const struct zns_stream *st, uint64_t row, uint32_t slot)
{
	return row < st->nrows ? st->rows[row * st->k + slot] : NO_ZONE;
}

/* Wait for the writes in flight; a failed one breaks the stream. */
static int stream_drain(struct zns_stream *st)
{
	int rc = 0;

	for (uint32_t i = 0; i < st->k; i++) {
		ssize_t n;

		if (!st->inflight[i])
			continue;
		n = writer_wait(&st->w[i]);
		st->inflight[i] = 0;
		if (n < 0 && !rc)
			rc = (int)n;
	}
	if (rc)
		st->error = rc;
	return rc ? rc : st->error;
}

/*
 * Hand the block-aligned part of every slot's staging to its writer, all
 * zones in parallel, and go on filling the other buffer; what is left (less
 * than a block) moves to that buffer.
 */
static int stream_dispatch(struct zns_stream *st)
{
	uint32_t bs = st->s->g->block_size;
	uint64_t row = st->nrows - 1;
	int rc = stream_drain(st);

	for (uint32_t i = 0; i < st->k && !rc; i++) {
		size_t wlen = st->stage_len[i] / bs * bs;
		unsigned char *out = st->stage[i];

		if (!wlen)
			continue;
		writer_post(&st->w[i], row_zone(st, row, i), st->stage_zoff[i], out, wlen);
		st->inflight[i] = wlen;
		memcpy(st->spare[i], out + wlen, st->stage_len[i] - wlen);
		st->stage[i] = st->spare[i];
		st->spare[i] = out;
		st->stage_len[i] -= wlen;
		st->stage_zoff[i] += wlen;
	}
	return rc;
}

static void stream_add_dead_locked(struct zns_stream *st, uint64_t off, uint64_t len);
static void stream_reclaim_locked(struct zns_stream *st, uint64_t from_row, uint64_t to_row);

static int stream_append_locked(struct zns_stream *st, const unsigned char *p, size_t len)
{
	uint64_t unit = st->s->unit;
	int rc;

	while (len) {
		struct zns_stripe_pos pos = zns_stripe_locate(st->end, unit, st->k, st->cap);
		size_t n = (size_t)(unit - st->end % unit);

		if (n > len)
			n = len;
		if (pos.row == st->nrows) {
			/* Drained first: the finished row may be reset just below. */
			rc = (st->nrows ? stream_dispatch(st) ?: stream_drain(st) : 0) ?:
			     stream_new_row(st);
			if (rc)
				return rc;
			/* The previous row just became finished: it may be all dead already. */
			if (st->nrows > 1)
				stream_reclaim_locked(st, st->nrows - 2, st->nrows - 2);
		}
		if (st->stage_len[pos.slot] + n > st->stage_cap) {
			rc = stream_dispatch(st);
			if (rc)
				return rc;
		}
		memcpy(st->stage[pos.slot] + st->stage_len[pos.slot], p, n);
		st->stage_len[pos.slot] += n;
		st->end += n;
		p += n;
		len -= n;
	}
	return 0;
}

int zns_stream_append(struct zns_stream *st, const void *buf, size_t len,
		      uint64_t *offp)
{
	int rc;

	pthread_rwlock_wrlock(&st->lock);
	rc = st->error;
	if (!rc) {
		if (offp)
			*offp = st->end;
		rc = stream_append_locked(st, buf, len);
	}
	pthread_rwlock_unlock(&st->lock);
	return rc;
}

/* Write out everything staged, the end padded to a block (lock held). */
static int stream_flush_locked(struct zns_stream *st)
{
	static const unsigned char zeros[4096];
	uint32_t bs = st->s->g->block_size;
	int rc = st->error;

	/* Pad to a block boundary so that every slot's staging is aligned. */
	while (!rc && st->end % bs) {
		uint64_t from = st->end;
		size_t pad = (size_t)(bs - st->end % bs);

		if (pad > sizeof(zeros))
			pad = sizeof(zeros);
		rc = stream_append_locked(st, zeros, pad);
		if (!rc)
			stream_add_dead_locked(st, from, pad);
	}
	if (!rc && st->nrows)
		rc = stream_dispatch(st) ?: stream_drain(st);
	return rc;
}

int zns_stream_flush(struct zns_stream *st)
{
	int rc;

	pthread_rwlock_wrlock(&st->lock);
	rc = stream_flush_locked(st);
	pthread_rwlock_unlock(&st->lock);
	return rc ?: zns_dev_sync(st->s->dev);
}

/* ---------------- reads ---------------- */

/* Read zone bytes [zoff, zoff + n) from the device through an aligned bounce buffer. */
static int read_zone_bytes(struct zns_stream *st, uint32_t zone, uint64_t zoff,
			   unsigned char *dst, size_t n)
{
	uint32_t bs = st->s->g->block_size;
	uint64_t a = zoff / bs * bs, b = (zoff + n + bs - 1) / bs * bs;
	unsigned char *bounce;
	ssize_t r;

	if (posix_memalign((void **)&bounce, bs, (size_t)(b - a)))
		return -ENOMEM;
	r = zns_zone_read(st->s->dev, zone, a, bounce, (size_t)(b - a));
	if (r >= 0)
		memcpy(dst, bounce + (zoff - a), n);
	free(bounce);
	return r < 0 ? (int)r : 0;
}

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t max64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/*
 * One piece inside one stripe unit. In the last row a zone's bytes are, in
 * order: on the device, in flight (the buffer handed to the writer, still
 * intact), then staged. Reads never wait for the writers.
 */
static int read_piece(struct zns_stream *st, const struct zns_stripe_pos *pos,
		      unsigned char *dst, size_t n)
{
	uint32_t s = pos->slot, zone = row_zone(st, pos->row, s);
	uint64_t a = pos->zone_off, b = a + n, posted = UINT64_MAX, staged = UINT64_MAX;
	uint64_t from;
	int rc = 0;

	if (zone == NO_ZONE)
		return -ENODATA;
	for (uint32_t i = 0; i < st->n_lost; i++)
		if (st->lost_zone[i] == zone && b > st->lost_wp[i])
			return -EIO;
	if (pos->row + 1 == st->nrows) {
		staged = st->stage_zoff[s];
		posted = staged - st->inflight[s];
	}
	if (a < min64(b, posted))
		rc = read_zone_bytes(st, zone, a, dst, (size_t)(min64(b, posted) - a));
	from = max64(a, posted);
	if (!rc && from < min64(b, staged))
		memcpy(dst + (from - a), st->spare[s] + (from - posted),
		       (size_t)(min64(b, staged) - from));
	from = max64(a, staged);
	if (!rc && from < b)
		memcpy(dst + (from - a), st->stage[s] + (from - staged), (size_t)(b - from));
	return rc;
}

ssize_t zns_stream_read(struct zns_stream *st, uint64_t off, void *buf, size_t len)
{
	uint64_t unit = st->s->unit;
	unsigned char *p = buf;
	size_t done = 0;
	int rc = 0;

	pthread_rwlock_rdlock(&st->lock);
	if (off >= st->end)
		len = 0;
	else if (len > st->end - off)
		len = (size_t)(st->end - off);
	while (done < len && !rc) {
		uint64_t o = off + done;
		struct zns_stripe_pos pos = zns_stripe_locate(o, unit, st->k, st->cap);
		size_t n = (size_t)(unit - o % unit);

		if (n > len - done)
			n = len - done;
		rc = read_piece(st, &pos, p + done, n);
		done += n;
	}
	pthread_rwlock_unlock(&st->lock);
	return rc ? rc : (ssize_t)len;
}

/* ---------------- dead space ---------------- */

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
	if (all_dead && !store_give_back_zone(s, zone))
		st->rows[row * st->k + slot] = NO_ZONE;
}

static void stream_add_dead_locked(struct zns_stream *st, uint64_t off, uint64_t len)
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
static void stream_reclaim_locked(struct zns_stream *st, uint64_t from_row, uint64_t to_row)
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
		stream_drain(st);
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
		stream_reclaim_locked(st, 0, st->nrows - 1);
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
		stream_add_dead_locked(st, off, len);
		stream_reclaim_locked(st, off / row_bytes, (off + len - 1) / row_bytes);
	}
	pthread_rwlock_unlock(&st->lock);
	return 0;
}

/* ---------------- inspection and recovery ---------------- */

uint64_t zns_stream_end(struct zns_stream *st)
{
	uint64_t end;

	pthread_rwlock_rdlock(&st->lock);
	end = st->end;
	pthread_rwlock_unlock(&st->lock);
	return end;
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
	uint64_t n;

	pthread_rwlock_rdlock(&st->lock);
	n = st->nrows;
	pthread_rwlock_unlock(&st->lock);
	return n;
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
		stream_drain(st);
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

int zns_stream_verify(struct zns_stream *st, struct zns_stream_damage *d)
{
	int rc = 0;

	memset(d, 0, sizeof(*d));
	pthread_rwlock_wrlock(&st->lock);
	if (st->nrows)
		stream_drain(st);
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

int zns_stream_close(struct zns_stream *st)
{
	int rc;

	if (!st)
		return 0;
	rc = zns_stream_flush(st);
	writers_stop(st, st->k);
	stream_free(st);
	return rc;
}

int zns_stream_destroy(struct zns_stream *st)
{
	struct zns_store *s = st->s;
	int rc = 0;

	writers_stop(st, st->k);
	for (uint64_t r = 0; r < st->nrows; r++)
		for (uint32_t i = 0; i < st->k; i++) {
			uint32_t z = row_zone(st, r, i);

			if (z != NO_ZONE)
				rc = store_give_back_zone(s, z) ?: rc;
		}
	pthread_mutex_lock(&s->lock);
	zns_alloc_release(s->alloc, st->tenant);
	pthread_mutex_unlock(&s->lock);
	stream_free(st);
	return rc;
}

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
	if (st->nrows && stream_drain(st)) {
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
	rc = stream_flush_locked(st);
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
	struct zns_stream *st = stream_new(s, 0);
	int rc;

	if (!st)
		return -ENOMEM;
	pthread_mutex_lock(&s->lock);
	rc = attach_decode(s, buf, len, st);
	if (!rc)
		stream_claim_rows(st, st->tenant + 1);
	pthread_mutex_unlock(&s->lock);
	if (rc) {
		stream_free(st);
		return rc;
	}
	rc = stream_start(st);
	if (rc) {
		pthread_mutex_lock(&s->lock);
		stream_claim_rows(st, 0);
		pthread_mutex_unlock(&s->lock);
		stream_free(st);
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
	stream_drain(st);
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
