/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The keeper of a union mount: a small process that holds the mount's
 * /dev/fuse descriptor and its node table, runs the server that answers
 * the kernel, and starts a new one (the installed binary) when that
 * server dies or is asked to make way. The kernel's requests wait in the
 * meantime; none fails.
 */
#ifndef NLAYERFS_FS_KEEPER_H
#define NLAYERFS_FS_KEEPER_H

#include <limits.h>
#include <sys/types.h>

#include "fs/union/union.h"

/* The environment variable that makes nlayerfs a taking-over server:
 * "FUSE_FD,TABLE_FD,MOUNTPOINT". */
#define NL_TAKEOVER_ENV "NLAYERFS_TAKEOVER"

struct nl_keeper {
	int fuse_fd;			/* the mount's connection */
	int tab_fd;			/* the node table (memfd) */
	struct nl_tab tab;		/* mapped, for status */
	char exe[PATH_MAX];		/* the installed binary */
	char cwd[PATH_MAX];		/* where the options were given */
	char mnt[PATH_MAX];		/* the mountpoint's real path */
	char **argv;
	pid_t server;
	int ctl_fd;			/* control socket, -1 if none */
	int sig_fd;			/* signalfd: children, stop */
	unsigned quick_deaths;		/* servers in a row that died young */
	long started_ms;		/* when the running server started */
	bool stopping;
};

/* Before the mount: what a later server needs to start as this one did. */
int nl_keeper_prepare(struct nl_keeper *k, const char *mountpoint, char **argv, char *err,
		      size_t errlen);
/* After the mount, in the process that stays: fork the first server.
 * Returns 0 in the server (which serves @se and returns), the server's
 * pid in the keeper, or a negative errno. */
pid_t nl_keeper_fork(struct nl_keeper *k, struct nl_mount *m, struct fuse_session *se);
/* Keep the keeper out of the OOM killer's choice. */
void nl_keeper_protect(void);
void nl_keeper_unprotect(void);
/* The keeper's life: until the mount is gone. Returns the exit status. */
int nl_keeper_run(struct nl_keeper *k);

/* The first server: serve @se, keeping the kernel's FUSE_INIT in the node
 * table for the servers after it. Returns what the loop returned. */
int nl_serve_first(struct nl_mount *m, struct fuse_session *se, struct nl_options *o);
/* A server started by the keeper: takes the mount over and serves it.
 * Returns the exit status. */
int nl_takeover_main(int argc, char **argv, const char *spec);

/* server.c, also used by the host service for the mounts it takes over */
int nl_session_resume(struct nl_mount *m, struct nl_options *o, const char *prog, int fuse_fd,
		      struct fuse_session **out);
void nl_ask_resend(struct nl_mount *m, int fuse_fd);
void nl_took_over(struct nl_mount *m);

/* /run/nlayerfs/<hash of the mountpoint>.keeper */
int nl_keeper_sock_path(const char *mountpoint, char *buf, size_t len);

/* CLOCK_MONOTONIC in microseconds, for the stall figures. */
uint64_t nl_now_us(void);
/* The mount's connection is gone (unmounted): the kernel says so on poll. */
bool nl_connection_gone(int fuse_fd);

#endif
