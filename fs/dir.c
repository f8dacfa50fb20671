/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Directory operations: making, linking, removing and renaming names.
 *
 * New entries are made under a temporary name in workdir/work with their
 * final owner and mode, then renamed into the upper layer, so that they
 * replace a whiteout in one step and never show with the wrong owner.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/nlayerfs.h"

/* What a new entry needs to know before it is made. */
struct nl_create {
	struct nl_node *parent;
	const char *name;
	char path[NL_PATH_BUF];
	char tmp[64];
	bool over_whiteout;	/* the upper layer has a whiteout there */
	uid_t uid;
	gid_t gid;
	bool inherit_sgid;	/* parent directory is set-group-ID */
};

static int create_prepare(fuse_req_t req, struct nl_mount *m,
			  struct nl_create *c)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct stat st;
	int layer, lowest, r;

	if (!m->upper)
		return -EROFS;
	if (strlen(c->name) > NAME_MAX)
		return -ENAMETOOLONG;
	if (nl_name_is_private(c->name))
		return -EPERM;
	r = nl_resolve(m, c->parent, c->name, 0, &layer, &lowest, &st);
	if (r == 0)
		return -EEXIST;
	if (r != -ENOENT)
		return r;
	r = nl_copy_up(m, c->parent);
	if (!r)
		r = nl_child_path(m, c->parent, c->name, c->path, sizeof(c->path));
	if (!r)
		r = nl_make_temp_name(m, c->tmp, sizeof(c->tmp));
	if (r)
		return r;
	c->over_whiteout = fstatat(m->upper->fd, c->path, &st,
				   AT_SYMLINK_NOFOLLOW) == 0;
	c->uid = nl_uid_to_outer(m, ctx->uid);
	c->gid = nl_gid_to_outer(m, ctx->gid);
	if (nl_node_stat(m, c->parent, -1, &st) == 0 && (st.st_mode & S_ISGID)) {
		char ppath[NL_PATH_BUF];

		if (nl_node_path(m, c->parent, ppath, sizeof(ppath)) == 0 &&
		    fstatat(m->upper->fd, ppath, &st, 0) == 0) {
			c->gid = st.st_gid;
			c->inherit_sgid = true;
		}
	}
	return 0;
}

/* Move the finished temporary into place, over a whiteout if there is one. */
static int create_commit(struct nl_mount *m, struct nl_create *c, bool is_dir)
{
	char wh[NL_PATH_BUF + 8];
	const char *slash;

	if (is_dir && c->over_whiteout) {
		/* A directory cannot be renamed over a device node:
		 * swap them, then drop the whiteout. */
		if (renameat2(m->workfd, c->tmp, m->upper->fd, c->path,
			      RENAME_EXCHANGE))
			return -errno;
		unlinkat(m->workfd, c->tmp, 0);
		return nl_set_opaque(m, c->path);
	}
	if (renameat(m->workfd, c->tmp, m->upper->fd, c->path))
		return -errno;
	/* The old-style marker of an unprivileged mount, if any. */
	slash = strrchr(c->path, '/');
	snprintf(wh, sizeof(wh), "%.*s.wh.%s", slash ? (int)(slash - c->path + 1) : 0,
		 c->path, slash ? slash + 1 : c->path);
	if (unlinkat(m->upper->fd, wh, 0) == 0 && is_dir)
		return nl_set_opaque(m, c->path);
	return 0;
}

static int create_owner(struct nl_mount *m, struct nl_create *c)
{
	if (fchownat(m->workfd, c->tmp, c->uid, c->gid, AT_SYMLINK_NOFOLLOW))
		return -errno;
	return 0;
}

static void remove_tmp(struct nl_mount *m, const char *tmp)
{
	if (unlinkat(m->workfd, tmp, 0) && errno == EISDIR)
		unlinkat(m->workfd, tmp, AT_REMOVEDIR);
}

/* The node for a new upper entry, and the entry reply's contents. */
static int new_entry(struct nl_mount *m, struct nl_create *c, int fd,
		     struct fuse_entry_param *e)
{
	struct nl_node *n = nl_node_get(m, c->parent, c->name);
	int r;

	if (!n)
		return -ENOMEM;
	n->layer = 0;
	n->lowest = 0;
	memset(e, 0, sizeof(*e));
	r = nl_node_stat(m, n, fd, &e->attr);
	if (r) {
		nl_node_forget(m, n, 1);
		return r;
	}
	n->type = e->attr.st_mode & S_IFMT;
	e->ino = (uintptr_t)n;
	e->attr_timeout = nl_attr_timeout(m, &e->attr);
	e->entry_timeout = m->timeout;
	return 0;
}

