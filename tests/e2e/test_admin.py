"""The admin API: /rep, /add, /rm, /heartbeat, /metrics, and who may use it."""
import json
import os
import threading

import pytest

from conftest import (REPLICA, WRAPPER, alive, children, get, post_json, rep_names,
                      request, wait_for)


def managed(procs, *extra, n=3, env=None):
    """ringlb with the process backend and n replicas, all up."""
    args = ["--replicas", str(n)] + list(extra)
    return procs.ringlb((), *args, env=env, healthy=n)


def test_starts_three_replica_processes(procs):
    lb = managed(procs)
    assert rep_names(lb.port) == ["Server 1", "Server 2", "Server 3"]
    kids = children(lb.pid)
    assert sorted(kids) == ["Server 1", "Server 2", "Server 3"]
    seen = {get(lb.port, "/home?request_id=%d" % k).header("X-Served-By")
            for k in range(60)}
    assert seen == {"Server 1", "Server 2", "Server 3"}
    hb = get(lb.port, "/heartbeat")
    assert hb.status == 200 and hb.json() == {"N": 3, "healthy": 3,
                                               "status": "successful"}


def test_add_and_rm_change_processes(procs):
    lb = managed(procs)
    r = post_json(lb.port, "/add", {"n": 2, "hostnames": ["S5"]})
    assert r.status == 200, r.body
    assert r.json() == {"message": {"N": 5, "replicas": [
        "S5", "Server 1", "Server 2", "Server 3", "Server 4"]},
        "status": "successful"}
    kids = children(lb.pid)
    assert sorted(kids) == ["S5", "Server 1", "Server 2", "Server 3", "Server 4"]
    # the new replicas take traffic at once
    owners = {get(lb.port, "/home?request_id=%d" % k).header("X-Served-By")
              for k in range(100)}
    assert {"S5", "Server 4"} <= owners

    s5 = kids["S5"]
    r = post_json(lb.port, "/rm", {"n": 1, "hostnames": ["S5"]}, method="DELETE")
    assert r.status == 200
    assert r.json()["message"] == {"N": 4, "replicas": [
        "Server 1", "Server 2", "Server 3", "Server 4"]}
    wait_for(lambda: not alive(s5), what="S5's process to exit")
    assert "S5" not in children(lb.pid)
    # n beyond the names: ringlb picks the newest
    r = post_json(lb.port, "/rm", {"n": 1}, method="DELETE")
    assert r.status == 200 and rep_names(lb.port) == ["Server 1", "Server 2", "Server 3"]
    wait_for(lambda: sorted(children(lb.pid)) == ["Server 1", "Server 2", "Server 3"],
             what="Server 4's process to exit")
    for k in range(50):
        assert get(lb.port, "/home?request_id=%d" % k).status == 200


BAD_ADD = [
    (b"", "must be JSON"),
    (b"not json", "must be JSON"),
    (b"[1, 2]", "JSON object"),
    (b"{\"n\": 1, \"n\": 2}", "duplicate object key"),
    ({"hostnames": ["a"]}, "\"n\" must be a positive whole number"),
    ({"n": 0}, "\"n\" must be a positive whole number"),
    ({"n": -2}, "\"n\" must be a positive whole number"),
    ({"n": "2"}, "\"n\" must be a positive whole number"),
    ({"n": 1.5}, "\"n\" must be a positive whole number"),
    ({"n": 1, "hostnames": ["a", "b"]}, "Length of hostname list is more than newly added instances"),
    ({"n": 2, "hostnames": "a"}, "must be a list"),
    ({"n": 2, "hostnames": ["a", "a"]}, "given twice"),
    ({"n": 1, "hostnames": ["Server 2"]}, "already a replica"),
    ({"n": 1, "hostnames": [""]}, "is empty"),
    ({"n": 1, "hostnames": ["x" * 64]}, "longer than 63"),
    ({"n": 1, "hostnames": ["bad/name"]}, "must be letters"),
    ({"n": 1, "hostnames": ["-a"]}, "must be letters"),
    ({"n": 1, "hostnames": [7]}, "must be a string"),
    ({"n": 1, "hostname": ["a"]}, "unknown field 'hostname'"),
    ({"n": 100000}, "at most 256"),
]

