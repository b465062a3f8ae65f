"""ringlb's Docker backend against the fake engine (fakedocker.py).

Runs on every machine: the "containers" are ringlb-replica processes the
fake starts on loopback ports, published to ringlb as the real engine
publishes them on 127.0.0.1.  The error paths of the backend (engine
unreachable, image or network missing, create refused or slow, a name
held by someone else, the event stream cut) are driven from here.
"""
import json
import os
import signal
import time

import pytest

from engine_fixtures import e2e, fake_engine, fake_engines  # noqa: F401


OWNER = "ringlb-test"


@pytest.fixture
def procs(tmp_path):
    ps = e2e.Procs(str(tmp_path))
    yield ps
    ps.stop_all()


def docker_lb(procs, engine, *extra, healthy=3, env=None, n=3,
              reach="published"):
    """ringlb with the docker backend on the fake, n replicas up."""
    full_env = {"DOCKER_HOST": engine.docker_host}
    full_env.update(env or {})
    reach_args = ["--docker-reach", reach] if reach else []
    return procs.ringlb((), "--backend", "docker", "--replicas", str(n),
                        "--docker-owner", OWNER, *reach_args,
                        "--health-interval", "100", "--health-timeout", "200",
                        *extra, env=full_env, healthy=healthy)


def ours(engine, running=True):
    """{replica name: container} of the fake's containers labelled ours."""
    out = {}
    for c in engine.control.state()["containers"]:
        if c["labels"].get("ringlb.owner") != OWNER:
            continue
        if running and not c["running"]:
            continue
        out[c["labels"]["ringlb.replica"]] = c
    return out


def log_text(p):
    with open(p.log_path, errors="replace") as f:
        return f.read()


def start_failing(procs, engine, *extra, env=None):
    """ringlb that must exit at startup; returns (exit code, log)."""
    port = e2e.free_port()
    full_env = {"DOCKER_HOST": engine.docker_host if engine else
                "unix:///nonexistent/docker.sock"}
    full_env.update(env or {})
    p = procs.start([e2e.RINGLB, "--listen", "127.0.0.1:%d" % port,
                     "--backend", "docker", "--docker-owner", OWNER,
                     "--docker-reach", "published", *extra],
                    env=full_env, name="ringlb")
    code = p.wait(timeout=20)
    return code, log_text(p)


