/*
 * backend_process.c - replicas as local ringlb-replica child processes.
 *
 * Each replica is a child started with posix_spawn() and handed, as its
 * descriptor 3, a socket listening on a loopback port the kernel picked
 * here; no other descriptor of ringlb leaks into it (closefrom 4), and it
 * is told ringlb's pid so it exits when ringlb dies, even by SIGKILL
 * (PR_SET_PDEATHSIG, see src/replica/main.c).  Children are reaped from a
 * SIGCHLD event with a waitpid(WNOHANG) loop, never blocking the loop.
 *
 * Stopping sends SIGTERM, then SIGKILL after --stop-grace; the stop is done
 * when the child has been reaped.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "backend.h"
#include "config.h"
#include "log.h"
#include "replica.h"
#include "util.h"

#define PROCESS_MAX_REPLICAS	64	/* --max-replicas default */
#define REPLICA_LISTEN_FD	3	/* the child's listening socket */
#define REPLICA_BACKLOG		511	/* as nginx's default */

extern char **environ;

struct child {
	pid_t			 pid;
	struct replica		*rep;		/* NULL once disowned */
	struct backend		*be;
	int			 stopping;
	backend_done_cb		 stop_done;
	void			*stop_arg;
	struct event		*kill_timer;
	struct child		*next;
};

struct proc {
	char			 bin[PATH_MAX];
	char			**env;		/* ours, without RINGLB_* */
	struct event		*sigchld;
	struct child		*children;
};

static void
child_free(struct proc *pr, struct child *c)
{
	struct child **pp;

	for (pp = &pr->children; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	if (c->kill_timer != NULL)
		event_free(c->kill_timer);
	if (c->rep != NULL && c->rep->backend_data == c)
		c->rep->backend_data = NULL;
	free(c);
}

static void
describe_status(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "its process exited with status %d",
		    WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "its process was killed by signal %d (%s)",
		    WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "its process stopped with status %d",
		    status);
}

static void
on_sigchld(evutil_socket_t sig, short what, void *arg)
{
	struct backend *be = arg;
	struct proc *pr = be->priv;
	struct child *c;
	char why[128];
	int status;
	pid_t pid;

	(void)sig;
	(void)what;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (c = pr->children; c != NULL && c->pid != pid; c = c->next)
			;
		if (c == NULL)
			continue;
		describe_status(status, why, sizeof(why));
		if (c->stopping) {
			struct replica *rep = c->rep;
			backend_done_cb done = c->stop_done;
			void *darg = c->stop_arg;

			log_debug("replica %s (pid %ld) %s", rep ? rep->name :
			    "?", (long)pid, why);
			child_free(pr, c);
			if (done != NULL)
				done(rep, 0, NULL, darg);
		} else if (c->rep != NULL) {
			struct replica *rep = c->rep;

			child_free(pr, c);
			if (be->lost != NULL)
				be->lost(rep, why, be->lost_arg);
		} else
			child_free(pr, c);
	}
}

static void
on_kill_timer(evutil_socket_t fd, short what, void *arg)
{
	struct child *c = arg;

	(void)fd;
	(void)what;
	log_warnx("replica %s (pid %ld) ignored SIGTERM for %ld ms; sending "
	    "SIGKILL", c->rep ? c->rep->name : "?", (long)c->pid,
	    c->be->cfg->stop_grace_ms);
	kill(c->pid, SIGKILL);
}

