/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The union mount's side of tiering: the tier context of a mount, the
 * map from union layers to tier layers, and the control socket.
 */
#ifndef NLAYERFS_FS_TIER_GLUE_H
#define NLAYERFS_FS_TIER_GLUE_H

#include <pthread.h>
#include <stdbool.h>

#include "tier/tier.h"

struct nl_mount;

/* The background thread of a mount: the hot files of earlier starts once
 * this start is over, then a scrub of every NVM copy (once per daemon),
 * write-back after each trace window or when asked. */
struct nl_wb {
	pthread_t thread;
	bool running;		/* thread running */
	bool on;		/* write-back available (hdd=) */
	bool hot_due;		/* earlier starts' hot files not queued yet */
	bool scrub_due;		/* this daemon's check of every copy */
	pthread_mutex_t lock;
	pthread_cond_t wake, done;
	bool stop, exited;
	bool retry;		/* busy files left: another pass soon */
	uint64_t asked, finished;	/* passes requested / completed */
	int last_rc;
	struct tier_wb_result last;
	uint64_t passes;
};

struct nl_tier {
	struct tier_config cfg;
	struct nl_mount *m;
	struct tier_ctx *ctx;
	int *layer_of;		/* union layer -> tier layer, -1 for the upper */
	int n_layers;
	char sock_path[108];	/* the control socket, empty when none */
	int listen_fd;
	pthread_t thread;
	bool thread_on;
	pthread_mutex_t cmd_lock;	/* one control command at a time */
	struct nl_wb wb;
};

/* tier_ctl.c: the control socket of a mount */
/* Listen on t->sock_path, set before the mount: resolving the mountpoint
 * from inside the daemon would wait on the mount itself. */
int nl_tier_ctl_start(struct nl_tier *t);
void nl_tier_ctl_stop(struct nl_tier *t);
/* The socket path of @mountpoint (absolute): the tool computes the same. */
int nl_tier_sock_path(const char *mountpoint, char *buf, size_t len);

/* tier_glue.c: ask for a write-back pass; with @wait, wait for it and get
 * its figures in @res. Returns the pass's result, or -ENOENT without hdd=. */
int nl_tier_writeback_now(struct nl_tier *t, bool wait, struct tier_wb_result *res);
/* A pass soon: files were left busy. */
void nl_tier_writeback_retry(struct nl_tier *t);

#endif
