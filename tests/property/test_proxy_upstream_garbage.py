"""Hypothesis: whatever an upstream answers (valid, truncated, garbage, CGI-style), the
front worker never crashes and the client gets a well-formed response or a clean close."""
from __future__ import annotations

import re
import socket

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.integration.proxy_support import Procs, start_pyfront
from tests.integration.recorder import Recorder

# no peer program needed: runs under `make test-asan` with the ASan front worker too


@pytest.fixture(scope="module", params=["uwsgi", "http"])
def setup(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("garbage-" + request.param)
    procs = Procs()
    if request.param == "uwsgi":
        rec = Recorder(str(tmp / "rec.sock"), "uwsgi")
        loc = (f"location / {{ include uwsgi_params; uwsgi_read_timeout 2s; uwsgi_buffer_size 4k; "
               f"uwsgi_pass unix:{rec.address}; }}")
    else:
        rec = Recorder(None, "http")
        loc = f"location / {{ proxy_read_timeout 2s; proxy_pass http://{rec.address}; }}"
    rec.close_after = True
    try:
        pf = start_pyfront(procs, tmp, loc)
        yield rec, pf
    finally:
        procs.stop_all()
        rec.close()


token = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-", min_size=1, max_size=12)
value = st.binary(max_size=40).map(lambda b: bytes(c for c in b if c not in b"\r\n"))


@st.composite
def valid_response(draw):
    status = draw(st.integers(100, 999))
    body = draw(st.binary(max_size=3000))
    framing = draw(st.sampled_from(["cl", "chunked", "close", "cgi", "cl-wrong"]))
    headers = draw(st.lists(st.tuples(token, value), max_size=6))
    head = b"" if framing == "cgi" else b"HTTP/1.%d %d %s\r\n" % (draw(st.integers(0, 1)), status, b"X")
    if framing == "cgi":
        head += b"Status: %d Y\r\n" % status
    for k, v in headers:
        if k.lower() in ("content-length", "transfer-encoding"):
            continue
        head += k.encode() + b": " + v + b"\r\n"
    if framing == "cl":
        head += b"Content-Length: %d\r\n" % len(body)
    elif framing == "cl-wrong":
        head += b"Content-Length: %d\r\n" % (len(body) + draw(st.integers(1, 100)))
    elif framing == "chunked":
        head += b"Transfer-Encoding: chunked\r\n"
        cut = draw(st.integers(1, 500))
        body = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + cut]), body[i:i + cut]) for i in range(0, len(body), cut))
        body += b"0\r\n\r\n"
    return head + b"\r\n" + body


responses = st.one_of(
    valid_response(),
    valid_response().flatmap(lambda r: st.integers(0, len(r)).map(lambda n: r[:n])),     # truncated
    st.binary(max_size=2000),                                                              # garbage
    valid_response().flatmap(lambda r: st.tuples(st.integers(0, len(r)), st.binary(min_size=1, max_size=20))
                             .map(lambda t: r[:t[0]] + t[1] + r[t[0]:]))                   # corrupted
)


def exchange(port: int) -> bytes:
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    s.sendall(b"GET /x HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n")
    out = b""
    while True:
        try:
            d = s.recv(65536)
        except ConnectionResetError:
            break
        if not d:
            break
        out += d
    s.close()
    return out


def check_well_formed(out: bytes) -> None:
    if out == b"":
        return                                              # a clean close
    head, sep, body = out.partition(b"\r\n\r\n")
    assert sep, out[:300]
    lines = head.split(b"\r\n")
    assert re.fullmatch(rb"HTTP/1\.1 \d{3}( [^\r\n]*)?", lines[0]), lines[0]
    for ln in lines[1:]:
        assert re.fullmatch(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+: [^\r\n]*", ln), ln
    m = re.search(rb"\r\nContent-Length: (\d+)", b"\r\n" + head)
    if m:
        assert len(body) <= int(m.group(1))                # shorter only when the upstream broke off
    if b"Transfer-Encoding: chunked" in head:
        rest = body
        while rest:                                         # a valid chunked prefix
            line, sep, rest = rest.partition(b"\r\n")
            assert re.fullmatch(rb"[0-9a-f]+", line), line
            n = int(line, 16)
            if n == 0:
                assert rest == b"\r\n"
                break
            assert len(rest) >= min(n + 2, len(rest))
            rest = rest[n + 2:]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(resp=responses)
def test_any_upstream_response(setup, resp):
    rec, pf = setup
    rec.response = resp
    out = exchange(pf.port)
    check_well_formed(out)
    assert pf.proc.p.poll() is None, "the front worker died"


def test_worker_still_serves_after_the_storm(setup):
    rec, pf = setup
    rec.response = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    out = exchange(pf.port)
    assert out.startswith(b"HTTP/1.1 200 OK") and out.endswith(b"hello")
