/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One serve loop for every mount this process serves itself.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fs/session.h"

int nl_session_args(struct fuse_args *args, const char *prog, const char *own,
		    const struct nl_options *o)
{
	char opts[8192];
	int len;

	/* Run by root, the mount is for every user of the host, with the
	 * kernel checking permissions as it would on any file system. */
	len = snprintf(opts, sizeof(opts), "%s%s%s", own,
		       geteuid() == 0 && !o->allow_other ? ",allow_other" : "",
		       geteuid() == 0 && !o->default_permissions ?
		       ",default_permissions" : "");
	if (len < (int)sizeof(opts) && o->fuse_opts && *o->fuse_opts)
		len += snprintf(opts + len, sizeof(opts) - len, ",%s", o->fuse_opts);
	if (len >= (int)sizeof(opts))
		return -E2BIG;
	if (fuse_opt_add_arg(args, prog) || fuse_opt_add_arg(args, "-o") ||
	    fuse_opt_add_arg(args, opts))
		return -ENOMEM;
	if (o->debug && fuse_opt_add_arg(args, "-d"))
		return -ENOMEM;
	return 0;
}

int nl_run_loop(struct fuse_session *se, struct nl_options *o)
{
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	const char *v;
	int r;

	if (!cfg)
		return -ENOMEM;
	v = nl_options_extra(o, "max_idle_threads");
	fuse_loop_cfg_set_idle_threads(cfg, v ? (unsigned int)atoi(v) : 10);
	v = nl_options_extra(o, "max_threads");
	if (v)
		fuse_loop_cfg_set_max_threads(cfg, atoi(v));
	fuse_loop_cfg_set_clone_fd(cfg, nl_options_extra(o, "clone_fd") != NULL);
	r = fuse_session_loop_mt(se, cfg);
	fuse_loop_cfg_destroy(cfg);
	return r;
}

int nl_serve(const struct nl_serve *s)
{
	struct fuse_session *se;
	int r = 1;

	se = fuse_session_new(s->args, s->ops, sizeof(*s->ops), s->userdata);
	if (!se)
		goto out;
	if (fuse_set_signal_handlers(se))
		goto out_session;
	if (fuse_session_mount(se, s->opt->mountpoint)) {
		fprintf(stderr, "nlayerfs: cannot mount on %s\n", s->opt->mountpoint);
		goto out_signals;
	}
	if (!s->mounted || s->mounted(se, s->arg) == 0)
		r = s->run ? s->run(se, s->arg) : nl_run_loop(se, s->opt) ? 1 : 0;
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out:
	fuse_opt_free_args(s->args);
	return r;
}
