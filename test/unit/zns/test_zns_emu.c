/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The zoned device: every refusal a device makes (with its errno), every
 * zone state transition, open/active limits, state surviving close/reopen
 * and kill -9, and the per-group bandwidth model. Runs on the emulator, or
 * on the device named by NLAYERFS_ZNS_DEV (emulator-only tests then skip).
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>

#include "test/unit/zns/test_zns_common.h"

static int setup(void **state)
{
	struct tdev *t = calloc(1, sizeof(*t));
	struct zns_geometry g = tdev_default_geometry();

	if (!t || tdev_open(t, &g, NULL)) {
		free(t);
		return -1;
	}
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct tdev *t = *state;

	tdev_reset_all(t);
	tdev_close(t);
	free(t);
	return 0;
}

static struct zns_zone_info report(struct tdev *t, uint32_t zone)
{
	struct zns_zone_info zi;

	assert_int_equal(zns_zone_report(t->dev, zone, &zi), 0);
	return zi;
}

static void write_blocks(struct tdev *t, uint32_t zone, uint32_t nblocks, unsigned seed)
{
	size_t len = (size_t)nblocks * t->g->block_size;
	void *b = tbuf(len, t->g->block_size, seed);

	assert_non_null(b);
	assert_int_equal(zns_zone_write(t->dev, zone, report(t, zone).wp, b, len), (ssize_t)len);
	free(b);
}

static void skip_on_device(struct tdev *t)
{
	if (t->real)
		skip();
}

static void test_geometry_checked(void **state)
{
	struct zns_geometry g = tdev_default_geometry(), bad;
	char why[128];

	(void)state;
	assert_int_equal(zns_geometry_check(&g, why, sizeof(why)), 0);
	bad = g, bad.zone_cap = g.zone_size + g.block_size;
	assert_int_equal(zns_geometry_check(&bad, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "capacity"));
	bad = g, bad.block_size = 1000;
	assert_int_equal(zns_geometry_check(&bad, why, sizeof(why)), -EINVAL);
	bad = g, bad.zone_size = g.zone_size + 1;
	assert_int_equal(zns_geometry_check(&bad, why, sizeof(why)), -EINVAL);
	bad = g, bad.channels = 0;
	assert_int_equal(zns_geometry_check(&bad, why, sizeof(why)), -EINVAL);
	bad = g, bad.channels = 8, bad.ways = 4;
	assert_int_equal(zns_geometry_check(&bad, why, sizeof(why)), -EINVAL);
	bad = g, bad.nr_zones = 0;
	assert_int_equal(zns_geometry_check(&bad, why, sizeof(why)), -EINVAL);
	assert_int_equal(zns_emu_create("/tmp/nl-Z-never", &bad), -EINVAL);
	assert_int_equal(access("/tmp/nl-Z-never", F_OK), -1);
	/* Never over a device node, and never removes it. */
	assert_int_equal(zns_emu_create("/dev/null", &g), -EEXIST);
	{
		struct stat st;

		assert_int_equal(stat("/dev/null", &st), 0);
		assert_true(S_ISCHR(st.st_mode));
	}
}

static void test_group_membership(void **state)
{
	struct tdev *t = *state;
	uint32_t m = zns_nr_groups(t->g);
	struct zns_geometry g18 = { .channels = 6, .ways = 3 };

	assert_int_equal(m, t->g->channels * t->g->ways);
	for (uint32_t z = 0; z < t->g->nr_zones; z++) {
		assert_int_equal(zns_zone_group(t->g, z), z % m);
		assert_int_equal(report(t, z).group, z % m);
	}
	assert_int_equal(zns_nr_groups(&g18), 18);
	assert_int_equal(zns_zone_group(&g18, 17), 17);
	assert_int_equal(zns_zone_group(&g18, 18), 0);
	assert_int_equal(zns_zone_group(&g18, 41), 5);
}

