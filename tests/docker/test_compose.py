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
import re
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
ORIGINALS = ["Server 1", "Server 2", "Server 3"]
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


def cname(replica):
    """The container name of a replica: the prefix and its name, each
    space as '-'."""
    return PREFIX + replica.replace(" ", "-")


def curl_d(stack, method, path, body, timeout=60):
    """What `curl -X METHOD localhost:5000/path -d 'BODY'` sends: the body
    as given, with curl's form content type."""
    return e2e.request(stack.port, method, path, body=body.encode(),
                       headers={"Content-Type":
                                "application/x-www-form-urlencoded"},
                       timeout=timeout)


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
    """Back to where every test starts: Server 1..3, healthy, and their
    containers only (a test that failed half-way may have left more, or
    fewer)."""
    names = rep(stack)
    extra = [n for n in names if n not in ORIGINALS]
    if extra:
        r = call(stack, "DELETE", "/rm", {"n": len(extra),
                                          "hostnames": extra})
        assert r.status == 200, r.body
    missing = [n for n in ORIGINALS if n not in names]
    if missing:
        r = call(stack, "POST", "/add", {"n": len(missing),
                                         "hostnames": missing}, timeout=120)
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
    """make up-detached: ringlb and Server 1..3, one container each, named
    after them."""
    assert rep(stack) == ORIGINALS
    c = ours_by_name()
    assert sorted(c) == ORIGINALS
    names = {r: n for _, _, r, n in ours()}
    assert names == {r: cname(r) for r in ORIGINALS}
    assert cname("Server 1") == PREFIX + "Server-1"
    # each answers to its alias on the network, a DNS name
    for r in ORIGINALS:
        nets = json.loads(docker("inspect", "-f",
                                 "{{json .NetworkSettings.Networks}}", c[r]))
        assert r.lower().replace(" ", "-") in nets[NETWORK]["Aliases"], nets
    assert docker("inspect", "-f", "{{.State.Running}}",
                  ringlb_container()).strip() == "true"


@pytest.mark.timeout(300, func_only=True)
def test_seed_flows_from_the_host(stack):
    """The seed's flows, verbatim, against `docker-compose up`: its
    replicas are Server 1..3, its README removes Server 1 by name and
    adds Server 4."""
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

    # the seed README's DELETE /rm of Server 1
    r = curl_d(stack, "DELETE", "/rm", '{"n": 1, "hostnames": ["Server 1"]}')
    assert r.status == 200, r.body
    assert r.json() == {"message": {"N": 2, "replicas": ORIGINALS[1:]},
                        "status": "successful"}
    t0 = time.monotonic()
    wait_containers(ORIGINALS[1:], timeout=60)
    stack.say("/rm: the container gone after %.2f s" % (time.monotonic() - t0))

    # and its POST /add of Server 4
    t0 = time.monotonic()
    r = curl_d(stack, "POST", "/add", '{"n": 1, "hostnames": ["Server 4"]}')
    assert r.status == 200, r.body
    stack.say("/add of 1 container: %.2f s" % (time.monotonic() - t0))
    want = ["Server 2", "Server 3", "Server 4"]
    assert r.json() == {"message": {"N": 3, "replicas": want},
                        "status": "successful"}
    assert sorted(ours_by_name()) == want
    names = {r_: n for _, _, r_, n in ours()}
    assert names == {r_: cname(r_) for r_ in want}
    assert names["Server 4"] == PREFIX + "Server-4"
    wait_healthy(stack, 3)

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

    # the seed's other example: three named, a fourth generated (the
    # smallest free number: Server 1)
    r = curl_d(stack, "POST", "/add",
               '{"n": 4, "hostnames": ["S5", "S4", "S6"]}', timeout=120)
    assert r.status == 200, r.body
    assert r.json()["message"] == {
        "N": 7, "replicas": ["S4", "S5", "S6"] + ORIGINALS + ["Server 4"]}
    assert sorted(ours_by_name()) == sorted(
        ["S4", "S5", "S6", "Server 4"] + ORIGINALS)
    r = curl_d(stack, "DELETE", "/rm", '{"n": 3, "hostnames": ["S5", "S4"]}')
    assert r.status == 200, r.body
    # the third one is the newest: Server 1, the last of its /add
    assert r.json()["message"] == {
        "N": 4, "replicas": ["S6", "Server 2", "Server 3", "Server 4"]}
    r = curl_d(stack, "DELETE", "/rm",
               '{"n": 2, "hostnames": ["S6", "Server 4"]}')
    assert r.status == 200, r.body
    r = curl_d(stack, "POST", "/add", '{"n": 1, "hostnames": ["Server 1"]}')
    assert r.status == 200, r.body
    assert r.json()["message"] == {"N": 3, "replicas": ORIGINALS}
    wait_containers(ORIGINALS, timeout=60)
    wait_healthy(stack, 3)

    # error bodies, and nothing changed
    r = curl_d(stack, "POST", "/add",
               '{"n": 2, "hostnames": ["S5", "S4", "S6"]}')
    assert r.status == 400, r.body
    assert r.json() == {"message": "<Error> Length of hostname list is more "
                        "than newly added instances", "status": "failure"}
    r = curl_d(stack, "DELETE", "/rm",
               '{"n": 2, "hostnames": ["S5", "S4", "S6"]}')
    assert r.status == 400, r.body
    assert r.json() == {"message": "<Error> Length of hostname list is more "
                        "than removable instances", "status": "failure"}
    # a name that would take Server 1's container is refused by name
    r = curl_d(stack, "POST", "/add", '{"n": 1, "hostnames": ["Server-1"]}')
    assert r.status == 400, r.body
    assert r.json()["message"] == (
        "<Error> replica name 'Server-1' would take the container name "
        "%sServer-1, which is replica 'Server 1''s; choose another name"
        % PREFIX)
    assert rep(stack) == ORIGINALS
    assert sorted(ours_by_name()) == ORIGINALS


