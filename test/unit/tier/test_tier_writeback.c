/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of write-back on real temp dirs: HDD copies, released blocks,
 * accounting, descriptors and opens in flight, promotion back from the HDD
 * copy, per-file write-back, crash leftovers, the config key. */
#include <pthread.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "test_tier_common.h"

struct wb_fixture {
	struct tdirs t;
	char layer[300];	/* an NVM-home layer */
	struct tier_ctx *ctx;
	int l;
};

static int setup(void **state)
{
	struct wb_fixture *f = calloc(1, sizeof(*f));
	struct tier_config c;
	char err[512];

	tdirs_make(&f->t);
	snprintf(f->layer, sizeof(f->layer), "%s/layers", f->t.nvm);
	mkdir(f->layer, 0755);
	mkdir(strcat(strcpy(err, f->layer), "/d"), 0755);
	twrite(f->layer, "hot", 20000, 1);
	twrite(f->layer, "cold", 70000, 2);
	twrite(f->layer, "d/cold2", 9000, 3);
	c = tconf(&f->t, true);
	if (tier_open(&c, &f->ctx, err, sizeof(err)))
		fail_msg("tier_open: %s", err);
	tier_config_free(&c);
	f->l = tier_layer_add(f->ctx, f->layer);
	assert_true(f->l >= 0);
	assert_int_equal(tier_layer_home(f->ctx, f->l), TIER_HOME_NVM);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct wb_fixture *f = *state;

	tier_close(f->ctx);
	tdirs_remove(&f->t);
	free(f);
	return 0;
}

static void path_of(struct wb_fixture *f, const char *rel, char *out)
{
	snprintf(out, PATH_MAX, "%s/%s", f->layer, rel);
}

static int where(struct wb_fixture *f, const char *rel, char *copy)
{
	char p[PATH_MAX];
	struct stat st;

	path_of(f, rel, p);
	assert_int_equal(lstat(p, &st), 0);
	return tier_lookup_data(f->ctx, f->l, rel, &st, copy, PATH_MAX);
}

static long blocks(struct wb_fixture *f, const char *rel)
{
	char p[PATH_MAX];
	struct stat st;

	path_of(f, rel, p);
	assert_int_equal(stat(p, &st), 0);
	return (long)st.st_blocks;
}

/* @path holds the pattern twrite() made with @len and @seed. */
static void assert_pattern(const char *path, size_t len, unsigned seed)
{
	size_t n;
	char *got = tread(path, &n);

	assert_non_null(got);
	assert_int_equal(n, len);
	for (size_t i = 0; i < len; i++)
		if (got[i] != (char)('a' + (i * 7 + seed) % 26))
			fail_msg("%s: byte %zu differs", path, i);
	free(got);
}

/* A traced start that needed "hot" only. */
static void trace_hot(struct wb_fixture *f)
{
	tier_trace_open(f->ctx, f->l, "hot", 20000);
	tier_trace_stop(f->ctx);
	tier_trace_flush(f->ctx);
}

static void cold_files_move_and_release(void **state)
{
	struct wb_fixture *f = *state;
	struct tier_wb_result r;
	struct tier_wb_status ws;
	struct tier_status before, after;
	char copy[PATH_MAX];

	trace_hot(f);
	tier_status(f->ctx, &before);
	assert_int_equal(tier_writeback_run(f->ctx, true, &r), 0);
	assert_int_equal(r.files, 2);
	assert_int_equal(r.bytes, 70000 + 9000);
	assert_int_equal(r.released, 2);
	assert_int_equal(r.busy, 0);
	/* the hot file stays, the cold ones read from HDD, sizes kept */
	assert_int_equal(where(f, "hot", copy), TIER_DATA_LAYER);
	assert_true(blocks(f, "hot") > 0);
	assert_int_equal(where(f, "cold", copy), TIER_DATA_HDD_COPY);
	assert_non_null(strstr(copy, f->t.hdd));
	assert_pattern(copy, 70000, 2);
	assert_int_equal(where(f, "d/cold2", copy), TIER_DATA_HDD_COPY);
	assert_pattern(copy, 9000, 3);
	assert_int_equal(blocks(f, "cold"), 0);
	assert_int_equal(blocks(f, "d/cold2"), 0);
	/* accounting by allocated blocks */
	tier_status(f->ctx, &after);
	assert_int_equal(before.nvm_used - after.nvm_used, r.released_bytes);
	assert_true(r.released_bytes >= 70000 + 9000);
	tier_writeback_status(f->ctx, &ws);
	assert_int_equal(ws.files, 2);
	assert_int_equal(ws.bytes, 79000);
	/* a second pass has nothing left to do */
	assert_int_equal(tier_writeback_run(f->ctx, true, &r), 0);
	assert_int_equal(r.files + r.released + r.busy, 0);
}

