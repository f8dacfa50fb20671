/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Private header of the union mount: the mount context and the nodes the
 * kernel knows about. Nothing outside fs/ includes it.
 */
#ifndef NLAYERFS_FS_NLAYERFS_H
#define NLAYERFS_FS_NLAYERFS_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "fs/options.h"
#include "fs/keeper/nodetab.h"

/*
 * Relative paths inside a layer can be longer than PATH_MAX (a process
 * inside the mount reaches deep trees relative to its working directory);
 * they are resolved in pieces (resolve.c). This is their bound.
 */
#define NL_PATH_BUF (4 * PATH_MAX)

struct nl_layer {
	int fd;			/* O_PATH|O_DIRECTORY fd of the layer root */
	char *path;
	dev_t dev;
	bool upper;
};

struct nl_node {
	struct nl_node *parent;	/* NULL for the root */
	uint64_t id;		/* the FUSE node id: its entry in the node table */
	char *name;
	uint64_t nlookup;	/* kernel references */
	uint64_t nchild;	/* children in the table hold their parent */
	struct nl_node *hnext;	/* hash chain, keyed by (parent, name) */

	int layer;		/* topmost layer holding this entry */
	int lowest;		/* directories: last layer merged into it */
	mode_t type;		/* S_IFMT bits */
	bool unlinked;		/* removed while the kernel still holds it */
	bool orphan;		/* its upper file is kept in the work dir's
				 * orphans/, deleted when the node goes */
	int nopen;		/* open files and opens under way; changed
				 * under lock, read atomically under m->names
				 * (nl_node_is_open) */
	int gone_fd;		/* O_PATH handle of an upper entry that lost its
				 * name (unlink, rename over it), taken before it
				 * went, so that the kernel's later requests for
				 * this node reach that file and no other; -1 */
	_Atomic(int *) dirfd;	/* directories: a kept O_PATH handle per layer
				 * (-1: none yet), see nl_node_dirfd() */
	struct stat *open_st;	/* an open lower file's attributes from its
				 * unlink on, for the same: its descriptor
				 * may be an NVM copy */
	pthread_mutex_t lock;	/* serialises copy-up of this node */
};

/* A remembered copy-up: which lower inode an upper inode came from. */
struct nl_origin {
	dev_t udev;
	ino_t uino;
	dev_t odev;
	ino_t oino;
	struct nl_origin *next;
};

/* Lower inodes whose names partly moved to the upper layer (hard links). */
struct nl_linkcount {
	dev_t odev;
	ino_t oino;
	nlink_t lower_nlink;	/* links of the lower inode */
	long delta;		/* names added minus names removed since */
	char *upper_path;	/* the first copy: later copies link to it */
	ino_t upper_ino;
	struct nl_linkcount *next;
};

#define NL_HASH_SIZE 65536
/* process-local pointers of the node table's ids and handles, in chunks
 * made once and never moved, so that they are read without a lock */
#define NL_CHUNK 65536
#define NL_NODE_CHUNKS (NL_TAB_NODES / NL_CHUNK)
#define NL_HANDLE_CHUNKS (NL_TAB_HANDLES / NL_CHUNK)
#define NL_ORIGIN_BUCKETS 4096

struct nl_mount {
	struct nl_options *opt;
	struct nl_layer *layers;	/* upper (if any) first, then lowers */
	int n_layers;
	struct nl_layer *upper;		/* NULL: read-only mount */
	int workfd;			/* workdir/work */
	int orphanfd;			/* workdir/work/orphans (orphan.c); -1
					 * until a file is first kept there */
	uint64_t tmp_seq;		/* names of temporaries in workdir */

	struct fuse_session *se;
	struct nl_node root;
	pthread_rwlock_t ns;		/* node table and names */
	/*
	 * Held for reading from building an upper node's path to resolving
	 * it to a descriptor, and for writing while a name changes on disk
	 * and in the node tree, so that no thread ever resolves a path the
	 * tree and the disk disagree on (a rename over a file would otherwise
	 * open the new file for the old node). Lower layers never change and
	 * need it not. Reader-preferring: readers may nest; a writer never
	 * takes a node's lock.
	 */
	pthread_rwlock_t names;
	_Atomic long dirfds;		/* directory handles kept by nodes */
	long dirfds_max;		/* at most: half the descriptor limit */
	struct nl_node **table;
	struct nl_tab tab;		/* the shared node table */
	_Atomic(void **) byid[NL_NODE_CHUNKS];		/* nl_node */
	_Atomic(void **) handles[NL_HANDLE_CHUNKS];	/* nl_file, nl_dirhandle */
	struct nl_node lost;		/* ids a taken-over table could not map */
	struct nl_tab_replay replay;	/* intents the server before left */

