// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * FUSE low-level operations of the checkpoint mount. Each request is
 * answered exactly once, at the end of its function. One mutex guards the
 * tree; write data goes to the tenant's stream outside it (see ckpt.h), as
 * the bulk of a checkpoint is a few large image files written by tenants
 * at the same time.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs/ckpt/ckpt.h"

#define CKPT_TIMEOUT 1.0

static void fill_stat(struct ckpt_node *n, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = n->ino;
	st->st_mode = n->mode;
	st->st_nlink = S_ISDIR(n->mode) ? 2 : 1;
	st->st_uid = n->uid;
	st->st_gid = n->gid;
	st->st_size = S_ISLNK(n->mode) && n->target ? (off_t)strlen(n->target) : (off_t)n->size;
	st->st_blksize = 65536;
	st->st_blocks = (st->st_size + 511) / 512;
	st->st_mtim = n->mtime;
	st->st_ctim = n->ctime;
	st->st_atim = n->mtime;
}

int ckpt_lock_get(struct ckpt_ctx *c, uint64_t ino, struct ckpt_node **np)
{
	pthread_mutex_lock(&c->lock);
	*np = ckpt_get(c, ino);
	return *np ? 0 : -ENOENT;
}

int ckpt_lock_child(struct ckpt_ctx *c, uint64_t parent, const char *name,
		    struct ckpt_node **np)
{
	pthread_mutex_lock(&c->lock);
	*np = ckpt_child(c, parent, name);
	return *np ? 0 : -ENOENT;
}

static void reply_entry(fuse_req_t req, struct ckpt_node *n)
{
	struct fuse_entry_param e = { 0 };

	e.ino = n->ino;
	e.generation = 1;
	e.attr_timeout = CKPT_TIMEOUT;
	e.entry_timeout = CKPT_TIMEOUT;
	fill_stat(n, &e.attr);
	fuse_reply_entry(req, &e);
}

static void ckpt_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct ckpt_ctx *c = ckpt_ctx_of(req);
	struct ckpt_node *n;
	int r;

	r = ckpt_lock_child(c, parent, name, &n);
	if (!r)
		reply_entry(req, n);
	pthread_mutex_unlock(&c->lock);
	if (r)
		fuse_reply_err(req, -r);
}

static void ckpt_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ckpt_ctx *c = ckpt_ctx_of(req);
	struct ckpt_node *n;
	struct stat st;
	int r;

	(void)fi;
	r = ckpt_lock_get(c, ino, &n);
	if (!r)
		fill_stat(n, &st);
	pthread_mutex_unlock(&c->lock);
	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, CKPT_TIMEOUT);
}

static void set_times(struct ckpt_node *n, struct stat *attr, int to_set)
{
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		clock_gettime(CLOCK_REALTIME, &n->mtime);
	else if (to_set & FUSE_SET_ATTR_MTIME)
		n->mtime = attr->st_mtim;
	clock_gettime(CLOCK_REALTIME, &n->ctime);
}

static int truncate_node(struct ckpt_ctx *c, struct ckpt_node *n, off_t size)
{
	int r;

	if (!S_ISREG(n->mode))
		return S_ISDIR(n->mode) ? -EISDIR : -EINVAL;
	if ((uint64_t)size < n->size) {
		r = ckpt_punch(c, n, size, 0);
		if (r)
			return r;
	}
	n->size = size;
	ckpt_touch(n);
	return 0;
}

static void ckpt_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
			 struct fuse_file_info *fi)
{
	struct ckpt_ctx *c = ckpt_ctx_of(req);
	struct ckpt_node *n;
	struct stat st;
	int r;

	(void)fi;
	r = ckpt_lock_get(c, ino, &n);
	if (r)
		goto out;
	if (to_set & FUSE_SET_ATTR_SIZE) {
		r = truncate_node(c, n, attr->st_size);
		if (r)
			goto out;
	}
	if (to_set & FUSE_SET_ATTR_MODE)
		n->mode = (n->mode & S_IFMT) | (attr->st_mode & 07777);
	if (to_set & FUSE_SET_ATTR_UID)
		n->uid = attr->st_uid;
	if (to_set & FUSE_SET_ATTR_GID)
		n->gid = attr->st_gid;
	set_times(n, attr, to_set);
	/* a new server must find the change: committed before the reply */
	r = ckpt_commit(c);
	fill_stat(n, &st);
out:
	pthread_mutex_unlock(&c->lock);
	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, CKPT_TIMEOUT);
}

