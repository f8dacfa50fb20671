/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The keeper of a mount (keeper.h).
 *
 * The mount program mounts, then forks the first server and stays as the
 * keeper. When the server dies (killed, crashed, or asked to make way by
 * `nlayerfsctl restart`), the keeper execs the installed binary with the
 * mount's own arguments and hands it the /dev/fuse descriptor and the node
 * table. The new server rebuilds its nodes and handles from the table,
 * puts its FUSE session where the first FUSE_INIT left the old one, and
 * asks the kernel to send again the requests the dead server had read but
 * not answered (FUSE_NOTIFY_RESEND, Linux 6.9). The mount is gone when the
 * connection is: the keeper then exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fs/log.h"
#include "fs/session.h"
#include "fs/keeper/keeper.h"
#include "tier/tier.h"

#define YOUNG_MS 1000		/* between tries to start a server */
#define YOUNG_MAX 10		/* servers in a row that failed to start: give up */
#define RESTART_WAIT_MS 10000

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

uint64_t nl_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int nl_keeper_sock_path(const char *mountpoint, char *buf, size_t len)
{
	return tier_ctl_sock_path(mountpoint, "keeper", buf, len);
}

/* The OOM killer picks anything before the keeper, which holds the mount
 * and little memory (root only; others keep the default). */
static void set_oom_score_adj(const char *v)
{
	int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	if (write(fd, v, strlen(v)) != (ssize_t)strlen(v))
		nl_log(LOG_INFO, "oom_score_adj left as it was: %m");
	close(fd);
}

void nl_keeper_protect(void)
{
	set_oom_score_adj("-1000");
}

/* What a keeper starts (a server, a tier service) is chosen as any other
 * process would be. */
void nl_keeper_unprotect(void)
{
	set_oom_score_adj("0");
}

/* ---- before the mount ---- */

int nl_keeper_prepare(struct nl_keeper *k, const char *mountpoint, char **argv, char *err,
		      size_t errlen)
{
	ssize_t n;
	char *deleted;

	memset(k, 0, sizeof(*k));
	n = readlink("/proc/self/exe", k->exe, sizeof(k->exe) - 1);
	k->tab.fd = -1;
	k->fuse_fd = k->tab_fd = k->ctl_fd = k->sig_fd = -1;
	k->argv = argv;
	k->server = -1;
	if (n <= 0 || !getcwd(k->cwd, sizeof(k->cwd))) {
		snprintf(err, errlen, "cannot find the running binary: %s", strerror(errno));
		return -errno;
	}
	k->exe[n] = 0;
	/* an upgrade replaced the file this process runs: the new one is meant */
	deleted = strstr(k->exe, " (deleted)");
	if (deleted && !deleted[10])
		*deleted = 0;
	/* /dev/fd/N mounts (mount.fuse3) have no path of their own */
	if (!strncmp(mountpoint, "/dev/fd/", 8))
		snprintf(k->mnt, sizeof(k->mnt), "%s", mountpoint);
	else if (!realpath(mountpoint, k->mnt)) {
		snprintf(err, errlen, "%s: %s", mountpoint, strerror(errno));
		return -errno;
	}
	return 0;
}

/* ---- the keeper ---- */

int nl_keeper_listen(const char *mnt)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (nl_keeper_sock_path(mnt, sa.sun_path, sizeof(sa.sun_path)))
		return -ENAMETOOLONG;
	mkdir("/run/nlayerfs", 0700);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	unlink(sa.sun_path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || chmod(sa.sun_path, 0600) ||
	    listen(fd, 8)) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

FILE *nl_keeper_command(int fd, char *line, size_t len)
{
	size_t n = 0;
	ssize_t r;
	FILE *out;

	/* one short line, then the client shuts its side */
	while (n < len - 1 && (r = read(fd, line + n, len - 1 - n)) > 0)
		n += (size_t)r;
	line[n] = 0;
	line[strcspn(line, "\r\n")] = 0;
	out = fdopen(fd, "w");
	if (!out)
		close(fd);
	return out;
}

int nl_keeper_adopt(struct nl_keeper *k, pid_t server, int tab_fd, int fuse_fd)
{
	k->fuse_fd = fuse_fd;
	k->tab_fd = fcntl(tab_fd, F_DUPFD_CLOEXEC, 0);
	k->server = server;
	return k->tab_fd < 0 ? -errno : 0;
}

pid_t nl_keeper_fork(struct nl_keeper *k, int tab_fd, int fuse_fd)
{
	pid_t pid;
	int r = nl_keeper_adopt(k, -1, tab_fd, fuse_fd);

	if (r)
		return r;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		close(k->tab_fd);
		return 0;
	}
	k->server = pid;
	return pid;
}

