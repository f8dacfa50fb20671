// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * One run of the zoned checkpoint benchmark, on a fresh emulated device
 * (test/bench/zns-bench drives it and writes the report).
 *
 *   zns-bench-run -d FILE -s STRATEGY [-t TENANTS] [-m MIB] [-n NORMAL_MIB]
 *                 [-Z ZONES] [-z ZONE_MIB] [-c CHANNELS] [-w WAYS] [-b ZONE_BW_MIB]
 *                 [-k K]
 *   zns-bench-run -s files -D DIR[,DIR...] [-m MIB]
 *
 * Strategies (each tenant is one thread appending 1 MiB buffers to a stream):
 *   striped  every tenant has its own stream asking K x zone_bw (k = K zones)
 *   single   every tenant has its own stream asking zone_bw (one zone)
 *   shared   all tenants append to one stream over K zones (the same zones
 *            and groups for everybody)
 *   direct   no tenants: one thread writes MIB with zns_zone_write in 1 MiB
 *            writes, zone after zone, then the same through a K-zone stream;
 *            meant with -b 0 (bandwidth model off)
 *   files    no device: one thread per DIR writes DIR/pages-1.img as criu
 *            does (open, 1 MiB write() calls, close), all at once; the
 *            time of each runs from a common start to the end of its
 *            close(), which on a checkpoint mount commits the file
 *
 * With -n, a "normal I/O" writer (its own one-zone stream, created before the
 * tenants; in the shared strategy it appends to the shared stream) writes
 * NORMAL_MIB while the tenants run; the tenants then keep writing until it is
 * done (at most MIB each). -t 0 -n X measures the normal writer alone.
 *
 * Prints one JSON object: per-tenant MiB/s, the normal writer's MiB/s.
 * Every writer's time runs from a common start to the end of its flush.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "zns/zns.h"

#define MiB (1024ull * 1024ull)
#define MAXT 64

struct writer {
	pthread_t th;
	struct zns_stream *st;
	uint64_t target;	/* bytes */
	int normal;
	uint64_t bytes;
	double secs;
	int rc;
};

static pthread_barrier_t start_bar;
static double t_start;
static volatile int normal_done;
static int continuous;
static unsigned char *payload;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	int rc = 0;

	pthread_barrier_wait(&start_bar);
	while (w->bytes < w->target) {
		if (!w->normal && continuous && __atomic_load_n(&normal_done, __ATOMIC_ACQUIRE))
			break;
		rc = zns_stream_append(w->st, payload, MiB, NULL);
		if (rc)
			break;
		w->bytes += MiB;
	}
	if (!rc)
		rc = zns_stream_flush(w->st);
	w->secs = now() - t_start;
	if (w->normal)
		__atomic_store_n(&normal_done, 1, __ATOMIC_RELEASE);
	w->rc = rc;
	return NULL;
}

struct file_writer {
	pthread_t th;
	char path[4096];
	uint64_t target;
	uint64_t bytes;
	double secs;
	int err;
};

static void *file_writer_main(void *arg)
{
	struct file_writer *w = arg;
	int fd;

	pthread_barrier_wait(&start_bar);
	fd = open(w->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		w->err = errno;
		return NULL;
	}
	while (w->bytes < w->target) {
		ssize_t n = write(fd, payload, MiB);

		if (n != (ssize_t)MiB) {
			w->err = n < 0 ? errno : EIO;
			break;
		}
		w->bytes += MiB;
	}
	if (close(fd) && !w->err)
		w->err = errno;
	w->secs = now() - t_start;
	return NULL;
}

static double mibps(uint64_t bytes, double secs);

/* Criu-like image writes into each of @dirs (comma separated), in parallel. */
static int run_files(char *dirs, uint64_t total)
{
	struct file_writer w[MAXT];
	unsigned n = 0;
	double last = 0;
	int fails = 0;

	memset(w, 0, sizeof(w));
	for (char *save = NULL, *d = strtok_r(dirs, ",", &save); d && n < MAXT;
	     d = strtok_r(NULL, ",", &save), n++) {
		snprintf(w[n].path, sizeof(w[n].path), "%s/pages-1.img", d);
		w[n].target = total;
	}
	pthread_barrier_init(&start_bar, NULL, n + 1);
	for (unsigned i = 0; i < n; i++)
		if (pthread_create(&w[i].th, NULL, file_writer_main, &w[i]))
			return 1;
	t_start = now();
	pthread_barrier_wait(&start_bar);
	for (unsigned i = 0; i < n; i++) {
		pthread_join(w[i].th, NULL);
		if (w[i].secs > last)
			last = w[i].secs;
	}
	printf("{\"strategy\":\"files\",\"tenant\":[");
	for (unsigned i = 0; i < n; i++) {
		printf("%s{\"mib\":%.0f,\"mibps\":%.1f,\"secs\":%.3f,\"rc\":%d}", i ? "," : "",
		       (double)w[i].bytes / MiB, mibps(w[i].bytes, w[i].secs), w[i].secs, w[i].err);
		if (w[i].err) {
			fprintf(stderr, "zns-bench-run: %s: %s\n", w[i].path, strerror(w[i].err));
			fails++;
		}
	}
	printf("],\"aggregate_mibps\":%.1f}\n", mibps(total * n, last));
	return fails ? 1 : 0;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "zns-bench-run: %s: %s\n", what, strerror(rc < 0 ? -rc : rc));
	exit(1);
}

