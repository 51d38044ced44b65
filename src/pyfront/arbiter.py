"""The master: a signal queue driving one explicit state machine (design.md §3, §5).

Signal handlers only append the signal number to a bounded queue; `signal.set_wakeup_fd`
writes a byte to a pipe the loop watches, so the loop wakes at once and the main thread
turns queued signals into events. `_transition` is the only place the state changes.

    BOOTING  -> RUNNING            every component started
    BOOTING  -> EXITED             a component could not start (bind failed, ...)
    RUNNING  -> RELOADING          HUP and the new configuration validated and prepared
    RUNNING  -> RUNNING            HUP but the new configuration failed (old one kept, logged)
    RELOADING -> RUNNING           every component reports its reload finished
    RUNNING|RELOADING -> STOPPING_GRACEFUL   QUIT
    RUNNING|RELOADING|STOPPING_GRACEFUL -> STOPPING_FAST   TERM / INT
    STOPPING_* -> EXITED           every child gone (or the hard deadline passed)

CHLD (reap) and USR1 (reopen logs) act in every state without changing it.
"""
from __future__ import annotations

import collections
import ctypes
import enum
import errno
import os
import signal
import socket
import sys
import time
import traceback
from typing import Callable

from pyfront import proctitle
from pyfront.component import Loop, ProcessStatus
from pyfront.config.diagnostics import ConfigError
from pyfront.errorlog import ErrorLog
from pyfront.listeners import ListenError
from pyfront.pidfile import PidFileError, remove_pid, running_master, write_pid
from pyfront.stack import Stack, load_stack

PR_SET_CHILD_SUBREAPER = 36
FAST_STOP_DEADLINE = 4.5     # s: SIGTERM/SIGINT must leave nothing behind within 5 s
SIGNALS = (signal.SIGHUP, signal.SIGQUIT, signal.SIGTERM, signal.SIGINT, signal.SIGUSR1,
           signal.SIGUSR2, signal.SIGWINCH, signal.SIGCHLD)


class State(enum.Enum):
    BOOTING = "booting"
    RUNNING = "running"
    RELOADING = "reloading"
    STOPPING_GRACEFUL = "stopping (graceful)"
    STOPPING_FAST = "stopping (fast)"
    EXITED = "exited"


class Event(enum.Enum):
    BOOTED = "booted"
    BOOT_FAILED = "boot failed"
    RELOAD = "reload"                 # HUP, `pyfront signal reload`, control API
    RELOAD_DONE = "reload done"
    QUIT = "quit"                     # QUIT, control API shutdown
    TERM = "terminate"                # TERM, INT
    ALL_STOPPED = "all stopped"
    DEADLINE = "stop deadline"


def _make_front(cfg, arbiter: "Arbiter"):
    from pyfront.front_pool import FrontPool
    return FrontPool(cfg, arbiter.emit)


def _make_apps(cfg, arbiter: "Arbiter"):
    from pyfront.app_pool import AppPool
    return AppPool(cfg, arbiter.emit)


def _make_programs(cfg, arbiter: "Arbiter"):
    from pyfront.supervise.component import SupervisorComponent
    return SupervisorComponent(cfg, log=arbiter.emit)


def _make_control(cfg, arbiter: "Arbiter"):
    from pyfront.control.server import ControlServer
    programs = arbiter._fresh.get("programs") or arbiter.components["programs"]
    return ControlServer(cfg, programs, MasterView(arbiter), log=arbiter.emit)


# Layer name -> factory(config, arbiter) -> Component. Order matters: started in this
# order, and "control" is stopped last (so `supervisorctl shutdown` gets its answer).
FACTORIES: dict[str, Callable] = {"apps": _make_apps, "front": _make_front, "programs": _make_programs,
                                  "control": _make_control}
STOP_LAST = ("control",)


