/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The directories of a layer that starts looked into and its image did not
 * answer for. The whole-layer image of a big HDD layer costs thousands of
 * disk reads and lands long after the first start; the directories one
 * start looks into cost a few hundred, and the next starts of the same
 * image look into the same ones. meta.c builds them into a partial image as
 * soon as the start is over, ahead of the whole layer.
 *
 * Lookups of names that do not exist (a search path tried entry by entry)
 * are recorded too: they are what the traced first opens do not show.
 */
#include <stdio.h>
#include <string.h>
#include "tier/meta/meta.h"

/* directories kept per layer: a start of a big image looks into a few
 * hundred; past this the whole-layer image is what helps */
#define MISSED_MAX 1024

static bool has(const struct tier_meta_cover *c, const char *dir)
{
	for (size_t k = 0; k < c->n; k++)
		if (!strcmp(c->paths[k], dir))
			return true;
	return false;
}

void tier_meta_note_miss(struct tier_ctx *ctx, int layer, const char *relpath, bool is_dir)
{
	struct tier_meta_state *s = ctx->meta;
	struct tier_meta_layer *ml;
	const char *slash;
	char dir[PATH_MAX];

	if (!s || layer < 0 || (size_t)layer >= s->n)
		return;
	ml = &s->l[layer];
	if (!ml->hdd)
		return;
	slash = strrchr(relpath, '/');
	if (is_dir || !slash)
		snprintf(dir, sizeof(dir), "%s", is_dir && *relpath ? relpath : ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - relpath), relpath);
	pthread_mutex_lock(&s->miss_lock);
	if (ml->missed.n < MISSED_MAX && !has(&ml->missed, dir) &&
	    !tier_meta_cover_add(&ml->missed, dir))
		atomic_store(&ml->missed_new, true);
	pthread_mutex_unlock(&s->miss_lock);
}

/* A walk reaches a directory only through its parent: each missed one
 * comes with the directories above it. */
static int add_with_ancestors(struct tier_meta_cover *c, const char *dir)
{
	char buf[PATH_MAX];
	char *slash;
	int r;

	snprintf(buf, sizeof(buf), "%s", dir);
	r = tier_meta_cover_add(c, buf);
	while (!r && (slash = strrchr(buf, '/'))) {
		*slash = '\0';
		r = tier_meta_cover_add(c, buf);
	}
	return r;
}

int tier_meta_missed_cover(struct tier_ctx *ctx, size_t layer, struct tier_meta_cover *c)
{
	struct tier_meta_state *s = ctx->meta;
	struct tier_meta_layer *ml = &s->l[layer];
	int r = 0;

	pthread_mutex_lock(&s->miss_lock);
	atomic_store(&ml->missed_new, false);
	for (size_t k = 0; !r && k < ml->missed.n; k++)
		r = add_with_ancestors(c, ml->missed.paths[k]);
	pthread_mutex_unlock(&s->miss_lock);
	return r;
}

/* The whole layer is imaged: nothing left to cover first. */
void tier_meta_missed_clear(struct tier_ctx *ctx, size_t layer)
{
	struct tier_meta_state *s = ctx->meta;

	pthread_mutex_lock(&s->miss_lock);
	tier_meta_cover_free(&s->l[layer].missed);
	atomic_store(&s->l[layer].missed_new, false);
	pthread_mutex_unlock(&s->miss_lock);
}
