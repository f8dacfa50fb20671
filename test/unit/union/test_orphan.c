/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests of orphans (fs/union/orphan.c): which files are kept in the
 * work directory when they lose their name, under which name, what the
 * node table says, the link counts of their other names, and what a new
 * server removes.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "fs/union/union.h"

struct fixture {
	char top[64];
	struct nl_options opt;
	struct nl_mount m;
	int ufd;		/* the upper layer */
	int lfd;		/* a lower one */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char p[PATH_MAX];

	strcpy(f->top, "/tmp/nl-unit-orphan-XXXXXX");
	assert_non_null(mkdtemp(f->top));
	snprintf(p, sizeof(p), "%s/u", f->top);
	assert_int_equal(mkdir(p, 0755), 0);
	f->ufd = open(p, O_RDONLY | O_DIRECTORY);
	snprintf(p, sizeof(p), "%s/l", f->top);
	assert_int_equal(mkdir(p, 0755), 0);
	f->lfd = open(p, O_RDONLY | O_DIRECTORY);
	snprintf(p, sizeof(p), "%s/work", f->top);
	assert_int_equal(mkdir(p, 0700), 0);
	f->opt.mountpoint = "/unit";
	f->m.opt = &f->opt;
	f->m.workfd = open(p, O_RDONLY | O_DIRECTORY);
	f->m.orphanfd = -1;
	f->m.n_layers = 2;
	f->m.layers = calloc(2, sizeof(*f->m.layers));
	f->m.layers[0].fd = f->ufd;
	f->m.layers[0].upper = true;
	f->m.layers[1].fd = f->lfd;
	f->m.upper = &f->m.layers[0];
	f->m.one_device = true;
	f->m.table = calloc(NL_HASH_SIZE, sizeof(*f->m.table));
	f->m.tab.fd = -1;
	assert_int_equal(nl_tab_create(&f->m.tab), 0);
	pthread_rwlock_init(&f->m.ns, NULL);
	pthread_rwlock_init(&f->m.names, NULL);
	pthread_mutex_init(&f->m.ino_lock, NULL);
	pthread_mutex_init(&f->m.lost.lock, NULL);
	f->m.root.id = FUSE_ROOT_ID;
	f->m.root.name = "";
	f->m.root.type = S_IFDIR;
	f->m.root.gone_fd = -1;
	f->m.root.lowest = 1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	nl_nodes_free(&f->m);
	nl_orphan_links_free(&f->m);
	if (f->m.orphanfd >= 0)
		close(f->m.orphanfd);
	close(f->m.workfd);
	close(f->ufd);
	close(f->lfd);
	free(f->m.layers);
	free(f->m.table);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->top);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* A node for the upper file @name, in the table as a lookup makes it;
 * @open: a file of it is open. */
static struct nl_node *node(struct fixture *f, const char *name, bool open)
{
	struct nl_node *n = calloc(1, sizeof(*n));
	uint64_t id = nl_tab_node_alloc(&f->m.tab);

	assert_true(id >= 2);
	n->name = strdup(name);
	n->parent = &f->m.root;
	n->gone_fd = -1;
	n->type = S_IFREG;
	pthread_mutex_init(&n->lock, NULL);
	assert_int_equal(nl_node_bind(&f->m, n, id), 0);
	nl_tab_node_set(&f->m.tab, id, FUSE_ROOT_ID, name, 0);
	atomic_store(&f->m.tab.nodes[id].nlookup, 1);
	n->nlookup = 1;
	if (open)
		nl_node_opened(n);
	return n;
}

static void upper_file(struct fixture *f, const char *name)
{
	int fd = openat(f->ufd, name, O_CREAT | O_WRONLY, 0644);

	assert_true(fd >= 0);
	close(fd);
}

/* The stat of the orphan of @n, 0, or -errno. */
static int orphan_stat(struct fixture *f, struct nl_node *n, struct stat *st)
{
	char name[64];

	assert_int_equal(nl_orphan_name(&f->m.tab, n->id, name, sizeof(name)), 0);
	if (f->m.orphanfd < 0)
		return -ENOENT;
	return fstatat(f->m.orphanfd, name, st, AT_SYMLINK_NOFOLLOW) ? -errno : 0;
}

/* An upper file kept in the work directory: the mark a second mapping
 * sees, the name it is kept under, and a reused id that names another. */
