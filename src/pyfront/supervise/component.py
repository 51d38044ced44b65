"""SupervisorComponent: the [program:x] layer inside the pyfront master's Loop.

Never blocks: pipes are read when the loop says they are readable, time-driven state
changes run from one timer armed at the earliest deadline of any process, and exits come
from the master's reaping through child_exited(pid, status).
"""
from __future__ import annotations

import os
import time
from typing import Callable

from pyfront.component import Loop, ProcessStatus, Timer
from pyfront.supervise.config import GroupConfig, ProcessConfig, SupervisorConfig
from pyfront.supervise.logs import RotatingLog
from pyfront.supervise.osapi import OSApi
from pyfront.supervise.process import Subprocess
from pyfront.supervise.states import STOPPED_STATES, ProcessState

LogFn = Callable[[str, str], None]
# Supervisor's level numbers (supervisor/loggers.py), keyed by the names the master uses too.
_LEVELS = {"critical": 50, "crit": 50, "error": 40, "warn": 30, "notice": 25, "info": 20, "debug": 10,
           "trace": 5, "blather": 3}
_TAGS = {"critical": "CRIT", "crit": "CRIT", "error": "ERRO", "warn": "WARN", "notice": "INFO", "info": "INFO",
         "debug": "DEBG", "trace": "TRAC", "blather": "BLAT"}


class ProcessGroup:
    def __init__(self, config: GroupConfig, host: "SupervisorComponent"):
        self.config = config
        self.processes: dict[str, Subprocess] = {p.name: Subprocess(p, host) for p in config.processes}

    @property
    def name(self) -> str:
        return self.config.name

    def sorted_processes(self) -> list[Subprocess]:
        return sorted(self.processes.values(), key=lambda p: (p.config.priority, p.name))


