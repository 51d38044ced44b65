"""Supervisor's state machine with an injected fake OS: no real children, no monkeypatching."""
import os
import signal

import pytest

from pyfront.config.diagnostics import Report
from pyfront.config.ini import read_ini
from pyfront.supervise.component import SupervisorComponent, describe
from pyfront.supervise.config import parse_supervisor_sections
from pyfront.supervise.osapi import SpawnError
from pyfront.supervise.states import ProcessState as S


class FakeOS:
    def __init__(self):
        self.t = 1000.0
        self.next_pid = 100
        self.spawned = []
        self.kills = []
        self.missing = set()
        self.fail_spawn = None
        self.trees = {}

    def wall(self):
        return self.t

    def resolve_command(self, argv0, path_env):
        if argv0 in self.missing:
            raise SpawnError(f"can't find command {argv0!r}", "NO_FILE")
        return "/bin/" + argv0

    def pipe(self):
        return (-1, -1)

    def stdin_pipe(self):
        return (-1, 50)

    def write(self, fd, data):
        self.stdin_written = getattr(self, "stdin_written", b"") + data[:3]
        return min(3, len(data))

    def spawn(self, executable, argv, env, cwd, uid, umask, out, err, stdin=None):
        if self.fail_spawn:
            raise SpawnError(self.fail_spawn)
        self.next_pid += 1
        self.spawned.append((self.next_pid, argv, env))
        return self.next_pid

    def kill(self, pid, sig):
        self.kills.append((pid, sig))

    def killpg(self, pgid, sig):
        self.kills.append((-pgid, sig))
        return True

    def read(self, fd, n=65536):
        return b""

    def close(self, fd):
        pass

    def set_child_subreaper(self):
        return True

    def tree(self, pid, pgid):
        return set(self.trees.get(pid, ()))

    def kill_if_same(self, pid, st, sig):
        self.kills.append((pid, sig))
        return True

    def rss(self, pid):
        return 0


class FakeLoop:
    """Just enough Loop: time is the fake OS's; timers run when the test advances time."""

    def __init__(self, fos):
        self.fos = fos
        self.timers = []

    def time(self):
        return self.fos.t

    def add_reader(self, fd, cb):
        pass

    def remove(self, fd):
        pass

    def call_at(self, when, cb):
        from pyfront.component import Timer
        t = Timer(when, cb)
        self.timers.append(t)
        return t

    def advance(self, secs, step=0.25):
        end = self.fos.t + secs
        while True:
            due = sorted((t for t in self.timers if not t.cancelled and t.when <= self.fos.t), key=lambda t: t.when)
            for t in due:
                self.timers.remove(t)
                if not t.cancelled:
                    t.callback()
            if self.fos.t >= end:
                break
            self.fos.t = min(end, self.fos.t + step)


def make(text, **kw):
    sections = read_ini(text, "/etc/x/progs.conf")
    r = Report()
    cfg = parse_supervisor_sections(sections, "/etc/x", r, run_dir="/tmp/pyfront-unit-run")
    assert not r.failed, [d.format() for d in r.diagnostics]
    fos = FakeOS()
    lines = []
    sup = SupervisorComponent(cfg, log=lambda lvl, msg: lines.append(msg), osapi=fos)
    for g in sup.groups.values():
        for p in g.processes.values():
            p.stdout.log = p.stderr.log = None
    loop = FakeLoop(fos)
    sup.start(loop)
    return sup, fos, loop, lines


EXITED_1 = (1 << 8)          # wait status: exit code 1
EXITED_0 = 0
KILLED = signal.SIGKILL      # wait status: terminated by SIGKILL


def proc(sup, name):
    return sup.find(name)[1]


def test_autostart_then_running_after_startsecs():
    sup, fos, loop, lines = make("[program:a]\ncommand=sleep 9\nstartsecs=2\nstdout_logfile=NONE\nstderr_logfile=NONE\n")
    loop.advance(0)
    p = proc(sup, "a")
    assert p.state == S.STARTING and lines[-1] == "spawned: 'a' with pid 101"
    loop.advance(1)
    assert p.state == S.STARTING
    loop.advance(1.5)
    assert p.state == S.RUNNING
    assert lines[-1] == "success: a entered RUNNING state, process has stayed up for > than 2 seconds (startsecs)"


