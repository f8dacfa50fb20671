/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Building a metadata image: walk the covered directories of a layer, read
 * every entry's attributes, symlink target and xattrs, then lay the tables
 * out (meta.h) and checksum them. The walk reads directories with
 * O_NOATIME, so building an image does not change what it records.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <openssl/evp.h>
#include "tier/meta/meta.h"
#include "tier/tier_util.h"

_Static_assert(sizeof(struct tier_meta_hdr) == 256, "header is 256 bytes");
_Static_assert(sizeof(struct tier_meta_ent) == 112, "entry layout");

struct mb_xattr {
	char *name, *val;
	uint32_t len;
};

struct mb_ent {
	char *name, *link;
	struct stat st;
	struct mb_xattr *xa;
	uint32_t nxa, flags;
	long dir;			/* covered: its mb_dir, else -1 */
};

struct mb_dir {
	char *path;
	struct mb_ent *ents;
	size_t n, cap;
	long pdir, pidx;		/* its entry: pdir's ents[pidx]; root: -1 */
	uint32_t first;			/* final index of ents[0] */
};

struct mb {
	int rootfd;
	const struct tier_meta_cover *cover;
	struct mb_ent root;
	struct mb_dir *dirs;
	size_t ndirs, cap;
	uint64_t nents, nxa, strbytes;
};

int tier_meta_sig_of(const char *layer_dir, struct tier_meta_sig *sig)
{
	struct stat st;

	if (stat(layer_dir, &st) < 0)
		return -errno;
	sig->dev = st.st_dev;
	sig->ino = st.st_ino;
	sig->ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec;
	sig->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
	return 0;
}

/* ---- coverage sets ---- */

