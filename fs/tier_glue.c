/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Tiering in the union mount. The policy is all in tier/; here the mount
 * builds its tier configuration, registers its lower layers, and asks on
 * each lower open where the data lives.
 *
 * The tier context runs threads, and the daemon forks after mounting, so
 * the context is opened twice: once before the mount with tracing and
 * promotion off, only to refuse a broken pool with a clear error, and for
 * real in the daemon at FUSE INIT, before the kernel sends any request.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "fs/nlayerfs.h"
#include "fs/tier_glue.h"

/* The tiering keys the mount forwards to tier_config_set(). */
static const char *const tier_keys[] = {
	"nvm", "nvm_size", "hdd", "trace", "trace_window", "promote",
	"range_threshold", "range_unit", "layer_meta",
};

static int load_config(struct tier_config *c, const struct nl_options *o,
		       char *err, size_t errlen)
{
	const char *file = nl_options_extra(o, "config");
	int r;

	tier_config_defaults(c);
	r = tier_config_load(c, file ? file : tier_config_default_path(), err, errlen);
	/* Only a missing default file is normal; a named one must exist. */
	if (r == -ENOENT && !file)
		r = 0;
	else if (r == -ENOENT)
		snprintf(err, errlen, "config=%s: %s", file, strerror(ENOENT));
	for (size_t i = 0; !r && i < sizeof(tier_keys) / sizeof(*tier_keys); i++) {
		const char *v = nl_options_extra(o, tier_keys[i]);
		char real[PATH_MAX];

		/* Directories relative to where the mount was started, as for
		 * lowerdir=; the daemon itself runs in "/". */
		if (v && (!strcmp(tier_keys[i], "nvm") || !strcmp(tier_keys[i], "hdd")) &&
		    v[0] != '/' && realpath(v, real))
			v = real;
		if (v)
			r = tier_config_set(c, tier_keys[i], v, err, errlen);
	}
	return r;
}

/* Open and close the pool once, so that a broken one fails the mount. */
static int check_pool(const struct tier_config *c, char *err, size_t errlen)
{
	struct tier_config probe = *c;
	struct tier_ctx *ctx;
	char msg[1024] = "";
	int r;

	probe.trace = false;
	probe.promote = false;
	r = tier_open(&probe, &ctx, msg, sizeof(msg));
	if (r) {
		snprintf(err, errlen, "tiering: %s", *msg ? msg : strerror(-r));
		return r;
	}
	tier_close(ctx);
	return 0;
}

static int sock_path_of(const char *mountpoint, struct nl_tier *t, char *err,
			size_t errlen)
{
	char real[PATH_MAX];

	if (!realpath(mountpoint, real)) {
		snprintf(err, errlen, "cannot resolve %s: %s", mountpoint, strerror(errno));
		return -errno;
	}
	return nl_tier_sock_path(real, t->sock_path, sizeof(t->sock_path));
}

int nl_tier_setup(struct nl_mount *m, char *err, size_t errlen)
{
	struct nl_tier *t = calloc(1, sizeof(*t));
	int r;

	if (!t)
		return -ENOMEM;
	t->listen_fd = -1;
	pthread_mutex_init(&t->cmd_lock, NULL);
	r = load_config(&t->cfg, m->opt, err, errlen);
	if (!r && t->cfg.nvm_dir)
		r = check_pool(&t->cfg, err, errlen);
	if (!r && t->cfg.nvm_dir)
		r = sock_path_of(m->opt->mountpoint, t, err, errlen);
	if (r || !t->cfg.nvm_dir) {
		tier_config_free(&t->cfg);
		pthread_mutex_destroy(&t->cmd_lock);
		free(t);
		return r;
	}
	m->tier = t;
	return 0;
}

static int add_layers(struct nl_mount *m, struct nl_tier *t)
{
	t->layer_of = calloc(m->n_layers, sizeof(*t->layer_of));
	if (!t->layer_of)
		return -ENOMEM;
	t->n_layers = m->n_layers;
	for (int i = 0; i < m->n_layers; i++) {
		t->layer_of[i] = -1;
		if (m->layers[i].upper)
			continue;
		t->layer_of[i] = tier_layer_add(t->ctx, m->layers[i].path);
		if (t->layer_of[i] < 0)
			return t->layer_of[i];
	}
	return 0;
}

void nl_tier_start(struct nl_mount *m)
{
	struct nl_tier *t = m->tier;
	char msg[1024] = "";
	int r;

	if (!t)
		return;
	r = tier_open(&t->cfg, &t->ctx, msg, sizeof(msg));
	if (!r)
		r = add_layers(m, t);
	if (!r && t->cfg.layer_meta)
		r = tier_meta_start(t->ctx);
	if (!r && t->cfg.promote) {
		/* Files earlier starts needed and that are not on NVM yet. */
		r = tier_promote_hot(t->ctx);
		r = r < 0 ? r : 0;
	}
	if (!r)
		r = nl_tier_ctl_start(t);
	if (r) {
		/* The mount is up already: serve every file from its layer. */
		syslog(LOG_ERR, "nlayerfs: tiering off: %s", *msg ? msg : strerror(-r));
		fprintf(stderr, "nlayerfs: tiering off: %s\n", *msg ? msg : strerror(-r));
		nl_tier_ctl_stop(t);
		tier_close(t->ctx);
		__atomic_store_n(&t->ctx, NULL, __ATOMIC_RELEASE);
	}
}

void nl_tier_stop(struct nl_mount *m)
{
	struct nl_tier *t = m->tier;

	if (!t)
		return;
	nl_tier_ctl_stop(t);
	tier_close(t->ctx);
	tier_config_free(&t->cfg);
	pthread_mutex_destroy(&t->cmd_lock);
	free(t->layer_of);
	free(t);
	m->tier = NULL;
}

static int open_layer_file(struct nl_mount *m, int layer, const char *path, int flags)
{
	int fd = openat(m->layers[layer].fd, path, flags);

	if (fd < 0)
		return -errno;
	nl_lower_opened(m, layer, path, fd);
	return fd;
}

int nl_tier_open_data(struct nl_mount *m, int layer, const char *path, int flags,
		      struct nl_range **range)
{
	struct nl_tier *t = m->tier;
	struct tier_ctx *ctx = t ? __atomic_load_n(&t->ctx, __ATOMIC_ACQUIRE) : NULL;
	char copy[NL_PATH_BUF];
	struct stat st;
	int tl, fd;

	tl = ctx && layer < t->n_layers ? t->layer_of[layer] : -1;
	/* Copies are read-only; a write open of lower data does not happen
	 * (copy-up comes first), but never hand one a copy. */
	if (tl < 0 || (flags & O_ACCMODE) != O_RDONLY ||
	    nl_lower_lstat(m, layer, path, &st) || !S_ISREG(st.st_mode))
		return open_layer_file(m, layer, path, flags);
	tier_trace_open(ctx, tl, path, (uint64_t)st.st_size);
	if (tier_lookup_data(ctx, tl, path, &st, copy, sizeof(copy)) <= TIER_DATA_LAYER) {
		/* a big file: its read ranges traced, some of them on NVM */
		if (range)
			*range = nl_range_open(ctx, tl, path, &st);
		return open_layer_file(m, layer, path, flags);
	}
	fd = open(copy, flags | O_CLOEXEC);
	/* A copy that went away (evicted meanwhile) is no error. */
	return fd >= 0 ? fd : open_layer_file(m, layer, path, flags);
}
