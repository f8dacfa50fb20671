/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The pre-mount checks: the parsed options against the file system. They
 * only look; nothing is created or written.
 */
#include "fs/options.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- checks against the file system ------------------------------------- */

/* stat @path and require a directory that the caller may use with @mode
 * (0: existence only). @role names it in messages. */
static int check_dir(const char *role, const char *path, int mode,
		     struct stat *st, char *err, size_t errlen)
{
	int e;

	if (stat(path, st) < 0) {
		e = errno;
		if (e == ENOENT)
			return nl_opt_fail(err, errlen, -e, "%s %s does not exist", role, path);
		return nl_opt_fail(err, errlen, -e, "cannot access %s %s: %s", role, path,
			    strerror(e));
	}
	if (!S_ISDIR(st->st_mode))
		return nl_opt_fail(err, errlen, -ENOTDIR, "%s %s is not a directory",
			    role, path);
	if (mode && faccessat(AT_FDCWD, path, mode, AT_EACCESS) < 0) {
		e = errno;
		return nl_opt_fail(err, errlen, -e, "%s %s is not %s: %s", role, path,
			    (mode & W_OK) ? "writable" : "readable and searchable",
			    strerror(e));
	}
	return 0;
}

/* true when @inner is @outer or lies below it; both canonical */
static bool path_within(const char *inner, const char *outer)
{
	size_t n = strlen(outer);

	if (strcmp(outer, "/") == 0)
		return true;
	return strncmp(inner, outer, n) == 0 &&
	       (inner[n] == '/' || inner[n] == '\0');
}

static int check_separate(const char *upper, const char *work,
			  char *err, size_t errlen)
{
	char *u = realpath(upper, NULL);
	char *w = realpath(work, NULL);
	int rc = 0;

	if (!u || !w)
		rc = nl_opt_fail(err, errlen, -errno, "cannot resolve upperdir/workdir: %s",
			  strerror(errno));
	else if (strcmp(u, w) == 0)
		rc = nl_opt_fail(err, errlen, -EINVAL,
			  "upperdir and workdir must be different directories (both %s)",
			  u);
	else if (path_within(w, u))
		rc = nl_opt_fail(err, errlen, -EINVAL,
			  "workdir %s is inside upperdir %s: they must be separate",
			  work, upper);
	else if (path_within(u, w))
		rc = nl_opt_fail(err, errlen, -EINVAL,
			  "upperdir %s is inside workdir %s: they must be separate",
			  upper, work);
	free(u);
	free(w);
	return rc;
}

/*
 * A lower layer that is, holds or lies in upperdir or workdir would see
 * the mount's own writes (whiteouts written into a lower layer, a tree
 * that shows itself): refused, as the kernel overlayfs refuses it.
 */
static int check_lower_apart(const char *lower, const char *role, const char *dir,
			     char *err, size_t errlen)
{
	char *l = realpath(lower, NULL);
	char *d = realpath(dir, NULL);
	int rc = 0;

	if (!l || !d)
		rc = nl_opt_fail(err, errlen, -errno, "cannot resolve lowerdir %s or %s %s: %s",
			  lower, role, dir, strerror(errno));
	else if (path_within(l, d) || path_within(d, l))
		rc = nl_opt_fail(err, errlen, -EINVAL,
			  "lowerdir %s and %s %s overlap (%s): each layer needs a "
			  "directory of its own", lower, role, dir,
			  strcmp(l, d) == 0 ? "the same directory" :
			  path_within(l, d) ? "the lowerdir is inside it" :
					      "it is inside the lowerdir");
	free(l);
	free(d);
	return rc;
}

static int check_lowers_apart(const struct nl_options *o, char *err, size_t errlen)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < o->n_lower; i++) {
		rc = check_lower_apart(o->lowerdirs[i], "upperdir", o->upperdir, err, errlen);
		if (rc == 0)
			rc = check_lower_apart(o->lowerdirs[i], "workdir", o->workdir, err,
					       errlen);
	}
	return rc;
}

