"""A real nginx (`include uwsgi_params; uwsgi_pass`) in front of `pyfront app --ini`."""
import hashlib
import json
import os
import socket
import time

import pytest

from tests.conftest import free_port, recv_all
from tests.integration.app_support import http_request, start_app, start_nginx, write_test_app

pytestmark = pytest.mark.peer


@pytest.fixture(params=["unix", "tcp"])
def stack(request, procs, tmp_path):
    appfile = write_test_app(tmp_path)
    if request.param == "unix":
        addr = str(tmp_path / "app.sock")
        upstream = f"unix:{addr}"
    else:
        addr = f"127.0.0.1:{free_port()}"
        upstream = addr
    app = start_app(procs, tmp_path, f"""
        socket = {addr}
        wsgi-file = {appfile}
        processes = 2
        threads = 2
        master = true
        buffer-size = 32768
    """, addr)
    nginx = start_nginx(procs, tmp_path, f"""
        location / {{
            include uwsgi_params;
            uwsgi_pass {upstream};
        }}
    """, extra_http="large_client_header_buffers 4 64k;")
    return app, nginx, tmp_path


def test_get_with_query_and_headers(stack):
    app, nginx, _ = stack
    status, headers, body = http_request(nginx.port, "GET", "/echo?a=1&b=two%20words",
                                         {"X-Custom": "yes", "Accept": "text/plain"})
    assert status == 200
    env = json.loads(body)
    assert env["QUERY_STRING"] == "a=1&b=two%20words"
    assert env["REQUEST_URI"] == "/echo?a=1&b=two%20words"
    assert env["PATH_INFO"] == "/echo"
    assert env["REQUEST_METHOD"] == "GET"
    assert env["HTTP_X_CUSTOM"] == "yes"
    assert env["SERVER_NAME"] == "test.local"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["wsgi.url_scheme"] == "http"
    assert "HTTP_CONTENT_TYPE" not in env
    assert "[pid: " in app.wait_log("GET /echo?a=1&b=two%20words => generated")


def test_post_10mib_sha256(stack):
    _, nginx, _ = stack
    data = os.urandom(10 * 1024 * 1024)
    status, _, body = http_request(nginx.port, "POST", "/upload", {"Content-Type": "application/octet-stream"}, data)
    assert status == 200
    assert body.decode() == f"{len(data)} {hashlib.sha256(data).hexdigest()}"


def test_chunked_request_body(stack):
    _, nginx, _ = stack
    chunks = [b"line one\n", b"line two\n" * 1000, b"last line\n"]
    s = socket.create_connection(("127.0.0.1", nginx.port), timeout=20)
    s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    for c in chunks:
        s.sendall(b"%x\r\n%b\r\n" % (len(c), c))
    s.sendall(b"0\r\n\r\n")
    out = recv_all(s)
    s.close()
    whole = b"".join(chunks)
    assert out.startswith(b"HTTP/1.1 200")
    assert out.endswith(f"{len(whole)} {hashlib.sha256(whole).hexdigest()}".encode())


