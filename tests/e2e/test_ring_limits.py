"""What each ring can hold, and what one membership change may cost."""
import re
import subprocess
import time

import pytest

from conftest import (RINGLB, children, free_port, get, post_json, rep_names,
                      wait_healthy)


def error(r):
    e = r.json()
    assert e["status"] == "failure" and e["message"].startswith("<Error> "), e
    return e["message"]


def test_classic_ring_refuses_an_add_past_56(procs):
    lb = procs.ringlb((), "--ring", "classic", "--replicas", "54", healthy=54)
    r = post_json(lb.port, "/add", {"n": 2})
    assert r.status == 200, r.body
    wait_healthy(lb.port, 56)
    before = children(lb.pid)
    for body in ({"n": 1}, {"n": 1, "hostnames": ["extra"]}, {"n": 3}):
        r = post_json(lb.port, "/add", body)
        assert r.status == 400, (body, r.status, r.body)
        msg = error(r)
        assert "at most 56 replicas" in msg, msg
        assert "--ring table" in msg and "classic ring" in msg, msg
    time.sleep(0.3)
    assert children(lb.pid) == before
    # every replica listed is on the ring: none shows up without keys
    st = get(lb.port, "/status").json()
    assert len(st["replicas"]) == 56
    assert all(r["on_ring"] for r in st["replicas"]), [
        r["name"] for r in st["replicas"] if not r["on_ring"]]
    assert len(rep_names(lb.port)) == 56


def test_classic_ring_after_a_removal_takes_one_more(procs):
    lb = procs.ringlb((), "--ring", "classic", "--replicas", "56", healthy=56)
    r = post_json(lb.port, "/rm", {"n": 1}, method="DELETE")
    assert r.status == 200, r.body
    r = post_json(lb.port, "/add", {"n": 1, "hostnames": ["back"]})
    assert r.status == 200, r.body
    wait_healthy(lb.port, 56)
    r = post_json(lb.port, "/add", {"n": 1})
    assert r.status == 400 and "at most 56" in error(r)


@pytest.mark.parametrize("argv", [
    ["--ring", "classic", "--replicas", "57"],
    ["--ring", "classic", "--replicas", "200", "--max-replicas", "256"],
    ["--ring", "classic"] + sum((["--replica", "r%d=127.0.0.1:%d" % (i, 40000 + i)]
                                 for i in range(57)), []),
])
def test_classic_ring_start_past_56_exits_2(argv):
    p = subprocess.run([RINGLB, "--listen", "127.0.0.1:%d" % free_port()] + argv,
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "classic ring places at most 56" in p.stderr, p.stderr
    assert "--ring table" in p.stderr, p.stderr


def test_classic_ring_env_start_past_56_exits_2():
    p = subprocess.run([RINGLB, "--listen", "127.0.0.1:%d" % free_port()],
                       env={"RINGLB_RING": "classic", "RINGLB_REPLICAS": "60",
                            "RINGLB_MAX_REPLICAS": "100"},
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "at most 56" in p.stderr, p.stderr
