/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * File-emulated zoned device. The file starts with a header (geometry and
 * one record per zone) that is mapped MAP_SHARED, so zone state lives in the
 * page cache and survives a kill -9 of the process the way a device's state
 * survives its host process; zns_dev_sync makes it durable. Zone data follows
 * the header. The emulator refuses what a ZNS device refuses, with the errno
 * a zoned block device gives through the kernel.
 *
 * The bandwidth model's per-group clocks live in the shared header too, so
 * that separate processes writing the same emulated device share a group's
 * bandwidth as they would share a real channel. State changes are serialised
 * between processes by an open-file-description lock, which the kernel drops
 * when a process dies. A write in flight holds such a lock on a byte of its
 * own zone too: a zone whose writer was killed is free again at once, even
 * when the dead writer's pid has been given to another process since.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "zns/zns_private.h"

#define EMU_MAGIC "NLZNSEM1"
#define EMU_VERSION 1
#define EMU_MAX_ZONES (1u << 20)
#define EMU_PAGE 4096u

struct emu_zone_rec {
	uint64_t wp;
	uint32_t state;
	uint32_t writer;	/* pid of the process writing the zone, 0 if none */
};

struct emu_header {
	char magic[8];
	uint32_t version;
	uint32_t nr_zones;
	uint64_t zone_size;
	uint64_t zone_cap;
	uint32_t block_size;
	uint32_t channels;
	uint32_t ways;
	uint32_t max_open;
	uint32_t max_active;
	uint32_t reserved0;
	uint64_t zone_bw;
	uint64_t data_off;
	uint8_t reserved[64];
	struct emu_zone_rec zones[];
};

struct emu {
	int fd;
	struct emu_header *hdr;
	size_t map_len;
	pthread_mutex_t lock;		/* zone state, between threads (see emu_lock) */
	pthread_mutex_t io_lock;	/* data writes into the backing file */
	uint64_t *group_free_ns;	/* in the mapping: when each group is next idle */
	bool *writing;			/* zones this process is writing now */
};

/* Far past any emulator file: the bytes whose locks mark a zone's writer. */
#define EMU_WRITER_LOCK_BASE ((off_t)1 << 48)

static struct emu *emu_of(struct zns_dev *dev)
{
	return dev->priv;
}

/* Header, zone records, then one clock per possible group (at most one per zone). */
static uint64_t emu_header_len(uint32_t nr_zones)
{
	uint64_t len = sizeof(struct emu_header) +
		       (uint64_t)nr_zones * sizeof(struct emu_zone_rec) +
		       (uint64_t)nr_zones * sizeof(uint64_t);

	return (len + EMU_PAGE - 1) / EMU_PAGE * EMU_PAGE;
}

static void emu_fill_header(struct emu_header *h, const struct zns_geometry *g,
			    uint64_t data_off)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->magic, EMU_MAGIC, sizeof(h->magic));
	h->version = EMU_VERSION;
	h->nr_zones = g->nr_zones;
	h->zone_size = g->zone_size;
	h->zone_cap = g->zone_cap;
	h->block_size = g->block_size;
	h->channels = g->channels;
	h->ways = g->ways;
	h->max_open = g->max_open;
	h->max_active = g->max_active;
	h->zone_bw = g->zone_bw;
	h->data_off = data_off;
}

/*
 * Open @path to hold a new emulated device: a new file, or an existing
 * regular file emptied. Anything else (a block device above all) is refused
 * with -EEXIST, and only a file created here is removed on failure.
 */
static int emu_open_new(const char *path, bool *created)
{
	struct stat st;
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644), rc = 0;

	*created = fd >= 0;
	if (fd >= 0 || errno != EEXIST)
		return fd >= 0 ? fd : -errno;
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		rc = -errno;
	else if (!S_ISREG(st.st_mode))
		rc = -EEXIST;
	else if (ftruncate(fd, 0) < 0)
		rc = -errno;
	if (rc) {
		close(fd);
		return rc;
	}
	return fd;
}

