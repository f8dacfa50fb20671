/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Command line and -o option parsing, and the pre-mount checks.
 *
 * Parsing is pure string work (plus getcwd to make paths absolute);
 * nl_options_validate is the only part that looks at the file system, and
 * it only looks.
 */
#include "fs/options.h"
#include "tier/tier.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef NLAYERFS_SYSCONFDIR
#define NLAYERFS_SYSCONFDIR "/etc"
#endif

#define NL_OVERFLOW_ID 65534u

/*
 * fuse-overlayfs keeps kernel caches practically forever by default: the
 * lower layers never change under a mount, and every change made through
 * the mount goes through the daemon, which answers with fresh attributes.
 */
#define NL_DEFAULT_TIMEOUT 1000000000.0

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* ---- small string helpers ---------------------------------------------- */

static void free_strv(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Append @s to the comma separated list *@list, escaping what libfuse's own
 * option splitter would otherwise take apart. */
static int list_append_escaped(char **list, const char *s)
{
	size_t old = *list ? strlen(*list) : 0;
	size_t need = old + 1 + 2 * strlen(s) + 1;
	char *buf = realloc(*list, need);
	char *p;

	if (!buf)
		return -ENOMEM;
	p = buf + old;
	if (old)
		*p++ = ',';
	for (; *s; s++) {
		if (*s == ',' || *s == '\\')
			*p++ = '\\';
		*p++ = *s;
	}
	*p = '\0';
	*list = buf;
	return 0;
}

static int strv_push(char ***v, size_t *n, const char *s)
{
	char **nv = realloc(*v, (*n + 2) * sizeof(**v));

	if (!nv)
		return -ENOMEM;
	*v = nv;
	nv[*n] = strdup(s);
	if (!nv[*n])
		return -ENOMEM;
	(*n)++;
	nv[*n] = NULL;
	return 0;
}

/* ---- paths --------------------------------------------------------------- */

/* Drop trailing slashes so that comparisons and messages see one spelling. */
static void trim_trailing_slashes(char *p)
{
	size_t n = strlen(p);

	while (n > 1 && p[n - 1] == '/')
		p[--n] = '\0';
}

/*
 * The daemon chdirs to / when it daemonizes, so a relative path must be
 * resolved now, against the cwd of whoever started us. Lexical only: the
 * path may not exist yet, and ".." must keep its kernel meaning across
 * symlinks, so it is left for the kernel to resolve.
 */
static int make_absolute(const char *path, char **out)
{
	char cwd[PATH_MAX];
	char *abs;

	if (path[0] == '/') {
		abs = strdup(path);
	} else {
		if (!getcwd(cwd, sizeof(cwd)))
			return -errno;
		if (strcmp(path, ".") == 0)
			abs = strdup(cwd);
		else if (asprintf(&abs, "%s%s%s", cwd,
				  strcmp(cwd, "/") ? "/" : "",
				  strncmp(path, "./", 2) ? path : path + 2) < 0)
			abs = NULL;
	}
	if (!abs)
		return -ENOMEM;
	trim_trailing_slashes(abs);
	*out = abs;
	return 0;
}

/* /dev/fd/N: mount.fuse3 already opened /dev/fuse and mounted it for us. */
static bool is_fd_mountpoint(const char *p)
{
	const char *digits = p + strlen("/dev/fd/");

	if (strncmp(p, "/dev/fd/", strlen("/dev/fd/")) || !*digits)
		return false;
	return strspn(digits, "0123456789") == strlen(digits);
}

/* ---- lowerdir ------------------------------------------------------------ */

int nl_split_lowerdirs(const char *value, char ***out)
{
	char **dirs = NULL;
	size_t n = 0;
	size_t len = value ? strlen(value) : 0;
	char *cur = malloc(len + 1);
	size_t cl = 0;
	int rc = 0;

	*out = NULL;
	if (!cur)
		return -ENOMEM;
	if (len == 0) {
		rc = -EINVAL;
		goto out;
	}
	for (size_t i = 0; i <= len && rc == 0; i++) {
		char c = value[i];

		if (c == '\\' && (value[i + 1] == ':' || value[i + 1] == '\\')) {
			cur[cl++] = value[++i];
			continue;
		}
		if (c != ':' && c != '\0') {
			cur[cl++] = c;
			continue;
		}
		if (cl == 0) {
			rc = -EINVAL;
			break;
		}
		cur[cl] = '\0';
		rc = strv_push(&dirs, &n, cur);
		cl = 0;
	}
out:
	free(cur);
	if (rc < 0) {
		free_strv(dirs, n);
		return rc;
	}
	*out = dirs;
	return (int)n;
}

/* ---- id mappings --------------------------------------------------------- */

static int parse_id(const char *s, size_t len, unsigned int *id)
{
	unsigned long long v = 0;

	if (len == 0 || len > 10)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return -EINVAL;
	*id = (unsigned int)v;
	return 0;
}

/* Parse every number of @value into @ids; separators are ':' and ','. */
static int parse_id_list(const char *value, unsigned int **ids, size_t *n)
{
	size_t cap = strlen(value) / 2 + 1;
	unsigned int *v = calloc(cap, sizeof(*v));
	const char *p = value;
	size_t k = 0;

	if (!v)
		return -ENOMEM;
	for (;;) {
		size_t len = strcspn(p, ":,");

		if (k == cap || parse_id(p, len, &v[k]) < 0) {
			free(v);
			return -EINVAL;
		}
		k++;
		if (!p[len])
			break;
		p += len + 1;
	}
	*ids = v;
	*n = k;
	return 0;
}

int nl_parse_idmap(const char *value, struct nl_idmap **out)
{
	unsigned int *ids;
	struct nl_idmap *m;
	size_t n, entries;

	*out = NULL;
	if (!value || !*value || parse_id_list(value, &ids, &n) < 0)
		return -EINVAL;
	if (n % 3) {
		free(ids);
		return -EINVAL;
	}
	entries = n / 3;
	m = calloc(entries, sizeof(*m));
	if (!m) {
		free(ids);
		return -ENOMEM;
	}
	for (size_t i = 0; i < entries; i++) {
		/* fuse-overlayfs' order: the id as stored, then the id as
		 * shown, then the count. */
		m[i] = (struct nl_idmap){ .outer = ids[3 * i],
					  .inner = ids[3 * i + 1],
					  .count = ids[3 * i + 2] };
		/* An empty range or one that runs past the id space is a typo,
		 * not something to map silently to the overflow id. */
		if (m[i].count == 0 ||
		    (uint64_t)m[i].inner + m[i].count > (uint64_t)UINT32_MAX + 1 ||
		    (uint64_t)m[i].outer + m[i].count > (uint64_t)UINT32_MAX + 1) {
			free(ids);
			free(m);
			return -EINVAL;
		}
	}
	free(ids);
	*out = m;
	return (int)entries;
}

static bool in_range(unsigned int id, unsigned int first, unsigned int count)
{
	return id >= first && (uint64_t)id < (uint64_t)first + count;
}

/* No mapping at all means ids pass unchanged, as in fuse-overlayfs. */
unsigned int nl_idmap_to_outer(const struct nl_idmap *m, size_t n,
			       unsigned int inner)
{
	if (n == 0)
		return inner;
	for (size_t i = 0; i < n; i++)
		if (in_range(inner, m[i].inner, m[i].count))
			return m[i].outer + (inner - m[i].inner);
	return NL_OVERFLOW_ID;
}

unsigned int nl_idmap_to_inner(const struct nl_idmap *m, size_t n,
			       unsigned int outer)
{
	if (n == 0)
		return outer;
	for (size_t i = 0; i < n; i++)
		if (in_range(outer, m[i].outer, m[i].count))
			return m[i].inner + (outer - m[i].outer);
	return NL_OVERFLOW_ID;
}

/* ---- one -o option --------------------------------------------------------- */

static int set_path(char **slot, const char *key, const char *value,
		    char *err, size_t errlen)
{
	char *abs;
	int rc;

	if (!value || !*value)
		return fail(err, errlen, -EINVAL, "%s= needs a directory", key);
	rc = make_absolute(value, &abs);
	if (rc < 0)
		return fail(err, errlen, rc, "cannot resolve %s '%s': %s", key,
			    value, strerror(-rc));
	free(*slot);
	*slot = abs;
	return 0;
}

static int set_lowerdirs(struct nl_options *o, const char *value,
			 char *err, size_t errlen)
{
	char **dirs;
	int n = nl_split_lowerdirs(value, &dirs);

	if (n == -ENOMEM)
		return fail(err, errlen, n, "out of memory");
	if (n < 0 && (!value || !*value))
		return fail(err, errlen, -EINVAL,
			    "lowerdir= needs at least one directory");
	if (n < 0)
		return fail(err, errlen, -EINVAL,
			    "empty lowerdir component in '%s'", value);
	for (int i = 0; i < n; i++) {
		char *abs;
		int rc = make_absolute(dirs[i], &abs);

		if (rc < 0) {
			fail(err, errlen, rc, "cannot resolve lowerdir '%s': %s",
			     dirs[i], strerror(-rc));
			free_strv(dirs, (size_t)n);
			return rc;
		}
		free(dirs[i]);
		dirs[i] = abs;
	}
	/* A later lowerdir= replaces an earlier one, as with every option. */
	free_strv(o->lowerdirs, o->n_lower);
	o->lowerdirs = dirs;
	o->n_lower = (size_t)n;
	return 0;
}

static int set_idmap(struct nl_idmap **map, size_t *n, const char *key,
		     const char *value, char *err, size_t errlen)
{
	struct nl_idmap *m;
	int rc = nl_parse_idmap(value, &m);

	if (rc == -ENOMEM)
		return fail(err, errlen, rc, "out of memory");
	if (rc < 0)
		return fail(err, errlen, -EINVAL,
			    "malformed %s '%s': expected stored:shown:count triples "
			    "with count > 0", key, value ? value : "");
	free(*map);
	*map = m;
	*n = (size_t)rc;
	return 0;
}

static int set_id(long *slot, const char *key, const char *value,
		  char *err, size_t errlen)
{
	unsigned int id;

	if (!value || parse_id(value, strlen(value), &id) < 0)
		return fail(err, errlen, -EINVAL, "%s: invalid id '%s'", key,
			    value ? value : "");
	*slot = (long)id;
	return 0;
}

static int set_bool01(bool *slot, const char *key, const char *value,
		      bool bare, char *err, size_t errlen)
{
	if (!value) {
		*slot = bare;
		return 0;
	}
	if (strcmp(value, "0") && strcmp(value, "1"))
		return fail(err, errlen, -EINVAL, "%s= must be 0 or 1, not '%s'",
			    key, value);
	*slot = value[0] == '1';
	return 0;
}

static int set_timeout(struct nl_options *o, const char *value,
		       char *err, size_t errlen)
{
	char *end;
	double t;

	if (!value || !*value)
		return fail(err, errlen, -EINVAL, "timeout= needs a number of seconds");
	errno = 0;
	t = strtod(value, &end);
	if (errno || *end || !isfinite(t) || t < 0)
		return fail(err, errlen, -EINVAL,
			    "timeout: invalid number of seconds '%s'", value);
	o->timeout = t;
	o->timeout_set = true;
	return 0;
}

/* One option as given: the whole text, its name and its value (NULL for
 * a bare flag). */
struct nl_opt_in {
	const char *text;
	const char *key;
	const char *value;
};

typedef int nl_opt_set(struct nl_options *o, const struct nl_opt_in *in,
		       char *err, size_t errlen);

static int opt_lowerdir(struct nl_options *o, const struct nl_opt_in *in,
			char *err, size_t errlen)
{
	return set_lowerdirs(o, in->value, err, errlen);
}

static int opt_upperdir(struct nl_options *o, const struct nl_opt_in *in,
			char *err, size_t errlen)
{
	return set_path(&o->upperdir, in->key, in->value, err, errlen);
}

static int opt_workdir(struct nl_options *o, const struct nl_opt_in *in,
		       char *err, size_t errlen)
{
	return set_path(&o->workdir, in->key, in->value, err, errlen);
}

static int opt_uidmapping(struct nl_options *o, const struct nl_opt_in *in,
			  char *err, size_t errlen)
{
	return set_idmap(&o->uidmap, &o->n_uidmap, in->key, in->value, err, errlen);
}

static int opt_gidmapping(struct nl_options *o, const struct nl_opt_in *in,
			  char *err, size_t errlen)
{
	return set_idmap(&o->gidmap, &o->n_gidmap, in->key, in->value, err, errlen);
}

static int opt_squash_uid(struct nl_options *o, const struct nl_opt_in *in,
			  char *err, size_t errlen)
{
	return set_id(&o->squash_to_uid, in->key, in->value, err, errlen);
}

static int opt_squash_gid(struct nl_options *o, const struct nl_opt_in *in,
			  char *err, size_t errlen)
{
	return set_id(&o->squash_to_gid, in->key, in->value, err, errlen);
}

static int opt_squash_root(struct nl_options *o, const struct nl_opt_in *in,
			   char *err, size_t errlen)
{
	return set_bool01(&o->squash_to_root, in->key, in->value, true, err, errlen);
}

static int opt_static_nlink(struct nl_options *o, const struct nl_opt_in *in,
			    char *err, size_t errlen)
{
	return set_bool01(&o->static_nlink, in->key, in->value, true, err, errlen);
}

static int opt_noxattrs(struct nl_options *o, const struct nl_opt_in *in,
			char *err, size_t errlen)
{
	return set_bool01(&o->noxattrs, in->key, in->value, true, err, errlen);
}

static int opt_fsync(struct nl_options *o, const struct nl_opt_in *in,
		     char *err, size_t errlen)
{
	return set_bool01(&o->fsync, in->key, in->value, true, err, errlen);
}

static int opt_timeout(struct nl_options *o, const struct nl_opt_in *in,
		       char *err, size_t errlen)
{
	return set_timeout(o, in->value, err, errlen);
}

/* overlayfs' name for "do not sync" */
static int opt_volatile(struct nl_options *o, const struct nl_opt_in *in,
			char *err, size_t errlen)
{
	(void)in, (void)err, (void)errlen;
	o->fsync = false;
	return 0;
}

static int opt_debug(struct nl_options *o, const struct nl_opt_in *in,
		     char *err, size_t errlen)
{
	(void)in, (void)err, (void)errlen;
	o->debug = o->foreground = true;
	return 0;
}

static int pass_to_fuse(struct nl_options *o, const struct nl_opt_in *in,
			char *err, size_t errlen)
{
	const char *key = in->key;

	if (strcmp(key, "ro") == 0)
		o->ro = true;
	else if (strcmp(key, "rw") == 0)
		o->ro = false;
	else if (strcmp(key, "allow_other") == 0)
		o->allow_other = true;
	else if (strcmp(key, "default_permissions") == 0)
		o->default_permissions = true;
	else if (strcmp(key, "nosuid") == 0)
		o->nosuid = true;
	else if (strcmp(key, "suid") == 0)
		o->nosuid = false;
	if (list_append_escaped(&o->fuse_opts, in->text) < 0)
		return fail(err, errlen, -ENOMEM, "out of memory");
	return 0;
}

/* Kept as "key=value" for the part of the daemon that owns the option. */
static int keep_extra(struct nl_options *o, const struct nl_opt_in *in,
		      char *err, size_t errlen)
{
	if (strv_push(&o->extra, &o->n_extra, in->text) < 0)
		return fail(err, errlen, -ENOMEM, "out of memory");
	return 0;
}

/* mount(8) consumes these itself; they still reach us when a caller runs
 * the daemon directly, and libfuse would refuse them. */
static int drop_quietly(struct nl_options *o, const struct nl_opt_in *in,
			char *err, size_t errlen)
{
	(void)o, (void)in, (void)err, (void)errlen;
	return 0;
}

/* Options of fuse-overlayfs or of the kernel overlay that callers pass for
 * those (containers/storage adds some from storage.conf): refusing them
 * would break the drop-in, but their effect does not exist here. */
static int drop_noted(struct nl_options *o, const struct nl_opt_in *in,
		      char *err, size_t errlen)
{
	(void)o, (void)err, (void)errlen;
	fprintf(stderr, "nlayerfs: note: option '%s' has no effect in nlayerfs\n",
		in->text);
	return 0;
}

enum nl_opt_arg {
	NL_FLAG,	/* "name" only */
	NL_VALUE,	/* "name=value" only */
	NL_EITHER,	/* the setter decides */
};

/*
 * Every option name the daemon accepts, and what becomes of it. The
 * tiering keys are not listed: tier_config_has_key() knows them. The
 * request loop settings (max_threads=, max_idle_threads=, clone_fd) are
 * kept in @extra: libfuse takes them through its loop configuration, and
 * would refuse them as mount options.
 */
static const struct nl_optdef {
	const char *name;
	enum nl_opt_arg arg;
	nl_opt_set *set;
} nl_optdefs[] = {
	/* The union mount, with fuse-overlayfs' meaning. */
	{ "lowerdir", NL_EITHER, opt_lowerdir },
	{ "upperdir", NL_EITHER, opt_upperdir },
	{ "workdir", NL_EITHER, opt_workdir },
	{ "uidmapping", NL_EITHER, opt_uidmapping },
	{ "gidmapping", NL_EITHER, opt_gidmapping },
	{ "squash_to_uid", NL_EITHER, opt_squash_uid },
	{ "squash_to_gid", NL_EITHER, opt_squash_gid },
	{ "squash_to_root", NL_EITHER, opt_squash_root },
	{ "static_nlink", NL_EITHER, opt_static_nlink },
	{ "noxattrs", NL_EITHER, opt_noxattrs },
	{ "fsync", NL_EITHER, opt_fsync },
	{ "timeout", NL_EITHER, opt_timeout },
	{ "volatile", NL_FLAG, opt_volatile },
	{ "debug", NL_FLAG, opt_debug },
	/* Image names, the config file, the checkpoint mount (fs/ckpt.c). */
	{ "image", NL_VALUE, keep_extra },
	{ "config", NL_VALUE, keep_extra },
	{ "zns", NL_VALUE, keep_extra },
	{ "meta", NL_VALUE, keep_extra },
	{ "zone_bw", NL_VALUE, keep_extra },
	{ "stripe_unit", NL_VALUE, keep_extra },
	{ "bandwidth", NL_VALUE, keep_extra },
	{ "admission", NL_VALUE, keep_extra },
	{ "channels", NL_VALUE, keep_extra },
	{ "ways", NL_VALUE, keep_extra },
	{ "force_new_pool", NL_FLAG, keep_extra },
	/* The request loop (fs/main.c). */
	{ "max_threads", NL_VALUE, keep_extra },
	{ "max_idle_threads", NL_VALUE, keep_extra },
	{ "clone_fd", NL_FLAG, keep_extra },
	/* libfuse and the kernel's mount flags. */
	{ "allow_other", NL_FLAG, pass_to_fuse },
	{ "allow_root", NL_FLAG, pass_to_fuse },
	{ "default_permissions", NL_FLAG, pass_to_fuse },
	{ "auto_unmount", NL_FLAG, pass_to_fuse },
	{ "blkdev", NL_FLAG, pass_to_fuse },
	{ "ro", NL_FLAG, pass_to_fuse },
	{ "rw", NL_FLAG, pass_to_fuse },
	{ "dev", NL_FLAG, pass_to_fuse },
	{ "nodev", NL_FLAG, pass_to_fuse },
	{ "suid", NL_FLAG, pass_to_fuse },
	{ "nosuid", NL_FLAG, pass_to_fuse },
	{ "exec", NL_FLAG, pass_to_fuse },
	{ "noexec", NL_FLAG, pass_to_fuse },
	{ "sync", NL_FLAG, pass_to_fuse },
	{ "async", NL_FLAG, pass_to_fuse },
	{ "dirsync", NL_FLAG, pass_to_fuse },
	{ "atime", NL_FLAG, pass_to_fuse },
	{ "noatime", NL_FLAG, pass_to_fuse },
	{ "diratime", NL_FLAG, pass_to_fuse },
	{ "nodiratime", NL_FLAG, pass_to_fuse },
	{ "relatime", NL_FLAG, pass_to_fuse },
	{ "norelatime", NL_FLAG, pass_to_fuse },
	{ "strictatime", NL_FLAG, pass_to_fuse },
	{ "nostrictatime", NL_FLAG, pass_to_fuse },
	{ "lazytime", NL_FLAG, pass_to_fuse },
	{ "nolazytime", NL_FLAG, pass_to_fuse },
	{ "max_read", NL_VALUE, pass_to_fuse },
	{ "fsname", NL_VALUE, pass_to_fuse },
	{ "subtype", NL_VALUE, pass_to_fuse },
	{ "blksize", NL_VALUE, pass_to_fuse },
	{ "context", NL_VALUE, pass_to_fuse },
	{ "fscontext", NL_VALUE, pass_to_fuse },
	{ "defcontext", NL_VALUE, pass_to_fuse },
	{ "rootcontext", NL_VALUE, pass_to_fuse },
	/* mount(8)'s own. */
	{ "defaults", NL_FLAG, drop_quietly },
	{ "auto", NL_FLAG, drop_quietly },
	{ "noauto", NL_FLAG, drop_quietly },
	{ "user", NL_EITHER, drop_quietly },
	{ "nouser", NL_FLAG, drop_quietly },
	{ "users", NL_FLAG, drop_quietly },
	{ "owner", NL_FLAG, drop_quietly },
	{ "group", NL_FLAG, drop_quietly },
	{ "nofail", NL_FLAG, drop_quietly },
	{ "_netdev", NL_FLAG, drop_quietly },
	{ "remount", NL_FLAG, drop_quietly },
	{ "bind", NL_FLAG, drop_quietly },
	{ "loop", NL_EITHER, drop_quietly },
	{ "comment", NL_VALUE, drop_quietly },
	/* fuse-overlayfs' tuning knobs and the kernel overlay's features. */
	{ "threaded", NL_VALUE, drop_noted },
	{ "fast_ino", NL_VALUE, drop_noted },
	{ "plugins", NL_VALUE, drop_noted },
	{ "xattr_permissions", NL_VALUE, drop_noted },
	{ "ino32_t", NL_FLAG, drop_noted },
	{ "noacl", NL_FLAG, drop_noted },
	{ "splice_write", NL_FLAG, drop_noted },
	{ "splice_read", NL_FLAG, drop_noted },
	{ "splice_move", NL_FLAG, drop_noted },
	{ "kernel_cache", NL_FLAG, drop_noted },
	{ "max_write", NL_EITHER, drop_noted },
	{ "xino", NL_VALUE, drop_noted },
	{ "redirect_dir", NL_VALUE, drop_noted },
	{ "metacopy", NL_VALUE, drop_noted },
	{ "index", NL_VALUE, drop_noted },
	{ "nfs_export", NL_VALUE, drop_noted },
	{ "userxattr", NL_FLAG, drop_noted },
	{ "uuid", NL_VALUE, drop_noted },
};

static const struct nl_optdef tier_optdef = { "(tiering)", NL_VALUE, keep_extra };
static const struct nl_optdef mount_x_optdef = { "x-*", NL_EITHER, drop_quietly };

static const struct nl_optdef *find_optdef(const char *key)
{
	for (size_t i = 0; i < sizeof(nl_optdefs) / sizeof(nl_optdefs[0]); i++)
		if (strcmp(nl_optdefs[i].name, key) == 0)
			return &nl_optdefs[i];
	if (tier_config_has_key(key))
		return &tier_optdef;
	/* mount(8) and systemd keep "x-" options for user space tools. */
	if (strncmp(key, "x-", 2) == 0)
		return &mount_x_optdef;
	return NULL;
}

/* Apply one option "key" or "key=value" (already unescaped). */
static int apply_option(struct nl_options *o, const char *opt,
			char *err, size_t errlen)
{
	const char *eq = strchr(opt, '=');
	char *key = strndup(opt, eq ? (size_t)(eq - opt) : strlen(opt));
	struct nl_opt_in in = { opt, key, eq ? eq + 1 : NULL };
	const struct nl_optdef *def;
	int rc;

	if (!key)
		return fail(err, errlen, -ENOMEM, "out of memory");
	def = find_optdef(key);
	/* A misspelt upperdir= would otherwise give a read-only mount that
	 * looks as if it worked. */
	if (!def)
		rc = fail(err, errlen, -EINVAL,
			  "unknown option '%s': check its spelling (nlayerfs --help "
			  "lists every option)", opt);
	else if (def->arg == NL_FLAG && in.value)
		rc = fail(err, errlen, -EINVAL,
			  "option '%s' takes no value: write '%s' alone", opt, key);
	else if (def->arg == NL_VALUE && !in.value)
		rc = fail(err, errlen, -EINVAL,
			  "option '%s' needs a value: write '%s=VALUE'", opt, key);
	else
		rc = def->set(o, &in, err, errlen);
	free(key);
	return rc;
}

int nl_options_parse_string(const char *opts, struct nl_options *o,
			    char *err, size_t errlen)
{
	size_t len = strlen(opts);
	char *cur = malloc(len + 1);
	size_t cl = 0;
	int rc = 0;

	if (!cur)
		return fail(err, errlen, -ENOMEM, "out of memory");
	for (size_t i = 0; i <= len && rc == 0; i++) {
		/* Only "\," is unescaped here: "\:" must survive for the
		 * lowerdir splitter. */
		if (opts[i] == '\\' && opts[i + 1] == ',') {
			cur[cl++] = opts[++i];
			continue;
		}
		if (opts[i] != ',' && opts[i] != '\0') {
			cur[cl++] = opts[i];
			continue;
		}
		cur[cl] = '\0';
		if (cl)
			rc = apply_option(o, cur, err, errlen);
		cl = 0;
	}
	free(cur);
	return rc;
}

/* ---- the command line ---------------------------------------------------- */

static void set_defaults(struct nl_options *o)
{
	memset(o, 0, sizeof(*o));
	o->squash_to_uid = -1;
	o->squash_to_gid = -1;
	o->fsync = true;
	o->timeout = NL_DEFAULT_TIMEOUT;
}

/*
 * SOURCE MOUNTPOINT: the first word is only a label (mount.fuse3 passes the
 * device field of fstab), so it is kept as given, not made absolute.
 */
static int take_positionals(struct nl_options *o, char **pos, size_t n,
			    char *err, size_t errlen)
{
	if (n == 0)
		return 0;
	if (n > 2)
		return fail(err, errlen, -EINVAL,
			    "too many arguments: '%s' (expected [SOURCE] MOUNTPOINT)",
			    pos[2]);
	if (n == 2) {
		o->source = strdup(pos[0]);
		if (!o->source)
			return fail(err, errlen, -ENOMEM, "out of memory");
	}
	if (is_fd_mountpoint(pos[n - 1])) {
		o->mountpoint = strdup(pos[n - 1]);
		return o->mountpoint ? 0 : fail(err, errlen, -ENOMEM, "out of memory");
	}
	return set_path(&o->mountpoint, "mountpoint", pos[n - 1], err, errlen);
}

static bool lowerdir_optional(const struct nl_options *o)
{
	/* zns= selects the checkpoint mount; image= names its layers. */
	return nl_options_extra(o, "zns") || nl_options_extra(o, "image");
}

static int check_required(const struct nl_options *o, char *err, size_t errlen)
{
	if (o->show_help || o->show_version)
		return 0;
	if (!o->mountpoint)
		return fail(err, errlen, -EINVAL, "no mountpoint given");
	if (o->n_lower == 0 && !lowerdir_optional(o))
		return fail(err, errlen, -EINVAL, "lowerdir is required");
	if (o->upperdir && !o->workdir)
		return fail(err, errlen, -EINVAL,
			    "workdir= is required with upperdir=");
	return 0;
}

/* Handle one argument starting with '-'; *@i advances past any value. */
static int parse_dash_arg(struct nl_options *o, int argc, char **argv, int *i,
			  char *err, size_t errlen)
{
	const char *a = argv[*i];

	if (strcmp(a, "-o") == 0) {
		if (*i + 1 >= argc)
			return fail(err, errlen, -EINVAL, "option -o needs an argument");
		return nl_options_parse_string(argv[++*i], o, err, errlen);
	}
	if (strncmp(a, "-o", 2) == 0)
		return nl_options_parse_string(a + 2, o, err, errlen);
	if (strcmp(a, "-f") == 0)
		o->foreground = true;
	else if (strcmp(a, "-d") == 0 || strcmp(a, "--debug") == 0)
		o->debug = o->foreground = true;
	else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
		o->show_help = true;
	else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0)
		o->show_version = true;
	else if (strcmp(a, "-s") == 0)
		; /* single-threaded: the loop is always multi-threaded */
	else
		fprintf(stderr, "nlayerfs: warning: unknown argument '%s' ignored\n", a);
	return 0;
}

