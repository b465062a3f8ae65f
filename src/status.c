/*
 * status.c - GET /status, the JSON the dashboard polls, and GET /dashboard,
 * the page itself (src/dashboard.html, compiled in; it loads nothing else).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <jansson.h>

#include "backend.h"
#include "config.h"
#include "gate.h"
#include "metrics.h"
#include "pool.h"
#include "replica.h"
#include "route.h"
#include "respond.h"
#include "ring.h"
#include "status.h"

#define STATUS_TICKS	1024	/* ring ticks sent at most */

extern const unsigned char dashboard_html[];
extern const size_t dashboard_html_len;

static json_t *
status_ring(const struct config *cfg, const struct ring *r)
{
	static double pos[STATUS_TICKS];
	static int member[STATUS_TICKS];
	json_t *ticks = json_array(), *members = json_array();
	size_t i, n;

	n = ring_ticks(r, pos, member, STATUS_TICKS);
	for (i = 0; i < n; i++)
		json_array_append_new(ticks, json_pack("[f, i]",
		    (double)(long)(pos[i] * 1e6) / 1e6, member[i]));
	for (i = 0; i < (size_t)ring_count(r); i++)
		json_array_append_new(members, json_string(ring_member_name(r,
		    (int)i)));
	return json_pack("{s:s, s:I, s:o, s:o, s:b}", "algo",
	    ring_algo_name(cfg->ring.algo), "points", (json_int_t)ring_points(r),
	    "members", members, "ticks", ticks, "sampled",
	    cfg->ring.algo == RING_ALGO_TABLE || ring_points(r) > STATUS_TICKS);
}

json_t *
status_json(const struct config *cfg, struct pool *p, const struct metrics *m,
    unsigned inflight, const char *key, size_t keylen)
{
	json_t *reps = json_array(), *events = json_array(), *doc;
	const struct pool_event *e;
	struct replica *rep;
	struct timespec ts;
	uint64_t answered = 0;
	size_t i;
	int k;

	for (k = 0; (rep = pool_replica(p, k)) != NULL; k++) {
		char addr[REPLICA_HOST_MAX + 8];

		snprintf(addr, sizeof(addr), "%s:%u", rep->host,
		    (unsigned)rep->port);
		json_array_append_new(reps, json_pack("{s:s, s:s, s:s, s:I, "
		    "s:I, s:i, s:f, s:I, s:b}", "name", rep->name, "state",
		    replica_state_name(rep->state), "address", rep->addressed ?
		    addr : "", "requests",
		    (json_int_t)route_stats_requests(rep->stats), "errors",
		    (json_int_t)route_stats_errors(rep->stats), "inflight",
		    (int)route_stats_inflight(rep->stats),
		    "share", rep->keyspace_share, "respawns",
		    (json_int_t)rep->respawns, "on_ring",
		    pool_on_ring(p, rep)));
	}
	for (i = 0; (e = pool_event(p, i)) != NULL; i++)
		json_array_append_new(events, json_pack("{s:I, s:s, s:s, s:s}",
		    "time", (json_int_t)e->at_ms, "kind", e->kind, "replica",
		    e->replica, "detail", e->detail));
	for (k = 1; k <= 5; k++)
		answered += m->responses[k];
	clock_gettime(CLOCK_REALTIME, &ts);
	doc = json_pack("{s:I, s:o, s:o, s:o, s:{s:I, s:i, s:I, s:b}}",
	    "time", (json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
	    "replicas", reps, "ring", status_ring(cfg, pool_ring(p)), "events",
	    events, "totals", "requests", (json_int_t)answered, "inflight",
	    (int)inflight, "connections", (json_int_t)(m->clients ?
	    __atomic_load_n(&m->clients->open, __ATOMIC_RELAXED) : 0), "token_required",
	    cfg->admin_token[0] != '\0');
	if (doc != NULL) {
		struct backend *be = pool_backend(p);
		json_t *b = be->ops->status != NULL ? be->ops->status(be) :
		    NULL;

		if (b == NULL)
			b = json_object();
		json_object_set_new(b, "name", json_string(be->ops->name));
		json_object_set_new(doc, "backend", b);
	}
	if (doc != NULL && key != NULL) {
		struct replica *owner = pool_owner(p, key, keylen);
		json_t *lookup;
		int escaped;

		lookup = json_pack("{s:o, s:f, s:s?}", "key", respond_key(key,
		    keylen, &escaped), "position", ring_key_position(
		    pool_ring(p), key, keylen), "owner", owner ? owner->name :
		    NULL);
		if (lookup != NULL && escaped)
			json_object_set_new(lookup, "key_encoding",
			    json_string("percent"));
		json_object_set_new(doc, "lookup", lookup);
	}
	return doc;
}

void
status_dashboard(struct evhttp_request *req)
{
	struct evbuffer *buf = evbuffer_new();

	if (buf == NULL) {
		respond_error(req, 500, "out of memory");
		return;
	}
	evbuffer_add_reference(buf, dashboard_html, dashboard_html_len, NULL,
	    NULL);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/html; charset=utf-8");
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Cache-Control", "no-cache");
	respond_send(req, 200, NULL, buf);
	evbuffer_free(buf);
}