int zns_emu_create(const char *path, const struct zns_geometry *g)
{
	struct emu_header h;
	uint64_t data_off, total;
	bool created;
	int fd, rc = 0;

	if (zns_geometry_check(g, NULL, 0) || g->nr_zones > EMU_MAX_ZONES)
		return -EINVAL;
	data_off = emu_header_len(g->nr_zones);
	if (data_off % g->block_size)
		data_off = (data_off / g->block_size + 1) * g->block_size;
	total = data_off + (uint64_t)g->nr_zones * g->zone_size;
	fd = emu_open_new(path, &created);
	if (fd < 0)
		return fd;
	emu_fill_header(&h, g, data_off);
	/* Zone records are all zero: EMPTY, wp 0. */
	if (ftruncate(fd, (off_t)total) < 0 ||
	    pwrite(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) || fsync(fd) < 0)
		rc = errno ? -errno : -EIO;
	close(fd);
	if (rc && created)
		unlink(path);
	return rc;
}

/* A truncated file would silently lose zone data: refuse it. */
static int emu_check_size(int fd, const struct emu_header *h, char *why, size_t whylen)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (h->zone_size > (UINT64_MAX - h->data_off) / h->nr_zones) {
		zns_why(why, whylen, "header field zone_size %llu is impossibly large for %u zones",
			(unsigned long long)h->zone_size, h->nr_zones);
		return -EINVAL;
	}
	if ((uint64_t)st.st_size < h->data_off + (uint64_t)h->nr_zones * h->zone_size) {
		zns_why(why, whylen, "the file is %lld bytes, its header (%u zones of %llu bytes "
			"from offset %llu) needs %llu: truncated", (long long)st.st_size,
			h->nr_zones, (unsigned long long)h->zone_size,
			(unsigned long long)h->data_off,
			(unsigned long long)(h->data_off + (uint64_t)h->nr_zones * h->zone_size));
		return -EINVAL;
	}
	return 0;
}

static int emu_read_header(int fd, struct emu_header *h, char *why, size_t whylen)
{
	ssize_t n = pread(fd, h, sizeof(*h), 0);

	if (n < 0)
		return -errno;
	if (n != (ssize_t)sizeof(*h)) {
		zns_why(why, whylen, "the file is shorter (%zd bytes) than an emulator header "
			"(%zu): not an emulated zoned device", n, sizeof(*h));
		return -EINVAL;
	}
	if (memcmp(h->magic, EMU_MAGIC, 8)) {
		zns_why(why, whylen, "header field magic is not \"%s\": not an emulated zoned "
			"device (nlayerfs-zns create makes one)", EMU_MAGIC);
		return -EINVAL;
	}
	if (h->version != EMU_VERSION) {
		zns_why(why, whylen, "header field version is %u, this build reads version %u",
			h->version, EMU_VERSION);
		return -EINVAL;
	}
	if (!h->nr_zones || h->nr_zones > EMU_MAX_ZONES) {
		zns_why(why, whylen, "header field nr_zones is %u, not from 1 to %u",
			h->nr_zones, EMU_MAX_ZONES);
		return -EINVAL;
	}
	if (h->data_off < emu_header_len(h->nr_zones)) {
		zns_why(why, whylen, "header field data_off %llu lies inside the zone records "
			"(at least %llu for %u zones)", (unsigned long long)h->data_off,
			(unsigned long long)emu_header_len(h->nr_zones), h->nr_zones);
		return -EINVAL;
	}
	return emu_check_size(fd, h, why, whylen);
}

static void emu_geometry_from(struct zns_geometry *g, const struct emu_header *h,
			      const struct zns_open_opts *o)
{
	g->nr_zones = h->nr_zones;
	g->zone_size = h->zone_size;
	g->zone_cap = h->zone_cap;
	g->block_size = h->block_size;
	g->channels = h->channels;
	g->ways = h->ways;
	g->max_open = h->max_open;
	g->max_active = h->max_active;
	g->zone_bw = h->zone_bw;
	if (!o)
		return;
	if (o->channels)
		g->channels = o->channels;
	if (o->ways)
		g->ways = o->ways;
	if (o->zone_bw)
		g->zone_bw = o->zone_bw;
	if (o->no_bw_model)
		g->zone_bw = 0;
}

