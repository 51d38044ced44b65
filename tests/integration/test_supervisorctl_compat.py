"""The real supervisorctl against pyfront and against a real supervisord on the same conf:
every command's output and exit code must match (pids, times, versions normalised)."""
import os
import time
import xmlrpc.client

import pytest

from tests.conftest import Proc
from tests.integration.supervise_util import (ctl, normalize, pyctl, start_pyfront, start_supervisord, state_of,
                                              wait_status, write_conf)

pytestmark = [pytest.mark.peer, pytest.mark.slow, pytest.mark.timeout(300)]

PROGRAMS = """\
[program:sleeper]
command = /bin/sh -c "echo hello-out; echo hello-err >&2; exec sleep 1000"
startsecs = 1
stopwaitsecs = 5

[program:crasher]
command = /bin/sh -c "echo boom >&2; exit 3"
startsecs = 1
startretries = 1

[program:manual]
command = sleep 1000
autostart = false
startsecs = 0

[program:a]
command = sleep 1000
startsecs = 0

[program:b]
command = sleep 1000
startsecs = 0

[group:grp]
programs = a,b
"""

EDITED = PROGRAMS.replace("exec sleep 1000\"", "exec sleep 1001\"").replace(
    "[program:manual]\ncommand = sleep 1000\nautostart = false\nstartsecs = 0\n",
    "[program:newp]\ncommand = sleep 1000\nstartsecs = 0\n")

# Commands whose output lines may come in any order (group/all results finish in parallel).
UNORDERED = {"stop grp:*", "start grp:*", "restart all", "update", "signal CONT grp:*", "stop all"}


def _settled(out: str) -> bool:
    return state_of(out, "crasher") == "FATAL" and state_of(out, "sleeper") == "RUNNING"


def _run_script(conf: str, script: list[str], runner) -> list[tuple[str, int, str]]:
    results = []
    for cmd in script:
        if cmd.startswith("WAIT "):
            _, name, state = cmd.split()
            wait_status(conf, lambda o: state_of(o, name) == state)
            continue
        rc, out = runner(conf, *cmd.split(" "))
        # pyfront ctl's extra "└ cause: ..." lines under FATAL/BACKOFF rows are a documented addition
        out = "\n".join(ln for ln in normalize(out).split("\n") if not ln.lstrip().startswith("└ cause:"))
        if cmd in UNORDERED:
            out = "\n".join(sorted(out.splitlines()))
        results.append((cmd, rc, out))
    return results


PART1 = ["status", "status sleeper", "status nosuch", "status grp:*", "stop sleeper", "stop sleeper",
         "start sleeper", "start sleeper", "restart sleeper", "stop grp:*", "start grp:*", "start nosuch",
         "restart all", "stop manual", "signal HUP sleeper", "signal CONT grp:*", "signal BOGUS sleeper",
         "signal HUP manual", "pid sleeper", "pid nosuch", "pid", "tail sleeper", "tail sleeper stderr",
         "tail -5 sleeper", "tail nosuch", "tail crasher stderr", "clear sleeper", "tail sleeper", "avail",
         "reread", "start crasher", "WAIT crasher FATAL", "status crasher"]
PART2 = ["reread", "update", "status", "remove newp", "stop newp", "remove newp", "add newp", "add newp",
         "remove nosuch", "avail"]


def _session(tmp_path, procs, which: str, runner=ctl):
    d = str(tmp_path / which)
    run = str(tmp_path / f"{which}-run")
    conf, port = write_conf(d, run, PROGRAMS)
    if which == "pyfront":
        start_pyfront(procs, d, run, port)
    else:
        start_supervisord(procs, conf, port)
    wait_status(conf, _settled)
    part1 = _run_script(conf, PART1, runner)
    # version and maintail: content differs by design; exit codes and key lines must not
    rc_v, out_v = runner(conf, "version")
    rc_m, out_m = runner(conf, "maintail", "-20000")
    conf2, _ = write_conf(d, run, EDITED, port=port)
    part2 = _run_script(conf2, PART2, runner)
    rc_r, out_r = runner(conf2, "reload")
    wait_status(conf2, lambda o: state_of(o, "sleeper") == "RUNNING" and state_of(o, "newp") == "RUNNING")
    rc_s, out_s = runner(conf2, "shutdown")
    return {"part1": part1, "part2": part2, "version": (rc_v, out_v), "maintail": (rc_m, out_m),
            "reload": (rc_r, out_r), "shutdown": (rc_s, out_s)}


@pytest.fixture(scope="module")
def real_session(tmp_path_factory):
    """supervisorctl against a real supervisord: the reference every comparison uses."""
    started = []

    def start(argv, **kw):
        p = Proc(argv, **kw)
        started.append(p)
        return p
    try:
        yield _session(tmp_path_factory.mktemp("real"), start, "supervisord")
    finally:
        for p in started:
            p.stop()


def _compare(real, ours):
    for (cmd, rc_a, out_a), (_, rc_b, out_b) in zip(real["part1"] + real["part2"], ours["part1"] + ours["part2"]):
        assert (cmd, out_b, rc_b) == (cmd, out_a, rc_a)
    assert ours["version"][0] == real["version"][0] == 0 and ours["version"][1].strip()
    assert ours["maintail"][0] == real["maintail"][0] == 0
    for line in ("spawned: 'sleeper' with pid", "success: sleeper entered RUNNING state, process has stayed up "
                 "for > than 1 seconds (startsecs)", "exited: crasher (exit status 3; not expected)",
                 "gave up: crasher entered FATAL state, too many start retries too quickly"):
        assert line in real["maintail"][1]
        assert line in ours["maintail"][1]
    assert ours["reload"] == real["reload"] == (0, "Restarted supervisord\n")
    assert ours["shutdown"] == real["shutdown"] == (0, "Shut down\n")


def test_supervisorctl_output_matches_real_supervisord(real_session, tmp_path, procs):
    _compare(real_session, _session(tmp_path, procs, "pyfront"))


def test_pyfront_ctl_output_matches_supervisorctl(real_session, tmp_path, procs):
    _compare(real_session, _session(tmp_path, procs, "pyfront", runner=pyctl))
