"""The app master: pre-forks workers, respawns them, reloads and stops them gracefully.

States (one transition point, `_set_state`):
    STARTING -> RUNNING        every worker of the first generation is accepting
    STARTING -> STOPPING       a worker could not load the app (need-app) or a signal
    RUNNING  -> RELOADING      SIGHUP / touch-reload: a new generation is being started
    RELOADING -> RUNNING       the new generation accepts; the old one was told to finish
    RUNNING|RELOADING -> STOPPING   SIGTERM/SIGQUIT (graceful, deadline reload-mercy) or SIGINT (fast)
    STOPPING -> (exit)         every worker has been reaped

Signals: HUP graceful reload (new workers accept before old ones retire, so a request
stream sees no error), TERM/QUIT graceful stop within reload-mercy then SIGKILL of each
worker's process group, INT fast stop, USR1 reopen the log file. Handlers only queue the
signal (design.md §5 rule 2); the loop acts on it.

Workers never outlive the master: PR_SET_PDEATHSIG(SIGKILL) plus EOF on a pipe whose
write end only the master holds (reference §3 #1, unbit/uwsgi#296).
"""
from __future__ import annotations

import errno
import os
import select
import signal
import socket
import stat
import sys
import time
from dataclasses import dataclass, field

from pyfront.app import scoreboard as sb
from pyfront.app.options import AppConfig, Listen
from pyfront.app.worker import EXIT_BOOT_ERROR, set_pdeathsig, set_title, worker_main

STARTING, RUNNING, RELOADING, STOPPING = "STARTING", "RUNNING", "RELOADING", "STOPPING"
_TRANSITIONS = {
    STARTING: {RUNNING, STOPPING},
    RUNNING: {RELOADING, STOPPING},
    RELOADING: {RUNNING, STOPPING},
    STOPPING: set(),
}
TICK = 0.1


@dataclass
class W:
    wid: int
    slot: int
    pid: int
    generation: int
    born: float
    state: str = "booting"            # booting -> ready -> (retiring) -> stopping
    kill_at: float | None = None      # SIGKILL deadline (harakiri or mercy)
    replaces: "W | None" = None       # the worker this one replaces (max-requests etc.)
    harakiri: bool = False
    extra: dict = field(default_factory=dict)


def log(msg: str) -> None:
    try:
        os.write(2, (msg + "\n").encode("utf-8", "replace"))
    except OSError:
        pass


def bind_listen(ls: Listen, cfg: AppConfig) -> socket.socket:
    """Bind one address from the config (standalone mode; under serve the master does it)."""
    s = socket.socket(ls.family, socket.SOCK_STREAM)
    try:
        if ls.family == socket.AF_UNIX:
            path = ls.target
            if not path.startswith("\0") and os.path.exists(path):
                if not stat.S_ISSOCK(os.stat(path).st_mode):
                    raise OSError(errno.EEXIST, f"{path} exists and is not a socket")
                probe = socket.socket(socket.AF_UNIX)
                try:
                    probe.connect(path)
                    raise OSError(errno.EADDRINUSE, f"{path} is in use by another process")
                except (ConnectionRefusedError, FileNotFoundError):
                    os.unlink(path)          # stale socket from a dead server
                finally:
                    probe.close()
            s.bind(path)
            if not path.startswith("\0"):
                mode = cfg.chmod_socket
                if mode is not None:
                    os.chmod(path, mode)
        else:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(ls.target)
        s.listen(cfg.backlog)
    except OSError as exc:
        s.close()
        where = ls.target if isinstance(ls.target, str) else f"{ls.target[0]}:{ls.target[1]}"
        raise OSError(exc.errno, f"bind() to {where.lstrip(chr(0))} failed ({exc.errno}: "
                                 f"{os.strerror(exc.errno) if exc.errno else exc.strerror})"
                                 f" for \"{ls.address}\" in {cfg.file}") from None
    except BaseException:
        s.close()
        raise
    return s