int nl_options_parse(int argc, char **argv, struct nl_options *o,
		     char *err, size_t errlen)
{
	char **pos = calloc((size_t)(argc > 0 ? argc : 1), sizeof(*pos));
	size_t npos = 0;
	bool dashdash = false;
	int rc = 0;

	set_defaults(o);
	if (err && errlen)
		err[0] = '\0';
	if (!pos)
		return fail(err, errlen, -ENOMEM, "out of memory");
	for (int i = 1; i < argc && rc == 0; i++) {
		if (!dashdash && strcmp(argv[i], "--") == 0)
			dashdash = true;
		else if (!dashdash && argv[i][0] == '-' && argv[i][1])
			rc = parse_dash_arg(o, argc, argv, &i, err, errlen);
		else
			pos[npos++] = argv[i];
	}
	if (rc == 0)
		rc = take_positionals(o, pos, npos, err, errlen);
	free(pos);
	if (rc == 0)
		rc = check_required(o, err, errlen);
	if (rc < 0) {
		/* Nothing half-parsed for the caller to act on or to free. */
		nl_options_free(o);
		return rc;
	}
	return 0;
}

const char *nl_options_extra(const struct nl_options *o, const char *key)
{
	size_t klen = strlen(key);

	/* The last occurrence wins, as for every other option. */
	for (size_t i = o->n_extra; i-- > 0;) {
		const char *e = o->extra[i];

		if (strncmp(e, key, klen) == 0 && (e[klen] == '=' || !e[klen]))
			return e[klen] == '=' ? e + klen + 1 : "";
	}
	return NULL;
}

