/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nl_torn DIR SECONDS: one writer replaces DIR/f by write-temp-then-rename
 * (version k: SIZE bytes of the byte k, a size that changes with k) while
 * two readers open and read DIR/f whole. A read that returns anything but
 * one whole version is torn. Prints the counts; exits 1 on a torn read.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BASE (64 * 1024)

static const char *dir;
static atomic_bool stop;
static atomic_long reads, torn, versions;

static size_t size_of(unsigned char k)
{
	return BASE + (size_t)k * 512;
}

static void write_version(unsigned char k, char *buf)
{
	char tmp[4096], f[4096];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s/.tmp", dir);
	snprintf(f, sizeof(f), "%s/f", dir);
	memset(buf, k, size_of(k));
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return;
	if (write(fd, buf, size_of(k)) != (ssize_t)size_of(k)) {
		close(fd);
		return;
	}
	close(fd);
	if (rename(tmp, f) == 0)
		atomic_fetch_add(&versions, 1);
}

static void *writer(void *arg)
{
	char *buf = malloc(size_of(255));
	unsigned k = 1;

	(void)arg;
	while (!atomic_load(&stop))
		write_version((unsigned char)(k++ % 250 + 1), buf);
	free(buf);
	return NULL;
}

/* One whole version: every byte the same k and the size of version k. */
static int whole(const unsigned char *b, size_t n)
{
	size_t i;

	if (n == 0 || n != size_of(b[0]))
		return 0;
	for (i = 1; i < n; i++)
		if (b[i] != b[0])
			return 0;
	return 1;
}

static void *reader(void *arg)
{
	size_t cap = size_of(255) * 2, n;
	unsigned char *buf = malloc(cap);
	char f[4096];
	ssize_t r;
	int fd;

	(void)arg;
	snprintf(f, sizeof(f), "%s/f", dir);
	while (!atomic_load(&stop)) {
		fd = open(f, O_RDONLY);
		if (fd < 0)
			continue;
		n = 0;
		while (n < cap && (r = read(fd, buf + n, cap - n)) > 0)
			n += (size_t)r;
		close(fd);
		atomic_fetch_add(&reads, 1);
		if (!whole(buf, n))
			atomic_fetch_add(&torn, 1);
	}
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t[3];
	int i;

	if (argc != 3) {
		fprintf(stderr, "usage: nl_torn DIR SECONDS\n");
		return 2;
	}
	dir = argv[1];
	{
		char *buf = malloc(size_of(255));

		write_version(0 + 1, buf);
		free(buf);
	}
	pthread_create(&t[0], NULL, writer, NULL);
	pthread_create(&t[1], NULL, reader, NULL);
	pthread_create(&t[2], NULL, reader, NULL);
	usleep((useconds_t)(atof(argv[2]) * 1e6));
	atomic_store(&stop, true);
	for (i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	printf("%ld reads, %ld torn, %ld versions written\n", atomic_load(&reads),
	       atomic_load(&torn), atomic_load(&versions));
	return atomic_load(&torn) == 0 && atomic_load(&reads) > 0 ? 0 : 1;
}
