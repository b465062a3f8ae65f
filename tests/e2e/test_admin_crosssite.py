"""/add and /rm refuse what a web browser sends for a page of another
site: a foreign or null Origin, Sec-Fetch-Site other than same-origin, and
(DNS rebinding) a Host that is not a name ringlb answers to.  curl,
scripts, Postman and the dashboard's own buttons keep working."""
import http.client
import shutil
import subprocess
import time

import pytest

from conftest import children, rep_names, request

TOKEN = "s3cret-token-42"


def raw(port, method, path, body=b'{"n": 1}', headers=(), host=None):
    """A request with exactly these headers (http.client adds no Host when
    one is given, nor Accept-Encoding)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host if host is not None else "127.0.0.1:%d" % port)
        for k, v in headers:
            conn.putheader(k, v)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def lb_with(procs, *extra, env=None, n=1):
    return procs.ringlb((), "--replicas", str(n), *extra, env=env, healthy=n)


def attacks(port):
    """(what, method, headers, host) a hostile page's browser would send."""
    me = "127.0.0.1:%d" % port
    plain = ("Content-Type", "text/plain;charset=UTF-8")
    return [
        ("foreign origin", "POST", [plain, ("Origin", "http://evil.example")], me),
        ("foreign origin, cross-site", "POST",
         [plain, ("Origin", "https://evil.example"), ("Sec-Fetch-Site", "cross-site"),
          ("Sec-Fetch-Mode", "no-cors")], me),
        ("null origin", "POST", [plain, ("Origin", "null")], me),
        ("another port of localhost", "POST",
         [plain, ("Origin", "http://localhost:3000"), ("Sec-Fetch-Site", "same-site")],
         "localhost:%d" % port),
        ("another port, same address", "POST",
         [plain, ("Origin", "http://127.0.0.1:%d" % (port + 1))], me),
        ("origin of another loopback name", "POST",
         [plain, ("Origin", "http://localhost:%d" % port)], me),
        ("cross-site, no origin", "POST", [("Sec-Fetch-Site", "cross-site")], me),
        ("same-site", "POST", [("Sec-Fetch-Site", "same-site")], me),
        ("odd Sec-Fetch-Site", "POST", [("Sec-Fetch-Site", "cross-site, same-origin")], me),
        ("DNS rebinding", "POST",
         [plain, ("Origin", "http://evil.example:%d" % port),
          ("Sec-Fetch-Site", "same-origin")], "evil.example:%d" % port),
        ("DNS rebinding, DELETE /rm", "DELETE",
         [("Origin", "http://rebind.evil.example:%d" % port)],
         "rebind.evil.example:%d" % port),
        ("foreign Host, no origin", "POST", [], "evil.example"),
        ("loopback-looking name", "POST", [], "127.0.0.1.nip.io:%d" % port),
        ("localhost subdomain of evil", "POST", [], "localhost.evil.example:%d" % port),
        ("listen address as a suffix", "POST", [], "x127.0.0.1:%d" % port),
        ("malformed origin", "POST", [("Origin", "evil.example")], me),
        ("origin with a path", "POST", [("Origin", "http://127.0.0.1:%d/x" % port)], me),
        ("origin of another scheme", "POST", [("Origin", "ftp://127.0.0.1:%d" % port)], me),
        ("two origins", "POST",
         [("Origin", "http://127.0.0.1:%d" % port), ("Origin", "http://evil.example")], me),
        ("bad port in Host", "POST", [], "localhost:99999"),
    ]


def test_cross_site_admin_requests_are_refused(procs):
    lb = lb_with(procs)
    before = children(lb.pid)
    names = rep_names(lb.port)
    for what, method, headers, host in attacks(lb.port):
        path = "/add" if method == "POST" else "/rm"
        status, body = raw(lb.port, method, path, headers=headers, host=host)
        assert status == 403, (what, status, body)
        assert b'"status":"failure"' in body and b"<Error> " in body, (what, body)
        assert b"refuses" in body, (what, body)
    time.sleep(0.3)
    assert children(lb.pid) == before
    assert rep_names(lb.port) == names


def test_refusals_say_what_to_change(procs):
    lb = lb_with(procs)
    me = "127.0.0.1:%d" % lb.port
    _, body = raw(lb.port, "POST", "/add", headers=[("Origin", "http://evil.example")])
    assert b"use the dashboard" in body and b"curl" in body, body
    _, body = raw(lb.port, "POST", "/add", headers=[("Sec-Fetch-Site", "cross-site")])
    assert b"Sec-Fetch-Site: cross-site" in body, body
    _, body = raw(lb.port, "POST", "/add", host="lb.example:%d" % lb.port)
    assert b"--admin-host lb.example" in body and b"RINGLB_ADMIN_TOKEN" in body, body
    _, body = raw(lb.port, "POST", "/add", headers=[("Origin", "null")])
    assert b"Origin: null" in body, body
    assert raw(lb.port, "POST", "/add", body=b'{"n": 0}', host=me)[0] == 400