static void test_write_at_wp_and_implicit_open(void **state)
{
	struct tdev *t = *state;
	uint32_t bs = t->g->block_size;
	void *b = tbuf(2 * bs, bs, 1), *r = tbuf(2 * bs, bs, 0);

	assert_int_equal(report(t, 1).state, ZNS_ZONE_EMPTY);
	assert_int_equal(zns_dev_active_zones(t->dev), 0);
	assert_int_equal(zns_zone_write(t->dev, 1, 0, b, 2 * bs), 2 * bs);
	assert_int_equal(zns_dev_active_zones(t->dev), 1);
	assert_int_equal(report(t, 1).state, ZNS_ZONE_IOPEN);
	assert_int_equal(report(t, 1).wp, 2 * bs);
	assert_int_equal(zns_zone_read(t->dev, 1, 0, r, 2 * bs), 2 * bs);
	assert_memory_equal(b, r, 2 * bs);
	/* Not at the write pointer: behind it, at it again, ahead of it. */
	assert_int_equal(zns_zone_write(t->dev, 1, 0, b, bs), -EIO);
	assert_int_equal(zns_zone_write(t->dev, 1, bs, b, bs), -EIO);
	assert_int_equal(zns_zone_write(t->dev, 1, 3 * bs, b, bs), -EIO);
	assert_int_equal(report(t, 1).wp, 2 * bs);
	free(b);
	free(r);
}

static void test_unaligned_refused(void **state)
{
	struct tdev *t = *state;
	uint32_t bs = t->g->block_size;
	char *b = tbuf(3 * bs, bs, 2);

	assert_int_equal(zns_zone_write(t->dev, 2, 0, b, bs - 512), -EINVAL);
	assert_int_equal(zns_zone_write(t->dev, 2, 0, b + 512, bs), -EINVAL);
	assert_int_equal(zns_zone_write(t->dev, 2, 512, b, bs), -EINVAL);
	assert_int_equal(zns_zone_write(t->dev, t->g->nr_zones, 0, b, bs), -EINVAL);
	assert_int_equal(zns_zone_read(t->dev, 2, 0, b + 1, bs), -EINVAL);
	assert_int_equal(report(t, 2).state, ZNS_ZONE_EMPTY);
	assert_int_equal(report(t, 2).wp, 0);
	free(b);
}

static void test_capacity_and_full(void **state)
{
	struct tdev *t = *state;
	uint64_t cap = t->g->zone_cap;
	uint32_t bs = t->g->block_size;
	void *b = tbuf(cap + bs, bs, 3);

	/* One block past the capacity: refused, nothing written. */
	assert_int_equal(zns_zone_write(t->dev, 3, 0, b, cap + bs), -EIO);
	assert_int_equal(report(t, 3).wp, 0);
	assert_int_equal(zns_zone_write(t->dev, 3, 0, b, cap - bs), (ssize_t)(cap - bs));
	assert_int_equal(zns_zone_write(t->dev, 3, cap - bs, b, 2 * bs), -EIO);
	assert_int_equal(zns_zone_write(t->dev, 3, cap - bs, b, bs), bs);
	assert_int_equal(report(t, 3).state, ZNS_ZONE_FULL);
	assert_int_equal(report(t, 3).wp, cap);
	assert_int_equal(zns_zone_write(t->dev, 3, cap, b, bs), -EIO);
	free(b);
}

