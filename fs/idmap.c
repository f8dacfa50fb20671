/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * uidmapping=/gidmapping=: the ids stored in the layers and the ids the
 * mount shows.
 */
#include "fs/options.h"

#include <errno.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#define NL_OVERFLOW_ID 65534u

/* ---- id mappings --------------------------------------------------------- */

int nl_parse_id(const char *s, size_t len, unsigned int *id)
{
	unsigned long long v = 0;

	if (len == 0 || len > 10)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return -EINVAL;
	*id = (unsigned int)v;
	return 0;
}

/* Parse every number of @value into @ids; separators are ':' and ','. */
static int parse_id_list(const char *value, unsigned int **ids, size_t *n)
{
	size_t cap = strlen(value) / 2 + 1;
	unsigned int *v = calloc(cap, sizeof(*v));
	const char *p = value;
	size_t k = 0;

	if (!v)
		return -ENOMEM;
	for (;;) {
		size_t len = strcspn(p, ":,");

		if (k == cap || nl_parse_id(p, len, &v[k]) < 0) {
			free(v);
			return -EINVAL;
		}
		k++;
		if (!p[len])
			break;
		p += len + 1;
	}
	*ids = v;
	*n = k;
	return 0;
}

int nl_parse_idmap(const char *value, struct nl_idmap **out)
{
	unsigned int *ids;
	struct nl_idmap *m;
	size_t n, entries;

	*out = NULL;
	if (!value || !*value || parse_id_list(value, &ids, &n) < 0)
		return -EINVAL;
	if (n % 3) {
		free(ids);
		return -EINVAL;
	}
	entries = n / 3;
	m = calloc(entries, sizeof(*m));
	if (!m) {
		free(ids);
		return -ENOMEM;
	}
	for (size_t i = 0; i < entries; i++) {
		/* fuse-overlayfs' order: the id as stored, then the id as
		 * shown, then the count. */
		m[i] = (struct nl_idmap){ .outer = ids[3 * i],
					  .inner = ids[3 * i + 1],
					  .count = ids[3 * i + 2] };
		/* An empty range or one that runs past the id space is a typo,
		 * not something to map silently to the overflow id. */
		if (m[i].count == 0 ||
		    (uint64_t)m[i].inner + m[i].count > (uint64_t)UINT32_MAX + 1 ||
		    (uint64_t)m[i].outer + m[i].count > (uint64_t)UINT32_MAX + 1) {
			free(ids);
			free(m);
			return -EINVAL;
		}
	}
	free(ids);
	*out = m;
	return (int)entries;
}

static bool in_range(unsigned int id, unsigned int first, unsigned int count)
{
	return id >= first && (uint64_t)id < (uint64_t)first + count;
}

/* No mapping at all means ids pass unchanged, as in fuse-overlayfs. */
unsigned int nl_idmap_to_outer(const struct nl_idmap *m, size_t n,
			       unsigned int inner)
{
	if (n == 0)
		return inner;
	for (size_t i = 0; i < n; i++)
		if (in_range(inner, m[i].inner, m[i].count))
			return m[i].outer + (inner - m[i].inner);
	return NL_OVERFLOW_ID;
}

unsigned int nl_idmap_to_inner(const struct nl_idmap *m, size_t n,
			       unsigned int outer)
{
	if (n == 0)
		return outer;
	for (size_t i = 0; i < n; i++)
		if (in_range(outer, m[i].outer, m[i].count))
			return m[i].inner + (outer - m[i].outer);
	return NL_OVERFLOW_ID;
}
