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
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "log.h"
#include "respond.h"
#include "util.h"

struct replica_server {
	struct event_base	*base;
	const char		*id;
	char			*home_body;	/* built once */
	size_t			 home_len;
};

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: ringlb-replica [--id ID] [--listen HOST:PORT]\n"
	    "\n"
	    "The replica web server ringlb balances across.\n"
	    "  --id ID             name in /home answers [SERVER_ID]\n"
	    "  --listen HOST:PORT  address to serve on (default "
	    "0.0.0.0:5000)\n"
	    "  --parent PID        exit when process PID (the parent) exits\n"
	    "  --help              print this help and exit\n"
	    "\nGET /home answers {\"message\": \"Hello from Server: ID\", "
	    "\"status\": \"successful\"};\nGET /heartbeat answers 200 with an "
	    "empty body; any other path 404.\n");
}

static void
on_request(struct evhttp_request *req, void *arg)
{
	struct replica_server *rs = arg;
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *path = u ? evhttp_uri_get_path(u) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	struct evbuffer *buf;

	if (path == NULL || *path == '\0')
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

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct replica_server *rs = arg;

	(void)sig;
	(void)what;
	event_base_loopexit(rs->base, NULL);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "id", required_argument, NULL, 'i' },
		{ "listen", required_argument, NULL, 'l' },
		{ "parent", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct replica_server rs;
	struct evhttp *http;
	struct event *sigterm, *sigint;
	char host[256] = "0.0.0.0", err[256];
	const char *listen = NULL;
	long parent = 0;
	uint16_t port = 5000;
	json_t *home;
	int ch;

	memset(&rs, 0, sizeof(rs));
	rs.id = getenv("SERVER_ID");
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'i':
			rs.id = optarg;
			break;
		case 'l':
			listen = optarg;
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
	log_init("ringlb-replica", LOG_LEVEL_INFO);
	signal(SIGPIPE, SIG_IGN);

	home = json_pack("{s:s+, s:s}", "message", "Hello from Server: ",
	    rs.id, "status", "successful");
	if (home == NULL || (rs.home_body = json_dumps(home, JSON_COMPACT))
	    == NULL)
		fatalx("cannot build the /home answer");
	json_decref(home);
	rs.home_len = strlen(rs.home_body);

	if ((rs.base = event_base_new()) == NULL ||
	    (http = evhttp_new(rs.base)) == NULL)
		fatalx("cannot set up the event loop");
	evhttp_set_default_content_type(http, NULL);
	evhttp_set_gencb(http, on_request, &rs);
	if (evhttp_bind_socket(http, host, port) == -1)
		fatal("cannot listen on %s:%u", host, (unsigned)port);
	sigterm = evsignal_new(rs.base, SIGTERM, on_signal, &rs);
	sigint = evsignal_new(rs.base, SIGINT, on_signal, &rs);
	evsignal_add(sigterm, NULL);
	evsignal_add(sigint, NULL);
	log_info("server %s listening on %s:%u", rs.id, host, (unsigned)port);

	event_base_dispatch(rs.base);

	event_free(sigterm);
	event_free(sigint);
	evhttp_free(http);
	event_base_free(rs.base);
	free(rs.home_body);
	return 0;
}