class AppMaster:
    def __init__(self, cfg: AppConfig, sockets: list[socket.socket] | None = None, ready_fd: int | None = None,
                 board: sb.Scoreboard | None = None):
        self.cfg = cfg
        self.own_sockets = sockets is None
        self.given_sockets = sockets
        self.ready_fd = ready_fd
        self.state = STARTING
        self.generation = 0
        self.workers: dict[int, W] = {}
        self.signals: list[int] = []
        self.stop_deadline = None
        self.exit_code = 0
        # board: made by the pyfront master before the fork (shared, so its status shows
        # each worker's state, requests and current request); standalone: made here
        self.board = board or sb.Scoreboard(sb.slots_for(cfg.processes), cfg.threads)
        self.free_slots = list(range(self.board.nslots))
        self.replacing: W | None = None      # the worker being replaced, until it has exited
        self.replace_after = 0.0
        self.boot_failures = 0
        self.touch_mtimes = {}
        self.respawn_after: dict[int, float] = {}   # wid -> earliest respawn time
        self.listeners: list[tuple[socket.socket, Listen]] = []

    # ------------------------------------------------------------------ state
    def _set_state(self, new: str) -> None:
        assert new in _TRANSITIONS[self.state], f"{self.state} -> {new}"
        self.state = new

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        cfg = self.cfg
        set_title(f"{cfg.procname_prefix}pyfront: app master {cfg.name}")
        if cfg.logto:
            self.open_log()
        if cfg.umask is not None:
            os.umask(cfg.umask)
        if self.own_sockets:
            socks = [bind_listen(ls, cfg) for ls in cfg.listen]
        else:
            socks = list(self.given_sockets)
            set_pdeathsig(signal.SIGTERM)   # under `pyfront serve`: stop with our parent
        for s, ls in zip(socks, cfg.listen):
            s.setblocking(False)
            self.listeners.append((s, ls))
            if self.own_sockets and cfg.chown_socket and ls.family == socket.AF_UNIX and not ls.target.startswith("\0"):
                uid, gid = _ids(*(cfg.chown_socket.split(":", 1) + [None])[:2])
                os.chown(ls.target, uid, gid)
        if cfg.pidfile:
            tmp = cfg.pidfile + ".tmp"
            with open(tmp, "w") as f:
                f.write(f"{os.getpid()}\n")
            os.replace(tmp, cfg.pidfile)
        self.drop_privileges()
        from pyfront.app.loader import prepare
        prepare(cfg)
        self.death_r, self.death_w = os.pipe()
        self.sig_r, self.sig_w = os.pipe()
        os.set_blocking(self.sig_w, False)
        os.set_blocking(self.sig_r, False)
        signal.set_wakeup_fd(self.sig_w, warn_on_full_buffer=False)
        for s in (signal.SIGHUP, signal.SIGTERM, signal.SIGQUIT, signal.SIGINT, signal.SIGUSR1, signal.SIGCHLD):
            signal.signal(s, self._on_signal)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        for t in cfg.touch_reload:
            self.touch_mtimes[t] = _mtime(t)
        addrs = ", ".join(f"{ls.address} ({ls.protocol})" for _, ls in self.listeners)
        log(f"*** pyfront app {cfg.name}: master pid {os.getpid()}, {cfg.processes} processes x "
            f"{cfg.threads} threads, listening on {addrs} ***")

    def drop_privileges(self) -> None:
        """uid/gid after the sockets are bound (so a root master can bind :80 and still run as www-data)."""
        cfg = self.cfg
        if not (cfg.uid or cfg.gid):
            return
        uid, gid = _ids(cfg.uid, cfg.gid)
        if os.geteuid() != 0:
            if (cfg.uid and uid != os.geteuid()) or (cfg.gid and gid != os.getegid()):
                raise OSError(errno.EPERM, f"uid/gid = {cfg.uid}/{cfg.gid} needs root (running as uid {os.geteuid()})")
            return
        if gid != -1:
            os.setgroups([])
            os.setgid(gid)
        if uid != -1:
            os.setuid(uid)
        log(f"running as uid {os.getuid()}, gid {os.getgid()}")

    def open_log(self) -> None:
        fd = os.open(self.cfg.logto, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)

    def _on_signal(self, signum, frame) -> None:
        self.signals.append(signum)

    # ------------------------------------------------------------------ workers
    def spawn(self, wid: int, replaces: W | None = None) -> W | None:
        slot = self.free_slots.pop(0)
        self.board.reset(slot, sb.BOOTING, self.generation)
        close_fds = [self.death_w, self.sig_r, self.sig_w]
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            try:
                os.setpgid(0, 0)      # its own group: the final SIGKILL also takes the app's children
            except OSError:
                pass
            signal.set_wakeup_fd(-1)
            for s in (signal.SIGTERM, signal.SIGQUIT, signal.SIGINT, signal.SIGCHLD):
                signal.signal(s, signal.SIG_DFL)
            for s in (signal.SIGHUP, signal.SIGUSR1):     # a log reopen right after fork must not kill it
                signal.signal(s, signal.SIG_IGN)
            worker_main(self.cfg, None, wid, slot, self.board, self.listeners, self.master_pid,
                        self.death_r, self.generation, close_fds)
            os._exit(1)   # not reached
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass          # the child did it first (or already exited: reaped below)
        w = W(wid, slot, pid, self.generation, time.monotonic(), replaces=replaces)
        self.workers[pid] = w
        self.board.set_pid(slot, pid)
        log(f"spawned pyfront worker {wid} (pid: {pid}, cores: {self.cfg.threads})")
        return w

    def kill(self, w: W, sig: int) -> None:
        try:
            if sig == signal.SIGKILL:
                os.killpg(w.pid, sig)
            else:
                os.kill(w.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            try:
                os.kill(w.pid, sig)
            except ProcessLookupError:
                pass

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            w = self.workers.pop(pid, None)
            if w is None:
                continue
            self.board.set_state(w.slot, sb.FREE)
            self.free_slots.append(w.slot)
            self.worker_exited(w, status)

    def worker_exited(self, w: W, status: int) -> None:
        code = os.waitstatus_to_exitcode(status)
        how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        if self.replacing is w:
            self.replacing = None          # the retired worker is gone: the next one may be replaced
        if w.replaces is not None:
            # a replacement died before accepting: the old worker keeps serving; retry later
            self.replacing = None
            self.replace_after = time.monotonic() + 1.0
            log(f"replacement worker {w.wid} (pid: {w.pid}) died before accepting ({code}); retrying in 1s")
            return
        if w.state in ("stopping", "retired"):
            log(f"worker {w.wid} (pid: {w.pid}) finished ({how})")
            return
        if code == EXIT_BOOT_ERROR:
            self.boot_failures += 1
            if self.state == STARTING and self.cfg.need_app:
                log(f"need-app: worker {w.wid} could not load the app (traceback above); stopping")
                self.exit_code = 1
                self.begin_stop(fast=True)
                return
            if self.state == RELOADING and w.generation == self.generation:
                log("reload failed: the new code does not load (traceback above); the running workers keep serving")
                for o in list(self.workers.values()):
                    if o.generation == self.generation:
                        o.state = "stopping"
                        self.kill(o, signal.SIGKILL)
                self.generation -= 1
                self._set_state(RUNNING)
                return
        if self.state == STOPPING:
            return
        if w.harakiri:
            log(f"worker {w.wid} (pid: {w.pid}) killed by harakiri; respawning")
        else:
            log(f"DAMN ! worker {w.wid} (pid: {w.pid}) died, {how} :( trying respawn ...")
        if w.generation != self.generation:
            return   # an old-generation worker during a reload: its replacement is coming
        delay = 1.0 if (time.monotonic() - w.born < 1.0) else 0.0   # do not respawn in a tight loop
        self.respawn_after[w.wid] = time.monotonic() + delay

    def respawn_due(self) -> None:
        now = time.monotonic()
        for wid, when in list(self.respawn_after.items()):
            if now >= when:
                del self.respawn_after[wid]
                if not any(o.wid == wid and o.generation == self.generation and o.state != "stopping"
                           for o in self.workers.values()):
                    self.spawn(wid)

    def poll_ready(self) -> None:
        for w in self.workers.values():
            if w.state == "booting" and self.board.head(w.slot)[0] == sb.READY:
                w.state = "ready"
                if w.replaces is not None and w.replaces.pid in self.workers:
                    old = w.replaces
                    old.state = "retired"
                    reason = sb.RETIRE_REASONS.get(self.board.head(old.slot)[3], "replaced")
                    log(f"worker {old.wid} (pid: {old.pid}) {reason}: replacement pid {w.pid} is accepting; "
                        f"retiring it gracefully")
                    self.kill(old, signal.SIGTERM)
                    old.kill_at = time.monotonic() + self.cfg.worker_reload_mercy
                    w.replaces = None

    def gen_ready(self, gen: int) -> bool:
        ws = [w for w in self.workers.values() if w.generation == gen and w.state not in ("stopping", "retired")]
        return len(ws) >= self.cfg.processes and all(w.state == "ready" for w in ws)

    def check_retire(self) -> None:
        if self.state != RUNNING or self.replacing is not None or time.monotonic() < self.replace_after:
            return
        for w in list(self.workers.values()):
            if w.state == "ready" and w.generation == self.generation and self.board.head(w.slot)[3]:
                # One at a time, the new one first: the pool never drops below `processes`.
                self.replacing = w
                self.spawn(w.wid, replaces=w)
                return

    def check_harakiri(self) -> None:
        h = self.cfg.harakiri
        now = time.monotonic()
        for w in list(self.workers.values()):
            if w.kill_at is not None and now >= w.kill_at:
                w.kill_at = None
                self.kill(w, signal.SIGKILL)
                continue
            if not h or w.harakiri:
                continue
            for core in range(self.cfg.threads):
                start, uri = self.board.core(w.slot, core)
                if start and now - start > h:
                    w.harakiri = True
                    log(f"*** HARAKIRI ON WORKER {w.wid} (pid: {w.pid}, try: 1) ***")
                    log(f"HARAKIRI: --- pyfront worker {w.wid} core {core} (pid: {w.pid}) WAS managing "
                        f"request {uri} since {now - start:.1f}s (harakiri = {h}) --- its Python stack follows:")
                    self.kill(w, signal.SIGUSR2)      # faulthandler in the worker dumps every thread
                    w.kill_at = now + 0.5
                    break

    def check_touch(self) -> None:
        for path, old in self.touch_mtimes.items():
            m = _mtime(path)
            if m != old:
                self.touch_mtimes[path] = m
                log(f"*** {path} has been touched... graceful reload ***")
                self.begin_reload()
                return

    # ------------------------------------------------------------------ transitions
    def begin_reload(self) -> None:
        if self.state != RUNNING:
            return
        self._set_state(RELOADING)
        self.generation += 1
        log(f"...gracefully reloading: starting generation {self.generation}...")
        self.respawn_after.clear()
        for wid in range(1, self.cfg.processes + 1):
            self.spawn(wid)

    def finish_reload(self) -> None:
        if self.state == RELOADING and self.gen_ready(self.generation):
            for w in self.workers.values():
                if w.generation != self.generation and w.state not in ("stopping", "retired"):
                    w.state = "stopping"
                    self.kill(w, signal.SIGTERM)
                    w.kill_at = time.monotonic() + self.cfg.worker_reload_mercy
            log(f"generation {self.generation} is accepting; old workers finish their requests and exit")
            self._set_state(RUNNING)

    def begin_stop(self, fast: bool) -> None:
        if self.state == STOPPING:
            if fast:
                for w in self.workers.values():
                    self.kill(w, signal.SIGKILL)
            return
        self._set_state(STOPPING)
        sig = signal.SIGINT if fast else signal.SIGTERM
        mercy = 1.0 if fast else max(1, self.cfg.reload_mercy)
        log("SIGINT received...killing workers..." if fast else "...gracefully stopping workers...")
        self.stop_deadline = time.monotonic() + mercy
        for w in self.workers.values():
            w.state = "stopping"
            self.kill(w, sig)

    # ------------------------------------------------------------------ loop
    def handle_signals(self) -> None:
        while self.signals:
            s = self.signals.pop(0)
            if s == signal.SIGHUP:
                self.begin_reload()
            elif s in (signal.SIGTERM, signal.SIGQUIT):
                self.begin_stop(fast=False)
            elif s == signal.SIGINT:
                self.begin_stop(fast=True)
            elif s == signal.SIGUSR1 and self.cfg.logto:
                self.open_log()
                for w in list(self.workers.values()):     # they write their request lines there too
                    self.kill(w, signal.SIGUSR1)

    def run(self) -> int:
        self.master_pid = os.getpid()
        self.setup()
        for wid in range(1, self.cfg.processes + 1):
            self.spawn(wid)
        while True:
            try:
                select.select([self.sig_r], [], [], TICK)
            except InterruptedError:
                pass
            try:
                while os.read(self.sig_r, 512):
                    pass
            except (BlockingIOError, InterruptedError):
                pass
            self.reap()
            self.handle_signals()
            if self.state == STOPPING:
                if not self.workers:
                    break
                if time.monotonic() > self.stop_deadline:
                    log("graceful stop deadline passed: SIGKILL to the remaining workers' process groups")
                    for w in list(self.workers.values()):
                        self.kill(w, signal.SIGKILL)
                    self.stop_deadline = time.monotonic() + 5
                continue
            self.poll_ready()
            if self.state == STARTING and self.gen_ready(0):
                self._set_state(RUNNING)
                log(f"pyfront app {self.cfg.name} ready: {self.cfg.processes} workers accepting")
                self.notify_ready()
            self.finish_reload()
            self.respawn_due()
            self.check_retire()
            self.check_harakiri()
            if self.touch_mtimes and self.state == RUNNING:
                self.check_touch()
        self.cleanup()
        log(f"goodbye from pyfront app {self.cfg.name} (exit code {self.exit_code})")
        return self.exit_code

    def notify_ready(self) -> None:
        if self.ready_fd is not None:
            try:
                os.write(self.ready_fd, b"1")
                os.close(self.ready_fd)
            except OSError as exc:
                log(f"write(ready_fd) failed ({exc.errno}: {exc.strerror})")
            self.ready_fd = None

    def cleanup(self) -> None:
        if self.cfg.vacuum and self.own_sockets:
            for s, ls in self.listeners:
                if ls.family == socket.AF_UNIX and not ls.target.startswith("\0"):
                    try:
                        os.unlink(ls.target)
                    except OSError:
                        pass
        if self.cfg.pidfile and self.cfg.vacuum:
            try:
                os.unlink(self.cfg.pidfile)
            except OSError:
                pass


def _ids(user: str | None, group: str | None) -> tuple[int, int]:
    """Names or numbers -> (uid, gid); -1 = leave unchanged."""
    import grp
    import pwd
    uid = gid = -1
    if user:
        uid = int(user) if user.isdigit() else pwd.getpwnam(user).pw_uid
    if group:
        gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    return uid, gid


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def run_app_master(config: AppConfig, sockets: list[socket.socket] | None = None, ready_fd: int | None = None,
                   board: sb.Scoreboard | None = None):
    """Run the app until stopped, then exit the process (the pyfront master forks us).

    sockets: already bound + listening, in the order of config.listen (None: bind them here).
    ready_fd: one byte is written there once every worker accepts.
    """
    code = 1
    try:
        code = AppMaster(config, sockets, ready_fd, board).run()
    except BaseException:
        import traceback
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:
            pass
        os._exit(code)


def open_sockets(config: AppConfig) -> list[socket.socket]:
    """Bind + listen every address of config.listen (in order), as run_app_master expects them.

    For `pyfront serve`: the pyfront master opens these once and keeps them across reloads,
    so a restarted app master never refuses a connection (reference §3 #19)."""
    out: list[socket.socket] = []
    try:
        for ls in config.listen:
            out.append(bind_listen(ls, config))
    except BaseException:
        for s in out:
            s.close()
        raise
    return out
