"""ringlb's swarm backend against the fake engine in swarm mode
(fakedocker.py, swarm=True).

Runs on every machine: each replica service's task is a ringlb-replica
the fake starts on a loopback address of its own (127.0.0.N) at the
port ringlb asks for with --docker-port, as a real task listens on its
overlay address.  What a real one-node swarm (test_swarm.py) cannot
show is driven from here: a manager without quorum, a service create
refused, a task rescheduled to a new address, the event stream cut, and
two balancers changing the shared set at the same moment.

Every ringlb listens on 127.0.0.1 (so no admin token is needed) and is
stopped by pid; every wait is bounded.
"""
import os
import signal
import threading
import time

import pytest

from engine_fixtures import e2e, fake_engines  # noqa: F401


OWNER = "ringlb-swarm-test"
NET = "ringlb-overlay"
KEYS = 2000
# the engine's words, as a manager without quorum answers
NO_LEADER = ("rpc error: code = Unknown desc = The swarm does not have a leader. It's possible "
             "that too few managers are online. Make sure more than half of the managers are "
             "online.")
SEED = ["Server 1", "Server 2", "Server 3"]


@pytest.fixture
def procs(tmp_path):
    """Processes of a test; every ringlb not meant to fail must exit 0
    at SIGTERM."""
    ps = e2e.Procs(str(tmp_path))
    yield ps
    ps.stop_all()
    for p in ps.procs:
        if e2e.RINGLB in p.args and not getattr(p, "must_fail", False) and \
                p.returncode not in (0, -signal.SIGKILL):
            pytest.fail("ringlb exited with %s:\n%s" % (p.returncode, log_text(p)[-3000:]))


@pytest.fixture
def swarm(fake_engines):
    """A fake one-node swarm manager with the overlay network NET; its
    replicas listen on engine.port (each at its own address)."""
    engine = fake_engines(swarm=True)
    engine.control.add_network(NET, driver="overlay")
    engine.port = e2e.free_port()
    return engine


def swarm_argv(engine, *extra, n=3):
    port = getattr(engine, "port", None) or e2e.free_port()
    return ["--backend", "swarm", "--replicas", str(n), "--docker-owner", OWNER,
            "--docker-network", NET, "--docker-port", str(port),
            "--health-interval", "100", "--health-timeout", "300", *extra]


def swarm_lb(procs, engine, *extra, n=3, healthy=None):
    """ringlb with the swarm backend on the fake, `healthy` (default n)
    replicas on its ring."""
    return procs.ringlb((), *swarm_argv(engine, *extra, n=n),
                        env={"DOCKER_HOST": engine.docker_host},
                        healthy=n if healthy is None else healthy)


def services(engine):
    """{replica name: the fake's service record} of our owner."""
    return {s["labels"]["ringlb.replica"]: s for s in engine.control.swarm()["services"]
            if s["labels"].get("ringlb.owner") == OWNER}


def creates(engine):
    return [e for e in engine.control.log()
            if e["method"] == "POST" and e["path"].endswith("/services/create")]


def log_text(p):
    with open(p.log_path, errors="replace") as f:
        return f.read()


def status(lb):
    return e2e.get(lb.port, "/status").json()


def backend(lb):
    return status(lb)["backend"]


def address_of(lb, name):
    for r in status(lb)["replicas"]:
        if r["name"] == name:
            return r["address"]
    return None


def on_ring(lb):
    return sorted(r["name"] for r in status(lb)["replicas"] if r["on_ring"])


def owners(lb, keys=KEYS):
    """The replica each of `keys` keys maps to."""
    return [e2e.get(lb.port, "/map_request?id=k%d" % k).json()["mapped_server"]
            for k in range(keys)]


def add(lb, body):
    return e2e.post_json(lb.port, "/add", body)


def rm(lb, names):
    return e2e.post_json(lb.port, "/rm", {"n": len(names), "hostnames": names},
                         method="DELETE")


def served_by(lb, name, tries=300):
    """A request whose key maps to name: its answer."""
    for k in range(tries):
        if e2e.get(lb.port, "/map_request?id=q%d" % k).json()["mapped_server"] == name:
            return e2e.get(lb.port, "/home?request_id=q%d" % k)
    raise AssertionError("no key of %d maps to %s" % (tries, name))


