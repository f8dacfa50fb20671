// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * nl_unlinked FILE: open FILE read-write, unlink it, then check that the
 * open descriptor still reads the old bytes, accepts writes that read back,
 * and that fstat reports st_nlink 0. Prints what differs; exit 1 on mismatch.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(const char *what)
{
	perror(what);
	return 1;
}

int main(int argc, char **argv)
{
	static char before[65536], after[65536];
	const char *extra = "appended-after-unlink";
	struct stat st;
	ssize_t n, m;
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: nl_unlinked FILE\n");
		return 2;
	}
	fd = open(argv[1], O_RDWR);
	if (fd < 0)
		return fail("open");
	n = pread(fd, before, sizeof(before), 0);
	if (n < 0)
		return fail("pread before unlink");
	if (unlink(argv[1]) < 0)
		return fail("unlink");
	if (access(argv[1], F_OK) == 0) {
		fprintf(stderr, "%s still visible after unlink\n", argv[1]);
		return 1;
	}
	m = pread(fd, after, sizeof(after), 0);
	if (m != n || memcmp(before, after, n) != 0) {
		fprintf(stderr, "read after unlink: %zd bytes, differs from the %zd before\n", m, n);
		return 1;
	}
	if (pwrite(fd, extra, strlen(extra), n) != (ssize_t)strlen(extra))
		return fail("pwrite after unlink");
	m = pread(fd, after, strlen(extra), n);
	if (m != (ssize_t)strlen(extra) || memcmp(after, extra, m) != 0) {
		fprintf(stderr, "written bytes do not read back after unlink (%zd)\n", m);
		return 1;
	}
	if (fstat(fd, &st) < 0)
		return fail("fstat");
	if (st.st_nlink != 0) {
		fprintf(stderr, "fstat after unlink: st_nlink %lu, want 0\n",
			(unsigned long)st.st_nlink);
		return 1;
	}
	if (st.st_size != n + (off_t)strlen(extra)) {
		fprintf(stderr, "fstat after unlink: st_size %lld, want %lld\n",
			(long long)st.st_size, (long long)(n + strlen(extra)));
		return 1;
	}
	close(fd);
	return 0;
}