static double mibps(uint64_t bytes, double secs)
{
	return secs > 0 ? (double)bytes / (double)MiB / secs : 0;
}

/* Raw device writes, no store: zone after zone in 1 MiB writes. */
static void run_direct(struct zns_dev *dev, uint64_t total, uint32_t k)
{
	const struct zns_geometry *g = zns_dev_geometry(dev);
	struct zns_store *s;
	struct zns_stream *st;
	uint64_t done = 0, off = 0;
	uint32_t zone = 0;
	double t0, t1, t2, t3, t4, t5;
	int rc;

	t0 = now();
	while (done < total) {
		if (off + MiB > g->zone_cap) {
			zone++;
			off = 0;
			if (zone >= g->nr_zones)
				die("direct: device too small", ENOSPC);
		}
		ssize_t n = zns_zone_write(dev, zone, off, payload, MiB);
		if (n < 0)
			die("zns_zone_write", (int)n);
		off += MiB;
		done += MiB;
	}
	t1 = now();
	rc = zns_dev_sync(dev);
	if (rc)
		die("zns_dev_sync", rc);
	t2 = now();
	for (uint32_t z = 0; z <= zone; z++)
		zns_zone_reset(dev, z);

	rc = zns_store_new(dev, NULL, &s);
	if (rc)
		die("zns_store_new", rc);
	rc = zns_stream_create(s, 0, (uint64_t)k * 100 * MiB, &st);
	if (rc)
		die("zns_stream_create", rc);
	t3 = now();
	for (done = 0; done < total; done += MiB) {
		rc = zns_stream_append(st, payload, MiB, NULL);
		if (rc)
			die("zns_stream_append", rc);
	}
	t4 = now();
	rc = zns_stream_flush(st);
	if (rc)
		die("zns_stream_flush", rc);
	t5 = now();
	printf("{\"strategy\":\"direct\",\"mib\":%llu,\"zone_write_mibps\":%.1f,"
	       "\"zone_write_sync_mibps\":%.1f,\"stream_k\":%u,\"stream_mibps\":%.1f,"
	       "\"stream_flush_mibps\":%.1f}\n",
	       (unsigned long long)(total / MiB), mibps(total, t1 - t0), mibps(total, t2 - t0),
	       zns_stream_k(st), mibps(total, t4 - t3), mibps(total, t5 - t3));
	zns_stream_destroy(st);
	zns_store_free(s);
}

/* The most tenants on any group of @tenant. */
static uint32_t normal_share(struct zns_store *s, uint32_t tenant)
{
	uint32_t grp[64], max = 0;
	int n = zns_alloc_groups(zns_store_alloc(s), tenant, grp, 64);

	for (int j = 0; j < n; j++)
		if (zns_alloc_share(zns_store_alloc(s), grp[j]) > max)
			max = zns_alloc_share(zns_store_alloc(s), grp[j]);
	return max;
}

