"""ringlb-replica answers exactly as the spec says."""
import json
import os
import resource
import socket
import subprocess
import threading
import time

import pytest

from conftest import REPLICA, free_port, get, request, rss_kb


@pytest.fixture(autouse=True)
def replica_exits_cleanly(request):
    """Each replica a test started exits 0 on SIGTERM, and (in a sanitizer
    build) without a report."""
    if "procs" not in request.fixturenames:
        yield
        return
    procs = request.getfixturevalue("procs")
    yield
    procs.stop_all()
    for args, code, log in procs.exit_codes:
        if REPLICA not in args:
            continue
        with open(log, errors="replace") as f:
            text = f.read()
        assert "Sanitizer" not in text and "runtime error" not in text, \
            text[-3000:]
        assert code == 0, (args, code, text[-3000:])


def test_home_heartbeat_and_404(procs):
    rep = procs.replica("server-7")
    r = get(rep.port, "/home")
    assert r.status == 200
    assert r.json() == {"message": "Hello from Server: server-7", "status": "successful"}
    assert r.header("Content-Type") == "application/json"

    r = get(rep.port, "/heartbeat")
    assert r.status == 200
    assert r.body == b""

    r = get(rep.port, "/other/x")
    assert r.status == 404
    assert r.json() == {
        "message": "<Error> '/other/x' endpoint does not exist in server replicas",
        "status": "failure",
    }


def test_id_from_environment(procs):
    port = free_port()
    procs.start([REPLICA, "--listen", "127.0.0.1:%d" % port], port,
                env={"SERVER_ID": "env-3"}, name="replica")
    assert get(port, "/home").json()["message"] == "Hello from Server: env-3"


def test_wrong_method_on_home(procs):
    rep = procs.replica("a")
    r = request(rep.port, "POST", "/home", body=b"{}")
    assert r.status == 405
    assert r.header("Allow") == "GET, HEAD"
    assert r.json()["status"] == "failure"


