/*
 * ctl.c - ringlb's own endpoints, relayed from the workers to the control
 * plane and back (see ctl.h).
 *
 * A request's life: the worker copies what the handler may read into a
 * struct ctl_req and posts it to the control plane's mailbox, watching
 * the client's connection meanwhile (ctl_gone).  The control plane runs
 * its handler, which answers at once or later, and holds the request
 * until it does (ctl->held, for ctl_free).  The answer goes to the
 * worker's mailbox: there it is sent, unless the client went away, and
 * the request is freed.  So a ctl_req has one user at a time, and the
 * mailboxes' locks order what each side wrote before the hand-over.
 */
#include <sys/socket.h>
#include <netinet/in.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "ctl.h"
#include "mbox.h"
#include "respond.h"

#define CTL_PEER_MAX	64	/* a numeric address, with room to spare */

struct ctl_req {
	struct mbox_msg		 msg;		/* first: how it travels */
	struct ctl_port		*port;
	TAILQ_ENTRY(ctl_req)	 held;		/* the control plane's */

	/* the worker's, and only its */
	struct evhttp_request	*req;
	int			 gone;		/* the client went away */

	/* the request, as read; the handler's to read */
	enum ctl_route		 route;
	char			*query;
	struct evkeyvalq	 in;
	struct evbuffer		*body;
	char			 peer[CTL_PEER_MAX];
	unsigned char		 local[16];
	int			 has_local;

	/* the answer; the handler's to write */
	int			 code;
	struct evkeyvalq	 out;
	struct evbuffer		*reply;
};

TAILQ_HEAD(ctl_held, ctl_req);

struct ctl {
	struct mbox		*inbox;
	ctl_handler		 fn;
	void			*arg;
	struct ctl_held		 held;		/* arrived, not answered */
	int			 closing;
};

struct ctl_port {
	struct ctl		*ctl;
	struct mbox		*inbox;		/* answers */
	int			 closing;
};

static void
ctl_req_free(struct ctl_req *cr)
{
	evhttp_clear_headers(&cr->in);
	evhttp_clear_headers(&cr->out);
	if (cr->body != NULL)
		evbuffer_free(cr->body);
	if (cr->reply != NULL)
		evbuffer_free(cr->reply);
	free(cr->query);
	free(cr);
}

/* --- the control plane's side ------------------------------------------ */

static void
ctl_arrive(struct mbox_msg *msg, void *arg)
{
	struct ctl_req *cr = (struct ctl_req *)msg;
	struct ctl *ctl = arg;

	TAILQ_INSERT_TAIL(&ctl->held, cr, held);
	if (ctl->closing)
		ctl_reply_error(cr, 503, "ringlb is shutting down");
	else
		ctl->fn(ctl->arg, cr);
}

struct ctl *
ctl_new(struct event_base *base, ctl_handler fn, void *arg)
{
	struct ctl *ctl;

	if ((ctl = calloc(1, sizeof(*ctl))) == NULL)
		return NULL;
	TAILQ_INIT(&ctl->held);
	ctl->fn = fn;
	ctl->arg = arg;
	if ((ctl->inbox = mbox_new(base, ctl)) == NULL) {
		free(ctl);
		return NULL;
	}
	return ctl;
}

void
ctl_free(struct ctl *ctl)
{
	struct ctl_req *cr;

	if (ctl == NULL)
		return;
	ctl->closing = 1;
	mbox_free(ctl->inbox);
	while ((cr = TAILQ_FIRST(&ctl->held)) != NULL)
		ctl_reply_error(cr, 503, "ringlb is shutting down");
	free(ctl);
}

enum ctl_route
ctl_route(const struct ctl_req *cr)
{
	return cr->route;
}

const char *
ctl_query(const struct ctl_req *cr)
{
	return cr->query;
}

struct evkeyvalq *
ctl_input_headers(struct ctl_req *cr)
{
	return &cr->in;
}

struct evbuffer *
ctl_body(struct ctl_req *cr)
{
	return cr->body;
}

const char *
ctl_peer(const struct ctl_req *cr)
{
	return cr->peer[0] != '\0' ? cr->peer : NULL;
}

int
ctl_local(const struct ctl_req *cr, unsigned char out[16])
{
	if (!cr->has_local)
		return -1;
	memcpy(out, cr->local, 16);
	return 0;
}

void
ctl_add_header(struct ctl_req *cr, const char *key, const char *value)
{
	evhttp_add_header(&cr->out, key, value);
}

static void	ctl_answer(struct mbox_msg *, void *);

void
ctl_reply(struct ctl_req *cr, int code, struct evbuffer *body)
{
	struct ctl *ctl = cr->port->ctl;

	TAILQ_REMOVE(&ctl->held, cr, held);
	cr->code = code;
	/* moved, not referenced: a reference would share the buffer's
	 * chains, and their counts, between threads */
	if (body != NULL && ((cr->reply = evbuffer_new()) == NULL ||
	    evbuffer_add_buffer(cr->reply, body) == -1))
		cr->code = 500;
	cr->msg.fn = ctl_answer;
	mbox_post(cr->port->inbox, &cr->msg);
}