/* The connection is gone once the mount is: the kernel says so on poll. */
bool nl_connection_gone(int fuse_fd)
{
	struct pollfd p = { .fd = fuse_fd, .events = POLLIN };

	return poll(&p, 1, 0) > 0 && (p.revents & (POLLERR | POLLHUP | POLLNVAL));
}

pid_t nl_takeover_spawn(const char *exe, char **argv, const char *cwd, const char *mnt,
			int fuse_fd, int tab_fd)
{
	char spec[PATH_MAX + 64];
	sigset_t none;
	pid_t pid;

	snprintf(spec, sizeof(spec), "%d,%d,%s", fuse_fd, tab_fd, mnt);
	fflush(NULL);
	pid = fork();
	if (pid != 0)
		return pid < 0 ? -errno : pid;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	nl_keeper_unprotect();
	/* the two descriptors cross the exec, nothing else does */
	fcntl(fuse_fd, F_SETFD, 0);
	fcntl(tab_fd, F_SETFD, 0);
	setenv(NL_TAKEOVER_ENV, spec, 1);
	if (chdir(cwd))
		nl_log(LOG_WARNING, "cannot enter %s: %m", cwd);
	execv(exe, argv);
	nl_log(LOG_ERR, "%s: cannot run %s: %m", mnt, exe);
	_exit(127);
}

static int start_server(struct nl_keeper *k)
{
	pid_t pid = nl_takeover_spawn(k->exe, k->argv, k->cwd, k->mnt, k->fuse_fd, k->tab_fd);

	if (pid < 0)
		return (int)pid;
	k->server = pid;
	atomic_fetch_add(&k->tab.head->replaced, 1);
	return 0;
}

static bool entry_parent_live(struct nl_keeper *k, const struct nl_tab_node *e)
{
	uint64_t p = e->slot[atomic_load(&e->cur) & 1].parent;

	return p == FUSE_ROOT_ID ||
	       (p > FUSE_ROOT_ID && p < NL_TAB_NODES &&
		atomic_load(&k->tab.nodes[p].state) != NL_TAB_FREE);
}

static void put_status(struct nl_keeper *k, FILE *f)
{
	struct nl_tab_head *h = k->tab.head;
	uint64_t nodes = 0, unlinked = 0, handles = 0, stale = 0;

	for (uint64_t i = 2; i < atomic_load(&h->node_high); i++) {
		const struct nl_tab_node *e = &k->tab.nodes[i];
		uint8_t s = atomic_load(&e->state);

		nodes += s != NL_TAB_FREE;
		unlinked += s == NL_TAB_UNLINKED;
		/* a named entry whose parent is gone can never be reached */
		if (s != NL_TAB_FREE)
			stale += !entry_parent_live(k, e);
	}
	for (uint64_t i = 1; i < atomic_load(&h->handle_high); i++) {
		const struct nl_tab_handle *fh = &k->tab.handles[i];

		if (atomic_load(&fh->state) == NL_TAB_FREE)
			continue;
		handles++;
		/* a handle of a node that is gone */
		stale += fh->node != FUSE_ROOT_ID && (fh->node >= NL_TAB_NODES ||
			 atomic_load(&k->tab.nodes[fh->node].state) == NL_TAB_FREE);
	}
	fprintf(f, "keeper_pid %d\nserver_pid %d\nreplaced %u\nlast_stall_us %llu\n"
		"table_nodes %llu\ntable_unlinked %llu\ntable_handles %llu\ntable_stale %llu\n"
		"binary %s\nmount %s\n",
		(int)getpid(), (int)atomic_load(&h->server_pid), atomic_load(&h->replaced),
		(unsigned long long)atomic_load(&h->last_stall_us), (unsigned long long)nodes,
		(unsigned long long)unlinked, (unsigned long long)handles,
		(unsigned long long)stale, k->exe, k->checkpoint ? "checkpoint" : "union");
}

static void keeper_step(struct nl_keeper *k, int timeout_ms, bool clients);

/* `restart`: the server is killed like any crash, and the keeper's answer
 * waits until the next one has taken over. */
static void do_restart(struct nl_keeper *k, FILE *f)
{
	long deadline = now_ms() + RESTART_WAIT_MS;
	pid_t old = k->server;

	if (old <= 0) {
		fprintf(f, "error no server is running\n");
		return;
	}
	kill(old, SIGKILL);
	while (now_ms() < deadline) {
		int32_t pid = atomic_load(&k->tab.head->server_pid);

		if (k->server != old && pid == k->server) {
			fprintf(f, "server_pid %d\nok\n", (int)pid);
			return;
		}
		/* the keeper's own loop starts the next server */
		keeper_step(k, 20, false);
	}
	fprintf(f, "error no new server took over within %d s\n", RESTART_WAIT_MS / 1000);
}

