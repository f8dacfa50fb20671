/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Reading an image source: an OCI image layout (directory or tar, as
 * `skopeo copy ... oci:` / `oci-archive:` write it) or a `docker save`
 * tarball. Everything named by the source is checked before it is used:
 * blob names must be sha256 digests, file names must stay inside the
 * source, and media types must be ones this importer understands.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "tier/image/import_private.h"
#include "tier/image/image.h"

#define MAX_JSON_FILE (8u << 20)

#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"

static const char *const layer_types[] = {
	"application/vnd.oci.image.layer.v1.tar",
	"application/vnd.oci.image.layer.v1.tar+gzip",
	"application/vnd.oci.image.layer.v1.tar+zstd",
	"application/vnd.oci.image.layer.nondistributable.v1.tar",
	"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
	"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
	"application/vnd.docker.image.rootfs.diff.tar",
	"application/vnd.docker.image.rootfs.diff.tar.gzip",
	"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

int nl_rm_tree(const char *path)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -errno;
	return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -errno;
}

bool nl_image_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 255)
		return false;
	return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			    "0123456789._-/:@") == n;
}

/* ---- unpacking an archive source ---- */

/* A relative name without "..": the only kind a source archive may hold. */
static bool safe_rel(const char *name)
{
	const char *p = name;

	if (!*name || name[0] == '/')
		return false;
	while (*p) {
		size_t len = strcspn(p, "/");

		if (len == 2 && p[0] == '.' && p[1] == '.')
			return false;
		p += len;
		while (*p == '/')
			p++;
	}
	return true;
}

static int write_entry_file(struct archive *a, const char *path)
{
	const void *buf;
	size_t len;
	la_int64_t off;
	int r, fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0)
		return -errno;
	while ((r = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK) {
		if (pwrite(fd, buf, len, off) != (ssize_t)len) {
			r = -errno;
			close(fd);
			return r ? r : -EIO;
		}
	}
	close(fd);
	return r == ARCHIVE_EOF ? 0 : -EINVAL;
}

static int mkdirs(char *path, size_t base)
{
	for (char *p = path + base + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		int r = mkdir(path, 0700);

		*p = '/';
		if (r != 0 && errno != EEXIST)
			return -errno;
	}
	return 0;
}

/* Only regular files and directories are taken: that is all a layout or a
 * docker save needs; links in the outer archive are ignored. */
static const char *unpack_error(struct archive *a, int r, const char *dir)
{
	static __thread char msg[PATH_MAX + 64];

	if (r == -EINVAL)
		return archive_error_string(a);
	if (r == -ENOSPC || r == -EDQUOT) {
		snprintf(msg, sizeof(msg), "no space left on %s", dir);
		return msg;
	}
	return strerror(-r);
}

static int unpack_entry(struct archive *a, struct archive_entry *e, const char *file,
			const char *dir, char *err, size_t errlen)
{
	const char *name = archive_entry_pathname(e);
	char path[PATH_MAX];
	int r;

	if (!name)
		return nl_errf(err, errlen, -EINVAL, "%s: an entry has no readable name "
			     "(corrupt archive?)", file);
	if (!safe_rel(name))
		return nl_errf(err, errlen, -EPERM, "%s: refusing archive entry '%s': absolute "
			     "path or '..' (path traversal)", file, name);
	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return nl_errf(err, errlen, -ENAMETOOLONG, "%s: archive entry '%.64s...': path "
			     "too long", file, name);
	r = mkdirs(path, strlen(dir));
	if (!r && archive_entry_filetype(e) == AE_IFDIR && mkdir(path, 0700) != 0 &&
	    errno != EEXIST)
		r = -errno;
	if (!r && archive_entry_filetype(e) == AE_IFREG)
		r = write_entry_file(a, path);
	if (r)
		return nl_errf(err, errlen, r, "%s: unpacking '%s': %s", file, name,
			     unpack_error(a, r, dir));
	return 0;
}

