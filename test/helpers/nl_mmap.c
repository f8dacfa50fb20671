// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * nl_mmap FILE: map FILE shared and read-write, check the mapping shows
 * the bytes read(2) returns, write a pattern at page 1 through the mapping,
 * msync, unmap, and check read(2) returns the pattern. Exit 1 on mismatch.
 * FILE must be at least two pages long.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int bad(const char *what)
{
	fprintf(stderr, "%s\n", what);
	return 1;
}

int main(int argc, char **argv)
{
	static char buf[8192];
	const char pat[] = "written-through-mmap";
	long pg = sysconf(_SC_PAGESIZE);
	struct stat st;
	char *p;
	int fd;

	if (argc != 2)
		return bad("usage: nl_mmap FILE");
	fd = open(argv[1], O_RDWR);
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size < 2 * pg)
		return bad("cannot open, or file shorter than two pages");
	p = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	if (pread(fd, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf) || memcmp(p, buf, sizeof(buf)))
		return bad("mapping differs from read(2)");
	memcpy(p + pg, pat, sizeof(pat));
	if (msync(p, st.st_size, MS_SYNC) < 0) {
		perror("msync");
		return 1;
	}
	munmap(p, st.st_size);
	close(fd);
	fd = open(argv[1], O_RDONLY);
	if (fd < 0 || pread(fd, buf, sizeof(pat), pg) != (ssize_t)sizeof(pat) ||
	    memcmp(buf, pat, sizeof(pat)))
		return bad("bytes written through the mapping do not read back");
	close(fd);
	return 0;
}
