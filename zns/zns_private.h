/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Private to libnlzns: the device backends' interface. */
#ifndef NLAYERFS_ZNS_PRIVATE_H
#define NLAYERFS_ZNS_PRIVATE_H

#include "zns/zns.h"

/* One backend: the emulator or libzbd. */
struct zns_dev_ops {
	int (*report)(struct zns_dev *dev, uint32_t zone, struct zns_zone_info *info);
	int (*open_zone)(struct zns_dev *dev, uint32_t zone);
	int (*close_zone)(struct zns_dev *dev, uint32_t zone);
	int (*finish_zone)(struct zns_dev *dev, uint32_t zone);
	int (*reset_zone)(struct zns_dev *dev, uint32_t zone);
	ssize_t (*write)(struct zns_dev *dev, uint32_t zone, uint64_t off,
			 const void *buf, size_t len);
	ssize_t (*read)(struct zns_dev *dev, uint32_t zone, uint64_t off,
			void *buf, size_t len);
	int (*active_zones)(struct zns_dev *dev);
	int (*sync)(struct zns_dev *dev);
	void (*close)(struct zns_dev *dev);
};

struct zns_dev {
	const struct zns_dev_ops *ops;
	struct zns_geometry geo;
	bool emulated;
	void *priv;
};

int zns_emu_open(const char *path, const struct zns_open_opts *opts,
		 struct zns_dev **devp, char *why, size_t whylen);
int zns_zbd_open(const char *path, const struct zns_open_opts *opts,
		 struct zns_dev **devp, char *why, size_t whylen);

/* snprintf into a reason buffer that may be NULL. */
void zns_why(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static inline bool zns_aligned(uint64_t v, uint64_t a)
{
	return v % a == 0;
}

#endif
