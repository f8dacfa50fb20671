/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdarg.h>
#include <stdio.h>

#include "fs/log.h"

void nl_log_msg(int priority, const char *msg)
{
	if (priority & NL_LOG_TELL)
		fprintf(stderr, "nlayerfs: %s\n", msg);
	syslog(priority & LOG_PRIMASK, "%s", msg);
}

void nl_log(int priority, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	nl_log_msg(priority, msg);
}
