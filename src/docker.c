/*
 * docker.c - the Docker Engine API over libcurl multi (see docker.h).
 *
 * Answers are gathered whole (at most DOCKER_BODY_MAX bytes) and parsed
 * with jansson once the transfer is done.  The /events stream is cut into
 * lines as it arrives; the events are handed out from a deferred event
 * of the loop rather than from curl's write callback, because the one
 * receiving them may start new requests, and curl must not be re-entered
 * from its own callbacks.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <jansson.h>

#include "curlev.h"
#include "docker.h"
#include "log.h"

#define DOCKER_BODY_MAX		(8 << 20)
#define DOCKER_DEFAULT_SOCKET	"/var/run/docker.sock"
#define DOCKER_URL_MAX		2048

struct docker {
	struct event_base	*base;
	struct curlev		*cv;
	char			 where[PATH_MAX + 16];	/* for messages */
	char			 socket[PATH_MAX];	/* "" for tcp */
	char			 origin[256];	/* "http://host:port" */
	char			 version[16];	/* "1.41" */
	struct docker_call	*calls;		/* every one still out */
};

struct docker_call {
	struct docker		*d;
	CURL			*easy;
	struct curl_slist	*headers;
	char			*send;		/* the JSON body sent */
	char			*buf;		/* what came back so far */
	size_t			 len, cap;
	int			 overflow;
	docker_cb		 done;
	docker_event_cb		 on_event;	/* the /events stream */
	void			*arg;
	json_t			*events;	/* parsed, not yet handed out */
	struct event		*deliver;
	int			 opened;	/* the stream answered 200 */
	int			 told_open;	/* and on_event(NULL) was called */
	int			 negotiating;
	int			 free_arg;	/* free(arg) unless answered */
	char			 url[DOCKER_URL_MAX];
	char			 errbuf[CURL_ERROR_SIZE];
	struct docker_call	*next, **prevp;
};

static void	call_free(struct docker_call *);

/* --- versions --------------------------------------------------------- */

/* "1.41" -> 141; -1 if it is not MAJOR.MINOR. */
static long
version_num(const char *v)
{
	char *end;
	long major, minor;

	if (v == NULL)
		return -1;
	major = strtol(v, &end, 10);
	if (end == v || *end != '.')
		return -1;
	v = end + 1;
	minor = strtol(v, &end, 10);
	if (end == v || *end != '\0' || minor < 0 || minor > 99 || major < 0)
		return -1;
	return major * 100 + minor;
}

/* --- answers ---------------------------------------------------------- */

/* Hand out the events parsed so far (from the loop, not from curl). */
static void
deliver_events(struct docker_call *c)
{
	json_t *events = c->events, *ev;
	size_t i;

	if (c->opened && !c->told_open) {
		c->told_open = 1;
		c->on_event(NULL, c->arg);
	}
	if (events == NULL || json_array_size(events) == 0)
		return;
	c->events = json_array();
	json_array_foreach(events, i, ev)
		c->on_event(ev, c->arg);
	json_decref(events);
}

static void
on_deliver(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	deliver_events(arg);
}

/* Cut complete lines off the stream's buffer and parse each one. */
static void
stream_lines(struct docker_call *c)
{
	char *nl, *line = c->buf;
	size_t left = c->len;
	json_t *ev;
	int any = 0;

	while ((nl = memchr(line, '\n', left)) != NULL) {
		size_t n = (size_t)(nl - line);

		if (n > 0 && (ev = json_loadb(line, n, 0, NULL)) != NULL) {
			json_array_append_new(c->events, ev);
			any = 1;
		}
		left -= n + 1;
		line = nl + 1;
	}
	memmove(c->buf, line, left);
	c->len = left;
	if (any)
		event_active(c->deliver, EV_TIMEOUT, 0);
}

static size_t
on_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct docker_call *c = arg;
	size_t n = size * nmemb, want;
	char *nb;

	if (c->len + n > DOCKER_BODY_MAX) {
		c->overflow = 1;
		return 0;	/* ends the transfer with an error */
	}
	if (c->len + n > c->cap) {
		want = c->cap ? c->cap : 4096;
		while (want < c->len + n)
			want *= 2;
		if ((nb = realloc(c->buf, want)) == NULL)
			return 0;
		c->buf = nb;
		c->cap = want;
	}
	memcpy(c->buf + c->len, data, n);
	c->len += n;
	if (c->on_event != NULL && c->opened)
		stream_lines(c);
	return n;
}

