"""ringlb's swarm backend on a real Docker Swarm: make swarm-up,
docker/stack.yml, two balancers sharing three replica services.

Where no Docker engine answers, every test here is skipped, saying why;
so too where the engine is a swarm worker (ringlb needs a manager) or in
a swarm state other than active or inactive.  An engine in no swarm is
made a one-node swarm on 127.0.0.1 by make swarm-up, and make swarm-down
leaves it again (and removes docker_gwbridge): only a swarm the suite
made is left.

The suite deploys its own stack beside any other, named ringlbtest<pid>
(the replicas' owner and service prefix too), on its own overlay network
ringlbtest-swarm-<pid>, its balancers on two free ports, with its own
admin token; the image is ringlb-test:latest, as test_compose.py's.

One module-scoped fixture runs make build and make swarm-up, and at the
end make swarm-down, then checks that no service, container, network or
secret of the stack is left, and that the engine is in the swarm state it
was found in; it does so also when a test or its own set-up failed.
Timings are printed (past pytest's capture), and the one the contract
names (a change on one balancer seen by the other within 1 s) asserted.

Traffic: from the host only to 127.0.0.1:<port>, the balancers' ports
published in host mode; balancers and replicas talk on the suite's own
overlay network.  Every wait and every load is bounded.
"""
import http.client
import json
import os
import subprocess
import threading
import time

import pytest

from test_compose import (ROOT, IMAGE, KEEP, DROP, BUILD_TIMEOUT, docker,
                          e2e, _engine_problem)

PID = os.getpid()
STACK = "ringlbtest%d" % PID
NETWORK = "ringlbtest-swarm-%d" % PID
TOKEN = "swarm-test-token-%d" % PID
AUTH = {"Authorization": "Bearer " + TOKEN}
UP_TIMEOUT = 300
DOWN_TIMEOUT = 180
KEYS = 10000


