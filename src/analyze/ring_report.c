/*
 * ring_report.c - "ringlb-analyze ring": how good a ring is, exactly.
 *
 * Shares come from ring_shares() (arc lengths, arcs or slots: no
 * sampling); keys moved from ring_last_moved(), which the ring computes
 * exactly as it changes.  Times are measured here: lookups over a million
 * distinct request ids, full builds, and single changes.
 */
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analyze.h"
#include "ring.h"
#include "util.h"
#include "zipf.h"

#define NKEYS		(1 << 20)
#define LOOKUP_ROUNDS	4

/* The bars ringlb's defaults are held to. */
#define BAR_SHARE	1.02	/* busiest share over the mean */
#define BAR_MOVED	1.05	/* keys moved over the ideal */
#define BAR_LOOKUP_NS	100.0	/* at 64 replicas */
#define BAR_CHANGE_MS	5.0	/* at 64 replicas */

struct ring_result {
	int	 n;
	double	*shares;
	double	 max_over_mean, min_over_mean, stddev_over_mean;
	double	 moved_add, moved_remove;	/* share of keys */
	double	 ideal_add, ideal_remove;
	size_t	 memory, points;
	double	 lookup_ns;
	double	 build_ms, add_ms, remove_ms;
};

/* --algo for every subcommand; -1 after saying what is accepted. */
static int
algo_option(const char *v, struct ring_config *cfg)
{
	if (ring_algo_parse(v, &cfg->algo) == 0)
		return 0;
	fprintf(stderr, "ringlb-analyze: --algo must be table, hash or "
	    "classic\n");
	return -1;
}

static void
replica_name(char *buf, size_t len, int i)
{
	snprintf(buf, len, "server-%d", i);
}

static struct ring *
build(const struct ring_config *cfg, int n)
{
	struct ring *r = ring_new(cfg);
	char name[32], err[128];
	int i;

	if (r == NULL)
		return NULL;
	for (i = 1; i <= n; i++) {
		replica_name(name, sizeof(name), i);
		if (ring_add(r, name, NULL, err, sizeof(err)) == -1) {
			fprintf(stderr, "ringlb-analyze: %s\n", err);
			ring_free(r);
			return NULL;
		}
	}
	return r;
}

static int
measure(const struct ring_config *cfg, int n, char (*keys)[24],
    struct ring_result *res)
{
	struct ring *r;
	char name[32], err[128];
	double t, sum = 0, sq = 0, mean = 1.0 / n;
	volatile int sink = 0;
	int i, k;

	memset(res, 0, sizeof(*res));
	res->n = n;
	t = now_s();
	if ((r = build(cfg, n)) == NULL)
		return -1;
	res->build_ms = (now_s() - t) * 1e3;
	res->memory = ring_memory(r);
	res->points = ring_points(r);

	if ((res->shares = calloc(n, sizeof(double))) == NULL)
		return -1;
	ring_shares(r, res->shares);
	res->max_over_mean = 0;
	res->min_over_mean = 1e9;
	for (i = 0; i < n; i++) {
		double x = res->shares[i] / mean;

		res->max_over_mean = fmax(res->max_over_mean, x);
		res->min_over_mean = fmin(res->min_over_mean, x);
		sum += x;
		sq += x * x;
	}
	res->stddev_over_mean = sqrt(fmax(0, sq / n - (sum / n) *
	    (sum / n)));

	t = now_s();
	for (k = 0; k < LOOKUP_ROUNDS; k++)
		for (i = 0; i < NKEYS; i++)
			sink += ring_lookup(r, keys[i], strlen(keys[i]));
	res->lookup_ns = (now_s() - t) * 1e9 / ((double)NKEYS *
	    LOOKUP_ROUNDS);
	(void)sink;

