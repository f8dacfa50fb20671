// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The checkpoint mount's persistence: the whole tree, the allocation, the
 * streams and the zones' dead bytes are serialised into one blob that
 * replaces the previous one in a pmemobj transaction, so a commit is all or
 * nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/ckpt/ckpt.h"

#define CKPT_MAGIC 0x4e4c434b50543031ULL	/* "NLCKPT01" */
#define CKPT_POOL_SIZE (64ULL << 20)

struct ckpt_root {
	uint64_t magic;
	uint32_t version;
	uint32_t pad;
	PMEMoid blob;
	uint64_t blob_len;
};

/* -------------------------------------------------------- serialisation */

struct wbuf {
	uint8_t *p;
	size_t len, cap;
	int err;
};

static void put(struct wbuf *b, const void *d, size_t len)
{
	if (b->err || !len)	/* an empty extent list has no array at all */
		return;
	if (b->len + len > b->cap) {
		size_t nc = b->cap ? b->cap : 4096;
		uint8_t *p;

		while (nc < b->len + len)
			nc *= 2;
		p = realloc(b->p, nc);
		if (!p) {
			b->err = -ENOMEM;
			return;
		}
		b->p = p;
		b->cap = nc;
	}
	memcpy(b->p + b->len, d, len);
	b->len += len;
}

static void put64(struct wbuf *b, uint64_t v) { put(b, &v, 8); }

static void putbytes(struct wbuf *b, const void *d, size_t len)
{
	put64(b, len);
	put(b, d, len);
}

struct rbuf {
	const uint8_t *p;
	size_t len, pos;
	bool bad;
};

static void get(struct rbuf *r, void *d, size_t len)
{
	if (!len)
		return;
	if (r->bad || len > r->len - r->pos) {
		r->bad = true;
		memset(d, 0, len);
		return;
	}
	memcpy(d, r->p + r->pos, len);
	r->pos += len;
}

static uint64_t get64(struct rbuf *r)
{
	uint64_t v;

	get(r, &v, 8);
	return v;
}

/* A copy of a length-prefixed byte string, NUL terminated. */
static void *getbytes(struct rbuf *r, size_t *lenp)
{
	uint64_t len = get64(r);
	char *s;

	if (r->bad || len > r->len - r->pos) {
		r->bad = true;
		return NULL;
	}
	s = malloc(len + 1);
	if (!s) {
		r->bad = true;
		return NULL;
	}
	get(r, s, len);
	s[len] = 0;
	if (lenp)
		*lenp = len;
	return s;
}

/* A tenant's stream as ckpt_commit snapshotted it (nothing for an empty slot). */
static int put_stream(struct wbuf *b, struct ckpt_node *n)
{
	putbytes(b, n->st ? n->st_blob : NULL, n->st ? n->st_len : 0);
	return 0;
}

static int put_node(struct wbuf *b, struct ckpt_node *n)
{
	put64(b, n->ino);
	put64(b, n->parent);
	put64(b, n->mode);
	put64(b, ((uint64_t)n->uid << 32) | n->gid);
	put64(b, n->size);
	put64(b, n->mtime.tv_sec);
	put64(b, n->mtime.tv_nsec);
	put64(b, n->ctime.tv_sec);
	put64(b, n->ctime.tv_nsec);
	put64(b, n->tino);
	put64(b, n->nwrite ? 1 : 0);
	putbytes(b, n->name, strlen(n->name));
	putbytes(b, n->target ? n->target : "", n->target ? strlen(n->target) : 0);
	put64(b, n->tenant);
	put64(b, n->bandwidth);
	put64(b, n->n_ext);
	put(b, n->ext, n->n_ext * sizeof(*n->ext));
	return n->tino == n->ino ? put_stream(b, n) : 0;
}