class Arbiter:
    """Runs a Stack: one Component per layer, driven from one thread."""

    def __init__(self, stack: Stack, argv: list[str], *, log: ErrorLog | None = None,
                 factories: dict[str, Callable] | None = None,
                 loader: Callable[[str], Stack] | None = None,
                 on_ready: Callable[["Arbiter"], None] | None = None) -> None:
        self.stack = stack
        self.argv = argv
        self.log = log or ErrorLog(stack.error_log, stack.error_log_level)
        self.factories = factories or FACTORIES
        self.loader = loader or (lambda path: load_stack(path))
        self.on_ready = on_ready
        self.loop = Loop()
        self.state = State.BOOTING
        self.components: dict[str, object] = {}
        self.retiring: list[object] = []          # components of removed layers, stopping
        self.exit_code = 0
        self.pid = os.getpid()
        self._signals: collections.deque[int | Event] = collections.deque(maxlen=32)
        self._wake_r = self._wake_w = -1
        self._reload_pending = False
        self._deadline_timer = None
        self._pid_written = False
        self._fresh: dict[str, object] = {}       # components being created by a reload
        self._ready_sent = False

    # ---- the one transition function ----------------------------------------------------
    def _transition(self, event: Event) -> None:
        s = self.state
        if s is State.BOOTING and event is Event.BOOTED:
            self.state = State.RUNNING                          # BOOTING -> RUNNING
            # READY=1 (and the URLs) follow in _check_progress once every app accepts
        elif s is State.BOOTING and event is Event.BOOT_FAILED:
            self.exit_code = 1
            self._stop_components(graceful=False)
            if self._all_stopped():
                self.state = State.EXITED                       # BOOTING -> EXITED
            else:
                self.state = State.STOPPING_FAST                # BOOTING -> STOPPING_FAST (children started)
                self._deadline_timer = self.loop.call_later(FAST_STOP_DEADLINE,
                                                            lambda: self._transition(Event.DEADLINE))
        elif s is State.RUNNING and event is Event.RELOAD:
            if self._reload():
                self.state = State.RELOADING                    # RUNNING -> RELOADING
            # else RUNNING -> RUNNING: the old configuration keeps serving
        elif s is State.RELOADING and event is Event.RELOAD:
            self._reload_pending = True                         # applied when this one finishes
        elif s is State.RELOADING and event is Event.RELOAD_DONE:
            self.state = State.RUNNING                          # RELOADING -> RUNNING
            self.log("notice", "reload finished")
            if self._ready_sent:
                self._notify("READY=1")
            if self._reload_pending:
                self._reload_pending = False
                self._transition(Event.RELOAD)
        elif s in (State.RUNNING, State.RELOADING) and event is Event.QUIT:
            self.state = State.STOPPING_GRACEFUL                # RUNNING|RELOADING -> STOPPING_GRACEFUL
            self._notify("STOPPING=1")
            self.log("notice", "gracefully shutting down")
            self._stop_components(graceful=True)
        elif s in (State.RUNNING, State.RELOADING, State.STOPPING_GRACEFUL, State.BOOTING) \
                and event is Event.TERM:
            self.state = State.STOPPING_FAST                    # * -> STOPPING_FAST
            self._notify("STOPPING=1")
            self.log("notice", "exiting")
            self._stop_components(graceful=False)
            self._deadline_timer = self.loop.call_later(FAST_STOP_DEADLINE,
                                                        lambda: self._transition(Event.DEADLINE))
        elif s in (State.STOPPING_GRACEFUL, State.STOPPING_FAST) and event is Event.ALL_STOPPED:
            self.state = State.EXITED                           # STOPPING_* -> EXITED
        elif s is State.STOPPING_FAST and event is Event.DEADLINE:
            for c in self._all_components():
                kill = getattr(c, "kill_all", None)
                if kill:
                    kill()
            left = self._kill_remaining_children()
            if left:
                self.log("alert", f"processes still running at the stop deadline were sent SIGKILL: {left}")
            self.state = State.EXITED                           # STOPPING_FAST -> EXITED
        elif s in (State.STOPPING_GRACEFUL, State.STOPPING_FAST, State.EXITED):
            if event in (Event.RELOAD, Event.QUIT):
                self.log("notice", f"{event.value} ignored while {s.value}")
            # other events while stopping change nothing
        elif event in (Event.RELOAD_DONE, Event.ALL_STOPPED, Event.DEADLINE):
            pass   # stale notifications from an earlier state
        else:
            raise AssertionError(f"no transition from {s} on {event}")

    # ---- boot ---------------------------------------------------------------------------
    def run(self) -> int:
        proctitle.set_title(proctitle.master(self.argv))
        self._install_signals()
        try:
            self._boot()
        except Exception as e:   # startup errors are printed nginx-style, never as a traceback
            for line in _messages(e):
                self.log("emerg", line)
                if self.log.path is not None:   # the operator at the terminal sees it too, as with nginx
                    print(f"pyfront: [emerg] {line}", file=sys.stderr, flush=True)
            self.log("debug", traceback.format_exc().rstrip())
            self._transition(Event.BOOT_FAILED)
        while self.state is not State.EXITED:
            try:
                self.loop.run_once(1.0)
                self._drain_signals()
                self._reap()
                self._check_progress()
            except Exception:   # a bug in one callback must not take the master down
                self.log("alert", "internal error in the master loop:\n" + traceback.format_exc().rstrip())
        self._cleanup()
        return self.exit_code

    def _boot(self) -> None:
        try:
            _libc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)   # orphaned grandchildren come to us
        except OSError:
            pass
        other = running_master(self.stack.pid_path)
        if other:
            raise PidFileError(f'another pyfront master (pid {other}) is running with pid file '
                               f'"{self.stack.pid_path}" (stop it, or use `pyfront signal reload`)')
        for name in self._ordered(self.stack.layers):
            self.components[name] = self.factories[name](self.stack.layers[name], self)
        # Open every socket first: a busy port fails the boot before any child exists.
        for c in self.components.values():
            opener = getattr(c, "open", None)
            if opener:
                opener()
        write_pid(self.stack.pid_path, self.pid)
        self._pid_written = True
        for c in self.components.values():
            c.start(self.loop)
        self._transition(Event.BOOTED)
        self._check_ready()

    # ---- signals ------------------------------------------------------------------------
    def _install_signals(self) -> None:
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        self.loop.add_reader(self._wake_r, self._on_wake)
        for sig in SIGNALS:
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        # house rule 2: record only; the loop acts. CHLD is not queued: the wake-up fd already
        # woke the loop and _reap runs every turn, and a burst of exits (a group of programs
        # stopping) must not push an operator's HUP/QUIT out of the bounded queue.
        if signum != signal.SIGCHLD:
            self._signals.append(signum)

    def _on_wake(self) -> None:
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def _drain_signals(self) -> None:
        while self._signals:
            sig = self._signals.popleft()
            if isinstance(sig, Event):      # a request from the control API
                self.log("notice", f"{sig.value} requested through the control API")
                self._transition(sig)
                continue
            name = signal.Signals(sig).name
            if sig == signal.SIGCHLD:
                continue   # _reap runs every iteration
            self.log("notice", f"signal {sig} ({name}) received")
            if sig == signal.SIGHUP:
                self.log("notice", "reconfiguring")
                self._transition(Event.RELOAD)
            elif sig == signal.SIGQUIT:
                self._transition(Event.QUIT)
            elif sig in (signal.SIGTERM, signal.SIGINT):
                self._transition(Event.TERM)
            elif sig == signal.SIGUSR1:
                self.reopen_logs()
            else:
                self.log("notice", f"signal {name} is not used by pyfront; ignored")

    # ---- children -----------------------------------------------------------------------
    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            except InterruptedError:
                continue
            if pid == 0:
                return
            for c in self._all_components():
                if c.child_exited(pid, status):
                    break

    def emit(self, level: str, message: str) -> None:
        """The log callable every component gets (stable across error_log changes)."""
        self.log(level, message)

    def _ordered(self, layers) -> list[str]:
        order = list(self.factories)
        return sorted(layers, key=lambda n: order.index(n) if n in order else len(order))

    def _kill_remaining_children(self) -> list[int]:
        """SIGKILL every child still alive (with its process group when it leads one: a
        program's own children), then reap for a moment. The 5 s promise of a fast stop
        holds even for a program that ignores its stop signal."""
        try:
            with open(f"/proc/{self.pid}/task/{self.pid}/children") as f:
                pids = [int(x) for x in f.read().split()]
        except OSError:
            return []
        for pid in pids:
            try:
                if os.getpgid(pid) == pid:
                    os.killpg(pid, signal.SIGKILL)
                else:
                    os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = self.loop.time() + 0.3
        while self.loop.time() < deadline:
            self._reap()
            try:
                with open(f"/proc/{self.pid}/task/{self.pid}/children") as f:
                    if not f.read().split():
                        break
            except OSError:
                break
            time.sleep(0.01)
        return pids

    def _all_components(self) -> list:
        return list(self.components.values()) + self.retiring

    def _check_ready(self) -> None:
        """Ready = every listener open (done at boot) and every app accepting."""
        if self._ready_sent or self.state is not State.RUNNING:
            return
        if any(getattr(c, "starting", lambda: False)() for c in self.components.values()):
            return
        self._ready_sent = True
        self._notify("READY=1")
        if self.on_ready:
            self.on_ready(self)

    def _check_progress(self) -> None:
        self._check_ready()
        self.retiring = [c for c in self.retiring if not c.stopped()]
        for c in self._all_components():
            why = getattr(c, "fatal", None)
            if why and self.state in (State.BOOTING, State.RUNNING, State.RELOADING):
                self.log("emerg", why)
                self.exit_code = 1
                self._transition(Event.TERM)
        if self.state is State.RELOADING and not any(
                getattr(c, "reloading", lambda: False)() for c in self.components.values()):
            self._transition(Event.RELOAD_DONE)
        if self.state in (State.STOPPING_GRACEFUL, State.STOPPING_FAST):
            rest = [c for c in self._all_components() if getattr(c, "name", "") not in STOP_LAST]
            if all(c.stopped() for c in rest):
                for c in self._all_components():
                    if getattr(c, "name", "") in STOP_LAST and not c.stopped():
                        c.stop(self.state is State.STOPPING_GRACEFUL)
            if self._all_stopped():
                self._transition(Event.ALL_STOPPED)

    def _all_stopped(self) -> bool:
        return all(c.stopped() for c in self._all_components())

    def _stop_components(self, graceful: bool) -> None:
        for c in self._all_components():
            if getattr(c, "loop", True) is None:
                continue   # never started (boot failed before it)
            if getattr(c, "name", "") in STOP_LAST and self.state is not State.EXITED and \
                    not all(o.stopped() for o in self._all_components() if o is not c):
                continue   # stopped by _check_progress once the others are gone
            c.stop(graceful)

    # ---- reload -------------------------------------------------------------------------
    def _reload(self) -> bool:
        """Build + validate + prepare everything; swap only if all of it worked."""
        self._notify("RELOADING=1")
        try:
            new = self.loader(self.stack.path)
        except ConfigError as e:
            for d in e.diagnostics:
                self.log(d.level if d.is_error else "warn", _diag_text(d))
            self.log("emerg", "reload failed: the new configuration is invalid; "
                              "keeping the old configuration")
            self._notify("READY=1")
            return False
        except Exception:
            self.log("alert", "reload failed while reading the configuration; keeping the old one:\n"
                     + traceback.format_exc().rstrip())
            self._notify("READY=1")
            return False
        for d in new.diagnostics:
            self.log("warn", _diag_text(d))
        # Prepare: everything that can fail (binding new addresses, opening a new error log,
        # writing a moved pid file) happens before any running layer is touched.
        prepared, fresh = [], {}
        new_log = None
        pid_moved = new.pid_path != self.stack.pid_path
        self._fresh = fresh
        try:
            for name in self._ordered(new.layers):
                cfg = new.layers[name]
                c = self.components.get(name)
                if c is None:
                    c = fresh[name] = self.factories[name](cfg, self)
                    opener = getattr(c, "open", None)
                    if opener:
                        opener()
                    continue
                prep = getattr(c, "prepare", None)
                if prep:
                    prep(cfg)
                    prepared.append(c)
            if (new.error_log, new.error_log_level) != (self.log.path, self.log.level):
                new_log = ErrorLog(new.error_log, new.error_log_level)
            if pid_moved:
                write_pid(new.pid_path, self.pid)
        except Exception as e:
            for c in prepared:
                getattr(c, "abort", lambda: None)()
            for c in fresh.values():
                getattr(c, "close", lambda: None)()
            if new_log is not None:
                new_log.close()
            for line in _messages(e):
                self.log("emerg", line)
            self.log("emerg", "reload failed; keeping the old configuration")
            self._notify("READY=1")
            return False
        finally:
            self._fresh = {}
        # Commit: every layer gets its part; new layers start, removed ones retire.
        for name in self._ordered(new.layers):
            cfg = new.layers[name]
            try:
                if name in fresh:
                    self.components[name] = fresh[name]
                    fresh[name].start(self.loop)
                else:
                    self.components[name].reload(cfg)
            except Exception:
                self.log("alert", f"reloading the {name} layer failed:\n" + traceback.format_exc().rstrip())
        for name in [n for n in self.components if n not in new.layers]:
            c = self.components.pop(name)
            c.stop(True)
            self.retiring.append(c)
        if pid_moved:
            remove_pid(self.stack.pid_path, self.pid)
        self.stack = new
        if new_log is not None:
            old, self.log = self.log, new_log
            old.close()
        return True

    # ---- control interface (used by the control server, issue 5) -------------------------
    def reload(self) -> None:
        """Same as SIGHUP; acted on when the current loop callback has returned."""
        self._signals.append(Event.RELOAD)

    def shutdown(self, graceful: bool = True) -> None:
        self._signals.append(Event.QUIT if graceful else Event.TERM)

    def reopen_logs(self) -> None:
        self.log.reopen()
        self.log("notice", "reopening logs")
        for c in self._all_components():
            c.reopen_logs()

    def reread(self) -> Stack:
        """Load and validate the configuration on disk without applying it (ConfigError)."""
        return self.loader(self.stack.path)

    def status(self) -> list[ProcessStatus]:
        rows: list[ProcessStatus] = []
        for c in self._all_components():
            rows.extend(c.status())
        return rows

    # pyfront.control.master_api.MasterControl (the supervision layer's view of the master)
    def worker_status(self) -> list[ProcessStatus]:
        """Rows of the processes the master runs itself (front and app workers, not programs)."""
        rows: list[ProcessStatus] = []
        for c in self._all_components():
            if getattr(c, "name", "") not in ("programs", "control"):
                rows.extend(c.status())
        return rows

    def front_connections(self) -> dict:
        """stub_status numbers of the front ({} when there is no front)."""
        for c in self._all_components():
            if getattr(c, "name", "") == "front" and hasattr(c, "connections"):
                return c.connections()
        return {}

    def load_supervisor_config(self):
        return self.reread().layers.get("programs")

    def request_reload(self) -> None:
        self.reload()

    def request_shutdown(self) -> None:
        self.shutdown(graceful=True)

    def main_log_path(self) -> str | None:
        return self.log.path

    def state_name(self) -> str:
        """Supervisor's getState() name. A pyfront reload is graceful (programs and workers keep
        running, the API keeps answering), so it stays "RUNNING" — supervisord's RESTARTING
        means everything is being stopped, which a pyfront reload never does."""
        if self.state in (State.STOPPING_GRACEFUL, State.STOPPING_FAST, State.EXITED):
            return "SHUTDOWN"
        return "RUNNING"

    def identification(self) -> str:
        sup = self.stack.layers.get("programs")
        return getattr(getattr(sup, "supervisord", None), "identifier", None) or "supervisor"

    # ---- systemd hook (issue 6 implements the rest) --------------------------------------
    def _notify(self, message: str) -> None:
        addr = os.environ.get("NOTIFY_SOCKET")
        if not addr:
            return
        if addr.startswith("@"):
            addr = "\0" + addr[1:]
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.sendto(message.encode(), addr)
        except OSError as e:
            self.log("alert", f"sd_notify({message}) failed ({e.errno}: {e.strerror})")

    # ---- exit ---------------------------------------------------------------------------
    def _cleanup(self) -> None:
        for c in self._all_components():
            closer = getattr(c, "close", None)     # optional: release sockets at exit
            if closer is not None:
                try:
                    closer()
                except Exception as e:
                    self.log("alert", f"closing {getattr(c, 'name', c)} failed: {e}")
        if self._pid_written:
            remove_pid(self.stack.pid_path, self.pid)
        self.log("notice", "exit")
        signal.set_wakeup_fd(-1)
        for sig in SIGNALS:
            signal.signal(sig, signal.SIG_DFL)


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _diag_text(d) -> str:
    return d.format().split("] ", 1)[1]


