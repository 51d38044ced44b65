"""http-socket mode: the workers speak HTTP/1.1 (keep-alive, chunked both ways, pipelining)."""
import hashlib
import json
import socket

import pytest

from tests.conftest import free_port
from tests.integration.app_support import start_app, write_test_app


@pytest.fixture
def app(procs, tmp_path):
    port = free_port()
    a = start_app(procs, tmp_path, f"""
        http-socket = 127.0.0.1:{port}
        wsgi-file = {write_test_app(tmp_path)}
        processes = 1
        threads = 2
        add-header = X-Served-By: pyfront-test
    """, f"127.0.0.1:{port}")
    a.port = port
    return a


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=15)
        self.buf = b""

    def send(self, data: bytes):
        self.s.sendall(data)

    def _fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError
        self.buf += d

    def response(self, head_request=False):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = [tuple(x.split(": ", 1)) for x in lines[1:]]
        h = {k.lower(): v for k, v in headers}
        body = b""
        if head_request:
            return lines[0], headers, body
        if "content-length" in h:
            n = int(h["content-length"])
            while len(self.buf) < n:
                self._fill()
            body, self.buf = self.buf[:n], self.buf[n:]
        elif h.get("transfer-encoding") == "chunked":
            while True:
                while b"\r\n" not in self.buf:
                    self._fill()
                size_line, self.buf = self.buf.split(b"\r\n", 1)
                size = int(size_line, 16)
                while len(self.buf) < size + 2:
                    self._fill()
                body += self.buf[:size]
                self.buf = self.buf[size + 2:]
                if size == 0:
                    break
        else:
            try:
                while True:
                    self._fill()
            except EOFError:
                body, self.buf = self.buf, b""
        return lines[0], headers, body

    def closed(self) -> bool:
        try:
            return self.s.recv(1) == b""
        except ConnectionResetError:
            return True


def test_keep_alive_many_requests_one_connection(app):
    c = Conn(app.port)
    for i in range(20):
        c.send(f"GET /echo?i={i} HTTP/1.1\r\nHost: example.org:8080\r\n\r\n".encode())
        status, headers, body = c.response()
        assert status == "HTTP/1.1 200 OK"
        env = json.loads(body)
        assert env["QUERY_STRING"] == f"i={i}"
        assert env["SERVER_NAME"] == "example.org"
        assert env["SERVER_PORT"] == str(app.port)
        assert env["REMOTE_ADDR"] == "127.0.0.1"
        assert ("X-Served-By", "pyfront-test") in headers