BAD_RM = [
    (b"{", "must be JSON"),
    ({"n": 0}, "\"n\" must be a positive whole number"),
    ({"n": 1, "hostnames": ["Server 1", "Server 2"]}, "Length of hostname list is more than removable instances"),
    ({"n": 4}, "only 3 replicas"),
    ({"n": 1, "hostnames": ["nope"]}, "is not a replica"),
    ({"n": 2, "hostnames": ["Server 1", "Server 1"]}, "given twice"),
]


def test_bad_admin_requests_change_nothing(procs):
    lb = managed(procs)
    before = children(lb.pid)
    for body, text in BAD_ADD:
        r = post_json(lb.port, "/add", body)
        assert r.status == 400, (body, r.status, r.body)
        e = r.json()
        assert e["status"] == "failure" and e["message"].startswith("<Error> ")
        assert text in e["message"], (body, e)
    for body, text in BAD_RM:
        r = post_json(lb.port, "/rm", body, method="DELETE")
        assert r.status == 400, (body, r.status, r.body)
        assert text in r.json()["message"], (body, r.json())
    # wrong methods
    assert request(lb.port, "GET", "/add").status == 405
    r = request(lb.port, "POST", "/rm", body=b"{}")
    assert r.status == 405 and r.header("Allow") == "DELETE"
    assert rep_names(lb.port) == ["Server 1", "Server 2", "Server 3"]
    assert children(lb.pid) == before


def test_failed_add_is_undone(procs):
    env = {"REPLICA_REAL_BIN": REPLICA}
    lb = managed(procs, "--replica-bin", WRAPPER, env=env)
    before = children(lb.pid)
    r = post_json(lb.port, "/add", {"n": 3, "hostnames": ["ok-1", "boom-1", "ok-2"]})
    assert r.status == 500
    msg = r.json()["message"]
    assert "'boom-1' could not be started" in msg and "nothing was added" in msg
    assert rep_names(lb.port) == ["Server 1", "Server 2", "Server 3"]
    wait_for(lambda: children(lb.pid) == before, what="ok-1 and ok-2 to be stopped")
    # the names are free again
    r = post_json(lb.port, "/add", {"n": 1, "hostnames": ["ok-1"]})
    assert r.status == 200 and "ok-1" in r.json()["message"]["replicas"]


def test_one_change_at_a_time(procs):
    env = {"REPLICA_REAL_BIN": REPLICA}
    lb = managed(procs, "--replica-bin", WRAPPER, env=env)
    slow = {}

    def add_slow():
        slow["r"] = post_json(lb.port, "/add", {"n": 1, "hostnames": ["slow-1"]})

    t = threading.Thread(target=add_slow)
    t.start()
    wait_for(lambda: "slow-1" in children(lb.pid) or slow, what="slow-1 to start")
    r = post_json(lb.port, "/add", {"n": 1, "hostnames": ["other"]})
    t.join(10)
    assert r.status == 409 and "another /add" in r.json()["message"]
    assert slow["r"].status == 200
    assert rep_names(lb.port) == ["Server 1", "Server 2", "Server 3", "slow-1"]
    # while it was starting, slow-1 was not listed
    assert "other" not in rep_names(lb.port)