def start_failing(procs, engine, *extra):
    """ringlb that must exit at startup; returns (exit code, log)."""
    p = procs.start([e2e.RINGLB, "--listen", "127.0.0.1:%d" % e2e.free_port(),
                     *swarm_argv(engine, *extra)],
                    env={"DOCKER_HOST": engine.docker_host}, name="ringlb")
    p.must_fail = True
    code = p.wait(timeout=20)
    return code, log_text(p)


# --- the set at startup ------------------------------------------------------

def test_starts_on_an_empty_set_and_creates_its_replicas(procs, swarm):
    lb = swarm_lb(procs, swarm)
    svcs = services(swarm)
    assert sorted(svcs) == SEED
    s1 = svcs["Server 1"]
    assert s1["name"] == "ringlb-Server-1"
    spec = s1["spec"]
    assert spec["Labels"] == {"ringlb.owner": OWNER, "ringlb.replica": "Server 1"}
    cs = spec["TaskTemplate"]["ContainerSpec"]
    assert cs["Args"] == ["--listen", "0.0.0.0:%d" % swarm.port]
    assert cs["Env"] == ["SERVER_ID=Server 1"]
    assert spec["TaskTemplate"]["Networks"] == [{"Target": NET}]
    assert spec["TaskTemplate"]["RestartPolicy"]["Condition"] == "on-failure"
    assert spec["EndpointSpec"] == {"Mode": "dnsrr"}
    assert spec["Mode"] == {"Replicated": {"Replicas": 1}}
    # each replica at its task's address, all on the one port
    addrs = {n: address_of(lb, n) for n in SEED}
    assert len(set(addrs.values())) == 3
    for n in SEED:
        assert addrs[n] == "%s:%d" % (swarm.control.running_task(
            "ringlb-" + n.replace(" ", "-"))["address"], swarm.port)
    for k in range(30):
        r = e2e.get(lb.port, "/home?request_id=%d" % k)
        assert r.status == 200
        owner = e2e.get(lb.port, "/map_request?id=%d" % k).json()["mapped_server"]
        assert r.header("X-Served-By") == owner
        assert r.json()["message"] == "Hello from Server: %s" % owner
    b = backend(lb)
    assert (b["name"], b["manager"], b["event_stream"], b["owner"], b["network"],
            b["services"]) == ("swarm", "reachable", "open", OWNER, NET, 3)
    assert b["listed_ms_ago"] >= 0 and "error" not in b


def test_starts_on_an_existing_set_and_creates_none(procs, swarm):
    c = swarm.control
    for sname, name in (("ringlb-alpha", "alpha"), ("ringlb-beta", "beta")):
        assert c.create_service(sname, replica=name, owner=OWNER, network=NET,
                                port=swarm.port).status == 201
    # another owner's service is not ours
    assert c.create_service("other-x", replica="Server 1", owner="someone",
                            network=NET, port=swarm.port).status == 201
    before = len(creates(swarm))
    lb = swarm_lb(procs, swarm, healthy=2)
    assert e2e.rep_names(lb.port) == ["alpha", "beta"]
    time.sleep(0.3)
    assert len(creates(swarm)) == before
    assert sorted(services(swarm)) == ["alpha", "beta"]
    assert "2 found, routing to those (creating none)" in log_text(lb)
    assert c.service("other-x") is not None
    assert {e2e.get(lb.port, "/home?request_id=%d" % k).header("X-Served-By")
            for k in range(40)} == {"alpha", "beta"}


# --- two balancers on one set ----------------------------------------------