static void test_orphan_mark_and_name(void **state)
{
	struct nl_tab t = { .fd = -1 }, u = { .fd = -1 };
	char name[64], again[64];
	uint64_t id, pid;
	uint32_t gen;

	(void)state;
	assert_int_equal(nl_tab_create(&t), 0);
	id = nl_tab_node_alloc(&t);
	nl_tab_node_set(&t, id, 1, "tmp", 0);
	assert_false(t.nodes[id].type & NL_ENTRY_ORPHAN);
	nl_orphan_mark(&t, id, 010, true);
	assert_int_equal(nl_orphan_name(&t, id, name, sizeof(name)), 0);
	assert_true(nl_orphan_parse(name, &pid, &gen));
	assert_int_equal(pid, id);
	assert_int_equal(gen, t.nodes[id].gen);
	assert_int_equal(nl_tab_attach(&u, dup(t.fd)), 0);
	assert_true(u.nodes[id].type & NL_ENTRY_ORPHAN);
	assert_int_equal(u.nodes[id].type & NL_ENTRY_TYPE, 010);
	assert_int_equal(u.nodes[id].layer, 0);
	/* unmarked, the type stays */
	nl_orphan_mark(&u, id, u.nodes[id].type & NL_ENTRY_TYPE, false);
	assert_false(t.nodes[id].type & NL_ENTRY_ORPHAN);
	assert_int_equal(t.nodes[id].type, 010);
	/* an id handed out again is another file, under another name */
	nl_orphan_mark(&t, id, 010, true);
	nl_tab_node_free(&t, id);
	assert_int_equal(nl_tab_node_alloc(&t), id);
	nl_tab_node_set(&t, id, 1, "next", 0);
	assert_false(t.nodes[id].type & NL_ENTRY_ORPHAN);
	assert_int_equal(nl_orphan_name(&t, id, again, sizeof(again)), 0);
	assert_string_not_equal(name, again);
	assert_int_equal(nl_orphan_name(&t, id, again, 8), -ENAMETOOLONG);
	nl_tab_close(&u);
	nl_tab_close(&t);
}

/* Only names nl_tab_orphan_name makes are taken for orphans. */
static void test_orphan_names_parsed_strictly(void **state)
{
	static const char *bad[] = {
		"", "orphan-", "orphan-1", "orphan-1-", "orphan--1-2", "orphan-+1-2", "orphan-01-2",
		"orphan-1-02", "orphan-1-2x", "orphan-1-2-3", "orphan-1-4294967296",
		"orphan-18446744073709551616-1", "Orphan-1-2", "#nl.1.2", "orphan-1 -2",
	};
	uint64_t id;
	uint32_t gen;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(nl_orphan_parse(bad[i], &id, &gen));
	assert_true(nl_orphan_parse("orphan-0-0", &id, &gen));
	assert_true(nl_orphan_parse("orphan-18446744073709551615-4294967295", &id, &gen));
	assert_true(id == UINT64_MAX);
	assert_int_equal(gen, UINT32_MAX);
	assert_true(nl_orphan_parse("orphan-2097151-7", &id, &gen));
	assert_int_equal(id, 2097151);
	assert_int_equal(gen, 7);
}

