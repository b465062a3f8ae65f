/*
 * pool.c - the replica set, its ring, and the life of each replica.
 *
 *   STARTING --first heartbeat--> UP --failed heartbeats / exit--> DOWN
 *      ^                           |  ^                              |
 *      |                     refused  | answers                      |
 *      |                           v  |                              |
 *      +------ spawned again ---- SUSPECT                            |
 *      +---------------------------------- spawned again (process) --+
 *                                          (static: waits, re-admits)
 *   /rm: any state --> STOPPING --in flight done--> stop --> freed
 *
 * Replicas are kept in one array in name order; a replica being removed
 * stays there (STOPPING) until its process is gone and no transfer still
 * refers to it, so a name can be reused at once.  The ring holds exactly
 * the UP and SUSPECT replicas: each one joining or leaving is one
 * ring_add() or ring_remove(), which moves only the keys that must move.
 *
 * One timer ticks every POOL_TICK_MS and does all the waiting: heartbeats
 * that are due, start timeouts, respawn back-off, draining and freeing.
 *
 * Back-off.  A start fails when the spawn fails, the instance dies
 * before its first heartbeat, or it gives no heartbeat answer within
 * --start-timeout; an instance that dies within POOL_STABLE_MS of joining
 * the ring counts as a failed start too.  Failures in a row are counted
 * together: the first is retried at once (a replica killed by hand comes
 * back at once; a failed spawn after 0.1 s), each further one waits twice
 * as long as the last, from 1 s up to 30 s - so a replica that crashes
 * just before or just after its first heartbeat is started about 6 times
 * in its first minute (at 0, 1, 3, 7, 15 and 31 s), then twice a minute.
 * An instance that stays up POOL_STABLE_MS clears the count and the
 * delay.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "backend.h"
#include "config.h"
#include "health.h"
#include "log.h"
#include "pool.h"
#include "replica.h"
#include "ring.h"
#include "route.h"
#include "state.h"
#include "util.h"

#define POOL_MAX		(CONFIG_REPLICAS_MAX * 2)
#define POOL_TICK_MS		25
#define POOL_FAST_CHECK_MS	50	/* heartbeats while starting */
#define RESPAWN_FIRST_MS	100	/* a first failed start waits this */
#define POOL_STABLE_MS		10000	/* dying sooner after joining fails */
#define BACKOFF_MIN_MS		1000	/* further failures wait this, */
#define BACKOFF_MAX_MS		30000	/* ... doubling up to this */
#define POOL_RENAMES_MAX	8	/* an /add's name taken meanwhile */

/* An /add in progress; at most one at a time. */
struct pool_op {
	struct replica	*reps[CONFIG_REPLICAS_MAX];
	int		 n;
	pool_add_cb	 done;
	void		*arg;
};

struct pool {
	struct event_base	*base;
	const struct config	*cfg;
	struct backend		*be;
	struct health		*health;
	struct route_table	*table;		/* the newest, published */
	void			(*publish)(struct route_table *, void *);
	void			*publish_arg;
	struct replica		**reps;		/* sorted by name */
	int			 nreps;
	uint64_t		 seq;
	uint64_t		 ring_changes;
	struct pool_op		*op;
	struct event		*tick;
	int			 shutting_down;
	void			(*shutdown_done)(void *);
	void			*shutdown_arg;
	struct pool_event	 events[POOL_EVENTS];	/* a ring buffer */
	size_t			 nevents;	/* ever recorded */
};

static void	pool_spawn(struct pool *, struct replica *);
static void	pool_retire(struct pool *, struct replica *);
static void	pool_note(struct pool *, const char *, const struct replica *,
		    const char *, ...) __attribute__((format(printf, 4, 5)));

/* Keep an event for the dashboard (kind is a string constant). */
static void
pool_note(struct pool *p, const char *kind, const struct replica *rep,
    const char *fmt, ...)
{
	struct pool_event *e = &p->events[p->nevents++ % POOL_EVENTS];
	struct timespec ts;
	va_list ap;

	clock_gettime(CLOCK_REALTIME, &ts);
	e->at_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	e->kind = kind;
	snprintf(e->replica, sizeof(e->replica), "%s", rep->name);
	va_start(ap, fmt);
	vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
	va_end(ap);
}

const struct pool_event *
pool_event(const struct pool *p, size_t i)
{
	size_t kept = p->nevents < POOL_EVENTS ? p->nevents : POOL_EVENTS;

	if (i >= kept)
		return NULL;
	return &p->events[(p->nevents - kept + i) % POOL_EVENTS];
}

const struct ring *
pool_ring(const struct pool *p)
{
	return p->table->ring;
}

/* --- the array -------------------------------------------------------- */

static int
visible(const struct replica *rep)
{
	return !rep->pending && rep->state != REPLICA_STOPPING;
}

