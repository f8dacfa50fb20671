/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of the tier settings: sizes, mount option values, the config
 * file and its errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <cmocka.h>
#include "test_tier_common.h"

static void sizes(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(tier_parse_size("512", &v), 0);
	assert_int_equal(v, 512);
	assert_int_equal(tier_parse_size("64K", &v), 0);
	assert_int_equal(v, 64 << 10);
	assert_int_equal(tier_parse_size("10m", &v), 0);
	assert_int_equal(v, 10 << 20);
	assert_int_equal(tier_parse_size("2G", &v), 0);
	assert_int_equal(v, 2ULL << 30);
	assert_int_equal(tier_parse_size("3GiB", &v), 0);
	assert_int_equal(v, 3ULL << 30);
	assert_int_equal(tier_parse_size("", &v), -EINVAL);
	assert_int_equal(tier_parse_size("-1", &v), -EINVAL);
	assert_int_equal(tier_parse_size("12X", &v), -EINVAL);
	assert_int_equal(tier_parse_size("1G2", &v), -EINVAL);
	assert_int_equal(tier_parse_size("99999999999999999999", &v), -EINVAL);
	assert_int_equal(tier_parse_size("17179869184G", &v), -EINVAL);
}

/* Bandwidths take the same sizes with "/s"; a refused size is told why. */
static void rates_and_reasons(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(tier_parse_rate("100MiB/s", &v), 0);
	assert_int_equal(v, 100 << 20);
	assert_int_equal(tier_parse_rate("64K", &v), 0);
	assert_int_equal(v, 64 << 10);
	assert_int_equal(tier_parse_size("512B", &v), 0);
	assert_int_equal(v, 512);
	assert_int_equal(tier_parse_size("100M/s", &v), -EINVAL);
	assert_int_equal(tier_parse_rate("-100M/s", &v), -EINVAL);
	assert_int_equal(tier_parse_rate("1M/h", &v), -EINVAL);
	assert_non_null(strstr(tier_size_problem("-1"), "negative"));
	assert_non_null(strstr(tier_size_problem("99999999999999999999"), "too large"));
	assert_non_null(strstr(tier_size_problem("17179869184G"), "too large"));
	assert_non_null(strstr(tier_size_problem("12X"), "not a size"));
}

static void option_values(void **state)
{
	struct tier_config c;
	char err[256];

	(void)state;
	tier_config_defaults(&c);
	assert_true(c.trace && c.promote);
	/* the index pool is NVM too: the libpmemobj minimum by default */
	assert_int_equal(c.index_size, 8ULL << 20);
	assert_int_equal(tier_config_set(&c, "nvm", "/mnt/pmem", err, sizeof(err)), 0);
	assert_string_equal(c.nvm_dir, "/mnt/pmem");
	assert_int_equal(tier_config_set(&c, "nvm_size", "1G", err, sizeof(err)), 0);
	assert_int_equal(c.nvm_size, 1ULL << 30);
	assert_int_equal(tier_config_set(&c, "trace", "off", err, sizeof(err)), 0);
	assert_false(c.trace);
	assert_int_equal(tier_config_set(&c, "trace_window", "30", err, sizeof(err)), 0);
	assert_int_equal(c.trace_window, 30);
	assert_int_equal(tier_config_set(&c, "promote", "no", err, sizeof(err)), 0);
	assert_false(c.promote);
	/* not ours: the union keeps it */
	assert_int_equal(tier_config_set(&c, "lowerdir", "/a", err, sizeof(err)), -ENOENT);
	assert_int_equal(tier_config_set(&c, "trace", "maybe", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "trace"));
	assert_non_null(strstr(err, "maybe"));
	assert_int_equal(tier_config_set(&c, "trace_window", "0", err, sizeof(err)), -EINVAL);
	assert_int_equal(tier_config_set(&c, "nvm", "relative/dir", err, sizeof(err)), -EINVAL);
	assert_int_equal(tier_config_set(&c, "index_size", "1M", err, sizeof(err)), -EINVAL);
	assert_int_equal(c.range_slack, 128 * 1024);
	assert_int_equal(tier_config_set(&c, "range_slack", "0", err, sizeof(err)), 0);
	assert_int_equal(c.range_slack, 0);
	assert_int_equal(tier_config_set(&c, "range_slack", "2G", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "range_slack"));
	assert_int_equal(c.range_slack, 0);
	assert_string_equal(c.nvm_dir, "/mnt/pmem");
	tier_config_free(&c);
}

