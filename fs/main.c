/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nlayerfs: a union file system for container images.
 *
 * main() parses the options, checks them against the file system before
 * anything is mounted or written. A mount with tiering is served by the
 * host service of its NVM directory (host.c); any other builds its mount
 * context and runs the libfuse low-level loop on several threads itself.
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/ckpt/ckpt.h"
#include "fs/host/host.h"
#include "fs/keeper/keeper.h"
#include "fs/union/union.h"
#include "fs/union/tier_glue.h"

/* In the process that stays after the mount: the keeper, and the first
 * server it forks. */
static int keep_and_serve(struct nl_mount *m, struct nl_options *o, struct fuse_session *se,
			  struct nl_keeper *k)
{
	pid_t pid = nl_keeper_fork(k, m, se);

	if (pid < 0) {
		fprintf(stderr, "nlayerfs: cannot start the server: %s\n", strerror((int)-pid));
		return 1;
	}
	if (pid == 0)
		return nl_serve_first(m, se, o) ? 1 : 0;
	return nl_keeper_run(k);
}

static int serve(struct nl_mount *m, struct nl_options *o, const char *prog,
		 struct nl_keeper *k)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_lowlevel_ops ops = nl_union_ops;
	struct fuse_session *se = NULL;
	int r = 1;

	if (nl_fuse_args(&args, prog, o)) {
		fprintf(stderr, "nlayerfs: mount options too long\n");
		goto out;
	}
	se = fuse_session_new(&args, &ops, sizeof(ops), m);
	if (!se)
		goto out;
	m->se = se;
	if (fuse_set_signal_handlers(se))
		goto out;
	if (fuse_session_mount(se, o->mountpoint)) {
		fprintf(stderr, "nlayerfs: cannot mount on %s\n", o->mountpoint);
		goto out_signals;
	}
	/* Forks only now: the parent returns when the mount is usable. */
	if (fuse_daemonize(o->foreground) == 0)
		r = keep_and_serve(m, o, se, k);
	/* In the keeper the connection is gone by now (its server unmounted,
	 * or the mount was); then this only frees libfuse's copy of the
	 * mountpoint. */
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out:
	if (se)
		fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	return r;
}

int main(int argc, char **argv)
{
	struct nl_options opt;
	struct nl_mount m = { 0 };
	struct nl_keeper keeper;
	struct tier_config cfg;
	char err[PATH_MAX + 1024] = "";
	int r;

	/* a server the keeper of a mount started */
	if (getenv(NL_TAKEOVER_ENV))
		return nl_takeover_main(argc, argv, getenv(NL_TAKEOVER_ENV));
	/* a tier service a mount's keeper started */
	if (getenv(NL_SERVICE_ENV))
		return nl_host_service_main(argc, argv, getenv(NL_SERVICE_ENV));
	if (nl_options_parse(argc, argv, &opt, err, sizeof(err))) {
		fprintf(stderr, "nlayerfs: %s\n", err);
		fprintf(stderr, "Try 'nlayerfs --help' for more information.\n");
		return 1;
	}
	if (opt.show_help) {
		nl_options_usage(stdout, "nlayerfs");
		nl_options_free(&opt);
		return 0;
	}
	if (opt.show_version) {
		printf("nlayerfs version %s\nFUSE library version %s\n",
		       NLAYERFS_VERSION, fuse_pkgversion());
		nl_options_free(&opt);
		return 0;
	}
	if (nl_options_extra(&opt, "zns"))
		return nl_ckpt_main(&opt, argv[0]);
	r = nl_image_layers(&opt, err, sizeof(err));
	if (!r)
		r = nl_options_validate(&opt, err, sizeof(err));
	if (r) {
		fprintf(stderr, "nlayerfs: %s\n", err);
		nl_options_free(&opt);
		return 1;
	}
	r = nl_tier_load_config(&opt, &cfg, err, sizeof(err));
	if (r) {
		fprintf(stderr, "nlayerfs: %s\n", err);
		nl_options_free(&opt);
		return 1;
	}
	if (cfg.nvm_dir) {
		r = nl_host_mount(&opt, &cfg, argc, argv);
		tier_config_free(&cfg);
		nl_options_free(&opt);
		return r;
	}
	tier_config_free(&cfg);
	/* Modes arrive from the kernel with the caller's umask applied. */
	umask(0);
	r = nl_mount_setup(&m, &opt, err, sizeof(err));
	if (r) {
		fprintf(stderr, "nlayerfs: %s\n", *err ? err : strerror(-r));
		nl_mount_free(&m);
		nl_options_free(&opt);
		return 1;
	}
	r = nl_keeper_prepare(&keeper, opt.mountpoint, argv, err, sizeof(err));
	if (!r)
		r = serve(&m, &opt, argv[0], &keeper);
	else
		fprintf(stderr, "nlayerfs: %s\n", err);
	nl_mount_free(&m);
	nl_options_free(&opt);
	return r;
}
