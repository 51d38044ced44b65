"""src/c/app_loop.c through cffi (also under ASan): the http-socket connection multiplexer."""
import os
import socket

import pytest

from pyfront._native import ffi, lib


class Loop:
    def __init__(self, threads=1, idle_ms=60000, uwsgi=False):
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.ls.setblocking(False)
        self.port = self.ls.getsockname()[1]
        self.wake_r, self.wake_w = os.pipe()
        self.err = ffi.new("int *")
        self.l = lib.pf_app_loop_new(ffi.new("int[]", [self.ls.fileno()]), ffi.new("int[]", [0 if uwsgi else 1]),
                                     1, self.wake_r, 4096, threads, idle_ms, self.err)
        assert self.l != ffi.NULL
        self.ctx = ffi.new("pf_app_ready *")

    def next(self, timeout_ms=2000):
        return lib.pf_app_loop_next(self.l, self.ctx, timeout_ms, self.err)

    def wait_ready(self, tries=20):
        for _ in range(tries):
            r = self.next(200)
            if r != lib.PF_APP_AGAIN:
                return r
        return r

    def close(self):
        lib.pf_app_loop_free(self.l)
        self.ls.close()
        os.close(self.wake_r)
        os.close(self.wake_w)


@pytest.fixture(params=[1, 2])
def loop(request):
    lp = Loop(threads=request.param)
    yield lp
    lp.close()


def test_request_ready_then_keepalive_and_pipelining(loop):
    c = socket.create_connection(("127.0.0.1", loop.port))
    c.sendall(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n")
    assert loop.wait_ready() == 1
    ctx = loop.ctx
    assert ctx.kind == lib.PF_APP_READY_HTTP and ctx.status > 0
    assert ffi.unpack(ctx.buf + ctx.req.path.off, ctx.req.path.len) == b"/a"
    assert ffi.unpack(ctx.peer, ctx.peer_len).split(b"\0")[0] == b"127.0.0.1"
    lib.pf_app_loop_done(loop.l, ctx, ctx.status, 1)
    assert loop.wait_ready() == 1                 # the pipelined request, from the buffer
    assert ffi.unpack(ctx.buf + ctx.req.path.off, ctx.req.path.len) == b"/b"
    lib.pf_app_loop_done(loop.l, ctx, ctx.status, 1)
    c.sendall(b"GET /c HTTP/1.1\r\nHost: h\r\n\r\n")
    assert loop.wait_ready() == 1
    assert ffi.unpack(ctx.buf + ctx.req.path.off, ctx.req.path.len) == b"/c"
    lib.pf_app_loop_done(loop.l, ctx, ctx.status, 0)   # close
    c.settimeout(2)
    assert c.recv(10) == b""
    c.close()


def test_bad_request_and_too_large(loop):
    c = socket.create_connection(("127.0.0.1", loop.port))
    c.sendall(b"GET / HTTP/1.1\r\nBad\r\n\r\n")
    assert loop.wait_ready() == 1 and loop.ctx.status == lib.PF_E_BAD_REQUEST
    lib.pf_app_loop_done(loop.l, loop.ctx, 0, 0)
    c2 = socket.create_connection(("127.0.0.1", loop.port))
    c2.sendall(b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"a" * 5000)
    assert loop.wait_ready() == 1 and loop.ctx.status in (lib.PF_E_HEADER_TOO_LARGE, lib.PF_E_BAD_REQUEST)
    lib.pf_app_loop_done(loop.l, loop.ctx, 0, 0)
    c.close()
    c2.close()


def test_client_gone_and_partial_heads(loop):
    c = socket.create_connection(("127.0.0.1", loop.port))
    c.sendall(b"GET / HT")
    assert loop.next(300) == lib.PF_APP_AGAIN
    c.close()                                       # the loop closes it on EOF
    assert loop.next(300) == lib.PF_APP_AGAIN


def test_set_rest_and_wake_drains():
    lp = Loop()
    try:
        c = socket.create_connection(("127.0.0.1", lp.port))
        c.sendall(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
        assert lp.wait_ready() == 1
        nxt = b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n"
        assert lib.pf_app_loop_set_rest(lp.l, lp.ctx, nxt, len(nxt)) == 0
        lib.pf_app_loop_done(lp.l, lp.ctx, 0, 1)
        assert lp.wait_ready() == 1
        assert ffi.unpack(lp.ctx.buf + lp.ctx.req.path.off, lp.ctx.req.path.len) == b"/next"
        lib.pf_app_loop_done(lp.l, lp.ctx, lp.ctx.status, 1)
        os.write(lp.wake_w, b"x")                   # graceful stop: idle connection closed, then STOP
        assert lp.wait_ready() == lib.PF_APP_STOP
        c.settimeout(2)
        assert c.recv(10) == b""
        c.close()
    finally:
        lp.close()


def test_idle_connections_closed_after_timeout():
    lp = Loop(idle_ms=100)
    try:
        c = socket.create_connection(("127.0.0.1", lp.port))
        c.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        assert lp.wait_ready() == 1
        lib.pf_app_loop_done(lp.l, lp.ctx, lp.ctx.status, 1)
        c.settimeout(10)
        for _ in range(30):                           # the sweep runs about once a second
            lp.next(200)
        assert c.recv(10) == b""
        c.close()
    finally:
        lp.close()
