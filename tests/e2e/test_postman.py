"""docs/ringlb.postman_collection.json, run by newman (Postman's own
command-line runner) against a ringlb started as `make run` starts it:
every request and every test script in it must pass."""
import json
import os
import shutil
import socket
import subprocess
import threading
from urllib.parse import urlsplit

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
COLLECTION = os.path.join(ROOT, "docs", "ringlb.postman_collection.json")


def newman():
    local = os.path.join(os.environ.get("RINGLB_BUILD", os.path.join(ROOT, "build")),
                         "..", "newman", "node_modules", ".bin", "newman")
    for path in (os.path.join(ROOT, "build", "newman", "node_modules", ".bin", "newman"),
                 local, shutil.which("newman")):
        if path and os.access(path, os.X_OK):
            return path
    return None


def test_collection_is_postman_v2_1_and_covers_the_api():
    with open(COLLECTION) as f:
        c = json.load(f)
    assert c["info"]["schema"] == \
        "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
    # 127.0.0.1, as `make run` listens (IPv4): "localhost" can be ::1 first
    assert {"key": "baseUrl", "value": "http://127.0.0.1:5000"} in c["variable"]
    reqs = [i for folder in c["item"] for i in folder["item"]]
    seen = {(r["request"]["method"], "/" + "/".join(r["request"]["url"]["path"]))
            for r in reqs}
    for endpoint in (("GET", "/rep"), ("POST", "/add"), ("DELETE", "/rm"),
                     ("GET", "/map_request"), ("GET", "/heartbeat"),
                     ("GET", "/metrics"), ("GET", "/home"), ("GET", "/status"),
                     ("GET", "/dashboard")):
        assert endpoint in seen, endpoint
    for r in reqs:
        assert r["request"]["url"]["raw"].startswith("{{baseUrl}}/")
        tests = [e for e in r["event"] if e["listen"] == "test"]
        assert tests and "pm.test(" in "\n".join(tests[0]["script"]["exec"]), r["name"]
    # success and error cases both
    codes = {line for r in reqs for e in r["event"]
             for line in e["script"]["exec"] if "to.have.status(" in line}
    assert any("200" in s for s in codes) and any("400" in s for s in codes)


def squatter(port):
    """A listener on [::1]:port answering 404 to anything; None without
    IPv6."""
    try:
        s = socket.socket(socket.AF_INET6)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind(("::1", port))
        s.listen(16)
    except OSError:
        return None

    def serve():
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            try:
                c.settimeout(2)
                c.recv(65536)
                c.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                          b"Connection: close\r\n\r\n")
            except OSError:
                pass
            c.close()

    threading.Thread(target=serve, daemon=True).start()
    return s


def test_every_request_passes_with_newman(procs, tmp_path):
    runner = newman()
    if runner is None:
        pytest.skip("newman is not installed: `make test-deps "
                    "NEWMAN_TARBALL=/path/to/newman-6.2.2.tgz` unpacks it "
                    "into build/newman, or `make test-deps` installs it "
                    "there with npm when npm can reach its registry")
    lb = procs.ringlb(healthy=3)
    # the collection's own baseUrl, on this ringlb's port
    with open(COLLECTION) as f:
        default = {v["key"]: v["value"]
                   for v in json.load(f)["variable"]}["baseUrl"]
    u = urlsplit(default)
    assert u.port == 5000, default
    base = "%s://%s:%d" % (u.scheme, u.hostname, lb.port)
    # something else on [::1] at that port, as on a machine where another
    # server listens on IPv6: newman tries ::1 first for "localhost"
    squat = squatter(lb.port)
    report = str(tmp_path / "newman.json")
    try:
        r = subprocess.run([runner, "run", COLLECTION, "--env-var",
                            "baseUrl=" + base,
                            "--reporters", "cli,json",
                            "--reporter-json-export", report,
                            "--timeout-request", "20000"],
                           capture_output=True, text=True, timeout=120)
    finally:
        if squat is not None:
            try:
                squat.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            squat.close()
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    with open(report) as f:
        stats = json.load(f)["run"]["stats"]
    assert stats["requests"]["total"] >= 20 and stats["requests"]["failed"] == 0
    assert stats["assertions"]["total"] >= 50 and stats["assertions"]["failed"] == 0
