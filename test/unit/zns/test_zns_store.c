/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The store: striped parallel writes read back byte for byte across rows,
 * even write pointers, tenants in disjoint groups and zones, parallel zone
 * writes showing in the bandwidth model, dead-zone reset and reuse, release
 * on destroy, strict admission, and the write-pointer recovery check.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "test/unit/zns/test_zns_common.h"

#define ZBW (8ull << 20)	/* per-group bandwidth used to size k */

struct ctx {
	struct tdev t;
	struct zns_store *s;
	uint64_t cap;
	uint32_t m;
};

static int open_store(struct ctx *c, const struct zns_open_opts *o, enum zns_admission adm)
{
	struct zns_geometry g = tdev_default_geometry();
	struct zns_store_opts so = { .stripe_unit = 64 << 10, .batch = 128 << 10,
				     .zone_bw = ZBW, .admission = adm };

	if (tdev_open(&c->t, &g, o) || zns_store_new(c->t.dev, &so, &c->s))
		return -1;
	c->cap = c->t.g->zone_cap;
	c->m = zns_nr_groups(c->t.g);
	return 0;
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	if (!c || open_store(c, NULL, ZNS_ADMIT_FAIR)) {
		free(c);
		return -1;
	}
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	zns_store_free(c->s);
	tdev_reset_all(&c->t);
	tdev_close(&c->t);
	free(c);
	return 0;
}

/* Filling whole rows of a big real device takes too long for a unit test. */
static bool is_big(const struct ctx *c)
{
	return c->cap > (16u << 20);
}

static void skip_if_big(struct ctx *c)
{
	if (is_big(c)) {
		print_message("zone capacity above 16 MiB: row-filling test skipped\n");
		skip();
	}
}

/* Deterministic content of stream byte @off for tenant @seed. */
static unsigned char byte_at(unsigned seed, uint64_t off)
{
	uint64_t x = off * 0x9E3779B97F4A7C15ull + seed * 0xBF58476D1CE4E5B9ull;

	return (unsigned char)(x >> 56 ^ x >> 29);
}

static void fill(unsigned char *p, size_t n, unsigned seed, uint64_t off)
{
	for (size_t i = 0; i < n; i++)
		p[i] = byte_at(seed, off + i);
}

/* Append stream bytes [@done, @total) in uneven chunks; the stream ends at @done. */
static void append_range(struct zns_stream *st, unsigned seed, uint64_t done, uint64_t total)
{
	unsigned char *buf = malloc(300000);
	size_t sizes[] = { 1, 4095, 65536, 100000, 300000, 7, 131072 };
	unsigned i = 0;

	while (done < total) {
		size_t n = sizes[i++ % 7];
		uint64_t off;

		if (n > total - done)
			n = (size_t)(total - done);
		fill(buf, n, seed, done);
		assert_int_equal(zns_stream_append(st, buf, n, &off), 0);
		assert_int_equal(off, done);
		done += n;
	}
	free(buf);
}

static void append_pattern(struct zns_stream *st, unsigned seed, uint64_t total)
{
	append_range(st, seed, 0, total);
}

static void verify_pattern(struct zns_stream *st, unsigned seed, uint64_t from, uint64_t to)
{
	size_t max = 200000;
	unsigned char *got = malloc(max), *want = malloc(max);
	uint64_t off = from;
	unsigned i = 0;

	while (off < to) {
		size_t n = (size_t)((i++ * 7919 + 1) % max);

		if (n > to - off)
			n = (size_t)(to - off);
		if (!n)
			n = 1;
		assert_int_equal(zns_stream_read(st, off, got, n), (ssize_t)n);
		fill(want, n, seed, off);
		assert_memory_equal(got, want, n);
		off += n;
	}
	free(got);
	free(want);
}

static void test_striped_write_read_back(void **state)
{
	struct ctx *c = *state;
	struct zns_stream *st;
	uint64_t total, unit = 64 << 10;
	uint32_t k;

	uint64_t rows;

	assert_int_equal(zns_stream_create(c->s, 1, 3 * ZBW, &st), 0);
	k = zns_stream_k(st);
	assert_int_equal(k, 3);
	/* Two full rows and part of a third; on a big device, part of one row. */
	rows = is_big(c) ? 1 : 3;
	total = is_big(c) ? unit * k * 40 + 12345 : c->cap * k * 2 + c->cap + 12345;
	append_pattern(st, 1, total);
	/* Staged data reads back before it is written out. */
	verify_pattern(st, 1, total - 300000, total);
	assert_int_equal(zns_stream_flush(st), 0);
	assert_int_equal(zns_stream_end(st) % c->t.g->block_size, 0);
	assert_true(zns_stream_end(st) >= total);
	verify_pattern(st, 1, 0, total);
	assert_int_equal(zns_stream_check(st, NULL, NULL, NULL), 0);
	/* Rows use one zone per tenant group; the last row's pointers are even. */
	for (uint64_t r = 0; r < rows; r++) {
		uint64_t lo = UINT64_MAX, hi = 0;

		for (uint32_t i = 0; i < k; i++) {
			int z = zns_stream_zone(st, r, i);
			struct zns_zone_info zi;

			assert_true(z >= 0);
			assert_int_equal(zns_zone_report(c->t.dev, (uint32_t)z, &zi), 0);
			assert_int_equal(zns_zone_group(c->t.g, (uint32_t)z),
					 zns_zone_group(c->t.g, (uint32_t)zns_stream_zone(st, 0, i)));
			if (r + 1 < rows)
				assert_int_equal(zi.state, ZNS_ZONE_FULL);
			lo = zi.wp < lo ? zi.wp : lo;
			hi = zi.wp > hi ? zi.wp : hi;
		}
		assert_true(hi - lo <= unit);
	}
	assert_int_equal(zns_stream_zone(st, rows, 0), -ENOENT);
	assert_int_equal(zns_stream_close(st), 0);
}

