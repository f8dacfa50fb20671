/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The control socket of a tiered mount: /run/nlayerfs/<hash>.sock, root
 * only, so that nothing appears in the tree a container sees. One thread
 * answers one command per connection, one at a time:
 *
 *   request:  "<command> [argument]\n" (import: the hot list follows)
 *   reply:    lines of text, then "ok" or "error <message>"
 */
#include <errno.h>
#include <inttypes.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fs/tier_glue.h"

#define NL_RUN_DIR "/run/nlayerfs"

/* The name is a hash of the mountpoint: any path fits sun_path. */
int nl_tier_sock_path(const char *mountpoint, char *buf, size_t len)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	char hex[33];

	SHA256((const unsigned char *)mountpoint, strlen(mountpoint), md);
	for (int i = 0; i < 16; i++)
		sprintf(hex + 2 * i, "%02x", md[i]);
	return snprintf(buf, len, NL_RUN_DIR "/%s.sock", hex) >= (int)len ? -ENAMETOOLONG : 0;
}

/* Range copies of big files: NVM bytes against the sizes of the files. */
static void put_range_status(struct nl_tier *t, FILE *f)
{
	struct tier_range_status r;

	if (tier_range_status(t->ctx, &r))
		return;
	fprintf(f, "range_files %" PRIu64 "\nrange_nvm_bytes %" PRIu64 "\nrange_file_bytes %" PRIu64
		"\nrange_traced_files %" PRIu64 "\nrange_traced_bytes %" PRIu64 "\n",
		r.files, r.nvm_bytes, r.file_bytes, r.traced_files, r.traced_bytes);
	fprintf(f, "range_read_nvm %" PRIu64 "\nrange_read_layer %" PRIu64 "\n",
		r.served_nvm, r.served_layer);
}

/* Metadata images of HDD layers: lookups answered from NVM or the layer. */
static void put_meta_status(struct nl_tier *t, FILE *f)
{
	struct tier_meta_status m;

	if (tier_meta_status(t->ctx, &m) || !m.on)
		return;
	fprintf(f, "metadata images: %" PRIu64 " layers, %" PRIu64 " bytes\n", m.layers, m.bytes);
	fprintf(f, "meta_layers %" PRIu64 "\nmeta_partial %" PRIu64 "\nmeta_bytes %" PRIu64
		"\nmeta_entries %" PRIu64 "\n", m.layers, m.partial, m.bytes, m.entries);
	fprintf(f, "meta_hits %" PRIu64 "\nmeta_misses %" PRIu64 "\nmeta_builds %" PRIu64
		"\nmeta_rebuilds %" PRIu64 "\nmeta_pending %d\n", m.hits, m.misses, m.builds,
		m.rebuilds, m.pending);
}

static void put_status(struct nl_tier *t, FILE *f)
{
	struct tier_status s;
	int r = tier_status(t->ctx, &s);

	if (r) {
		fprintf(f, "error %s\n", strerror(-r));
		return;
	}
	fprintf(f, "nvm_used %" PRIu64 "\nnvm_budget %" PRIu64 "\n", s.nvm_used, s.nvm_budget);
	fprintf(f, "promoted_files %" PRIu64 "\npromoted_bytes %" PRIu64 "\nobjects %" PRIu64 "\n",
		s.promoted_files, s.promoted_bytes, s.objects);
	fprintf(f, "queue %" PRIu64 "\nindexed_files %" PRIu64 "\n", s.queue_len, s.indexed_files);
	fprintf(f, "trace %s\ntrace_records %" PRIu64 "\ntrace_dropped %" PRIu64 "\n",
		s.trace_active ? "active" : "stopped", s.trace_records, s.trace_dropped);
	fprintf(f, "cold_starts %" PRIu64 "\npromote %s\n", s.cold_starts,
		s.promote_on ? "on" : "off");
	put_range_status(t, f);
	put_meta_status(t, f);
	for (size_t i = 0; i < tier_layer_count(t->ctx); i++)
		fprintf(f, "layer %zu %s %s %" PRIu64 " %s\n", i, tier_layer_id(t->ctx, (int)i),
			tier_layer_home(t->ctx, (int)i) == TIER_HOME_NVM ? "nvm" : "hdd",
			tier_layer_nvm_bytes(t->ctx, (int)i), tier_layer_dir(t->ctx, (int)i));
	fputs("ok\n", f);
}

static void put_result(FILE *f, int64_t r, const char *what)
{
	if (r < 0)
		fprintf(f, "error %s\n", strerror((int)-r));
	else
		fprintf(f, "%s %" PRId64 "\nok\n", what, r);
}

static void do_import(struct nl_tier *t, FILE *in, FILE *f)
{
	char err[512] = "";
	unsigned skipped = 0;
	int r = tier_hotlist_import(t->ctx, in, "hot list", &skipped, err, sizeof(err));

	if (r < 0)
		fprintf(f, "error %s\n", *err ? err : strerror(-r));
	else
		fprintf(f, "queued %d\nskipped %u\nok\n", r, skipped);
}