/* ---------------- locking ---------------- */

static void ofd_lock(int fd, short type)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };

	while (fcntl(fd, F_OFD_SETLKW, &fl) < 0 && errno == EINTR)
		;
}

/* Mark @zone written by this process (F_WRLCK) or no longer (F_UNLCK). */
static int writer_lock(int fd, uint32_t zone, short type)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET,
			    .l_start = EMU_WRITER_LOCK_BASE + zone, .l_len = 1 };

	return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

/* Whether another open of the file (another process) holds @zone's mark. */
static bool writer_lock_held(int fd, uint32_t zone)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
			    .l_start = EMU_WRITER_LOCK_BASE + zone, .l_len = 1 };

	if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
		return true;	/* cannot tell: a refused write beats a torn zone */
	return fl.l_type != F_UNLCK;
}

/* Threads of this process take the mutex, processes the file lock. */
static void emu_lock(struct emu *e)
{
	pthread_mutex_lock(&e->lock);
	ofd_lock(e->fd, F_WRLCK);
}

static void emu_unlock(struct emu *e)
{
	ofd_lock(e->fd, F_UNLCK);
	pthread_mutex_unlock(&e->lock);
}

/* ---------------- zone state machine (lock held) ---------------- */

static struct emu_zone_rec *zrec(struct emu *e, uint32_t zone)
{
	return &e->hdr->zones[zone];
}

/*
 * A write is in flight on the zone, here or in a live process. The mark a
 * killed writer left is dropped: its zone lock went with it. Its pid alone
 * cannot tell, as the pid may belong to another process by now.
 */
static bool zone_busy(struct emu *e, uint32_t zone)
{
	struct emu_zone_rec *r = zrec(e, zone);

	if (e->writing[zone])
		return true;
	if (!r->writer)
		return false;
	if (writer_lock_held(e->fd, zone))
		return true;
	r->writer = 0;
	return false;
}

static bool state_is_open(uint32_t s)
{
	return s == ZNS_ZONE_IOPEN || s == ZNS_ZONE_EOPEN;
}

static bool state_is_active(uint32_t s)
{
	return state_is_open(s) || s == ZNS_ZONE_CLOSED;
}

static void count_zones(struct emu *e, uint32_t *nopen, uint32_t *nactive)
{
	*nopen = *nactive = 0;
	for (uint32_t z = 0; z < e->hdr->nr_zones; z++) {
		*nopen += state_is_open(zrec(e, z)->state);
		*nactive += state_is_active(zrec(e, z)->state);
	}
}

/* A device may close an implicitly opened zone to make room for another. */
static bool implicit_close_one(struct emu *e)
{
	for (uint32_t z = 0; z < e->hdr->nr_zones; z++) {
		struct emu_zone_rec *r = zrec(e, z);

		if (r->state == ZNS_ZONE_IOPEN && !zone_busy(e, z)) {
			r->state = ZNS_ZONE_CLOSED;
			return true;
		}
	}
	return false;
}

static int need_active(struct emu *e, uint32_t zone)
{
	uint32_t nopen, nactive;

	if (state_is_active(zrec(e, zone)->state) || !e->hdr->max_active)
		return 0;
	count_zones(e, &nopen, &nactive);
	return nactive < e->hdr->max_active ? 0 : -EOVERFLOW;
}

static int need_open(struct emu *e, uint32_t zone)
{
	uint32_t nopen, nactive;

	if (state_is_open(zrec(e, zone)->state) || !e->hdr->max_open)
		return 0;
	count_zones(e, &nopen, &nactive);
	if (nopen < e->hdr->max_open)
		return 0;
	return implicit_close_one(e) ? 0 : -ETOOMANYREFS;
}

/* Take @zone to an open state (@explicit: EOPEN, else IOPEN). */
static int emu_make_open(struct emu *e, uint32_t zone, bool explicit)
{
	struct emu_zone_rec *r = zrec(e, zone);
	int rc;

	if (r->state == ZNS_ZONE_FULL)
		return -EIO;
	if (r->state == ZNS_ZONE_EOPEN)
		return 0;
	rc = need_active(e, zone) ?: need_open(e, zone);
	if (rc)
		return rc;
	if (explicit || r->state != ZNS_ZONE_IOPEN)
		r->state = explicit ? ZNS_ZONE_EOPEN : ZNS_ZONE_IOPEN;
	return 0;
}

