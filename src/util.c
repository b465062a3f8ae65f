/*
 * util.c - small parsing helpers.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <errno.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "ring.h"
#include "util.h"

int
parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (s == NULL || *s == '\0')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int
parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;
	int shift = 0;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	switch (*end) {
	case '\0':
		break;
	case 'k': case 'K':
		shift = 10;
		break;
	case 'm': case 'M':
		shift = 20;
		break;
	case 'g': case 'G':
		shift = 30;
		break;
	default:
		return -1;
	}
	if (shift != 0 && end[1] != '\0')
		return -1;
	if (v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

int
parse_hostport(const char *s, char *host, size_t hostlen, uint16_t *port,
    char *err, size_t errlen)
{
	const char *colon, *hs = s;
	size_t hl;
	long p;

	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL || close[1] != ':') {
			snprintf(err, errlen, "'%s': expected [IPv6]:PORT", s);
			return -1;
		}
		hs = s + 1;
		hl = (size_t)(close - hs);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL) {
			snprintf(err, errlen, "'%s': expected HOST:PORT", s);
			return -1;
		}
		hl = (size_t)(colon - s);
	}
	if (hl >= hostlen) {
		snprintf(err, errlen, "'%s': host name too long", s);
		return -1;
	}
	if (parse_long(colon + 1, 1, 65535, &p) == -1) {
		snprintf(err, errlen, "'%s': port must be a number from 1 "
		    "to 65535", s);
		return -1;
	}
	memcpy(host, hs, hl);
	host[hl] = '\0';
	*port = (uint16_t)p;
	return 0;
}

int
name_is_valid(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > RING_NAME_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9');

		if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-' &&
		    c != ' ')))
			return 0;
	}
	/* "Server 4 " would look like "Server 4" wherever it is shown */
	return s[n - 1] != ' ';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long
query_decode(const char *s, size_t len, char *out, size_t outlen)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		char c = s[i];

		if (o + 1 >= outlen)
			return -1;
		if (c == '%') {
			int hi, lo;

			if (i + 2 >= len)
				return -1;
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else
			out[o++] = c == '+' ? ' ' : c;
	}
	out[o] = '\0';
	return (long)o;
}

const char *
query_find(const char *query, const char *name, size_t *len)
{
	size_t nl = strlen(name);
	const char *p = query, *amp;

	if (query == NULL)
		return NULL;
	while (*p != '\0') {
		amp = strchr(p, '&');
		if (amp == NULL)
			amp = p + strlen(p);
		if ((size_t)(amp - p) > nl && strncmp(p, name, nl) == 0 &&
		    p[nl] == '=') {
			*len = (size_t)(amp - p) - nl - 1;
			return p + nl + 1;
		}
		if (*amp == '\0')
			break;
		p = amp + 1;
	}
	return NULL;
}

int
parse_cidr(const char *s, int *family, uint8_t addr[16], int *prefix)
{
	char buf[64];
	const char *slash = strchr(s, '/');
	size_t hl = slash ? (size_t)(slash - s) : strlen(s);
	long p;
	int max;

	if (hl == 0 || hl >= sizeof(buf))
		return -1;
	memcpy(buf, s, hl);
	buf[hl] = '\0';
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, buf, addr) == 1) {
		*family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, addr) == 1) {
		*family = AF_INET6;
		max = 128;
	} else
		return -1;
	if (slash == NULL)
		p = max;
	else if (parse_long(slash + 1, 0, max, &p) == -1)
		return -1;
	*prefix = (int)p;
	return 0;
}

static int
cidr_match(int family, const uint8_t addr[16], const struct allow_net *net)
{
	int full = net->prefix / 8, rest = net->prefix % 8;
	uint8_t mask;

	if (family != net->family)
		return 0;
	if (memcmp(addr, net->addr, (size_t)full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (uint8_t)(0xff << (8 - rest));
	return (addr[full] & mask) == (net->addr[full] & mask);
}

int
peer_is_allowed(const char *peer, const struct allow_net *nets, int n)
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
	static const uint8_t lo6[16] = { [15] = 1 };
	uint8_t addr[16];
	int i, family;

	memset(addr, 0, sizeof(addr));
	if (inet_pton(AF_INET, peer, addr) == 1)
		family = AF_INET;
	else if (inet_pton(AF_INET6, peer, addr) == 1) {
		family = AF_INET6;
		if (memcmp(addr, mapped, 12) == 0) {	/* ::ffff:a.b.c.d */
			memmove(addr, addr + 12, 4);
			memset(addr + 4, 0, 12);
			family = AF_INET;
		}
	} else
		return 0;
	if (family == AF_INET && addr[0] == 127)
		return 1;
	if (family == AF_INET6 && memcmp(addr, lo6, 16) == 0)
		return 1;
	for (i = 0; i < n; i++)
		if (cidr_match(family, addr, &nets[i]))
			return 1;
	return 0;
}

int
host_name_is_valid(const char *s, size_t len)
{
	size_t i;
	int colons = 0;

	if (len == 0 || len > 253)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == ':')
			colons++;
		else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'))
			return 0;
	}
	if (colons > 0) {	/* only an IPv6 address has colons */
		char buf[64];
		unsigned char a[16];

		if (len >= sizeof(buf))
			return 0;
		memcpy(buf, s, len);
		buf[len] = '\0';
		return inet_pton(AF_INET6, buf, a) == 1;
	}
	return 1;
}

uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t
now_ms(void)
{
	return now_ns() / 1000000;
}

/*
 * A socket bound to a loopback port of the kernel's choosing; listening
 * too when backlog > 0.  The descriptor (close-on-exec) or -1.
 */
int
loopback_socket(uint16_t *port, int backlog)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd, saved;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    (backlog > 0 && listen(fd, backlog) == -1) ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	*port = ntohs(sin.sin_port);
	return fd;
}

/*
 * A loopback port free right now.  Only for a program that will listen
 * on it soon: until then any socket (an outgoing connection's ephemeral
 * port among them) may take it.
 */
int
free_loopback_port(uint16_t *port)
{
	int fd;

	if ((fd = loopback_socket(port, 0)) == -1)
		return -1;
	close(fd);
	return 0;
}

int
fd_limit_raise(rlim_t need, struct rlimit *rl)
{
	if (getrlimit(RLIMIT_NOFILE, rl) == -1)
		return -1;
	if (rl->rlim_cur < need && rl->rlim_cur < rl->rlim_max) {
		rl->rlim_cur = need < rl->rlim_max ? need : rl->rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, rl);
		(void)getrlimit(RLIMIT_NOFILE, rl);
	}
	return 0;
}

/*
 * The event loop's settings.  libcurl and libevent's bufferevents switch a
 * socket's interest between reading and writing several times per
 * request; with epoll's change list those switches within one loop
 * iteration cost one epoll_ctl(2), or none, instead of one each.
 */
struct event_base *
event_loop_new(void)
{
	struct event_config *cfg;
	struct event_base *base;

	if ((cfg = event_config_new()) == NULL)
		return NULL;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

long
query_param(const char *query, const char *name, char *out, size_t outlen,
    size_t max)
{
	const char *v;
	size_t vl;
	long n;

	if ((v = query_find(query, name, &vl)) == NULL)
		return -1;
	if (vl > 3 * max || (n = query_decode(v, vl, out, outlen)) == -1)
		return -2;
	return n;
}
