/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Range copies of big files: extent arithmetic, the open path and status.
 *
 * A start reads only parts of a big library or image file, so for files
 * of at least range_threshold bytes the trace records which range_unit
 * blocks were read (range_trace.c), the index keeps the union over
 * all starts as an extent list (range_index.c), and a worker copies
 * just those extents into a sparse NVM file (range_promote.c). The
 * union mount reads inside those extents from the copy, the rest from the
 * layer file.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "tier/tier_private.h"
#include "tier/tier_index.h"
#include "tier/tier_promote.h"
#include "tier/range/range.h"
#include "tier/range/range_private.h"

bool tier_range_big(const struct tier_ctx *ctx, uint64_t size)
{
	return ctx->cfg.range_threshold && size >= ctx->cfg.range_threshold;
}

/* Runs of set bits as byte extents, the last one clipped to @size.
 * @out has room for (nbits + 1) / 2 extents. Returns how many. */
size_t tier_bitmap_extents(const uint64_t *bits, uint64_t nbits, uint64_t unit, uint64_t size,
			   struct tier_extent *out)
{
	size_t n = 0;
	uint64_t i = 0;

	while (i < nbits) {
		uint64_t start, end;

		if (!(bits[i / 64] >> (i % 64) & 1)) {
			/* skip whole empty words quickly */
			i = bits[i / 64] >> (i % 64) ? i + 1 : (i / 64 + 1) * 64;
			continue;
		}
		start = i;
		while (i < nbits && (bits[i / 64] >> (i % 64) & 1))
			i++;
		if (start * unit >= size)
			break;
		end = i * unit < size ? i * unit : size;
		out[n].off = start * unit;
		out[n].len = end - start * unit;
		n++;
	}
	return n;
}

/* Append [off, off + len) to @out, joining an overlapping or touching tail.
 * Appends must come in order of @off. */
void tier_extent_push_merged(struct tier_extent *out, size_t *n, uint64_t off, uint64_t len)
{
	struct tier_extent *last = *n ? &out[*n - 1] : NULL;

	if (!len)
		return;
	if (last && off <= last->off + last->len) {
		if (off + len > last->off + last->len)
			last->len = off + len - last->off;
		return;
	}
	out[*n].off = off;
	out[*n].len = len;
	(*n)++;
}

/* The union of two sorted extent lists, merged into runs. @out has room
 * for na + nb extents. Returns how many. */
size_t tier_extents_union(const struct tier_extent *a, size_t na, const struct tier_extent *b,
			  size_t nb, struct tier_extent *out)
{
	size_t i = 0, j = 0, n = 0;

	while (i < na || j < nb) {
		const struct tier_extent *x;

		if (j >= nb || (i < na && a[i].off <= b[j].off))
			x = &a[i++];
		else
			x = &b[j++];
		tier_extent_push_merged(out, &n, x->off, x->len);
	}
	return n;
}

/* true when every byte of @want lies inside @have (both sorted, merged). */
bool tier_extents_cover(const struct tier_extent *have, size_t nh, const struct tier_extent *want,
			size_t nw)
{
	size_t i = 0;

	for (size_t j = 0; j < nw; j++) {
		while (i < nh && have[i].off + have[i].len <= want[j].off)
			i++;
		if (i >= nh || have[i].off > want[j].off ||
		    have[i].off + have[i].len < want[j].off + want[j].len)
			return false;
	}
	return true;
}

static struct tier_extent *dup_extents(const PMEMoid oid, uint64_t n)
{
	struct tier_extent *v = malloc((n ? n : 1) * sizeof(*v));

	if (v && n)
		memcpy(v, pmemobj_direct(oid), n * sizeof(*v));
	return v;
}

/* Under the read lock: the committed copy of @e, if it matches @st. */
static int copy_of_locked(struct tier_ctx *ctx, struct tier_pentry *e, const struct stat *st,
			  struct tier_range *out, bool *stale)
{
	struct tier_prange *rec = tier_range_rec(ctx, e);
	char path[PATH_MAX];

	if (e->state != TIER_ST_RANGE || !rec || !rec->copy_n)
		return 0;
	if (!tier_entry_matches(e, st)) {
		*stale = true;
		return 0;
	}
	tier_object_path(ctx, e->digest, path, sizeof(path));
	out->copy = strdup(path);
	out->ext = dup_extents(rec->copy, rec->copy_n);
	if (!out->copy || !out->ext)
		return -ENOMEM;
	out->n_ext = rec->copy_n;
	return 0;
}

