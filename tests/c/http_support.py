"""Python view of the C HTTP parsers (pf_http_parse_request / _response, pf_chunked_feed)
for the tests. Bytes are shown as latin-1 strings so that every byte round-trips."""
import os
from dataclasses import dataclass, field

from cffi import FFI

from pyfront._native import ffi, lib

# ---- input buffers that end exactly where readable memory ends -----------------------
# A parser that reads one byte past `len` must fail loudly, as in picohttpparser's tests:
# normally the input is placed just before a PROT_NONE page (SIGSEGV on over-read); under
# AddressSanitizer it is copied into an exact-size malloc block (heap-buffer-overflow report).
_cffi = FFI()
_cffi.cdef("""
    void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset);
    int mprotect(void *addr, size_t len, int prot);
    void *malloc(size_t size);
    void free(void *ptr);
""")
_libc = _cffi.dlopen(None)
_PAGE = os.sysconf("SC_PAGE_SIZE")
UNDER_ASAN = "asan" in os.environ.get("LD_PRELOAD", "")


class _Guarded:
    def __init__(self):
        self.cap = 0
        self.end = 0

    def place(self, data: bytes):
        if len(data) > self.cap:   # grow: a fresh mapping (the old one is simply leaked)
            pages = (len(data) + _PAGE - 1) // _PAGE + 1
            base = _libc.mmap(_cffi.NULL, (pages + 1) * _PAGE, 0x1 | 0x2, 0x02 | 0x20, -1, 0)
            addr = int(_cffi.cast("uintptr_t", base))
            assert addr not in (0, 2**64 - 1), "mmap failed"
            assert _libc.mprotect(_cffi.cast("void *", addr + pages * _PAGE), _PAGE, 0) == 0
            self.cap, self.end = pages * _PAGE, addr + pages * _PAGE
        start = self.end - len(data)
        _cffi.memmove(_cffi.cast("char *", start), data, len(data))
        return ffi.cast("const char *", start)


_guard = _Guarded()


class exact_buffer:
    """with exact_buffer(data) as p: p is a `const char *` to len(data) readable bytes only."""

    def __init__(self, data: bytes):
        self.data = data
        self.block = None

    def __enter__(self):
        if not UNDER_ASAN:
            return _guard.place(self.data)
        self.block = _libc.malloc(max(len(self.data), 1))
        _cffi.memmove(self.block, self.data, len(self.data))
        return ffi.cast("const char *", int(_cffi.cast("uintptr_t", self.block)))

    def __exit__(self, *exc):
        if self.block is not None:
            _libc.free(self.block)

NEED_MORE = lib.PF_NEED_MORE
WHY = {n[len("PF_HTTP_WHY_"):]: getattr(lib, n) for n in dir(lib) if n.startswith("PF_HTTP_WHY_")}
WHY_NAME = {v: k for k, v in WHY.items()}
STATUS_OF = {  # PF_E_* -> the HTTP status it stands for
    lib.PF_E_BAD_REQUEST: 400, lib.PF_E_URI_TOO_LONG: 414, lib.PF_E_HEADER_TOO_LARGE: 431,
    lib.PF_E_VERSION: 505, lib.PF_E_NOT_IMPLEMENTED: 501, lib.PF_E_BAD_GATEWAY: 502,
}
FORMS = {lib.PF_TARGET_ORIGIN: "origin", lib.PF_TARGET_ABSOLUTE: "absolute", lib.PF_TARGET_ASTERISK: "asterisk"}
BODY = {lib.PF_BODY_NONE: "none", lib.PF_BODY_LENGTH: "length", lib.PF_BODY_CHUNKED: "chunked",
        lib.PF_BODY_CLOSE: "close"}