static int serialise(struct ckpt_ctx *c, struct wbuf *b)
{
	const struct zns_geometry *g = zns_dev_geometry(c->dev);
	size_t alen = zns_alloc_encode(zns_store_alloc(c->store), NULL, 0);
	uint8_t *a = malloc(alen ? alen : 1);
	uint64_t count = 0;
	int r = 0;

	if (!a)
		return -ENOMEM;
	zns_alloc_encode(zns_store_alloc(c->store), a, alen);
	put64(b, CKPT_MAGIC);
	put64(b, CKPT_LAYOUT_VERSION);
	put64(b, g->nr_zones);
	put64(b, g->zone_size);
	put(b, c->dev_id.id, sizeof(c->dev_id.id));
	put64(b, c->next_ino);
	put64(b, c->next_tenant);
	putbytes(b, a, alen);
	free(a);
	for (uint32_t z = 0; z < g->nr_zones; z++) {
		struct zns_zone_use u = { 0, 0 };

		zns_store_zone_use(c->store, z, &u);
		put64(b, u.dead);
	}
	for (uint64_t i = 2; i < c->n_nodes; i++)
		count += c->nodes[i] && c->nodes[i]->parent;
	put64(b, count);
	for (uint64_t i = 2; i < c->n_nodes && !r; i++)
		if (c->nodes[i] && c->nodes[i]->parent)	/* unlinked ones die with a crash */
			r = put_node(b, c->nodes[i]);
	return r ? r : b->err;
}

/* --------------------------------------------------------------- commit */

static int store_blob(struct ckpt_ctx *c, const void *p, size_t len)
{
	PMEMoid root = pmemobj_root(c->pop, sizeof(struct ckpt_root));
	struct ckpt_root *rp = pmemobj_direct(root);
	int r = 0;

	TX_BEGIN(c->pop) {
		PMEMoid nb = pmemobj_tx_alloc(len, 1);
		void *d = pmemobj_direct(nb);

		pmemobj_tx_add_range(root, 0, sizeof(*rp));
		memcpy(d, p, len);
		pmemobj_persist(c->pop, d, len);
		if (!OID_IS_NULL(rp->blob))
			pmemobj_tx_free(rp->blob);
		rp->magic = CKPT_MAGIC;
		rp->version = CKPT_LAYOUT_VERSION;
		rp->blob = nb;
		rp->blob_len = len;
	} TX_ONABORT {
		r = -ENOSPC;
	} TX_END
	return r;
}

/*
 * Every stream written out and described; appends running outside c->lock
 * land before a snapshot (and are in it) or after it. The data of an
 * extent recorded in the tree was appended before the extent was: it is in
 * the snapshot.
 */
static int snapshot_streams(struct ckpt_ctx *c)
{
	int r = 0;

	for (uint64_t i = 2; i < c->n_nodes && !r; i++) {
		struct ckpt_node *n = c->nodes[i];
		void *blob = NULL;
		ssize_t len;

		if (!n || !n->st)
			continue;
		len = zns_stream_snapshot(n->st, &blob);
		if (len < 0) {
			r = (int)len;
			break;
		}
		free(n->st_blob);
		n->st_blob = blob;
		n->st_len = (size_t)len;
	}
	return r ?: zns_dev_sync(c->dev);
}

static void drop_snapshots(struct ckpt_ctx *c)
{
	for (uint64_t i = 2; i < c->n_nodes; i++) {
		struct ckpt_node *n = c->nodes[i];

		if (n && n->st) {
			free(n->st_blob);
			n->st_blob = NULL;
			n->st_len = 0;
		}
	}
}

/* Flush every stream, persist the tree, then give back the space the
 * committed tree no longer uses. Called with c->lock held. */
int ckpt_commit(struct ckpt_ctx *c)
{
	struct wbuf b = { 0 };
	int r;

	r = snapshot_streams(c);
	if (!r)
		r = serialise(c, &b);
	if (!r)
		r = store_blob(c, b.p, b.len);
	drop_snapshots(c);
	free(b.p);
	if (r) {
		nl_log(CKPT_LOG, "commit of the metadata failed: %s", strerror(-r));
		return r;
	}
	/* the journal's writes are all in the pool now */
	if (c->tab && !c->replaying)
		nl_tab_journal_reset(c->tab);
	for (size_t i = 0; i < c->n_pend; i++)
		zns_stream_discard(c->pend[i].st, c->pend[i].off, c->pend[i].len);
	c->n_pend = 0;
	c->dirty = false;
	return 0;
}