static void test_open_file_kept_and_dropped(void **state)
{
	struct fixture *f = *state;
	struct nl_node *n;
	struct stat st, o;

	upper_file(f, "tmp");
	n = node(f, "tmp", true);
	assert_true(nl_orphan_keep(&f->m, n, f->ufd, "tmp"));
	assert_true(n->orphan);
	assert_true(f->m.tab.nodes[n->id].type & NL_ENTRY_ORPHAN);
	assert_int_equal(f->m.tab.nodes[n->id].type & NL_ENTRY_TYPE, S_IFREG >> 12);
	assert_int_equal(fstatat(f->ufd, "tmp", &st, 0), 0);
	assert_int_equal(orphan_stat(f, n, &o), 0);
	assert_true(o.st_ino == st.st_ino);
	assert_int_equal(o.st_nlink, 2);
	/* the directory is the daemon's alone */
	assert_int_equal(fstatat(f->m.workfd, NL_ORPHANS_DIR, &st, 0), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	/* a file of one link has no other name to count it */
	assert_int_equal(unlinkat(f->ufd, "tmp", 0), 0);
	assert_int_equal(orphan_stat(f, n, &o), 0);
	assert_int_equal(nl_orphan_links(&f->m, &o), 0);
	nl_orphan_drop(&f->m, n);
	assert_int_equal(orphan_stat(f, n, &o), -ENOENT);
}

static void test_what_is_not_kept(void **state)
{
	struct fixture *f = *state;
	struct nl_node *closed, *dir, *lower;
	struct stat st;

	upper_file(f, "closed");
	closed = node(f, "closed", false);
	assert_false(nl_orphan_keep(&f->m, closed, f->ufd, "closed"));
	assert_false(closed->orphan);
	/* nothing kept: the work directory stays as it was */
	assert_int_equal(fstatat(f->m.workfd, NL_ORPHANS_DIR, &st, 0), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(mkdirat(f->ufd, "dir", 0755), 0);
	dir = node(f, "dir", true);
	dir->type = S_IFDIR;
	assert_false(nl_orphan_keep(&f->m, dir, f->ufd, "dir"));
	upper_file(f, "lower");
	lower = node(f, "lower", true);
	lower->layer = 1;	/* not copied up: its layer still has it */
	assert_false(nl_orphan_keep(&f->m, lower, f->ufd, "lower"));
	assert_false(nl_orphan_keep(&f->m, &f->m.lost, f->ufd, "closed"));
	assert_false(f->m.tab.nodes[closed->id].type & NL_ENTRY_ORPHAN);
	nl_node_closed(dir);
	nl_node_closed(lower);
}

static void test_undo(void **state)
{
	struct fixture *f = *state;
	struct nl_node *n;
	struct stat st;

	upper_file(f, "stays");
	n = node(f, "stays", true);
	assert_true(nl_orphan_keep(&f->m, n, f->ufd, "stays"));
	nl_orphan_drop(&f->m, n);
	assert_false(n->orphan);
	assert_false(f->m.tab.nodes[n->id].type & NL_ENTRY_ORPHAN);
	assert_int_equal(orphan_stat(f, n, &st), -ENOENT);
	assert_int_equal(fstatat(f->ufd, "stays", &st, 0), 0);
	assert_int_equal(st.st_nlink, 1);
	nl_node_closed(n);
}

/* The last close of a kept file lets its orphan go, an earlier one not. */
static void test_last_close(void **state)
{
	struct fixture *f = *state;
	struct nl_node *n;
	struct stat st;

	upper_file(f, "twice");
	n = node(f, "twice", true);
	nl_node_opened(n);
	assert_true(nl_orphan_keep(&f->m, n, f->ufd, "twice"));
	assert_int_equal(unlinkat(f->ufd, "twice", 0), 0);
	nl_node_closed(n);
	nl_orphan_closed(&f->m, n);
	assert_true(n->orphan);
	assert_int_equal(orphan_stat(f, n, &st), 0);
	nl_node_closed(n);
	nl_orphan_closed(&f->m, n);
	assert_false(n->orphan);
	assert_false(f->m.tab.nodes[n->id].type & NL_ENTRY_ORPHAN);
	assert_int_equal(orphan_stat(f, n, &st), -ENOENT);
	/* the node going after that removes nothing more */
	nl_orphan_drop(&f->m, n);
}

/* Its other names count the orphan out, and are not cached meanwhile. */
static void test_hard_links(void **state)
{
	struct fixture *f = *state;
	struct nl_node *n;
	struct stat st;

	upper_file(f, "a");
	assert_int_equal(linkat(f->ufd, "a", f->ufd, "b", 0), 0);
	n = node(f, "a", true);
	assert_true(nl_orphan_keep(&f->m, n, f->ufd, "a"));
	assert_int_equal(unlinkat(f->ufd, "a", 0), 0);
	assert_int_equal(fstatat(f->ufd, "b", &st, 0), 0);
	assert_int_equal(st.st_nlink, 2);
	assert_int_equal(nl_orphan_links(&f->m, &st), 1);
	assert_true(nl_orphan_shares(&f->m, nl_ino_of_upper(&f->m, st.st_dev, st.st_ino)));
	assert_false(nl_orphan_shares(&f->m, st.st_ino + 1));
	/* a new hard link: still one orphan among three links */
	assert_int_equal(linkat(f->ufd, "b", f->ufd, "c", 0), 0);
	assert_int_equal(fstatat(f->ufd, "b", &st, 0), 0);
	assert_int_equal(nl_orphan_links(&f->m, &st), 1);
	nl_orphan_drop(&f->m, n);
	assert_int_equal(fstatat(f->ufd, "b", &st, 0), 0);
	assert_int_equal(st.st_nlink, 2);
	assert_int_equal(nl_orphan_links(&f->m, &st), 0);
	assert_false(nl_orphan_shares(&f->m, nl_ino_of_upper(&f->m, st.st_dev, st.st_ino)));
	n->orphan = false;
	nl_node_closed(n);
}

/* A new server keeps the orphans of open files and removes the rest. */
static void test_sweep(void **state)
{
	struct fixture *f = *state;
	struct nl_node *open, *closed;
	struct stat st;
	char name[64];
	int fd;

	upper_file(f, "open");
	upper_file(f, "closed");
	open = node(f, "open", true);
	closed = node(f, "closed", true);
	assert_true(nl_orphan_keep(&f->m, open, f->ufd, "open"));
	assert_true(nl_orphan_keep(&f->m, closed, f->ufd, "closed"));
	nl_node_closed(closed);		/* its forget went with the server */
	fd = openat(f->m.orphanfd, "orphan-99999-1", O_CREAT | O_WRONLY, 0600);
	close(fd);
	snprintf(name, sizeof(name), "orphan-%llu-%u", (unsigned long long)open->id,
		 f->m.tab.nodes[open->id].gen + 1);
	close(openat(f->m.orphanfd, name, O_CREAT | O_WRONLY, 0600));
	close(openat(f->m.orphanfd, "junk", O_CREAT | O_WRONLY, 0600));
	assert_int_equal(nl_orphans_sweep(&f->m), 4);
	assert_int_equal(orphan_stat(f, open, &st), 0);
	assert_int_equal(orphan_stat(f, closed, &st), -ENOENT);
	assert_false(closed->orphan);
	assert_false(f->m.tab.nodes[closed->id].type & NL_ENTRY_ORPHAN);
	assert_true(open->orphan);
	/* reached again by a new server */
	fd = nl_orphan_reach(&f->m, open->id);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(nl_orphan_reach(&f->m, closed->id), -ENOENT);
	nl_orphan_drop(&f->m, open);
	open->orphan = false;
	nl_node_closed(open);
}

/* What a server taking over from @f's makes of the table it left. */
static void take_over(struct fixture *f, struct nl_mount *m2)
{
	memset(m2, 0, sizeof(*m2));
	m2->opt = &f->opt;
	m2->n_layers = f->m.n_layers;
	m2->layers = calloc(m2->n_layers, sizeof(*m2->layers));
	memcpy(m2->layers, f->m.layers, m2->n_layers * sizeof(*m2->layers));
	m2->upper = &m2->layers[0];
	m2->one_device = true;
	m2->workfd = f->m.workfd;
	m2->orphanfd = -1;
	m2->table = calloc(NL_HASH_SIZE, sizeof(*m2->table));
	m2->tab.fd = -1;
	assert_int_equal(nl_tab_attach(&m2->tab, dup(f->m.tab.fd)), 0);
	pthread_rwlock_init(&m2->ns, NULL);
	pthread_rwlock_init(&m2->names, NULL);
	pthread_mutex_init(&m2->ino_lock, NULL);
	pthread_mutex_init(&m2->lost.lock, NULL);
	m2->lost.gone_fd = -1;
	m2->lost.unlinked = true;
	m2->root.id = FUSE_ROOT_ID;
	m2->root.name = "";
	m2->root.type = S_IFDIR;
	m2->root.gone_fd = -1;
	m2->root.lowest = m2->n_layers - 1;
	m2->dirfds_max = 64;
	assert_int_equal(nl_orphans_open(m2), 0);
	assert_int_equal(nl_nodes_restore(m2), 0);
}

static void taken_over_free(struct nl_mount *m2)
{
	nl_nodes_free(m2);
	nl_orphan_links_free(m2);
	if (m2->orphanfd >= 0)
		close(m2->orphanfd);
	free(m2->layers);
	free(m2->table);
}

static uint64_t open_handle(struct fixture *f, struct nl_node *n)
{
	uint64_t fh = nl_tab_handle_alloc(&f->m.tab, NL_TAB_FILE, n->id, O_RDWR);

	assert_true(fh >= 1);
	return fh;
}

/* Some bytes through the handle a new server opened again. */
static void reads(struct nl_mount *m2, uint64_t fh, const char *want)
{
	struct nl_file *h = nl_handle_of(m2, fh);
	char buf[64] = "";

	assert_non_null(h);
	assert_true(h->fd >= 0);
	assert_true(pread(h->fd, buf, sizeof(buf) - 1, 0) >= 0);
	assert_string_equal(buf, want);
}

static void write_upper(struct fixture *f, const char *name, const char *data)
{
	int fd = openat(f->ufd, name, O_CREAT | O_TRUNC | O_WRONLY, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	close(fd);
}

/*
 * A server killed at each step of keeping a file: the next one serves the
 * node by its name when the name still holds the file, else through the
 * orphan, and removes the orphans nothing serves.
 */
static void test_takeover_at_each_step(void **state)
{
	struct fixture *f = *state;
	struct nl_node *before, *renamed, *gone, *forgotten, *n2;
	uint64_t fh_renamed, fh_gone;
	struct nl_mount m2;
	struct stat st;

	/* killed after the link, before the name went */
	write_upper(f, "before", "before");
	before = node(f, "before", true);
	open_handle(f, before);
	assert_true(nl_orphan_keep(&f->m, before, f->ufd, "before"));
	/* killed after a rename over it, before its node was told */
	write_upper(f, "renamed", "old");
	renamed = node(f, "renamed", true);
	fh_renamed = open_handle(f, renamed);
	assert_true(nl_orphan_keep(&f->m, renamed, f->ufd, "renamed"));
	write_upper(f, "renamed.new", "new");
	assert_int_equal(renameat(f->ufd, "renamed.new", f->ufd, "renamed"), 0);
	/* all done: unlinked, the node told */
	write_upper(f, "gone", "gone");
	gone = node(f, "gone", true);
	fh_gone = open_handle(f, gone);
	assert_true(nl_orphan_keep(&f->m, gone, f->ufd, "gone"));
	assert_int_equal(unlinkat(f->ufd, "gone", 0), 0);
	nl_node_detach(&f->m, gone);
	/* closed and forgotten, killed before the orphan went */
	write_upper(f, "forgotten", "x");
	forgotten = node(f, "forgotten", true);
	assert_true(nl_orphan_keep(&f->m, forgotten, f->ufd, "forgotten"));
	assert_int_equal(unlinkat(f->ufd, "forgotten", 0), 0);
	nl_node_detach(&f->m, forgotten);
	atomic_store(&f->m.tab.nodes[forgotten->id].nlookup, 0);

	take_over(f, &m2);
	n2 = nl_node_of(&m2, before->id);
	assert_false(n2->unlinked);
	assert_false(n2->orphan);
	assert_false(m2.tab.nodes[before->id].type & NL_ENTRY_ORPHAN);
	assert_int_equal(orphan_stat(f, before, &st), -ENOENT);
	assert_int_equal(fstatat(f->ufd, "before", &st, 0), 0);
	assert_int_equal(st.st_nlink, 1);

	n2 = nl_node_of(&m2, renamed->id);
	assert_true(n2->unlinked);
	assert_true(n2->orphan);
	assert_int_equal(atomic_load(&m2.tab.nodes[renamed->id].state), NL_TAB_UNLINKED);
	reads(&m2, fh_renamed, "old");

	n2 = nl_node_of(&m2, gone->id);
	assert_true(n2->unlinked);
	assert_true(n2->orphan);
	reads(&m2, fh_gone, "gone");

	n2 = nl_node_of(&m2, forgotten->id);
	assert_true(n2->unlinked);
	assert_false(n2->orphan);
	assert_int_equal(orphan_stat(f, forgotten, &st), -ENOENT);

	assert_int_equal(orphan_stat(f, renamed, &st), 0);
	assert_int_equal(orphan_stat(f, gone, &st), 0);
	taken_over_free(&m2);
	before->orphan = renamed->orphan = gone->orphan = forgotten->orphan = false;
	nl_node_closed(before);
	nl_node_closed(renamed);
	nl_node_closed(gone);
	nl_node_closed(forgotten);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_orphan_mark_and_name),
		cmocka_unit_test(test_orphan_names_parsed_strictly),
		cmocka_unit_test_setup_teardown(test_open_file_kept_and_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_what_is_not_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_undo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_last_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hard_links, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sweep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_takeover_at_each_step, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
