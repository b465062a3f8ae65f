/*
 * curlev.h - a libcurl multi handle driven by a libevent loop.
 *
 * The glue of curl's docs/examples/hiperfifo.c, once: curl says which
 * sockets to watch and when to wake it, libevent calls back into
 * curl_multi_socket_action(), and every finished transfer is handed to
 * the owner's done callback.  Each owner (forwarding, health checks) has
 * its own curlev, so one kind of traffic never queues behind the other.
 */
#ifndef RINGLB_CURLEV_H
#define RINGLB_CURLEV_H

#include <curl/curl.h>

struct curlev;
struct event_base;

/*
 * Called once per finished transfer, after the handle has left the multi
 * handle (so the callback may add it again, or free it).  Runs from the
 * event loop, never from inside a curl callback.
 */
typedef void (*curlev_done_cb)(CURL *easy, CURLcode result, void *arg);

struct curlev	*curlev_new(struct event_base *base, curlev_done_cb done,
		    void *arg);
/* Remove every transfer still running (without calling done) and free. */
void		 curlev_free(struct curlev *cv);
CURLM		*curlev_multi(struct curlev *cv);
/*
 * Have after(arg) called each time libcurl is done with an event (a
 * socket's or the timer's), after the done callbacks: for work that
 * callbacks from inside libcurl gathered, to be done once.
 */
void		 curlev_set_after(struct curlev *cv, void (*after)(void *),
		    void *arg);

/*
 * Have easy open and close its sockets through cv (CURLOPT_OPENSOCKET-
 * and CLOSESOCKETFUNCTION), so that cv knows which are its and when they
 * go.  After curlev_own_closes(cv), every easy
 * handle added to cv must have been prepared so: cv then keeps a pooled
 * connection's socket registered between transfers.
 */
void		 curlev_prepare(struct curlev *cv, CURL *easy);
void		 curlev_own_closes(struct curlev *cv);

/* Start a transfer; 0 or -1. */
int		 curlev_add(struct curlev *cv, CURL *easy);
/* Drop a running transfer; done is not called for it. */
void		 curlev_remove(struct curlev *cv, CURL *easy);

/* A CURLOPT_WRITEFUNCTION that takes a body and drops it. */
size_t		 curlev_discard(char *data, size_t size, size_t nmemb,
		    void *arg);

#endif /* RINGLB_CURLEV_H */