static int unpack_archive(const char *file, const char *dir, char *err, size_t errlen)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	int r = 0, ar;

	if (!a)
		return -ENOMEM;
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_filename(a, file, 128 * 1024) != ARCHIVE_OK) {
		r = nl_errf(err, errlen, -EINVAL, "%s: not a tar archive: %s", file,
			  archive_error_string(a));
	}
	while (!r && (ar = archive_read_next_header(a, &e)) != ARCHIVE_EOF) {
		if (ar < ARCHIVE_WARN)
			r = nl_errf(err, errlen, -EINVAL, "%s: bad archive: %s", file,
				  archive_error_string(a));
		else
			r = unpack_entry(a, e, file, dir, err, errlen);
	}
	archive_read_free(a);
	return r;
}

/* ---- JSON files and blobs ---- */

static int read_small_file(const char *path, char **buf, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), r = 0;
	ssize_t n;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_JSON_FILE) {
		close(fd);
		return -EFBIG;
	}
	*buf = malloc((size_t)st.st_size + 1);
	if (!*buf) {
		close(fd);
		return -ENOMEM;
	}
	n = pread(fd, *buf, (size_t)st.st_size, 0);
	if (n != st.st_size)
		r = n < 0 ? -errno : -EIO;
	close(fd);
	if (r) {
		free(*buf);
		return r;
	}
	*len = (size_t)n;
	return 0;
}

static int load_json(const char *path, const char *what, struct nl_json **out,
		     char *err, size_t errlen)
{
	char *buf = NULL, jerr[200];
	size_t len = 0;
	int r = read_small_file(path, &buf, &len);

	if (r == -ENOENT)
		return nl_errf(err, errlen, r, "%s is missing (%s)", what, path);
	if (r)
		return nl_errf(err, errlen, r, "cannot read %s %s: %s", what, path, strerror(-r));
	r = nl_json_parse(buf, len, out, jerr, sizeof(jerr));
	free(buf);
	if (r)
		return nl_errf(err, errlen, r, "%s: %s", what, jerr);
	return 0;
}

static void blob_path(const struct nl_image *img, const char *digest, char *out, size_t len)
{
	snprintf(out, len, "%s/blobs/sha256/%s", img->root, digest + 7);
}

/* Check a descriptor's digest, and that the blob matches it and its size. */
static int verify_blob(const struct nl_image *img, const struct nl_json *desc,
		       const char *what, char *path, size_t pathlen, char *err, size_t errlen)
{
	const char *digest = nl_json_get_str(desc, "digest");
	const struct nl_json *size = nl_json_get(desc, "size");
	char got[72];
	uint64_t got_size;
	int r;

	if (!nl_digest_valid(digest))
		return nl_errf(err, errlen, -EINVAL, "%s: unsupported or malformed digest '%s'",
			     what, digest ? digest : "(none)");
	blob_path(img, digest, path, pathlen);
	r = nl_hash_file(path, got, &got_size);
	if (r == -ENOENT)
		return nl_errf(err, errlen, r, "%s: missing blob %s", what, digest);
	if (r)
		return nl_errf(err, errlen, r, "%s: cannot read blob %s: %s", what, digest, strerror(-r));
	if (strcmp(got, digest) != 0)
		return nl_errf(err, errlen, -EINVAL, "%s: blob digest mismatch: expected %s, "
			     "blob is %s", what, digest, got);
	if (size && (!size->is_int || size->integer < 0 || (uint64_t)size->integer != got_size))
		return nl_errf(err, errlen, -EINVAL, "%s: blob %s has %llu bytes, descriptor "
			     "says otherwise", what, digest, (unsigned long long)got_size);
	return 0;
}

static int load_blob_json(const struct nl_image *img, const struct nl_json *desc,
			  const char *what, struct nl_json **out, char *digest_out,
			  char *err, size_t errlen)
{
	char path[PATH_MAX];
	int r = verify_blob(img, desc, what, path, sizeof(path), err, errlen);

	if (r)
		return r;
	if (digest_out)
		snprintf(digest_out, 72, "%s", nl_json_get_str(desc, "digest"));
	return load_json(path, what, out, err, errlen);
}

/* ---- OCI image layout ---- */

static const char *host_arch(void)
{
	static const char *const map[][2] = {
		{ "x86_64", "amd64" }, { "aarch64", "arm64" }, { "armv7l", "arm" },
		{ "ppc64le", "ppc64le" }, { "s390x", "s390x" }, { "riscv64", "riscv64" },
	};
	struct utsname u;

	if (uname(&u) == 0)
		for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
			if (strcmp(u.machine, map[i][0]) == 0)
				return map[i][1];
	return "amd64";
}

