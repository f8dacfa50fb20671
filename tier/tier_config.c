/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Tier settings: defaults, the config file and mount option values. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <libpmemobj.h>
#include "tier/tier.h"
#include "tier/tier_util.h"

void tier_config_defaults(struct tier_config *c)
{
	memset(c, 0, sizeof(*c));
	c->trace = true;
	c->trace_window = 60;	/* covers the start-up of common services */
	c->promote = true;
	c->workers = 2;
	/* the libpmemobj minimum: about 12000 files (see tier_index.c), far
	 * more than a container start opens; the pool is all NVM */
	c->index_size = PMEMOBJ_MIN_POOL;
	c->range_threshold = 8ULL << 20;	/* libraries and images read in parts */
	c->range_unit = 64ULL << 10;
	/* the kernel reads ahead up to 128 KiB of a FUSE file */
	c->range_slack = 128ULL << 10;
	c->layer_meta = true;
	c->writeback = true;	/* NVM keeps the hot files, HDD the rest */
	c->trace_quiet = 3;	/* a start opens its files in bursts under a second apart */
	c->host_idle = 30;	/* a container restart finds the service still there */
	c->trace_at_open = true;
}

#ifndef NLAYERFS_SYSCONFDIR
#define NLAYERFS_SYSCONFDIR "/etc"
#endif

const char *tier_config_default_path(void)
{
	return NLAYERFS_SYSCONFDIR "/nlayerfs.conf";
}

void tier_config_free(struct tier_config *c)
{
	free(c->nvm_dir);
	free(c->hdd_dir);
	c->nvm_dir = c->hdd_dir = NULL;
}

int tier_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (toupper((unsigned char)*end)) {
	case '\0': break;
	case 'K': shift = 10; break;
	case 'M': shift = 20; break;
	case 'G': shift = 30; break;
	case 'T': shift = 40; break;
	default: return -EINVAL;
	}
	if (*end) {
		end++;
		if ((*end == 'i' || *end == 'I') && (end[1] == 'B' || end[1] == 'b'))
			end += 2;
		else if (*end == 'B' || *end == 'b')
			end++;
	}
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