/* ----------------------------------------------------------------- load */

static struct ckpt_node *load_node(struct rbuf *rd)
{
	struct ckpt_node *n = ckpt_node_alloc();
	uint64_t v;

	if (!n)
		return NULL;
	n->ino = get64(rd);
	n->parent = get64(rd);
	n->mode = (uint32_t)get64(rd);
	v = get64(rd);
	n->uid = v >> 32;
	n->gid = (uint32_t)v;
	n->size = get64(rd);
	n->mtime.tv_sec = get64(rd);
	n->mtime.tv_nsec = get64(rd);
	n->ctime.tv_sec = get64(rd);
	n->ctime.tv_nsec = get64(rd);
	n->tino = get64(rd);
	n->was_open_w = get64(rd) != 0;
	n->name = getbytes(rd, NULL);
	n->target = getbytes(rd, NULL);
	if (n->target && !*n->target) {
		free(n->target);
		n->target = NULL;
	}
	n->tenant = (uint32_t)get64(rd);
	n->bandwidth = get64(rd);
	n->n_ext = n->cap_ext = get64(rd);
	if (!rd->bad && n->n_ext <= (rd->len - rd->pos) / sizeof(struct ckpt_ext)) {
		n->ext = malloc(n->n_ext * sizeof(*n->ext) + 1);
		if (n->ext)
			get(rd, n->ext, n->n_ext * sizeof(*n->ext));
	}
	if (!n->ext)
		rd->bad = true;
	if (n->tino == n->ino)
		n->st_blob = getbytes(rd, &n->st_len);
	if (rd->bad || !n->name || n->ino < 2) {
		ckpt_node_release(n);
		return NULL;
	}
	return n;
}

static int decode(struct ckpt_ctx *c, const void *p, size_t len, char *err, size_t errlen)
{
	struct rbuf rd = { p, len, 0, false };
	uint64_t count, version;

	if (get64(&rd) != CKPT_MAGIC || rd.bad) {
		snprintf(err, errlen, "%s: not a checkpoint metadata blob (damaged pool)", c->pool_path);
		return -EINVAL;
	}
	version = get64(&rd);
	if (version > CKPT_LAYOUT_VERSION) {
		snprintf(err, errlen, "%s: metadata of a newer layout than this build reads (%d)",
			 c->pool_path, CKPT_LAYOUT_VERSION);
		return -EPROTO;
	}
	c->nr_zones = (uint32_t)get64(&rd);
	c->zone_size = get64(&rd);
	/* layout 1 had no device identity: recovery adopts the device */
	if (version >= 2) {
		get(&rd, c->dev_id.id, sizeof(c->dev_id.id));
		c->has_id = true;
	}
	c->loaded = true;
	c->next_ino = get64(&rd);
	c->next_tenant = (uint32_t)get64(&rd);
	c->alloc_blob = getbytes(&rd, &c->alloc_len);
	if (!rd.bad && c->nr_zones <= (rd.len - rd.pos) / 8) {
		c->dead = calloc(c->nr_zones + 1, 8);
		c->n_dead = c->nr_zones;
		for (uint32_t z = 0; c->dead && z < c->nr_zones; z++)
			c->dead[z] = get64(&rd);
	}
	count = get64(&rd);
	for (uint64_t i = 0; i < count && !rd.bad; i++) {
		struct ckpt_node *n = load_node(&rd);

		if (!n || ckpt_place(c, n))
			rd.bad = true;
	}
	if (rd.bad || !c->dead) {
		snprintf(err, errlen, "%s: the checkpoint metadata is damaged (truncated or inconsistent)",
			 c->pool_path);
		return -EINVAL;
	}
	return 0;
}

#define PMEMOBJ_SIGNATURE "PMEMOBJ"

static void damaged_pool(struct ckpt_ctx *c, char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "%s: the metadata pool is damaged: %s (a pool whose creation was "
		 "cut off looks like this). Restore it from a backup; if it never held "
		 "checkpoints, move it away and mount again", c->pool_path, what);
}

