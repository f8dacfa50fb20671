/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Command line and -o option parsing for the nlayerfs daemon.
 *
 * The daemon accepts the invocations fuse-overlayfs accepts:
 *   nlayerfs -o OPTS MOUNTPOINT
 *   nlayerfs SOURCE MOUNTPOINT -o OPTS        (what mount.fuse3 runs)
 * plus -f, -d, -h/--help, -V/--version. An option nlayerfs does not know
 * fails the parse with a message naming it; what mount(8), mount.fuse3,
 * containerd and podman add is known (some of it accepted and ignored).
 */
#ifndef NLAYERFS_FS_OPTIONS_H
#define NLAYERFS_FS_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

/* One entry of a uidmapping=/gidmapping= option, written (as fuse-overlayfs
 * does) "stored:shown:count": ids stored in the layers, ids the mount shows. */
struct nl_idmap {
	unsigned int inner;	/* first id as the mount's users see it */
	unsigned int outer;	/* first id as stored in the layers */
	unsigned int count;
};

struct nl_options {
	/* Layers, topmost first, as given (leftmost lowerdir is topmost). */
	char **lowerdirs;
	size_t n_lower;
	char *upperdir;		/* NULL: read-only mount */
	char *workdir;		/* required with upperdir */

	char *mountpoint;
	char *source;		/* the SOURCE word of mount.fuse3, or NULL */

	/* Ownership. -1 means "not set". */
	bool squash_to_root;
	long squash_to_uid;
	long squash_to_gid;
	struct nl_idmap *uidmap;
	size_t n_uidmap;
	struct nl_idmap *gidmap;
	size_t n_gidmap;

	bool static_nlink;	/* directories report st_nlink 1 */
	bool noxattrs;		/* xattr calls fail with ENOTSUP */
	bool fsync;		/* fsync=0 turns fsync into a no-op */
	double timeout;		/* kernel entry/attr cache timeout, seconds */
	bool timeout_set;	/* timeout= given explicitly */

	bool foreground;	/* -f */
	bool debug;		/* -d, also implies foreground */
	bool show_help;
	bool show_version;

	/* Standard FUSE/mount options to pass on to libfuse, comma separated
	 * ("allow_other,default_permissions,ro,..."), or NULL. */
	char *fuse_opts;
	bool ro;		/* "ro" was given */
	bool allow_other;
	bool default_permissions;
	bool nosuid;		/* "nosuid" was given last, not "suid" */

	/* Options that belong to other parts (tiering, zoned checkpoints):
	 * kept as "key=value" strings, in order, for those parts to read. */
	char **extra;
	size_t n_extra;
};

/*
 * Parse argv into @o (which is zeroed and filled with defaults first).
 * Returns 0, or -EINVAL with a message naming the problem (an unknown
 * option, a bad value) in @err.
 * On failure @o is left freed and zeroed. The loop settings max_threads=,
 * max_idle_threads= and clone_fd are kept in @o->extra.
 */
int nl_options_parse(int argc, char **argv, struct nl_options *o,
		     char *err, size_t errlen);

/*
 * Parse one "-o" option string (comma separated, "\," escapes a comma) into
 * @o. Used by nl_options_parse and by the unit tests.
 */
int nl_options_parse_string(const char *opts, struct nl_options *o,
			    char *err, size_t errlen);

/*
 * Split a lowerdir= value at unescaped colons ("\:" is a literal colon).
 * Returns the number of directories (>0) and a NULL-terminated array in
 * @out, or -EINVAL (empty component, nothing given).
 */
int nl_split_lowerdirs(const char *value, char ***out);

/*
 * Parse a uidmapping=/gidmapping= value: "outer:inner:count" entries
 * separated by ':' (fuse-overlayfs) or ',' — e.g. "1000:0:1:100000:1:65536".
 * Returns the number of entries, or -EINVAL.
 */
int nl_parse_idmap(const char *value, struct nl_idmap **out);
/* One id: decimal digits of @s (@len of them), at most 2^32 - 1; -EINVAL. */
int nl_parse_id(const char *s, size_t len, unsigned int *id);

/* Map an id through a mapping, either way. Ids outside every range map to
 * the overflow id (65534); with no mapping at all (n == 0) ids pass
 * unchanged. */
unsigned int nl_idmap_to_outer(const struct nl_idmap *m, size_t n,
			       unsigned int inner);
unsigned int nl_idmap_to_inner(const struct nl_idmap *m, size_t n,
			       unsigned int outer);

/*
 * Check the parsed options against the file system before mounting: every
 * lowerdir exists and is a readable directory, upperdir and workdir exist,
 * are writable and lie on the same file system, workdir is not inside
 * upperdir (or the other way round), the mountpoint exists, is a directory
 * and is not already in use. Nothing is created or written.
 * Returns 0 or a negative errno with a message in @err.
 */
int nl_options_validate(const struct nl_options *o, char *err, size_t errlen);

/* Look up "key" among the extra options; returns its value or NULL. */
const char *nl_options_extra(const struct nl_options *o, const char *key);

/* Print the --help text (usage, every option, with defaults). */
void nl_options_usage(FILE *out, const char *progname);

void nl_options_free(struct nl_options *o);

/*
 * fuse-overlayfs keeps kernel caches practically forever by default: the
 * lower layers never change under a mount, and every change made through
 * the mount goes through the daemon, which answers with fresh attributes.
 */
#define NL_DEFAULT_TIMEOUT 1000000000.0

/* Shared by the parser and the checks: write a message into @err (if not
 * NULL) and return @rc; is @p a /dev/fd/N mountpoint (mount.fuse3 has
 * mounted /dev/fuse already)? */
int nl_opt_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
bool nl_is_fd_mountpoint(const char *p);

#endif
