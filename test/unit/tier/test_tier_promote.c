/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of promotion on real temp dirs: copies, dedup, stale sources,
 * the NVM budget and eviction order, hot lists, write-back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <cmocka.h>
#include "test_tier_common.h"

static struct tier_ctx *open_with(struct tdirs *t, bool promote, uint64_t budget)
{
	struct tier_config c = tconf(t, promote);

	c.nvm_size = budget;
	return topen(&c);
}

/* Where the data of @rel is read from; @copy gets the copy's path. */
static int where(struct tier_ctx *ctx, int l, const char *rel, char *copy)
{
	char p[PATH_MAX];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", tier_layer_dir(ctx, l), rel);
	assert_int_equal(lstat(p, &st), 0);
	return tier_lookup_data(ctx, l, rel, &st, copy, PATH_MAX);
}

static void assert_same_content(const char *a, const char *b)
{
	size_t la, lb;
	char *x = tread(a, &la), *y = tread(b, &lb);

	assert_non_null(x);
	assert_non_null(y);
	assert_int_equal(la, lb);
	assert_memory_equal(x, y, la);
	free(x);
	free(y);
}

static void promote_end_to_end(void **state)
{
	struct tdirs *t = *state;
	struct tier_ctx *ctx = open_with(t, true, 0);
	int l = tier_layer_add(ctx, t->l1);
	char copy[PATH_MAX], src[PATH_MAX];
	struct tier_status st;

	twrite(t->l1, "a", 10000, 1);
	twrite(t->l1, "b", 5000, 2);
	twrite(t->l1, "c", 200000, 3);
	tier_trace_open(ctx, l, "a", 10000);
	tier_trace_open(ctx, l, "b", 5000);
	assert_int_equal(tier_wait_idle(ctx, 5000), 0);
	tier_status(ctx, &st);
	assert_int_equal(st.queue_len, 0);
	assert_int_equal(st.promoted_files, 2);
	assert_int_equal(st.promoted_bytes, 15000);
	assert_int_equal(st.nvm_used, 15000);
	assert_int_equal(st.objects, 2);
	assert_int_equal(where(ctx, l, "a", copy), TIER_DATA_NVM_COPY);
	assert_non_null(strstr(copy, "/objects/"));
	snprintf(src, sizeof(src), "%s/a", t->l1);
	assert_same_content(copy, src);
	assert_int_equal(where(ctx, l, "c", copy), TIER_DATA_LAYER);
	assert_int_equal(tier_layer_nvm_bytes(ctx, l), 0);
	tier_close(ctx);

	/* remount: the index still serves the copies */
	ctx = open_with(t, true, 0);
	l = tier_layer_add(ctx, t->l1);
	assert_int_equal(where(ctx, l, "b", copy), TIER_DATA_NVM_COPY);
	snprintf(src, sizeof(src), "%s/b", t->l1);
	assert_same_content(copy, src);
	tier_status(ctx, &st);
	assert_int_equal(st.nvm_used, 15000);
	/* demote one file by hand */
	assert_int_equal(tier_evict_file(ctx, l, "b"), 0);
	assert_int_equal(where(ctx, l, "b", copy), TIER_DATA_LAYER);
	assert_int_equal(tier_evict_file(ctx, l, "b"), -ENOENT);
	tier_status(ctx, &st);
	assert_int_equal(st.nvm_used, 10000);
	assert_int_equal(st.promoted_files, 1);
	tier_close(ctx);
}