static void test_state_transitions(void **state)
{
	struct tdev *t = *state;

	/* EMPTY -> EOPEN -> CLOSED, as NVMe does even with nothing written. */
	assert_int_equal(zns_zone_close(t->dev, 4), -EIO);
	assert_int_equal(zns_zone_open(t->dev, 4), 0);
	assert_int_equal(report(t, 4).state, ZNS_ZONE_EOPEN);
	assert_int_equal(zns_zone_open(t->dev, 4), 0);
	assert_int_equal(zns_zone_close(t->dev, 4), 0);
	assert_int_equal(report(t, 4).state, ZNS_ZONE_CLOSED);
	assert_int_equal(report(t, 4).wp, 0);
	/* EOPEN stays EOPEN on write; close with data -> CLOSED. */
	assert_int_equal(zns_zone_open(t->dev, 4), 0);
	write_blocks(t, 4, 1, 4);
	assert_int_equal(report(t, 4).state, ZNS_ZONE_EOPEN);
	assert_int_equal(zns_zone_close(t->dev, 4), 0);
	assert_int_equal(report(t, 4).state, ZNS_ZONE_CLOSED);
	assert_int_equal(zns_zone_close(t->dev, 4), 0);
	/* CLOSED -> IOPEN on write; -> EOPEN on open. */
	write_blocks(t, 4, 1, 5);
	assert_int_equal(report(t, 4).state, ZNS_ZONE_IOPEN);
	assert_int_equal(zns_zone_open(t->dev, 4), 0);
	assert_int_equal(report(t, 4).state, ZNS_ZONE_EOPEN);
	/* Finish -> FULL; FULL refuses open, close and writes. */
	assert_int_equal(zns_zone_finish(t->dev, 4), 0);
	assert_int_equal(report(t, 4).state, ZNS_ZONE_FULL);
	assert_int_equal(report(t, 4).wp, t->g->zone_cap);
	assert_int_equal(zns_zone_open(t->dev, 4), -EIO);
	assert_int_equal(zns_zone_close(t->dev, 4), -EIO);
	/* Finish of an EMPTY zone is allowed too. */
	assert_int_equal(zns_zone_finish(t->dev, 5), 0);
	assert_int_equal(report(t, 5).state, ZNS_ZONE_FULL);
	/* Reset -> EMPTY at wp 0, from FULL and from IOPEN. */
	assert_int_equal(zns_zone_reset(t->dev, 4), 0);
	assert_int_equal(report(t, 4).state, ZNS_ZONE_EMPTY);
	assert_int_equal(report(t, 4).wp, 0);
	write_blocks(t, 4, 2, 6);
	assert_int_equal(zns_zone_reset(t->dev, 4), 0);
	assert_int_equal(report(t, 4).state, ZNS_ZONE_EMPTY);
	assert_int_equal(zns_zone_reset(t->dev, 5), 0);
}

static void test_reset_drops_data(void **state)
{
	struct tdev *t = *state;
	uint32_t bs = t->g->block_size;
	unsigned char *r, *zero;

	/* skip() leaves the test at once: nothing is allocated before it */
	skip_on_device(t);	/* a device may refuse reads above the wp instead */
	r = tbuf(bs, bs, 0);
	zero = calloc(1, bs);
	write_blocks(t, 6, 1, 7);
	assert_int_equal(zns_zone_reset(t->dev, 6), 0);
	assert_int_equal(zns_zone_read(t->dev, 6, 0, r, bs), bs);
	assert_memory_equal(r, zero, bs);
	free(r);
	free(zero);
}

static void test_max_open(void **state)
{
	struct tdev *t = *state;
	uint32_t mo = t->g->max_open, z;
	uint32_t bs = t->g->block_size;
	void *b;

	if (!mo || mo >= t->g->nr_zones || (t->g->max_active && t->g->max_active <= mo))
		skip();
	b = tbuf(bs, bs, 8);
	for (z = 0; z < mo; z++)
		assert_int_equal(zns_zone_open(t->dev, z), 0);
	/* All open zones explicitly opened: no room, nothing to close. */
	assert_int_equal(zns_zone_open(t->dev, mo), -ETOOMANYREFS);
	assert_int_equal(zns_zone_write(t->dev, mo, 0, b, bs), -ETOOMANYREFS);
	assert_int_equal(report(t, mo).state, ZNS_ZONE_EMPTY);
	/* Close one; then the write opens the zone implicitly. */
	assert_int_equal(zns_zone_close(t->dev, 0), 0);
	assert_int_equal(zns_zone_write(t->dev, mo, 0, b, bs), bs);
	assert_int_equal(report(t, mo).state, ZNS_ZONE_IOPEN);
	free(b);
}