def test_missing_id_is_an_error(procs, tmp_path):
    out = subprocess.run([REPLICA, "--listen", "127.0.0.1:%d" % free_port()],
                         capture_output=True, text=True, timeout=5,
                         env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 2
    assert "SERVER_ID" in out.stderr


# --- limits: what a client may send the replica, and for how long ---------


# a sanitizer's allocator keeps memory of its own (freed buffers wait in
# its quarantine): memory is measured only without one
MEASURE_RSS = not os.environ.get("RINGLB_TEST_SANITIZED")


def exchange(port, data, timeout=10.0):
    """Send data on a fresh connection; all bytes until the server closes
    (or timeout)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        try:
            s.sendall(data)
        except OSError:
            pass                # refused early: read what it said
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def status_line(raw):
    return raw.split(b"\r\n", 1)[0]


def status_of(raw):
    assert raw.startswith(b"HTTP/1."), raw[:200]
    return int(raw.split(b" ", 2)[1])


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


H = b"Host: x\r\n"
VERSIONS = [
    # (version, status): a well-formed HTTP/x.y other than 1.0 and 1.1 is
    # 505; anything else malformed is 400.  Neither is echoed back.
    (b"HTTP/1.11", 400),
    (b"HTTP/-1.1", 400),
    (b"HTTP/1.1x", 400),
    (b"HTTP/01.1", 400),
    (b"HTTP/1.", 400),
    (b"HTTP/", 400),
    (b"http/1.1", 400),
    (b"HTTP/1.1 ", 200),        # a trailing space is tolerated
    (b"HTTP/1.9", 505),
    (b"HTTP/2.0", 505),
    (b"HTTP/0.9", 505),
    (b"HTTP/9.9", 505),
]


@pytest.mark.parametrize("version,status", VERSIONS,
                         ids=[v[0].decode() for v in VERSIONS])
def test_bad_http_version(procs, version, status):
    rep = procs.replica("v")
    raw = exchange(rep.port, b"GET /home " + version + b"\r\n" + H + b"\r\n",
                   timeout=5)
    assert status_of(raw) == status, raw[:300]
    # never echoed: the answer's version is the replica's own
    assert status_line(raw).split(b" ", 1)[0] == b"HTTP/1.1", raw[:300]
    if status != 200:
        assert b"connection: close" in raw.lower()
        assert json.loads(raw.split(b"\r\n\r\n", 1)[1])["status"] == "failure"
    # the replica goes on serving
    assert get(rep.port, "/heartbeat").status == 200


LIMITS = [
    # (what, raw request, status)
    ("request line over 8 KiB",
     b"GET /home?q=" + b"a" * 9000 + b" HTTP/1.1\r\n" + H + b"\r\n", 414),
    ("one header line over the head limit",
     b"GET /home HTTP/1.1\r\n" + H + b"X-Big: " + b"a" * 70000 + b"\r\n\r\n",
     431),
    ("many header lines over the head limit",
     b"GET /home HTTP/1.1\r\n" + H +
     b"".join(b"X-%d: %s\r\n" % (i, b"b" * 1000) for i in range(80)) +
     b"\r\n", 431),
    ("too many header lines",
     b"GET /home HTTP/1.1\r\n" + H +
     b"".join(b"X-%d: 1\r\n" % i for i in range(300)) + b"\r\n", 431),
    ("Content-Length over the body limit",
     b"POST /home HTTP/1.1\r\n" + H + b"Content-Length: 100000000\r\n\r\n",
     413),
    ("chunked body over the body limit",
     b"POST /home HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
     b"8000000\r\n" + b"c" * 1000, 413),
    ("Content-Length not a number",
     b"POST /home HTTP/1.1\r\n" + H + b"Content-Length: 1x\r\n\r\n", 400),
    ("two Content-Lengths",
     b"POST /home HTTP/1.1\r\n" + H +
     b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400),
]


@pytest.mark.parametrize("what,raw,status", LIMITS, ids=[x[0] for x in LIMITS])
def test_limits_refuse_and_close(procs, what, raw, status):
    rep = procs.replica("l")
    got = exchange(rep.port, raw, timeout=5)
    assert status_of(got) == status, got[:300]
    assert b"connection: close" in got.lower()
    assert json.loads(got.split(b"\r\n\r\n", 1)[1])["status"] == "failure"
    assert get(rep.port, "/heartbeat").status == 200


def test_body_within_the_limit_is_read(procs):
    """A body under the limit is read and answered (405 on /home), and the
    connection stays usable."""
    rep = procs.replica("b")
    r = request(rep.port, "POST", "/home", body=b"x" * (1 << 20))
    assert r.status == 405
    r = request(rep.port, "POST", "/other", body=b"x" * (1 << 20))
    assert r.status == 404


def test_huge_header_line_is_not_buffered(procs):
    """A 150 MB header line: refused once past the head limit, never held
    whole; the replica answers its heartbeats all along and its memory
    stays low."""
    rep = procs.replica("h")
    base_kb = rss_kb(rep.pid)
    s = socket.create_connection(("127.0.0.1", rep.port), timeout=30)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    sent = [0]
    done = threading.Event()
    answer = []

    def send():
        chunk = b"a" * (1 << 20)
        try:
            s.sendall(b"GET /home HTTP/1.1\r\nHost: x\r\nX-Big: ")
            deadline = time.monotonic() + 40
            while sent[0] < 150 << 20 and time.monotonic() < deadline:
                s.sendall(chunk)
                sent[0] += len(chunk)
            s.sendall(b"\r\n\r\n")
        except OSError:
            pass
        finally:
            done.set()

    def read():
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                answer.append(b)
        except OSError:
            pass

    t = threading.Thread(target=send)
    r = threading.Thread(target=read)
    t.start()
    r.start()
    t_end = time.monotonic() + 45
    try:
        while not done.is_set() and time.monotonic() < t_end:
            assert get(rep.port, "/heartbeat", timeout=5).status == 200
            time.sleep(0.2)
    finally:
        t.join(60)
        s.close()
        r.join(10)
    raw = b"".join(answer)
    assert raw, "no answer to the 150 MB header line"
    assert status_of(raw) == 431, raw[:300]
    assert get(rep.port, "/heartbeat", timeout=5).status == 200
    if MEASURE_RSS:
        peak = rss_kb(rep.pid, "VmHWM")
        assert peak - base_kb < 40 * 1024, (base_kb, peak)
        assert rss_kb(rep.pid) - base_kb < 20 * 1024


def test_silent_connection_is_closed(procs):
    """A connection that never sends a byte is closed at the default head
    timeout (10 s), without an answer."""
    rep = procs.replica("s")
    s = socket.create_connection(("127.0.0.1", rep.port), timeout=30)
    t0 = time.monotonic()
    try:
        assert s.recv(100) == b""
    finally:
        s.close()
    assert time.monotonic() - t0 < 25


def test_slow_head_gets_408(procs):
    """A head dribbled in a byte at a time is cut off at --header-timeout
    however often its bytes come."""
    port = free_port()
    procs.start([REPLICA, "--id", "slow", "--listen", "127.0.0.1:%d" % port,
                 "--header-timeout", "2"], port, name="replica")
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    t0 = time.monotonic()
    got = b""
    try:
        for ch in b"GET /home HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 100:
            try:
                s.sendall(bytes([ch]))
            except OSError:
                break
            time.sleep(0.2)
            if time.monotonic() - t0 > 15:
                break
        s.settimeout(5)
        while True:
            try:
                b = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not b:
                break
            got += b
    finally:
        s.close()
    assert status_of(got) == 408, got[:300]
    assert time.monotonic() - t0 < 12


def test_idle_keepalive_connection_is_closed(procs):
    """After an answer, an idle keep-alive connection is closed at
    --keepalive-timeout; before it, it is reused."""
    port = free_port()
    procs.start([REPLICA, "--id", "idle", "--listen", "127.0.0.1:%d" % port,
                 "--keepalive-timeout", "2"], port, name="replica")
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    try:
        for _ in range(2):
            s.sendall(b"GET /heartbeat HTTP/1.1\r\nHost: x\r\n\r\n")
            got = s.recv(65536)
            assert status_of(got) == 200
            time.sleep(1)
        t0 = time.monotonic()
        assert s.recv(100) == b""
        assert time.monotonic() - t0 < 8
    finally:
        s.close()


def test_help_lists_the_limits():
    out = subprocess.run([REPLICA, "--help"], capture_output=True, text=True,
                         timeout=5)
    assert out.returncode == 0
    for flag in ("--max-header", "--max-body", "--header-timeout",
                 "--client-timeout", "--keepalive-timeout",
                 "--max-connections"):
        assert flag in out.stdout, flag


@pytest.mark.parametrize("argv", [
    ["--max-header", "10"], ["--max-body", "0"], ["--header-timeout", "0"],
    ["--keepalive-timeout", "x"], ["--max-connections", "-1"],
])
def test_bad_limit_flags(argv):
    out = subprocess.run([REPLICA, "--id", "x", "--listen",
                          "127.0.0.1:%d" % free_port()] + argv,
                         capture_output=True, text=True, timeout=5)
    assert out.returncode == 2
    assert argv[0] in out.stderr


def test_descriptor_limit_no_spin(procs):
    """1,000 connections against ulimit -n 64: the replica neither spins nor
    floods its log, and serves again once the connections are gone."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        if hard < 1200 and hard != resource.RLIM_INFINITY:
            pytest.skip("this test needs 1,200 descriptors (ulimit -n)")
        resource.setrlimit(resource.RLIMIT_NOFILE, (1200, hard))
    port = free_port()
    rep = procs.start(["sh", "-c", 'ulimit -n 64 && exec "$0" "$@"', REPLICA,
                       "--id", "fd", "--listen", "127.0.0.1:%d" % port],
                      port, name="replica")
    socks = []
    try:
        for _ in range(1000):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", port))
            socks.append(c)
        time.sleep(1)
        cpu0 = cpu_seconds(rep.pid)
        time.sleep(4)
        used = cpu_seconds(rep.pid) - cpu0
        assert used < 1.5, "%.2f s of CPU in 4 s" % used
        assert rep.poll() is None
    finally:
        for c in socks:
            c.close()
    deadline = time.monotonic() + 30
    while True:
        try:
            if get(port, "/heartbeat", timeout=2).status == 200:
                break
        except OSError:
            pass
        assert time.monotonic() < deadline, "no answer after the flood"
        time.sleep(0.2)
    with open(rep.log_path, "rb") as f:
        lines = f.read().splitlines()
    assert len(lines) < 20, lines[:5] + lines[-5:]
    assert any(b"descriptor" in l or b"open files" in l for l in lines), lines


def test_serves_on_a_given_listening_socket(tmp_path):
    """--listen-fd: the process backend's way, the socket bound and
    listening before the replica starts, so no one can take the port."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    port = s.getsockname()[1]
    p = subprocess.Popen([REPLICA, "--id", "fd", "--listen-fd", str(s.fileno())],
                         pass_fds=(s.fileno(),), stderr=subprocess.PIPE, text=True)
    s.close()
    try:
        r = get(port, "/home")
        assert r.status == 200 and r.json()["message"] == "Hello from Server: fd"
    finally:
        p.terminate()
        _, err = p.communicate(timeout=10)
    assert "listening on 127.0.0.1:%d" % port in err, err


@pytest.mark.parametrize("argv,message", [
    (["--listen-fd", "0"], "a descriptor number, 3 or more"),
    (["--listen-fd", "x"], "a descriptor number, 3 or more"),
    (["--listen-fd", "9"], "--listen-fd 9 is not a listening TCP socket"),
    (["--listen-fd", "9", "--listen", "127.0.0.1:1"], "not both"),
])
def test_bad_listen_fd(argv, message):
    out = subprocess.run([REPLICA, "--id", "x"] + argv, capture_output=True,
                         text=True, timeout=10)
    assert out.returncode == 2, out
    assert message in out.stderr, out.stderr


def test_bound_but_not_listening_socket_is_refused():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    out = subprocess.run([REPLICA, "--id", "x", "--listen-fd", str(s.fileno())],
                         pass_fds=(s.fileno(),), capture_output=True, text=True,
                         timeout=10)
    s.close()
    assert out.returncode == 2 and "not a listening TCP socket" in out.stderr, out