static void identical_files_share_object(void **state)
{
	struct tdirs *t = *state;
	struct tier_ctx *ctx = open_with(t, true, 0);
	int l1 = tier_layer_add(ctx, t->l1), l2 = tier_layer_add(ctx, t->l2);
	char c1[PATH_MAX], c2[PATH_MAX], objdir[512];
	struct tier_status st;

	twrite(t->l1, "lib.so", 30000, 7);
	twrite(t->l2, "copy.so", 30000, 7);
	tier_trace_open(ctx, l1, "lib.so", 30000);
	tier_trace_open(ctx, l2, "copy.so", 30000);
	assert_int_equal(tier_wait_idle(ctx, 5000), 0);
	tier_status(ctx, &st);
	assert_int_equal(st.promoted_files, 2);
	assert_int_equal(st.objects, 1);
	assert_int_equal(st.nvm_used, 30000);
	assert_int_equal(where(ctx, l1, "lib.so", c1), TIER_DATA_NVM_COPY);
	assert_int_equal(where(ctx, l2, "copy.so", c2), TIER_DATA_NVM_COPY);
	assert_string_equal(c1, c2);
	snprintf(objdir, sizeof(objdir), "%s/objects", t->nvm);
	assert_int_equal(count_dir(objdir), 1);
	/* dropping one user keeps the shared object for the other */
	{
		char p[PATH_MAX];
		struct timeval tv[2] = { { 1000, 0 }, { 1000, 0 } };

		snprintf(p, sizeof(p), "%s/lib.so", t->l1);
		utimes(p, tv);
	}
	assert_int_equal(where(ctx, l1, "lib.so", c1), TIER_DATA_LAYER);
	assert_int_equal(count_dir(objdir), 1);
	assert_int_equal(where(ctx, l2, "copy.so", c2), TIER_DATA_NVM_COPY);
	tier_status(ctx, &st);
	assert_int_equal(st.nvm_used, 30000);
	assert_int_equal(tier_evict(ctx, 1), 30000);
	assert_int_equal(count_dir(objdir), 0);
	tier_close(ctx);
}

static void changed_source_not_served(void **state)
{
	struct tdirs *t = *state;
	struct tier_ctx *ctx = open_with(t, true, 0);
	int l = tier_layer_add(ctx, t->l1);
	char copy[PATH_MAX], p[PATH_MAX], objdir[512];
	struct timeval tv[2] = { { 1000, 0 }, { 1000, 0 } };
	struct tier_status st;

	twrite(t->l1, "conf", 4000, 1);
	tier_trace_open(ctx, l, "conf", 4000);
	assert_int_equal(tier_wait_idle(ctx, 5000), 0);
	assert_int_equal(where(ctx, l, "conf", copy), TIER_DATA_NVM_COPY);
	/* same size, other bytes, other mtime */
	twrite(t->l1, "conf", 4000, 9);
	snprintf(p, sizeof(p), "%s/conf", t->l1);
	utimes(p, tv);
	assert_int_equal(where(ctx, l, "conf", copy), TIER_DATA_LAYER);
	tier_status(ctx, &st);
	assert_int_equal(st.promoted_files, 0);
	assert_int_equal(st.nvm_used, 0);
	snprintf(objdir, sizeof(objdir), "%s/objects", t->nvm);
	assert_int_equal(count_dir(objdir), 0);
	tier_close(ctx);
}

static void trace_start(struct tier_ctx *ctx, int l, const char *const *files)
{
	tier_trace_start(ctx);
	for (; *files; files++)
		tier_trace_open(ctx, l, *files, 10000);
	tier_trace_flush(ctx);
}

