"""ringlb's Docker backend against the real engine: make build, make
up-detached, docker-compose.yml, real replica containers.

Where no Docker engine answers (no docker binary, or `docker version`
fails), every test here is skipped with "no Docker engine answers: ...".

The suite runs its own copy of the compose setup beside any other, so a
user's own `make up` is left alone.  make and docker-compose get, in the
environment (the Makefile passes them on; RINGLB_DOCKER_PREFIX reaches
docker-compose.yml straight from the environment):

    COMPOSE_PROJECT_NAME=ringlbtest<pid>   RINGLB_PORT=<a free port>
    RINGLB_NETWORK=ringlbtest-net1-<pid>   RINGLB_DOCKER_OWNER=ringlbtest<pid>
    RINGLB_DOCKER_PREFIX=ringlbtest<pid>-  RINGLB_IMAGE=ringlb-test:latest

and no other RINGLB_* or COMPOSE_* setting of the caller's (a stray
RINGLB_ADMIN_TOKEN would change what /add answers), except the build's own
RINGLB_BASE_IMAGE, RINGLB_RUNTIME_IMAGE, RINGLB_BUILD_NETWORK and
RINGLB_DEBIAN_*MIRROR.

One module-scoped fixture runs `make build` (from nothing, that is
docker/mkbase.sh's debootstrap base plus the image: allowed 20 minutes),
then `make up-detached`, waits until /heartbeat says 3 healthy, and at the
end runs `make down` and checks that no container labelled
ringlb.owner=<owner>, no container of the compose project and no network
of that name is left; it does so also when a test or its own set-up failed.
The tests' timeouts cover the test function only (func_only): the
fixture's commands carry their own.  Timings are printed (past pytest's
capture), never asserted.

The images are NOT removed at the end: ringlb-test:latest, the build
stage's untagged images (label ringlb.stage=build) and the base image
(debian:bookworm-slim or ringlb/debian:bookworm) stay, so that a second
run only rebuilds what changed.  Remove them by hand if wanted:
`docker rmi ringlb-test:latest`.

Traffic: from the host only to 127.0.0.1:<port> (ringlb's published
port), never to a container's address; the one container-to-container
request (test_admin_from_replica_is_forbidden) goes from a replica to the
service name `ringlb` on the suite's own network.  Every wait is bounded.
"""
import http.client
import importlib.util
import io
import json
import os
import shutil
import subprocess
import tarfile
import threading
import time

import pytest

_spec = importlib.util.spec_from_file_location(
    "e2e_helpers", os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), "e2e", "conftest.py"))
e2e = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(e2e)

ROOT = e2e.ROOT
PID = os.getpid()
PROJECT = "ringlbtest%d" % PID
NETWORK = "ringlbtest-net1-%d" % PID
OWNER = "ringlbtest%d" % PID
PREFIX = "ringlbtest%d-" % PID
IMAGE = "ringlb-test:latest"
ORIGINALS = ["server-1", "server-2", "server-3"]
STATE_FILE = "/var/lib/ringlb/state.json"

BUILD_TIMEOUT = 1200      # make build from nothing: debootstrap + image
UP_TIMEOUT = 300          # make up-detached (the image is there)
DOWN_TIMEOUT = 180        # make down (ringlb stops its replicas first)

# The caller's settings the build may need on this machine; every other
# RINGLB_* and COMPOSE_* one is left out.
KEEP = {"RINGLB_BASE_IMAGE", "RINGLB_RUNTIME_IMAGE", "RINGLB_BUILD_NETWORK",
        "RINGLB_DEBIAN_MIRROR", "RINGLB_DEBIAN_SECURITY_MIRROR"}
DROP = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES",
        "COMPOSE_PROJECT_NAME", "COMPOSE_FILE", "COMPOSE_PATH_SEPARATOR",
        "COMPOSE_PROFILES"}


