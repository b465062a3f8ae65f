/*
 * admin.c - ringlb's own endpoints.
 *
 * /add and /rm are checked whole before anything changes: every rule of
 * the spec is tested against the request and the current replica set, and
 * only a request that passes them all reaches the pool.  Access: with
 * RINGLB_ADMIN_TOKEN set they need "Authorization: Bearer <token>";
 * without it they are accepted from loopback (and RINGLB_ADMIN_ALLOW)
 * only.  Read-only endpoints are open.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <jansson.h>

#include "admin.h"
#include "admin_body.h"
#include "backend.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "proxy.h"
#include "replica.h"
#include "respond.h"
#include "util.h"


struct admin {
	const struct config	*cfg;
	struct pool		*pool;
	struct metrics		*metrics;
	struct proxy		*proxy;
};

/* An /add waiting for its replicas to answer. */
struct pending_add {
	struct admin		*admin;
	struct evhttp_request	*req;
	int			 gone;	/* the client hung up */
};

struct admin *
admin_new(const struct config *cfg, struct pool *pool,
    struct metrics *metrics, struct proxy *proxy)
{
	struct admin *a;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	a->cfg = cfg;
	a->pool = pool;
	a->metrics = metrics;
	a->proxy = proxy;
	return a;
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

/* 0 if req may change the replica set; else answered with 401/403. */
static int
admin_authorize(struct admin *a, struct evhttp_request *req,
    const char *path)
{
	const char *auth;
	const struct backend *be;
	char *peer = NULL;
	ev_uint16_t port;

	if (a->cfg->admin_token[0] != '\0') {
		auth = evhttp_find_header(evhttp_request_get_input_headers(req),
		    "Authorization");
		if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0) {
			evhttp_add_header(evhttp_request_get_output_headers(
			    req), "WWW-Authenticate", "Bearer realm=\"ringlb\"");
			respond_error(req, 401, "%s needs the header "
			    "'Authorization: Bearer <token>', with the token "
			    "ringlb was started with (RINGLB_ADMIN_TOKEN)",
			    path);
			return -1;
		}
		auth += 7;
		auth += strspn(auth, " ");
		if (!token_equal(auth, a->cfg->admin_token)) {
			respond_error(req, 403, "the bearer token is not the "
			    "one ringlb was started with (RINGLB_ADMIN_TOKEN)");
			return -1;
		}
		return 0;
	}
	evhttp_connection_get_peer(evhttp_request_get_connection(req), &peer,
	    &port);
	be = pool_backend(a->pool);
	if (peer != NULL && (peer_is_allowed(peer, a->cfg->admin_allow,
	    a->cfg->nadmin_allow) || (be->ntrusted > 0 &&
	    peer_is_allowed(peer, be->trusted, be->ntrusted))))
		return 0;
	respond_error(req, 403, "%s is accepted from loopback%s only, and your "
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
parse_change(struct admin *a, struct evhttp_request *req, int adding,
    struct admin_change *ch)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	char err[512];
	int code;

	code = admin_body_parse(len ? (const char *)evbuffer_pullup(in, -1) :
	    "", len, adding, pool_size(a->pool), admin_exists, a->pool, ch,
	    err, sizeof(err));
	if (code == 0)
		return 0;
	respond_error(req, code, "%s", err);
	return -1;
}

/* --- endpoints -------------------------------------------------------- */

void
admin_rep(struct admin *a, struct evhttp_request *req)
{
	json_t *names = json_array();
	struct replica *rep;
	int i;

	for (i = 0; (rep = pool_replica(a->pool, i)) != NULL; i++)
		json_array_append_new(names, json_string(rep->name));
	respond_json(req, 200, json_pack("{s:{s:i, s:o}, s:s}", "message",
	    "N", pool_size(a->pool), "replicas", names, "status",
	    "successful"));
}

static void
add_client_gone(struct evhttp_connection *evcon, void *arg)
{
	struct pending_add *pa = arg;

	(void)evcon;
	pa->gone = 1;
	/* detached from its dying connection: finishing it frees it */
	if (evhttp_request_get_connection(pa->req) == NULL)
		evhttp_send_reply_end(pa->req);
}

static void
add_done(int status, int http_code, const char *why, void *arg)
{
	struct pending_add *pa = arg;

	if (!pa->gone) {
		evhttp_connection_set_closecb(evhttp_request_get_connection(
		    pa->req), NULL, NULL);
		if (status == 0)
			admin_rep(pa->admin, pa->req);
		else
			respond_error(pa->req, http_code, "%s", why);
	}
	free(pa);
}

void
admin_add(struct admin *a, struct evhttp_request *req)
{
	char names[CONFIG_REPLICAS_MAX][RING_NAME_LEN];
	struct admin_change ch = { 0, names, 0 };
	struct backend *be;
	struct pending_add *pa;
	char err[512];
	int code;

	if (admin_authorize(a, req, "/add") == -1 ||
	    parse_change(a, req, 1, &ch) == -1)
		return;
	if (pool_size(a->pool) + ch.n > CONFIG_REPLICAS_MAX) {
		respond_error(req, 400, "ringlb manages at most %d replicas; "
		    "there are %d", CONFIG_REPLICAS_MAX, pool_size(a->pool));
		return;
	}
	be = pool_backend(a->pool);
	if (be->ops->check_add != NULL && be->ops->check_add(be, names,
	    ch.ngiven, (int)ch.n, err, sizeof(err)) == -1) {
		respond_error(req, 400, "%s", err);
		return;
	}
	pool_generate_names(a->pool, names, ch.ngiven, names + ch.ngiven,
	    (int)ch.n - ch.ngiven);
	if ((pa = calloc(1, sizeof(*pa))) == NULL) {
		respond_error(req, 500, "out of memory");
		return;
	}
	pa->admin = a;
	pa->req = req;
	if (pool_add(a->pool, names, (int)ch.n, add_done, pa, &code, err,
	    sizeof(err)) == -1) {
		free(pa);
		respond_error(req, code, "%s", err);
		return;
	}
	evhttp_connection_set_closecb(evhttp_request_get_connection(req),
	    add_client_gone, pa);
}

void
admin_rm(struct admin *a, struct evhttp_request *req)
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
		respond_error(req, 400, "n is %ld but there are only %d "
		    "replicas to remove", ch.n, pool_size(a->pool));
		return;
	}
	if (pool_remove(a->pool, names, (int)ch.n, &code, err,
	    sizeof(err)) == -1) {
		respond_error(req, code, "%s", err);
		return;
	}
	admin_rep(a, req);
}

void
admin_heartbeat(struct admin *a, struct evhttp_request *req)
{
	int n = pool_size(a->pool), healthy = pool_healthy(a->pool);

	respond_json(req, healthy > 0 ? 200 : 503, json_pack(
	    "{s:i, s:i, s:s}", "N", n, "healthy", healthy, "status",
	    healthy > 0 ? "successful" : "failure"));
}

void
admin_metrics(struct admin *a, struct evhttp_request *req)
{
	struct evbuffer *buf = evbuffer_new();

	if (buf == NULL) {
		respond_error(req, 500, "out of memory");
		return;
	}
	metrics_render(buf, a->metrics, a->pool, proxy_inflight(a->proxy));
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	respond_send(req, 200, NULL, buf);
	evbuffer_free(buf);
}