def _messages(e: BaseException) -> list[str]:
    if isinstance(e, ConfigError):
        return [_diag_text(d) for d in e.diagnostics]
    if isinstance(e, OSError) and e.errno is not None and not isinstance(e, (ListenError, PidFileError)):
        fn = f' "{e.filename}"' if e.filename else ""
        return [f"{fn.strip() or 'system call'} failed ({e.errno}: {errno.errorcode.get(e.errno, '?')}: {e.strerror})"]
    return [str(e)]


class MasterView:
    """The master as the supervision layer and control server see it
    (pyfront.control.master_api.MasterControl); every call runs on the master thread."""

    def __init__(self, arbiter: Arbiter) -> None:
        self._a = arbiter

    def worker_status(self) -> list[ProcessStatus]:
        return self._a.worker_status()

    def front_connections(self) -> dict:
        return self._a.front_connections()

    def load_supervisor_config(self):
        return self._a.load_supervisor_config()

    def request_reload(self) -> None:
        self._a.request_reload()

    def request_shutdown(self) -> None:
        self._a.request_shutdown()

    def reopen_logs(self) -> None:
        self._a.reopen_logs()

    def main_log_path(self) -> str | None:
        return self._a.main_log_path()

    def state(self) -> str:
        return self._a.state_name()

    def identification(self) -> str:
        return self._a.identification()
