"""src/c/app_hot.c (the scoreboard record kept by C) and the shape table's same-shape path,
through cffi against a real Scoreboard mmap (also run under ASan by `make test-asan`)."""
import socket
import struct
import time

from pyfront._native import ffi, lib
from pyfront.app import scoreboard as sb


def board_for(board: sb.Scoreboard, mem, slot: int, core: int, retire_at: int = 0):
    b = ffi.new("pf_app_board *")
    off = board.off(slot)
    b.core = mem + board.core_off(slot, core)
    b.requests = ffi.cast("uint64_t *", mem + off + 8)
    b.retire = ffi.cast("int32_t *", mem + off + 16)
    b.retire_at = retire_at
    return b


def test_board_line_time_count_and_retire():
    board = sb.Scoreboard(4, 2)
    mem = ffi.from_buffer(board.mem)
    b = board_for(board, mem, 1, 1, retire_at=3)
    before = time.monotonic()
    lib.pf_app_board_begin(b, b"POST", 4, b"/a?b=c", 6)
    start, line = board.core(1, 1)
    assert line == "POST /a?b=c" and before <= start <= time.monotonic()
    assert board.core(1, 0) == (0.0, "") and board.head(1)[2] == 1        # the slot counts
    lib.pf_app_board_end(b)
    assert board.core(1, 1) == (0.0, "POST /a?b=c")                        # idle: not busy in status
    long_uri = b"/" + b"x" * 300
    lib.pf_app_board_begin(b, b"GET", 3, long_uri, len(long_uri))           # cut at 120 bytes
    assert board.core(1, 1)[1] == ("GET " + long_uri.decode())[:sb.URI_MAX]
    lib.pf_app_board_begin(b, b"GET", 3, b"/", 1)                          # zero-padded: no tail left
    assert board.core(1, 1)[1] == "GET /"
    assert board.head(1)[2] == 3 and board.head(1)[3] == sb.RETIRE_MAX_REQUESTS
    board.set_retire(1, sb.RETIRE_RSS)
    lib.pf_app_board_begin(b, b"GET", 3, b"/", 1)
    assert board.head(1)[3] == sb.RETIRE_RSS                                # a reason set first stays
    assert board.head(0) == (0, 0, 0, 0, 0) and board.head(2) == (0, 0, 0, 0, 0)
    nothing = ffi.new("pf_app_board *")                                    # NULL pointers: no writes
    lib.pf_app_board_begin(nothing, b"GET", 3, b"/", 1)
    lib.pf_app_board_end(nothing)


def uwsgi_packet(pairs):
    data = b"".join(struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v for k, v in pairs)
    return struct.pack("<BHB", 0, len(data), 0) + data


