"""The state file is replaced through a temporary file that nobody can
plant in advance: a symlink at a guessable name is not followed."""
import json
import os

from conftest import post_json, rep_names


def test_planted_symlink_is_not_followed(procs, tmp_path):
    statedir = tmp_path / "state"
    statedir.mkdir()
    state = statedir / "state.json"
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    lb = procs.ringlb((), "--replicas", "1", "--state-file", str(state),
                      healthy=1)
    # whoever can write the state directory plants links at the names a
    # temporary file could be given: the path plus ringlb's pid, or a
    # sequence number
    planted = [statedir / ("state.json.tmp.%d" % lb.pid),
               statedir / ("state.json.tmp.%d" % (lb.pid + 1)),
               statedir / "state.json.tmp"]
    for p in planted:
        os.symlink(victim, p)
    r = post_json(lb.port, "/add", {"n": 1})
    assert r.status == 200, r.body
    assert victim.read_text() == "precious\n"
    assert not os.path.islink(state)
    with open(state) as f:
        assert sorted(json.load(f)["replicas"]) == \
            sorted(rep_names(lb.port))
    # the links are left alone, and no temporary file is left behind
    assert sorted(os.listdir(statedir)) == sorted(
        ["state.json"] + [p.name for p in planted])
    assert all(os.path.islink(p) for p in planted)
