"""uwsgi packets from Python, via the C parser/encoder in src/c/uwsgi.c.

`decode` / `encode` are the convenient (allocating) forms, used by tests, `pyfront check`
and any Python-side client; the worker's hot path calls the C reader directly (worker.py).
"""
from __future__ import annotations

from pyfront._native import ffi, lib

HEAD = lib.PF_UWSGI_HEAD
NEED_MORE = lib.PF_NEED_MORE
MAX_DATASIZE = 0xFFFF

ERRORS = {
    lib.PF_E_UWSGI_TOO_BIG: "vars block larger than buffer-size",
    lib.PF_E_UWSGI_HTTP: "HTTP request sent to a uwsgi socket",
    lib.PF_E_UWSGI_MODIFIER: "unsupported modifier1",
    lib.PF_E_UWSGI_VAR: "key or value length runs past the end of the vars block",
    lib.PF_E_UWSGI_TOO_MANY: "too many vars",
}


class PacketError(ValueError):
    def __init__(self, code: int, detail: str = ""):
        self.code = code
        super().__init__(ERRORS.get(code, f"uwsgi error {code}") + (f": {detail}" if detail else ""))


class Packet:
    __slots__ = ("modifier1", "modifier2", "datasize", "vars", "size")

    def __init__(self, modifier1: int, modifier2: int, datasize: int, vars: list[tuple[bytes, bytes]], size: int):
        self.modifier1, self.modifier2, self.datasize, self.vars, self.size = \
            modifier1, modifier2, datasize, vars, size

    def as_dict(self) -> dict[bytes, bytes]:
        return dict(self.vars)


def decode(data: bytes, max_datasize: int = MAX_DATASIZE) -> Packet | None:
    """Parse one packet head from `data`. None = need more bytes; PacketError on a bad packet."""
    n_max = max(1, len(data) // 4)
    vars_ = ffi.new("pf_uwsgi_var[]", n_max)
    pkt = ffi.new("pf_uwsgi_packet *")
    cbuf = ffi.from_buffer(data)
    rc = lib.pf_uwsgi_parse(cbuf, len(data), max_datasize, pkt, vars_, n_max, ffi.NULL, 0)
    if rc == NEED_MORE:
        return None
    if rc < 0:
        raise PacketError(rc, f"modifier1={pkt.modifier1} datasize={pkt.datasize}")
    mv = memoryview(data)
    out = [(bytes(mv[v.key_off:v.key_off + v.key_len]), bytes(mv[v.val_off:v.val_off + v.val_len]))
           for v in vars_[0:pkt.nvars]]
    return Packet(pkt.modifier1, pkt.modifier2, pkt.datasize, out, rc)


def encode(vars: dict[bytes, bytes] | list[tuple[bytes, bytes]], modifier1: int = 0, modifier2: int = 0) -> bytes:
    """Header + vars block (no body). PacketError if the block exceeds 65535 bytes."""
    items = list(vars.items()) if isinstance(vars, dict) else list(vars)
    src = bytearray()
    spans = ffi.new("pf_uwsgi_var[]", max(1, len(items)))
    for i, (k, v) in enumerate(items):
        spans[i].key_off, spans[i].key_len = len(src), len(k)
        src += k
        spans[i].val_off, spans[i].val_len = len(src), len(v)
        src += v
    cap = HEAD + len(src) + 4 * len(items)
    out = ffi.new("char[]", max(cap, 1))
    rc = lib.pf_uwsgi_encode(modifier1, modifier2, ffi.from_buffer(bytes(src) or b"\0"), spans, len(items), out, cap)
    if rc < 0:
        raise PacketError(rc)
    return ffi.buffer(out, rc)[:]