void nl_options_free(struct nl_options *o)
{
	free_strv(o->lowerdirs, o->n_lower);
	free(o->upperdir);
	free(o->workdir);
	free(o->mountpoint);
	free(o->source);
	free(o->uidmap);
	free(o->gidmap);
	free(o->fuse_opts);
	free_strv(o->extra, o->n_extra);
	memset(o, 0, sizeof(*o));
}

/* ---- checks against the file system ------------------------------------- */

/* stat @path and require a directory that the caller may use with @mode
 * (0: existence only). @role names it in messages. */
static int check_dir(const char *role, const char *path, int mode,
		     struct stat *st, char *err, size_t errlen)
{
	int e;

	if (stat(path, st) < 0) {
		e = errno;
		if (e == ENOENT)
			return fail(err, errlen, -e, "%s %s does not exist", role, path);
		return fail(err, errlen, -e, "cannot access %s %s: %s", role, path,
			    strerror(e));
	}
	if (!S_ISDIR(st->st_mode))
		return fail(err, errlen, -ENOTDIR, "%s %s is not a directory",
			    role, path);
	if (mode && faccessat(AT_FDCWD, path, mode, AT_EACCESS) < 0) {
		e = errno;
		return fail(err, errlen, -e, "%s %s is not %s: %s", role, path,
			    (mode & W_OK) ? "writable" : "readable and searchable",
			    strerror(e));
	}
	return 0;
}

