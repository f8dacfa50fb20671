/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A server that takes a union mount over from one that died: the nodes and
 * open handles of the node table it left, made again in this process.
 *
 * Every node the kernel still holds is made at once, parents first, and
 * looked up again in the layers (a copy-up or a rename may have changed
 * where it is): the kernel's ids then reach the same files as before.
 * An entry whose name no longer resolves, or that was unlinked, becomes an
 * unlinked node: a lower file is still reached in its layer, an upper file
 * that lost its name while open through its orphan in the work directory
 * (orphan.c); any other upper file that lost its name is not reached (its
 * requests fail with ENOENT). Open handles are opened again from their
 * nodes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "fs/log.h"
#include "fs/union/union.h"

#define RESTORE_DEPTH 4096
static struct nl_node *node_restore(struct nl_mount *m, uint64_t id, int depth);

/* The node moves to the name its rename gave it, in the table too. */
static void node_follow(struct nl_mount *m, struct nl_node *n, const struct nl_tab_name *to,
			int depth)
{
	struct nl_node *np = to->parent == FUSE_ROOT_ID ? &m->root :
			     node_restore(m, to->parent, depth + 1);
	char *name = strdup(to->name);

	if (!np || np == &m->lost || !name) {
		free(name);
		return;
	}
	n->parent->nchild--;
	np->nchild++;
	n->parent = np;
	free(n->name);
	n->name = name;
	nl_tab_node_rename(&m->tab, n->id, np->id, name);
}

/*
 * The orphan of an entry marked so, when it is the node's file: not when
 * the entry's name (@found, with @st) still holds that very file (the
 * server before was killed before the name went). -1 then, and the orphan
 * is left to nl_orphans_sweep, as is that of a node whose files were all
 * closed.
 */
static int orphan_of(struct nl_mount *m, uint64_t id, bool found, int layer,
		     const struct stat *st)
{
	struct nl_tab_node *e = &m->tab.nodes[id];
	struct stat o;
	int fd;

	if (!(__atomic_load_n(&e->type, __ATOMIC_SEQ_CST) & NL_ENTRY_ORPHAN))
		return -1;
	fd = nl_orphan_reach(m, id);
	if (fd >= 0 && found && layer == 0 && !fstat(fd, &o) && o.st_dev == st->st_dev &&
	    o.st_ino == st->st_ino) {
		close(fd);
		fd = -1;
	}
	if (fd < 0)
		nl_orphan_mark(&m->tab, id, e->type & NL_ENTRY_TYPE, false);
	return fd;
}

/* An entry's node without a name: an upper file is reached through its
 * orphan @ofd (-1: not at all). */
static void entry_unlinked(struct nl_mount *m, struct nl_node *n, int ofd)
{
	struct nl_tab_node *e = &m->tab.nodes[n->id];

	n->unlinked = true;
	n->layer = e->layer < m->n_layers ? e->layer : 0;
	n->lowest = n->layer;
	n->type = (mode_t)(e->type & NL_ENTRY_TYPE) << 12;
	if (ofd < 0)
		return;
	n->gone_fd = ofd;
	n->orphan = true;
	n->layer = n->lowest = 0;
	n->type = S_IFREG;
	nl_orphan_restored(m, n);
	/* the next server finds it unlinked too, whatever the name holds */
	e->layer = 0;
	atomic_store(&e->state, NL_TAB_UNLINKED);
}

/* The node of a LIVE or UNLINKED entry, its parent made first. */
static struct nl_node *entry_node(struct nl_mount *m, uint64_t id, int depth)
{
	struct nl_tab_node *e = &m->tab.nodes[id];
	const struct nl_tab_name *s = &e->slot[atomic_load(&e->cur) & 1];
	const struct nl_tab_name *to;
	struct nl_node *parent, *n;
	struct stat st;
	int layer = -1, lowest, ofd;
	bool found;

	parent = s->parent == FUSE_ROOT_ID ? &m->root : node_restore(m, s->parent, depth + 1);
	if (!parent || parent == &m->lost || memchr(s->name, 0, sizeof(s->name)) == NULL)
		return NULL;
	n = calloc(1, sizeof(*n));
	if (n)
		n->name = strdup(s->name);
	if (!n || !n->name || nl_node_bind(m, n, id)) {
		if (n)
			free(n->name);
		free(n);
		return NULL;
	}
	pthread_mutex_init(&n->lock, NULL);
	n->gone_fd = -1;
	n->parent = parent;
	parent->nchild++;
	n->nlookup = atomic_load(&e->nlookup);
	if (atomic_load(&e->state) == NL_TAB_LIVE &&
	    nl_resolve(m, parent, n->name, 0, &layer, &lowest, &st) &&
	    (to = nl_tab_replay_renamed(&m->replay, s->parent, n->name)))
		node_follow(m, n, to, depth);
	found = atomic_load(&e->state) == NL_TAB_LIVE &&
		!nl_resolve(m, n->parent, n->name, 0, &layer, &lowest, &st);
	ofd = orphan_of(m, id, found, layer, &st);
	if (found && ofd < 0) {
		n->layer = layer;
		n->lowest = lowest;
		n->type = st.st_mode & S_IFMT;
		return n;
	}
	entry_unlinked(m, n, ofd);
	return n;
}

static struct nl_node *node_restore(struct nl_mount *m, uint64_t id, int depth)
{
	struct nl_node *n = nl_node_of(m, id);
	uint8_t state;

