"""src/c/upstream.c's balancer through cffi: nginx's selection rules, no sockets."""
import collections

import pytest

from pyfront._native import ffi, lib


def balancer(specs, method=lib.PF_LB_ROUND_ROBIN, consistent=False):
    """specs: list of dicts (weight, max_fails, fail_timeout_ms, backup, down, name)."""
    arr = ffi.new("pf_peer_conf[]", len(specs))
    keep = []
    for i, s in enumerate(specs):
        name = ffi.new("char[]", s.get("name", f"10.0.0.{i}:80").encode())
        keep.append(name)
        arr[i].name = name
        arr[i].name_len = len(s.get("name", f"10.0.0.{i}:80"))
        arr[i].weight = s.get("weight", 1)
        arr[i].max_fails = s.get("max_fails", 1)
        arr[i].fail_timeout_ms = s.get("fail_timeout_ms", 10000)
        arr[i].max_conns = s.get("max_conns", 0)
        arr[i].backup = int(s.get("backup", False))
        arr[i].down = int(s.get("down", False))
    b = lib.pf_balancer_new(method, int(consistent), arr, len(specs))
    assert b != ffi.NULL
    return ffi.gc(b, lib.pf_balancer_free), keep


def pick(b, now=0, key=b"", fail=False):
    ctx = ffi.new("pf_lb_ctx *")
    lib.pf_lb_ctx_init(ctx)
    p = lib.pf_balancer_get(b, ctx, now, key, len(key))
    if p >= 0:
        lib.pf_balancer_done(b, p, int(fail), now)
    return p


def test_smooth_weighted_round_robin_sequence():
    # nginx's documented example: weights 5, 1, 1 give a a b a c a a (smooth, not a a a a a b c)
    b, _ = balancer([{"weight": 5}, {"weight": 1}, {"weight": 1}])
    seq = [pick(b) for _ in range(7)]
    assert seq == [0, 0, 1, 0, 2, 0, 0]


def test_weights_exact_over_1000():
    b, _ = balancer([{"weight": 3}, {"weight": 2}, {"weight": 5}])
    c = collections.Counter(pick(b) for _ in range(1000))
    assert c == {0: 300, 1: 200, 2: 500}


def test_failed_peer_skipped_for_fail_timeout_then_probed():
    b, _ = balancer([{"max_fails": 1, "fail_timeout_ms": 1000}, {}])
    ctx = ffi.new("pf_lb_ctx *")
    lib.pf_lb_ctx_init(ctx)
    p = lib.pf_balancer_get(b, ctx, 0, b"", 0)
    assert p == 0
    assert lib.pf_balancer_done(b, 0, 1, 0) == 1          # just disabled
    assert all(pick(b, now=t) == 1 for t in range(10, 900, 100))
    seen = {pick(b, now=1500 + t) for t in range(4)}       # after fail_timeout: tried again
    assert 0 in seen


def test_max_fails_counts():
    b, _ = balancer([{"max_fails": 3}, {}])
    for _ in range(2):
        ctx = ffi.new("pf_lb_ctx *"); lib.pf_lb_ctx_init(ctx)
        while lib.pf_balancer_get(b, ctx, 0, b"", 0) != 0:
            pass
        assert lib.pf_balancer_done(b, 0, 1, 0) == 0
    ctx = ffi.new("pf_lb_ctx *"); lib.pf_lb_ctx_init(ctx)
    while lib.pf_balancer_get(b, ctx, 0, b"", 0) != 0:
        pass
    assert lib.pf_balancer_done(b, 0, 1, 0) == 1


def test_a_request_tries_each_peer_once_then_no_live():
    b, _ = balancer([{}, {}, {}])
    ctx = ffi.new("pf_lb_ctx *")
    lib.pf_lb_ctx_init(ctx)
    got = [lib.pf_balancer_get(b, ctx, 0, b"", 0) for _ in range(3)]
    assert sorted(got) == [0, 1, 2]
    assert lib.pf_balancer_get(b, ctx, 0, b"", 0) == lib.PF_LB_NO_LIVE
    assert lib.pf_balancer_tries(b) == 3


