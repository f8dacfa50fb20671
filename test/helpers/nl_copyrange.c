// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * nl_copyrange SRC DST OFF LEN DSTOFF: copy_file_range LEN bytes of SRC at
 * OFF into DST (created if missing) at DSTOFF, looping on short copies.
 * Then compares the bytes through plain reads; exit 1 on mismatch.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	off_t off, doff;
	size_t len, left;
	char *a, *b;
	int in, out, rc;

	if (argc != 6) {
		fprintf(stderr, "usage: nl_copyrange SRC DST OFF LEN DSTOFF\n");
		return 2;
	}
	off = atoll(argv[3]);
	len = atoll(argv[4]);
	doff = atoll(argv[5]);
	in = open(argv[1], O_RDONLY);
	out = open(argv[2], O_RDWR | O_CREAT, 0644);
	if (in < 0 || out < 0) {
		perror("open");
		return 1;
	}
	for (left = len; left > 0;) {
		loff_t io = off + (len - left), oo = doff + (len - left);
		ssize_t n = copy_file_range(in, &io, out, &oo, left, 0);

		if (n < 0) {
			perror("copy_file_range");
			return 1;
		}
		if (n == 0) {
			fprintf(stderr, "copy_file_range: early end with %zu bytes left\n", left);
			return 1;
		}
		left -= n;
	}
	a = malloc(len);
	b = malloc(len);
	if (!a || !b || pread(in, a, len, off) != (ssize_t)len ||
	    pread(out, b, len, doff) != (ssize_t)len) {
		fprintf(stderr, "read back failed\n");
		return 1;
	}
	rc = memcmp(a, b, len) != 0;
	if (rc)
		fprintf(stderr, "copied bytes differ from the source\n");
	free(a);
	free(b);
	return rc;
}
