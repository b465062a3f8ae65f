/*
 * curlev.c - a libcurl multi handle on a libevent loop, in the pattern of
 * curl's docs/examples/hiperfifo.c and multi-event.c.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "curlev.h"
#include "log.h"

/*
 * The events of curl's sockets, by descriptor, kept when curl stops
 * watching one (a pooled connection between two transfers), so that the
 * next transfer on it costs an event_assign, not an allocation.
 *
 * With curlev_own_closes(), an owner whose easy handles open and close
 * their sockets through curlev (curlev_prepare) lets such a socket that
 * curl stops watching stay registered with epoll: the next transfer on
 * that pooled connection, which watches it the same way, then costs no
 * epoll_ctl(2) at all, where it cost two (a delete and an add).  Such a
 * socket is deleted from epoll when it closes, or when something (the
 * replica closing an idle connection) arrives on it while curl is not
 * watching.  Descriptors curl makes and closes by itself (the threaded
 * resolver's socketpair) are never left registered: closed behind
 * libevent's back, their number could come back as a socket libevent
 * wrongly took for registered already.
 *
 * curl also stops watching the socket of a transfer it paused (the
 * client reads slowly), so a socket is taken for an idle pooled
 * connection's (idle) only when curl stopped watching it as its transfer
 * finished: the socket curl let go of (rm) during the call that reported
 * the transfer done.
 */
struct sock_slot {
	struct event	*ev;
	short		 kind;		/* as registered */
	unsigned	 watched:1;	/* curl asked for it */
	unsigned	 added:1;	/* registered */
	unsigned	 ours:1;	/* opened by opensocket_cb */
	unsigned	 idle:1;	/* in the pool: see idle_input() */
};

/* A socket curl stopped watching, and the transfer that had it. */
struct sock_rm {
	curl_socket_t	 s;
	CURL		*easy;		/* compared, never used */
};

struct curlev {
	struct event_base	*base;
	CURLM			*multi;
	struct event		*timer;
	curlev_done_cb		 done;
	void			*arg;
	void			(*after)(void *);
	void			*after_arg;
	struct sock_slot	*socks;		/* by descriptor */
	size_t			 nsocks;
	int			 lazy;		/* curlev_own_closes() */
	struct sock_rm		*rm;		/* let go of since the last */
	size_t			 nrm, rmcap;	/* check_multi_info() */
};

/* The transfer easy is done: the socket curl let go of for it, if it
 * did and does not watch it again, is a pooled connection's now. */
static void
mark_idle(struct curlev *cv, CURL *easy)
{
	size_t i;

	for (i = 0; i < cv->nrm; i++)
		if (cv->rm[i].easy == easy &&
		    (size_t)cv->rm[i].s < cv->nsocks &&
		    !cv->socks[cv->rm[i].s].watched)
			cv->socks[cv->rm[i].s].idle = 1;
}

/* Hand every finished transfer to the owner. */
static void
check_multi_info(struct curlev *cv)
{
	CURLMsg *msg;
	CURL *easy;
	CURLcode result;
	int left;

	while ((msg = curl_multi_info_read(cv->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		/* msg dies with the removal: copy what we need first */
		easy = msg->easy_handle;
		result = msg->data.result;
		mark_idle(cv, easy);
		curl_multi_remove_handle(cv->multi, easy);
		cv->done(easy, result, cv->arg);
	}
}

/*
 * Bytes arrived on an idle pooled connection, between two transfers: they
 * answer no request (a body sent after the answer to a HEAD, more than an
 * answer's length, ...).  libcurl 7.88 takes a connection with input
 * waiting for alive, and would read them as the answer to the next
 * request sent on it, which may be another client's.  So the connection
 * is closed in place: one end of a socket pair whose other end is closed
 * takes its descriptor, which libcurl then finds at EOF when it looks at
 * the connection for reuse, and closes.  EOF and errors libcurl sees
 * itself.
 */
static void
idle_input(evutil_socket_t fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char c, addr[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	int sv[2];

	if (recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) != 1)
		return;
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *in = (struct sockaddr_in *)&ss;

			inet_ntop(AF_INET, &in->sin_addr, addr, sizeof(addr));
			port = ntohs(in->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

			inet_ntop(AF_INET6, &in6->sin6_addr, addr,
			    sizeof(addr));
			port = ntohs(in6->sin6_port);
		}
	}
	log_warnx("%s:%u sent bytes on an idle connection, after its answer "
	    "and before any request: the connection is closed, so that they "
	    "answer no request (a body after the answer to a HEAD, or more "
	    "than the answer's Content-Length?)", addr, port);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0) {
		close(sv[1]);
		if (dup3(sv[0], fd, O_CLOEXEC) == -1)
			shutdown(fd, SHUT_RDWR);
		close(sv[0]);
		return;
	}
	/* out of descriptors: no new request can be written on it */
	shutdown(fd, SHUT_RDWR);
}

