/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Orphans: upper files that lost their name while open.
 *
 * A process inside the mount may unlink a file it has open (or rename
 * another over it) and go on using it. The kernel's inode then keeps the
 * file alive for this server, through the node's handle of it, but a
 * server that takes the mount over has nothing left to open it by. So,
 * before such a file loses its name, it gets one in the work directory: a
 * hard link workdir/work/orphans/orphan-<id>-<gen>, named after its node
 * table entry, which is marked so (NL_ENTRY_ORPHAN). A new server opens the
 * node's open files from there again.
 *
 * What the container sees does not change: the work directory is no
 * layer, so no readdir shows an orphan; the node is unlinked, so fstat
 * says nlink 0; the blocks are counted by statfs as those of any open
 * unlinked file are. A file that keeps other names (hard links) is kept
 * too, since the node table does not know those names: they leave the
 * orphan out of the link count they report (nl_orphan_links), and their
 * attributes are not cached while it lives (nl_orphan_shares).
 *
 * The link goes at the file's last close (nl_orphan_closed), or with its
 * node. A server killed between two steps leaves an orphan no entry
 * claims, or an entry marked for an orphan that is not there; one killed
 * while a last close was under way leaves an orphan of a file nobody has
 * open. The next server removes the first and the last (nl_orphans_sweep)
 * and serves the second by its name as before. A fresh mount empties the
 * work directory, orphans included.
 *
 * Everything here goes through the work directory's descriptors, one name
 * at a time: no path a user inside the mount could change is followed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "fs/log.h"
#include "fs/union/union.h"

#define ORPHAN_NAME_MAX 64
#define ORPHAN_PREFIX "orphan-"

/* Mark (or unmark) entry @id's upper file, of type @type (S_IFMT >> 12),
 * as kept under its orphan name. */
void nl_orphan_mark(struct nl_tab *t, uint64_t id, unsigned type, bool orphan)
{
	struct nl_tab_node *e = &t->nodes[id];

	e->layer = 0;
	__atomic_store_n(&e->type,
			 (uint8_t)((type & NL_ENTRY_TYPE) | (orphan ? NL_ENTRY_ORPHAN : 0)),
			 __ATOMIC_SEQ_CST);
}

/* The name entry @id's file is kept under: its id and generation, so that
 * an id handed out again names another. */
int nl_orphan_name(const struct nl_tab *t, uint64_t id, char *buf, size_t len)
{
	int n = snprintf(buf, len, ORPHAN_PREFIX "%" PRIu64 "-%" PRIu32, id, t->nodes[id].gen);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Only names nl_orphan_name makes: decimal, no sign, no leading zero. */
static bool parse_dec(const char **s, char end, uint64_t max, uint64_t *v)
{
	const char *p = *s;
	uint64_t x = 0;

	if (*p < '0' || *p > '9' || (*p == '0' && p[1] != end))
		return false;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (x > (max - (uint64_t)(*p - '0')) / 10)
			return false;
		x = x * 10 + (uint64_t)(*p - '0');
	}
	if (*p != end)
		return false;
	*s = p;
	*v = x;
	return true;
}

bool nl_orphan_parse(const char *name, uint64_t *id, uint32_t *gen)
{
	const char *p = name;
	uint64_t i, g;

	if (strncmp(p, ORPHAN_PREFIX, strlen(ORPHAN_PREFIX)))
		return false;
	p += strlen(ORPHAN_PREFIX);
	if (!parse_dec(&p, '-', UINT64_MAX, &i))
		return false;
	p++;
	if (!parse_dec(&p, '\0', UINT32_MAX, &g))
		return false;
	*id = i;
	*gen = (uint32_t)g;
	return true;
}

/* An orphan of a file that has names too. */
struct nl_orphan_link {
	uint64_t node;
	ino_t ino;		/* in the upper layer */
	ino_t shown;		/* the number stat shows for it */
	struct nl_orphan_link *next;
};

static void links_add(struct nl_mount *m, struct nl_node *n, const struct stat *st)
{
	struct nl_orphan_link *l = malloc(sizeof(*l));

	/* without it, the names count one link too many: nothing worse */
	if (!l)
		return;
	l->node = n->id;
	l->ino = st->st_ino;
	l->shown = nl_ino_of_upper(m, st->st_dev, st->st_ino);
	pthread_mutex_lock(&m->ino_lock);
	l->next = m->orphan_links;
	m->orphan_links = l;
	atomic_fetch_add(&m->n_orphan_links, 1);
	pthread_mutex_unlock(&m->ino_lock);
}

