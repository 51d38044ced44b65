"""A real front worker process (run_worker) on inherited sockets: graceful drain on QUIT,
fast stop, access log lines and reopen, error log lines."""
from __future__ import annotations

import os
import re
import signal
import socket
import threading
import time

import pytest

from pyfront.config.compile import ServerPlan
from tests.integration.frontfix import conf, start_front
from tests.integration.httpraw import parse_responses

BIG = 8 * 1024 * 1024


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    r.mkdir()
    (r / "a.txt").write_bytes(b"hello\n")
    (r / "big.bin").write_bytes(os.urandom(BIG))
    return r


def one(front, req: bytes, sock=None) -> tuple[bytes, socket.socket]:
    s = sock or front.connect()
    s.sendall(req)
    s.settimeout(5)
    got = b""
    while b"\r\n\r\n" not in got:
        got += s.recv(65536)
    head = got.split(b"\r\n\r\n")[0]
    n = int(re.search(rb"Content-Length: (\d+)", head).group(1))
    while len(got) < len(head) + 4 + n:
        got += s.recv(65536)
    return got, s


def wait_exit(front, timeout=20):
    front.proc.wait(timeout)
    return front.proc.returncode


def test_quit_drains_gracefully(root):
    f = start_front(lambda a: [ServerPlan(listen=((a, True),), names=("x",),
                                          conf=conf(root=str(root), sendfile=True))], shutdown_s=20)
    try:
        # A: an idle keep-alive connection; B: a large transfer read slowly
        got, a = one(f, b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"Connection: keep-alive" in got
        b = f.connect()
        b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        b.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        first = b.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        os.kill(f.pid, signal.SIGQUIT)
        # stop accepting: the worker closed its listening socket (the only copy here)
        deadline = time.monotonic() + 10
        refused = False
        while time.monotonic() < deadline and not refused:
            try:
                socket.create_connection(("127.0.0.1", f.port), timeout=1).close()
                time.sleep(0.05)
            except ConnectionRefusedError:
                refused = True
        assert refused
        # A's next response carries Connection: close, then the server closes A
        got, _ = one(f, b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n", sock=a)
        assert b"Connection: close" in got and got.endswith(b"hello\n")
        a.settimeout(5)
        assert a.recv(10) == b""
        # B's transfer completes in full
        body = first
        b.settimeout(10)
        while True:
            chunk = b.recv(1 << 20)
            if not chunk:
                break
            body += chunk
        assert len(body.split(b"\r\n\r\n", 1)[1]) == BIG
        assert wait_exit(f) == 0
    finally:
        f.stop()


def test_idle_keepalive_closes_at_drain_deadline(root):
    f = start_front(lambda a: [ServerPlan(listen=((a, True),), names=("x",), conf=conf(root=str(root)))],
                    shutdown_s=1.0)
    try:
        got, a = one(f, b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        os.kill(f.pid, signal.SIGQUIT)
        a.settimeout(15)
        assert a.recv(10) == b""               # closed (deadline 1 s, keepalive 75 s)
        assert wait_exit(f) == 0
    finally:
        f.stop()


def test_term_is_fast(root):
    f = start_front(lambda a: [ServerPlan(listen=((a, True),), names=("x",), conf=conf(root=str(root)))])
    try:
        got, a = one(f, b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        os.kill(f.pid, signal.SIGTERM)
        assert wait_exit(f, 10) == 0
    finally:
        f.stop()


COMBINED_RE = (r'^127\.0\.0\.1 - - \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] '
               r'"GET /a\.txt\?q=1 HTTP/1\.1" 200 6 "http://ref/" "agent \\x22quoted\\x22 \\xC3\\xA9"$')


def test_access_log_combined_main_and_reopen(root, tmp_path):
    log1, log2 = str(tmp_path / "combined.log"), str(tmp_path / "main.log")
    f = start_front(lambda a: [ServerPlan(listen=((a, True),), names=("x",),
                                          conf=conf(root=str(root), access_logs=((log1, "combined"), (log2, "main"))))])
    try:
        req = ("GET /a.txt?q=1 HTTP/1.1\r\nHost: x\r\nReferer: http://ref/\r\n"
               "User-Agent: agent \"quoted\" \u00e9\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n").encode("utf-8")
        one(f, req)[1].close()
        deadline = time.monotonic() + 10          # the buffer is flushed within a second
        while time.monotonic() < deadline and not (os.path.exists(log2) and open(log2).read()):
            time.sleep(0.05)
        line = open(log1).read().rstrip("\n").split("\n")[-1]
        assert re.match(COMBINED_RE, line), line
        main = open(log2).read().rstrip("\n").split("\n")[-1]
        assert main.startswith(line) and main.endswith(' "10.0.0.1"')
        os.rename(log1, log1 + ".1")
        os.kill(f.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not os.path.exists(log1):
            time.sleep(0.05)
        one(f, b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")[1].close()
        while time.monotonic() < deadline and not open(log1).read():
            time.sleep(0.05)
        assert '"GET /a.txt HTTP/1.1" 200 6 "-" "-"' in open(log1).read()
        assert "/a.txt?q=1" in open(log1 + ".1").read()
    finally:
        f.stop()


def test_error_log_line_is_nginx_shaped(root):
    f = start_front(lambda a: [ServerPlan(listen=((a, True),), names=("x",), conf=conf(root=str(root)))])
    try:
        one(f, b"GET /missing HTTP/1.1\r\nHost: example\r\n\r\n")[1].close()
        deadline = time.monotonic() + 5
        pat = (r'\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[error\] \d+#0: \*\d+ open\(\) "%s/missing" failed '
               r'\(2: No such file or directory\), client: 127\.0\.0\.1, server: x, request: "GET /missing HTTP/1\.1", '
               r'host: "example"' % re.escape(str(root)))
        while time.monotonic() < deadline and not re.search(pat, f.errors()):
            time.sleep(0.05)
        assert re.search(pat, f.errors()), f.errors()
    finally:
        f.stop()


def test_server_level_error_log(root, tmp_path):
    """A server's own error_log gets its requests' errors (the seed config sets one)."""
    own = str(tmp_path / "server-error.log")
    f = start_front(lambda a: [ServerPlan(listen=((a, True),), names=("x",),
                                          conf=conf(root=str(root), error_log=(own, "error")))])
    try:
        one(f, b"GET /missing-here HTTP/1.1\r\nHost: x\r\n\r\n")[1].close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and "missing-here" not in (open(own).read() if os.path.exists(own) else ""):
            time.sleep(0.05)
        assert 'open() "%s/missing-here" failed (2: No such file or directory)' % root in open(own).read()
        assert "missing-here" not in f.errors()
    finally:
        f.stop()
