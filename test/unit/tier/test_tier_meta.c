/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Metadata images of HDD layers: an image of a generated tree answers
 * lstat, readdir, readlink, getxattr and listxattr exactly as the layer
 * does; corrupt, truncated, foreign and stale images are refused and
 * rebuilt; a hot-first image answers only inside its covered directories;
 * image bytes count in the NVM budget.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <dirent.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <openssl/evp.h>

#include "test/unit/tier/test_tier_common.h"
#include "tier/meta/meta.h"

struct fx {
	struct tdirs d;
	struct tier_ctx *ctx;
	int layer;
	char **paths;		/* every entry of l1, "." first */
	size_t n;
	bool can_mknod;
};

static void add_path(struct fx *f, const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	assert_true(vasprintf(&p, fmt, ap) > 0);
	va_end(ap);
	f->paths = realloc(f->paths, (f->n + 1) * sizeof(*f->paths));
	f->paths[f->n++] = p;
}

static void at(const struct fx *f, const char *rel, char *out)
{
	snprintf(out, PATH_MAX, "%s/%s", f->d.l1, rel);
}

static void mk(struct fx *f, const char *rel, mode_t mode)
{
	char p[PATH_MAX];

	at(f, rel, p);
	if (S_ISDIR(mode))
		assert_int_equal(mkdir(p, mode & 07777), 0);
	else if (S_ISFIFO(mode))
		assert_int_equal(mkfifo(p, mode & 07777), 0);
	else
		twrite(f->d.l1, rel, 10, 1);
	add_path(f, "%s", rel);
}

static void xset(struct fx *f, const char *rel, const char *name, const void *v, size_t n)
{
	char p[PATH_MAX];

	at(f, rel, p);
	assert_int_equal(lsetxattr(p, name, v, n, 0), 0);
}

/* Every kind of entry a layer holds. */
static void make_tree(struct fx *f)
{
	char p[PATH_MAX], q[PATH_MAX], name[256], deep[PATH_MAX] = "deep";
	/* VFS_CAP_REVISION_2, cap_net_bind_service permitted */
	const uint32_t cap[5] = { 0x02000001, 1u << 10, 0, 0, 0 };

	add_path(f, ".");
	mk(f, "etc", S_IFDIR | 0755);
	mk(f, "etc/passwd", S_IFREG);
	mk(f, "etc/empty", S_IFDIR | 0700);
	mk(f, "bin", S_IFDIR | 0755);
	mk(f, "bin/ping", S_IFREG);
	xset(f, "bin/ping", "security.capability", cap, sizeof(cap));
	xset(f, "bin/ping", "user.origin", "layer one", 9);
	at(f, "bin/ping", p);
	chmod(p, 04755);
	chown(p, 12, 34);
	mk(f, "bin/sh", S_IFREG);
	at(f, "bin/sh", p);
	at(f, "bin/dash", q);
	assert_int_equal(link(p, q), 0);	/* hard link */
	add_path(f, "bin/dash");
	at(f, "bin/ls", p);
	assert_int_equal(symlink("../usr/bin/ls-with-a-long-target", p), 0);
	add_path(f, "bin/ls");
	mk(f, "run", S_IFDIR | 0755);
	mk(f, "run/fifo", S_IFIFO | 0600);
	mk(f, "gone", S_IFDIR | 0755);
	at(f, "gone/whiteout", p);
	f->can_mknod = mknod(p, S_IFCHR | 0, makedev(0, 0)) == 0;
	if (f->can_mknod)
		add_path(f, "gone/whiteout");
	mk(f, "gone/.wh.oldname", S_IFREG);
	mk(f, "opq", S_IFDIR | 0755);
	xset(f, "opq", "trusted.overlay.opaque", "y", 1);
	mk(f, "opq2", S_IFDIR | 0755);
	xset(f, "opq2", "user.overlay.opaque", "y", 1);
	mk(f, "opq2/inner", S_IFREG);
	mk(f, "opq3", S_IFDIR | 0755);
	mk(f, "opq3/.wh..wh..opq", S_IFREG);
	at(f, "sparse", p);
	{
		int fd = open(p, O_WRONLY | O_CREAT, 0644);

		assert_true(fd >= 0);
		assert_int_equal(pwrite(fd, "x", 1, 50 << 20), 1);
		close(fd);
	}
	add_path(f, "sparse");
	memset(name, 'n', 255);
	name[255] = '\0';
	mk(f, name, S_IFREG);
	for (int i = 0; i < 40; i++) {
		mk(f, deep, S_IFDIR | 0755);
		strcat(deep, i % 2 ? "/d" : "/e");
	}
	mk(f, deep, S_IFREG);
	xset(f, ".", "user.rootattr", "r", 1);
	/* times with nanoseconds */
	{
		struct timespec ts[2] = { { 1000, 123456789 }, { 2000, 987654321 } };

		at(f, "etc/passwd", p);
		assert_int_equal(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW), 0);
	}
}

