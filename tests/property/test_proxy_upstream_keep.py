"""Hypothesis: on a persistent uwsgi connection to pyfront's own app (the front marks its
packets, docs/proxy.md), whatever the upstream answers — a clean framed response,
garbage, a truncated body, bytes past the end, no acknowledgement — the front never
crashes, the client gets a well-formed response or a clean close, and the connection is
reused only after a complete, framed, acknowledged answer: the next request always gets
its own response, never leftovers of the previous one."""
from __future__ import annotations

import os
import re
import socket
import struct
import threading

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from pyfront._native import lib
from pyfront.config.compile_proxy import AppLink
from tests.conftest import recv_all
from tests.integration.proxy_support import Procs, start_pyfront
from tests.property.test_proxy_upstream_garbage import check_well_formed, exchange

GOOD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: keep-alive\r\nContent-Length: 4\r\n\r\ngood"


class KeepRecorder:
    """A uwsgi peer that keeps its connections: for each packet it records (connection id,
    modifier2) and sends the current scripted response, then reads the next packet."""

    def __init__(self, path: str):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(path)
        self.sock.listen(64)
        self.address = path
        self.response = GOOD
        self.close_after = False
        self.hangup_next = False               # read the next packet, then close without answering
        self.seen: list[tuple[int, int]] = []
        self.lock = threading.Lock()
        self.nconn = 0
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.nconn += 1
            threading.Thread(target=self.serve, args=(c, self.nconn), daemon=True).start()

    @staticmethod
    def exact(c, n, buf):
        while len(buf) < n:
            d = c.recv(65536)
            if not d:
                raise EOFError
            buf += d
        return buf

    def serve(self, c, cid):
        c.settimeout(30)
        try:
            while True:
                buf = self.exact(c, 4, b"")
                size = struct.unpack("<H", buf[1:3])[0]
                buf = self.exact(c, 4 + size, buf)
                cl = re.search(rb"\x0e\x00CONTENT_LENGTH(..)", buf, re.S)
                n = int(buf[cl.end():cl.end() + struct.unpack("<H", cl.group(1))[0]] or b"0") if cl else 0
                self.exact(c, 4 + size + n, buf)
                with self.lock:
                    self.seen.append((cid, buf[3]))
                    resp, close = self.response, self.close_after
                    if self.hangup_next:
                        self.hangup_next = False
                        return
                c.sendall(resp)
                if close:
                    return
        except (EOFError, OSError):
            pass
        finally:
            c.close()

    def close(self):
        self.sock.close()
        if os.path.exists(self.address):
            os.unlink(self.address)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("keep")
    procs = Procs()
    path = str(tmp / "app.sock")
    rec = KeepRecorder(path)
    loc = f"location / {{ include uwsgi_params; uwsgi_read_timeout 1s; uwsgi_buffer_size 4k; uwsgi_pass unix:{path}; }}"
    try:
        pf = start_pyfront(procs, tmp, loc, app_links=(AppLink(socket.AF_UNIX, path, 1, 60000),))
        yield rec, pf
    finally:
        procs.stop_all()
        rec.close()


token = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=12) \
    .filter(lambda t: t.lower() not in ("connection", "status", "location", "upgrade"))
value = st.binary(max_size=40).map(lambda b: bytes(c for c in b if 0x20 < c < 0x7f))   # valid field values


@st.composite
def framed(draw, ack=True):
    """A complete, framed response (Content-Length or chunked) with a body allowed by its status."""
    status = draw(st.sampled_from([200, 201, 301, 404, 500, 503]))
    body = draw(st.binary(max_size=3000))
    head = b"HTTP/1.1 %d X\r\n" % status
    for k, v in draw(st.lists(st.tuples(token, value), max_size=5)):
        if k.lower() in ("content-length", "transfer-encoding") or k.lower().startswith("x-accel"):
            continue
        head += k.encode() + b": " + v + b"\r\n"
    if ack:
        head += b"Connection: keep-alive\r\n"
    if draw(st.booleans()):
        head += b"Content-Length: %d\r\n" % len(body)
        wire = body
    else:
        head += b"Transfer-Encoding: chunked\r\n"
        cut = draw(st.integers(1, 500))
        wire = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + cut]), body[i:i + cut]) for i in range(0, len(body), cut))
        wire += b"0\r\n\r\n"
    return head + b"\r\n" + wire


