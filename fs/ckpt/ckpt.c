// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Front end of the checkpoint mount: options, metadata load, mount, loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "fs/ckpt/ckpt.h"
#include "fs/session.h"
#include "tier/tier.h"

static int opt_size(struct nl_options *o, const char *key, uint64_t *v, char *err,
		    size_t errlen)
{
	const char *s = nl_options_extra(o, key);

	if (s && tier_parse_rate(s, v)) {
		snprintf(err, errlen, "%s=%s: %s", key, s, tier_size_problem(s));
		return -EINVAL;
	}
	return 0;
}

/* The daemon may change to "/": relative paths are made absolute first. */
static char *absolute(const char *p)
{
	char cwd[4096], *r = NULL;

	if (p[0] == '/')
		return strdup(p);
	if (!getcwd(cwd, sizeof(cwd)) || asprintf(&r, "%s/%s", cwd, p) < 0)
		return NULL;
	return r;
}

/* channels=, ways=: a real device does not report them. */
static int opt_count(struct nl_options *o, const char *key, uint32_t *v, char *err,
		     size_t errlen)
{
	const char *s = nl_options_extra(o, key);
	unsigned long n;
	char *end;

	if (!s)
		return 0;
	errno = 0;
	n = strtoul(s, &end, 10);
	if (errno || end == s || *end || n == 0 || n > 65536) {
		snprintf(err, errlen, "%s=%s: not a count from 1 to 65536", key, s);
		return -EINVAL;
	}
	*v = (uint32_t)n;
	return 0;
}

static int parse_opts(struct ckpt_ctx *c, struct nl_options *o, char *err, size_t errlen)
{
	const char *adm = nl_options_extra(o, "admission");
	uint64_t zbw = 0;
	int r;

	if (!nl_options_extra(o, "meta")) {
		snprintf(err, errlen, "zns= needs meta=DIR for the checkpoint metadata");
		return -EINVAL;
	}
	c->dev_path = absolute(nl_options_extra(o, "zns"));
	c->meta_dir = absolute(nl_options_extra(o, "meta"));
	if (!c->dev_path || !c->meta_dir)
		return -ENOMEM;
	if (!o->mountpoint) {
		snprintf(err, errlen, "no mount point");
		return -EINVAL;
	}
	c->def_bw = 100ULL << 20;
	r = opt_size(o, "zone_bw", &zbw, err, errlen);
	if (!r)
		r = opt_size(o, "stripe_unit", &c->sopts.stripe_unit, err, errlen);
	if (!r)
		r = opt_size(o, "bandwidth", &c->def_bw, err, errlen);
	if (!r)
		r = opt_count(o, "channels", &c->dopts.channels, err, errlen);
	if (!r)
		r = opt_count(o, "ways", &c->dopts.ways, err, errlen);
	if (r)
		return r;
	c->sopts.zone_bw = zbw;
	c->sopts.reserved_zones = 1;	/* zone 0 holds the device's identity label */
	c->force_new_pool = nl_options_extra(o, "force_new_pool") != NULL;
	c->dopts.zone_bw = zbw;
	if (adm && !strcmp(adm, "strict")) {
		c->sopts.admission = ZNS_ADMIT_STRICT;
	} else if (adm && strcmp(adm, "fair")) {
		snprintf(err, errlen, "admission=%s: use fair or strict", adm);
		return -EINVAL;
	}
	return 0;
}

static int fuse_args_of(struct fuse_args *args, const char *prog, struct nl_options *o,
			const char *dev)
{
	char own[4096];

	if (snprintf(own, sizeof(own), "fsname=%s,subtype=nlayerfs-ckpt", dev) >=
	    (int)sizeof(own))
		return -E2BIG;
	return nl_session_args(args, prog, own, o);
}

/*
 * A background mount forks before the device is opened (the streams' writer
 * threads must start in the daemon), so the parent cannot learn the outcome
 * from fuse_daemonize, which reports success as soon as it forks. The parent
 * waits on a pipe instead: the daemon writes its exit status there once the
 * mount is usable or has failed; EOF means it died while starting.
 */
static int detach(int *notify)
{
	int p[2];
	char status = 1;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0) {
		perror("nlayerfs: pipe");
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		perror("nlayerfs: fork");
		return -1;
	}
	if (pid == 0) {
		close(p[0]);
		setsid();
		*notify = p[1];
		return 0;
	}
	close(p[1]);
	if (read(p[0], &status, 1) != 1) {
		fprintf(stderr, "nlayerfs: the checkpoint daemon died while starting (see the "
			"system log)\n");
		status = 1;
	}
	_exit(status);
}

/* Tell a waiting parent how the start went; a started daemon loses its terminal. */
static void report_start(int *notify, char status)
{
	int null;

	if (*notify < 0)
		return;
	if (!status) {
		null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
			dup2(null, STDERR_FILENO);
			if (null > STDERR_FILENO)
				close(null);
		}
	}
	if (write(*notify, &status, 1) != 1)
		status = 1;
	close(*notify);
	*notify = -1;
}

static int report_mounted(struct fuse_session *se, void *notify)
{
	(void)se;
	report_start(notify, 0);
	return 0;
}

/* @notify: the pipe to a waiting parent, told of a success here; of a
 * failure by the caller, once the pool's lock is released. */
static int serve(struct ckpt_ctx *c, struct nl_options *o, const char *prog, int *notify)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct nl_serve s = {
		.ops = &ckpt_ops, .userdata = c, .opt = o, .args = &args,
		.mounted = report_mounted, .arg = notify,
	};
	char err[1024] = "";

	if (!o->foreground && detach(notify))
		return 1;
	if (chdir("/"))
		return 1;
	/* every check (device, geometry, pool against device) before the mount */
	if (ckpt_recover(c, err, sizeof(err))) {
		nl_log(CKPT_LOG, "%s", err);
		return 1;
	}
	if (fuse_args_of(&args, prog, o, c->dev_path)) {
		fuse_opt_free_args(&args);
		return 1;
	}
	return nl_serve(&s);
}

int nl_ckpt_main(struct nl_options *o, const char *prog)
{
	struct ckpt_ctx c = { 0 };
	char err[1024] = "";
	int notify = -1, r;

	pthread_mutex_init(&c.lock, NULL);
	pthread_cond_init(&c.idle, NULL);
	openlog("nlayerfs", LOG_PID, LOG_DAEMON);
	r = parse_opts(&c, o, err, sizeof(err));
	if (!r)
		r = ckpt_meta_load(&c, c.meta_dir, err, sizeof(err));
	if (r) {
		fprintf(stderr, "nlayerfs: %s\n", *err ? err : strerror(-r));
		ckpt_shutdown(&c);
		nl_options_free(o);
		return 1;
	}
	umask(0);
	r = serve(&c, o, prog, &notify);
	pthread_mutex_lock(&c.lock);
	ckpt_shutdown(&c);
	pthread_mutex_unlock(&c.lock);
	nl_options_free(o);
	report_start(&notify, (char)r);
	return r;
}
