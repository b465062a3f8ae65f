"""The classic seeds' replica names work verbatim.

The seed setup names its replicas "Server 1", "Server 2", "Server 3", and
its README removes "Server 1" by name and adds "Server 4".  ringlb, started
as `make run` starts it, must take those bodies as they are; names with a
space must come out right in /rep, /map_request, X-Served-By, /metrics,
/status and the state file.  `--replicas` takes a count or a list of names;
`--name-style dns` brings back server-1, server-2, ...
"""
import json
import os
import re
import shlex
import signal
import subprocess

import pytest

from conftest import (BUILD, RINGLB, ROOT, children, free_port, get, request,
                      rep_names, wait_for, wait_healthy, wait_port)

SEEDS = ["Server 1", "Server 2", "Server 3"]


def curl_d(port, method, path, body):
    """What `curl -X METHOD localhost:PORT/path -d 'BODY'` sends: a form
    content type, the body as given."""
    return request(port, method, path, body=body.encode(), headers={
        "Content-Type": "application/x-www-form-urlencoded"})


def make_run_argv(port):
    """The command `make run PORT=port` runs, on loopback instead of
    0.0.0.0 (tests listen on 127.0.0.1 only), with this build's binary."""
    r = subprocess.run(["make", "-s", "-n", "--no-print-directory", "run",
                        "PORT=%d" % port], cwd=ROOT, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=60,
                       env={k: v for k, v in os.environ.items()
                            if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL",
                                         "ARGS")})
    assert r.returncode == 0, r.stderr
    line = r.stdout.strip().splitlines()[-1]
    argv = shlex.split(line)
    assert argv[:3] == ["build/ringlb", "--listen", "0.0.0.0:%d" % port], line
    return [RINGLB, "--listen", "127.0.0.1:%d" % port] + argv[3:]


@pytest.fixture
def make_run(procs):
    port = free_port()
    p = procs.start(make_run_argv(port), port, name="ringlb")
    p.port = port
    wait_healthy(port, 3)
    return p


def ok(r, names):
    assert r.status == 200, r.body
    assert r.json() == {"message": {"N": len(names), "replicas": names},
                        "status": "successful"}


def test_seed_flows_verbatim(make_run):
    port = make_run.port
    # the seed's /rep
    ok(get(port, "/rep"), SEEDS)
    assert sorted(children(make_run.pid)) == SEEDS
    # GET /home answers from a seed-named replica, by its name
    r = get(port, "/home")
    assert r.status == 200, r.body
    assert r.header("X-Served-By") in SEEDS
    assert r.json() == {"message": "Hello from Server: %s" %
                        r.header("X-Served-By"), "status": "successful"}
    # the seed README's removal of Server 1, by name
    ok(curl_d(port, "DELETE", "/rm", '{"n": 1, "hostnames": ["Server 1"]}'),
       ["Server 2", "Server 3"])
    wait_for(lambda: sorted(children(make_run.pid)) == SEEDS[1:],
             what="Server 1's process to exit")
    # and its addition of Server 4
    ok(curl_d(port, "POST", "/add", '{"n": 1, "hostnames": ["Server 4"]}'),
       ["Server 2", "Server 3", "Server 4"])
    r = get(port, "/map_request?id=42")
    assert r.status == 200
    owner = r.json()["mapped_server"]
    assert r.json() == {"request_id": 42, "mapped_server": owner}
    assert owner in ("Server 2", "Server 3", "Server 4")
    r = get(port, "/home?request_id=42")
    assert r.header("X-Served-By") == owner
    assert r.json()["message"] == "Hello from Server: %s" % owner
    # every replica answers its own keys under its own name
    seen = set()
    for k in range(200):
        owner = get(port, "/map_request?id=%d" % k).json()["mapped_server"]
        r = get(port, "/home?request_id=%d" % k)
        assert r.status == 200 and r.header("X-Served-By") == owner, k
        assert r.json()["message"] == "Hello from Server: %s" % owner
        seen.add(owner)
    assert seen == {"Server 2", "Server 3", "Server 4"}

    # the seed's other examples: three named, a fourth generated (the
    # smallest free number: Server 1, which /rm left free)
    ok(curl_d(port, "POST", "/add",
              '{"n": 4, "hostnames": ["S5", "S4", "S6"]}'),
       ["S4", "S5", "S6", "Server 1", "Server 2", "Server 3", "Server 4"])
    r = curl_d(port, "POST", "/add",
               '{"n": 2, "hostnames": ["S5", "S4", "S6"]}')
    assert r.status == 400
    assert r.json() == {"message": "<Error> Length of hostname list is more "
                        "than newly added instances", "status": "failure"}
    # /rm of two named and one more: the newest, the generated Server 1
    ok(curl_d(port, "DELETE", "/rm", '{"n": 3, "hostnames": ["S5", "S4"]}'),
       ["S6", "Server 2", "Server 3", "Server 4"])
    r = curl_d(port, "DELETE", "/rm",
               '{"n": 2, "hostnames": ["S5", "S4", "S6"]}')
    assert r.status == 400
    assert r.json() == {"message": "<Error> Length of hostname list is more "
                        "than removable instances", "status": "failure"}
    r = get(port, "/other")
    assert r.status == 404
    assert r.json() == {"message": "<Error> '/other' endpoint does not exist "
                        "in server replicas", "status": "failure"}
    # a name already there is refused by name
    r = curl_d(port, "POST", "/add", '{"n": 1, "hostnames": ["Server 4"]}')
    assert r.status == 400
    assert "'Server 4' is already a replica" in r.json()["message"]


