"""wsgi.py pieces over a real socketpair: wsgi.input semantics and response framing."""
import socket

import pytest

from pyfront.app.wsgi import ClientGone, Input, IOCtx, Response


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    yield a, b
    a.close()
    b.close()


def test_input_never_reads_past_content_length(pair):
    a, b = pair
    b.sendall(b"world\nNEXT-REQUEST-BYTES")   # the peer keeps the socket open
    inp = Input(a.fileno(), b"hello ", 12, IOCtx(4096), 2000)
    assert inp.read() == b"hello world\n"       # would block (timeout) if it read past 12
    assert inp.read() == b"" and inp.read(10) == b""
    assert a.recv(100) == b"NEXT-REQUEST-BYTES"


def test_input_read_n_readline_readlines_iter(pair):
    a, b = pair
    body = b"line1\nline2\nline3 is longer\nlast"
    b.sendall(body[5:])
    inp = Input(a.fileno(), body[:5], len(body), IOCtx(4096), 2000)
    assert inp.read(3) == b"lin"
    assert inp.readline() == b"e1\n"
    assert inp.readline(3) == b"lin"
    assert inp.readline() == b"e2\n"
    assert list(inp) == [b"line3 is longer\n", b"last"]
    assert inp.readline() == b""


def test_input_readlines_hint(pair):
    a, b = pair
    body = b"a\n" * 10
    inp = Input(a.fileno(), body, len(body), IOCtx(4096), 2000)
    assert len(inp.readlines(3)) == 2
    assert len(inp.readlines()) == 8


def test_input_peer_closing_early_raises(pair):
    a, b = pair
    b.sendall(b"abc")
    b.shutdown(socket.SHUT_WR)
    inp = Input(a.fileno(), b"", 10, IOCtx(4096), 2000)
    with pytest.raises(ClientGone):
        inp.read()


def test_chunked_input_and_leftover(pair):
    a, b = pair
    raw = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nGET /next"
    inp = Input(a.fileno(), raw[:7], -1, IOCtx(4096), 2000, chunked=True)
    b.sendall(raw[7:])
    assert inp.read(4) == b"hell"
    assert inp.read() == b"o world"
    assert inp.leftover() == b"GET /next"


def _resp(a, **kw):
    return Response(a.fileno(), IOCtx(4096), 2000, "HTTP/1.1", **kw)


def read_all(b):
    b.settimeout(2)
    out = b""
    while True:
        try:
            d = b.recv(65536)
        except socket.timeout:
            return out
        if not d:
            return out
        out += d


def test_headers_are_sent_with_the_first_body_byte(pair):
    a, b = pair
    r = _resp(a, http=True, keep_alive=True)
    r.start_response("200 OK", [("Content-Type", "text/plain")])
    r.send_result(iter([b"", b"", b"x"]))
    a.shutdown(socket.SHUT_WR)
    out = read_all(b)
    assert out == b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"


def test_exc_info_after_headers_sent_reraises(pair):
    a, b = pair
    r = _resp(a)
    r.start_response("200 OK", [])
    r.write(b"partial")
    try:
        raise KeyError("late")
    except KeyError:
        import sys
        with pytest.raises(KeyError):
            r.start_response("500 Oops", [], sys.exc_info())


def test_second_start_response_without_exc_info_fails(pair):
    a, _ = pair
    r = _resp(a)
    r.start_response("200 OK", [])
    with pytest.raises(AssertionError):
        r.start_response("200 OK", [])


@pytest.mark.parametrize("headers", [[("X", "a\r\nInjected: 1")], [("X\n", "a")], [("X", 1)]])
def test_bad_headers_rejected(pair, headers):
    a, _ = pair
    r = _resp(a)
    r.start_response("200 OK", headers)
    with pytest.raises((ValueError, TypeError)):
        r.send_result([b"body"])


def test_uwsgi_mode_has_no_framing_headers(pair):
    a, b = pair
    r = _resp(a)
    r.start_response("200 OK", [("Content-Type", "text/plain")])
    r.send_result([b"one", b"two"])
    a.shutdown(socket.SHUT_WR)
    assert read_all(b) == b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nonetwo"


def test_single_item_list_gets_content_length(pair):
    a, b = pair
    r = _resp(a, http=True, keep_alive=True)
    r.start_response("200 OK", [("Content-Type", "text/plain")])
    r.send_result([b"hello"])
    a.shutdown(socket.SHUT_WR)
    assert read_all(b) == b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
