/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libnlzns: the zoned store of nlayerfs.
 *
 * Four layers, each usable on its own:
 *  - a zoned device (zns_dev): a host-managed zoned block device driven with
 *    libzbd, or a regular file that emulates one and refuses what a device
 *    refuses;
 *  - independent groups and tenant allocation (zns_alloc): M = channels x
 *    ways groups, zone i in group i mod M, k groups per tenant;
 *  - striping (zns_stripe_*): pure functions from a stream offset to a
 *    zone slot and an offset in that zone, and back;
 *  - the store (zns_store, zns_stream): tenants' streams striped over their
 *    groups' zones, written in parallel, with dead-space accounting and
 *    reset/reuse of zones whose data is all dead.
 *
 * All calls return 0 (or a byte count) on success and a negative errno on
 * failure. Zone offsets and write pointers are relative to the zone start.
 */
#ifndef NLAYERFS_ZNS_H
#define NLAYERFS_ZNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Zoned device                                                         */
/* ------------------------------------------------------------------ */

/* Zone states, as NVMe ZNS names them. */
enum zns_zone_state {
	ZNS_ZONE_EMPTY = 0,
	ZNS_ZONE_IOPEN,		/* implicitly opened by a write */
	ZNS_ZONE_EOPEN,		/* explicitly opened */
	ZNS_ZONE_CLOSED,
	ZNS_ZONE_FULL,
	ZNS_ZONE_READONLY,
	ZNS_ZONE_OFFLINE,
};

/*
 * Device geometry. max_open/max_active 0 = no limit. zone_bw (bytes/s) is
 * the write bandwidth of one independent group; 0 disables the emulator's
 * bandwidth model. channels x ways is the number of independent groups.
 */
struct zns_geometry {
	uint32_t nr_zones;
	uint64_t zone_size;
	uint64_t zone_cap;
	uint32_t block_size;
	uint32_t channels;
	uint32_t ways;
	uint32_t max_open;
	uint32_t max_active;
	uint64_t zone_bw;
};

/* One zone as reported by the device. */
struct zns_zone_info {
	uint32_t zone;
	uint32_t group;
	enum zns_zone_state state;
	uint64_t start;		/* byte offset of the zone on the device */
	uint64_t wp;		/* write pointer, relative to start */
	uint64_t cap;
};

/*
 * Options of zns_open. A real device does not tell its channels and ways,
 * so they come from here (0 keeps the emulator's value, or 1 on a device);
 * zone_bw nonzero overrides the emulator's bandwidth model.
 */
struct zns_open_opts {
	uint32_t channels;
	uint32_t ways;
	uint64_t zone_bw;
	bool no_bw_model;	/* turn the emulator's bandwidth model off */
};

struct zns_dev;

/** Check a geometry; returns 0 or -EINVAL and a reason in @why. */
int zns_geometry_check(const struct zns_geometry *g, char *why, size_t whylen);

/**
 * Create an emulated zoned device in the regular file @path (an existing
 * regular file is overwritten; anything else is refused with -EEXIST).
 */
int zns_emu_create(const char *path, const struct zns_geometry *g);

/**
 * Open a zoned device: a block device goes to the libzbd backend, a regular
 * file to the emulator. @opts may be NULL.
 */
int zns_open(const char *path, const struct zns_open_opts *opts,
	     struct zns_dev **devp);

/**
 * zns_open that also says why a device was refused: which header field of an
 * emulator file is wrong, which geometry rule a channels/ways choice breaks,
 * or what kind of file @path is instead. @why gets "" on success.
 */
int zns_open_why(const char *path, const struct zns_open_opts *opts,
		 struct zns_dev **devp, char *why, size_t whylen);

/** Close a device opened with zns_open. */
void zns_close(struct zns_dev *dev);

/** The device's geometry. */
const struct zns_geometry *zns_dev_geometry(const struct zns_dev *dev);

/** True for the file emulator, false for a real device. */
bool zns_dev_is_emulated(const struct zns_dev *dev);

/** Number of independent groups (channels x ways). */
uint32_t zns_nr_groups(const struct zns_geometry *g);

/** The independent group of @zone: zone mod (channels x ways). */
uint32_t zns_zone_group(const struct zns_geometry *g, uint32_t zone);

/** Report one zone (state and write pointer). */
int zns_zone_report(struct zns_dev *dev, uint32_t zone, struct zns_zone_info *info);

