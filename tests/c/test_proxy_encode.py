"""src/c/proxy_encode.c through cffi: the uwsgi packet and the proxy_pass request head
as nginx's uwsgi / proxy modules build them (reference §2.1, §2.2)."""
import struct

import pytest

from pyfront._native import ffi, lib
from pyfront.app import packet


def parse(raw: bytes):
    buf = ffi.new("char[]", raw)
    req = ffi.new("pf_http_request *")
    n = lib.pf_http_parse_request(buf, len(raw), ffi.NULL, req)
    assert n > 0, n
    return buf, req


def kvs(pairs):
    arr = ffi.new("pf_kv[]", max(1, len(pairs)))
    keep = []
    for i, (k, v) in enumerate(pairs):
        kb, vb = ffi.new("char[]", k), ffi.new("char[]", v)
        keep += [kb, vb]
        arr[i].name, arr[i].name_len, arr[i].value, arr[i].value_len = kb, len(k), vb, len(v)
    return arr, keep


def uwsgi(raw, params, host=b"h.example", pass_headers=True, cap=70000, m1=0, m2=0):
    buf, req = parse(raw)
    arr, keep = kvs(params)
    out = ffi.new("char[]", cap)
    hb = ffi.new("char[]", host) if host is not None else ffi.NULL
    n = lib.pf_uwsgi_request(m1, m2, arr, len(params), hb, len(host or b""), buf, req, int(pass_headers), out, cap)
    return n, bytes(ffi.buffer(out, max(n, 0)))


def expected(pairs, m1=0, m2=0):
    block = b"".join(struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v for k, v in pairs)
    return bytes([m1]) + struct.pack("<H", len(block)) + bytes([m2]) + block


REQ = (b"GET /a?b=1 HTTP/1.1\r\nHost: h.example\r\nUser-Agent: t\r\nX-Multi: 1\r\nCookie: a=1\r\n"
       b"X-Multi: 2\r\nCookie: b=2\r\nAccept: */*\r\n\r\n")


def test_params_then_host_then_headers_in_order_duplicates_joined():
    n, data = uwsgi(REQ, [(b"QUERY_STRING", b"b=1"), (b"REQUEST_METHOD", b"GET"), (b"CONTENT_LENGTH", b"")])
    assert data == expected([(b"QUERY_STRING", b"b=1"), (b"REQUEST_METHOD", b"GET"), (b"CONTENT_LENGTH", b""),
                             (b"HTTP_HOST", b"h.example"), (b"HTTP_USER_AGENT", b"t"), (b"HTTP_X_MULTI", b"1, 2"),
                             (b"HTTP_COOKIE", b"a=1; b=2"), (b"HTTP_ACCEPT", b"*/*")])
    assert packet.decode(data).size == len(data)            # head = 4 + vars, no body


def test_http_param_suppresses_the_header_case_and_dash_insensitive():
    n, data = uwsgi(REQ, [(b"HTTP_USER_AGENT", b"mine"), (b"http_x_multi", b"z")])
    v = dict(packet.decode(data).vars)
    assert v[b"HTTP_USER_AGENT"] == b"mine" and v[b"http_x_multi"] == b"z"
    assert b"HTTP_X_MULTI" not in v
    assert [k for k, _ in packet.decode(data).vars].count(b"HTTP_USER_AGENT") == 1


def test_explicit_http_host_param_wins_over_default_and_header():
    n, data = uwsgi(REQ, [(b"HTTP_HOST", b"forced")])
    pairs = packet.decode(data).vars
    assert [v for k, v in pairs if k == b"HTTP_HOST"] == [b"forced"]


def test_no_default_host_passes_the_host_header():
    n, data = uwsgi(REQ, [], host=None)
    assert (b"HTTP_HOST", b"h.example") in packet.decode(data).vars


def test_pass_request_headers_off():
    n, data = uwsgi(REQ, [(b"A", b"1")], host=None, pass_headers=False)
    assert data == expected([(b"A", b"1")])


def test_underscore_headers_dropped_and_modifiers():
    raw = b"GET / HTTP/1.1\r\nHost: x\r\nX_Bad: 1\r\nX-Good: 2\r\n\r\n"
    n, data = uwsgi(raw, [], host=None, m1=30, m2=7)
    names = [k for k, _ in packet.decode(data).vars]
    assert b"HTTP_X_GOOD" in names and all(b"BAD" not in k for k in names)
    assert data[0] == 30 and data[3] == 7


def test_limit_65535():
    big = b"v" * 65000
    n, data = uwsgi(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", [(b"A", big)], host=None)
    assert n > 0
    n, _ = uwsgi(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", [(b"A", big), (b"B", b"w" * 600)], host=None)
    assert n == lib.PF_E_UWSGI_TOO_BIG
    n, _ = uwsgi(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", [(b"A", b"1")], host=None, cap=8)
    assert n == lib.PF_E_UWSGI_TOO_BIG


def http_req(raw, line, sets, body_len=-1, cap=8192):
    buf, req = parse(raw)
    arr, keep = kvs(sets)
    out = ffi.new("char[]", cap)
    n = lib.pf_http_upstream_request(line, len(line), arr, len(sets), body_len, buf, req, 1, out, cap)
    return n, bytes(ffi.buffer(out, max(n, 0)))


def test_proxy_request_head():
    raw = (b"POST /x HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n"
           b"Expect: 100-continue\r\nX-A: 1\r\nTE: trailers\r\nKeep-Alive: 5\r\nUpgrade: h2c\r\nX-Skip: s\r\n\r\n")
    n, data = http_req(raw, b"POST /y HTTP/1.0", [(b"X-Skip", b""), (b"Host", b"backend"),
                                                   (b"Connection", b"close")], body_len=12)
    assert data == (b"POST /y HTTP/1.0\r\nHost: backend\r\nConnection: close\r\nContent-Length: 12\r\n"
                    b"X-A: 1\r\n\r\n")


def test_proxy_request_too_big():
    n, _ = http_req(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", b"GET / HTTP/1.0", [(b"Host", b"x" * 100)], cap=50)
    assert n == lib.PF_E_HEADER_TOO_LARGE


def test_stub_status_body_exact():
    out = ffi.new("char[]", 512)
    n = lib.pf_stub_status_body(291, 16630948, 16630948, 31070465, 6, 179, 106, out, 512)
    assert ffi.buffer(out, n)[:] == (b"Active connections: 291 \nserver accepts handled requests\n"
                                     b" 16630948 16630948 31070465 \nReading: 6 Writing: 179 Waiting: 106 \n")
