/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The hot-file index: a libpmemobj pool on the NVM tier. The pool holds a
 * fixed array of entries (one per traced or promoted file); DRAM keeps a
 * hash map over it and the object refcounts, both rebuilt at open, so the
 * pool holds only what must survive a crash. Every change is one pmemobj
 * transaction; object files are renamed into place before the transaction
 * that names them and unlinked only after the one that drops them.
 *
 * Size. Half the pool is the entry array (176 bytes an entry, with room
 * reckoned for a 96-byte path), the rest holds the path strings, libpmemobj's
 * lanes and range records. Measured by tracing into a new pool: 8 MiB (the
 * minimum, default) holds 12179 files with paths of up to 80 characters
 * and 6092 with 120-character ones, the strings running out before the
 * array; 16 MiB holds its 30840 entries, 32 MiB 39000 files of 80
 * characters. A full index is not an error of the mount: files it cannot
 * name stay on their layers, and tracing stops.
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/wait.h>
#include <unistd.h>
#include "tier/tier_private.h"
#include "tier/tier_util.h"
#include "tier/tier_index.h"
#include "tier/tier_trace.h"
#include "tier/range/range.h"

enum { TYPE_ROOT = 1, TYPE_ENTRIES, TYPE_PATH };

/* What to do about an index that cannot be used. The mount is refused
 * rather than run without it: after a write-back the index is the only
 * record of where released files' data lives. */
#define INDEX_ADVICE "refusing to use it (nothing is lost); move it away to start with an " \
	"empty index, see THE INDEX in nlayerfs.conf(5)"

const char *tier_entry_path(const struct tier_pentry *e)
{
	const char *p = pmemobj_direct(e->path);

	return p ? p : "";
}

void tier_object_path(const struct tier_ctx *ctx, const uint8_t *digest, char *out, size_t n)
{
	char hex[65];

	tier_hex(digest, 32, hex);
	snprintf(out, n, "%s/%s", ctx->objdir, hex);
}

__attribute__((noinline))
struct tier_obj *tier_obj_find(struct tier_ctx *ctx, const uint8_t *digest)
{
	uint64_t h;
	struct tier_obj *o;

	memcpy(&h, digest, sizeof(h));
	for (o = ctx->objs[h % ctx->objs_size]; o; o = o->next)
		if (!memcmp(o->digest, digest, 32))
			return o;
	return NULL;
}

int tier_obj_ref(struct tier_ctx *ctx, const uint8_t *digest, uint64_t size)
{
	struct tier_obj *o = tier_obj_find(ctx, digest);
	uint64_t h;

	if (o) {
		o->refs++;
		return 0;
	}
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	memcpy(o->digest, digest, 32);
	o->size = size;
	o->refs = 1;
	memcpy(&h, digest, sizeof(h));
	o->next = ctx->objs[h % ctx->objs_size];
	ctx->objs[h % ctx->objs_size] = o;
	ctx->nobjs++;
	return 0;
}

/* Drop one reference; true when that was the last one (object freed). */
static bool obj_unref(struct tier_ctx *ctx, const uint8_t *digest)
{
	uint64_t h;
	struct tier_obj **pp, *o;

	memcpy(&h, digest, sizeof(h));
	for (pp = &ctx->objs[h % ctx->objs_size]; (o = *pp); pp = &o->next) {
		if (memcmp(o->digest, digest, 32))
			continue;
		if (--o->refs)
			return false;
		*pp = o->next;
		free(o);
		ctx->nobjs--;
		return true;
	}
	return false;
}

static int map_insert(struct tier_ctx *ctx, uint64_t hash, uint64_t slot)
{
	struct tier_map_node *n = malloc(sizeof(*n));

	if (!n)
		return -ENOMEM;
	n->hash = hash;
	n->slot = slot;
	n->next = ctx->map[hash % ctx->map_size];
	ctx->map[hash % ctx->map_size] = n;
	return 0;
}

struct tier_pentry *tier_index_find(struct tier_ctx *ctx, const char *layer_id, const char *path)
{
	uint64_t h = tier_hash_key(layer_id, path);
	struct tier_map_node *n;

