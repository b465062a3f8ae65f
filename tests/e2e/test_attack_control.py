"""The control plane against inputs next to the ones its fixes were made
for: replicas failing before their first heartbeat, as well as after."""
import time

from conftest import get
from test_backoff import FLAKY, starts


def check_backs_off(t, window):
    """A handful of starts in `window` seconds, the gaps growing to
    several seconds (without back-off it was one every 0.5-5 s)."""
    assert 3 <= len(t) <= 7, (len(t), [round(x - t[0], 1) for x in t])
    gaps = [b - a for a, b in zip(t, t[1:])]
    assert gaps[-1] >= 5, gaps


def test_replica_dying_before_its_first_heartbeat_backs_off(procs, tmp_path):
    """It exits 0.3 s after starting, never answering a heartbeat: each
    start fails, and failed starts in a row back off as deaths just after
    joining do (0.1 s, then 1 s doubling to 30 s), not every 5 s for
    ever."""
    log = str(tmp_path / "starts")
    lb = procs.ringlb((), "--replicas", "1", "--replica-bin", FLAKY,
                      env={"FLAKY_LOG": log, "FLAKY_EXIT_AT_START_MS": "300"},
                      healthy=0)
    time.sleep(26)
    check_backs_off(starts(log), 26)
    st = get(lb.port, "/status").json()
    # waiting for its next start, it is down, not starting
    assert st["replicas"][0]["state"] == "down", st["replicas"]
    kinds = [e["kind"] for e in st["events"]]
    assert "backing off" in kinds, kinds


def test_replica_hanging_before_its_first_heartbeat_backs_off(procs, tmp_path):
    """It never listens: each start ends at --start-timeout and the next
    one waits longer each time, instead of a new process every 0.5 s."""
    log = str(tmp_path / "starts")
    lb = procs.ringlb((), "--replicas", "1", "--replica-bin", FLAKY,
                      "--start-timeout", "500",
                      env={"FLAKY_LOG": log, "FLAKY_NEVER_LISTEN": "1"},
                      healthy=0)
    time.sleep(26)
    check_backs_off(starts(log), 26)
    with open(lb.log_path) as f:
        text = f.read()
    assert "in a row; starting it again in" in text, text[-2000:]
    assert get(lb.port, "/heartbeat").status == 503


def test_instance_given_up_on_is_not_counted_twice(procs, tmp_path):
    """It listens only after 0.8 s, with --start-timeout 500: each start
    is given up on at 0.5 s, and the instance's own exit at 0.8 s, while
    the next start waits, is the same failure, not another one."""
    log = str(tmp_path / "starts")
    lb = procs.ringlb((), "--replicas", "1", "--replica-bin", FLAKY,
                      "--start-timeout", "500",
                      env={"FLAKY_LOG": log, "FLAKY_EXIT_AT_START_MS": "800"},
                      healthy=0)
    time.sleep(10)
    with open(lb.log_path) as f:
        text = f.read()
    counts = [int(line.split(" times in a row")[0].rsplit(" ", 1)[1])
              for line in text.splitlines() if " times in a row" in line]
    n = len(starts(log))
    assert 3 <= n <= 7, starts(log)
    # each start fails once: the count in a row never runs ahead of them
    assert counts and max(counts) <= n, (counts, n, text[-2000:])


def test_a_name_ending_with_a_space_is_refused(procs, tmp_path):
    """"Server 4 " would show as "Server 4" in /rep and on the dashboard,
    and /rm of "Server 4" would not find it; --replicas already drops
    blanks around names.  /add refuses it, saying why."""
    from conftest import request
    lb = procs.ringlb((), "--replicas", "Server 1 , Server 2 ", healthy=2)
    assert get(lb.port, "/rep").json()["message"]["replicas"] == [
        "Server 1", "Server 2"]
    for name in ("Server 4 ", "Server 4  ", "S "):
        r = request(lb.port, "POST", "/add",
                    body='{"n": 1, "hostnames": ["%s"]}' % name)
        assert r.status == 400, (name, r.body)
        assert "not ending with a space" in r.json()["message"], r.body
    r = request(lb.port, "POST", "/add",
                body='{"n": 1, "hostnames": ["Server  4"]}')
    assert r.status == 200, r.body
    assert len(get(lb.port, "/rep").json()["message"]["replicas"]) == 3


def heartbeat_failures(port):
    text = get(port, "/metrics").body.decode()
    return {line.split('"')[1]: int(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("ringlb_heartbeat_failures_total{")}


def test_a_healthy_start_counts_no_heartbeat_failure(procs):
    """The checks sent while a new replica is still starting up (refused
    until it listens) are not failed heartbeats: a healthy start, or a
    healthy /add, leaves ringlb_heartbeat_failures_total at 0, where an
    alert on it fired at every start."""
    from conftest import request
    lb = procs.ringlb((), "--replicas", "2", healthy=2)
    r = request(lb.port, "POST", "/add", body='{"n": 1}')
    assert r.status == 200, r.body
    time.sleep(1)
    assert heartbeat_failures(lb.port) == {
        "Server 1": 0, "Server 2": 0, "Server 3": 0}
