/*
 * proxy.c - the forwarding engine.
 *
 * libcurl's multi interface runs on ringlb's libevent loop (curlev.c);
 * every finished transfer comes back through tx_done().  The multi handle
 * owns the keep-alive connection pool to the replicas.
 *
 * One proxy_tx follows one client request.  Its easy handle is reused by
 * later requests (free list), so the per-request cost is setting a few
 * options, not building a handle.
 *
 * Nothing of a replica's answer goes out before its status line and
 * headers have been checked (header_cb): one that is not well-formed
 * HTTP/1.x, or whose framing the client could read otherwise than libcurl
 * does, is a 502.
 *
 * The reply streams: response headers go to the client when the replica's
 * header block ends (with the body's first bytes when they came with it),
 * body bytes as curl hands them over.  What libcurl would build or parse
 * per request is handed to it ready: the replica's URL parsed once, the
 * client's target as it came, the header list in the transfer's memory;
 * and the usual answer's head is written here, not by evhttp's printf per
 * header (fast_head).
 *
 * When the client reads more slowly than the replica writes, the transfer
 * is paused (CURL_WRITEFUNC_PAUSE) until libevent has flushed the client's
 * output buffer, so a large response never sits in memory whole.
 *
 * A client that goes away is noticed before any answer is written, by
 * watching its socket once the request has been open for HANGUP_WATCH_MS;
 * once writing has begun, a failed write reaches us through the evhttp
 * connection's close callback.  Either way the transfer is dropped there
 * and then, so an abandoned request does not hold a replica connection
 * until its timeout.  Gone means reset: a client that only shut down its
 * sending side (a half-close, which looks the same as a close until
 * something is written to it) still gets its answer.
 */
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>

#include "config.h"
#include "curlev.h"
#include "evhttp_peek.h"
#include "gate.h"
#include "headers.h"
#include "log.h"
#include "metrics.h"
#include "proxy.h"
#include "route.h"
#include "respond.h"
#include "util.h"

#define PROXY_FREE_MAX		1024		/* idle transfers kept */
#define PROXY_FREE_KEEP		4	/* ... however long they are idle (each
					   holds libcurl's 16 KiB buffer) */
#define PROXY_SHRINK_MS		1000	/* see proxy_shrink() */
#define PROXY_HIGH_WATER	(64 * 1024)	/* client backlog that pauses */
#define PROXY_READ_SIZE		(16 * 1024 - 128)	/* see tx_get() */
#define PROXY_ATTEMPTS		2	/* the owner, one retry */
#define HANGUP_WATCH_MS		50	/* see proxy_sweep() */
#define HANGUP_SWEEP_MS		25
#define HANGUP_POLL_MS		200	/* a half-closed client: see tx_gone() */

struct proxy_tx {
	struct proxy			*px;
	struct evhttp_request		*req;
	struct evhttp_connection	*evcon;
	CURL				*easy;
	char				*rhead;		/* replica's header */
	size_t				 rlen, rcap;	/* lines: start_reply() */
	char				*hbuf;		/* header lines */
	size_t				 hlen, hcap;
	struct curl_slist		*hnodes;	/* their list */
	size_t				 nhnodes, hnodes_cap;
	struct evbuffer			*chunk;
	struct event			*hangup;	/* client closed */
	struct route_view		*view;		/* routed by */
	struct route_member		*rep;		/* this attempt's */
	char				*key;		/* for a retry */
	size_t				 klen, kcap;
	int				 attempt;
	int				 status;
	char				 reason[64];
	unsigned			 started:1;	/* reply begun */
	unsigned			 paused:1;	/* waiting on client */
	unsigned			 saw_te:1;	/* replica sent T-E */
	unsigned			 saw_conn:1;	/* ... Connection */
	unsigned			 saw_clen:1;	/* ... Content-Length */
	unsigned			 want_status:1;	/* a status line next */
	unsigned			 invalid:1;	/* answer refused */
	unsigned			 head_ready:1;	/* head in chunk, unsent */
	unsigned			 watching:1;	/* hangup in use */
	unsigned			 idempotent:1;
	unsigned			 has_body:1;
	char				*scratch;	/* a head, a value */
	size_t				 scratch_cap;
	char				 why[512];	/* what failed, so far */
	size_t				 head_bytes;	/* replica's header so far */
	char				 abort_why[128]; /* why we ended it */
	unsigned			 sends;		/* prereq_cb() calls */
	uint64_t			 start_ns;
	char				 errbuf[CURL_ERROR_SIZE];
	struct proxy_tx			*prev, *next;	/* active or free */
	struct proxy_tx			*head_next;	/* px->heads */
};

struct proxy {
	struct event_base	*base;
	const struct config	*cfg;
	struct route_inbox	*routes;
	struct metrics		*metrics;
	struct curlev		*cv;
	struct proxy_tx		*active;
	struct proxy_tx		*free_list;
	struct proxy_tx		*heads;		/* head_ready */
	unsigned		 nactive;	/* read by other threads */
	unsigned		 nfree;
	int			 early_close;	/* EV_CLOSED works here */
	struct event		*sweep;		/* proxy_sweep() */
	int			 sweeping;	/* sweep pending */
	struct event		*shrink;	/* proxy_shrink() */
	unsigned		 free_min;	/* least nfree since */
	int			 trimmed;	/* no transfer ended since */
};

static void	tx_finish(struct proxy_tx *, CURLcode);
static void	client_drained(struct evhttp_connection *, void *);
static void	tx_push(struct proxy_tx *);
static void	tx_watch_hangup(evutil_socket_t, short, void *);
static void	tx_release(struct proxy_tx *);
static void	tx_destroy(struct proxy_tx *);

static void
tx_observe(struct proxy_tx *tx, int status)
{
	metrics_observe(tx->px->metrics, status,
	    (double)(now_ns() - tx->start_ns) / 1e9);
}

/* --- headers --------------------------------------------------------- */

/* Make tx->scratch hold at least n bytes. */
static int
scratch_reserve(struct proxy_tx *tx, size_t n)
{
	char *p;

	if (n <= tx->scratch_cap)
		return 0;
	if ((p = realloc(tx->scratch, n)) == NULL)
		return -1;
	tx->scratch = p;
	tx->scratch_cap = n;
	return 0;
}

/*
 * The request's header list is built in tx's own memory, not with
 * curl_slist_append (two allocations a header): the lines go into
 * tx->hbuf, the list's nodes into tx->hnodes, both kept for the next
 * request.  libcurl only reads the list (CURLOPT_HTTPHEADER).  While
 * lines are added, a node's data holds its line's offset in hbuf, as
 * hbuf may move; hdr_finish() turns them into pointers.
 */
static int
hdr_reserve(struct proxy_tx *tx, size_t n)
{
	char *p;
	size_t cap;

	if (tx->hlen + n <= tx->hcap)
		return 0;
	for (cap = tx->hcap ? tx->hcap : 512; cap < tx->hlen + n; cap *= 2)
		;
	if ((p = realloc(tx->hbuf, cap)) == NULL)
		return -1;
	tx->hbuf = p;
	tx->hcap = cap;
	return 0;
}

/* A node for the line starting at tx->hlen. */
static int
hdr_node(struct proxy_tx *tx)
{
	struct curl_slist *p;
	size_t cap;

	if (tx->nhnodes == tx->hnodes_cap) {
		cap = tx->hnodes_cap ? 2 * tx->hnodes_cap : 16;
		if ((p = reallocarray(tx->hnodes, cap, sizeof(*p))) == NULL)
			return -1;
		tx->hnodes = p;
		tx->hnodes_cap = cap;
	}
	tx->hnodes[tx->nhnodes++].data = (char *)(uintptr_t)tx->hlen;
	return 0;
}

static void
hdr_put(struct proxy_tx *tx, const char *s, size_t n)
{
	memcpy(tx->hbuf + tx->hlen, s, n);
	tx->hlen += n;
}

/*
 * A line of the request's one entry of headers (see
 * build_request_headers): "Name: value\r\n", or "Name:\r\n" for an empty
 * value.  hdr_end() ends the entry.
 */
static int
add_header(struct proxy_tx *tx, const char *name, size_t nl,
    const char *value, size_t vl)
{
	if (hdr_reserve(tx, nl + 2 + vl + 2) == -1)
		return -1;
	hdr_put(tx, name, nl);
	if (vl == 0)
		hdr_put(tx, ":", 1);
	else {
		hdr_put(tx, ": ", 2);
		hdr_put(tx, value, vl);
	}
	hdr_put(tx, "\r\n", 2);
	return 0;
}

