/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Image import: verify, place by LASS, store layers concurrently, register.
 *
 * A layer is extracted into <tier>/layers/.tmp-<chain>-XXXXXX beside its
 * final place and renamed to <tier>/layers/<chain> only when complete, so a
 * layer directory that exists is always whole. An import that fails removes
 * the layers it stored and registers nothing; leftovers of an interrupted
 * import are removed by the next one. One import at a time per store (a
 * lock file in the NVM dir), since cleaning leftovers must not race.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "tier/image/import_private.h"
#include "tier/image/image.h"
#include "tier/meta/meta.h"

#define MiB (1024.0 * 1024.0)

struct import_run {
	const struct nl_import_opts *o;
	char nvm[PATH_MAX / 2], hdd[PATH_MAX / 2];	/* resolved, no symlinks */
	struct nl_image img;
	pthread_mutex_t lock;
	size_t next;		/* next layer for a worker */
	int (*step)(struct import_run *, struct nl_image_layer *, size_t);
	bool failed;		/* stop handing out layers */
	pthread_t reporter;
	bool reporting, stop_reporting;
};

static const char *tier_dir(const struct import_run *run, int tier)
{
	return tier == NL_LASS_NVM ? run->nvm : run->hdd;
}

static int mkdir_parents(const char *dir)
{
	char path[PATH_MAX];

	if (snprintf(path, sizeof(path), "%s/", dir) >= (int)sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (char *p = path + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return 0;
}

/* Store dirs end up inside lowerdir= strings: ':' and ',' would split them. */
static int resolve_store_dir(const char *dir, char *out, size_t len, char *err, size_t errlen)
{
	char layers[PATH_MAX];

	if (!dir)
		return nl_errf(err, errlen, -EINVAL, "both --nvm and --hdd are needed");
	if (mkdir_parents(dir) != 0)
		return nl_errf(err, errlen, -errno, "%s: %s", dir, strerror(errno));
	if (!realpath(dir, layers) || strlen(layers) >= len)
		return nl_errf(err, errlen, -errno, "%s: %s", dir, strerror(errno));
	if (strpbrk(layers, ":, \t\n"))
		return nl_errf(err, errlen, -EINVAL, "%s: store paths may not contain ':', ',' or "
			     "white space (they end up in lowerdir=)", layers);
	snprintf(out, len, "%s", layers);
	snprintf(layers, sizeof(layers), "%s/layers", out);
	if (mkdir(layers, 0755) != 0 && errno != EEXIST)
		return nl_errf(err, errlen, -errno, "%s: %s", layers, strerror(errno));
	return 0;
}

static void clean_leftovers(const char *store)
{
	char path[PATH_MAX];
	DIR *d;
	struct dirent *e;

	snprintf(path, sizeof(path), "%s/layers", store);
	d = opendir(path);
	while (d && (e = readdir(d))) {
		if (strncmp(e->d_name, ".tmp-", 5) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/layers/%s", store, e->d_name);
		nl_rm_tree(path);
	}
	if (d)
		closedir(d);
	snprintf(path, sizeof(path), "%s", store);
	d = opendir(path);
	while (d && (e = readdir(d))) {
		if (strncmp(e->d_name, ".import-src-", 12) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", store, e->d_name);
		nl_rm_tree(path);
	}
	if (d)
		closedir(d);
}

static int lock_store(const char *nvm, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/.import.lock", nvm);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return nl_errf(err, errlen, -errno, "%s: %s", path, strerror(errno));
	if (flock(fd, LOCK_EX) != 0) {
		int r = -errno;

		close(fd);
		return nl_errf(err, errlen, r, "%s: %s", path, strerror(-r));
	}
	return fd;
}

static bool layer_dir_exists(const char *store, const char *chain, char *path, size_t len)
{
	struct stat st;

	snprintf(path, len, "%s/layers/%s", store, chain + 7);
	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int nl_layer_root_fix(const char *layer_dir)
{
	struct stat st;

	if (lstat(layer_dir, &st) != 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) || (st.st_mode & 07777) != 0700)
		return 0;
	return chmod(layer_dir, 0755) == 0 ? 1 : -errno;
}

static void find_present(struct import_run *run)
{
	for (size_t i = 0; i < run->img.n; i++) {
		struct nl_image_layer *l = &run->img.layers[i];

		l->reason = -1;
		if (layer_dir_exists(run->nvm, l->chain_id, l->path, sizeof(l->path)))
			l->tier = NL_LASS_NVM;
		else if (layer_dir_exists(run->hdd, l->chain_id, l->path, sizeof(l->path)))
			l->tier = NL_LASS_HDD;
		else
			continue;
		l->present = true;
		if (nl_layer_root_fix(l->path) > 0 && !run->o->quiet)
			printf("layer %zu: root mode 0700 of an earlier import set to 0755\n", i + 1);
	}
}

/* ---- placement ---- */

static void report_plan(const struct import_run *run, const struct nl_lass_plan *p)
{
	static const char *const names[3] = { "below", "at", "above" };

	if (run->o->quiet)
		return;
	if (p->boundary < run->img.n)
		printf("LASS: last-downloading layer %zu of %zu, boundary layer %zu\n",
		       p->ldl + 1, run->img.n, p->boundary + 1);
	else
		printf("LASS: last-downloading layer %zu of %zu, no boundary: NVM would not "
		       "store faster\n", p->ldl + 1, run->img.n);
	for (int s = 0; s < 3; s++)
		if (p->t_strategy[s] == p->t_strategy[s])	/* not NaN */
			printf("LASS: boundary %s the LDL: storing ends at %.3g s, NVM %.1f MiB\n",
			       names[s], p->t_strategy[s], (double)p->u_strategy[s] / MiB);
}

/* The budget covers the whole NVM store, not one image. */
static uint64_t remaining_budget(const struct import_run *run)
{
	uint64_t used;

	if (run->o->nvm_budget == UINT64_MAX)
		return UINT64_MAX;
	used = nl_registry_nvm_use(run->nvm);
	return used >= run->o->nvm_budget ? 0 : run->o->nvm_budget - used;
}

static int place_lass(struct import_run *run, char *err, size_t errlen)
{
	size_t n = run->img.n;
	uint64_t *size = calloc(n, sizeof(*size)), *blob = calloc(n, sizeof(*blob));
	double *done = calloc(n, sizeof(*done));
	enum nl_lass_history *hist = calloc(n, sizeof(*hist));
	enum nl_lass_tier *tier = calloc(n, sizeof(*tier));
	enum nl_lass_reason *reason = calloc(n, sizeof(*reason));
	struct nl_lass_plan p = { .tier = tier, .reason = reason };
	struct nl_lass_input in = {
		.n = n, .size = size, .done = done, .history = hist,
		.hdd_bps = run->o->hdd_bps, .nvm_bps = run->o->nvm_bps,
		.nvm_budget = run->o->nvm_budget,
	};
	int r = -ENOMEM;

	if (!size || !blob || !done || !hist || !tier || !reason)
		goto out;
	in.nvm_budget = remaining_budget(run);
	for (size_t i = 0; i < n; i++) {
		const struct nl_image_layer *l = &run->img.layers[i];

		/* Downloads move the blob, storing writes the unpacked tar. A
		 * present layer costs nothing more to store. */
		blob[i] = l->size ? l->size : l->tar_size;
		size[i] = l->present ? 0 : l->tar_size;
		hist[i] = nl_lass_classify_history(l->created_by);
	}
	if (run->o->download_done) {
		if (run->o->n_download_done != n) {
			r = nl_errf(err, errlen, -EINVAL, "%zu download times given for %zu layers",
				  run->o->n_download_done, n);
			goto out;
		}
		memcpy(done, run->o->download_done, n * sizeof(*done));
		r = 0;
	} else {
		r = nl_lass_model_downloads(blob, n, run->o->bandwidth_bps, 3, done);
	}
	if (!r)
		r = nl_lass_plan(&in, &p);
	if (r) {
		nl_errf(err, errlen, r, "LASS placement failed: %s", strerror(-r));
		goto out;
	}
	report_plan(run, &p);
	for (size_t i = 0; i < n; i++) {
		struct nl_image_layer *l = &run->img.layers[i];

		if (l->present)
			continue;
		l->tier = tier[i];
		l->reason = reason[i];
		if (reason[i] == NL_LASS_BUDGET && !run->o->quiet)
			printf("layer %zu: does not fit the NVM budget, stored on HDD instead\n", i + 1);
	}
out:
	free(size);
	free(blob);
	free(done);
	free(hist);
	free(tier);
	free(reason);
	return r;
}

/* Every new layer on one tier; NVM still within the budget. */
static void place_fixed(struct import_run *run)
{
	uint64_t left = remaining_budget(run);

	for (size_t i = 0; i < run->img.n; i++) {
		struct nl_image_layer *l = &run->img.layers[i];

		if (l->present)
			continue;
		l->tier = NL_LASS_HDD;
		if (run->o->placement != NL_PLACE_NVM)
			continue;
		if (l->tar_size > left) {
			l->reason = NL_LASS_BUDGET;
			if (!run->o->quiet)
				printf("layer %zu: does not fit the NVM budget, stored on HDD "
				       "instead\n", i + 1);
			continue;
		}
		l->tier = NL_LASS_NVM;
		left -= l->tar_size;
	}
}

static int place_layers(struct import_run *run, char *err, size_t errlen)
{
	if (run->o->placement == NL_PLACE_LASS)
		return place_lass(run, err, errlen);
	place_fixed(run);
	return 0;
}

/* ---- progress ---- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void phase_start(struct nl_image_layer *l, int phase)
{
	__atomic_store_n(&l->done, 0, __ATOMIC_RELAXED);
	l->started = now_s();
	__atomic_store_n(&l->phase, phase, __ATOMIC_RELEASE);
}

static double rate_mib(uint64_t bytes, double seconds)
{
	return seconds > 0.001 ? (double)bytes / MiB / seconds : 0.0;
}

/* Not a terminal (a log, CI): one line per layer once it is stored. */
static void report_layer_line(const struct import_run *run, const struct nl_image_layer *l,
			      size_t idx)
{
	double unpack_s = now_s() - l->started;
	uint64_t blob = l->size ? l->size : l->done;

	if (run->o->progress != NL_PROGRESS_LINES)
		return;
	fprintf(stderr, "layer %zu/%zu: %.1f MiB verified in %.1f s (%.1f MiB/s), unpacked in "
		"%.1f s (%.1f MiB/s)\n", idx + 1, run->img.n, (double)blob / MiB, l->verify_s,
		rate_mib(blob, l->verify_s), unpack_s, rate_mib(blob, unpack_s));
}

static int terminal_width(void)
{
	struct winsize ws;

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
		return ws.ws_col < 512 ? ws.ws_col : 511;
	return 80;
}

/* "2/5 unpack 34.1/110.0 MiB 52.3 MiB/s" for each layer being worked on. */
static size_t status_line(const struct import_run *run, char *line, size_t len)
{
	static const char *const names[] = { "", "verify", "unpack", "" };
	size_t n = 0;

	line[0] = '\0';
	for (size_t i = 0; i < run->img.n && n < len; i++) {
		const struct nl_image_layer *l = &run->img.layers[i];
		int phase = __atomic_load_n(&l->phase, __ATOMIC_ACQUIRE);
		uint64_t done = __atomic_load_n(&l->done, __ATOMIC_RELAXED);

		if (phase != NL_PHASE_VERIFY && phase != NL_PHASE_UNPACK)
			continue;
		int w = snprintf(line + n, len - n, "%slayer %zu/%zu %s %.1f/%.1f MiB %.1f MiB/s",
				 n ? " | " : "", i + 1, run->img.n, names[phase],
				 (double)done / MiB, (double)l->size / MiB,
				 rate_mib(done, now_s() - l->started));

		n += w > 0 ? (size_t)w : 0;
	}
	return n < len ? n : len - 1;
}

/* A terminal: one status line on stderr, rewritten in place. */
static void *reporter(void *arg)
{
	struct import_run *run = arg;
	char line[512];

	while (!__atomic_load_n(&run->stop_reporting, __ATOMIC_ACQUIRE)) {
		size_t width = (size_t)terminal_width();

		status_line(run, line, sizeof(line));
		if (strlen(line) >= width)
			line[width - 1] = '\0';
		fprintf(stderr, "\r\033[K%s", line);
		fflush(stderr);
		usleep(200 * 1000);
	}
	fprintf(stderr, "\r\033[K");
	fflush(stderr);
	return NULL;
}

static void start_reporter(struct import_run *run)
{
	if (run->o->progress != NL_PROGRESS_TTY)
		return;
	run->stop_reporting = false;
	run->reporting = pthread_create(&run->reporter, NULL, reporter, run) == 0;
}

static void stop_reporter(struct import_run *run)
{
	if (!run->reporting)
		return;
	__atomic_store_n(&run->stop_reporting, true, __ATOMIC_RELEASE);
	pthread_join(run->reporter, NULL);
	run->reporting = false;
}

/* ---- storing one layer ---- */

static int verify_layer(struct import_run *run, struct nl_image_layer *l, size_t idx)
{
	char blob_digest[72], diff_id[72], herr[256];
	uint64_t size;
	int r;

	(void)run;
	phase_start(l, NL_PHASE_VERIFY);
	r = nl_hash_layer(l->blob, blob_digest, diff_id, &size, &l->tar_size, &l->done, herr,
			  sizeof(herr));
	l->verify_s = now_s() - l->started;
	__atomic_store_n(&l->phase, NL_PHASE_WAIT, __ATOMIC_RELEASE);
	if (l->digest[0] && blob_digest[0] && strcmp(l->digest, blob_digest) != 0)
		return nl_errf(l->err, sizeof(l->err), -EINVAL, "layer %zu: blob digest mismatch: "
			     "manifest says %s, blob is %s", idx + 1, l->digest, blob_digest);
	if (r)
		return nl_errf(l->err, sizeof(l->err), r, "layer %zu: %s", idx + 1, herr);
	if (l->size && size != l->size)
		return nl_errf(l->err, sizeof(l->err), -EINVAL, "layer %zu: blob has %llu bytes, "
			     "manifest says %llu", idx + 1, (unsigned long long)size,
			     (unsigned long long)l->size);
	if (strcmp(l->diff_id, diff_id) != 0)
		return nl_errf(l->err, sizeof(l->err), -EINVAL, "layer %zu: diffID mismatch: config "
			     "says %s, uncompressed layer is %s", idx + 1, l->diff_id, diff_id);
	return 0;
}

static int sync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (syncfs(fd) != 0)
		r = -errno;
	close(fd);
	return r;
}

static int store_layer(struct import_run *run, struct nl_image_layer *l, size_t idx)
{
	const char *store = tier_dir(run, l->tier);
	size_t skipped = 0, dropped = 0;
	struct nl_extract_opts eo = { .mknod_whiteouts = geteuid() == 0,
				      .skipped_devices = &skipped, .dropped_xattrs = &dropped,
				      .progress = &l->done };
	char tmp[PATH_MAX], xerr[400];
	int r;

	snprintf(l->path, sizeof(l->path), "%s/layers/%s", store, l->chain_id + 7);
	snprintf(tmp, sizeof(tmp), "%s/layers/.tmp-%.12s-XXXXXX", store, l->chain_id + 7);
	if (!mkdtemp(tmp))
		return nl_errf(l->err, sizeof(l->err), -errno, "layer %zu: %s: %s", idx + 1, tmp,
			     errno == ENOSPC ? "no space left on the file system" : strerror(errno));
	phase_start(l, NL_PHASE_UNPACK);
	r = nl_extract_layer(l->blob, tmp, &eo, xerr, sizeof(xerr));
	if (r)
		nl_errf(l->err, sizeof(l->err), r, "layer %zu: %s", idx + 1, xerr);
	if (skipped && !run->o->quiet)
		fprintf(stderr, "nlayerfs-import: layer %zu: %zu device nodes not created "
			"(not permitted)\n", idx + 1, skipped);
	if (dropped && !run->o->quiet)
		fprintf(stderr, "nlayerfs-import: layer %zu: %zu overlay xattrs of the image dropped "
			"(only opaque is kept)\n", idx + 1, dropped);
	if (!r && (r = sync_dir(tmp)))
		nl_errf(l->err, sizeof(l->err), r, "layer %zu: sync of %s: %s", idx + 1, store,
			r == -ENOSPC ? "no space left on the file system" : strerror(-r));
	if (!r && rename(tmp, l->path) != 0)
		r = nl_errf(l->err, sizeof(l->err), -errno, "layer %zu: rename into %s: %s", idx + 1,
			  l->path, strerror(errno));
	__atomic_store_n(&l->phase, NL_PHASE_DONE, __ATOMIC_RELEASE);
	if (r) {
		nl_rm_tree(tmp);
		return r;
	}
	l->created = true;
	report_layer_line(run, l, idx);
	return 0;
}

/* The metadata images of the new HDD layers, on NVM, so that even their
 * first mount walks no HDD directories (the mount builds them otherwise).
 * Only after the import succeeded: a failed one leaves nothing behind. */
static void build_meta_images(struct import_run *run)
{
	for (size_t i = 0; i < run->img.n; i++) {
		struct nl_image_layer *l = &run->img.layers[i];
		int m;

		if (!l->created || l->tier != NL_LASS_HDD)
			continue;
		m = tier_meta_build_file(run->nvm, l->path, l->chain_id + 7);
		if (m && !run->o->quiet)
			fprintf(stderr, "nlayerfs-import: layer %zu: no metadata image: %s\n",
				i + 1, strerror(-m));
	}
}

static void *layer_worker(void *arg)
{
	struct import_run *run = arg;
	int (*step)(struct import_run *, struct nl_image_layer *, size_t) = run->step;

	for (;;) {
		size_t i;

		pthread_mutex_lock(&run->lock);
		i = run->failed ? run->img.n : run->next++;
		pthread_mutex_unlock(&run->lock);
		if (i >= run->img.n)
			return NULL;
		struct nl_image_layer *l = &run->img.layers[i];

		if (l->present)
			continue;
		l->result = step(run, l, i);
		if (l->result) {
			pthread_mutex_lock(&run->lock);
			run->failed = true;
			pthread_mutex_unlock(&run->lock);
		}
	}
}

/* Run @step on every layer not present yet, on concurrent workers. */
static int for_each_layer(struct import_run *run,
			  int (*step)(struct import_run *, struct nl_image_layer *, size_t),
			  char *err, size_t errlen)
{
	unsigned n = run->o->workers ? run->o->workers : 3;
	pthread_t th[16];
	unsigned started = 0;
	int r = 0;

	if (n > 16)
		n = 16;
	run->step = step;
	run->next = 0;
	pthread_mutex_init(&run->lock, NULL);
	while (started < n && pthread_create(&th[started], NULL, layer_worker, run) == 0)
		started++;
	if (started == 0)
		layer_worker(run);
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&run->lock);
	/* the lowest failing layer is the one to report */
	for (size_t i = 0; !r && i < run->img.n; i++)
		if (run->img.layers[i].result)
			r = nl_errf(err, errlen, run->img.layers[i].result, "%s",
				  run->img.layers[i].err);
	return r;
}

static void undo_created(struct import_run *run)
{
	for (size_t i = 0; i < run->img.n; i++)
		if (run->img.layers[i].created)
			nl_rm_tree(run->img.layers[i].path);
}

static void report_layers(const struct import_run *run)
{
	if (run->o->quiet)
		return;
	for (size_t i = 0; i < run->img.n; i++) {
		const struct nl_image_layer *l = &run->img.layers[i];

		printf("layer %zu/%zu %.19s %8.1f MiB %s %s%s%s\n", i + 1, run->img.n,
		       l->chain_id, (double)l->size / MiB,
		       l->tier == NL_LASS_NVM ? "NVM" : "HDD",
		       l->present ? "already present" : "stored",
		       l->reason >= 0 ? ": " : "",
		       l->reason >= 0 ? nl_lass_reason_name(l->reason) : "");
	}
	printf("imported %s (%s)\n", run->img.name, run->img.digest);
}

static int import_locked(struct import_run *run, char *err, size_t errlen)
{
	const struct nl_import_opts *o = run->o;
	int r = nl_image_open(&run->img, o->source, run->hdd, err, errlen);

	if (r)
		return r;
	if (o->name)
		snprintf(run->img.name, sizeof(run->img.name), "%s", o->name);
	if (!run->img.name[0])
		return nl_errf(err, errlen, -EINVAL, "the image has no name or tag: give --name");
	if (!nl_image_name_valid(run->img.name))
		return nl_errf(err, errlen, -EINVAL, "invalid image name '%s'", run->img.name);
	find_present(run);
	start_reporter(run);
	/* Everything is verified before anything is stored: a bad layer is
	 * found before the good ones below it become visible. */
	r = for_each_layer(run, verify_layer, err, errlen);
	if (!r) {
		stop_reporter(run);	/* LASS prints its plan */
		r = place_layers(run, err, errlen);
		start_reporter(run);
	}
	if (!r)
		r = for_each_layer(run, store_layer, err, errlen);
	stop_reporter(run);
	if (!r)
		r = nl_registry_put(run->nvm, &run->img, err, errlen);
	if (r) {
		undo_created(run);
	} else {
		build_meta_images(run);
		report_layers(run);
	}
	return r;
}

int nl_import_image(const struct nl_import_opts *o, char *err, size_t errlen)
{
	struct import_run *run = calloc(1, sizeof(*run));
	int r, lock_fd;

	if (!run)
		return nl_errf(err, errlen, -ENOMEM, "out of memory");
	run->o = o;
	r = resolve_store_dir(o->nvm_dir, run->nvm, sizeof(run->nvm), err, errlen);
	if (!r)
		r = resolve_store_dir(o->hdd_dir, run->hdd, sizeof(run->hdd), err, errlen);
	if (!r && !(o->hdd_bps > 0 && o->nvm_bps > 0 && o->bandwidth_bps > 0))
		r = nl_errf(err, errlen, -EINVAL, "speeds and bandwidth must be positive");
	if (r) {
		free(run);
		return r;
	}
	lock_fd = lock_store(run->nvm, err, errlen);
	if (lock_fd < 0) {
		free(run);
		return lock_fd;
	}
	clean_leftovers(run->nvm);
	clean_leftovers(run->hdd);
	r = import_locked(run, err, errlen);
	nl_image_close(&run->img);
	close(lock_fd);
	free(run);
	return r;
}