def test_backup_only_when_primaries_unusable():
    b, _ = balancer([{}, {}, {"backup": True}])
    assert {pick(b) for _ in range(50)} == {0, 1}
    pick_ctx = ffi.new("pf_lb_ctx *")
    lib.pf_lb_ctx_init(pick_ctx)
    for _ in range(2):                                     # both primaries fail once
        p = lib.pf_balancer_get(b, pick_ctx, 0, b"", 0)
        lib.pf_balancer_done(b, p, 1, 0)
    assert lib.pf_balancer_get(b, pick_ctx, 0, b"", 0) == 2
    assert {pick(b, now=10) for _ in range(20)} == {2}


def test_down_never_used():
    b, _ = balancer([{"down": True}, {}])
    assert {pick(b) for _ in range(20)} == {1}


def test_single_peer_never_disabled():
    b, _ = balancer([{"max_fails": 1}])
    assert pick(b, fail=True) == 0
    assert pick(b, now=1) == 0                             # nginx's `single`: failures ignored


def test_ip_hash_stable_and_spread():
    b, _ = balancer([{}, {}, {}], method=lib.PF_LB_IP_HASH)
    addr = bytes([192, 168, 7, 9])
    first = pick(b, key=addr)
    assert all(pick(b, key=addr) == first for _ in range(50))
    assert pick(b, key=bytes([192, 168, 7, 200])) == first            # same /24
    spread = {pick(b, key=bytes([10, i, 3, 1])) for i in range(64)}
    assert spread == {0, 1, 2}


def test_ip_hash_moves_off_a_failed_peer():
    b, _ = balancer([{}, {}, {}], method=lib.PF_LB_IP_HASH)
    addr = bytes([10, 1, 2, 3])
    first = pick(b, key=addr)
    pick(b, key=addr, fail=True)
    other = pick(b, now=5, key=addr)
    assert other != first and other >= 0


@pytest.mark.parametrize("consistent", [False, True])
def test_hash_key_stable(consistent):
    b, _ = balancer([{}, {}, {}, {}], method=lib.PF_LB_HASH, consistent=consistent)
    keys = [f"/user/{i}".encode() for i in range(200)]
    first = [pick(b, key=k) for k in keys]
    assert [pick(b, key=k) for k in keys] == first
    assert set(first) == {0, 1, 2, 3}


def test_consistent_hash_moves_few_keys_when_a_server_is_added():
    keys = [f"k{i}".encode() for i in range(2000)]
    names4 = [{"name": f"10.0.0.{i}:80"} for i in range(4)]
    b4, _ = balancer(names4, method=lib.PF_LB_HASH, consistent=True)
    b5, _ = balancer(names4 + [{"name": "10.0.0.9:80"}], method=lib.PF_LB_HASH, consistent=True)
    moved = sum(1 for k in keys if pick(b4, key=k) != pick(b5, key=k))
    assert moved < len(keys) * 0.35                        # ~1/5 expected; modulo hashing moves ~4/5


def test_least_conn_prefers_idle_peer():
    b, _ = balancer([{}, {}], method=lib.PF_LB_LEAST_CONN)
    ctx = ffi.new("pf_lb_ctx *")
    lib.pf_lb_ctx_init(ctx)
    busy = lib.pf_balancer_get(b, ctx, 0, b"", 0)          # held open: conns = 1
    for _ in range(5):
        assert pick(b) == 1 - busy
    lib.pf_balancer_done(b, busy, 0, 0)


def test_random_weighted_rough():
    b, _ = balancer([{"weight": 1}, {"weight": 3}], method=lib.PF_LB_RANDOM)
    c = collections.Counter(pick(b) for _ in range(4000))
    assert 0.15 < c[0] / 4000 < 0.35


def test_bad_arguments():
    arr = ffi.new("pf_peer_conf[]", 1)
    assert lib.pf_balancer_new(99, 0, arr, 1) == ffi.NULL
    assert lib.pf_balancer_new(0, 0, arr, 0) == ffi.NULL
