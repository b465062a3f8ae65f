/*
 * fuzz_headers.c - the hop-by-hop header rules, against a plain oracle:
 * a field is in a Connection header when it equals one of its
 * comma-separated tokens, ignoring case and surrounding blanks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "headers.h"

static int
oracle(const char *conn, const char *name, size_t len)
{
	char *copy = strdup(conn), *tok, *save = NULL;
	int found = 0;

	if (copy == NULL || len == 0) {
		free(copy);
		return 0;
	}
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		/* a token is also split at blanks inside it */
		char *t2, *s2 = NULL;

		for (t2 = strtok_r(tok, " \t", &s2); t2 != NULL;
		    t2 = strtok_r(NULL, " \t", &s2))
			if (strlen(t2) == len && strncasecmp(t2, name, len) ==
			    0)
				found = 1;
	}
	free(copy);
	return found;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *sep = memchr(data, 0, size);
	char *conn;
	const char *name;
	size_t nlen;

	if (sep == NULL)
		return 0;
	conn = strndup((const char *)data, (size_t)(sep - data));
	name = (const char *)sep + 1;
	nlen = size - (size_t)(sep - data) - 1;
	if (conn == NULL)
		return 0;
	if (memchr(name, 0, nlen) == NULL &&
	    header_in_connection(conn, name, nlen) != oracle(conn, name, nlen))
		abort();
	(void)header_hop_by_hop(name, nlen);
	if (header_hop_by_hop("connection", 10) != 1 ||
	    header_hop_by_hop("Content-Type", 12) != 0)
		abort();
	free(conn);
	return 0;
}
