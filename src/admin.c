/*
 * admin.c - ringlb's own endpoints.
 *
 * /add and /rm are checked whole before anything changes: every rule of
 * the spec is tested against the request and the current replica set, and
 * only a request that passes them all reaches the pool.  Access: with
 * RINGLB_ADMIN_TOKEN set they need "Authorization: Bearer <token>";
 * without it they are accepted from loopback (and RINGLB_ADMIN_ALLOW)
 * only.  Read-only endpoints are open.
 *
 * Web pages.  A page in the user's browser can send a POST to ringlb's
 * loopback address without asking (a "simple" request: text/plain, no
 * preflight), and a page whose name it rebinds to 127.0.0.1 (DNS
 * rebinding) can send anything.  So /add and /rm refuse, whatever the
 * client's address or token:
 *  - Sec-Fetch-Site other than same-origin or none (cross-site, same-site:
 *    another port of localhost is the same site, not the same origin);
 *  - an Origin that is not this ringlb's own: "null", or one whose
 *    host:port is not the Host of the request;
 * and, without a valid token, a Host that is not a name ringlb answers
 * to: localhost, a loopback address, the listen address, the address the
 * client connected to, or a name given with --admin-host.  A rebound name
 * arrives in Host, and a page cannot send the token, so with the token
 * any Host is accepted (ringlb behind a name of its own).  curl, scripts
 * and Postman send no Origin nor Sec-Fetch-Site; the dashboard's buttons
 * send its own origin, and pass.  No content type is required.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "admin.h"
#include "admin_body.h"
#include "backend.h"
#include "config.h"
#include "ctl.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "route.h"
#include "replica.h"
#include "respond.h"
#include "status.h"
#include "util.h"
#include "worker.h"


struct admin {
	const struct config	*cfg;
	struct pool		*pool;
	struct workers		*workers;
};

/* An /add waiting for its replicas to answer. */
struct pending_add {
	struct admin		*admin;
	struct ctl_req		*req;
};

struct admin *
admin_new(const struct config *cfg, struct pool *pool)
{
	struct admin *a;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	a->cfg = cfg;
	a->pool = pool;
	return a;
}

void
admin_set_workers(struct admin *a, struct workers *ws)
{
	a->workers = ws;
}

void
admin_free(struct admin *a)
{
	free(a);
}

void
admin_log_access(const struct admin *a)
{
	if (a->cfg->admin_token[0] != '\0')
		log_info("admin API: /add and /rm need 'Authorization: Bearer "
		    "<token>' (RINGLB_ADMIN_TOKEN is set)");
	else if (a->cfg->nadmin_allow > 0)
		log_info("admin API: /add and /rm accepted from loopback and "
		    "%d RINGLB_ADMIN_ALLOW networks, without a token",
		    a->cfg->nadmin_allow);
	else if (strcmp(a->cfg->backend, "docker") == 0)
		log_info("admin API: /add and /rm accepted from loopback, and "
		    "from the Docker host when ringlb runs in a container (set "
		    "RINGLB_ADMIN_TOKEN or RINGLB_ADMIN_ALLOW to open it)");
	else
		log_info("admin API: /add and /rm accepted from loopback only "
		    "(set RINGLB_ADMIN_TOKEN or RINGLB_ADMIN_ALLOW to open it)");
	log_info("admin API: /add and /rm refuse web pages of other origins "
	    "(Origin, Sec-Fetch-Site)%s", a->cfg->admin_token[0] != '\0' ? "" :
	    a->cfg->nadmin_hosts > 0 ? " and a Host other than localhost, "
	    "loopback, the listen address and --admin-host names" : " and a "
	    "Host other than localhost, loopback and the listen address (add "
	    "names with --admin-host)");
}

/* --- access ----------------------------------------------------------- */