static void held_descriptor_keeps_bytes(void **state)
{
	struct wb_fixture *f = *state;
	struct tier_wb_result r;
	char p[PATH_MAX], buf[100];
	int fd;

	trace_hot(f);
	path_of(f, "cold", p);
	fd = open(p, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(tier_writeback_run(f->ctx, true, &r), 0);
	assert_int_equal(r.files, 2);
	assert_int_equal(r.busy, 1);
	assert_true(blocks(f, "cold") > 0);
	/* the old descriptor still reads the original bytes */
	assert_int_equal(pread(fd, buf, sizeof(buf), 60000), (ssize_t)sizeof(buf));
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], (char)('a' + ((60000 + i) * 7 + 2) % 26));
	close(fd);
	assert_int_equal(tier_writeback_run(f->ctx, true, &r), 0);
	assert_int_equal(r.files, 0);
	assert_int_equal(r.released, 1);
	assert_int_equal(blocks(f, "cold"), 0);
}

struct bg_run {
	struct tier_ctx *ctx;
	struct tier_wb_result r;
	int rc;
	_Atomic int done;
};

static void *bg_writeback(void *arg)
{
	struct bg_run *b = arg;

	b->rc = tier_writeback_run(b->ctx, true, &b->r);
	atomic_store(&b->done, 1);
	return NULL;
}

/* An open that looked the file up before the commit: the release waits
 * for it, then sees its descriptor and leaves the file alone. */
static void open_in_flight_blocks_release(void **state)
{
	struct wb_fixture *f = *state;
	struct bg_run b = { .ctx = f->ctx };
	char p[PATH_MAX], copy[PATH_MAX];
	unsigned ticket;
	pthread_t th;
	int fd;

	trace_hot(f);
	ticket = tier_open_begin(f->ctx);
	assert_int_equal(where(f, "cold", copy), TIER_DATA_LAYER);
	assert_int_equal(pthread_create(&th, NULL, bg_writeback, &b), 0);
	usleep(300 * 1000);
	assert_int_equal(atomic_load(&b.done), 0);
	path_of(f, "cold", p);
	fd = open(p, O_RDONLY);
	assert_true(fd >= 0);
	tier_open_end(f->ctx, ticket);
	pthread_join(th, NULL);
	assert_int_equal(b.rc, 0);
	assert_int_equal(b.r.busy, 1);
	assert_true(blocks(f, "cold") > 0);
	/* not released, so whole: read from the layer, not its HDD copy */
	assert_int_equal(where(f, "cold", copy), TIER_DATA_LAYER);
	close(fd);
}

/* Needed again: promoted from the HDD copy (the layer file is a hole),
 * served from NVM; evicted: back to the HDD copy, never to the hole. */
static void needed_again_promoted_from_hdd(void **state)
{
	struct wb_fixture *f = *state;
	char copy[PATH_MAX];

	trace_hot(f);
	assert_int_equal(tier_writeback_cold(f->ctx, true), 2);
	assert_int_equal(tier_trace_start(f->ctx), 0);
	tier_trace_open(f->ctx, f->l, "cold", 70000);
	tier_trace_stop(f->ctx);
	tier_trace_flush(f->ctx);
	assert_true(tier_promote_hot(f->ctx) >= 1);
	assert_int_equal(tier_wait_idle(f->ctx, 10000), 0);
	assert_int_equal(where(f, "cold", copy), TIER_DATA_NVM_COPY);
	assert_non_null(strstr(copy, "/objects/"));
	assert_pattern(copy, 70000, 2);
	assert_int_equal(tier_evict_file(f->ctx, f->l, "cold"), 0);
	assert_int_equal(where(f, "cold", copy), TIER_DATA_HDD_COPY);
	assert_pattern(copy, 70000, 2);
}