static void test_read_past_end_is_short(void **state)
{
	struct ctx *c = *state;
	struct zns_stream *st;
	unsigned char buf[200], want[100];

	assert_int_equal(zns_stream_create(c->s, 2, ZBW, &st), 0);
	fill(want, 100, 2, 0);
	assert_int_equal(zns_stream_append(st, want, 100, NULL), 0);
	assert_int_equal(zns_stream_flush(st), 0);
	/* Padded to a block: 100 data bytes, the rest zero and dead. */
	assert_int_equal(zns_stream_end(st), c->t.g->block_size);
	assert_int_equal(zns_stream_read(st, 0, buf, 100), 100);
	assert_memory_equal(buf, want, 100);
	assert_int_equal(zns_stream_read(st, zns_stream_end(st) - 50, buf, 200), 50);
	assert_int_equal(zns_stream_read(st, zns_stream_end(st), buf, 200), 0);
	assert_int_equal(zns_stream_discard(st, 0, zns_stream_end(st) + 1), -EINVAL);
	assert_int_equal(zns_stream_destroy(st), 0);
}

struct tenant_job {
	struct zns_stream *st;
	unsigned seed;
	uint64_t total;
};

static void *tenant_writer(void *arg)
{
	struct tenant_job *j = arg;

	append_pattern(j->st, j->seed, j->total);
	return NULL;
}

