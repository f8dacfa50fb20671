/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The nlayerfs-zns tool: create, info, report, reset, and its errors. */
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "test/unit/zns/test_zns_common.h"

static char tool[PATH_MAX];
static char img[64];

/* Run the tool; its stdout goes to @out (NUL-terminated), returns the exit status. */
static int run(char *out, size_t outlen, const char *const *args)
{
	char *argv[32];
	int pfd[2], status, n = 0;
	size_t got = 0;
	pid_t pid;

	argv[n++] = tool;
	for (; *args && n < 31; args++)
		argv[n++] = (char *)*args;
	argv[n] = NULL;
	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);

		dup2(pfd[1], 1);
		dup2(devnull, 2);
		close(pfd[0]);
		execv(tool, argv);
		_exit(127);
	}
	close(pfd[1]);
	for (ssize_t r; (r = read(pfd[0], out + got, outlen - 1 - got)) > 0;)
		got += (size_t)r;
	out[got] = '\0';
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

#define RUN(out, ...) run(out, sizeof(out), (const char *const[]){ __VA_ARGS__, NULL })

static int setup(void **state)
{
	int fd;

	(void)state;
	snprintf(img, sizeof(img), "/tmp/nl-Z-tool-%d-XXXXXX", (int)getpid());
	fd = mkstemp(img);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(img);
	return 0;
}

static void test_create_info_report(void **state)
{
	char out[8192];
	struct zns_dev *d;
	const struct zns_geometry *g;

	(void)state;
	assert_int_equal(RUN(out, "create", img, "--zones", "12", "--zone-size", "1M",
			     "--zone-cap", "512K", "--channels", "3", "--ways", "2",
			     "--max-open", "4", "--max-active", "5", "--block-size", "4096",
			     "--zone-bw", "50M"), 0);
	assert_int_equal(zns_open(img, NULL, &d), 0);
	g = zns_dev_geometry(d);
	assert_int_equal(g->nr_zones, 12);
	assert_int_equal(g->zone_size, 1 << 20);
	assert_int_equal(g->zone_cap, 512 << 10);
	assert_int_equal(zns_nr_groups(g), 6);
	assert_int_equal(g->max_open, 4);
	assert_int_equal(g->max_active, 5);
	assert_int_equal(g->zone_bw, 50ull << 20);
	{
		void *b = tbuf(8192, 4096, 1);

		assert_int_equal(zns_zone_write(d, 7, 0, b, 8192), 8192);
		free(b);
	}
	zns_close(d);
	assert_int_equal(RUN(out, "info", img), 0);
	assert_non_null(strstr(out, "groups:      6"));
	assert_non_null(strstr(out, "written:     8192"));
	assert_non_null(strstr(out, "active:      1 zones"));
	assert_int_equal(RUN(out, "report", img), 0);
	/* Zone 7: group 7 mod 6 = 1, implicitly open, wp 8192. */
	assert_non_null(strstr(out, "     7      1 iopen            8192       524288"));
	assert_non_null(strstr(out, "    11      5 empty               0       524288"));
	assert_int_equal(RUN(out, "reset", img, "7"), 0);
	assert_int_equal(RUN(out, "report", img), 0);
	assert_non_null(strstr(out, "     7      1 empty               0"));
}

static void test_reset_all(void **state)
{
	char out[4096];
	struct zns_dev *d;
	struct zns_zone_info zi;

	(void)state;
	assert_int_equal(RUN(out, "create", img, "--zones", "4", "--zone-size", "64K"), 0);
	assert_int_equal(zns_open(img, NULL, &d), 0);
	assert_int_equal(zns_zone_finish(d, 0), 0);
	assert_int_equal(zns_zone_finish(d, 3), 0);
	zns_close(d);
	assert_int_equal(RUN(out, "reset", img, "all"), 0);
	assert_int_equal(zns_open(img, NULL, &d), 0);
	for (uint32_t z = 0; z < 4; z++) {
		assert_int_equal(zns_zone_report(d, z, &zi), 0);
		assert_int_equal(zi.state, ZNS_ZONE_EMPTY);
	}
	zns_close(d);
}

static void test_bad_input(void **state)
{
	char out[4096];

	(void)state;
	assert_int_equal(RUN(out, "create", img, "--zones", "abc", "--zone-size", "1M"), 2);
	assert_int_equal(RUN(out, "create", img, "--zone-size", "1M"), 2);
	assert_int_equal(RUN(out, "create", img, "--zones", "4", "--zone-size", "1M",
			     "--zone-cap", "2M"), 2);
	assert_int_equal(RUN(out, "create", img, "--zones", "4", "--zone-size", "1M",
			     "--channels", "0"), 2);
	assert_int_equal(RUN(out, "create", img, "--zones", "4", "--zone-size", "1M",
			     "--block-size", "3000"), 2);
	assert_int_equal(RUN(out, "frobnicate", img), 2);
	assert_int_equal(RUN(out, "create", "/dev/null", "--zones", "4", "--zone-size", "1M"), 1);
	assert_int_equal(access("/dev/null", W_OK), 0);
	assert_int_equal(RUN(out, "create", img, "--bogus"), 2);
	assert_int_equal(RUN(out, "report", "/etc/hostname"), 1);
	assert_int_equal(RUN(out, "report", "/tmp/nl-Z-does-not-exist"), 1);
	assert_int_equal(RUN(out, "create", img, "--zones", "4", "--zone-size", "1M"), 0);
	assert_int_equal(RUN(out, "reset", img, "4"), 2);
	assert_int_equal(RUN(out, "reset", img, "one"), 2);
	assert_int_equal(RUN(out, "reset", img), 2);
	assert_int_equal(RUN(out, "report", img, "--channels", "3", "--ways", "3"), 1);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_info_report, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_all, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
	};
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	(void)argc;
	(void)argv;
	if (n <= 0)
		return 1;
	self[n] = '\0';
	/* BUILD/test/test_zns_tool -> BUILD/nlayerfs-zns */
	snprintf(tool, sizeof(tool), "%s/../nlayerfs-zns", dirname(self));
	if (access(tool, X_OK)) {
		fprintf(stderr, "%s: not built\n", tool);
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
