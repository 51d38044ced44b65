"""Persistent uwsgi connections between pyfront's front and pyfront's own app server
(docs/proxy.md "Persistent connections to pyfront's own app"): `pyfront serve` with a front
that uwsgi_passes to a [uwsgi] app of the same CONF_DIR keeps the front->app connections
open between requests, and every client-visible behaviour stays what it was.

How reuse is observed: the app lists the socket inodes open in its worker process
(/proc/self/fd) on every request. With one connection per request (nginx + uWSGI, or this
link without keep-alive) the union over N requests holds N distinct connection inodes;
with kept connections it stays near the number of concurrent requests.
"""
import hashlib
import http.client
import os
import signal
import socket
import threading
import time

import pytest

from tests.conftest import free_port, pyfront_cmd, recv_all, wait_for_port
from tests.integration.test_master_process import children, wait_until

APP = r'''import hashlib, os

def sockets():
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            t = os.readlink("/proc/self/fd/" + fd)
        except OSError:
            continue
        if t.startswith("socket:"):
            out.append(t[8:-1])
    return " ".join(sorted(out))

def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/conns":
        body = sockets().encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/pid":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(os.getpid()).encode()]
    if path == "/sha":
        h, n = hashlib.sha256(), 0
        while True:
            b = environ["wsgi.input"].read(65536)
            if not b:
                break
            h.update(b)
            n += len(b)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [("%s %d" % (h.hexdigest(), n)).encode()]
    if path == "/peek":                 # reads 10 bytes of the body, leaves the rest unread
        first = environ["wsgi.input"].read(10)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [first]
    if path == "/stream":               # no Content-Length: chunked on the kept connection
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (("part%d;" % i).encode() for i in range(50))
    if path == "/write":                # the legacy write() callable, then an empty iterable
        w = start_response("200 OK", [("Content-Type", "text/plain")])
        w(b"written;")
        w(b"twice")
        return []
    if path == "/nohead":               # no header at all
        start_response("200 OK", [])
        return [b"bare"]
    if path in ("/204", "/304"):        # an app that wrongly returns a body with them
        start_response(path[1:] + " X", [("Content-Type", "text/plain")])
        return [b"must-not-be-sent"]
    if path == "/hsize":               # total size of the X-Big-* headers the app received
        n = sum(len(v) for k, v in environ.items() if k.startswith("HTTP_X_BIG_"))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(n).encode()]
    if path == "/caller":               # which worker function called the app (the fast loop or not)
        import sys
        body = sys._getframe(1).f_code.co_name.encode()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]
    if path == "/boom":
        raise RuntimeError("boom")
    if path == "/close":                # the app asks for a close: the connection is not kept
        start_response("200 OK", [("Content-Type", "text/plain"), ("Connection", "close")])
        return [b"closing"]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]
'''


class Stack:
    def __init__(self, tmp_path, procs, processes=1, upstream_keepalive=None, threads=1, tcp=False):
        self.port = free_port()
        d = self.dir = tmp_path / "c"
        d.mkdir()
        self.sock = d / "app.sock"
        if tcp:                     # the app on 0.0.0.0:P, the front passing to 127.0.0.1:P
            p = free_port()
            app_sock, peer = f"0.0.0.0:{p}", f"127.0.0.1:{p}"
        else:
            app_sock, peer = str(self.sock), f"unix:{self.sock}"
        if upstream_keepalive is None:
            target, ups = peer, ""
        else:
            target = "app"
            ups = f"upstream app {{ server {peer}; keepalive {upstream_keepalive}; }}"
        (d / "site.conf").write_text(f"""error_log {d}/error.log info;
{ups}
server {{
    listen 127.0.0.1:{self.port};
    access_log {d}/access.log;
    client_max_body_size 64m;
    large_client_header_buffers 8 16k;
    location / {{ include uwsgi_params; uwsgi_pass {target}; }}
}}
""")
        (d / "app.py").write_text(APP)
        (d / "app.ini").write_text(f"[uwsgi]\nsocket = {app_sock}\nchdir = %d\nwsgi-file = app.py\n"
                                   f"processes = {processes}\nthreads = {threads}\nmaster = true\nbuffer-size = 65535\n")
        self.p = procs(pyfront_cmd("serve", str(d)), stdout=open(tmp_path / "serve.out", "wb"))
        wait_for_port(self.port, proc=self.p.p)
        wait_until(lambda: self.get_ok("/"), timeout=30, what="the app through the front")

    def get_ok(self, path):
        try:
            return self.request("GET", path)[0] == 200
        except OSError:
            return False

    def request(self, method, path, body=None, headers=None, conn=None, chunked=False):
        c = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            c.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
            r = c.getresponse()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
        finally:
            if conn is None:
                c.close()

    def errors(self) -> str:
        f = self.dir / "error.log"
        return f.read_text(errors="replace") if f.exists() else ""

    def app_worker(self) -> int:
        return int(self.request("GET", "/pid")[2])

    def stop(self):
        self.p.p.send_signal(signal.SIGQUIT)
        assert self.p.p.wait(30) == 0