static void
event_cb(evutil_socket_t fd, short kind, void *arg)
{
	struct curlev *cv = arg;
	int running, action;

	if ((size_t)fd < cv->nsocks && !cv->socks[fd].watched) {
		/* an idle pooled connection's: curl looks at it on reuse;
		 * or a paused transfer's, which curl reads when it resumes */
		event_del(cv->socks[fd].ev);
		cv->socks[fd].added = 0;
		if ((kind & EV_READ) && cv->socks[fd].idle) {
			cv->socks[fd].idle = 0;
			idle_input(fd);
		}
		return;
	}
	action = ((kind & EV_READ) ? CURL_CSELECT_IN : 0) |
	    ((kind & EV_WRITE) ? CURL_CSELECT_OUT : 0);
	cv->nrm = 0;
	curl_multi_socket_action(cv->multi, fd, action, &running);
	/* The timer is curl's to set and clear (multi_timer_cb): a transfer
	 * added again in check_multi_info() may just have armed it. */
	check_multi_info(cv);
	if (cv->after != NULL)
		cv->after(cv->after_arg);
}

static void
timer_cb(evutil_socket_t fd, short kind, void *arg)
{
	struct curlev *cv = arg;
	int running;

	(void)fd;
	(void)kind;
	cv->nrm = 0;
	curl_multi_socket_action(cv->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_multi_info(cv);
	if (cv->after != NULL)
		cv->after(cv->after_arg);
}

static int
multi_timer_cb(CURLM *multi, long timeout_ms, void *arg)
{
	struct curlev *cv = arg;
	struct timeval tv;

	(void)multi;
	if (timeout_ms < 0) {
		evtimer_del(cv->timer);
		return 0;
	}
	/* Zero means "as soon as possible": never call curl from here. */
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(cv->timer, &tv);
	return 0;
}

/* The slot of descriptor s, made when new; NULL when out of memory. */
static struct sock_slot *
sock_slot(struct curlev *cv, curl_socket_t s)
{
	struct sock_slot *p;
	size_t n;

	if (s < 0)
		return NULL;
	if ((size_t)s >= cv->nsocks) {
		for (n = cv->nsocks ? cv->nsocks : 64; n <= (size_t)s; n *= 2)
			;
		if ((p = reallocarray(cv->socks, n, sizeof(*p))) == NULL)
			return NULL;
		memset(p + cv->nsocks, 0, (n - cv->nsocks) * sizeof(*p));
		cv->socks = p;
		cv->nsocks = n;
	}
	return &cv->socks[s];
}

/* curl let go of s, a socket that stays registered: remember for which
 * transfer (mark_idle).  Out of memory, it is just not marked idle. */
static void
sock_let_go(struct curlev *cv, curl_socket_t s, CURL *easy)
{
	struct sock_rm *p;
	size_t cap;

	if (cv->nrm == cv->rmcap) {
		cap = cv->rmcap ? 2 * cv->rmcap : 16;
		if ((p = reallocarray(cv->rm, cap, sizeof(*p))) == NULL)
			return;
		cv->rm = p;
		cv->rmcap = cap;
	}
	cv->rm[cv->nrm].s = s;
	cv->rm[cv->nrm].easy = easy;
	cv->nrm++;
}

static int
sock_cb(CURL *easy, curl_socket_t s, int what, void *arg, void *sockp)
{
	struct curlev *cv = arg;
	struct sock_slot *sl;
	short kind;

	(void)sockp;
	if (what == CURL_POLL_REMOVE) {
		if (s >= 0 && (size_t)s < cv->nsocks) {
			sl = &cv->socks[s];
			sl->watched = 0;
			sl->idle = 0;
			if (sl->added && !(cv->lazy && sl->ours)) {
				event_del(sl->ev);
				sl->added = 0;
			} else if (sl->added)
				sock_let_go(cv, s, easy);
		}
		return 0;
	}
	if ((sl = sock_slot(cv, s)) == NULL)
		return -1;
	sl->idle = 0;
	kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
	    ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
	sl->watched = 1;
	if (sl->added && sl->kind == kind)
		return 0;		/* registered so already */
	if (sl->ev == NULL) {
		if ((sl->ev = event_new(cv->base, s, kind, event_cb, cv)) ==
		    NULL)
			return -1;
	} else {
		if (sl->added)
			event_del(sl->ev);
		event_assign(sl->ev, cv->base, s, kind, event_cb, cv);
	}
	sl->kind = kind;
	sl->added = 1;
	event_add(sl->ev, NULL);
	return 0;
}

/* CURLOPT_OPENSOCKETFUNCTION: a socket this curlev will see closed. */
static curl_socket_t
opensocket_cb(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
	struct curlev *cv = arg;
	struct sock_slot *sl;
	curl_socket_t s;

	(void)purpose;
	s = socket(addr->family, addr->socktype, addr->protocol);
	if (s == CURL_SOCKET_BAD)
		return s;
	if ((sl = sock_slot(cv, s)) == NULL) {
		close(s);
		return CURL_SOCKET_BAD;
	}
	sl->ours = 1;
	return s;
}

/* CURLOPT_CLOSESOCKETFUNCTION: out of epoll first, then closed. */
static int
closesocket_cb(void *arg, curl_socket_t s)
{
	struct curlev *cv = arg;
	size_t i;

	if (s >= 0 && (size_t)s < cv->nsocks) {
		if (cv->socks[s].added)
			event_del(cv->socks[s].ev);
		cv->socks[s].added = 0;
		cv->socks[s].watched = 0;
		cv->socks[s].ours = 0;
		cv->socks[s].idle = 0;
	}
	for (i = 0; i < cv->nrm; i++)	/* its number may come back */
		if (cv->rm[i].s == s)
			cv->rm[i].easy = NULL;
	return close(s);
}

void
curlev_own_closes(struct curlev *cv)
{
	cv->lazy = 1;
}

void
curlev_prepare(struct curlev *cv, CURL *easy)
{
	curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, opensocket_cb);
	curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, cv);
	curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, closesocket_cb);
	curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, cv);
}