static void serve_client(struct nl_keeper *k, int fd)
{
	char line[64];
	FILE *out = nl_keeper_command(fd, line, sizeof(line));

	if (!out)
		return;
	if (!strcmp(line, "status")) {
		put_status(k, out);
		fprintf(out, "ok\n");
	} else if (!strcmp(line, "restart")) {
		do_restart(k, out);
	} else {
		fprintf(out, "error unknown command '%s' (status, restart)\n", line);
	}
	fclose(out);
}

static void server_died(struct nl_keeper *k, pid_t pid, int status)
{
	if (pid != k->server)
		return;
	k->server = -1;
	k->tab.head->died_us = nl_now_us();
	if (k->stopping || nl_connection_gone(k->fuse_fd))
		return;
	if (WIFSIGNALED(status))
		nl_log(LOG_WARNING, "%s: server %d killed by signal %d, starting another",
		       k->mnt, (int)pid, WTERMSIG(status));
	else
		nl_log(LOG_WARNING, "%s: server %d exited with %d, starting another", k->mnt,
		       (int)pid, WEXITSTATUS(status));
	/* one that never took the mount over failed to start: a broken
	 * binary or installation is not run in a tight loop */
	k->quick_deaths = atomic_load(&k->tab.head->server_pid) != pid ? k->quick_deaths + 1 : 0;
	if (k->quick_deaths >= YOUNG_MAX) {
		nl_log(LOG_ERR, "%s: %u servers in a row died before serving; unmounting", k->mnt,
		       k->quick_deaths);
		umount2(k->mnt, MNT_DETACH);
		k->stopping = true;
		return;
	}
	if (k->quick_deaths)
		usleep(100000u * k->quick_deaths);
	k->started_ms = now_ms();
	if (start_server(k))
		nl_log(LOG_ERR, "%s: cannot start a server: %m", k->mnt);
}

/* One round of the keeper's loop: a dead child, a signal, a client. */
static void keeper_step(struct nl_keeper *k, int timeout_ms, bool clients)
{
	struct pollfd p[2] = { { .fd = k->sig_fd, .events = POLLIN },
			       { .fd = k->ctl_fd, .events = POLLIN } };
	struct signalfd_siginfo si;
	int status, conn;
	pid_t pid;

	if (poll(p, clients && k->ctl_fd >= 0 ? 2 : 1, timeout_ms) < 0)
		p[0].revents = p[1].revents = 0;
	if (p[0].revents && read(k->sig_fd, &si, sizeof(si)) == sizeof(si) &&
	    si.ssi_signo != SIGCHLD && !k->stopping) {
		/* stop: the server unmounts and exits */
		k->stopping = true;
		if (k->server > 0)
			kill(k->server, SIGTERM);
	}
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		server_died(k, pid, status);
	if (clients && k->ctl_fd >= 0 && (p[1].revents & POLLIN) &&
	    (conn = accept4(k->ctl_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
		serve_client(k, conn);
}

int nl_keeper_run(struct nl_keeper *k)
{
	char path[PATH_MAX];
	sigset_t set;
	int r;

	prctl(PR_SET_NAME, "nlayerfs-keep");
	openlog("nlayerfs", LOG_PID, LOG_DAEMON);
	nl_keeper_protect();
	signal(SIGPIPE, SIG_IGN);
	r = nl_tab_attach(&k->tab, k->tab_fd);
	if (r) {
		nl_log(LOG_ERR, "%s: cannot map the node table: %s", k->mnt, strerror(-r));
		return 1;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	k->sig_fd = signalfd(-1, &set, SFD_CLOEXEC);
	if (k->sig_fd < 0) {
		nl_log(LOG_ERR, "%s: signalfd: %m", k->mnt);
		return 1;
	}
	if (strncmp(k->mnt, "/dev/fd/", 8)) {
		r = nl_keeper_listen(k->mnt);
		if (r < 0)
			nl_log(LOG_WARNING, "%s: no control socket (restart, status): %s", k->mnt,
			       strerror(-r));
		else
			k->ctl_fd = r;
	}
	k->started_ms = now_ms();
	/* a server that died before the signal mask was set is reaped here */
	while (k->server > 0 || !(k->stopping || nl_connection_gone(k->fuse_fd))) {
		keeper_step(k, 1000, true);
		/* a server that could not be started is tried again */
		if (k->server <= 0 && !k->stopping && !nl_connection_gone(k->fuse_fd) &&
		    now_ms() - k->started_ms >= YOUNG_MS) {
			k->started_ms = now_ms();
			if (start_server(k))
				nl_log(LOG_ERR, "%s: cannot start a server: %m", k->mnt);
		}
	}
	if (k->ctl_fd >= 0) {
		close(k->ctl_fd);
		if (!nl_keeper_sock_path(k->mnt, path, sizeof(path)))
			unlink(path);
	}
	close(k->sig_fd);
	nl_tab_close(&k->tab);
	return 0;
}
