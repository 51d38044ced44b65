"""Proxy behaviours checked with recording backends: next_upstream rules (POST not retried
once sent), request buffering off, intercept_errors, X-Accel-Buffering."""
from __future__ import annotations

import socket
import time

import pytest

from tests.conftest import recv_all
from tests.integration.proxy_support import request, response_body, start_pyfront
from tests.integration.recorder import Recorder


def two(tmp_path, bad_first=True):
    bad = Recorder(str(tmp_path / "bad.sock"), "uwsgi")
    bad.hangup = True
    good = Recorder(str(tmp_path / "good.sock"), "uwsgi")
    return bad, good


def test_get_moves_to_the_next_server_post_does_not(procs, tmp_path):
    bad, good = two(tmp_path)
    try:
        up = f"upstream b {{ server unix:{bad.address}; server unix:{good.address}; }}"
        pf = start_pyfront(procs, tmp_path, "location / { include uwsgi_params; uwsgi_pass b; }", extra_http=up)
        # round-robin starts with the first server: the bad one hangs up after reading the request
        out = request(pf.port, b"GET /g HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 200") and len(bad.requests) == 1 and len(good.requests) == 1
        assert "upstream prematurely closed connection while reading response header from upstream" in pf.error_log()
    finally:
        bad.close(), good.close()