static int check_upper_work(const struct nl_options *o, char *err, size_t errlen)
{
	struct stat su, sw;
	int rc;

	rc = check_dir("upperdir", o->upperdir, R_OK | W_OK | X_OK, &su, err, errlen);
	if (rc == 0)
		rc = check_dir("workdir", o->workdir, R_OK | W_OK | X_OK, &sw, err,
			       errlen);
	if (rc < 0)
		return rc;
	/* Copy-up renames from workdir into upperdir, which needs one fs. */
	if (su.st_dev != sw.st_dev)
		return nl_opt_fail(err, errlen, -EXDEV,
			    "workdir %s is not on the same file system as upperdir %s",
			    o->workdir, o->upperdir);
	return check_separate(o->upperdir, o->workdir, err, errlen);
}

/* Undo the octal escapes (\040 for a space, ...) of /proc/self/mountinfo. */
static void unescape_mountinfo(char *s)
{
	char *d = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
				      (s[3] - '0'));
			s += 3;
		} else {
			*d++ = *s;
		}
	}
	*d = '\0';
}

/* The mount point field (the fifth) of one mountinfo line, or NULL. */
static char *mountinfo_target(char *line)
{
	char *save = NULL;
	char *f = strtok_r(line, " ", &save);

	for (int i = 0; f && i < 4; i++)
		f = strtok_r(NULL, " ", &save);
	if (f)
		unescape_mountinfo(f);
	return f;
}

/* Without /proc: a mount point's device differs from its parent's, or it
 * is its own parent (the root). */
static bool busy_by_parent(const char *path, const struct stat *st)
{
	struct stat parent;
	char *up;
	bool busy = false;

	if (asprintf(&up, "%s/..", path) < 0)
		return false;
	if (stat(up, &parent) == 0)
		busy = parent.st_dev != st->st_dev || parent.st_ino == st->st_ino;
	free(up);
	return busy;
}

static bool is_mount_point(const char *path, const struct stat *st)
{
	char *canon = realpath(path, NULL);
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	bool busy = false;

	if (!f || !canon) {
		busy = busy_by_parent(path, st);
	} else {
		while (!busy && getline(&line, &cap, f) > 0) {
			const char *target = mountinfo_target(line);

			busy = target && strcmp(target, canon) == 0;
		}
	}
	if (f)
		fclose(f);
	free(line);
	free(canon);
	return busy;
}

static int check_mountpoint(const char *mp, char *err, size_t errlen)
{
	struct stat st;
	int rc;

	if (nl_is_fd_mountpoint(mp))
		return 0;
	rc = check_dir("mountpoint", mp, 0, &st, err, errlen);
	if (rc < 0)
		return rc;
	if (is_mount_point(mp, &st))
		return nl_opt_fail(err, errlen, -EBUSY,
			    "mountpoint %s is busy: something is already mounted there",
			    mp);
	return 0;
}

int nl_options_validate(const struct nl_options *o, char *err, size_t errlen)
{
	struct stat st;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	for (size_t i = 0; i < o->n_lower; i++) {
		rc = check_dir("lowerdir", o->lowerdirs[i], R_OK | X_OK, &st, err,
			       errlen);
		if (rc < 0)
			return rc;
	}
	if (o->upperdir) {
		if (!o->workdir)
			return nl_opt_fail(err, errlen, -EINVAL,
				    "workdir= is required with upperdir=");
		rc = check_upper_work(o, err, errlen);
		if (rc == 0)
			rc = check_lowers_apart(o, err, errlen);
		if (rc < 0)
			return rc;
	}
	if (!o->mountpoint)
		return nl_opt_fail(err, errlen, -EINVAL, "no mountpoint given");
	return check_mountpoint(o->mountpoint, err, errlen);
}
