/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Stream I/O: one writer thread per zone of a row, the staging of appends
 * (two buffers per zone, one written while the next fills), flushes, and
 * reads that take each byte from the device, the buffer in flight or the
 * staging, wherever it is now.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "zns/store_private.h"

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

int zns_writers_start(struct zns_stream *st)
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
			zns_writers_stop(st, i);
			return -EAGAIN;
		}
	}
	return 0;
}

/* Stop the first @n writers (each finishes its job first) and free them. */
void zns_writers_stop(struct zns_stream *st, uint32_t n)
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
	rc = zns_store_active_room(s, st->k);
	for (uint32_t i = 0; i < st->k && !rc; i++) {
		row[i] = zns_store_take_zone(s, st->groups[i], st->tenant);
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

/* Wait for the writes in flight; a failed one breaks the stream. */
int zns_stream_drain(struct zns_stream *st)
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
	int rc = zns_stream_drain(st);

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
			rc = (st->nrows ? stream_dispatch(st) ?: zns_stream_drain(st) : 0) ?:
			     stream_new_row(st);
			if (rc)
				return rc;
			/* The previous row just became finished: it may be all dead already. */
			if (st->nrows > 1)
				zns_stream_reclaim_locked(st, st->nrows - 2, st->nrows - 2);
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
int zns_stream_flush_locked(struct zns_stream *st)
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
			zns_stream_add_dead_locked(st, from, pad);
	}
	if (!rc && st->nrows)
		rc = stream_dispatch(st) ?: zns_stream_drain(st);
	return rc;
}

int zns_stream_flush(struct zns_stream *st)
{
	int rc;

	pthread_rwlock_wrlock(&st->lock);
	rc = zns_stream_flush_locked(st);
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