static int
pool_insert(struct pool *p, struct replica *rep)
{
	int i;

	if (p->nreps == POOL_MAX)
		return -1;
	for (i = 0; i < p->nreps; i++)
		if (strcmp(p->reps[i]->name, rep->name) > 0)
			break;
	memmove(&p->reps[i + 1], &p->reps[i],
	    (p->nreps - i) * sizeof(p->reps[0]));
	p->reps[i] = rep;
	p->nreps++;
	return 0;
}

static void
pool_unlink(struct pool *p, struct replica *rep)
{
	int i;

	for (i = 0; i < p->nreps; i++)
		if (p->reps[i] == rep) {
			memmove(&p->reps[i], &p->reps[i + 1],
			    (p->nreps - i - 1) * sizeof(p->reps[0]));
			p->nreps--;
			return;
		}
}

static struct replica *
pool_new_replica(struct pool *p, const char *name)
{
	struct replica *rep;

	if ((rep = calloc(1, sizeof(*rep))) == NULL)
		return NULL;
	if ((rep->stats = route_stats_new()) == NULL) {
		free(rep);
		return NULL;
	}
	snprintf(rep->name, sizeof(rep->name), "%s", name);
	rep->seq = ++p->seq;
	rep->state = REPLICA_STARTING;
	if (pool_insert(p, rep) == -1) {
		replica_free(rep);
		return NULL;
	}
	return rep;
}

/* --- the ring --------------------------------------------------------- */

/*
 * After a change: every replica's share of the key space, for /metrics.
 * The ring's members are replicas of the pool, so at most POOL_MAX.
 */
static void
pool_update_shares(struct pool *p)
{
	struct ring *r = p->table->ring;
	double shares[POOL_MAX];
	int i, n = ring_count(r);

	for (i = 0; i < p->nreps; i++)
		p->reps[i]->keyspace_share = 0;
	if (n > POOL_MAX)
		return;
	ring_shares(r, shares);
	for (i = 0; i < n; i++)
		((struct replica *)route_table_member(p->table, i)->owner)->
		    keyspace_share = shares[i];
}

/* The replica on the ring at idx. */
static struct replica *
ring_replica(const struct pool *p, int idx)
{
	return idx == -1 ? NULL : route_table_member(p->table, idx)->owner;
}

/* t, a changed copy of the table, is the newest: hand it to the workers. */
static void
pool_publish(struct pool *p, struct route_table *t)
{
	route_table_unref(p->table);
	p->table = t;
	p->ring_changes++;
	pool_update_shares(p);
	if (p->publish != NULL)
		p->publish(t, p->publish_arg);
}

void
pool_set_publish(struct pool *p, void (*publish)(struct route_table *,
    void *), void *arg)
{
	p->publish = publish;
	p->publish_arg = arg;
	if (publish != NULL)
		publish(p->table, arg);
}

static void
ring_join(struct pool *p, struct replica *rep)
{
	struct route_table *t;
	struct route_member *m = NULL;
	char err[256];

	if ((t = route_table_clone(p->table)) == NULL ||
	    (m = route_member_new(rep, rep->stats, rep)) == NULL) {
		log_warnx("replica %s cannot join the ring: out of memory",
		    rep->name);
		route_table_unref(t);
		return;
	}
	if (ring_add(t->ring, rep->name, m, err, sizeof(err)) == -1) {
		log_warnx("replica %s cannot join the ring: %s", rep->name,
		    err);
		route_member_unref(m);
		route_table_unref(t);
		return;
	}
	pool_publish(p, t);
}

static void
ring_leave(struct pool *p, struct replica *rep)
{
	struct route_table *t;

	rep->keyspace_share = 0;
	if (ring_replica(p, ring_find(p->table->ring, rep->name)) != rep)
		return;
	if ((t = route_table_clone(p->table)) == NULL) {
		/* the replica must not be routed to: hold the rest */
		log_warnx("replica %s leaves the ring with the others: out of "
		    "memory for the ring without it", rep->name);
		t = route_table_new(&p->cfg->ring);
		if (t == NULL)
			fatalx("out of memory");
		t->replaces = p->table->replaces;
	} else {
		/* the clone holds its members: this one's hold goes too */
		struct route_member *m = route_table_member(t,
		    ring_find(t->ring, rep->name));

		ring_remove(t->ring, rep->name);
		route_member_unref(m);
	}
	pool_publish(p, t);
}

/* --- the state file --------------------------------------------------- */

static void
pool_save(struct pool *p)
{
	char (*names)[RING_NAME_LEN];
	char err[512];
	int i, n = 0;

	if (p->cfg->state_file[0] == '\0' || p->shutting_down)
		return;
	if ((names = calloc(POOL_MAX, sizeof(*names))) == NULL)
		return;
	for (i = 0; i < p->nreps; i++)
		if (visible(p->reps[i]))
			snprintf(names[n++], RING_NAME_LEN, "%s",
			    p->reps[i]->name);
	if (state_save(p->cfg->state_file, names, n, err, sizeof(err)) == -1)
		log_warnx("the replica set was not saved: %s", err);
	free(names);
}