	/* one more replica, then one fewer than at first */
	replica_name(name, sizeof(name), n + 1);
	t = now_s();
	if (ring_add(r, name, NULL, err, sizeof(err)) == 0) {
		res->add_ms = (now_s() - t) * 1e3;
		res->moved_add = ring_last_moved(r);
		ring_remove(r, name);
	}
	res->ideal_add = 1.0 / (n + 1);
	replica_name(name, sizeof(name), 1);
	t = now_s();
	ring_remove(r, name);
	res->remove_ms = (now_s() - t) * 1e3;
	res->moved_remove = ring_last_moved(r);
	res->ideal_remove = 1.0 / n;
	ring_free(r);
	return 0;
}

static int
meets_bars(const struct ring_result *x)
{
	return x->max_over_mean <= BAR_SHARE &&
	    x->moved_add / x->ideal_add <= BAR_MOVED &&
	    x->moved_remove / x->ideal_remove <= BAR_MOVED &&
	    (x->n < 64 || (x->lookup_ns < BAR_LOOKUP_NS &&
	    x->add_ms < BAR_CHANGE_MS && x->remove_ms < BAR_CHANGE_MS));
}

static void
print_table(const struct ring_config *cfg, struct ring_result *res, int nres)
{
	int i, j;

	printf("ring: %s", ring_algo_name(cfg->algo));
	if (cfg->algo == RING_ALGO_HASH)
		printf(", %u vnodes per replica", cfg->vnodes);
	printf("\n\n%4s %9s %9s %9s %10s %10s %9s %9s %9s %8s %8s  %s\n",
	    "N", "max/mean", "min/mean", "sd/mean", "add:moved", "rm:moved",
	    "memory", "lookup", "build", "add", "remove", "bars");
	printf("%4s %9s %9s %9s %10s %10s %9s %9s %9s %8s %8s\n", "", "", "",
	    "", "/ideal", "/ideal", "KiB", "ns", "ms", "ms", "ms");
	for (i = 0; i < nres; i++) {
		struct ring_result *x = &res[i];

		printf("%4d %9.4f %9.4f %9.4f %10.4f %10.4f %9zu %9.1f %9.2f "
		    "%8.2f %8.2f  %s\n", x->n, x->max_over_mean,
		    x->min_over_mean, x->stddev_over_mean,
		    x->moved_add / x->ideal_add,
		    x->moved_remove / x->ideal_remove, x->memory / 1024,
		    x->lookup_ns, x->build_ms, x->add_ms, x->remove_ms,
		    meets_bars(x) ? "met" : "MISSED");
	}
	if (nres == 1) {
		printf("\n%-12s %10s %10s\n", "replica", "share", "/mean");
		for (j = 0; j < res[0].n; j++) {
			char name[32];

			replica_name(name, sizeof(name), j + 1);
			printf("%-12s %10.6f %10.4f\n", name, res[0].shares[j],
			    res[0].shares[j] * res[0].n);
		}
	}
	printf("\nbars: busiest share <= %.2f x mean; keys moved <= %.2f x "
	    "ideal (1/(N+1) added, 1/N removed);\n      at N >= 64: lookup < "
	    "%.0f ns, a membership change (add or remove) < %.0f ms\n",
	    BAR_SHARE, BAR_MOVED, BAR_LOOKUP_NS, BAR_CHANGE_MS);
}

