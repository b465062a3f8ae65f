/*
 * metrics.c - the /metrics exposition, following the conventions of the
 * Prometheus client libraries: a ringlb_ prefix, _total counters, base
 * units (seconds), one HELP and TYPE line per family.
 */
#include <stdio.h>

#include <event2/buffer.h>

#include "gate.h"
#include "metrics.h"
#include "pool.h"
#include "replica.h"
#include "route.h"

static const double bounds[METRICS_BUCKETS] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
	1, 2.5, 5, 10
};

void
metrics_observe(struct metrics *m, int status, double seconds)
{
	int i;

	double sum;

	if (status >= 100 && status < 600)
		METRICS_ADD(m->responses[status / 100], 1);
	for (i = 0; i < METRICS_BUCKETS; i++)
		if (seconds <= bounds[i]) {
			METRICS_ADD(m->latency_le[i], 1);
			break;
		}
	METRICS_ADD(m->latency_count, 1);
	__atomic_load(&m->latency_sum, &sum, __ATOMIC_RELAXED);
	sum += seconds;
	__atomic_store(&m->latency_sum, &sum, __ATOMIC_RELAXED);
}

void
metrics_sum(struct metrics *sum, const struct metrics *src)
{
	double d;
	int i;

#define GET(f)	__atomic_load_n(&src->f, __ATOMIC_RELAXED)
	for (i = 0; i < 6; i++)
		sum->responses[i] += GET(responses[i]);
	sum->retries += GET(retries);
	sum->client_aborts += GET(client_aborts);
	sum->displaced += GET(displaced);
	for (i = 0; i < METRICS_BUCKETS; i++)
		sum->latency_le[i] += GET(latency_le[i]);
	sum->latency_count += GET(latency_count);
#undef GET
	__atomic_load(&src->latency_sum, &d, __ATOMIC_RELAXED);
	sum->latency_sum += d;
}

static void
family(struct evbuffer *out, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	    name, type);
}

/* A family of one unlabelled value. */
static void
scalar(struct evbuffer *out, const char *name, const char *type,
    const char *help, uint64_t value)
{
	family(out, name, type, help);
	evbuffer_add_printf(out, "%s %llu\n", name, (unsigned long long)value);
}

/* One line per visible replica of a per-replica value. */
static void
per_replica(struct evbuffer *out, const struct pool *p, const char *name,
    const char *type, const char *help,
    uint64_t (*value)(const struct replica *))
{
	const struct replica *rep;
	int i;

	family(out, name, type, help);
	for (i = 0; (rep = pool_replica(p, i)) != NULL; i++)
		evbuffer_add_printf(out, "%s{replica=\"%s\"} %llu\n", name,
		    rep->name, (unsigned long long)value(rep));
}

static uint64_t v_requests(const struct replica *r)
{
	return route_stats_requests(r->stats);
}
static uint64_t v_errors(const struct replica *r)
{
	return route_stats_errors(r->stats);
}
static uint64_t v_inflight(const struct replica *r)
{
	return route_stats_inflight(r->stats);
}
static uint64_t v_hbfail(const struct replica *r)
{
	return r->heartbeat_failures;
}
static uint64_t v_respawns(const struct replica *r) { return r->respawns; }
static uint64_t v_up(const struct replica *r)
{
	return r->state == REPLICA_UP || r->state == REPLICA_SUSPECT;
}