static bool is_index_type(const char *mt)
{
	return mt && (strcmp(mt, MT_OCI_INDEX) == 0 || strcmp(mt, MT_DOCKER_LIST) == 0);
}

static bool is_manifest_type(const char *mt)
{
	return mt && (strcmp(mt, MT_OCI_MANIFEST) == 0 || strcmp(mt, MT_DOCKER_MANIFEST) == 0);
}

static const struct nl_json *pick_by_platform(const struct nl_json *list)
{
	const char *arch = host_arch();

	for (size_t i = 0; i < list->count; i++) {
		const struct nl_json *pf = nl_json_get(list->items[i], "platform");
		const char *os = nl_json_get_str(pf, "os"), *a = nl_json_get_str(pf, "architecture");

		if (!pf || (os && a && strcmp(os, "linux") == 0 && strcmp(a, arch) == 0))
			return list->items[i];
	}
	return NULL;
}

static const struct nl_json *pick_by_ref(const struct nl_json *list, const char *ref,
					 char *err, size_t errlen)
{
	if (!ref) {
		if (list->count == 1)
			return list->items[0];
		nl_errf(err, errlen, -EINVAL, "the layout holds %zu images: name one as PATH:REF",
		      list->count);
		return NULL;
	}
	for (size_t i = 0; i < list->count; i++) {
		const struct nl_json *ann = nl_json_get(list->items[i], "annotations");
		const char *r = nl_json_get_str(ann, "org.opencontainers.image.ref.name");
		const char *c = nl_json_get_str(ann, "io.containerd.image.name");

		if ((r && nl_ref_equal(r, ref)) || (c && nl_ref_equal(c, ref)))
			return list->items[i];
	}
	nl_errf(err, errlen, -ENOENT, "no image with reference '%s' in the layout", ref);
	return NULL;
}

static const struct nl_json *manifest_list(const struct nl_json *index, char *err, size_t errlen)
{
	const struct nl_json *m = nl_json_get(index, "manifests");

	if (!m || m->type != NL_JSON_ARRAY || m->count == 0) {
		nl_errf(err, errlen, -EINVAL, "index has no \"manifests\" array");
		return NULL;
	}
	return m;
}

/* Follow the index (and at most one nested index) down to an image manifest. */
static int oci_find_manifest(struct nl_image *img, const char *ref, struct nl_json **manifest,
			     char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct nl_json *index = NULL, *nested = NULL;
	const struct nl_json *list, *desc;
	int r;

	snprintf(path, sizeof(path), "%s/index.json", img->root);
	r = load_json(path, "index.json", &index, err, errlen);
	if (r)
		return r;
	r = -EINVAL;
	list = manifest_list(index, err, errlen);
	desc = list ? pick_by_ref(list, ref, err, errlen) : NULL;
	if (desc && is_index_type(nl_json_get_str(desc, "mediaType"))) {
		r = load_blob_json(img, desc, "image index", &nested, NULL, err, errlen);
		list = r ? NULL : manifest_list(nested, err, errlen);
		desc = list ? pick_by_platform(list) : NULL;
		if (list && !desc)
			nl_errf(err, errlen, -ENOENT, "no manifest for linux/%s in the image index",
			      host_arch());
	}
	if (desc && !is_manifest_type(nl_json_get_str(desc, "mediaType"))) {
		nl_errf(err, errlen, -EINVAL, "unsupported media type '%s' for an image manifest",
		      nl_json_get_str(desc, "mediaType") ? nl_json_get_str(desc, "mediaType") : "");
		desc = NULL;
	}
	r = desc ? load_blob_json(img, desc, "manifest", manifest, img->digest, err, errlen) : -EINVAL;
	if (!r && !img->name[0]) {
		const struct nl_json *ann = nl_json_get(desc, "annotations");
		const char *n = nl_json_get_str(ann, "io.containerd.image.name");

		if (!n)
			n = nl_json_get_str(ann, "org.opencontainers.image.ref.name");

		snprintf(img->name, sizeof(img->name), "%s", n ? n : "");
	}
	nl_json_free(nested);
	nl_json_free(index);
	return r;
}