/* Constant-time comparison, so the token cannot be guessed byte by byte. */
static int
token_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i;
	unsigned char d = la != lb;

	for (i = 0; i < la && i < lb; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

/* --- web pages --------------------------------------------------------- */

struct authority {
	char	host[CONFIG_HOST_NAME_MAX + 1];	/* lower case, no brackets */
	long	port;				/* 0: none given */
};

/*
 * Parse "host", "host:port", "[v6]" or "[v6]:port" (a Host header, or an
 * origin's authority).  0, or -1 if it is not one.
 */
static int
authority_parse(const char *s, size_t len, struct authority *au)
{
	const char *h = s, *colon = NULL;
	size_t hl, i;

	au->port = 0;
	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);

		if (close == NULL)
			return -1;
		h = s + 1;
		hl = (size_t)(close - h);
		if ((size_t)(close + 1 - s) < len) {
			if (close[1] != ':')
				return -1;
			colon = close + 1;
		}
		if (memchr(h, ':', hl) == NULL)
			return -1;	/* brackets hold an IPv6 address */
	} else {
		colon = memchr(s, ':', len);
		hl = colon ? (size_t)(colon - s) : len;
		if (memchr(h, ':', hl) != NULL)
			return -1;
	}
	if (hl > CONFIG_HOST_NAME_MAX || !host_name_is_valid(h, hl))
		return -1;
	if (colon != NULL) {
		const char *p = colon + 1, *end = s + len;

		if (p == end || end - p > 5)
			return -1;
		for (; p < end; p++) {
			if (*p < '0' || *p > '9')
				return -1;
			au->port = au->port * 10 + (*p - '0');
		}
		if (au->port < 1 || au->port > 65535)
			return -1;
	}
	for (i = 0; i < hl; i++)
		au->host[i] = (char)(h[i] >= 'A' && h[i] <= 'Z' ?
		    h[i] - 'A' + 'a' : h[i]);
	au->host[hl] = '\0';
	return 0;
}

/* An address as 16 bytes, IPv4 (and IPv4-mapped IPv6) as ::ffff:a.b.c.d. */
static int
addr16(const char *text, unsigned char out[16])
{
	memset(out, 0, 16);
	if (inet_pton(AF_INET, text, out + 12) == 1) {
		out[10] = out[11] = 0xff;
		return 0;
	}
	return inet_pton(AF_INET6, text, out) == 1 ? 0 : -1;
}

/* Is host a name ringlb answers to (see the top of this file)? */
static int
host_is_ours(struct admin *a, struct ctl_req *req, const char *host)
{
	unsigned char h[16], l[16];
	int i;

	if (strcmp(host, "localhost") == 0 || peer_is_allowed(host, NULL, 0))
		return 1;
	for (i = 0; i < a->cfg->nadmin_hosts; i++)
		if (strcmp(host, a->cfg->admin_hosts[i]) == 0)
			return 1;
	if (strcasecmp(host, a->cfg->listen_host) == 0 &&
	    strcmp(host, "0.0.0.0") != 0 && strcmp(host, "::") != 0)
		return 1;
	/* the address the client connected to, written as an address */
	return addr16(host, h) == 0 && ctl_local(req, l) == 0 &&
	    memcmp(h, l, 16) == 0;
}

/* The value of header name, and through *count how many times it came. */
static const char *
header_once(struct ctl_req *req, const char *name, int *count)
{
	struct evkeyvalq *hs = ctl_input_headers(req);
	struct evkeyval *kv;
	const char *v = NULL;

	*count = 0;
	for (kv = hs->tqh_first; kv != NULL; kv = kv->next.tqe_next)
		if (strcasecmp(kv->key, name) == 0 && (*count)++ == 0)
			v = kv->value;
	return v;
}

/*
 * The checks that do not depend on the token: Sec-Fetch-Site and Origin.
 * 0, or -1 with the 403 sent.  *au is the request's Host (host "" when it
 * has none: HTTP/1.0).
 */
static int
admin_refuse_pages(struct ctl_req *req, const char *path,
    struct authority *au)
{
	const char *host, *origin, *site, *sep;
	struct authority ou;
	long oport, hport;
	int nhost, norigin, nsite, https;

