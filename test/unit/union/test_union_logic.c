/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests of the union's name resolution: whiteouts, opaque directories
 * and merged listings, on real layer directories but without a mount.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <cmocka.h>

#include "fs/union/union.h"

struct fixture {
	char top[64];
	struct nl_options opt;
	struct nl_mount m;
};

static void make_path(struct fixture *f, const char *layer, const char *rel,
		      mode_t type)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s/%s", f->top, layer, rel);
	if (S_ISDIR(type))
		assert_int_equal(mkdir(p, 0755), 0);
	else if (S_ISCHR(type))
		assert_int_equal(mknod(p, S_IFCHR | 0, makedev(0, 0)), 0);
	else
		assert_int_equal(close(open(p, O_CREAT | O_WRONLY, 0644)) >= 0 ? 0 : -1, 0);
}

/* @rel of the same type in each layer named in @layers ("uab": all three). */
static void make_in(struct fixture *f, const char *layers, const char *rel, mode_t type)
{
	for (const char *l = layers; *l; l++)
		make_path(f, (char[]){ *l, '\0' }, rel, type);
}

/* Layers: upper "u" over "a" over "b", each a directory under f->top. */
static int setup(void **state)
{
	static const char *names[] = { "u", "a", "b" };
	struct fixture *f = calloc(1, sizeof(*f));
	char p[PATH_MAX];
	int i;

	strcpy(f->top, "/tmp/nl-unit-union-XXXXXX");
	assert_non_null(mkdtemp(f->top));
	f->m.opt = &f->opt;
	f->m.n_layers = 3;
	f->m.layers = calloc(3, sizeof(*f->m.layers));
	f->m.table = calloc(NL_HASH_SIZE, sizeof(*f->m.table));
	for (i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", f->top, names[i]);
		assert_int_equal(mkdir(p, 0755), 0);
		f->m.layers[i].path = strdup(p);
		f->m.layers[i].fd = open(p, O_RDONLY | O_DIRECTORY);
		f->m.layers[i].upper = i == 0;
	}
	f->m.upper = &f->m.layers[0];
	f->m.one_device = true;
	pthread_rwlock_init(&f->m.ns, NULL);
	pthread_mutex_init(&f->m.ino_lock, NULL);
	f->m.root.name = "";
	f->m.root.type = S_IFDIR;
	f->m.root.lowest = 2;
	f->m.root.gone_fd = -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];
	int i;

	for (i = 0; i < 3; i++) {
		close(f->m.layers[i].fd);
		free(f->m.layers[i].path);
	}
	free(f->m.layers);
	free(f->m.table);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->top);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static int resolve(struct fixture *f, struct nl_node *parent, const char *name,
		   int *layer, int *lowest)
{
	struct stat st;

	return nl_resolve(&f->m, parent, name, 0, layer, lowest, &st);
}

static void test_whiteout_predicates(void **state)
{
	struct stat st = { .st_mode = S_IFCHR, .st_rdev = makedev(0, 0) };

	(void)state;
	assert_true(nl_is_whiteout(&st));
	st.st_rdev = makedev(1, 3);
	assert_false(nl_is_whiteout(&st));
	st.st_mode = S_IFREG;
	st.st_rdev = 0;
	assert_false(nl_is_whiteout(&st));
	assert_true(nl_name_is_private(".wh.foo"));
	assert_true(nl_name_is_private(".wh..wh..opq"));
	assert_false(nl_name_is_private(".whfoo"));
	assert_true(nl_xattr_is_private("trusted.overlay.opaque"));
	assert_true(nl_xattr_is_private("user.fuseoverlayfs.opaque"));
	assert_false(nl_xattr_is_private("user.overlayx"));
	assert_false(nl_xattr_is_private("security.capability"));
}

static void test_topmost_wins(void **state)
{
	struct fixture *f = *state;
	int layer, lowest;

	make_in(f, "ab", "f", S_IFREG);
	make_path(f, "b", "only_b", S_IFREG);
	assert_int_equal(resolve(f, &f->m.root, "f", &layer, &lowest), 0);
	assert_int_equal(layer, 1);
	assert_int_equal(resolve(f, &f->m.root, "only_b", &layer, &lowest), 0);
	assert_int_equal(layer, 2);
	assert_int_equal(resolve(f, &f->m.root, "none", &layer, &lowest), -ENOENT);
}

static void test_whiteouts_hide_below(void **state)
{
	struct fixture *f = *state;
	int layer, lowest;

	make_path(f, "b", "gone", S_IFREG);
	make_path(f, "a", "gone", S_IFCHR);
	make_path(f, "b", "old", S_IFREG);
	make_path(f, "a", ".wh.old", S_IFREG);
	assert_int_equal(resolve(f, &f->m.root, "gone", &layer, &lowest), -ENOENT);
	assert_int_equal(resolve(f, &f->m.root, "old", &layer, &lowest), -ENOENT);
	/* Lookups of the markers themselves see nothing either. */
	assert_true(nl_lower_has(&f->m, &f->m.root, "gone") == false);
}

