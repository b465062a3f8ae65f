/*
 * test_pool.c - the pool's state machine, with a fake backend and fake
 * heartbeats.
 *
 * pool.c is linked with this file in place of backend.c and health.c:
 * the fake backend records every spawn and stop and answers them only
 * when a test says so; the fake health module records every heartbeat
 * asked for, and a test decides each one's result.  The pool's own
 * timer runs on a real event loop, turned by loop_for().
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "backend.h"
#include "config.h"
#include "harness.h"
#include "health.h"
#include "log.h"
#include "pool.h"
#include "replica.h"
#include "route.h"
#include "util.h"

/* --- the fake backend --------------------------------------------------- */

#define FAKE_MAX	64

struct pending {
	struct replica	*rep;
	backend_done_cb	 done;
	void		*arg;
};

static struct {
	struct backend	 be;
	int		 spawns, stops;
	struct pending	 spawn[FAKE_MAX];	/* not answered yet */
	int		 nspawn;
	struct pending	 stop[FAKE_MAX];
	int		 nstop;
	int		 capacity;
	int		 clash;		/* names equal but for case clash */
} fake;

/* A call to answer later: counted and kept in list. */
static void
record(int *count, struct pending *list, int *n, struct replica *rep,
    backend_done_cb done, void *arg)
{
	(*count)++;
	list[(*n)++] = (struct pending){ rep, done, arg };
}

static void
fake_spawn(struct backend *be, struct replica *rep, backend_done_cb done,
    void *arg)
{
	(void)be;
	record(&fake.spawns, fake.spawn, &fake.nspawn, rep, done, arg);
}

static void
fake_stop(struct backend *be, struct replica *rep, backend_done_cb done,
    void *arg)
{
	(void)be;
	record(&fake.stops, fake.stop, &fake.nstop, rep, done, arg);
}

static int
fake_capacity(struct backend *be)
{
	(void)be;
	return fake.capacity;
}

/* As the docker backend's container names would: case does not count. */
static int
fake_name_clash(struct backend *be, const char *a, const char *b, char *why,
    size_t whylen)
{
	(void)be;
	if (!fake.clash || strcasecmp(a, b) != 0)
		return 0;
	snprintf(why, whylen, "'%s' clashes with '%s'", a, b);
	return 1;
}

static const struct backend_ops fake_ops = {
	.name = "fake",
	.replaces = 1,
	.initial = backend_initial_names,
	.capacity = fake_capacity,
	.name_clash = fake_name_clash,
	.spawn = fake_spawn,
	.stop = fake_stop,
};

struct backend *
backend_new(struct event_base *base, const struct config *cfg,
    backend_lost_cb lost, void *lost_arg, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	fake.be.ops = &fake_ops;
	fake.be.base = base;
	fake.be.cfg = cfg;
	fake.be.lost = lost;
	fake.be.lost_arg = lost_arg;
	return &fake.be;
}

void
backend_free(struct backend *be)
{
	(void)be;
}

int
backend_initial_names(struct backend *be, char (*names)[RING_NAME_LEN],
    int max)
{
	const struct config *c = be->cfg;
	int i;

	if (c->nreplica_names == 0)
		return replica_generated_names(c->name_style, c->replicas,
		    names, max);
	for (i = 0; i < c->nreplica_names && i < max; i++)
		memcpy(names[i], c->replica_names[i], RING_NAME_LEN);
	return i;
}

/* Answer the spawn of name (or, with NULL, every one): 0 or -1. */
static int
answer_spawn(const char *name, int status)
{
	int i, n = 0;

	for (i = 0; i < fake.nspawn; i++) {
		struct pending p = fake.spawn[i];

		if (name != NULL && strcmp(p.rep->name, name) != 0)
			continue;
		memmove(&fake.spawn[i], &fake.spawn[i + 1],
		    (fake.nspawn - i - 1) * sizeof(fake.spawn[0]));
		fake.nspawn--;
		i--;
		if (status == 0)
			replica_set_address(p.rep, "127.0.0.1", 1000 + n);
		p.done(p.rep, status, status ? "it would not start" : NULL,
		    p.arg);
		n++;
	}
	return n;
}

