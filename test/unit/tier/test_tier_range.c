/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of range promotion: bitmaps to extents, unions over starts,
 * the threshold and unit settings, sparse copies holding exactly the
 * traced extents, stale sources, persistence and the version 1 upgrade. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <cmocka.h>
#include "test_tier_common.h"
#include "tier/tier_private.h"
#include "tier/tier_index.h"
#include "tier/range/range.h"
#include "tier/range/range_private.h"

#define UNIT 4096ULL
#define BIG (64 * UNIT + 100)		/* 65 units, the last one partial */

static struct tier_ctx *open_range_slack(struct tdirs *t, bool promote, uint64_t slack)
{
	struct tier_config c = tconf(t, promote);

	c.range_threshold = 16 * UNIT;
	c.range_unit = UNIT;
	c.range_slack = slack;
	return topen(&c);
}

/* Copies of exactly the traced extents, unless a test asks for slack. */
static struct tier_ctx *open_range(struct tdirs *t, bool promote)
{
	return open_range_slack(t, promote, 0);
}

static void set_bit(uint64_t *v, uint64_t b)
{
	v[b / 64] |= 1ULL << (b % 64);
}

static void bitmap_folds_to_runs(void **state)
{
	uint64_t bits[2] = { 0, 0 };
	struct tier_extent out[64];
	size_t n;

	(void)state;
	assert_int_equal(tier_bitmap_extents(bits, 65, 100, 6450, out), 0);
	set_bit(bits, 0);
	set_bit(bits, 1);
	set_bit(bits, 5);
	for (uint64_t b = 62; b <= 64; b++)	/* a run across two words */
		set_bit(bits, b);
	n = tier_bitmap_extents(bits, 65, 100, 6450, out);
	assert_int_equal(n, 3);
	assert_int_equal(out[0].off, 0);
	assert_int_equal(out[0].len, 200);
	assert_int_equal(out[1].off, 500);
	assert_int_equal(out[1].len, 100);
	assert_int_equal(out[2].off, 6200);
	assert_int_equal(out[2].len, 250);	/* clipped to the file size */
}

static void extents_union_and_cover(void **state)
{
	const struct tier_extent a[] = { { 0, 10 }, { 50, 10 }, { 100, 5 } };
	const struct tier_extent b[] = { { 10, 5 }, { 55, 20 }, { 200, 1 } };
	struct tier_extent u[6];
	const struct tier_extent inside[] = { { 2, 12 }, { 60, 15 } };
	const struct tier_extent across[] = { { 70, 40 } };
	size_t n;

	(void)state;
	n = tier_extents_union(a, 3, b, 3, u);
	assert_int_equal(n, 4);
	assert_int_equal(u[0].off, 0);
	assert_int_equal(u[0].len, 15);		/* touching runs merge */
	assert_int_equal(u[1].off, 50);
	assert_int_equal(u[1].len, 25);		/* overlapping runs merge */
	assert_int_equal(u[2].off, 100);
	assert_int_equal(u[3].off, 200);
	assert_int_equal(tier_extents_union(a, 3, NULL, 0, u), 3);
	assert_int_equal(tier_extents_union(NULL, 0, NULL, 0, u), 0);
	n = tier_extents_union(a, 3, b, 3, u);
	assert_true(tier_extents_cover(u, n, inside, 2));
	assert_false(tier_extents_cover(u, n, across, 1));
	assert_false(tier_extents_cover(a, 3, b, 3));
	assert_true(tier_extents_cover(a, 3, NULL, 0));
}

static void config_threshold_and_unit(void **state)
{
	struct tier_config c;
	char err[256];

	(void)state;
	tier_config_defaults(&c);
	assert_true(c.range_threshold > 0);
	assert_true(c.range_unit >= 4096 && !(c.range_unit & (c.range_unit - 1)));
	assert_int_equal(tier_config_set(&c, "range_threshold", "32M", err, sizeof(err)), 0);
	assert_int_equal(c.range_threshold, 32ULL << 20);
	assert_int_equal(tier_config_set(&c, "range_threshold", "0", err, sizeof(err)), 0);
	assert_int_equal(c.range_threshold, 0);
	assert_int_equal(tier_config_set(&c, "range_unit", "4K", err, sizeof(err)), 0);
	assert_int_equal(c.range_unit, 4096);
	assert_int_equal(tier_config_set(&c, "range_unit", "1M", err, sizeof(err)), 0);
	/* bad values are refused with a message and change nothing */
	assert_int_equal(tier_config_set(&c, "range_unit", "2K", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "range_unit"));
	assert_int_equal(tier_config_set(&c, "range_unit", "96K", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "power of two"));
	assert_int_equal(tier_config_set(&c, "range_unit", "2G", err, sizeof(err)), -EINVAL);
	assert_int_equal(tier_config_set(&c, "range_threshold", "lots", err, sizeof(err)), -EINVAL);
	assert_int_equal(c.range_unit, 1ULL << 20);
	assert_int_equal(c.range_threshold, 0);
	tier_config_free(&c);
}

