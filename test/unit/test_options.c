/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for command line / -o option parsing and the pre-mount checks.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fs/options.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])))

static char err[512];

/* Parse one -o string into freshly defaulted options. */
static int parse_o(const char *opts, struct nl_options *o)
{
	char *argv[] = { "nlayerfs", "-o", (char *)opts, "/mnt", NULL };

	return nl_options_parse(4, argv, o, err, sizeof(err));
}

/* @opts is refused with a message naming @msg, and nothing half-parsed is
 * left to mount with. */
static void assert_refused(const char *opts, const char *msg)
{
	struct nl_options o;

	assert_int_equal(parse_o(opts, &o), -EINVAL);
	if (!strstr(err, msg))
		fail_msg("'%s': got '%s', want '%s'", opts, err, msg);
	assert_null(o.lowerdirs);
	nl_options_free(&o);
}

/* parse_o() with fd 2 redirected: what it wrote (caller frees). */
static char *parse_o_stderr(const char *opts, struct nl_options *o, int *rc)
{
	char path[] = "/tmp/nl-O-stderr-XXXXXX";
	int fd = mkstemp(path);
	int saved = dup(2);
	char *buf = calloc(1, 4096);

	assert_true(fd >= 0 && saved >= 0 && buf);
	fflush(stderr);
	dup2(fd, 2);
	*rc = parse_o(opts, o);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	assert_true(pread(fd, buf, 4095, 0) >= 0);
	close(fd);
	unlink(path);
	return buf;
}

/* ---- lowerdir ------------------------------------------------------------ */

static void test_lowerdir_order(void **state)
{
	char **dirs;

	(void)state;
	assert_int_equal(nl_split_lowerdirs("/top:/mid:/bottom", &dirs), 3);
	assert_string_equal(dirs[0], "/top");
	assert_string_equal(dirs[1], "/mid");
	assert_string_equal(dirs[2], "/bottom");
	assert_null(dirs[3]);
	for (int i = 0; dirs[i]; i++)
		free(dirs[i]);
	free(dirs);
}

static void test_lowerdir_escaped_colon(void **state)
{
	char **dirs;

	(void)state;
	assert_int_equal(nl_split_lowerdirs("/a\\:b:/c\\\\d:/e", &dirs), 3);
	assert_string_equal(dirs[0], "/a:b");
	assert_string_equal(dirs[1], "/c\\d");
	assert_string_equal(dirs[2], "/e");
	for (int i = 0; dirs[i]; i++)
		free(dirs[i]);
	free(dirs);
}

static void test_lowerdir_empty_component(void **state)
{
	const char *bad[] = { "", "/a::/b", ":/a", "/a:", ":" };
	char **dirs;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(nl_split_lowerdirs(bad[i], &dirs), -EINVAL);
		assert_null(dirs);
	}
}

static void test_lowerdir_via_option_string(void **state)
{
	struct nl_options o;

	(void)state;
	assert_int_equal(parse_o("lowerdir=/l\\:1:/l\\,2:/l3", &o), 0);
	assert_int_equal(o.n_lower, 3);
	assert_string_equal(o.lowerdirs[0], "/l:1");
	assert_string_equal(o.lowerdirs[1], "/l,2");
	assert_string_equal(o.lowerdirs[2], "/l3");
	assert_null(o.lowerdirs[3]);
	nl_options_free(&o);

	assert_int_equal(parse_o("lowerdir=/a::/b", &o), -EINVAL);
	assert_non_null(strstr(err, "empty lowerdir component"));
	nl_options_free(&o);
}

static void test_relative_paths_made_absolute(void **state)
{
	char old[PATH_MAX], tmp[] = "/tmp/nl-O-cwd-XXXXXX", want[PATH_MAX + 32];
	char *argv[] = { "nlayerfs", "-o",
			 "lowerdir=l1:./l2/,upperdir=up,workdir=../w", "mnt", NULL };
	struct nl_options o;

	(void)state;
	assert_non_null(getcwd(old, sizeof(old)));
	assert_non_null(mkdtemp(tmp));
	assert_int_equal(chdir(tmp), 0);
	assert_int_equal(nl_options_parse(4, argv, &o, err, sizeof(err)), 0);
	assert_int_equal(chdir(old), 0);
	rmdir(tmp);

	snprintf(want, sizeof(want), "%s/l1", tmp);
	assert_string_equal(o.lowerdirs[0], want);
	snprintf(want, sizeof(want), "%s/l2", tmp);
	assert_string_equal(o.lowerdirs[1], want);
	snprintf(want, sizeof(want), "%s/up", tmp);
	assert_string_equal(o.upperdir, want);
	snprintf(want, sizeof(want), "%s/../w", tmp);
	assert_string_equal(o.workdir, want);
	snprintf(want, sizeof(want), "%s/mnt", tmp);
	assert_string_equal(o.mountpoint, want);
	nl_options_free(&o);
}