void
ctl_reply_json(struct ctl_req *cr, int code, json_t *body)
{
	struct evbuffer *buf = respond_json_text(body, &code);

	ctl_add_header(cr, "Content-Type", "application/json");
	ctl_reply(cr, code, buf);
	if (buf != NULL)
		evbuffer_free(buf);
}

void
ctl_reply_error(struct ctl_req *cr, int code, const char *fmt, ...)
{
	va_list ap;
	json_t *body;

	va_start(ap, fmt);
	body = respond_error_body(fmt, ap);
	va_end(ap);
	ctl_reply_json(cr, code, body);
}

/* --- the worker's side ------------------------------------------------- */

/* The answer is back: send it, unless the client has gone. */
static void
ctl_answer(struct mbox_msg *msg, void *arg)
{
	struct ctl_req *cr = (struct ctl_req *)msg;
	struct ctl_port *port = arg;
	struct evkeyvalq *out;
	struct evkeyval *kv;

	if (!cr->gone) {
		evhttp_connection_set_closecb(evhttp_request_get_connection(
		    cr->req), NULL, NULL);
		if (!port->closing) {
			out = evhttp_request_get_output_headers(cr->req);
			TAILQ_FOREACH(kv, &cr->out, next)
				evhttp_add_header(out, kv->key, kv->value);
			respond_send(cr->req, cr->code, NULL, cr->reply);
		}
	}
	ctl_req_free(cr);
}

static void
ctl_gone(struct evhttp_connection *evcon, void *arg)
{
	struct ctl_req *cr = arg;

	(void)evcon;
	cr->gone = 1;
	/* detached from its dying connection: finishing it frees it */
	if (evhttp_request_get_connection(cr->req) == NULL)
		evhttp_send_reply_end(cr->req);
}

/* The address the client reached, under the gate's filter if any. */
static void
ctl_local_addr(struct ctl_req *cr, struct evhttp_connection *evcon)
{
	struct bufferevent *bev, *under;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	evutil_socket_t fd;

	if (evcon == NULL ||
	    (bev = evhttp_connection_get_bufferevent(evcon)) == NULL)
		return;
	if ((fd = bufferevent_getfd(bev)) < 0 &&
	    (under = bufferevent_get_underlying(bev)) != NULL)
		fd = bufferevent_getfd(under);
	if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &sl) == -1)
		return;
	memset(cr->local, 0, 16);
	if (ss.ss_family == AF_INET) {
		cr->local[10] = cr->local[11] = 0xff;
		memcpy(cr->local + 12, &((struct sockaddr_in *)&ss)->sin_addr,
		    4);
		cr->has_local = 1;
	} else if (ss.ss_family == AF_INET6) {
		memcpy(cr->local, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
		cr->has_local = 1;
	}
}

void
ctl_submit(struct ctl_port *port, struct evhttp_request *req,
    enum ctl_route route)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *q = u != NULL ? evhttp_uri_get_query(u) : NULL;
	struct evkeyval *kv;
	struct ctl_req *cr;
	char *peer = NULL;
	ev_uint16_t pport;

	if ((cr = calloc(1, sizeof(*cr))) == NULL ||
	    (cr->body = evbuffer_new()) == NULL ||
	    (q != NULL && (cr->query = strdup(q)) == NULL)) {
		if (cr != NULL && cr->body != NULL)
			evbuffer_free(cr->body);
		free(cr);
		respond_error(req, 500, "out of memory");
		return;
	}
	TAILQ_INIT(&cr->in);
	TAILQ_INIT(&cr->out);
	cr->port = port;
	cr->req = req;
	cr->route = route;
	TAILQ_FOREACH(kv, evhttp_request_get_input_headers(req), next)
		evhttp_add_header(&cr->in, kv->key, kv->value);
	evbuffer_add_buffer(cr->body, evhttp_request_get_input_buffer(req));
	if (evcon != NULL) {
		evhttp_connection_get_peer(evcon, &peer, &pport);
		if (peer != NULL)
			snprintf(cr->peer, sizeof(cr->peer), "%s", peer);
		ctl_local_addr(cr, evcon);
		evhttp_connection_set_closecb(evcon, ctl_gone, cr);
	}
	cr->msg.fn = ctl_arrive;
	mbox_post(port->ctl->inbox, &cr->msg);
}

struct ctl_port *
ctl_port_new(struct ctl *ctl, struct event_base *base)
{
	struct ctl_port *port;

	if ((port = calloc(1, sizeof(*port))) == NULL)
		return NULL;
	port->ctl = ctl;
	if ((port->inbox = mbox_new(base, port)) == NULL) {
		free(port);
		return NULL;
	}
	return port;
}

void
ctl_port_free(struct ctl_port *port)
{
	if (port == NULL)
		return;
	port->closing = 1;
	mbox_free(port->inbox);
	free(port);
}
