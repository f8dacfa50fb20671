/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nlayerfsctl: talk to the tiering of a running nlayerfs mount through its
 * control socket (/run/nlayerfs/<hash of the mountpoint>.sock).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tier/tier.h"

/* A socket of the mount at @mountpoint, named as the mount names it: the
 * tier's ("sock") or the keeper's ("keeper"). */
static int sock_path_kind(const char *mountpoint, char *buf, size_t len, const char *kind)
{
	char real[PATH_MAX];

	if (!realpath(mountpoint, real)) {
		fprintf(stderr, "nlayerfsctl: %s: %s\n", mountpoint, strerror(errno));
		return -1;
	}
	if (tier_ctl_sock_path(real, kind, buf, len)) {
		fprintf(stderr, "nlayerfsctl: %s: %s\n", mountpoint, strerror(ENAMETOOLONG));
		return -1;
	}
	return 0;
}

static int sock_path(const char *mountpoint, char *buf, size_t len)
{
	return sock_path_kind(mountpoint, buf, len, "sock");
}

/* The file system type of the mount at @mountpoint ("fuse.nlayerfs"), or
 * an empty string when nothing is mounted there. */
static void mount_type(const char *mountpoint, char *type, size_t len)
{
	char real[PATH_MAX], *line = NULL;
	size_t cap = 0;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	type[0] = 0;
	if (!f || !realpath(mountpoint, real)) {
		if (f)
			fclose(f);
		return;
	}
	while (getline(&line, &cap, f) > 0) {
		char mp[PATH_MAX], fstype[64];

		/* id parent major:minor root mountpoint options [optional...] - type */
		char *dash = strstr(line, " - ");

		if (!dash || sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1 ||
		    sscanf(dash + 3, "%63s", fstype) != 1)
			continue;
		if (!strcmp(mp, real))
			snprintf(type, len, "%s", fstype);
	}
	free(line);
	fclose(f);
}

/* No socket: say why in words, as most often the mount simply has no
 * tiering. */
static void explain_no_socket(const char *mountpoint, const char *sock, int err)
{
	char type[64];

	mount_type(mountpoint, type, sizeof(type));
	if (!strcmp(type, "fuse.nlayerfs") && (err == ENOENT || err == ECONNREFUSED))
		fprintf(stderr, "nlayerfsctl: %s: this nlayerfs mount has no tiering "
			"(it was mounted without nvm= and no nlayerfs.conf names one); "
			"every file is read from its layer\n", mountpoint);
	else if (!*type)
		fprintf(stderr, "nlayerfsctl: %s: nothing is mounted there\n", mountpoint);
	else if (strcmp(type, "fuse.nlayerfs"))
		fprintf(stderr, "nlayerfsctl: %s: not an nlayerfs mount (%s)\n",
			mountpoint, type);
	else
		fprintf(stderr, "nlayerfsctl: %s: cannot reach the tiering control "
			"socket %s: %s\n", mountpoint, sock, strerror(err));
}

/* The daemon opens its socket just after the mount appears: retry a bit. */
static int ctl_connect(const char *mountpoint)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timespec pause = { 0, 50 * 1000 * 1000 };
	int fd;

	if (sock_path(mountpoint, sa.sun_path, sizeof(sa.sun_path)))
		return -1;
	for (int i = 0; i < 100; i++) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			break;
		if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
			return fd;
		close(fd);
		if (errno != ENOENT && errno != ECONNREFUSED)
			break;
		nanosleep(&pause, NULL);
	}
	explain_no_socket(mountpoint, sa.sun_path, errno);
	return -1;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Send the rest of @in (a hot list) after the command line. */
static int send_file(int fd, FILE *in)
{
	char buf[65536];
	size_t n;

	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (write_all(fd, buf, n))
			return -1;
	return ferror(in) ? -1 : 0;
}

static char *read_reply(int fd, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap + 1);
	ssize_t r;

	while (buf && (r = read(fd, buf + n, cap - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(buf);
			return NULL;
		}
		n += (size_t)r;
		if (n == cap) {
			char *nb = realloc(buf, (cap *= 2) + 1);

			if (!nb)
				free(buf);
			buf = nb;
		}
	}
	if (buf)
		buf[n] = 0;
	*len = n;
	return buf;
}

