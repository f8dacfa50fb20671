// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ckpt_criu_io DIR: the file access patterns of criu dump/restore, checked
 * in DIR: images written with splice and write(), read back with preadv
 * and mmap, the "parent" symlink of incremental dumps, hole punching of
 * --auto-dedup, a rewrite in the middle, ftruncate and rename.
 * Exits 0 when every step read back what it should, 1 otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define SIZE (3u << 20)		/* three 1 MiB pieces: splice, write, splice */
#define PIECE (1u << 20)

static unsigned char pat(size_t i, unsigned seed)
{
	return (unsigned char)(((i + seed) * 2654435761u) >> 13);
}

static void fill(unsigned char *b, size_t off, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		b[i] = pat(off + i, seed);
}

static int fail(const char *what)
{
	fprintf(stderr, "ckpt_criu_io: %s: %s\n", what, strerror(errno));
	return 1;
}

static int bad(const char *what)
{
	fprintf(stderr, "ckpt_criu_io: %s\n", what);
	return 1;
}

/* As criu writes pages: vmsplice into a pipe, splice from it to the file. */
static int splice_piece(int fd, const unsigned char *b, size_t len)
{
	int p[2];
	size_t done = 0;

	if (pipe(p))
		return -1;
	while (done < len) {
		struct iovec iov = { (void *)(b + done), len - done };
		ssize_t n = vmsplice(p[1], &iov, 1, 0), m = 0;

		if (n <= 0)
			break;
		while (m < n) {
			ssize_t k = splice(p[0], NULL, fd, NULL, n - m, SPLICE_F_MOVE);

			if (k <= 0) {
				close(p[0]);
				close(p[1]);
				return -1;
			}
			m += k;
		}
		done += n;
	}
	close(p[0]);
	close(p[1]);
	return done == len ? 0 : -1;
}

static int write_image(const char *path, unsigned char *buf)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0)
		return fail("open O_CREAT|O_TRUNC");
	fill(buf, 0, SIZE, 1);
	if (splice_piece(fd, buf, PIECE))
		return fail("splice write");
	if (write(fd, buf + PIECE, PIECE) != (ssize_t)PIECE)
		return fail("write");
	if (splice_piece(fd, buf + 2 * PIECE, PIECE))
		return fail("splice write");
	if (close(fd))
		return fail("close");
	return 0;
}

/* preadv at odd offsets into two buffers */
static int check_preadv(int fd, const unsigned char *want)
{
	static const size_t offs[] = { 0, 4095, 123457, PIECE - 17, 2 * PIECE + 5, SIZE - 300 };
	unsigned char a[1000], b[3000];

	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		struct iovec iov[2] = { { a, sizeof(a) }, { b, sizeof(b) } };
		size_t off = offs[i], exp = SIZE - off < 4000 ? SIZE - off : 4000;
		ssize_t n = preadv(fd, iov, 2, off);

		if (n != (ssize_t)exp)
			return bad("preadv: short read");
		if (memcmp(a, want + off, exp < 1000 ? exp : 1000) ||
		    (exp > 1000 && memcmp(b, want + off + 1000, exp - 1000)))
			return bad("preadv: wrong data");
	}
	return 0;
}

static int check_mmap(int fd, const unsigned char *want, size_t len)
{
	void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	int r;

	if (m == MAP_FAILED)
		return fail("mmap");
	r = memcmp(m, want, len) ? bad("mmap: wrong data") : 0;
	munmap(m, len);
	return r;
}

static int check_file(const char *path, const unsigned char *want, size_t len)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	int r;

	if (fd < 0)
		return fail("open O_RDONLY");
	if (fstat(fd, &st) || (size_t)st.st_size != len) {
		close(fd);
		return bad("size after write");
	}
	r = len == SIZE ? check_preadv(fd, want) : 0;
	if (!r)
		r = check_mmap(fd, want, len);
	close(fd);
	return r;
}

static int punch_and_rewrite(const char *path, unsigned char *want)
{
	int fd = open(path, O_RDWR);
	unsigned char patch[10000];

	if (fd < 0)
		return fail("open O_RDWR");
	/* --auto-dedup punches the pages the parent image already has */
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 65536, 3 * 65536))
		return fail("fallocate punch hole");
	memset(want + 65536, 0, 3 * 65536);
	/* a write that is not at the end goes out of place */
	fill(patch, 0, sizeof(patch), 7);
	if (pwrite(fd, patch, sizeof(patch), PIECE + 333) != (ssize_t)sizeof(patch))
		return fail("pwrite in the middle");
	memcpy(want + PIECE + 333, patch, sizeof(patch));
	if (close(fd))
		return fail("close");
	return 0;
}

static int check_symlink(const char *dir)
{
	char p[4096], t[64];
	ssize_t n;

	snprintf(p, sizeof(p), "%s/parent", dir);
	if (symlink("../1", p))
		return fail("symlink parent");
	n = readlink(p, t, sizeof(t));
	if (n != 4 || memcmp(t, "../1", 4))
		return bad("readlink parent");
	return 0;
}

static int truncate_rename(const char *dir, const char *path, const unsigned char *want)
{
	char to[4096];
	int fd = open(path, O_RDWR);

	if (fd < 0)
		return fail("open for ftruncate");
	if (ftruncate(fd, PIECE + 1000))
		return fail("ftruncate");
	close(fd);
	snprintf(to, sizeof(to), "%s/pages-renamed.img", dir);
	if (rename(path, to))
		return fail("rename");
	return check_file(to, want, PIECE + 1000);
}

int main(int argc, char **argv)
{
	char path[4096];
	unsigned char *want;
	int r;

	if (argc != 2)
		return bad("usage: ckpt_criu_io DIR");
	want = malloc(SIZE);
	if (!want)
		return fail("malloc");
	snprintf(path, sizeof(path), "%s/pages-1.img", argv[1]);
	r = write_image(path, want) || check_file(path, want, SIZE) ||
	    punch_and_rewrite(path, want) || check_file(path, want, SIZE) ||
	    check_symlink(argv[1]) || truncate_rename(argv[1], path, want);
	free(want);
	return r;
}