def test_uwsgi_step_fast_result_board_and_same_shape(tmp_path):
    import os
    path = str(tmp_path / "h.sock")
    ls = socket.socket(socket.AF_UNIX)
    ls.bind(path)
    ls.listen(8)
    ls.setblocking(False)
    wr, ww = os.pipe()
    board = sb.Scoreboard(2, 1)
    mem = ffi.from_buffer(board.mem)
    lfds = ffi.new("int[]", [ls.fileno()])
    buf, flat = ffi.new("char[]", 8192), ffi.new("char[]", 65536)
    u = ffi.new("pf_app_uconn *")
    u.lfds, u.nlisten, u.wakefd, u.timeout_ms, u.max_datasize = lfds, 1, wr, 2000, 4096
    u.buf, u.cap, u.flat, u.flat_cap, u.fd = buf, 8192, flat, 65536, -1
    u.board = board_for(board, mem, 0, 0)[0]
    clients = []
    try:
        def ask(pairs, st=ffi.NULL, nh=0, body=b""):
            c = socket.socket(socket.AF_UNIX)
            c.connect(path)
            c.sendall(uwsgi_packet(pairs))
            clients.append(c)
            return lib.pf_app_uwsgi_step(u, st, len(st) if st else 0, nh, body, len(body))
        a = [(b"REQUEST_METHOD", b"GET"), (b"REQUEST_URI", b"/q?x"), (b"SERVER_PROTOCOL", b"HTTP/1.1")]
        assert ask(a) == lib.PF_APP_SLOWREQ and u.flags == lib.PF_UWSGI_NEWSHAPE   # a new shape
        assert board.core(0, 0)[1] == "GET /q?x" and board.core(0, 0)[0] > 0
        st = b"200 OK\0Content-Type\0text/plain"
        b = [(b"REQUEST_METHOD", b"PUT"), (b"REQUEST_URI", b""), (b"PATH_INFO", b"/p"),
             (b"SERVER_PROTOCOL", b"HTTP/1.0")]
        half = lib.PF_APP_VALS_MAX // 2
        r = ask(a[:1] + [(b"REQUEST_URI", b"/r")] + a[2:], st, 1, b"hi")            # same shape: fast
        assert r == lib.PF_APP_NEWVARY and u.sh.vary[0] == 0b010      # REQUEST_URI left the snapshot
        assert ffi.unpack(u.vals + half, u.n) == b"/r" and ffi.unpack(u.vals, 15) == b"GET\0/r\0HTTP/1.1"
        assert clients[0].recv(4096) == b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhi"
        r = ask(a[:1] + [(b"REQUEST_URI", b"/s")] + a[2:], st, 1, b"hi")            # same shape: fast
        assert r >= 0 and r & 31 == 0 and (r >> 5) & 15 == 0 and not (r >> 9) & 1
        assert ffi.unpack(u.vals + half, r >> 10) == b"/s"            # only the varying value
        assert clients[1].recv(4096) == b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhi"
        r = ask(b, b"204 No Content\0", 0, b"")          # another shape: no REQUEST_URI, PATH_INFO shows
        assert r == lib.PF_APP_SLOWREQ and board.core(0, 0)[1] == "PUT /p"
        assert clients[2].recv(4096) == b"HTTP/1.1 204 No Content\r\n\r\n"
        assert board.head(0)[2] == 4
        assert lib.pf_app_uwsgi_step(u, b"x", 1, 0, b"", 0) == lib.PF_APP_BADHEAD    # nothing done
        assert u.fd >= 0
        u.stop = 1
        assert lib.pf_app_uwsgi_step(u, b"200 OK", 6, 0, b"", 0) == lib.PF_APP_STOP and u.fd == -1
        assert clients[3].recv(4096) == b"HTTP/1.0 200 OK\r\n\r\n" and board.core(0, 0)[0] == 0.0
    finally:
        if u.fd >= 0:
            os.close(u.fd)
        for c in clients:
            c.close()
        for fd in (wr, ww):
            os.close(fd)
        ls.close()


def test_log_request_line_is_uwsgis():
    import os
    import re
    board = sb.Scoreboard(1, 1)
    mem = ffi.from_buffer(board.mem)
    b = board_for(board, mem, 0, 0)
    lib.pf_app_board_begin(b, b"GET", 3, b"/", 1)          # req: 1/1
    r, w = os.pipe()
    try:
        lg = ffi.new("pf_app_log *")
        keep = [ffi.new("char[]", x) for x in (b"POST", b"/x?y=1", b"10.0.0.1", b"HTTP/1.1")]
        lg.fd, lg.pid, lg.core = w, 4242, 3
        lg.method, lg.mlen, lg.uri, lg.ulen, lg.addr, lg.alen, lg.proto, lg.plen = \
            keep[0], 4, keep[1], 6, keep[2], 8, keep[3], 8
        lg.nvars, lg.datasize = 14, 288
        lg.t0_ns = int(time.monotonic() * 1e9) - 5_000_000
        lib.pf_app_log_request(lg, b, b"201 Created\0X\0y", 15, 1, 13, 40)
        line = os.read(r, 4096).decode()
        assert re.fullmatch(r"\[pid: 4242\|app: 0\|req: 1/1\] 10\.0\.0\.1 \(\) \{14 vars in 288 bytes\} "
                            r"\[\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\] POST /x\?y=1 => generated 13 bytes in "
                            r"\d+ msecs \(HTTP/1\.1 201\) 1 headers in 40 bytes \(1 switches on core 3\)\n", line), line
        assert int(re.search(r"in (\d+) msecs", line).group(1)) >= 5
        lg.method = lg.proto = lg.addr = ffi.NULL                # absent vars: the base environ's defaults
        lg.ulen = 0
        lib.pf_app_log_request(lg, b, b"500", 3, 0, 0, 0)
        line = os.read(r, 4096).decode()
        assert " ()" in line and "] GET  => generated 0 bytes" in line and "(HTTP/1.0 500) 0 headers" in line, line
        lg.fd = -1                                              # off: nothing written
        lib.pf_app_log_request(lg, b, b"200 OK", 6, 0, 0, 0)
        os.set_blocking(r, False)
        try:
            assert os.read(r, 10) == b""
        except BlockingIOError:
            pass
    finally:
        os.close(r)
        os.close(w)