def test_streaming_response_first_chunk_before_app_finishes(stack):
    _, nginx, tmp_path = stack
    flag = tmp_path / "flag"
    s = socket.create_connection(("127.0.0.1", nginx.port), timeout=20)
    s.sendall(f"GET /stream?flag={flag} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    got = b""
    while b"first\n" not in got:
        d = s.recv(4096)
        assert d, got
        got += d
    # The app is still waiting for the flag, so "second" cannot have been produced yet.
    assert b"second" not in got
    flag.write_text("go")
    while True:
        d = s.recv(4096)
        if not d:
            break
        got += d
    s.close()
    assert b"second saw-flag" in got


def test_multiple_set_cookie(stack):
    _, nginx, _ = stack
    status, headers, body = http_request(nginx.port, "GET", "/cookies")
    assert status == 200
    cookies = [v for k, v in headers if k.lower() == "set-cookie"]
    assert cookies == ["a=1; Path=/", "b=2; Path=/", "c=3; HttpOnly"]


def test_app_exception_is_500_with_traceback_in_log(stack):
    app, nginx, _ = stack
    status, _, body = http_request(nginx.port, "GET", "/error")
    assert status == 500
    log = app.wait_log("RuntimeError: boom from the test app")
    assert "Traceback" in log
    status, _, _ = http_request(nginx.port, "GET", "/pid")
    assert status == 200


def test_large_cookie_near_buffer_size(stack):
    app, nginx, _ = stack
    cookie = "k=" + "v" * 30000          # whole vars block stays under buffer-size = 32768
    status, _, body = http_request(nginx.port, "GET", "/cookie-len", {"Cookie": cookie})
    assert status == 200 and body == str(len(cookie)).encode()
    big = "k=" + "v" * 40000             # over buffer-size: logged with the fix, clean close
    status, _, _ = http_request(nginx.port, "GET", "/cookie-len", {"Cookie": big})
    assert status == 502
    log = app.wait_log("invalid request block size")
    assert "(max 32768)" in log and "buffer-size" in log
    status, _, _ = http_request(nginx.port, "GET", "/pid")
    assert status == 200


def test_write_callable_file_wrapper_and_close(stack):
    _, nginx, tmp_path = stack
    status, _, body = http_request(nginx.port, "GET", "/write")
    assert (status, body) == (200, b"via-write and-iterable")
    data = os.urandom(300_000)
    f = tmp_path / "blob.bin"
    f.write_bytes(data)
    status, _, body = http_request(nginx.port, "GET", f"/file?path={f}")
    assert status == 200 and body == data
    marker = tmp_path / "closed"
    status, _, body = http_request(nginx.port, "GET", f"/close?marker={marker}")
    assert body == b"ab"
    deadline = time.monotonic() + 5
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.read_text() == "closed"


def test_every_request_gets_its_own_values_through_the_fast_path(stack):
    """Requests of the same key sequence alternate values (query, Host, a header's value) and key sequences (a header present or not): each environ must hold exactly its
    own request's values, whatever the worker thread saw before (the environ template holds
    the shape's first values; C hands over only those that differ: app_shape.c)."""
    _, nginx, _ = stack
    for i in range(60):
        path = "/echo"
        query = ["", "q=1", "q=2&r=%20"][i % 3 if i % 4 else 0]
        headers = {"Host": ["h1.test", "h2.test"][i % 2 if i % 5 else 0], "X-V": ["1", "22", ""][i % 3]}
        if i % 7 == 3:
            headers["X-Extra"] = f"e{i}"
        status, _, body = http_request(nginx.port, "GET", path + ("?" + query if query else ""), headers)
        assert status == 200
        env = json.loads(body)
        assert (env["PATH_INFO"], env["QUERY_STRING"], env["HTTP_HOST"], env["HTTP_X_V"]) == \
            (path, query, headers["Host"], headers["X-V"]), i
        assert env.get("HTTP_X_EXTRA") == headers.get("X-Extra"), i
        assert env["REQUEST_URI"] == path + ("?" + query if query else ""), i


def test_https_behind_tls_nginx_takes_the_fast_path_with_its_scheme(procs, tmp_path):
    """nginx terminating TLS sends REQUEST_SCHEME=https (and HTTPS=on with `$https`): such
    requests share the fast path with plain ones (app_io.c pf_app_uwsgi_step) and must get
    wsgi.url_scheme https, request after request, whatever the thread served before."""
    from tests.integration.app_support import UWSGI_PARAMS
    appfile = write_test_app(tmp_path)
    addr = str(tmp_path / "app.sock")
    start_app(procs, tmp_path, f"""
        socket = {addr}
        wsgi-file = {appfile}
        threads = 2
    """, addr)
    same_keys = tmp_path / "params_scheme"        # the plain server's key sequence, scheme https
    same_keys.write_text(UWSGI_PARAMS.replace("$scheme", "https").replace("uwsgi_param  HTTPS              $https if_not_empty;\n", ""))
    https_on = tmp_path / "params_https_on"       # what `$https` gives behind TLS
    https_on.write_text(UWSGI_PARAMS.replace("$scheme", "https").replace("$https if_not_empty", "on"))
    ports = [free_port(), free_port()]
    servers = "".join(f"""
        server {{
            listen 127.0.0.1:{p};
            server_name tls.local;
            location / {{ include {params}; uwsgi_pass unix:{addr}; }}
        }}""" for p, params in zip(ports, (same_keys, https_on)))
    nginx = start_nginx(procs, tmp_path, f"location / {{ include uwsgi_params; uwsgi_pass unix:{addr}; }}",
                        extra_http=servers)
    kinds = [(nginx.port, "http", None), (ports[0], "https", None), (ports[1], "https", "on")]
    for i in range(45):
        port, scheme, https = kinds[(i * 7 // 3) % 3]
        status, _, body = http_request(port, "GET", f"/echo?i={i}")
        assert status == 200
        env = json.loads(body)
        assert (env["wsgi.url_scheme"], env["REQUEST_SCHEME"], env.get("HTTPS"), env["QUERY_STRING"]) == \
            (scheme, scheme, https, f"i={i}"), i
