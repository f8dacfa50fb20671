/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Checks of NVM copies against their names. A copy is named by the
 * SHA-256 of what it must hold (the file's bytes; for a range copy its
 * extent list and their bytes), so it can be checked without reading the
 * layer file on the HDD: right after it is written, before the commit,
 * and by a scrub of every copy (once per daemon start when that start is
 * over, and when asked). A copy that fails is dropped from the index and
 * logged; reads go to the layer file, and a later start promotes it again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>
#include <openssl/evp.h>
#include "tier/tier_private.h"
#include "tier/tier_util.h"
#include "tier/tier_index.h"
#include "tier/tier_promote.h"
#include "tier/tier_scrub.h"
#include "tier/range/range.h"

#define CHECK_CHUNK (1u << 20)

/* Hash [off, off + len) of @fd into @md. */
static int hash_part(struct tier_ctx *ctx, int fd, uint64_t off, uint64_t len, char *buf,
		     EVP_MD_CTX *md)
{
	for (uint64_t done = 0; done < len;) {
		size_t want = len - done < CHECK_CHUNK ? (size_t)(len - done) : CHECK_CHUNK;
		ssize_t r = pread(fd, buf, want, (off_t)(off + done));

		if (r < 0)
			return -errno;
		if (r == 0)
			return -EBADMSG;	/* shorter than it must be */
		if (tier_cancelled(ctx))
			return -ECANCELED;
		EVP_DigestUpdate(md, buf, (size_t)r);
		done += (uint64_t)r;
	}
	return 0;
}

/* 0 when the copy at @path hashes to @digest; -EBADMSG when not.
 * @ext NULL: a whole copy (all its bytes); else a range copy of a file
 * of @size bytes holding @n extents. */
int tier_copy_check(struct tier_ctx *ctx, const char *path, const uint8_t *digest,
		    const struct tier_extent *ext, size_t n, uint64_t size)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	char *buf = malloc(CHECK_CHUNK);
	uint8_t got[32];
	struct stat st;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), rc = 0;

	if (fd < 0 || fstat(fd, &st) < 0)
		rc = -errno;
	else if (!md || !buf || !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
		rc = -ENOMEM;
	else if (!ext)
		rc = hash_part(ctx, fd, 0, (uint64_t)st.st_size, buf, md);
	else if ((uint64_t)st.st_size != size)
		rc = -EBADMSG;
	else
		tier_range_digest_head(md, size, ext, n);
	for (size_t i = 0; ext && !rc && i < n; i++)
		rc = hash_part(ctx, fd, ext[i].off, ext[i].len, buf, md);
	if (!rc) {
		EVP_DigestFinal_ex(md, got, NULL);
		rc = memcmp(got, digest, 32) ? -EBADMSG : 0;
	}
	if (fd >= 0)
		close(fd);
	EVP_MD_CTX_free(md);
	free(buf);
	return rc;
}

void tier_copy_bad(struct tier_ctx *ctx, const char *layer_id, const char *rel,
		   const char *path, int rc, const char *what)
{
	tier_log(ctx, LOG_WARNING | TIER_LOG_TELL, "NVM copy %s of %s (layer %.12s) %s: %s; "
		 "reads go to the layer file", path, rel, layer_id,
		 rc == -EBADMSG ? "does not match its digest" : strerror(-rc), what);
	atomic_fetch_add(&ctx->scrub_dropped, 1);
}

/* One distinct copy to check. */
struct scrub_item {
	uint8_t digest[32];
	struct tier_extent *ext;	/* NULL: a whole copy */
	size_t n;
	uint64_t size;
};

static int cmp_item(const void *a, const void *b)
{
	return memcmp(((const struct scrub_item *)a)->digest,
		      ((const struct scrub_item *)b)->digest, 32);
}

static int item_of(struct tier_ctx *ctx, const struct tier_pentry *e, struct scrub_item *it)
{
	const struct tier_prange *rec;

	memcpy(it->digest, e->digest, 32);
	it->ext = NULL;
	it->n = 0;
	it->size = e->src_size;
	if (e->state != TIER_ST_RANGE)
		return 0;
	rec = tier_range_rec(ctx, e);
	if (!rec || !rec->copy_n)
		return -ENOENT;
	it->n = rec->copy_n;
	it->ext = malloc(it->n * sizeof(*it->ext));
	if (!it->ext)
		return -ENOMEM;
	memcpy(it->ext, pmemobj_direct(rec->copy), it->n * sizeof(*it->ext));
	return 0;
}

/* Under the read lock: every copy the index names, each once. */
static bool has_copy(const struct tier_pentry *e)
{
	return e->used && (e->state == TIER_ST_PROMOTED || e->state == TIER_ST_RANGE);
}

static int collect(struct tier_ctx *ctx, struct scrub_item **out, size_t *nout)
{
	struct scrub_item *v;
	size_t n = 0, u = 0, with_copy = 0;

	/* files sharing one object each name it */
	for (uint64_t i = 0; i < ctx->root->capacity; i++)
		with_copy += has_copy(&ctx->ent[i]);
	v = calloc(with_copy + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (uint64_t i = 0; i < ctx->root->capacity && n < with_copy; i++)
		if (has_copy(&ctx->ent[i]) && item_of(ctx, &ctx->ent[i], &v[n]) == 0)
			n++;
	qsort(v, n, sizeof(*v), cmp_item);
	for (size_t i = 0; i < n; i++) {
		if (u && !cmp_item(&v[u - 1], &v[i])) {
			free(v[i].ext);
			continue;
		}
		v[u++] = v[i];
	}
	*out = v;
	*nout = u;
	return 0;
}

/* Drop every entry served by the bad copy; the last one removes it. */
static void drop_copy(struct tier_ctx *ctx, const struct scrub_item *it, int why)
{
	char obj[PATH_MAX];

	tier_object_path(ctx, it->digest, obj, sizeof(obj));
	pthread_rwlock_wrlock(&ctx->lock);
	for (uint64_t i = 0; i < ctx->root->capacity; i++) {
		struct tier_pentry *e = &ctx->ent[i];

		if (!has_copy(e) || memcmp(e->digest, it->digest, 32))
			continue;
		tier_copy_bad(ctx, e->layer, tier_entry_path(e), obj, why, "dropped");
		tier_index_drop_copy(ctx, e);
	}
	pthread_rwlock_unlock(&ctx->lock);
}

int tier_scrub(struct tier_ctx *ctx, struct tier_scrub_result *res)
{
	struct scrub_item *v;
	size_t n;
	int rc;

	memset(res, 0, sizeof(*res));
	pthread_rwlock_rdlock(&ctx->lock);
	rc = collect(ctx, &v, &n);
	pthread_rwlock_unlock(&ctx->lock);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		char obj[PATH_MAX];
		int r = 0;

		tier_object_path(ctx, v[i].digest, obj, sizeof(obj));
		if (!rc)
			r = tier_copy_check(ctx, obj, v[i].digest, v[i].ext, v[i].n, v[i].size);
		if (r == -ECANCELED || rc)
			rc = -ECANCELED;
		else if (r == -ENOMEM)
			rc = r;
		else if (r)
			drop_copy(ctx, &v[i], r), res->dropped++;
		if (!rc)
			res->checked++;
		free(v[i].ext);
	}
	free(v);
	atomic_fetch_add(&ctx->scrubs, !rc);
	return rc;
}
