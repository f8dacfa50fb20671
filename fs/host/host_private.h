/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Shared by the two sides of the host service, private to fs/host/: the
 * service (host.c) and the mount invocation that connects to it or starts
 * it, and stays as the keeper of a tiered mount (host_mount.c).
 */
#ifndef NLAYERFS_FS_HOST_PRIVATE_H
#define NLAYERFS_FS_HOST_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/un.h>

#include "tier/tier.h"

#define HOST_SOCK "host.sock"
#define HOST_LOCK "host.lock"
#define REQ_MAX (256 * 1024)

int host_path(const char *dir, const char *name, char *out, size_t len);
int host_sock_addr(const char *dir, struct sockaddr_un *sa);
void host_say_too_long(const char *dir, char *err, size_t errlen);
void host_sleep_ms(long ms);
long host_now_ms(void);
/* One line on @fd for whoever waits for the service's start. */
void host_tell(int fd, const char *msg);
/* The service runs detached from the invocation's terminal and session;
 * stderr stays when @keep_stderr (-f). */
void host_detach(bool keep_stderr);
/* Become the service of NVM directory @dir; @report gets "ok" or "error ...". */
void __attribute__((noreturn)) host_run_service(const char *dir, const struct tier_config *cfg,
					       bool foreground, int report);

#endif
