/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libnltier — layers and storage tiers of nlayerfs.
 *
 * The public header of the tiering engine (tier/, tier/range/, tier/meta/);
 * image import, the registry and LASS have theirs in tier/image/image.h.
 * No FUSE headers here or below: the union mount (fs/) and the tools report
 * events to this library and ask it where a file's data lives. Calls return 0 or a negative errno unless said otherwise.
 */
#ifndef NLAYERFS_TIER_H
#define NLAYERFS_TIER_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <stdio.h>
#include <sys/stat.h>

/* ---- Reaching a layer's files ---- */

/* Open @rel below the directory @root (a descriptor) without following any
 * symlink and without leaving @root's tree (openat2 RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS, or a walk with O_NOFOLLOW on old kernels); a final
 * symlink is opened only with O_PATH | O_NOFOLLOW. Paths longer than
 * PATH_MAX are walked in pieces. Returns a descriptor or -errno. */
int tier_open_beneath(int root, const char *rel, int flags, mode_t mode);
/* The same from the layer directory @layer_dir (a trusted path). */
int tier_layer_open(const char *layer_dir, const char *rel, int flags);

/* ---- Layers, tiers, trace, hot-file index, promotion ---- */

/* Home tier of a layer, by which tier directory it lies under. */
enum tier_home { TIER_HOME_HDD = 0, TIER_HOME_NVM = 1 };

/*
 * The library's messages (a full index, a damaged NVM copy, a layer made
 * whole again) are handed to the program through one hook: @priority is a
 * syslog(3) priority, with TIER_LOG_TELL set when the person who started
 * the mount should see it too. Without a hook they go to stderr.
 */
#define TIER_LOG_TELL 0x100
typedef void tier_log_fn(int priority, const char *msg);

/*
 * The store of imported images (tier/image: <nvm dir>/images and its lock)
 * as the tier needs it to move layers it owns; the program hands it in, so
 * that the engine depends on no part above it. Without it no layer is the
 * store's, and none moves.
 */
struct tier_store_ops {
	/* 1 when the store lists layer @chain_hex at @real (a real path) */
	int (*owns)(const char *nvm_dir, const char *chain_hex, const char *real);
	/* every image's record of @chain_hex names @tier and @path; lines
	 * changed or -errno with a message */
	int (*relocate)(const char *nvm_dir, const char *chain_hex, const char *tier,
			const char *path, char *err, size_t errlen);
	/* the store's lock, held by imports: a descriptor, or -errno */
	int (*lock)(const char *nvm_dir);
};

/*
 * Settings of a tier context: built-in defaults, then the config file
 * (/etc/nlayerfs.conf), then mount options, each through tier_config_set().
 * Strings are owned by the struct; release them with tier_config_free().
 */
struct tier_config {
	char *nvm_dir;			/* NULL: tiering off */
	char *hdd_dir;			/* HDD tier: write-back copies */
	uint64_t nvm_size;		/* NVM budget in bytes; 0: unlimited */
	bool trace;			/* record first opens */
	unsigned trace_window;		/* seconds after the mount */
	bool promote;			/* run promotion workers */
	unsigned workers;		/* promotion threads */
	uint64_t index_size;		/* bytes of the index pool */
	uint64_t range_threshold;	/* files this big get range copies; 0: off */
	uint64_t range_unit;		/* granularity of traced read ranges */
	uint64_t range_slack;		/* copied after a traced range, half before */
	bool layer_meta;		/* metadata images of HDD layers */
	bool writeback;			/* write back cold NVM-home files */
	unsigned trace_quiet;		/* seconds without a first open end a start; 0: off */
	unsigned host_idle;		/* seconds a host service stays without work */
	bool trace_at_open;		/* tier_open() opens a trace window (not a key) */
	bool pool_checked;		/* this process's parent opened the pool
					 * just now: no probe (see tier_open) */
	tier_log_fn *log;		/* NULL: messages go to stderr (not a key) */
	const struct tier_store_ops *store; /* NULL: no layer moves (not a key) */
};

