"""Hypothesis properties of the uwsgi packet codec (src/c/uwsgi.c)."""
from hypothesis import given, settings, strategies as st

from pyfront._native import ffi, lib
from pyfront.app import packet

keys = st.binary(max_size=40)
vals = st.binary(max_size=200)
var_lists = st.lists(st.tuples(keys, vals), max_size=30)
SETTINGS = settings(max_examples=200, deadline=None)


@SETTINGS
@given(var_lists, st.integers(0, 255))
def test_round_trip(vars, m2):
    data = packet.encode(vars, 0, m2)
    p = packet.decode(data)
    assert p.vars == vars and p.modifier2 == m2 and p.size == len(data)


@SETTINGS
@given(st.dictionaries(keys, vals, max_size=30))
def test_round_trip_dict(d):
    assert packet.decode(packet.encode(d)).as_dict() == d


@SETTINGS
@given(var_lists, st.data())
def test_any_split_parses_the_same(vars, data):
    raw = packet.encode(vars) + b"body"
    cut = data.draw(st.integers(0, len(raw)))
    first = packet.decode(raw[:cut])
    if cut < len(raw) - 4:
        assert first is None
    whole = packet.decode(raw)
    assert whole.vars == vars and whole.size == len(raw) - 4


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.integers(0, 0xFFFF))
def test_arbitrary_bytes_never_crash(data, maxds):
    try:
        p = packet.decode(data, maxds)
    except packet.PacketError:
        return
    if p is not None:
        assert 4 <= p.size <= len(data) and p.datasize <= maxds


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from([b"A", b"B", b"HTTP_X", b"HTTP_COOKIE", b"", b"AB", b"BA"]), vals),
                max_size=12))
def test_flat_dup_flag_is_exact(vars):
    from pyfront._native import ffi, lib
    data = packet.encode(vars)
    pkt = ffi.new("pf_uwsgi_packet *")
    flat = ffi.new("char[]", 65536)
    assert lib.pf_uwsgi_parse(data, len(data), 65535, pkt, ffi.NULL, 0, flat, 65536) == len(data)
    keys = [k for k, _ in vars if k]
    assert pkt.flat_dup == (len(set(keys)) != len(keys))


# ---- app_shape.c: a flat environ split into values + an exactly cached key sequence ----

_nonul = st.binary(max_size=12).map(lambda b: b.replace(b"\0", b"x"))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.tuples(_nonul, _nonul), max_size=8), min_size=1, max_size=40))
def test_shape_split_values_and_keys_are_exact(requests):
    t = ffi.new("pf_app_shapes *")
    vals = ffi.new("char[]", 4096)
    is_new = ffi.new("int *")
    known = {}                                   # what a caller keeps: index -> keys
    for pairs in requests:
        flat = b"\0".join(k + b"\0" + v for k, v in pairs)
        n = lib.pf_app_shape_split(t, flat, len(flat), vals, 4096, is_new)
        assert n >= 0
        assert ffi.unpack(vals, n) == b"\0".join(v for _, v in pairs)
        keys = ffi.unpack(t.store + t.off[t.shape], t.len[t.shape])
        assert keys == b"".join(k + b"\0" for k, _ in pairs)
        if is_new[0]:
            if t.shape == 0:
                known.clear()
            known[t.shape] = keys
        assert known[t.shape] == keys            # a hit names the caller's copy of the same keys
