/*
 * frontend.c - evhttp routes.
 *
 * ringlb's own paths go to the control plane (ctl.h; /dashboard, a fixed
 * page, is sent here); every other request is keyed and handed to the
 * proxy.  The request key is the query parameter request_id
 * if present, else the X-Request-Id header, else a fallback (a random key,
 * or the client's address).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <jansson.h>

#include "config.h"
#include "ctl.h"
#include "evhttp_peek.h"
#include "frontend.h"
#include "gate.h"
#include "log.h"
#include "proxy.h"
#include "respond.h"
#include "route.h"
#include "status.h"
#include "util.h"


struct frontend {
	struct event_base		*base;
	const struct config		*cfg;
	struct proxy			*proxy;
	struct ctl_port			*port;
	struct evhttp			*http;
	struct evhttp_bound_socket	*bound;
	struct event			*rearm;		/* fe_rearm */
	struct fe_share			*share;		/* with other workers */
	int				 slot;		/* this one's in it */
	int				 listen_fd;
	struct event			*watch;		/* parked: fe_watch */
	struct event			*overdue;	/* fe_overdue */
	uint64_t			 grant_until;	/* out of turn: now_ms */
	struct gate			*gate;
	uint64_t			 rng;
};

struct route {
	const char	*path;
	int		 methods;	/* EVHTTP_REQ_* allowed */
	const char	*allow;		/* for 405's Allow header */
	int		 ctl;		/* enum ctl_route, or -1: the page */
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
	long n = query_param(u ? evhttp_uri_get_query(u) : NULL, name, out,
	    outlen, ROUTE_KEY_MAX);

	if (n == -2)
		respond_error(req, 400, "query parameter '%s' must be at most "
		    "%d bytes of valid percent-encoding", name, ROUTE_KEY_MAX);
	return n;
}