static int
answer_stops(void)
{
	int n = fake.nstop;

	while (fake.nstop > 0) {
		struct pending p = fake.stop[--fake.nstop];

		p.done(p.rep, 0, NULL, p.arg);
	}
	return n;
}

/* --- the fake heartbeats ------------------------------------------------ */

static struct {
	health_result_cb	 result;
	void			*arg;
	struct replica		*asked[FAKE_MAX];	/* checks out */
	int			 nasked;
} hc;

struct health *
health_new(struct event_base *base, const struct config *cfg,
    health_result_cb result, void *arg)
{
	(void)base;
	(void)cfg;
	hc.result = result;
	hc.arg = arg;
	hc.nasked = 0;
	return (struct health *)&hc;
}

void
health_free(struct health *h)
{
	(void)h;
}

void
health_check(struct health *h, struct replica *rep)
{
	(void)h;
	if (rep->hc_busy || hc.nasked == FAKE_MAX)
		return;
	rep->hc_busy = 1;
	hc.asked[hc.nasked++] = rep;
}

void
health_forget(struct health *h, struct replica *rep)
{
	int i;

	(void)h;
	for (i = 0; i < hc.nasked; i++)
		if (hc.asked[i] == rep) {
			hc.asked[i] = hc.asked[--hc.nasked];
			i--;
		}
	rep->hc_busy = 0;
}

/* Give every heartbeat out to name (NULL: to all) the result ok. */
static int
heartbeat(const char *name, int ok)
{
	int i, n = 0;

	for (i = 0; i < hc.nasked; i++) {
		struct replica *rep = hc.asked[i];

		if (name != NULL && strcmp(rep->name, name) != 0)
			continue;
		hc.asked[i] = hc.asked[--hc.nasked];
		i--;
		rep->hc_busy = 0;
		hc.result(rep, ok, ok ? NULL : "heartbeat failed", hc.arg);
		n++;
	}
	return n;
}

/* --- the fixture -------------------------------------------------------- */

static struct event_base *base;
static struct config cfg;
static struct pool *pool;

static void
loop_for(int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;

	while (now_ms() < end)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	/* timers due by now run even if the machine stalled meanwhile */
	event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
}

/* Turn the loop until every due heartbeat of the up replicas is out. */
static void
let_checks_go_out(void)
{
	loop_for(cfg.health_interval_ms + 60);
}

static struct replica *
find(const char *name)
{
	int i;

	for (i = 0; i < pool_size(pool); i++)
		if (strcmp(pool_replica(pool, i)->name, name) == 0)
			return pool_replica(pool, i);
	return NULL;
}

/* A pool of n replicas, each spawned, answered and on the ring. */
static void
setup(int n)
{
	char err[256];

	memset(&fake, 0, sizeof(fake));
	memset(&cfg, 0, sizeof(cfg));
	cfg.replicas = n;
	cfg.start_timeout_ms = 300;
	cfg.stop_grace_ms = 5000;	/* never what ends a test's wait */
	cfg.health_interval_ms = 50;
	cfg.health_timeout_ms = 50;
	cfg.health_failures = 2;
	cfg.ring.algo = RING_ALGO_HASH;
	cfg.ring.vnodes = 16;
	base = event_base_new();
	pool = pool_new(base, &cfg, err, sizeof(err));
	CHECK(pool != NULL);
	CHECK(pool_start(pool, err, sizeof(err)) == 0);
	CHECK_EQ_INT(fake.spawns, n);
	CHECK_EQ_INT(answer_spawn(NULL, 0), n);
	loop_for(60);
	CHECK_EQ_INT(heartbeat(NULL, 1), n);
	CHECK_EQ_INT(pool_healthy(pool), n);
}

static void
teardown(void)
{
	pool_free(pool);
	event_base_free(base);
	pool = NULL;
}

/* --- the tests ---------------------------------------------------------- */

