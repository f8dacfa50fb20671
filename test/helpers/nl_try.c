// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * nl_try OP ARGS...: make one system call and print "OK" or the errno
 * name (ENOENT, EXDEV, ...). The shell tests compare that word with the
 * expected one, so a wrong error code is seen as clearly as a failure.
 * Exit status: 0 when the call was made (whatever its result), 2 on usage
 * errors.
 *
 *   open PATH FLAGS        FLAGS: letters r w c(creat) x(excl) t(trunc) a(append) d(directory)
 *   mkdir PATH | rmdir PATH | unlink PATH | stat PATH | lstat PATH
 *   rename2 none|noreplace|exchange OLD NEW
 *   link OLD NEW | symlink TARGET PATH | mkfifo PATH | mknod PATH (char 0/0)
 *   truncate PATH LEN | statfs PATH | fsync PATH | fdatasync PATH
 *   setxattr PATH NAME VALUE | getxattr PATH NAME | removexattr PATH NAME
 *   listxattr PATH         prints OK and then the names, one a line
 *   access PATH r|w|x
 *   write PATH DATA        open O_WRONLY|O_APPEND and write DATA
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

static int open_flags(const char *s)
{
	int f = 0, r = 0, w = 0;

	for (; *s; s++) {
		switch (*s) {
		case 'r': r = 1; break;
		case 'w': w = 1; break;
		case 'c': f |= O_CREAT; break;
		case 'x': f |= O_EXCL; break;
		case 't': f |= O_TRUNC; break;
		case 'a': f |= O_APPEND; break;
		case 'd': f |= O_DIRECTORY; break;
		}
	}
	return f | (r && w ? O_RDWR : w ? O_WRONLY : O_RDONLY);
}

static int do_open(const char *path, const char *flags)
{
	int fd = open(path, open_flags(flags), 0644);

	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static int do_sync(const char *path, int data_only)
{
	int fd = open(path, O_RDONLY), r;

	if (fd < 0)
		return -1;
	r = data_only ? fdatasync(fd) : fsync(fd);
	close(fd);
	return r;
}

static int do_list(const char *path)
{
	char buf[65536];
	ssize_t n = llistxattr(path, buf, sizeof(buf));

	if (n < 0)
		return -1;
	puts("OK");
	for (ssize_t i = 0; i < n; i += strlen(buf + i) + 1)
		puts(buf + i);
	exit(0);
}

static int do_get(const char *path, const char *name)
{
	char buf[65536];
	ssize_t n = lgetxattr(path, name, buf, sizeof(buf) - 1);

	if (n < 0)
		return -1;
	buf[n] = 0;
	printf("OK\n%s\n", buf);
	exit(0);
}

static int do_write(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_APPEND);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, data, strlen(data));
	close(fd);
	return n < 0 ? -1 : 0;
}

static int do_access(const char *path, const char *m)
{
	int mode = *m == 'r' ? R_OK : *m == 'w' ? W_OK : X_OK;

	return access(path, mode);
}

static int do_rename2(const char *flag, const char *a, const char *b)
{
	unsigned int f = 0;

	if (!strcmp(flag, "noreplace"))
		f = RENAME_NOREPLACE;
	else if (!strcmp(flag, "exchange"))
		f = RENAME_EXCHANGE;
	return renameat2(AT_FDCWD, a, AT_FDCWD, b, f);
}

static int run(int argc, char **argv)
{
	const char *op = argv[1];
	struct stat st;
	struct statfs sf;

#define NEED(n) do { if (argc < (n) + 2) goto usage; } while (0)
	NEED(1);
	if (!strcmp(op, "open")) { NEED(2); return do_open(argv[2], argv[3]); }
	if (!strcmp(op, "mkdir")) return mkdir(argv[2], 0755);
	if (!strcmp(op, "rmdir")) return rmdir(argv[2]);
	if (!strcmp(op, "unlink")) return unlink(argv[2]);
	if (!strcmp(op, "stat")) return stat(argv[2], &st);
	if (!strcmp(op, "lstat")) return lstat(argv[2], &st);
	if (!strcmp(op, "statfs")) return statfs(argv[2], &sf);
	if (!strcmp(op, "fsync")) return do_sync(argv[2], 0);
	if (!strcmp(op, "fdatasync")) return do_sync(argv[2], 1);
	if (!strcmp(op, "mkfifo")) return mkfifo(argv[2], 0644);
	if (!strcmp(op, "mknod")) return mknod(argv[2], S_IFCHR | 0644, makedev(0, 0));
	if (!strcmp(op, "listxattr")) return do_list(argv[2]);
	if (!strcmp(op, "link")) { NEED(2); return link(argv[2], argv[3]); }
	if (!strcmp(op, "symlink")) { NEED(2); return symlink(argv[2], argv[3]); }
	if (!strcmp(op, "truncate")) { NEED(2); return truncate(argv[2], atoll(argv[3])); }
	if (!strcmp(op, "getxattr")) { NEED(2); return do_get(argv[2], argv[3]); }
	if (!strcmp(op, "removexattr")) { NEED(2); return lremovexattr(argv[2], argv[3]); }
	if (!strcmp(op, "access")) { NEED(2); return do_access(argv[2], argv[3]); }
	if (!strcmp(op, "write")) { NEED(2); return do_write(argv[2], argv[3]); }
	if (!strcmp(op, "setxattr")) {
		NEED(3);
		return lsetxattr(argv[2], argv[3], argv[4], strlen(argv[4]), 0);
	}
	if (!strcmp(op, "rename2")) { NEED(3); return do_rename2(argv[2], argv[3], argv[4]); }
usage:
	fprintf(stderr, "nl_try: bad usage (see the source for the operations)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		goto usage;
	if (run(argc, argv) == 0) {
		puts("OK");
		return 0;
	}
	{
		const char *name = strerrorname_np(errno);

		if (name)
			puts(name);
		else
			printf("E%d\n", errno);
	}
	return 0;
usage:
	fprintf(stderr, "usage: nl_try OP ARGS...\n");
	return 2;
}
