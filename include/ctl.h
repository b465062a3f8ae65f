/*
 * ctl.h - ringlb's own endpoints, answered by the control plane for the
 * workers.
 *
 * A worker that reads a request for /rep, /add, /rm, /heartbeat,
 * /metrics, /status or /map_request hands it whole to the main thread
 * (ctl_submit): its route, query, headers, body, the client's address and
 * the address it reached.  There the control plane's handler answers it
 * (ctl_reply*, at once or later: an /add waits for its replicas), and the
 * answer goes back to the worker, which sends it on the client's
 * connection, or drops it if the client has gone.  Each side touches only
 * its own structures; a struct ctl_req crosses threads through mailboxes
 * (mbox.h), so that whoever holds it is its only user.
 */
#ifndef RINGLB_CTL_H
#define RINGLB_CTL_H

#include <stdarg.h>

#include <event2/http.h>
#include <jansson.h>

struct event_base;
struct evbuffer;
struct evkeyvalq;
struct ctl;
struct ctl_port;
struct ctl_req;

enum ctl_route {
	CTL_STATUS = 0,
	CTL_MAP_REQUEST,
	CTL_REP,
	CTL_HEARTBEAT,
	CTL_METRICS,
	CTL_ADD,
	CTL_RM
};

/* On the main thread: every request goes to fn(arg, req). */
typedef void	(*ctl_handler)(void *arg, struct ctl_req *req);

struct ctl	*ctl_new(struct event_base *base, ctl_handler fn, void *arg);
/*
 * Once no worker runs: what is still waiting, and what the handler still
 * holds, is answered 503; then the control plane's side is freed.  The
 * handler must not answer anything after this.
 */
void		 ctl_free(struct ctl *ctl);

/* A worker's side, on its base; NULL when out of memory. */
struct ctl_port	*ctl_port_new(struct ctl *ctl, struct event_base *base);
/* After ctl_free: drop the answers not sent, and free the port. */
void		 ctl_port_free(struct ctl_port *port);
/* On the worker: hand req over, to be answered through port. */
void		 ctl_submit(struct ctl_port *port, struct evhttp_request *req,
		    enum ctl_route route);

/* On the main thread: the request as the worker read it. */
enum ctl_route	 ctl_route(const struct ctl_req *req);
const char	*ctl_query(const struct ctl_req *req);	/* NULL: none */
struct evkeyvalq *ctl_input_headers(struct ctl_req *req);
struct evbuffer	*ctl_body(struct ctl_req *req);
const char	*ctl_peer(const struct ctl_req *req);	/* NULL: unknown */
/* The address the client connected to, as 16 bytes (v4 mapped); -1 if
 * unknown. */
int		 ctl_local(const struct ctl_req *req, unsigned char out[16]);

/* The answer: headers first, then exactly one of the replies. */
void		 ctl_add_header(struct ctl_req *req, const char *key,
		    const char *value);
/* body's contents are taken; NULL for none.  To a HEAD, the head alone. */
void		 ctl_reply(struct ctl_req *req, int code, struct evbuffer *body);
/* As respond_json() (a reference to body is stolen). */
void		 ctl_reply_json(struct ctl_req *req, int code, json_t *body);
/* As respond_error(). */
void		 ctl_reply_error(struct ctl_req *req, int code, const char *fmt,
		    ...) __attribute__((format(printf, 3, 4)));

#endif /* RINGLB_CTL_H */