def _swarm_problem():
    why = _engine_problem()
    if why is not None:
        return "no Docker engine answers: " + why
    out = subprocess.run(["docker", "info", "--format",
                          "{{.Swarm.LocalNodeState}} "
                          "{{.Swarm.ControlAvailable}}"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, timeout=30).stdout.split()
    if not out:
        return "`docker info` gives no swarm state"
    if out[0] == "active" and out[1:] != ["true"]:
        return "this engine is a swarm worker; ringlb needs a manager"
    if out[0] not in ("active", "inactive"):
        return "the engine's swarm state is %s" % out[0]
    return None


_WHY = _swarm_problem()
if _WHY is not None:
    pytestmark = pytest.mark.skip(reason=_WHY)
else:
    # the fixture's make commands carry timeouts of their own
    pytestmark = pytest.mark.timeout(180, func_only=True)


_CONFIG = []   # pytest's, once the fixture has run


def say(msg):
    """Print past pytest's capture, as test_compose.py does."""
    capman = _CONFIG[0].pluginmanager.getplugin("capturemanager") \
        if _CONFIG else None
    if capman is None:
        print("[swarm] " + msg, flush=True)
        return
    with capman.global_and_fixture_disabled():
        print("\n[swarm] " + msg, flush=True)


def swarm_state():
    return docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip()


def make_env(ports):
    env = {k: v for k, v in os.environ.items()
           if k not in DROP and (k in KEEP or not (
               k.startswith("RINGLB_") or k.startswith("COMPOSE_")))}
    env.update({"RINGLB_STACK": STACK, "RINGLB_SWARM_NETWORK": NETWORK,
                "RINGLB_PORT": str(ports[0]), "RINGLB_PORT_2": str(ports[1]),
                "RINGLB_IMAGE": IMAGE, "RINGLB_ADMIN_TOKEN": TOKEN})
    return env


def make(target, env, timeout):
    t = time.monotonic()
    r = subprocess.run(["make", "--no-print-directory", target], cwd=ROOT,
                       env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=timeout)
    return r, time.monotonic() - t


def services():
    """{name: id} of the stack's replica services (label ringlb.owner)."""
    out = docker("service", "ls", "--filter", "label=ringlb.owner=%s" % STACK,
                 "--format", "{{.Name}}\t{{.ID}}")
    return dict(line.split("\t") for line in out.splitlines() if line)


def leftovers():
    """What of the stack is still there, by kind."""
    left = {}
    if swarm_state() == "active":
        left["services"] = docker(
            "service", "ls", "-q", "--filter",
            "label=com.docker.stack.namespace=%s" % STACK).split() + \
            list(services())
        left["secrets"] = docker("secret", "ls", "-q", "--filter",
                                 "name=%s-admin-token" % STACK).split()
    left["containers"] = docker(
        "ps", "-aq", "--filter", "label=ringlb.owner=%s" % STACK).split() + \
        docker("ps", "-aq", "--filter",
               "label=com.docker.stack.namespace=%s" % STACK).split()
    left["networks"] = docker("network", "ls", "-q", "--filter",
                              "name=^%s$" % NETWORK).split()
    return {k: v for k, v in left.items() if v}


class Balancer:
    def __init__(self, name, port):
        self.name, self.port = name, port

    def get(self, path, timeout=10):
        return e2e.request(self.port, "GET", path, timeout=timeout)

    def change(self, method, path, body):
        return e2e.request(self.port, method, path, body=json.dumps(body),
                           headers=dict(AUTH, **{
                               "Content-Type": "application/json"}),
                           timeout=60)

    def replicas(self):
        return self.get("/rep").json()["message"]["replicas"]

    def owner(self, key):
        return self.get("/map_request?id=%s" % key).json()["mapped_server"]


@pytest.fixture(scope="module")
def stack(pytestconfig):
    _CONFIG.append(pytestconfig)
    state_before = swarm_state()
    ports = (e2e.free_port(), e2e.free_port())
    env = make_env(ports)
    r, took = make("build", env, BUILD_TIMEOUT)
    assert r.returncode == 0, r.stdout[-3000:]
    say("make build: %.1f s" % took)
    try:
        r, took = make("swarm-up", env, UP_TIMEOUT)
        say("make swarm-up: %.1f s, exit %d\n%s" % (took, r.returncode,
                                                   r.stdout.strip()))
        assert r.returncode == 0, r.stdout[-3000:]
        lbs = (Balancer("lb1", ports[0]), Balancer("lb2", ports[1]))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(lb.get("/heartbeat").json().get("healthy") == 3
                   for lb in lbs):
                break
            time.sleep(0.2)
        for lb in lbs:
            assert lb.get("/heartbeat").json().get("healthy") == 3
        yield lbs
    finally:
        r, took = make("swarm-down", env, DOWN_TIMEOUT)
        say("make swarm-down: %.1f s, exit %d\n%s" % (took, r.returncode,
                                                     r.stdout.strip()))
        assert r.returncode == 0, r.stdout[-3000:]
        left = leftovers()
        assert left == {}, left
        assert swarm_state() == state_before


class Load:
    """Clients on both balancers, keep-alive, GET /home?request_id=K over
    many keys, counting answers other than 200 and broken exchanges."""

    def __init__(self, lbs, per_lb=2, seconds=30):
        self.lbs, self.per_lb, self.limit = lbs, per_lb, seconds
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.ok, self.bad = 0, []
        self.threads = []

    def _run(self, lb, seed):
        conn = None
        k = seed
        end = time.monotonic() + self.limit
        while not self.stop.is_set() and time.monotonic() < end:
            k += 7
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", lb.port,
                                                      timeout=10)
                conn.request("GET", "/home?request_id=%d" % (k % 5000))
                resp = conn.getresponse()
                body = resp.read()
                with self.lock:
                    if resp.status == 200:
                        self.ok += 1
                    else:
                        self.bad.append((lb.name, resp.status, body[:200]))
            except (OSError, http.client.HTTPException) as e:
                with self.lock:
                    self.bad.append((lb.name, "exchange", repr(e)))
                conn = None
            time.sleep(0.002)
        if conn is not None:
            conn.close()

    def __enter__(self):
        for lb in self.lbs:
            for i in range(self.per_lb):
                t = threading.Thread(target=self._run, args=(lb, i * 1000),
                                     daemon=True)
                t.start()
                self.threads.append(t)
        time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(15)