	pthread_mutex_t ino_lock;	/* origins, link counts, devices, orphan links */
	struct nl_orphan_link *orphan_links;	/* orphans of files with names */
	_Atomic unsigned n_orphan_links;
	struct nl_origin *origins[NL_ORIGIN_BUCKETS];	/* by upper inode */
	struct nl_linkcount *linkcounts;
	dev_t devs[64];
	int n_devs;
	bool one_device;

	double timeout;
	bool ro;
	bool initialized;		/* FUSE_INIT answered */
	struct nl_tier *tier;		/* NULL: no tiering (tier_glue.c) */
};

/* resolve.c: reaching a layer's entries from its descriptor, never
 * following a symlink, never leaving the layer. Negative errno returns. */
struct nl_at {
	int dfd;		/* the directory holding the entry */
	const char *name;	/* the entry's name in it */
	bool own;		/* dfd is to be closed by nl_at_done */
};
int nl_open_beneath(int root, const char *rel, int flags, mode_t mode);
int nl_at_parent(int root, const char *rel, struct nl_at *at);
void nl_at_done(struct nl_at *at);
int nl_lstat_beneath(int root, const char *rel, struct stat *st);
ssize_t nl_readlink_beneath(int root, const char *rel, char *buf, size_t size);
ssize_t nl_getxattr_beneath(int root, const char *rel, const char *name, void *buf,
			    size_t size);
ssize_t nl_listxattr_beneath(int root, const char *rel, char *buf, size_t size);
void nl_fd_path(int fd, char *buf, size_t len);
int nl_fd_reopen(int fd, int flags);
ssize_t nl_fd_getxattr(int fd, const char *name, void *buf, size_t size);
ssize_t nl_fd_listxattr(int fd, char *buf, size_t size);
int nl_fd_setxattr(int fd, const char *name, const void *value, size_t size, int flags);
int nl_fd_removexattr(int fd, const char *name);

/* Build the path of @n relative to a layer root ("." for the root). */
int nl_node_path(struct nl_mount *m, struct nl_node *n, char *buf, size_t len);
int nl_child_path(struct nl_mount *m, struct nl_node *parent, const char *name,
		  char *buf, size_t len);
struct nl_mount *nl_mount_of(fuse_req_t req);
struct nl_node *nl_node_of(struct nl_mount *m, fuse_ino_t ino);

/*
 * An open file. A descriptor opened read-only on a lower file moves to the
 * upper copy once the file is copied up, so that it reads what was written
 * after it was opened, as on the in-kernel overlayfs.
 */
struct nl_file {
	int fd;
	int old_fd;		/* the lower descriptor it left, closed at release */
	bool lower;		/* fd is on a lower layer */
	struct nl_range *range;	/* a big lower file: range copy and trace */
};

/* handles: fi->fh is an index into the node table's handles */
void *nl_handle_of(struct nl_mount *m, uint64_t fh);
int nl_handle_new(struct nl_mount *m, int kind, struct nl_node *n, int flags, void *obj,
		  uint64_t *fh);
void nl_handle_free(struct nl_mount *m, uint64_t fh);
int nl_handle_bind(struct nl_mount *m, uint64_t fh, void *obj);
int nl_node_bind(struct nl_mount *m, struct nl_node *n, uint64_t id);

static inline struct nl_file *nl_file_of(struct nl_mount *m, struct fuse_file_info *fi)
{
	return nl_handle_of(m, fi->fh);
}

static inline int nl_fd_of(struct nl_mount *m, struct fuse_file_info *fi)
{
	return fi ? __atomic_load_n(&nl_file_of(m, fi)->fd, __ATOMIC_ACQUIRE) : -1;
}

int nl_file_new(struct nl_mount *m, struct nl_node *n, struct fuse_file_info *fi, int fd,
		bool lower);
