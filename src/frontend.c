/*
 * frontend.c - evhttp routes.
 *
 * Reserved paths are answered here (admin.c does most); every other
 * request is keyed and handed to the proxy.  The request key is the query parameter request_id
 * if present, else the X-Request-Id header, else a fallback (a random key,
 * or the client's address).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "admin.h"
#include "backend.h"
#include "config.h"
#include "evhttp_peek.h"
#include "frontend.h"
#include "gate.h"
#include "log.h"
#include "pool.h"
#include "proxy.h"
#include "replica.h"
#include "respond.h"
#include "status.h"
#include "util.h"

#define KEY_MAX		1024	/* longest request key, decoded */
#define ROUTE_TARGETS	2	/* owner + one retry */

struct frontend {
	struct event_base		*base;
	const struct config		*cfg;
	struct pool			*pool;
	struct proxy			*proxy;
	struct admin			*admin;
	const struct metrics		*metrics;
	struct evhttp			*http;
	struct evhttp_bound_socket	*bound;
	struct gate			*gate;
	uint64_t			 rng;
};

typedef void (*route_fn)(struct frontend *, struct evhttp_request *);
typedef void (*admin_fn)(struct admin *, struct evhttp_request *);

struct route {
	const char	*path;
	int		 methods;	/* EVHTTP_REQ_* allowed */
	const char	*allow;		/* for 405's Allow header */
	route_fn	 fn;		/* one of these two */
	admin_fn	 admin;
};

/* xorshift64*: fast, and good enough to spread random keys. */
static uint64_t
fe_random(struct frontend *fe)
{
	uint64_t x = fe->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	fe->rng = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static void
fe_random_key(struct frontend *fe, char *out)
{
	snprintf(out, 17, "%016llx", (unsigned long long)fe_random(fe));
}

/* May s be sent as a header value as it is? */
static int
header_safe(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > 200)
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

/*
 * Decode query parameter name into out.  Returns its length, -1 when the
 * parameter is absent, -2 when it is malformed (answered already).
 */
static long
fe_query_param(struct evhttp_request *req, const char *name, char *out,
    size_t outlen)
{
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *q = u ? evhttp_uri_get_query(u) : NULL;
	const char *v;
	size_t vl;
	long n;

	if ((v = query_find(q, name, &vl)) == NULL)
		return -1;
	if (vl > 3 * KEY_MAX ||
	    (n = query_decode(v, vl, out, outlen)) == -1) {
		respond_error(req, 400, "query parameter '%s' must be at most "
		    "%d bytes of valid percent-encoding", name, KEY_MAX);
		return -2;
	}
	return n;
}

static void
fe_proxy(struct frontend *fe, struct evhttp_request *req)
{
	struct replica *targets[ROUTE_TARGETS];
	char key[KEY_MAX + 1], rid[17];
	const char *xrid, *sendrid = NULL;
	long klen;
	int n;

	klen = fe_query_param(req, "request_id", key, sizeof(key));
	if (klen == -2)
		return;
	xrid = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "X-Request-Id");
	if (klen >= 0) {
		if (xrid == NULL) {
			if (header_safe(key, (size_t)klen))
				sendrid = key;
			else {
				fe_random_key(fe, rid);
				sendrid = rid;
			}
		}
	} else if (xrid != NULL) {
		klen = (long)strlen(xrid);
		if (klen > KEY_MAX) {
			respond_error(req, 400, "the X-Request-Id header is %ld "
			    "bytes; a request key is at most %d", klen, KEY_MAX);
			return;
		}
		memcpy(key, xrid, (size_t)klen);
		key[klen] = '\0';
	} else if (fe->cfg->key_fallback == KEY_FALLBACK_CLIENT_IP) {
		char *addr = NULL;
		ev_uint16_t port;

		evhttp_connection_get_peer(evhttp_request_get_connection(req),
		    &addr, &port);
		snprintf(key, sizeof(key), "%s", addr ? addr : "");
		klen = (long)strlen(key);
		fe_random_key(fe, rid);
		sendrid = rid;
	} else {
		fe_random_key(fe, key);
		klen = 16;
		sendrid = key;
	}

	n = pool_route(fe->pool, key, (size_t)klen, targets, ROUTE_TARGETS);
	if (n == 0) {
		respond_error(req, 503, "no replica is available: %d "
		    "replicas, none answering heartbeats; GET /rep lists "
		    "them, %s", pool_size(fe->pool),
		    pool_backend(fe->pool)->ops->replaces ? "POST /add starts "
		    "more" : "and ringlb takes each back as soon as it answers");
		return;
	}
	proxy_forward(fe->proxy, req, targets, n, sendrid);
}

