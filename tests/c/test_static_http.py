"""HTTP/1.x behaviour of the C worker: keep-alive, pipelining, body discard, strict
parsing (400), limits (414 / 494 / 505), timeouts, keepalive_requests, idle memory."""
from __future__ import annotations

import http.client
import os
import socket
import time

import pytest

from pyfront._native import lib
from tests.c.inproc import InProc, site
from tests.integration.httpraw import parse_responses


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("root")
    (r / "a.txt").write_bytes(b"A" * 10 + b"\n")
    (r / "index.html").write_bytes(b"home\n")
    return str(r)


@pytest.fixture(scope="module")
def srv(root):
    s = InProc(site(root, keepalive_requests=50, client_header_timeout_ms=1500, keepalive_timeout_ms=1500))
    yield s
    s.close()


def read_all(sock, until_close=True, timeout=5.0) -> bytes:
    sock.settimeout(timeout)
    got = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        got += chunk
    return got


def test_keepalive_many_requests_one_connection(srv):
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    c.connect()
    sock = c.sock
    for i in range(40):
        c.request("GET", "/a.txt")
        r = c.getresponse()
        assert r.status == 200 and r.read() == b"A" * 10 + b"\n"
        assert r.getheader("connection") == "keep-alive"
    assert c.sock is sock                 # never reconnected
    c.close()


def test_pipelining_in_order(srv):
    s = srv.connect()
    s.sendall(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\nHEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = read_all(s)
    s.close()
    rs = parse_responses(data)
    assert rs[0].status == 200 and rs[0].body == b"A" * 10 + b"\n"
    # the HEAD response (Content-Length: 5, no body) is followed directly by the 404
    assert b"Content-Length: 5\r\n" in data and b"\r\n\r\nHTTP/1.1 404" in data
    import re
    statuses = [int(x) for x in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)]
    assert statuses == [200, 200, 404, 200]
    assert data.endswith(b"home\n")


def test_pipelining_byte_by_byte(srv):
    s = srv.connect()
    req = b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n" * 2 + b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    for b in req:
        s.send(bytes([b]))
    data = read_all(s)
    s.close()
    assert [r.status for r in parse_responses(data)] == [200, 200, 200]


