"""Route table: compile -> C load/validate; nginx's server_name and location order."""
import struct

import pytest
from hypothesis import given, settings, strategies as st

from pyfront._native import ffi, lib
from pyfront.config.compile import ConfPlan, LocationPlan, ServerPlan, build_blob, CompileError, parse_template

C = ConfPlan()


def load(blob: bytes):
    err = ffi.new("char[512]")
    r = lib.pf_router_load(blob, len(blob), err, 512)
    return r, ffi.string(err).decode()


def loc(mod, pat, *kids):
    return LocationPlan(mod, pat, C, tuple(kids))


def ids(locations):
    """location pattern -> id, in build_blob's depth-first order (named ones after the rest)."""
    out, n = {}, 0

    def walk(ls):
        nonlocal n
        for l in ls:
            out[(l.modifier + " " + l.pattern).strip()] = n
            n += 1
            walk(l.children)
    walk([l for l in locations if l.modifier != "@"])
    walk([l for l in locations if l.modifier == "@"])
    return out


LOCS = (
    loc("=", "/"), loc("", "/"), loc("", "/images/"), loc("^~", "/static/"),
    loc("~", r"\.(gif|jpg)$"), loc("~*", r"\.PNG$"),
    loc("", "/a/", loc("", "/a/b/"), loc("~", r"\.txt$"), loc("^~", "/a/n/")),
    loc("", "/documents/"), loc("@", "@fallback"),
)


@pytest.fixture(scope="module")
def router():
    srv = ServerPlan(listen=(("127.0.0.1:80", False),), names=("localhost",), conf=C, locations=LOCS)
    r, err = load(build_blob([srv]))
    assert r != ffi.NULL, err
    yield r
    lib.pf_router_free(r)


@pytest.mark.parametrize("uri,want", [
    ("/", "= /"), ("/index.html", "/"), ("/images/x.gif", r"~ \.(gif|jpg)$"), ("/images/x", "/images/"),
    ("/static/x.gif", "^~ /static/"), ("/documents/x.jpg", r"~ \.(gif|jpg)$"), ("/x.png", r"~* \.PNG$"),
    ("/X.PnG", r"~* \.PNG$"), ("/a/b/c", "/a/b/"), ("/a/x.txt", r"~ \.txt$"), ("/a/b/x.txt", r"~ \.txt$"),
    ("/a/b/x.gif", r"~ \.(gif|jpg)$"), ("/a/n/x.txt", "^~ /a/n/"), ("/a/n/x.gif", r"~ \.(gif|jpg)$"),
    ("/documents/", "/documents/"),
])
def test_location_order(router, uri, want):
    b = uri.encode()
    assert lib.pf_router_find_location(router, 0, b, len(b)) == ids(LOCS)[want]


def test_no_location_matches():
    srv = ServerPlan(listen=(("a:1", False),), names=(), conf=C, locations=(loc("", "/x/"),))
    r, err = load(build_blob([srv]))
    assert lib.pf_router_find_location(r, 0, b"/y", 2) == -1
    lib.pf_router_free(r)


NAMES = [
    ServerPlan(listen=(("127.0.0.1:80", False),), names=("first.test",), conf=C),
    ServerPlan(listen=(("127.0.0.1:80", False),), names=("example.com", "www.example.com"), conf=C),
    ServerPlan(listen=(("127.0.0.1:80", False),), names=("*.example.com",), conf=C),
    ServerPlan(listen=(("127.0.0.1:80", False),), names=("*.b.example.com",), conf=C),
    ServerPlan(listen=(("127.0.0.1:80", False),), names=("mail.*",), conf=C),
    ServerPlan(listen=(("127.0.0.1:80", False),), names=(r"~^api[0-9]+\.example\.org$",), conf=C),
    ServerPlan(listen=(("127.0.0.1:80", True),), names=(".dot.test",), conf=C),
    ServerPlan(listen=(("127.0.0.1:81", False),), names=("example.com",), conf=C),
]


