/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nlbench-walk: does the per-measure work of the union benchmark inside a
 * mount, in one process, and times only that work.  Spawning one process per
 * file (stat(1), cat(1)) would measure fork/exec instead of the filesystem.
 *
 *   nlbench-walk stat    ROOT LIST     lstat every entry of LIST
 *   nlbench-walk readdir ROOT LIST     list every directory of LIST
 *   nlbench-walk readall ROOT LIST     read every regular file of LIST once
 *   nlbench-walk read    ROOT PATH     read one file sequentially
 *
 * LIST holds one entry a line: a type letter (f d l), a space, and a path
 * relative to ROOT.  The list is loaded before the clock starts.
 * Output, one line: "seconds=S count=N bytes=B errors=E".
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define READ_BUF (1u << 20)

struct entry {
	char type;
	const char *path;
};

struct result {
	unsigned long count;
	unsigned long long bytes;
	unsigned long errors;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p) {
		fprintf(stderr, "nlbench-walk: out of memory\n");
		exit(2);
	}
	return p;
}

/* Slurps LIST into memory and splits it in place; entries point into it. */
static struct entry *load_list(const char *file, size_t *n_out)
{
	FILE *f = fopen(file, "r");
	char *buf = NULL, *line, *save;
	size_t len = 0, n = 0, cap = 1024;
	struct entry *v;

	if (!f) {
		fprintf(stderr, "nlbench-walk: %s: %s\n", file, strerror(errno));
		exit(2);
	}
	if (getdelim(&buf, &len, '\0', f) < 0 && ferror(f)) {
		fprintf(stderr, "nlbench-walk: reading %s failed\n", file);
		exit(2);
	}
	fclose(f);
	v = xmalloc(cap * sizeof(*v));
	for (line = strtok_r(buf ? buf : "", "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strlen(line) < 3 || line[1] != ' ')
			continue;
		if (n == cap) {
			cap *= 2;
			v = realloc(v, cap * sizeof(*v));
			if (!v)
				exit(2);
		}
		v[n].type = line[0];
		v[n].path = line + 2;
		n++;
	}
	*n_out = n;
	return v;
}

static void do_stat(int root, const struct entry *v, size_t n, struct result *r)
{
	struct stat st;

	for (size_t i = 0; i < n; i++) {
		if (fstatat(root, v[i].path, &st, AT_SYMLINK_NOFOLLOW) == 0)
			r->count++;
		else
			r->errors++;
	}
}

static void do_readdir(int root, const struct entry *v, size_t n, struct result *r)
{
	for (size_t i = 0; i < n; i++) {
		int fd;
		DIR *d;

		if (v[i].type != 'd')
			continue;
		fd = openat(root, v[i].path, O_RDONLY | O_DIRECTORY);
		d = fd >= 0 ? fdopendir(fd) : NULL;
		if (!d) {
			if (fd >= 0)
				close(fd);
			r->errors++;
			continue;
		}
		while (readdir(d))
			r->count++;
		closedir(d);
	}
}

/* Reads fd to its end; returns -1 on a read error. */
static long long drain(int fd, char *buf)
{
	long long total = 0;
	ssize_t got;

	while ((got = read(fd, buf, READ_BUF)) > 0)
		total += got;
	return got < 0 ? -1 : total;
}

static void read_one(int root, const char *path, char *buf, struct result *r)
{
	int fd = openat(root, path, O_RDONLY);
	long long got;

	if (fd < 0) {
		r->errors++;
		return;
	}
	got = drain(fd, buf);
	close(fd);
	if (got < 0) {
		r->errors++;
		return;
	}
	r->count++;
	r->bytes += got;
}

static void do_readall(int root, const struct entry *v, size_t n, struct result *r)
{
	char *buf = xmalloc(READ_BUF);

	for (size_t i = 0; i < n; i++)
		if (v[i].type == 'f')
			read_one(root, v[i].path, buf, r);
	free(buf);
}

static int usage(void)
{
	fprintf(stderr, "usage: nlbench-walk stat|readdir|readall ROOT LIST\n"
			"       nlbench-walk read ROOT PATH\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct result r = { 0, 0, 0 };
	struct entry *v = NULL;
	size_t n = 0;
	double t0, t1;
	int root;

	if (argc != 4)
		return usage();
	root = open(argv[2], O_RDONLY | O_DIRECTORY);
	if (root < 0) {
		fprintf(stderr, "nlbench-walk: %s: %s\n", argv[2], strerror(errno));
		return 2;
	}
	if (strcmp(argv[1], "read") != 0)
		v = load_list(argv[3], &n);

	t0 = now();
	if (!strcmp(argv[1], "stat")) {
		do_stat(root, v, n, &r);
	} else if (!strcmp(argv[1], "readdir")) {
		do_readdir(root, v, n, &r);
	} else if (!strcmp(argv[1], "readall")) {
		do_readall(root, v, n, &r);
	} else if (!strcmp(argv[1], "read")) {
		char *buf = xmalloc(READ_BUF);

		read_one(root, argv[3], buf, &r);
		free(buf);
	} else {
		return usage();
	}
	t1 = now();

	printf("seconds=%.6f count=%lu bytes=%llu errors=%lu\n", t1 - t0, r.count,
	       r.bytes, r.errors);
	free(v);
	close(root);
	return 0;
}