static void test_two_tenants_disjoint(void **state)
{
	struct ctx *c = *state;
	struct tenant_job a = { NULL, 11, 0 }, b = { NULL, 12, 0 };
	pthread_t ta, tb;
	uint32_t zones[64], nz = 0;

	uint64_t span = is_big(c) ? (2u << 20) : c->cap;

	assert_int_equal(zns_stream_create(c->s, 11, 2 * ZBW, &a.st), 0);
	assert_int_equal(zns_stream_create(c->s, 12, 2 * ZBW, &b.st), 0);
	a.total = span * 2 + 5000;
	b.total = span * 3 + 70000;
	pthread_create(&ta, NULL, tenant_writer, &a);
	pthread_create(&tb, NULL, tenant_writer, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	assert_int_equal(zns_stream_flush(a.st), 0);
	assert_int_equal(zns_stream_flush(b.st), 0);
	verify_pattern(a.st, 11, 0, a.total);
	verify_pattern(b.st, 12, 0, b.total);
	/* 2 + 2 groups out of 4: no group shared, so no zone shared. */
	for (uint32_t g = 0; g < c->m; g++)
		assert_int_equal(zns_alloc_share(zns_store_alloc(c->s), g), 1);
	for (int t = 0; t < 2; t++) {
		struct zns_stream *st = t ? b.st : a.st;
		uint64_t total = t ? b.total : a.total, row = c->cap * zns_stream_k(st);

		assert_int_equal(zns_stream_tenant(st), t ? 12u : 11u);
		/* two rows on the emulator; one on a device of big zones */
		assert_int_equal(zns_stream_nrows(st), (total + row - 1) / row);
		for (uint64_t r = 0; r < zns_stream_nrows(st); r++)
			for (uint32_t i = 0; i < zns_stream_k(st); i++) {
				uint32_t z = (uint32_t)zns_stream_zone(st, r, i);
				struct zns_zone_use u;

				for (uint32_t j = 0; j < nz; j++)
					assert_true(zones[j] != z);
				zones[nz++] = z;
				assert_int_equal(zns_store_zone_use(c->s, z, &u), 0);
				assert_int_equal(u.owner, (t ? 12u : 11u) + 1);
			}
	}
	assert_int_equal(zns_stream_close(a.st), 0);
	assert_int_equal(zns_stream_close(b.st), 0);
}

static double seconds_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Time to append and flush @len bytes for a tenant asking @bw. */
static double timed_stream(struct ctx *c, uint32_t tenant, uint64_t bw, size_t len)
{
	struct zns_stream *st;
	unsigned char *buf = malloc(len);
	double t0;

	fill(buf, len, tenant, 0);
	assert_int_equal(zns_stream_create(c->s, tenant, bw, &st), 0);
	t0 = seconds_now();
	assert_int_equal(zns_stream_append(st, buf, len, NULL), 0);
	assert_int_equal(zns_stream_flush(st), 0);
	t0 = seconds_now() - t0;
	verify_pattern(st, tenant, 0, len);
	assert_int_equal(zns_stream_destroy(st), 0);
	free(buf);
	return t0;
}

static void test_striping_is_parallel(void **state)
{
	struct ctx *c = *state;
	struct zns_open_opts o = { .zone_bw = ZBW };
	double one, four;

	if (c->t.real)
		skip();
	zns_store_free(c->s);
	tdev_close(&c->t);
	assert_int_equal(open_store(c, &o, ZNS_ADMIT_FAIR), 0);
	one = timed_stream(c, 21, ZBW, 1 << 20);	/* k = 1: 1 MiB at 8 MiB/s, 125 ms */
	four = timed_stream(c, 22, 4 * ZBW, 1 << 20);	/* k = 4: about 32 ms */
	assert_true(one >= 0.110);
	assert_true(four * 2 < one);
}

static void test_dead_zones_reset_and_reused(void **state)
{
	struct ctx *c = *state;
	struct zns_stream *st;
	uint64_t row, total;
	uint32_t k, row0[8];
	unsigned char byte = 0;

	skip_if_big(c);
	assert_int_equal(zns_stream_create(c->s, 31, c->m * ZBW, &st), 0);
	k = zns_stream_k(st);
	assert_int_equal(k, c->m);
	row = c->cap * k;
	/* Fill every zone of the device: one row per zone of each group. */
	total = row * (c->t.g->nr_zones / c->m);
	append_pattern(st, 31, total);
	assert_int_equal(zns_stream_flush(st), 0);
	assert_int_equal(zns_stream_append(st, &byte, 1, NULL), -ENOSPC);
	for (uint32_t i = 0; i < k; i++)
		row0[i] = (uint32_t)zns_stream_zone(st, 0, i);
	/* All but the last byte: the last byte of a row is in the last slot, so
	 * the other zones are all dead and reset, the last one stays. */
	assert_int_equal(zns_stream_discard(st, 0, row - 1), 0);
	assert_int_equal(zns_stream_zone(st, 0, 0), -ENOENT);
	assert_int_equal(zns_stream_zone(st, 0, k - 1), (int)row0[k - 1]);
	/* The last byte makes row 0 all dead: its zones are reset and freed. */
	assert_int_equal(zns_stream_discard(st, row - 1, 1), 0);
	for (uint32_t i = 0; i < k; i++) {
		struct zns_zone_info zi;
		struct zns_zone_use u;

		assert_int_equal(zns_stream_zone(st, 0, i), -ENOENT);
		assert_int_equal(zns_zone_report(c->t.dev, row0[i], &zi), 0);
		assert_int_equal(zi.state, ZNS_ZONE_EMPTY);
		assert_int_equal(zns_store_zone_use(c->s, row0[i], &u), 0);
		assert_int_equal(u.owner, 0);
	}
	assert_int_equal(zns_stream_read(st, 10, &byte, 1), -ENODATA);
	verify_pattern(st, 31, row, row + 200000);
	/* The freed zones take the stream on. */
	{
		unsigned char *buf = malloc(row);
		uint64_t off;

		fill(buf, row, 32, 0);
		assert_int_equal(zns_stream_append(st, buf, row, &off), 0);
		assert_int_equal(zns_stream_flush(st), 0);
		for (uint32_t i = 0; i < k; i++)
			assert_int_equal(zns_stream_zone(st, off / row, i), (int)row0[i]);
		unsigned char *got = malloc(row);
		assert_int_equal(zns_stream_read(st, off, got, row), (ssize_t)row);
		assert_memory_equal(got, buf, row);
		free(got);
		free(buf);
	}
	assert_int_equal(zns_stream_check(st, NULL, NULL, NULL), 0);
	assert_int_equal(zns_stream_destroy(st), 0);
}

static void test_destroy_releases(void **state)
{
	struct ctx *c = *state;
	struct zns_stream *st;
	int z;

	assert_int_equal(zns_stream_create(c->s, 41, 2 * ZBW, &st), 0);
	append_pattern(st, 41, 300000);
	assert_int_equal(zns_stream_flush(st), 0);
	z = zns_stream_zone(st, 0, 0);
	assert_true(z >= 0);
	assert_int_equal(zns_alloc_free_groups(zns_store_alloc(c->s)), c->m - 2);
	assert_int_equal(zns_stream_destroy(st), 0);
	assert_int_equal(zns_alloc_free_groups(zns_store_alloc(c->s)), c->m);
	{
		struct zns_zone_info zi;
		struct zns_zone_use u;

		assert_int_equal(zns_zone_report(c->t.dev, (uint32_t)z, &zi), 0);
		assert_int_equal(zi.state, ZNS_ZONE_EMPTY);
		assert_int_equal(zns_store_zone_use(c->s, (uint32_t)z, &u), 0);
		assert_int_equal(u.owner, 0);
	}
	/* Same tenant again: allowed, it was released. */
	assert_int_equal(zns_stream_create(c->s, 41, ZBW, &st), 0);
	assert_int_equal(zns_stream_close(st), 0);
}

static void test_strict_admission_store(void **state)
{
	struct ctx *c = *state;
	struct zns_stream *a, *b;

	zns_store_free(c->s);
	tdev_close(&c->t);
	assert_int_equal(open_store(c, NULL, ZNS_ADMIT_STRICT), 0);
	assert_int_equal(zns_stream_create(c->s, 1, (c->m - 1) * ZBW, &a), 0);
	assert_int_equal(zns_stream_create(c->s, 2, 2 * ZBW, &b), -ENOSPC);
	assert_int_equal(zns_stream_create(c->s, 2, ZBW, &b), 0);
	assert_int_equal(zns_stream_destroy(a), 0);
	assert_int_equal(zns_stream_destroy(b), 0);
	assert_int_equal(zns_alloc_free_groups(zns_store_alloc(c->s)), c->m);
}

/* An image written under one admission mode, restored into a store of the other. */
static void restore_under(struct ctx *c, enum zns_admission image, enum zns_admission store)
{
	struct zns_store_opts so = { .stripe_unit = 64 << 10, .zone_bw = ZBW, .admission = store };
	uint32_t groups[64];
	struct zns_alloc *a;
	struct zns_store *s;
	struct zns_stream *st = NULL;
	size_t len;
	void *img;

	assert_int_equal(zns_alloc_new(c->m, image, &a), 0);
	assert_int_equal(zns_alloc_tenant(a, 1, c->m, groups), 0);
	len = zns_alloc_encode(a, NULL, 0);
	img = malloc(len);
	assert_non_null(img);
	zns_alloc_encode(a, img, len);
	zns_alloc_free(a);
	assert_int_equal(zns_store_new(c->t.dev, &so, &s), 0);
	assert_int_equal(zns_store_restore_alloc(s, img, len), 0);
	free(img);
	assert_int_equal(zns_alloc_admission(zns_store_alloc(s)), store);
	/* tenant 1 holds every group: a new tenant shares (fair) or is refused (strict) */
	assert_int_equal(zns_stream_create(s, 2, ZBW, &st), store == ZNS_ADMIT_FAIR ? 0 : -ENOSPC);
	if (st) {
		assert_int_equal(zns_alloc_share(zns_store_alloc(s), groups[0]), 2);
		assert_int_equal(zns_stream_destroy(st), 0);
	}
	zns_store_free(s);
}

static void test_restore_keeps_store_admission(void **state)
{
	restore_under(*state, ZNS_ADMIT_FAIR, ZNS_ADMIT_STRICT);
	restore_under(*state, ZNS_ADMIT_STRICT, ZNS_ADMIT_FAIR);
}

static void test_check_finds_wp_mismatch(void **state)
{
	struct ctx *c = *state;
	struct zns_stream *st;
	uint32_t zone = UINT32_MAX, bs = c->t.g->block_size;
	uint64_t wp = 0, want = 0;
	void *blk = tbuf(bs, bs, 3);
	struct zns_zone_info zi;
	int z;

	assert_int_equal(zns_stream_create(c->s, 51, 2 * ZBW, &st), 0);
	append_pattern(st, 51, 200000);
	assert_int_equal(zns_stream_flush(st), 0);
	assert_int_equal(zns_stream_check(st, NULL, NULL, NULL), 0);
	/* Something wrote behind the store's back: the check sees it. */
	z = zns_stream_zone(st, 0, 1);
	assert_int_equal(zns_zone_report(c->t.dev, (uint32_t)z, &zi), 0);
	assert_int_equal(zns_zone_write(c->t.dev, (uint32_t)z, zi.wp, blk, bs), bs);
	assert_int_equal(zns_stream_check(st, &zone, &wp, &want), 1);
	assert_int_equal(zone, (uint32_t)z);
	assert_int_equal(wp, want + bs);
	free(blk);
	assert_int_equal(zns_stream_destroy(st), 0);
}

static void test_bad_store_options(void **state)
{
	struct ctx *c = *state;
	struct zns_store *s;
	struct zns_store_opts o = { .stripe_unit = 1000 };

	assert_int_equal(zns_store_new(c->t.dev, &o, &s), -EINVAL);
	o.stripe_unit = c->cap * 2;	/* does not divide the capacity */
	assert_int_equal(zns_store_new(c->t.dev, &o, &s), -EINVAL);
}

/* What the checkpoint metadata would hold: allocation and stream images. */
struct meta {
	unsigned char alloc[512];
	size_t alloc_len;
	unsigned char stream[512];
	size_t stream_len;
};

static void save_meta(struct ctx *c, struct zns_stream *st, struct meta *m)
{
	ssize_t n = zns_stream_encode(st, m->stream, sizeof(m->stream));

	assert_true(n > 0 && (size_t)n <= sizeof(m->stream));
	m->stream_len = (size_t)n;
	m->alloc_len = zns_alloc_encode(zns_store_alloc(c->s), m->alloc, sizeof(m->alloc));
	assert_true(m->alloc_len <= sizeof(m->alloc));
}

/* A restart: new device handle, new store, state from the metadata. */
static void restart(struct ctx *c, const struct meta *m, struct zns_stream **st)
{
	struct zns_store_opts so = { .stripe_unit = 64 << 10, .batch = 128 << 10,
				     .zone_bw = ZBW };

	zns_store_free(c->s);
	assert_int_equal(tdev_reopen(&c->t, NULL), 0);
	assert_int_equal(zns_store_new(c->t.dev, &so, &c->s), 0);
	assert_int_equal(zns_store_restore_alloc(c->s, m->alloc, m->alloc_len), 0);
	assert_int_equal(zns_stream_attach(c->s, m->stream, m->stream_len, st), 0);
}

static void test_attach_after_clean_close(void **state)
{
	struct ctx *c = *state;
	struct zns_stream *st;
	struct meta m;
	uint64_t x = c->cap + 50000, end;
	int z0, z1;

	assert_int_equal(zns_stream_create(c->s, 61, 2 * ZBW, &st), 0);
	append_pattern(st, 61, x);
	assert_int_equal(zns_stream_encode(st, NULL, 0), -EBUSY);	/* staged data */
	assert_int_equal(zns_stream_flush(st), 0);
	end = zns_stream_end(st);
	save_meta(c, st, &m);
	z0 = zns_stream_zone(st, 0, 0);
	z1 = zns_stream_zone(st, 0, 1);
	assert_int_equal(zns_stream_close(st), 0);
	restart(c, &m, &st);
	assert_int_equal(zns_stream_check(st, NULL, NULL, NULL), 0);
	assert_int_equal(zns_stream_end(st), end);
	assert_int_equal(zns_stream_zone(st, 0, 0), z0);
	assert_int_equal(zns_stream_zone(st, 0, 1), z1);
	verify_pattern(st, 61, 0, x);
	/* The tenant's groups are still reserved; another tenant gets the others. */
	assert_int_equal(zns_alloc_free_groups(zns_store_alloc(c->s)), c->m - 2);
	/* Appending continues in the same zones, at their write pointers. */
	{
		unsigned char pad[4096];
		uint64_t off;

		memset(pad, 0, sizeof(pad));
		assert_int_equal(zns_stream_append(st, pad, 10, &off), 0);
		assert_int_equal(off, end);
	}
	append_range(st, 61, end + 10, end + 10 + 300000);
	assert_int_equal(zns_stream_flush(st), 0);
	assert_int_equal(zns_stream_check(st, NULL, NULL, NULL), 0);
	verify_pattern(st, 61, 0, x);
	verify_pattern(st, 61, end + 10, end + 10 + 300000);
	assert_int_equal(zns_stream_destroy(st), 0);
}

static void test_recover_when_device_is_ahead(void **state)
{
	struct ctx *c = *state;
	struct zns_stream *st;
	struct meta m;
	uint64_t x = 200000, row;
	uint32_t zone;
	uint64_t wp, want;

	assert_int_equal(zns_stream_create(c->s, 71, 2 * ZBW, &st), 0);
	row = c->cap * zns_stream_k(st);
	append_pattern(st, 71, x);
	assert_int_equal(zns_stream_flush(st), 0);
	save_meta(c, st, &m);
	/* Data written after the last metadata commit, then a crash. */
	append_range(st, 71, zns_stream_end(st), zns_stream_end(st) + 150000);
	assert_int_equal(zns_stream_close(st), 0);
	restart(c, &m, &st);
	assert_true(zns_stream_check(st, &zone, &wp, &want) > 0);
	assert_true(wp > want);
	verify_pattern(st, 71, 0, x);
	/* Seal the row: consistent again, the next data goes to fresh zones. */
	assert_int_equal(zns_stream_seal(st), 0);
	assert_int_equal(zns_stream_check(st, NULL, NULL, NULL), 0);
	assert_int_equal(zns_stream_end(st), row);
	append_range(st, 71, row, row + 100000);
	assert_int_equal(zns_stream_flush(st), 0);
	assert_true(zns_stream_zone(st, 1, 0) >= 0);
	assert_true(zns_stream_zone(st, 1, 0) != zns_stream_zone(st, 0, 0));
	verify_pattern(st, 71, 0, x);
	verify_pattern(st, 71, row, row + 100000);
	assert_int_equal(zns_stream_check(st, NULL, NULL, NULL), 0);
	assert_int_equal(zns_stream_destroy(st), 0);
}

/*
 * Zones reset by someone else hold less than the metadata says: recovery
 * counts the missing bytes (never a negative "dropped" count) and reads of
 * them fail with EIO instead of returning what the zone holds now.
 */
static void test_verify_zone_behind_is_lost(void **state)
{
	struct ctx *c = *state;
	struct zns_stream *st;
	struct zns_stream_damage d;
	struct meta m;
	uint64_t x = c->cap + 200000;
	unsigned char *buf = tbuf(65536, 4096, 1);
	int z;

	assert_int_equal(zns_stream_create(c->s, 81, 2 * ZBW, &st), 0);
	append_pattern(st, 81, x);
	assert_int_equal(zns_stream_flush(st), 0);
	save_meta(c, st, &m);
	z = zns_stream_zone(st, 0, 1);
	assert_true(z >= 0);
	assert_int_equal(zns_stream_close(st), 0);
	assert_int_equal(zns_zone_reset(c->t.dev, (uint32_t)z), 0);
	restart(c, &m, &st);
	assert_int_equal(zns_stream_verify(st, &d), 0);
	assert_int_equal(d.zones_ahead, 0);
	assert_int_equal(d.bytes_ahead, 0);
	assert_int_equal(d.zones_behind, 1);
	assert_true(d.bytes_behind > 65536 && d.bytes_behind <= c->cap);
	assert_int_equal(d.first_behind, (uint32_t)z);
	/* slot 0 still reads; the first unit of slot 1 is at stream offset 64 KiB */
	verify_pattern(st, 81, 0, 65536);
	assert_int_equal(zns_stream_read(st, 65536, buf, 65536), -EIO);
	free(buf);
	assert_int_equal(zns_stream_destroy(st), 0);
}

/*
 * A zone whose data all died, reset by its own mount after the last commit:
 * recovery finds it behind and marks it lost, but once its data is counted
 * dead it is given back, and a later row that gets it again reads.
 */
static void test_zone_lost_then_reused_reads(void **state)
{
	struct ctx *c = *state;
	struct zns_stream *st;
	struct zns_stream_damage d;
	struct zns_range live;
	struct meta m;
	uint64_t end, r, reused = 0;
	int z;

	assert_int_equal(zns_stream_create(c->s, 85, ZBW, &st), 0);
	assert_int_equal(zns_stream_k(st), 1);
	append_pattern(st, 85, c->cap + c->cap / 2);
	assert_int_equal(zns_stream_flush(st), 0);
	save_meta(c, st, &m);
	z = zns_stream_zone(st, 0, 0);
	assert_true(z >= 0);
	assert_int_equal(zns_stream_close(st), 0);
	assert_int_equal(zns_zone_reset(c->t.dev, (uint32_t)z), 0);
	restart(c, &m, &st);
	assert_int_equal(zns_stream_verify(st, &d), 0);
	assert_int_equal(d.zones_behind, 1);
	assert_int_equal(zns_stream_lost_zones(st), 1);
	/* only the second row holds live data */
	end = zns_stream_end(st);
	live = (struct zns_range){ c->cap, end - c->cap };
	assert_int_equal(zns_stream_recount_dead(st, &live, 1), 0);
	assert_int_equal(zns_stream_lost_zones(st), 0);
	for (r = 2; r < c->t.g->nr_zones / c->m && !reused; r++) {
		append_range(st, 85, end, r * c->cap + c->cap / 2);
		end = r * c->cap + c->cap / 2;
		if (zns_stream_zone(st, r, 0) == z)
			reused = r;
	}
	assert_true(reused > 0);
	verify_pattern(st, 85, reused * c->cap, end);
	assert_int_equal(zns_stream_destroy(st), 0);
}

static void test_verify_counts_bytes_ahead(void **state)
{
	struct ctx *c = *state;
	struct zns_stream *st;
	struct zns_stream_damage d;
	struct meta m;

	assert_int_equal(zns_stream_create(c->s, 82, 2 * ZBW, &st), 0);
	append_pattern(st, 82, 200000);
	assert_int_equal(zns_stream_flush(st), 0);
	save_meta(c, st, &m);
	append_range(st, 82, zns_stream_end(st), zns_stream_end(st) + 150000);
	assert_int_equal(zns_stream_close(st), 0);
	restart(c, &m, &st);
	assert_int_equal(zns_stream_verify(st, &d), 0);
	assert_int_equal(d.zones_behind, 0);
	assert_true(d.zones_ahead > 0);
	assert_true(d.bytes_ahead >= 150000 && d.bytes_ahead < 150000 + 2 * 65536);
	verify_pattern(st, 82, 0, 200000);
	assert_int_equal(zns_stream_destroy(st), 0);
}

/* Append 64 KiB pieces until the tenant's zones are full; returns the bytes taken. */
static uint64_t append_until_full(struct zns_stream *st, unsigned seed)
{
	unsigned char *buf = malloc(65536);
	uint64_t start = zns_stream_end(st), off;
	int rc;

	do {
		off = zns_stream_end(st);
		fill(buf, 65536, seed, off);
		rc = zns_stream_append(st, buf, 65536, NULL);
	} while (!rc);
	assert_int_equal(rc, -ENOSPC);
	free(buf);
	return zns_stream_end(st) - start;
}

/*
 * Crashes of a checkpoint mount whose tenant fills its zones every time:
 * each round commits a file, writes on until ENOSPC, crashes without a
 * commit, recovers (the row is sealed), checks every committed file and
 * deletes the round's file. The stream goes through many more rows than
 * the device has zones (deleted rows are reset and reused); recovery must
 * still take its description, and a file kept from the start reads back.
 */
static void test_recover_full_zones_after_many_rows(void **state)
{
	struct ctx *c = *state;
	uint64_t keep = 100000, rounds = 2 * c->t.g->nr_zones;
	struct zns_stream *st;
	struct meta m;

	skip_if_big(c);
	/* It fills the device over again twice as many times as it has
	 * zones: seconds on the emulator, far too long for a device under
	 * qemu's TCG. The emulator enforces the same rules. */
	if (c->t.real) {
		print_message("many-row recovery: run on the emulator only\n");
		skip();
	}
	assert_int_equal(zns_stream_create(c->s, 84, ZBW, &st), 0);
	assert_int_equal(zns_stream_k(st), 1);
	append_pattern(st, 84, keep);
	for (uint64_t r = 0; r < rounds; r++) {
		struct zns_stream_damage d;
		uint64_t from, to;

		assert_int_equal(zns_stream_flush(st), 0);
		from = zns_stream_end(st);
		to = from + c->cap + c->cap / 2;	/* the crash lands mid-row */
		append_range(st, 84, from, to);
		assert_int_equal(zns_stream_flush(st), 0);
		save_meta(c, st, &m);
		assert_true(append_until_full(st, 84) > 0);
		assert_int_equal(zns_stream_close(st), 0);
		restart(c, &m, &st);
		assert_int_equal(zns_stream_verify(st, &d), 0);
		assert_int_equal(d.zones_behind, 0);
		assert_true(d.zones_ahead > 0);
		assert_int_equal(zns_stream_seal(st), 0);
		assert_int_equal(zns_stream_check(st, NULL, NULL, NULL), 0);
		verify_pattern(st, 84, 0, keep);
		verify_pattern(st, 84, from, to);
		assert_int_equal(zns_stream_discard(st, from, to - from), 0);
	}
	assert_true(zns_stream_nrows(st) > c->t.g->nr_zones);
	assert_int_equal(zns_stream_destroy(st), 0);
}

/* Reserved zones are never handed to a stream, even when their group needs one. */
static void test_reserved_zone_never_allocated(void **state)
{
	struct ctx *c = *state;
	struct zns_store_opts so = { .stripe_unit = 64 << 10, .batch = 128 << 10,
				     .zone_bw = ZBW, .reserved_zones = 1 };
	struct zns_stream *st;
	uint32_t per_group = c->t.g->nr_zones / c->m;

	zns_store_free(c->s);
	assert_int_equal(zns_store_new(c->t.dev, &so, &c->s), 0);
	assert_int_equal(zns_stream_create(c->s, 83, ZBW, &st), 0);
	assert_int_equal(zns_stream_k(st), 1);
	append_pattern(st, 83, (per_group - 1) * c->cap);
	assert_int_equal(zns_stream_flush(st), 0);
	for (uint64_t r = 0; r < zns_stream_nrows(st); r++)
		assert_true(zns_stream_zone(st, r, 0) != 0);
	assert_int_equal(zns_stream_destroy(st), 0);
}

/* The label: absent on an empty zone 0, read back as written, foreign data refused. */
static void test_label_round_trip(void **state)
{
	struct ctx *c = *state;
	struct zns_label a, b;
	unsigned char *blk = tbuf(c->t.g->block_size, 4096, 7);

	assert_int_equal(zns_zone_reset(c->t.dev, 0), 0);
	assert_int_equal(zns_label_read(c->t.dev, &b), -ENOENT);
	assert_int_equal(zns_dev_first_written(c->t.dev, 0), -ENOENT);
	assert_int_equal(zns_label_new(&a), 0);
	assert_int_equal(zns_label_write(c->t.dev, &a), 0);
	assert_int_equal(zns_label_read(c->t.dev, &b), 0);
	assert_memory_equal(a.id, b.id, ZNS_ID_LEN);
	assert_int_equal(zns_dev_first_written(c->t.dev, 0), 0);
	assert_int_equal(zns_dev_first_written(c->t.dev, 1), -ENOENT);
	assert_int_equal(zns_zone_reset(c->t.dev, 0), 0);
	assert_int_equal(zns_zone_write(c->t.dev, 0, 0, blk, c->t.g->block_size),
			 (ssize_t)c->t.g->block_size);
	assert_int_equal(zns_label_read(c->t.dev, &b), -EINVAL);
	assert_int_equal(zns_zone_reset(c->t.dev, 0), 0);
	free(blk);
}

static void test_attach_refuses_bad_images(void **state)
{
	struct ctx *c = *state;
	struct zns_stream *st, *other;
	struct meta m;

	assert_int_equal(zns_stream_create(c->s, 81, ZBW, &st), 0);
	append_pattern(st, 81, 5000);
	assert_int_equal(zns_stream_flush(st), 0);
	save_meta(c, st, &m);
	/* Attach works on the genuine image; altered ones are refused. */
	assert_int_equal(zns_stream_close(st), 0);
	assert_int_equal(zns_stream_attach(c->s, m.stream, m.stream_len, &st), 0);
	m.stream[8] = 82;	/* tenant 82 has no groups */
	assert_int_equal(zns_stream_attach(c->s, m.stream, m.stream_len, &other), -EINVAL);
	m.stream[8] = 81;
	assert_int_equal(zns_stream_attach(c->s, m.stream, m.stream_len - 4, &other), -EINVAL);
	m.stream[0] ^= 1;
	assert_int_equal(zns_stream_attach(c->s, m.stream, m.stream_len, &other), -EINVAL);
	m.stream[0] ^= 1;
	{
		/* a second row naming the first row's zone again */
		unsigned char twice[512];
		uint64_t end = c->cap + 4096, rows = 2;

		memcpy(twice, m.stream, m.stream_len);
		memcpy(twice + m.stream_len, m.stream + m.stream_len - 4, 4);
		for (int i = 0; i < 8; i++) {
			twice[24 + i] = (unsigned char)(end >> (8 * i));
			twice[32 + i] = (unsigned char)(rows >> (8 * i));
		}
		assert_int_equal(zns_stream_close(st), 0);
		assert_int_equal(zns_stream_attach(c->s, twice, m.stream_len + 4, &other), -EINVAL);
		assert_int_equal(zns_stream_attach(c->s, m.stream, m.stream_len, &st), 0);
	}
	assert_int_equal(zns_store_restore_alloc(c->s, m.alloc, 8), -EINVAL);
	assert_int_equal(zns_stream_destroy(st), 0);
}

/* A new row over the active-zone limit is refused up front; the stream stays usable. */
static void test_active_limit_refused_up_front(void **state)
{
	struct ctx *c = *state;
	struct zns_stream *a, *b;
	uint32_t ma = c->t.g->max_active;
	unsigned char byte = 1;

	if (!ma || ma >= c->t.g->nr_zones || ma < c->m || ma >= 2 * c->m)
		skip();
	assert_int_equal(zns_stream_create(c->s, 91, c->m * ZBW, &a), 0);
	assert_int_equal(zns_stream_create(c->s, 92, c->m * ZBW, &b), 0);
	append_pattern(a, 91, 300000);	/* more than m units: all m zones written */
	assert_int_equal(zns_stream_flush(a), 0);
	/* a holds m active zones; b's first row would need m more. */
	assert_int_equal(zns_stream_append(b, &byte, 1, NULL), -EOVERFLOW);
	assert_int_equal(zns_stream_zone(b, 0, 0), -ENOENT);
	assert_int_equal(zns_stream_destroy(a), 0);
	append_pattern(b, 92, 100000);
	assert_int_equal(zns_stream_flush(b), 0);
	verify_pattern(b, 92, 0, 100000);
	assert_int_equal(zns_stream_destroy(b), 0);
}

struct reader_job {
	struct zns_stream *st;
	unsigned seed;
	bool *stop;
	uint64_t total;		/* past it is the flush padding */
	int reads;
	int bad;
};

/* Read random ranges below the current end while the stream grows. */
static void *reader_main(void *arg)
{
	struct reader_job *j = arg;
	unsigned char *got = malloc(70000), *want = malloc(70000);
	unsigned r = j->seed;

	while (!__atomic_load_n(j->stop, __ATOMIC_ACQUIRE)) {
		uint64_t end = zns_stream_end(j->st), off;

		if (end > j->total)
			end = j->total;
		size_t n = 1 + (r = r * 1103515245 + 12345) % 70000;

		if (end < n)
			continue;
		off = (r = r * 1103515245 + 12345) % (end - n + 1);
		if (zns_stream_read(j->st, off, got, n) != (ssize_t)n) {
			j->bad++;
			continue;
		}
		fill(want, n, 95, off);
		j->bad += memcmp(got, want, n) != 0;
		j->reads++;
	}
	free(got);
	free(want);
	return NULL;
}

/* Readers share the stream with the appender and see exactly what was appended. */
static void test_reads_during_appends(void **state)
{
	struct ctx *c = *state;
	struct zns_stream *st;
	bool stop = false;
	uint64_t total = is_big(c) ? (8u << 20) : c->cap * 3 + 4321;
	struct reader_job r1 = { NULL, 1, &stop, total, 0, 0 }, r2 = { NULL, 2, &stop, total, 0, 0 };
	pthread_t t1, t2;

	assert_int_equal(zns_stream_create(c->s, 95, 3 * ZBW, &st), 0);
	r1.st = r2.st = st;
	pthread_create(&t1, NULL, reader_main, &r1);
	pthread_create(&t2, NULL, reader_main, &r2);
	append_pattern(st, 95, total);
	assert_int_equal(zns_stream_flush(st), 0);
	__atomic_store_n(&stop, true, __ATOMIC_RELEASE);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	assert_int_equal(r1.bad + r2.bad, 0);
	assert_true(r1.reads + r2.reads > 0);
	verify_pattern(st, 95, 0, total);
	assert_int_equal(zns_stream_destroy(st), 0);
}

/* One random run: appends, flushes and reads checked against a plain buffer. */
static void random_run(struct ctx *c, unsigned seed, uint64_t unit, uint64_t batch, uint32_t k)
{
	struct zns_store_opts so = { .stripe_unit = unit, .batch = batch, .zone_bw = ZBW };
	uint64_t limit = c->cap * k * 2, end = 0;
	unsigned char *model = calloc(1, limit), *buf = malloc(100000);
	uint32_t bs = c->t.g->block_size;
	struct zns_store *s;
	struct zns_stream *st;

	srand(seed);
	assert_int_equal(zns_store_new(c->t.dev, &so, &s), 0);
	assert_int_equal(zns_stream_create(s, seed, k * ZBW, &st), 0);
	for (int op = 0; op < 300; op++) {
		int what = rand() % 20;
		size_t n = 1 + (size_t)rand() % 100000;

		if (what < 11 && end + n + bs <= limit) {
			uint64_t off;

			fill(model + end, n, seed, end);
			assert_int_equal(zns_stream_append(st, model + end, n, &off), 0);
			assert_int_equal(off, end);
			end += n;
		} else if (what < 14) {
			assert_int_equal(zns_stream_flush(st), 0);
			end = (end + bs - 1) / bs * bs;	/* the model's padding is already zero */
		} else if (end) {
			uint64_t off = (uint64_t)rand() % end;

			if (n > end - off)
				n = (size_t)(end - off);
			assert_int_equal(zns_stream_read(st, off, buf, n), (ssize_t)n);
			assert_memory_equal(buf, model + off, n);
		}
		assert_int_equal(zns_stream_end(st), end);
	}
	assert_int_equal(zns_stream_flush(st), 0);
	assert_int_equal(zns_stream_check(st, NULL, NULL, NULL), 0);
	assert_int_equal(zns_stream_destroy(st), 0);
	zns_store_free(s);
	free(model);
	free(buf);
}

static void test_random_ops_match_model(void **state)
{
	struct ctx *c = *state;
	const uint64_t units[] = { 4096, 16384, 65536 };
	const uint64_t batches[] = { 8192, 65536, 262144 };

	skip_if_big(c);
	for (unsigned i = 0; i < 6; i++)
		random_run(c, 100 + i, units[i % 3], batches[(i / 3 + i) % 3], 1 + i % c->m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_striped_write_read_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_past_end_is_short, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_tenants_disjoint, setup, teardown),
		cmocka_unit_test_setup_teardown(test_striping_is_parallel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dead_zones_reset_and_reused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destroy_releases, setup, teardown),
		cmocka_unit_test_setup_teardown(test_strict_admission_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restore_keeps_store_admission, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_finds_wp_mismatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_store_options, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attach_after_clean_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_when_device_is_ahead, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_zone_behind_is_lost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_counts_bytes_ahead, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_full_zones_after_many_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reserved_zone_never_allocated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_label_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attach_refuses_bad_images, setup, teardown),
		cmocka_unit_test_setup_teardown(test_active_limit_refused_up_front, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_ops_match_model, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reads_during_appends, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zone_lost_then_reused_reads, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