/* The built-in defaults (trace on, 60 s window, promote on, 2 workers). */
void tier_config_defaults(struct tier_config *c);
/* Set one key (the table of keys is in tier_config.c; nlayerfs.conf(5)
 * describes them). -ENOENT: not a tiering key (the caller may own it);
 * -EINVAL: bad value, with a message in @err. */
int tier_config_set(struct tier_config *c, const char *key, const char *value,
		    char *err, size_t errlen);
/* true when @key is one of the keys tier_config_set() takes, so that the
 * mount can accept it as an option without a list of its own. */
bool tier_config_has_key(const char *key);
/* true when @key's value is a directory (relative ones are the caller's to
 * make absolute: the library takes only absolute directories). */
bool tier_config_key_is_dir(const char *key);
/* Read "key = value" lines ('#' starts a comment) from @path. Errors name
 * file:line. -ENOENT when the file does not exist (not an error for the
 * default path). */
int tier_config_load(struct tier_config *c, const char *path, char *err, size_t errlen);
void tier_config_free(struct tier_config *c);
/* The config file read when no config= option names one. */
const char *tier_config_default_path(void);
/*
 * Every size the programs read (mount options, the config file, the tools'
 * arguments): "512", "64K", "10M", "2G", "1T" (powers of 1024, also
 * written KB or KiB; "512B"), to bytes. No sign, no overflow: -EINVAL.
 * tier_parse_rate() takes the same with an optional "/s" (a bandwidth).
 * tier_size_problem() says in words what is wrong with a refused one.
 */
int tier_parse_size(const char *s, uint64_t *out);
int tier_parse_rate(const char *s, uint64_t *out);
const char *tier_size_problem(const char *s);

/* ---- The control socket of a tiered mount ---- */

#define TIER_RUN_DIR "/run/nlayerfs"
/* A socket of the mount at @mountpoint (an absolute path without
 * symlinks): TIER_RUN_DIR/<hash of the path>.<kind>, kind "sock" for the
 * tier's control socket, "keeper" for the keeper of the mount. */
int tier_ctl_sock_path(const char *mountpoint, const char *kind, char *buf, size_t len);

struct tier_ctx;

/* Open the tiers: creates NVM/objects and the index pool NVM/tier.index,
 * or reopens them (removing temp and unreferenced objects left by a crash).
 * A pool of a newer layout or a broken pool (empty, short, overwritten:
 * loaded first in a child process, which may die of it) is refused with
 * a message naming it, never rebuilt or changed.
 * Starts the trace window (if trace) and the workers (if promote). */
int tier_open(const struct tier_config *c, struct tier_ctx **out, char *err, size_t errlen);
/* Stop the workers (a copy in flight is dropped: its temp removed,
 * nothing committed; a later open queues it again), fold the remaining
 * trace records into the index, close the pool. */
void tier_close(struct tier_ctx *ctx);
/* The unmount has begun: copies in flight stop now and no new one starts,
 * so that tier_close() is prompt. Lookups keep working. */
void tier_shutdown(struct tier_ctx *ctx);

/* Register a lower layer directory; returns its number (>= 0), used by every
 * call below. Identity: the directory name when it is a 64-hex chainID,
 * else SHA-256 of its realpath, st_dev and st_ino. Call before tracing. */
int tier_layer_add(struct tier_ctx *ctx, const char *dir);
size_t tier_layer_count(const struct tier_ctx *ctx);
/* 64 hex characters; NULL for an unknown layer. */
const char *tier_layer_id(const struct tier_ctx *ctx, int layer);
const char *tier_layer_dir(const struct tier_ctx *ctx, int layer);
enum tier_home tier_layer_home(const struct tier_ctx *ctx, int layer);
/* NVM bytes a layer's own data takes (0 for HDD-home layers). */
uint64_t tier_layer_nvm_bytes(struct tier_ctx *ctx, int layer);

