/*
 * headers.h - which HTTP header fields a proxy must not pass on, and the
 * checks a replica's answer must pass before any of it is passed on; pure
 * code, for the proxy, the tests and the fuzzers.
 */
#ifndef RINGLB_HEADERS_H
#define RINGLB_HEADERS_H

#include <stddef.h>
#include <stdint.h>
#include <strings.h>

/* Is the field name[0..len) the one named lit (a string literal)?  The
 * length first, so most names are told apart without a comparison. */
#define HEADER_IS(name, len, lit) \
	((len) == sizeof(lit) - 1 && strncasecmp(name, lit, len) == 0)

/*
 * Is the field name[0..len) hop-by-hop (RFC 9110 7.6.1: it describes one
 * connection, not the message), so that it must not be forwarded?
 */
int	header_hop_by_hop(const char *name, size_t len);

/*
 * Is the field name[0..len) one of the comma-separated tokens of the
 * Connection header value conn (NULL: none)?  Those are hop-by-hop too.
 */
int	header_in_connection(const char *conn, const char *name, size_t len);

/*
 * Is name[0..len) a field name, a token of RFC 9110 5.6.2 (no blank, no
 * control, none of the separators), and not empty?
 */
int	header_name_valid(const char *name, size_t len);

/*
 * Is v[0..len) a field value RFC 9110 5.5 allows: visible characters,
 * blanks and bytes over 0x7f, but no control character (NUL, CR, LF, DEL,
 * ...) other than a tab?
 */
int	header_value_valid(const char *v, size_t len);

/*
 * A Content-Length value, without the blanks around it: 1*DIGIT that fits
 * in an int64_t, into *out; 0, or -1 for anything else ("+2", "2 2",
 * "2, 2", "", "-1", an overflow).
 */
int	header_content_length(const char *v, size_t len, int64_t *out);

/*
 * A status line without its line end: "HTTP/1.0" or "HTTP/1.1", a blank,
 * three digits, then nothing or a blank and a reason phrase of visible
 * characters, blanks and tabs (RFC 9112 4).  The status into *code, the
 * reason into *reason and *rl (empty when there is none); 0, or -1, or
 * -2 when only the reason is wrong (a control character: CR, NUL, ...).
 */
int	header_status_line(const char *line, size_t len, int *code,
	    const char **reason, size_t *rl);

#endif /* RINGLB_HEADERS_H */
