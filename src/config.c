/*
 * config.c - flags, RINGLB_* environment variables and defaults.
 *
 * One table describes every setting: its flag, its environment variable,
 * its help text and the function that parses it, so --help can never fall
 * out of step with what is parsed.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "util.h"

#define RINGLB_VERSION "0.1.0"

static int
set_listen(struct config *cfg, const char *v, char *err, size_t errlen)
{
	if (parse_hostport(v, cfg->listen_host, sizeof(cfg->listen_host),
	    &cfg->listen_port, err, errlen) == -1)
		return -1;
	if (cfg->listen_host[0] == '\0')
		strcpy(cfg->listen_host, "0.0.0.0");
	return 0;
}

static int
set_backend(struct config *cfg, const char *v, char *err, size_t errlen)
{
	if (strcmp(v, "static") != 0 && strcmp(v, "process") != 0 &&
	    strcmp(v, "docker") != 0 && strcmp(v, "swarm") != 0) {
		snprintf(err, errlen, "unknown backend '%s': use 'process', "
		    "'static', 'docker' or 'swarm'", v);
		return -1;
	}
	snprintf(cfg->backend, sizeof(cfg->backend), "%s", v);
	return 0;
}

/* One "NAME=HOST:PORT". */
static int
add_static(struct config *cfg, const char *v, size_t len, char *err,
    size_t errlen)
{
	struct static_replica *sr;
	char item[RING_NAME_MAX + REPLICA_HOST_MAX + 16], *eq;
	int i;

	if (len >= sizeof(item)) {
		snprintf(err, errlen, "replica '%.*s...' is too long",
		    40, v);
		return -1;
	}
	memcpy(item, v, len);
	item[len] = '\0';
	if ((eq = strchr(item, '=')) == NULL) {
		snprintf(err, errlen, "replica '%s': expected NAME=HOST:PORT, "
		    "e.g. server-1=127.0.0.1:5001", item);
		return -1;
	}
	*eq = '\0';
	if (!name_is_valid(item)) {
		snprintf(err, errlen, "replica name '%s' must be 1 to %d "
		    "characters of letters, digits, spaces and _.-, "
		    "starting with a letter or digit and not ending with a "
		    "space", item, RING_NAME_MAX);
		return -1;
	}
	for (i = 0; i < cfg->nstatic; i++)
		if (strcmp(cfg->static_replicas[i].name, item) == 0) {
			snprintf(err, errlen, "replica name '%s' is given "
			    "twice", item);
			return -1;
		}
	if (cfg->nstatic == CONFIG_STATIC_MAX) {
		snprintf(err, errlen, "at most %d static replicas",
		    CONFIG_STATIC_MAX);
		return -1;
	}
	sr = &cfg->static_replicas[cfg->nstatic];
	if (parse_hostport(eq + 1, sr->host, sizeof(sr->host), &sr->port,
	    err, errlen) == -1)
		return -1;
	if (sr->host[0] == '\0')
		strcpy(sr->host, "127.0.0.1");
	memcpy(sr->name, item, strlen(item) + 1);
	cfg->nstatic++;
	return 0;
}

static int
set_replica(struct config *cfg, const char *v, char *err, size_t errlen)
{
	return add_static(cfg, v, strlen(v), err, errlen);
}

/*
 * One list of replica names, comma-separated (a name may hold spaces:
 * "Server 1, Server 2"); blanks around each name are dropped, and so are
 * empty items.  The names are checked as /add checks hostnames.
 */
static int
set_replica_names(struct config *cfg, const char *v, char *err,
    size_t errlen)
{
	char name[RING_NAME_LEN];
	const char *p = v, *q;
	size_t n;
	int i;

	cfg->nreplica_names = 0;
	while (*p != '\0') {
		n = strcspn(p, ",");
		q = p + n;
		while (n > 0 && *p == ' ')
			p++, n--;
		while (n > 0 && p[n - 1] == ' ')
			n--;
		if (n > RING_NAME_MAX) {
			snprintf(err, errlen, "replica name '%.20s...' is "
			    "longer than %d characters", p, RING_NAME_MAX);
			return -1;
		}
		if (n > 0) {
			memcpy(name, p, n);
			name[n] = '\0';
			if (!name_is_valid(name)) {
				snprintf(err, errlen, "replica name '%s' must "
				    "be letters, digits, spaces, '_', '.' and "
				    "'-', starting with a letter or digit and not "
				    "ending with a space (names are separated by "
				    "commas)", name);
				return -1;
			}
			for (i = 0; i < cfg->nreplica_names; i++)
				if (strcmp(cfg->replica_names[i], name) == 0) {
					snprintf(err, errlen, "replica name "
					    "'%s' is given twice; each replica "
					    "needs a name of its own", name);
					return -1;
				}
			if (cfg->nreplica_names == CONFIG_REPLICAS_MAX) {
				snprintf(err, errlen, "at most %d replicas",
				    CONFIG_REPLICAS_MAX);
				return -1;
			}
			memcpy(cfg->replica_names[cfg->nreplica_names++],
			    name, n + 1);
		}
		p = *q == ',' ? q + 1 : q;
	}
	if (cfg->nreplica_names == 0) {
		snprintf(err, errlen, "'%s' names no replica: give a count "
		    "such as 3 or names such as \"Server 1,Server 2\"", v);
		return -1;
	}
	cfg->replicas = cfg->nreplica_names;
	return 0;
}

