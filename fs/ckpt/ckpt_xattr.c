// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The tenant bandwidth, the one extended attribute of the checkpoint mount.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fs/ckpt/ckpt.h"
#include "tier/tier.h"

/* Only the tenant bandwidth is an attribute here. Changing it re-reserves
 * the tenant's groups, which is possible while its stream is empty. */
static int set_bandwidth(struct ckpt_ctx *c, struct ckpt_node *t, uint64_t bw)
{
	struct zns_stream *st = NULL;
	int r;

	ckpt_wait_appends(c, t);
	if (!t->st)
		return -ENOTSUP;
	if (zns_stream_end(t->st))
		return -EBUSY;
	ckpt_drop_pending(c, t->st);
	zns_stream_destroy(t->st);
	t->st = NULL;
	r = zns_stream_create(c->store, t->tenant, bw, &st);
	if (r) {
		nl_log(CKPT_LOG, "tenant '%s': cannot reserve groups for %llu bytes/s: %s", t->name,
		       (unsigned long long)bw, strerror(-r));
		if (zns_stream_create(c->store, t->tenant, t->bandwidth, &t->st))
			nl_log(CKPT_LOG, "tenant '%s': lost its groups", t->name);
		return r == -ENOSPC ? -EDQUOT : r;
	}
	t->st = st;
	t->bandwidth = bw;
	return ckpt_commit(c);
}

void ckpt_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			  size_t size, int flags)
{
	struct ckpt_ctx *c = ckpt_ctx_of(req);
	struct ckpt_node *n;
	char tmp[64];
	uint64_t bw;
	int r;

	(void)flags;
	r = ckpt_lock_get(c, ino, &n);
	if (r)
		goto out;
	if (strcmp(name, CKPT_BW_XATTR) || !n->st) {
		r = -ENOTSUP;
		goto out;
	}
	snprintf(tmp, sizeof(tmp), "%.*s", (int)(size < 63 ? size : 63), value);
	if (tier_parse_rate(tmp, &bw) || !bw) {
		r = -EINVAL;
		goto out;
	}
	r = set_bandwidth(c, n, bw);
out:
	pthread_mutex_unlock(&c->lock);
	fuse_reply_err(req, -r);
}

void ckpt_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct ckpt_ctx *c = ckpt_ctx_of(req);
	struct ckpt_node *n;
	char tmp[32];
	int len = 0, r;

	r = ckpt_lock_get(c, ino, &n);
	if (!r && (strcmp(name, CKPT_BW_XATTR) || n->tino != n->ino))
		r = -ENODATA;
	else if (!r)
		len = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)n->bandwidth);
	pthread_mutex_unlock(&c->lock);
	if (r)
		fuse_reply_err(req, -r);
	else if (!size)
		fuse_reply_xattr(req, len);
	else if (size < (size_t)len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, tmp, len);
}

void ckpt_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct ckpt_ctx *c = ckpt_ctx_of(req);
	struct ckpt_node *n;
	bool tenant;

	pthread_mutex_lock(&c->lock);
	n = ckpt_get(c, ino);
	tenant = n && n->tino == n->ino && n->ino != 1;
	pthread_mutex_unlock(&c->lock);
	if (!tenant)
		fuse_reply_xattr(req, 0);
	else if (!size)
		fuse_reply_xattr(req, sizeof(CKPT_BW_XATTR));
	else if (size < sizeof(CKPT_BW_XATTR))
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, CKPT_BW_XATTR, sizeof(CKPT_BW_XATTR));
}
