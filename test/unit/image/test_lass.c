/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests of the LASS placement model and the history rules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "tier/image/image.h"

#define MB (1024.0 * 1024.0)
#define N 5

/* Sizes of a typical image: big base, a mid layer, small app layers. Layer 1
 * is the largest after the base, so with 3 parallel downloads it finishes
 * last (it shares bandwidth longest). */
static const uint64_t sizes[N] = { 30 << 20, 120 << 20, 10 << 20, 5 << 20, 2 << 20 };

static double absd(double x)
{
	return x < 0 ? -x : x;
}

static struct nl_lass_input input(double *done, double hdd, double nvm)
{
	struct nl_lass_input in = {
		.n = N, .size = sizes, .done = done, .hdd_bps = hdd, .nvm_bps = nvm,
		.nvm_budget = UINT64_MAX,
	};

	assert_int_equal(nl_lass_model_downloads(sizes, N, 50 * MB, 3, done), 0);
	return in;
}

static void test_download_model(void **state)
{
	double done[N];

	(void)state;
	input(done, 1, 1);
	/* the first three share 50 MB/s: layer 2 (10 MB) ends at 0.6 s, then
	 * layer 3 (5 MB) takes its slot and ends 0.3 s later */
	assert_true(absd(done[2] - 0.6) < 1e-6);
	assert_true(absd(done[3] - 0.9) < 1e-6);
	for (size_t i = 0; i < N; i++)
		assert_true(done[i] > 0);
	assert_int_equal(nl_lass_find_ldl(done, N), 1);
	/* the total is bandwidth-bound: everything in sum/bandwidth */
	assert_true(absd(done[1] - 167 * MB / (50 * MB)) < 1e-6);
}

static void test_equations_match_replay(void **state)
{
	double done[N];
	struct nl_lass_input in = input(done, 20 * MB, 1000 * MB);
	enum nl_lass_tier tier[N];

	(void)state;
	for (size_t b = 0; b <= N; b++) {
		for (size_t i = 0; i < N; i++)
			tier[i] = i >= b ? NL_LASS_NVM : NL_LASS_HDD;
		assert_true(absd(nl_lass_t_total(&in, b) - nl_lass_simulate(&in, tier)) < 1e-9);
	}
	assert_int_equal(nl_lass_u_total(&in, 0), 167 << 20);
	assert_int_equal(nl_lass_u_total(&in, N), 0);
}

static void plan(const struct nl_lass_input *in, struct nl_lass_plan *p,
		 enum nl_lass_tier *tier, enum nl_lass_reason *reason)
{
	p->tier = tier;
	p->reason = reason;
	assert_int_equal(nl_lass_plan(in, p), 0);
}

/* alpha >> beta: the LDL and the layers above on NVM, the base on HDD. */
static void test_strategy3_wins_when_nvm_much_faster(void **state)
{
	double done[N];
	struct nl_lass_input in = input(done, 100 * MB, 2000 * MB);
	struct nl_lass_plan p;
	enum nl_lass_tier tier[N];
	enum nl_lass_reason reason[N];

	(void)state;
	plan(&in, &p, tier, reason);
	assert_int_equal(p.ldl, 1);
	assert_int_equal(p.boundary, p.ldl);
	assert_int_equal(tier[0], NL_LASS_HDD);
	for (size_t i = 1; i < N; i++)
		assert_int_equal(tier[i], NL_LASS_NVM);
	assert_int_equal(p.u_total, (uint64_t)(137 << 20));
	/* as fast as all-NVM, faster than all-HDD */
	assert_true(absd(p.t_total - nl_lass_t_total(&in, 0)) < 1e-3);
	assert_true(p.t_total < nl_lass_t_total(&in, N) - 0.5);
	/* the strategy above the LDL is slower, the one below uses more NVM */
	assert_true(p.t_strategy[2] > p.t_strategy[1] + 0.5);
	assert_true(p.u_strategy[0] > p.u_strategy[1]);
}

