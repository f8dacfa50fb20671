/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Opening and reading a metadata image. Everything an image says is checked
 * once at open (magic, version, layer, sizes, SHA-256, every offset), so
 * that lookups need no bounds checks and a torn or foreign file is never
 * served.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include "tier/meta/meta.h"

#define WHY(...) (snprintf(why, whylen, __VA_ARGS__), -EINVAL)

static bool sha_ok(const void *buf, size_t len)
{
	struct tier_meta_hdr h;
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	bool ok;

	if (!c)
		return false;
	memcpy(&h, buf, sizeof(h));
	memset(h.sha256, 0, sizeof(h.sha256));
	ok = EVP_DigestInit_ex(c, EVP_sha256(), NULL) &&
	     EVP_DigestUpdate(c, &h, sizeof(h)) &&
	     EVP_DigestUpdate(c, (const char *)buf + sizeof(h), len - sizeof(h)) &&
	     EVP_DigestFinal_ex(c, md, &mdlen);
	EVP_MD_CTX_free(c);
	return ok && !memcmp(md, ((const struct tier_meta_hdr *)buf)->sha256, 32);
}

/* [off, off + n * size) inside [0, limit), without overflow. */
static bool table_in(uint64_t off, uint64_t n, uint64_t size, uint64_t limit)
{
	return off <= limit && (off & 7) == 0 && n <= (limit - off) / size;
}

static bool str_in(const struct tier_meta_hdr *h, const char *strs, uint32_t off, uint32_t len)
{
	return (uint64_t)off + len < h->str_bytes && strs[off + len] == '\0';
}

static void img_point(struct tier_meta_img *img, const void *buf)
{
	const uint8_t *body = (const uint8_t *)buf + sizeof(struct tier_meta_hdr);

	img->hdr = buf;
	img->dirs = (const void *)(body + img->hdr->off_dirs);
	img->ents = (const void *)(body + img->hdr->off_ents);
	img->xattrs = (const void *)(body + img->hdr->off_xattrs);
	img->strs = (const char *)(body + img->hdr->off_strs);
	img->atimes = (const void *)(body + img->hdr->off_atimes);
}

static int check_tables(const struct tier_meta_img *m, char *why, size_t whylen)
{
	const struct tier_meta_hdr *h = m->hdr;

	for (uint64_t i = 0; i < h->n_dirs; i++) {
		const struct tier_meta_dir *d = &m->dirs[i];

		if (!str_in(h, m->strs, d->path_off, d->path_len) || d->first > h->n_ents ||
		    d->count > h->n_ents - d->first || d->self >= h->n_ents ||
		    m->ents[d->self].dir != i)
			return WHY("directory record %llu out of range", (unsigned long long)i);
		if (i && strcmp(m->strs + m->dirs[i - 1].path_off, m->strs + d->path_off) >= 0)
			return WHY("directory table not sorted");
	}
	for (uint64_t i = 0; i < h->n_ents; i++) {
		const struct tier_meta_ent *e = &m->ents[i];

		if (!str_in(h, m->strs, e->name_off, e->name_len) ||
		    (e->link_len && !str_in(h, m->strs, e->link_off, e->link_len)) ||
		    e->xattr_first > h->n_xattrs || e->xattr_n > h->n_xattrs - e->xattr_first ||
		    (e->dir != TIER_META_NONE && e->dir >= h->n_dirs))
			return WHY("entry %llu out of range", (unsigned long long)i);
	}
	for (uint64_t i = 0; i < h->n_xattrs; i++) {
		const struct tier_meta_xattr *x = &m->xattrs[i];

		if (!str_in(h, m->strs, x->name_off, x->name_len) ||
		    !str_in(h, m->strs, x->val_off, x->val_len))
			return WHY("xattr %llu out of range", (unsigned long long)i);
	}
	return 0;
}

int tier_meta_img_check(const void *buf, size_t len, const char *layer_id, char *why, size_t whylen)
{
	const struct tier_meta_hdr *h = buf;
	struct tier_meta_img m = { 0 };
	uint64_t body;

	if (len < sizeof(*h))
		return WHY("truncated (%zu bytes)", len);
	if (memcmp(h->magic, TIER_META_MAGIC, 8))
		return WHY("not a metadata image (bad magic)");
	if (h->version != TIER_META_VERSION)
		return WHY("format version %u, this nlayerfs reads %u", h->version, TIER_META_VERSION);
	if (layer_id && memcmp(h->layer, layer_id, TIER_ID_LEN))
		return WHY("image of layer %.12s..., not of this layer", h->layer);
	body = len - sizeof(*h);
	if (h->body_len != body)
		return WHY("truncated or extended (%llu body bytes, header says %llu)",
			   (unsigned long long)body, (unsigned long long)h->body_len);
	if (!table_in(h->off_dirs, h->n_dirs, sizeof(struct tier_meta_dir), body) ||
	    !table_in(h->off_ents, h->n_ents, sizeof(struct tier_meta_ent), body) ||
	    !table_in(h->off_xattrs, h->n_xattrs, sizeof(struct tier_meta_xattr), body) ||
	    !table_in(h->off_atimes, h->n_ents, sizeof(struct tier_meta_atime), body) ||
	    !table_in(h->off_strs, h->str_bytes, 1, body) || !h->n_dirs || !h->n_ents ||
	    h->n_ents > UINT32_MAX || h->n_dirs > UINT32_MAX || h->str_bytes > UINT32_MAX)
		return WHY("table offsets out of range");
	if (!sha_ok(buf, len))
		return WHY("checksum mismatch");
	img_point(&m, buf);
	return check_tables(&m, why, whylen);
}

