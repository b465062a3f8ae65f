/*
 * fuzz_query.c - the parsers that read what clients and operators type:
 * query strings and their percent-encoding (the request key), HOST:PORT,
 * networks and peer addresses, names, sizes and numbers.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), out[1100], host[256], err[256];
	const char *v;
	struct allow_net net;
	uint16_t port;
	uint64_t sz;
	size_t vl;
	long l, dl;
	int fam, prefix;

	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';		/* stops at the first NUL, as C strings do */

	if ((v = query_find(s, "request_id", &vl)) != NULL) {
		if (v < s || v + vl > s + strlen(s))
			abort();
		dl = query_decode(v, vl, out, sizeof(out));
		if (dl > (long)vl || (dl >= 0 && out[dl] != '\0'))
			abort();
	}
	dl = query_decode(s, strlen(s), out, sizeof(out));
	if (dl > (long)strlen(s))
		abort();
	if (parse_hostport(s, host, sizeof(host), &port, err, sizeof(err)) ==
	    0 && port == 0)
		abort();
	if (parse_cidr(s, &fam, net.addr, &prefix) == 0 &&
	    (prefix < 0 || prefix > 128))
		abort();
	net.family = fam;
	net.prefix = prefix;
	(void)peer_is_allowed(s, &net, 1);
	(void)name_is_valid(s);
	(void)parse_size(s, &sz);
	(void)parse_long(s, -5, 5, &l);
	free(s);
	return 0;
}