static void links_del(struct nl_mount *m, struct nl_node *n)
{
	struct nl_orphan_link **pp, *l;

	if (!atomic_load(&m->n_orphan_links))
		return;
	pthread_mutex_lock(&m->ino_lock);
	for (pp = &m->orphan_links; (l = *pp); pp = &l->next) {
		if (l->node == n->id) {
			*pp = l->next;
			free(l);
			atomic_fetch_sub(&m->n_orphan_links, 1);
			break;
		}
	}
	pthread_mutex_unlock(&m->ino_lock);
}

/* How many links of an upper file (@st as the upper layer has it) are
 * orphans, not names of the merged tree. */
nlink_t nl_orphan_links(struct nl_mount *m, const struct stat *st)
{
	struct nl_orphan_link *l;
	nlink_t k = 0;

	if (!atomic_load(&m->n_orphan_links) || st->st_nlink < 2 || S_ISDIR(st->st_mode))
		return 0;
	pthread_mutex_lock(&m->ino_lock);
	for (l = m->orphan_links; l; l = l->next)
		k += l->ino == st->st_ino;
	pthread_mutex_unlock(&m->ino_lock);
	return k < st->st_nlink ? k : st->st_nlink - 1;
}

/* Does the file stat shows as @shown have an orphan besides its names?
 * Its names' attributes must not be cached then: the orphan's node writes
 * to the same file behind their backs, as another hard link would. */
bool nl_orphan_shares(struct nl_mount *m, ino_t shown)
{
	struct nl_orphan_link *l;
	bool found = false;

	if (!atomic_load(&m->n_orphan_links))
		return false;
	pthread_mutex_lock(&m->ino_lock);
	for (l = m->orphan_links; l && !found; l = l->next)
		found = l->shown == shown;
	pthread_mutex_unlock(&m->ino_lock);
	return found;
}

void nl_orphan_links_free(struct nl_mount *m)
{
	struct nl_orphan_link *l;

	while ((l = m->orphan_links)) {
		m->orphan_links = l->next;
		free(l);
	}
}

/*
 * workdir/work/orphans, made when the first file is kept (@make): a mount
 * that never keeps one leaves its work directory as it was. Made and
 * opened under m->names held for writing, or by a server taking over
 * before it serves; read by whoever finds a node kept (after that).
 */
static int orphans_dir(struct nl_mount *m, bool make)
{
	int fd = __atomic_load_n(&m->orphanfd, __ATOMIC_ACQUIRE);

	if (fd >= 0)
		return fd;
	if (m->workfd < 0)
		return -EROFS;
	if (make && mkdirat(m->workfd, NL_ORPHANS_DIR, 0700) && errno != EEXIST)
		return -errno;
	fd = openat(m->workfd, NL_ORPHANS_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	__atomic_store_n(&m->orphanfd, fd, __ATOMIC_RELEASE);
	return fd;
}

/* A server taking the mount over: the orphans of the one before, if any. */
int nl_orphans_open(struct nl_mount *m)
{
	int r = orphans_dir(m, false);

	return r < 0 && r != -ENOENT ? r : 0;
}

/* Name @oname for @dfd/@name: an earlier orphan under the same name is
 * one no entry claims (the sweep missed it), and goes. */
static int link_orphan(struct nl_mount *m, int dfd, const char *name, const char *oname)
{
	int ofd = orphans_dir(m, true);

	if (ofd < 0)
		return ofd;
	if (!linkat(dfd, name, ofd, oname, 0))
		return 0;
	if (errno != EEXIST || unlinkat(ofd, oname, 0))
		return -errno;
	return linkat(dfd, name, ofd, oname, 0) ? -errno : 0;
}

/*
 * @n's upper entry, (@dfd, @name), is about to lose its name: when the
 * file is open, keep it as an orphan. True when kept; the caller then
 * undoes it if the name stays after all. Caller holds m->names for
 * writing: no stat of the file's other names (taken under it for reading)
 * sees the new link before it is on the list. A file nobody has open is
 * not asked for again, and goes as before.
 */
bool nl_orphan_keep(struct nl_mount *m, struct nl_node *n, int dfd, const char *name)
{
	char oname[ORPHAN_NAME_MAX];
	struct stat st;

	if (m->workfd < 0 || n == &m->lost || n->layer != 0 || n->orphan ||
	    !nl_node_is_open(n))
		return false;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode))
		return false;
	if (nl_orphan_name(&m->tab, n->id, oname, sizeof(oname)))
		return false;
	/* the entry first: a kill right after leaves a mark without an
	 * orphan, which the next server ignores */
	nl_orphan_mark(&m->tab, n->id, S_IFREG >> 12, true);
	if (link_orphan(m, dfd, name, oname)) {
		nl_orphan_mark(&m->tab, n->id, 0, false);
		return false;
	}
	if (st.st_nlink > 1)
		links_add(m, n, &st);
	__atomic_store_n(&n->orphan, true, __ATOMIC_RELEASE);
	return true;
}

