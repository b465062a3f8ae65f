/*
 * headers.c - hop-by-hop header fields, and the checks of a replica's
 * status line and header lines (see headers.h).
 */
#include <stdint.h>
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

/* RFC 9110 tchar, one bit a byte: ! # $ % & ' * + - . ^ _ ` | ~ DIGIT ALPHA */
static const uint32_t tchar[8] = {
	0x00000000, 0x03ff6cfa, 0xc7fffffe, 0x57ffffff, 0, 0, 0, 0
};

#define IS_TCHAR(c)	((tchar[(unsigned char)(c) >> 5] >> \
			    ((unsigned char)(c) & 31)) & 1)
/* not a control byte, a tab aside: VCHAR, SP, HTAB, obs-text */
#define IS_TEXT(c)	((unsigned char)(c) >= 0x20 ? (c) != 0x7f : (c) == '\t')

int
header_name_valid(const char *name, size_t len)
{
	size_t i;

	if (len == 0)
		return 0;
	for (i = 0; i < len; i++)
		if (!IS_TCHAR(name[i]))
			return 0;
	return 1;
}

int
header_value_valid(const char *v, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!IS_TEXT(v[i]))
			return 0;
	return 1;
}

int
header_content_length(const char *v, size_t len, int64_t *out)
{
	int64_t n = 0;
	size_t i;

	if (len == 0)
		return -1;
	for (i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9' ||
		    n > (INT64_MAX - (v[i] - '0')) / 10)
			return -1;
		n = n * 10 + (v[i] - '0');
	}
	*out = n;
	return 0;
}

int
header_status_line(const char *line, size_t len, int *code,
    const char **reason, size_t *rl)
{
	size_t i;

	if (len < 12 || memcmp(line, "HTTP/1.", 7) != 0 ||
	    (line[7] != '0' && line[7] != '1') || line[8] != ' ')
		return -1;
	*code = 0;
	for (i = 9; i < 12; i++) {
		if (line[i] < '0' || line[i] > '9')
			return -1;
		*code = *code * 10 + (line[i] - '0');
	}
	*reason = line + len;
	*rl = 0;
	if (len == 12)
		return 0;
	if (line[12] != ' ')
		return -1;
	if (!header_value_valid(line + 13, len - 13))
		return -2;
	*reason = line + 13;
	*rl = len - 13;
	return 0;
}
