/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Where the sockets of a mount live (the tier's control socket, the
 * keeper's), for the processes that listen and for nlayerfsctl. */
#include <errno.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "tier/tier.h"

/* The name is a hash of the mountpoint: any path fits sun_path. */
int tier_ctl_sock_path(const char *mountpoint, const char *kind, char *buf, size_t len)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	char hex[33];

	SHA256((const unsigned char *)mountpoint, strlen(mountpoint), md);
	for (int i = 0; i < 16; i++)
		sprintf(hex + 2 * i, "%02x", md[i]);
	return snprintf(buf, len, TIER_RUN_DIR "/%s.%s", hex, kind) >= (int)len ? -ENAMETOOLONG : 0;
}