static void ckpt_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct ckpt_ctx *c = ckpt_ctx_of(req);
	struct ckpt_node *n;
	char *t = NULL;
	int r;

	r = ckpt_lock_get(c, ino, &n);
	if (!r && !S_ISLNK(n->mode))
		r = -EINVAL;
	if (!r && !(t = strdup(n->target ? n->target : "")))
		r = -ENOMEM;
	pthread_mutex_unlock(&c->lock);
	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_readlink(req, t);
	free(t);
}

/* A new node under @parent, owned by the caller. Top-level entries are
 * tenants and must be directories. */
static int make_node(fuse_req_t req, struct ckpt_ctx *c, fuse_ino_t parent, const char *name,
		     uint32_t mode, struct ckpt_node **np)
{
	const struct fuse_ctx *fc = fuse_req_ctx(req);
	struct ckpt_node *p = ckpt_get(c, parent);
	int r;

	if (!p || (!p->parent && p->ino != 1))
		return -ENOENT;
	if (!S_ISDIR(p->mode))
		return -ENOTDIR;
	if (parent == 1 && !S_ISDIR(mode))
		return -EPERM;
	if (ckpt_child(c, parent, name))
		return -EEXIST;
	if (strlen(name) > NAME_MAX)
		return -ENAMETOOLONG;
	r = ckpt_new_node(c, parent, name, mode, np);
	if (r)
		return r;
	(*np)->uid = fc->uid;
	(*np)->gid = fc->gid;
	ckpt_touch(p);
	c->dirty = true;
	return 0;
}

/* A tenant's groups are reserved when its directory is made. */
static int make_tenant(struct ckpt_ctx *c, struct ckpt_node *n)
{
	int r;

	n->tenant = c->next_tenant++;
	n->bandwidth = c->def_bw;
	r = zns_stream_create(c->store, n->tenant, n->bandwidth, &n->st);
	if (r)
		nl_log(CKPT_LOG, "mkdir '%s': no zone groups for a new tenant (%s, admission %s)", n->name,
		       strerror(-r), c->sopts.admission == ZNS_ADMIT_STRICT ? "strict" : "fair");
	return r;
}

/* What only its kind gives a new node: a tenant its groups, a link its
 * target. */
static int fill_node(struct ckpt_ctx *c, struct ckpt_node *n, fuse_ino_t parent,
		     const char *link)
{
	if (link) {
		n->target = strdup(link);
		return n->target ? 0 : -ENOMEM;
	}
	return parent == 1 ? make_tenant(c, n) : 0;
}

/* A request a dead server had carried out, sent again by the kernel:
 * the intent it left says so (c->lock held). */
static bool replayed(struct ckpt_ctx *c, int op, fuse_ino_t parent, const char *name)
{
	return nl_tab_replay_match(&c->replay, op, parent, name);
}

/* mkdir and symlink: the new entry is committed before the reply, which
 * hands its node id to the kernel. */
static void make_entry(fuse_req_t req, fuse_ino_t parent, const char *name, uint32_t mode,
		       const char *link)
{
	struct ckpt_ctx *c = ckpt_ctx_of(req);
	int intent = nl_tab_intent_begin(c->tab, NL_INTENT_NEW, parent, name, 0, NULL);
	struct ckpt_node *n = NULL;
	int r;

	pthread_mutex_lock(&c->lock);
	r = make_node(req, c, parent, name, mode, &n);
	if (r == -EEXIST && replayed(c, NL_INTENT_NEW, parent, name)) {
		reply_entry(req, ckpt_child(c, parent, name));
		r = 0;
		goto out;
	}
	if (r)
		goto out;
	r = fill_node(c, n, parent, link);
	if (r) {
		ckpt_free_node(c, n);
		goto out;
	}
	ckpt_commit(c);
	reply_entry(req, n);
out:
	pthread_mutex_unlock(&c->lock);
	if (r)
		fuse_reply_err(req, -r);
	nl_tab_intent_end(c->tab, intent);
}

static void ckpt_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	make_entry(req, parent, name, S_IFDIR | (mode & 07777), NULL);
}

static void ckpt_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	make_entry(req, parent, name, S_IFLNK | 0777, link);
}

/* Drop a name; an open file lives on, unnamed, until its last release. */
static void drop_node(struct ckpt_ctx *c, struct ckpt_node *n)
{
	if (n->nopen) {
		n->parent = 0;
		return;
	}
	ckpt_free_node(c, n);
}