static void budget_and_eviction_order(void **state)
{
	struct tdirs *t = *state;
	static const char *const s1[] = { "f1", "f2", "f3", NULL };
	static const char *const s2[] = { "f1", "f2", "f4", NULL };
	static const char *const s3[] = { "f1", "f4", NULL };
	struct tier_ctx *ctx = open_with(t, false, 30000);
	struct tier_status st;
	char copy[PATH_MAX];
	int l = tier_layer_add(ctx, t->l1);

	for (int i = 1; i <= 5; i++) {
		char n[8];

		snprintf(n, sizeof(n), "f%d", i);
		twrite(t->l1, n, 10000, (unsigned)i);
	}
	twrite(t->l1, "huge", 40000, 1);
	tier_trace_stop(ctx);
	trace_start(ctx, l, s1);	/* heat: f1 3, f2 2, f4 2, f3 1 */
	trace_start(ctx, l, s2);
	trace_start(ctx, l, s3);
	tier_close(ctx);

	ctx = open_with(t, true, 30000);
	l = tier_layer_add(ctx, t->l1);
	tier_trace_stop(ctx);
	assert_int_equal(tier_promote_hot(ctx), 4);
	assert_int_equal(tier_promote_file(ctx, l, "huge"), 0);
	do {
		tier_status(ctx, &st);
		assert_true(st.nvm_used <= 30000);
	} while (tier_wait_idle(ctx, 1) == -ETIMEDOUT);
	tier_status(ctx, &st);
	assert_int_equal(st.nvm_used, 30000);
	assert_int_equal(where(ctx, l, "f1", copy), TIER_DATA_NVM_COPY);
	assert_int_equal(where(ctx, l, "f2", copy), TIER_DATA_NVM_COPY);
	assert_int_equal(where(ctx, l, "f4", copy), TIER_DATA_NVM_COPY);
	assert_int_equal(where(ctx, l, "f3", copy), TIER_DATA_LAYER);
	assert_int_equal(where(ctx, l, "huge", copy), TIER_DATA_LAYER);
	/* a colder file never pushes out a hotter one */
	assert_int_equal(tier_promote_file(ctx, l, "f5"), 0);
	assert_int_equal(tier_wait_idle(ctx, 5000), 0);
	assert_int_equal(where(ctx, l, "f5", copy), TIER_DATA_LAYER);
	/* explicit eviction: coldest first, the hottest stays */
	assert_int_equal(tier_evict(ctx, 20000), 20000);
	assert_int_equal(where(ctx, l, "f1", copy), TIER_DATA_NVM_COPY);
	assert_int_equal(where(ctx, l, "f2", copy), TIER_DATA_LAYER);
	assert_int_equal(where(ctx, l, "f4", copy), TIER_DATA_LAYER);
	tier_status(ctx, &st);
	assert_int_equal(st.nvm_used, 10000);
	tier_close(ctx);
}

static char *export_text(struct tier_ctx *ctx)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_true(tier_hotlist_export(ctx, f) >= 0);
	fclose(f);
	return text;
}

static int import_text(struct tier_ctx *ctx, const char *text, unsigned *skipped, char *err)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	int rc = tier_hotlist_import(ctx, f, "hot.list", skipped, err, 512);

	fclose(f);
	return rc;
}

static void hotlist_round_trip(void **state)
{
	struct tdirs *t = *state;
	struct tier_ctx *ctx = open_with(t, false, 0);
	int l = tier_layer_add(ctx, t->l1);
	char other[200], copy[PATH_MAX], err[512], *text, *again;
	unsigned skipped = 9;
	struct tier_status st;

	twrite(t->l1, "x", 100, 1);
	twrite(t->l1, "y", 200, 2);
	tier_trace_open(ctx, l, "y", 200);
	tier_trace_open(ctx, l, "x", 100);
	text = export_text(ctx);
	tier_close(ctx);

	/* another host: a fresh NVM tier, the same layer */
	snprintf(other, sizeof(other), "%s/nvm2", t->root);
	mkdir(other, 0755);
	snprintf(t->nvm, sizeof(t->nvm), "%s", other);
	ctx = open_with(t, true, 0);
	tier_trace_stop(ctx);
	l = tier_layer_add(ctx, t->l1);
	assert_int_equal(import_text(ctx, text, &skipped, err), 2);
	assert_int_equal(skipped, 0);
	assert_int_equal(tier_wait_idle(ctx, 5000), 0);
	assert_int_equal(where(ctx, l, "x", copy), TIER_DATA_NVM_COPY);
	assert_int_equal(where(ctx, l, "y", copy), TIER_DATA_NVM_COPY);
	tier_status(ctx, &st);
	assert_int_equal(st.promoted_bytes, 300);
	/* imported, not traced here: this host's own list is still empty */
	again = export_text(ctx);
	assert_string_equal(again, "# nlayerfs hot list 1\n");
	free(again);
	free(text);
	tier_close(ctx);
}

