/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The checkpoint mount: a directory tree for criu images whose file data
 * lives in tenants' striped streams on a zoned device (zns/), with the
 * namespace and extents kept in a libpmemobj pool under meta=DIR.
 *
 * Every top-level directory is a tenant with its own stream. A file is a
 * sorted list of extents (file offset, length, stream offset); writes are
 * always appended to the stream, so a write not at the end of a file just
 * replaces part of the list. Space of replaced or deleted extents is given
 * back (zns_stream_discard) only after the metadata that no longer needs it
 * is committed, so a crash never leaves committed metadata pointing at
 * reset zones.
 *
 * Locking: c->lock guards the tree, the pending discards and the pool. The
 * data of a write is appended to its tenant's stream outside c->lock, under
 * the tenant's append_lock, so tenants write in parallel (each in its own
 * groups) and a tenant waiting on its zones never stalls the others; the
 * extent is then recorded under c->lock. A tenant's stream is replaced or
 * destroyed only once no append is in flight (appending, c->idle).
 *
 * Surviving the server (ckpt_keep.c): the mount's keeper holds a table
 * (nodetab.h). Node ids are the pool's inode numbers, so every change of
 * the tree is committed before its reply; open handles are in the table;
 * and a write, answered before its extent is committed, is copied into the
 * table's journal, which a commit empties. A new server loads the pool,
 * writes the journal again, and counts the open handles again.
 */
#ifndef NLAYERFS_FS_CKPT_H
#define NLAYERFS_FS_CKPT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312
#endif
#include <fuse_lowlevel.h>
#include <libpmemobj.h>

#include "fs/log.h"
#include "fs/options.h"
#include "fs/keeper/nodetab.h"
#include "zns/zns.h"

#define CKPT_LAYOUT "nlayerfs-ckpt"
#define CKPT_LAYOUT_VERSION 2	/* 2: the device identity */
#define CKPT_BW_XATTR "user.nlayerfs.bandwidth"
/* The checkpoint mount's messages: a notice, told on stderr too. */
#define CKPT_LOG (LOG_NOTICE | NL_LOG_TELL)

struct ckpt_ext {
	uint64_t off;		/* offset in the file */
	uint64_t len;
	uint64_t soff;		/* offset in the tenant's stream */
};

struct ckpt_node {
	uint64_t ino;
	uint64_t parent;	/* 0: unlinked but still open */
	char *name;
	uint32_t mode;
	uint32_t uid, gid;
	uint64_t size;
	struct timespec mtime, ctime;
	char *target;		/* symlinks */
	uint64_t tino;		/* the tenant directory this node lives in */
	struct ckpt_ext *ext;
	size_t n_ext, cap_ext;
	uint32_t nopen;
	uint32_t nwrite;	/* open for writing: reported if a crash catches it */
	bool was_open_w;	/* loaded: it was open for writing at the last commit */
	/* tenant directories only */
	uint32_t tenant;
	uint64_t bandwidth;
	struct zns_stream *st;
	void *st_blob;		/* encoded stream, between load and attach, and in a commit */
	size_t st_len;
	pthread_mutex_t append_lock;	/* one append at a time: its stream range is known */
	uint32_t appending;		/* writes between their append and their extent */
};

struct ckpt_dirbuf;

struct ckpt_discard {
	struct zns_stream *st;
	uint64_t off, len;
};

struct ckpt_ctx {
	pthread_mutex_t lock;	/* the tree, the pending discards, the pool */
	pthread_cond_t idle;	/* a tenant's last append in flight is recorded */
	struct ckpt_node **nodes;	/* indexed by inode number */
	uint64_t n_nodes;
	uint64_t next_ino;
	uint32_t next_tenant;
	struct ckpt_discard *pend;
	size_t n_pend, cap_pend;
	bool dirty;
	bool recovered;		/* the tree is the pool's: only then written back */

	char *dev_path;
	char *pool_path;
	char *meta_dir;
	struct zns_open_opts dopts;
	struct zns_store_opts sopts;
	uint64_t def_bw;
	struct zns_dev *dev;
	struct zns_store *store;
	PMEMobjpool *pop;
	bool pool_created;	/* by this mount: removed again if it is refused */
	bool loaded;		/* the pool held a tree (it is not new) */
	bool has_id;		/* dev_id is the pool's device identity */
	bool force_new_pool;	/* a new pool may take a device that holds data */
	struct zns_label dev_id;
	void *alloc_blob;	/* loaded allocation image, until the store exists */
	size_t alloc_len;
	uint64_t *dead;		/* loaded per-zone dead bytes */
	uint32_t n_dead;
	uint32_t nr_zones;	/* geometry recorded in the pool */
	uint64_t zone_size;

