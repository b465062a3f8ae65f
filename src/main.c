/*
 * main.c - parse options, set up in order, run the loop, tear down in
 * reverse.
 *
 * Shutdown (SIGTERM or SIGINT): stop accepting (the listener closes),
 * then close idle client connections, let requests in flight finish and those
 * still arriving arrive within --stop-grace (then a 503; see gate_stop),
 * each connection closing after its answer (at most DRAIN_MAX_MS, or
 * --stop-grace and a second), stop every replica (SIGTERM, SIGKILL after
 * --stop-grace; containers stopped and removed), exit 0.  A second
 * signal exits at once: the process backend still kills and reaps its
 * children; containers the docker backend leaves are removed at its next
 * start (or by make down, by their label).
 */
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "admin.h"
#include "config.h"
#include "ctl.h"
#include "curlev.h"
#include "evhttp_peek.h"
#include "log.h"
#include "pool.h"
#include "ring.h"
#include "util.h"
#include "worker.h"

#define DRAIN_POLL_MS	50
#define DRAIN_MAX_MS	10000	/* longest wait for in-flight requests */

struct ringlb {
	struct event_base	*base;
	struct config		 cfg;
	struct pool		*pool;
	struct admin		*admin;
	struct ctl		*ctl;
	struct workers		*workers;
	struct event		*sigterm, *sigint, *sighup, *drain, *deadline;
	int			 drain_waited_ms;
	int			 stopping;
};

static void
replicas_stopped(void *arg)
{
	struct ringlb *lb = arg;

	event_base_loopexit(lb->base, NULL);
}

/* A replica that ignores SIGKILL's reaping must not hold ringlb up. */
static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct ringlb *lb = arg;

	(void)fd;
	(void)what;
	log_warnx("replicas still stopping after %ld ms; exiting",
	    pool_stop_deadline_ms(lb->pool));
	event_base_loopexit(lb->base, NULL);
}

/*
 * Once nothing is in flight and no request is arriving or being answered
 * (or we waited long enough), stop replicas.  Requests still arriving
 * are answered 503 after --stop-grace (gate.c), so the wait is at least
 * that long.
 */
static void
drain_tick(evutil_socket_t fd, short what, void *arg)
{
	static const struct timeval poll = { 0, DRAIN_POLL_MS * 1000 };
	struct ringlb *lb = arg;
	unsigned n = workers_inflight(lb->workers);
	unsigned busy = workers_busy(lb->workers);
	struct timeval tv;
	long ms = pool_stop_deadline_ms(lb->pool);
	long max = DRAIN_MAX_MS > lb->cfg.stop_grace_ms + 1000 ? DRAIN_MAX_MS :
	    lb->cfg.stop_grace_ms + 1000;

	(void)fd;
	(void)what;
	if ((n > 0 || busy > 0) && lb->drain_waited_ms < max) {
		lb->drain_waited_ms += DRAIN_POLL_MS;
		evtimer_add(lb->drain, &poll);
		return;
	}
	if (n > 0 || busy > 0)
		log_warnx("%u requests still in flight, %u client connections "
		    "busy after %ld ms; stopping anyway", n, busy, max);
	log_info("stopping %d replicas", pool_size(lb->pool));
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(lb->deadline, &tv);
	pool_shutdown(lb->pool, replicas_stopped, lb);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct ringlb *lb = arg;

	(void)what;
	if (lb->stopping) {
		log_info("second signal: exiting now");
		event_base_loopexit(lb->base, NULL);
		return;
	}
	lb->stopping = 1;
	workers_stop_accepting(lb->workers);
	log_info("%s: no longer accepting; finishing %u requests in flight "
	    "(arriving requests have %ld ms)", strsignal((int)sig),
	    workers_inflight(lb->workers), lb->cfg.stop_grace_ms);
	drain_tick(-1, 0, lb);
}

/*
 * SIGHUP: ringlb has no configuration file to read again, and a hang-up of
 * the terminal it was started from must not take it down.  Say so, once
 * per signal, rather than die without a word (the default action).
 */
static void
on_sighup(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
	log_info("SIGHUP ignored: ringlb has no configuration file to reload "
	    "(its settings are flags and RINGLB_* variables); SIGTERM stops "
	    "it");
}

/*
 * calloc as malloc and memset.  glibc's calloc never takes from the
 * thread's cache of freed blocks (tcache), as malloc does: it goes to
 * the arena every time, and the blocks freed into the cache are left for
 * malloc alone, so the cache overflows and frees go to the arena too.
 * libevent and libcurl calloc a dozen blocks for every request.
 */
static void *
zalloc(size_t n, size_t size)
{
	void *p;

	if (size != 0 && n > SIZE_MAX / size)
		return NULL;
	if ((p = malloc(n * size)) == NULL)
		return NULL;
	/* keeps the compiler from making the pair a calloc again */
	__asm__ volatile("" : : "r"(p) : "memory");
	return memset(p, 0, n * size);
}

