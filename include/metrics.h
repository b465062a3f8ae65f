/*
 * metrics.h - counters for /metrics, in the Prometheus text format.
 *
 * Per-replica counters live in struct route_stats; this holds the rest.
 * Each worker counts in a struct metrics of its own, written by its
 * thread alone and read by the control plane's, which sums them
 * (metrics_sum): a count is a relaxed atomic load and store, no locked
 * instruction, and a reader sees every count whole.
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
	uint64_t	displaced;	/* sent past their owner: bounded loads */
	uint64_t	latency_le[METRICS_BUCKETS];	/* not cumulative */
	uint64_t	latency_count;
	double		latency_sum;
	const struct gate_stats *clients;	/* the front end's, or NULL */
};

/* Add n to a counter of the worker's own struct metrics. */
#define METRICS_ADD(field, n)						\
	__atomic_store_n(&(field), __atomic_load_n(&(field),		\
	    __ATOMIC_RELAXED) + (n), __ATOMIC_RELAXED)

/* Count one answered request: its status and seconds taken. */
void	metrics_observe(struct metrics *m, int status, double seconds);

/* Add src's counts to sum's (clients is left alone). */
void	metrics_sum(struct metrics *sum, const struct metrics *src);

/* Append the whole exposition to out. */
void	metrics_render(struct evbuffer *out, const struct metrics *m,
	    const struct pool *p, unsigned inflight);

#endif /* RINGLB_METRICS_H */
