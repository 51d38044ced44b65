"""src/c/uwsgi.c through cffi: the packet format nginx's uwsgi module writes (reference §2.1)."""
import struct

import pytest

from pyfront._native import ffi, lib
from pyfront.app import packet


def raw(vars, m1=0, m2=0, datasize=None):
    block = b"".join(struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v for k, v in vars)
    ds = len(block) if datasize is None else datasize
    return bytes([m1]) + struct.pack("<H", ds) + bytes([m2]) + block


NGINX_LIKE = [(b"QUERY_STRING", b"a=1&b=2"), (b"REQUEST_METHOD", b"GET"), (b"CONTENT_TYPE", b""),
              (b"CONTENT_LENGTH", b""), (b"REQUEST_URI", b"/x?a=1&b=2"), (b"PATH_INFO", b"/x"),
              (b"SERVER_PROTOCOL", b"HTTP/1.1"), (b"HTTP_HOST", b"example.com")]


def test_decode_nginx_layout():
    data = raw(NGINX_LIKE) + b"BODY"
    p = packet.decode(data)
    assert p.vars == NGINX_LIKE
    assert p.size == len(data) - 4          # body is not part of the head
    assert (p.modifier1, p.modifier2) == (0, 0)


def test_encode_matches_handwritten_bytes():
    assert packet.encode(NGINX_LIKE) == raw(NGINX_LIKE)
    assert packet.encode([]) == b"\0\0\0\0"


def test_every_prefix_needs_more():
    data = raw(NGINX_LIKE)
    for i in range(len(data)):
        assert packet.decode(data[:i]) is None, i
    assert packet.decode(data) is not None


def test_empty_keys_and_values_and_binary():
    v = [(b"", b""), (b"K", b"\x00\xff\x01"), (b"X" * 300, b"y" * 1000)]
    assert packet.decode(raw(v)).vars == v


@pytest.mark.parametrize("data,code", [
    (raw([(b"A", b"B")], datasize=3), lib.PF_E_UWSGI_VAR),            # datasize cuts the value length
    (b"\0\x05\0\0" + b"\x09\x00ABCDE", lib.PF_E_UWSGI_VAR),           # key length past the end
    (b"\0\x08\0\0" + b"\x01\x00A\x09\x00BCD", lib.PF_E_UWSGI_VAR),    # value length past the end
    (b"\0\x01\0\0" + b"\x01", lib.PF_E_UWSGI_VAR),                    # odd byte: half a length
    (b"\0\x04\0\0" + b"\x01\x00A\x00", lib.PF_E_UWSGI_VAR),           # key without value length
    (raw([(b"A", b"B")], m1=5), lib.PF_E_UWSGI_MODIFIER),             # PSGI is not us
    (b"GET / HTTP/1.1\r\n", lib.PF_E_UWSGI_HTTP),
    (b"POST /x HTTP/1.1\r\n", lib.PF_E_UWSGI_HTTP),
])
def test_bad_packets(data, code):
    with pytest.raises(packet.PacketError) as e:
        packet.decode(data)
    assert e.value.code == code


def test_http_detected_from_the_first_four_bytes():
    # uWSGI logs "invalid request block size: 21573": 0x5445 is "ET" of "GET ".
    with pytest.raises(packet.PacketError) as e:
        packet.decode(b"GET ")
    assert e.value.code == lib.PF_E_UWSGI_HTTP
    pkt = ffi.new("pf_uwsgi_packet *")
    lib.pf_uwsgi_parse(b"GET ", 4, 4096, pkt, ffi.NULL, 0, ffi.NULL, 0)
    assert pkt.datasize == 21573


def test_datasize_over_buffer_size():
    data = raw([(b"HTTP_COOKIE", b"c" * 5000)])
    with pytest.raises(packet.PacketError) as e:
        packet.decode(data, max_datasize=4096)
    assert e.value.code == lib.PF_E_UWSGI_TOO_BIG
    assert packet.decode(data, max_datasize=8192) is not None


def test_modifier30_accepted():
    assert packet.decode(raw([(b"A", b"B")], m1=30)).modifier1 == 30


def test_flat_output():
    data = raw(NGINX_LIKE)
    pkt = ffi.new("pf_uwsgi_packet *")
    flat = ffi.new("char[]", 4096)
    rc = lib.pf_uwsgi_parse(data, len(data), 4096, pkt, ffi.NULL, 0, flat, 4096)
    assert rc == len(data)
    parts = ffi.buffer(flat, pkt.flat_len)[:].split(b"\0")
    assert list(zip(parts[::2], parts[1::2])) == NGINX_LIKE
    assert pkt.nvars == len(NGINX_LIKE) and pkt.flat_nul == 0
    data = raw([(b"A", b"x\0y")])
    lib.pf_uwsgi_parse(data, len(data), 4096, pkt, ffi.NULL, 0, flat, 4096)
    assert pkt.flat_nul == 1


def test_flat_too_small_and_span_array_too_small():
    data = raw(NGINX_LIKE)
    pkt = ffi.new("pf_uwsgi_packet *")
    flat = ffi.new("char[]", 10)
    assert lib.pf_uwsgi_parse(data, len(data), 4096, pkt, ffi.NULL, 0, flat, 10) == lib.PF_E_UWSGI_TOO_BIG
    spans = ffi.new("pf_uwsgi_var[]", 2)
    assert lib.pf_uwsgi_parse(data, len(data), 4096, pkt, spans, 2, ffi.NULL, 0) == lib.PF_E_UWSGI_TOO_MANY


def test_encode_too_big():
    with pytest.raises(packet.PacketError):
        packet.encode([(b"K", b"v" * 65535)])
    # exactly 65535 bytes of block is allowed
    assert len(packet.encode([(b"K", b"v" * (65535 - 5))])) == 65539
