/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A server that takes a union mount over from one that died (keeper.h).
 *
 * libfuse answers nothing before FUSE_INIT, and the kernel sends that only
 * once per mount. The new session is therefore first made to serve
 * /dev/null, given the FUSE_INIT the first server received (kept in the
 * node table) so that it negotiates the same, its reply going nowhere;
 * then the mount's /dev/fuse descriptor takes the place of /dev/null under
 * the same descriptor number.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fs/log.h"
#include "fs/session.h"
#include "fs/union/union.h"
#include "fs/keeper/keeper.h"

#ifndef FUSE_NOTIFY_RESEND
#define FUSE_NOTIFY_RESEND 7
#endif

struct takeover {
	int fuse_fd;
	int tab_fd;
	char mnt[PATH_MAX];
};

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int parse_spec(const char *spec, struct takeover *t)
{
	int n = 0;

	if (sscanf(spec, "%d,%d,%n", &t->fuse_fd, &t->tab_fd, &n) != 2 || !n ||
	    t->fuse_fd < 0 || t->tab_fd < 0 ||
	    snprintf(t->mnt, sizeof(t->mnt), "%s", spec + n) >= (int)sizeof(t->mnt))
		return -EINVAL;
	fcntl(t->fuse_fd, F_SETFD, FD_CLOEXEC);
	fcntl(t->tab_fd, F_SETFD, FD_CLOEXEC);
	return 0;
}

/* The session in the state the first FUSE_INIT left the old one in. On
 * success @fuse_fd is closed: the session has it under its own number. */
int nl_session_resume(struct nl_mount *m, struct nl_options *o, const char *prog, int fuse_fd,
		      struct fuse_session **out)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct nl_tab_head *h = m->tab.head;
	struct fuse_buf buf = { .size = h->init_len };
	struct fuse_session *se = NULL;
	char dev[32];
	int null = -1, r = -EPROTO;

	if (h->init_len < sizeof(struct fuse_in_header) + 8 ||
	    nl_fuse_args(&args, prog, o))
		goto out;
	se = fuse_session_new(&args, &nl_union_ops, sizeof(nl_union_ops), m);
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	buf.mem = malloc(h->init_len);
	if (!se || null < 0 || !buf.mem)
		goto out;
	m->se = se;
	snprintf(dev, sizeof(dev), "/dev/fd/%d", null);
	if (fuse_session_mount(se, dev))
		goto out;
	memcpy(buf.mem, h->init, h->init_len);
	fuse_session_process_buf(se, &buf);
	if (!m->initialized)
		goto out;
	/* the session's descriptor number now reaches the mount */
	if (dup3(fuse_fd, null, O_CLOEXEC) < 0) {
		r = -errno;
		goto out;
	}
	null = -1;
	close(fuse_fd);
	*out = se;
	se = NULL;
	r = 0;
out:
	if (se)
		fuse_session_destroy(se);
	else if (null >= 0 && r)
		close(null);
	free(buf.mem);
	fuse_opt_free_args(&args);
	return r;
}

/* A session on the mount's descriptor, before any FUSE_INIT. */
static int session_fresh(struct nl_mount *m, struct nl_options *o, const char *prog,
			 int fuse_fd, struct fuse_session **out)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se = NULL;
	char dev[32];
	int r = -EIO;

	if (nl_fuse_args(&args, prog, o))
		goto out;
	se = fuse_session_new(&args, &nl_union_ops, sizeof(nl_union_ops), m);
	snprintf(dev, sizeof(dev), "/dev/fd/%d", fuse_fd);
	if (!se || fuse_session_mount(se, dev))
		goto out;
	m->se = se;
	*out = se;
	se = NULL;
	r = 0;
out:
	if (se)
		fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	return r;
}

/* Requests the dead server read and never answered come again. */
void nl_ask_resend(struct nl_mount *m, int fuse_fd)
{
	struct fuse_out_header oh = { .len = sizeof(oh), .error = FUSE_NOTIFY_RESEND };

	if (write(fuse_fd, &oh, sizeof(oh)) != (ssize_t)sizeof(oh))
		nl_log(LOG_WARNING, "%s: the kernel cannot send again what the dead server "
		       "had read (FUSE_NOTIFY_RESEND needs Linux 6.9): %m; those requests "
		       "stay unanswered", m->opt->mountpoint);
}

/* The mount is this server's to end on SIGTERM, as the first one's was. */
static void unmount_if_mounted(struct takeover *t)
{
	struct pollfd p = { .fd = t->fuse_fd, .events = POLLIN };
	pid_t pid;

	if (poll(&p, 1, 0) > 0 && (p.revents & (POLLERR | POLLHUP)))
		return;
	if (!strncmp(t->mnt, "/dev/fd/", 8) || !umount2(t->mnt, MNT_DETACH))
		return;
	pid = fork();
	if (pid == 0) {
		execlp("fusermount3", "fusermount3", "-u", "-z", "--", t->mnt, (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, NULL, 0);
}

/* The stall the kernel saw, and who serves now. */
void nl_took_over(struct nl_mount *m)
{
	uint64_t died = atomic_load(&m->tab.head->died_us);

	if (died)
		atomic_store(&m->tab.head->last_stall_us, now_us() - died);
	atomic_store(&m->tab.head->server_pid, (int32_t)getpid());
}

static int serve_taken(struct nl_mount *m, struct nl_options *o, struct takeover *t,
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
		r = nl_session_resume(m, o, prog, t->fuse_fd, &se);
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
	nl_ask_resend(m, t->fuse_fd);
	nl_took_over(m);
	nl_log(LOG_INFO, "%s: taken over by server %d", t->mnt, (int)getpid());
	r = (fresh ? nl_serve_first(m, se, o) : nl_run_loop(se, o)) ? 1 : 0;
	unmount_if_mounted(t);
	fuse_remove_signal_handlers(se);
	fuse_session_destroy(se);
	return r;
}

int nl_takeover_main(int argc, char **argv, const char *spec)
{
	struct nl_options opt;
	struct nl_mount m = { 0 };
	struct takeover t;
	char err[PATH_MAX + 1024] = "";
	int r;

	openlog("nlayerfs", LOG_PID, LOG_DAEMON);
	r = parse_spec(spec, &t);
	unsetenv(NL_TAKEOVER_ENV);
	if (r) {
		nl_log(LOG_ERR, "malformed %s: %s", NL_TAKEOVER_ENV, spec);
		return 1;
	}
	r = nl_options_parse(argc, argv, &opt, err, sizeof(err));
	if (!r)
		r = nl_image_layers(&opt, err, sizeof(err));
	if (r) {
		nl_log(LOG_ERR, "%s: %s", t.mnt, err);
		return 1;
	}
	umask(0);
	r = nl_tab_attach(&m.tab, t.tab_fd);
	if (r) {
		nl_log(LOG_ERR, "%s: the node table left by the server before is not usable: %s",
		       t.mnt, strerror(-r));
		nl_options_free(&opt);
		return 1;
	}
	r = nl_mount_setup(&m, &opt, err, sizeof(err));
	if (chdir("/"))
		r = r ? r : -errno;
	if (r)
		nl_log(LOG_ERR, "%s: %s", t.mnt, *err ? err : strerror(-r));
	else
		r = serve_taken(&m, &opt, &t, argv[0]);
	nl_mount_free(&m);
	nl_options_free(&opt);
	return r ? 1 : 0;
}
