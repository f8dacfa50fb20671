/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Attributes and file data.
 *
 * Reads are answered with the file descriptor itself, so the kernel can
 * splice the data instead of copying it through this process.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fs/union/union.h"

/* @range (may be NULL) gets the range state of a big file, or NULL. */
static int open_lower(struct nl_mount *m, struct nl_node *n, const char *path, int flags,
		      struct nl_range **range)
{
	char copy[NL_PATH_BUF];
	struct stat st;
	int fd;

	/* A hard link whose sibling was copied up reads the shared copy. */
	if (m->upper && __atomic_load_n(&m->linkcounts, __ATOMIC_RELAXED) &&
	    nl_lower_lstat(m, n->layer, path, &st) == 0 && st.st_nlink > 1 &&
	    nl_linked_copy(m, st.st_dev, st.st_ino, copy, sizeof(copy)) == 0)
		fd = nl_open_beneath(m->upper->fd, copy, flags, 0);
	else if (m->tier)
		fd = nl_tier_open_data(m, n->layer, path, flags, range);
	else
		fd = nl_open_beneath(m->layers[n->layer].fd, path, flags, 0);
	return fd;
}

int nl_open_lower_data(struct nl_mount *m, struct nl_node *n, const char *path,
		       int flags)
{
	return open_lower(m, n, path, flags, NULL);
}

void nl_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct nl_mount *m = nl_mount_of(req);
	/* a lower descriptor may be a promoted copy: the layer has the attributes */
	int fd = fi && !nl_file_of(m, fi)->lower ? nl_fd_of(m, fi) : -1;
	struct stat st;
	int r = nl_node_stat(m, nl_node_of(m, ino), fd, &st);

	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, nl_attr_timeout(m, &st));
}

static int set_mode(int h, mode_t mode)
{
	char p[32];

	nl_fd_path(h, p, sizeof(p));
	return chmod(p, mode & 07777) ? -errno : 0;
}

static int set_size(int h, off_t size)
{
	int fd = nl_fd_reopen(h, O_WRONLY | O_NONBLOCK);
	int r;

	if (fd < 0)
		return fd;
	r = ftruncate(fd, size) ? -errno : 0;
	close(fd);
	return r;
}

static int set_times(int h, const struct stat *attr, int to_set)
{
	struct timespec ts[2] = { { 0, UTIME_OMIT }, { 0, UTIME_OMIT } };

	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		ts[0].tv_nsec = UTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_ATIME)
		ts[0] = attr->st_atim;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		ts[1].tv_nsec = UTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_MTIME)
		ts[1] = attr->st_mtim;
	return utimensat(h, "", ts, AT_EMPTY_PATH) ? -errno : 0;
}

/* Each change goes through a handle of the upper file (never a path), so
 * it lands on the file the node names even if a rename races it. */
static int setattr_upper(struct nl_mount *m, struct nl_node *n, int h,
			 const struct stat *attr, int to_set)
{
	uid_t uid = -1;
	gid_t gid = -1;
	int r = 0;

	if (to_set & FUSE_SET_ATTR_MODE)
		r = n->type == S_IFLNK ? -EOPNOTSUPP : set_mode(h, attr->st_mode);
	if (to_set & FUSE_SET_ATTR_UID)
		uid = nl_uid_to_outer(m, attr->st_uid);
	if (to_set & FUSE_SET_ATTR_GID)
		gid = nl_gid_to_outer(m, attr->st_gid);
	if (!r && (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) &&
	    fchownat(h, "", uid, gid, AT_EMPTY_PATH))
		r = -errno;
	if (!r && (to_set & FUSE_SET_ATTR_SIZE))
		r = set_size(h, attr->st_size);
	if (!r && (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
			     FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW)))
		r = set_times(h, attr, to_set);
	return r;
}

static int apply_setattr(struct nl_mount *m, struct nl_node *n,
			 const struct stat *attr, int to_set)
{
	int h, r;

	r = nl_copy_up(m, n);
	if (r)
		return r;
	h = nl_node_handle(m, n);
	if (h < 0)
		return h;
	r = setattr_upper(m, n, h, attr, to_set);
	close(h);
	return r;
}

void nl_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		   int to_set, struct fuse_file_info *fi)
{
	struct nl_mount *m = nl_mount_of(req);
	struct nl_node *n = nl_node_of(m, ino);
	struct stat st;
	int r;

	r = m->upper ? apply_setattr(m, n, attr, to_set) : -EROFS;
	if (!r)
		r = nl_node_stat(m, n, n->unlinked ? nl_fd_of(m, fi) : -1, &st);
	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, nl_attr_timeout(m, &st));
}