static void hotlist_errors(void **state)
{
	struct tdirs *t = *state;
	struct tier_ctx *ctx = open_with(t, true, 0);
	int l = tier_layer_add(ctx, t->l1);
	const char *id = tier_layer_id(ctx, l);
	char text[1024], err[512];
	unsigned skipped = 0;
	struct tier_status st;

	twrite(t->l1, "ok", 10, 1);
	assert_int_equal(import_text(ctx, "", &skipped, err), -EINVAL);
	assert_non_null(strstr(err, "hot.list"));
	assert_int_equal(import_text(ctx, "some file\n", &skipped, err), -EINVAL);
	assert_non_null(strstr(err, "hot.list:1:"));
	snprintf(text, sizeof(text), "# nlayerfs hot list 1\n%s ok\n%s ../etc/shadow\n", id, id);
	assert_int_equal(import_text(ctx, text, &skipped, err), -EINVAL);
	assert_non_null(strstr(err, "hot.list:3:"));
	snprintf(text, sizeof(text), "# nlayerfs hot list 1\n%s ok\nabc ok\n", id);
	assert_int_equal(import_text(ctx, text, &skipped, err), -EINVAL);
	assert_non_null(strstr(err, "hot.list:3:"));
	snprintf(text, sizeof(text), "# nlayerfs hot list 1\n%s /abs\n", id);
	assert_int_equal(import_text(ctx, text, &skipped, err), -EINVAL);
	/* a broken list queues nothing */
	assert_int_equal(tier_wait_idle(ctx, 5000), 0);
	tier_status(ctx, &st);
	assert_int_equal(st.promoted_files, 0);
	/* layers of other images are skipped, not errors */
	snprintf(text, sizeof(text), "# nlayerfs hot list 1\n# comment\n\n%064d some/file\n%s ok\n", 7, id);
	assert_int_equal(import_text(ctx, text, &skipped, err), 1);
	assert_int_equal(skipped, 1);
	tier_close(ctx);
}

static void chainid_layer_identity(void **state)
{
	struct tdirs *t = *state;
	struct tier_ctx *ctx = open_with(t, false, 0);
	char dir[512], id[65];
	int a, b;

	memset(id, 'c', 64);
	id[64] = '\0';
	snprintf(dir, sizeof(dir), "%s/%s", t->hdd, id);
	mkdir(dir, 0755);
	a = tier_layer_add(ctx, dir);
	b = tier_layer_add(ctx, t->l1);
	assert_string_equal(tier_layer_id(ctx, a), id);
	assert_int_equal(strlen(tier_layer_id(ctx, b)), 64);
	assert_string_not_equal(tier_layer_id(ctx, b), tier_layer_id(ctx, a));
	assert_int_equal(tier_layer_home(ctx, b), TIER_HOME_HDD);
	assert_int_equal(tier_layer_add(ctx, "/tmp/nl-P-does-not-exist"), -ENOENT);
	tier_close(ctx);
}

static void writeback_cold_nvm_files(void **state)
{
	struct tdirs *t = *state;
	struct tier_ctx *ctx = open_with(t, true, 0);
	char layer[512], copy[PATH_MAX], orig[PATH_MAX];
	struct tier_status before, after;
	char *want;
	int l;

	snprintf(layer, sizeof(layer), "%s/layers", t->nvm);
	mkdir(layer, 0755);
	twrite(layer, "hot", 8192, 1);
	twrite(layer, "cold", 65536, 2);
	l = tier_layer_add(ctx, layer);
	assert_int_equal(tier_layer_home(ctx, l), TIER_HOME_NVM);
	assert_true(tier_layer_nvm_bytes(ctx, l) >= 65536 + 8192);
	tier_trace_open(ctx, l, "hot", 8192);
	tier_status(ctx, &before);
	assert_true(before.nvm_used >= 65536 + 8192);
	assert_int_equal(tier_writeback_cold(ctx, true), 1);
	assert_int_equal(where(ctx, l, "hot", copy), TIER_DATA_LAYER);
	assert_int_equal(where(ctx, l, "cold", copy), TIER_DATA_HDD_COPY);
	assert_non_null(strstr(copy, t->hdd));
	/* the HDD copy holds the original bytes */
	snprintf(orig, sizeof(orig), "%s/nl-P-want", t->root);
	twrite(t->root, "nl-P-want", 65536, 2);
	assert_same_content(copy, orig);
	want = tread(orig, NULL);
	free(want);
	tier_status(ctx, &after);
	assert_true(after.nvm_used <= before.nvm_used - 65536);
	tier_close(ctx);
}

