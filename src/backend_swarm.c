/*
 * backend_swarm.c - replicas as Docker Swarm services, a set shared by
 * every ringlb of the same owner.
 *
 * Each replica is one service with one task: --docker-image run as
 * ringlb-replica, SERVER_ID=<name>, labels ringlb.owner=<--docker-owner>
 * and ringlb.replica=<name>, endpoint mode dnsrr (no VIP), a restart
 * policy on failure, on the attachable overlay network --docker-network.
 * ringlb reaches a replica at its running task's address on that network,
 * so it must run on that network itself (a service of the stack, or a
 * container attached to it).
 *
 * The swarm's managers keep the set; ringlb keeps none of its own (no
 * state file).  Every ringlb of the owner lists the services at startup
 * and again whenever the engine reports a service created, updated or
 * removed, and every RECONCILE_MS in case the event stream missed one:
 *
 *   a service of ours the pool does not have    -> be->found (adopt it)
 *   a replica whose service is gone or leaving  -> be->gone (drop it)
 *
 * A ringlb starting on an empty set creates its --replicas; on a set that
 * exists it takes the set as it is and creates nothing.  /add creates
 * services (the engine refuses a second one of a name: a 409 on a name
 * we were to make means another ringlb made it first; that replica is
 * adopted, not doubled).  /rm marks the service leaving (label
 * ringlb.leaving), so every other ringlb takes it off its ring at once,
 * and removes the service once this ringlb's requests to it are done
 * and the others have had LEAVE_GRACE_MS to see the mark.  A mark left by
 * a ringlb that died before the removal is finished by any other ringlb
 * of the owner, LEAVING_STALE_S after it was made.
 *
 * Healing is the swarm's: it restarts a dead task, on any node.  ringlb
 * learns of a death from the container's die event (on this node) or
 * from failed heartbeats (anywhere); the pool evicts the replica and
 * spawns it again, which here means waiting for the service's next
 * running task and taking its address, never creating a second service.
 * A task that runs on without answering (hung: no health check tells
 * the swarm) is taken back once; failing again, ringlb asks the swarm to
 * replace it (a forced update).
 * At exit ringlb leaves every service running for the other ringlbs.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
#define LABEL_LEAVING		"ringlb.leaving"
#define CALL_TIMEOUT_MS		30000L
#define RESUBSCRIBE_MS		1000
#define RECONCILE_MS		5000	/* a full listing, events or not */
#define TASK_POLL_MS		200	/* waiting for a running task */
#define TASK_WAIT_MS		120000	/* a task must run within this */
#define LEAVE_GRACE_MS		1000	/* others see a leaving mark */
#define OLD_TASK_MS		5000	/* a dead task may look running */
#define LEAVING_STALE_S		300	/* a mark its ringlb did not finish */
#define RESTART_DELAY_NS	1000000000LL	/* the swarm's, on failure */
#define SNAME_MAX		63	/* a service name is a DNS label */

enum svc_phase {
	SVC_IDLE = 0,
	SVC_QUEUED,		/* spawn waits for the engine check */
	SVC_ORPHAN,		/* not in the set: the pool is told next */
	SVC_NOMEM,		/* the spawn fails next, out of memory */
	SVC_CREATING,
	SVC_WAITING,		/* for a running task with an address */
	SVC_RUNNING,
	SVC_LEAVING,		/* marked leaving, waiting to remove */
	SVC_REMOVING
};

struct swarm;

/* One replica's service. */
struct svc {
	struct swarm		*sw;
	struct replica		*rep;
	char			 sname[SNAME_MAX + 1];
	char			 id[80];	/* the service's, "" if unknown */
	char			 task[80];	/* the task we route to */
	char			 old_task[80];	/* a dead one, not to take */
	enum svc_phase		 phase;
	int			 gone;		/* removed from the set elsewhere */
	int			 may_create;	/* /add, or the first set */
	int			 for_add;	/* the create asked was an /add's */
	int			 created;	/* by this ringlb, for an /add */
	int			 marked;	/* this ringlb removes it (/rm) */
	int			 mark_sent;	/* the leaving mark was asked */
	uint64_t		 begun;		/* the spawn, now_ms() */
	uint64_t		 known_gen;	/* sw->gen when id was learned */
	uint64_t		 wait_until;	/* of the task wait, now_ms() */
	uint64_t		 remove_at;	/* after the leaving grace */
	struct docker_call	*call;
	struct docker_call	*mark_call;
	struct docker_call	*force_call;	/* a task replaced by ringlb */
	int			 retaken;	/* the old task taken back, times */
	uint64_t		 taken_at;	/* the task, now_ms() */
	int			 forced;	/* its replacement was asked */
	backend_done_cb		 done;
	void			*arg;
	struct event		*timer;
	struct svc		*next;
};

struct swarm {
	struct backend		*be;
	const struct docker_config *dc;
	struct docker		*api;
	int			 step;
	int			 ready;
	struct svc		*svcs;
	json_t			*known;		/* the last listing */
	struct docker_call	*events;
	struct docker_call	*listing;
	int			 relist;	/* another listing is due */
	struct event		*resubscribe;
	struct event		*reconcile;
	int			 stream_down;
	int			 engine_down;	/* listing failed: logged once */
	char			 engine_error[256];	/* why, for /status */
	uint64_t		 listed_at;	/* the last good listing, now_ms() */
	uint64_t		 gen;
	uint64_t		 listed_gen;
};

static void	svc_wait_task(struct svc *);
static void	svc_remove(struct svc *);
static void	svc_mark(struct svc *);
static void	bootstrap_done(struct swarm *);
static void	list_services(struct swarm *);

/* --- names ------------------------------------------------------------ */

/*
 * The service of replica "Server 1" is --docker-prefix and its name with
 * spaces as '-': ringlb-Server-1.  Other bytes a service name may not
 * hold are left for the engine to refuse, with its own words.
 */
static void
derive_sname(const char *prefix, const char *name, char *out)
{
	size_t i, n;

	n = (size_t)snprintf(out, SNAME_MAX + 1, "%s%s", prefix, name);
	if (n > SNAME_MAX)
		n = SNAME_MAX;
	for (i = 0; i < n; i++)
		if (out[i] == ' ')
			out[i] = '-';
}

