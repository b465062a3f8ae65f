/*
 * headers.h - which HTTP header fields a proxy must not pass on; pure
 * code, for the proxy, the tests and the fuzzers.
 */
#ifndef RINGLB_HEADERS_H
#define RINGLB_HEADERS_H

#include <stddef.h>
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

#endif /* RINGLB_HEADERS_H */