void nl_file_free(struct nl_mount *m, struct fuse_file_info *fi);
int nl_file_open(struct nl_mount *m, struct nl_node *n, struct fuse_file_info *fi);
int nl_file_reopen(struct nl_mount *m, struct nl_node *n, int flags, struct nl_file **out);
void nl_dirhandle_free(void *h);
void *nl_dirhandle_new(void);

/* takeover.c: a new server for the nodes and handles of a table left by
 * the one before */
int nl_nodes_restore(struct nl_mount *m);
void nl_nodes_free(struct nl_mount *m);

/* serve_taken.c: a server the keeper started (keeper.h) */
struct nl_takeover;
int nl_union_takeover(struct nl_options *o, struct nl_takeover *t, const char *prog);
/* The mount's session on @fuse_fd, resumed, or @fresh before any FUSE_INIT
 * (also for the host service). */
int nl_union_session(struct nl_mount *m, struct nl_options *o, const char *prog, int fuse_fd,
		     bool fresh, struct fuse_session **out);
/* The request failed as if made before: true (once) when the server
 * before this one was making exactly this change when it died. */
bool nl_intent_replayed(struct nl_mount *m, int op, struct nl_node *parent, const char *name);
int nl_intent_begin(struct nl_mount *m, int op, struct nl_node *parent, const char *name,
		    struct nl_node *to_parent, const char *to_name);
void nl_intent_end(struct nl_mount *m, int slot);

/* orphan.c: upper files that lost their name while open, kept in
 * the work directory for as long as their node lives, so that a server
 * after this one reaches them again */
#define NL_ORPHANS_DIR "orphans"	/* in workdir/work */
/*
 * In a node table entry's type byte (S_IFMT >> 12, four bits): its upper
 * file lost its name while open and is kept in the work directory as
 * orphan-<id>-<gen>. Set before the name goes, so that a server killed at
 * any step leaves either the name or the orphan for the next one to find.
 * A bit of a byte the layout has, not a new field: a table made by the
 * binary before stays readable by this one (a restart is an upgrade).
 */
#define NL_ENTRY_ORPHAN 0x80
#define NL_ENTRY_TYPE 0x0f
void nl_orphan_mark(struct nl_tab *t, uint64_t id, unsigned type, bool orphan);
int nl_orphan_name(const struct nl_tab *t, uint64_t id, char *buf, size_t len);
bool nl_orphan_parse(const char *name, uint64_t *id, uint32_t *gen);
int nl_orphans_open(struct nl_mount *m);
bool nl_orphan_keep(struct nl_mount *m, struct nl_node *n, int dfd, const char *name);
void nl_orphan_drop(struct nl_mount *m, struct nl_node *n);
void nl_orphan_closed(struct nl_mount *m, struct nl_node *n);
int nl_orphan_reach(struct nl_mount *m, uint64_t id);
unsigned nl_orphans_sweep(struct nl_mount *m);
void nl_orphan_restored(struct nl_mount *m, struct nl_node *n);
nlink_t nl_orphan_links(struct nl_mount *m, const struct stat *st);
bool nl_orphan_shares(struct nl_mount *m, ino_t shown);
void nl_orphan_links_free(struct nl_mount *m);

/* inode.c: node table and inode numbers */
struct nl_node *nl_node_get(struct nl_mount *m, struct nl_node *parent,
			    const char *name);
void nl_node_forget(struct nl_mount *m, struct nl_node *n, uint64_t count);
void nl_node_free(struct nl_mount *m, struct nl_node *n);
void nl_node_detach(struct nl_mount *m, struct nl_node *n);
void nl_node_keep_lower_attrs(struct nl_mount *m, struct nl_node *n);
void nl_node_keep_gone(struct nl_node *n, int dfd, const char *name);
int nl_node_handle(struct nl_mount *m, struct nl_node *n);
int nl_node_open_upper(struct nl_mount *m, struct nl_node *n, int flags);
int nl_node_dirfd(struct nl_mount *m, struct nl_node *dir, int layer, bool *owned);
void nl_node_dirfds_free(struct nl_mount *m, struct nl_node *n);
int nl_upper_dir(struct nl_mount *m, struct nl_node *dir, const char *name, struct nl_at *at);
void nl_node_move(struct nl_mount *m, struct nl_node *n,
		  struct nl_node *newparent, const char *newname);
