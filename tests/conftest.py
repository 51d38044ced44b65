"""Shared test helpers: free ports, real peers, starting pyfront in the background."""
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

REQUIRE_PEERS = os.environ.get("PYFRONT_REQUIRE_PEERS") == "1"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.dirname(sys.executable)
# `make test-installed` runs the integration tests against a wheel installed in a fresh venv:
# then nothing may come from src/ (spawned processes included).
INSTALLED = os.environ.get("PYFRONT_TEST_INSTALLED") == "1"
SRC_PATH = [] if INSTALLED else [os.path.join(ROOT, "src")]
if INSTALLED:
    import pyfront as _pyfront
    if os.path.abspath(_pyfront.__file__).startswith(os.path.join(ROOT, "src") + os.sep):
        raise RuntimeError(f"PYFRONT_TEST_INSTALLED=1 but pyfront comes from the source tree: {_pyfront.__file__}")


def need_peer(program: str) -> str:
    """Path of a real peer program; skip without it, but fail in CI (PYFRONT_REQUIRE_PEERS=1)."""
    found = shutil.which(program) or shutil.which(program, path=VENV_BIN) \
        or shutil.which(program, path="/usr/sbin:/usr/local/sbin")
    if found:
        return found
    if REQUIRE_PEERS:
        pytest.fail(f"peer {program!r} is required (PYFRONT_REQUIRE_PEERS=1) but not installed")
    pytest.skip(f"peer {program!r} not installed")


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_PORT_RNG = __import__("random").SystemRandom()   # not the global one: hypothesis seeds that


def free_port(family=socket.AF_INET, host="127.0.0.1") -> int:
    """A port nothing is bound to, picked BELOW the kernel's ephemeral range. A port from
    bind(0) comes from that range, so between this call and the server's own bind() any
    outgoing connect() on the machine (other tests' clients, wrk) could be auto-bound to it,
    and the server's bind then fails with EADDRINUSE: a flake under load. The kernel never
    auto-binds outside the range, so only another free_port() caller can race us here (one
    chance in ~12,000 per pair)."""
    low = _ephemeral_low()
    for _ in range(200):
        port = _PORT_RNG.randint(max(1025, low - 12000), low - 1)
        with socket.socket(family, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))   # no SO_REUSEADDR: a port in TIME_WAIT (just used) is skipped too
            except OSError:
                continue
            return port
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_port(port: int, host="127.0.0.1", timeout=10.0, proc=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


def wait_for_unix(path: str, timeout=10.0, proc=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {path}")
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            s.close()
            return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listening on {path} after {timeout}s")


def pyfront_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "pyfront", *args]


class Proc:
    """A background process started by a test, stopped by pid (never by name)."""

    def __init__(self, argv, **kw):
        self.argv = argv
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.STDOUT)
        self.p = subprocess.Popen(argv, start_new_session=True, **kw)
        self.pid = self.p.pid

    def stop(self, sig=15, timeout=10.0) -> str:
        import signal as _signal
        if self.p.poll() is None:
            try:
                os.kill(self.pid, sig)
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, _signal.SIGKILL)
                self.p.wait(5)
            except ProcessLookupError:
                pass
        out = self.p.stdout.read() if self.p.stdout else b""
        return out.decode(errors="replace") if isinstance(out, bytes) else (out or "")


@pytest.fixture
def procs():
    """Collects Proc objects and stops every one at teardown."""
    started: list[Proc] = []

    def start(argv, **kw) -> Proc:
        pr = Proc(argv, **kw)
        started.append(pr)
        return pr

    yield start
    for pr in reversed(started):
        pr.stop()


def recv_all(sock) -> bytes:
    """Everything the peer sends until it closes the connection (the socket's timeout applies)."""
    out = b""
    while True:
        d = sock.recv(65536)
        if not d:
            return out
        out += d


def http_get(port: int, path: str = "/", timeout: float = 20) -> tuple[int, bytes]:
    """One GET to 127.0.0.1:port on a fresh connection: (status, body)."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()
