"""app_loop.c's uwsgi connections (through cffi, also under ASan): packets parsed in C by
pf_app_loop_step, marked packets (modifier2 PF_UWSGI_KEEP) kept for the next packet, the
rest closed after their response, cut-short packets reported (docs/proxy.md)."""
import os
import socket
import struct

import pytest

from pyfront._native import ffi, lib
from pyfront.app import packet

VARS = {b"REQUEST_METHOD": b"GET", b"PATH_INFO": b"/x", b"SERVER_PROTOCOL": b"HTTP/1.1",
        b"HTTP_CONTENT_LENGTH": b"3", b"CONTENT_LENGTH": b"3"}


def pkt(modifier2=0, **extra) -> bytes:
    v = dict(VARS)
    v.update({k.encode(): x.encode() for k, x in extra.items()})
    raw = packet.encode(v)
    return raw[:3] + bytes([modifier2]) + raw[4:]


class ULoop:
    def __init__(self, threads=1, packet_ms=60000):
        self.ls = socket.socket(socket.AF_UNIX)
        self.path = f"/tmp/pf-uloop-{os.getpid()}-{id(self)}.sock"
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.ls.bind(self.path)
        self.ls.listen(16)
        self.ls.setblocking(False)
        self.wake_r, self.wake_w = os.pipe()
        self.err = ffi.new("int *")
        self.l = lib.pf_app_loop_new(ffi.new("int[]", [self.ls.fileno()]), ffi.new("int[]", [0]), 1, self.wake_r,
                                     8192, threads, 60000, self.err)
        assert self.l != ffi.NULL
        lib.pf_app_loop_uwsgi_limit(self.l, 4096, packet_ms)
        self.ctx = ffi.new("pf_app_ready *")
        self.ctx.fd = -1
        self.out = ffi.new("char[]", 65536)
        self.info = ffi.new("int64_t[10]")

    def step(self, consumed=0, keep=0, tries=20):
        for _ in range(tries):
            r = lib.pf_app_loop_step(self.l, self.ctx, consumed, keep, self.out, 65536, self.info, self.err)
            consumed = keep = 0
            if r != lib.PF_APP_AGAIN:
                return r
        return r

    def connect(self):
        c = socket.socket(socket.AF_UNIX)
        c.connect(self.path)
        return c

    def close(self):
        lib.pf_app_loop_free(self.l)
        self.ls.close()
        os.unlink(self.path)
        os.close(self.wake_r)
        os.close(self.wake_w)


@pytest.fixture(params=[1, 2])
def ul(request):
    lp = ULoop(threads=request.param)
    yield lp
    lp.close()


def _step_timeout(lp):
    # pf_app_loop_step waits with timeout -1; tests use next() with a timeout when nothing is due
    return lib.pf_app_loop_next(lp.l, lp.ctx, 300, lp.err)


def test_packet_in_parts_then_parsed_once(ul):
    c = ul.connect()
    data = pkt(lib.PF_UWSGI_KEEP) + b"abc"
    c.sendall(data[:3])
    assert _step_timeout(ul) == lib.PF_APP_AGAIN       # not even the 4-byte header
    c.sendall(data[3:20])
    assert _step_timeout(ul) == lib.PF_APP_AGAIN       # header, vars incomplete
    c.sendall(data[20:])
    r = ul.step()
    assert r == lib.PF_APP_UWSGI
    fd, head_len, flags, li, have, nvars, datasize, n, shape, new = ffi.unpack(ul.info, 10)
    assert head_len == len(data) - 3 and have == len(data) and nvars == 5
    assert flags & lib.PF_UWSGI_PERSIST and not flags & lib.PF_UWSGI_NOBODY and flags & lib.PF_UWSGI_BODY
    assert not flags & lib.PF_UWSGI_SLOW
    vals = ffi.unpack(ul.ctx.vals, n).split(b"\0")
    assert vals == [b"GET", b"/x", b"HTTP/1.1", b"3"]      # HTTP_CONTENT_LENGTH dropped (PEP 3333)
    assert new == 1 and ffi.unpack(ul.ctx.buf + head_len, have - head_len) == b"abc"
    c.close()


def test_marked_connection_kept_for_the_next_packet(ul):
    c = ul.connect()
    first = pkt(lib.PF_UWSGI_KEEP_HEAD) + b"abc"
    c.sendall(first)
    assert ul.step() == lib.PF_APP_UWSGI
    assert ul.info[2] & lib.PF_UWSGI_NOBODY
    fd = ul.info[0]
    c.sendall(pkt(lib.PF_UWSGI_KEEP) + b"xyz")
    assert ul.step(len(first), 1) == lib.PF_APP_UWSGI   # same connection, next packet
    assert ul.info[0] == fd and ul.info[9] == 0         # same shape: nothing new
    assert ffi.unpack(ul.ctx.buf + ul.info[1], 3) == b"xyz"
    lib.pf_app_loop_done(ul.l, ul.ctx, 0, 0)             # keep = 0 closes it
    c.settimeout(5)
    assert c.recv(10) == b""
    c.close()