static void ckpt_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct ckpt_ctx *c = ckpt_ctx_of(req);
	int intent = nl_tab_intent_begin(c->tab, NL_INTENT_REMOVE, parent, name, 0, NULL);
	struct ckpt_node *n;
	int r;

	r = ckpt_lock_child(c, parent, name, &n);
	if (!r && S_ISDIR(n->mode))
		r = -EISDIR;
	if (!r) {
		drop_node(c, n);
		ckpt_touch(ckpt_get(c, parent));
		ckpt_commit(c);
	} else if (r == -ENOENT && replayed(c, NL_INTENT_REMOVE, parent, name)) {
		r = 0;
	}
	pthread_mutex_unlock(&c->lock);
	fuse_reply_err(req, -r);
	nl_tab_intent_end(c->tab, intent);
}

static void ckpt_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct ckpt_ctx *c = ckpt_ctx_of(req);
	int intent = nl_tab_intent_begin(c->tab, NL_INTENT_REMOVE, parent, name, 0, NULL);
	struct ckpt_node *n;
	int r;

	r = ckpt_lock_child(c, parent, name, &n);
	if (r == -ENOENT && replayed(c, NL_INTENT_REMOVE, parent, name)) {
		r = 0;
		goto out;
	}
	if (r)
		goto out;
	if (!S_ISDIR(n->mode)) {
		r = -ENOTDIR;
		goto out;
	}
	if (ckpt_has_children(c, n->ino)) {
		r = -ENOTEMPTY;
		goto out;
	}
	if (n->appending) {
		/* an unlinked file of the tenant is being written: let it finish */
		ckpt_wait_appends(c, n);
		if (n != ckpt_child(c, parent, name) || ckpt_has_children(c, n->ino)) {
			r = n == ckpt_child(c, parent, name) ? -ENOTEMPTY : -ENOENT;
			goto out;
		}
	}
	if (n->st) {
		/* the tenant goes: its zones are reset, its groups released */
		ckpt_drop_pending(c, n->st);
		zns_stream_destroy(n->st);
		n->st = NULL;
	}
	ckpt_free_node(c, n);
	ckpt_touch(ckpt_get(c, parent));
	ckpt_commit(c);
out:
	pthread_mutex_unlock(&c->lock);
	fuse_reply_err(req, -r);
	nl_tab_intent_end(c->tab, intent);
}

static bool is_ancestor(struct ckpt_ctx *c, uint64_t a, uint64_t ino)
{
	while (ino > 1) {
		struct ckpt_node *n = ckpt_get(c, ino);

		if (ino == a)
			return true;
		ino = n ? n->parent : 0;
	}
	return false;
}

static int rename_check(struct ckpt_ctx *c, struct ckpt_node *n, struct ckpt_node *np,
			struct ckpt_node *old, unsigned int flags)
{
	if (flags & ~RENAME_NOREPLACE)
		return -EINVAL;
	if (!np || !S_ISDIR(np->mode))
		return -ENOTDIR;
	/* data lives in the tenant's stream: it cannot change tenants */
	if ((np->ino == 1) != (n->parent == 1) || (np->ino != 1 && np->tino != n->tino))
		return -EXDEV;
	if (S_ISDIR(n->mode) && is_ancestor(c, n->ino, np->ino))
		return -EINVAL;
	if (!old)
		return 0;
	if (flags & RENAME_NOREPLACE)
		return -EEXIST;
	if (S_ISDIR(old->mode) != S_ISDIR(n->mode))
		return S_ISDIR(old->mode) ? -EISDIR : -ENOTDIR;
	if (S_ISDIR(old->mode) && (ckpt_has_children(c, old->ino) || old->st))
		return -ENOTEMPTY;
	return 0;
}

static void ckpt_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
			fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct ckpt_ctx *c = ckpt_ctx_of(req);
	int intent = nl_tab_intent_begin(c->tab, NL_INTENT_RENAME, parent, name, newparent,
					 newname);
	struct ckpt_node *n, *old, *np;
	char *nn;
	int r;

	r = ckpt_lock_child(c, parent, name, &n);
	if (r == -ENOENT && replayed(c, NL_INTENT_RENAME, parent, name)) {
		r = 0;
		goto out;
	}
	if (r)
		goto out;
	old = ckpt_child(c, newparent, newname);
	np = ckpt_get(c, newparent);
	if (n == old)
		goto out;
	r = rename_check(c, n, np, old, flags);
	if (r)
		goto out;
	nn = strdup(newname);
	if (!nn) {
		r = -ENOMEM;
		goto out;
	}
	if (old)
		drop_node(c, old);
	free(n->name);
	n->name = nn;
	n->parent = newparent;
	clock_gettime(CLOCK_REALTIME, &n->ctime);
	ckpt_commit(c);