/* Start of the last @k lines of @buf (which ends in '\n'). */
static char *last_lines(char *buf, size_t len, int k)
{
	char *p = buf + len;

	while (p > buf && k >= 0) {
		p--;
		if (p == buf || p[-1] == '\n')
			k--;
		if (k == 0)
			return p;
	}
	return buf;
}

/* 1 after telling stderr what went wrong, when the reply does not end in
 * "ok". */
static int reply_failed(char *buf, size_t len)
{
	char *status = last_lines(buf, len, 1);

	if (!strncmp(status, "ok", 2))
		return 0;
	/* what came before the error says which part failed */
	if (!strncmp(status, "error", 5))
		fwrite(buf, 1, (size_t)(status - buf), stderr);
	fprintf(stderr, "nlayerfsctl: %s", *status ? status : "no answer\n");
	if (*status && strncmp(status, "error", 5))
		fputs(buf, stderr);
	return 1;
}

/* Print the reply (without its final "ok") to @out; 0 when it ends in ok.
 * @trailer lines before "ok" are a summary that goes to stderr. */
static int finish(char *buf, size_t len, FILE *out, int trailer)
{
	char *status = last_lines(buf, len, 1);
	char *summary = last_lines(buf, len, 1 + trailer);

	if (reply_failed(buf, len))
		return 1;
	fwrite(buf, 1, (size_t)(summary - buf), out);
	if (trailer)
		fwrite(summary, 1, (size_t)(status - summary), stderr);
	return 0;
}

/* Send @line (and @in) to the daemon; its whole reply, or NULL after a
 * message. */
static char *ask(const char *mountpoint, const char *line, FILE *in, size_t *len)
{
	int fd = ctl_connect(mountpoint);
	char *buf;

	if (fd < 0)
		return NULL;
	if (write_all(fd, line, strlen(line)) || (in && send_file(fd, in)) ||
	    shutdown(fd, SHUT_WR)) {
		fprintf(stderr, "nlayerfsctl: %s: %s\n", mountpoint, strerror(errno));
		close(fd);
		return NULL;
	}
	buf = read_reply(fd, len);
	close(fd);
	if (!buf)
		fprintf(stderr, "nlayerfsctl: %s: %s\n", mountpoint, strerror(errno));
	return buf;
}

static int request(const char *mountpoint, const char *line, FILE *in, FILE *out,
		   int trailer)
{
	size_t len;
	char *buf = ask(mountpoint, line, in, &len);
	int rc = 1;

	if (buf)
		rc = finish(buf, len, out, trailer);
	free(buf);
	return rc;
}

/* ---- status for people ---------------------------------------------------- */

/* The value of "key value" in the status reply, or NULL. */
static const char *status_value(const char *reply, const char *key, char *val,
				size_t len)
{
	size_t klen = strlen(key);

	for (const char *p = reply; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p) {
		if (!strncmp(p, key, klen) && p[klen] == ' ') {
			size_t n = strcspn(p + klen + 1, "\n");

			snprintf(val, len, "%.*s", (int)n, p + klen + 1);
			return val;
		}
	}
	return NULL;
}

static uint64_t status_num(const char *reply, const char *key)
{
	char v[64];

	return status_value(reply, key, v, sizeof(v)) ? strtoull(v, NULL, 10) : 0;
}

static const char *human_bytes(uint64_t b, char *out, size_t len)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)b;
	int u = 0;

	while (v >= 1024 && u < 4)
		v /= 1024, u++;
	snprintf(out, len, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
	return out;
}

