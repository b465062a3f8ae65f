/*
 * status.h - the dashboard: GET /dashboard (one self-contained page) and
 * GET /status (the JSON it polls once a second).
 */
#ifndef RINGLB_STATUS_H
#define RINGLB_STATUS_H

#include <stddef.h>

#include <jansson.h>

struct config;
struct evhttp_request;
struct metrics;
struct pool;

/*
 * Replicas with their state, address, counts and key-space share; the
 * ring as ticks; recent events; totals.  With key (keylen bytes, not
 * NUL-ended) also where it falls and who owns it.  A new reference.
 */
json_t	*status_json(const struct config *cfg, struct pool *p,
	    const struct metrics *m, unsigned inflight, const char *key,
	    size_t keylen);

/* Send the dashboard page. */
void	 status_dashboard(struct evhttp_request *req);

#endif /* RINGLB_STATUS_H */