	if (n != &m->lost)
		return n;
	if (id < 2 || id >= atomic_load(&m->tab.head->node_high) || depth > RESTORE_DEPTH)
		return NULL;
	state = atomic_load(&m->tab.nodes[id].state);
	if (state != NL_TAB_LIVE && state != NL_TAB_UNLINKED)
		return NULL;
	return entry_node(m, id, depth);
}

/* Named nodes go in the name hash, as a lookup would have put them. */
static void hash_restored(struct nl_mount *m)
{
	uint64_t high = atomic_load(&m->tab.head->node_high);

	for (uint64_t id = 2; id < high; id++) {
		struct nl_node *n = nl_node_of(m, id);

		if (n != &m->lost && !n->unlinked)
			nl_node_rehash(m, n);
	}
}

static void handle_restore(struct nl_mount *m, uint64_t fh, unsigned *lost)
{
	struct nl_tab_handle *h = &m->tab.handles[fh];
	struct nl_node *n = nl_node_of(m, h->node);
	struct nl_file *f = NULL;
	void *obj = NULL;
	int r = 0;

	if (h->kind == NL_TAB_DIR) {
		obj = nl_dirhandle_new();
	} else if (h->kind == NL_TAB_FILE) {
		r = n == &m->lost ? -ENOENT : nl_file_reopen(m, n, h->flags, &f);
		if (r) {
			/* the kernel still closes it: keep a handle that fails */
			f = malloc(sizeof(*f));
			if (f)
				*f = (struct nl_file){ .fd = -1, .old_fd = -1 };
			(*lost)++;
		} else {
			nl_node_opened(n);
		}
		obj = f;
	}
	if (!obj || nl_handle_bind(m, fh, obj))
		(*lost)++;
}

bool nl_intent_replayed(struct nl_mount *m, int op, struct nl_node *parent, const char *name)
{
	return nl_tab_replay_match(&m->replay, op, parent->id, name);
}

int nl_intent_begin(struct nl_mount *m, int op, struct nl_node *parent, const char *name,
		    struct nl_node *to_parent, const char *to_name)
{
	return nl_tab_intent_begin(&m->tab, op, parent->id, name, to_parent ? to_parent->id : 0,
				   to_name);
}

void nl_intent_end(struct nl_mount *m, int slot)
{
	nl_tab_intent_end(&m->tab, slot);
}

int nl_nodes_restore(struct nl_mount *m)
{
	uint64_t high = atomic_load(&m->tab.head->node_high), n_nodes = 0;
	unsigned lost = 0, gone = 0, orphans = 0, swept;

	/* the changes the dead server was making, to recognise them when the
	 * kernel sends them again */
	nl_tab_replay_take(&m->tab, &m->replay);
	for (uint64_t i = 0; i < atomic_load(&m->tab.head->n_origins); i++) {
		struct nl_tab_origin *o = &m->tab.origins[i];
		struct stat u = { .st_dev = o->udev, .st_ino = o->uino };
		struct stat l = { .st_dev = o->odev, .st_ino = o->oino };

		nl_origin_remember(m, &u, &l);
	}
	for (uint64_t id = 2; id < high; id++) {
		uint8_t state = atomic_load(&m->tab.nodes[id].state);
		struct nl_node *n;

		if (state != NL_TAB_LIVE && state != NL_TAB_UNLINKED)
			continue;
		n = node_restore(m, id, 0);
		n_nodes++;
		if (!n)
			lost++;
		else if (n->unlinked)
			gone++;
		if (n && n->orphan)
			orphans++;
	}
	hash_restored(m);
	for (uint64_t fh = 1; fh < atomic_load(&m->tab.head->handle_high); fh++)
		if (atomic_load(&m->tab.handles[fh].state) == NL_TAB_LIVE)
			handle_restore(m, fh, &lost);
	swept = nl_orphans_sweep(m);
	nl_log(lost ? LOG_WARNING : LOG_INFO, "%s: took over %llu nodes (%u without a name, "
	       "%u of them reached in the work directory; %u orphans no node kept removed), "
	       "%u nodes or open files lost", m->opt->mountpoint, (unsigned long long)n_nodes,
	       gone, orphans, swept, lost);
	return 0;
}

/* Every node and handle left at unmount. */
void nl_nodes_free(struct nl_mount *m)
{
	uint64_t high, fh_high;

	if (!m->tab.head)
		return;
	high = atomic_load(&m->tab.head->node_high);
	fh_high = atomic_load(&m->tab.head->handle_high);
	for (uint64_t fh = 1; fh < fh_high; fh++) {
		void *obj = nl_handle_of(m, fh);

		if (!obj)
			continue;
		if (m->tab.handles[fh].kind == NL_TAB_DIR) {
			nl_dirhandle_free(obj);
		} else {
			struct nl_file *f = obj;

			if (f->fd >= 0)
				close(f->fd);
			if (f->old_fd >= 0)
				close(f->old_fd);
			nl_range_free(f->range);
			free(f);
		}
	}
	for (uint64_t id = 2; id < high; id++) {
		struct nl_node *n = nl_node_of(m, id);

		if (n != &m->lost)
			nl_node_free(m, n);
	}
	for (unsigned i = 0; i < NL_NODE_CHUNKS; i++)
		free(atomic_load(&m->byid[i]));
	for (unsigned i = 0; i < NL_HANDLE_CHUNKS; i++)
		free(atomic_load(&m->handles[i]));
	pthread_mutex_destroy(&m->lost.lock);
	nl_tab_replay_free(&m->replay);
	nl_tab_close(&m->tab);
}