/* true when @inner is @outer or lies below it; both canonical */
static bool path_within(const char *inner, const char *outer)
{
	size_t n = strlen(outer);

	if (strcmp(outer, "/") == 0)
		return true;
	return strncmp(inner, outer, n) == 0 &&
	       (inner[n] == '/' || inner[n] == '\0');
}

static int check_separate(const char *upper, const char *work,
			  char *err, size_t errlen)
{
	char *u = realpath(upper, NULL);
	char *w = realpath(work, NULL);
	int rc = 0;

	if (!u || !w)
		rc = fail(err, errlen, -errno, "cannot resolve upperdir/workdir: %s",
			  strerror(errno));
	else if (strcmp(u, w) == 0)
		rc = fail(err, errlen, -EINVAL,
			  "upperdir and workdir must be different directories (both %s)",
			  u);
	else if (path_within(w, u))
		rc = fail(err, errlen, -EINVAL,
			  "workdir %s is inside upperdir %s: they must be separate",
			  work, upper);
	else if (path_within(u, w))
		rc = fail(err, errlen, -EINVAL,
			  "upperdir %s is inside workdir %s: they must be separate",
			  upper, work);
	free(u);
	free(w);
	return rc;
}

/*
 * A lower layer that is, holds or lies in upperdir or workdir would see
 * the mount's own writes (whiteouts written into a lower layer, a tree
 * that shows itself): refused, as the kernel overlayfs refuses it.
 */
