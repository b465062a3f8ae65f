"""X-Forwarded-For reaches the replica with the client's own address as its
last entry, whatever the client sent before it."""
import http.client
import json


def echo_xff(port, values):
    """GET /echo with one X-Forwarded-For header per value; the
    X-Forwarded-For headers the replica saw."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("GET", "/echo")
        for v in values:
            conn.putheader("X-Forwarded-For", v)
        conn.endheaders()
        r = conn.getresponse()
        assert r.status == 200
        body = json.loads(r.read())
    finally:
        conn.close()
    return [v for k, v in body["headers"] if k.lower() == "x-forwarded-for"]


def test_client_address_is_always_last(procs):
    up = procs.upstream("echo-1")
    lb = procs.ringlb([up])
    assert echo_xff(lb.port, []) == ["127.0.0.1"]
    assert echo_xff(lb.port, ["10.0.0.1"]) == ["10.0.0.1, 127.0.0.1"]
    # long enough to have filled a fixed buffer, with a forged last entry
    forged = "a" * 500 + ", 6.6.6.6"
    assert echo_xff(lb.port, [forged]) == [forged + ", 127.0.0.1"]
    # far longer: nothing is cut (the whole head is bounded by --max-header)
    many = ", ".join("10.%d.%d.%d" % (i >> 16, (i >> 8) & 255, i & 255)
                     for i in range(2000))
    assert echo_xff(lb.port, [many]) == [many + ", 127.0.0.1"]
    # no empty entry from a trailing comma
    assert echo_xff(lb.port, ["3.3.3.3, "]) == ["3.3.3.3, 127.0.0.1"]
    assert echo_xff(lb.port, [""]) == ["127.0.0.1"]


def test_two_headers_are_combined_in_order(procs):
    up = procs.upstream("echo-1")
    lb = procs.ringlb([up])
    assert echo_xff(lb.port, ["1.1.1.1", "2.2.2.2, 4.4.4.4"]) == [
        "1.1.1.1, 2.2.2.2, 4.4.4.4, 127.0.0.1"]