def test_generated_names_continue_the_style(procs):
    lb = procs.ringlb((), healthy=3)
    assert rep_names(lb.port) == SEEDS
    r = curl_d(lb.port, "POST", "/add", '{"n": 1}')
    ok(r, SEEDS + ["Server 4"])
    # a gap is filled first; names in use (or asked for) are skipped
    ok(curl_d(lb.port, "DELETE", "/rm", '{"n": 1, "hostnames": ["Server 2"]}'),
       ["Server 1", "Server 3", "Server 4"])
    ok(curl_d(lb.port, "POST", "/add",
              '{"n": 3, "hostnames": ["Server 5"]}'),
       ["Server 1", "Server 2", "Server 3", "Server 4", "Server 5",
        "Server 6"])
    # the process backend runs "server 7" beside "Server 7": other names
    ok(curl_d(lb.port, "POST", "/add", '{"n": 1, "hostnames": ["server 7"]}'),
       ["Server 1", "Server 2", "Server 3", "Server 4", "Server 5",
        "Server 6", "server 7"])
    ok(curl_d(lb.port, "POST", "/add", '{"n": 1}'),
       ["Server 1", "Server 2", "Server 3", "Server 4", "Server 5",
        "Server 6", "Server 7", "server 7"])


def test_names_with_spaces_everywhere(procs, tmp_path):
    state = tmp_path / "state.json"
    lb = procs.ringlb((), "--state-file", str(state), healthy=3)
    port = lb.port
    r = curl_d(port, "POST", "/add", '{"n": 1, "hostnames": ["Server 4"]}')
    ok(r, SEEDS + ["Server 4"])
    k = next(k for k in range(1000) if get(
        port, "/map_request?id=k%d" % k).json()["mapped_server"] ==
        "Server 4")
    r = get(port, "/home?request_id=k%d" % k)
    assert r.header("X-Served-By") == "Server 4"
    # /metrics: the label value as it is (a space needs no escape), and
    # every sample line well formed
    text = get(port, "/metrics").body.decode()
    sample = re.compile(r'^[a-z_]+(\{replica="[A-Za-z0-9][A-Za-z0-9 _.-]*"'
                        r'(,[a-z]+="[^"\\]*")*\}|\{[a-z]+="[^"\\]*"\})? '
                        r'[0-9.e+-]+$')
    for line in text.splitlines():
        if not line.startswith("#"):
            assert sample.match(line), line
    assert 'ringlb_replica_requests_total{replica="Server 4"} 1' in text
    for name in SEEDS + ["Server 4"]:
        assert 'ringlb_replica_up{replica="%s"} 1' % name in text
    # /status, which the dashboard draws
    st = get(port, "/status").json()
    assert sorted(r["name"] for r in st["replicas"]) == SEEDS + ["Server 4"]
    assert sorted(st["ring"]["members"]) == SEEDS + ["Server 4"]
    # the state file, and a restart that restores the same names
    with open(state) as f:
        assert sorted(json.load(f)["replicas"]) == SEEDS + ["Server 4"]
    lb.send_signal(signal.SIGTERM)
    lb.wait(timeout=15)
    lb2 = procs.ringlb((), "--state-file", str(state), healthy=4)
    assert rep_names(lb2.port) == SEEDS + ["Server 4"]
    assert get(lb2.port, "/map_request?id=k%d" % k).json()[
        "mapped_server"] == "Server 4"


