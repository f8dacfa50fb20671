/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests of layer extraction: whiteout conversion and refusal of
 * entries that would land outside the layer directory. Tarballs are built
 * here with libarchive's writer; runs without root.
 */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "tier/image/import_private.h"

struct fixture {
	char base[64];		/* /tmp/nl-I-ut-XXXXXX */
	char tar[128], layer[128], outside[128];
	struct archive *w;
	char err[512];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	strcpy(f->base, "/tmp/nl-I-ut-XXXXXX");
	if (!mkdtemp(f->base))
		return -1;
	snprintf(f->tar, sizeof(f->tar), "%s/layer.tar", f->base);
	snprintf(f->layer, sizeof(f->layer), "%s/layer", f->base);
	snprintf(f->outside, sizeof(f->outside), "%s/outside", f->base);
	if (mkdir(f->layer, 0755) || mkdir(f->outside, 0755))
		return -1;
	f->w = archive_write_new();
	archive_write_set_format_pax_restricted(f->w);
	if (archive_write_open_filename(f->w, f->tar) != ARCHIVE_OK)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f->w)
		archive_write_free(f->w);
	nl_rm_tree(f->base);
	free(f);
	return 0;
}

static void add(struct fixture *f, const char *name, unsigned type, const char *data,
		const char *link)
{
	struct archive_entry *e = archive_entry_new();

	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, type == AE_IFDIR ? 0755 : 0644);
	archive_entry_set_mtime(e, 1600000000, 0);
	if (type == AE_IFLNK)
		archive_entry_set_symlink(e, link);
	if (link && type == AE_IFREG)
		archive_entry_set_hardlink(e, link);
	archive_entry_set_size(e, data && !(link && type == AE_IFREG) ? (la_int64_t)strlen(data) : 0);
	assert_int_equal(archive_write_header(f->w, e), ARCHIVE_OK);
	if (data && !(link && type == AE_IFREG))
		assert_int_equal(archive_write_data(f->w, data, strlen(data)), (la_ssize_t)strlen(data));
	archive_entry_free(e);
}

static int extract(struct fixture *f, bool mknod)
{
	struct nl_extract_opts o = { .mknod_whiteouts = mknod };

	assert_int_equal(archive_write_close(f->w), ARCHIVE_OK);
	archive_write_free(f->w);
	f->w = NULL;
	f->err[0] = '\0';
	return nl_extract_layer(f->tar, f->layer, &o, f->err, sizeof(f->err));
}

static bool exists(struct fixture *f, const char *rel, struct stat *st)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", f->layer, rel);
	return lstat(p, st) == 0;
}

static bool outside_empty(struct fixture *f)
{
	DIR *d = opendir(f->outside);
	struct dirent *e;
	size_t n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return n == 0 && access("/tmp/nl-I-ut-pwned", F_OK) != 0;
}

static void test_plain_entries(void **state)
{
	struct fixture *f = *state;
	struct stat a, b;

	add(f, "./d/", AE_IFDIR, NULL, NULL);
	add(f, "./d/file", AE_IFREG, "data", NULL);
	add(f, "./d/hard", AE_IFREG, NULL, "./d/file");
	add(f, "sym", AE_IFLNK, NULL, "/etc/passwd");	/* absolute targets are fine */
	add(f, "d//./deep/x", AE_IFREG, "x", NULL);
	assert_int_equal(extract(f, false), 0);
	assert_true(exists(f, "d/file", &a));
	assert_true(exists(f, "d/hard", &b));
	assert_int_equal(a.st_ino, b.st_ino);
	assert_int_equal(a.st_mtime, 1600000000);
	assert_true(exists(f, "sym", &a) && S_ISLNK(a.st_mode));
	assert_true(exists(f, "d/deep/x", &a));
}

