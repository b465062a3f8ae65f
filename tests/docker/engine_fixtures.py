"""Fixtures for tests against the fake Docker engine (fakedocker.py).

A test module imports the fixtures it uses (this is not a conftest.py:
tests/e2e has one, and two modules named conftest cannot share a run):

    from engine_fixtures import fake_engine, fake_engines  # noqa: F401

    def test_x(fake_engine):
        env = {"DOCKER_HOST": fake_engine.docker_host}      # for ringlb
        c = fake_engine.control                             # EngineClient
        c.fault("create", status=500, message="boom")
        ...
        assert c.container("server-1")["running"]

`fake_engines(**options)` starts one with other options (api, min_api,
images, networks, ...; see FakeDocker).  Every fake, its replicas and its
clients are stopped when the test ends.
"""
import http.client
import importlib.util
import json
import os
import socket
import tempfile
import time
import urllib.parse

import pytest

from fakedocker import FakeDocker

# tests/e2e's helpers (its conftest.py: Procs, request, free_port, ...),
# as module e2e: a second module named conftest cannot share a run
_spec = importlib.util.spec_from_file_location(
    "e2e_helpers", os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), "e2e", "conftest.py"))
e2e = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(e2e)

# a unix socket's path must fit sun_path (108 bytes with its NUL)
MAX_SOCKET_PATH = 100


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a unix socket, as a Docker client talks to the engine."""

    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.unix_path)
        except OSError:
            s.close()
            raise
        self.sock = s


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        return self.headers.get(name)

    def json(self):
        return json.loads(self.body)

    def message(self):
        """The engine's error message: {"message": ...}."""
        return self.json()["message"]