def test_request_bodies_are_discarded_before_the_next_request(srv):
    s = srv.connect()
    s.sendall(b"POST /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
              b"POST /a.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
              b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    rs = parse_responses(read_all(s))
    s.close()
    assert [r.status for r in rs] == [405, 405, 200]


def test_http10_and_connection_close(srv):
    s = srv.connect()
    s.sendall(b"GET /a.txt HTTP/1.0\r\n\r\n")
    data = read_all(s)                     # the server closes
    assert b"Connection: close" in data and data.endswith(b"A" * 10 + b"\n")
    s = srv.connect()
    s.sendall(b"GET /a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    s.settimeout(3)
    assert b"Connection: keep-alive" in s.recv(4096)
    s.close()


@pytest.mark.parametrize("req,status", [
    (b"GET / HTTP/1.1\nHost: x\n\n", 400),                       # bare LF
    (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", 400),   # obs-fold
    (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),                # space before colon
    (b"GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\0\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n\r\n", 400),                            # no Host in 1.1
    (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (b"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
])
def test_bad_requests_get_nginx_status_and_close(srv, req, status):
    s = srv.connect()
    s.sendall(req + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")   # a second request must not be answered
    data = read_all(s)
    s.close()
    rs = parse_responses(data)
    assert len(rs) == 1 and rs[0].status == status
    assert rs[0].header("connection") == "close"
    if status == 400 and b"X-Big" in req:
        assert b"Request Header Or Cookie Too Large" in rs[0].body


def test_client_header_timeout_closes(srv):
    s = srv.connect()
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")          # never finished
    assert read_all(s, timeout=10) == b""                 # closed, no response (as nginx)
    s.close()


def test_keepalive_timeout_closes_idle(srv):
    s = srv.connect()
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    data = read_all(s, timeout=10)                        # response, then the idle close
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"home\n")
    s.close()


def test_keepalive_requests_limit():
    import tempfile
    root = tempfile.mkdtemp()
    with open(os.path.join(root, "index.html"), "wb") as f:
        f.write(b"x\n")
    s = InProc(site(root, keepalive_requests=3))
    try:
        c = s.connect()
        c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 4)
        rs = parse_responses(read_all(c))
        assert [r.header("connection") for r in rs] == ["keep-alive", "keep-alive", "close"]
    finally:
        s.close()


def test_idle_connections_hold_no_buffers(srv):
    """Idle keep-alive connections cost the conn struct only (nginx: ~0.5 KiB)."""
    assert lib.pf_conn_size() <= 512
    socks = []
    for _ in range(30):
        c = srv.connect()
        c.sendall(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        c.settimeout(5)
        got = b""
        while not got.endswith(b"A" * 10 + b"\n"):
            got += c.recv(4096)
        socks.append(c)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        st = srv.w.stats()
        if st["idle"] >= 30:
            break
        time.sleep(0.02)
    st = srv.w.stats()
    assert st["idle"] >= 30
    assert st["buffers_total"] - st["buffers_free"] == 0
    for c in socks:
        c.close()


def test_large_client_header_buffers(srv):
    """4 x 8k as nginx: 20 KiB of headers is served, 40 KiB gets the 494 page (a 400)."""
    cookies = "".join(f"Cookie: c{i}={'v' * 7000}\r\n" for i in range(3)).encode()
    s = srv.connect()
    s.sendall(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n" + cookies + b"Connection: close\r\n\r\n")
    rs = parse_responses(read_all(s))
    assert rs[0].status == 200
    cookies = "".join(f"Cookie: c{i}={'v' * 7000}\r\n" for i in range(6)).encode()
    s = srv.connect()
    s.sendall(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n" + cookies + b"\r\n")
    rs = parse_responses(read_all(s))
    assert rs[0].status == 400 and b"Request Header Or Cookie Too Large" in rs[0].body


def test_expect_continue_body_is_drained(srv):
    s = srv.connect()
    s.sendall(b"POST /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    s.settimeout(5)
    assert s.recv(25) == b"HTTP/1.1 100 Continue\r\n\r\n"
    s.sendall(b"bodyGET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    rs = parse_responses(read_all(s))
    assert [r.status for r in rs] == [405, 200]


def test_pool_exhaustion_pauses_accept_then_resumes(root):
    """worker_connections 4: a 5th client waits in the backlog and is served once one closes."""
    s = InProc(site(root), max_connections=4)
    try:
        held = []
        for _ in range(4):
            c = s.connect()
            c.sendall(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
            c.settimeout(5)
            assert c.recv(4096).startswith(b"HTTP/1.1 200")
            held.append(c)
        late = s.connect()
        late.sendall(b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        held.pop().close()
        assert read_all(late, timeout=10).startswith(b"HTTP/1.1 200")
        assert "worker_connections are not enough" in s.errors()
        for c in held:
            c.close()
    finally:
        s.close()


def test_keepalive_header_timeout(root):
    s = InProc(site(root, keepalive_header_s=20))
    try:
        c = s.connect()
        c.sendall(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        c.settimeout(5)
        head = c.recv(4096).split(b"\r\n\r\n")[0]
        assert b"\r\nConnection: keep-alive\r\nKeep-Alive: timeout=20" in head
        c.close()
    finally:
        s.close()


def test_worker_publishes_counters_in_shm(root):
    import mmap
    from pyfront.worker.front import read_worker_slot, shm_size
    m = mmap.mmap(-1, shm_size(1))
    s = InProc(site(root), shm=m)
    try:
        c = s.connect()
        c.sendall(b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        read_all(c)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and read_worker_slot(m, 0)["requests"] < 1:
            time.sleep(0.05)
        slot = read_worker_slot(m, 0)
        assert slot["requests"] >= 1 and slot["accepted"] >= 1 and slot["pid"] == os.getpid()
        assert slot["heartbeat_ms"] > 0
    finally:
        s.close()


def test_client_max_body_size_413(root):
    s = InProc(site(root, client_max_body_size=1000))
    try:
        c = s.connect()
        c.sendall(b"POST /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n" + b"x" * 1000)
        rs = parse_responses(read_all(c))
        assert rs[0].status == 413 and rs[0].header("connection") == "close"
        assert b"413 Request Entity Too Large" in rs[0].body
        c = s.connect()                       # within the limit: drained, then the 405 for POST
        c.sendall(b"POST /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nConnection: close\r\n\r\n0123456789")
        assert parse_responses(read_all(c))[0].status == 405
    finally:
        s.close()


@pytest.mark.parametrize("req,status", [
    (b"get /a.txt HTTP/1.1\r\nHost: x\r\n\r\n", 400),          # nginx: methods are upper-case
    (b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 400),           # nginx refuses the asterisk-form
    (b"PROPFIND /a.txt HTTP/1.1\r\nHost: x\r\n\r\n", 405),
    (b"GET http://localhost/a.txt HTTP/1.1\r\nHost: other\r\n\r\n", 200),
    (b"GET /a.txt HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: garbage\r\n\r\n", 200),
])
def test_request_line_rules_as_nginx(srv, req, status):
    s = srv.connect()
    s.sendall(req)
    s.settimeout(5)
    assert s.recv(4096).startswith(b"HTTP/1.1 %d " % status)
    s.close()


def test_half_close_after_request_is_answered_then_closed(root):
    """Request and FIN in one go: answer, then close at once (not at keepalive_timeout)."""
    s = InProc(site(root))                        # keepalive_timeout 75 s
    try:
        for _ in range(5):
            c = s.connect()
            c.sendall(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
            c.shutdown(socket.SHUT_WR)
            c.settimeout(10)
            got, eof = b"", False
            try:
                while True:
                    chunk = c.recv(65536)
                    if not chunk:
                        eof = True
                        break
                    got += chunk
            except socket.timeout:
                pass
            c.close()
            assert got.startswith(b"HTTP/1.1 200") and eof
    finally:
        s.close()


def test_long_request_line_in_error_log_is_truncated_safely(srv):
    long = "/" + "x" * 7000
    s = srv.connect()
    s.sendall(f"GET {long} HTTP/1.1\r\nHost: {'h' * 3000}\r\nConnection: close\r\n\r\n".encode())
    assert read_all(s).startswith(b"HTTP/1.1 404")
    lines = [ln for ln in srv.errors().splitlines() if "xxxxxxxx" in ln]
    assert lines and all(len(ln) < 2048 for ln in lines)
    c = srv.connect()
    c.sendall(b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert read_all(c).startswith(b"HTTP/1.1 200")
