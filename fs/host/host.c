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
 * it has had no mount and no tier work for host_idle seconds. The mount
 * invocation's side, which stays as the mount's keeper, is host_mount.c.
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

int host_path(const char *dir, const char *name, char *out, size_t len)
{
	return snprintf(out, len, "%s/%s", dir, name) >= (int)len ? -ENAMETOOLONG : 0;
}

int host_sock_addr(const char *dir, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	return host_path(dir, HOST_SOCK, sa->sun_path, sizeof(sa->sun_path));
}

void __attribute__((noinline)) host_say_too_long(const char *dir, char *err, size_t errlen)
{
	snprintf(err, errlen, "nvm=%s: too long a path for its service socket %s/" HOST_SOCK
		 " (at most %zu bytes); use a shorter one", dir, dir,
		 sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
}

void host_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

long host_now_ms(void)
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
		nl_run_loop(hm->se, &hm->opt, nl_tab_recorder(&hm->m.tab));
	else
		nl_serve_first(&hm->m.tab, hm->se, &hm->opt);
	nl_log(LOG_INFO, "%s: unmounted", hm->mountpoint);
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
		r = nl_union_session(&hm->m, &hm->opt, prog, fuse_fd, false, &hm->se);
	if (r) {
		snprintf(err, errlen, "cannot take %s over: %s", hm->mountpoint, strerror(-r));
		return r;
	}
	hm->fd_taken = true;
	nl_took_over_session(&hm->m.tab, hm->se, hm->mountpoint);
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
	nl_log(LOG_INFO, "%s: %s", mnt, hm->takeover ? "taken over" : "mounted");
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
		nl_log(LOG_WARNING, "mount refused: %s", msg);
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

	if (host_sock_addr(h->dir, &sa)) {
		host_say_too_long(h->dir, err, errlen);
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

void host_detach(bool keep_stderr)
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
		nl_log(LOG_WARNING, "cannot enter /: %m");
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
			idle_since = host_now_ms();
		if (idle_since >= 0 && host_now_ms() - idle_since >= limit)
			break;
	}
	/* no new client from here on; one that connected meanwhile sees the
	 * connection closed and starts a service again */
	close(h->listen_fd);
	if (!host_path(h->dir, HOST_SOCK, path, sizeof(path)))
		unlink(path);
	nl_log(LOG_INFO, "%s: idle for %u s, exiting", h->dir, h->tier.cfg.host_idle);
}

void host_tell(int fd, const char *msg)
{
	if (write(fd, msg, strlen(msg)) < 0)
		nl_log(LOG_WARNING, "cannot answer the starting mount: %m");
	close(fd);
}

/* The grandchild of the first mount: never returns. @report gets "ok",
 * "busy" (another service holds the lock) or "error MESSAGE". */
void __attribute__((noreturn)) host_run_service(const char *dir, const struct tier_config *cfg,
						  bool foreground, int report)
{
	static struct nl_host h;	/* the process's one host */
	char path[PATH_MAX + 16], err[PATH_MAX + 1024] = "", msg[sizeof(err) + 8];
	int lock;

	host_detach(foreground);
	nl_keeper_unprotect();
	snprintf(h.dir, sizeof(h.dir), "%s", dir);
	pthread_mutex_init(&h.lock, NULL);
	host_path(dir, HOST_LOCK, path, sizeof(path));
	lock = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock < 0) {
		snprintf(msg, sizeof(msg), "error cannot open %s: %s", path, strerror(errno));
		host_tell(report, msg);
		_exit(1);
	}
	if (flock(lock, LOCK_EX | LOCK_NB)) {
		host_tell(report, "busy");
		_exit(0);
	}
	if (nl_tier_host_open(&h.tier, cfg, err, sizeof(err)) || listen_on(&h, err, sizeof(err))) {
		snprintf(msg, sizeof(msg), "error %s", err);
		host_tell(report, msg);
		_exit(1);
	}
	h.tier.put_status = put_host_status;
	h.tier.arg = &h;
	nl_log(LOG_INFO, "%s: tier service started", dir);
	host_tell(report, "ok");
	serve_host(&h);
	nl_tier_host_close(&h.tier);
	_exit(0);
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
		host_tell(report, msg);
		return 1;
	}
	if (!cfg.nvm_dir || !realpath(cfg.nvm_dir, dir)) {
		snprintf(msg, sizeof(msg), "error no NVM directory for the tier service");
		host_tell(report, msg);
		return 1;
	}
	host_run_service(dir, &cfg, opt.foreground, report);
}
