/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Metadata images of HDD layers: the on-disk format and the internals
 * shared by the files of tier/meta/. Not used outside tier/.
 *
 * An image is one read-only file, NVM/meta/<layer id>.img, mapped whole:
 *
 *   header  struct tier_meta_hdr (256 bytes)
 *   body    dirs     n_dirs  x struct tier_meta_dir, sorted by path
 *           ents     n_ents  x struct tier_meta_ent; ents[0] is the layer
 *                    root, then each dir's entries in dir order, each dir's
 *                    run sorted by name
 *           xattrs   n_xattrs x struct tier_meta_xattr, each entry's run in
 *                    llistxattr order
 *           strings  NUL-terminated names, paths, link targets, values
 *           atimes   n_ents x struct tier_meta_atime (last, so that a
 *                    verification can compare everything before it)
 *
 * The unit of coverage is a directory: a directory in the dir table has its
 * complete entry list, so a name missing from it does not exist. Entries of
 * a covered directory that are directories themselves need not be covered.
 *
 * Lookup is two binary searches (the parent path in the dir table, the name
 * in its run). Measured against the same tables in a libpmemobj pool
 * (test/bench/meta-bench, /usr of the build machine as the layer: 187,450
 * entries, 29.3 MB, 156 bytes per entry): 800 ns per lookup in the mmap'ed
 * file, 794 ns in the pool; both are loads from mapped memory. The pool
 * cannot be replaced atomically with rename nor checked with one SHA-256
 * (20.6 ms to open and check the whole /usr image), so the image is a
 * plain file.
 */
#ifndef NLAYERFS_TIER_META_H
#define NLAYERFS_TIER_META_H

#include <stdatomic.h>
#include "tier/tier_private.h"

#define TIER_META_DIR "meta"
#define TIER_META_MAGIC "NLMETA\r\n"
#define TIER_META_VERSION 1
#define TIER_META_XATTR_CAP 65536	/* xattr bytes kept per entry */
#define TIER_META_NONE UINT32_MAX

enum tier_meta_hdr_flags {
	TIER_META_F_FULL = 1,		/* every directory is covered */
};

enum tier_meta_ent_flags {
	TIER_META_E_XATTR_MISS = 1,	/* xattrs over the cap or unreadable */
	TIER_META_E_XATTR_NOTSUP = 2,	/* the file system has none */
	TIER_META_E_OPQ_MARKER = 4,	/* dir holding ".wh..wh..opq" */
	TIER_META_E_FOREIGN = 8,	/* another file system mounted here */
};

struct tier_meta_hdr {
	char magic[8];
	uint32_t version, flags;
	char layer[TIER_ID_LEN];
	uint64_t root_dev, root_ino;
	int64_t root_ctime_ns, root_mtime_ns;
	uint64_t n_dirs, n_ents, n_xattrs, str_bytes;
	uint64_t off_dirs, off_ents, off_xattrs, off_strs, off_atimes; /* from body */
	uint64_t body_len;
	uint8_t sha256[32];		/* of the header with this zeroed, then body */
	uint8_t pad[256 - 8 - 8 - TIER_ID_LEN - 32 - 4 * 8 - 5 * 8 - 8 - 32];
};

struct tier_meta_dir {
	uint32_t path_off, path_len;	/* "." for the root */
	uint32_t first, count;		/* its run in ents */
	uint32_t self, pad;		/* its own entry */
};

struct tier_meta_ent {
	uint32_t name_off, name_len;
	uint32_t mode, uid, gid, nlink;
	uint32_t flags, dir;		/* dir: its dir record, or NONE */
	uint64_t ino, size, blocks, rdev;
	int64_t mtime_s, ctime_s;
	uint32_t mtime_ns, ctime_ns;
	uint32_t blksize, xattr_n;
	uint32_t xattr_first, link_off;
	uint32_t link_len, pad;
};

struct tier_meta_xattr {
	uint32_t name_off, name_len, val_off, val_len;
};

struct tier_meta_atime {
	int64_t s;
	uint32_t ns, pad;
};

/* A mapped, checked image. Never unmapped while the context lives:
 * readers hold no lock, a dropped image is only retired. */
struct tier_meta_img {
	struct tier_meta_img *next_retired;
	void *map;
	size_t len;
	const struct tier_meta_hdr *hdr;
	const struct tier_meta_dir *dirs;
	const struct tier_meta_ent *ents;
	const struct tier_meta_xattr *xattrs;
	const char *strs;
	const struct tier_meta_atime *atimes;
	bool verified;			/* compared with the layer, or built now */
};