static void summary_nvm(const char *r, FILE *out)
{
	uint64_t used = status_num(r, "nvm_used"), budget = status_num(r, "nvm_budget");
	char a[32], b[32];

	if (budget)
		fprintf(out, "  NVM:        %s used of a %s budget (%.0f%%)\n",
			human_bytes(used, a, sizeof(a)), human_bytes(budget, b, sizeof(b)),
			100.0 * (double)used / (double)budget);
	else
		fprintf(out, "  NVM:        %s used, no budget set\n",
			human_bytes(used, a, sizeof(a)));
	fprintf(out, "  promoted:   %" PRIu64 " files, %s; %" PRIu64 " queued; promotion %s\n",
		status_num(r, "promoted_files"),
		human_bytes(status_num(r, "promoted_bytes"), a, sizeof(a)),
		status_num(r, "queue"), status_value(r, "promote", b, sizeof(b)) ? b : "?");
	fprintf(out, "  index:      %" PRIu64 " files%s\n", status_num(r, "indexed_files"),
		status_value(r, "index_full", a, sizeof(a)) && !strcmp(a, "yes") ?
		", FULL: new hot files are not recorded (raise index_size)" : "");
}

static void summary_trace(const char *r, FILE *out)
{
	char t[32];

	fprintf(out, "  trace:      %s, %" PRIu64 " first opens recorded",
		status_value(r, "trace", t, sizeof(t)) ? t : "?",
		status_num(r, "trace_records"));
	if (status_num(r, "trace_dropped"))
		fprintf(out, ", %" PRIu64 " dropped", status_num(r, "trace_dropped"));
	fprintf(out, "; %" PRIu64 " cold starts\n", status_num(r, "cold_starts"));
}

static void summary_parts(const char *r, FILE *out)
{
	char a[32], b[32], v[32];

	if (status_num(r, "range_files"))
		fprintf(out, "  ranges:     %" PRIu64 " big files, %s on NVM of %s\n",
			status_num(r, "range_files"),
			human_bytes(status_num(r, "range_nvm_bytes"), a, sizeof(a)),
			human_bytes(status_num(r, "range_file_bytes"), b, sizeof(b)));
	if (status_value(r, "writeback", v, sizeof(v)))
		fprintf(out, "  write-back: %s, %" PRIu64 " files (%s) moved to HDD\n", v,
			status_num(r, "writeback_files"),
			human_bytes(status_num(r, "writeback_bytes"), a, sizeof(a)));
	if (status_value(r, "meta_layers", v, sizeof(v)))
		fprintf(out, "  metadata:   images of %s HDD layers, %s; %" PRIu64
			" lookups from NVM, %" PRIu64 " from HDD\n", v,
			human_bytes(status_num(r, "meta_bytes"), a, sizeof(a)),
			status_num(r, "meta_hits"), status_num(r, "meta_misses"));
}

