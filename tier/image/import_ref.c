/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Image sources as skopeo and podman name them (containers/image's
 * transport syntax): oci:PATH[:REFERENCE], oci-archive:PATH[:REFERENCE],
 * docker-archive:PATH[:DOCKER-REFERENCE] and docker-archive:PATH:@INDEX.
 * The transport ends at the first colon, the path at the next one, and the
 * reference is all the rest, colons included ("localhost/app:latest").
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tier/image/import_private.h"

static const char *const read_transports[] = { "oci", "oci-archive", "docker-archive" };

/* Transports of containers/image that name no file nlayerfs could read. */
static const char *const other_transports[] = {
	"docker", "containers-storage", "dir", "docker-daemon", "ostree", "sif", "tarball",
	"atomic",
};

static bool in_list(const char *word, size_t len, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(list[i]) == len && strncmp(word, list[i], len) == 0)
			return true;
	return false;
}

static bool path_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* "docker://registry/ns/app:1.2@sha256:..." -> dir "app", tag "1.2". */
static void suggest_layout(const char *ref, char *dir, size_t dirlen, char *tag, size_t taglen)
{
	const char *base = strrchr(ref, '/') ? strrchr(ref, '/') + 1 : ref;
	size_t n = strcspn(base, ":@");

	snprintf(dir, dirlen, "%.*s", (int)(n ? n : 5), n ? base : "image");
	if (base[n] == ':')
		snprintf(tag, taglen, "%.*s", (int)strcspn(base + n + 1, "@"), base + n + 1);
	else
		snprintf(tag, taglen, "latest");
}

static int unread_transport(const char *source, char *err, size_t errlen)
{
	size_t tlen = strcspn(source, ":");
	const char *rest = source + tlen + 1;
	char dir[256], tag[128];

	while (*rest == '/' && strncmp(source, "docker", tlen) == 0)
		rest++;
	suggest_layout(rest, dir, sizeof(dir), tag, sizeof(tag));
	return nl_errf(err, errlen, -EPROTONOSUPPORT,
		       "%s: nlayerfs-import reads OCI layouts (oci:, oci-archive:) and docker-archive "
		       "tarballs, not the %.*s: transport; make an OCI layout first:\n"
		       "  skopeo copy %s oci:/tmp/%s:%s\n"
		       "  nlayerfs-import ... oci:/tmp/%s:%s",
		       source, (int)tlen, source, source, dir, tag, dir, tag);
}

/* PATH[:REF]: the whole when it exists, else split at the first colon
 * whose left side exists, else at the first colon. */
static void split_path_ref(const char *rest, struct nl_source *s)
{
	const char *colon = strchr(rest, ':');

	snprintf(s->path, sizeof(s->path), "%s", rest);
	if (!colon || path_exists(s->path))
		return;
	for (const char *c = colon; c; c = strchr(c + 1, ':')) {
		s->path[c - rest] = '\0';
		if (path_exists(s->path)) {
			colon = c;
			break;
		}
		s->path[c - rest] = ':';
	}
	s->path[colon - rest] = '\0';
	snprintf(s->ref, sizeof(s->ref), "%s", colon + 1);
}

static int parse_index(struct nl_source *s, char *err, size_t errlen)
{
	char *end;

	errno = 0;
	s->index = strtol(s->ref + 1, &end, 10);
	if (errno || end == s->ref + 1 || *end || s->index < 0)
		return nl_errf(err, errlen, -EINVAL, "docker-archive:%s:%s: the source index after "
			       "'@' must be a number (0 is the first image)", s->path, s->ref);
	return 0;
}

int nl_source_parse(const char *source, struct nl_source *s, char *err, size_t errlen)
{
	size_t tlen = strcspn(source, ":");
	const char *rest = source;

	memset(s, 0, sizeof(*s));
	s->index = -1;
	if (source[tlen] == ':' && !path_exists(source)) {
		if (in_list(source, tlen, read_transports, 3)) {
			snprintf(s->transport, sizeof(s->transport), "%.*s", (int)tlen, source);
			rest = source + tlen + 1;
		} else if (in_list(source, tlen, other_transports,
				   sizeof(other_transports) / sizeof(other_transports[0]))) {
			return unread_transport(source, err, errlen);
		}
	}
	split_path_ref(rest, s);
	if (!s->path[0])
		return nl_errf(err, errlen, -EINVAL, "%s: no path to an image layout or archive",
			       source);
	if (s->ref[0] == '@' && strcmp(s->transport, "docker-archive") == 0)
		return parse_index(s, err, errlen);
	return 0;
}

/* Docker's normal form: a registry host, "library/" for official images
 * on docker.io, and the tag "latest" when neither tag nor digest is given. */
static void normalise_ref(const char *ref, char *out, size_t len)
{
	const char *slash = strchr(ref, '/');
	size_t first = slash ? (size_t)(slash - ref) : 0;
	bool host = slash && (memchr(ref, '.', first) || memchr(ref, ':', first) ||
			      strncmp(ref, "localhost/", 10) == 0);
	const char *last = strrchr(ref, '/') ? strrchr(ref, '/') + 1 : ref;
	bool tagged = strchr(last, ':') || strchr(ref, '@');

	snprintf(out, len, "%s%s%s%s", host ? "" : "docker.io/", !host && !slash ? "library/" : "",
		 ref, tagged ? "" : ":latest");
}

bool nl_ref_equal(const char *a, const char *b)
{
	char na[600], nb[600];

	if (strcmp(a, b) == 0)
		return true;
	normalise_ref(a, na, sizeof(na));
	normalise_ref(b, nb, sizeof(nb));
	return strcmp(na, nb) == 0;
}
