/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Moving an NVM-home layer of the store to HDD, whole (see tier.h). The
 * steps, and what a crash after each leaves (N = NVM/layers/<id>, the
 * layer; H = HDD/layers/<id>; T = HDD/layers/.nlmove-tmp-<id>;
 * O = NVM/layers/.nlmove-old-<id>):
 *
 *   1. copy N to T, flush, compare T read back from disk with N
 *        crash: T is a leftover, removed; N serves as before
 *   2. rename T to H
 *        crash: H is complete but nothing names it; the next service
 *        removes it (rolls the move back)
 *   3. NVM copies of the traced files, named by H's files
 *        crash: index entries that no mount of N uses; kept for H
 *   4. under the store lock: a symlink O -> H, exchanged with N in one
 *      rename: N now leads to H, the old directory is O
 *        crash: N leads to a complete layer either way; the registry
 *        still names N, which is H now: the next service rewrites it
 *   5. the registry names H; the tier records switch
 *   6. once no process holds O and no overlay mount names it: delete O
 *        crash: O half deleted, named by nothing; the next service
 *        finishes the deletion
 *
 * The mover thread of the tier runs the recovery at start, deletes the
 * NVM copies no one holds any more, and, with write-back on and a budget
 * set, moves the coldest owned layer while NVM use is over the budget and
 * no start is being traced.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include "tier/tier_move.h"

#define MOVER_TICK_MS 1000
#define MOVE_RETRY_NS (60ULL * 1000000000ULL)	/* after a failed move */

struct tier_move_state {
	pthread_mutex_t lock;		/* one move at a time */
	pthread_mutex_t mx;		/* the fields below */
	pthread_cond_t wake;
	pthread_t thread;
	bool on, stop;
	struct tier_move_status st;
};

/* The paths of one move. */
struct move_paths {
	char n[PATH_MAX], h[PATH_MAX], t[PATH_MAX], o[PATH_MAX];
	char nvm_layers[PATH_MAX], hdd_layers[PATH_MAX];
};

static int place_of(const struct tier_layer *l)
{
	return __atomic_load_n(&l->place, __ATOMIC_ACQUIRE);
}

static void set_place(struct tier_layer *l, int p)
{
	__atomic_store_n(&l->place, p, __ATOMIC_RELEASE);
}

const char *tier_place_name(enum tier_place p)
{
	static const char *const names[] = { "nvm", "hdd", "moving", "leaving", "moved" };

	return (unsigned)p < sizeof(names) / sizeof(names[0]) ? names[p] : "?";
}

int tier_layer_info(struct tier_ctx *ctx, int layer, struct tier_layer_info *out)
{
	const struct tier_layer *l;

	if (layer < 0 || (size_t)layer >= tier_layer_count(ctx))
		return -EINVAL;
	l = &ctx->layers[layer];
	out->place = (enum tier_place)place_of(l);
	out->movable = l->owned && out->place == TIER_PLACE_NVM;
	out->holders = __atomic_load_n(&l->holders, __ATOMIC_RELAXED);
	pthread_rwlock_rdlock(&ctx->lock);
	out->old_bytes = l->old_bytes;
	pthread_rwlock_unlock(&ctx->lock);
	return 0;
}

