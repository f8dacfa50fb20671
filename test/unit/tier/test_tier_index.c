/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of the hot-file index pool: create, reopen, refusal of broken
 * and newer pools, crash leftovers, and the trace folded into it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <dirent.h>
#include <pthread.h>
#include <cmocka.h>
#include "test_tier_common.h"
#include "tier/tier_private.h"
#include "tier/tier_index.h"

static struct tier_ctx *open_ok(struct tdirs *t, bool promote)
{
	struct tier_config c = tconf(t, promote);

	return topen(&c);
}

static int open_err(struct tdirs *t, char *err, size_t n)
{
	struct tier_config c = tconf(t, false);
	struct tier_ctx *ctx = NULL;
	int rc = tier_open(&c, &ctx, err, n);

	tier_config_free(&c);
	assert_null(ctx);
	return rc;
}

static void create_and_reopen(void **state)
{
	struct tdirs *t = *state;
	struct tier_ctx *ctx = open_ok(t, false);
	struct tier_status st;
	char out[PATH_MAX];
	int l;

	l = tier_layer_add(ctx, t->l1);
	assert_int_equal(l, 0);
	tier_trace_open(ctx, l, "bin/sh", 10);
	tier_trace_open(ctx, l, "etc/passwd", 20);
	assert_int_equal(tier_trace_flush(ctx), 2);
	tier_status(ctx, &st);
	assert_int_equal(st.indexed_files, 2);
	assert_int_equal(st.cold_starts, 1);
	assert_false(st.index_full);
	tier_close(ctx);

	ctx = open_ok(t, false);
	l = tier_layer_add(ctx, t->l1);
	tier_status(ctx, &st);
	assert_int_equal(st.indexed_files, 2);
	assert_int_equal(st.cold_starts, 2);
	/* traced, not promoted: read from the layer */
	struct stat s = { .st_size = 10 };
	assert_int_equal(tier_lookup_data(ctx, l, "bin/sh", &s, out, sizeof(out)), TIER_DATA_LAYER);
	tier_close(ctx);
}

static void corrupt_pool_refused(void **state)
{
	struct tdirs *t = *state;
	struct tier_ctx *ctx = open_ok(t, false);
	char path[PATH_MAX], err[512], junk[4096];
	struct stat before, after;
	int fd;

	tier_close(ctx);
	snprintf(path, sizeof(path), "%s/%s", t->nvm, TIER_INDEX_FILE);
	stat(path, &before);
	memset(junk, 0x5a, sizeof(junk));
	fd = open(path, O_WRONLY);
	assert_int_equal(pwrite(fd, junk, sizeof(junk), 0), (ssize_t)sizeof(junk));
	close(fd);
	assert_true(open_err(t, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "refusing"));
	/* never reinitialised: the broken bytes are still there */
	stat(path, &after);
	assert_int_equal(before.st_size, after.st_size);
	fd = open(path, O_RDONLY);
	assert_int_equal(pread(fd, junk, 16, 0), 16);
	close(fd);
	assert_int_equal((unsigned char)junk[0], 0x5a);
}

/* Pseudo-random bytes (a fixed seed: the same damage every run) over
 * [off, off + len) of @path. */
static void scribble(const char *path, off_t off, size_t len)
{
	char *buf = malloc(len);
	int fd = open(path, O_WRONLY);

	srand(7);
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)rand();
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, buf, len, off), (ssize_t)len);
	close(fd);
	free(buf);
}

enum damage { EMPTY, SHORT, CUT_END, HEAP_NOISE, LANE_NOISE, ALL_NOISE, N_DAMAGE };

static void damage_pool(const char *path, enum damage d)
{
	switch (d) {
	case EMPTY: assert_int_equal(truncate(path, 0), 0); break;
	case SHORT: assert_int_equal(truncate(path, 1 << 20), 0); break;
	case CUT_END: assert_int_equal(truncate(path, (8 << 20) - 4096), 0); break;
	case HEAP_NOISE: scribble(path, 1 << 20, 64 << 10); break;
	case LANE_NOISE: scribble(path, 8192, 64 << 10); break;
	case ALL_NOISE: scribble(path, 0, 8 << 20); break;
	default: break;
	}
}

/* An index cut short (a pool whose creation was cut off) or overwritten
 * is refused with a message naming it and saying what to do, and left as
 * it is; libpmemobj never gets to crash the daemon on it. */