out:
	pthread_mutex_unlock(&c->lock);
	fuse_reply_err(req, -r);
	nl_tab_intent_end(c->tab, intent);
}

/* The handle is in the keeper's table: a new server counts it again. A
 * truncation is committed before the reply. *@intent, ended after the
 * reply, lets a new server know whether the kernel got the handle. */
static int open_node(struct ckpt_ctx *c, struct ckpt_node *n, struct fuse_file_info *fi,
		     int *intent)
{
	uint64_t fh;
	int r;

	if (S_ISDIR(n->mode))
		return -EISDIR;
	if (!S_ISREG(n->mode))
		return -EINVAL;
	if ((fi->flags & O_TRUNC) && (fi->flags & O_ACCMODE) != O_RDONLY && n->size) {
		r = ckpt_punch(c, n, 0, 0);
		if (r)
			return r;
		n->size = 0;
		ckpt_touch(n);
		r = ckpt_commit(c);
		if (r)
			return r;
	}
	/* an open sent again gets the handle the dead server made for it (and
	 * counted at the takeover) */
	fh = nl_tab_replay_open(&c->replay, n->ino);
	if (!fh || !ckpt_fh_live(c, fh, n->ino)) {
		fh = nl_tab_handle_alloc(c->tab, NL_TAB_FILE, n->ino, fi->flags);
		if (!fh)
			return -ENFILE;
		n->nopen++;
		if ((fi->flags & O_ACCMODE) != O_RDONLY)
			n->nwrite++;
	}
	*intent = nl_tab_intent_begin(c->tab, NL_INTENT_OPEN, n->ino, "", fh, NULL);
	/* out-of-place rewrites change what a page holds: no stale cache */
	fi->keep_cache = 0;
	/*
	 * criu writes its images write-only and never maps them: such opens
	 * bypass the page cache, so a write() is handed over straight from
	 * the writer's pages instead of being copied into the cache first.
	 */
	fi->direct_io = (fi->flags & O_ACCMODE) == O_WRONLY;
	fi->fh = fh;
	return 0;
}

static void ckpt_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
			struct fuse_file_info *fi)
{
	struct ckpt_ctx *c = ckpt_ctx_of(req);
	int intent = nl_tab_intent_begin(c->tab, NL_INTENT_NEW, parent, name, 0, NULL);
	struct ckpt_node *n = NULL;
	struct fuse_entry_param e = { 0 };
	bool again = false;
	int r, opened = -1;

	pthread_mutex_lock(&c->lock);
	r = make_node(req, c, parent, name, S_IFREG | (mode & 07777), &n);
	if (r == -EEXIST && replayed(c, NL_INTENT_NEW, parent, name)) {
		n = ckpt_child(c, parent, name);
		again = true;
		r = 0;
	}
	if (r)
		goto out;
	/* the reply hands the node id out: a new server must know it. The
	 * handle comes last, just before the reply: one a server killed in
	 * between leaves would never be released. */
	if (!again)
		ckpt_commit(c);
	r = open_node(c, n, fi, &opened);
	if (r) {
		if (!again)
			ckpt_free_node(c, n);
		goto out;
	}
	e.ino = n->ino;
	e.generation = 1;
	e.attr_timeout = e.entry_timeout = CKPT_TIMEOUT;
	fill_stat(n, &e.attr);
out:
	pthread_mutex_unlock(&c->lock);
	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_create(req, &e, fi);
	nl_tab_intent_end(c->tab, opened);
	nl_tab_intent_end(c->tab, intent);
}

static void ckpt_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ckpt_ctx *c = ckpt_ctx_of(req);
	struct ckpt_node *n;
	int r, opened = -1;

	r = ckpt_lock_get(c, ino, &n);
	if (!r)
		r = open_node(c, n, fi, &opened);
	pthread_mutex_unlock(&c->lock);
	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_open(req, fi);
	nl_tab_intent_end(c->tab, opened);
}

