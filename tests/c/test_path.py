"""pf_path_normalize / pf_path_join: URIs can never name a file outside root or alias."""
import pytest
from hypothesis import given, settings, strategies as st

from pyfront._native import ffi, lib

BAD = lib.PF_E_BAD_REQUEST if hasattr(lib, "PF_E_BAD_REQUEST") else -400


def norm(raw: bytes):
    out = ffi.new("char[]", 4096)
    n = lib.pf_path_normalize(raw, len(raw), out, 4096)
    return ffi.string(out, n) if n >= 0 else n


def join(base: bytes, rest: bytes):
    out = ffi.new("char[]", 4096)
    n = lib.pf_path_join(base, len(base), rest, len(rest), out, 4096)
    return ffi.string(out, n) if n >= 0 else n


@pytest.mark.parametrize("raw,want", [
    (b"/", b"/"), (b"/a", b"/a"), (b"/a/", b"/a/"), (b"//a//b", b"/a/b"), (b"/a/./b", b"/a/b"),
    (b"/a/../b", b"/b"), (b"/a/..", b"/"), (b"/a/.", b"/a/"), (b"/a/b/../../c", b"/c"),
    (b"/a/%2e%2e/b", b"/b"), (b"/a%2fb", b"/a/b"), (b"/%61", b"/a"), (b"/static..%2f", b"/static../"),
    (b"/static..%2fx", b"/static../x"), (b"/a%20b", b"/a b"), (b"/...", b"/..."), (b"/a/.b", b"/a/.b"),
    (b"/%2E%2E%2Fa", -400), (b"/..", -400), (b"/../x", -400), (b"/%2e%2e/x", -400), (b"/%2e%2e", -400),
    (b"/a/../../x", -400), (b"/%00", -400), (b"/a%00.html", -400), (b"/%zz", -400), (b"/%4", -400),
    (b"/%", -400), (b"a", -400), (b"", -400), (b"/./../x", -400),
])
def test_normalize(raw, want):
    assert norm(raw) == want


@pytest.mark.parametrize("base,rest,want", [
    (b"/srv/www", b"/a.txt", b"/srv/www/a.txt"), (b"/srv/www/", b"/a.txt", b"/srv/www/a.txt"),
    (b"/dir/", b"x", b"/dir/x"), (b"/dir/", b"", b"/dir/"), (b"/dir/", b"/", b"/dir/"),
    # the classic misconfiguration: location /static { alias /dir/; } + /static../secret
    (b"/dir/", b"..", -400), (b"/dir/", b"../secret", -400), (b"/dir/", b"/../x", -400),
    # alias without trailing slash + location with one would make "/dirx": a sibling
    (b"/dir", b"x", -400), (b"/dir", b"/x", b"/dir/x"), (b"/dir/", b".", b"/dir/."),
    (b"/dir/", b"..x", b"/dir/..x"),
])
def test_join(base, rest, want):
    assert join(base, rest) == want


segment = st.sampled_from([b"a", b"b", b".", b"..", b"", b"%2e", b"%2E%2e", b"%2f", b"x%2f..", b"...", b"%00"])


@settings(max_examples=200, deadline=None)
@given(st.lists(segment, max_size=8), st.sampled_from([b"/static/", b"/static", b"/"]),
       st.sampled_from([b"/srv/root/", b"/srv/root"]))
def test_never_escapes(segs, prefix, alias):
    """Whatever the URI, a successful normalise + alias join stays under the alias dir."""
    uri = b"/" + b"/".join(segs)
    n = norm(uri)
    if isinstance(n, int):
        assert n in (-400, -414)
        return
    assert b"\0" not in n and b"//" not in n
    assert all(s not in (b"..", b".") for s in n.split(b"/")[1:-1] + ([n.split(b"/")[-1]] if n.split(b"/")[-1] else []))
    if not n.startswith(prefix):
        return
    joined = join(alias, n[len(prefix):])
    if isinstance(joined, int):
        return
    import os.path
    real = os.path.normpath(joined.decode("latin-1"))
    base = alias.rstrip(b"/").decode()
    assert real == base or real.startswith(base + "/"), (uri, joined)