@pytest.mark.timeout(120, func_only=True)
def test_admin_from_replica_is_forbidden(stack):
    settle(stack)
    before = ours_by_name()
    script = ('exec 3<>/dev/tcp/ringlb/5000; printf "POST /add HTTP/1.1\\r\\n'
              'Host: ringlb\\r\\nContent-Length: 8\\r\\nConnection: close\\r\\n'
              '\\r\\n{\\"n\\": 1}" >&3; cat <&3')
    r = subprocess.run(["docker", "exec", before["Server 1"], "bash", "-c",
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
    docker("kill", old["Server 2"])
    new = wait_until(lambda: (lambda c: c if c.get("Server 2") not in
                              (None, old["Server 2"]) else None)(
        ours_by_name()), 60, "a new container for Server 2")
    t_ctr = time.monotonic()
    wait_healthy(stack, 3, timeout=60)
    t_healed = time.monotonic()
    load.join(90)
    during = sum(1 for t in load.times if t_kill <= t <= t_healed)
    stack.say("docker kill of Server 2: new container running after %.2f s, "
              "/heartbeat 3 healthy after %.2f s (heal time); %d requests, "
              "%d of them in between, %d failed"
              % (t_ctr - t_kill, t_healed - t_kill, len(load.times), during,
                 len(load.failures)))
    assert load.failures == []
    assert len(load.served) >= 500
    # the same name, a new container, under the same container name
    assert sorted(new) == ORIGINALS
    assert new["Server 2"] != old["Server 2"]
    assert new["Server 1"] == old["Server 1"]
    assert new["Server 3"] == old["Server 3"]
    assert rep(stack) == ORIGINALS
    wait_containers(ORIGINALS, timeout=30)      # the old one is gone
    names = {r: n for _, _, r, n in ours()}
    assert names["Server 2"] == PREFIX + "Server-2"
    # and it serves its keys again
    k = key_of(stack, "Server 2")
    r = call(stack, "GET", "/home?request_id=%s" % k)
    assert r.status == 200 and r.header("X-Served-By") == "Server 2", r.body
    assert r.json()["message"] == "Hello from Server: Server 2"


@pytest.mark.timeout(360, func_only=True)
def test_ringlb_killed_and_up_again_adopts(stack):
    settle(stack)
    r = call(stack, "POST", "/add", {"n": 2, "hostnames": ["Kept 1"]})
    assert r.status == 200, r.body
    want = ["Kept 1"] + ORIGINALS + ["Server 4"]
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
    assert ("docker: found 5 containers labelled ringlb.owner=%s, left by an "
            "earlier ringlb: 5 adopted, 0 replaced, 0 removed" % OWNER) in \
        second, second
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
                                      "hostnames": ["Kept 1", "Server 4"]})
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