static void damaged_pools_refused(void **state)
{
	struct tdirs *t = *state;
	char path[PATH_MAX], err[1024];
	struct stat before, after;

	snprintf(path, sizeof(path), "%s/%s", t->nvm, TIER_INDEX_FILE);
	for (int d = 0; d < N_DAMAGE; d++) {
		struct tier_ctx *ctx = open_ok(t, false);

		tier_trace_open(ctx, tier_layer_add(ctx, t->l1), "bin/sh", 10);
		tier_close(ctx);
		damage_pool(path, (enum damage)d);
		stat(path, &before);
		*err = 0;
		assert_true(open_err(t, err, sizeof(err)) < 0);
		print_message("damage %d: %s\n", d, err);
		assert_non_null(strstr(err, path));
		assert_non_null(strstr(err, "move it"));
		stat(path, &after);
		assert_int_equal(before.st_size, after.st_size);
		assert_int_equal(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
		unlink(path);
	}
}

static void newer_layout_refused(void **state)
{
	struct tdirs *t = *state;
	struct tier_ctx *ctx = open_ok(t, false);
	char path[PATH_MAX], err[512];
	PMEMobjpool *pop;
	struct tier_proot *r;

	tier_close(ctx);
	snprintf(path, sizeof(path), "%s/%s", t->nvm, TIER_INDEX_FILE);
	pop = pmemobj_open(path, TIER_INDEX_LAYOUT);
	assert_non_null(pop);
	r = pmemobj_direct(pmemobj_root(pop, sizeof(*r)));
	r->version = TIER_INDEX_VERSION + 1;
	pmemobj_persist(pop, &r->version, sizeof(r->version));
	pmemobj_close(pop);
	assert_int_equal(open_err(t, err, sizeof(err)), -EPROTONOSUPPORT);
	assert_non_null(strstr(err, "newer"));
}

static void foreign_pool_refused(void **state)
{
	struct tdirs *t = *state;
	char path[PATH_MAX], err[512];
	PMEMobjpool *pop;

	snprintf(path, sizeof(path), "%s/%s", t->nvm, TIER_INDEX_FILE);
	pop = pmemobj_create(path, "some-other-layout", PMEMOBJ_MIN_POOL, 0600);
	assert_non_null(pop);
	pmemobj_close(pop);
	assert_true(open_err(t, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "refusing"));
}

static void pool_in_use_refused(void **state)
{
	struct tdirs *t = *state;
	struct tier_ctx *ctx = open_ok(t, false);
	char err[512];

	/* a second mount on the same NVM dir must not share the pool */
	assert_int_equal(open_err(t, err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "tier.index"));
	assert_non_null(strstr(err, "in use"));
	tier_close(ctx);
}

static void crash_leftovers_cleaned(void **state)
{
	struct tdirs *t = *state;
	struct tier_ctx *ctx = open_ok(t, false);
	char objdir[512], fake[PATH_MAX], out[PATH_MAX];
	struct stat st;
	int l;

	tier_close(ctx);
	/* as if a worker died after the rename and before the commit, and
	 * another in the middle of a copy */
	twrite(t->l1, "app", 100, 1);
	snprintf(objdir, sizeof(objdir), "%s/objects", t->nvm);
	twrite(objdir, "tmp.abc123", 50, 1);
	twrite(objdir, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", 100, 1);
	ctx = open_ok(t, false);
	assert_int_equal(count_dir(objdir), 0);
	l = tier_layer_add(ctx, t->l1);
	snprintf(fake, sizeof(fake), "%s/app", t->l1);
	stat(fake, &st);
	assert_int_equal(tier_lookup_data(ctx, l, "app", &st, out, sizeof(out)), TIER_DATA_LAYER);
	tier_close(ctx);
}

static void trace_order_once(void **state)
{
	struct tdirs *t = *state;
	struct tier_ctx *ctx = open_ok(t, false);
	int l1 = tier_layer_add(ctx, t->l1), l2 = tier_layer_add(ctx, t->l2);
	char *text = NULL, line[600];
	size_t len = 0;
	FILE *f;

	tier_trace_open(ctx, l1, "usr/bin/python3", 1);
	tier_trace_open(ctx, l2, "app/main.py", 2);
	tier_trace_open(ctx, l1, "usr/bin/python3", 1);	/* second open: not recorded */
	tier_trace_open(ctx, l1, "usr/lib/libc.so", 3);
	tier_trace_open(ctx, l2, "usr/bin/python3", 4);	/* same path, other layer */
	tier_trace_open(ctx, l2, "app/main.py", 2);
	tier_trace_stop(ctx);
	tier_trace_open(ctx, l1, "late/file", 5);		/* window closed */
	f = open_memstream(&text, &len);
	assert_int_equal(tier_hotlist_export(ctx, f), 4);
	fclose(f);
	snprintf(line, sizeof(line), "# nlayerfs hot list 1\n%s usr/bin/python3\n%s app/main.py\n"
		 "%s usr/lib/libc.so\n%s usr/bin/python3\n", tier_layer_id(ctx, l1),
		 tier_layer_id(ctx, l2), tier_layer_id(ctx, l1), tier_layer_id(ctx, l2));
	assert_string_equal(text, line);
	free(text);
	tier_close(ctx);
}

struct tracer {
	struct tier_ctx *ctx;
	int layer;
};

#define NFILES 2000

static void *trace_many(void *arg)
{
	struct tracer *tr = arg;
	char p[32];

	for (int i = 0; i < NFILES; i++) {
		snprintf(p, sizeof(p), "f/%d", i);
		tier_trace_open(tr->ctx, tr->layer, p, (uint64_t)i);
	}
	return NULL;
}

static void trace_concurrent(void **state)
{
	struct tdirs *t = *state;
	struct tier_ctx *ctx = open_ok(t, false);
	struct tracer tr = { ctx, tier_layer_add(ctx, t->l1) };
	pthread_t th[4];
	struct tier_status st;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, trace_many, &tr);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	tier_trace_flush(ctx);
	tier_status(ctx, &st);
	/* each file once, none lost (the ring may drop only when full) */
	assert_int_equal(st.trace_records + st.trace_dropped, NFILES);
	assert_int_equal(st.indexed_files, st.trace_records);
	f = open_memstream(&text, &len);
	assert_int_equal(tier_hotlist_export(ctx, f), (int)st.trace_records);
	fclose(f);
	free(text);
	tier_close(ctx);
}

static void heat_accumulates(void **state)
{
	struct tdirs *t = *state;
	struct tier_ctx *ctx = open_ok(t, false);
	int l = tier_layer_add(ctx, t->l1);
	struct tier_pentry *e;

	tier_trace_open(ctx, l, "hot", 1);
	tier_trace_open(ctx, l, "once", 1);
	tier_trace_flush(ctx);
	tier_trace_start(ctx);	/* the next cold start */
	tier_trace_open(ctx, l, "hot", 1);
	tier_trace_open(ctx, l, "hot", 1);
	tier_trace_flush(ctx);
	e = tier_index_find(ctx, tier_layer_id(ctx, l), "hot");
	assert_non_null(e);
	assert_int_equal(e->heat, 2);
	e = tier_index_find(ctx, tier_layer_id(ctx, l), "once");
	assert_int_equal(e->heat, 1);
	tier_close(ctx);
}

/* Trace @n files named by @i with 120-character paths; returns the flush's count. */
static int trace_batch(struct tier_ctx *ctx, int l, int from, int n)
{
	char p[160];

	for (int i = from; i < from + n; i++) {
		snprintf(p, sizeof(p), "usr/lib/%0112d", i);
		tier_trace_open(ctx, l, p, 1);
	}
	return tier_trace_flush(ctx);
}

/* The smallest pool fills up: tracing stops with a message, the pool is
 * intact, what it holds still serves, and the documented count fits. */
static void index_full_stops_tracing(void **state)
{
	struct tdirs *t = *state;
	struct tier_config c = tconf(t, false);
	struct tier_ctx *ctx;
	int l, i = 0;
	struct tier_status st;
	struct tier_pentry *e;
	char p[160];
	uint64_t held;
	int k, r = 0;

	/* only the full index may end this window: on a loaded machine the
	 * batches may take longer than the default window, or pause longer
	 * than its quiet time */
	c.trace_window = 86400;
	c.trace_quiet = 0;
	ctx = topen(&c);
	l = tier_layer_add(ctx, t->l1);
	assert_true(tier_trace_active(ctx));
	while (tier_trace_active(ctx) && i < 100000) {
		trace_batch(ctx, l, i, 1000);
		i += 1000;
	}
	assert_false(tier_trace_active(ctx));
	tier_status(ctx, &st);
	assert_true(st.index_full);
	held = st.indexed_files;
	/* man/nlayerfs.conf.5: 8M holds about 6000 files of 120-character
	 * paths; how many exactly varies with the allocator's layout from
	 * run to run (5700 to 6800 seen) */
	assert_true(held >= 5000 && held < (uint64_t)i);
	/* a new window records nothing more, and nothing breaks */
	tier_trace_start(ctx);
	assert_int_equal(trace_batch(ctx, l, i, 10), 0);
	/* the pool itself: single inserts may still fit in what the
	 * allocator has left (a folded batch needed more), then one fails
	 * cleanly with ENOSPC */
	pthread_rwlock_wrlock(&ctx->lock);
	for (k = 0; k < 100000; k++) {
		snprintf(p, sizeof(p), "usr/bin/%0112d", k);
		r = tier_index_ensure(ctx, tier_layer_id(ctx, l), p, &e);
		if (r)
			break;
	}
	pthread_rwlock_unlock(&ctx->lock);
	assert_int_equal(r, -ENOSPC);
	held += (uint64_t)k;
	tier_status(ctx, &st);
	assert_int_equal(st.indexed_files, held);
	tier_close(ctx);

	ctx = open_ok(t, false);
	l = tier_layer_add(ctx, t->l1);
	tier_status(ctx, &st);
	assert_int_equal(st.indexed_files, held);
	pthread_rwlock_rdlock(&ctx->lock);
	e = tier_index_find(ctx, tier_layer_id(ctx, l), "usr/lib/"
			    "0000000000000000000000000000000000000000000000000000000000000000"
			    "000000000000000000000000000000000000000000000001");
	pthread_rwlock_unlock(&ctx->lock);
	assert_non_null(e);
	assert_int_equal(e->heat, 1);
	tier_close(ctx);
}

/* A pool made with a bigger index_size (the old 32M default) is opened as
 * it is by a mount with the smaller default: same size, same entries. */
static void bigger_pool_kept(void **state)
{
	struct tdirs *t = *state;
	struct tier_config c = tconf(t, false);
	char err[512], path[PATH_MAX];
	struct tier_status st;
	struct tier_ctx *ctx;
	struct stat s;
	int l;

	c.index_size = 32ULL << 20;
	assert_int_equal(tier_open(&c, &ctx, err, sizeof(err)), 0);
	tier_config_free(&c);
	l = tier_layer_add(ctx, t->l1);
	tier_trace_open(ctx, l, "bin/sh", 10);
	tier_trace_flush(ctx);
	tier_close(ctx);

	tier_config_defaults(&c);
	c.nvm_dir = strdup(t->nvm);
	c.promote = false;
	assert_int_equal(tier_open(&c, &ctx, err, sizeof(err)), 0);
	tier_config_free(&c);
	tier_layer_add(ctx, t->l1);
	tier_status(ctx, &st);
	assert_int_equal(st.indexed_files, 1);
	assert_int_equal(ctx->root->capacity, (32ULL << 20) / 2 / (sizeof(struct tier_pentry) + 96));
	tier_close(ctx);
	snprintf(path, sizeof(path), "%s/tier.index", t->nvm);
	assert_int_equal(stat(path, &s), 0);
	assert_int_equal(s.st_size, 32 << 20);
}

/* Twenty mounts of one image register its layers twenty times: one tier
 * layer each, the same number every time. */
static void layer_added_twice_shared(void **state)
{
	struct tdirs *t = *state;
	struct tier_ctx *ctx = open_ok(t, false);
	char via_dot[PATH_MAX];
	int a, b;

	a = tier_layer_add(ctx, t->l1);
	b = tier_layer_add(ctx, t->l2);
	assert_int_equal(a, 0);
	assert_int_equal(b, 1);
	snprintf(via_dot, sizeof(via_dot), "%s/./", t->l1);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(tier_layer_add(ctx, t->l1), a);
		assert_int_equal(tier_layer_add(ctx, via_dot), a);
		assert_int_equal(tier_layer_add(ctx, t->l2), b);
	}
	assert_int_equal(tier_layer_count(ctx), 2);
	tier_close(ctx);
}

