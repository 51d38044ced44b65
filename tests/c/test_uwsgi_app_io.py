"""src/c/app_environ.c and app_io.c through cffi (also run under ASan by `make test-asan`)."""
import socket

from hypothesis import given, settings, strategies as st

from pyfront._native import ffi, lib


def environ(raw: bytes, cap: int = 65536):
    req = ffi.new("pf_http_request *")
    rc = lib.pf_http_parse_request(raw, len(raw), ffi.NULL, req)
    assert rc == len(raw), rc
    out = ffi.new("char[]", max(cap, 1))
    env = ffi.new("pf_app_env *")
    n = lib.pf_app_http_environ(raw, req, out, cap, env)
    if n < 0:
        return n, None
    parts = ffi.unpack(out, n).split(b"\0")
    assert len(parts) == 2 * env.npairs
    return env, list(zip(parts[::2], parts[1::2]))


def test_http_environ():
    env, pairs = environ(b"POST /a%20b%2Fc%00?x=%20 HTTP/1.1\r\nHost: example.org:81\r\nContent-Type: t/x\r\n"
                         b"Content-Length: 0\r\nX-Dash-Name: v\r\nX_Under: no\r\nx-dash-name: w\r\n\r\n")
    d = dict(pairs)
    assert d[b"REQUEST_METHOD"] == b"POST"
    assert d[b"REQUEST_URI"] == b"/a%20b%2Fc%00?x=%20"
    assert d[b"PATH_INFO"] == b"/a b/c%00"          # %00 stays encoded
    assert d[b"QUERY_STRING"] == b"x=%20"
    assert d[b"SERVER_PROTOCOL"] == b"HTTP/1.1"
    assert d[b"SERVER_NAME"] == b"example.org"
    assert d[b"CONTENT_TYPE"] == b"t/x" and d[b"CONTENT_LENGTH"] == b"0"
    assert b"HTTP_CONTENT_TYPE" not in d and b"HTTP_X_UNDER" not in d
    assert [v for k, v in pairs if k == b"HTTP_X_DASH_NAME"] == [b"v", b"w"]
    assert env.dup == 1 and env.dropped == 1


def test_http_environ_ipv6_host_and_overflow():
    env, pairs = environ(b"GET / HTTP/1.0\r\nHost: [::1]:8080\r\n\r\n")
    assert dict(pairs)[b"SERVER_NAME"] == b"[::1]" and dict(pairs)[b"SERVER_PROTOCOL"] == b"HTTP/1.0"
    rc, _ = environ(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", cap=20)
    assert rc == lib.PF_E_HEADER_TOO_LARGE


token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-0123456789", min_size=1, max_size=20)
value = st.text(alphabet="".join(chr(c) for c in range(0x20, 0x7f)), max_size=60).map(str.strip)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(token, value), max_size=20), st.integers(1, 400))
def test_http_environ_any_headers_any_cap(headers, cap):
    raw = b"GET /p HTTP/1.1\r\nHost: h\r\n" + b"".join(f"{k}: {v}\r\n".encode() for k, v in headers) + b"\r\n"
    req = ffi.new("pf_http_request *")
    if lib.pf_http_parse_request(raw, len(raw), ffi.NULL, req) != len(raw):
        return
    out = ffi.new("char[]", cap)
    env = ffi.new("pf_app_env *")
    n = lib.pf_app_http_environ(raw, req, out, cap, env)
    assert n == lib.PF_E_HEADER_TOO_LARGE or 0 <= n <= cap


def test_send2_recv_and_timeouts():
    a, b = socket.socketpair()
    a.setblocking(False)
    err = ffi.new("int *")
    big = b"x" * 3_000_000          # larger than the socket buffer: writev must loop over EAGAIN
    import threading
    got = []
    t = threading.Thread(target=lambda: got.append(b"".join(iter(lambda: b.recv(1 << 20), b""))))
    t.start()
    assert lib.pf_app_send2(a.fileno(), b"head", 4, big, len(big), 5000, err) == 0
    a.shutdown(socket.SHUT_WR)
    t.join(10)
    assert got[0] == b"head" + big
    buf = ffi.new("char[]", 16)
    assert lib.pf_app_recv(a.fileno(), buf, 16, 50, err) == lib.PF_APP_TIMEOUT
    b.sendall(b"hi")
    assert lib.pf_app_recv(a.fileno(), buf, 16, 1000, err) == 2
    assert lib.pf_app_blocking(a.fileno(), 50, 50, err) == 0
    assert lib.pf_app_recv(a.fileno(), buf, 16, 50, err) == lib.PF_APP_TIMEOUT   # SO_RCVTIMEO
    b.close()
    assert lib.pf_app_recv(a.fileno(), buf, 16, 50, err) == 0
    a.close()