/*
 * The entry's lines end: its last CRLF becomes the NUL (curl adds its own
 * CRLF).  An entry of one line with an empty value would look blank to
 * curl, "Name:" being how it is told to send no such header: it becomes
 * "Name;", how curl is told to send one with no value.  An entry of no
 * lines is dropped.
 */
static void
hdr_end(struct proxy_tx *tx, size_t start)
{
	char *line = tx->hbuf + start, *end;

	if (tx->hlen == start) {
		tx->nhnodes--;
		return;
	}
	tx->hlen -= 2;
	tx->hbuf[tx->hlen++] = '\0';
	end = tx->hbuf + tx->hlen - 2;
	/* one line, whose only colon (a name has none) ends it */
	if (*end == ':' && memchr(line, ':', (size_t)(end - line)) == NULL)
		*end = ';';
}

/* An entry as it is: "Name:" with nothing after it stops curl adding its
 * own header of that name. */
static int
add_blank(struct proxy_tx *tx, const char *line, size_t len)
{
	if (hdr_reserve(tx, len + 1) == -1 || hdr_node(tx) == -1)
		return -1;
	hdr_put(tx, line, len + 1);
	return 0;
}

static struct curl_slist *
hdr_finish(struct proxy_tx *tx)
{
	size_t i;

	if (tx->nhnodes == 0)
		return NULL;
	for (i = 0; i < tx->nhnodes; i++) {
		tx->hnodes[i].data = tx->hbuf +
		    (size_t)(uintptr_t)tx->hnodes[i].data;
		tx->hnodes[i].next = i + 1 < tx->nhnodes ? &tx->hnodes[i + 1] :
		    NULL;
	}
	return tx->hnodes;
}

/* The value of an X-Forwarded-For header, without blanks and commas
 * around it; its length into *len. */
static const char *
xff_entry(const char *value, size_t *len)
{
	const char *v = value + strspn(value, " \t,");
	size_t vl;

	for (vl = strlen(v); vl > 0 && strchr(" \t,", v[vl - 1]); vl--)
		;
	*len = vl;
	return v;
}

/*
 * X-Forwarded-For: the client's own, every one of them in order, then its
 * address, always last.  Nothing is cut: the request head is bounded by
 * --max-header already.  nxff is how many the client sent.
 */
static int
add_forwarded_for(struct proxy_tx *tx, struct evkeyvalq *in,
    const char *peer, int nxff)
{
	static const char name[] = "X-Forwarded-For: ";
	struct evkeyval *h;
	const char *v;
	size_t pl = strlen(peer), vl, start;
	int first = 1;

	if (hdr_reserve(tx, sizeof(name) + pl + 2) == -1)
		return -1;
	start = tx->hlen;
	hdr_put(tx, name, sizeof(name) - 1);
	for (h = in->tqh_first; nxff > 0 && h != NULL; h = h->next.tqe_next) {
		if (!HEADER_IS(h->key, strlen(h->key), "X-Forwarded-For"))
			continue;
		nxff--;
		if ((v = xff_entry(h->value, &vl)), vl == 0)
			continue;	/* no empty entries */
		/* room for ", " v, and still for ", " peer and the CRLF */
		if (hdr_reserve(tx, 2 + vl + 2 + pl + 2) == -1)
			return -1;
		if (!first)
			hdr_put(tx, ", ", 2);
		hdr_put(tx, v, vl);
		first = 0;
	}
	if (pl > 0) {
		if (!first)
			hdr_put(tx, ", ", 2);
		hdr_put(tx, peer, pl);
		first = 0;
	}
	if (first)			/* nothing to say */
		tx->hlen = start;
	else
		hdr_put(tx, "\r\n", 2);
	return 0;
}

/*
 * The options of every Connection header of the request, as one list,
 * into *conn: the first one's value as it is, or, when there are more,
 * all of them joined with commas in tx->scratch; NULL when there are
 * none.  0, or -1 when out of memory.
 */
static int
connection_options(struct proxy_tx *tx, struct evkeyvalq *in,
    const char **conn)
{
	struct evkeyval *h;
	const char *first = NULL;
	size_t n = 0, vl;
	char *p;
	int count = 0;

	for (h = in->tqh_first; h != NULL; h = h->next.tqe_next)
		if (strcasecmp(h->key, "Connection") == 0) {
			if (count++ == 0)
				first = h->value;
			n += strlen(h->value) + 1;
		}
	*conn = first;
	if (count < 2)
		return 0;
	if (scratch_reserve(tx, n) == -1)
		return -1;
	p = tx->scratch;
	for (h = in->tqh_first; h != NULL; h = h->next.tqe_next)
		if (strcasecmp(h->key, "Connection") == 0) {
			vl = strlen(h->value);
			memcpy(p, h->value, vl);
			p += vl;
			*p++ = ',';
		}
	p[-1] = '\0';
	*conn = tx->scratch;
	return 0;
}

/*
 * Does a Connection option of the client name the field name[0..nl)?
 * Never one that ringlb answers for: Host, X-Request-Id (the request's
 * key) and X-Forwarded-For (the client's address) go to the replica
 * whatever the client says; the body's framing is libcurl's own.
 */
static int
connection_named(const char *conn, const char *name, size_t nl)
{
	return conn != NULL && header_in_connection(conn, name, nl) &&
	    !HEADER_IS(name, nl, "Host") &&
	    !HEADER_IS(name, nl, "X-Request-Id") &&
	    !HEADER_IS(name, nl, "X-Forwarded-For");
}

/*
 * The client's headers, less hop-by-hop ones (and those its Connection
 * headers name), plus X-Forwarded-For and X-Request-Id, in one entry of
 * the list, its lines joined by CRLFs; before it, blanks for the headers
 * curl would add on its own (Host when the client sent one, Accept
 * always; Content-Type and Expect to a request with a body, with_body).
 *
 * curl writes each entry of the list with a printf of its own, a byte at
 * a time, at some 1,100 instructions an entry besides the bytes, and
 * compares each entry's name with those of its own headers each time it
 * looks one up; one entry for every line saves both.  curl reads an
 * entry's name, up to its first colon, and then only to decide whether
 * to send it, so the lines after the first reach the replica as they
 * are: every line has passed the gate's checks (a token for a name, no
 * control character in the value, no folding), and a client's line can
 * neither end the entry nor start a line of its own.  Nor does curl miss
 * a header of the client's that would have kept it from writing its own:
 * the blanks come first, and curl writes its own Host, Accept,
 * Content-Type and Expect only when the list has no entry of that name;
 * a Content-Length is curl's own, always (the body's framing).
 *
 * With no Host line of its own, curl writes the request line and then
 * the list's entry, Host first, as it would have put its own; the line
 * it would write from the list's value instead ("Host:%s\r\n",
 * formatted a byte at a time, then copied into the request the same way)
 * costs some 2,500 instructions a request.  A client without a Host, as
 * HTTP/1.0 allows, gets curl's: the replica's address.
 */
static int
build_request_headers(struct proxy_tx *tx, const char *request_id,
    int with_body)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(tx->req);
	const char *conn, *host, *peer = "";
	struct evkeyval *h;
	int nxff = 0;
	ev_uint16_t port;
	size_t start;

	tx->hlen = 0;
	tx->nhnodes = 0;
	if (connection_options(tx, in, &conn) == -1)
		return -1;
	host = evhttp_find_header(in, "Host");
	if ((host != NULL && add_blank(tx, "Host:", 5) == -1) ||
	    add_blank(tx, "Accept:", 7) == -1 ||
	    (with_body && (add_blank(tx, "Content-Type:", 13) == -1 ||
	    add_blank(tx, "Expect:", 7) == -1)))
		return -1;
	if (hdr_node(tx) == -1)
		return -1;
	start = tx->hlen;
	/* first, and spelt so, as curl writes its own (see above) */
	if (host != NULL && add_header(tx, "Host", 4, host, strlen(host)) == -1)
		return -1;
	for (h = in->tqh_first; h != NULL; h = h->next.tqe_next) {
		size_t nl = strlen(h->key);

		if (HEADER_IS(h->key, nl, "Host") ||
		    header_hop_by_hop(h->key, nl) ||
		    HEADER_IS(h->key, nl, "Content-Length") ||
		    HEADER_IS(h->key, nl, "Expect") ||
		    connection_named(conn, h->key, nl))
			continue;
		if (HEADER_IS(h->key, nl, "X-Forwarded-For")) {
			nxff++;
			continue;	/* see add_forwarded_for() */
		}
		if (add_header(tx, h->key, nl, h->value, strlen(h->value)) ==
		    -1)
			return -1;
	}
	if (tx->evcon != NULL) {
		char *addr = NULL;

		evhttp_connection_get_peer(tx->evcon, &addr, &port);
		if (addr != NULL)
			peer = addr;
	}
	if (add_forwarded_for(tx, in, peer, nxff) == -1)
		return -1;
	if (request_id != NULL && add_header(tx, "X-Request-Id", 12,
	    request_id, strlen(request_id)) == -1)
		return -1;
	hdr_end(tx, start);
	return 0;
}