static void
print_json(const struct ring_config *cfg, struct ring_result *res, int nres)
{
	int i, j, all = 1;

	printf("{\"algo\": \"%s\", \"vnodes\": %u, \"bars\": {\"max_over_mean"
	    "\": %.2f, \"moved_over_ideal\": %.2f, \"lookup_ns_at_64\": %.0f, "
	    "\"change_ms_at_64\": %.0f}, \"results\": [",
	    ring_algo_name(cfg->algo), cfg->algo == RING_ALGO_HASH ?
	    cfg->vnodes : 0, BAR_SHARE, BAR_MOVED, BAR_LOOKUP_NS,
	    BAR_CHANGE_MS);
	for (i = 0; i < nres; i++) {
		struct ring_result *x = &res[i];

		all &= meets_bars(x);
		printf("%s\n  {\"replicas\": %d, \"max_over_mean\": %.6f, "
		    "\"min_over_mean\": %.6f, \"stddev_over_mean\": %.6f, "
		    "\"moved_on_add\": %.6f, \"ideal_on_add\": %.6f, "
		    "\"moved_on_add_over_ideal\": %.6f, \"moved_on_remove\": "
		    "%.6f, \"ideal_on_remove\": %.6f, "
		    "\"moved_on_remove_over_ideal\": %.6f, \"memory_bytes\": "
		    "%zu, \"points\": %zu, \"lookup_ns\": %.2f, \"build_ms\": "
		    "%.3f, \"add_ms\": %.3f, \"remove_ms\": %.3f, "
		    "\"meets_bars\": %s, \"shares\": [", i ? "," : "", x->n,
		    x->max_over_mean, x->min_over_mean, x->stddev_over_mean,
		    x->moved_add, x->ideal_add, x->moved_add / x->ideal_add,
		    x->moved_remove, x->ideal_remove,
		    x->moved_remove / x->ideal_remove, x->memory, x->points,
		    x->lookup_ns, x->build_ms, x->add_ms, x->remove_ms,
		    meets_bars(x) ? "true" : "false");
		for (j = 0; j < x->n; j++)
			printf("%s%.8f", j ? ", " : "", x->shares[j]);
		printf("]}");
	}
	printf("\n], \"all_bars_met\": %s}\n", all ? "true" : "false");
}

static void
ring_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: ringlb-analyze ring [--algo table|hash|classic] "
	    "[--replicas N[,N...]]\n"
	    "                           [--vnodes V] [--json]\n"
	    "\n"
	    "For rings of N replicas named server-1..server-N: each replica's "
	    "exact share of\nthe key space, the busiest and idlest share over "
	    "the mean, the share of keys\nthat move when server-(N+1) is added "
	    "and when server-1 is removed, against\nthe ideal 1/(N+1) and 1/N, "
	    "the ring's memory, the time of a lookup (over a\nmillion distinct "
	    "request ids), of building the ring, and of one change.\n"
	    "Defaults: --algo table --replicas 3,8,16,32,64 --vnodes 160.\n");
}

int
analyze_ring(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "algo", required_argument, NULL, 'a' },
		{ "replicas", required_argument, NULL, 'n' },
		{ "vnodes", required_argument, NULL, 'v' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct ring_config cfg = { RING_ALGO_TABLE, RING_VNODES_DEFAULT };
	const char *list = "3,8,16,32,64";
	struct ring_result res[64];
	char (*keys)[24];
	int ch, json = 0, nres = 0, i;
	long v;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'a':
			if (algo_option(optarg, &cfg) == -1)
				return 2;
			break;
		case 'n':
			list = optarg;
			break;
		case 'v':
			if (parse_long(optarg, 1, RING_VNODES_MAX, &v) == -1) {
				fprintf(stderr, "ringlb-analyze: --vnodes must "
				    "be 1 to %d\n", RING_VNODES_MAX);
				return 2;
			}
			cfg.vnodes = (unsigned)v;
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			ring_usage(stdout);
			return 0;
		default:
			ring_usage(stderr);
			return 2;
		}
	}
	if ((keys = malloc(NKEYS * sizeof(*keys))) == NULL)
		return 1;
	for (i = 0; i < NKEYS; i++)
		snprintf(keys[i], sizeof(keys[i]), "%d", i);
	while (*list != '\0' && nres < 64) {
		char item[16];
		size_t n = strcspn(list, ",");

		if (n >= sizeof(item) || (memcpy(item, list, n), item[n] = '\0',
		    parse_long(item, 1, 1000, &v)) == -1) {
			fprintf(stderr, "ringlb-analyze: --replicas takes "
			    "numbers from 1 to 1000, e.g. 3,8,64\n");
			return 2;
		}
		if (measure(&cfg, (int)v, keys, &res[nres]) == -1) {
			fprintf(stderr, "ringlb-analyze: cannot build a %s ring "
			    "of %ld replicas\n", ring_algo_name(cfg.algo), v);
			return 1;
		}
		nres++;
		list += n;
		if (*list == ',')
			list++;
	}
	if (json)
		print_json(&cfg, res, nres);
	else
		print_table(&cfg, res, nres);
	for (i = 0; i < nres; i++)
		free(res[i].shares);
	free(keys);
	return 0;
}

