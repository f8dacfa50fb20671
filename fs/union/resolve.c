/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The union's side of reaching layer entries by descriptor: the parent
 * directory of a path and one name, for the *at() calls; the calls with no
 * form taking an O_PATH descriptor. Paths are walked by tier_open_beneath()
 * (never following a symlink, never leaving the layer).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs/union/union.h"
#include "tier/tier.h"

int nl_open_beneath(int root, const char *rel, int flags, mode_t mode)
{
	return tier_open_beneath(root, rel, flags, mode);
}

int nl_at_parent(int root, const char *rel, struct nl_at *at)
{
	char dir[NL_PATH_BUF];
	const char *slash = strrchr(rel, '/');
	size_t l;
	int fd;

	at->own = false;
	at->dfd = root;
	at->name = rel;
	if (!slash)
		return 0;
	l = (size_t)(slash - rel);
	if (l >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, rel, l);
	dir[l] = '\0';
	fd = nl_open_beneath(root, dir, O_PATH | O_DIRECTORY, 0);
	if (fd < 0)
		return fd;
	at->dfd = fd;
	at->own = true;
	at->name = slash + 1;
	return 0;
}

void nl_at_done(struct nl_at *at)
{
	if (at->own)
		close(at->dfd);
	at->own = false;
	at->dfd = -1;
}

int nl_lstat_beneath(int root, const char *rel, struct stat *st)
{
	struct nl_at at;
	int r = nl_at_parent(root, rel, &at);

	if (r)
		return r;
	r = fstatat(at.dfd, at.name, st, AT_SYMLINK_NOFOLLOW) ? -errno : 0;
	nl_at_done(&at);
	return r;
}

ssize_t nl_readlink_beneath(int root, const char *rel, char *buf, size_t size)
{
	struct nl_at at;
	ssize_t n;
	int r = nl_at_parent(root, rel, &at);

	if (r)
		return r;
	n = readlinkat(at.dfd, at.name, buf, size);
	if (n < 0)
		n = -errno;
	nl_at_done(&at);
	return n;
}

/*
 * The name under which the kernel reaches exactly the inode @fd holds:
 * calls that have no form taking an O_PATH descriptor (chmod, the xattr
 * calls) go through it, as libfuse's passthrough_ll does.
 */
void nl_fd_path(int fd, char *buf, size_t len)
{
	snprintf(buf, len, "/proc/self/fd/%d", fd);
}

ssize_t nl_fd_getxattr(int fd, const char *name, void *buf, size_t size)
{
	char p[32];
	ssize_t n;

	nl_fd_path(fd, p, sizeof(p));
	n = getxattr(p, name, buf, size);
	return n < 0 ? -errno : n;
}

ssize_t nl_fd_listxattr(int fd, char *buf, size_t size)
{
	char p[32];
	ssize_t n;

	nl_fd_path(fd, p, sizeof(p));
	n = listxattr(p, buf, size);
	return n < 0 ? -errno : n;
}

int nl_fd_setxattr(int fd, const char *name, const void *value, size_t size, int flags)
{
	char p[32];

	nl_fd_path(fd, p, sizeof(p));
	return setxattr(p, name, value, size, flags) ? -errno : 0;
}

int nl_fd_removexattr(int fd, const char *name)
{
	char p[32];

	nl_fd_path(fd, p, sizeof(p));
	return removexattr(p, name) ? -errno : 0;
}

/* A new open of the inode an O_PATH descriptor holds. */
int nl_fd_reopen(int fd, int flags)
{
	char p[32];
	int r;

	nl_fd_path(fd, p, sizeof(p));
	r = open(p, (flags & ~(O_NOFOLLOW | O_CREAT | O_EXCL)) | O_CLOEXEC);
	return r < 0 ? -errno : r;
}

ssize_t nl_getxattr_beneath(int root, const char *rel, const char *name, void *buf,
			    size_t size)
{
	int fd = nl_open_beneath(root, rel, O_PATH | O_NOFOLLOW, 0);
	ssize_t n;

	if (fd < 0)
		return fd;
	n = nl_fd_getxattr(fd, name, buf, size);
	close(fd);
	return n;
}

ssize_t nl_listxattr_beneath(int root, const char *rel, char *buf, size_t size)
{
	int fd = nl_open_beneath(root, rel, O_PATH | O_NOFOLLOW, 0);
	ssize_t n;

	if (fd < 0)
		return fd;
	n = nl_fd_listxattr(fd, buf, size);
	close(fd);
	return n;
}
