/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Merged directory listings.
 *
 * A listing is built once when the directory is opened and served from
 * that snapshot, so offsets stay valid while the directory changes (POSIX
 * lets a reader see or miss entries added after opendir).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/union/union.h"

/* Names already decided, shown or hidden: open addressing on strings. */
struct name_set {
	char **slots;
	size_t cap, used;
};

static size_t name_hash(const char *s)
{
	size_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static int set_grow(struct name_set *s)
{
	size_t i, j, cap = s->cap ? s->cap * 2 : 64;
	char **slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (i = 0; i < s->cap; i++) {
		if (!s->slots[i])
			continue;
		for (j = name_hash(s->slots[i]) & (cap - 1); slots[j];
		     j = (j + 1) & (cap - 1))
			;
		slots[j] = s->slots[i];
	}
	free(s->slots);
	s->slots = slots;
	s->cap = cap;
	return 0;
}

/* Returns 1 if added, 0 if already there, or -ENOMEM. Keeps a pointer. */
static int set_add(struct name_set *s, char *name)
{
	size_t j;

	if ((s->used + 1) * 2 > s->cap && set_grow(s))
		return -ENOMEM;
	for (j = name_hash(name) & (s->cap - 1); s->slots[j];
	     j = (j + 1) & (s->cap - 1))
		if (strcmp(s->slots[j], name) == 0)
			return 0;
	s->slots[j] = name;
	s->used++;
	return 1;
}

static void set_free(struct name_set *s)
{
	size_t i;

	for (i = 0; i < s->cap; i++)
		free(s->slots[i]);
	free(s->slots);
}

static int list_push(struct nl_dirlist *l, const char *name, ino_t ino,
		     unsigned char type)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		struct nl_dirent *e = realloc(l->ents, cap * sizeof(*e));

		if (!e)
			return -ENOMEM;
		l->ents = e;
		l->cap = cap;
	}
	l->ents[l->n].name = strdup(name);
	if (!l->ents[l->n].name)
		return -ENOMEM;
	l->ents[l->n].ino = ino;
	l->ents[l->n].type = type;
	l->n++;
	return 0;
}

void nl_dir_list_free(struct nl_dirlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->ents[i].name);
	free(l->ents);
	memset(l, 0, sizeof(*l));
}

/* One layer's part of a listing being merged. */
struct merge {
	struct nl_mount *m;
	struct nl_dirlist *l;
	struct name_set *seen;
	int layer;
};

/* Decide one entry of a layer: hide, show, or skip as already seen. */
static int add_entry(void *arg, const char *name, ino_t d_ino, unsigned char type,
		     bool whiteout)
{
	struct merge *mg = arg;
	struct nl_mount *m = mg->m;
	char *key;
	ino_t ino;
	int r;

	if (nl_name_is_private(name)) {
		/* ".wh.NAME" hides NAME below; ".wh..wh..opq" was
		 * handled when the merge depth was computed. */
		if (strcmp(name, ".wh..wh..opq") == 0)
			return 0;
		key = strdup(name + 4);
		if (!key)
			return -ENOMEM;
		r = set_add(mg->seen, key);
		if (r <= 0)
			free(key);
		return r < 0 ? r : 0;
	}
	key = strdup(name);
	if (!key)
		return -ENOMEM;
	r = set_add(mg->seen, key);
	if (r <= 0) {
		free(key);
		return r;
	}
	if (whiteout)
		return 0;
	if (m->layers[mg->layer].upper)
		ino = nl_ino_of_upper(m, m->layers[mg->layer].dev, d_ino);
	else
		ino = nl_ino_map(m, m->layers[mg->layer].dev, d_ino);
	return list_push(mg->l, name, ino, type);
}

/* Layer @j's entries of the directory at @path; the upper layer's from
 * @upper_fd, opened when the path was built. */
static int list_layer(struct nl_mount *m, struct nl_dirlist *l,
		      struct name_set *seen, const char *path, int j, int upper_fd)
{
	struct merge mg = { m, l, seen, j };
	int r;

	if (m->layers[j].upper)
		r = upper_fd < 0 ? upper_fd : nl_readdir_fd(upper_fd, add_entry, &mg);
	else
		r = nl_lower_readdir(m, j, path, add_entry, &mg);
	return r == -ENOENT || r == -ENOTDIR ? 0 : r;
}

int nl_dir_list(struct nl_mount *m, struct nl_node *dir, struct nl_dirlist *l)
{
	char path[NL_PATH_BUF];
	struct name_set seen = { 0 };
	int j, r, upper_fd = -ENOENT;

	memset(l, 0, sizeof(*l));
	pthread_rwlock_rdlock(&m->names);
	r = nl_node_path(m, dir, path, sizeof(path));
	if (!r && m->upper && dir->layer == 0)
		upper_fd = nl_open_beneath(m->upper->fd, path, O_RDONLY | O_DIRECTORY, 0);
	pthread_rwlock_unlock(&m->names);
	for (j = dir->layer; r == 0 && j <= dir->lowest; j++) {
		r = list_layer(m, l, &seen, path, j, upper_fd);
		if (m->layers[j].upper)
			upper_fd = -ENOENT;	/* closed by the listing */
	}
	if (upper_fd >= 0)
		close(upper_fd);
	set_free(&seen);
	if (r)
		nl_dir_list_free(l);
	return r;
}

