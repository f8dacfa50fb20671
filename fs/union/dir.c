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

#include "fs/union/union.h"

/* What a new entry needs to know before it is made. */
struct nl_create {
	struct nl_node *parent;
	const char *name;
	struct nl_at dir;	/* the parent's upper directory, and name */
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

	c->dir.dfd = -1;
	c->dir.own = false;
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
		r = nl_make_temp_name(m, c->tmp, sizeof(c->tmp));
	if (r)
		return r;
	/* The entry goes into the directory the parent node names now,
	 * wherever a rename moves it meanwhile. */
	pthread_rwlock_rdlock(&m->names);
	r = nl_upper_dir(m, c->parent, c->name, &c->dir);
	pthread_rwlock_unlock(&m->names);
	if (r)
		return r;
	c->over_whiteout = fstatat(c->dir.dfd, c->name, &st, AT_SYMLINK_NOFOLLOW) == 0;
	c->uid = nl_uid_to_outer(m, ctx->uid);
	c->gid = nl_gid_to_outer(m, ctx->gid);
	if (nl_node_stat(m, c->parent, -1, &st) == 0 && (st.st_mode & S_ISGID) &&
	    fstatat(c->dir.dfd, "", &st, AT_EMPTY_PATH) == 0) {
		c->gid = st.st_gid;
		c->inherit_sgid = true;
	}
	return 0;
}

static void create_done(struct nl_create *c)
{
	nl_at_done(&c->dir);
}

/* Move the finished temporary into place, over a whiteout if there is one. */
static int create_commit(struct nl_mount *m, struct nl_create *c, bool is_dir)
{
	char wh[NAME_MAX + 1];

	if (is_dir && c->over_whiteout) {
		/* A directory cannot be renamed over a device node:
		 * swap them, then drop the whiteout. */
		if (renameat2(m->workfd, c->tmp, c->dir.dfd, c->name, RENAME_EXCHANGE))
			return -errno;
		unlinkat(m->workfd, c->tmp, 0);
		return nl_set_opaque(c->dir.dfd, c->name);
	}
	if (renameat(m->workfd, c->tmp, c->dir.dfd, c->name))
		return -errno;
	/* The old-style marker of an unprivileged mount, if any. */
	if (snprintf(wh, sizeof(wh), ".wh.%s", c->name) < (int)sizeof(wh) &&
	    unlinkat(c->dir.dfd, wh, 0) == 0 && is_dir)
		return nl_set_opaque(c->dir.dfd, c->name);
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
	e->ino = n->id;
	e->generation = m->tab.nodes[n->id].gen;
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
	int intent = nl_intent_begin(m, NL_INTENT_NEW, c.parent, name, NULL, NULL), r;

	r = create_prepare(req, m, &c);
	if (!r)
		r = make_node(m, &c, mode, rdev, link);
	if (!r)
		r = new_entry(m, &c, -1, &e);
	create_done(&c);
	/* made by the server before, which died before it answered */
	if (r == -EEXIST && nl_intent_replayed(m, NL_INTENT_NEW, c.parent, name))
		r = nl_lookup_child(m, c.parent, name, &e);
	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_entry(req, &e);
	nl_intent_end(m, intent);
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

/*
 * A create that finds its name taken opens what is there, as open(2)
 * without O_EXCL does: the name came after the kernel last looked, or the
 * server before this one made the file and died before it answered (then
 * even with O_EXCL, since the kernel sends the same request again).
 */
static void create_existing(fuse_req_t req, struct nl_mount *m, struct nl_node *parent,
			    const char *name, struct fuse_file_info *fi)
{
	struct fuse_entry_param e;
	struct nl_node *n;
	int r = nl_lookup_child(m, parent, name, &e);

	if (r) {
		fuse_reply_err(req, -r);
		return;
	}
	n = nl_node_of(m, e.ino);
	r = S_ISDIR(e.attr.st_mode) ? -EISDIR : nl_file_open(m, n, fi);
	if (r) {
		nl_node_forget(m, n, 1);
		fuse_reply_err(req, -r);
	} else if (fuse_reply_create(req, &e, fi)) {
		nl_node_closed(n);
		nl_file_free(m, fi);
	}
}

static void create_new(fuse_req_t req, fuse_ino_t parent, const char *name,
		       mode_t mode, struct fuse_file_info *fi)
{
	struct nl_mount *m = nl_mount_of(req);
	struct nl_create c = { .parent = nl_node_of(m, parent), .name = name };
	struct fuse_entry_param e;
	int fd = -1, r, flags;

	r = create_prepare(req, m, &c);
	if (r == -EEXIST && (!(fi->flags & O_EXCL) ||
			     nl_intent_replayed(m, NL_INTENT_NEW, c.parent, name))) {
		create_done(&c);
		create_existing(req, m, c.parent, name, fi);
		return;
	}
	if (r)
		goto out;
	/* appends are placed by the kernel (see nl_op_open) */
	flags = (fi->flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOFOLLOW | O_APPEND)) | O_CLOEXEC;
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
	create_done(&c);
	if (r) {
		if (fd >= 0)
			close(fd);
		fuse_reply_err(req, -r);
		return;
	}
	r = nl_file_new(m, nl_node_of(m, e.ino), fi, fd, false);
	if (r) {
		nl_node_forget(m, nl_node_of(m, e.ino), 1);
		close(fd);
		fuse_reply_err(req, -r);
		return;
	}
	nl_node_opened(nl_node_of(m, e.ino));
	if (fuse_reply_create(req, &e, fi)) {
		nl_node_closed(nl_node_of(m, e.ino));
		nl_file_free(m, fi);
	}
}