def test_post_is_not_retried_after_it_was_sent(procs, tmp_path):
    bad, good = two(tmp_path)
    try:
        up = f"upstream b {{ server unix:{bad.address}; server unix:{good.address}; }}"
        pf = start_pyfront(procs, tmp_path, "location / { include uwsgi_params; uwsgi_pass b; }", extra_http=up)
        out = request(pf.port, b"POST /p HTTP/1.1\r\nHost: test.local\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
        assert out.startswith(b"HTTP/1.1 502") and len(bad.requests) == 1 and good.requests == []
    finally:
        bad.close(), good.close()


def test_post_retried_with_non_idempotent(procs, tmp_path):
    bad, good = two(tmp_path)
    try:
        up = f"upstream b {{ server unix:{bad.address}; server unix:{good.address}; }}"
        pf = start_pyfront(procs, tmp_path, "location / { include uwsgi_params; "
                                            "uwsgi_next_upstream error timeout non_idempotent; uwsgi_pass b; }",
                           extra_http=up)
        out = request(pf.port, b"POST /p HTTP/1.1\r\nHost: test.local\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
        assert out.startswith(b"HTTP/1.1 200") and good.requests[0][1] == b"abc"
    finally:
        bad.close(), good.close()


def test_post_retried_when_connect_fails(procs, tmp_path):
    good = Recorder(str(tmp_path / "good.sock"), "uwsgi")
    try:
        up = f"upstream b {{ server unix:{tmp_path}/none.sock; server unix:{good.address}; }}"
        pf = start_pyfront(procs, tmp_path, "location / { include uwsgi_params; uwsgi_pass b; }", extra_http=up)
        out = request(pf.port, b"POST /p HTTP/1.1\r\nHost: test.local\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
        assert out.startswith(b"HTTP/1.1 200") and good.requests[0][1] == b"abc"   # never sent: retried
    finally:
        good.close()


def test_request_buffering_off_streams_the_body(procs, tmp_path):
    rec = Recorder(str(tmp_path / "rec.sock"), "uwsgi")
    try:
        pf = start_pyfront(procs, tmp_path, f"location / {{ include uwsgi_params; uwsgi_request_buffering off; "
                                            f"uwsgi_pass unix:{rec.address}; }}")
        s = socket.create_connection(("127.0.0.1", pf.port), timeout=10)
        s.sendall(b"POST /s HTTP/1.1\r\nHost: test.local\r\nContent-Length: 10\r\nConnection: close\r\n\r\nhello")
        deadline = time.monotonic() + 10
        while rec.connections == 0 and time.monotonic() < deadline:   # the head went upstream already
            time.sleep(0.02)
        assert rec.connections == 1 and rec.requests == []
        s.sendall(b"world")
        out = recv_all(s)
        assert out.startswith(b"HTTP/1.1 200") and rec.requests[0][1] == b"helloworld"
    finally:
        rec.close()


def test_intercept_errors_uses_error_page(procs, tmp_path):
    rec = Recorder(str(tmp_path / "rec.sock"), "uwsgi",
                   response=b"HTTP/1.1 404 Not Found\r\nContent-Length: 7\r\n\r\nupstrm!")
    try:
        (tmp_path / "html").mkdir()
        (tmp_path / "html" / "404.html").write_text("our 404 page\n")
        pf = start_pyfront(procs, tmp_path, f"""
            location / {{ include uwsgi_params; uwsgi_intercept_errors on; error_page 404 /404.html;
                          uwsgi_pass unix:{rec.address}; }}
            location = /404.html {{ root {tmp_path}/html; }}""")
        out = request(pf.port, b"GET /x HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 404") and response_body(out) == b"our 404 page\n"
    finally:
        rec.close()


def test_upstream_5xx_passed_through_without_intercept(procs, tmp_path):
    rec = Recorder(str(tmp_path / "rec.sock"), "uwsgi",
                   response=b"HTTP/1.1 503 Busy\r\nContent-Length: 4\r\nX-Accel-Redirect: /secret\r\n\r\nbusy")
    try:
        pf = start_pyfront(procs, tmp_path, f"location / {{ include uwsgi_params; uwsgi_pass unix:{rec.address}; }}")
        out = request(pf.port, b"GET /x HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 503 Busy\r\n") and out.endswith(b"\r\n\r\nbusy")
        assert b"X-Accel-Redirect" not in out
    finally:
        rec.close()


def test_client_disconnect_mid_response_closes_the_upstream(procs, tmp_path):
    # the upstream promises 10 MB, sends a little, and waits: the front must hang up on it
    rec = Recorder(str(tmp_path / "rec.sock"), "uwsgi",
                   response=b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n" + b"x" * 1000)
    rec.hold = True
    try:
        pf = start_pyfront(procs, tmp_path, f"location / {{ include uwsgi_params; uwsgi_pass unix:{rec.address}; }}")
        s = socket.create_connection(("127.0.0.1", pf.port), timeout=10)
        s.sendall(b"GET /big HTTP/1.1\r\nHost: test.local\r\n\r\n")
        got = b""
        while b"x" * 1000 not in got:
            got += s.recv(65536)
        assert not rec.closed_by_front.is_set()
        s.close()
        assert rec.closed_by_front.wait(10)
        assert "client prematurely closed connection" in pf.error_log() or "while sending to client" in pf.error_log()
    finally:
        rec.close()


def test_variables_in_proxy_set_header(procs, tmp_path):
    rec = Recorder(None, "http")
    try:
        pf = start_pyfront(procs, tmp_path, f"""
            location / {{ proxy_pass http://{rec.address};
                          proxy_set_header Host $host;
                          proxy_set_header X-Req $request_uri;
                          proxy_set_header X-Scheme $scheme;
                          proxy_set_header X-Id $request_id;
                          proxy_set_header X-UA $http_user_agent;
                          proxy_set_header X-Port $request_port; }}""")
        request(pf.port, b"GET /v?a=1 HTTP/1.1\r\nHost: Example.COM:8080\r\nUser-Agent: ua/2\r\nConnection: close\r\n\r\n")
        (h, _), = rec.requests
        assert h["host"] == "example.com" and h["x-req"] == "/v?a=1" and h["x-scheme"] == "http"
        assert h["x-ua"] == "ua/2" and h["x-port"] == "8080"
        assert len(h["x-id"]) == 32 and all(ch in "0123456789abcdef" for ch in h["x-id"])
    finally:
        rec.close()


def test_try_files_falls_back_to_a_named_uwsgi_location(procs, tmp_path):
    rec = Recorder(str(tmp_path / "rec.sock"), "uwsgi")
    try:
        (tmp_path / "html").mkdir()
        (tmp_path / "html" / "robots.txt").write_text("static file\n")
        pf = start_pyfront(procs, tmp_path, f"""
            root {tmp_path}/html;
            location / {{ try_files $uri @app; }}
            location @app {{ include uwsgi_params; uwsgi_pass unix:{rec.address}; }}""")
        out = request(pf.port, b"GET /robots.txt HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n")
        assert out.endswith(b"\r\n\r\nstatic file\n") and rec.requests == []
        out = request(pf.port, b"GET /dynamic?x=1 HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n")
        assert response_body(out) == b"ok"
        (v, _), = rec.requests
        assert v["PATH_INFO"] == "/dynamic" and v["QUERY_STRING"] == "x=1" and v["REQUEST_URI"] == "/dynamic?x=1"
    finally:
        rec.close()


def test_try_files_then_uwsgi_pass_in_one_location(procs, tmp_path):
    # nginx: try_files runs first (404 for a missing file), the location's uwsgi_pass serves a hit
    rec = Recorder(str(tmp_path / "rec.sock"), "uwsgi")
    try:
        (tmp_path / "html").mkdir()
        (tmp_path / "html" / "exists").write_text("file\n")
        pf = start_pyfront(procs, tmp_path, f"""
            root {tmp_path}/html;
            location / {{ try_files $uri =404; include uwsgi_params; uwsgi_pass unix:{rec.address}; }}""")
        out = request(pf.port, b"GET /missing HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 404") and rec.requests == []
        out = request(pf.port, b"GET /exists HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n")
        assert response_body(out) == b"ok" and rec.requests[0][0]["PATH_INFO"] == "/exists"
    finally:
        rec.close()


def test_access_log_upstream_variables(procs, tmp_path):
    rec = Recorder(str(tmp_path / "rec.sock"), "uwsgi")
    try:
        log = tmp_path / "up.log"
        pf = start_pyfront(procs, tmp_path, f"""
            location / {{ include uwsgi_params; uwsgi_pass unix:{rec.address}; }}
            location /down/ {{ uwsgi_pass unix:{tmp_path}/none.sock; }}""",
            extra_http=f"log_format up '$status $body_bytes_sent $upstream_addr $upstream_status $request_id';\n"
                       f"access_log {log} up;")
        request(pf.port, b"GET /a HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n")
        request(pf.port, b"GET /down/ HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n")
        deadline = time.monotonic() + 10
        while (not log.exists() or log.read_text().count("\n") < 2) and time.monotonic() < deadline:
            time.sleep(0.05)                                  # the access log is flushed once a second
        lines = [ln.split() for ln in log.read_text().splitlines()]
        assert lines[0][:4] == ["200", "2", f"unix:{rec.address}", "200"] and len(lines[0][4]) == 32
        assert lines[1][0] == "502" and lines[1][2] == f"unix:{tmp_path}/none.sock" and lines[1][3] == "502"
    finally:
        rec.close()


def test_uwsgi_pass_over_tcp_forms(procs, tmp_path):
    rec = Recorder(None, "uwsgi")
    try:
        pf = start_pyfront(procs, tmp_path, f"""
            location /a {{ include uwsgi_params; uwsgi_pass {rec.address}; }}
            location /b {{ include uwsgi_params; uwsgi_pass uwsgi://{rec.address}; }}
            location /c {{ include uwsgi_params; uwsgi_pass up; }}""",
            extra_http=f"upstream up {{ server {rec.address}; }}")
        for path in (b"/a", b"/b", b"/c"):
            out = request(pf.port, b"GET " + path + b" HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n")
            assert response_body(out) == b"ok"
        assert [v["PATH_INFO"] for v, _ in rec.requests] == ["/a", "/b", "/c"]
    finally:
        rec.close()


def test_x_accel_redirect_serves_the_protected_file(procs, tmp_path):
    rec = Recorder(str(tmp_path / "rec.sock"), "uwsgi",
                   response=b"HTTP/1.1 200 OK\r\nX-Accel-Redirect: /protected/report.txt\r\nContent-Length: 0\r\n\r\n")
    try:
        (tmp_path / "files").mkdir()
        (tmp_path / "files" / "report.txt").write_text("secret report\n")
        pf = start_pyfront(procs, tmp_path, f"""
            location / {{ include uwsgi_params; uwsgi_pass unix:{rec.address}; }}
            location /protected/ {{ alias {tmp_path}/files/; }}""")
        out = request(pf.port, b"POST /download HTTP/1.1\r\nHost: test.local\r\nContent-Length: 2\r\n"
                               b"Connection: close\r\n\r\nid")
        assert out.startswith(b"HTTP/1.1 200 OK") and out.endswith(b"\r\n\r\nsecret report\n"), out
        assert b"X-Accel-Redirect" not in out
        assert rec.requests[0][1] == b"id"
    finally:
        rec.close()


@pytest.mark.parametrize("method", ["hash $request_uri", "hash $request_uri consistent", "least_conn", "random"])
def test_balancing_methods_from_config(procs, tmp_path, method):
    recs = [Recorder(str(tmp_path / f"r{i}.sock"), "uwsgi") for i in range(3)]
    try:
        up = f"upstream b {{ {method}; " + " ".join(f"server unix:{r.address};" for r in recs) + " }"
        pf = start_pyfront(procs, tmp_path, "location / { include uwsgi_params; uwsgi_pass b; }", extra_http=up)
        for i in range(60):
            path = f"/k{i % 6}".encode()
            out = request(pf.port, b"GET " + path + b" HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n")
            assert response_body(out) == b"ok"
        where = {}
        for n, r in enumerate(recs):
            for v, _ in r.requests:
                where.setdefault(v["PATH_INFO"], set()).add(n)
        assert sum(len(r.requests) for r in recs) == 60
        if method.startswith("hash"):
            assert all(len(s) == 1 for s in where.values())      # one key, one server
        assert len({n for s in where.values() for n in s}) >= 2   # spread over servers
    finally:
        for r in recs:
            r.close()


def test_stub_status_counts(procs, tmp_path):
    import re
    pf = start_pyfront(procs, tmp_path, "location = /status { stub_status; }")

    def status():
        body = response_body(request(pf.port, b"GET /status HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n"))
        m = re.fullmatch(rb"Active connections: (\d+) \nserver accepts handled requests\n (\d+) (\d+) (\d+) \n"
                         rb"Reading: (\d+) Writing: (\d+) Waiting: (\d+) \n", body)
        assert m, body
        return [int(x) for x in m.groups()]
    idle = socket.create_connection(("127.0.0.1", pf.port), timeout=10)   # an open, idle connection
    idle.sendall(b"GET /status HTTP/1.1\r\nHost: test.local\r\n\r\n")
    idle.recv(65536)                                                   # now waiting in keep-alive
    a = status()
    b = status()
    assert a[1] == a[2] and b[1] == a[1] + 1 and b[3] == a[3] + 1       # accepts = handled; +1 request each
    assert b[0] >= 2 and b[5] >= 1 and b[6] >= 1                       # us (writing) + the idle one (waiting)
    idle.close()
