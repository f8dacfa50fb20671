// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * nl_falloc FILE: on an existing FILE, fallocate 1 MiB past its end (size
 * must grow, blocks must be reserved), then with KEEP_SIZE another 1 MiB
 * (size must not change), then punch a hole in the first 64 KiB (must read
 * back as zeros). Prints the step that failed; exit 1 on mismatch.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIB (1024 * 1024)

static int bad(const char *what)
{
	fprintf(stderr, "%s\n", what);
	return 1;
}

int main(int argc, char **argv)
{
	static char buf[65536], zero[65536];
	struct stat a, b;
	int fd;

	if (argc != 2)
		return bad("usage: nl_falloc FILE");
	fd = open(argv[1], O_RDWR);
	if (fd < 0 || fstat(fd, &a) < 0)
		return bad("open/fstat failed");
	if (fallocate(fd, 0, a.st_size, MIB) < 0) {
		perror("fallocate");
		return 1;
	}
	if (fstat(fd, &b) < 0 || b.st_size != a.st_size + MIB)
		return bad("fallocate did not extend st_size by 1 MiB");
	if (b.st_blocks < a.st_blocks + MIB / 512)
		return bad("fallocate did not reserve the blocks");
	if (fallocate(fd, FALLOC_FL_KEEP_SIZE, b.st_size, MIB) < 0) {
		perror("fallocate KEEP_SIZE");
		return 1;
	}
	if (fstat(fd, &a) < 0 || a.st_size != b.st_size)
		return bad("FALLOC_FL_KEEP_SIZE changed st_size");
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, sizeof(buf)) < 0) {
		perror("fallocate PUNCH_HOLE");
		return 1;
	}
	if (pread(fd, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf) ||
	    memcmp(buf, zero, sizeof(buf)) != 0)
		return bad("punched range does not read as zeros");
	close(fd);
	return 0;
}
