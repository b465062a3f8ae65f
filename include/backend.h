/*
 * backend.h - how replicas are started and stopped.
 *
 * A backend is a table of asynchronous operations.  Each call returns at
 * once; its outcome arrives later, on the event loop, through the
 * backend_done_cb given to it - never from inside the call itself, so a
 * caller may hold state across the call without fear of re-entry.
 *
 *   process  ringlb-replica children on loopback ports (the default)
 *   static   fixed addresses from the configuration; nothing is spawned
 *   docker   containers through the Docker Engine API
 *   swarm    Docker Swarm services, a replica set shared by every ringlb
 *            of the same owner
 *
 * The contract, for every backend:
 * - spawn and stop of one replica never overlap: the pool issues a stop
 *   only once the replica's spawn has answered, so a backend never has to
 *   undo a start it has not finished (and never leaks what it started);
 * - spawn of a replica that is already running replaces it: the old
 *   instance is taken down first, under the same name;
 * - a replica that goes away on its own is reported through the lost
 *   callback given to backend_new(), never for a replica being stopped.
 */
#ifndef RINGLB_BACKEND_H
#define RINGLB_BACKEND_H

#include <stddef.h>

#include "ring.h"
#include "util.h"

struct backend;
struct config;
struct event_base;
struct replica;

/*
 * status is 0 on success, -1 with a reason for the user in why, or
 * BACKEND_NAME_TAKEN: the name was free when it was chosen, but another
 * ringlb sharing the set (swarm) took it meanwhile; the backend holds
 * nothing for rep any more.
 */
#define BACKEND_NAME_TAKEN	(-2)
typedef void (*backend_done_cb)(struct replica *rep, int status,
    const char *why, void *arg);

/*
 * A replica went away on its own (its process exited, its container
 * died): the backend has already forgotten that instance; the pool
 * decides what follows.  why is a whole phrase, e.g. "its process exited
 * with status 1".
 */
typedef void (*backend_lost_cb)(struct replica *rep, const char *why,
    void *arg);

/*
 * For a backend whose replica set is shared (swarm): a replica named
 * name exists that the pool does not know of (another ringlb added it,
 * or it was there before this one started); the pool adopts it.
 */
typedef void (*backend_found_cb)(const char *name, void *arg);

/*
 * For a shared set: rep is gone from it (another ringlb removed it, or
 * it was not in the set this ringlb found at startup).  The pool takes
 * it off the ring; its stop then releases only what this ringlb holds.
 */
typedef void (*backend_gone_cb)(struct replica *rep, const char *why,
    void *arg);

struct backend_ops {
	const char	*name;
	/* 1 if a failed replica is replaced by spawning it again; 0 if it is
	 * only waited for (static addresses) */
	int		 replaces;
	/* a stop may take --stop-grace and this long again */
	long		 stop_slack_ms;
	int		 (*init)(struct backend *be, char *err, size_t errlen);
	/*
	 * Names of the replicas to start with: the static list, or the
	 * configured count of generated names.  Returns how many were
	 * written to names (each RING_NAME_MAX + 1 bytes).
	 */
	int		 (*initial)(struct backend *be, char (*names)[RING_NAME_LEN],
			    int max);
	/* Most replicas it will run (0: no limit of its own), and the
	 * option that sets it, for messages */
	int		 (*capacity)(struct backend *be);
	const char	*capacity_option;
	/*
	 * May /add start these replicas?  names[0..ngiven) were named by
	 * the client, the rest of the n are to be generated.  0, or -1 with
	 * the reason (the client's mistake: a 400) in err.  NULL: any.
	 */
	int		 (*check_add)(struct backend *be,
			    char (*names)[RING_NAME_LEN], int ngiven, int n,
			    char *err, size_t errlen);
	/* Bring rep (its name set) up and fill in its address. */
	void		 (*spawn)(struct backend *be, struct replica *rep,
			    backend_done_cb done, void *arg);
	/*
	 * May replicas named a and b (two different names) not run side
	 * by side?  1 with the reason, naming a, in why; else 0.  NULL:
	 * any two names may.
	 */
	int		 (*name_clash)(struct backend *be, const char *a,
			    const char *b, char *why, size_t whylen);
	/*
	 * rep was just removed by /rm and will be stopped once its
	 * requests finish: tell whoever shares the set, so that they stop
	 * routing to it before it goes.  NULL: nothing to tell.
	 */
	void		 (*leaving)(struct backend *be, struct replica *rep);
	/*
	 * Is name held in a shared set (swarm) by a replica the pool does
	 * not have yet?  NULL: nothing is shared.
	 */
	int		 (*in_use)(struct backend *be, const char *name);
	/*
	 * What /status shows of the backend besides its name (a new JSON
	 * object, e.g. whether the swarm's manager answers).  NULL: nothing.
	 */
	struct json_t	*(*status)(struct backend *be);
	/* Take rep down for good and release what the backend holds (for
	 * a shared set, only what this ringlb holds, unless it removes rep
	 * from the set itself: see backend_swarm.c). */
	void		 (*stop)(struct backend *be, struct replica *rep,
			    backend_done_cb done, void *arg);
	void		 (*free)(struct backend *be);
};

struct backend {
	const struct backend_ops	*ops;
	struct event_base		*base;
	const struct config		*cfg;
	void				*priv;
	backend_lost_cb			 lost;
	void				*lost_arg;
	/* a shared set's changes (swarm), and their argument */
	backend_found_cb		 found;
	backend_gone_cb			 gone;
	void				*members_arg;
	/* Networks whose clients may use /add and /rm without a token,
	 * besides loopback and RINGLB_ADMIN_ALLOW: the Docker host, when
	 * ringlb runs in a container.  Filled in by the backend. */
	struct allow_net		 trusted[4];
	int				 ntrusted;
};

/*
 * The backend named cfg->backend, initialised, reporting replicas that
 * go away to lost(rep, why, lost_arg); NULL with err set.
 */
struct backend	*backend_new(struct event_base *base, const struct config *cfg,
		    backend_lost_cb lost, void *lost_arg, char *err,
		    size_t errlen);
void		 backend_free(struct backend *be);

/* The names --replicas gave, or its count of generated names
 * (Server 1, Server 2, ... or server-1, server-2, ... by --name-style). */
int		 backend_initial_names(struct backend *be,
		    char (*names)[RING_NAME_LEN], int max);

/*
 * Deliver an outcome on the next loop iteration; for backends whose
 * operations finish at once.  why is copied.
 */
int		 backend_complete_later(struct backend *be, struct replica *rep,
		    int status, const char *why, backend_done_cb done,
		    void *arg);

extern const struct backend_ops backend_static_ops;
extern const struct backend_ops backend_process_ops;
extern const struct backend_ops backend_docker_ops;
extern const struct backend_ops backend_swarm_ops;

#endif /* RINGLB_BACKEND_H */