/*
 * Before either library allocates anything: libevent's allocations go
 * through malloc (its calloc is then malloc and memset), and libcurl's
 * callocs through zalloc().
 */
static int
libs_init(void)
{
	event_set_mem_functions(malloc, realloc, free);
	return curl_global_init_mem(CURL_GLOBAL_DEFAULT, malloc, free,
	    realloc, strdup, zalloc) == CURLE_OK ? 0 : -1;
}

/*
 * ringlb --check: ask the ringlb on --listen for its /heartbeat, for a
 * container's HEALTHCHECK (the image has no curl program).  Blocking is
 * fine here: this process does nothing else.  0 if it answered 200.
 */
static int
check_running(const struct config *cfg)
{
	char url[REPLICA_URL_MAX + 32];
	const char *host = cfg->listen_host;
	long code = 0;
	CURLcode rc;
	CURL *e;

	if (strcmp(host, "0.0.0.0") == 0 || host[0] == '\0')
		host = "127.0.0.1";
	else if (strcmp(host, "::") == 0)
		host = "::1";
	snprintf(url, sizeof(url), strchr(host, ':') ? "http://[%s]:%u/heartbeat" :
	    "http://%s:%u/heartbeat", host, (unsigned)cfg->listen_port);
	if ((e = curl_easy_init()) == NULL)
		return 1;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 3000L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, curlev_discard);
	rc = curl_easy_perform(e);
	if (rc == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(e);
	curl_global_cleanup();
	if (rc != CURLE_OK)
		fprintf(stderr, "ringlb: %s: %s\n", url, curl_easy_strerror(rc));
	else if (code != 200)
		fprintf(stderr, "ringlb: %s answered %ld\n", url, code);
	return rc == CURLE_OK && code == 200 ? 0 : 1;
}


/*
 * Descriptors: each client connection takes one, and so may its request
 * in flight to a replica; idle keep-alive connections to replicas
 * (--upstream-connections) take one each, as do connections past
 * --max-connections while they are refused (a quarter as many again is
 * kept for them), and ringlb itself (heartbeats, replicas' pipes, logs, a
 * worker) some more, and each further worker FD_WORKER (its event loop,
 * wake-ups, listener, libcurl's own); each worker keeps one idle
 * connection to replicas at least.  Raise the soft limit to the hard one
 * if that is what it takes; if even that cannot hold them, share out the
 * limit: an eighth to a quarter for ringlb's own, a quarter of the rest
 * at most for idle replica connections, and the others for clients, so
 * that accept() and connect() never fail for want of descriptors and a
 * small limit still serves.  What the limit allows is logged: a warning
 * when it cuts an option the user gave.
 */
#define FD_OWN_MIN	24
#define FD_OWN_MAX	256
#define FD_WORKER	8	/* each worker's loop, wakes, listener, ... */

static void
fd_limit(struct config *cfg)
{
	struct rlimit rl;
	rlim_t own, rest, pool, fit, need;
	rlim_t workers = (rlim_t)(cfg->workers - 1) * FD_WORKER;
	long conns = cfg->max_connections, idle = cfg->upstream_maxconns;

	/* each worker keeps at least one idle connection to replicas */
	if (idle < cfg->workers)
		idle = cfg->workers;
	need = FD_OWN_MAX + workers + (rlim_t)conns * 9 / 4 + 1 + (rlim_t)idle;
	if (fd_limit_raise(need, &rl) == -1)
		return;
	if (rl.rlim_cur >= need)
		return;
	own = rl.rlim_cur / 4;
	own = own < FD_OWN_MIN ? FD_OWN_MIN : own > FD_OWN_MAX ? FD_OWN_MAX :
	    own;
	own += workers;
	if (own > rl.rlim_cur)
		own = rl.rlim_cur;
	rest = rl.rlim_cur - own;
	pool = rest / 4 < (rlim_t)idle ? rest / 4 : (rlim_t)idle;
	fit = (rest - pool) * 4 / 9;
	if (fit >= (rlim_t)conns) {
		/* the clients fit: the idle connections take what is left */
		fit = (rlim_t)conns;
		pool = rest > fit * 9 / 4 + 1 ? rest - (fit * 9 / 4 + 1) : 0;
		if (pool > (rlim_t)idle)
			pool = (rlim_t)idle;
	}
	if (fit < 1)
		fit = 1;
	if (pool < 1)
		pool = 1;
	if ((fit < (rlim_t)conns && cfg->max_connections_given) ||
	    (pool < (rlim_t)idle && cfg->upstream_maxconns_given)) {
		char cut[256] = "";

		if (fit < (rlim_t)conns)
			snprintf(cut, sizeof(cut), "%llu client connection%s, "
			    "not %ld (--max-connections)",
			    (unsigned long long)fit, fit == 1 ? "" : "s", conns);
		if (pool < (rlim_t)idle)
			snprintf(cut + strlen(cut), sizeof(cut) - strlen(cut),
			    "%s%llu idle connection%s to replicas, not %ld "
			    "(--upstream-connections)", cut[0] ? " and " : "",
			    (unsigned long long)pool, pool == 1 ? "" : "s",
			    idle);
		log_warnx("the descriptor limit (%llu) holds %s; raise ulimit "
		    "-n for more", (unsigned long long)rl.rlim_cur, cut);
	} else
		log_info("the descriptor limit (%llu) allows %llu client "
		    "connection%s (--max-connections) and %llu idle "
		    "connection%s to replicas (--upstream-connections), "
		    "keeping %llu for ringlb itself; raise ulimit -n for more",
		    (unsigned long long)rl.rlim_cur, (unsigned long long)fit,
		    fit == 1 ? "" : "s", (unsigned long long)pool,
		    pool == 1 ? "" : "s", (unsigned long long)own);
	cfg->max_connections = (long)fit;
	cfg->upstream_maxconns = (long)pool;
}

