/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Promotion of a big file's read ranges: the traced extents are copied
 * from the layer file to the same offsets of a sparse temp file on NVM,
 * fsynced, renamed to NVM/objects/<digest> and only then committed with
 * the extent list and the source's size, mtime and inode, as whole-file
 * copies are. The digest covers the source size, the extent list and the
 * bytes, so identical range copies share one object, and a range object
 * never has the name of a whole-file one. NVM pays for the blocks the
 * copy allocates, not for its size.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>
#include "tier/tier_private.h"
#include "tier/tier_util.h"
#include "tier/tier_index.h"
#include "tier/tier_promote.h"
#include "tier/tier_scrub.h"
#include "tier/range/range.h"
#include "tier/range/range_private.h"

#define COPY_CHUNK (1u << 20)
static const char digest_tag[] = "nlayerfs range copy 1\n";

struct range_plan {
	struct tier_extent *ext;
	size_t n;
	uint64_t bytes;		/* sum of the extent lengths */
};

/*
 * Add @x widened by the slack to the plan, merged with the extent before
 * it. Traced extents are sorted, so only the last one can overlap. The
 * slack is there because a later start reads ahead by other amounts than
 * the traced one did (the kernel's readahead window depends on timing):
 * without it, a few pages past a traced range would make that start open
 * the layer file on the HDD, walking its directories on the way. Reads
 * run ahead, so the whole slack goes after a range; before it only half,
 * for the pages a fault in a mapping reads around itself.
 */
static void plan_add(struct range_plan *p, const struct tier_extent *x, uint64_t slack,
		     uint64_t unit, uint64_t size)
{
	uint64_t off = x->off > slack / 2 ? x->off - slack / 2 : 0;
	uint64_t end = x->off + x->len + slack;

	if (slack && unit) {
		off -= off % unit;
		end += (unit - end % unit) % unit;
	}
	if (end > size)
		end = size;
	if (off < end)
		tier_extent_push_merged(p->ext, &p->n, off, end - off);
}

/* The traced extents, with slack, inside the file's current size, unless
 * the copy the index has for this very source already holds them all. */
static int make_plan(struct tier_ctx *ctx, int layer, const char *rel, const struct stat *st,
		     struct range_plan *p)
{
	struct tier_pentry *e;
	struct tier_prange *rec;
	const struct tier_extent *t;
	int rc = 0;

	memset(p, 0, sizeof(*p));
	pthread_rwlock_rdlock(&ctx->lock);
	e = tier_index_find(ctx, ctx->layers[layer].id, rel);
	rec = e ? tier_range_rec(ctx, e) : NULL;
	if (!rec || !rec->traced_n)
		goto out;
	p->ext = malloc(rec->traced_n * sizeof(*p->ext));
	if (!p->ext) {
		rc = -ENOMEM;
		goto out;
	}
	t = pmemobj_direct(rec->traced);
	for (uint64_t i = 0; i < rec->traced_n && t[i].off < (uint64_t)st->st_size; i++)
		plan_add(p, &t[i], ctx->cfg.range_slack, ctx->cfg.range_unit,
			 (uint64_t)st->st_size);
	for (size_t i = 0; i < p->n; i++)
		p->bytes += p->ext[i].len;
	if (e->state == TIER_ST_RANGE && tier_entry_matches(e, st) &&
	    tier_extents_cover(pmemobj_direct(rec->copy), rec->copy_n, p->ext, p->n))
		p->n = 0;
out:
	pthread_rwlock_unlock(&ctx->lock);
	return rc;
}

static void digest_u64(EVP_MD_CTX *md, uint64_t v)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	EVP_DigestUpdate(md, b, sizeof(b));
}

/* What a range copy's digest covers before its bytes. */
void tier_range_digest_head(EVP_MD_CTX *md, uint64_t size, const struct tier_extent *ext,
			    size_t n)
{
	EVP_DigestUpdate(md, digest_tag, sizeof(digest_tag) - 1);
	digest_u64(md, size);
	digest_u64(md, n);
	for (size_t i = 0; i < n; i++) {
		digest_u64(md, ext[i].off);
		digest_u64(md, ext[i].len);
	}
}

static int pwrite_all(int fd, const char *buf, size_t len, off_t off)
{
	while (len) {
		ssize_t w = pwrite(fd, buf, len, off);

		if (w < 0)
			return -errno;
		buf += w;
		len -= (size_t)w;
		off += w;
	}
	return 0;
}

