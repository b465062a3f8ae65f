/*
 * config.c - flags, RINGLB_* environment variables and defaults.
 *
 * One table describes every setting: its flag, its environment variable,
 * its help text and the function that parses it, so --help can never fall
 * out of step with what is parsed.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "util.h"

#define RINGLB_VERSION "0.1.0"

typedef int (*opt_set_fn)(struct config *, const char *, char *, size_t);

struct option_def {
	const char	*flag;
	const char	*env;
	const char	*metavar;	/* NULL: the flag takes no value */
	const char	*help;
	opt_set_fn	 set;
};

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
	if (strcmp(v, "static") != 0) {
		snprintf(err, errlen, "unknown backend '%s': this build has "
		    "'static'", v);
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
		    "characters of [A-Za-z0-9_.-], starting with a letter or "
		    "digit", item, RING_NAME_MAX);
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

/* RINGLB_REPLICAS: a comma- or space-separated list. */
static int
set_replicas(struct config *cfg, const char *v, char *err, size_t errlen)
{
	const char *p = v;
	size_t n;

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
set_ring(struct config *cfg, const char *v, char *err, size_t errlen)
{
	if (ring_algo_parse(v, &cfg->ring.algo) == -1) {
		snprintf(err, errlen, "unknown ring '%s': use 'hash' or "
		    "'classic'", v);
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
set_maxconns(struct config *cfg, const char *v, char *err, size_t errlen)
{
	if (parse_long(v, 1, 100000, &cfg->upstream_maxconns) == -1) {
		snprintf(err, errlen, "upstream connections '%s' must be a "
		    "number from 1 to 100000", v);
		return -1;
	}
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

static const struct option_def options[] = {
	{ "listen", "RINGLB_LISTEN", "HOST:PORT",
	  "address to serve clients on (default 0.0.0.0:5000)", set_listen },
	{ "backend", "RINGLB_BACKEND", "NAME",
	  "how replicas are provided: static (default)", set_backend },
	{ "replica", NULL, "NAME=HOST:PORT",
	  "a static replica; repeat for each one", set_replica },
	{ "replicas", "RINGLB_REPLICAS", "LIST",
	  "static replicas as a comma-separated list of NAME=HOST:PORT",
	  set_replicas },
	{ "ring", "RINGLB_RING", "ALGO",
	  "hash (default: XXH3 virtual nodes) or classic (512 slots, 9 "
	  "virtual servers, the assignment's formulas)", set_ring },
	{ "vnodes", "RINGLB_VNODES", "N",
	  "virtual nodes per replica on the hash ring (default 160)",
	  set_vnodes },
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
	{ "upstream-connections", "RINGLB_UPSTREAM_CONNECTIONS", "N",
	  "idle keep-alive connections kept to replicas (default 256)",
	  set_maxconns },
	{ "log-level", "RINGLB_LOG_LEVEL", "LEVEL",
	  "error, warn, info (default) or debug", set_log_level },
	{ "help", NULL, NULL, "print this help and exit", NULL },
	{ "version", NULL, NULL, "print the version and exit", NULL },
};
#define NOPTIONS (sizeof(options) / sizeof(options[0]))

void
config_usage(FILE *fp)
{
	size_t i;
	char left[64];

	fprintf(fp,
	    "usage: ringlb [options]\n"
	    "\n"
	    "HTTP load balancer: forwards every request to a replica chosen "
	    "by consistent\nhashing of its request key (?request_id=, else "
	    "X-Request-Id, else random).\n\noptions (environment variable in "
	    "brackets; a flag wins over the environment):\n");
	for (i = 0; i < NOPTIONS; i++) {
		const struct option_def *o = &options[i];

		snprintf(left, sizeof(left), "--%s%s%s", o->flag,
		    o->metavar ? " " : "", o->metavar ? o->metavar : "");
		fprintf(fp, "  %-32s %s", left, o->help);
		if (o->env != NULL)
			fprintf(fp, " [%s]", o->env);
		fputc('\n', fp);
	}
	fprintf(fp, "\nexample:\n  ringlb --replica a=127.0.0.1:5001 "
	    "--replica b=127.0.0.1:5002\n");
}

static void
config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	strcpy(cfg->listen_host, "0.0.0.0");
	cfg->listen_port = 5000;
	strcpy(cfg->backend, "static");
	cfg->ring.algo = RING_ALGO_HASH;
	cfg->ring.vnodes = RING_VNODES_DEFAULT;
	cfg->key_fallback = KEY_FALLBACK_RANDOM;
	cfg->connect_timeout_ms = 1000;
	cfg->timeout_ms = 30000;
	cfg->max_body = 8ULL << 20;
	cfg->upstream_maxconns = 256;
	cfg->log_level = LOG_LEVEL_INFO;
}

int
config_parse(struct config *cfg, int argc, char **argv, char *err,
    size_t errlen)
{
	struct option longopts[NOPTIONS + 1];
	char why[256];
	const char *v;
	size_t i;
	int ch, idx, from_flags = 0;

	config_defaults(cfg);
	for (i = 0; i < NOPTIONS; i++) {
		if (options[i].env == NULL ||
		    (v = getenv(options[i].env)) == NULL || *v == '\0')
			continue;
		if (options[i].set(cfg, v, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "%s: %s", options[i].env, why);
			return -1;
		}
	}

	memset(longopts, 0, sizeof(longopts));
	for (i = 0; i < NOPTIONS; i++) {
		longopts[i].name = options[i].flag;
		longopts[i].has_arg = options[i].metavar ? required_argument :
		    no_argument;
		longopts[i].val = 0;
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
		if (strcmp(options[idx].flag, "help") == 0) {
			config_usage(stdout);
			return 1;
		}
		if (strcmp(options[idx].flag, "version") == 0) {
			printf("ringlb %s\n", RINGLB_VERSION);
			return 1;
		}
		/* Static replicas given as flags replace those from the
		 * environment rather than adding to them. */
		if (options[idx].set == set_replica ||
		    options[idx].set == set_replicas) {
			if (!from_flags)
				cfg->nstatic = 0;
			from_flags = 1;
		}
		if (options[idx].set(cfg, optarg, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "--%s: %s", options[idx].flag,
			    why);
			return -1;
		}
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument '%s'; see ringlb "
		    "--help", argv[optind]);
		return -1;
	}
	if (cfg->nstatic == 0) {
		snprintf(err, errlen, "no replicas: give --replica "
		    "NAME=HOST:PORT (repeatable) or RINGLB_REPLICAS");
		return -1;
	}
	return 0;
}