static int check_lower_apart(const char *lower, const char *role, const char *dir,
			     char *err, size_t errlen)
{
	char *l = realpath(lower, NULL);
	char *d = realpath(dir, NULL);
	int rc = 0;

	if (!l || !d)
		rc = fail(err, errlen, -errno, "cannot resolve lowerdir %s or %s %s: %s",
			  lower, role, dir, strerror(errno));
	else if (path_within(l, d) || path_within(d, l))
		rc = fail(err, errlen, -EINVAL,
			  "lowerdir %s and %s %s overlap (%s): each layer needs a "
			  "directory of its own", lower, role, dir,
			  strcmp(l, d) == 0 ? "the same directory" :
			  path_within(l, d) ? "the lowerdir is inside it" :
					      "it is inside the lowerdir");
	free(l);
	free(d);
	return rc;
}

static int check_lowers_apart(const struct nl_options *o, char *err, size_t errlen)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < o->n_lower; i++) {
		rc = check_lower_apart(o->lowerdirs[i], "upperdir", o->upperdir, err, errlen);
		if (rc == 0)
			rc = check_lower_apart(o->lowerdirs[i], "workdir", o->workdir, err,
					       errlen);
	}
	return rc;
}

static int check_upper_work(const struct nl_options *o, char *err, size_t errlen)
{
	struct stat su, sw;
	int rc;

	rc = check_dir("upperdir", o->upperdir, R_OK | W_OK | X_OK, &su, err, errlen);
	if (rc == 0)
		rc = check_dir("workdir", o->workdir, R_OK | W_OK | X_OK, &sw, err,
			       errlen);
	if (rc < 0)
		return rc;
	/* Copy-up renames from workdir into upperdir, which needs one fs. */
	if (su.st_dev != sw.st_dev)
		return fail(err, errlen, -EXDEV,
			    "workdir %s is not on the same file system as upperdir %s",
			    o->workdir, o->upperdir);
	return check_separate(o->upperdir, o->workdir, err, errlen);
}