def test_seed_flow_on_both(stack):
    lb1, lb2 = stack
    assert lb1.replicas() == lb2.replicas() == ["Server 1", "Server 2",
                                                 "Server 3"]
    assert sorted(services()) == ["%s-Server-%d" % (STACK, i)
                                  for i in (1, 2, 3)]
    a = lb1.get("/home?request_id=42").json()
    b = lb2.get("/home?request_id=42").json()
    assert a == b and a["message"].startswith("Hello from Server: Server ")
    # the seed's bodies, on either balancer, show on both
    r = lb2.change("POST", "/add", {"n": 1, "hostnames": ["Server 4"]})
    assert r.status == 200, r.body
    assert "Server 4" in r.json()["message"]["replicas"]
    deadline = time.monotonic() + 5
    while "Server 4" not in lb1.replicas() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "Server 4" in lb1.replicas()
    r = lb1.change("DELETE", "/rm", {"n": 1, "hostnames": ["Server 4"]})
    assert r.status == 200, r.body
    deadline = time.monotonic() + 5
    while "Server 4" in lb2.replicas() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert lb2.replicas() == ["Server 1", "Server 2", "Server 3"]
    deadline = time.monotonic() + 20
    while "%s-Server-4" % STACK in services() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "%s-Server-4" % STACK not in services()


def test_every_key_routed_alike(stack):
    lb1, lb2 = stack
    differ = []
    conns = [http.client.HTTPConnection("127.0.0.1", lb.port, timeout=10)
             for lb in stack]
    try:
        for k in range(KEYS):
            owners = []
            for c in conns:
                c.request("GET", "/map_request?id=%d" % k)
                owners.append(json.loads(c.getresponse().read())[
                    "mapped_server"])
            if owners[0] != owners[1]:
                differ.append((k, owners))
    finally:
        for c in conns:
            c.close()
    say("%d keys: %d routed alike by both balancers" % (
        KEYS, KEYS - len(differ)))
    assert differ == []


def wait_routed(lb, key, name, limit):
    """Seconds until lb sends key to name (polled), or None."""
    t = time.monotonic()
    while time.monotonic() - t < limit:
        if lb.owner(key) == name:
            return time.monotonic() - t
        time.sleep(0.005)
    return None


def test_add_on_one_is_routed_by_the_other_within_1s(stack):
    lb1, lb2 = stack
    before = lb1.replicas()
    t = time.monotonic()
    r = lb1.change("POST", "/add", {"n": 1})
    add_took = time.monotonic() - t
    assert r.status == 200, r.body
    new = sorted(set(r.json()["message"]["replicas"]) - set(before))
    assert len(new) == 1, r.body
    new = new[0]
    # a key the new replica owns, on the balancer that added it
    key = next(k for k in range(5000) if lb1.owner(k) == new)
    seen = wait_routed(lb2, key, new, 10)
    say("/add on lb1 answered in %.3f s; lb2 routed to %s %.3f s later" % (
        add_took, new, seen if seen is not None else -1))
    assert seen is not None and seen <= 1.0, seen
    assert lb2.get("/home?request_id=%d" % key).json()["message"] == \
        "Hello from Server: %s" % new