static void one_file_by_hand(void **state)
{
	struct wb_fixture *f = *state;
	struct tier_wb_result r;
	char copy[PATH_MAX];

	trace_hot(f);
	/* hot or not, by hand it goes */
	assert_int_equal(tier_writeback_file(f->ctx, f->l, "hot", true, &r), 0);
	assert_int_equal(r.files, 1);
	assert_int_equal(blocks(f, "hot"), 0);
	assert_int_equal(where(f, "hot", copy), TIER_DATA_HDD_COPY);
	assert_pattern(copy, 20000, 1);
	assert_int_equal(tier_writeback_file(f->ctx, f->l, "hot", true, &r), -EALREADY);
	assert_int_equal(tier_writeback_file(f->ctx, f->l, "d", true, &r), -EINVAL);
	assert_int_equal(tier_writeback_file(f->ctx, f->l, "nope", true, &r), -ENOENT);
	assert_int_equal(where(f, "cold", copy), TIER_DATA_LAYER);
}

static struct timespec mtime_of(struct wb_fixture *f, const char *rel)
{
	char p[PATH_MAX];
	struct stat st;

	path_of(f, rel, p);
	assert_int_equal(stat(p, &st), 0);
	return st.st_mtim;
}

/* A store an earlier version left with punched layer files: at the next
 * open the layer is made whole from the HDD copies (bytes, blocks and the
 * recorded mtime), the copies are forgotten, a crash's temp is cleaned. */
static void punched_layer_made_whole(void **state)
{
	struct wb_fixture *f = *state;
	struct tier_config c = tconf(&f->t, false);
	char err[512], tmp[PATH_MAX], copy[PATH_MAX], p[PATH_MAX];
	struct timespec before = mtime_of(f, "cold"), after;
	struct tier_wb_status ws;

	trace_hot(f);
	assert_int_equal(tier_writeback_cold(f->ctx, true), 2);
	assert_int_equal(blocks(f, "cold"), 0);
	tier_close(f->ctx);
	assert_int_equal(tier_open(&c, &f->ctx, err, sizeof(err)), 0);
	tier_config_free(&c);
	f->l = tier_layer_add(f->ctx, f->layer);
	path_of(f, "cold", p);
	assert_pattern(p, 70000, 2);
	path_of(f, "d/cold2", p);
	assert_pattern(p, 9000, 3);
	assert_true(blocks(f, "cold") > 0);
	after = mtime_of(f, "cold");
	assert_int_equal(after.tv_sec, before.tv_sec);
	assert_int_equal(after.tv_nsec, before.tv_nsec);
	assert_int_equal(where(f, "cold", copy), TIER_DATA_LAYER);
	assert_int_equal(where(f, "d/cold2", copy), TIER_DATA_LAYER);
	assert_int_equal(where(f, "hot", copy), TIER_DATA_LAYER);
	tier_writeback_status(f->ctx, &ws);
	assert_int_equal(ws.files, 0);
	snprintf(copy, sizeof(copy), "%s/writeback/%s/cold", f->t.hdd, tier_layer_id(f->ctx, f->l));
	assert_int_equal(access(copy, F_OK), -1);
	/* a crash's leftover next to where the copies were */
	snprintf(tmp, sizeof(tmp), "%s/writeback/%s/d/.nlwb-tmp-abc123", f->t.hdd,
		 tier_layer_id(f->ctx, f->l));
	twrite(f->t.root, "x", 10, 0);
	assert_int_equal(rename(strcat(strcpy(err, f->t.root), "/x"), tmp), 0);
	assert_int_equal(tier_writeback_clean(f->ctx), 1);
	assert_int_equal(access(tmp, F_OK), -1);
}

static void abort_stops_passes(void **state)
{
	struct wb_fixture *f = *state;
	struct tier_wb_result r;

	tier_writeback_abort(f->ctx);
	assert_int_equal(tier_writeback_run(f->ctx, true, &r), -ECANCELED);
	assert_int_equal(blocks(f, "cold") > 0, 1);
}

static void config_key(void **state)
{
	struct tier_config c;
	char err[256] = "";

	(void)state;
	tier_config_defaults(&c);
	assert_true(c.writeback);
	assert_int_equal(tier_config_set(&c, "writeback", "off", err, sizeof(err)), 0);
	assert_false(c.writeback);
	assert_int_equal(tier_config_set(&c, "writeback", "maybe", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "writeback: bad value 'maybe'"));
	tier_config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(cold_files_move_and_release, setup, teardown),
		cmocka_unit_test_setup_teardown(held_descriptor_keeps_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(open_in_flight_blocks_release, setup, teardown),
		cmocka_unit_test_setup_teardown(needed_again_promoted_from_hdd, setup, teardown),
		cmocka_unit_test_setup_teardown(one_file_by_hand, setup, teardown),
		cmocka_unit_test_setup_teardown(punched_layer_made_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(abort_stops_passes, setup, teardown),
		cmocka_unit_test(config_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