	for (n = ctx->map[h % ctx->map_size]; n; n = n->next) {
		struct tier_pentry *e = &ctx->ent[n->slot];

		if (n->hash == h && !strcmp(e->layer, layer_id) && !strcmp(tier_entry_path(e), path))
			return e;
	}
	return NULL;
}

static int init_root(struct tier_ctx *ctx)
{
	struct tier_proot *r = ctx->root;
	/* half the pool for the array, the rest for path strings */
	uint64_t cap = ctx->cfg.index_size / 2 / (sizeof(struct tier_pentry) + 96);
	volatile int rc = 0;

	TX_BEGIN(ctx->pop) {
		pmemobj_tx_add_range_direct(r, sizeof(*r));
		r->entries = pmemobj_tx_zalloc(cap * sizeof(struct tier_pentry), TYPE_ENTRIES);
		r->capacity = cap;
		r->version = TIER_INDEX_VERSION;
		r->magic = TIER_INDEX_MAGIC;
	} TX_ONABORT {
		rc = -ENOSPC;
	} TX_END
	return rc;
}

static int check_root(struct tier_ctx *ctx, const char *path, char *err, size_t errlen)
{
	struct tier_proot *r = ctx->root;

	if (r->magic == 0 && r->version == 0 && OID_IS_NULL(r->entries))
		return init_root(ctx);	/* created, crashed before the first commit */
	if (r->magic != TIER_INDEX_MAGIC) {
		tier_err(err, errlen, "index %s: not an nlayerfs index (bad magic); " INDEX_ADVICE, path);
		return -EINVAL;
	}
	if (r->version > TIER_INDEX_VERSION) {
		tier_err(err, errlen, "index %s: layout version %u is newer than this nlayerfs (%u); "
			 "refusing to use it", path, r->version, TIER_INDEX_VERSION);
		return -EPROTONOSUPPORT;
	}
	if (r->version == 0 || OID_IS_NULL(r->entries) || !r->capacity ||
	    pmemobj_alloc_usable_size(r->entries) < r->capacity * sizeof(struct tier_pentry)) {
		tier_err(err, errlen, "index %s: broken root (version %u, capacity %llu); " INDEX_ADVICE,
			 path, r->version, (unsigned long long)r->capacity);
		return -EINVAL;
	}
	/* version 1 had no range records: add the empty list, all else stays */
	if (r->version == 1 && tier_range_index_upgrade(ctx)) {
		tier_err(err, errlen, "index %s: cannot upgrade layout version 1 to %u (%s); "
			 "refusing to use it", path, TIER_INDEX_VERSION, pmemobj_errormsg());
		return -EIO;
	}
	return 0;
}

static int rebuild_dram(struct tier_ctx *ctx)
{
	int rc;

	ctx->map_size = ctx->root->capacity | 1;
	ctx->objs_size = 4099;
	ctx->map = calloc(ctx->map_size, sizeof(*ctx->map));
	ctx->objs = calloc(ctx->objs_size, sizeof(*ctx->objs));
	if (!ctx->map || !ctx->objs)
		return -ENOMEM;
	rc = tier_range_index_load(ctx);
	if (rc)
		return rc;
	for (uint64_t i = 0; i < ctx->root->capacity; i++) {
		struct tier_pentry *e = &ctx->ent[i];

		if (!e->used)
			continue;
		ctx->nindexed++;
		rc = map_insert(ctx, tier_hash_key(e->layer, tier_entry_path(e)), i);
		if (!rc && e->state == TIER_ST_PROMOTED)
			rc = tier_obj_ref(ctx, e->digest, e->src_size);
		if (!rc && e->state == TIER_ST_RANGE)
			rc = tier_obj_ref(ctx, e->digest, tier_range_rec(ctx, e) ?
					  tier_range_rec(ctx, e)->copy_bytes : 0);
		if (rc)
			return rc;
	}
	return 0;
}

static PMEMobjpool *open_or_create(const char *path, uint64_t size, char *err, size_t errlen)
{
	PMEMobjpool *pop;

	if (access(path, F_OK) == 0) {
		pop = pmemobj_open(path, TIER_INDEX_LAYOUT);
		if (!pop && (errno == EWOULDBLOCK || errno == EAGAIN)) {
			tier_err(err, errlen, "index %s: in use by another nlayerfs mount; "
				 "give this mount its own nvm= directory", path);
			errno = EBUSY;
		} else if (!pop)
			tier_err(err, errlen, "index %s: cannot open (%s); " INDEX_ADVICE,
				 path, pmemobj_errormsg());
		return pop;
	}
	pop = pmemobj_create(path, TIER_INDEX_LAYOUT, size, 0600);
	if (!pop)
		tier_err(err, errlen, "index %s: cannot create (%s)", path, pmemobj_errormsg());
	return pop;
}