def test_two_balancers_share_the_set(procs, swarm):
    lb1 = swarm_lb(procs, swarm)
    lb2 = swarm_lb(procs, swarm)
    assert len(creates(swarm)) == 3
    assert owners(lb1) == owners(lb2)
    # /add on one: the other routes to the new replica too
    r = add(lb1, {"n": 1})
    assert r.status == 200, r.body
    assert r.json()["message"]["replicas"] == SEED + ["Server 4"]
    e2e.wait_for(lambda: on_ring(lb2) == SEED + ["Server 4"], timeout=5,
                 what="lb2 routing to Server 4")
    assert owners(lb1) == owners(lb2)
    r = served_by(lb2, "Server 4")
    assert r.status == 200 and r.json()["message"] == "Hello from Server: Server 4"
    # /rm on one: the other stops routing there; the service goes
    r = rm(lb1, ["Server 2"])
    assert r.status == 200, r.body
    e2e.wait_for(lambda: "Server 2" not in on_ring(lb2), timeout=5,
                 what="lb2 no longer routing to Server 2")
    e2e.wait_for(lambda: "Server 2" not in services(swarm), timeout=10,
                 what="the service of Server 2 removed")
    e2e.wait_for(lambda: e2e.rep_names(lb2.port) == ["Server 1", "Server 3", "Server 4"],
                 timeout=5, what="lb2 without Server 2")
    assert owners(lb1) == owners(lb2)
    assert "Server 2" not in set(owners(lb2, 300))
    assert len(creates(swarm)) == 4


def test_a_name_being_removed_is_not_added_again_until_it_is_gone(procs, swarm):
    """/rm X then /add X at once: the new X would take over the service
    still going, then lose it.  Refused, saying why, until it is gone."""
    lb = swarm_lb(procs, swarm)
    r = rm(lb, ["Server 2"])
    assert r.status == 200, r.body
    r = add(lb, {"n": 1, "hostnames": ["Server 2"]})
    assert r.status == 400 and "being removed" in r.json()["message"], r.body
    e2e.wait_for(lambda: "Server 2" not in services(swarm), timeout=10,
                 what="the service of Server 2 removed")
    e2e.wait_for(lambda: add(lb, {"n": 1, "hostnames": ["Server 2"]}).status == 200,
                 timeout=10, what="Server 2 added again")
    e2e.wait_for(lambda: on_ring(lb) == SEED, timeout=10, what="Server 2 back")
    time.sleep(1.5)          # a listing or two: nothing takes it away
    assert on_ring(lb) == SEED and sorted(services(swarm)) == SEED


def test_an_rm_while_the_service_is_created_holds(procs, swarm):
    """/rm of a replica whose service is still being created: it goes,
    and is not found again afterwards."""
    swarm.control.fault("service_create", status=0, delay_ms=1500, count=1)
    lb = swarm_lb(procs, swarm, healthy=0)
    e2e.wait_for(lambda: len(e2e.rep_names(lb.port)) == 3, timeout=5,
                 what="the first set listed")
    victim = [n for n in SEED if n not in services(swarm)]
    assert victim, "every create was answered already"
    r = rm(lb, [victim[0]])
    assert r.status == 200, r.body
    e2e.wait_for(lambda: victim[0] not in services(swarm) and
                 len(on_ring(lb)) == 2, timeout=15,
                 what="the service removed, the others up")
    time.sleep(6)            # past a full listing: not found again
    assert victim[0] not in e2e.rep_names(lb.port)
    assert victim[0] not in services(swarm)


def test_an_add_undone_marks_its_services_leaving_first(procs, swarm):
    """An /add that fails after one of its services was made: another
    ringlb may already route to that one; it is marked leaving, so the
    other drops it before it is removed, and nothing is left."""
    lb1 = swarm_lb(procs, swarm)
    lb2 = swarm_lb(procs, swarm)
    swarm.control.fault("service_create", status=0, count=1)
    swarm.control.fault("service_create", status=500, delay_ms=1500,
                        message="rpc error: code = Unknown desc = boom", count=1)
    r = add(lb1, {"n": 2, "hostnames": ["alpha", "beta"]})
    assert r.status == 500 and "nothing was added" in r.json()["message"], r.body
    e2e.wait_for(lambda: sorted(services(swarm)) == SEED, timeout=10,
                 what="the half-added service removed")
    e2e.wait_for(lambda: e2e.rep_names(lb2.port) == SEED, timeout=10,
                 what="lb2 back to the seed")
    marks = [e for e in swarm.control.log() if e["method"] == "POST" and
             "/update" in e["path"]]
    assert marks, "the half-added service was removed without a leaving mark"