def test_replicas_takes_a_list_of_names(procs):
    lb = procs.ringlb((), "--replicas", " Server 1, Server 2 ,Lab A,",
                      healthy=3)
    assert rep_names(lb.port) == ["Lab A", "Server 1", "Server 2"]
    assert sorted(children(lb.pid)) == ["Lab A", "Server 1", "Server 2"]
    # generated names go on around the given ones
    ok(curl_d(lb.port, "POST", "/add", '{"n": 2}'),
       ["Lab A", "Server 1", "Server 2", "Server 3", "Server 4"])
    # the environment does as the flag
    lb2 = procs.ringlb((), env={"RINGLB_REPLICAS": "Server 1,Server 4"},
                       healthy=2)
    assert rep_names(lb2.port) == ["Server 1", "Server 4"]
    # a flag wins over the environment, a count as well as a list
    lb3 = procs.ringlb((), "--replicas", "2",
                       env={"RINGLB_REPLICAS": "A,B,C"}, healthy=2)
    assert rep_names(lb3.port) == ["Server 1", "Server 2"]


@pytest.mark.parametrize("args,env,message", [
    (["--replicas", "Server 1,Server 1"], {},
     "--replicas: replica name 'Server 1' is given twice; each replica "
     "needs a name of its own"),
    (["--replicas", "Server 1, Server 2,Server 1 "], {},
     "replica name 'Server 1' is given twice"),
    ([], {"RINGLB_REPLICAS": "A,B,A"},
     "RINGLB_REPLICAS: replica name 'A' is given twice"),
    (["--replicas", "Server 1,bad/name"], {},
     "replica name 'bad/name' must be letters, digits, spaces, '_', '.' "
     "and '-', starting with a letter or digit"),
    (["--replicas", "-x"], {}, "replica name '-x' must be"),
    (["--replicas", "a" * 64], {}, "is longer than 63 characters"),
    (["--replicas", " , "], {}, "names no replica"),
    (["--replicas", "300"], {}, "must be a count from 0 to 256"),
    (["--replicas", "-1"], {}, "must be a count from 0 to 256"),
    (["--backend", "static", "--replicas", "a,b"], {},
     "the static backend takes replicas as NAME=HOST:PORT, not names alone"),
    (["--name-style", "Server"], {},
     "--name-style: name style 'Server': use 'seed' (Server 1, Server 2, "
     "...) or 'dns' (server-1, server-2, ...)"),
    ([], {"RINGLB_NAME_STYLE": "DNS"}, "RINGLB_NAME_STYLE: name style 'DNS'"),
])
def test_bad_replica_lists_are_refused(args, env, message):
    port = free_port()
    full = {k: v for k, v in os.environ.items()
            if not k.startswith("RINGLB_")}
    full.update(env)
    r = subprocess.run([RINGLB, "--listen", "127.0.0.1:%d" % port] + args,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=10, env=full)
    assert r.returncode != 0
    assert message in r.stderr, r.stderr


def test_name_style_dns_is_the_old_style(procs):
    lb = procs.ringlb((), "--name-style", "dns", healthy=3)
    assert rep_names(lb.port) == ["server-1", "server-2", "server-3"]
    ok(curl_d(lb.port, "POST", "/add", '{"n": 2, "hostnames": ["Server 4"]}'),
       ["Server 4", "server-1", "server-2", "server-3", "server-4"])
    lb2 = procs.ringlb((), env={"RINGLB_NAME_STYLE": "dns",
                                "RINGLB_REPLICAS": "2"}, healthy=2)
    assert rep_names(lb2.port) == ["server-1", "server-2"]
    # the flag wins over the environment
    lb3 = procs.ringlb((), "--name-style", "seed", "--replicas", "1",
                       env={"RINGLB_NAME_STYLE": "dns"}, healthy=1)
    assert rep_names(lb3.port) == ["Server 1"]
