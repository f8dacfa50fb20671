// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Front end of the checkpoint mount: options, metadata load, the keeper and
 * its first server, mount, loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <syslog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fs/ckpt/ckpt.h"
#include "fs/keeper/keeper.h"
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

int ckpt_fuse_args(struct fuse_args *args, const char *prog, struct nl_options *o,
		   const char *dev)
{
	char own[4096];

	if (snprintf(own, sizeof(own), "fsname=%s,subtype=nlayerfs-ckpt", dev) >=
	    (int)sizeof(own))
		return -E2BIG;
	return nl_session_args(args, prog, own, o);
}

int ckpt_ctx_setup(struct ckpt_ctx *c, struct nl_options *o, char *err, size_t errlen)
{
	int r;

	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->idle, NULL);
	r = parse_opts(c, o, err, errlen);
	return r ? r : ckpt_meta_load(c, c->meta_dir, err, errlen);
}

/*
 * A background mount returns once the mount is usable or has failed; the
 * device is opened only in the server (the streams' writer threads must
 * start there), so fuse_daemonize, which reports success as soon as it
 * forks, cannot tell. The parent waits on a pipe instead: the keeper writes
 * the exit status there once the first server has mounted or failed; EOF
 * means it died while starting.
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

/* A started daemon loses its terminal. */
static void quiet_stdio(void)
{
	int null = open("/dev/null", O_RDWR);

	if (null < 0)
		return;
	dup2(null, STDIN_FILENO);
	dup2(null, STDOUT_FILENO);
	dup2(null, STDERR_FILENO);
	if (null > STDERR_FILENO)
		close(null);
}

/* Tell a waiting parent how the start went. */
static void report_start(int *notify, char status)
{
	if (*notify < 0)
		return;
	if (!status)
		quiet_stdio();
	if (write(*notify, &status, 1) != 1)
		status = 1;
	close(*notify);
	*notify = -1;
}

/* ---- the first server ---- */

struct first_server {
	struct nl_options *o;
	struct nl_tab *tab;
	int sock;		/* to the keeper */
	bool background;
};

static int send_fd(int sock, int fd)
{
	char byte = 0, ctl[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
			     .msg_controllen = sizeof(ctl) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &mh, MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

static int recv_fd(int sock)
{
	char byte, ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
			     .msg_controllen = sizeof(ctl) };
	struct cmsghdr *cm;
	int fd;

	if (recvmsg(sock, &mh, MSG_CMSG_CLOEXEC) != 1)
		return -1;
	cm = CMSG_FIRSTHDR(&mh);
	if (!cm || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len != CMSG_LEN(sizeof(int)))
		return -1;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

/* Mounted: the keeper gets the connection, and the server serves it. */
static int hand_connection(struct fuse_session *se, void *arg)
{
	struct first_server *f = arg;
	int r;

	if (f->background)
		quiet_stdio();
	r = send_fd(f->sock, fuse_session_fd(se));
	close(f->sock);
	return r ? 1 : 0;
}

static int serve_first(struct fuse_session *se, void *arg)
{
	struct first_server *f = arg;

	return nl_serve_first(f->tab, se, f->o) ? 1 : 0;
}

/* Every check (device, geometry, pool against device) before the mount. */
static int first_server(struct first_server *f, const char *prog)
{
	struct ckpt_ctx c = { .tab = f->tab };
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct nl_serve s = {
		.ops = &ckpt_ops, .userdata = &c, .opt = f->o, .args = &args,
		.mounted = hand_connection, .run = serve_first, .arg = f,
	};
	char err[1024] = "";
	int r = ckpt_ctx_setup(&c, f->o, err, sizeof(err));

	if (r) {
		fprintf(stderr, "nlayerfs: %s\n", *err ? err : strerror(-r));
	} else if (chdir("/") || ckpt_recover(&c, err, sizeof(err))) {
		nl_log(CKPT_LOG, "%s", *err ? err : strerror(errno));
		r = 1;
	} else if (ckpt_fuse_args(&args, prog, f->o, c.dev_path)) {
		fuse_opt_free_args(&args);
		r = 1;
	} else {
		r = nl_serve(&s);
	}
	pthread_mutex_lock(&c.lock);
	ckpt_shutdown(&c);
	pthread_mutex_unlock(&c.lock);
	return r ? 1 : 0;
}

/* Options are checked before anything forks; the pool is the server's. */
static int check_options(struct nl_options *o)
{
	struct ckpt_ctx c = { 0 };
	char err[1024] = "";
	int r = parse_opts(&c, o, err, sizeof(err));

	if (r)
		fprintf(stderr, "nlayerfs: %s\n", *err ? err : strerror(-r));
	free(c.dev_path);
	free(c.meta_dir);
	return r;
}

/*
 * The program stays as the mount's keeper (fs/keeper): it forks the first
 * server, which opens the pool and the device, mounts, and hands the
 * keeper the connection; a later server is started by the keeper.
 */
int nl_ckpt_main(struct nl_options *o, const char *prog, char **argv)
{
	struct first_server f = { .o = o, .background = !o->foreground };
	struct nl_keeper k;
	struct nl_tab tab = { .fd = -1 };
	char err[PATH_MAX + 64] = "";
	int notify = -1, sv[2], fuse_fd, r = 1;
	pid_t pid;

	openlog("nlayerfs", LOG_PID, LOG_DAEMON);
	if (check_options(o))
		goto out;
	if (nl_keeper_prepare(&k, o->mountpoint, argv, err, sizeof(err))) {
		fprintf(stderr, "nlayerfs: %s\n", err);
		goto out;
	}
	k.checkpoint = true;
	umask(0);
	if (!o->foreground && detach(&notify))
		goto out;
	if (nl_tab_create(&tab) || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		fprintf(stderr, "nlayerfs: cannot set up the mount's table: %m\n");
		goto out;
	}
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		if (notify >= 0)
			close(notify);
		notify = -1;
		f.tab = &tab;
		f.sock = sv[1];
		r = first_server(&f, prog);
		goto out;
	}
	close(sv[1]);
	fuse_fd = pid > 0 ? recv_fd(sv[0]) : -1;
	close(sv[0]);
	if (fuse_fd < 0) {
		/* the server said why on stderr before it died */
		if (pid > 0)
			waitpid(pid, NULL, 0);
		goto out;
	}
	r = nl_keeper_adopt(&k, pid, tab.fd, fuse_fd);
	if (r) {
		fprintf(stderr, "nlayerfs: the keeper cannot hold the mount: %s\n", strerror(-r));
		kill(pid, SIGTERM);
		r = 1;
		goto out;
	}
	report_start(&notify, 0);
	r = nl_keeper_run(&k);
out:
	nl_tab_close(&tab);
	nl_options_free(o);
	report_start(&notify, (char)(r ? 1 : 0));
	return r;
}
