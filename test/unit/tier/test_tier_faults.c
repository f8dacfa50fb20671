/* SPDX-License-Identifier: GPL-2.0-or-later */
/* kill -9 at each point of a copy (NLAYERFS_FAULT), then a reopen: every
 * file reads its original bytes, no temp file or uncommitted object is
 * left or counted against the budget, and the copies are made again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <sys/wait.h>
#include <cmocka.h>
#include "test_tier_common.h"

#define N_SMALL 6
#define SMALL (256 << 10)
#define BIG (4 << 20)
#define BUDGET (64ULL << 20)

struct fx {
	struct tdirs t;
	char nvml[300];		/* an NVM-home layer */
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char n[16];

	tdirs_make(&f->t);
	for (int i = 0; i < N_SMALL; i++) {
		snprintf(n, sizeof(n), "s%d", i);
		twrite(f->t.l1, n, SMALL + (size_t)i, (unsigned)i);
	}
	twrite(f->t.l1, "big", BIG, 40);
	snprintf(f->nvml, sizeof(f->nvml), "%s/layers", f->t.nvm);
	mkdir(f->nvml, 0755);
	twrite(f->nvml, "cold1", 300000, 50);
	twrite(f->nvml, "cold2", 70000, 51);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	tdirs_remove(&f->t);
	free(f);
	return 0;
}

static struct tier_ctx *open_fx(struct fx *f, bool promote, int *hdd, int *nvm)
{
	struct tier_config c = tconf(&f->t, promote);
	struct tier_ctx *ctx;
	char err[512];

	c.nvm_size = BUDGET;
	c.range_threshold = 1 << 20;
	if (tier_open(&c, &ctx, err, sizeof(err)))
		fail_msg("tier_open: %s", err);
	tier_config_free(&c);
	*hdd = tier_layer_add(ctx, f->t.l1);
	*nvm = tier_layer_add(ctx, f->nvml);
	return ctx;
}

/* One start that needs the small files and a part of big. */
static void traced_start(struct tier_ctx *ctx, struct fx *f, int l)
{
	struct tier_range r;
	struct stat st;
	char p[PATH_MAX], n[16];

	for (int i = 0; i < N_SMALL; i++) {
		snprintf(n, sizeof(n), "s%d", i);
		tier_trace_open(ctx, l, n, SMALL + (uint64_t)i);
	}
	snprintf(p, sizeof(p), "%s/big", f->t.l1);
	assert_int_equal(lstat(p, &st), 0);
	tier_trace_open(ctx, l, "big", BIG);
	if (tier_range_open(ctx, l, "big", &st, &r) == 1) {
		tier_range_note_read(r.trace, 1 << 20, 512 << 10);
		tier_range_close(&r);
	}
	tier_trace_stop(ctx);
}

/* The child: promote and write back until the fault point kills it. */
static void child(struct fx *f, const char *point)
{
	struct tier_wb_result res;
	int hdd, nvm;
	struct tier_ctx *ctx;

	setenv("NLAYERFS_FAULT", point, 1);
	ctx = open_fx(f, true, &hdd, &nvm);
	traced_start(ctx, f, hdd);
	tier_wait_idle(ctx, 20000);
	tier_promote_hot(ctx);
	tier_wait_idle(ctx, 20000);
	tier_writeback_run(ctx, false, &res);
	_exit(7);	/* the point was never reached */
}

static void same_bytes(const char *copy, const char *src, uint64_t off, uint64_t len)
{
	size_t lc = 0, ls = 0;
	char *a = tread(copy, &lc), *b = tread(src, &ls);

	assert_non_null(a);
	assert_non_null(b);
	assert_true(off + len <= lc && off + len <= ls);
	assert_memory_equal(a + off, b + off, len);
	free(a);
	free(b);
}

