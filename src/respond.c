/*
 * respond.c - JSON answers from ringlb itself.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <jansson.h>

#include "respond.h"

void
respond_json(struct evhttp_request *req, int code, json_t *body)
{
	struct evbuffer *buf = evbuffer_new();
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;

	json_decref(body);
	if (buf == NULL || text == NULL) {
		evbuffer_free(buf);
		free(text);
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	evbuffer_add(buf, text, strlen(text));
	evbuffer_add(buf, "\n", 1);
	free(text);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "application/json");
	evhttp_send_reply(req, code, NULL, buf);
	evbuffer_free(buf);
}

json_t *
respond_error_body(const char *fmt, va_list ap)
{
	char msg[1024];
	int n;

	n = snprintf(msg, sizeof(msg), "<Error> ");
	vsnprintf(msg + n, sizeof(msg) - n, fmt, ap);
	return json_pack("{s:s, s:s}", "message", msg, "status", "failure");
}

void
respond_error(struct evhttp_request *req, int code, const char *fmt, ...)
{
	va_list ap;
	json_t *body;

	va_start(ap, fmt);
	body = respond_error_body(fmt, ap);
	va_end(ap);
	respond_json(req, code, body);
}
