/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The mount invocation of a tiered mount: it mounts, connects to the host
 * service of its NVM directory (starting it when nothing answers) and
 * hands it the mount; then it stays as the mount's keeper, which hands the
 * mount to the next service when one dies, and serves it without tiering
 * while no service can be had.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fs/host/host.h"
#include "fs/host/host_private.h"
#include "fs/log.h"
#include "fs/keeper/keeper.h"
#include "fs/union/union.h"
#include "fs/union/tier_glue.h"

#define START_WAIT_MS 15000	/* a cold pool open with its bad-block check */
#define FALLBACK_MS 1500	/* of failed tries before a mount is served without tiering */
#define RETRY_MIN_MS 200
#define RETRY_MAX_MS 5000	/* between tries for a service while served without it */

/* How a keeper starts a service: the installed binary, as a mount. */
struct service_exec {
	const char *exe;
	const char *cwd;
	char **argv;
};

static struct fuse_session *volatile kept_session;

/* Fork the service off, twice, so that it is nobody's child; its answer
 * comes through a pipe: 0 (started), -EAGAIN (another one is starting) or
 * an error with its message in @err. */
/* The service from the installed binary @exe (a keeper's, so that a new
 * version serves after an upgrade), given the mount's own arguments. */
static void __attribute__((noreturn)) exec_service(const struct service_exec *x, int report)
{
	char spec[32];

	snprintf(spec, sizeof(spec), "%d", report);
	fcntl(report, F_SETFD, 0);
	setenv(NL_SERVICE_ENV, spec, 1);
	nl_keeper_unprotect();
	if (chdir(x->cwd))
		syslog(LOG_WARNING, "cannot enter %s: %m", x->cwd);
	execv(x->exe, x->argv);
	syslog(LOG_ERR, "cannot run %s: %m", x->exe);
	_exit(127);
}

static int start_service(const char *dir, const struct tier_config *cfg, bool foreground,
			 const struct service_exec *x, char *err, size_t errlen)
{
	char buf[PATH_MAX + 1024];
	ssize_t n, got = 0;
	int pfd[2], st;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		close(pfd[0]);
		if (fork() == 0) {
			if (x)
				exec_service(x, pfd[1]);
			host_run_service(dir, cfg, foreground, pfd[1]);
		}
		_exit(0);
	}
	close(pfd[1]);
	if (pid > 0)
		waitpid(pid, &st, 0);
	while (pid > 0 && (n = read(pfd[0], buf + got, sizeof(buf) - 1 - (size_t)got)) > 0)
		got += n;
	close(pfd[0]);
	buf[got] = 0;
	if (pid < 0)
		return -errno;
	if (!strcmp(buf, "ok"))
		return 0;
	if (!strcmp(buf, "busy"))
		return -EAGAIN;
	snprintf(err, errlen, "%s", !strncmp(buf, "error ", 6) ? buf + 6 :
		 "the tier service died while starting (see the system log)");
	return -EIO;
}

static int try_connect(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (!connect(fd, (const struct sockaddr *)sa, sizeof(*sa)))
		return fd;
	close(fd);
	return -errno;
}

static int connect_or_start(const char *dir, const struct tier_config *cfg, bool foreground,
			    const struct service_exec *x, char *err, size_t errlen)
{
	long deadline = host_now_ms() + START_WAIT_MS;
	struct sockaddr_un sa;
	int fd, r;

	if (host_sock_addr(dir, &sa)) {
		host_say_too_long(dir, err, errlen);
		return -ENAMETOOLONG;
	}
	while (host_now_ms() < deadline) {
		fd = try_connect(&sa);
		if (fd >= 0)
			return fd;
		r = start_service(dir, cfg, foreground, x, err, errlen);
		if (r && r != -EAGAIN)
			return r;
		if (r)
			host_sleep_ms(50);	/* the other starter's service will answer */
	}
	snprintf(err, errlen, "the tier service of %s does not answer at %s", dir, sa.sun_path);
	return -ETIMEDOUT;
}

static int send_request(int fd, bool takeover, const char *cwd, const char *mnt, int argc,
			char **argv, int fuse_fd, int tab_fd)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(2 * sizeof(int))];
	} cb;
	int fds[2] = { fuse_fd, tab_fd };
	char *buf = malloc(REQ_MAX);
	size_t len = 0;
	struct iovec iov;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.b,
			     .msg_controllen = sizeof(cb.b) };
	struct cmsghdr *c;
	int r = 0;

	if (!buf)
		return -ENOMEM;
	for (int i = -3; i < argc && !r; i++) {
		const char *s = i == -3 ? (takeover ? "takeover" : "mount") : i == -2 ? cwd :
				i == -1 ? mnt : argv[i];
		size_t n = strlen(s) + 1;

		if (len + n > REQ_MAX)
			r = -E2BIG;
		else
			memcpy(buf + len, s, n), len += n;
	}
	iov.iov_base = buf;
	iov.iov_len = len;
	memset(&cb, 0, sizeof(cb));
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(c), fds, sizeof(fds));
	if (!r && sendmsg(fd, &mh, MSG_NOSIGNAL) < 0)
		r = -errno;
	free(buf);
	return r;
}