static void
test_start_joins_on_first_heartbeat(void)
{
	char err[256];

	memset(&fake, 0, sizeof(fake));
	memset(&cfg, 0, sizeof(cfg));
	cfg.replicas = 2;
	cfg.start_timeout_ms = 1000;
	cfg.stop_grace_ms = 200;
	cfg.health_interval_ms = 50;
	cfg.health_timeout_ms = 50;
	cfg.health_failures = 2;
	cfg.ring.algo = RING_ALGO_HASH;
	cfg.ring.vnodes = 16;
	base = event_base_new();
	pool = pool_new(base, &cfg, err, sizeof(err));
	CHECK(pool_start(pool, err, sizeof(err)) == 0);
	CHECK_EQ_INT(pool_size(pool), 2);
	CHECK_EQ_INT(pool_healthy(pool), 0);
	/* no heartbeat before the backend gave an address */
	loop_for(60);
	CHECK_EQ_INT(hc.nasked, 0);
	CHECK_EQ_INT(answer_spawn("Server 1", 0), 1);
	loop_for(60);
	CHECK_EQ_INT(hc.nasked, 1);
	/* a failed first heartbeat keeps it off the ring, no eviction */
	CHECK_EQ_INT(heartbeat("Server 1", 0), 1);
	CHECK_EQ_INT(pool_healthy(pool), 0);
	CHECK(find("Server 1")->state == REPLICA_STARTING);
	loop_for(80);
	CHECK_EQ_INT(heartbeat("Server 1", 1), 1);
	CHECK_EQ_INT(pool_healthy(pool), 1);
	CHECK(find("Server 1")->state == REPLICA_UP);
	CHECK(pool_owner(pool, "k", 1) == find("Server 1"));
	teardown();
}

static void
test_failed_heartbeats_evict_and_respawn(void)
{
	struct replica *r;

	setup(3);
	r = find("Server 2");
	let_checks_go_out();
	CHECK_EQ_INT(heartbeat("Server 2", 0), 1);
	/* one failure is not enough (--health-failures 2) */
	CHECK(r->state == REPLICA_UP);
	CHECK_EQ_INT(pool_healthy(pool), 3);
	let_checks_go_out();
	CHECK_EQ_INT(heartbeat("Server 2", 0), 1);
	CHECK(r->state == REPLICA_STARTING);
	CHECK_EQ_INT(pool_healthy(pool), 2);
	CHECK_EQ_INT(fake.spawns, 4);		/* replaced, same name */
	CHECK_EQ_INT(r->respawns, 1);
	CHECK_EQ_INT(r->heartbeat_failures, 2);
	/* the others answer; it comes back once its new one answers */
	heartbeat(NULL, 1);
	CHECK_EQ_INT(answer_spawn("Server 2", 0), 1);
	loop_for(80);
	CHECK_EQ_INT(heartbeat("Server 2", 1), 1);
	CHECK(r->state == REPLICA_UP);
	CHECK_EQ_INT(pool_healthy(pool), 3);
	teardown();
}

static void
test_lost_replica_is_replaced_at_once(void)
{
	struct replica *r;

	setup(3);
	r = find("Server 3");
	fake.be.lost(r, "its process exited with status 1",
	    fake.be.lost_arg);
	CHECK(r->state == REPLICA_STARTING);
	CHECK_EQ_INT(pool_healthy(pool), 2);
	CHECK_EQ_INT(fake.spawns, 4);
	CHECK(pool_owner(pool, "k", 1) != r);
	teardown();
}

/* Bring the replica being started back up: its spawn and heartbeat. */
static void
answer_start(struct replica *r)
{
	CHECK_EQ_INT(answer_spawn(r->name, 0), 1);
	loop_for(60);
	CHECK_EQ_INT(heartbeat(r->name, 1), 1);
	CHECK(r->state == REPLICA_UP);
}

/*
 * An instance dying soon after joining counts as a failed start: the
 * first is replaced at once, the next ones wait, doubling from 1 s; one
 * that stayed up clears the count.
 */
