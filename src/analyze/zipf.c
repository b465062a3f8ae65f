/*
 * zipf.c - Zipf-distributed ids, by inverting the cumulative weights.
 */
#include <math.h>
#include <stdlib.h>

#include "util.h"
#include "zipf.h"

double
zipf_uniform(uint64_t *state)
{
	*state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (double)(*state >> 11) / 9007199254740992.0;
}

int
zipf_init(struct zipf *z, double s, long n, uint64_t seed)
{
	double sum = 0, acc = 0;
	long i;

	z->n = n;
	z->rng = seed;
	if ((z->cdf = malloc(n * sizeof(double))) == NULL)
		return -1;
	for (i = 0; i < n; i++)
		sum += 1.0 / pow((double)i + 1, s);
	for (i = 0; i < n; i++) {
		acc += 1.0 / pow((double)i + 1, s) / sum;
		z->cdf[i] = acc;
	}
	return 0;
}

long
zipf_draw(struct zipf *z)
{
	double u = zipf_uniform(&z->rng);
	long lo = 0, hi = z->n - 1;

	while (lo < hi) {
		long mid = (lo + hi) / 2;

		if (z->cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void
zipf_free(struct zipf *z)
{
	free(z->cdf);
	z->cdf = NULL;
}

double
now_s(void)
{
	return (double)now_ns() / 1e9;
}
