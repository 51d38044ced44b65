"""Bad uwsgi packets are closed cleanly with a log line, and the worker keeps serving."""
import os
import socket
import struct

import pytest

from pyfront.app import packet
from tests.integration.app_support import raw_exchange, start_app, write_test_app

GOOD = packet.encode({b"REQUEST_METHOD": b"GET", b"PATH_INFO": b"/pid", b"REQUEST_URI": b"/pid",
                      b"SERVER_PROTOCOL": b"HTTP/1.1", b"SERVER_NAME": b"t", b"SERVER_PORT": b"80",
                      b"QUERY_STRING": b""})


@pytest.fixture
def app(procs, tmp_path):
    addr = str(tmp_path / "app.sock")
    return start_app(procs, tmp_path, f"""
        socket = {addr}
        wsgi-file = {write_test_app(tmp_path)}
        processes = 1
        threads = 1
        socket-timeout = 2
    """, addr)


def served(app) -> bool:
    return raw_exchange(app.address, GOOD).startswith(b"HTTP/1.1 200 OK\r\n")


def kv(k, v):
    return struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v


@pytest.mark.parametrize("data,needle", [
    (b"\x00\x10", "truncated uwsgi packet: the peer closed after 2 bytes"),
    (b"\x00\x40\x00\x00" + kv(b"A", b"B"), "truncated uwsgi packet"),                    # datasize > sent
    (b"\x00\x04\x00\x00" + b"\x09\x00AB" + b"x" * 20, "length runs past the end"),       # key past the end
    (b"\x00" + struct.pack("<H", 8) + b"\x00" + b"\x01\x00A\x30\x00BCD", "length runs past the end"),
    (b"\x05\x04\x00\x00" + kv(b"", b""), "unsupported uwsgi modifier1 5"),
    (b"\x00\xff\xff\x00" + b"z" * 100, "invalid request block size: 65535 (max 4096)"),
    (os.urandom(65536).replace(b"G", b"g").replace(b"P", b"p").replace(b"H", b"h")
     .replace(b"D", b"d").replace(b"O", b"o").replace(b"C", b"c").replace(b"T", b"t"), "...skip"),
])
def test_bad_packet_closed_and_logged(app, data, needle):
    out = raw_exchange(app.address, data)
    assert not out.startswith(b"HTTP/1.1 200")
    app.wait_log(needle)
    assert served(app)


def test_http_sent_to_uwsgi_socket_gets_a_hint(app):
    out = raw_exchange(app.address, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.0 400 Bad Request")
    assert b"uwsgi_pass" in out
    log = app.wait_log("invalid request block size: 21573")
    assert "HTTP request sent to the uwsgi socket" in log and "http-socket" in log
    assert served(app)


def test_client_that_never_finishes_times_out(app):
    s = socket.socket(socket.AF_UNIX)
    s.connect(app.address)
    s.sendall(b"\x00\x40\x00")
    s.settimeout(10)
    assert s.recv(100) == b""          # closed by the worker after socket-timeout
    s.close()
    app.wait_log("timed out after 2s reading a uwsgi packet (3 bytes read)")
    assert served(app)


def test_modifier30_strips_script_name(app):
    pkt = packet.encode({b"REQUEST_METHOD": b"GET", b"SCRIPT_NAME": b"/mnt", b"PATH_INFO": b"/mnt/pid",
                         b"SERVER_PROTOCOL": b"HTTP/1.0", b"SERVER_NAME": b"t", b"SERVER_PORT": b"80"}, modifier1=30)
    out = raw_exchange(app.address, pkt)
    assert out.startswith(b"HTTP/1.0 200 OK\r\n")


def test_body_sent_with_packet_and_unread_body_is_drained(app):
    body = b"x" * 200_000
    pkt = packet.encode({b"REQUEST_METHOD": b"POST", b"PATH_INFO": b"/pid", b"CONTENT_LENGTH": str(len(body)).encode(),
                         b"SERVER_PROTOCOL": b"HTTP/1.1", b"SERVER_NAME": b"t", b"SERVER_PORT": b"80"})
    out = raw_exchange(app.address, pkt + body)
    assert out.startswith(b"HTTP/1.1 200 OK\r\n")
    pkt = packet.encode({b"REQUEST_METHOD": b"POST", b"PATH_INFO": b"/upload", b"CONTENT_LENGTH": b"5",
                         b"SERVER_PROTOCOL": b"HTTP/1.1", b"SERVER_NAME": b"t", b"SERVER_PORT": b"80"})
    out = raw_exchange(app.address, pkt + b"hello and bytes past CONTENT_LENGTH")
    assert out.endswith(b"5 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")


def test_repeated_headers_from_old_nginx_are_joined(app):
    import json
    corpus = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "corpus", "uwsgi",
                          "repeated-headers.uwsgi")
    p = packet.decode(open(corpus, "rb").read())
    vars_ = [(k, b"/echo" if k in (b"PATH_INFO", b"REQUEST_URI") else v) for k, v in p.vars]
    out = raw_exchange(app.address, packet.encode(vars_))
    env = json.loads(out.split(b"\r\n\r\n", 1)[1])
    assert env["HTTP_COOKIE"] == "a=1; b=2"
    assert env["HTTP_ACCEPT"] == "a, b"