int nl_dir_is_empty(struct nl_mount *m, struct nl_node *dir)
{
	struct nl_dirlist l;
	int r = nl_dir_list(m, dir, &l);

	if (r)
		return r;
	r = l.n == 0;
	nl_dir_list_free(&l);
	return r;
}

/* "." and ".." lead the listing, with the numbers stat gives them. */
static int add_dots(struct nl_mount *m, struct nl_node *n, struct nl_dirlist *l)
{
	struct stat st;
	ino_t self, parent;
	int r;

	r = nl_node_stat(m, n, -1, &st);
	if (r)
		return r;
	self = st.st_ino;
	parent = self;
	if (n->parent && nl_node_stat(m, n->parent, -1, &st) == 0)
		parent = st.st_ino;
	r = list_push(l, ".", self, DT_DIR);
	if (!r)
		r = list_push(l, "..", parent, DT_DIR);
	if (r)
		return r;
	/* Move the two to the front. */
	if (l->n > 2) {
		struct nl_dirent a = l->ents[l->n - 2], b = l->ents[l->n - 1];

		memmove(l->ents + 2, l->ents, (l->n - 2) * sizeof(*l->ents));
		l->ents[0] = a;
		l->ents[1] = b;
	}
	return 0;
}

/*
 * The listing is built at the first readdir, not at opendir: when the
 * kernel still has the directory's listing cached it opens the directory
 * but never asks for the entries.
 */
struct nl_dirhandle {
	struct nl_dirlist list;
	bool built;
};

void *nl_dirhandle_new(void)
{
	return calloc(1, sizeof(struct nl_dirhandle));
}

void nl_dirhandle_free(void *arg)
{
	struct nl_dirhandle *h = arg;

	nl_dir_list_free(&h->list);
	free(h);
}

void nl_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct nl_mount *m = nl_mount_of(req);
	struct nl_dirhandle *h = nl_dirhandle_new();
	int r = h ? nl_handle_new(m, NL_TAB_DIR, nl_node_of(m, ino), fi->flags, h, &fi->fh) :
		    -ENOMEM;

	if (r) {
		free(h);
		fuse_reply_err(req, -r);
		return;
	}
	/* Every change to a directory goes through this mount, and the
	 * kernel drops its cached listing when it sees one, so the listing
	 * may be cached even over an upper layer. */
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	if (fuse_reply_open(req, fi) == -ENOENT) {
		nl_handle_free(m, fi->fh);
		free(h);
	}
}

void nl_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	struct nl_mount *m = nl_mount_of(req);
	struct nl_dirhandle *h = nl_handle_of(m, fi->fh);
	struct nl_node *n = nl_node_of(m, ino);
	struct nl_dirlist *l = &h->list;
	size_t pos = 0, i;
	struct stat st;
	char *buf;
	int r;

	/* The kernel serialises readdir calls of one open directory. */
	if (!h->built || off == 0) {
		nl_dir_list_free(l);
		r = nl_dir_list(m, n, l);
		if (!r)
			r = add_dots(m, n, l);
		if (r) {
			nl_dir_list_free(l);
			h->built = false;
			fuse_reply_err(req, -r);
			return;
		}
		h->built = true;
	}
	buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (i = off; i < l->n; i++) {
		size_t need;

		memset(&st, 0, sizeof(st));
		st.st_ino = l->ents[i].ino;
		st.st_mode = (mode_t)l->ents[i].type << 12;
		need = fuse_add_direntry(req, buf + pos, size - pos,
					 l->ents[i].name, &st, i + 1);
		if (need > size - pos)
			break;
		pos += need;
	}
	fuse_reply_buf(req, buf, pos);
	free(buf);
}

void nl_op_releasedir(fuse_req_t req, fuse_ino_t ino,
		      struct fuse_file_info *fi)
{
	struct nl_mount *m = nl_mount_of(req);
	struct nl_dirhandle *h = nl_handle_of(m, fi->fh);

	(void)ino;
	nl_handle_free(m, fi->fh);
	nl_dirhandle_free(h);
	fuse_reply_err(req, 0);
}

void nl_op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
		    struct fuse_file_info *fi)
{
	struct nl_mount *m = nl_mount_of(req);
	struct nl_node *n = nl_node_of(m, ino);
	int fd, r = 0;

	(void)fi;
	if (!m->upper || !m->opt->fsync || n->layer != 0) {
		fuse_reply_err(req, 0);
		return;
	}
	fd = nl_node_open_upper(m, n, O_RDONLY | O_DIRECTORY);
	if (fd >= 0) {
		if (datasync ? fdatasync(fd) : fsync(fd))
			r = -errno;
		close(fd);
	}
	fuse_reply_err(req, -r);
}