	host = header_once(req, "Host", &nhost);
	origin = header_once(req, "Origin", &norigin);
	site = header_once(req, "Sec-Fetch-Site", &nsite);
	if (nhost > 1 || norigin > 1 || nsite > 1) {
		ctl_reply_error(req, 403, "%s refuses a request with more than "
		    "one %s header", path, nhost > 1 ? "Host" : norigin > 1 ?
		    "Origin" : "Sec-Fetch-Site");
		return -1;
	}
	au->host[0] = '\0';
	au->port = 0;
	if (host != NULL && authority_parse(host, strlen(host), au) == -1) {
		ctl_reply_error(req, 403, "%s refuses Host '%.100s': it is not a "
		    "host name or address with an optional port, such as "
		    "localhost:5000", path, host);
		return -1;
	}
	if (site != NULL && strcasecmp(site, "same-origin") != 0 &&
	    strcasecmp(site, "none") != 0) {
		ctl_reply_error(req, 403, "%s refuses what a web browser sends on "
		    "behalf of a page of another site or origin (Sec-Fetch-Site: "
		    "%.40s), so that no web page can change the replicas: use "
		    "the dashboard (/dashboard) or a client such as curl, which "
		    "sends no Sec-Fetch-Site", path, site);
		return -1;
	}
	if (origin == NULL)
		return 0;
	if (strcmp(origin, "null") == 0) {
		ctl_reply_error(req, 403, "%s refuses what a web browser sends from "
		    "a page without an origin of its own (Origin: null: a "
		    "sandboxed frame, a file:// page, a redirect): use the "
		    "dashboard (/dashboard) or a client such as curl, which "
		    "sends no Origin", path);
		return -1;
	}
	https = strncasecmp(origin, "https://", 8) == 0;
	sep = https ? origin + 8 : strncasecmp(origin, "http://", 7) == 0 ?
	    origin + 7 : NULL;
	if (sep == NULL || authority_parse(sep, strlen(sep), &ou) == -1) {
		ctl_reply_error(req, 403, "%s refuses Origin '%.100s': it is not "
		    "an origin such as http://localhost:5000; clients other "
		    "than web browsers need not send one", path, origin);
		return -1;
	}
	/* a port left out is the scheme's, in Origin and in Host alike */
	oport = ou.port ? ou.port : https ? 443 : 80;
	hport = au->port ? au->port : https ? 443 : 80;
	if (au->host[0] == '\0' || strcmp(ou.host, au->host) != 0 ||
	    oport != hport) {
		ctl_reply_error(req, 403, "%s refuses requests from web pages of "
		    "other origins (Origin: %.100s, but this request is for "
		    "%.100s), so that no web page can change the replicas: use "
		    "the dashboard at /dashboard of this address, or a client "
		    "such as curl, which sends no Origin", path, origin,
		    host ? host : "no Host");
		return -1;
	}
	return 0;
}

/* Without a token: is the request's Host a name ringlb answers to? */
static int
admin_check_host(struct admin *a, struct ctl_req *req,
    const char *path, const struct authority *au)
{
	if (au->host[0] == '\0' || host_is_ours(a, req, au->host))
		return 0;
	ctl_reply_error(req, 403, "%s refuses Host '%s': ringlb answers to "
	    "localhost, 127.0.0.1, [::1], its listen address and the address "
	    "connected to; if you reach it by this name, start ringlb with "
	    "--admin-host %s (RINGLB_ADMIN_HOSTS), or set RINGLB_ADMIN_TOKEN "
	    "and send the token (a web page that points its own name at "
	    "ringlb's address sends such a Host)", path, au->host, au->host);
	return -1;
}

/* 0 if req may change the replica set; else answered with 401/403. */
static int
admin_authorize(struct admin *a, struct ctl_req *req,
    const char *path)
{
	const char *auth;
	const struct backend *be;
	struct authority au;
	const char *peer = ctl_peer(req);

	if (admin_refuse_pages(req, path, &au) == -1)
		return -1;
	if (a->cfg->admin_token[0] != '\0') {
		auth = evhttp_find_header(ctl_input_headers(req),
		    "Authorization");
		if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0) {
			ctl_add_header(req, "WWW-Authenticate",
			    "Bearer realm=\"ringlb\"");
			ctl_reply_error(req, 401, "%s needs the header "
			    "'Authorization: Bearer <token>', with the token "
			    "ringlb was started with (RINGLB_ADMIN_TOKEN or "
			    "RINGLB_ADMIN_TOKEN_FILE)",
			    path);
			return -1;
		}
		auth += 7;
		auth += strspn(auth, " ");
		if (!token_equal(auth, a->cfg->admin_token)) {
			ctl_reply_error(req, 403, "the bearer token is not the "
			    "one ringlb was started with (RINGLB_ADMIN_TOKEN or "
			    "RINGLB_ADMIN_TOKEN_FILE)");
			return -1;
		}
		return 0;	/* a page cannot send it: any Host will do */
	}
	be = pool_backend(a->pool);
	if (peer != NULL && (peer_is_allowed(peer, a->cfg->admin_allow,
	    a->cfg->nadmin_allow) || (be->ntrusted > 0 &&
	    peer_is_allowed(peer, be->trusted, be->ntrusted))))
		return admin_check_host(a, req, path, &au);
	ctl_reply_error(req, 403, "%s is accepted from loopback%s only, and your "
	    "address is %s: start ringlb with RINGLB_ADMIN_TOKEN set and send "
	    "'Authorization: Bearer <token>', or list your network in "
	    "RINGLB_ADMIN_ALLOW", path, be->ntrusted > 0 ? " and the Docker "
	    "host" : "", peer ? peer : "unknown");
	return -1;
}