/* With an HDD as fast as the NVM, NVM buys nothing: all layers on HDD. */
static void test_equal_speeds_keep_everything_on_hdd(void **state)
{
	double done[N];
	struct nl_lass_input in = input(done, 500 * MB, 500 * MB);
	struct nl_lass_plan p;
	enum nl_lass_tier tier[N];
	enum nl_lass_reason reason[N];

	(void)state;
	plan(&in, &p, tier, reason);
	assert_int_equal(p.boundary, N);
	assert_int_equal(p.u_total, 0);
	for (size_t i = 0; i < N; i++)
		assert_int_equal(tier[i], NL_LASS_HDD);
}

/* A very slow HDD cannot hide the base layer behind the LDL's download:
 * then the boundary moves below the LDL. */
static void test_slow_hdd_moves_boundary_below_ldl(void **state)
{
	double done[N];
	struct nl_lass_input in = input(done, 2 * MB, 2000 * MB);
	struct nl_lass_plan p;
	enum nl_lass_tier tier[N];
	enum nl_lass_reason reason[N];

	(void)state;
	plan(&in, &p, tier, reason);
	assert_int_equal(p.ldl, 1);
	assert_int_equal(p.boundary, 0);
	assert_true(p.t_strategy[0] < p.t_strategy[1]);
	assert_int_equal(tier[0], NL_LASS_NVM);
}

static void test_budget_never_exceeded(void **state)
{
	double done[N];
	struct nl_lass_input in = input(done, 100 * MB, 2000 * MB);
	struct nl_lass_plan p;
	enum nl_lass_tier tier[N];
	enum nl_lass_reason reason[N];
	uint64_t used = 0;

	(void)state;
	in.nvm_budget = 20 << 20;	/* the LDL (120 MB) cannot fit */
	plan(&in, &p, tier, reason);
	assert_int_equal(tier[1], NL_LASS_HDD);
	assert_int_equal(reason[1], NL_LASS_BUDGET);
	for (size_t i = 0; i < N; i++)
		if (tier[i] == NL_LASS_NVM)
			used += sizes[i];
	assert_true(used <= in.nvm_budget);
	assert_int_equal(used, p.u_total);
	/* the small layers above still fit */
	assert_int_equal(tier[2], NL_LASS_NVM);
	assert_int_equal(tier[3], NL_LASS_NVM);
	assert_int_equal(tier[4], NL_LASS_NVM);
	in.nvm_budget = 0;
	plan(&in, &p, tier, reason);
	for (size_t i = 0; i < N; i++)
		assert_int_equal(tier[i], NL_LASS_HDD);
}

static void test_history_hot_layer_added(void **state)
{
	double done[N];
	struct nl_lass_input in = input(done, 500 * MB, 500 * MB);
	enum nl_lass_history hist[N] = { NL_LASS_HIST_COLD, NL_LASS_HIST_HOT };
	struct nl_lass_plan p;
	enum nl_lass_tier tier[N];
	enum nl_lass_reason reason[N];

	(void)state;
	in.history = hist;
	plan(&in, &p, tier, reason);
	assert_int_equal(tier[0], NL_LASS_HDD);
	assert_int_equal(tier[1], NL_LASS_NVM);
	assert_int_equal(reason[1], NL_LASS_HISTORY_HOT);
	assert_int_equal(tier[2], NL_LASS_HDD);
}