static void test_implicit_open_closes_implicit(void **state)
{
	struct tdev *t = *state;
	uint32_t mo = t->g->max_open, z, open = 0, closed = 0;

	skip_on_device(t);	/* which zone a device closes is its own choice */
	if (!mo || mo >= t->g->nr_zones || (t->g->max_active && t->g->max_active <= mo))
		skip();
	for (z = 0; z <= mo; z++)
		write_blocks(t, z, 1, z);
	for (z = 0; z <= mo; z++) {
		enum zns_zone_state s = report(t, z).state;

		open += s == ZNS_ZONE_IOPEN;
		closed += s == ZNS_ZONE_CLOSED;
	}
	assert_int_equal(open, mo);
	assert_int_equal(closed, 1);
	assert_int_equal(report(t, mo).state, ZNS_ZONE_IOPEN);
}

static void test_max_active(void **state)
{
	struct tdev *t = *state;
	uint32_t ma = t->g->max_active, z;
	uint32_t bs = t->g->block_size;
	void *b;
	int rc;

	if (!ma || ma >= t->g->nr_zones)
		skip();
	b = tbuf(bs, bs, 9);
	for (z = 0; z < ma; z++) {
		write_blocks(t, z, 1, z);
		assert_int_equal(zns_zone_close(t->dev, z), 0);
	}
	assert_int_equal(zns_dev_active_zones(t->dev), (int)ma);
	assert_int_equal(zns_zone_write(t->dev, ma, 0, b, bs), -EOVERFLOW);
	assert_int_equal(zns_zone_open(t->dev, ma), -EOVERFLOW);
	assert_int_equal(report(t, ma).state, ZNS_ZONE_EMPTY);
	/* A closed zone can still be written: it is already active. */
	write_blocks(t, 0, 1, 10);
	/*
	 * Finishing an empty zone needs an active resource too, on the
	 * emulator as on null_blk; qemu's ZNS namespace finishes it without
	 * one, so a real device may do either.
	 */
	rc = zns_zone_finish(t->dev, ma + 1);
	if (t->real)
		assert_true(rc == 0 || rc == -EOVERFLOW);
	else
		assert_int_equal(rc, -EOVERFLOW);
	/* Finishing one frees an active resource. */
	assert_int_equal(zns_zone_finish(t->dev, 1), 0);
	assert_int_equal(zns_dev_active_zones(t->dev), (int)ma - 1);
	assert_int_equal(zns_zone_write(t->dev, ma, 0, b, bs), bs);
	/* Back at the limit, finishing a full zone is a no-op, not a refusal. */
	assert_int_equal(zns_dev_active_zones(t->dev), (int)ma);
	assert_int_equal(zns_zone_finish(t->dev, 1), 0);
	assert_int_equal(report(t, 1).state, ZNS_ZONE_FULL);
	free(b);
}

static void test_state_survives_reopen(void **state)
{
	struct tdev *t = *state;
	uint32_t bs = t->g->block_size;
	void *b = tbuf(3 * bs, bs, 11), *r = tbuf(3 * bs, bs, 0);

	assert_int_equal(zns_zone_write(t->dev, 7, 0, b, 3 * bs), 3 * bs);
	assert_int_equal(zns_zone_finish(t->dev, 8), 0);
	write_blocks(t, 9, 1, 12);
	assert_int_equal(zns_zone_close(t->dev, 9), 0);
	assert_int_equal(tdev_reopen(t, NULL), 0);
	assert_int_equal(report(t, 7).wp, 3 * bs);
	assert_int_equal(report(t, 8).state, ZNS_ZONE_FULL);
	assert_int_equal(report(t, 9).state, ZNS_ZONE_CLOSED);
	assert_int_equal(report(t, 9).wp, bs);
	assert_int_equal(zns_zone_read(t->dev, 7, 0, r, 3 * bs), 3 * bs);
	assert_memory_equal(b, r, 3 * bs);
	assert_int_equal(zns_zone_write(t->dev, 7, 0, b, bs), -EIO);
	free(b);
	free(r);
}

