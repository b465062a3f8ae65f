/*
 * headers.c - hop-by-hop header fields (see headers.h).
 */
#include <string.h>
#include <strings.h>

#include "headers.h"

/* Is name[0..len) the field lit? */
#define IS(lit)	(strncasecmp(name, lit, len) == 0)

int
header_hop_by_hop(const char *name, size_t len)
{
	/* by length first: most fields are none of these */
	switch (len) {
	case 2:
		return IS("TE");
	case 7:
		return IS("Trailer") || IS("Upgrade");
	case 10:
		return IS("Connection") || IS("Keep-Alive");
	case 16:
		return IS("Proxy-Connection");
	case 17:
		return IS("Transfer-Encoding");
	case 18:
		return IS("Proxy-Authenticate");
	case 19:
		return IS("Proxy-Authorization");
	default:
		return 0;
	}
}

#undef IS

int
header_in_connection(const char *conn, const char *name, size_t len)
{
	const char *p = conn;
	size_t tl;

	if (conn == NULL || len == 0)
		return 0;
	while (*p != '\0') {
		p += strspn(p, " \t,");
		tl = strcspn(p, " \t,");
		if (tl == len && strncasecmp(p, name, len) == 0)
			return 1;
		p += tl;
	}
	return 0;
}