static void
fe_proxy(struct frontend *fe, struct evhttp_request *req)
{
	char key[ROUTE_KEY_MAX + 1], rid[17];
	const char *xrid, *sendrid = NULL;
	long klen;

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
		if (klen > ROUTE_KEY_MAX) {
			respond_error(req, 400, "the X-Request-Id header is %ld "
			    "bytes; a request key is at most %d", klen, ROUTE_KEY_MAX);
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

	proxy_forward(fe->proxy, req, key, (size_t)klen, sendrid);
}

static const struct route routes[] = {
	{ "/status", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", CTL_STATUS },
	{ "/dashboard", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", -1 },
	{ "/map_request", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD",
	  CTL_MAP_REQUEST },
	{ "/rep", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", CTL_REP },
	{ "/heartbeat", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD",
	  CTL_HEARTBEAT },
	{ "/metrics", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD",
	  CTL_METRICS },
	{ "/add", EVHTTP_REQ_POST, "POST", CTL_ADD },
	{ "/rm", EVHTTP_REQ_DELETE, "DELETE", CTL_RM },
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
		if (routes[i].ctl == -1)
			status_dashboard(req);
		else
			ctl_submit(fe->port, req, (enum ctl_route)routes[i].ctl);
		return;
	}
	fe_proxy(fe, req);
}

#define LISTEN_BACKLOG	511	/* nginx's, a worker; the kernel caps it at
				   somaxconn */

/*
 * Accepting.  The workers share one listening socket, each through a
 * listener of its own on its own loop, and take turns: a worker takes a
 * connection only while it has no more than ACCEPT_SLACK more open than
 * the worker with the fewest, and at most one a turn of its loop (the
 * listener is switched off as a connection is accepted, which stops
 * libevent's accept loop, and on again once the turn's other events have
 * run).  A worker that has more than its share parks: its listener stays
 * off until the others catch up (the one that does wakes it, see
 * fe_share_wake) or until it closes connections of its own.  The worker
 * with the fewest never parks, so some worker always accepts.
 *
 * Why: the first to accept a connection has it, and on a busy machine a
 * worker that is running takes every connection of a burst while the
 * other waits for a core; with 64 connections opened at once by wrk, one
 * worker of two had all 64 in two runs of five, and served every
 * request.  A socket of each worker's own with SO_REUSEPORT has the
 * kernel hash each connection to one of them: 64 split 36 to 29 and 37 to
 * 28 in measured runs.  Connections are what a worker's load follows
 * here (a kept-alive connection is one client's requests, one after the
 * other), so their counts are what is balanced, as by nginx, whose
 * workers stop accepting when 7/8 of their connections are in use.
 *
 * A turn is a preference, not a wait: a worker that is behind may be
 * stalled (a long callback, no core for a while), and the connections
 * would wait for it.  So a parked worker watches the socket, and when a
 * connection has been waiting there for PARK_MAX_MS, it takes whatever
 * comes itself for PARK_MAX_MS, turn or not (fe_overdue).
 *
 * One worker takes whatever comes, with its listener always on.  The
 * socket is the workers' (worker.c): shut down by the last to stop
 * accepting, closed once they have all ended.
 */
#define ACCEPT_SLACK	1
#define PARK_MAX_MS	10	/* connections left waiting by the others */

struct fe_share {
	int			 n;
	struct fe_slot {
		unsigned	 conns;		/* atomic: open connections */
		unsigned	 parked;	/* atomic: PARK_* */
		unsigned	 gone;		/* atomic: accepts no more */
		uint64_t	 out_of_turn;	/* atomic: accepts */
		void		(*wake)(void *);
		void		*wake_arg;
	}			*slot;
};

enum {
	PARK_NO = 0,
	PARK_YES,		/* listener off, waiting for its turn */
	PARK_WOKEN		/* ... and woken to look again */
};

#define SC_LOAD(x)	__atomic_load_n(&(x), __ATOMIC_SEQ_CST)
#define SC_STORE(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_SEQ_CST)

/* May slot i take a connection: has it no more than the fewest + slack? */
static int
fe_share_turn(struct fe_share *s, int i)
{
	unsigned mine = SC_LOAD(s->slot[i].conns);
	int j;

	for (j = 0; j < s->n; j++)
		if (j != i && !SC_LOAD(s->slot[j].gone) &&
		    mine > SC_LOAD(s->slot[j].conns) + ACCEPT_SLACK)
			return 0;
	return 1;
}

/* Wake the parked workers whose turn it now is, each once. */
static void
fe_share_wake(struct fe_share *s, int self)
{
	unsigned parked;
	int j;

	for (j = 0; j < s->n; j++) {
		parked = PARK_YES;
		if (j != self && SC_LOAD(s->slot[j].parked) == PARK_YES &&
		    fe_share_turn(s, j) &&
		    __atomic_compare_exchange_n(&s->slot[j].parked, &parked,
		    PARK_WOKEN, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
			s->slot[j].wake(s->slot[j].wake_arg);
	}
}

struct fe_share *
frontend_share_new(int n)
{
	struct fe_share *s;

	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->slot = calloc((size_t)n, sizeof(*s->slot))) == NULL) {
		free(s);
		return NULL;
	}
	s->n = n;
	return s;
}

unsigned
frontend_share_conns(struct fe_share *s, int i)
{
	return SC_LOAD(s->slot[i].conns);
}

uint64_t
frontend_share_out_of_turn(struct fe_share *s, int i)
{
	return __atomic_load_n(&s->slot[i].out_of_turn, __ATOMIC_RELAXED);
}

void
frontend_share_free(struct fe_share *s)
{
	if (s == NULL)
		return;
	free(s->slot);
	free(s);
}

static struct evconnlistener *
fe_listener(struct frontend *fe)
{
	return evhttp_bound_socket_get_listener(fe->bound);
}

/*
 * The end of a turn of the loop, or a wake: listen again if it is this
 * worker's turn, else park.  The park is announced before the counts are
 * looked at again, and a worker that accepts counts before it looks for
 * parked ones (both sequentially consistent): one of the two sees the
 * other, and a turn is never missed.
 */
void
frontend_turn(struct frontend *fe)
{
	struct fe_slot *me;

	if (fe->share == NULL || fe->bound == NULL)
		return;
	me = &fe->share->slot[fe->slot];
	if (!fe_share_turn(fe->share, fe->slot) &&
	    (fe->grant_until == 0 || now_ms() >= fe->grant_until)) {
		fe->grant_until = 0;
		SC_STORE(me->parked, PARK_YES);
		if (!fe_share_turn(fe->share, fe->slot)) {
			evconnlistener_disable(fe_listener(fe));
			if (!event_pending(fe->watch, EV_READ, NULL) &&
			    !evtimer_pending(fe->overdue, NULL))
				event_add(fe->watch, NULL);
			return;
		}
	}
	SC_STORE(me->parked, PARK_NO);
	event_del(fe->watch);
	evtimer_del(fe->overdue);
	evconnlistener_enable(fe_listener(fe));
}

/* Parked, a connection is waiting: see whether it still is in a while. */
static void
fe_watch(evutil_socket_t fd, short what, void *arg)
{
	struct frontend *fe = arg;
	struct timeval tv = { 0, PARK_MAX_MS * 1000 };

	(void)fd;
	(void)what;
	evtimer_add(fe->overdue, &tv);
}

/*
 * A connection waited PARK_MAX_MS, and the worker whose turn it was did
 * not take it: if one is still waiting (one poll(2), only here), take
 * what comes for PARK_MAX_MS.  Else watch again.
 */
static void
fe_overdue(evutil_socket_t fd, short what, void *arg)
{
	struct frontend *fe = arg;
	struct pollfd p = { .fd = fe->listen_fd, .events = POLLIN };

	(void)fd;
	(void)what;
	if (fe->bound == NULL ||
	    SC_LOAD(fe->share->slot[fe->slot].parked) == PARK_NO)
		return;
	if (poll(&p, 1, 0) == 1 && (p.revents & POLLIN)) {
		fe->grant_until = now_ms() + PARK_MAX_MS;
		frontend_turn(fe);
	} else
		event_add(fe->watch, NULL);
}

/* A connection was accepted: no other until the loop's turn is over. */
static void
fe_accepted(void *arg)
{
	struct frontend *fe = arg;
	struct fe_slot *me = &fe->share->slot[fe->slot];

	if (!fe_share_turn(fe->share, fe->slot))
		__atomic_add_fetch(&me->out_of_turn, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&me->conns, 1, __ATOMIC_SEQ_CST);
	fe_share_wake(fe->share, fe->slot);
	if (fe->bound == NULL)
		return;
	evconnlistener_disable(fe_listener(fe));
	event_active(fe->rearm, EV_TIMEOUT, 1);
}

/* A connection was freed: a parked worker may have its turn back. */
static void
fe_closed(void *arg)
{
	struct frontend *fe = arg;
	struct fe_slot *me = &fe->share->slot[fe->slot];

	__atomic_sub_fetch(&me->conns, 1, __ATOMIC_SEQ_CST);
	if (SC_LOAD(me->parked) != PARK_NO)
		frontend_turn(fe);
}

static void
fe_rearm(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	frontend_turn(arg);
}

int
frontend_share_join(struct frontend *fe, struct fe_share *s, int i,
    void (*wake)(void *), void *arg)
{
	if ((fe->rearm = event_new(fe->base, -1, 0, fe_rearm, fe)) == NULL ||
	    (fe->watch = event_new(fe->base, fe->listen_fd, EV_READ, fe_watch,
	    fe)) == NULL ||
	    (fe->overdue = evtimer_new(fe->base, fe_overdue, fe)) == NULL)
		return -1;
	s->slot[i].wake = wake;
	s->slot[i].wake_arg = arg;
	fe->share = s;
	fe->slot = i;
	gate_on_accept(fe->gate, fe_accepted, fe_closed, fe);
	return 0;
}

/*
 * A listening socket on cfg's address, non-blocking and close-on-exec,
 * or -1 with errno set.  Without SO_REUSEPORT: the bind fails where any
 * socket listens, another ringlb included.
 */
static int
listen_on(const struct config *cfg)
{
	struct evutil_addrinfo hints, *ai = NULL, *a;
	char port[8];
	int err, fd = -1, on = 1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_ADDRCONFIG;
	snprintf(port, sizeof(port), "%u", (unsigned)cfg->listen_port);
	if ((err = evutil_getaddrinfo(cfg->listen_host, port, &hints,
	    &ai)) != 0) {
		errno = err == EVUTIL_EAI_SYSTEM ? errno : EADDRNOTAVAIL;
		return -1;
	}
	for (a = ai; a != NULL && fd == -1; a = a->ai_next) {
		if ((fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, a->ai_protocol)) == -1)
			continue;
		/* as libevent's listeners: keep-alive probes on the
		 * connections accepted */
		if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on,
		    sizeof(on)) == -1 ||
		    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on,
		    sizeof(on)) == -1 ||
		    bind(fd, a->ai_addr, a->ai_addrlen) == -1 ||
		    listen(fd, LISTEN_BACKLOG * cfg->workers) == -1) {
			err = errno;
			close(fd);
			fd = -1;
			errno = err;
		}
	}
	evutil_freeaddrinfo(ai);
	return fd;
}