static void log_err(struct tier_ctx *ctx, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void log_err(struct tier_ctx *ctx, char *err, size_t errlen, const char *fmt, ...)
{
	struct tier_move_state *m = ctx->move;
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (err && errlen)
		snprintf(err, errlen, "%s", msg);
	tier_log(ctx, LOG_WARNING, "%s", msg);
	if (!m)
		return;
	pthread_mutex_lock(&m->mx);
	snprintf(m->st.last_error, sizeof(m->st.last_error), "%.*s",
		 (int)sizeof(m->st.last_error) - 1, msg);
	pthread_mutex_unlock(&m->mx);
}

static int paths_of(const struct tier_ctx *ctx, const struct tier_layer *l, struct move_paths *p)
{
	const char *nvm = ctx->cfg.nvm_dir, *id = l->id;
	char hdd[PATH_MAX];

	/* the registry gets a real path, as the import writes */
	if (!realpath(ctx->cfg.hdd_dir, hdd))
		return -errno;

	if (snprintf(p->nvm_layers, PATH_MAX, "%s/layers", nvm) >= PATH_MAX ||
	    snprintf(p->hdd_layers, PATH_MAX, "%s/layers", hdd) >= PATH_MAX ||
	    snprintf(p->n, PATH_MAX, "%s/%s", p->nvm_layers, id) >= PATH_MAX ||
	    snprintf(p->h, PATH_MAX, "%s/%s", p->hdd_layers, id) >= PATH_MAX ||
	    snprintf(p->t, PATH_MAX, "%s/" MOVE_TMP_PREFIX "%s", p->hdd_layers, id) >= PATH_MAX ||
	    snprintf(p->o, PATH_MAX, "%s/" MOVE_OLD_PREFIX "%s", p->nvm_layers, id) >= PATH_MAX)
		return -ENAMETOOLONG;
	return 0;
}

static bool is_dir(const char *path)
{
	struct stat st;

	return !lstat(path, &st) && S_ISDIR(st.st_mode);
}

static bool is_symlink(const char *path)
{
	struct stat st;

	return !lstat(path, &st) && S_ISLNK(st.st_mode);
}

/* ---- steps 1 and 2: the HDD copy ---- */

static int verify_paths(struct tier_ctx *ctx, const char *a, const char *b, char *why,
			size_t len)
{
	int fa = open(a, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int fb = open(b, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int rc = fa < 0 || fb < 0 ? -errno : tier_move_verify_tree(ctx, fa, fb, why, len);

	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	return rc;
}

static int copy_paths(struct tier_ctx *ctx, const char *from, const char *to, uint64_t *bytes)
{
	int fa = open(from, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), fb = -1, rc;

	if (fa < 0)
		return -errno;
	if (mkdir(to, 0700) == 0)
		fb = open(to, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	rc = fb < 0 ? -errno : tier_move_copy_tree(ctx, fa, fb, bytes);
	close(fa);
	if (fb >= 0)
		close(fb);
	return rc;
}

/* H complete and equal to N: made now, or left by an earlier attempt. */
static int make_hdd_copy(struct tier_ctx *ctx, const struct move_paths *p, uint64_t *bytes,
			 char *err, size_t errlen)
{
	char why[PATH_MAX + 64] = "";
	int rc;

	if (is_dir(p->h)) {
		if (!verify_paths(ctx, p->n, p->h, why, sizeof(why)))
			return 0;
		if (ctx->cfg.store->owns(ctx->cfg.nvm_dir, strrchr(p->h, '/') + 1, p->h)) {
			log_err(ctx, err, errlen, "%s exists, is in use, and differs from %s (%s)",
				p->h, p->n, why);
			return -EEXIST;
		}
		tier_move_rm_tree(p->h);
	}
	tier_move_rm_tree(p->t);
	rc = copy_paths(ctx, p->n, p->t, bytes);
	if (!rc)
		rc = verify_paths(ctx, p->n, p->t, why, sizeof(why));
	if (rc) {
		if (rc != -ECANCELED)
			tier_move_rm_tree(p->t);
		log_err(ctx, err, errlen, "copy of %s to %s: %s%s%s", p->n, p->t,
			rc == -EBADMSG ? "the copy differs from the layer" : strerror(-rc),
			*why ? ": " : "", why);
		return rc;
	}
	tier_fault("move-copied");
	if (rename(p->t, p->h))
		return -errno;
	rc = tier_fsync_dir(p->hdd_layers);
	tier_fault("move-renamed");
	return rc;
}

/* ---- steps 4 and 5: the switch ---- */

/* N becomes a symlink to H in one rename; the old directory is O. */
static int exchange(const struct move_paths *p)
{
	if (is_symlink(p->o) && unlink(p->o))
		return -errno;
	if (symlink(p->h, p->o))
		return -errno;
	if (renameat2(AT_FDCWD, p->o, AT_FDCWD, p->n, RENAME_EXCHANGE)) {
		int rc = -errno;

		unlink(p->o);
		return rc;
	}
	return tier_fsync_dir(p->nvm_layers);
}

/* The records: @layer keeps serving the mounts that hold O; a new record
 * of the HDD copy serves every later mount. */
static int switch_records(struct tier_ctx *ctx, int layer, const struct move_paths *p)
{
	struct tier_layer nl = { 0 };
	int j;

	nl.dir = realpath(p->h, NULL);
	if (!nl.dir)
		return -errno;
	memcpy(nl.id, ctx->layers[layer].id, sizeof(nl.id));
	nl.home = TIER_HOME_HDD;
	nl.place = TIER_PLACE_HDD;
	pthread_rwlock_wrlock(&ctx->lock);
	/* out of the budget now: the old copy is deleted once released, and
	 * counting it until then would evict the copies just made */
	ctx->layers[layer].old_bytes = ctx->layers[layer].bytes;
	ctx->layers[layer].bytes = 0;
	set_place(&ctx->layers[layer], TIER_PLACE_LEAVING);
	j = tier_layer_append_locked(ctx, &nl);
	pthread_rwlock_unlock(&ctx->lock);
	if (j < 0) {
		free(nl.dir);
		return j;
	}
	tier_meta_layer_added(ctx, (size_t)j);
	return 0;
}

static int switch_over(struct tier_ctx *ctx, int layer, const struct move_paths *p, char *err,
		       size_t errlen)
{
	char msg[256] = "";
	int lock = ctx->cfg.store->lock(ctx->cfg.nvm_dir), rc;

	if (lock < 0) {
		log_err(ctx, err, errlen, "the store lock of %s: %s", ctx->cfg.nvm_dir,
			strerror(-lock));
		return lock;
	}
	rc = exchange(p);
	if (rc)
		log_err(ctx, err, errlen, "cannot switch %s to %s: %s", p->n, p->h, strerror(-rc));
	if (!rc) {
		tier_fault("move-exchanged");
		rc = ctx->cfg.store->relocate(ctx->cfg.nvm_dir, ctx->layers[layer].id, "hdd", p->h, msg,
					  sizeof(msg));
		/* N leads to H already: a later service rewrites the registry */
		if (rc < 0)
			log_err(ctx, NULL, 0, "layer %.12s moved, registry not updated: %s",
				ctx->layers[layer].id, msg);
		rc = 0;
		tier_fault("move-switched");
	}
	close(lock);
	return rc ? rc : switch_records(ctx, layer, p);
}

/* Copies a write-back made of the layer's files, and their entries: the
 * whole layer is on HDD now. */
static void drop_writeback(struct tier_ctx *ctx, const char *id)
{
	char dir[PATH_MAX];

	pthread_rwlock_wrlock(&ctx->lock);
	for (uint64_t i = 0; i < ctx->root->capacity; i++) {
		struct tier_pentry *e = &ctx->ent[i];

		if (e->used && e->wb && !strcmp(e->layer, id))
			tier_index_clear_written_back(ctx, e);
	}
	pthread_rwlock_unlock(&ctx->lock);
	if (snprintf(dir, sizeof(dir), "%s/writeback/%s", ctx->cfg.hdd_dir, id) < (int)sizeof(dir))
		tier_move_rm_tree(dir);
}

/* A file an earlier version punched and that is not whole again would be
 * copied as zeros: such a layer does not move. */
static bool has_holes_punched(struct tier_ctx *ctx, const struct tier_layer *l)
{
	bool punched = false;

	pthread_rwlock_rdlock(&ctx->lock);
	for (uint64_t i = 0; i < ctx->root->capacity && !punched; i++) {
		const struct tier_pentry *e = &ctx->ent[i];
		struct stat st;
		int fd;

		if (!e->used || !e->wb || strcmp(e->layer, l->id))
			continue;
		fd = tier_layer_open(l->dir, tier_entry_path(e), O_PATH | O_NOFOLLOW);
		punched = fd >= 0 && !fstat(fd, &st) && S_ISREG(st.st_mode) && st.st_size &&
			  !st.st_blocks;
		if (fd >= 0)
			close(fd);
	}
	pthread_rwlock_unlock(&ctx->lock);
	return punched;
}

/* ---- one move ---- */

static int move_check(struct tier_ctx *ctx, int layer, char *err, size_t errlen)
{
	const struct tier_layer *l;

	if (layer < 0 || (size_t)layer >= tier_layer_count(ctx))
		return tier_err(err, errlen, "no layer %d", layer), -EINVAL;
	l = &ctx->layers[layer];
	if (!ctx->cfg.hdd_dir)
		return tier_err(err, errlen, "moving a layer needs the HDD tier (hdd=)"), -ENOENT;
	if (place_of(l) != TIER_PLACE_NVM)
		return tier_err(err, errlen, "layer %.12s is not on NVM (%s)", l->id,
				tier_place_name((enum tier_place)place_of(l))), -EALREADY;
	if (!l->owned)
		return tier_err(err, errlen, "layer %s was named by its path, not imported into "
				"the store: it stays where it is", l->dir), -EPERM;
	if (has_holes_punched(ctx, l))
		return tier_err(err, errlen, "layer %.12s still has files an earlier version "
				"punched; they are made whole at the next start", l->id), -EIO;
	return 0;
}

static int move_steps(struct tier_ctx *ctx, int layer, char *err, size_t errlen)
{
	struct tier_layer *l = &ctx->layers[layer];
	struct move_paths p;
	uint64_t bytes = 0, hot;
	int rc = paths_of(ctx, l, &p);

	if (!rc && mkdir(p.hdd_layers, 0755) && errno != EEXIST)
		rc = -errno;
	if (rc)
		return tier_err(err, errlen, "%s: %s", p.hdd_layers, strerror(-rc)), rc;
	rc = make_hdd_copy(ctx, &p, &bytes, err, errlen);
	if (rc)
		return rc;
	hot = tier_move_hot_copies(ctx, layer, p.n, p.h);
	if (tier_cancelled(ctx))
		return -ECANCELED;
	rc = switch_over(ctx, layer, &p, err, errlen);
	if (rc)
		return rc;
	drop_writeback(ctx, l->id);
	pthread_mutex_lock(&ctx->move->mx);
	ctx->move->st.moves++;
	ctx->move->st.moved_bytes += bytes;
	ctx->move->st.hot_copies += hot;
	pthread_mutex_unlock(&ctx->move->mx);
	tier_log(ctx, LOG_INFO, "layer %.12s moved to %s (%llu bytes, %llu files kept on NVM)",
		 l->id, p.h, (unsigned long long)bytes, (unsigned long long)hot);
	return 0;
}

int tier_layer_move(struct tier_ctx *ctx, int layer, char *err, size_t errlen)
{
	struct tier_move_state *m = ctx->move;
	int rc;

	if (!m)
		return tier_err(err, errlen, "moving a layer needs the HDD tier (hdd=)"), -ENOENT;
	/* after the recovery and any move running now */
	pthread_mutex_lock(&m->lock);
	rc = move_check(ctx, layer, err, errlen);
	if (!rc) {
		set_place(&ctx->layers[layer], TIER_PLACE_MOVING);
		rc = move_steps(ctx, layer, err, errlen);
		if (rc) {
			set_place(&ctx->layers[layer], TIER_PLACE_NVM);
			ctx->layers[layer].move_failed_ns = tier_now_mono_ns();
			pthread_mutex_lock(&m->mx);
			m->st.failures++;
			pthread_mutex_unlock(&m->mx);
		}
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* ---- step 6: deleting NVM copies nothing holds ---- */

static void records_reaped(struct tier_ctx *ctx, const char *id, unsigned holders, bool gone)
{
	pthread_rwlock_wrlock(&ctx->lock);
	for (size_t i = 0; i < ctx->nlayers; i++) {
		struct tier_layer *l = &ctx->layers[i];

		if (strcmp(l->id, id) || place_of(l) != TIER_PLACE_LEAVING)
			continue;
		__atomic_store_n(&l->holders, holders, __ATOMIC_RELAXED);
		if (gone) {
			l->old_bytes = 0;
			set_place(l, TIER_PLACE_MOVED);
		}
	}
	pthread_rwlock_unlock(&ctx->lock);
}

/* O of layer @id: deleted when N is the switched symlink and no one holds O. */
static int reap_one(struct tier_ctx *ctx, const char *layers, const char *id)
{
	char o[PATH_MAX], n[PATH_MAX];
	unsigned holders;
	int rc;

	if (snprintf(o, sizeof(o), "%s/" MOVE_OLD_PREFIX "%s", layers, id) >= (int)sizeof(o) ||
	    snprintf(n, sizeof(n), "%s/%s", layers, id) >= (int)sizeof(n))
		return 0;
	if (is_symlink(o))	/* a crash before the exchange */
		return unlink(o), 0;
	if (!is_dir(o) || !is_symlink(n))
		return 0;
	holders = tier_move_holders(o, n);
	records_reaped(ctx, id, holders, false);
	if (holders)
		return 0;
	rc = tier_move_rm_tree(o);
	if (rc) {
		log_err(ctx, NULL, 0, "cannot delete %s: %s", o, strerror(-rc));
		return 0;
	}
	tier_fsync_dir(layers);
	records_reaped(ctx, id, 0, true);
	tier_log(ctx, LOG_INFO, "layer %.12s: its NVM copy is deleted", id);
	return 1;
}

static int reap_all(struct tier_ctx *ctx)
{
	char layers[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int n = 0;

	if (snprintf(layers, sizeof(layers), "%s/layers", ctx->cfg.nvm_dir) >= (int)sizeof(layers))
		return -ENAMETOOLONG;
	d = opendir(layers);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, MOVE_OLD_PREFIX, strlen(MOVE_OLD_PREFIX)))
			n += reap_one(ctx, layers, de->d_name + strlen(MOVE_OLD_PREFIX));
	closedir(d);
	return n;
}

/* Not while a move or the recovery runs: the next tick does it. */
int tier_move_reap(struct tier_ctx *ctx)
{
	struct tier_move_state *m = ctx->move;
	int n;

	if (!m || pthread_mutex_trylock(&m->lock))
		return 0;
	n = reap_all(ctx);
	pthread_mutex_unlock(&m->lock);
	if (n > 0) {
		pthread_mutex_lock(&m->mx);
		m->st.reaped += (uint64_t)n;
		pthread_mutex_unlock(&m->mx);
	}
	return n;
}

int tier_move_status(struct tier_ctx *ctx, struct tier_move_status *s)
{
	memset(s, 0, sizeof(*s));
	if (!ctx->move)
		return -ENOENT;
	pthread_mutex_lock(&ctx->move->mx);
	*s = ctx->move->st;
	pthread_mutex_unlock(&ctx->move->mx);
	return 0;
}

/* ---- after a crash ---- */

/* N is the switched symlink: the registry must name where it leads. */
static void finish_switch(struct tier_ctx *ctx, const char *layers, const char *id)
{
	char n[PATH_MAX], h[PATH_MAX], msg[256];
	int r;

	if (snprintf(n, sizeof(n), "%s/%s", layers, id) >= (int)sizeof(n) || !realpath(n, h) ||
	    !is_dir(h))
		return;
	r = ctx->cfg.store->relocate(ctx->cfg.nvm_dir, id, "hdd", h, msg, sizeof(msg));
	drop_writeback(ctx, id);
	if (r > 0)
		tier_log(ctx, LOG_INFO, "layer %.12s: the registry names its HDD copy %s now "
			 "(a move was interrupted after its switch)", id, h);
	else if (r < 0)
		tier_log(ctx, LOG_WARNING, "layer %.12s: %s", id, msg);
}

/* H beside a real N, named by no image: an interrupted copy. */
static void roll_back_copy(struct tier_ctx *ctx, const char *hdd_layers, const char *id)
{
	char n[PATH_MAX], h[PATH_MAX];

	if (snprintf(n, sizeof(n), "%s/layers/%s", ctx->cfg.nvm_dir, id) >= (int)sizeof(n) ||
	    snprintf(h, sizeof(h), "%s/%s", hdd_layers, id) >= (int)sizeof(h))
		return;
	if (!is_dir(n) || !ctx->cfg.store->owns(ctx->cfg.nvm_dir, id, n) ||
	    ctx->cfg.store->owns(ctx->cfg.nvm_dir, id, h))
		return;
	if (!tier_move_rm_tree(h))
		tier_log(ctx, LOG_INFO, "layer %.12s: an unfinished copy to HDD removed", id);
}

static bool is_hex64(const char *s)
{
	return strlen(s) == TIER_ID_LEN && strspn(s, "0123456789abcdef") == TIER_ID_LEN;
}

static void recover_hdd(struct tier_ctx *ctx)
{
	char layers[PATH_MAX], p[PATH_MAX];
	struct dirent *de;
	DIR *d;

	if (snprintf(layers, sizeof(layers), "%s/layers", ctx->cfg.hdd_dir) >= (int)sizeof(layers) ||
	    !(d = opendir(layers)))
		return;
	while ((de = readdir(d))) {
		if (!strncmp(de->d_name, MOVE_TMP_PREFIX, strlen(MOVE_TMP_PREFIX)) &&
		    snprintf(p, sizeof(p), "%s/%s", layers, de->d_name) < (int)sizeof(p))
			tier_move_rm_tree(p);
		else if (is_hex64(de->d_name))
			roll_back_copy(ctx, layers, de->d_name);
	}
	closedir(d);
}

static void recover_nvm(struct tier_ctx *ctx)
{
	char layers[PATH_MAX], p[PATH_MAX];
	struct dirent *de;
	DIR *d;

	if (snprintf(layers, sizeof(layers), "%s/layers", ctx->cfg.nvm_dir) >= (int)sizeof(layers) ||
	    !(d = opendir(layers)))
		return;
	while ((de = readdir(d)))
		if (is_hex64(de->d_name) &&
		    snprintf(p, sizeof(p), "%s/%s", layers, de->d_name) < (int)sizeof(p) &&
		    is_symlink(p))
			finish_switch(ctx, layers, de->d_name);
	closedir(d);
}

/* Before any move of this service: a move by hand waits for it. */
static void recover(struct tier_ctx *ctx)
{
	int lock;

	pthread_mutex_lock(&ctx->move->lock);
	lock = ctx->cfg.store->lock(ctx->cfg.nvm_dir);
	if (lock >= 0) {
		recover_nvm(ctx);
		recover_hdd(ctx);
		close(lock);
	}
	pthread_mutex_unlock(&ctx->move->lock);
}

/* ---- moves over budget ---- */

/* The last time a traced start needed a file of layer @id (0: never). */
static uint64_t last_needed(struct tier_ctx *ctx, const char *id)
{
	uint64_t last = 0;

	for (uint64_t i = 0; i < ctx->root->capacity; i++) {
		const struct tier_pentry *e = &ctx->ent[i];

		if (e->used && e->heat && e->last_time > last && !strcmp(e->layer, id))
			last = e->last_time;
	}
	return last;
}

/* The owned NVM layer no start needed for the longest time; -1: none. */
static int coldest_movable(struct tier_ctx *ctx)
{
	uint64_t now = tier_now_mono_ns(), best_last = UINT64_MAX;
	int best = -1;

	pthread_rwlock_rdlock(&ctx->lock);
	for (size_t i = 0; i < ctx->nlayers; i++) {
		const struct tier_layer *l = &ctx->layers[i];
		uint64_t last;

		if (!l->owned || place_of(l) != TIER_PLACE_NVM ||
		    (l->move_failed_ns && now - l->move_failed_ns < MOVE_RETRY_NS))
			continue;
		last = last_needed(ctx, l->id);
		if (last < best_last) {
			best_last = last;
			best = (int)i;
		}
	}
	pthread_rwlock_unlock(&ctx->lock);
	return best;
}

static bool over_budget(struct tier_ctx *ctx)
{
	uint64_t used;

	if (!ctx->cfg.nvm_size || !ctx->cfg.writeback || tier_trace_active(ctx))
		return false;
	pthread_rwlock_rdlock(&ctx->lock);
	used = tier_nvm_used_locked(ctx);
	pthread_rwlock_unlock(&ctx->lock);
	return used > ctx->cfg.nvm_size;
}

static void move_over_budget(struct tier_ctx *ctx)
{
	char err[512];
	int layer;

	if (!over_budget(ctx) || (layer = coldest_movable(ctx)) < 0)
		return;
	if (!tier_layer_move(ctx, layer, err, sizeof(err)))
		tier_log(ctx, LOG_INFO, "NVM over its budget: layer %.12s moved to HDD",
			 ctx->layers[layer].id);
}

/* ---- the mover thread ---- */

static bool mover_sleep(struct tier_move_state *m)
{
	struct timespec ts;
	bool stop;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += MOVER_TICK_MS / 1000;
	pthread_mutex_lock(&m->mx);
	if (!m->stop)
		pthread_cond_timedwait(&m->wake, &m->mx, &ts);
	stop = m->stop;
	pthread_mutex_unlock(&m->mx);
	return !stop;
}

static void *mover_main(void *arg)
{
	struct tier_ctx *ctx = arg;

	recover(ctx);
	while (mover_sleep(ctx->move) && !tier_cancelled(ctx)) {
		tier_move_reap(ctx);
		move_over_budget(ctx);
	}
	return NULL;
}

int tier_move_init(struct tier_ctx *ctx)
{
	struct tier_move_state *m;

	if (!ctx->cfg.hdd_dir || !ctx->cfg.store)
		return 0;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	pthread_mutex_init(&m->lock, NULL);
	pthread_mutex_init(&m->mx, NULL);
	pthread_cond_init(&m->wake, NULL);
	ctx->move = m;
	if (pthread_create(&m->thread, NULL, mover_main, ctx))
		return -EAGAIN;
	m->on = true;
	return 0;
}

void tier_move_fini(struct tier_ctx *ctx)
{
	struct tier_move_state *m = ctx->move;

	if (!m)
		return;
	if (m->on) {
		pthread_mutex_lock(&m->mx);
		m->stop = true;
		pthread_cond_broadcast(&m->wake);
		pthread_mutex_unlock(&m->mx);
		pthread_join(m->thread, NULL);
	}
	/* the service exits once its last mount is gone: what those mounts
	 * held goes with them, not at the next start */
	tier_move_reap(ctx);
	pthread_mutex_destroy(&m->lock);
	pthread_mutex_destroy(&m->mx);
	pthread_cond_destroy(&m->wake);
	free(m);
	ctx->move = NULL;
}
