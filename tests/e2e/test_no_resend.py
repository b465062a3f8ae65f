"""A request that is not safe to repeat reaches a replica once.

A pooled connection to a replica can die after the request was written
and before any byte of an answer; libcurl then sends the request again on
a new connection, whatever its method.  The replica may have executed it:
ringlb lets only a bodiless GET, HEAD, PUT, DELETE or OPTIONS go again
(and counts it in ringlb_retries_total); anything else is a 502.
"""
import pytest

from conftest import get, request
from rawreplica import RawReplica, keep

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def metric(port, name):
    text = get(port, "/metrics").body.decode()
    return int(float(text.split("\n%s " % name)[1].split()[0]))


@pytest.fixture
def dying(procs):
    """One replica whose every connection dies on its second request.
    One worker: the connection warmed must be in the pool of the worker
    that serves the next request, and each worker has a pool of its own."""
    rep = RawReplica("dying", {None: keep(OK)}, die_on_second=True)
    lb = procs.ringlb([rep], "--health-interval", "60000", "--workers", "1")
    yield rep, lb
    rep.close()


def pooled(lb):
    """Leave one kept-alive connection to the replica in ringlb's pool."""
    r = get(lb.port, "/warm")
    assert r.status == 200 and r.body == b"ok"


@pytest.mark.parametrize("method,body", [
    ("POST", b'{"a": 1}'),
    ("POST", b""),             # no body, but a POST
    ("PATCH", b"x"),
    ("PATCH", b""),
    ("PUT", b"data"),          # idempotent, but with a body
    ("DELETE", b"data"),
    ("OPTIONS", b"data"),
])
def test_written_request_is_not_sent_again(dying, method, body):
    rep, lb = dying
    retries = metric(lb.port, "ringlb_retries_total")
    pooled(lb)
    r = request(lb.port, method, "/once", body=body)
    assert len(rep.requests("/once")) == 1, \
        "the replica saw the %s %d times" % (method, len(rep.requests("/once")))
    assert rep.requests("/once")[0].body == body
    assert r.status == 502
    msg = r.json()["message"]
    assert "dying" in msg and "never sent twice" in msg, msg
    assert metric(lb.port, "ringlb_retries_total") == retries
    # the replica is fine: the next request is answered
    assert get(lb.port, "/after").status == 200


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"])
def test_bodiless_idempotent_request_is_sent_again_and_counted(dying, method):
    rep, lb = dying
    retries = metric(lb.port, "ringlb_retries_total")
    pooled(lb)
    r = request(lb.port, method, "/again")
    assert r.status == 200
    assert len(rep.requests("/again")) == 2
    assert metric(lb.port, "ringlb_retries_total") == retries + 1


def test_next_replica_gets_no_request_with_a_body(procs):
    """A replica that closes a fresh connection without answering: a GET
    goes on to the next replica (counted), a PUT with a body does not."""
    dropper = RawReplica("dropper", {None: b""})
    good = RawReplica("good", {None: keep(OK)})
    try:
        lb = procs.ringlb([dropper, good], "--health-interval", "60000")
        key = next(k for k in range(1000) if get(
            lb.port, "/map_request?id=%d" % k).json()["mapped_server"] ==
            "dropper")
        retries = metric(lb.port, "ringlb_retries_total")
        r = get(lb.port, "/g?request_id=%d" % key)
        assert r.status == 200 and r.header("X-Served-By") == "good"
        assert metric(lb.port, "ringlb_retries_total") == retries + 1
        r = request(lb.port, "PUT", "/p?request_id=%d" % key, body=b"data")
        assert r.status == 502
        assert len(dropper.requests("/p")) == 1
        assert good.requests("/p") == []
        r = request(lb.port, "POST", "/p?request_id=%d" % key, body=b"data")
        assert r.status == 502
        assert len(dropper.requests("/p")) == 2 and good.requests("/p") == []
    finally:
        dropper.close()
        good.close()