int
frontend_listen(const struct config *cfg, char *err, size_t errlen)
{
	int fd;

	if ((fd = listen_on(cfg)) == -1)
		snprintf(err, errlen, "cannot listen on %s:%u (%s); choose "
		    "another address with --listen HOST:PORT",
		    cfg->listen_host, (unsigned)cfg->listen_port,
		    strerror(errno));
	return fd;
}

struct frontend *
frontend_new(struct event_base *base, const struct config *cfg,
    int listen_fd, struct proxy *proxy, struct ctl_port *port,
    struct gate_stats *clients, char *err, size_t errlen)
{
	struct evconnlistener *lev;
	struct frontend *fe;

	if ((fe = calloc(1, sizeof(*fe))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	fe->base = base;
	fe->cfg = cfg;
	fe->proxy = proxy;
	fe->port = port;
	fe->listen_fd = listen_fd;
	if (getrandom(&fe->rng, sizeof(fe->rng), 0) != sizeof(fe->rng) ||
	    fe->rng == 0)
		fe->rng = 0x9E3779B97F4A7C15ULL ^ (uint64_t)(uintptr_t)fe;
	if ((fe->gate = gate_new(base, cfg, clients)) == NULL ||
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
	if ((lev = evconnlistener_new(base, NULL, NULL, LEV_OPT_CLOSE_ON_EXEC,
	    0, listen_fd)) != NULL &&
	    (fe->bound = evhttp_bind_listener(fe->http, lev)) == NULL)
		evconnlistener_free(lev);
	if (fe->bound == NULL) {
		snprintf(err, errlen, "cannot accept connections on %s:%u: "
		    "out of memory", cfg->listen_host,
		    (unsigned)cfg->listen_port);
		evhttp_free(fe->http);
		gate_free(fe->gate);
		free(fe);
		return NULL;
	}
	return fe;
}

void
frontend_stop_accepting(struct frontend *fe)
{
	if (fe->bound == NULL)
		return;
	evhttp_del_accept_socket(fe->http, fe->bound);
	fe->bound = NULL;
	if (fe->share != NULL) {
		event_del(fe->watch);
		evtimer_del(fe->overdue);
		/* no longer the fewest that others wait for */
		SC_STORE(fe->share->slot[fe->slot].gone, 1);
		fe_share_wake(fe->share, fe->slot);
	}
}

void
frontend_stop(struct frontend *fe)
{
	frontend_stop_accepting(fe);
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
	if (fe->rearm != NULL)
		event_free(fe->rearm);
	if (fe->watch != NULL)
		event_free(fe->watch);
	if (fe->overdue != NULL)
		event_free(fe->overdue);
	gate_on_accept(fe->gate, NULL, NULL, NULL);
	evhttp_free(fe->http);
	gate_free(fe->gate);
	free(fe);
}
