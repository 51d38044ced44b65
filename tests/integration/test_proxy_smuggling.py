"""Request smuggling through pyfront's front: each classic attack sent raw; the backend
(a recorder speaking uwsgi, or HTTP for proxy_pass) must see exactly the requests it should."""
from __future__ import annotations

import socket
import time

import pytest

from tests.integration.proxy_support import request, start_pyfront
from tests.integration.recorder import Recorder

H = b"Host: test.local\r\n"

# (name, raw bytes, statuses expected in order, bodies the backend must see in order)
ATTACKS = [
    ("CL.TE", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 13\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nSMUGGLED",
     [400], []),
    ("TE.CL", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"8\r\nSMUGGLED\r\n0\r\n\r\n", [400], []),
    ("TE.TE xchunked", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
     [501], []),
    ("TE.TE space before colon", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n"
                                 b"5\r\nhello\r\n0\r\n\r\n", [400], []),
    ("TE.TE duplicate", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n"
                        b"5\r\nhello\r\n0\r\n\r\n", [400, 501], []),
    ("TE.TE obs-fold", b"POST / HTTP/1.1\r\n" + H + b"X: y\r\n Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"
                       b"5\r\nhello\r\n0\r\n\r\n", [400], []),
    ("TE.TE bare LF", b"POST / HTTP/1.1\r\n" + H + b"X: y\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"
                      b"5\r\nhello\r\n0\r\n\r\n", [400], []),
    ("TE.TE chunked,identity", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, identity\r\n\r\n"
                               b"5\r\nhello\r\n0\r\n\r\n", [400, 501], []),
    ("TE on HTTP/1.0", b"POST / HTTP/1.0\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
     [400], []),
    ("duplicate CL", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", [400], []),
    ("CL with sign", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: +5\r\n\r\nhello", [400], []),
    ("bad chunk size", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5x\r\nhello\r\n0\r\n\r\n",
     [400], []),
    ("chunk size overflow", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
                            b"ffffffffffffffffff1\r\nhello\r\n0\r\n\r\n", [400], []),
    ("chunk without CRLF", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
     [400], []),
    ("chunk size bare LF", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
     [400], []),
    # legitimate: the bytes after a complete chunked body are the next request, not part of it
    ("chunked then pipelined", b"POST /a HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
                               b"POST /b HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nConnection: close\r\n\r\nabc",
     [200, 200], [b"hello", b"abc"]),
    ("CL body then pipelined GET", b"POST /a HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n\r\nhelloGET /x HTTP/1.1\r\n" + H
                                   + b"Connection: close\r\n\r\n", [200, 200], [b"hello", b""]),
]


@pytest.fixture(params=["uwsgi", "http"])
def backend(request, procs, tmp_path):
    if request.param == "uwsgi":
        rec = Recorder(str(tmp_path / "rec.sock"), "uwsgi")
        loc = f"location / {{ include uwsgi_params; uwsgi_pass unix:{rec.address}; }}"
    else:
        rec = Recorder(None, "http")
        loc = f"location / {{ proxy_pass http://{rec.address}; }}"
    pf = start_pyfront(procs, tmp_path, loc)
    yield rec, pf
    rec.close()


def statuses(out: bytes) -> list[int]:
    res, i = [], 0
    while True:
        j = out.find(b"HTTP/1.1 ", i)
        if j < 0:
            return res
        res.append(int(out[j + 9:j + 12]))
        i = j + 12


@pytest.mark.parametrize("name,raw,want_status,want_bodies", ATTACKS, ids=[a[0] for a in ATTACKS])
def test_attack(backend, name, raw, want_status, want_bodies):
    rec, pf = backend
    out = request(pf.port, raw, timeout=10)
    got = statuses(out)
    assert got and got[0] in want_status and len(got) == max(1, len(want_bodies)), (got, out[:400])
    assert [b for _, b in rec.requests] == want_bodies, rec.requests
    for hdrs, _ in rec.requests:
        assert "transfer-encoding" not in {k.lower() for k in hdrs} or rec.mode == "uwsgi"


def test_nothing_reaches_the_backend_before_the_body_is_complete(backend):
    rec, pf = backend
    s = socket.create_connection(("127.0.0.1", pf.port), timeout=10)
    s.sendall(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
    time.sleep(0.3)                         # give a (wrong) early forwarder the chance to act
    assert rec.requests == []
    s.sendall(b"5x\r\n")                    # then the body turns out invalid
    out = s.recv(65536)
    s.close()
    assert out.startswith(b"HTTP/1.1 400")
    assert rec.requests == []
