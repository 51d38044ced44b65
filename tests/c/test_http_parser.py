"""The HTTP request corpus (tests/corpus/http/{valid,invalid}) through the C parser:
each case whole, then byte by byte (every prefix is need-more or the final answer)."""
import json
import os

import pytest

from tests.c.http_support import (NEED_MORE, STATUS_OF, decode_chunked, parse_request,
                                  read_messages)

CORPUS = os.path.join(os.path.dirname(__file__), "..", "corpus", "http")


def cases(kind):
    d = os.path.join(CORPUS, kind)
    names = sorted(f[:-5] for f in os.listdir(d) if f.endswith(".http"))
    return [pytest.param(os.path.join(d, n + ".http"), id=n) for n in names]


def load(path):
    with open(path, "rb") as f:
        raw = f.read()
    with open(path[:-5] + ".json", encoding="utf-8") as f:
        exp = json.load(f)
    return raw, exp


def check_messages(got, expected):
    assert len(got) == len(expected), [g["target"] for g in got]
    for g, e in zip(got, expected):
        for key, val in e.items():
            if key == "body" and g.get("body") is None:
                continue
            assert g[key] == val, (key, g[key], val)


def test_corpus_size():
    assert len(cases("valid")) >= 40 and len(cases("invalid")) >= 40


@pytest.mark.parametrize("path", cases("valid"))
def test_valid_whole(path):
    raw, exp = load(path)
    got, err, rest = read_messages(raw, exp.get("limits"))
    assert err is None, err
    assert rest == b""
    check_messages(got, exp["messages"])


@pytest.mark.parametrize("path", cases("invalid"))
def test_invalid_whole(path):
    raw, exp = load(path)
    got, err, _ = read_messages(raw, exp.get("limits"))
    check_messages(got, exp["messages"])
    assert err == exp["error"]


def head_prefixes_agree(data, limits):
    """Every prefix of data gives NEED_MORE or exactly the whole input's (rc, fields, why);
    once decided, every longer prefix gives the same. Returns the whole input's result."""
    final = parse_request(data, limits)
    decided_at = None
    for k in range(len(data) + 1):
        r = parse_request(data[:k], limits)
        if r[0] == NEED_MORE:
            assert decided_at is None, f"prefix {k} went back to NEED_MORE after {decided_at}"
            continue
        if decided_at is None:
            decided_at = k
        assert r == final, f"prefix of {k} bytes"
    if final[0] > 0:
        assert decided_at == final[0], "complete before its blank line, or late"
    return final


@pytest.mark.parametrize("path", cases("valid") + cases("invalid"))
def test_byte_by_byte(path):
    raw, exp = load(path)
    limits = exp.get("limits")
    pos = 0
    msgs = exp["messages"]
    for i in range(len(msgs) + (1 if exp.get("error") else 0)):
        rc, fields, why = head_prefixes_agree(raw[pos:], limits)
        if rc < 0:
            assert exp["error"]["stage"] == "head" and i == len(msgs)
            assert (STATUS_OF[rc], why) == (exp["error"]["status"], exp["error"]["why"])
            return
        pos += rc
        if fields["body_kind"] == "length":
            pos += fields["content_length"]
        elif fields["body_kind"] == "chunked":
            whole = decode_chunked(raw[pos:])
            one = decode_chunked(raw[pos:], step=1)
            assert (one.payload, one.done, one.error) == (whole.payload, whole.done, whole.error)
            if whole.error == "NONE":
                assert one.consumed == whole.consumed
            if whole.error != "NONE":
                assert exp["error"] == dict(status=400, why=whole.error, stage="body")
                return
            pos += whole.consumed
    assert pos == len(raw)


def test_spans_point_into_the_callers_buffer():
    from pyfront._native import ffi, lib
    data = b"GET /p?q HTTP/1.1\r\nHost: h\r\n\r\n"
    buf = ffi.new("char[]", data)
    req = ffi.new("pf_http_request *")
    assert lib.pf_http_parse_request(buf, len(data), ffi.NULL, req) == len(data)
    assert ffi.string(buf + req.path.off, req.path.len) == b"/p"
    assert ffi.string(buf + req.query.off, req.query.len) == b"q"
    assert req.error == 0


def test_header_index_finds_repeated_fields_case_insensitively():
    from pyfront._native import ffi, lib
    data = b"GET / HTTP/1.1\r\nHost: h\r\nAccept: a\r\nX-Y: 1\r\naccept: b\r\n\r\n"
    req = ffi.new("pf_http_request *")
    assert lib.pf_http_parse_request(data, len(data), ffi.NULL, req) == len(data)
    first = lib.pf_http_header_index(data, req.headers, req.nheaders, b"ACCEPT", 6, 0)
    second = lib.pf_http_header_index(data, req.headers, req.nheaders, b"ACCEPT", 6, first + 1)
    assert (first, second) == (1, 3)
    assert lib.pf_http_header_index(data, req.headers, req.nheaders, b"ACCEPT", 6, second + 1) == -1
    assert lib.pf_http_header_index(data, req.headers, req.nheaders, b"Accep", 5, 0) == -1
    assert lib.pf_http_header_index(data, req.headers, req.nheaders, b"host", 4, 0) == req.host_index == 0


def test_error_names_the_offending_line():
    from pyfront._native import ffi, lib
    data = b"\r\nGET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n"
    req = ffi.new("pf_http_request *")
    assert lib.pf_http_parse_request(data, len(data), ffi.NULL, req) == lib.PF_E_BAD_REQUEST
    assert req.error == lib.PF_HTTP_WHY_OBS_FOLD and data[req.error_off:].startswith(b" b\r\n")
    assert ffi.string(lib.pf_http_why_text(req.error)) == b"obsolete line folding"
    data = b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n"
    assert lib.pf_http_parse_request(data, len(data), ffi.NULL, req) == lib.PF_E_BAD_REQUEST
    assert req.error == lib.PF_HTTP_WHY_NO_HOST and req.error_off == 0
    assert ffi.string(lib.pf_http_why_text(9999)) == b"unknown error"
