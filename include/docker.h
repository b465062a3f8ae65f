/*
 * docker.h - a client of the Docker Engine API on ringlb's event loop.
 *
 * Requests go through a libcurl multi handle of their own (curlev), over
 * the engine's unix socket or a tcp:// address as DOCKER_HOST names it,
 * the way the docker CLI reads that variable.  Every answer comes back
 * through a callback on the event loop, never from inside a call or a
 * curl callback, so a callback may start the next request at once.
 *
 * The API version is negotiated once (docker_negotiate) and prefixed to
 * every later path: the engine's own version, capped at the newest this
 * client was written against, and never below the oldest it accepts.
 */
#ifndef RINGLB_DOCKER_H
#define RINGLB_DOCKER_H

#include <stddef.h>

#include <jansson.h>

struct docker;
struct docker_call;
struct event_base;

#define DOCKER_API_OLDEST	"1.41"	/* Debian 12's engine */
#define DOCKER_API_NEWEST	"1.47"

/*
 * The outcome of a request.  code is the HTTP status, or 0 when the
 * engine could not be reached or did not answer in time; body is the
 * parsed JSON answer when there was one (borrowed: valid during the
 * call); msg is the engine's "message" for an error status, or what
 * went wrong on the way, always a whole phrase.
 */
typedef void (*docker_cb)(int code, json_t *body, const char *msg,
    void *arg);

/* One event of the /events stream (borrowed). */
typedef void (*docker_event_cb)(json_t *event, void *arg);

/*
 * A client of the engine named by host (DOCKER_HOST's syntax:
 * unix:///path or tcp://host:port; NULL or "" for the default socket).
 * NULL with the reason in err.
 */
struct docker	*docker_new(struct event_base *base, const char *host,
		    char *err, size_t errlen);
/* Drop every request still out (their callbacks are not called). */
void		 docker_free(struct docker *d);

/* Where the engine is, for messages: "unix:///var/run/docker.sock". */
const char	*docker_where(const struct docker *d);
/* The negotiated API version, "1.41"; "" before docker_negotiate. */
const char	*docker_version(const struct docker *d);

/*
 * GET /version and settle the API version; done(code, body, msg) as for
 * a request, with code 200 only when a usable version was agreed.
 * -1 (and done is never called) when out of memory.
 */
int		 docker_negotiate(struct docker *d, docker_cb done, void *arg);

/*
 * method path under the negotiated version ("/containers/json?all=1"),
 * with body (stolen; NULL for none) sent as JSON; the whole exchange
 * must end within timeout_ms.  Returns a handle for docker_cancel(); NULL
 * only when out of memory, and done is then never called.
 */
struct docker_call *docker_request(struct docker *d, const char *method,
		    const char *path, json_t *body, long timeout_ms,
		    docker_cb done, void *arg);

/*
 * GET /events with these filters (a JSON object, stolen), calling
 * on_event(NULL) once the engine has answered 200 (the stream is open),
 * then on_event for every event as it arrives, and done once the stream
 * ends (the engine restarted, or it failed to start: then done has the
 * engine's message).
 */
struct docker_call *docker_events(struct docker *d, json_t *filters,
		    docker_event_cb on_event, docker_cb done, void *arg);

/*
 * arg is a malloc'd block that done frees: free it here instead should
 * the request be cancelled (or the client freed) before it is answered.
 */
void		 docker_own_arg(struct docker_call *c);

/* Stop a request; its done is never called. */
void		 docker_cancel(struct docker *d, struct docker_call *c);

/*
 * A path segment or query value with every byte outside [A-Za-z0-9_.-]
 * percent-encoded, into out; -1 if it does not fit.
 */
int		 docker_escape(const char *s, char *out, size_t outlen);
/* The value of a filters= query parameter: filters (stolen) as compact
 * JSON, escaped; -1 if it does not fit. */
int		 docker_filters(json_t *filters, char *out, size_t outlen);
#endif /* RINGLB_DOCKER_H */
