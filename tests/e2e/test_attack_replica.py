"""ringlb-replica against requests next to the ones its limits were made
for: methods evhttp does not take by default, and request targets that
are not a path."""
import json

import pytest

from conftest import REPLICA
from test_replica import exchange, replica_exits_cleanly, status_of  # noqa: F401


def answer(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    return head.decode("latin-1"), body


@pytest.mark.parametrize("method", ["OPTIONS", "PATCH"])
def test_other_methods_on_home_are_a_json_405(procs, method):
    """OPTIONS and PATCH /home were evhttp's own HTML 501 page, passed on by
    ringlb as is; POST gets the spec's JSON 405, so do they."""
    rep = procs.replica("Server 1")
    raw = exchange(rep.port, b"%s /home HTTP/1.1\r\nHost: x\r\n"
                   b"Connection: close\r\n\r\n" % method.encode())
    head, body = answer(raw)
    assert status_of(raw) == 405, raw[:300]
    assert "Allow: GET, HEAD" in head, head
    assert json.loads(body) == {
        "message": "<Error> '/home' accepts GET only", "status": "failure"}
    raw = exchange(rep.port, b"%s /other HTTP/1.1\r\nHost: x\r\n"
                   b"Connection: close\r\n\r\n" % method.encode())
    assert status_of(raw) == 404, raw[:300]
    assert json.loads(answer(raw)[1])["status"] == "failure"


@pytest.mark.parametrize("target", [b"home", b"*", b"h<script>x</script>",
                                    b"heartbeat?x=1"])
def test_target_that_is_not_a_path_is_a_400_not_echoed(procs, target):
    """'GET home' was a 404 saying "'home' endpoint does not exist": the
    target is not a path at all; a 400 says so without repeating it."""
    rep = procs.replica("Server 1")
    raw = exchange(rep.port, b"GET %s HTTP/1.1\r\nHost: x\r\n"
                   b"Connection: close\r\n\r\n" % target)
    head, body = answer(raw)
    assert status_of(raw) == 400, raw[:300]
    msg = json.loads(body)["message"]
    # the same words whatever the target: nothing of it is repeated
    assert msg == "<Error> the request target must be a path such as " \
        "/home", msg
    assert "Connection: close" in head, head


def test_absolute_form_target_still_served(procs):
    """An absolute-form target (what a proxy sends) names a path: served."""
    rep = procs.replica("Server 1")
    raw = exchange(rep.port, b"GET http://x/home HTTP/1.1\r\nHost: x\r\n"
                   b"Connection: close\r\n\r\n")
    assert status_of(raw) == 200, raw[:300]