/* --- the reply ------------------------------------------------------- */

/*
 * The replica's header lines are kept in tx->rhead as they come, each as
 * "\r\nName: value", and handed to evhttp when the block ends
 * (start_reply).  evhttp writes a response head with one printf per
 * header and looks some of them up by name, case-insensitively, several
 * times; of the output headers it only ever looks up Date,
 * Content-Length, Transfer-Encoding, Content-Type and Connection.  So it
 * is given Content-Length as a header of its own, and everything else as
 * one header whose value is the rest of the head, already formatted:
 * keyed "Date" when the replica sent one, so that evhttp adds none.
 * Connection and Transfer-Encoding are hop-by-hop and never kept, and
 * Content-Type is looked up only for a default type, which ringlb does not
 * set.  Every line has passed header_line()'s checks: a token for a
 * name, no control character in the value.
 */
static int
rhead_add(struct proxy_tx *tx, const char *name, size_t nl, const char *v,
    size_t vl)
{
	size_t n = 2 + nl + 2 + vl, cap;
	char *p;

	if (tx->rlen + n > tx->rcap) {
		for (cap = tx->rcap ? tx->rcap : 512; cap < tx->rlen + n;
		    cap *= 2)
			;
		if ((p = realloc(tx->rhead, cap)) == NULL)
			return -1;
		tx->rhead = p;
		tx->rcap = cap;
	}
	p = tx->rhead + tx->rlen;
	memcpy(p, "\r\n", 2);
	memcpy(p + 2, name, nl);
	memcpy(p + 2 + nl, ": ", 2);
	memcpy(p + 4 + nl, v, vl);
	tx->rlen += n;
	return 0;
}

/* One kept line of tx->rhead: [start, end) with its CRLF, the name. */
struct rline {
	size_t		 start, end;
	const char	*name;
	size_t		 nl;
	const char	*value;
	size_t		 vl;
};

/* The line at *off (advanced past it); 0, or -1 at the end. */
static int
rhead_next(const struct proxy_tx *tx, size_t *off, struct rline *l)
{
	const char *p, *e;

	if (*off >= tx->rlen)
		return -1;
	l->start = *off;
	p = tx->rhead + *off + 2;
	e = memchr(p, '\r', tx->rhead + tx->rlen - p);
	l->end = e ? (size_t)(e - tx->rhead) : tx->rlen;
	l->name = p;
	l->nl = (size_t)((const char *)memchr(p, ':',
	    (size_t)(tx->rhead + l->end - p)) - p);
	l->value = p + l->nl + 2;
	l->vl = (size_t)(tx->rhead + l->end - l->value);
	*off = l->end;
	return 0;
}

/* Remove the lines for which drop() says so, in place. */
static void
rhead_filter(struct proxy_tx *tx, int (*drop)(const struct rline *,
    const char *), const char *arg)
{
	struct rline l;
	size_t off = 0, o = 0;

	while (rhead_next(tx, &off, &l) == 0) {
		if (drop(&l, arg))
			continue;
		memmove(tx->rhead + o, tx->rhead + l.start, l.end - l.start);
		o += l.end - l.start;
	}
	tx->rlen = o;
}

/* A Connection header, or a field one names; never the answer's length,
 * which the replica cannot take back that way. */
static int
is_connection(const struct rline *l, const char *conn)
{
	return HEADER_IS(l->name, l->nl, "Connection") ||
	    (header_in_connection(conn, l->name, l->nl) &&
	    !HEADER_IS(l->name, l->nl, "Content-Length"));
}

static int
is_content_length(const struct rline *l, const char *arg)
{
	(void)arg;
	return HEADER_IS(l->name, l->nl, "Content-Length");
}

/*
 * Drop the replica's Connection headers and the fields they name: those
 * are hop-by-hop too (RFC 9110 7.6.1), like the fixed ones header_cb
 * drops.  header_cb keeps the Connection headers until here, as a field
 * may come before the Connection header naming it.
 */
static void
drop_connection_named(struct proxy_tx *tx)
{
	struct rline l;
	size_t off = 0, n = 1;
	char *conn, *p;

	while (rhead_next(tx, &off, &l) == 0)
		if (HEADER_IS(l.name, l.nl, "Connection"))
			n += l.vl + 1;
	if ((p = conn = malloc(n)) == NULL)
		return;
	for (off = 0; rhead_next(tx, &off, &l) == 0; )
		if (HEADER_IS(l.name, l.nl, "Connection")) {
			memcpy(p, l.value, l.vl);
			p += l.vl;
			*p++ = ',';
		}
	*p = '\0';
	rhead_filter(tx, is_connection, conn);
	free(conn);
}

/* Append the evkeyval key: value to out as it is, unchecked. */
static void
add_formatted(struct evkeyvalq *out, const char *key, char *value)
{
	struct evkeyval *h;

	if ((h = calloc(1, sizeof(*h))) == NULL ||
	    (h->key = strdup(key)) == NULL) {
		free(h);
		free(value);
		return;
	}
	h->value = value;
	h->next.tqe_next = NULL;
	h->next.tqe_prev = out->tqh_last;
	*out->tqh_last = h;
	out->tqh_last = &h->next.tqe_next;
}

static char *
put(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

/*
 * The usual answer (a status with a body, a Content-Length, a reason
 * phrase; not to a HEAD) needs nothing of evhttp's head writing: ringlb
 * writes the head itself, with what evhttp would add (Date to an HTTP/1.1
 * client when the replica sent none; Connection as the client asked),
 * and hands it to evhttp as the first piece of the reply, with the body's
 * first bytes: when they come (write_cb), when the transfer ends, or at
 * the latest once libcurl is done with the event that brought the head
 * (proxy_push_heads), so a head is never held back while a body is slow.
 * evhttp then frames nothing (no chunking with a Content-Length) and ends
 * the request as after evhttp_send_reply_start.
 * 0, or -1 when the answer is not the usual one (start_reply() does it).
 */
static int
fast_head(struct proxy_tx *tx)
{
	struct evhttp_request *req = tx->req;
	struct route_member *rep = tx->rep;
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	struct evkeyval *h;
	struct rline l;
	const char *conn = NULL;
	char date[64], *p;
	size_t off = 0, n;
	int have_clen = 0, have_date = 0, code = tx->status, minor = -1;

	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD ||
	    code < 200 || code > 999 || code == 204 || code == 304 ||
	    tx->saw_te || tx->saw_conn || tx->reason[0] == '\0' ||
	    (minor = evhttp_peek_minor(req)) < 0 || minor > 1 ||
	    evhttp_peek_chunked(req) ||	/* a chunked request body */
	    /* ringlb closes after it (shutting down): evhttp says so */
	    evhttp_find_header(evhttp_request_get_output_headers(req),
	    "Connection") != NULL)
		return -1;
	while (rhead_next(tx, &off, &l) == 0) {
		if (HEADER_IS(l.name, l.nl, "Content-Length"))
			have_clen = 1;
		else if (HEADER_IS(l.name, l.nl, "Date"))
			have_date = 1;
	}
	if (!have_clen)
		return -1;
	for (h = in->tqh_first; h != NULL; h = h->next.tqe_next)
		if (strcasecmp(h->key, "Connection") == 0) {
			conn = h->value;
			break;
		}

	/* "HTTP/1.x NNN reason", the lines, what evhttp would add */
	if (scratch_reserve(tx, 13 + sizeof(tx->reason) + tx->rlen + 2 +
	    sizeof("\r\nDate: ") + sizeof(date) +
	    sizeof("\r\nConnection: keep-alive") + sizeof("\r\nX-Served-By: ") +
	    strlen(rep->name) + 4) == -1)
		return -1;
	p = tx->scratch;
	memcpy(p, "HTTP/1.x NNN ", 13);
	p[7] = minor == 1 ? '1' : '0';
	p[9] = '0' + code / 100;
	p[10] = '0' + code / 10 % 10;
	p[11] = '0' + code % 10;
	p += 13;
	p = put(p, tx->reason, strlen(tx->reason));
	for (off = 0; rhead_next(tx, &off, &l) == 0; )
		if (!HEADER_IS(l.name, l.nl, "X-Served-By"))
			p = put(p, tx->rhead + l.start, l.end - l.start);
	if (!have_date && minor == 1 &&
	    (n = (size_t)evutil_date_rfc1123(date, sizeof(date), NULL)) > 0 &&
	    n < sizeof(date)) {
		p = put(p, "\r\nDate: ", 8);
		p = put(p, date, n);
	}
	if (conn != NULL && strcasecmp(conn, "close") == 0)
		p = put(p, "\r\nConnection: close", 19);
	else if (minor == 0 && conn != NULL &&
	    strncasecmp(conn, "keep-alive", 10) == 0)
		p = put(p, "\r\nConnection: keep-alive", 24);
	p = put(p, "\r\nX-Served-By: ", 15);
	p = put(p, rep->name, strlen(rep->name));
	p = put(p, "\r\n\r\n", 4);
	/* goes with the body's first bytes: write_cb, or tx_push() */
	evbuffer_add(tx->chunk, tx->scratch, (size_t)(p - tx->scratch));
	tx->head_ready = 1;
	tx->head_next = tx->px->heads;
	tx->px->heads = tx;
	return 0;
}

