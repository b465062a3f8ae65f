/*
 * worker.h - the threads that serve clients (--workers).
 *
 * Each worker is a whole data plane on a thread of its own (a single one
 * on the main thread's loop, with no thread made): an event_base,
 * an evhttp front end with its gate on a listener of its own (on the one
 * listening socket the workers share, taking turns at it: see
 * frontend.c), and a proxy whose libcurl multi handle keeps its own
 * connections to the replicas.  A connection is served to its end by the worker that
 * accepted it.  The control plane, on the main thread, hands workers new
 * route tables (workers_publish) and answers ringlb's own endpoints for
 * them (ctl.h); workers touch nothing of its.
 */
#ifndef RINGLB_WORKER_H
#define RINGLB_WORKER_H

#include <stddef.h>

struct config;
struct evbuffer;
struct ctl;
struct metrics;
struct route_table;
struct workers;

/*
 * cfg->workers workers, each listening already, none running yet; NULL
 * with the reason in err.  Their endpoints' requests go to ctl.  A single
 * worker runs on main_base, the main thread's loop, and no thread is made.
 */
struct workers	*workers_new(const struct config *cfg, struct ctl *ctl,
		    struct event_base *main_base, char *err, size_t errlen);
/* Start their threads; -1 with the reason in err. */
int		 workers_start(struct workers *ws, char *err, size_t errlen);
/* A new route table, for every worker (pool_set_publish's callback). */
void		 workers_publish(struct route_table *t, void *ws);
/*
 * Shutting down: every worker stops accepting; once the last has, the
 * socket is shut (new clients are refused) and every worker finishes what
 * it has (see frontend_stop).
 */
void		 workers_stop_accepting(struct workers *ws);
/* Transfers in flight and busy client connections, all workers. */
unsigned	 workers_inflight(const struct workers *ws);
unsigned	 workers_busy(const struct workers *ws);
/* Every worker's counts, summed into sum (zeroed first). */
void		 workers_metrics(const struct workers *ws, struct metrics *sum);
/* Each worker's share of the answers, for /metrics. */
void		 workers_render(const struct workers *ws, struct evbuffer *out);
/* Stop the threads and wait for them. */
void		 workers_stop(struct workers *ws);
/* The same if not done, then free all (after ctl_free: see ctl.h). */
void		 workers_free(struct workers *ws);

#endif /* RINGLB_WORKER_H */