def test_two_adds_at_the_same_moment(procs, swarm):
    lb1 = swarm_lb(procs, swarm)
    lb2 = swarm_lb(procs, swarm)
    got = {}
    go = threading.Barrier(2)

    def run(lb):
        go.wait(5)
        got[lb.port] = add(lb, {"n": 1})

    threads = [threading.Thread(target=run, args=(lb,)) for lb in (lb1, lb2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    new = []
    for lb in (lb1, lb2):
        r = got[lb.port]
        assert r.status == 200, r.body
        new += [n for n in r.json()["message"]["replicas"] if n not in SEED]
    # two replicas, not one twice; none lost
    want = SEED + ["Server 4", "Server 5"]
    e2e.wait_for(lambda: sorted(services(swarm)) == want, timeout=5,
                 what="five services")
    assert len(swarm.control.swarm()["services"]) == 5
    for lb in (lb1, lb2):
        e2e.wait_for(lambda: on_ring(lb) == want, timeout=10,
                     what="both new replicas on every ring")
    assert "Server 4" in new and "Server 5" in new
    assert owners(lb1) == owners(lb2)


# --- the manager -----------------------------------------------------------

def test_a_manager_without_quorum_keeps_the_last_known_set(procs, swarm):
    lb = swarm_lb(procs, swarm)
    load = e2e.Load(lb.port, threads=2)
    try:
        swarm.control.quorum(True)
        # the stream's reopening lists the set at once (else within 5 s)
        swarm.control.cut_events()
        b = e2e.wait_for(lambda: (lambda b: b if b["manager"] == "unreachable" else None)(
            backend(lb)), timeout=8, what="the manager unreachable in /status")
        assert b["error"] == NO_LEADER
        assert b["routing"] == "the last known replica set"
        assert on_ring(lb) == SEED
        time.sleep(0.5)
        # a change is refused with the engine's words; nothing is added
        r = add(lb, {"n": 1})
        assert r.status == 500, r.body
        assert "The swarm does not have a leader" in r.json()["message"]
        assert e2e.rep_names(lb.port) == SEED
        swarm.control.quorum(False)
        swarm.control.cut_events()
        e2e.wait_for(lambda: backend(lb)["manager"] == "reachable", timeout=8,
                     what="the manager reachable again")
        assert "error" not in backend(lb)
        time.sleep(0.3)
    finally:
        load.stop()
    assert load.failures == []
    assert set(load.served) == set(SEED)
    log = log_text(lb)
    assert "routing to the last known set" in log
    assert "the manager answers again" in log
    assert sorted(services(swarm)) == SEED


def test_the_manager_unreachable_at_a_relisting(procs, swarm):
    """A listing that fails some other way (a 503 of a manager being
    demoted) is the same: the set as it was, the reason in /status."""
    lb = swarm_lb(procs, swarm)
    swarm.control.fault("service_list", status=503, count=-1,
                        message="This node is not a swarm manager. Manager is being prepared or "
                        "has trouble connecting to the cluster.")
    swarm.control.cut_events()
    b = e2e.wait_for(lambda: (lambda b: b if b["manager"] == "unreachable" else None)(
        backend(lb)), timeout=8, what="the manager unreachable in /status")
    assert "Manager is being prepared" in b["error"]
    assert e2e.get(lb.port, "/home").status == 200
    swarm.control.clear_faults()
    swarm.control.cut_events()
    e2e.wait_for(lambda: backend(lb)["manager"] == "reachable", timeout=8,
                 what="the manager reachable again")


# --- creates refused ---------------------------------------------------------

def test_a_name_held_by_a_service_not_ours(procs, swarm):
    lb = swarm_lb(procs, swarm)
    c = swarm.control
    assert c.create_service("ringlb-web", replica="web", owner="someone-else",
                            network=NET, port=swarm.port).status == 201
    r = add(lb, {"n": 1, "hostnames": ["web"]})
    assert r.status == 500, r.body
    msg = r.json()["message"]
    assert "a service named ringlb-web exists and is not replica web of owner %s" % OWNER \
        in msg, msg
    assert "docker service rm ringlb-web" in msg
    assert e2e.rep_names(lb.port) == SEED
    # left alone
    assert c.service("ringlb-web")["labels"]["ringlb.owner"] == "someone-else"
    assert sorted(services(swarm)) == SEED


def test_a_create_the_swarm_refuses_fails_the_add_whole(procs, swarm):
    lb = swarm_lb(procs, swarm)
    why = "rpc error: code = Unknown desc = no suitable node (scheduling constraints " \
          "not satisfied on 1 node)"
    # the second of two creates is refused: the first one is undone
    swarm.control.fault("service_create", status=0, count=1)
    swarm.control.fault("service_create", status=500, message=why, count=1)
    r = add(lb, {"n": 2})
    assert r.status == 500, r.body
    msg = r.json()["message"]
    assert why in msg and "nothing was added" in msg, msg
    assert e2e.rep_names(lb.port) == SEED
    e2e.wait_for(lambda: sorted(services(swarm)) == SEED, timeout=10,
                 what="the half-added service removed")
    assert on_ring(lb) == SEED


def test_a_node_without_the_image_fails_the_add(procs, swarm):
    lb = swarm_lb(procs, swarm)
    swarm.control.remove_image("ringlb:latest")
    t0 = time.monotonic()
    r = add(lb, {"n": 1, "hostnames": ["noimage"]})
    assert r.status == 500, r.body
    assert time.monotonic() - t0 < 10
    msg = r.json()["message"]
    assert "No such image: ringlb:latest" in msg and "nothing was added" in msg, msg
    e2e.wait_for(lambda: sorted(services(swarm)) == SEED, timeout=10,
                 what="the service of noimage removed")
    assert e2e.rep_names(lb.port) == SEED


# --- tasks that move or die ----------------------------------------------------

def test_a_task_rescheduled_to_a_new_address(procs, swarm):
    lb = swarm_lb(procs, swarm, "--health-interval", "60000", "--health-timeout", "1000")
    swarm.control.wait_state(lambda s: s["streams"] == 1, what="ringlb's event stream")
    old = address_of(lb, "Server 2")
    moved = swarm.control.reschedule("ringlb-Server-2")
    new = "%s:%d" % (moved["address"], swarm.port)
    assert new != old
    # off the ring at its die event, then back at the new address
    e2e.wait_for(lambda: address_of(lb, "Server 2") == new and "Server 2" in on_ring(lb),
                 timeout=10, what="Server 2 at its new address")
    r = served_by(lb, "Server 2")
    assert r.status == 200 and r.json()["message"] == "Hello from Server: Server 2"
    log = log_text(lb)
    assert "replica Server 2 evicted (its task's container died (exit code 0))" in log, log
    assert any(e["kind"] == "respawned" and e["replica"] == "Server 2"
               for e in status(lb)["events"])
    assert sorted(services(swarm)) == SEED and len(creates(swarm)) == 3


def test_a_task_moved_from_another_node_is_found_by_heartbeats(procs, swarm):
    """No die event reaches this manager from another node: the failed
    heartbeats tell, and the replica follows its task to the new address."""
    lb = swarm_lb(procs, swarm)
    old = address_of(lb, "Server 3")
    moved = swarm.control.reschedule("ringlb-Server-3", die_event=False)
    new = "%s:%d" % (moved["address"], swarm.port)
    e2e.wait_for(lambda: address_of(lb, "Server 3") == new and "Server 3" in on_ring(lb),
                 timeout=10, what="Server 3 at its new address")
    assert new != old
    assert served_by(lb, "Server 3").status == 200


def test_a_dead_task_is_replaced_by_the_swarm_not_by_ringlb(procs, swarm):
    lb = swarm_lb(procs, swarm, "--health-interval", "60000", "--health-timeout", "1000")
    swarm.control.wait_state(lambda s: s["streams"] == 1, what="ringlb's event stream")
    first = swarm.control.running_task("ringlb-Server-1")
    swarm.control.crash("ringlb-Server-1")
    e2e.wait_for(lambda: "Server 1" not in on_ring(lb), timeout=3,
                 what="Server 1 off the ring at its die event")
    # the restart policy's 1 s delay, then the new task
    e2e.wait_for(lambda: "Server 1" in on_ring(lb), timeout=10, what="Server 1 back")
    task = swarm.control.running_task("ringlb-Server-1")
    assert task["id"] != first["id"]
    assert address_of(lb, "Server 1") == "%s:%d" % (task["address"], swarm.port)
    assert "its task's container died (exit code 137)" in log_text(lb)
    assert len(creates(swarm)) == 3


# --- the event stream ----------------------------------------------------------

def test_a_hung_task_is_replaced_at_ringlbs_request(procs, swarm):
    """A task that runs but does not answer (stopped): no health check
    tells the swarm, so ringlb, having taken it back once in vain, asks
    for a new task (a forced update) and follows it to its address."""
    lb = swarm_lb(procs, swarm, "--start-timeout", "1000")
    task = swarm.control.running_task("ringlb-Server-1")
    old = address_of(lb, "Server 1")
    os.kill(task["pid"], signal.SIGSTOP)

    def moved():
        # one snapshot: on the ring, at an address other than the old one
        return any(r["name"] == "Server 1" and r["on_ring"] and
                   r["address"] not in ("", old)
                   for r in status(lb)["replicas"])
    try:
        e2e.wait_for(moved, timeout=40, what="Server 1 on a new task")
    finally:
        try:
            os.kill(task["pid"], signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert "asking the swarm to replace it" in log_text(lb), log_text(lb)[-3000:]
    r = served_by(lb, "Server 1")
    assert r.status == 200 and r.json()["message"] == "Hello from Server: Server 1"
    assert sorted(services(swarm)) == SEED and len(creates(swarm)) == 3


def test_the_event_stream_cut_then_a_change_is_seen(procs, swarm):
    lb = swarm_lb(procs, swarm)
    c = swarm.control
    c.wait_state(lambda s: s["streams"] == 1, what="ringlb's event stream")
    # the stream stays down a while; another ringlb adds meanwhile
    c.fault("events", status=500, message="the engine restarts", count=2)
    assert c.cut_events() == 1
    e2e.wait_for(lambda: backend(lb)["event_stream"] == "down", timeout=3,
                 what="the stream down in /status")
    assert c.create_service("ringlb-late", replica="late", owner=OWNER, network=NET,
                            port=swarm.port).status == 201
    e2e.wait_for(lambda: on_ring(lb) == SEED + ["late"], timeout=8,
                 what="the replica added meanwhile on the ring")
    c.wait_state(lambda s: s["streams"] == 1, what="the stream opened again")
    assert backend(lb)["event_stream"] == "open"
    log = log_text(lb)
    assert "opening it again" in log and "the event stream is open again" in log


# --- exit, and refusing to start ---------------------------------------------

def test_sigterm_removes_no_service(procs, swarm):
    lb = swarm_lb(procs, swarm)
    before = {n: s["id"] for n, s in services(swarm).items()}
    lb.send_signal(signal.SIGTERM)
    assert lb.wait(timeout=20) == 0
    time.sleep(0.3)
    assert {n: s["id"] for n, s in services(swarm).items()} == before
    assert not [e for e in swarm.control.log() if e["method"] == "DELETE"]
    for n in SEED:
        assert swarm.control.running_task("ringlb-" + n.replace(" ", "-")) is not None


def test_not_in_a_swarm(procs, fake_engines):
    engine = fake_engines()
    code, log = start_failing(procs, engine)
    assert code != 0
    assert "is not in a swarm (its state is inactive): make one with docker swarm init" in log


def test_a_swarm_worker(procs, fake_engines):
    engine = fake_engines(swarm="worker")
    code, log = start_failing(procs, engine)
    assert code != 0
    assert "is a swarm worker, not a manager" in log


def test_a_network_that_is_not_overlay(procs, fake_engines):
    engine = fake_engines(swarm=True)
    engine.control.add_network(NET)         # a bridge
    code, log = start_failing(procs, engine)
    assert code != 0
    assert "it is not an overlay network: %s: create it with docker network create " \
        "--driver overlay --attachable %s" % (NET, NET) in log, log
    engine.control.remove_network(NET)
    code, log = start_failing(procs, engine)
    assert code != 0
    assert "there is no network %s" % NET in log


def test_no_admin_token_off_loopback(procs, swarm):
    p = procs.start([e2e.RINGLB, "--listen", "0.0.0.0:%d" % e2e.free_port(),
                     *swarm_argv(swarm)], env={"DOCKER_HOST": swarm.docker_host},
                    name="ringlb")
    p.must_fail = True
    assert p.wait(timeout=20) != 0
    assert "the swarm backend needs an admin token" in log_text(p)
    assert swarm.control.swarm()["services"] == []
