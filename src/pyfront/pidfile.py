"""The master's pid file (nginx `pid`) and the default run directory.

The file holds the `pyfront serve` master's own pid followed by a newline, as nginx's.
It is written atomically (rename), after the listeners are open, and removed at exit only
if it still names this process (a newer master may have replaced it).
"""
from __future__ import annotations

import errno
import hashlib
import os
import tempfile


class PidFileError(Exception):
    """An nginx-shaped message: `open() "/run/x.pid" failed (2: No such file or directory)`."""


def _oserror(call: str, path: str, e: OSError) -> PidFileError:
    return PidFileError(f'{call}() "{path}" failed ({e.errno}: {e.strerror})')


def default_run_dir(confdir: str, bundled: bool = False) -> str:
    """Where pid file, sockets and default logs go when the config names no place.

    CONF_DIR/run when CONF_DIR is writable; otherwise (the bundled example inside a wheel,
    a read-only /etc) a per-user, per-CONF_DIR directory under $XDG_RUNTIME_DIR or the
    temp dir, so two masters on two conf dirs never share one.
    """
    confdir = os.path.abspath(confdir)
    if not bundled and os.access(confdir, os.W_OK):
        return os.path.join(confdir, "run")
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    tag = hashlib.sha1(confdir.encode()).hexdigest()[:12]
    return os.path.join(base, f"pyfront-{os.getuid()}", tag)


def read_pid(path: str) -> int:
    """The pid in `path`, or PidFileError with nginx -s's wording."""
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            text = f.read(64)
    except OSError as e:
        raise _oserror("open", path, e) from None
    s = text.strip()
    if not s.isdigit() or int(s) <= 0:
        raise PidFileError(f'invalid PID number "{s}" in "{path}"')
    return int(s)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_pyfront_master(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read()
    except OSError:
        return False
    return cmd.startswith(b"pyfront: master process")   # the title the master sets (proctitle.master)


def running_master(path: str) -> int | None:
    """The pid of a live pyfront master recorded in `path`, else None (stale or absent)."""
    try:
        pid = read_pid(path)
    except PidFileError:
        return None
    if pid != os.getpid() and pid_alive(pid) and _is_pyfront_master(pid):
        return pid
    return None


def write_pid(path: str, pid: int | None = None) -> None:
    pid = os.getpid() if pid is None else pid
    d = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(d, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".pid-", dir=d)
    except OSError as e:
        raise _oserror("open", path, e) from None
    try:
        os.write(fd, f"{pid}\n".encode())
        os.fchmod(fd, 0o644)
        os.close(fd)
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise _oserror("rename", path, e) from None


def remove_pid(path: str, pid: int | None = None) -> None:
    """Remove `path` if it still holds `pid` (default: ours)."""
    pid = os.getpid() if pid is None else pid
    try:
        if read_pid(path) != pid:
            return
        os.unlink(path)
    except PidFileError:
        return
    except OSError as e:
        if e.errno != errno.ENOENT:
            raise