void nl_op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		  mode_t mode, struct fuse_file_info *fi)
{
	struct nl_mount *m = nl_mount_of(req);
	int intent = nl_intent_begin(m, NL_INTENT_NEW, nl_node_of(m, parent), name, NULL, NULL);

	create_new(req, parent, name, mode, fi);
	nl_intent_end(m, intent);
}

/* A new name for @src's upper file, made as @tmp in the work directory. */
static int link_upper(struct nl_mount *m, struct nl_node *src, const char *tmp)
{
	char path[NL_PATH_BUF];
	struct nl_at at;
	int r;

	pthread_rwlock_rdlock(&m->names);
	r = nl_node_path(m, src, path, sizeof(path));
	if (!r)
		r = nl_at_parent(m->upper->fd, path, &at);
	if (!r) {
		r = linkat(at.dfd, at.name, m->workfd, tmp, 0) ? -errno : 0;
		nl_at_done(&at);
	}
	pthread_rwlock_unlock(&m->names);
	return r;
}

void nl_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		const char *newname)
{
	struct nl_mount *m = nl_mount_of(req);
	struct nl_node *src = nl_node_of(m, ino);
	struct nl_create c = { .parent = nl_node_of(m, newparent), .name = newname,
				.dir = { .dfd = -1 } };
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
		r = link_upper(m, src, c.tmp);
	if (r)
		goto out;
	r = create_commit(m, &c, false);
	if (r) {
		remove_tmp(m, c.tmp);
		goto out;
	}
	if (fstatat(c.dir.dfd, c.name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		nl_origin_of(m, &st, &odev, &oino);
		nl_linkcount_adjust(m, odev, oino, +1);
	}
	r = new_entry(m, &c, -1, &e);
out:
	create_done(&c);
	if (r) {
		fuse_reply_err(req, -r);
		return;
	}
	fuse_reply_entry(req, &e);
	/* The kernel cached the old name's link count as a separate inode. */
	fuse_lowlevel_notify_inval_inode(m->se, ino, -1, 0);
}

/* One link fewer for a file whose names are spread over layers. */
static void forget_link(struct nl_mount *m, const struct stat *st)
{
	dev_t odev;
	ino_t oino;

	if (S_ISDIR(st->st_mode))
		return;
	nl_origin_of(m, st, &odev, &oino);
	nl_linkcount_adjust(m, odev, oino, -1);
}

/* Take @name out of the upper directory @dfd: a whiteout where lower
 * layers still have it, else a plain removal. */
static int remove_upper(struct nl_mount *m, int dfd, const char *name, bool is_dir,
			bool lower)
{
	int r;

	if (lower)
		return nl_whiteout_at(m, dfd, name);
	if (!is_dir)
		return unlinkat(dfd, name, 0) ? -errno : 0;
	r = nl_clear_upper_dir(dfd, name);
	if (!r && unlinkat(dfd, name, AT_REMOVEDIR))
		r = -errno;
	return r;
}

/* Remove @name from the merged tree. The disk and the node tree change
 * together under m->names; a node the kernel still holds keeps a handle
 * of the file it named, and an open upper file a name in the work
 * directory for the server after this one (orphan.c). */
static int remove_name(struct nl_mount *m, struct nl_node *parent,
		       const char *name, const struct stat *st, bool is_dir)
{
	struct nl_node *n;
	struct nl_at at;
	bool lower, orphan = false;
	int r;

	r = nl_copy_up(m, parent);
	if (r)
		return r;
	lower = nl_lower_has(m, parent, name);
	n = nl_node_find(m, parent, name);
	if (n)
		nl_node_keep_lower_attrs(m, n);
	pthread_rwlock_wrlock(&m->names);
	r = nl_upper_dir(m, parent, name, &at);
	n = r ? NULL : nl_node_find(m, parent, name);
	if (n) {
		nl_node_keep_gone(n, at.dfd, name);
		orphan = !is_dir && nl_orphan_keep(m, n, at.dfd, name);
	}
	if (!r)
		r = remove_upper(m, at.dfd, name, is_dir, lower);
	if (r && orphan)
		nl_orphan_drop(m, n);
	if (!r && !is_dir)
		forget_link(m, st);
	if (!r && n)
		nl_node_detach(m, n);
	pthread_rwlock_unlock(&m->names);
	nl_at_done(&at);
	return r;
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

/* unlink and rmdir: the name must be of the kind asked for, a directory
 * empty, before it goes. */
static void remove_op(fuse_req_t req, fuse_ino_t parent, const char *name, bool dir)
{
	struct nl_mount *m = nl_mount_of(req);
	struct nl_node *p = nl_node_of(m, parent);
	struct stat st;
	int layer, lowest, r;

	int intent = nl_intent_begin(m, NL_INTENT_REMOVE, p, name, NULL, NULL);

	r = m->upper ? nl_resolve(m, p, name, 0, &layer, &lowest, &st) : -EROFS;
	if (!r && S_ISDIR(st.st_mode) != dir)
		r = dir ? -ENOTDIR : -EISDIR;
	if (!r && dir)
		r = dir_check_empty(m, p, name, layer, lowest);
	if (!r)
		r = remove_name(m, p, name, &st, dir);
	/* removed by the server before, which died before it answered */
	if (r == -ENOENT && nl_intent_replayed(m, NL_INTENT_REMOVE, p, name))
		r = 0;
	fuse_reply_err(req, -r);
	nl_intent_end(m, intent);
}

void nl_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_op(req, parent, name, false);
}

void nl_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_op(req, parent, name, true);
}

