/*
 * worker.c - the threads that serve clients (see worker.h).
 *
 * What crosses threads, and how:
 *  - route tables: the control plane puts each new one in every worker's
 *    inbox (route.h) and wakes the worker, which takes it at once (a
 *    worker with no requests would otherwise hold the old one);
 *  - commands (stop accepting; exit): an atomic word, and the same wake;
 *  - counts: each worker's struct metrics (metrics.h), its proxy's
 *    transfers in flight, and, once stopping, its busy connections, read
 *    by the control plane with atomic loads;
 *  - ringlb's own endpoints: ctl.h.
 * The wake is an eventfd per worker, watched by its event_base: each base
 * stays single-threaded, with no locks of libevent's.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "config.h"
#include "ctl.h"
#include "frontend.h"
#include "gate.h"
#include "log.h"
#include "metrics.h"
#include "proxy.h"
#include "route.h"
#include "util.h"
#include "worker.h"

#define WORKER_DRAIN_MS	20	/* how often a stopping worker counts */

enum worker_cmd {
	WORKER_RUN = 0,
	WORKER_STOP,		/* stop accepting, finish what is open */
	WORKER_EXIT		/* leave the loop now */
};

struct worker {
	struct workers		*ws;
	int			 id;
	pthread_t		 thread;
	int			 running;
	int			 inline_;	/* on the main thread's loop */
	struct event_base	*base;
	struct route_inbox	 routes;
	struct metrics		 metrics;
	struct proxy		*proxy;
	struct ctl_port		*port;
	struct frontend		*frontend;
	int			 wakefd;
	struct event		*wake;
	struct event		*drain;
	unsigned		 cmd;		/* atomic: enum worker_cmd */
	unsigned		 seen;		/* the thread's: cmd acted on */
	int			 stopped;	/* the thread's: frontend_stop */
	unsigned		 busy;		/* atomic; once stopping */
};

struct workers {
	const struct config	*cfg;
	int			 n;
	struct worker		*w;
	struct gate_stats	 clients;	/* shared by their gates */
	int			 listen_fd;	/* shared by their front ends */
	struct fe_share		*share;		/* ... who take turns at it */
	int			 accepting;	/* front ends still accepting */
	int			 shut;		/* atomic: listen_fd shut down */
};

#define LOAD(x)		__atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define STORE(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_RELEASE)

static void
worker_wake(struct worker *w)
{
	uint64_t one = 1;

	/* a full counter (never, at 2^64 - 2) still wakes it */
	(void)write(w->wakefd, &one, sizeof(one));
}

/* frontend_share_join's wake */
static void
worker_wake_fe(void *w)
{
	worker_wake(w);
}

/* Count what is still open; the control plane reads it. */
static void
worker_count_busy(struct worker *w)
{
	STORE(w->busy, frontend_busy(w->frontend));
}

static void
on_drain(evutil_socket_t fd, short what, void *arg)
{
	static const struct timeval tv = { 0, WORKER_DRAIN_MS * 1000 };
	struct worker *w = arg;

	(void)fd;
	(void)what;
	worker_count_busy(w);
	evtimer_add(w->drain, &tv);
}

/*
 * Stopping, first step: this worker's listener goes.  The last to stop
 * accepting shuts the socket down, and clients are refused from then on
 * instead of waiting in its queue: it stops listening, what waits there
 * is reset, its descriptor stays open (it is closed once every worker has
 * ended, so no worker's loop ever sees its number reused).  Only then do
 * the workers take the second step, closing their idle connections: a
 * client that saw its idle connection closed is refused if it connects
 * again, whichever worker had it.
 */
