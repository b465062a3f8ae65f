/*
 * ringlb-replica - the bundled replica web server.
 *
 *   GET /home       200 {"message": "Hello from Server: <id>",
 *                        "status": "successful"}
 *   GET /heartbeat  200, empty body
 *   anything else   404 {"message": "<Error> '/<path>' endpoint does not
 *                        exist in server replicas", "status": "failure"}
 *
 * The id comes from --id or SERVER_ID; the address from --listen.
 *
 * Limits: every connection passes through ringlb's gate (gate.c), which
 * reads request heads line by line within --max-header, bodies within
 * --max-body (all connections' together within --max-body-memory), and
 * times the head (--header-timeout), the body (--client-timeout) and an
 * idle keep-alive connection (--keepalive-timeout); what it refuses gets
 * a JSON error and Connection: close.  When accept() fails (out of
 * descriptors) accepting pauses, 100 ms at first and doubling to 1 s
 * while nothing can be accepted, with one log line per episode, rather
 * than retrying at once forever.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <jansson.h>

#include "config.h"
#include "gate.h"
#include "log.h"
#include "respond.h"
#include "util.h"

#define ACCEPT_PAUSE_MIN_MS	100	/* accept() failed: first pause */
#define ACCEPT_PAUSE_MAX_MS	1000	/* doubled up to this */
#define ACCEPT_EPISODE_MS	2500	/* a quiet gap this long ends one */
#define FD_RESERVE		32	/* descriptors not for connections */

/*
 * The keep-alive default outlasts the 118 s libcurl (so ringlb) keeps an
 * idle connection for reuse: were the replica to close first, ringlb
 * could write a request into a connection being closed.
 */
#define KEEPALIVE_DEFAULT_S	180

struct replica_server {
	struct event_base	*base;
	const char		*id;
	char			*home_body;	/* built once */
	size_t			 home_len;
	struct config		 cfg;		/* the gate's limits */
	struct gate		*gate;
	struct evconnlistener	*listener;
	struct event		*resume;	/* accepting again */
	long			 pause_ms;	/* the accept pause now */
	uint64_t		 accept_error_at;	/* the last pause's end */
	uint64_t		 accepted;	/* connections, at its start */
};

/* The listener's error callback is given evhttp's argument, not ours. */
static struct replica_server *server;

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: ringlb-replica [--id ID] [--listen HOST:PORT] [options]\n"
	    "\n"
	    "The replica web server ringlb balances across.\n"
	    "  --id ID             name in /home answers [SERVER_ID]\n"
	    "  --listen HOST:PORT  address to serve on (default "
	    "0.0.0.0:5000)\n"
	    "  --listen-fd N       serve on listening socket N, given "
	    "bound (instead of\n"
	    "                      --listen)\n"
	    "  --parent PID        exit when process PID (the parent) exits\n"
	    "  --help              print this help and exit\n"
	    "\nLimits (sizes take k, m, g; a request past one gets a JSON "
	    "error and the\nconnection is closed):\n"
	    "  --max-header SIZE   request line and headers (default 64k; "
	    "431)\n"
	    "  --max-body SIZE     a request body (default 8m; 413)\n"
	    "  --max-body-memory SIZE\n"
	    "                      bodies held by all connections "
	    "(default 64m; 503)\n"
	    "  --header-timeout S  for a request's line and headers to "
	    "arrive (default 10;\n"
	    "                      408; a connection that sent nothing is "
	    "closed)\n"
	    "  --client-timeout S  for a body to arrive, and for a client "
	    "to read an answer\n"
	    "                      (default 60; 408)\n"
	    "  --keepalive-timeout S\n"
	    "                      an idle keep-alive connection is closed "
	    "(default %d);\n"
	    "                      keep it longer than the balancer keeps "
	    "idle connections\n"
	    "                      (ringlb: 118 s)\n"
	    "  --max-connections N open connections (default 10000, "
	    "lowered to fit\n"
	    "                      ulimit -n; more get a 503)\n"
	    "\nGET /home answers {\"message\": \"Hello from Server: ID\", "
	    "\"status\": \"successful\"};\nGET /heartbeat answers 200 with an "
	    "empty body; any other path 404.\n", KEEPALIVE_DEFAULT_S);
}