/* --- request bodies --------------------------------------------------- */

static int
admin_exists(const char *name, void *arg)
{
	return pool_has(arg, name);
}

/* Check an /add or /rm body; 0, or -1 with the answer sent. */
static int
parse_change(struct admin *a, struct ctl_req *req, int adding,
    struct admin_change *ch)
{
	struct evbuffer *in = ctl_body(req);
	size_t len = evbuffer_get_length(in);
	char err[512];
	int code;

	code = admin_body_parse(len ? (const char *)evbuffer_pullup(in, -1) :
	    "", len, adding, pool_size(a->pool), admin_exists, a->pool, ch,
	    err, sizeof(err));
	if (code == 0)
		return 0;
	ctl_reply_error(req, code, "%s", err);
	return -1;
}

/* --- endpoints -------------------------------------------------------- */

void
admin_rep(struct admin *a, struct ctl_req *req)
{
	json_t *names = json_array();
	struct replica *rep;
	int i;

	for (i = 0; (rep = pool_replica(a->pool, i)) != NULL; i++)
		json_array_append_new(names, json_string(rep->name));
	ctl_reply_json(req, 200, json_pack("{s:{s:i, s:o}, s:s}", "message",
	    "N", pool_size(a->pool), "replicas", names, "status",
	    "successful"));
}

/* The /add is whole, or undone: answer it. */
static void
add_done(int status, int http_code, const char *why, void *arg)
{
	struct pending_add *pa = arg;

	if (status == 0)
		admin_rep(pa->admin, pa->req);
	else
		ctl_reply_error(pa->req, http_code, "%s", why);
	free(pa);
}

void
admin_add(struct admin *a, struct ctl_req *req)
{
	char names[CONFIG_REPLICAS_MAX][RING_NAME_LEN];
	struct admin_change ch = { 0, names, 0 };
	struct backend *be;
	struct pending_add *pa;
	char err[512];
	int code, i;

	if (admin_authorize(a, req, "/add") == -1 ||
	    parse_change(a, req, 1, &ch) == -1)
		return;
	if (pool_size(a->pool) + ch.n > CONFIG_REPLICAS_MAX) {
		ctl_reply_error(req, 400, "ringlb manages at most %d replicas; "
		    "there are %d", CONFIG_REPLICAS_MAX, pool_size(a->pool));
		return;
	}
	be = pool_backend(a->pool);
	if (be->ops->check_add != NULL && be->ops->check_add(be, names,
	    ch.ngiven, (int)ch.n, err, sizeof(err)) == -1) {
		ctl_reply_error(req, 400, "%s", err);
		return;
	}
	for (i = 0; i < ch.ngiven; i++)
		if (pool_name_clash(a->pool, names[i], names, i, err,
		    sizeof(err))) {
			ctl_reply_error(req, 400, "%s", err);
			return;
		}
	pool_generate_names(a->pool, names, ch.ngiven, names + ch.ngiven,
	    (int)ch.n - ch.ngiven);
	if ((pa = calloc(1, sizeof(*pa))) == NULL) {
		ctl_reply_error(req, 500, "out of memory");
		return;
	}
	pa->admin = a;
	pa->req = req;
	if (pool_add(a->pool, names, (int)ch.n, ch.ngiven, add_done, pa, &code, err,
	    sizeof(err)) == -1) {
		free(pa);
		ctl_reply_error(req, code, "%s", err);
		return;
	}
}