/* Undo the octal escapes (\040 for a space, ...) of /proc/self/mountinfo. */
static void unescape_mountinfo(char *s)
{
	char *d = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
				      (s[3] - '0'));
			s += 3;
		} else {
			*d++ = *s;
		}
	}
	*d = '\0';
}

/* The mount point field (the fifth) of one mountinfo line, or NULL. */
static char *mountinfo_target(char *line)
{
	char *save = NULL;
	char *f = strtok_r(line, " ", &save);

	for (int i = 0; f && i < 4; i++)
		f = strtok_r(NULL, " ", &save);
	if (f)
		unescape_mountinfo(f);
	return f;
}

/* Without /proc: a mount point's device differs from its parent's, or it
 * is its own parent (the root). */
static bool busy_by_parent(const char *path, const struct stat *st)
{
	struct stat parent;
	char *up;
	bool busy = false;

	if (asprintf(&up, "%s/..", path) < 0)
		return false;
	if (stat(up, &parent) == 0)
		busy = parent.st_dev != st->st_dev || parent.st_ino == st->st_ino;
	free(up);
	return busy;
}

static bool is_mount_point(const char *path, const struct stat *st)
{
	char *canon = realpath(path, NULL);
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	bool busy = false;

	if (!f || !canon) {
		busy = busy_by_parent(path, st);
	} else {
		while (!busy && getline(&line, &cap, f) > 0) {
			const char *target = mountinfo_target(line);

			busy = target && strcmp(target, canon) == 0;
		}
	}
	if (f)
		fclose(f);
	free(line);
	free(canon);
	return busy;
}

