/*
 * respond.h - JSON answers from ringlb itself.
 */
#ifndef RINGLB_RESPOND_H
#define RINGLB_RESPOND_H

#include <stdarg.h>

#include <jansson.h>

struct evbuffer;
struct evhttp_request;

/*
 * Send buf (NULL: no body) as the whole reply.  To a HEAD request, the
 * head a GET would get, with its Content-Length, and no body: evhttp 2.1
 * would send the body and leave the length out.
 */
void	respond_send(struct evhttp_request *req, int code, const char *reason,
	    struct evbuffer *buf);

/*
 * body as the JSON text of an answer (a reference is stolen), or, out of
 * memory, an error saying so with *code set to 500.  NULL only when not
 * even that could be had.
 */
struct evbuffer *respond_json_text(json_t *body, int *code);

/* Send body (a reference is stolen) as the whole reply. */
void	respond_json(struct evhttp_request *req, int code, json_t *body);

/*
 * Send the spec's error shape, {"message": "<Error> ...", "status":
 * "failure"}; fmt is the text after "<Error> ".
 */
void	respond_error(struct evhttp_request *req, int code, const char *fmt,
	    ...) __attribute__((format(printf, 3, 4)));

/*
 * A request key as a JSON string (new reference; NULL when out of memory).
 * A key that is not UTF-8, which JSON cannot carry, is percent-encoded
 * instead: '%', NUL and each byte outside a valid UTF-8 sequence become
 * %XX, and *escaped is set.
 */
json_t	*respond_key(const char *key, size_t len, int *escaped);

/* The same error shape as a new JSON object, for answers written by hand. */
json_t	*respond_error_body(const char *fmt, va_list ap)
	    __attribute__((format(printf, 1, 0)));

#endif /* RINGLB_RESPOND_H */
