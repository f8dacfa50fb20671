/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The host service of an NVM directory: one process opens the tier (the
 * index pool, the promotion workers, the metadata thread) once and serves
 * every tiered mount of that directory, each in its own FUSE session.
 *
 * A mount invocation connects to NVM/host.sock (SOCK_SEQPACKET), or starts
 * the service when nothing answers. It mounts itself, exactly as a mount
 * without tiering does, and sends the service its cwd, the mountpoint's
 * real path, its argv and the /dev/fuse descriptor; the service answers
 * "ok" once the mount is served or "error MESSAGE". The service exits when
 * it has had no mount and no tier work for host_idle seconds.
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
#include "fs/log.h"
#include "fs/keeper/keeper.h"
#include "fs/union/union.h"
#include "fs/union/tier_glue.h"

#define HOST_SOCK "host.sock"
#define HOST_LOCK "host.lock"
#define REQ_MAX (256 * 1024)
#define START_WAIT_MS 15000	/* a cold pool open with its bad-block check */
#define FALLBACK_MS 1500	/* of failed tries before a mount is served without tiering */
#define RETRY_MIN_MS 200
#define RETRY_MAX_MS 5000	/* between tries for a service while served without it */

/* One mount the service serves. */
struct host_mount {
	struct host_mount *next;
	struct nl_host *host;
	struct nl_options opt;
	struct nl_mount m;
	struct fuse_session *se;
	int conn;		/* the invocation, told when the mount is gone */
	bool fd_taken;		/* the session closes the /dev/fuse descriptor */
	bool takeover;		/* a mount whose service before this one died */
	char *mountpoint;
	pthread_t thread;
};

struct nl_host {
	struct nl_tier_host tier;
	char dir[PATH_MAX];
	int listen_fd;
	pthread_mutex_t lock;	/* mounts */
	struct host_mount *mounts;
	unsigned n_mounts;
};

/* ---- shared by both sides ---- */

static int host_path(const char *dir, const char *name, char *out, size_t len)
{
	return snprintf(out, len, "%s/%s", dir, name) >= (int)len ? -ENAMETOOLONG : 0;
}

static int sock_addr(const char *dir, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	return host_path(dir, HOST_SOCK, sa->sun_path, sizeof(sa->sun_path));
}