/* Open @rel like the mount does; returns tier_range_open()'s answer. */
static int ropen(struct tier_ctx *ctx, int l, const char *rel, struct tier_range *r)
{
	char p[PATH_MAX];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", tier_layer_dir(ctx, l), rel);
	assert_int_equal(lstat(p, &st), 0);
	tier_trace_open(ctx, l, rel, (uint64_t)st.st_size);
	return tier_range_open(ctx, l, rel, &st, r);
}

static void read_ranges(struct tier_ctx *ctx, int l, const char *rel,
			const uint64_t (*ranges)[2], size_t n)
{
	struct tier_range r;

	assert_int_equal(ropen(ctx, l, rel, &r), 1);
	assert_non_null(r.trace);
	for (size_t i = 0; i < n; i++)
		tier_range_note_read(r.trace, ranges[i][0], ranges[i][1]);
	tier_range_close(&r);
}

static void end_window(struct tier_ctx *ctx)
{
	tier_trace_stop(ctx);
	assert_true(tier_trace_flush(ctx) >= 0);
}

static void assert_extents(struct tier_ctx *ctx, int l, const char *rel, bool copy,
			   const uint64_t (*want)[2], size_t n)
{
	struct tier_extent *x;
	size_t got;

	assert_int_equal(tier_range_extents(ctx, l, rel, copy, &x, &got), 0);
	assert_int_equal(got, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(x[i].off, want[i][0]);
		assert_int_equal(x[i].len, want[i][1]);
	}
	free(x);
}

static void threshold_and_shared_trace(void **state)
{
	struct tdirs *t = *state;
	struct tier_ctx *ctx = open_range(t, false);
	int l = tier_layer_add(ctx, t->l1);
	struct tier_range a, b;

	twrite(t->l1, "small", 16 * UNIT - 1, 1);
	twrite(t->l1, "big", BIG, 2);
	assert_int_equal(ropen(ctx, l, "small", &a), 0);
	assert_null(a.trace);
	/* two opens of one file share its bitmap */
	assert_int_equal(ropen(ctx, l, "big", &a), 1);
	assert_int_equal(ropen(ctx, l, "big", &b), 1);
	assert_ptr_equal(a.trace, b.trace);
	assert_null(a.copy);
	tier_range_note_read(a.trace, 0, 1);
	tier_range_note_read(b.trace, 3 * UNIT - 1, 2);		/* units 2 and 3 */
	tier_range_note_read(a.trace, BIG - 10, 1000);		/* past the end */
	tier_range_note_read(a.trace, BIG + 5, 10);		/* wholly past it */
	tier_range_close(&a);
	tier_range_close(&b);
	end_window(ctx);
	{
		const uint64_t want[][2] = { { 0, UNIT }, { 2 * UNIT, 2 * UNIT }, { 64 * UNIT, 100 } };

		assert_extents(ctx, l, "big", false, want, 3);
	}
	/* no window, no trace */
	assert_int_equal(ropen(ctx, l, "big", &a), 0);
	tier_close(ctx);
}

static void ranges_merge_across_starts(void **state)
{
	struct tdirs *t = *state;
	struct tier_ctx *ctx = open_range(t, false);
	int l = tier_layer_add(ctx, t->l1);
	const uint64_t s1[][2] = { { 0, 10 }, { 10 * UNIT, UNIT } };
	const uint64_t s2[][2] = { { UNIT, 1 }, { 20 * UNIT, 3 * UNIT } };
	const uint64_t want[][2] = { { 0, 2 * UNIT }, { 10 * UNIT, UNIT }, { 20 * UNIT, 3 * UNIT } };

	twrite(t->l1, "big", BIG, 2);
	read_ranges(ctx, l, "big", s1, 2);
	end_window(ctx);
	assert_int_equal(tier_trace_start(ctx), 0);
	read_ranges(ctx, l, "big", s2, 2);
	end_window(ctx);
	assert_extents(ctx, l, "big", false, want, 3);
	tier_close(ctx);
	/* the index keeps them across close and open */
	ctx = open_range(t, false);
	l = tier_layer_add(ctx, t->l1);
	assert_extents(ctx, l, "big", false, want, 3);
	tier_close(ctx);
}

