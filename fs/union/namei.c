/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Name lookup through the layers.
 *
 * The topmost layer that has a name wins. A whiteout (char device 0/0, or
 * a ".wh.NAME" file where device nodes cannot be made) hides the name in
 * every layer below; an opaque directory hides everything below it; a
 * non-directory ends the merge of a directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs/union/union.h"

#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"

static const char *const opaque_xattrs[] = {
	"trusted.overlay.opaque",
	"user.overlay.opaque",
	"user.fuseoverlayfs.opaque",
};

bool nl_is_whiteout(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && major(st->st_rdev) == 0 &&
	       minor(st->st_rdev) == 0;
}

/* Names that exist in a layer only as markers, never in the merged tree. */
bool nl_name_is_private(const char *name)
{
	return strncmp(name, WH_PREFIX, strlen(WH_PREFIX)) == 0;
}

bool nl_xattr_is_private(const char *name)
{
	return strncmp(name, "trusted.overlay.", 16) == 0 ||
	       strncmp(name, "user.overlay.", 13) == 0 ||
	       strncmp(name, "user.fuseoverlayfs.", 19) == 0 ||
	       strncmp(name, "user.nlayerfs.", 14) == 0;
}


/* Is there a marker in @layer that makes @dir (a relative path) opaque? */
bool nl_dir_is_opaque(struct nl_mount *m, int layer, const char *dir)
{
	char marker[NL_PATH_BUF];
	char v[4];
	size_t i;
	ssize_t n;

	for (i = 0; i < sizeof(opaque_xattrs) / sizeof(*opaque_xattrs); i++) {
		n = nl_lower_getxattr(m, layer, dir, opaque_xattrs[i], v, sizeof(v));
		if (n == 1 && v[0] == 'y')
			return true;
	}
	struct stat st;

	if (snprintf(marker, sizeof(marker), "%s/%s", dir, WH_OPAQUE) >=
	    (int)sizeof(marker))
		return false;
	return nl_lower_lstat(m, layer, marker, &st) == 0;
}

/* Does @layer hold a ".wh.NAME" marker for @name inside the node @dir
 * (at @dirpath)? */
static bool old_style_whiteout(struct nl_mount *m, int layer, struct nl_node *dir,
			       const char *dirpath, const char *name)
{
	char marker[NAME_MAX + 1], path[NL_PATH_BUF + NAME_MAX + 2];
	struct stat st;
	int r;

	if (snprintf(marker, sizeof(marker), WH_PREFIX "%s", name) >= (int)sizeof(marker))
		return false;
	if (strcmp(dirpath, ".") == 0)
		r = snprintf(path, sizeof(path), "%s", marker);
	else
		r = snprintf(path, sizeof(path), "%s/%s", dirpath, marker);
	if (r < 0 || r >= (int)sizeof(path))
		return false;
	return nl_lower_lstat_in(m, layer, dir, marker, path, &st) == 0;
}

/* Is the directory @name of the node @dir (at @path) opaque in @layer?
 * Without an image: one open from the node's handle, then the markers. */
static bool child_is_opaque(struct nl_mount *m, int layer, struct nl_node *dir,
			    const char *name, const char *path)
{
	struct stat st;
	bool owned, opaque = false;
	char v[4];
	size_t i;
	int dfd, fd;

	if (nl_lower_imaged(m, layer))
		return nl_dir_is_opaque(m, layer, path);
	dfd = nl_node_dirfd(m, dir, layer, &owned);
	if (dfd < 0)
		return false;
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (owned)
		close(dfd);
	if (fd < 0)	/* an unreadable directory (a daemon not run by root) */
		return nl_dir_is_opaque(m, layer, path);
	for (i = 0; !opaque && i < sizeof(opaque_xattrs) / sizeof(*opaque_xattrs); i++)
		opaque = fgetxattr(fd, opaque_xattrs[i], v, sizeof(v)) == 1 && v[0] == 'y';
	if (!opaque)
		opaque = fstatat(fd, WH_OPAQUE, &st, AT_SYMLINK_NOFOLLOW) == 0;
	close(fd);
	return opaque;
}

/*
 * After a directory @name of @dir was found in layer @found, how far down
 * does it merge? Until a layer makes it opaque, or holds a non-directory
 * or a whiteout at the same path.
 */
