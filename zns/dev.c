/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Zoned device front: backend choice, geometry, checks common to backends. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "zns/zns_private.h"

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

int zns_geometry_check(const struct zns_geometry *g, char *why, size_t whylen)
{
	const char *msg = NULL;

	if (!g->nr_zones)
		msg = "zone count must be at least 1";
	else if (!is_pow2(g->block_size) || g->block_size < 512)
		msg = "block size must be a power of two, at least 512";
	else if (!g->zone_size || g->zone_size % g->block_size)
		msg = "zone size must be a nonzero multiple of the block size";
	else if (!g->zone_cap || g->zone_cap > g->zone_size ||
		 g->zone_cap % g->block_size)
		msg = "zone capacity must be a nonzero multiple of the block size, at most the zone size";
	else if (!g->channels || !g->ways)
		msg = "channels and ways must be at least 1";
	else if ((uint64_t)g->channels * g->ways > g->nr_zones)
		msg = "channels x ways must not exceed the zone count";
	else if (g->max_open && g->max_active && g->max_open > g->max_active)
		msg = "max open must not exceed max active";
	if (msg && why && whylen)
		snprintf(why, whylen, "%s", msg);
	return msg ? -EINVAL : 0;
}

void zns_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (!why || !whylen)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

static const char *file_kind(mode_t m)
{
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISSOCK(m))
		return "a socket";
	return "not a regular file";
}

int zns_open_why(const char *path, const struct zns_open_opts *opts,
		 struct zns_dev **devp, char *why, size_t whylen)
{
	struct stat st;

	zns_why(why, whylen, "%s", "");
	if (stat(path, &st) < 0) {
		int e = errno;

		zns_why(why, whylen, "%s%s", strerror(e), e == ENOENT ?
			" (create an emulated device with nlayerfs-zns create, or give a zoned block device)" : "");
		return -e;
	}
	if (S_ISBLK(st.st_mode))
		return zns_zbd_open(path, opts, devp, why, whylen);
	if (S_ISREG(st.st_mode))
		return zns_emu_open(path, opts, devp, why, whylen);
	zns_why(why, whylen, "%s, neither a zoned block device nor an emulated device file "
		"(nlayerfs-zns create makes one)", file_kind(st.st_mode));
	return -ENODEV;
}

int zns_open(const char *path, const struct zns_open_opts *opts,
	     struct zns_dev **devp)
{
	return zns_open_why(path, opts, devp, NULL, 0);
}

void zns_close(struct zns_dev *dev)
{
	if (dev)
		dev->ops->close(dev);
}

const struct zns_geometry *zns_dev_geometry(const struct zns_dev *dev)
{
	return &dev->geo;
}

bool zns_dev_is_emulated(const struct zns_dev *dev)
{
	return dev->emulated;
}

uint32_t zns_nr_groups(const struct zns_geometry *g)
{
	return g->channels * g->ways;
}

uint32_t zns_zone_group(const struct zns_geometry *g, uint32_t zone)
{
	return zone % zns_nr_groups(g);
}

static int check_zone(const struct zns_dev *dev, uint32_t zone)
{
	return zone < dev->geo.nr_zones ? 0 : -EINVAL;
}

/* O_DIRECT rules: buffer, offset and length all block aligned. */
static int check_io(const struct zns_dev *dev, uint32_t zone, uint64_t off,
		    const void *buf, size_t len)
{
	uint32_t bs = dev->geo.block_size;

	if (check_zone(dev, zone))
		return -EINVAL;
	if (!zns_aligned(off, bs) || !zns_aligned(len, bs) ||
	    !zns_aligned((uintptr_t)buf, bs))
		return -EINVAL;
	return 0;
}

int zns_zone_report(struct zns_dev *dev, uint32_t zone, struct zns_zone_info *info)
{
	return check_zone(dev, zone) ?: dev->ops->report(dev, zone, info);
}

int zns_zone_open(struct zns_dev *dev, uint32_t zone)
{
	return check_zone(dev, zone) ?: dev->ops->open_zone(dev, zone);
}

int zns_zone_close(struct zns_dev *dev, uint32_t zone)
{
	return check_zone(dev, zone) ?: dev->ops->close_zone(dev, zone);
}

int zns_zone_finish(struct zns_dev *dev, uint32_t zone)
{
	return check_zone(dev, zone) ?: dev->ops->finish_zone(dev, zone);
}

int zns_zone_reset(struct zns_dev *dev, uint32_t zone)
{
	return check_zone(dev, zone) ?: dev->ops->reset_zone(dev, zone);
}

ssize_t zns_zone_write(struct zns_dev *dev, uint32_t zone, uint64_t off,
		       const void *buf, size_t len)
{
	int rc = check_io(dev, zone, off, buf, len);

	if (rc)
		return rc;
	if (!len)
		return 0;
	return dev->ops->write(dev, zone, off, buf, len);
}

ssize_t zns_zone_read(struct zns_dev *dev, uint32_t zone, uint64_t off,
		      void *buf, size_t len)
{
	int rc = check_io(dev, zone, off, buf, len);

	if (rc)
		return rc;
	if (off + len > dev->geo.zone_size)
		return -EINVAL;
	if (!len)
		return 0;
	return dev->ops->read(dev, zone, off, buf, len);
}

int zns_dev_active_zones(struct zns_dev *dev)
{
	return dev->ops->active_zones(dev);
}

int zns_dev_sync(struct zns_dev *dev)
{
	return dev->ops->sync(dev);
}

const char *zns_zone_state_name(enum zns_zone_state s)
{
	static const char *const names[] = {
		[ZNS_ZONE_EMPTY] = "empty",	[ZNS_ZONE_IOPEN] = "iopen",
		[ZNS_ZONE_EOPEN] = "eopen",	[ZNS_ZONE_CLOSED] = "closed",
		[ZNS_ZONE_FULL] = "full",	[ZNS_ZONE_READONLY] = "readonly",
		[ZNS_ZONE_OFFLINE] = "offline",
	};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}