def test_three_containers_with_labels_and_routing(procs, fake_engine):
    lb = docker_lb(procs, fake_engine)
    c = ours(fake_engine)
    assert sorted(c) == ["Server 1", "Server 2", "Server 3"]
    body = c["Server 1"]["create"]
    assert body["Labels"] == {"ringlb.owner": OWNER, "ringlb.replica": "Server 1"}
    assert "SERVER_ID=Server 1" in body["Env"]
    assert body["Entrypoint"] == ["ringlb-replica"]
    assert body["HostConfig"]["RestartPolicy"] == {"Name": "no"}
    assert body["HostConfig"]["NetworkMode"] == "net1"
    assert body["HostConfig"]["PortBindings"] == {
        "5000/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}
    assert body["NetworkingConfig"]["EndpointsConfig"]["net1"]["Aliases"] == [
        "server-1"]
    assert c["Server 1"]["name"] == "ringlb-Server-1"
    # every request gets an answer from the replica its key maps to
    for k in range(30):
        r = e2e.get(lb.port, "/home?request_id=%d" % k)
        assert r.status == 200
        owner = e2e.get(lb.port, "/map_request?id=%d" % k).json()["mapped_server"]
        assert r.header("X-Served-By") == owner
        assert r.json()["message"] == "Hello from Server: %s" % owner
    # the API version was negotiated and used
    paths = [e["path"] for e in fake_engine.control.log()]
    assert "/version" in paths
    assert any(p.startswith("/v1.41/containers/create") for p in paths)


def test_seed_names_add_and_rm(procs, fake_engine):
    lb = docker_lb(procs, fake_engine)
    assert e2e.rep_names(lb.port) == ["Server 1", "Server 2", "Server 3"]
    r = e2e.post_json(lb.port, "/rm", {"n": 1, "hostnames": ["Server 1"]},
                      method="DELETE")
    assert r.status == 200, r.body
    r = e2e.post_json(lb.port, "/add", {"n": 1, "hostnames": ["Server 4"]})
    assert r.status == 200, r.body
    assert r.json()["message"]["replicas"] == [
        "Server 2", "Server 3", "Server 4"]
    c = ours(fake_engine)["Server 4"]
    # a readable container name and a DNS alias, from the name
    assert c["name"] == "ringlb-Server-4"
    aliases = c["create"]["NetworkingConfig"]["EndpointsConfig"]["net1"][
        "Aliases"]
    assert aliases == ["server-4"]
    assert "SERVER_ID=Server 4" in c["create"]["Env"]
    assert c["labels"]["ringlb.replica"] == "Server 4"
    for k in range(300):
        r = e2e.get(lb.port, "/home?request_id=%d" % k)
        if r.header("X-Served-By") == "Server 4":
            assert r.json()["message"] == "Hello from Server: Server 4"
            break
    else:
        pytest.fail("no key of 300 went to Server 4")
    # names that would take Server 4's container name or alias are
    # refused by name, and nothing is created
    creates = len([e for e in fake_engine.control.log()
                   if "/containers/create" in e["path"]])
    for name, what in [("Server-4", "the container name ringlb-Server-4"),
                       ("server-4", "the network alias server-4"),
                       ("server 4", "the network alias server-4"),
                       ("SERVER_4", "the network alias server-4"),
                       ("Server.4", "the network alias server-4"),
                       ("Server 4-", "the network alias server-4")]:
        r = e2e.post_json(lb.port, "/add", {"n": 1, "hostnames": [name]})
        assert r.status == 400, (name, r.body)
        assert r.json()["message"] == (
            "<Error> replica name '%s' would take %s, which is replica "
            "'Server 4''s%s; choose another name" % (
                name, what, "" if "container" in what else
                " (container ringlb-Server-4)")), r.body
    # two such names in one /add: the second is refused
    r = e2e.post_json(lb.port, "/add", {"n": 2, "hostnames": ["Lab A",
                                                              "lab-a"]})
    assert r.status == 400
    assert "'lab-a' would take the network alias lab-a, which is replica " \
        "'Lab A''s" in r.json()["message"]
    assert len([e for e in fake_engine.control.log()
                if "/containers/create" in e["path"]]) == creates
    assert e2e.rep_names(lb.port) == ["Server 2", "Server 3", "Server 4"]
    # Server 1, until its container is removed, still holds the alias
    # server-1: "server 1" is refused meanwhile, and says why
    r = e2e.post_json(lb.port, "/add", {"n": 1, "hostnames": ["server 1"]})
    assert r.status in (200, 400), r.body
    if r.status == 400:
        assert "being removed: try again once it is gone" in r.body.decode()
    else:
        e2e.post_json(lb.port, "/rm", {"n": 1, "hostnames": ["server 1"]},
                      method="DELETE")
    e2e.wait_for(lambda: all(
        x["name"] not in ("Server 1", "server 1") for x in
        e2e.get(lb.port, "/status").json()["replicas"]), timeout=20,
        what="Server 1 and server 1 gone")
    # a generated name skips one that would clash: "server 1" holds
    # server-1, so the gap Server 1 is not taken; Server 5 is
    r = e2e.post_json(lb.port, "/add", {"n": 2, "hostnames": ["server 1"]})
    assert r.status == 200, r.body
    assert r.json()["message"]["replicas"] == [
        "Server 2", "Server 3", "Server 4", "Server 5", "server 1"]
    assert ours(fake_engine)["server 1"]["name"] == "ringlb-server-1"
    r = e2e.post_json(lb.port, "/rm", {"n": 3, "hostnames": ["Server 4",
                                                             "server 1"]},
                      method="DELETE")
    assert r.status == 200, r.body
    assert r.json()["message"]["N"] == 2
    fake_engine.control.wait_state(
        lambda s: sorted(ours(fake_engine, running=False)) ==
        ["Server 2", "Server 3"], what="the removed containers gone")


def test_killed_container_is_replaced_under_its_name(procs, fake_engine):
    lb = docker_lb(procs, fake_engine)
    old = ours(fake_engine)["Server 2"]["id"]
    load = e2e.Load(lb.port, threads=2)
    try:
        time.sleep(0.3)
        fake_engine.control.crash("ringlb-Server-2")
        e2e.wait_for(lambda: ours(fake_engine).get("Server 2", {}).get(
            "id", old) != old, timeout=10, what="a new container for Server 2")
        e2e.wait_healthy(lb.port, 3)
        time.sleep(0.3)
    finally:
        load.stop()
    assert load.failures == []
    assert len(load.served) > 50 and "Server 2" in load.served
    # under load a failed request or heartbeat may tell first; either way
    assert "replica Server 2 evicted" in log_text(lb)
    # the old one is gone, not merely stopped
    assert all(c["id"] != old for c in fake_engine.control.state()["containers"])


def test_death_is_learned_from_the_event_stream(procs, fake_engine):
    """With heartbeats a minute apart and no traffic, only the engine's
    die event can tell ringlb that a container is gone, at once."""
    lb = docker_lb(procs, fake_engine, "--health-interval", "60000",
                   "--health-timeout", "1000")
    fake_engine.control.wait_state(lambda s: s["streams"] == 1,
                                   what="ringlb's event stream")
    old = ours(fake_engine)["Server 1"]["id"]
    t0 = time.monotonic()
    fake_engine.control.crash("ringlb-Server-1")
    e2e.wait_for(lambda: ours(fake_engine).get("Server 1", {}).get(
        "id", old) != old, timeout=10, what="a new container for Server 1")
    assert time.monotonic() - t0 < 10
    assert "replica Server 1 evicted (its container died (exit code 137))" \
        in log_text(lb)


def test_adopts_running_containers_named_in_the_state_file(procs, fake_engine,
                                                           tmp_path):
    state = tmp_path / "state.json"
    lb = docker_lb(procs, fake_engine, "--state-file", str(state))
    before = {n: c["id"] for n, c in ours(fake_engine).items()}
    lb.send_signal(signal.SIGKILL)      # a crash: no cleanup
    lb.wait()
    # a leftover the state file does not name
    fake_engine.control.create("ringlb-stray", server_id="stray",
                               labels={"ringlb.owner": OWNER,
                                       "ringlb.replica": "stray"})
    fake_engine.control.start("ringlb-stray")
    assert sorted(ours(fake_engine)) == ["Server 1", "Server 2", "Server 3", "stray"]
    lb2 = docker_lb(procs, fake_engine, "--state-file", str(state))
    assert {n: c["id"] for n, c in ours(fake_engine).items()} == before
    assert "adopting its running container" in log_text(lb2)
    assert ("docker: found 4 containers labelled ringlb.owner=%s, left by "
            "an earlier ringlb: 3 adopted, 0 replaced, 1 removed" % OWNER) \
        in log_text(lb2), log_text(lb2)
    fake_engine.control.wait_state(
        lambda s: "stray" not in ours(fake_engine, running=False),
        what="the stray container removed")
    creates = [e for e in fake_engine.control.log()
               if e["path"].startswith("/v1.41/containers/create")]
    assert len(creates) == 3        # only the first ringlb created any


def test_without_state_file_leftovers_are_replaced(procs, fake_engine):
    lb = docker_lb(procs, fake_engine)
    before = {n: c["id"] for n, c in ours(fake_engine).items()}
    lb.send_signal(signal.SIGKILL)
    lb.wait()
    lb2 = docker_lb(procs, fake_engine)
    after = {n: c["id"] for n, c in ours(fake_engine).items()}
    # said, not done silently
    log = log_text(lb2)
    assert ("docker: found 3 containers labelled ringlb.owner=%s, left by "
            "an earlier ringlb: 0 adopted, 3 replaced, 0 removed" % OWNER) \
        in log, log
    for name in before:
        assert "replica %s: replacing its container " % name in log, log
    assert "left by an earlier ringlb (no state file named it)" in log
    assert sorted(after) == sorted(before)
    assert not set(after.values()) & set(before.values())
    assert all(c["labels"].get("ringlb.owner") == OWNER and c["running"]
               for c in fake_engine.control.state()["containers"])


def test_sigterm_removes_every_container(procs, fake_engine):
    lb = docker_lb(procs, fake_engine)
    assert len(ours(fake_engine)) == 3
    lb.send_signal(signal.SIGTERM)
    assert lb.wait(timeout=20) == 0
    assert ours(fake_engine, running=False) == {}


def test_engine_unreachable(procs):
    code, log = start_failing(procs, None)
    assert code != 0
    assert "cannot reach the Docker engine at unix:///nonexistent/docker.sock" in log


def test_bad_docker_host(procs):
    code, log = start_failing(procs, None, env={"DOCKER_HOST": "ssh://x"})
    assert code != 0
    assert "DOCKER_HOST 'ssh://x' is neither unix:///PATH nor tcp://HOST:PORT" in log


def test_image_missing(procs, fake_engine):
    fake_engine.control.remove_image("ringlb:latest")
    code, log = start_failing(procs, fake_engine)
    assert code != 0
    assert "the image ringlb:latest is not there: build it with make build" in log
    assert not any("/images/create" in e["path"] for e in fake_engine.control.log())
    assert ours(fake_engine, running=False) == {}


def test_network_missing(procs, fake_engine):
    code, log = start_failing(procs, fake_engine, "--docker-network", "nonet")
    assert code != 0
    assert "the network nonet does not exist: create it with docker network " \
        "create nonet" in log


def test_engine_needing_a_newer_api(procs, fake_engines):
    engine = fake_engines(api="1.47", min_api="1.44")
    lb = docker_lb(procs, engine)
    assert len(ours(engine)) == 3
    assert "API 1.47" in log_text(lb)
    assert all(e["path"].startswith("/v1.47/") or e["path"] == "/version"
               for e in engine.control.log())


def test_create_500_fails_the_add_whole(procs, fake_engine):
    lb = docker_lb(procs, fake_engine)
    fake_engine.control.fault("create", status=500, message="disk full",
                              count=1)
    r = e2e.post_json(lb.port, "/add", {"n": 2})
    assert r.status == 500, r.body
    msg = r.json()["message"]
    assert "could not create container" in msg and "disk full" in msg
    assert "nothing was added" in msg
    assert e2e.rep_names(lb.port) == ["Server 1", "Server 2", "Server 3"]
    # the one that was created is removed again
    fake_engine.control.wait_state(
        lambda s: sorted(ours(fake_engine, running=False)) ==
        ["Server 1", "Server 2", "Server 3"], what="the half-added one removed")


def test_name_held_by_a_container_not_ours(procs, fake_engine):
    lb = docker_lb(procs, fake_engine)
    fake_engine.control.create("ringlb-web", server_id="x",
                               labels={"owner": "someone"})
    r = e2e.post_json(lb.port, "/add", {"n": 1, "hostnames": ["web"]})
    assert r.status == 500
    msg = r.json()["message"]
    assert "a container named ringlb-web already exists and is not ringlb's" in msg
    assert "docker rm -f ringlb-web" in msg
    # and it was left alone
    assert fake_engine.control.container("ringlb-web") is not None


def test_name_held_by_a_leftover_of_ours(procs, fake_engine):
    lb = docker_lb(procs, fake_engine)
    fake_engine.control.create("ringlb-web", server_id="old",
                               labels={"ringlb.owner": OWNER,
                                       "ringlb.replica": "web"})
    r = e2e.post_json(lb.port, "/add", {"n": 1, "hostnames": ["web"]})
    assert r.status == 200, r.body
    c = fake_engine.control.container("ringlb-web")
    assert c["running"] and "SERVER_ID=web" in c["create"]["Env"]


def test_slow_create_past_start_timeout(procs, fake_engine):
    lb = docker_lb(procs, fake_engine, "--start-timeout", "1000")
    fake_engine.control.fault("create", status=0, delay_ms=2500, count=1)
    t0 = time.monotonic()
    r = e2e.post_json(lb.port, "/add", {"n": 1, "hostnames": ["slow"]})
    assert r.status == 500
    assert "within --start-timeout (1000 ms)" in r.json()["message"]
    assert time.monotonic() - t0 < 2.4
    # the create the engine finished late is removed: nothing leaks
    time.sleep(2.0)
    fake_engine.control.wait_state(
        lambda s: fake_engine.control.container("ringlb-slow") is None,
        timeout=8, what="the late container removed")
    assert e2e.rep_names(lb.port) == ["Server 1", "Server 2", "Server 3"]


def test_event_stream_cut_then_death_is_noticed(procs, fake_engine):
    lb = docker_lb(procs, fake_engine)
    fake_engine.control.wait_state(lambda s: s["streams"] == 1,
                                   what="ringlb's event stream")
    assert fake_engine.control.cut_events() == 1
    # a death while no stream is open is found by listing afterwards
    fake_engine.control.fault("events", status=500, message="restarting",
                              count=2)
    old = ours(fake_engine)["Server 3"]["id"]
    fake_engine.control.crash("ringlb-Server-3")
    e2e.wait_for(lambda: ours(fake_engine).get("Server 3", {}).get("id",
                 old) != old, timeout=15, what="Server 3 replaced")
    fake_engine.control.wait_state(lambda s: s["streams"] == 1,
                                   what="the stream opened again")
    e2e.wait_healthy(lb.port, 3)
    log = log_text(lb)
    assert "opening it again" in log and "event stream is open again" in log


def test_docker_max(procs, fake_engine):
    lb = docker_lb(procs, fake_engine, "--docker-max", "4")
    r = e2e.post_json(lb.port, "/add", {"n": 2})
    assert r.status == 400
    assert "at most 4 replicas" in r.json()["message"]
    assert "--docker-max" in r.json()["message"]
    code, log = start_failing(procs, fake_engine, "--replicas", "5",
                              "--docker-max", "4")
    assert code != 0 and "at most 4" in log


def test_replicas_do_not_get_the_admin_token(procs, fake_engine):
    lb = docker_lb(procs, fake_engine, env={"RINGLB_ADMIN_TOKEN": "s3cret-token"})
    for c in ours(fake_engine).values():
        assert not any("s3cret" in e for e in c["create"]["Env"])
    r = e2e.post_json(lb.port, "/add", {"n": 1})
    assert r.status == 401


def test_auto_reach_outside_the_engines_containers(procs, fake_engine):
    """Not a container of this engine (whatever /.dockerenv says): the
    replicas are reached through ports published on 127.0.0.1."""
    lb = docker_lb(procs, fake_engine, reach=None)
    assert "reached through ports published on 127.0.0.1" in log_text(lb)
    assert e2e.get(lb.port, "/home").status == 200


def test_name_removed_and_added_back_at_once(procs, fake_engine):
    lb = docker_lb(procs, fake_engine)
    old = ours(fake_engine)["Server 2"]["id"]
    r = e2e.post_json(lb.port, "/rm", {"n": 1, "hostnames": ["Server 2"]},
                      method="DELETE")
    assert r.status == 200, r.body
    r = e2e.post_json(lb.port, "/add", {"n": 1, "hostnames": ["Server 2"]})
    assert r.status == 200, r.body
    assert r.json()["message"]["replicas"] == ["Server 1", "Server 2", "Server 3"]
    fake_engine.control.wait_state(
        lambda s: [c["id"] for c in s["containers"]
                   if c["name"] == "ringlb-Server-2" and c["running"]] not in
        ([], [old]), what="a new container under the name")
    e2e.wait_healthy(lb.port, 3)
    assert e2e.get(lb.port, "/home").status == 200


def test_removal_already_in_progress_is_not_a_failure(procs, fake_engine):
    """A real engine answers 409 "removal ... already in progress" when
    two removals overlap; the name added back at once still comes up."""
    lb = docker_lb(procs, fake_engine)
    fake_engine.control.fault(
        "delete", status=409, count=1,
        message="removal of container ringlb-Server-2 is already in progress")
    r = e2e.post_json(lb.port, "/rm", {"n": 1, "hostnames": ["Server 2"]},
                      method="DELETE")
    assert r.status == 200, r.body
    r = e2e.post_json(lb.port, "/add", {"n": 1, "hostnames": ["Server 2"]})
    assert r.status == 200, r.body
    e2e.wait_healthy(lb.port, 3)
    fake_engine.control.wait_state(
        lambda s: len([c for c in s["containers"]
                       if c["name"] == "ringlb-Server-2"]) == 1,
        what="one container named ringlb-Server-2")
    assert "cannot remove" not in log_text(lb)


def test_containers_not_ours_are_never_touched(procs, fake_engines):
    """Even if the engine's label filter were not applied, ringlb removes
    or adopts only containers whose owner label is its own."""
    fake_engine = fake_engines(ignore_label_filter=True)
    c = fake_engine.control
    c.create("precious-db", server_id="db", labels={"app": "db"})
    c.start("precious-db")
    c.create("other-server-1", server_id="x",
             labels={"ringlb.owner": "someone-else",
                     "ringlb.replica": "Server 1"})
    c.start("other-server-1")
    lb = docker_lb(procs, fake_engine)
    assert e2e.get(lb.port, "/home").status == 200
    time.sleep(0.5)
    assert c.container("precious-db")["running"]
    assert c.container("other-server-1")["running"]