static void
test_early_deaths_back_off(void)
{
	struct replica *r;

	setup(1);
	r = pool_replica(pool, 0);
	fake.be.lost(r, "exited", fake.be.lost_arg);
	CHECK_EQ_INT(fake.spawns, 2);		/* the first: at once */
	answer_start(r);
	fake.be.lost(r, "exited", fake.be.lost_arg);
	CHECK_EQ_INT(fake.spawns, 2);		/* the second waits 1 s */
	CHECK(r->state == REPLICA_DOWN);
	CHECK_EQ_INT((int)r->respawn_delay_ms, 1000);
	CHECK_EQ_INT(pool_healthy(pool), 0);
	loop_for(500);
	CHECK_EQ_INT(fake.spawns, 2);
	CHECK_EQ_INT(hc.nasked, 0);		/* no heartbeat to the dead */
	loop_for(600);
	CHECK_EQ_INT(fake.spawns, 3);
	answer_start(r);
	fake.be.lost(r, "exited", fake.be.lost_arg);
	CHECK_EQ_INT((int)r->respawn_delay_ms, 2000);	/* doubled */
	CHECK_EQ_INT(fake.spawns, 3);
	r->respawn_at = now_ms();		/* skip the wait */
	loop_for(60);
	CHECK_EQ_INT(fake.spawns, 4);
	answer_start(r);
	/* this one stays up: its death is replaced at once, the count is
	 * cleared, and the next early death is again replaced at once */
	r->up_since -= 10000;
	fake.be.lost(r, "exited", fake.be.lost_arg);
	CHECK_EQ_INT(fake.spawns, 5);
	CHECK_EQ_INT((int)r->respawn_delay_ms, 0);
	answer_start(r);
	fake.be.lost(r, "exited", fake.be.lost_arg);
	CHECK_EQ_INT(fake.spawns, 6);
	teardown();
}

static void
test_suspect_is_checked_now_and_evicted_on_failure(void)
{
	struct replica *r;

	setup(2);
	r = find("Server 1");
	heartbeat(NULL, 1);
	pool_suspect(pool, r);
	CHECK(r->state == REPLICA_SUSPECT);
	CHECK_EQ_INT(pool_healthy(pool), 2);	/* still on the ring */
	loop_for(40);				/* checked at once */
	CHECK_EQ_INT(heartbeat("Server 1", 0), 1);
	CHECK(r->state == REPLICA_STARTING);	/* one failure suffices */
	CHECK_EQ_INT(pool_healthy(pool), 1);
	teardown();
}

static int add_status = 99, add_code;

static void
on_add(int status, int http_code, const char *why, void *arg)
{
	(void)why;
	(void)arg;
	add_status = status;
	add_code = http_code;
}

static void
test_add_joins_together_or_not_at_all(void)
{
	char names[2][RING_NAME_LEN] = { "a", "b" }, err[256];
	int code;

	setup(1);
	add_status = 99;
	CHECK(pool_add(pool, names, 2, 2, on_add, NULL, &code, err,
	    sizeof(err)) == 0);
	CHECK_EQ_INT(pool_size(pool), 1);	/* not listed while pending */
	CHECK(pool_has(pool, "a"));
	/* a second /add waits its turn */
	CHECK(pool_add(pool, names, 1, 1, on_add, NULL, &code, err,
	    sizeof(err)) == -1);
	CHECK_EQ_INT(code, 409);
	answer_spawn(NULL, 0);
	loop_for(60);
	CHECK_EQ_INT(heartbeat("a", 1), 1);
	CHECK_EQ_INT(add_status, 99);		/* b has not answered */
	CHECK_EQ_INT(pool_healthy(pool), 1);
	loop_for(80);
	CHECK_EQ_INT(heartbeat("b", 1), 1);
	CHECK_EQ_INT(add_status, 0);
	CHECK_EQ_INT(pool_size(pool), 3);
	CHECK_EQ_INT(pool_healthy(pool), 3);
	teardown();

	/* one that cannot start undoes the whole /add */
	setup(1);
	add_status = 99;
	CHECK(pool_add(pool, names, 2, 2, on_add, NULL, &code, err,
	    sizeof(err)) == 0);
	CHECK_EQ_INT(answer_spawn("a", 0), 1);
	CHECK_EQ_INT(answer_spawn("b", -1), 1);
	CHECK_EQ_INT(add_status, -1);
	CHECK_EQ_INT(add_code, 500);
	CHECK_EQ_INT(pool_size(pool), 1);
	CHECK(!pool_has(pool, "a") && !pool_has(pool, "b"));
	loop_for(60);
	CHECK_EQ_INT(fake.stops, 2);		/* both stopped again */
	answer_stops();
	loop_for(60);
	CHECK(!pool_has(pool, "a"));
	teardown();
}

