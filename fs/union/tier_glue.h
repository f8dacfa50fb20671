/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The union mount's side of tiering: the host's shared tier, the map from
 * a mount's union layers to tier layers, and the control socket.
 */
#ifndef NLAYERFS_FS_TIER_GLUE_H
#define NLAYERFS_FS_TIER_GLUE_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "tier/tier.h"

struct nl_mount;
struct nl_options;

/* The host's background thread: a scrub of every NVM copy once the
 * service's first start is over, write-back after each trace window or
 * when asked. */
struct nl_wb {
	pthread_t thread;
	bool running;		/* thread running */
	bool on;		/* write-back available (hdd=) */
	bool scrub_due;		/* this service's check of every copy */
	pthread_mutex_t lock;
	pthread_cond_t wake, done;
	bool stop, exited;
	bool busy;		/* a pass runs */
	uint64_t asked, finished;	/* passes requested / completed */
	int last_rc;
	struct tier_wb_result last;
	uint64_t passes;
};

/* The tier of a host service, shared by every mount it serves. */
struct nl_tier_host {
	struct tier_config cfg;
	struct tier_ctx *ctx;
	struct nl_wb wb;
	pthread_mutex_t cmd_lock;	/* one control command at a time */
	/* the service's part of the status: pid, mounts */
	void (*put_status)(void *arg, FILE *f);
	void *arg;
};

/* One mount's view of the host tier. */
struct nl_tier {
	struct tier_config cfg;	/* this mount's settings (trace=off...) */
	struct nl_mount *m;
	struct nl_tier_host *host;
	struct tier_ctx *ctx;	/* the host's */
	int *layer_of;		/* union layer -> tier layer, -1 for the upper */
	int n_layers;
	char mountpoint[PATH_MAX];
	char sock_path[108];	/* the control socket, empty when none */
	int listen_fd;
	ino_t sock_ino;		/* the socket file this mount bound */
	pthread_t thread;
	bool thread_on;
	bool tracing;		/* this mount's start is in trace_gen */
	uint64_t trace_gen;
	uint64_t traced;	/* first opens this mount recorded */
};

/* tier_glue.c: the host's tier */
int nl_tier_load_config(const struct nl_options *o, struct tier_config *c, char *err,
			size_t errlen);
int nl_tier_host_open(struct nl_tier_host *h, const struct tier_config *c, char *err,
		      size_t errlen);
void nl_tier_host_close(struct nl_tier_host *h);
/* No trace window, queue, copy, image build or write-back pass going on. */
bool nl_tier_host_idle(struct nl_tier_host *h);
/* Serve @m from @h's tier: register its layers, listen on its control
 * socket. @mountpoint: its real path (never resolved through the mount). */
int nl_tier_attach(struct nl_mount *m, struct nl_tier_host *h, const char *mountpoint,
		   char *err, size_t errlen);

/* tier_ctl.c: the control socket of a mount */
int nl_tier_ctl_start(struct nl_tier *t);
void nl_tier_ctl_stop(struct nl_tier *t);

/* tier_glue.c: ask for a write-back pass; with @wait, wait for it and get
 * its figures in @res. Returns the pass's result, or -ENOENT without hdd=. */
int nl_tier_writeback_now(struct nl_tier_host *h, bool wait, struct tier_wb_result *res);

#endif