static void __attribute__((noinline)) say_too_long(const char *dir, char *err, size_t errlen)
{
	snprintf(err, errlen, "nvm=%s: too long a path for its service socket %s/" HOST_SOCK
		 " (at most %zu bytes); use a shorter one", dir, dir,
		 sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* ---- the service: status ---- */

static void put_host_status(void *arg, FILE *f)
{
	struct nl_host *h = arg;

	pthread_mutex_lock(&h->lock);
	fprintf(f, "host_pid %d\nhost_nvm %s\nhost_mounts %u\n", (int)getpid(), h->dir,
		h->n_mounts);
	for (struct host_mount *hm = h->mounts; hm; hm = hm->next)
		fprintf(f, "host_mount %s\n", hm->mountpoint);
	pthread_mutex_unlock(&h->lock);
}

/* ---- the service: one mount ---- */

static void hm_free(struct host_mount *hm)
{
	if (hm->se)
		fuse_session_destroy(hm->se);
	nl_mount_free(&hm->m);
	nl_options_free(&hm->opt);
	if (hm->conn >= 0)
		close(hm->conn);
	free(hm->mountpoint);
	free(hm);
}

static void *mount_main(void *arg)
{
	struct host_mount *hm = arg;
	struct nl_host *h = hm->host;
	struct host_mount **p;

	/* a mount new to any service: its FUSE_INIT is kept for the next */
	if (hm->takeover)
		nl_run_loop(hm->se, &hm->opt);
	else
		nl_serve_first(&hm->m, hm->se, &hm->opt);
	syslog(LOG_INFO, "%s: unmounted", hm->mountpoint);
	/* a foreground invocation waits for this */
	send(hm->conn, "gone", 4, MSG_NOSIGNAL);
	pthread_mutex_lock(&h->lock);
	for (p = &h->mounts; *p && *p != hm; p = &(*p)->next)
		;
	if (*p)
		*p = hm->next;
	pthread_mutex_unlock(&h->lock);
	hm_free(hm);
	pthread_mutex_lock(&h->lock);
	h->n_mounts--;
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

/* Settings that are the host's, not a mount's: a mount that asks for
 * other values is told they apply when the service starts again. */
static void differing(const struct tier_config *h, const struct tier_config *m, char *out,
		      size_t len)
{
	size_t n = 0;

#define DIFF(field, key)                                                                   \
	if (h->field != m->field && n < len)                                                \
		n += (size_t)snprintf(out + n, len - n, "%s" key, n ? ", " : "");
	DIFF(nvm_size, "nvm_size")
	DIFF(workers, "workers")
	DIFF(promote, "promote")
	DIFF(index_size, "index_size")
	DIFF(trace_window, "trace_window")
	DIFF(trace_quiet, "trace_quiet")
	DIFF(range_threshold, "range_threshold")
	DIFF(layer_meta, "layer_meta")
	DIFF(writeback, "writeback")
	DIFF(host_idle, "host_idle")
#undef DIFF
	if ((!h->hdd_dir) != (!m->hdd_dir) || (h->hdd_dir && strcmp(h->hdd_dir, m->hdd_dir)))
		n += (size_t)snprintf(out + n, n < len ? len - n : 0, "%shdd", n ? ", " : "");
}

/* The request: "mount" or "takeover", cwd, real mountpoint, then argv,
 * NUL-separated. */
static int split_request(char *buf, size_t len, bool *takeover, char **cwd, char **mnt,
			 char ***argv, int *argc)
{
	size_t n = 0;
	char **v;

	if (!len || buf[len - 1])
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		n += !buf[i];
	if (n < 4 || (strcmp(buf, "mount") && strcmp(buf, "takeover")))
		return -EINVAL;
	*takeover = !strcmp(buf, "takeover");
	n--;
	buf += strlen(buf) + 1;
	v = calloc(n, sizeof(*v));
	if (!v)
		return -ENOMEM;
	*cwd = buf;
	*mnt = buf + strlen(buf) + 1;
	buf = *mnt + strlen(*mnt) + 1;
	*argc = (int)n - 2;
	for (int i = 0; i < *argc; i++, buf += strlen(buf) + 1)
		v[i] = buf;
	*argv = v;
	return 0;
}

/* Options relative to the invocation's directory: parsed there. Mount
 * requests are handled one at a time, and no other thread of the service
 * uses a relative path. */
static int parse_in(struct host_mount *hm, const char *cwd, int argc, char **argv, char *err,
		    size_t errlen)
{
	int r;

	if (chdir(cwd)) {
		snprintf(err, errlen, "the service cannot enter %s: %s", cwd, strerror(errno));
		return -errno;
	}
	r = nl_options_parse(argc, argv, &hm->opt, err, errlen);
	if (!r)
		r = nl_image_layers(&hm->opt, err, errlen);
	if (!r)
		r = nl_mount_setup(&hm->m, &hm->opt, err, errlen);
	if (chdir("/"))
		r = r ? r : -errno;
	return r;
}

static int start_session(struct host_mount *hm, const char *prog, int fuse_fd, char *err,
			 size_t errlen)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	char dev[32];
	int r = -EIO;

	if (nl_fuse_args(&args, prog, &hm->opt)) {
		snprintf(err, errlen, "mount options too long");
		goto out;
	}
	hm->se = fuse_session_new(&args, &nl_union_ops, sizeof(nl_union_ops), &hm->m);
	if (!hm->se) {
		snprintf(err, errlen, "cannot create the FUSE session");
		goto out;
	}
	hm->m.se = hm->se;
	/* libfuse takes a mounted /dev/fuse descriptor by this name */
	snprintf(dev, sizeof(dev), "/dev/fd/%d", fuse_fd);
	if (fuse_session_mount(hm->se, dev)) {
		snprintf(err, errlen, "cannot serve the /dev/fuse descriptor of %s", hm->mountpoint);
		goto out;
	}
	hm->fd_taken = true;
	r = 0;
out:
	fuse_opt_free_args(&args);
	return r;
}

/* A mount whose service died: its nodes and session, from its table. */
static int resume_session(struct host_mount *hm, const char *prog, int fuse_fd, char *err,
			  size_t errlen)
{
	int r = nl_nodes_restore(&hm->m);

	if (!r)
		r = nl_session_resume(&hm->m, &hm->opt, prog, fuse_fd, &hm->se);
	if (r) {
		snprintf(err, errlen, "cannot take %s over: %s", hm->mountpoint, strerror(-r));
		return r;
	}
	hm->fd_taken = true;
	nl_ask_resend(&hm->m, fuse_session_fd(hm->se));
	nl_took_over(&hm->m);
	return 0;
}

/* The node table the mount's keeper holds: this service's for the mount. */
static int attach_table(struct host_mount *hm, int tab_fd, char *err, size_t errlen)
{
	int r = nl_tab_attach(&hm->m.tab, tab_fd);

	if (r)
		snprintf(err, errlen, "the node table of %s is not usable: %s", hm->mountpoint,
			 strerror(-r));
	return r;
}

static int serve_mount(struct nl_host *h, struct host_mount *hm, char *buf, size_t len,
		       int fuse_fd, int *tab_fd, char *msg, size_t msglen)
{
	char *cwd, *mnt, **argv = NULL, diff[256] = "";
	pthread_attr_t attr;
	int argc, r;

	r = split_request(buf, len, &hm->takeover, &cwd, &mnt, &argv, &argc);
	if (r) {
		snprintf(msg, msglen, "a malformed mount request");
		return r;
	}
	hm->mountpoint = strdup(mnt);
	r = hm->mountpoint ? 0 : -ENOMEM;
	if (!r && *tab_fd >= 0) {
		r = attach_table(hm, *tab_fd, msg, msglen);
		if (!r)
			*tab_fd = -1;	/* the table's now */
	}
	if (!r)
		r = parse_in(hm, cwd, argc, argv, msg, msglen);
	if (!r && !hm->m.tier) {
		snprintf(msg, msglen, "no NVM directory in the options of %s", mnt);
		r = -EINVAL;
	}
	if (!r)
		r = nl_tier_attach(&hm->m, &h->tier, mnt, msg, msglen);
	/* a service killed before it read the kernel's FUSE_INIT left it
	 * waiting: the mount starts here as new */
	if (!r && hm->takeover && !hm->m.tab.head->init_len)
		hm->takeover = false;
	if (!r && hm->takeover)
		r = resume_session(hm, argv[0], fuse_fd, msg, msglen);
	else if (!r)
		r = start_session(hm, argv[0], fuse_fd, msg, msglen);
	free(argv);
	if (r)
		return r;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_mutex_lock(&h->lock);
	r = -pthread_create(&hm->thread, &attr, mount_main, hm);
	if (!r) {
		hm->next = h->mounts;
		h->mounts = hm;
		h->n_mounts++;
	}
	pthread_mutex_unlock(&h->lock);
	pthread_attr_destroy(&attr);
	if (r) {
		snprintf(msg, msglen, "cannot start a thread: %s", strerror(-r));
		return r;
	}
	differing(&h->tier.cfg, &hm->m.tier->cfg, diff, sizeof(diff));
	snprintf(msg, msglen, "ok");
	if (*diff)
		snprintf(msg, msglen, "ok\nthe tier service of %s (pid %d) runs with other "
			 "settings of %s; this mount's apply when it starts again (it exits "
			 "after host_idle seconds without mounts)", h->dir, (int)getpid(), diff);
	syslog(LOG_INFO, "%s: %s", mnt, hm->takeover ? "taken over" : "mounted");
	return 0;
}

/* The mount's /dev/fuse descriptor, and its node table when it has one. */
static int recv_request(int conn, char *buf, size_t cap, size_t *len, int *fd, int *tab_fd)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(2 * sizeof(int))];
	} cb;
	int fds[2] = { -1, -1 };
	struct iovec iov = { buf, cap };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.b,
			     .msg_controllen = sizeof(cb.b) };
	struct cmsghdr *c;
	ssize_t n = recvmsg(conn, &mh, MSG_CMSG_CLOEXEC);

	*fd = *tab_fd = -1;
	if (n <= 0)
		return n ? -errno : -ECONNRESET;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(fds, CMSG_DATA(c), c->cmsg_len - CMSG_LEN(0) >= 2 * sizeof(int) ?
			       2 * sizeof(int) : sizeof(int));
	*fd = fds[0];
	*tab_fd = fds[1];
	*len = (size_t)n;
	return *fd < 0 || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ? -EINVAL : 0;
}

