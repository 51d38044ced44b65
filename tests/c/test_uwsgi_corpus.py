"""The nginx-captured uwsgi corpus, parsed whole and fed byte by byte."""
import glob
import os

import pytest

from pyfront._native import ffi, lib
from pyfront.app import packet

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FILES = sorted(glob.glob(os.path.join(ROOT, "tests/corpus/uwsgi/*.uwsgi")))


def test_corpus_present():
    assert len(FILES) >= 7


@pytest.mark.parametrize("path", FILES, ids=os.path.basename)
def test_whole_and_byte_by_byte(path):
    data = open(path, "rb").read()
    whole = packet.decode(data, 65535)
    assert whole is not None
    d = dict(whole.vars)
    assert d[b"REQUEST_METHOD"] in (b"GET", b"POST", b"HEAD")
    assert d[b"SERVER_NAME"] == b"corpus.example"
    body = data[whole.size:]
    assert len(body) == int(d[b"CONTENT_LENGTH"] or b"0")
    for i in range(whole.size):
        assert packet.decode(data[:i], 65535) is None, i
    again = packet.decode(data[:whole.size], 65535)
    assert again.vars == whole.vars
    # the flat form the worker uses says the same thing
    pkt = ffi.new("pf_uwsgi_packet *")
    flat = ffi.new("char[]", 65536)
    assert lib.pf_uwsgi_parse(data, len(data), 65535, pkt, ffi.NULL, 0, flat, 65536) == whole.size
    parts = ffi.unpack(flat, pkt.flat_len).split(b"\0")
    assert list(zip(parts[::2], parts[1::2])) == whole.vars
    keys = [k for k, _ in whole.vars]
    assert pkt.flat_dup == (len(set(keys)) != len(keys))


def test_repeated_headers_and_modifier30_in_corpus():
    rep = packet.decode(open(os.path.join(ROOT, "tests/corpus/uwsgi/repeated-headers.uwsgi"), "rb").read())
    assert [v for k, v in rep.vars if k == b"HTTP_COOKIE"] == [b"a=1", b"b=2"]
    m30 = packet.decode(open(os.path.join(ROOT, "tests/corpus/uwsgi/m30.uwsgi"), "rb").read())
    assert m30.modifier1 == 30 and dict(m30.vars)[b"SCRIPT_NAME"] == b"/m30"
