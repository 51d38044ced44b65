"""The app worker's one-pass uwsgi walk (pf_app_uwsgi_fused, src/c/app_shape.c) against the
general way it replaces (pf_uwsgi_parse -> tidy_flat -> pf_app_shape_split).

Both run through the worker's real C entry, pf_app_uwsgi_take (pf_app_uwsgi_next after its
accept), on a socketpair: one pf_app_uconn with nofuse = 1 (always the general way, the
reference), one as the worker runs it. Both are primed with the same packet (so both shape
tables hold its key sequence), then get the same next packets; everything C hands to Python
or to the response/log must be the same: the return value, flags, head length, bytes read,
the packet fields, the values, SERVER_PROTOCOL, the scoreboard line and request count, the
request log's vars. Also run under ASan/UBSan by `make test-asan`.
"""
from __future__ import annotations

import os
import socket
import struct
import threading
import time

from hypothesis import given, settings, strategies as st

from pyfront._native import ffi, lib

SETTINGS = settings(max_examples=200, deadline=None)
CAP = 8192 + 4
DEVNULL = os.open(os.devnull, os.O_WRONLY)

NGINX_KEYS = [b"QUERY_STRING", b"REQUEST_METHOD", b"CONTENT_TYPE", b"CONTENT_LENGTH", b"REQUEST_URI",
              b"PATH_INFO", b"DOCUMENT_ROOT", b"SERVER_PROTOCOL", b"REQUEST_SCHEME", b"HTTPS", b"REMOTE_ADDR",
              b"REMOTE_PORT", b"SERVER_PORT", b"SERVER_NAME", b"HTTP_HOST", b"HTTP_USER_AGENT", b"HTTP_COOKIE",
              b"SCRIPT_NAME", b"UWSGI_SCHEME"]
DROPPED = [b"HTTP_CONTENT_TYPE", b"HTTP_CONTENT_LENGTH"]
SPECIAL_VALUES = {b"REQUEST_SCHEME": [b"http", b"https", b"HTTPS", b""], b"HTTPS": [b"on", b"1", b"off", b"", b"onn"],
                  b"CONTENT_LENGTH": [b"", b"0", b"5", b"00", b"12345"]}


def packet(pairs, mod1=0, mod2=0, size=None) -> bytes:
    data = b"".join(struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v for k, v in pairs)
    return struct.pack("<BHB", mod1, len(data) if size is None else size, mod2) + data


class Conn:
    """One worker thread's pf_app_uconn with its buffers, board record and request log."""

    def __init__(self, nofuse: int, max_datasize: int, flat_cap: int = 65536):
        self.buf, self.flat = ffi.new("char[]", CAP), ffi.new("char[]", 65536)
        self.core = ffi.new("char[]", 8 + lib.PF_APP_BOARD_LINE)
        self.count = ffi.new("uint64_t *")
        u = self.u = ffi.new("pf_app_uconn *")
        u.timeout_ms, u.max_datasize = 2000, max_datasize
        u.buf, u.cap, u.flat, u.flat_cap, u.fd = self.buf, CAP, self.flat, flat_cap, -1
        u.board.core, u.board.requests = self.core, self.count
        u.log.fd, u.log.pid, u.log.core = DEVNULL, 1, 0
        u.nofuse = nofuse

    def take(self, raw: bytes, split: int | None) -> tuple:
        """Send raw over a socketpair (in two writes when split is set) and close it; take it."""
        a, b = socket.socketpair()
        a.setblocking(False)
        writer = None
        try:
            if split is None:
                b.sendall(raw)
                b.close()
            else:
                b.sendall(raw[:split])

                def rest():
                    time.sleep(0.001)
                    b.sendall(raw[split:])
                    b.close()
                writer = threading.Thread(target=rest)
                writer.start()
            self.u.fd = a.fileno()
            rc = lib.pf_app_uwsgi_take(self.u)
            return self.result(rc)
        finally:
            if writer is not None:
                writer.join(10)
            self.u.fd = -1
            a.close()
            b.close()

    def result(self, rc: int) -> tuple:
        u, p = self.u, self.u.pkt
        out = {"rc": rc, "nread": u.nread, "err": u.err,
               "pkt": (p.modifier1, p.modifier2, p.datasize, p.nvars, p.flat_len, p.flat_nul, p.flat_dup)}
        if rc >= 0:
            lg = u.log

            def span(ptr, n):
                return None if ptr == ffi.NULL else ffi.unpack(ptr, n)
            out.update(flags=u.flags, head_len=u.head_len, proto=span(u.proto, u.proto_len),
                       board=ffi.unpack(self.core + 8, lib.PF_APP_BOARD_LINE), requests=self.count[0],
                       log=(span(lg.method, lg.mlen), span(lg.uri, lg.ulen), span(lg.addr, lg.alen),
                            span(lg.proto, lg.plen), lg.nvars, lg.datasize))
            if not u.flags & lib.PF_UWSGI_SLOW:
                sh = u.sh
                out.update(vals=ffi.unpack(u.vals, rc), shape=sh.shape,
                           keys=ffi.unpack(sh.store + sh.off[sh.shape], sh.len[sh.shape]))
        return out


