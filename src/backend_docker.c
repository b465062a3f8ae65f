/*
 * backend_docker.c - replicas as containers, through the Docker Engine API.
 *
 * Each replica is one container of --docker-image, run with entrypoint
 * ringlb-replica, SERVER_ID=<name>, labels ringlb.owner=<--docker-owner>
 * and ringlb.replica=<name>, on --docker-network with an alias derived
 * from its name, restart policy "no".  ringlb reaches it at its address
 * on that network when ringlb itself runs in a container there, else
 * through a port the engine publishes on 127.0.0.1.
 *
 * Life of a container, per replica (struct ctr):
 *
 *   spawn: [remove the old one] -> create -> start -> inspect -> address
 *          (409 on create: a container of ours under that name is removed
 *          and the create tried once more; one of someone else's is an
 *          error that names it)
 *   stop:  stop (with --stop-grace) -> remove
 *
 * Every call is asynchronous (docker.c).  Nothing is created before the
 * engine is checked: API version, image, network; then the containers
 * labelled with our owner are listed: those the state file names are
 * adopted if they still run, every other one is removed, so a ringlb that
 * crashed leaves neither orphans nor name conflicts behind.  Deaths are
 * learned at once from the engine's /events stream (as SIGCHLD tells the
 * process backend); heartbeats still judge health.  When the stream ends
 * (the engine restarted) it is opened again and the containers listed, so
 * a death in between is not missed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "backend.h"
#include "config.h"
#include "docker.h"
#include "log.h"
#include "replica.h"
#include "util.h"

#define LABEL_OWNER		"ringlb.owner"
#define LABEL_REPLICA		"ringlb.replica"
#define CALL_TIMEOUT_MS		30000L	/* an ordinary API call */
#define RESUBSCRIBE_MS		1000
#define CREATE_AGAIN_MS		250	/* the name's old holder is going */
#define ALIAS_MAX		63	/* a DNS label */
#define CNAME_MAX		(64 + ALIAS_MAX)

enum ctr_phase {
	CTR_IDLE = 0,		/* nothing running for the replica */
	CTR_QUEUED,		/* spawn waits for the engine check */
	CTR_REMOVING_OLD,	/* spawn: the previous container goes */
	CTR_CREATING,
	CTR_STARTING,
	CTR_INSPECTING,
	CTR_RUNNING,
	CTR_STOPPING,
	CTR_REMOVING
};

struct dock;

/* One replica's container. */
struct ctr {
	struct dock		*dk;
	struct replica		*rep;
	char			 cname[CNAME_MAX + 1];	/* container name */
	char			 alias[ALIAS_MAX + 1];	/* on the network */
	char			 id[80];	/* "" until created */
	enum ctr_phase		 phase;
	uint64_t		 running_gen;	/* dk->gen when it ran */
	int			 retried;	/* a 409 was cleared once */
	struct docker_call	*call;
	backend_done_cb		 done;		/* the spawn or stop */
	void			*arg;
	struct event		*deadline;	/* of a spawn */
	struct event		*again;		/* create once more, later */
	struct ctr		*next;
};

struct dock {
	struct backend		*be;
	const struct docker_config *dc;
	struct docker		*api;
	int			 reach_network;
	int			 step;		/* of the startup check */
	int			 ready;		/* the engine was checked */
	struct ctr		*ctrs;
	json_t			*leftovers;	/* name -> {id, running} */
	/* what became of the containers found at startup, for the log */
	int			 left_found, left_adopted, left_replaced;
	struct docker_call	*events;
	struct docker_call	*listing;	/* after the stream ended */
	struct event		*resubscribe;
	int			 stream_down;	/* logged once per outage */
	uint64_t		 gen;		/* of listings and RUNNINGs */
	uint64_t		 listed_gen;	/* gen when the list was asked */
	char			 self[128];	/* our container, if any */
};

static void	ctr_begin(struct ctr *);
static void	ctr_create(struct ctr *);
static void	subscribe(struct dock *);
static void	stream_opened(struct dock *);

/* --- names ------------------------------------------------------------ */

/*
 * A replica's container is named --docker-prefix and its name with each
 * space as '-' ("Server 1" runs as ringlb-Server-1, "server-1" as
 * ringlb-server-1): what a replica name may hold (util.c's
 * name_is_valid) is what a container name may, but for spaces.
 */
static void
derive_cname(const char *prefix, const char *name, char *out)
{
	size_t o = (size_t)snprintf(out, CNAME_MAX + 1, "%s", prefix);

	for (; *name != '\0' && o < CNAME_MAX; name++)
		out[o++] = *name == ' ' ? '-' : *name;
	out[o] = '\0';
}

/*
 * Its network alias, a DNS label: the same, lowercased, with '_' and
 * '.' as '-' too and no '-' at the end ("Server 1" answers to server-1).
 * Two names with the same alias cannot run side by side: the second is
 * refused (docker_name_clash), so that neither the alias nor the
 * container name can be taken by two replicas.
 */
static void
derive_alias(const char *name, char *out)
{
	size_t o = 0;

	for (; *name != '\0' && o < ALIAS_MAX; name++) {
		char c = *name;

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		else if (c == ' ' || c == '_' || c == '.')
			c = '-';
		out[o++] = c;
	}
	while (o > 1 && out[o - 1] == '-')
		o--;
	out[o] = '\0';
}

static int
docker_name_clash(struct backend *be, const char *a, const char *b,
    char *why, size_t whylen)
{
	const char *prefix = be->cfg->docker.prefix;
	char aa[ALIAS_MAX + 1], ab[ALIAS_MAX + 1];
	char ca[CNAME_MAX + 1], cb[CNAME_MAX + 1];

	if (strcmp(a, b) == 0)
		return 0;	/* the same replica, started again */
	derive_alias(a, aa);
	derive_alias(b, ab);
	if (strcmp(aa, ab) != 0)
		return 0;
	derive_cname(prefix, a, ca);
	derive_cname(prefix, b, cb);
	if (strcmp(ca, cb) == 0)
		snprintf(why, whylen, "replica name '%s' would take the "
		    "container name %s, which is replica '%s''s; choose "
		    "another name", a, ca, b);
	else
		snprintf(why, whylen, "replica name '%s' would take the "
		    "network alias %s, which is replica '%s''s (container "
		    "%s); choose another name", a, aa, b, cb);
	return 1;
}