/* "ok" (with warnings after a newline), "error MESSAGE"; -ECONNRESET when
 * the service went away before it answered. */
static int read_reply(int fd, char *buf, size_t len)
{
	ssize_t n = recv(fd, buf, len - 1, 0);

	if (n <= 0)
		return -ECONNRESET;
	buf[n] = 0;
	return 0;
}

/* What a mount's keeper needs to hand its mount to a service again. */
struct host_keep {
	const char *dir;
	const struct tier_config *cfg;
	struct nl_options *o;
	const char *mnt;
	int argc;
	char **argv;
	char cwd[PATH_MAX];
	int fuse_fd;
	struct nl_tab tab;	/* the mount's node table, made here */
	int conn;		/* to the service serving the mount */
	struct service_exec x;	/* a service the keeper starts */
	char exe[PATH_MAX];
	/* while no service can be had: a server without tiering */
	pid_t plain;		/* its pid, or -1 */
	int ctl_fd;		/* the keeper's control socket meanwhile, or -1 */
	char why[PATH_MAX + 2048];	/* why no service takes the mount */
};

/* The binary this program was started from; after an upgrade replaced
 * it, the new one at the same path. */
static void installed_binary(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);
	char *deleted;

	buf[n > 0 ? n : 0] = 0;
	deleted = strstr(buf, " (deleted)");
	if (deleted && !deleted[10])
		*deleted = 0;
}

/* ---- the keeper: a mount without its service ---- */

/* The server a mount without tiering has, taking this one over from its
 * node table: the layers are plain directories, so every file is served,
 * from its layer. */
static int start_plain(struct host_keep *k)
{
	pid_t pid = nl_takeover_spawn(k->exe, k->argv, k->cwd, k->mnt, k->fuse_fd, k->tab.fd);

	if (pid < 0)
		return (int)pid;
	k->plain = pid;
	atomic_fetch_add(&k->tab.head->replaced, 1);
	return 0;
}

/* Killed as a crash would kill it: the next server takes the requests it
 * had read over from the kernel, and its intents from the table. */
static void stop_plain(struct host_keep *k)
{
	if (k->plain <= 0)
		return;
	kill(k->plain, SIGKILL);
	waitpid(k->plain, NULL, 0);
	k->plain = -1;
	atomic_store(&k->tab.head->died_us, nl_now_us());
}

static void reap_plain(struct host_keep *k)
{
	if (k->plain > 0 && waitpid(k->plain, NULL, WNOHANG) == k->plain) {
		k->plain = -1;
		atomic_store(&k->tab.head->died_us, nl_now_us());
	}
}

static void put_plain_status(struct host_keep *k, FILE *f)
{
	struct nl_tab_head *h = k->tab.head;

	fprintf(f, "keeper_pid %d\nserver_pid %d\nreplaced %u\nlast_stall_us %llu\n"
		"tiering off\ntier_nvm %s\ntier_error %s\nbinary %s\nok\n", (int)getpid(),
		(int)atomic_load(&h->server_pid), atomic_load(&h->replaced),
		(unsigned long long)atomic_load(&h->last_stall_us), k->dir, k->why, k->exe);
}

/* nlayerfsctl status and restart, while the keeper has no service. */
static void serve_keeper_client(struct host_keep *k, int fd)
{
	char line[64];
	FILE *out = nl_keeper_command(fd, line, sizeof(line));

	if (!out)
		return;
	if (!strcmp(line, "status"))
		put_plain_status(k, out);
	else
		fprintf(out, "error %s is served without tiering for now: the tier service of "
			"%s cannot start (%s); it is tried again\n", k->mnt, k->dir, k->why);
	fclose(out);
}

static void keeper_listen(struct host_keep *k)
{
	int fd;

	if (k->ctl_fd >= 0)
		return;
	fd = nl_keeper_listen(k->mnt);
	if (fd < 0)
		syslog(LOG_WARNING, "%s: no control socket (status): %s", k->mnt, strerror(-fd));
	else
		k->ctl_fd = fd;
}