static int make_node(struct nl_mount *m, struct nl_create *c, mode_t mode,
		     dev_t rdev, const char *link)
{
	int r;

	if (link)
		r = symlinkat(link, m->workfd, c->tmp);
	else if (S_ISDIR(mode))
		r = mkdirat(m->workfd, c->tmp, mode & 07777);
	else
		r = mknodat(m->workfd, c->tmp, mode, rdev);
	if (r)
		return -errno;
	r = create_owner(m, c);
	if (!r && !link && (c->inherit_sgid && S_ISDIR(mode)))
		mode |= S_ISGID;
	/* chown may have cleared set-id bits; the mode is set after it. */
	if (!r && !link && fchmodat(m->workfd, c->tmp, mode & 07777, 0))
		r = -errno;
	if (!r)
		r = create_commit(m, c, S_ISDIR(mode));
	if (r)
		remove_tmp(m, c->tmp);
	return r;
}

static void reply_new(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, dev_t rdev, const char *link)
{
	struct nl_mount *m = nl_mount_of(req);
	struct nl_create c = { .parent = nl_node_of(m, parent), .name = name };
	struct fuse_entry_param e;
	int r;

	r = create_prepare(req, m, &c);
	if (!r)
		r = make_node(m, &c, mode, rdev, link);
	if (!r)
		r = new_entry(m, &c, -1, &e);
	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_entry(req, &e);
}

void nl_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		 mode_t mode, dev_t rdev)
{
	reply_new(req, parent, name, mode, rdev, NULL);
}

void nl_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		 mode_t mode)
{
	reply_new(req, parent, name, S_IFDIR | (mode & 07777), 0, NULL);
}

void nl_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		   const char *name)
{
	reply_new(req, parent, name, S_IFLNK | 0777, 0, link);
}

void nl_op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		  mode_t mode, struct fuse_file_info *fi)
{
	struct nl_mount *m = nl_mount_of(req);
	struct nl_create c = { .parent = nl_node_of(m, parent), .name = name };
	struct fuse_entry_param e;
	int fd = -1, r, flags;

	r = create_prepare(req, m, &c);
	if (r)
		goto out;
	flags = (fi->flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOFOLLOW)) | O_CLOEXEC;
	if ((flags & O_ACCMODE) == O_WRONLY)
		flags = (flags & ~O_ACCMODE) | O_RDWR;
	fd = openat(m->workfd, c.tmp, flags | O_CREAT | O_EXCL, mode & 07777);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	r = create_owner(m, &c);
	if (!r && fchmod(fd, mode & 07777))
		r = -errno;
	if (!r)
		r = create_commit(m, &c, false);
	if (r)
		remove_tmp(m, c.tmp);
	if (!r)
		r = new_entry(m, &c, fd, &e);
out:
	if (r) {
		if (fd >= 0)
			close(fd);
		fuse_reply_err(req, -r);
		return;
	}
	r = nl_file_new(fi, fd, false);
	if (r) {
		nl_node_forget(m, nl_node_of(m, e.ino), 1);
		close(fd);
		fuse_reply_err(req, -r);
		return;
	}
	nl_node_opened(nl_node_of(m, e.ino), fd);
	if (fuse_reply_create(req, &e, fi)) {
		nl_node_closed(nl_node_of(m, e.ino));
		nl_file_free(fi);
	}
}