/* Everything an open reads from the pool: the root, the entries and
 * their path strings, the range records. */
static int index_load(struct tier_ctx *ctx, const char *path, char *err, size_t errlen)
{
	int rc;

	ctx->pop = open_or_create(path, ctx->cfg.index_size, err, errlen);
	if (!ctx->pop)
		return errno ? -errno : -EINVAL;
	/* a version 1 root is shorter; pmemobj_root() below grows it */
	if (pmemobj_root_size(ctx->pop) && pmemobj_root_size(ctx->pop) < TIER_PROOT_V1_SIZE) {
		tier_err(err, errlen, "index %s: root object too small; " INDEX_ADVICE, path);
		return -EINVAL;
	}
	ctx->root = pmemobj_direct(pmemobj_root(ctx->pop, sizeof(struct tier_proot)));
	if (!ctx->root) {
		tier_err(err, errlen, "index %s: no root object (%s); " INDEX_ADVICE, path,
			 pmemobj_errormsg());
		return -EINVAL;
	}
	rc = check_root(ctx, path, err, errlen);
	if (rc)
		return rc;
	ctx->ent = pmemobj_direct(ctx->root->entries);
	rc = rebuild_dram(ctx);
	if (rc)
		tier_err(err, errlen, "index %s: %s", path, strerror(-rc));
	return rc;
}

/* libpmemobj trusts the file: an empty or short one gets SIGBUS, damaged
 * heap or lane bytes SIGSEGV. What a look at the file can tell is told
 * here; the rest is found by loading the pool in a child process first. */
static int check_pool_file(const char *path, char *err, size_t errlen)
{
	char sig[8] = "";
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0 || fstat(fd, &st) < 0) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		tier_err(err, errlen, "index %s: %s", path, strerror(e));
		return -e;
	}
	n = S_ISREG(st.st_mode) ? pread(fd, sig, sizeof(sig), 0) : 0;
	close(fd);
	if (!S_ISREG(st.st_mode))
		tier_err(err, errlen, "index %s: not a regular file; " INDEX_ADVICE, path);
	else if (st.st_size == 0)
		tier_err(err, errlen, "index %s: empty (its creation was cut off); " INDEX_ADVICE, path);
	else if ((uint64_t)st.st_size < PMEMOBJ_MIN_POOL)
		tier_err(err, errlen, "index %s: %lld bytes, shorter than any index (%u MiB): cut off "
			 "or damaged; " INDEX_ADVICE, path, (long long)st.st_size,
			 (unsigned)(PMEMOBJ_MIN_POOL >> 20));
	else if (n != sizeof(sig) || memcmp(sig, "PMEMOBJ", 8))
		tier_err(err, errlen, "index %s: not a libpmemobj pool (bad signature); " INDEX_ADVICE,
			 path);
	else
		return 0;
	return -EINVAL;
}

#define PROBE_TIMEOUT_MS 10000
/* The probe's exit code when libpmemobj refused the pool without dying:
 * the open in this process then says why. Anything else but 0 is a death
 * (a sanitizer exits with 1 where the plain build gets a signal). */
#define PROBE_REFUSED 3

/* Wait for the probe; a signal or a hang means the pool is damaged. */
static int probe_wait(pid_t pid, const char *path, char *err, size_t errlen)
{
	int status = 0;

	for (int ms = 0; ms < PROBE_TIMEOUT_MS; ms++) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid && WIFSIGNALED(status)) {
			tier_err(err, errlen, "index %s: damaged (libpmemobj got %s reading it); "
				 INDEX_ADVICE, path, strsignal(WTERMSIG(status)));
			return -EINVAL;
		}
		if (r == pid && WEXITSTATUS(status) && WEXITSTATUS(status) != PROBE_REFUSED) {
			tier_err(err, errlen, "index %s: damaged (libpmemobj failed reading it); "
				 INDEX_ADVICE, path);
			return -EINVAL;
		}
		if (r == pid || (r < 0 && errno != EINTR))
			return 0;	/* the open itself reports any other error */
		usleep(1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	tier_err(err, errlen, "index %s: opening it did not finish in %d s; " INDEX_ADVICE, path,
		 PROBE_TIMEOUT_MS / 1000);
	return -ETIMEDOUT;
}

