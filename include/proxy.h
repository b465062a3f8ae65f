/*
 * proxy.h - forwarding requests to replicas with libcurl's multi
 * interface, driven by the same libevent loop as the front end.
 */
#ifndef RINGLB_PROXY_H
#define RINGLB_PROXY_H

#include <stddef.h>

struct config;
struct event_base;
struct evhttp_request;
struct metrics;
struct pool;
struct proxy;
struct replica;

/* Failed connections are reported to pool (pool_suspect); answers are
 * counted in metrics. */
struct proxy	*proxy_new(struct event_base *base, const struct config *cfg,
		    struct pool *pool, struct metrics *metrics, char *err,
		    size_t errlen);
/* Abort every transfer still running (their clients get no reply). */
void		 proxy_free(struct proxy *px);

/*
 * Forward req to targets[0]; when that replica cannot be reached, retry
 * once on targets[1] (requests without a body, or idempotent ones).  The
 * proxy answers req itself in every case, streaming the replica's answer
 * as it arrives.  request_id, when not NULL, is sent as X-Request-Id (the
 * client sent none).  Each target's refs count is held until the transfer
 * ends, so the pool keeps it alive.
 */
void		 proxy_forward(struct proxy *px, struct evhttp_request *req,
		    struct replica *const *targets, int ntargets,
		    const char *request_id);

/* Transfers in flight. */
unsigned	 proxy_inflight(const struct proxy *px);

#endif /* RINGLB_PROXY_H */