/*
 * An answer without a Content-Length (the replica chunked it, or ends it
 * by closing; libcurl has undone any chunking): an HTTP/1.1 client gets it
 * chunked by evhttp, but an HTTP/1.0 client knows no chunking, so for it
 * the answer can only end with the connection.  evhttp would keep a 1.0
 * keep-alive connection open and announce what body it holds so far,
 * none, as "Content-Length: 0", and the body would be read as the answer
 * to the next request.  So the request is made to ask for a close, which
 * evhttp honours: no length, "Connection: close", and the connection
 * closed after the body.
 */
static void
close_delimited(struct proxy_tx *tx)
{
	struct evhttp_request *req = tx->req;
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);

	if (evhttp_peek_minor(req) != 0 || tx->status == 204 ||
	    tx->status == 304 ||
	    evhttp_request_get_command(req) == EVHTTP_REQ_HEAD)
		return;			/* chunked, or no body */
	while (evhttp_remove_header(in, "Connection") == 0)
		;
	evhttp_add_header(in, "Connection", "close");
}

static void
start_reply(struct proxy_tx *tx)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(tx->req);
	struct route_member *rep = tx->rep;
	struct rline l, date = { 0 }, clen = { 0 };
	size_t off = 0, nn = strlen(rep->name), n, o;
	char *v;

	if (fast_head(tx) == 0) {
		tx->started = 1;
		return;
	}
	if (tx->saw_conn)
		drop_connection_named(tx);
	/* a 204 has no body and no length (RFC 9110 8.6), whatever a
	 * replica says; libcurl reads none */
	if (tx->status == 204 && tx->saw_clen)
		rhead_filter(tx, is_content_length, NULL);
	while (rhead_next(tx, &off, &l) == 0) {
		if (date.name == NULL && HEADER_IS(l.name, l.nl, "Date"))
			date = l;
		else if (clen.name == NULL &&
		    HEADER_IS(l.name, l.nl, "Content-Length"))
			clen = l;
	}
	if (clen.name != NULL && scratch_reserve(tx, clen.vl + 1) == 0) {
		memcpy(tx->scratch, clen.value, clen.vl);
		tx->scratch[clen.vl] = '\0';
		evhttp_add_header(out, "Content-Length", tx->scratch);
	} else
		close_delimited(tx);

	/* the value: Date's, or X-Served-By's; then the other lines */
	n = tx->rlen + nn + sizeof("\r\nX-Served-By: ");
	if ((v = malloc(n)) != NULL) {
		if (date.name != NULL) {
			memcpy(v, date.value, date.vl);
			o = date.vl;
		} else {
			memcpy(v, rep->name, nn);
			o = nn;
		}
		for (off = 0; rhead_next(tx, &off, &l) == 0; ) {
			if (l.start == date.start && date.name != NULL)
				continue;
			if (l.start == clen.start && clen.name != NULL)
				continue;
			/* not passed on: ours replaces it */
			if (HEADER_IS(l.name, l.nl, "X-Served-By"))
				continue;
			memcpy(v + o, tx->rhead + l.start, l.end - l.start);
			o += l.end - l.start;
		}
		if (date.name != NULL) {
			memcpy(v + o, "\r\nX-Served-By: ", 15);
			memcpy(v + o + 15, rep->name, nn);
			o += 15 + nn;
		}
		v[o] = '\0';
		add_formatted(out, date.name != NULL ? "Date" : "X-Served-By",
		    v);
	}
	evhttp_send_reply_start(tx->req, tx->status,
	    tx->reason[0] ? tx->reason : NULL);
	tx->started = 1;
}

/*
 * Refuse the replica's answer: nothing of it has gone to the client yet,
 * and nothing will; the client gets a 502 saying why (tx_finish).  0, for
 * header_cb to return, which ends the transfer.
 */
static size_t	answer_invalid(struct proxy_tx *, const char *, ...)
		    LOG_PRINTF(2, 3);

static size_t
answer_invalid(struct proxy_tx *tx, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(tx->abort_why, sizeof(tx->abort_why), "its answer is "
	    "invalid: ");
	va_start(ap, fmt);
	vsnprintf(tx->abort_why + n, sizeof(tx->abort_why) - (size_t)n, fmt,
	    ap);
	va_end(ap);
	tx->invalid = 1;
	return 0;
}

/*
 * A status line: it must be "HTTP/1.x NNN reason", as RFC 9112 has it
 * (libcurl takes more: leading blanks, "HTTP 200", a reason with a bare CR
 * in it, any three digits).  1xx answers are interim, and libcurl reads
 * the final one after them; but a 101 would switch protocols, which
 * ringlb does not forward (the client's Upgrade header is hop-by-hop and
 * never reaches the replica), so it is refused like a final status
 * outside 200-599.
 */
static size_t
status_line(struct proxy_tx *tx, const char *data, size_t len, size_t n)
{
	const char *reason;
	size_t rl;
	int code;

	switch (header_status_line(data, len, &code, &reason, &rl)) {
	case 0:
		break;
	case -2:
		return answer_invalid(tx, "a control character (CR, NUL, ...) "
		    "in its status line");
	default:
		return answer_invalid(tx, "a status line that is not "
		    "\"HTTP/1.x NNN reason\"");
	}
	if (code == 101)
		return answer_invalid(tx, "101 Switching Protocols (ringlb "
		    "does not forward protocol upgrades)");
	if (code < 100 || code > 599)
		return answer_invalid(tx, "status %d (a final one is "
		    "200-599)", code);
	/* A new status line: drop what an interim 1xx block left. */
	tx->want_status = 0;
	tx->rlen = 0;
	tx->saw_te = tx->saw_conn = tx->saw_clen = 0;
	tx->status = code;
	if (rl >= sizeof(tx->reason))
		rl = sizeof(tx->reason) - 1;
	memcpy(tx->reason, reason, rl);
	tx->reason[rl] = '\0';
	return n;
}

/*
 * A header line, checked before it is kept: a token for a name, right
 * before its colon; a value with no control character; no folded line.
 * The framing libcurl reads the body by must be the one the client is
 * told: one Content-Length that is a number, or one Transfer-Encoding
 * that is chunked, not both (checked at the block's end).  Any other
 * transfer coding is refused too: libcurl would hand the coded bytes over
 * as the body, and Transfer-Encoding is hop-by-hop, so the client would
 * never learn of the coding.
 */
