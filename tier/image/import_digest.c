/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * SHA-256 digests of blobs and layers, and chainIDs (OCI image spec).
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tier/image/import_private.h"

#define HASH_BUF (256 * 1024)

bool nl_digest_valid(const char *d)
{
	if (!d || strncmp(d, "sha256:", 7) != 0 || strlen(d) != 7 + NL_DIGEST_HEX)
		return false;
	for (const char *p = d + 7; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

static void to_digest(const unsigned char *md, char out[72])
{
	strcpy(out, "sha256:");
	for (int i = 0; i < 32; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

static int finish(EVP_MD_CTX *ctx, char out[72])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	if (EVP_DigestFinal_ex(ctx, md, &len) != 1 || len != 32)
		return -EIO;
	to_digest(md, out);
	return 0;
}

static EVP_MD_CTX *sha256_new(void)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

int nl_chain_id(const char *parent, const char *diff_id, char out[72])
{
	EVP_MD_CTX *ctx;
	int r = -ENOMEM;

	if (!parent) {
		snprintf(out, 72, "%s", diff_id);
		return 0;
	}
	ctx = sha256_new();
	if (!ctx)
		return r;
	if (EVP_DigestUpdate(ctx, parent, strlen(parent)) == 1 &&
	    EVP_DigestUpdate(ctx, " ", 1) == 1 &&
	    EVP_DigestUpdate(ctx, diff_id, strlen(diff_id)) == 1)
		r = finish(ctx, out);
	EVP_MD_CTX_free(ctx);
	return r;
}

/* Hash the rest of @fd into @ctx. */
static int hash_fd(int fd, EVP_MD_CTX *ctx, unsigned char *buf, uint64_t *size)
{
	ssize_t n;

	while ((n = read(fd, buf, HASH_BUF)) > 0) {
		if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1)
			return -EIO;
		*size += (uint64_t)n;
	}
	return n < 0 ? -errno : 0;
}

int nl_hash_file(const char *path, char digest[72], uint64_t *size)
{
	unsigned char *buf = malloc(HASH_BUF);
	EVP_MD_CTX *ctx = sha256_new();
	int fd, r = -ENOMEM;

	if (!ctx || !buf)
		goto out;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
	} else {
		*size = 0;
		r = hash_fd(fd, ctx, buf, size);
		close(fd);
	}
	if (!r)
		r = finish(ctx, digest);
out:
	EVP_MD_CTX_free(ctx);
	free(buf);
	return r;
}

/* The blob is read through this callback so its raw bytes are hashed in
 * the same pass that libarchive decompresses them. */
struct blob_reader {
	int fd;
	EVP_MD_CTX *ctx;
	uint64_t size;
	uint64_t *progress;
	unsigned char buf[HASH_BUF];
};

static la_ssize_t blob_read(struct archive *a, void *data, const void **out)
{
	struct blob_reader *b = data;
	ssize_t n = read(b->fd, b->buf, sizeof(b->buf));

	if (n < 0) {
		archive_set_error(a, errno, "read: %s", strerror(errno));
		return -1;
	}
	if (n > 0 && EVP_DigestUpdate(b->ctx, b->buf, (size_t)n) != 1) {
		archive_set_error(a, EIO, "SHA-256 update failed");
		return -1;
	}
	b->size += (uint64_t)n;
	if (b->progress)
		__atomic_store_n(b->progress, b->size, __ATOMIC_RELAXED);
	*out = b->buf;
	return n;
}

static int hash_stream(struct archive *a, EVP_MD_CTX *diff, uint64_t *tar_size,
		       char *err, size_t errlen)
{
	const void *p;
	size_t len;
	la_int64_t off;
	struct archive_entry *e;
	int r = archive_read_next_header(a, &e);

	if (r == ARCHIVE_EOF)
		return 0;
	while (r == ARCHIVE_OK || r == ARCHIVE_WARN) {
		r = archive_read_data_block(a, &p, &len, &off);
		if (r == ARCHIVE_EOF)
			return 0;
		if ((r == ARCHIVE_OK || r == ARCHIVE_WARN) && EVP_DigestUpdate(diff, p, len) != 1)
			return -EIO;
		*tar_size += len;
	}
	snprintf(err, errlen, "cannot decompress: %s", archive_error_string(a));
	return -EINVAL;
}

static struct archive *raw_reader(void)
{
	struct archive *a = archive_read_new();

	if (!a)
		return NULL;
	/* Only the compressions image layers use; anything else is refused
	 * rather than guessed. */
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_format_raw(a);
	archive_read_support_format_empty(a);
	return a;
}

int nl_hash_layer(const char *blob, char blob_digest[72], char diff_id[72],
		  uint64_t *blob_size, uint64_t *tar_size, uint64_t *progress,
		  char *err, size_t errlen)
{
	struct blob_reader *b = calloc(1, sizeof(*b));
	EVP_MD_CTX *diff = sha256_new();
	struct archive *a = raw_reader();
	int r = -ENOMEM;

	blob_digest[0] = '\0';
	if (!b || !diff || !a || !(b->ctx = sha256_new()))
		goto out;
	b->progress = progress;
	b->fd = open(blob, O_RDONLY | O_CLOEXEC);
	if (b->fd < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot open: %s", strerror(errno));
		goto out;
	}
	if (archive_read_open(a, b, NULL, blob_read, NULL) != ARCHIVE_OK) {
		snprintf(err, errlen, "cannot read: %s", archive_error_string(a));
		r = -EINVAL;
	} else {
		*tar_size = 0;
		r = hash_stream(a, diff, tar_size, err, errlen);
	}
	/* Bytes after the compressed stream still belong to the blob, and a
	 * blob that does not decompress still gets its digest: a mismatch
	 * says more than the decompressor's complaint. */
	if (hash_fd(b->fd, b->ctx, b->buf, &b->size) == 0)
		finish(b->ctx, blob_digest);
	if (!r)
		r = finish(diff, diff_id);
	*blob_size = b->size;
	close(b->fd);
out:
	if (a)
		archive_read_free(a);
	if (b)
		EVP_MD_CTX_free(b->ctx);
	free(b);
	EVP_MD_CTX_free(diff);
	return r;
}
