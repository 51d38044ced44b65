"""Hypothesis properties of the C HTTP parsers (through pyfront._native only)."""
from hypothesis import given, settings, strategies as st

from pyfront._native import lib
from tests.c.http_support import (NEED_MORE, STATUS_OF, Chunked, parse_request,
                                  parse_response)

SETTINGS = settings(max_examples=200, deadline=None)
TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
ERRORS = set(STATUS_OF)

token = st.text(alphabet=TCHAR, min_size=1, max_size=12)
# field values: VCHAR / obs-text with inner SP/HTAB, no leading/trailing OWS
vchar = st.sampled_from([chr(c) for c in range(0x21, 0x7f)] + ["\xe9", "\xff"])
value = st.lists(st.one_of(vchar, st.sampled_from([" ", "\t"])), max_size=20).map("".join).map(
    lambda v: v.strip(" \t"))
pchar = st.sampled_from(list("abcXYZ019-._~!$&'()*+,;=:@%/"))
path = st.lists(pchar, max_size=20).map(lambda cs: "/" + "".join(cs))
query = st.one_of(st.none(), st.lists(st.sampled_from(list("ab=&%20/?")), max_size=12).map("".join))
RESERVED = {"host", "content-length", "transfer-encoding", "connection", "expect", "upgrade"}
extra_header = st.tuples(token.filter(lambda n: n.lower() not in RESERVED), value)


@st.composite
def requests(draw):
    method = draw(st.one_of(st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"]), token))
    p, q = draw(path), draw(query)
    target = p + ("?" + q if q is not None else "")
    minor = draw(st.sampled_from([0, 1]))
    headers = draw(st.lists(extra_header, max_size=12))
    host = draw(st.from_regex(r"[a-z0-9]([a-z0-9.-]{0,20}[a-z0-9])?(:[0-9]{1,5})?", fullmatch=True)
                .filter(lambda h: ".." not in h))
    headers.insert(draw(st.integers(0, len(headers))), ("Host", host))
    conn = draw(st.sampled_from([None, "close", "keep-alive"]))
    if conn:
        headers.append(("Connection", conn))
    cl = draw(st.one_of(st.none(), st.integers(0, 10**12)))
    if cl is not None:
        headers.append(("Content-Length", str(cl)))
    ows = draw(st.sampled_from(["", " ", "  ", "\t", " \t"]))
    raw = f"{method} {target} HTTP/1.{minor}\r\n" + "".join(
        f"{n}:{ows}{v}{ows}\r\n" for n, v in headers) + "\r\n"
    keep = (conn != "close") if minor == 1 else conn == "keep-alive"
    expect = dict(method=method, target=target, path=p, query=q or "", host=host, version_minor=minor,
                  headers=[[n, v] for n, v in headers], keep_alive=keep,
                  content_length=-1 if cl is None else cl,
                  body_kind="none" if cl is None else "length")
    return raw.encode("latin-1"), expect


@SETTINGS
@given(requests(), st.data())
def test_generated_request_round_trips_under_any_split(req, data):
    raw, expect = req
    rc, f, why = parse_request(raw)
    assert rc == len(raw), why
    for k, v in expect.items():
        assert f[k] == v, k
    k = data.draw(st.integers(0, len(raw) - 1))
    assert parse_request(raw[:k])[0] == NEED_MORE
    # trailing bytes (a pipelined request) change nothing
    assert parse_request(raw + b"GET / HTTP/1.1\r\n") == (rc, f, why)


FRAGMENTS = [b"GET ", b"POST ", b"/", b"?", b"#", b" HTTP/1.1", b" HTTP/1.0", b"HTTP/2.0", b"\r\n", b"\r",
             b"\n", b":", b" ", b"\t", b"\x00", b"\x7f", b"\xff", b"Host: a", b"Content-Length: 5",
             b"Transfer-Encoding: chunked", b"Connection: close", b"http://x", b"*", b"0", b"a"]
http_ish = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=4)), max_size=40).map(b"".join)
anybytes = st.one_of(st.binary(max_size=300), http_ish)


@SETTINGS
@given(anybytes, st.data())
def test_arbitrary_bytes_end_in_a_defined_state(raw, data):
    rc, f, why = parse_request(raw)
    assert rc == NEED_MORE or rc in ERRORS or 0 < rc <= len(raw)
    assert (why != "NONE") == (rc in ERRORS)
    k = data.draw(st.integers(0, len(raw)))
    pre = parse_request(raw[:k])
    assert pre[0] == NEED_MORE or pre == (rc, f, why), "a prefix decided differently"


