"""One supervised process: Supervisor's state machine (supervisor/process.py semantics).

`change_state` is the only place the state changes, and it asserts the transition is one
Supervisor makes (states.ALLOWED). Time-driven moves (STARTING → RUNNING after startsecs,
BACKOFF → STARTING after the back-off delay, BACKOFF → FATAL, STOPPING → SIGKILL after
stopwaitsecs) all happen in `transition(now)`, which the component calls from loop timers
at `next_deadline()`. Nothing here blocks, sleeps or calls waitpid: the master reaps and
calls `finish(status)`.

Deliberate differences from Supervisor (docs/control-api.md):
- when the main process is gone, whatever is left of its tree (its process group and
  every descendant recorded while stopping) is SIGKILLed, so `stop` never leaves orphans
  (Supervisor#1101, uWSGI#296);
- Python programs get PYTHONUNBUFFERED=1 unless the environment sets it (Supervisor#893);
- spawn errors keep the concrete cause (no such file, not executable, couldn't chdir) and
  the last stderr lines are kept for `status`.
"""
from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from typing import Callable, Protocol

from pyfront.supervise.config import ProcessConfig
from pyfront.supervise.logs import Channel, RotatingLog
from pyfront.supervise.osapi import OSApi, SpawnError
from pyfront.supervise.states import ALLOWED, RUNNING_STATES, ProcessState, signame

S = ProcessState


class Host(Protocol):
    """What a Subprocess needs from its owner (the component)."""
    os: OSApi

    def now(self) -> float: ...            # monotonic
    def log(self, level: str, msg: str) -> None: ...
    def watch_pipe(self, fd: int, proc: "Subprocess", channel: str) -> None: ...
    def unwatch_pipe(self, fd: int) -> None: ...
    def changed(self, proc: "Subprocess", old: ProcessState, new: ProcessState) -> None: ...
    def accepting_starts(self) -> bool: ...  # False while the layer is shutting down
    def register_pid(self, proc: "Subprocess") -> None: ...
    def want_write(self, fd: int, proc: "Subprocess | None") -> None: ...  # None: stop watching


def decode_wait_status(status: int) -> tuple[int, str]:
    """(exit status, text) as Supervisor words it: 'exit status 1', 'terminated by SIGKILL'."""
    if os.WIFEXITED(status):
        es = os.WEXITSTATUS(status)
        return es, f"exit status {es}"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        msg = f"terminated by {signame(sig)}"
        if os.WCOREDUMP(status):
            msg += " (core dumped)"
        return -1, msg
    return -1, "unknown termination cause 0x%04x" % status


