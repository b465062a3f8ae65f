/*
 * zipf.h - Zipf-distributed ids for ringlb-analyze, and its clock.
 */
#ifndef RINGLB_ANALYZE_ZIPF_H
#define RINGLB_ANALYZE_ZIPF_H

#include <stdint.h>

/* Ids 0..n-1 drawn with probability proportional to 1 / (id + 1)^s. */
struct zipf {
	double		*cdf;
	long		 n;
	uint64_t	 rng;	/* the generator's state: runs repeat */
};

/* 0, or -1 for want of memory. */
int	zipf_init(struct zipf *z, double s, long n, uint64_t seed);
long	zipf_draw(struct zipf *z);
void	zipf_free(struct zipf *z);
/* A uniform double in [0, 1) from a 64-bit LCG state. */
double	zipf_uniform(uint64_t *state);
/* Seconds on the monotonic clock. */
double	now_s(void);

#endif /* RINGLB_ANALYZE_ZIPF_H */
