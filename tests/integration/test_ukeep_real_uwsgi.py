"""A marked packet (modifier2 PF_UWSGI_KEEP, docs/proxy.md) sent to a REAL uWSGI: uWSGI
dispatches on modifier1 only, serves it as usual and closes, so a front that believes it
talks to pyfront's own app degrades to close-delimited responses — never a hang, never a
reused connection (no "Connection: keep-alive" acknowledgement)."""
import socket
import time

import pytest

from pyfront._native import lib
from pyfront.app import packet
from pyfront.config.compile_proxy import AppLink
from tests.conftest import recv_all
from tests.integration.proxy_support import request, response_body, start_pyfront, start_uwsgi, write_echo

pytestmark = pytest.mark.peer


def marked(path: bytes, modifier2: int) -> bytes:
    raw = packet.encode({b"REQUEST_METHOD": b"GET", b"PATH_INFO": path, b"REQUEST_URI": path,
                         b"SERVER_PROTOCOL": b"HTTP/1.1", b"SERVER_NAME": b"t", b"SERVER_PORT": b"80",
                         b"QUERY_STRING": b"", b"CONTENT_LENGTH": b""})
    return raw[:3] + bytes([modifier2]) + raw[4:]


@pytest.mark.parametrize("m2", [lib.PF_UWSGI_KEEP, lib.PF_UWSGI_KEEP_HEAD])
def test_real_uwsgi_serves_a_marked_packet_and_closes(procs, tmp_path, m2):
    sock = str(tmp_path / "u.sock")
    start_uwsgi(procs, tmp_path, sock, write_echo(tmp_path))
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(sock)
    s.sendall(marked(b"/big", m2))
    out = recv_all(s)               # a timeout here would be the hang the marker must never cause
    s.close()
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"connection: keep-alive" not in head.lower()
    assert len(body) == 1048576


def test_front_marking_a_real_uwsgi_degrades_to_close(procs, tmp_path):
    sock = str(tmp_path / "u.sock")
    start_uwsgi(procs, tmp_path, sock, write_echo(tmp_path))
    loc = f"location / {{ include uwsgi_params; uwsgi_pass unix:{sock}; }}"
    pf = start_pyfront(procs, tmp_path, loc, app_links=(AppLink(socket.AF_UNIX, sock, 1, 60000),))
    t0 = time.monotonic()
    for i in range(30):
        raw = request(pf.port, b"GET /big?%d HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n" % (1000 + i))
        assert raw.startswith(b"HTTP/1.1 200 OK") and response_body(raw) == b"x" * (1000 + i)
    assert time.monotonic() - t0 < 30
    assert "[error]" not in pf.error_log()
