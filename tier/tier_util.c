/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Small helpers shared by the tiering files. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "tier/tier_util.h"

/* Fault tests: NLAYERFS_FAULT=<point> kills the process at that point of
 * a copy, as kill -9 or a crash there would. Points are named where they
 * are passed. */
void tier_fault(const char *point)
{
	const char *want = getenv("NLAYERFS_FAULT");

	if (want && !strcmp(want, point))
		raise(SIGKILL);
}

/* A copy writes in windows of this size behind its reads. */
#define WRITE_BEHIND_BYTES (8ULL << 20)

/*
 * Called as a copy to @fd has @written bytes: start the write-out of what
 * is new and wait for what was started before. So at most two windows are
 * dirty or in flight, and neither the final fsync nor the unlink of a copy
 * abandoned at unmount (which waits for pages in flight) waits for more.
 */
void tier_write_behind(int fd, uint64_t written, uint64_t *started)
{
	uint64_t s = *started;

	if (written - s < WRITE_BEHIND_BYTES)
		return;
	sync_file_range(fd, (off_t)s, (off_t)(written - s), SYNC_FILE_RANGE_WRITE);
	if (s)
		sync_file_range(fd, 0, (off_t)s, SYNC_FILE_RANGE_WAIT_BEFORE |
				SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
	*started = written;
}

void tier_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* FNV-1a over "layer\0path"; 0 is reserved as "empty" by the seen set. */
uint64_t tier_hash_key(const char *layer_id, const char *path)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	const char *p;

	for (p = layer_id; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
	h = (h ^ 0xff) * 0x100000001b3ULL;
	for (p = path; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
	h ^= h >> 33;
	return h ? h : 1;
}

uint64_t tier_now_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void tier_hex(const uint8_t *d, size_t n, char *out)
{
	static const char x[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = x[d[i] >> 4];
		out[2 * i + 1] = x[d[i] & 15];
	}
	out[2 * n] = '\0';
}

int tier_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* A layer-relative path: no leading '/', no empty, "." or ".." component,
 * no newline (the hot list is line based). */
bool tier_path_ok(const char *relpath)
{
	const char *p = relpath;

	if (!p || !*p || *p == '/' || strchr(p, '\n'))
		return false;
	while (*p) {
		const char *e = strchrnul(p, '/');
		size_t n = (size_t)(e - p);

		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		p = *e ? e + 1 : e;
		if (*e && !*p)
			return false;
	}
	return true;
}