/** Explicitly open, close, finish or reset a zone. */
int zns_zone_open(struct zns_dev *dev, uint32_t zone);
int zns_zone_close(struct zns_dev *dev, uint32_t zone);
int zns_zone_finish(struct zns_dev *dev, uint32_t zone);
int zns_zone_reset(struct zns_dev *dev, uint32_t zone);

/**
 * Write @len bytes at offset @off of @zone. @off must be the write pointer;
 * @buf, @off and @len must be block aligned (O_DIRECT rules). Refusals are
 * those of a device: -EINVAL unaligned, -EIO not at the write pointer, past
 * the capacity or to a full zone, -ETOOMANYREFS over max_open, -EOVERFLOW
 * over max_active. Returns @len on success.
 */
ssize_t zns_zone_write(struct zns_dev *dev, uint32_t zone, uint64_t off,
		       const void *buf, size_t len);

/** Read @len bytes at @off of @zone; same alignment rules as writes. */
ssize_t zns_zone_read(struct zns_dev *dev, uint32_t zone, uint64_t off,
		      void *buf, size_t len);

/** Number of active zones (implicitly or explicitly open, or closed), or -errno. */
int zns_dev_active_zones(struct zns_dev *dev);

/** Make written data and zone state durable (fsync / msync). */
int zns_dev_sync(struct zns_dev *dev);

/** Human-readable name of a zone state ("empty", "iopen", ...). */
const char *zns_zone_state_name(enum zns_zone_state s);

/* ------------------------------------------------------------------ */
/* Identity label                                                       */
/* ------------------------------------------------------------------ */

#define ZNS_ID_LEN 16

/* A device's identity, kept in the first block of zone 0 (see label.c). */
struct zns_label {
	uint8_t id[ZNS_ID_LEN];
};

/** A new random identity. */
int zns_label_new(struct zns_label *l);

/**
 * Read the device's label: 0, -ENOENT when zone 0 is empty (no label),
 * -EINVAL when zone 0 holds something that is not this device's label.
 */
int zns_label_read(struct zns_dev *dev, struct zns_label *l);

/** Reset zone 0 and write @l there; zone 0 is then full and durable. */
int zns_label_write(struct zns_dev *dev, const struct zns_label *l);

/** The identity as 32 hex digits in @buf (@len at least 33). */
void zns_label_format(const struct zns_label *l, char *buf, size_t len);

/** The first zone from @from on that holds data or is open, or -ENOENT. */
int zns_dev_first_written(struct zns_dev *dev, uint32_t from);

/* ------------------------------------------------------------------ */
/* Striping (pure)                                                      */
/* ------------------------------------------------------------------ */

/* Where a stream offset lives: the row of k zones, the slot in it, the offset in the zone. */
struct zns_stripe_pos {
	uint64_t row;
	uint32_t slot;
	uint64_t zone_off;
};

/**
 * Map stream offset @off to its position, for stripe unit @unit, @k zones
 * per row and zone capacity @cap (a multiple of @unit). Within a row:
 * slot = (o / unit) mod k, zone_off = (o / (unit k)) unit + o mod unit.
 */
struct zns_stripe_pos zns_stripe_locate(uint64_t off, uint64_t unit, uint32_t k,
					uint64_t cap);

/** The inverse of zns_stripe_locate. */
uint64_t zns_stripe_offset(const struct zns_stripe_pos *pos, uint64_t unit,
			   uint32_t k, uint64_t cap);

/* ------------------------------------------------------------------ */
/* Groups and tenant allocation                                         */
/* ------------------------------------------------------------------ */

enum zns_admission {
	ZNS_ADMIT_FAIR = 0,	/* share the least-shared groups when free ones run out */
	ZNS_ADMIT_STRICT,	/* refuse with -ENOSPC instead */
};

struct zns_alloc;

/** k = ceil(bandwidth / zone_bw), at least 1. */
uint32_t zns_groups_for_bandwidth(uint64_t bandwidth, uint64_t zone_bw);

/** New allocation state over @nr_groups groups. */
int zns_alloc_new(uint32_t nr_groups, enum zns_admission adm, struct zns_alloc **ap);

/** Free an allocation state. */
void zns_alloc_free(struct zns_alloc *a);

/**
 * Reserve @k groups for @tenant (k is capped at the number of groups); they
 * are written to @groups (room for k). Free groups first, in order; then, in
 * fair mode, the least-shared ones. Strict mode returns -ENOSPC when fewer
 * than k groups are free; -EEXIST if the tenant already has groups.
 */