def both(pkts, max_datasize=4096, results=None, flat_cap=65536):
    """Feed the same packets to the reference and to the worker's way; compare every result."""
    ref, fast = Conn(1, max_datasize, flat_cap), Conn(0, max_datasize, flat_cap)
    fused = []
    for raw, split in pkts:
        want, got = ref.take(raw, split), fast.take(raw, split)
        assert got == want, (raw, split)
        assert ref.u.fused == 0
        if fast.u.fused:
            assert got["rc"] >= 0 and got["flags"] == 0      # only ever the plain case
        fused.append(fast.u.fused)
        if results is not None:
            results.append(want)
    return fused


# ---- strategies --------------------------------------------------------------------------

any_key = st.one_of(st.sampled_from(NGINX_KEYS + DROPPED), st.binary(max_size=20))
plain_value = st.binary(max_size=40).filter(lambda v: b"\0" not in v)


@st.composite
def with_nul(draw):
    """A value of any length with a NUL somewhere (the word-at-a-time check's every lane)."""
    v = bytearray(draw(st.binary(min_size=1, max_size=40).filter(lambda v: b"\0" not in v)))
    v[draw(st.integers(0, len(v) - 1))] = 0
    return bytes(v)


def value_for(key):
    choices = [plain_value, st.binary(max_size=40), with_nul()]
    if key in SPECIAL_VALUES:
        choices.insert(0, st.sampled_from(SPECIAL_VALUES[key]))
    return st.one_of(*choices)


@st.composite
def pairs_for(draw, keys):
    return [(k, draw(value_for(k))) for k in keys]


@st.composite
def prime(draw):
    """A packet the general way registers as a shape: distinct keys, no NUL, modifier1 0."""
    keys = draw(st.lists(any_key, max_size=24, unique=True))
    if draw(st.booleans()):                               # nginx's params first, as uwsgi_params does
        keys = [k for k in NGINX_KEYS if draw(st.booleans())] + [k for k in keys if k not in NGINX_KEYS]
    return [(k, draw(plain_value)) for k in keys]


@st.composite
def variant(draw, base):
    """The next packet: usually the same keys with new values, sometimes a little different."""
    pairs = [(k, draw(value_for(k))) for k, _ in base]
    for _ in range(draw(st.integers(0, 3))):
        what = draw(st.sampled_from(["drop", "drop", "add", "remove", "swap", "key", "dup"]))
        at = draw(st.integers(0, len(pairs)))
        if what == "drop":                                 # nginx's HTTP_CONTENT_* copies
            pairs.insert(at, (draw(st.sampled_from(DROPPED)), draw(st.binary(max_size=12))))
        elif what == "add":
            k = draw(any_key)
            pairs.insert(at, (k, draw(value_for(k))))
        elif pairs and what == "remove":
            del pairs[at % len(pairs)]
        elif len(pairs) > 1 and what == "swap":
            i = at % (len(pairs) - 1)
            pairs[i], pairs[i + 1] = pairs[i + 1], pairs[i]
        elif pairs and what == "key":                      # one byte of a key changed / NUL in it
            i = at % len(pairs)
            k = bytearray(pairs[i][0] or b"X")
            k[draw(st.integers(0, len(k) - 1))] = draw(st.sampled_from([0, ord("X"), ord("_")]))
            pairs[i] = (bytes(k), pairs[i][1])
        elif pairs and what == "dup":
            pairs.insert(at, pairs[at % len(pairs)])
    return pairs


@st.composite
def wire(draw, pairs):
    """The bytes on the wire: modifiers, a lying datasize, a body, a truncation."""
    mod1 = draw(st.sampled_from([0, 0, 0, 0, 30, 5]))
    mod2 = draw(st.sampled_from([0, 0, 0, lib.PF_UWSGI_KEEP, lib.PF_UWSGI_KEEP_HEAD, 7]))
    raw = packet(pairs, mod1, mod2)
    size = len(raw) - 4
    kind = draw(st.sampled_from(["plain"] * 6 + ["body", "cut", "bigger", "smaller", "split"]))
    split = None
    if kind == "body":
        raw += draw(st.binary(min_size=1, max_size=30))
    elif kind == "cut" and len(raw) > 0:
        raw = raw[:draw(st.integers(0, len(raw) - 1))]
    elif kind == "bigger":
        raw = raw[:1] + struct.pack("<H", min(size + draw(st.integers(1, 5)), 0xFFFF)) + raw[3:]
    elif kind == "smaller" and size:
        raw = raw[:1] + struct.pack("<H", size - draw(st.integers(1, min(size, 5)))) + raw[3:]
    elif kind == "split":
        split = draw(st.integers(1, max(1, len(raw) - 1)))
    # (split: whether the first recv() has it all depends on timing; compared, not expected)
    return raw, split, (kind in ("plain", "body") and mod1 == 0 and mod2 not in (lib.PF_UWSGI_KEEP,
                                                                                          lib.PF_UWSGI_KEEP_HEAD))


