/*
 * config.h - ringlb's parsed, read-only configuration.
 *
 * Every setting has a flag and a RINGLB_* environment variable; a flag
 * wins over the environment, the environment over the default.  Nothing
 * here changes after startup: runtime state lives in the modules.
 */
#ifndef RINGLB_CONFIG_H
#define RINGLB_CONFIG_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "replica.h"
#include "ring.h"
#include "util.h"

#define CONFIG_STATIC_MAX	256
#define CONFIG_REPLICAS_MAX	256	/* replicas one ringlb manages */
#define CONFIG_ALLOW_MAX	32	/* RINGLB_ADMIN_ALLOW networks */

enum key_fallback {
	KEY_FALLBACK_RANDOM = 0,	/* a fresh random key per request */
	KEY_FALLBACK_CLIENT_IP		/* the client's address */
};

struct static_replica {
	char		name[RING_NAME_MAX + 1];
	char		host[REPLICA_HOST_MAX + 1];
	uint16_t	port;
};

struct config {
	char			listen_host[REPLICA_HOST_MAX + 1];
	uint16_t		listen_port;
	char			backend[16];	/* "process" or "static" */

	struct static_replica	static_replicas[CONFIG_STATIC_MAX];
	int			nstatic;
	int			replicas;	/* process: starting count */
	char			replica_bin[4096];
	long			start_timeout_ms;
	long			stop_grace_ms;

	long			health_interval_ms;
	long			health_timeout_ms;
	long			health_failures;

	char			state_file[4096];
	char			admin_token[256];
	struct allow_net	admin_allow[CONFIG_ALLOW_MAX];
	int			nadmin_allow;

	struct ring_config	ring;
	double			balance_factor;	/* 0: off */
	enum key_fallback	key_fallback;

	long			connect_timeout_ms;
	long			timeout_ms;
	uint64_t		max_body;
	uint64_t		max_body_memory;	/* all bodies held */
	uint64_t		max_header;	/* request line and headers */
	uint64_t		max_response_header;	/* from a replica */
	long			client_timeout_s;	/* body; a client not reading */
	long			header_timeout_s;	/* a request head */
	long			keepalive_timeout_s;	/* idle between requests */
	long			max_connections;	/* client connections */
	long			upstream_maxconns;
	int			log_level;
};

/*
 * Fill cfg from defaults, the environment and argv.  Returns 0 to run,
 * 1 when --help or --version was answered, -1 with the reason in err.
 */
int	config_parse(struct config *cfg, int argc, char **argv, char *err,
	    size_t errlen);
void	config_usage(FILE *fp);

#endif /* RINGLB_CONFIG_H */