static void test_whiteouts_kept_as_names(void **state)
{
	struct fixture *f = *state;
	struct stat st;
	char p[PATH_MAX], v[4];

	add(f, "d/", AE_IFDIR, NULL, NULL);
	add(f, "d/.wh.gone", AE_IFREG, "", NULL);
	add(f, "o/", AE_IFDIR, NULL, NULL);
	add(f, "o/.wh..wh..opq", AE_IFREG, "", NULL);
	add(f, ".wh..wh.plnk", AE_IFDIR, NULL, NULL);
	assert_int_equal(extract(f, false), 0);
	assert_true(exists(f, "d/.wh.gone", &st));
	assert_false(exists(f, ".wh..wh.plnk", &st));
	/* opaque: the xattr where permitted, else the marker file */
	snprintf(p, sizeof(p), "%s/o", f->layer);
	if (lgetxattr(p, "trusted.overlay.opaque", v, sizeof(v)) == 1)
		assert_int_equal(v[0], 'y');
	else
		assert_true(exists(f, "o/.wh..wh..opq", &st));
}

static void test_whiteout_device(void **state)
{
	struct fixture *f = *state;
	struct stat st;

	if (geteuid() != 0) {
		skip();
		return;
	}
	add(f, "d/.wh.gone", AE_IFREG, "", NULL);
	assert_int_equal(extract(f, true), 0);
	assert_true(exists(f, "d/gone", &st));
	assert_true(S_ISCHR(st.st_mode));
	assert_int_equal(st.st_rdev, 0);
	assert_false(exists(f, "d/.wh.gone", &st));
}

static void expect_refused(struct fixture *f, const char *what)
{
	assert_int_equal(extract(f, false), -EPERM);
	if (!strstr(f->err, what))
		fail_msg("expected '%s' in '%s'", what, f->err);
	assert_true(outside_empty(f));
}

static void test_dotdot_refused(void **state)
{
	struct fixture *f = *state;

	add(f, "a/../../pwned", AE_IFREG, "x", NULL);
	expect_refused(f, "path traversal");
}

static void test_absolute_refused(void **state)
{
	struct fixture *f = *state;

	add(f, "/tmp/nl-I-ut-pwned", AE_IFREG, "x", NULL);
	expect_refused(f, "path traversal");
}

static void test_symlink_parent_refused(void **state)
{
	struct fixture *f = *state;

	add(f, "esc", AE_IFLNK, NULL, f->outside);
	add(f, "esc/pwned", AE_IFREG, "x", NULL);
	expect_refused(f, "symlink escape");
}

static void test_hardlink_outside_refused(void **state)
{
	struct fixture *f = *state;

	add(f, "h", AE_IFREG, NULL, "../outside/pwned");
	expect_refused(f, "outside the layer");
}

static void test_hardlink_through_symlink_refused(void **state)
{
	struct fixture *f = *state;

	add(f, "esc", AE_IFLNK, NULL, f->outside);
	add(f, "h", AE_IFREG, NULL, "esc/target");
	expect_refused(f, "symlink escape");
}

/* An opaque marker alone creates its dir; through a symlink it is refused. */
static void test_opaque_marker_without_dir(void **state)
{
	struct fixture *f = *state;
	struct stat st;

	add(f, "a/b/.wh..wh..opq", AE_IFREG, "", NULL);
	assert_int_equal(extract(f, false), 0);
	assert_true(exists(f, "a/b", &st) && S_ISDIR(st.st_mode));
}

static void test_opaque_through_symlink_refused(void **state)
{
	struct fixture *f = *state;

	add(f, "esc", AE_IFLNK, NULL, f->outside);
	add(f, "esc/.wh..wh..opq", AE_IFREG, "", NULL);
	expect_refused(f, "symlink escape");
}