struct curlev *
curlev_new(struct event_base *base, curlev_done_cb done, void *arg)
{
	struct curlev *cv;

	if ((cv = calloc(1, sizeof(*cv))) == NULL)
		return NULL;
	cv->base = base;
	cv->done = done;
	cv->arg = arg;
	if ((cv->multi = curl_multi_init()) == NULL ||
	    (cv->timer = evtimer_new(base, timer_cb, cv)) == NULL) {
		curlev_free(cv);
		return NULL;
	}
	curl_multi_setopt(cv->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(cv->multi, CURLMOPT_SOCKETDATA, cv);
	curl_multi_setopt(cv->multi, CURLMOPT_TIMERFUNCTION, multi_timer_cb);
	curl_multi_setopt(cv->multi, CURLMOPT_TIMERDATA, cv);
	return cv;
}

void
curlev_free(struct curlev *cv)
{
	size_t i;

	if (cv == NULL)
		return;
	if (cv->multi != NULL)
		curl_multi_cleanup(cv->multi);
	if (cv->timer != NULL)
		event_free(cv->timer);
	for (i = 0; i < cv->nsocks; i++)
		if (cv->socks[i].ev != NULL)
			event_free(cv->socks[i].ev);
	free(cv->socks);
	free(cv->rm);
	free(cv);
}

void
curlev_set_after(struct curlev *cv, void (*after)(void *), void *arg)
{
	cv->after = after;
	cv->after_arg = arg;
}

CURLM *
curlev_multi(struct curlev *cv)
{
	return cv->multi;
}

int
curlev_add(struct curlev *cv, CURL *easy)
{
	return curl_multi_add_handle(cv->multi, easy) == CURLM_OK ? 0 : -1;
}

void
curlev_remove(struct curlev *cv, CURL *easy)
{
	curl_multi_remove_handle(cv->multi, easy);
}

size_t
curlev_discard(char *data, size_t size, size_t nmemb, void *arg)
{
	(void)data;
	(void)arg;
	return size * nmemb;
}
