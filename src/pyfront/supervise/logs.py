"""Program output capture: pipe → log file with size rotation, backups and reopen.

The master only ever reads a pipe when the loop says it is readable (non-blocking), and
writes whole chunks to a regular file. A target that cannot seek (/dev/stdout, a FIFO)
disables rotation instead of failing (Supervisor#1078: "Illegal seek").
"""
from __future__ import annotations

import collections
import os


class RotatingLog:
    def __init__(self, path: str, maxbytes: int, backups: int):
        self.path, self.maxbytes, self.backups = path, maxbytes, backups
        self.fd = -1
        self.size = 0
        self.rotatable = True
        self.error: str | None = None
        self.open()

    def open(self) -> None:
        try:
            d = os.path.dirname(self.path)
            if d and not self.path.startswith("/dev/"):
                os.makedirs(d, exist_ok=True)
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
            st = os.fstat(self.fd)
            import stat as _st
            self.rotatable = _st.S_ISREG(st.st_mode)
            self.size = st.st_size if self.rotatable else 0
            self.error = None
        except OSError as e:
            self.fd = -1
            self.error = f"{self.path}: {e.strerror}"

    def reopen(self) -> None:
        self.close()
        self.open()

    def close(self) -> None:
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = -1

    def write(self, data: bytes) -> None:
        """Append; a rotatable file is cut exactly at maxbytes (a big chunk spans files)."""
        if self.fd < 0 or not data:
            return
        if not self.rotatable or not self.maxbytes:
            self._write(data)
            return
        while data:
            room = max(1, self.maxbytes - self.size)
            part, data = data[:room], data[room:]
            if not self._write(part):
                return
            self.size += len(part)
            if self.size >= self.maxbytes:
                self.rotate()

    def _write(self, data: bytes) -> bool:
        try:
            while data:
                n = os.write(self.fd, data)
                data = data[n:]
            return True
        except OSError as e:
            self.error = f"{self.path}: {e.strerror}"
            return False

    def rotate(self) -> None:
        """NAME → NAME.1 → ... → NAME.backups (the oldest is dropped); backups=0 truncates."""
        self.close()
        if self.backups > 0:
            for i in range(self.backups - 1, 0, -1):
                src, dst = f"{self.path}.{i}", f"{self.path}.{i + 1}"
                if os.path.exists(src):
                    os.replace(src, dst)
            if os.path.exists(self.path):
                os.replace(self.path, f"{self.path}.1")
        else:
            try:
                os.truncate(self.path, 0)
            except OSError:
                pass
        self.open()

    def clear(self) -> None:
        """clearProcessLogs: empty the file and remove its backups."""
        self.close()
        for i in range(1, self.backups + 1):
            try:
                os.unlink(f"{self.path}.{i}")
            except OSError:
                pass
        try:
            if self.rotatable:
                os.truncate(self.path, 0)
        except OSError:
            pass
        self.open()


class Channel:
    """One captured stream of one process: file log (optional) + a short in-memory tail
    used for `status` of FATAL/BACKOFF programs."""

    def __init__(self, log: RotatingLog | None, keep_lines: int = 5):
        self.log = log
        self.recent: collections.deque[str] = collections.deque(maxlen=keep_lines)
        self._partial = b""

    def feed(self, data: bytes) -> None:
        if self.log is not None:
            self.log.write(data)
        buf = self._partial + data
        *lines, self._partial = buf.split(b"\n")
        if len(self._partial) > 4096:
            self._partial = self._partial[-4096:]
        for ln in lines[-self.recent.maxlen:]:
            s = ln.decode("utf-8", "replace").rstrip()
            if s:
                self.recent.append(s)

    def last_lines(self) -> list[str]:
        out = list(self.recent)
        if self._partial.strip():
            out.append(self._partial.decode("utf-8", "replace").rstrip())
        return out[-self.recent.maxlen:]


def read_tail(path: str | None, offset: int, length: int) -> tuple[bytes, str | None]:
    """Supervisor's readFile(offset, length) rules. Returns (data, fault_name or None)."""
    if not path:
        return b"", "NO_FILE"
    if offset < 0 and length != 0:
        return b"", "BAD_ARGUMENTS"
    if offset < 0 or length < 0:
        if offset < 0 and length == 0:
            pass
        else:
            return b"", "BAD_ARGUMENTS"
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if offset < 0:
                start = max(0, size + offset)
                f.seek(start)
                return f.read(), None
            f.seek(offset)
            return (f.read(length) if length else f.read()), None
    except FileNotFoundError:
        return b"", "NO_FILE"
    except OSError:
        return b"", "FAILED"


def tail_from(path: str | None, offset: int, length: int) -> tuple[bytes, int, bool]:
    """tailProcessStdoutLog semantics, quirks included (clients such as supervisorctl's fg
    and the web UI rely on them): when more than `length` bytes follow `offset`, overflow is
    set and the last `length` bytes come back; otherwise the window is the last `length`
    bytes of the file (or nothing when offset is at/after the end). The new offset is the
    file size. A missing/unreadable file gives (b"", offset, False)."""
    try:
        with open(path or "", "rb") as f:
            size = os.fstat(f.fileno()).st_size
            overflow = size > offset + length
            start, n = (size - 1 if overflow else offset), length
            if start + n > size:
                if start >= size:
                    n = 0
                start = size - n
            start, n = max(0, start), max(0, n)
            f.seek(start)
            return (f.read(n) if n else b""), size, overflow
    except OSError:
        return b"", offset, False
