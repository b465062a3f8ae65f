#!/usr/bin/env python3
"""A fake Docker Engine API on a unix socket, for testing ringlb's docker
backend without Docker.

It speaks HTTP/1.1 (threaded, keep-alive, chunked /events) and answers the
endpoints ringlb's backend uses the way a real engine does: the same paths
(bare or prefixed /vX.YY/), status codes, JSON shapes and error messages.
Its "containers" are real ringlb-replica processes on 127.0.0.1 ports, so
a container that is started answers GET /home on its published port.

    python3 tests/docker/fakedocker.py --socket DIR/docker.sock
    DOCKER_HOST=unix://DIR/docker.sock ringlb --backend docker ...

or, from Python:

    fake = FakeDocker(path).start()
    ...
    fake.stop()     # kills every replica it started, removes the socket

Under /_fake/ on the same socket (JSON, never versioned, not logged) the
tests inject faults and look inside:

    POST   /_fake/fault        {"op", "status", "message", "delay_ms",
                                "count", "close"}
    DELETE /_fake/fault        clear every fault
    POST   /_fake/events/cut   end every open /events stream cleanly
    POST   /_fake/kill/NAME    SIGKILL a container's process behind the
                               engine's back (a crash): a die event, 137
    GET    /_fake/state        containers, images, networks, faults, streams
    POST   /_fake/images       {"add": NAME} or {"remove": NAME}
    POST   /_fake/networks     {"add": NAME} or {"remove": NAME}
    GET    /_fake/log          every API request: method, path, time, status

With swarm=True (--swarm) it is also a one-node swarm's manager, for the
swarm backend: /info says so (Swarm.LocalNodeState "active",
ControlAvailable true; swarm="worker" is a worker, the default False no
swarm at all, and every swarm endpoint then answers the engine's 503),
and these answer as Engine API 1.41 does (the messages are moby's and
swarmkit's own):

    POST   /services/create       201 {"ID", "Warnings"}; 409 "rpc error: code
                                   = AlreadyExists desc = name conflicts with an
                                   existing object: service NAME already exists";
                                   400 for a name that is no DNS label, no image;
                                   404 "network N not found" unless N is overlay
    GET    /services              filters label, name (prefix), id, mode
    GET    /services/{id|name}    ID, Version.Index, CreatedAt, Spec, Endpoint
    POST   /services/{id}/update?version=N   the whole spec; another N than
                                   the service's: 500 "rpc error: code = Unknown
                                   desc = update out of sequence"; a changed
                                   TaskTemplate replaces the task, labels do not
    DELETE /services/{id}         200; 404 "service X not found"; its task is
                                   stopped (die event) and its container removed
    GET    /tasks, /tasks/{id}    filters service (id or name), desired-state,
                                   id, name
    GET    /events                also service create/update/remove events
                                   (Actor.ID the service's, Attributes.name)

Each service runs one task (Replicas 1; Mode or several networks beyond
that are refused, saying the fake does not model them).  A task is a real
ringlb-replica on a loopback address of its own, 127.0.0.2 upward, each
address given once in the fake's life, on the port of the spec's Args
--listen 0.0.0.0:PORT (5000 without one); GET /tasks shows it in
NetworksAttachments[].Addresses as "127.0.0.N/8" on the service's overlay
network, with Status.State, Status.Err, Status.ContainerStatus and
DesiredState.  The task's container (SERVICE.1.TASKID, labelled with the
ContainerSpec's Labels and com.docker.swarm.service.id, .task.id, ...)
is also a container of /containers/json and has its events.  A task
goes assigned -> running after task_start_delay s; one whose image the
node lacks is "rejected" (Err "No such image: IMAGE").  When its process
dies (or /_fake/kill/SERVICE or /_fake/kill/CONTAINER) the task is
"failed" (Err "task: non-zero exit (137)") or "complete", DesiredState
"shutdown", the die event carries its labels, and the RestartPolicy
(Condition any / on-failure / none, Delay in ns (5 s if not given),
MaxAttempts) starts the next task at a new address.  Five ended tasks a
service are kept.

Controls of swarm mode:

    POST   /_fake/quorum       {"lost": true}: the manager has no leader;
                               every swarm endpoint answers 500 "rpc error:
                               code = Unknown desc = The swarm does not have a
                               leader. ..." and no task is started (those
                               running go on); {"lost": false} heals it
    POST   /_fake/reschedule/SERVICE   the task moves to another node: it is
                               shut down and a new one starts at a new address
                               at once; {"die_event": false}: the old node is
                               not this one, so no die event is seen
    POST   /_fake/networks     {"add": NAME, "driver": "overlay"} too
    fault ops                  info, service_create, service_list,
                               service_inspect, service_update,
                               service_delete, tasks, task_inspect

What it does not do: restart policies of plain containers are recorded,
not acted on (a container that dies stays exited); only 5000/tcp, the
port ringlb-replica serves in the image, is ever published; every replica
listens on 127.0.0.1 whatever HostIp was asked; no network or image
events.  Swarm mode has one node (no placement, constraints or resources
are acted on; "no suitable node" is a fault to inject), no rolling-update
settings, no global services, no nodes, secrets or configs endpoints, no
VIPs or DNS, and no registry (so every create warns that the image's
digest was not pinned, as a real engine does for a local-only image).
"""
import argparse
import collections
import concurrent.futures
import copy
import hashlib
import http.server
import itertools
import json
import os
import queue
import re
import secrets
import select
import signal
import socket
import socketserver
import stat
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

DEFAULT_API = "1.41"
DEFAULT_MIN_API = "1.12"
ENGINE_VERSION = "0.0.0-fakedocker"
DEFAULT_IMAGES = ("ringlb:latest",)
# bridge, host and none exist on every engine; net1 is docker-compose's
DEFAULT_NETWORKS = ("bridge", "host", "none", "net1")

CONTAINER_PORT = "5000/tcp"   # what ringlb-replica serves on in the image
EVENTS_KEPT = 256             # the engine keeps as many for ?since=
KILL_WAIT = 10.0              # seconds for a SIGKILLed process to be reaped
MAX_STOP_TIMEOUT = 300        # ?t= is capped here (the engine allows -1: forever)
MAX_BODY = 8 << 20
ZERO_TIME = "0001-01-01T00:00:00Z"
BUILT_NS = 1700000000 * 10**9   # when the fake's engine and images were "built"

# container names, as the engine validates them
NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
VERSION_RE = re.compile(r"^/v(\d+\.\d+)(/.*)$")

EVENT_FILTERS = {"config", "container", "daemon", "event", "image", "label",
                 "network", "node", "plugin", "scope", "secret", "service",
                 "type", "volume"}
LIST_FILTERS = {"ancestor", "before", "expose", "exited", "health", "id",
                "isolation", "is-task", "label", "name", "network", "publish",
                "since", "status", "volume"}
CONTAINER_STATES = {"created", "restarting", "running", "removing", "paused",
                    "exited", "dead"}

# the operations a fault can be injected into
FAULT_OPS = {"ping", "version", "info", "image", "network", "create", "start",
             "inspect", "stop", "kill", "delete", "list", "events",
             "service_create", "service_list", "service_inspect", "service_update",
             "service_delete", "tasks", "task_inspect"}

# --- swarm mode: the engine's words (moby daemon/cluster, swarmkit) ---
NOT_IN_SWARM = ('This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" '
                'to connect this node to swarm and try again.')
NOT_A_MANAGER = ("This node is not a swarm manager. Worker nodes can't be used to view or modify "
                 "cluster state. Please run this command on a manager node or promote the current "
                 "node to a manager.")
NO_LEADER = ("rpc error: code = Unknown desc = The swarm does not have a leader. It's possible "
             "that too few managers are online. Make sure more than half of the managers are "
             "online.")
SWARM_STATES = {False: "inactive", True: "manager", "inactive": "inactive",
                "manager": "manager", "worker": "worker"}
SWARM_ID_CHARS = "0123456789abcdefghijklmnopqrstuvwxyz"
NODE_ID = "fakenode0000000000000000a"
CLUSTER_ID = "fakecluster00000000000000"
# swarmkit's isValidDNSName, at most 63 bytes
SERVICE_NAME_RE = re.compile(r"^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$")
SERVICE_FILTERS = {"id", "label", "mode", "name"}
TASK_FILTERS = {"desired-state", "id", "label", "name", "node", "service", "up-to-date"}
DEFAULT_RESTART_DELAY_NS = 5 * 10**9     # a RestartPolicy without Delay
TASK_HISTORY = 5                          # ended tasks kept per service

SIGNALS = {s.name[3:]: s for s in signal.Signals if s.name.startswith("SIG")
           and not s.name.startswith("SIG_")}