def test_pipelined_requests(app):
    c = Conn(app.port)
    c.send(b"GET /echo?n=1 HTTP/1.1\r\nHost: h\r\n\r\nGET /echo?n=2 HTTP/1.1\r\nHost: h\r\n\r\n"
           b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET /echo?n=3 HTTP/1.1\r\nHost: h\r\n\r\n")
    assert json.loads(c.response()[2])["QUERY_STRING"] == "n=1"
    assert json.loads(c.response()[2])["QUERY_STRING"] == "n=2"
    assert c.response()[2] == f"3 {hashlib.sha256(b'abc').hexdigest()}".encode()
    assert json.loads(c.response()[2])["QUERY_STRING"] == "n=3"


def test_chunked_request_body_then_next_request(app):
    c = Conn(app.port)
    parts = [b"hello ", b"chunked " * 5000, b"world"]
    req = b"POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    req += b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    c.send(req + b"GET /echo?after=1 HTTP/1.1\r\nHost: h\r\n\r\n")
    whole = b"".join(parts)
    assert c.response()[2] == f"{len(whole)} {hashlib.sha256(whole).hexdigest()}".encode()
    assert json.loads(c.response()[2])["QUERY_STRING"] == "after=1"


def test_streaming_response_is_chunked_on_http11_and_close_delimited_on_http10(app, tmp_path):
    flag = tmp_path / "flag"
    flag.write_text("x")
    c = Conn(app.port)
    c.send(f"GET /stream?flag={flag} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
    status, headers, body = c.response()
    assert ("Transfer-Encoding", "chunked") in headers
    assert body == b"first\nsecond saw-flag\n"
    c = Conn(app.port)
    c.send(f"GET /stream?flag={flag} HTTP/1.0\r\n\r\n".encode())
    status, headers, body = c.response()
    assert status.startswith("HTTP/1.0 200") and ("Connection", "close") in headers
    assert body == b"first\nsecond saw-flag\n"


def test_head_has_no_body_and_keeps_connection(app):
    c = Conn(app.port)
    c.send(b"HEAD /cookies HTTP/1.1\r\nHost: h\r\n\r\n")
    status, headers, _ = c.response(head_request=True)
    assert status == "HTTP/1.1 200 OK" and ("Content-Length", "2") in headers
    c.send(b"GET /cookies HTTP/1.1\r\nHost: h\r\n\r\n")
    assert c.response()[2] == b"ok"


def test_expect_100_continue(app):
    c = Conn(app.port)
    c.send(b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    while b"\r\n\r\n" not in c.buf:
        c._fill()
    assert c.buf.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    c.buf = c.buf[len(b"HTTP/1.1 100 Continue\r\n\r\n"):]
    c.send(b"data")
    assert c.response()[2].startswith(b"4 ")


def test_duplicate_headers_joined_and_underscore_headers_dropped(app):
    c = Conn(app.port)
    c.send(b"GET /echo HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nX-A: 2\r\nCookie: a=1\r\nCookie: b=2\r\n"
           b"X_Spoof: evil\r\nContent-Type: text/x\r\n\r\n")
    env = json.loads(c.response()[2])
    assert env["HTTP_X_A"] == "1, 2"
    assert env["HTTP_COOKIE"] == "a=1; b=2"
    assert "HTTP_X_SPOOF" not in env
    assert env["CONTENT_TYPE"] == "text/x" and "HTTP_CONTENT_TYPE" not in env


def test_percent_decoded_path_info_raw_request_uri(app):
    c = Conn(app.port)
    c.send(b"GET /echo%2Fx%20y?q=%20 HTTP/1.1\r\nHost: h\r\n\r\n")
    status, _, body = c.response()
    assert status.startswith("HTTP/1.1 404")      # PATH_INFO is "/echo/x y", not "/echo"
    c.send(b"GET /ech%6F?q=%20 HTTP/1.1\r\nHost: h\r\n\r\n")
    env = json.loads(c.response()[2])
    assert env["PATH_INFO"] == "/echo" and env["REQUEST_URI"] == "/ech%6F?q=%20" and env["QUERY_STRING"] == "q=%20"


def test_errors_and_exc_info(app):
    c = Conn(app.port)
    c.send(b"GET /error HTTP/1.1\r\nHost: h\r\n\r\n")
    status, _, body = c.response()
    assert status == "HTTP/1.1 500 Internal Server Error" and body == b"Internal Server Error"
    c.send(b"GET /exc-after-start HTTP/1.1\r\nHost: h\r\n\r\n")   # same connection still usable
    status, _, body = c.response()
    assert status == "HTTP/1.1 500 Internal Server Error" and body == b"recovered"
    c.send(b"GET /write HTTP/1.1\r\nHost: h\r\n\r\n")
    assert c.response()[2] == b"via-write and-iterable"


def test_bad_request_is_400_and_closed(app):
    c = Conn(app.port)
    c.send(b"GET / HTTP/1.1\r\nHost: h\r\nBad Header\r\n\r\n")
    status, _, _ = c.response()
    assert status.startswith("HTTP/1.1 400")
    assert c.closed()


def test_connection_close_honoured(app):
    c = Conn(app.port)
    c.send(b"GET /cookies HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    status, headers, body = c.response()
    assert ("Connection", "close") in headers and body == b"ok"
    assert c.closed()