/* A decimal integer without leading zeros, small enough for JSON? */
static int
is_json_int(const char *s, long len)
{
	long i = (s[0] == '-');

	if (len - i < 1 || len - i > 18 || (s[i] == '0' && len - i > 1))
		return 0;
	for (; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

static void
fe_map_request(struct frontend *fe, struct evhttp_request *req)
{
	struct replica *owner;
	char key[KEY_MAX + 1];
	json_t *id, *doc;
	long klen;
	int escaped = 0;

	klen = fe_query_param(req, "id", key, sizeof(key));
	if (klen == -2)
		return;
	if (klen == -1) {
		respond_error(req, 400, "give the key to look up as ?id=K, "
		    "e.g. /map_request?id=42");
		return;
	}
	if ((owner = pool_owner(fe->pool, key, (size_t)klen)) == NULL) {
		respond_error(req, 503, "no replica is available to map to");
		return;
	}
	id = is_json_int(key, klen) ? json_integer(strtoll(key, NULL, 10)) :
	    respond_key(key, (size_t)klen, &escaped);
	doc = json_pack("{s:o, s:s}", "request_id", id, "mapped_server",
	    owner->name);
	if (doc != NULL && escaped)
		json_object_set_new(doc, "request_id_encoding",
		    json_string("percent"));
	respond_json(req, 200, doc);
}

static void
fe_status(struct frontend *fe, struct evhttp_request *req)
{
	char key[KEY_MAX + 1];
	long klen;

	if ((klen = fe_query_param(req, "key", key, sizeof(key))) == -2)
		return;
	respond_json(req, 200, status_json(fe->cfg, fe->pool, fe->metrics,
	    proxy_inflight(fe->proxy), klen >= 0 ? key : NULL,
	    klen >= 0 ? (size_t)klen : 0));
}

static void
fe_dashboard(struct frontend *fe, struct evhttp_request *req)
{
	(void)fe;
	status_dashboard(req);
}

static const struct route routes[] = {
	{ "/status", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", fe_status,
	  NULL },
	{ "/dashboard", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD",
	  fe_dashboard, NULL },
	{ "/map_request", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD",
	  fe_map_request, NULL },
	{ "/rep", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", NULL,
	  admin_rep },
	{ "/heartbeat", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", NULL,
	  admin_heartbeat },
	{ "/metrics", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", NULL,
	  admin_metrics },
	{ "/add", EVHTTP_REQ_POST, "POST", NULL, admin_add },
	{ "/rm", EVHTTP_REQ_DELETE, "DELETE", NULL, admin_rm },
};

static void
fe_request(struct evhttp_request *req, void *arg)
{
	struct frontend *fe = arg;
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *path = u ? evhttp_uri_get_path(u) : NULL;
	size_t i;

	gate_track(fe->gate, req);
	/*
	 * Shutting down: this is the connection's last answer (gate.c closes
	 * it after).  Said to an HTTP/1.1 client; to a 1.0 one evhttp would
	 * add its own "Connection: keep-alive" beside it.
	 */
	if (gate_stopping(fe->gate) && evhttp_peek_minor(req) >= 1)
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Connection", "close");
	if (path == NULL) {
		respond_error(req, 400, "the request target is not a valid "
		    "URI");
		return;
	}
	/*
	 * Only origin-form (/path?query): ringlb is not a forward proxy,
	 * and an absolute-form target (http://host/path) would name a host
	 * other than the one in Host.  The same rule for ringlb's own paths
	 * as for proxied ones, so "GET http://other/rep" is not /rep.
	 */
	if (evhttp_request_get_uri(req)[0] != '/') {
		respond_error(req, 400, "the request target must be a path "
		    "such as /home, not '%.100s'", evhttp_request_get_uri(req));
		return;
	}
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (strcmp(path, routes[i].path) != 0)
			continue;
		if ((evhttp_request_get_command(req) & routes[i].methods) ==
		    0) {
			evhttp_add_header(evhttp_request_get_output_headers(
			    req), "Allow", routes[i].allow);
			respond_error(req, 405, "%s accepts %s only", path,
			    routes[i].allow);
			return;
		}
		if (routes[i].admin != NULL)
			routes[i].admin(fe->admin, req);
		else
			routes[i].fn(fe, req);
		return;
	}
	fe_proxy(fe, req);
}

struct frontend *
frontend_new(struct event_base *base, const struct config *cfg,
    struct pool *pool, struct proxy *proxy, struct admin *admin,
    const struct metrics *metrics, char *err, size_t errlen)
{
	struct frontend *fe;

	if ((fe = calloc(1, sizeof(*fe))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	fe->base = base;
	fe->cfg = cfg;
	fe->pool = pool;
	fe->proxy = proxy;
	fe->admin = admin;
	fe->metrics = metrics;
	if (getrandom(&fe->rng, sizeof(fe->rng), 0) != sizeof(fe->rng) ||
	    fe->rng == 0)
		fe->rng = 0x9E3779B97F4A7C15ULL ^ (uint64_t)(uintptr_t)fe;
	if ((fe->gate = gate_new(base, cfg)) == NULL ||
	    (fe->http = evhttp_new(base)) == NULL) {
		snprintf(err, errlen, "cannot create the HTTP server");
		gate_free(fe->gate);
		free(fe);
		return NULL;
	}
	evhttp_set_default_content_type(fe->http, NULL);
	/*
	 * The gate enforces the limits, methods and timeouts, and answers in
	 * JSON; these of evhttp's are only a second line, set wider (evhttp
	 * also counts a chunked body's trailer with its head).
	 */
	evhttp_set_max_body_size(fe->http, (ev_ssize_t)cfg->max_body);
	evhttp_set_max_headers_size(fe->http,
	    (ev_ssize_t)(2 * cfg->max_header + 4096));
	evhttp_set_allowed_methods(fe->http, EVHTTP_REQ_GET |
	    EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
	    EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	gate_attach(fe->gate, fe->http);
	evhttp_set_gencb(fe->http, fe_request, fe);
	fe->bound = evhttp_bind_socket_with_handle(fe->http, cfg->listen_host,
	    cfg->listen_port);
	if (fe->bound == NULL) {
		snprintf(err, errlen, "cannot listen on %s:%u (%s); choose "
		    "another address with --listen HOST:PORT",
		    cfg->listen_host, (unsigned)cfg->listen_port,
		    strerror(errno));
		evhttp_free(fe->http);
		gate_free(fe->gate);
		free(fe);
		return NULL;
	}
	return fe;
}

const struct gate_stats *
frontend_clients(const struct frontend *fe)
{
	return gate_stats(fe->gate);
}

void
frontend_stop_accepting(struct frontend *fe)
{
	if (fe->bound != NULL) {
		evhttp_del_accept_socket(fe->http, fe->bound);
		fe->bound = NULL;
	}
	gate_stop(fe->gate);
}

unsigned
frontend_busy(const struct frontend *fe)
{
	return gate_busy(fe->gate);
}

void
frontend_free(struct frontend *fe)
{
	if (fe == NULL)
		return;
	evhttp_free(fe->http);
	gate_free(fe->gate);
	free(fe);
}
