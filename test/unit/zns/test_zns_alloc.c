/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Tenant allocation over independent groups: fair share, strict admission, release, serialisation. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "zns/zns.h"

static void assert_groups(const uint32_t *got, const uint32_t *want, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(got[i], want[i]);
}

static void test_groups_for_bandwidth(void **state)
{
	const uint64_t mib = 1 << 20;

	(void)state;
	assert_int_equal(zns_groups_for_bandwidth(500 * mib, 100 * mib), 5);
	assert_int_equal(zns_groups_for_bandwidth(501 * mib, 100 * mib), 6);
	assert_int_equal(zns_groups_for_bandwidth(100 * mib, 100 * mib), 1);
	assert_int_equal(zns_groups_for_bandwidth(1, 100 * mib), 1);
	assert_int_equal(zns_groups_for_bandwidth(0, 100 * mib), 1);
}

/* The study's case: 18 groups, 5 tenants each asking 5 zones' bandwidth. */
static void test_study_case(void **state)
{
	struct zns_alloc *a;
	uint32_t g[5];
	const uint32_t t1[] = { 0, 1, 2, 3, 4 }, t2[] = { 5, 6, 7, 8, 9 },
		       t3[] = { 10, 11, 12, 13, 14 };
	uint32_t k = zns_groups_for_bandwidth(500ull << 20, 100ull << 20);

	(void)state;
	assert_int_equal(k, 5);
	assert_int_equal(zns_alloc_new(18, ZNS_ADMIT_FAIR, &a), 0);
	assert_int_equal(zns_alloc_tenant(a, 1, k, g), 0);
	assert_groups(g, t1, 5);
	assert_int_equal(zns_alloc_tenant(a, 2, k, g), 0);
	assert_groups(g, t2, 5);
	assert_int_equal(zns_alloc_tenant(a, 3, k, g), 0);
	assert_groups(g, t3, 5);
	assert_int_equal(zns_alloc_free_groups(a), 3);
	/* 4th: the 3 free groups, then 2 least-shared ones (shared once). */
	assert_int_equal(zns_alloc_tenant(a, 4, k, g), 0);
	assert_int_equal(g[0], 15);
	assert_int_equal(g[1], 16);
	assert_int_equal(g[2], 17);
	assert_int_equal(zns_alloc_share(a, g[3]), 2);
	assert_int_equal(zns_alloc_share(a, g[4]), 2);
	assert_true(g[3] != g[4] && g[3] < 15 && g[4] < 15);
	assert_int_equal(zns_alloc_free_groups(a), 0);
	/* 5th: no free group; it shares, always with groups used once. */
	assert_int_equal(zns_alloc_tenant(a, 5, k, g), 0);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(zns_alloc_share(a, g[i]), 2);
		for (int j = 0; j < i; j++)
			assert_true(g[i] != g[j]);
	}
	/* Nobody is shared three times while groups used once remain. */
	for (uint32_t x = 0; x < 18; x++)
		assert_true(zns_alloc_share(a, x) <= 2);
	zns_alloc_free(a);
}

static void test_strict_admission(void **state)
{
	struct zns_alloc *a;
	uint32_t g[8];

	(void)state;
	assert_int_equal(zns_alloc_new(8, ZNS_ADMIT_STRICT, &a), 0);
	assert_int_equal(zns_alloc_tenant(a, 1, 5, g), 0);
	assert_int_equal(zns_alloc_tenant(a, 2, 4, g), -ENOSPC);
	assert_int_equal(zns_alloc_groups(a, 2, g, 8), -ENOENT);
	assert_int_equal(zns_alloc_tenant(a, 2, 3, g), 0);
	assert_int_equal(zns_alloc_tenant(a, 3, 1, g), -ENOSPC);
	for (uint32_t x = 0; x < 8; x++)
		assert_int_equal(zns_alloc_share(a, x), 1);
	/* Releasing a tenant makes its groups free again. */
	assert_int_equal(zns_alloc_release(a, 1), 0);
	assert_int_equal(zns_alloc_free_groups(a), 5);
	assert_int_equal(zns_alloc_tenant(a, 3, 5, g), 0);
	assert_int_equal(zns_alloc_release(a, 1), -ENOENT);
	zns_alloc_free(a);
}