METHODS = {getattr(lib, "PF_M_" + m): m for m in
           ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT")}


def s(data: bytes, span) -> str:
    assert span.off + span.len <= len(data), "span outside the buffer"
    return data[span.off:span.off + span.len].decode("latin-1")


def make_limits(limits):
    if limits is None:
        return ffi.NULL
    lim = ffi.new("pf_http_limits *")
    lim.max_request_line = limits.get("max_request_line", 0)
    lim.max_header_line = limits.get("max_header_line", 0)
    return lim


def parse_request(data: bytes, limits=None, req=None):
    """-> (rc, fields dict or None, why name)"""
    req = req if req is not None else ffi.new("pf_http_request *")
    with exact_buffer(data) as p:
        rc = lib.pf_http_parse_request(p, len(data), make_limits(limits), req)
    if rc > 0:
        return rc, request_fields(data, req), "NONE"
    return rc, None, WHY_NAME[req.error] if rc != NEED_MORE else "NONE"


def headers_of(data, obj):
    return [[s(data, obj.headers[i].name), s(data, obj.headers[i].value)] for i in range(obj.nheaders)]


def request_fields(data: bytes, r) -> dict:
    method = s(data, r.method)
    assert METHODS.get(r.method_id, None) in (method, None)
    assert r.method_id != lib.PF_M_OTHER or method not in METHODS.values()
    d = dict(method=method, target=s(data, r.target), path=s(data, r.path), query=s(data, r.query),
             host=s(data, r.host), version_minor=r.version_minor, target_form=FORMS[r.target_form],
             content_length=r.content_length, body_kind=BODY[r.body], keep_alive=bool(r.keep_alive),
             expect_continue=bool(r.expect_continue), upgrade=bool(r.upgrade), headers=headers_of(data, r))
    assert bool(r.chunked) == (d["body_kind"] == "chunked")
    if r.host_index >= 0:
        assert d["headers"][r.host_index][0].lower() == "host"
    return d


def parse_response(data: bytes, limits=None):
    resp = ffi.new("pf_http_response *")
    with exact_buffer(data) as p:
        rc = lib.pf_http_parse_response(p, len(data), make_limits(limits), resp)
    if rc > 0:
        d = dict(version_minor=resp.version_minor, status=resp.status, reason=s(data, resp.reason),
                 content_length=resp.content_length, body_kind=BODY[resp.body],
                 chunked=bool(resp.chunked), keep_alive=bool(resp.keep_alive), headers=headers_of(data, resp))
        return rc, d, "NONE"
    return rc, None, WHY_NAME[resp.error] if rc != NEED_MORE else "NONE"


@dataclass
class Chunked:
    """Feeds a chunked body through pf_chunked_feed in pieces, like a socket would."""
    st: object = field(default_factory=lambda: ffi.new("pf_chunked *"))
    payload: bytearray = field(default_factory=bytearray)
    consumed: int = 0
    done: bool = False
    error: str = "NONE"

    def __post_init__(self):
        lib.pf_chunked_init(self.st)

    def feed(self, piece: bytes) -> int:
        """Feeds one piece; returns how many of its bytes were consumed (< len only when done)."""
        off, dlen, done = ffi.new("size_t *"), ffi.new("size_t *"), ffi.new("int *")
        pos = 0
        while pos < len(piece) and not self.done:
            rest = piece[pos:]
            with exact_buffer(rest) as p:
                n = lib.pf_chunked_feed(self.st, p, len(rest), off, dlen, done)
            if n < 0:
                assert n == lib.PF_E_BAD_REQUEST
                self.error = WHY_NAME[self.st.error]
                return -1
            assert 0 < n <= len(rest), "a call before done must consume at least one byte"
            assert off[0] + dlen[0] <= n
            self.payload += rest[off[0]:off[0] + dlen[0]]
            self.done = bool(done[0])
            pos += n
        self.consumed += pos
        return pos


def decode_chunked(body: bytes, step: int = 0):
    """Whole (step 0) or in pieces of `step` bytes -> Chunked."""
    c = Chunked()
    pieces = [body] if step == 0 else [body[i:i + step] for i in range(0, len(body), step)]
    for p in pieces:
        if c.feed(p) < 0 or c.done:
            break
    return c


def read_messages(data: bytes, limits=None, step: int = 0):
    """Reads pipelined requests (head + body) from data like a front worker would.
    -> (list of field dicts with 'body', error dict or None, bytes left over)."""
    out, pos = [], 0
    while pos < len(data):
        rc, f, why = parse_request(data[pos:], limits)
        if rc == NEED_MORE:
            break
        if rc < 0:
            return out, dict(status=STATUS_OF[rc], why=why, stage="head"), data[pos:]
        pos += rc
        if f["body_kind"] == "length":
            if len(data) - pos < f["content_length"]:
                break
            f["body"] = data[pos:pos + f["content_length"]].decode("latin-1")
            pos += f["content_length"]
        elif f["body_kind"] == "chunked":
            c = decode_chunked(data[pos:], step)
            if c.error != "NONE":
                f["body"] = None
                out.append(f)
                return out, dict(status=400, why=c.error, stage="body"), data[pos:]
            if not c.done:
                break
            f["body"] = c.payload.decode("latin-1")
            pos += c.consumed
        else:
            f["body"] = ""
        out.append(f)
    return out, None, data[pos:]