static void test_state_survives_kill9(void **state)
{
	struct tdev *t = *state;
	uint32_t bs = t->g->block_size;
	void *r, *want;
	int status;
	pid_t pid;

	skip_on_device(t);
	r = tbuf(2 * bs, bs, 0);
	want = tbuf(2 * bs, bs, 13);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct zns_dev *d;
		void *b = tbuf(2 * bs, bs, 13);

		if (zns_open(t->path, NULL, &d) || zns_zone_write(d, 10, 0, b, 2 * bs) != 2 * bs)
			_exit(1);
		raise(SIGKILL);
		_exit(2);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	assert_int_equal(tdev_reopen(t, NULL), 0);
	assert_int_equal(report(t, 10).wp, 2 * bs);
	assert_int_equal(report(t, 10).state, ZNS_ZONE_IOPEN);
	assert_int_equal(zns_zone_read(t->dev, 10, 0, r, 2 * bs), 2 * bs);
	assert_memory_equal(r, want, 2 * bs);
	free(r);
	free(want);
}

static void test_bad_file_refused(void **state)
{
	char path[] = "/tmp/nl-Z-bad-XXXXXX";
	struct zns_dev *d = NULL;
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "not a zoned device", 18), 18);
	close(fd);
	assert_int_equal(zns_open(path, NULL, &d), -EINVAL);
	/* A real emulator file cut short is refused too. */
	{
		struct zns_geometry g = tdev_default_geometry();

		assert_int_equal(zns_emu_create(path, &g), 0);
		assert_int_equal(zns_open(path, NULL, &d), 0);
		zns_close(d);
		assert_int_equal(truncate(path, 8192), 0);
		assert_int_equal(zns_open(path, NULL, &d), -EINVAL);
	}
	unlink(path);
	assert_int_equal(zns_open("/tmp/nl-Z-missing", NULL, &d), -ENOENT);
	assert_int_equal(zns_open("/tmp", NULL, &d), -ENODEV);
}

/* Overwrite @len bytes at @off of the file @path. */
static void poke(const char *path, off_t off, const void *v, size_t len)
{
	int fd = open(path, O_WRONLY);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, v, len, off), (ssize_t)len);
	close(fd);
}

/* Opening @path fails with EINVAL and the reason names @word. */
static void assert_refused_naming(const char *path, const char *word)
{
	struct zns_dev *d = NULL;
	char why[512] = "";

	assert_int_equal(zns_open_why(path, NULL, &d, why, sizeof(why)), -EINVAL);
	if (!strstr(why, word))
		fail_msg("reason '%s' does not name '%s'", why, word);
}

/* A damaged header is refused with the field that is wrong, not just EINVAL. */
static void test_corrupt_header_named(void **state)
{
	char path[] = "/tmp/nl-Z-hdr-XXXXXX";
	struct zns_geometry g = tdev_default_geometry();
	uint32_t v32 = 7, zero = 0;
	uint64_t v64 = 100;
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(zns_emu_create(path, &g), 0);
	poke(path, 0, "XXXXXXXX", 8);
	assert_refused_naming(path, "magic");
	assert_int_equal(zns_emu_create(path, &g), 0);
	poke(path, 8, &v32, 4);
	assert_refused_naming(path, "version");
	assert_int_equal(zns_emu_create(path, &g), 0);
	poke(path, 12, &zero, 4);
	assert_refused_naming(path, "nr_zones");
	assert_int_equal(zns_emu_create(path, &g), 0);
	poke(path, 64, &v64, 8);
	assert_refused_naming(path, "data_off");
	assert_int_equal(zns_emu_create(path, &g), 0);
	poke(path, 32, &v32, 4);		/* block size 7 */
	assert_refused_naming(path, "block size");
	assert_int_equal(zns_emu_create(path, &g), 0);
	poke(path, 136 + 16 * 3 + 8, &v32, 4);	/* zone 3's state */
	assert_refused_naming(path, "zone record 3");
	assert_int_equal(zns_emu_create(path, &g), 0);
	assert_int_equal(truncate(path, 1 << 20), 0);
	assert_refused_naming(path, "truncated");
	unlink(path);
}

