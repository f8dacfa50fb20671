/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One serve loop for every mount this process serves itself.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/session.h"

int nl_session_args(struct fuse_args *args, const char *prog, const char *own,
		    const struct nl_options *o)
{
	char opts[8192];
	int len;

	/* Run by root, the mount is for every user of the host, with the
	 * kernel checking permissions as it would on any file system. */
	len = snprintf(opts, sizeof(opts), "%s%s%s", own,
		       geteuid() == 0 && !o->allow_other ? ",allow_other" : "",
		       geteuid() == 0 && !o->default_permissions ?
		       ",default_permissions" : "");
	if (len < (int)sizeof(opts) && o->fuse_opts && *o->fuse_opts)
		len += snprintf(opts + len, sizeof(opts) - len, ",%s", o->fuse_opts);
	if (len >= (int)sizeof(opts))
		return -E2BIG;
	if (fuse_opt_add_arg(args, prog) || fuse_opt_add_arg(args, "-o") ||
	    fuse_opt_add_arg(args, opts))
		return -ENOMEM;
	if (o->debug && fuse_opt_add_arg(args, "-d"))
		return -ENOMEM;
	return 0;
}

/*
 * The request loop: threads that each read a request from /dev/fuse and
 * answer it, one more started when none is left waiting (up to
 * max_threads), one leaving when more than max_idle_threads wait.
 *
 * libfuse's loop gives a thread its buffer on its first read, so the
 * kernel copies that request into pages never touched before. When the
 * server is killed during that copy, the fault fails and the kernel ends
 * the request with EIO for the process that made it, instead of keeping
 * it for the next server. Here a thread touches its whole buffer before
 * its first read.
 */
struct nl_loop {
	struct fuse_session *se;
	struct nl_recorder *rec;
	pthread_mutex_t lock;
	sem_t finished;			/* a thread saw the session end */
	struct nl_worker *workers;
	unsigned n_workers, n_idle, max_threads, max_idle;
	bool stopping;			/* threads no longer leave by themselves */
	int err;
};

struct nl_worker {
	struct nl_worker *next, **pprev;
	pthread_t thread;
	struct nl_loop *loop;
	struct fuse_buf buf;
	int slot;			/* its place in the recorder, or -1 */
};

static void *worker_main(void *arg);

/* libfuse reads up to its session's buffer size: 256 pages and a header. */
static size_t request_buf_size(void)
{
	return 256 * (size_t)sysconf(_SC_PAGESIZE) + 4096;
}

static void worker_free(struct nl_worker *w)
{
	if (w->slot >= 0)
		w->loop->rec->release(w->loop->rec, w->slot);
	else
		free(w->buf.mem);
	free(w);
}

/* The buffer the kernel copies requests into: the recorder's place, or
 * memory of this thread's own, written through before the first read. */
static int worker_buffer(struct nl_loop *l, struct nl_worker *w)
{
	size_t size = request_buf_size();

	if (l->rec && (w->slot = l->rec->claim(l->rec, &w->buf.mem, &w->buf.size)) >= 0)
		return 0;
	w->slot = -1;
	w->buf.mem = malloc(size);
	if (!w->buf.mem)
		return -ENOMEM;
	/* written, not just zeroed (which may be left to the kernel's zero page) */
	for (size_t i = 0; i < size; i += 4096)
		((volatile char *)w->buf.mem)[i] = 1;
	w->buf.size = size;
	return 0;
}

/* Called with l->lock held. */
static int worker_start(struct nl_loop *l)
{
	struct nl_worker *w = calloc(1, sizeof(*w));
	int r;

	if (!w)
		return -ENOMEM;
	w->loop = l;
	r = worker_buffer(l, w);
	if (r) {
		free(w);
		return r;
	}
	r = -pthread_create(&w->thread, NULL, worker_main, w);
	if (r) {
		worker_free(w);
		return r;
	}
	w->next = l->workers;
	if (w->next)
		w->next->pprev = &w->next;
	w->pprev = &l->workers;
	l->workers = w;
	l->n_workers++;
	l->n_idle++;
	return 0;
}

static void worker_unlink(struct nl_worker *w)
{
	*w->pprev = w->next;
	if (w->next)
		w->next->pprev = w->pprev;
}

/* After a request: true when this thread is one idle thread too many. */
static bool worker_leaves(struct nl_loop *l, struct nl_worker *w)
{
	bool leave;

	pthread_mutex_lock(&l->lock);
	l->n_idle++;
	leave = !l->stopping && l->n_idle > l->max_idle;
	if (leave) {
		l->n_idle--;
		l->n_workers--;
		worker_unlink(w);
		pthread_detach(w->thread);
	}
	pthread_mutex_unlock(&l->lock);
	return leave;
}