/*
 * libpmemobj maps the file and trusts it: an empty or short file kills the
 * process with SIGBUS, random bytes with SIGSEGV. Check what it would touch
 * first: the whole pool is there and starts with an obj pool's signature.
 */
static int check_pool_file(struct ckpt_ctx *c, char *err, size_t errlen)
{
	char sig[sizeof(PMEMOBJ_SIGNATURE)] = "", what[160];
	struct stat st;
	int fd = open(c->pool_path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(err, errlen, "%s: %s", c->pool_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -EIO;
	}
	n = pread(fd, sig, sizeof(sig), 0);
	close(fd);
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file; move it away", c->pool_path);
		return -EINVAL;
	}
	if ((uint64_t)st.st_size < CKPT_POOL_SIZE) {
		snprintf(what, sizeof(what), st.st_size ? "it is %lld bytes, a pool is %llu"
			 : "the file is empty", (long long)st.st_size,
			 (unsigned long long)CKPT_POOL_SIZE);
		damaged_pool(c, err, errlen, what);
		return -EINVAL;
	}
	if (n != (ssize_t)sizeof(sig) || memcmp(sig, PMEMOBJ_SIGNATURE, sizeof(sig))) {
		damaged_pool(c, err, errlen, "it does not start with a libpmemobj pool header");
		return -EINVAL;
	}
	return 0;
}

/* A pool is created under a temporary name and renamed into place, so a
 * creation that is cut off never leaves a half-made ckpt.pool. */
static PMEMobjpool *create_pool(struct ckpt_ctx *c)
{
	PMEMobjpool *pop;
	char *tmp;

	if (asprintf(&tmp, "%s.new", c->pool_path) < 0)
		return NULL;
	unlink(tmp);
	pop = pmemobj_create(tmp, CKPT_LAYOUT, CKPT_POOL_SIZE, 0600);
	if (pop && rename(tmp, c->pool_path)) {
		pmemobj_close(pop);
		pop = NULL;
	}
	if (!pop)
		unlink(tmp);
	free(tmp);
	return pop;
}

static int open_pool(struct ckpt_ctx *c, char *err, size_t errlen)
{
	struct ckpt_root *rp;
	int r;

	if (access(c->pool_path, F_OK) != 0) {
		c->pop = create_pool(c);
		c->pool_created = c->pop != NULL;
	} else {
		r = check_pool_file(c, err, errlen);
		if (r)
			return r;
		c->pop = pmemobj_open(c->pool_path, CKPT_LAYOUT);
	}
	if (!c->pop) {
		snprintf(err, errlen, "%s: cannot open the metadata pool: %s", c->pool_path,
			 pmemobj_errormsg());
		return -EINVAL;
	}
	rp = pmemobj_direct(pmemobj_root(c->pop, sizeof(struct ckpt_root)));
	if (!rp) {
		snprintf(err, errlen, "%s: the metadata pool has no root", c->pool_path);
		return -EINVAL;
	}
	if (rp->magic && rp->magic != CKPT_MAGIC) {
		snprintf(err, errlen, "%s: not a checkpoint metadata pool (bad magic)", c->pool_path);
		return -EINVAL;
	}
	if (rp->version > CKPT_LAYOUT_VERSION) {
		snprintf(err, errlen, "%s: metadata layout version %u is newer than this build reads (%d)",
			 c->pool_path, rp->version, CKPT_LAYOUT_VERSION);
		return -EPROTO;
	}
	return 0;
}

/* Read the pool (no device, no threads: runs before the daemon forks). */
int ckpt_meta_load(struct ckpt_ctx *c, const char *metadir, char *err, size_t errlen)
{
	struct ckpt_root *rp;
	int r;

	if (mkdir(metadir, 0700) && errno != EEXIST) {
		snprintf(err, errlen, "meta=%s: %s", metadir, strerror(errno));
		return -errno;
	}
	if (asprintf(&c->pool_path, "%s/ckpt.pool", metadir) < 0)
		return -ENOMEM;
	r = open_pool(c, err, errlen);
	if (r)
		return r;
	rp = pmemobj_direct(pmemobj_root(c->pop, sizeof(struct ckpt_root)));
	if (rp->magic && !OID_IS_NULL(rp->blob))
		return decode(c, pmemobj_direct(rp->blob), rp->blob_len, err, errlen);
	return 0;
}