/* A block device that is not zoned goes to the libzbd backend, which refuses it. */
static void test_non_zoned_block_device_refused(void **state)
{
	char path[300], dev[300], zoned[32];
	struct zns_dev *d = NULL;
	struct dirent *e;
	DIR *dir = opendir("/sys/block");
	bool found = false;

	(void)state;
	if (!dir)
		skip();
	while (!found && (e = readdir(dir))) {
		FILE *f;

		snprintf(path, sizeof(path), "/sys/block/%s/queue/zoned", e->d_name);
		snprintf(dev, sizeof(dev), "/dev/%s", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		found = fgets(zoned, sizeof(zoned), f) && !strncmp(zoned, "none", 4) &&
			access(dev, F_OK) == 0;
		fclose(f);
	}
	closedir(dir);
	if (!found) {
		print_message("no regular block device to try\n");
		skip();
	}
	assert_int_equal(zns_open(dev, NULL, &d), -ENXIO);
	assert_null(d);
}

/* ---------------- bandwidth model ---------------- */

struct bw_job {
	struct zns_dev *dev;
	uint32_t zone;
	size_t len;
	void *buf;
	ssize_t rc;
};

static void *bw_writer(void *arg)
{
	struct bw_job *j = arg;
	size_t chunk = 64 << 10;

	for (size_t off = 0; off < j->len; off += chunk) {
		j->rc = zns_zone_write(j->dev, j->zone, off, j->buf, chunk);
		if (j->rc < 0)
			break;
	}
	return NULL;
}

static double seconds_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Two writers in parallel on @za and @zb; returns the elapsed seconds. */
static double timed_pair(struct zns_dev *d, uint32_t za, uint32_t zb, size_t len, void *buf)
{
	struct bw_job a = { d, za, len, buf, 0 }, b = { d, zb, len, buf, 0 };
	pthread_t ta, tb;
	double t0 = seconds_now();

	pthread_create(&ta, NULL, bw_writer, &a);
	pthread_create(&tb, NULL, bw_writer, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	assert_true(a.rc > 0 && b.rc > 0);
	return seconds_now() - t0;
}

static void test_bandwidth_model(void **state)
{
	struct tdev *t = *state;
	struct zns_open_opts o = { .zone_bw = 8 << 20 };	/* 8 MiB/s per group */
	size_t len = 512 << 10;					/* 64 ms alone */
	uint32_t m;
	void *buf;
	double same, apart;

	skip_on_device(t);
	assert_int_equal(tdev_reopen(t, &o), 0);
	m = zns_nr_groups(t->g);
	buf = tbuf(64 << 10, t->g->block_size, 14);
	same = timed_pair(t->dev, 0, m, len, buf);	/* zones 0 and m: group 0 */
	apart = timed_pair(t->dev, 1, 2, len, buf);	/* groups 1 and 2 */
	/* One group: 1 MiB at 8 MiB/s = 125 ms; two groups: 64 ms each, in parallel. */
	assert_true(same >= 0.110);
	assert_true(apart >= 0.055);
	assert_true(same > apart * 1.5);
	free(buf);
	assert_int_equal(tdev_reopen(t, NULL), 0);
}

/*
 * Parent writes @zp while a child process writes @zc of the same emulated
 * device; returns the parent's elapsed seconds.
 */
static double timed_with_child(struct tdev *t, const struct zns_open_opts *o,
			       uint32_t zp, uint32_t zc, size_t len, void *buf)
{
	int ready[2], go[2], status;
	struct bw_job j = { t->dev, zp, len, buf, 0 };
	double t0;
	char c = 0;
	pid_t pid;

	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct zns_dev *d;
		struct bw_job cj = { NULL, zc, len, buf, 0 };

		if (zns_open(t->path, o, &d))
			_exit(1);
		cj.dev = d;
		if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(1);
		bw_writer(&cj);
		_exit(cj.rc > 0 ? 0 : 1);
	}
	assert_int_equal(read(ready[0], &c, 1), 1);
	assert_int_equal(write(go[1], &c, 1), 1);
	t0 = seconds_now();
	bw_writer(&j);
	t0 = seconds_now() - t0;
	assert_true(j.rc > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	close(go[1]);
	return t0;
}

/* A group's bandwidth is shared by every process writing the device. */
static void test_bandwidth_shared_across_processes(void **state)
{
	struct tdev *t = *state;
	struct zns_open_opts o = { .zone_bw = 8 << 20 };
	size_t len = 512 << 10;
	uint32_t m;
	void *buf;
	double same, apart;

	skip_on_device(t);
	assert_int_equal(tdev_reopen(t, &o), 0);
	m = zns_nr_groups(t->g);
	buf = tbuf(64 << 10, t->g->block_size, 15);
	same = timed_with_child(t, &o, 0, m, len, buf);
	apart = timed_with_child(t, &o, 1, 2, len, buf);
	assert_true(same >= 0.090);
	assert_true(same > apart * 1.3);
	free(buf);
	assert_int_equal(tdev_reopen(t, NULL), 0);
}

/* Two processes write the same zone at the same write pointer: one wins, as on a device. */
static void test_same_zone_two_processes(void **state)
{
	struct tdev *t = *state;
	struct zns_open_opts o = { .zone_bw = 8 << 20 };
	size_t len = 64 << 10;
	void *buf;
	int go[2], status;
	ssize_t rc;
	char c = 0;
	pid_t pid;

	skip_on_device(t);
	assert_int_equal(tdev_reopen(t, &o), 0);
	buf = tbuf(len, t->g->block_size, 16);
	assert_int_equal(pipe(go), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct zns_dev *d;

		if (zns_open(t->path, &o, &d) || read(go[0], &c, 1) != 1)
			_exit(2);
		_exit(zns_zone_write(d, 12, 0, buf, len) == (ssize_t)len ? 0 : 1);
	}
	assert_int_equal(write(go[1], &c, 1), 1);
	rc = zns_zone_write(t->dev, 12, 0, buf, len);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) < 2);
	/* Exactly one of the two writes went through. */
	assert_int_equal((rc == (ssize_t)len) + (WEXITSTATUS(status) == 0), 1);
	assert_true(rc == (ssize_t)len || rc == -EIO);
	assert_int_equal(report(t, 12).wp, len);
	close(go[0]);
	close(go[1]);
	free(buf);
	assert_int_equal(tdev_reopen(t, NULL), 0);
}