/* The stream's header block ended: is it a 200 (events follow) or an
 * error (its body is a message, not events)? */
static size_t
on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct docker_call *c = arg;
	size_t n = size * nmemb;
	long code = 0;

	if ((n == 2 && data[0] == '\r' && data[1] == '\n') ||
	    (n == 1 && data[0] == '\n')) {
		curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &code);
		if (code == 200 && !c->opened) {
			c->opened = 1;
			event_active(c->deliver, EV_TIMEOUT, 0);
		}
	}
	return n;
}

/* Settle the API version from a /version answer; 0 or -1 with msg. */
static int
negotiate_answer(struct docker *d, json_t *body, char *msg, size_t msglen)
{
	const char *api, *min;
	long have, oldest, want;

	api = json_string_value(json_object_get(body, "ApiVersion"));
	min = json_string_value(json_object_get(body, "MinAPIVersion"));
	if ((have = version_num(api)) == -1) {
		snprintf(msg, msglen, "%s answered /version without an "
		    "ApiVersion; is it a Docker engine?", d->where);
		return -1;
	}
	if (have < version_num(DOCKER_API_OLDEST)) {
		snprintf(msg, msglen, "the Docker engine at %s speaks API %s; "
		    "ringlb needs %s or newer (Docker 20.10 or later)",
		    d->where, api, DOCKER_API_OLDEST);
		return -1;
	}
	want = have < version_num(DOCKER_API_NEWEST) ? have :
	    version_num(DOCKER_API_NEWEST);
	/* an engine newer than this client may refuse old versions */
	if ((oldest = version_num(min)) != -1 && want < oldest)
		want = oldest;
	snprintf(d->version, sizeof(d->version), "%d.%d", (int)(want / 100),
	    (int)(want % 100));
	return 0;
}

static void
on_done(CURL *easy, CURLcode rc, void *arg)
{
	struct docker *d = arg;
	struct docker_call *c;
	json_t *body = NULL;
	const char *m;
	char msg[CURL_ERROR_SIZE + PATH_MAX + 128];
	long code = 0;

	(void)d;
	curl_easy_getinfo(easy, CURLINFO_PRIVATE, &c);
	if (c->on_event != NULL)
		deliver_events(c);
	msg[0] = '\0';
	if (rc != CURLE_OK) {
		if (c->overflow)
			snprintf(msg, sizeof(msg), "the Docker engine's answer "
			    "is over %d bytes", DOCKER_BODY_MAX);
		else
			snprintf(msg, sizeof(msg), "cannot reach the Docker "
			    "engine at %s: %s", c->d->where, c->errbuf[0] ?
			    c->errbuf : curl_easy_strerror(rc));
	} else {
		curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
		if (c->len > 0 && (c->on_event == NULL || !c->opened))
			body = json_loadb(c->buf, c->len, 0, NULL);
		if (code >= 400) {
			m = json_string_value(json_object_get(body, "message"));
			if (m != NULL)
				snprintf(msg, sizeof(msg), "%s", m);
			else
				snprintf(msg, sizeof(msg), "the Docker engine "
				    "answered %ld", code);
		} else if (c->on_event != NULL)
			snprintf(msg, sizeof(msg), "the Docker engine ended its "
			    "event stream");
	}
	if (c->negotiating && code == 200 && negotiate_answer(c->d, body, msg,
	    sizeof(msg)) == -1)
		code = 0;
	c->free_arg = 0;	/* the callback has it now */
	c->done((int)code, body, msg, c->arg);
	json_decref(body);
	call_free(c);
}

/* --- requests --------------------------------------------------------- */

static void
call_free(struct docker_call *c)
{
	if (c->prevp != NULL) {
		*c->prevp = c->next;
		if (c->next != NULL)
			c->next->prevp = c->prevp;
	}
	if (c->easy != NULL)
		curl_easy_cleanup(c->easy);
	if (c->free_arg)
		free(c->arg);
	curl_slist_free_all(c->headers);
	if (c->deliver != NULL)
		event_free(c->deliver);
	json_decref(c->events);
	free(c->send);
	free(c->buf);
	free(c);
}

