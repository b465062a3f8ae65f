/*
 * backend.c - the backend registry and helpers shared by backends.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "backend.h"
#include "config.h"
#include "log.h"
#include "replica.h"

static const struct backend_ops *const backends[] = {
	&backend_process_ops,
	&backend_static_ops,
	&backend_docker_ops,
	&backend_swarm_ops,
};

struct backend *
backend_new(struct event_base *base, const struct config *cfg,
    backend_lost_cb lost, void *lost_arg, char *err, size_t errlen)
{
	struct backend *be;
	size_t i;

	for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		if (strcmp(backends[i]->name, cfg->backend) != 0)
			continue;
		if ((be = calloc(1, sizeof(*be))) == NULL) {
			snprintf(err, errlen, "out of memory");
			return NULL;
		}
		be->ops = backends[i];
		be->base = base;
		be->cfg = cfg;
		be->lost = lost;
		be->lost_arg = lost_arg;
		if (be->ops->init(be, err, errlen) == -1) {
			free(be);
			return NULL;
		}
		return be;
	}
	snprintf(err, errlen, "unknown backend '%s'", cfg->backend);
	return NULL;
}

void
backend_free(struct backend *be)
{
	if (be == NULL)
		return;
	if (be->ops->free != NULL)
		be->ops->free(be);
	free(be);
}

int
backend_initial_names(struct backend *be, char (*names)[RING_NAME_LEN],
    int max)
{
	const struct config *cfg = be->cfg;
	int i;

	if (cfg->nreplica_names == 0)
		return replica_generated_names(cfg->name_style, cfg->replicas,
		    names, max);
	for (i = 0; i < cfg->nreplica_names && i < max; i++)
		memcpy(names[i], cfg->replica_names[i], RING_NAME_LEN);
	return i;
}

struct completion {
	struct replica	*rep;
	int		 status;
	backend_done_cb	 done;
	void		*arg;
	char		 why[256];
};

static void
completion_fire(evutil_socket_t fd, short what, void *arg)
{
	struct completion *c = arg;

	(void)fd;
	(void)what;
	c->done(c->rep, c->status, c->why, c->arg);
	free(c);
}

int
backend_complete_later(struct backend *be, struct replica *rep, int status,
    const char *why, backend_done_cb done, void *arg)
{
	static const struct timeval now = { 0, 0 };
	struct completion *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -1;
	c->rep = rep;
	c->status = status;
	c->done = done;
	c->arg = arg;
	snprintf(c->why, sizeof(c->why), "%s", why ? why : "");
	if (event_base_once(be->base, -1, EV_TIMEOUT, completion_fire, c,
	    &now) == -1) {
		free(c);
		return -1;
	}
	return 0;
}
