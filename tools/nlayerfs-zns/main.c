/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nlayerfs-zns: create an emulated zoned device, inspect zones, reset them.
 * Works on the emulator and on real zoned block devices alike.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tier/tier.h"
#include "zns/zns.h"

#define PROG "nlayerfs-zns"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " create FILE --zones N --zone-size SIZE [--zone-cap SIZE]\n"
		"                    [--channels N] [--ways N] [--max-open N] [--max-active N]\n"
		"                    [--block-size SIZE] [--zone-bw RATE]\n"
		"       " PROG " report DEV [--channels N --ways N]\n"
		"       " PROG " info DEV [--channels N --ways N]\n"
		"       " PROG " reset DEV ZONE|all\n"
		"       " PROG " --help | --version\n"
		"SIZE and RATE take K, M, G suffixes (powers of 1024); RATE is bytes/s.\n");
}

static int fail(int code, const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

/* A size (tier_parse_size's grammar); false if it is not one. */
static bool parse_size(const char *s, uint64_t *v)
{
	return tier_parse_size(s, v) == 0;
}

static bool parse_u32(const char *s, uint32_t *v)
{
	uint64_t n;

	if (!parse_size(s, &n) || n > UINT32_MAX)
		return false;
	*v = (uint32_t)n;
	return true;
}

enum { O_ZONES = 256, O_ZSIZE, O_ZCAP, O_CHAN, O_WAYS, O_MOPEN, O_MACTIVE, O_BS, O_BW };

static const struct option long_opts[] = {
	{ "zones", required_argument, NULL, O_ZONES },
	{ "zone-size", required_argument, NULL, O_ZSIZE },
	{ "zone-cap", required_argument, NULL, O_ZCAP },
	{ "channels", required_argument, NULL, O_CHAN },
	{ "ways", required_argument, NULL, O_WAYS },
	{ "max-open", required_argument, NULL, O_MOPEN },
	{ "max-active", required_argument, NULL, O_MACTIVE },
	{ "block-size", required_argument, NULL, O_BS },
	{ "zone-bw", required_argument, NULL, O_BW },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

struct cli {
	struct zns_geometry g;
	struct zns_open_opts o;
	bool have_zones, have_size, have_cap;
	int nargs;
	char *args[3];
};

static int set_opt(struct cli *c, int opt, const char *arg)
{
	const char *name = NULL;
	bool ok = true;

	switch (opt) {
	case O_ZONES: ok = parse_u32(arg, &c->g.nr_zones); c->have_zones = true; name = "--zones"; break;
	case O_ZSIZE: ok = parse_size(arg, &c->g.zone_size); c->have_size = true; name = "--zone-size"; break;
	case O_ZCAP: ok = parse_size(arg, &c->g.zone_cap); c->have_cap = true; name = "--zone-cap"; break;
	case O_CHAN: ok = parse_u32(arg, &c->g.channels) && c->g.channels; name = "--channels"; break;
	case O_WAYS: ok = parse_u32(arg, &c->g.ways) && c->g.ways; name = "--ways"; break;
	case O_MOPEN: ok = parse_u32(arg, &c->g.max_open); name = "--max-open"; break;
	case O_MACTIVE: ok = parse_u32(arg, &c->g.max_active); name = "--max-active"; break;
	case O_BS: ok = parse_u32(arg, &c->g.block_size); name = "--block-size"; break;
	case O_BW: ok = !tier_parse_rate(arg, &c->g.zone_bw); name = "--zone-bw"; break;
	default: return 2;
	}
	if (ok)
		return 0;
	if (tier_parse_rate(arg, &(uint64_t){ 0 }))
		return fail(2, "%s: invalid value '%s': %s", name, arg, tier_size_problem(arg));
	return fail(2, "%s: invalid value '%s'", name, arg);
}

static int parse_cli(int argc, char **argv, struct cli *c)
{
	int opt, rc;

	memset(c, 0, sizeof(*c));
	c->g.channels = c->g.ways = 1;
	c->g.block_size = 4096;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "hV", long_opts, NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			exit(0);
		}
		if (opt == 'V') {
			printf(PROG " %s\n", NLAYERFS_VERSION);
			exit(0);
		}
		if (opt == '?') {
			usage(stderr);
			return fail(2, "unknown or incomplete option '%s'", argv[optind - 1]);
		}
		rc = set_opt(c, opt, optarg);
		if (rc)
			return rc;
	}
	for (; optind < argc; optind++) {
		if (c->nargs == 3)
			return fail(2, "too many arguments");
		c->args[c->nargs++] = argv[optind];
	}
	return 0;
}

static int cmd_create(struct cli *c)
{
	char why[160];
	int rc;

	if (c->nargs != 2)
		return fail(2, "create: exactly one FILE expected");
	if (!c->have_zones || !c->have_size)
		return fail(2, "create: --zones and --zone-size are required");
	if (!c->have_cap)
		c->g.zone_cap = c->g.zone_size;
	if (zns_geometry_check(&c->g, why, sizeof(why)))
		return fail(2, "create: %s", why);
	rc = zns_emu_create(c->args[1], &c->g);
	if (rc == -EEXIST)
		return fail(1, "create %s: exists and is not a regular file; refusing to overwrite it",
			    c->args[1]);
	if (rc)
		return fail(1, "create %s: %s", c->args[1], strerror(-rc));
	return 0;
}