/* A hard link to a symlink links the symlink itself, and keeps it. */
static void test_hardlink_to_symlink(void **state)
{
	struct fixture *f = *state;
	struct stat a, b;

	add(f, "s", AE_IFLNK, NULL, "/etc/passwd");
	add(f, "h", AE_IFREG, NULL, "s");
	assert_int_equal(extract(f, false), 0);
	assert_true(exists(f, "s", &a) && S_ISLNK(a.st_mode));
	assert_true(exists(f, "h", &b) && S_ISLNK(b.st_mode));
	assert_int_equal(a.st_ino, b.st_ino);
}

/* A later entry of the same name replaces a symlink; it is not written
 * through it. */
static void test_symlink_replaced_not_followed(void **state)
{
	struct fixture *f = *state;
	char target[PATH_MAX];
	struct stat st;

	snprintf(target, sizeof(target), "%s/pwned", f->outside);
	add(f, "s", AE_IFLNK, NULL, target);
	add(f, "s", AE_IFREG, "data", NULL);
	assert_int_equal(extract(f, false), 0);
	assert_true(exists(f, "s", &st) && S_ISREG(st.st_mode));
	assert_true(outside_empty(f));
}

static void test_truncated_refused(void **state)
{
	struct fixture *f = *state;
	char big[20000];

	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	add(f, "big", AE_IFREG, big, NULL);
	assert_int_equal(archive_write_close(f->w), ARCHIVE_OK);
	assert_int_equal(truncate(f->tar, 8192), 0);
	struct nl_extract_opts o = { 0 };

	assert_int_not_equal(nl_extract_layer(f->tar, f->layer, &o, f->err, sizeof(f->err)), 0);
	assert_non_null(strstr(f->err, "runcated"));
}

/* An entry naming the layer root, with its own mode. */
static void add_root(struct fixture *f, const char *name, mode_t mode)
{
	struct archive_entry *e = archive_entry_new();

	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFDIR);
	archive_entry_set_perm(e, mode);
	assert_int_equal(archive_write_header(f->w, e), ARCHIVE_OK);
	archive_entry_free(e);
}

static mode_t root_mode(struct fixture *f)
{
	struct stat st;

	assert_int_equal(stat(f->layer, &st), 0);
	return st.st_mode & 07777;
}

/* The import extracts into a mkdtemp dir (0700); podman's layers have no
 * "./" entry, and the root must still be readable by everyone. */
static void test_root_without_entry_is_0755(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(chmod(f->layer, 0700), 0);
	add(f, "etc/hostname", AE_IFREG, "h", NULL);
	assert_int_equal(extract(f, false), 0);
	assert_int_equal(root_mode(f), 0755);
}

static void test_root_mode_from_dot_entry(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(chmod(f->layer, 0700), 0);
	add_root(f, "./", 0750);
	add(f, "etc/hostname", AE_IFREG, "h", NULL);
	assert_int_equal(extract(f, false), 0);
	assert_int_equal(root_mode(f), 0750);
}

static void test_root_mode_from_slash_entry(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(chmod(f->layer, 0700), 0);
	add_root(f, "/", 0711);
	add(f, "etc/hostname", AE_IFREG, "h", NULL);
	assert_int_equal(extract(f, false), 0);
	assert_int_equal(root_mode(f), 0711);
}

static void expect_error(struct fixture *f, bool mknod, int r, const char *what)
{
	assert_int_equal(extract(f, mknod), r);
	if (!strstr(f->err, what))
		fail_msg("expected '%s' in '%s'", what, f->err);
}

/* ".wh.." would become a whiteout named "." (or a ".wh.." the union reads
 * as one): the whole directory would disappear. */
static void test_whiteout_of_dot_refused(void **state)
{
	struct fixture *f = *state;
	struct stat st;

	add(f, "etc/passwd", AE_IFREG, "root", NULL);
	add(f, "etc/.wh..", AE_IFREG, "", NULL);
	expect_error(f, geteuid() == 0, -EINVAL, "refusing whiteout entry 'etc/.wh..'");
	assert_non_null(strstr(f->err, "whole directory 'etc'"));
	assert_true(exists(f, "etc/passwd", &st) && S_ISREG(st.st_mode));
}