/* The root of a layer as the header records it. */
struct tier_meta_sig {
	uint64_t dev, ino;
	int64_t ctime_ns, mtime_ns;
};

/* Which directories a build covers: all, or the sorted @paths. */
struct tier_meta_cover {
	bool full;
	char **paths;
	size_t n;
	_Atomic bool *stop;	/* once true, a walk ends with -ECANCELED */
	/* called before each directory is read; nonzero ends the walk with it
	 * (the tier waits there while a start reads the same disk) */
	int (*pause)(void *arg);
	void *pause_arg;
};

/* The images of one context: one slot per layer, and the thread that
 * builds them (meta.c). */
struct tier_meta_layer {
	struct tier_meta_img *_Atomic img;
	dev_t dev;			/* the layer root's current device */
	bool hdd;			/* gets an image */
	bool want_build, want_verify;
	bool fresh;			/* new to the tier: built even in a window */
	uint64_t checked_ns;		/* last build or verification walk */
	bool known;			/* looked at by start or layer_added */
	bool changed;			/* the next build replaces a stale image */
	/* directories lookups found uncovered (meta_missed.c, miss_lock) */
	struct tier_meta_cover missed;
	_Atomic bool missed_new;	/* one not in the image yet */
	_Atomic bool gave_way;		/* a whole walk stopped for them */
};

struct tier_meta_state {
	pthread_mutex_t lock;
	pthread_mutex_t miss_lock;	/* the layers' missed sets */
	pthread_cond_t wake, done;
	pthread_t thread;
	bool thread_on, stop;
	unsigned busy, force;		/* force: work even in a trace window */
	struct tier_meta_layer *l;
	size_t n;
	char *dir;			/* NVM/meta */
	struct tier_meta_img *retired;	/* dropped images, unmapped at stop */
	uint64_t last_window;		/* trace_end of the last window seen */
	uint64_t quiet_after;		/* no trace: a window's worth after start */
	_Atomic uint64_t hits, misses, builds, rebuilds;
};

/* meta.c */
void tier_meta_drop_stale(struct tier_ctx *ctx, size_t layer, const struct tier_meta_img *img,
			  const char *relpath);

/* meta_missed.c */
/* A lookup of @relpath in @layer was not answered by its image. */
void tier_meta_note_miss(struct tier_ctx *ctx, int layer, const char *relpath, bool is_dir);
/* Add the missed directories of @layer and their ancestors to @c. */
int tier_meta_missed_cover(struct tier_ctx *ctx, size_t layer, struct tier_meta_cover *c);
void tier_meta_missed_clear(struct tier_ctx *ctx, size_t layer);

/* meta_build.c */
int tier_meta_sig_of(const char *layer_dir, struct tier_meta_sig *sig);
/* Walk @layer_dir and lay out an image in memory (*out, *len; free()). */
int tier_meta_build_mem(const char *layer_dir, const char *layer_id,
			const struct tier_meta_cover *cover, void **out, size_t *len);
/* Write an image: temp file, fsync, rename, fsync of the directory. */
int tier_meta_write(const char *meta_dir, const char *layer_id, const void *buf, size_t len);
/* The whole-layer image of @layer_dir into @nvm_dir/meta (nlayerfs-import
 * for the layers it stores on HDD; a mount checks it like any other). */
int tier_meta_build_file(const char *nvm_dir, const char *layer_dir, const char *layer_id);
void tier_meta_cover_free(struct tier_meta_cover *c);
int tier_meta_cover_add(struct tier_meta_cover *c, const char *dir);
void tier_meta_cover_sort(struct tier_meta_cover *c);

/* meta_img.c */
/* Check and map @path; on refusal @why says what is wrong. */
int tier_meta_img_open(const char *path, const char *layer_id, const struct tier_meta_sig *sig,
		       struct tier_meta_img **out, char *why, size_t whylen);
/* The same checks on an image in memory (used before writing one). */
int tier_meta_img_check(const void *buf, size_t len, const char *layer_id,
			char *why, size_t whylen);
void tier_meta_img_free(struct tier_meta_img *img);
/* The entry of @relpath: >= 0, -ENOENT, -ENOTDIR or TIER_META_MISS. */
long tier_meta_img_find(const struct tier_meta_img *img, const char *relpath);
void tier_meta_img_stat(const struct tier_meta_img *img, long e, dev_t dev, struct stat *st);
const char *tier_meta_img_str(const struct tier_meta_img *img, uint32_t off);

#endif