static bool known_layer_type(const char *mt)
{
	for (size_t i = 0; mt && i < sizeof(layer_types) / sizeof(layer_types[0]); i++)
		if (strcmp(mt, layer_types[i]) == 0)
			return true;
	return false;
}

static int oci_layer(struct nl_image *img, const struct nl_json *desc, size_t i,
		     char *err, size_t errlen)
{
	struct nl_image_layer *l = &img->layers[i];
	const char *mt = nl_json_get_str(desc, "mediaType"), *d = nl_json_get_str(desc, "digest");
	const struct nl_json *size = nl_json_get(desc, "size");

	if (!known_layer_type(mt))
		return nl_errf(err, errlen, -EINVAL, "layer %zu: unsupported media type '%s'",
			     i + 1, mt ? mt : "(none)");
	if (!nl_digest_valid(d))
		return nl_errf(err, errlen, -EINVAL, "layer %zu: unsupported or malformed digest '%s'",
			     i + 1, d ? d : "(none)");
	if (!size || !size->is_int || size->integer < 0)
		return nl_errf(err, errlen, -EINVAL, "layer %zu: descriptor has no valid size", i + 1);
	snprintf(l->digest, sizeof(l->digest), "%s", d);
	l->size = (uint64_t)size->integer;
	blob_path(img, d, l->blob, sizeof(l->blob));
	if (access(l->blob, R_OK) != 0)
		return nl_errf(err, errlen, -ENOENT, "layer %zu: missing blob %s", i + 1, d);
	return 0;
}

static int oci_open(struct nl_image *img, const char *ref, char *err, size_t errlen)
{
	struct nl_json *m = NULL;
	const struct nl_json *layers, *cfg;
	const char *mt;
	int r = oci_find_manifest(img, ref, &m, err, errlen);

	if (r)
		return r;
	r = -EINVAL;
	mt = nl_json_get_str(m, "mediaType");
	cfg = nl_json_get(m, "config");
	layers = nl_json_get(m, "layers");
	if (mt && !is_manifest_type(mt))
		nl_errf(err, errlen, r, "unsupported media type '%s' for an image manifest", mt);
	else if (!cfg || !layers || layers->type != NL_JSON_ARRAY || layers->count == 0)
		nl_errf(err, errlen, r, "manifest has no config or no layers");
	else if (!(mt = nl_json_get_str(cfg, "mediaType")) ||
		 (strcmp(mt, MT_OCI_CONFIG) != 0 && strcmp(mt, MT_DOCKER_CONFIG) != 0))
		nl_errf(err, errlen, r, "unsupported media type '%s' for an image config",
		      mt ? mt : "(none)");
	else
		r = load_blob_json(img, cfg, "config", &img->config, NULL, err, errlen);
	if (!r) {
		img->n = layers->count;
		img->layers = calloc(img->n, sizeof(*img->layers));
		r = img->layers ? 0 : -ENOMEM;
	}
	for (size_t i = 0; !r && i < img->n; i++)
		r = oci_layer(img, layers->items[i], i, err, errlen);
	if (!r && ref && !img->name[0])
		snprintf(img->name, sizeof(img->name), "%s", ref);
	nl_json_free(m);
	return r;
}

/* ---- docker save ---- */

/* "<hex>.json", "<hex>/layer.tar" or "blobs/sha256/<hex>" name their digest. */
static void digest_from_name(const char *name, char out[72])
{
	const char *b = strrchr(name, '/');
	char d[72];

	out[0] = '\0';
	snprintf(d, sizeof(d), "sha256:%.64s", b ? b + 1 : name);
	if (strncmp(name, "blobs/sha256/", 13) == 0 && nl_digest_valid(d))
		memcpy(out, d, sizeof(d));
	snprintf(d, sizeof(d), "sha256:%.64s", name);
	if (!strchr(name, '/') && strcmp(name + strcspn(name, "."), ".json") == 0 &&
	    nl_digest_valid(d))
		memcpy(out, d, sizeof(d));
}

static int docker_file(const struct nl_image *img, const struct nl_json *v, const char *what,
		       char *path, size_t len, char *err, size_t errlen)
{
	if (!v || v->type != NL_JSON_STRING || !safe_rel(v->str))
		return nl_errf(err, errlen, -EPERM, "manifest.json: %s path missing, absolute or "
			     "with '..'", what);
	snprintf(path, len, "%s/%s", img->root, v->str);
	return 0;
}

