/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nlayerfs-import: import an OCI image layout or a docker-save tarball into
 * an nlayerfs store, placing layers on NVM or HDD by LASS.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tier/image/image.h"
#include "tier/tier.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: nlayerfs-import --nvm DIR --hdd DIR [options] SOURCE\n"
		"       nlayerfs-import --nvm DIR --print-lowerdir NAME\n"
		"       nlayerfs-import --nvm DIR --list\n"
		"\n"
		"SOURCE: an OCI image layout directory or tar (oci:PATH[:REF],\n"
		"oci-archive:PATH[:REF]) or a docker save tarball (docker-archive:PATH[:TAG]\n"
		"or docker-archive:PATH:@INDEX), as skopeo and podman name them; REF may hold\n"
		"colons (oci-archive:app.tar:localhost/app:latest).\n"
		"\n"
		"  --name NAME          register the image under NAME (default: its tag)\n"
		"  --placement P        lass (default), nvm or hdd\n"
		"  --nvm-budget SIZE    NVM bytes all imported layers may use (K/M/G suffix)\n"
		"  --bandwidth SIZE     download bandwidth per second for the LASS model (100M)\n"
		"  --download-times T1,T2,...\n"
		"                       observed download completion times (s), bottom layer first\n"
		"  --hdd-speed SIZE     HDD write bytes per second (150M)\n"
		"  --nvm-speed SIZE     NVM write bytes per second (2G)\n"
		"  --workers N          concurrent layer workers (3)\n"
		"  -q, --quiet          print errors only (no progress)\n"
		"  -h, --help\n");
}

static int bad_value(const char *opt, const char *v)
{
	fprintf(stderr, "nlayerfs-import: invalid value '%s' for %s\n", v, opt);
	return 2;
}

/* A size argument; a message saying what is wrong with a bad one. */
static int size_arg(const char *opt, const char *v, bool rate, uint64_t *n)
{
	if (!(rate ? tier_parse_rate(v, n) : tier_parse_size(v, n)))
		return 0;
	fprintf(stderr, "nlayerfs-import: invalid value '%s' for %s: %s\n", v, opt,
		tier_size_problem(v));
	return 2;
}

static int parse_placement(const char *v, struct nl_import_opts *o)
{
	if (strcmp(v, "lass") == 0)
		o->placement = NL_PLACE_LASS;
	else if (strcmp(v, "nvm") == 0)
		o->placement = NL_PLACE_NVM;
	else if (strcmp(v, "hdd") == 0)
		o->placement = NL_PLACE_HDD;
	else
		return -1;
	return 0;
}

/* "1.5,0.7,3" -> a times array (freed at exit); each finite and >= 0. */
static int parse_times(const char *s, struct nl_import_opts *o)
{
	size_t n = 1, i = 0;
	double *times;
	char *end;

	for (const char *p = s; *p; p++)
		n += *p == ',';
	times = calloc(n, sizeof(*times));
	if (!times)
		return -1;
	for (;;) {
		errno = 0;
		times[i] = strtod(s, &end);
		if (errno || end == s || !(times[i] >= 0) || times[i] > 1e12)
			break;
		i++;
		if (*end == '\0') {
			free((void *)o->download_done);
			o->download_done = times;
			o->n_download_done = i;
			return 0;
		}
		if (*end != ',')
			break;
		s = end + 1;
	}
	free(times);
	return -1;
}

static int query(const char *nvm, const char *lower_name, char *err, size_t errlen)
{
	char *lower = NULL;
	int r;

	if (!lower_name)
		return nl_registry_list(nvm, stdout, err, errlen);
	r = nl_registry_lowerdir(nvm, lower_name, &lower, err, errlen);
	if (!r)
		printf("%s\n", lower);
	free(lower);
	return r;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "nvm", required_argument, NULL, 'N' },
		{ "hdd", required_argument, NULL, 'H' },
		{ "name", required_argument, NULL, 'n' },
		{ "placement", required_argument, NULL, 'p' },
		{ "nvm-budget", required_argument, NULL, 'b' },
		{ "bandwidth", required_argument, NULL, 'w' },
		{ "hdd-speed", required_argument, NULL, 's' },
		{ "nvm-speed", required_argument, NULL, 'S' },
		{ "workers", required_argument, NULL, 'j' },
		{ "download-times", required_argument, NULL, 't' },
		{ "print-lowerdir", required_argument, NULL, 'l' },
		{ "list", no_argument, NULL, 'L' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct nl_import_opts o = {
		.placement = NL_PLACE_LASS, .nvm_budget = UINT64_MAX, .workers = 3,
		.bandwidth_bps = 100.0 * (1 << 20), .hdd_bps = 150.0 * (1 << 20),
		.nvm_bps = 2048.0 * (1 << 20),
	};
	const char *lower_name = NULL;
	bool list = false;
	char err[1024] = "";
	int c, r;
	uint64_t v;

	while ((c = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'N': o.nvm_dir = optarg; break;
		case 'H': o.hdd_dir = optarg; break;
		case 'n': o.name = optarg; break;
		case 'l': lower_name = optarg; break;
		case 'L': list = true; break;
		case 'q': o.quiet = true; break;
		case 'h': usage(stdout); return 0;
		case 'p':
			if (parse_placement(optarg, &o))
				return bad_value("--placement", optarg);
			break;
		case 't':
			if (parse_times(optarg, &o))
				return bad_value("--download-times", optarg);
			break;
		case 'j':
			if (tier_parse_size(optarg, &v) || v == 0 || v > 16)
				return bad_value("--workers (1-16)", optarg);
			o.workers = (unsigned)v;
			break;
		case 'b':
			if (size_arg("--nvm-budget", optarg, false, &o.nvm_budget))
				return 2;
			/* 0 is unlimited, as for nvm_size= of the mount */
			if (!o.nvm_budget)
				o.nvm_budget = UINT64_MAX;
			break;
		case 'w': case 's': case 'S': {
			const char *name = c == 'w' ? "--bandwidth" : c == 's' ? "--hdd-speed"
						    : "--nvm-speed";

			if (size_arg(name, optarg, true, &v))
				return 2;
			if (v == 0)
				return bad_value(name, optarg);
			*(c == 'w' ? &o.bandwidth_bps : c == 's' ? &o.hdd_bps : &o.nvm_bps) = (double)v;
			break;
		}
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!o.nvm_dir) {
		fprintf(stderr, "nlayerfs-import: --nvm DIR is needed\n");
		return 2;
	}
	if (list || lower_name) {
		r = query(o.nvm_dir, lower_name, err, sizeof(err));
	} else {
		if (optind != argc - 1 || !o.hdd_dir) {
			usage(stderr);
			return 2;
		}
		o.source = argv[optind];
		o.progress = o.quiet ? NL_PROGRESS_NONE
			   : isatty(STDERR_FILENO) ? NL_PROGRESS_TTY : NL_PROGRESS_LINES;
		r = nl_import_image(&o, err, sizeof(err));
	}
	free((void *)o.download_done);
	if (r) {
		fprintf(stderr, "nlayerfs-import: %s\n", err[0] ? err : strerror(-r));
		return 1;
	}
	return 0;
}
