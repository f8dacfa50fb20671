/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared by the tiering unit tests: temp tier directories and files, the
 * fixture that makes them, and opening a context that must open. */
#ifndef TEST_TIER_COMMON_H
#define TEST_TIER_COMMON_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tier/tier.h"

struct tdirs {
	char root[64];
	char nvm[256], hdd[256], l1[256], l2[256];
};

static inline void tdirs_make(struct tdirs *t)
{
	snprintf(t->root, sizeof(t->root), "/tmp/nl-P-XXXXXX");
	if (!mkdtemp(t->root))
		abort();
	snprintf(t->nvm, sizeof(t->nvm), "%s/nvm", t->root);
	snprintf(t->hdd, sizeof(t->hdd), "%s/hdd", t->root);
	snprintf(t->l1, sizeof(t->l1), "%s/hdd/l1", t->root);
	snprintf(t->l2, sizeof(t->l2), "%s/hdd/l2", t->root);
	mkdir(t->nvm, 0755);
	mkdir(t->hdd, 0755);
	mkdir(t->l1, 0755);
	mkdir(t->l2, 0755);
}

static inline int trm_one(const char *p, const struct stat *st, int type, struct FTW *f)
{
	(void)st;
	(void)f;
	return type == FTW_DP ? rmdir(p) : unlink(p);
}

static inline void tdirs_remove(struct tdirs *t)
{
	nftw(t->root, trm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Write @len bytes of a pattern seeded by @seed to @dir/@rel. */
static inline void twrite(const char *dir, const char *rel, size_t len, unsigned seed)
{
	char p[PATH_MAX];
	char *buf = malloc(len + 1);
	FILE *f;

	for (size_t i = 0; i < len; i++)
		buf[i] = (char)('a' + (i * 7 + seed) % 26);
	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	f = fopen(p, "w");
	if (!f || (len && fwrite(buf, 1, len, f) != len))
		abort();
	fclose(f);
	free(buf);
}

/* Whole file contents, NUL-terminated; caller frees. */
static inline char *tread(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	if (fread(buf, 1, (size_t)n, f) != (size_t)n)
		abort();
	fclose(f);
	if (len)
		*len = (size_t)n;
	return buf;
}

static inline struct tier_config tconf(const struct tdirs *t, bool promote)
{
	struct tier_config c;

	tier_config_defaults(&c);
	c.nvm_dir = strdup(t->nvm);
	c.hdd_dir = strdup(t->hdd);
	c.promote = promote;
	c.index_size = 8 << 20;
	return c;
}

/* The number a shell command @fmt (with @dir for its %s) prints; -1 if none. */
static inline int count_cmd(const char *fmt, const char *dir)
{
	char cmd[PATH_MAX + 128];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof(cmd), fmt, dir);
	p = popen(cmd, "r");
	if (p && fscanf(p, "%d", &n) != 1)
		n = -1;
	if (p)
		pclose(p);
	return n;
}

static inline int count_dir(const char *dir)
{
	return count_cmd("ls -A '%s' | wc -l", dir);
}

/* cmocka fixture: fresh tier directories in *state. */
static inline int tdirs_setup(void **state)
{
	struct tdirs *t = calloc(1, sizeof(*t));

	tdirs_make(t);
	*state = t;
	return 0;
}

static inline int tdirs_teardown(void **state)
{
	tdirs_remove(*state);
	free(*state);
	return 0;
}

/* tier_open() of @c, which is freed; an error fails the test with its message. */
static inline struct tier_ctx *topen(struct tier_config *c)
{
	struct tier_ctx *ctx;
	char err[512];
	int rc = tier_open(c, &ctx, err, sizeof(err));

	if (rc)
		fprintf(stderr, "tier_open: %s\n", err);
	assert_int_equal(rc, 0);
	tier_config_free(c);
	return ctx;
}

#endif
