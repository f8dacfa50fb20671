/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The program's one logger: every message goes to the system log (a
 * daemonised mount has no terminal); one that the person who started the
 * mount must see goes to stderr too.
 */
#ifndef NLAYERFS_FS_LOG_H
#define NLAYERFS_FS_LOG_H

#include <syslog.h>

/* Or'ed into a syslog(3) priority: print the message on stderr as well.
 * The same bit as TIER_LOG_TELL, so that the tier's messages come
 * through as they are. */
#define NL_LOG_TELL 0x100

void nl_log(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same for a message already formatted (the tier library's hook). */
void nl_log_msg(int priority, const char *msg);

#endif