/* --- small helpers ---------------------------------------------------- */

/* Do these labels (a JSON object) name our owner?  Checked here, not
 * only by the engine's filter, before anything is removed or adopted. */
static int
labels_ours(struct dock *dk, json_t *labels)
{
	const char *o = json_string_value(json_object_get(labels,
	    LABEL_OWNER));

	return o != NULL && strcmp(o, dk->dc->owner) == 0;
}

/* An engine's container id: 12 to 64 lowercase hex digits. */
static int
id_is_valid(const char *id)
{
	size_t n = strlen(id);

	return n >= 12 && n <= 64 && strspn(id, "0123456789abcdef") == n;
}

static struct ctr *
ctr_by_id(struct dock *dk, const char *id)
{
	struct ctr *c;

	for (c = dk->ctrs; c != NULL; c = c->next)
		if (c->id[0] != '\0' && strcmp(c->id, id) == 0)
			return c;
	return NULL;
}

/* Is a create for replica name out (its container's id not known yet)? */
static int
creating(struct dock *dk, const char *name)
{
	struct ctr *c;

	for (c = dk->ctrs; c != NULL; c = c->next)
		if (c->rep != NULL && c->phase == CTR_CREATING &&
		    strcmp(c->rep->name, name) == 0)
			return 1;
	return 0;
}