	struct nl_tab *tab;		/* the keeper's table: handles, journal, intents */
	struct nl_tab_replay replay;	/* intents a dead server left */
	struct ckpt_dirbuf **dirs;	/* listings of open directories, by handle */
	uint64_t n_dirs;
	bool initialized;		/* FUSE_INIT answered */
	bool taking_over;		/* loaded for a dead server: no crash report */
	bool replaying;			/* the journal is not emptied meanwhile */
};

/* ckpt.c */
int nl_ckpt_main(struct nl_options *o, const char *prog, char **argv);
int ckpt_ctx_setup(struct ckpt_ctx *c, struct nl_options *o, char *err, size_t errlen);
int ckpt_fuse_args(struct fuse_args *args, const char *prog, struct nl_options *o,
		   const char *dev);

/* ckpt_keep.c: the table the keeper holds */
struct nl_takeover;
int nl_ckpt_takeover(struct nl_options *o, struct nl_takeover *t, const char *prog);
int ckpt_write_range(struct ckpt_ctx *c, fuse_ino_t ino, const char *buf, size_t size,
		     uint64_t off);
bool ckpt_fh_writes(struct ckpt_ctx *c, uint64_t fh);
/* @fh is an open handle of @ino (not one released already). */
bool ckpt_fh_live(struct ckpt_ctx *c, uint64_t fh, uint64_t ino);

/* ckpt_tree.c */
struct ckpt_node *ckpt_node_alloc(void);
void ckpt_node_release(struct ckpt_node *n);
int ckpt_place(struct ckpt_ctx *c, struct ckpt_node *n);
struct ckpt_node *ckpt_get(struct ckpt_ctx *c, uint64_t ino);
struct ckpt_node *ckpt_child(struct ckpt_ctx *c, uint64_t parent, const char *name);
int ckpt_new_node(struct ckpt_ctx *c, uint64_t parent, const char *name, uint32_t mode,
		  struct ckpt_node **np);
void ckpt_free_node(struct ckpt_ctx *c, struct ckpt_node *n);
struct zns_stream *ckpt_stream_of(struct ckpt_ctx *c, struct ckpt_node *n);
int ckpt_punch(struct ckpt_ctx *c, struct ckpt_node *n, uint64_t off, uint64_t len);
int ckpt_add_ext(struct ckpt_ctx *c, struct ckpt_node *n, uint64_t off, uint64_t len,
		 uint64_t soff);
int ckpt_queue_discard(struct ckpt_ctx *c, struct zns_stream *st, uint64_t off, uint64_t len);
void ckpt_drop_pending(struct ckpt_ctx *c, struct zns_stream *st);
bool ckpt_has_children(struct ckpt_ctx *c, uint64_t ino);
void ckpt_touch(struct ckpt_node *n);
void ckpt_wait_appends(struct ckpt_ctx *c, struct ckpt_node *t);

/* ckpt_meta.c */
int ckpt_meta_load(struct ckpt_ctx *c, const char *metadir, char *err, size_t errlen);
int ckpt_recover(struct ckpt_ctx *c, char *err, size_t errlen);
int ckpt_commit(struct ckpt_ctx *c);
void ckpt_shutdown(struct ckpt_ctx *c);

/* ckpt_ops.c */
extern const struct fuse_lowlevel_ops ckpt_ops;

static inline struct ckpt_ctx *ckpt_ctx_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/*
 * Take the tree's lock and find a node: by inode number, or by name in a
 * directory. The lock is held on return either way; -ENOENT when there is
 * no such node. The operations answer with -r at one place.
 */
int ckpt_lock_get(struct ckpt_ctx *c, uint64_t ino, struct ckpt_node **np);
int ckpt_lock_child(struct ckpt_ctx *c, uint64_t parent, const char *name,
		    struct ckpt_node **np);

/* ckpt_dir.c */
void ckpt_dirs_free(struct ckpt_ctx *c);
void ckpt_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ckpt_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		  struct fuse_file_info *fi);
void ckpt_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);

/* ckpt_xattr.c */
void ckpt_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		   size_t size, int flags);
void ckpt_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void ckpt_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);

#endif
