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
#include <syslog.h>
#include <unistd.h>

#include "fs/ckpt/ckpt.h"
#include "fs/host/host.h"
#include "fs/keeper/keeper.h"
#include "fs/session.h"
#include "fs/union/union.h"
#include "fs/union/tier_glue.h"

/* What the process that stays after the mount needs: it becomes the
 * keeper of the mount, and forks the first server. */
struct union_run {
	struct nl_mount *m;
	struct nl_options *o;
	struct nl_keeper *k;
};

/* The union's session is known to its mount (it invalidates the kernel's
 * cache through it); the program forks only now: the parent returns when
 * the mount is usable. */
static int union_mounted(struct fuse_session *se, void *arg)
{
	struct union_run *u = arg;

	u->m->se = se;
	return fuse_daemonize(u->o->foreground);
}

static int keep_and_serve(struct fuse_session *se, void *arg)
{
	struct union_run *u = arg;
	pid_t pid = nl_keeper_fork(u->k, u->m->tab.fd, fuse_session_fd(se));

	if (pid < 0) {
		fprintf(stderr, "nlayerfs: cannot start the server: %s\n", strerror((int)-pid));
		return 1;
	}
	if (pid == 0)
		return nl_serve_first(&u->m->tab, se, u->o) ? 1 : 0;
	return nl_keeper_run(u->k);
}

static int serve(struct nl_mount *m, struct nl_options *o, const char *prog,
		 struct nl_keeper *k)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct union_run u = { .m = m, .o = o, .k = k };
	struct nl_serve s = {
		.ops = &nl_union_ops, .userdata = m, .opt = o, .args = &args,
		.mounted = union_mounted, .run = keep_and_serve, .arg = &u,
	};

	if (nl_fuse_args(&args, prog, o)) {
		fprintf(stderr, "nlayerfs: mount options too long\n");
		fuse_opt_free_args(&args);
		return 1;
	}
	return nl_serve(&s);
}

/* A server the keeper of a mount started, for either file system. */
static int takeover_main(int argc, char **argv, const char *spec)
{
	struct nl_options opt;
	struct nl_takeover t;
	char err[PATH_MAX + 1024] = "";
	int r;

	openlog("nlayerfs", LOG_PID, LOG_DAEMON);
	r = nl_takeover_parse(spec, &t);
	unsetenv(NL_TAKEOVER_ENV);
	if (r) {
		nl_log(LOG_ERR, "malformed %s: %s", NL_TAKEOVER_ENV, spec);
		return 1;
	}
	if (nl_options_parse(argc, argv, &opt, err, sizeof(err))) {
		nl_log(LOG_ERR, "%s: %s", t.mnt, err);
		return 1;
	}
	r = nl_options_extra(&opt, "zns") ? nl_ckpt_takeover(&opt, &t, argv[0]) :
					    nl_union_takeover(&opt, &t, argv[0]);
	nl_options_free(&opt);
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
		return takeover_main(argc, argv, getenv(NL_TAKEOVER_ENV));
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
		return nl_ckpt_main(&opt, argv[0], argv);
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
