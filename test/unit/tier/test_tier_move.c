/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Whole-layer moves on real temp dirs: the tree copy keeps every kind of
 * entry and the check finds any difference; only layers of the store
 * move; a move keeps the traced files on NVM under the HDD copy's
 * identity, switches NVM/layers/<id> and the registry, leaves mounts of
 * the old copy reading it, and its NVM copy is deleted only once nothing
 * holds it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <cmocka.h>
#include "test_tier_common.h"
#include "tier/tier_move.h"
#include "tier/image/image.h"

#define HEX "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

struct fx {
	struct tdirs t;
	char layer[PATH_MAX], hdd_copy[PATH_MAX], old[PATH_MAX];
	struct tier_ctx *ctx;
};

static void make_tree(const char *d)
{
	char p[PATH_MAX];

	mkdir(d, 0755);
	snprintf(p, sizeof(p), "%s/dir", d);
	mkdir(p, 0750);
	twrite(d, "hot", 20000, 1);
	twrite(d, "dir/cold", 70000, 2);
	twrite(d, "empty", 0, 3);
	snprintf(p, sizeof(p), "%s/dir/link", d);
	assert_int_equal(symlink("../hot", p), 0);
	snprintf(p, sizeof(p), "%s/hard", d);
	assert_int_equal(link(strcat(strcpy((char[PATH_MAX]){ 0 }, d), "/hot"), p), 0);
	snprintf(p, sizeof(p), "%s/wh", d);
	assert_int_equal(mknod(p, S_IFCHR | 0600, makedev(0, 0)), 0);
	snprintf(p, sizeof(p), "%s/dir", d);
	assert_int_equal(setxattr(p, "trusted.overlay.opaque", "y", 1, 0), 0);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct tier_config c;
	char err[512], p[PATH_MAX];
	FILE *reg;

	tdirs_make(&f->t);
	snprintf(p, sizeof(p), "%s/layers", f->t.nvm);
	mkdir(p, 0755);
	snprintf(f->layer, sizeof(f->layer), "%s/layers/" HEX, f->t.nvm);
	snprintf(f->hdd_copy, sizeof(f->hdd_copy), "%s/layers/" HEX, f->t.hdd);
	snprintf(f->old, sizeof(f->old), "%s/layers/" MOVE_OLD_PREFIX HEX, f->t.nvm);
	make_tree(f->layer);
	snprintf(p, sizeof(p), "%s/images", f->t.nvm);
	reg = fopen(p, "w");
	fprintf(reg, "nlayerfs-images 1\nimage app sha256:" HEX " 1\nlayer nvm sha256:" HEX
		" 100 %s\n", f->layer);
	fclose(reg);
	c = tconf(&f->t, false);
	c.store = &nl_image_store;
	if (tier_open(&c, &f->ctx, err, sizeof(err)))
		fail_msg("tier_open: %s", err);
	tier_config_free(&c);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	tier_close(f->ctx);
	tdirs_remove(&f->t);
	free(f);
	return 0;
}

static int dirfd_of(const char *p)
{
	int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	assert_true(fd >= 0);
	return fd;
}

/* A new copy of the layer in HDD/@name: its descriptor. */
static int fresh_copy(struct fx *f, const char *name, int src, char *path)
{
	uint64_t bytes = 0;
	int fd;

	snprintf(path, 512, "%s/%s", f->t.hdd, name);
	mkdir(path, 0700);
	fd = dirfd_of(path);
	assert_int_equal(tier_move_copy_tree(f->ctx, src, fd, &bytes), 0);
	return fd;
}

/* The copy equals its source; each kind of change is found. */
static void copy_then_every_difference_found(void **state)
{
	struct fx *f = *state;
	char dst[512], p[PATH_MAX], why[512];
	struct stat st;
	int a = dirfd_of(f->layer), b, fd;

	b = fresh_copy(f, "c1", a, dst);
	if (tier_move_verify_tree(f->ctx, a, b, why, sizeof(why)))
		fail_msg("a faithful copy differs: %s", why);
	/* one byte, with the times put back: only the bytes tell */
	snprintf(p, sizeof(p), "%s/dir/cold", dst);
	fd = open(p, O_WRONLY);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(pwrite(fd, "#", 1, 500), 1);
	futimens(fd, (struct timespec[2]){ st.st_atim, st.st_mtim });
	close(fd);
	assert_int_equal(tier_move_verify_tree(f->ctx, a, b, why, sizeof(why)), -EBADMSG);
	assert_non_null(strstr(why, "dir/cold: contents"));
	close(b);
	/* an xattr gone */
	b = fresh_copy(f, "c2", a, dst);
	snprintf(p, sizeof(p), "%s/dir", dst);
	assert_int_equal(removexattr(p, "trusted.overlay.opaque"), 0);
	assert_int_equal(tier_move_verify_tree(f->ctx, a, b, why, sizeof(why)), -EBADMSG);
	assert_non_null(strstr(why, "xattr"));
	close(b);
	/* an entry the layer has not */
	b = fresh_copy(f, "c3", a, dst);
	twrite(dst, "extra", 10, 4);
	assert_int_equal(tier_move_verify_tree(f->ctx, a, b, why, sizeof(why)), -EBADMSG);
	close(b);
	/* the links, the device node, the symlink and the empty file came along */
	b = fresh_copy(f, "c4", a, dst);
	snprintf(p, sizeof(p), "%s/hard", dst);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_nlink, 2);
	snprintf(p, sizeof(p), "%s/wh", dst);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0));
	snprintf(p, sizeof(p), "%s/dir/link", dst);
	assert_int_equal(readlink(p, why, sizeof(why)), 6);
	close(b);
	close(a);
}

