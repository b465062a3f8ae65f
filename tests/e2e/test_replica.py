"""ringlb-replica answers exactly as the spec says."""
import json

from conftest import REPLICA, free_port, get, request


def test_home_heartbeat_and_404(procs):
    rep = procs.replica("server-7")
    r = get(rep.port, "/home")
    assert r.status == 200
    assert r.json() == {"message": "Hello from Server: server-7", "status": "successful"}
    assert r.header("Content-Type") == "application/json"

    r = get(rep.port, "/heartbeat")
    assert r.status == 200
    assert r.body == b""

    r = get(rep.port, "/other/x")
    assert r.status == 404
    assert r.json() == {
        "message": "<Error> '/other/x' endpoint does not exist in server replicas",
        "status": "failure",
    }


def test_id_from_environment(procs):
    port = free_port()
    procs.start([REPLICA, "--listen", "127.0.0.1:%d" % port], port,
                env={"SERVER_ID": "env-3"}, name="replica")
    assert get(port, "/home").json()["message"] == "Hello from Server: env-3"


def test_wrong_method_on_home(procs):
    rep = procs.replica("a")
    r = request(rep.port, "POST", "/home", body=b"{}")
    assert r.status == 405
    assert r.header("Allow") == "GET, HEAD"
    assert r.json()["status"] == "failure"


def test_missing_id_is_an_error(procs, tmp_path):
    import subprocess
    out = subprocess.run([REPLICA, "--listen", "127.0.0.1:%d" % free_port()],
                         capture_output=True, text=True, timeout=5,
                         env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 2
    assert "SERVER_ID" in out.stderr
