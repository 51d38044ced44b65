"""proxy_pass http:// through pyfront's front: request line and headers as nginx sends
them, URI replacement, upstream keep-alive with `keepalive N`, X-Forwarded-For."""
from __future__ import annotations

import http.client
import json
import socket

from tests.integration.app_support import http_request, start_app
from tests.integration.proxy_support import request, response_body, start_pyfront, write_echo
from tests.integration.recorder import Recorder


def test_default_headers_and_request_line(procs, tmp_path):
    rec = Recorder(None, "http")
    try:
        pf = start_pyfront(procs, tmp_path, f"""
            location / {{ proxy_pass http://{rec.address};
                          proxy_set_header X-Real-IP $remote_addr;
                          proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                          proxy_set_header Host $proxy_host; }}""")
        out = request(pf.port, b"GET /a/b?c=1 HTTP/1.1\r\nHost: test.local\r\nX-Forwarded-For: 1.2.3.4\r\n"
                               b"Connection: close\r\nTE: trailers\r\nUser-Agent: ua\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 200 OK") and response_body(out) == b"ok"
        (hdrs, body), = rec.requests
        assert hdrs["_line"] == "GET /a/b?c=1 HTTP/1.0"
        assert hdrs["host"] == rec.address and hdrs["connection"] == "close"
        assert hdrs["x-real-ip"] == "127.0.0.1" and hdrs["x-forwarded-for"] == "1.2.3.4, 127.0.0.1"
        assert hdrs["user-agent"] == "ua" and "te" not in hdrs
        # proxy hides the upstream's Date/Server and sends its own
        assert b"Server: pyfront" in out
    finally:
        rec.close()


def test_uri_part_replaces_the_location_prefix(procs, tmp_path):
    rec = Recorder(None, "http")
    try:
        pf = start_pyfront(procs, tmp_path, f"location /api/ {{ proxy_pass http://{rec.address}/v1/; }}")
        request(pf.port, b"GET /api/users/7?x=y HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n")
        assert rec.requests[0][0]["_line"] == "GET /v1/users/7?x=y HTTP/1.0"
    finally:
        rec.close()


def test_upstream_keepalive_reuses_connections(procs, tmp_path):
    rec = Recorder(None, "http")
    try:
        pf = start_pyfront(procs, tmp_path, """
            location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }""",
                           extra_http=f"upstream backend {{ server {rec.address}; keepalive 4; }}")
        conn = http.client.HTTPConnection("127.0.0.1", pf.port, timeout=10)
        for i in range(50):
            conn.request("GET", f"/k{i}", headers={"Host": "test.local"})
            r = conn.getresponse()
            assert r.status == 200 and r.read() == b"ok"
        assert len(rec.requests) == 50
        assert rec.requests[0][0]["_line"] == "GET /k0 HTTP/1.1"
        assert rec.connections < 5, rec.connections
    finally:
        rec.close()


def test_post_body_through_proxy_pass_to_pyfront_app(procs, tmp_path):
    echo = write_echo(tmp_path)
    port = __import__("tests.conftest", fromlist=["free_port"]).free_port()
    start_app(procs, tmp_path, f"http-socket = 127.0.0.1:{port}\nwsgi-file = {echo}\nprocesses = 1\n",
              f"127.0.0.1:{port}")
    pf = start_pyfront(procs, tmp_path, f"location / {{ proxy_pass http://127.0.0.1:{port}; }}")
    chunks = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    out = request(pf.port, b"POST /p HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\n"
                           b"Connection: close\r\n\r\n" + chunks)
    env = json.loads(response_body(out))
    assert env["_body_len"] == 11 and env["CONTENT_LENGTH"] == "11"
    assert env["HTTP_HOST"] == f"127.0.0.1:{port}"
    status, _, body = http_request(pf.port, "GET", "/q?z=1", headers={"Host": "test.local"})
    assert status == 200 and json.loads(body)["QUERY_STRING"] == "z=1"


def test_proxy_redirect_default_rewrites_location(procs, tmp_path):
    rec = Recorder(None, "http")
    try:
        rec.response = (b"HTTP/1.1 302 Found\r\nLocation: http://%s/v1/login?next=/\r\nContent-Length: 0\r\n\r\n"
                        % rec.address.encode())
        pf = start_pyfront(procs, tmp_path, f"""
            location /api/ {{ proxy_pass http://{rec.address}/v1/; }}
            location /raw/ {{ proxy_redirect off; proxy_pass http://{rec.address}/v1/; }}""")
        out = request(pf.port, b"GET /api/x HTTP/1.1\r\nHost: site.example\r\nConnection: close\r\n\r\n")
        assert f"\r\nLocation: http://site.example:{pf.port}/api/login?next=/\r\n".encode() in out, out
        out = request(pf.port, b"GET /raw/x HTTP/1.1\r\nHost: site.example\r\nConnection: close\r\n\r\n")
        assert f"\r\nLocation: http://{rec.address}/v1/login?next=/\r\n".encode() in out, out
        rec.response = b"HTTP/1.1 302 Found\r\nLocation: https://elsewhere/\r\nContent-Length: 0\r\n\r\n"
        out = request(pf.port, b"GET /api/x HTTP/1.1\r\nHost: site.example\r\nConnection: close\r\n\r\n")
        assert b"\r\nLocation: https://elsewhere/\r\n" in out
    finally:
        rec.close()


def _upgrade_backend():
    """Answers an Upgrade request with 101, then echoes bytes upper-cased until EOF."""
    import threading
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    seen = []

    def serve():
        c, _ = srv.accept()
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += c.recv(4096)
        seen.append(buf)
        head, _, rest = buf.partition(b"\r\n\r\n")
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Accept: x\r\n\r\n")
        data = rest
        while True:
            if data:
                c.sendall(data.upper())
            data = c.recv(4096)
            if not data:
                break
        c.close()
    threading.Thread(target=serve, daemon=True).start()
    return srv, seen


def test_websocket_upgrade_tunnel(procs, tmp_path):
    srv, seen = _upgrade_backend()
    port = srv.getsockname()[1]
    try:
        pf = start_pyfront(procs, tmp_path, f"""
            location /ws {{ proxy_pass http://127.0.0.1:{port}; proxy_http_version 1.1;
                            proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade"; }}""")
        s = socket.create_connection(("127.0.0.1", pf.port), timeout=10)
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: test.local\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: k\r\nSec-WebSocket-Version: 13\r\n\r\nearly")
        got = b""
        while b"EARLY" not in got:
            d = s.recv(4096)
            assert d, got
            got += d
        head = got.split(b"\r\n\r\n")[0]
        assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
        assert b"\r\nUpgrade: websocket" in head and b"\r\nConnection: upgrade" in head
        assert b"upgrade: websocket" in seen[0].lower() and b"connection: upgrade" in seen[0].lower()
        for msg in (b"hello", b"second message"):
            s.sendall(msg)
            want, got = msg.upper(), b""
            while len(got) < len(want):
                got += s.recv(4096)
            assert got == want
        s.shutdown(socket.SHUT_WR)
        assert s.recv(4096) == b""                     # the tunnel closes when one side is done
        s.close()
    finally:
        srv.close()


def test_unexpected_101_is_502(procs, tmp_path):
    rec = Recorder(None, "http", response=b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n")
    try:
        pf = start_pyfront(procs, tmp_path, f"location / {{ proxy_pass http://{rec.address}; }}")
        out = request(pf.port, b"GET / HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 502")
    finally:
        rec.close()