static void test_whiteout_empty_name_refused(void **state)
{
	struct fixture *f = *state;

	add(f, "etc/.wh.", AE_IFREG, "", NULL);
	/* without mknod the entry used to be kept as a file named ".wh." */
	expect_error(f, false, -EINVAL, "refusing whiteout entry 'etc/.wh.'");
}

static void add_with_xattrs(struct fixture *f, const char *name, unsigned type)
{
	static const char *const names[] = {
		"trusted.overlay.redirect", "trusted.overlay.metacopy", "user.overlay.origin",
		"trusted.overlay.opaque", "user.overlay.opaque", "user.keep",
	};
	struct archive_entry *e = archive_entry_new();

	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, 0755);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		archive_entry_xattr_add_entry(e, names[i], i < 2 ? "/etc" : "y", i < 2 ? 4 : 1);
	assert_int_equal(archive_write_header(f->w, e), ARCHIVE_OK);
	archive_entry_free(e);
}

static bool has_xattr(struct fixture *f, const char *rel, const char *name)
{
	char p[PATH_MAX], v[16];

	snprintf(p, sizeof(p), "%s/%s", f->layer, rel);
	return lgetxattr(p, name, v, sizeof(v)) >= 0;
}

/* The kernel's overlayfs would follow a redirect or trust a metacopy
 * written by the image; only the opaque marks have a meaning in a layer. */
static void test_overlay_xattrs_dropped(void **state)
{
	struct fixture *f = *state;
	size_t dropped = 0;
	struct nl_extract_opts o = { .dropped_xattrs = &dropped };

	add_with_xattrs(f, "d", AE_IFDIR);
	assert_int_equal(archive_write_close(f->w), ARCHIVE_OK);
	archive_write_free(f->w);
	f->w = NULL;
	assert_int_equal(nl_extract_layer(f->tar, f->layer, &o, f->err, sizeof(f->err)), 0);
	assert_false(has_xattr(f, "d", "user.overlay.origin"));
	assert_true(has_xattr(f, "d", "user.overlay.opaque"));
	assert_true(has_xattr(f, "d", "user.keep"));
	if (geteuid() == 0) {
		assert_false(has_xattr(f, "d", "trusted.overlay.redirect"));
		assert_false(has_xattr(f, "d", "trusted.overlay.metacopy"));
		assert_true(has_xattr(f, "d", "trusted.overlay.opaque"));
	}
	assert_true(dropped >= 3);	/* pax may carry each twice (SCHILY. and LIBARCHIVE.) */
}

static void test_long_path_not_traversal(void **state)
{
	struct fixture *f = *state;
	char name[5000];

	for (size_t i = 0; i + 2 < sizeof(name); i += 2)
		memcpy(name + i, "a/", 2);
	strcpy(name + sizeof(name) - 3, "f");
	add(f, name, AE_IFREG, "x", NULL);
	expect_error(f, false, -ENAMETOOLONG, "path too long");
	assert_null(strstr(f->err, "traversal"));
}

int main(void)
{
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_plain_entries),
		T(test_whiteouts_kept_as_names),
		T(test_whiteout_device),
		T(test_dotdot_refused),
		T(test_absolute_refused),
		T(test_symlink_parent_refused),
		T(test_hardlink_outside_refused),
		T(test_hardlink_through_symlink_refused),
		T(test_symlink_replaced_not_followed),
		T(test_hardlink_to_symlink),
		T(test_opaque_marker_without_dir),
		T(test_opaque_through_symlink_refused),
		T(test_truncated_refused),
		T(test_root_without_entry_is_0755),
		T(test_root_mode_from_dot_entry),
		T(test_root_mode_from_slash_entry),
		T(test_whiteout_of_dot_refused),
		T(test_whiteout_empty_name_refused),
		T(test_overlay_xattrs_dropped),
		T(test_long_path_not_traversal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
