/*
 * route.h - the data plane's view of the replica set: immutable route
 * tables, published by the control plane to the workers.
 *
 * The control plane (pool.c, on the main thread) owns the replicas and
 * their ring.  Each change of membership makes a new route table - a copy
 * of the ring (ring_clone, not rebuilt) changed by one add or remove, whose
 * members are route_members: a name, an address and its parsed URL,
 * frozen - and hands it to every worker's inbox.  A worker takes the
 * newest table from its inbox before it routes a request; a transfer
 * holds the table it was routed by (through a route_view) until it ends,
 * so a replica that leaves, or comes back at another address, never
 * changes memory under a running transfer.  A table is freed when the
 * control plane, every worker and every transfer has let go of it.
 *
 * What the workers must share is atomic: each replica's route_stats
 * (transfers in flight across all workers, for bounded loads and for
 * draining on /rm; its answers and errors; a worker's report that it
 * could not connect) and the reference counts.  Nothing on the request
 * path takes a lock.
 */
#ifndef RINGLB_ROUTE_H
#define RINGLB_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "replica.h"
#include "ring.h"

#define ROUTE_KEY_MAX	1024	/* longest request key, bytes */

/* Per replica, for the life of its name in the pool; atomics all. */
struct route_stats {
	unsigned		 refs;
	unsigned		 inflight;	/* transfers, every worker */
	uint64_t		 requests;	/* answered */
	uint64_t		 errors;	/* failed at the replica */
	unsigned		 suspect;	/* a request could not connect */
};

/* A replica as a route table names it: immutable once published. */
struct route_member {
	unsigned		 refs;		/* tables holding it; atomic */
	char			 name[RING_NAME_LEN];
	char			 host[REPLICA_HOST_MAX + 1];
	uint16_t		 port;
	void			*url;		/* CURLU, its own copy */
	struct route_stats	*stats;
	void			*owner;		/* the control plane's */
};

/* A ring of route_members, and what a refusal needs to say. */
struct route_table {
	unsigned		 refs;		/* atomic */
	struct ring		*ring;		/* data: struct route_member * */
	int			 replaces;	/* the backend starts more */
};

/* A worker's hold on one table: its transfers, +1 while it is current. */
struct route_view {
	struct route_table	*table;
	unsigned		 users;		/* the worker's thread only */
};

/* Where a worker's tables arrive. */
struct route_inbox {
	struct route_table	*next;		/* atomic; NULL: nothing new */
	struct route_view	*cur;		/* the worker's thread only */
};

struct route_stats	*route_stats_new(void);
void			 route_stats_ref(struct route_stats *s);
void			 route_stats_unref(struct route_stats *s);
/* Take the report of a failed connection, clearing it. */
int			 route_stats_take_suspect(struct route_stats *s);
unsigned		 route_stats_inflight(const struct route_stats *s);
uint64_t		 route_stats_requests(const struct route_stats *s);
uint64_t		 route_stats_errors(const struct route_stats *s);

/*
 * A member for rep's name and address, with a reference to stats;
 * owner is returned to the control plane by route_member_owner().  NULL
 * when out of memory or rep has no URL.
 */
struct route_member	*route_member_new(const struct replica *rep,
			    struct route_stats *stats, void *owner);
void			 route_member_unref(struct route_member *m);

/* An empty table for cfg; a copy of t to change before publishing it. */
struct route_table	*route_table_new(const struct ring_config *cfg);
struct route_table	*route_table_clone(const struct route_table *t);
void			 route_table_ref(struct route_table *t);
void			 route_table_unref(struct route_table *t);
struct route_member	*route_table_member(const struct route_table *t,
			    int idx);

/*
 * Give t to a worker (any thread): the inbox takes a reference of its
 * own, and a table it had not taken yet is let go.
 */
void			 route_inbox_publish(struct route_inbox *in,
			    struct route_table *t);
/* The worker's current view, after taking what arrived; NULL if none. */
struct route_view	*route_inbox_view(struct route_inbox *in);
/* Let go of everything (the worker's thread, at its end). */
void			 route_inbox_clear(struct route_inbox *in);

void			 route_view_hold(struct route_view *v);
void			 route_view_release(struct route_view *v);

/*
 * Choose the member for key in t and count a transfer on it (in flight,
 * until route_done): the key's owner; with factor > 0, the first of its
 * ranking under the bounded-loads cap, counted by a compare-and-swap so
 * that no worker ever puts a replica over it; skip's replica (skip may
 * be NULL), of this table or an older one, is passed over, for a retry.
 * *displaced tells whether the choice is not the key's first.  NULL when
 * there is none.
 */
struct route_member	*route_pick(const struct route_table *t,
			    const void *key, size_t len, double factor,
			    const struct route_member *skip, int *displaced);
/*
 * route_pick() on the worker's newest table, *view set to it (NULL if
 * none).  A member counted in flight is one the control plane, having
 * published a table without it, sees in flight, or one of a table no
 * older than that one: a replica leaving the ring is never stopped under
 * a request just routed to it.
 */
struct route_member	*route_inbox_pick(struct route_inbox *in,
			    const void *key, size_t len, double factor,
			    const struct route_member *skip, int *displaced,
			    struct route_view **view);
/* How a transfer on a member ended, for its counters. */
enum route_result {
	ROUTE_ANSWERED,		/* the replica answered */
	ROUTE_FAILED,		/* it failed there */
	ROUTE_DROPPED		/* not counted: never sent, client gone */
};
/* The transfer on m ended. */
void			 route_done(struct route_member *m,
			    enum route_result result);
/* A request could not connect to m: the control plane checks it. */
void			 route_suspect(struct route_member *m);

#endif /* RINGLB_ROUTE_H */