def compose_cmd():
    """docker-compose, or `docker compose` where only v2 is there (as the
    Makefile chooses)."""
    r = subprocess.run(["docker", "compose", "version"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=20)
    return ["docker", "compose"] if r.returncode == 0 else ["docker-compose"]


def plain_compose(stack, *args, timeout=180, env=None):
    """Plain docker-compose in the checkout, as a user types it (with the
    suite's settings in the environment); (exit code, output)."""
    r = subprocess.run(compose_cmd() + list(args), cwd=ROOT,
                       env=env or stack.env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=timeout)
    return r.returncode, r.stdout


@pytest.mark.timeout(60, func_only=True)
def test_compose_project_is_ringlb_whatever_the_folder(stack):
    """Without COMPOSE_PROJECT_NAME, plain docker-compose in a checkout of
    any name uses the project ringlb (.env), so that ringlb's container is
    ringlb_ringlb_1 (v1) or ringlb-ringlb-1 (v2), not <folder>_ringlb_1.
    Only asked of compose (--verbose ps), nothing is created."""
    assert os.path.basename(ROOT) != "ringlb"
    env = {k: v for k, v in stack.env.items() if k != "COMPOSE_PROJECT_NAME"}
    args = ["--verbose", "ps"] if compose_cmd() == ["docker-compose"] else \
        ["config"]
    code, out = plain_compose(stack, *args, env=env, timeout=60)
    assert code == 0, out
    if compose_cmd() == ["docker-compose"]:
        projects = set(re.findall(r"com\.docker\.compose\.project=([^,\"' ]+)",
                                  out))
        assert projects == {"ringlb"}, out[-2000:]
    else:
        assert re.search(r"^name: ringlb$", out, re.M), out
    # the environment (and so make's COMPOSE_PROJECT_NAME) still wins
    if compose_cmd() == ["docker-compose"]:
        code, out = plain_compose(stack, "--verbose", "ps", timeout=60)
        assert set(re.findall(r"com\.docker\.compose\.project=([^,\"' ]+)",
                              out)) == {PROJECT}, out[-2000:]


@pytest.mark.timeout(300, func_only=True)
def test_stop_then_start_brings_the_set_back(stack):
    """make stop: ringlb stops and removes its replica containers, its own
    container stays with the state file; make start brings the same set
    back, in new containers, and traffic flows by the same ring."""
    settle(stack)
    r = curl_d(stack, "POST", "/add", '{"n": 1, "hostnames": ["Server 4"]}')
    assert r.status == 200, r.body
    want = ORIGINALS + ["Server 4"]
    wait_healthy(stack, 4)
    owners = {k: call(stack, "GET", "/map_request?id=%d" % k).json()[
        "mapped_server"] for k in range(30)}
    before = ours_by_name()
    lb = ringlb_container()

    t0 = time.monotonic()
    took, out = stack.must_make("stop", DOWN_TIMEOUT)
    stack.say("make stop: %.1f s" % took)
    assert docker("inspect", "-f", "{{.State.Running}}", lb).strip() == \
        "false"
    # ringlb removed its replicas on the way out
    assert ours(all_states=True) == []
    assert sorted(state_file(lb)) == want
    assert network_exists()

    took, out = stack.must_make("start", UP_TIMEOUT)
    wait_healthy(stack, 4, timeout=120)
    stack.say("make start: %.1f s; 4 healthy %.1f s after make stop began"
              % (took, time.monotonic() - t0))
    assert ringlb_container() == lb
    assert rep(stack) == want
    after = ours_by_name()
    assert sorted(after) == want
    assert not set(after.values()) & set(before.values())
    assert {r_: n for _, _, r_, n in ours()} == {r_: cname(r_) for r_ in want}
    for k, owner in owners.items():
        a = call(stack, "GET", "/home?request_id=%d" % k)
        assert a.status == 200 and a.header("X-Served-By") == owner, k
    log = stack.ringlb_log()
    second = log[log.rfind("ringlb listening on"):]
    assert "restoring 4 replicas from %s" % STATE_FILE in log[
        log.rfind("restoring"):], log[-3000:]
    assert "left by an earlier ringlb" not in second, second

    r = curl_d(stack, "DELETE", "/rm", '{"n": 1, "hostnames": ["Server 4"]}')
    assert r.status == 200, r.body
    wait_containers(ORIGINALS, timeout=60)


def _followers_left():
    """Processes of this suite's make logs still around (docker logs -f,
    docker events for our owner, the script)."""
    left = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        text = b" ".join(argv)
        if (b"docker/logs.sh" in text and OWNER.encode() in text) or \
                b"label=ringlb.owner=" + OWNER.encode() in text:
            left.append((int(entry), text.decode(errors="replace")))
    return left


@pytest.mark.timeout(180, func_only=True)
def test_logs_follow_the_replicas_labelled(stack):
    """make logs: ringlb's log and each replica's, every replica line
    labelled with its name, a replica added meanwhile too; Ctrl-C ends
    all of it."""
    settle(stack)
    lines = []
    lock = threading.Lock()
    p = subprocess.Popen(["make", "--no-print-directory", "logs"], cwd=ROOT,
                         env=stack.env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)

    def reader():
        for line in p.stdout:
            with lock:
                lines.append(line.rstrip("\n"))
    t = threading.Thread(target=reader, daemon=True)
    t.start()

    def seen(pred):
        with lock:
            return [l for l in lines if pred(l)]

    def replica_line(name):
        return lambda l: l.startswith("%-12s| " % name) and \
            "server %s listening on" % name in l
    try:
        wait_until(lambda: seen(lambda l: re.match(
            r"^ringlb[_-]1\s+\| .*ringlb listening on", l)), 60,
            "ringlb's own lines")
        for name in ORIGINALS:
            wait_until(lambda: seen(replica_line(name)), 60,
                       "%s's lines, labelled" % name)
        # one added while make logs runs is followed from its start
        r = curl_d(stack, "POST", "/add", '{"n": 1, "hostnames": ["Lab A"]}')
        assert r.status == 200, r.body
        wait_until(lambda: seen(replica_line("Lab A")), 60,
                   "Lab A's lines, labelled")
        # every line is ringlb's or a replica's, labelled
        with lock:
            for l in lines:
                assert re.match(r"^(ringlb[_-]1\s+\||Attaching to|"
                                r"(Server [123]|Lab A)\s+\| )", l), l
    finally:
        t0 = time.monotonic()
        try:
            os.killpg(p.pid, 2)             # Ctrl-C
        except ProcessLookupError:
            pass
        try:
            code = p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)
            p.wait()
            raise AssertionError("make logs did not end within 30 s of "
                                 "Ctrl-C")
        stack.say("make logs: ended %.1f s after Ctrl-C (exit %s), %d lines"
                  % (time.monotonic() - t0, code, len(lines)))
        wait_until(lambda: not _followers_left(), 20,
                   "make logs' followers gone")
        r = curl_d(stack, "DELETE", "/rm", '{"n": 1, "hostnames": ["Lab A"]}')
        assert r.status == 200, r.body
        wait_containers(ORIGINALS, timeout=60)


