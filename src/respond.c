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
respond_send(struct evhttp_request *req, int code, const char *reason,
    struct evbuffer *buf)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	char len[32];

	if (evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
		evhttp_send_reply(req, code, reason, buf);
		return;
	}
	snprintf(len, sizeof(len), "%zu", buf ? evbuffer_get_length(buf) : 0);
	evhttp_remove_header(out, "Content-Length");
	evhttp_add_header(out, "Content-Length", len);
	evhttp_send_reply(req, code, reason, NULL);
}

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
	respond_send(req, code, NULL, buf);
	evbuffer_free(buf);
}

/*
 * Make s valid UTF-8 in place: each byte of a malformed or cut sequence
 * becomes '?'.  Messages quote what clients sent, and a JSON string must
 * be UTF-8.
 */
static void
utf8_scrub(char *s)
{
	unsigned char *p = (unsigned char *)s;
	size_t n, i;

	while (*p != '\0') {
		if (*p < 0x80) {
			p++;
			continue;
		}
		n = (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 :
		    (*p & 0xf8) == 0xf0 ? 4 : 0;
		for (i = 1; i < n && (p[i] & 0xc0) == 0x80; i++)
			;
		if (n == 0 || i < n || (n == 2 && *p < 0xc2) ||
		    (n == 3 && *p == 0xe0 && p[1] < 0xa0) ||
		    (n == 3 && *p == 0xed && p[1] >= 0xa0) ||
		    (n == 4 && (*p > 0xf4 || (*p == 0xf0 && p[1] < 0x90) ||
		    (*p == 0xf4 && p[1] >= 0x90)))) {
			*p++ = '?';
			continue;
		}
		p += n;
	}
}

json_t *
respond_error_body(const char *fmt, va_list ap)
{
	char msg[1024];
	int n;

	n = snprintf(msg, sizeof(msg), "<Error> ");
	vsnprintf(msg + n, sizeof(msg) - n, fmt, ap);
	utf8_scrub(msg);
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
