/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The keeper of a mount (a union or a checkpoint mount): a small process
 * that holds the mount's /dev/fuse descriptor and its table (nodetab.h),
 * runs the server that answers the kernel, and starts a new one (the
 * installed binary) when that server dies or is asked to make way. The
 * kernel's requests wait in the meantime; none fails.
 */
#ifndef NLAYERFS_FS_KEEPER_H
#define NLAYERFS_FS_KEEPER_H

#include <limits.h>
#include <stdio.h>
#include <sys/types.h>

#include "fs/session.h"
#include "fs/keeper/nodetab.h"

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
	bool checkpoint;		/* a checkpoint mount (status says so) */
};

/* Before the mount: what a later server needs to start as this one did. */
int nl_keeper_prepare(struct nl_keeper *k, const char *mountpoint, char **argv, char *err,
		      size_t errlen);
/* The keeper holds @fuse_fd and a copy of @tab_fd; @server serves them
 * (a first server forked before the mount, which handed the connection). */
int nl_keeper_adopt(struct nl_keeper *k, pid_t server, int tab_fd, int fuse_fd);
/* After the mount, in the process that stays: fork the first server of
 * the connection @fuse_fd with the table @tab_fd. Returns 0 in the server
 * (which serves and returns), the server's pid in the keeper, or a
 * negative errno. */
pid_t nl_keeper_fork(struct nl_keeper *k, int tab_fd, int fuse_fd);
/* A server that takes the mount over: @exe run with the mount's @argv in
 * @cwd, handed the connection and the table. Returns its pid (in the
 * caller) or a negative errno. */
pid_t nl_takeover_spawn(const char *exe, char **argv, const char *cwd, const char *mnt,
			int fuse_fd, int tab_fd);
/* Keep the keeper out of the OOM killer's choice. */
void nl_keeper_protect(void);
void nl_keeper_unprotect(void);
/* The keeper's life: until the mount is gone. Returns the exit status. */
int nl_keeper_run(struct nl_keeper *k);

/* The first server: serve @se, keeping the kernel's FUSE_INIT in the
 * table for the servers after it. Returns what the loop returned. */
int nl_serve_first(struct nl_tab *tab, struct fuse_session *se, struct nl_options *o);

/* ---- server.c: a server the keeper started ---- */

/* What the keeper hands over, from NL_TAKEOVER_ENV. */
struct nl_takeover {
	int fuse_fd;
	int tab_fd;
	char mnt[PATH_MAX];
};

int nl_takeover_parse(const char *spec, struct nl_takeover *t);

/* The session a new server makes: its operations, their userdata, and
 * libfuse's arguments; *@initialized turns true in the ops' init. */
struct nl_resume {
	const struct fuse_lowlevel_ops *ops;
	void *userdata;
	struct fuse_args *args;
	const struct nl_tab *tab;
	const bool *initialized;
};

/* The session in the state the first FUSE_INIT left the old one in. On
 * success @fuse_fd is closed: the session has it under its own number. */
int nl_session_resume(const struct nl_resume *rs, int fuse_fd, struct fuse_session **out);
/* A server killed before it read the kernel's FUSE_INIT left it waiting:
 * a session on the mount's descriptor starts as the first would. */
int nl_session_fresh(const struct nl_resume *rs, int fuse_fd, struct fuse_session **out);
/* Either of the two above. */
int nl_session_take(const struct nl_resume *rs, int fuse_fd, bool fresh,
		    struct fuse_session **out);
/* Serve a session taken over until the mount ends (a @fresh one keeps the
 * kernel's FUSE_INIT first); the exit status of the program. */
int nl_serve_taken(struct fuse_session *se, struct nl_tab *tab, struct nl_options *o,
		   struct nl_takeover *t, bool fresh);
/* Requests the dead server read and never answered come again. */
void nl_ask_resend(const char *mnt, int fuse_fd);
/* Set in the environment of the first server: keep each request in the
 * table even on a kernel that can send them again (for tests). */
#define NL_KEEP_REQUESTS_ENV "NLAYERFS_KEEP_REQUESTS"
/* After the session is resumed: the dead server's unanswered requests
 * served (kept ones, or sent again by the kernel), and the stall noted. */
void nl_took_over_session(struct nl_tab *tab, struct fuse_session *se, const char *mnt);
/* The stall the kernel saw, and who serves now. */
void nl_took_over(struct nl_tab *tab);
/* The mount is a taking-over server's to end on SIGTERM, as the first
 * one's was. */
void nl_unmount_if_mounted(const struct nl_takeover *t);

/* /run/nlayerfs/<hash of the mountpoint>.keeper */
int nl_keeper_sock_path(const char *mountpoint, char *buf, size_t len);
/* The keeper's control socket of @mnt, listening (non-blocking, root
 * only): its descriptor or a negative errno. */
int nl_keeper_listen(const char *mnt);
/* A client's one command line into @line; the stream for the answer, or
 * NULL (@fd is closed then). */
FILE *nl_keeper_command(int fd, char *line, size_t len);

/* CLOCK_MONOTONIC in microseconds, for the stall figures. */
uint64_t nl_now_us(void);
/* The mount's connection is gone (unmounted): the kernel says so on poll. */
bool nl_connection_gone(int fuse_fd);

#endif