static int check_mountpoint(const char *mp, char *err, size_t errlen)
{
	struct stat st;
	int rc;

	if (is_fd_mountpoint(mp))
		return 0;
	rc = check_dir("mountpoint", mp, 0, &st, err, errlen);
	if (rc < 0)
		return rc;
	if (is_mount_point(mp, &st))
		return fail(err, errlen, -EBUSY,
			    "mountpoint %s is busy: something is already mounted there",
			    mp);
	return 0;
}

int nl_options_validate(const struct nl_options *o, char *err, size_t errlen)
{
	struct stat st;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	for (size_t i = 0; i < o->n_lower; i++) {
		rc = check_dir("lowerdir", o->lowerdirs[i], R_OK | X_OK, &st, err,
			       errlen);
		if (rc < 0)
			return rc;
	}
	if (o->upperdir) {
		if (!o->workdir)
			return fail(err, errlen, -EINVAL,
				    "workdir= is required with upperdir=");
		rc = check_upper_work(o, err, errlen);
		if (rc == 0)
			rc = check_lowers_apart(o, err, errlen);
		if (rc < 0)
			return rc;
	}
	if (!o->mountpoint)
		return fail(err, errlen, -EINVAL, "no mountpoint given");
	return check_mountpoint(o->mountpoint, err, errlen);
}