static int
swarm_name_clash(struct backend *be, const char *a, const char *b,
    char *why, size_t whylen)
{
	char sa[SNAME_MAX + 1], sb[SNAME_MAX + 1];

	derive_sname(be->cfg->docker.prefix, a, sa);
	derive_sname(be->cfg->docker.prefix, b, sb);
	if (strcmp(sa, sb) != 0)
		return 0;
	snprintf(why, whylen, "replica '%s' would run as service %s, as "
	    "replica '%s' does", a, sa, b);
	return 1;
}

static int
labels_ours(struct swarm *sw, json_t *labels)
{
	const char *o = json_string_value(json_object_get(labels,
	    LABEL_OWNER));

	return o != NULL && strcmp(o, sw->dc->owner) == 0;
}

/* --- one service ------------------------------------------------------ */

static struct svc *
svc_by_name(struct swarm *sw, const char *name)
{
	struct svc *s;

	for (s = sw->svcs; s != NULL; s = s->next)
		if (s->rep != NULL && strcmp(s->rep->name, name) == 0)
			return s;
	return NULL;
}

static void
svc_free(struct svc *s)
{
	struct svc **pp;

	for (pp = &s->sw->svcs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	if (s->call != NULL)
		docker_cancel(s->sw->api, s->call);
	if (s->mark_call != NULL)
		docker_cancel(s->sw->api, s->mark_call);
	if (s->force_call != NULL)
		docker_cancel(s->sw->api, s->force_call);
	if (s->timer != NULL)
		event_free(s->timer);
	if (s->rep != NULL && s->rep->backend_data == s)
		s->rep->backend_data = NULL;
	free(s);
}

/* Answer the spawn or stop under way, once. */
static void
svc_answer(struct svc *s, int status, const char *why)
{
	backend_done_cb done = s->done;
	void *arg = s->arg;

	s->done = NULL;
	if (done != NULL)
		done(s->rep, status, why, arg);
}

static void
spawn_fail(struct svc *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
spawn_fail(struct svc *s, const char *fmt, ...)
{
	char why[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (s->call != NULL) {
		docker_cancel(s->sw->api, s->call);
		s->call = NULL;
	}
	evtimer_del(s->timer);
	s->phase = SVC_IDLE;
	svc_answer(s, -1, why);
}

static void
timer_in(struct svc *s, long ms)
{
	struct timeval tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(s->timer, &tv);
}

/*
 * The service is not in the set (any more): the pool drops the replica
 * first, so that a spawn still waiting, answered after, is news to
 * nobody.
 */
static void
svc_gone(struct svc *s, const char *why)
{
	struct swarm *sw = s->sw;

	if (s->gone || s->phase == SVC_LEAVING || s->phase == SVC_REMOVING)
		return;
	s->gone = 1;
	if (s->call != NULL) {
		docker_cancel(sw->api, s->call);
		s->call = NULL;
	}
	evtimer_del(s->timer);
	s->phase = SVC_IDLE;
	if (sw->be->gone != NULL)
		sw->be->gone(s->rep, why, sw->be->members_arg);
	svc_answer(s, -1, why);
}

/* --- spawn: the running task ------------------------------------------ */

/*
 * A running task's address on our network, from one task of the
 * service: 0 and the address in ip, or -1.  A task the swarm is taking
 * down (desired state no longer running) is not one.
 */
static int
task_address(struct swarm *sw, json_t *task, char *ip, size_t iplen)
{
	json_t *atts = json_object_get(task, "NetworksAttachments"), *a, *v;
	const char *st = json_string_value(json_object_get(json_object_get(
	    task, "Status"), "State"));
	const char *want = json_string_value(json_object_get(task,
	    "DesiredState"));
	const char *addr, *name;
	size_t i, j, n;

	if (st == NULL || strcmp(st, "running") != 0 || want == NULL ||
	    strcmp(want, "running") != 0)
		return -1;
	json_array_foreach(atts, i, a) {
		name = json_string_value(json_object_get(json_object_get(
		    json_object_get(a, "Network"), "Spec"), "Name"));
		if (name == NULL || strcmp(name, sw->dc->network) != 0)
			continue;
		json_array_foreach(json_object_get(a, "Addresses"), j, v) {
			if ((addr = json_string_value(v)) == NULL)
				continue;
			n = strcspn(addr, "/");
			if (n == 0 || n >= iplen)
				continue;
			memcpy(ip, addr, n);
			ip[n] = '\0';
			return 0;
		}
	}
	return -1;
}

/*
 * Why the swarm cannot run a task of the service, from one of its
 * tasks: a node refused it (rejected: no such image, say), it failed,
 * or the scheduler finds no node for it; NULL if none of these.
 */
static const char *
task_refused(json_t *task)
{
	json_t *st = json_object_get(task, "Status");
	const char *state = json_string_value(json_object_get(st, "State"));
	const char *err = json_string_value(json_object_get(st, "Err"));

	if (state == NULL || err == NULL || *err == '\0')
		return NULL;
	if (strcmp(state, "rejected") == 0 || strcmp(state, "failed") == 0 ||
	    strcmp(state, "pending") == 0)
		return err;
	return NULL;
}

/* --- changes to a service's spec ------------------------------------- */

/* GET the service, for a change to its spec (inspected gets the answer). */
static struct docker_call *
spec_get(struct svc *s, docker_cb inspected)
{
	char path[128];

	snprintf(path, sizeof(path), "/services/%s", s->id);
	return docker_request(s->sw->api, "GET", path, NULL, CALL_TIMEOUT_MS,
	    inspected, s);
}

/* A copy of an inspect answer's spec, and its version; NULL if none. */
static json_t *
spec_of(json_t *body, json_int_t *version)
{
	*version = json_integer_value(json_object_get(json_object_get(body,
	    "Version"), "Index"));
	return json_deep_copy(json_object_get(body, "Spec"));
}

/* POST the changed spec (stolen) back, at the version it was read at. */
static struct docker_call *
spec_put(struct svc *s, json_t *spec, json_int_t version, docker_cb done)
{
	char path[160];

	snprintf(path, sizeof(path), "/services/%s/update?version=%lld",
	    s->id, (long long)version);
	return docker_request(s->sw->api, "POST", path, spec, CALL_TIMEOUT_MS,
	    done, s);
}

static void
on_forced(int code, json_t *body, const char *msg, void *arg)
{
	struct svc *s = arg;

	(void)body;
	s->force_call = NULL;
	if (code != 200) {
		log_warnx("replica %s: cannot have service %s's task replaced "
		    "(%s)", s->rep->name, s->sname, msg);
		s->forced = 0;		/* asked again at the next listing */
	}
}

static void
on_force_inspected(int code, json_t *body, const char *msg, void *arg)
{
	struct svc *s = arg;
	json_int_t version;
	json_t *spec = spec_of(body, &version), *tt;

	s->force_call = NULL;
	if (code != 200 || !json_is_object(tt = json_object_get(spec,
	    "TaskTemplate"))) {
		json_decref(spec);
		on_forced(code == 200 ? 0 : code, NULL, code == 200 ?
		    "no TaskTemplate in the answer" : msg, s);
		return;
	}
	/* what docker service update --force does */
	json_object_set_new(tt, "ForceUpdate", json_integer(
	    json_integer_value(json_object_get(tt, "ForceUpdate")) + 1));
	s->force_call = spec_put(s, spec, version, on_forced);
}

/* Ask the swarm for a new task in place of a hung one. */
static void
svc_force(struct svc *s)
{
	if (s->force_call != NULL)
		return;
	s->forced = 1;
	log_warnx("replica %s: task %.12s of service %s runs but does not "
	    "answer; asking the swarm to replace it", s->rep->name,
	    s->old_task, s->sname);
	s->force_call = spec_get(s, on_force_inspected);
}

static void
on_tasks(int code, json_t *body, const char *msg, void *arg)
{
	struct svc *s = arg;
	struct swarm *sw = s->sw;
	char ip[64];
	const char *tid, *refused = NULL;
	json_t *t;
	size_t i;

	s->call = NULL;
	if (code == 200 && json_is_array(body)) {
		json_array_foreach(body, i, t) {
			tid = json_string_value(json_object_get(t, "ID"));
			if (refused == NULL)
				refused = task_refused(t);
			if (tid == NULL || strlen(tid) >= sizeof(s->task) ||
			    (strcmp(tid, s->old_task) == 0 && (s->forced ||
			    s->retaken > 0 ||
			    now_ms() - s->begun < OLD_TASK_MS)) ||
			    task_address(sw, t, ip, sizeof(ip)) == -1)
				continue;
			if (replica_set_address(s->rep, ip, sw->dc->port) ==
			    -1) {
				spawn_fail(s, "out of memory");
				return;
			}
			snprintf(s->task, sizeof(s->task), "%s", tid);
			if (strcmp(tid, s->old_task) == 0)
				s->retaken++;
			else
				s->retaken = s->forced = 0;
			s->taken_at = now_ms();
			s->phase = SVC_RUNNING;
			s->old_task[0] = '\0';
			log_debug("replica %s: task %.12s of service %s at %s",
			    s->rep->name, tid, s->sname, ip);
			svc_answer(s, 0, NULL);
			return;
		}
	} else if (code != 200)
		log_debug("replica %s: listing tasks: %s", s->rep->name, msg);
	/* a service made for /add that cannot run fails it now, with the
	 * swarm's reason; a replica of the set waits for the swarm */
	if (refused != NULL && s->created && s->rep->pending) {
		spawn_fail(s, "the swarm cannot run service %s: %s", s->sname,
		    refused);
		return;
	}
	/*
	 * The task it was evicted from runs on, and was taken back once
	 * already without answering: hung.  Without a health check (see
	 * create_body) the swarm does not know: it is asked to replace it.
	 */
	if (s->retaken > 0 && !s->forced && s->old_task[0] != '\0' &&
	    now_ms() - s->begun >= OLD_TASK_MS)
		svc_force(s);
	if (now_ms() >= s->wait_until) {
		spawn_fail(s, "no task of service %s ran within %d s (see "
		    "docker service ps %s)", s->sname, TASK_WAIT_MS / 1000,
		    s->sname);
		return;
	}
	timer_in(s, TASK_POLL_MS);
}

static void
svc_wait_task(struct svc *s)
{
	char f[400], path[512];
	json_t *filters;

	s->phase = SVC_WAITING;
	/* removed meanwhile (/rm, an /add undone, ringlb exiting): its stop
	 * waits for this spawn's answer */
	if (s->rep->state == REPLICA_STOPPING) {
		spawn_fail(s, "removed while it was starting");
		return;
	}
	/* every task, not only those meant to run: a rejected one says why
	 * the service cannot run */
	filters = json_pack("{s:[s]}", "service", s->id);
	if (filters == NULL || docker_filters(filters, f, sizeof(f)) == -1)
		goto nomem;
	snprintf(path, sizeof(path), "/tasks?filters=%s", f);
	if ((s->call = docker_request(s->sw->api, "GET", path, NULL,
	    CALL_TIMEOUT_MS, on_tasks, s)) != NULL)
		return;
nomem:
	/* from the loop: this may run inside the spawn call */
	s->phase = SVC_NOMEM;
	timer_in(s, 0);
}

/* --- spawn: the service ----------------------------------------------- */

static json_t *
create_body(struct svc *s)
{
	const struct docker_config *dc = s->sw->dc;
	char env[RING_NAME_LEN + 16], listen[32];
	json_t *b, *tt, *cons;
	const char *p;
	size_t n;

	snprintf(env, sizeof(env), "SERVER_ID=%s", s->rep->name);
	snprintf(listen, sizeof(listen), "0.0.0.0:%u", (unsigned)dc->port);
	tt = json_pack("{s:{s:s, s:[s], s:[s, s], s:[s], s:{s:s, s:s}, "
	    "s:b, s:{s:[s]}}, s:{s:s, s:I, s:I}, s:[{s:s}]}",
	    "ContainerSpec",
	    "Image", dc->image,
	    "Command", "ringlb-replica",
	    "Args", "--listen", listen,
	    "Env", env,
	    "Labels", LABEL_OWNER, dc->owner, LABEL_REPLICA, s->rep->name,
	    "ReadOnly", 1,
	    /* the image's HEALTHCHECK would hold the task in "starting"
	     * for its first interval; ringlb's heartbeats judge health */
	    "HealthCheck", "Test", "NONE",
	    "RestartPolicy",
	    "Condition", "on-failure",
	    "Delay", (json_int_t)RESTART_DELAY_NS,
	    "MaxAttempts", (json_int_t)0,
	    "Networks", "Target", dc->network);
	if (tt == NULL)
		return NULL;
	if (dc->constraints[0] != '\0') {
		cons = json_array();
		for (p = dc->constraints; *p != '\0'; p += n + (p[n] != '\0')) {
			n = strcspn(p, "\n");
			json_array_append_new(cons, json_stringn(p, n));
		}
		json_object_set_new(tt, "Placement", json_pack("{s:o}",
		    "Constraints", cons));
	}
	if (dc->memory > 0)
		json_object_set_new(tt, "Resources", json_pack("{s:{s:I}}",
		    "Limits", "MemoryBytes", (json_int_t)dc->memory));
	b = json_pack("{s:s, s:{s:s, s:s}, s:o, s:{s:{s:i}}, s:{s:s}}",
	    "Name", s->sname,
	    "Labels", LABEL_OWNER, dc->owner, LABEL_REPLICA, s->rep->name,
	    "TaskTemplate", tt,
	    "Mode", "Replicated", "Replicas", 1,
	    "EndpointSpec", "Mode", "dnsrr");
	return b;
}

/* A 409: is the service of that name ours (another ringlb made it)? */
static void
on_conflict_inspected(int code, json_t *body, const char *msg, void *arg)
{
	struct svc *s = arg;
	json_t *spec = json_object_get(body, "Spec");
	const char *id = json_string_value(json_object_get(body, "ID"));
	const char *rn = json_string_value(json_object_get(json_object_get(
	    spec, "Labels"), LABEL_REPLICA));

	s->call = NULL;
	if (code != 200 || id == NULL || strlen(id) >= sizeof(s->id)) {
		spawn_fail(s, "service %s exists, and cannot be inspected: %s",
		    s->sname, code != 200 ? msg : "no ID in the answer");
		return;
	}
	if (!labels_ours(s->sw, json_object_get(spec, "Labels")) ||
	    rn == NULL || strcmp(rn, s->rep->name) != 0) {
		spawn_fail(s, "a service named %s exists and is not replica "
		    "%s of owner %s: remove it (docker service rm %s) or "
		    "choose another name", s->sname, s->rep->name,
		    s->sw->dc->owner, s->sname);
		return;
	}
	if (json_object_get(json_object_get(spec, "Labels"), LABEL_LEAVING) !=
	    NULL) {
		spawn_fail(s, "replica %s is being removed by another ringlb; "
		    "add it again once it is gone", s->rep->name);
		return;
	}
	if (s->rep->pending && s->rep->generated) {
		/* another ringlb's /add chose the same name first */
		struct replica *rep = s->rep;
		backend_done_cb done = s->done;
		void *darg = s->arg;

		s->done = NULL;
		svc_free(s);
		done(rep, BACKEND_NAME_TAKEN, "another ringlb added a replica "
		    "of that name meanwhile", darg);
		return;
	}
	log_info("replica %s: service %s was just created by another ringlb; "
	    "using it", s->rep->name, s->sname);
	snprintf(s->id, sizeof(s->id), "%s", id);
	s->known_gen = s->sw->gen;
	svc_wait_task(s);
}

static void
on_created(int code, json_t *body, const char *msg, void *arg)
{
	struct svc *s = arg;
	const char *id = json_string_value(json_object_get(body, "ID"));
	char path[SNAME_MAX + 32];

	s->call = NULL;
	if (code == 409) {
		snprintf(path, sizeof(path), "/services/%s", s->sname);
		if ((s->call = docker_request(s->sw->api, "GET", path, NULL,
		    CALL_TIMEOUT_MS, on_conflict_inspected, s)) == NULL)
			spawn_fail(s, "out of memory");
		return;
	}
	if (code != 201 || id == NULL || strlen(id) >= sizeof(s->id)) {
		spawn_fail(s, "the swarm refused service %s: %s", s->sname,
		    code != 201 ? msg : "no ID in the answer");
		return;
	}
	snprintf(s->id, sizeof(s->id), "%s", id);
	s->known_gen = s->sw->gen;
	/* for_add: the /add may have failed meanwhile (pending is off) */
	s->created = s->for_add;
	log_debug("replica %s: service %s created (%.12s)", s->rep->name,
	    s->sname, id);
	svc_wait_task(s);
}

static void
svc_create(struct svc *s)
{
	json_t *body;

	s->phase = SVC_CREATING;
	s->for_add = s->rep->pending;
	if ((body = create_body(s)) == NULL ||
	    (s->call = docker_request(s->sw->api, "POST", "/services/create",
	    body, CALL_TIMEOUT_MS, on_created, s)) == NULL) {
		/* from the loop, not from inside the spawn call */
		s->phase = SVC_NOMEM;
		timer_in(s, 0);
	}
}

/*
 * Start the spawn once the engine has been checked: a service that
 * exists is used (a replica found, restarted, or respawned after its
 * task died); one that does not is created only for /add, or for the
 * --replicas of a ringlb that found the set empty.
 */
static void
svc_begin(struct svc *s)
{
	struct swarm *sw = s->sw;

	const char *id = json_string_value(json_object_get(json_object_get(
	    sw->known, s->rep->name), "id"));

	s->begun = now_ms();
	s->wait_until = s->begun + TASK_WAIT_MS;
	if (s->id[0] == '\0' && id != NULL && strlen(id) < sizeof(s->id) &&
	    !json_is_true(json_object_get(json_object_get(sw->known,
	    s->rep->name), "leaving"))) {
		snprintf(s->id, sizeof(s->id), "%s", id);
		s->known_gen = sw->listed_gen - 1;	/* listed: checkable */
	}
	if (s->id[0] != '\0') {
		svc_wait_task(s);
		return;
	}
	if (s->may_create) {
		svc_create(s);
		return;
	}
	/* from the loop, not from inside the spawn call (backend.h) */
	s->phase = SVC_ORPHAN;
	timer_in(s, 0);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct svc *s = arg;

	(void)fd;
	(void)what;
	if (s->phase == SVC_WAITING)
		svc_wait_task(s);
	else if (s->phase == SVC_LEAVING)
		svc_remove(s);
	else if (s->phase == SVC_NOMEM)
		spawn_fail(s, "out of memory");
	else if (s->phase == SVC_ORPHAN)
		svc_gone(s, "is not in the swarm's replica set (another "
		    "ringlb removed it, or this ringlb started on a set "
		    "without it)");
}

/* --- spawn and stop --------------------------------------------------- */


static void
swarm_spawn(struct backend *be, struct replica *rep, backend_done_cb done,
    void *arg)
{
	struct swarm *sw = be->priv;
	struct svc *s = rep->backend_data;

	if (s == NULL) {
		if ((s = calloc(1, sizeof(*s))) == NULL ||
		    (s->timer = evtimer_new(be->base, on_timer, s)) == NULL) {
			free(s);
			backend_complete_later(be, rep, -1, "out of memory",
			    done, arg);
			return;
		}
		s->sw = sw;
		s->rep = rep;
		derive_sname(sw->dc->prefix, rep->name, s->sname);
		s->next = sw->svcs;
		sw->svcs = s;
		rep->backend_data = s;
	}
	/* a task taken back that then joined the ring was not hung */
	if (rep->up_since >= s->taken_at)
		s->retaken = 0;
	if (s->task[0] != '\0') {
		/* a respawn: the task we routed to died, or stopped
		 * answering; the swarm starts the next one */
		memcpy(s->old_task, s->task, sizeof(s->task));
		s->task[0] = '\0';
	}
	s->done = done;
	s->arg = arg;
	s->may_create |= rep->pending;
	if (!sw->ready) {
		s->phase = SVC_QUEUED;
		return;
	}
	svc_begin(s);
}

static void
on_removed(int code, json_t *body, const char *msg, void *arg)
{
	struct svc *s = arg;
	struct replica *rep = s->rep;
	backend_done_cb done = s->done;
	void *darg = s->arg;
	char why[512];
	int ok = code == 200 || code == 404;

	(void)body;
	s->call = NULL;
	s->done = NULL;
	snprintf(why, sizeof(why), "cannot remove service %s: %s", s->sname,
	    msg);
	if (!ok)
		log_warnx("replica %s: %s", rep->name, why);
	else
		log_debug("replica %s: service %s removed", rep->name,
		    s->sname);
	svc_free(s);
	if (done != NULL)
		done(rep, ok ? 0 : -1, why, darg);
}

static void
svc_remove(struct svc *s)
{
	char path[128];

	s->phase = SVC_REMOVING;
	snprintf(path, sizeof(path), "/services/%s", s->id);
	if ((s->call = docker_request(s->sw->api, "DELETE", path, NULL,
	    CALL_TIMEOUT_MS, on_removed, s)) == NULL)
		on_removed(0, NULL, "out of memory", s);
}

/*
 * The service goes only for an /rm of ours (marked leaving), or when we
 * created it for an /add that never joined; a replica another ringlb
 * removed, or any replica when ringlb exits, stays as the set has it.
 */
static void
swarm_stop(struct backend *be, struct replica *rep, backend_done_cb done,
    void *arg)
{
	struct svc *s = rep->backend_data;
	uint64_t now = now_ms();

	if (s == NULL) {
		backend_complete_later(be, rep, 0, NULL, done, arg);
		return;
	}
	if (s->call != NULL) {
		docker_cancel(s->sw->api, s->call);
		s->call = NULL;
	}
	evtimer_del(s->timer);
	if (s->gone || s->id[0] == '\0' ||
	    !(s->marked || (s->created && rep->up_since == 0))) {
		svc_free(s);
		backend_complete_later(be, rep, 0, NULL, done, arg);
		return;
	}
	s->done = done;
	s->arg = arg;
	s->phase = SVC_LEAVING;
	/* an /rm of a service then still being created, or an /add undone:
	 * other ringlbs may have found it already, so it leaves as for an
	 * /rm, marked first */
	if (!s->mark_sent)
		svc_mark(s);
	if (s->remove_at > now)
		timer_in(s, (long)(s->remove_at - now));
	else
		svc_remove(s);
}

/* --- /rm: the leaving mark -------------------------------------------- */

static void
on_marked(int code, json_t *body, const char *msg, void *arg)
{
	struct svc *s = arg;

	(void)body;
	s->mark_call = NULL;
	/* the others' grace counts from when the mark is on */
	if (code == 200)
		s->remove_at = now_ms() + LEAVE_GRACE_MS;
	if (s->phase == SVC_LEAVING) {
		evtimer_del(s->timer);
		timer_in(s, (long)(s->remove_at > now_ms() ? s->remove_at -
		    now_ms() : 0));
	}
	if (code != 200)
		log_warnx("replica %s: cannot mark service %s leaving (%s); "
		    "other ringlbs see it go when it is removed", s->rep->name,
		    s->sname, msg);
}

static void
on_mark_inspected(int code, json_t *body, const char *msg, void *arg)
{
	struct svc *s = arg;
	json_int_t version;
	json_t *spec = spec_of(body, &version), *labels;
	char when[32];

	s->mark_call = NULL;
	if (code != 200 || spec == NULL) {
		json_decref(spec);
		on_marked(code == 200 ? 0 : code, NULL, code == 200 ?
		    "no Spec in the answer" : msg, s);
		return;
	}
	if (!json_is_object(labels = json_object_get(spec, "Labels"))) {
		labels = json_object();
		json_object_set_new(spec, "Labels", labels);
	}
	/* when: a mark whose ringlb died before removing the service is
	 * finished by another (reconcile) */
	snprintf(when, sizeof(when), "%lld", (long long)time(NULL));
	json_object_set_new(labels, LABEL_LEAVING, json_string(when));
	s->mark_call = spec_put(s, spec, version, on_marked);
}

/* Mark s's service leaving; it is removed LEAVE_GRACE_MS after the mark. */
static void
svc_mark(struct svc *s)
{
	s->mark_sent = 1;
	s->remove_at = now_ms() + LEAVE_GRACE_MS;
	s->mark_call = spec_get(s, on_mark_inspected);
}

/*
 * /rm: the mark goes out at once if the service is known; one still
 * being created is marked when its stop comes (its spawn is cut short).
 */
static void
swarm_leaving(struct backend *be, struct replica *rep)
{
	struct svc *s = rep->backend_data;

	(void)be;
	if (s == NULL || s->gone || s->marked)
		return;
	s->marked = 1;
	if (s->id[0] != '\0')
		svc_mark(s);
}

/* --- the set: listings ------------------------------------------------ */

/*
 * The services of our owner in a listing: {replica name: {id, leaving,
 * since}} (new), or NULL if the answer is not a listing.  since is when
 * the service was marked leaving (seconds since the epoch; 0 if not).
 */
static json_t *
services_of(struct swarm *sw, json_t *body)
{
	json_t *out, *v, *labels;
	const char *id, *name, *mark;
	size_t i;

	if (!json_is_array(body) || (out = json_object()) == NULL)
		return NULL;
	json_array_foreach(body, i, v) {
		labels = json_object_get(json_object_get(v, "Spec"), "Labels");
		id = json_string_value(json_object_get(v, "ID"));
		name = json_string_value(json_object_get(labels,
		    LABEL_REPLICA));
		if (id == NULL || name == NULL || !labels_ours(sw, labels) ||
		    !name_is_valid(name))
			continue;
		mark = json_string_value(json_object_get(labels,
		    LABEL_LEAVING));
		json_object_set_new(out, name, json_pack("{s:s, s:b, s:I}",
		    "id", id, "leaving", mark != NULL, "since", (json_int_t)(
		    mark != NULL ? strtoll(mark, NULL, 10) : 0)));
	}
	return out;
}

static void
on_discarded(int code, json_t *body, const char *msg, void *arg)
{
	char *name = arg;

	(void)body;
	if (code != 200 && code != 404)
		log_warnx("swarm: cannot remove the service of replica %s: %s",
		    name, msg);
	free(name);
}

/*
 * A service marked leaving LEAVING_STALE_S ago or more: the ringlb that
 * marked it died before removing it.  Any ringlb of the owner finishes
 * the /rm.
 */
static void
discard_stale(struct swarm *sw, const char *name, json_t *v)
{
	json_int_t since = json_integer_value(json_object_get(v, "since"));
	const char *id = json_string_value(json_object_get(v, "id"));
	struct docker_call *call;
	char path[160], esc[120], *arg;

	if (since <= 0 || (json_int_t)time(NULL) - since < LEAVING_STALE_S ||
	    id == NULL || docker_escape(id, esc, sizeof(esc)) == -1 ||
	    (arg = strdup(name)) == NULL)
		return;
	log_info("swarm: removing the service of replica %s, marked leaving "
	    "%lld s ago by a ringlb that did not remove it", name,
	    (long long)((json_int_t)time(NULL) - since));
	snprintf(path, sizeof(path), "/services/%s", esc);
	if ((call = docker_request(sw->api, "DELETE", path, NULL,
	    CALL_TIMEOUT_MS, on_discarded, arg)) == NULL)
		free(arg);
	else
		docker_own_arg(call);
}

/* Compare the set with what the pool routes to; tell it what changed. */
static void
reconcile(struct swarm *sw, json_t *set)
{
	struct svc *s, *next;
	const char *name, *id;
	json_t *v;

	for (s = sw->svcs; s != NULL; s = next) {
		next = s->next;
		if (s->gone || s->id[0] == '\0' ||
		    s->known_gen >= sw->listed_gen ||
		    s->phase == SVC_LEAVING || s->phase == SVC_REMOVING ||
		    s->rep->state == REPLICA_STOPPING)
			continue;
		v = json_object_get(set, s->rep->name);
		id = json_string_value(json_object_get(v, "id"));
		if (v == NULL || id == NULL || strcmp(id, s->id) != 0)
			svc_gone(s, "was removed from the swarm (by another "
			    "ringlb, or by hand)");
		else if (json_is_true(json_object_get(v, "leaving")))
			svc_gone(s, "was removed by another ringlb");
	}
	json_object_foreach(set, name, v) {
		if (svc_by_name(sw, name) != NULL)
			continue;
		if (json_is_true(json_object_get(v, "leaving"))) {
			discard_stale(sw, name, v);
			continue;
		}
		if (sw->be->found != NULL)
			sw->be->found(name, sw->be->members_arg);
	}
}

static void
schedule_reconcile(struct swarm *sw)
{
	struct timeval tv = { RECONCILE_MS / 1000,
	    (RECONCILE_MS % 1000) * 1000 };

	evtimer_add(sw->reconcile, &tv);
}

static void
on_services(int code, json_t *body, const char *msg, void *arg)
{
	struct swarm *sw = arg;
	json_t *set;

	sw->listing = NULL;
	schedule_reconcile(sw);
	if (code != 200 || (set = services_of(sw, body)) == NULL) {
		snprintf(sw->engine_error, sizeof(sw->engine_error), "%s",
		    code != 200 ? msg : "the answer is not a JSON array");
		if (!sw->engine_down)
			log_warnx("swarm: cannot list the replica services "
			    "(%s); routing to the last known set",
			    sw->engine_error);
		sw->engine_down = 1;
		return;
	}
	if (sw->engine_down)
		log_info("swarm: the manager answers again");
	sw->engine_down = 0;
	sw->engine_error[0] = '\0';
	sw->listed_at = now_ms();
	json_decref(sw->known);
	sw->known = set;
	if (!sw->ready)
		bootstrap_done(sw);
	else
		reconcile(sw, set);
	if (sw->relist) {
		sw->relist = 0;
		list_services(sw);
	}
}

/* List the services now; once more after it if one is out already. */
static void
list_services(struct swarm *sw)
{
	char f[400], label[160], path[512];

	if (sw->listing != NULL) {
		sw->relist = 1;
		return;
	}
	snprintf(label, sizeof(label), LABEL_OWNER "=%s", sw->dc->owner);
	if (docker_filters(json_pack("{s:[s]}", "label", label), f,
	    sizeof(f)) == -1) {
		schedule_reconcile(sw);		/* out of memory: later */
		return;
	}
	snprintf(path, sizeof(path), "/services?filters=%s", f);
	sw->listed_gen = ++sw->gen;
	if ((sw->listing = docker_request(sw->api, "GET", path, NULL,
	    CALL_TIMEOUT_MS, on_services, sw)) == NULL)
		schedule_reconcile(sw);
}

static void
on_reconcile(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	list_services(arg);
}

/* --- the event stream ------------------------------------------------- */

static void
on_event(json_t *ev, void *arg)
{
	struct swarm *sw = arg;
	json_t *attrs = json_object_get(json_object_get(ev, "Actor"),
	    "Attributes");
	const char *type = json_string_value(json_object_get(ev, "Type"));
	const char *action = json_string_value(json_object_get(ev, "Action"));
	const char *name = json_string_value(json_object_get(attrs,
	    LABEL_REPLICA));
	const char *task = json_string_value(json_object_get(attrs,
	    "com.docker.swarm.task.id"));
	const char *code = json_string_value(json_object_get(attrs,
	    "exitCode"));
	struct svc *s;
	char why[128];

	if (ev == NULL) {		/* the stream is open */
		if (sw->stream_down)
			log_info("swarm: the event stream is open again");
		sw->stream_down = 0;
		list_services(sw);	/* what changed while it was down */
		return;
	}
	if (type == NULL || action == NULL)
		return;
	if (strcmp(type, "service") == 0) {
		list_services(sw);
		return;
	}
	if (strcmp(type, "container") != 0 || strcmp(action, "die") != 0 ||
	    name == NULL || task == NULL || !labels_ours(sw, attrs) ||
	    (s = svc_by_name(sw, name)) == NULL || s->phase != SVC_RUNNING ||
	    strcmp(task, s->task) != 0)
		return;
	snprintf(why, sizeof(why), "its task's container died (exit code %s)",
	    code ? code : "unknown");
	s->phase = SVC_IDLE;
	if (sw->be->lost != NULL)
		sw->be->lost(s->rep, why, sw->be->lost_arg);
}

static void
schedule_resubscribe(struct swarm *sw)
{
	static const struct timeval tv = { RESUBSCRIBE_MS / 1000,
	    (RESUBSCRIBE_MS % 1000) * 1000 };

	evtimer_add(sw->resubscribe, &tv);
}

static void
on_stream_end(int code, json_t *body, const char *msg, void *arg)
{
	struct swarm *sw = arg;

	(void)code;
	(void)body;
	sw->events = NULL;
	if (!sw->stream_down)
		log_warnx("swarm: %s; opening it again", msg);
	sw->stream_down = 1;
	schedule_resubscribe(sw);
}

static void
subscribe(struct swarm *sw)
{
	json_t *f = json_pack("{s:[s, s], s:[s, s, s, s]}",
	    "type", "service", "container",
	    "event", "create", "update", "remove", "die");

	if ((sw->events = docker_events(sw->api, f, on_event, on_stream_end,
	    sw)) == NULL)
		schedule_resubscribe(sw);
}

static void
on_resubscribe(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	subscribe(arg);
}

/* --- startup: the engine check ---------------------------------------- */

static void
bootstrap_fatal(struct swarm *sw, const char *msg)
{
	(void)sw;
	fatalx("swarm backend: %s", msg);
}

/* The next step of the engine check. */
static void
bootstrap_get(struct swarm *sw, const char *path, docker_cb done)
{
	if (docker_request(sw->api, "GET", path, NULL, CALL_TIMEOUT_MS, done,
	    sw) == NULL)
		bootstrap_fatal(sw, "out of memory");
}

/* The set is known: begin the spawns that waited, follow the events. */
static void
bootstrap_done(struct swarm *sw)
{
	struct svc *s, *next;
	size_t n = 0;
	const char *name;
	json_t *v;

	json_object_foreach(sw->known, name, v)
		n += !json_is_true(json_object_get(v, "leaving"));
	sw->ready = 1;
	log_info("swarm: manager at %s, API %s; replica services of owner %s "
	    "from image %s on network %s: %zu found%s", docker_where(sw->api),
	    docker_version(sw->api), sw->dc->owner, sw->dc->image,
	    sw->dc->network, n, n == 0 ? ", starting the first ones" :
	    ", routing to those (creating none)");
	subscribe(sw);
	for (s = sw->svcs; s != NULL; s = next) {
		next = s->next;
		if (s->phase != SVC_QUEUED)
			continue;
		s->may_create |= n == 0;
		svc_begin(s);
	}
	reconcile(sw, sw->known);
	schedule_reconcile(sw);
}

static void
on_image(int code, json_t *body, const char *msg, void *arg)
{
	struct swarm *sw = arg;

	(void)body;
	if (code != 200)
		log_warnx("swarm: image %s is not on this node (%s); every node "
		    "that runs replicas needs it (make build there, or a "
		    "registry the nodes pull from)", sw->dc->image, msg);
	list_services(sw);
}

static void
on_network(int code, json_t *body, const char *msg, void *arg)
{
	struct swarm *sw = arg;
	const char *driver = json_string_value(json_object_get(body,
	    "Driver"));
	char why[1024], path[400];

	if (code == 404 || (code == 200 && (driver == NULL ||
	    strcmp(driver, "overlay") != 0))) {
		snprintf(why, sizeof(why), "%s %s: create it with docker "
		    "network create --driver overlay --attachable %s (make "
		    "swarm-up creates it)", code == 404 ? "there is no network" :
		    "it is not an overlay network:", sw->dc->network,
		    sw->dc->network);
		bootstrap_fatal(sw, why);
		return;
	}
	if (code != 200) {
		bootstrap_fatal(sw, msg);
		return;
	}
	/* [A-Za-z0-9_.-:/@] (set_image), as the engine's routes take it */
	snprintf(path, sizeof(path), "/images/%s/json", sw->dc->image);
	bootstrap_get(sw, path, on_image);
}

static void
on_info(int code, json_t *body, const char *msg, void *arg)
{
	struct swarm *sw = arg;
	json_t *swm = json_object_get(body, "Swarm");
	const char *st = json_string_value(json_object_get(swm,
	    "LocalNodeState"));
	char why[1024], path[300];

	if (code != 200) {
		bootstrap_fatal(sw, msg);
		return;
	}
	if (st == NULL || strcmp(st, "active") != 0) {
		snprintf(why, sizeof(why), "the engine at %s is not in a swarm "
		    "(its state is %s): make one with docker swarm init, or "
		    "point DOCKER_HOST at a manager", docker_where(sw->api),
		    st ? st : "unknown");
		bootstrap_fatal(sw, why);
		return;
	}
	if (!json_is_true(json_object_get(swm, "ControlAvailable"))) {
		snprintf(why, sizeof(why), "the engine at %s is a swarm worker, "
		    "not a manager: ringlb needs a manager's API (run it on a "
		    "manager node: the stack's placement does)",
		    docker_where(sw->api));
		bootstrap_fatal(sw, why);
		return;
	}
	snprintf(path, sizeof(path), "/networks/%s", sw->dc->network);
	bootstrap_get(sw, path, on_network);
}

static void
on_negotiated(int code, json_t *body, const char *msg, void *arg)
{
	struct swarm *sw = arg;

	(void)body;
	if (code != 200) {
		bootstrap_fatal(sw, msg);
		return;
	}
	bootstrap_get(sw, "/info", on_info);
}

/* --- setup ------------------------------------------------------------ */

static int
swarm_init(struct backend *be, char *err, size_t errlen)
{
	const struct config *cfg = be->cfg;
	struct swarm *sw;

	if (cfg->admin_token[0] == '\0' && cfg->nadmin_allow == 0 &&
	    !peer_is_allowed(cfg->listen_host, NULL, 0)) {
		snprintf(err, errlen, "the swarm backend needs an admin token: "
		    "a port the swarm publishes is open to every address, so "
		    "/add and /rm must ask for one; set RINGLB_ADMIN_TOKEN, or "
		    "RINGLB_ADMIN_TOKEN_FILE (a Docker secret, as docker/"
		    "stack.yml gives it), or listen on 127.0.0.1");
		return -1;
	}
	if ((sw = calloc(1, sizeof(*sw))) == NULL ||
	    (sw->known = json_object()) == NULL ||
	    (sw->resubscribe = evtimer_new(be->base, on_resubscribe,
	    sw)) == NULL ||
	    (sw->reconcile = evtimer_new(be->base, on_reconcile, sw)) ==
	    NULL) {
		if (sw != NULL) {
			json_decref(sw->known);
			if (sw->resubscribe != NULL)
				event_free(sw->resubscribe);
		}
		free(sw);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	sw->be = be;
	sw->dc = &cfg->docker;
	if ((sw->api = docker_new(be->base, getenv("DOCKER_HOST"), err,
	    errlen)) == NULL || docker_negotiate(sw->api, on_negotiated,
	    sw) == -1) {
		if (sw->api != NULL)
			snprintf(err, errlen, "out of memory");
		docker_free(sw->api);
		event_free(sw->resubscribe);
		event_free(sw->reconcile);
		json_decref(sw->known);
		free(sw);
		return -1;
	}
	if (cfg->admin_token[0] != '\0')
		log_info("swarm: /add and /rm need the admin token from any "
		    "address: a port the swarm publishes is not loopback-only");
	be->priv = sw;
	return 0;
}

/*
 * /add of a name whose service is still going (an /rm here or by another
 * ringlb): it would be taken over by the new replica, then removed
 * under it.  Refused until it is gone.
 */
static int
swarm_check_add(struct backend *be, char (*names)[RING_NAME_LEN],
    int ngiven, int n, char *err, size_t errlen)
{
	struct swarm *sw = be->priv;
	json_t *v;
	int i;

	(void)n;
	for (i = 0; i < ngiven; i++) {
		v = json_object_get(sw->known, names[i]);
		if (svc_by_name(sw, names[i]) == NULL &&
		    !json_is_true(json_object_get(v, "leaving")))
			continue;
		snprintf(err, errlen, "replica '%s' is being removed: add it "
		    "again once it is gone (a second or so)", names[i]);
		return -1;
	}
	return 0;
}

static int
swarm_in_use(struct backend *be, const char *name)
{
	struct swarm *sw = be->priv;

	return json_object_get(sw->known, name) != NULL;
}

/*
 * /status: does the manager answer, is the event stream open, and how
 * old is the replica set ringlb routes to.
 */
static json_t *
swarm_status(struct backend *be)
{
	struct swarm *sw = be->priv;
	json_t *o;

	o = json_pack("{s:s, s:s, s:s, s:s, s:i}",
	    "manager", !sw->ready && sw->listed_at == 0 ? "checking" :
	    sw->engine_down ? "unreachable" : "reachable",
	    "event_stream", sw->events != NULL && !sw->stream_down ? "open" :
	    "down",
	    "owner", sw->dc->owner,
	    "network", sw->dc->network,
	    "services", (int)json_object_size(sw->known));
	if (o == NULL)
		return NULL;
	if (sw->listed_at != 0)
		json_object_set_new(o, "listed_ms_ago", json_integer(
		    (json_int_t)(now_ms() - sw->listed_at)));
	if (sw->engine_down) {
		json_object_set_new(o, "error", json_string(sw->engine_error));
		json_object_set_new(o, "routing", json_string("the last known "
		    "replica set"));
	}
	return o;
}

static int
swarm_capacity(struct backend *be)
{
	return be->cfg->docker.max;
}

static void
swarm_free_backend(struct backend *be)
{
	struct swarm *sw = be->priv;

	if (sw == NULL)
		return;
	while (sw->svcs != NULL)
		svc_free(sw->svcs);
	docker_free(sw->api);
	event_free(sw->resubscribe);
	event_free(sw->reconcile);
	json_decref(sw->known);
	free(sw);
}

const struct backend_ops backend_swarm_ops = {
	.name = "swarm",
	.replaces = 1,
	/* the leaving grace, then a removal */
	.stop_slack_ms = LEAVE_GRACE_MS + CALL_TIMEOUT_MS,
	.init = swarm_init,
	.initial = backend_initial_names,
	.name_clash = swarm_name_clash,
	.capacity = swarm_capacity,
	.capacity_option = "--docker-max",
	.spawn = swarm_spawn,
	.leaving = swarm_leaving,
	.in_use = swarm_in_use,
	.check_add = swarm_check_add,
	.status = swarm_status,
	.stop = swarm_stop,
	.free = swarm_free_backend,
};

/* --- settings --------------------------------------------------------- */

static int
set_constraint(struct config *cfg, const char *v, char *err, size_t errlen)
{
	struct docker_config *dc = &cfg->docker;
	size_t have = strlen(dc->constraints), n;
	const char *p = v;

	while (*p != '\0') {
		n = strcspn(p, ",");
		while (n > 0 && *p == ' ') {
			p++;
			n--;
		}
		if (n > 0) {
			if (memchr(p, '\n', n) != NULL || have + n + 2 >
			    sizeof(dc->constraints)) {
				snprintf(err, errlen, "placement constraints "
				    "take at most %zu bytes, one a line",
				    sizeof(dc->constraints) - 1);
				return -1;
			}
			if (have > 0)
				dc->constraints[have++] = '\n';
			memcpy(dc->constraints + have, p, n);
			have += n;
			dc->constraints[have] = '\0';
		}
		p += n + (p[n] == ',');
	}
	return 0;
}

static int
set_memory(struct config *cfg, const char *v, char *err, size_t errlen)
{
	uint64_t n;

	if (parse_size(v, &n) == -1 || n < (4ULL << 20)) {
		snprintf(err, errlen, "swarm memory '%s' must be a size of at "
		    "least 4m (sizes take k, m, g)", v);
		return -1;
	}
	cfg->docker.memory = n;
	return 0;
}

static const struct option_def swarm_options[] = {
	{ "swarm-constraint", "RINGLB_SWARM_CONSTRAINTS", "EXPR",
	  "a placement constraint for replica services, e.g. "
	  "node.labels.zone==a; repeatable, the variable a comma-separated "
	  "list (the swarm backend; it shares the --docker-* settings)",
	  set_constraint },
	{ "swarm-memory", "RINGLB_SWARM_MEMORY", "SIZE",
	  "memory limit of each replica service's task (default none)",
	  set_memory },
};

const struct option_table backend_swarm_options = {
	"the swarm backend", swarm_options,
	sizeof(swarm_options) / sizeof(swarm_options[0]), NULL
};