void nl_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		const char *newname)
{
	struct nl_mount *m = nl_mount_of(req);
	struct nl_node *src = nl_node_of(m, ino);
	struct nl_create c = { .parent = nl_node_of(m, newparent), .name = newname };
	char spath[NL_PATH_BUF];
	struct fuse_entry_param e;
	struct stat st;
	dev_t odev;
	ino_t oino;
	int r;

	if (src->type == S_IFDIR) {
		fuse_reply_err(req, EPERM);
		return;
	}
	r = create_prepare(req, m, &c);
	if (!r)
		r = nl_copy_up(m, src);
	if (!r)
		r = nl_node_path(m, src, spath, sizeof(spath));
	if (r)
		goto out;
	if (linkat(m->upper->fd, spath, m->workfd, c.tmp, 0)) {
		r = -errno;
		goto out;
	}
	r = create_commit(m, &c, false);
	if (r) {
		remove_tmp(m, c.tmp);
		goto out;
	}
	if (fstatat(m->upper->fd, c.path, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		nl_origin_of(m, &st, &odev, &oino);
		nl_linkcount_adjust(m, odev, oino, +1);
	}
	r = new_entry(m, &c, -1, &e);
out:
	if (r) {
		fuse_reply_err(req, -r);
		return;
	}
	fuse_reply_entry(req, &e);
	/* The kernel cached the old name's link count as a separate inode. */
	fuse_lowlevel_notify_inval_inode(m->se, ino, -1, 0);
}

/* One link fewer for a lower file whose names are spread over layers. */
static void forget_link(struct nl_mount *m, int layer, const char *path)
{
	struct stat st;
	dev_t odev;
	ino_t oino;

	if (nl_lower_lstat(m, layer, path, &st))
		return;
	if (S_ISDIR(st.st_mode))
		return;
	nl_origin_of(m, &st, &odev, &oino);
	nl_linkcount_adjust(m, odev, oino, -1);
}

/* Remove @name from the merged tree: a whiteout where lower layers still
 * have it, a plain removal where only the upper layer does. */
static int remove_name(struct nl_mount *m, struct nl_node *parent,
		       const char *name, int layer, bool is_dir)
{
	char path[NL_PATH_BUF];
	struct nl_node *n;
	int r;

	r = nl_copy_up(m, parent);
	if (!r)
		r = nl_child_path(m, parent, name, path, sizeof(path));
	if (r)
		return r;
	if (!is_dir)
		forget_link(m, layer, path);
	if (nl_lower_has(m, parent, name)) {
		r = nl_whiteout_at(m, path);
	} else if (is_dir) {
		r = nl_clear_upper_dir(m, path);
		if (!r && unlinkat(m->upper->fd, path, AT_REMOVEDIR))
			r = -errno;
	} else if (unlinkat(m->upper->fd, path, 0)) {
		r = -errno;
	}
	if (r)
		return r;
	n = nl_node_find(m, parent, name);
	if (n)
		nl_node_detach(m, n);
	return 0;
}

void nl_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct nl_mount *m = nl_mount_of(req);
	struct nl_node *p = nl_node_of(m, parent);
	struct stat st;
	int layer, lowest, r;

	r = m->upper ? nl_resolve(m, p, name, 0, &layer, &lowest, &st) : -EROFS;
	if (!r && S_ISDIR(st.st_mode))
		r = -EISDIR;
	if (!r)
		r = remove_name(m, p, name, layer, false);
	fuse_reply_err(req, -r);
}

static int dir_check_empty(struct nl_mount *m, struct nl_node *parent,
			   const char *name, int layer, int lowest)
{
	struct nl_node *n = nl_node_get(m, parent, name);
	int r;

	if (!n)
		return -ENOMEM;
	n->layer = layer;
	n->lowest = lowest;
	n->type = S_IFDIR;
	r = nl_dir_is_empty(m, n);
	nl_node_forget(m, n, 1);
	if (r < 0)
		return r;
	return r ? 0 : -ENOTEMPTY;
}

void nl_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct nl_mount *m = nl_mount_of(req);
	struct nl_node *p = nl_node_of(m, parent);
	struct stat st;
	int layer, lowest, r;

	r = m->upper ? nl_resolve(m, p, name, 0, &layer, &lowest, &st) : -EROFS;
	if (!r && !S_ISDIR(st.st_mode))
		r = -ENOTDIR;
	if (!r)
		r = dir_check_empty(m, p, name, layer, lowest);
	if (!r)
		r = remove_name(m, p, name, layer, true);
	fuse_reply_err(req, -r);
}

/* Everything a rename needs to know about its two names. */
struct nl_rename {
	struct nl_node *sparent, *dparent;
	const char *sname, *dname;
	struct nl_node *src, *dst;	/* dst NULL when the name is free */
	struct stat sst, dst_st;
	bool dst_exists, src_lower, dst_lower;
	char spath[NL_PATH_BUF], dpath[NL_PATH_BUF];
	unsigned int flags;
};

static struct nl_node *rename_node(struct nl_mount *m, struct nl_node *parent,
				   const char *name, struct stat *st)
{
	struct nl_node *n;
	int layer, lowest;

	if (nl_resolve(m, parent, name, 0, &layer, &lowest, st))
		return NULL;
	n = nl_node_get(m, parent, name);
	if (n) {
		n->layer = layer;
		n->lowest = lowest;
		n->type = st->st_mode & S_IFMT;
	}
	return n;
}

static int rename_check(struct nl_mount *m, struct nl_rename *rn)
{
	if (!rn->dst_exists)
		return rn->flags & RENAME_EXCHANGE ? -ENOENT : 0;
	if (rn->flags & RENAME_NOREPLACE)
		return -EEXIST;
	if (rn->flags & RENAME_EXCHANGE)
		return 0;
	if (S_ISDIR(rn->sst.st_mode) && !S_ISDIR(rn->dst_st.st_mode))
		return -ENOTDIR;
	if (!S_ISDIR(rn->sst.st_mode) && S_ISDIR(rn->dst_st.st_mode))
		return -EISDIR;
	if (S_ISDIR(rn->dst_st.st_mode)) {
		int r = nl_dir_is_empty(m, rn->dst);

		if (r <= 0)
			return r < 0 ? r : -ENOTEMPTY;
	}
	return 0;
}

/* Both sides entirely in the upper layer; a directory with lower content
 * is copied up whole, so that it can move without redirect markers. */
