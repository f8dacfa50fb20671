/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What every server started by a keeper does to take a mount over
 * (keeper.h), whichever file system it serves.
 *
 * libfuse answers nothing before FUSE_INIT, and the kernel sends that only
 * once per mount. The new session is therefore first made to serve
 * /dev/null, given the FUSE_INIT the first server received (kept in the
 * table) so that it negotiates the same, its reply going nowhere; then the
 * mount's /dev/fuse descriptor takes the place of /dev/null under the same
 * descriptor number.
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
#include <unistd.h>

#include "fs/log.h"
#include "fs/session.h"
#include "fs/keeper/keeper.h"

#ifndef FUSE_NOTIFY_RESEND
#define FUSE_NOTIFY_RESEND 7
#endif

int nl_takeover_parse(const char *spec, struct nl_takeover *t)
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

/* FUSE_NOTIFY_RESEND came with protocol 7.40 (Linux 6.9). Without it, the
 * servers keep each request they serve in the table. */
static bool kernel_resends(const struct nl_tab *tab)
{
	const struct fuse_init_in *in;

	if (getenv(NL_KEEP_REQUESTS_ENV))
		return false;
	if (tab->head->init_len < sizeof(struct fuse_in_header) + 2 * sizeof(uint32_t))
		return true;
	in = (const struct fuse_init_in *)(tab->head->init + sizeof(struct fuse_in_header));
	return in->major > 7 || (in->major == 7 && in->minor >= 40);
}

int nl_serve_first(struct nl_tab *tab, struct fuse_session *se, struct nl_options *o)
{
	struct fuse_buf buf = { 0 };
	int r;

	/* The first request is the kernel's FUSE_INIT: kept, so that a
	 * server after this one can negotiate exactly the same. */
	do
		r = fuse_session_receive_buf(se, &buf);
	while (r == -EINTR);
	if (r > 0) {
		if ((size_t)r <= sizeof(tab->head->init)) {
			memcpy(tab->head->init, buf.mem, (size_t)r);
			tab->head->init_len = (uint32_t)r;
		}
		fuse_session_process_buf(se, &buf);
	}
	free(buf.mem);
	atomic_store(&tab->head->keep_requests, !kernel_resends(tab));
	atomic_store(&tab->head->server_pid, (int32_t)getpid());
	return nl_run_loop(se, o, nl_tab_recorder(tab));
}

int nl_session_resume(const struct nl_resume *rs, int fuse_fd, struct fuse_session **out)
{
	const struct nl_tab_head *h = rs->tab->head;
	struct fuse_buf buf = { .size = h->init_len };
	struct fuse_session *se = NULL;
	char dev[32];
	int null = -1, r = -EPROTO;

	if (h->init_len < sizeof(struct fuse_in_header) + 8)
		goto out;
	se = fuse_session_new(rs->args, rs->ops, sizeof(*rs->ops), rs->userdata);
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	buf.mem = malloc(h->init_len);
	if (!se || null < 0 || !buf.mem)
		goto out;
	snprintf(dev, sizeof(dev), "/dev/fd/%d", null);
	if (fuse_session_mount(se, dev))
		goto out;
	memcpy(buf.mem, h->init, h->init_len);
	fuse_session_process_buf(se, &buf);
	if (!*rs->initialized)
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
	return r;
}

int nl_session_fresh(const struct nl_resume *rs, int fuse_fd, struct fuse_session **out)
{
	struct fuse_session *se = fuse_session_new(rs->args, rs->ops, sizeof(*rs->ops),
						   rs->userdata);
	char dev[32];

	snprintf(dev, sizeof(dev), "/dev/fd/%d", fuse_fd);
	if (!se || fuse_session_mount(se, dev)) {
		if (se)
			fuse_session_destroy(se);
		return -EIO;
	}
	*out = se;
	return 0;
}

/* The requests the dead server kept and did not answer, served here: the
 * kernel still waits for their answers, under their ids. */
static unsigned serve_kept(struct nl_tab *tab, struct fuse_session *se)
{
	struct fuse_buf kept[NL_TAB_REQS];
	unsigned n = 0;

	for (int i = 0; i < NL_TAB_REQS; i++) {
		memset(&kept[n], 0, sizeof(kept[n]));
		if (nl_tab_req_take(tab, i, &kept[n].mem, &kept[n].size) == 1)
			n++;
	}
	for (unsigned i = 0; i < n; i++) {
		fuse_session_process_buf(se, &kept[i]);
		free(kept[i].mem);
	}
	return n;
}

void nl_took_over_session(struct nl_tab *tab, struct fuse_session *se, const char *mnt)
{
	if (atomic_load(&tab->head->keep_requests)) {
		unsigned n = serve_kept(tab, se);

		if (n)
			nl_log(LOG_INFO, "%s: served %u requests the dead server had read", mnt, n);
	} else {
		nl_ask_resend(mnt, fuse_session_fd(se));
	}
	nl_took_over(tab);
}

int nl_session_take(const struct nl_resume *rs, int fuse_fd, bool fresh,
		    struct fuse_session **out)
{
	return fresh ? nl_session_fresh(rs, fuse_fd, out) : nl_session_resume(rs, fuse_fd, out);
}

int nl_serve_taken(struct fuse_session *se, struct nl_tab *tab, struct nl_options *o,
		   struct nl_takeover *t, bool fresh)
{
	int r;

	/* dup3 put the connection under the session's own number */
	t->fuse_fd = fuse_session_fd(se);
	if (fuse_set_signal_handlers(se)) {
		fuse_session_destroy(se);
		return 1;
	}
	nl_took_over_session(tab, se, t->mnt);
	nl_log(LOG_INFO, "%s: taken over by server %d", t->mnt, (int)getpid());
	r = fresh ? nl_serve_first(tab, se, o) : nl_run_loop(se, o, nl_tab_recorder(tab));
	nl_unmount_if_mounted(t);
	fuse_remove_signal_handlers(se);
	fuse_session_destroy(se);
	return r ? 1 : 0;
}

void nl_ask_resend(const char *mnt, int fuse_fd)
{
	struct fuse_out_header oh = { .len = sizeof(oh), .error = FUSE_NOTIFY_RESEND };

	if (write(fuse_fd, &oh, sizeof(oh)) != (ssize_t)sizeof(oh))
		nl_log(LOG_WARNING, "%s: the kernel cannot send again what the dead server "
		       "had read (FUSE_NOTIFY_RESEND needs Linux 6.9): %m; those requests "
		       "stay unanswered", mnt);
}

void nl_unmount_if_mounted(const struct nl_takeover *t)
{
	pid_t pid;

	if (nl_connection_gone(t->fuse_fd))
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

void nl_took_over(struct nl_tab *tab)
{
	uint64_t died = atomic_load(&tab->head->died_us);

	if (died)
		atomic_store(&tab->head->last_stall_us, nl_now_us() - died);
	atomic_store(&tab->head->server_pid, (int32_t)getpid());
}