/*
 * --replicas / RINGLB_REPLICAS: a count of replicas to start, or a
 * comma-separated list of their names (process and docker backends), or
 * a comma- or space-separated list of NAME=HOST:PORT (static backend).
 */
static int
set_replicas(struct config *cfg, const char *v, char *err, size_t errlen)
{
	const char *p = v;
	size_t n;
	long count;

	if (strchr(v, '=') == NULL) {
		/* a number, or what looks like one meant as a count */
		if (parse_long(v, 0, CONFIG_REPLICAS_MAX, &count) == 0) {
			cfg->replicas = (int)count;
			cfg->nreplica_names = 0;
			return 0;
		}
		if (v[strspn(v, "+-0123456789 ")] == '\0') {
			snprintf(err, errlen, "'%s' must be a count from 0 to "
			    "%d, a comma-separated list of names, or a list of "
			    "NAME=HOST:PORT", v, CONFIG_REPLICAS_MAX);
			return -1;
		}
		return set_replica_names(cfg, v, err, errlen);
	}

	while (*p != '\0') {
		n = strcspn(p, ", ");
		if (n > 0 && add_static(cfg, p, n, err, errlen) == -1)
			return -1;
		p += n;
		if (*p != '\0')
			p++;
	}
	return 0;
}

static int
set_name_style(struct config *cfg, const char *v, char *err, size_t errlen)
{
	if (replica_name_style_parse(v, &cfg->name_style) == -1) {
		snprintf(err, errlen, "name style '%s': use 'seed' (Server 1, "
		    "Server 2, ...) or 'dns' (server-1, server-2, ...)", v);
		return -1;
	}
	return 0;
}

static int
set_ring(struct config *cfg, const char *v, char *err, size_t errlen)
{
	if (ring_algo_parse(v, &cfg->ring.algo) == -1) {
		snprintf(err, errlen, "unknown ring '%s': use 'table', 'hash' "
		    "or 'classic'", v);
		return -1;
	}
	return 0;
}

static int
set_vnodes(struct config *cfg, const char *v, char *err, size_t errlen)
{
	long n;

	if (parse_long(v, 1, RING_VNODES_MAX, &n) == -1) {
		snprintf(err, errlen, "vnodes '%s' must be a number from 1 to "
		    "%d", v, RING_VNODES_MAX);
		return -1;
	}
	cfg->ring.vnodes = (unsigned)n;
	return 0;
}

static int
set_balance_factor(struct config *cfg, const char *v, char *err,
    size_t errlen)
{
	char *end;
	double f = strtod(v, &end);

	if (*v == '\0' || *end != '\0' || !(f >= 1.0 && f <= 10.0)) {
		snprintf(err, errlen, "balance factor '%s' must be a number "
		    "from 1.0 to 10, e.g. 1.25 (each replica then takes at most "
		    "1.25 times the average in-flight load)", v);
		return -1;
	}
	cfg->balance_factor = f;
	return 0;
}

static int
set_key_fallback(struct config *cfg, const char *v, char *err,
    size_t errlen)
{
	if (strcmp(v, "random") == 0)
		cfg->key_fallback = KEY_FALLBACK_RANDOM;
	else if (strcmp(v, "client-ip") == 0)
		cfg->key_fallback = KEY_FALLBACK_CLIENT_IP;
	else {
		snprintf(err, errlen, "key fallback '%s': use 'random' or "
		    "'client-ip'", v);
		return -1;
	}
	return 0;
}

static int
set_ms(long *out, const char *what, const char *v, char *err, size_t errlen)
{
	if (parse_long(v, 1, 3600L * 1000, out) == -1) {
		snprintf(err, errlen, "%s '%s' must be milliseconds from 1 to "
		    "3600000", what, v);
		return -1;
	}
	return 0;
}

static int
set_start_timeout(struct config *cfg, const char *v, char *err, size_t errlen)
{
	return set_ms(&cfg->start_timeout_ms, "start timeout", v, err, errlen);
}

static int
set_stop_grace(struct config *cfg, const char *v, char *err, size_t errlen)
{
	return set_ms(&cfg->stop_grace_ms, "stop grace", v, err, errlen);
}

static int
set_health_interval(struct config *cfg, const char *v, char *err,
    size_t errlen)
{
	return set_ms(&cfg->health_interval_ms, "health interval", v, err,
	    errlen);
}

