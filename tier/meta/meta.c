/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Metadata images of HDD layers on the NVM tier: which image a layer has
 * and the background thread that builds, verifies and replaces images (the
 * lookups the union's request path makes are in meta_lookup.c).
 *
 * A cold start of a container walks directories and inodes of its layers
 * long before it reads data: a few hundred random reads on an HDD. An image
 * answers those walks (lstat, readdir, readlink, getxattr, listxattr) from
 * NVM; only opening a cold file's data still goes to the layer.
 *
 * Staleness. Layers are immutable by contract, but a directory may be
 * replaced or edited behind our back. What is detected, and when:
 *  - at open: the layer root's dev/ino/ctime/mtime against the header, which
 *    catches a replaced layer directory and any change to its top level;
 *  - when the mount opens a lower file's data from the layer it compares
 *    that file's real attributes with the image (tier_meta_check) and drops
 *    the image at the first difference;
 *  - after a trace window (never during a cold start), for an image found
 *    on NVM and then again REVERIFY_NS after its last build or walk, a
 *    background walk rebuilds the covered part and compares it with the
 *    image.
 * Not detected until then: a change deep in the tree, between the open and
 * the walk, to a file whose data is not opened from the layer (its stat,
 * listing, link target or xattrs are served as they were). Access times are
 * those of the build (reads through the mount change them, so they are not
 * compared either). A device number that changes across reboots counts as
 * a replaced layer (the image is rebuilt).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include "tier/meta/meta.h"
#include "tier/tier_util.h"
#include "tier/tier_index.h"
#include "tier/tier_promote.h"
#include "tier/tier_trace.h"

/* how often an image is walked again to compare it with its layer */
/* what happens to an image is told to whoever started the mount, too */
#define TELL (LOG_NOTICE | TIER_LOG_TELL)
#define REVERIFY_NS (600ULL * 1000000000ULL)

static const char *short_id(const struct tier_ctx *ctx, size_t i)
{
	return ctx->layers[i].id;
}

static void img_path(const struct tier_meta_state *s, const char *id, char *out, size_t n)
{
	snprintf(out, n, "%s/%s.img", s->dir, id);
}

/* ---- installing and dropping images (s->lock held) ---- */

static void install(struct tier_ctx *ctx, size_t i, struct tier_meta_img *img)
{
	struct tier_meta_state *s = ctx->meta;
	struct tier_meta_img *old = atomic_exchange(&s->l[i].img, img);

	if (img)
		atomic_fetch_add(&ctx->meta_bytes, img->len);
	if (old) {
		atomic_fetch_sub(&ctx->meta_bytes, old->len);
		old->next_retired = s->retired;
		s->retired = old;
	}
}

static void drop_locked(struct tier_ctx *ctx, size_t i)
{
	char p[PATH_MAX];

	install(ctx, i, NULL);
	img_path(ctx->meta, ctx->layers[i].id, p, sizeof(p));
	unlink(p);
	ctx->meta->l[i].want_build = true;
	ctx->meta->l[i].changed = true;
	pthread_cond_signal(&ctx->meta->wake);
}

/* ---- what to cover ---- */

static int add_ancestors(struct tier_meta_cover *c, const char *path)
{
	char buf[PATH_MAX];
	char *slash;
	int r = 0;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return 0;
	while (!r && (slash = strrchr(buf, '/'))) {
		*slash = '\0';
		r = tier_meta_cover_add(c, buf);
	}
	return r;
}

/* The directories the traced starts walked: ancestors of traced files,
 * and the directories their lookups missed in the image. */
static int hot_cover(struct tier_ctx *ctx, size_t i, struct tier_meta_cover *c)
{
	const char *id = ctx->layers[i].id;
	int r = tier_meta_cover_add(c, ".");

	pthread_rwlock_rdlock(&ctx->lock);
	for (uint64_t k = 0; !r && k < ctx->root->capacity; k++) {
		const struct tier_pentry *e = &ctx->ent[k];

		if (e->used && !strcmp(e->layer, id))
			r = add_ancestors(c, tier_entry_path(e));
	}
	pthread_rwlock_unlock(&ctx->lock);
	if (!r)
		r = tier_meta_missed_cover(ctx, i, c);
	tier_meta_cover_sort(c);
	return r;
}

static int img_cover(const struct tier_meta_img *img, struct tier_meta_cover *c)
{
	int r = 0;

	c->full = img->hdr->flags & TIER_META_F_FULL;
	for (uint64_t k = 0; !r && !c->full && k < img->hdr->n_dirs; k++)
		r = tier_meta_cover_add(c, img->strs + img->dirs[k].path_off);
	tier_meta_cover_sort(c);
	return r;
}

/* Does @img cover every directory of @c? */
static bool img_covers(const struct tier_meta_img *img, const struct tier_meta_cover *c)
{
	if (img->hdr->flags & TIER_META_F_FULL)
		return true;
	for (size_t k = 0; k < c->n; k++) {
		long e = tier_meta_img_find(img, c->paths[k]);

		if (e < 0 || img->ents[e].dir == TIER_META_NONE)
			return false;
	}
	return true;
}

/* ---- building ---- */

/* A walk reads the HDD a start may be waiting for: it waits for the
 * starts to pause, directory by directory. */
static int walk_pause(void *arg)
{
	return tier_yield_to_starts(arg);
}

static bool window_open(struct tier_ctx *ctx)
{
	uint64_t end = atomic_load(&ctx->trace_end);

	return end && tier_now_mono_ns() < end;
}

/* Lookups missed directories of layer @i that its image could hold. */
static bool hot_due(struct tier_meta_state *s, size_t i)
{
	struct tier_meta_img *img = atomic_load(&s->l[i].img);

	return s->l[i].hdd && atomic_load(&s->l[i].missed_new) &&
	       !(img && (img->hdr->flags & TIER_META_F_FULL));
}

/* A start is over and missed in a layer with no image at all: the
 * directories it looked into are built first (hot_build). */
static bool hot_wanted(struct tier_ctx *ctx, size_t i)
{
	struct tier_meta_layer *ml = &ctx->meta->l[i];

	return ml->hdd && !ml->gave_way && !atomic_load(&ml->img) && atomic_load(&ml->missed_new) &&
	       !window_open(ctx);
}

/* The walk of a whole layer gives way to that: it reads a thousand
 * directories to help every lookup later, the hot walk a few dozen to
 * help the next start's now. The whole walk starts over after it. */
static int full_walk_pause(void *arg)
{
	struct tier_ctx *ctx = arg;
	int r = tier_yield_to_starts(ctx);

	for (size_t i = 0; !r && i < ctx->meta->n; i++) {
		if (hot_wanted(ctx, i)) {
			ctx->meta->l[i].gave_way = true;	/* once: it must end */
			r = -EAGAIN;
		}
	}
	return r;
}

/* Room in the NVM budget for @len image bytes replacing @old bytes. The
 * whole-layer image takes free room only; a hot-first one may evict the
 * coldest promoted copies, as the start needs its walk more than them. */
static bool fits(struct tier_ctx *ctx, uint64_t len, uint64_t old, bool may_evict)
{
	uint64_t budget = ctx->cfg.nvm_size, need = len > old ? len - old : 0;
	bool ok;

	if (!budget || !need)
		return true;
	pthread_rwlock_wrlock(&ctx->lock);
	ok = tier_nvm_used_locked(ctx) + need <= budget ||
	     (may_evict && tier_make_room_locked(ctx, need, NULL) == 0);
	pthread_rwlock_unlock(&ctx->lock);
	return ok;
}

/* Lay out an image of layer @i within the budget: the whole layer if it
 * fits, else the hot directories. *buf NULL: none fits. */
static int build_within_budget(struct tier_ctx *ctx, size_t i, uint64_t old,
			       void **buf, size_t *len, bool *full)
{
	struct tier_meta_cover c = { .full = true, .stop = &ctx->cancel, .pause = full_walk_pause,
				     .pause_arg = ctx };
	const struct tier_layer *l = &ctx->layers[i];
	int r = tier_meta_build_mem(l->dir, l->id, &c, buf, len);

	*full = true;
	if (r || fits(ctx, *len, old, false))
		return r;
	free(*buf);
	*buf = NULL;
	*full = false;
	c.full = false;
	c.pause = walk_pause;
	r = hot_cover(ctx, i, &c);
	if (!r)
		r = tier_meta_build_mem(l->dir, l->id, &c, buf, len);
	tier_meta_cover_free(&c);
	if (!r && !fits(ctx, *len, old, true)) {
		free(*buf);
		*buf = NULL;
	}
	return r;
}

static int write_and_open(struct tier_ctx *ctx, size_t i, const void *buf, size_t len,
			  struct tier_meta_img **img)
{
	struct tier_meta_state *s = ctx->meta;
	char p[PATH_MAX], why[256] = "";
	int r = tier_meta_img_check(buf, len, ctx->layers[i].id, why, sizeof(why));

	if (!r)
		r = tier_meta_write(s->dir, ctx->layers[i].id, buf, len);
	img_path(s, ctx->layers[i].id, p, sizeof(p));
	if (!r)
		r = tier_meta_img_open(p, ctx->layers[i].id, NULL, img, why, sizeof(why));
	if (r)
		tier_log(ctx, TELL, "layer %s: cannot write its metadata image: %s", short_id(ctx, i),
			 *why ? why : strerror(-r));
	else
		(*img)->verified = true;
	return r;
}

static void do_build(struct tier_ctx *ctx, size_t i, bool changed)
{
	struct tier_meta_state *s = ctx->meta;
	struct tier_meta_img *cur = atomic_load(&s->l[i].img), *img = NULL;
	void *buf = NULL;
	size_t len = 0;
	bool full;
	int r = build_within_budget(ctx, i, cur ? cur->len : 0, &buf, &len, &full);

	if (r == -ECANCELED) {
		;	/* unmount: built at a later mount */
	} else if (r == -EAGAIN) {
		/* gave way to a hot build: again right after it, even in
		 * a window, as it was under way (its walk still yields) */
		pthread_mutex_lock(&s->lock);
		s->l[i].want_build = s->l[i].fresh = true;
		s->l[i].changed |= changed;
		pthread_mutex_unlock(&s->lock);
		return;
	} else if (r) {
		tier_log(ctx, TELL, "layer %s: metadata image not built: %s", short_id(ctx, i), strerror(-r));
	} else if (!buf) {
		tier_log(ctx, TELL, "layer %s: metadata image does not fit the NVM budget", short_id(ctx, i));
	} else if (!write_and_open(ctx, i, buf, len, &img)) {
		atomic_fetch_add(&s->builds, 1);
		if (changed) {
			atomic_fetch_add(&s->rebuilds, 1);
			tier_log(ctx, TELL, "layer %s changed; metadata image rebuilt", short_id(ctx, i));
		}
		if (full)
			tier_meta_missed_clear(ctx, i);
	}
	free(buf);
	pthread_mutex_lock(&s->lock);
	if (img) {
		install(ctx, i, img);
		s->l[i].checked_ns = tier_now_mono_ns();
	}
	pthread_mutex_unlock(&s->lock);
}

/* The directories the last starts looked into, added to the image of
 * layer @i (none yet, or a partial one) ahead of the whole layer. */
static void do_hot_build(struct tier_ctx *ctx, size_t i)
{
	struct tier_meta_state *s = ctx->meta;
	struct tier_meta_img *cur = atomic_load(&s->l[i].img), *img = NULL;
	struct tier_meta_cover c = { 0 };
	void *buf = NULL;
	size_t len = 0;
	int r = cur ? img_cover(cur, &c) : 0;

	if (c.full) {
		tier_meta_cover_free(&c);
		return;
	}
	c.stop = &ctx->cancel;
	c.pause = walk_pause;
	c.pause_arg = ctx;
	if (!r)
		r = hot_cover(ctx, i, &c);
	if (!r)
		r = tier_meta_build_mem(ctx->layers[i].dir, ctx->layers[i].id, &c, &buf, &len);
	tier_meta_cover_free(&c);
	if (!r && fits(ctx, len, cur ? cur->len : 0, true) &&
	    !write_and_open(ctx, i, buf, len, &img))
		atomic_fetch_add(&s->builds, 1);
	free(buf);
	pthread_mutex_lock(&s->lock);
	if (img && atomic_load(&s->l[i].img) == cur) {
		install(ctx, i, img);
		s->l[i].checked_ns = tier_now_mono_ns();
	} else if (img) {
		tier_meta_img_free(img);	/* replaced meanwhile */
	}
	pthread_mutex_unlock(&s->lock);
}

/* Walk the covered part again and compare it with the image, all but
 * access times. A difference rebuilds; so does a hot set the image no
 * longer covers. */
static void do_verify(struct tier_ctx *ctx, size_t i)
{
	struct tier_meta_state *s = ctx->meta;
	struct tier_meta_img *cur = atomic_load(&s->l[i].img);
	struct tier_meta_cover c = { 0 }, hot = { 0 };
	const struct tier_meta_hdr *h;
	void *buf = NULL;
	size_t len;
	bool same;
	int r;

	if (!cur)
		return;
	r = img_cover(cur, &c);
	c.stop = &ctx->cancel;
	c.pause = walk_pause;
	c.pause_arg = ctx;
	if (!r)
		r = tier_meta_build_mem(ctx->layers[i].dir, ctx->layers[i].id, &c, &buf, &len);
	tier_meta_cover_free(&c);
	if (r) {
		free(buf);
		return;		/* the layer changes under the walk: next time */
	}
	h = buf;
	same = len == cur->len && h->off_atimes == cur->hdr->off_atimes &&
	       !memcmp(h->layer, cur->hdr->layer, sizeof(h->layer) + 32) &&
	       !memcmp((const char *)buf + sizeof(*h), (const char *)cur->map + sizeof(*h),
		       h->off_atimes);
	free(buf);
	if (!same) {
		/* stop serving it now; the thread rebuilds next */
		pthread_mutex_lock(&s->lock);
		if (atomic_load(&s->l[i].img) == cur)
			drop_locked(ctx, i);
		pthread_mutex_unlock(&s->lock);
		return;
	}
	cur->verified = true;
	pthread_mutex_lock(&s->lock);
	s->l[i].checked_ns = tier_now_mono_ns();
	pthread_mutex_unlock(&s->lock);
	if (!(cur->hdr->flags & TIER_META_F_FULL) && !hot_cover(ctx, i, &hot) &&
	    !img_covers(cur, &hot))
		do_build(ctx, i, false);
	tier_meta_cover_free(&hot);
}

/* ---- the thread ---- */

/* A cold start is under way: no walks of the HDD now. */
static bool in_window(struct tier_ctx *ctx)
{
	struct tier_meta_state *s = ctx->meta;
	uint64_t end = atomic_load(&ctx->trace_end), now = tier_now_mono_ns();

	if (end && end != s->last_window) {
		/* a new window: verify, once it closes, the images not walked
		 * for a while (a host starts containers every few seconds; a
		 * walk of every layer after each would keep its HDD busy) */
		s->last_window = end;
		for (size_t i = 0; i < s->n; i++)
			if (atomic_load(&s->l[i].img) &&
			    (!s->l[i].checked_ns || now - s->l[i].checked_ns >= REVERIFY_NS))
				s->l[i].want_verify = true;
	}
	if (end)
		return now < end;
	return !ctx->cfg.trace && now < s->quiet_after;
}

/* s->lock held: the next job, or -1. */
static long next_job(struct tier_ctx *ctx, bool *verify, bool *changed, bool *hot)
{
	struct tier_meta_state *s = ctx->meta;
	bool window = in_window(ctx);

	/* after the starts: what they looked into comes first (asked to
	 * finish everything now, a whole build due anyway comes first) */
	for (size_t i = 0; i < s->n; i++) {
		if (hot_due(s, i) && (!window || (s->force && !s->l[i].want_build))) {
			*hot = true;
			return (long)i;
		}
	}
	for (size_t i = 0; i < s->n; i++) {
		if (s->l[i].want_build && s->l[i].fresh) {
			s->l[i].want_build = s->l[i].fresh = false;
			*verify = false;
			*changed = s->l[i].changed;
			s->l[i].changed = false;
			return (long)i;
		}
	}
	if (window && !s->force)
		return -1;
	for (size_t i = 0; i < s->n; i++) {
		if (s->l[i].want_build) {
			s->l[i].want_build = false;
			*verify = false;
			*changed = s->l[i].changed;
			s->l[i].changed = false;
			return (long)i;
		}
	}
	for (size_t i = 0; i < s->n; i++) {
		if (s->l[i].want_verify) {
			s->l[i].want_verify = false;
			*verify = true;
			return (long)i;
		}
	}
	return -1;
}

static void *meta_main(void *arg)
{
	struct tier_ctx *ctx = arg;
	struct tier_meta_state *s = ctx->meta;

	pthread_mutex_lock(&s->lock);
	while (!s->stop) {
		bool verify = false, changed = false, hot = false;
		long i = next_job(ctx, &verify, &changed, &hot);
		struct timespec ts;

		if (i >= 0) {
			s->busy++;
			pthread_mutex_unlock(&s->lock);
			if (hot)
				do_hot_build(ctx, (size_t)i);
			else if (verify)
				do_verify(ctx, (size_t)i);
			else
				do_build(ctx, (size_t)i, changed);
			pthread_mutex_lock(&s->lock);
			s->busy--;
			continue;
		}
		pthread_cond_broadcast(&s->done);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;		/* to notice the end of a trace window */
		pthread_cond_timedwait(&s->wake, &s->lock, &ts);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* ---- start, stop, wait ---- */

static void open_existing(struct tier_ctx *ctx, size_t i)
{
	struct tier_meta_state *s = ctx->meta;
	struct tier_meta_layer *ml = &s->l[i];
	struct tier_meta_img *img;
	struct tier_meta_sig sig;
	char p[PATH_MAX], why[256] = "";
	int r = tier_meta_sig_of(ctx->layers[i].dir, &sig);

	if (r)
		return;
	ml->hdd = true;
	ml->dev = (dev_t)sig.dev;
	img_path(s, ctx->layers[i].id, p, sizeof(p));
	r = tier_meta_img_open(p, ctx->layers[i].id, &sig, &img, why, sizeof(why));
	if (!r && ctx->cfg.nvm_size &&
	    atomic_load(&ctx->meta_bytes) + img->len > ctx->cfg.nvm_size) {
		/* the budget shrank: build again what fits now */
		tier_meta_img_free(img);
		ml->want_build = true;
		unlink(p);
		return;
	}
	if (!r) {
		install(ctx, i, img);
		ml->want_verify = true;
		return;
	}
	ml->want_build = true;
	if (r == -ENOENT)
		return;
	ml->changed = strstr(why, "layer directory") != NULL;
	tier_log(ctx, TELL, "layer %s: metadata image %s refused: %s; rebuilding", short_id(ctx, i), p,
		 *why ? why : strerror(-r));
	unlink(p);
}

int tier_meta_start(struct tier_ctx *ctx)
{
	struct tier_meta_state *s;

	if (ctx->meta)
		return 0;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	/* as many as the context can hold: layers come with later mounts */
	s->l = calloc(TIER_MAX_LAYERS, sizeof(*s->l));
	if (!s->l || asprintf(&s->dir, "%s/%s", ctx->cfg.nvm_dir, TIER_META_DIR) < 0) {
		free(s->l);
		free(s);
		return -ENOMEM;
	}
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->miss_lock, NULL);
	pthread_cond_init(&s->wake, NULL);
	pthread_cond_init(&s->done, NULL);
	s->n = tier_layer_count(ctx);
	s->quiet_after = tier_now_mono_ns() + (uint64_t)ctx->cfg.trace_window * 1000000000ULL;
	ctx->meta = s;
	for (size_t i = 0; i < s->n; i++) {
		if (ctx->layers[i].home == TIER_HOME_HDD)
			open_existing(ctx, i);
		s->l[i].known = true;
	}
	if (pthread_create(&s->thread, NULL, meta_main, ctx)) {
		tier_meta_stop(ctx);
		return -EAGAIN;
	}
	s->thread_on = true;
	return 0;
}

/* A layer the tier sees for the first time: its image is opened, or built
 * at once rather than after a window, so the next start walks NVM. */
void tier_meta_layer_added(struct tier_ctx *ctx, size_t layer)
{
	struct tier_meta_state *s = ctx->meta;

	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	if (!s->l[layer].known && ctx->layers[layer].home == TIER_HOME_HDD) {
		open_existing(ctx, layer);
		s->l[layer].fresh = s->l[layer].want_build;
	}
	s->l[layer].known = true;
	if (layer >= s->n)
		s->n = layer + 1;
	pthread_cond_broadcast(&s->wake);
	pthread_mutex_unlock(&s->lock);
}

void tier_meta_stop(struct tier_ctx *ctx)
{
	struct tier_meta_state *s = ctx->meta;

	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_cond_broadcast(&s->wake);
	pthread_mutex_unlock(&s->lock);
	if (s->thread_on)
		pthread_join(s->thread, NULL);
	for (size_t i = 0; i < s->n; i++) {
		install(ctx, i, NULL);
		tier_meta_cover_free(&s->l[i].missed);
	}
	for (struct tier_meta_img *r = s->retired, *nx; r; r = nx) {
		nx = r->next_retired;
		tier_meta_img_free(r);
	}
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->miss_lock);
	pthread_cond_destroy(&s->wake);
	pthread_cond_destroy(&s->done);
	free(s->dir);
	free(s->l);
	free(s);
	ctx->meta = NULL;
}

static bool pending(struct tier_meta_state *s, bool verify)
{
	if (s->busy)
		return true;
	for (size_t i = 0; i < s->n; i++)
		if (s->l[i].want_build || (verify && s->l[i].want_verify) || hot_due(s, i))
			return true;
	return false;
}

int tier_meta_wait(struct tier_ctx *ctx, bool verify, int timeout_ms)
{
	struct tier_meta_state *s = ctx->meta;
	struct timespec end;
	int r = 0;

	if (!s)
		return -ENOENT;
	clock_gettime(CLOCK_REALTIME, &end);
	if (timeout_ms >= 0) {
		end.tv_sec += timeout_ms / 1000;
		end.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (end.tv_nsec >= 1000000000L)
			end.tv_sec++, end.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s->lock);
	s->force++;
	if (verify)
		for (size_t i = 0; i < s->n; i++)
			if (atomic_load(&s->l[i].img))
				s->l[i].want_verify = true;
	pthread_cond_signal(&s->wake);
	while (!r && pending(s, verify)) {
		if (timeout_ms < 0)
			pthread_cond_wait(&s->done, &s->lock);
		else if (pthread_cond_timedwait(&s->done, &s->lock, &end) == ETIMEDOUT)
			r = -ETIMEDOUT;
	}
	s->force--;
	pthread_mutex_unlock(&s->lock);
	return r;
}

int tier_meta_build(struct tier_ctx *ctx, int layer)
{
	struct tier_meta_state *s = ctx->meta;

	if (!s || layer < 0 || (size_t)layer >= s->n || !s->l[layer].hdd)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	s->l[layer].want_build = true;
	pthread_mutex_unlock(&s->lock);
	return tier_meta_wait(ctx, false, -1);
}

int tier_meta_status(struct tier_ctx *ctx, struct tier_meta_status *st)
{
	struct tier_meta_state *s = ctx->meta;

	memset(st, 0, sizeof(*st));
	if (!s)
		return 0;
	st->on = true;
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n; i++) {
		struct tier_meta_img *img = atomic_load(&s->l[i].img);

		if (img) {
			st->layers++;
			st->bytes += img->len;
			st->entries += img->hdr->n_ents;
			st->partial += !(img->hdr->flags & TIER_META_F_FULL);
		}
	}
	st->pending = pending(s, false);
	pthread_mutex_unlock(&s->lock);
	st->hits = atomic_load(&s->hits);
	st->misses = atomic_load(&s->misses);
	st->builds = atomic_load(&s->builds);
	st->rebuilds = atomic_load(&s->rebuilds);
	return 0;
}

/* The request path found @relpath differing from @img, the image of @layer:
 * drop it (unless a rebuild replaced it already) and rebuild. */
void tier_meta_drop_stale(struct tier_ctx *ctx, size_t layer, const struct tier_meta_img *img,
			  const char *relpath)
{
	struct tier_meta_state *s = ctx->meta;

	pthread_mutex_lock(&s->lock);
	if (atomic_load(&s->l[layer].img) == img) {
		tier_log(ctx, TELL, "layer %s changed (%s differs from its metadata image); image dropped, "
			 "rebuilding", short_id(ctx, layer), relpath);
		drop_locked(ctx, layer);
	}
	pthread_mutex_unlock(&s->lock);
}
