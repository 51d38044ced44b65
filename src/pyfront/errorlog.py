"""The master's error log: nginx's line format and level filter, reopened on SIGUSR1.

`2024/05/01 12:00:00 [alert] 1234#1234: worker process 5678 exited on signal 9`
"""
from __future__ import annotations

import os
import sys
import time

from pyfront.config.diagnostics import LEVELS


class ErrorLog:
    def __init__(self, path: str | None = None, level: str = "notice", stream=None) -> None:
        self.path = path
        self.level = level
        self._stream = stream or sys.stderr
        self._fd: int | None = None
        self._open()

    def _open(self) -> None:
        if self.path in (None, "stderr", "/dev/stderr"):
            self._fd = None
            return
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def reopen(self) -> None:
        """SIGUSR1: open the path again (logrotate renamed the old file)."""
        old = self._fd
        try:
            self._open()
        except OSError as e:
            self._fd = old
            self.write("alert", f'reopen() "{self.path}" failed ({e.errno}: {e.strerror})')
            return
        if old is not None:
            os.close(old)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def enabled(self, level: str) -> bool:
        return LEVELS.index(level) <= LEVELS.index(self.level)

    def write(self, level: str, message: str) -> None:
        if not self.enabled(level):
            return
        pid = os.getpid()
        line = f"{time.strftime('%Y/%m/%d %H:%M:%S')} [{level}] {pid}#{pid}: {message}\n"
        try:
            if self._fd is None:
                self._stream.write(line)
                self._stream.flush()
            else:
                os.write(self._fd, line.encode(errors="replace"))
        except (OSError, ValueError):
            pass  # a full disk must not stop the master

    __call__ = write