/* Copy one extent at its own offset, hashing its bytes. */
static int copy_extent(struct tier_ctx *ctx, int in, int out, const struct tier_extent *x,
		       char *buf, EVP_MD_CTX *md)
{
	for (uint64_t done = 0; done < x->len;) {
		size_t want = x->len - done < COPY_CHUNK ? (size_t)(x->len - done) : COPY_CHUNK;
		ssize_t r = pread(in, buf, want, (off_t)(x->off + done));
		int rc;

		if (r < 0)
			return -errno;
		if (r == 0)
			return -EAGAIN;	/* shorter than at fstat: it changed */
		if (tier_cancelled(ctx))
			return -ECANCELED;	/* unmount: the temp goes */
		rc = pwrite_all(out, buf, (size_t)r, (off_t)(x->off + done));
		if (rc)
			return rc;
		EVP_DigestUpdate(md, buf, (size_t)r);
		done += (uint64_t)r;
	}
	return 0;
}

/* The sparse temp copy; @bytes gets the blocks it allocated. */
static int write_copy(struct tier_ctx *ctx, int in, const struct stat *st,
		      const struct range_plan *p, char *tmp, size_t tmplen, uint8_t *digest,
		      uint64_t *bytes)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	char *buf = malloc(COPY_CHUNK);
	struct stat ost;
	int out, rc = 0;

	snprintf(tmp, tmplen, "%s/tmp.XXXXXX", ctx->objdir);
	out = mkostemp(tmp, O_CLOEXEC);
	if (out < 0 || !md || !buf || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		rc = out < 0 ? -errno : -ENOMEM;
		goto done;
	}
	if (ftruncate(out, st->st_size) < 0) {
		rc = -errno;
		goto done;
	}
	tier_range_digest_head(md, (uint64_t)st->st_size, p->ext, p->n);
	for (size_t i = 0; i < p->n && !rc; i++)
		rc = copy_extent(ctx, in, out, &p->ext[i], buf, md), tier_fault("range-copying");
	if (!rc && (fsync(out) < 0 || fstat(out, &ost) < 0))
		rc = -errno;
	if (!rc) {
		*bytes = (uint64_t)ost.st_blocks * 512;
		EVP_DigestFinal_ex(md, digest, NULL);
	}
done:
	EVP_MD_CTX_free(md);
	free(buf);
	if (out >= 0)
		close(out);
	if (rc && out >= 0)
		unlink(tmp);
	return rc;
}

/* Under the write lock: make room, rename the temp into place, commit. */
static int commit_range(struct tier_ctx *ctx, int layer, const char *rel, const char *tmp,
			const uint8_t *digest, const struct stat *st,
			const struct range_plan *p, uint64_t bytes)
{
	struct tier_pentry *e;
	char obj[PATH_MAX];
	int rc = tier_index_ensure(ctx, ctx->layers[layer].id, rel, &e);

	if (rc)
		return rc;
	if (e->state == TIER_ST_RANGE && tier_entry_matches(e, st) && !memcmp(e->digest, digest, 32))
		return 0;	/* another worker got there first */
	if (e->state == TIER_ST_PROMOTED && tier_entry_matches(e, st))
		return 0;	/* a whole copy serves it already */
	/* the new copy holds every range of the old one */
	tier_index_drop_copy(ctx, e);
	if (!tier_obj_find(ctx, digest)) {
		rc = tier_make_room_locked(ctx, bytes, e);
		if (rc)
			return rc;
		tier_object_path(ctx, digest, obj, sizeof(obj));
		if (rename(tmp, obj) < 0)
			return -errno;
		rc = tier_fsync_dir(ctx->objdir);
		if (rc)
			return rc;
		tier_fault("range-renamed");
	}
	return tier_range_set_copy(ctx, e, digest, st, p->ext, p->n, bytes);
}

int tier_range_promote(struct tier_ctx *ctx, int layer, const char *rel, int fd,
		       const struct stat *st)
{
	char tmp[PATH_MAX];
	uint8_t digest[32];
	struct range_plan p;
	struct stat st2;
	uint64_t bytes = 0;
	int rc = make_plan(ctx, layer, rel, st, &p);

	if (rc || !p.n || (ctx->cfg.nvm_size && p.bytes > ctx->cfg.nvm_size))
		goto out;
	rc = write_copy(ctx, fd, st, &p, tmp, sizeof(tmp), digest, &bytes);
	if (rc)
		goto out;
	if (fstat(fd, &st2) < 0 || !tier_same_source(st, &st2)) {
		unlink(tmp);	/* changed while copying: do not keep it */
		rc = -EAGAIN;
		goto out;
	}
	/* read back as stored, before the index names it */
	rc = tier_copy_check(ctx, tmp, digest, p.ext, p.n, (uint64_t)st->st_size);
	if (rc) {
		if (rc != -ECANCELED)
			tier_copy_bad(ctx, ctx->layers[layer].id, rel, tmp, rc, "right after the copy");
		unlink(tmp);
		goto out;
	}
	pthread_rwlock_wrlock(&ctx->lock);
	rc = commit_range(ctx, layer, rel, tmp, digest, st, &p, bytes);
	pthread_rwlock_unlock(&ctx->lock);
	unlink(tmp);	/* gone after rename; removes it when not renamed */
out:
	free(p.ext);
	return rc;
}
