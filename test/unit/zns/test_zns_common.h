/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Shared by the zoned-store unit tests: a device to test on. By default an
 * emulated device in /tmp; with NLAYERFS_ZNS_DEV=/dev/nvme0n1 the real
 * zoned device (all its zones are reset before each test).
 */
#ifndef TEST_ZNS_COMMON_H
#define TEST_ZNS_COMMON_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zns/zns.h"

struct tdev {
	char path[64];
	const char *real;	/* NLAYERFS_ZNS_DEV or NULL */
	struct zns_dev *dev;
	const struct zns_geometry *g;
};

/* The emulated geometry: small zones, cap below size, 2 x 2 groups. */
static inline struct zns_geometry tdev_default_geometry(void)
{
	struct zns_geometry g = {
		.nr_zones = 16, .zone_size = 1 << 20, .zone_cap = 768 << 10,
		.block_size = 4096, .channels = 2, .ways = 2,
		.max_open = 4, .max_active = 6, .zone_bw = 0,
	};
	return g;
}

static inline const char *tdev_real(void)
{
	const char *p = getenv("NLAYERFS_ZNS_DEV");

	return p && *p ? p : NULL;
}

static inline int tdev_reset_all(struct tdev *t)
{
	if (!t->dev)
		return -ENODEV;
	for (uint32_t z = 0; z < t->g->nr_zones; z++) {
		int rc = zns_zone_reset(t->dev, z);

		if (rc)
			return rc;
	}
	return 0;
}

/*
 * Open the device to test. @geo is used for the emulator only; channels and
 * ways are forced on a real device (it cannot report them).
 */
static inline int tdev_open(struct tdev *t, const struct zns_geometry *geo,
			    const struct zns_open_opts *opts)
{
	struct zns_open_opts o = { 0 };
	int rc;

	memset(t, 0, sizeof(*t));
	if (opts)
		o = *opts;
	t->real = tdev_real();
	if (t->real) {
		if (!o.channels)
			o.channels = 2;
		if (!o.ways)
			o.ways = 2;
		rc = zns_open(t->real, &o, &t->dev);
	} else {
		snprintf(t->path, sizeof(t->path), "/tmp/nl-Z-dev-%d-XXXXXX", (int)getpid());
		int fd = mkstemp(t->path);

		if (fd < 0)
			return -errno;
		close(fd);
		rc = zns_emu_create(t->path, geo);
		if (!rc)
			rc = zns_open(t->path, &o, &t->dev);
	}
	if (!rc) {
		t->g = zns_dev_geometry(t->dev);
		rc = tdev_reset_all(t);
	}
	if (rc) {
		zns_close(t->dev);
		t->dev = NULL;
		if (!t->real)
			unlink(t->path);
	}
	return rc;
}

static inline void tdev_close(struct tdev *t)
{
	if (t->dev)
		zns_close(t->dev);
	t->dev = NULL;
	if (!t->real && t->path[0])
		unlink(t->path);
}

/* Reopen the same device (state must survive); a real device keeps its 2 x 2 groups. */
static inline int tdev_reopen(struct tdev *t, const struct zns_open_opts *opts)
{
	struct zns_open_opts o = { 0 };

	if (opts)
		o = *opts;
	if (t->real && !o.channels)
		o.channels = 2;
	if (t->real && !o.ways)
		o.ways = 2;
	zns_close(t->dev);
	t->dev = NULL;
	int rc = zns_open(t->real ? t->real : t->path, &o, &t->dev);

	if (!rc)
		t->g = zns_dev_geometry(t->dev);
	return rc;
}

static inline void *tbuf(size_t len, uint32_t align, unsigned seed)
{
	unsigned char *p = NULL;

	if (posix_memalign((void **)&p, align, len ? len : align))
		return NULL;
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(seed * 131 + i * 7 + (i >> 12));
	return p;
}

#endif