static uint64_t allocated(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_blocks * 512;
}

/* Inside the extents the copy has the source's bytes. */
static void assert_copy_matches(const struct tier_range *r, const char *src)
{
	size_t ls, lc;
	char *s = tread(src, &ls), *c = tread(r->copy, &lc);

	assert_int_equal(ls, lc);
	for (size_t i = 0; i < r->n_ext; i++)
		assert_memory_equal(s + r->ext[i].off, c + r->ext[i].off, r->ext[i].len);
	free(s);
	free(c);
}

static void promotion_copies_exactly_the_extents(void **state)
{
	struct tdirs *t = *state;
	struct tier_ctx *ctx = open_range(t, true);
	int l = tier_layer_add(ctx, t->l1);
	const uint64_t reads[][2] = { { 3 * UNIT + 5, 2 * UNIT }, { 40 * UNIT, 7 * UNIT } };
	const uint64_t want[][2] = { { 3 * UNIT, 3 * UNIT }, { 40 * UNIT, 7 * UNIT } };
	struct tier_range_status rs;
	struct tier_status st;
	struct tier_range r;
	char src[PATH_MAX];

	twrite(t->l1, "big", BIG, 2);
	snprintf(src, sizeof(src), "%s/big", t->l1);
	read_ranges(ctx, l, "big", reads, 2);
	end_window(ctx);
	assert_int_equal(tier_wait_idle(ctx, 10000), 0);
	assert_extents(ctx, l, "big", true, want, 2);
	assert_int_equal(ropen(ctx, l, "big", &r), 1);
	assert_null(r.trace);
	assert_non_null(r.copy);
	assert_int_equal(r.n_ext, 2);
	assert_copy_matches(&r, src);
	/* a sparse file: about the 10 traced units, not the 65 of the file */
	assert_true(allocated(r.copy) >= 10 * UNIT);
	assert_true(allocated(r.copy) <= 12 * UNIT);
	tier_range_status(ctx, &rs);
	assert_int_equal(rs.files, 1);
	assert_int_equal(rs.nvm_bytes, allocated(r.copy));
	assert_int_equal(rs.file_bytes, BIG);
	tier_status(ctx, &st);
	assert_int_equal(st.nvm_used, allocated(r.copy));
	/* tier_lookup_data() never names a sparse copy as a whole one */
	{
		char copy[PATH_MAX];
		struct stat sst;

		stat(src, &sst);
		assert_int_equal(tier_lookup_data(ctx, l, "big", &sst, copy, sizeof(copy)),
				 TIER_DATA_LAYER);
	}
	tier_range_close(&r);
	tier_close(ctx);

	/* reopened: the copy and its map are still there */
	ctx = open_range(t, false);
	l = tier_layer_add(ctx, t->l1);
	tier_trace_stop(ctx);
	assert_int_equal(ropen(ctx, l, "big", &r), 1);
	assert_non_null(r.copy);
	assert_int_equal(r.n_ext, 2);
	assert_int_equal(r.ext[1].off, 40 * UNIT);
	assert_copy_matches(&r, src);
	tier_range_close(&r);
	/* eviction frees its allocated bytes */
	assert_int_equal(tier_evict(ctx, UINT64_MAX), (int64_t)rs.nvm_bytes);
	assert_int_equal(ropen(ctx, l, "big", &r), 0);
	tier_close(ctx);
}

/* The copy holds each traced extent widened by the slack after it and half
 * of it before, in whole units, merged where the widened extents meet,
 * clipped to the file. */
