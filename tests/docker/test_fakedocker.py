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
import urllib.parse

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


def home(port, timeout=5.0, host="127.0.0.1"):
    """GET /home on host:port, retried while the replica starts."""
    deadline = time.monotonic() + timeout
    while True:
        conn = http.client.HTTPConnection(host, port, timeout=2)
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


# --- swarm mode ------------------------------------------------------------

OVERLAY = "overlay1"


@pytest.fixture
def swarm_engine(fake_engines):
    """A fake one-node swarm manager with the overlay network overlay1."""
    engine = fake_engines(swarm=True)
    engine.control.add_network(OVERLAY, driver="overlay")
    return engine


def task_address(task):
    [att] = task["NetworksAttachments"]
    [addr] = att["Addresses"]
    return att["Network"]["Spec"]["Name"], addr


def wait_running(ctl, name, not_id=None, timeout=5.0):
    """The service's running task (another than not_id), once there is one."""
    deadline = time.monotonic() + timeout
    while True:
        t = ctl.running_task(name)
        if t is not None and t["id"] != not_id:
            return t
        if time.monotonic() > deadline:
            raise AssertionError("no running task of %s; last: %s" % (name, ctl.service(name)))
        time.sleep(0.02)


def home_at(host, port, timeout=5.0):
    """The /home message of the replica at host:port."""
    return home(port, timeout, host)[1]["message"]


def test_info_says_whether_the_engine_is_a_swarm_manager(fake_engines):
    plain, worker = fake_engines(), fake_engines(swarm="worker")
    sw = plain.control.get("/v1.41/info").json()["Swarm"]
    assert (sw["LocalNodeState"], sw["ControlAvailable"]) == ("inactive", False)
    for path in ("/services", "/tasks", "/services/x"):
        r = plain.control.get("/v1.41" + path)
        assert (r.status, r.message()) == (503, fakedocker.NOT_IN_SWARM)
    assert fakedocker.NOT_IN_SWARM.startswith("This node is not a swarm manager. Use \"docker "
                                              "swarm init\"")
    sw = worker.control.get("/info").json()["Swarm"]
    assert (sw["LocalNodeState"], sw["ControlAvailable"]) == ("active", False)
    r = worker.control.create_service("s1")
    assert (r.status, r.message()) == (503, fakedocker.NOT_A_MANAGER)
    assert "Worker nodes can't be used" in r.message()


def test_overlay_networks(swarm_engine):
    c = swarm_engine.client(version="1.41")
    net = c.get("/networks/" + OVERLAY).json()
    assert (net["Driver"], net["Scope"], net["Attachable"]) == ("overlay", "swarm", True)
    assert c.get("/networks/net1").json()["Driver"] == "bridge"
    r = swarm_engine.control.request("POST", "/_fake/networks", {"add": "x", "driver": "macvlan"})
    assert r.status == 400
    sw = c.get("/info").json()["Swarm"]
    assert (sw["LocalNodeState"], sw["ControlAvailable"]) == ("active", True)


