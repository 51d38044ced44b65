"""Hypothesis: arbitrary (mostly near-valid) client requests to a proxied location never
crash the front worker, and whatever reaches the backend is a consistent request."""
from __future__ import annotations

import socket

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.integration.proxy_support import Procs, start_pyfront
from tests.integration.recorder import Recorder


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("client-input")
    procs = Procs()
    rec = Recorder(str(tmp / "rec.sock"), "uwsgi")
    try:
        pf = start_pyfront(procs, tmp, f"location / {{ client_max_body_size 4k; client_body_timeout 1s; "
                                       f"include uwsgi_params; uwsgi_pass unix:{rec.address}; }}")
        yield rec, pf
    finally:
        procs.stop_all()
        rec.close()


@st.composite
def raw_request(draw):
    method = draw(st.sampled_from([b"GET", b"POST", b"PUT", b"HEAD", b"X"]))
    target = draw(st.sampled_from([b"/", b"/a?b=c", b"/%2e%2e/x", b"*", b"http://h/p"]))
    headers = [b"Host: test.local", b"Connection: close"]
    body = draw(st.binary(max_size=300))
    framing = draw(st.sampled_from(["cl", "chunked", "both", "none", "badcl"]))
    if framing in ("cl", "both"):
        headers.append(b"Content-Length: %d" % len(body))
    if framing == "badcl":
        headers.append(b"Content-Length: %d" % (len(body) + draw(st.integers(-5, 5))))
    if framing in ("chunked", "both"):
        headers.append(b"Transfer-Encoding: chunked")
        body = (b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)) if body else b"0\r\n\r\n"
    headers += draw(st.lists(st.sampled_from([b"X-A: 1", b"Cookie: a=b", b"Expect: 100-continue",
                                              b"Connection: close", b"X_U: 1", b"Host: dup"]), max_size=3))
    raw = method + b" " + target + b" HTTP/1.1\r\n" + b"\r\n".join(headers) + b"\r\n\r\n" + body
    if draw(st.booleans()):                                   # mutate a few bytes
        for _ in range(draw(st.integers(1, 3))):
            i = draw(st.integers(0, len(raw) - 1))
            raw = raw[:i] + draw(st.binary(min_size=1, max_size=2)) + raw[i + 1:]
    return raw


def draw_half_close(raw: bytes) -> bool:
    """Half-close after a third of the inputs (a client that stops sending); the rest wait
    for the answer, so valid requests really go through the backend."""
    return sum(raw) % 3 == 0


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=raw_request())
def test_random_requests(setup, raw):
    rec, pf = setup
    s = socket.create_connection(("127.0.0.1", pf.port), timeout=10)
    try:
        s.sendall(raw)
        if draw_half_close(raw):
            s.shutdown(socket.SHUT_WR)
        while True:
            try:
                if not s.recv(65536):
                    break
            except (ConnectionResetError, socket.timeout):
                break
    finally:
        s.close()
    assert pf.proc.p.poll() is None, "the front worker died"
    for env, body in rec.requests:
        assert int(env.get("CONTENT_LENGTH") or 0) == len(body)
        assert len(body) <= 4096
    seen["backend"] += len(rec.requests)
    rec.requests.clear()


seen = {"backend": 0}


def test_some_requests_reached_the_backend(setup):
    assert seen["backend"] > 0
