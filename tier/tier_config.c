/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Tier settings: defaults, the config file and mount option values. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <libpmemobj.h>
#include "tier/tier.h"
#include "tier/tier_util.h"
#include "tier/tier_private.h"

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

enum size_problem {
	SIZE_OK,
	SIZE_SYNTAX,
	SIZE_NEGATIVE,
	SIZE_OVERFLOW,
};

/* The one grammar of sizes: decimal digits, then K, M, G or T (powers of
 * 1024) spelled alone or with B or iB, or a plain B; a rate may end in /s. */
static enum size_problem parse_size(const char *s, bool rate, uint64_t *out)
{
	unsigned long long v;
	unsigned shift = 0;
	bool overflow;
	char *end;

	if (s && *s == '-')
		return SIZE_NEGATIVE;
	if (!s || !isdigit((unsigned char)*s))
		return SIZE_SYNTAX;
	errno = 0;
	v = strtoull(s, &end, 10);
	overflow = errno == ERANGE;
	switch (toupper((unsigned char)*end)) {
	case 'K': shift = 10; break;
	case 'M': shift = 20; break;
	case 'G': shift = 30; break;
	case 'T': shift = 40; break;
	default: break;
	}
	if (shift)
		end++;
	if (shift && (*end == 'i' || *end == 'I') && (end[1] == 'B' || end[1] == 'b'))
		end += 2;
	else if (*end == 'B' || *end == 'b')
		end++;
	if (rate && !strcmp(end, "/s"))
		end += 2;
	if (*end)
		return SIZE_SYNTAX;
	if (overflow || (shift && v > (UINT64_MAX >> shift)))
		return SIZE_OVERFLOW;
	*out = (uint64_t)v << shift;
	return SIZE_OK;
}

int tier_parse_size(const char *s, uint64_t *out)
{
	return parse_size(s, false, out) == SIZE_OK ? 0 : -EINVAL;
}

int tier_parse_rate(const char *s, uint64_t *out)
{
	return parse_size(s, true, out) == SIZE_OK ? 0 : -EINVAL;
}

const char *tier_size_problem(const char *s)
{
	uint64_t v;

	switch (parse_size(s, true, &v)) {
	case SIZE_NEGATIVE:
		return "a size cannot be negative";
	case SIZE_OVERFLOW:
		return "too large (the largest size is 16 EiB less one byte)";
	default:
		return "not a size (a number with an optional K, M, G or T suffix)";
	}
}

void tier_log(const struct tier_ctx *ctx, int priority, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ctx->cfg.log)
		ctx->cfg.log(priority, msg);
	else
		fprintf(stderr, "nlayerfs: %s\n", msg);
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

enum key_kind {
	KEY_DIR,	/* char *: an absolute directory */
	KEY_SIZE,	/* uint64_t: a size from lo to hi */
	KEY_POW2,	/* uint64_t: a size from lo to hi, a power of two */
	KEY_BOOL,	/* bool: on or off */
	KEY_UINT,	/* unsigned: a number from lo to hi */
};

/* The tier's keys, for the config file and mount options alike: each name
 * is written here and nowhere else. */
static const struct tier_key {
	const char *name;
	enum key_kind kind;
	size_t off;		/* of the field in struct tier_config */
	uint64_t lo, hi;
	const char *want;	/* said when a value is refused */
} tier_keys[] = {
#define FIELD(f) offsetof(struct tier_config, f)
	{ "nvm", KEY_DIR, FIELD(nvm_dir), 0, 0, "an absolute directory" },
	{ "hdd", KEY_DIR, FIELD(hdd_dir), 0, 0, "an absolute directory" },
	{ "nvm_size", KEY_SIZE, FIELD(nvm_size), 0, UINT64_MAX, "a size like 512M or 4G" },
	{ "index_size", KEY_SIZE, FIELD(index_size), PMEMOBJ_MIN_POOL, UINT64_MAX,
	  "a size of at least 8M" },
	{ "range_threshold", KEY_SIZE, FIELD(range_threshold), 0, UINT64_MAX,
	  "a size like 8M, or 0 for off" },
	{ "range_unit", KEY_POW2, FIELD(range_unit), 4096, 1ULL << 30,
	  "a power of two from 4K to 1G" },
	{ "range_slack", KEY_SIZE, FIELD(range_slack), 0, 1ULL << 30, "a size from 0 to 1G" },
	{ "trace", KEY_BOOL, FIELD(trace), 0, 0, "on or off" },
	{ "layer_meta", KEY_BOOL, FIELD(layer_meta), 0, 0, "on or off" },
	{ "writeback", KEY_BOOL, FIELD(writeback), 0, 0, "on or off" },
	{ "promote", KEY_BOOL, FIELD(promote), 0, 0, "on or off" },
	{ "trace_window", KEY_UINT, FIELD(trace_window), 1, 86400, "seconds, 1 to 86400" },
	{ "trace_quiet", KEY_UINT, FIELD(trace_quiet), 0, 86400, "seconds, 0 (off) to 86400" },
	{ "host_idle", KEY_UINT, FIELD(host_idle), 0, 86400, "seconds, 0 to 86400" },
	{ "workers", KEY_UINT, FIELD(workers), 1, 64, "a number, 1 to 64" },
#undef FIELD
};

static const struct tier_key *find_key(const char *name)
{
	for (size_t i = 0; i < sizeof(tier_keys) / sizeof(tier_keys[0]); i++)
		if (!strcmp(tier_keys[i].name, name))
			return &tier_keys[i];
	return NULL;
}

static int set_size(const struct tier_key *k, uint64_t *slot, const char *v)
{
	uint64_t n;

	if (tier_parse_size(v, &n) || n < k->lo || n > k->hi ||
	    (k->kind == KEY_POW2 && (n & (n - 1))))
		return -EINVAL;
	*slot = n;
	return 0;
}

static int set_value(const struct tier_key *k, struct tier_config *c, const char *v)
{
	void *slot = (char *)c + k->off;

	switch (k->kind) {
	case KEY_DIR:
		return set_dir(slot, v);
	case KEY_SIZE:
	case KEY_POW2:
		return set_size(k, slot, v);
	case KEY_BOOL:
		return parse_bool(v, slot);
	case KEY_UINT:
		return parse_uint(v, (unsigned)k->lo, (unsigned)k->hi, slot);
	}
	return -EINVAL;
}

int tier_config_set(struct tier_config *c, const char *key, const char *value,
		    char *err, size_t errlen)
{
	const struct tier_key *k = find_key(key);
	int rc;

	if (!k)
		return -ENOENT;
	rc = set_value(k, c, value);
	if (rc == -EINVAL)
		tier_err(err, errlen, "%s: bad value '%s' (want %s)", key, value, k->want);
	else if (rc)
		tier_err(err, errlen, "%s: %s", key, strerror(-rc));
	return rc;
}

bool tier_config_has_key(const char *key)
{
	return find_key(key) != NULL;
}

bool tier_config_key_is_dir(const char *key)
{
	const struct tier_key *k = find_key(key);

	return k && k->kind == KEY_DIR;
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