static void
test_add_past_the_backends_capacity(void)
{
	char names[3][RING_NAME_LEN] = { "a", "b", "c" }, err[256];
	int code;

	setup(2);
	fake.capacity = 4;
	CHECK(pool_add(pool, names, 3, 3, on_add, NULL, &code, err,
	    sizeof(err)) == -1);
	CHECK_EQ_INT(code, 400);
	CHECK(strstr(err, "at most 4 replicas") != NULL);
	CHECK_EQ_INT(fake.spawns, 2);
	teardown();
}

/* The contract of backend.h: no stop while a spawn is out. */
static void
test_no_stop_while_a_spawn_is_out(void)
{
	char names[1][RING_NAME_LEN] = { "Server 2" }, err[256];
	struct replica *r;
	int code;

	setup(2);
	r = find("Server 2");
	fake.be.lost(r, "its container died", fake.be.lost_arg);
	CHECK(r->spawning);			/* the replacement is out */
	CHECK(pool_remove(pool, names, 1, &code, err, sizeof(err)) == 0);
	CHECK(r->state == REPLICA_STOPPING);
	loop_for(300);
	CHECK_EQ_INT(fake.stops, 0);		/* waits for the spawn */
	CHECK_EQ_INT(answer_spawn("Server 2", 0), 1);
	loop_for(60);
	CHECK_EQ_INT(fake.stops, 1);		/* then stops what it made */
	CHECK_EQ_INT(answer_stops(), 1);
	loop_for(60);
	CHECK(!pool_has(pool, "Server 2"));
	CHECK_EQ_INT(pool_size(pool), 1);
	teardown();
}

static void
test_start_timeout_starts_again(void)
{
	struct replica *r;

	setup(1);
	r = find("Server 1");
	fake.be.lost(r, "gone", fake.be.lost_arg);
	CHECK_EQ_INT(answer_spawn("Server 1", 0), 1);
	/*
	 * it never answers a heartbeat: its start fails after 300 ms, the
	 * second failure in a row (the first was its death so soon after
	 * joining), so it is started again 1 s later
	 */
	loop_for(cfg.start_timeout_ms + 1000 + 100);
	heartbeat(NULL, 0);
	CHECK(fake.spawns >= 3);
	CHECK(r->state == REPLICA_STARTING);
	CHECK_EQ_INT(pool_healthy(pool), 0);
	teardown();
}

static void
test_remove_drains_in_flight_first(void)
{
	char names[1][RING_NAME_LEN] = { "Server 1" }, err[256];
	struct replica *r;
	int code;

	setup(2);
	r = find("Server 1");
	r->stats->inflight = 1;
	CHECK(pool_remove(pool, names, 1, &code, err, sizeof(err)) == 0);
	CHECK_EQ_INT(pool_healthy(pool), 1);	/* off the ring at once */
	CHECK_EQ_INT(pool_size(pool), 1);
	loop_for(60);
	CHECK_EQ_INT(fake.stops, 0);		/* a request still runs */
	r->stats->inflight = 0;
	loop_for(60);
	CHECK_EQ_INT(fake.stops, 1);
	answer_stops();
	teardown();
}

/*
 * Generated names follow --name-style and take the smallest free number:
 * a gap first; never a name in use, about to be used, or clashing.
 */
