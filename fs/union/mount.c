/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A union mount's context and its FUSE session, the same whether the mount
 * is served by its own process or by the host service of its NVM tier.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/session.h"
#include "fs/union/union.h"

static void nl_op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct nl_mount *m = userdata;
	unsigned int want = FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE |
			    FUSE_CAP_SPLICE_READ | FUSE_CAP_EXPORT_SUPPORT;

	if (!m->upper)
		want |= FUSE_CAP_CACHE_SYMLINKS;
	conn->want |= want & conn->capable;
	/* Locks are kept by the kernel: one host, one mount. */
	conn->want &= ~(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
	/* In the daemon, after the fork, before the kernel sends requests. */
	nl_tier_start(m);
	m->initialized = true;
}

const struct fuse_lowlevel_ops nl_union_ops = {
	.init = nl_op_init,
	.lookup = nl_op_lookup,
	.forget = nl_op_forget,
	.forget_multi = nl_op_forget_multi,
	.getattr = nl_op_getattr,
	.setattr = nl_op_setattr,
	.readlink = nl_op_readlink,
	.mknod = nl_op_mknod,
	.mkdir = nl_op_mkdir,
	.symlink = nl_op_symlink,
	.link = nl_op_link,
	.unlink = nl_op_unlink,
	.rmdir = nl_op_rmdir,
	.rename = nl_op_rename,
	.create = nl_op_create,
	.open = nl_op_open,
	.read = nl_op_read,
	.write_buf = nl_op_write_buf,
	.flush = nl_op_flush,
	.release = nl_op_release,
	.fsync = nl_op_fsync,
	.opendir = nl_op_opendir,
	.readdir = nl_op_readdir,
	.releasedir = nl_op_releasedir,
	.fsyncdir = nl_op_fsyncdir,
	.statfs = nl_op_statfs,
	.setxattr = nl_op_setxattr,
	.getxattr = nl_op_getxattr,
	.listxattr = nl_op_listxattr,
	.removexattr = nl_op_removexattr,
	.fallocate = nl_op_fallocate,
	.copy_file_range = nl_op_copy_file_range,
	.lseek = nl_op_lseek,
};

static int open_layer(struct nl_layer *l, const char *path, bool upper,
		      char *err, size_t errlen)
{
	struct stat st;

	l->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->fd < 0 || fstat(l->fd, &st)) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	l->path = strdup(path);
	l->dev = st.st_dev;
	l->upper = upper;
	return l->path ? 0 : -ENOMEM;
}

/* Everything in the directory @dfd but its entry @keep (NULL: all). The
 * work directory is the daemon's own: its entries are removed one name at
 * a time from its descriptor all the same. */
static int empty_at(int dfd, const char *keep)
{
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), sub, r = 0;
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *de;

	if (!d) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		return r;
	}
	while (!r && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    (keep && !strcmp(de->d_name, keep)) || !unlinkat(fd, de->d_name, 0))
			continue;
		if (errno != EISDIR) {
			r = -errno;
			break;
		}
		sub = openat(fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		r = sub < 0 ? -errno : empty_at(sub, NULL);
		if (sub >= 0)
			close(sub);
		if (!r && unlinkat(fd, de->d_name, AT_REMOVEDIR))
			r = -errno;
	}
	closedir(d);
	return r;
}

/*
 * workdir/work holds only temporaries of a previous server: empty it. A
 * server that takes the mount over keeps the orphans (orphan.c), files
 * the kernel still has open; a fresh mount removes those a crashed mount
 * left with the rest.
 */