static int merge_depth(struct nl_mount *m, struct nl_node *dir, const char *dirpath,
		       const char *path, const char *name, int found, int end)
{
	struct stat st;
	int lowest = found, j;

	if (child_is_opaque(m, found, dir, name, path))
		return found;
	for (j = found + 1; j <= end; j++) {
		if (nl_lower_lstat_in(m, j, dir, name, path, &st)) {
			if (old_style_whiteout(m, j, dir, dirpath, name))
				break;
			continue;
		}
		if (!S_ISDIR(st.st_mode))
			break;
		lowest = j;
		if (child_is_opaque(m, j, dir, name, path))
			break;
	}
	return lowest;
}

/*
 * Find @name in @parent, looking only at layers from @from_layer down.
 * Fills the layer it was found in, for directories the lowest layer merged
 * into it, and its stat in that layer.
 */
int nl_resolve(struct nl_mount *m, struct nl_node *parent, const char *name,
	       int from_layer, int *layer, int *lowest, struct stat *st)
{
	char dir[NL_PATH_BUF], path[NL_PATH_BUF];
	int j, start, end = parent->lowest, r;

	if (strlen(name) > NAME_MAX)
		return -ENAMETOOLONG;
	r = nl_node_path(m, parent, dir, sizeof(dir));
	if (!r)
		r = nl_child_path(m, parent, name, path, sizeof(path));
	if (r)
		return r;
	start = parent->layer > from_layer ? parent->layer : from_layer;
	for (j = start; j <= end; j++) {
		r = nl_lower_lstat_in(m, j, parent, name, path, st);
		if (r == 0) {
			if (nl_is_whiteout(st))
				return -ENOENT;
			*layer = j;
			*lowest = S_ISDIR(st->st_mode) ?
				  merge_depth(m, parent, dir, path, name, j, end) : j;
			return 0;
		}
		if (r != -ENOENT && r != -ENOTDIR)
			return r;
		if (old_style_whiteout(m, j, parent, dir, name))
			return -ENOENT;
	}
	return -ENOENT;
}

bool nl_lower_has(struct nl_mount *m, struct nl_node *parent,
		  const char *name)
{
	struct stat st;
	int layer, lowest;

	if (!m->upper)
		return false;
	return nl_resolve(m, parent, name, 1, &layer, &lowest, &st) == 0;
}

int nl_lookup_child(struct nl_mount *m, struct nl_node *parent,
		    const char *name, struct fuse_entry_param *e)
{
	struct nl_node *n;
	struct stat st;
	int layer, lowest, r;

	if (nl_name_is_private(name))
		return strlen(name) > NAME_MAX ? -ENAMETOOLONG : -ENOENT;
	/* The name is found and its node made while no rename can come
	 * between: the node then names the file that was found. */
	pthread_rwlock_rdlock(&m->names);
	r = nl_resolve(m, parent, name, 0, &layer, &lowest, &st);
	n = r ? NULL : nl_node_get(m, parent, name);
	if (!r && !n)
		r = -ENOMEM;
	if (!r) {
		n->layer = layer;
		n->lowest = lowest;
		n->type = st.st_mode & S_IFMT;
		memset(e, 0, sizeof(*e));
		e->attr = st;
		r = nl_node_stat_from(m, n, &e->attr);
	}
	pthread_rwlock_unlock(&m->names);
	if (r) {
		if (n)
			nl_node_forget(m, n, 1);
		return r;
	}
	e->ino = n->id;
	e->generation = m->tab.nodes[n->id].gen;
	e->attr_timeout = nl_attr_timeout(m, &e->attr);
	e->entry_timeout = m->timeout;
	return 0;
}

void nl_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct nl_mount *m = nl_mount_of(req);
	struct fuse_entry_param e;
	int r = nl_lookup_child(m, nl_node_of(m, parent), name, &e);

	if (r == -ENOENT) {
		/* A negative entry the kernel may cache as long as a
		 * positive one: every creation goes through the mount. */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = m->timeout;
		fuse_reply_entry(req, &e);
		return;
	}
	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_entry(req, &e);
}

void nl_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct nl_mount *m = nl_mount_of(req);

	nl_node_forget(m, nl_node_of(m, ino), nlookup);
	fuse_reply_none(req);
}

void nl_op_forget_multi(fuse_req_t req, size_t count,
			struct fuse_forget_data *forgets)
{
	struct nl_mount *m = nl_mount_of(req);
	size_t i;

	for (i = 0; i < count; i++)
		nl_node_forget(m, nl_node_of(m, forgets[i].ino),
			       forgets[i].nlookup);
	fuse_reply_none(req);
}
