"""Hop-by-hop rules hold for answers as for requests: the headers a
replica's Connection header names stay between it and ringlb."""
from conftest import get


def test_connection_named_answer_headers_are_dropped(procs):
    bad = procs.badreplica("bad")
    lb = procs.ringlb([bad], "--health-interval", "60000")
    r = get(lb.port, "/conn-named")
    assert r.status == 200 and r.body == b"ok"
    names = [k.lower() for k, _ in r.headers]
    assert "x-public" in names
    assert "x-internal" not in names, r.headers
    assert "x-other" not in names, r.headers
    assert not any("x-internal" in v.lower() or "x-other" in v.lower()
                   for _, v in r.headers), r.headers
    assert r.header("X-Served-By") == "bad"
    # the next answer on a fresh replica connection is untouched
    r = get(lb.port, "/ok")
    assert r.status == 200 and r.body == b'{"ok": true}'
