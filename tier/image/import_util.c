/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Small helpers shared by the image import code.
 */
#include <stdarg.h>
#include <stdio.h>

#include "tier/image/import_private.h"

int nl_errf(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return r;
}