/* In the child: a private copy of the pool, so that what libpmemobj
 * writes at open (recovery) never lands in a pool it then dies on. The
 * lock libpmemobj takes is taken first: a pool in use is not copied. */
static int pool_copy(const char *path, char *copy, size_t len)
{
	int in = open(path, O_RDONLY | O_CLOEXEC), out = memfd_create("tier.index", 0);
	ssize_t r = -1;

	if (in < 0 || out < 0 || flock(in, LOCK_EX | LOCK_NB))
		return -1;
	while ((r = sendfile(out, in, NULL, 1 << 30)) > 0)
		;
	snprintf(copy, len, "/proc/self/fd/%d", out);
	return r < 0 ? -1 : 0;	/* @in stays open: the lock is held */
}

/* Load the pool once in a child, which may die of it, before this
 * process does. */
static int probe_pool(struct tier_ctx *ctx, const char *path, char *err, size_t errlen)
{
	char msg[16], copy[64];
	pid_t pid = fork();

	if (pid < 0)
		return 0;	/* cannot probe: open as before */
	if (pid == 0) {
		/* die of a fault, whatever handler the process set up */
		signal(SIGSEGV, SIG_DFL);
		signal(SIGBUS, SIG_DFL);
		signal(SIGILL, SIG_DFL);
		signal(SIGFPE, SIG_DFL);
		signal(SIGABRT, SIG_DFL);
		/* a sanitizer's report of the fault is ours to give, not its */
		dup2(open("/dev/null", O_WRONLY | O_CLOEXEC), STDERR_FILENO);
		if (pool_copy(path, copy, sizeof(copy)) || index_load(ctx, copy, msg, sizeof(msg)))
			_exit(PROBE_REFUSED);
		_exit(0);
	}
	return probe_wait(pid, path, err, errlen);
}

int tier_index_open(struct tier_ctx *ctx, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int rc;

	snprintf(path, sizeof(path), "%s/%s", ctx->cfg.nvm_dir, TIER_INDEX_FILE);
	if (!ctx->cfg.pool_checked && access(path, F_OK) == 0) {
		rc = check_pool_file(path, err, errlen);
		if (!rc)
			rc = probe_pool(ctx, path, err, errlen);
		if (rc)
			return rc;
	}
	return index_load(ctx, path, err, errlen);
}

void tier_index_close(struct tier_ctx *ctx)
{
	for (size_t i = 0; ctx->map && i < ctx->map_size; i++)
		for (struct tier_map_node *n = ctx->map[i], *nx; n; n = nx) {
			nx = n->next;
			free(n);
		}
	for (size_t i = 0; ctx->objs && i < ctx->objs_size; i++)
		for (struct tier_obj *o = ctx->objs[i], *nx; o; o = nx) {
			nx = o->next;
			free(o);
		}
	free(ctx->map);
	free(ctx->objs);
	free(ctx->range_of);
	ctx->map = NULL;
	ctx->objs = NULL;
	ctx->range_of = NULL;
	if (ctx->pop)
		pmemobj_close(ctx->pop);
	ctx->pop = NULL;
}

static struct tier_pentry *alloc_entry(struct tier_ctx *ctx, uint64_t *slot)
{
	uint64_t cap = ctx->root->capacity;

	for (uint64_t k = 0; k < cap; k++) {
		uint64_t i = (ctx->free_hint + k) % cap;

		if (!ctx->ent[i].used) {
			ctx->free_hint = i + 1;
			*slot = i;
			return &ctx->ent[i];
		}
	}
	return NULL;
}

/* No room for another entry: say so once and stop tracing, as every
 * further record would fail the same way. Files already indexed keep
 * being promoted and served; nothing in the pool changes. */