static int docker_config(struct nl_image *img, const struct nl_json *entry, char *err, size_t errlen)
{
	const struct nl_json *c = nl_json_get(entry, "Config");
	char path[PATH_MAX], want[72], got[72];
	uint64_t size;
	int r = docker_file(img, c, "Config", path, sizeof(path), err, errlen);

	if (r)
		return r;
	r = nl_hash_file(path, got, &size);
	if (r)
		return nl_errf(err, errlen, r, "config %s: %s", c->str,
			     r == -ENOENT ? "missing blob" : strerror(-r));
	digest_from_name(c->str, want);
	if (want[0] && strcmp(want, got) != 0)
		return nl_errf(err, errlen, -EINVAL, "config: blob digest mismatch: expected %s, "
			     "blob is %s", want, got);
	/* a docker save has no manifest digest: the image ID stands for it */
	snprintf(img->digest, sizeof(img->digest), "%s", got);
	return load_json(path, "config", &img->config, err, errlen);
}

static const struct nl_json *docker_pick(const struct nl_json *m, const char *ref, long index)
{
	if (index >= 0)
		return (size_t)index < m->count ? m->items[index] : NULL;
	if (!ref)
		return m->count == 1 ? m->items[0] : NULL;
	for (size_t i = 0; i < m->count; i++) {
		const struct nl_json *tags = nl_json_get(m->items[i], "RepoTags");

		for (size_t t = 0; tags && tags->type == NL_JSON_ARRAY && t < tags->count; t++)
			if (tags->items[t]->str && nl_ref_equal(tags->items[t]->str, ref))
				return m->items[i];
	}
	return NULL;
}

static int docker_open(struct nl_image *img, const char *ref, long index, char *err,
		       size_t errlen)
{
	char path[PATH_MAX];
	struct nl_json *m = NULL;
	const struct nl_json *entry = NULL, *layers, *tags;
	int r;

	snprintf(path, sizeof(path), "%s/manifest.json", img->root);
	r = load_json(path, "manifest.json", &m, err, errlen);
	if (r)
		return r;
	if (m->type != NL_JSON_ARRAY || m->count == 0)
		nl_errf(err, errlen, -EINVAL, "manifest.json: expected a non-empty array");
	else if (!(entry = docker_pick(m, ref, index)) && index >= 0)
		nl_errf(err, errlen, -ENOENT, "no image @%ld in the archive: it holds %zu (@0 to "
			"@%zu)", index, m->count, m->count - 1);
	else if (!entry && ref)
		nl_errf(err, errlen, -ENOENT, "no image tagged '%s' in the archive", ref);
	else if (!entry)
		nl_errf(err, errlen, -EINVAL, "the archive holds %zu images: name one as "
			"PATH:TAG or PATH:@INDEX", m->count);
	if (!entry) {
		nl_json_free(m);
		return -EINVAL;
	}
	layers = nl_json_get(entry, "Layers");
	tags = nl_json_get(entry, "RepoTags");
	if (!img->name[0] && tags && tags->type == NL_JSON_ARRAY && tags->count &&
	    tags->items[0]->type == NL_JSON_STRING)
		snprintf(img->name, sizeof(img->name), "%s", ref ? ref : tags->items[0]->str);
	r = docker_config(img, entry, err, errlen);
	if (!r && (!layers || layers->type != NL_JSON_ARRAY || layers->count == 0))
		r = nl_errf(err, errlen, -EINVAL, "manifest.json: no layers");
	if (!r) {
		img->n = layers->count;
		img->layers = calloc(img->n, sizeof(*img->layers));
		r = img->layers ? 0 : -ENOMEM;
	}
	for (size_t i = 0; !r && i < img->n; i++) {
		struct nl_image_layer *l = &img->layers[i];
		struct stat st;

		r = docker_file(img, layers->items[i], "layer", l->blob, sizeof(l->blob), err, errlen);
		if (!r && stat(l->blob, &st) != 0)
			r = nl_errf(err, errlen, -ENOENT, "layer %zu: missing blob %s", i + 1,
				  layers->items[i]->str);
		if (!r) {
			digest_from_name(layers->items[i]->str, l->digest);
			l->size = (uint64_t)st.st_size;
		}
	}
	nl_json_free(m);
	return r;
}

