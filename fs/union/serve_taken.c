/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A union mount taken over by a server its keeper started (keeper.h): the
 * mount context built as the first server built it, the nodes and handles
 * of the table made again (takeover.c), then the session resumed.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/log.h"
#include "fs/session.h"
#include "fs/keeper/keeper.h"
#include "fs/union/union.h"

int nl_union_session(struct nl_mount *m, struct nl_options *o, const char *prog, int fuse_fd,
		     bool fresh, struct fuse_session **out)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct nl_resume rs = { .ops = &nl_union_ops, .userdata = m, .args = &args,
				.tab = &m->tab, .initialized = &m->initialized };
	int r = nl_fuse_args(&args, prog, o) ? -E2BIG : nl_session_take(&rs, fuse_fd, fresh, out);

	if (!r)
		m->se = *out;
	fuse_opt_free_args(&args);
	return r;
}

static int serve_taken(struct nl_mount *m, struct nl_options *o, struct nl_takeover *t,
		       const char *prog)
{
	struct fuse_session *se = NULL;
	/* a server killed before it read the kernel's FUSE_INIT left it
	 * waiting: this one starts the session as the first would */
	bool fresh = !m->tab.head->init_len;
	int r = fresh ? 0 : nl_nodes_restore(m);

	if (!r)
		r = nl_union_session(m, o, prog, t->fuse_fd, fresh, &se);
	if (r) {
		nl_log(LOG_ERR, "%s: cannot take the mount over: %s", t->mnt, strerror(-r));
		return 1;
	}
	return nl_serve_taken(se, &m->tab, o, t, fresh);
}

int nl_union_takeover(struct nl_options *o, struct nl_takeover *t, const char *prog)
{
	struct nl_mount m = { 0 };
	char err[PATH_MAX + 1024] = "";
	int r = nl_image_layers(o, err, sizeof(err));

	if (r) {
		nl_log(LOG_ERR, "%s: %s", t->mnt, err);
		return 1;
	}
	umask(0);
	r = nl_tab_attach(&m.tab, t->tab_fd);
	if (r) {
		nl_log(LOG_ERR, "%s: the node table left by the server before is not usable: %s",
		       t->mnt, strerror(-r));
		return 1;
	}
	r = nl_mount_setup(&m, o, err, sizeof(err));
	if (chdir("/"))
		r = r ? r : -errno;
	if (r)
		nl_log(LOG_ERR, "%s: %s", t->mnt, *err ? err : strerror(-r));
	else
		r = serve_taken(&m, o, t, prog);
	nl_mount_free(&m);
	return r ? 1 : 0;
}