/* Descriptors of this process open on @path (a real path). */
static int fds_on(const char *path)
{
	char link[300], target[PATH_MAX];
	struct dirent *de;
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d))) {
		ssize_t len;

		snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
		len = readlink(link, target, sizeof(target) - 1);
		if (len < 0)
			continue;
		target[len] = '\0';
		n += !strcmp(target, path);
	}
	closedir(d);
	return n;
}

/* The tier holds the root of each HDD layer it knows (once, however many
 * mounts add it), so that dropped caches do not cost the next mount disk
 * reads to find it; NVM layers are not held; closing lets them go. */
static void hdd_layer_roots_held(void **state)
{
	struct tdirs *t = *state;
	struct tier_ctx *ctx = open_ok(t, false);
	char l1[PATH_MAX], nvm_layer[PATH_MAX], nvm_real[PATH_MAX];

	assert_non_null(realpath(t->l1, l1));
	snprintf(nvm_layer, sizeof(nvm_layer), "%s/layer", t->nvm);
	assert_int_equal(mkdir(nvm_layer, 0755), 0);
	assert_non_null(realpath(nvm_layer, nvm_real));
	assert_int_equal(fds_on(l1), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(tier_layer_add(ctx, t->l1), 0);
	assert_int_equal(tier_layer_add(ctx, nvm_layer), 1);
	assert_int_equal(tier_layer_home(ctx, 1), TIER_HOME_NVM);
	assert_int_equal(fds_on(l1), 1);
	assert_int_equal(fds_on(nvm_real), 0);
	tier_close(ctx);
	assert_int_equal(fds_on(l1), 0);
}

static struct tier_ctx *open_per_start(struct tdirs *t, unsigned quiet)
{
	struct tier_config c = tconf(t, false);
	struct tier_ctx *ctx;
	char err[512];

	c.trace_at_open = false;
	c.trace_quiet = quiet;
	assert_int_equal(tier_open(&c, &ctx, err, sizeof(err)), 0);
	tier_config_free(&c);
	return ctx;
}

/* Two starts share a window; it ends with the last of them, not before. */
static void window_ends_with_last_start(void **state)
{
	struct tdirs *t = *state;
	struct tier_ctx *ctx = open_per_start(t, 0);
	uint64_t g1, g2;

	assert_false(tier_trace_active(ctx));
	g1 = tier_trace_begin(ctx);
	g2 = tier_trace_begin(ctx);
	assert_int_equal(g1, g2);
	assert_true(tier_trace_active(ctx));
	tier_trace_end(ctx, g1);
	assert_true(tier_trace_active(ctx));
	tier_trace_end(ctx, g2);
	assert_false(tier_trace_active(ctx));
	/* a later start opens a window of its own: one more cold start */
	g1 = tier_trace_begin(ctx);
	assert_int_not_equal(g1, g2);
	tier_trace_end(ctx, g1);
	struct tier_status st;
	tier_status(ctx, &st);
	assert_int_equal(st.cold_starts, 2);
	tier_close(ctx);
}

/* A start that opens nothing new for trace_quiet seconds is over, with
 * its mount still there: the tier's own thread closes the window. */
static void quiet_start_ends_window(void **state)
{
	struct tdirs *t = *state;
	struct tier_ctx *ctx = open_per_start(t, 1);
	int l = tier_layer_add(ctx, t->l1);
	int i = 0;

	tier_trace_begin(ctx);
	assert_true(tier_trace_open(ctx, l, "bin/sh", 10));
	assert_false(tier_trace_open(ctx, l, "bin/sh", 10));
	while (tier_trace_active(ctx) && i++ < 300)
		usleep(10 * 1000);
	assert_false(tier_trace_active(ctx));
	assert_true(i >= 50);	/* not before the quiet time */
	tier_close(ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(create_and_reopen, tdirs_setup, tdirs_teardown),
		cmocka_unit_test_setup_teardown(corrupt_pool_refused, tdirs_setup, tdirs_teardown),
		cmocka_unit_test_setup_teardown(damaged_pools_refused, tdirs_setup, tdirs_teardown),
		cmocka_unit_test_setup_teardown(newer_layout_refused, tdirs_setup, tdirs_teardown),
		cmocka_unit_test_setup_teardown(foreign_pool_refused, tdirs_setup, tdirs_teardown),
		cmocka_unit_test_setup_teardown(pool_in_use_refused, tdirs_setup, tdirs_teardown),
		cmocka_unit_test_setup_teardown(crash_leftovers_cleaned, tdirs_setup, tdirs_teardown),
		cmocka_unit_test_setup_teardown(trace_order_once, tdirs_setup, tdirs_teardown),
		cmocka_unit_test_setup_teardown(trace_concurrent, tdirs_setup, tdirs_teardown),
		cmocka_unit_test_setup_teardown(heat_accumulates, tdirs_setup, tdirs_teardown),
		cmocka_unit_test_setup_teardown(index_full_stops_tracing, tdirs_setup, tdirs_teardown),
		cmocka_unit_test_setup_teardown(bigger_pool_kept, tdirs_setup, tdirs_teardown),
		cmocka_unit_test_setup_teardown(layer_added_twice_shared, tdirs_setup, tdirs_teardown),
		cmocka_unit_test_setup_teardown(hdd_layer_roots_held, tdirs_setup, tdirs_teardown),
		cmocka_unit_test_setup_teardown(window_ends_with_last_start, tdirs_setup, tdirs_teardown),
		cmocka_unit_test_setup_teardown(quiet_start_ends_window, tdirs_setup, tdirs_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