static int open_dev(struct cli *c, struct zns_dev **dev)
{
	char why[512];
	int rc;

	c->o.channels = c->g.channels > 1 || c->g.ways > 1 ? c->g.channels : 0;
	c->o.ways = c->g.channels > 1 || c->g.ways > 1 ? c->g.ways : 0;
	rc = zns_open_why(c->args[1], &c->o, dev, why, sizeof(why));
	if (rc == -EINVAL && c->o.channels)
		return fail(1, "%s: refused with --channels %u --ways %u: %s",
			    c->args[1], c->o.channels, c->o.ways, why);
	if (rc)
		return fail(1, "%s: %s", c->args[1], *why ? why : strerror(-rc));
	return 0;
}

static int cmd_report(struct zns_dev *dev)
{
	const struct zns_geometry *g = zns_dev_geometry(dev);

	printf("%6s %6s %-8s %12s %12s\n", "zone", "group", "state", "wp", "capacity");
	for (uint32_t z = 0; z < g->nr_zones; z++) {
		struct zns_zone_info zi;
		int rc = zns_zone_report(dev, z, &zi);

		if (rc)
			return fail(1, "report zone %u: %s", z, strerror(-rc));
		printf("%6u %6u %-8s %12" PRIu64 " %12" PRIu64 "\n", z, zi.group,
		       zns_zone_state_name(zi.state), zi.wp, zi.cap);
	}
	return 0;
}

static int cmd_info(struct zns_dev *dev)
{
	const struct zns_geometry *g = zns_dev_geometry(dev);
	uint32_t count[ZNS_ZONE_OFFLINE + 1] = { 0 };
	uint64_t used = 0;
	int active = zns_dev_active_zones(dev);

	if (active < 0)
		return fail(1, "active zones: %s", strerror(-active));
	for (uint32_t z = 0; z < g->nr_zones; z++) {
		struct zns_zone_info zi;
		int rc = zns_zone_report(dev, z, &zi);

		if (rc)
			return fail(1, "report zone %u: %s", z, strerror(-rc));
		count[zi.state]++;
		used += zi.wp;
	}
	printf("backend:     %s\n", zns_dev_is_emulated(dev) ? "file emulation" : "zoned block device (libzbd)");
	printf("zones:       %u\nzone size:   %" PRIu64 "\nzone cap:    %" PRIu64 "\n",
	       g->nr_zones, g->zone_size, g->zone_cap);
	printf("block size:  %u\nchannels:    %u\nways:        %u\ngroups:      %u\n",
	       g->block_size, g->channels, g->ways, zns_nr_groups(g));
	printf("max open:    %u%s\nmax active:  %u%s\n", g->max_open,
	       g->max_open ? "" : " (no limit)", g->max_active, g->max_active ? "" : " (no limit)");
	if (g->zone_bw)
		printf("zone bw:     %" PRIu64 " bytes/s per group\n", g->zone_bw);
	else
		printf("zone bw:     no bandwidth model\n");
	printf("written:     %" PRIu64 " bytes\nactive:      %d zones\n", used, active);
	for (int s = 0; s <= ZNS_ZONE_OFFLINE; s++)
		if (count[s])
			printf("%-12s %u\n", zns_zone_state_name(s), count[s]);
	return 0;
}

static int cmd_reset(struct zns_dev *dev, const char *what)
{
	const struct zns_geometry *g = zns_dev_geometry(dev);
	uint32_t first, last, z;
	int rc;

	if (!what)
		return fail(2, "reset: ZONE or 'all' expected");
	if (!strcmp(what, "all")) {
		first = 0;
		last = g->nr_zones - 1;
	} else if (parse_u32(what, &z) && !strpbrk(what, "kKmMgG")) {
		if (z >= g->nr_zones)
			return fail(2, "reset: zone %u out of range (the device has %u zones)",
				    z, g->nr_zones);
		first = last = z;
	} else {
		return fail(2, "reset: '%s' is not a zone number or 'all'", what);
	}
	for (z = first; z <= last; z++) {
		rc = zns_zone_reset(dev, z);
		if (rc)
			return fail(1, "reset zone %u: %s", z, strerror(-rc));
	}
	return 0;
}

static int run_on_dev(struct cli *c)
{
	const char *cmd = c->args[0];
	struct zns_dev *dev;
	int rc;

	if (c->nargs < 2)
		return fail(2, "%s: DEV expected", cmd);
	if (strcmp(cmd, "reset") ? c->nargs != 2 : c->nargs != 3)
		return fail(2, "%s: wrong number of arguments", cmd);
	rc = open_dev(c, &dev);
	if (rc)
		return rc;
	if (!strcmp(cmd, "report"))
		rc = cmd_report(dev);
	else if (!strcmp(cmd, "info"))
		rc = cmd_info(dev);
	else
		rc = cmd_reset(dev, c->args[2]);
	if (!rc && (rc = zns_dev_sync(dev)))
		rc = fail(1, "sync: %s", strerror(-rc));
	zns_close(dev);
	return rc;
}

int main(int argc, char **argv)
{
	struct cli c;
	int rc = parse_cli(argc, argv, &c);

	if (rc)
		return rc;
	if (!c.nargs) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(c.args[0], "create"))
		return cmd_create(&c);
	if (!strcmp(c.args[0], "report") || !strcmp(c.args[0], "info") ||
	    !strcmp(c.args[0], "reset"))
		return run_on_dev(&c);
	usage(stderr);
	return fail(2, "unknown command '%s'", c.args[0]);
}