int
main(int argc, char **argv)
{
	static struct ringlb lb;
	char err[512];
	int rc;

	log_init("ringlb", LOG_LEVEL_INFO);
	if (libs_init() == -1)
		fatalx("cannot initialise libcurl");
	rc = config_parse(&lb.cfg, argc, argv, err, sizeof(err));
	if (rc == 1)
		return 0;
	if (rc == -1) {
		fprintf(stderr, "ringlb: %s\n", err);
		return 2;
	}
	if (lb.cfg.check)
		return check_running(&lb.cfg);
	log_init("ringlb", lb.cfg.log_level);
	if (evhttp_peek_check(err, sizeof(err)) == -1)
		fatalx("%s", err);
	signal(SIGPIPE, SIG_IGN);
	/*
	 * A route table (the ring's 2 MiB of arcs) is made and freed on
	 * every membership change.  Blocks that big stay mmap'd, and go back
	 * to the system when freed, instead of glibc raising its threshold
	 * after the first free and keeping the next ones in the heap.
	 */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	fd_limit(&lb.cfg);
	if ((lb.base = event_loop_new()) == NULL)
		fatalx("cannot create the event loop");

	/*
	 * The control plane (pool, admin API, its relay), then the workers,
	 * listening but not running until the replicas are under way.
	 */
	if ((lb.pool = pool_new(lb.base, &lb.cfg, err, sizeof(err))) == NULL)
		fatalx("%s", err);
	if ((lb.admin = admin_new(&lb.cfg, lb.pool)) == NULL ||
	    (lb.ctl = ctl_new(lb.base, admin_serve, lb.admin)) == NULL)
		fatalx("out of memory");
	if ((lb.workers = workers_new(&lb.cfg, lb.ctl, lb.base, err,
	    sizeof(err))) == NULL)
		fatalx("%s", err);
	admin_set_workers(lb.admin, lb.workers);
	pool_set_publish(lb.pool, workers_publish, lb.workers);

	lb.sigterm = evsignal_new(lb.base, SIGTERM, on_signal, &lb);
	lb.sigint = evsignal_new(lb.base, SIGINT, on_signal, &lb);
	lb.sighup = evsignal_new(lb.base, SIGHUP, on_sighup, &lb);
	lb.drain = evtimer_new(lb.base, drain_tick, &lb);
	lb.deadline = evtimer_new(lb.base, on_deadline, &lb);
	if (lb.sigterm == NULL || lb.sigint == NULL || lb.sighup == NULL ||
	    lb.drain == NULL || lb.deadline == NULL ||
	    evsignal_add(lb.sigterm, NULL) == -1 ||
	    evsignal_add(lb.sigint, NULL) == -1 ||
	    evsignal_add(lb.sighup, NULL) == -1)
		fatalx("cannot set up signal handling");

	if (pool_start(lb.pool, err, sizeof(err)) == -1 ||
	    workers_start(lb.workers, err, sizeof(err)) == -1)
		fatalx("%s", err);
	log_info("ringlb listening on http://%s:%u (%s backend, %d replicas, "
	    "%s ring, %d worker%s)", lb.cfg.listen_host,
	    (unsigned)lb.cfg.listen_port, lb.cfg.backend, pool_size(lb.pool),
	    ring_algo_name(lb.cfg.ring.algo), lb.cfg.workers,
	    lb.cfg.workers == 1 ? "" : "s");
	admin_log_access(lb.admin);

	event_base_dispatch(lb.base);

	event_free(lb.deadline);
	event_free(lb.drain);
	event_free(lb.sighup);
	event_free(lb.sigint);
	event_free(lb.sigterm);
	/*
	 * The threads first; then the control plane, which answers what it
	 * still holds (an /add cut short) to the workers' mailboxes; then
	 * the workers' structures, dropping those answers.
	 */
	workers_stop(lb.workers);
	pool_set_publish(lb.pool, NULL, NULL);
	pool_free(lb.pool);
	admin_free(lb.admin);
	ctl_free(lb.ctl);
	workers_free(lb.workers);
	event_base_free(lb.base);
	curl_global_cleanup();
	log_info("stopped");
	return 0;
}