/* The open path: record the first open of @relpath (no leading '/') in
 * @layer while the trace window is open. No I/O, no lock: an atomic
 * "seen" set and a ring drained by a background thread. */
bool tier_trace_open(struct tier_ctx *ctx, int layer, const char *relpath, uint64_t size);
/* Open a new trace window (a new cold start) / close it now. */
int tier_trace_start(struct tier_ctx *ctx);
void tier_trace_stop(struct tier_ctx *ctx);
/* A start (a mount) begins: opens a window, or joins the open one. The
 * window ends when every start in it ended (tier_trace_end() with the
 * number returned here), when no start asked the tier anything (an open, a
 * lookup, a read of a big file) for trace_quiet seconds, or after
 * trace_window seconds, whichever is first. While its starts are busy,
 * background work that reads the HDD waits. Its end is handled
 * in the tier's own thread: records folded, hot files and ranges queued. */
uint64_t tier_trace_begin(struct tier_ctx *ctx);
/* Windows opened since tier_open(): a change means a start came. */
uint64_t tier_trace_windows(struct tier_ctx *ctx);
void tier_trace_end(struct tier_ctx *ctx, uint64_t gen);
/* Fold the pending trace records into the index now. */
int tier_trace_flush(struct tier_ctx *ctx);

/* What tier_lookup_data() found. */
enum tier_where { TIER_DATA_LAYER = 0, TIER_DATA_NVM_COPY, TIER_DATA_HDD_COPY };
/* Where to read @relpath of @layer whose current lstat is @st: on
 * TIER_DATA_NVM_COPY / _HDD_COPY @out gets the copy's path (open it
 * read-only; if that open fails, read the layer file). A copy is named only
 * when the index says it is complete and @st still matches the source's
 * size, mtime and inode; a stale copy is dropped. Returns the enum or <0. */
int tier_lookup_data(struct tier_ctx *ctx, int layer, const char *relpath,
		     const struct stat *st, char *out, size_t outlen);

/* Queue one file for promotion (earliest-needed first). */
int tier_promote_file(struct tier_ctx *ctx, int layer, const char *relpath);
/* Queue every traced, not yet promoted file of the HDD layers. */
int tier_promote_hot(struct tier_ctx *ctx);
/* Wait until the promotion queue is empty and no copy runs.
 * @timeout_ms < 0: no limit. -ETIMEDOUT when it did not drain. */
int tier_wait_idle(struct tier_ctx *ctx, int timeout_ms);
/* Evict promoted objects, coldest first, until @bytes are freed
 * (UINT64_MAX: all). Returns the bytes freed (>= 0) or <0. */
int64_t tier_evict(struct tier_ctx *ctx, uint64_t bytes);
/* Drop the promoted copy of one file (reads go back to its layer). */
int tier_evict_file(struct tier_ctx *ctx, int layer, const char *relpath);
/* Copy files of NVM-home layers that no trace needed to
 * HDD/writeback/<layer id>/ and record them; with @release also free their
 * NVM blocks (hole punch, size kept). The union must then follow
 * tier_lookup_data() for those files too. Returns files written back. */
int tier_writeback_cold(struct tier_ctx *ctx, bool release);

/* What one write-back pass did. */
struct tier_wb_result {
	uint64_t files, bytes;		/* copied to HDD and committed now */
	uint64_t released, released_bytes; /* NVM files and blocks freed */
	uint64_t busy;			/* held open: released by a later pass */
};
/* tier_writeback_cold() with its figures. Blocks of a file are released
 * only when no descriptor of this process holds the layer file and no
 * open bracketed by tier_open_begin/end() can still reach it; busy files
 * stay written back (reads go to the HDD copy) and are released by a later
 * pass. -ECANCELED after tier_writeback_abort(). */
int tier_writeback_run(struct tier_ctx *ctx, bool release, struct tier_wb_result *res);
/* Write back one file of an NVM-home layer now, whether traced or not.
 * -EINVAL: not an NVM-home layer; -EALREADY: written back already (and
 * released, when @release). @res may be NULL. */
