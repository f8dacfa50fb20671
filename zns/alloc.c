/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Tenant allocation over independent groups. Groups are reserved statically
 * per tenant; sharing only happens in fair mode once free groups run out,
 * and then the least-shared groups are taken first so that interference
 * spreads evenly.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "zns/zns.h"

#define ALLOC_MAGIC 0x4e4c5a41u	/* "NLZA" */
#define ALLOC_VERSION 1u

struct tenant_groups {
	uint32_t tenant;
	uint32_t k;
	uint32_t *groups;
};

struct zns_alloc {
	uint32_t nr_groups;
	enum zns_admission admission;
	uint32_t *share;		/* tenants per group */
	struct tenant_groups *tenants;
	uint32_t nr_tenants;
};

uint32_t zns_groups_for_bandwidth(uint64_t bandwidth, uint64_t zone_bw)
{
	uint64_t k;

	if (!zone_bw || !bandwidth)
		return 1;
	k = (bandwidth + zone_bw - 1) / zone_bw;
	return k > UINT32_MAX ? UINT32_MAX : (uint32_t)k;
}

int zns_alloc_new(uint32_t nr_groups, enum zns_admission adm, struct zns_alloc **ap)
{
	struct zns_alloc *a;

	if (!nr_groups || (adm != ZNS_ADMIT_FAIR && adm != ZNS_ADMIT_STRICT))
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->share = calloc(nr_groups, sizeof(*a->share));
	if (!a->share) {
		free(a);
		return -ENOMEM;
	}
	a->nr_groups = nr_groups;
	a->admission = adm;
	*ap = a;
	return 0;
}

void zns_alloc_free(struct zns_alloc *a)
{
	if (!a)
		return;
	for (uint32_t i = 0; i < a->nr_tenants; i++)
		free(a->tenants[i].groups);
	free(a->tenants);
	free(a->share);
	free(a);
}

static struct tenant_groups *find_tenant(const struct zns_alloc *a, uint32_t tenant)
{
	for (uint32_t i = 0; i < a->nr_tenants; i++)
		if (a->tenants[i].tenant == tenant)
			return &a->tenants[i];
	return NULL;
}

static bool picked(const uint32_t *groups, uint32_t n, uint32_t g)
{
	for (uint32_t i = 0; i < n; i++)
		if (groups[i] == g)
			return true;
	return false;
}

/* The least-shared group not yet picked; lowest index on ties. */
static uint32_t least_shared(const struct zns_alloc *a, const uint32_t *groups,
			     uint32_t n)
{
	uint32_t best = UINT32_MAX;

	for (uint32_t g = 0; g < a->nr_groups; g++) {
		if (picked(groups, n, g))
			continue;
		if (best == UINT32_MAX || a->share[g] < a->share[best])
			best = g;
	}
	return best;
}

/* Free groups first, in order, then the least-shared ones. */
static void pick_groups(const struct zns_alloc *a, uint32_t k, uint32_t *groups)
{
	uint32_t n = 0;

	for (uint32_t g = 0; g < a->nr_groups && n < k; g++)
		if (!a->share[g])
			groups[n++] = g;
	while (n < k) {
		groups[n] = least_shared(a, groups, n);
		n++;
	}
}

static int add_tenant(struct zns_alloc *a, uint32_t tenant, uint32_t k,
		      const uint32_t *groups)
{
	struct tenant_groups *t;
	uint32_t *copy = malloc(k * sizeof(*copy));

	if (!copy)
		return -ENOMEM;
	t = realloc(a->tenants, (a->nr_tenants + 1) * sizeof(*t));
	if (!t) {
		free(copy);
		return -ENOMEM;
	}
	a->tenants = t;
	memcpy(copy, groups, k * sizeof(*copy));
	a->tenants[a->nr_tenants++] = (struct tenant_groups){ tenant, k, copy };
	for (uint32_t i = 0; i < k; i++)
		a->share[groups[i]]++;
	return 0;
}

int zns_alloc_tenant(struct zns_alloc *a, uint32_t tenant, uint32_t k,
		     uint32_t *groups)
{
	if (!k)
		return -EINVAL;
	if (find_tenant(a, tenant))
		return -EEXIST;
	if (k > a->nr_groups)
		k = a->nr_groups;
	if (a->admission == ZNS_ADMIT_STRICT && zns_alloc_free_groups(a) < k)
		return -ENOSPC;
	pick_groups(a, k, groups);
	return add_tenant(a, tenant, k, groups);
}

