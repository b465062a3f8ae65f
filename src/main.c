/*
 * main.c - parse options, set up in order, run the loop, tear down in
 * reverse.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "backend.h"
#include "config.h"
#include "frontend.h"
#include "log.h"
#include "pool.h"
#include "proxy.h"
#include "ring.h"

#define DRAIN_POLL_MS	50
#define DRAIN_MAX_MS	10000	/* longest wait for in-flight requests */

struct ringlb {
	struct event_base	*base;
	struct config		 cfg;
	struct backend		*backend;
	struct pool		*pool;
	struct proxy		*proxy;
	struct frontend		*frontend;
	struct event		*sigterm, *sigint, *drain;
	int			 drain_waited_ms;
};

/* Once nothing is in flight (or we waited long enough), leave the loop. */
static void
drain_tick(evutil_socket_t fd, short what, void *arg)
{
	static const struct timeval poll = { 0, DRAIN_POLL_MS * 1000 };
	struct ringlb *lb = arg;
	unsigned n = proxy_inflight(lb->proxy);

	(void)fd;
	(void)what;
	if (n == 0 || lb->drain_waited_ms >= DRAIN_MAX_MS) {
		if (n > 0)
			log_warnx("shutting down with %u requests still in "
			    "flight", n);
		event_base_loopexit(lb->base, NULL);
		return;
	}
	lb->drain_waited_ms += DRAIN_POLL_MS;
	evtimer_add(lb->drain, &poll);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct ringlb *lb = arg;

	(void)what;
	if (evtimer_pending(lb->drain, NULL)) {
		log_info("second signal: exiting now");
		event_base_loopexit(lb->base, NULL);
		return;
	}
	log_info("%s: no longer accepting; finishing %u requests in flight",
	    strsignal((int)sig), proxy_inflight(lb->proxy));
	frontend_stop_accepting(lb->frontend);
	drain_tick(-1, 0, lb);
}

int
main(int argc, char **argv)
{
	static struct ringlb lb;
	char err[512];
	int rc;

	log_init("ringlb", LOG_LEVEL_INFO);
	rc = config_parse(&lb.cfg, argc, argv, err, sizeof(err));
	if (rc == 1)
		return 0;
	if (rc == -1) {
		fprintf(stderr, "ringlb: %s\n", err);
		return 2;
	}
	log_init("ringlb", lb.cfg.log_level);
	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		fatalx("cannot initialise libcurl");
	if ((lb.base = event_base_new()) == NULL)
		fatalx("cannot create the event loop");

	if ((lb.backend = backend_new(lb.base, &lb.cfg, err,
	    sizeof(err))) == NULL ||
	    (lb.pool = pool_new(lb.base, &lb.cfg, lb.backend, err,
	    sizeof(err))) == NULL ||
	    (lb.proxy = proxy_new(lb.base, &lb.cfg, err,
	    sizeof(err))) == NULL ||
	    (lb.frontend = frontend_new(lb.base, &lb.cfg, lb.pool, lb.proxy,
	    err, sizeof(err))) == NULL)
		fatalx("%s", err);
	if (pool_start(lb.pool) == -1)
		fatalx("cannot start the replicas: out of memory");

	lb.sigterm = evsignal_new(lb.base, SIGTERM, on_signal, &lb);
	lb.sigint = evsignal_new(lb.base, SIGINT, on_signal, &lb);
	lb.drain = evtimer_new(lb.base, drain_tick, &lb);
	if (lb.sigterm == NULL || lb.sigint == NULL || lb.drain == NULL ||
	    evsignal_add(lb.sigterm, NULL) == -1 ||
	    evsignal_add(lb.sigint, NULL) == -1)
		fatalx("cannot set up signal handling");

	log_info("listening on %s:%u, %s backend, %s ring (%u vnodes), "
	    "%d replicas", lb.cfg.listen_host, (unsigned)lb.cfg.listen_port,
	    lb.cfg.backend, ring_algo_name(lb.cfg.ring.algo),
	    lb.cfg.ring.vnodes, lb.cfg.nstatic);
	event_base_dispatch(lb.base);

	event_free(lb.drain);
	event_free(lb.sigint);
	event_free(lb.sigterm);
	proxy_free(lb.proxy);
	frontend_free(lb.frontend);
	pool_free(lb.pool);
	backend_free(lb.backend);
	event_base_free(lb.base);
	curl_global_cleanup();
	log_info("stopped");
	return 0;
}
