/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libzbd backend: a host-managed zoned block device (ZNS namespace, zoned
 * null_blk, SMR). I/O is O_DIRECT at the write pointer; the device itself
 * enforces the zone rules, so errors come back as the kernel reports them.
 * Channels and ways are not visible through the block layer: they come from
 * the open options.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libzbd/zbd.h>

#include "zns/zns_private.h"

struct zbd {
	int fd;
	uint64_t zone_size;
};

static struct zbd *zbd_of(struct zns_dev *dev)
{
	return dev->priv;
}

static off_t zone_start(struct zns_dev *dev, uint32_t zone)
{
	return (off_t)((uint64_t)zone * zbd_of(dev)->zone_size);
}

static enum zns_zone_state state_from_cond(unsigned int cond)
{
	switch (cond) {
	case ZBD_ZONE_COND_EMPTY: return ZNS_ZONE_EMPTY;
	case ZBD_ZONE_COND_IMP_OPEN: return ZNS_ZONE_IOPEN;
	case ZBD_ZONE_COND_EXP_OPEN: return ZNS_ZONE_EOPEN;
	case ZBD_ZONE_COND_CLOSED: return ZNS_ZONE_CLOSED;
	case ZBD_ZONE_COND_FULL: return ZNS_ZONE_FULL;
	case ZBD_ZONE_COND_READONLY: return ZNS_ZONE_READONLY;
	/* Conventional zones (SMR) have no write pointer: never allocated. */
	default: return ZNS_ZONE_OFFLINE;
	}
}

/* libzbd returns -1 with errno set. */
static int zbd_rc(int rc)
{
	return rc < 0 ? (errno ? -errno : -EIO) : 0;
}

static int zbd_report(struct zns_dev *dev, uint32_t zone, struct zns_zone_info *info)
{
	struct zbd_zone z;
	unsigned int n = 1;
	int rc;

	rc = zbd_rc(zbd_report_zones(zbd_of(dev)->fd, zone_start(dev, zone),
				     (off_t)zbd_of(dev)->zone_size, ZBD_RO_ALL, &z, &n));
	if (rc)
		return rc;
	if (n != 1)
		return -EIO;
	info->zone = zone;
	info->group = zns_zone_group(&dev->geo, zone);
	info->state = state_from_cond(z.cond);
	info->start = z.start;
	info->wp = z.cond == ZBD_ZONE_COND_FULL ? z.capacity : z.wp - z.start;
	info->cap = z.capacity;
	return 0;
}

static int zbd_open_zone(struct zns_dev *dev, uint32_t zone)
{
	return zbd_rc(zbd_open_zones(zbd_of(dev)->fd, zone_start(dev, zone),
				     (off_t)zbd_of(dev)->zone_size));
}

static int zbd_close_zone(struct zns_dev *dev, uint32_t zone)
{
	return zbd_rc(zbd_close_zones(zbd_of(dev)->fd, zone_start(dev, zone),
				      (off_t)zbd_of(dev)->zone_size));
}

static int zbd_finish_zone(struct zns_dev *dev, uint32_t zone)
{
	return zbd_rc(zbd_finish_zones(zbd_of(dev)->fd, zone_start(dev, zone),
				       (off_t)zbd_of(dev)->zone_size));
}

static int zbd_reset_zone(struct zns_dev *dev, uint32_t zone)
{
	return zbd_rc(zbd_reset_zones(zbd_of(dev)->fd, zone_start(dev, zone),
				      (off_t)zbd_of(dev)->zone_size));
}