static struct tier_config conf(const struct fx *f, uint64_t budget)
{
	struct tier_config c = tconf(&f->d, false);

	c.trace = true;
	c.nvm_size = budget;
	return c;
}

static void ctx_open(struct fx *f, uint64_t budget)
{
	struct tier_config c = conf(f, budget);
	char err[256];

	assert_int_equal(tier_open(&c, &f->ctx, err, sizeof(err)), 0);
	tier_config_free(&c);
	f->layer = tier_layer_add(f->ctx, f->d.l1);
	assert_true(f->layer >= 0);
	assert_int_equal(tier_layer_add(f->ctx, f->d.l2), 1);
	assert_int_equal(tier_meta_start(f->ctx), 0);
}

static void ctx_close(struct fx *f)
{
	tier_close(f->ctx);
	f->ctx = NULL;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	tdirs_make(&f->d);
	make_tree(f);
	ctx_open(f, 0);
	assert_int_equal(tier_meta_build(f->ctx, f->layer), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	ctx_close(f);
	tdirs_remove(&f->d);
	for (size_t i = 0; i < f->n; i++)
		free(f->paths[i]);
	free(f->paths);
	free(f);
	return 0;
}

static void img_file(const struct fx *f, int layer, char *out)
{
	snprintf(out, PATH_MAX, "%s/meta/%s.img", f->d.nvm, tier_layer_id(f->ctx, layer));
}

static void same_stat(const char *what, const struct stat *a, const struct stat *b)
{
	if (memcmp(a, b, offsetof(struct stat, st_atim)) || a->st_atim.tv_sec != b->st_atim.tv_sec ||
	    a->st_atim.tv_nsec != b->st_atim.tv_nsec || a->st_mtim.tv_sec != b->st_mtim.tv_sec ||
	    a->st_mtim.tv_nsec != b->st_mtim.tv_nsec || a->st_ctim.tv_sec != b->st_ctim.tv_sec ||
	    a->st_ctim.tv_nsec != b->st_ctim.tv_nsec)
		fail_msg("%s: attributes differ (mode %o/%o size %lld/%lld ino %llu/%llu)", what,
			 a->st_mode, b->st_mode, (long long)a->st_size, (long long)b->st_size,
			 (unsigned long long)a->st_ino, (unsigned long long)b->st_ino);
}

/* Names, types and inode numbers of a real directory, read with
 * O_NOATIME so that the comparison leaves access times alone. */
static char *real_listing(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOATIME);
	DIR *d = fdopendir(fd);
	char **v = NULL, *out = calloc(1, 1);
	size_t n = 0, len = 0;
	struct dirent *de;

	assert_non_null(d);
	while ((de = readdir(d))) {
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW);
		v = realloc(v, (n + 1) * sizeof(*v));
		assert_true(asprintf(&v[n++], "%s %o %llu\n", de->d_name, st.st_mode & S_IFMT,
				     (unsigned long long)de->d_ino) > 0);
	}
	closedir(d);
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (strcmp(v[i], v[j]) > 0) {
				char *t = v[i];

				v[i] = v[j];
				v[j] = t;
			}
	for (size_t i = 0; i < n; i++) {
		out = realloc(out, len + strlen(v[i]) + 1);
		strcpy(out + len, v[i]);
		len += strlen(v[i]);
		free(v[i]);
	}
	free(v);
	return out;
}

struct acc {
	char *s;
	size_t len;
};

static int acc_ent(void *arg, const char *name, const struct stat *st)
{
	struct acc *a = arg;
	char line[400];
	int n = snprintf(line, sizeof(line), "%s %o %llu\n", name, st->st_mode & S_IFMT,
			 (unsigned long long)st->st_ino);

	a->s = realloc(a->s, a->len + (size_t)n + 1);
	memcpy(a->s + a->len, line, (size_t)n + 1);
	a->len += (size_t)n;
	return 0;
}