static int prepare_workdir(struct nl_mount *m, bool takeover, char *err, size_t errlen)
{
	char work[PATH_MAX];
	int r;

	if (snprintf(work, sizeof(work), "%s/work", m->opt->workdir) >= (int)sizeof(work))
		return -ENAMETOOLONG;
	if (mkdir(work, 0700) && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", work, strerror(errno));
		return -errno;
	}
	m->workfd = open(work, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (m->workfd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", work, strerror(errno));
		return -errno;
	}
	r = empty_at(m->workfd, takeover ? NL_ORPHANS_DIR : NULL);
	if (r) {
		snprintf(err, errlen, "cannot empty %s: %s", work, strerror(-r));
		return r;
	}
	r = takeover ? nl_orphans_open(m) : 0;
	if (r)
		snprintf(err, errlen, "cannot open %s/%s: %s", work, NL_ORPHANS_DIR, strerror(-r));
	return r;
}

/*
 * Directory nodes keep a handle per layer (nl_node_dirfd): with the soft
 * descriptor limit raised to the hard one, half of it is theirs, the rest
 * for open files, layers and the tier. (A host service serving many mounts
 * shares the one limit: each mount may use half of it.)
 */
static long dirfds_max(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return 256;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	return rl.rlim_cur == RLIM_INFINITY ? 1L << 20 : (long)(rl.rlim_cur / 2);
}

int nl_mount_setup(struct nl_mount *m, struct nl_options *o, char *err,
		       size_t errlen)
{
	size_t i;
	int n = 0, r;

	m->opt = o;
	m->workfd = -1;
	m->orphanfd = -1;
	if (!m->tab.head)
		m->tab.fd = -1;
	m->n_layers = o->n_lower + (o->upperdir ? 1 : 0);
	m->layers = calloc(m->n_layers, sizeof(*m->layers));
	m->table = calloc(NL_HASH_SIZE, sizeof(*m->table));
	if (!m->layers || !m->table)
		return -ENOMEM;
	if (o->upperdir) {
		r = open_layer(&m->layers[n++], o->upperdir, true, err, errlen);
		if (r)
			return r;
		m->upper = &m->layers[0];
		/* a table whose FUSE_INIT was answered: the mount goes on */
		r = prepare_workdir(m, m->tab.head && m->tab.head->init_len, err, errlen);
		if (r)
			return r;
	}
	for (i = 0; i < o->n_lower; i++) {
		r = open_layer(&m->layers[n++], o->lowerdirs[i], false, err, errlen);
		if (r)
			return r;
	}
	m->one_device = true;
	for (n = 1; n < m->n_layers; n++)
		if (m->layers[n].dev != m->layers[0].dev)
			m->one_device = false;
	pthread_rwlock_init(&m->ns, NULL);
	pthread_rwlock_init(&m->names, NULL);
	m->dirfds_max = dirfds_max();
	pthread_mutex_init(&m->ino_lock, NULL);
	pthread_mutex_init(&m->root.lock, NULL);
	m->root.name = "";
	m->root.nlookup = 1;
	m->root.gone_fd = -1;
	m->root.type = S_IFDIR;
	m->root.layer = 0;
	m->root.lowest = m->n_layers - 1;
	m->root.id = FUSE_ROOT_ID;
	/* the lost node names nothing: every request on it fails */
	pthread_mutex_init(&m->lost.lock, NULL);
	m->lost.name = "";
	m->lost.parent = &m->root;
	m->lost.gone_fd = -1;
	m->lost.unlinked = true;
	m->timeout = o->timeout;
	r = m->tab.head ? 0 : nl_tab_create(&m->tab);
	if (r) {
		snprintf(err, errlen, "cannot make the node table: %s", strerror(-r));
		return r;
	}
	return nl_tier_setup(m, err, errlen);
}

void nl_mount_free(struct nl_mount *m)
{
	struct nl_origin *o;
	struct nl_linkcount *c;
	int i;

	nl_tier_stop(m);
	for (i = 0; m->layers && i < m->n_layers; i++) {
		if (m->layers[i].fd > 0)
			close(m->layers[i].fd);
		free(m->layers[i].path);
	}
	free(m->layers);
	if (m->workfd >= 0)
		close(m->workfd);
	/* > 0: a context the host service freed before its setup is zeroed */
	if (m->orphanfd > 0)
		close(m->orphanfd);
	/* Nodes still referenced by the kernel at unmount, named or not,
	 * are found by their ids. */
	free(m->table);
	nl_nodes_free(m);
	for (i = 0; i < NL_ORIGIN_BUCKETS; i++) {
		while ((o = m->origins[i])) {
			m->origins[i] = o->next;
			free(o);
		}
	}
	nl_orphan_links_free(m);
	while ((c = m->linkcounts)) {
		m->linkcounts = c->next;
		free(c->upper_path);
		free(c);
	}
}

/* libfuse's own options: ours, then what the user passed through. */
int nl_fuse_args(struct fuse_args *args, const char *prog,
			   struct nl_options *o)
{
	char own[8192];

	/* Without an upper layer nothing can change: say so to the kernel
	 * too, as containerd probes a read-only mount exactly so. Run by
	 * root, mount as fuse-overlayfs does: setuid programs of an image
	 * (su, sudo, ping) must work in its containers, and libfuse would
	 * mount nosuid. "nosuid" given by the caller wins. */
	if (snprintf(own, sizeof(own), "fsname=%s,subtype=nlayerfs%s%s",
		     o->source ? o->source : "nlayerfs",
		     o->upperdir ? "" : ",ro",
		     geteuid() == 0 && !o->nosuid ? ",suid" : "") >= (int)sizeof(own))
		return -E2BIG;
	return nl_session_args(args, prog, own, o);
}