/* The host's tier service and what this mount's start traced. */
static void summary_host(const char *r, FILE *out)
{
	char pid[32], mnt[PATH_MAX], t[8];

	if (!status_value(r, "host_pid", pid, sizeof(pid)))
		return;
	fprintf(out, "  service:    pid %s, %" PRIu64 " mounts of this NVM tier\n", pid,
		status_num(r, "host_mounts"));
	for (const char *p = r; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
		if (!strncmp(p, "host_mount ", 11) && sscanf(p + 11, "%4095s", mnt) == 1)
			fprintf(out, "              %s\n", mnt);
	fprintf(out, "  this mount: %" PRIu64 " first opens traced%s\n",
		status_num(r, "mount_traced"),
		status_value(r, "mount_tracing", t, sizeof(t)) && !strcmp(t, "yes") ?
		", its start is still traced" : "");
	if (status_num(r, "replaced"))
		fprintf(out, "              taken over by a new service %" PRIu64
			" times (last stall %.1f ms)\n", status_num(r, "replaced"),
			status_num(r, "last_stall_us") / 1000.0);
}

/* Where layer @n is, from its "placement N WHERE OWNER HOLDERS" line. */
static void layer_placement(const char *r, int n, char *where, size_t len)
{
	char place[16], owner[8], b[32];
	unsigned long long old = 0;
	unsigned holders;
	int k;

	snprintf(where, len, "?");
	for (const char *p = r; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p) {
		if (strncmp(p, "placement ", 10) ||
		    sscanf(p, "placement %d %15s %7s %u %llu", &k, place, owner, &holders, &old) < 4 ||
		    k != n)
			continue;
		if (!strcmp(place, "nvm"))
			snprintf(where, len, "on NVM%s", !strcmp(owner, "path") ?
				 " (named by its path: stays on NVM)" : "");
		else if (!strcmp(place, "hdd"))
			snprintf(where, len, "on HDD");
		else if (!strcmp(place, "moving"))
			snprintf(where, len, "MOVING to HDD");
		else if (!strcmp(place, "leaving"))
			snprintf(where, len, "moved to HDD; its NVM copy (%s, out of the budget) "
				 "waits for %u holder%s", human_bytes(old, b, sizeof(b)), holders,
				 holders == 1 ? "" : "s");
		else
			snprintf(where, len, "moved to HDD (old record)");
	}
}

/* "layer N ID HOME NVM_BYTES DIR" lines, one short line each. */
static void summary_layers(const char *r, FILE *out)
{
	for (const char *p = r; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p) {
		char id[128], home[8], dir[PATH_MAX], a[32], where[192];
		unsigned long long bytes;
		int n;

		if (strncmp(p, "layer ", 6) ||
		    sscanf(p, "layer %d %127s %7s %llu %4095s", &n, id, home, &bytes, dir) != 5)
			continue;
		layer_placement(r, n, where, sizeof(where));
		fprintf(out, "  layer %d:    %s %s, %s on NVM (%.19s%s)\n", n, dir, where,
			human_bytes(bytes, a, sizeof(a)), id, strlen(id) > 19 ? "..." : "");
	}
	if (status_num(r, "moves") || status_num(r, "move_failures"))
		fprintf(out, "  moves:      %" PRIu64 " layers moved to HDD (%" PRIu64 " NVM copies "
			"of their hot files), %" PRIu64 " NVM copies deleted, %" PRIu64 " failed\n",
			status_num(r, "moves"), status_num(r, "move_hot_copies"),
			status_num(r, "move_reaped"), status_num(r, "move_failures"));
}

/* The keeper of @mountpoint: its answer to @line, or NULL (quietly, as
 * mounts of older versions and tiered mounts have none). */
static int cmd_tier_status(const char *mp, bool raw);

static char *ask_keeper(const char *mountpoint, const char *line, size_t *len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char *buf = NULL;
	int fd;

	if (sock_path_kind(mountpoint, sa.sun_path, sizeof(sa.sun_path), "keeper"))
		return NULL;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa)) &&
	    !write_all(fd, line, strlen(line)) && !shutdown(fd, SHUT_WR))
		buf = read_reply(fd, len);
	close(fd);
	return buf;
}

/* The serving process and its keeper, from the keeper's status. */
static void summary_server(const char *r, FILE *out)
{
	char pid[32], keeper[32], bin[PATH_MAX];

	if (!status_value(r, "server_pid", pid, sizeof(pid)) ||
	    !status_value(r, "keeper_pid", keeper, sizeof(keeper)))
		return;
	fprintf(out, "  server:     pid %s, kept by pid %s, replaced %" PRIu64 " times", pid,
		keeper, status_num(r, "replaced"));
	if (status_num(r, "replaced"))
		fprintf(out, " (last stall %.1f ms)", status_num(r, "last_stall_us") / 1000.0);
	fprintf(out, "\n  nodes:      %" PRIu64 " known to the kernel (%" PRIu64
		" unlinked), %" PRIu64 " open files and directories\n",
		status_num(r, "table_nodes"), status_num(r, "table_unlinked"),
		status_num(r, "table_handles"));
	if (status_value(r, "binary", bin, sizeof(bin)))
		fprintf(out, "  binary:     %s\n", bin);
}

/* A mount with a keeper and no tiering: the keeper's part only. */
static int status_untiered(const char *mp, bool raw, char *kbuf, size_t klen)
{
	char kind[32];
	bool ckpt = status_value(kbuf, "mount", kind, sizeof(kind)) && !strcmp(kind, "checkpoint");

	if (reply_failed(kbuf, klen))
		return 1;
	if (raw)
		fputs(kbuf, stdout);
	else
		printf("%s: %s\n", mp, ckpt ? "checkpoint mount" : "tiering off");
	if (!raw)
		summary_server(kbuf, stdout);
	if (ckpt)
		return 0;
	fprintf(stderr, "nlayerfsctl: %s: this nlayerfs mount has no tiering (it was mounted "
		"without nvm= and no nlayerfs.conf names one); every file is read from its "
		"layer\n", mp);
	return 0;
}

