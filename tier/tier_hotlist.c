/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Hot lists: the traced files of the known layers in first-open order, as
 * plain text that another host can import to promote before its first
 * start. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "tier/tier_private.h"
#include "tier/tier_util.h"
#include "tier/tier_index.h"
#include "tier/tier_promote.h"

#define HOTLIST_HEADER "# nlayerfs hot list 1"

static int cmp_order(const void *pa, const void *pb)
{
	const struct tier_pentry *a = *(struct tier_pentry *const *)pa;
	const struct tier_pentry *b = *(struct tier_pentry *const *)pb;

	if (a->order != b->order)
		return a->order < b->order ? -1 : 1;
	return strcmp(tier_entry_path(a), tier_entry_path(b));
}

static bool layer_known(const struct tier_ctx *ctx, const char *id)
{
	for (size_t i = 0; i < ctx->nlayers; i++)
		if (!strcmp(ctx->layers[i].id, id))
			return true;
	return false;
}

int tier_hotlist_export(struct tier_ctx *ctx, FILE *out)
{
	struct tier_pentry **v;
	size_t n = 0;
	int rc = 0;

	tier_trace_flush(ctx);
	pthread_rwlock_rdlock(&ctx->lock);
	v = malloc((ctx->root->capacity + 1) * sizeof(*v));
	if (!v) {
		pthread_rwlock_unlock(&ctx->lock);
		return -ENOMEM;
	}
	for (uint64_t i = 0; i < ctx->root->capacity; i++) {
		struct tier_pentry *e = &ctx->ent[i];

		if (e->used && e->heat && layer_known(ctx, e->layer))
			v[n++] = e;
	}
	qsort(v, n, sizeof(*v), cmp_order);
	if (fprintf(out, "%s\n", HOTLIST_HEADER) < 0)
		rc = -EIO;
	for (size_t i = 0; i < n && !rc; i++)
		if (fprintf(out, "%s %s\n", v[i]->layer, tier_entry_path(v[i])) < 0)
			rc = -EIO;
	pthread_rwlock_unlock(&ctx->lock);
	free(v);
	if (!rc && fflush(out))
		rc = -EIO;
	return rc ? rc : (int)n;
}

struct hot_item {
	int layer;
	char *path;
};

static int find_layer(const struct tier_ctx *ctx, const char *id)
{
	for (size_t i = 0; i < ctx->nlayers; i++)
		if (!strcmp(ctx->layers[i].id, id))
			return (int)i;
	return -1;
}

/* One "<64 hex> <path>" line; *layer is -1 for a layer not mounted here. */
static int parse_line(const struct tier_ctx *ctx, char *line, int *layer, char **path)
{
	char *sp = strchr(line, ' ');

	if (!sp || sp - line != TIER_ID_LEN)
		return -EINVAL;
	*sp = '\0';
	for (char *p = line; *p; p++)
		if (!isxdigit((unsigned char)*p) || isupper((unsigned char)*p))
			return -EINVAL;
	if (!tier_path_ok(sp + 1))
		return -EINVAL;
	*layer = find_layer(ctx, line);
	*path = sp + 1;
	return 0;
}

static int read_items(struct tier_ctx *ctx, FILE *in, const char *name, struct hot_item **items,
		      size_t *n, unsigned *skipped, char *err, size_t errlen)
{
	char *line = NULL;
	size_t cap = 0, alloc = 0;
	unsigned lineno = 0;
	ssize_t len;
	int rc = 0;

	while ((len = getline(&line, &cap, in)) >= 0) {
		int layer;
		char *path;

		lineno++;
		if (len && line[len - 1] == '\n')
			line[--len] = '\0';
		if (lineno == 1 && strcmp(line, HOTLIST_HEADER)) {
			tier_err(err, errlen, "%s:1: not a hot list (want '%s')", name, HOTLIST_HEADER);
			rc = -EINVAL;
			break;
		}
		if (!*line || line[0] == '#')
			continue;
		if (parse_line(ctx, line, &layer, &path)) {
			tier_err(err, errlen, "%s:%u: expected '<64 hex layer id> <relative path>'",
				 name, lineno);
			rc = -EINVAL;
			break;
		}
		if (layer < 0) {
			(*skipped)++;
			continue;
		}
		if (*n == alloc) {
			struct hot_item *v = realloc(*items, (alloc = alloc * 2 + 16) * sizeof(*v));

			if (!v) {
				rc = -ENOMEM;
				break;
			}
			*items = v;
		}
		(*items)[*n].layer = layer;
		if (!((*items)[(*n)++].path = strdup(path))) {
			(*n)--;
			rc = -ENOMEM;
			break;
		}
	}
	if (!rc && lineno == 0) {
		tier_err(err, errlen, "%s: empty file, not a hot list", name);
		rc = -EINVAL;
	}
	free(line);
	return rc;
}

int tier_hotlist_import(struct tier_ctx *ctx, FILE *in, const char *name,
			unsigned *skipped, char *err, size_t errlen)
{
	struct hot_item *items = NULL;
	size_t n = 0;
	unsigned skip = 0;
	int queued = 0, rc;

	rc = read_items(ctx, in, name, &items, &n, &skip, err, errlen);
	/* nothing is queued from a list that does not parse to the end */
	for (size_t i = 0; i < n; i++) {
		if (!rc && ctx->layers[items[i].layer].home == TIER_HOME_HDD) {
			rc = tier_queue_push(ctx, items[i].layer, items[i].path, i);
			queued += !rc;
		}
		free(items[i].path);
	}
	free(items);
	if (skipped)
		*skipped = skip;
	return rc ? rc : queued;
}