def test_unmarked_packet_is_served_then_closed_by_done(ul):
    c = ul.connect()
    c.sendall(pkt(0) + b"abc")
    assert ul.step() == lib.PF_APP_UWSGI
    assert not ul.info[2] & lib.PF_UWSGI_PERSIST
    fd = ul.info[0]
    lib.pf_app_loop_done(ul.l, ul.ctx, 0, 0)
    c.settimeout(5)
    assert c.recv(10) == b""
    assert fd >= 0
    c.close()


@pytest.mark.parametrize("data,status", [
    (b"\x05\x04\x00\x00" + struct.pack("<HH", 0, 0), lib.PF_E_UWSGI_MODIFIER),
    (b"\x00\xff\x7f\x00" + b"z" * 10, lib.PF_E_UWSGI_TOO_BIG),
    (b"GET / HTTP/1.1\r\n\r\n", lib.PF_E_UWSGI_HTTP),
    (b"\x00\x04\x00\x00\x09\x00AB", lib.PF_E_UWSGI_VAR),
])
def test_refused_packets_are_reported(ul, data, status):
    c = ul.connect()
    c.sendall(data)
    assert ul.step() == lib.PF_APP_UWSGI_BAD and ul.ctx.status == status
    lib.pf_app_loop_done(ul.l, ul.ctx, 0, 0)
    c.close()


def test_peer_closing_mid_packet_is_reported(ul):
    c = ul.connect()
    c.sendall(pkt(0)[:10])
    assert _step_timeout(ul) == lib.PF_APP_AGAIN
    c.close()
    assert ul.step() == lib.PF_APP_UWSGI_BAD
    assert ul.ctx.status == lib.PF_APP_CLOSED and ul.ctx.have == 10
    lib.pf_app_loop_done(ul.l, ul.ctx, 0, 0)


def test_idle_kept_connection_closed_quietly_on_eof(ul):
    c = ul.connect()
    first = pkt(lib.PF_UWSGI_KEEP)
    c.sendall(first)
    assert ul.step() == lib.PF_APP_UWSGI
    lib.pf_app_loop_done(ul.l, ul.ctx, len(first), 1)
    ul.ctx.fd = -1
    c.close()                                            # the front drops an idle connection
    assert _step_timeout(ul) == lib.PF_APP_AGAIN        # nothing to report


def test_packet_not_finished_within_socket_timeout_is_reported():
    lp = ULoop(packet_ms=200)
    try:
        c = lp.connect()
        c.sendall(b"\x00\x40\x00")
        r = lp.step(tries=40)                            # the sweep runs about once a second
        assert r == lib.PF_APP_UWSGI_BAD and lp.ctx.status == lib.PF_APP_TIMEOUT and lp.ctx.have == 3
        lib.pf_app_loop_done(lp.l, lp.ctx, 0, 0)
        c.settimeout(5)
        assert c.recv(10) == b""
        c.close()
    finally:
        lp.close()


def test_graceful_stop_closes_idle_kept_connections():
    lp = ULoop()
    try:
        c = lp.connect()
        first = pkt(lib.PF_UWSGI_KEEP)
        c.sendall(first)
        assert lp.step() == lib.PF_APP_UWSGI
        os.write(lp.wake_w, b"x")
        assert lp.step(len(first), 1) == lib.PF_APP_STOP     # kept, then closed by the drain
        c.settimeout(5)
        assert c.recv(10) == b""
        c.close()
    finally:
        lp.close()


def test_adopted_connection_is_served_first_then_kept():
    """pf_app_loop_adopt: the blocking loop read a marked packet (plus body bytes, more than
    the loop's own buffer) and hands the connection over."""
    lp = ULoop()
    try:
        c = lp.connect()
        data = pkt(lib.PF_UWSGI_KEEP, CONTENT_LENGTH="20000") + b"b" * 20000
        c.sendall(data)
        fd = lp.ls.accept()[0].detach()
        got = b""
        while len(got) < len(data):
            got += os.read(fd, 65536)
        assert lib.pf_app_loop_adopt(lp.l, lp.ctx, fd, 0, got, len(got)) == 0
        assert lp.step() == lib.PF_APP_UWSGI
        head_len, have = lp.info[1], lp.info[4]
        assert lp.info[0] == fd and have == len(data) and lp.info[2] & lib.PF_UWSGI_PERSIST
        c.sendall(pkt(lib.PF_UWSGI_KEEP, CONTENT_LENGTH="0"))
        assert lp.step(have, 1) == lib.PF_APP_UWSGI and lp.info[0] == fd
        lib.pf_app_loop_done(lp.l, lp.ctx, 0, 0)
        c.close()
    finally:
        lp.close()