@pytest.mark.timeout(900, func_only=True)
def test_after_a_crash_every_path_says_what_it_does(stack):
    """A killed ringlb, then plain docker-compose down (which leaves the
    replicas and the network): the next start says what it did with them.
    A killed ringlb, then make down: no error printed.  make down from
    nothing, and make rebuild from nothing: nothing that looks like a
    failure."""
    settle(stack)
    docker("kill", ringlb_container())
    code, out = plain_compose(stack, "down")
    stack.say("plain docker-compose down after a killed ringlb: exit %d" %
              code)
    # compose removes ringlb but can neither stop the replicas nor
    # remove the network they are on
    assert sorted(r_ for _, _, r_, _ in ours(all_states=True)) == ORIGINALS
    assert network_exists()
    took, out = stack.must_make("up-detached", UP_TIMEOUT)
    wait_healthy(stack, 3, timeout=120)
    log = stack.ringlb_log()
    assert ("docker: found 3 containers labelled ringlb.owner=%s, left by an "
            "earlier ringlb: 0 adopted, 3 replaced, 0 removed" % OWNER) in \
        log, log[-3000:]
    for name in ORIGINALS:
        assert "replica %s: replacing its container " % name in log, log
    wait_containers(ORIGINALS, timeout=60)

    # killed again, then make down: quiet, and nothing left
    docker("kill", ringlb_container())
    code, took, out = stack.down()
    stack.say("make down after a killed ringlb: %.1f s, exit %s" % (took,
                                                                    code))
    assert code == 0, out
    for bad in ("active endpoints", "Error", "ignored", "not found",
                "rror response"):
        assert bad not in out, out
    assert "removing 3 replica container(s) labelled ringlb.owner=%s" % \
        OWNER in out, out
    assert stack.leftovers() == []

    # make down with nothing there
    code, took, out = stack.down()
    assert code == 0, out
    assert "nothing to take down" in out, out
    for bad in ("Error", "ignored", "not found"):
        assert bad not in out, out

    # make rebuild from nothing: down, build (cached), up-detached
    took, out = stack.must_make("rebuild", BUILD_TIMEOUT)
    stack.say("make rebuild from nothing: %.1f s" % took)
    for bad in ("Error", "ignored", "not found", "active endpoints"):
        assert bad not in out, out
    wait_healthy(stack, 3, timeout=120)
    wait_containers(ORIGINALS, timeout=60)
    assert rep(stack) == ORIGINALS


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
    assert "that ringlb did not remove itself" not in out, out
    assert "Error" not in out and "not found" not in out, out
    assert stack.leftovers() == []
