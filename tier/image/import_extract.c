/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Extraction of one layer tarball into a directory in overlay format.
 *
 * Entries are untrusted. Every name is made relative and free of ".." before
 * it is joined to the layer directory, every parent on disk is checked not to
 * be a symlink (a tar may plant "a -> /etc" and then write "a/passwd"), and
 * hard-link targets get the same treatment. libarchive's own secure-symlink
 * check stays on as a second line.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "tier/image/import_private.h"

#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"
#define WH_META ".wh..wh."

struct extractor {
	const char *dir;		/* absolute, no symlinks in it */
	const struct nl_extract_opts *o;
	struct archive *in, *out;
	char **opaque;			/* relative dirs marked opaque */
	size_t n_opaque;
	size_t skipped_devices;
	size_t dropped_xattrs;
	bool root_seen;			/* the tar had a "./" or "/" entry */
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 3, 4)))
static int xfail(struct extractor *x, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(x->err, x->errlen, fmt, ap);
	va_end(ap);
	return r;
}

static bool out_of_space(struct extractor *x)
{
	struct statvfs sv;
	int e = archive_errno(x->out);

	if (e == ENOSPC || e == EDQUOT)
		return true;
	/* libarchive retries a failed create and may report the retry's
	 * EEXIST; the file system says what really happened */
	return statvfs(x->dir, &sv) == 0 && (sv.f_bavail == 0 || (sv.f_files && sv.f_favail == 0));
}

/* A write into the layer failed: say "no space" when that is why. */
static int disk_fail(struct extractor *x, const char *what, const char *rel)
{
	const char *slash = strrchr(x->dir, '/');
	int len = slash ? (int)(slash - x->dir) : (int)strlen(x->dir);

	if (out_of_space(x))
		return xfail(x, -ENOSPC, "no space left on %.*s (%s '%s'): free space there "
			     "or import to another directory", len, x->dir, what, rel);
	return xfail(x, -EIO, "%s '%s': %s", what, rel, archive_error_string(x->out));
}

/* "/" (or "/./") names the layer root, as some tar writers put it. */
static bool is_absolute_root(const char *name)
{
	if (name[0] != '/')
		return false;
	return name[strspn(name, "/.")] == '\0' && !strstr(name, "..");
}

/*
 * Normalise a tar name into @out: drop "./" and "." components and
 * duplicate slashes; refuse absolute names and "..". "" is the layer root.
 */
static int clean_name(const char *name, char *out, size_t outlen)
{
	size_t n = 0;
	const char *p = name;

	if (is_absolute_root(name)) {
		out[0] = '\0';
		return 0;
	}
	if (name[0] == '/')
		return -EPERM;
	while (*p) {
		size_t len = strcspn(p, "/");

		if (len == 2 && p[0] == '.' && p[1] == '.')
			return -EPERM;
		if (len && !(len == 1 && p[0] == '.')) {
			if (n + len + 2 > outlen)
				return -ENAMETOOLONG;
			if (n)
				out[n++] = '/';
			memcpy(out + n, p, len);
			n += len;
		}
		p += len;
		while (*p == '/')
			p++;
	}
	out[n] = '\0';
	return 0;
}

/* Refuse @rel when a directory on its way is a symlink on disk. With
 * @replace, a symlink in the final place is removed, as the entry replaces
 * it; a hard link's target may be a symlink (link(2) does not follow it). */
static int check_on_disk(struct extractor *x, const char *rel, const char *what, bool replace)
{
	char path[PATH_MAX];
	size_t base = strlen(x->dir);
	struct stat st;

	if (snprintf(path, sizeof(path), "%s/%s", x->dir, rel) >= (int)sizeof(path))
		return xfail(x, -ENAMETOOLONG, "%s '%s': name too long", what, rel);
	for (char *p = path + base + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		int r = lstat(path, &st);

		if (r == 0 && S_ISLNK(st.st_mode))
			return xfail(x, -EPERM,
				     "refusing %s '%s': it goes through the symlink '%s' "
				     "(symlink escape)", what, rel, path + base + 1);
		*p = '/';
		if (r != 0)
			return 0;
	}
	if (replace && lstat(path, &st) == 0 && S_ISLNK(st.st_mode) && unlink(path) != 0)
		return xfail(x, -errno, "cannot replace symlink '%s': %s", rel, strerror(errno));
	return 0;
}

