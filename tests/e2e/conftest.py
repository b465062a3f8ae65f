"""Helpers for the end-to-end tests: real binaries on free loopback ports.

Every process a test starts is stopped by pid when the test ends.
"""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("RINGLB_BUILD", os.path.join(ROOT, "build"))
RINGLB = os.path.join(BUILD, "ringlb")
REPLICA = os.path.join(BUILD, "ringlb-replica")
UPSTREAM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "upstream.py")
BADREPLICA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "badreplica.py")
BULKREPLICA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bulkreplica.py")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("process exited with %s before listening on %d"
                               % (proc.returncode, port))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("nothing listening on port %d after %.1fs" % (port, timeout))


def wait_healthy(port, want, timeout=10.0):
    """Poll ringlb's /heartbeat until `want` replicas are on the ring."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = get(port, "/heartbeat", timeout=2).json()
            if last["healthy"] == want:
                return last
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    raise RuntimeError("ringlb on %d: %d healthy replicas wanted, last saw %s"
                       % (port, want, last))


class Procs:
    """Processes started by one test, stopped by pid at its end."""

    def __init__(self, tmp_path):
        self.procs = []
        self.tmp = tmp_path

    def start(self, argv, port=None, env=None, name="proc"):
        log = open(os.path.join(self.tmp, "%s-%d.log" % (name, len(self.procs))), "wb")
        full_env = dict(os.environ)
        # the suite's own settings, and RINGLB_WORKERS: the suite runs
        # at the default and again at other worker counts
        for k in list(full_env):
            if k.startswith("RINGLB_") and not k.startswith("RINGLB_TEST_") \
                    and k != "RINGLB_WORKERS":
                del full_env[k]
        full_env.update(env or {})
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=full_env)
        p.log_path = log.name
        self.procs.append(p)
        if port is not None:
            wait_port(port, p)
        return p

    def _server(self, name, argv):
        """Start a backend on a free port; argv(port) builds its command."""
        port = free_port()
        p = self.start(argv(port), port, name=name)
        p.port = port
        p.name = name
        return p

    def replica(self, name):
        return self._server(name, lambda port: [
            REPLICA, "--id", name, "--listen", "127.0.0.1:%d" % port])

    def upstream(self, name):
        return self._server(name, lambda port: [
            sys.executable, UPSTREAM, "--port", str(port), "--name", name])

    def badreplica(self, name):
        return self._server(name, lambda port: [
            sys.executable, BADREPLICA, "--port", str(port)])

    def ringlb(self, backends=(), *extra, env=None, healthy=None, port=None):
        """Start ringlb with static backends (or, with none, the process
        backend) and wait until `healthy` replicas (default: every static
        one) are on the ring."""
        port = port or free_port()
        argv = [RINGLB, "--listen", "127.0.0.1:%d" % port]
        for b in backends:
            argv += ["--replica", "%s=127.0.0.1:%d" % (b.name, b.port)]
        argv += list(extra)
        # e.g. RINGLB_TEST_WRAPPER="valgrind --error-exitcode=99"
        wrapper = os.environ.get("RINGLB_TEST_WRAPPER", "").split()
        p = self.start(wrapper + argv, port, env=env, name="ringlb")
        p.port = port
        want = len(backends) if healthy is None else healthy
        if want:
            wait_healthy(port, want)
        return p

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.exit_codes = [(p.args, p.returncode, p.log_path) for p in self.procs]


@pytest.fixture
def procs(tmp_path):
    ps = Procs(str(tmp_path))
    yield ps
    ps.stop_all()
    # ringlb must exit cleanly on SIGTERM (and, under a checking wrapper
    # such as valgrind, without errors)
    for args, code, log in ps.exit_codes:
        if RINGLB in args and code not in (0, -signal.SIGKILL):
            with open(log, errors="replace") as f:
                tail = f.read()[-3000:]
            pytest.fail("ringlb exited with %s:\n%s" % (code, tail))


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self):
        return json.loads(self.body)


def request(port, method, path, body=None, headers=None, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return Response(r.status, r.getheaders(), r.read())
    finally:
        conn.close()


def get(port, path, **kw):
    return request(port, "GET", path, **kw)


def rss_kb(pid, field="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError("no %s for %d" % (field, pid))


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


WRAPPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "replica-wrapper.sh")


def alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def children(pid):
    """{replica id: pid} of the live ringlb-replica children of pid."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read().rsplit(")", 1)[1].split()
            if int(stat[1]) != pid or stat[0] == "Z":
                continue
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"--id" in argv:
            out[argv[argv.index(b"--id") + 1].decode()] = int(entry)
    return out


def wait_for(cond, timeout=5.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))


def rep_names(port):
    body = get(port, "/rep").json()
    assert body["status"] == "successful"
    assert body["message"]["N"] == len(body["message"]["replicas"])
    return body["message"]["replicas"]


def post_json(port, path, obj, method="POST", headers=None):
    body = obj if isinstance(obj, (bytes, str)) else json.dumps(obj)
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    return request(port, method, path, body=body, headers=h)


class Load:
    """Client threads sending GET /home?request_id=K (distinct K) until
    stopped; every answer is recorded."""

    def __init__(self, port, threads=4, per_thread=20000):
        self.port = port
        self.failures = []
        self.served = []
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i * 100000, per_thread))
                        for i in range(threads)]
        for t in self.threads:
            t.start()

    def _run(self, offset, count):
        for k in range(offset, offset + count):
            if self.stop_event.is_set():
                return
            try:
                r = get(self.port, "/home?request_id=%d" % k)
            except OSError as e:	# reset, refused, timed out
                self.failures.append((k, "error", str(e)))
                continue
            if r.status != 200:
                self.failures.append((k, r.status, r.body))
            self.served.append(r.header("X-Served-By"))

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(30)
