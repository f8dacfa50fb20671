/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Copy-up: the first change to a lower entry copies it to the upper layer.
 *
 * The copy is built under a temporary name in workdir/work, which is on
 * the upper file system, and renamed into place only when complete, so a
 * crash never leaves a half copy in the merged tree.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs/union/union.h"

int nl_make_temp_name(struct nl_mount *m, char *buf, size_t len)
{
	unsigned long long seq = __atomic_add_fetch(&m->tmp_seq, 1, __ATOMIC_RELAXED);

	return snprintf(buf, len, "#nl.%d.%llu", (int)getpid(), seq) >= (int)len ?
	       -ENAMETOOLONG : 0;
}

/* Copies the xattrs a user can see; overlay's markers stay behind because
 * an opaque marker copied up would hide the lower part of the directory. */
static void copy_xattrs(struct nl_mount *m, int layer, const char *path, const char *tmp)
{
	char list[65536], *name;
	char value[65536];
	ssize_t ln, vn;
	int dst = openat(m->workfd, tmp, O_PATH | O_NOFOLLOW | O_CLOEXEC);

	if (dst < 0)
		return;
	ln = nl_lower_listxattr(m, layer, path, list, sizeof(list));
	for (name = list; ln > 0 && name < list + ln; name += strlen(name) + 1) {
		if (nl_xattr_is_private(name))
			continue;
		vn = nl_lower_getxattr(m, layer, path, name, value, sizeof(value));
		if (vn >= 0)
			nl_fd_setxattr(dst, name, value, vn, 0);
	}
	close(dst);
}

/* A short write of a regular file is a full file system. */
static int write_all(int fd, const char *buf, ssize_t n, off_t pos)
{
	ssize_t w = pwrite(fd, buf, n, pos);

	return w < 0 ? -errno : w != n ? -ENOSPC : 0;
}

/* Data segments only, so that sparse files stay sparse. */
static int copy_data(int in, int out, off_t size)
{
	off_t data = 0, hole, pos;
	char buf[1 << 16];
	ssize_t n;
	int r = 0;

	while (data < size) {
		data = lseek(in, data, SEEK_DATA);
		if (data < 0)
			break;
		hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			hole = size;
		for (pos = data; pos < hole; pos += n) {
			loff_t ip = pos, op = pos;

			n = copy_file_range(in, &ip, out, &op, hole - pos, 0);
			if (n < 0 && (errno == EXDEV || errno == EINVAL ||
				      errno == ENOSYS || errno == EOPNOTSUPP)) {
				n = pread(in, buf, sizeof(buf) < (size_t)(hole - pos) ?
					  sizeof(buf) : (size_t)(hole - pos), pos);
				if (n > 0)
					r = write_all(out, buf, n, pos);
				if (r)
					return r;
			}
			if (n < 0)
				return -errno;
			if (n == 0)
				break;
		}
		data = hole;
	}
	return ftruncate(out, size) ? -errno : 0;
}

static int copy_file(struct nl_mount *m, int layer, const char *path,
		     const char *tmp, const struct stat *st)
{
	int in, out, r;

	/* where the data is: a written-back file's layer file is a hole */
	in = nl_tier_open_data(m, layer, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW, NULL);
	if (in < 0)
		return in;
	out = openat(m->workfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0) {
		r = -errno;
		close(in);
		return r;
	}
	r = copy_data(in, out, st->st_size);
	close(in);
	if (close(out) && !r)
		r = -errno;
	return r;
}

static int make_copy(struct nl_mount *m, int layer, const char *path,
		     const char *tmp, const struct stat *st)
{
	char target[PATH_MAX + 1];
	ssize_t n;

	switch (st->st_mode & S_IFMT) {
	case S_IFREG:
		return copy_file(m, layer, path, tmp, st);
	case S_IFDIR:
		return mkdirat(m->workfd, tmp, 0700) ? -errno : 0;
	case S_IFLNK:
		n = nl_lower_readlink(m, layer, path, target, sizeof(target) - 1);
		if (n < 0)
			return n;
		target[n] = '\0';
		return symlinkat(target, m->workfd, tmp) ? -errno : 0;
	default:
		return mknodat(m->workfd, tmp, st->st_mode & S_IFMT, st->st_rdev) ?
		       -errno : 0;
	}
}