static void nvm_layer_evicts_copies(void **state)
{
	struct tdirs *t = *state;
	struct tier_ctx *ctx = open_with(t, true, 64 << 10);
	char layer[512], copy[PATH_MAX];
	struct tier_status st;
	int l;

	twrite(t->l1, "a", 40 << 10, 1);
	l = tier_layer_add(ctx, t->l1);
	tier_trace_open(ctx, l, "a", 40 << 10);
	assert_int_equal(tier_wait_idle(ctx, 5000), 0);
	assert_int_equal(where(ctx, l, "a", copy), TIER_DATA_NVM_COPY);
	/* an NVM-home layer arrives: layer data counts, the copy must go */
	snprintf(layer, sizeof(layer), "%s/layers", t->nvm);
	mkdir(layer, 0755);
	twrite(layer, "big", 48 << 10, 2);
	tier_layer_add(ctx, layer);
	tier_status(ctx, &st);
	assert_true(st.nvm_used <= st.nvm_budget);
	assert_int_equal(where(ctx, l, "a", copy), TIER_DATA_LAYER);
	tier_close(ctx);
}

static uint64_t queue_len(struct tier_ctx *ctx)
{
	struct tier_status st;

	tier_status(ctx, &st);
	return st.queue_len;
}

/* Two starts asking for the same file make one copy: a file is queued
 * once, and not again while its copy runs. */
static void queue_holds_file_once(void **state)
{
	struct tdirs *t = *state;
	struct tier_ctx *ctx = open_with(t, false, 0);
	int l = tier_layer_add(ctx, t->l1);
	char fifo[PATH_MAX];
	int wfd;

	twrite(t->l1, "big", 100000, 1);
	assert_int_equal(tier_promote_file(ctx, l, "big"), 0);
	assert_int_equal(tier_promote_file(ctx, l, "big"), 0);
	assert_int_equal(queue_len(ctx), 1);
	assert_int_equal(tier_promote_file(ctx, l, "other"), 0);
	assert_int_equal(queue_len(ctx), 2);
	tier_close(ctx);

	/* a FIFO holds its worker in open(): a copy in flight */
	snprintf(fifo, sizeof(fifo), "%s/slow", t->l1);
	assert_int_equal(mkfifo(fifo, 0644), 0);
	ctx = open_with(t, true, 0);
	l = tier_layer_add(ctx, t->l1);
	assert_int_equal(tier_promote_file(ctx, l, "slow"), 0);
	usleep(100 * 1000);
	assert_int_equal(queue_len(ctx), 1);
	assert_int_equal(tier_promote_file(ctx, l, "slow"), 0);
	assert_int_equal(queue_len(ctx), 1);
	wfd = open(fifo, O_WRONLY);
	assert_true(wfd >= 0);
	close(wfd);
	assert_int_equal(tier_wait_idle(ctx, 5000), 0);
	assert_int_equal(queue_len(ctx), 0);
	/* once done, it may be queued again */
	assert_int_equal(tier_promote_file(ctx, l, "big"), 0);
	assert_int_equal(tier_wait_idle(ctx, 5000), 0);
	tier_close(ctx);
}

/* Overwrite @n bytes in the middle of the file at @path. */
static void damage(const char *path, size_t n)
{
	struct stat st;
	char junk[64];
	int fd = open(path, O_WRONLY);

	memset(junk, 0x42, sizeof(junk));
	assert_true(fd >= 0 && n <= sizeof(junk));
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(pwrite(fd, junk, n, st.st_size / 2), (ssize_t)n);
	close(fd);
}

/* A copy damaged on NVM is served until a scrub finds it; then it is
 * dropped and the layer file serves the file, the good copies stay, and
 * a later promotion makes a good copy again. */