class SupervisorComponent:
    name = "programs"

    def __init__(self, config: SupervisorConfig, log: LogFn | None = None, osapi: OSApi | None = None):
        self.config = config
        self.os = osapi or OSApi()
        self._log = log or (lambda level, msg: None)
        self.loop: Loop | None = None
        self.groups: dict[str, ProcessGroup] = {}
        self._by_pid: dict[int, Subprocess] = {}
        self._pipes: dict[int, tuple[Subprocess, str]] = {}
        self._writers: dict[int, Subprocess] = {}
        self._timer: Timer | None = None
        self._timer_when = 0.0
        self._stopping = False
        self._orphans: set[Subprocess] = set()   # removed groups still stopping
        self._pending: dict[str, GroupConfig] = {}  # changed groups waiting for the old ones to exit
        self._listeners: list[Callable[[Subprocess, ProcessState, ProcessState], None]] = []
        self.mainlog: RotatingLog | None = None
        self._threshold = _LEVELS.get(config.supervisord.loglevel, 20)
        self._open_mainlog(config)
        for g in config.groups:
            self.groups[g.name] = ProcessGroup(g, self)

    def _open_mainlog(self, config: SupervisorConfig) -> None:
        sd = config.supervisord
        if self.mainlog is not None:
            if self.mainlog.path == sd.logfile:
                self.mainlog.maxbytes, self.mainlog.backups = sd.logfile_maxbytes, sd.logfile_backups
                return
            self.mainlog.close()
            self.mainlog = None
        if sd.logfile and os.path.isabs(sd.logfile):
            self.mainlog = RotatingLog(sd.logfile, sd.logfile_maxbytes, sd.logfile_backups)

    def main_log_path(self) -> str | None:
        """[supervisord] logfile, written in Supervisor's format (maintail / readLog read it)."""
        return self.mainlog.path if self.mainlog is not None else None

    # -- Host protocol used by Subprocess ------------------------------------------------
    def now(self) -> float:
        return self.loop.time() if self.loop is not None else time.monotonic()

    def log(self, level: str, msg: str) -> None:
        """Supervisor-format line in [supervisord] logfile (filtered by loglevel) + the master's log."""
        if self.mainlog is not None and _LEVELS.get(level, 20) >= self._threshold:
            t = time.time()
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) + ",%03d" % int((t % 1) * 1000)
            self.mainlog.write(f"{stamp} {_TAGS.get(level, 'INFO')} {msg}\n".encode("utf-8", "replace"))
        if _LEVELS.get(level, 20) >= self._threshold:
            self._log(level, msg)

    def watch_pipe(self, fd: int, proc: Subprocess, channel: str) -> None:
        self._pipes[fd] = (proc, channel)
        if self.loop is not None:
            self.loop.add_reader(fd, lambda fd=fd: self._readable(fd))

    def unwatch_pipe(self, fd: int) -> None:
        self._pipes.pop(fd, None)
        if self.loop is not None:
            self.loop.remove(fd)

    def want_write(self, fd: int, proc: Subprocess | None) -> None:
        if self.loop is None:
            return
        if proc is None:
            if self._writers.pop(fd, None) is not None:
                self.loop.remove(fd)
        elif fd not in self._writers:
            self._writers[fd] = proc
            self.loop.add_writer(fd, proc.flush_stdin)

    def _readable(self, fd: int) -> None:
        entry = self._pipes.get(fd)
        if entry is not None:
            entry[0].pipe_readable(entry[1])

    def changed(self, proc: Subprocess, old: ProcessState, new: ProcessState) -> None:
        if proc.pid:
            self._by_pid[proc.pid] = proc
        for cb in list(self._listeners):
            cb(proc, old, new)
        self.kick()

    @property
    def serverurl(self) -> str | None:
        """serverurl=AUTO: the control server programs can reach (unix socket first)."""
        c = self.config
        if c.unix is not None:
            return f"unix://{c.unix.file}"
        if c.inet is not None:
            host = c.inet.host if c.inet.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
            return f"http://{host}:{c.inet.port}"
        return None

    def accepting_starts(self) -> bool:
        return not self._stopping

    def add_listener(self, cb: Callable[[Subprocess, ProcessState, ProcessState], None]) -> None:
        """Called after every state change (the control server uses it to answer waiting calls)."""
        self._listeners.append(cb)

    def remove_listener(self, cb) -> None:
        if cb in self._listeners:
            self._listeners.remove(cb)

    # -- Component protocol ---------------------------------------------------------------
    def start(self, loop: Loop) -> None:
        self.loop = loop
        self.os.set_child_subreaper()
        self._raise_nofile(self.config.supervisord.minfds)
        for fd in list(self._pipes):
            loop.add_reader(fd, lambda fd=fd: self._readable(fd))
        self.kick()

    def _raise_nofile(self, minfds: int) -> None:
        """[supervisord] minfds: raise the soft RLIMIT_NOFILE (inherited by programs)."""
        import resource
        try:
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            if soft != resource.RLIM_INFINITY and soft < minfds:
                want = minfds if hard == resource.RLIM_INFINITY else min(minfds, hard)
                resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
                if want < minfds:
                    self.log("warn", f"minfds {minfds} is above the hard limit {hard}; using {want}")
        except (ValueError, OSError) as e:
            self.log("warn", f"cannot raise RLIMIT_NOFILE to minfds {minfds}: {e}")

    def child_exited(self, pid: int, status: int) -> bool:
        proc = self._by_pid.pop(pid, None)
        if proc is None or proc.pid != pid:
            return False
        proc.finish(status)
        self.kick()
        return True

    def reload(self, new: object) -> None:
        """Apply a new SupervisorConfig: changed groups restart, unchanged keep running."""
        assert isinstance(new, SupervisorConfig)
        added, changed, removed = self.diff(new)
        # supervisorctl update's report, one line per group
        for name in removed:
            self.log("info", f"program group {name}: removed; stopping it")
        for name in changed:
            self.log("info", f"program group {name}: changed; restarting it")
        for name in added:
            self.log("info", f"program group {name}: added; starting it")
        for name in sorted(n for n in self.groups if n not in removed and n not in changed):
            self.log("info", f"program group {name}: unchanged")
        self.config = new
        self._threshold = _LEVELS.get(new.supervisord.loglevel, 20)
        self._open_mainlog(new)
        for name in removed:
            self.remove_group_force(name)
        for name in changed:
            # like `supervisorctl update`: the old processes stop (still shown as STOPPING),
            # then the group is replaced and the new ones start
            self._pending[name] = new.group(name)
            for p in self.groups[name].processes.values():
                if p.state in (ProcessState.RUNNING, ProcessState.STARTING, ProcessState.BACKOFF):
                    p.stop()
        for name in added:
            self.add_group(new.group(name))
        self._replace_stopped()
        self.kick()

    def reopen_logs(self) -> None:
        if self.mainlog is not None:
            self.mainlog.reopen()
        for p in self.all_processes():
            for ch in (p.stdout, p.stderr):
                if ch.log is not None:
                    ch.log.reopen()

    FAST_STOP_WAIT = 4.0   # s: a fast stop (SIGTERM/SIGINT to pyfront) must end within 5 s

    def stop(self, graceful: bool = True) -> None:
        """Stop every program in reverse priority order; graceful honours stopwaitsecs, a fast
        stop escalates to SIGKILL after at most FAST_STOP_WAIT seconds."""
        self._stopping = True
        for p in list(reversed(self.all_processes_by_priority())) + list(self._orphans):
            if p.state in (ProcessState.RUNNING, ProcessState.STARTING, ProcessState.BACKOFF):
                p.stop()
            if not graceful and p.state == ProcessState.STOPPING:
                p.delay = min(p.delay, self.now() + self.FAST_STOP_WAIT)
        self.kick()

    def kill_all(self) -> None:
        """The master's stop deadline passed: SIGKILL every program's whole tree now."""
        for p in self.all_processes() + list(self._orphans):
            if p.pid:
                p.kill_tree()

    def stopped(self) -> bool:
        return all(p.pid == 0 for p in self.all_processes() + list(self._orphans))

    def status(self) -> list[ProcessStatus]:
        rows = []
        for p in self.all_processes():
            info = p.info()
            rows.append(ProcessStatus(group=p.group, name=p.name, state=p.state.name, pid=p.pid,
                                      start=p.laststart, description=describe(info),
                                      rss=self.os.rss(p.pid) if p.pid else 0))
        return rows

    # -- process table ----------------------------------------------------------------------
    def all_processes(self) -> list[Subprocess]:
        """Lexical order: groups by name, processes by name (getAllProcessInfo order)."""
        out = []
        for gname in sorted(self.groups):
            g = self.groups[gname]
            out.extend(g.processes[n] for n in sorted(g.processes))
        return out

    def all_processes_by_priority(self) -> list[Subprocess]:
        out = []
        for g in sorted(self.groups.values(), key=lambda g: (g.config.priority, g.name)):
            out.extend(g.sorted_processes())
        return out

    def add_group(self, g: GroupConfig) -> bool:
        if g.name in self.groups:
            return False
        self.groups[g.name] = ProcessGroup(g, self)
        self.kick()
        return True

    def remove_group(self, name: str) -> bool:
        """False if any process of the group is still running (STILL_RUNNING)."""
        g = self.groups.get(name)
        if g is None:
            return False
        if any(p.state not in STOPPED_STATES for p in g.processes.values()):
            return False
        self._drop(g)
        return True

    def remove_group_force(self, name: str) -> None:
        """Stop then forget: processes still running finish in the background (their exits
        are still recognised by pid)."""
        g = self.groups.pop(name, None)
        if g is None:
            return
        for p in g.processes.values():
            if p.state in (ProcessState.RUNNING, ProcessState.STARTING, ProcessState.BACKOFF):
                p.stop()
            if p.pid:
                self._orphans.add(p)
            else:
                self._close_logs(p)

    def _drop(self, g: ProcessGroup) -> None:
        self.groups.pop(g.name, None)
        for p in g.processes.values():
            self._close_logs(p)

    @staticmethod
    def _close_logs(p: Subprocess) -> None:
        for ch in (p.stdout, p.stderr):
            if ch.log is not None:
                ch.log.close()

    def diff(self, new: SupervisorConfig) -> tuple[list[str], list[str], list[str]]:
        """reloadConfig(): (added, changed, removed) group names, against what runs now."""
        cur = {name: g.config for name, g in self.groups.items()}
        nxt = {g.name: g for g in new.groups}
        added = sorted(n for n in nxt if n not in cur)
        removed = sorted(n for n in cur if n not in nxt)
        changed = sorted(n for n in nxt if n in cur and nxt[n] != cur[n])
        return added, changed, removed

    def find(self, namespec: str) -> tuple[ProcessGroup | None, Subprocess | None]:
        group_name, proc_name = split_namespec(namespec)
        g = self.groups.get(group_name)
        if g is None or proc_name is None:
            return g, None
        return g, g.processes.get(proc_name)

    # -- timers ---------------------------------------------------------------------------
    def kick(self) -> None:
        """Run due transitions now (next loop turn) and re-arm the timer at the next deadline."""
        if self.loop is None:
            return
        now = self.loop.time()
        if self._timer is not None and self._timer_when <= now + 0.0005 and not self._timer.cancelled:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_when = now
        self._timer = self.loop.call_at(now, self._tick)

    def _replace_stopped(self) -> None:
        for name in list(self._pending):
            old = self.groups.get(name)
            if old is not None and any(p.pid for p in old.processes.values()):
                continue
            g = self._pending.pop(name)
            if old is not None:
                self._drop(old)
            if not self._stopping:
                self.add_group(g)

    def _tick(self) -> None:
        self._timer = None
        now = self.now()
        self._replace_stopped()
        for p in self.all_processes_by_priority() + list(self._orphans):
            p.transition(now)
            if p.state == ProcessState.STOPPING:
                p.stop_report()
        for p in [p for p in self._orphans if not p.pid]:
            self._close_logs(p)
            self._orphans.discard(p)
        deadlines = [d for p in self.all_processes() + list(self._orphans)
                     if (d := p.next_deadline()) is not None]
        if self._timer is not None:     # a transition kicked again
            return
        if deadlines:
            when = max(min(deadlines), now + 0.001)
            if any(p.state == ProcessState.STOPPING for p in self.all_processes()):
                when = min(when, now + 1.0)   # "waiting for x to stop" once a second
            self._timer_when = when
            self._timer = self.loop.call_at(when, self._tick)

    def register_pid(self, proc: Subprocess) -> None:
        if proc.pid:
            self._by_pid[proc.pid] = proc


def split_namespec(namespec: str) -> tuple[str, str | None]:
    """'g:name' → (g, name); 'g:*' or 'g:' → (g, None); 'name' → (name, name)."""
    if ":" in namespec:
        g, n = namespec.split(":", 1)
        return g, (None if n in ("", "*") else n)
    return namespec, namespec


def describe(info: dict) -> str:
    """getProcessInfo's description (rpcinterface._interpretProcessInfo semantics)."""
    import datetime
    state = info["state"]
    if state == ProcessState.RUNNING:
        start, now = info["start"], info["now"]
        up = max(0, now - start)
        return f"pid {info['pid']}, uptime {datetime.timedelta(seconds=up)}"
    if state in (ProcessState.FATAL, ProcessState.BACKOFF):
        return info["spawnerr"] or f'unknown error (try "tail {info["name"]}")'
    if state in (ProcessState.STOPPED, ProcessState.EXITED):
        if info["start"]:
            return datetime.datetime.fromtimestamp(info["stop"]).strftime("%b %d %I:%M %p")
        return "Not started"
    return ""