def test_two_adds_at_once_on_two_balancers(stack):
    """Both choose the next generated name; the engine refuses the second
    service of it, and the loser takes the name after: two new replicas,
    no duplicate, none lost."""
    lb1, lb2 = stack
    before = set(lb1.replicas())
    answers = [None, None]

    def add(i, lb):
        answers[i] = lb.change("POST", "/add", {"n": 1})

    threads = [threading.Thread(target=add, args=(i, lb))
               for i, lb in enumerate(stack)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert [a.status for a in answers] == [200, 200], \
        [a.body for a in answers]
    new = set(lb1.replicas()) - before
    assert len(new) == 2, (before, lb1.replicas())
    deadline = time.monotonic() + 5
    while set(lb2.replicas()) != set(lb1.replicas()) and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(lb2.replicas()) == set(lb1.replicas())
    svcs = services()
    assert len(svcs) == len(before) + 2, svcs
    renamed = [line for lb in ("lb1", "lb2") for line in docker(
        "service", "logs", "--raw", "%s_%s" % (STACK, lb)).splitlines()
        if "instead" in line]
    say("two /adds at once: %s; %s" % (
        sorted(new), renamed[0] if renamed else "no name was taken twice"))
    # back to where the other tests expect it
    r = lb1.change("DELETE", "/rm", {"n": 2, "hostnames": sorted(new)})
    assert r.status == 200, r.body


def test_rm_on_one_under_load_fails_nothing(stack):
    lb1, lb2 = stack
    victim = lb1.replicas()[-1]
    key = next(k for k in range(5000) if lb1.owner(k) == victim)
    with Load(stack) as load:
        time.sleep(1)
        t = time.monotonic()
        r = lb2.change("DELETE", "/rm", {"n": 1, "hostnames": [victim]})
        assert r.status == 200, r.body
        gone = None
        while time.monotonic() - t < 10:
            if lb1.owner(key) != victim:
                gone = time.monotonic() - t
                break
            time.sleep(0.005)
        time.sleep(3)
    say("/rm of %s on lb2: lb1 stopped routing to it after %.3f s; %d "
        "requests, %d failed" % (victim, gone if gone is not None else -1,
                                 load.ok, len(load.bad)))
    assert gone is not None and gone <= 1.0, gone
    assert load.bad == [], load.bad[:5]
    assert load.ok > 100
    assert victim not in lb1.replicas() and victim not in lb2.replicas()


def test_killed_task_heals_under_load_fails_nothing(stack):
    lb1, lb2 = stack
    victim = "Server 2"
    key = next(k for k in range(5000) if lb1.owner(k) == victim)
    cid = docker("ps", "-q", "--filter", "label=ringlb.owner=%s" % STACK,
                 "--filter", "label=ringlb.replica=%s" % victim).split()
    assert len(cid) == 1, cid
    with Load(stack) as load:
        time.sleep(1)
        t = time.monotonic()
        docker("kill", cid[0])
        healed = None
        while time.monotonic() - t < 60:
            new = docker("ps", "-q", "--filter",
                         "label=ringlb.owner=%s" % STACK, "--filter",
                         "label=ringlb.replica=%s" % victim).split()
            if new and new != cid and all(
                    lb.get("/home?request_id=%d" % key).json()["message"] ==
                    "Hello from Server: %s" % victim for lb in stack) and \
                    all(lb.get("/heartbeat").json()["healthy"] ==
                        len(lb.replicas()) for lb in stack):
                healed = time.monotonic() - t
                break
            time.sleep(0.05)
        time.sleep(1)
    say("docker kill of %s's task: back on both balancers after %.3f s; "
        "%d requests, %d failed" % (victim, healed if healed else -1,
                                    load.ok, len(load.bad)))
    assert healed is not None
    assert load.bad == [], load.bad[:5]
    assert load.ok > 100
    assert victim in lb1.replicas() and victim in lb2.replicas()


def test_a_plain_container_balancer_joins_and_leaves(stack):
    """ringlb need not be a service of the stack: a container attached to
    the overlay network, with the manager's socket, shares the set; when
    it is removed, the set stays."""
    lb1, _ = stack
    port = e2e.free_port()
    name = "%s-lb3" % STACK
    before = services()
    docker("run", "-d", "--name", name, "--network", NETWORK,
           "-p", "127.0.0.1:%d:5000" % port,
           "-v", "/var/run/docker.sock:/var/run/docker.sock", "--user", "root",
           "-e", "RINGLB_BACKEND=swarm", "-e", "RINGLB_DOCKER_NETWORK=" + NETWORK,
           "-e", "RINGLB_DOCKER_OWNER=" + STACK,
           "-e", "RINGLB_DOCKER_PREFIX=%s-" % STACK,
           "-e", "RINGLB_DOCKER_IMAGE=" + IMAGE,
           "-e", "RINGLB_ADMIN_TOKEN=" + TOKEN, IMAGE)
    try:
        lb3 = Balancer("lb3", port)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if lb3.get("/heartbeat").json().get("healthy") == \
                        len(lb1.replicas()):
                    break
            except (OSError, ValueError, http.client.HTTPException):
                pass
            time.sleep(0.2)
        assert lb3.replicas() == lb1.replicas()
        differ = [k for k in range(2000) if lb3.owner(k) != lb1.owner(k)]
        assert differ == []
    finally:
        docker("rm", "-f", name)
    time.sleep(1)
    assert services() == before
    assert len(lb1.replicas()) == len(before)


def test_a_removed_balancer_removes_no_replica(stack):
    lb1, lb2 = stack
    before = services()
    docker("service", "rm", "%s_lb2" % STACK)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and docker(
            "ps", "-q", "--filter", "label=com.docker.swarm.service.name="
            "%s_lb2" % STACK):
        time.sleep(0.2)
    time.sleep(1)
    assert services() == before
    assert len(lb1.replicas()) == len(before)
    for k in range(50):
        assert lb1.get("/home?request_id=%d" % k).status == 200