/* ---------------- ops ---------------- */

static int emu_report(struct zns_dev *dev, uint32_t zone, struct zns_zone_info *info)
{
	struct emu *e = emu_of(dev);
	struct emu_zone_rec *r = zrec(e, zone);

	emu_lock(e);
	info->zone = zone;
	info->group = zns_zone_group(&dev->geo, zone);
	info->state = r->state;
	info->start = (uint64_t)zone * dev->geo.zone_size;
	info->wp = r->wp;
	info->cap = dev->geo.zone_cap;
	emu_unlock(e);
	return 0;
}

static int emu_open_zone(struct zns_dev *dev, uint32_t zone)
{
	struct emu *e = emu_of(dev);
	int rc;

	emu_lock(e);
	rc = emu_make_open(e, zone, true);
	emu_unlock(e);
	return rc;
}

static int emu_close_zone(struct zns_dev *dev, uint32_t zone)
{
	struct emu *e = emu_of(dev);
	struct emu_zone_rec *r = zrec(e, zone);
	int rc = 0;

	emu_lock(e);
	if (r->state == ZNS_ZONE_EMPTY || r->state == ZNS_ZONE_FULL)
		rc = -EIO;
	else if (state_is_open(r->state))
		r->state = ZNS_ZONE_CLOSED;	/* as NVMe: even with nothing written */
	emu_unlock(e);
	return rc;
}

static int emu_finish_zone(struct zns_dev *dev, uint32_t zone)
{
	struct emu *e = emu_of(dev);
	struct emu_zone_rec *r = zrec(e, zone);
	int rc;

	emu_lock(e);
	if (r->state == ZNS_ZONE_FULL)
		rc = 0;
	else
		rc = zone_busy(e, zone) ? -EBUSY : need_active(e, zone);
	if (!rc) {
		r->state = ZNS_ZONE_FULL;
		r->wp = dev->geo.zone_cap;
	}
	emu_unlock(e);
	return rc;
}

static int emu_reset_zone(struct zns_dev *dev, uint32_t zone)
{
	struct emu *e = emu_of(dev);
	struct emu_zone_rec *r = zrec(e, zone);
	off_t start = (off_t)(e->hdr->data_off + (uint64_t)zone * dev->geo.zone_size);
	int rc = 0;

	emu_lock(e);
	if (zone_busy(e, zone)) {
		rc = -EBUSY;
	} else {
		/* Old data must not read back after a reset, as on a device. */
		if (r->wp && fallocate(e->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				       start, (off_t)dev->geo.zone_size) < 0)
			rc = -errno;
		r->state = ZNS_ZONE_EMPTY;
		r->wp = 0;
	}
	emu_unlock(e);
	return rc;
}