int tier_writeback_file(struct tier_ctx *ctx, int layer, const char *relpath, bool release,
			struct tier_wb_result *res);
/* Layers are never modified: nlayerfs itself never asks for @release.
 * A layer punched by an earlier version (written-back files whose layer
 * file is a hole) is made whole the first time tier_layer_add() sees it:
 * the HDD copies are copied back, compared, the recorded mtime restored,
 * the copies forgotten. Returns the files made whole. */
int tier_writeback_unpunch(struct tier_ctx *ctx, int layer);
/* Stop a running pass and refuse later ones (before tier_close()). */
void tier_writeback_abort(struct tier_ctx *ctx);
/* Remove temp files a crash left under HDD/writeback/<id>/ of the NVM-home
 * layers. Returns how many. */
int tier_writeback_clean(struct tier_ctx *ctx);
struct tier_wb_status {
	uint64_t files, bytes;		/* written back (index) */
	uint64_t busy;			/* waiting for descriptors to close */
};
int tier_writeback_status(struct tier_ctx *ctx, struct tier_wb_status *s);
/* ---- Moving whole layers between the tiers ----
 *
 * NVM is reclaimed from an NVM-home layer by moving the whole layer: it is
 * copied to HDD/layers/<id> (a temp directory first), the copy is read back
 * from the disk and compared with the layer entry by entry (bytes, modes,
 * owners, times, xattrs, links), the files traced starts needed get NVM
 * copies, and then the switch: NVM/layers/<id> becomes a symlink to the
 * HDD copy (one atomic rename exchange) and the registry names the HDD
 * copy. New mounts read the HDD copy; mounts holding the NVM copy keep
 * reading it, and it is deleted once no process holds it and no overlay
 * mount names it. A crash at any step leaves a complete layer that the
 * registry and NVM/layers/<id> lead to; the next service rolls an
 * unfinished copy back or finishes a switch. Only layers the store owns
 * (nlayerfs-import put them in NVM/layers/<chainID> and the registry
 * lists them) move: a directory named by its own path in lowerdir= stays
 * where it is ("pinned").
 */
enum tier_place {
	TIER_PLACE_NVM = 0,	/* an NVM-home layer */
	TIER_PLACE_HDD,		/* an HDD-home layer */
	TIER_PLACE_MOVING,	/* being copied to HDD; still read on NVM */
	TIER_PLACE_LEAVING,	/* moved: its NVM copy waits for its holders */
	TIER_PLACE_MOVED,	/* moved, NVM copy deleted */
};
struct tier_layer_info {
	enum tier_place place;
	bool movable;		/* NVM-home and owned by the store */
	unsigned holders;	/* leaving: processes or mounts holding it */
	uint64_t old_bytes;	/* leaving: NVM bytes its old copy still takes;
				 * out of the budget from the switch on */
};
int tier_layer_info(struct tier_ctx *ctx, int layer, struct tier_layer_info *out);
const char *tier_place_name(enum tier_place p);
/* Move one NVM-home layer to HDD now (the switch included; the deletion
 * of the NVM copy follows once nothing holds it); waits for a move that
 * runs. A message in @err on failure: -EPERM not owned by the store,
 * -EALREADY not on NVM, -EBADMSG the copy differs from the layer. */
int tier_layer_move(struct tier_ctx *ctx, int layer, char *err, size_t errlen);
/* Delete the NVM copies of moved layers that nothing holds any more.
 * Returns how many were deleted. */
int tier_move_reap(struct tier_ctx *ctx);
struct tier_move_status {
	uint64_t moves, moved_bytes;	/* layers moved, their bytes */
	uint64_t hot_copies;		/* NVM copies made for moved layers */
	uint64_t reaped;		/* NVM copies deleted */
	uint64_t failures;
	char last_error[256];
};
int tier_move_status(struct tier_ctx *ctx, struct tier_move_status *s);