static void do_wait(struct nl_tier *t, FILE *f, const char *arg)
{
	int ms = arg && *arg ? atoi(arg) * 1000 : -1;
	int r;

	/* Records still in the ring count as work not done yet. */
	tier_trace_flush(t->ctx);
	r = tier_wait_idle(t->ctx, ms);
	/* and the metadata images still to build */
	if (!r && tier_meta_wait(t->ctx, false, ms) == -ETIMEDOUT)
		r = -ETIMEDOUT;
	put_result(f, r, "idle");
}

/* Build the missing metadata images now (with @verify: compare every
 * image with its layer first), even in a trace window. */
static void do_meta_wait(struct nl_tier *t, FILE *f, const char *arg, bool verify)
{
	int ms = arg && *arg ? atoi(arg) * 1000 : -1;

	put_result(f, tier_meta_wait(t->ctx, verify, ms), "idle");
}

static void run_command(struct nl_tier *t, FILE *in, FILE *f, char *cmd, char *arg)
{
	if (!strcmp(cmd, "status")) {
		put_status(t, f);
	} else if (!strcmp(cmd, "trace-start")) {
		put_result(f, tier_trace_start(t->ctx), "started");
	} else if (!strcmp(cmd, "trace-stop")) {
		tier_trace_stop(t->ctx);
		put_result(f, tier_trace_flush(t->ctx), "flushed");
	} else if (!strcmp(cmd, "export")) {
		tier_trace_flush(t->ctx);
		put_result(f, tier_hotlist_export(t->ctx, f), "exported");
	} else if (!strcmp(cmd, "import")) {
		do_import(t, in, f);
	} else if (!strcmp(cmd, "promote")) {
		tier_trace_flush(t->ctx);
		put_result(f, tier_promote_hot(t->ctx), "queued");
	} else if (!strcmp(cmd, "evict")) {
		put_result(f, tier_evict(t->ctx, arg && *arg ?
					 strtoull(arg, NULL, 10) : UINT64_MAX), "freed");
	} else if (!strcmp(cmd, "wait")) {
		do_wait(t, f, arg);
	} else if (!strcmp(cmd, "meta-wait") || !strcmp(cmd, "meta-verify")) {
		do_meta_wait(t, f, arg, !strcmp(cmd, "meta-verify"));
	} else {
		fprintf(f, "error unknown command '%s'\n", cmd);
	}
}

static void serve_client(struct nl_tier *t, int fd)
{
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	char line[512], *arg;
	FILE *in, *out = NULL;
	int wfd;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) || cred.uid != 0) {
		close(fd);
		return;
	}
	/* Two streams: a socket cannot seek, which one read/write stream
	 * would need between reading the request and writing the reply. */
	in = fdopen(fd, "r");
	wfd = in ? dup(fd) : -1;
	if (wfd >= 0 && !(out = fdopen(wfd, "w")))
		close(wfd);
	if (out && fgets(line, sizeof(line), in)) {
		line[strcspn(line, "\n")] = 0;
		arg = strchr(line, ' ');
		if (arg)
			*arg++ = 0;
		pthread_mutex_lock(&t->cmd_lock);
		run_command(t, in, out, line, arg);
		pthread_mutex_unlock(&t->cmd_lock);
	}
	if (out)
		fclose(out);
	if (in)
		fclose(in);
	else
		close(fd);
}

static void *ctl_main(void *arg)
{
	struct nl_tier *t = arg;
	int fd;

	for (;;) {
		fd = accept4(t->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			serve_client(t, fd);
		else if (errno != EINTR && errno != ECONNABORTED)
			break;	/* shut down at unmount */
	}
	return NULL;
}

static int ctl_listen(struct nl_tier *t)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (mkdir(NL_RUN_DIR, 0700) && errno != EEXIST)
		return -errno;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	strcpy(sa.sun_path, t->sock_path);
	/* A socket left by a daemon that was killed: same mountpoint, ours. */
	unlink(t->sock_path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || chmod(t->sock_path, 0600) ||
	    listen(fd, 8)) {
		int e = errno;

		close(fd);
		return -e;
	}
	t->listen_fd = fd;
	return 0;
}

int nl_tier_ctl_start(struct nl_tier *t)
{
	int r = ctl_listen(t);

	if (r) {
		t->sock_path[0] = 0;
		return r;
	}
	if (pthread_create(&t->thread, NULL, ctl_main, t))
		return -EAGAIN;
	t->thread_on = true;
	return 0;
}

void nl_tier_ctl_stop(struct nl_tier *t)
{
	if (t->listen_fd >= 0)
		shutdown(t->listen_fd, SHUT_RDWR);
	if (t->thread_on)
		pthread_join(t->thread, NULL);
	t->thread_on = false;
	if (t->listen_fd >= 0)
		close(t->listen_fd);
	t->listen_fd = -1;
	if (t->sock_path[0])
		unlink(t->sock_path);
	t->sock_path[0] = 0;
}