static void slack_widens_the_copy(void **state)
{
	struct tdirs *t = *state;
	struct tier_ctx *ctx = open_range_slack(t, true, 2 * UNIT);
	int l = tier_layer_add(ctx, t->l1);
	const uint64_t reads[][2] = { { 0, 1 }, { 10 * UNIT + 5, UNIT }, { 14 * UNIT, UNIT },
				      { 63 * UNIT, 10 } };
	const uint64_t traced[][2] = { { 0, UNIT }, { 10 * UNIT, 2 * UNIT }, { 14 * UNIT, UNIT },
				       { 63 * UNIT, UNIT } };
	const uint64_t want[][2] = { { 0, 3 * UNIT }, { 9 * UNIT, 8 * UNIT },
				     { 62 * UNIT, 2 * UNIT + 100 } };
	struct tier_range r;
	char src[PATH_MAX];

	twrite(t->l1, "big", BIG, 2);
	snprintf(src, sizeof(src), "%s/big", t->l1);
	read_ranges(ctx, l, "big", reads, 4);
	end_window(ctx);
	assert_int_equal(tier_wait_idle(ctx, 10000), 0);
	/* the index keeps what was read; the copy has the slack */
	assert_extents(ctx, l, "big", false, traced, 4);
	assert_extents(ctx, l, "big", true, want, 3);
	/* a copy that holds every traced range is not queued again */
	assert_int_equal(tier_promote_hot(ctx), 0);
	tier_trace_stop(ctx);
	assert_int_equal(ropen(ctx, l, "big", &r), 1);
	assert_copy_matches(&r, src);
	tier_range_close(&r);
	tier_close(ctx);
}

static void new_ranges_extend_the_copy(void **state)
{
	struct tdirs *t = *state;
	struct tier_ctx *ctx = open_range(t, true);
	int l = tier_layer_add(ctx, t->l1);
	const uint64_t s1[][2] = { { 0, UNIT } };
	const uint64_t s2[][2] = { { 30 * UNIT, UNIT } };
	const uint64_t want[][2] = { { 0, UNIT }, { 30 * UNIT, UNIT } };
	char objdir[512];

	twrite(t->l1, "big", BIG, 2);
	read_ranges(ctx, l, "big", s1, 1);
	end_window(ctx);
	assert_int_equal(tier_wait_idle(ctx, 10000), 0);
	assert_int_equal(tier_trace_start(ctx), 0);
	read_ranges(ctx, l, "big", s2, 1);
	end_window(ctx);
	assert_int_equal(tier_wait_idle(ctx, 10000), 0);
	assert_extents(ctx, l, "big", true, want, 2);
	/* the first copy was replaced, not kept beside the new one */
	snprintf(objdir, sizeof(objdir), "%s/objects", t->nvm);
	assert_int_equal(count_dir(objdir), 1);
	tier_close(ctx);
}

static void stale_source_dropped(void **state)
{
	struct tdirs *t = *state;
	struct tier_ctx *ctx = open_range(t, true);
	int l = tier_layer_add(ctx, t->l1);
	const uint64_t s1[][2] = { { 0, 5 * UNIT } };
	struct timeval tv[2] = { { 1000, 0 }, { 1000, 0 } };
	struct tier_range_status rs;
	struct tier_range r;
	char p[PATH_MAX], objdir[512];

	twrite(t->l1, "big", BIG, 2);
	read_ranges(ctx, l, "big", s1, 1);
	end_window(ctx);
	assert_int_equal(tier_wait_idle(ctx, 10000), 0);
	tier_range_status(ctx, &rs);
	assert_int_equal(rs.files, 1);
	/* same size, other bytes and mtime */
	twrite(t->l1, "big", BIG, 9);
	snprintf(p, sizeof(p), "%s/big", t->l1);
	utimes(p, tv);
	assert_int_equal(ropen(ctx, l, "big", &r), 0);
	assert_null(r.copy);
	tier_range_status(ctx, &rs);
	assert_int_equal(rs.files, 0);
	assert_int_equal(rs.nvm_bytes, 0);
	snprintf(objdir, sizeof(objdir), "%s/objects", t->nvm);
	assert_int_equal(count_dir(objdir), 0);
	tier_close(ctx);
}

/* A crash in the middle of a range copy: the child is killed while its
 * worker copies; the parent reopens and finds no temp and no object the
 * index does not name. */
