/*
 * health.c - heartbeats to replicas.
 *
 * Each replica has one reusable easy handle (rep->hc_easy); at most one
 * heartbeat per replica is out at a time.  When checks are due is the
 * pool's business (pool.c); every result goes back through one callback
 * that logs only real state changes.
 *
 * A heartbeat is never judged late because ringlb's own loop was busy:
 * libcurl checks a transfer's deadline before it reads the socket, so
 * after a loop stall an answer already waiting there is reported as a
 * timeout.  A timeout noticed well after its deadline (HC_LATE_MS) is
 * therefore not counted: the heartbeat is sent again at once, up to
 * HC_LATE_RETRIES times in a row, and only the retry's result counts.
 * A replica that hangs is still timed out on time, and counted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "config.h"
#include "curlev.h"
#include "health.h"
#include "log.h"
#include "replica.h"
#include "util.h"

#define HC_LATE_MS	100	/* a timeout noticed this late: the loop's */
#define HC_LATE_RETRIES	3

struct health {
	const struct config	*cfg;
	struct curlev		*cv;
	health_result_cb	 result;
	void			*arg;
};

struct hc {
	struct replica	*rep;
	uint64_t	 sent_ms;	/* when this attempt went out */
	int		 late;		/* late timeouts retried in a row */
	char		 url[REPLICA_URL_MAX + 16];
	char		 errbuf[CURL_ERROR_SIZE];
};

static void
health_done(CURL *easy, CURLcode rc, void *arg)
{
	struct health *h = arg;
	struct hc *hc;
	long code = 0;
	char why[CURL_ERROR_SIZE + 64];

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, &hc);
	if (rc == CURLE_OPERATION_TIMEDOUT && hc->late < HC_LATE_RETRIES &&
	    now_ms() - hc->sent_ms > (uint64_t)h->cfg->health_timeout_ms +
	    HC_LATE_MS) {
		log_debug("replica %s: heartbeat timeout seen %llu ms after "
		    "it was sent (the loop was busy); asking again",
		    hc->rep->name, (unsigned long long)(now_ms() -
		    hc->sent_ms));
		hc->late++;
		hc->errbuf[0] = '\0';
		hc->sent_ms = now_ms();
		if (curlev_add(h->cv, easy) == 0)
			return;
	}
	hc->rep->hc_busy = 0;
	if (rc != CURLE_OK) {
		snprintf(why, sizeof(why), "heartbeat failed: %s",
		    hc->errbuf[0] ? hc->errbuf : curl_easy_strerror(rc));
		h->result(hc->rep, 0, why, h->arg);
		return;
	}
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
	if (code != 200) {
		snprintf(why, sizeof(why), "heartbeat answered %ld", code);
		h->result(hc->rep, 0, why, h->arg);
		return;
	}
	h->result(hc->rep, 1, NULL, h->arg);
}

struct health *
health_new(struct event_base *base, const struct config *cfg,
    health_result_cb result, void *arg)
{
	struct health *h;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	h->cfg = cfg;
	h->result = result;
	h->arg = arg;
	if ((h->cv = curlev_new(base, health_done, h)) == NULL) {
		free(h);
		return NULL;
	}
	return h;
}

void
health_free(struct health *h)
{
	if (h == NULL)
		return;
	curlev_free(h->cv);
	free(h);
}

static CURL *
hc_easy(struct health *h, struct replica *rep)
{
	struct hc *hc;
	CURL *e;

	if (rep->hc_easy != NULL)
		return rep->hc_easy;
	if ((hc = calloc(1, sizeof(*hc))) == NULL)
		return NULL;
	if ((e = curl_easy_init()) == NULL) {
		free(hc);
		return NULL;
	}
	hc->rep = rep;
	curl_easy_setopt(e, CURLOPT_PRIVATE, hc);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, curlev_discard);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, hc->errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	/* a heartbeat's answer is a line: libcurl's least buffer, not the
	 * 16 KiB each replica's handle would otherwise keep */
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 1024L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, h->cfg->health_timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	    h->cfg->health_timeout_ms);
	rep->hc_easy = e;
	return e;
}

void
health_check(struct health *h, struct replica *rep)
{
	struct hc *hc;
	CURL *e;

	if (rep->hc_busy || (e = hc_easy(h, rep)) == NULL)
		return;
	curl_easy_getinfo(e, CURLINFO_PRIVATE, &hc);
	/* the address changes when a replica is started again */
	snprintf(hc->url, sizeof(hc->url), "%s/heartbeat", rep->base_url);
	curl_easy_setopt(e, CURLOPT_URL, hc->url);
	hc->errbuf[0] = '\0';
	hc->late = 0;
	hc->sent_ms = now_ms();
	if (curlev_add(h->cv, e) == 0)
		rep->hc_busy = 1;
}

void
health_forget(struct health *h, struct replica *rep)
{
	struct hc *hc;

	if (rep->hc_easy == NULL)
		return;
	if (rep->hc_busy)
		curlev_remove(h->cv, rep->hc_easy);
	curl_easy_getinfo(rep->hc_easy, CURLINFO_PRIVATE, &hc);
	curl_easy_cleanup(rep->hc_easy);
	free(hc);
	rep->hc_easy = NULL;
	rep->hc_busy = 0;
}