static int emu_write_begin(struct emu *e, uint32_t zone, uint64_t off, size_t len,
			   uint64_t cap)
{
	struct emu_zone_rec *r = zrec(e, zone);

	if (zone_busy(e, zone) || r->state == ZNS_ZONE_FULL || off != r->wp ||
	    off + len > cap)
		return -EIO;
	return emu_make_open(e, zone, false);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * Bandwidth model: a group is one channel/way; writes to zones of the same
 * group queue behind each other, writes to other groups do not.
 */
static void emu_bw_throttle(struct zns_dev *dev, uint32_t zone, size_t len)
{
	struct emu *e = emu_of(dev);
	uint32_t g = zns_zone_group(&dev->geo, zone);
	uint64_t *clock = &e->group_free_ns[g];
	uint64_t dur, old, start, done;
	struct timespec ts;

	if (!dev->geo.zone_bw)
		return;
	dur = (uint64_t)((double)len * 1e9 / (double)dev->geo.zone_bw);
	old = __atomic_load_n(clock, __ATOMIC_ACQUIRE);
	do {
		uint64_t now = now_ns();

		start = old > now ? old : now;
		done = start + dur;
	} while (!__atomic_compare_exchange_n(clock, &old, done, false, __ATOMIC_ACQ_REL,
					      __ATOMIC_ACQUIRE));
	ts.tv_sec = (time_t)(done / 1000000000ull);
	ts.tv_nsec = (long)(done % 1000000000ull);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static ssize_t emu_write(struct zns_dev *dev, uint32_t zone, uint64_t off,
			 const void *buf, size_t len)
{
	struct emu *e = emu_of(dev);
	off_t pos = (off_t)(e->hdr->data_off + (uint64_t)zone * dev->geo.zone_size + off);
	size_t done = 0;
	int rc;

	emu_lock(e);
	rc = emu_write_begin(e, zone, off, len, dev->geo.zone_cap) ?:
	     writer_lock(e->fd, zone, F_WRLCK);
	if (!rc) {
		e->writing[zone] = true;
		zrec(e, zone)->writer = (uint32_t)getpid();
	}
	emu_unlock(e);
	if (rc)
		return rc;
	/*
	 * The backing file's inode lock lets one buffered write in at a time
	 * anyway; the zones' writer threads queue here, asleep, instead of
	 * spinning on that lock in the kernel and taking CPU from the threads
	 * that produce the data.
	 */
	pthread_mutex_lock(&e->io_lock);
	while (done < len) {
		ssize_t n = pwrite(e->fd, (const char *)buf + done, len - done,
				   pos + (off_t)done);
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			break;
		}
		done += (size_t)n;
	}
	pthread_mutex_unlock(&e->io_lock);
	emu_bw_throttle(dev, zone, len);
	emu_lock(e);
	/* Data first, then the write pointer: a crash never exposes unwritten blocks. */
	if (!rc) {
		zrec(e, zone)->wp += len;
		if (zrec(e, zone)->wp >= dev->geo.zone_cap)
			zrec(e, zone)->state = ZNS_ZONE_FULL;
	}
	zrec(e, zone)->writer = 0;
	e->writing[zone] = false;
	writer_lock(e->fd, zone, F_UNLCK);
	emu_unlock(e);
	return rc ? rc : (ssize_t)len;
}

static ssize_t emu_read(struct zns_dev *dev, uint32_t zone, uint64_t off,
			void *buf, size_t len)
{
	struct emu *e = emu_of(dev);
	off_t pos = (off_t)(e->hdr->data_off + (uint64_t)zone * dev->geo.zone_size + off);
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(e->fd, (char *)buf + done, len - done, pos + (off_t)done);

		if (n < 0)
			return -errno;
		if (n == 0) {
			memset((char *)buf + done, 0, len - done);
			break;
		}
		done += (size_t)n;
	}
	return (ssize_t)len;
}

static int emu_active_zones(struct zns_dev *dev)
{
	struct emu *e = emu_of(dev);
	uint32_t nopen, nactive;

	emu_lock(e);
	count_zones(e, &nopen, &nactive);
	emu_unlock(e);
	return (int)nactive;
}

static int emu_sync(struct zns_dev *dev)
{
	struct emu *e = emu_of(dev);

	if (msync(e->hdr, e->map_len, MS_SYNC) < 0 || fdatasync(e->fd) < 0)
		return -errno;
	return 0;
}

static void emu_close(struct zns_dev *dev)
{
	struct emu *e = emu_of(dev);

	munmap(e->hdr, e->map_len);
	close(e->fd);
	pthread_mutex_destroy(&e->lock);
	pthread_mutex_destroy(&e->io_lock);
	free(e->writing);
	free(e);
	free(dev);
}

static const struct zns_dev_ops emu_ops = {
	.report = emu_report,
	.open_zone = emu_open_zone,
	.close_zone = emu_close_zone,
	.finish_zone = emu_finish_zone,
	.reset_zone = emu_reset_zone,
	.write = emu_write,
	.read = emu_read,
	.active_zones = emu_active_zones,
	.sync = emu_sync,
	.close = emu_close,
};