static void
on_request(struct evhttp_request *req, void *arg)
{
	struct replica_server *rs = arg;
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *path = u ? evhttp_uri_get_path(u) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	struct evbuffer *buf;

	gate_track(rs->gate, req);
	/* origin-form (/path?query), or absolute-form (http://host/path) as
	 * a proxy sends it; anything else ("home", "*") names no path */
	if (path == NULL || (evhttp_request_get_uri(req)[0] != '/' &&
	    evhttp_uri_get_scheme(u) == NULL)) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Connection", "close");
		respond_error(req, 400, "the request target must be a path "
		    "such as /home");
		return;
	}
	if (*path == '\0')
		path = "/";
	if (strcmp(path, "/home") == 0 || strcmp(path, "/heartbeat") == 0) {
		if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
			evhttp_add_header(evhttp_request_get_output_headers(
			    req), "Allow", "GET, HEAD");
			respond_error(req, 405, "'%s' accepts GET only", path);
			return;
		}
		if (strcmp(path, "/heartbeat") == 0) {
			respond_send(req, 200, "OK", NULL);
			return;
		}
		if ((buf = evbuffer_new()) == NULL) {
			respond_error(req, 500, "out of memory");
			return;
		}
		evbuffer_add_reference(buf, rs->home_body, rs->home_len, NULL,
		    NULL);
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Content-Type", "application/json");
		respond_send(req, 200, "OK", buf);
		evbuffer_free(buf);
		return;
	}
	respond_error(req, 404, "'%s' endpoint does not exist in server "
	    "replicas", path);
}

/*
 * accept() failed for a reason other than a client gone: out of
 * descriptors (EMFILE, ENFILE) or of memory.  The listening socket stays
 * readable, and retrying at once would spin: pause accepting, and say so
 * once per episode.  The pause doubles while nothing could be accepted
 * between two failures; when connections were (descriptors come and go),
 * it stays short, so that a backlog drains soon after they free up.
 */
static void
on_accept_error(struct evconnlistener *lev, void *arg)
{
	struct replica_server *rs = server;
	int err = EVUTIL_SOCKET_ERROR();
	uint64_t now = now_ms();
	struct timeval tv;
	struct rlimit rl;

	(void)arg;
	if (rs->accept_error_at == 0 ||
	    now > rs->accept_error_at + ACCEPT_EPISODE_MS) {
		rs->pause_ms = ACCEPT_PAUSE_MIN_MS;
		if ((err == EMFILE || err == ENFILE) &&
		    getrlimit(RLIMIT_NOFILE, &rl) == 0)
			log_warnx("cannot accept connections: %s (%llu "
			    "connections open, descriptor limit %llu: raise "
			    "ulimit -n); pausing accepts, %d ms to %d ms at a "
			    "time, until descriptors free up", strerror(err),
			    (unsigned long long)gate_stats(rs->gate)->open,
			    (unsigned long long)rl.rlim_cur,
			    ACCEPT_PAUSE_MIN_MS, ACCEPT_PAUSE_MAX_MS);
		else
			log_warnx("cannot accept connections: %s; pausing "
			    "accepts, %d ms to %d ms at a time",
			    strerror(err), ACCEPT_PAUSE_MIN_MS,
			    ACCEPT_PAUSE_MAX_MS);
	} else if (gate_stats(rs->gate)->accepted > rs->accepted)
		rs->pause_ms = ACCEPT_PAUSE_MIN_MS;
	else if ((rs->pause_ms *= 2) > ACCEPT_PAUSE_MAX_MS)
		rs->pause_ms = ACCEPT_PAUSE_MAX_MS;
	rs->accepted = gate_stats(rs->gate)->accepted;
	evconnlistener_disable(lev);
	tv.tv_sec = rs->pause_ms / 1000;
	tv.tv_usec = rs->pause_ms % 1000 * 1000;
	evtimer_add(rs->resume, &tv);
	/* the episode's end is timed from the end of this pause */
	rs->accept_error_at = now + (uint64_t)rs->pause_ms;
}

static void
on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct replica_server *rs = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(rs->listener);
}

/*
 * Each connection takes a descriptor: raise the soft limit towards what
 * --max-connections needs, and lower --max-connections to what the limit
 * holds, so that a connection past it gets a 503 rather than accept()
 * failing.
 */
static void
fd_limit(struct config *cfg, int given)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)cfg->max_connections + FD_RESERVE;
	long fit;

	if (fd_limit_raise(need, &rl) == -1)
		return;
	if (rl.rlim_cur >= need)
		return;
	fit = rl.rlim_cur > 2 * FD_RESERVE ? (long)(rl.rlim_cur - FD_RESERVE) :
	    (long)(rl.rlim_cur / 2);
	if (fit < 1)
		fit = 1;
	if (given)
		log_warnx("the descriptor limit (%llu) holds %ld connections, "
		    "not %ld: --max-connections is %ld (raise ulimit -n for "
		    "more)", (unsigned long long)rl.rlim_cur, fit,
		    cfg->max_connections, fit);
	cfg->max_connections = fit;
}