/* ---- id mappings --------------------------------------------------------- */

static void test_idmap_parse_and_map(void **state)
{
	struct nl_idmap *m;

	(void)state;
	assert_int_equal(nl_parse_idmap("1000:0:1:100000:1:65536", &m), 2);
	assert_int_equal(m[0].inner, 0);
	assert_int_equal(m[0].outer, 1000);
	assert_int_equal(m[0].count, 1);
	assert_int_equal(m[1].inner, 1);
	assert_int_equal(m[1].outer, 100000);
	assert_int_equal(m[1].count, 65536);

	assert_int_equal(nl_idmap_to_outer(m, 2, 0), 1000);
	assert_int_equal(nl_idmap_to_outer(m, 2, 1), 100000);
	assert_int_equal(nl_idmap_to_outer(m, 2, 65536), 165535);
	assert_int_equal(nl_idmap_to_outer(m, 2, 65537), 65534);
	assert_int_equal(nl_idmap_to_inner(m, 2, 1000), 0);
	assert_int_equal(nl_idmap_to_inner(m, 2, 100005), 6);
	assert_int_equal(nl_idmap_to_inner(m, 2, 165536), 65534);
	assert_int_equal(nl_idmap_to_inner(m, 2, 0), 65534);
	free(m);

	/* comma separated entries, as in fuse-overlayfs' documentation */
	assert_int_equal(nl_parse_idmap("10:0:100,10000:100:2000", &m), 2);
	assert_int_equal(nl_idmap_to_outer(m, 2, 150), 10050);
	free(m);

	/* no mapping: ids pass unchanged */
	assert_int_equal(nl_idmap_to_outer(NULL, 0, 42), 42);
	assert_int_equal(nl_idmap_to_inner(NULL, 0, 42), 42);
}

static void test_idmap_errors(void **state)
{
	const char *bad[] = { "", "0:1000", "0:1000:1:1", "a:b:c", "0:1:0",
			      "0:1:1:", "-1:0:1", "0:4294967295:2",
			      "99999999999:0:1", "0:1:1x" };
	struct nl_idmap *m;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(nl_parse_idmap(bad[i], &m), -EINVAL);
		assert_null(m);
	}
	assert_int_equal(nl_parse_idmap("4294967295:0:1", &m), 1);
	free(m);
}

static void test_mapping_options(void **state)
{
	struct nl_options o;

	(void)state;
	assert_int_equal(parse_o("lowerdir=/l,uidmapping=1000:0:1:100000:1:65536,"
				 "gidmapping=2000:0:10", &o), 0);
	assert_int_equal(o.n_uidmap, 2);
	assert_int_equal(o.uidmap[1].outer, 100000);
	assert_int_equal(o.n_gidmap, 1);
	assert_int_equal(o.gidmap[0].outer, 2000);
	assert_int_equal(o.gidmap[0].count, 10);
	nl_options_free(&o);

	assert_int_equal(parse_o("lowerdir=/l,uidmapping=x:y", &o), -EINVAL);
	assert_non_null(strstr(err, "malformed uidmapping 'x:y': expected "
				    "stored:shown:count triples"));
	nl_options_free(&o);
	assert_int_equal(parse_o("lowerdir=/l,gidmapping=0:1", &o), -EINVAL);
	assert_non_null(strstr(err, "malformed gidmapping '0:1'"));
	nl_options_free(&o);
}

/* ---- the other options --------------------------------------------------- */

static void test_defaults(void **state)
{
	struct nl_options o;

	(void)state;
	assert_int_equal(parse_o("lowerdir=/l", &o), 0);
	assert_null(o.upperdir);
	assert_null(o.workdir);
	assert_null(o.source);
	assert_false(o.squash_to_root);
	assert_int_equal(o.squash_to_uid, -1);
	assert_int_equal(o.squash_to_gid, -1);
	assert_true(o.fsync);
	assert_false(o.noxattrs);
	assert_false(o.static_nlink);
	assert_false(o.timeout_set);
	assert_true(o.timeout > 0);
	assert_false(o.foreground);
	assert_false(o.ro);
	assert_null(o.fuse_opts);
	assert_int_equal(o.n_extra, 0);
	nl_options_free(&o);
}