static void check_xattrs(struct fx *f, int layer, const char *rel, const char *real)
{
	char rl[4096], ml[4096], rv[4096], mv[4096];
	ssize_t rn = llistxattr(real, rl, sizeof(rl));
	ssize_t mn = tier_meta_listxattr(f->ctx, layer, rel, ml, sizeof(ml));

	assert_true(rn >= 0);
	assert_int_equal(mn, rn);
	assert_memory_equal(ml, rl, (size_t)rn);
	assert_int_equal(tier_meta_listxattr(f->ctx, layer, rel, NULL, 0), rn);
	if (rn > 0)
		assert_int_equal(tier_meta_listxattr(f->ctx, layer, rel, ml, (size_t)rn - 1), -ERANGE);
	for (char *x = rl; x < rl + rn; x += strlen(x) + 1) {
		ssize_t a = lgetxattr(real, x, rv, sizeof(rv));
		ssize_t b = tier_meta_getxattr(f->ctx, layer, rel, x, mv, sizeof(mv));

		assert_int_equal(b, a);
		assert_memory_equal(mv, rv, (size_t)a);
		assert_int_equal(tier_meta_getxattr(f->ctx, layer, rel, x, NULL, 0), a);
		if (a > 1)
			assert_int_equal(tier_meta_getxattr(f->ctx, layer, rel, x, mv, (size_t)a - 1),
					 -ERANGE);
	}
	assert_int_equal(tier_meta_getxattr(f->ctx, layer, rel, "user.not-there", mv, sizeof(mv)),
			 -ENODATA);
}

/* Every attribute, listing, link and xattr of every entry. */
static void check_all(struct fx *f, int layer)
{
	for (size_t i = 0; i < f->n; i++) {
		const char *rel = f->paths[i];
		char real[PATH_MAX];
		struct stat a, b;

		at(f, rel, real);
		assert_int_equal(lstat(real, &a), 0);
		assert_int_equal(tier_meta_lstat(f->ctx, layer, rel, &b), 0);
		same_stat(rel, &a, &b);
		if (S_ISLNK(a.st_mode)) {
			char t1[PATH_MAX], t2[PATH_MAX];
			ssize_t n1 = readlink(real, t1, sizeof(t1));

			assert_int_equal(tier_meta_readlink(f->ctx, layer, rel, t2, sizeof(t2)), n1);
			assert_memory_equal(t1, t2, (size_t)n1);
			assert_int_equal(tier_meta_readlink(f->ctx, layer, rel, t2, 3), 3);
		} else {
			char t[8];

			assert_int_equal(tier_meta_readlink(f->ctx, layer, rel, t, sizeof(t)), -EINVAL);
		}
		if (strlen(real) < PATH_MAX - 1)
			check_xattrs(f, layer, rel, real);
		if (S_ISDIR(a.st_mode)) {
			struct acc acc = { calloc(1, 1), 0 };
			char *want = real_listing(real);

			assert_int_equal(tier_meta_readdir(f->ctx, layer, rel, acc_ent, &acc), 0);
			assert_string_equal(acc.s, want);
			free(acc.s);
			free(want);
		} else {
			assert_int_equal(tier_meta_readdir(f->ctx, layer, rel, acc_ent, NULL), -ENOTDIR);
		}
	}
}

static void test_every_attribute(void **state)
{
	struct fx *f = *state;
	struct stat st;

	check_all(f, f->layer);
	/* absence is known in a covered directory */
	assert_int_equal(tier_meta_lstat(f->ctx, f->layer, "etc/nothing", &st), -ENOENT);
	assert_int_equal(tier_meta_lstat(f->ctx, f->layer, "nothing/deeper", &st), -ENOENT);
	assert_int_equal(tier_meta_lstat(f->ctx, f->layer, "etc/passwd/x", &st), -ENOTDIR);
	/* l2 is empty and has its own image */
	assert_int_equal(tier_meta_build(f->ctx, 1), 0);
	assert_int_equal(tier_meta_lstat(f->ctx, 1, "etc", &st), -ENOENT);
	assert_int_equal(tier_meta_lstat(f->ctx, 1, ".", &st), 0);
	/* an unknown layer is simply not covered */
	assert_int_equal(tier_meta_lstat(f->ctx, 7, "etc", &st), TIER_META_MISS);
}

static void test_survives_reopen(void **state)
{
	struct fx *f = *state;
	struct tier_meta_status s;

	ctx_close(f);
	ctx_open(f, 0);
	assert_int_equal(tier_meta_status(f->ctx, &s), 0);
	assert_int_equal(s.layers, 2);	/* l1 and the empty l2 */
	assert_int_equal(s.builds, 0);	/* opened, not rebuilt */
	check_all(f, f->layer);
}

