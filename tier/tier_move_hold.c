/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Who still holds the NVM copy of a moved layer. A union mount, a
 * fuse-overlayfs or a shell in the directory holds it by descriptors (or
 * its working or root directory), which /proc lists with the path the
 * directory has now; the kernel's overlayfs holds its layers without a
 * descriptor, but its mount options name them. The NVM copy is deleted
 * only when none of these is left.
 */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tier/tier_move.h"

static bool under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return !strncmp(path, dir, n) && (path[n] == '/' || path[n] == '\0');
}

static bool link_under(const char *link, const char *dir)
{
	char target[PATH_MAX];
	ssize_t n = readlink(link, target, sizeof(target) - 1);

	if (n < 0)
		return false;
	target[n] = 0;
	return under(target, dir);
}

/* A file under @dir mapped by @pid (its descriptor may be closed). */
static bool maps_under(const char *maps, const char *dir)
{
	FILE *f = fopen(maps, "re");
	char *line = NULL, *path;
	size_t cap = 0;
	bool held = false;

	while (f && !held && getline(&line, &cap, f) > 0) {
		line[strcspn(line, "\n")] = 0;
		path = strchr(line, '/');
		held = path && under(path, dir);
	}
	free(line);
	if (f)
		fclose(f);
	return held;
}

/* Any descriptor, mapping, the working or the root directory of @pid
 * under @dir. */
static bool pid_holds(const char *pid, const char *dir)
{
	char p[64], fdp[64 + NAME_MAX + 2];
	struct dirent *de;
	bool held = false;
	DIR *d;

	snprintf(p, sizeof(p), "/proc/%s/cwd", pid);
	if (link_under(p, dir))
		return true;
	snprintf(p, sizeof(p), "/proc/%s/root", pid);
	if (link_under(p, dir))
		return true;
	snprintf(p, sizeof(p), "/proc/%s/maps", pid);
	if (maps_under(p, dir))
		return true;
	snprintf(p, sizeof(p), "/proc/%s/fd", pid);
	d = opendir(p);
	while (d && !held && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(fdp, sizeof(fdp), "%s/%s", p, de->d_name);
		held = link_under(fdp, dir);
	}
	if (d)
		closedir(d);
	return held;
}

/* Overlay mounts whose options name @dir or @name (its path before the
 * move: a mount made through it may hold either copy, so it counts). */
static unsigned overlay_mounts_naming(const char *dir, const char *name)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	unsigned n = 0;

	while (f && getline(&line, &cap, f) > 0) {
		const char *dash = strstr(line, " - ");

		if (dash && !strncmp(dash + 3, "overlay ", 8) &&
		    (strstr(dash, dir) || (name && strstr(dash, name))))
			n++;
	}
	free(line);
	if (f)
		fclose(f);
	return n;
}

unsigned tier_move_holders(const char *dir, const char *name)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	unsigned n = overlay_mounts_naming(dir, name);

	while (d && (de = readdir(d)))
		if (de->d_name[0] >= '1' && de->d_name[0] <= '9' && pid_holds(de->d_name, dir))
			n++;
	if (d)
		closedir(d);
	return n;
}

static int rm_one(const char *p, const struct stat *st, int type, struct FTW *f)
{
	int rc = type == FTW_DP ? rmdir(p) : unlink(p);

	(void)st;
	(void)f;
	/* a crash in the middle: the next service deletes the rest */
	tier_fault("move-reaping");
	return rc && errno != ENOENT ? -1 : 0;
}

int tier_move_rm_tree(const char *path)
{
	struct stat st;

	if (lstat(path, &st))
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) ? -errno : 0;
	return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) ? -errno : 0;
}