struct nl_node *nl_node_find(struct nl_mount *m, struct nl_node *parent,
			     const char *name);
ino_t nl_ino_map(struct nl_mount *m, dev_t dev, ino_t ino);
ino_t nl_ino_of_upper(struct nl_mount *m, dev_t dev, ino_t ino);
void nl_origin_add(struct nl_mount *m, const struct stat *upper,
		   const struct stat *lower);
void nl_origin_remember(struct nl_mount *m, const struct stat *upper,
			const struct stat *lower);
void nl_node_rehash(struct nl_mount *m, struct nl_node *n);
bool nl_origin_find(struct nl_mount *m, dev_t udev, ino_t uino,
		    dev_t *odev, ino_t *oino);
void nl_linkcount_track(struct nl_mount *m, dev_t odev, ino_t oino,
			nlink_t lower_nlink, const char *upper_path,
			ino_t upper_ino);
int nl_linked_copy(struct nl_mount *m, dev_t odev, ino_t oino, char *path,
		   size_t len);
void nl_linkcount_adjust(struct nl_mount *m, dev_t odev, ino_t oino, int d);
/* The link count of a lower hard link being copied up, if tracked. */
bool nl_linkcount_get(struct nl_mount *m, dev_t odev, ino_t oino, nlink_t *nlink);
void nl_origin_of(struct nl_mount *m, const struct stat *st, dev_t *odev,
		  ino_t *oino);
int nl_node_stat(struct nl_mount *m, struct nl_node *n, int fd,
		 struct stat *st);
int nl_node_stat_from(struct nl_mount *m, struct nl_node *n, struct stat *st);
double nl_attr_timeout(struct nl_mount *m, const struct stat *st);

/* namei.c: resolving names through the layers */
bool nl_is_whiteout(const struct stat *st);
bool nl_name_is_private(const char *name);
bool nl_xattr_is_private(const char *name);
bool nl_dir_is_opaque(struct nl_mount *m, int layer, const char *path);
int nl_resolve(struct nl_mount *m, struct nl_node *parent, const char *name,
	       int from_layer, int *layer, int *lowest, struct stat *st);
int nl_lookup_child(struct nl_mount *m, struct nl_node *parent,
		    const char *name, struct fuse_entry_param *e);
bool nl_lower_has(struct nl_mount *m, struct nl_node *parent,
		  const char *name);

void nl_node_opened(struct nl_node *n);
void nl_node_closed(struct nl_node *n);
bool nl_node_is_open(struct nl_node *n);

/*
 * lower.c: a layer's metadata, from its metadata image on NVM when it has
 * one that covers @path, else from the layer itself (always for the upper
 * layer). Return 0 or a length, or a negative errno.
 */
int nl_lower_lstat(struct nl_mount *m, int layer, const char *path, struct stat *st);
int nl_lower_lstat_in(struct nl_mount *m, int layer, struct nl_node *dir, const char *name,
		      const char *path, struct stat *st);
bool nl_lower_imaged(struct nl_mount *m, int layer);
ssize_t nl_lower_readlink(struct nl_mount *m, int layer, const char *path, char *buf,
			  size_t size);
ssize_t nl_lower_getxattr(struct nl_mount *m, int layer, const char *path, const char *name,
			  void *buf, size_t size);
ssize_t nl_lower_listxattr(struct nl_mount *m, int layer, const char *path, char *buf,
			   size_t size);
/* Each entry but "." and ".."; a non-zero return stops the listing. */
typedef int (*nl_lower_dirent_fn)(void *arg, const char *name, ino_t ino, unsigned char type,
				  bool whiteout);
int nl_lower_readdir(struct nl_mount *m, int layer, const char *path, nl_lower_dirent_fn fn,
		     void *arg);
int nl_readdir_fd(int fd, nl_lower_dirent_fn fn, void *arg);
/* @fd holds @path's data, opened from the layer: check the image against it. */
void nl_lower_opened(struct nl_mount *m, int layer, const char *path, int fd);

