"""ringlb-analyze: its reports are whole and agree with the daemon."""
import json
import os
import subprocess

from conftest import BUILD

ANALYZE = os.path.join(BUILD, "ringlb-analyze")


def run(*args):
    out = subprocess.run([ANALYZE] + list(args), capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_default_ring_shares_and_movement():
    # exact quantities (no timing): the default ring's spread and movement
    d = json.loads(run("ring", "--json", "--replicas", "3,8,16,32,64"))
    assert d["algo"] == "table"
    for r in d["results"]:
        assert abs(sum(r["shares"]) - 1) < 1e-6
        assert len(r["shares"]) == r["replicas"]
        assert r["max_over_mean"] <= 1.02
        assert r["moved_on_add_over_ideal"] <= 1.05
        assert r["moved_on_remove_over_ideal"] <= 1.05


def test_other_rings_report_too():
    for algo in ("hash", "classic"):
        d = json.loads(run("ring", "--json", "--algo", algo, "--replicas", "3"))
        assert d["algo"] == algo
        assert abs(sum(d["results"][0]["shares"]) - 1) < 1e-6


def test_bounded_never_over_the_cap():
    d = json.loads(run("bounded", "--json", "--replicas", "4", "--factors", "0,1.25"))
    off, capped = d["results"]
    assert off["displaced"] == 0
    # peak load stays within the cap: ceil(1.25 * 201 / 4) = 63, mean 50
    assert capped["peak_over_mean"] <= 63 / 50
    assert capped["displaced"] > 0


def test_load_against_ringlb(procs):
    lb = procs.ringlb((), "--replicas", "3", healthy=3)
    d = json.loads(run("load", "--json", "--url", "http://127.0.0.1:%d/home" % lb.port,
                       "--requests", "3000", "--concurrency", "16"))
    assert d["errors"] == 0 and d["requests"] == 3000
    assert sorted(d["replicas"]) == ["Server 1", "Server 2", "Server 3"]
    assert sum(d["replicas"].values()) == 3000
    # the same counts as ringlb's own
    import urllib.request
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % lb.port).read().decode()
    for name, count in d["replicas"].items():
        assert 'ringlb_replica_requests_total{replica="%s"} %d' % (name, count) in text