/* Copy [off, off + len) of the file into @buf; holes read as zeros. */
static int read_range(struct ckpt_ctx *c, struct ckpt_node *n, char *buf, uint64_t off,
		      uint64_t len)
{
	struct zns_stream *st = ckpt_stream_of(c, n);

	memset(buf, 0, len);
	for (size_t i = 0; i < n->n_ext; i++) {
		struct ckpt_ext *e = &n->ext[i];
		uint64_t a = e->off > off ? e->off : off;
		uint64_t b = e->off + e->len < off + len ? e->off + e->len : off + len;
		ssize_t r;

		if (a >= b)
			continue;
		if (!st)
			return -EIO;
		r = zns_stream_read(st, e->soff + (a - e->off), buf + (a - off), b - a);
		if (r < 0)
			return (int)r;
	}
	return 0;
}

static void ckpt_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	struct ckpt_ctx *c = ckpt_ctx_of(req);
	struct ckpt_node *n;
	char *buf = NULL;
	size_t len = 0;
	int r;

	(void)fi;
	r = ckpt_lock_get(c, ino, &n);
	if (r)
		goto out;
	if ((uint64_t)off < n->size)
		len = n->size - off < size ? n->size - off : size;
	buf = malloc(len ? len : 1);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	r = read_range(c, n, buf, off, len);
out:
	pthread_mutex_unlock(&c->lock);
	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_buf(req, buf, len);
	free(buf);
}

/*
 * Append to the tenant's stream, without c->lock (held on entry and on
 * return): other tenants go on meanwhile. The tenant cannot go away while
 * its appending count is up, and the file cannot either: it is open.
 * Returns the stream offset of the data in *@soffp. A failed append may
 * have left part of the data in the stream: that part is made dead, as
 * nothing refers to it.
 */
static int append_data(struct ckpt_ctx *c, struct ckpt_node *t, struct ckpt_node *n,
		       const char *buf, size_t size, uint64_t *soffp)
{
	struct zns_stream *st = t->st;
	uint64_t end0, end1;
	int r;

	t->appending++;
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_lock(&t->append_lock);
	end0 = zns_stream_end(st);
	r = zns_stream_append(st, buf, size, soffp);
	end1 = zns_stream_end(st);
	pthread_mutex_unlock(&t->append_lock);
	pthread_mutex_lock(&c->lock);
	if (!--t->appending)
		pthread_cond_broadcast(&c->idle);
	if (r) {
		ckpt_queue_discard(c, st, end0, end1 - end0);
		nl_log(CKPT_LOG, "write to '%s': %s", n->name, strerror(-r));
	}
	return r;
}

/* Append and point the file's range at the new data (c->lock held). */
int ckpt_write_range(struct ckpt_ctx *c, fuse_ino_t ino, const char *buf, size_t size,
		     uint64_t off)
{
	struct ckpt_node *n = ckpt_get(c, ino), *t = n ? ckpt_get(c, n->tino) : NULL;
	uint64_t soff = 0;
	int r;

	if (!n)
		return -ENOENT;
	if (!t || !t->st)
		return -EIO;
	r = append_data(c, t, n, buf, size, &soff);
	if (r)
		return r;
	/* n is open (this write comes through it), so it is still there */
	r = ckpt_punch(c, n, off, size);
	if (!r)
		r = ckpt_add_ext(c, n, off, size, soff);
	if (r)
		return r;
	if (off + size > n->size)
		n->size = off + size;
	ckpt_touch(n);
	c->dirty = true;
	return 0;
}

/* Before the reply: a new server writes it again unless a commit has it. */
static int journal_write(struct ckpt_ctx *c, fuse_ino_t ino, const char *buf, size_t size,
			 uint64_t off)
{
	int r = nl_tab_journal_add(c->tab, ino, off, buf, size);

	/* a full journal is emptied by a commit, which holds this write too */
	return r == -ENOSPC ? ckpt_commit(c) : r;
}

static void ckpt_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
		       off_t off, struct fuse_file_info *fi)
{
	struct ckpt_ctx *c = ckpt_ctx_of(req);
	int r = 0;

	(void)fi;
	pthread_mutex_lock(&c->lock);
	if (size)
		r = ckpt_write_range(c, ino, buf, size, off);
	else if (!ckpt_get(c, ino))
		r = -ENOENT;
	if (!r && size)
		r = journal_write(c, ino, buf, size, off);
	pthread_mutex_unlock(&c->lock);
	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_write(req, size);
}