void tier_index_full(struct tier_ctx *ctx)
{
	if (atomic_exchange(&ctx->index_full, true))
		return;
	tier_trace_stop(ctx);
	tier_log(ctx, LOG_WARNING | TIER_LOG_TELL, "index %s/%s is full (%llu files); tracing "
		 "stopped, files it cannot name stay on their layers; a bigger index_size applies "
		 "to a new pool", ctx->cfg.nvm_dir, TIER_INDEX_FILE,
		 (unsigned long long)ctx->nindexed);
}

/* A new entry, already carrying @heat (a trace record creates and heats
 * it in one transaction). */
static int new_entry_heat(struct tier_ctx *ctx, const char *layer_id, const char *path,
			  const struct tier_trace_rec *heat, struct tier_pentry **out)
{
	uint64_t slot;
	struct tier_pentry *e = alloc_entry(ctx, &slot);
	volatile int rc = 0;

	if (!e) {
		tier_index_full(ctx);
		return -ENOSPC;
	}
	TX_BEGIN(ctx->pop) {
		pmemobj_tx_add_range_direct(e, sizeof(*e));
		memset(e, 0, sizeof(*e));
		e->path = pmemobj_tx_strdup(path, TYPE_PATH);
		snprintf(e->layer, sizeof(e->layer), "%s", layer_id);
		if (heat) {
			e->heat = 1;
			e->last_time = heat->time;
			e->order = heat->order;
		}
		e->used = 1;
	} TX_ONABORT {
		rc = -ENOSPC;	/* no room for the path: rolled back */
	} TX_END
	if (rc == -ENOSPC)
		tier_index_full(ctx);
	if (!rc) {
		ctx->nindexed++;
		rc = map_insert(ctx, tier_hash_key(layer_id, path), slot);
	}
	*out = e;
	return rc;
}

static int new_entry(struct tier_ctx *ctx, const char *layer_id, const char *path,
		     struct tier_pentry **out)
{
	return new_entry_heat(ctx, layer_id, path, NULL, out);
}

int tier_index_ensure(struct tier_ctx *ctx, const char *layer_id, const char *path,
		      struct tier_pentry **out)
{
	*out = tier_index_find(ctx, layer_id, path);
	return *out ? 0 : new_entry(ctx, layer_id, path, out);
}

int tier_index_tx(struct tier_ctx *ctx, void *obj, size_t size,
		  void (*change)(void *obj, const void *arg), const void *arg)
{
	volatile int rc = 0;

	TX_BEGIN(ctx->pop) {
		pmemobj_tx_add_range_direct(obj, size);
		change(obj, arg);
	} TX_ONABORT {
		rc = -EIO;
	} TX_END
	return rc;
}

/* heat, last_time and order: adjacent, snapshotted together */
_Static_assert(offsetof(struct tier_pentry, order) ==
	       offsetof(struct tier_pentry, heat) + 2 * sizeof(uint64_t), "heat fields adjacent");
static void heat_up(void *heat, const void *rec)
{
	const struct tier_trace_rec *r = rec;
	struct tier_pentry *e = (struct tier_pentry *)((char *)heat - offsetof(struct tier_pentry, heat));

	e->heat++;
	e->last_time = r->time;
	e->order = r->order;
}

int tier_index_record_trace(struct tier_ctx *ctx, const struct tier_trace_rec *r)
{
	const char *lid = ctx->layers[r->layer].id;
	struct tier_pentry *e = tier_index_find(ctx, lid, r->path);

	if (!e)
		return new_entry_heat(ctx, lid, r->path, r, &e);
	return tier_index_tx(ctx, &e->heat, 3 * sizeof(uint64_t), heat_up, r);
}

static void count_up(void *counter, const void *arg)
{
	(void)arg;
	++*(uint64_t *)counter;
}

int tier_index_new_cold_start(struct tier_ctx *ctx)
{
	return tier_index_tx(ctx, &ctx->root->cold_starts, sizeof(uint64_t), count_up, NULL);
}

static void set_source(struct tier_pentry *e, const struct stat *src)
{
	e->src_size = (uint64_t)src->st_size;
	e->src_mtime_ns = (uint64_t)src->st_mtim.tv_sec * 1000000000ULL + (uint64_t)src->st_mtim.tv_nsec;
	e->src_ino = src->st_ino;
}

