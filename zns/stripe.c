/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Striping of a tenant's stream over its k zones. The position is computed,
 * never looked up: a row is k zones (one per group of the tenant) holding
 * k x cap bytes, and inside a row stripe units go round-robin over the zones.
 */
#include "zns/zns.h"

struct zns_stripe_pos zns_stripe_locate(uint64_t off, uint64_t unit, uint32_t k,
					uint64_t cap)
{
	uint64_t row_bytes = cap * k;
	uint64_t o = off % row_bytes;
	struct zns_stripe_pos p = {
		.row = off / row_bytes,
		.slot = (uint32_t)((o / unit) % k),
		.zone_off = (o / (unit * k)) * unit + o % unit,
	};

	return p;
}

uint64_t zns_stripe_offset(const struct zns_stripe_pos *pos, uint64_t unit,
			   uint32_t k, uint64_t cap)
{
	uint64_t stripe = pos->zone_off / unit;	/* full stripes before it in the row */

	return pos->row * cap * k + stripe * unit * k + (uint64_t)pos->slot * unit +
	       pos->zone_off % unit;
}