static void unlink_orphan(struct nl_mount *m, struct nl_node *n)
{
	char oname[ORPHAN_NAME_MAX];

	if (!nl_orphan_name(&m->tab, n->id, oname, sizeof(oname)))
		unlinkat(__atomic_load_n(&m->orphanfd, __ATOMIC_ACQUIRE), oname, 0);
}

/*
 * The orphan of @n goes: its name stayed after all (nl_orphan_keep's
 * caller), its last file was closed, or the node goes. Once, whoever
 * calls first: a release and a forget of the same node may be served at
 * once.
 */
static bool disown(struct nl_mount *m, struct nl_node *n)
{
	if (!__atomic_exchange_n(&n->orphan, false, __ATOMIC_ACQ_REL))
		return false;
	nl_orphan_mark(&m->tab, n->id, S_IFREG >> 12, false);
	links_del(m, n);
	return true;
}

void nl_orphan_drop(struct nl_mount *m, struct nl_node *n)
{
	if (disown(m, n))
		unlink_orphan(m, n);
}

/*
 * A file of @n was closed. After the last, nothing inside the mount
 * reaches the kept file but a new open of the node itself (through
 * /proc/PID/fd), which a server after this one would not make again
 * anyway: the orphan goes now, not when the kernel forgets the node. The
 * lookup count the table keeps may be higher than the kernel's (a lookup
 * resent to a new server is counted twice), so that forget may never
 * bring it to zero.
 */
void nl_orphan_closed(struct nl_mount *m, struct nl_node *n)
{
	if (__atomic_load_n(&n->orphan, __ATOMIC_ACQUIRE) && !nl_node_is_open(n))
		nl_orphan_drop(m, n);
}

/* A node a new server made for an orphan (its gone_fd): the file's other
 * names, if any, do not count the orphan. */
void nl_orphan_restored(struct nl_mount *m, struct nl_node *n)
{
	struct stat st;

	if (!fstat(n->gone_fd, &st) && st.st_nlink > 1)
		links_add(m, n, &st);
}

/* An O_PATH handle of entry @id's orphan, or -errno. */
int nl_orphan_reach(struct nl_mount *m, uint64_t id)
{
	char oname[ORPHAN_NAME_MAX];
	struct stat st;
	int fd, r;

	if (m->orphanfd < 0)
		return -ENOENT;
	r = nl_orphan_name(&m->tab, id, oname, sizeof(oname));
	if (r)
		return r;
	fd = openat(m->orphanfd, oname, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return -ENOENT;
	}
	return fd;
}

/*
 * Is the orphan @name one a node made by this server keeps? Only while
 * the node has a file open: without one, its last close was under way
 * when the server before died. Such a node keeps its handle of the file
 * for this server, and lets the orphan go.
 */
static bool kept(struct nl_mount *m, const char *name)
{
	struct nl_node *n;
	uint64_t id;
	uint32_t gen;

	if (!nl_orphan_parse(name, &id, &gen) || id < 2 ||
	    id >= atomic_load(&m->tab.head->node_high))
		return false;
	n = nl_node_of(m, id);
	if (n == &m->lost || !n->orphan || m->tab.nodes[id].gen != gen)
		return false;
	if (nl_node_is_open(n))
		return true;
	disown(m, n);
	return false;
}

/*
 * After a takeover, once every node is made again and its files opened:
 * the orphans no node keeps go (left by a server killed while it made or
 * removed one). Returns how many.
 */
unsigned nl_orphans_sweep(struct nl_mount *m)
{
	struct dirent *de;
	unsigned gone = 0;
	DIR *d;
	int fd;

	if (m->orphanfd < 0)
		return 0;
	fd = openat(m->orphanfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		nl_log(LOG_WARNING, "%s: cannot list the orphans of the work directory: %s",
		       m->opt->mountpoint, strerror(e));
		return 0;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    kept(m, de->d_name))
			continue;
		if (!unlinkat(fd, de->d_name, 0))
			gone++;
	}
	closedir(d);
	return gone;
}
