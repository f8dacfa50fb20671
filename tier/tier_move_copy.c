/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The two tree walks of a layer move: a faithful copy of a layer directory
 * (every entry with its type, mode, owner, times, xattrs, symlink target,
 * device number, hard links and holes) and the check that a copy is equal
 * to its source, read back from the disk. Both work from directory
 * descriptors, one name at a time, and never follow a symlink.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include "tier/tier_move.h"

#define MV_BUF (1 << 16)
#define XATTR_LIST_MAX_LEN (64 * 1024)

/* Inodes with several names: source inode -> the other side's inode and
 * the first name copied, so that later names become links of it. */
struct mv_link {
	dev_t dev;
	ino_t ino, other;
	char *rel;
};

struct mv_walk {
	struct tier_ctx *ctx;
	int src_root, dst_root;
	char *buf, *buf2;
	struct mv_link *links;
	size_t nlinks, caplinks;
	uint64_t bytes;
	char *why;		/* what differs, for the log */
	size_t whylen;
};

static struct mv_link *link_find(struct mv_walk *w, const struct stat *st)
{
	for (size_t i = 0; i < w->nlinks; i++)
		if (w->links[i].ino == st->st_ino && w->links[i].dev == st->st_dev)
			return &w->links[i];
	return NULL;
}

