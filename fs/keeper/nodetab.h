/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The table of a mount, kept in shared memory (a memfd held by the mount's
 * keeper) so that it outlives the process that serves the mount: what a
 * new server needs to answer the kernel for the old one. The union uses all
 * of it; the checkpoint mount, whose node ids are its pool's inode numbers,
 * uses the head, the handles and the journal.
 *
 * Node ids the union hands to the kernel are indices into this table. Each entry
 * is written before the reply that hands its id out; a rename writes the
 * new (parent, name) into the entry's other slot and then flips which slot
 * is current, so that a server killed in the middle leaves one whole name.
 * Open files and directories have handles here too (their fh), and every
 * copy-up appends the origin of its upper inode, so that inode numbers
 * stay the same under a new server.
 */
#ifndef NLAYERFS_FS_KEEPER_NODETAB_H
#define NLAYERFS_FS_KEEPER_NODETAB_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "fs/session.h"

#define NL_TAB_MAGIC "nlnodes1"
#define NL_TAB_NODES (1u << 21)		/* node ids, sparse memory */
#define NL_TAB_HANDLES (1u << 20)	/* open files and directories */
#define NL_TAB_ORIGINS (1u << 20)	/* copy-ups remembered */
#define NL_TAB_INIT_MAX 1024		/* the kernel's FUSE_INIT request */
#define NL_TAB_INTENTS 512		/* name changes under way at once */
#define NL_TAB_JOURNAL (64u << 20)	/* writes not yet committed (checkpoint mount) */
#define NL_TAB_REQS 64			/* requests being served at once */
#define NL_TAB_REQ_MAX ((1u << 20) + 8192)	/* the largest: a write of 1 MiB */

enum nl_tab_state { NL_TAB_FREE = 0, NL_TAB_LIVE = 1, NL_TAB_UNLINKED = 2 };

struct nl_tab_name {
	uint64_t parent;
	char name[NAME_MAX + 1];
};

struct nl_tab_node {
	_Atomic uint64_t nlookup;
	uint32_t gen;
	_Atomic uint8_t state;
	_Atomic uint8_t cur;		/* the slot that names the entry */
	uint8_t layer;			/* the layer an unlinked entry was in */
	uint8_t type;			/* S_IFMT >> 12 */
	struct nl_tab_name slot[2];
};

enum nl_tab_handle_kind { NL_TAB_FILE = 1, NL_TAB_DIR = 2 };

struct nl_tab_handle {
	_Atomic uint8_t state;		/* free or live */
	uint8_t kind;
	uint16_t pad;
	int32_t flags;			/* open flags, for a reopen */
	uint64_t node;
};

/*
 * A change of names under way: set before it starts, cleared once the
 * kernel has its answer. The kernel sends a request the dead server had
 * read again, to the next server, which finds the change already made (the
 * name exists, or is gone): an intent left in the table says that this is
 * the same request, made whole before the server died, not a new one.
 */
enum nl_intent_op { NL_INTENT_NEW = 1, NL_INTENT_REMOVE = 2, NL_INTENT_RENAME = 3,
		   NL_INTENT_OPEN = 4 };

struct nl_tab_intent {
	_Atomic uint8_t state;		/* free or live */
	uint8_t op;
	struct nl_tab_name at;
	struct nl_tab_name to;		/* a rename's new name */
};

struct nl_tab_origin {
	uint64_t udev, uino, odev, oino;
};

/*
 * Writes of the checkpoint mount answered since its last commit, data
 * included: a new server writes them again. A record counts once @used
 * covers it, and @used moves only after the record is whole.
 */
struct nl_tab_jrec {
	uint64_t ino, off, len;
};

struct nl_tab_journal {
	_Atomic uint64_t used;
	uint64_t pad;
	uint8_t data[NL_TAB_JOURNAL];
};

/*
 * A request a server is serving, kept on kernels that cannot send it again
 * to the next server (no FUSE_NOTIFY_RESEND, before Linux 6.9): the next
 * server serves it, its answer reaching the process that waits for it.
 */
#define NL_REQ_FREE 0		/* else an nl_rec_state (session.h) */

struct nl_tab_req {
	_Atomic uint32_t state;
	uint32_t len;
	uint64_t pad;
	uint8_t data[NL_TAB_REQ_MAX];
};