static void
ctr_free(struct ctr *c)
{
	struct ctr **pp;

	for (pp = &c->dk->ctrs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	if (c->call != NULL)
		docker_cancel(c->dk->api, c->call);
	if (c->deadline != NULL)
		event_free(c->deadline);
	if (c->again != NULL)
		event_free(c->again);
	if (c->rep != NULL && c->rep->backend_data == c)
		c->rep->backend_data = NULL;
	free(c);
}

/* Answer the spawn or stop under way, once. */
static void
ctr_answer(struct ctr *c, int status, const char *why)
{
	backend_done_cb done = c->done;
	void *arg = c->arg;

	c->done = NULL;
	if (c->deadline != NULL)
		evtimer_del(c->deadline);
	if (done != NULL)
		done(c->rep, status, why, arg);
}

/* Remove a container and forget about it (nobody waits for this). */
static void
on_discarded(int code, json_t *body, const char *msg, void *arg)
{
	char *what = arg;

	(void)body;
	if (code != 204 && code != 404)
		log_warnx("could not remove container %s: %s", what, msg);
	free(what);
}

static void
discard(struct dock *dk, const char *id_or_name)
{
	char path[256], esc[200], *what;
	struct docker_call *call;

	if (docker_escape(id_or_name, esc, sizeof(esc)) == -1 ||
	    (what = strdup(id_or_name)) == NULL)
		return;
	snprintf(path, sizeof(path), "/containers/%s?force=1&v=1", esc);
	if ((call = docker_request(dk->api, "DELETE", path, NULL,
	    CALL_TIMEOUT_MS, on_discarded, what)) == NULL)
		free(what);
	else
		docker_own_arg(call);
}

/* A spawn failed: clean up what it made, then report why. */
static void
spawn_fail(struct ctr *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
spawn_fail(struct ctr *c, const char *fmt, ...)
{
	char why[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (c->call != NULL) {
		docker_cancel(c->dk->api, c->call);
		c->call = NULL;
	}
	evtimer_del(c->again);
	/* Never by name: the name may be someone else's container.  A
	 * create given up while the engine still works on it lands later
	 * and is removed then, by its "create" event (on_event), or by
	 * the next create's 409. */
	if (c->id[0] != '\0')
		discard(c->dk, c->id);
	c->id[0] = '\0';
	c->phase = CTR_IDLE;
	ctr_answer(c, -1, why);
}

/* --- spawn ------------------------------------------------------------ */

/* The replica's address from an inspect answer; 0 or -1 with why. */
static int
take_address(struct ctr *c, json_t *body, char *why, size_t whylen)
{
	struct dock *dk = c->dk;
	json_t *ns = json_object_get(body, "NetworkSettings"), *b;
	const char *ip, *hp;
	char key[16];
	long port;

	if (dk->reach_network) {
		ip = json_string_value(json_object_get(json_object_get(
		    json_object_get(ns, "Networks"), dk->dc->network),
		    "IPAddress"));
		if (ip == NULL || *ip == '\0') {
			snprintf(why, whylen, "container %s has no address on "
			    "network %s", c->cname, dk->dc->network);
			return -1;
		}
		if (replica_set_address(c->rep, ip, dk->dc->port) == -1) {
			snprintf(why, whylen, "container %s: unusable address "
			    "'%.64s' on network %s", c->cname, ip,
			    dk->dc->network);
			return -1;
		}
		return 0;
	}
	snprintf(key, sizeof(key), "%u/tcp", (unsigned)dk->dc->port);
	b = json_array_get(json_object_get(json_object_get(ns, "Ports"), key),
	    0);
	hp = json_string_value(json_object_get(b, "HostPort"));
	if (hp == NULL || parse_long(hp, 1, 65535, &port) == -1) {
		snprintf(why, whylen, "container %s has no port %s published "
		    "on 127.0.0.1", c->cname, key);
		return -1;
	}
	if (replica_set_address(c->rep, "127.0.0.1", (uint16_t)port) == -1) {
		snprintf(why, whylen, "container %s: unusable address",
		    c->cname);
		return -1;
	}
	return 0;
}

static void
on_inspected(int code, json_t *body, const char *msg, void *arg)
{
	struct ctr *c = arg;
	json_t *state;
	char why[512];

	c->call = NULL;
	if (code != 200) {
		spawn_fail(c, "cannot inspect container %s: %s", c->cname, msg);
		return;
	}
	state = json_object_get(body, "State");
	if (!json_is_true(json_object_get(state, "Running"))) {
		spawn_fail(c, "container %s exited at once (exit code %lld); "
		    "see docker logs %s", c->cname, (long long)json_integer_value(
		    json_object_get(state, "ExitCode")), c->cname);
		return;
	}
	if (take_address(c, body, why, sizeof(why)) == -1) {
		spawn_fail(c, "%s", why);
		return;
	}
	c->phase = CTR_RUNNING;
	c->running_gen = ++c->dk->gen;
	log_debug("replica %s runs in container %s (%.12s) at %s:%u",
	    c->rep->name, c->cname, c->id, c->rep->host,
	    (unsigned)c->rep->port);
	ctr_answer(c, 0, NULL);
}

static void
ctr_inspect(struct ctr *c)
{
	char path[160];

	c->phase = CTR_INSPECTING;
	snprintf(path, sizeof(path), "/containers/%s/json", c->id);
	c->call = docker_request(c->dk->api, "GET", path, NULL,
	    CALL_TIMEOUT_MS, on_inspected, c);
	if (c->call == NULL)
		spawn_fail(c, "out of memory");
}

static void
on_started(int code, json_t *body, const char *msg, void *arg)
{
	struct ctr *c = arg;

	(void)body;
	c->call = NULL;
	if (code != 204 && code != 304) {
		spawn_fail(c, "the Docker engine could not start container "
		    "%s: %s", c->cname, msg);
		return;
	}
	ctr_inspect(c);
}

/*
 * The name's holder is one of ours still being stopped (the replica was
 * removed and added back at once) or already being removed: its own stop
 * takes it away, and its requests in flight may finish; create again a
 * little later, within the spawn's --start-timeout.
 */
static void
create_later(struct ctr *c)
{
	static const struct timeval tv = { 0, CREATE_AGAIN_MS * 1000 };

	c->phase = CTR_CREATING;
	evtimer_add(c->again, &tv);
}

static void
on_create_again(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	ctr_create(arg);
}

/* The create answered 409 and the holder of the name was looked at. */
static void
on_conflict_inspected(int code, json_t *body, const char *msg, void *arg)
{
	struct ctr *c = arg;
	struct dock *dk = c->dk;
	struct ctr *holder;
	const char *owner, *id, *status;

	c->call = NULL;
	if (code == 404) {		/* gone meanwhile */
		ctr_create(c);
		return;
	}
	if (code != 200) {
		spawn_fail(c, "cannot inspect container %s: %s", c->cname,
		    msg);
		return;
	}
	owner = json_string_value(json_object_get(json_object_get(
	    json_object_get(body, "Config"), "Labels"), LABEL_OWNER));
	if (owner == NULL || strcmp(owner, dk->dc->owner) != 0) {
		spawn_fail(c, "a container named %s already exists and is not "
		    "ringlb's (its label %s is %s%s%s, not '%s'): remove it "
		    "(docker rm -f %s) or start ringlb with another "
		    "--docker-prefix", c->cname, LABEL_OWNER, owner ? "'" : "",
		    owner ? owner : "missing", owner ? "'" : "", dk->dc->owner,
		    c->cname);
		return;
	}
	if ((id = json_string_value(json_object_get(body, "Id"))) == NULL ||
	    !id_is_valid(id)) {
		spawn_fail(c, "container %s has no usable Id", c->cname);
		return;
	}
	status = json_string_value(json_object_get(json_object_get(body,
	    "State"), "Status"));
	if (((holder = ctr_by_id(dk, id)) != NULL && holder != c) ||
	    (status != NULL && strcmp(status, "removing") == 0)) {
		log_debug("replica %s: waiting for its old container %.12s to "
		    "go", c->rep->name, id);
		create_later(c);
		return;
	}
	log_info("removing container %s, a leftover of ours in the way of "
	    "replica %s", c->cname, c->rep->name);
	snprintf(c->id, sizeof(c->id), "%s", id);
	c->retried = 1;
	ctr_begin(c);
}

static void
on_created(int code, json_t *body, const char *msg, void *arg)
{
	struct ctr *c = arg;
	struct dock *dk = c->dk;
	const char *id;
	char path[200];

	c->call = NULL;
	if (code == 409 && !c->retried) {
		snprintf(path, sizeof(path), "/containers/%s/json", c->cname);
		if ((c->call = docker_request(dk->api, "GET", path, NULL,
		    CALL_TIMEOUT_MS, on_conflict_inspected, c)) == NULL)
			spawn_fail(c, "out of memory");
		return;
	}
	if (code == 404) {
		spawn_fail(c, "the Docker engine cannot create container %s: "
		    "%s; build the image with make build, or create the "
		    "network with docker network create %s", c->cname, msg,
		    dk->dc->network);
		return;
	}
	if (code != 201 || (id = json_string_value(json_object_get(body,
	    "Id"))) == NULL || !id_is_valid(id)) {
		spawn_fail(c, "the Docker engine could not create container "
		    "%s: %s", c->cname, code == 201 ? "no Id in its answer" :
		    msg);
		return;
	}
	snprintf(c->id, sizeof(c->id), "%s", id);
	c->phase = CTR_STARTING;
	snprintf(path, sizeof(path), "/containers/%s/start", c->id);
	if ((c->call = docker_request(dk->api, "POST", path, NULL,
	    CALL_TIMEOUT_MS, on_started, c)) == NULL)
		spawn_fail(c, "out of memory");
}

/* The body of POST /containers/create for c's replica. */
static json_t *
create_body(struct ctr *c)
{
	const struct docker_config *dc = c->dk->dc;
	char env[RING_NAME_LEN + 16], listen[32], port[16];
	json_t *hc, *b;

	snprintf(env, sizeof(env), "SERVER_ID=%s", c->rep->name);
	snprintf(listen, sizeof(listen), "0.0.0.0:%u", (unsigned)dc->port);
	snprintf(port, sizeof(port), "%u/tcp", (unsigned)dc->port);
	hc = json_pack("{s:{s:s}, s:s, s:b, s:[s], s:[s]}",
	    "RestartPolicy", "Name", "no",
	    "NetworkMode", dc->network,
	    "ReadonlyRootfs", 1,
	    "CapDrop", "ALL",
	    "SecurityOpt", "no-new-privileges");
	if (hc != NULL && !c->dk->reach_network)
		json_object_set_new(hc, "PortBindings", json_pack("{s:[{s:s, "
		    "s:s}]}", port, "HostIp", "127.0.0.1", "HostPort", ""));
	b = json_pack("{s:s, s:[s], s:[s, s], s:[s], s:{s:s, s:s}, s:{s:{}}, "
	    "s:o, s:{s:{s:{s:[s]}}}}",
	    "Image", dc->image,
	    "Entrypoint", "ringlb-replica",
	    "Cmd", "--listen", listen,
	    "Env", env,
	    "Labels", LABEL_OWNER, dc->owner, LABEL_REPLICA, c->rep->name,
	    "ExposedPorts", port,
	    "HostConfig", hc,
	    "NetworkingConfig", "EndpointsConfig", dc->network, "Aliases",
	    c->alias);
	return b;
}

static void
ctr_create(struct ctr *c)
{
	char path[CNAME_MAX * 3 + 64], esc[CNAME_MAX * 3 + 1];
	json_t *body;

	c->phase = CTR_CREATING;
	c->id[0] = '\0';
	if ((body = create_body(c)) == NULL ||
	    docker_escape(c->cname, esc, sizeof(esc)) == -1) {
		json_decref(body);
		spawn_fail(c, "out of memory");
		return;
	}
	snprintf(path, sizeof(path), "/containers/create?name=%s", esc);
	if ((c->call = docker_request(c->dk->api, "POST", path, body,
	    CALL_TIMEOUT_MS, on_created, c)) == NULL)
		spawn_fail(c, "out of memory");
}

static void
on_old_removed(int code, json_t *body, const char *msg, void *arg)
{
	struct ctr *c = arg;

	(void)body;
	c->call = NULL;
	if (code == 409) {
		/* "removal of container ... is already in progress" */
		create_later(c);
		return;
	}
	if (code != 204 && code != 404) {
		spawn_fail(c, "cannot remove the old container %s: %s",
		    c->cname, msg);
		return;
	}
	ctr_create(c);
}

/* Adopt the running container found at startup, if the state file
 * named this replica; 1 if adopted. */
static int
adopt(struct ctr *c)
{
	struct dock *dk = c->dk;
	json_t *old = json_object_get(dk->leftovers, c->rep->name);
	const char *id = json_string_value(json_object_get(old, "id"));

	if (old == NULL || id == NULL || !id_is_valid(id))
		return 0;
	snprintf(c->id, sizeof(c->id), "%s", id);
	if (c->rep->restored && json_is_true(json_object_get(old,
	    "running"))) {
		log_info("replica %s: adopting its running container %s",
		    c->rep->name, c->cname);
		json_object_del(dk->leftovers, c->rep->name);
		dk->left_adopted++;
		ctr_inspect(c);
		return 1;
	}
	/* ours, but not to be kept: the spawn removes it first */
	log_info("replica %s: replacing its container %.12s, left by an "
	    "earlier ringlb (%s)", c->rep->name, id, !c->rep->restored ?
	    "no state file named it" : "it was not running");
	json_object_del(dk->leftovers, c->rep->name);
	dk->left_replaced++;
	return 0;
}

/* Start the spawn of c once the engine has been checked. */
static void
ctr_begin(struct ctr *c)
{
	char path[200];

	if (adopt(c))
		return;
	if (c->id[0] == '\0') {
		ctr_create(c);
		return;
	}
	/* a replacement: the old container goes first, under its name */
	c->phase = CTR_REMOVING_OLD;
	snprintf(path, sizeof(path), "/containers/%s?force=1&v=1", c->id);
	if ((c->call = docker_request(c->dk->api, "DELETE", path, NULL,
	    CALL_TIMEOUT_MS, on_old_removed, c)) == NULL)
		spawn_fail(c, "out of memory");
}

static void
on_spawn_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct ctr *c = arg;

	(void)fd;
	(void)what;
	spawn_fail(c, "the Docker engine did not run container %s within "
	    "--start-timeout (%ld ms)", c->cname, c->dk->be->cfg->
	    start_timeout_ms);
}

static void
docker_spawn(struct backend *be, struct replica *rep, backend_done_cb done,
    void *arg)
{
	struct dock *dk = be->priv;
	struct ctr *c = rep->backend_data, *o;
	struct timeval tv;
	char alias[ALIAS_MAX + 1];

	derive_alias(rep->name, alias);
	/* another name mapping to the same container name or alias (the
	 * pool refuses those; a replica restored from an older ringlb's
	 * state file may still meet one); the same name again (a replica
	 * removed and added back at once) is no clash: its create clears
	 * the old container, which is ours */
	for (o = dk->ctrs; o != NULL; o = o->next) {
		char why[512];

		if (o != c && o->rep != NULL && docker_name_clash(be,
		    rep->name, o->rep->name, why, sizeof(why))) {
			backend_complete_later(be, rep, -1, why, done, arg);
			return;
		}
	}
	if (c == NULL) {
		if ((c = calloc(1, sizeof(*c))) == NULL ||
		    (c->deadline = evtimer_new(be->base, on_spawn_deadline,
		    c)) == NULL ||
		    (c->again = evtimer_new(be->base, on_create_again, c)) ==
		    NULL) {
			if (c != NULL && c->deadline != NULL)
				event_free(c->deadline);
			free(c);
			backend_complete_later(be, rep, -1, "out of memory",
			    done, arg);
			return;
		}
		c->dk = dk;
		c->rep = rep;
		memcpy(c->alias, alias, sizeof(alias));
		derive_cname(dk->dc->prefix, rep->name, c->cname);
		c->next = dk->ctrs;
		dk->ctrs = c;
		rep->backend_data = c;
	}
	c->done = done;
	c->arg = arg;
	c->retried = 0;
	tv.tv_sec = be->cfg->start_timeout_ms / 1000;
	tv.tv_usec = (be->cfg->start_timeout_ms % 1000) * 1000;
	evtimer_add(c->deadline, &tv);
	if (!dk->ready) {
		c->phase = CTR_QUEUED;
		return;
	}
	ctr_begin(c);
}

/* --- stop ------------------------------------------------------------- */

static void
on_removed(int code, json_t *body, const char *msg, void *arg)
{
	struct ctr *c = arg;
	backend_done_cb done = c->done;
	struct replica *rep = c->rep;
	void *darg = c->arg;
	char why[512];
	/* 404: already gone; 409: "removal ... is already in progress" */
	int gone = code == 204 || code == 404 || code == 409;

	(void)body;
	c->call = NULL;
	c->done = NULL;
	snprintf(why, sizeof(why), "cannot remove container %s: %s",
	    c->cname, msg);
	if (!gone)
		log_warnx("replica %s: %s", rep->name, why);
	else
		log_debug("replica %s: container %s removed", rep->name,
		    c->cname);
	ctr_free(c);
	if (done != NULL)
		done(rep, gone ? 0 : -1, why, darg);
}

static void
ctr_remove(struct ctr *c)
{
	char path[160];

	c->phase = CTR_REMOVING;
	snprintf(path, sizeof(path), "/containers/%s?force=1&v=1", c->id);
	if ((c->call = docker_request(c->dk->api, "DELETE", path, NULL,
	    CALL_TIMEOUT_MS, on_removed, c)) == NULL)
		on_removed(0, NULL, "out of memory", c);
}

static void
on_stopped(int code, json_t *body, const char *msg, void *arg)
{
	struct ctr *c = arg;

	(void)body;
	c->call = NULL;
	if (code != 204 && code != 304 && code != 404)
		log_warnx("replica %s: stopping container %s: %s; removing "
		    "it by force", c->rep->name, c->cname, msg);
	ctr_remove(c);
}

static void
docker_stop(struct backend *be, struct replica *rep, backend_done_cb done,
    void *arg)
{
	struct dock *dk = be->priv;
	struct ctr *c = rep->backend_data;
	char path[200];
	long grace_s = (be->cfg->stop_grace_ms + 999) / 1000;

	if (c == NULL) {
		backend_complete_later(be, rep, 0, NULL, done, arg);
		return;
	}
	c->done = done;
	c->arg = arg;
	evtimer_del(c->deadline);
	if (c->id[0] == '\0') {
		/* no container (its start failed and was cleaned up): done,
		 * on the next turn of the loop as backend.h promises */
		ctr_free(c);
		backend_complete_later(be, rep, 0, NULL, done, arg);
		return;
	}
	if (c->phase != CTR_RUNNING) {
		/* it died: remove what is left of it */
		ctr_remove(c);
		return;
	}
	c->phase = CTR_STOPPING;
	snprintf(path, sizeof(path), "/containers/%s/stop?t=%ld", c->id,
	    grace_s);
	if ((c->call = docker_request(dk->api, "POST", path, NULL,
	    grace_s * 1000 + CALL_TIMEOUT_MS, on_stopped, c)) == NULL)
		ctr_remove(c);
}

/* --- deaths: the event stream ----------------------------------------- */

/* c's container is gone or stopped by itself: tell the pool. */
static void
ctr_lost(struct ctr *c, const char *why)
{
	struct dock *dk = c->dk;

	if (c->phase != CTR_RUNNING)
		return;		/* being started or stopped: not news */
	c->phase = CTR_IDLE;	/* the id stays: the respawn removes it */
	if (dk->be->lost != NULL)
		dk->be->lost(c->rep, why, dk->be->lost_arg);
}

static void
on_event(json_t *ev, void *arg)
{
	struct dock *dk = arg;
	json_t *attrs = json_object_get(json_object_get(ev, "Actor"),
	    "Attributes");
	const char *action = json_string_value(json_object_get(ev, "Action"));
	const char *id = json_string_value(json_object_get(json_object_get(ev,
	    "Actor"), "ID"));
	const char *name = json_string_value(json_object_get(attrs,
	    LABEL_REPLICA));
	const char *code = json_string_value(json_object_get(attrs,
	    "exitCode"));
	struct ctr *c;
	char why[128];

	if (ev == NULL) {		/* the stream is open */
		stream_opened(dk);
		return;
	}
	if (action == NULL || id == NULL)
		return;
	if (strcmp(action, "die") == 0) {
		if ((c = ctr_by_id(dk, id)) == NULL)
			return;
		snprintf(why, sizeof(why), "its container died (exit code %s)",
		    code ? code : "unknown");
		ctr_lost(c, why);
		return;
	}
	if (strcmp(action, "create") == 0 && dk->ready && name != NULL &&
	    labels_ours(dk, attrs) && id_is_valid(id)) {
		/* A create that ended after its spawn gave up: nobody will
		 * use the container.  Our own creates are either answered
		 * (the id is known) or still out (CTR_CREATING). */
		if (ctr_by_id(dk, id) != NULL || creating(dk, name))
			return;
		log_info("removing container %.12s of replica %s: its create "
		    "was given up", id, name);
		discard(dk, id);
	}
}

static void
schedule_resubscribe(struct dock *dk)
{
	static const struct timeval tv = { RESUBSCRIBE_MS / 1000,
	    (RESUBSCRIBE_MS % 1000) * 1000 };

	evtimer_add(dk->resubscribe, &tv);
}

/* After the stream came back: who died while it was down? */
static void
on_relisted(int code, json_t *body, const char *msg, void *arg)
{
	struct dock *dk = arg;
	struct ctr *c, *next;
	json_t *v;
	size_t i;

	dk->listing = NULL;
	if (code != 200 || !json_is_array(body)) {
		log_warnx("cannot list containers: %s", code != 200 ? msg :
		    "the answer is not a JSON array");
		return;
	}
	for (c = dk->ctrs; c != NULL; c = next) {
		int running = 0;

		next = c->next;
		/* what ran only after the list was asked for is not in it */
		if (c->phase != CTR_RUNNING || c->running_gen > dk->listed_gen)
			continue;
		json_array_foreach(body, i, v) {
			const char *id = json_string_value(json_object_get(v,
			    "Id"));
			const char *st = json_string_value(json_object_get(v,
			    "State"));

			if (id != NULL && strcmp(id, c->id) == 0)
				running = st != NULL &&
				    strcmp(st, "running") == 0;
		}
		if (!running)
			ctr_lost(c, "its container went away while the "
			    "engine's event stream was down");
	}
}

/* The filters of our containers: {"label": ["ringlb.owner=X"]}. */
static json_t *
owner_filter(struct dock *dk)
{
	char label[128];

	snprintf(label, sizeof(label), LABEL_OWNER "=%s", dk->dc->owner);
	return json_pack("{s:[s]}", "label", label);
}

/* GET path?...filters=<ours> */
static struct docker_call *
list_ours(struct dock *dk, docker_cb done)
{
	char f[400], path[512];

	if (docker_filters(owner_filter(dk), f, sizeof(f)) == -1)
		return NULL;
	snprintf(path, sizeof(path), "/containers/json?all=1&filters=%s", f);
	return docker_request(dk->api, "GET", path, NULL, CALL_TIMEOUT_MS,
	    done, dk);
}

static void
on_stream_end(int code, json_t *body, const char *msg, void *arg)
{
	struct dock *dk = arg;

	(void)code;
	(void)body;
	dk->events = NULL;
	if (!dk->stream_down)
		log_warnx("docker: %s; opening it again", msg);
	dk->stream_down = 1;
	schedule_resubscribe(dk);
}

static void
subscribe(struct dock *dk)
{
	json_t *f = owner_filter(dk);

	json_object_set_new(f, "type", json_pack("[s]", "container"));
	json_object_set_new(f, "event", json_pack("[s, s]", "die", "create"));
	dk->events = docker_events(dk->api, f, on_event, on_stream_end, dk);
	if (dk->events == NULL) {
		schedule_resubscribe(dk);
		return;
	}
}

/*
 * The engine answered the /events request with 200: the stream is open.
 * After an outage, deaths while it was down are found by listing, now
 * that no later one can fall in between.
 */
static void
stream_opened(struct dock *dk)
{
	if (!dk->stream_down)
		return;
	if (dk->listing == NULL) {
		dk->listed_gen = ++dk->gen;
		dk->listing = list_ours(dk, on_relisted);
	}
	log_info("docker: the event stream is open again");
	dk->stream_down = 0;
}

static void
on_resubscribe(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	subscribe(arg);
}

/* --- the engine check at startup -------------------------------------- */

static void	bootstrap_step(struct dock *, int);

static void
bootstrap_fatal(struct dock *dk, const char *msg)
{
	(void)dk;
	fatalx("docker backend: %s", msg);
}

/* Found at startup: keep those a restored replica may adopt. */
static void
on_listed(int code, json_t *body, const char *msg, void *arg)
{
	struct dock *dk = arg;
	const char *name, *id, *st;
	json_t *v;
	size_t i;

	if (code != 200 || !json_is_array(body)) {
		bootstrap_fatal(dk, code != 200 ? msg : "the Docker engine's "
		    "container list is not a JSON array");
		return;
	}
	json_array_foreach(body, i, v) {
		name = json_string_value(json_object_get(json_object_get(v,
		    "Labels"), LABEL_REPLICA));
		id = json_string_value(json_object_get(v, "Id"));
		st = json_string_value(json_object_get(v, "State"));
		if (id == NULL || !id_is_valid(id) ||
		    !labels_ours(dk, json_object_get(v, "Labels")))
			continue;
		dk->left_found++;
		if (name == NULL || json_object_get(dk->leftovers, name)) {
			discard(dk, id);
			continue;
		}
		json_object_set_new(dk->leftovers, name, json_pack("{s:s, s:b}",
		    "id", id, "running", st != NULL &&
		    strcmp(st, "running") == 0));
	}
	bootstrap_step(dk, 4);
}

static void
on_self(int code, json_t *body, const char *msg, void *arg)
{
	struct dock *dk = arg;
	struct backend *be = dk->be;
	json_t *net = json_object_get(json_object_get(json_object_get(body,
	    "NetworkSettings"), "Networks"), dk->dc->network);
	const char *gw = json_string_value(json_object_get(net, "Gateway"));
	struct allow_net *an = &be->trusted[0];

	if (code != 200) {
		/* not a container of this engine (a VM's, another engine's):
		 * ringlb is on the replicas' host, as far as they go */
		if (dk->dc->reach == DOCKER_REACH_AUTO)
			dk->reach_network = 0;
		else
			log_warnx("docker: cannot find ringlb's own container "
			    "(%s: %s); the Docker host is not trusted for /add "
			    "and /rm: set RINGLB_ADMIN_TOKEN or "
			    "RINGLB_ADMIN_ALLOW", dk->self, msg);
	} else if (net == NULL && dk->reach_network) {
		char why[1024];

		snprintf(why, sizeof(why), "ringlb's container is not on "
		    "network %s, so its replicas would be out of reach: attach "
		    "it (docker network connect %s %s) or use --docker-reach "
		    "published", dk->dc->network, dk->dc->network, dk->self);
		bootstrap_fatal(dk, why);
		return;
	} else if (gw != NULL && *gw != '\0' &&
	    parse_cidr(gw, &an->family, an->addr, &an->prefix) == 0) {
		/* Clients on the Docker host reach a published port
		 * through the network's gateway address. */
		be->ntrusted = 1;
		if (be->cfg->admin_token[0] == '\0')
			log_info("admin API: clients on the Docker host (through "
			    "%s, the gateway of %s) may use /add and /rm "
			    "without a token; replica containers and other "
			    "hosts may not unless RINGLB_ADMIN_TOKEN is set",
			    gw, dk->dc->network);
	}
	bootstrap_step(dk, 3);
}

static void
on_checked(int code, json_t *body, const char *msg, void *arg)
{
	struct dock *dk = arg;
	char why[1024];

	(void)body;
	if (code == 200) {
		bootstrap_step(dk, dk->step + 1);
		return;
	}
	if (code == 404 && dk->step == 0)
		snprintf(why, sizeof(why), "the image %s is not there: build "
		    "it with make build (or docker build -t %s -f "
		    "docker/Dockerfile .); ringlb never pulls images",
		    dk->dc->image, dk->dc->image);
	else if (code == 404)
		snprintf(why, sizeof(why), "the network %s does not exist: "
		    "create it with docker network create %s "
		    "(docker-compose up creates it)", dk->dc->network,
		    dk->dc->network);
	else
		snprintf(why, sizeof(why), "%s", msg);
	bootstrap_fatal(dk, why);
}

static void
on_negotiated(int code, json_t *body, const char *msg, void *arg)
{
	struct dock *dk = arg;

	(void)body;
	if (code != 200) {
		bootstrap_fatal(dk, msg);
		return;
	}
	log_debug("docker: engine at %s, API %s", docker_where(dk->api),
	    docker_version(dk->api));
	bootstrap_step(dk, 0);
}

/*
 * The checks, in order: the image (step 0), the network (1), ringlb's
 * own container (2), the containers already labelled ours (3), then the
 * event stream and the spawns that waited (4).
 */
static void
bootstrap_step(struct dock *dk, int step)
{
	char path[512], esc[400];
	struct ctr *c, *next;
	const char *name;
	json_t *v;
	void *it;

	dk->step = step;
	switch (step) {
	case 0:
	case 1:
		/* both are of [A-Za-z0-9_.-:/@] (set_image, set_network), as
		 * the engine's own routes take them, unescaped */
		snprintf(path, sizeof(path), step == 0 ? "/images/%s/json" :
		    "/networks/%s", step == 0 ? dk->dc->image :
		    dk->dc->network);
		if (docker_request(dk->api, "GET", path, NULL, CALL_TIMEOUT_MS,
		    on_checked, dk) == NULL)
			bootstrap_fatal(dk, "out of memory");
		return;
	case 2:
		if (dk->self[0] == '\0') {
			bootstrap_step(dk, 3);
			return;
		}
		if (docker_escape(dk->self, esc, sizeof(esc)) == -1) {
			bootstrap_step(dk, 3);
			return;
		}
		snprintf(path, sizeof(path), "/containers/%s/json", esc);
		if (docker_request(dk->api, "GET", path, NULL, CALL_TIMEOUT_MS,
		    on_self, dk) == NULL)
			bootstrap_fatal(dk, "out of memory");
		return;
	case 3:
		if (list_ours(dk, on_listed) == NULL)
			bootstrap_fatal(dk, "out of memory");
		return;
	}
	dk->ready = 1;
	log_info("docker: engine at %s, API %s; replicas from image %s on "
	    "network %s, reached %s", docker_where(dk->api),
	    docker_version(dk->api), dk->dc->image, dk->dc->network,
	    dk->reach_network ? "at their network address" :
	    "through ports published on 127.0.0.1");
	subscribe(dk);
	for (c = dk->ctrs; c != NULL; c = next) {
		next = c->next;
		if (c->phase == CTR_QUEUED)
			ctr_begin(c);
	}
	/* what no replica claimed is not ours to keep */
	it = json_object_iter(dk->leftovers);
	while (it != NULL) {
		name = json_object_iter_key(it);
		v = json_object_iter_value(it);
		log_info("removing container of replica %s, left by an earlier "
		    "ringlb", name);
		discard(dk, json_string_value(json_object_get(v, "id")));
		it = json_object_iter_next(dk->leftovers, it);
	}
	json_object_clear(dk->leftovers);
	/* Containers of ours at startup mean the last ringlb did not stop
	 * them (killed, or its container removed before it could): say
	 * what became of them, not only one by one. */
	if (dk->left_found > 0)
		log_info("docker: found %d container%s labelled %s=%s, left by "
		    "an earlier ringlb: %d adopted, %d replaced, %d removed",
		    dk->left_found, dk->left_found == 1 ? "" : "s",
		    LABEL_OWNER, dk->dc->owner, dk->left_adopted,
		    dk->left_replaced, dk->left_found - dk->left_adopted -
		    dk->left_replaced);
}

/* --- setup ------------------------------------------------------------ */

static int
docker_init(struct backend *be, char *err, size_t errlen)
{
	const struct docker_config *dc = &be->cfg->docker;
	struct dock *dk;
	int in_container = access("/.dockerenv", F_OK) == 0;

	if ((dk = calloc(1, sizeof(*dk))) == NULL ||
	    (dk->leftovers = json_object()) == NULL ||
	    (dk->resubscribe = evtimer_new(be->base, on_resubscribe,
	    dk)) == NULL) {
		if (dk != NULL)
			json_decref(dk->leftovers);
		free(dk);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	dk->be = be;
	dk->dc = dc;
	/* auto: network, if the engine turns out to know our container */
	dk->reach_network = dc->reach == DOCKER_REACH_NETWORK ||
	    (dc->reach == DOCKER_REACH_AUTO && in_container);
	if (in_container && gethostname(dk->self, sizeof(dk->self)) == -1)
		dk->self[0] = '\0';
	if ((dk->api = docker_new(be->base, getenv("DOCKER_HOST"), err,
	    errlen)) == NULL || docker_negotiate(dk->api, on_negotiated,
	    dk) == -1) {
		if (dk->api != NULL)
			snprintf(err, errlen, "out of memory");
		docker_free(dk->api);
		event_free(dk->resubscribe);
		json_decref(dk->leftovers);
		free(dk);
		return -1;
	}
	be->priv = dk;
	return 0;
}

static int
docker_capacity(struct backend *be)
{
	return be->cfg->docker.max;
}

static void
docker_free_backend(struct backend *be)
{
	struct dock *dk = be->priv;

	if (dk == NULL)
		return;
	while (dk->ctrs != NULL)
		ctr_free(dk->ctrs);
	docker_free(dk->api);
	event_free(dk->resubscribe);
	json_decref(dk->leftovers);
	free(dk);
}

const struct backend_ops backend_docker_ops = {
	.name = "docker",
	.replaces = 1,
	/* stop (t = grace) then remove, each an engine call */
	.stop_slack_ms = 15000,
	.init = docker_init,
	.initial = backend_initial_names,
	.name_clash = docker_name_clash,
	.capacity = docker_capacity,
	.capacity_option = "--docker-max",
	.spawn = docker_spawn,
	.stop = docker_stop,
	.free = docker_free_backend,
};

/* --- settings --------------------------------------------------------- */

#define NAME_SET	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" \
			"0123456789_.-"

/* A name of the engine's: 1 to dstlen - 1 bytes of NAME_SET and extra. */
static int
set_string(char *dst, size_t dstlen, const char *what, const char *v,
    const char *extra, char *err, size_t errlen)
{
	size_t n = strlen(v), ok = strspn(v, NAME_SET);

	while (ok < n && strchr(extra, v[ok]) != NULL)
		ok += 1 + strspn(v + ok + 1, NAME_SET);
	if (n == 0 || n >= dstlen || ok != n) {
		snprintf(err, errlen, "%s '%.80s' must be 1 to %zu letters, "
		    "digits and _.-%s", what, v, dstlen - 1, extra);
		return -1;
	}
	memcpy(dst, v, n + 1);
	return 0;
}

static int
set_image(struct config *cfg, const char *v, char *err, size_t errlen)
{
	return set_string(cfg->docker.image, sizeof(cfg->docker.image),
	    "docker image", v, ":/@", err, errlen);
}

static int
set_network(struct config *cfg, const char *v, char *err, size_t errlen)
{
	return set_string(cfg->docker.network, sizeof(cfg->docker.network),
	    "docker network", v, "", err, errlen);
}

static int
set_owner(struct config *cfg, const char *v, char *err, size_t errlen)
{
	return set_string(cfg->docker.owner, sizeof(cfg->docker.owner),
	    "docker owner", v, "", err, errlen);
}

static int
set_prefix(struct config *cfg, const char *v, char *err, size_t errlen)
{
	if (!((*v >= 'a' && *v <= 'z') || (*v >= 'A' && *v <= 'Z') ||
	    (*v >= '0' && *v <= '9'))) {
		snprintf(err, errlen, "docker prefix '%.80s' must start with a "
		    "letter or digit, e.g. ringlb-", v);
		return -1;
	}
	return set_string(cfg->docker.prefix, sizeof(cfg->docker.prefix),
	    "docker prefix", v, "", err, errlen);
}

static int
set_max(struct config *cfg, const char *v, char *err, size_t errlen)
{
	long n;

	if (parse_long(v, 1, CONFIG_REPLICAS_MAX, &n) == -1) {
		snprintf(err, errlen, "docker max '%s' must be a number from 1 "
		    "to %d", v, CONFIG_REPLICAS_MAX);
		return -1;
	}
	cfg->docker.max = (int)n;
	return 0;
}

static int
set_reach(struct config *cfg, const char *v, char *err, size_t errlen)
{
	if (strcmp(v, "auto") == 0)
		cfg->docker.reach = DOCKER_REACH_AUTO;
	else if (strcmp(v, "network") == 0)
		cfg->docker.reach = DOCKER_REACH_NETWORK;
	else if (strcmp(v, "published") == 0)
		cfg->docker.reach = DOCKER_REACH_PUBLISHED;
	else {
		snprintf(err, errlen, "docker reach '%.80s': use auto, network "
		    "or published", v);
		return -1;
	}
	return 0;
}

static int
set_port(struct config *cfg, const char *v, char *err, size_t errlen)
{
	long n;

	if (parse_long(v, 1, 65535, &n) == -1) {
		snprintf(err, errlen, "docker port '%s' must be a port from 1 "
		    "to 65535", v);
		return -1;
	}
	cfg->docker.port = (uint16_t)n;
	return 0;
}

static void
docker_defaults(struct config *cfg)
{
	struct docker_config *dc = &cfg->docker;

	snprintf(dc->image, sizeof(dc->image), "ringlb:latest");
	snprintf(dc->network, sizeof(dc->network), "net1");
	snprintf(dc->owner, sizeof(dc->owner), "ringlb");
	snprintf(dc->prefix, sizeof(dc->prefix), "ringlb-");
	dc->max = 64;
	dc->reach = DOCKER_REACH_AUTO;
	dc->port = 5000;
}

static const struct option_def docker_options[] = {
	{ "docker-image", "RINGLB_DOCKER_IMAGE", "IMAGE",
	  "image of the replica containers, holding ringlb-replica; never "
	  "pulled (default ringlb:latest, made by make build)", set_image },
	{ "docker-network", "RINGLB_DOCKER_NETWORK", "NAME",
	  "network the replicas join, each with its name as an alias "
	  "(default net1)", set_network },
	{ "docker-owner", "RINGLB_DOCKER_OWNER", "ID",
	  "value of the ringlb.owner label on the containers this ringlb "
	  "starts; leftovers carrying it are adopted or removed at startup "
	  "(default ringlb)", set_owner },
	{ "docker-prefix", "RINGLB_DOCKER_PREFIX", "PREFIX",
	  "container names are PREFIX and the replica's name (default "
	  "ringlb-)", set_prefix },
	{ "docker-max", "RINGLB_DOCKER_MAX", "N",
	  "most replica containers to run (default 64)", set_max },
	{ "docker-reach", "RINGLB_DOCKER_REACH", "HOW",
	  "network (the container's address on the network), published (a "
	  "port published on 127.0.0.1) or auto (default: network when ringlb "
	  "runs in a container of the same engine)", set_reach },
	{ "docker-port", "RINGLB_DOCKER_PORT", "PORT",
	  "port the replicas listen on inside their containers (default "
	  "5000)", set_port },
};

const struct option_table backend_docker_options = {
	"the docker backend", docker_options, sizeof(docker_options) / sizeof(docker_options[0]),
	docker_defaults
};