def test_backoff_1_2_3_then_fatal():
    sup, fos, loop, lines = make("[program:c]\ncommand=false\nstartretries=3\nstdout_logfile=NONE\nstderr_logfile=NONE\n")
    loop.advance(0)
    p = proc(sup, "c")
    spawn_times = []
    for _ in range(4):
        spawn_times.append(fos.t)
        sup.child_exited(p.pid, EXITED_1)
        assert p.state in (S.BACKOFF, S.FATAL)
        if p.state == S.FATAL:
            break
        for _ in range(100):
            loop.advance(0.25)
            if p.state != S.BACKOFF:
                break
        if p.state == S.FATAL:
            break
        assert p.state == S.STARTING
    assert [round(b - a) for a, b in zip(spawn_times, spawn_times[1:])] == [1, 2, 3]
    sup.child_exited(p.pid, EXITED_1)
    loop.advance(5)
    assert p.state == S.FATAL
    assert "gave up: c entered FATAL state, too many start retries too quickly" in lines
    assert lines.count("exited: c (exit status 1; not expected)") == 4
    assert describe(p.info() | {"description": ""}) == "Exited too quickly (process log may have details)"


def test_unexpected_exit_after_startsecs_restarts_expected_does_not():
    sup, fos, loop, lines = make("[program:u]\ncommand=x\nstartsecs=1\nexitcodes=0,2\nstdout_logfile=NONE\nstderr_logfile=NONE\n")
    loop.advance(2)
    p = proc(sup, "u")
    assert p.state == S.RUNNING
    sup.child_exited(p.pid, 2 << 8)
    assert p.state == S.EXITED and lines[-1] == "exited: u (exit status 2; expected)"
    loop.advance(3)
    assert p.state == S.EXITED and len(fos.spawned) == 1
    p.spawn()
    loop.advance(2)
    sup.child_exited(p.pid, EXITED_1)
    assert p.spawnerr == "Bad exit code 1"
    loop.advance(0.5)
    assert p.state == S.STARTING and len(fos.spawned) == 3


def test_stop_escalates_to_sigkill_of_the_group_after_stopwaitsecs():
    sup, fos, loop, lines = make("[program:s]\ncommand=x\nstopwaitsecs=3\nstartsecs=0\nstdout_logfile=NONE\nstderr_logfile=NONE\n")
    loop.advance(0.5)
    p = proc(sup, "s")
    pid = p.pid
    fos.trees[pid] = {(555, 42)}
    assert p.stop() is None and p.state == S.STOPPING
    assert fos.kills == [(pid, signal.SIGTERM)]
    loop.advance(2)
    assert (pid, signal.SIGKILL) not in fos.kills
    loop.advance(2)
    assert (pid, signal.SIGKILL) in fos.kills and (-pid, signal.SIGKILL) in fos.kills
    assert (555, signal.SIGKILL) in fos.kills            # the recorded grandchild too
    assert f"killing 's' ({pid}) with SIGKILL" in lines
    sup.child_exited(pid, KILLED)
    assert p.state == S.STOPPED and "stopped: s (terminated by SIGKILL)" in lines


def test_stopasgroup_signals_the_group():
    sup, fos, loop, lines = make("[program:g]\ncommand=x\nstopasgroup=true\nstartsecs=0\nstopsignal=INT\n"
                                 "stdout_logfile=NONE\nstderr_logfile=NONE\n")
    loop.advance(0.5)
    p = proc(sup, "g")
    p.stop()
    assert fos.kills[-1] == (-p.pid, signal.SIGINT)


def test_stop_in_backoff_goes_stopped_without_kill():
    sup, fos, loop, lines = make("[program:b]\ncommand=x\nstdout_logfile=NONE\nstderr_logfile=NONE\n")
    loop.advance(0)
    p = proc(sup, "b")
    sup.child_exited(p.pid, EXITED_1)
    assert p.state == S.BACKOFF
    assert p.stop() is None and p.state == S.STOPPED and fos.kills == []


def test_missing_command_is_a_spawn_error_then_fatal():
    sup, fos, loop, lines = make("[program:m]\ncommand=nope\nstartretries=1\nstdout_logfile=NONE\nstderr_logfile=NONE\n")
    fos.missing.add("nope")
    loop.advance(5)
    p = proc(sup, "m")
    assert p.state == S.FATAL and p.spawnerr == "can't find command 'nope'"
    assert "spawnerr: can't find command 'nope'" in lines


