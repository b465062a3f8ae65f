/*
 * headers.c - hop-by-hop header fields (see headers.h).
 */
#include <string.h>
#include <strings.h>

#include "headers.h"

static const char *const hop_by_hop[] = {
	"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer",
	"Transfer-Encoding", "Upgrade", "Proxy-Authorization",
	"Proxy-Authenticate", NULL
};

int
header_hop_by_hop(const char *name, size_t len)
{
	const char *const *h;

	for (h = hop_by_hop; *h != NULL; h++)
		if (strlen(*h) == len && strncasecmp(*h, name, len) == 0)
			return 1;
	return 0;
}

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
