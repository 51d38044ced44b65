"""Arbitrary bytes at the C worker never crash it: every exchange ends in well-formed
responses and/or a close, and the worker keeps serving (also run under ASan)."""
from __future__ import annotations

import socket

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.c.inproc import InProc, site
from tests.integration.httpraw import request

PIECES = [b"GET ", b"HEAD ", b"POST ", b"/", b"/a.txt", b"/../", b"%2e%2e", b"%00", b"?q=1", b" HTTP/1.1",
          b" HTTP/1.0", b"\r\n", b"\n", b"\r", b"Host: x", b"Content-Length: 3", b"Transfer-Encoding: chunked",
          b"Range: bytes=0-2", b"If-None-Match: *", b"Connection: close", b"abc", b"0\r\n\r\n", b"3\r\nabc\r\n",
          b": ", b" ", b"\x00", b"\xff", b"Accept-Encoding: gzip", b"\r\n\r\n"]


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    r = tmp_path_factory.mktemp("root")
    (r / "a.txt").write_bytes(b"abcdef\n")
    (r / "index.html").write_bytes(b"home\n")
    s = InProc(site(str(r), gzip=True, gzip_types=("text/plain",), client_header_timeout_ms=2000))
    yield s
    s.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=12)), max_size=24))
def test_random_input_is_answered_or_closed(srv, parts):
    data = b"".join(parts)
    s = srv.connect(timeout=5)
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except (ConnectionResetError, BrokenPipeError):
        got = b""
    finally:
        s.close()
    if got:
        assert got.startswith(b"HTTP/1.1 "), got[:80]
    assert request(srv.port, "GET", "/a.txt").status == 200      # still serving
