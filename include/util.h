/*
 * util.h - small parsing helpers shared by ringlb and its tools.
 */
#ifndef RINGLB_UTIL_H
#define RINGLB_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>

/*
 * Split "host:port", "[v6]:port" or ":port" (host left empty) into its
 * parts.  Returns 0, or -1 with the reason in err.
 */
int	parse_hostport(const char *s, char *host, size_t hostlen,
	    uint16_t *port, char *err, size_t errlen);

/* A decimal integer in [min, max], the whole string; 0 or -1. */
int	parse_long(const char *s, long min, long max, long *out);

/* Byte counts: "1048576", "512k", "8m", "1g" (powers of 1024); 0 or -1. */
int	parse_size(const char *s, uint64_t *out);

/*
 * A replica name is 1 to RING_NAME_MAX bytes of
 * [A-Za-z0-9][A-Za-z0-9 _.-]* (spaces allowed, as in the classic
 * assignment's "Server 4").  Returns 1 if valid.
 */
int	name_is_valid(const char *s);

/* Decode %XX and '+' of a query-string value into out (NUL-terminated).
 * Returns the decoded length, or -1 on a bad escape or if out is short. */
long	query_decode(const char *s, size_t len, char *out, size_t outlen);

/*
 * Find the value of parameter name in a raw query string ("a=1&b=2").
 * Returns a pointer into query and its length in *len, or NULL.
 */
const char *query_find(const char *query, const char *name, size_t *len);

/*
 * The value of parameter name in query, decoded into out: its length, -1
 * when the parameter is absent, -2 when it is longer than max bytes
 * decoded (3 * max encoded) or not valid percent-encoding.
 */
long	query_param(const char *query, const char *name, char *out,
	    size_t outlen, size_t max);

/* An IPv4 or IPv6 network. */
struct allow_net {
	int		family;		/* AF_INET or AF_INET6 */
	uint8_t		addr[16];
	int		prefix;
};

/*
 * Parse "10.0.0.0/8", "172.17.0.1" or "fd00::/8" into family (AF_INET or
 * AF_INET6), the address bytes and the prefix length; 0 or -1.
 */
int	parse_cidr(const char *s, int *family, uint8_t addr[16], int *prefix);

/*
 * May a client at address peer (text, as libevent gives it) use the admin
 * API without a token: is it loopback (127.0.0.0/8, ::1, or IPv4-mapped
 * loopback) or inside one of the n networks?
 */
int	peer_is_allowed(const char *peer, const struct allow_net *nets, int n);
/*
 * Is s[0..len) a host name (letters, digits, '-', '_', dots) or an IPv6
 * address without its brackets?  For Host headers and --admin-host.
 */
int	host_name_is_valid(const char *s, size_t len);

/* A socket bound to a loopback port the kernel picks, listening if
 * backlog > 0; the descriptor or -1. */
int	loopback_socket(uint16_t *port, int backlog);
/* A loopback TCP port free right now (the kernel's pick); 0 or -1. */
int	free_loopback_port(uint16_t *port);

/* Milliseconds and nanoseconds on the monotonic clock. */
struct event_base;
/* An event_base for ringlb's loops (the main one, each worker's). */
struct event_base *event_loop_new(void);

uint64_t now_ms(void);
uint64_t now_ns(void);

/*
 * Raise the soft limit on descriptors towards need, as far as the hard
 * limit allows, and leave the limit then in force in *rl.  -1 if the
 * limit cannot be read.
 */
int	fd_limit_raise(rlim_t need, struct rlimit *rl);

#endif /* RINGLB_UTIL_H */
