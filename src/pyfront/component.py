"""The master's event loop and the interface every layer implements inside it.

The master (arbiter.py) is one thread: a selector over the signal wake-up pipe, the
control server's sockets and the programs' log pipes, plus a timer heap. Each layer
(front workers, app servers, programs, control server) is a Component driven by it.
Callbacks must never block: they do a bounded amount of work and return.
"""
from __future__ import annotations

import heapq
import itertools
import selectors
import time
from dataclasses import dataclass
from typing import Callable, Protocol


class Timer:
    __slots__ = ("when", "callback", "cancelled")

    def __init__(self, when: float, callback: Callable[[], None]):
        self.when, self.callback, self.cancelled = when, callback, False

    def cancel(self) -> None:
        self.cancelled = True


class Loop:
    """selectors + a monotonic timer heap. Not thread-safe: only the master thread uses it."""

    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        self._timers: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return time.monotonic()

    def add_reader(self, fd: int, callback: Callable[[], None]) -> None:
        self.selector.register(fd, selectors.EVENT_READ, callback)

    def add_writer(self, fd: int, callback: Callable[[], None]) -> None:
        self.selector.register(fd, selectors.EVENT_WRITE, callback)

    def modify(self, fd: int, events: int, callback: Callable[[], None]) -> None:
        self.selector.modify(fd, events, callback)

    def remove(self, fd: int) -> None:
        try:
            self.selector.unregister(fd)
        except (KeyError, ValueError):
            pass

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        t = Timer(when, callback)
        heapq.heappush(self._timers, (when, next(self._seq), t))
        return t

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return self.call_at(self.time() + delay, callback)

    def run_once(self, max_wait: float = 1.0) -> None:
        now = self.time()
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        wait = max_wait
        if self._timers:
            wait = max(0.0, min(wait, self._timers[0][0] - now))
        for key, events in self.selector.select(wait):
            key.data() if events else None
        now = self.time()
        while self._timers and self._timers[0][0] <= now:
            _, _, t = heapq.heappop(self._timers)
            if not t.cancelled:
                t.callback()


@dataclass(frozen=True)
class ProcessStatus:
    """One row of `status` for any process the master knows (programs and workers)."""
    group: str            # "front", "app-NAME", or the program's group
    name: str             # "worker-0", program process name
    state: str            # Supervisor state name: RUNNING, STOPPED, ...
    pid: int
    start: float          # wall-clock start time, 0 if never started
    description: str
    read_only: bool = False
    rss: int = 0
    requests: int = 0
    busy: bool = False
    current_request: str = ""


class Component(Protocol):
    """A layer run by the master. All methods are called from the master thread.

    Optional methods the arbiter uses when a component has them (all backwards compatible:
    a component without them behaves as before):
      open()            bind sockets before the pid file is written and before any child
                        exists, so a busy port fails `pyfront serve` cleanly (exit 1)
      prepare(new)      reload phase 1: acquire what the new config needs (new sockets);
                        may raise (ListenError/OSError/ConfigError): the reload is abandoned
      abort()           undo prepare() when another layer's prepare failed
      reloading() -> bool   True while an asynchronous reload is still in progress (the
                        master stays in RELOADING, sd_notify READY=1 waits for it)
      kill_all()        SIGKILL every child now (fast-stop deadline)
      close()           release sockets at master exit
      fatal: str|None   set to a reason when the layer cannot run at all (e.g. an app
                        that does not import at boot): the master logs it and exits 1
    The master reaps every child with waitpid(-1) and offers each pid to child_exited();
    components must not wait for their children themselves (no subprocess .wait()).
    """

    name: str

    def start(self, loop: Loop) -> None:
        """Open what is needed and spawn the children; must not block."""

    def child_exited(self, pid: int, status: int) -> bool:
        """A waitpid() result; return True if `pid` was one of ours (the master reaps)."""

    def reload(self, new: object) -> None:
        """Apply an already-validated new configuration for this layer (only what changed)."""

    def reopen_logs(self) -> None:
        """SIGUSR1: reopen every log file this layer writes."""

    def stop(self, graceful: bool) -> None:
        """Begin stopping; graceful finishes in-flight work within the layer's deadline."""

    def stopped(self) -> bool:
        """True once every child of this layer has exited."""

    def status(self) -> list[ProcessStatus]:
        """Rows for `pyfront ctl status` and the dashboard."""
