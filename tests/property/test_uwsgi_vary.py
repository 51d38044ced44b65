"""pf_app_shape_snap / pf_app_shape_vary (src/c/app_shape.c): the uwsgi fast loop builds a
request's environ as `template.copy()` updated with the varying keys and the values C hands
over (src/pyfront/app/worker.py serve_loop). For any key sequence and any run of requests of
that shape, that environ must be exactly the request's values, and the varying key tuple may
change only when C says so (*grew). Also run under ASan/UBSan by `make test-asan`."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from pyfront._native import ffi, lib
from pyfront.app.worker import vary_keys

HALF = lib.PF_APP_VALS_MAX // 2
# few distinct values, so a value often equals the snapshot's (the case that is dropped)
VALUE = st.sampled_from([b"", b"a", b"GET", b"/", b"/x?y=1", b"HTTP/1.1", b"127.0.0.1", b"\xff\xfe", b"x" * 9,
                         b"y" * 17, b"z" * 300])


def flat(keys, values) -> bytes:
    return b"\0".join(k + b"\0" + v for k, v in zip(keys, values))


def split(t, keys, values):
    """The request through pf_app_shape_split (as the worker's general way): its values."""
    f = flat(keys, values)
    vals = ffi.new("char[]", lib.PF_APP_VALS_MAX)
    is_new = ffi.new("int *")
    n = lib.pf_app_shape_split(t, f, len(f), vals, lib.PF_APP_VALS_MAX, is_new)
    assert n >= 0
    return vals, n, is_new[0]


@st.composite
def runs(draw):
    nkeys = draw(st.integers(1, 70))         # past 64: those values always travel
    keys = [b"K%d" % i for i in range(nkeys)]
    first = draw(st.lists(VALUE, min_size=nkeys, max_size=nkeys))
    later = draw(st.lists(st.lists(VALUE, min_size=nkeys, max_size=nkeys), min_size=1, max_size=8))
    return keys, first, later


@settings(max_examples=200, deadline=None)
@given(runs())
def test_template_plus_handed_values_is_the_request(run):
    keys, first, later = run
    t = ffi.new("pf_app_shapes *")
    vals, n, is_new = split(t, keys, first)
    assert is_new and t.shape == 0
    lib.pf_app_shape_snap(t, vals, n)
    skeys = [k.decode("latin-1") for k in keys]
    template = dict(zip(skeys, (v.decode("latin-1") for v in first)))
    varying = vary_keys(tuple(skeys), t.vary[0])
    if len(keys) <= 64:
        assert varying == ()                  # nothing has varied yet
    out = ffi.new("char[]", HALF)
    grew = ffi.new("int *")
    for values in later:
        vals, n, is_new = split(t, keys, values)
        assert not is_new
        m = lib.pf_app_shape_vary(t, vals, n, out, HALF, grew)
        assert m >= 0
        now = vary_keys(tuple(skeys), t.vary[0])
        if not grew[0]:
            assert now == varying             # Python's tuple is still right
        varying = now
        env = template.copy()
        env.update(zip(varying, ffi.unpack(out, m).decode("latin-1").split("\0")))
        assert env == dict(zip(skeys, (v.decode("latin-1") for v in values)))


def test_a_full_snapshot_store_leaves_new_shapes_untracked():
    t = ffi.new("pf_app_shapes *")
    big = [b"v" * 6000]
    for i in range(3):                        # 3 x 6,001 bytes > the 16 KiB store
        vals, n, is_new = split(t, [b"K%d" % i], big)
        assert is_new
        lib.pf_app_shape_snap(t, vals, n)
        assert (t.snap_n[i] == lib.PF_APP_UNTRACKED) == (i == 2)
    out, grew = ffi.new("char[]", HALF), ffi.new("int *")
    m = lib.pf_app_shape_vary(t, vals, n, out, HALF, grew)
    assert ffi.unpack(out, m) == b"v" * 6000 and not grew[0]     # every value, as before