class EngineClient:
    """Requests to the engine's socket over one keep-alive connection
    (opened again if the engine closed it).

    Paths are sent as given, prefixed /vVERSION when the client has a
    version (never the fake's own /_fake/ paths)."""

    def __init__(self, socket_path, version=None, timeout=10):
        self.socket_path = socket_path
        self.version = version
        self.timeout = timeout
        self.conn = None
        self.streams = []

    def request(self, method, path, body=None, headers=None, timeout=None):
        """One request; body may be bytes, str, an iterable of bytes (sent
        chunked) or a dict or list (sent as application/json).  Returns a
        Response."""
        headers = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            headers.setdefault("Content-Type", "application/json")
        if self.version and not path.startswith("/_fake/"):
            path = "/v%s%s" % (self.version, path)
        if self.conn is None:
            self.conn = UnixHTTPConnection(self.socket_path)
        self.conn.timeout = timeout or self.timeout
        if self.conn.sock is not None:
            self.conn.sock.settimeout(self.conn.timeout)
        try:
            self.conn.request(method, path, body=body, headers=headers)
            r = self.conn.getresponse()
            resp = Response(r.status, r.headers, r.read())
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if r.will_close:
            self.close()
        return resp

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def close(self):
        """Close the connection and every event stream opened here."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        for ev in self.streams:
            ev.close()

    # --- the Docker API, the calls a replica's life is made of ------------

    def create(self, name, server_id=None, image="ringlb:latest", labels=None,
               network="net1", aliases=None, host_port="", **extra):
        """POST /containers/create for a replica as ringlb would ask for
        one: SERVER_ID, labels, 5000/tcp published on 127.0.0.1 (host_port
        "" = any; None = not published), on `network` with `aliases`.
        `extra` adds or overrides top-level fields of the body."""
        body = {"Image": image, "Labels": labels or {},
                "Env": ["SERVER_ID=%s" % (name if server_id is None else server_id)],
                "ExposedPorts": {"5000/tcp": {}},
                "HostConfig": {"NetworkMode": network,
                               "RestartPolicy": {"Name": "no"}},
                "NetworkingConfig": {"EndpointsConfig": {network: {"Aliases": aliases or [name]}}}}
        if host_port is not None:
            body["HostConfig"]["PortBindings"] = {
                "5000/tcp": [{"HostIp": "127.0.0.1", "HostPort": host_port}]}
        body.update(extra)
        return self.post("/containers/create?name=%s" % urllib.parse.quote(name), body)

    def start(self, ref):
        return self.post("/containers/%s/start" % ref)

    def inspect(self, ref):
        return self.get("/containers/%s/json" % ref)

    def stop(self, ref, t=10):
        return self.post("/containers/%s/stop?t=%d" % (ref, t), timeout=t + 15)

    def remove(self, ref, force=False):
        return self.delete("/containers/%s%s" % (ref, "?force=1" if force else ""))

    def list(self, all=False, filters=None):
        q = {"all": "1"} if all else {}
        if filters:
            q["filters"] = json.dumps(filters)
        return self.get("/containers/json?" + urllib.parse.urlencode(q))

    def events(self, filters=None, since=None, until=None):
        """GET /events on a connection of its own: an EventStream."""
        q = {}
        if filters:
            q["filters"] = json.dumps(filters)
        if since is not None:
            q["since"] = str(since)
        if until is not None:
            q["until"] = str(until)
        path = "/events" + ("?" + urllib.parse.urlencode(q) if q else "")
        if self.version:
            path = "/v%s%s" % (self.version, path)
        ev = EventStream(self.socket_path, path, self.timeout)
        self.streams.append(ev)
        return ev

    # --- the fake's controls ---------------------------------------------

    def _control(self, method, path, body=None, want=(200, 204)):
        r = self.request(method, path, body)
        assert r.status in want, "%s %s: %d %s" % (method, path, r.status, r.body)
        return r.json() if r.body else None

    def state(self):
        """{"containers": [...], "images", "networks", "faults", "streams"}."""
        return self._control("GET", "/_fake/state")

    def container(self, name):
        """The fake's record of one container (name, id, labels, status,
        running, exit_code, port, pid, starts, networks, create), or None."""
        for c in self.state()["containers"]:
            if c["name"] == name:
                return c
        return None

    def fault(self, op, status=500, message="fake engine: injected fault",
              delay_ms=0, count=1, close=False):
        """The next `count` calls of `op` (-1: all of them) wait delay_ms,
        then answer status with {"message": message} (status 0: answer
        normally), or with close=True, drop the connection unanswered."""
        return self._control("POST", "/_fake/fault", {
            "op": op, "status": status, "message": message,
            "delay_ms": delay_ms, "count": count, "close": close})

    def clear_faults(self):
        self._control("DELETE", "/_fake/fault")

    def cut_events(self):
        """End every open /events stream; returns how many there were."""
        return self._control("POST", "/_fake/events/cut")["cut"]

    def crash(self, name):
        """SIGKILL a container's process behind the engine's back: its
        die event (exitCode 137) follows, without a kill event."""
        self._control("POST", "/_fake/kill/%s" % urllib.parse.quote(name))

    def add_image(self, name):
        self._control("POST", "/_fake/images", {"add": name})

    def remove_image(self, name):
        self._control("POST", "/_fake/images", {"remove": name})

    def add_network(self, name, driver=None):
        """A bridge network, or with driver="overlay" a swarm's."""
        spec = {"add": name}
        if driver:
            spec["driver"] = driver
        self._control("POST", "/_fake/networks", spec)

    def remove_network(self, name):
        self._control("POST", "/_fake/networks", {"remove": name})

    def log(self):
        """Every Docker API request so far: {method, path, time, status}."""
        return self._control("GET", "/_fake/log")

    # --- swarm mode ------------------------------------------------------

    def create_service(self, name, replica=None, owner="ringlb-test", network="overlay1",
                       port=None, image="ringlb:latest", delay_ns=10**9, labels=None):
        """POST /services/create with the body ringlb's swarm backend
        sends for replica `replica` (default: name) of owner, listening
        on port (default: one free now)."""
        replica = name if replica is None else replica
        if port is None:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
        labels = {"ringlb.owner": owner, "ringlb.replica": replica} if labels is None else labels
        return self.post("/services/create", {
            "Name": name, "Labels": labels,
            "TaskTemplate": {
                "ContainerSpec": {"Image": image, "Command": ["ringlb-replica"],
                                  "Args": ["--listen", "0.0.0.0:%d" % port],
                                  "Env": ["SERVER_ID=%s" % replica], "Labels": labels,
                                  "ReadOnly": True, "HealthCheck": {"Test": ["NONE"]}},
                "RestartPolicy": {"Condition": "on-failure", "Delay": delay_ns,
                                  "MaxAttempts": 0},
                "Networks": [{"Target": network}]},
            "Mode": {"Replicated": {"Replicas": 1}},
            "EndpointSpec": {"Mode": "dnsrr"}})

    def tasks(self, service=None, desired=None):
        f = {}
        if service:
            f["service"] = [service]
        if desired:
            f["desired-state"] = [desired]
        return self.get("/tasks" + ("?filters=" + urllib.parse.quote(json.dumps(f)) if f else ""))

    def swarm(self):
        """The fake's swarm: {"state", "quorum_lost", "services": [{id, name,
        version, labels, spec, tasks: [{id, state, desired, address, port,
        err, pid, container}]}]}."""
        return self.state()["swarm"]

    def service(self, name):
        for s in self.swarm()["services"]:
            if s["name"] == name:
                return s
        return None

    def running_task(self, name):
        """The service's task that runs, or None."""
        s = self.service(name)
        for t in reversed(s["tasks"] if s else []):
            if t["state"] == "running" and t["desired"] == "running":
                return t
        return None

    def quorum(self, lost):
        """Lose the managers' quorum (lost=True) or get it back."""
        self._control("POST", "/_fake/quorum", {"lost": lost})

    def reschedule(self, service, die_event=True):
        """Move the service's task to a new address; returns {task, address}."""
        return self._control("POST", "/_fake/reschedule/%s" % urllib.parse.quote(service),
                             {} if die_event else {"die_event": False})

    def wait_state(self, cond, timeout=5.0, what="the fake's state"):
        """Poll /_fake/state until cond(state) is true; returns the state."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.state()
            if cond(st):
                return st
            if time.monotonic() > deadline:
                raise AssertionError("timed out after %.1fs waiting for %s; last: %s"
                                     % (timeout, what, st))
            time.sleep(0.02)


class EventStream:
    """An open GET /events: its status, then events one line at a time."""

    def __init__(self, socket_path, path, timeout):
        self.conn = UnixHTTPConnection(socket_path, timeout=timeout)
        self.conn.request("GET", path)
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.seen = []

    def next(self, timeout=5.0):
        """The next event, or None once the stream has ended."""
        self.conn.sock.settimeout(timeout)
        line = self.response.readline()
        if not line:
            return None
        ev = json.loads(line)
        self.seen.append(ev)
        return ev

    def wait_for(self, action, timeout=5.0, **attrs):
        """Read until an event with this Action (and these Actor
        attributes) comes; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                ev = self.next(left)
            except TimeoutError:
                break
            if ev is None:
                raise AssertionError("the stream ended before a %s event; seen: %s"
                                     % (action, self.actions()))
            a = ev["Actor"]["Attributes"]
            if ev["Action"] == action and all(a.get(k) == v for k, v in attrs.items()):
                return ev
        raise AssertionError("no %s event %s within %.1fs; seen: %s"
                             % (action, attrs, timeout, self.actions()))

    def actions(self):
        return [(e["Action"], e["Actor"]["Attributes"].get("name")) for e in self.seen]

    def close(self):
        self.conn.close()