static void kill9_during_range_copy(void **state)
{
	struct tdirs *t = *state;
	char objdir[512], big[PATH_MAX];
	pid_t pid;
	int status;

	snprintf(big, sizeof(big), "%s/huge", t->l1);
	twrite(t->l1, "huge", 0, 0);
	assert_int_equal(truncate(big, 64 << 20), 0);	/* sparse source, quick */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct tier_ctx *ctx = open_range(t, true);
		int l = tier_layer_add(ctx, t->l1);
		const uint64_t all[][2] = { { 0, 64 << 20 } };

		read_ranges(ctx, l, "huge", all, 1);
		end_window(ctx);
		for (;;)
			pause();
	}
	usleep(150 * 1000);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	{
		struct tier_ctx *ctx = open_range(t, false);
		int l = tier_layer_add(ctx, t->l1);
		struct tier_range_status rs;
		struct tier_range r;

		tier_range_status(ctx, &rs);
		snprintf(objdir, sizeof(objdir), "%s/objects", t->nvm);
		assert_int_equal(count_dir(objdir), (int)rs.files);
		tier_trace_stop(ctx);
		if (ropen(ctx, l, "huge", &r) == 1) {
			assert_copy_matches(&r, big);
			tier_range_close(&r);
		}
		tier_close(ctx);
	}
}

/* A pool as nlayerfs wrote it before range copies: a shorter root,
 * version 1, one traced file. */
static void make_v1_pool(const char *path)
{
	PMEMobjpool *pop = pmemobj_create(path, TIER_INDEX_LAYOUT, PMEMOBJ_MIN_POOL, 0600);
	struct tier_proot *r;
	uint64_t cap = 1000;

	assert_non_null(pop);
	r = pmemobj_direct(pmemobj_root(pop, TIER_PROOT_V1_SIZE));
	assert_non_null(r);
	TX_BEGIN(pop) {
		struct tier_pentry *e;

		pmemobj_tx_add_range_direct(r, TIER_PROOT_V1_SIZE);
		r->entries = pmemobj_tx_zalloc(cap * sizeof(*e), 2);
		e = pmemobj_direct(r->entries);
		e->path = pmemobj_tx_strdup("usr/lib/libold.so", 3);
		memset(e->layer, 'a', TIER_ID_LEN);
		e->heat = 3;
		e->used = 1;
		r->capacity = cap;
		r->cold_starts = 3;
		r->version = 1;
		r->magic = TIER_INDEX_MAGIC;
	} TX_ONABORT {
		fail_msg("cannot build the pool: %s", pmemobj_errormsg());
	} TX_END
	pmemobj_close(pop);
}

static void version1_pool_upgraded(void **state)
{
	struct tdirs *t = *state;
	struct tier_ctx *ctx;
	struct tier_status st;
	char path[PATH_MAX];
	PMEMobjpool *pop;
	struct tier_proot *r;

	snprintf(path, sizeof(path), "%s/%s", t->nvm, TIER_INDEX_FILE);
	make_v1_pool(path);
	ctx = open_range(t, false);
	tier_status(ctx, &st);
	assert_int_equal(st.indexed_files, 1);
	assert_int_equal(st.cold_starts, 4);	/* this open is a new start */
	tier_close(ctx);
	pop = pmemobj_open(path, TIER_INDEX_LAYOUT);
	assert_non_null(pop);
	assert_true(pmemobj_root_size(pop) >= sizeof(struct tier_proot));
	r = pmemobj_direct(pmemobj_root(pop, sizeof(*r)));
	assert_int_equal(r->version, TIER_INDEX_VERSION);
	assert_true(OID_IS_NULL(r->ranges));
	pmemobj_close(pop);
	/* and it works as a version 2 pool from now on */
	ctx = open_range(t, false);
	tier_status(ctx, &st);
	assert_int_equal(st.indexed_files, 1);
	tier_close(ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bitmap_folds_to_runs),
		cmocka_unit_test(extents_union_and_cover),
		cmocka_unit_test(config_threshold_and_unit),
		cmocka_unit_test_setup_teardown(threshold_and_shared_trace, tdirs_setup, tdirs_teardown),
		cmocka_unit_test_setup_teardown(ranges_merge_across_starts, tdirs_setup, tdirs_teardown),
		cmocka_unit_test_setup_teardown(promotion_copies_exactly_the_extents, tdirs_setup, tdirs_teardown),
		cmocka_unit_test_setup_teardown(slack_widens_the_copy, tdirs_setup, tdirs_teardown),
		cmocka_unit_test_setup_teardown(new_ranges_extend_the_copy, tdirs_setup, tdirs_teardown),
		cmocka_unit_test_setup_teardown(stale_source_dropped, tdirs_setup, tdirs_teardown),
		cmocka_unit_test_setup_teardown(kill9_during_range_copy, tdirs_setup, tdirs_teardown),
		cmocka_unit_test_setup_teardown(version1_pool_upgraded, tdirs_setup, tdirs_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