int zns_alloc_tenant(struct zns_alloc *a, uint32_t tenant, uint32_t k,
		     uint32_t *groups);

/** Release @tenant's groups; -ENOENT if it has none. */
int zns_alloc_release(struct zns_alloc *a, uint32_t tenant);

/** The groups of @tenant (up to @max written), or -ENOENT. Returns k. */
int zns_alloc_groups(const struct zns_alloc *a, uint32_t tenant, uint32_t *groups,
		     uint32_t max);

/** How many tenants use @group. */
uint32_t zns_alloc_share(const struct zns_alloc *a, uint32_t group);

/** Number of groups the state covers. */
uint32_t zns_alloc_nr_groups(const struct zns_alloc *a);

/** Number of groups no tenant uses. */
uint32_t zns_alloc_free_groups(const struct zns_alloc *a);

/** The admission mode, and a change of it (tenants already placed stay where they are). */
enum zns_admission zns_alloc_admission(const struct zns_alloc *a);
void zns_alloc_set_admission(struct zns_alloc *a, enum zns_admission adm);

/**
 * Serialise to @buf (little endian, versioned). Returns the size needed;
 * writes only when @len is large enough, so call with len 0 to size it.
 */
size_t zns_alloc_encode(const struct zns_alloc *a, void *buf, size_t len);

/** Rebuild an allocation state from zns_alloc_encode output; -EINVAL if bad. */
int zns_alloc_decode(const void *buf, size_t len, struct zns_alloc **ap);

/* ------------------------------------------------------------------ */
/* Store: tenants' striped streams                                      */
/* ------------------------------------------------------------------ */

struct zns_store_opts {
	uint64_t stripe_unit;		/* bytes, multiple of block size dividing zone_cap; 0 = 64 KiB */
	uint64_t batch;			/* bytes staged per zone before a parallel write; 0 = 1 MiB */
	uint64_t zone_bw;		/* bytes/s of one group, to size k; 0 = the device's, else 100 MiB/s */
	enum zns_admission admission;
	uint32_t reserved_zones;	/* zones 0 .. n-1 are never allocated (the label's) */
};

struct zns_store;
struct zns_stream;

/* Per-zone use: owner tenant + 1 (0 = free) and dead bytes. */
struct zns_zone_use {
	uint32_t owner;
	uint64_t dead;
};

/** A store over an open device (the device stays owned by the caller). */
int zns_store_new(struct zns_dev *dev, const struct zns_store_opts *opts,
		  struct zns_store **sp);

/** Free a store; its open streams must be closed first. */
void zns_store_free(struct zns_store *s);

/**
 * The store's allocation state (to persist it, or to inspect it). Not
 * locked: use it while no stream is being created or destroyed.
 */
struct zns_alloc *zns_store_alloc(struct zns_store *s);

/** Copy of one zone's use, for persisting or reporting. */
int zns_store_zone_use(struct zns_store *s, uint32_t zone, struct zns_zone_use *u);

/**
 * Open a new stream for @tenant asking @bandwidth bytes/s: reserves its
 * groups (see zns_alloc_tenant) and starts a queue and a writer per zone.
 */
int zns_stream_create(struct zns_store *s, uint32_t tenant, uint64_t bandwidth,
		      struct zns_stream **stp);

/**
 * Append @len bytes at the end of the stream; the stream offset where they
 * start goes to @offp. Data is staged and written to the k zones in parallel.
 * -ENOSPC when a group has no free zone left, -EOVERFLOW when a new row
 * would pass the device's active-zone limit; both leave the stream usable
 * (bytes before the failing row boundary were appended).
 */
int zns_stream_append(struct zns_stream *st, const void *buf, size_t len,
		      uint64_t *offp);

/**
 * Write out everything staged; the stream end is padded to a block
 * boundary (the padding counts as dead). Then sync the device.
 */
int zns_stream_flush(struct zns_stream *st);

/** Read from the stream at any offset below its end (staged data too). */
ssize_t zns_stream_read(struct zns_stream *st, uint64_t off, void *buf, size_t len);

/**
 * Mark [@off, @off + @len) dead. Zones of finished rows whose data is then
 * all dead are reset and given back for reuse. -EINVAL past the end.
 */
int zns_stream_discard(struct zns_stream *st, uint64_t off, uint64_t len);

/** The stream end (bytes appended, padding included). */
uint64_t zns_stream_end(struct zns_stream *st);