def _engine_problem():
    """Why the real-engine tests cannot run here, or None."""
    if shutil.which("docker") is None:
        return "no docker binary on PATH"
    try:
        r = subprocess.run(["docker", "version", "--format",
                            "{{.Server.APIVersion}}"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "`docker version` did not answer within 20 s (DOCKER_HOST=%s)" \
            % os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if r.returncode != 0 or not r.stdout.strip():
        lines = (r.stderr.strip() or r.stdout.strip() or
                 "exit code %d" % r.returncode).splitlines()
        return "`docker version` failed: %s" % lines[-1]
    return None


def _compose_problem():
    if shutil.which("make") is None:
        return "no make on PATH"
    if shutil.which("docker-compose") is not None:
        return None
    try:
        r = subprocess.run(["docker", "compose", "version"],
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=20)
        if r.returncode == 0:
            return None
    except subprocess.TimeoutExpired:
        pass
    return ("neither `docker compose` nor docker-compose is installed "
            "(apt-get install docker-compose)")


_WHY = _engine_problem()
if _WHY is not None:
    pytestmark = pytest.mark.skip(reason="no Docker engine answers: " + _WHY)
else:
    _WHY = _compose_problem()
    if _WHY is not None:
        pytestmark = pytest.mark.skip(
            reason="a Docker engine answers, but " + _WHY)


# --- helpers -----------------------------------------------------------------

def docker(*args, timeout=60, check=True):
    """Run the docker CLI; its stdout."""
    r = subprocess.run(["docker", *args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError("docker %s: exit %d: %s" % (
            " ".join(args), r.returncode, r.stderr.strip()))
    return r.stdout


def ours(all_states=False):
    """[(full id, state, replica label, name)] of the containers labelled
    ringlb.owner=OWNER; running ones only unless all_states."""
    out = docker("ps", *(["-a"] if all_states else []), "--no-trunc",
                 "--filter", "label=ringlb.owner=%s" % OWNER, "--format",
                 '{{.ID}}\t{{.State}}\t{{.Label "ringlb.replica"}}\t'
                 '{{.Names}}')
    return [tuple(line.split("\t")) for line in out.splitlines() if line]


def ours_by_name():
    """{replica: full container id} of the running containers labelled ours;
    fails if a name has two."""
    got = {}
    for cid, _state, rep, _name in ours():
        assert rep not in got, "two running containers for %r: %s" % (
            rep, ours(all_states=True))
        got[rep] = cid
    return got


def project_containers():
    return docker("ps", "-aq", "--no-trunc", "--filter",
                  "label=com.docker.compose.project=%s" % PROJECT).split()


def network_exists():
    r = subprocess.run(["docker", "network", "inspect", "-f", "{{.Name}}",
                        NETWORK], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=30)
    if r.returncode == 0:
        return True
    assert "not found" in r.stderr, r.stderr
    return False


def call(stack, method, path, body=None, timeout=30):
    """One request to ringlb over 127.0.0.1 (JSON body if given)."""
    if body is None:
        return e2e.request(stack.port, method, path, timeout=timeout)
    return e2e.request(stack.port, method, path, body=json.dumps(body),
                       headers={"Content-Type": "application/json"},
                       timeout=timeout)


def rep(stack):
    body = call(stack, "GET", "/rep").json()
    assert body["status"] == "successful", body
    assert body["message"]["N"] == len(body["message"]["replicas"]), body
    return body["message"]["replicas"]


def heartbeat(stack):
    """/heartbeat's JSON, or None while ringlb does not answer."""
    try:
        return call(stack, "GET", "/heartbeat", timeout=5).json()
    except (OSError, ValueError, http.client.HTTPException):
        return None


def wait_until(cond, timeout, what, step=0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = cond()
        except (OSError, ValueError, http.client.HTTPException) as e:
            last = e
        else:
            if last:
                return last
        time.sleep(step)
    raise AssertionError("timed out after %.0f s waiting for %s (last: %r)"
                         % (timeout, what, last))


def wait_healthy(stack, want, timeout=60):
    return wait_until(lambda: (lambda h: h if h and h.get("healthy") == want
                               and h.get("N") == want else None)(
        heartbeat(stack)), timeout, "%d healthy replicas" % want)


def wait_containers(names, timeout=60):
    """Until the running containers labelled ours are exactly `names` and
    nothing else labelled ours exists (stopped or being removed)."""
    want = sorted(names)

    def check():
        every = ours(all_states=True)
        return every if (sorted(r for _, _, r, _ in every) == want and
                         all(s == "running" for _, s, _, _ in every)) \
            else None
    return wait_until(check, timeout, "the containers of %s only" % want,
                      step=0.25)


def ringlb_container():
    ids = docker("ps", "-aq", "--no-trunc", "--filter",
                 "label=com.docker.compose.project=%s" % PROJECT, "--filter",
                 "label=com.docker.compose.service=ringlb").split()
    assert len(ids) == 1, "ringlb containers of %s: %s" % (PROJECT, ids)
    return ids[0]


def state_file(cid):
    """The replica list in ringlb's state file, read with docker cp (which
    works on a stopped container too)."""
    r = subprocess.run(["docker", "cp", "%s:%s" % (cid, STATE_FILE), "-"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    with tarfile.open(fileobj=io.BytesIO(r.stdout)) as tar:
        member = tar.getmembers()[0]
        return json.loads(tar.extractfile(member).read())["replicas"]


def key_of(stack, replica, tries=1000):
    """A request key ringlb maps to `replica`."""
    for k in range(tries):
        m = call(stack, "GET", "/map_request?id=k%d" % k).json()
        if m["mapped_server"] == replica:
            return "k%d" % k
    raise AssertionError("no key of %d maps to %r" % (tries, replica))


class Stack:
    """The suite's compose project: its settings, make and the clock."""

    def __init__(self, config, logdir):
        self.config = config
        self.logdir = logdir
        self.port = e2e.free_port()
        env = {k: v for k, v in os.environ.items()
               if k not in DROP and not (k.startswith("RINGLB_") and
                                         k not in KEEP)}
        env.update(COMPOSE_PROJECT_NAME=PROJECT, RINGLB_PORT=str(self.port),
                   RINGLB_NETWORK=NETWORK, RINGLB_DOCKER_OWNER=OWNER,
                   RINGLB_DOCKER_PREFIX=PREFIX, RINGLB_IMAGE=IMAGE)
        self.env = env
        self.times = {}

    def say(self, msg):
        capman = self.config.pluginmanager.getplugin("capturemanager")
        if capman is None:
            print("[compose] " + msg, flush=True)
            return
        with capman.global_and_fixture_disabled():
            print("\n[compose] " + msg, flush=True)

    def make(self, target, timeout):
        """Run `make TARGET` in the suite's environment; (exit code, seconds,
        output)."""
        log = os.path.join(self.logdir, "make-%s-%d.log" % (
            target, len(self.times)))
        t0 = time.monotonic()
        with open(log, "w+") as f:
            try:
                r = subprocess.run(["make", "--no-print-directory", target],
                                   cwd=ROOT, env=self.env, stdout=f,
                                   stderr=subprocess.STDOUT, timeout=timeout)
                code = r.returncode
            except subprocess.TimeoutExpired:
                code = "timeout after %d s" % timeout
            f.seek(0)
            out = f.read()
        took = time.monotonic() - t0
        self.times.setdefault(target, []).append(took)
        return code, took, out

    def must_make(self, target, timeout):
        code, took, out = self.make(target, timeout)
        assert code == 0, "make %s: %s; its last lines:\n%s" % (
            target, code, "\n".join(out.splitlines()[-60:]))
        return took, out

    def ringlb_log(self):
        r = subprocess.run(["docker", "logs", ringlb_container()],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=30)
        return r.stdout

    def save_log(self):
        """ringlb's container log, kept in the suite's temporary directory
        (make down removes the container)."""
        ids = docker("ps", "-aq", "--filter", "label=com.docker.compose."
                     "project=%s" % PROJECT, "--filter",
                     "label=com.docker.compose.service=ringlb").split()
        if len(ids) != 1:
            return
        path = os.path.join(self.logdir, "ringlb-container.log")
        with open(path, "w") as f:
            f.write(self.ringlb_log())
        self.say("ringlb's log: %s" % path)

    def leftovers(self):
        """What make down should have removed, if anything is left."""
        left = []
        c = ours(all_states=True)
        if c:
            left.append("containers labelled ringlb.owner=%s: %s" % (OWNER, c))
        p = project_containers()
        if p:
            left.append("containers of project %s: %s" % (PROJECT, p))
        if network_exists():
            left.append("the network %s" % NETWORK)
        return left

    def down(self):
        code, took, out = self.make("down", DOWN_TIMEOUT)
        return code, took, out


def settle(stack):
    """Back to where every test starts: server-1..3, healthy, and their
    containers only (a test that failed half-way may have left more)."""
    names = rep(stack)
    extra = [n for n in names if n not in ORIGINALS]
    if extra:
        r = call(stack, "DELETE", "/rm", {"n": len(extra),
                                          "hostnames": extra})
        assert r.status == 200, r.body
    assert rep(stack) == ORIGINALS
    wait_healthy(stack, 3)
    wait_containers(ORIGINALS)


@pytest.fixture(scope="module")
def stack(request, tmp_path_factory):
    s = Stack(request.config, str(tmp_path_factory.mktemp("compose")))
    s.say("project %s, port 127.0.0.1:%d, network %s, owner %s, image %s"
          % (PROJECT, s.port, NETWORK, OWNER, IMAGE))
    try:
        # anything of an earlier run under the same names (a reused pid)
        if s.leftovers():
            s.down()
        took, out = s.must_make("build", BUILD_TIMEOUT)
        base = [l for l in out.splitlines() if l.startswith("building ")]
        s.say("make build: %.1f s (%s)" % (took, base[-1] if base else "?"))
        took, _ = s.must_make("up-detached", UP_TIMEOUT)
        t0 = time.monotonic()
        wait_healthy(s, 3, timeout=120)
        s.say("make up-detached: %.1f s, then %.1f s until /heartbeat said "
              "3 healthy" % (took, time.monotonic() - t0))
        yield s
    finally:
        s.save_log()
        code, took, out = s.down()
        left = s.leftovers()
        s.say("make down (teardown): %.1f s, exit %s; left: %s" % (
            took, code, left or "nothing"))
        assert code == 0, "make down: %s:\n%s" % (code, out[-3000:])
        assert left == [], left


# --- the tests ----------------------------------------------------------------

@pytest.mark.timeout(60, func_only=True)
def test_up_three_replica_containers(stack):
    """make up-detached: ringlb and server-1..3, one container each."""
    assert rep(stack) == ORIGINALS
    c = ours_by_name()
    assert sorted(c) == ORIGINALS
    names = {r: n for _, _, r, n in ours()}
    assert names == {r: PREFIX + r for r in ORIGINALS}
    assert docker("inspect", "-f", "{{.State.Running}}",
                  ringlb_container()).strip() == "true"


@pytest.mark.timeout(240, func_only=True)
def test_seed_flows_from_the_host(stack):
    settle(stack)
    # GET /home without a key
    r = call(stack, "GET", "/home")
    assert r.status == 200, r.body
    served = r.header("X-Served-By")
    assert served in ORIGINALS
    assert r.json() == {"message": "Hello from Server: %s" % served,
                        "status": "successful"}
    # GET /rep
    assert call(stack, "GET", "/rep").json() == {
        "message": {"N": 3, "replicas": ORIGINALS}, "status": "successful"}

    # POST /add with the seed's names
    t0 = time.monotonic()
    r = call(stack, "POST", "/add", {"n": 2,
                                     "hostnames": ["Server 1", "Server 4"]})
    assert r.status == 200, r.body
    stack.say("/add of 2 containers: %.2f s" % (time.monotonic() - t0))
    want = ["Server 1", "Server 4"] + ORIGINALS
    assert r.json() == {"message": {"N": 5, "replicas": want},
                        "status": "successful"}
    c = ours_by_name()
    assert sorted(c) == sorted(want)
    names = {r_: n for _, _, r_, n in ours()}
    assert names["Server 4"].startswith(PREFIX + "server-4")
    assert names["Server 1"].startswith(PREFIX + "server-1")
    assert names["Server 1"] != PREFIX + "server-1"
    wait_healthy(stack, 5)

    # a key of Server 4's answers from Server 4
    k = key_of(stack, "Server 4")
    r = call(stack, "GET", "/home?request_id=%s" % k)
    assert r.status == 200, r.body
    assert r.header("X-Served-By") == "Server 4"
    assert r.json()["message"] == "Hello from Server: Server 4"

    # /map_request agrees with X-Served-By, and keys are sticky
    for k in range(50):
        owner = call(stack, "GET", "/map_request?id=%d" % k).json()
        assert owner["request_id"] in (k, str(k))
        a = call(stack, "GET", "/home?request_id=%d" % k)
        b = call(stack, "GET", "/home?request_id=%d" % k)
        assert a.status == 200 and b.status == 200, (a.body, b.body)
        assert a.header("X-Served-By") == owner["mapped_server"], k
        assert b.header("X-Served-By") == owner["mapped_server"], k
        assert a.json()["message"] == "Hello from Server: %s" % \
            owner["mapped_server"]

    # DELETE /rm of the seed
    r = call(stack, "DELETE", "/rm", {"n": 1, "hostnames": ["Server 1"]})
    assert r.status == 200, r.body
    assert r.json() == {"message": {"N": 4, "replicas":
                                    ["Server 4"] + ORIGINALS},
                        "status": "successful"}
    t0 = time.monotonic()
    wait_containers(["Server 4"] + ORIGINALS, timeout=60)
    stack.say("/rm: the container gone after %.2f s" % (time.monotonic() - t0))

    # the other seed style: three named, then n 3 with two names
    r = call(stack, "POST", "/add", {"n": 3, "hostnames": ["S5", "S4", "S6"]})
    assert r.status == 200, r.body
    assert r.json()["message"] == {
        "N": 7, "replicas": ["S4", "S5", "S6", "Server 4"] + ORIGINALS}
    assert sorted(ours_by_name()) == sorted(
        ["S4", "S5", "S6", "Server 4"] + ORIGINALS)
    r = call(stack, "DELETE", "/rm", {"n": 3, "hostnames": ["S5", "S4"]})
    assert r.status == 200, r.body
    # the third one is the newest: S6, the last of its /add
    assert r.json()["message"] == {"N": 4,
                                   "replicas": ["Server 4"] + ORIGINALS}
    r = call(stack, "DELETE", "/rm", {"n": 1, "hostnames": ["Server 4"]})
    assert r.status == 200, r.body
    assert r.json()["message"] == {"N": 3, "replicas": ORIGINALS}
    wait_containers(ORIGINALS, timeout=60)
    wait_healthy(stack, 3)

    # an error body, and nothing changed
    r = call(stack, "POST", "/add", {"n": 1, "hostnames": ["a", "b"]})
    assert r.status == 400, r.body
    assert r.json() == {"message": "<Error> Length of hostname list is more "
                        "than newly added instances", "status": "failure"}
    assert rep(stack) == ORIGINALS
    assert sorted(ours_by_name()) == ORIGINALS


@pytest.mark.timeout(120, func_only=True)
def test_admin_from_replica_is_forbidden(stack):
    settle(stack)
    before = ours_by_name()
    script = ('exec 3<>/dev/tcp/ringlb/5000; printf "POST /add HTTP/1.1\\r\\n'
              'Host: ringlb\\r\\nContent-Length: 8\\r\\nConnection: close\\r\\n'
              '\\r\\n{\\"n\\": 1}" >&3; cat <&3')
    r = subprocess.run(["docker", "exec", before["server-1"], "bash", "-c",
                        script], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    head, _, body = out.partition("\r\n\r\n")
    assert head.split("\r\n")[0] == "HTTP/1.1 403 Forbidden", out
    answer = json.loads(body)
    assert answer["status"] == "failure", answer
    assert answer["message"].startswith(
        "<Error> /add is accepted from loopback and the Docker host only"), \
        answer
    # nothing was started
    assert rep(stack) == ORIGINALS
    assert ours_by_name() == before
    assert len(ours(all_states=True)) == 3
    # the rule in force, in the startup log
    log = stack.ringlb_log()
    assert ("clients on the Docker host (through " in log and
            "the gateway of %s) may use /add and /rm without a token" % NETWORK
            in log), log[-3000:]


class PacedLoad:
    """Client threads sending GET /home?request_id=K, distinct K, paced,
    each bounded in count and time; every failure is kept."""

    def __init__(self, stack, threads=2, per_thread=300, pause=0.02,
                 limit=60):
        self.port = stack.port
        self.failures = []
        self.served = []
        self.times = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(
            target=self._run, args=(i * 100000, per_thread, pause, limit))
            for i in range(threads)]
        for t in self.threads:
            t.start()

    def _run(self, offset, count, pause, limit):
        deadline = time.monotonic() + limit
        for k in range(offset, offset + count):
            if time.monotonic() > deadline:
                return
            t = time.monotonic()
            try:
                r = e2e.get(self.port, "/home?request_id=%d" % k, timeout=10)
                ok = r.status == 200
                what = (r.status, r.body[:300]) if not ok else \
                    r.header("X-Served-By")
            except (OSError, http.client.HTTPException) as e:
                ok, what = False, repr(e)
            with self.lock:
                self.times.append(t)
                if ok:
                    self.served.append(what)
                else:
                    self.failures.append((k, what))
            time.sleep(pause)

    def join(self, timeout):
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self.threads)


@pytest.mark.timeout(180, func_only=True)
def test_killed_replica_container_comes_back(stack):
    settle(stack)
    old = ours_by_name()
    load = PacedLoad(stack)
    time.sleep(1.0)
    t_kill = time.monotonic()
    docker("kill", old["server-2"])
    new = wait_until(lambda: (lambda c: c if c.get("server-2") not in
                              (None, old["server-2"]) else None)(
        ours_by_name()), 60, "a new container for server-2")
    t_ctr = time.monotonic()
    wait_healthy(stack, 3, timeout=60)
    t_healed = time.monotonic()
    load.join(90)
    during = sum(1 for t in load.times if t_kill <= t <= t_healed)
    stack.say("docker kill of server-2: new container running after %.2f s, "
              "/heartbeat 3 healthy after %.2f s (heal time); %d requests, "
              "%d of them in between, %d failed"
              % (t_ctr - t_kill, t_healed - t_kill, len(load.times), during,
                 len(load.failures)))
    assert load.failures == []
    assert len(load.served) >= 500
    # the same name, a new container, under the same container name
    assert sorted(new) == ORIGINALS
    assert new["server-2"] != old["server-2"]
    assert new["server-1"] == old["server-1"]
    assert new["server-3"] == old["server-3"]
    assert rep(stack) == ORIGINALS
    wait_containers(ORIGINALS, timeout=30)      # the old one is gone
    names = {r: n for _, _, r, n in ours()}
    assert names["server-2"] == PREFIX + "server-2"
    # and it serves its keys again
    k = key_of(stack, "server-2")
    r = call(stack, "GET", "/home?request_id=%s" % k)
    assert r.status == 200 and r.header("X-Served-By") == "server-2", r.body
    assert r.json()["message"] == "Hello from Server: server-2"


@pytest.mark.timeout(360, func_only=True)
def test_ringlb_killed_and_up_again_adopts(stack):
    settle(stack)
    r = call(stack, "POST", "/add", {"n": 2, "hostnames": ["Kept 1"]})
    assert r.status == 200, r.body
    want = ["Kept 1"] + ORIGINALS + ["server-4"]
    want.sort()
    assert r.json()["message"] == {"N": 5, "replicas": want}
    wait_healthy(stack, 5)
    before = ours_by_name()
    assert sorted(before) == want
    lb = ringlb_container()
    assert sorted(state_file(lb)) == want

    docker("kill", lb)
    assert docker("inspect", "-f", "{{.State.Running}}", lb).strip() == \
        "false"
    saved = state_file(lb)
    assert sorted(saved) == want
    # the replicas outlive their ringlb
    assert ours_by_name() == before

    t0 = time.monotonic()
    took, out = stack.must_make("up-detached", UP_TIMEOUT)
    wait_healthy(stack, 5, timeout=120)
    stack.say("ringlb killed; make up-detached: %.1f s; 5 healthy %.1f s "
              "after the make began" % (took, time.monotonic() - t0))
    assert "onflict" not in out and "already in use" not in out, out
    # the same container, started again (its state file with it)
    assert ringlb_container() == lb, (
        "compose made a new ringlb container (was %s rebuilt meanwhile?):\n%s"
        % (IMAGE, out))
    # the set the state file named, each in the container it had
    assert rep(stack) == sorted(saved)
    every = ours(all_states=True)
    assert sorted(r_ for _, _, r_, _ in every) == want, every   # no orphan
    assert all(s == "running" for _, s, _, _ in every), every
    assert ours_by_name() == before
    log = stack.ringlb_log()
    second = log[log.rfind("ringlb listening on"):]
    for name in want:
        assert "replica %s: adopting its running container" % name in \
            second, second
    assert "onflict" not in second and "removing container" not in second, \
        second
    # traffic flows, by the same ring
    for k in range(30):
        owner = call(stack, "GET", "/map_request?id=%d" % k).json()[
            "mapped_server"]
        a = call(stack, "GET", "/home?request_id=%d" % k)
        assert a.status == 200, a.body
        assert a.header("X-Served-By") == owner
        assert a.json()["message"] == "Hello from Server: %s" % owner
    # back to the three
    r = call(stack, "DELETE", "/rm", {"n": 2,
                                      "hostnames": ["Kept 1", "server-4"]})
    assert r.status == 200, r.body
    assert r.json()["message"] == {"N": 3, "replicas": ORIGINALS}
    wait_containers(ORIGINALS, timeout=60)


@pytest.mark.timeout(90, func_only=True)
def test_healthcheck_says_healthy(stack):
    lb = ringlb_container()
    t0 = time.monotonic()
    wait_until(lambda: docker("inspect", "-f", "{{.State.Health.Status}}",
                              lb).strip() == "healthy", 45,
               "ringlb's container healthy", step=0.5)
    stack.say("ringlb's container healthy %.1f s into the wait (started "
              "at %s)" % (time.monotonic() - t0, docker(
                  "inspect", "-f", "{{.State.StartedAt}}", lb).strip()))
    # the image's HEALTHCHECK holds for the replica containers too
    ids = sorted(ours_by_name().values())
    assert len(ids) == 3
    wait_until(lambda: docker("inspect", "-f", "{{.State.Health.Status}}",
                              *ids).split() == ["healthy"] * 3, 30,
               "the replica containers healthy", step=0.5)


@pytest.mark.timeout(DOWN_TIMEOUT + 60, func_only=True)
def test_make_down_leaves_nothing(stack):
    """Last in the file: make down removes ringlb, its replica containers
    and the network (the fixture's teardown checks it again)."""
    assert ours(), "nothing running before make down"
    stack.save_log()
    code, took, out = stack.down()
    stack.say("make down: %.1f s" % took)
    assert code == 0, out
    # ringlb removed its replica containers itself on the way out; the
    # Makefile's safety net found nothing to do
    assert "removing the containers left" not in out, out
    assert stack.leftovers() == []
