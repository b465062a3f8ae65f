/*
 * pool.h - the replica set and the ring built from it.
 *
 * The pool owns every struct replica, asks the backend to start and stop
 * them, and keeps the ring holding exactly the replicas that are up.
 * Everything runs on the one event loop.
 */
#ifndef RINGLB_POOL_H
#define RINGLB_POOL_H

#include <stddef.h>

struct backend;
struct config;
struct event_base;
struct pool;
struct replica;

struct pool	*pool_new(struct event_base *base, const struct config *cfg,
		    struct backend *be, char *err, size_t errlen);
void		 pool_free(struct pool *p);

/* Ask the backend for the starting replicas; they join as they come up. */
int		 pool_start(struct pool *p);

/*
 * The replica owning key and the next distinct ones on the ring (at most
 * max, for retries).  Returns how many were written, 0 when the ring is
 * empty.
 */
int		 pool_route(struct pool *p, const void *key, size_t len,
		    struct replica **out, int max);

int		 pool_size(const struct pool *p);	/* every replica */
int		 pool_healthy(const struct pool *p);	/* those on the ring */
/* The i-th replica in name order (0 <= i < pool_size), for listings. */
struct replica	*pool_replica(const struct pool *p, int i);

#endif /* RINGLB_POOL_H */