void nl_op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct nl_mount *m = nl_mount_of(req);
	struct nl_node *n = nl_node_of(m, ino);
	char path[NL_PATH_BUF], target[PATH_MAX + 1];
	ssize_t len;

	pthread_rwlock_rdlock(&m->names);
	len = nl_node_path(m, n, path, sizeof(path));
	if (!len)
		len = nl_lower_readlink(m, n->layer, path, target, sizeof(target) - 1);
	pthread_rwlock_unlock(&m->names);
	if (len < 0) {
		fuse_reply_err(req, (int)-len);
		return;
	}
	target[len] = '\0';
	fuse_reply_readlink(req, target);
}

static bool wants_write(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
}

/* A descriptor of @n opened with @flags, and the range state of a big
 * lower file (NULL otherwise); *lower says which layer it is on. */
static int open_node(struct nl_mount *m, struct nl_node *n, int flags, bool *lower,
		     struct nl_range **range)
{
	char path[NL_PATH_BUF];
	int fd, r = 0;

	if (wants_write(flags))
		r = m->upper ? nl_copy_up(m, n) : -EROFS;
	if (r)
		return r;
	*lower = !(n->layer == 0 && m->upper);
	/* A lower layer never changes: its path needs no lock. */
	if (!*lower)
		fd = nl_node_open_upper(m, n, flags);
	else if (!(fd = nl_node_path(m, n, path, sizeof(path))))
		fd = open_lower(m, n, path, flags, range);
	return fd;
}

/* Open @n for @fi (an open, or a create that found the name taken): the
 * handle is in fi->fh, counted in the node's opens. */
int nl_file_open(struct nl_mount *m, struct nl_node *n, struct fuse_file_info *fi)
{
	/* The kernel places appends itself (at the size it knows) and sends
	 * their offset: a write the next server gets again after a kill then
	 * lands where it did, not once more at the end. */
	int flags = (fi->flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_APPEND)) | O_CLOEXEC;
	struct nl_range *range = NULL;
	bool lower;
	int fd, r;

	/* Counted before the file is reached by its name: an unlink or a
	 * rename over it from then on keeps the file for a server after this
	 * one (orphan.c), the open's descriptor being the file it kept. */
	nl_node_opened(n);
	fd = open_node(m, n, flags, &lower, &range);
	if (fd < 0) {
		r = fd;
		goto out;
	}
	r = nl_file_new(m, n, fi, fd, lower);
	if (r) {
		close(fd);
		goto out;
	}
	nl_file_of(m, fi)->range = range;
	/* Lower data never changes: the kernel may keep its pages. */
	fi->keep_cache = lower;
	fi->noflush = !wants_write(fi->flags);
	return 0;
out:
	nl_node_closed(n);
	nl_range_free(range);
	return r;
}

void nl_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct nl_mount *m = nl_mount_of(req);
	struct nl_node *n = nl_node_of(m, ino);
	int r = nl_file_open(m, n, fi);

	if (r) {
		fuse_reply_err(req, -r);
	} else if (fuse_reply_open(req, fi)) {
		nl_node_closed(n);
		nl_file_free(m, fi);
	}
}

/*
 * The file behind a handle a server before this one opened: opened again
 * from its node, without what only the first open does (create, truncate).
 * An upper file that lost its name cannot be reached again.
 */
int nl_file_reopen(struct nl_mount *m, struct nl_node *n, int flags, struct nl_file **out)
{
	struct nl_range *range = NULL;
	struct nl_file *f;
	bool lower;
	int fd;

	flags = (flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_APPEND)) | O_CLOEXEC;
	fd = open_node(m, n, flags, &lower, &range);
	if (fd < 0)
		return fd;
	f = malloc(sizeof(*f));
	if (!f) {
		close(fd);
		nl_range_free(range);
		return -ENOMEM;
	}
	*f = (struct nl_file){ .fd = fd, .old_fd = -1, .lower = lower, .range = range };
	*out = f;
	return 0;
}

int nl_file_new(struct nl_mount *m, struct nl_node *n, struct fuse_file_info *fi, int fd,
		bool lower)
{
	struct nl_file *f = malloc(sizeof(*f));
	int r;

	if (!f)
		return -ENOMEM;
	f->fd = fd;
	f->old_fd = -1;
	f->lower = lower;
	f->range = NULL;
	r = nl_handle_new(m, NL_TAB_FILE, n, fi->flags, f, &fi->fh);
	if (r)
		free(f);
	return r;
}

void nl_file_free(struct nl_mount *m, struct fuse_file_info *fi)
{
	struct nl_file *f = nl_file_of(m, fi);

	nl_handle_free(m, fi->fh);
	if (f->fd >= 0)
		close(f->fd);
	if (f->old_fd >= 0)
		close(f->old_fd);
	nl_range_free(f->range);
	free(f);
}

/* The file was copied up after this descriptor was opened on the lower
 * layer: read the copy from now on. The lower descriptor stays open until
 * release, since another thread may be reading through it right now. */