/* --- bounded loads, simulated ---------------------------------------- */

static unsigned
sim_load(const void *data)
{
	return *(const unsigned *)data;
}

struct bounded_result {
	double	factor;
	double	max_over_mean;		/* busiest in-flight, averaged */
	double	peak_over_mean;		/* busiest in-flight at any time */
	double	displaced;		/* share of requests */
};

/*
 * A closed system: `inflight` requests are always out; each step one of
 * them (at random) finishes and a new one arrives with a Zipf(s) key.
 * Every arrival is placed by ring_lookup_bounded() - ringlb's own code -
 * or, with factor 0, by plain ring lookup.
 */
static void
simulate_bounded(const struct ring_config *cfg, int n, double factor,
    double s, long keys, int inflight, long steps, struct bounded_result *br)
{
	struct ring *r;
	unsigned *load = calloc(n, sizeof(*load));
	int *where = calloc(inflight, sizeof(*where));
	struct zipf z;
	double max_sum = 0;
	long i, displaced = 0, samples = 0;
	unsigned long total = 0;
	unsigned peak = 0;
	char name[32], err[128], key[24];
	int j, k, out[2], disp;

	memset(br, 0, sizeof(*br));
	br->factor = factor;
	r = ring_new(cfg);
	for (j = 0; j < n; j++) {
		replica_name(name, sizeof(name), j + 1);
		ring_add(r, name, &load[j], err, sizeof(err));
	}
	zipf_init(&z, s, keys, 0x9E3779B97F4A7C15ULL);
	for (i = 0; i < steps + inflight; i++) {
		snprintf(key, sizeof(key), "%ld", zipf_draw(&z));
		/* the slot of the request that finishes makes room */
		k = i < inflight ? (int)i : (int)((z.rng >> 17) % inflight);
		if (i >= inflight) {
			load[where[k]]--;
			total--;
		}
		if (factor > 0)
			ring_lookup_bounded(r, key, strlen(key), factor, total,
			    sim_load, out, 1, &disp);
		else {
			out[0] = ring_lookup(r, key, strlen(key));
			disp = 0;
		}
		where[k] = (int)((unsigned *)ring_member_data(r, out[0]) -
		    load);
		load[where[k]]++;
		total++;
		if (i >= inflight) {
			unsigned m = 0;

			displaced += disp;
			for (j = 0; j < n; j++)
				m = load[j] > m ? load[j] : m;
			peak = m > peak ? m : peak;
			max_sum += m;
			samples++;
		}
	}
	br->max_over_mean = max_sum / samples / ((double)inflight / n);
	br->peak_over_mean = peak / ((double)inflight / n);
	br->displaced = (double)displaced / samples;
	ring_free(r);
	free(load);
	free(where);
	zipf_free(&z);
}

static void
bounded_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: ringlb-analyze bounded [--algo A] [--replicas N] "
	    "[--zipf S] [--keys K]\n"
	    "                              [--inflight C] [--factors F,F,...] "
	    "[--json]\n"
	    "\n"
	    "Simulates C requests always in flight (default 200) over N "
	    "replicas (default 8),\nkeys drawn from Zipf(S) over K ids "
	    "(defaults 1.1 and 1000), placed by ringlb's\nbounded-load code "
	    "for each balance factor F (0 = plain consistent hashing;\n"
	    "default 0,2,1.5,1.25,1.1), and reports the busiest replica's "
	    "in-flight load\nover the mean (averaged, and at its peak) and "
	    "the share of requests displaced\nfrom their home replica.\n");
}