void
admin_rm(struct admin *a, struct ctl_req *req)
{
	char names[CONFIG_REPLICAS_MAX][RING_NAME_LEN];
	struct admin_change ch = { 0, names, 0 };
	char err[512];
	int code;

	if (admin_authorize(a, req, "/rm") == -1 ||
	    parse_change(a, req, 0, &ch) == -1)
		return;
	if (pool_pick_victims(a->pool, names, ch.ngiven, names + ch.ngiven,
	    (int)ch.n - ch.ngiven) == -1) {
		ctl_reply_error(req, 400, "n is %ld but there are only %d "
		    "replicas to remove", ch.n, pool_size(a->pool));
		return;
	}
	if (pool_remove(a->pool, names, (int)ch.n, &code, err,
	    sizeof(err)) == -1) {
		ctl_reply_error(req, code, "%s", err);
		return;
	}
	admin_rep(a, req);
}

void
admin_heartbeat(struct admin *a, struct ctl_req *req)
{
	int n = pool_size(a->pool), healthy = pool_healthy(a->pool);

	ctl_reply_json(req, healthy > 0 ? 200 : 503, json_pack(
	    "{s:i, s:i, s:s}", "N", n, "healthy", healthy, "status",
	    healthy > 0 ? "successful" : "failure"));
}

void
admin_metrics(struct admin *a, struct ctl_req *req)
{
	struct evbuffer *buf = evbuffer_new();
	struct metrics sum;

	if (buf == NULL) {
		ctl_reply_error(req, 500, "out of memory");
		return;
	}
	workers_metrics(a->workers, &sum);
	metrics_render(buf, &sum, a->pool, workers_inflight(a->workers));
	workers_render(a->workers, buf);
	ctl_add_header(req, "Content-Type",
	    "text/plain; version=0.0.4; charset=utf-8");
	ctl_reply(req, 200, buf);
	evbuffer_free(buf);
}

/*
 * Decode query parameter name into out.  Returns its length, -1 when the
 * parameter is absent, -2 when it is malformed (answered already).
 */
static long
admin_query_param(struct ctl_req *req, const char *name, char *out,
    size_t outlen)
{
	long n = query_param(ctl_query(req), name, out, outlen,
	    ROUTE_KEY_MAX);

	if (n == -2)
		ctl_reply_error(req, 400, "query parameter '%s' must be at most "
		    "%d bytes of valid percent-encoding", name, ROUTE_KEY_MAX);
	return n;
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

void
admin_map_request(struct admin *a, struct ctl_req *req)
{
	struct replica *owner;
	char key[ROUTE_KEY_MAX + 1];
	json_t *id, *doc;
	long klen;
	int escaped = 0;

	klen = admin_query_param(req, "id", key, sizeof(key));
	if (klen == -2)
		return;
	if (klen == -1) {
		ctl_reply_error(req, 400, "give the key to look up as ?id=K, "
		    "e.g. /map_request?id=42");
		return;
	}
	if ((owner = pool_owner(a->pool, key, (size_t)klen)) == NULL) {
		ctl_reply_error(req, 503, "no replica is available to map to");
		return;
	}
	id = is_json_int(key, klen) ? json_integer(strtoll(key, NULL, 10)) :
	    respond_key(key, (size_t)klen, &escaped);
	doc = json_pack("{s:o, s:s}", "request_id", id, "mapped_server",
	    owner->name);
	if (doc != NULL && escaped)
		json_object_set_new(doc, "request_id_encoding",
		    json_string("percent"));
	ctl_reply_json(req, 200, doc);
}

void
admin_status(struct admin *a, struct ctl_req *req)
{
	char key[ROUTE_KEY_MAX + 1];
	struct metrics sum;
	long klen;

	if ((klen = admin_query_param(req, "key", key, sizeof(key))) == -2)
		return;
	workers_metrics(a->workers, &sum);
	ctl_reply_json(req, 200, status_json(a->cfg, a->pool, &sum,
	    workers_inflight(a->workers), klen >= 0 ? key : NULL,
	    klen >= 0 ? (size_t)klen : 0));
}

void
admin_serve(void *arg, struct ctl_req *req)
{
	struct admin *a = arg;

	switch (ctl_route(req)) {
	case CTL_STATUS:
		admin_status(a, req);
		break;
	case CTL_MAP_REQUEST:
		admin_map_request(a, req);
		break;
	case CTL_REP:
		admin_rep(a, req);
		break;
	case CTL_HEARTBEAT:
		admin_heartbeat(a, req);
		break;
	case CTL_METRICS:
		admin_metrics(a, req);
		break;
	case CTL_ADD:
		admin_add(a, req);
		break;
	case CTL_RM:
		admin_rm(a, req);
		break;
	}
}
