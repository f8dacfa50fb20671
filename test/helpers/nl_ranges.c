// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * nl_ranges read FILE OFFSET LENGTH: drop FILE's cached pages, then one
 *   pread(2) of LENGTH bytes at OFFSET; the bytes go to stdout. With the
 *   cache dropped the read reaches the file system, not the page cache.
 * nl_ranges mmap FILE OFFSET LENGTH: the same bytes through a read-only
 *   mapping.
 * nl_ranges data FILE: the data regions of a sparse FILE, one
 *   "OFFSET LENGTH" line each (SEEK_DATA / SEEK_HOLE).
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int usage(void)
{
	fputs("usage: nl_ranges read|mmap FILE OFFSET LENGTH | nl_ranges data FILE\n", stderr);
	return 2;
}

static int put(const char *buf, size_t len)
{
	return fwrite(buf, 1, len, stdout) == len ? 0 : 1;
}

static int do_read(int fd, off_t off, size_t len, bool map)
{
	char *buf;
	ssize_t r;
	int rc;

	if (map) {
		long pg = sysconf(_SC_PAGESIZE);
		off_t base = off / pg * pg;
		char *p = mmap(NULL, len + (size_t)(off - base), PROT_READ, MAP_SHARED, fd, base);

		if (p == MAP_FAILED) {
			perror("mmap");
			return 1;
		}
		rc = put(p + (off - base), len);
		munmap(p, len + (size_t)(off - base));
		return rc;
	}
	buf = malloc(len ? len : 1);
	if (!buf)
		return 1;
	r = pread(fd, buf, len, off);
	if (r < 0) {
		perror("pread");
		free(buf);
		return 1;
	}
	rc = put(buf, (size_t)r);
	free(buf);
	return rc;
}

static int do_data(int fd)
{
	off_t end = lseek(fd, 0, SEEK_END), pos = 0;

	while (pos < end) {
		off_t data = lseek(fd, pos, SEEK_DATA), hole;

		if (data < 0)
			break;
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0)
			hole = end;
		printf("%lld %lld\n", (long long)data, (long long)(hole - data));
		pos = hole;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int fd, rc;

	if (argc < 3)
		return usage();
	fd = open(argv[2], O_RDONLY);
	if (fd < 0) {
		perror(argv[2]);
		return 1;
	}
	if (!strcmp(argv[1], "data") && argc == 3) {
		rc = do_data(fd);
	} else if ((!strcmp(argv[1], "read") || !strcmp(argv[1], "mmap")) && argc == 5) {
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		rc = do_read(fd, strtoll(argv[3], NULL, 0), strtoull(argv[4], NULL, 0),
			     !strcmp(argv[1], "mmap"));
	} else {
		rc = usage();
	}
	close(fd);
	return rc;
}