static size_t
header_line(struct proxy_tx *tx, const char *data, size_t len, size_t n)
{
	const char *colon, *v;
	size_t nl, vl;
	int64_t clen;

	if (data[0] == ' ' || data[0] == '\t')
		return answer_invalid(tx, "a folded header line (obs-fold)");
	if ((colon = memchr(data, ':', len)) == NULL ||
	    !header_name_valid(data, (size_t)(colon - data)))
		return answer_invalid(tx, "a header name that is not a token");
	nl = (size_t)(colon - data);
	v = colon + 1;
	vl = len - nl - 1;
	while (vl > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		vl--;
	}
	while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
		vl--;
	if (!header_value_valid(v, vl))
		return answer_invalid(tx, "a control character (CR, NUL, ...) "
		    "in the value of %.*s", (int)(nl < 48 ? nl : 48), data);
	if (HEADER_IS(data, nl, "Content-Length")) {
		if (tx->saw_clen)
			return answer_invalid(tx, "duplicate header line "
			    "Content-Length");
		if (header_content_length(v, vl, &clen) == -1)
			return answer_invalid(tx, "a Content-Length that is not "
			    "a number");
		tx->saw_clen = 1;
	} else if (header_hop_by_hop(data, nl)) {
		if (HEADER_IS(data, nl, "Transfer-Encoding")) {
			if (tx->saw_te)
				return answer_invalid(tx, "duplicate header "
				    "line Transfer-Encoding");
			if (!HEADER_IS(v, vl, "chunked"))
				return answer_invalid(tx, "a Transfer-Encoding "
				    "other than chunked");
			tx->saw_te = 1;
		}
		/* kept until the block ends: see drop_connection_named() */
		if (HEADER_IS(data, nl, "Connection"))
			tx->saw_conn = 1;
		else
			return n;
	}
	if (rhead_add(tx, data, nl, v, vl) == -1)
		return 0;
	return n;
}

/*
 * The replica's status line and header lines, one a call, each checked
 * before anything of the answer goes to the client (status_line,
 * header_line): an answer that fails a check is a 502.
 */
static size_t
header_cb(char *data, size_t size, size_t nitems, void *arg)
{
	struct proxy_tx *tx = arg;
	size_t n = size * nitems, len = n;

	if (tx->started)
		return n;			/* trailers: not passed on */
	tx->head_bytes += n;
	if (tx->head_bytes > tx->px->cfg->max_response_header) {
		snprintf(tx->abort_why, sizeof(tx->abort_why), "its response "
		    "headers exceed %llu bytes (--max-response-header)",
		    (unsigned long long)tx->px->cfg->max_response_header);
		return 0;		/* ends the transfer */
	}
	/* one line end, CRLF or LF: any other CR is a bare one */
	if (len > 0 && data[len - 1] == '\n')
		len--;
	if (len > 0 && data[len - 1] == '\r')
		len--;
	if (tx->want_status)
		return status_line(tx, data, len, n);
	if (len > 0)
		return header_line(tx, data, len, n);
	/* the end of a header block */
	if (tx->status < 200) {
		tx->want_status = 1;	/* an interim answer's */
		return n;
	}
	if (tx->saw_clen && tx->saw_te)
		return answer_invalid(tx, "both Content-Length and "
		    "Transfer-Encoding");
	start_reply(tx);
	return n;
}

/* Take tx off px->heads. */
static void
tx_unhead(struct proxy_tx *tx)
{
	struct proxy_tx **pp;

	tx->head_ready = 0;
	for (pp = &tx->px->heads; *pp != NULL; pp = &(*pp)->head_next)
		if (*pp == tx) {
			*pp = tx->head_next;
			break;
		}
	tx->head_next = NULL;
}

/* Hand what tx->chunk holds (a head, body bytes) to evhttp. */
static void
tx_push(struct proxy_tx *tx)
{
	if (tx->head_ready)
		tx_unhead(tx);
	if (evbuffer_get_length(tx->chunk) > 0)
		evhttp_send_reply_chunk_with_cb(tx->req, tx->chunk,
		    client_drained, tx);
}

/* libcurl is done with an event: heads still waiting for a body go. */
static void
proxy_push_heads(void *arg)
{
	struct proxy *px = arg;

	while (px->heads != NULL)
		tx_push(px->heads);
}

/* The client's output buffer drained: let the replica's bytes flow. */
static void
client_drained(struct evhttp_connection *evcon, void *arg)
{
	struct proxy_tx *tx = arg;

	(void)evcon;
	if (tx->paused) {
		tx->paused = 0;
		curl_easy_pause(tx->easy, CURLPAUSE_CONT);
	}
}

/*
 * Are the answers held for all clients together past
 * --max-response-memory?  Then a transfer whose client has bytes still
 * to take waits for it to take them; one whose client has none still
 * goes on (a piece at a time), so none is starved by the others.
 */
static int
proxy_over_budget(const struct proxy *px)
{
	return px->metrics->clients != NULL &&
	    __atomic_load_n(&px->metrics->clients->answer_bytes,
	    __ATOMIC_RELAXED) >= px->cfg->max_response_memory;
}

/*
 * The replica's body bytes, as curl reads them: passed on, or the transfer
 * paused (curl keeps these bytes) while the client has PROXY_HIGH_WATER
 * to take, or anything to take once the budget is spent; client_drained
 * resumes it.
 */
static size_t
write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct proxy_tx *tx = arg;
	size_t len = size * nmemb, unsent;
	struct bufferevent *bev;

	if (!tx->started) {
		if (tx->status < 200)
			return 0;	/* not HTTP, or a 1xx's body */
		start_reply(tx);
	}
	bev = evhttp_connection_get_bufferevent(tx->evcon);
	if ((unsent = gate_unsent(bev)) > 0 && (unsent >= PROXY_HIGH_WATER ||
	    proxy_over_budget(tx->px))) {
		tx->paused = 1;
		return CURL_WRITEFUNC_PAUSE;
	}
	evbuffer_add(tx->chunk, data, len);
	tx_push(tx);
	return len;
}

/* --- transfers ------------------------------------------------------- */

/* The client is gone: drop the transfer to the replica. */
static void
tx_abandon(struct proxy_tx *tx)
{
	log_debug("client went away during a request to %s", tx->rep->name);
	METRICS_ADD(tx->px->metrics->client_aborts, 1);
	curlev_remove(tx->px->cv, tx->easy);
	route_done(tx->rep, ROUTE_DROPPED);
}

static void
client_closed(struct evhttp_connection *evcon, void *arg)
{
	struct proxy_tx *tx = arg;

	(void)evcon;
	tx_abandon(tx);
	/* libevent has detached the request from the dying connection and
	 * left it to us; finishing it frees it. */
	if (evhttp_request_get_connection(tx->req) == NULL)
		evhttp_send_reply_end(tx->req);
	tx_release(tx);
}

/* Has the client's connection been reset?  (Not: has it sent its FIN.) */
static int
tx_gone(evutil_socket_t fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == -1)
		return 0;	/* cannot tell: a write will */
	return ti.tcpi_state == TCP_CLOSE;
}

/* Watch the client's socket again after ms milliseconds. */
static void
tx_watch_later(struct proxy_tx *tx, long ms)
{
	struct timeval after = { 0, ms * 1000 };

	event_assign(tx->hangup, tx->px->base, -1, 0, tx_watch_hangup, tx);
	event_add(tx->hangup, &after);
}

/*
 * The client's socket has input, EOF or an error while the request is
 * open.  Only a reset ends the request: input and EOF stay readable, so
 * the socket is looked at again every HANGUP_POLL_MS instead.
 */
static void
client_hangup(evutil_socket_t fd, short what, void *arg)
{
	struct proxy_tx *tx = arg;
	struct evhttp_connection *evcon = tx->evcon;

	(void)what;
	if (!tx_gone(fd)) {
		tx_watch_later(tx, HANGUP_POLL_MS);
		return;
	}
	tx_abandon(tx);
	tx_release(tx);
	/* frees the request with it */
	evhttp_connection_set_closecb(evcon, NULL, NULL);
	evhttp_connection_free(evcon);
}

/*
 * Is the request safe to send again, after the replica may have taken it?
 * Only without a body, and with a method that means the same done twice:
 * a request with a body is never sent twice (nor a POST or PATCH).
 */
static int
tx_resendable(const struct proxy_tx *tx)
{
	return tx->idempotent && !tx->has_body;
}

/*
 * libcurl calls this each time it is about to send the request on a
 * connection: once, and again whenever a reused connection died after the
 * request was written but before any byte of an answer came, as libcurl
 * then sends the request again on a new connection, whatever its method
 * (Curl_retry_request).  The replica may have taken it the first time: a
 * request that is not safe to repeat ends here instead, and its client
 * gets a 502 (tx_finish); one that is goes again, counted as a retry.
 */
static int
prereq_cb(void *arg, char *ip, char *local_ip, int port, int local_port)
{
	struct proxy_tx *tx = arg;

	(void)ip;
	(void)local_ip;
	(void)port;
	(void)local_port;
	if (tx->sends++ == 0)
		return CURL_PREREQFUNC_OK;
	if (tx_resendable(tx)) {
		METRICS_ADD(tx->px->metrics->retries, 1);
		return CURL_PREREQFUNC_OK;
	}
	snprintf(tx->abort_why, sizeof(tx->abort_why), "the connection "
	    "closed after the request was sent, before any answer; a %s is "
	    "never sent twice", tx->has_body ? "request with a body" :
	    "POST or PATCH");
	return CURL_PREREQFUNC_ABORT;
}

static struct proxy_tx *
tx_get(struct proxy *px)
{
	struct proxy_tx *tx = px->free_list;

	if (tx != NULL) {
		px->free_list = tx->next;
		if (--px->nfree < px->free_min)
			px->free_min = px->nfree;
	} else {
		if ((tx = calloc(1, sizeof(*tx))) == NULL)
			return NULL;
		tx->px = px;
		if ((tx->easy = curl_easy_init()) == NULL ||
		    (tx->chunk = evbuffer_new()) == NULL ||
		    (tx->hangup = event_new(px->base, -1, 0, client_hangup,
		    tx)) == NULL) {
			curl_easy_cleanup(tx->easy);
			if (tx->chunk != NULL)
				evbuffer_free(tx->chunk);
			free(tx);
			return NULL;
		}
		curlev_prepare(px->cv, tx->easy);
		curl_easy_setopt(tx->easy, CURLOPT_PRIVATE, tx);
		curl_easy_setopt(tx->easy, CURLOPT_WRITEFUNCTION, write_cb);
		curl_easy_setopt(tx->easy, CURLOPT_WRITEDATA, tx);
		curl_easy_setopt(tx->easy, CURLOPT_HEADERFUNCTION, header_cb);
		curl_easy_setopt(tx->easy, CURLOPT_HEADERDATA, tx);
		curl_easy_setopt(tx->easy, CURLOPT_PREREQFUNCTION, prereq_cb);
		curl_easy_setopt(tx->easy, CURLOPT_PREREQDATA, tx);
		curl_easy_setopt(tx->easy, CURLOPT_ERRORBUFFER, tx->errbuf);
		curl_easy_setopt(tx->easy, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(tx->easy, CURLOPT_TCP_NODELAY, 1L);
		/* what curl hands write_cb at once, with an evbuffer chain's
		 * own header, fits a 16 KiB allocation (16 KiB would take 32) */
		curl_easy_setopt(tx->easy, CURLOPT_BUFFERSIZE,
		    PROXY_READ_SIZE);
		curl_easy_setopt(tx->easy, CURLOPT_HTTP_VERSION,
		    CURL_HTTP_VERSION_1_1);
		curl_easy_setopt(tx->easy, CURLOPT_PROTOCOLS_STR, "http");
		/* replicas are reached directly: no proxy, and so no look at
		 * the *_proxy and no_proxy environment variables (getenv,
		 * twice each) on every request */
		curl_easy_setopt(tx->easy, CURLOPT_PROXY, "");
		curl_easy_setopt(tx->easy, CURLOPT_NOPROXY, "*");
		curl_easy_setopt(tx->easy, CURLOPT_CONNECTTIMEOUT_MS,
		    px->cfg->connect_timeout_ms);
		curl_easy_setopt(tx->easy, CURLOPT_TIMEOUT_MS,
		    px->cfg->timeout_ms);
	}
	tx->prev = NULL;
	tx->next = px->active;
	if (px->active != NULL)
		px->active->prev = tx;
	px->active = tx;
	METRICS_ADD(px->nactive, 1);
	return tx;
}

static void
tx_destroy(struct proxy_tx *tx)
{
	curl_easy_cleanup(tx->easy);
	evbuffer_free(tx->chunk);
	event_free(tx->hangup);
	free(tx->scratch);
	free(tx->hbuf);
	free(tx->hnodes);
	free(tx->rhead);
	free(tx->key);
	free(tx);
}

/* Unlink from the active list and keep (or free) for reuse. */
static void
tx_release(struct proxy_tx *tx)
{
	struct proxy *px = tx->px;

	if (tx->prev != NULL)
		tx->prev->next = tx->next;
	else
		px->active = tx->next;
	if (tx->next != NULL)
		tx->next->prev = tx->prev;
	METRICS_ADD(px->nactive, -1);

	if (tx->watching) {
		event_del(tx->hangup);
		tx->watching = 0;
	}
	if (tx->head_ready)
		tx_unhead(tx);
	if (tx->view != NULL)
		route_view_release(tx->view);
	tx->view = NULL;
	tx->rep = NULL;
	evbuffer_drain(tx->chunk, evbuffer_get_length(tx->chunk));
	tx->req = NULL;
	tx->evcon = NULL;
	tx->started = tx->paused = tx->saw_te = tx->saw_conn = 0;
	tx->status = 0;
	tx->why[0] = '\0';
	if (px->nfree >= PROXY_FREE_MAX) {
		tx_destroy(tx);
		return;
	}
	tx->next = px->free_list;
	px->free_list = tx;
	px->nfree++;
	px->trimmed = 0;
	if (!event_pending(px->shrink, EV_TIMEOUT, NULL)) {
		struct timeval tv = { PROXY_SHRINK_MS / 1000,
		    PROXY_SHRINK_MS % 1000 * 1000 };

		px->free_min = px->nfree;
		evtimer_add(px->shrink, &tv);
	}
}

/*
 * Idle transfers are kept for the requests to come, up to PROXY_FREE_MAX
 * (after a burst of a thousand slow downloads, a thousand).  Those that
 * stayed unused for a whole PROXY_SHRINK_MS are freed, down to
 * PROXY_FREE_KEEP, and the memory handed back; so is, once, what the
 * last requests' connections left free when the proxy falls idle (glibc
 * keeps freed pages of a thread's arena otherwise).
 */
static void
proxy_shrink(evutil_socket_t fd, short what, void *arg)
{
	struct proxy *px = arg;
	struct timeval tv = { PROXY_SHRINK_MS / 1000,
	    PROXY_SHRINK_MS % 1000 * 1000 };
	struct proxy_tx *tx;
	unsigned n = 0;

	(void)fd;
	(void)what;
	while (px->free_min > PROXY_FREE_KEEP && px->nfree > PROXY_FREE_KEEP &&
	    (tx = px->free_list) != NULL) {
		px->free_list = tx->next;
		px->nfree--;
		px->free_min--;
		tx_destroy(tx);
		n++;
	}
	if (n > 0 || (px->nactive == 0 && !px->trimmed)) {
		malloc_trim(0);
		px->trimmed = 1;
	}
	px->free_min = px->nfree;
	if (px->nfree > PROXY_FREE_KEEP || !px->trimmed)
		evtimer_add(px->shrink, &tv);
}

/*
 * Point the easy handle at tx->rep and hand it to the multi.
 * The replica's URL comes parsed (rep->url), and the client's request
 * target goes as it came (CURLOPT_REQUEST_TARGET), less a fragment, as a
 * URL would have sent it: libcurl parses no URL per request.
 */
static int
tx_launch(struct proxy_tx *tx)
{
	struct route_member *rep = tx->rep;
	const char *uri = evhttp_request_get_uri(tx->req);
	const char *hash = strchr(uri, '#');

	if (hash != NULL) {
		size_t ul = (size_t)(hash - uri);

		if (scratch_reserve(tx, ul + 1) == -1)
			return -1;
		memcpy(tx->scratch, uri, ul);
		tx->scratch[ul] = '\0';
		uri = tx->scratch;
	}
	/* curl copies the target */
	curl_easy_setopt(tx->easy, CURLOPT_CURLU, rep->url);
	curl_easy_setopt(tx->easy, CURLOPT_REQUEST_TARGET, uri);
	tx->errbuf[0] = '\0';
	tx->abort_why[0] = '\0';
	tx->status = 0;
	tx->head_bytes = 0;
	tx->rlen = 0;
	tx->want_status = 1;
	tx->saw_te = tx->saw_conn = tx->saw_clen = tx->invalid = 0;
	tx->sends = 0;
	return curlev_add(tx->px->cv, tx->easy);
}

static int
tx_setup(struct proxy_tx *tx, const char *request_id)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(tx->req);
	struct evbuffer *body = evhttp_request_get_input_buffer(tx->req);
	size_t blen = evbuffer_get_length(body);
	const char *method = NULL;
	CURL *e = tx->easy;
	int posting = 0;

	switch (cmd) {
	case EVHTTP_REQ_GET:     method = "GET"; break;
	case EVHTTP_REQ_HEAD:    method = "HEAD"; break;
	case EVHTTP_REQ_POST:    method = "POST"; break;
	case EVHTTP_REQ_PUT:     method = "PUT"; break;
	case EVHTTP_REQ_DELETE:  method = "DELETE"; break;
	case EVHTTP_REQ_OPTIONS: method = "OPTIONS"; break;
	case EVHTTP_REQ_PATCH:   method = "PATCH"; break;
	default:
		return -1;
	}
	tx->idempotent = cmd != EVHTTP_REQ_POST && cmd != EVHTTP_REQ_PATCH;
	tx->has_body = blen > 0;

	/* Reset what an earlier request on this handle may have set. */
	curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
	if (cmd == EVHTTP_REQ_HEAD)
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	else if (blen > 0 || cmd == EVHTTP_REQ_POST ||
	    cmd == EVHTTP_REQ_PUT || cmd == EVHTTP_REQ_PATCH) {
		posting = 1;
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)blen);
		/* the request, and so its body, outlives the transfer */
		curl_easy_setopt(e, CURLOPT_POSTFIELDS,
		    blen ? (char *)evbuffer_pullup(body, -1) : "");
		if (cmd != EVHTTP_REQ_POST)
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	} else if (cmd != EVHTTP_REQ_GET)
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);

	if (build_request_headers(tx, request_id, posting) == -1)
		return -1;
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdr_finish(tx));
	return 0;
}

