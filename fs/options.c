/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Command line and -o option parsing: pure string work (plus getcwd to
 * make paths absolute). The checks against the file system are in
 * options_check.c, id mappings in idmap.c, --help in options_usage.c.
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

int nl_opt_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
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
bool nl_is_fd_mountpoint(const char *p)
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

/* ---- one -o option --------------------------------------------------------- */

static int set_path(char **slot, const char *key, const char *value,
		    char *err, size_t errlen)
{
	char *abs;
	int rc;

	if (!value || !*value)
		return nl_opt_fail(err, errlen, -EINVAL, "%s= needs a directory", key);
	rc = make_absolute(value, &abs);
	if (rc < 0)
		return nl_opt_fail(err, errlen, rc, "cannot resolve %s '%s': %s", key,
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
		return nl_opt_fail(err, errlen, n, "out of memory");
	if (n < 0 && (!value || !*value))
		return nl_opt_fail(err, errlen, -EINVAL,
			    "lowerdir= needs at least one directory");
	if (n < 0)
		return nl_opt_fail(err, errlen, -EINVAL,
			    "empty lowerdir component in '%s'", value);
	for (int i = 0; i < n; i++) {
		char *abs;
		int rc = make_absolute(dirs[i], &abs);

		if (rc < 0) {
			nl_opt_fail(err, errlen, rc, "cannot resolve lowerdir '%s': %s",
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
		return nl_opt_fail(err, errlen, rc, "out of memory");
	if (rc < 0)
		return nl_opt_fail(err, errlen, -EINVAL,
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

	if (!value || nl_parse_id(value, strlen(value), &id) < 0)
		return nl_opt_fail(err, errlen, -EINVAL, "%s: invalid id '%s'", key,
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
		return nl_opt_fail(err, errlen, -EINVAL, "%s= must be 0 or 1, not '%s'",
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
		return nl_opt_fail(err, errlen, -EINVAL, "timeout= needs a number of seconds");
	errno = 0;
	t = strtod(value, &end);
	if (errno || *end || !isfinite(t) || t < 0)
		return nl_opt_fail(err, errlen, -EINVAL,
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
		return nl_opt_fail(err, errlen, -ENOMEM, "out of memory");
	return 0;
}

/* Kept as "key=value" for the part of the daemon that owns the option. */
static int keep_extra(struct nl_options *o, const struct nl_opt_in *in,
		      char *err, size_t errlen)
{
	if (strv_push(&o->extra, &o->n_extra, in->text) < 0)
		return nl_opt_fail(err, errlen, -ENOMEM, "out of memory");
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
	/* Image names, the config file, the checkpoint mount (fs/ckpt/ckpt.c). */
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
	/* The request loop (fs/session.c). */
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
		return nl_opt_fail(err, errlen, -ENOMEM, "out of memory");
	def = find_optdef(key);
	/* A misspelt upperdir= would otherwise give a read-only mount that
	 * looks as if it worked. */
	if (!def)
		rc = nl_opt_fail(err, errlen, -EINVAL,
			  "unknown option '%s': check its spelling (nlayerfs --help "
			  "lists every option)", opt);
	else if (def->arg == NL_FLAG && in.value)
		rc = nl_opt_fail(err, errlen, -EINVAL,
			  "option '%s' takes no value: write '%s' alone", opt, key);
	else if (def->arg == NL_VALUE && !in.value)
		rc = nl_opt_fail(err, errlen, -EINVAL,
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
		return nl_opt_fail(err, errlen, -ENOMEM, "out of memory");
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
		return nl_opt_fail(err, errlen, -EINVAL,
			    "too many arguments: '%s' (expected [SOURCE] MOUNTPOINT)",
			    pos[2]);
	if (n == 2) {
		o->source = strdup(pos[0]);
		if (!o->source)
			return nl_opt_fail(err, errlen, -ENOMEM, "out of memory");
	}
	if (nl_is_fd_mountpoint(pos[n - 1])) {
		o->mountpoint = strdup(pos[n - 1]);
		return o->mountpoint ? 0 : nl_opt_fail(err, errlen, -ENOMEM, "out of memory");
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
		return nl_opt_fail(err, errlen, -EINVAL, "no mountpoint given");
	if (o->n_lower == 0 && !lowerdir_optional(o))
		return nl_opt_fail(err, errlen, -EINVAL, "lowerdir is required");
	if (o->upperdir && !o->workdir)
		return nl_opt_fail(err, errlen, -EINVAL,
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
			return nl_opt_fail(err, errlen, -EINVAL, "option -o needs an argument");
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
		return nl_opt_fail(err, errlen, -ENOMEM, "out of memory");
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