static int parse_bool(const char *v, bool *out)
{
	if (!strcmp(v, "on") || !strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1"))
		*out = true;
	else if (!strcmp(v, "off") || !strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0"))
		*out = false;
	else
		return -EINVAL;
	return 0;
}

static int parse_uint(const char *v, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	unsigned long n;

	if (!isdigit((unsigned char)*v))
		return -EINVAL;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || *end || n < lo || n > hi)
		return -EINVAL;
	*out = (unsigned)n;
	return 0;
}

static int set_dir(char **slot, const char *v)
{
	char *d;

	if (!*v || *v != '/')
		return -EINVAL;
	d = strdup(v);
	if (!d)
		return -ENOMEM;
	free(*slot);
	*slot = d;
	return 0;
}

int tier_config_set(struct tier_config *c, const char *key, const char *value,
		    char *err, size_t errlen)
{
	int rc;
	const char *want;

	if (!strcmp(key, "nvm")) {
		rc = set_dir(&c->nvm_dir, value), want = "an absolute directory";
	} else if (!strcmp(key, "hdd")) {
		rc = set_dir(&c->hdd_dir, value), want = "an absolute directory";
	} else if (!strcmp(key, "nvm_size")) {
		rc = tier_parse_size(value, &c->nvm_size), want = "a size like 512M or 4G";
	} else if (!strcmp(key, "index_size")) {
		rc = tier_parse_size(value, &c->index_size), want = "a size of at least 8M";
		if (!rc && c->index_size < PMEMOBJ_MIN_POOL)
			rc = -EINVAL;
	} else if (!strcmp(key, "range_threshold")) {
		rc = tier_parse_size(value, &c->range_threshold), want = "a size like 8M, or 0 for off";
	} else if (!strcmp(key, "range_unit")) {
		uint64_t u;

		rc = tier_parse_size(value, &u), want = "a power of two from 4K to 1G";
		if (!rc && (u < 4096 || u > (1ULL << 30) || (u & (u - 1))))
			rc = -EINVAL;
		if (!rc)
			c->range_unit = u;
	} else if (!strcmp(key, "range_slack")) {
		uint64_t s;

		rc = tier_parse_size(value, &s), want = "a size from 0 to 1G";
		if (!rc && s > (1ULL << 30))
			rc = -EINVAL;
		if (!rc)
			c->range_slack = s;
	} else if (!strcmp(key, "trace")) {
		rc = parse_bool(value, &c->trace), want = "on or off";
	} else if (!strcmp(key, "layer_meta")) {
		rc = parse_bool(value, &c->layer_meta), want = "on or off";
	} else if (!strcmp(key, "writeback")) {
		rc = parse_bool(value, &c->writeback), want = "on or off";
	} else if (!strcmp(key, "promote")) {
		rc = parse_bool(value, &c->promote), want = "on or off";
	} else if (!strcmp(key, "trace_window")) {
		rc = parse_uint(value, 1, 86400, &c->trace_window), want = "seconds, 1 to 86400";
	} else if (!strcmp(key, "trace_quiet")) {
		rc = parse_uint(value, 0, 86400, &c->trace_quiet), want = "seconds, 0 (off) to 86400";
	} else if (!strcmp(key, "host_idle")) {
		rc = parse_uint(value, 0, 86400, &c->host_idle), want = "seconds, 0 to 86400";
	} else if (!strcmp(key, "workers")) {
		rc = parse_uint(value, 1, 64, &c->workers), want = "a number, 1 to 64";
	} else {
		return -ENOENT;
	}
	if (rc == -EINVAL)
		tier_err(err, errlen, "%s: bad value '%s' (want %s)", key, value, want);
	else if (rc)
		tier_err(err, errlen, "%s: %s", key, strerror(-rc));
	return rc;
}

/* tier_config_set() answers -ENOENT only for a key it does not know, before
 * looking at the value: asking it keeps the keys in one place. */
bool tier_config_has_key(const char *key)
{
	struct tier_config scratch;
	int rc;

	tier_config_defaults(&scratch);
	rc = tier_config_set(&scratch, key, "", NULL, 0);
	tier_config_free(&scratch);
	return rc != -ENOENT;
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int config_line(struct tier_config *c, char *line, const char *path,
		       unsigned lineno, char *err, size_t errlen)
{
	char msg[256], *eq, *key, *val, *hash = strchr(line, '#');
	int rc;

	if (hash)
		*hash = '\0';
	key = trim(line);
	if (!*key)
		return 0;
	eq = strchr(key, '=');
	if (!eq) {
		tier_err(err, errlen, "%s:%u: expected 'key = value'", path, lineno);
		return -EINVAL;
	}
	*eq = '\0';
	key = trim(key);
	val = trim(eq + 1);
	if (!*key || !*val) {
		tier_err(err, errlen, "%s:%u: missing %s", path, lineno, *key ? "value" : "key");
		return -EINVAL;
	}
	rc = tier_config_set(c, key, val, msg, sizeof(msg));
	if (rc == -ENOENT)
		tier_err(err, errlen, "%s:%u: unknown key '%s'", path, lineno, key);
	else if (rc)
		tier_err(err, errlen, "%s:%u: %s", path, lineno, msg);
	return rc == -ENOENT ? -EINVAL : rc;
}

/* A config file holds a few lines; anything longer is the wrong file
 * (config=/dev/zero would otherwise be read until memory runs out). */
#define CONFIG_MAX_BYTES (1 << 20)

/* The whole file, NUL-terminated, at most CONFIG_MAX_BYTES. */
static int read_bounded(FILE *f, const char *path, char **out, char *err, size_t errlen)
{
	char *buf = malloc(CONFIG_MAX_BYTES + 2);
	size_t n;

	if (!buf)
		return -ENOMEM;
	n = fread(buf, 1, CONFIG_MAX_BYTES + 1, f);
	if (ferror(f)) {
		free(buf);
		tier_err(err, errlen, "%s: %s", path, strerror(errno));
		return -EIO;
	}
	if (n > CONFIG_MAX_BYTES) {
		free(buf);
		tier_err(err, errlen, "%s: longer than 1 MiB, not a config file; "
			 "name a file of 'key = value' lines", path);
		return -EFBIG;
	}
	buf[n] = '\n';
	buf[n + 1] = '\0';
	*out = buf;
	return 0;
}

static int config_text(struct tier_config *c, char *text, const char *path, char *err,
		       size_t errlen)
{
	unsigned lineno = 0;
	int rc = 0;

	for (char *line = text, *nl; !rc && (nl = strchr(line, '\n')); line = nl + 1) {
		*nl = '\0';
		if (nl == line + strlen(line))
			rc = config_line(c, line, path, ++lineno, err, errlen);
		else	/* a NUL byte inside the line */
			rc = -EINVAL, tier_err(err, errlen, "%s:%u: not a text line", path, ++lineno);
	}
	return rc;
}

int tier_config_load(struct tier_config *c, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	struct stat st;
	char *text = NULL;
	int rc;

	if (!f) {
		rc = -errno;
		tier_err(err, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		fclose(f);
		tier_err(err, errlen, "%s: is a directory; the config file must be a file "
			 "of 'key = value' lines", path);
		return -EISDIR;
	}
	rc = read_bounded(f, path, &text, err, errlen);
	fclose(f);
	if (!rc)
		rc = config_text(c, text, path, err, errlen);
	free(text);
	return rc;
}
