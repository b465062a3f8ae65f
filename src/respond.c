/*
 * respond.c - JSON answers from ringlb itself.
 */
#include <stdarg.h>
#include <stdint.h>
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

struct evbuffer *
respond_json_text(json_t *body, int *code)
{
	static const char oom[] = "{\"message\":\"<Error> ringlb could not "
	    "build its answer (out of memory)\",\"status\":\"failure\"}\n";
	struct evbuffer *buf = evbuffer_new();
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;

	json_decref(body);
	if (buf == NULL || text == NULL) {
		free(text);
		if (buf != NULL)
			evbuffer_add_reference(buf, oom, sizeof(oom) - 1, NULL,
			    NULL);
		*code = 500;
		return buf;
	}
	evbuffer_add(buf, text, strlen(text));
	evbuffer_add(buf, "\n", 1);
	free(text);
	return buf;
}

void
respond_json(struct evhttp_request *req, int code, json_t *body)
{
	struct evbuffer *buf = respond_json_text(body, &code);

	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "application/json");
	respond_send(req, code, NULL, buf);
	if (buf != NULL)
		evbuffer_free(buf);
}

/* The length of the valid UTF-8 sequence at p (of left bytes), or 0. */
static size_t
utf8_len(const unsigned char *p, size_t left)
{
	size_t n, i;

	if (*p < 0x80)
		return 1;
	n = (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 :
	    (*p & 0xf8) == 0xf0 ? 4 : 0;
	for (i = 1; i < n && i < left && (p[i] & 0xc0) == 0x80; i++)
		;
	if (n == 0 || i < n || (n == 2 && *p < 0xc2) ||
	    (n == 3 && *p == 0xe0 && p[1] < 0xa0) ||
	    (n == 3 && *p == 0xed && p[1] >= 0xa0) ||
	    (n == 4 && (*p > 0xf4 || (*p == 0xf0 && p[1] < 0x90) ||
	    (*p == 0xf4 && p[1] >= 0x90))))
		return 0;
	return n;
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
	size_t left = strlen(s), n;

	while (left > 0) {
		if ((n = utf8_len(p, left)) == 0) {
			*p = '?';
			n = 1;
		}
		p += n;
		left -= n;
	}
}

json_t *
respond_key(const char *key, size_t len, int *escaped)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = (const unsigned char *)key;
	json_t *s;
	char *out;
	size_t i, o = 0, n;

	*escaped = 0;
	if ((s = json_stringn(key, len)) != NULL)
		return s;
	if (len > (SIZE_MAX - 1) / 3 || (out = malloc(3 * len + 1)) == NULL)
		return NULL;
	for (i = 0; i < len; i += n) {
		if ((n = utf8_len(p + i, len - i)) > 0 && p[i] != '%' &&
		    p[i] != '\0') {
			memcpy(out + o, p + i, n);
			o += n;
			continue;
		}
		n = 1;
		out[o++] = '%';
		out[o++] = hex[p[i] >> 4];
		out[o++] = hex[p[i] & 15];
	}
	s = json_stringn(out, o);
	free(out);
	*escaped = s != NULL;
	return s;
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