struct nl_tab_head {
	char magic[8];
	uint32_t node_size;
	uint32_t n_nodes;
	_Atomic uint64_t node_high;	/* ids at or above were never used */
	_Atomic uint64_t handle_high;
	_Atomic uint64_t n_origins;
	_Atomic int32_t server_pid;
	_Atomic uint32_t replaced;	/* servers started after the first */
	_Atomic uint64_t died_us;	/* when the last server died (monotonic) */
	_Atomic uint64_t last_stall_us;	/* its death to the next one's takeover */
	uint32_t init_len;
	uint8_t init[NL_TAB_INIT_MAX];
	_Atomic uint32_t keep_requests;	/* the kernel cannot send them again */
	struct nl_tab_intent intents[NL_TAB_INTENTS];
};

struct nl_tab {
	int fd;				/* the memfd */
	size_t size;
	struct nl_tab_head *head;
	struct nl_tab_node *nodes;
	struct nl_tab_handle *handles;
	struct nl_tab_origin *origins;
	struct nl_tab_journal *journal;
	struct nl_tab_req *reqs;
	struct nl_recorder rec;		/* the request loop keeps requests here */
	/* process-local: ids free for reuse, under the mount's ns lock */
	uint64_t *free_ids;
	size_t n_free, cap_free;
	uint64_t *free_handles;		/* under handle_lock */
	size_t n_free_handles, cap_free_handles;
	pthread_mutex_t handle_lock;
	pthread_mutex_t origin_lock;
};

/* Create a new table, or map @fd (a table a server before left). */
int nl_tab_create(struct nl_tab *t);
int nl_tab_attach(struct nl_tab *t, int fd);
void nl_tab_close(struct nl_tab *t);

uint64_t nl_tab_node_alloc(struct nl_tab *t);
void nl_tab_node_free(struct nl_tab *t, uint64_t id);
void nl_tab_node_set(struct nl_tab *t, uint64_t id, uint64_t parent, const char *name,
		     unsigned type);
void nl_tab_node_rename(struct nl_tab *t, uint64_t id, uint64_t parent, const char *name);

uint64_t nl_tab_handle_alloc(struct nl_tab *t, int kind, uint64_t node, int flags);
void nl_tab_handle_free(struct nl_tab *t, uint64_t fh);

int nl_tab_intent_begin(struct nl_tab *t, int op, uint64_t parent, const char *name,
			uint64_t to_parent, const char *to_name);
void nl_tab_intent_end(struct nl_tab *t, int slot);

void nl_tab_origin_add(struct nl_tab *t, dev_t udev, ino_t uino, dev_t odev, ino_t oino);

/*
 * The intents a dead server left, taken (and cleared) by the next one: a
 * request the kernel sends again within NL_TAB_REPLAY_MS that meets one
 * finds its change made, and is answered as done.
 */
#define NL_TAB_REPLAY_MS 10000

struct nl_tab_replay {
	pthread_mutex_t lock;
	struct nl_tab_intent *v;
	int n;
	long until;		/* CLOCK_MONOTONIC ms */
};

int nl_tab_replay_take(struct nl_tab *t, struct nl_tab_replay *r);
/* True once per intent: the request is the one the dead server made. */
bool nl_tab_replay_match(struct nl_tab_replay *r, int op, uint64_t parent, const char *name);
/* The new name of a rename the dead server made, or NULL. */
const struct nl_tab_name *nl_tab_replay_renamed(struct nl_tab_replay *r, uint64_t parent,
						const char *name);
/* The handle of an open of @node the dead server made but did not answer
 * (the kernel sends it again), or 0. */
uint64_t nl_tab_replay_open(struct nl_tab_replay *r, uint64_t node);
void nl_tab_replay_free(struct nl_tab_replay *r);

/* The request loop's recorder of this table (nl_tab.rec), when the
 * kernel cannot send a dead server's requests again; NULL otherwise. */
struct nl_recorder *nl_tab_recorder(struct nl_tab *t);
/* For the next server: a copy of the request of place @slot the dead
 * server read and did not answer (1, *@req to free), or 0; the place is
 * free after. */
int nl_tab_req_take(struct nl_tab *t, int slot, void **req, size_t *len);

/* Journal (the caller serialises): -ENOSPC when @len more do not fit. */
int nl_tab_journal_add(struct nl_tab *t, uint64_t ino, uint64_t off, const void *buf,
		       uint64_t len);
/* Everything in it is committed: empty it and give its memory back. */
void nl_tab_journal_reset(struct nl_tab *t);
/* The record at *@pos (from 0), its data in *@data; false at the end. */
bool nl_tab_journal_next(const struct nl_tab *t, uint64_t *pos, struct nl_tab_jrec *rec,
			 const void **data);

#endif
