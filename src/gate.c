/*
 * gate.c - every client connection passes through here before evhttp.
 *
 * evhttp (libevent 2.1) answers what it cannot parse with HTML pages of
 * its own, and has no limit on connections or on the time a request may
 * take to arrive.  So each connection it accepts gets, through
 * evhttp_set_bevcb, a filtering bufferevent over the socket.  Its input
 * side reads each request head line by line, checks it, and passes it on
 * only when it is whole and good; bodies then pass as they come, a
 * Content-Length body as it is, a chunked one framed anew (its data in
 * large chunks, see gate_chunks_pass; its trailer as it came).  What
 * evhttp would refuse is refused here first, with the spec's JSON error and
 * Connection: close, after the answers to earlier pipelined requests.
 *
 * Its output side moves evhttp's bytes to the socket as soon as they are
 * written, and tells evhttp its write is done only once the kernel has
 * them all: the filter's own notion (done once the bytes reach the socket's
 * buffer) would let evhttp close a connection with its answer unsent.
 *
 * Time: a connection has at most one timer.  While evhttp holds a request
 * of it, none runs (the replica's timeout applies); otherwise the head of
 * a request must arrive within --header-timeout of its first byte (or of
 * the connection opening), its body within --client-timeout, and an idle
 * keep-alive connection is closed after --keepalive-timeout.
 *
 * End of input: a client may shut down its sending side once its requests
 * are out (a half-close) and still read the answers.  evhttp would take
 * the socket's EOF for a hang-up and drop them, so while it holds requests
 * of the connection the EOF is kept from it, and the connection closed
 * once they are answered.  A reset reaches evhttp at once.
 *
 * Memory: evhttp holds a request's whole body until its answer is out.
 * The bodies held by all connections together are bounded by
 * --max-body-memory: body bytes count from the moment they are read, a
 * request whose body cannot fit gets a 503 (before its body, when it has a
 * Content-Length), and a body that would cross the bound mid-way is cut
 * off with one.  Bytes go on to evhttp in BODY_UNIT pieces, not as read:
 * evhttp keeps the buffers it is given, and a socket read's buffer is
 * twice the bytes it holds; a chunked body's data is copied into full
 * buffers first, so that 1-byte chunks cost what they hold.  After large
 * bodies are freed the allocator is asked to give the memory back.
 */
#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "config.h"
#include "gate.h"
#include "headers.h"
#include "log.h"
#include "respond.h"
#include "util.h"

#define TARGET_MAX	8192	/* longest request target: 414 beyond */
#define HEADER_LINES_MAX 256	/* header lines in one head: 431 beyond */
#define CHUNK_LINE_MAX	1024	/* a chunk-size line */
#define LINGER_SECONDS	2	/* input still read after a refusal */
#define OVER_MAX	256	/* connections past the limit being answered,
				   all workers together */
#define BODY_UNIT	(64 * 1024)	/* body bytes passed on at once */
#define TRIM_BYTES	(1024 * 1024)	/* freed bodies that call for a trim */
#define TRIM_DELAY_MS	50		/* after they are freed */

const int gate_codes[GATE_CODES] = {
	400, 405, 408, 413, 414, 417, 431, 503, 505
};

enum gate_state {
	GATE_HEAD,		/* reading a request head */
	GATE_BODY,		/* passing on Content-Length bytes */
	GATE_CHUNK_SIZE,	/* a chunk-size line, or the CRLF after data */
	GATE_CHUNK_DATA,
	GATE_TRAILER,		/* trailer lines after the last chunk */
	GATE_REFUSED		/* answered with an error; input discarded */
};

enum gate_timer {
	GATE_T_NONE,
	GATE_T_HEAD,
	GATE_T_BODY,
	GATE_T_IDLE,
	GATE_T_REFUSE,		/* a refusal to send now (connection limit) */
	GATE_T_CLOSE,		/* close now (connection limit, a flood) */
	GATE_T_LINGER
};

struct gate {
	struct event_base	*base;
	const struct config	*cfg;
	struct gate_conn	**byfd;		/* connections by socket */
	size_t			 nbyfd;
	unsigned		 live;		/* connections not yet freed */
	int			 freed;		/* gate_free called */
	char			*line;		/* one head line, NUL-ended */
	const char		*name;		/* the server, in messages */
	struct event		*trim;		/* malloc_trim, deferred */
	uint64_t		 untrimmed;	/* body bytes freed since */
	struct gate_conn	*conns;		/* every connection */
	int			 stopping;	/* gate_stop called */
	struct event		*grace;		/* its --stop-grace */
	struct gate_stats	*stats;		/* shared by the workers' gates */
	void			(*accepted)(void *);	/* gate_on_accept */
	void			(*closed)(void *);
	void			*accepted_arg;
	struct gate_stats	 own;		/* ... or this gate's alone */
};

/*
 * The counts are the process's, shared by every worker's gate: atomic,
 * so that --max-connections and --max-body-memory bound them all.
 */
#define STAT_LOAD(g, f)		__atomic_load_n(&(g)->stats->f, __ATOMIC_RELAXED)
#define STAT_ADD(g, f, n)	__atomic_add_fetch(&(g)->stats->f, (n), \
				    __ATOMIC_RELAXED)
#define STAT_SUB(g, f, n)	__atomic_sub_fetch(&(g)->stats->f, (n), \
				    __ATOMIC_RELAXED)

struct gate_conn {
	struct gate		*g;
	struct gate_conn	*prev, *next;	/* g->conns */
	struct bufferevent	*bev;		/* the filter evhttp uses */
	struct bufferevent	*sock;		/* the socket under it */
	struct evbuffer_cb_entry *out_cb;	/* on bev's output */
	struct evbuffer_cb_entry *sent_cb;	/* on sock's output */
	bufferevent_data_cb	 sock_read;	/* the filter's callbacks */
	bufferevent_data_cb	 sock_write;	/* on sock, and their */
	bufferevent_event_cb	 sock_event;	/* argument */
	void			*sock_arg;
	struct event		*timer;
	struct event		*wev;		/* writes evhttp's output */
	struct event		*keep;		/* see gate_keep_cb */
	unsigned		 kept;		/* its calls since a read */
	enum {
		GATE_W_IDLE,		/* nothing to write */
		GATE_W_SCHEDULED,	/* event_active, this turn */
		GATE_W_WAITING		/* for the socket; timed */
	}			 wstate;
	enum gate_timer		 timer_kind;
	uint64_t		 deadline;	/* of timer_kind, now_ms() */
	uint64_t		 fire_at;	/* the timer's; 0: not set */
	evutil_socket_t		 fd;		/* -1 until evhttp sets it */
	enum gate_state		 state;
	unsigned		 pending;	/* requests with evhttp now */
	unsigned		 served;	/* requests answered */
	size_t			 queued;	/* in bev's output, counted */
	int			 over;		/* past --max-connections */
	int			 eof;		/* the client sends no more */

	/* the request being read */
	size_t			 scanned;	/* head bytes in whole lines */
	size_t			 nolf;		/* input before it has no LF */
	unsigned		 lines;
	int			 method;	/* EVHTTP_REQ_* */
	int			 http11;
	int			 has_host;
	int			 has_te;
	int			 has_cl;
	uint64_t		 clen;
	uint64_t		 left;		/* body or chunk bytes to go */
	uint64_t		 body;		/* chunked body so far */
	size_t			 trailer_len;	/* trailer bytes so far */
	uint64_t		 staged;	/* body bytes read, not passed */
	uint64_t		 held;		/* body bytes counted, all requests */
	struct evbuffer		*chunks;	/* chunk data, not yet passed */