def test_python_programs_get_pythonunbuffered_unless_set():
    sup, fos, loop, lines = make("[program:py]\ncommand=python3 app.py\nstdout_logfile=NONE\nstderr_logfile=NONE\n"
                                 "[program:py2]\ncommand=python3 app.py\nenvironment=PYTHONUNBUFFERED=\"\"\n"
                                 "stdout_logfile=NONE\nstderr_logfile=NONE\n"
                                 "[program:sh]\ncommand=sh x\nstdout_logfile=NONE\nstderr_logfile=NONE\n")
    loop.advance(0)
    envs = {argv[0] + str(i): env for i, (_, argv, env) in enumerate(fos.spawned)}
    by_name = {}
    for pid, argv, env in fos.spawned:
        name = next(p.name for p in sup.all_processes() if p.pid == pid)
        by_name[name] = env
    assert by_name["py"]["PYTHONUNBUFFERED"] == "1"
    assert by_name["py2"]["PYTHONUNBUFFERED"] == ""
    assert by_name["sh"].get("PYTHONUNBUFFERED") == os.environ.get("PYTHONUNBUFFERED")
    assert by_name["py"]["SUPERVISOR_PROCESS_NAME"] == "py"


def test_transitions_outside_supervisors_table_assert():
    sup, fos, loop, lines = make("[program:a]\ncommand=x\nautostart=false\nstdout_logfile=NONE\nstderr_logfile=NONE\n")
    p = proc(sup, "a")
    with pytest.raises(AssertionError):
        p.change_state(S.RUNNING)      # STOPPED -> RUNNING never happens in Supervisor


def test_reload_restarts_only_changed_groups():
    text = ("[program:a]\ncommand=x\nstartsecs=0\nstdout_logfile=NONE\nstderr_logfile=NONE\n"
            "[program:b]\ncommand=y\nstartsecs=0\nstdout_logfile=NONE\nstderr_logfile=NONE\n")
    sup, fos, loop, lines = make(text)
    loop.advance(0.5)
    a_pid, b_pid = proc(sup, "a").pid, proc(sup, "b").pid
    r = Report()
    new = parse_supervisor_sections(read_ini(text.replace("command=y", "command=y2")
                                             + "[program:c]\ncommand=z\nstdout_logfile=NONE\nstderr_logfile=NONE\n",
                                             "/etc/x/progs.conf"), "/etc/x", r, run_dir="/tmp/pyfront-unit-run")
    assert sup.diff(new) == (["c"], ["b"], [])
    sup.reload(new)
    assert proc(sup, "a").pid == a_pid
    assert (b_pid, signal.SIGTERM) in fos.kills
    sup.child_exited(b_pid, signal.SIGTERM)
    loop.advance(0.5)
    assert proc(sup, "b").pid not in (0, b_pid) and proc(sup, "c").pid


def test_fast_stop_caps_stopwaitsecs_and_kill_all_takes_the_tree():
    sup, fos, loop, lines = make("[program:slow]\ncommand=x\nstopwaitsecs=60\nstartsecs=0\n"
                                 "stdout_logfile=NONE\nstderr_logfile=NONE\n")
    loop.advance(0.5)
    p = proc(sup, "slow")
    pid = p.pid
    fos.trees[pid] = {(777, 1)}
    sup.stop(graceful=False)
    assert p.state == S.STOPPING and fos.kills == [(pid, signal.SIGTERM)]
    loop.advance(sup.FAST_STOP_WAIT + 0.5)
    assert (pid, signal.SIGKILL) in fos.kills        # long before stopwaitsecs=60
    fos.kills.clear()
    sup.kill_all()
    assert {(777, signal.SIGKILL), (-pid, signal.SIGKILL), (pid, signal.SIGKILL)} <= set(fos.kills)
    sup.child_exited(pid, signal.SIGKILL)
    assert sup.stopped() and p.state == S.STOPPED
    loop.advance(5)
    assert len(fos.spawned) == 1                     # nothing restarts while stopping


def test_stdin_is_written_in_pieces_as_the_pipe_accepts():
    sup, fos, loop, lines = make("[program:c]\ncommand=cat\nstartsecs=0\nstdout_logfile=NONE\nstderr_logfile=NONE\n")
    loop.advance(0.5)
    p = proc(sup, "c")
    assert p.write_stdin(b"hello world\n") is None
    assert fos.stdin_written == b"hello world\n"
    assert p.write_stdin(b"x" * (p.STDIN_MAX + 1)) is not None