static int link_add(struct mv_walk *w, const struct stat *st, ino_t other, const char *rel)
{
	if (w->nlinks == w->caplinks) {
		size_t cap = w->caplinks ? 2 * w->caplinks : 16;
		struct mv_link *v = realloc(w->links, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		w->links = v;
		w->caplinks = cap;
	}
	w->links[w->nlinks] = (struct mv_link){ st->st_dev, st->st_ino, other, strdup(rel) };
	if (!w->links[w->nlinks].rel)
		return -ENOMEM;
	w->nlinks++;
	return 0;
}

static int walk_init(struct mv_walk *w, struct tier_ctx *ctx, int src_root, int dst_root)
{
	memset(w, 0, sizeof(*w));
	w->ctx = ctx;
	w->src_root = src_root;
	w->dst_root = dst_root;
	w->buf = malloc(2 * MV_BUF);
	w->buf2 = w->buf ? w->buf + MV_BUF : NULL;
	return w->buf ? 0 : -ENOMEM;
}

static void walk_fini(struct mv_walk *w)
{
	for (size_t i = 0; i < w->nlinks; i++)
		free(w->links[i].rel);
	free(w->links);
	free(w->buf);
}

static int join(char *out, size_t n, const char *rel, const char *name)
{
	return snprintf(out, n, "%s%s%s", rel, *rel ? "/" : "", name) >= (int)n ? -ENAMETOOLONG : 0;
}

/* The entry @name of the directory @dir as a path for the l*xattr calls,
 * which take no descriptor; "." names the directory itself. */
static void xpath(int dir, const char *name, char *out, size_t n)
{
	snprintf(out, n, "/proc/self/fd/%d/%s", dir, name);
}

/* A new description of the directory @dir, to list it from its start:
 * a dup() would share (and move) the offset of @dir itself. */
static int reopen_dir(int dir)
{
	return openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* ---- copying ---- */

static int copy_xattrs(const char *sp, const char *dp)
{
	char *list = malloc(XATTR_LIST_MAX_LEN), *val = malloc(XATTR_SIZE_MAX);
	ssize_t n = list && val ? llistxattr(sp, list, XATTR_LIST_MAX_LEN) : -1;
	int rc = 0;

	if (n < 0)
		rc = !list || !val ? -ENOMEM : errno == ENOTSUP ? 0 : -errno;
	for (ssize_t off = 0; !rc && off < n; off += (ssize_t)strlen(list + off) + 1) {
		ssize_t vl = lgetxattr(sp, list + off, val, XATTR_SIZE_MAX);

		if (vl < 0 || lsetxattr(dp, list + off, val, (size_t)vl, 0) < 0)
			rc = -errno;
	}
	free(list);
	free(val);
	return rc;
}

/* Owner, mode, xattrs and times of @dname in @ddir from @st (after its
 * contents, which would change its times). */
static int copy_attrs(int sdir, const char *sname, int ddir, const char *dname,
		      const struct stat *st)
{
	struct timespec t[2] = { st->st_atim, st->st_mtim };
	char sp[PATH_MAX], dp[PATH_MAX];
	int rc;

	xpath(sdir, sname, sp, sizeof(sp));
	xpath(ddir, dname, dp, sizeof(dp));
	rc = copy_xattrs(sp, dp);
	if (!rc && fchownat(ddir, dname, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW))
		rc = -errno;
	/* after the owner: chown clears set-id bits */
	if (!rc && !S_ISLNK(st->st_mode) && fchmodat(ddir, dname, st->st_mode & 07777, 0))
		rc = -errno;
	if (!rc && utimensat(ddir, dname, t, AT_SYMLINK_NOFOLLOW))
		rc = -errno;
	return rc;
}

static bool all_zero(const char *p, size_t n)
{
	return n && !p[0] && !memcmp(p, p + 1, n - 1);
}

/* Data of a regular file; runs of zeros stay holes on the copy. */
static int copy_data(struct mv_walk *w, int in, int out, off_t size)
{
	off_t off = 0;

	while (off < size) {
		ssize_t r = pread(in, w->buf, MV_BUF, off);

		if (r <= 0)
			return r ? -errno : -EIO;
		tier_fault("move-copying");
		if (tier_cancelled(w->ctx))
			return -ECANCELED;
		if (!all_zero(w->buf, (size_t)r) && pwrite(out, w->buf, (size_t)r, off) != r)
			return -errno ? -errno : -EIO;
		off += r;
		w->bytes += (uint64_t)r;
	}
	return ftruncate(out, size) ? -errno : 0;
}

static int copy_file(struct mv_walk *w, int sdir, int ddir, const char *name, const struct stat *st)
{
	int in = openat(sdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	int out = in < 0 ? -1 : openat(ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
				       0600);
	int rc = in < 0 || out < 0 ? -errno : 0;

	if (!rc)
		rc = copy_data(w, in, out, st->st_size);
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) && !rc)
		rc = -errno;
	return rc ? rc : copy_attrs(sdir, name, ddir, name, st);
}

static int copy_special(int sdir, int ddir, const char *name, const struct stat *st, char *buf)
{
	int rc;

	if (S_ISLNK(st->st_mode)) {
		ssize_t n = readlinkat(sdir, name, buf, MV_BUF - 1);

		if (n < 0)
			return -errno;
		buf[n] = 0;
		rc = symlinkat(buf, ddir, name) ? -errno : 0;
	} else {
		rc = mknodat(ddir, name, st->st_mode & S_IFMT, st->st_rdev) ? -errno : 0;
	}
	return rc ? rc : copy_attrs(sdir, name, ddir, name, st);
}

static int copy_dir(struct mv_walk *w, int sdir, int ddir, const char *rel);

/* One entry of a directory; a second name of an inode becomes a link. */
static int copy_entry(struct mv_walk *w, int sdir, int ddir, const char *rel, const char *name)
{
	char sub[PATH_MAX];
	struct mv_link *l;
	struct stat st, dst;
	int rc = join(sub, sizeof(sub), rel, name);

	if (!rc && fstatat(sdir, name, &st, AT_SYMLINK_NOFOLLOW))
		rc = -errno;
	if (rc)
		return rc;
	if (S_ISDIR(st.st_mode)) {
		int s, d;

		if (mkdirat(ddir, name, 0700))
			return -errno;
		s = openat(sdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		d = openat(ddir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		rc = s < 0 || d < 0 ? -errno : copy_dir(w, s, d, sub);
		if (s >= 0)
			close(s);
		if (d >= 0)
			close(d);
		return rc ? rc : copy_attrs(sdir, name, ddir, name, &st);
	}
	if (st.st_nlink > 1 && (l = link_find(w, &st)))
		return linkat(w->dst_root, l->rel, ddir, name, 0) ? -errno : 0;
	rc = S_ISREG(st.st_mode) ? copy_file(w, sdir, ddir, name, &st) :
				   copy_special(sdir, ddir, name, &st, w->buf);
	if (!rc && st.st_nlink > 1)
		rc = fstatat(ddir, name, &dst, AT_SYMLINK_NOFOLLOW) ? -errno :
		     link_add(w, &st, dst.st_ino, sub);
	return rc;
}

static int copy_dir(struct mv_walk *w, int sdir, int ddir, const char *rel)
{
	int fd = reopen_dir(sdir);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	int rc = 0;

	if (!d) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		return rc;
	}
	while (!rc && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			rc = copy_entry(w, sdir, ddir, rel, de->d_name);
	closedir(d);
	return rc;
}

int tier_move_copy_tree(struct tier_ctx *ctx, int src, int dst, uint64_t *bytes)
{
	struct mv_walk w;
	struct stat st;
	int rc = walk_init(&w, ctx, src, dst);

	if (!rc)
		rc = copy_dir(&w, src, dst, "");
	if (!rc)
		rc = fstat(src, &st) ? -errno : copy_attrs(src, ".", dst, ".", &st);
	/* one flush of the whole HDD file system instead of one per file */
	if (!rc && syncfs(dst))
		rc = -errno;
	*bytes = w.bytes;
	walk_fini(&w);
	return rc;
}

/* ---- checking ---- */

static int differs(struct mv_walk *w, const char *rel, const char *what)
{
	if (w->why && !*w->why)
		snprintf(w->why, w->whylen, "%s: %s", *rel ? rel : ".", what);
	return -EBADMSG;
}

static bool same_value(const char *pa, const char *pb, const char *name)
{
	char *va = malloc(XATTR_SIZE_MAX), *vb = malloc(XATTR_SIZE_MAX);
	ssize_t x = va ? lgetxattr(pa, name, va, XATTR_SIZE_MAX) : -1;
	ssize_t y = vb ? lgetxattr(pb, name, vb, XATTR_SIZE_MAX) : -1;
	bool eq = x >= 0 && x == y && !memcmp(va, vb, (size_t)x);

	free(va);
	free(vb);
	return eq;
}

/* The same names with the same values (names are listed in the order
 * they were set, so each of one side is looked up on the other). */
static bool same_xattrs(int adir, int bdir, const char *name)
{
	char pa[PATH_MAX], pb[PATH_MAX], *la = malloc(XATTR_LIST_MAX_LEN), *lb = malloc(XATTR_LIST_MAX_LEN);
	ssize_t na = -1, nb = -1;
	bool same;

	xpath(adir, name, pa, sizeof(pa));
	xpath(bdir, name, pb, sizeof(pb));
	if (la && lb) {
		na = llistxattr(pa, la, XATTR_LIST_MAX_LEN);
		nb = llistxattr(pb, lb, XATTR_LIST_MAX_LEN);
	}
	same = la && lb && na == nb;
	for (ssize_t off = 0; same && off < na; off += (ssize_t)strlen(la + off) + 1)
		same = same_value(pa, pb, la + off);
	free(la);
	free(lb);
	return same;
}

/* The copy's bytes as they are on its disk, not in the page cache. */
static int same_data(struct mv_walk *w, int a, int b, off_t size)
{
	posix_fadvise(b, 0, 0, POSIX_FADV_DONTNEED);
	for (off_t off = 0; off < size;) {
		ssize_t x = pread(a, w->buf, MV_BUF, off), y;

		if (x <= 0)
			return x ? -errno : -EIO;
		y = pread(b, w->buf2, (size_t)x, off);
		if (y != x || memcmp(w->buf, w->buf2, (size_t)x))
			return -EBADMSG;
		if (tier_cancelled(w->ctx))
			return -ECANCELED;
		off += x;
		w->bytes += (uint64_t)x;
	}
	return 0;
}

static bool same_meta(const struct stat *a, const struct stat *b)
{
	return (a->st_mode & S_IFMT) == (b->st_mode & S_IFMT) &&
	       (S_ISLNK(a->st_mode) || a->st_mode == b->st_mode) && a->st_uid == b->st_uid &&
	       a->st_gid == b->st_gid && a->st_nlink == b->st_nlink &&
	       (S_ISDIR(a->st_mode) || a->st_size == b->st_size) &&
	       (!S_ISCHR(a->st_mode) && !S_ISBLK(a->st_mode) ? true : a->st_rdev == b->st_rdev) &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* The copy of a second name is a link of the copy of the first. */
static int same_links(struct mv_walk *w, const char *rel, const struct stat *a, const struct stat *b)
{
	struct mv_link *l;

	if (a->st_nlink < 2 || S_ISDIR(a->st_mode))
		return 0;
	l = link_find(w, a);
	if (!l)
		return link_add(w, a, b->st_ino, rel);
	return l->other == b->st_ino ? 0 : differs(w, rel, "hard links differ");
}

static int verify_dir(struct mv_walk *w, int a, int b, const char *rel, uint64_t *entries);

static int verify_symlink(struct mv_walk *w, int adir, int bdir, const char *name,
			  const char *sub)
{
	ssize_t x = readlinkat(adir, name, w->buf, MV_BUF);
	ssize_t y = readlinkat(bdir, name, w->buf2, MV_BUF);

	if (x < 0 || x != y || memcmp(w->buf, w->buf2, (size_t)x))
		return differs(w, sub, "symlink targets differ");
	return 0;
}

/* What is inside an entry: a directory's entries, a file's bytes. */
static int verify_inside(struct mv_walk *w, int adir, int bdir, const char *name,
			 const char *sub, const struct stat *st, uint64_t *entries)
{
	int flags = (S_ISDIR(st->st_mode) ? O_DIRECTORY : 0) | O_RDONLY | O_NOFOLLOW | O_CLOEXEC;
	int a = openat(adir, name, flags), b = openat(bdir, name, flags);
	int rc = a < 0 || b < 0 ? -errno : 0;

	if (!rc && S_ISDIR(st->st_mode))
		rc = verify_dir(w, a, b, sub, entries);
	else if (!rc && same_data(w, a, b, st->st_size))
		rc = differs(w, sub, "contents differ");
	if (a >= 0)
		close(a);
	if (b >= 0)
		close(b);
	return rc;
}

static int verify_contents(struct mv_walk *w, int adir, int bdir, const char *name,
			   const char *sub, const struct stat *st, uint64_t *entries)
{
	if (!same_xattrs(adir, bdir, name))
		return differs(w, sub, "xattrs differ");
	if (S_ISLNK(st->st_mode))
		return verify_symlink(w, adir, bdir, name, sub);
	if (S_ISDIR(st->st_mode) || S_ISREG(st->st_mode))
		return verify_inside(w, adir, bdir, name, sub, st, entries);
	return 0;
}

static int verify_entry(struct mv_walk *w, int adir, int bdir, const char *rel, const char *name,
			uint64_t *entries)
{
	char sub[PATH_MAX];
	struct stat sa, sb;
	int rc = join(sub, sizeof(sub), rel, name);

	if (rc)
		return rc;
	if (fstatat(adir, name, &sa, AT_SYMLINK_NOFOLLOW))
		return -errno;
	if (fstatat(bdir, name, &sb, AT_SYMLINK_NOFOLLOW))
		return errno == ENOENT ? differs(w, sub, "missing in the copy") : -errno;
	if (!same_meta(&sa, &sb))
		return differs(w, sub, "type, mode, owner, size, links or mtime differ");
	rc = same_links(w, sub, &sa, &sb);
	if (!rc)
		rc = verify_contents(w, adir, bdir, name, sub, &sa, entries);
	(*entries)++;
	return rc;
}

static int count_entries(int dir, uint64_t *n)
{
	int fd = reopen_dir(dir);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	*n = 0;
	while ((de = readdir(d)))
		*n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return 0;
}

/* Every entry of @a is in @b and equal; @b has no other. */
static int verify_dir(struct mv_walk *w, int a, int b, const char *rel, uint64_t *entries)
{
	int fd = reopen_dir(a);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	uint64_t here = 0, theirs = 0;
	int rc = 0;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	while (!rc && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		here++;
		rc = verify_entry(w, a, b, rel, de->d_name, entries);
	}
	closedir(d);
	if (!rc)
		rc = count_entries(b, &theirs);
	if (!rc && theirs != here)
		rc = differs(w, rel, "the copy has entries the layer has not");
	return rc;
}

int tier_move_verify_tree(struct tier_ctx *ctx, int src, int dst, char *why, size_t whylen)
{
	struct mv_walk w;
	struct stat a, b;
	uint64_t entries = 0;
	int rc = walk_init(&w, ctx, src, dst);

	w.why = why;
	w.whylen = whylen;
	if (why && whylen)
		*why = 0;
	if (!rc)
		rc = fstat(src, &a) || fstat(dst, &b) ? -errno : 0;
	/* the roots: their mode and owner are what the container's / shows */
	if (!rc && (a.st_mode != b.st_mode || a.st_uid != b.st_uid || a.st_gid != b.st_gid))
		rc = differs(&w, "", "the layer roots differ");
	if (!rc && !same_xattrs(src, dst, "."))
		rc = differs(&w, "", "the roots' xattrs differ");
	if (!rc)
		rc = verify_dir(&w, src, dst, "", &entries);
	walk_fini(&w);
	return rc;
}