/* ------------------------------------------------------------- recovery */

static int attach_tenant(struct ckpt_ctx *c, struct ckpt_node *t)
{
	struct zns_stream_damage d;
	int r;

	if (!t->st_len)
		return zns_stream_create(c->store, t->tenant, t->bandwidth, &t->st);
	r = zns_stream_attach(c->store, t->st_blob, t->st_len, &t->st);
	if (!r)
		r = zns_stream_verify(t->st, &d);
	if (r)
		return r;
	if (d.zones_ahead)
		nl_log(CKPT_LOG, "recovery: tenant '%s': dropped %llu bytes written to %u zone(s) after "
		       "the last commit, the row is sealed", t->name,
		       (unsigned long long)d.bytes_ahead, d.zones_ahead);
	if (d.zones_ahead || d.zones_behind)
		r = zns_stream_seal(t->st);
	return r;
}

/*
 * The committed files are the truth about what a tenant's zones still
 * hold: a crash loses the dead bytes of space freed after the last commit,
 * so count them again from the extents (and reset zones nobody uses).
 */
static int recount_tenant(struct ckpt_ctx *c, struct ckpt_node *t)
{
	struct zns_range *live = NULL;
	size_t n = 0, cap = 0;
	int r;

	for (uint64_t i = 2; i < c->n_nodes; i++) {
		struct ckpt_node *f = c->nodes[i];

		if (!f || f->tino != t->ino || f == t)
			continue;
		for (size_t e = 0; e < f->n_ext; e++) {
			if (n == cap) {
				struct zns_range *p;

				cap = cap ? 2 * cap : 64;
				p = realloc(live, cap * sizeof(*p));
				if (!p) {
					free(live);
					return -ENOMEM;
				}
				live = p;
			}
			live[n++] = (struct zns_range){ f->ext[e].soff, f->ext[e].len };
		}
	}
	r = zns_stream_recount_dead(t->st, live, n);
	free(live);
	return r;
}

static int recover_tenants(struct ckpt_ctx *c, char *err, size_t errlen)
{
	/* before the streams: sealing a row adds its unwritten tail on top */
	for (uint32_t z = 0; z < c->n_dead; z++)
		if (c->dead[z])
			zns_store_set_dead(c->store, z, c->dead[z]);
	for (uint64_t i = 2; i < c->n_nodes; i++) {
		struct ckpt_node *n = c->nodes[i];
		int r;

		if (!n)
			continue;
		/* a server that takes over counts the open files again */
		if (n->was_open_w && !c->taking_over)
			nl_log(CKPT_LOG, "recovery: '%s' (inode %llu) was open for writing at the crash: "
			       "kept as of its last commit, later writes dropped", n->name,
			       (unsigned long long)n->ino);
		if (n->tino != n->ino)
			continue;
		r = attach_tenant(c, n) ?: recount_tenant(c, n);
		/* a zone whose data all died before the crash may have been
		 * reset after the last commit: only one still in use is lost */
		if (!r && zns_stream_lost_zones(n->st))
			nl_log(CKPT_LOG, "recovery: tenant '%s': %u zone(s) with data of its files "
			       "hold less than the metadata says: they were reset or rewritten by "
			       "someone else; reads of the files there fail with EIO", n->name,
			       zns_stream_lost_zones(n->st));
		if (r) {
			snprintf(err, errlen, "tenant '%s': cannot recover its stream: %s", n->name,
				 strerror(-r));
			return r;
		}
	}
	return 0;
}

static int ensure_root(struct ckpt_ctx *c)
{
	struct ckpt_node *n;

	if (c->next_ino < 2)
		c->next_ino = 2;
	if (ckpt_get(c, 1))
		return 0;
	n = ckpt_node_alloc();
	if (!n || !(n->name = strdup(""))) {
		if (n)
			ckpt_node_release(n);
		return -ENOMEM;
	}
	n->ino = 1;
	n->mode = S_IFDIR | 0755;
	ckpt_touch(n);
	return ckpt_place(c, n);
}

