"""Static files through the C worker: MIME, length, Last-Modified, ETag, conditionals,
Range, HEAD, sendfile on/off, index, directory redirect, 403/404, gzip, gzip_static,
try_files, return, error_page, add_header, expires, charset, traversal."""
from __future__ import annotations

import gzip
import os
import time
from email.utils import formatdate

import pytest

from pyfront.config.compile import LocationPlan
from tests.c.inproc import InProc, site
from tests.integration.frontfix import conf
from tests.integration.httpraw import request

MTIME = 1_700_000_000
ETAG_A = '"%x-%x"' % (MTIME, 21)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    base = tmp_path_factory.mktemp("site")
    # the secret and the alias directory live OUTSIDE the root: nothing may reach the secret
    (base / "secret.txt").write_bytes(b"SECRET\n")
    (base / "alias").mkdir()
    (base / "alias" / "f.txt").write_bytes(b"aliased\n")
    r = base / "root"
    files = {"index.html": b"<h1>home</h1>\n", "a.txt": b"0123456789abcdefghij\n", "s.css": b"p{}\n" * 100,
             "sub/index.html": b"sub\n", "empty/.keep": b"", "big.bin": os.urandom(300_000),
             "pre/app.js": b"js\n" * 50, "pre/app.js.gz": gzip.compress(b"js\n" * 50),
             "err/404.html": b"custom 404\n",
             "noread.txt": b"x"}
    for name, data in files.items():
        p = r / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        os.utime(p, (MTIME, MTIME))
    (r / "empty" / ".keep").unlink()
    os.chmod(r / "noread.txt", 0)
    return str(r)


@pytest.fixture(scope="module")
def srv(root):
    L = LocationPlan
    locs = (
        L("", "/pre/", conf(root=root, gzip_static=True, gzip_vary=True)),
        L("", "/gz/", conf(root=root + "/gzroot", gzip=True, gzip_types=("text/css", "text/plain"), gzip_vary=True,
                           gzip_min_length=10)),
        L("", "/static", conf(root=root + "/../alias/", alias=True, loc_prefix="/static")),   # the classic misconfig
        L("", "/al/", conf(root=root + "/../alias/", alias=True, loc_prefix="/al/")),
        L("=", "/ret", conf(root=root, return_code=200, return_text="hello $uri\n")),
        L("", "/moved", conf(root=root, return_code=301, return_text="/a.txt")),
        L("", "/tf/", conf(root=root, try_files=("$uri", "$uri/", "/a.txt"))),
        L("", "/tf404/", conf(root=root, try_files=("$uri", "=404"))),
        L("", "/hdr/", conf(root=root, add_headers=(("X-Test", "v-$status", False), ("X-Always", "yes", True)),
                           expires="access", expires_s=3600, charset="utf-8")),
        L("", "/nofile/", conf(root=root + "/nothing", error_pages=((404, -1, "/err/404.html"),))),
        L("", "/nosendfile/", conf(root=root + "/ns", sendfile=False)),
    )
    os.makedirs(root + "/gzroot/gz", exist_ok=True)
    with open(root + "/gzroot/gz/s.css", "wb") as f:
        f.write(b"p{}\n" * 100)
    os.makedirs(root + "/ns/nosendfile", exist_ok=True)
    with open(root + "/ns/nosendfile/big.bin", "wb") as f:
        f.write(open(root + "/big.bin", "rb").read())
    s = InProc(site(root, locations=locs, sendfile=True))
    yield s
    s.close()


def get(s, path, headers=None, method="GET", **kw):
    return request(s.port, method, path, headers, **kw)


def test_hit_headers(srv):
    r = get(srv, "/a.txt")
    assert r.status == 200 and r.body == b"0123456789abcdefghij\n"
    assert r.header("content-type") == "text/plain"
    assert r.header("content-length") == "21"
    assert r.header("last-modified") == formatdate(MTIME, usegmt=True)
    assert r.header("etag") == ETAG_A
    assert r.header("accept-ranges") == "bytes"
    assert r.header("server") == "pyfront/0.1.0"


def test_mime_and_default_type(srv):
    assert get(srv, "/s.css").header("content-type") == "text/css"
    assert get(srv, "/pre/app.js").header("content-type") == "application/javascript"
    assert get(srv, "/index.html").header("content-type") == "text/html"


def test_large_file_sendfile_and_pread(srv, root):
    data = open(root + "/big.bin", "rb").read()
    assert get(srv, "/big.bin").body == data
    assert get(srv, "/nosendfile/big.bin").body == data


