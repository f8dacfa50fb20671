/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Command line and -o option parsing, and the pre-mount checks.
 *
 * Parsing is pure string work (plus getcwd to make paths absolute);
 * nl_options_validate is the only part that looks at the file system, and
 * it only looks.
 */
#include "fs/options.h"

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

/* Options handed to libfuse unchanged (flags, then "name=value" ones). */
static const char *const fuse_flag_opts[] = {
	"allow_other", "allow_root", "default_permissions", "auto_unmount",
	"blkdev", "ro", "rw", "dev", "nodev", "suid", "nosuid", "exec",
	"noexec", "sync", "async", "dirsync", "atime", "noatime", "diratime",
	"nodiratime", "relatime", "norelatime", "strictatime",
	"nostrictatime", "lazytime", "nolazytime", NULL
};
static const char *const fuse_value_opts[] = {
	"max_read", "fsname", "subtype", "blksize", "context", "fscontext",
	"defcontext", "rootcontext", NULL
};

/* Options that mount(8) consumes itself; they may still reach us when a
 * caller runs the daemon directly, and libfuse would refuse them. */
static const char *const mount_only_opts[] = {
	"defaults", "auto", "noauto", "user", "nouser", "users", "owner",
	"group", "nofail", "_netdev", "remount", "bind", "loop", NULL
};

/*
 * Options of the tiering and zoned-checkpoint parts, kept for them; and the
 * request loop's settings, which fuse-overlayfs accepts but which libfuse
 * takes through its loop configuration, not with the mount options.
 */
static const char *const extra_opts[] = {
	"nvm", "nvm_size", "hdd", "trace", "trace_window", "promote",
	"range_threshold", "range_unit", "range_slack", "layer_meta", "writeback",
	"config", "image", "zns", "meta", "zone_bw", "stripe_unit",
	"bandwidth", "admission", "channels", "ways", "max_threads", "max_idle_threads",
	"clone_fd", "force_new_pool", NULL
};

static bool in_list(const char *const *list, const char *key)
{
	for (; *list; list++)
		if (strcmp(*list, key) == 0)
			return true;
	return false;
}

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

static int pass_to_fuse(struct nl_options *o, const char *opt, const char *key)
{
	if (strcmp(key, "ro") == 0)
		o->ro = true;
	else if (strcmp(key, "rw") == 0)
		o->ro = false;
	else if (strcmp(key, "allow_other") == 0)
		o->allow_other = true;
	else if (strcmp(key, "default_permissions") == 0)
		o->default_permissions = true;
	return list_append_escaped(&o->fuse_opts, opt);
}

/* The options nlayerfs itself interprets; returns 1 when @key is not one. */
static int apply_union_option(struct nl_options *o, const char *key,
			      const char *value, char *err, size_t errlen)
{
	if (strcmp(key, "lowerdir") == 0)
		return set_lowerdirs(o, value, err, errlen);
	if (strcmp(key, "upperdir") == 0)
		return set_path(&o->upperdir, key, value, err, errlen);
	if (strcmp(key, "workdir") == 0)
		return set_path(&o->workdir, key, value, err, errlen);
	if (strcmp(key, "uidmapping") == 0)
		return set_idmap(&o->uidmap, &o->n_uidmap, key, value, err, errlen);
	if (strcmp(key, "gidmapping") == 0)
		return set_idmap(&o->gidmap, &o->n_gidmap, key, value, err, errlen);
	if (strcmp(key, "squash_to_uid") == 0)
		return set_id(&o->squash_to_uid, key, value, err, errlen);
	if (strcmp(key, "squash_to_gid") == 0)
		return set_id(&o->squash_to_gid, key, value, err, errlen);
	if (strcmp(key, "squash_to_root") == 0)
		return set_bool01(&o->squash_to_root, key, value, true, err, errlen);
	if (strcmp(key, "static_nlink") == 0)
		return set_bool01(&o->static_nlink, key, value, true, err, errlen);
	if (strcmp(key, "noxattrs") == 0)
		return set_bool01(&o->noxattrs, key, value, true, err, errlen);
	if (strcmp(key, "fsync") == 0)
		return set_bool01(&o->fsync, key, value, true, err, errlen);
	if (strcmp(key, "timeout") == 0)
		return set_timeout(o, value, err, errlen);
	if (strcmp(key, "volatile") == 0 && !value) {
		/* overlayfs' name for "do not sync" */
		o->fsync = false;
		return 0;
	}
	if (strcmp(key, "debug") == 0 && !value) {
		o->debug = o->foreground = true;
		return 0;
	}
	return 1;
}

/* Apply one option "key" or "key=value" (already unescaped). */
static int apply_option(struct nl_options *o, const char *opt,
			char *err, size_t errlen)
{
	const char *eq = strchr(opt, '=');
	size_t klen = eq ? (size_t)(eq - opt) : strlen(opt);
	char *key = strndup(opt, klen);
	const char *value = eq ? eq + 1 : NULL;
	int rc;

	if (!key)
		return fail(err, errlen, -ENOMEM, "out of memory");
	rc = apply_union_option(o, key, value, err, errlen);
	if (rc <= 0)
		goto out;
	rc = 0;
	if (in_list(extra_opts, key))
		rc = strv_push(&o->extra, &o->n_extra, opt);
	else if ((!value && in_list(fuse_flag_opts, key)) ||
		 (value && in_list(fuse_value_opts, key)))
		rc = pass_to_fuse(o, opt, key);
	else if (!in_list(mount_only_opts, key) && strncmp(key, "x-", 2))
		fprintf(stderr, "nlayerfs: warning: unknown option '%s' ignored\n",
			opt);
	if (rc < 0)
		fail(err, errlen, rc, "out of memory");
out:
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
"  uidmapping=I:O:N[:...]  ids I..I+N-1 seen in the mount are stored as\n"
"  gidmapping=I:O:N[:...]    O..O+N-1 in the layers; others show as 65534\n"
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
"  nvm_size=SIZE           NVM budget, with K/M/G suffixes\n"
"  hdd=DIR                 HDD tier\n"
"  trace=on|off            record the first opens of a cold start\n"
"  trace_window=SECONDS    how long after mount first opens are recorded\n"
"  promote=on|off          copy hot files to NVM in the background\n"
"  range_threshold=SIZE    bigger files: only the ranges read go to NVM\n"
"  range_unit=SIZE         granularity of those ranges\n"
"  range_slack=SIZE        also copied after each range (half before)\n"
"  layer_meta=on|off       HDD layers' metadata answered from NVM images\n"
"  writeback=on|off        move cold files of NVM layers to HDD after a trace\n"
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
"Unknown options are reported on stderr and otherwise ignored.\n",
		progname, progname, progname, NL_DEFAULT_TIMEOUT,
		NLAYERFS_SYSCONFDIR);
}
