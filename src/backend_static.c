/*
 * backend_static.c - replicas at fixed addresses.
 *
 * Nothing is spawned or killed: "starting" a replica looks its address up
 * in the configuration and "stopping" one forgets it.  A static replica
 * that dies is evicted by the health checks and re-admitted when it
 * answers again.
 */
#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "config.h"
#include "replica.h"

static int
static_init(struct backend *be, char *err, size_t errlen)
{
	if (be->cfg->nstatic == 0) {
		snprintf(err, errlen, "the static backend needs replicas: "
		    "give --replica NAME=HOST:PORT");
		return -1;
	}
	return 0;
}

static int
static_initial(struct backend *be, char (*names)[RING_NAME_LEN], int max)
{
	int i;

	for (i = 0; i < be->cfg->nstatic && i < max; i++)
		snprintf(names[i], RING_NAME_LEN, "%s", be->cfg->static_replicas[i].name);
	return i;
}

static void
static_spawn(struct backend *be, struct replica *rep, backend_done_cb done,
    void *arg)
{
	const struct static_replica *sr;
	char why[256];
	int i;

	for (i = 0; i < be->cfg->nstatic; i++) {
		sr = &be->cfg->static_replicas[i];
		if (strcmp(sr->name, rep->name) != 0)
			continue;
		if (replica_set_address(rep, sr->host, sr->port) == -1)
			break;
		backend_complete_later(be, rep, 0, NULL, done, arg);
		return;
	}
	snprintf(why, sizeof(why), "the static backend has no address for "
	    "'%s'; start ringlb with --replica %s=HOST:PORT", rep->name,
	    rep->name);
	backend_complete_later(be, rep, -1, why, done, arg);
}

static void
static_stop(struct backend *be, struct replica *rep, backend_done_cb done,
    void *arg)
{
	backend_complete_later(be, rep, 0, NULL, done, arg);
}

const struct backend_ops backend_static_ops = {
	.name = "static",
	.replaces = 0,
	.stop_slack_ms = 2000,
	.init = static_init,
	.initial = static_initial,
	.spawn = static_spawn,
	.stop = static_stop,
	.free = NULL,
};
