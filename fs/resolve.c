/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Reaching an entry of a layer from the layer's descriptor.
 *
 * The daemon runs as root, and users inside the mount rename entries and
 * make symlinks in the upper layer while it works. A path string handed to
 * the kernel would follow a symlink swapped in for one of its directories
 * and reach a file outside the layer. So a layer path is only ever walked
 * from a descriptor the daemon holds, by openat2() with every symlink
 * refused and without leaving that descriptor's tree; the *at() calls then
 * get a directory descriptor and a single name. On kernels without
 * openat2() (before 5.6) the walk is done one component at a time with
 * O_NOFOLLOW, to the same effect. Paths longer than PATH_MAX are walked in
 * pieces, so that a deep tree works as it does on the kernel overlayfs.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs/nlayerfs.h"

#define NL_RESOLVE (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)

/*
 * openat2() refuses flags it does not know, where openat() ignores them;
 * the kernel hands FUSE the open's f_flags, which carry internal bits
 * (FMODE_EXEC for an execve). Only real open flags are passed on.
 */
#define NL_OPEN_FLAGS (O_ACCMODE | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_APPEND | \
		       O_NONBLOCK | O_DSYNC | O_SYNC | O_DIRECT | O_DIRECTORY | O_NOFOLLOW | \
		       O_NOATIME | O_CLOEXEC | O_PATH | __O_TMPFILE | FASYNC)

/* The walk of kernels without openat2(): each directory with O_NOFOLLOW. */
static int open_walk(int dfd, const char *rel, int flags, mode_t mode)
{
	char name[NAME_MAX + 1];
	const char *slash;
	int fd = -1, next;
	size_t l;

	while ((slash = strchr(rel, '/'))) {
		l = (size_t)(slash - rel);
		if (l > NAME_MAX)
			goto toolong;
		memcpy(name, rel, l);
		name[l] = '\0';
		next = openat(dfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0)
			close(fd);
		if (next < 0)
			return -errno;
		dfd = fd = next;
		rel = slash + 1;
	}
	next = openat(dfd, rel, flags | O_NOFOLLOW | O_CLOEXEC, mode);
	if (next < 0)
		next = -errno;
	if (fd >= 0)
		close(fd);
	return next;
toolong:
	if (fd >= 0)
		close(fd);
	return -ENAMETOOLONG;
}

static int open_once(int dfd, const char *rel, int flags, mode_t mode)
{
	struct open_how how = {
		.flags = (unsigned)((flags & NL_OPEN_FLAGS) | O_CLOEXEC),
		.mode = (flags & (O_CREAT | __O_TMPFILE)) ? mode : 0,
		.resolve = NL_RESOLVE,
	};
	int tries, fd = -1;

	/* EAGAIN: a rename raced the walk; the kernel asks for a retry. */
	for (tries = 0; tries < 8; tries++) {
		fd = (int)syscall(SYS_openat2, dfd, rel, &how, sizeof(how));
		if (fd >= 0 || errno != EAGAIN)
			break;
	}
	if (fd >= 0)
		return fd;
	if (errno == ENOSYS)
		return open_walk(dfd, rel, flags, mode);
	return -errno;
}

int nl_open_beneath(int root, const char *rel, int flags, mode_t mode)
{
	char part[PATH_MAX];
	const char *cut;
	int dfd, fd;
	size_t l = strlen(rel);

	if (l < PATH_MAX)
		return open_once(root, rel, flags, mode);
	/* Too long for one call: the directories up to a '/' below
	 * PATH_MAX first, then the rest from there. */
	cut = memrchr(rel, '/', PATH_MAX - 1);
	if (!cut || cut == rel)
		return -ENAMETOOLONG;
	memcpy(part, rel, (size_t)(cut - rel));
	part[cut - rel] = '\0';
	dfd = open_once(root, part, O_PATH | O_DIRECTORY, 0);
	if (dfd < 0)
		return dfd;
	fd = nl_open_beneath(dfd, cut + 1, flags, mode);
	close(dfd);
	return fd;
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
