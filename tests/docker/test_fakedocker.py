"""The fake Docker engine itself, through a plain HTTP client on its unix
socket: the answers ringlb's docker backend will meet."""
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from engine_fixtures import engine_client, fake_engine, fake_engines  # noqa: F401

import fakedocker

FAKE = fakedocker.__file__
ZERO = "0001-01-01T00:00:00Z"


def alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def home(port, timeout=5.0):
    """GET /home on 127.0.0.1:port, retried while the replica starts."""
    deadline = time.monotonic() + timeout
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", "/home")
            r = conn.getresponse()
            return r.status, json.loads(r.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
        finally:
            conn.close()


def names(resp):
    assert resp.status == 200, resp.body
    return {c["Names"][0][1:] for c in resp.json()}


def run(client, name, **kw):
    """Create and start a replica container; returns its id."""
    r = client.create(name, **kw)
    assert r.status == 201, r.body
    assert client.start(name).status == 204
    return r.json()["Id"]


def test_ping_and_version(fake_engine):
    c = fake_engine.control
    r = c.get("/_ping")
    assert (r.status, r.body) == (200, b"OK")
    assert r.header("Api-Version") == "1.41"
    assert r.header("Ostype") == "linux"
    assert r.header("Server").startswith("Docker/")
    assert c.request("HEAD", "/_ping").status == 200
    v = c.get("/version").json()
    assert (v["ApiVersion"], v["MinAPIVersion"], v["Os"]) == ("1.41", "1.12", "linux")
    assert v["Version"]
    assert fake_engine.client(version="1.41").get("/version").json() == v
    r = c.get("/v1.41/no/such/path")
    assert (r.status, r.json()) == (404, {"message": "page not found"})


def test_a_version_below_the_minimum_is_refused(fake_engines):
    engine = fake_engines(api="1.47", min_api="1.44")
    old = engine.client(version="1.41")
    for path in ("/_ping", "/version", "/containers/json", "/events"):
        r = old.get(path)
        assert r.status == 400
        assert r.json() == {"message": "client version 1.41 is too old. Minimum supported API "
                                       "version is 1.44, please upgrade your client to a newer version"}
    r = engine.client(version="1.48").get("/version")
    assert r.status == 400
    assert r.message() == "client version 1.48 is too new. Maximum supported API version is 1.47"
    assert engine.client(version="1.44").get("/version").json()["ApiVersion"] == "1.47"
    # unversioned, as a client asks before it picks a version
    r = engine.control.get("/_ping")
    assert (r.status, r.header("Api-Version")) == (200, "1.47")


def test_images_and_networks(fake_engine):
    c, ctl = fake_engine.client(version="1.41"), fake_engine.control
    assert c.get("/images/ringlb:latest/json").status == 200
    assert c.get("/images/ringlb/json").json()["RepoTags"] == ["ringlb:latest"]
    r = c.get("/images/other:1/json")
    assert (r.status, r.message()) == (404, "No such image: other:1")
    ctl.add_image("other:1")
    assert c.get("/images/other:1/json").status == 200
    ctl.remove_image("ringlb:latest")
    assert c.get("/images/ringlb:latest/json").status == 404
    assert "ringlb:latest" not in ctl.state()["images"]

    net = c.get("/networks/net1").json()
    assert (net["Name"], net["Driver"]) == ("net1", "bridge")
    assert re.fullmatch(r"[0-9a-f]{64}", net["Id"])
    assert set(net["IPAM"]["Config"][0]) == {"Subnet", "Gateway"}
    assert c.get("/networks/%s" % net["Id"]).json()["Name"] == "net1"
    r = c.get("/networks/nope")
    assert (r.status, r.message()) == (404, "network nope not found")
    ctl.add_network("nope")
    assert c.get("/networks/nope").status == 200
    ctl.remove_network("net1")
    assert c.get("/networks/net1").status == 404


def test_create_start_inspect_stop_remove(fake_engine):
    c, ctl = fake_engine.client(version="1.41"), fake_engine.control
    labels = {"ringlb.owner": "t1", "ringlb.replica": "Server 4"}
    r = c.create("server-4", server_id="Server 4", labels=labels, aliases=["server-4", "s4"])
    assert r.status == 201
    cid = r.json()["Id"]
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    assert r.json()["Warnings"] == []

    rec = ctl.container("server-4")
    assert (rec["id"], rec["status"], rec["running"], rec["pid"]) == (cid, "created", False, 0)
    body = rec["create"]
    assert body["Env"] == ["SERVER_ID=Server 4"]
    assert body["Labels"] == labels
    assert body["HostConfig"]["RestartPolicy"] == {"Name": "no"}
    assert body["NetworkingConfig"]["EndpointsConfig"]["net1"]["Aliases"] == ["server-4", "s4"]
    i = c.inspect("server-4").json()
    assert (i["State"]["Status"], i["State"]["Running"], i["State"]["StartedAt"]) == ("created", False, ZERO)
    assert i["NetworkSettings"]["Ports"] == {}

    assert c.start(cid).status == 204
    assert c.start("server-4").status == 304
    i = c.inspect(cid[:12]).json()
    assert (i["Id"], i["Name"]) == (cid, "/server-4")
    st = i["State"]
    assert (st["Status"], st["Running"], st["ExitCode"]) == ("running", True, 0)
    assert st["Pid"] > 0 and alive(st["Pid"]) and st["StartedAt"] != ZERO
    assert i["Config"]["Labels"] == labels
    assert i["Config"]["Env"] == ["SERVER_ID=Server 4"]
    assert i["HostConfig"]["RestartPolicy"] == {"Name": "no"}
    [binding] = i["NetworkSettings"]["Ports"]["5000/tcp"]
    assert binding["HostIp"] == "127.0.0.1" and binding["HostPort"].isdigit()
    net = i["NetworkSettings"]["Networks"]["net1"]
    assert net["Aliases"] == ["server-4", "s4"]
    assert net["IPAddress"] == "127.0.0.1" and net["Gateway"]
    assert ctl.container("server-4")["port"] == int(binding["HostPort"])

    assert home(int(binding["HostPort"])) == (
        200, {"message": "Hello from Server: Server 4", "status": "successful"})

    assert c.stop("server-4", t=5).status == 204
    assert not alive(st["Pid"])
    assert c.stop("server-4").status == 304
    st = c.inspect("server-4").json()["State"]
    assert (st["Status"], st["Running"], st["ExitCode"], st["Pid"]) == ("exited", False, 0, 0)
    assert st["FinishedAt"] != ZERO

    assert c.remove("server-4").status == 204
    r = c.inspect("server-4")
    assert (r.status, r.message()) == (404, "No such container: server-4")
    assert c.remove("server-4").status == 404
    assert ctl.state()["containers"] == []


def test_create_errors(fake_engine):
    c = fake_engine.client(version="1.41")
    first = c.create("server-1").json()["Id"]
    r = c.create("server-1")
    assert r.status == 409
    assert r.message() == ('Conflict. The container name "/server-1" is already in use by container '
                           '"%s". You have to remove (or rename) that container to be able to reuse '
                           'that name.' % first)
    r = c.create("server-2", image="nope:1")
    assert (r.status, r.message()) == (404, "No such image: nope:1")
    r = c.post("/containers/create?name=server-3", body="{not json",
               headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.message().startswith("invalid JSON")
    r = c.post("/containers/create?name=server-3", body="",
               headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.message().startswith("invalid JSON")
    # libcurl's default Content-Type for a POST body
    r = c.post("/containers/create?name=server-3", body='{"Image": "ringlb"}',
               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 400
    assert r.message() == ("unsupported Content-Type header (application/x-www-form-urlencoded): "
                           "must be 'application/json'")
    r = c.create("Server 4")
    assert r.status == 400
    assert r.message() == ("Invalid container name (Server 4), only [a-zA-Z0-9][a-zA-Z0-9_.-] "
                           "are allowed")
    r = c.create("server-5", network="nope")
    assert (r.status, r.message()) == (404, "network nope not found")
    for r in (c.start("ghost"), c.stop("ghost"), c.inspect("ghost"),
              c.post("/containers/ghost/kill"), c.remove("ghost", force=True)):
        assert (r.status, r.message()) == (404, "No such container: ghost")
    assert [x["name"] for x in fake_engine.control.state()["containers"]] == ["server-1"]


def test_bodies_as_libcurl_may_send_them(fake_engine):
    c = fake_engine.client(version="1.41")
    r = c.request("POST", "/containers/create?name=chunked",
                  body=iter([b'{"Image": "ringlb", ', b'"Env": ["SERVER_ID=x"]}']),
                  headers={"Content-Type": "application/json"})
    assert r.status == 201, r.body
    r = c.request("POST", "/containers/create?name=expect", body='{"Image": "ringlb"}',
                  headers={"Content-Type": "application/json", "Expect": "100-continue"})
    assert r.status == 201, r.body
    assert fake_engine.control.container("chunked")["create"]["Env"] == ["SERVER_ID=x"]


def test_removing_a_running_container_needs_force(fake_engine):
    c, ctl = fake_engine.client(version="1.41"), fake_engine.control
    cid = run(c, "r1")
    pid = ctl.container("r1")["pid"]
    r = c.remove("r1")
    assert r.status == 409
    assert r.message() == ("You cannot remove a running container %s. Stop the container before "
                           "attempting removal or force remove" % cid)
    assert alive(pid)
    assert c.delete("/containers/r1?force=true").status == 204
    assert not alive(pid)
    assert ctl.state()["containers"] == []


def test_a_published_host_port(fake_engine):
    c = fake_engine.client(version="1.41")
    port = fakedocker.free_port()
    run(c, "p1", host_port=str(port))
    assert c.inspect("p1").json()["NetworkSettings"]["Ports"]["5000/tcp"][0]["HostPort"] == str(port)
    assert home(port)[1]["message"] == "Hello from Server: p1"
    assert c.create("p2", host_port=str(port)).status == 201
    r = c.start("p2")
    assert r.status == 500 and "port is already allocated" in r.message()
    assert c.inspect("p2").json()["State"]["Status"] == "created"
    # not published: the replica runs, nothing is reported
    run(c, "p3", host_port=None)
    assert c.inspect("p3").json()["NetworkSettings"]["Ports"] == {"5000/tcp": None}


def test_list_and_its_filters(fake_engine):
    c = fake_engine.client(version="1.41")
    run(c, "a1", labels={"ringlb.owner": "A"})
    assert c.create("a2", labels={"ringlb.owner": "A"}).status == 201
    run(c, "b1", labels={"ringlb.owner": "B"})
    assert names(c.list()) == {"a1", "b1"}
    assert names(c.list(all=True)) == {"a1", "a2", "b1"}
    assert names(c.list(all=True, filters={"label": ["ringlb.owner=A"]})) == {"a1", "a2"}
    assert names(c.list(all=True, filters={"label": ["ringlb.owner"]})) == {"a1", "a2", "b1"}
    assert names(c.list(all=True, filters={"label": ["ringlb.owner=A", "x"]})) == set()
    assert names(c.list(filters={"status": ["created"]})) == {"a2"}
    assert names(c.list(all=True, filters={"name": ["^/a"]})) == {"a1", "a2"}
    # the older form of filters
    assert names(c.list(all=True, filters={"label": {"ringlb.owner=B": True}})) == {"b1"}

    [a1] = [x for x in c.list().json() if x["Names"] == ["/a1"]]
    port = fake_engine.control.container("a1")["port"]
    assert (a1["Image"], a1["State"], a1["Labels"]) == ("ringlb:latest", "running", {"ringlb.owner": "A"})
    assert a1["Status"].startswith("Up ")
    assert a1["Ports"] == [{"IP": "127.0.0.1", "PrivatePort": 5000, "PublicPort": port, "Type": "tcp"}]
    r = c.list(filters={"bogus": ["x"]})
    assert (r.status, r.message()) == (400, "invalid filter 'bogus'")


def test_the_event_stream_delivers_die_after_a_crash(fake_engine):
    c, ctl = fake_engine.client(version="1.41"), fake_engine.control
    ev = c.events(filters={"type": ["container"], "label": ["ringlb.owner=me"]})
    assert ev.status == 200
    assert ev.response.getheader("Transfer-Encoding") == "chunked"
    assert ev.response.getheader("Content-Type") == "application/json"
    ctl.wait_state(lambda s: s["streams"] == 1, what="the stream to be open")
    run(c, "other", labels={"ringlb.owner": "someone-else"})
    cid = run(c, "mine", labels={"ringlb.owner": "me"})
    assert ev.wait_for("create")["id"] == cid
    assert ev.wait_for("start")["id"] == cid
    ctl.crash("mine")
    die = ev.wait_for("die")
    assert die == {"status": "die", "id": cid, "from": "ringlb:latest", "Type": "container",
                   "Action": "die", "scope": "local",
                   "Actor": {"ID": cid, "Attributes": {"ringlb.owner": "me", "name": "mine",
                                                       "image": "ringlb:latest", "exitCode": "137"}},
                   "time": die["timeNano"] // 10**9, "timeNano": die["timeNano"]}
    assert ev.actions() == [("create", "mine"), ("start", "mine"), ("die", "mine")]
    st = c.inspect("mine").json()["State"]
    assert (st["Status"], st["ExitCode"]) == ("exited", 137)
    r = ctl.request("POST", "/_fake/kill/mine")
    assert r.status == 409
    ev.close()


def test_a_process_that_exits_on_its_own_dies(fake_engine):
    c, ctl = fake_engine.client(version="1.41"), fake_engine.control
    ev = c.events(filters={"event": ["die"]})
    ctl.wait_state(lambda s: s["streams"] == 1, what="the stream to be open")
    # without SERVER_ID ringlb-replica refuses to run: exit status 2
    assert c.create("noid", Env=[]).status == 201
    assert c.start("noid").status == 204
    assert ev.wait_for("die", name="noid")["Actor"]["Attributes"]["exitCode"] == "2"
    st = c.inspect("noid").json()["State"]
    assert (st["Status"], st["Running"], st["ExitCode"]) == ("exited", False, 2)
    ev.close()


def test_the_events_of_stop_kill_and_remove(fake_engine):
    c, ctl = fake_engine.client(version="1.41"), fake_engine.control
    ev = c.events(filters={"container": ["s1"]})
    ctl.wait_state(lambda s: s["streams"] == 1, what="the stream to be open")
    run(c, "s1")
    home(ctl.container("s1")["port"])   # up: it exits 0 on SIGTERM from now on
    assert c.stop("s1", t=5).status == 204
    assert c.start("s1").status == 204
    assert c.post("/containers/s1/kill?signal=SIGKILL").status == 204
    r = c.post("/containers/s1/kill")
    assert r.status == 409 and "is not running" in r.message()
    assert c.start("s1").status == 204
    assert c.remove("s1", force=True).status == 204
    ev.wait_for("destroy")
    got = [(e["Action"], e["Actor"]["Attributes"].get("signal") or
            e["Actor"]["Attributes"].get("exitCode")) for e in ev.seen]
    assert got == [("create", None), ("start", None),
                   ("kill", "15"), ("die", "0"), ("stop", None),
                   ("start", None), ("kill", "9"), ("die", "137"),
                   ("start", None), ("kill", "9"), ("die", "137"), ("destroy", None)]
    ev.close()


def test_stop_escalates_to_sigkill(fake_engine):
    c, ctl = fake_engine.client(version="1.41"), fake_engine.control
    run(c, "frozen")
    home(ctl.container("frozen")["port"])      # up, with its SIGTERM handler
    os.kill(ctl.container("frozen")["pid"], signal.SIGSTOP)     # now deaf to SIGTERM
    t0 = time.monotonic()
    assert c.stop("frozen", t=1).status == 204
    assert time.monotonic() - t0 >= 1.0
    assert c.inspect("frozen").json()["State"]["ExitCode"] == 137


def test_since_replays_kept_events_and_until_ends_the_stream(fake_engine):
    c = fake_engine.client(version="1.41")
    t0 = time.time_ns()
    run(c, "old")
    now = time.time_ns()
    ev = c.events(since="%d.%09d" % divmod(t0, 10**9), until="%d.%09d" % divmod(now, 10**9))
    got = []
    for _ in range(10):
        e = ev.next()
        if e is None:
            break
        got.append(e["Action"])
    assert got == ["create", "start"]
    ev.close()
    r = c.get("/events?since=yesterday")
    assert r.status == 400


def test_cut_ends_every_stream_cleanly(fake_engine):
    c, ctl = fake_engine.client(version="1.41"), fake_engine.control
    streams = [c.events(), c.events(filters={"type": ["container"]})]
    ctl.wait_state(lambda s: s["streams"] == 2, what="two open streams")
    assert ctl.cut_events() == 2
    for ev in streams:
        assert ev.next() is None
        # ended by its last chunk: the connection serves the next request
        ev.conn.request("GET", "/_ping")
        assert ev.conn.getresponse().read() == b"OK"
        ev.close()
    ctl.wait_state(lambda s: s["streams"] == 0, what="no open stream")


def test_a_fault_injected_once(fake_engine):
    c, ctl = fake_engine.client(version="1.41"), fake_engine.control
    ctl.fault("create", status=500, message="boom")
    assert ctl.state()["faults"][0]["op"] == "create"
    r = c.create("f1")
    assert (r.status, r.json()) == (500, {"message": "boom"})
    assert ctl.container("f1") is None
    assert c.create("f1").status == 201
    assert ctl.state()["faults"] == []

    ctl.fault("start", status=503, count=-1)
    assert c.start("f1").status == 503
    assert c.start("f1").status == 503
    ctl.clear_faults()
    assert c.start("f1").status == 204

    ctl.fault("events", status=500, message="events broke")
    ev = c.events()
    assert ev.status == 500
    ev.close()
    r = ctl.request("POST", "/_fake/fault", {"op": "nothing"})
    assert r.status == 400


def test_a_delayed_answer_does_not_hold_up_others(fake_engine):
    c, ctl = fake_engine.client(version="1.41"), fake_engine.control
    assert c.create("slow").status == 201
    ctl.fault("inspect", status=0, delay_ms=1500)
    got = {}
    t0 = time.monotonic()
    t = threading.Thread(target=lambda: got.update(r=fake_engine.client().inspect("slow")))
    t.start()
    try:
        ctl.wait_state(lambda s: s["faults"] == [], what="the delayed inspect to arrive")
        t1 = time.monotonic()
        assert c.get("/_ping").status == 200
        assert c.create("fast").status == 201
        assert time.monotonic() - t1 < 1.0
    finally:
        t.join(10)
    assert got["r"].status == 200 and got["r"].json()["Name"] == "/slow"
    assert time.monotonic() - t0 >= 1.5


def test_a_fault_that_drops_the_connection(fake_engine):
    c, ctl = fake_engine.client(version="1.41"), fake_engine.control
    ctl.fault("list", close=True)
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        c.list()
    assert c.list().status == 200
    assert [e["status"] for e in ctl.log()] == ["closed", 200]


def test_the_log_records_every_api_request(fake_engine):
    c, ctl = fake_engine.client(version="1.41"), fake_engine.control
    c.get("/_ping")
    c.create("l1")
    c.inspect("nope")
    log = ctl.log()
    assert [(e["method"], e["path"], e["status"]) for e in log] == [
        ("GET", "/v1.41/_ping", 200),
        ("POST", "/v1.41/containers/create?name=l1", 201),
        ("GET", "/v1.41/containers/nope/json", 404)]
    assert all(isinstance(e["time"], float) for e in log)


def test_stop_kills_every_replica_and_removes_the_socket(fake_engines):
    engine = fake_engines()
    c = engine.client(version="1.41")
    for n in ("k1", "k2", "k3"):
        run(c, n)
    pids = [x["pid"] for x in engine.control.state()["containers"]]
    assert all(alive(p) for p in pids)
    engine.close()
    assert not os.path.exists(engine.socket)
    assert not any(alive(p) for p in pids)


def test_it_runs_on_its_own(tmp_path, engine_client):
    short = tempfile.mkdtemp(prefix="fakedocker-")
    sock = os.path.join(short, "docker.sock")
    proc = subprocess.Popen([sys.executable, FAKE, "--socket", sock, "--api", "1.43",
                             "--min-api", "1.24", "--log-dir", str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert "unix://" + sock in proc.stdout.readline()
        c = engine_client(sock, version="1.43")
        v = c.get("/version").json()
        assert (v["ApiVersion"], v["MinAPIVersion"]) == ("1.43", "1.24")
        run(c, "solo")
        port = engine_client(sock).container("solo")["port"]
        assert home(port)[1]["message"] == "Hello from Server: solo"
        pid = engine_client(sock).container("solo")["pid"]
        c.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert not os.path.exists(sock)
        assert not alive(pid)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        shutil.rmtree(short)