/* Everything a rename needs to know about its two names. */
struct nl_rename {
	struct nl_node *sparent, *dparent;
	const char *sname, *dname;
	struct nl_node *src, *dst;	/* dst NULL when the name is free */
	struct stat sst, dst_st;
	bool dst_exists, src_lower, dst_lower;
	struct nl_at src_at, dst_at;	/* the upper directories and names */
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
	return r;
}

/* Make room at the destination in the upper layer: whiteouts and the
 * markers of an empty directory go away. */
static int rename_clear_dst(struct nl_rename *rn)
{
	struct stat st;

	if (rn->flags & RENAME_EXCHANGE)
		return 0;
	if (fstatat(rn->dst_at.dfd, rn->dname, &st, AT_SYMLINK_NOFOLLOW))
		return 0;
	if (S_ISDIR(st.st_mode))
		return nl_clear_upper_dir(rn->dst_at.dfd, rn->dname);
	if (nl_is_whiteout(&st) && S_ISDIR(rn->sst.st_mode) &&
	    unlinkat(rn->dst_at.dfd, rn->dname, 0))
		return -errno;
	return 0;
}

static int rename_finish(struct nl_mount *m, struct nl_rename *rn)
{
	int r = 0;

	if (!(rn->flags & RENAME_EXCHANGE) && rn->src_lower)
		r = nl_whiteout_at(m, rn->src_at.dfd, rn->sname);
	/* A moved directory is complete in the upper layer: whatever lower
	 * layers hold at its new name must not show through. */
	if (!r && S_ISDIR(rn->sst.st_mode) && rn->dst_lower)
		r = nl_set_opaque(rn->dst_at.dfd, rn->dname);
	if (!r && (rn->flags & RENAME_EXCHANGE) &&
	    S_ISDIR(rn->dst_st.st_mode) && rn->src_lower)
		r = nl_set_opaque(rn->src_at.dfd, rn->sname);
	return r;
}