class Subprocess:
    def __init__(self, config: ProcessConfig, host: Host):
        self.config = config
        self.host = host
        self.state = S.STOPPED
        self.pid = 0
        self.laststart = 0.0        # wall clock (for getProcessInfo start)
        self.laststop = 0.0         # wall clock
        self._start_mono = 0.0      # monotonic (startsecs, too-quickly)
        self.delay = 0.0            # monotonic deadline: backoff respawn, or SIGKILL while stopping
        self.backoff = 0
        self.killing = False
        self.administrative_stop = False
        self.system_stop = False
        self.spawnerr: str | None = None
        self.exitstatus: int | None = None
        self.last_exit_text = ""
        self._last_stop_report = 0.0
        self._tree: set[tuple[int, int]] = set()
        self._fds: dict[str, int] = {}
        self.stdin_fd = -1
        self._stdin_buf = b""
        self.stdout = Channel(self._make_log(config.stdout_logfile, config.stdout_logfile_maxbytes,
                                             config.stdout_logfile_backups))
        self.stderr = Channel(None if config.redirect_stderr else
                              self._make_log(config.stderr_logfile, config.stderr_logfile_maxbytes,
                                             config.stderr_logfile_backups))

    # -- helpers -----------------------------------------------------------------------
    @staticmethod
    def _make_log(path: str | None, maxbytes: int, backups: int) -> RotatingLog | None:
        if not path:
            return None
        return RotatingLog(path, maxbytes, backups)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def group(self) -> str:
        return self.config.group

    @property
    def namespec(self) -> str:
        return self.config.namespec

    def change_state(self, new: ProcessState) -> bool:
        """The single transition point. BACKOFF bumps the back-off counter and its delay."""
        old = self.state
        if new == old:
            return False
        assert new in ALLOWED[old], f"{self.name}: illegal transition {old.name} -> {new.name}"
        self.state = new
        if new == S.BACKOFF:
            self.backoff += 1
            self.delay = self.host.now() + self.backoff   # wait 1, 2, 3 ... s (Supervisor)
        self.host.changed(self, old, new)
        return True

    def _record_spawnerr(self, msg: str) -> None:
        self.spawnerr = msg
        self.host.log("info", f"spawnerr: {msg}")

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"SUPERVISOR_ENABLED": "1", "SUPERVISOR_PROCESS_NAME": self.name,
                    "SUPERVISOR_GROUP_NAME": self.group})
        url = self.config.serverurl or getattr(self.host, "serverurl", None)
        if url:
            env["SUPERVISOR_SERVER_URL"] = url   # supervisor.childutils and `supervisorctl` use it
        env.update(dict(self.config.environment))
        if "PYTHONUNBUFFERED" not in env and _is_python(self.config.argv[0]):
            env["PYTHONUNBUFFERED"] = "1"
        return env

    # -- spawn ---------------------------------------------------------------------------
    def check_command(self) -> str:
        """Raises SpawnError(NO_FILE / NOT_EXECUTABLE) before any fork (startProcess does this first)."""
        env_path = dict(self.config.environment).get("PATH", os.environ.get("PATH"))
        return self.host.os.resolve_command(self.config.argv[0], env_path)

    def spawn(self) -> int | None:
        """STOPPED/EXITED/FATAL/BACKOFF → STARTING, then the fork; None on failure (→ BACKOFF)."""
        if self.pid:
            self.host.log("warn", f"process {self.name!r} already running")
            return None
        self.killing = False
        self.spawnerr = None
        self.exitstatus = None
        self.system_stop = False
        self.administrative_stop = False
        self.laststart = self.host.os.wall()
        self._start_mono = self.host.now()
        self.change_state(S.STARTING)
        try:
            executable = self.check_command()
        except SpawnError as e:
            self._record_spawnerr(e.message)
            self.change_state(S.BACKOFF)
            return None
        osapi = self.host.os
        in_r, in_w = osapi.stdin_pipe()
        out_r, out_w = osapi.pipe()
        if self.config.redirect_stderr:
            err_r, err_w = -1, out_w
        else:
            err_r, err_w = osapi.pipe()
        try:
            pid = osapi.spawn(executable, list(self.config.argv), self.environment(), self.config.directory,
                              self.config.uid, self.config.umask, out_w, err_w, in_r)
        except SpawnError as e:
            for fd in (in_r, in_w, out_r, out_w, err_r, err_w):
                if fd >= 0:
                    osapi.close(fd)
            # The child would have printed this on its stderr before exiting 127 in Supervisor.
            self.stderr.feed((e.message + "\n").encode())
            self._record_spawnerr(e.message)
            self.change_state(S.BACKOFF)
            return None
        osapi.close(in_r)
        osapi.close(out_w)
        if err_w != out_w:
            osapi.close(err_w)
        self.stdin_fd, self._stdin_buf = in_w, b""
        self.pid = pid
        self.host.register_pid(self)
        self._fds = {"stdout": out_r}
        self.host.watch_pipe(out_r, self, "stdout")
        if err_r >= 0:
            self._fds["stderr"] = err_r
            self.host.watch_pipe(err_r, self, "stderr")
        self.delay = self.host.now() + self.config.startsecs
        self.host.log("info", f"spawned: {self.name!r} with pid {pid}")
        return pid

    # -- output --------------------------------------------------------------------------
    def pipe_readable(self, channel: str) -> None:
        fd = self._fds.get(channel)
        if fd is None:
            return
        data = self.host.os.read(fd)
        if data is None:
            return
        if data == b"":
            self.host.unwatch_pipe(fd)
            self.host.os.close(fd)
            del self._fds[channel]
            return
        (self.stdout if channel == "stdout" else self.stderr).feed(data)

    STDIN_MAX = 1 << 20

    def write_stdin(self, data: bytes) -> str | None:
        """sendProcessStdin: queue data for the program's stdin; None or an error text."""
        if self.stdin_fd < 0:
            return "process has no stdin channel"
        if len(self._stdin_buf) + len(data) > self.STDIN_MAX:
            return "stdin buffer full (the program is not reading its input)"
        self._stdin_buf += data
        self.flush_stdin()
        return None

    def flush_stdin(self) -> None:
        """Write what the pipe takes now; the host re-calls this when the pipe is writable."""
        while self._stdin_buf and self.stdin_fd >= 0:
            n = self.host.os.write(self.stdin_fd, self._stdin_buf)
            if n < 0:
                self._stdin_buf = b""
                self._close_stdin()
                return
            if n == 0:
                self.host.want_write(self.stdin_fd, self)
                return
            self._stdin_buf = self._stdin_buf[n:]
        self.host.want_write(self.stdin_fd, None)

    def _close_stdin(self) -> None:
        if self.stdin_fd >= 0:
            self.host.want_write(self.stdin_fd, None)
            self.host.os.close(self.stdin_fd)
            self.stdin_fd = -1

    def close_pipes(self) -> None:
        self._close_stdin()
        self._stdin_buf = b""
        for ch, fd in list(self._fds.items()):
            # drain what is buffered, bounded
            for _ in range(16):
                data = self.host.os.read(fd)
                if not data:
                    break
                (self.stdout if ch == "stdout" else self.stderr).feed(data)
            self.host.unwatch_pipe(fd)
            self.host.os.close(fd)
        self._fds.clear()

    # -- stop / signal -------------------------------------------------------------------
    def stop(self) -> str | None:
        self.administrative_stop = True
        self._last_stop_report = 0.0
        return self.kill(self.config.stopsignal)

    def stop_report(self) -> None:
        if self.state == S.STOPPING:
            now = self.host.now()
            if now > self._last_stop_report + 1:
                self.host.log("info", f"waiting for {self.name} to stop")
                self._last_stop_report = now

    def give_up(self) -> None:
        self.delay = 0
        self.backoff = 0
        self.system_stop = True
        self.change_state(S.FATAL)

    def kill(self, sig: int) -> str | None:
        """Send `sig` as part of stopping. Returns an error text or None."""
        now = self.host.now()
        if self.state == S.BACKOFF:
            self.host.log("debug", f"Attempted to kill {self.name}, which is in BACKOFF state.")
            self.change_state(S.STOPPED)
            return None
        if not self.pid:
            msg = f"attempted to kill {self.name} with sig {signame(sig)} but it wasn't running"
            self.host.log("debug", msg)
            return msg
        if self.state == S.STOPPING and sig == signal.SIGKILL:
            pass
        elif self.state not in (S.RUNNING, S.STARTING, S.STOPPING):
            return f"process {self.name} is in an unexpected state {self.state.name}"
        as_group = self.config.killasgroup if sig == signal.SIGKILL else self.config.stopasgroup
        what = "process group" if as_group else "process"
        self.host.log("debug", f"killing {self.name} (pid {self.pid}) {what} with signal {signame(sig)}")
        # Remember the whole tree now: children that escape the group (setsid) are still
        # ours, and after the main process dies they re-parent to the master (subreaper).
        self._tree |= self.host.os.tree(self.pid, self.pid)
        self.killing = True
        self.delay = now + self.config.stopwaitsecs
        if self.state != S.STOPPING:
            self.change_state(S.STOPPING)
        try:
            if as_group:
                self.host.os.killpg(self.pid, sig)
            else:
                self.host.os.kill(self.pid, sig)
        except ProcessLookupError:
            pass   # already gone; finish() will come from the master's reaping
        except OSError as e:
            msg = f"unknown problem killing {self.name} ({self.pid}):{e}"
            self.host.log("crit", msg)
            self.change_state(S.UNKNOWN)
            self.killing = False
            self.delay = 0
            return msg
        return None

    def kill_tree(self) -> None:
        """SIGKILL the process, its group and every descendant recorded or found now."""
        if not self.pid:
            return
        osapi = self.host.os
        for p, st in osapi.tree(self.pid, self.pid) | self._tree:
            osapi.kill_if_same(p, st, signal.SIGKILL)
        osapi.killpg(self.pid, signal.SIGKILL)
        try:
            osapi.kill(self.pid, signal.SIGKILL)
        except OSError:
            pass

    def signal(self, sig: int) -> str | None:
        if not self.pid:
            return f"attempted to kill {self.name} with sig {signame(sig)} but it wasn't running"
        self.host.log("debug", f"sending {self.name} (pid {self.pid}) sig {signame(sig)}")
        try:
            self.host.os.kill(self.pid, sig)
        except ProcessLookupError:
            return None
        except OSError as e:
            msg = f"unknown problem sending sig {self.name} ({self.pid}):{e}"
            self.host.log("crit", msg)
            self.change_state(S.UNKNOWN)
            return msg
        return None

    # -- exit ----------------------------------------------------------------------------
    def finish(self, status: int) -> None:
        """The master reaped our pid with `status`."""
        es, text = decode_wait_status(status)
        now = self.host.now()
        self.laststop = self.host.os.wall()
        too_quickly = now - self._start_mono < self.config.startsecs
        expected = es in self.config.exitcodes
        self.last_exit_text = text
        if self.state == S.UNKNOWN:
            # a kill() that failed left us not knowing; the exit settles it
            self.killing = False
            self.delay = 0
            self.exitstatus = es
            msg = f"exited: {self.name} ({text}; state was UNKNOWN)"
            self.change_state(S.STOPPED)
        elif self.killing:
            self.killing = False
            self.delay = 0
            self.exitstatus = es
            msg = f"stopped: {self.name} ({text})"
            assert self.state == S.STOPPING, self.state
            self.change_state(S.STOPPED)
        elif too_quickly:
            self.exitstatus = None
            self.spawnerr = "Exited too quickly (process log may have details)"
            msg = f"exited: {self.name} ({text}; not expected)"
            assert self.state == S.STARTING, self.state
            self.change_state(S.BACKOFF)
        else:
            self.delay = 0
            self.backoff = 0
            self.exitstatus = es
            if self.state == S.STARTING:
                # it stayed up long enough even if the timer has not fired yet
                self.change_state(S.RUNNING)
            assert self.state == S.RUNNING, self.state
            if expected:
                msg = f"exited: {self.name} ({text}; expected)"
            else:
                self.spawnerr = f"Bad exit code {es}"
                msg = f"exited: {self.name} ({text}; not expected)"
            self.change_state(S.EXITED)
        self.host.log("info", msg)
        pid = self.pid
        self.pid = 0
        self.close_pipes()
        self._kill_leftovers(pid)

    def _kill_leftovers(self, pid: int) -> None:
        """The main process is gone: SIGKILL what remains of its tree (group + recorded)."""
        osapi = self.host.os
        left = osapi.tree(pid, pid) | self._tree
        self._tree = set()
        n = 0
        for p, st in left:
            if osapi.kill_if_same(p, st, signal.SIGKILL):
                n += 1
        if n:
            self.host.log("warn", f"killed {n} leftover process(es) of {self.name} (pid {pid}'s tree) with SIGKILL")

    # -- time-driven transitions -----------------------------------------------------------
    def transition(self, now: float) -> None:
        state = self.state
        if state in (S.EXITED, S.STOPPED):
            if not self.host.accepting_starts():
                return
            if state == S.EXITED:
                ar = self.config.autorestart
                if ar == "true" or (ar == "unexpected" and self.exitstatus not in self.config.exitcodes):
                    self.spawn()
            elif not self.laststart and self.config.autostart:
                self.spawn()
        elif state == S.BACKOFF:
            if self.backoff <= self.config.startretries:
                if now >= self.delay and self.host.accepting_starts():
                    self.spawn()
            else:
                self.give_up()
                self.host.log("info", f"gave up: {self.name} entered FATAL state, too many start retries too quickly")
        elif state == S.STARTING:
            if now - self._start_mono >= self.config.startsecs:
                self.delay = 0
                self.backoff = 0
                self.change_state(S.RUNNING)
                self.host.log("info", f"success: {self.name} entered RUNNING state, process has stayed up for > "
                                      f"than {self.config.startsecs} seconds (startsecs)")
        elif state == S.STOPPING:
            if now >= self.delay and self.pid:
                self.host.log("warn", f"killing {self.name!r} ({self.pid}) with SIGKILL")
                self.kill(signal.SIGKILL)
                # the whole recorded tree too: a grandchild ignoring SIGTERM dies here
                for p, st in self._tree:
                    self.host.os.kill_if_same(p, st, signal.SIGKILL)
                self.host.os.killpg(self.pid, signal.SIGKILL) if self.pid else None

    def next_deadline(self) -> float | None:
        """Monotonic time at which transition() has something to do, None if nothing."""
        if self.state == S.STARTING:
            return self._start_mono + self.config.startsecs
        if self.state in (S.BACKOFF, S.STOPPING):
            return self.delay
        if self.state == S.EXITED and self.config.autorestart != "false":
            return self.host.now()
        if self.state == S.STOPPED and not self.laststart and self.config.autostart:
            return self.host.now()
        return None

    # -- reporting -------------------------------------------------------------------------
    def info(self) -> dict:
        now = int(self.host.os.wall())
        return {
            "name": self.name, "group": self.group,
            "start": _int32(self.laststart), "stop": _int32(self.laststop), "now": _int32(now),
            "state": int(self.state), "statename": self.state.name,
            "spawnerr": self.spawnerr or "", "exitstatus": self.exitstatus or 0,
            "logfile": self.config.stdout_logfile or "",
            "stdout_logfile": self.config.stdout_logfile or "",
            "stderr_logfile": self.config.stderr_logfile or "",
            "pid": self.pid,
        }

    def cause(self) -> str:
        """pyfront's richer explanation for FATAL/BACKOFF: spawn error + last stderr lines."""
        lines = self.stderr.last_lines() or self.stdout.last_lines()
        parts = [self.spawnerr or "unknown error"]
        if self.last_exit_text and not (self.spawnerr or "").startswith(("can't find", "command at", "couldn't")):
            parts.append(f"last exit: {self.last_exit_text}")
        if lines:
            parts.append("last output: " + " | ".join(lines[-3:]))
        return "; ".join(parts)


def _int32(t: float) -> int:
    t = int(t)
    return min(t, 2 ** 31 - 1)


def _is_python(argv0: str) -> bool:
    base = os.path.basename(argv0)
    return base.startswith("python") or base in ("uwsgi", "gunicorn", "celery", "pyfront")
