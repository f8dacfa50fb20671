// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * nlbench-fsync DIR...: fsyncs every regular file and directory under each
 * DIR, so that a tree written through the page cache is on the disk, and
 * prints how many it synced.  import-bench runs it inside the throttled
 * cgroup: a small program whose few pages load once, so its time is the
 * writes, not its own start-up.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static long synced;

static int sync_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	int fd;

	(void)ftw;
	if (type != FTW_F && type != FTW_D && type != FTW_DP)
		return 0;
	if (type == FTW_F && !S_ISREG(st->st_mode))
		return 0;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (type == FTW_F ? 0 : O_DIRECTORY));
	if (fd < 0 || fsync(fd) < 0) {
		fprintf(stderr, "nlbench-fsync: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	close(fd);
	synced++;
	return 0;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (nftw(argv[i], sync_one, 64, FTW_PHYS) != 0)
			return 1;
	printf("%ld\n", synced);
	return 0;
}