	/* a refusal, waiting for earlier answers to go out */
	int			 err_code;
	char			*err_text;	/* the whole HTTP answer */
	size_t			 err_len;
	int			 err_sent;
};

static const struct {
	const char	*name;
	int		 type;		/* 0: refused with 405 */
} gate_methods[] = {
	{ "GET", EVHTTP_REQ_GET },
	{ "HEAD", EVHTTP_REQ_HEAD },
	{ "POST", EVHTTP_REQ_POST },
	{ "PUT", EVHTTP_REQ_PUT },
	{ "DELETE", EVHTTP_REQ_DELETE },
	{ "OPTIONS", EVHTTP_REQ_OPTIONS },
	{ "PATCH", EVHTTP_REQ_PATCH },
};

static void	gate_timer_cb(evutil_socket_t, short, void *);
static void	gate_send_refusal(struct gate_conn *);
static void	gate_register(struct gate_conn *);
static void	gate_destroy(struct gate *);
static int	gate_idle(const struct gate_conn *);

static const char *
gate_reason(int code)
{
	switch (code) {
	case 400: return "Bad Request";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 417: return "Expectation Failed";
	case 431: return "Request Header Fields Too Large";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

static void
gate_count_refusal(struct gate *g, int code)
{
	int i;

	for (i = 0; i < GATE_CODES; i++)
		if (gate_codes[i] == code)
			STAT_ADD(g, refused[i], 1);
}

/* --- timers ----------------------------------------------------------- */

/*
 * A connection's timer is lazy: the deadline lives in c, and libevent's
 * timer is only moved when it would fire too late.  Each request would
 * otherwise cost an event_del (evhttp takes it) and an event_add (the
 * keep-alive wait after its answer); now the timer fires about once per
 * --keepalive-timeout, finds the deadline moved on, and waits again.
 */
static void
gate_arm(struct gate_conn *c, enum gate_timer kind, long seconds)
{
	struct timeval tv = { seconds, 0 };

	if (c->timer_kind == kind)
		return;			/* a deadline is not moved by bytes */
	c->timer_kind = kind;
	c->deadline = now_ms() + (uint64_t)seconds * 1000;
	if (c->fire_at == 0 || c->fire_at > c->deadline) {
		c->fire_at = c->deadline;
		event_add(c->timer, &tv);
	}
}

/* No deadline; a timer still set finds none when it fires. */
static void
gate_disarm(struct gate_conn *c)
{
	c->timer_kind = GATE_T_NONE;
}

/* Pick the timer for c's state; see the comment at the top. */
static void
gate_retime(struct gate_conn *c)
{
	const struct config *cfg = c->g->cfg;

	if (c->state == GATE_REFUSED || c->eof)
		return;
	if (c->pending > 0)
		gate_disarm(c);
	else if (c->state != GATE_HEAD)
		gate_arm(c, GATE_T_BODY, cfg->client_timeout_s);
	else if (c->lines > 0 || c->served == 0 ||
	    evbuffer_get_length(bufferevent_get_input(c->sock)) > 0)
		gate_arm(c, GATE_T_HEAD, cfg->header_timeout_s);
	else
		gate_arm(c, GATE_T_IDLE, cfg->keepalive_timeout_s);
}

/* Have evhttp close the connection (it frees c with it). */
static void
gate_close(struct gate_conn *c)
{
	gate_disarm(c);
	bufferevent_trigger_event(c->bev, BEV_EVENT_EOF | BEV_EVENT_READING,
	    BEV_TRIG_DEFER_CALLBACKS);
}

/* --- body memory ----------------------------------------------------- */

static void
gate_trim_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gate *g = arg;

	(void)fd;
	(void)what;
	g->untrimmed = 0;
	malloc_trim(0);		/* glibc keeps freed heap pages otherwise */
}

/* n bytes of bodies or answers are freed, or about to be: once there is
 * enough of it, have the allocator give memory back. */
static void
gate_freed(struct gate *g, uint64_t n)
{
	struct timeval tv = { 0, TRIM_DELAY_MS * 1000 };

	if ((g->untrimmed += n) >= TRIM_BYTES && g->trim != NULL &&
	    !event_pending(g->trim, EV_TIMEOUT, NULL))
		event_add(g->trim, &tv);
}

/* c no longer holds n bytes of bodies: they are freed, or about to be. */
static void
gate_release(struct gate_conn *c, uint64_t n)
{
	if (n > c->held)
		n = c->held;
	c->held -= n;
	STAT_SUB(c->g, body_bytes, n);
	gate_freed(c->g, n);
}

/* --- refusals --------------------------------------------------------- */

/*
 * Answer the request being read with code and the spec's JSON error, then
 * close.  Input from here on is read and dropped.  If evhttp still holds
 * earlier requests of this connection, the answer waits for theirs.
 */
static void
gate_refuse(struct gate_conn *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
gate_refuse(struct gate_conn *c, int code, const char *fmt, ...)
{
	char date[64], head[512];
	va_list ap;
	json_t *body;
	char *text;
	size_t blen;
	int hlen;
	time_t now = time(NULL);
	struct tm tm;

	va_start(ap, fmt);
	body = respond_error_body(fmt, ap);
	va_end(ap);
	text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (text == NULL)
		text = strdup("{\"message\":\"<Error> the request was "
		    "refused\",\"status\":\"failure\"}");
	gate_release(c, c->staged);	/* dropped from here on */
	c->staged = 0;
	if (c->chunks != NULL)
		evbuffer_drain(c->chunks, evbuffer_get_length(c->chunks));
	c->state = GATE_REFUSED;
	c->err_code = code;
	gate_count_refusal(c->g, code);
	gate_disarm(c);
	if (text == NULL) {
		gate_close(c);
		return;
	}
	blen = strlen(text) + 1;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	hlen = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\n"
	    "Date: %s\r\nContent-Type: application/json\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n%s%s\r\n", code,
	    gate_reason(code), date, blen,	/* a HEAD's too, without it */
	    code == 405 ? "Allow: " GATE_METHODS "\r\n" : "",
	    code == 503 ? "Retry-After: 1\r\n" : "");
	c->err_len = (size_t)hlen + (c->method == EVHTTP_REQ_HEAD ? 0 : blen);
	if ((c->err_text = malloc(c->err_len + 1)) == NULL) {
		free(text);
		gate_close(c);
		return;
	}
	memcpy(c->err_text, head, (size_t)hlen);
	if (c->method != EVHTTP_REQ_HEAD)
		snprintf(c->err_text + hlen, blen + 1, "%s\n", text);
	free(text);
	log_debug("refused a request with %d", code);
	if (c->pending == 0)
		gate_send_refusal(c);
}

static void
gate_send_refusal(struct gate_conn *c)
{
	c->err_sent = 1;
	evbuffer_add(bufferevent_get_output(c->sock), c->err_text, c->err_len);
}

/*
 * May n more bytes of bodies be held?  If not, the request gets a 503.
 * take: hold them now, counted against the limit in the same atomic step
 * (c->held is the caller's to raise).
 */
static int
gate_budget(struct gate_conn *c, uint64_t n, int take)
{
	uint64_t *stat = &c->g->stats->body_bytes;
	uint64_t used = __atomic_load_n(stat, __ATOMIC_RELAXED);
	uint64_t max = c->g->cfg->max_body_memory;

	while (n <= max - used)
		if (!take || __atomic_compare_exchange_n(stat, &used,
		    used + n, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			return 0;
	gate_refuse(c, 503, "%s holds %llu bytes of request bodies, and "
	    "this one's %llu more would pass its limit of %llu "
	    "(--max-body-memory); try again shortly", c->g->name,
	    (unsigned long long)used,
	    (unsigned long long)n, (unsigned long long)max);
	return -1;
}

/* --- request checks --------------------------------------------------- */

static int
is_tchar(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9') || (ch != '\0' &&
	    strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static int
is_hex(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
	    (ch >= 'A' && ch <= 'F');
}

/* "METHOD TARGET HTTP/1.x"; 0, or -1 when refused. */
static int
gate_request_line(struct gate_conn *c, char *line, size_t len)
{
	char *sp1, *sp2, *target, *version;
	size_t i, mlen;

	if (memchr(line, '\0', len) != NULL) {
		gate_refuse(c, 400, "the request line has a NUL byte");
		return -1;
	}
	while (len > 0 && line[len - 1] == ' ')
		line[--len] = '\0';
	if ((sp1 = memchr(line, ' ', len)) == NULL ||
	    (sp2 = strrchr(line, ' ')) == sp1) {
		gate_refuse(c, 400, "malformed request line; send 'METHOD "
		    "/path HTTP/1.1'");
		return -1;
	}
	mlen = (size_t)(sp1 - line);
	for (i = 0; i < mlen; i++)
		if (!is_tchar((unsigned char)line[i]))
			break;
	if (mlen == 0 || i < mlen) {
		gate_refuse(c, 400, "malformed request line: the method is "
		    "not a token");
		return -1;
	}
	*sp1 = '\0';
	*sp2 = '\0';
	target = sp1 + 1;
	version = sp2 + 1;
	if (*target == '\0' || *target == ' ') {
		gate_refuse(c, 400, "malformed request line: one space between "
		    "the method, the target and the version");
		return -1;
	}
	/* HTTP-version is "HTTP/" DIGIT "." DIGIT, case-sensitive: one of
	 * another number is a 505, anything else (1.11, -1.1, 1.1x) a 400 */
	if (strcmp(version, "HTTP/1.1") == 0)
		c->http11 = 1;
	else if (strcmp(version, "HTTP/1.0") != 0) {
		if (strncmp(version, "HTTP/", 5) == 0 &&
		    version[5] >= '0' && version[5] <= '9' &&
		    version[6] == '.' &&
		    version[7] >= '0' && version[7] <= '9' && version[8] == '\0')
			gate_refuse(c, 505, "HTTP version '%.3s' is not "
			    "supported; use HTTP/1.1 or HTTP/1.0", version + 5);
		else if (strncmp(version, "HTTP/", 5) == 0)
			gate_refuse(c, 400, "malformed request line: the HTTP "
			    "version is not HTTP/1.1 or HTTP/1.0");
		else
			gate_refuse(c, 400, "malformed request line: no "
			    "HTTP version at its end");
		return -1;
	}
	c->method = 0;
	for (i = 0; i < sizeof(gate_methods) / sizeof(gate_methods[0]); i++)
		if (strcmp(line, gate_methods[i].name) == 0)
			c->method = gate_methods[i].type;
	if (c->method == 0) {
		gate_refuse(c, 405, "method %.32s is not supported; %s "
		    "takes %s", line, c->g->name, GATE_METHODS);
		return -1;
	}
	if (strlen(target) > TARGET_MAX) {
		gate_refuse(c, 414, "the request target is %zu bytes; the "
		    "limit is %d", strlen(target), TARGET_MAX);
		return -1;
	}
	for (i = 0; target[i] != '\0'; i++) {
		unsigned char ch = (unsigned char)target[i];

		if (ch <= 0x20 || ch >= 0x7f) {
			gate_refuse(c, 400, "the request target has a space "
			    "or control byte at offset %zu; percent-encode "
			    "it", i);
			return -1;
		}
		if (ch == '%' && (!is_hex((unsigned char)target[i + 1]) ||
		    !is_hex((unsigned char)target[i + 2]))) {
			gate_refuse(c, 400, "bad percent-encoding in the "
			    "request target at offset %zu: '%%' must be "
			    "followed by two hex digits", i);
			return -1;
		}
	}
	/*
	 * What evhttp will parse, parsed first, so that what it refuses is
	 * refused here in JSON.  A path ("/...", not "//...") is never
	 * refused by its lenient parse: only other targets need the trial.
	 */
	if (target[0] != '/' || target[1] == '/') {
		struct evhttp_uri *u = evhttp_uri_parse_with_flags(target,
		    EVHTTP_URI_NONCONFORMANT);

		if (u == NULL) {
			gate_refuse(c, 400, "the request target is not a "
			    "valid URI");
			return -1;
		}
		evhttp_uri_free(u);
	}
	return 0;
}

static int
gate_digits(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (*s == '\0' || strlen(s) > 18)
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

/* "Name: value"; 0, or -1 when refused. */
static int
gate_header_line(struct gate_conn *c, char *line, size_t len, int trailer)
{
	char *colon, *v, *end;
	size_t i, nl;
	int tab;

	if (line[0] == ' ' || line[0] == '\t') {
		gate_refuse(c, 400, "header line %u is folded onto the one "
		    "before; send each header on one line", c->lines);
		return -1;
	}
	if ((colon = memchr(line, ':', len)) == NULL || colon == line) {
		gate_refuse(c, 400, "header line %u is not 'Name: value'",
		    c->lines);
		return -1;
	}
	for (v = line; v < colon; v++)
		if (!is_tchar((unsigned char)*v)) {
			gate_refuse(c, 400, "header line %u: the name has a "
			    "byte not allowed in a token", c->lines);
			return -1;
		}
	for (i = (size_t)(colon - line) + 1; i < len; i++) {
		unsigned char ch = (unsigned char)line[i];

		if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
			gate_refuse(c, 400, "header line %u has a control "
			    "byte in its value", c->lines);
			return -1;
		}
	}
	if (trailer)
		return 0;
	tab = memchr(colon + 1, '\t', len - (size_t)(colon + 1 - line)) != NULL;
	nl = (size_t)(colon - line);
	*colon = '\0';
	v = colon + 1;
	v += strspn(v, " \t");
	end = line + len;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';

	/* evhttp trims spaces around a value but not always tabs: where the
	 * value frames the body, a tab could make the two disagree */
	if (tab && (HEADER_IS(line, nl, "Content-Length") ||
	    HEADER_IS(line, nl, "Transfer-Encoding") ||
	    HEADER_IS(line, nl, "Expect"))) {
		gate_refuse(c, 400, "a tab in the %s header; use spaces", line);
		return -1;
	}
	if (HEADER_IS(line, nl, "Host")) {
		if (c->has_host++) {
			gate_refuse(c, 400, "more than one Host header");
			return -1;
		}
	} else if (HEADER_IS(line, nl, "Content-Length")) {
		uint64_t n;

		if (gate_digits(v, &n) == -1) {
			gate_refuse(c, 400, "Content-Length '%.40s' is not a "
			    "number of bytes", v);
			return -1;
		}
		if (c->has_cl++ && n != c->clen) {
			gate_refuse(c, 400, "two different Content-Length "
			    "headers");
			return -1;
		}
		c->clen = n;
	} else if (HEADER_IS(line, nl, "Transfer-Encoding")) {
		if (c->has_te++ || strcasecmp(v, "chunked") != 0) {
			gate_refuse(c, 400, "Transfer-Encoding '%.40s' is not "
			    "supported; send the body chunked or with a "
			    "Content-Length", v);
			return -1;
		}
	} else if (HEADER_IS(line, nl, "Expect") &&
	    strcasecmp(v, "100-continue") != 0) {
		gate_refuse(c, 417, "Expect: '%.40s' cannot be met; only "
		    "100-continue is understood", v);
		return -1;
	}
	return 0;
}

/* The head is whole and each line good: check it as a whole. */
static int
gate_head_done(struct gate_conn *c)
{
	const struct config *cfg = c->g->cfg;

	if (c->http11 && !c->has_host) {
		gate_refuse(c, 400, "an HTTP/1.1 request needs a Host header");
		return -1;
	}
	if (c->has_te && c->has_cl) {
		gate_refuse(c, 400, "both Transfer-Encoding and "
		    "Content-Length; send one of them");
		return -1;
	}
	if (c->method == EVHTTP_REQ_HEAD && (c->has_te || c->clen > 0)) {
		gate_refuse(c, 400, "a HEAD request cannot have a body");
		return -1;
	}
	if (c->clen > cfg->max_body) {
		gate_refuse(c, 413, "the request body is %llu bytes; the limit "
		    "is %llu (--max-body)", (unsigned long long)c->clen,
		    (unsigned long long)cfg->max_body);
		return -1;
	}
	if (c->clen > 0 && gate_budget(c, c->clen, 0) == -1)
		return -1;
	return 0;
}

/* --- input ------------------------------------------------------------ */

static void
gate_request_read(struct gate_conn *c)
{
	c->pending++;
	c->state = GATE_HEAD;
	c->scanned = c->nolf = 0;
	c->lines = 0;
	c->method = 0;
	c->http11 = c->has_host = c->has_te = c->has_cl = 0;
	c->clen = c->left = c->body = 0;
	c->trailer_len = 0;
}

/*
 * Find the next line of src at offset c->scanned; copy it to g->line.
 * Returns its length (the line end not counted, nor copied) and sets
 * *next past it; -1 when no whole line is there yet.  first, when not
 * NULL, is src's first chain (evbuffer_peek): a line that lies in it is
 * found with one memchr, the usual case for a head; others are searched
 * for across chains.  A search that finds no line end remembers how far
 * it looked (src is not drained until a line is found), and the next one
 * goes on from there: a long line costs its length, not its length times
 * the reads it took.
 */
static long
gate_next_line(struct gate_conn *c, struct evbuffer *src,
    const struct evbuffer_iovec *first, size_t *next)
{
	struct evbuffer_ptr p, e;
	size_t eol = 0, len, full;
	const char *s, *nl;

	if (first != NULL && c->scanned < first->iov_len && c->nolf == 0) {
		s = (const char *)first->iov_base + c->scanned;
		if ((nl = memchr(s, '\n', first->iov_len - c->scanned)) !=
		    NULL) {
			full = len = (size_t)(nl - s);
			if (len > 0 && s[len - 1] == '\r')
				full = --len;	/* as EVBUFFER_EOL_CRLF */
			if (len > c->g->cfg->max_header)
				len = c->g->cfg->max_header;
			memcpy(c->g->line, s, len);
			c->g->line[len] = '\0';
			*next = (size_t)(nl - (const char *)first->iov_base) + 1;
			return (long)full;
		}
	}
	/* from the last byte looked at: it may be the CR of a CRLF */
	if (evbuffer_ptr_set(src, &p, c->nolf > c->scanned + 1 ? c->nolf - 1 :
	    c->scanned, EVBUFFER_PTR_SET) == -1)
		return -1;
	e = evbuffer_search_eol(src, &p, &eol, EVBUFFER_EOL_CRLF);
	if (e.pos == -1) {
		c->nolf = evbuffer_get_length(src);
		return -1;
	}
	c->nolf = 0;
	len = (size_t)e.pos - c->scanned;
	if (len > c->g->cfg->max_header)
		len = c->g->cfg->max_header;	/* refused by the caller */
	if (evbuffer_ptr_set(src, &p, c->scanned, EVBUFFER_PTR_SET) == -1)
		return -1;
	evbuffer_copyout_from(src, &p, c->g->line, len);
	c->g->line[len] = '\0';
	*next = (size_t)e.pos + eol;
	return (long)((size_t)e.pos - c->scanned);
}

/*
 * One step of reading a head: 1 when something was passed on or dropped,
 * 0 when more bytes are needed, -1 when refused.
 */
static int
gate_head(struct gate_conn *c, struct evbuffer *src, struct evbuffer *dst)
{
	const struct config *cfg = c->g->cfg;
	size_t next, line_max = TARGET_MAX + 64;
	struct evbuffer_iovec first;
	long len;

	if (line_max > cfg->max_header)
		line_max = cfg->max_header;
	if (evbuffer_peek(src, -1, NULL, &first, 1) < 1)
		first.iov_len = 0;
	for (;;) {
		if ((len = gate_next_line(c, src, &first, &next)) == -1) {
			size_t have = evbuffer_get_length(src);

			if (c->lines == 0 && have > line_max) {
				gate_refuse(c, 414, "the request line is over "
				    "%zu bytes; shorten the request target",
				    line_max);
				return -1;
			}
			if (have > cfg->max_header) {
				gate_refuse(c, 431, "the request line and "
				    "headers are over %llu bytes "
				    "(--max-header)",
				    (unsigned long long)cfg->max_header);
				return -1;
			}
			return 0;
		}
		if (c->lines == 0 && len == 0) {
			/* empty lines before a request are ignored */
			evbuffer_drain(src, next);
			c->scanned = 0;
			return 1;
		}
		if (c->lines == 0 && (size_t)len > line_max) {
			gate_refuse(c, 414, "the request line is %ld bytes; the "
			    "limit is %zu, shorten the request target", len,
			    line_max);
			return -1;
		}
		if (next > cfg->max_header) {
			gate_refuse(c, 431, "the request line and headers are "
			    "over %llu bytes (--max-header)",
			    (unsigned long long)cfg->max_header);
			return -1;
		}
		c->scanned = next;
		if (len == 0)
			break;
		if (c->lines == 0 ?
		    gate_request_line(c, c->g->line, (size_t)len) :
		    gate_header_line(c, c->g->line, (size_t)len, 0))
			return -1;
		if (++c->lines > HEADER_LINES_MAX) {
			gate_refuse(c, 431, "more than %d header lines",
			    HEADER_LINES_MAX - 1);
			return -1;
		}
	}
	if (gate_head_done(c) == -1)
		return -1;
	evbuffer_remove_buffer(src, dst, c->scanned);
	if (c->has_te)
		c->state = GATE_CHUNK_SIZE;
	else if (c->clen > 0) {
		c->state = GATE_BODY;
		c->left = c->clen;
	} else
		gate_request_read(c);
	return 1;
}

/*
 * A chunked body is framed anew for evhttp: the client's chunk-size lines
 * and the CRLFs after data are checked and dropped, the data is copied
 * into c->chunks, and evhttp is given it in chunks of BODY_UNIT (and what
 * is left at the last chunk).  The data of small chunks would otherwise
 * cost far more than its size: evhttp moves a buffer's chains as they
 * are, and a chain holding a 1-byte chunk is a few hundred bytes.
 */
static void
gate_chunks_pass(struct gate_conn *c, struct evbuffer *dst)
{
	size_t n;

	if (c->chunks == NULL || (n = evbuffer_get_length(c->chunks)) == 0)
		return;
	evbuffer_add_printf(dst, "%zx\r\n", n);
	evbuffer_add_buffer(dst, c->chunks);
	evbuffer_add(dst, "\r\n", 2);
	c->staged -= n < c->staged ? n : c->staged;
}

/*
 * Chunk data: counted when read, and copied (not moved: a socket read's
 * chain may hold a few bytes of it) into c->chunks, whose chains fill.
 * 1 when bytes were taken, -1 when refused.
 */
static int
gate_chunk_data(struct gate_conn *c, struct evbuffer *src,
    struct evbuffer *dst)
{
	size_t have = evbuffer_get_length(src), n, k;
	struct evbuffer_iovec v;

	n = have < c->left ? have : (size_t)c->left;
	if (c->chunks == NULL && (c->chunks = evbuffer_new()) == NULL) {
		gate_refuse(c, 503, "ringlb is out of memory");
		return -1;
	}
	if (gate_budget(c, n, 1) == -1)
		return -1;
	c->held += n;
	c->staged += n;
	c->left -= n;
	while (n > 0 && evbuffer_peek(src, -1, NULL, &v, 1) == 1) {
		k = v.iov_len < n ? v.iov_len : n;
		evbuffer_add(c->chunks, v.iov_base, k);
		evbuffer_drain(src, k);
		n -= k;
	}
	if (c->left == 0)
		c->state = GATE_CHUNK_SIZE;
	if (evbuffer_get_length(c->chunks) >= BODY_UNIT)
		gate_chunks_pass(c, dst);
	return 1;
}

/* A chunk-size line, as evhttp reads it: hex digits, then the end or a
 * space.  Empty lines (the CRLF after a chunk's data) are dropped. */
static int
gate_chunk_size(struct gate_conn *c, struct evbuffer *src,
    struct evbuffer *dst)
{
	const struct config *cfg = c->g->cfg;
	char *line = c->g->line, *end;
	struct evbuffer_iovec first;
	size_t next;
	long len;
	uint64_t n = 0;

	c->scanned = 0;
	if (evbuffer_peek(src, -1, NULL, &first, 1) < 1)
		first.iov_len = 0;
	if ((len = gate_next_line(c, src, &first, &next)) == -1) {
		if (evbuffer_get_length(src) > CHUNK_LINE_MAX) {
			gate_refuse(c, 400, "a chunk-size line is over %d "
			    "bytes", CHUNK_LINE_MAX);
			return -1;
		}
		return 0;
	}
	if (len > CHUNK_LINE_MAX) {
		gate_refuse(c, 400, "a chunk-size line is over %d bytes",
		    CHUNK_LINE_MAX);
		return -1;
	}
	if (len > 0) {
		for (end = line; is_hex((unsigned char)*end) &&
		    end - line < 16; end++)
			n = n * 16 + (uint64_t)(*end <= '9' ? *end - '0' :
			    (*end | 0x20) - 'a' + 10);
		if (end == line || (*end != '\0' && *end != ' ')) {
			gate_refuse(c, 400, "bad chunk size '%.40s'%s", line,
			    *end == ';' ? "; chunk extensions are not "
			    "accepted" : "");
			return -1;
		}
		if (end - line > 15 || n > cfg->max_body - c->body) {
			gate_refuse(c, 413, "the chunked request body is over "
			    "%llu bytes (--max-body)",
			    (unsigned long long)cfg->max_body);
			return -1;
		}
		if (gate_budget(c, n, 0) == -1)
			return -1;
		c->body += n;
		c->state = n == 0 ? GATE_TRAILER : GATE_CHUNK_DATA;
		c->left = n;
	}
	evbuffer_drain(src, next);
	if (len > 0 && n == 0) {
		gate_chunks_pass(c, dst);
		evbuffer_add(dst, "0\r\n", 3);
	}
	return 1;
}

static int
gate_trailer(struct gate_conn *c, struct evbuffer *src, struct evbuffer *dst)
{
	const struct config *cfg = c->g->cfg;
	size_t next;
	long len;

	c->scanned = 0;
	if ((len = gate_next_line(c, src, NULL, &next)) == -1 ||
	    (size_t)len > cfg->max_header) {
		if (evbuffer_get_length(src) > cfg->max_header) {
			gate_refuse(c, 431, "the trailer is over %llu bytes",
			    (unsigned long long)cfg->max_header);
			return -1;
		}
		return 0;
	}
	if (len > 0 && gate_header_line(c, c->g->line, (size_t)len, 1))
		return -1;
	if ((c->trailer_len += next) > cfg->max_header) {
		gate_refuse(c, 431, "the trailer is over %llu bytes",
		    (unsigned long long)cfg->max_header);
		return -1;
	}
	evbuffer_remove_buffer(src, dst, next);
	if (len == 0)
		gate_request_read(c);
	return 1;
}

/*
 * Content-Length body bytes: counted when read, and passed on where a
 * whole number of BODY_UNITs of the body is left, so how the reads fell
 * changes nothing.  1 when something
 * was passed on, 0 when more is needed, -1 when refused.
 */
static int
gate_body(struct gate_conn *c, struct evbuffer *src, struct evbuffer *dst)
{
	uint64_t have = evbuffer_get_length(src), avail, rest, n;

	avail = have < c->left ? have : c->left;
	if (avail > c->staged) {
		if (gate_budget(c, avail - c->staged, 1) == -1)
			return -1;
		c->held += avail - c->staged;
		c->staged = avail;
	}
	rest = (c->left - avail + BODY_UNIT - 1) / BODY_UNIT * BODY_UNIT;
	if (rest >= c->left)
		return 0;
	n = c->left - rest;
	evbuffer_remove_buffer(src, dst, (size_t)n);
	c->left = rest;
	c->staged -= n;
	if (c->left == 0)
		gate_request_read(c);
	return 1;
}

static enum bufferevent_filter_result
gate_input(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit,
    enum bufferevent_flush_mode mode, void *arg)
{
	struct gate_conn *c = arg;
	int passed = 0, r = 1;

	(void)limit;
	(void)mode;
	if (c->fd == -1)
		gate_register(c);
	while (r == 1 && evbuffer_get_length(src) > 0) {
		switch (c->state) {
		case GATE_REFUSED:
			evbuffer_drain(src, evbuffer_get_length(src));
			r = 0;
			break;
		case GATE_HEAD:
			r = gate_head(c, src, dst);
			passed |= r == 1;
			break;
		case GATE_BODY:
			r = gate_body(c, src, dst);
			passed |= r == 1;
			break;
		case GATE_CHUNK_DATA:
			r = gate_chunk_data(c, src, dst);
			passed |= r == 1;
			break;
		case GATE_CHUNK_SIZE:
			r = gate_chunk_size(c, src, dst);
			passed |= r == 1;
			break;
		case GATE_TRAILER:
			r = gate_trailer(c, src, dst);
			passed |= r == 1;
			break;
		}
	}
	gate_retime(c);
	return passed && evbuffer_get_length(dst) > 0 ? BEV_OK :
	    BEV_NEED_MORE;
}

/*
 * Is c's connection being freed?  evhttp and the proxy free a connection
 * (bufferevent_free of the filter) from wherever they are, and libevent
 * frees the filter, and so c, from the loop later; until then c's own
 * events (its write event, its timer, the socket's second read event)
 * may still fire, and must leave the bufferevents alone: making an event
 * of a filter being freed takes a reference to it and drops it again,
 * which frees it a second time.  Freeing the filter has already taken the
 * socket's callbacks off, gate_sock_read among them.
 */
static int
gate_dying(struct gate_conn *c)
{
	bufferevent_data_cb readcb;

	bufferevent_getcb(c->sock, &readcb, NULL, NULL, NULL);
	return readcb == NULL;
}

/* --- output ----------------------------------------------------------- */

/*
 * Write what evhttp has queued.  When evhttp adds to the filter's output,
 * the write is scheduled for the end of this turn of the loop
 * (event_active: no epoll_ctl, no timer), when evhttp is done adding; most
 * answers then go out in one write.  Only what the socket does not take
 * at once makes the event wait for the socket to be writable, with
 * --client-timeout: a client that takes nothing of an answer for that
 * long is cut off.  The bytes stay in the filter's output until the
 * kernel has them, so that evhttp, which looks at that buffer to tell
 * whether an answer is out, sees the truth.
 */
static void
gate_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gate_conn *c = arg;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct timeval tv = { c->g->cfg->client_timeout_s, 0 };

	c->wstate = GATE_W_IDLE;	/* a one-shot event: not pending now */
	if (gate_dying(c))
		return;
	if (what & EV_TIMEOUT) {
		bufferevent_trigger_event(c->bev, BEV_EVENT_TIMEOUT |
		    BEV_EVENT_WRITING, BEV_TRIG_DEFER_CALLBACKS);
		return;
	}
	if (evbuffer_write(out, fd) == -1 && errno != EAGAIN &&
	    errno != EINTR) {
		bufferevent_trigger_event(c->bev, BEV_EVENT_ERROR |
		    BEV_EVENT_WRITING, BEV_TRIG_DEFER_CALLBACKS);
		return;
	}
	if (evbuffer_get_length(out) == 0) {
		/*
		 * Tell evhttp now, not deferred: by the time a deferred call
		 * ran, evhttp could have queued more and taken the call for
		 * the end of that too.  It may free the connection from
		 * here; libevent frees the bufferevents, and so c, from the
		 * loop later, never at once.
		 */
		bufferevent_trigger(c->bev, EV_WRITE,
		    BEV_TRIG_IGNORE_WATERMARKS);
	} else {
		c->wstate = GATE_W_WAITING;	/* the socket is full */
		event_add(c->wev, &tv);
	}
}

/* evhttp wrote to the filter: have the socket written.  Counts what the
 * filter's output holds, in and out. */
static void
gate_out_added(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct gate_conn *c = arg;

	(void)buf;
	/* answers held, all connections: the proxy pauses past a bound */
	if (info->n_added != info->n_deleted)
		STAT_ADD(c->g, answer_bytes, info->n_added - info->n_deleted);
	c->queued += info->n_added;
	c->queued -= info->n_deleted;
	if (info->n_added == 0 || c->wstate != GATE_W_IDLE)
		return;
	if (c->wev == NULL) {
		gate_register(c);
		/* not EV_PERSIST: a persistent event made active would be
		 * added again, with the last timeout it had */
		if (c->fd < 0 || (c->wev = event_new(c->g->base, c->fd,
		    EV_WRITE, gate_write_cb, c)) == NULL)
			return;
	}
	c->wstate = GATE_W_SCHEDULED;
	event_active(c->wev, EV_WRITE, 0);
}

/* The socket took our own answer (a refusal): then linger, and close. */
static void
gate_out_sent(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct gate_conn *c = arg;

	if (info->n_deleted == 0 || evbuffer_get_length(buf) > 0)
		return;
	if (c->state == GATE_REFUSED && c->err_sent && (c->over || c->eof)) {
		/* past the limit: no lingering, the descriptor is wanted;
		 * after the client's EOF: nothing more will come */
		shutdown(c->fd, SHUT_WR);
		gate_close(c);
	} else if (c->state == GATE_REFUSED && c->err_sent &&
	    c->timer_kind != GATE_T_LINGER) {
		/* the answer is out: FIN, then read and drop what the client
		 * still sends for a moment, so that closing does not reset
		 * the connection under an answer not yet read */
		shutdown(c->fd, SHUT_WR);
		gate_arm(c, GATE_T_LINGER, LINGER_SECONDS);
	}
}

/* The filter's own output path: unused, gate_write_cb writes instead. */
static enum bufferevent_filter_result
gate_output(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit,
    enum bufferevent_flush_mode mode, void *arg)
{
	(void)src;
	(void)dst;
	(void)limit;
	(void)mode;
	(void)arg;
	return BEV_NEED_MORE;
}

/* --- connections ------------------------------------------------------ */

static void
gate_register(struct gate_conn *c)
{
	struct gate *g = c->g;
	evutil_socket_t fd = bufferevent_getfd(c->sock);

	if (fd < 0 || c->fd == fd)
		return;
	if ((size_t)fd >= g->nbyfd) {
		size_t n = g->nbyfd ? g->nbyfd : 256;
		struct gate_conn **p;

		while (n <= (size_t)fd)
			n *= 2;
		if ((p = realloc(g->byfd, n * sizeof(*p))) == NULL)
			return;
		memset(p + g->nbyfd, 0, (n - g->nbyfd) * sizeof(*p));
		g->byfd = p;
		g->nbyfd = n;
	}
	c->fd = fd;
	g->byfd[fd] = c;
}

/*
 * An event of the socket, on its way to evhttp through the filter.  The
 * end of input while evhttp holds requests of this connection is a
 * half-close: it is kept from evhttp, which would drop their answers, and
 * the connection is closed once they are answered (gate_answered).  So is
 * one while a refusal is still being written (gate_out_sent closes).
 */
static void
gate_sock_event(struct bufferevent *sock, short what, void *arg)
{
	struct gate_conn *c = arg;

	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
		c->eof = 1;
		if (c->pending > 0 || (c->state == GATE_REFUSED &&
		    c->err_sent && evbuffer_get_length(
		    bufferevent_get_output(sock)) > 0)) {
			log_debug("a client half-closed its connection; "
			    "answering its %u requests", c->pending);
			return;
		}
	}
	c->sock_event(sock, what, c->sock_arg);
}

/*
 * Keeping the socket in epoll's set.  evhttp stops reading a connection
 * as it takes each request (bufferevent_disable), and the filter passes
 * that on to the socket, whose read event is then deleted, and added back
 * once the answer is out: two epoll_ctl(2) calls a request, as nginx
 * makes none.  A second read event on the socket, this one, pending all
 * along, keeps libevent from taking the socket out of epoll's set, so
 * that the other one comes and goes without a system call.  It is called
 * with the bufferevent's own when there is input (and does nothing); a
 * second call with no read of the bufferevent's since means input that is
 * not being read (a request sent before the answer to the one before, or
 * the client's EOF), and it is deleted rather than called again and
 * again, until the bufferevent reads again.
 */
static void
gate_keep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gate_conn *c = arg;

	(void)fd;
	(void)what;
	if (++c->kept >= 2 || gate_dying(c))
		event_del(c->keep);
}

/* The socket's callbacks go to the filter: a read once the second read
 * event is pending (above), the others unchanged. */
static void
gate_sock_read(struct bufferevent *sock, void *arg)
{
	struct gate_conn *c = arg;
	evutil_socket_t fd;

	c->kept = 0;
	if (c->keep == NULL && (fd = bufferevent_getfd(sock)) >= 0)
		c->keep = event_new(c->g->base, fd, EV_READ | EV_PERSIST,
		    gate_keep_cb, c);
	if (c->keep != NULL && !event_pending(c->keep, EV_READ, NULL))
		event_add(c->keep, NULL);
	c->sock_read(sock, c->sock_arg);
}

static void
gate_sock_write(struct bufferevent *sock, void *arg)
{
	struct gate_conn *c = arg;

	c->sock_write(sock, c->sock_arg);
}

/* The filter is being freed (with evhttp's connection). */
static void
gate_conn_free(void *arg)
{
	struct gate_conn *c = arg;
	struct gate *g = c->g;

	if (c->fd >= 0 && (size_t)c->fd < g->nbyfd && g->byfd[c->fd] == c)
		g->byfd[c->fd] = NULL;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		g->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	if (c->over)
		STAT_SUB(g, over, 1);
	else
		STAT_SUB(g, open, 1);
	gate_release(c, c->held);
	/* an answer left unsent, freed with the connection: a slow reader
	 * gone, whose memory is worth handing back */
	STAT_SUB(g, answer_bytes, c->queued);
	gate_freed(g, c->queued);
	if (g->closed != NULL)
		g->closed(g->accepted_arg);
	evbuffer_remove_cb_entry(bufferevent_get_output(c->bev), c->out_cb);
	evbuffer_remove_cb_entry(bufferevent_get_output(c->sock), c->sent_cb);
	event_free(c->timer);
	if (c->wev != NULL)
		event_free(c->wev);
	if (c->keep != NULL)
		event_free(c->keep);
	if (c->chunks != NULL)
		evbuffer_free(c->chunks);
	free(c->err_text);
	free(c);
	/* libevent frees connections from the loop, maybe after gate_free */
	if (--g->live == 0 && g->freed)
		gate_destroy(g);
}

static void
gate_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gate_conn *c = arg;
	enum gate_timer kind = c->timer_kind;
	const struct config *cfg = c->g->cfg;
	uint64_t now = now_ms();

	(void)fd;
	(void)what;
	c->fire_at = 0;
	if (kind == GATE_T_NONE || gate_dying(c))
		return;
	if (now < c->deadline) {	/* moved on since the timer was set */
		struct timeval tv;

		tv.tv_sec = (time_t)((c->deadline - now) / 1000);
		tv.tv_usec = (suseconds_t)((c->deadline - now) % 1000 * 1000);
		c->fire_at = c->deadline;
		event_add(c->timer, &tv);
		return;
	}
	c->timer_kind = GATE_T_NONE;
	gate_register(c);
	switch (kind) {
	case GATE_T_REFUSE:
		gate_refuse(c, 503, "%s has %llu client connections open, "
		    "its limit (--max-connections); try again shortly",
		    c->g->name, (unsigned long long)STAT_LOAD(c->g, open));
		break;
	case GATE_T_HEAD:
		if (c->lines == 0 && evbuffer_get_length(
		    bufferevent_get_input(c->sock)) == 0) {
			gate_close(c);	/* connected, never sent a byte */
			break;
		}
		gate_refuse(c, 408, "the request line and headers did not "
		    "arrive within %ld s (--header-timeout)",
		    cfg->header_timeout_s);
		break;
	case GATE_T_BODY:
		gate_refuse(c, 408, "the request body did not arrive within "
		    "%ld s (--client-timeout)", cfg->client_timeout_s);
		break;
	case GATE_T_IDLE:
		STAT_ADD(c->g, idle_closed, 1);
		gate_close(c);
		break;
	case GATE_T_LINGER:
	case GATE_T_CLOSE:
		gate_close(c);
		break;
	case GATE_T_NONE:
		break;
	}
}

