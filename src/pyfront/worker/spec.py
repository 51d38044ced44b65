"""What the master hands a front worker at fork time (master helper ↔ front helper contract).

The master builds everything here BEFORE forking (so a bad config fails in the master,
and a reload that fails validation touches nothing): listen sockets, the shared-memory
block, and the compiled route-table blob. The worker entry point is
`pyfront.worker.front.run_worker(spec)`, which never returns (it calls os._exit).

Worker signals (as nginx's): QUIT = graceful (stop accepting; each connection's next
response carries `Connection: close`; idle keep-alive connections close at their
keepalive timeout or at the drain deadline; in-flight transfers finish), TERM/INT = fast
exit, USR1 = reopen logs, HUP ignored (reload is the master's job). A worker exits when
its master dies (PR_SET_PDEATHSIG plus a check of the master's pid).
"""
from __future__ import annotations

import mmap
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ListenSocket:
    address: str          # as written in `listen`, normalised: "127.0.0.1:8080", "[::]:80", "unix:/run/x.sock"
    fd: int               # bound, listening, inherited across fork; O_NONBLOCK set
    reuseport: bool = False   # True: this fd is this worker's own SO_REUSEPORT socket
    default_server: bool = False


@dataclass(frozen=True, eq=False)
class FrontWorkerSpec:
    index: int                          # 0 .. worker_processes-1 (also the shm slot)
    generation: int                     # bumps on every reload
    master_pid: int
    listeners: tuple[ListenSocket, ...]
    route_blob: bytes                   # pyfront.config.compile.compile_front(config)
    shm: mmap.mmap                      # MAP_SHARED anonymous, pyfront.worker.front.shm_size(n) bytes
    worker_connections: int = 512
    accept_mutex: bool = False
    accept_mutex_delay_ms: int = 500
    multi_accept: bool = False
    cpu: int | None = None              # worker_cpu_affinity: pin to this CPU
    rlimit_nofile: int | None = None
    error_log: str | None = None        # path; None = stderr
    error_log_level: str = "error"
    shutdown_timeout_s: float = 30.0    # drain deadline on QUIT
    extra: dict = field(default_factory=dict)
