// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The checkpoint mount under its keeper (ckpt.h): the handles of the
 * keeper's table, and a server that takes the mount over from one that
 * died.
 *
 * The new server loads the pool as a mount after a crash would (data a
 * dead server appended after its last commit is dropped, the row sealed),
 * then writes the journal again: every write the kernel had its answer for
 * since that commit. Open handles count again as opens of their files.
 * Only then is the result committed and the journal emptied, so a server
 * killed while taking over leaves the next one the same work.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "fs/ckpt/ckpt.h"
#include "fs/keeper/keeper.h"
#include "fs/session.h"

/* The table's entry of an open handle, or NULL. */
static const struct nl_tab_handle *live_handle(struct ckpt_ctx *c, uint64_t fh)
{
	const struct nl_tab_handle *h;

	if (!fh || fh >= NL_TAB_HANDLES)
		return NULL;
	h = &c->tab->handles[fh];
	return atomic_load(&h->state) == NL_TAB_LIVE ? h : NULL;
}

bool ckpt_fh_writes(struct ckpt_ctx *c, uint64_t fh)
{
	const struct nl_tab_handle *h = live_handle(c, fh);

	return h && h->kind == NL_TAB_FILE && (h->flags & O_ACCMODE) != O_RDONLY;
}

bool ckpt_fh_live(struct ckpt_ctx *c, uint64_t fh, uint64_t ino)
{
	const struct nl_tab_handle *h = live_handle(c, fh);

	return h && h->node == ino;
}

/* Open files of the dead server are open files of this one. */
static void handles_count(struct ckpt_ctx *c, unsigned *lost)
{
	uint64_t high = atomic_load(&c->tab->head->handle_high);

	for (uint64_t fh = 1; fh < high; fh++) {
		const struct nl_tab_handle *h = &c->tab->handles[fh];
		struct ckpt_node *n;

		if (atomic_load(&h->state) != NL_TAB_LIVE || h->kind != NL_TAB_FILE)
			continue;
		n = ckpt_get(c, h->node);
		if (!n) {
			/* unlinked while open: its data died with the server */
			(*lost)++;
			continue;
		}
		n->nopen++;
		if (ckpt_fh_writes(c, fh))
			n->nwrite++;
	}
}

/* The writes answered since the last commit, in the order they were made. */
static int journal_replay(struct ckpt_ctx *c, uint64_t *n_writes, uint64_t *bytes)
{
	struct nl_tab_jrec rec;
	const void *data;
	uint64_t pos = 0;

	while (nl_tab_journal_next(c->tab, &pos, &rec, &data)) {
		int r = ckpt_write_range(c, rec.ino, data, rec.len, rec.off);

		/* a file removed after its write: nothing to keep */
		if (r == -ENOENT)
			continue;
		if (r)
			return r;
		(*n_writes)++;
		*bytes += rec.len;
	}
	return 0;
}

/* The tree as the dead server left it to the kernel. */
static int tree_take(struct ckpt_ctx *c, const char *mnt, char *err, size_t errlen)
{
	uint64_t n_writes = 0, bytes = 0;
	unsigned lost = 0;
	int r;

	c->taking_over = c->replaying = true;
	r = ckpt_recover(c, err, errlen);
	/* the operations' lock: a write drops and takes it again around its append */
	pthread_mutex_lock(&c->lock);
	if (!r) {
		handles_count(c, &lost);
		r = journal_replay(c, &n_writes, &bytes);
		if (r)
			snprintf(err, errlen, "cannot write the journal again: %s", strerror(-r));
	}
	c->replaying = false;
	if (!r)
		r = ckpt_commit(c);
	pthread_mutex_unlock(&c->lock);
	if (r)
		return r;
	nl_tab_replay_take(c->tab, &c->replay);
	nl_log(lost ? LOG_WARNING : LOG_INFO, "%s: took over with %llu writes (%llu bytes) of "
	       "the journal written again; %u open files lost (unlinked while open)", mnt,
	       (unsigned long long)n_writes, (unsigned long long)bytes, lost);
	return 0;
}

static int serve_taken(struct ckpt_ctx *c, struct nl_options *o, struct nl_takeover *t,
		       const char *prog)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct nl_resume rs = { .ops = &ckpt_ops, .userdata = c, .args = &args, .tab = c->tab,
				.initialized = &c->initialized };
	struct fuse_session *se = NULL;
	bool fresh = !c->tab->head->init_len;
	int r = ckpt_fuse_args(&args, prog, o, c->dev_path);

	if (!r)
		r = nl_session_take(&rs, t->fuse_fd, fresh, &se);
	fuse_opt_free_args(&args);
	if (r) {
		nl_log(LOG_ERR, "%s: cannot take the mount over: %s", t->mnt, strerror(-r));
		return 1;
	}
	return nl_serve_taken(se, c->tab, o, t, fresh);
}

int nl_ckpt_takeover(struct nl_options *o, struct nl_takeover *t, const char *prog)
{
	struct nl_tab tab = { .fd = -1 };
	struct ckpt_ctx c = { .tab = &tab };
	char err[1024] = "";
	int r;

	umask(0);
	r = nl_tab_attach(&tab, t->tab_fd);
	if (r) {
		nl_log(LOG_ERR, "%s: the table left by the server before is not usable: %s",
		       t->mnt, strerror(-r));
		return 1;
	}
	r = ckpt_ctx_setup(&c, o, err, sizeof(err));
	if (!r && chdir("/"))
		r = -errno;
	if (!r)
		r = tree_take(&c, t->mnt, err, sizeof(err));
	if (r)
		nl_log(CKPT_LOG, "%s: %s", t->mnt, *err ? err : strerror(-r));
	else
		r = serve_taken(&c, o, t, prog);
	pthread_mutex_lock(&c.lock);
	ckpt_shutdown(&c);
	pthread_mutex_unlock(&c.lock);
	nl_tab_close(&tab);
	return r ? 1 : 0;
}
