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

int nl_union_session_resume(struct nl_mount *m, struct nl_options *o, const char *prog,
			    int fuse_fd, struct fuse_session **out)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct nl_resume rs = { .ops = &nl_union_ops, .userdata = m, .args = &args,
				.tab = &m->tab, .initialized = &m->initialized };
	int r = nl_fuse_args(&args, prog, o) ? -E2BIG : nl_session_resume(&rs, fuse_fd, out);

	if (!r)
		m->se = *out;
	fuse_opt_free_args(&args);
	return r;
}

static int session_fresh(struct nl_mount *m, struct nl_options *o, const char *prog,
			 int fuse_fd, struct fuse_session **out)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct nl_resume rs = { .ops = &nl_union_ops, .userdata = m, .args = &args,
				.tab = &m->tab, .initialized = &m->initialized };
	int r = nl_fuse_args(&args, prog, o) ? -E2BIG : nl_session_fresh(&rs, fuse_fd, out);

	if (!r)
		m->se = *out;
	fuse_opt_free_args(&args);
	return r;
}

static int serve_taken(struct nl_mount *m, struct nl_options *o, struct nl_takeover *t,
		       const char *prog)
{
	struct fuse_session *se = NULL;
	bool fresh;
	int r;

	/* a server killed before it read the kernel's FUSE_INIT left it
	 * waiting: this one starts the session as the first would */
	fresh = !m->tab.head->init_len;
	r = fresh ? session_fresh(m, o, prog, t->fuse_fd, &se) : nl_nodes_restore(m);
	if (!r && !fresh)
		r = nl_union_session_resume(m, o, prog, t->fuse_fd, &se);
	if (r) {
		nl_log(LOG_ERR, "%s: cannot take the mount over: %s", t->mnt, strerror(-r));
		return 1;
	}
	/* dup3 put the connection under the session's own number */
	t->fuse_fd = fuse_session_fd(se);
	if (fuse_set_signal_handlers(se)) {
		fuse_session_destroy(se);
		return 1;
	}
	nl_took_over_session(&m->tab, se, t->mnt);
	nl_log(LOG_INFO, "%s: taken over by server %d", t->mnt, (int)getpid());
	r = (fresh ? nl_serve_first(&m->tab, se, o) : nl_run_loop(se, o, nl_tab_recorder(&m->tab))) ? 1 : 0;
	nl_unmount_if_mounted(t);
	fuse_remove_signal_handlers(se);
	fuse_session_destroy(se);
	return r;
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