int tier_meta_cover_add(struct tier_meta_cover *c, const char *dir)
{
	char **v = realloc(c->paths, (c->n + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	c->paths = v;
	v[c->n] = strdup(dir);
	if (!v[c->n])
		return -ENOMEM;
	c->n++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted, without duplicates. */
void tier_meta_cover_sort(struct tier_meta_cover *c)
{
	size_t out = 0;

	if (!c->n)
		return;
	qsort(c->paths, c->n, sizeof(*c->paths), cmp_str);
	for (size_t i = 0; i < c->n; i++) {
		if (out && !strcmp(c->paths[out - 1], c->paths[i])) {
			free(c->paths[i]);
			continue;
		}
		c->paths[out++] = c->paths[i];
	}
	c->n = out;
}

void tier_meta_cover_free(struct tier_meta_cover *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->paths[i]);
	free(c->paths);
	c->paths = NULL;
	c->n = 0;
}

static bool covered(const struct tier_meta_cover *c, const char *path)
{
	return c->full || (c->n && bsearch(&path, c->paths, c->n, sizeof(*c->paths), cmp_str));
}

/* ---- reading one entry ---- */

/* All xattrs of @name in the directory @dfd, in listing order, up to the
 * cap. Through /proc/self/fd so that deep paths need no PATH_MAX. */
static int read_xattrs(struct mb *b, int dfd, const char *name, struct mb_ent *e)
{
	char p[64 + NAME_MAX], list[TIER_META_XATTR_CAP];
	ssize_t n;
	size_t total = 0;

	if (snprintf(p, sizeof(p), "/proc/self/fd/%d/%s", dfd, name) >= (int)sizeof(p))
		return -ENAMETOOLONG;
	n = llistxattr(p, list, sizeof(list));
	if (n < 0) {
		if (errno == ENOTSUP)
			e->flags |= TIER_META_E_XATTR_NOTSUP;
		else
			e->flags |= TIER_META_E_XATTR_MISS;
		return 0;
	}
	for (char *x = list; x < list + n; x += strlen(x) + 1) {
		char val[TIER_META_XATTR_CAP];
		ssize_t vn = lgetxattr(p, x, val, sizeof(val));
		struct mb_xattr *v;

		total += strlen(x) + 1 + (vn > 0 ? (size_t)vn : 0);
		if (vn < 0 || total > TIER_META_XATTR_CAP) {
			e->flags |= TIER_META_E_XATTR_MISS;
			return 0;
		}
		v = realloc(e->xa, (e->nxa + 1) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		e->xa = v;
		v[e->nxa].name = strdup(x);
		v[e->nxa].val = malloc((size_t)vn + 1);
		if (!v[e->nxa].name || !v[e->nxa].val) {
			free(v[e->nxa].name);
			free(v[e->nxa].val);
			return -ENOMEM;
		}
		memcpy(v[e->nxa].val, val, (size_t)vn);
		v[e->nxa].val[vn] = '\0';
		v[e->nxa].len = (uint32_t)vn;
		e->nxa++;
		b->strbytes += strlen(x) + 1 + (size_t)vn + 1;
	}
	b->nxa += e->nxa;
	return 0;
}

static int read_entry(struct mb *b, int dfd, const char *name, struct mb_ent *e)
{
	int r;

	memset(e, 0, sizeof(*e));
	e->dir = -1;
	e->name = strdup(name);
	if (!e->name)
		return -ENOMEM;
	b->strbytes += strlen(name) + 1;
	if (fstatat(dfd, name, &e->st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (S_ISLNK(e->st.st_mode)) {
		char t[PATH_MAX + 1];
		ssize_t n = readlinkat(dfd, name, t, sizeof(t) - 1);

		if (n < 0)
			return -errno;
		t[n] = '\0';
		e->link = strdup(t);
		if (!e->link)
			return -ENOMEM;
		b->strbytes += (size_t)n + 1;
		/* reading a link may touch its access time: record it after */
		if (fstatat(dfd, name, &e->st, AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
	}
	r = read_xattrs(b, dfd, name, e);
	b->nents++;
	return r;
}

static void ent_free(struct mb_ent *e)
{
	for (uint32_t i = 0; i < e->nxa; i++) {
		free(e->xa[i].name);
		free(e->xa[i].val);
	}
	free(e->xa);
	free(e->name);
	free(e->link);
}

static void mb_free(struct mb *b)
{
	for (size_t i = 0; i < b->ndirs; i++) {
		for (size_t j = 0; j < b->dirs[i].n; j++)
			ent_free(&b->dirs[i].ents[j]);
		free(b->dirs[i].ents);
		free(b->dirs[i].path);
	}
	free(b->dirs);
	ent_free(&b->root);
	if (b->rootfd >= 0)
		close(b->rootfd);
}

/* ---- the walk ---- */

static int push_dir(struct mb *b, const char *path, long pdir, long pidx)
{
	if (b->ndirs == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		struct mb_dir *v = realloc(b->dirs, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		b->dirs = v;
		b->cap = cap;
	}
	memset(&b->dirs[b->ndirs], 0, sizeof(b->dirs[0]));
	b->dirs[b->ndirs].path = strdup(path);
	if (!b->dirs[b->ndirs].path)
		return -ENOMEM;
	b->dirs[b->ndirs].pdir = pdir;
	b->dirs[b->ndirs].pidx = pidx;
	b->ndirs++;
	b->strbytes += strlen(path) + 1;
	return 0;
}

static int cmp_ent(const void *a, const void *b)
{
	return strcmp(((const struct mb_ent *)a)->name, ((const struct mb_ent *)b)->name);
}

static int list_one(struct mb *b, size_t di, int dfd)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;
	int r = 0;

	if (!d) {
		close(dfd);
		return -errno;
	}
	while (!r && (errno = 0, de = readdir(d))) {
		struct mb_dir *dir = &b->dirs[di];

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (dir->n == dir->cap) {
			size_t cap = dir->cap ? dir->cap * 2 : 16;
			struct mb_ent *v = realloc(dir->ents, cap * sizeof(*v));

			if (!v) {
				r = -ENOMEM;
				break;
			}
			dir->ents = v;
			dir->cap = cap;
		}
		r = read_entry(b, dirfd(d), de->d_name, &dir->ents[dir->n]);
		dir->n++;
		/* gone between readdir and lstat: a layer changing under the
		 * walk; the caller retries later */
	}
	if (!r && errno)
		r = -errno;
	closedir(d);
	return r;
}

/* Mark a directory entry that is not covered but holds the opaque marker. */
static void peek_marker(struct mb *b, const char *path, struct mb_ent *e)
{
	int fd = tier_open_beneath(b->rootfd, path, O_PATH | O_DIRECTORY, 0);
	struct stat st;

	if (fd < 0)
		return;
	if (fstatat(fd, ".wh..wh..opq", &st, AT_SYMLINK_NOFOLLOW) == 0)
		e->flags |= TIER_META_E_OPQ_MARKER;
	close(fd);
}

/* After listing dir @di: sort it, note markers, queue covered subdirs. */
static int descend(struct mb *b, size_t di)
{
	uint64_t root_dev = b->root.st.st_dev;
	char child[PATH_MAX];
	int r;

	if (b->dirs[di].n)
		qsort(b->dirs[di].ents, b->dirs[di].n, sizeof(*b->dirs[di].ents), cmp_ent);
	/* push_dir() moves b->dirs: index it afresh each time */
	for (size_t j = 0; j < b->dirs[di].n; j++) {
		struct mb_ent *e = &b->dirs[di].ents[j];
		const char *path = b->dirs[di].path;

		if (!strcmp(e->name, ".wh..wh..opq")) {
			if (b->dirs[di].pdir < 0)
				b->root.flags |= TIER_META_E_OPQ_MARKER;
			else
				b->dirs[b->dirs[di].pdir].ents[b->dirs[di].pidx].flags |=
					TIER_META_E_OPQ_MARKER;
		}
		if (!S_ISDIR(e->st.st_mode))
			continue;
		if (e->st.st_dev != root_dev) {
			e->flags |= TIER_META_E_FOREIGN;
			continue;
		}
		if (snprintf(child, sizeof(child), "%s%s%s", strcmp(path, ".") ? path : "",
			     strcmp(path, ".") ? "/" : "", e->name) >= (int)sizeof(child))
			continue;	/* too deep for *at() calls: left uncovered */
		if (!covered(b->cover, child)) {
			peek_marker(b, child, e);
			continue;
		}
		e->dir = (long)b->ndirs;
		r = push_dir(b, child, (long)di, (long)j);
		if (r)
			return r;
	}
	return 0;
}

static int walk(struct mb *b)
{
	int r = push_dir(b, ".", -1, -1);

	for (size_t di = 0; !r && di < b->ndirs; di++) {
		int fd;

		/* a walk of a big layer on HDD takes seconds: not at unmount */
		if (b->cover->stop && atomic_load(b->cover->stop))
			return -ECANCELED;
		fd = tier_open_beneath(b->rootfd, b->dirs[di].path,
				       O_RDONLY | O_DIRECTORY | O_NOATIME, 0);
		if (fd == -EPERM)
			fd = tier_open_beneath(b->rootfd, b->dirs[di].path,
					       O_RDONLY | O_DIRECTORY, 0);
		if (fd < 0)
			return fd;
		r = list_one(b, di, fd);
		if (!r)
			r = descend(b, di);
	}
	return r;
}

/* ---- layout ---- */

struct lay {
	uint8_t *body;
	struct tier_meta_hdr *hdr;
	struct tier_meta_dir *dirs;
	struct tier_meta_ent *ents;
	struct tier_meta_xattr *xa;
	struct tier_meta_atime *at;
	char *strs;
	uint64_t str_used, xa_used;
};

static uint32_t put_str(struct lay *l, const char *s, size_t n)
{
	uint32_t off = (uint32_t)l->str_used;

	memcpy(l->strs + off, s, n);
	l->strs[off + n] = '\0';
	l->str_used += n + 1;
	return off;
}

static void put_ent(struct lay *l, uint64_t i, const struct mb_ent *e)
{
	struct tier_meta_ent *o = &l->ents[i];
	const struct stat *st = &e->st;

	memset(o, 0, sizeof(*o));
	o->name_len = (uint32_t)strlen(e->name);
	o->name_off = put_str(l, e->name, o->name_len);
	o->mode = st->st_mode;
	o->uid = st->st_uid;
	o->gid = st->st_gid;
	o->nlink = (uint32_t)st->st_nlink;
	o->flags = e->flags;
	o->dir = TIER_META_NONE;
	o->ino = st->st_ino;
	o->size = (uint64_t)st->st_size;
	o->blocks = (uint64_t)st->st_blocks;
	o->rdev = st->st_rdev;
	o->mtime_s = st->st_mtim.tv_sec;
	o->mtime_ns = (uint32_t)st->st_mtim.tv_nsec;
	o->ctime_s = st->st_ctim.tv_sec;
	o->ctime_ns = (uint32_t)st->st_ctim.tv_nsec;
	o->blksize = (uint32_t)st->st_blksize;
	l->at[i].s = st->st_atim.tv_sec;
	l->at[i].ns = (uint32_t)st->st_atim.tv_nsec;
	if (e->link) {
		o->link_len = (uint32_t)strlen(e->link);
		o->link_off = put_str(l, e->link, o->link_len);
	}
	o->xattr_first = (uint32_t)l->xa_used;
	o->xattr_n = e->nxa;
	for (uint32_t k = 0; k < e->nxa; k++) {
		struct tier_meta_xattr *x = &l->xa[l->xa_used++];

		x->name_len = (uint32_t)strlen(e->xa[k].name);
		x->name_off = put_str(l, e->xa[k].name, x->name_len);
		x->val_len = e->xa[k].len;
		x->val_off = put_str(l, e->xa[k].val, e->xa[k].len);
	}
}

/* Dirs in path order. */
static int cmp_dir_idx_r(const void *a, const void *b, void *arg)
{
	const struct mb_dir *d = arg;

	return strcmp(d[*(const size_t *)a].path, d[*(const size_t *)b].path);
}

static uint64_t align8(uint64_t v)
{
	return (v + 7) & ~7ULL;
}

static int seal(void *buf, size_t len)
{
	struct tier_meta_hdr *h = buf;
	unsigned int mdlen = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok;

	if (!md)
		return -ENOMEM;
	memset(h->sha256, 0, sizeof(h->sha256));
	ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) &&
	     EVP_DigestUpdate(md, buf, len) &&
	     EVP_DigestFinal_ex(md, h->sha256, &mdlen);
	EVP_MD_CTX_free(md);
	return ok ? 0 : -EIO;
}

static int lay_out(struct mb *b, const char *layer_id, void **out, size_t *outlen)
{
	uint64_t n_ents = b->nents + 1;	/* + the root */
	uint64_t o_dirs = 0, o_ents, o_xa, o_strs, o_at, body;
	size_t *order = malloc(b->ndirs * sizeof(*order));
	uint64_t *rank = malloc(b->ndirs * sizeof(*rank));
	struct lay l = { 0 };
	uint64_t next = 1;

	if (!order || !rank) {
		free(order);
		free(rank);
		return -ENOMEM;
	}
	if (b->strbytes > UINT32_MAX - 1 || n_ents > UINT32_MAX - 1) {
		free(order);
		free(rank);
		return -EFBIG;
	}
	o_ents = align8(o_dirs + b->ndirs * sizeof(struct tier_meta_dir));
	o_xa = align8(o_ents + n_ents * sizeof(struct tier_meta_ent));
	o_strs = align8(o_xa + b->nxa * sizeof(struct tier_meta_xattr));
	o_at = align8(o_strs + b->strbytes);
	body = o_at + n_ents * sizeof(struct tier_meta_atime);
	l.hdr = calloc(1, sizeof(*l.hdr) + body);
	if (!l.hdr) {
		free(order);
		free(rank);
		return -ENOMEM;
	}
	l.body = (uint8_t *)(l.hdr + 1);
	l.dirs = (void *)(l.body + o_dirs);
	l.ents = (void *)(l.body + o_ents);
	l.xa = (void *)(l.body + o_xa);
	l.strs = (char *)(l.body + o_strs);
	l.at = (void *)(l.body + o_at);

	for (size_t i = 0; i < b->ndirs; i++)
		order[i] = i;
	qsort_r(order, b->ndirs, sizeof(*order), cmp_dir_idx_r, b->dirs);
	for (size_t k = 0; k < b->ndirs; k++) {
		rank[order[k]] = k;
		b->dirs[order[k]].first = (uint32_t)next;
		next += b->dirs[order[k]].n;
	}
	put_ent(&l, 0, &b->root);
	for (size_t k = 0; k < b->ndirs; k++) {
		const struct mb_dir *d = &b->dirs[order[k]];
		struct tier_meta_dir *od = &l.dirs[k];

		od->path_len = (uint32_t)strlen(d->path);
		od->path_off = put_str(&l, d->path, od->path_len);
		od->first = d->first;
		od->count = (uint32_t)d->n;
		od->self = d->pdir < 0 ? 0 : b->dirs[d->pdir].first + (uint32_t)d->pidx;
		for (size_t j = 0; j < d->n; j++)
			put_ent(&l, d->first + j, &d->ents[j]);
	}
	for (size_t k = 0; k < b->ndirs; k++)
		l.ents[l.dirs[k].self].dir = (uint32_t)k;

	memcpy(l.hdr->magic, TIER_META_MAGIC, 8);
	l.hdr->version = TIER_META_VERSION;
	l.hdr->flags = b->cover->full ? TIER_META_F_FULL : 0;
	memcpy(l.hdr->layer, layer_id, TIER_ID_LEN);
	l.hdr->root_dev = b->root.st.st_dev;
	l.hdr->root_ino = b->root.st.st_ino;
	l.hdr->root_ctime_ns = (int64_t)b->root.st.st_ctim.tv_sec * 1000000000LL +
			       b->root.st.st_ctim.tv_nsec;
	l.hdr->root_mtime_ns = (int64_t)b->root.st.st_mtim.tv_sec * 1000000000LL +
			       b->root.st.st_mtim.tv_nsec;
	l.hdr->n_dirs = b->ndirs;
	l.hdr->n_ents = n_ents;
	l.hdr->n_xattrs = b->nxa;
	l.hdr->str_bytes = b->strbytes;
	l.hdr->off_dirs = o_dirs;
	l.hdr->off_ents = o_ents;
	l.hdr->off_xattrs = o_xa;
	l.hdr->off_strs = o_strs;
	l.hdr->off_atimes = o_at;
	l.hdr->body_len = body;
	free(order);
	free(rank);
	if (seal(l.hdr, sizeof(*l.hdr) + body)) {
		free(l.hdr);
		return -EIO;
	}
	*out = l.hdr;
	*outlen = sizeof(*l.hdr) + body;
	return 0;
}

int tier_meta_build_mem(const char *layer_dir, const char *layer_id,
			const struct tier_meta_cover *cover, void **out, size_t *len)
{
	struct mb b = { .cover = cover };
	int r;

	*out = NULL;
	*len = 0;
	if (strlen(layer_id) != TIER_ID_LEN)
		return -EINVAL;
	b.rootfd = open(layer_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (b.rootfd < 0)
		return -errno;
	b.root.dir = -1;
	b.root.name = strdup("");
	if (!b.root.name) {
		mb_free(&b);
		return -ENOMEM;
	}
	b.strbytes = 1;
	if (fstat(b.rootfd, &b.root.st) < 0) {
		r = -errno;
		mb_free(&b);
		return r;
	}
	r = read_xattrs(&b, b.rootfd, ".", &b.root);
	if (!r)
		r = walk(&b);
	if (!r)
		r = lay_out(&b, layer_id, out, len);
	mb_free(&b);
	return r;
}

int tier_meta_write(const char *meta_dir, const char *layer_id, const void *buf, size_t len)
{
	char tmp[PATH_MAX], dst[PATH_MAX];
	const char *p = buf;
	size_t done = 0;
	int fd, r = 0;

	if (mkdir(meta_dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	snprintf(dst, sizeof(dst), "%s/%s.img", meta_dir, layer_id);
	if (snprintf(tmp, sizeof(tmp), "%s/.%s.img.%d.tmp", meta_dir, layer_id, (int)gettid()) >=
	    (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (!r && done < len) {
		ssize_t n = write(fd, p + done, len - done);

		if (n < 0 && errno != EINTR)
			r = -errno;
		else if (n > 0)
			done += (size_t)n;
	}
	if (!r && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && !r)
		r = -errno;
	if (!r && rename(tmp, dst) < 0)
		r = -errno;
	if (r)
		unlink(tmp);
	else
		r = tier_fsync_dir(meta_dir);
	return r;
}

int tier_meta_build_file(const char *nvm_dir, const char *layer_dir, const char *layer_id)
{
	struct tier_meta_cover c = { .full = true };
	char meta[PATH_MAX];
	void *buf;
	size_t len;
	int r;

	if (snprintf(meta, sizeof(meta), "%s/%s", nvm_dir, TIER_META_DIR) >= (int)sizeof(meta))
		return -ENAMETOOLONG;
	r = tier_meta_build_mem(layer_dir, layer_id, &c, &buf, &len);
	if (!r)
		r = tier_meta_write(meta, layer_id, buf, len);
	free(buf);
	return r;
}
