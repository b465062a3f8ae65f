"""What each ring can hold, and what one membership change may cost."""
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import (RINGLB, children, free_port, get, post_json, rep_names,
                      wait_healthy)

# 200 sanitized replicas are more than a shared machine can start quickly
BIG = 64 if os.environ.get("RINGLB_TEST_SANITIZED") else 200
FLAKY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "flaky_replica.py")


def error(r):
    e = r.json()
    assert e["status"] == "failure" and e["message"].startswith("<Error> "), e
    return e["message"]


def test_classic_ring_refuses_an_add_past_56(procs):
    lb = procs.ringlb((), "--ring", "classic", "--replicas", "54", healthy=0)
    wait_healthy(lb.port, 54, timeout=60)
    r = post_json(lb.port, "/add", {"n": 2})
    assert r.status == 200, r.body
    wait_healthy(lb.port, 56, timeout=30)
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
    lb = procs.ringlb((), "--ring", "classic", "--replicas", "56", healthy=0)
    wait_healthy(lb.port, 56, timeout=60)
    r = post_json(lb.port, "/rm", {"n": 1}, method="DELETE")
    assert r.status == 200, r.body
    r = post_json(lb.port, "/add", {"n": 1, "hostnames": ["back"]})
    assert r.status == 200, r.body
    wait_healthy(lb.port, 56, timeout=30)
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


def heartbeat_failures(port):
    """{replica: heartbeat failures so far} from /metrics."""
    out = {}
    for line in get(port, "/metrics").body.decode().splitlines():
        m = re.match(r'ringlb_heartbeat_failures_total\{replica="(.*)"\} (\d+)', line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def test_big_hash_ring_changes_do_not_stall_heartbeats(procs):
    """200 replicas of 4096 points each (819,200 points): a change used to
    sort them all, blocking the loop for 0.2-0.6 s, long enough for
    heartbeats already answered to be judged timed out."""
    lb = procs.ringlb((), "--ring", "hash", "--vnodes", "4096",
                      "--replicas", str(BIG), "--max-replicas", "256", healthy=0)
    wait_healthy(lb.port, BIG, timeout=90)
    before = heartbeat_failures(lb.port)
    for k in range(3):
        r = post_json(lb.port, "/add", {"n": 2})
        assert r.status == 200, r.body
        r = post_json(lb.port, "/rm", {"n": 2}, method="DELETE")
        assert r.status == 200, r.body
    time.sleep(1.5)
    after = heartbeat_failures(lb.port)
    grew = {n: after[n] - before[n] for n in before
            if n in after and after[n] != before[n]}
    assert grew == {}, grew
    assert get(lb.port, "/heartbeat").json()["healthy"] == BIG
    with open(lb.log_path) as f:
        text = f.read()
    assert "evicted" not in text, [l for l in text.splitlines() if "evicted" in l][:5]


def test_heartbeat_answered_while_the_loop_was_stopped_is_not_a_timeout(procs):
    """ringlb stopped (SIGSTOP) while heartbeats are out: their answers wait
    in the sockets; when it runs again they are past their deadline, which
    libcurl checks first.  They are asked again, not counted as failures."""
    reps = []
    for i in range(4):
        port = free_port()
        p = procs.start([FLAKY, "--id", "slow-%d" % i, "--listen",
                         "127.0.0.1:%d" % port],
                        port, env={"FLAKY_HEARTBEAT_MS": "150"}, name="slow")
        p.name, p.port = "slow-%d" % i, port
        reps.append(p)
    lb = procs.ringlb(reps, "--health-interval", "100", "--health-timeout", "400",
                      "--log-level", "debug")
    before = heartbeat_failures(lb.port)
    for _ in range(4):
        lb.send_signal(signal.SIGSTOP)
        time.sleep(0.8)
        lb.send_signal(signal.SIGCONT)
        time.sleep(0.4)
    time.sleep(0.5)
    assert heartbeat_failures(lb.port) == before
    assert get(lb.port, "/heartbeat").json()["healthy"] == 4
    with open(lb.log_path) as f:
        text = f.read()
    assert "evicted" not in text
    assert "(the loop was busy); asking again" in text