static int rename_copy_up(struct nl_mount *m, struct nl_rename *rn)
{
	int r;

	r = S_ISDIR(rn->sst.st_mode) ? nl_copy_up_tree(m, rn->src) :
				       nl_copy_up(m, rn->src);
	if (!r && (rn->flags & RENAME_EXCHANGE))
		r = S_ISDIR(rn->dst_st.st_mode) ? nl_copy_up_tree(m, rn->dst) :
						  nl_copy_up(m, rn->dst);
	if (!r)
		r = nl_copy_up(m, rn->dparent);
	if (!r)
		r = nl_node_path(m, rn->src, rn->spath, sizeof(rn->spath));
	if (!r)
		r = nl_child_path(m, rn->dparent, rn->dname, rn->dpath,
				  sizeof(rn->dpath));
	return r;
}

/* Make room at the destination in the upper layer: whiteouts and the
 * markers of an empty directory go away. */
static int rename_clear_dst(struct nl_mount *m, struct nl_rename *rn)
{
	struct stat st;

	if (rn->flags & RENAME_EXCHANGE)
		return 0;
	if (fstatat(m->upper->fd, rn->dpath, &st, AT_SYMLINK_NOFOLLOW))
		return 0;
	if (S_ISDIR(st.st_mode))
		return nl_clear_upper_dir(m, rn->dpath);
	if (nl_is_whiteout(&st) && S_ISDIR(rn->sst.st_mode) &&
	    unlinkat(m->upper->fd, rn->dpath, 0))
		return -errno;
	return 0;
}

static int rename_finish(struct nl_mount *m, struct nl_rename *rn)
{
	int r = 0;

	if (!(rn->flags & RENAME_EXCHANGE) && rn->src_lower)
		r = nl_whiteout_at(m, rn->spath);
	/* A moved directory is complete in the upper layer: whatever lower
	 * layers hold at its new name must not show through. */
	if (!r && S_ISDIR(rn->sst.st_mode) && rn->dst_lower)
		r = nl_set_opaque(m, rn->dpath);
	if (!r && (rn->flags & RENAME_EXCHANGE) &&
	    S_ISDIR(rn->dst_st.st_mode) && rn->src_lower)
		r = nl_set_opaque(m, rn->spath);
	return r;
}

static void rename_nodes(struct nl_mount *m, struct nl_rename *rn)
{
	if (rn->dst) {
		if (rn->flags & RENAME_EXCHANGE) {
			nl_node_detach(m, rn->dst);
		} else {
			if (!S_ISDIR(rn->dst_st.st_mode))
				forget_link(m, 0, rn->dpath);
			nl_node_detach(m, rn->dst);
		}
	}
	nl_node_move(m, rn->src, rn->dparent, rn->dname);
	rn->src->layer = 0;
	if (S_ISDIR(rn->sst.st_mode))
		rn->src->lowest = 0;
	if (rn->dst && (rn->flags & RENAME_EXCHANGE)) {
		nl_node_move(m, rn->dst, rn->sparent, rn->sname);
		rn->dst->layer = 0;
		if (S_ISDIR(rn->dst_st.st_mode))
			rn->dst->lowest = 0;
	}
}

static int do_rename(struct nl_mount *m, struct nl_rename *rn)
{
	int r;

	if (!m->upper)
		return -EROFS;
	if (rn->flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	if (strlen(rn->dname) > NAME_MAX)
		return -ENAMETOOLONG;
	rn->src = rename_node(m, rn->sparent, rn->sname, &rn->sst);
	if (!rn->src)
		return -ENOENT;
	rn->dst = rename_node(m, rn->dparent, rn->dname, &rn->dst_st);
	rn->dst_exists = rn->dst != NULL;
	if (rn->dst == rn->src)
		return 0;
	r = rename_check(m, rn);
	if (r)
		return r;
	rn->src_lower = nl_lower_has(m, rn->sparent, rn->sname);
	rn->dst_lower = nl_lower_has(m, rn->dparent, rn->dname);
	r = rename_copy_up(m, rn);
	if (!r)
		r = rename_clear_dst(m, rn);
	if (r)
		return r;
	if (renameat2(m->upper->fd, rn->spath, m->upper->fd, rn->dpath,
		      rn->flags & RENAME_EXCHANGE))
		return -errno;
	rename_nodes(m, rn);
	return rename_finish(m, rn);
}

void nl_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		  fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct nl_mount *m = nl_mount_of(req);
	struct nl_rename rn = {
		.sparent = nl_node_of(m, parent), .sname = name,
		.dparent = nl_node_of(m, newparent), .dname = newname,
		.flags = flags,
	};
	int r = do_rename(m, &rn);

	if (rn.src)
		nl_node_forget(m, rn.src, 1);
	if (rn.dst)
		nl_node_forget(m, rn.dst, 1);
	fuse_reply_err(req, -r);
}