/* ------------------------------------------------------------- identity */

static int write_label(struct ckpt_ctx *c, char *err, size_t errlen)
{
	int r = zns_label_new(&c->dev_id);

	if (!r)
		r = zns_label_write(c->dev, &c->dev_id);
	if (r) {
		snprintf(err, errlen, "zns=%s: cannot write the identity label to zone 0: %s",
			 c->dev_path, strerror(-r));
		return r;
	}
	c->has_id = true;
	return 0;
}

/* Everything but zone 0 back to empty: the operator gave the device to this pool. */
static int reset_device(struct ckpt_ctx *c, char *err, size_t errlen)
{
	const struct zns_geometry *g = zns_dev_geometry(c->dev);

	for (uint32_t z = 1; z < g->nr_zones; z++) {
		int r = zns_zone_reset(c->dev, z);

		if (r) {
			snprintf(err, errlen, "zns=%s: force_new_pool: cannot reset zone %u: %s",
				 c->dev_path, z, strerror(-r));
			return r;
		}
	}
	nl_log(CKPT_LOG, "force_new_pool: zns=%s reset for the new pool %s", c->dev_path, c->pool_path);
	return 0;
}

/* A new pool takes only a device that holds nothing, unless told to. */
static int claim_device(struct ckpt_ctx *c, int label, char *err, size_t errlen)
{
	int used = label == -ENOENT ? zns_dev_first_written(c->dev, 1) : 0;

	if (used < 0 && used != -ENOENT)
		return used;
	if (used >= 0 && !c->force_new_pool) {
		snprintf(err, errlen, "zns=%s holds data (%s) and %s is a new metadata pool: if "
			 "meta=%s is a typo, mount with the pool that wrote the device; to start "
			 "over, reset it with 'nlayerfs-zns reset %s all' or mount with "
			 "force_new_pool", c->dev_path, label == -ENOENT ? "written zones" :
			 label ? "zone 0 is not an nlayerfs label" : "another pool's checkpoints",
			 c->pool_path, c->meta_dir, c->dev_path);
		return -EEXIST;
	}
	if (used >= 0) {
		int r = reset_device(c, err, errlen);

		if (r)
			return r;
	}
	return write_label(c, err, errlen);
}

/*
 * The pool and the device must have been made together: a pool never
 * resets, finishes or writes zones of a device it did not write.
 */
static int check_identity(struct ckpt_ctx *c, char *err, size_t errlen)
{
	struct zns_label l;
	char have[40], want[40];
	int label = zns_label_read(c->dev, &l);

	if (label && label != -ENOENT && label != -EINVAL) {
		snprintf(err, errlen, "zns=%s: cannot read the identity label: %s", c->dev_path,
			 strerror(-label));
		return label;
	}
	if (!c->loaded)
		return claim_device(c, label, err, errlen);
	if (!c->has_id) {
		/* a pool of layout 1 adopts its device if zone 0 is free */
		if (label == -ENOENT)
			return write_label(c, err, errlen);
		snprintf(err, errlen, "%s: made before device identities, and zone 0 of zns=%s "
			 "is in use: mount it with the build that made it", c->pool_path,
			 c->dev_path);
		return -EEXIST;
	}
	zns_label_format(&c->dev_id, want, sizeof(want));
	if (label) {
		snprintf(err, errlen, "%s: its checkpoints are on the device with identity %s, "
			 "but zns=%s %s: give the zns= this pool was made with (or move the pool "
			 "away if that device was reset on purpose)", c->pool_path, want,
			 c->dev_path, label == -ENOENT ? "has no identity label (reset or new)" :
			 "is not labelled by nlayerfs");
		return -EEXIST;
	}
	if (memcmp(l.id, c->dev_id.id, sizeof(l.id))) {
		zns_label_format(&l, have, sizeof(have));
		snprintf(err, errlen, "%s belongs to the device with identity %s, but zns=%s is "
			 "%s, another pool's: check meta= and zns=", c->pool_path, want,
			 c->dev_path, have);
		return -EEXIST;
	}
	return 0;
}

