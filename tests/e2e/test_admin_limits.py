"""What /add may ask of each backend: the static backend starts nothing,
the process backend runs at most --max-replicas processes."""
import subprocess
import time

from conftest import RINGLB, children, free_port, post_json, rep_names, wait_healthy


def static_lb(procs, n=2, *extra):
    reps = [procs.replica("s%d" % (i + 1)) for i in range(n)]
    return procs.ringlb(reps, *extra), reps


def error(r):
    e = r.json()
    assert e["status"] == "failure" and e["message"].startswith("<Error> "), e
    return e["message"]


def test_static_add_of_a_count_is_the_clients_error(procs):
    lb, _ = static_lb(procs)
    for body in ({"n": 1}, {"n": 3}, b'{"n":1}'):
        r = post_json(lb.port, "/add", body)
        assert r.status == 400, (body, r.status, r.body)
        msg = error(r)
        assert "static backend starts nothing" in msg, msg
        assert "--replica NAME=HOST:PORT" in msg and "hostnames" in msg, msg
        assert "'s1', 's2'" in msg, msg
    assert rep_names(lb.port) == ["s1", "s2"]


def test_static_add_of_an_unknown_name_is_the_clients_error(procs):
    lb, _ = static_lb(procs)
    for name in ("s9", "Server 4", "server-3"):
        r = post_json(lb.port, "/add", {"n": 1, "hostnames": [name]})
        assert r.status == 400, (name, r.status, r.body)
        msg = error(r)
        assert "no address for '%s'" % name in msg, msg
        assert "--replica %s=HOST:PORT" % name in msg, msg
    assert rep_names(lb.port) == ["s1", "s2"]


def test_static_add_brings_back_a_removed_replica(procs):
    lb, _ = static_lb(procs)
    r = post_json(lb.port, "/rm", {"n": 1, "hostnames": ["s2"]}, method="DELETE")
    assert r.status == 200, r.body
    # a count beyond the names is still refused: nothing to generate
    r = post_json(lb.port, "/add", {"n": 2, "hostnames": ["s2"]})
    assert r.status == 400, r.body
    r = post_json(lb.port, "/add", {"n": 1, "hostnames": ["s2"]})
    assert r.status == 200, r.body
    assert r.json()["message"]["replicas"] == ["s1", "s2"]
    wait_healthy(lb.port, 2)


def test_process_add_past_max_replicas_is_refused(procs):
    lb = procs.ringlb((), "--replicas", "2", "--max-replicas", "4", healthy=2)
    before = children(lb.pid)
    r = post_json(lb.port, "/add", {"n": 3})
    assert r.status == 400, r.body
    msg = error(r)
    assert "at most 4 replicas" in msg and "--max-replicas" in msg, msg
    assert "3 more would make 5" in msg, msg
    time.sleep(0.3)
    assert children(lb.pid) == before
    r = post_json(lb.port, "/add", {"n": 2})
    assert r.status == 200, r.body
    assert len(rep_names(lb.port)) == 4
    r = post_json(lb.port, "/add", {"n": 1})
    assert r.status == 400 and "at most 4 replicas" in error(r)


def test_process_default_ceiling_is_64(procs):
    """A runaway /add (the default allows 64 processes) starts nothing."""
    lb = procs.ringlb((), "--replicas", "3", healthy=3)
    before = children(lb.pid)
    r = post_json(lb.port, "/add", {"n": 62})
    assert r.status == 400, (r.status, r.body)
    assert "at most 64 replicas" in error(r)
    time.sleep(0.3)
    assert children(lb.pid) == before
    assert len(rep_names(lb.port)) == 3


def test_start_past_max_replicas_exits_2(procs):
    for argv, env, text in (
            (["--replicas", "5", "--max-replicas", "4"], {},
             "--replicas 5 is more than --max-replicas 4"),
            (["--replicas", "65"], {}, "--replicas 65 is more than --max-replicas 64"),
            ([], {"RINGLB_REPLICAS": "9", "RINGLB_MAX_REPLICAS": "8"},
             "--replicas 9 is more than --max-replicas 8"),
            (["--max-replicas", "0"], {}, "must be a number from 1 to 256"),
            (["--max-replicas", "257"], {}, "must be a number from 1 to 256")):
        p = subprocess.run([RINGLB, "--listen", "127.0.0.1:%d" % free_port()] + argv,
                           env=env, capture_output=True, text=True, timeout=10)
        assert p.returncode == 2, (argv, p.returncode, p.stderr)
        assert text in p.stderr, (argv, p.stderr)