/* ---- --help -------------------------------------------------------------- */

void nl_options_usage(FILE *out, const char *progname)
{
	fprintf(out,
"usage: %s [-f] [-d] -o lowerdir=DIR[:DIR...][,upperdir=DIR,workdir=DIR][,OPT...] MOUNTPOINT\n"
"       %s SOURCE MOUNTPOINT -o OPTS      (as run by mount -t fuse.nlayerfs)\n"
"       %s -o zns=DEVICE,meta=DIR[,...] MOUNTPOINT   (checkpoint mount)\n"
"\n"
"General:\n"
"  -h, --help              print this help and exit\n"
"  -V, --version           print the version and exit\n"
"  -f                      stay in the foreground\n"
"  -d, --debug, -o debug   print every request (implies -f)\n"
"  -o OPT[,OPT...]         mount options, may be given several times\n"
"\n"
"Union mount (fuse-overlayfs compatible):\n"
"  lowerdir=A:B:C          read-only layers, leftmost is topmost; \\: is a\n"
"                          literal colon, \\, a literal comma\n"
"  upperdir=DIR            writable layer; without it the mount is read-only\n"
"  workdir=DIR             scratch directory on upperdir's file system,\n"
"                          required with upperdir\n"
"  squash_to_root          every file appears owned by root\n"
"  squash_to_uid=UID       every file appears owned by UID\n"
"  squash_to_gid=GID       every file appears owned by group GID\n"
"  uidmapping=STORED:SHOWN:N[:...]\n"
"  gidmapping=STORED:SHOWN:N[:...]\n"
"                          ids STORED..STORED+N-1 in the layers show as\n"
"                          SHOWN..SHOWN+N-1 in the mount (and are written\n"
"                          back so); unmapped ids show as 65534. The order\n"
"                          of fuse-overlayfs and podman: CONTAINER_ID:HOST_ID:N\n"
"  static_nlink            directories report a link count of 1\n"
"  noxattrs=0|1            1: extended attributes are not supported (default 0)\n"
"  fsync=0|1               0: fsync does nothing (default 1); volatile = fsync=0\n"
"  timeout=SECONDS         kernel cache timeout for entries and attributes\n"
"                          (default %.0f)\n"
"\n"
"Passed to FUSE and the kernel: allow_other, allow_root, default_permissions,\n"
"  auto_unmount, ro, rw, dev, nodev, suid, nosuid, exec, noexec, sync, async,\n"
"  dirsync, atime, noatime, relatime, strictatime, lazytime (and their no*\n"
"  forms), max_read=, fsname=, subtype=, blksize=, context= and friends.\n"
"\nRequest loop: max_threads=N, max_idle_threads=N, clone_fd.\n"
"\n"
"Tiering:\n"
"  nvm=DIR                 NVM tier: promoted copies and the index\n"
"  nvm_size=SIZE           NVM budget, with K/M/G/T suffixes; 0 is unlimited\n"
"  hdd=DIR                 HDD tier\n"
"  trace=on|off            record the first opens of a cold start\n"
"  trace_window=SECONDS    the longest a start is traced after its mount\n"
"  trace_quiet=SECONDS     a start without new first opens this long is over\n"
"  host_idle=SECONDS       the tier service exits after this long unused\n"
"  promote=on|off          copy hot files to NVM in the background\n"
"  range_threshold=SIZE    bigger files: only the ranges read go to NVM\n"
"  range_unit=SIZE         granularity of those ranges\n"
"  range_slack=SIZE        also copied after each range (half before)\n"
"  layer_meta=on|off       HDD layers' metadata answered from NVM images\n"
"  writeback=on|off        copy cold files of NVM layers to HDD after a trace\n"
"  image=NAME              mount an imported image by name (no lowerdir)\n"
"  config=FILE             defaults file (default %s/nlayerfs.conf)\n"
"\n"
"Checkpoint mount (zoned storage):\n"
"  zns=DEVICE|FILE         zoned block device or emulated device file\n"
"  meta=DIR                metadata pool directory (on the NVM tier)\n"
"  zone_bw=RATE            write bandwidth of one zone group\n"
"  stripe_unit=SIZE        striping unit\n"
"  channels=N,ways=N       independent groups of a real device (it does not tell)\n"
"  bandwidth=RATE          default bandwidth a tenant asks for\n"
"  admission=fair|strict   when groups run out: share fairly, or refuse\n"
"  force_new_pool          a new meta= pool takes a device that holds data (resets it)\n"
"\n"
"Any key of nlayerfs.conf(5) is also a mount option. An unknown option stops\n"
"the mount with a message naming it; options of mount(8) (defaults, noauto,\n"
"x-*, ...) are dropped, and fuse-overlayfs' or the kernel overlay's tuning\n"
"options (threaded=, xino=, redirect_dir=, metacopy=, userxattr, ...) are\n"
"accepted with a note that they have no effect.\n",
		progname, progname, progname, NL_DEFAULT_TIMEOUT,
		NLAYERFS_SYSCONFDIR);
}
