/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One process serves every tiered mount of an NVM directory: the host
 * service owns the tier (the index pool, the workers), and each mount
 * invocation hands it the /dev/fuse descriptor of its mount.
 */
#ifndef NLAYERFS_FS_HOST_H
#define NLAYERFS_FS_HOST_H

#include "fs/union/union.h"

#include "fs/options.h"
#include "fs/session.h"
#include "tier/tier.h"

struct nl_mount;


/* host.c: mount through the host service of @cfg's NVM directory, starting
 * it when none answers. Returns the exit status of the program. */
int nl_host_mount(struct nl_options *o, const struct tier_config *cfg, int argc, char **argv);

/* The environment variable that makes nlayerfs a tier service started by
 * a mount's keeper: the descriptor it answers the start on. */
#define NL_SERVICE_ENV "NLAYERFS_TIER_SERVICE"
int nl_host_service_main(int argc, char **argv, const char *spec);

#endif
