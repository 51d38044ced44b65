"""pyfront's front -> uwsgi_pass -> a real uWSGI and `pyfront app`: the scenarios a real
nginx front passes (issue 4), the environ compared field by field with a real nginx's."""
from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import time

import pytest

from tests.conftest import need_peer
from tests.integration.app_support import http_request, start_app, start_nginx
from tests.integration.proxy_support import Procs, request, response_body, start_pyfront, start_uwsgi, write_echo

LOCATIONS = """
    location / {{ include uwsgi_params; uwsgi_pass unix:{sock}; }}
    location /timeout/ {{ include uwsgi_params; uwsgi_read_timeout 1s; uwsgi_pass unix:{sock}; }}
    location /small/ {{ client_max_body_size 1m; include uwsgi_params; uwsgi_pass unix:{sock}; }}
    location /down/ {{ include uwsgi_params; uwsgi_pass unix:{down}; }}
    location = /basic_status {{ stub_status; }}
"""


class Stack:
    pass


@pytest.fixture(scope="module", params=["pyfront-app", "uwsgi"])
def stack(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(request.param)
    procs = Procs()
    st = Stack()
    st.tmp = tmp
    st.kind = request.param
    echo = write_echo(tmp)
    st.sock = str(tmp / "app.sock")
    try:
        if request.param == "uwsgi":
            start_uwsgi(procs, tmp, st.sock, echo)
        else:
            start_app(procs, tmp, f"socket = {st.sock}\nwsgi-file = {echo}\nprocesses = 1\nthreads = 4\n"
                                  f"buffer-size = 32768\n", st.sock)
        st.locations = LOCATIONS.format(sock=st.sock, down=str(tmp / "nothing.sock"))
        st.front = start_pyfront(procs, tmp, st.locations)
        st.procs = procs
        yield st
    finally:
        procs.stop_all()


def get(st, method, path, headers=None, body=None, port=None):
    h = {"Host": "test.local"}
    h.update(headers or {})
    return http_request(port or st.front.port, method, path, headers=h, body=body)


def environ(st, method, path, headers=None, body=None, port=None):
    status, hdrs, data = get(st, method, path, headers, body, port)
    assert status == 200, (status, data[:500])
    return json.loads(data)


# ---------------------------------------------------------------- environ vs real nginx

# keys that differ by construction: ports, the per-front prefix, the app process, and the
# request id pyfront passes by default (docs/differences.md; nginx only with a uwsgi_param)
DIFFERENT = {"REMOTE_PORT", "SERVER_PORT", "DOCUMENT_ROOT", "_pid", "HTTP_X_REQUEST_ID"}


@pytest.fixture(scope="module")
def nginx_front(stack, tmp_path_factory):
    need_peer("nginx")
    tmp = tmp_path_factory.mktemp("nginx-" + stack.kind)

    class P:
        def __call__(self, argv, **kw):
            return stack.procs(argv, **kw)
    return start_nginx(P(), tmp, stack.locations)


@pytest.mark.peer
@pytest.mark.parametrize("method,path,headers,body", [
    ("GET", "/x/y%20z?a=1&b=%2F", {"User-Agent": "t/1", "Accept": "*/*", "X-Custom-Thing": "v"}, None),
    ("POST", "/form", {"Content-Type": "application/x-www-form-urlencoded"}, b"a=1&b=2"),
    ("PUT", "/a/../b/./c", {"Cookie": "k=v", "Accept-Language": "en"}, b"x" * 5000),
    ("DELETE", "/", {"X-Forwarded-For": "10.0.0.1"}, None),
])
def test_environ_matches_real_nginx(stack, nginx_front, method, path, headers, body):
    ours = environ(stack, method, path, headers, body)
    theirs = environ(stack, method, path, headers, body, port=nginx_front.port)
    for k in DIFFERENT:
        ours.pop(k, None), theirs.pop(k, None)
    keys = set(ours) | set(theirs)
    diff = {k: (ours.get(k), theirs.get(k)) for k in keys if ours.get(k) != theirs.get(k)}
    assert diff == {}


# ---------------------------------------------------------------- bodies

def test_post_10mib_sha256(stack):
    data = os.urandom(10 * 1024 * 1024)
    env = environ(stack, "POST", "/upload", {"Content-Type": "application/octet-stream"}, data)
    assert env["_body_len"] == len(data)
    assert env["_body_sha256"] == hashlib.sha256(data).hexdigest()
    assert env["CONTENT_LENGTH"] == str(len(data))


def test_chunked_upload(stack):
    payload = os.urandom(300000)
    chunks = [payload[i:i + 7000] for i in range(0, len(payload), 7000)]
    raw = (b"POST /chunked HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
           + b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n")
    out = request(stack.front.port, raw)
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    env = json.loads(body)
    assert env["_body_sha256"] == hashlib.sha256(payload).hexdigest()
    assert env["CONTENT_LENGTH"] == str(len(payload))      # decoded length, as nginx sets it


def test_streaming_first_chunk_arrives_before_the_app_finishes(stack, tmp_path):
    flag = str(tmp_path / "go")
    s = socket.create_connection(("127.0.0.1", stack.front.port), timeout=20)
    s.sendall(f"GET /stream?{flag} HTTP/1.1\r\nHost: test.local\r\n\r\n".encode())
    got = b""
    while b"first\n" not in got:            # the app is blocked until the flag exists
        chunk = s.recv(4096)
        assert chunk, got
        got += chunk
    assert b"second" not in got
    assert b"Transfer-Encoding: chunked" in got
    open(flag, "w").close()
    while not got.endswith(b"0\r\n\r\n"):
        chunk = s.recv(4096)
        assert chunk, got
        got += chunk
    s.close()
    body = got.split(b"\r\n\r\n", 1)[1]
    assert body == b"6\r\nfirst\n\r\n7\r\nsecond\n\r\n0\r\n\r\n"


def test_http10_client_gets_close_delimited_body(stack, tmp_path):
    flag = str(tmp_path / "go")
    open(flag, "w").close()
    out = request(stack.front.port, f"GET /stream?{flag} HTTP/1.0\r\nHost: test.local\r\n\r\n".encode())
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"Connection: close" in head and b"chunked" not in head
    assert body == b"first\nsecond\n"


def test_multiple_set_cookie_and_hidden_x_accel(stack):
    out = request(stack.front.port, b"GET /cookies HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n")
    head = out.split(b"\r\n\r\n")[0].decode()
    assert re.findall(r"Set-Cookie: (.*)\r", head + "\r") == ["a=1; Path=/", "b=2; Path=/"]
    assert "X-Accel-Buffering" not in head
    assert response_body(out) == b"cookies"


def test_big_download(stack):
    status, _, body = get(stack, "GET", "/big?5000000")
    assert status == 200 and len(body) == 5000000 and body == b"x" * 5000000


# ---------------------------------------------------------------- connections

def test_100_keepalive_requests_on_one_connection(stack):
    s = socket.create_connection(("127.0.0.1", stack.front.port), timeout=10)
    f = s.makefile("rb")
    pids = set()
    for i in range(100):
        s.sendall(f"GET /k{i} HTTP/1.1\r\nHost: test.local\r\n\r\n".encode())
        status = f.readline()
        assert status.startswith(b"HTTP/1.1 200"), status
        length = None
        while True:
            line = f.readline()
            if line == b"\r\n":
                break
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
            assert not line.lower().startswith(b"connection: close")
        env = json.loads(f.read(length))
        assert env["PATH_INFO"] == f"/k{i}"
        pids.add(env["_pid"])
    s.close()


def test_3_pipelined(stack):
    raw = b"".join(f"GET /p{i} HTTP/1.1\r\nHost: test.local\r\n\r\n".encode() for i in range(2))
    raw += b"GET /p2 HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n"
    out = request(stack.front.port, raw)
    assert out.count(b"HTTP/1.1 200 OK") == 3
    assert [json.loads(m)["PATH_INFO"] for m in re.findall(rb"\r\n\r\n(\{.*?\})(?=HTTP/|$)", out)] \
        == ["/p0", "/p1", "/p2"]


def test_head_has_no_body(stack):
    out = request(stack.front.port, b"HEAD /h HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and body == b""


@pytest.mark.parametrize("code", ["204", "304"])
def test_no_body_statuses(stack, code):
    out = request(stack.front.port, f"GET /status/{code} HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n".encode())
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {code}".encode()) and body == b""
    assert b"Transfer-Encoding" not in head


def test_upstream_status_and_reason_passed(stack):
    out = request(stack.front.port, b"GET /status/418 HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 418 Whatever\r\n") and response_body(out) == b"status 418"


# ---------------------------------------------------------------- errors

def test_backend_down_is_nginx_502_and_log_line(stack):
    status, hdrs, body = get(stack, "GET", "/down/x?q=1")
    assert status == 502
    assert b"<head><title>502 Bad Gateway</title></head>" in body
    sock = os.path.join(str(stack.tmp), "nothing.sock")
    pat = (rf'\[error\] \d+#0: \*\d+ connect\(\) to unix:{re.escape(sock)} failed \(2: No such file or directory\) '
           rf'while connecting to upstream, client: 127\.0\.0\.1, server: test\.local, request: "GET /down/x\?q=1 '
           rf'HTTP/1\.1", upstream: "uwsgi://unix:{re.escape(sock)}:", host: "test\.local"')
    assert re.search(pat, stack.front.error_log()), stack.front.error_log()[-2000:]


def test_slow_backend_is_504_after_read_timeout(stack):
    status, _, body = get(stack, "GET", "/timeout/slow?3")
    assert status == 504 and b"504 Gateway Time-out" in body
    assert "upstream timed out (110: Connection timed out) while reading response header from upstream" \
        in stack.front.error_log()


def test_2mib_body_over_1m_limit_is_413(stack):
    status, hdrs, body = get(stack, "POST", "/small/up", body=b"z" * (2 * 1024 * 1024))
    assert status == 413 and b"413 Request Entity Too Large" in body
    assert "client intended to send too large body: 2097152 bytes" in stack.front.error_log()


def test_chunked_body_over_limit_is_413(stack):
    chunk = b"y" * 100000
    raw = (b"POST /small/c HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\n\r\n"
           + b"%x\r\n%s\r\n" % (len(chunk), chunk) * 12 + b"0\r\n\r\n")
    out = request(stack.front.port, raw)
    assert out.startswith(b"HTTP/1.1 413")


def test_stub_status(stack):
    status, _, body = get(stack, "GET", "/basic_status")
    assert status == 200
    assert re.fullmatch(rb"Active connections: \d+ \nserver accepts handled requests\n \d+ \d+ \d+ \n"
                        rb"Reading: \d+ Writing: \d+ Waiting: \d+ \n", body), body


@pytest.mark.peer
def test_chunked_body_environ_matches_real_nginx(stack, nginx_front):
    raw = (b"POST /c?x=1 HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n"
           b"Connection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    ours = json.loads(response_body(request(stack.front.port, raw)))
    theirs = json.loads(response_body(request(nginx_front.port, raw)))
    for k in DIFFERENT:
        ours.pop(k, None), theirs.pop(k, None)
    assert ours == theirs
    assert ours["CONTENT_LENGTH"] == "11" and ours["_body_len"] == 11


def test_duplicate_headers_joined_as_current_nginx(stack):
    # nginx >= 1.23 joins repeated fields into one HTTP_* var (", "; "; " for Cookie); 1.22
    # sent each one and the app kept the last
    raw = (b"GET /d HTTP/1.1\r\nHost: test.local\r\nX-A: 1\r\nX-A: 2\r\nCookie: a=1\r\nCookie: b=2\r\n"
           b"Connection: close\r\n\r\n")
    env = json.loads(response_body(request(stack.front.port, raw)))
    assert env["HTTP_X_A"] == "1, 2" and env["HTTP_COOKIE"] == "a=1; b=2"