static void test_history_rules(void **state)
{
	(void)state;
	assert_int_equal(nl_lass_classify_history(
		"/bin/sh -c #(nop) ADD file:4a1d2e0c9b7f in / "), NL_LASS_HIST_COLD);
	assert_int_equal(nl_lass_classify_history(
		"ADD alpine-minirootfs.tar.gz / # buildkit"), NL_LASS_HIST_COLD);
	assert_int_equal(nl_lass_classify_history(
		"/bin/sh -c #(nop) COPY dir:9f3c1 in /usr/src/app "), NL_LASS_HIST_HOT);
	assert_int_equal(nl_lass_classify_history("COPY . /app # buildkit"), NL_LASS_HIST_HOT);
	assert_int_equal(nl_lass_classify_history(
		"/bin/sh -c apt-get update && apt-get install -y python3.11 python3-pip"),
		NL_LASS_HIST_HOT);
	assert_int_equal(nl_lass_classify_history(
		"RUN /bin/sh -c apt-get install -y openjdk-17-jre-headless # buildkit"),
		NL_LASS_HIST_HOT);
	assert_int_equal(nl_lass_classify_history("/bin/sh -c npm ci"), NL_LASS_HIST_HOT);
	assert_int_equal(nl_lass_classify_history("/bin/sh -c docker-php-ext-install pdo"),
			 NL_LASS_HIST_HOT);
	assert_int_equal(nl_lass_classify_history(
		"/bin/sh -c apt-get install -y ca-certificates libssl3 curl"), NL_LASS_HIST_COLD);
	assert_int_equal(nl_lass_classify_history("/bin/sh -c git pipeline-setup"),
			 NL_LASS_HIST_COLD);
	assert_int_equal(nl_lass_classify_history(""), NL_LASS_HIST_NEUTRAL);
	assert_int_equal(nl_lass_classify_history(NULL), NL_LASS_HIST_NEUTRAL);
}

/* One download at a time: each layer completes after all below it. */
static void test_sequential_downloads(void **state)
{
	double done[N], sum = 0;

	(void)state;
	assert_int_equal(nl_lass_model_downloads(sizes, N, 10 * MB, 1, done), 0);
	for (size_t i = 0; i < N; i++) {
		sum += (double)sizes[i] / (10 * MB);
		assert_true(absd(done[i] - sum) < 1e-9);
	}
	assert_int_equal(nl_lass_find_ldl(done, N), N - 1);
}

/* Observed times: the bottom layer came last, so every layer waits for it
 * and the boundary is the bottom; a tie names the lowest layer. */
static void test_observed_ldl_at_bottom(void **state)
{
	double done[N] = { 9, 1, 2, 3, 4 };
	struct nl_lass_input in = {
		.n = N, .size = sizes, .done = done, .hdd_bps = 20 * MB, .nvm_bps = 2000 * MB,
		.nvm_budget = UINT64_MAX,
	};
	struct nl_lass_plan p;
	enum nl_lass_tier tier[N];
	enum nl_lass_reason reason[N];
	double tie[3] = { 2, 5, 5 };

	(void)state;
	plan(&in, &p, tier, reason);
	assert_int_equal(p.ldl, 0);
	assert_int_equal(p.boundary, 0);
	for (size_t i = 0; i < N; i++)
		assert_int_equal(tier[i], NL_LASS_NVM);
	assert_int_equal(nl_lass_find_ldl(tie, 3), 1);
}

static void test_bad_input(void **state)
{
	struct nl_lass_input in = { 0 };
	struct nl_lass_plan p = { 0 };
	double done[1];

	(void)state;
	assert_int_equal(nl_lass_plan(&in, &p), -22);
	assert_int_equal(nl_lass_model_downloads(sizes, 1, 0, 3, done), -22);
	assert_int_equal(nl_lass_model_downloads(sizes, 1, 1, 0, done), -22);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_download_model),
		cmocka_unit_test(test_equations_match_replay),
		cmocka_unit_test(test_strategy3_wins_when_nvm_much_faster),
		cmocka_unit_test(test_equal_speeds_keep_everything_on_hdd),
		cmocka_unit_test(test_slow_hdd_moves_boundary_below_ldl),
		cmocka_unit_test(test_budget_never_exceeded),
		cmocka_unit_test(test_history_hot_layer_added),
		cmocka_unit_test(test_history_rules),
		cmocka_unit_test(test_sequential_downloads),
		cmocka_unit_test(test_observed_ldl_at_bottom),
		cmocka_unit_test(test_bad_input),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