@SETTINGS
@given(anybytes, st.data())
def test_arbitrary_response_bytes_end_in_a_defined_state(raw, data):
    raw = data.draw(st.sampled_from([raw, b"HTTP/1.1 200 OK\r\n" + raw]))
    rc, f, why = parse_response(raw)
    assert rc == NEED_MORE or rc == lib.PF_E_BAD_GATEWAY or 0 < rc <= len(raw)
    k = data.draw(st.integers(0, len(raw)))
    pre = parse_response(raw[:k])
    assert pre[0] == NEED_MORE or pre == (rc, f, why)


ext = st.lists(st.tuples(token, st.one_of(st.none(), token, st.text(alphabet=TCHAR + " ,;=", max_size=8)
                                                   .map(lambda s: '"' + s + '"'))), max_size=3)


@st.composite
def chunked_bodies(draw):
    chunks = draw(st.lists(st.binary(min_size=1, max_size=300), max_size=8))
    out = b""
    for c in chunks:
        size = b"%x" % len(c)
        size = draw(st.sampled_from([size, size.upper(), b"00" + size]))
        e = b"".join(b";" + n.encode() + (b"=" + v.encode() if v is not None else b"") for n, v in draw(ext))
        out += size + e + b"\r\n" + c + b"\r\n"
    trailers = draw(st.lists(extra_header, max_size=3))
    out += b"0\r\n" + b"".join(f"{n}: {v}\r\n".encode("latin-1") for n, v in trailers) + b"\r\n"
    return out, b"".join(chunks)


@SETTINGS
@given(chunked_bodies(), st.lists(st.integers(1, 64), min_size=1, max_size=50), st.binary(max_size=20))
def test_chunked_any_split_same_payload(body, cuts, after):
    wire, payload = body
    c = Chunked()
    pos, i = 0, 0
    stream = wire + after           # bytes after the body (a pipelined request) stay unconsumed
    while pos < len(stream) and not c.done:
        n = cuts[i % len(cuts)]
        i += 1
        got = c.feed(stream[pos:pos + n])
        assert got >= 0, c.error
        pos += got
    assert c.done and bytes(c.payload) == payload
    assert c.consumed == len(wire) and c.st.total == len(payload)


@SETTINGS
@given(st.one_of(st.binary(max_size=200), chunked_bodies().map(lambda b: b[0][:-1] + b"\x00")),
       st.integers(1, 16))
def test_chunked_arbitrary_bytes(raw, step):
    c = Chunked()
    for p in range(0, len(raw), step):
        if c.feed(raw[p:p + step]) < 0 or c.done:
            break
    if c.error != "NONE":   # sticky
        assert c.feed(b"0\r\n\r\n") == -1


@st.composite
def pipelined(draw):
    """Several requests back to back, each with no body, a Content-Length body or a chunked one."""
    stream, want = b"", []
    for _ in range(draw(st.integers(1, 4))):
        p = draw(path)
        kind = draw(st.sampled_from(["none", "length", "chunked"]))
        body = b"" if kind == "none" else draw(st.binary(max_size=200))
        head = f"POST {p} HTTP/1.1\r\nHost: h\r\n".encode()
        if kind == "length":
            stream += head + b"Content-Length: %d\r\n\r\n" % len(body) + body
        elif kind == "chunked":
            cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=4)))
            parts = [body[a:b] for a, b in zip([0] + cuts, cuts + [len(body)]) if b > a]
            stream += head + b"Transfer-Encoding: chunked\r\n\r\n" + b"".join(
                b"%x\r\n%s\r\n" % (len(x), x) for x in parts) + b"0\r\n\r\n"
        else:
            stream += head + b"\r\n"
        want.append((p, kind, body.decode("latin-1")))
    return stream, want


@SETTINGS
@given(pipelined(), st.integers(0, 9))
def test_pipelined_requests_come_out_as_sent(case, step):
    from tests.c.http_support import read_messages
    stream, want = case
    got, err, rest = read_messages(stream, step=step)
    assert err is None and rest == b""
    assert [(g["path"], g["body_kind"], g["body"]) for g in got] == want
