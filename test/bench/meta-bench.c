/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * meta-bench: size, build time and lookup cost of a metadata image of one
 * directory tree (a layer), and the same tables kept in a libpmemobj pool
 * instead of a plain mmap'ed file. Run by test/bench/meta-bench.
 *
 *   meta-bench-run LAYER_DIR WORK_DIR [LOOKUPS]
 *
 * WORK_DIR stands for the NVM tier (tmpfs). Prints "key value" lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <libpmemobj.h>

#include "tier/meta/meta.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Every path of the image, "." included. */
static char **all_paths(const struct tier_meta_img *img, size_t *n)
{
	char **v = calloc(img->hdr->n_ents, sizeof(*v));
	size_t k = 0;

	v[k++] = strdup(".");
	for (uint64_t d = 0; d < img->hdr->n_dirs; d++) {
		const struct tier_meta_dir *dir = &img->dirs[d];
		const char *dp = img->strs + dir->path_off;

		for (uint32_t j = 0; j < dir->count && k < img->hdr->n_ents; j++) {
			const char *name = img->strs + img->ents[dir->first + j].name_off;

			if (asprintf(&v[k], "%s%s%s", strcmp(dp, ".") ? dp : "",
				     strcmp(dp, ".") ? "/" : "", name) < 0)
				exit(1);
			k++;
		}
	}
	*n = k;
	return v;
}

static void shuffle(char **v, size_t n)
{
	srand(42);
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = (size_t)rand() % (i + 1);
		char *t = v[i];

		v[i] = v[j];
		v[j] = t;
	}
}

/* ns per lookup (find + stat) over @lookups random paths. */
static double lookup_ns(const struct tier_meta_img *img, char **paths, size_t n, size_t lookups)
{
	struct stat st;
	double t0 = now_s();
	unsigned long sink = 0;

	for (size_t i = 0; i < lookups; i++) {
		long e = tier_meta_img_find(img, paths[i % n]);

		if (e < 0)
			exit(2);
		tier_meta_img_stat(img, e, 0, &st);
		sink += (unsigned long)st.st_ino;
	}
	if (sink == 1)
		puts("");
	return (now_s() - t0) * 1e9 / (double)lookups;
}

static double lstat_ns(const char *dir, char **paths, size_t n, size_t lookups)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	struct stat st;
	double t0 = now_s();

	for (size_t i = 0; i < lookups; i++)
		fstatat(fd, paths[i % n], &st, AT_SYMLINK_NOFOLLOW);
	close(fd);
	return (now_s() - t0) * 1e9 / (double)lookups;
}

/* The image's bytes in a pmemobj pool: open cost and lookups through
 * pmemobj_direct(). */
static void pmem_variant(const struct tier_meta_img *img, const char *work, char **paths,
			 size_t n, size_t lookups)
{
	char pool[4096];
	PMEMobjpool *pop;
	PMEMoid *root;
	struct tier_meta_img p = { 0 };
	const uint8_t *base;
	double t0;

	snprintf(pool, sizeof(pool), "%s/meta-bench.pool", work);
	unlink(pool);
	pop = pmemobj_create(pool, "meta-bench", img->len * 2 + PMEMOBJ_MIN_POOL, 0600);
	if (!pop) {
		fprintf(stderr, "pmemobj_create: %s\n", pmemobj_errormsg());
		return;
	}
	t0 = now_s();
	root = pmemobj_direct(pmemobj_root(pop, sizeof(PMEMoid)));
	if (pmemobj_alloc(pop, root, img->len, 1, NULL, NULL)) {
		fprintf(stderr, "pmemobj_alloc: %s\n", pmemobj_errormsg());
		pmemobj_close(pop);
		return;
	}
	pmemobj_memcpy_persist(pop, pmemobj_direct(*root), img->map, img->len);
	printf("pmem_store_s %.4f\n", now_s() - t0);
	pmemobj_close(pop);
	t0 = now_s();
	pop = pmemobj_open(pool, "meta-bench");
	root = pmemobj_direct(pmemobj_root(pop, sizeof(PMEMoid)));
	base = pmemobj_direct(*root);
	printf("pmem_open_s %.4f\n", now_s() - t0);
	p.map = (void *)base;
	p.len = img->len;
	p.hdr = (const void *)base;
	base += sizeof(struct tier_meta_hdr);
	p.dirs = (const void *)(base + p.hdr->off_dirs);
	p.ents = (const void *)(base + p.hdr->off_ents);
	p.xattrs = (const void *)(base + p.hdr->off_xattrs);
	p.strs = (const char *)(base + p.hdr->off_strs);
	p.atimes = (const void *)(base + p.hdr->off_atimes);
	lookup_ns(&p, paths, n, lookups / 10);	/* warm */
	printf("pmem_lookup_ns %.1f\n", lookup_ns(&p, paths, n, lookups));
	pmemobj_close(pop);
	unlink(pool);
}

int main(int argc, char **argv)
{
	struct tier_meta_cover cover = { .full = true };
	const char *id = "0000000000000000000000000000000000000000000000000000000000000000";
	char meta[2048], path[4096], why[256] = "";
	size_t len, n, lookups = argc > 3 ? strtoul(argv[3], NULL, 10) : 2000000;
	struct tier_meta_img *img;
	char **paths;
	void *buf;
	double t0;
	int r;

	if (argc < 3) {
		fprintf(stderr, "usage: %s LAYER_DIR WORK_DIR [LOOKUPS]\n", argv[0]);
		return 2;
	}
	t0 = now_s();
	r = tier_meta_build_mem(argv[1], id, &cover, &buf, &len);
	if (r) {
		fprintf(stderr, "build: %s\n", strerror(-r));
		return 1;
	}
	printf("build_s %.3f\n", now_s() - t0);
	snprintf(meta, sizeof(meta), "%s/meta", argv[2]);
	t0 = now_s();
	r = tier_meta_write(meta, id, buf, len);
	printf("write_s %.4f\n", now_s() - t0);
	free(buf);
	snprintf(path, sizeof(path), "%s/%s.img", meta, id);
	t0 = now_s();
	r = r ? r : tier_meta_img_open(path, id, NULL, &img, why, sizeof(why));
	if (r) {
		fprintf(stderr, "open: %s %s\n", strerror(-r), why);
		return 1;
	}
	printf("open_check_s %.4f\n", now_s() - t0);
	printf("image_bytes %zu\nentries %llu\ndirs %llu\nxattrs %llu\nstring_bytes %llu\n",
	       img->len, (unsigned long long)img->hdr->n_ents,
	       (unsigned long long)img->hdr->n_dirs, (unsigned long long)img->hdr->n_xattrs,
	       (unsigned long long)img->hdr->str_bytes);
	printf("bytes_per_entry %.1f\n", (double)img->len / (double)img->hdr->n_ents);
	paths = all_paths(img, &n);
	shuffle(paths, n);
	lookup_ns(img, paths, n, lookups / 10);	/* warm */
	printf("mmap_lookup_ns %.1f\n", lookup_ns(img, paths, n, lookups));
	pmem_variant(img, argv[2], paths, n, lookups);
	printf("lstat_warm_ns %.1f\n", lstat_ns(argv[1], paths, n, lookups / 10));
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
	tier_meta_img_free(img);
	unlink(path);
	rmdir(meta);
	return 0;
}