static int
set_health_timeout(struct config *cfg, const char *v, char *err,
    size_t errlen)
{
	return set_ms(&cfg->health_timeout_ms, "health timeout", v, err,
	    errlen);
}

static int
set_health_failures(struct config *cfg, const char *v, char *err,
    size_t errlen)
{
	if (parse_long(v, 1, 100, &cfg->health_failures) == -1) {
		snprintf(err, errlen, "health failures '%s' must be a number "
		    "from 1 to 100", v);
		return -1;
	}
	return 0;
}

int
config_set_path(char *dst, size_t dstlen, const char *what, const char *v,
    char *err, size_t errlen)
{
	if (strlen(v) >= dstlen || *v == '\0') {
		snprintf(err, errlen, "%s must be a path of 1 to %zu bytes",
		    what, dstlen - 1);
		return -1;
	}
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

static int
set_state_file(struct config *cfg, const char *v, char *err, size_t errlen)
{
	return config_set_path(cfg->state_file, sizeof(cfg->state_file),
	    "state file", v, err, errlen);
}

static int
set_admin_token(struct config *cfg, const char *v, char *err, size_t errlen)
{
	size_t i, n = strlen(v);

	if (n < 8 || n >= sizeof(cfg->admin_token)) {
		snprintf(err, errlen, "the admin token must be 8 to %zu "
		    "characters", sizeof(cfg->admin_token) - 1);
		return -1;
	}
	for (i = 0; i < n; i++)
		if (v[i] <= ' ' || v[i] > '~') {
			snprintf(err, errlen, "the admin token must be "
			    "printable ASCII without spaces");
			return -1;
		}
	memcpy(cfg->admin_token, v, n + 1);
	return 0;
}

/* The token from a file (a Docker secret): its first line. */
static int
set_admin_token_file(struct config *cfg, const char *v, char *err,
    size_t errlen)
{
	char buf[sizeof(cfg->admin_token) + 2];
	size_t n;
	FILE *fp;

	if ((fp = fopen(v, "r")) == NULL) {
		snprintf(err, errlen, "cannot read the admin token file %.200s: "
		    "%s", v, strerror(errno));
		return -1;
	}
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (set_admin_token(cfg, buf, err, errlen) == -1) {
		size_t len = strlen(err);

		snprintf(err + len, errlen - len, " (in %.200s)", v);
		return -1;
	}
	return 0;
}

/* RINGLB_ADMIN_ALLOW: comma- or space-separated CIDRs or addresses. */
static int
set_admin_allow(struct config *cfg, const char *v, char *err, size_t errlen)
{
	const char *p = v;
	char item[64];
	size_t n;

	while (*p != '\0') {
		n = strcspn(p, ", ");
		if (n > 0) {
			if (cfg->nadmin_allow == CONFIG_ALLOW_MAX) {
				snprintf(err, errlen, "at most %d admin "
				    "networks", CONFIG_ALLOW_MAX);
				return -1;
			}
			if (n >= sizeof(item) || (memcpy(item, p, n),
			    item[n] = '\0', parse_cidr(item,
			    &cfg->admin_allow[cfg->nadmin_allow].family,
			    cfg->admin_allow[cfg->nadmin_allow].addr,
			    &cfg->admin_allow[cfg->nadmin_allow].prefix)) ==
			    -1) {
				snprintf(err, errlen, "'%.*s' is not a network "
				    "such as 10.0.0.0/8, 172.17.0.1 or "
				    "fd00::/8", (int)(n > 60 ? 60 : n), p);
				return -1;
			}
			cfg->nadmin_allow++;
		}
		p += n;
		if (*p != '\0')
			p++;
	}
	return 0;
}

/*
 * --admin-host / RINGLB_ADMIN_HOSTS: names (or addresses) clients use to
 * reach ringlb, which /add and /rm then accept in Host; comma- or
 * space-separated, the flag repeatable.
 */
static int
set_admin_hosts(struct config *cfg, const char *v, char *err, size_t errlen)
{
	const char *p = v;
	char *dst;
	size_t n, i;

	while (*p != '\0') {
		n = strcspn(p, ", ");
		if (n > 0) {
			const char *h = p;
			size_t hl = n;

			if (cfg->nadmin_hosts == CONFIG_ADMIN_HOSTS_MAX) {
				snprintf(err, errlen, "at most %d admin host "
				    "names", CONFIG_ADMIN_HOSTS_MAX);
				return -1;
			}
			if (hl > 2 && h[0] == '[' && h[hl - 1] == ']') {
				h++;
				hl -= 2;
			}
			if (hl > CONFIG_HOST_NAME_MAX ||
			    !host_name_is_valid(h, hl)) {
				snprintf(err, errlen, "'%.*s' is not a host name "
				    "or address such as ringlb.example or "
				    "192.168.1.10 (no port)", (int)(n > 80 ? 80 :
				    n), p);
				return -1;
			}
			dst = cfg->admin_hosts[cfg->nadmin_hosts++];
			for (i = 0; i < hl; i++)
				dst[i] = (char)(h[i] >= 'A' && h[i] <= 'Z' ?
				    h[i] - 'A' + 'a' : h[i]);
			dst[hl] = '\0';
		}
		p += n;
		if (*p != '\0')
			p++;
	}
	return 0;
}

static int
set_connect_timeout(struct config *cfg, const char *v, char *err,
    size_t errlen)
{
	return set_ms(&cfg->connect_timeout_ms, "connect timeout", v, err,
	    errlen);
}

static int
set_timeout(struct config *cfg, const char *v, char *err, size_t errlen)
{
	return set_ms(&cfg->timeout_ms, "timeout", v, err, errlen);
}

static int
set_max_body(struct config *cfg, const char *v, char *err, size_t errlen)
{
	if (parse_size(v, &cfg->max_body) == -1 || cfg->max_body == 0) {
		snprintf(err, errlen, "max body '%s' must be a byte count "
		    "such as 1048576, 512k or 8m", v);
		return -1;
	}
	return 0;
}

static int
set_max_body_memory(struct config *cfg, const char *v, char *err,
    size_t errlen)
{
	if (parse_size(v, &cfg->max_body_memory) == -1 ||
	    cfg->max_body_memory == 0) {
		snprintf(err, errlen, "max body memory '%s' must be a byte "
		    "count such as 64m or 1g", v);
		return -1;
	}
	return 0;
}

static int
set_max_response_memory(struct config *cfg, const char *v, char *err,
    size_t errlen)
{
	if (parse_size(v, &cfg->max_response_memory) == -1 ||
	    cfg->max_response_memory < (64ULL << 10)) {
		snprintf(err, errlen, "max response memory '%s' must be a "
		    "byte count of at least 64k, such as 32m", v);
		return -1;
	}
	return 0;
}

static int
set_max_header(struct config *cfg, const char *v, char *err, size_t errlen)
{
	if (parse_size(v, &cfg->max_header) == -1 || cfg->max_header < 1024 ||
	    cfg->max_header > (64ULL << 20)) {
		snprintf(err, errlen, "max header '%s' must be a byte count "
		    "from 1k to 64m, such as 32k", v);
		return -1;
	}
	return 0;
}

static int
set_max_response_header(struct config *cfg, const char *v, char *err,
    size_t errlen)
{
	if (parse_size(v, &cfg->max_response_header) == -1 ||
	    cfg->max_response_header < 1024 ||
	    cfg->max_response_header > (64ULL << 20)) {
		snprintf(err, errlen, "max response header '%s' must be a byte "
		    "count from 1k to 64m, such as 64k", v);
		return -1;
	}
	return 0;
}

static int
set_client_timeout(struct config *cfg, const char *v, char *err,
    size_t errlen)
{
	if (parse_long(v, 1, 3600, &cfg->client_timeout_s) == -1) {
		snprintf(err, errlen, "client timeout '%s' must be seconds from 1 "
		    "to 3600", v);
		return -1;
	}
	return 0;
}

static int
set_header_timeout(struct config *cfg, const char *v, char *err,
    size_t errlen)
{
	if (parse_long(v, 1, 3600, &cfg->header_timeout_s) == -1) {
		snprintf(err, errlen, "header timeout '%s' must be seconds from 1 "
		    "to 3600", v);
		return -1;
	}
	return 0;
}

static int
set_keepalive_timeout(struct config *cfg, const char *v, char *err,
    size_t errlen)
{
	if (parse_long(v, 1, 3600, &cfg->keepalive_timeout_s) == -1) {
		snprintf(err, errlen, "keep-alive timeout '%s' must be seconds "
		    "from 1 to 3600", v);
		return -1;
	}
	return 0;
}

static int
set_max_connections(struct config *cfg, const char *v, char *err,
    size_t errlen)
{
	if (parse_long(v, 1, 1000000, &cfg->max_connections) == -1) {
		snprintf(err, errlen, "max connections '%s' must be a number "
		    "from 1 to 1000000", v);
		return -1;
	}
	cfg->max_connections_given = 1;
	return 0;
}

/* The CPUs this process may run on, at most CONFIG_WORKERS_MAX. */
static int
online_cpus(void)
{
	cpu_set_t set;
	long n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		n = CPU_COUNT(&set);
	else
		n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > CONFIG_WORKERS_MAX ? CONFIG_WORKERS_MAX : (int)n;
}

static int
set_workers(struct config *cfg, const char *v, char *err, size_t errlen)
{
	long n;

	if (strcmp(v, "auto") == 0) {
		cfg->workers = online_cpus();
		return 0;
	}
	if (parse_long(v, 1, CONFIG_WORKERS_MAX, &n) == -1) {
		snprintf(err, errlen, "workers '%s' must be 'auto' (one per "
		    "CPU) or a number from 1 to %d", v, CONFIG_WORKERS_MAX);
		return -1;
	}
	cfg->workers = (int)n;
	return 0;
}

static int
set_maxconns(struct config *cfg, const char *v, char *err, size_t errlen)
{
	if (parse_long(v, 1, 100000, &cfg->upstream_maxconns) == -1) {
		snprintf(err, errlen, "upstream connections '%s' must be a "
		    "number from 1 to 100000", v);
		return -1;
	}
	cfg->upstream_maxconns_given = 1;
	return 0;
}

static int
set_log_level(struct config *cfg, const char *v, char *err, size_t errlen)
{
	if ((cfg->log_level = log_level_parse(v)) == -1) {
		snprintf(err, errlen, "log level '%s': use error, warn, info "
		    "or debug", v);
		return -1;
	}
	return 0;
}

static int
set_check(struct config *cfg, const char *v, char *err, size_t errlen)
{
	(void)v;
	(void)err;
	(void)errlen;
	cfg->check = 1;
	return 0;
}

static const struct option_def options[] = {
	{ "listen", "RINGLB_LISTEN", "HOST:PORT",
	  "address to serve clients on (default 0.0.0.0:5000)", set_listen },
	{ "backend", "RINGLB_BACKEND", "NAME",
	  "how replicas are provided: process (default: local ringlb-replica "
	  "children), static (fixed addresses; the default when --replica "
	  "is given) or docker (containers, through the Docker Engine API)",
	  set_backend },
	{ "replicas", "RINGLB_REPLICAS", "N|NAMES|LIST",
	  "replicas to start with: a count (default 3, named as --name-style "
	  "says), or their names, comma-separated (\"Server 1,Server 2\"); "
	  "for the static backend, a comma-separated list of NAME=HOST:PORT",
	  set_replicas },
	{ "name-style", "RINGLB_NAME_STYLE", "STYLE",
	  "how ringlb names the replicas it starts unnamed (at startup and "
	  "for /add): seed (default: Server 1, Server 2, ..., as the classic "
	  "assignment names them) or dns (server-1, server-2, ...)",
	  set_name_style },
	{ "replica", NULL, "NAME=HOST:PORT",
	  "a static replica; repeat for each one", set_replica },
	{ "start-timeout", "RINGLB_START_TIMEOUT_MS", "MS",
	  "time a new replica has to answer its first heartbeat (default "
	  "5000)", set_start_timeout },
	{ "stop-grace", "RINGLB_STOP_GRACE_MS", "MS",
	  "time between SIGTERM and SIGKILL when stopping a replica, and for "
	  "its requests in flight to finish (default 3000)", set_stop_grace },
	{ "health-interval", "RINGLB_HEALTH_INTERVAL_MS", "MS",
	  "time between heartbeats to each replica (default 250)",
	  set_health_interval },
	{ "health-timeout", "RINGLB_HEALTH_TIMEOUT_MS", "MS",
	  "time a heartbeat may take (default 250)", set_health_timeout },
	{ "health-failures", "RINGLB_HEALTH_FAILURES", "N",
	  "failed heartbeats in a row that evict a replica (default 2)",
	  set_health_failures },
	{ "state-file", "RINGLB_STATE_FILE", "PATH",
	  "keep the replica set in PATH across restarts", set_state_file },
	{ "admin-allow", "RINGLB_ADMIN_ALLOW", "NETS",
	  "without a token, networks besides loopback that may use /add and "
	  "/rm, e.g. 172.17.0.0/16", set_admin_allow },
	{ "admin-host", "RINGLB_ADMIN_HOSTS", "NAME",
	  "a name (or address) clients reach ringlb by, besides localhost, "
	  "127.0.0.1, [::1] and the address connected to; /add and /rm "
	  "refuse any other Host without a token; repeatable, the variable "
	  "a comma-separated list", set_admin_hosts },
	{ NULL, "RINGLB_ADMIN_TOKEN", "TOKEN",
	  "require 'Authorization: Bearer TOKEN' on /add and /rm (from any "
	  "address)", set_admin_token },
	{ "admin-token-file", "RINGLB_ADMIN_TOKEN_FILE", "PATH",
	  "the admin token from the first line of PATH, e.g. a Docker secret "
	  "(/run/secrets/ringlb_admin_token)", set_admin_token_file },
	{ "ring", "RINGLB_RING", "ALGO",
	  "table (default: 2^21 arcs, each owned by rendezvous hashing), "
	  "hash (XXH3 virtual nodes on a sorted ring) or classic (512 slots, "
	  "9 virtual servers, the assignment's formulas)", set_ring },
	{ "vnodes", "RINGLB_VNODES", "N",
	  "virtual nodes per replica on the hash ring (default 160)",
	  set_vnodes },
	{ "balance-factor", "RINGLB_BALANCE_FACTOR", "F",
	  "bounded loads: no replica takes more than F times the average "
	  "in-flight requests; a request over the cap goes to the next replica "
	  "of its key (off by default; e.g. 1.25)", set_balance_factor },
	{ "key-fallback", "RINGLB_KEY_FALLBACK", "MODE",
	  "request key when neither ?request_id= nor X-Request-Id is given: "
	  "random (default) or client-ip", set_key_fallback },
	{ "connect-timeout", "RINGLB_CONNECT_TIMEOUT_MS", "MS",
	  "time allowed to connect to a replica (default 1000)",
	  set_connect_timeout },
	{ "timeout", "RINGLB_TIMEOUT_MS", "MS",
	  "time allowed for a whole proxied request (default 30000)",
	  set_timeout },
	{ "max-body", "RINGLB_MAX_BODY", "BYTES",
	  "largest request body accepted (default 8m)", set_max_body },
	{ "max-body-memory", "RINGLB_MAX_BODY_MEMORY", "BYTES",
	  "request bodies held in memory at once, all connections together; "
	  "past it a 503 (default 64m, or --max-body if larger)",
	  set_max_body_memory },
	{ "max-header", "RINGLB_MAX_HEADER", "BYTES",
	  "largest request line and headers accepted (default 32k)",
	  set_max_header },
	{ "max-response-header", "RINGLB_MAX_RESPONSE_HEADER", "BYTES",
	  "largest status line and headers taken from a replica; more is a "
	  "502 (default 64k)", set_max_response_header },
	{ "max-response-memory", "RINGLB_MAX_RESPONSE_MEMORY", "BYTES",
	  "answers held for clients that read more slowly than replicas "
	  "write, all connections together; past it transfers wait for "
	  "their clients (default 32m)", set_max_response_memory },
	{ "client-timeout", "RINGLB_CLIENT_TIMEOUT", "SECONDS",
	  "time a request body may take to arrive, and a client may leave an "
	  "answer unread, before a 408 or a close (default 60)",
	  set_client_timeout },
	{ "header-timeout", "RINGLB_HEADER_TIMEOUT", "SECONDS",
	  "time a request line and headers may take to arrive; slower is a "
	  "408 (default 10)", set_header_timeout },
	{ "keepalive-timeout", "RINGLB_KEEPALIVE_TIMEOUT", "SECONDS",
	  "an idle keep-alive client connection is closed after this "
	  "(default 15)", set_keepalive_timeout },
	{ "max-connections", "RINGLB_MAX_CONNECTIONS", "N",
	  "client connections open at once; more get a 503 (default 10000)",
	  set_max_connections },
	{ "upstream-connections", "RINGLB_UPSTREAM_CONNECTIONS", "N",
	  "idle keep-alive connections kept to replicas (default 256)",
	  set_maxconns },
	{ "workers", "RINGLB_WORKERS", "N",
	  "threads serving clients, each with its own connections to "
	  "replicas: 'auto' (default) is one per CPU ringlb may run on; the "
	  "limits above are for all of them together", set_workers },
	{ "log-level", "RINGLB_LOG_LEVEL", "LEVEL",
	  "error, warn, info (default) or debug", set_log_level },
	{ "check", NULL, NULL,
	  "ask the ringlb listening on --listen for its /heartbeat and exit 0 "
	  "if it answers 200, else 1 (for container health checks)",
	  set_check },
	{ "help", NULL, NULL, "print this help and exit", NULL },
	{ "version", NULL, NULL, "print the version and exit", NULL },
};

/* ringlb's own settings first, then each backend's. */
static const struct option_table ringlb_options = {
	NULL, options, sizeof(options) / sizeof(options[0]), NULL
};
static const struct option_table *const tables[] = {
	&ringlb_options,
	&backend_process_options,
	&backend_docker_options,
	&backend_swarm_options,
};
#define NTABLES		(sizeof(tables) / sizeof(tables[0]))
#define OPTIONS_MAX	128
#define table(t)	(tables[(t)])

void
config_usage(FILE *fp)
{
	size_t t, i;
	char left[64];

	fprintf(fp,
	    "usage: ringlb [options]\n"
	    "\n"
	    "HTTP load balancer: forwards every request to a replica chosen "
	    "by consistent\nhashing of its request key (?request_id=, else "
	    "X-Request-Id, else random).\n\noptions (environment variable in "
	    "brackets; a flag wins over the environment):\n");
	for (t = 0; t < NTABLES; t++) {
		if (table(t)->title != NULL)
			fprintf(fp, "\n%s:\n", table(t)->title);
		for (i = 0; i < table(t)->n; i++) {
			const struct option_def *o = &table(t)->defs[i];

			if (o->flag != NULL)
				snprintf(left, sizeof(left), "--%s%s%s",
				    o->flag, o->metavar ? " " : "",
				    o->metavar ? o->metavar : "");
			else
				snprintf(left, sizeof(left), "%s=%s", o->env,
				    o->metavar);
			fprintf(fp, "  %-32s %s", left, o->help);
			if (o->env != NULL && o->flag != NULL)
				fprintf(fp, " [%s]", o->env);
			fputc('\n', fp);
		}
	}
	fprintf(fp, "\nexamples:\n"
	    "  ringlb                      3 local replicas on port 5000\n"
	    "  ringlb --replicas 5 --state-file /var/lib/ringlb/state.json\n"
	    "  ringlb --replicas 'Server 1,Server 2'\n"
	    "  ringlb --replica a=127.0.0.1:5001 --replica b=127.0.0.1:5002\n"
	    "  ringlb --backend docker     3 replica containers on network "
	    "net1\n");
}

/*
 * cfg comes zeroed (see config.h): clearing its 100 KiB again would only
 * make every page of it resident.
 */
static void
config_defaults(struct config *cfg)
{
	strcpy(cfg->listen_host, "0.0.0.0");
	cfg->listen_port = 5000;
	cfg->replicas = 3;
	cfg->start_timeout_ms = 5000;
	cfg->stop_grace_ms = 3000;
	cfg->health_interval_ms = 250;
	cfg->health_timeout_ms = 250;
	cfg->health_failures = 2;
	cfg->ring.algo = RING_ALGO_TABLE;
	cfg->ring.vnodes = RING_VNODES_DEFAULT;
	cfg->key_fallback = KEY_FALLBACK_RANDOM;
	cfg->connect_timeout_ms = 1000;
	cfg->timeout_ms = 30000;
	cfg->max_body = 8ULL << 20;
	cfg->max_header = 32ULL << 10;
	cfg->max_response_header = 64ULL << 10;
	cfg->max_response_memory = 32ULL << 20;
	cfg->client_timeout_s = 60;
	cfg->header_timeout_s = 10;
	cfg->keepalive_timeout_s = 15;
	cfg->max_connections = 10000;
	cfg->upstream_maxconns = 256;
	cfg->workers = online_cpus();
	cfg->log_level = LOG_LEVEL_INFO;
}

/*
 * The state file is written by a rename in its directory: that directory
 * must exist and be writable now, not at the first change, when the set
 * would silently go unsaved.
 */
static int
check_state_dir(const struct config *cfg, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(cfg->state_file, '/');
	size_t n;

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else {
		n = slash == cfg->state_file ? 1 :
		    (size_t)(slash - cfg->state_file);
		snprintf(dir, sizeof(dir), "%.*s", (int)n, cfg->state_file);
	}
	if (access(dir, W_OK | X_OK) == 0)
		return 0;
	if (errno == ENOENT)
		snprintf(err, errlen, "--state-file %s: the directory %s does "
		    "not exist; create it (mkdir -p %s) or choose another "
		    "path", cfg->state_file, dir, dir);
	else
		snprintf(err, errlen, "--state-file %s: the directory %s is "
		    "not writable (%s); ringlb writes the file there through "
		    "a temporary one", cfg->state_file, dir, strerror(errno));
	return -1;
}

/*
 * The replicas to start with must fit the backend's limit and the ring:
 * the classic ring places at most 56 (512 slots, 9 virtual servers each),
 * and one it cannot place would be listed as up but never be given a key.
 */
static int
config_check_count(const struct config *cfg, char *err, size_t errlen)
{
	int n, cap = ring_capacity(&cfg->ring);
	int is_static = strcmp(cfg->backend, "static") == 0;

	n = is_static ? cfg->nstatic : cfg->replicas;
	if (n > cap) {
		snprintf(err, errlen, "%d replicas, but the classic ring places "
		    "at most %d: its %d slots take %d virtual servers per "
		    "replica; use --ring table or --ring hash, or start at most "
		    "%d", n, cap, RING_CLASSIC_SLOTS, RING_CLASSIC_VNODES, cap);
		return -1;
	}
	if (strcmp(cfg->backend, "process") == 0 && n > cfg->max_replicas) {
		snprintf(err, errlen, "--replicas %d is more than --max-replicas "
		    "%d: the process backend runs at most %d replicas; raise "
		    "--max-replicas (RINGLB_MAX_REPLICAS), up to %d", n,
		    cfg->max_replicas, cfg->max_replicas, CONFIG_REPLICAS_MAX);
		return -1;
	}
	if ((strcmp(cfg->backend, "docker") == 0 ||
	    strcmp(cfg->backend, "swarm") == 0) && n > cfg->docker.max) {
		snprintf(err, errlen, "--replicas %d is more than --docker-max "
		    "%d: the %s backend runs at most %d replicas; raise "
		    "--docker-max (RINGLB_DOCKER_MAX), up to %d", n,
		    cfg->docker.max, cfg->backend, cfg->docker.max,
		    CONFIG_REPLICAS_MAX);
		return -1;
	}
	return 0;
}

/* Settings that only make sense together. */
static int
config_check(struct config *cfg, char *err, size_t errlen)
{
	if (cfg->backend[0] == '\0')
		strcpy(cfg->backend, cfg->nstatic > 0 ? "static" : "process");
	if (strcmp(cfg->backend, "static") == 0 && cfg->nreplica_names > 0) {
		snprintf(err, errlen, "the static backend takes replicas as "
		    "NAME=HOST:PORT, not names alone ('%s'): give --replica "
		    "NAME=HOST:PORT for each", cfg->replica_names[0]);
		return -1;
	}
	if (strcmp(cfg->backend, "static") == 0 && cfg->nstatic == 0) {
		snprintf(err, errlen, "the static backend needs replicas: give "
		    "--replica NAME=HOST:PORT (repeatable) or RINGLB_REPLICAS="
		    "a=HOST:PORT,b=HOST:PORT");
		return -1;
	}
	if (strcmp(cfg->backend, "process") == 0 && cfg->nstatic > 0) {
		snprintf(err, errlen, "--replica NAME=HOST:PORT is for the "
		    "static backend; the process backend starts its own "
		    "replicas (--replicas N, or --replicas NAME,NAME,...)");
		return -1;
	}
	if (strcmp(cfg->backend, "swarm") == 0 && cfg->state_file[0] != '\0') {
		snprintf(err, errlen, "the swarm backend keeps no state file: "
		    "the swarm's managers keep the replica set; drop "
		    "--state-file (RINGLB_STATE_FILE)");
		return -1;
	}
	if (config_check_count(cfg, err, errlen) == -1)
		return -1;
	if (cfg->state_file[0] != '\0' && !cfg->check &&
	    check_state_dir(cfg, err, errlen) == -1)
		return -1;
	if (cfg->health_timeout_ms > cfg->health_interval_ms * 4) {
		snprintf(err, errlen, "--health-timeout (%ld ms) must be at "
		    "most 4 times --health-interval (%ld ms)",
		    cfg->health_timeout_ms, cfg->health_interval_ms);
		return -1;
	}
	if (cfg->max_body_memory == 0)
		cfg->max_body_memory = cfg->max_body > (64ULL << 20) ?
		    cfg->max_body : 64ULL << 20;
	if (cfg->max_body_memory < cfg->max_body) {
		snprintf(err, errlen, "--max-body-memory (%llu bytes) must be "
		    "at least --max-body (%llu bytes)",
		    (unsigned long long)cfg->max_body_memory,
		    (unsigned long long)cfg->max_body);
		return -1;
	}
	return 0;
}

int
config_parse(struct config *cfg, int argc, char **argv, char *err,
    size_t errlen)
{
	struct option longopts[OPTIONS_MAX + 1];
	const struct option_def *map[OPTIONS_MAX];	/* longopts -> def */
	const struct option_def *o;
	char why[256];
	const char *v;
	size_t t, i, nlong = 0;
	int ch, idx, from_flags = 0;

	config_defaults(cfg);
	for (t = 0; t < NTABLES; t++)
		if (table(t)->defaults != NULL)
			table(t)->defaults(cfg);
	memset(longopts, 0, sizeof(longopts));
	for (t = 0; t < NTABLES; t++)
		for (i = 0; i < table(t)->n; i++) {
			o = &table(t)->defs[i];
			if (o->env != NULL && (v = getenv(o->env)) != NULL &&
			    *v != '\0' && o->set(cfg, v, why, sizeof(why)) ==
			    -1) {
				snprintf(err, errlen, "%s: %s", o->env, why);
				return -1;
			}
			if (o->flag == NULL || nlong == OPTIONS_MAX)
				continue;
			longopts[nlong].name = o->flag;
			longopts[nlong].has_arg = o->metavar ?
			    required_argument : no_argument;
			map[nlong++] = o;
		}

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "h", longopts, &idx)) != -1) {
		if (ch == 'h') {
			config_usage(stdout);
			return 1;
		}
		if (ch != 0) {
			snprintf(err, errlen, "unknown or incomplete option "
			    "'%s'; see ringlb --help", argv[optind - 1]);
			return -1;
		}
		o = map[idx];
		if (strcmp(o->flag, "help") == 0) {
			config_usage(stdout);
			return 1;
		}
		if (strcmp(o->flag, "version") == 0) {
			printf("ringlb %s\n", RINGLB_VERSION);
			return 1;
		}
		/* Static replicas given as flags replace those from the
		 * environment rather than adding to them. */
		if (o->set == set_replica || o->set == set_replicas) {
			if (!from_flags)
				cfg->nstatic = 0;
			from_flags = 1;
		}
		if (o->set(cfg, optarg, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "--%s: %s", o->flag, why);
			return -1;
		}
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument '%s'; see ringlb "
		    "--help", argv[optind]);
		return -1;
	}
	return config_check(cfg, err, errlen);
}