/* The open path of lower data: bracket tier_lookup_data() and the open of
 * what it named. Two atomic counters, no lock; a write-back waits for the
 * opens that began before its index commit. */
unsigned tier_open_begin(struct tier_ctx *ctx);
void tier_open_end(struct tier_ctx *ctx, unsigned ticket);
/* True while a trace window is open. */
bool tier_trace_active(struct tier_ctx *ctx);

/* Hot list: "# nlayerfs hot list 1" then "<layer id> <path>" lines in first
 * open order. Export writes the traced files of every known layer. */
int tier_hotlist_export(struct tier_ctx *ctx, FILE *out);
/* Parse and validate a hot list, queue its files of known layers for
 * promotion (unknown layers are skipped and counted). Errors name
 * @name:line in @err. Returns the number of files queued. */
int tier_hotlist_import(struct tier_ctx *ctx, FILE *in, const char *name,
			unsigned *skipped, char *err, size_t errlen);

struct tier_status {
	uint64_t nvm_used;		/* objects + NVM-home layer data */
	uint64_t nvm_budget;		/* 0: unlimited */
	uint64_t promoted_files, promoted_bytes, objects;
	uint64_t queue_len;
	uint64_t indexed_files;
	bool index_full;		/* tracing stopped: no room for more files */
	uint64_t trace_records, trace_dropped;
	uint64_t cold_starts;		/* trace windows ever opened */
	bool trace_active, promote_on;
	uint64_t meta_bytes;		/* metadata images (in nvm_used) */
	uint64_t scrubs;		/* scrubs completed */
	uint64_t bad_copies;		/* copies that failed a check, dropped */
};
int tier_status(struct tier_ctx *ctx, struct tier_status *st);

/* What one scrub did. */
struct tier_scrub_result {
	uint64_t checked;		/* distinct copies read and hashed */
	uint64_t dropped;		/* failed (damaged, missing): dropped */
};
/* Check every NVM copy against the digest it is named by. A copy that
 * fails is dropped from the index and logged: reads go to the layer file,
 * and a later start promotes the file again. Runs without holding the
 * index lock while it reads. -ECANCELED after tier_shutdown(). */
int tier_scrub(struct tier_ctx *ctx, struct tier_scrub_result *res);

/* ---- Metadata images of HDD layers ----
 *
 * A compact image of an HDD layer's metadata on NVM (NVM/meta/<id>.img):
 * every covered directory's entries with their attributes, symlink targets
 * and xattrs, so that path walks of a cold start need no HDD reads. Built
 * in the background (never while a trace window is open), whole layer when
 * the NVM budget allows, else the directories traced starts walked. The
 * lookups below answer TIER_META_MISS when the image does not cover the
 * path (no image, an uncovered directory); -ENOENT, -ENOTDIR, -ENODATA,
 * -ERANGE keep their usual meaning.
 */
#define TIER_META_MISS (-ENOMEDIUM)

/* Open the images of the registered HDD layers (a broken, stale or foreign
 * image is refused with a message and rebuilt) and start the thread that
 * builds missing ones and verifies the others after each trace window.
 * Call after tier_layer_add(). tier_close() stops it. */
int tier_meta_start(struct tier_ctx *ctx);
void tier_meta_stop(struct tier_ctx *ctx);
/* Build @layer's image now and wait for it. */
int tier_meta_build(struct tier_ctx *ctx, int layer);
/* Do the pending builds now, even in a trace window (and with @verify,
 * compare every image with its layer), and wait. -ETIMEDOUT, -ENOENT when
 * images are off. */
int tier_meta_wait(struct tier_ctx *ctx, bool verify, int timeout_ms);

int tier_meta_lstat(struct tier_ctx *ctx, int layer, const char *relpath, struct stat *st);
/* Like readlink(2): the target, not NUL-terminated, cut at @size. */
ssize_t tier_meta_readlink(struct tier_ctx *ctx, int layer, const char *relpath,
			   char *buf, size_t size);
