"""pf_http_parse_response: upstream response heads for the proxy (framing per RFC 9112 §6.3,
keep-alive, garbage -> PF_E_BAD_GATEWAY), each case whole and through every prefix."""
import pytest

from pyfront._native import lib
from tests.c.http_support import NEED_MORE, parse_response

OK = "HTTP/1.1 200 OK\r\n"

VALID = [
    # raw, expected fields (subset), head length (None = whole input)
    (OK + "Content-Length: 5\r\n\r\nhello",
     dict(status=200, reason="OK", version_minor=1, body_kind="length", content_length=5, keep_alive=True), 38),
    ("HTTP/1.0 200 OK\r\n\r\n", dict(version_minor=0, body_kind="close", keep_alive=False), None),
    ("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
     dict(body_kind="length", content_length=0, keep_alive=True), None),
    ("HTTP/1.1 204 No Content\r\n\r\n", dict(status=204, body_kind="none", keep_alive=True), None),
    ("HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\nETag: \"x\"\r\n\r\n",
     dict(status=304, body_kind="none", content_length=100, keep_alive=True), None),
    ("HTTP/1.1 100 Continue\r\n\r\n" + OK + "Content-Length: 0\r\n\r\n", dict(status=100, body_kind="none"), 25),
    ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
     dict(status=101, body_kind="none"), None),
    (OK + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
     dict(body_kind="chunked", chunked=True, keep_alive=True), 47),
    (OK + "Transfer-Encoding: gzip\r\nTransfer-Encoding: Chunked\r\n\r\n", dict(body_kind="chunked"), None),
    (OK + "Transfer-Encoding: chunked, gzip\r\n\r\n", dict(body_kind="close", keep_alive=False), None),
    ("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", dict(status=200, reason="", body_kind="length"), None),
    ("HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", dict(status=404, reason=""), None),
    ("HTTP/1.1 502 Bad  Gateway \t\r\nContent-Length: 0\r\n\r\n", dict(status=502, reason="Bad  Gateway \t"), None),
    (OK + "Set-Cookie: a=1\r\nSet-Cookie: b=2; Path=/\r\nContent-Length: 0\r\n\r\n",
     dict(headers=[["Set-Cookie", "a=1"], ["Set-Cookie", "b=2; Path=/"], ["Content-Length", "0"]]), None),
    (OK + "Content-Length: 3\r\nContent-Length: 3\r\n\r\n", dict(content_length=3, body_kind="length"), None),
    (OK + "Connection: close\r\nContent-Length: 2\r\n\r\n", dict(keep_alive=False), None),
    ("HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n", dict(version_minor=1), None),
    ("HTTP/1.1 999 Custom\r\nContent-Length: 0\r\n\r\n", dict(status=999), None),
    (OK + "X-Latin: caf\xe9\r\nContent-Length: 0\r\n\r\n", dict(status=200), None),
]