/* A limit flag's value into cfg; 0, or -1 with the message printed. */
static int
set_limit(struct config *cfg, const char *flag, const char *v)
{
	long n;

	if (strcmp(flag, "max-header") == 0) {
		if (parse_size(v, &cfg->max_header) == 0 &&
		    cfg->max_header >= 1024 && cfg->max_header <= (64ULL << 20))
			return 0;
		fprintf(stderr, "ringlb-replica: --max-header must be a size "
		    "from 1k to 64m, such as 64k\n");
		return -1;
	}
	if (strcmp(flag, "max-body") == 0 ||
	    strcmp(flag, "max-body-memory") == 0) {
		uint64_t *p = strcmp(flag, "max-body") == 0 ? &cfg->max_body :
		    &cfg->max_body_memory;

		if (parse_size(v, p) == 0 && *p > 0 && *p <= (1ULL << 40))
			return 0;
		fprintf(stderr, "ringlb-replica: --%s must be a size in "
		    "bytes, such as 8m\n", flag);
		return -1;
	}
	if (strcmp(flag, "max-connections") == 0) {
		if (parse_long(v, 1, 1000000, &cfg->max_connections) == 0)
			return 0;
		fprintf(stderr, "ringlb-replica: --max-connections must be a "
		    "number from 1 to 1000000\n");
		return -1;
	}
	if (parse_long(v, 1, 3600, &n) == -1) {
		fprintf(stderr, "ringlb-replica: --%s must be a number of "
		    "seconds from 1 to 3600\n", flag);
		return -1;
	}
	if (strcmp(flag, "header-timeout") == 0)
		cfg->header_timeout_s = n;
	else if (strcmp(flag, "client-timeout") == 0)
		cfg->client_timeout_s = n;
	else
		cfg->keepalive_timeout_s = n;
	return 0;
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct replica_server *rs = arg;

	(void)sig;
	(void)what;
	event_base_loopexit(rs->base, NULL);
}

