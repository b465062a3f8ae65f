/*
 * replica.h - one replica (a backend web server) as ringlb sees it.
 *
 * Shared by the pool (which owns replicas), the backends (which start and
 * stop them and fill in the address) and the proxy (which sends traffic
 * to them and counts it).  Types only.
 */
#ifndef RINGLB_REPLICA_H
#define RINGLB_REPLICA_H

#include <stdint.h>

#include "ring.h"

struct route_stats;

enum replica_state {
	REPLICA_STARTING = 0,	/* backend asked to start it */
	REPLICA_UP,		/* on the ring, taking traffic */
	REPLICA_SUSPECT,	/* a request could not connect; check due */
	REPLICA_DOWN,		/* off the ring, being replaced */
	REPLICA_STOPPING	/* leaving for good */
};

/*
 * How generated replica names look: as the classic assignment's seeds
 * name their servers ("Server 1", the default), or as DNS labels
 * ("server-1").
 */
enum replica_name_style {
	REPLICA_NAMES_SEED = 0,
	REPLICA_NAMES_DNS
};

#define REPLICA_HOST_MAX	255
#define REPLICA_URL_MAX		(REPLICA_HOST_MAX + 32)

struct replica {
	char			 name[RING_NAME_MAX + 1];
	char			 host[REPLICA_HOST_MAX + 1];
	uint16_t		 port;
	/* "http://host:port", the prefix of every proxied URL */
	char			 base_url[REPLICA_URL_MAX];
	size_t			 base_url_len;
	/* base_url parsed once by libcurl (a CURLU), for the proxy */
	void			*url;
	enum replica_state	 state;

	/* what the workers count for it (route.h), and the rest */
	struct route_stats	*stats;
	uint64_t		 heartbeat_failures;
	uint64_t		 respawns;
	double			 keyspace_share; /* of the ring, 0 when off it */

	/* pool bookkeeping (pool.c) */
	uint64_t		 seq;		/* creation order */
	unsigned		 addressed:1;	/* backend gave an address */
	unsigned		 spawning:1;	/* a spawn has not answered */
	unsigned		 pending:1;	/* in an /add not yet done */
	unsigned		 ready:1;	/* pending, and answered */
	unsigned		 stop_issued:1;
	unsigned		 stop_done:1;
	unsigned		 restored:1;	/* named by the state file */
	unsigned		 generated:1;	/* its name chosen by ringlb */
	unsigned		 renames;	/* its name was taken meanwhile */
	uint64_t		 started_at;	/* last spawn, now_ms() */
	uint64_t		 stopping_since;
	uint64_t		 respawn_at;	/* 0: none scheduled */
	unsigned		 respawn_delay_ms;
	uint64_t		 up_since;	/* joined the ring, now_ms() */
	unsigned		 early_deaths;	/* in a row, see pool.c */

	/* health checks (health.c) */
	unsigned		 hc_fails;	/* failures in a row */
	unsigned		 hc_busy:1;
	uint64_t		 hc_next;	/* next check due, now_ms() */
	void			*hc_easy;

	void			*backend_data;	/* owned by the backend */
};

const char	*replica_state_name(enum replica_state st);
/* The k-th generated name, "Server K" or "server-K" by style, into name
 * (RING_NAME_LEN bytes). */
void		 replica_generated_name(enum replica_name_style style, int k,
		    char *name);
/* The first count of them (at most max) into names; how many. */
int		 replica_generated_names(enum replica_name_style style,
		    int count, char (*names)[RING_NAME_LEN], int max);
/* "seed" or "dns" into *style; -1 for anything else. */
int		 replica_name_style_parse(const char *s,
		    enum replica_name_style *style);
/* Set host and port and derive base_url and url; -1 if the host is too
 * long, or out of memory. */
int		 replica_set_address(struct replica *rep, const char *host,
		    uint16_t port);
/* Free rep and what it holds (not what the backend or health own). */
void		 replica_free(struct replica *rep);

#endif /* RINGLB_REPLICA_H */