/* Owner, then mode (chown clears set-id bits), then times. */
static int copy_attrs(struct nl_mount *m, const char *tmp, const struct stat *st)
{
	struct timespec ts[2] = { st->st_atim, st->st_mtim };

	if (fchownat(m->workfd, tmp, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW))
		return -errno;
	if (!S_ISLNK(st->st_mode) &&
	    fchmodat(m->workfd, tmp, st->st_mode & 07777, 0))
		return -errno;
	if (utimensat(m->workfd, tmp, ts, AT_SYMLINK_NOFOLLOW))
		return -errno;
	return 0;
}

static void remove_temp(struct nl_mount *m, const char *tmp)
{
	if (unlinkat(m->workfd, tmp, 0) && errno == EISDIR)
		unlinkat(m->workfd, tmp, AT_REMOVEDIR);
}

/* A copy-up in progress: the lower entry and its temporary copy. */
struct nl_copy {
	struct nl_node *n;
	char path[NL_PATH_BUF];	/* relative path, the same in every layer */
	char tmp[64];		/* name of the copy in workdir/work */
	struct stat st;		/* the lower entry */
	bool linked;		/* tmp is a link to an earlier copy */
};

/* Another name of this hard-linked lower file was copied up already: this
 * name becomes a link to that copy instead of a second, diverging copy. */
static int link_to_copy(struct nl_mount *m, struct nl_copy *c)
{
	char copy[NL_PATH_BUF];
	struct nl_at at;
	int r;

	if (nl_linked_copy(m, c->st.st_dev, c->st.st_ino, copy, sizeof(copy)))
		return -ENOENT;
	r = nl_at_parent(m->upper->fd, copy, &at);
	if (r)
		return r;
	r = linkat(at.dfd, at.name, m->workfd, c->tmp, 0) ? -errno : 0;
	nl_at_done(&at);
	return r;
}

static int build_copy(struct nl_mount *m, struct nl_copy *c)
{
	int r;

	if (!S_ISDIR(c->st.st_mode) && c->st.st_nlink > 1) {
		r = link_to_copy(m, c);
		c->linked = r == 0;
		if (r != -ENOENT)
			return r;
	}
	r = make_copy(m, c->n->layer, c->path, c->tmp, &c->st);
	if (!r && !m->opt->noxattrs)
		copy_xattrs(m, c->n->layer, c->path, c->tmp);
	if (!r)
		r = copy_attrs(m, c->tmp, &c->st);
	return r;
}

/*
 * Move the finished copy into its upper directory, reached as the node
 * tree has it at this moment. Putting an entry into an upper directory
 * must not change the times the merged tree shows for that directory.
 * Caller holds m->names.
 */
static int commit_copy(struct nl_mount *m, struct nl_copy *c)
{
	struct stat pst, ust;
	struct timespec ts[2];
	struct nl_at at;
	int r;

	if (c->n->unlinked)
		return -ENOENT;	/* removed while it was being copied */
	r = nl_node_path(m, c->n, c->path, sizeof(c->path));
	if (!r)
		r = nl_at_parent(m->upper->fd, c->path, &at);
	if (r)
		return r;
	r = fstatat(at.dfd, "", &pst, AT_EMPTY_PATH) ? -errno : 0;
	if (!r && renameat(m->workfd, c->tmp, at.dfd, at.name))
		r = -errno;
	if (!r) {
		ts[0] = pst.st_atim;
		ts[1] = pst.st_mtim;
		utimensat(at.dfd, "", ts, AT_EMPTY_PATH);
	}
	if (!r && !c->linked && fstatat(at.dfd, at.name, &ust, AT_SYMLINK_NOFOLLOW) == 0) {
		nl_origin_add(m, &ust, &c->st);
		if (!S_ISDIR(c->st.st_mode) && c->st.st_nlink > 1)
			nl_linkcount_track(m, c->st.st_dev, c->st.st_ino, c->st.st_nlink,
					   c->path, ust.st_ino);
	}
	nl_at_done(&at);
	return r;
}

/*
 * The copy is made without m->names (a big file takes a while, and the
 * lower entry cannot change), and moved into place with it: a rename or
 * an unlink of the node's name is then either wholly before or after.
 */
static int copy_up_locked(struct nl_mount *m, struct nl_node *n)
{
	struct nl_copy c = { .n = n };
	int r;

	r = nl_node_path(m, n, c.path, sizeof(c.path));
	if (!r)
		r = nl_lower_lstat(m, n->layer, c.path, &c.st);
	if (!r)
		r = nl_make_temp_name(m, c.tmp, sizeof(c.tmp));
	if (r)
		return r;
	r = build_copy(m, &c);
	if (!r) {
		pthread_rwlock_rdlock(&m->names);
		r = commit_copy(m, &c);
		if (!r) {
			n->layer = 0;
			if (!S_ISDIR(c.st.st_mode))
				n->lowest = 0;
		}
		pthread_rwlock_unlock(&m->names);
	}
	if (r)
		remove_temp(m, c.tmp);
	return r;
}