int main(int argc, char **argv)
{
	struct zns_geometry g = {
		.nr_zones = 18 * 24, .zone_size = 64 * MiB, .zone_cap = 64 * MiB,
		.block_size = 4096, .channels = 6, .ways = 3, .zone_bw = 100 * MiB,
	};
	const char *path = NULL, *strategy = "striped";
	char *dirs = NULL;
	unsigned tenants = 1, k = 5;
	uint64_t mib = 256, normal_mib = 0;
	struct writer w[MAXT + 1];
	struct zns_stream *shared = NULL;
	struct zns_store *s;
	struct zns_dev *dev;
	unsigned nw = 0;
	uint64_t bw;
	int opt, rc;

	while ((opt = getopt(argc, argv, "d:D:s:t:m:n:Z:z:c:w:b:k:")) != -1) {
		switch (opt) {
		case 'd': path = optarg; break;
		case 'D': dirs = optarg; break;
		case 's': strategy = optarg; break;
		case 't': tenants = (unsigned)atoi(optarg); break;
		case 'm': mib = strtoull(optarg, NULL, 0); break;
		case 'n': normal_mib = strtoull(optarg, NULL, 0); break;
		case 'Z': g.nr_zones = (uint32_t)atoi(optarg); break;
		case 'z': g.zone_size = g.zone_cap = strtoull(optarg, NULL, 0) * MiB; break;
		case 'c': g.channels = (uint32_t)atoi(optarg); break;
		case 'w': g.ways = (uint32_t)atoi(optarg); break;
		case 'b': g.zone_bw = strtoull(optarg, NULL, 0) * MiB; break;
		case 'k': k = (unsigned)atoi(optarg); break;
		default:
			fprintf(stderr, "usage: see the comment at the top of zns-bench.c\n");
			return 2;
		}
	}
	if (posix_memalign((void **)&payload, 4096, MiB))
		die("posix_memalign", ENOMEM);
	for (size_t i = 0; i < MiB; i++)
		payload[i] = (unsigned char)(i * 131 + 7);
	if (!strcmp(strategy, "files")) {
		if (!dirs) {
			fprintf(stderr, "zns-bench-run: -s files needs -D DIR[,DIR...]\n");
			return 2;
		}
		return run_files(dirs, mib * MiB);
	}
	if (!path || tenants > MAXT || !k) {
		fprintf(stderr, "zns-bench-run: -d FILE is needed, at most %d tenants, k >= 1\n", MAXT);
		return 2;
	}

	rc = zns_emu_create(path, &g);
	if (rc)
		die("zns_emu_create", rc);
	rc = zns_open(path, NULL, &dev);
	if (rc)
		die("zns_open", rc);

	bw = g.zone_bw ? g.zone_bw : 100 * MiB;
	if (!strcmp(strategy, "direct")) {
		run_direct(dev, mib * MiB, k);
		zns_close(dev);
		return 0;
	}
	struct zns_store_opts so = { .zone_bw = bw };
	rc = zns_store_new(dev, &so, &s);
	if (rc)
		die("zns_store_new", rc);

	/* The normal writer exists first, as a running container's own I/O would. */
	if (!strcmp(strategy, "shared")) {
		rc = zns_stream_create(s, 1000, (uint64_t)k * bw, &shared);
		if (rc)
			die("zns_stream_create shared", rc);
	} else if (strcmp(strategy, "striped") && strcmp(strategy, "single")) {
		fprintf(stderr, "zns-bench-run: unknown strategy %s\n", strategy);
		return 2;
	}
	memset(w, 0, sizeof(w));
	if (normal_mib) {
		w[nw].normal = 1;
		w[nw].target = normal_mib * MiB;
		if (shared)
			w[nw].st = shared;
		else if ((rc = zns_stream_create(s, 999, bw, &w[nw].st)))
			die("zns_stream_create normal", rc);
		nw++;
		continuous = 1;
	}
	for (unsigned i = 0; i < tenants; i++, nw++) {
		w[nw].target = mib * MiB;
		if (shared) {
			w[nw].st = shared;
			continue;
		}
		rc = zns_stream_create(s, i, (!strcmp(strategy, "striped") ? k : 1) * bw,
				       &w[nw].st);
		if (rc)
			die("zns_stream_create", rc);
	}

	pthread_barrier_init(&start_bar, NULL, nw + 1);
	for (unsigned i = 0; i < nw; i++)
		if ((rc = pthread_create(&w[i].th, NULL, writer_main, &w[i])))
			die("pthread_create", rc);
	t_start = now();
	pthread_barrier_wait(&start_bar);
	for (unsigned i = 0; i < nw; i++)
		pthread_join(w[i].th, NULL);

	/* Which groups each tenant got, and how many tenants share them. */
	printf("{\"strategy\":\"%s\",\"tenants\":%u,\"k\":%u,\"normal\":", strategy, tenants, k);
	if (normal_mib)
		printf("{\"mib\":%.0f,\"mibps\":%.1f,\"secs\":%.3f,\"rc\":%d,\"share\":%u}",
		       (double)w[0].bytes / MiB, mibps(w[0].bytes, w[0].secs), w[0].secs, w[0].rc,
		       normal_share(s, shared ? 1000 : 999));
	else
		printf("null");
	printf(",\"tenant\":[");
	for (unsigned i = normal_mib ? 1 : 0, n = 0; i < nw; i++, n++) {
		uint32_t id = shared ? 1000 : n;
		int ng = zns_alloc_groups(zns_store_alloc(s), id, NULL, 0);
		uint32_t maxshare = normal_share(s, id);
		printf("%s{\"mib\":%.0f,\"mibps\":%.1f,\"secs\":%.3f,\"rc\":%d,\"k\":%d,"
		       "\"max_share\":%u}", n ? "," : "", (double)w[i].bytes / MiB,
		       mibps(w[i].bytes, w[i].secs), w[i].secs, w[i].rc, ng, maxshare);
	}
	printf("]}\n");

	for (unsigned i = 0; i < nw; i++)
		if (w[i].st != shared)
			zns_stream_destroy(w[i].st);
	if (shared)
		zns_stream_destroy(shared);
	zns_store_free(s);
	zns_close(dev);
	for (unsigned i = 0; i < nw; i++)
		if (w[i].rc)
			return 1;
	return 0;
}
