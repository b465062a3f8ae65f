/*
 * load.h - an HTTP load generator on libcurl's multi interface, for
 * "ringlb-analyze load" and the experiments.
 */
#ifndef RINGLB_ANALYZE_LOAD_H
#define RINGLB_ANALYZE_LOAD_H

#include <stddef.h>

#define LOAD_REPLICAS_MAX	256

struct load_opts {
	const char	*url;		/* request_id=K is appended */
	long		 requests;
	int		 concurrency;
	double		 zipf;		/* 0: ids 0..requests-1, distinct */
	long		 keys;		/* with zipf: ids drawn from 0..keys-1 */
	long		 timeout_ms;
	/* called about every 10 ms while the load runs; t in seconds */
	void		(*tick)(double t, void *arg);
	void		*tick_arg;
};

struct load_record {
	float		 t;		/* seconds from the start, at the end */
	float		 ms;		/* latency */
	short		 replica;	/* index into names, -1: none */
	short		 status;	/* HTTP status, 0: no answer */
};

struct load_result {
	char		 names[LOAD_REPLICAS_MAX][64];	/* from X-Served-By */
	long		 counts[LOAD_REPLICAS_MAX];
	int		 nnames;
	long		 done, errors;
	double		 seconds;
	struct load_record *records;	/* one per request, in end order */
};

/* Run the load; 0, or -1 with the reason on stderr. */
int	load_run(const struct load_opts *o, struct load_result *res);
void	load_free(struct load_result *res);
/* Latency percentile p (0..100) over the answered requests, ms. */
double	load_percentile(const struct load_result *res, double p);
/* The busiest replica's requests over the mean. */
double	load_max_over_mean(const struct load_result *res);
/* Sort names (and counts) so output is stable; records keep indices. */
int	analyze_load(int argc, char **argv);

#endif /* RINGLB_ANALYZE_LOAD_H */