static void handle_request(struct nl_host *h, int conn)
{
	struct host_mount *hm = calloc(1, sizeof(*hm));
	char *buf = malloc(REQ_MAX), msg[PATH_MAX + 1024] = "";
	size_t len = 0;
	int fuse_fd = -1, tab_fd = -1, r;

	r = hm && buf ? recv_request(conn, buf, REQ_MAX, &len, &fuse_fd, &tab_fd) : -ENOMEM;
	if (!r) {
		hm->host = h;
		hm->conn = conn;
		hm->m.workfd = -1;
		hm->m.tab.fd = -1;
		r = serve_mount(h, hm, buf, len, fuse_fd, &tab_fd, msg, sizeof(msg));
	}
	if (tab_fd >= 0)
		close(tab_fd);
	if (r && !*msg)
		snprintf(msg, sizeof(msg), "%s", strerror(-r));
	if (r) {
		char reply[sizeof(msg) + 8];
		int n = snprintf(reply, sizeof(reply), "error %s", msg);

		send(conn, reply, (size_t)n, MSG_NOSIGNAL);
		syslog(LOG_WARNING, "mount refused: %s", msg);
		if (fuse_fd >= 0 && !(hm && hm->fd_taken))
			close(fuse_fd);
		if (hm) {
			hm->conn = -1;
			hm_free(hm);
		}
		close(conn);
	} else {
		send(conn, msg, strlen(msg), MSG_NOSIGNAL);
	}
	free(buf);
}

