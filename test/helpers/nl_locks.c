// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * nl_locks FILE: POSIX record locks and flock between two processes.
 * The parent takes a write lock (F_SETLK) on bytes 0..99 and a flock
 * LOCK_EX; a child (own open file description) must see F_SETLK fail with
 * EAGAIN/EACCES on that range, succeed on bytes 200..299, see F_GETLK
 * report the parent's pid, and fail LOCK_EX|LOCK_NB with EWOULDBLOCK.
 * After the parent releases both, the child must get them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

static int setlk(int fd, short type, off_t start, off_t len)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };

	return fcntl(fd, F_SETLK, &fl);
}

static int child_checks(const char *path, pid_t parent, int phase)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 100 };
	int fd = open(path, O_RDWR);

	if (fd < 0) {
		perror("child open");
		return 1;
	}
	if (phase == 2) {
		if (setlk(fd, F_WRLCK, 0, 100) < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) {
			fprintf(stderr, "locks not available after release: %s\n", strerror(errno));
			return 1;
		}
		return 0;
	}
	if (setlk(fd, F_WRLCK, 0, 100) == 0 || (errno != EAGAIN && errno != EACCES)) {
		fprintf(stderr, "conflicting F_SETLK: want EAGAIN/EACCES, got %s\n",
			strerror(errno));
		return 1;
	}
	if (setlk(fd, F_WRLCK, 200, 100) < 0) {
		fprintf(stderr, "F_SETLK on a free range failed: %s\n", strerror(errno));
		return 1;
	}
	if (fcntl(fd, F_GETLK, &fl) < 0 || fl.l_type == F_UNLCK || fl.l_pid != parent) {
		fprintf(stderr, "F_GETLK: type %d pid %d, want the parent's lock (pid %d)\n",
			fl.l_type, fl.l_pid, parent);
		return 1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK) {
		fprintf(stderr, "conflicting flock: want EWOULDBLOCK, got %s\n", strerror(errno));
		return 1;
	}
	return 0;
}

static int in_child(const char *path, int phase)
{
	pid_t parent = getpid(), pid = fork();
	int st;

	if (pid == 0)
		_exit(child_checks(path, parent, phase));
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return 1;
	return !WIFEXITED(st) || WEXITSTATUS(st) != 0;
}

int main(int argc, char **argv)
{
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: nl_locks FILE\n");
		return 2;
	}
	fd = open(argv[1], O_RDWR);
	if (fd < 0) {
		perror("open");
		return 1;
	}
	if (setlk(fd, F_WRLCK, 0, 100) < 0 || flock(fd, LOCK_EX) < 0) {
		perror("parent lock");
		return 1;
	}
	if (in_child(argv[1], 1))
		return 1;
	if (setlk(fd, F_UNLCK, 0, 100) < 0 || flock(fd, LOCK_UN) < 0) {
		perror("parent unlock");
		return 1;
	}
	if (in_child(argv[1], 2))
		return 1;
	close(fd);
	return 0;
}
