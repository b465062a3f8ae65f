/*
 * gate.h - what stands between a client's socket and evhttp: request
 * checks, limits on connections, sizes and time, and the JSON answers
 * for everything refused before it reaches a route.
 */
#ifndef RINGLB_GATE_H
#define RINGLB_GATE_H

#include <stddef.h>
#include <stdint.h>

struct bufferevent;
struct config;
struct evbuffer;
struct event_base;
struct evhttp;
struct evhttp_request;
struct gate;

/* The methods ringlb serves, for Allow headers. */
#define GATE_METHODS	"GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH"

/* Requests refused here, by status, for /metrics. */
#define GATE_CODES	9

struct gate_stats {
	uint64_t	open;		/* client connections now */
	uint64_t	accepted;	/* client connections, ever */
	uint64_t	refused[GATE_CODES];	/* by gate_codes[] below */
	uint64_t	idle_closed;	/* keep-alive connections timed out */
	uint64_t	body_bytes;	/* request bodies held now */
	uint64_t	answer_bytes;	/* answers written, not yet sent */
	uint64_t	over;		/* past the limit, being refused */
};

extern const int gate_codes[GATE_CODES];

/*
 * A gate for one evhttp server; NULL when out of memory.  It keeps cfg
 * (the limits and timeouts) and reads it for as long as it lives.  The
 * gates of several threads count in one shared gate_stats, and hold
 * their connections and bodies to cfg's limits together; shared NULL:
 * the gate counts alone.
 */
struct gate	*gate_new(struct event_base *base, const struct config *cfg,
		    struct gate_stats *shared);

/* The server's name in the messages of refusals ("ringlb" unless set);
 * name is kept, not copied. */
void		 gate_set_name(struct gate *g, const char *name);

/*
 * A new connection's filtering bufferevent, its socket not yet set (evhttp
 * sets it); what gate_attach has evhttp call.  NULL when out of memory.
 */
struct bufferevent *gate_connection(struct gate *g);

/* Route every new connection of http through g. */
void		 gate_attach(struct gate *g, struct evhttp *http);
/*
 * Call accepted(arg) as each connection is accepted, before its first
 * byte, and closed(arg) as each is freed; NULLs for neither.
 */
void		 gate_on_accept(struct gate *g, void (*accepted)(void *),
		    void (*closed)(void *), void *arg);

/*
 * Call from the evhttp request callback for each request it is given: the
 * gate learns when the answer has gone out (to time the keep-alive and to
 * answer a later bad request in its turn).
 */
void		 gate_track(struct gate *g, struct evhttp_request *req);

/* Bytes of an answer written by evhttp but not yet taken by the kernel. */
size_t		 gate_unsent(struct bufferevent *bev);

/* Write what can go out now, without waiting; for a connection about to
 * be cut. */
void		 gate_flush_now(struct bufferevent *bev);

const struct gate_stats *gate_stats(const struct gate *g);
/* A copy of s, read while other threads count in it. */
void		 gate_stats_read(const struct gate_stats *s,
		    struct gate_stats *out);

/*
 * Shutting down (the listener is closed already): close idle connections
 * now, close each other one after its answer, and answer requests still
 * arriving after --stop-grace with a 503.
 */
void		 gate_stop(struct gate *g);
int		 gate_stopping(const struct gate *g);

/* Connections with a request arriving, or being answered. */
unsigned	 gate_busy(const struct gate *g);

void		 gate_free(struct gate *g);

#endif /* RINGLB_GATE_H */