static int load_text(const char *text, struct tier_config *c, char *err, size_t n, char *path)
{
	FILE *f;

	snprintf(path, 64, "/tmp/nl-P-conf-XXXXXX");
	close(mkstemp(path));
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	tier_config_defaults(c);
	return tier_config_load(c, path, err, n);
}

static void config_file(void **state)
{
	struct tier_config c;
	char err[512], path[64];

	(void)state;
	assert_int_equal(load_text("# defaults for every mount\n\n"
				   "nvm = /mnt/pmem0/nlayerfs   # fast tier\n"
				   "nvm_size=4G\n  hdd =  /var/lib/nlayerfs \n"
				   "trace_window = 90\npromote = off\n",
				   &c, err, sizeof(err), path), 0);
	assert_string_equal(c.nvm_dir, "/mnt/pmem0/nlayerfs");
	assert_string_equal(c.hdd_dir, "/var/lib/nlayerfs");
	assert_int_equal(c.nvm_size, 4ULL << 30);
	assert_int_equal(c.trace_window, 90);
	assert_false(c.promote);
	assert_true(c.trace);
	tier_config_free(&c);
	unlink(path);
}

static void expect_error(const char *text, unsigned line, const char *what)
{
	struct tier_config c;
	char err[512], path[64], where[96];

	assert_int_equal(load_text(text, &c, err, sizeof(err), path), -EINVAL);
	snprintf(where, sizeof(where), "%s:%u:", path, line);
	assert_non_null(strstr(err, where));
	assert_non_null(strstr(err, what));
	tier_config_free(&c);
	unlink(path);
}

static void config_errors(void **state)
{
	struct tier_config c;
	char err[512];

	(void)state;
	expect_error("nvm = /a\nnvm_size = lots\n", 2, "nvm_size");
	expect_error("# c\n\ncolour = blue\n", 3, "unknown key 'colour'");
	expect_error("trace on\n", 1, "key = value");
	expect_error("trace =\n", 1, "missing value");
	expect_error("= on\n", 1, "missing key");
	expect_error("nvm=/x\ntrace = on\npromote = sometimes\n", 3, "on or off");
	tier_config_defaults(&c);
	assert_non_null(strstr(tier_config_default_path(), "/nlayerfs.conf"));
	assert_int_equal(tier_config_load(&c, "/tmp/nl-P-no-such.conf", err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/tmp/nl-P-no-such.conf"));
}

static void on_alarm(int sig)
{
	(void)sig;
	fail_msg("reading the config file did not end");
}

/* A device that never ends is read no further than a config file can be
 * long; a directory is no config file. Both name the path. */
static void config_not_a_file(void **state)
{
	struct tier_config c;
	char err[512] = "";

	(void)state;
	signal(SIGALRM, on_alarm);
	alarm(5);
	tier_config_defaults(&c);
	assert_int_equal(tier_config_load(&c, "/dev/zero", err, sizeof(err)), -EFBIG);
	alarm(0);
	assert_non_null(strstr(err, "/dev/zero"));
	assert_non_null(strstr(err, "1 MiB"));
	*err = 0;
	assert_int_equal(tier_config_load(&c, "/tmp", err, sizeof(err)), -EISDIR);
	assert_non_null(strstr(err, "/tmp"));
	assert_non_null(strstr(err, "directory"));
	/* an empty device is an empty config: the defaults stay */
	assert_int_equal(tier_config_load(&c, "/dev/null", err, sizeof(err)), 0);
	assert_true(c.trace);
	tier_config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sizes),
		cmocka_unit_test(rates_and_reasons),
		cmocka_unit_test(option_values),
		cmocka_unit_test(config_file),
		cmocka_unit_test(config_errors),
		cmocka_unit_test(config_not_a_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