void
metrics_render(struct evbuffer *out, const struct metrics *m,
    const struct pool *p, unsigned inflight)
{
	const struct replica *rep;
	uint64_t cum = 0;
	int i;

	per_replica(out, p, "ringlb_replica_requests_total", "counter",
	    "Requests answered by each replica.", v_requests);
	per_replica(out, p, "ringlb_replica_errors_total", "counter",
	    "Requests that failed at each replica (refused, reset, timed "
	    "out).", v_errors);
	per_replica(out, p, "ringlb_replica_inflight_requests", "gauge",
	    "Requests being served by each replica now.", v_inflight);
	per_replica(out, p, "ringlb_replica_up", "gauge",
	    "1 while the replica is on the ring, else 0.", v_up);
	per_replica(out, p, "ringlb_heartbeat_failures_total", "counter",
	    "Heartbeats that failed, by replica.", v_hbfail);
	per_replica(out, p, "ringlb_respawns_total", "counter",
	    "Times a replica was started again after failing.", v_respawns);

	family(out, "ringlb_replica_keyspace_share", "gauge",
	    "Each replica's exact share of the key space (0 off the ring).");
	for (i = 0; (rep = pool_replica(p, i)) != NULL; i++)
		evbuffer_add_printf(out, "ringlb_replica_keyspace_share{replica="
		    "\"%s\"} %.6f\n", rep->name, rep->keyspace_share);

	family(out, "ringlb_replica_state", "gauge",
	    "1 for the state each replica is in.");
	for (i = 0; (rep = pool_replica(p, i)) != NULL; i++)
		evbuffer_add_printf(out, "ringlb_replica_state{replica=\"%s\","
		    "state=\"%s\"} 1\n", rep->name,
		    replica_state_name(rep->state));

	family(out, "ringlb_responses_total", "counter",
	    "Answers to proxied requests, by status class.");
	for (i = 1; i <= 5; i++)
		evbuffer_add_printf(out, "ringlb_responses_total{code=\"%dxx\"}"
		    " %llu\n", i, (unsigned long long)m->responses[i]);

	family(out, "ringlb_request_duration_seconds", "histogram",
	    "Time from a proxied request's arrival to the end of its answer.");
	for (i = 0; i < METRICS_BUCKETS; i++) {
		cum += m->latency_le[i];
		evbuffer_add_printf(out, "ringlb_request_duration_seconds_bucket"
		    "{le=\"%g\"} %llu\n", bounds[i], (unsigned long long)cum);
	}
	evbuffer_add_printf(out, "ringlb_request_duration_seconds_bucket"
	    "{le=\"+Inf\"} %llu\n", (unsigned long long)m->latency_count);
	evbuffer_add_printf(out, "ringlb_request_duration_seconds_sum %.6f\n",
	    m->latency_sum);
	evbuffer_add_printf(out, "ringlb_request_duration_seconds_count %llu\n",
	    (unsigned long long)m->latency_count);

	scalar(out, "ringlb_retries_total", "counter",
	    "Requests retried on the next replica of the ring.", m->retries);
	scalar(out, "ringlb_client_aborts_total", "counter",
	    "Requests whose client went away before the answer ended.",
	    m->client_aborts);
	if (m->clients != NULL) {
		struct gate_stats copy, *g = &copy;

		gate_stats_read(m->clients, &copy);
		scalar(out, "ringlb_client_connections", "gauge",
		    "Client connections open now.", g->open);
		scalar(out, "ringlb_client_connections_total", "counter",
		    "Client connections accepted.", g->accepted);
		scalar(out, "ringlb_client_idle_closed_total", "counter",
		    "Keep-alive client connections closed after "
		    "--keepalive-timeout.", g->idle_closed);
		scalar(out, "ringlb_request_body_bytes", "gauge",
		    "Bytes of request bodies held now, against "
		    "--max-body-memory.", g->body_bytes);
		scalar(out, "ringlb_response_buffer_bytes", "gauge",
		    "Bytes of answers held for clients now, against "
		    "--max-response-memory.", g->answer_bytes);
		family(out, "ringlb_client_refused_total", "counter",
		    "Requests and connections refused before reaching a route, "
		    "by status.");
		for (i = 0; i < GATE_CODES; i++)
			evbuffer_add_printf(out, "ringlb_client_refused_total"
			    "{code=\"%d\"} %llu\n", gate_codes[i],
			    (unsigned long long)g->refused[i]);
	}
	scalar(out, "ringlb_inflight_requests", "gauge",
	    "Proxied requests in flight.", inflight);
	scalar(out, "ringlb_replicas", "gauge", "Replicas ringlb manages.",
	    (uint64_t)pool_size(p));
	scalar(out, "ringlb_replicas_healthy", "gauge",
	    "Replicas on the ring.", (uint64_t)pool_healthy(p));
	scalar(out, "ringlb_ring_points", "gauge",
	    "Points (virtual nodes or slots) on the ring.",
	    pool_ring_points(p));
	scalar(out, "ringlb_ring_changes_total", "counter",
	    "Times a replica joined or left the ring.", pool_ring_changes(p));
	family(out, "ringlb_ring_last_change_moved_ratio", "gauge",
	    "Share of the key space that changed replica in the last ring "
	    "change.");
	evbuffer_add_printf(out, "ringlb_ring_last_change_moved_ratio %.6f\n",
	    pool_ring_last_moved(p));
	scalar(out, "ringlb_bounded_displaced_total", "counter",
	    "Requests sent past their owner because it was at the "
	    "--balance-factor cap.", m->displaced);
}