int tier_meta_img_open(const char *path, const char *layer_id, const struct tier_meta_sig *sig,
		       struct tier_meta_img **out, char *why, size_t whylen)
{
	struct tier_meta_img *img;
	struct stat st;
	void *map;
	int fd, r;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || st.st_size < (off_t)sizeof(struct tier_meta_hdr)) {
		close(fd);
		return WHY("truncated (%lld bytes)", (long long)st.st_size);
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	r = map == MAP_FAILED ? -errno : 0;
	close(fd);
	if (r)
		return r;
	r = tier_meta_img_check(map, (size_t)st.st_size, layer_id, why, whylen);
	if (!r && sig) {
		const struct tier_meta_hdr *h = map;

		if (h->root_dev != sig->dev || h->root_ino != sig->ino)
			r = WHY("the layer directory was replaced");
		else if (h->root_ctime_ns != sig->ctime_ns || h->root_mtime_ns != sig->mtime_ns)
			r = WHY("the layer directory was changed");
	}
	img = r ? NULL : calloc(1, sizeof(*img));
	if (!img) {
		munmap(map, (size_t)st.st_size);
		return r ? r : -ENOMEM;
	}
	img->map = map;
	img->len = (size_t)st.st_size;
	img_point(img, map);
	*out = img;
	return 0;
}

void tier_meta_img_free(struct tier_meta_img *img)
{
	if (!img)
		return;
	munmap(img->map, img->len);
	free(img);
}

const char *tier_meta_img_str(const struct tier_meta_img *img, uint32_t off)
{
	return img->strs + off;
}

/* strcmp order between a NUL-terminated string and (p, n). */
static int cmp_pn(const char *s, size_t sl, const char *p, size_t n)
{
	int c = memcmp(s, p, sl < n ? sl : n);

	if (c)
		return c;
	return sl < n ? -1 : sl > n ? 1 : 0;
}

/* Both tables start each record with the offset and length of its key in
 * the string table (a dir's path, an entry's name) and are sorted by it. */
struct meta_key {
	uint32_t off, len;
};
_Static_assert(offsetof(struct tier_meta_dir, path_off) == 0 &&
	       offsetof(struct tier_meta_dir, path_len) == 4, "dir key first");
_Static_assert(offsetof(struct tier_meta_ent, name_off) == 0 &&
	       offsetof(struct tier_meta_ent, name_len) == 4, "entry key first");

/* Binary search for @p in records [lo, hi) of @table (@size bytes each). */
static long key_find(const struct tier_meta_img *img, const void *table, size_t size,
		     size_t lo, size_t hi, const char *p, size_t n)
{
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		struct meta_key k;
		int c;

		memcpy(&k, (const char *)table + mid * size, sizeof(k));
		c = cmp_pn(img->strs + k.off, k.len, p, n);
		if (!c)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static long dir_find(const struct tier_meta_img *img, const char *p, size_t n)
{
	return key_find(img, img->dirs, sizeof(*img->dirs), 0, img->hdr->n_dirs, p, n);
}

static long ent_find(const struct tier_meta_img *img, const struct tier_meta_dir *d,
		     const char *p, size_t n)
{
	long e = key_find(img, img->ents, sizeof(*img->ents), d->first,
			  (size_t)d->first + d->count, p, n);

	return e < 0 ? -ENOENT : e;
}

static long find_len(const struct tier_meta_img *img, const char *path, size_t len)
{
	const char *slash, *name, *parent = ".";
	size_t plen = 1, nlen;
	long d, pe;

	if (!len || (len == 1 && path[0] == '.'))
		return 0;
	slash = memrchr(path, '/', len);
	name = slash ? slash + 1 : path;
	nlen = len - (size_t)(name - path);
	if (slash) {
		parent = path;
		plen = (size_t)(slash - path);
	}
	if (!nlen || !plen)
		return TIER_META_MISS;
	d = dir_find(img, parent, plen);
	if (d >= 0)
		return ent_find(img, &img->dirs[d], name, nlen);
	/* The parent is not covered: its own entry may still say that it
	 * does not exist or is no directory. */
	pe = find_len(img, parent, plen);
	if (pe < 0)
		return pe;
	if (!S_ISDIR(img->ents[pe].mode))
		return -ENOTDIR;
	return TIER_META_MISS;
}

long tier_meta_img_find(const struct tier_meta_img *img, const char *relpath)
{
	return find_len(img, relpath, strlen(relpath));
}

void tier_meta_img_stat(const struct tier_meta_img *img, long i, dev_t dev, struct stat *st)
{
	const struct tier_meta_ent *e = &img->ents[i];

	memset(st, 0, sizeof(*st));
	st->st_dev = dev;
	st->st_ino = e->ino;
	st->st_mode = e->mode;
	st->st_nlink = e->nlink;
	st->st_uid = e->uid;
	st->st_gid = e->gid;
	st->st_rdev = e->rdev;
	st->st_size = (off_t)e->size;
	st->st_blksize = e->blksize;
	st->st_blocks = (blkcnt_t)e->blocks;
	st->st_atim.tv_sec = img->atimes[i].s;
	st->st_atim.tv_nsec = img->atimes[i].ns;
	st->st_mtim.tv_sec = e->mtime_s;
	st->st_mtim.tv_nsec = e->mtime_ns;
	st->st_ctim.tv_sec = e->ctime_s;
	st->st_ctim.tv_nsec = e->ctime_ns;
}
