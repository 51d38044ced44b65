"""Process titles, as nginx's, so `ps` shows each role of the process tree.

nginx sets `nginx: master process <its command line>` and `nginx: worker process`
(`... is shutting down` while draining). pyfront keeps that shape and adds titles for the
roles nginx does not have. Every layer takes its title from here so they stay consistent.
"""
from __future__ import annotations

import os

try:  # setproctitle is a runtime dependency; a missing one must not stop a server
    import setproctitle as _spt
except ImportError:  # pragma: no cover - only on a broken install
    _spt = None

PREFIX = "pyfront: "
FRONT_WORKER = PREFIX + "worker process"
FRONT_WORKER_DRAINING = PREFIX + "worker process is shutting down"
CONTROL_SERVER = PREFIX + "control server"


def master(argv: list[str]) -> str:
    """`pyfront: master process pyfront serve /etc/pyfront` (the command as typed)."""
    return PREFIX + "master process " + " ".join(["pyfront", *argv])


def app_master(name: str) -> str:
    return f"{PREFIX}app master {name}"


def app_worker(name: str, index: int) -> str:
    return f"{PREFIX}app worker {index} ({name})"


def set_title(title: str) -> None:
    if _spt is not None:
        _spt.setproctitle(title)


def get_title(pid: int | None = None) -> str:
    """The title of `pid` as `ps` shows it (from /proc/PID/cmdline); '' if gone."""
    try:
        with open(f"/proc/{pid or os.getpid()}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()
