/*
 * metrics.h - counters for /metrics, in the Prometheus text format.
 *
 * Per-replica counters live in struct replica; this holds the rest.  All
 * updates happen on the event loop, so plain integers suffice.
 */
#ifndef RINGLB_METRICS_H
#define RINGLB_METRICS_H

#include <stdint.h>

struct evbuffer;
struct gate_stats;
struct pool;

#define METRICS_BUCKETS	14

struct metrics {
	uint64_t	responses[6];	/* by status class, [1] = 1xx ... */
	uint64_t	retries;	/* requests sent to a second replica */
	uint64_t	client_aborts;	/* clients gone before the end */
	uint64_t	latency_le[METRICS_BUCKETS];	/* not cumulative */
	uint64_t	latency_count;
	double		latency_sum;
	const struct gate_stats *clients;	/* the front end's, or NULL */
};

/* Count one answered request: its status and seconds taken. */
void	metrics_observe(struct metrics *m, int status, double seconds);

/* Append the whole exposition to out. */
void	metrics_render(struct evbuffer *out, const struct metrics *m,
	    const struct pool *p, unsigned inflight);

#endif /* RINGLB_METRICS_H */
