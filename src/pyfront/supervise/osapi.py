"""The operating-system calls the supervision layer makes, behind one injectable facade.

process.py only talks to an `OSApi`; unit tests pass a fake that records calls, so the
state machine is tested without monkeypatching and without real children.
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import stat
import subprocess
import time


class SpawnError(Exception):
    """The program could not be started. `fault` is Supervisor's fault name for it."""

    def __init__(self, message: str, fault: str = "SPAWN_ERROR"):
        super().__init__(message)
        self.message, self.fault = message, fault


PR_SET_CHILD_SUBREAPER = 36


class OSApi:
    """The real thing. Every method returns quickly (no waiting on children)."""

    def wall(self) -> float:
        return time.time()

    def resolve_command(self, argv0: str, path_env: str | None) -> str:
        """Supervisor's get_execv_args rules: PATH lookup when there is no '/', then checks
        that become NO_FILE / NOT_EXECUTABLE faults."""
        if "/" in argv0:
            candidate = argv0
        else:
            candidate = None
            for d in (path_env or os.defpath).split(os.pathsep):
                p = os.path.join(d or ".", argv0)
                if os.path.exists(p):
                    candidate = p
                    break
            if candidate is None:
                raise SpawnError(f"can't find command {argv0!r}", "NO_FILE")
        try:
            st = os.stat(candidate)
        except OSError:
            raise SpawnError(f"can't find command {candidate!r}", "NO_FILE") from None
        if stat.S_ISDIR(st.st_mode):
            raise SpawnError(f"command at {candidate!r} is a directory", "NOT_EXECUTABLE")
        if not (st.st_mode & 0o111) or not os.access(candidate, os.X_OK):
            raise SpawnError(f"command at {candidate!r} is not executable", "NOT_EXECUTABLE")
        return candidate

    def pipe(self) -> tuple[int, int]:
        r, w = os.pipe2(os.O_CLOEXEC)
        fl = fcntl.fcntl(r, fcntl.F_GETFL)
        fcntl.fcntl(r, fcntl.F_SETFL, fl | os.O_NONBLOCK)
        return r, w

    def stdin_pipe(self) -> tuple[int, int]:
        """(read end for the child, non-blocking write end for the master)."""
        r, w = os.pipe2(os.O_CLOEXEC)
        fl = fcntl.fcntl(w, fcntl.F_GETFL)
        fcntl.fcntl(w, fcntl.F_SETFL, fl | os.O_NONBLOCK)
        return r, w

    def write(self, fd: int, data: bytes) -> int:
        """Bytes written now (0 when the pipe is full); -1 when the reader is gone."""
        try:
            return os.write(fd, data)
        except BlockingIOError:
            return 0
        except OSError:
            return -1

    def spawn(self, executable: str, argv: list[str], env: dict[str, str], cwd: str | None,
              uid: int | None, umask: int | None, stdout_fd: int, stderr_fd: int,
              stdin_fd: int | None = None) -> int:
        """fork+exec in C (subprocess's _posixsubprocess): new session (so the program's tree
        is one process group), no Python code runs in the child. Raises SpawnError."""
        try:
            p = subprocess.Popen(argv, executable=executable, env=env, cwd=cwd, stdin=subprocess.DEVNULL if stdin_fd is None else stdin_fd,
                                 stdout=stdout_fd, stderr=stderr_fd, close_fds=True,
                                 start_new_session=True, user=uid,
                                 umask=-1 if umask is None else umask)
        except FileNotFoundError as e:
            if cwd and e.filename == cwd:
                raise SpawnError(f"couldn't chdir to {cwd}: ENOENT", "SPAWN_ERROR") from None
            raise SpawnError(f"couldn't exec {argv[0]}: ENOENT", "NO_FILE") from None
        except PermissionError as e:
            if cwd and e.filename == cwd:
                raise SpawnError(f"couldn't chdir to {cwd}: EACCES", "SPAWN_ERROR") from None
            raise SpawnError(f"couldn't exec {argv[0]}: EACCES", "NOT_EXECUTABLE") from None
        except OSError as e:
            raise SpawnError(f"couldn't exec {argv[0]}: {errno.errorcode.get(e.errno, e.errno)}") from None
        # The master reaps with waitpid(-1); mark the Popen finished so subprocess never
        # reaps this pid behind the master's back (its __del__ would add it to _active).
        p.returncode = 0
        return p.pid

    def kill(self, pid: int, sig: int) -> None:
        os.kill(pid, sig)

    def killpg(self, pgid: int, sig: int) -> bool:
        try:
            os.killpg(pgid, sig)
            return True
        except ProcessLookupError:
            return False

    def read(self, fd: int, n: int = 65536) -> bytes | None:
        """None when nothing is available right now (EAGAIN), b'' at EOF."""
        try:
            return os.read(fd, n)
        except BlockingIOError:
            return None
        except OSError as e:
            if e.errno == errno.EINTR:
                return None
            return b""

    def close(self, fd: int) -> None:
        try:
            os.close(fd)
        except OSError:
            pass

    def set_child_subreaper(self) -> bool:
        """Orphaned grandchildren re-parent to the master instead of init, so the master can
        reap them and see them (prctl(2) PR_SET_CHILD_SUBREAPER, Linux >= 3.4)."""
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
        except (OSError, AttributeError):
            return False

    # -- /proc views (Linux) -------------------------------------------------------------
    def _stat(self, pid: int) -> tuple[int, int, int] | None:
        """(ppid, pgid, starttime) of pid, or None if gone."""
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                data = f.read()
        except OSError:
            return None
        rest = data[data.rfind(b")") + 2:].split()
        if rest[0] == b"Z":
            return None
        return int(rest[1]), int(rest[2]), int(rest[19])

    def _all_pids(self) -> list[int]:
        try:
            return [int(n) for n in os.listdir("/proc") if n.isdigit()]
        except OSError:
            return []

    def tree(self, pid: int, pgid: int) -> set[tuple[int, int]]:
        """Every live descendant of pid plus every member of process group pgid, as
        (pid, starttime) so a later kill never hits a recycled pid."""
        stats = {}
        for p in self._all_pids():
            s = self._stat(p)
            if s:
                stats[p] = s
        children: dict[int, list[int]] = {}
        for p, (ppid, _, _) in stats.items():
            children.setdefault(ppid, []).append(p)
        out: set[tuple[int, int]] = set()
        todo = list(children.get(pid, []))
        while todo:
            c = todo.pop()
            if c in stats and (c, stats[c][2]) not in out:
                out.add((c, stats[c][2]))
                todo.extend(children.get(c, []))
        for p, (_, g, st) in stats.items():
            if g == pgid and p != pid:
                out.add((p, st))
        return out

    def kill_if_same(self, pid: int, starttime: int, sig: int) -> bool:
        s = self._stat(pid)
        if s is None or s[2] != starttime:
            return False
        try:
            os.kill(pid, sig)
            return True
        except ProcessLookupError:
            return False

    def rss(self, pid: int) -> int:
        try:
            with open(f"/proc/{pid}/statm", "rb") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            return 0