/* The replica program: --replica-bin, else ringlb-replica beside us. */
static int
find_replica_bin(struct proc *pr, const struct config *cfg, char *err,
    size_t errlen)
{
	char self[PATH_MAX - 32];
	ssize_t n;
	char *slash;

	if (cfg->replica_bin[0] != '\0')
		snprintf(pr->bin, sizeof(pr->bin), "%s", cfg->replica_bin);
	else {
		if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) ==
		    -1) {
			snprintf(err, errlen, "cannot find my own path (%s); "
			    "give --replica-bin PATH", strerror(errno));
			return -1;
		}
		self[n] = '\0';
		if ((slash = strrchr(self, '/')) != NULL)
			slash[1] = '\0';
		snprintf(pr->bin, sizeof(pr->bin), "%sringlb-replica", self);
	}
	if (access(pr->bin, X_OK) == -1) {
		snprintf(err, errlen, "the replica program %s cannot be run "
		    "(%s); build it with make, or give --replica-bin PATH",
		    pr->bin, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * The replicas' environment: ours without the RINGLB_* variables, which
 * are ringlb's settings and may hold secrets (RINGLB_ADMIN_TOKEN) that a
 * replica has no business seeing.  The strings are environ's own.
 */
static char **
replica_env(void)
{
	char **env;
	size_t i, n = 0;

	for (i = 0; environ[i] != NULL; i++)
		;
	if ((env = calloc(i + 1, sizeof(*env))) == NULL)
		return NULL;
	for (i = 0; environ[i] != NULL; i++)
		if (strncmp(environ[i], "RINGLB_", 7) != 0)
			env[n++] = environ[i];
	return env;
}

static int
process_init(struct backend *be, char *err, size_t errlen)
{
	struct proc *pr;

	if ((pr = calloc(1, sizeof(*pr))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (find_replica_bin(pr, be->cfg, err, errlen) == -1) {
		free(pr);
		return -1;
	}
	if ((pr->env = replica_env()) == NULL) {
		snprintf(err, errlen, "out of memory");
		free(pr);
		return -1;
	}
	if ((pr->sigchld = evsignal_new(be->base, SIGCHLD, on_sigchld, be)) ==
	    NULL || evsignal_add(pr->sigchld, NULL) == -1) {
		snprintf(err, errlen, "cannot watch SIGCHLD");
		if (pr->sigchld != NULL)
			event_free(pr->sigchld);
		free(pr->env);
		free(pr);
		return -1;
	}
	be->priv = pr;
	return 0;
}

/* Forget rep's current child, killing it if it still runs. */
static void
disown(struct replica *rep)
{
	struct child *c = rep->backend_data;

	if (c == NULL)
		return;
	kill(c->pid, SIGKILL);
	c->rep = NULL;
	rep->backend_data = NULL;
}

static void
process_spawn(struct backend *be, struct replica *rep, backend_done_cb done,
    void *arg)
{
	struct proc *pr = be->priv;
	posix_spawn_file_actions_t fa;
	char fdarg[16], parent[32], why[512];
	char *argv[9];
	struct child *c;
	uint16_t port;
	pid_t pid;
	int rc, fd;

	disown(rep);
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		backend_complete_later(be, rep, -1, "out of memory", done,
		    arg);
		return;
	}
	/*
	 * The child is handed its listening socket, bound and listening
	 * here: a port chosen here for the child to bind later could be
	 * taken in between (by any outgoing connection's ephemeral port,
	 * heartbeats to hundreds of replicas among them).
	 */
	if ((fd = loopback_socket(&port, REPLICA_BACKLOG)) == -1) {
		free(c);
		snprintf(why, sizeof(why), "cannot listen on a loopback "
		    "port: %s", strerror(errno));
		backend_complete_later(be, rep, -1, why, done, arg);
		return;
	}
	snprintf(fdarg, sizeof(fdarg), "%d", REPLICA_LISTEN_FD);
	snprintf(parent, sizeof(parent), "%ld", (long)getpid());
	argv[0] = pr->bin;
	argv[1] = "--id";
	argv[2] = rep->name;
	argv[3] = "--listen-fd";
	argv[4] = fdarg;
	argv[5] = "--parent";
	argv[6] = parent;
	argv[7] = NULL;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null",
	    O_RDONLY, 0);
	/* dup2 clears close-on-exec, even when fd is already that number */
	posix_spawn_file_actions_adddup2(&fa, fd, REPLICA_LISTEN_FD);
	posix_spawn_file_actions_addclosefrom_np(&fa, REPLICA_LISTEN_FD + 1);
	rc = posix_spawn(&pid, pr->bin, &fa, NULL, argv, pr->env);
	posix_spawn_file_actions_destroy(&fa);
	close(fd);
	if (rc != 0) {
		free(c);
		snprintf(why, sizeof(why), "cannot start %.300s: %s", pr->bin,
		    strerror(rc));
		backend_complete_later(be, rep, -1, why, done, arg);
		return;
	}
	c->pid = pid;
	c->rep = rep;
	c->be = be;
	c->next = pr->children;
	pr->children = c;
	rep->backend_data = c;
	replica_set_address(rep, "127.0.0.1", port);
	log_debug("replica %s started as pid %ld on 127.0.0.1:%u", rep->name,
	    (long)pid, (unsigned)port);
	backend_complete_later(be, rep, 0, NULL, done, arg);
}

static void
process_stop(struct backend *be, struct replica *rep, backend_done_cb done,
    void *arg)
{
	struct child *c = rep->backend_data;
	struct timeval tv;

	if (c == NULL || c->stopping) {
		/* no process (it died, or never started): nothing to stop */
		backend_complete_later(be, rep, 0, NULL, done, arg);
		return;
	}
	c->stopping = 1;
	c->stop_done = done;
	c->stop_arg = arg;
	kill(c->pid, SIGTERM);
	tv.tv_sec = be->cfg->stop_grace_ms / 1000;
	tv.tv_usec = (be->cfg->stop_grace_ms % 1000) * 1000;
	if ((c->kill_timer = evtimer_new(be->base, on_kill_timer, c)) == NULL)
		kill(c->pid, SIGKILL);
	else
		evtimer_add(c->kill_timer, &tv);
}

/* Last resort at exit: no child outlives ringlb. */
static void
process_free(struct backend *be)
{
	struct proc *pr = be->priv;
	struct child *c;

	if (pr == NULL)
		return;
	for (c = pr->children; c != NULL; c = c->next)
		kill(c->pid, SIGKILL);
	while ((c = pr->children) != NULL) {
		waitpid(c->pid, NULL, 0);
		child_free(pr, c);
	}
	event_free(pr->sigchld);
	free(pr->env);
	free(pr);
}

static int
process_capacity(struct backend *be)
{
	return be->cfg->max_replicas;
}

const struct backend_ops backend_process_ops = {
	.name = "process",
	.replaces = 1,
	.stop_slack_ms = 2000,
	.init = process_init,
	.initial = backend_initial_names,
	.capacity = process_capacity,
	.capacity_option = "--max-replicas",
	.spawn = process_spawn,
	.stop = process_stop,
	.free = process_free,
};

/* --- settings --------------------------------------------------------- */

static int
set_replica_bin(struct config *cfg, const char *v, char *err, size_t errlen)
{
	return config_set_path(cfg->replica_bin, sizeof(cfg->replica_bin),
	    "replica binary", v, err, errlen);
}

/*
 * Each replica is a process of this machine: a runaway /add (or a web
 * page driving one) must not fork hundreds of them.
 */
static int
set_max_replicas(struct config *cfg, const char *v, char *err, size_t errlen)
{
	long n;

	if (parse_long(v, 1, CONFIG_REPLICAS_MAX, &n) == -1) {
		snprintf(err, errlen, "max replicas '%s' must be a number from "
		    "1 to %d", v, CONFIG_REPLICAS_MAX);
		return -1;
	}
	cfg->max_replicas = (int)n;
	return 0;
}

static void
process_defaults(struct config *cfg)
{
	cfg->max_replicas = PROCESS_MAX_REPLICAS;
}

static const struct option_def process_options[] = {
	{ "replica-bin", "RINGLB_REPLICA_BIN", "PATH",
	  "the replica program the process backend starts (default: "
	  "ringlb-replica beside ringlb)", set_replica_bin },
	{ "max-replicas", "RINGLB_MAX_REPLICAS", "N",
	  "most replica processes to run; an /add past it is a 400 (default "
	  "64)", set_max_replicas },
};

const struct option_table backend_process_options = {
	"the process backend", process_options,
	sizeof(process_options) / sizeof(process_options[0]), process_defaults
};