int nl_copy_up(struct nl_mount *m, struct nl_node *n)
{
	int r;

	if (!m->upper)
		return -EROFS;
	if (n == &m->root || n->layer == 0)
		return 0;
	/* Ancestors first, and without holding this node's lock, so locks
	 * are only ever taken one at a time. */
	r = nl_copy_up(m, n->parent);
	if (r)
		return r;
	pthread_mutex_lock(&n->lock);
	r = n->layer == 0 ? 0 : copy_up_locked(m, n);
	pthread_mutex_unlock(&n->lock);
	return r;
}

/* Copies a whole directory tree up, so that it can be moved as a unit. */
int nl_copy_up_tree(struct nl_mount *m, struct nl_node *n)
{
	struct nl_dirlist l;
	struct nl_node *c;
	struct stat st;
	size_t i;
	int r, layer, lowest;

	r = nl_copy_up(m, n);
	if (r || n->type != S_IFDIR || n->lowest == 0)
		return r;
	r = nl_dir_list(m, n, &l);
	for (i = 0; r == 0 && i < l.n; i++) {
		r = nl_resolve(m, n, l.ents[i].name, 0, &layer, &lowest, &st);
		if (r)
			break;
		if (layer == 0 && !S_ISDIR(st.st_mode))
			continue;
		c = nl_node_get(m, n, l.ents[i].name);
		if (!c) {
			r = -ENOMEM;
			break;
		}
		if (c->nlookup == 1) {
			c->layer = layer;
			c->lowest = lowest;
			c->type = st.st_mode & S_IFMT;
		}
		r = nl_copy_up_tree(m, c);
		nl_node_forget(m, c, 1);
	}
	nl_dir_list_free(&l);
	if (r == 0)
		n->lowest = 0;
	return r;
}

/* Replace whatever the upper directory @dfd has at @name with a whiteout. */
int nl_whiteout_at(struct nl_mount *m, int dfd, const char *name)
{
	char tmp[64], wh[NAME_MAX + 1];
	struct stat st;
	int r;

	r = nl_make_temp_name(m, tmp, sizeof(tmp));
	if (r)
		return r;
	if (mknodat(m->workfd, tmp, S_IFCHR | 0, makedev(0, 0)) == 0) {
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
			r = nl_clear_upper_dir(dfd, name);
			if (!r && renameat2(m->workfd, tmp, dfd, name, RENAME_EXCHANGE))
				r = -errno;
			if (!r && unlinkat(m->workfd, tmp, AT_REMOVEDIR))
				r = -errno;
		} else if (renameat(m->workfd, tmp, dfd, name)) {
			r = -errno;
		}
		if (r)
			remove_temp(m, tmp);
		return r;
	}
	if (errno != EPERM)
		return -errno;
	/* No device nodes here (an unprivileged mount): the old marker. */
	if (unlinkat(dfd, name, 0) && errno == EISDIR) {
		r = nl_clear_upper_dir(dfd, name);
		if (r || unlinkat(dfd, name, AT_REMOVEDIR))
			return r ? r : -errno;
	}
	if (snprintf(wh, sizeof(wh), ".wh.%s", name) >= (int)sizeof(wh))
		return -ENAMETOOLONG;
	r = openat(dfd, wh, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0);
	if (r < 0)
		return -errno;
	close(r);
	return 0;
}

int nl_set_opaque(int dfd, const char *name)
{
	int fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	int r;

	if (fd < 0)
		return -errno;
	r = nl_fd_setxattr(fd, "trusted.overlay.opaque", "y", 1, 0);
	if (r)
		r = nl_fd_setxattr(fd, "user.overlay.opaque", "y", 1, 0);
	close(fd);
	return r;
}

/* An upper directory that is empty in the merged view may still hold
 * whiteouts and markers; they go before the directory itself can. */
int nl_clear_upper_dir(int dfd, const char *name)
{
	struct dirent *de;
	struct stat st;
	DIR *d;
	int fd, r = 0;

	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		if (nl_is_whiteout(&st) || nl_name_is_private(de->d_name)) {
			if (unlinkat(fd, de->d_name, 0))
				r = -errno;
		} else {
			r = -ENOTEMPTY;
		}
	}
	closedir(d);
	return r;
}