/* Reopen, expect the image refused (lookups miss) and a rebuild after. */
static void expect_rebuilt(struct fx *f, uint64_t builds)
{
	struct tier_meta_status s;
	struct stat st;

	ctx_close(f);
	ctx_open(f, 0);
	assert_int_equal(tier_meta_lstat(f->ctx, f->layer, "etc/passwd", &st), TIER_META_MISS);
	assert_int_equal(tier_meta_wait(f->ctx, false, 30000), 0);
	assert_int_equal(tier_meta_status(f->ctx, &s), 0);
	assert_int_equal(s.layers, 2);
	assert_int_equal(s.builds, builds);
	check_all(f, f->layer);
}

static void expect_refused_then_rebuilt(struct fx *f)
{
	expect_rebuilt(f, 1);
}

static void flip_byte(const char *path, off_t off)
{
	int fd = open(path, O_RDWR);
	unsigned char c;

	assert_int_equal(pread(fd, &c, 1, off), 1);
	c ^= 0x40;
	assert_int_equal(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

static void test_corrupt_refused(void **state)
{
	struct fx *f = *state;
	char p[PATH_MAX];
	struct stat st;

	img_file(f, f->layer, p);
	assert_int_equal(stat(p, &st), 0);
	flip_byte(p, st.st_size / 2);
	expect_refused_then_rebuilt(f);
	assert_int_equal(truncate(p, st.st_size - 100), 0);
	expect_refused_then_rebuilt(f);
	assert_int_equal(truncate(p, 10), 0);
	expect_refused_then_rebuilt(f);
}

/* A copy of @buf whose header says @version, sealed again. */
static void reseal(void *buf, size_t len)
{
	struct tier_meta_hdr *h = buf;
	unsigned int n;
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	memset(h->sha256, 0, 32);
	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	EVP_DigestUpdate(c, buf, len);
	EVP_DigestFinal_ex(c, h->sha256, &n);
	EVP_MD_CTX_free(c);
}

static void test_version_and_layer_refused(void **state)
{
	struct fx *f = *state;
	char p[PATH_MAX], q[PATH_MAX], why[256];
	size_t len = 0;
	char *buf;

	img_file(f, f->layer, p);
	buf = tread(p, &len);
	assert_int_equal(tier_meta_img_check(buf, len, tier_layer_id(f->ctx, f->layer), why,
					     sizeof(why)), 0);
	((struct tier_meta_hdr *)buf)->version = TIER_META_VERSION + 1;
	reseal(buf, len);
	assert_int_equal(tier_meta_img_check(buf, len, NULL, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "version"));
	((struct tier_meta_hdr *)buf)->version = TIER_META_VERSION;
	((struct tier_meta_hdr *)buf)->off_ents += 8;
	reseal(buf, len);
	assert_int_equal(tier_meta_img_check(buf, len, NULL, why, sizeof(why)), -EINVAL);
	free(buf);
	/* the same file written with a bad version is refused at open */
	buf = tread(p, &len);
	((struct tier_meta_hdr *)buf)->version = TIER_META_VERSION + 1;
	reseal(buf, len);
	assert_int_equal(tier_meta_write(strcat(strcpy(q, f->d.nvm), "/meta"),
					 tier_layer_id(f->ctx, f->layer), buf, len), 0);
	free(buf);
	expect_refused_then_rebuilt(f);
	/* another layer's image under this layer's name */
	assert_int_equal(tier_meta_build(f->ctx, 1), 0);
	img_file(f, 1, q);
	assert_int_equal(rename(q, p), 0);
	expect_rebuilt(f, 2);		/* l1's and the moved l2's */
}

static void test_stale_layer(void **state)
{
	struct fx *f = *state;
	struct tier_meta_status s;
	char p[PATH_MAX];
	struct stat st, real;

	/* a new top-level entry changes the root: refused at open */
	twrite(f->d.l1, "newfile", 3, 2);
	add_path(f, "newfile");
	expect_refused_then_rebuilt(f);
	/* a deep change found by the data-open cross-check */
	at(f, "etc/passwd", p);
	twrite(f->d.l1, "etc/passwd", 99, 3);
	assert_int_equal(tier_meta_lstat(f->ctx, f->layer, "etc/passwd", &st), 0);
	assert_int_equal(st.st_size, 10);	/* stale until found */
	assert_int_equal(lstat(p, &real), 0);
	assert_int_equal(tier_meta_check(f->ctx, f->layer, "etc/passwd", &real), 1);
	assert_int_equal(tier_meta_lstat(f->ctx, f->layer, "etc/passwd", &st), TIER_META_MISS);
	assert_int_equal(tier_meta_wait(f->ctx, false, 30000), 0);
	check_all(f, f->layer);
	/* a matching file is no change */
	assert_int_equal(lstat(p, &real), 0);
	assert_int_equal(tier_meta_check(f->ctx, f->layer, "etc/passwd", &real), 0);
	/* a deep change found by the verification walk */
	at(f, "bin/sh", p);
	assert_int_equal(chmod(p, 0700), 0);
	assert_int_equal(tier_meta_status(f->ctx, &s), 0);
	assert_int_equal(s.rebuilds, 2);	/* the root change, the cross-check */
	assert_int_equal(tier_meta_wait(f->ctx, true, 30000), 0);
	assert_int_equal(tier_meta_status(f->ctx, &s), 0);
	assert_int_equal(s.rebuilds, 3);
	check_all(f, f->layer);
	/* an unchanged layer verifies without a rebuild */
	assert_int_equal(tier_meta_wait(f->ctx, true, 30000), 0);
	assert_int_equal(tier_meta_status(f->ctx, &s), 0);
	assert_int_equal(s.rebuilds, 3);
}

static bool is_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return !strncmp(path, dir, n) && (path[n] == '/' || path[n] == '\0');
}

static void test_hot_first_budget(void **state)
{
	struct fx *f = *state;
	struct tier_meta_status s;
	struct tier_status ts;
	char p[PATH_MAX];
	struct stat st, real;
	uint64_t full;

	assert_int_equal(tier_meta_status(f->ctx, &s), 0);
	assert_int_equal(tier_status(f->ctx, &ts), 0);
	assert_int_equal(ts.meta_bytes, s.bytes);
	assert_int_equal(ts.nvm_used, s.bytes);	/* no copies: only the images */
	img_file(f, f->layer, p);
	assert_int_equal(stat(p, &st), 0);
	full = (uint64_t)st.st_size;
	assert_true(full < s.bytes);		/* l2 has its own */

	/* a start traced bin/ping; the budget holds less than the whole image */
	tier_trace_open(f->ctx, f->layer, "bin/ping", 10);
	assert_true(tier_trace_flush(f->ctx) >= 0);
	ctx_close(f);
	unlink(p);
	ctx_open(f, full / 2);
	assert_int_equal(tier_meta_wait(f->ctx, false, 30000), 0);
	assert_int_equal(tier_meta_status(f->ctx, &s), 0);
	assert_int_equal(s.layers, 2);
	assert_int_equal(s.partial, 1);
	assert_true(s.bytes <= full / 2);
	assert_int_equal(tier_status(f->ctx, &ts), 0);
	assert_true(ts.nvm_used <= ts.nvm_budget);
	assert_int_equal(ts.meta_bytes, s.bytes);
	for (size_t i = 0; i < f->n; i++) {
		const char *rel = f->paths[i];
		/* covered: the root and bin, so their entries are exact */
		bool in = !strchr(rel, '/') || (is_under(rel, "bin") && !strchr(rel + 4, '/'));
		int r = tier_meta_lstat(f->ctx, f->layer, rel, &st);

		if (in) {
			at(f, rel, p);
			assert_int_equal(r, 0);
			assert_int_equal(lstat(p, &real), 0);
			same_stat(rel, &real, &st);
		} else {
			assert_int_equal(r, TIER_META_MISS);
		}
	}
	assert_int_equal(tier_meta_lstat(f->ctx, f->layer, "bin/nothing", &st), -ENOENT);
	assert_int_equal(tier_meta_lstat(f->ctx, f->layer, "nothing/x", &st), -ENOENT);
	assert_int_equal(tier_meta_lstat(f->ctx, f->layer, "etc/nothing", &st), TIER_META_MISS);
	assert_int_equal(tier_meta_readdir(f->ctx, f->layer, "etc", acc_ent, NULL), TIER_META_MISS);
	/* an uncovered directory without the marker: known not opaque */
	assert_int_equal(tier_meta_lstat(f->ctx, f->layer, "etc/.wh..wh..opq", &st), -ENOENT);
	assert_int_equal(tier_meta_lstat(f->ctx, f->layer, "opq3/.wh..wh..opq", &st), TIER_META_MISS);
	{
		struct acc acc = { calloc(1, 1), 0 };
		char *want;

		at(f, "bin", p);
		want = real_listing(p);
		assert_int_equal(tier_meta_readdir(f->ctx, f->layer, "bin", acc_ent, &acc), 0);
		assert_string_equal(acc.s, want);
		free(acc.s);
		free(want);
	}
	/* a budget too small for even that: no image, nothing over budget */
	img_file(f, f->layer, p);
	ctx_close(f);
	unlink(p);
	ctx_open(f, 512);
	assert_int_equal(tier_meta_wait(f->ctx, false, 30000), 0);
	assert_int_equal(tier_meta_status(f->ctx, &s), 0);
	assert_int_equal(s.layers, 1);		/* the empty l2's fits */
	assert_int_equal(tier_status(f->ctx, &ts), 0);
	assert_true(ts.nvm_used <= 512);
	assert_int_equal(tier_meta_lstat(f->ctx, f->layer, "bin", &st), TIER_META_MISS);
	/* back to unlimited for the other tests */
	ctx_close(f);
	ctx_open(f, 0);
	assert_int_equal(tier_meta_build(f->ctx, f->layer), 0);
}

/* A lookup the partial image cannot answer puts its directory into the
 * next build, ahead of the whole layer: afterwards that directory is
 * answered exactly, names missing from it are known not to exist, and
 * directories nobody looked into stay uncovered. */
static void test_missed_dirs_first(void **state)
{
	struct fx *f = *state;
	struct tier_meta_status s;
	struct stat st, real;
	char p[PATH_MAX];
	uint64_t full;

	img_file(f, f->layer, p);
	assert_int_equal(stat(p, &st), 0);
	full = (uint64_t)st.st_size;
	ctx_close(f);
	unlink(p);
	ctx_open(f, full / 2);		/* room for a partial image only */
	assert_int_equal(tier_meta_wait(f->ctx, false, 30000), 0);
	assert_int_equal(tier_meta_status(f->ctx, &s), 0);
	assert_int_equal(s.partial, 1);
	assert_int_equal(tier_meta_lstat(f->ctx, f->layer, "etc/passwd", &st), TIER_META_MISS);
	assert_int_equal(tier_meta_readdir(f->ctx, f->layer, "run", acc_ent, NULL), TIER_META_MISS);

	assert_int_equal(tier_meta_wait(f->ctx, false, 30000), 0);
	assert_int_equal(tier_meta_status(f->ctx, &s), 0);
	assert_int_equal(s.partial, 1);
	assert_int_equal(tier_meta_lstat(f->ctx, f->layer, "etc/passwd", &st), 0);
	at(f, "etc/passwd", p);
	assert_int_equal(lstat(p, &real), 0);
	same_stat("etc/passwd", &real, &st);
	assert_int_equal(tier_meta_lstat(f->ctx, f->layer, "etc/nothing", &st), -ENOENT);
	{
		struct acc acc = { calloc(1, 1), 0 };
		char *want;

		at(f, "run", p);
		want = real_listing(p);
		assert_int_equal(tier_meta_readdir(f->ctx, f->layer, "run", acc_ent, &acc), 0);
		assert_string_equal(acc.s, want);
		free(acc.s);
		free(want);
	}
	assert_int_equal(tier_meta_lstat(f->ctx, f->layer, "bin/ping", &st), TIER_META_MISS);
	ctx_close(f);
	ctx_open(f, 0);
	assert_int_equal(tier_meta_build(f->ctx, f->layer), 0);
}

/* A walk asked to stop (the unmount) ends at once, with no image. */
static void test_build_stops(void **state)
{
	struct fx *f = *state;
	_Atomic bool stop = true;
	struct tier_meta_cover c = { .full = true, .stop = &stop };
	const char *id = tier_layer_id(f->ctx, f->layer);
	void *buf = NULL;
	size_t len = 0;

	assert_int_equal(tier_meta_build_mem(f->d.l1, id, &c, &buf, &len), -ECANCELED);
	assert_null(buf);
	atomic_store(&stop, false);
	assert_int_equal(tier_meta_build_mem(f->d.l1, id, &c, &buf, &len), 0);
	assert_non_null(buf);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_every_attribute, setup, teardown),
		cmocka_unit_test_setup_teardown(test_survives_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_version_and_layer_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_layer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hot_first_budget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missed_dirs_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_build_stops, setup, teardown),
	};

	if (geteuid() != 0) {
		printf("# SKIP test_tier_meta: needs root (trusted.* and security.* xattrs)\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
