/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Nodes: the names the kernel holds, their paths, stats and handles
 * (inode numbers are ino.c's).
 *
 * A node is a name the kernel has looked up: (parent, name). Its FUSE node
 * id is its entry in the shared node table (nodetab.h), so that a server
 * that takes the mount over maps the ids the kernel holds to the same
 * files. The st_ino the kernel sees is derived from the lower inode an
 * entry came from, so it stays the same across copy-up and is the same for
 * every hard link of a lower file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/union/union.h"

struct nl_mount *nl_mount_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* The chunk of @v holding index @i, made on first use when @make. */
static void **chunk_of(_Atomic(void **) *v, uint64_t i, bool make)
{
	void **c = atomic_load_explicit(&v[i / NL_CHUNK], memory_order_acquire), **fresh;

	if (c || !make)
		return c;
	fresh = calloc(NL_CHUNK, sizeof(void *));
	if (!fresh)
		return NULL;
	if (atomic_compare_exchange_strong(&v[i / NL_CHUNK], &c, fresh))
		return fresh;
	free(fresh);
	return c;
}

static int slot_set(_Atomic(void **) *v, uint64_t i, void *p)
{
	void **c = chunk_of(v, i, true);

	if (!c)
		return -ENOMEM;
	__atomic_store_n(&c[i % NL_CHUNK], p, __ATOMIC_RELEASE);
	return 0;
}

static void *slot_get(_Atomic(void **) *v, uint64_t i)
{
	void **c = chunk_of(v, i, false);

	return c ? __atomic_load_n(&c[i % NL_CHUNK], __ATOMIC_ACQUIRE) : NULL;
}

/* Ids the kernel sends are ones this mount handed out; one that maps to
 * nothing (a table a dead server left half-written) reaches the lost node,
 * whose requests fail with ENOENT. */
struct nl_node *nl_node_of(struct nl_mount *m, fuse_ino_t ino)
{
	struct nl_node *n;

	if (ino == FUSE_ROOT_ID)
		return &m->root;
	n = ino < NL_TAB_NODES ? slot_get(m->byid, ino) : NULL;
	return n ? n : &m->lost;
}

int nl_node_bind(struct nl_mount *m, struct nl_node *n, uint64_t id)
{
	n->id = id;
	return slot_set(m->byid, id, n);
}

void *nl_handle_of(struct nl_mount *m, uint64_t fh)
{
	return fh < NL_TAB_HANDLES ? slot_get(m->handles, fh) : NULL;
}

int nl_handle_bind(struct nl_mount *m, uint64_t fh, void *obj)
{
	return slot_set(m->handles, fh, obj);
}

/* A handle in the table, written before the reply that hands it out. */
int nl_handle_new(struct nl_mount *m, int kind, struct nl_node *n, int flags, void *obj,
		  uint64_t *fh)
{
	uint64_t h = nl_tab_handle_alloc(&m->tab, kind, n->id, flags);

	if (!h)
		return -ENFILE;
	if (nl_handle_bind(m, h, obj)) {
		nl_tab_handle_free(&m->tab, h);
		return -ENOMEM;
	}
	*fh = h;
	return 0;
}

void nl_handle_free(struct nl_mount *m, uint64_t fh)
{
	slot_set(m->handles, fh, NULL);
	nl_tab_handle_free(&m->tab, fh);
}

static size_t node_hash(struct nl_node *parent, const char *name)
{
	size_t h = (uintptr_t)parent * 0x9e3779b97f4a7c15ULL;

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 0x100000001b3ULL;
	return (h >> 7) & (NL_HASH_SIZE - 1);
}

/* Caller holds m->ns (read or write). */
static struct nl_node *table_find(struct nl_mount *m, struct nl_node *parent,
				  const char *name)
{
	struct nl_node *n = m->table[node_hash(parent, name)];

	for (; n; n = n->hnext)
		if (n->parent == parent && strcmp(n->name, name) == 0)
			return n;
	return NULL;
}

static void table_unlink(struct nl_mount *m, struct nl_node *n)
{
	struct nl_node **pp = &m->table[node_hash(n->parent, n->name)];

	for (; *pp; pp = &(*pp)->hnext) {
		if (*pp == n) {
			*pp = n->hnext;
			n->hnext = NULL;
			return;
		}
	}
}

/* A node made again by a new server goes where a lookup would put it. */
void nl_node_rehash(struct nl_mount *m, struct nl_node *n)
{
	size_t h = node_hash(n->parent, n->name);

	n->hnext = m->table[h];
	m->table[h] = n;
}

struct nl_node *nl_node_find(struct nl_mount *m, struct nl_node *parent,
			     const char *name)
{
	struct nl_node *n;

	pthread_rwlock_rdlock(&m->ns);
	n = table_find(m, parent, name);
	pthread_rwlock_unlock(&m->ns);
	return n;
}

/* A new node's id, in the table with its name before anyone sees the id.
 * Caller holds m->ns for writing. */
static int node_publish(struct nl_mount *m, struct nl_node *n, struct nl_node *parent,
			const char *name)
{
	uint64_t id = nl_tab_node_alloc(&m->tab);

	if (!id)
		return -ENFILE;
	if (nl_node_bind(m, n, id)) {
		nl_tab_node_free(&m->tab, id);
		return -ENOMEM;
	}
	nl_tab_node_set(&m->tab, id, parent->id, name, 0);
	return 0;
}

/* Find or make the node for (parent, name) and take one kernel reference. */
struct nl_node *nl_node_get(struct nl_mount *m, struct nl_node *parent,
			    const char *name)
{
	struct nl_node *n;

	/* Names already known are found under the shared lock; only a new
	 * node takes the table for writing. */
	pthread_rwlock_rdlock(&m->ns);
	n = table_find(m, parent, name);
	if (n) {
		__atomic_add_fetch(&n->nlookup, 1, __ATOMIC_RELAXED);
		atomic_fetch_add(&m->tab.nodes[n->id].nlookup, 1);
	}
	pthread_rwlock_unlock(&m->ns);
	if (n)
		return n;
	pthread_rwlock_wrlock(&m->ns);
	n = table_find(m, parent, name);
	if (!n) {
		n = calloc(1, sizeof(*n));
		if (n)
			n->name = strdup(name);
		if (!n || !n->name) {
			free(n);
			pthread_rwlock_unlock(&m->ns);
			return NULL;
		}
		if (node_publish(m, n, parent, name)) {
			free(n->name);
			free(n);
			pthread_rwlock_unlock(&m->ns);
			return NULL;
		}
		pthread_mutex_init(&n->lock, NULL);
		n->gone_fd = -1;
		n->parent = parent;
		parent->nchild++;
		n->hnext = m->table[node_hash(parent, name)];
		m->table[node_hash(parent, name)] = n;
	}
	n->nlookup++;
	atomic_fetch_add(&m->tab.nodes[n->id].nlookup, 1);
	pthread_rwlock_unlock(&m->ns);
	return n;
}

/* A node and what it holds, once nothing can reach it any more. */
void nl_node_free(struct nl_mount *m, struct nl_node *n)
{
	pthread_mutex_destroy(&n->lock);
	if (n->gone_fd >= 0)
		close(n->gone_fd);
	nl_node_dirfds_free(m, n);
	free(n->open_st);
	free(n->name);
	free(n);
}

static void node_unpublish(struct nl_mount *m, struct nl_node *n)
{
	if (!n->id)
		return;
	slot_set(m->byid, n->id, NULL);
	nl_tab_node_free(&m->tab, n->id);
}

/* Caller holds m->ns for writing. Frees @n and any parent it kept alive. */
static void node_release(struct nl_mount *m, struct nl_node *n)
{
	while (n != &m->root && n->nlookup == 0 && n->nchild == 0) {
		struct nl_node *parent = n->parent;

		if (parent && !n->unlinked)
			table_unlink(m, n);
		nl_orphan_drop(m, n);
		node_unpublish(m, n);
		nl_node_free(m, n);
		if (!parent)
			break;
		parent->nchild--;
		n = parent;
	}
}

void nl_node_forget(struct nl_mount *m, struct nl_node *n, uint64_t count)
{
	if (n == &m->root || n == &m->lost)
		return;
	pthread_rwlock_wrlock(&m->ns);
	n->nlookup = count > n->nlookup ? 0 : n->nlookup - count;
	atomic_store(&m->tab.nodes[n->id].nlookup, n->nlookup);
	node_release(m, n);
	pthread_rwlock_unlock(&m->ns);
}

/*
 * An open lower file that loses its name keeps the layer's attributes for
 * fstat: its descriptor may be a promoted copy, whose own mode, owner,
 * times and inode are not the file's. The layer never changes, so what is
 * read here stays right. Called before the name goes, outside m->names.
 */
void nl_node_keep_lower_attrs(struct nl_mount *m, struct nl_node *n)
{
	char path[NL_PATH_BUF];
	struct stat st;
	int nopen;

	if (n->layer == 0 && m->upper)
		return;
	pthread_mutex_lock(&n->lock);
	nopen = __atomic_load_n(&n->nopen, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&n->lock);
	if (!nopen || nl_node_path(m, n, path, sizeof(path)) ||
	    nl_lower_lstat(m, n->layer, path, &st))
		return;
	pthread_mutex_lock(&n->lock);
	if (!n->open_st)
		n->open_st = malloc(sizeof(*n->open_st));
	if (n->open_st)
		*n->open_st = st;
	pthread_mutex_unlock(&n->lock);
}

/*
 * The entry is gone from the merged tree: later lookups of the name must
 * make a fresh node, while the kernel may still hold this one (open files).
 * The node keeps its parent (and its name for nothing but debugging).
 */
void nl_node_detach(struct nl_mount *m, struct nl_node *n)
{
	pthread_rwlock_wrlock(&m->ns);
	if (!n->unlinked && n != &m->lost) {
		table_unlink(m, n);
		n->unlinked = true;
		m->tab.nodes[n->id].layer = (uint8_t)n->layer;
		m->tab.nodes[n->id].type = (uint8_t)((n->type >> 12) |
						     (n->orphan ? NL_ENTRY_ORPHAN : 0));
		atomic_store(&m->tab.nodes[n->id].state, NL_TAB_UNLINKED);
	}
	pthread_rwlock_unlock(&m->ns);
}

void nl_node_move(struct nl_mount *m, struct nl_node *n,
		  struct nl_node *newparent, const char *newname)
{
	char *name = strdup(newname);

	if (!name)
		return;
	pthread_rwlock_wrlock(&m->ns);
	if (!n->unlinked)
		table_unlink(m, n);
	free(n->name);
	n->name = name;
	if (n->parent != newparent) {
		newparent->nchild++;
		n->parent->nchild--;
		n->parent = newparent;
	}
	n->unlinked = false;
	nl_tab_node_rename(&m->tab, n->id, newparent->id, name);
	atomic_store(&m->tab.nodes[n->id].state, NL_TAB_LIVE);
	n->hnext = m->table[node_hash(newparent, name)];
	m->table[node_hash(newparent, name)] = n;
	pthread_rwlock_unlock(&m->ns);
}

static int path_append(struct nl_node *n, char *buf, size_t len, size_t *pos)
{
	size_t l;

	if (!n->parent)
		return 0;
	if (path_append(n->parent, buf, len, pos))
		return -ENAMETOOLONG;
	l = strlen(n->name);
	if (*pos + l + 2 > len)
		return -ENAMETOOLONG;
	if (*pos)
		buf[(*pos)++] = '/';
	memcpy(buf + *pos, n->name, l);
	*pos += l;
	return 0;
}

int nl_node_path(struct nl_mount *m, struct nl_node *n, char *buf, size_t len)
{
	size_t pos = 0;
	int r;

	/* an id a new server could not map names nothing */
	if (n == &m->lost)
		return -ENOENT;

	pthread_rwlock_rdlock(&m->ns);
	r = path_append(n, buf, len, &pos);
	pthread_rwlock_unlock(&m->ns);
	if (r)
		return r;
	if (pos == 0)
		buf[pos++] = '.';
	buf[pos] = '\0';
	return 0;
}

int nl_child_path(struct nl_mount *m, struct nl_node *parent, const char *name,
		  char *buf, size_t len)
{
	size_t l, nl = strlen(name);
	int r = nl_node_path(m, parent, buf, len);

	if (r)
		return r;
	if (strcmp(buf, ".") == 0) {
		if (nl + 1 > len)
			return -ENAMETOOLONG;
		memcpy(buf, name, nl + 1);
		return 0;
	}
	l = strlen(buf);
	if (l + nl + 2 > len)
		return -ENAMETOOLONG;
	buf[l] = '/';
	memcpy(buf + l + 1, name, nl + 1);
	return 0;
}

uid_t nl_uid_to_outer(struct nl_mount *m, uid_t uid)
{
	const struct nl_options *o = m->opt;

	if (!o->n_uidmap)
		return uid;
	return nl_idmap_to_outer(o->uidmap, o->n_uidmap, uid);
}

gid_t nl_gid_to_outer(struct nl_mount *m, gid_t gid)
{
	const struct nl_options *o = m->opt;

	if (!o->n_gidmap)
		return gid;
	return nl_idmap_to_outer(o->gidmap, o->n_gidmap, gid);
}

static void map_owner(struct nl_mount *m, struct stat *st)
{
	const struct nl_options *o = m->opt;

	if (o->n_uidmap)
		st->st_uid = nl_idmap_to_inner(o->uidmap, o->n_uidmap, st->st_uid);
	if (o->n_gidmap)
		st->st_gid = nl_idmap_to_inner(o->gidmap, o->n_gidmap, st->st_gid);
	if (o->squash_to_root)
		st->st_uid = 0, st->st_gid = 0;
	if (o->squash_to_uid >= 0)
		st->st_uid = o->squash_to_uid;
	if (o->squash_to_gid >= 0)
		st->st_gid = o->squash_to_gid;
}

/*
 * stat of a node as the merged tree shows it: through @fd when the caller
 * has one open (unlinked files), else by path in the node's layer.
 */
/*
 * Finish a stat taken in the node's layer into what the merged tree shows:
 * the shared copy of a hard-linked lower file, link counts over layers,
 * inode numbers by origin, mapped owners.
 */
int nl_node_stat_from(struct nl_mount *m, struct nl_node *n, struct stat *st)
{
	char path[NL_PATH_BUF];
	dev_t odev;
	ino_t oino;

	/* an open file unlinked under one of its names is kept by another
	 * link, which is no name (orphan.c) */
	if (m->layers[n->layer].upper)
		st->st_nlink -= nl_orphan_links(m, st);
	if (!m->layers[n->layer].upper && st->st_nlink > 1 && m->upper &&
	    !S_ISDIR(st->st_mode) &&
	    nl_linked_copy(m, st->st_dev, st->st_ino, path, sizeof(path)) == 0) {
		dev_t d = st->st_dev;
		ino_t i = st->st_ino;

		int r = nl_lstat_beneath(m->upper->fd, path, st);

		if (r)
			return r;
		st->st_dev = d;
		st->st_ino = i;
	}
	nl_origin_of(m, st, &odev, &oino);
	if (!S_ISDIR(st->st_mode)) {
		nl_linkcount_get(m, odev, oino, &st->st_nlink);
	} else if (m->opt->static_nlink ||
		   (n->lowest > n->layer && n != &m->root)) {
		/* A merged directory's subdirectory count is not known
		 * without reading every layer; 1 means "unknown". */
		st->st_nlink = 1;
	}
	if (n->unlinked)
		st->st_nlink = 0;
	st->st_ino = nl_ino_map(m, odev, oino);
	map_owner(m, st);
	return 0;
}

/* An unlinked lower file that is still open: the attributes from its open. */
static int unlinked_lower_stat(struct nl_node *n, struct stat *st)
{
	int r = -ENOENT;

	pthread_mutex_lock(&n->lock);
	if (n->open_st) {
		*st = *n->open_st;
		r = 0;
	}
	pthread_mutex_unlock(&n->lock);
	return r;
}

/*
 * stat of a node as the merged tree shows it: through @fd when the caller
 * has an upper file open (unlinked files), else by path in the node's layer.
 */
int nl_node_stat(struct nl_mount *m, struct nl_node *n, int fd,
		 struct stat *st)
{
	char path[NL_PATH_BUF];
	int r;

	pthread_rwlock_rdlock(&m->names);
	if (fd < 0 && n->unlinked)
		fd = n->gone_fd;
	if (fd >= 0)
		r = fstat(fd, st) ? -errno : 0;
	else if (n->unlinked)
		r = unlinked_lower_stat(n, st);
	else if (!(r = nl_node_path(m, n, path, sizeof(path))))
		r = nl_lower_lstat(m, n->layer, path, st);
	if (!r)
		r = nl_node_stat_from(m, n, st);
	pthread_rwlock_unlock(&m->names);
	return r;
}

/*
 * An O_PATH descriptor of the file @n names in its layer, reached without
 * following a symlink; the caller closes it. Calls that change an upper
 * file go through it, so that they act on the file the node names at the
 * moment of the call, whatever is renamed after.
 */
int nl_node_handle(struct nl_mount *m, struct nl_node *n)
{
	char path[NL_PATH_BUF];
	int fd;

	pthread_rwlock_rdlock(&m->names);
	if (n->unlinked && n->layer == 0 && n->gone_fd < 0) {
		fd = -ENOENT;
	} else if (n->unlinked && n->gone_fd >= 0) {
		fd = fcntl(n->gone_fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			fd = -errno;
	} else if (!(fd = nl_node_path(m, n, path, sizeof(path))))
		fd = nl_open_beneath(m->layers[n->layer].fd, path, O_PATH | O_NOFOLLOW, 0);
	pthread_rwlock_unlock(&m->names);
	return fd;
}

/* Open the upper file @n names (its node's layer is the upper one). */
int nl_node_open_upper(struct nl_mount *m, struct nl_node *n, int flags)
{
	char path[NL_PATH_BUF];
	int fd;

	pthread_rwlock_rdlock(&m->names);
	if (n->unlinked)
		fd = n->gone_fd >= 0 ? nl_fd_reopen(n->gone_fd, flags) : -ENOENT;
	else if (!(fd = nl_node_path(m, n, path, sizeof(path))))
		fd = nl_open_beneath(m->upper->fd, path, flags, 0);
	pthread_rwlock_unlock(&m->names);
	return fd;
}

/*
 * @n's upper entry, (@dfd, @name), is about to lose its name while the
 * kernel may still send requests for the node: keep a handle of it.
 * Caller holds m->names for writing.
 */
void nl_node_keep_gone(struct nl_node *n, int dfd, const char *name)
{
	if (n->layer != 0 || n->gone_fd >= 0)
		return;
	n->gone_fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
}

double nl_attr_timeout(struct nl_mount *m, const struct stat *st)
{
	/* Other names of a hard-linked file change their link count
	 * behind the kernel's back: do not let it cache theirs. */
	if (!S_ISDIR(st->st_mode) && (st->st_nlink > 1 || nl_orphan_shares(m, st->st_ino)))
		return 0;
	return m->timeout;
}

/*
 * A handle (O_PATH) of the directory @dir names in layer @layer, opened
 * once and kept while the kernel holds the node, so that a lookup below it
 * costs one fstatat per layer instead of a walk from the layer's root.
 * -errno when the layer has no directory there; that is not remembered (a
 * copy-up may make one). The handle is the node's: valid while the node
 * is referenced, as it is during any request on it or below it. Past
 * m->dirfds_max kept handles, *owned is set and the caller closes it.
 * For the upper layer the caller holds m->names (the path must name the
 * node's directory); a kept upper handle follows its directory through
 * renames. A directory moved by a rename is merged with no lower layer
 * from then on (lowest 0), so its lower handles, left in place for the
 * requests that may still use them, are not asked again.
 */
int nl_node_dirfd(struct nl_mount *m, struct nl_node *dir, int layer, bool *owned)
{
	char path[NL_PATH_BUF];
	int *v = atomic_load(&dir->dirfd), *fresh, expect = -1, fd, i;

	*owned = false;
	if (dir == &m->root)
		return m->layers[layer].fd;
	if (v && v[layer] >= 0)
		return v[layer];
	fd = nl_node_path(m, dir, path, sizeof(path));
	if (!fd)
		fd = nl_open_beneath(m->layers[layer].fd, path, O_PATH | O_DIRECTORY, 0);
	if (fd < 0)
		return fd;
	if (!v && atomic_load(&m->dirfds) < m->dirfds_max &&
	    (fresh = malloc(m->n_layers * sizeof(*fresh)))) {
		for (i = 0; i < m->n_layers; i++)
			fresh[i] = -1;
		if (atomic_compare_exchange_strong(&dir->dirfd, &v, fresh))
			v = fresh;
		else
			free(fresh);
	}
	if (v && atomic_fetch_add(&m->dirfds, 1) < m->dirfds_max) {
		if (__atomic_compare_exchange_n(&v[layer], &expect, fd, false,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			return fd;
		/* another thread kept one first */
		atomic_fetch_sub(&m->dirfds, 1);
		close(fd);
		return expect;
	}
	if (v)
		atomic_fetch_sub(&m->dirfds, 1);
	*owned = true;
	return fd;
}

/* @name in the upper directory @dir names, from the node's kept handle.
 * Caller holds m->names; nl_at_done() releases it. */
int nl_upper_dir(struct nl_mount *m, struct nl_node *dir, const char *name, struct nl_at *at)
{
	bool owned;
	int fd = nl_node_dirfd(m, dir, 0, &owned);

	at->own = false;
	at->dfd = -1;
	at->name = name;
	if (fd < 0)
		return fd;
	at->dfd = fd;
	at->own = owned;
	return 0;
}

void nl_node_dirfds_free(struct nl_mount *m, struct nl_node *n)
{
	int *v = atomic_exchange(&n->dirfd, NULL), i;

	for (i = 0; v && i < m->n_layers; i++) {
		if (v[i] >= 0) {
			close(v[i]);
			atomic_fetch_sub(&m->dirfds, 1);
		}
	}
	free(v);
}

/* Upper files keep a handle when they lose their name (nl_node_keep_gone);
 * lower files get their attributes kept then (nl_node_keep_lower_attrs),
 * not at every open. */
void nl_node_opened(struct nl_node *n)
{
	pthread_mutex_lock(&n->lock);
	__atomic_add_fetch(&n->nopen, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&n->lock);
}

/* Without the node's lock: callers hold m->names for writing, under which
 * no node lock is taken. An open counted before its path was resolved
 * (nl_op_open) is seen by whoever changes the name after. */
bool nl_node_is_open(struct nl_node *n)
{
	return __atomic_load_n(&n->nopen, __ATOMIC_SEQ_CST) > 0;
}

void nl_node_closed(struct nl_node *n)
{
	pthread_mutex_lock(&n->lock);
	if (__atomic_sub_fetch(&n->nopen, 1, __ATOMIC_SEQ_CST) == 0) {
		free(n->open_st);
		n->open_st = NULL;
	}
	pthread_mutex_unlock(&n->lock);
}