/* A tiered mount whose keeper could not have it served by a tier service:
 * served without tiering until one takes it again. */
static int status_fallback(const char *mp, bool raw, char *kbuf, size_t klen)
{
	char nvm[PATH_MAX], why[PATH_MAX + 256];

	if (reply_failed(kbuf, klen))
		return 1;
	if (raw) {
		fputs(kbuf, stdout);
		return 0;
	}
	printf("%s: tiering off for now\n", mp);
	summary_server(kbuf, stdout);
	printf("  tiering:    off for now; the tier service of %s cannot start (%s); every "
	       "file is read from its layer, and the mount goes back to a tier service once "
	       "one starts\n", status_value(kbuf, "tier_nvm", nvm, sizeof(nvm)) ? nvm : "?",
	       status_value(kbuf, "tier_error", why, sizeof(why)) ? why : "?");
	return 0;
}

static int cmd_status(const char *mp, bool raw)
{
	char tsock[PATH_MAX], *kbuf, v[16];
	size_t klen = 0;
	int rc;

	kbuf = ask_keeper(mp, "status\n", &klen);
	if (kbuf && status_value(kbuf, "tiering", v, sizeof(v)) && !strcmp(v, "off")) {
		rc = status_fallback(mp, raw, kbuf, klen);
		free(kbuf);
		return rc;
	}
	if (kbuf && !sock_path(mp, tsock, sizeof(tsock)) && access(tsock, F_OK)) {
		rc = status_untiered(mp, raw, kbuf, klen);
		free(kbuf);
		return rc;
	}
	free(kbuf);
	rc = cmd_tier_status(mp, raw);
	return rc;
}

/* The tier service's pid from a tiered mount's status, or 0. */
static long host_pid_of(const char *mp)
{
	size_t len = 0;
	char *buf = ask(mp, "status\n", NULL, &len), v[32];
	long pid = 0;

	if (buf && status_value(buf, "host_pid", v, sizeof(v)))
		pid = strtol(v, NULL, 10);
	free(buf);
	return pid;
}

/* A tiered mount: its service is killed, and every keeper of its mounts
 * hands its mount to the next one, started from the installed binary. */
static int restart_service(const char *mp)
{
	struct timespec pause = { 0, 50 * 1000 * 1000 };
	long old = host_pid_of(mp), pid;

	if (old <= 0)
		return 1;
	if (kill((pid_t)old, SIGKILL)) {
		fprintf(stderr, "nlayerfsctl: %s: cannot stop the tier service %ld: %s\n", mp,
			old, strerror(errno));
		return 1;
	}
	for (int i = 0; i < 400; i++) {
		nanosleep(&pause, NULL);
		pid = host_pid_of(mp);
		if (pid > 0 && pid != old) {
			printf("host_pid %ld\n", pid);
			return 0;
		}
	}
	fprintf(stderr, "nlayerfsctl: %s: no new tier service took the mount over\n", mp);
	return 1;
}

static int cmd_restart(const char *mp)
{
	char tsock[PATH_MAX];
	size_t len = 0;
	char *buf = ask_keeper(mp, "restart\n", &len);
	int rc;

	if (!buf && !sock_path(mp, tsock, sizeof(tsock)) && !access(tsock, F_OK))
		return restart_service(mp);
	if (!buf) {
		fprintf(stderr, "nlayerfsctl: %s: no keeper answers for this mount\n", mp);
		return 1;
	}
	rc = finish(buf, len, stdout, 0);
	free(buf);
	return rc;
}

static int cmd_tier_status(const char *mp, bool raw)
{
	size_t len;
	char *buf;
	int rc;

	if (raw)
		return request(mp, "status\n", NULL, stdout, 0);
	buf = ask(mp, "status\n", NULL, &len);
	if (!buf)
		return 1;
	rc = reply_failed(buf, len);
	if (!rc) {
		printf("%s: tiering on\n", mp);
		summary_nvm(buf, stdout);
		summary_trace(buf, stdout);
		summary_parts(buf, stdout);
		summary_host(buf, stdout);
		summary_layers(buf, stdout);
	}
	free(buf);
	return rc;
}