def test_read_uwsgi_from_socket_in_pieces():
    from pyfront.app import packet
    a, b = socket.socketpair()
    a.setblocking(False)
    data = packet.encode({b"REQUEST_METHOD": b"GET", b"PATH_INFO": b"/x"}) + b"BODY"
    err = ffi.new("int *")
    buf = ffi.new("char[]", 8192)
    flat = ffi.new("char[]", 8192)
    pkt = ffi.new("pf_uwsgi_packet *")
    nread = ffi.new("size_t *")
    import threading, time
    def feed():
        for i in range(len(data)):
            b.send(data[i:i + 1])
            time.sleep(0.001)
    t = threading.Thread(target=feed)
    t.start()
    rc = lib.pf_app_read_uwsgi(a.fileno(), buf, 8192, 4096, 5000, pkt, flat, 8192, nread, err)
    t.join()
    assert rc == len(data) - 4
    assert ffi.unpack(flat, pkt.flat_len) == b"REQUEST_METHOD\0GET\0PATH_INFO\0/x"
    a.close()
    b.close()


# ---- pf_app_send_simple (app_head.c): the common response's head, built in C ----------

def send_simple(sh: str, nheaders: int, body: bytes = b"body!", flags: int = 0):
    a, b = socket.socketpair()
    try:
        blob = sh.encode("latin-1")
        err = ffi.new("int *")
        r = lib.pf_app_send_simple(a.fileno(), flags, blob, len(blob), nheaders, body, len(body), 1000, err)
        a.close()
        b.settimeout(2)
        out = b""
        while r >= 0:
            d = b.recv(65536)
            if not d:
                break
            out += d
        return r, out
    finally:
        b.close()


HTTP, KEEP, H11, HEAD = lib.PF_SEND_HTTP, lib.PF_SEND_KEEP, lib.PF_SEND_HTTP11, lib.PF_SEND_HEAD


def test_send_simple_uwsgi_mode_sends_the_head_as_given():
    r, out = send_simple("HTTP/1.1 200 OK\0Content-Type\0text/plain\0X\0y", 2)
    assert out == b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX: y\r\n\r\nbody!"
    assert r >> 1 == len(out) - 5 and r & 1 == 0


def test_send_simple_http_framing():
    r, out = send_simple("HTTP/1.1 200 OK\0Content-Type\0text/plain", 1, flags=HTTP | KEEP | H11)
    assert out == b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nbody!" and r & 1
    r, out = send_simple("HTTP/1.0 200 OK\0content-LENGTH\x005", 1, flags=HTTP | KEEP)
    assert out == b"HTTP/1.0 200 OK\r\ncontent-LENGTH: 5\r\nConnection: keep-alive\r\n\r\nbody!" and r & 1
    r, out = send_simple("HTTP/1.1 204 No Content\0", 0, b"", flags=HTTP | KEEP | H11)
    assert out == b"HTTP/1.1 204 No Content\r\n\r\n" and r & 1
    r, out = send_simple("HTTP/1.1 200 OK\0Connection\0Close", 1, flags=HTTP | KEEP | H11)
    assert out.startswith(b"HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 5\r\nConnection: close\r\n")
    assert r & 1 == 0
    r, out = send_simple("HTTP/1.1 200 OK\0", 0, flags=HTTP | H11 | HEAD)
    assert out == b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n" and r & 1 == 0


def test_send_simple_refuses_bad_heads_and_sends_nothing():
    for sh, n in [("HTTP/1.1 200 OK\0X\0a\r\nInjected: 1", 1), ("HTTP/1.1 200 OK\0X\nY\0a", 1),
                  ("HTTP/1.1 200 OK\0X\0a\0b", 1), ("HTTP/1.1 200 OK\0X\0a", 2), ("HTTP/1.1 20 OK\0X\0a", 1),
                  ("HTTP/1.1 2000K\0", 0), ("HTTP/1.1 200 OK\0X\0a", 0), ("HTTP/1.1 200 OK\r\n\0", 0)]:
        r, out = send_simple(sh, n)
        assert r == lib.PF_APP_BADHEAD and out == b"", sh
    r, _ = send_simple("HTTP/1.1 200 OK\0X\0" + "a" * 20000, 1)
    assert r == lib.PF_APP_BIGHEAD


# ---- pf_app_uwsgi_next: accept + read + tidy the vars in one call ----------------------

def uwsgi_packet(pairs, body=b""):
    import struct
    data = b"".join(struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v for k, v in pairs)
    return struct.pack("<BHB", 0, len(data), 0) + data + body