/* ---- the service: start, serve, exit ---- */

static int listen_on(struct nl_host *h, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	int fd;

	if (sock_addr(h->dir, &sa)) {
		say_too_long(h->dir, err, errlen);
		return -ENAMETOOLONG;
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	/* a socket left by a service that was killed: we hold the lock */
	unlink(sa.sun_path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || chmod(sa.sun_path, 0600) ||
	    listen(fd, 64)) {
		snprintf(err, errlen, "cannot listen on %s: %s", sa.sun_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	h->listen_fd = fd;
	return 0;
}

/* Containers open many files, and every mount holds layer descriptors. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void detach(bool keep_stderr)
{
	int null = open("/dev/null", O_RDWR);

	setsid();
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		/* a foreground start keeps its messages (and sanitizer reports) */
		if (!keep_stderr)
			dup2(null, 2);
		if (null > 2)
			close(null);
	}
	if (chdir("/"))
		syslog(LOG_WARNING, "cannot enter /: %m");
	umask(0);
	prctl(PR_SET_NAME, "nlayerfs-host");
	openlog("nlayerfs", LOG_PID, LOG_DAEMON);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
}

static bool idle_now(struct nl_host *h)
{
	unsigned n;

	pthread_mutex_lock(&h->lock);
	n = h->n_mounts;
	pthread_mutex_unlock(&h->lock);
	return !n && nl_tier_host_idle(&h->tier);
}

static void serve_host(struct nl_host *h)
{
	long idle_since = -1, limit = (long)h->tier.cfg.host_idle * 1000L;
	char path[PATH_MAX + 16];
	struct pollfd p = { .fd = h->listen_fd, .events = POLLIN };

	for (;;) {
		if (poll(&p, 1, 200) > 0) {
			int conn = accept4(h->listen_fd, NULL, NULL, SOCK_CLOEXEC);

			if (conn >= 0)
				handle_request(h, conn);
			idle_since = -1;
			continue;
		}
		if (!idle_now(h))
			idle_since = -1;
		else if (idle_since < 0)
			idle_since = now_ms();
		if (idle_since >= 0 && now_ms() - idle_since >= limit)
			break;
	}
	/* no new client from here on; one that connected meanwhile sees the
	 * connection closed and starts a service again */
	close(h->listen_fd);
	if (!host_path(h->dir, HOST_SOCK, path, sizeof(path)))
		unlink(path);
	syslog(LOG_INFO, "%s: idle for %u s, exiting", h->dir, h->tier.cfg.host_idle);
}

static void tell(int fd, const char *msg)
{
	if (write(fd, msg, strlen(msg)) < 0)
		syslog(LOG_WARNING, "cannot answer the starting mount: %m");
	close(fd);
}

/* The grandchild of the first mount: never returns. @report gets "ok",
 * "busy" (another service holds the lock) or "error MESSAGE". */
static void __attribute__((noreturn)) run_service(const char *dir, const struct tier_config *cfg,
						  bool foreground, int report)
{
	static struct nl_host h;	/* the process's one host */
	char path[PATH_MAX + 16], err[PATH_MAX + 1024] = "", msg[sizeof(err) + 8];
	int lock;

	detach(foreground);
	nl_keeper_unprotect();
	snprintf(h.dir, sizeof(h.dir), "%s", dir);
	pthread_mutex_init(&h.lock, NULL);
	host_path(dir, HOST_LOCK, path, sizeof(path));
	lock = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock < 0) {
		snprintf(msg, sizeof(msg), "error cannot open %s: %s", path, strerror(errno));
		tell(report, msg);
		_exit(1);
	}
	if (flock(lock, LOCK_EX | LOCK_NB)) {
		tell(report, "busy");
		_exit(0);
	}
	if (nl_tier_host_open(&h.tier, cfg, err, sizeof(err)) || listen_on(&h, err, sizeof(err))) {
		snprintf(msg, sizeof(msg), "error %s", err);
		tell(report, msg);
		_exit(1);
	}
	h.tier.put_status = put_host_status;
	h.tier.arg = &h;
	syslog(LOG_INFO, "%s: tier service started", dir);
	tell(report, "ok");
	serve_host(&h);
	nl_tier_host_close(&h.tier);
	_exit(0);
}