def test_clients_that_are_not_browsers_and_own_pages_pass(procs):
    lb = lb_with(procs)
    p = lb.port
    form = ("Content-Type", "application/x-www-form-urlencoded")
    ok = [
        ("curl's form POST", [form], "127.0.0.1:%d" % p),
        ("localhost with port", [form], "localhost:%d" % p),
        ("localhost without port", [], "localhost"),
        ("upper case", [], "LocalHost:%d" % p),
        ("another loopback address, another port", [], "127.0.0.2:8080"),
        ("IPv6 loopback", [], "[::1]:%d" % p),
        ("the dashboard's fetch", [("Content-Type", "application/json"),
                                   ("Origin", "http://127.0.0.1:%d" % p),
                                   ("Sec-Fetch-Site", "same-origin"),
                                   ("Sec-Fetch-Mode", "cors")], "127.0.0.1:%d" % p),
        ("the dashboard by name", [("Origin", "http://localhost:%d" % p),
                                   ("Sec-Fetch-Site", "same-origin")], "localhost:%d" % p),
        ("a typed address", [("Sec-Fetch-Site", "none")], "127.0.0.1:%d" % p),
        ("text/plain without a browser's headers", [("Content-Type", "text/plain")],
         "127.0.0.1:%d" % p),
    ]
    for what, headers, host in ok:
        status, body = raw(p, "POST", "/add", headers=headers, host=host)
        assert status == 200, (what, status, body)
    assert len(rep_names(p)) == 1 + len(ok)
    status, body = raw(p, "DELETE", "/rm", body=b'{"n": 2}', headers=[
        ("Origin", "http://127.0.0.1:%d" % p), ("Sec-Fetch-Site", "same-origin")])
    assert status == 200, body
    # HTTP/1.0 without a Host: no browser sends that
    conn = http.client.HTTPConnection("127.0.0.1", p, timeout=10)
    conn._http_vsn, conn._http_vsn_str = 10, "HTTP/1.0"
    conn.putrequest("DELETE", "/rm", skip_host=True, skip_accept_encoding=True)
    conn.putheader("Content-Length", "8")
    conn.endheaders(b'{"n": 1}')
    r = conn.getresponse()
    assert r.status == 200, r.read()
    conn.close()


@pytest.mark.skipif(shutil.which("curl") is None, reason="no curl")
def test_readme_curl_commands_still_work(procs):
    lb = lb_with(procs)
    out = subprocess.run(["curl", "-s", "-X", "POST", "localhost:%d/add" % lb.port,
                          "-d", '{"n":1}'], capture_output=True, text=True, timeout=20)
    assert '"status":"successful"' in out.stdout, out.stdout
    out = subprocess.run(["curl", "-s", "-X", "DELETE", "http://127.0.0.1:%d/rm" % lb.port,
                          "-d", '{"n":1}'], capture_output=True, text=True, timeout=20)
    assert '"status":"successful"' in out.stdout, out.stdout


def test_admin_host_names(procs):
    lb = lb_with(procs, "--admin-host", "lb.example", env={
        "RINGLB_ADMIN_HOSTS": "Other.Example, [fd00::5]"})
    p = lb.port
    for host in ("lb.example:%d" % p, "LB.example", "other.example:1",
                 "[fd00::5]:%d" % p):
        status, body = raw(p, "POST", "/add", host=host)
        assert status == 200, (host, status, body)
    status, body = raw(p, "POST", "/add", host="lb.example:%d" % p, headers=[
        ("Origin", "http://lb.example:%d" % p), ("Sec-Fetch-Site", "same-origin")])
    assert status == 200, body
    for host in ("lb.example.evil:%d" % p, "example:%d" % p, "[fd00::6]:%d" % p):
        assert raw(p, "POST", "/add", host=host)[0] == 403, host
    # foreign origin, even with a configured Host
    status, _ = raw(p, "POST", "/add", host="lb.example:%d" % p,
                    headers=[("Origin", "http://other.example:%d" % p)])
    assert status == 403


def test_admin_host_option_is_checked(procs):
    from conftest import RINGLB, free_port
    for bad in ("evil.example:80", "http://x", "a/b", "[::1", "x" * 300):
        p = subprocess.run([RINGLB, "--listen", "127.0.0.1:%d" % free_port(),
                            "--admin-host", bad], capture_output=True, text=True,
                           timeout=10)
        assert p.returncode == 2 and "--admin-host" in p.stderr, (bad, p.stderr)


def test_with_a_token_any_host_but_never_a_foreign_page(procs):
    """DNS rebinding cannot carry the bearer token: with it, any Host is
    accepted (ringlb behind a name of its own); a foreign Origin or a
    cross-site fetch is refused even so."""
    lb = lb_with(procs, env={"RINGLB_ADMIN_TOKEN": TOKEN})
    p = lb.port
    auth = ("Authorization", "Bearer " + TOKEN)
    status, body = raw(p, "POST", "/add", headers=[auth], host="ringlb.internal:80")
    assert status == 200, body
    status, body = raw(p, "POST", "/add", headers=[
        auth, ("Origin", "http://ringlb.internal"), ("Sec-Fetch-Site", "same-origin")],
        host="ringlb.internal")
    assert status == 200, body
    for headers in ([auth, ("Origin", "http://evil.example")],
                    [auth, ("Origin", "null")],
                    [auth, ("Sec-Fetch-Site", "cross-site")]):
        status, body = raw(p, "POST", "/add", headers=headers, host="ringlb.internal")
        assert status == 403, (headers, status, body)
    # and without the token a foreign Host is still 401 (token first)
    assert raw(p, "POST", "/add", host="evil.example")[0] == 401
    assert len(rep_names(p)) == 3


def test_read_only_endpoints_stay_open(procs):
    lb = lb_with(procs)
    for path in ("/rep", "/heartbeat", "/status", "/metrics"):
        r = request(lb.port, "GET", path, headers={
            "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})
        assert r.status == 200, path
        assert r.header("Access-Control-Allow-Origin") is None