/** The stream's tenant, its k, and its number of rows (reset ones included). */
uint32_t zns_stream_tenant(const struct zns_stream *st);
uint32_t zns_stream_k(const struct zns_stream *st);
uint64_t zns_stream_nrows(struct zns_stream *st);

/** The zone of (@row, @slot), or -ENOENT if reset or not allocated. */
int zns_stream_zone(struct zns_stream *st, uint64_t row, uint32_t slot);

/**
 * Recovery hook: compare each zone's write pointer with what the stream
 * expects for its written end. Returns the number of zones that disagree
 * (0 = consistent), and reports the first mismatch in @zone/@wp/@expect.
 */
int zns_stream_check(struct zns_stream *st, uint32_t *zone, uint64_t *wp,
		     uint64_t *expect);

/* What recovery found on the device against the stream's description. */
struct zns_stream_damage {
	uint32_t zones_ahead;	/* written past the description: uncommitted data */
	uint64_t bytes_ahead;
	uint32_t zones_behind;	/* short of it: described data is gone (reset by another) */
	uint64_t bytes_behind;
	uint32_t first_behind;	/* the first such zone */
};

/**
 * Zones that hold less than the stream wrote to them (zns_stream_verify
 * found them) and still hold data of it: reads there fail with -EIO. A
 * zone whose data all died since (zns_stream_discard, zns_stream_recount_dead)
 * is not counted.
 */
uint32_t zns_stream_lost_zones(struct zns_stream *st);

/**
 * Recovery: compare every zone with the description, count bytes written
 * after it and bytes missing from it. Reads of missing bytes fail with -EIO
 * from then on, rather than return what the zone holds now.
 */
int zns_stream_verify(struct zns_stream *st, struct zns_stream_damage *d);

/**
 * Serialise the stream's durable description (tenant, groups, stripe unit,
 * end, rows) for the checkpoint metadata. Call after zns_stream_flush:
 * returns -EBUSY while data is staged. Returns the size needed; writes only
 * when @len is large enough.
 */
ssize_t zns_stream_encode(struct zns_stream *st, void *buf, size_t len);

/**
 * zns_stream_flush without the device sync, and zns_stream_encode into a new
 * buffer (*@bufp, the caller frees it), in one step: appends from other
 * threads land either before (in the description) or after it. Returns the
 * description's size. For a commit of several streams: snapshot each, then
 * one zns_dev_sync.
 */
ssize_t zns_stream_snapshot(struct zns_stream *st, void **bufp);

/**
 * Recovery: rebuild a stream from zns_stream_encode output after a restart.
 * The tenant's groups must be in the store's allocation (zns_store_restore_alloc);
 * its zones are claimed again. Run zns_stream_check next.
 */
int zns_stream_attach(struct zns_store *s, const void *buf, size_t len,
		      struct zns_stream **stp);

/**
 * Recovery: finish the zones of the stream's last row and move the end to
 * the row boundary; what is past the old end counts as dead. Appends then
 * start in fresh zones, so a row whose write pointers disagree with the
 * metadata (zns_stream_check) is never written again.
 */
int zns_stream_seal(struct zns_stream *st);

/**
 * Recovery: replace the store's allocation by a zns_alloc_encode image (no
 * stream open). The image gives the tenants and their groups; the admission
 * mode stays the store's own (zns_store_opts), so a mount's admission=
 * applies to tenants created after a restart. -ERANGE: the image was made
 * for another number of groups; -EINVAL: it is damaged.
 */
int zns_store_restore_alloc(struct zns_store *s, const void *buf, size_t len);

/** Recovery: set a zone's dead-byte count from the metadata. */
int zns_store_set_dead(struct zns_store *s, uint32_t zone, uint64_t dead);

/* A range of stream bytes. */
struct zns_range {
	uint64_t off;
	uint64_t len;
};

/**
 * Recovery: count the dead bytes of every zone of the stream again, from
 * the @n ranges the committed metadata still uses (@live): everything else
 * written is dead. Zones of finished rows left with no live byte are reset
 * and given back. The counts a crash leaves behind miss space freed after
 * the last commit, and data appended before a commit whose extent was not
 * yet recorded: without this, such zones would never be reset.
 */
int zns_stream_recount_dead(struct zns_stream *st, const struct zns_range *live, size_t n);

/** Stop the writers and close the stream (flushes first). Groups stay reserved. */
int zns_stream_close(struct zns_stream *st);

/** Close the stream, reset all its zones and release its groups. */
int zns_stream_destroy(struct zns_stream *st);

#ifdef __cplusplus
}
#endif
#endif
