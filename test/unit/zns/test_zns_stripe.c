/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Stripe mapping: the equation, its inverse, and the row continuation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "zns/zns.h"

/* Spelled-out example: unit 4 KiB, k 3, cap 16 KiB. */
static void test_locate_examples(void **state)
{
	const uint64_t u = 4096, cap = 4 * u;
	struct zns_stripe_pos p;

	(void)state;
	p = zns_stripe_locate(0, u, 3, cap);
	assert_true(p.row == 0 && p.slot == 0 && p.zone_off == 0);
	p = zns_stripe_locate(u + 5, u, 3, cap);
	assert_true(p.row == 0 && p.slot == 1 && p.zone_off == 5);
	p = zns_stripe_locate(2 * u, u, 3, cap);
	assert_true(p.row == 0 && p.slot == 2 && p.zone_off == 0);
	p = zns_stripe_locate(3 * u + 7, u, 3, cap);	/* second stripe: back to slot 0 */
	assert_true(p.row == 0 && p.slot == 0 && p.zone_off == u + 7);
	p = zns_stripe_locate(11 * u + 1, u, 3, cap);	/* last unit of the row */
	assert_true(p.row == 0 && p.slot == 2 && p.zone_off == 3 * u + 1);
	/* The row is full (3 zones x 16 KiB): the next zones continue the stream. */
	p = zns_stripe_locate(12 * u, u, 3, cap);
	assert_true(p.row == 1 && p.slot == 0 && p.zone_off == 0);
	p = zns_stripe_locate(25 * u + 9, u, 3, cap);
	assert_true(p.row == 2 && p.slot == 1 && p.zone_off == 9);
}

static void test_k1_is_linear(void **state)
{
	(void)state;
	for (uint64_t off = 0; off < 1 << 20; off += 4093) {
		struct zns_stripe_pos p = zns_stripe_locate(off, 65536, 1, 262144);

		assert_int_equal(p.slot, 0);
		assert_int_equal(p.row, off / 262144);
		assert_int_equal(p.zone_off, off % 262144);
	}
}

/* Many offsets, units and k: locate then offset gives the offset back. */
static void test_round_trip(void **state)
{
	const uint64_t units[] = { 512, 4096, 65536, 1 << 20 };
	const uint32_t ks[] = { 1, 2, 3, 5, 7, 18 };

	(void)state;
	srand(42);
	for (size_t ui = 0; ui < 4; ui++) {
		for (size_t ki = 0; ki < 6; ki++) {
			uint64_t u = units[ui], cap = u * (1 + (uint64_t)(rand() % 40));
			uint32_t k = ks[ki];

			for (int i = 0; i < 2000; i++) {
				uint64_t off = ((uint64_t)rand() << 20 ^ (uint64_t)rand()) %
					       (cap * k * 5);
				struct zns_stripe_pos p = zns_stripe_locate(off, u, k, cap);

				assert_true(p.slot < k);
				assert_true(p.zone_off < cap);
				assert_int_equal(zns_stripe_offset(&p, u, k, cap), off);
			}
		}
	}
}

/*
 * Every byte of a zone is used exactly once, and a zone's bytes come in
 * stream order (so appending the stream writes every zone sequentially).
 */
static void test_bijective_and_sequential(void **state)
{
	const uint64_t u = 512, cap = 6 * u;
	const uint32_t k = 4;
	uint64_t next[4] = { 0 };
	unsigned char *seen = calloc(k * cap, 1);

	(void)state;
	for (uint64_t off = 0; off < k * cap; off++) {
		struct zns_stripe_pos p = zns_stripe_locate(off, u, k, cap);

		assert_int_equal(p.row, 0);
		assert_int_equal(seen[p.slot * cap + p.zone_off], 0);
		seen[p.slot * cap + p.zone_off] = 1;
		assert_int_equal(p.zone_off, next[p.slot]);
		next[p.slot]++;
	}
	for (uint32_t s = 0; s < k; s++)
		assert_int_equal(next[s], cap);
	free(seen);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_locate_examples),
		cmocka_unit_test(test_k1_is_linear),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_bijective_and_sequential),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