def conn_inodes(stack, n, clients=3):
    """Union of the connection inodes the app saw over n requests on `clients` keep-alive clients."""
    seen, lock, errors = set(), threading.Lock(), []

    def client(k):
        c = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=30)
        try:
            for _ in range(k):
                st, _, body = stack.request("GET", "/conns", conn=c)
                if st != 200:
                    errors.append(st)
                with lock:
                    seen.update(body.decode().split())
        except OSError as e:
            errors.append(repr(e))
        finally:
            c.close()
    ts = [threading.Thread(target=client, args=(n // clients,)) for _ in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not errors, errors
    return seen


@pytest.fixture
def stack(tmp_path, procs):
    s = Stack(tmp_path, procs)
    yield s
    s.stop()


def test_app_accepts_far_fewer_connections_than_requests(stack):
    seen = conn_inodes(stack, 300)
    # the listening socket + at most a few kept connections (3 clients), never 300
    assert len(seen) <= 12, (len(seen), sorted(seen))
    # no client ever sees a hop-by-hop header of the hop
    st, h, body = stack.request("GET", "/")
    assert (st, body) == (200, b"hello") and h["connection"] == "keep-alive" and h["content-length"] == "5"


def test_kept_requests_take_the_fast_loop(stack):
    """A kept request without body whose key sequence the thread knows is answered by the
    multiplexer's inline fast loop (app_hot.c uwsgi_fast), like an http-socket request; a
    body sends it through handle_uwsgi_mux, and both answer the same way."""
    c = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=30)
    try:
        callers = [stack.request("GET", "/caller", conn=c) for _ in range(5)]
        assert all(st == 200 and h["content-length"] == str(len(b)) for st, h, b in callers), callers
        # the first of a new key sequence goes the general way; the rest inline
        assert [b for _, _, b in callers[2:]] == [b"serve_loop_mux"] * 3, callers
        st, _, body = stack.request("POST", "/caller", body=b"x" * 10, conn=c)
        assert (st, body) == (200, b"run_app")
        st, h, body = stack.request("HEAD", "/caller", conn=c)
        assert st == 200 and body == b"" and h["content-length"] == str(len(b"serve_loop_mux"))
    finally:
        c.close()


def test_threads_switch_to_the_multiplexer_one_by_one(tmp_path, procs):
    """threads = 4: each thread starts in the blocking uwsgi loop and moves to the C
    multiplexer at its first marked packet; requests keep flowing on kept connections."""
    s = Stack(tmp_path, procs, threads=4)
    try:
        seen = conn_inodes(s, 240, clients=4)
        assert len(seen) <= 16, (len(seen), sorted(seen))
    finally:
        s.stop()


def test_tcp_app_socket_is_kept_too(tmp_path, procs):
    """socket = 0.0.0.0:P and uwsgi_pass 127.0.0.1:P are the same link; a streamed answer
    over a kept TCP connection still arrives whole."""
    s = Stack(tmp_path, procs, tcp=True)
    try:
        seen = conn_inodes(s, 90)
        assert len(seen) <= 12, len(seen)
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
        try:
            for _ in range(5):
                st, _, body = s.request("GET", "/stream", conn=c)
                assert (st, body) == (200, b"".join(b"part%d;" % i for i in range(50)))
        finally:
            c.close()
    finally:
        s.stop()


def test_without_keepalive_each_request_is_a_new_connection(tmp_path, procs):
    """The same measure with several app processes (no implicit keep-alive: a connection
    would be tied to one busy process): it does count one connection per request, so the
    measure above can fail."""
    s = Stack(tmp_path, procs, processes=2)
    try:
        seen = set()
        for _ in range(40):
            seen.update(s.request("GET", "/conns")[2].decode().split())
        assert len(seen) >= 40
    finally:
        s.stop()


def test_explicit_upstream_keepalive_opts_in_with_several_processes(tmp_path, procs):
    s = Stack(tmp_path, procs, processes=2, upstream_keepalive=8)
    try:
        seen = conn_inodes(s, 120, clients=2)
        assert len(seen) <= 12, len(seen)
    finally:
        s.stop()


def test_bodies_on_kept_connections(stack):
    big = os.urandom(10 * 1024 * 1024)
    c = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=60)
    try:
        seen = set()
        for _ in range(2):
            st, _, body = stack.request("POST", "/sha", body=big, conn=c)
            assert (st, body) == (200, f"{hashlib.sha256(big).hexdigest()} {len(big)}".encode())
            seen.update(stack.request("GET", "/conns", conn=c)[2].split())

        def chunks():
            for i in range(0, 301000, 7000):
                yield big[i:i + 7000]
        st, _, body = stack.request("POST", "/sha", body=chunks(), headers={"Transfer-Encoding": "chunked"}, conn=c,
                                 chunked=True)
        assert (st, body) == (200, f"{hashlib.sha256(big[:301000]).hexdigest()} 301000".encode())
        # a body the app leaves unread is read away exactly: the next packet is in step
        for i in range(5):
            st, _, body = stack.request("POST", "/peek", body=b"0123456789" + b"z" * (100000 + i), conn=c)
            assert (st, body) == (200, b"0123456789")
            assert stack.request("GET", "/", conn=c)[::2] == (200, b"hello")
            seen.update(stack.request("GET", "/conns", conn=c)[2].split())
        assert len(seen) <= 4, seen          # one client, one kept connection (+ the listener)
    finally:
        c.close()


def raw(port, data, timeout=30):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    out = recv_all(s)
    s.close()
    return out


def test_streaming_head_204_304_and_errors(stack):
    want = b"".join(b"part%d;" % i for i in range(50))
    out = raw(stack.port, b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head and b"Content-Length" not in head
    from tests.integration.proxy_support import dechunk
    assert dechunk(body) == want
    out = raw(stack.port, b"GET /stream HTTP/1.0\r\nHost: x\r\n\r\n")     # 1.0: close-delimited
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"chunked" not in head and body == want
    c = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=30)
    try:
        seen = set()
        for _ in range(3):
            st, h, body = stack.request("HEAD", "/", conn=c)
            assert (st, h.get("content-length"), body) == (200, "5", b"")
            st, h, body = stack.request("HEAD", "/stream", conn=c)
            assert st == 200 and body == b""
            assert stack.request("GET", "/write", conn=c)[::2] == (200, b"written;twice")
            assert stack.request("GET", "/nohead", conn=c)[::2] == (200, b"bare")
            for code in (204, 304):
                st, h, body = stack.request("GET", f"/{code}", conn=c)
                assert (st, body) == (code, b"") and "content-length" not in h
            st, _, body = stack.request("GET", "/boom", conn=c)
            assert st == 500
            assert stack.request("GET", "/close", conn=c)[::2] == (200, b"closing")
            assert stack.request("GET", "/", conn=c)[::2] == (200, b"hello")
            seen.update(stack.request("GET", "/conns", conn=c)[2].split())
        assert len(seen) <= 8, seen
    finally:
        c.close()
    # a raw HEAD: no body bytes at all on the wire, the connection stays usable
    out = raw(stack.port, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert out.count(b"HTTP/1.1 200 OK") == 2 and out.endswith(b"\r\n\r\nhello")
    assert "upstream prematurely closed" not in stack.errors()
    assert "invalid header" not in stack.errors()


class Stream:
    """Keep-alive clients sending GETs and POSTs until stopped; any failure is recorded. A request on
    a REUSED client connection that the front closed while idle is retried once, as every
    HTTP client does (RFC 9112 §9.3.1; see test_reload_all_layers)."""

    def __init__(self, stack, clients=3):
        self.stack, self.stop, self.lock = stack, threading.Event(), threading.Lock()
        self.ok, self.failures = 0, []
        self.ts = [threading.Thread(target=self.run, daemon=True) for _ in range(clients)]
        for t in self.ts:
            t.start()

    def run(self):
        c, reused, i = None, False, 0
        post = b"p" * 3000
        want_post = f"{hashlib.sha256(post).hexdigest()} 3000".encode()
        while not self.stop.is_set():
            i += 1
            method, path, body_out, want = ("POST", "/sha", post, want_post) if i % 3 == 0 else ("GET", "/", None, b"hello")
            if c is None:
                c, reused = http.client.HTTPConnection("127.0.0.1", self.stack.port, timeout=30), False
            try:
                try:
                    st, h, body = self.stack.request(method, path, body=body_out, conn=c)
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                    if not reused:
                        raise
                    c.close()
                    c = http.client.HTTPConnection("127.0.0.1", self.stack.port, timeout=30)
                    st, h, body = self.stack.request(method, path, body=body_out, conn=c)
                with self.lock:
                    if (st, body) == (200, want):
                        self.ok += 1
                    else:
                        self.failures.append((st, body[:100]))
                reused = True
                if h.get("connection") == "close":
                    c.close()
                    c = None
            except (OSError, http.client.HTTPException) as e:
                with self.lock:
                    self.failures.append(repr(e))
                c.close()
                c = None

    def count(self):
        with self.lock:
            return self.ok

    def wait_more(self, n):
        start = self.count()
        wait_until(lambda: self.count() - start >= n, timeout=60, what=f"{n} more requests")

    def finish(self):
        self.stop.set()
        for t in self.ts:
            t.join(60)


def test_reload_under_a_request_stream_loses_nothing(stack):
    old = stack.app_worker()
    s = Stream(stack)
    try:
        s.wait_more(300)
        ini = stack.dir / "app.ini"
        os.utime(ini, (time.time() + 5, time.time() + 5))    # HUP restarts only a changed app
        os.kill(stack.p.pid, signal.SIGHUP)
        wait_until(lambda: stack.app_worker() != old, timeout=60, what="a new app worker")
        s.wait_more(300)
    finally:
        s.finish()
    assert not s.failures, s.failures[:10]


def test_app_worker_killed_while_connections_are_cached(stack):
    seen = conn_inodes(stack, 30)            # several kept connections now idle in the front's cache
    assert len(seen) <= 12
    old = stack.app_worker()
    os.kill(old, signal.SIGKILL)
    # the master respawns the worker; the cached connections are dead: next requests must
    # still succeed (a dead kept connection is dropped or retried, never a 502)
    for _ in range(20):
        st, _, body = stack.request("GET", "/")
        assert (st, body) == (200, b"hello")
    assert stack.app_worker() != old
    seen = conn_inodes(stack, 60)
    assert len(seen) <= 12


def test_kept_connections_are_closed_with_the_stack(tmp_path, procs):
    s = Stack(tmp_path, procs)
    conn_inodes(s, 30)
    master = s.p.pid
    kids = children(master)
    assert kids
    s.stop()                                 # SIGQUIT: graceful, the idle kept connections do not hold it
    for k in kids:
        assert not os.path.exists(f"/proc/{k}") or open(f"/proc/{k}/stat").read().split()[2] == "Z"


def test_packets_bigger_than_the_pooled_buffer(stack):
    """A uwsgi packet over 16 KiB (the front's pooled buffer) goes out in the 64 KiB class."""
    c = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=30)
    try:
        for size in (100, 15000, 40000):
            hdrs = {f"X-Big-{i}": "v" * (size // 5) for i in range(5)}
            st, _, body = stack.request("GET", "/hsize", headers=hdrs, conn=c)
            assert (st, body) == (200, str(5 * (size // 5)).encode())
    finally:
        c.close()
