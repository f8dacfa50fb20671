/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The FUSE session of a mount served by this process, the same for both
 * file systems (the union and the checkpoint mount): libfuse's arguments,
 * the mount, the signal handlers and the multi-threaded loop.
 */
#ifndef NLAYERFS_FS_SESSION_H
#define NLAYERFS_FS_SESSION_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312
#endif
#include <fuse_lowlevel.h>

#include "fs/options.h"

struct nl_serve {
	const struct fuse_lowlevel_ops *ops;
	void *userdata;			/* what the operations get */
	struct nl_options *opt;		/* mount point, loop options */
	struct fuse_args *args;		/* from nl_session_args; freed by nl_serve */
	/* Once the mount is usable, before the loop: returns 0 to serve it. */
	int (*mounted)(struct fuse_session *se, void *arg);
	/* Serves the mounted session instead of nl_run_loop when set; returns
	 * the exit status of the program. */
	int (*run)(struct fuse_session *se, void *arg);
	void *arg;
};

/*
 * Where the loop keeps each request it is serving, for a server that takes
 * the mount over after this one is killed (kernels without
 * FUSE_NOTIFY_RESEND lose a request a dead server had read). Each thread
 * claims a place for its life, and the kernel copies each request straight
 * into it: read, the request is kept, with no moment in between.
 */
enum nl_rec_state { NL_REC_IDLE = 1, NL_REC_READING = 2, NL_REC_SERVING = 3 };

struct nl_recorder {
	/* A place and its buffer (written through, so the kernel's copy never
	 * faults), or -1 when none is free. */
	int (*claim)(struct nl_recorder *r, void **buf, size_t *size);
	void (*set)(struct nl_recorder *r, int slot, enum nl_rec_state state);
	void (*release)(struct nl_recorder *r, int slot);
};

/* libfuse's arguments: @prog, the file system's own -o options @own, the
 * ones every mount by root gets, then what the user passed through. */
int nl_session_args(struct fuse_args *args, const char *prog, const char *own,
		    const struct nl_options *o);

/* Serve requests on @se until it is unmounted or signalled; the loop's
 * threads as max_threads=, max_idle_threads=, clone_fd say; each request
 * kept by @rec while it is served, if @rec is not NULL. */
int nl_run_loop(struct fuse_session *se, struct nl_options *o, struct nl_recorder *rec);

/* Create the session, mount it, serve it, unmount it. Returns the exit
 * status of the program (0 or 1). */
int nl_serve(const struct nl_serve *s);

#endif