class FakeEngine:
    """A running fake: where it listens, and a control client."""

    def __init__(self, fake):
        self.fake = fake
        self.socket = fake.socket_path
        self.docker_host = "unix://" + self.socket
        self.clients = []
        self.control = self.client()

    def client(self, version=None, timeout=10):
        """Another EngineClient (closed with the fake), speaking /vVERSION."""
        c = EngineClient(self.socket, version=version, timeout=timeout)
        self.clients.append(c)
        return c

    def close(self):
        for c in self.clients:
            c.close()
        self.fake.stop()


def socket_path(tmp_path, n):
    """A socket in tmp_path, or in a short temporary directory when
    tmp_path is too deep for a unix socket's path."""
    path = os.path.join(str(tmp_path), "docker-%d.sock" % n)
    if len(path) <= MAX_SOCKET_PATH:
        return path, None
    short = tempfile.mkdtemp(prefix="fakedocker-")
    return os.path.join(short, "docker.sock"), short


@pytest.fixture
def fake_engines(tmp_path):
    """start(**options) -> FakeEngine; FakeDocker's options (api, min_api,
    images, networks, replica, ...).  Each container's output goes to
    tmp_path/containers/NAME.log."""
    started, dirs = [], []
    logs = tmp_path / "containers"
    logs.mkdir()

    def start(**options):
        path, short = socket_path(tmp_path, len(started))
        if short:
            dirs.append(short)
        options.setdefault("log_dir", str(logs))
        engine = FakeEngine(FakeDocker(path, **options).start())
        started.append(engine)
        return engine

    yield start
    for engine in started:
        engine.close()
    for d in dirs:
        os.rmdir(d)


@pytest.fixture
def engine_client():
    """connect(socket_path, version=None) -> EngineClient, for a fake run
    on its own (python3 fakedocker.py --socket ...); closed at the end."""
    clients = []

    def connect(socket_path, version=None, timeout=10):
        c = EngineClient(socket_path, version=version, timeout=timeout)
        clients.append(c)
        return c

    yield connect
    for c in clients:
        c.close()


@pytest.fixture
def fake_engine(fake_engines):
    """A fake engine with the defaults: API 1.41 (min 1.12), the image
    ringlb:latest, the networks bridge, host, none and net1."""
    return fake_engines()
