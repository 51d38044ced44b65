"""The one-pass uwsgi walk (pf_app_uwsgi_fused) as the worker thread meets it: accept on a
unix listener, pf_app_uwsgi_step's fast result, the answer's status line and uWSGI's request
log line, whose vars point into u->vals on this path. Compared with a thread that never
takes it (nofuse = 1). Also run under ASan by `make test-asan`."""
import os
import re
import socket
import struct

from pyfront._native import ffi, lib

NGINX = [(b"QUERY_STRING", b""), (b"REQUEST_METHOD", b"GET"), (b"CONTENT_TYPE", b""), (b"CONTENT_LENGTH", b""),
         (b"REQUEST_URI", b"/hello?x=1"), (b"PATH_INFO", b"/hello"), (b"DOCUMENT_ROOT", b"/usr/share/nginx/html"),
         (b"SERVER_PROTOCOL", b"HTTP/1.1"), (b"REQUEST_SCHEME", b"http"), (b"REMOTE_ADDR", b"10.1.2.3"),
         (b"REMOTE_PORT", b"50312"), (b"SERVER_PORT", b"8080"), (b"SERVER_NAME", b""), (b"HTTP_HOST", b"h")]


def packet(pairs):
    data = b"".join(struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v for k, v in pairs)
    return struct.pack("<BHB", 0, len(data), 0) + data


def serve(tmp_path, nofuse, packets):
    """Each packet through pf_app_uwsgi_step on a real listener, answered with 200 + "hi";
    what the client got, the log lines and per request (result, fused, vals)."""
    path = str(tmp_path / f"f{nofuse}.sock")
    ls = socket.socket(socket.AF_UNIX)
    ls.bind(path)
    ls.listen(8)
    ls.setblocking(False)
    wr, ww = os.pipe()
    lr, lw = os.pipe()
    lfds = ffi.new("int[]", [ls.fileno()])
    buf, flat = ffi.new("char[]", 8192), ffi.new("char[]", 65536)
    core, count = ffi.new("char[]", 128), ffi.new("uint64_t *")
    u = ffi.new("pf_app_uconn *")
    u.lfds, u.nlisten, u.wakefd, u.timeout_ms, u.max_datasize = lfds, 1, wr, 2000, 4096
    u.buf, u.cap, u.flat, u.flat_cap, u.fd = buf, 8192, flat, 65536, -1
    u.board.core, u.board.requests = core, count
    u.log.fd, u.log.pid, u.log.core = lw, 7, 0
    u.nofuse = nofuse
    clients, steps, answers = [], [], []
    st = b"200 OK\0Content-Type\0text/plain"
    try:
        for i, raw in enumerate(packets):
            c = socket.socket(socket.AF_UNIX)
            c.connect(path)
            c.sendall(raw)
            clients.append(c)
            r = lib.pf_app_uwsgi_step(u, st if i else ffi.NULL, len(st) if i else 0, 1, b"hi", 2 if i else 0)
            n = r >> 10 if r >= 0 else u.n
            if r >= 0 or r == lib.PF_APP_NEWVARY:     # the values the shape's template lacks
                vals = ffi.unpack(u.vals + lib.PF_APP_VALS_MAX // 2, n)
            else:
                vals = ffi.unpack(u.vals, n) if not u.flags & lib.PF_UWSGI_SLOW else None
            steps.append((r, u.fused, u.flags, vals, ffi.unpack(core + 8, 120).rstrip(b"\0")))
        lib.pf_app_uwsgi_respond(u, st, len(st), 1, b"hi", 2)
        os.close(lw)
        lw = -1
        for c in clients[:-1]:
            answers.append(c.recv(4096))
        log = b""
        while chunk := os.read(lr, 65536):
            log += chunk
        return steps, answers, [re.sub(rb"\[[A-Z][a-z]{2} [^]]*\]|in \d+ msecs", b"", ln) for ln in log.splitlines()]
    finally:
        if u.fd >= 0:
            os.close(u.fd)
        for fd in (wr, ww, lr, lw):
            if fd >= 0:
                os.close(fd)
        for c in clients:
            c.close()
        ls.close()


def test_nginx_gets_through_the_one_pass_with_the_same_answers_and_log(tmp_path):
    other = [(k, v) for k, v in NGINX if k != b"HTTP_HOST"]
    packets = [packet(NGINX), packet(NGINX),
               packet([(k, b"HTTP/1.0" if k == b"SERVER_PROTOCOL" else b"" if k == b"REQUEST_URI" else v)
                       for k, v in NGINX]),
               packet(other), packet(NGINX), packet(NGINX)]
    fast, fast_answers, fast_log = serve(tmp_path, 0, packets)
    ref, ref_answers, ref_log = serve(tmp_path, 1, packets)
    assert [s[1] for s in fast] == [0, 1, 1, 0, 0, 1]     # same shape as the previous request only
    assert [s[1] for s in ref] == [0] * 6
    assert [(r, fl, v, b) for r, _, fl, v, b in fast] == [(r, fl, v, b) for r, _, fl, v, b in ref]
    # the shape's first request: every value, kept as its snapshot (pf_app_shape_snap)
    assert fast[0][0] == lib.PF_APP_SLOWREQ and fast[0][2] == lib.PF_UWSGI_NEWSHAPE
    assert fast[0][3] == b"\0GET\0\0\0/hello?x=1\0/hello\0/usr/share/nginx/html\0HTTP/1.1\0" \
        b"http\x0010.1.2.3\x0050312\x008080\0\0h"
    assert fast[1][0] >= 0 and fast[1][3] == b""           # the same values again: the template has them all
    # REQUEST_URI and SERVER_PROTOCOL leave the snapshot: they are handed over, from now on
    assert fast[2][0] == lib.PF_APP_NEWVARY and fast[2][3] == b"\0HTTP/1.0"
    assert fast[4][0] >= 0 and fast[4][3] == b"/hello?x=1\0HTTP/1.1"
    assert fast[2][4] == b"GET /hello"                     # empty REQUEST_URI: PATH_INFO on the board
    assert fast_answers == ref_answers
    assert fast_answers[1] == b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhi"
    assert fast_answers[2].startswith(b"HTTP/1.0 200 OK\r\n")    # the status line's protocol from vals
    assert fast_log == ref_log and len(fast_log) == 6
    assert b"10.1.2.3 () {14 vars in %d bytes}" % (len(packets[1]) - 4) in fast_log[1] and b"GET /hello?x=1 =>" in fast_log[1]
    assert b"(HTTP/1.0 200)" in fast_log[2] and b"GET /hello =>" in fast_log[2]