def test_service_create_inspect_list_and_remove(swarm_engine):
    c, ctl = swarm_engine.client(version="1.41"), swarm_engine.control
    ev = c.events(filters={"type": ["service"]})
    ctl.wait_state(lambda s: s["streams"] == 1, what="the stream to be open")
    r = c.create_service("ringlb-a", replica="a", owner="o1")
    assert r.status == 201, r.body
    sid = r.json()["ID"]
    assert re.fullmatch(r"[0-9a-z]{25}", sid)
    assert "could not be accessed on a registry" in r.json()["Warnings"][0]
    assert c.create_service("ringlb-b", replica="b", owner="o2").status == 201

    i = c.get("/services/ringlb-a").json()
    assert c.get("/services/" + sid).json() == i
    assert c.get("/services/" + sid[:6]).json()["ID"] == sid
    assert i["ID"] == sid and i["Version"]["Index"] > 0 and i["CreatedAt"] != ZERO
    assert i["Spec"]["Labels"] == {"ringlb.owner": "o1", "ringlb.replica": "a"}
    assert i["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"] == ["SERVER_ID=a"]
    assert i["Endpoint"]["Spec"] == {"Mode": "dnsrr"}

    def listed(f=None):
        q = "?filters=" + urllib.parse.quote(json.dumps(f)) if f else ""
        r = c.get("/services" + q)
        assert r.status == 200, r.body
        return sorted(s["Spec"]["Name"] for s in r.json())
    assert listed() == ["ringlb-a", "ringlb-b"]
    assert listed({"label": ["ringlb.owner=o1"]}) == ["ringlb-a"]
    assert listed({"label": ["ringlb.owner"]}) == ["ringlb-a", "ringlb-b"]
    assert listed({"name": ["ringlb-b"]}) == ["ringlb-b"]
    assert listed({"id": [sid]}) == ["ringlb-a"]
    assert c.get("/services?filters=" + urllib.parse.quote('{"bogus":["x"]}')).status == 400

    r = c.create_service("ringlb-a", replica="other", owner="o3")
    assert (r.status, r.message()) == (409, "rpc error: code = AlreadyExists desc = name conflicts "
                                            "with an existing object: service ringlb-a already "
                                            "exists")
    for bad in ("Server 1", "-x", "x" * 64, "a.b"):
        r = c.create_service(bad)
        assert r.status == 400, bad
        assert r.message() == ("rpc error: code = InvalidArgument desc = name must be valid as a "
                               "DNS name component")
    r = c.create_service("nonet", network="nope")
    assert (r.status, r.message()) == (404, "network nope not found")
    r = c.create_service("localnet", network="net1")
    assert (r.status, r.message()) == (404, "network net1 not found")
    r = c.create_service("bridged", network="bridge")
    assert r.status == 403 and "cannot be used with services" in r.message()

    assert c.delete("/services/" + sid).status == 200
    r = c.get("/services/" + sid)
    assert (r.status, r.message()) == (404, "service %s not found" % sid)
    r = c.delete("/services/ghost")
    assert (r.status, r.message()) == (404, "service ghost not found")
    assert listed() == ["ringlb-b"]
    got = []
    for _ in range(3):
        e = ev.next()
        got.append((e["Type"], e["Action"], e["Actor"]["ID"], e["Actor"]["Attributes"], e["scope"]))
    bid = c.get("/services/ringlb-b").json()["ID"]
    assert got == [("service", "create", sid, {"name": "ringlb-a"}, "swarm"),
                   ("service", "create", bid, {"name": "ringlb-b"}, "swarm"),
                   ("service", "remove", sid, {"name": "ringlb-a"}, "swarm")]
    ev.close()


def test_each_task_runs_on_a_loopback_address_of_its_own(swarm_engine):
    c, ctl = swarm_engine.client(version="1.41"), swarm_engine.control
    port = fakedocker.free_port()
    for n in ("a", "b"):
        assert c.create_service("svc-" + n, replica=n, port=port).status == 201
    addrs = {}
    for n in ("a", "b"):
        wait_running(ctl, "svc-" + n)
        r = c.tasks(service="svc-" + n, desired="running")
        assert r.status == 200, r.body
        [t] = r.json()
        assert (t["Status"]["State"], t["DesiredState"], t["Slot"]) == ("running", "running", 1)
        assert t["ServiceID"] == c.get("/services/svc-" + n).json()["ID"]
        net, addr = task_address(t)
        assert net == OVERLAY and re.fullmatch(r"127\.0\.0\.\d+/8", addr)
        addrs[n] = addr.split("/")[0]
        assert home_at(addrs[n], port) == "Hello from Server: %s" % n
        cid = t["Status"]["ContainerStatus"]["ContainerID"]
        i = c.inspect(cid).json()
        assert i["Config"]["Labels"]["com.docker.swarm.task.id"] == t["ID"]
        assert i["Config"]["Labels"]["ringlb.replica"] == n
        assert i["Name"] == "/svc-%s.1.%s" % (n, t["ID"])
        assert c.get("/tasks/" + t["ID"]).json() == t
    assert addrs["a"] != addrs["b"] and "127.0.0.1" not in addrs.values()
    # the service's id or its name
    sid = c.get("/services/svc-a").json()["ID"]
    assert [t["ServiceID"] for t in c.tasks(service=sid).json()] == [sid]
    assert len(c.tasks().json()) == 2
    assert c.tasks(desired="shutdown").json() == []
    r = c.get("/tasks?filters=" + urllib.parse.quote('{"desired-state":["bogus"]}'))
    assert r.status == 400


