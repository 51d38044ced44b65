"""From the nginx model (config/model.py FrontConfig) to what the master runs: FrontPlan."""
from __future__ import annotations

import os

from pyfront.front_pool import FrontPlan
from pyfront.listeners import ListenPlan

DEFAULT_SHUTDOWN_TIMEOUT_S = 30.0   # nginx waits forever without worker_shutdown_timeout; we cap it


def listen_plans(cfg) -> tuple[ListenPlan, ...]:
    """One ListenPlan per distinct address; options given on any of its `listen`s apply."""
    seen: dict[str, ListenPlan] = {}
    for server in cfg.http.servers:
        for ln in server.listens:
            addr = ln.address.text
            old = seen.get(addr)
            lp = ListenPlan(addr, reuseport=ln.reuseport or (old.reuseport if old else False),
                            backlog=ln.backlog if not old or ln.backlog != 511 else old.backlog,
                            default_server=ln.default_server or (old.default_server if old else False),
                            ipv6only=ln.ipv6only)
            seen[addr] = lp
    return tuple(seen.values())


def cpu_sets(cfg) -> tuple[tuple[int, ...], ...] | None:
    aff = cfg.main.worker_cpu_affinity
    if aff is None:
        return None
    ncpu = os.cpu_count() or 1
    sets = tuple(aff.cpus_for(i, ncpu) for i in range(cfg.main.worker_processes))
    return sets if any(sets) else None


def plan_from_config(cfg, blob: bytes, confdir: str) -> FrontPlan:
    main, ev = cfg.main, cfg.events
    err = main.error_logs[0] if main.error_logs and not main.error_logs[0].implicit else None
    timeout = main.worker_shutdown_timeout_ms
    return FrontPlan(
        listens=listen_plans(cfg),
        route_blob=blob,
        worker_processes=main.worker_processes,
        cpus=cpu_sets(cfg),
        worker_connections=ev.worker_connections,
        accept_mutex=ev.accept_mutex,
        accept_mutex_delay_ms=ev.accept_mutex_delay_ms,
        multi_accept=ev.multi_accept,
        rlimit_nofile=main.worker_rlimit_nofile,
        error_log=None if err is None or err.path == "stderr" else err.path,
        error_log_level=err.level if err else "error",
        shutdown_timeout_s=timeout / 1000 if timeout is not None else DEFAULT_SHUTDOWN_TIMEOUT_S,
    )
