/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Private to tier/image/: the JSON reader, digests and the layer
 * extractor. Not part of the public tier/image/image.h.
 */
#ifndef NLAYERFS_IMPORT_PRIVATE_H
#define NLAYERFS_IMPORT_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Format a message into @err and return @r (a negative errno). */
int nl_errf(char *err, size_t errlen, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ---- JSON (RFC 8259, strict: no comments, no trailing commas) ---- */
enum nl_json_type {
	NL_JSON_NULL, NL_JSON_BOOL, NL_JSON_NUMBER, NL_JSON_STRING,
	NL_JSON_ARRAY, NL_JSON_OBJECT,
};

struct nl_json {
	enum nl_json_type type;
	bool boolean;
	bool is_int;		/* number without fraction/exponent, fits int64 */
	int64_t integer;
	double number;
	char *str;		/* strings: UTF-8, NUL-terminated */
	size_t str_len;		/* may contain NULs from \u0000 */
	size_t count;		/* arrays and objects */
	char **keys;		/* objects */
	struct nl_json **items;	/* arrays and object values */
};

#define NL_JSON_MAX_DEPTH 64

/* Parse @len bytes; on error -EINVAL and a message with the byte offset. */
int nl_json_parse(const char *text, size_t len, struct nl_json **out,
		  char *err, size_t errlen);
void nl_json_free(struct nl_json *j);
/* Member of an object (the last one on duplicate keys), NULL if absent or
 * @obj is not an object. */
const struct nl_json *nl_json_get(const struct nl_json *obj, const char *key);
/* String value of member @key, NULL if absent or not a string. */
const char *nl_json_get_str(const struct nl_json *obj, const char *key);

/* ---- digests ---- */
#define NL_DIGEST_HEX 64
/* "sha256:<64 lowercase hex>" only; other algorithms are refused. */
bool nl_digest_valid(const char *digest);
/* chain = sha256(parent + " " + diffid), as "sha256:hex". */
int nl_chain_id(const char *parent, const char *diff_id, char out[72]);

/* ---- layer extraction ---- */
struct nl_extract_opts {
	bool mknod_whiteouts;	/* char 0/0 whiteouts; else keep ".wh." files */
	size_t *skipped_devices;	/* out, may be NULL: nodes mknod refused */
	size_t *dropped_xattrs;		/* out, may be NULL: overlay xattrs dropped */
	uint64_t *progress;		/* out, may be NULL: blob bytes read so far */
};
/* Extract the (possibly compressed) layer tar at @blob into the empty
 * directory @dir, converting OCI whiteouts to the overlay format and
 * refusing any entry that would land outside @dir. */
int nl_extract_layer(const char *blob, const char *dir, const struct nl_extract_opts *o,
		     char *err, size_t errlen);
/* Hash the blob (compressed) and its uncompressed stream in one read;
 * *@progress (may be NULL) follows the blob bytes read. */
int nl_hash_layer(const char *blob, char blob_digest[72], char diff_id[72],
		  uint64_t *blob_size, uint64_t *tar_size, uint64_t *progress,
		  char *err, size_t errlen);
int nl_hash_file(const char *path, char digest[72], uint64_t *size);

/* ---- images being imported ---- */
enum nl_import_phase { NL_PHASE_WAIT, NL_PHASE_VERIFY, NL_PHASE_UNPACK, NL_PHASE_DONE };

/* A layer of an image being imported (the union mount's open layers are
 * struct nl_layer, fs/union/union.h). */
struct nl_image_layer {
	char blob[4096];	/* path of the layer blob */
	char digest[72];	/* expected blob digest, "" when the source has none */
	uint64_t size;		/* expected blob size, 0 when unknown */
	uint64_t tar_size;	/* uncompressed size, known once verified */
	char diff_id[72];	/* from the config */
	char chain_id[72];
	const char *created_by;	/* history line, NULL when unknown */
	char path[4096];	/* final directory */
	int tier;		/* enum nl_lass_tier */
	int reason;		/* enum nl_lass_reason, -1: kept where it was */
	bool present;		/* stored by an earlier import */
	bool created;		/* stored by this import */
	/* progress, read by the reporter while a worker writes it */
	int phase;		/* enum nl_import_phase */
	uint64_t done;		/* blob bytes of the current phase */
	double started;		/* of the current phase, seconds */
	double verify_s;	/* how long verification took */
	int result;
	char err[512];
};

struct nl_image {
	char root[3072];	/* the unpacked source */
	char staging[3072];	/* temp dir of an unpacked archive, "" if none */
	char name[256];
	char digest[72];	/* manifest digest, or the image ID of a docker save */
	size_t n;
	struct nl_image_layer *layers;	/* bottom first */
	struct nl_json *config;
};

/* An image source as skopeo and podman name it: [TRANSPORT:]PATH[:REFERENCE],
 * split at the first colon after the transport (a path holding colons
 * is taken whole when it exists). */
struct nl_source {
	char transport[32];	/* "oci", "oci-archive", "docker-archive" or "" */
	char path[4096];
	char ref[256];		/* "" when none */
	long index;		/* docker-archive:PATH:@N, else -1 */
};
/* -EPROTONOSUPPORT for transports that are not read here (docker://,
 * containers-storage:, dir:, ...), with the skopeo command that makes an
 * OCI layout of the image in @err. */
int nl_source_parse(const char *source, struct nl_source *s, char *err, size_t errlen);
/* Docker references equal once normalised ("app" = "docker.io/library/app:latest"). */
bool nl_ref_equal(const char *a, const char *b);

/* Open @source (OCI layout dir/tar, docker-save tar; "oci:", "oci-archive:",
 * "docker-archive:" prefixes and ":REF" accepted), unpacking archives into a
 * staging dir under @scratch_dir. Fills layers, digests and names. */
int nl_image_open(struct nl_image *img, const char *source, const char *scratch_dir,
		  char *err, size_t errlen);
void nl_image_close(struct nl_image *img);
bool nl_image_name_valid(const char *name);
/* Remove a directory tree (no symlinks followed). */
int nl_rm_tree(const char *path);
/* Record an image in the registry at @nvm_dir, replacing one of that name. */
int nl_registry_put(const char *nvm_dir, const struct nl_image *img, char *err, size_t errlen);
/* Unpacked bytes of the distinct NVM layers the registry knows of. */
uint64_t nl_registry_nvm_use(const char *nvm_dir);

#endif