INVALID = [
    ("hello world\r\n\r\n", "BAD_STATUS_LINE"),
    ("HTTP/1.1 20 OK\r\n\r\n", "BAD_STATUS_LINE"),
    ("HTTP/1.1 2000 OK\r\n\r\n", "BAD_STATUS_LINE"),
    ("HTTP/1.1 099 Low\r\n\r\n", "BAD_STATUS_LINE"),
    ("HTTP/1.1  200 OK\r\n\r\n", "BAD_STATUS_LINE"),
    ("HTTP/2.0 200 OK\r\n\r\n", "BAD_STATUS_LINE"),
    ("http/1.1 200 OK\r\n\r\n", "BAD_STATUS_LINE"),
    ("HTTP/1.1 200 O\x00K\r\n\r\n", "NUL"),
    ("HTTP/1.1 200 O\x01K\r\n\r\n", "BAD_STATUS_LINE"),
    ("HTTP/1.1 200 OK\nContent-Length: 0\n\n", "BARE_LF"),
    (OK + "Content-Length: 0\r\n\n", "BARE_LF"),
    (OK + "X: a\rY: b\r\n\r\n", "BARE_CR"),
    (OK + "X: a\r\n b\r\n\r\n", "OBS_FOLD"),
    (OK + "Content-Length : 0\r\n\r\n", "SPACE_BEFORE_COLON"),
    (OK + "no colon here\r\n\r\n", "NO_COLON"),
    (OK + "Content-Length: 3\r\nContent-Length: 4\r\n\r\n", "DUP_CONTENT_LENGTH"),
    (OK + "Content-Length: -3\r\n\r\n", "BAD_CONTENT_LENGTH"),
    (OK + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", "CL_AND_TE"),
    (OK + "X: \x7f\r\n\r\n", "BAD_FIELD_VALUE"),
    (OK + "".join(f"X-{i}: {i}\r\n" for i in range(101)) + "\r\n", "TOO_MANY_HEADERS"),
    (OK + "X-Big: " + "b" * 9000 + "\r\n\r\n", "HEADER_LINE_TOO_LONG"),
    ("HTTP/1.1 200 " + "r" * 9000 + "\r\n\r\n", "BAD_STATUS_LINE"),
]


def enc(s: str) -> bytes:
    return s.encode("latin-1")


def prefixes_agree(data: bytes):
    final = parse_response(data)
    decided = None
    for k in range(len(data) + 1):
        r = parse_response(data[:k])
        if r[0] == NEED_MORE:
            assert decided is None
            continue
        decided = decided or k
        assert r == final, k
    return final


@pytest.mark.parametrize("raw,exp,head", VALID, ids=[str(i) for i in range(len(VALID))])
def test_valid_response(raw, exp, head):
    data = enc(raw)
    rc, f, why = prefixes_agree(data)
    assert rc == (head if head is not None else len(data)), why
    for k, v in exp.items():
        assert f[k] == v, k


@pytest.mark.parametrize("raw,why", INVALID, ids=[w + str(i) for i, (_, w) in enumerate(INVALID)])
def test_invalid_response_is_bad_gateway(raw, why):
    rc, f, got = prefixes_agree(enc(raw))
    assert (rc, got) == (lib.PF_E_BAD_GATEWAY, why)


def test_response_limits():
    data = enc(OK + "X: " + "v" * 61 + "\r\n\r\n")   # field line of 64 bytes
    assert parse_response(data, dict(max_header_line=64))[0] == len(data)
    assert parse_response(data, dict(max_header_line=63))[2] == "HEADER_LINE_TOO_LONG"


def parse_cgi(data: bytes):
    from pyfront._native import ffi
    from tests.c.http_support import exact_buffer, s, WHY_NAME, BODY
    r = ffi.new("pf_http_response *")
    with exact_buffer(data) as p:
        rc = lib.pf_http_parse_cgi_response(p, len(data), ffi.NULL, r)
    if rc < 0:
        return rc, WHY_NAME[r.error] if rc != NEED_MORE else "NONE"
    return rc, (r.status, s(data, r.reason), BODY[r.body], bool(r.keep_alive))


@pytest.mark.parametrize("raw,exp", [
    ("Status: 404 Not Found\r\nContent-Length: 3\r\n\r\nnf!", (404, "Not Found", "length", True)),
    ("Content-Type: text/plain\r\nStatus: 201\r\n\r\n", (201, "", "close", False)),
    ("Location: /x\r\nContent-Length: 0\r\n\r\n", (302, "", "length", True)),
    ("Content-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n", (200, "", "chunked", True)),
    ("\r\n", (200, "", "close", False)),
])
def test_cgi_style_response(raw, exp):
    data = enc(raw)
    head = data.index(b"\r\n\r\n") + 4 if b"\r\n\r\n" in data else 2
    for k in range(head):
        assert parse_cgi(data[:k])[0] == NEED_MORE
    assert parse_cgi(data) == (head, exp)


@pytest.mark.parametrize("raw,why", [
    ("Status: 2000 X\r\n\r\n", "BAD_STATUS_LINE"),
    ("Status: OK\r\n\r\n", "BAD_STATUS_LINE"),
    ("HTTP/1.1 200 OK\r\n\r\n", "NO_COLON"),
    ("Status: 200\nX: y\r\n\r\n", "BARE_LF"),
])
def test_cgi_style_garbage_is_bad_gateway(raw, why):
    assert parse_cgi(enc(raw)) == (lib.PF_E_BAD_GATEWAY, why)