/* criu never calls fsync: closing a file makes it durable. */
static void ckpt_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ckpt_ctx *c = ckpt_ctx_of(req);
	int r = 0;

	(void)ino;
	pthread_mutex_lock(&c->lock);
	if (c->dirty || ckpt_fh_writes(c, fi->fh))
		r = ckpt_commit(c);
	pthread_mutex_unlock(&c->lock);
	fuse_reply_err(req, -r);
}

static void ckpt_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)datasync;
	ckpt_flush(req, ino, fi);
}

static void ckpt_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ckpt_ctx *c = ckpt_ctx_of(req);
	bool writes = ckpt_fh_writes(c, fi->fh);
	struct ckpt_node *n;

	pthread_mutex_lock(&c->lock);
	/* a release the dead server carried out, sent again: done already */
	if (!ckpt_fh_live(c, fi->fh, ino)) {
		pthread_mutex_unlock(&c->lock);
		fuse_reply_err(req, 0);
		return;
	}
	n = ckpt_get(c, ino);
	if (n) {
		n->nopen--;
		if (writes)
			n->nwrite--;
		if (!n->parent && !n->nopen)
			ckpt_free_node(c, n);
		if (c->dirty || writes)
			ckpt_commit(c);
	}
	nl_tab_handle_free(c->tab, fi->fh);
	pthread_mutex_unlock(&c->lock);
	fuse_reply_err(req, 0);
}

static void ckpt_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			   struct fuse_file_info *fi)
{
	struct ckpt_ctx *c = ckpt_ctx_of(req);
	struct ckpt_node *n;
	int r;

	(void)fi;
	r = ckpt_lock_get(c, ino, &n);
	if (r)
		goto out;
	if (mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) {
		r = ckpt_punch(c, n, off, len);
	} else if (mode == 0 || mode == FALLOC_FL_KEEP_SIZE) {
		/* zones are written only at the pointer: nothing to reserve */
		if (!mode && (uint64_t)(off + len) > n->size)
			n->size = off + len;
	} else {
		r = -EOPNOTSUPP;
	}
	if (!r) {
		ckpt_touch(n);
		r = ckpt_commit(c);
	}
out:
	pthread_mutex_unlock(&c->lock);
	fuse_reply_err(req, -r);
}

static void ckpt_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct ckpt_ctx *c = ckpt_ctx_of(req);
	const struct zns_geometry *g = zns_dev_geometry(c->dev);
	struct statvfs sv = { 0 };
	uint64_t used = 0;

	(void)ino;
	pthread_mutex_lock(&c->lock);
	for (uint32_t z = 0; z < g->nr_zones; z++) {
		struct zns_zone_use u = { 0, 0 };

		if (!zns_store_zone_use(c->store, z, &u) && u.owner)
			used += g->zone_cap;
	}
	pthread_mutex_unlock(&c->lock);
	sv.f_bsize = sv.f_frsize = 4096;
	sv.f_blocks = (uint64_t)g->nr_zones * g->zone_cap / 4096;
	sv.f_bfree = sv.f_bavail = sv.f_blocks - used / 4096;
	sv.f_files = sv.f_ffree = sv.f_favail = 1 << 20;
	sv.f_namemax = NAME_MAX;
	fuse_reply_statfs(req, &sv);
}

static void ckpt_init(void *userdata, struct fuse_conn_info *conn)
{
	struct ckpt_ctx *c = userdata;

	(void)conn;
	c->initialized = true;
}

const struct fuse_lowlevel_ops ckpt_ops = {
	.init = ckpt_init,
	.lookup = ckpt_lookup,
	.getattr = ckpt_getattr,
	.setattr = ckpt_setattr,
	.readlink = ckpt_readlink,
	.mkdir = ckpt_mkdir,
	.symlink = ckpt_symlink,
	.unlink = ckpt_unlink,
	.rmdir = ckpt_rmdir,
	.rename = ckpt_rename,
	.create = ckpt_create,
	.open = ckpt_open,
	.read = ckpt_read,
	.write = ckpt_write,
	.flush = ckpt_flush,
	.fsync = ckpt_fsync,
	.release = ckpt_release,
	.fallocate = ckpt_fallocate,
	.opendir = ckpt_opendir,
	.readdir = ckpt_readdir,
	.releasedir = ckpt_releasedir,
	.statfs = ckpt_statfs,
	.setxattr = ckpt_setxattr,
	.getxattr = ckpt_getxattr,
	.listxattr = ckpt_listxattr,
};