/* --- /add ------------------------------------------------------------- */

static void
op_finish(struct pool *p, int status, int code, const char *why)
{
	struct pool_op *op = p->op;

	p->op = NULL;
	op->done(status, code, why, op->arg);
	free(op);
}

/* One replica of the /add failed: undo the whole /add. */
static void
op_fail(struct pool *p, struct replica *failed, const char *why)
{
	struct pool_op *op = p->op;
	char msg[768];
	int i;

	snprintf(msg, sizeof(msg), "replica '%s' could not be started (%s); "
	    "nothing was added", failed->name, why);
	log_warnx("%s", msg);
	pool_note(p, "add failed", failed, "%s; the whole /add was undone",
	    why);
	for (i = 0; i < op->n; i++)
		pool_retire(p, op->reps[i]);
	op_finish(p, -1, 500, msg);
}

/* Every replica of the /add answered: they join the ring together. */
static void
op_check_done(struct pool *p)
{
	struct pool_op *op = p->op;
	int i;

	for (i = 0; i < op->n; i++)
		if (!op->reps[i]->ready)
			return;
	for (i = 0; i < op->n; i++) {
		struct replica *rep = op->reps[i];

		rep->pending = 0;
		rep->ready = 0;
		rep->state = REPLICA_UP;
		rep->up_since = now_ms();
		rep->hc_next = rep->up_since + p->cfg->health_interval_ms;
		ring_join(p, rep);
		log_info("replica %s is up at %s:%u", rep->name, rep->host,
		    (unsigned)rep->port);
		pool_note(p, "joined", rep, "added, up at %s:%u", rep->host,
		    (unsigned)rep->port);
	}
	pool_save(p);
	op_finish(p, 0, 200, NULL);
}

/*
 * The most replicas there may be: ringlb's limit, the backend's, or the
 * ring's (the classic ring places at most 56), whichever is lowest; why
 * says which, and what to change, for an error message.
 */
static int
pool_capacity(const struct pool *p, char *why, size_t whylen)
{
	int cap = CONFIG_REPLICAS_MAX, be_cap, ring_cap;

	snprintf(why, whylen, "ringlb's limit");
	be_cap = p->be->ops->capacity ? p->be->ops->capacity(p->be) : 0;
	if (be_cap > 0 && be_cap < cap) {
		cap = be_cap;
		snprintf(why, whylen, "the %s backend's limit; raise it with "
		    "%s", p->be->ops->name, p->be->ops->capacity_option ?
		    p->be->ops->capacity_option : "its settings");
	}
	ring_cap = ring_capacity(&p->cfg->ring);
	if (ring_cap < cap) {
		cap = ring_cap;
		snprintf(why, whylen, "the classic ring's %d slots take %d "
		    "virtual servers per replica; use --ring table or --ring "
		    "hash for more", RING_CLASSIC_SLOTS, RING_CLASSIC_VNODES);
	}
	return cap;
}