/* ---- the mount invocation ---- */

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
			run_service(dir, cfg, foreground, pfd[1]);
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
	long deadline = now_ms() + START_WAIT_MS;
	struct sockaddr_un sa;
	int fd, r;

	if (sock_addr(dir, &sa)) {
		say_too_long(dir, err, errlen);
		return -ENAMETOOLONG;
	}
	while (now_ms() < deadline) {
		fd = try_connect(&sa);
		if (fd >= 0)
			return fd;
		r = start_service(dir, cfg, foreground, x, err, errlen);
		if (r && r != -EAGAIN)
			return r;
		if (r)
			sleep_ms(50);	/* the other starter's service will answer */
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

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static bool connection_gone(int fuse_fd)
{
	struct pollfd p = { .fd = fuse_fd, .events = POLLIN };

	return poll(&p, 1, 0) > 0 && (p.revents & (POLLERR | POLLHUP | POLLNVAL));
}

/* ---- the keeper: a mount without its service ---- */

/* The server a mount without tiering has, taking this one over from its
 * node table: the layers are plain directories, so every file is served,
 * from its layer. */
static int start_plain(struct host_keep *k)
{
	char spec[PATH_MAX + 64];
	pid_t pid;

	snprintf(spec, sizeof(spec), "%d,%d,%s", k->fuse_fd, k->tab.fd, k->mnt);
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		nl_keeper_unprotect();
		/* the two descriptors cross the exec, nothing else does */
		fcntl(k->fuse_fd, F_SETFD, 0);
		fcntl(k->tab.fd, F_SETFD, 0);
		setenv(NL_TAKEOVER_ENV, spec, 1);
		if (chdir(k->cwd))
			syslog(LOG_WARNING, "cannot enter %s: %m", k->cwd);
		execv(k->exe, k->argv);
		syslog(LOG_ERR, "%s: cannot run %s: %m", k->mnt, k->exe);
		_exit(127);
	}
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
	atomic_store(&k->tab.head->died_us, now_us());
}

