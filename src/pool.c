/*
 * pool.c - the replica set and its ring.
 *
 * Replicas are kept in name order so every listing (/rep, /metrics) is
 * stable.  The ring holds the replicas that are up; it is rebuilt on every
 * membership change, which is rare next to lookups.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "config.h"
#include "log.h"
#include "pool.h"
#include "replica.h"
#include "ring.h"

#define POOL_MAX	1024

struct pool {
	struct event_base	*base;
	const struct config	*cfg;
	struct backend		*be;
	struct ring		*ring;
	struct replica		**reps;		/* sorted by name */
	int			 nreps;
};

struct pool *
pool_new(struct event_base *base, const struct config *cfg,
    struct backend *be, char *err, size_t errlen)
{
	struct pool *p;

	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (p->reps = calloc(POOL_MAX, sizeof(*p->reps))) == NULL) {
		free(p);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if ((p->ring = ring_new(&cfg->ring)) == NULL) {
		free(p->reps);
		free(p);
		snprintf(err, errlen, "bad ring settings");
		return NULL;
	}
	p->base = base;
	p->cfg = cfg;
	p->be = be;
	return p;
}

void
pool_free(struct pool *p)
{
	int i;

	if (p == NULL)
		return;
	for (i = 0; i < p->nreps; i++)
		free(p->reps[i]);
	free(p->reps);
	ring_free(p->ring);
	free(p);
}

/* Insert rep keeping name order; -1 if full or the name is taken. */
static int
pool_insert(struct pool *p, struct replica *rep)
{
	int i, c;

	if (p->nreps == POOL_MAX)
		return -1;
	for (i = 0; i < p->nreps; i++) {
		c = strcmp(p->reps[i]->name, rep->name);
		if (c == 0)
			return -1;
		if (c > 0)
			break;
	}
	memmove(&p->reps[i + 1], &p->reps[i],
	    (p->nreps - i) * sizeof(p->reps[0]));
	p->reps[i] = rep;
	p->nreps++;
	return 0;
}

static void
pool_spawned(struct replica *rep, int status, const char *why, void *arg)
{
	struct pool *p = arg;
	char err[256];

	if (status == -1) {
		rep->state = REPLICA_DOWN;
		log_warnx("replica %s could not be started: %s", rep->name,
		    why);
		return;
	}
	if (ring_add(p->ring, rep->name, rep, err, sizeof(err)) == -1) {
		rep->state = REPLICA_DOWN;
		log_warnx("replica %s cannot join the ring: %s", rep->name,
		    err);
		return;
	}
	rep->state = REPLICA_UP;
	log_info("replica %s is up at %s:%u", rep->name, rep->host,
	    (unsigned)rep->port);
}

int
pool_start(struct pool *p)
{
	char (*names)[64];
	struct replica *rep;
	int i, n;

	if ((names = calloc(POOL_MAX, sizeof(*names))) == NULL)
		return -1;
	n = p->be->ops->initial(p->be, names, POOL_MAX);
	for (i = 0; i < n; i++) {
		if ((rep = calloc(1, sizeof(*rep))) == NULL)
			goto fail;
		snprintf(rep->name, sizeof(rep->name), "%s", names[i]);
		rep->state = REPLICA_STARTING;
		if (pool_insert(p, rep) == -1) {
			free(rep);
			goto fail;
		}
		p->be->ops->spawn(p->be, rep, pool_spawned, p);
	}
	free(names);
	return 0;
fail:
	free(names);
	return -1;
}

int
pool_route(struct pool *p, const void *key, size_t len, struct replica **out,
    int max)
{
	int idx[8], n, i;

	if (max > 8)
		max = 8;
	n = ring_successors(p->ring, key, len, idx, max);
	for (i = 0; i < n; i++)
		out[i] = ring_member_data(p->ring, idx[i]);
	return n;
}

int
pool_size(const struct pool *p)
{
	return p->nreps;
}

int
pool_healthy(const struct pool *p)
{
	return ring_count(p->ring);
}

struct replica *
pool_replica(const struct pool *p, int i)
{
	return i >= 0 && i < p->nreps ? p->reps[i] : NULL;
}