static void
worker_stop_accepting(struct worker *w)
{
	struct workers *ws = w->ws;
	int i;

	frontend_stop_accepting(w->frontend);
	if (__atomic_sub_fetch(&ws->accepting, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	(void)shutdown(ws->listen_fd, SHUT_RD);
	STORE(ws->shut, 1);
	for (i = 0; i < ws->n; i++)
		worker_wake(&ws->w[i]);
}

static void
on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	uint64_t n;
	unsigned cmd;

	(void)what;
	(void)read(fd, &n, sizeof(n));
	/* a new table: take it now, and let the old one go */
	(void)route_inbox_view(&w->routes);
	/* or another worker took a connection: this one's turn, maybe */
	frontend_turn(w->frontend);
	cmd = LOAD(w->cmd);
	if (cmd == WORKER_EXIT && w->seen != WORKER_EXIT) {
		w->seen = cmd;
		if (!w->inline_)
			event_base_loopbreak(w->base);
		return;
	}
	if (cmd == WORKER_STOP && w->seen == WORKER_RUN) {
		w->seen = cmd;
		worker_stop_accepting(w);
	}
	if (w->seen == WORKER_STOP && !w->stopped && LOAD(w->ws->shut)) {
		w->stopped = 1;
		frontend_stop(w->frontend);
		on_drain(-1, 0, w);
	}
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	char name[16];

	snprintf(name, sizeof(name), "ringlb-w%d", w->id);
	pthread_setname_np(pthread_self(), name);
	(void)route_inbox_view(&w->routes);
	event_base_dispatch(w->base);
	return NULL;
}

/* --- setup ------------------------------------------------------------ */

static int
worker_init(struct workers *ws, struct worker *w, struct ctl *ctl,
    struct event_base *main_base, int listen_fd, char *err, size_t errlen)
{
	const struct config *cfg = ws->cfg;

	w->ws = ws;
	w->metrics.clients = &ws->clients;
	w->wakefd = -1;
	w->inline_ = main_base != NULL;
	if ((w->base = w->inline_ ? main_base : event_loop_new()) == NULL) {
		snprintf(err, errlen, "cannot create an event loop");
		return -1;
	}
	if ((w->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1 ||
	    (w->wake = event_new(w->base, w->wakefd, EV_READ | EV_PERSIST,
	    on_wake, w)) == NULL || event_add(w->wake, NULL) == -1 ||
	    (w->drain = evtimer_new(w->base, on_drain, w)) == NULL) {
		snprintf(err, errlen, "cannot set up a worker: %s",
		    strerror(errno));
		return -1;
	}
	if ((w->proxy = proxy_new(w->base, cfg, &w->routes, &w->metrics,
	    ws->n, err, errlen)) == NULL)
		return -1;
	if ((w->port = ctl_port_new(ctl, w->base)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if ((w->frontend = frontend_new(w->base, cfg, listen_fd, w->proxy,
	    w->port, &ws->clients, err, errlen)) == NULL)
		return -1;
	if (ws->share != NULL && frontend_share_join(w->frontend, ws->share,
	    w->id, worker_wake_fe, w) == -1) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static void
worker_fini(struct worker *w)
{
	/* answers from the control plane not sent: their requests go with
	 * the front end */
	ctl_port_free(w->port);
	/* the transfers first: they answer through the front end */
	proxy_free(w->proxy);
	frontend_free(w->frontend);
	route_inbox_clear(&w->routes);
	if (w->drain != NULL)
		event_free(w->drain);
	if (w->wake != NULL)
		event_free(w->wake);
	if (w->wakefd != -1)
		close(w->wakefd);
	if (w->base != NULL && !w->inline_)
		event_base_free(w->base);
}

struct workers *
workers_new(const struct config *cfg, struct ctl *ctl,
    struct event_base *main_base, char *err, size_t errlen)
{
	struct workers *ws;
	int i, fd;

	if ((fd = frontend_listen(cfg, err, errlen)) == -1)
		return NULL;
	if ((ws = calloc(1, sizeof(*ws))) == NULL ||
	    (ws->w = calloc((size_t)cfg->workers, sizeof(*ws->w))) == NULL ||
	    (cfg->workers > 1 &&
	    (ws->share = frontend_share_new(cfg->workers)) == NULL)) {
		if (ws != NULL)
			free(ws->w);
		free(ws);
		close(fd);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ws->cfg = cfg;
	ws->n = cfg->workers;
	ws->listen_fd = fd;
	ws->accepting = cfg->workers;
	for (i = 0; i < ws->n; i++) {
		ws->w[i].id = i;
		/*
		 * One worker runs on the main thread's loop: a process of one
		 * thread, as before there were workers, whose malloc takes
		 * no locks (glibc's single-thread path).
		 */
		if (worker_init(ws, &ws->w[i], ctl, ws->n == 1 ? main_base :
		    NULL, fd, err, errlen) == -1) {
			ws->n = i + 1;
			workers_free(ws);
			return NULL;
		}
	}
	return ws;
}

int
workers_start(struct workers *ws, char *err, size_t errlen)
{
	sigset_t all, old;
	int i, rc;

	/* signals are the main thread's (its event_base handles them) */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (i = 0; i < ws->n; i++) {
		if (ws->w[i].inline_) {
			(void)route_inbox_view(&ws->w[i].routes);
			continue;
		}
		rc = pthread_create(&ws->w[i].thread, NULL, worker_main,
		    &ws->w[i]);
		if (rc != 0) {
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			snprintf(err, errlen, "cannot start worker %d: %s", i,
			    strerror(rc));
			return -1;
		}
		ws->w[i].running = 1;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return 0;
}

void
workers_publish(struct route_table *t, void *arg)
{
	struct workers *ws = arg;
	int i;

	for (i = 0; i < ws->n; i++) {
		route_inbox_publish(&ws->w[i].routes, t);
		worker_wake(&ws->w[i]);
	}
}

static void
workers_command(struct workers *ws, enum worker_cmd cmd)
{
	int i;

	for (i = 0; i < ws->n; i++) {
		if (cmd == WORKER_STOP)
			STORE(ws->w[i].busy, ~0u);	/* not counted yet */
		STORE(ws->w[i].cmd, cmd);
		worker_wake(&ws->w[i]);
	}
}

void
workers_stop_accepting(struct workers *ws)
{
	workers_command(ws, WORKER_STOP);
}

unsigned
workers_inflight(const struct workers *ws)
{
	unsigned n = 0;
	int i;

	for (i = 0; i < ws->n; i++)
		n += proxy_inflight(ws->w[i].proxy);
	return n;
}

unsigned
workers_busy(const struct workers *ws)
{
	unsigned n = 0, b;
	int i;

	for (i = 0; i < ws->n; i++) {
		b = LOAD(ws->w[i].busy);
		n += b == ~0u ? 1 : b;
	}
	return n;
}

void
workers_metrics(const struct workers *ws, struct metrics *sum)
{
	int i;

	memset(sum, 0, sizeof(*sum));
	for (i = 0; i < ws->n; i++)
		metrics_sum(sum, &ws->w[i].metrics);
	sum->clients = &ws->clients;
}

void
workers_render(const struct workers *ws, struct evbuffer *out)
{
	struct metrics one;
	uint64_t n;
	int i, k;

	evbuffer_add_printf(out, "# HELP ringlb_worker_requests_total Answers "
	    "to proxied requests, by the worker that served them.\n"
	    "# TYPE ringlb_worker_requests_total counter\n");
	for (i = 0; i < ws->n; i++) {
		memset(&one, 0, sizeof(one));
		metrics_sum(&one, &ws->w[i].metrics);
		for (n = 0, k = 0; k < 6; k++)
			n += one.responses[k];
		evbuffer_add_printf(out, "ringlb_worker_requests_total{worker="
		    "\"%d\"} %llu\n", i, (unsigned long long)n);
	}
	evbuffer_add_printf(out, "# HELP ringlb_worker_connections Client "
	    "connections open, by the worker that accepted them.\n"
	    "# TYPE ringlb_worker_connections gauge\n");
	for (i = 0; i < ws->n; i++)
		evbuffer_add_printf(out, "ringlb_worker_connections{worker="
		    "\"%d\"} %u\n", i, ws->share != NULL ?
		    frontend_share_conns(ws->share, i) :
		    (unsigned)__atomic_load_n(&ws->clients.open,
		    __ATOMIC_RELAXED));
	evbuffer_add_printf(out, "# HELP ringlb_worker_accepts_out_of_turn_total "
	    "Connections a worker took while ahead of the others, as the one "
	    "whose turn it was left them waiting 10 ms.\n"
	    "# TYPE ringlb_worker_accepts_out_of_turn_total counter\n");
	for (i = 0; i < ws->n; i++)
		evbuffer_add_printf(out, "ringlb_worker_accepts_out_of_turn_total"
		    "{worker=\"%d\"} %llu\n", i, ws->share != NULL ?
		    (unsigned long long)frontend_share_out_of_turn(ws->share, i) :
		    0ULL);
}

void
workers_stop(struct workers *ws)
{
	int i;

	workers_command(ws, WORKER_EXIT);
	for (i = 0; i < ws->n; i++)
		if (ws->w[i].running) {
			pthread_join(ws->w[i].thread, NULL);
			ws->w[i].running = 0;
		}
}

void
workers_free(struct workers *ws)
{
	int i;

	if (ws == NULL)
		return;
	workers_stop(ws);
	for (i = 0; i < ws->n; i++)
		worker_fini(&ws->w[i]);
	frontend_share_free(ws->share);
	close(ws->listen_fd);
	free(ws->w);
	free(ws);
}