int
analyze_bounded(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "algo", required_argument, NULL, 'a' },
		{ "replicas", required_argument, NULL, 'n' },
		{ "zipf", required_argument, NULL, 'z' },
		{ "keys", required_argument, NULL, 'k' },
		{ "inflight", required_argument, NULL, 'c' },
		{ "factors", required_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct ring_config cfg = { RING_ALGO_TABLE, RING_VNODES_DEFAULT };
	struct bounded_result br[16];
	const char *factors = "0,2,1.5,1.25,1.1";
	double s = 1.1;
	long n = 8, keys = 1000, inflight = 200, v;
	int ch, json = 0, nf = 0, i;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'a':
			if (algo_option(optarg, &cfg) == -1)
				return 2;
			break;
		case 'n':
		case 'k':
		case 'c':
			if (parse_long(optarg, 1, 1000000, &v) == -1) {
				fprintf(stderr, "ringlb-analyze: --%s must be a "
				    "positive number\n", ch == 'n' ? "replicas" :
				    ch == 'k' ? "keys" : "inflight");
				return 2;
			}
			if (ch == 'n')
				n = v > 1000 ? 1000 : v;
			else if (ch == 'k')
				keys = v;
			else
				inflight = v;
			break;
		case 'z':
			s = strtod(optarg, NULL);
			if (!(s > 0 && s < 10)) {
				fprintf(stderr, "ringlb-analyze: --zipf takes an "
				    "exponent such as 1.1\n");
				return 2;
			}
			break;
		case 'f':
			factors = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			bounded_usage(stdout);
			return 0;
		default:
			bounded_usage(stderr);
			return 2;
		}
	}
	while (*factors != '\0' && nf < 16) {
		char *end;
		double f = strtod(factors, &end);

		if (end == factors || (f != 0 && (f < 1 || f > 10))) {
			fprintf(stderr, "ringlb-analyze: --factors takes numbers "
			    "from 1 to 10, or 0 for none, e.g. 0,1.25\n");
			return 2;
		}
		simulate_bounded(&cfg, (int)n, f, s, keys, (int)inflight,
		    200000, &br[nf++]);
		factors = *end == ',' ? end + 1 : end;
	}
	if (json) {
		printf("{\"algo\": \"%s\", \"replicas\": %ld, \"zipf\": %.3f, "
		    "\"keys\": %ld, \"inflight\": %ld, \"results\": [",
		    ring_algo_name(cfg.algo), n, s, keys, inflight);
		for (i = 0; i < nf; i++)
			printf("%s{\"factor\": %.3f, \"max_over_mean\": %.4f, "
			    "\"peak_over_mean\": %.4f, \"displaced\": %.5f}",
			    i ? ", " : "", br[i].factor, br[i].max_over_mean,
			    br[i].peak_over_mean, br[i].displaced);
		printf("]}\n");
		return 0;
	}
	printf("bounded loads: %s ring, %ld replicas, %ld requests in flight, "
	    "Zipf(%.2f) keys over %ld ids\n\n", ring_algo_name(cfg.algo), n,
	    inflight, s, keys);
	printf("%8s %16s %16s %12s\n", "factor", "busiest/mean", "peak/mean",
	    "displaced");
	for (i = 0; i < nf; i++) {
		if (br[i].factor == 0)
			printf("%8s", "off");
		else
			printf("%8.2f", br[i].factor);
		printf(" %16.3f %16.3f %11.2f%%\n", br[i].max_over_mean,
		    br[i].peak_over_mean, br[i].displaced * 100);
	}
	return 0;
}