def uwsgi_next(tmp_path, raw):
    path = str(tmp_path / "u.sock")
    ls = socket.socket(socket.AF_UNIX)
    ls.bind(path)
    ls.listen(4)
    ls.setblocking(False)
    c = socket.socket(socket.AF_UNIX)
    c.connect(path)
    c.sendall(raw)
    import os
    wr, ww = os.pipe()
    lfds = ffi.new("int[]", [ls.fileno()])
    buf, flat = ffi.new("char[]", 8192), ffi.new("char[]", 65536)
    u = ffi.new("pf_app_uconn *")
    u.lfds, u.nlisten, u.wakefd, u.timeout_ms, u.max_datasize = lfds, 1, wr, 2000, 4096
    u.buf, u.cap, u.flat, u.flat_cap, u.fd = buf, 8192, flat, 65536, -1
    try:
        n = lib.pf_app_uwsgi_next(u)
        assert n >= 0
        keys = ffi.unpack(u.sh.store + u.sh.off[u.sh.shape], u.sh.len[u.sh.shape])
        out = (ffi.unpack(u.vals, n), ffi.unpack(flat, u.pkt.flat_len), u.flags, u.head_len, u.nread, keys)
        os.write(ww, b"x")
        assert lib.pf_app_uwsgi_next(u) == lib.PF_APP_STOP and u.fd == -1   # closed the previous one
        return out
    finally:
        for fd in (wr, ww):
            os.close(fd)
        c.close()
        ls.close()
        os.unlink(path)


def test_uwsgi_next_tidies_vars(tmp_path):
    pairs = [(b"REQUEST_METHOD", b"POST"), (b"HTTP_CONTENT_LENGTH", b"5"), (b"CONTENT_LENGTH", b"5"),
             (b"REQUEST_SCHEME", b"https"), (b"HTTP_X", b""), (b"HTTP_CONTENT_TYPE", b"a/b")]
    raw = uwsgi_packet(pairs, b"hello")
    vals, flat, flags, head_len, nread, keys = uwsgi_next(tmp_path, raw)
    assert flat == b"REQUEST_METHOD\0POST\0CONTENT_LENGTH\x005\0REQUEST_SCHEME\0https\0HTTP_X\0"
    assert vals == b"POST\x005\0https\0" and keys == b"REQUEST_METHOD\0CONTENT_LENGTH\0REQUEST_SCHEME\0HTTP_X\0"
    assert flags == lib.PF_UWSGI_HTTPS | lib.PF_UWSGI_BODY | lib.PF_UWSGI_NEWSHAPE
    assert head_len == len(raw) - 5 and nread == len(raw)


def test_uwsgi_next_plain_get(tmp_path):
    pairs = [(b"CONTENT_LENGTH", b""), (b"HTTPS", b"off"), (b"PATH_INFO", b"/")]
    vals, flat, flags, _, _, keys = uwsgi_next(tmp_path, uwsgi_packet(pairs))
    assert flat == b"CONTENT_LENGTH\0\0HTTPS\0off\0PATH_INFO\0/" and flags == lib.PF_UWSGI_NEWSHAPE
    assert vals == b"\0off\0/" and keys == b"CONTENT_LENGTH\0HTTPS\0PATH_INFO\0"
    vals, flat, flags, _, _, keys = uwsgi_next(tmp_path, uwsgi_packet([(b"HTTP_CONTENT_TYPE", b"x")]))
    assert vals == flat == keys == b"" and flags == lib.PF_UWSGI_NEWSHAPE


def test_uwsgi_next_shape_table_hits_and_refills(tmp_path):
    import os
    path = str(tmp_path / "s.sock")
    ls = socket.socket(socket.AF_UNIX)
    ls.bind(path)
    ls.listen(64)
    ls.setblocking(False)
    wr, ww = os.pipe()
    lfds = ffi.new("int[]", [ls.fileno()])
    buf, flat = ffi.new("char[]", 8192), ffi.new("char[]", 65536)
    u = ffi.new("pf_app_uconn *")
    u.lfds, u.nlisten, u.wakefd, u.timeout_ms, u.max_datasize = lfds, 1, wr, 2000, 4096
    u.buf, u.cap, u.flat, u.flat_cap, u.fd = buf, 8192, flat, 65536, -1
    seen = []
    try:
        for i in list(range(lib.PF_APP_SHAPES + 3)) + [0, 0]:
            c = socket.socket(socket.AF_UNIX)
            c.connect(path)
            c.sendall(uwsgi_packet([(b"A", b"1"), (b"K%d" % i, b"v%d" % i)]))
            n = lib.pf_app_uwsgi_next(u)
            assert ffi.unpack(u.vals, n) == b"1\0v%d" % i
            keys = ffi.unpack(u.sh.store + u.sh.off[u.sh.shape], u.sh.len[u.sh.shape])
            assert keys == b"A\0K%d\0" % i          # exact, whatever the table did
            seen.append((u.sh.shape, bool(u.flags & lib.PF_UWSGI_NEWSHAPE)))
            c.close()
        assert seen[0] == (0, True) and seen[lib.PF_APP_SHAPES] == (0, True)     # full: emptied
        assert seen[-1] == (seen[-2][0], False)                                  # a hit
    finally:
        if u.fd >= 0:
            os.close(u.fd)
        for fd in (wr, ww):
            os.close(fd)
        ls.close()