def test_head(srv):
    r = get(srv, "/a.txt", method="HEAD")
    assert r.status == 200 and r.header("content-length") == "21" and r.body == b""


def test_conditionals(srv):
    lm = formatdate(MTIME, usegmt=True)
    r = get(srv, "/a.txt", {"If-Modified-Since": lm})
    assert r.status == 304 and r.body == b"" and r.header("etag") == ETAG_A
    assert get(srv, "/a.txt", {"If-Modified-Since": formatdate(MTIME + 5, usegmt=True)}).status == 200  # exact
    assert get(srv, "/a.txt", {"If-None-Match": ETAG_A}).status == 304
    assert get(srv, "/a.txt", {"If-None-Match": '"x", W/' + ETAG_A}).status == 304
    assert get(srv, "/a.txt", {"If-None-Match": '"x"'}).status == 200
    assert get(srv, "/a.txt", {"If-None-Match": ETAG_A, "If-Modified-Since": formatdate(1, usegmt=True)}).status == 200
    assert get(srv, "/a.txt", {"If-Match": '"nope"'}).status == 412
    assert get(srv, "/a.txt", {"If-Unmodified-Since": formatdate(MTIME - 10, usegmt=True)}).status == 412


def test_ranges(srv):
    r = get(srv, "/a.txt", {"Range": "bytes=2-5"})
    assert r.status == 206 and r.body == b"2345" and r.header("content-range") == "bytes 2-5/21"
    assert get(srv, "/a.txt", {"Range": "bytes=-3"}).body == b"ij\n"
    assert get(srv, "/a.txt", {"Range": "bytes=18-"}).body == b"hij\n"[1:]
    r = get(srv, "/a.txt", {"Range": "bytes=50-"})
    assert r.status == 416 and r.header("content-range") == "bytes */21"
    assert get(srv, "/a.txt", {"Range": "bytes=0-1", "If-Range": '"old"'}).status == 200
    assert get(srv, "/a.txt", {"Range": "bytes=0-1", "If-Range": ETAG_A}).status == 206
    r = get(srv, "/big.bin", {"Range": "bytes=100000-100009"})
    assert r.status == 206 and len(r.body) == 10


def test_index_redirect_and_errors(srv):
    assert get(srv, "/").body == b"<h1>home</h1>\n"
    assert get(srv, "/sub/").body == b"sub\n"
    r = get(srv, "/sub?x=1")
    assert r.status == 301 and r.header("location") == f"http://localhost:{srv.port}/sub/?x=1"
    assert get(srv, "/empty/").status == 403
    assert get(srv, "/missing/").status == 404
    r = get(srv, "/nope.txt")
    assert r.status == 404 and b"<center>pyfront/0.1.0</center>" in r.body
    assert r.header("content-type") == "text/html"
    if os.geteuid() != 0:
        assert get(srv, "/noread.txt").status == 403
    assert get(srv, "/a.txt", method="POST", headers={"Content-Length": "3"}, body=b"abc").status == 405
    assert get(srv, "/a.txt", method="DELETE").status == 405


def test_gzip_on_the_fly(srv):
    r = get(srv, "/gz/s.css", {"Accept-Encoding": "gzip, deflate"})
    assert r.status == 200 and r.header("content-encoding") == "gzip"
    assert r.header("content-length") is None and r.header("transfer-encoding") == "chunked"
    assert r.header("vary") == "Accept-Encoding" and r.header("etag").startswith('W/"')
    assert gzip.decompress(r.body) == b"p{}\n" * 100
    plain = get(srv, "/gz/s.css")
    assert plain.header("content-encoding") is None and plain.body == b"p{}\n" * 100
    assert get(srv, "/gz/s.css", {"Accept-Encoding": "gzip;q=0"}).header("content-encoding") is None
    assert get(srv, "/gz/s.css", {"Accept-Encoding": "gzip"}, version="1.0").header("content-encoding") is None


def test_gzip_static(srv, root):
    r = get(srv, "/pre/app.js", {"Accept-Encoding": "gzip"})
    assert r.header("content-encoding") == "gzip" and r.header("vary") == "Accept-Encoding"
    assert r.body == open(root + "/pre/app.js.gz", "rb").read()
    assert r.header("content-type") == "application/javascript"
    assert get(srv, "/pre/app.js").body == b"js\n" * 50


