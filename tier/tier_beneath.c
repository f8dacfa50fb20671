/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Reaching a file of a layer from a descriptor of the layer's root.
 *
 * Users inside a mount rename entries and make symlinks in the upper layer
 * while the root-run daemon works, and an image may hold any symlink: a
 * path string handed to the kernel would follow a symlink in one of its
 * directories and reach a file outside the layer. So a layer path is only
 * walked from a descriptor, by openat2() with every symlink refused and
 * without leaving that descriptor's tree. Kernels without openat2()
 * (before 5.6) get the walk one component at a time with O_NOFOLLOW, to
 * the same effect. Paths longer than PATH_MAX are walked in pieces, so
 * that a deep tree works as it does on the kernel overlayfs.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tier/tier.h"

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

int tier_open_beneath(int root, const char *rel, int flags, mode_t mode)
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
	fd = tier_open_beneath(dfd, cut + 1, flags, mode);
	close(dfd);
	return fd;
}


/* The same from the layer's directory, opened for the call: for the tier's
 * background copies, which are not on a request path. */
int tier_layer_open(const char *layer_dir, const char *rel, int flags)
{
	int root = open(layer_dir, O_PATH | O_DIRECTORY | O_CLOEXEC), fd;

	if (root < 0)
		return -errno;
	fd = tier_open_beneath(root, rel, flags, 0);
	close(root);
	return fd;
}