static void follow_copy_up(struct nl_mount *m, struct nl_node *n,
			   struct nl_file *f)
{
	int fd;

	pthread_mutex_lock(&n->lock);
	if (f->lower && f->old_fd < 0) {
		fd = nl_node_open_upper(m, n, O_RDONLY);
		if (fd >= 0) {
			f->old_fd = f->fd;
			__atomic_store_n(&f->fd, fd, __ATOMIC_RELEASE);
			f->lower = false;
		}
	}
	pthread_mutex_unlock(&n->lock);
}

void nl_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi)
{
	struct nl_mount *m = nl_mount_of(req);
	struct nl_node *n = nl_node_of(m, ino);
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	struct nl_file *f = nl_file_of(m, fi);

	if (f->lower && n->layer == 0 && m->upper)
		follow_copy_up(m, n, f);
	/* a file copied up since its open no longer reads lower ranges */
	if (f->range && __atomic_load_n(&f->old_fd, __ATOMIC_ACQUIRE) < 0) {
		nl_range_read(req, f->range, nl_fd_of(m, fi), size, off);
		return;
	}
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = nl_fd_of(m, fi);
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

void nl_op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in,
		     off_t off, struct fuse_file_info *fi)
{
	struct nl_mount *m = nl_mount_of(req);
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
	ssize_t n;

	(void)ino;
	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = nl_fd_of(m, fi);
	out.buf[0].pos = off;
	n = fuse_buf_copy(&out, in, 0);
	if (n < 0)
		fuse_reply_err(req, -n);
	else
		fuse_reply_write(req, n);
}

void nl_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct nl_mount *m = nl_mount_of(req);
	int fd;

	(void)ino;
	/* a handle no server has: see nl_op_release */
	if (!nl_file_of(m, fi)) {
		fuse_reply_err(req, 0);
		return;
	}
	fd = dup(nl_fd_of(m, fi));
	/* close() of a duplicate reports delayed write errors, as close()
	 * of the caller's descriptor would on a local file system. */
	fuse_reply_err(req, fd < 0 ? errno : close(fd) ? errno : 0);
}

void nl_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct nl_mount *m = nl_mount_of(req);
	struct nl_node *n = nl_node_of(m, ino);

	/* carried out by the server before, which died before it answered:
	 * the kernel sends it again, to a server without the handle */
	if (!nl_file_of(m, fi)) {
		fuse_reply_err(req, 0);
		return;
	}
	nl_node_closed(n);
	nl_orphan_closed(m, n);
	nl_file_free(m, fi);
	fuse_reply_err(req, 0);
}

void nl_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		 struct fuse_file_info *fi)
{
	struct nl_mount *m = nl_mount_of(req);
	int r = 0;

	(void)ino;
	if (m->opt->fsync)
		r = datasync ? fdatasync(nl_fd_of(m, fi)) : fsync(nl_fd_of(m, fi));
	fuse_reply_err(req, r ? errno : 0);
}

void nl_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
		     off_t length, struct fuse_file_info *fi)
{
	struct nl_mount *m = nl_mount_of(req);
	(void)ino;
	fuse_reply_err(req, fallocate(nl_fd_of(m, fi), mode, offset, length) ? errno : 0);
}

/* The descriptor with the file's real layout: for a big lower file whose
 * descriptor is its sparse range copy, the layer file. */
static int data_fd_of(struct nl_mount *m, struct fuse_file_info *fi)
{
	struct nl_file *f = nl_file_of(m, fi);
	int fd = nl_fd_of(m, fi);

	if (f->range && __atomic_load_n(&f->old_fd, __ATOMIC_ACQUIRE) < 0)
		return nl_range_data_fd(f->range, fd);
	return fd;
}

void nl_op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			   struct fuse_file_info *fi_in, fuse_ino_t ino_out,
			   off_t off_out, struct fuse_file_info *fi_out,
			   size_t len, int flags)
{
	struct nl_mount *m = nl_mount_of(req);
	loff_t in = off_in, out = off_out;
	int fd_in = data_fd_of(m, fi_in);
	ssize_t n;

	(void)ino_in;
	(void)ino_out;
	if (fd_in < 0) {
		fuse_reply_err(req, -fd_in);
		return;
	}
	n = copy_file_range(fd_in, &in, nl_fd_of(m, fi_out), &out, len, flags);
	if (n < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_write(req, n);
}

void nl_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		 struct fuse_file_info *fi)
{
	struct nl_mount *m = nl_mount_of(req);
	int fd = data_fd_of(m, fi);
	off_t r = fd < 0 ? (errno = -fd, -1) : lseek(fd, off, whence);

	(void)ino;
	if (r < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_lseek(req, r);
}

void nl_op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct nl_mount *m = nl_mount_of(req);
	struct statvfs sv;

	(void)ino;
	if (fstatvfs(m->layers[0].fd, &sv))
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &sv);
}
