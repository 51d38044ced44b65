"""The app layer inside the master: one app master per [uwsgi] section.

The pyfront master owns each app's listen sockets (bound once, kept across reloads, so a
front or a real nginx pointing at them is never refused) and forks an app master
(pyfront.app.master.run_app_master) with them. The app master writes one byte on a pipe
once every worker accepts.

Reload (HUP) applies only what changed (pyfront.app_code decides what "changed" means):
- an app whose effective config and code (ini file, source files under its code roots,
  its virtualenv's site-packages) are unchanged keeps its app master, workers and sockets
  ("app a: unchanged" in the log);
- a changed app is restarted, because HUP is how operators deploy new code (uWSGI's
  meaning): a new app master starts on the SAME sockets; when its ready byte arrives the old
  one gets TERM (graceful: its workers finish their requests). If the new one exits before it
  is ready, the old one keeps serving and the log says why;
- an added app starts; a removed app's master gets TERM and its sockets are closed (a unix
  socket file unlinked) once it has exited.
An app whose master was never ready at boot (need-app: the app does not import) fails the
whole `pyfront serve` with exit 1, as uWSGI does.
"""
from __future__ import annotations

import itertools
import os
import signal
import socket
import time
from dataclasses import dataclass
from typing import Callable

from pyfront import app_code
from pyfront.component import Loop, ProcessStatus

FAST_KILL_AFTER = 3.0
GRACEFUL_KILL_MARGIN = 5.0
RESPAWN_DELAY = 1.0
RETRY_DELAY = 5.0        # an app whose new code does not load is retried this often
PR_SET_PDEATHSIG = 1


def _default_entry(cfg, socks, ready_fd) -> None:
    from pyfront.app.master import run_app_master
    run_app_master(cfg, socks, ready_fd)


def _default_bind(ls, cfg) -> socket.socket:
    from pyfront.app.master import bind_listen
    return bind_listen(ls, cfg)


@dataclass
class _AppProc:
    name: str
    cfg: object
    pid: int
    ready_r: int
    started_wall: float
    ready: bool = False
    retiring: bool = False
    replaces: "_AppProc | None" = None
    ever_ready: bool = False
    board: object = None          # app.scoreboard.Scoreboard shared with the app master (status)
    code: dict | None = None      # app_code.snapshot() taken just before the fork
    seq: int = 0                  # spawn order: the highest is the newest app master of an app