/* The request has been open a while: watch its client for a hang-up. */
static void
tx_watch_hangup(evutil_socket_t fd, short what, void *arg)
{
	struct proxy_tx *tx = arg;

	(void)fd;
	(void)what;
	fd = bufferevent_getfd(evhttp_connection_get_bufferevent(tx->evcon));
	if (fd == -1)
		return;
	/* a reset is reported as EV_READ|EV_WRITE, a FIN as EV_CLOSED */
	event_assign(tx->hangup, tx->px->base, fd, EV_READ | EV_CLOSED,
	    client_hangup, tx);
	event_add(tx->hangup, NULL);
}

/*
 * Most requests are answered in a few milliseconds, and watching a socket
 * costs two epoll_ctl(2) calls: the watch starts only once a request has
 * been open for HANGUP_WATCH_MS.  Nor does each request arm a timer of
 * its own: one timer, running while requests are open, looks every
 * HANGUP_SWEEP_MS for those that have been open that long.
 */
static void
proxy_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct proxy *px = arg;
	struct timeval tv = { 0, HANGUP_SWEEP_MS * 1000 };
	uint64_t due = now_ns() - (uint64_t)HANGUP_WATCH_MS * 1000000;
	struct proxy_tx *tx;

	(void)fd;
	(void)what;
	for (tx = px->active; tx != NULL; tx = tx->next)
		if (!tx->watching && tx->start_ns <= due) {
			tx->watching = 1;
			tx_watch_hangup(-1, 0, tx);
		}
	px->sweeping = px->active != NULL;
	if (px->sweeping)
		evtimer_add(px->sweep, &tv);
}

static void
tx_arm_hangup(struct proxy_tx *tx)
{
	struct proxy *px = tx->px;
	struct timeval tv = { 0, HANGUP_SWEEP_MS * 1000 };

	if (!px->sweeping) {
		px->sweeping = 1;
		evtimer_add(px->sweep, &tv);
	}
}

/* Keep the request's key, for a retry's choice. */
static int
tx_keep_key(struct proxy_tx *tx, const char *key, size_t len)
{
	char *k;

	if (len > tx->kcap) {
		if ((k = realloc(tx->key, len)) == NULL)
			return -1;
		tx->key = k;
		tx->kcap = len;
	}
	memcpy(tx->key, key, len);
	tx->klen = len;
	return 0;
}

/*
 * Route to the member for key: counted in flight, with the view it was
 * chosen in, or NULL (answered).
 */
static struct route_member *
proxy_pick(struct proxy *px, struct evhttp_request *req,
    struct route_view **view, const char *key, size_t klen)
{
	struct route_member *m;
	struct route_view *v;
	int displaced;

	m = route_inbox_pick(px->routes, key, klen, px->cfg->balance_factor,
	    NULL, &displaced, view);
	v = *view;
	if (m != NULL) {
		METRICS_ADD(px->metrics->displaced, (unsigned)displaced);
		return m;
	}
	respond_error(req, 503, "no replica is available: none is answering "
	    "heartbeats; GET /rep lists them, %s", v && v->table->replaces ?
	    "POST /add starts more" : "and ringlb takes each back as soon as "
	    "it answers");
	return NULL;
}

void
proxy_forward(struct proxy *px, struct evhttp_request *req,
    const char *key, size_t klen, const char *request_id)
{
	struct route_view *v;
	struct route_member *m;
	struct proxy_tx *tx;

	if ((m = proxy_pick(px, req, &v, key, klen)) == NULL)
		return;
	if ((tx = tx_get(px)) == NULL || tx_keep_key(tx, key, klen) == -1) {
		route_done(m, ROUTE_DROPPED);
		if (tx != NULL)
			tx_release(tx);
		respond_error(req, 500, "ringlb is out of memory");
		return;
	}
	tx->req = req;
	tx->evcon = evhttp_request_get_connection(req);
	tx->view = v;
	route_view_hold(v);
	tx->rep = m;
	tx->start_ns = now_ns();
	tx->attempt = 0;
	if (tx_setup(tx, request_id) == -1) {
		respond_error(req, 500, "ringlb could not set up the request "
		    "to the replica (out of memory)");
		route_done(m, ROUTE_DROPPED);
		tx_release(tx);
		return;
	}
	if (tx_launch(tx) == -1) {
		respond_error(req, 500, "ringlb could not start the request "
		    "to the replica");
		route_done(m, ROUTE_DROPPED);
		tx_release(tx);
		return;
	}
	evhttp_connection_set_closecb(tx->evcon, client_closed, tx);
	if (px->early_close)
		tx_arm_hangup(tx);
}

/*
 * What a failed transfer says about its replica, decided once from
 * libcurl's code (and whether the connection was made): whether to
 * suspect the replica, retry elsewhere, and which status to answer all
 * follow from it.
 */
enum upstream_failure {
	UF_UNREACHED,		/* could not connect: refused, no route */
	UF_CONNECT_TIMEOUT,	/* could not connect in time */
	UF_SLOW,		/* connected, then ran out of time */
	UF_DROPPED,		/* the connection broke; it may have seen it */
	UF_GARBLED,		/* an answer that is not HTTP/1.x, or cut */
	UF_REQUEST,		/* the request cannot be sent at all */
	UF_OTHER
};

static enum upstream_failure
upstream_failure(CURLcode rc, int connected)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
		return UF_UNREACHED;
	case CURLE_OPERATION_TIMEDOUT:
		return connected ? UF_SLOW : UF_CONNECT_TIMEOUT;
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
		return UF_DROPPED;
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_UNSUPPORTED_PROTOCOL:	/* not HTTP/1.x at all */
	case CURLE_PARTIAL_FILE:
		return UF_GARBLED;
	case CURLE_URL_MALFORMAT:
		return UF_REQUEST;
	default:
		return UF_OTHER;
	}
}

/* May this failure be retried on the next replica? */
static int
tx_retryable(struct proxy_tx *tx, enum upstream_failure uf)
{
	if (tx->started || tx->attempt + 1 >= PROXY_ATTEMPTS)
		return 0;
	switch (uf) {
	case UF_UNREACHED:
	case UF_CONNECT_TIMEOUT:
		/* it never saw the request, unless it was sent on a pooled
		 * connection first (prereq_cb) */
		if (tx->sends > 0)
			return tx_resendable(tx);
		return !tx->has_body || tx->idempotent;
	case UF_DROPPED:
		/* the replica may have seen the request: only if harmless */
		return tx_resendable(tx);
	default:
		return 0;
	}
}