/* fd's address, if it is a listening TCP/IPv4 or IPv6 socket. */
static int
listening_address(int fd, char *host, size_t hostlen, uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int on = 0;
	socklen_t onlen = sizeof(on);

	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &onlen) == -1 ||
	    !on || getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return -1;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &sin->sin_addr, host, hostlen);
		*port = ntohs(sin->sin_port);
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, host, hostlen);
		*port = ntohs(sin6->sin6_port);
	} else
		return -1;
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "id", required_argument, NULL, 'i' },
		{ "listen", required_argument, NULL, 'l' },
		{ "listen-fd", required_argument, NULL, 'f' },
		{ "parent", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ "max-header", required_argument, NULL, 'L' },
		{ "max-body", required_argument, NULL, 'L' },
		{ "max-body-memory", required_argument, NULL, 'L' },
		{ "header-timeout", required_argument, NULL, 'L' },
		{ "client-timeout", required_argument, NULL, 'L' },
		{ "keepalive-timeout", required_argument, NULL, 'L' },
		{ "max-connections", required_argument, NULL, 'L' },
		{ NULL, 0, NULL, 0 }
	};
	static struct replica_server rs;
	struct config *cfg = &rs.cfg;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	struct event *sigterm, *sigint;
	char host[256] = "0.0.0.0", err[256];
	const char *listen = NULL;
	long parent = 0, listen_fd = -1;
	uint16_t port = 5000;
	json_t *home;
	int ch, li, conns_given = 0, bodymem_given = 0;

	server = &rs;
	rs.id = getenv("SERVER_ID");
	cfg->max_header = 64ULL << 10;
	cfg->max_body = 8ULL << 20;
	cfg->max_body_memory = 64ULL << 20;
	cfg->header_timeout_s = 10;
	cfg->client_timeout_s = 60;
	cfg->keepalive_timeout_s = KEEPALIVE_DEFAULT_S;
	cfg->max_connections = 10000;
	while ((ch = getopt_long(argc, argv, "h", longopts, &li)) != -1) {
		switch (ch) {
		case 'L':
			if (set_limit(cfg, longopts[li].name, optarg) == -1)
				return 2;
			conns_given |= strcmp(longopts[li].name,
			    "max-connections") == 0;
			bodymem_given |= strcmp(longopts[li].name,
			    "max-body-memory") == 0;
			break;
		case 'i':
			rs.id = optarg;
			break;
		case 'l':
			listen = optarg;
			break;
		case 'f':
			if (parse_long(optarg, 3, 1L << 20, &listen_fd) == -1) {
				fprintf(stderr, "ringlb-replica: --listen-fd "
				    "must be a descriptor number, 3 or more\n");
				return 2;
			}
			break;
		case 'p':
			if (parse_long(optarg, 1, 1L << 30, &parent) == -1) {
				fprintf(stderr, "ringlb-replica: --parent must "
				    "be a process id\n");
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ringlb-replica: unexpected argument '%s'\n",
		    argv[optind]);
		return 2;
	}
	if (rs.id == NULL || *rs.id == '\0') {
		fprintf(stderr, "ringlb-replica: no id: give --id ID or set "
		    "SERVER_ID\n");
		return 2;
	}
	if (listen != NULL && listen_fd != -1) {
		fprintf(stderr, "ringlb-replica: give --listen or --listen-fd, "
		    "not both\n");
		return 2;
	}
	if (listen_fd != -1 && listening_address((int)listen_fd, host,
	    sizeof(host), &port) == -1) {
		fprintf(stderr, "ringlb-replica: --listen-fd %ld is not a "
		    "listening TCP socket\n", listen_fd);
		return 2;
	}
	if (listen != NULL) {
		if (parse_hostport(listen, host, sizeof(host), &port, err,
		    sizeof(err)) == -1) {
			fprintf(stderr, "ringlb-replica: --listen %s\n", err);
			return 2;
		}
		if (host[0] == '\0')
			strcpy(host, "0.0.0.0");
	}
	/* Die with the parent, even when it is killed with SIGKILL; if it
	 * is already gone, the signal will never come: leave now. */
	if (parent != 0) {
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1)
			fatal("prctl(PR_SET_PDEATHSIG)");
		if (getppid() != (pid_t)parent)
			return 0;
	}
	if (!bodymem_given && cfg->max_body_memory < cfg->max_body)
		cfg->max_body_memory = cfg->max_body;
	if (cfg->max_body_memory < cfg->max_body) {
		fprintf(stderr, "ringlb-replica: --max-body-memory (%llu) must "
		    "hold at least one --max-body (%llu)\n",
		    (unsigned long long)cfg->max_body_memory,
		    (unsigned long long)cfg->max_body);
		return 2;
	}
	log_init("ringlb-replica", LOG_LEVEL_INFO);
	signal(SIGPIPE, SIG_IGN);
	fd_limit(cfg, conns_given);

	home = json_pack("{s:s+, s:s}", "message", "Hello from Server: ",
	    rs.id, "status", "successful");
	if (home == NULL || (rs.home_body = json_dumps(home, JSON_COMPACT))
	    == NULL)
		fatalx("cannot build the /home answer");
	json_decref(home);
	rs.home_len = strlen(rs.home_body);

	if ((rs.base = event_base_new()) == NULL ||
	    (http = evhttp_new(rs.base)) == NULL ||
	    (rs.gate = gate_new(rs.base, cfg, NULL)) == NULL ||
	    (rs.resume = evtimer_new(rs.base, on_resume, &rs)) == NULL)
		fatalx("cannot set up the event loop");
	gate_set_name(rs.gate, "ringlb-replica");
	evhttp_set_default_content_type(http, NULL);
	/* the gate's limits hold; evhttp's are a second line, set wider */
	evhttp_set_max_body_size(http, (ev_ssize_t)cfg->max_body);
	evhttp_set_max_headers_size(http, (ev_ssize_t)(2 * cfg->max_header +
	    4096));
	/* as ringlb's: evhttp answers the others with an HTML 501 page */
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	gate_attach(rs.gate, http);
	evhttp_set_gencb(http, on_request, &rs);
	if (listen_fd != -1) {
		if (evutil_make_socket_nonblocking((int)listen_fd) == -1 ||
		    evutil_make_socket_closeonexec((int)listen_fd) == -1 ||
		    (bound = evhttp_accept_socket_with_handle(http,
		    (int)listen_fd)) == NULL)
			fatal("cannot serve on descriptor %ld", listen_fd);
	} else if ((bound = evhttp_bind_socket_with_handle(http, host,
	    port)) == NULL)
		fatal("cannot listen on %s:%u", host, (unsigned)port);
	rs.listener = evhttp_bound_socket_get_listener(bound);
	evconnlistener_set_error_cb(rs.listener, on_accept_error);
	sigterm = evsignal_new(rs.base, SIGTERM, on_signal, &rs);
	sigint = evsignal_new(rs.base, SIGINT, on_signal, &rs);
	evsignal_add(sigterm, NULL);
	evsignal_add(sigint, NULL);
	log_info("server %s listening on %s:%u", rs.id, host, (unsigned)port);

	event_base_dispatch(rs.base);

	event_free(sigterm);
	event_free(sigint);
	event_free(rs.resume);
	evhttp_free(http);
	gate_free(rs.gate);
	event_base_free(rs.base);
	free(rs.home_body);
	return 0;
}
