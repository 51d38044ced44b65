"""Start a real front worker process on a compiled plan (no master needed)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time

from pyfront.config.compile import ConfPlan, LocationPlan, ServerPlan, build_blob

from tests.conftest import ROOT, SRC_PATH


def mime_types() -> tuple[tuple[str, str], ...]:
    """nginx's mime.types as (ext, type) pairs (the system copy, else a small subset)."""
    out = []
    try:
        text = open("/etc/nginx/mime.types").read()
        body = text[text.index("{") + 1:text.rindex("}")]
        for stmt in body.split(";"):
            parts = stmt.split()
            if len(parts) >= 2:
                out += [(ext, parts[0]) for ext in parts[1:]]
    except (OSError, ValueError):
        out = [("html", "text/html"), ("htm", "text/html"), ("css", "text/css"), ("txt", "text/plain"),
               ("js", "application/javascript"), ("png", "image/png"), ("json", "application/json")]
    return tuple(out)


TYPES = mime_types()


def conf(**kw) -> ConfPlan:
    kw.setdefault("types", TYPES)
    kw.setdefault("default_type", "application/octet-stream")
    return ConfPlan(**kw)


class Front:
    def __init__(self, proc: subprocess.Popen, port: int, tmp: str, error_log: str):
        self.proc, self.port, self.tmp, self.error_log = proc, port, tmp, error_log
        self.pid = proc.pid

    def connect(self, timeout=5.0) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def stop(self, sig=15, timeout=10.0) -> int | None:
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, sig)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, 9)
                self.proc.wait(5)
            except ProcessLookupError:
                pass
        return self.proc.returncode

    def errors(self) -> str:
        try:
            return open(self.error_log).read()
        except OSError:
            return ""


def start_front(servers_fn, shutdown_s: float = 10.0, log_formats=None) -> Front:
    """servers_fn(addr) -> list[ServerPlan]; binds 127.0.0.1:free port; starts a worker."""
    tmp = tempfile.mkdtemp(prefix="pf-front-")
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(511)
    port = ls.getsockname()[1]
    addr = f"127.0.0.1:{port}"
    blob = build_blob(servers_fn(addr), log_formats)
    path = os.path.join(tmp, "routes.blob")
    with open(path, "wb") as f:
        f.write(blob)
    error_log = os.path.join(tmp, "error.log")
    env = dict(os.environ, PF_TEST_ERROR_LOG=error_log,
               PYTHONPATH=os.pathsep.join([*SRC_PATH, ROOT, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-m", "tests.integration.front_child", path, str(shutdown_s),
                             f"{addr}={ls.fileno()}"], pass_fds=[ls.fileno()], cwd=ROOT, env=env,
                            start_new_session=True)
    ls.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"front worker exited with {proc.returncode}")
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=0.5)
            s.sendall(b"GET /__ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            if s.recv(64):
                s.close()
                break
            s.close()
        except OSError:
            time.sleep(0.02)
    return Front(proc, port, tmp, error_log)


def simple_site(root: str, **kw):
    """One server on the address with `root` and the given conf overrides."""
    def make(addr):
        return [ServerPlan(listen=((addr, True),), names=("localhost",), conf=conf(root=root, **kw))]
    return make


def raw(front: Front, data: bytes, timeout=5.0) -> bytes:
    """Send raw bytes, read until the server closes."""
    s = front.connect(timeout)
    s.sendall(data)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except socket.timeout:
        pass
    s.close()
    return out
