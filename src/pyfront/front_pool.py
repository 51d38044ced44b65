"""The front layer inside the master: listen sockets, shared memory, front workers.

Generations: every reload forks a new generation of `worker_processes` workers with the
new route blob (and a fresh shared-memory block, since slots are per worker index), keeps
the listen sockets of unchanged addresses, and only once the new generation has stayed up
for READY_GRACE asks the old one to drain (QUIT). A new worker that dies before that rolls
the reload back: the new generation is stopped and the old one keeps serving, so a route
blob the C core rejects never takes the site down.
"""
from __future__ import annotations

import ctypes
import mmap
import os
import signal
import time
from dataclasses import dataclass, field, replace
from typing import Callable

from pyfront import proctitle
from pyfront.component import Loop, ProcessStatus, Timer
from pyfront.listeners import ListenPlan, Listeners
from pyfront.worker.spec import FrontWorkerSpec, ListenSocket

READY_GRACE = 0.5          # s a new generation must stay up before the old one drains
FAST_KILL_AFTER = 3.0      # s after TERM before SIGKILL (the whole stop must fit in 5 s)
GRACEFUL_KILL_MARGIN = 5.0  # s past worker_shutdown_timeout before a draining worker is killed
QUICK_DEATH = 1.0          # s: a worker dying younger than this is respawned after RESPAWN_DELAY
RESPAWN_DELAY = 1.0

PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class FrontPlan:
    """What the master needs from the nginx config to run the front layer."""
    listens: tuple[ListenPlan, ...]
    route_blob: bytes
    worker_processes: int = 1
    cpus: tuple[tuple[int, ...], ...] | None = None   # worker i → CPU set cpus[i % len]; None = not pinned
    worker_connections: int = 512
    accept_mutex: bool = False
    accept_mutex_delay_ms: int = 500
    multi_accept: bool = False
    rlimit_nofile: int | None = None
    error_log: str | None = None
    error_log_level: str = "error"
    shutdown_timeout_s: float = 30.0
    extra: dict = field(default_factory=dict, compare=False)


def _default_entry(spec: FrontWorkerSpec) -> None:
    from pyfront.worker.front import run_worker
    run_worker(spec)


def _default_shm_size(n: int) -> int:
    from pyfront.worker.front import shm_size
    return shm_size(n)


@dataclass
class _Worker:
    pid: int
    index: int
    generation: int
    started: float        # monotonic
    started_wall: float
    draining: bool = False


@dataclass
class _Generation:
    number: int
    plan: FrontPlan
    shm: mmap.mmap | None
    ready: bool = False
    ready_timer: Timer | None = None


def _libc():
    return ctypes.CDLL(None, use_errno=True)