static void keeper_unlisten(struct host_keep *k)
{
	char path[PATH_MAX];

	if (k->ctl_fd < 0)
		return;
	close(k->ctl_fd);
	k->ctl_fd = -1;
	if (!nl_keeper_sock_path(k->mnt, path, sizeof(path)))
		unlink(path);
}

/* @ms of waiting for the next try: clients are answered, a server that
 * died is reaped, an unmount ends the wait. */
static void keeper_wait(struct host_keep *k, long ms)
{
	long until = host_now_ms() + ms;
	struct pollfd p[2] = { { .fd = k->fuse_fd, .events = 0 },
			       { .fd = k->ctl_fd, .events = POLLIN } };
	int conn;

	while (host_now_ms() < until) {
		reap_plain(k);
		if (poll(p, k->ctl_fd >= 0 ? 2 : 1, (int)(until - host_now_ms())) < 0 && errno != EINTR)
			return;
		if (p[0].revents)
			return;	/* the mount is gone */
		if (k->ctl_fd >= 0 && (p[1].revents & POLLIN) &&
		    (conn = accept4(k->ctl_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
			serve_keeper_client(k, conn);
	}
	reap_plain(k);
}

/* No service for FALLBACK_MS: the mount is served without tiering. */
static void fall_back(struct host_keep *k)
{
	if (k->plain > 0)
		return;
	keeper_listen(k);
	if (start_plain(k)) {
		syslog(LOG_ERR, "%s: cannot start a server: %m", k->mnt);
		return;
	}
	nl_log(LOG_WARNING, "%s: served without tiering for now, every file from its layer: "
	       "the tier service of %s cannot start (%s); it is tried again", k->mnt, k->dir,
	       k->why);
}

/* One try: reach the service, hand it the mount, read its answer. */
static int ask_service(struct host_keep *k, bool takeover, char *reply, size_t len)
{
	int fd, r;

	fd = connect_or_start(k->dir, k->cfg, k->o->foreground, takeover ? &k->x : NULL, reply,
			      len);
	if (fd < 0)
		return fd;
	/* a service answers: the server without tiering makes way for it */
	stop_plain(k);
	r = send_request(fd, takeover, k->cwd, k->mnt, k->argc, k->argv, k->fuse_fd,
			 k->tab.fd);
	if (!r)
		r = read_reply(fd, reply, len);
	if (r)
		close(fd);
	else
		k->conn = fd;
	return r;
}

/* The service died with the mount still there: hand the mount to the next
 * service (started by the first keeper that asks), until one takes it or
 * the mount is gone. The kernel's requests wait meanwhile, for FALLBACK_MS
 * at most: then a server without tiering answers them until a service
 * takes the mount again. */
static void hand_over(struct host_keep *k)
{
	char reply[PATH_MAX + 2048];
	long since = host_now_ms(), pause = RETRY_MIN_MS;
	bool was_plain = false;

	atomic_store(&k->tab.head->died_us, nl_now_us());
	syslog(LOG_WARNING, "%s: the tier service of %s is gone; handing the mount to a new one",
	       k->mnt, k->dir);
	while (!nl_connection_gone(k->fuse_fd)) {
		*reply = 0;
		if (!ask_service(k, true, reply, sizeof(reply)) && !strncmp(reply, "ok", 2)) {
			atomic_fetch_add(&k->tab.head->replaced, 1);
			keeper_unlisten(k);
			if (was_plain)
				nl_log(LOG_NOTICE, "%s: tiered again, served by the tier service "
				       "of %s", k->mnt, k->dir);
			return;
		}
		if (k->conn >= 0)
			close(k->conn);
		k->conn = -1;
		snprintf(k->why, sizeof(k->why), "%s", !strncmp(reply, "error ", 6) ? reply + 6 :
			 *reply ? reply : "no answer");
		/* one line in the status */
		for (char *c = k->why; (c = strchr(c, '\n')); )
			*c = ' ';
		if (k->plain <= 0 && !was_plain)
			syslog(LOG_ERR, "%s: no tier service takes the mount: %s; trying again",
			       k->mnt, k->why);
		if (host_now_ms() - since >= FALLBACK_MS) {
			fall_back(k);
			was_plain = true;
			/* tried again ever less often while the mount is served */
			pause = pause * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : pause * 2;
		}
		keeper_wait(k, pause);
	}
	stop_plain(k);
	keeper_unlisten(k);
}

/* The keeper of a tiered mount: until the service says the mount is gone,
 * or the mount is gone with no service to say so. */
static void keep_mount(struct host_keep *k)
{
	char buf[16];
	ssize_t n;

	while (k->conn >= 0) {
		n = recv(k->conn, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n >= 4 && !memcmp(buf, "gone", 4))
			break;
		if (n > 0)
			continue;
		close(k->conn);
		k->conn = -1;
		if (!nl_connection_gone(k->fuse_fd))
			hand_over(k);
	}
	if (k->conn >= 0)
		close(k->conn);
}

/* Without -f the mount program returns now; its child keeps the mount. */
static bool become_keeper(bool foreground)
{
	pid_t pid;

	if (!foreground) {
		fflush(NULL);
		pid = fork();
		if (pid != 0)
			return false;
		host_detach(false);
	}
	prctl(PR_SET_NAME, "nlayerfs-keep");
	nl_keeper_protect();
	/* a fault test's kill point is for the service the mount found or
	 * started, not for the ones this keeper starts after it */
	unsetenv("NLAYERFS_FAULT");
	return true;
}

static int mount_here(struct nl_options *o, struct fuse_session **se)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	int r = -EIO;

	if (nl_fuse_args(&args, "nlayerfs", o)) {
		fprintf(stderr, "nlayerfs: mount options too long\n");
		goto out;
	}
	*se = fuse_session_new(&args, &nl_union_ops, sizeof(nl_union_ops), NULL);
	if (!*se)
		goto out;
	if (fuse_session_mount(*se, o->mountpoint)) {
		fprintf(stderr, "nlayerfs: cannot mount on %s\n", o->mountpoint);
		goto out;
	}
	r = 0;
out:
	fuse_opt_free_args(&args);
	return r;
}

int nl_host_mount(struct nl_options *o, const struct tier_config *cfg, int argc, char **argv)
{
	char dir[PATH_MAX], mnt[PATH_MAX], reply[PATH_MAX + 2048] = "";
	struct host_keep k = { .dir = dir, .cfg = cfg, .o = o, .mnt = mnt, .argc = argc,
			       .argv = argv, .conn = -1, .plain = -1, .ctl_fd = -1 };
	struct fuse_session *se = NULL;
	int r = -ECONNRESET;

	if (!realpath(cfg->nvm_dir, dir)) {
		fprintf(stderr, "nlayerfs: nvm=%s: %s\n", cfg->nvm_dir, strerror(errno));
		return 1;
	}
	if (!realpath(o->mountpoint, mnt)) {
		fprintf(stderr, "nlayerfs: %s: %s\n", o->mountpoint, strerror(errno));
		return 1;
	}
	if (!getcwd(k.cwd, sizeof(k.cwd)))
		snprintf(k.cwd, sizeof(k.cwd), "/");
	installed_binary(k.exe, sizeof(k.exe));
	k.x = (struct service_exec){ .exe = k.exe, .cwd = k.cwd, .argv = argv };
	k.tab.fd = -1;
	r = nl_tab_create(&k.tab);
	if (r) {
		fprintf(stderr, "nlayerfs: cannot make the node table: %s\n", strerror(-r));
		return 1;
	}
	r = -ECONNRESET;
	if (mount_here(o, &se)) {
		if (se)
			fuse_session_destroy(se);
		nl_tab_close(&k.tab);
		return 1;
	}
	k.fuse_fd = fuse_session_fd(se);
	/* a service that exits (idle) or dies as we ask: ask its successor */
	for (int i = 0; i < 3 && r == -ECONNRESET; i++) {
		*reply = 0;
		r = ask_service(&k, false, reply, sizeof(reply));
	}
	if (r == -ECONNRESET)
		snprintf(reply, sizeof(reply), "error the tier service of %s went away "
			 "(see the system log)", dir);
	if (r || strncmp(reply, "ok", 2)) {
		fprintf(stderr, "nlayerfs: %s\n", !strncmp(reply, "error ", 6) ? reply + 6 :
			*reply ? reply : strerror(-r));
		fuse_session_unmount(se);
		fuse_session_destroy(se);
		if (k.conn >= 0)
			close(k.conn);
		nl_tab_close(&k.tab);
		return 1;
	}
	if (reply[2] == '\n')
		fprintf(stderr, "nlayerfs: %s\n", reply + 3);
	/* The service serves the mount now; this process, or its child, keeps
	 * the connection and the node table, and hands them to the next
	 * service if this one dies. */
	if (become_keeper(o->foreground))
		keep_mount(&k);
	else
		close(k.conn);
	nl_tab_close(&k.tab);
	/* No unmount here. libfuse frees its copy of the mountpoint only when
	 * it unmounts, so the session is kept, reachable, until the program
	 * exits. */
	kept_session = se;
	return 0;
}
