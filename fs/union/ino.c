/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Inode numbers. The st_ino the kernel sees is derived from the lower
 * inode an entry came from (its origin), so it stays the same across
 * copy-up and is the same for every hard link of a lower file; the link
 * count of a lower hard link that is partly copied up is counted here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/union/union.h"

/*
 * Layers on one file system keep their own numbers. With several file
 * systems the index of the device goes in the top bits (numbers of common
 * file systems leave them free), so equal numbers on two devices differ.
 */
ino_t nl_ino_map(struct nl_mount *m, dev_t dev, ino_t ino)
{
	int i;

	if (m->one_device)
		return ino;
	pthread_mutex_lock(&m->ino_lock);
	for (i = 0; i < m->n_devs && m->devs[i] != dev; i++)
		;
	if (i == m->n_devs && m->n_devs < 64)
		m->devs[m->n_devs++] = dev;
	pthread_mutex_unlock(&m->ino_lock);
	return ino ^ ((uint64_t)(i + 1) << 56);
}

bool nl_origin_find(struct nl_mount *m, dev_t udev, ino_t uino,
		    dev_t *odev, ino_t *oino)
{
	struct nl_origin *o;
	bool found = false;

	pthread_mutex_lock(&m->ino_lock);
	for (o = m->origins[uino % NL_ORIGIN_BUCKETS]; o; o = o->next) {
		if (o->udev == udev && o->uino == uino) {
			*odev = o->odev;
			*oino = o->oino;
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&m->ino_lock);
	return found;
}

/* An origin known from the node table: already the first lower inode. */
void nl_origin_remember(struct nl_mount *m, const struct stat *upper,
			const struct stat *lower)
{
	struct nl_origin *o = malloc(sizeof(*o));

	if (!o)
		return;
	o->udev = upper->st_dev;
	o->uino = upper->st_ino;
	o->odev = lower->st_dev;
	o->oino = lower->st_ino;
	pthread_mutex_lock(&m->ino_lock);
	o->next = m->origins[o->uino % NL_ORIGIN_BUCKETS];
	m->origins[o->uino % NL_ORIGIN_BUCKETS] = o;
	pthread_mutex_unlock(&m->ino_lock);
}

void nl_origin_add(struct nl_mount *m, const struct stat *upper,
		   const struct stat *lower)
{
	struct stat first = { .st_dev = lower->st_dev, .st_ino = lower->st_ino };

	/* A copy of a copy still descends from the first lower inode. */
	nl_origin_find(m, lower->st_dev, lower->st_ino, &first.st_dev, &first.st_ino);
	/* in the table first: a server after this one numbers it the same */
	nl_tab_origin_add(&m->tab, upper->st_dev, upper->st_ino, first.st_dev, first.st_ino);
	nl_origin_remember(m, upper, &first);
}

ino_t nl_ino_of_upper(struct nl_mount *m, dev_t dev, ino_t ino)
{
	dev_t odev;
	ino_t oino;

	if (nl_origin_find(m, dev, ino, &odev, &oino))
		return nl_ino_map(m, odev, oino);
	return nl_ino_map(m, dev, ino);
}

static struct nl_linkcount *linkcount_find(struct nl_mount *m, dev_t odev,
					   ino_t oino)
{
	struct nl_linkcount *c;

	for (c = m->linkcounts; c; c = c->next)
		if (c->odev == odev && c->oino == oino)
			return c;
	return NULL;
}

/*
 * A lower file with several names is being copied up: from now on its
 * names live partly in the upper layer, and POSIX still wants one link
 * count for all of them (the lower count plus the names added through the
 * mount minus the names removed).
 */
void nl_linkcount_track(struct nl_mount *m, dev_t odev, ino_t oino,
			nlink_t lower_nlink, const char *upper_path,
			ino_t upper_ino)
{
	struct nl_linkcount *c;

	pthread_mutex_lock(&m->ino_lock);
	if (!linkcount_find(m, odev, oino)) {
		c = calloc(1, sizeof(*c));
		if (c) {
			c->odev = odev;
			c->oino = oino;
			c->lower_nlink = lower_nlink;
			c->upper_path = strdup(upper_path);
			c->upper_ino = upper_ino;
			c->next = m->linkcounts;
			m->linkcounts = c;
		}
	}
	pthread_mutex_unlock(&m->ino_lock);
}

void nl_linkcount_adjust(struct nl_mount *m, dev_t odev, ino_t oino, int d)
{
	struct nl_linkcount *c;

	pthread_mutex_lock(&m->ino_lock);
	c = linkcount_find(m, odev, oino);
	if (c)
		c->delta += d;
	pthread_mutex_unlock(&m->ino_lock);
}

bool nl_linkcount_get(struct nl_mount *m, dev_t odev, ino_t oino, nlink_t *nlink)
{
	struct nl_linkcount *c;
	bool found = false;

	pthread_mutex_lock(&m->ino_lock);
	c = linkcount_find(m, odev, oino);
	if (c) {
		long v = (long)c->lower_nlink + c->delta;

		*nlink = v > 0 ? v : 0;
		found = true;
	}
	pthread_mutex_unlock(&m->ino_lock);
	return found;
}

/*
 * The upper copy of a hard-linked lower file, if one was made: the other
 * lower names of that file read and write it too, so the names stay one
 * file (the kernel overlay needs index=on for that).
 */
int nl_linked_copy(struct nl_mount *m, dev_t odev, ino_t oino, char *path,
		   size_t len)
{
	struct nl_linkcount *c;
	struct stat st;
	int r = -ENOENT;

	pthread_mutex_lock(&m->ino_lock);
	c = linkcount_find(m, odev, oino);
	if (c && c->upper_path && strlen(c->upper_path) < len) {
		strcpy(path, c->upper_path);
		r = 0;
	}
	pthread_mutex_unlock(&m->ino_lock);
	/* Renamed or removed since: the copy is no longer at that path. */
	if (!r && (nl_lstat_beneath(m->upper->fd, path, &st) || st.st_ino != c->upper_ino))
		r = -ENOENT;
	return r;
}

/* Identity of the lower inode an entry descends from. */
void nl_origin_of(struct nl_mount *m, const struct stat *st, dev_t *odev,
		  ino_t *oino)
{
	*odev = st->st_dev;
	*oino = st->st_ino;
	if (m->upper && st->st_dev == m->upper->dev)
		nl_origin_find(m, st->st_dev, st->st_ino, odev, oino);
}