@pytest.mark.parametrize("host,want", [
    ("example.com", 1), ("EXAMPLE.COM", 1), ("example.com:80", 1), ("example.com.", 1), ("www.example.com", 1),
    ("x.example.com", 2), ("a.b.example.com", 3), ("mail.example.com", 2), ("mail.org", 4),
    ("api12.example.org", 5), ("api.example.org", 6), ("dot.test", 6), ("x.dot.test", 6),
    ("unknown", 6), ("", 6), ("first.test", 0),
])
def test_server_selection(host, want):
    r, err = load(build_blob(NAMES))
    assert r != ffi.NULL, err
    a = lib.pf_router_addr_index(r, b"127.0.0.1:80", 12)
    h = host.encode()
    assert lib.pf_router_find_server(r, a, h, len(h)) == want
    # the other address only sees its own server (and defaults to its first one)
    a2 = lib.pf_router_addr_index(r, b"127.0.0.1:81", 12)
    assert lib.pf_router_find_server(r, a2, h, len(h)) == 7
    lib.pf_router_free(r)


def test_bad_blobs_are_refused():
    good = build_blob(NAMES)
    for blob, text in [(good[:10], "too short"), (b"XXXX" + good[4:], "bad magic"),
                       (good[:4] + struct.pack("<I", 99) + good[8:], "version 99"),
                       (good[:-1], "length")]:
        r, err = load(blob)
        assert r == ffi.NULL and text in err


def test_bad_regex_named():
    srv = ServerPlan(listen=(("a:1", False),), names=(), conf=C, locations=(loc("~", "(unclosed"),))
    r, err = load(build_blob([srv]))
    assert r == ffi.NULL and "(unclosed" in err


def test_templates():
    assert parse_template("$remote_addr - ${status}x") == [(1, b""), (0, b" - "), (5, b""), (0, b"x")]
    assert parse_template("$http_user_agent") == [(8, b"user-agent")]
    with pytest.raises(CompileError, match='unknown "nosuch" variable'):
        parse_template("$nosuch")


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_blobs_never_crash(data):
    blob = bytearray(build_blob(NAMES[:3] + [ServerPlan(listen=(("a:1", False),), names=(), conf=C, locations=LOCS)]))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(blob) - 1))
        blob[i] = data.draw(st.integers(0, 255))
    r, err = load(bytes(blob))
    if r != ffi.NULL:
        for s in range(4):
            lib.pf_router_find_server(r, 0, b"example.com", 11)
            lib.pf_router_find_location(r, s % 1, b"/a/b/x.txt", 10)
        lib.pf_router_free(r)


@pytest.mark.parametrize("pcre,uri,hit", [
    (r"^/api/\d+$", "/api/42", True), (r"^/api/\d+$", "/api/x", False),
    (r"^/(?:img|css)/[\w.-]+$", "/img/a-b.png", True), (r"^/(?:img|css)/[\w.-]+$", "/js/a.js", False),
    (r"\.(gif|jpe?g)$", "/x.jpeg", True), (r"/\s", "/ x", True), (r"/\s", "/a b", False),
])
def test_pcre_idioms_work_in_posix(pcre, uri, hit):
    from pyfront.config.compile import check_blob
    srv = ServerPlan(listen=(("a:1", False),), names=(), conf=C, locations=(loc("~", pcre),))
    blob = build_blob([srv])
    assert check_blob(blob) is None
    r, _ = load(blob)
    b = uri.encode()
    assert (lib.pf_router_find_location(r, 0, b, len(b)) == 0) == hit
    lib.pf_router_free(r)


def test_check_blob_reports_unusable_regex():
    from pyfront.config.compile import check_blob
    srv = ServerPlan(listen=(("a:1", False),), names=(), conf=C, locations=(loc("~", "a(?=b)"),))
    assert "a(?=b)" in check_blob(build_blob([srv]))