static void *worker_main(void *arg)
{
	struct nl_worker *w = arg;
	struct nl_loop *l = w->loop;
	int r;

	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	while (!fuse_session_exited(l->se)) {
		/* only a thread waiting for the kernel is cancelled at the end */
		if (w->slot >= 0)
			l->rec->set(l->rec, w->slot, NL_REC_READING);
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
		r = fuse_session_receive_buf(l->se, &w->buf);
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
		if (w->slot >= 0)
			l->rec->set(l->rec, w->slot, r > 0 ? NL_REC_SERVING : NL_REC_IDLE);
		if (r == -EINTR || r == -EAGAIN)
			continue;
		if (r <= 0) {
			if (r < 0)
				l->err = r;
			fuse_session_exit(l->se);
			break;
		}
		pthread_mutex_lock(&l->lock);
		/* the last waiting thread takes this one: another waits */
		if (!--l->n_idle && l->n_workers < l->max_threads && !l->stopping)
			worker_start(l);
		pthread_mutex_unlock(&l->lock);
		fuse_session_process_buf(l->se, &w->buf);
		if (w->slot >= 0)
			l->rec->set(l->rec, w->slot, NL_REC_IDLE);
		if (worker_leaves(l, w)) {
			worker_free(w);
			return NULL;
		}
	}
	sem_post(&l->finished);
	return NULL;
}

/* Until the session ends (unmounted, or a signal ended it). */
static int own_loop(struct fuse_session *se, struct nl_recorder *rec, unsigned max_threads,
		    unsigned max_idle)
{
	struct nl_loop l = { .se = se, .rec = rec, .max_threads = max_threads ? max_threads : 1,
			     .max_idle = max_idle };
	struct nl_worker *w, *next;
	int r;

	pthread_mutex_init(&l.lock, NULL);
	sem_init(&l.finished, 0, 0);
	pthread_mutex_lock(&l.lock);
	r = worker_start(&l);
	pthread_mutex_unlock(&l.lock);
	/* a signal handler ends the session and interrupts this wait */
	while (!r && !fuse_session_exited(se))
		sem_wait(&l.finished);
	pthread_mutex_lock(&l.lock);
	l.stopping = true;
	for (w = l.workers; w; w = w->next)
		pthread_cancel(w->thread);
	pthread_mutex_unlock(&l.lock);
	for (w = l.workers; w; w = next) {
		next = w->next;
		pthread_join(w->thread, NULL);
		worker_free(w);
	}
	sem_destroy(&l.finished);
	pthread_mutex_destroy(&l.lock);
	fuse_session_reset(se);
	return r ? r : l.err;
}

static unsigned opt_count(struct nl_options *o, const char *key, unsigned def)
{
	const char *v = nl_options_extra(o, key);

	return v ? (unsigned)atoi(v) : def;
}

int nl_run_loop(struct fuse_session *se, struct nl_options *o, struct nl_recorder *rec)
{
	struct fuse_loop_config *cfg;
	int r;

	if (!nl_options_extra(o, "clone_fd"))
		return own_loop(se, rec, opt_count(o, "max_threads", 10),
				opt_count(o, "max_idle_threads", 10));
	/* a descriptor per thread: libfuse's loop opens them */
	cfg = fuse_loop_cfg_create();
	if (!cfg)
		return -ENOMEM;
	fuse_loop_cfg_set_idle_threads(cfg, opt_count(o, "max_idle_threads", 10));
	if (nl_options_extra(o, "max_threads"))
		fuse_loop_cfg_set_max_threads(cfg, opt_count(o, "max_threads", 10));
	fuse_loop_cfg_set_clone_fd(cfg, 1);
	r = fuse_session_loop_mt(se, cfg);
	fuse_loop_cfg_destroy(cfg);
	return r;
}

int nl_serve(const struct nl_serve *s)
{
	struct fuse_session *se;
	int r = 1;

	se = fuse_session_new(s->args, s->ops, sizeof(*s->ops), s->userdata);
	if (!se)
		goto out;
	if (fuse_set_signal_handlers(se))
		goto out_session;
	if (fuse_session_mount(se, s->opt->mountpoint)) {
		fprintf(stderr, "nlayerfs: cannot mount on %s\n", s->opt->mountpoint);
		goto out_signals;
	}
	if (!s->mounted || s->mounted(se, s->arg) == 0)
		r = s->run ? s->run(se, s->arg) : nl_run_loop(se, s->opt, NULL) ? 1 : 0;
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out:
	fuse_opt_free_args(s->args);
	return r;
}