static void test_merge_depth(void **state)
{
	struct fixture *f = *state;
	int layer, lowest;

	make_in(f, "uab", "d", S_IFDIR);
	assert_int_equal(resolve(f, &f->m.root, "d", &layer, &lowest), 0);
	assert_int_equal(layer, 0);
	assert_int_equal(lowest, 2);

	/* a file in the middle layer ends the merge */
	make_in(f, "ub", "e", S_IFDIR);
	make_path(f, "a", "e", S_IFREG);
	assert_int_equal(resolve(f, &f->m.root, "e", &layer, &lowest), 0);
	assert_int_equal(lowest, 0);

	/* each opaque marker stops it */
	make_in(f, "uab", "o1", S_IFDIR);
	make_path(f, "a", "o1/.wh..wh..opq", S_IFREG);
	assert_int_equal(resolve(f, &f->m.root, "o1", &layer, &lowest), 0);
	assert_int_equal(lowest, 1);
}

static void test_opaque_xattrs(void **state)
{
	static const char *names[] = { "trusted.overlay.opaque", "user.overlay.opaque",
				       "user.fuseoverlayfs.opaque" };
	struct fixture *f = *state;
	char p[PATH_MAX], dir[16];
	int layer, lowest;
	size_t i;

	for (i = 0; i < 3; i++) {
		snprintf(dir, sizeof(dir), "x%zu", i);
		make_in(f, "ub", dir, S_IFDIR);
		snprintf(p, sizeof(p), "%s/u/%s", f->top, dir);
		if (setxattr(p, names[i], "y", 1, 0)) {
			/* tmpfs without user xattrs: the marker cannot exist */
			continue;
		}
		assert_int_equal(resolve(f, &f->m.root, dir, &layer, &lowest), 0);
		assert_int_equal(lowest, 0);
	}
	/* any other value is not a marker */
	make_in(f, "ub", "notopaque", S_IFDIR);
	snprintf(p, sizeof(p), "%s/u/notopaque", f->top);
	setxattr(p, "trusted.overlay.opaque", "n", 1, 0);
	assert_int_equal(resolve(f, &f->m.root, "notopaque", &layer, &lowest), 0);
	assert_int_equal(lowest, 2);
}

static bool listed(struct nl_dirlist *l, const char *name)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->ents[i].name, name) == 0)
			return true;
	return false;
}

static void test_merged_listing(void **state)
{
	struct fixture *f = *state;
	struct nl_dirlist l;

	make_path(f, "u", "top", S_IFREG);
	make_path(f, "a", "top", S_IFREG);
	make_path(f, "a", "mid", S_IFREG);
	make_path(f, "b", "bottom", S_IFREG);
	make_path(f, "b", "wiped", S_IFREG);
	make_path(f, "u", "wiped", S_IFCHR);
	make_path(f, "b", "oldwiped", S_IFREG);
	make_path(f, "a", ".wh.oldwiped", S_IFREG);
	assert_int_equal(nl_dir_list(&f->m, &f->m.root, &l), 0);
	assert_int_equal(l.n, 3);
	assert_true(listed(&l, "top"));
	assert_true(listed(&l, "mid"));
	assert_true(listed(&l, "bottom"));
	assert_false(listed(&l, "wiped"));
	assert_false(listed(&l, "oldwiped"));
	assert_false(listed(&l, ".wh.oldwiped"));
	nl_dir_list_free(&l);
}

static void test_paths_and_long_names(void **state)
{
	struct fixture *f = *state;
	char name[300], buf[NL_PATH_BUF];
	int layer, lowest;

	memset(name, 'n', 256);
	name[256] = '\0';
	assert_int_equal(resolve(f, &f->m.root, name, &layer, &lowest), -ENAMETOOLONG);
	assert_int_equal(nl_node_path(&f->m, &f->m.root, buf, sizeof(buf)), 0);
	assert_string_equal(buf, ".");
	assert_int_equal(nl_child_path(&f->m, &f->m.root, "x", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "x");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whiteout_predicates),
		cmocka_unit_test_setup_teardown(test_topmost_wins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_whiteouts_hide_below, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merge_depth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_opaque_xattrs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merged_listing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_paths_and_long_names, setup, teardown),
	};

	if (geteuid() != 0) {
		/* whiteouts are device nodes: only root can make them */
		printf("1..1\nok 1 - union logic # SKIP needs root to make whiteouts\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
