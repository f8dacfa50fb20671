/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests of the shared node table: ids and handles, what a second
 * mapping (a server after the first) sees, renames that a kill cannot
 * tear, intents, and tables that must be refused.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "fs/keeper/nodetab.h"

static void test_ids_reused_with_new_generation(void **state)
{
	struct nl_tab t = { .fd = -1 };
	uint64_t a, b;
	uint32_t gen;

	(void)state;
	assert_int_equal(nl_tab_create(&t), 0);
	a = nl_tab_node_alloc(&t);
	assert_true(a >= 2);	/* 0 is none, 1 the root */
	nl_tab_node_set(&t, a, 1, "a", 0);
	gen = t.nodes[a].gen;
	b = nl_tab_node_alloc(&t);
	assert_int_not_equal(a, b);
	nl_tab_node_free(&t, a);
	assert_int_equal(t.nodes[a].state, NL_TAB_FREE);
	assert_int_equal(nl_tab_node_alloc(&t), a);
	nl_tab_node_set(&t, a, 1, "again", 0);
	assert_int_not_equal(t.nodes[a].gen, gen);
	nl_tab_close(&t);
}

static void test_second_mapping_sees_entries(void **state)
{
	struct nl_tab t = { .fd = -1 }, u = { .fd = -1 };
	uint64_t id, fh;
	int fd;

	(void)state;
	assert_int_equal(nl_tab_create(&t), 0);
	id = nl_tab_node_alloc(&t);
	nl_tab_node_set(&t, id, 1, "dir", 4);
	atomic_fetch_add(&t.nodes[id].nlookup, 3);
	fh = nl_tab_handle_alloc(&t, NL_TAB_FILE, id, 02);
	assert_true(fh >= 1);
	nl_tab_origin_add(&t, 1, 100, 2, 200);
	fd = dup(t.fd);
	assert_int_equal(nl_tab_attach(&u, fd), 0);
	assert_int_equal(u.nodes[id].state, NL_TAB_LIVE);
	assert_int_equal(u.nodes[id].nlookup, 3);
	assert_string_equal(u.nodes[id].slot[u.nodes[id].cur].name, "dir");
	assert_int_equal(u.handles[fh].node, id);
	assert_int_equal(u.handles[fh].flags, 02);
	assert_int_equal(u.head->n_origins, 1);
	assert_int_equal(u.origins[0].oino, 200);
	/* the second mapping hands out ids the first never used */
	assert_true(nl_tab_node_alloc(&u) > id);
	nl_tab_close(&u);
	nl_tab_close(&t);
}

static void test_rename_switches_slots(void **state)
{
	struct nl_tab t = { .fd = -1 };
	struct nl_tab_node *e;
	uint64_t id;
	uint8_t before;

	(void)state;
	assert_int_equal(nl_tab_create(&t), 0);
	id = nl_tab_node_alloc(&t);
	nl_tab_node_set(&t, id, 1, "old", 0);
	e = &t.nodes[id];
	before = e->cur;
	nl_tab_node_rename(&t, id, 7, "new");
	assert_int_not_equal(e->cur, before);
	/* the old name is untouched until the next rename */
	assert_string_equal(e->slot[before].name, "old");
	assert_string_equal(e->slot[e->cur].name, "new");
	assert_int_equal(e->slot[e->cur].parent, 7);
	nl_tab_close(&t);
}

static void test_intents(void **state)
{
	struct nl_tab t = { .fd = -1 };
	int a, b;

	(void)state;
	assert_int_equal(nl_tab_create(&t), 0);
	a = nl_tab_intent_begin(&t, 3, 5, "src", 6, "dst");
	b = nl_tab_intent_begin(&t, 1, 5, "new", 0, NULL);
	assert_true(a >= 0 && b >= 0 && a != b);
	assert_string_equal(t.head->intents[a].to.name, "dst");
	nl_tab_intent_end(&t, a);
	assert_int_equal(t.head->intents[a].state, NL_TAB_FREE);
	assert_int_equal(t.head->intents[b].state, NL_TAB_LIVE);
	for (int i = 0; i < NL_TAB_INTENTS; i++)
		nl_tab_intent_begin(&t, 1, 5, "x", 0, NULL);
	/* all taken: the change goes without one */
	assert_int_equal(nl_tab_intent_begin(&t, 1, 5, "y", 0, NULL), -1);
	nl_tab_close(&t);
}

static void test_bad_tables_refused(void **state)
{
	struct nl_tab t = { .fd = -1 }, u = { .fd = -1 };
	int fd;

	(void)state;
	fd = memfd_create("small", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 4096), 0);
	assert_int_equal(nl_tab_attach(&u, fd), -EPROTO);
	close(fd);
	assert_int_equal(nl_tab_create(&t), 0);
	t.head->magic[0] = 'x';
	fd = dup(t.fd);
	assert_int_equal(nl_tab_attach(&u, fd), -EPROTO);
	close(fd);
	t.head->magic[0] = NL_TAB_MAGIC[0];
	atomic_store(&t.head->node_high, (uint64_t)NL_TAB_NODES + 1);
	fd = dup(t.fd);
	assert_int_equal(nl_tab_attach(&u, fd), -EPROTO);
	close(fd);
	nl_tab_close(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ids_reused_with_new_generation),
		cmocka_unit_test(test_second_mapping_sees_entries),
		cmocka_unit_test(test_rename_switches_slots),
		cmocka_unit_test(test_intents),
		cmocka_unit_test(test_bad_tables_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