def plain(pairs) -> bool:
    """Would the general way give the fast result for these vars (no flags)?"""
    d = dict(pairs)
    return (all(b"\0" not in k + v for k, v in pairs)
            and all(sum(1 for k, _ in pairs if k == dk) <= 1 for dk in DROPPED)
            and d.get(b"REQUEST_SCHEME") != b"https" and d.get(b"HTTPS") not in (b"on", b"1")
            and d.get(b"CONTENT_LENGTH", b"") in (b"", b"0"))


# ---- properties --------------------------------------------------------------------------

@SETTINGS
@given(st.data())
def test_fused_walk_matches_the_general_way(data):
    base = data.draw(prime())
    kept = [k for k, _ in base if k not in DROPPED]
    pkts, expect = [(packet(base), None)], [False]
    for _ in range(data.draw(st.integers(1, 3))):
        pairs = data.draw(variant(base))
        raw, split, clean = data.draw(wire(pairs))
        pkts.append((raw, split))
        same_keys = [k for k, _ in pairs if k not in DROPPED] == kept
        expect.append(clean and same_keys and plain(pairs) and len(raw) - 4 <= 4096)
    results = []
    fused = both(pkts, results=results)
    # Coverage, not only agreement: a plain packet with the key sequence of the thread's
    # current shape (the last one the general way split, or the one-pass took) is taken
    # in one pass.
    want_keys, current = b"".join(k + b"\0" for k in kept), None
    for f, want, res in zip(fused, expect, results):
        if want and current == want_keys:
            assert f == 1, pkts
        if res["rc"] >= 0 and not res["flags"] & lib.PF_UWSGI_SLOW:
            current = res["keys"]


@SETTINGS
@given(prime(), st.integers(0, 200), st.sampled_from([16, 4096, 65535]), st.sampled_from([0, 8, 300, 65536]))
def test_datasize_limit_flat_cap_and_big_values(base, extra, limit, flat_cap):
    """buffer-size (max_datasize), a small flat buffer, and values that need the
    word-at-a-time copy's every tail length."""
    grown = [(k, v + b"v" * extra) for k, v in base]
    both([(packet(base), None), (packet(grown), None), (packet(base), None)], max_datasize=limit, flat_cap=flat_cap)


# ---- examples a reader can check by eye ----------------------------------------------------

NGINX = [(b"QUERY_STRING", b""), (b"REQUEST_METHOD", b"GET"), (b"CONTENT_TYPE", b""), (b"CONTENT_LENGTH", b""),
         (b"REQUEST_URI", b"/"), (b"PATH_INFO", b"/"), (b"DOCUMENT_ROOT", b"/usr/share/nginx/html"),
         (b"SERVER_PROTOCOL", b"HTTP/1.1"), (b"REQUEST_SCHEME", b"http"), (b"REMOTE_ADDR", b"127.0.0.1"),
         (b"REMOTE_PORT", b"50312"), (b"SERVER_PORT", b"8080"), (b"SERVER_NAME", b""), (b"HTTP_HOST", b"127.0.0.1")]


def with_(pairs, **kw):
    return [(k, kw.get(k.decode(), v)) for k, v in pairs]


