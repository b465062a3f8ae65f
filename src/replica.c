/*
 * replica.c - helpers on struct replica.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "replica.h"
#include "route.h"

const char *
replica_state_name(enum replica_state st)
{
	switch (st) {
	case REPLICA_STARTING:
		return "starting";
	case REPLICA_UP:
		return "up";
	case REPLICA_SUSPECT:
		return "suspect";
	case REPLICA_DOWN:
		return "down";
	case REPLICA_STOPPING:
		return "stopping";
	}
	return "unknown";
}

int
replica_set_address(struct replica *rep, const char *host, uint16_t port)
{
	int n;

	if (strlen(host) > REPLICA_HOST_MAX)
		return -1;
	/* An IPv6 literal needs brackets inside a URL. */
	n = snprintf(rep->base_url, sizeof(rep->base_url),
	    strchr(host, ':') ? "http://[%s]:%u" : "http://%s:%u", host,
	    (unsigned)port);
	if (n < 0 || (size_t)n >= sizeof(rep->base_url))
		return -1;
	/*
	 * Parsed here, once, rather than by libcurl for every request: the
	 * proxy hands it to each transfer (CURLOPT_CURLU), with the request
	 * target beside it.
	 */
	if (rep->url == NULL && (rep->url = curl_url()) == NULL)
		return -1;
	if (curl_url_set(rep->url, CURLUPART_URL, rep->base_url, 0) !=
	    CURLUE_OK)
		return -1;
	memcpy(rep->host, host, strlen(host) + 1);
	rep->port = port;
	rep->base_url_len = (size_t)n;
	return 0;
}

void
replica_free(struct replica *rep)
{
	if (rep == NULL)
		return;
	curl_url_cleanup(rep->url);
	route_stats_unref(rep->stats);
	free(rep);
}

void
replica_generated_name(enum replica_name_style style, int k, char *name)
{
	snprintf(name, RING_NAME_LEN, style == REPLICA_NAMES_DNS ?
	    "server-%d" : "Server %d", k);
}

int
replica_generated_names(enum replica_name_style style, int count,
    char (*names)[RING_NAME_LEN], int max)
{
	int i;

	for (i = 0; i < count && i < max; i++)
		replica_generated_name(style, i + 1, names[i]);
	return i;
}

int
replica_name_style_parse(const char *s, enum replica_name_style *style)
{
	if (strcmp(s, "seed") == 0)
		*style = REPLICA_NAMES_SEED;
	else if (strcmp(s, "dns") == 0)
		*style = REPLICA_NAMES_DNS;
	else
		return -1;
	return 0;
}
