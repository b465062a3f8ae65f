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

static const struct static_replica *
static_find(const struct backend *be, const char *name)
{
	int i;

	for (i = 0; i < be->cfg->nstatic; i++)
		if (strcmp(be->cfg->static_replicas[i].name, name) == 0)
			return &be->cfg->static_replicas[i];
	return NULL;
}

/*
 * The static backend has an address only for the replicas it was started
 * with: /add can bring back those /rm took out, named in "hostnames",
 * and nothing else - a name to generate has no address to go with it.
 */
static int
static_check_add(struct backend *be, char (*names)[RING_NAME_LEN], int ngiven,
    int n, char *err, size_t errlen)
{
	char known[160];
	size_t used = 0;
	int i;

	for (i = 0; i < be->cfg->nstatic && used < sizeof(known); i++)
		used += (size_t)snprintf(known + used, sizeof(known) - used,
		    "%s'%s'", i ? ", " : "", be->cfg->static_replicas[i].name);
	if (used >= sizeof(known))
		snprintf(known + sizeof(known) - 5, 5, "...");
	for (i = 0; i < ngiven; i++)
		if (static_find(be, names[i]) == NULL) {
			snprintf(err, errlen, "the static backend starts "
			    "nothing and has no address for '%s': it knows only "
			    "the replicas given at startup (%s); to add a new "
			    "one, restart ringlb with --replica %s=HOST:PORT",
			    names[i], known, names[i]);
			return -1;
		}
	if (ngiven < n) {
		snprintf(err, errlen, "the static backend starts nothing: "
		    "/add can only bring back replicas given at startup with "
		    "--replica NAME=HOST:PORT (%s) that /rm took out, each "
		    "named in \"hostnames\", e.g. {\"n\": 1, \"hostnames\": "
		    "[\"%s\"]}; to add a new one, restart ringlb with another "
		    "--replica NAME=HOST:PORT", known,
		    be->cfg->static_replicas[0].name);
		return -1;
	}
	return 0;
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
	.check_add = static_check_add,
	.spawn = static_spawn,
	.stop = static_stop,
	.free = NULL,
};