struct bufferevent *
gate_connection(struct gate *g)
{
	struct event_base *base = g->base;
	struct gate_conn *c;
	struct timeval wtv = { g->cfg->client_timeout_s, 0 };

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->g = g;
	c->fd = -1;
	if ((c->timer = evtimer_new(base, gate_timer_cb, c)) == NULL ||
	    (c->sock = bufferevent_socket_new(base, -1,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		if (c->timer != NULL)
			event_free(c->timer);
		free(c);
		return NULL;
	}
	c->bev = bufferevent_filter_new(c->sock, gate_input, gate_output,
	    BEV_OPT_CLOSE_ON_FREE, gate_conn_free, c);
	if (c->bev == NULL) {
		bufferevent_free(c->sock);
		event_free(c->timer);
		free(c);
		return NULL;
	}
	c->out_cb = evbuffer_add_cb(bufferevent_get_output(c->bev),
	    gate_out_added, c);
	c->sent_cb = evbuffer_add_cb(bufferevent_get_output(c->sock),
	    gate_out_sent, c);
	bufferevent_getcb(c->sock, &c->sock_read, &c->sock_write,
	    &c->sock_event, &c->sock_arg);
	bufferevent_setcb(c->sock, gate_sock_read, gate_sock_write,
	    gate_sock_event, c);
	/* a client that takes nothing of an answer for this long is cut */
	bufferevent_set_timeouts(c->sock, NULL, &wtv);
	STAT_ADD(g, accepted, 1);
	g->live++;
	c->next = g->conns;
	if (g->conns != NULL)
		g->conns->prev = c;
	g->conns = c;
	if (STAT_ADD(g, open, 1) > (uint64_t)g->cfg->max_connections) {
		struct timeval now = { 0, 0 };

		/*
		 * Past the limit: a 503 at once, then close.  In a flood, past
		 * OVER_MAX of those, just close: evhttp must be given a
		 * bufferevent (without one it would make its own, unchecked).
		 */
		c->over = 1;
		c->state = GATE_REFUSED;	/* what it sends is dropped */
		c->timer_kind = STAT_ADD(g, over, 1) <= OVER_MAX ?
		    GATE_T_REFUSE : GATE_T_CLOSE;
		c->fire_at = 1;		/* deadline 0: now */
		STAT_SUB(g, open, 1);
		event_add(c->timer, &now);
	} else {
		gate_arm(c, GATE_T_HEAD, g->cfg->header_timeout_s);
	}
	return c->bev;
}

/*
 * Between requests: none held by evhttp, and no byte of the next one
 * arrived (nor a refusal under way).
 */
static int
gate_idle(const struct gate_conn *c)
{
	return c->pending == 0 && c->state == GATE_HEAD && c->lines == 0 &&
	    evbuffer_get_length(bufferevent_get_input(c->sock)) == 0;
}

/*
 * Shutting down: is c still busy with a request (arriving, with evhttp,
 * or its refusal being written)?
 */
static int
gate_conn_busy(const struct gate_conn *c)
{
	if (c->pending > 0)
		return 1;
	if (c->state == GATE_REFUSED)
		return !c->err_sent || evbuffer_get_length(
		    bufferevent_get_output(c->sock)) > 0;
	return !gate_idle(c) && !c->eof;
}

unsigned
gate_busy(const struct gate *g)
{
	const struct gate_conn *c;
	unsigned n = 0;

	for (c = g->conns; c != NULL; c = c->next)
		n += gate_conn_busy(c);
	return n;
}

/* The grace is over: requests still arriving are answered 503. */
static void
gate_grace_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gate *g = arg;
	struct gate_conn *c, *next;

	(void)fd;
	(void)what;
	for (c = g->conns; c != NULL; c = next) {
		next = c->next;
		if (c->over || c->state == GATE_REFUSED)
			continue;
		if (gate_idle(c))
			gate_close(c);
		else if (!c->eof && (c->state != GATE_HEAD || c->lines > 0 ||
		    evbuffer_get_length(bufferevent_get_input(c->sock)) > 0)) {
			gate_register(c);
			gate_refuse(c, 503, "%s is shutting down, and this "
			    "request did not arrive in full within %ld ms of "
			    "its stop (--stop-grace); send it again", g->name,
			    g->cfg->stop_grace_ms);
		}
	}
}

void
gate_stop(struct gate *g)
{
	struct gate_conn *c, *next;
	struct timeval tv;
	unsigned closed = 0;

	if (g->stopping)
		return;
	g->stopping = 1;
	for (c = g->conns; c != NULL; c = next) {
		next = c->next;
		if (!c->over && c->state != GATE_REFUSED && gate_idle(c)) {
			gate_close(c);
			closed++;
		}
	}
	log_debug("closed %u idle client connections", closed);
	tv.tv_sec = g->cfg->stop_grace_ms / 1000;
	tv.tv_usec = g->cfg->stop_grace_ms % 1000 * 1000;
	if (g->grace != NULL)
		event_add(g->grace, &tv);
}

int
gate_stopping(const struct gate *g)
{
	return g->stopping;
}

/* evhttp_set_bevcb: a new connection, its socket not yet set. */
static struct bufferevent *
gate_bevcb(struct event_base *base, void *arg)
{
	struct gate *g = arg;
	struct bufferevent *bev;

	(void)base;
	if ((bev = gate_connection(g)) != NULL && g->accepted != NULL)
		g->accepted(g->accepted_arg);
	return bev;
}

/* on_complete: evhttp has sent the whole answer to a request. */
static void
gate_answered(struct evhttp_request *req, void *arg)
{
	struct gate *g = arg;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev;
	struct gate_conn *c;
	evutil_socket_t fd;

	if (evcon == NULL || (bev = evhttp_connection_get_bufferevent(evcon))
	    == NULL || (fd = bufferevent_getfd(bev)) < 0 ||
	    (size_t)fd >= g->nbyfd || (c = g->byfd[fd]) == NULL ||
	    c->bev != bev)
		return;
	if (c->pending > 0)
		c->pending--;
	c->served++;
	/* its body is freed with it, after this */
	gate_release(c, evbuffer_get_length(
	    evhttp_request_get_input_buffer(req)));
	if (c->pending == 0 && c->state == GATE_REFUSED && !c->err_sent)
		gate_send_refusal(c);
	else if (c->pending == 0 && c->eof && c->state != GATE_REFUSED)
		gate_close(c);		/* half-closed, and all answered */
	else if (g->stopping && gate_idle(c)) {
		/* shutting down, and nothing more arriving: evhttp closes
		 * the connection once this call returns */
		evhttp_remove_header(evhttp_request_get_output_headers(req),
		    "Connection");
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Connection", "close");
		return;
	}
	gate_retime(c);
}

void
gate_track(struct gate *g, struct evhttp_request *req)
{
	evhttp_request_set_on_complete_cb(req, gate_answered, g);
}

size_t
gate_unsent(struct bufferevent *bev)
{
	struct bufferevent *u = bufferevent_get_underlying(bev);
	size_t n = evbuffer_get_length(bufferevent_get_output(bev));

	if (u != NULL)
		n += evbuffer_get_length(bufferevent_get_output(u));
	return n;
}

void
gate_flush_now(struct bufferevent *bev)
{
	struct bufferevent *u = bufferevent_get_underlying(bev);
	evutil_socket_t fd = bufferevent_getfd(bev);

	if (fd < 0)
		return;
	if (u != NULL)
		(void)evbuffer_write(bufferevent_get_output(u), fd);
	if (u == NULL ||
	    evbuffer_get_length(bufferevent_get_output(u)) == 0)
		(void)evbuffer_write(bufferevent_get_output(bev), fd);
}

struct gate *
gate_new(struct event_base *base, const struct config *cfg,
    struct gate_stats *shared)
{
	struct gate *g;

	if ((g = calloc(1, sizeof(*g))) == NULL)
		return NULL;
	if ((g->line = malloc(cfg->max_header + 1)) == NULL ||
	    (g->trim = evtimer_new(base, gate_trim_cb, g)) == NULL ||
	    (g->grace = evtimer_new(base, gate_grace_cb, g)) == NULL) {
		if (g->trim != NULL)
			event_free(g->trim);
		free(g->line);
		free(g);
		return NULL;
	}
	g->base = base;
	g->cfg = cfg;
	g->name = "ringlb";
	g->stats = shared != NULL ? shared : &g->own;
	return g;
}

void
gate_set_name(struct gate *g, const char *name)
{
	g->name = name;
}

void
gate_attach(struct gate *g, struct evhttp *http)
{
	evhttp_set_bevcb(http, gate_bevcb, g);
}

void
gate_on_accept(struct gate *g, void (*accepted)(void *),
    void (*closed)(void *), void *arg)
{
	g->accepted = accepted;
	g->closed = closed;
	g->accepted_arg = arg;
}

const struct gate_stats *
gate_stats(const struct gate *g)
{
	return g->stats;
}

void
gate_stats_read(const struct gate_stats *s, struct gate_stats *out)
{
	int i;

#define GET(f)	__atomic_load_n(&s->f, __ATOMIC_RELAXED)
	out->open = GET(open);
	out->accepted = GET(accepted);
	for (i = 0; i < GATE_CODES; i++)
		out->refused[i] = GET(refused[i]);
	out->idle_closed = GET(idle_closed);
	out->body_bytes = GET(body_bytes);
	out->answer_bytes = GET(answer_bytes);
#undef GET
}

static void
gate_destroy(struct gate *g)
{
	free(g->byfd);
	free(g->line);
	free(g);
}

void
gate_free(struct gate *g)
{
	if (g == NULL)
		return;
	g->freed = 1;
	g->accepted = NULL;
	g->closed = NULL;
	/* freed now, while the loop is alive: connections may outlive it */
	event_free(g->trim);
	g->trim = NULL;
	event_free(g->grace);
	g->grace = NULL;
	if (g->live == 0) {
		gate_destroy(g);
		return;
	}
	/*
	 * Connections still to be finalized count down this gate's own
	 * copy: the counts shared with other workers may be freed first.
	 */
	if (g->stats != &g->own) {
		g->own = *g->stats;
		g->stats = &g->own;
	}
}