static void scrub_drops_damaged_copy(void **state)
{
	struct tdirs *t = *state;
	struct tier_ctx *ctx = open_with(t, true, 0);
	int l = tier_layer_add(ctx, t->l1);
	char ca[PATH_MAX], cb[PATH_MAX];
	struct tier_scrub_result res;
	struct tier_status st;

	twrite(t->l1, "a", 300000, 1);
	twrite(t->l1, "b", 5000, 2);
	tier_trace_open(ctx, l, "a", 300000);
	tier_trace_open(ctx, l, "b", 5000);
	assert_int_equal(tier_wait_idle(ctx, 5000), 0);
	assert_int_equal(tier_scrub(ctx, &res), 0);
	assert_int_equal(res.checked, 2);
	assert_int_equal(res.dropped, 0);
	assert_int_equal(where(ctx, l, "a", ca), TIER_DATA_NVM_COPY);
	damage(ca, 1);
	/* still named by the index: this is what a scrub is for */
	assert_int_equal(where(ctx, l, "a", ca), TIER_DATA_NVM_COPY);
	assert_int_equal(tier_scrub(ctx, &res), 0);
	assert_int_equal(res.checked, 2);
	assert_int_equal(res.dropped, 1);
	assert_int_equal(where(ctx, l, "a", ca), TIER_DATA_LAYER);
	assert_int_equal(access(ca, F_OK), -1);
	assert_int_equal(where(ctx, l, "b", cb), TIER_DATA_NVM_COPY);
	tier_status(ctx, &st);
	assert_int_equal(st.promoted_files, 1);
	assert_int_equal(st.nvm_used, 5000);
	assert_int_equal(st.bad_copies, 1);
	/* the file is still hot: promoted again, from the layer */
	assert_int_equal(tier_promote_hot(ctx), 1);
	assert_int_equal(tier_wait_idle(ctx, 5000), 0);
	assert_int_equal(where(ctx, l, "a", ca), TIER_DATA_NVM_COPY);
	{
		char src[PATH_MAX];

		snprintf(src, sizeof(src), "%s/a", t->l1);
		assert_same_content(ca, src);
	}
	tier_close(ctx);
}

/* Files sharing one object do not hide the objects of others. */
static void scrub_with_shared_objects(void **state)
{
	struct tdirs *t = *state;
	struct tier_ctx *ctx = open_with(t, true, 0);
	int l = tier_layer_add(ctx, t->l1);
	const char *const same[] = { "x1", "x2", "x3" };
	struct tier_scrub_result res;
	char cd[PATH_MAX];

	for (int i = 0; i < 3; i++) {
		twrite(t->l1, same[i], 7000, 5);
		tier_trace_open(ctx, l, same[i], 7000);
	}
	twrite(t->l1, "d", 9000, 6);
	tier_trace_open(ctx, l, "d", 9000);
	assert_int_equal(tier_wait_idle(ctx, 5000), 0);
	assert_int_equal(where(ctx, l, "d", cd), TIER_DATA_NVM_COPY);
	damage(cd, 3);
	assert_int_equal(tier_scrub(ctx, &res), 0);
	assert_int_equal(res.checked, 2);
	assert_int_equal(res.dropped, 1);
	assert_int_equal(where(ctx, l, "d", cd), TIER_DATA_LAYER);
	assert_int_equal(where(ctx, l, "x3", cd), TIER_DATA_NVM_COPY);
	tier_close(ctx);
}

/* Range copies are checked as well: their digest covers their extents. */
static void scrub_checks_range_copies(void **state)
{
	struct tdirs *t = *state;
	struct tier_config c = tconf(t, true);
	struct tier_scrub_result res;
	struct tier_range r;
	struct tier_ctx *ctx;
	struct stat st;
	char err[256], src[PATH_MAX];
	int l;

	c.range_threshold = 1 << 20;
	assert_int_equal(tier_open(&c, &ctx, err, sizeof(err)), 0);
	tier_config_free(&c);
	l = tier_layer_add(ctx, t->l1);
	twrite(t->l1, "big", 4 << 20, 3);
	snprintf(src, sizeof(src), "%s/big", t->l1);
	assert_int_equal(lstat(src, &st), 0);
	tier_trace_open(ctx, l, "big", (uint64_t)st.st_size);
	assert_int_equal(tier_range_open(ctx, l, "big", &st, &r), 1);
	tier_range_note_read(r.trace, 1 << 20, 256 << 10);
	tier_range_close(&r);
	tier_trace_stop(ctx);
	assert_int_equal(tier_wait_idle(ctx, 5000), 0);
	assert_true(tier_promote_hot(ctx) >= 0);
	assert_int_equal(tier_wait_idle(ctx, 5000), 0);
	assert_int_equal(tier_range_open(ctx, l, "big", &st, &r), 1);
	assert_non_null(r.copy);
	assert_int_equal(tier_scrub(ctx, &res), 0);
	assert_int_equal(res.checked, 1);
	assert_int_equal(res.dropped, 0);
	{
		int fd = open(r.copy, O_WRONLY);

		assert_true(fd >= 0);
		assert_int_equal(pwrite(fd, "X", 1, (1 << 20) + 100), 1);
		close(fd);
	}
	tier_range_close(&r);
	assert_int_equal(tier_scrub(ctx, &res), 0);
	assert_int_equal(res.dropped, 1);
	assert_int_equal(tier_range_open(ctx, l, "big", &st, &r), 0);
	tier_close(ctx);
}