/* A transfer set up but not started; NULL when out of memory. */
static struct docker_call *
call_new(struct docker *d, const char *method, const char *url, json_t *body,
    long timeout_ms, docker_cb done, void *arg)
{
	struct docker_call *c;
	struct curl_slist *h;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto fail;
	c->d = d;
	c->done = done;
	c->arg = arg;
	snprintf(c->url, sizeof(c->url), "%s", url);
	if ((c->easy = curl_easy_init()) == NULL)
		goto fail;
	if (body != NULL) {
		if ((c->send = json_dumps(body, JSON_COMPACT)) == NULL ||
		    (h = curl_slist_append(NULL, "Content-Type: "
		    "application/json")) == NULL)
			goto fail;
		c->headers = h;
		if ((h = curl_slist_append(c->headers, "Expect:")) == NULL)
			goto fail;
		c->headers = h;
	}
	curl_easy_setopt(c->easy, CURLOPT_URL, c->url);
	if (d->socket[0] != '\0')
		curl_easy_setopt(c->easy, CURLOPT_UNIX_SOCKET_PATH, d->socket);
	curl_easy_setopt(c->easy, CURLOPT_PROXY, "");
	curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->easy, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c);
	curl_easy_setopt(c->easy, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(c->easy, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	if (timeout_ms > 0)
		curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, timeout_ms);
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(c->easy, CURLOPT_POST, 1L);
		curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS,
		    c->send ? c->send : "");
		curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE,
		    (long)(c->send ? strlen(c->send) : 0));
	} else if (strcmp(method, "GET") != 0)
		curl_easy_setopt(c->easy, CURLOPT_CUSTOMREQUEST, method);
	if (c->headers != NULL)
		curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->headers);
	json_decref(body);
	return c;
fail:
	json_decref(body);
	if (c != NULL)
		call_free(c);
	return NULL;
}

/* Start c and keep it on the list of calls out; -1 if curl refused. */
static int
call_start(struct docker *d, struct docker_call *c)
{
	c->next = d->calls;
	if (d->calls != NULL)
		d->calls->prevp = &c->next;
	d->calls = c;
	c->prevp = &d->calls;
	if (curlev_add(d->cv, c->easy) == -1) {
		call_free(c);
		return -1;
	}
	return 0;
}

struct docker_call *
docker_request(struct docker *d, const char *method, const char *path,
    json_t *body, long timeout_ms, docker_cb done, void *arg)
{
	struct docker_call *c;
	char url[DOCKER_URL_MAX];

	if ((size_t)snprintf(url, sizeof(url), "%s/v%s%s", d->origin,
	    d->version, path) >= sizeof(url)) {
		json_decref(body);
		return NULL;
	}
	if ((c = call_new(d, method, url, body, timeout_ms, done, arg)) ==
	    NULL || call_start(d, c) == -1)
		return NULL;
	return c;
}

int
docker_negotiate(struct docker *d, docker_cb done, void *arg)
{
	struct docker_call *c;
	char url[DOCKER_URL_MAX];

	snprintf(url, sizeof(url), "%s/version", d->origin);
	if ((c = call_new(d, "GET", url, NULL, 10000, done, arg)) == NULL)
		return -1;
	c->negotiating = 1;
	return call_start(d, c);
}

struct docker_call *
docker_events(struct docker *d, json_t *filters, docker_event_cb on_event,
    docker_cb done, void *arg)
{
	struct docker_call *c;
	char path[DOCKER_URL_MAX], f[DOCKER_URL_MAX / 2];

	if (docker_filters(filters, f, sizeof(f)) == -1)
		return NULL;
	snprintf(path, sizeof(path), "%s/v%s/events?filters=%s", d->origin,
	    d->version, f);
	if ((c = call_new(d, "GET", path, NULL, 0, done, arg)) == NULL)
		return NULL;
	c->on_event = on_event;
	curl_easy_setopt(c->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c->easy, CURLOPT_HEADERDATA, c);
	if ((c->events = json_array()) == NULL ||
	    (c->deliver = event_new(d->base, -1, 0, on_deliver, c)) == NULL) {
		call_free(c);
		return NULL;
	}
	if (call_start(d, c) == -1)
		return NULL;
	return c;
}