static void reap_plain(struct host_keep *k)
{
	if (k->plain > 0 && waitpid(k->plain, NULL, WNOHANG) == k->plain) {
		k->plain = -1;
		atomic_store(&k->tab.head->died_us, now_us());
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
	size_t n = 0;
	ssize_t r;
	FILE *out;

	while (n < sizeof(line) - 1 && (r = read(fd, line + n, sizeof(line) - 1 - n)) > 0)
		n += (size_t)r;
	line[n] = 0;
	line[strcspn(line, "\r\n")] = 0;
	out = fdopen(fd, "w");
	if (!out) {
		close(fd);
		return;
	}
	if (!strcmp(line, "status"))
		put_plain_status(k, out);
	else
		fprintf(out, "error %s is served without tiering for now: the tier service of "
			"%s cannot start (%s); it is tried again\n", k->mnt, k->dir, k->why);
	fclose(out);
}

static void keeper_listen(struct host_keep *k)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (k->ctl_fd >= 0 || nl_keeper_sock_path(k->mnt, sa.sun_path, sizeof(sa.sun_path)))
		return;
	mkdir("/run/nlayerfs", 0700);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	unlink(sa.sun_path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || chmod(sa.sun_path, 0600) ||
	    listen(fd, 8)) {
		syslog(LOG_WARNING, "%s: no control socket (status): %m", k->mnt);
		close(fd);
		return;
	}
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
	long until = now_ms() + ms;
	struct pollfd p[2] = { { .fd = k->fuse_fd, .events = 0 },
			       { .fd = k->ctl_fd, .events = POLLIN } };
	int conn;

	while (now_ms() < until) {
		reap_plain(k);
		if (poll(p, k->ctl_fd >= 0 ? 2 : 1, (int)(until - now_ms())) < 0 && errno != EINTR)
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
	long since = now_ms(), pause = RETRY_MIN_MS;
	bool was_plain = false;

	atomic_store(&k->tab.head->died_us, now_us());
	syslog(LOG_WARNING, "%s: the tier service of %s is gone; handing the mount to a new one",
	       k->mnt, k->dir);
	while (!connection_gone(k->fuse_fd)) {
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
		if (now_ms() - since >= FALLBACK_MS) {
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
		if (!connection_gone(k->fuse_fd))
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
		detach(false);
	}
	prctl(PR_SET_NAME, "nlayerfs-keep");
	nl_keeper_protect();
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

/* A service started by a keeper (exec_service): the mount's arguments say
 * which tier; @spec is the descriptor its answer goes to. */
int nl_host_service_main(int argc, char **argv, const char *spec)
{
	struct nl_options opt;
	struct tier_config cfg;
	char err[PATH_MAX + 1024] = "", dir[PATH_MAX], msg[sizeof(err) + 8];
	int report = atoi(spec);

	unsetenv(NL_SERVICE_ENV);
	fcntl(report, F_SETFD, FD_CLOEXEC);
	if (nl_options_parse(argc, argv, &opt, err, sizeof(err)) ||
	    nl_tier_load_config(&opt, &cfg, err, sizeof(err))) {
		snprintf(msg, sizeof(msg), "error %s", err);
		tell(report, msg);
		return 1;
	}
	if (!cfg.nvm_dir || !realpath(cfg.nvm_dir, dir)) {
		snprintf(msg, sizeof(msg), "error no NVM directory for the tier service");
		tell(report, msg);
		return 1;
	}
	run_service(dir, &cfg, opt.foreground, report);
}