/* Zone records must be sane before the state machine trusts them. */
static int emu_check_records(const struct emu_header *h, char *why, size_t whylen)
{
	for (uint32_t z = 0; z < h->nr_zones; z++) {
		const struct emu_zone_rec *r = &h->zones[z];

		if (r->state > ZNS_ZONE_OFFLINE) {
			zns_why(why, whylen, "zone record %u: state %u is not a zone state", z,
				r->state);
			return -EINVAL;
		}
		if (r->wp > h->zone_cap || r->wp % h->block_size) {
			zns_why(why, whylen, "zone record %u: write pointer %llu is %s", z,
				(unsigned long long)r->wp, r->wp > h->zone_cap ?
				"past the zone capacity" : "not block aligned");
			return -EINVAL;
		}
	}
	return 0;
}

/* Monotonic clocks restart at boot: a clock far in the future is from an earlier boot. */
static void emu_reset_stale_clocks(struct emu *e, uint32_t n)
{
	uint64_t limit = now_ns() + 3600ull * 1000000000ull;

	for (uint32_t g = 0; g < n; g++)
		if (__atomic_load_n(&e->group_free_ns[g], __ATOMIC_ACQUIRE) > limit)
			__atomic_store_n(&e->group_free_ns[g], 0, __ATOMIC_RELEASE);
}

static int emu_map(struct emu *e, const struct emu_header *h, char *why, size_t whylen)
{
	e->map_len = emu_header_len(h->nr_zones);
	e->hdr = mmap(NULL, e->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, e->fd, 0);
	if (e->hdr == MAP_FAILED) {
		e->hdr = NULL;
		return -errno;
	}
	if (emu_check_records(e->hdr, why, whylen)) {
		munmap(e->hdr, e->map_len);
		e->hdr = NULL;
		return -EINVAL;
	}
	e->group_free_ns = (uint64_t *)&e->hdr->zones[h->nr_zones];
	emu_reset_stale_clocks(e, h->nr_zones);
	return 0;
}

/* The geometry as the header gives it, before channels=/ways= change it. */
static int emu_check_header_geometry(const struct emu_header *h, char *why, size_t whylen)
{
	struct zns_geometry g;
	char r[160];

	emu_geometry_from(&g, h, NULL);
	if (!zns_geometry_check(&g, r, sizeof(r)))
		return 0;
	zns_why(why, whylen, "header geometry is invalid (zone_size %llu, zone_cap %llu, "
		"block_size %u, channels %u, ways %u, max_open %u, max_active %u): %s",
		(unsigned long long)g.zone_size, (unsigned long long)g.zone_cap, g.block_size,
		g.channels, g.ways, g.max_open, g.max_active, r);
	return -EINVAL;
}

int zns_emu_open(const char *path, const struct zns_open_opts *opts,
		 struct zns_dev **devp, char *why, size_t whylen)
{
	struct emu_header h;
	struct zns_dev *dev = calloc(1, sizeof(*dev));
	struct emu *e = calloc(1, sizeof(*e));
	int rc;

	if (!dev || !e) {
		rc = -ENOMEM;
		goto fail;
	}
	e->fd = open(path, O_RDWR | O_CLOEXEC);
	if (e->fd < 0) {
		rc = -errno;
		goto fail;
	}
	rc = emu_read_header(e->fd, &h, why, whylen) ?:
	     emu_check_header_geometry(&h, why, whylen);
	if (rc)
		goto fail_fd;
	emu_geometry_from(&dev->geo, &h, opts);
	rc = zns_geometry_check(&dev->geo, why, whylen);
	if (rc)
		goto fail_fd;
	e->writing = calloc(h.nr_zones, sizeof(*e->writing));
	rc = e->writing ? emu_map(e, &h, why, whylen) : -ENOMEM;
	if (rc)
		goto fail_fd;
	pthread_mutex_init(&e->lock, NULL);
	pthread_mutex_init(&e->io_lock, NULL);
	dev->ops = &emu_ops;
	dev->emulated = true;
	dev->priv = e;
	*devp = dev;
	return 0;
fail_fd:
	close(e->fd);
fail:
	if (e)
		free(e->writing);
	free(e);
	free(dev);
	return rc;
}