@pytest.mark.parametrize("path", [
    "/static../secret.txt", "/static..%2fsecret.txt", "/static/../secret.txt", "/al/../secret.txt",
    "/al/%2e%2e/secret.txt", "/%2e%2e/secret.txt", "/al/..%2fsecret.txt", "//static../secret.txt",
    "/static%2e%2e/secret.txt", "/al/%2e%2e%2fsecret.txt",
])
def test_traversal_never_leaks(srv, path):
    r = get(srv, path)
    assert b"SECRET" not in r.body
    assert r.status in (400, 404)


def test_traversal_alias_misconfig(srv):
    assert get(srv, "/static/f.txt").body == b"aliased\n"
    assert get(srv, "/al/f.txt").body == b"aliased\n"
    # nginx would map /static../secret.txt to <alias>/../secret.txt: pyfront answers 400
    assert get(srv, "/static../secret.txt").status == 400
    assert get(srv, "/static..%2fsecret.txt").status == 400
    assert get(srv, "/a.txt%00.html").status == 400


def test_return_try_files_error_page(srv):
    r = get(srv, "/ret")
    assert r.status == 200 and r.body == b"hello /ret\n"
    r = get(srv, "/moved")
    assert r.status == 301 and r.header("location") == f"http://localhost:{srv.port}/a.txt"
    assert get(srv, "/tf/zzz").body == b"0123456789abcdefghij\n"
    assert get(srv, "/tf404/zzz").status == 404
    r = get(srv, "/nofile/x")
    assert r.status == 404 and r.body == b"custom 404\n"


def test_add_header_expires_charset(srv, root):
    os.makedirs(root + "/hdr", exist_ok=True)
    with open(root + "/hdr/x.txt", "wb") as f:
        f.write(b"x\n")
    r = get(srv, "/hdr/x.txt")
    assert r.header("x-test") == "v-200" and r.header("x-always") == "yes"
    assert r.header("cache-control") == "max-age=3600" and r.header("expires")
    assert r.header("content-type") == "text/plain; charset=utf-8"
    r = get(srv, "/hdr/missing")
    assert r.status == 404 and r.header("x-test") is None and r.header("x-always") == "yes"


def test_changed_file_is_seen_at_once(srv, root):
    p = root + "/chg.txt"
    with open(p, "wb") as f:
        f.write(b"one\n")
    assert get(srv, "/chg.txt").body == b"one\n"
    with open(p + ".new", "wb") as f:
        f.write(b"two two\n")
    os.rename(p + ".new", p)
    assert get(srv, "/chg.txt").body == b"two two\n"
    os.unlink(p)
    assert get(srv, "/chg.txt").status == 404


def test_multipart_byteranges(srv, root):
    r = get(srv, "/a.txt", {"Range": "bytes=0-1,5-6"})
    assert r.status == 206
    ct = r.header("content-type")
    assert ct.startswith("multipart/byteranges; boundary=")
    b = ct.split("=", 1)[1]
    assert len(b) == 20 and b.isdigit()
    assert r.body == (f"\r\n--{b}\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/21\r\n\r\n01"
                      f"\r\n--{b}\r\nContent-Type: text/plain\r\nContent-Range: bytes 5-6/21\r\n\r\n56"
                      f"\r\n--{b}--\r\n").encode()
    assert int(r.header("content-length")) == len(r.body)
    big = open(root + "/big.bin", "rb").read()
    r = get(srv, "/big.bin", {"Range": "bytes=0-9,-10"})
    assert r.status == 206 and big[:10] in r.body and big[-10:] in r.body
    assert int(r.header("content-length")) == len(r.body)
    assert get(srv, "/a.txt", {"Range": "bytes=0-20,0-20"}).status == 200     # overlapping: whole file


def test_gzip_disable_msie6(root):
    from tests.c.inproc import InProc
    os.makedirs(root + "/gzd", exist_ok=True)
    with open(root + "/gzd/s.css", "wb") as f:
        f.write(b"p{}\n" * 100)
    s = InProc(site(root, gzip=True, gzip_types=("text/css",), gzip_disable_msie6=True))
    try:
        old = request(s.port, "GET", "/gzd/s.css", {"Accept-Encoding": "gzip",
                                                   "User-Agent": "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.0)"})
        assert old.header("content-encoding") is None
        new = request(s.port, "GET", "/gzd/s.css", {"Accept-Encoding": "gzip", "User-Agent": "Mozilla/5.0"})
        assert new.header("content-encoding") == "gzip"
    finally:
        s.close()