/* ---- config: diffIDs and history ---- */

static int read_config(struct nl_image *img, char *err, size_t errlen)
{
	const struct nl_json *rootfs = nl_json_get(img->config, "rootfs");
	const struct nl_json *ids = nl_json_get(rootfs, "diff_ids");
	const struct nl_json *hist = nl_json_get(img->config, "history");
	const char *type = nl_json_get_str(rootfs, "type");
	size_t k = 0;

	if (!type || strcmp(type, "layers") != 0 || !ids || ids->type != NL_JSON_ARRAY)
		return nl_errf(err, errlen, -EINVAL, "config: no rootfs of type \"layers\"");
	if (ids->count != img->n)
		return nl_errf(err, errlen, -EINVAL, "config lists %zu diffIDs for %zu layers",
			     ids->count, img->n);
	for (size_t i = 0; i < img->n; i++) {
		if (ids->items[i]->type != NL_JSON_STRING || !nl_digest_valid(ids->items[i]->str))
			return nl_errf(err, errlen, -EINVAL, "config: layer %zu: unsupported or "
				     "malformed diffID", i + 1);
		snprintf(img->layers[i].diff_id, 72, "%s", ids->items[i]->str);
		if (nl_chain_id(i ? img->layers[i - 1].chain_id : NULL, img->layers[i].diff_id,
				img->layers[i].chain_id))
			return -ENOMEM;
	}
	/* History entries with "empty_layer" made no layer; the others map
	 * onto the layers in order. */
	for (size_t h = 0; hist && hist->type == NL_JSON_ARRAY && h < hist->count; h++) {
		const struct nl_json *empty = nl_json_get(hist->items[h], "empty_layer");

		if (empty && empty->type == NL_JSON_BOOL && empty->boolean)
			continue;
		if (k < img->n)
			img->layers[k].created_by = nl_json_get_str(hist->items[h], "created_by");
		k++;
	}
	return 0;
}

/* ---- opening a source ---- */

static int unpack_source(struct nl_image *img, const char *path, const char *scratch,
			 char *err, size_t errlen)
{
	snprintf(img->staging, sizeof(img->staging), "%s/.import-src-XXXXXX", scratch);
	if (!mkdtemp(img->staging)) {
		int r = -errno;

		img->staging[0] = '\0';
		return nl_errf(err, errlen, r, "cannot create a staging dir in %s: %s", scratch,
			     strerror(-r));
	}
	snprintf(img->root, sizeof(img->root), "%s", img->staging);
	return unpack_archive(path, img->staging, err, errlen);
}

int nl_image_open(struct nl_image *img, const char *source, const char *scratch_dir,
		  char *err, size_t errlen)
{
	struct nl_source src;
	const char *path = src.path, *ref;
	char probe[PATH_MAX];
	struct stat st;
	int r = nl_source_parse(source, &src, err, errlen);

	if (r)
		return r;
	ref = src.ref[0] && src.index < 0 ? src.ref : NULL;
	if (stat(path, &st) != 0)
		return nl_errf(err, errlen, -errno, "%s: %s", path, strerror(errno));
	if (S_ISDIR(st.st_mode))
		r = realpath(path, img->root) ? 0 : nl_errf(err, errlen, -errno, "%s: %s", path,
							   strerror(errno));
	else
		r = unpack_source(img, path, scratch_dir, err, errlen);
	if (r)
		return r;
	snprintf(probe, sizeof(probe), "%s/index.json", img->root);
	if (access(probe, F_OK) == 0) {
		r = oci_open(img, ref, err, errlen);
	} else {
		snprintf(probe, sizeof(probe), "%s/manifest.json", img->root);
		if (access(probe, F_OK) != 0)
			return nl_errf(err, errlen, -EINVAL, "%s: neither an OCI image layout "
				     "(index.json) nor a docker save (manifest.json)", path);
		r = docker_open(img, ref, src.index, err, errlen);
	}
	return r ? r : read_config(img, err, errlen);
}

void nl_image_close(struct nl_image *img)
{
	if (img->staging[0])
		nl_rm_tree(img->staging);
	img->staging[0] = '\0';
	nl_json_free(img->config);
	img->config = NULL;
	free(img->layers);
	img->layers = NULL;
}