/* Like lgetxattr(2)/llistxattr(2): @size 0 asks for the length. */
ssize_t tier_meta_getxattr(struct tier_ctx *ctx, int layer, const char *relpath,
			   const char *name, void *buf, size_t size);
ssize_t tier_meta_listxattr(struct tier_ctx *ctx, int layer, const char *relpath,
			    char *buf, size_t size);
/* Every entry of a directory (no "." or ".."), in name order, with its
 * attributes; a non-zero return of @fn stops the listing and is returned. */
typedef int (*tier_meta_dirent_fn)(void *arg, const char *name, const struct stat *st);
int tier_meta_readdir(struct tier_ctx *ctx, int layer, const char *relpath,
		      tier_meta_dirent_fn fn, void *arg);
/* The mount opened @relpath's data from the layer and fstat()ed it: if the
 * image says otherwise the layer changed; drop the image now (lookups fall
 * back to the layer) and rebuild it. Returns 1 when dropped. */
int tier_meta_check(struct tier_ctx *ctx, int layer, const char *relpath, const struct stat *real);

struct tier_meta_status {
	bool on;
	uint64_t layers, partial;	/* layers with an image, hot-first ones */
	uint64_t bytes, entries;
	uint64_t hits, misses;		/* lookups answered / sent to the layer */
	uint64_t builds, rebuilds;	/* rebuilds: after a change was found */
	bool pending;			/* builds queued or running */
};
int tier_meta_status(struct tier_ctx *ctx, struct tier_meta_status *st);

/* ---- Range promotion of big files ----
 *
 * A lower file of an HDD layer at least range_threshold bytes long is not
 * copied whole: the reads of a trace window mark which range_unit blocks a
 * start needs, and a worker copies only those into a sparse NVM copy.
 */

/* The bytes [off, off + len) of a file. */
struct tier_extent {
	uint64_t off, len;
};

/* The read trace of one big file in one window, shared by its opens. */
struct tier_range_trace;

/* What an open of a big lower file gets from tier_range_open(). */
struct tier_range {
	struct tier_range_trace *trace;	/* report reads here; NULL: no trace */
	char *copy;			/* the sparse NVM copy; NULL: none */
	struct tier_extent *ext;	/* what the copy holds: sorted, disjoint */
	size_t n_ext;
};

/* The open path of a lower regular file whose current lstat is @st: for
 * a big file, the trace handle (while the window is open) and the range
 * copy (when the index has one that still matches @st; a stale one is
 * dropped). Returns 1 when @out holds either, 0 when not (not a big file
 * of an HDD layer, nothing traced or promoted), <0 on error. No disk I/O. */
int tier_range_open(struct tier_ctx *ctx, int layer, const char *relpath,
		    const struct stat *st, struct tier_range *out);
/* Release what tier_range_open() gave; safe after tier_close(). */
void tier_range_close(struct tier_range *r);
/* The read path: mark [off, off + len) as read. Atomic bit sets only. */
void tier_range_note_read(struct tier_range_trace *t, uint64_t off, uint64_t len);
/* Count bytes served from a range copy and from the layer file. */
void tier_range_note_served(struct tier_ctx *ctx, uint64_t nvm_bytes, uint64_t layer_bytes);
/* The extents of @relpath the index holds: every start's reads (@copy
 * false) or its committed copy (@copy true). Caller frees *ext. */
int tier_range_extents(struct tier_ctx *ctx, int layer, const char *relpath, bool copy,
		       struct tier_extent **ext, size_t *n);

struct tier_range_status {
	uint64_t files;			/* files with a range copy */
	uint64_t nvm_bytes;		/* allocated bytes of their copies */
	uint64_t file_bytes;		/* sizes of those files */
	uint64_t traced_files, traced_bytes; /* big files with traced ranges */
	uint64_t served_nvm, served_layer; /* bytes read from copies / layers */
};
int tier_range_status(struct tier_ctx *ctx, struct tier_range_status *s);

#endif