/* What a reader gets for @rel of layer @l is its original bytes. */
static int check_file(struct tier_ctx *ctx, int l, const char *dir, const char *rel)
{
	char p[PATH_MAX], copy[PATH_MAX];
	struct tier_range r;
	struct stat st;
	int where;

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	assert_int_equal(lstat(p, &st), 0);
	where = tier_lookup_data(ctx, l, rel, &st, copy, sizeof(copy));
	if (where > TIER_DATA_LAYER) {
		same_bytes(copy, p, 0, (uint64_t)st.st_size);
		return 1;
	}
	if (tier_range_open(ctx, l, rel, &st, &r) != 1)
		return 0;
	for (size_t i = 0; r.copy && i < r.n_ext; i++)
		same_bytes(r.copy, p, r.ext[i].off, r.ext[i].len);
	where = r.copy != NULL;
	tier_range_close(&r);
	return where;
}

static int check_all(struct tier_ctx *ctx, struct fx *f, int hdd, int nvm)
{
	char n[16];
	int copies = 0;

	for (int i = 0; i < N_SMALL; i++) {
		snprintf(n, sizeof(n), "s%d", i);
		copies += check_file(ctx, hdd, f->t.l1, n);
	}
	copies += check_file(ctx, hdd, f->t.l1, "big");
	copies += check_file(ctx, nvm, f->nvml, "cold1");
	copies += check_file(ctx, nvm, f->nvml, "cold2");
	return copies;
}

static void after_crash(struct fx *f, const char *point)
{
	char objdir[512], hdd_dir[512];
	struct tier_status st;
	struct tier_ctx *ctx;
	int hdd, nvm, copies;

	ctx = open_fx(f, false, &hdd, &nvm);
	tier_writeback_clean(ctx);	/* as a daemon does at start */
	copies = check_all(ctx, f, hdd, nvm);
	tier_status(ctx, &st);
	snprintf(objdir, sizeof(objdir), "%s/objects", f->t.nvm);
	snprintf(hdd_dir, sizeof(hdd_dir), "%s", f->t.hdd);
	print_message("%s: %d copies served after the crash, %llu objects\n", point, copies,
		      (unsigned long long)st.objects);
	/* only committed objects: no temp, nothing unnamed in the budget */
	assert_int_equal(count_dir(objdir), (int)st.objects);
	assert_int_equal(count_cmd("find '%s' -name 'tmp.*' | wc -l", objdir), 0);
	assert_int_equal(count_cmd("find '%s' -name '.nlwb-tmp-*' | wc -l", hdd_dir), 0);
	assert_true(st.nvm_used <= BUDGET);
	tier_close(ctx);

	/* and the work is done again */
	ctx = open_fx(f, true, &hdd, &nvm);
	traced_start(ctx, f, hdd);
	assert_int_equal(tier_wait_idle(ctx, 20000), 0);
	tier_promote_hot(ctx);
	assert_int_equal(tier_wait_idle(ctx, 20000), 0);
	assert_int_equal(check_all(ctx, f, hdd, nvm), N_SMALL + 1);
	tier_close(ctx);
}

static void crash_at(void **state, const char *point)
{
	struct fx *f = *state;
	int status = 0;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		child(f, point);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		fail_msg("%s: the child was not killed there (status %#x)", point, status);
	after_crash(f, point);
}

static void at_promote_copying(void **s) { crash_at(s, "promote-copying"); }
static void at_promote_written(void **s) { crash_at(s, "promote-written"); }
static void at_promote_renamed(void **s) { crash_at(s, "promote-renamed"); }
static void at_promote_committed(void **s) { crash_at(s, "promote-committed"); }
static void at_range_copying(void **s) { crash_at(s, "range-copying"); }
static void at_range_renamed(void **s) { crash_at(s, "range-renamed"); }
static void at_writeback_copying(void **s) { crash_at(s, "writeback-copying"); }
static void at_writeback_renamed(void **s) { crash_at(s, "writeback-renamed"); }

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(at_promote_copying, setup, teardown),
		cmocka_unit_test_setup_teardown(at_promote_written, setup, teardown),
		cmocka_unit_test_setup_teardown(at_promote_renamed, setup, teardown),
		cmocka_unit_test_setup_teardown(at_promote_committed, setup, teardown),
		cmocka_unit_test_setup_teardown(at_range_copying, setup, teardown),
		cmocka_unit_test_setup_teardown(at_range_renamed, setup, teardown),
		cmocka_unit_test_setup_teardown(at_writeback_copying, setup, teardown),
		cmocka_unit_test_setup_teardown(at_writeback_renamed, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
