"""Back-off for replicas that die soon after they start."""
import os
import time

from conftest import get, wait_for

FLAKY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "flaky_replica.py")


def starts(path):
    try:
        with open(path) as f:
            return [float(line.split()[0]) for line in f]
    except FileNotFoundError:
        return []


def test_replica_dying_after_its_first_heartbeat_backs_off(procs, tmp_path):
    """It answers one heartbeat, joins, and exits 0.1 s later: restarted
    at once the first time, then after 1, 2, 4, 8 s ... (30 s at most)."""
    log = str(tmp_path / "starts")
    lb = procs.ringlb((), "--replicas", "1", "--replica-bin", FLAKY,
                      env={"FLAKY_LOG": log, "FLAKY_DIE_AFTER_MS": "100"},
                      healthy=0)
    time.sleep(12)
    t = starts(log)
    # unchecked it was ~100 starts in 10 s; now 0, ~0.3, ~1.5, ~3.5, ~7.5
    assert 3 <= len(t) <= 7, (len(t), t)
    gaps = [b - a for a, b in zip(t, t[1:])]
    assert gaps[-1] >= 2.5, gaps
    assert all(b >= a - 0.5 for a, b in zip(gaps[1:], gaps[2:])), gaps
    st = get(lb.port, "/status").json()
    assert st["replicas"][0]["respawns"] == len(t) - 1
    kinds = [e["kind"] for e in st["events"]]
    assert "backing off" in kinds, kinds
    with open(lb.log_path) as f:
        text = f.read()
    assert "times in a row; starting a replacement in" in text, text[-2000:]
    assert get(lb.port, "/heartbeat").status in (200, 503)


def test_replica_that_stays_up_after_early_deaths_serves(procs, tmp_path):
    """Three quick deaths, then a start that stays up: it joins and
    serves; the back-off never stops it from coming back."""
    log = str(tmp_path / "starts")
    lb = procs.ringlb((), "--replicas", "1", "--replica-bin", FLAKY,
                      env={"FLAKY_LOG": log, "FLAKY_DIE_AFTER_MS": "100",
                           "FLAKY_DIE_TIMES": "3"},
                      healthy=0)
    wait_for(lambda: len(starts(log)) >= 4, timeout=15, what="a 4th start")
    wait_for(lambda: get(lb.port, "/heartbeat").status == 200, timeout=5,
             what="the 4th instance on the ring")
    r = get(lb.port, "/home?request_id=1")
    assert r.status == 200, r.body
    time.sleep(1)
    assert len(starts(log)) == 4
