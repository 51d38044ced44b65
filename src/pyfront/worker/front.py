"""A front worker process: a Python shell around the C loop (src/c/worker.c).

Python does setup (title, affinity, rlimits, signals, log files), then calls
`pf_worker_run`, which returns only when a signal arrived (the `signal.set_wakeup_fd`
pipe is in the C loop's epoll set), when a graceful drain finished, or once a second
as a tick. No Python runs per request.

Signals (as nginx's workers): QUIT graceful (stop accepting; each connection's next
response carries `Connection: close`; idle keep-alive connections close at their
keepalive timeout or at the drain deadline; in-flight transfers finish), TERM/INT fast
exit, USR1 reopen logs, HUP ignored (reload is the master's job). The worker exits
when its master goes away (PR_SET_PDEATHSIG + a parent-pid check each tick).
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys

from pyfront._native import ffi, lib
from pyfront.worker.spec import FrontWorkerSpec

LEVELS = {"emerg": 0, "alert": 1, "crit": 2, "error": 3, "warn": 4, "notice": 5, "info": 6, "debug": 7}
RUN_WAKEUP, RUN_DRAINED, RUN_TICK = 1, 2, 3


def shm_size(nworkers: int) -> int:
    """Bytes of the shared block the master maps before forking `nworkers` workers."""
    return int(lib.pf_shm_size(max(1, nworkers)))


def release_dead_worker_lock(shm, pid: int) -> bool:
    """For the master, when it reaps front worker `pid`: free the accept mutex if that
    worker died holding it (nginx's ngx_shmtx_force_unlock in ngx_process_get_status).
    Contenders also free a lock whose owner is gone, but a reaped pid can be reused, so
    the master's release is the reliable one. True if the lock was held by `pid`."""
    return bool(lib.pf_shmtx_force_unlock(ffi.from_buffer(shm), pid))


def read_worker_slot(shm, index: int) -> dict:
    """The counters a worker publishes in the shared block (heartbeat_ms is CLOCK_MONOTONIC)."""
    if pf_shm_bytes(index + 1) > len(shm):
        raise IndexError(index)
    slot = ffi.new("pf_shm_slot *")
    lib.pf_shm_read_slot(ffi.from_buffer(shm), index, slot)
    return {k: getattr(slot, k) for k in ("heartbeat_ms", "accepted", "requests", "active", "idle",
                                          "pid", "generation", "reading", "writing")}


def pf_shm_bytes(nworkers: int) -> int:
    return int(lib.pf_shm_size(nworkers))


class WorkerError(RuntimeError):
    pass


class FrontWorker:
    """Owns one pf_worker (C). Usable in-process by tests; run_worker wraps it."""

    def __init__(self, blob: bytes, *, index: int = 0, max_connections: int = 512,
                 accept_mutex: bool = False, accept_mutex_delay_ms: int = 500,
                 multi_accept: bool = False, wakeup_fd: int = -1, error_log_fd: int = -1,
                 error_log_level: str = "error", shm=None, nworkers: int = 1,
                 generation: int = 0) -> None:
        conf = ffi.new("pf_worker_conf *")
        conf.index = index
        conf.max_connections = max_connections
        conf.accept_mutex = int(accept_mutex)
        conf.accept_mutex_delay_ms = accept_mutex_delay_ms
        conf.multi_accept = int(multi_accept)
        conf.wakeup_fd = wakeup_fd
        conf.error_log_fd = error_log_fd
        conf.error_log_level = LEVELS.get(error_log_level, 3)
        self._shm_buf = None
        if shm is not None:
            self._shm_buf = ffi.from_buffer(shm)
            conf.shm = self._shm_buf
            conf.shm_len = len(shm)
        conf.nworkers = nworkers
        conf.generation = generation
        err = ffi.new("char[512]")
        w = lib.pf_worker_new(conf, blob, len(blob), err, 512)
        if w == ffi.NULL:
            raise WorkerError(ffi.string(err).decode(errors="replace"))
        self._w = w

    def add_listener(self, fd: int, address: str, reuseport: bool = False) -> None:
        if lib.pf_worker_add_listener(self._w, fd, address.encode(), int(reuseport)) < 0:
            raise WorkerError(f"cannot add listener {address} (fd {fd})")

    def run(self, max_ms: int = 1000) -> int:
        return lib.pf_worker_run(self._w, max_ms)

    def drain(self, deadline_ms: int) -> None:
        lib.pf_worker_drain(self._w, deadline_ms)

    def reopen_logs(self) -> bool:
        return lib.pf_worker_reopen_logs(self._w) == 0

    def stats(self) -> dict:
        s = ffi.new("pf_worker_stats *")
        lib.pf_worker_get_stats(self._w, s)
        return {k: getattr(s, k) for k in ("accepted", "requests", "active", "idle",
                                           "buffers_total", "buffers_free")}

    def close(self) -> None:
        if self._w is not None:
            lib.pf_worker_free(self._w)
            self._w = None


def _set_pdeathsig() -> None:
    """Die with the master: keep the master's choice (SIGKILL) if it set one, else TERM."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        cur = ctypes.c_int(0)
        libc.prctl(2, ctypes.byref(cur), 0, 0, 0)        # PR_GET_PDEATHSIG
        if cur.value == 0:
            libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _title() -> None:
    try:
        import setproctitle
        setproctitle.setproctitle("pyfront: worker process")
    except ImportError:
        pass


def _open_error_log(spec: FrontWorkerSpec) -> int:
    if not spec.error_log or spec.error_log in ("stderr", "/dev/stderr"):
        return -1
    try:
        return os.open(spec.error_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as e:
        print(f"pyfront: [emerg] open() \"{spec.error_log}\" failed ({e.errno}: {e.strerror})", file=sys.stderr)
        return -1


def run_worker(spec: FrontWorkerSpec) -> None:
    """Entry point after fork. Never returns: exits 0 after a graceful stop, 1 on error."""
    code = 1
    try:
        code = _run(spec)
    except BaseException as e:                 # noqa: BLE001 - a worker must never unwind into the master's code
        print(f"pyfront: [alert] worker {spec.index} failed: {e!r}", file=sys.stderr)
    finally:
        try:
            sys.stderr.flush()
            sys.stdout.flush()
        finally:
            os._exit(code)


def _run(spec: FrontWorkerSpec) -> int:
    _set_pdeathsig()
    _title()
    cpus = tuple(spec.extra.get("cpus") or ()) or ((spec.cpu,) if spec.cpu is not None else ())
    if cpus:
        try:
            os.sched_setaffinity(0, set(cpus))
        except OSError as e:
            print(f"pyfront: [alert] sched_setaffinity({cpus}) failed ({e.errno}: {e.strerror})", file=sys.stderr)
    if spec.rlimit_nofile:
        import resource
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (spec.rlimit_nofile, spec.rlimit_nofile))
        except (OSError, ValueError) as e:
            print(f"pyfront: [alert] setrlimit(RLIMIT_NOFILE, {spec.rlimit_nofile}) failed ({e})", file=sys.stderr)

    flags = {"quit": False, "stop": False, "reopen": False}

    def on(name):
        def handler(signum, frame):
            flags[name] = True
        return handler

    rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wfd, warn_on_full_buffer=False)
    signal.signal(signal.SIGQUIT, on("quit"))
    signal.signal(signal.SIGTERM, on("stop"))
    signal.signal(signal.SIGINT, on("stop"))
    signal.signal(signal.SIGUSR1, on("reopen"))
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)      # sendfile() has no MSG_NOSIGNAL
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])      # the master may fork with signals blocked

    errfd = _open_error_log(spec)
    worker = FrontWorker(spec.route_blob, index=spec.index, max_connections=spec.worker_connections,
                         accept_mutex=spec.accept_mutex, accept_mutex_delay_ms=spec.accept_mutex_delay_ms,
                         multi_accept=spec.multi_accept, wakeup_fd=rfd, error_log_fd=errfd,
                         error_log_level=spec.error_log_level, shm=spec.shm,
                         nworkers=int(spec.extra.get("nworkers", spec.index + 1)), generation=spec.generation)
    for ls in spec.listeners:
        worker.add_listener(ls.fd, ls.address, ls.reuseport)
    try:
        while True:
            rc = worker.run(1000)
            if rc < 0:
                return 1
            if rc == RUN_WAKEUP:
                try:
                    while os.read(rfd, 512):
                        pass
                except BlockingIOError:
                    pass
            if flags["stop"]:
                return 0
            if flags["reopen"]:
                flags["reopen"] = False
                worker.reopen_logs()
                if errfd >= 0:
                    new = _open_error_log(spec)
                    if new >= 0:
                        os.dup2(new, errfd)
                        os.close(new)
            if flags["quit"]:
                flags["quit"] = False
                worker.drain(int(spec.shutdown_timeout_s * 1000))
            if rc == RUN_DRAINED:
                return 0
            if os.getppid() != spec.master_pid:
                worker.drain(0)
                flags["stop"] = True
    finally:
        worker.close()