static void test_release_and_reuse(void **state)
{
	struct zns_alloc *a;
	uint32_t g[4], h[4];

	(void)state;
	assert_int_equal(zns_alloc_new(6, ZNS_ADMIT_FAIR, &a), 0);
	assert_int_equal(zns_alloc_tenant(a, 10, 3, g), 0);
	assert_int_equal(zns_alloc_tenant(a, 11, 3, h), 0);
	assert_int_equal(zns_alloc_tenant(a, 10, 1, g), -EEXIST);
	assert_int_equal(zns_alloc_release(a, 10), 0);
	assert_int_equal(zns_alloc_free_groups(a), 3);
	/* The freed groups are taken before any sharing. */
	assert_int_equal(zns_alloc_tenant(a, 12, 3, g), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(zns_alloc_share(a, g[i]), 1);
	/* k above the group count is capped. */
	assert_int_equal(zns_alloc_release(a, 12), 0);
	assert_int_equal(zns_alloc_release(a, 11), 0);
	assert_int_equal(zns_alloc_tenant(a, 13, 100, (uint32_t[6]){ 0 }), 0);
	assert_int_equal(zns_alloc_groups(a, 13, g, 4), 6);
	assert_int_equal(zns_alloc_free_groups(a), 0);
	assert_int_equal(zns_alloc_tenant(a, 14, 0, g), -EINVAL);
	zns_alloc_free(a);
	assert_int_equal(zns_alloc_new(0, ZNS_ADMIT_FAIR, &a), -EINVAL);
}

static void test_serialise_round_trip(void **state)
{
	struct zns_alloc *a, *b, *c = NULL;
	uint32_t g[5], ga[5], gb[5];
	size_t n;
	unsigned char *buf;

	(void)state;
	assert_int_equal(zns_alloc_new(7, ZNS_ADMIT_STRICT, &a), 0);
	assert_int_equal(zns_alloc_tenant(a, 100, 2, g), 0);
	assert_int_equal(zns_alloc_tenant(a, 7, 3, g), 0);
	n = zns_alloc_encode(a, NULL, 0);
	buf = malloc(n);
	assert_int_equal(zns_alloc_encode(a, buf, n), n);
	assert_int_equal(zns_alloc_decode(buf, n, &b), 0);
	for (uint32_t x = 0; x < 7; x++)
		assert_int_equal(zns_alloc_share(a, x), zns_alloc_share(b, x));
	assert_int_equal(zns_alloc_groups(b, 7, gb, 5), 3);
	assert_int_equal(zns_alloc_groups(a, 7, ga, 5), 3);
	assert_groups(gb, ga, 3);
	/* The admission mode came back too: strict still refuses. */
	assert_int_equal(zns_alloc_tenant(b, 8, 3, g), -ENOSPC);
	/* Truncated or corrupted input is refused. */
	assert_int_equal(zns_alloc_decode(buf, n - 4, &c), -EINVAL);
	/* Word 7 is tenant 100's first group: make it beyond the 7 groups. */
	buf[7 * 4] = 9;
	assert_int_equal(zns_alloc_decode(buf, n, &c), -EINVAL);
	buf[0] ^= 1;
	assert_int_equal(zns_alloc_decode(buf, n, &c), -EINVAL);
	zns_alloc_free(a);
	zns_alloc_free(b);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_groups_for_bandwidth),
		cmocka_unit_test(test_study_case),
		cmocka_unit_test(test_strict_admission),
		cmocka_unit_test(test_release_and_reuse),
		cmocka_unit_test(test_serialise_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