class ApiError(Exception):
    """An answer other than success: its status and {"message": ...}."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def default_replica():
    build = os.environ.get("RINGLB_BUILD", os.path.join(ROOT, "build"))
    return os.path.join(build, "ringlb-replica")


def rfc3339(ns):
    """Time as the engine writes it (RFC 3339, nanoseconds); 0 is Go's zero."""
    if not ns:
        return ZERO_TIME
    secs, frac = divmod(ns, 10**9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + ".%09dZ" % frac


def api_tuple(version):
    return tuple(int(x) for x in version.split("."))


def exit_code(returncode):
    """A process's exit as the engine reports it: 128 + signal if killed."""
    return 128 - returncode if returncode < 0 else returncode


def hex_id(seed):
    return hashlib.sha256(seed.encode()).hexdigest()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def bool_param(value):
    """A query flag as the engine reads one (force=1, force=true, ...)."""
    return value is not None and value.lower() not in ("", "0", "no", "false", "none")


def normalize_image(ref):
    """'ringlb' -> 'ringlb:latest', 'docker.io/library/x:1' -> 'x:1'."""
    if not isinstance(ref, str) or not ref or ref != ref.strip():
        raise ApiError(400, "invalid reference format")
    name = ref.split("@")[0]
    last = name.rsplit("/", 1)[-1]
    repo = name[:len(name) - len(last)] + last.split(":")[0]
    if repo != repo.lower():
        raise ApiError(400, "invalid reference format: repository name (%s) must be lowercase" % repo)
    for prefix in ("docker.io/library/", "docker.io/"):
        if ref.startswith(prefix):
            ref = ref[len(prefix):]
            break
    if "@" not in ref and ":" not in ref.rsplit("/", 1)[-1]:
        ref += ":latest"
    return ref


def human_duration(seconds):
    """Go's units.HumanDuration, as in the list's "Up 3 seconds"."""
    if seconds < 1:
        return "Less than a second"
    if seconds < 2:
        return "1 second"
    if seconds < 60:
        return "%d seconds" % seconds
    minutes = seconds / 60
    if minutes < 2:
        return "About a minute"
    if minutes < 60:
        return "%d minutes" % minutes
    hours = minutes / 60
    if hours < 2:
        return "About an hour"
    return "%d hours" % hours


def parse_filters(raw, known, implemented):
    """?filters= as the engine takes it: {"key": ["v", ...]} or the older
    {"key": {"v": true}}.  A key the engine does not know is refused as it
    would refuse it; one it knows but the fake does not implement is refused
    too, saying so, rather than silently ignored."""
    if not raw:
        return {}
    try:
        filters = json.loads(raw)
    except ValueError as e:
        raise ApiError(400, "invalid filter: %s" % e)
    if not isinstance(filters, dict):
        raise ApiError(400, "invalid filter: not a JSON object")
    out = {}
    for key, values in filters.items():
        if isinstance(values, dict):
            values = [v for v, on in values.items() if on]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ApiError(400, "invalid filter '%s': values must be a list of strings" % key)
        if key not in known:
            raise ApiError(400, "invalid filter '%s'" % key)
        if key not in implemented:
            raise ApiError(400, "filter '%s' is not implemented by the fake engine" % key)
        out[key] = values
    return out


def labels_match(wanted, labels):
    """Every "k" (present) and "k=v" (equal) holds: label filters are and-ed."""
    for w in wanted:
        k, eq, v = w.partition("=")
        if k not in labels or (eq and labels[k] != v):
            return False
    return True


def parse_timestamp(value, what):
    """?since= and ?until= as the API takes them: seconds[.nanoseconds]."""
    if value is None or value == "":
        return None
    m = re.fullmatch(r"(\d+)(?:\.(\d{1,9}))?", value)
    if not m:
        raise ApiError(400, "invalid value for %s: %r is not seconds[.nanoseconds]" % (what, value))
    return int(m.group(1)) * 10**9 + int((m.group(2) or "0").ljust(9, "0"))


def str_slice(value, what):
    """Entrypoint and Cmd: the engine takes a string or a list of strings."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise ApiError(400, "json: cannot unmarshal %s into Go struct field %s of type strslice.StrSlice"
                   % (type(value).__name__, what))


def check_type(body, field, kind, goname):
    if field in body and body[field] is not None and not isinstance(body[field], kind):
        raise ApiError(400, "json: cannot unmarshal %s into Go struct field %s of type %s"
                       % (type(body[field]).__name__, field, goname))


class Container:
    """One container: what was asked at create, and the state of its process."""

    def __init__(self, cid, name, body, image, networks):
        self.id = cid
        self.name = name
        self.body = body                   # the create request, as sent
        self.image = image                 # normalized reference
        self.labels = body.get("Labels") or {}
        self.env = body.get("Env") or []
        self.entrypoint = str_slice(body.get("Entrypoint"), "Config.Entrypoint")
        self.cmd = str_slice(body.get("Cmd"), "Config.Cmd")
        self.host_config = body.get("HostConfig") or {}
        self.networks = networks           # {network name: aliases}
        self.created_ns = time.time_ns()
        self.status = "created"
        self.proc = None
        self.pid = 0
        self.port = None                   # the replica's port, once started
        self.exit_code = 0
        self.started_ns = 0
        self.finished_ns = 0
        self.starts = 0
        self.exited = threading.Event()    # the current process was reaped
        self.task = None                   # the swarm task it runs, if any
        self.listen = None                 # (host, port) a task listens on
        self.quiet = False                 # its end is not this node's to report

    @property
    def running(self):
        return self.status == "running"

    def server_id(self):
        for entry in self.env:
            k, eq, v = entry.partition("=")
            if k == "SERVER_ID" and eq:
                return v
        return None

    def binding(self):
        """(HostIp, HostPort) asked for 5000/tcp, or None if not published."""
        bindings = (self.host_config.get("PortBindings") or {}).get(CONTAINER_PORT)
        if not bindings:
            return None
        return bindings[0].get("HostIp") or "", bindings[0].get("HostPort") or ""

    def command(self):
        return (self.entrypoint or []) + (self.cmd or [])

    def network_mode(self):
        return self.host_config.get("NetworkMode") or "default"


class Service:
    """One swarm service: its spec as last given, its version, its tasks
    (oldest first; the last one is the current one)."""

    def __init__(self, sid, spec, version, image, network, port):
        self.id = sid
        self.spec = spec
        self.version = version
        self.image = image                 # normalized, for the node's check
        self.network = network             # the overlay network's name
        self.port = port                   # from Args --listen HOST:PORT
        self.created_ns = self.updated_ns = time.time_ns()
        self.tasks = []
        self.attempts = 0                  # restarts, for MaxAttempts
        self.timer = None                  # the next task's start
        self.removed = False

    @property
    def name(self):
        return self.spec["Name"]


class Task:
    """One task of a service: where it runs (its own loopback address,
    its service's port) and its state."""

    def __init__(self, tid, service_id, slot, version):
        self.id = tid
        self.service_id = service_id
        self.slot = slot
        self.version = version
        self.created_ns = self.updated_ns = time.time_ns()
        self.state = "assigned"
        self.message = "scheduler assigned task to node"
        self.err = ""
        self.desired = "running"
        self.address = None
        self.port = None
        self.container = None


class Subscriber:
    """One open /events stream: its filters and the queue it reads.
    None in the queue ends the stream."""

    def __init__(self, filters):
        self.filters = filters
        self.queue = queue.Queue()

    def wants(self, ev):
        f = self.filters
        attrs = ev["Actor"]["Attributes"]
        if "type" in f and ev["Type"] not in f["type"]:
            return False
        if "event" in f and ev["Action"] not in f["event"]:
            return False
        if "container" in f and not any(ev["Actor"]["ID"].startswith(v) or attrs.get("name") == v
                                         for v in f["container"]):
            return False
        if "image" in f and attrs.get("image") not in f["image"]:
            return False
        if "service" in f and (ev["Type"] != "service" or not any(
                ev["Actor"]["ID"].startswith(v) or attrs.get("name") == v for v in f["service"])):
            return False
        if "label" in f and not labels_match(f["label"], attrs):
            return False
        return True


class FakeDocker:
    """The fake engine: its state, its operations and its HTTP server.

    api, min_api: the versions it speaks and the oldest it accepts.
    images, networks: what exists at the start (images normalized, so
    "ringlb" is "ringlb:latest").  replica: the ringlb-replica binary.
    log_dir: each container's output goes to log_dir/NAME.log.
    max_stream_seconds: an /events stream is ended cleanly after this long.
    ignore_label_filter: list containers as if ?filters= had no "label"
      (an engine or proxy that drops it), to show a client checks labels
      itself.

    Every operation runs under one lock, except the waits for a process to
    exit, so a slow stop or a delayed fault never holds up other requests.
    """

    def __init__(self, socket_path, api=DEFAULT_API, min_api=DEFAULT_MIN_API,
                 images=DEFAULT_IMAGES, networks=DEFAULT_NETWORKS, replica=None,
                 log_dir=None, engine_version=ENGINE_VERSION, max_stream_seconds=3600,
                 ignore_label_filter=False, swarm=False, task_start_delay=0.05):
        if api_tuple(min_api) > api_tuple(api):
            raise ValueError("min_api %s is above api %s" % (min_api, api))
        self.socket_path = socket_path
        self.api = api
        self.min_api = min_api
        self.engine_version = engine_version
        self.replica = replica or default_replica()
        self.log_dir = log_dir                 # replica output, NAME.log; None: dropped
        self.max_stream_seconds = max_stream_seconds
        self.ignore_label_filter = ignore_label_filter
        if swarm not in SWARM_STATES:
            raise ValueError("swarm is False, True, 'inactive', 'manager' or 'worker'")
        self.swarm = SWARM_STATES[swarm]
        self.task_start_delay = task_start_delay
        self.services = {}                     # id -> Service
        self.swarm_index = 10                  # the raft store's, for Version.Index
        self.next_address = 2                  # 127.0.0.2 is the first task's
        self.quorum_lost = False
        self.deferred = []                     # tasks to start once a leader is back
        self.lock = threading.RLock()
        self.containers = {}                   # id -> Container
        self.images = {normalize_image(i) for i in images}
        self.networks = {}
        self.subnets = itertools.count(17)     # 172.N.0.0/16, one N per network
        for n in networks:
            self._add_network(n)
        self.faults = []
        self.history = collections.deque(maxlen=EVENTS_KEPT)
        self.subscribers = set()
        self.requests = []
        self.connections = set()               # open sockets, shut at stop()
        self.handler_threads = set()
        self.stopping = threading.Event()
        self.server = None
        self.thread = None
        # Replicas are spawned by one long-lived thread and told --parent:
        # they get SIGTERM when the thread that forked them ends (Linux's
        # PR_SET_PDEATHSIG), i.e. at stop() or if this process dies, never
        # when a request's handler thread finishes.
        self.spawner = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="fakedocker-spawn")

    # --- life ---------------------------------------------------------------

    def start(self):
        """Listen on the socket and serve in a background thread."""
        if os.path.exists(self.socket_path):
            if not stat.S_ISSOCK(os.stat(self.socket_path).st_mode):
                raise RuntimeError("%s exists and is not a socket" % self.socket_path)
            os.unlink(self.socket_path)
        self.server = _Server(self.socket_path, _Handler)
        self.server.fake = self
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.1},
                                       name="fakedocker", daemon=True)
        self.thread.start()
        return self

    def stop(self):
        """Stop serving, end every stream and connection, kill (by pid)
        every replica this fake started, remove the socket.  Idempotent."""
        with self.lock:
            if self.stopping.is_set():
                return
            self.stopping.set()
            for sub in self.subscribers:
                sub.queue.put(None)
            for svc in self.services.values():
                if svc.timer is not None:
                    svc.timer.cancel()
            running = [(c.proc, c.exited) for c in self.containers.values() if c.running]
        if self.server is not None:
            self.server.shutdown()
        for proc, _ in running:
            proc.kill()
        for _, exited in running:
            exited.wait(KILL_WAIT)
        with self.lock:
            conns, threads = list(self.connections), list(self.handler_threads)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + 5
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        if self.server is not None:
            self.server.server_close()
            self.thread.join(5)
            self.server = None
        self.spawner.shutdown(wait=True)
        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- bookkeeping --------------------------------------------------------

    def log_request(self, method, path):
        entry = {"method": method, "path": path, "time": time.time(), "status": None}
        with self.lock:
            self.requests.append(entry)
        return entry

    def check_version(self, version):
        """The engine's version middleware: too old or too new is a 400."""
        if version is None:
            return
        if api_tuple(version) < api_tuple(self.min_api):
            raise ApiError(400, "client version %s is too old. Minimum supported API version is %s, "
                           "please upgrade your client to a newer version" % (version, self.min_api))
        if api_tuple(version) > api_tuple(self.api):
            raise ApiError(400, "client version %s is too new. Maximum supported API version is %s"
                           % (version, self.api))

    def add_fault(self, spec):
        if not isinstance(spec, dict):
            raise ApiError(400, "a fault is a JSON object")
        fault = {"op": spec.get("op"), "status": spec.get("status", 500),
                 "message": spec.get("message", "fake engine: injected fault"),
                 "delay_ms": spec.get("delay_ms", 0), "count": spec.get("count", 1),
                 "close": bool(spec.get("close", False))}
        if fault["op"] not in FAULT_OPS:
            raise ApiError(400, "op must be one of %s" % ", ".join(sorted(FAULT_OPS)))
        for k in ("status", "delay_ms", "count"):
            if not isinstance(fault[k], int) or isinstance(fault[k], bool):
                raise ApiError(400, "%s must be a whole number" % k)
        if fault["status"] != 0 and not 400 <= fault["status"] <= 599:
            raise ApiError(400, "status must be 0 (answer normally) or 400 to 599")
        if fault["delay_ms"] < 0 or fault["count"] == 0 or fault["count"] < -1:
            raise ApiError(400, "delay_ms must be >= 0, count >= 1 or -1 (forever)")
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self):
        with self.lock:
            self.faults.clear()

    def take_fault(self, op):
        """The first fault pending for op, counted as used; or None."""
        with self.lock:
            for fault in self.faults:
                if fault["op"] == op:
                    if fault["count"] > 0:
                        fault["count"] -= 1
                        if fault["count"] == 0:
                            self.faults.remove(fault)
                    return dict(fault)
        return None

    def _add_network(self, name, driver=None):
        if name in self.networks:
            return
        net = {"Name": name, "Id": hex_id("network " + name), "Driver": "bridge", "Subnet": None,
               "Created": time.time_ns()}
        if driver == "overlay":
            n = next(self.subnets) % 256
            net.update(Driver="overlay", Subnet="10.0.%d.0/24" % n, Gateway="10.0.%d.1" % n)
        elif driver not in (None, "bridge"):
            raise ApiError(400, "fakedocker: driver %s is not modelled (bridge or overlay)" % driver)
        elif name == "host":
            net["Driver"] = "host"
        elif name == "none":
            net["Driver"] = "null"
        else:
            n = next(self.subnets) % 256
            net["Subnet"], net["Gateway"] = "172.%d.0.0/16" % n, "172.%d.0.1" % n
        self.networks[name] = net

    def _find_network(self, ref):
        if ref in self.networks:
            return self.networks[ref]
        for net in self.networks.values():
            if ref and net["Id"].startswith(ref):
                return net
        raise ApiError(404, "network %s not found" % ref)

    def _find(self, ref):
        """A container by id, name (with or without /) or unique id prefix."""
        if ref in self.containers:
            return self.containers[ref]
        name = ref[1:] if ref.startswith("/") else ref
        for c in self.containers.values():
            if c.name == name:
                return c
        found = [c for c in self.containers.values() if ref and c.id.startswith(ref)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise ApiError(400, "multiple IDs found with provided prefix: %s" % ref)
        raise ApiError(404, "No such container: %s" % ref)

    def _emit(self, c, action, extra=None):
        """Record a container event and hand it to every stream that wants it."""
        now = time.time_ns()
        attrs = dict(c.labels)
        attrs.update({"image": c.body.get("Image", c.image), "name": c.name})
        attrs.update(extra or {})
        ev = {"status": action, "id": c.id, "from": attrs["image"], "Type": "container",
              "Action": action, "Actor": {"ID": c.id, "Attributes": attrs},
              "scope": "local", "time": now // 10**9, "timeNano": now}
        self._publish(ev)

    def _publish(self, ev):
        self.history.append(ev)
        for sub in self.subscribers:
            if sub.wants(ev):
                sub.queue.put(ev)

    def subscribe(self, filters, since):
        """A new stream; with since, the kept events from then on come first."""
        sub = Subscriber(filters)
        with self.lock:
            if since is not None:
                for ev in self.history:
                    if ev["timeNano"] >= since and sub.wants(ev):
                        sub.queue.put(ev)
            if self.stopping.is_set():
                sub.queue.put(None)
            self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub):
        with self.lock:
            self.subscribers.discard(sub)

    def cut_events(self):
        """End every open /events stream, as an engine restart would."""
        with self.lock:
            for sub in self.subscribers:
                sub.queue.put(None)
            return len(self.subscribers)

    # --- images and networks ------------------------------------------------

    def image_inspect(self, ref):
        try:
            name = normalize_image(ref)
        except ApiError:
            raise ApiError(404, "No such image: %s" % ref)
        with self.lock:
            if name not in self.images:
                raise ApiError(404, "No such image: %s" % ref)
        return {"Id": "sha256:" + hex_id("image " + name), "RepoTags": [name], "RepoDigests": [],
                "Created": rfc3339(BUILT_NS), "Os": "linux", "Architecture": "amd64", "Size": 0,
                "Config": {"Entrypoint": ["ringlb-replica"], "ExposedPorts": {CONTAINER_PORT: {}},
                           "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                           "Labels": None}}

    def network_inspect(self, ref):
        with self.lock:
            net = self._find_network(ref)
            members = {c.id: {"Name": c.name, "MacAddress": "", "IPv4Address": "127.0.0.1/8",
                              "EndpointID": hex_id("endpoint %s %s" % (c.id, net["Name"])),
                              "IPv6Address": ""}
                       for c in self.containers.values()
                       if c.running and net["Name"] in c.networks}
        ipam = [{"Subnet": net["Subnet"], "Gateway": net["Gateway"]}] if net["Subnet"] else []
        overlay = net["Driver"] == "overlay"
        return {"Name": net["Name"], "Id": net["Id"], "Created": rfc3339(BUILT_NS),
                "Scope": "swarm" if overlay else "local",
                "Driver": net["Driver"], "EnableIPv6": False,
                "IPAM": {"Driver": "default", "Options": None, "Config": ipam},
                "Internal": False, "Attachable": overlay, "Ingress": False,
                "ConfigFrom": {"Network": ""}, "ConfigOnly": False,
                "Containers": members, "Options": {}, "Labels": {}}

    def set_images(self, spec):
        name, add = self._add_or_remove(spec)
        name = normalize_image(name)
        with self.lock:
            if add:
                self.images.add(name)
            else:
                self.images.discard(name)

    def set_networks(self, spec):
        """{"add": NAME} (a bridge), {"add": NAME, "driver": "overlay"},
        or {"remove": NAME}."""
        driver = None
        if isinstance(spec, dict) and "driver" in spec and "add" in spec:
            spec = dict(spec)
            driver = spec.pop("driver")
        name, add = self._add_or_remove(spec)
        with self.lock:
            if add:
                self._add_network(name, driver)
            else:
                self.networks.pop(name, None)

    @staticmethod
    def _add_or_remove(spec):
        if not isinstance(spec, dict) or len(spec) != 1 or not isinstance(
                spec.get("add", spec.get("remove")), str):
            raise ApiError(400, 'give {"add": NAME} or {"remove": NAME}')
        return spec.get("add", spec.get("remove")), "add" in spec

    # --- containers ---------------------------------------------------------

    def create_container(self, name, body):
        """POST /containers/create: validate as the engine does, then record."""
        if not isinstance(body, dict):
            raise ApiError(400, "json: cannot unmarshal %s into Go value of type "
                           "container.CreateRequest" % type(body).__name__)
        check_type(body, "Env", list, "[]string")
        check_type(body, "Labels", dict, "map[string]string")
        check_type(body, "HostConfig", dict, "container.HostConfig")
        check_type(body, "NetworkingConfig", dict, "network.NetworkingConfig")
        check_type(body, "ExposedPorts", dict, "nat.PortSet")
        if not all(isinstance(e, str) for e in body.get("Env") or []):
            raise ApiError(400, "json: cannot unmarshal into Go struct field Config.Env "
                           "of type string")
        if not all(isinstance(v, str) for v in (body.get("Labels") or {}).values()):
            raise ApiError(400, "json: cannot unmarshal into Go struct field Config.Labels "
                           "of type string")
        if name is not None and not NAME_RE.match(name):
            raise ApiError(400, "Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] "
                           "are allowed" % name)
        image = normalize_image(body.get("Image", ""))
        host_config = body.get("HostConfig") or {}
        bindings = host_config.get("PortBindings") or {}
        if not isinstance(bindings, dict) or not all(
                isinstance(b, list) and all(isinstance(x, dict) for x in b)
                for b in bindings.values() if b is not None):
            raise ApiError(400, "json: cannot unmarshal into Go struct field "
                           "HostConfig.PortBindings of type nat.PortMap")
        for b in bindings.values():
            for hp in (x.get("HostPort") or "" for x in b or []):
                if hp and not (hp.isdigit() and 0 < int(hp) < 65536):
                    raise ApiError(400, 'invalid port specification: "%s"' % hp)
        networks = self._networks_of(body)
        with self.lock:
            if image not in self.images:
                raise ApiError(404, "No such image: %s" % image)
            for net in networks:
                self._find_network(net)
            name = (name or "fake_" + secrets.token_hex(4)).lstrip("/")
            for c in self.containers.values():
                if c.name == name:
                    raise ApiError(409, 'Conflict. The container name "/%s" is already in use '
                                   'by container "%s". You have to remove (or rename) that '
                                   'container to be able to reuse that name.' % (name, c.id))
            c = Container(secrets.token_hex(32), name, body, image, networks)
            self.containers[c.id] = c
            self._emit(c, "create")
        return c

    @staticmethod
    def _networks_of(body):
        """{network: aliases} the container joins: its NetworkMode, and the
        endpoints of NetworkingConfig."""
        mode = (body.get("HostConfig") or {}).get("NetworkMode") or "default"
        endpoints = (body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
        if not isinstance(endpoints, dict):
            raise ApiError(400, "json: cannot unmarshal into Go struct field "
                           "NetworkingConfig.EndpointsConfig")
        nets = {}
        if mode.startswith("container:"):
            return nets
        if mode != "default":
            nets[mode] = []
        elif not endpoints:
            nets["bridge"] = []
        for net, ep in endpoints.items():
            nets[net] = list((ep or {}).get("Aliases") or [])
        return nets

    def start_container(self, ref):
        """POST /containers/{id}/start: run ringlb-replica as the container's
        process, whatever its entrypoint says.  Returns 204 or 304."""
        with self.lock:
            if self.stopping.is_set():
                raise ApiError(503, "the engine is shutting down")
            c = self._find(ref)
            if c.running:
                return 304
            for net in c.networks:
                self._find_network(net)
            binding = c.binding()
            if c.listen is not None:
                host, port = c.listen
            elif binding and binding[1]:
                host, port = "127.0.0.1", int(binding[1])
                if not port_free(port):
                    raise ApiError(500, "driver failed programming external connectivity on "
                                   "endpoint %s (%s): Bind for %s:%d failed: port is already "
                                   "allocated" % (c.name, hex_id("endpoint " + c.id),
                                                  binding[0] or "0.0.0.0", port))
            else:
                host, port = "127.0.0.1", free_port()
            self._launch(c, host, port)
        return 204

    def _launch(self, c, host, port):
        """Run ringlb-replica as c's process on host:port (under the lock)."""
        with self.lock:
            argv = [self.replica]
            if c.server_id() is not None:
                argv += ["--id", c.server_id()]
            argv += ["--listen", "%s:%d" % (host, port), "--parent", str(os.getpid())]
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOSTNAME": c.id[:12]}
            for entry in c.env:
                k, eq, v = entry.partition("=")
                if eq:
                    env[k] = v
            try:
                proc = self.spawner.submit(self._popen, argv, env, c.name).result()
            except OSError as e:
                raise ApiError(500, 'failed to create task for container: OCI runtime create failed: '
                               'exec: "%s": %s: unknown' % (self.replica, e.strerror))
            c.proc, c.pid, c.port = proc, proc.pid, port
            c.status, c.exit_code = "running", 0
            c.started_ns, c.finished_ns = time.time_ns(), 0
            c.starts += 1
            c.exited = threading.Event()
            self._emit(c, "start")
            threading.Thread(target=self._watch, args=(c, proc, c.exited),
                             name="fakedocker-watch-" + c.name, daemon=True).start()

    def _popen(self, argv, env, name):
        out = subprocess.DEVNULL
        if self.log_dir:
            out = open(os.path.join(self.log_dir, "%s.log" % name), "ab")
        try:
            # its own session: a Ctrl-C at the fake's terminal is the fake's to handle
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, env=env, start_new_session=True)
        finally:
            if out is not subprocess.DEVNULL:
                out.close()

    def _watch(self, c, proc, exited):
        """Reap a container's process; its end is the container's die."""
        rc = proc.wait()
        with self.lock:
            c.status, c.exit_code = "exited", exit_code(rc)
            c.finished_ns, c.proc, c.pid = time.time_ns(), None, 0
            if not c.quiet:
                self._emit(c, "die", {"exitCode": str(c.exit_code)})
            if c.task is not None:
                self._task_ended(c.task, c.exit_code)
            exited.set()

    def stop_container(self, ref, timeout):
        """POST /containers/{id}/stop: SIGTERM, SIGKILL after timeout s."""
        with self.lock:
            c = self._find(ref)
            if not c.running:
                return 304
            proc, exited = c.proc, c.exited
            self._emit(c, "kill", {"signal": str(int(signal.SIGTERM))})
            proc.send_signal(signal.SIGTERM)
        if not exited.wait(timeout):
            with self.lock:
                if not exited.is_set():
                    self._emit(c, "kill", {"signal": str(int(signal.SIGKILL))})
                    proc.kill()
            if not exited.wait(KILL_WAIT):
                raise ApiError(500, "container %s did not exit after SIGKILL" % c.id)
        with self.lock:
            self._emit(c, "stop")
        return 204

    def kill_container(self, ref, sig):
        """POST /containers/{id}/kill: send sig (SIGKILL: wait for the end)."""
        with self.lock:
            c = self._find(ref)
            if not c.running:
                raise ApiError(409, "Cannot kill container: %s: Container %s is not running"
                               % (ref, c.id))
            proc, exited = c.proc, c.exited
            self._emit(c, "kill", {"signal": str(int(sig))})
            proc.send_signal(sig)
        if sig == signal.SIGKILL:
            exited.wait(KILL_WAIT)

    def crash(self, ref):
        """SIGKILL a container's process behind the engine's back: no kill
        event, only the die the engine sees when it is reaped."""
        with self.lock:
            try:
                c = self._find(ref)
            except ApiError:
                svc = next((s for s in self.services.values() if s.name == ref), None)
                live = [t.container for t in (svc.tasks if svc else [])
                        if t.container is not None and t.container.running]
                if not live:
                    raise
                c = live[-1]
            if not c.running:
                raise ApiError(409, "container %s is not running" % c.name)
            proc, exited = c.proc, c.exited
            proc.kill()
        exited.wait(KILL_WAIT)

    def remove_container(self, ref, force):
        """DELETE /containers/{id}: a running one only with force (killed first)."""
        with self.lock:
            c = self._find(ref)
            exited = None
            if c.running:
                if not force:
                    raise ApiError(409, "You cannot remove a running container %s. Stop the container "
                                   "before attempting removal or force remove" % c.id)
                exited = c.exited
                self._emit(c, "kill", {"signal": str(int(signal.SIGKILL))})
                c.proc.kill()
        if exited is not None and not exited.wait(KILL_WAIT):
            raise ApiError(500, "container %s did not exit after SIGKILL" % c.id)
        with self.lock:
            if self.containers.pop(c.id, None) is not None:
                self._emit(c, "destroy")

    def inspect_container(self, ref):
        with self.lock:
            c = self._find(ref)
            cmd = c.command()
            host_config = {"NetworkMode": "default", "PortBindings": {},
                           "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}}
            host_config.update(c.host_config)
            return {
                "Id": c.id, "Created": rfc3339(c.created_ns),
                "Path": cmd[0] if cmd else "", "Args": cmd[1:],
                "State": {"Status": c.status, "Running": c.running, "Paused": False,
                          "Restarting": False, "OOMKilled": False, "Dead": False,
                          "Pid": c.pid, "ExitCode": c.exit_code, "Error": "",
                          "StartedAt": rfc3339(c.started_ns), "FinishedAt": rfc3339(c.finished_ns)},
                "Image": "sha256:" + hex_id("image " + c.image), "Name": "/" + c.name,
                "RestartCount": 0, "Driver": "overlay2", "Platform": "linux", "Mounts": [],
                "HostConfig": host_config,
                "Config": {"Hostname": c.id[:12], "Image": c.body.get("Image"), "Env": c.env,
                           "Cmd": c.cmd, "Entrypoint": c.entrypoint, "Labels": c.labels,
                           "ExposedPorts": c.body.get("ExposedPorts")},
                "NetworkSettings": {"Ports": self._ports(c), "Networks": self._endpoints(c),
                                    "SandboxKey": ""},
            }

    def _ports(self, c):
        """NetworkSettings.Ports: while running, every exposed or bound port,
        null unless published; 5000/tcp published on the replica's port."""
        if not c.running:
            return {}
        ports = {p: None for p in (c.body.get("ExposedPorts") or {})}
        ports.update({p: None for p in (c.host_config.get("PortBindings") or {})})
        binding = c.binding()
        if binding is not None:
            ports[CONTAINER_PORT] = [{"HostIp": binding[0] or "0.0.0.0", "HostPort": str(c.port)}]
        return ports

    def _endpoints(self, c):
        out = {}
        for name, aliases in c.networks.items():
            net = self.networks.get(name, {"Id": "", "Gateway": ""})
            up = c.running
            out[name] = {"IPAMConfig": None, "Links": None, "Aliases": aliases or None,
                         "NetworkID": net["Id"],
                         "EndpointID": hex_id("endpoint %s %s" % (c.id, name)) if up else "",
                         "Gateway": (net.get("Gateway") or "") if up else "",
                         "IPAddress": ((c.listen or ("127.0.0.1",))[0]) if up else "",
                         "IPPrefixLen": 8 if up else 0,
                         "MacAddress": "", "DriverOpts": None}
        return out

    def list_containers(self, all_, filters):
        """GET /containers/json: newest first; running only unless all."""
        if self.ignore_label_filter:
            filters = {k: v for k, v in filters.items() if k != "label"}
        for s in filters.get("status", []):
            if s not in CONTAINER_STATES:
                raise ApiError(400, "invalid filter 'status=%s'" % s)
        for v in filters.get("name", []):
            try:
                re.compile(v)
            except re.error as e:
                raise ApiError(400, "invalid filter 'name=%s': %s" % (v, e))
        out = []
        now = time.time_ns()
        with self.lock:
            for c in sorted(self.containers.values(), key=lambda c: c.created_ns, reverse=True):
                if not (all_ or c.running or "status" in filters):
                    continue
                if "status" in filters and c.status not in filters["status"]:
                    continue
                if "label" in filters and not labels_match(filters["label"], c.labels):
                    continue
                if "id" in filters and not any(c.id.startswith(v) for v in filters["id"]):
                    continue
                if "name" in filters and not any(re.search(v, "/" + c.name)
                                                 for v in filters["name"]):
                    continue
                if c.running:
                    status = "Up " + human_duration((now - c.started_ns) / 1e9)
                elif c.status == "exited":
                    status = "Exited (%d) %s ago" % (
                        c.exit_code, human_duration((now - c.finished_ns) / 1e9))
                else:
                    status = "Created"
                binding = c.binding()
                ports = []
                if c.running and binding is not None:
                    ports = [{"IP": binding[0] or "0.0.0.0", "PrivatePort": 5000,
                              "PublicPort": c.port, "Type": "tcp"}]
                out.append({"Id": c.id, "Names": ["/" + c.name], "Image": c.body.get("Image"),
                            "ImageID": "sha256:" + hex_id("image " + c.image),
                            "Command": " ".join(c.command()), "Created": c.created_ns // 10**9,
                            "Ports": ports, "Labels": c.labels, "State": c.status, "Status": status,
                            "HostConfig": {"NetworkMode": c.network_mode()},
                            "NetworkSettings": {"Networks": self._endpoints(c)}, "Mounts": []})
        return out

    # --- swarm mode ---------------------------------------------------------

    def _swarm_gate(self):
        """What the engine answers a swarm endpoint when it cannot serve
        one: not in a swarm, a worker, or a manager without a leader."""
        if self.swarm == "inactive":
            raise ApiError(503, NOT_IN_SWARM)
        if self.swarm == "worker":
            raise ApiError(503, NOT_A_MANAGER)
        if self.quorum_lost:
            raise ApiError(500, NO_LEADER)

    def _next_index(self):
        self.swarm_index += 1
        return self.swarm_index

    def _swarm_id(self):
        return "".join(secrets.choice(SWARM_ID_CHARS) for _ in range(25))

    def _alloc_address(self):
        """A loopback address for a new task: 127.0.0.2 upward, each given
        once in the fake's life (so never while another task holds it)."""
        while True:
            n = self.next_address
            self.next_address += 1
            hi, lo = divmod(n, 256)
            if hi > 255:
                raise ApiError(500, "fakedocker: out of loopback addresses for tasks")
            if lo not in (0, 255) and (hi, lo) != (0, 1):
                return "127.0.%d.%d" % (hi, lo)

    def info(self):
        """GET /info: the engine, and its part in a swarm."""
        with self.lock:
            running = sum(1 for c in self.containers.values() if c.running)
            swarm = {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                     "ControlAvailable": False, "Error": "", "RemoteManagers": None}
            if self.swarm != "inactive":
                swarm.update(NodeID=NODE_ID, NodeAddr="127.0.0.1", LocalNodeState="active",
                             RemoteManagers=[{"NodeID": NODE_ID, "Addr": "127.0.0.1:2377"}])
            if self.swarm == "manager":
                swarm.update(ControlAvailable=True, Nodes=1, Managers=1)
                if self.quorum_lost:
                    swarm["Error"] = NO_LEADER
                else:
                    swarm["Cluster"] = {"ID": CLUSTER_ID, "Version": {"Index": self.swarm_index},
                                        "CreatedAt": rfc3339(BUILT_NS),
                                        "UpdatedAt": rfc3339(BUILT_NS),
                                        "Spec": {"Name": "default", "Labels": {}}}
            return {"ID": hex_id("engine")[:36], "Name": "fakedocker", "OSType": "linux",
                    "OperatingSystem": "fakedocker", "Architecture": "x86_64",
                    "ServerVersion": self.engine_version, "NCPU": os.cpu_count() or 1,
                    "MemTotal": 0, "Containers": len(self.containers),
                    "ContainersRunning": running,
                    "ContainersStopped": len(self.containers) - running,
                    "Images": len(self.images), "Driver": "overlay2", "Swarm": swarm}

    def _find_service(self, ref):
        """A service by ID, name or unique ID prefix, as the engine finds one."""
        if ref in self.services:
            return self.services[ref]
        for svc in self.services.values():
            if svc.name == ref:
                return svc
        found = [s for s in self.services.values() if ref and s.id.startswith(ref)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise ApiError(400, "service %s is ambiguous (%d matches found)" % (ref, len(found)))
        raise ApiError(404, "service %s not found" % ref)

    def _check_spec(self, spec):
        """A service spec as the manager validates it; its image, network
        and listening port."""
        if not isinstance(spec, dict):
            raise ApiError(400, "json: cannot unmarshal %s into Go value of type "
                           "swarm.ServiceSpec" % type(spec).__name__)
        check_type(spec, "Labels", dict, "map[string]string")
        check_type(spec, "TaskTemplate", dict, "swarm.TaskSpec")
        name = spec.get("Name") or ""
        if not name:
            raise ApiError(400, "rpc error: code = InvalidArgument desc = meta: name must be provided")
        if len(name) > 63 or not SERVICE_NAME_RE.match(name):
            raise ApiError(400, "rpc error: code = InvalidArgument desc = name must be valid as "
                           "a DNS name component")
        tt = spec.get("TaskTemplate") or {}
        cs = tt.get("ContainerSpec")
        if not isinstance(cs, dict) or not cs.get("Image"):
            raise ApiError(400, "rpc error: code = InvalidArgument desc = ContainerSpec: image "
                           "reference must be provided")
        image = normalize_image(cs["Image"])
        for k, kind, goname in (("Env", list, "[]string"), ("Args", list, "[]string"),
                                ("Command", list, "[]string"),
                                ("Labels", dict, "map[string]string")):
            check_type(cs, k, kind, goname)
        mode = spec.get("Mode") or {"Replicated": {"Replicas": 1}}
        if "Replicated" not in mode or (mode["Replicated"] or {}).get("Replicas", 1) != 1:
            raise ApiError(400, "fakedocker: only replicated services of one task are modelled")
        nets = []
        for n in (tt.get("Networks") or spec.get("Networks") or []):
            target = (n or {}).get("Target")
            if target in ("bridge", "host", "none"):
                raise ApiError(403, "The network %s cannot be used with services. Only networks "
                               "scoped to the swarm can be used, such as those created with the "
                               "overlay driver." % target)
            try:
                net = self._find_network(target or "")
            except ApiError:
                net = None
            if net is None or net["Driver"] != "overlay":
                raise ApiError(404, "network %s not found" % target)
            nets.append(net["Name"])
        if len(nets) != 1:
            raise ApiError(400, "fakedocker: a service is modelled on exactly one overlay network")
        args = cs.get("Args") or []
        port = int(CONTAINER_PORT.split("/")[0])
        for i, a in enumerate(args):
            v = args[i + 1] if a == "--listen" and i + 1 < len(args) else (
                a[len("--listen="):] if a.startswith("--listen=") else None)
            if v is not None and v.rpartition(":")[2].isdigit():
                port = int(v.rpartition(":")[2])
        return image, nets[0], port

    def create_service(self, spec):
        """POST /services/create: validate, record, schedule its task."""
        with self.lock:
            self._swarm_gate()
            image, net, port = self._check_spec(spec)
            if any(s.name == spec["Name"] for s in self.services.values()):
                raise ApiError(409, "rpc error: code = AlreadyExists desc = name conflicts with an "
                               "existing object: service %s already exists" % spec["Name"])
            svc = Service(self._swarm_id(), copy.deepcopy(spec), self._next_index(), image, net,
                          port)
            self.services[svc.id] = svc
            self._emit_service(svc, "create")
            self._schedule(svc, 0)
            # the fake has no registry to pin the image's digest from
            warning = ("image %s could not be accessed on a registry to record\nits digest. Each "
                       "node will access %s independently,\npossibly leading to different nodes "
                       "running different\nversions of the image.\n" % (spec["TaskTemplate"]
                                                                       ["ContainerSpec"]["Image"],
                                                                       spec["TaskTemplate"]
                                                                       ["ContainerSpec"]["Image"]))
            return svc, [warning]

    def list_services(self, filters):
        with self.lock:
            self._swarm_gate()
            out = []
            for svc in sorted(self.services.values(), key=lambda s: s.created_ns):
                if "label" in filters and not labels_match(filters["label"],
                                                            svc.spec.get("Labels") or {}):
                    continue
                if "name" in filters and not any(svc.name.startswith(v) for v in filters["name"]):
                    continue
                if "id" in filters and not any(svc.id.startswith(v) for v in filters["id"]):
                    continue
                if "mode" in filters and "replicated" not in filters["mode"]:
                    continue
                out.append(self._service_json(svc))
            return out

    def inspect_service(self, ref):
        with self.lock:
            self._swarm_gate()
            return self._service_json(self._find_service(ref))

    def _service_json(self, svc):
        return {"ID": svc.id, "Version": {"Index": svc.version},
                "CreatedAt": rfc3339(svc.created_ns), "UpdatedAt": rfc3339(svc.updated_ns),
                "Spec": copy.deepcopy(svc.spec),
                "Endpoint": {"Spec": copy.deepcopy(svc.spec.get("EndpointSpec") or
                                                   {"Mode": "vip"})}}

    def update_service(self, ref, version, spec):
        """POST /services/{id}/update?version=N: the whole spec again.  A
        new TaskTemplate replaces the task; new labels alone do not."""
        try:
            version = int(version or "")
            if version < 0:
                raise ValueError
        except ValueError:
            raise ApiError(400, "invalid service version '%s': strconv.ParseUint: parsing "
                           "\"%s\": invalid syntax" % (version, version))
        with self.lock:
            self._swarm_gate()
            svc = self._find_service(ref)
            image, net, port = self._check_spec(spec)
            if version != svc.version:
                raise ApiError(500, "rpc error: code = Unknown desc = update out of sequence")
            if spec["Name"] != svc.name:
                raise ApiError(400, "rpc error: code = Unimplemented desc = renaming services is "
                               "not supported")
            redeploy = spec.get("TaskTemplate") != svc.spec.get("TaskTemplate")
            svc.spec, svc.image, svc.network, svc.port = copy.deepcopy(spec), image, net, port
            svc.version, svc.updated_ns = self._next_index(), time.time_ns()
            self._emit_service(svc, "update")
            if redeploy:
                self._replace_task(svc, die_event=True)
            return {"Warnings": []}

    def remove_service(self, ref):
        """DELETE /services/{id}: gone at once; its task is shut down after."""
        with self.lock:
            self._swarm_gate()
            svc = self._find_service(ref)
            del self.services[svc.id]
            svc.removed = True
            if svc.timer is not None:
                svc.timer.cancel()
            self._emit_service(svc, "remove")
            doomed = [t for t in svc.tasks if t.container is not None]
            for t in svc.tasks:
                self._shut_down(t)
        self._background(self._reap_containers, [t.container for t in doomed])

    def _reap_containers(self, containers):
        for c in containers:
            try:
                if c.running:
                    self.stop_container(c.id, 10)
                self.remove_container(c.id, True)
            except ApiError:
                pass

    def list_tasks(self, filters):
        with self.lock:
            self._swarm_gate()
            for v in filters.get("desired-state", []):
                if v not in ("running", "shutdown", "accepted"):
                    raise ApiError(400, "Invalid desired-state filter: %s" % v)
            wanted = None
            if "service" in filters:
                wanted = set()
                for ref in filters["service"]:
                    try:
                        wanted.add(self._find_service(ref).id)
                    except ApiError:
                        pass
            out = []
            for svc in sorted(self.services.values(), key=lambda s: s.created_ns):
                if wanted is not None and svc.id not in wanted:
                    continue
                for t in svc.tasks:
                    if "desired-state" in filters and t.desired not in filters["desired-state"]:
                        continue
                    if "id" in filters and not any(t.id.startswith(v) for v in filters["id"]):
                        continue
                    if "name" in filters and not any(
                            ("%s.%d" % (svc.name, t.slot)).startswith(v) for v in filters["name"]):
                        continue
                    out.append(self._task_json(svc, t))
            return out

    def inspect_task(self, ref):
        with self.lock:
            self._swarm_gate()
            for svc in self.services.values():
                for t in svc.tasks:
                    if t.id == ref or (ref and t.id.startswith(ref)):
                        return self._task_json(svc, t)
        raise ApiError(404, "task %s not found" % ref)

    def _task_json(self, svc, t):
        net = self.networks.get(svc.network, {"Id": "", "Subnet": ""})
        status = {"Timestamp": rfc3339(t.updated_ns), "State": t.state, "Message": t.message,
                  "PortStatus": {}}
        if t.err:
            status["Err"] = t.err
        if t.container is not None:
            c = t.container
            status["ContainerStatus"] = {"ContainerID": c.id, "PID": c.pid,
                                         "ExitCode": 0 if c.running else c.exit_code}
        return {"ID": t.id, "Version": {"Index": t.version},
                "CreatedAt": rfc3339(t.created_ns), "UpdatedAt": rfc3339(t.updated_ns),
                "Labels": {}, "Spec": copy.deepcopy(svc.spec.get("TaskTemplate") or {}),
                "ServiceID": svc.id, "Slot": t.slot, "NodeID": NODE_ID, "Status": status,
                "DesiredState": t.desired,
                "NetworksAttachments": [{
                    "Network": {"ID": net["Id"][:25], "Version": {"Index": 1},
                                "CreatedAt": rfc3339(net.get("Created", BUILT_NS)),
                                "UpdatedAt": rfc3339(net.get("Created", BUILT_NS)),
                                "Spec": {"Name": svc.network, "Labels": {},
                                         "DriverConfiguration": {"Name": "overlay"},
                                         "Attachable": True, "Scope": "swarm"},
                                "DriverState": {"Name": "overlay"},
                                "IPAMOptions": {"Driver": {"Name": "default"},
                                                "Configs": [{"Subnet": net.get("Subnet") or "",
                                                             "Gateway": net.get("Gateway") or ""}]}},
                    "Addresses": ["%s/8" % t.address]}]}

    def _emit_service(self, svc, action):
        now = time.time_ns()
        self._publish({"Type": "service", "Action": action,
                       "Actor": {"ID": svc.id, "Attributes": {"name": svc.name}},
                       "scope": "swarm", "time": now // 10**9, "timeNano": now})

    # --- swarm mode: tasks --------------------------------------------------

    def _background(self, fn, *args):
        threading.Thread(target=fn, args=args, daemon=True, name="fakedocker-swarm").start()

    def _schedule(self, svc, delay_s):
        """A new task for svc's slot, started after delay_s (the restart
        policy's Delay) and the task start delay."""
        if svc.timer is not None:
            svc.timer.cancel()
        t = Task(self._swarm_id(), svc.id, 1, self._next_index())
        t.desired = "ready" if delay_s > 0 else "running"
        t.address = self._alloc_address()
        t.port = svc.port
        svc.tasks.append(t)
        self._prune(svc)
        svc.timer = threading.Timer(delay_s + self.task_start_delay, self._run_task, (svc, t))
        svc.timer.daemon = True
        svc.timer.start()

    def _prune(self, svc):
        """Keep TASK_HISTORY ended tasks of a service, as the swarm does."""
        ended = [t for t in svc.tasks if t.desired == "shutdown" and
                 (t.container is None or not t.container.running)]
        for t in ended[:max(0, len(ended) - TASK_HISTORY)]:
            svc.tasks.remove(t)
            if t.container is not None and self.containers.pop(t.container.id, None):
                self._emit(t.container, "destroy")

    def _run_task(self, svc, t):
        """The task's node runs it: its container, or a rejection."""
        with self.lock:
            svc.timer = None
            if self.stopping.is_set() or svc.removed or t.desired == "shutdown":
                return
            if self.quorum_lost:        # nothing is scheduled without a leader
                self.deferred.append((svc, t))
                return
            t.desired = "running"
            cs = svc.spec["TaskTemplate"]["ContainerSpec"]
            if svc.image not in self.images:
                self._task_set(t, "rejected", "preparing", err="No such image: %s" % cs["Image"])
                t.desired = "shutdown"
                self._restart(svc, failed=True)
                return
            labels = dict(cs.get("Labels") or {})
            labels.update({"com.docker.swarm.node.id": NODE_ID,
                           "com.docker.swarm.service.id": svc.id,
                           "com.docker.swarm.service.name": svc.name,
                           "com.docker.swarm.task": "",
                           "com.docker.swarm.task.id": t.id,
                           "com.docker.swarm.task.name": "%s.%d.%s" % (svc.name, t.slot, t.id)})
            body = {"Image": cs["Image"], "Labels": labels, "Env": list(cs.get("Env") or []),
                    "Entrypoint": cs.get("Command"), "Cmd": cs.get("Args"),
                    "HostConfig": {"NetworkMode": "default",
                                   "RestartPolicy": {"Name": "no"}}}
            c = Container(secrets.token_hex(32), "%s.%d.%s" % (svc.name, t.slot, t.id), body,
                          svc.image, {svc.network: []})
            c.task, c.listen = t, (t.address, t.port)
            self.containers[c.id] = c
            t.container = c
            self._emit(c, "create")
            try:
                self._launch(c, t.address, t.port)
            except ApiError as e:
                self._task_set(t, "rejected", "preparing", err=e.message)
                t.desired = "shutdown"
                self._restart(svc, failed=True)
                return
            self._task_set(t, "running", "started")

    def _task_set(self, t, state, message, err=""):
        t.state, t.message, t.err = state, message, err
        t.updated_ns, t.version = time.time_ns(), self._next_index()

    def _task_ended(self, t, code):
        """A task's process was reaped (under the lock, from _watch)."""
        svc = next((s for s in self.services.values() if s.id == t.service_id), None)
        if t.desired == "shutdown":         # the engine stopped it
            self._task_set(t, "shutdown", "shutdown")
            return
        t.desired = "shutdown"
        if code == 0:
            self._task_set(t, "complete", "finished")
        else:
            self._task_set(t, "failed", "started", err="task: non-zero exit (%d)" % code)
        if svc is not None:
            self._restart(svc, failed=code != 0)

    def _restart(self, svc, failed):
        """The restart policy: Condition (any, on-failure, none), Delay
        (ns, 5 s when not given), MaxAttempts (0: no limit)."""
        policy = svc.spec["TaskTemplate"].get("RestartPolicy") or {}
        cond = policy.get("Condition") or "any"
        if cond == "none" or (cond == "on-failure" and not failed):
            return
        svc.attempts += 1
        if policy.get("MaxAttempts") and svc.attempts > policy["MaxAttempts"]:
            return
        delay = policy.get("Delay")
        self._schedule(svc, (DEFAULT_RESTART_DELAY_NS if delay is None else delay) / 1e9)

    def _shut_down(self, t, die_event=True):
        """The engine ends a task (its container is stopped separately)."""
        if t.desired == "shutdown":
            return
        t.desired = "shutdown"
        if t.container is None or not t.container.running:
            self._task_set(t, "shutdown", "shutdown")
        elif not die_event:
            t.container.quiet = True

    def _replace_task(self, svc, die_event):
        """Shut svc's task down and start another at a new address."""
        old = [t for t in svc.tasks if t.desired != "shutdown"]
        for t in old:
            self._shut_down(t, die_event)
        self._schedule(svc, 0)
        doomed = [t.container for t in old if t.container is not None and t.container.running]
        if die_event:
            self._background(self._reap_containers, doomed)
        else:
            for c in doomed:            # its node is gone: no events from it
                c.proc.kill()
        return svc.tasks[-1]

    def reschedule(self, ref, spec):
        """POST /_fake/reschedule/SERVICE: the task moves to another node
        (a new address); {"die_event": false}: its old node is not this
        one, so no die event is seen here."""
        die_event = True
        if spec is not None:
            if not isinstance(spec, dict) or set(spec) - {"die_event"}:
                raise ApiError(400, 'give {} or {"die_event": false}')
            die_event = bool(spec.get("die_event", True))
        with self.lock:
            if self.swarm != "manager":
                raise ApiError(409, "fakedocker: not a swarm manager")
            svc = self._find_service(ref)
            t = self._replace_task(svc, die_event)
            return {"task": t.id, "address": t.address}

    def set_quorum(self, spec):
        """POST /_fake/quorum {"lost": bool}: with it lost, every swarm
        endpoint answers the engine's no-leader error and nothing is
        scheduled; tasks that run keep running."""
        if not isinstance(spec, dict) or not isinstance(spec.get("lost"), bool):
            raise ApiError(400, 'give {"lost": true} or {"lost": false}')
        with self.lock:
            self.quorum_lost = spec["lost"]
            if not self.quorum_lost:
                deferred, self.deferred = self.deferred, []
                for svc, t in deferred:
                    if not svc.removed:
                        svc.timer = threading.Timer(self.task_start_delay, self._run_task, (svc, t))
                        svc.timer.daemon = True
                        svc.timer.start()

    def swarm_state(self):
        return {"state": self.swarm, "quorum_lost": self.quorum_lost,
                "services": [{"id": s.id, "name": s.name, "version": s.version,
                              "labels": s.spec.get("Labels") or {}, "spec": s.spec,
                              "tasks": [{"id": t.id, "state": t.state, "desired": t.desired,
                                         "address": t.address, "port": t.port, "err": t.err,
                                         "pid": t.container.pid if t.container else 0,
                                         "container": t.container.name if t.container else None}
                                        for t in s.tasks]}
                             for s in sorted(self.services.values(), key=lambda s: s.created_ns)]}

    def state(self):
        """GET /_fake/state: everything a test may want to assert on."""
        with self.lock:
            return {
                "containers": [{"name": c.name, "id": c.id, "image": c.image, "labels": c.labels,
                                "status": c.status, "running": c.running, "exit_code": c.exit_code,
                                "port": c.port, "pid": c.pid, "starts": c.starts,
                                "networks": c.networks, "create": c.body}
                               for c in sorted(self.containers.values(), key=lambda c: c.created_ns)],
                "images": sorted(self.images),
                "networks": sorted(self.networks),
                "faults": [dict(f) for f in self.faults],
                "streams": len(self.subscribers),
                "swarm": self.swarm_state(),
            }

    def request_log(self):
        with self.lock:
            return [dict(e) for e in self.requests]


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    block_on_close = False      # stop() ends and joins the handlers itself


# (method, path pattern, fault op, handler method) of the Docker API
ROUTES = [(m, re.compile("^%s$" % p), op, h) for m, p, op, h in [
    ("GET", r"/_ping", "ping", "api_ping"),
    ("HEAD", r"/_ping", "ping", "api_ping"),
    ("GET", r"/version", "version", "api_version"),
    ("GET", r"/images/(?P<name>.+)/json", "image", "api_image"),
    ("GET", r"/networks/(?P<name>[^/]+)", "network", "api_network"),
    ("POST", r"/containers/create", "create", "api_create"),
    ("GET", r"/containers/json", "list", "api_list"),
    ("GET", r"/containers/(?P<ref>[^/]+)/json", "inspect", "api_inspect"),
    ("POST", r"/containers/(?P<ref>[^/]+)/start", "start", "api_start"),
    ("POST", r"/containers/(?P<ref>[^/]+)/stop", "stop", "api_stop"),
    ("POST", r"/containers/(?P<ref>[^/]+)/kill", "kill", "api_kill"),
    ("DELETE", r"/containers/(?P<ref>[^/]+)", "delete", "api_delete"),
    ("GET", r"/events", "events", "api_events"),
    ("GET", r"/info", "info", "api_info"),
    ("POST", r"/services/create", "service_create", "api_service_create"),
    ("GET", r"/services", "service_list", "api_services"),
    ("GET", r"/services/(?P<ref>[^/]+)", "service_inspect", "api_service_inspect"),
    ("POST", r"/services/(?P<ref>[^/]+)/update", "service_update", "api_service_update"),
    ("DELETE", r"/services/(?P<ref>[^/]+)", "service_delete", "api_service_delete"),
    ("GET", r"/tasks", "tasks", "api_tasks"),
    ("GET", r"/tasks/(?P<ref>[^/]+)", "task_inspect", "api_task_inspect"),
]]

# (method, path pattern, handler method) of the fake's own controls
CONTROL_ROUTES = [(m, re.compile("^%s$" % p), h) for m, p, h in [
    ("POST", r"/_fake/fault", "ctl_add_fault"),
    ("DELETE", r"/_fake/fault", "ctl_clear_faults"),
    ("POST", r"/_fake/events/cut", "ctl_cut"),
    ("POST", r"/_fake/kill/(?P<name>[^/]+)", "ctl_kill"),
    ("GET", r"/_fake/state", "ctl_state"),
    ("POST", r"/_fake/images", "ctl_images"),
    ("POST", r"/_fake/networks", "ctl_networks"),
    ("GET", r"/_fake/log", "ctl_log"),
    ("POST", r"/_fake/quorum", "ctl_quorum"),
    ("POST", r"/_fake/reschedule/(?P<name>[^/]+)", "ctl_reschedule"),
]]


class _Handler(http.server.BaseHTTPRequestHandler):
    """One connection: HTTP/1.1 requests in turn (keep-alive)."""

    protocol_version = "HTTP/1.1"
    timeout = 300               # an idle keep-alive connection is closed
    log_entry = None            # this request's entry in the request log
    responded = False           # its status line was sent

    def setup(self):
        super().setup()
        self.fake = self.server.fake
        with self.fake.lock:
            self.fake.connections.add(self.connection)
            self.fake.handler_threads.add(threading.current_thread())

    def finish(self):
        with self.fake.lock:
            self.fake.connections.discard(self.connection)
            self.fake.handler_threads.discard(threading.current_thread())
        try:
            super().finish()
        except OSError:
            pass

    def version_string(self):
        return "Docker/%s (linux)" % self.fake.engine_version

    def log_message(self, *args):
        pass

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = lambda self: self.dispatch()

    # --- plumbing -----------------------------------------------------------

    def read_body(self):
        """The request body, by Content-Length or chunked.  After one that
        cannot be read the connection is closed: its framing is lost."""
        try:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                return self.read_chunked()
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                raise ApiError(413, "request body too large")
            return self.rfile.read(length) if length > 0 else b""
        except ValueError:
            self.close_connection = True
            raise ApiError(400, "malformed request body")
        except ApiError:
            self.close_connection = True
            raise

    def read_chunked(self):
        body = b""
        while len(body) <= MAX_BODY:
            size = int(self.rfile.readline(100).split(b";")[0].strip(), 16)
            if size == 0:
                for _ in range(100):            # the trailer, to its empty line
                    if not self.rfile.readline(8192).strip():
                        return body
                raise ValueError("trailer too long")
            body += self.rfile.read(size)
            self.rfile.readline(10)
        raise ApiError(413, "request body too large")

    def send_json(self, status, obj=None):
        body = b"" if obj is None else (json.dumps(obj, separators=(",", ":")) + "\n").encode()
        self.send_answer(status, body, "application/json")

    def send_response(self, code, message=None):
        self.responded = True
        if self.log_entry is not None:
            self.log_entry["status"] = code
        super().send_response(code, message)

    def send_answer(self, status, body, content_type):
        self.send_response(status)
        self.send_engine_headers()
        if status not in (204, 304):
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            self.wfile.write(body)

    def send_engine_headers(self):
        self.send_header("Api-Version", self.fake.api)
        self.send_header("Docker-Experimental", "false")
        self.send_header("Ostype", "linux")

    def json_body(self, body):
        """A JSON request body, checked as the engine checks it."""
        ctype = self.headers.get("Content-Type", "")
        if body and ctype.split(";")[0].strip().lower() != "application/json":
            raise ApiError(400, "unsupported Content-Type header (%s): must be "
                           "'application/json'" % ctype)
        if not body.strip():
            raise ApiError(400, "invalid JSON: got EOF while reading request body")
        try:
            return json.loads(body)
        except ValueError as e:
            raise ApiError(400, "invalid JSON: %s" % e)

    def dispatch(self):
        """One request: a control of the fake, or a Docker API call (logged,
        version-checked, subject to faults)."""
        self.log_entry, self.responded = None, False
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        control = path.startswith("/_fake/")
        if not control:
            self.log_entry = self.fake.log_request(self.command, self.path)
        try:
            body = self.read_body()
            if not control:
                m = VERSION_RE.match(path)
                if m:
                    self.fake.check_version(m.group(1))
                    path = m.group(2)
            route, params = self.route(CONTROL_ROUTES if control else ROUTES, path)
            if not control:
                fault = self.fake.take_fault(route[2])
                if fault is not None and self.apply_fault(fault):
                    return
            getattr(self, route[-1])(query, body, **params)
        except ApiError as e:
            self.send_json(e.status, {"message": e.message})
        except Exception as e:      # a bug of the fake's: said loudly, not hidden
            traceback.print_exc()
            self.close_connection = True
            if not self.responded:
                self.send_json(500, {"message": "fakedocker: internal error: %r" % e})

    def route(self, routes, path):
        """The route for this method and path, and the path's parameters."""
        for route in routes:
            m = route[1].match(path)
            if m and route[0] == self.command:
                return route, m.groupdict()
        raise ApiError(404, "page not found")

    def apply_fault(self, fault):
        """Delay, then close or answer the fault's error.  True if the
        request was answered (or dropped) here."""
        if fault["delay_ms"]:
            self.fake.stopping.wait(fault["delay_ms"] / 1000)
        if fault["close"]:
            self.close_connection = True
            if self.log_entry is not None:
                self.log_entry["status"] = "closed"
            return True
        if fault["status"]:
            raise ApiError(fault["status"], fault["message"])
        return False

    # --- the Docker API -----------------------------------------------------

    def api_ping(self, query, body):
        self.send_response(200)
        self.send_engine_headers()
        self.send_header("Cache-Control", "no-cache, no-store, must-revalidate")
        self.send_header("Pragma", "no-cache")
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", "0" if self.command == "HEAD" else "2")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(b"OK")

    def api_version(self, query, body):
        f = self.fake
        details = {"ApiVersion": f.api, "MinAPIVersion": f.min_api, "Os": "linux", "Arch": "amd64",
                   "GitCommit": "fakedocker", "GoVersion": "go1.20",
                   "KernelVersion": os.uname().release,
                   "BuildTime": rfc3339(BUILT_NS)}
        self.send_json(200, dict(details, Version=f.engine_version,
                                 Platform={"Name": "fakedocker"},
                                 Components=[{"Name": "Engine", "Version": f.engine_version,
                                              "Details": details}]))

    def api_image(self, query, body, name):
        self.send_json(200, self.fake.image_inspect(name))

    def api_network(self, query, body, name):
        self.send_json(200, self.fake.network_inspect(name))

    def api_create(self, query, body):
        c = self.fake.create_container(query.get("name") or None, self.json_body(body))
        self.send_json(201, {"Id": c.id, "Warnings": []})

    def api_list(self, query, body):
        filters = parse_filters(query.get("filters"), LIST_FILTERS, {"label", "name", "id", "status"})
        self.send_json(200, self.fake.list_containers(bool_param(query.get("all")), filters))

    def api_inspect(self, query, body, ref):
        self.send_json(200, self.fake.inspect_container(ref))

    def api_start(self, query, body, ref):
        self.send_json(self.fake.start_container(ref))

    def api_stop(self, query, body, ref):
        t = query.get("t", "10")
        try:
            timeout = int(t)
        except ValueError:
            raise ApiError(400, 'strconv.Atoi: parsing "%s": invalid syntax' % t)
        if timeout < 0:
            timeout = MAX_STOP_TIMEOUT
        self.send_json(self.fake.stop_container(ref, min(timeout, MAX_STOP_TIMEOUT)))

    def api_kill(self, query, body, ref):
        given = query.get("signal") or "KILL"
        name = given.upper().removeprefix("SIG")
        try:
            sig = signal.Signals(int(name)) if name.isdigit() else SIGNALS[name]
        except (ValueError, KeyError):
            raise ApiError(400, "Invalid signal: %s" % given)
        self.fake.kill_container(ref, sig)
        self.send_json(204)

    def api_delete(self, query, body, ref):
        self.fake.remove_container(ref, bool_param(query.get("force")))
        self.send_json(204)

    def api_info(self, query, body):
        self.send_json(200, self.fake.info())

    def api_service_create(self, query, body):
        svc, warnings = self.fake.create_service(self.json_body(body))
        self.send_json(201, {"ID": svc.id, "Warnings": warnings})

    def api_services(self, query, body):
        filters = parse_filters(query.get("filters"), SERVICE_FILTERS, SERVICE_FILTERS)
        self.send_json(200, self.fake.list_services(filters))

    def api_service_inspect(self, query, body, ref):
        self.send_json(200, self.fake.inspect_service(ref))

    def api_service_update(self, query, body, ref):
        self.send_json(200, self.fake.update_service(ref, query.get("version"),
                                                     self.json_body(body)))

    def api_service_delete(self, query, body, ref):
        self.fake.remove_service(ref)
        self.send_json(200)

    def api_tasks(self, query, body):
        filters = parse_filters(query.get("filters"), TASK_FILTERS,
                                {"desired-state", "id", "name", "service"})
        self.send_json(200, self.fake.list_tasks(filters))

    def api_task_inspect(self, query, body, ref):
        self.send_json(200, self.fake.inspect_task(ref))

    def api_events(self, query, body):
        """A chunked stream of events, one JSON object a line, until the
        client leaves, ?until= passes, or the fake cuts or stops it."""
        filters = parse_filters(query.get("filters"), EVENT_FILTERS,
                                {"type", "event", "label", "container", "image", "service"})
        since = parse_timestamp(query.get("since"), "since")
        until = parse_timestamp(query.get("until"), "until")
        sub = self.fake.subscribe(filters, since)
        try:
            self.send_response(200)
            self.send_engine_headers()
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            self.stream(sub, until)
        except OSError:
            self.close_connection = True
        finally:
            self.fake.unsubscribe(sub)

    def stream(self, sub, until):
        deadline = time.monotonic() + self.fake.max_stream_seconds
        while time.monotonic() < deadline:
            try:
                ev = sub.queue.get(timeout=0.2)
            except queue.Empty:
                if until is not None and time.time_ns() >= until:
                    break
                if self.client_gone():
                    self.close_connection = True
                    return
                continue
            if ev is None or (until is not None and ev["timeNano"] > until):
                break
            data = (json.dumps(ev, separators=(",", ":")) + "\n").encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def client_gone(self):
        """True if the client closed its end (readable, and nothing to read)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    # --- the fake's controls ------------------------------------------------

    def ctl_add_fault(self, query, body):
        self.send_json(200, self.fake.add_fault(self.json_body(body)))

    def ctl_clear_faults(self, query, body):
        self.fake.clear_faults()
        self.send_json(204)

    def ctl_cut(self, query, body):
        self.send_json(200, {"cut": self.fake.cut_events()})

    def ctl_kill(self, query, body, name):
        self.fake.crash(name)
        self.send_json(204)

    def ctl_state(self, query, body):
        self.send_json(200, self.fake.state())

    def ctl_images(self, query, body):
        self.fake.set_images(self.json_body(body))
        self.send_json(204)

    def ctl_networks(self, query, body):
        self.fake.set_networks(self.json_body(body))
        self.send_json(204)

    def ctl_log(self, query, body):
        self.send_json(200, self.fake.request_log())

    def ctl_quorum(self, query, body):
        self.fake.set_quorum(self.json_body(body))
        self.send_json(204)

    def ctl_reschedule(self, query, body, name):
        self.send_json(200, self.fake.reschedule(name, self.json_body(body) if body.strip()
                                                 else None))


def main(argv=None):
    p = argparse.ArgumentParser(description="A fake Docker Engine API on a unix socket whose "
                                "containers are ringlb-replica processes on 127.0.0.1.")
    p.add_argument("--socket", required=True, help="the unix socket to listen on")
    p.add_argument("--api", default=DEFAULT_API, help="the API version spoken (%(default)s)")
    p.add_argument("--min-api", default=DEFAULT_MIN_API, help="the oldest accepted (%(default)s)")
    p.add_argument("--image", action="append", help="a known image (repeatable; default ringlb:latest)")
    p.add_argument("--network", action="append",
                   help="a network (repeatable; default bridge, host, none, net1)")
    p.add_argument("--replica", help="the ringlb-replica binary ($RINGLB_BUILD/ringlb-replica)")
    p.add_argument("--log-dir", help="write each container's output to DIR/NAME.log")
    p.add_argument("--engine-version", default=ENGINE_VERSION, help="Version in /version")
    p.add_argument("--swarm", choices=("manager", "worker"),
                   help="be a one-node swarm's manager (or a worker)")
    p.add_argument("--overlay", action="append", default=[],
                   help="an overlay network (repeatable)")
    args = p.parse_args(argv)
    fake = FakeDocker(args.socket, api=args.api, min_api=args.min_api,
                      images=args.image or DEFAULT_IMAGES, networks=args.network or DEFAULT_NETWORKS,
                      replica=args.replica, log_dir=args.log_dir, engine_version=args.engine_version,
                      swarm=args.swarm or False)
    for name in args.overlay:
        fake.set_networks({"add": name, "driver": "overlay"})
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    fake.start()
    print("fakedocker: Docker Engine API %s (min %s) on unix://%s"
          % (fake.api, fake.min_api, fake.socket_path), flush=True)
    done.wait()
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