def test_nginx_get_takes_the_one_pass_and_odd_ones_do_not():
    q = with_(NGINX, REQUEST_URI=b"/a?b=c", PATH_INFO=b"/a", QUERY_STRING=b"b=c", REQUEST_METHOD=b"HEAD")
    ct = NGINX[:3] + [(b"HTTP_CONTENT_TYPE", b"text/plain")] + NGINX[3:]
    cases = [
        (packet(NGINX), None, 0),                                   # prime: a new shape
        (packet(q), None, 1),                                       # same keys: one pass
        (packet(ct), None, 1),                                      # + a dropped header copy
        (packet(ct[:5] + ct[3:4] + ct[5:]), None, 0),               # dropped twice: flat_dup
        (packet(with_(NGINX, REQUEST_SCHEME=b"https")), None, 0),   # https: Python reads flat
        (packet(with_(NGINX, CONTENT_LENGTH=b"3")) + b"abc", None, 0),   # a body
        (packet(with_(NGINX, CONTENT_LENGTH=b"0")), None, 1),
        (packet(with_(NGINX, REQUEST_URI=b"/\0x")), None, 0),       # NUL in a value
        (packet(NGINX, mod1=30), None, 0),                          # SCRIPT_NAME stripping
        (packet(NGINX, mod2=lib.PF_UWSGI_KEEP), None, 0),           # pyfront's front: adopted
        (packet(NGINX)[:-3], None, 0),                              # truncated: closed
        (packet(NGINX), 40, None),                                  # in two reads (timing decides)
        (packet(NGINX), None, 1),
        (packet(NGINX[:-1]), None, 0),                              # another shape
        (packet(NGINX), None, 0),                                   # back: found by the general way
        (packet(NGINX, size=len(packet(NGINX)) - 4 - 2), None, 0),  # datasize cuts a value
    ]
    fused = both([(raw, split) for raw, split, _ in cases])
    assert [f if w is not None else None for f, (_, _, w) in zip(fused, cases)] == [f for _, _, f in cases]


def test_fused_notes_and_values():
    ref = Conn(0, 4096)
    ref.take(packet(NGINX), None)
    pairs = with_(NGINX, REQUEST_URI=b"", PATH_INFO=b"/p", SERVER_PROTOCOL=b"HTTP/1.0")
    got = ref.take(packet(pairs), None)
    assert ref.u.fused == 1 and got["flags"] == 0
    assert got["vals"] == b"\0GET\0\0\0\0/p\0/usr/share/nginx/html\0HTTP/1.0\0http\x00127.0.0.1\x0050312\x008080\0\x00127.0.0.1"
    assert got["board"].rstrip(b"\0") == b"GET /p"              # empty REQUEST_URI: PATH_INFO shows
    assert got["log"] == (b"GET", b"/p", b"127.0.0.1", b"HTTP/1.0", 14, len(packet(pairs)) - 4)
    assert got["proto"] == b"HTTP/1.0" and got["requests"] == 2
    assert got["pkt"] == (0, 0, len(packet(pairs)) - 4, 14, len(b"\0".join(k + b"\0" + v for k, v in pairs)), 0, 0)


def test_https_and_body_values_go_the_general_way():
    https = NGINX + [(b"HTTPS", b"")]
    vals = [(b"REQUEST_SCHEME", v) for v in SPECIAL_VALUES[b"REQUEST_SCHEME"]] + \
        [(b"HTTPS", v) for v in SPECIAL_VALUES[b"HTTPS"]] + [(b"CONTENT_LENGTH", v) for v in SPECIAL_VALUES[b"CONTENT_LENGTH"]]
    pkts = [(packet(https), None)] + [(packet(with_(https, **{k.decode(): v})), None) for k, v in vals]
    fused = both(pkts)
    assert fused == [0] + [int(not (v == b"https" or k == b"HTTPS" and v in (b"on", b"1")
                                    or k == b"CONTENT_LENGTH" and v not in (b"", b"0"))) for k, v in vals]


def test_nul_anywhere_in_a_value_of_any_length():
    pkts = [(packet(NGINX), None)]
    for n in range(1, 26):
        for at in range(n):
            v = bytearray(b"x" * n)
            v[at] = 0
            pkts.append((packet(with_(NGINX, DOCUMENT_ROOT=bytes(v))), None))
    pkts += [(packet(with_(NGINX, DOCUMENT_ROOT=b"y" * n)), None) for n in range(26)]
    fused = both(pkts)
    assert fused == [0] + [0] * (len(pkts) - 27) + [1] * 26


def test_a_key_changed_anywhere_is_another_shape():
    """Every byte of every key is compared (the word compare's head, middle and tail)."""
    long_ = NGINX + [(b"HTTP_X_A_RATHER_LONG_HEADER_NAME", b"v")]
    pkts = [(packet(long_), None)]
    for i, (k, v) in enumerate(long_):
        for at in range(len(k)):
            for b in (0, ord("x")):
                kk = bytearray(k)
                kk[at] = b
                pkts.append((packet(long_[:i] + [(bytes(kk), v)] + long_[i + 1:]), None))
                pkts.append((packet(long_), None))          # the base shape current again
    fused = both(pkts)
    assert fused[1::2] == [0] * (len(pkts) // 2)


def test_too_many_keys_for_the_plan_take_the_general_way():
    many = [(b"K%d" % i, b"v") for i in range(lib.PF_APP_FUSE_KEYS + 1)]
    assert both([(packet(many), None), (packet(many), None)]) == [0, 0]
    fits = many[:lib.PF_APP_FUSE_KEYS]
    assert both([(packet(fits), None), (packet(fits), None)]) == [0, 1]