class FrontPool:
    """Component: the front workers. See component.Component for the protocol."""

    name = "front"

    def __init__(self, plan: FrontPlan, log: Callable[[str, str], None], *,
                 entry: Callable[[FrontWorkerSpec], None] | None = None,
                 shm_size: Callable[[int], int] | None = None) -> None:
        self.plan = plan
        self.log = log
        self.entry = entry or _default_entry
        self.shm_size = shm_size or _default_shm_size
        self.listeners = Listeners()
        self.workers: dict[int, _Worker] = {}
        self.generations: dict[int, _Generation] = {}
        self.current = 0
        self.loop: Loop | None = None
        self.stopping: str | None = None     # None, "graceful", "fast"
        self._kill_timer: Timer | None = None
        self._quick_deaths: dict[int, int] = {}
        self._pending: tuple[FrontPlan, list] | None = None
        self.master_pid = os.getpid()

    # ---- lifecycle --------------------------------------------------------------------
    def open(self) -> None:
        """Open the listeners (before the pid file is written, so bind errors exit 1)."""
        self.listeners.ensure(self.plan.listens, self.plan.worker_processes)

    def start(self, loop: Loop) -> None:
        self.loop = loop
        if not self.listeners.socks:
            self.open()
        gen = self._new_generation(self.plan)
        gen.ready = True
        for i in range(self.plan.worker_processes):
            self._spawn(gen, i)

    def _new_generation(self, plan: FrontPlan) -> _Generation:
        self.current += 1
        shm = mmap.mmap(-1, max(mmap.PAGESIZE, self.shm_size(plan.worker_processes)),
                        mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        gen = _Generation(self.current, plan, shm)
        self.generations[gen.number] = gen
        return gen

    # ---- workers ----------------------------------------------------------------------
    def _spec(self, gen: _Generation, index: int) -> FrontWorkerSpec:
        plan = gen.plan
        socks = []
        for lp in plan.listens:
            slot = index if lp.reuseport else -1
            s = self.listeners.socks[(lp.address, slot)]
            socks.append(ListenSocket(lp.address, s.fileno(), lp.reuseport, lp.default_server))
        cpus = plan.cpus[index % len(plan.cpus)] if plan.cpus else ()
        return FrontWorkerSpec(
            index=index, generation=gen.number, master_pid=self.master_pid,
            listeners=tuple(socks), route_blob=plan.route_blob, shm=gen.shm,
            worker_connections=plan.worker_connections, accept_mutex=plan.accept_mutex,
            accept_mutex_delay_ms=plan.accept_mutex_delay_ms, multi_accept=plan.multi_accept,
            cpu=cpus[0] if cpus else None, rlimit_nofile=plan.rlimit_nofile, error_log=plan.error_log,
            error_log_level=plan.error_log_level, shutdown_timeout_s=plan.shutdown_timeout_s,
            extra={**plan.extra, "cpus": cpus} if cpus else dict(plan.extra))

    def _spawn(self, gen: _Generation, index: int) -> None:
        spec = self._spec(gen, index)
        pid = os.fork()
        if pid == 0:
            self._child(spec)   # never returns
        now = time.monotonic()
        self.workers[pid] = _Worker(pid, index, gen.number, now, time.time())
        self.log("notice", f"start worker process {pid}")

    def _child(self, spec: FrontWorkerSpec) -> None:
        code = 1
        try:
            # Die with the master: no orphaned worker ever keeps a port (kill -9 of the master).
            _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != spec.master_pid:
                os._exit(1)
            signal.set_wakeup_fd(-1)
            # Until the child installs its own handlers: stop signals keep their default
            # (terminate) action, but HUP/USR1/USR2/WINCH — whose default would also kill it —
            # are ignored, so a log reopen or a terminal hangup right after fork cannot kill it.
            for sig in (signal.SIGQUIT, signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH):
                signal.signal(sig, signal.SIG_IGN)
            signal.pthread_sigmask(signal.SIG_SETMASK, set())
            keep = {0, 1, 2} | {ls.fd for ls in spec.listeners}
            _close_fds_except(keep)
            cpus = spec.extra.get("cpus") or ((spec.cpu,) if spec.cpu is not None else ())
            if cpus:
                try:
                    os.sched_setaffinity(0, set(cpus))
                except OSError:
                    pass  # the worker logs its own affinity; an absent CPU is not fatal
            proctitle.set_title(proctitle.FRONT_WORKER)
            self.entry(spec)
            code = 0
        except BaseException:
            import traceback
            traceback.print_exc()
        finally:
            os._exit(code)

    def child_exited(self, pid: int, status: int) -> bool:
        w = self.workers.pop(pid, None)
        if w is None:
            return False
        self._log_exit(pid, status)
        gen = self.generations.get(w.generation)
        lived = time.monotonic() - w.started
        if self.stopping:
            self._maybe_free(w.generation)
            return True
        if gen is not None and not gen.ready:
            self._rollback(gen, f"new worker process {pid} exited before it was ready")
            return True
        if w.generation == self.current and not w.draining:
            if lived < QUICK_DEATH:
                n = self._quick_deaths.get(w.index, 0) + 1
                self._quick_deaths[w.index] = n
                self.log("alert", f"worker process {pid} died {lived:.2f}s after start; "
                                  f"respawning in {RESPAWN_DELAY:.0f}s")
                assert self.loop is not None
                self.loop.call_later(RESPAWN_DELAY, lambda i=w.index, g=w.generation: self._respawn(g, i))
            else:
                self._quick_deaths.pop(w.index, None)
                self._respawn(w.generation, w.index)
        else:
            self._maybe_free(w.generation)
        return True

    def _respawn(self, generation: int, index: int) -> None:
        if self.stopping or generation != self.current:
            return
        if any(w.index == index and w.generation == generation for w in self.workers.values()):
            return
        self._spawn(self.generations[generation], index)

    def _log_exit(self, pid: int, status: int) -> None:
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            core = " (core dumped)" if os.WCOREDUMP(status) else ""
            self.log("alert", f"worker process {pid} exited on signal {sig}{core}")
        else:
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
            self.log("notice" if code == 0 else "alert", f"worker process {pid} exited with code {code}")

    def _maybe_free(self, generation: int) -> None:
        if generation == self.current and not self.stopping:
            return
        if any(w.generation == generation for w in self.workers.values()):
            return
        gen = self.generations.pop(generation, None)
        if gen is not None and gen.shm is not None:
            gen.shm.close()

    def _signal(self, pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    # ---- reload -----------------------------------------------------------------------
    def prepare(self, plan: FrontPlan) -> None:
        """Open the new sockets (may raise ListenError); nothing else changes yet."""
        opened = self.listeners.ensure(plan.listens, plan.worker_processes)
        self._pending = (plan, opened)

    def abort(self) -> None:
        if self._pending:
            self.listeners.close(self._pending[1])
            self._pending = None

    def reload(self, plan: FrontPlan) -> None:
        if self._pending is None or self._pending[0] is not plan:
            self.prepare(plan)
        self._pending = None
        self._quick_deaths.clear()
        # Front workers are always replaced, changed or not: they are cheap (no app code), a
        # new generation is the one way every worker re-reads the route blob, the listen set
        # and its log files, and the old ones drain without dropping a connection.
        what = "routes unchanged" if plan == self.plan else "configuration changed"
        self.log("notice", f"front: {what}; starting a new generation of {plan.worker_processes} "
                           f"worker process{'es' if plan.worker_processes != 1 else ''}")
        self.plan = plan
        gen = self._new_generation(plan)
        for i in range(plan.worker_processes):
            self._spawn(gen, i)
        assert self.loop is not None
        gen.ready_timer = self.loop.call_later(READY_GRACE, lambda g=gen: self._generation_ready(g))

    def reloading(self) -> bool:
        return any(not g.ready for g in self.generations.values())

    def _generation_ready(self, gen: _Generation) -> None:
        if gen.number not in self.generations or self.stopping:
            return
        gen.ready = True
        # old -> draining: every older generation stops accepting and finishes its requests
        retired = []
        for w in self.workers.values():
            if w.generation < gen.number and not w.draining:
                w.draining = True
                self._signal(w.pid, signal.SIGQUIT)
                retired.append(str(w.pid))
        if retired:
            self.log("notice", f"generation {gen.number} is up; old worker processes drain: {' '.join(retired)}")
        self._arm_drain_deadline()
        for number in [n for n in self.generations if n < gen.number]:
            self._maybe_free(number)
        self.listeners.close_except(set(Listeners.keys_for(gen.plan.listens, gen.plan.worker_processes)))

    def _arm_drain_deadline(self) -> None:
        assert self.loop is not None
        deadline = self.plan.shutdown_timeout_s + GRACEFUL_KILL_MARGIN
        pids = [w.pid for w in self.workers.values() if w.draining]
        self.loop.call_later(deadline, lambda: self._kill_if_alive(pids, "did not drain in time"))

    def _kill_if_alive(self, pids: list[int], why: str) -> None:
        for pid in pids:
            if pid in self.workers:
                self.log("alert", f"worker process {pid} {why}, sending SIGKILL")
                self._signal(pid, signal.SIGKILL)

    def _rollback(self, gen: _Generation, why: str) -> None:
        self.log("emerg", f"reload failed: {why}; keeping the old configuration")
        if gen.ready_timer:
            gen.ready_timer.cancel()
        del self.generations[gen.number]
        for w in list(self.workers.values()):
            if w.generation == gen.number:
                self._signal(w.pid, signal.SIGKILL)
                w.draining = True
        old = max(self.generations)
        self.current = old
        self.plan = self.generations[old].plan
        self.listeners.close_except(set(Listeners.keys_for(self.plan.listens, self.plan.worker_processes)))
        if gen.shm is not None:
            gen.shm.close()
            gen.shm = None

    # ---- stop / logs / status -----------------------------------------------------------
    def stop(self, graceful: bool) -> None:
        assert self.loop is not None
        if self.stopping == "fast" or (self.stopping == "graceful" and graceful):
            return
        self.stopping = "graceful" if graceful else "fast"
        sig = signal.SIGQUIT if graceful else signal.SIGTERM
        for w in self.workers.values():
            w.draining = True
            self._signal(w.pid, sig)
        # Workers hold their own copies; closing ours means that once they have stopped
        # accepting, the kernel refuses instead of queueing connections nobody will take.
        self.listeners.close_all()
        pids = list(self.workers)
        if graceful:
            self.loop.call_later(self.plan.shutdown_timeout_s + GRACEFUL_KILL_MARGIN,
                                 lambda: self._kill_if_alive(pids, "did not exit in time"))
        else:
            self.loop.call_later(FAST_KILL_AFTER, lambda: self._kill_if_alive(pids, "did not exit in time"))

    def stopped(self) -> bool:
        return not self.workers

    def close(self) -> None:
        """At master exit: close (and unlink, for unix) every listen socket still open."""
        self.listeners.close_all()

    def kill_all(self) -> None:
        for pid in list(self.workers):
            self._signal(pid, signal.SIGKILL)

    def reopen_logs(self) -> None:
        for w in self.workers.values():
            self._signal(w.pid, signal.SIGUSR1)

    def pids(self) -> list[int]:
        return list(self.workers)

    def worker_counters(self, w: _Worker) -> dict:
        """The counters worker w publishes in its generation's shared block ({} if none)."""
        gen = self.generations.get(w.generation)
        if gen is None or gen.shm is None:
            return {}
        try:
            from pyfront.worker.front import read_worker_slot
            c = read_worker_slot(gen.shm, w.index)
        except (IndexError, ValueError, ImportError):
            return {}
        return c if c.get("pid") == w.pid else {}

    def connections(self) -> dict:
        """stub_status numbers summed over the live workers: active, accepts, handled,
        requests, reading, writing, waiting (counters restart with each worker)."""
        return _sum_connections([self.worker_counters(w) for w in self.workers.values()])

    def status(self) -> list[ProcessStatus]:
        rows = []
        now = time.time()
        for w in sorted(self.workers.values(), key=lambda w: (w.generation, w.index)):
            up = int(now - w.started_wall)
            state = "STOPPING" if w.draining else "RUNNING"
            c = self.worker_counters(w)
            from pyfront.app_pool import rss_bytes
            rss = rss_bytes(w.pid)
            busy = c.get("writing", 0) > 0
            # extra numbers go into the description: supervisorctl prints it as is
            desc = (f"pid {w.pid}, uptime {up // 3600}:{up // 60 % 60:02d}:{up % 60:02d}, "
                    f"{'busy' if busy else 'idle'}, requests {c.get('requests', 0)}, "
                    f"active {c.get('active', 0)} (reading {c.get('reading', 0)}, writing {c.get('writing', 0)}, "
                    f"waiting {c.get('idle', 0)}), rss {rss // 1024}K")
            rows.append(ProcessStatus(
                group="front", name=f"worker-{w.index}", state=state, pid=w.pid,
                start=w.started_wall, read_only=True, description=desc, rss=rss,
                requests=c.get("requests", 0), busy=busy,
                current_request=f"{c.get('writing', 0)} writing" if busy else ""))
        return rows


def _sum_connections(rows: list[dict]) -> dict:
    t = {k: 0 for k in ("active", "accepts", "handled", "requests", "reading", "writing", "waiting")}
    for c in rows:
        t["active"] += c.get("active", 0)
        t["accepts"] += c.get("accepted", 0)
        t["handled"] += c.get("accepted", 0)      # pyfront never drops an accepted connection
        t["requests"] += c.get("requests", 0)
        t["reading"] += c.get("reading", 0)
        t["writing"] += c.get("writing", 0)
        t["waiting"] += c.get("idle", 0)
    return t


def _close_fds_except(keep: set[int]) -> None:
    lo = 3
    for fd in sorted(k for k in keep if k >= 3):
        if fd > lo:
            os.closerange(lo, fd)
        lo = fd + 1
    os.closerange(lo, os.sysconf("SC_OPEN_MAX"))