int
pool_add(struct pool *p, char (*names)[RING_NAME_LEN], int n, int ngiven,
    pool_add_cb done, void *arg, int *http_code, char *err, size_t errlen)
{
	struct pool_op *op;
	char capwhy[256];
	int i, cap;

	if (p->op != NULL || p->shutting_down) {
		*http_code = p->shutting_down ? 503 : 409;
		snprintf(err, errlen, p->shutting_down ? "ringlb is shutting "
		    "down" : "another /add is still starting its replicas; "
		    "try again when it has answered");
		return -1;
	}
	if (pool_size(p) + n > (cap = pool_capacity(p, capwhy,
	    sizeof(capwhy)))) {
		*http_code = 400;
		snprintf(err, errlen, "at most %d replicas (%s); %d more would "
		    "make %d", cap, capwhy, n, pool_size(p) + n);
		return -1;
	}
	if ((op = calloc(1, sizeof(*op))) == NULL) {
		*http_code = 500;
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	op->done = done;
	op->arg = arg;
	for (i = 0; i < n; i++) {
		struct replica *rep = pool_new_replica(p, names[i]);

		if (rep == NULL) {
			while (op->n > 0)
				pool_retire(p, op->reps[--op->n]);
			free(op);
			*http_code = 500;
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		rep->pending = 1;
		rep->generated = i >= ngiven;
		op->reps[op->n++] = rep;
	}
	p->op = op;
	for (i = 0; i < n; i++)
		pool_spawn(p, op->reps[i]);
	return 0;
}

/* --- starting, eviction, replacement ---------------------------------- */

/*
 * Start rep again later, waiting twice as long as last time, at least
 * min and at most max.
 */
static void
schedule_respawn(struct replica *rep, unsigned min, unsigned max)
{
	unsigned d = rep->respawn_delay_ms * 2;

	if (d < min)
		d = min;
	if (d > max)
		d = max;
	if (d < rep->respawn_delay_ms)	/* never shorter than last time */
		d = rep->respawn_delay_ms;
	rep->respawn_delay_ms = d;
	rep->respawn_at = now_ms() + d;
}

/*
 * One more failure in a row of rep's starts (see the top of this file):
 * schedule the next start, 0.1 s after a first failure, then 1 s doubling
 * to 30 s.
 */
static void
start_failed(struct replica *rep)
{
	/* no heartbeats to what is left of it meanwhile; down, not
	 * starting, until the next start */
	rep->addressed = 0;
	rep->state = REPLICA_DOWN;
	if (rep->early_deaths++ == 0)
		schedule_respawn(rep, RESPAWN_FIRST_MS, RESPAWN_FIRST_MS);
	else
		schedule_respawn(rep, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
}

/* " N times in a row;" for a failure after the first, else "". */
static const char *
in_a_row(const struct replica *rep, char *buf, size_t len)
{
	if (rep->early_deaths < 2)
		return "";
	snprintf(buf, len, " %u times in a row;", rep->early_deaths);
	return buf;
}

/* Tell the dashboard that rep's next start waits. */
static void
note_backing_off(struct pool *p, const struct replica *rep, const char *what)
{
	pool_note(p, "backing off", rep, "%s %u times in a row; next start "
	    "in %.1f s", what, rep->early_deaths,
	    rep->respawn_delay_ms / 1000.0);
}

/*
 * rep, of an /add, was given a name another ringlb sharing the set took
 * first: it takes the next free one and starts again.
 */
static void
pool_rename(struct pool *p, struct replica *rep, const char *why)
{
	char name[RING_NAME_LEN];

	pool_generate_names(p, NULL, 0, &name, 1);
	log_info("replica %s: %s; adding it as %s instead", rep->name, why,
	    name);
	pool_unlink(p, rep);
	snprintf(rep->name, sizeof(rep->name), "%s", name);
	(void)pool_insert(p, rep);	/* it was there: there is room */
	rep->renames++;
	pool_spawn(p, rep);
}

static void
on_spawned(struct replica *rep, int status, const char *why, void *arg)
{
	struct pool *p = arg;
	char buf[40];

	rep->spawning = 0;
	if (rep->state == REPLICA_STOPPING)
		return;		/* removed meanwhile: the stop sees to it */
	if (status == BACKEND_NAME_TAKEN && rep->pending && rep->generated &&
	    rep->renames < POOL_RENAMES_MAX) {
		pool_rename(p, rep, why);
		return;
	}
	if (status != 0) {
		if (rep->pending) {
			op_fail(p, rep, why);
			return;
		}
		start_failed(rep);
		log_warnx("replica %s could not be started: %s;%s trying "
		    "again in %u ms", rep->name, why, in_a_row(rep, buf,
		    sizeof(buf)), rep->respawn_delay_ms);
		if (rep->early_deaths > 1)
			note_backing_off(p, rep, "failed to start");
		return;
	}
	rep->addressed = 1;
	/* --start-timeout is for the first heartbeat answer: it counts
	 * from when the instance has an address */
	rep->started_at = now_ms();
	rep->hc_next = 0;		/* check at once */
}

static void
pool_spawn(struct pool *p, struct replica *rep)
{
	rep->state = REPLICA_STARTING;
	rep->addressed = 0;
	rep->hc_fails = 0;
	rep->respawn_at = 0;
	rep->started_at = now_ms();
	rep->spawning = 1;
	p->be->ops->spawn(p->be, rep, on_spawned, p);
}

/*
 * Take rep off the ring; replace it (process, docker) or wait for it
 * (static).  An instance that dies soon after joining is replaced with
 * back-off (see the top of this file).
 */
static void
pool_evict(struct pool *p, struct replica *rep, const char *why)
{
	uint64_t now = now_ms();

	ring_leave(p, rep);
	rep->state = REPLICA_DOWN;
	pool_note(p, "evicted", rep, "%s", why);
	if (!p->be->ops->replaces) {
		log_warnx("replica %s evicted (%s); waiting for it to answer "
		    "again", rep->name, why);
		rep->hc_next = now + p->cfg->health_interval_ms;
		return;
	}
	if (now - rep->up_since >= POOL_STABLE_MS) {
		rep->early_deaths = 0;
		rep->respawn_delay_ms = 0;
	} else if (rep->early_deaths > 0) {
		start_failed(rep);
		log_warnx("replica %s evicted (%s) %llu ms after joining, %u "
		    "times in a row; starting a replacement in %u ms",
		    rep->name, why, (unsigned long long)(now - rep->up_since),
		    rep->early_deaths, rep->respawn_delay_ms);
		note_backing_off(p, rep, "died soon after joining");
		return;
	} else
		rep->early_deaths = 1;	/* replaced at once, this once */
	log_warnx("replica %s evicted (%s); starting a replacement",
	    rep->name, why);
	rep->respawns++;
	pool_spawn(p, rep);
}

static void
on_health(struct replica *rep, int ok, const char *why, void *arg)
{
	struct pool *p = arg;
	uint64_t now = now_ms();

	rep->hc_next = now + (rep->state == REPLICA_UP ?
	    (uint64_t)p->cfg->health_interval_ms : POOL_FAST_CHECK_MS);
	/* the checks of a replica still starting are refused until it
	 * listens: only those of one that was serving count as failed */
	if (!ok && rep->state != REPLICA_STOPPING &&
	    rep->state != REPLICA_STARTING)
		rep->heartbeat_failures++;

	switch (rep->state) {
	case REPLICA_STARTING:
		if (!ok || !rep->addressed)
			break;
		if (rep->pending) {
			rep->ready = 1;
			op_check_done(p);
			break;
		}
		rep->state = REPLICA_UP;
		rep->up_since = now;
		rep->hc_next = now + p->cfg->health_interval_ms;
		ring_join(p, rep);
		log_info("replica %s is up at %s:%u", rep->name, rep->host,
		    (unsigned)rep->port);
		if (rep->respawns > 0)
			pool_note(p, "respawned", rep, "a new instance is up at "
			    "%s:%u", rep->host, (unsigned)rep->port);
		else
			pool_note(p, "joined", rep, "up at %s:%u", rep->host,
			    (unsigned)rep->port);
		break;
	case REPLICA_UP:
	case REPLICA_SUSPECT:
		if (ok) {
			if (rep->state == REPLICA_SUSPECT) {
				log_info("replica %s answers again", rep->name);
				pool_note(p, "recovered", rep, "answers "
				    "heartbeats again");
			}
			rep->state = REPLICA_UP;
			rep->hc_fails = 0;
			break;
		}
		rep->hc_fails++;
		if (rep->state == REPLICA_SUSPECT ||
		    rep->hc_fails >= (unsigned)p->cfg->health_failures)
			pool_evict(p, rep, why);
		break;
	case REPLICA_DOWN:
		/* a replaced replica comes back as a new instance, never
		 * through a heartbeat its old one still had out */
		if (!ok || p->be->ops->replaces)
			break;
		rep->state = REPLICA_UP;
		rep->up_since = now;
		rep->hc_fails = 0;
		rep->hc_next = now + p->cfg->health_interval_ms;
		ring_join(p, rep);
		log_info("replica %s answers again; back on the ring",
		    rep->name);
		pool_note(p, "rejoined", rep, "answers again; back on the "
		    "ring");
		break;
	case REPLICA_STOPPING:
		break;
	}
}

/* The backend saw rep's process exit or its container die. */
static void
on_lost(struct replica *rep, const char *why, void *arg)
{
	struct pool *p = arg;
	char buf[40];

	if (rep->respawn_at != 0 && rep->state != REPLICA_STOPPING) {
		/* an instance already given up on, left to the next start
		 * (which kills it): its end is no new failure */
		log_debug("replica %s: the instance given up on %s", rep->name,
		    why);
		return;
	}
	switch (rep->state) {
	case REPLICA_STOPPING:
		break;
	case REPLICA_STARTING:
		if (rep->pending) {
			op_fail(p, rep, why);
			break;
		}
		start_failed(rep);
		log_warnx("replica %s: %s while starting;%s starting it "
		    "again in %u ms", rep->name, why, in_a_row(rep, buf,
		    sizeof(buf)), rep->respawn_delay_ms);
		if (rep->early_deaths > 1)
			note_backing_off(p, rep, "died while starting");
		break;
	default:
		pool_evict(p, rep, why);
		break;
	}
}

/* A shared set (swarm) holds a replica the pool does not: adopt it. */
static void
on_found(const char *name, void *arg)
{
	struct pool *p = arg;
	struct replica *rep;
	char why[256];
	int i;

	if (p->shutting_down)
		return;
	/* one being removed here is not found again */
	for (i = 0; i < p->nreps; i++)
		if (strcmp(p->reps[i]->name, name) == 0)
			return;
	if (pool_size(p) >= pool_capacity(p, why, sizeof(why))) {
		log_warnx("replica %s is in the shared set, but this ringlb "
		    "runs at most %d (%s); not routing to it", name,
		    pool_capacity(p, why, sizeof(why)), why);
		return;
	}
	if ((rep = pool_new_replica(p, name)) == NULL) {
		log_warnx("replica %s: out of memory", name);
		return;
	}
	log_info("replica %s found in the shared set; it joins the ring "
	    "once it answers", name);
	pool_note(p, "found", rep, "in the shared set");
	pool_spawn(p, rep);
}

/* A shared set (swarm) no longer holds rep. */
static void
on_gone(struct replica *rep, const char *why, void *arg)
{
	struct pool *p = arg;

	if (rep->state == REPLICA_STOPPING)
		return;
	if (rep->pending) {
		op_fail(p, rep, why);
		return;
	}
	log_info("replica %s %s; taking it off the ring", rep->name, why);
	pool_note(p, "removed", rep, "%s", why);
	pool_retire(p, rep);
}

void
pool_suspect(struct pool *p, struct replica *rep)
{
	if (rep->state != REPLICA_UP)
		return;
	rep->state = REPLICA_SUSPECT;
	rep->hc_next = 0;
	pool_note(p, "suspect", rep, "a request to it failed; checking it "
	    "now");
}

/* --- removal ---------------------------------------------------------- */

static void
on_stopped(struct replica *rep, int status, const char *why, void *arg)
{
	(void)status;
	(void)why;
	(void)arg;
	rep->stop_done = 1;
}

/* Take rep out of service for good; the tick stops and frees it. */
static void
pool_retire(struct pool *p, struct replica *rep)
{
	if (rep->state == REPLICA_STOPPING)
		return;
	ring_leave(p, rep);
	rep->state = REPLICA_STOPPING;
	rep->pending = 0;
	rep->stopping_since = now_ms();
	health_forget(p->health, rep);
}

int
pool_remove(struct pool *p, char (*names)[RING_NAME_LEN], int n,
    int *http_code, char *err, size_t errlen)
{
	struct replica *victims[CONFIG_REPLICAS_MAX];
	int i, j, nv = 0;

	if (p->shutting_down) {
		*http_code = 503;
		snprintf(err, errlen, "ringlb is shutting down");
		return -1;
	}
	for (i = 0; i < n; i++) {
		for (j = 0; j < p->nreps; j++)
			if (visible(p->reps[j]) &&
			    strcmp(p->reps[j]->name, names[i]) == 0)
				break;
		if (j == p->nreps || nv == CONFIG_REPLICAS_MAX) {
			*http_code = 400;
			snprintf(err, errlen, "'%s' is not a replica",
			    names[i]);
			return -1;
		}
		victims[nv++] = p->reps[j];
	}
	for (i = 0; i < nv; i++) {
		if (p->be->ops->replaces)
			log_info("replica %s removed; stopping it once its "
			    "requests finish", victims[i]->name);
		else
			log_info("replica %s removed from the ring (the %s "
			    "backend stops nothing)", victims[i]->name,
			    p->be->ops->name);
		pool_note(p, "removed", victims[i], "by /rm");
		pool_retire(p, victims[i]);
		if (p->be->ops->leaving != NULL)
			p->be->ops->leaving(p->be, victims[i]);
	}
	pool_save(p);
	return 0;
}

/* --- the tick --------------------------------------------------------- */

static void
tick_replica(struct pool *p, struct replica *rep, uint64_t now)
{
	/* a worker could not connect to it */
	if (route_stats_take_suspect(rep->stats))
		pool_suspect(p, rep);
	if (rep->state == REPLICA_STOPPING) {
		/* a spawn still out is answered first (backend.h) */
		if (!rep->stop_issued && !rep->spawning &&
		    (route_stats_inflight(rep->stats) == 0 ||
		    now - rep->stopping_since >=
		    (uint64_t)p->cfg->stop_grace_ms)) {
			rep->stop_issued = 1;
			p->be->ops->stop(p->be, rep, on_stopped, p);
		}
		return;
	}
	if (rep->respawn_at != 0 && now >= rep->respawn_at) {
		rep->respawns++;
		pool_spawn(p, rep);
		return;
	}
	if (rep->state == REPLICA_STARTING && rep->addressed &&
	    !rep->ready &&
	    now - rep->started_at >= (uint64_t)p->cfg->start_timeout_ms) {
		char why[128], buf[40];

		snprintf(why, sizeof(why), "no heartbeat answer within %ld ms "
		    "(--start-timeout)", p->cfg->start_timeout_ms);
		if (rep->pending) {
			op_fail(p, rep, why);
			return;
		}
		if (!p->be->ops->replaces) {
			log_warnx("replica %s: %s; waiting for it", rep->name,
			    why);
			rep->state = REPLICA_DOWN;
			return;
		}
		/* what is left of it is killed by the next spawn */
		start_failed(rep);
		log_warnx("replica %s: %s;%s starting it again in %u ms",
		    rep->name, why, in_a_row(rep, buf, sizeof(buf)),
		    rep->respawn_delay_ms);
		if (rep->early_deaths > 1)
			note_backing_off(p, rep, "gave no heartbeat answer");
		return;
	}
	if (rep->addressed && !rep->hc_busy && now >= rep->hc_next)
		health_check(p->health, rep);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct pool *p = arg;
	uint64_t now = now_ms();
	int i;

	(void)fd;
	(void)what;
	for (i = 0; i < p->nreps; i++)
		tick_replica(p, p->reps[i], now);
	/* free what is stopped and no longer referred to */
	for (i = p->nreps - 1; i >= 0; i--) {
		struct replica *rep = p->reps[i];

		if (rep->state == REPLICA_STOPPING && rep->stop_done &&
		    !rep->spawning) {
			pool_unlink(p, rep);
			health_forget(p->health, rep);
			replica_free(rep);
		}
	}
	if (p->shutting_down && p->nreps == 0 && p->shutdown_done != NULL) {
		void (*done)(void *) = p->shutdown_done;

		p->shutdown_done = NULL;
		done(p->shutdown_arg);
	}
}

/* --- setup ------------------------------------------------------------ */

struct pool *
pool_new(struct event_base *base, const struct config *cfg, char *err,
    size_t errlen)
{
	static const struct timeval tick = { 0, POOL_TICK_MS * 1000 };
	struct pool *p;

	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (p->reps = calloc(POOL_MAX, sizeof(*p->reps))) == NULL)
		goto nomem;
	p->base = base;
	p->cfg = cfg;
	if ((p->be = backend_new(base, cfg, on_lost, p, err, errlen)) == NULL)
		goto fail;
	p->be->found = on_found;
	p->be->gone = on_gone;
	p->be->members_arg = p;
	if ((p->table = route_table_new(&cfg->ring)) == NULL) {
		snprintf(err, errlen, "bad ring settings");
		goto fail;
	}
	p->table->replaces = p->be->ops->replaces;
	if ((p->health = health_new(base, cfg, on_health, p)) == NULL ||
	    (p->tick = event_new(base, -1, EV_PERSIST, on_tick, p)) == NULL ||
	    event_add(p->tick, &tick) == -1)
		goto nomem;
	return p;
nomem:
	snprintf(err, errlen, "out of memory");
fail:
	pool_free(p);
	return NULL;
}

void
pool_free(struct pool *p)
{
	int i;

	if (p == NULL)
		return;
	if (p->tick != NULL)
		event_free(p->tick);
	/* the backend may still point at replicas: it goes first */
	backend_free(p->be);
	for (i = 0; i < p->nreps; i++) {
		if (p->health != NULL)
			health_forget(p->health, p->reps[i]);
		replica_free(p->reps[i]);
	}
	health_free(p->health);
	/* an /add still waiting is answered, and its caller's state freed */
	if (p->op != NULL)
		op_finish(p, -1, 503, "ringlb stopped before the replicas "
		    "answered; nothing was added");
	free(p->reps);
	route_table_unref(p->table);
	free(p);
}

int
pool_start(struct pool *p, char *err, size_t errlen)
{
	char (*names)[RING_NAME_LEN];
	struct replica *rep;
	char capwhy[256];
	int i, n, cap, restored = 0;

	if ((names = calloc(CONFIG_REPLICAS_MAX, sizeof(*names))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	n = 0;
	if (p->cfg->state_file[0] != '\0') {
		n = state_load(p->cfg->state_file, names, CONFIG_REPLICAS_MAX,
		    err, errlen);
		if (n == -1) {
			free(names);
			return -1;
		}
		if (n > 0)
			log_info("restoring %d replicas from %s", n,
			    p->cfg->state_file);
		restored = n > 0;
	}
	if (n == 0)
		n = p->be->ops->initial(p->be, names, CONFIG_REPLICAS_MAX);
	if (n > (cap = pool_capacity(p, capwhy, sizeof(capwhy)))) {
		snprintf(err, errlen, "%d replicas to start, but at most %d "
		    "(%s)", n, cap, capwhy);
		free(names);
		return -1;
	}
	/* every name checked before anything is started */
	for (i = 0; i < n; i++) {
		char why[256];

		if (!pool_name_clash(p, names[i], names, i, why, sizeof(why)))
			continue;
		if (!restored) {
			snprintf(err, errlen, "%s", why);
			free(names);
			return -1;
		}
		/* a state file of an older ringlb, with other rules */
		log_warnx("not restoring replica %s: %s", names[i], why);
		memmove(names[i], names[i + 1],
		    (size_t)(n - i - 1) * RING_NAME_LEN);
		n--;
		i--;
	}
	for (i = 0; i < n; i++) {
		if ((rep = pool_new_replica(p, names[i])) == NULL) {
			snprintf(err, errlen, "out of memory");
			free(names);
			return -1;
		}
		rep->restored = restored;
		pool_spawn(p, rep);
	}
	free(names);
	pool_save(p);
	return 0;
}

void
pool_shutdown(struct pool *p, void (*done)(void *), void *arg)
{
	int i;

	if (p->op != NULL) {
		struct pool_op *op = p->op;

		for (i = 0; i < op->n; i++)
			pool_retire(p, op->reps[i]);
		op_finish(p, -1, 503, "ringlb is shutting down; nothing was "
		    "added");
	}
	p->shutting_down = 1;
	p->shutdown_done = done;
	p->shutdown_arg = arg;
	for (i = 0; i < p->nreps; i++)
		pool_retire(p, p->reps[i]);
}

/* --- queries ---------------------------------------------------------- */

struct replica *
pool_owner(struct pool *p, const void *key, size_t len)
{
	return ring_replica(p, ring_lookup(p->table->ring, key, len));
}

int
pool_size(const struct pool *p)
{
	int i, n = 0;

	for (i = 0; i < p->nreps; i++)
		n += visible(p->reps[i]);
	return n;
}

struct replica *
pool_replica(const struct pool *p, int k)
{
	int i;

	for (i = 0; i < p->nreps; i++)
		if (visible(p->reps[i]) && k-- == 0)
			return p->reps[i];
	return NULL;
}

int
pool_has(const struct pool *p, const char *name)
{
	int i;

	for (i = 0; i < p->nreps; i++)
		if (p->reps[i]->state != REPLICA_STOPPING &&
		    strcmp(p->reps[i]->name, name) == 0)
			return 1;
	return 0;
}

int
pool_on_ring(const struct pool *p, const struct replica *rep)
{
	return ring_replica(p, ring_find(p->table->ring, rep->name)) == rep;
}

int
pool_healthy(const struct pool *p)
{
	return ring_count(p->table->ring);
}

struct backend *
pool_backend(const struct pool *p)
{
	return p->be;
}

long
pool_stop_deadline_ms(const struct pool *p)
{
	return p->cfg->stop_grace_ms + p->be->ops->stop_slack_ms;
}

size_t
pool_ring_points(const struct pool *p)
{
	return ring_points(p->table->ring);
}

uint64_t
pool_ring_changes(const struct pool *p)
{
	return p->ring_changes;
}

double
pool_ring_last_moved(const struct pool *p)
{
	return ring_last_moved(p->table->ring);
}


static int
name_in(char (*list)[RING_NAME_LEN], int n, const char *name)
{
	int i;

	for (i = 0; i < n; i++)
		if (strcmp(list[i], name) == 0)
			return 1;
	return 0;
}

/*
 * Two different names the backend cannot run side by side (the docker
 * backend: the same container name or network alias); 1 with why.
 */
static int
names_clash(const struct pool *p, const char *a, const char *b, char *why,
    size_t whylen)
{
	if (p->be->ops->name_clash == NULL || strcmp(a, b) == 0)
		return 0;
	return p->be->ops->name_clash(p->be, a, b, why, whylen);
}

int
pool_name_clash(const struct pool *p, const char *name,
    char (*also)[RING_NAME_LEN], int nalso, char *why, size_t whylen)
{
	int i;

	/* a replica being stopped still holds its container */
	for (i = 0; i < p->nreps; i++)
		if (names_clash(p, name, p->reps[i]->name, why, whylen)) {
			if (p->reps[i]->state == REPLICA_STOPPING) {
				size_t n = strlen(why);

				snprintf(why + n, whylen - n, " (it is being "
				    "removed: try again once it is gone)");
			}
			return 1;
		}
	for (i = 0; i < nalso; i++)
		if (names_clash(p, name, also[i], why, whylen))
			return 1;
	return 0;
}

static int
name_taken(const struct pool *p, char (*taken)[RING_NAME_LEN], int ntaken,
    const char *name)
{
	char why[256];

	return pool_has(p, name) || name_in(taken, ntaken, name) ||
	    (p->be->ops->in_use != NULL && p->be->ops->in_use(p->be, name)) ||
	    pool_name_clash(p, name, taken, ntaken, why, sizeof(why));
}

void
pool_generate_names(const struct pool *p, char (*taken)[RING_NAME_LEN],
    int ntaken, char (*out)[RING_NAME_LEN], int count)
{
	char name[RING_NAME_LEN];
	int k = 1, made = 0;

	while (made < count) {
		replica_generated_name(p->cfg->name_style, k++, name);
		if (name_taken(p, taken, ntaken, name))
			continue;
		/* out may follow taken: keep it from reusing its own names */
		if (name_taken(p, out, made, name))
			continue;
		snprintf(out[made++], RING_NAME_LEN, "%s", name);
	}
}

int
pool_pick_victims(const struct pool *p, char (*exclude)[RING_NAME_LEN],
    int nexclude, char (*out)[RING_NAME_LEN], int count)
{
	const struct replica *best;
	int i, made = 0;

	while (made < count) {
		best = NULL;
		for (i = 0; i < p->nreps; i++) {
			const struct replica *rep = p->reps[i];

			if (!visible(rep) ||
			    name_in(exclude, nexclude, rep->name) ||
			    name_in(out, made, rep->name))
				continue;
			if (best == NULL || rep->seq > best->seq)
				best = rep;
		}
		if (best == NULL)
			return -1;
		snprintf(out[made++], RING_NAME_LEN, "%s", best->name);
	}
	return 0;
}