/* A process killed in the middle of a write does not leave its zone busy forever. */
static void test_dead_writer_does_not_block(void **state)
{
	struct tdev *t = *state;
	struct zns_open_opts slow = { .zone_bw = 1 << 20 };	/* 256 KiB: 250 ms */
	size_t len = 256 << 10;
	uint32_t bs = t->g->block_size;
	void *buf, *blk;
	int ready[2], status;
	char c = 0;
	pid_t pid;

	skip_on_device(t);
	buf = tbuf(len, bs, 17);
	blk = tbuf(bs, bs, 18);
	assert_int_equal(pipe(ready), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct zns_dev *d;

		if (zns_open(t->path, &slow, &d) || write(ready[1], &c, 1) != 1)
			_exit(2);
		zns_zone_write(d, 13, 0, buf, len);
		_exit(0);
	}
	assert_int_equal(read(ready[0], &c, 1), 1);
	usleep(80 * 1000);
	/* Still writing: the zone refuses a second writer. */
	assert_int_equal(zns_zone_write(t->dev, 13, 0, blk, bs), -EIO);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	/* Its write never completed: the pointer did not move, and the zone takes writes. */
	assert_int_equal(report(t, 13).wp, 0);
	assert_int_equal(zns_zone_write(t->dev, 13, 0, blk, bs), bs);
	assert_int_equal(report(t, 13).wp, bs);
	close(ready[0]);
	close(ready[1]);
	free(buf);
	free(blk);
}