def test_update_needs_the_current_version(swarm_engine):
    c, ctl = swarm_engine.client(version="1.41"), swarm_engine.control
    assert c.create_service("u1", replica="u1").status == 201
    first = wait_running(ctl, "u1")
    i = c.get("/services/u1").json()
    spec, version = i["Spec"], i["Version"]["Index"]
    spec["Labels"]["ringlb.leaving"] = "1"
    r = c.post("/services/%s/update?version=%d" % (i["ID"], version - 1), spec)
    assert (r.status, r.message()) == (500, "rpc error: code = Unknown desc = update out of sequence")
    r = c.post("/services/%s/update" % i["ID"], spec)
    assert r.status == 400 and r.message().startswith("invalid service version")
    r = c.post("/services/%s/update?version=%d" % (i["ID"], version), spec)
    assert r.status == 200, r.body
    j = c.get("/services/u1").json()
    assert j["Version"]["Index"] > version and j["Spec"]["Labels"]["ringlb.leaving"] == "1"
    # labels alone leave the task be
    time.sleep(0.2)
    assert (ctl.running_task("u1") or {}).get("id") == first["id"], ctl.service("u1")
    r = c.post("/services/%s/update?version=%d" % (i["ID"], version), spec)
    assert r.status == 500 and "out of sequence" in r.message()
    # a new task template: a new task, at a new address
    spec["TaskTemplate"]["ContainerSpec"]["Env"] = ["SERVER_ID=u1", "X=1"]
    assert c.post("/services/u1/update?version=%d" % j["Version"]["Index"], spec).status == 200
    second = wait_running(ctl, "u1", not_id=first["id"])
    assert second["address"] != first["address"]
    ctl.wait_state(lambda s: not alive(first["pid"]), what="the old task's process gone")


def test_the_restart_policy_starts_a_new_task_at_a_new_address(swarm_engine):
    c, ctl = swarm_engine.client(version="1.41"), swarm_engine.control
    ev = c.events(filters={"type": ["container"], "event": ["die"]})
    ctl.wait_state(lambda s: s["streams"] == 1, what="the stream to be open")
    port = fakedocker.free_port()
    assert c.create_service("r1", replica="r1", port=port, delay_ns=300 * 10**6).status == 201
    first = wait_running(ctl, "r1")
    ctl.crash("r1")
    die = ev.wait_for("die")
    attrs = die["Actor"]["Attributes"]
    assert attrs["com.docker.swarm.task.id"] == first["id"]
    assert (attrs["ringlb.owner"], attrs["ringlb.replica"]) == ("ringlb-test", "r1")
    assert attrs["com.docker.swarm.service.name"] == "r1"
    assert attrs["exitCode"] == "137"
    [old] = [t for t in c.tasks(service="r1").json() if t["ID"] == first["id"]]
    assert (old["Status"]["State"], old["DesiredState"]) == ("failed", "shutdown")
    assert old["Status"]["Err"] == "task: non-zero exit (137)"
    assert old["Status"]["ContainerStatus"]["ExitCode"] == 137
    # nothing runs during the Delay
    assert c.tasks(service="r1", desired="running").json() == []
    t0 = time.monotonic()
    second = wait_running(ctl, "r1", not_id=first["id"])
    assert time.monotonic() - t0 >= 0.15
    assert second["address"] != first["address"]
    assert home_at(second["address"], port) == "Hello from Server: r1"
    # a process that exits on its own (ringlb-replica without SERVER_ID)
    # fails too; Condition none leaves it so
    spec = c.get("/services/r1").json()
    body = spec["Spec"]
    body["TaskTemplate"]["ContainerSpec"]["Env"] = []
    body["TaskTemplate"]["RestartPolicy"]["Condition"] = "none"
    assert c.post("/services/r1/update?version=%d" % spec["Version"]["Index"], body).status == 200
    ctl.wait_state(lambda s: [t["state"] for t in s["swarm"]["services"][0]["tasks"]][-1:] ==
                   ["failed"], what="the task without SERVER_ID failed")
    time.sleep(0.3)
    assert ctl.running_task("r1") is None
    assert ctl.service("r1")["tasks"][-1]["err"] == "task: non-zero exit (2)"
    ev.close()


def test_a_node_without_the_image_rejects_the_task(swarm_engine):
    c, ctl = swarm_engine.client(version="1.41"), swarm_engine.control
    ctl.remove_image("ringlb:latest")
    r = c.create_service("noimg", delay_ns=200 * 10**6)
    assert r.status == 201, r.body
    ctl.wait_state(lambda s: len(s["swarm"]["services"][0]["tasks"]) >= 2,
                   what="a rejected task, and its successor")
    t = c.tasks(service="noimg").json()[0]
    assert (t["Status"]["State"], t["DesiredState"]) == ("rejected", "shutdown")
    assert t["Status"]["Err"] == "No such image: ringlb:latest"
    assert ctl.running_task("noimg") is None
    ctl.add_image("ringlb:latest")
    wait_running(ctl, "noimg")