# (kind, response, the upstream closes after it): only "clean" may be reused
cases = st.one_of(
    framed().map(lambda r: ("clean", r, False)),
    framed().map(lambda r: ("clean-then-closed", r, True)),
    framed(ack=False).map(lambda r: ("no-ack", r, False)),
    st.tuples(framed(), st.binary(min_size=1, max_size=40)).map(lambda t: ("extra", t[0] + t[1], False)),
    framed().flatmap(lambda r: st.integers(0, len(r) - 1).map(lambda n: r[:n]))
            .flatmap(lambda r: st.booleans().map(lambda c: ("truncated", r, c))),
    st.binary(min_size=1, max_size=2000).map(lambda b: ("garbage", b, True)),
    framed().flatmap(lambda r: st.tuples(st.integers(0, len(r)), st.binary(min_size=1, max_size=20))
                     .map(lambda t: ("corrupted", r[:t[0]] + t[1] + r[t[0]:], True))),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=cases)
def test_framed_responses_on_a_kept_connection(setup, case):
    rec, pf = setup
    kind, resp, close_after = case
    with rec.lock:
        rec.response, rec.close_after = resp, close_after
        n0 = len(rec.seen)
    check_well_formed(exchange(pf.port))
    assert pf.proc.p.poll() is None, "the front worker died"
    with rec.lock:
        rec.response, rec.close_after = GOOD, False
    out = exchange(pf.port)                    # the next request gets exactly its own answer
    assert out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"\r\n\r\ngood"), (kind, out[:300])
    with rec.lock:
        seen = rec.seen[n0:]
    assert len(seen) >= 2 and seen[-1][1] == lib.PF_UWSGI_KEEP      # marked packets
    first, second = seen[0][0], seen[-1][0]
    if kind == "clean":
        assert first == second, "a clean framed answer: the connection is reused"
    else:
        assert second != first, f"{kind}: that connection must never be reused"


def test_head_is_marked_and_reused(setup):
    rec, pf = setup
    with rec.lock:
        rec.response, rec.close_after = b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 4\r\n\r\n", False
        n0 = len(rec.seen)
    s = socket.create_connection(("127.0.0.1", pf.port), timeout=15)
    s.sendall(b"HEAD /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    out = recv_all(s)
    s.close()
    assert out.startswith(b"HTTP/1.1 200 OK") and out.endswith(b"\r\n\r\n") and b"Content-Length: 4" in out
    with rec.lock:
        rec.response = GOOD
    assert exchange(pf.port).endswith(b"good")
    with rec.lock:
        seen = rec.seen[n0:]
    assert seen[0][1] == lib.PF_UWSGI_KEEP_HEAD and seen[0][0] == seen[-1][0]


def test_kept_connection_dying_after_the_request_was_read(setup):
    """The app read the request and died (SIGKILL, harakiri): a clean EOF on the kept
    connection. GET is sent again on a new connection (as nginx retries a cached
    connection); POST may have run, so it is not (502, as nginx's non_idempotent rule)."""
    rec, pf = setup
    with rec.lock:
        rec.response, rec.close_after = GOOD, False
    assert exchange(pf.port).endswith(b"good")          # a kept connection is parked now
    for method, body, want in ((b"GET", b"", b"good"), (b"POST", b"abc", None)):
        with rec.lock:
            rec.hangup_next = True
            n0 = len(rec.seen)
        s = socket.create_connection(("127.0.0.1", pf.port), timeout=15)
        s.sendall(method + b" /x HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
                  + body)
        out = recv_all(s)
        s.close()
        with rec.lock:
            seen = rec.seen[n0:]
        if want:
            assert out.startswith(b"HTTP/1.1 200 OK") and out.endswith(want), out[:200]
            assert len(seen) == 2 and seen[0][0] != seen[1][0]      # retried on a new connection
        else:
            assert out.startswith(b"HTTP/1.1 502"), out[:200]
            assert len(seen) == 1
        assert exchange(pf.port).endswith(b"good")      # and the front goes on