void
docker_own_arg(struct docker_call *c)
{
	c->free_arg = 1;
}

void
docker_cancel(struct docker *d, struct docker_call *c)
{
	if (c == NULL)
		return;
	curlev_remove(d->cv, c->easy);
	call_free(c);
}

int
docker_filters(json_t *filters, char *out, size_t outlen)
{
	char *f;
	int rc;

	f = json_dumps(filters, JSON_COMPACT);
	json_decref(filters);
	if (f == NULL)
		return -1;
	rc = docker_escape(f, out, outlen);
	free(f);
	return rc;
}

int
docker_escape(const char *s, char *out, size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;
		int plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' &&
		    ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
		    ch == '.' || ch == '-';

		if (o + (plain ? 1 : 3) >= outlen)
			return -1;
		if (plain)
			out[o++] = (char)ch;
		else {
			out[o++] = '%';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	out[o] = '\0';
	return 0;
}

/* --- setup ------------------------------------------------------------ */

/* DOCKER_HOST as the docker CLI reads it: unix:///path or tcp://h:p. */
static int
parse_host(struct docker *d, const char *host, char *err, size_t errlen)
{
	const char *rest;

	if (host == NULL || *host == '\0')
		host = "unix://" DOCKER_DEFAULT_SOCKET;
	if (strncmp(host, "unix://", 7) == 0) {
		rest = host + 7;
		if (*rest != '/' || strlen(rest) >= sizeof(d->socket)) {
			snprintf(err, errlen, "DOCKER_HOST '%s': a unix socket "
			    "is unix:///absolute/path, e.g. unix://%s", host,
			    DOCKER_DEFAULT_SOCKET);
			return -1;
		}
		snprintf(d->socket, sizeof(d->socket), "%s", rest);
		snprintf(d->origin, sizeof(d->origin), "http://localhost");
	} else if (strncmp(host, "tcp://", 6) == 0) {
		rest = host + 6;
		if (*rest == '\0' || strlen(rest) > 200 ||
		    strpbrk(rest, "/?#@ ") != NULL) {
			snprintf(err, errlen, "DOCKER_HOST '%s': a TCP engine is "
			    "tcp://HOST:PORT, e.g. tcp://127.0.0.1:2375", host);
			return -1;
		}
		if (getenv("DOCKER_TLS_VERIFY") != NULL &&
		    *getenv("DOCKER_TLS_VERIFY") != '\0') {
			snprintf(err, errlen, "DOCKER_TLS_VERIFY is set, but "
			    "ringlb speaks plain HTTP to a tcp:// engine; reach "
			    "a TLS engine through an SSH tunnel to its socket "
			    "(unix://) instead");
			return -1;
		}
		snprintf(d->origin, sizeof(d->origin), "http://%s", rest);
	} else {
		snprintf(err, errlen, "DOCKER_HOST '%s' is neither unix:///PATH "
		    "nor tcp://HOST:PORT", host);
		return -1;
	}
	snprintf(d->where, sizeof(d->where), "%s", host);
	return 0;
}

struct docker *
docker_new(struct event_base *base, const char *host, char *err,
    size_t errlen)
{
	struct docker *d;

	if ((d = calloc(1, sizeof(*d))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	d->base = base;
	if (parse_host(d, host, err, errlen) == -1) {
		free(d);
		return NULL;
	}
	if ((d->cv = curlev_new(base, on_done, d)) == NULL) {
		snprintf(err, errlen, "out of memory");
		free(d);
		return NULL;
	}
	return d;
}

void
docker_free(struct docker *d)
{
	if (d == NULL)
		return;
	while (d->calls != NULL)
		docker_cancel(d, d->calls);
	curlev_free(d->cv);
	free(d);
}

const char *
docker_where(const struct docker *d)
{
	return d->where;
}

const char *
docker_version(const struct docker *d)
{
	return d->version;
}
