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

struct nl_tier {
	struct tier_config cfg;
	struct tier_ctx *ctx;
	int *layer_of;		/* union layer -> tier layer, -1 for the upper */
	int n_layers;
	char sock_path[108];	/* the control socket, empty when none */
	int listen_fd;
	pthread_t thread;
	bool thread_on;
	pthread_mutex_t cmd_lock;	/* one control command at a time */
};

/* tier_ctl.c: the control socket of a mount */
/* Listen on t->sock_path, set before the mount: resolving the mountpoint
 * from inside the daemon would wait on the mount itself. */
int nl_tier_ctl_start(struct nl_tier *t);
void nl_tier_ctl_stop(struct nl_tier *t);
/* The socket path of @mountpoint (absolute): the tool computes the same. */
int nl_tier_sock_path(const char *mountpoint, char *buf, size_t len);

#endif
