// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * nl_dino DIR: every entry of DIR (but "..") must have d_ino equal to the
 * st_ino of an lstat of it. Prints each mismatch; exit 1 if any.
 * With -p, prints "NAME INO" for every entry instead of checking.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int main(int argc, char **argv)
{
	int print = argc == 3 && !strcmp(argv[1], "-p");
	const char *dir = argv[argc - 1];
	struct dirent *e;
	struct stat st;
	int bad = 0;
	DIR *d;

	if (argc < 2 || !(d = opendir(dir))) {
		perror("opendir");
		return 2;
	}
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			printf("%s: listed but lstat fails\n", e->d_name);
			bad = 1;
			continue;
		}
		if (print)
			printf("%s %lu\n", e->d_name, (unsigned long)e->d_ino);
		else if (e->d_ino != st.st_ino) {
			/* a few examples are enough to see the pattern */
			if (bad++ < 10)
				printf("%s: d_ino %lu, st_ino %lu\n", e->d_name,
				       (unsigned long)e->d_ino, (unsigned long)st.st_ino);
		}
	}
	closedir(d);
	if (bad > 10)
		printf("... %d mismatches in all\n", bad);
	return bad != 0;
}
