// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The device's identity label: one block at the start of zone 0, which the
 * store then never allocates. It is written at the write pointer of an
 * empty zone, so a real zoned device takes it as it takes any write; a new
 * label needs a reset of zone 0 first. The checkpoint pool keeps the same
 * identity, so a pool and a device that were not made together refuse each
 * other instead of one destroying the other's data.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "zns/zns_private.h"

#define LABEL_MAGIC "NLZNSID1"

struct label_block {
	char magic[8];
	uint32_t version;
	uint32_t nr_zones;
	uint64_t zone_size;
	uint8_t id[ZNS_ID_LEN];
};

int zns_label_new(struct zns_label *l)
{
	size_t got = 0;

	memset(l, 0, sizeof(*l));
	while (got < sizeof(l->id)) {
		ssize_t n = getrandom(l->id + got, sizeof(l->id) - got, 0);

		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0)
			got += (size_t)n;
	}
	return 0;
}

static void *block_alloc(const struct zns_dev *dev)
{
	void *p = NULL;
	uint32_t bs = dev->geo.block_size;

	if (posix_memalign(&p, bs, bs))
		return NULL;
	memset(p, 0, bs);
	return p;
}

int zns_label_read(struct zns_dev *dev, struct zns_label *l)
{
	struct zns_zone_info zi;
	struct label_block *b;
	int rc = zns_zone_report(dev, 0, &zi);

	if (rc)
		return rc;
	if (zi.state == ZNS_ZONE_EMPTY && !zi.wp)
		return -ENOENT;
	b = block_alloc(dev);
	if (!b)
		return -ENOMEM;
	rc = zi.wp < dev->geo.block_size ? -EINVAL : 0;
	if (!rc) {
		ssize_t n = zns_zone_read(dev, 0, 0, b, dev->geo.block_size);

		rc = n < 0 ? (int)n : 0;
	}
	if (!rc && (memcmp(b->magic, LABEL_MAGIC, 8) || b->version != 1 ||
		    b->nr_zones != dev->geo.nr_zones || b->zone_size != dev->geo.zone_size))
		rc = -EINVAL;
	if (!rc)
		memcpy(l->id, b->id, sizeof(l->id));
	free(b);
	return rc;
}

int zns_label_write(struct zns_dev *dev, const struct zns_label *l)
{
	struct label_block *b = block_alloc(dev);
	ssize_t n;
	int rc;

	if (!b)
		return -ENOMEM;
	memcpy(b->magic, LABEL_MAGIC, 8);
	b->version = 1;
	b->nr_zones = dev->geo.nr_zones;
	b->zone_size = dev->geo.zone_size;
	memcpy(b->id, l->id, sizeof(b->id));
	rc = zns_zone_reset(dev, 0);
	if (!rc) {
		n = zns_zone_write(dev, 0, 0, b, dev->geo.block_size);
		rc = n < 0 ? (int)n : 0;
	}
	/* a label zone left open would count against the active-zone limit */
	if (!rc)
		rc = zns_zone_finish(dev, 0);
	if (!rc)
		rc = zns_dev_sync(dev);
	free(b);
	return rc;
}

void zns_label_format(const struct zns_label *l, char *buf, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < sizeof(l->id) && o + 3 <= len; i++) {
		static const char hex[] = "0123456789abcdef";

		buf[o++] = hex[l->id[i] >> 4];
		buf[o++] = hex[l->id[i] & 15];
	}
	if (len)
		buf[o < len ? o : len - 1] = 0;
}

int zns_dev_first_written(struct zns_dev *dev, uint32_t from)
{
	for (uint32_t z = from; z < dev->geo.nr_zones; z++) {
		struct zns_zone_info zi;
		int rc = zns_zone_report(dev, z, &zi);

		if (rc)
			return rc;
		if (zi.wp || (zi.state != ZNS_ZONE_EMPTY && zi.state != ZNS_ZONE_OFFLINE &&
			      zi.state != ZNS_ZONE_READONLY))
			return (int)z;
	}
	return -ENOENT;
}