/* move MOUNTPOINT LAYER: a number or id from the status, or a directory
 * (made absolute here: the service runs elsewhere). */
static int cmd_move(const char *mp, const char *layer)
{
	char line[PATH_MAX + 16], real[PATH_MAX];

	if (strlen(layer) >= PATH_MAX || strchr(layer, '\n')) {
		fprintf(stderr, "nlayerfsctl: bad layer '%s'\n", layer);
		return 2;
	}
	snprintf(line, sizeof(line), "move %s\n", strchr(layer, '/') && realpath(layer, real) ?
		 real : layer);
	return request(mp, line, NULL, stdout, 0);
}

static void usage(FILE *f)
{
	fputs("usage: nlayerfsctl status [--raw] MOUNTPOINT\n"
	      "       nlayerfsctl restart MOUNTPOINT\n"
	      "       nlayerfsctl trace start|stop MOUNTPOINT\n"
	      "       nlayerfsctl trace export|import FILE MOUNTPOINT\n"
	      "       nlayerfsctl promote MOUNTPOINT [PATH...]\n"
	      "       nlayerfsctl evict MOUNTPOINT [BYTES | PATH...]\n"
	      "       nlayerfsctl writeback MOUNTPOINT [--wait]\n"
	      "       nlayerfsctl move MOUNTPOINT LAYER\n"
	      "       nlayerfsctl scrub MOUNTPOINT\n"
	      "       nlayerfsctl wait MOUNTPOINT [SECONDS]\n"
	      "       nlayerfsctl meta-wait|meta-verify MOUNTPOINT [SECONDS]\n", f);
}

static int trace_file(const char *what, const char *file, const char *mp)
{
	bool exp = !strcmp(what, "export");
	bool std = !strcmp(file, "-");
	FILE *f = std ? (exp ? stdout : stdin) : fopen(file, exp ? "w" : "r");
	int rc;

	if (!f) {
		fprintf(stderr, "nlayerfsctl: %s: %s\n", file, strerror(errno));
		return 1;
	}
	rc = exp ? request(mp, "export\n", NULL, f, 1) :
		   request(mp, "import\n", f, stdout, 0);
	if (!std && fclose(f) && !rc) {
		fprintf(stderr, "nlayerfsctl: %s: %s\n", file, strerror(errno));
		rc = 1;
	}
	return rc;
}

static int cmd_trace(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[2], "start"))
		return request(argv[3], "trace-start\n", NULL, stdout, 0);
	if (argc == 4 && !strcmp(argv[2], "stop"))
		return request(argv[3], "trace-stop\n", NULL, stdout, 0);
	if (argc == 5 && (!strcmp(argv[2], "export") || !strcmp(argv[2], "import")))
		return trace_file(argv[2], argv[3], argv[4]);
	usage(stderr);
	return 2;
}

/* Commands with an optional number after the mountpoint. */
static int cmd_arg(const char *cmd, int argc, char **argv, bool size)
{
	char line[128];
	uint64_t v = 0;

	/* a count is a size without a suffix: digits only */
	if (argc == 4 && (tier_parse_size(argv[3], &v) ||
			  (!size && argv[3][strspn(argv[3], "0123456789")]))) {
		fprintf(stderr, "nlayerfsctl: bad number '%s': %s\n", argv[3],
			size ? tier_size_problem(argv[3]) : "want digits only");
		return 2;
	}
	if (argc == 4)
		snprintf(line, sizeof(line), "%s %llu\n", cmd, (unsigned long long)v);
	else
		snprintf(line, sizeof(line), "%s\n", cmd);
	return request(argv[2], line, NULL, stdout, 0);
}

/* @path (absolute, or relative to the working directory) as a path of
 * the merged tree of @mountpoint; the last component is not followed. */