/* Append "replica 'a' (host:port): what" to the failure story. */
static void
tx_note_failure(struct proxy_tx *tx, CURLcode rc)
{
	struct route_member *rep = tx->rep;
	size_t n = strlen(tx->why);

	snprintf(tx->why + n, sizeof(tx->why) - n, "%sreplica '%s' (%s:%u): "
	    "%s", n ? "; then " : "", rep->name, rep->host,
	    (unsigned)rep->port, tx->abort_why[0] ? tx->abort_why :
	    tx->errbuf[0] ? tx->errbuf : curl_easy_strerror(rc));
}

/*
 * Send the request again, to the next replica of the key on the newest
 * table: one that left the ring meanwhile is not chosen.  The transfer
 * holds that table from then on.  0, or -1 with tx as it was.
 */
static int
tx_retry(struct proxy_tx *tx)
{
	struct proxy *px = tx->px;
	struct route_view *v;
	struct route_member *failed = tx->rep, *next;
	int displaced;

	if ((next = route_inbox_pick(px->routes, tx->key, tx->klen,
	    px->cfg->balance_factor, failed, &displaced, &v)) == NULL)
		return -1;
	route_view_hold(v);
	tx->rep = next;
	tx->attempt++;
	evhttp_clear_headers(evhttp_request_get_output_headers(tx->req));
	if (tx_launch(tx) == -1) {
		route_done(next, ROUTE_DROPPED);
		route_view_release(v);
		tx->rep = failed;
		tx->attempt--;
		return -1;
	}
	METRICS_ADD(px->metrics->retries, 1);
	route_view_release(tx->view);
	tx->view = v;
	return 0;
}

/* A transfer ended (curlev_done_cb): answer, retry or report. */
static void
tx_done(CURL *easy, CURLcode rc, void *arg)
{
	struct proxy_tx *tx;

	(void)arg;
	curl_easy_getinfo(easy, CURLINFO_PRIVATE, &tx);
	tx_finish(tx, rc);
}

static void
tx_finish(struct proxy_tx *tx, CURLcode rc)
{
	struct proxy *px = tx->px;
	struct route_member *rep = tx->rep;
	enum upstream_failure uf;
	curl_off_t connect_us = 0;
	int code;

	/* a transfer that ended without a status line answered nothing */
	if (rc == CURLE_OK && !tx->started && tx->status < 200) {
		rc = CURLE_WEIRD_SERVER_REPLY;
		snprintf(tx->errbuf, sizeof(tx->errbuf), "no HTTP answer");
	}
	if (rc == CURLE_OK) {
		route_done(rep, ROUTE_ANSWERED);
		if (!tx->started)
			start_reply(tx);
		tx_push(tx);
		tx_observe(tx, tx->status);
		evhttp_connection_set_closecb(tx->evcon, NULL, NULL);
		evhttp_send_reply_end(tx->req);
		tx_release(tx);
		return;
	}

	route_done(rep, ROUTE_FAILED);
	/* libcurl keeps one line of a head in a buffer of at most
	 * CURL_MAX_HTTP_HEADER bytes, and says "out of memory" for a longer
	 * one, without a word in the error buffer */
	if (rc == CURLE_OUT_OF_MEMORY && !tx->started && tx->sends > 0 &&
	    tx->abort_why[0] == '\0' && tx->errbuf[0] == '\0')
		answer_invalid(tx, "a line of its head is longer than %d "
		    "bytes, libcurl's limit (or ringlb ran out of memory)",
		    CURL_MAX_HTTP_HEADER);
	curl_easy_getinfo(tx->easy, CURLINFO_CONNECT_TIME_T, &connect_us);
	if (tx->invalid)
		uf = UF_GARBLED;	/* refused by header_cb */
	else if (rc == CURLE_ABORTED_BY_CALLBACK && tx->sends > 1)
		uf = UF_DROPPED;	/* not sent again: prereq_cb */
	else
		/* connected: a connect time, or a request on its way; a
		 * pooled connection has no connect time of its own, and a
		 * timeout on it is a slow replica, not an unreachable one */
		uf = upstream_failure(rc, connect_us > 0 || tx->sends > 0);
	tx_note_failure(tx, rc);
	/* once an answer, with the replica's name: a replica that answers
	 * badly is a fault to fix, not a passing network failure */
	if (uf == UF_GARBLED && rc != CURLE_PARTIAL_FILE && !tx->started)
		log_warnx("replica '%s' sent an answer ringlb does not pass on "
		    "(the client gets a 502): %s", rep->name, tx->why);
	else
		log_debug("request to %s failed: %s", rep->name, tx->why);
	/* broken or misbehaving (not merely slow): have it checked now */
	if (uf == UF_UNREACHED || uf == UF_CONNECT_TIMEOUT ||
	    uf == UF_DROPPED || uf == UF_GARBLED)
		route_suspect(rep);
	if (tx_retryable(tx, uf) && tx_retry(tx) == 0)
		return;

	evhttp_connection_set_closecb(tx->evcon, NULL, NULL);
	if (tx->started) {
		/*
		 * The status line is gone: all that is left is to cut the
		 * connection, so the client sees a truncated answer rather
		 * than a short one it takes for whole.
		 */
		struct bufferevent *bev =
		    evhttp_connection_get_bufferevent(tx->evcon);

		log_debug("cutting off a client mid-answer: %s", tx->why);
		tx_push(tx);
		tx_observe(tx, tx->status);
		/* what the replica did send still goes out, as far as the
		 * socket takes it at once, before the connection closes */
		gate_flush_now(bev);
		evhttp_connection_free(tx->evcon);
		tx_release(tx);
		return;
	}
	evhttp_clear_headers(evhttp_request_get_output_headers(tx->req));
	code = uf == UF_SLOW || uf == UF_CONNECT_TIMEOUT ? 504 :
	    uf == UF_REQUEST ? 400 : 502;
	tx_observe(tx, code);
	if (code == 504)
		respond_error(tx->req, code, "the replica did not answer in "
		    "time (connect timeout %ld ms, total %ld ms; see "
		    "--connect-timeout and --timeout): %s",
		    px->cfg->connect_timeout_ms, px->cfg->timeout_ms, tx->why);
	else if (code == 400)
		respond_error(tx->req, code, "the request URI cannot be "
		    "forwarded: %s", tx->why);
	else
		respond_error(tx->req, code, "no replica could answer: %s",
		    tx->why);
	tx_release(tx);
}

/* --- setup ----------------------------------------------------------- */

struct proxy *
proxy_new(struct event_base *base, const struct config *cfg,
    struct route_inbox *routes, struct metrics *metrics, int share,
    char *err, size_t errlen)
{
	struct proxy *px;

	if ((px = calloc(1, sizeof(*px))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	px->base = base;
	px->cfg = cfg;
	px->routes = routes;
	px->metrics = metrics;
	px->early_close = (event_base_get_features(base) &
	    EV_FEATURE_EARLY_CLOSE) != 0;
	if ((px->sweep = evtimer_new(base, proxy_sweep, px)) == NULL ||
	    (px->shrink = evtimer_new(base, proxy_shrink, px)) == NULL) {
		if (px->sweep != NULL)
			event_free(px->sweep);
		snprintf(err, errlen, "out of memory");
		free(px);
		return NULL;
	}
	if ((px->cv = curlev_new(base, tx_done, px)) == NULL) {
		snprintf(err, errlen, "cannot set up libcurl");
		proxy_free(px);
		return NULL;
	}
	curlev_set_after(px->cv, proxy_push_heads, px);
	curlev_own_closes(px->cv);
	/* --upstream-connections is for all workers: each keeps its share */
	curl_multi_setopt(curlev_multi(px->cv), CURLMOPT_MAXCONNECTS,
	    cfg->upstream_maxconns / share > 0 ?
	    cfg->upstream_maxconns / share : 1L);
	return px;
}

void
proxy_free(struct proxy *px)
{
	struct proxy_tx *tx;

	if (px == NULL)
		return;
	while ((tx = px->active) != NULL) {
		curlev_remove(px->cv, tx->easy);
		if (tx->evcon != NULL)
			evhttp_connection_set_closecb(tx->evcon, NULL, NULL);
		route_done(tx->rep, ROUTE_DROPPED);
		tx_release(tx);
	}
	while ((tx = px->free_list) != NULL) {
		px->free_list = tx->next;
		tx_destroy(tx);
	}
	curlev_free(px->cv);
	if (px->sweep != NULL)
		event_free(px->sweep);
	if (px->shrink != NULL)
		event_free(px->shrink);
	free(px);
}

unsigned
proxy_inflight(const struct proxy *px)
{
	return __atomic_load_n(&px->nactive, __ATOMIC_RELAXED);
}