int tier_index_set_promoted(struct tier_ctx *ctx, struct tier_pentry *e,
			    const uint8_t *digest, const struct stat *src)
{
	volatile bool new_obj = !tier_obj_find(ctx, digest);
	volatile int rc = 0;

	if (e->state == TIER_ST_PROMOTED)
		return -EEXIST;
	TX_BEGIN(ctx->pop) {
		pmemobj_tx_add_range_direct(e, sizeof(*e));
		set_source(e, src);
		memcpy(e->digest, digest, 32);
		e->state = TIER_ST_PROMOTED;
		if (new_obj) {
			pmemobj_tx_add_range_direct(&ctx->root->object_bytes, sizeof(uint64_t));
			ctx->root->object_bytes += (uint64_t)src->st_size;
		}
	} TX_ONABORT {
		rc = -EIO;
	} TX_END
	if (!rc)
		rc = tier_obj_ref(ctx, digest, (uint64_t)src->st_size);
	return rc;
}

int tier_index_drop_copy(struct tier_ctx *ctx, struct tier_pentry *e)
{
	uint8_t digest[32];
	struct tier_obj *volatile o;
	volatile bool last;
	volatile int rc = 0;

	if (e->state != TIER_ST_PROMOTED && e->state != TIER_ST_RANGE)
		return 0;
	memcpy(digest, e->digest, 32);
	o = tier_obj_find(ctx, digest);
	last = o && o->refs == 1;
	TX_BEGIN(ctx->pop) {
		pmemobj_tx_add_range_direct(e, sizeof(*e));
		if (e->state == TIER_ST_RANGE)
			tier_range_tx_clear_copy(ctx, e);
		/* a written-back file's data is in its HDD copy again */
		e->state = e->wb ? TIER_ST_WRITTEN_BACK : TIER_ST_TRACED;
		memset(e->digest, 0, 32);
		if (last) {
			pmemobj_tx_add_range_direct(&ctx->root->object_bytes, sizeof(uint64_t));
			ctx->root->object_bytes -= o->size;
		}
	} TX_ONABORT {
		rc = -EIO;
	} TX_END
	if (rc)
		return rc;
	if (obj_unref(ctx, digest)) {
		char p[PATH_MAX];

		tier_object_path(ctx, digest, p, sizeof(p));
		unlink(p);
	}
	return 0;
}

static void mark_written_back(void *entry, const void *src)
{
	struct tier_pentry *e = entry;

	set_source(e, src);
	e->state = TIER_ST_WRITTEN_BACK;
	e->wb = 1;
}

int tier_index_set_written_back(struct tier_ctx *ctx, const char *layer_id,
				const char *path, const struct stat *src)
{
	struct tier_pentry *e = tier_index_find(ctx, layer_id, path);
	int rc;

	if (!e && (rc = new_entry(ctx, layer_id, path, &e)))
		return rc;
	return tier_index_tx(ctx, e, sizeof(*e), mark_written_back, src);
}

static void unmark_written_back(void *entry, const void *arg)
{
	struct tier_pentry *e = entry;

	(void)arg;
	e->wb = 0;
	if (e->state == TIER_ST_WRITTEN_BACK)
		e->state = TIER_ST_TRACED;
}

int tier_index_clear_written_back(struct tier_ctx *ctx, struct tier_pentry *e)
{
	return tier_index_tx(ctx, e, sizeof(*e), unmark_written_back, NULL);
}

static bool is_hex_digest(const char *name, uint8_t *digest)
{
	if (strlen(name) != 64)
		return false;
	for (int i = 0; i < 32; i++) {
		unsigned v;

		if (sscanf(name + 2 * i, "%2x", &v) != 1 || !strchr("0123456789abcdef", name[2 * i]) ||
		    !strchr("0123456789abcdef", name[2 * i + 1]))
			return false;
		digest[i] = (uint8_t)v;
	}
	return true;
}

/* After a crash: temp copies and objects that no committed entry names
 * are garbage; nothing may ever serve them. */
int tier_index_clean_objects(struct tier_ctx *ctx)
{
	DIR *d = opendir(ctx->objdir);
	struct dirent *de;
	uint8_t digest[32];
	int removed = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (is_hex_digest(de->d_name, digest) && tier_obj_find(ctx, digest))
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			removed++;
	}
	closedir(d);
	return removed;
}
