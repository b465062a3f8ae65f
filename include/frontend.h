/*
 * frontend.h - the HTTP front end: ringlb's own endpoints, request keys,
 * and handing everything else to the proxy.
 */
#ifndef RINGLB_FRONTEND_H
#define RINGLB_FRONTEND_H

#include <stddef.h>

struct admin;
struct config;
struct event_base;
struct frontend;
struct gate_stats;
struct metrics;
struct pool;
struct proxy;

/* Bind cfg->listen_*; NULL with the reason in err. */
struct frontend	*frontend_new(struct event_base *base, const struct config *cfg,
		    struct pool *pool, struct proxy *proxy, struct admin *admin,
		    const struct metrics *metrics, char *err, size_t errlen);
/*
 * Shutting down: stop accepting new connections (the listener is
 * closed); idle ones are closed, requests arriving have --stop-grace to
 * arrive in full (then a 503), each connection closes after its answer.
 */
void		 frontend_stop_accepting(struct frontend *fe);
/* Client connections with a request arriving or being answered. */
unsigned	 frontend_busy(const struct frontend *fe);
void		 frontend_free(struct frontend *fe);
/* Counts of client connections and refusals, live for fe's lifetime. */
const struct gate_stats *frontend_clients(const struct frontend *fe);

#endif /* RINGLB_FRONTEND_H */