static void test_union_flags(void **state)
{
	struct nl_options o;

	(void)state;
	assert_int_equal(parse_o("lowerdir=/l,squash_to_root,squash_to_uid=5,"
				 "squash_to_gid=7,static_nlink,noxattrs=1,fsync=0,"
				 "timeout=2.5", &o), 0);
	assert_true(o.squash_to_root);
	assert_int_equal(o.squash_to_uid, 5);
	assert_int_equal(o.squash_to_gid, 7);
	assert_true(o.static_nlink);
	assert_true(o.noxattrs);
	assert_false(o.fsync);
	assert_true(o.timeout_set);
	assert_true(o.timeout == 2.5);
	assert_null(o.fuse_opts);
	nl_options_free(&o);

	assert_int_equal(parse_o("lowerdir=/l,noxattrs=1,noxattrs=0,fsync=1", &o), 0);
	assert_false(o.noxattrs);
	assert_true(o.fsync);
	nl_options_free(&o);

	assert_int_equal(parse_o("lowerdir=/l,volatile", &o), 0);
	assert_false(o.fsync);
	nl_options_free(&o);
}

static void test_bad_values(void **state)
{
	struct {
		const char *opts;
		const char *msg;
	} cases[] = {
		{ "lowerdir=/l,fsync=2", "fsync= must be 0 or 1" },
		{ "lowerdir=/l,noxattrs=yes", "noxattrs= must be 0 or 1" },
		{ "lowerdir=/l,timeout=abc", "timeout: invalid number" },
		{ "lowerdir=/l,timeout=-1", "timeout: invalid number" },
		{ "lowerdir=/l,timeout=inf", "timeout: invalid number" },
		{ "lowerdir=/l,timeout=nan", "timeout: invalid number" },
		{ "lowerdir=/l,squash_to_uid=-1", "squash_to_uid: invalid id '-1'" },
		{ "lowerdir=/l,squash_to_gid=", "squash_to_gid: invalid id" },
		{ "lowerdir=/l,upperdir=", "upperdir= needs a directory" },
		{ "lowerdir=", "lowerdir= needs at least one directory" },
		{ "lowerdir=/a:", "empty lowerdir component in '/a:'" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_refused(cases[i].opts, cases[i].msg);
}

static void test_fuse_passthrough(void **state)
{
	struct nl_options o;

	(void)state;
	assert_int_equal(parse_o("lowerdir=/l,allow_other,default_permissions,ro,"
				 "dev,suid,noatime,max_read=131072,fsname=a\\,b,"
				 "subtype=nlayerfs", &o), 0);
	assert_string_equal(o.fuse_opts,
			    "allow_other,default_permissions,ro,dev,suid,noatime,"
			    "max_read=131072,fsname=a\\,b,subtype=nlayerfs");
	assert_true(o.ro);
	assert_true(o.allow_other);
	assert_true(o.default_permissions);
	assert_int_equal(o.n_lower, 1);
	assert_int_equal(o.n_extra, 0);
	nl_options_free(&o);

	/* the later of ro/rw wins */
	assert_int_equal(parse_o("lowerdir=/l,ro,rw", &o), 0);
	assert_false(o.ro);
	assert_false(o.allow_other);
	assert_string_equal(o.fuse_opts, "ro,rw");
	nl_options_free(&o);

	/* loop settings are not mount options: libfuse would refuse them */
	assert_int_equal(parse_o("lowerdir=/l,max_threads=8,clone_fd,nodev", &o), 0);
	assert_string_equal(o.fuse_opts, "nodev");
	assert_string_equal(nl_options_extra(&o, "max_threads"), "8");
	assert_string_equal(nl_options_extra(&o, "clone_fd"), "");
	nl_options_free(&o);
}

static void test_parse_string_accumulates(void **state)
{
	struct nl_options o;

	(void)state;
	memset(&o, 0, sizeof(o));
	assert_int_equal(nl_options_parse_string("lowerdir=/a:/b,ro", &o, err,
						 sizeof(err)), 0);
	assert_int_equal(nl_options_parse_string("upperdir=/u,lowerdir=/c,nodev",
						 &o, err, sizeof(err)), 0);
	/* the later lowerdir= replaces the earlier one */
	assert_int_equal(o.n_lower, 1);
	assert_string_equal(o.lowerdirs[0], "/c");
	assert_string_equal(o.upperdir, "/u");
	assert_string_equal(o.fuse_opts, "ro,nodev");
	assert_true(o.ro);
	nl_options_free(&o);
}

static void test_failed_parse_leaves_nothing(void **state)
{
	char *argv[] = { "nlayerfs", "-o", "lowerdir=/a,nvm=/n,allow_other,"
			 "uidmapping=1", "/m", NULL };
	struct nl_options o;

	(void)state;
	assert_int_equal(nl_options_parse(4, argv, &o, err, sizeof(err)), -EINVAL);
	assert_null(o.lowerdirs);
	assert_int_equal(o.n_lower, 0);
	assert_null(o.fuse_opts);
	assert_null(o.extra);
	assert_null(o.mountpoint);
	nl_options_free(&o);	/* still safe */
}

/* @opts parses, passes exactly @fuse_opts to libfuse and keeps nothing for
 * the daemon; returns what the parser printed (caller frees). */
static char *parse_to_fuse_opts(const char *opts, const char *fuse_opts)
{
	struct nl_options o;
	int rc;
	char *out = parse_o_stderr(opts, &o, &rc);

	assert_int_equal(rc, 0);
	assert_string_equal(o.fuse_opts, fuse_opts);
	assert_int_equal(o.n_extra, 0);
	nl_options_free(&o);
	return out;
}

static void test_mount_only_dropped_quietly(void **state)
{
	/* none of what mount(8) consumes reaches libfuse, which would refuse it */
	char *out = parse_to_fuse_opts("lowerdir=/l,allow_other,defaults,noauto,_netdev,"
				       "x-systemd.automount,comment=x", "allow_other");

	(void)state;
	/* ...and it is dropped without noise */
	assert_null(strstr(out, "defaults"));
	assert_null(strstr(out, "x-systemd"));
	free(out);
}

/* A misspelt upperdir= used to give a read-only mount with a warning. */
static void test_unknown_refused(void **state)
{
	struct {
		const char *opts;
		const char *msg;
	} cases[] = {
		{ "lowerdir=/l,uperdir=/u,workdir=/w", "unknown option 'uperdir=/u'" },
		{ "lowerdir=/l,frobnicate=3", "unknown option 'frobnicate=3'" },
		{ "lowerdir=/l,nosiud", "unknown option 'nosiud'" },
		{ "lowerdir=/l,nvm_sise=1G", "unknown option 'nvm_sise=1G'" },
		{ "lowerdir=/l,ro=1", "option 'ro=1' takes no value" },
		{ "lowerdir=/l,volatile=1", "option 'volatile=1' takes no value" },
		{ "lowerdir=/l,fsname", "option 'fsname' needs a value" },
		{ "lowerdir=/l,image", "option 'image' needs a value" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_refused(cases[i].opts, cases[i].msg);
}

/* What podman, containerd and fuse-overlayfs users pass still mounts. */
static void test_compat_options_accepted(void **state)
{
	char *out = parse_to_fuse_opts("lowerdir=/l,threaded=1,xino=off,redirect_dir=off,"
				       "metacopy=on,userxattr,xattr_permissions=2,noacl,"
				       "splice_read,nodev", "nodev");

	(void)state;
	assert_non_null(strstr(out, "'metacopy=on' has no effect"));
	assert_non_null(strstr(out, "'threaded=1' has no effect"));
	free(out);
}

/* The tier library's own keys are mount options without a list here:
 * workers= and index_size= were never in fs/options.c. */
static void test_tier_keys_from_tier_library(void **state)
{
	struct nl_options o;

	(void)state;
	assert_int_equal(parse_o("lowerdir=/l,workers=4,index_size=16M,"
				 "range_slack=0,layer_meta=off", &o), 0);
	assert_string_equal(nl_options_extra(&o, "workers"), "4");
	assert_string_equal(nl_options_extra(&o, "index_size"), "16M");
	assert_string_equal(nl_options_extra(&o, "range_slack"), "0");
	assert_string_equal(nl_options_extra(&o, "layer_meta"), "off");
	assert_null(o.fuse_opts);
	nl_options_free(&o);
}

static void test_extra_options(void **state)
{
	struct nl_options o;

	(void)state;
	assert_int_equal(parse_o("lowerdir=/l,nvm=/nvm,nvm_size=1G,hdd=/hdd,"
				 "trace=on,trace_window=30,promote=off,allow_other,"
				 "config=/c.conf,nvm=/nvm2", &o), 0);
	assert_int_equal(o.n_extra, 8);
	assert_string_equal(o.extra[0], "nvm=/nvm");
	assert_string_equal(o.extra[7], "nvm=/nvm2");
	assert_string_equal(nl_options_extra(&o, "nvm"), "/nvm2");
	assert_string_equal(nl_options_extra(&o, "nvm_size"), "1G");
	assert_string_equal(nl_options_extra(&o, "hdd"), "/hdd");
	assert_string_equal(nl_options_extra(&o, "trace_window"), "30");
	assert_string_equal(nl_options_extra(&o, "trace"), "on");
	assert_string_equal(nl_options_extra(&o, "promote"), "off");
	assert_string_equal(nl_options_extra(&o, "config"), "/c.conf");
	assert_null(nl_options_extra(&o, "zns"));
	assert_null(nl_options_extra(&o, "nv"));
	assert_string_equal(o.fuse_opts, "allow_other");
	nl_options_free(&o);
}

static void test_checkpoint_mount_needs_no_lowerdir(void **state)
{
	struct nl_options o;

	(void)state;
	assert_int_equal(parse_o("zns=/dev/nvme0n1,meta=/pmem/m,zone_bw=100M,"
				 "stripe_unit=1M,bandwidth=500M,admission=strict",
				 &o), 0);
	assert_int_equal(o.n_lower, 0);
	assert_string_equal(nl_options_extra(&o, "zns"), "/dev/nvme0n1");
	assert_string_equal(nl_options_extra(&o, "meta"), "/pmem/m");
	assert_string_equal(nl_options_extra(&o, "zone_bw"), "100M");
	assert_string_equal(nl_options_extra(&o, "stripe_unit"), "1M");
	assert_string_equal(nl_options_extra(&o, "bandwidth"), "500M");
	assert_string_equal(nl_options_extra(&o, "admission"), "strict");
	nl_options_free(&o);

	assert_int_equal(parse_o("image=debian,upperdir=/u,workdir=/w", &o), 0);
	assert_string_equal(nl_options_extra(&o, "image"), "debian");
	nl_options_free(&o);
}

/* ---- command line forms -------------------------------------------------- */

static void test_source_mountpoint_form(void **state)
{
	char *argv[] = { "nlayerfs", "nlayerfs", "/merged", "-o",
			 "rw,lowerdir=/a:/b,upperdir=/u,workdir=/w,dev,suid", NULL };
	struct nl_options o;

	(void)state;
	assert_int_equal(nl_options_parse(5, argv, &o, err, sizeof(err)), 0);
	assert_string_equal(o.source, "nlayerfs");
	assert_string_equal(o.mountpoint, "/merged");
	assert_int_equal(o.n_lower, 2);
	assert_string_equal(o.upperdir, "/u");
	assert_string_equal(o.workdir, "/w");
	assert_string_equal(o.fuse_opts, "rw,dev,suid");
	assert_false(o.foreground);
	nl_options_free(&o);
}

static void test_several_and_glued_o(void **state)
{
	char *argv[] = { "nlayerfs", "-olowerdir=/a", "-f", "-o", "upperdir=/u",
			 "/m", "-oworkdir=/w,allow_other", NULL };
	struct nl_options o;

	(void)state;
	assert_int_equal(nl_options_parse(7, argv, &o, err, sizeof(err)), 0);
	assert_null(o.source);
	assert_string_equal(o.mountpoint, "/m");
	assert_string_equal(o.lowerdirs[0], "/a");
	assert_string_equal(o.upperdir, "/u");
	assert_string_equal(o.workdir, "/w");
	assert_true(o.allow_other);
	assert_true(o.foreground);
	assert_false(o.debug);
	nl_options_free(&o);
}

static void test_debug_implies_foreground(void **state)
{
	char *a1[] = { "nlayerfs", "-d", "-o", "lowerdir=/a", "/m", NULL };
	char *a2[] = { "nlayerfs", "-o", "lowerdir=/a,debug", "/m", NULL };
	struct nl_options o;

	(void)state;
	assert_int_equal(nl_options_parse(5, a1, &o, err, sizeof(err)), 0);
	assert_true(o.debug);
	assert_true(o.foreground);
	nl_options_free(&o);
	assert_int_equal(nl_options_parse(4, a2, &o, err, sizeof(err)), 0);
	assert_true(o.debug);
	assert_true(o.foreground);
	assert_null(o.fuse_opts);
	nl_options_free(&o);
}

static void test_help_and_version_need_nothing(void **state)
{
	char *h[] = { "nlayerfs", "--help", NULL };
	char *h2[] = { "nlayerfs", "-h", NULL };
	char *v[] = { "nlayerfs", "-V", NULL };
	char *v2[] = { "nlayerfs", "--version", NULL };
	struct nl_options o;

	(void)state;
	assert_int_equal(nl_options_parse(2, h, &o, err, sizeof(err)), 0);
	assert_true(o.show_help);
	nl_options_free(&o);
	assert_int_equal(nl_options_parse(2, h2, &o, err, sizeof(err)), 0);
	assert_true(o.show_help);
	nl_options_free(&o);
	assert_int_equal(nl_options_parse(2, v, &o, err, sizeof(err)), 0);
	assert_true(o.show_version);
	assert_false(o.show_help);
	nl_options_free(&o);
	assert_int_equal(nl_options_parse(2, v2, &o, err, sizeof(err)), 0);
	assert_true(o.show_version);
	nl_options_free(&o);
}

static void test_required_options(void **state)
{
	char *no_lower[] = { "nlayerfs", "-o", "upperdir=/u,workdir=/w", "/m", NULL };
	char *no_work[] = { "nlayerfs", "-o", "lowerdir=/l,upperdir=/u", "/m", NULL };
	char *no_mnt[] = { "nlayerfs", "-o", "lowerdir=/l", NULL };
	char *too_many[] = { "nlayerfs", "a", "b", "c", "-o", "lowerdir=/l", NULL };
	char *dangling[] = { "nlayerfs", "/m", "-o", NULL };
	struct nl_options o;

	(void)state;
	assert_int_equal(nl_options_parse(4, no_lower, &o, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "lowerdir is required");
	nl_options_free(&o);
	assert_int_equal(nl_options_parse(4, no_work, &o, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "workdir= is required with upperdir=");
	nl_options_free(&o);
	assert_int_equal(nl_options_parse(3, no_mnt, &o, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "mountpoint"));
	nl_options_free(&o);
	assert_int_equal(nl_options_parse(6, too_many, &o, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "too many arguments"));
	nl_options_free(&o);
	assert_int_equal(nl_options_parse(3, dangling, &o, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "-o needs an argument"));
	nl_options_free(&o);
}

static void test_fd_mountpoint_kept(void **state)
{
	char *argv[] = { "nlayerfs", "src", "/dev/fd/7", "-o", "lowerdir=/l", NULL };
	struct nl_options o;

	(void)state;
	assert_int_equal(nl_options_parse(5, argv, &o, err, sizeof(err)), 0);
	assert_string_equal(o.mountpoint, "/dev/fd/7");
	nl_options_free(&o);
}

static void test_usage_lists_every_option(void **state)
{
	const char *names[] = {
		"lowerdir=", "upperdir=", "workdir=", "squash_to_root",
		"squash_to_uid=", "squash_to_gid=", "uidmapping=", "gidmapping=",
		"static_nlink", "noxattrs=", "fsync=", "timeout=", "allow_other",
		"default_permissions", "nvm=", "nvm_size=", "hdd=", "trace=",
		"trace_window=", "promote=", "config=", "image=", "zns=",
		"meta=", "zone_bw=", "stripe_unit=", "bandwidth=", "admission=",
		"--help", "--version", "-f", "-d", "myprog",
	};
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	(void)state;
	assert_non_null(f);
	nl_options_usage(f, "myprog");
	fclose(f);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strstr(buf, names[i]))
			fail_msg("--help does not mention %s", names[i]);
	free(buf);
}

/* --help once named the fields of uidmapping= the other way round from
 * the parser (and from fuse-overlayfs): the first is the stored id. */
static void test_usage_idmap_order_matches_parser(void **state)
{
	struct nl_idmap *m;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	(void)state;
	assert_int_equal(nl_parse_idmap("1000:0:10", &m), 1);
	assert_int_equal(nl_idmap_to_inner(m, 1, 1000), 0);
	assert_int_equal(nl_idmap_to_outer(m, 1, 0), 1000);
	free(m);
	assert_non_null(f);
	nl_options_usage(f, "nlayerfs");
	fclose(f);
	assert_non_null(strstr(buf, "uidmapping=STORED:SHOWN:N"));
	assert_non_null(strstr(buf, "STORED..STORED+N-1 in the layers show as\n"
				    "                          SHOWN..SHOWN+N-1 in the mount"));
	free(buf);
}

/* ---- validate() on real directories ------------------------------------- */

struct tree {
	char root[64];
	char lower1[128], lower2[128], upper[128], work[128], mnt[128];
	char file[128];
};

static int tree_setup(void **state)
{
	struct tree *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	strcpy(t->root, "/tmp/nl-O-val-XXXXXX");
	if (!mkdtemp(t->root))
		return -1;
	snprintf(t->lower1, sizeof(t->lower1), "%s/lower1", t->root);
	snprintf(t->lower2, sizeof(t->lower2), "%s/lower2", t->root);
	snprintf(t->upper, sizeof(t->upper), "%s/upper", t->root);
	snprintf(t->work, sizeof(t->work), "%s/work", t->root);
	snprintf(t->mnt, sizeof(t->mnt), "%s/mnt", t->root);
	snprintf(t->file, sizeof(t->file), "%s/file", t->root);
	if (mkdir(t->lower1, 0755) || mkdir(t->lower2, 0755) ||
	    mkdir(t->upper, 0755) || mkdir(t->work, 0755) || mkdir(t->mnt, 0755))
		return -1;
	int fd = open(t->file, O_CREAT | O_WRONLY, 0644);
	if (fd < 0)
		return -1;
	close(fd);
	*state = t;
	return 0;
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static int tree_teardown(void **state)
{
	struct tree *t = *state;

	nftw(t->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(t);
	return 0;
}

/* Options for the tree, built by parsing like the daemon does. */
static void tree_options(const struct tree *t, struct nl_options *o,
			 const char *lower, const char *upper, const char *work,
			 const char *mnt)
{
	char opts[2048];
	char *argv[] = { "nlayerfs", "-o", opts, (char *)mnt, NULL };

	if (upper)
		snprintf(opts, sizeof(opts), "lowerdir=%s,upperdir=%s,workdir=%s",
			 lower, upper, work);
	else
		snprintf(opts, sizeof(opts), "lowerdir=%s", lower);
	(void)t;
	assert_int_equal(nl_options_parse(4, argv, o, err, sizeof(err)), 0);
}

static void expect_invalid(const struct nl_options *o, int rc, const char *msg)
{
	int got = nl_options_validate(o, err, sizeof(err));

	if (got != rc || !strstr(err, msg))
		fail_msg("validate: got %d '%s', want %d '%s'", got, err, rc, msg);
}

static void test_validate_ok_and_touches_nothing(void **state)
{
	struct tree *t = *state;
	struct nl_options o;
	char lower[512];
	struct stat before, after;

	snprintf(lower, sizeof(lower), "%s:%s", t->lower1, t->lower2);
	tree_options(t, &o, lower, t->upper, t->work, t->mnt);
	assert_int_equal(stat(t->work, &before), 0);
	assert_int_equal(nl_options_validate(&o, err, sizeof(err)), 0);
	assert_int_equal(stat(t->work, &after), 0);
	/* no work/ subdirectory or anything else created */
	assert_int_equal(after.st_nlink, before.st_nlink);
	assert_int_equal(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
	assert_int_equal(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
	nl_options_free(&o);

	/* read-only mount: no upper, no work */
	tree_options(t, &o, t->lower1, NULL, NULL, t->mnt);
	assert_int_equal(nl_options_validate(&o, err, sizeof(err)), 0);
	nl_options_free(&o);
}

static void test_validate_missing_lowerdir(void **state)
{
	struct tree *t = *state;
	struct nl_options o;
	char lower[512], missing[200];

	snprintf(missing, sizeof(missing), "%s/nope", t->root);
	snprintf(lower, sizeof(lower), "%s:%s", t->lower1, missing);
	tree_options(t, &o, lower, NULL, NULL, t->mnt);
	expect_invalid(&o, -ENOENT, "does not exist");
	assert_non_null(strstr(err, missing));
	assert_non_null(strstr(err, "lowerdir"));
	nl_options_free(&o);
}

static void test_validate_lowerdir_not_directory(void **state)
{
	struct tree *t = *state;
	struct nl_options o;

	tree_options(t, &o, t->file, NULL, NULL, t->mnt);
	expect_invalid(&o, -ENOTDIR, "is not a directory");
	assert_non_null(strstr(err, t->file));
	nl_options_free(&o);
}

static void test_validate_upper_and_work(void **state)
{
	struct tree *t = *state;
	struct nl_options o;
	char missing[200], inner[200];

	snprintf(missing, sizeof(missing), "%s/nope", t->root);
	tree_options(t, &o, t->lower1, missing, t->work, t->mnt);
	expect_invalid(&o, -ENOENT, "upperdir");
	nl_options_free(&o);

	tree_options(t, &o, t->lower1, t->upper, t->file, t->mnt);
	expect_invalid(&o, -ENOTDIR, "workdir");
	nl_options_free(&o);

	tree_options(t, &o, t->lower1, t->upper, t->upper, t->mnt);
	expect_invalid(&o, -EINVAL, "different directories");
	nl_options_free(&o);

	/* nested either way (created and removed here; validate makes nothing) */
	snprintf(inner, sizeof(inner), "%s/w", t->upper);
	assert_int_equal(mkdir(inner, 0755), 0);
	tree_options(t, &o, t->lower1, t->upper, inner, t->mnt);
	expect_invalid(&o, -EINVAL, "inside upperdir");
	nl_options_free(&o);
	tree_options(t, &o, t->lower1, inner, t->upper, t->mnt);
	expect_invalid(&o, -EINVAL, "inside workdir");
	nl_options_free(&o);
	rmdir(inner);
}

static void test_validate_workdir_other_fs(void **state)
{
	struct tree *t = *state;
	struct nl_options o;
	struct stat a, b;
	char shm[] = "/dev/shm/nl-O-work-XXXXXX";

	if (stat("/dev/shm", &a) || stat(t->root, &b) || a.st_dev == b.st_dev) {
		print_message("# /dev/shm is missing or on the same fs as /tmp\n");
		skip();
	}
	assert_non_null(mkdtemp(shm));
	tree_options(t, &o, t->lower1, t->upper, shm, t->mnt);
	expect_invalid(&o, -EXDEV, "not on the same file system");
	assert_non_null(strstr(err, shm));
	nl_options_free(&o);
	rmdir(shm);
}

static void test_validate_mountpoint(void **state)
{
	struct tree *t = *state;
	struct nl_options o;
	char missing[200];

	snprintf(missing, sizeof(missing), "%s/nope", t->root);
	tree_options(t, &o, t->lower1, NULL, NULL, missing);
	expect_invalid(&o, -ENOENT, "mountpoint");
	assert_non_null(strstr(err, "does not exist"));
	nl_options_free(&o);

	tree_options(t, &o, t->lower1, NULL, NULL, t->file);
	expect_invalid(&o, -ENOTDIR, "is not a directory");
	nl_options_free(&o);

	tree_options(t, &o, t->lower1, NULL, NULL, "/proc");
	expect_invalid(&o, -EBUSY,
		       "mountpoint /proc is busy: something is already mounted there");
	nl_options_free(&o);

	tree_options(t, &o, t->lower1, NULL, NULL, "/");
	expect_invalid(&o, -EBUSY, "is busy");
	nl_options_free(&o);

	/* the same busy directory spelled with a trailing slash and a symlink */
	char link[200];
	snprintf(link, sizeof(link), "%s/proclink", t->root);
	assert_int_equal(symlink("/proc", link), 0);
	tree_options(t, &o, t->lower1, NULL, NULL, link);
	expect_invalid(&o, -EBUSY, "is busy");
	nl_options_free(&o);
	unlink(link);
}

/* Permission checks use the effective ids; as root, drop to nobody. */
static void test_validate_permissions(void **state)
{
	struct tree *t = *state;
	struct nl_options o;
	bool as_root = geteuid() == 0;

	assert_int_equal(chmod(t->root, 0755), 0);
	assert_int_equal(chmod(t->lower1, 0311), 0);
	assert_int_equal(chmod(t->lower2, 0755), 0);
	assert_int_equal(chmod(t->upper, 0555), 0);
	if (as_root)
		assert_int_equal(chown(t->work, 65534, 65534), 0);
	if (as_root && seteuid(65534) != 0)
		fail_msg("cannot drop to uid 65534");

	tree_options(t, &o, t->lower1, NULL, NULL, t->mnt);
	int rc1 = nl_options_validate(&o, err, sizeof(err));
	char msg1[512];
	snprintf(msg1, sizeof(msg1), "%s", err);
	nl_options_free(&o);

	tree_options(t, &o, t->lower2, t->upper, t->work, t->mnt);
	int rc2 = nl_options_validate(&o, err, sizeof(err));
	nl_options_free(&o);

	if (as_root)
		assert_int_equal(seteuid(0), 0);
	chmod(t->lower1, 0755);
	chmod(t->upper, 0755);

	assert_int_equal(rc1, -EACCES);
	assert_non_null(strstr(msg1, "is not readable"));
	assert_non_null(strstr(msg1, t->lower1));
	assert_int_equal(rc2, -EACCES);
	assert_non_null(strstr(err, "upperdir"));
	assert_non_null(strstr(err, "is not writable"));
}

static void test_validate_fd_mountpoint(void **state)
{
	struct tree *t = *state;
	struct nl_options o;

	tree_options(t, &o, t->lower1, NULL, NULL, "/dev/fd/9");
	assert_int_equal(nl_options_validate(&o, err, sizeof(err)), 0);
	nl_options_free(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lowerdir_order),
		cmocka_unit_test(test_lowerdir_escaped_colon),
		cmocka_unit_test(test_lowerdir_empty_component),
		cmocka_unit_test(test_lowerdir_via_option_string),
		cmocka_unit_test(test_relative_paths_made_absolute),
		cmocka_unit_test(test_idmap_parse_and_map),
		cmocka_unit_test(test_idmap_errors),
		cmocka_unit_test(test_mapping_options),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_union_flags),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_fuse_passthrough),
		cmocka_unit_test(test_parse_string_accumulates),
		cmocka_unit_test(test_failed_parse_leaves_nothing),
		cmocka_unit_test(test_mount_only_dropped_quietly),
		cmocka_unit_test(test_unknown_refused),
		cmocka_unit_test(test_compat_options_accepted),
		cmocka_unit_test(test_tier_keys_from_tier_library),
		cmocka_unit_test(test_extra_options),
		cmocka_unit_test(test_checkpoint_mount_needs_no_lowerdir),
		cmocka_unit_test(test_source_mountpoint_form),
		cmocka_unit_test(test_several_and_glued_o),
		cmocka_unit_test(test_debug_implies_foreground),
		cmocka_unit_test(test_help_and_version_need_nothing),
		cmocka_unit_test(test_usage_idmap_order_matches_parser),
		cmocka_unit_test(test_required_options),
		cmocka_unit_test(test_fd_mountpoint_kept),
		cmocka_unit_test(test_usage_lists_every_option),
		cmocka_unit_test_setup_teardown(test_validate_ok_and_touches_nothing,
						tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_validate_missing_lowerdir,
						tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_validate_lowerdir_not_directory,
						tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_validate_upper_and_work,
						tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_validate_workdir_other_fs,
						tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_validate_mountpoint,
						tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_validate_permissions,
						tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_validate_fd_mountpoint,
						tree_setup, tree_teardown),
	};

	return cmocka_run_group_tests_name("options", tests, NULL, NULL);
}