/* Index of the one 32-bit word of the emulator's header that holds @v, or -1. */
static long header_word(int fd, uint32_t *words, size_t len, uint32_t v)
{
	long at = -1;

	assert_int_equal(pread(fd, words, len, 0), (ssize_t)len);
	for (size_t i = 0; i < len / 4; i++) {
		if (words[i] != v)
			continue;
		assert_int_equal(at, -1);
		at = (long)i;
	}
	return at;
}

/*
 * The mark a killed writer left names a pid that another process may have
 * by now: the zone must still take writes. The dead writer's pid is found
 * in the zone records and given to a live child that never writes.
 */
static void test_dead_writer_pid_reused(void **state)
{
	struct tdev *t = *state;
	struct zns_open_opts slow = { .zone_bw = 1 << 16 };	/* 256 KiB: 4 s */
	/* the header's fixed part (136 bytes), then 16 bytes per zone record;
	 * the group clocks after them are left out: they take any value */
	size_t len = 256 << 10, hdr_len = 136 + 16 * (size_t)t->g->nr_zones;
	uint32_t bs = t->g->block_size, *words;
	void *buf, *blk;
	int fd, status;
	pid_t pid, idle;
	long at;

	skip_on_device(t);
	buf = tbuf(len, bs, 19);
	blk = tbuf(bs, bs, 20);
	words = malloc(hdr_len);
	assert_non_null(words);
	fd = open(t->path, O_RDWR);
	assert_true(fd >= 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct zns_dev *d;

		if (zns_open(t->path, &slow, &d))
			_exit(2);
		zns_zone_write(d, 14, 0, buf, len);
		_exit(0);
	}
	/* killed once its write is under way: its pid marks the zone */
	while ((at = header_word(fd, words, hdr_len, (uint32_t)pid)) < 0) {
		assert_int_equal(waitpid(pid, &status, WNOHANG), 0);
		usleep(1000);
	}
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	idle = fork();
	assert_true(idle >= 0);
	if (idle == 0) {
		pause();
		_exit(0);
	}
	assert_int_equal(pwrite(fd, &idle, 4, (off_t)at * 4), 4);
	close(fd);
	/* the pid is alive, yet nobody writes the zone */
	assert_int_equal(zns_zone_write(t->dev, 14, 0, blk, bs), bs);
	assert_int_equal(report(t, 14).wp, bs);
	kill(idle, SIGKILL);
	assert_int_equal(waitpid(idle, &status, 0), idle);
	free(words);
	free(buf);
	free(blk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_geometry_checked),
		cmocka_unit_test_setup_teardown(test_group_membership, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_at_wp_and_implicit_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unaligned_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_capacity_and_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_transitions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_drops_data, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_implicit_open_closes_implicit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_active, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_survives_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_survives_kill9, setup, teardown),
		cmocka_unit_test(test_bad_file_refused),
		cmocka_unit_test(test_corrupt_header_named),
		cmocka_unit_test(test_non_zoned_block_device_refused),
		cmocka_unit_test_setup_teardown(test_bandwidth_model, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bandwidth_shared_across_processes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_same_zone_two_processes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dead_writer_does_not_block, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dead_writer_pid_reused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
