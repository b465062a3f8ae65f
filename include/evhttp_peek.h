/*
 * evhttp_peek.h - what ringlb reads of an evhttp request that libevent
 * 2.1 has no function for: the request's HTTP version and whether its
 * body came chunked.  Both are fields of struct evhttp_request, whose
 * layout only <event2/http_struct.h> gives; that header is libevent's own,
 * installed with it, so a build against it is right for the libevent it
 * was built with.  This is the one file that includes it.
 *
 * Checked twice: at build time, that the headers are libevent 2.1 (2.2
 * has evhttp_request_get_version and may move these fields); at start
 * (evhttp_peek_check), that the library ringlb runs with is the 2.1 it
 * was built against, so a different libevent is a clear refusal, not
 * fields read at the wrong offsets.
 */
#ifndef RINGLB_EVHTTP_PEEK_H
#define RINGLB_EVHTTP_PEEK_H

#include <stdio.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h>

#if !defined(LIBEVENT_VERSION_NUMBER) || \
    LIBEVENT_VERSION_NUMBER < 0x02010000 || \
    LIBEVENT_VERSION_NUMBER >= 0x02020000
#error "ringlb reads struct evhttp_request as libevent 2.1 lays it out (evhttp_peek.h): build it against libevent 2.1"
#endif

/* The request's HTTP minor version (the major is 1: evhttp refuses any
 * other). */
static inline int
evhttp_peek_minor(const struct evhttp_request *req)
{
	return req->major == 1 ? req->minor : -1;
}

/* Did the request's body come with Transfer-Encoding: chunked? */
static inline int
evhttp_peek_chunked(const struct evhttp_request *req)
{
	return req->chunked;
}

/*
 * Is the libevent linked at run time the 2.1 whose header this was built
 * with?  0, or -1 with the reason in err.
 */
static inline int
evhttp_peek_check(char *err, size_t errlen)
{
	ev_uint32_t run = event_get_version_number();

	if ((run & 0xffff0000u) == (LIBEVENT_VERSION_NUMBER & 0xffff0000u))
		return 0;
	snprintf(err, errlen, "ringlb was built against libevent %s but runs "
	    "with %s; rebuild it against the libevent installed (make)",
	    LIBEVENT_VERSION, event_get_version());
	return -1;
}

#endif /* RINGLB_EVHTTP_PEEK_H */