int zns_alloc_release(struct zns_alloc *a, uint32_t tenant)
{
	struct tenant_groups *t = find_tenant(a, tenant);

	if (!t)
		return -ENOENT;
	for (uint32_t i = 0; i < t->k; i++)
		a->share[t->groups[i]]--;
	free(t->groups);
	*t = a->tenants[--a->nr_tenants];
	return 0;
}

int zns_alloc_groups(const struct zns_alloc *a, uint32_t tenant, uint32_t *groups,
		     uint32_t max)
{
	const struct tenant_groups *t = find_tenant(a, tenant);

	if (!t)
		return -ENOENT;
	for (uint32_t i = 0; i < t->k && i < max; i++)
		groups[i] = t->groups[i];
	return (int)t->k;
}

uint32_t zns_alloc_share(const struct zns_alloc *a, uint32_t group)
{
	return group < a->nr_groups ? a->share[group] : 0;
}

enum zns_admission zns_alloc_admission(const struct zns_alloc *a)
{
	return a->admission;
}

void zns_alloc_set_admission(struct zns_alloc *a, enum zns_admission adm)
{
	if (adm == ZNS_ADMIT_FAIR || adm == ZNS_ADMIT_STRICT)
		a->admission = adm;
}

uint32_t zns_alloc_nr_groups(const struct zns_alloc *a)
{
	return a->nr_groups;
}

uint32_t zns_alloc_free_groups(const struct zns_alloc *a)
{
	uint32_t n = 0;

	for (uint32_t g = 0; g < a->nr_groups; g++)
		n += !a->share[g];
	return n;
}

/* ---------------- serialisation: a flat array of little-endian u32 ---------------- */

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

size_t zns_alloc_encode(const struct zns_alloc *a, void *buf, size_t len)
{
	size_t words = 5;
	uint8_t *p = buf;

	for (uint32_t i = 0; i < a->nr_tenants; i++)
		words += 2 + a->tenants[i].k;
	if (!buf || len < words * 4)
		return words * 4;
	put32(p, ALLOC_MAGIC);
	put32(p + 4, ALLOC_VERSION);
	put32(p + 8, a->nr_groups);
	put32(p + 12, (uint32_t)a->admission);
	put32(p + 16, a->nr_tenants);
	p += 20;
	for (uint32_t i = 0; i < a->nr_tenants; i++) {
		put32(p, a->tenants[i].tenant);
		put32(p + 4, a->tenants[i].k);
		p += 8;
		for (uint32_t j = 0; j < a->tenants[i].k; j++, p += 4)
			put32(p, a->tenants[i].groups[j]);
	}
	return words * 4;
}

static int decode_tenant(struct zns_alloc *a, const uint8_t **pp, const uint8_t *end)
{
	const uint8_t *p = *pp;
	uint32_t tenant, k, groups[256];
	uint32_t *g = groups;
	int rc;

	if (end - p < 8)
		return -EINVAL;
	tenant = get32(p);
	k = get32(p + 4);
	p += 8;
	if (!k || k > a->nr_groups || (size_t)(end - p) / 4 < k || find_tenant(a, tenant))
		return -EINVAL;
	if (k > 256 && !(g = malloc(k * sizeof(*g))))
		return -ENOMEM;
	for (uint32_t j = 0; j < k; j++, p += 4) {
		g[j] = get32(p);
		if (g[j] >= a->nr_groups || picked(g, j, g[j])) {
			if (g != groups)
				free(g);
			return -EINVAL;
		}
	}
	rc = add_tenant(a, tenant, k, g);
	if (g != groups)
		free(g);
	*pp = p;
	return rc;
}

int zns_alloc_decode(const void *buf, size_t len, struct zns_alloc **ap)
{
	const uint8_t *p = buf, *end = p + len;
	struct zns_alloc *a;
	uint32_t n;
	int rc;

	if (len < 20 || get32(p) != ALLOC_MAGIC || get32(p + 4) != ALLOC_VERSION)
		return -EINVAL;
	rc = zns_alloc_new(get32(p + 8), (enum zns_admission)get32(p + 12), &a);
	if (rc)
		return rc;
	n = get32(p + 16);
	p += 20;
	for (uint32_t i = 0; i < n && !rc; i++)
		rc = decode_tenant(a, &p, end);
	if (!rc && p != end)
		rc = -EINVAL;
	if (rc) {
		zns_alloc_free(a);
		return rc;
	}
	*ap = a;
	return 0;
}