/* Open the device and the store, bring the streams back and compare the
 * write pointers with the metadata. Runs in the daemon (streams start
 * threads, which a fork would lose). */
int ckpt_recover(struct ckpt_ctx *c, char *err, size_t errlen)
{
	const struct zns_geometry *g;
	char why[512];
	int r = zns_open_why(c->dev_path, &c->dopts, &c->dev, why, sizeof(why));

	if (r == -EINVAL && (c->dopts.channels || c->dopts.ways)) {
		snprintf(err, errlen, "zns=%s: refused with channels=%u,ways=%u (at least 1 each, "
			 "channels x ways at most the zone count): %s", c->dev_path,
			 c->dopts.channels, c->dopts.ways, why);
		return r;
	}
	if (r) {
		snprintf(err, errlen, "zns=%s: %s", c->dev_path, *why ? why : strerror(-r));
		return r;
	}
	g = zns_dev_geometry(c->dev);
	if (c->nr_zones && (c->nr_zones != g->nr_zones || c->zone_size != g->zone_size)) {
		snprintf(err, errlen, "%s: the metadata describes another device (%u zones of %llu "
			 "bytes, the device has %u of %llu)", c->pool_path, c->nr_zones,
			 (unsigned long long)c->zone_size, g->nr_zones,
			 (unsigned long long)g->zone_size);
		return -EINVAL;
	}
	r = zns_store_new(c->dev, &c->sopts, &c->store);
	if (r == -EINVAL) {
		snprintf(err, errlen, "stripe_unit=%llu: must be a multiple of the block size "
			 "(%u) that divides the zone capacity (%llu) of zns=%s",
			 (unsigned long long)c->sopts.stripe_unit, g->block_size,
			 (unsigned long long)g->zone_cap, c->dev_path);
		return r;
	}
	/* the restored allocation takes this mount's admission= */
	if (!r && c->alloc_blob) {
		r = zns_store_restore_alloc(c->store, c->alloc_blob, c->alloc_len);
		/* tenants' groups would be other zones: never reinterpret them */
		if (r == -ERANGE) {
			snprintf(err, errlen, "%s: the tenants' zone groups were laid out for "
				 "another number of groups than this mount's %u (channels=%u x "
				 "ways=%u): mount with the channels= and ways= it was made with",
				 c->pool_path, zns_nr_groups(g), g->channels, g->ways);
			return r;
		}
	}
	if (r) {
		snprintf(err, errlen, "zns=%s: cannot set up the store: %s", c->dev_path, strerror(-r));
		return r;
	}
	r = check_identity(c, err, errlen);
	if (r)
		return r;
	r = ensure_root(c);
	if (!r)
		r = recover_tenants(c, err, errlen);
	if (!r) {
		c->recovered = true;
		r = ckpt_commit(c);
	}
	if (r && !*err)
		snprintf(err, errlen, "recovery failed: %s", strerror(-r));
	return r;
}

void ckpt_shutdown(struct ckpt_ctx *c)
{
	/* A mount that failed recovery holds a partial tree (or an empty
	 * allocation): writing it would overwrite the pool's tenants. */
	if (c->store && c->recovered)
		ckpt_commit(c);
	for (uint64_t i = 0; i < c->n_nodes; i++) {
		struct ckpt_node *n = c->nodes[i];

		if (!n)
			continue;
		if (n->st)
			zns_stream_close(n->st);
		n->st = NULL;
		ckpt_node_release(n);
	}
	free(c->nodes);
	free(c->pend);
	ckpt_dirs_free(c);
	nl_tab_replay_free(&c->replay);
	if (c->store)
		zns_store_free(c->store);
	if (c->dev)
		zns_close(c->dev);
	if (c->pop)
		pmemobj_close(c->pop);
	/* a mistyped meta= that was refused leaves nothing behind */
	if (c->pool_created && !c->recovered) {
		unlink(c->pool_path);
		rmdir(c->meta_dir);
	}
	free(c->pool_path);
	free(c->meta_dir);
	free(c->dev_path);
	free(c->alloc_blob);
	free(c->dead);
}
