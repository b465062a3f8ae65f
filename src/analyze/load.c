/*
 * load.c - "ringlb-analyze load": requests with request ids to a running
 * ringlb, concurrently (libcurl multi), counted by the replica named in
 * X-Served-By.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "analyze.h"
#include "curlev.h"
#include "load.h"
#include "util.h"
#include "zipf.h"

struct slot {
	CURL		*easy;
	char		 url[2048];
	char		 served[64];
	double		 start;
	int		 busy;
};

static size_t
header_cb(char *d, size_t s, size_t n, void *arg)
{
	struct slot *sl = arg;
	size_t len = s * n, vl;

	if (len > 12 && strncasecmp(d, "X-Served-By:", 12) == 0) {
		const char *v = d + 12;

		vl = len - 12;
		while (vl > 0 && (*v == ' ' || *v == '\t')) {
			v++;
			vl--;
		}
		while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
			vl--;
		if (vl >= sizeof(sl->served))
			vl = sizeof(sl->served) - 1;
		memcpy(sl->served, v, vl);
		sl->served[vl] = '\0';
	}
	return len;
}

static int
replica_index(struct load_result *res, const char *name)
{
	int i;

	if (*name == '\0')
		return -1;
	for (i = 0; i < res->nnames; i++)
		if (strcmp(res->names[i], name) == 0)
			return i;
	if (res->nnames == LOAD_REPLICAS_MAX)
		return -1;
	snprintf(res->names[res->nnames], sizeof(res->names[0]), "%s", name);
	return res->nnames++;
}

int
load_run(const struct load_opts *o, struct load_result *res)
{
	struct slot *slots;
	struct zipf z = { NULL, 0, 0 };
	CURLM *multi;
	double t0, last_tick = 0;
	long started = 0;
	int running, left, k;
	char sep = strchr(o->url, '?') ? '&' : '?';

	memset(res, 0, sizeof(*res));
	if ((res->records = calloc(o->requests, sizeof(*res->records))) ==
	    NULL || (slots = calloc(o->concurrency, sizeof(*slots))) == NULL)
		return -1;
	if (o->zipf > 0 && zipf_init(&z, o->zipf, o->keys,
	    0x853c49e6748fea9bULL) == -1)
		return -1;
	multi = curl_multi_init();
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)o->concurrency);
	for (k = 0; k < o->concurrency; k++) {
		CURL *e = curl_easy_init();

		curl_easy_setopt(e, CURLOPT_PRIVATE, &slots[k]);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, curlev_discard);
		curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
		curl_easy_setopt(e, CURLOPT_HEADERDATA, &slots[k]);
		curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o->timeout_ms);
		slots[k].easy = e;
	}
	t0 = now_s();
	for (;;) {
		CURLMsg *msg;

		for (k = 0; k < o->concurrency && started < o->requests; k++) {
			struct slot *sl = &slots[k];

			if (sl->busy)
				continue;
			snprintf(sl->url, sizeof(sl->url), "%s%crequest_id=%ld",
			    o->url, sep, o->zipf > 0 ? zipf_draw(&z) : started);
			curl_easy_setopt(sl->easy, CURLOPT_URL, sl->url);
			sl->served[0] = '\0';
			sl->start = now_s();
			sl->busy = 1;
			curl_multi_add_handle(multi, sl->easy);
			started++;
		}
		curl_multi_perform(multi, &running);
		while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
			struct slot *sl;
			struct load_record *rec;
			long code = 0;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
			    &sl);
			if (msg->data.result == CURLE_OK)
				curl_easy_getinfo(sl->easy,
				    CURLINFO_RESPONSE_CODE, &code);
			curl_multi_remove_handle(multi, sl->easy);
			sl->busy = 0;
			rec = &res->records[res->done++];
			rec->t = (float)(now_s() - t0);
			rec->ms = (float)((now_s() - sl->start) * 1e3);
			rec->status = (short)code;
			rec->replica = (short)replica_index(res, sl->served);
			if (rec->replica >= 0 && code >= 200 && code < 300)
				res->counts[rec->replica]++;
			if (code < 200 || code >= 300)
				res->errors++;
		}
		if (o->tick != NULL && now_s() - t0 - last_tick >= 0.01) {
			last_tick = now_s() - t0;
			o->tick(last_tick, o->tick_arg);
		}
		if (res->done == o->requests)
			break;
		curl_multi_poll(multi, NULL, 0, 10, NULL);
	}
	res->seconds = now_s() - t0;
	for (k = 0; k < o->concurrency; k++)
		curl_easy_cleanup(slots[k].easy);
	curl_multi_cleanup(multi);
	free(slots);
	zipf_free(&z);
	return 0;
}

void
load_free(struct load_result *res)
{
	free(res->records);
	res->records = NULL;
}

static int
cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return x < y ? -1 : x > y;
}

double
load_percentile(const struct load_result *res, double p)
{
	float *v;
	long i, n = 0;
	double r;

	if (res->done == 0 || (v = malloc(res->done * sizeof(*v))) == NULL)
		return 0;
	for (i = 0; i < res->done; i++)
		if (res->records[i].status != 0)
			v[n++] = res->records[i].ms;
	if (n == 0) {
		free(v);
		return 0;
	}
	qsort(v, n, sizeof(*v), cmp_float);
	i = (long)ceil(p / 100.0 * n) - 1;
	r = v[i < 0 ? 0 : i >= n ? n - 1 : i];
	free(v);
	return r;
}

double
load_max_over_mean(const struct load_result *res)
{
	long max = 0, sum = 0;
	int i;

	for (i = 0; i < res->nnames; i++) {
		sum += res->counts[i];
		if (res->counts[i] > max)
			max = res->counts[i];
	}
	return sum ? (double)max * res->nnames / sum : 0;
}

static void
load_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: ringlb-analyze load --url URL [--requests N] "
	    "[--concurrency C]\n"
	    "                           [--zipf S --keys K] [--timeout MS] "
	    "[--json]\n"
	    "\n"
	    "Sends N requests (default 10000), C at a time (default 64), to "
	    "URL with\nrequest_id=0..N-1 (or, with --zipf, ids drawn from a "
	    "Zipf(S) law over 0..K-1)\nand reports the requests each replica "
	    "served (X-Served-By), the busiest over\nthe mean, errors and "
	    "latency percentiles.\n");
}

int
analyze_load(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "requests", required_argument, NULL, 'n' },
		{ "concurrency", required_argument, NULL, 'c' },
		{ "zipf", required_argument, NULL, 'z' },
		{ "keys", required_argument, NULL, 'k' },
		{ "timeout", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct load_opts o = { NULL, 10000, 64, 0, 1000, 10000, NULL, NULL };
	struct load_result res;
	int ch, json = 0, i;
	long v;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'u':
			o.url = optarg;
			break;
		case 'n':
		case 'c':
		case 'k':
		case 't':
			if (parse_long(optarg, 1, 100000000, &v) == -1) {
				fprintf(stderr, "ringlb-analyze: --%s must be a "
				    "positive number\n", ch == 'n' ? "requests" :
				    ch == 'c' ? "concurrency" : ch == 'k' ?
				    "keys" : "timeout");
				return 2;
			}
			if (ch == 'n')
				o.requests = v;
			else if (ch == 'c')
				o.concurrency = (int)(v > 10000 ? 10000 : v);
			else if (ch == 'k')
				o.keys = v;
			else
				o.timeout_ms = v;
			break;
		case 'z':
			o.zipf = strtod(optarg, NULL);
			if (!(o.zipf > 0 && o.zipf < 10)) {
				fprintf(stderr, "ringlb-analyze: --zipf takes an "
				    "exponent such as 1.1\n");
				return 2;
			}
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			load_usage(stdout);
			return 0;
		default:
			load_usage(stderr);
			return 2;
		}
	}
	if (o.url == NULL) {
		fprintf(stderr, "ringlb-analyze: give --url, e.g. --url "
		    "http://127.0.0.1:5000/home\n");
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (load_run(&o, &res) == -1) {
		fprintf(stderr, "ringlb-analyze: out of memory\n");
		return 1;
	}
	if (json) {
		printf("{\"url\": \"%s\", \"requests\": %ld, \"concurrency\": %d, "
		    "\"seconds\": %.3f, \"requests_per_second\": %.1f, "
		    "\"errors\": %ld, \"max_over_mean\": %.4f, \"latency_ms\": "
		    "{\"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, \"max\": "
		    "%.3f}, \"replicas\": {", o.url, res.done, o.concurrency,
		    res.seconds, res.done / res.seconds, res.errors,
		    load_max_over_mean(&res), load_percentile(&res, 50),
		    load_percentile(&res, 90), load_percentile(&res, 99),
		    load_percentile(&res, 100));
		for (i = 0; i < res.nnames; i++)
			printf("%s\"%s\": %ld", i ? ", " : "", res.names[i],
			    res.counts[i]);
		printf("}}\n");
	} else {
		printf("%ld requests to %s, %d at a time, in %.2f s (%.0f/s)\n\n",
		    res.done, o.url, o.concurrency, res.seconds,
		    res.done / res.seconds);
		printf("%-16s %10s %8s\n", "replica", "requests", "/mean");
		for (i = 0; i < res.nnames; i++)
			printf("%-16s %10ld %8.3f\n", res.names[i], res.counts[i],
			    (double)res.counts[i] * res.nnames /
			    (res.done - res.errors > 0 ? res.done - res.errors :
			    1));
		printf("\nbusiest/mean %.4f   errors %ld   latency ms: p50 %.2f  "
		    "p90 %.2f  p99 %.2f  max %.2f\n", load_max_over_mean(&res),
		    res.errors, load_percentile(&res, 50),
		    load_percentile(&res, 90), load_percentile(&res, 99),
		    load_percentile(&res, 100));
	}
	load_free(&res);
	curl_global_cleanup();
	return res.errors ? 1 : 0;
}