def test_token_guards_add_and_rm(procs):
    lb = managed(procs, env={"RINGLB_ADMIN_TOKEN": "s3cret-token"})
    r = post_json(lb.port, "/add", {"n": 1})
    assert r.status == 401
    assert r.header("WWW-Authenticate").startswith("Bearer")
    assert "Authorization: Bearer" in r.json()["message"]
    r = post_json(lb.port, "/add", {"n": 1}, headers={"Authorization": "Bearer nope"})
    assert r.status == 403 and "token" in r.json()["message"]
    r = post_json(lb.port, "/rm", {"n": 1}, method="DELETE")
    assert r.status == 401
    assert rep_names(lb.port) == ["Server 1", "Server 2", "Server 3"]
    r = post_json(lb.port, "/add", {"n": 1},
                  headers={"Authorization": "Bearer s3cret-token"})
    assert r.status == 200 and r.json()["message"]["N"] == 4
    # read-only endpoints stay open
    assert get(lb.port, "/rep").status == 200
    assert get(lb.port, "/metrics").status == 200
    with open(lb.log_path) as f:
        assert "need 'Authorization: Bearer <token>'" in f.read()
    # the replicas never see the token (nor any other RINGLB_ setting)
    for pid in children(lb.pid).values():
        with open("/proc/%d/environ" % pid, "rb") as f:
            env = f.read().split(b"\0")
        assert not any(e.startswith(b"RINGLB_") for e in env), env
        assert not any(b"s3cret-token" in e for e in env)


def test_loopback_rule_is_logged(procs):
    lb = managed(procs, n=1)
    assert post_json(lb.port, "/add", {"n": 1}).status == 200
    with open(lb.log_path) as f:
        assert "accepted from loopback only" in f.read()


def test_metrics(procs):
    lb = managed(procs)
    for k in range(30):
        assert get(lb.port, "/home?request_id=%d" % k).status == 200
    r = get(lb.port, "/metrics")
    assert r.status == 200
    assert r.header("Content-Type").startswith("text/plain; version=0.0.4")
    text = r.body.decode()
    values = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert line.startswith("# HELP ringlb_") or line.startswith("# TYPE ringlb_")
            continue
        name, value = line.rsplit(" ", 1)
        values[name] = float(value)
    per = [values['ringlb_replica_requests_total{replica="Server %d"}' % i] for i in (1, 2, 3)]
    assert sum(per) == 30
    assert all(values['ringlb_replica_up{replica="Server %d"}' % i] == 1 for i in (1, 2, 3))
    assert values["ringlb_request_duration_seconds_count"] == 30
    assert values['ringlb_request_duration_seconds_bucket{le="+Inf"}'] == 30
    buckets = [v for k, v in values.items() if k.startswith("ringlb_request_duration_seconds_bucket")]
    assert buckets == sorted(buckets)
    assert values['ringlb_responses_total{code="2xx"}'] == 30
    assert values["ringlb_replicas"] == 3 and values["ringlb_replicas_healthy"] == 3
    assert values["ringlb_ring_points"] == 1 << 21     # the table ring's arcs
    assert 'ringlb_respawns_total{replica="Server 1"}' in values
    shares = [values['ringlb_replica_keyspace_share{replica="Server %d"}' % i]
              for i in (1, 2, 3)]
    assert abs(sum(shares) - 1) < 1e-5 and min(shares) > 0.32
    assert 0 < values["ringlb_ring_last_change_moved_ratio"] <= 1
    assert values["ringlb_bounded_displaced_total"] == 0
    assert 'ringlb_heartbeat_failures_total{replica="Server 1"}' in values


def test_seed_style_names_with_spaces(procs):
    """The classic assignment's bodies name replicas like "Server 4"."""
    lb = managed(procs)
    r = post_json(lb.port, "/add", {"n": 1, "hostnames": ["Server 4"]})
    assert r.status == 200, r.body
    assert "Server 4" in r.json()["message"]["replicas"]
    assert "Server 4" in children(lb.pid)
    # some key routes to it, and its answer names it
    for k in range(200):
        a = get(lb.port, "/home?request_id=%d" % k)
        if a.header("X-Served-By") == "Server 4":
            assert a.json()["message"] == "Hello from Server: Server 4"
            m = get(lb.port, "/map_request?id=%d" % k).json()
            assert m["mapped_server"] == "Server 4"
            break
    else:
        pytest.fail("no key of 200 went to Server 4")
    r = post_json(lb.port, "/rm", {"n": 1, "hostnames": ["Server 4"]},
                  method="DELETE")
    assert r.status == 200, r.body
    assert rep_names(lb.port) == ["Server 1", "Server 2", "Server 3"]
    wait_for(lambda: "Server 4" not in children(lb.pid),
             what="Server 4's process to exit")
