"""The test tooling itself: tests/run.sh's closing line counts what was
skipped, and the Makefile installs newman whenever it is missing and a
tarball or npm can provide it, not only on its first run."""
import io
import os
import stat
import subprocess
import sys
import tarfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def write_exe(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def test_run_sh_counts_and_lists_skips(tmp_path):
    build = tmp_path / "build"
    build.mkdir()
    write_exe(str(build / "test_fake"),
              "#!/bin/sh\necho 'test_fake: 3 passed, 0 failed'\n")
    # run.sh runs tests/e2e and tests/docker under the directory it is
    # run from: here, one test that passes and one that skips
    tests = tmp_path / "tests" / "e2e"
    tests.mkdir(parents=True)
    (tmp_path / "tests" / "docker").mkdir()
    (tests / "test_some.py").write_text(
        "import pytest\n"
        "def test_ok():\n    pass\n"
        "def test_not_here():\n    pytest.skip('no frobnicator on this machine')\n")
    r = subprocess.run(["sh", os.path.join(ROOT, "tests", "run.sh"),
                        str(build), sys.executable], cwd=str(tmp_path),
                       capture_output=True, text=True, timeout=120)
    lines = r.stdout.strip().splitlines()
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert lines[-1] == "total: 4 passed, 0 failed, 1 skipped", lines[-5:]
    # what was skipped, and why, just above the closing line
    above = "\n".join(lines[-4:-1])
    assert "test_not_here" in above and "no frobnicator" in above, lines[-6:]


def fake_newman_tarball(path):
    """A tarball laid out as the newman one is: node_modules/.bin/newman."""
    data = b"#!/bin/sh\necho fake newman\n"
    with tarfile.open(path, "w:gz") as tar:
        for d in ("node_modules", "node_modules/.bin"):
            ti = tarfile.TarInfo(d)
            ti.type = tarfile.DIRTYPE
            ti.mode = 0o755
            tar.addfile(ti)
        ti = tarfile.TarInfo("node_modules/.bin/newman")
        ti.size = len(data)
        ti.mode = 0o755
        tar.addfile(ti, io.BytesIO(data))


def test_test_deps_installs_newman_whenever_it_is_missing(tmp_path):
    """A first `make test-deps` with no way to get newman says how to give
    it one; a later one with NEWMAN_TARBALL unpacks it (the stamp of the
    first must not stop it)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    # npm present but its registry out of reach
    write_exe(str(bindir / "npm"), "#!/bin/sh\necho 'npm: offline' >&2\nexit 1\n")
    env = dict(os.environ, PATH="%s:%s" % (bindir, os.environ["PATH"]))
    # CI gives make test a tarball through the environment: not this make
    env.pop("NEWMAN_TARBALL", None)
    build = tmp_path / "build"
    newman_dir = tmp_path / "newman"
    newman = newman_dir / "node_modules" / ".bin" / "newman"
    make = ["make", "--no-print-directory", "-s", "test-deps",
            "BUILD=%s" % build, "NEWMAN_DIR=%s" % newman_dir]

    r = subprocess.run(make, cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not newman.exists()
    out = r.stdout + r.stderr
    assert "NEWMAN_TARBALL=" in out and "make test-deps" in out, out

    tarball = tmp_path / "newman-6.2.2.tgz"
    fake_newman_tarball(str(tarball))
    r = subprocess.run(make + ["NEWMAN_TARBALL=%s" % tarball], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert os.access(str(newman), os.X_OK), r.stdout + r.stderr
    assert str(newman) in r.stdout + r.stderr   # says where it went

    # once there, nothing more is done
    r = subprocess.run(make + ["NEWMAN_TARBALL=%s" % tarball], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "unpacking" not in r.stdout, r.stdout