static int remember_opaque(struct extractor *x, const char *rel)
{
	char **v = realloc(x->opaque, (x->n_opaque + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	x->opaque = v;
	v[x->n_opaque] = strdup(rel);
	if (!v[x->n_opaque])
		return -ENOMEM;
	x->n_opaque++;
	return 0;
}

static int set_path(struct extractor *x, struct archive_entry *e, const char *rel,
		    bool hardlink)
{
	char path[PATH_MAX];

	if (snprintf(path, sizeof(path), "%s/%s", x->dir, rel) >= (int)sizeof(path))
		return xfail(x, -ENAMETOOLONG, "entry '%s': name too long", rel);
	if (hardlink)
		archive_entry_set_hardlink(e, path);
	else
		archive_entry_set_pathname(e, path);
	return 0;
}

/* ".wh.NAME" becomes the overlay whiteout: a 0/0 character device. */
static void make_whiteout(struct archive_entry *e)
{
	archive_entry_set_hardlink(e, NULL);
	archive_entry_set_symlink(e, NULL);
	archive_entry_set_filetype(e, AE_IFCHR);
	archive_entry_set_perm(e, 0);
	archive_entry_set_rdev(e, 0);
	archive_entry_set_size(e, 0);
	archive_entry_xattr_clear(e);
}

static int copy_data(struct extractor *x, const char *rel)
{
	const void *buf;
	size_t len;
	la_int64_t off;
	int r;

	while ((r = archive_read_data_block(x->in, &buf, &len, &off)) == ARCHIVE_OK) {
		if (archive_write_data_block(x->out, buf, len, off) < ARCHIVE_OK)
			return disk_fail(x, "writing", rel);
	}
	if (r != ARCHIVE_EOF)
		return xfail(x, -EINVAL, "reading '%s': %s (truncated or corrupt tar?)", rel,
			     archive_error_string(x->in));
	return 0;
}

/* ".wh." + "", "." or ".." would hide the directory holding it. */
static bool names_a_file(const char *name)
{
	return *name && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

/* Rewrites a whiteout entry in place; *skip when nothing is to be written. */
static int whiteout_entry(struct extractor *x, struct archive_entry *e, char *rel, bool *skip)
{
	char *slash = strrchr(rel, '/');
	char *base = slash ? slash + 1 : rel;

	*skip = false;
	if (strncmp(base, WH_PREFIX, strlen(WH_PREFIX)) != 0)
		return 0;
	if (strcmp(base, WH_OPAQUE) == 0) {
		*skip = true;
		if (slash)
			*slash = '\0';
		else
			rel[0] = '\0';
		return remember_opaque(x, rel);
	}
	if (strncmp(base, WH_META, strlen(WH_META)) == 0) {
		*skip = true;	/* aufs bookkeeping (.wh..wh.plnk...), no meaning here */
		return 0;
	}
	if (!names_a_file(base + strlen(WH_PREFIX)))
		return xfail(x, -EINVAL, "refusing whiteout entry '%s': it names no file, and "
			     "would white out the whole directory '%.*s'", rel,
			     slash ? (int)(slash - rel) : 1, slash ? rel : "/");
	if (!x->o->mknod_whiteouts)
		return 0;
	memmove(base, base + strlen(WH_PREFIX), strlen(base) - strlen(WH_PREFIX) + 1);
	make_whiteout(e);
	return 0;
}

/* Overlay xattrs other than opaque (redirect, metacopy, origin, ...) would
 * be obeyed by the kernel's overlayfs on these layers: an image must not
 * redirect a lookup or pass a file off as metadata only. */
static bool overlay_xattr_dropped(const char *name)
{
	static const char *const ns[] = { "trusted.overlay.", "user.overlay." };

	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
		if (strncmp(name, ns[i], strlen(ns[i])) == 0)
			return strcmp(name + strlen(ns[i]), "opaque") != 0;
	return false;
}

struct xattr_copy {
	char *name;
	void *value;
	size_t size;
};

static int drop_overlay_xattrs(struct extractor *x, struct archive_entry *e)
{
	int n = archive_entry_xattr_reset(e), kept = 0, r = 0;
	struct xattr_copy *keep;
	const char *name;
	const void *value;
	size_t size;

	if (n <= 0)
		return 0;
	keep = calloc((size_t)n, sizeof(*keep));
	if (!keep)
		return -ENOMEM;
	while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
		if (overlay_xattr_dropped(name)) {
			x->dropped_xattrs++;
			continue;
		}
		keep[kept].name = strdup(name);
		keep[kept].value = malloc(size ? size : 1);
		if (!keep[kept].name || !keep[kept].value) {
			r = -ENOMEM;
			kept++;
			break;
		}
		memcpy(keep[kept].value, value, size);
		keep[kept++].size = size;
	}
	if (!r && kept < n) {
		archive_entry_xattr_clear(e);
		for (int i = 0; i < kept; i++)
			archive_entry_xattr_add_entry(e, keep[i].name, keep[i].value, keep[i].size);
	}
	for (int i = 0; i < kept; i++) {
		free(keep[i].name);
		free(keep[i].value);
	}
	free(keep);
	return r;
}

static bool is_device(struct archive_entry *e)
{
	return archive_entry_filetype(e) == AE_IFCHR || archive_entry_filetype(e) == AE_IFBLK;
}

static int one_entry(struct extractor *x, struct archive_entry *e)
{
	char rel[PATH_MAX], link[PATH_MAX];
	const char *name = archive_entry_pathname(e), *hl = archive_entry_hardlink(e);
	bool skip;
	int r;

	if (!name)
		return xfail(x, -EINVAL, "an entry has no readable name (corrupt tar?)");
	r = clean_name(name, rel, sizeof(rel));
	if (r == -ENAMETOOLONG)
		return xfail(x, r, "refusing entry '%.64s...': path too long (%zu bytes, at most "
			     "%d)", name, strlen(name), PATH_MAX - 1);
	if (r)
		return xfail(x, r, "refusing entry '%s': absolute path or '..' (path traversal)",
			     name);
	r = whiteout_entry(x, e, rel, &skip);
	if (r || skip)
		return r;
	if (!*rel)
		x->root_seen = true;
	r = drop_overlay_xattrs(x, e);
	if (r)
		return xfail(x, r, "entry '%s': %s", rel, strerror(-r));
	r = check_on_disk(x, rel, "entry", true);
	if (!r && hl && !archive_entry_hardlink(e))
		hl = NULL;	/* turned into a whiteout */
	if (!r && hl) {
		if (clean_name(hl, link, sizeof(link)) == -ENAMETOOLONG)
			return xfail(x, -ENAMETOOLONG, "refusing hard link '%s': target path too "
				     "long (%zu bytes)", rel, strlen(hl));
		if (clean_name(hl, link, sizeof(link)) != 0 || !*link)
			return xfail(x, -EPERM, "refusing hard link '%s' -> '%s': target "
				     "outside the layer", rel, hl);
		r = check_on_disk(x, link, "hard link target", false);
		/* A hard link carrying data would be written through its
		 * target, which may be a symlink: the target's data is what a
		 * link shares anyway. */
		archive_entry_set_size(e, 0);
		if (!r)
			r = set_path(x, e, link, true);
	}
	if (!r)
		r = set_path(x, e, rel, false);
	if (r)
		return r;
	if (archive_write_header(x->out, e) < ARCHIVE_WARN) {
		if (is_device(e) && archive_errno(x->out) == EPERM) {
			x->skipped_devices++;	/* no CAP_MKNOD: the layer works without */
			return 0;
		}
		return disk_fail(x, "cannot create", rel);
	}
	if (!hl)
		r = copy_data(x, rel);
	if (!r && archive_write_finish_entry(x->out) < ARCHIVE_WARN)
		return disk_fail(x, "cannot finish", rel);
	return r;
}

/* The opaque dir may have no entry of its own in the tar: create it (and
 * its parents) once nothing on its way is a symlink. */
static int opaque_dir(struct extractor *x, const char *rel, char *path, size_t len)
{
	char marker[PATH_MAX];
	size_t base = strlen(x->dir);
	int r;

	snprintf(marker, sizeof(marker), "%s%s" WH_OPAQUE, rel, *rel ? "/" : "");
	r = check_on_disk(x, marker, "opaque marker", false);
	if (r)
		return r;
	if (snprintf(path, len, "%s%s%s/", x->dir, *rel ? "/" : "", rel) >= (int)len)
		return xfail(x, -ENAMETOOLONG, "opaque dir '%s': name too long", rel);
	for (char *p = path + base + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST)
			return xfail(x, -errno, "cannot create '%s': %s", rel, strerror(errno));
		*p = '/';
	}
	path[strlen(path) - 1] = '\0';
	return 0;
}

/* Without CAP_SYS_ADMIN the trusted xattr is refused; the ".wh..wh..opq"
 * marker is the form nlayerfs also reads. */
static int mark_opaque(struct extractor *x, const char *rel)
{
	char path[PATH_MAX], marker[PATH_MAX + 16];
	int fd, r = opaque_dir(x, rel, path, sizeof(path));

	if (r)
		return r;
	if (lsetxattr(path, "trusted.overlay.opaque", "y", 1, 0) == 0)
		return 0;
	if (errno != EPERM && errno != ENOTSUP)
		return xfail(x, -errno, "cannot mark '%s' opaque: %s", rel, strerror(errno));
	snprintf(marker, sizeof(marker), "%s/" WH_OPAQUE, path);
	fd = open(marker, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return xfail(x, -errno, "cannot mark '%s' opaque: %s", rel, strerror(errno));
	close(fd);
	return 0;
}

/* Layer tars written by podman, buildah and skopeo have no "./" entry: the
 * root would keep mkdtemp's 0700 and lock every other user out of the
 * image. Runtimes show such a root as 0755. */
static int default_root_mode(struct extractor *x)
{
	if (chmod(x->dir, 0755) != 0)
		return xfail(x, -errno, "cannot set the mode of the layer root: %s",
			     strerror(errno));
	return 0;
}

static int open_streams(struct extractor *x, const char *blob)
{
	int flags = ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
		    ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_ACL |
		    ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT;

	x->in = archive_read_new();
	x->out = archive_write_disk_new();
	if (!x->in || !x->out)
		return -ENOMEM;
	archive_read_support_filter_gzip(x->in);
	archive_read_support_filter_zstd(x->in);
	archive_read_support_format_tar(x->in);
	/* numeric owners: an image's uids are not this host's user names */
	archive_write_disk_set_options(x->out, flags);
	if (archive_read_open_filename(x->in, blob, 128 * 1024) != ARCHIVE_OK)
		return xfail(x, -EINVAL, "not a tar layer: %s", archive_error_string(x->in));
	return 0;
}

static int extract_all(struct extractor *x)
{
	struct archive_entry *e;
	int r = 0, ar;

	while (!r && (ar = archive_read_next_header(x->in, &e)) != ARCHIVE_EOF) {
		if (ar < ARCHIVE_WARN)
			return xfail(x, -EINVAL, "bad tar: %s", archive_error_string(x->in));
		r = one_entry(x, e);
		if (x->o->progress)
			__atomic_store_n(x->o->progress, (uint64_t)archive_filter_bytes(x->in, -1),
					 __ATOMIC_RELAXED);
	}
	if (!r && archive_write_close(x->out) < ARCHIVE_WARN)
		r = xfail(x, -EIO, "finishing the layer: %s", archive_error_string(x->out));
	for (size_t i = 0; !r && i < x->n_opaque; i++)
		r = mark_opaque(x, x->opaque[i]);
	if (!r && !x->root_seen)
		r = default_root_mode(x);
	return r;
}

int nl_extract_layer(const char *blob, const char *dir, const struct nl_extract_opts *o,
		     char *err, size_t errlen)
{
	struct extractor x = { .dir = dir, .o = o, .err = err, .errlen = errlen };
	int r = open_streams(&x, blob);

	if (!r)
		r = extract_all(&x);
	if (o->skipped_devices)
		*o->skipped_devices = x.skipped_devices;
	if (o->dropped_xattrs)
		*o->dropped_xattrs = x.dropped_xattrs;
	if (x.in)
		archive_read_free(x.in);
	if (x.out)
		archive_write_free(x.out);
	for (size_t i = 0; i < x.n_opaque; i++)
		free(x.opaque[i]);
	free(x.opaque);
	return r;
}