static int merged_rel(const char *mountpoint, const char *path, char *out, size_t len)
{
	char mp[PATH_MAX], dir[PATH_MAX], dcopy[PATH_MAX], bcopy[PATH_MAX], *b;
	size_t n;

	if (!realpath(mountpoint, mp)) {
		fprintf(stderr, "nlayerfsctl: %s: %s\n", mountpoint, strerror(errno));
		return -1;
	}
	snprintf(dcopy, sizeof(dcopy), "%s", path);
	snprintf(bcopy, sizeof(bcopy), "%s", path);
	b = basename(bcopy);
	if (!realpath(dirname(dcopy), dir)) {
		fprintf(stderr, "nlayerfsctl: %s: %s\n", path, strerror(errno));
		return -1;
	}
	n = strlen(mp);
	if (!strcmp(b, "/") || !strcmp(b, ".") || !strcmp(b, "..") || strncmp(dir, mp, n) ||
	    (dir[n] != '/' && dir[n] != 0)) {
		fprintf(stderr, "nlayerfsctl: %s: not a file inside the mount %s\n", path, mp);
		return -1;
	}
	if (snprintf(out, len, "%s%s%s", dir[n] ? dir + n + 1 : "", dir[n] ? "/" : "", b) >=
	    (int)len) {
		fprintf(stderr, "nlayerfsctl: %s: %s\n", path, strerror(ENAMETOOLONG));
		return -1;
	}
	return 0;
}

/* promote/evict of files: the command, then their merged-tree paths,
 * one a line, sent like a hot list. */
static int cmd_paths(const char *cmd, const char *mp, int n, char **paths)
{
	char line[64], rel[PATH_MAX], *list = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&list, &len);
	int rc = 1;

	if (!f)
		return 1;
	for (int i = 0; i < n; i++) {
		if (merged_rel(mp, paths[i], rel, sizeof(rel)))
			goto out;
		fprintf(f, "%s\n", rel);
	}
	if (fclose(f)) {
		f = NULL;
		goto out;
	}
	f = fmemopen(list, len, "r");
	snprintf(line, sizeof(line), "%s-paths\n", cmd);
	if (f)
		rc = request(mp, line, f, stdout, 0);
out:
	if (f)
		fclose(f);
	free(list);
	return rc;
}

/* A size after "evict MOUNTPOINT": no '/', and it parses. */
static bool is_size(const char *s)
{
	uint64_t v;

	return !strchr(s, '/') && !tier_parse_size(s, &v);
}

int main(int argc, char **argv)
{
	const char *c = argc > 1 ? argv[1] : "";

	if (!strcmp(c, "-h") || !strcmp(c, "--help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(c, "restart") && argc == 3)
		return cmd_restart(argv[2]);
	if (!strcmp(c, "status") && argc == 3)
		return cmd_status(argv[2], false);
	if (!strcmp(c, "status") && argc == 4 && !strcmp(argv[2], "--raw"))
		return cmd_status(argv[3], true);
	if (!strcmp(c, "trace"))
		return cmd_trace(argc, argv);
	if (!strcmp(c, "promote") && argc == 3)
		return request(argv[2], "promote\n", NULL, stdout, 0);
	if (!strcmp(c, "promote") && argc > 3)
		return cmd_paths("promote", argv[2], argc - 3, argv + 3);
	if (!strcmp(c, "evict") && (argc == 3 || (argc == 4 && is_size(argv[3]))))
		return cmd_arg("evict", argc, argv, true);
	if (!strcmp(c, "evict") && argc > 3)
		return cmd_paths("evict", argv[2], argc - 3, argv + 3);
	if (!strcmp(c, "writeback") && argc == 3)
		return request(argv[2], "writeback\n", NULL, stdout, 0);
	if (!strcmp(c, "writeback") && argc == 4 && !strcmp(argv[3], "--wait"))
		return request(argv[2], "writeback wait\n", NULL, stdout, 0);
	if (!strcmp(c, "scrub") && argc == 3)
		return request(argv[2], "scrub\n", NULL, stdout, 0);
	if (!strcmp(c, "move") && argc == 4)
		return cmd_move(argv[2], argv[3]);
	if (!strcmp(c, "wait") && (argc == 3 || argc == 4))
		return cmd_arg("wait", argc, argv, false);
	if ((!strcmp(c, "meta-wait") || !strcmp(c, "meta-verify")) && (argc == 3 || argc == 4))
		return cmd_arg(c, argc, argv, false);
	usage(stderr);
	return 2;
}