/* A layer named by a path outside the store never moves. */
static void named_layer_not_moved(void **state)
{
	struct fx *f = *state;
	char p[PATH_MAX], err[512];
	int l;

	snprintf(p, sizeof(p), "%s/mine", f->t.nvm);
	make_tree(p);
	l = tier_layer_add(f->ctx, p);
	assert_true(l >= 0);
	assert_int_equal(tier_layer_move(f->ctx, l, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "by its path"));
	l = tier_layer_add(f->ctx, f->t.l1);
	assert_int_equal(tier_layer_move(f->ctx, l, err, sizeof(err)), -EALREADY);
}

static int where(struct fx *f, int l, const char *dir, const char *rel)
{
	char p[PATH_MAX], copy[PATH_MAX];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	assert_int_equal(lstat(p, &st), 0);
	return tier_lookup_data(f->ctx, l, rel, &st, copy, sizeof(copy));
}

static void move_switch_and_reap(void **state)
{
	struct fx *f = *state;
	struct tier_layer_info li;
	char err[512], p[PATH_MAX], *reg;
	int l = tier_layer_add(f->ctx, f->layer), l2, held;

	assert_true(l >= 0);
	assert_int_equal(tier_layer_info(f->ctx, l, &li), 0);
	assert_true(li.movable);
	/* a start needed "hot" */
	tier_trace_start(f->ctx);
	tier_trace_open(f->ctx, l, "hot", 20000);
	tier_trace_stop(f->ctx);
	tier_trace_flush(f->ctx);
	held = open(f->layer, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_equal(tier_layer_move(f->ctx, l, err, sizeof(err)), 0);
	/* NVM/layers/<id> leads to the HDD copy, the registry names it */
	assert_int_equal(readlink(f->layer, p, sizeof(p)), (ssize_t)strlen(f->hdd_copy));
	snprintf(p, sizeof(p), "%s/images", f->t.nvm);
	reg = tread(p, NULL);
	assert_non_null(strstr(reg, "layer hdd sha256:" HEX));
	assert_non_null(strstr(reg, f->hdd_copy));
	free(reg);
	/* a new mount gets the HDD record: "hot" from NVM, the rest from HDD */
	l2 = tier_layer_add(f->ctx, f->layer);
	assert_true(l2 >= 0 && l2 != l);
	assert_int_equal(tier_layer_home(f->ctx, l2), TIER_HOME_HDD);
	assert_int_equal(where(f, l2, f->hdd_copy, "hot"), TIER_DATA_NVM_COPY);
	assert_int_equal(where(f, l2, f->hdd_copy, "dir/cold"), TIER_DATA_LAYER);
	/* the old record reads its old copy, and drops nothing */
	assert_int_equal(where(f, l, f->old, "hot"), TIER_DATA_LAYER);
	assert_int_equal(where(f, l2, f->hdd_copy, "hot"), TIER_DATA_NVM_COPY);
	/* held: not deleted; let go: deleted */
	assert_int_equal(tier_move_reap(f->ctx), 0);
	assert_int_equal(tier_layer_info(f->ctx, l, &li), 0);
	assert_int_equal(li.place, TIER_PLACE_LEAVING);
	assert_true(li.holders >= 1);
	close(held);
	assert_int_equal(tier_move_reap(f->ctx), 1);
	assert_int_equal(access(f->old, F_OK), -1);
	assert_int_equal(tier_layer_info(f->ctx, l, &li), 0);
	assert_int_equal(li.place, TIER_PLACE_MOVED);
	assert_int_equal(tier_layer_nvm_bytes(f->ctx, l), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(copy_then_every_difference_found, setup, teardown),
		cmocka_unit_test_setup_teardown(named_layer_not_moved, setup, teardown),
		cmocka_unit_test_setup_teardown(move_switch_and_reap, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