class AppPool:
    """Component for every [uwsgi] section (layer "apps": a tuple of AppConfig)."""

    name = "apps"

    def __init__(self, apps, log: Callable[[str, str], None], *, entry=None, bind=None) -> None:
        self.apps = {a.name: a for a in apps}
        self.log = log
        self.entry = entry or _default_entry
        self.bind = bind or _default_bind
        self.socks: dict[tuple[str, str], socket.socket] = {}
        self.procs: dict[int, _AppProc] = {}
        self.loop: Loop | None = None
        self.stopping = False
        self.fatal: str | None = None        # set when an app cannot start at boot
        self._opened: list[tuple[str, str]] = []
        self.ever_ready: set[str] = set()    # apps that have had a ready app master
        self._seq = itertools.count(1)

    # ---- sockets --------------------------------------------------------------------
    def _ensure_sockets(self, apps: dict) -> list[tuple[str, str]]:
        opened = []
        try:
            for cfg in apps.values():
                for ls in cfg.listen:
                    key = (cfg.name, ls.address)
                    if key not in self.socks:
                        self.socks[key] = self.bind(ls, cfg)
                        opened.append(key)
        except OSError as e:
            self._close(opened)
            raise OSError(e.errno, f"bind() to {ls.address} failed for app {cfg.name} ({e.errno}: {e.strerror})") \
                from None
        return opened

    def _close(self, keys) -> None:
        for key in list(keys):
            s = self.socks.pop(key, None)
            if s is None:
                continue
            path = None
            if s.family == socket.AF_UNIX:
                path = s.getsockname()
            s.close()
            if isinstance(path, str) and path and not path.startswith("\0"):
                try:
                    os.unlink(path)
                except OSError:
                    pass

    def open(self) -> None:
        self._ensure_sockets(self.apps)

    def close(self) -> None:
        self._close(list(self.socks))

    # ---- processes --------------------------------------------------------------------
    def start(self, loop: Loop) -> None:
        self.loop = loop
        if not self.socks:
            self.open()
        for cfg in self.apps.values():
            self._spawn(cfg)

    def _spawn(self, cfg, replaces: _AppProc | None = None, code: dict | None = None) -> _AppProc:
        socks = [self.socks[(cfg.name, ls.address)] for ls in cfg.listen]
        if code is None:
            code = app_code.snapshot(cfg)
        board = None
        if self.entry is _default_entry:
            from pyfront.app import scoreboard as sb
            board = sb.Scoreboard(sb.slots_for(cfg.processes), cfg.threads)   # MAP_SHARED: inherited
        r, w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            self._child(cfg, socks, w, board)
        os.close(w)
        proc = _AppProc(cfg.name, cfg, pid, r, time.time(), replaces=replaces, board=board, code=code,
                        seq=next(self._seq))
        self.procs[pid] = proc
        assert self.loop is not None
        self.loop.add_reader(r, lambda p=proc: self._on_ready(p))
        self.log("notice", f"start app master {cfg.name} process {pid}")
        return proc

    def _child(self, cfg, socks, ready_w, board=None) -> None:
        code = 1
        try:
            import ctypes
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
            signal.set_wakeup_fd(-1)
            # Until the child installs its own handlers: stop signals keep their default
            # (terminate) action, but HUP/USR1/USR2/WINCH — whose default would also kill it —
            # are ignored, so a log reopen or a terminal hangup right after fork cannot kill it.
            for sig in (signal.SIGQUIT, signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH):
                signal.signal(sig, signal.SIG_IGN)
            signal.pthread_sigmask(signal.SIG_SETMASK, set())
            from pyfront.front_pool import _close_fds_except
            _close_fds_except({0, 1, 2, ready_w} | {s.fileno() for s in socks})
            if board is not None:
                from pyfront.app.master import run_app_master
                run_app_master(cfg, socks, ready_w, board)
            else:
                self.entry(cfg, socks, ready_w)
            code = 0
        except BaseException:
            import traceback
            traceback.print_exc()
        finally:
            os._exit(code)

    def _on_ready(self, proc: _AppProc) -> None:
        try:
            data = os.read(proc.ready_r, 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        self._unwatch(proc)
        if not data:
            return     # it exited before it was ready: child_exited decides
        proc.ready = proc.ever_ready = True
        self.ever_ready.add(proc.name)
        self.log("notice", f"app {proc.name} ready (app master pid {proc.pid})")
        old = proc.replaces
        proc.replaces = None
        if old is not None and old.pid in self.procs and not proc.retiring:
            self._retire(old)

    def _unwatch(self, proc: _AppProc) -> None:
        if proc.ready_r >= 0:
            assert self.loop is not None
            self.loop.remove(proc.ready_r)
            os.close(proc.ready_r)
            proc.ready_r = -1

    def _retire(self, proc: _AppProc) -> None:
        proc.retiring = True
        self._signal(proc.pid, signal.SIGTERM)      # graceful: workers finish their requests
        mercy = getattr(proc.cfg, "reload_mercy", 60) + GRACEFUL_KILL_MARGIN
        assert self.loop is not None
        self.loop.call_later(mercy, lambda pid=proc.pid: self._kill_if_alive([pid]))

    def _signal(self, pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def _kill_if_alive(self, pids) -> None:
        for pid in pids:
            if pid in self.procs:
                self.log("alert", f"app master {self.procs[pid].name} process {pid} did not exit in time, "
                                  "sending SIGKILL")
                self._signal(pid, signal.SIGKILL)

    def child_exited(self, pid: int, status: int) -> bool:
        proc = self.procs.pop(pid, None)
        if proc is None:
            return False
        self._unwatch(proc)
        if proc.board is not None:
            proc.board.close()
            proc.board = None
        if os.WIFSIGNALED(status):
            how = f"on signal {os.WTERMSIG(status)}"
        else:
            how = f"with code {os.WEXITSTATUS(status)}"
        expected = self.stopping or proc.retiring
        self.log("notice" if expected else "alert", f"app master {proc.name} process {pid} exited {how}")
        if expected:
            self._close_unused()
            return True
        if not proc.ready:
            if proc.replaces is not None:
                self.log("emerg", f"reload of app {proc.name} failed: its new app master exited {how} "
                                  "before it was ready; keeping the running one")
            if self._has_live(proc.name):
                return True
            if proc.name not in self.ever_ready:
                # never served at all (need-app at boot): the whole serve fails, as uWSGI does
                self.fatal = (f"app {proc.name} could not start: its app master exited {how} "
                              "(see the app's log lines above)")
                return True
            self.log("alert", f"app {proc.name} has no running app master; retrying in {RETRY_DELAY:.0f}s")
            assert self.loop is not None
            self.loop.call_later(RETRY_DELAY, lambda name=proc.name: self._respawn(name))
            return True
        # A ready app master died unexpectedly: bring the app back.
        self.log("alert", f"app {proc.name} has no running app master; respawning in {RESPAWN_DELAY:.0f}s")
        assert self.loop is not None
        self.loop.call_later(RESPAWN_DELAY, lambda name=proc.name: self._respawn(name))
        return True

    def _has_live(self, name: str) -> bool:
        return any(p.name == name and not p.retiring for p in self.procs.values())

    def _respawn(self, name: str) -> None:
        if self.stopping or name not in self.apps or self._has_live(name):
            return
        self._spawn(self.apps[name])

    def _close_unused(self) -> None:
        used = {(c.name, ls.address) for c in self.apps.values() for ls in c.listen}
        live = {(p.cfg.name, ls.address) for p in self.procs.values() for ls in p.cfg.listen}
        self._close([k for k in self.socks if k not in used and k not in live])

    # ---- reload ------------------------------------------------------------------------
    def prepare(self, apps) -> None:
        new = {a.name: a for a in apps}
        self._opened = self._ensure_sockets(new)

    def abort(self) -> None:
        self._close(self._opened)
        self._opened = []

    def reload(self, apps) -> None:
        new = {a.name: a for a in apps}
        self._ensure_sockets(new)
        self._opened = []
        old_apps = self.apps
        self.apps = new
        for name, cfg in new.items():
            current = [p for p in self.procs.values() if p.name == name and not p.retiring]
            if not current:
                self.log("notice", f"app {name}: {'added' if name not in old_apps else 'not running'}; starting it")
                self._spawn(cfg)
                continue
            newest = max(current, key=lambda p: p.seq)
            code = app_code.snapshot(cfg)
            why = _why_reload(newest, cfg, code)
            if why is None:
                self.log("notice", f"app {name}: unchanged")
                continue
            self.log("notice", f"app {name}: {why}; reloading")
            # A replacement still starting from an earlier reload is superseded: stop it, so
            # that exactly one new app master takes over from the running one.
            for p in current:
                if p.replaces is not None and not p.ready:
                    self._retire(p)
            running = next((p for p in current if p.ready), None) or \
                next((p for p in current if p.replaces is None), None)
            self._spawn(cfg, replaces=running, code=code)
        for name in old_apps:
            if name not in new:
                self.log("notice", f"app {name}: removed; stopping it")
                for p in list(self.procs.values()):
                    if p.name == name and not p.retiring:
                        self._retire(p)
        self._close_unused()

    def starting(self) -> bool:
        """True until every app has had a ready app master (boot readiness)."""
        return any(name not in self.ever_ready for name in self.apps) and not self.fatal

    def reloading(self) -> bool:
        return any(p.replaces is not None and not p.ready for p in self.procs.values())

    # ---- stop / logs / status --------------------------------------------------------------
    def stop(self, graceful: bool) -> None:
        if self.stopping and graceful:
            return
        self.stopping = True
        assert self.loop is not None
        for p in self.procs.values():
            self._signal(p.pid, signal.SIGTERM if graceful else signal.SIGINT)
        pids = list(self.procs)
        delay = FAST_KILL_AFTER if not graceful else max(
            (getattr(p.cfg, "reload_mercy", 60) for p in self.procs.values()), default=60) + GRACEFUL_KILL_MARGIN
        self.loop.call_later(delay, lambda: self._kill_if_alive(pids))

    def stopped(self) -> bool:
        return not self.procs

    def kill_all(self) -> None:
        for pid in list(self.procs):
            self._signal(pid, signal.SIGKILL)

    def reopen_logs(self) -> None:
        for p in self.procs.values():
            self._signal(p.pid, signal.SIGUSR1)

    def status(self) -> list[ProcessStatus]:
        rows = []
        now = time.time()
        for p in sorted(self.procs.values(), key=lambda p: (p.name, p.pid)):
            up = int(now - p.started_wall)
            state = "STOPPING" if p.retiring or self.stopping else ("RUNNING" if p.ready else "STARTING")
            rows.append(ProcessStatus(group=f"app-{p.name}", name="master", state=state, pid=p.pid,
                                      start=p.started_wall, read_only=True,
                                      description=f"pid {p.pid}, uptime {up // 3600}:{up // 60 % 60:02d}:{up % 60:02d}"))
            board = {r["pid"]: r for r in p.board.rows()} if p.board is not None else {}
            for i, wpid in enumerate(_children(p.pid), 1):
                b = board.get(wpid, {})
                rss = rss_bytes(wpid)
                busy, cur, reqs = b.get("busy", False), b.get("current_request", ""), b.get("requests", 0)
                desc = (f"pid {wpid}, {'busy' if busy else 'idle'}, requests {reqs}, rss {rss // 1024}K"
                        + (f", request {cur}" if cur else ""))
                rows.append(ProcessStatus(group=f"app-{p.name}", name=f"worker-{i}", state=state, pid=wpid,
                                          start=p.started_wall, read_only=True, description=desc, rss=rss,
                                          requests=reqs, busy=busy, current_request=cur))
        return rows


def _why_reload(proc: _AppProc, cfg, code: dict | None) -> str | None:
    """None when the running app master already runs this config and this code; else the
    reason, for the log line ("app b: code changed (app.py); reloading")."""
    changed = app_code.config_changes(proc.cfg, cfg)
    if changed:
        return f"config changed ({', '.join(changed[:5])}{' ...' if len(changed) > 5 else ''})"
    files = app_code.code_changes(proc.code, code)
    if files is None:
        return (f"code not tracked (more than {app_code.MAX_FILES} source files or {app_code.MAX_DIRS} "
                "directories under its code roots)")
    if files:
        bases = [getattr(cfg, "chdir", None) or os.getcwd(), os.path.dirname(getattr(cfg, "file", "") or "/")]
        shown = [next((os.path.relpath(f, b) for b in bases if f.startswith(b.rstrip("/") + "/")), f)
                 for f in files[:3]]
        more = f" and {len(files) - 3} more" if len(files) > 3 else ""
        return f"code changed ({', '.join(shown)}{more})"
    return None


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []
