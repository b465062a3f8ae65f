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
#define CONFIG_WORKERS_MAX	64	/* worker threads */
#define CONFIG_ALLOW_MAX	32	/* RINGLB_ADMIN_ALLOW networks */
#define CONFIG_ADMIN_HOSTS_MAX	16	/* --admin-host names */
#define CONFIG_HOST_NAME_MAX	253

enum key_fallback {
	KEY_FALLBACK_RANDOM = 0,	/* a fresh random key per request */
	KEY_FALLBACK_CLIENT_IP		/* the client's address */
};

/* The Docker backend's settings (backend_docker.c parses them). */
struct docker_config {
	char		image[256];
	char		network[128];
	char		owner[64];
	char		prefix[64];
	int		max;		/* replicas at most */
	int		reach;		/* DOCKER_REACH_* */
	uint16_t	port;		/* the replicas' port in their containers */
	/* the swarm backend's (backend_swarm.c) */
	char		constraints[512];	/* placement, one a line */
	uint64_t	memory;		/* a task's limit, bytes; 0: none */
};

enum {
	DOCKER_REACH_AUTO = 0,	/* network inside a container, else published */
	DOCKER_REACH_NETWORK,	/* the container's address on the network */
	DOCKER_REACH_PUBLISHED	/* a port published on 127.0.0.1 */
};

struct static_replica {
	char		name[RING_NAME_MAX + 1];
	char		host[REPLICA_HOST_MAX + 1];
	uint16_t	port;
};

struct config {
	char			listen_host[REPLICA_HOST_MAX + 1];
	uint16_t		listen_port;
	char			backend[16];	/* process, static, docker, swarm */

	struct static_replica	static_replicas[CONFIG_STATIC_MAX];
	int			nstatic;
	int			replicas;	/* process, docker: starting count */
	/* --replicas NAME,NAME,...: the starting replicas' names */
	char			replica_names[CONFIG_REPLICAS_MAX][RING_NAME_LEN];
	int			nreplica_names;
	enum replica_name_style	name_style;	/* of generated names */
	int			max_replicas;	/* process: at most */
	char			replica_bin[4096];	/* process backend */
	struct docker_config	docker;
	long			start_timeout_ms;
	long			stop_grace_ms;

	long			health_interval_ms;
	long			health_timeout_ms;
	long			health_failures;

	char			state_file[4096];
	char			admin_token[256];
	struct allow_net	admin_allow[CONFIG_ALLOW_MAX];
	int			nadmin_allow;
	/* names /add and /rm accept in Host besides loopback's (lower case,
	 * IPv6 without brackets) */
	char			admin_hosts[CONFIG_ADMIN_HOSTS_MAX]
				    [CONFIG_HOST_NAME_MAX + 1];
	int			nadmin_hosts;

	struct ring_config	ring;
	double			balance_factor;	/* 0: off */
	enum key_fallback	key_fallback;

	long			connect_timeout_ms;
	long			timeout_ms;
	uint64_t		max_body;
	uint64_t		max_body_memory;	/* all bodies held */
	uint64_t		max_header;	/* request line and headers */
	uint64_t		max_response_header;	/* from a replica */
	uint64_t		max_response_memory;	/* answers held */
	long			client_timeout_s;	/* body; a client not reading */
	long			header_timeout_s;	/* a request head */
	long			keepalive_timeout_s;	/* idle between requests */
	long			max_connections;	/* client connections */
	int			max_connections_given;	/* not the default */
	long			upstream_maxconns;
	int			upstream_maxconns_given;
	int			log_level;
	int			check;		/* --check: probe and exit */
	int			workers;	/* threads serving clients */
};

struct config;

/*
 * One setting: its flag (NULL: environment only), its RINGLB_* variable
 * (NULL: flag only), the help text and the function that parses a value
 * into the configuration (0, or -1 with a message in err).  Each backend
 * keeps the table of its own settings beside its code.
 */
typedef int (*config_set_fn)(struct config *, const char *, char *, size_t);

struct option_def {
	const char	*flag;
	const char	*env;
	const char	*metavar;	/* NULL: the flag takes no value */
	const char	*help;
	config_set_fn	 set;
};

struct option_table {
	const char		*title;		/* in --help */
	const struct option_def	*defs;
	size_t			 n;
	void			(*defaults)(struct config *);
};

extern const struct option_table backend_process_options;
extern const struct option_table backend_docker_options;
extern const struct option_table backend_swarm_options;

/* A path setting: 1 to dstlen - 1 bytes; 0, or -1 with a message. */
int	config_set_path(char *dst, size_t dstlen, const char *what,
	    const char *v, char *err, size_t errlen);

/*
 * Fill cfg, which must be all zeros (static storage, or calloc), from
 * defaults, the environment and argv.  Returns 0 to run, 1 when --help or
 * --version was answered, -1 with the reason in err.
 */
int	config_parse(struct config *cfg, int argc, char **argv, char *err,
	    size_t errlen);
void	config_usage(FILE *fp);

#endif /* RINGLB_CONFIG_H */