/* readdir.c */
struct nl_dirent {
	char *name;
	ino_t ino;
	unsigned char type;
};
struct nl_dirlist {
	struct nl_dirent *ents;
	size_t n, cap;
};
int nl_dir_list(struct nl_mount *m, struct nl_node *dir, struct nl_dirlist *l);
void nl_dir_list_free(struct nl_dirlist *l);
int nl_dir_is_empty(struct nl_mount *m, struct nl_node *dir);

/* copy_up.c */
int nl_copy_up(struct nl_mount *m, struct nl_node *n);
int nl_copy_up_tree(struct nl_mount *m, struct nl_node *n);
int nl_make_temp_name(struct nl_mount *m, char *buf, size_t len);
int nl_whiteout_at(struct nl_mount *m, int dfd, const char *name);
int nl_set_opaque(int dfd, const char *name);
int nl_clear_upper_dir(int dfd, const char *name);

/* image.c: -o image=NAME fills the lowerdirs from the image registry */
int nl_image_layers(struct nl_options *o, char *err, size_t errlen);

/* ownership mapping */
uid_t nl_uid_to_outer(struct nl_mount *m, uid_t uid);
gid_t nl_gid_to_outer(struct nl_mount *m, gid_t gid);

/* the operations, one file per concern */
void nl_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void nl_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void nl_op_forget_multi(fuse_req_t req, size_t count,
			struct fuse_forget_data *forgets);
void nl_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void nl_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		   int to_set, struct fuse_file_info *fi);
void nl_op_readlink(fuse_req_t req, fuse_ino_t ino);
void nl_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void nl_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi);
void nl_op_releasedir(fuse_req_t req, fuse_ino_t ino,
		      struct fuse_file_info *fi);
void nl_op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
		    struct fuse_file_info *fi);
void nl_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		 mode_t mode, dev_t rdev);
void nl_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		 mode_t mode);
void nl_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		   const char *name);
void nl_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		const char *newname);
void nl_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void nl_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void nl_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		  fuse_ino_t newparent, const char *newname,
		  unsigned int flags);
void nl_op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		  mode_t mode, struct fuse_file_info *fi);
void nl_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void nl_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi);
void nl_op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *buf,
		     off_t off, struct fuse_file_info *fi);
void nl_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void nl_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void nl_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		 struct fuse_file_info *fi);
void nl_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
		     off_t length, struct fuse_file_info *fi);
void nl_op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			   struct fuse_file_info *fi_in, fuse_ino_t ino_out,
			   off_t off_out, struct fuse_file_info *fi_out,
			   size_t len, int flags);
void nl_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		 struct fuse_file_info *fi);
void nl_op_statfs(fuse_req_t req, fuse_ino_t ino);
void nl_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		    const char *value, size_t size, int flags);
void nl_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		    size_t size);
void nl_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void nl_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

/* Where a lower regular file's data is read from. The tiering library
 * may answer with a promoted copy; today it is the layer's own file. */
int nl_open_lower_data(struct nl_mount *m, struct nl_node *n, const char *path,
		       int flags);

/* tier_glue.c: tiering of the lower layers, when nvm= is configured */
int nl_tier_setup(struct nl_mount *m, char *err, size_t errlen);
void nl_tier_start(struct nl_mount *m);
void nl_tier_stop(struct nl_mount *m);
int nl_tier_open_data(struct nl_mount *m, int layer, const char *path, int flags,
		      struct nl_range **range);
int nl_tier_open_layer_file(struct nl_mount *m, int layer, const char *path, int flags);

/* tier_range.c: reads of big lower files with a range copy on NVM */
struct tier_ctx;
struct nl_range *nl_range_open(struct nl_mount *m, struct tier_ctx *ctx, int layer, int tl,
			       const char *path, const struct stat *st);
int nl_range_copy_fd(struct nl_range *r);
int nl_range_data_fd(struct nl_range *r, int open_fd);
void nl_range_free(struct nl_range *r);
void nl_range_read(fuse_req_t req, struct nl_range *r, int open_fd, size_t size, off_t off);

/* mount.c: a mount's context and session, whichever process serves it
 * (its own daemon, or the host tier service) */
extern const struct fuse_lowlevel_ops nl_union_ops;
int nl_mount_setup(struct nl_mount *m, struct nl_options *o, char *err, size_t errlen);
void nl_mount_free(struct nl_mount *m);
int nl_fuse_args(struct fuse_args *args, const char *prog, struct nl_options *o);

#endif