static void
test_generated_names(void)
{
	char taken[2][RING_NAME_LEN] = { "Server 3", "server 4" };
	char out[3][RING_NAME_LEN], err[256];
	int code;

	setup(2);
	CHECK(find("Server 1") != NULL && find("Server 2") != NULL);
	pool_generate_names(pool, taken, 1, out, 2);
	CHECK(strcmp(out[0], "Server 4") == 0);
	CHECK(strcmp(out[1], "Server 5") == 0);
	/* a name the backend cannot run beside "server 4" is skipped */
	fake.clash = 1;
	pool_generate_names(pool, taken + 1, 1, out, 2);
	CHECK(strcmp(out[0], "Server 3") == 0);
	CHECK(strcmp(out[1], "Server 5") == 0);
	CHECK(pool_name_clash(pool, "SERVER 1", NULL, 0, err,
	    sizeof(err)) == 1);
	CHECK(strstr(err, "'SERVER 1' clashes with 'Server 1'") != NULL);
	CHECK(pool_name_clash(pool, "Server 1", NULL, 0, err,
	    sizeof(err)) == 0);
	/* a gap left by /rm is filled first */
	memcpy(out[0], "Server 1", sizeof("Server 1"));
	CHECK(pool_remove(pool, out, 1, &code, err, sizeof(err)) == 0);
	answer_stops();
	loop_for(60);
	pool_generate_names(pool, NULL, 0, out, 2);
	CHECK(strcmp(out[0], "Server 1") == 0);
	CHECK(strcmp(out[1], "Server 3") == 0);
	teardown();

	/* the old style, one option away */
	memset(&cfg, 0, sizeof(cfg));
	cfg.name_style = REPLICA_NAMES_DNS;
	cfg.replicas = 2;
	cfg.start_timeout_ms = 300;
	cfg.stop_grace_ms = 200;
	cfg.health_interval_ms = 50;
	cfg.health_timeout_ms = 50;
	cfg.health_failures = 2;
	cfg.ring.algo = RING_ALGO_HASH;
	cfg.ring.vnodes = 16;
	memset(&fake, 0, sizeof(fake));
	base = event_base_new();
	pool = pool_new(base, &cfg, err, sizeof(err));
	CHECK(pool_start(pool, err, sizeof(err)) == 0);
	CHECK(pool_has(pool, "server-1") && pool_has(pool, "server-2"));
	pool_generate_names(pool, NULL, 0, out, 1);
	CHECK(strcmp(out[0], "server-3") == 0);
	answer_spawn(NULL, 0);
	teardown();

	/* names given at startup that the backend cannot run together */
	memcpy(cfg.replica_names[0], "Server 1", sizeof("Server 1"));
	memcpy(cfg.replica_names[1], "server 1", sizeof("server 1"));
	cfg.nreplica_names = cfg.replicas = 2;
	memset(&fake, 0, sizeof(fake));
	fake.clash = 1;
	base = event_base_new();
	pool = pool_new(base, &cfg, err, sizeof(err));
	CHECK(pool_start(pool, err, sizeof(err)) == -1);
	CHECK(strstr(err, "'server 1' clashes with 'Server 1'") != NULL);
	CHECK_EQ_INT(fake.spawns, 0);
	teardown();
}

int
main(void)
{
	static const struct test_case tests[] = {
		{ "start joins on the first heartbeat",
		    test_start_joins_on_first_heartbeat },
		{ "early deaths back off, a stable run clears it",
		    test_early_deaths_back_off },
		{ "failed heartbeats evict and respawn",
		    test_failed_heartbeats_evict_and_respawn },
		{ "a lost replica is replaced at once",
		    test_lost_replica_is_replaced_at_once },
		{ "a suspect is checked now, evicted on failure",
		    test_suspect_is_checked_now_and_evicted_on_failure },
		{ "/add joins together or not at all",
		    test_add_joins_together_or_not_at_all },
		{ "/add past the backend's capacity",
		    test_add_past_the_backends_capacity },
		{ "no stop while a spawn is out",
		    test_no_stop_while_a_spawn_is_out },
		{ "start timeout starts again",
		    test_start_timeout_starts_again },
		{ "/rm drains in-flight requests first",
		    test_remove_drains_in_flight_first },
		{ "generated names: style, gaps, clashes",
		    test_generated_names },
	};

	log_init("test_pool", LOG_LEVEL_ERROR);	/* the pool's news */
	return harness_run("pool", tests, sizeof(tests) / sizeof(tests[0]));
}