static void rename_nodes(struct nl_mount *m, struct nl_rename *rn)
{
	if (rn->dst) {
		if (!(rn->flags & RENAME_EXCHANGE))
			forget_link(m, &rn->dst_st);
		nl_node_detach(m, rn->dst);
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

/* The names change on disk and in the node tree under m->names held for
 * writing: no other thread resolves a path between the two. */
static int rename_locked(struct nl_mount *m, struct nl_rename *rn)
{
	bool orphan = false;
	int r;

	r = nl_upper_dir(m, rn->sparent, rn->sname, &rn->src_at);
	if (!r)
		r = nl_upper_dir(m, rn->dparent, rn->dname, &rn->dst_at);
	if (r)
		return r;
	r = rename_clear_dst(rn);
	if (r)
		return r;
	if (rn->dst && !(rn->flags & RENAME_EXCHANGE)) {
		nl_node_keep_gone(rn->dst, rn->dst_at.dfd, rn->dname);
		orphan = nl_orphan_keep(m, rn->dst, rn->dst_at.dfd, rn->dname);
	}
	if (renameat2(rn->src_at.dfd, rn->sname, rn->dst_at.dfd, rn->dname,
		      rn->flags & RENAME_EXCHANGE)) {
		r = -errno;
		if (orphan)
			nl_orphan_drop(m, rn->dst);
		return r;
	}
	rename_nodes(m, rn);
	return rename_finish(m, rn);
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
	if (r)
		return r;
	if (rn->dst && !(rn->flags & RENAME_EXCHANGE))
		nl_node_keep_lower_attrs(m, rn->dst);
	pthread_rwlock_wrlock(&m->names);
	r = rename_locked(m, rn);
	pthread_rwlock_unlock(&m->names);
	return r;
}

void nl_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		  fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct nl_mount *m = nl_mount_of(req);
	struct nl_rename rn = {
		.sparent = nl_node_of(m, parent), .sname = name,
		.dparent = nl_node_of(m, newparent), .dname = newname,
		.src_at = { .dfd = -1 }, .dst_at = { .dfd = -1 }, .flags = flags,
	};
	int intent = nl_intent_begin(m, NL_INTENT_RENAME, rn.sparent, name, rn.dparent,
				     newname);
	int r = do_rename(m, &rn);

	/* moved by the server before, which died before it answered */
	if (r == -ENOENT && nl_intent_replayed(m, NL_INTENT_RENAME, rn.sparent, name))
		r = 0;
	nl_at_done(&rn.src_at);
	nl_at_done(&rn.dst_at);
	if (rn.src)
		nl_node_forget(m, rn.src, 1);
	if (rn.dst)
		nl_node_forget(m, rn.dst, 1);
	fuse_reply_err(req, -r);
	nl_intent_end(m, intent);
}
