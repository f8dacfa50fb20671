/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Extended attributes. Overlay's own markers (opaque, redirect, origin...)
 * describe the layers, not the file, and are never shown or changed
 * through the mount.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs/union/union.h"

void nl_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		    size_t size)
{
	struct nl_mount *m = nl_mount_of(req);
	struct nl_node *node = nl_node_of(m, ino);
	char path[NL_PATH_BUF];
	char *buf = NULL;
	ssize_t n;

	if (m->opt->noxattrs) {
		n = -ENOTSUP;
		goto out;
	}
	if (nl_xattr_is_private(name)) {
		n = -ENODATA;
		goto out;
	}
	if (size && !(buf = malloc(size))) {
		n = -ENOMEM;
		goto out;
	}
	pthread_rwlock_rdlock(&m->names);
	n = nl_node_path(m, node, path, sizeof(path));
	if (!n)
		n = nl_lower_getxattr(m, node->layer, path, name, buf, size);
	pthread_rwlock_unlock(&m->names);
out:
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (size)
		fuse_reply_buf(req, buf, n);
	else
		fuse_reply_xattr(req, n);
	free(buf);
}

/* Drop the private names from a list in place; returns the new length. */
static size_t filter_private(char *list, size_t len)
{
	size_t in = 0, out = 0, l;

	while (in < len) {
		l = strlen(list + in) + 1;
		if (!nl_xattr_is_private(list + in)) {
			memmove(list + out, list + in, l);
			out += l;
		}
		in += l;
	}
	return out;
}

void nl_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct nl_mount *m = nl_mount_of(req);
	struct nl_node *node = nl_node_of(m, ino);
	char path[NL_PATH_BUF];
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;

	if (m->opt->noxattrs) {
		n = -ENOTSUP;
		goto out;
	}
	/* The full list is read even when asked for its size, since the
	 * private names must not count. */
	pthread_rwlock_rdlock(&m->names);
	n = nl_node_path(m, node, path, sizeof(path));
	if (!n)
		n = nl_lower_listxattr(m, node->layer, path, NULL, 0);
	buf = n < 0 ? NULL : malloc(n + 1);
	if (n >= 0 && !buf)
		n = -ENOMEM;
	if (n >= 0)
		n = nl_lower_listxattr(m, node->layer, path, buf, n);
	pthread_rwlock_unlock(&m->names);
	if (n >= 0)
		len = filter_private(buf, n);
	if (n >= 0 && size && len > size)
		n = -ERANGE;
out:
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (!size)
		fuse_reply_xattr(req, len);
	else
		fuse_reply_buf(req, buf, len);
	free(buf);
}

/* A handle of the upper file whose attributes are to change. */
static int change_prepare(struct nl_mount *m, fuse_ino_t ino, const char *name)
{
	struct nl_node *n = nl_node_of(m, ino);
	int r;

	if (m->opt->noxattrs)
		return -ENOTSUP;
	if (!m->upper)
		return -EROFS;
	if (nl_xattr_is_private(name))
		return -EPERM;
	r = nl_copy_up(m, n);
	return r ? r : nl_node_handle(m, n);
}

void nl_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		    const char *value, size_t size, int flags)
{
	struct nl_mount *m = nl_mount_of(req);
	int h = change_prepare(m, ino, name), r = h;

	if (h >= 0) {
		r = nl_fd_setxattr(h, name, value, size, flags);
		close(h);
	}
	fuse_reply_err(req, -r);
}

void nl_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct nl_mount *m = nl_mount_of(req);
	int h = change_prepare(m, ino, name), r = h;

	if (h >= 0) {
		r = nl_fd_removexattr(h, name);
		close(h);
	}
	fuse_reply_err(req, -r);
}