def test_a_manager_without_quorum(swarm_engine):
    c, ctl = swarm_engine.client(version="1.41"), swarm_engine.control
    port = fakedocker.free_port()
    assert c.create_service("q1", port=port, delay_ns=100 * 10**6).status == 201
    first = wait_running(ctl, "q1")
    ctl.quorum(True)
    for r in (c.get("/services"), c.get("/services/q1"), c.tasks(), c.create_service("q2"),
              c.delete("/services/q1"), c.post("/services/q1/update?version=1", {"Name": "q1"})):
        assert (r.status, r.message()) == (500, fakedocker.NO_LEADER)
    assert "The swarm does not have a leader" in fakedocker.NO_LEADER
    info = c.get("/info")
    assert info.status == 200 and info.json()["Swarm"]["Error"] == fakedocker.NO_LEADER
    # the tasks go on; a dead one is not replaced until a leader is back
    assert home_at(first["address"], port) == "Hello from Server: q1"
    ctl.crash("q1")
    time.sleep(0.4)
    assert ctl.running_task("q1") is None
    ctl.quorum(False)
    second = wait_running(ctl, "q1", not_id=first["id"])
    assert second["address"] != first["address"]
    assert c.get("/services").status == 200


def test_reschedule_moves_a_task_to_a_new_address(swarm_engine):
    c, ctl = swarm_engine.client(version="1.41"), swarm_engine.control
    ev = c.events(filters={"type": ["container"], "event": ["die"]})
    ctl.wait_state(lambda s: s["streams"] == 1, what="the stream to be open")
    port = fakedocker.free_port()
    assert c.create_service("m1", replica="m1", port=port).status == 201
    first = wait_running(ctl, "m1")
    moved = ctl.reschedule("m1")
    assert moved["address"] != first["address"]
    die = ev.wait_for("die")
    assert die["Actor"]["Attributes"]["com.docker.swarm.task.id"] == first["id"]
    second = wait_running(ctl, "m1", not_id=first["id"])
    assert (second["id"], second["address"]) == (moved["task"], moved["address"])
    assert home_at(second["address"], port) == "Hello from Server: m1"
    [old] = [t for t in c.tasks(service="m1").json() if t["ID"] == first["id"]]
    assert old["DesiredState"] == "shutdown"
    ctl.wait_state(lambda s: not alive(first["pid"]), what="the old task's process gone")
    # from a node that is not this one: no die event here
    ctl.reschedule("m1", die_event=False)
    third = wait_running(ctl, "m1", not_id=second["id"])
    assert third["address"] not in (first["address"], second["address"])
    ctl.wait_state(lambda s: not alive(second["pid"]), what="the second task's process gone")
    with pytest.raises(TimeoutError):
        ev.next(timeout=0.5)
    r = ctl.request("POST", "/_fake/reschedule/ghost", {})
    assert r.status == 404
    ev.close()


def test_removing_a_service_stops_its_task(swarm_engine):
    c, ctl = swarm_engine.client(version="1.41"), swarm_engine.control
    ev = c.events(filters={"type": ["container"]})
    ctl.wait_state(lambda s: s["streams"] == 1, what="the stream to be open")
    assert c.create_service("d1").status == 201
    t = wait_running(ctl, "d1")
    assert c.delete("/services/d1").status == 200
    ev.wait_for("destroy")
    assert [a for a, _ in ev.actions()] == ["create", "start", "kill", "die", "stop", "destroy"]
    assert not alive(t["pid"])
    assert ctl.state()["containers"] == [] and ctl.swarm()["services"] == []
    ev.close()


def test_faults_of_the_swarm_endpoints(swarm_engine):
    c, ctl = swarm_engine.client(version="1.41"), swarm_engine.control
    ctl.fault("service_create", status=500, message="rpc error: code = Unknown desc = boom")
    r = c.create_service("f1")
    assert (r.status, r.message()) == (500, "rpc error: code = Unknown desc = boom")
    assert ctl.service("f1") is None
    assert c.create_service("f1").status == 201
    for op, call in (("service_list", lambda: c.get("/services")),
                     ("service_inspect", lambda: c.get("/services/f1")),
                     ("tasks", lambda: c.tasks()),
                     ("info", lambda: c.get("/info")),
                     ("service_delete", lambda: c.delete("/services/f1"))):
        ctl.fault(op, status=503, message=op)
        assert (call().status, ctl.state()["faults"]) == (503, []), op
        assert call().status == 200, op
