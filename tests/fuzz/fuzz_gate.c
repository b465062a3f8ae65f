/*
 * fuzz_gate.c - the gate's request reader (src/gate.c), fed the same bytes
 * twice: whole, and cut into small random pieces.  A reader that keeps
 * state between reads must not care where the reads end: both runs must
 * pass the same bytes on to evhttp and refuse with the same status.  Any
 * refusal must be a whole HTTP answer with the spec's JSON error.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <jansson.h>

#include "config.h"
#include "gate.h"
#include "log.h"

static struct event_base *base;
static struct config cfg;
static struct gate *g;

static uint32_t
next(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/*
 * A refusal's status, after checking the answer's form; 0 for none.
 * head_seen: the input has a HEAD request, whose answer has no body.
 */
static int
refusal(struct evbuffer *out, int head_seen)
{
	size_t len = evbuffer_get_length(out);
	char *text, *body;
	json_t *doc;
	int code;

	if (len == 0)
		return 0;
	text = calloc(1, len + 1);
	evbuffer_unfreeze(out, 1);	/* a socket's output: start frozen */
	if (text == NULL || evbuffer_copyout(out, text, len) != (ev_ssize_t)len)
		abort();
	evbuffer_freeze(out, 1);
	if (sscanf(text, "HTTP/1.1 %3d ", &code) != 1 || code < 400 ||
	    code > 599 || strstr(text, "\r\nConnection: close\r\n") == NULL ||
	    (body = strstr(text, "\r\n\r\n")) == NULL)
		abort();
	body += 4;
	/* the answer to a HEAD request has no body, and says how long the
	 * GET's would be */
	if (*body == '\0' && head_seen &&
	    strtoul(strstr(text, "\r\nContent-Length: ") + 18, NULL, 10) > 0) {
		free(text);
		return code;
	}
	if ((doc = json_loads(body, 0, NULL)) == NULL ||
	    strcmp(json_string_value(json_object_get(doc, "status")),
	    "failure") != 0 ||
	    strncmp(json_string_value(json_object_get(doc, "message")),
	    "<Error> ", 8) != 0 || strlen(body) != strtoul(strstr(text,
	    "\r\nContent-Length: ") + 18, NULL, 10))
		abort();
	json_decref(doc);
	free(text);
	return code;
}

static int
run(const uint8_t *data, size_t size, uint32_t seed, struct evbuffer *fwd)
{
	struct bufferevent *bev = gate_connection(g), *u;
	size_t off = 0, k;
	int code;

	if (bev == NULL)
		abort();
	u = bufferevent_get_underlying(bev);
	bufferevent_enable(bev, EV_READ);
	while (off < size) {
		k = seed ? 1 + next(&seed) % 97 : size;
		if (k > size - off)
			k = size - off;
		/* as if read from the socket (whose bufferevent alone may add to
		 * its input: the end is frozen) */
		evbuffer_unfreeze(bufferevent_get_input(u), 0);
		if (evbuffer_add(bufferevent_get_input(u), data + off, k) == -1)
			abort();
		evbuffer_freeze(bufferevent_get_input(u), 0);
		off += k;
		bufferevent_trigger(u, EV_READ, BEV_TRIG_IGNORE_WATERMARKS);
	}
	evbuffer_add_buffer(fwd, bufferevent_get_input(bev));
	code = refusal(bufferevent_get_output(u),
	    memmem(data, size, "HEAD ", 5) != NULL);
	bufferevent_free(bev);
	/* libevent 2.1 frees bufferevents from the loop, not at once */
	event_base_loop(base, EVLOOP_NONBLOCK);
	return code;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct evbuffer *whole, *pieces;
	uint32_t seed;
	size_t k, lf;
	int a, b;

	if (g == NULL) {
		log_init("fuzz", LOG_LEVEL_ERROR);
		base = event_base_new();
		cfg.max_header = 2048;
		cfg.max_body = 4096;
		cfg.max_body_memory = 6000;	/* two bodies at most */
		cfg.header_timeout_s = 10;
		cfg.client_timeout_s = 60;
		cfg.keepalive_timeout_s = 15;
		cfg.max_connections = 1000000;
		if (base == NULL || (g = gate_new(base, &cfg, NULL)) == NULL)
			abort();
	}
	if (size < 1)
		return 0;
	seed = data[0] | 1u;
	whole = evbuffer_new();
	pieces = evbuffer_new();
	a = run(data + 1, size - 1, 0, whole);
	b = run(data + 1, size - 1, seed, pieces);
	/*
	 * What goes on is never more than came in, but for the line ends of
	 * a chunked body framed anew: a bare LF there is written as CRLF.
	 */
	for (k = 1, lf = 0; k < size; k++)
		lf += data[k] == '\n';
	if (a != b || evbuffer_get_length(whole) !=
	    evbuffer_get_length(pieces) || evbuffer_get_length(whole) >
	    size - 1 + lf)
		abort();
	if (evbuffer_get_length(whole) > 0 &&
	    memcmp(evbuffer_pullup(whole, -1), evbuffer_pullup(pieces, -1),
	    evbuffer_get_length(whole)) != 0)
		abort();
	evbuffer_free(whole);
	evbuffer_free(pieces);
	return 0;
}