#define CRASH_FILES 60

/* The child promotes until it is killed; it never returns. */
static void crash_child(struct tdirs *t)
{
	struct tier_ctx *ctx = open_with(t, true, 0);
	int l = tier_layer_add(ctx, t->l1);

	for (int i = 0; i < CRASH_FILES; i++) {
		char n[16];

		snprintf(n, sizeof(n), "f%02d", i);
		tier_trace_open(ctx, l, n, 1);
	}
	tier_wait_idle(ctx, -1);
	pause();
	_exit(0);
}

static void kill9_during_promotion(void **state)
{
	struct tdirs *t = *state;
	char objdir[512], n[16], copy[PATH_MAX], src[PATH_MAX];
	struct tier_status st;
	struct tier_ctx *ctx;
	pid_t pid;
	int l, served = 0;

	for (int i = 0; i < CRASH_FILES; i++) {
		snprintf(n, sizeof(n), "f%02d", i);
		twrite(t->l1, n, 256 << 10, (unsigned)i);
	}
	snprintf(objdir, sizeof(objdir), "%s/objects", t->nvm);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		crash_child(t);
	/* kill it once some copies exist, while others are in flight */
	for (int i = 0; i < 5000 && count_dir(objdir) < 4; i++)
		usleep(1000);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);

	ctx = open_with(t, false, 0);
	l = tier_layer_add(ctx, t->l1);
	for (int i = 0; i < CRASH_FILES; i++) {
		snprintf(n, sizeof(n), "f%02d", i);
		snprintf(src, sizeof(src), "%s/%s", t->l1, n);
		if (where(ctx, l, n, copy) == TIER_DATA_NVM_COPY) {
			assert_same_content(copy, src);
			served++;
		}
	}
	tier_status(ctx, &st);
	assert_int_equal(st.promoted_files, served);
	/* only committed objects are left: no temp file, no orphan */
	assert_int_equal(count_dir(objdir), (int)st.objects);
	assert_int_equal(st.nvm_used, st.objects * (256 << 10));
	tier_close(ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(promote_end_to_end, tdirs_setup, tdirs_teardown),
		cmocka_unit_test_setup_teardown(identical_files_share_object, tdirs_setup, tdirs_teardown),
		cmocka_unit_test_setup_teardown(changed_source_not_served, tdirs_setup, tdirs_teardown),
		cmocka_unit_test_setup_teardown(budget_and_eviction_order, tdirs_setup, tdirs_teardown),
		cmocka_unit_test_setup_teardown(hotlist_round_trip, tdirs_setup, tdirs_teardown),
		cmocka_unit_test_setup_teardown(hotlist_errors, tdirs_setup, tdirs_teardown),
		cmocka_unit_test_setup_teardown(chainid_layer_identity, tdirs_setup, tdirs_teardown),
		cmocka_unit_test_setup_teardown(writeback_cold_nvm_files, tdirs_setup, tdirs_teardown),
		cmocka_unit_test_setup_teardown(nvm_layer_evicts_copies, tdirs_setup, tdirs_teardown),
		cmocka_unit_test_setup_teardown(kill9_during_promotion, tdirs_setup, tdirs_teardown),
		cmocka_unit_test_setup_teardown(queue_holds_file_once, tdirs_setup, tdirs_teardown),
		cmocka_unit_test_setup_teardown(scrub_drops_damaged_copy, tdirs_setup, tdirs_teardown),
		cmocka_unit_test_setup_teardown(scrub_checks_range_copies, tdirs_setup, tdirs_teardown),
		cmocka_unit_test_setup_teardown(scrub_with_shared_objects, tdirs_setup, tdirs_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
