/*
 * pool.h - the replica set: who is up, the ring built from them, and the
 * life of each replica (start, heartbeats, eviction, replacement, stop).
 *
 * The pool owns every struct replica.  It asks the backend to start and
 * stop replicas, decides from heartbeats and process exits when a replica
 * leaves or rejoins the ring, and carries out /add and /rm whole or not at
 * all.  Everything runs on the one event loop.
 */
#ifndef RINGLB_POOL_H
#define RINGLB_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "ring.h"

struct backend;
struct config;
struct event_base;
struct pool;
struct replica;
struct route_table;

/*
 * The outcome of pool_add(): status 0, or -1 with an HTTP status and the
 * reason in why.  Called from the event loop.
 */
typedef void (*pool_add_cb)(int status, int http_code, const char *why,
    void *arg);

/* A pool whose replicas are started by the backend cfg names. */
struct pool	*pool_new(struct event_base *base, const struct config *cfg,
		    char *err, size_t errlen);
void		 pool_free(struct pool *p);

/*
 * Start the first replicas: those in the state file if it has any, else
 * the backend's initial set.  They join the ring as they answer.
 */
int		 pool_start(struct pool *p, char *err, size_t errlen);

/*
 * Start replicas with these names (already validated and unused), the
 * first ngiven named by the client, the rest generated (a generated name
 * another ringlb sharing the set takes meanwhile is replaced by the next
 * free one).  They
 * join the ring together once every one has answered a heartbeat; if one
 * cannot start, the others are stopped again and done reports why.
 * Returns -1 with a reason (409: another change is running) when it could
 * not begin, and done is then never called.
 */
int		 pool_add(struct pool *p, char (*names)[RING_NAME_LEN], int n,
		    int ngiven, pool_add_cb done, void *arg, int *http_code, char *err,
		    size_t errlen);

/*
 * Remove these replicas (validated, present) from the ring at once; each
 * is stopped once its requests in flight finish (or --stop-grace passes).
 */
int		 pool_remove(struct pool *p, char (*names)[RING_NAME_LEN],
		    int n, int *http_code, char *err, size_t errlen);

/*
 * Names for count more replicas in --name-style ("Server K" or
 * "server-K") with the smallest K whose name is neither a replica's, nor
 * in taken (names about to be used), nor clashing with one of those (see
 * pool_name_clash): gaps are filled first.
 */
void		 pool_generate_names(const struct pool *p,
		    char (*taken)[RING_NAME_LEN], int ntaken,
		    char (*out)[RING_NAME_LEN], int count);
/*
 * Is name, a replica to be, in the way of a replica of the pool (one
 * being stopped too) or of also[0..nalso-1], though its name differs?
 * Only the backend says so (the docker backend: both would take the same
 * container name or network alias).  1 with the reason for the user in
 * why, else 0.
 */
int		 pool_name_clash(const struct pool *p, const char *name,
		    char (*also)[RING_NAME_LEN], int nalso, char *why,
		    size_t whylen);
/* count replicas to remove besides those in keep_out: newest first. */
int		 pool_pick_victims(const struct pool *p,
		    char (*exclude)[RING_NAME_LEN], int nexclude,
		    char (*out)[RING_NAME_LEN], int count);

/* A request could not connect to rep: check it now. */
void		 pool_suspect(struct pool *p, struct replica *rep);

/*
 * Call publish with each new route table (route.h), the first time at
 * once with the current one; publish takes references of its own.
 */
void		 pool_set_publish(struct pool *p,
		    void (*publish)(struct route_table *, void *), void *arg);

/*
 * Stop every replica (gracefully: --stop-grace) and call done once all
 * are gone.
 */
void		 pool_shutdown(struct pool *p, void (*done)(void *), void *arg);

/* The replica owning key on the ring, whatever the loads; NULL if none. */
struct replica	*pool_owner(struct pool *p, const void *key, size_t len);

/* The replica set as /rep shows it: committed and not being removed. */
int		 pool_size(const struct pool *p);
/* The i-th of those in name order (0 <= i < pool_size). */
struct replica	*pool_replica(const struct pool *p, int i);
/* Is name one of them, or being added? */
int		 pool_has(const struct pool *p, const char *name);
int		 pool_healthy(const struct pool *p);	/* those on the ring */
/* Is rep a member of the ring now (its key-space share may be 0)? */
int		 pool_on_ring(const struct pool *p, const struct replica *rep);
/* The backend that starts and stops the replicas. */
struct backend	*pool_backend(const struct pool *p);
/* How long stopping every replica may take before ringlb gives up. */
long		 pool_stop_deadline_ms(const struct pool *p);

/* Ring facts for /metrics. */
size_t		 pool_ring_points(const struct pool *p);
uint64_t	 pool_ring_changes(const struct pool *p);
double		 pool_ring_last_moved(const struct pool *p);

/* What happened to replicas lately, for the dashboard: oldest first. */
#define POOL_EVENTS	128
struct pool_event {
	uint64_t	 at_ms;		/* wall clock, ms since the epoch */
	const char	*kind;		/* joined, respawned, evicted, ... */
	char		 replica[RING_NAME_LEN];
	char		 detail[160];
};
/* The i-th kept event, oldest first; NULL past the end. */
const struct pool_event *pool_event(const struct pool *p, size_t i);
const struct ring *pool_ring(const struct pool *p);

#endif /* RINGLB_POOL_H */