static ssize_t zbd_write(struct zns_dev *dev, uint32_t zone, uint64_t off,
			 const void *buf, size_t len)
{
	off_t pos = zone_start(dev, zone) + (off_t)off;
	size_t done = 0;

	if (off + len > dev->geo.zone_cap)
		return -EIO;
	while (done < len) {
		ssize_t n = pwrite(zbd_of(dev)->fd, (const char *)buf + done,
				   len - done, pos + (off_t)done);
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return (ssize_t)len;
}

static ssize_t zbd_read(struct zns_dev *dev, uint32_t zone, uint64_t off,
			void *buf, size_t len)
{
	ssize_t n = pread(zbd_of(dev)->fd, buf, len, zone_start(dev, zone) + (off_t)off);

	return n < 0 ? -errno : n;
}

/* Three filtered reports: the kernel walks the zones, not one call per zone. */
static int zbd_active_zones(struct zns_dev *dev)
{
	static const enum zbd_report_option ro[] = {
		ZBD_RO_IMP_OPEN, ZBD_RO_EXP_OPEN, ZBD_RO_CLOSED,
	};
	int total = 0;

	for (int i = 0; i < 3; i++) {
		unsigned int n = 0;
		int rc = zbd_rc(zbd_report_nr_zones(zbd_of(dev)->fd, 0, 0, ro[i], &n));

		if (rc)
			return rc;
		total += (int)n;
	}
	return total;
}

static int zbd_sync(struct zns_dev *dev)
{
	return fsync(zbd_of(dev)->fd) < 0 ? -errno : 0;
}

static void zbd_close_dev(struct zns_dev *dev)
{
	zbd_close(zbd_of(dev)->fd);
	free(dev->priv);
	free(dev);
}

static const struct zns_dev_ops zbd_ops = {
	.report = zbd_report,
	.open_zone = zbd_open_zone,
	.close_zone = zbd_close_zone,
	.finish_zone = zbd_finish_zone,
	.reset_zone = zbd_reset_zone,
	.write = zbd_write,
	.read = zbd_read,
	.active_zones = zbd_active_zones,
	.sync = zbd_sync,
	.close = zbd_close_dev,
};

/* "Unknown" (-1) limits are treated as no limit, like 0. */
static uint32_t zbd_limit(unsigned int v)
{
	return v == (unsigned int)-1 ? 0 : v;
}

/* Capacity can be below the zone size (ZNS); take it from the first zone. */
static int zbd_first_capacity(int fd, uint64_t *cap)
{
	struct zbd_zone z;
	unsigned int n = 1;

	if (zbd_report_zones(fd, 0, 0, ZBD_RO_ALL, &z, &n) < 0)
		return errno ? -errno : -EIO;
	if (n != 1 || !z.capacity)
		return -EIO;
	*cap = z.capacity;
	return 0;
}

static void zbd_fill_geometry(struct zns_geometry *g, const struct zbd_info *info,
			      uint64_t cap, const struct zns_open_opts *o)
{
	g->nr_zones = info->nr_zones;
	g->zone_size = info->zone_size;
	g->zone_cap = cap;
	g->block_size = info->lblock_size;
	g->channels = o && o->channels ? o->channels : 1;
	g->ways = o && o->ways ? o->ways : 1;
	g->max_open = zbd_limit(info->max_nr_open_zones);
	g->max_active = zbd_limit(info->max_nr_active_zones);
	g->zone_bw = o ? o->zone_bw : 0;
}

int zns_zbd_open(const char *path, const struct zns_open_opts *opts,
		 struct zns_dev **devp, char *why, size_t whylen)
{
	struct zbd_info info;
	struct zns_dev *dev;
	struct zbd *z;
	uint64_t cap;
	int fd, rc;

	zbd_set_log_level(ZBD_LOG_NONE);
	/* zbd_open says -1 both for "not zoned" and for open errors: tell them apart first. */
	if (zbd_device_is_zoned(path) != 1) {
		zns_why(why, whylen, "a block device that is not zoned");
		return -ENXIO;
	}
	errno = 0;
	fd = zbd_open(path, O_RDWR | O_DIRECT | O_CLOEXEC, &info);
	if (fd < 0) {
		rc = errno ? -errno : -EIO;
		zns_why(why, whylen, "cannot open the zoned device: %s", strerror(-rc));
		return rc;
	}
	if (info.model != ZBD_DM_HOST_MANAGED) {
		zbd_close(fd);
		zns_why(why, whylen, "a zoned device that is not host-managed");
		return -ENXIO;
	}
	rc = zbd_first_capacity(fd, &cap);
	dev = calloc(1, sizeof(*dev));
	z = calloc(1, sizeof(*z));
	if (rc || !dev || !z) {
		free(dev);
		free(z);
		zbd_close(fd);
		rc = rc ? rc : -ENOMEM;
		zns_why(why, whylen, "cannot read the zone capacity: %s", strerror(-rc));
		return rc;
	}
	z->fd = fd;
	z->zone_size = info.zone_size;
	zbd_fill_geometry(&dev->geo, &info, cap, opts);
	dev->ops = &zbd_ops;
	dev->priv = z;
	rc = zns_geometry_check(&dev->geo, why, whylen);
	if (rc) {
		zbd_close_dev(dev);
		return rc;
	}
	*devp = dev;
	return 0;
}
