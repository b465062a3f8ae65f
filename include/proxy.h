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
struct proxy;
struct route_inbox;

/* Requests are routed by the tables arriving in routes; answers are
 * counted in metrics.  share: how many proxies --upstream-connections is
 * shared by (one per worker). */
struct proxy	*proxy_new(struct event_base *base, const struct config *cfg,
		    struct route_inbox *routes, struct metrics *metrics,
		    int share, char *err, size_t errlen);
/* Abort every transfer still running (their clients get no reply). */
void		 proxy_free(struct proxy *px);

/*
 * Forward req to the replica owning key on the newest route table; when
 * that replica cannot be reached, retry once on the next one (requests
 * without a body, or idempotent ones).  The proxy answers req itself in
 * every case (a 503 when no replica is on the ring), streaming the
 * replica's answer as it arrives.  request_id, when not NULL, is sent as
 * X-Request-Id (the client sent none).
 */
void		 proxy_forward(struct proxy *px, struct evhttp_request *req,
		    const char *key, size_t klen, const char *request_id);

/* Transfers in flight. */
unsigned	 proxy_inflight(const struct proxy *px);

#endif /* RINGLB_PROXY_H */