/* A copy of an older version of the file is dropped, never served. */
static void drop_stale(struct tier_ctx *ctx, const char *lid, const char *rel,
		       const struct stat *st)
{
	struct tier_pentry *e;

	pthread_rwlock_wrlock(&ctx->lock);
	e = tier_index_find(ctx, lid, rel);
	if (e && e->state == TIER_ST_RANGE && !tier_entry_matches(e, st))
		tier_index_drop_copy(ctx, e);
	pthread_rwlock_unlock(&ctx->lock);
}

int tier_range_open(struct tier_ctx *ctx, int layer, const char *relpath,
		    const struct stat *st, struct tier_range *out)
{
	const char *lid;
	struct tier_pentry *e;
	bool stale = false;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (!ctx || layer < 0 || (size_t)layer >= ctx->nlayers || !relpath || !st ||
	    !S_ISREG(st->st_mode) || !tier_range_big(ctx, (uint64_t)st->st_size) ||
	    ctx->layers[layer].home != TIER_HOME_HDD)
		return 0;
	lid = ctx->layers[layer].id;
	pthread_rwlock_rdlock(&ctx->lock);
	e = tier_index_find(ctx, lid, relpath);
	if (e)
		rc = copy_of_locked(ctx, e, st, out, &stale);
	pthread_rwlock_unlock(&ctx->lock);
	if (stale)
		drop_stale(ctx, lid, relpath, st);
	if (!rc)
		out->trace = tier_range_trace_get(ctx, layer, relpath, (uint64_t)st->st_size);
	if (rc) {
		tier_range_close(out);
		return rc;
	}
	return out->trace || out->copy ? 1 : 0;
}

void tier_range_close(struct tier_range *r)
{
	if (!r)
		return;
	tier_range_trace_put(r->trace);
	free(r->copy);
	free(r->ext);
	memset(r, 0, sizeof(*r));
}

void tier_range_note_served(struct tier_ctx *ctx, uint64_t nvm_bytes, uint64_t layer_bytes)
{
	if (nvm_bytes)
		atomic_fetch_add_explicit(&ctx->range_served_nvm, nvm_bytes, memory_order_relaxed);
	if (layer_bytes)
		atomic_fetch_add_explicit(&ctx->range_served_layer, layer_bytes, memory_order_relaxed);
}

int tier_range_extents(struct tier_ctx *ctx, int layer, const char *relpath, bool copy,
		       struct tier_extent **ext, size_t *n)
{
	struct tier_pentry *e;
	struct tier_prange *rec;
	int rc = -ENOENT;

	*ext = NULL;
	*n = 0;
	if (layer < 0 || (size_t)layer >= ctx->nlayers || !relpath)
		return -EINVAL;
	pthread_rwlock_rdlock(&ctx->lock);
	e = tier_index_find(ctx, ctx->layers[layer].id, relpath);
	rec = e ? tier_range_rec(ctx, e) : NULL;
	if (rec) {
		*n = copy ? rec->copy_n : rec->traced_n;
		*ext = dup_extents(copy ? rec->copy : rec->traced, *n);
		rc = *ext ? 0 : -ENOMEM;
	}
	pthread_rwlock_unlock(&ctx->lock);
	return rc;
}

int tier_range_status(struct tier_ctx *ctx, struct tier_range_status *s)
{
	memset(s, 0, sizeof(*s));
	pthread_rwlock_rdlock(&ctx->lock);
	for (uint64_t i = 0; i < ctx->root->capacity; i++) {
		const struct tier_pentry *e = &ctx->ent[i];
		const struct tier_prange *rec = e->used ? tier_range_rec(ctx, e) : NULL;
		const struct tier_extent *x;

		if (!rec)
			continue;
		if (rec->traced_n)
			s->traced_files++;
		x = pmemobj_direct(rec->traced);
		for (uint64_t k = 0; k < rec->traced_n; k++)
			s->traced_bytes += x[k].len;
		if (e->state == TIER_ST_RANGE) {
			s->files++;
			s->nvm_bytes += rec->copy_bytes;
			s->file_bytes += e->src_size;
		}
	}
	pthread_rwlock_unlock(&ctx->lock);
	s->served_nvm = atomic_load(&ctx->range_served_nvm);
	s->served_layer = atomic_load(&ctx->range_served_layer);
	return 0;
}
