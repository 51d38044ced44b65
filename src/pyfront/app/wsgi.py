"""PEP 3333 for one request: environ, start_response, wsgi.input, response writing.

The per-request path is written for a small, fixed number of Python steps: C hands us
the vars as one latin-1 "k\\0v\\0..." block (uwsgi.c), which becomes the environ with
one decode, one split and one dict.update; headers are joined with one str.join over
map(); the head and the first body chunk leave in one writev (app_io.c).
"""
from __future__ import annotations

import io
import os
import sys
import time
import traceback

from pyfront._native import ffi, lib

APP_TIMEOUT = lib.PF_APP_TIMEOUT
_send2 = lib.pf_app_send2


class ClientGone(Exception):
    """The peer closed or a read/write timed out: stop this request quietly."""


class Errors:
    """wsgi.errors: lines go to the worker's log (stderr or logto)."""

    def __init__(self, stream=None):
        self._s = stream or sys.stderr

    def write(self, s):
        self._s.write(s)

    def writelines(self, seq):
        for s in seq:
            self._s.write(s)

    def flush(self):
        self._s.flush()


class Input:
    """wsgi.input over the socket: never reads past CONTENT_LENGTH (or the last chunk).

    `prefix` holds body bytes that arrived with the request head. `chunked` (HTTP mode)
    decodes Transfer-Encoding: chunked via the C decoder.
    """

    __slots__ = ("_fd", "_buf", "_left", "_timeout", "_io", "_chunked", "_cstate", "_raw", "_done", "_recvd")

    def __init__(self, fd: int, prefix: bytes, length: int, io_ctx, timeout_ms: int, chunked: bool = False):
        self._fd = fd
        self._timeout = timeout_ms
        self._io = io_ctx
        self._chunked = chunked
        self._done = False
        self._recvd = False      # any body byte came from the socket (not from the head's buffer)
        if chunked:
            self._buf = b""
            self._raw = bytearray(prefix)      # undecoded chunked bytes
            self._left = -1
            self._cstate = ffi.new("pf_chunked *")
            lib.pf_chunked_init(self._cstate)
        else:
            self._buf = prefix[:length]
            self._left = length - len(self._buf)  # bytes still on the socket
            self._raw = None

    def _recv(self, n: int) -> bytes:
        data = self._io.recv(self._fd, n, self._timeout)
        self._recvd = True
        if not data:
            raise ClientGone("client closed the connection while sending the body")
        return data

    def _fill(self, want: int) -> bool:
        """Append up to `want` more body bytes to _buf; False at end of body."""
        if self._chunked:
            return self._fill_chunked()
        if self._left <= 0:
            return False
        data = self._recv(min(self._left, max(want, 65536)))
        self._left -= len(data)
        self._buf += data
        return True

    def _fill_chunked(self) -> bool:
        if self._done:
            return False
        off, dlen, done = ffi.new("size_t *"), ffi.new("size_t *"), ffi.new("int *")
        while True:
            if self._raw:
                raw = bytes(self._raw)
                rc = lib.pf_chunked_feed(self._cstate, raw, len(raw), off, dlen, done)
                if rc >= 0:
                    del self._raw[:rc]
                    if dlen[0]:
                        self._buf += raw[off[0]:off[0] + dlen[0]]
                    if done[0]:
                        self._done = True
                        return bool(dlen[0])
                    if dlen[0]:
                        return True
                    if rc:
                        continue
                elif rc != lib.PF_NEED_MORE:
                    raise ValueError("invalid chunked request body")
            self._raw += self._recv(65536)

    def leftover(self) -> bytes:
        """Bytes past the end of this body that were read (pipelined next request)."""
        return bytes(self._raw) if self._chunked and self._done and self._raw else b""

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            while self._fill(1 << 20):
                pass
            out, self._buf = self._buf, b""
            return out
        while len(self._buf) < size and self._fill(size - len(self._buf)):
            pass
        out, self._buf = self._buf[:size], self._buf[size:]
        return out

    def readline(self, size: int | None = -1) -> bytes:
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0 and (size is None or size < 0 or nl < size):
                out, self._buf = self._buf[:nl + 1], self._buf[nl + 1:]
                return out
            if size is not None and 0 <= size <= len(self._buf):
                out, self._buf = self._buf[:size], self._buf[size:]
                return out
            if not self._fill(8192):
                out, self._buf = self._buf, b""
                return out

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        lines, total = [], 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self):
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def drain(self) -> bool:
        """Discard the unread body (keep-alive needs the next request's first byte). False if too long."""
        budget = 1 << 20
        self._buf = b""
        while self._fill(65536):
            budget -= len(self._buf)
            self._buf = b""
            if budget < 0:
                return False
        return True


class EmptyInput:
    """wsgi.input of a request without a body (no per-request state, cheap to create)."""

    __slots__ = ()
    _left = 0
    _chunked = False
    _recvd = False

    def read(self, size=-1):
        return b""

    def readline(self, size=-1):
        return b""

    def readlines(self, hint=-1):
        return []

    def __iter__(self):
        return iter(())

    def drain(self):
        return True

    def leftover(self):
        return b""


EMPTY_INPUT = EmptyInput()     # stateless: every request without a body shares it


class FileWrapper:
    """wsgi.file_wrapper: served with sendfile() when the object has a real fileno()."""

    def __init__(self, filelike, blksize: int = 8192):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self):
        read = self.filelike.read
        while True:
            data = read(self.blksize)
            if not data:
                return
            yield data

    def fileno_size(self):
        """(fd, offset, count) if sendfile() can serve it, else None."""
        try:
            fd = self.filelike.fileno()
            st = os.fstat(fd)
        except (AttributeError, OSError, io.UnsupportedOperation, ValueError):
            return None
        import stat as _st
        if not _st.S_ISREG(st.st_mode):
            return None
        try:
            pos = self.filelike.tell()
        except (AttributeError, OSError, ValueError):
            pos = 0
        return fd, pos, max(0, st.st_size - pos)


class IOCtx:
    """Per-thread C buffers and out-params (allocated once, reused for every request)."""

    def __init__(self, buffer_size: int):
        self.cap = max(buffer_size + 4, 16384) + 65536
        self.buf = ffi.new("char[]", self.cap)
        self.flat = ffi.new("char[]", 65536)
        self.pkt = ffi.new("pf_uwsgi_packet *")
        self.nread = ffi.new("size_t *")
        self.err = ffi.new("int *")
        self.rbuf = ffi.new("char[]", 65536)

    def recv(self, fd: int, n: int, timeout_ms: int) -> bytes:
        n = min(n, 65536)
        r = lib.pf_app_recv(fd, self.rbuf, n, timeout_ms, self.err)
        if r > 0:
            return ffi.unpack(self.rbuf, r)
        if r == 0:
            return b""
        if r == APP_TIMEOUT:
            raise ClientGone(f"recv() timed out after {timeout_ms} ms")
        raise ClientGone(f"recv() failed ({self.err[0]}: {os.strerror(self.err[0])})")

    def send(self, fd: int, a: bytes, b: bytes, timeout_ms: int) -> None:
        r = _send2(fd, a, len(a), b, len(b), timeout_ms, self.err)
        if r < 0:
            self.send_failed(r, timeout_ms)

    def send_failed(self, rc: int, timeout_ms: int):
        if rc == APP_TIMEOUT:
            raise ClientGone(f"writev() timed out after {timeout_ms} ms")
        raise ClientGone(f"writev() failed ({self.err[0]}: {os.strerror(self.err[0])})")

    def sendfile(self, fd: int, in_fd: int, offset: int, count: int, timeout_ms: int) -> int:
        r = lib.pf_app_sendfile(fd, in_fd, offset, count, timeout_ms, self.err)
        if r < 0:
            if r == APP_TIMEOUT:
                raise ClientGone(f"sendfile() timed out after {timeout_ms} ms")
            raise ClientGone(f"sendfile() failed ({self.err[0]}: {os.strerror(self.err[0])})")
        return r


def base_environ(multithread: bool, multiprocess: bool, errors, server_name: str, server_port: str) -> dict:
    """The keys every request shares; copied once per request, then the vars are added."""
    return {
        "SCRIPT_NAME": "", "PATH_INFO": "", "QUERY_STRING": "", "REQUEST_METHOD": "GET",
        "SERVER_NAME": server_name, "SERVER_PORT": server_port, "SERVER_PROTOCOL": "HTTP/1.0",
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.errors": errors,
        "wsgi.multithread": multithread, "wsgi.multiprocess": multiprocess, "wsgi.run_once": False,
        "wsgi.file_wrapper": FileWrapper, "wsgi.input_terminated": True, "wsgi.input": EMPTY_INPUT,
    }


class Start:
    """start_response for one request. It only records status and headers; the worker
    sends the common response (one bytes string) itself, and a full Response is made
    only when the app calls write() or returns anything else (~1 µs less per request).

    args = the Response constructor's arguments (fd, io, timeout_ms, proto, http,
    keep_alive, method_head, extra_headers).

    The worker's fast loops reuse one Start per thread (creating one per request costs
    ~1,000 instructions, bench/app_cost.py): args is None and `argsf()` makes (args,
    sflags) of the thread's current request when the general path needs them; the loop
    sets status = None before each request and reset() after a general-path one."""

    status = headers = resp = sent = None

    def __init__(self, args, sflags, argsf=None):
        self.args = args
        self.sflags = sflags     # PF_SEND_* for pf_app_send_simple
        self.argsf = argsf
        # instance values, not the class's: the hot loops' loads of these stay specialized
        # (a miss falls back to the generic getattr: ~550 instructions, bench/app_cost.py)
        self.status = self.headers = self.resp = self.sent = None

    def prepare(self):
        """The Response arguments of the current request (made now for a reused Start)."""
        args = self.args
        if args is None:
            args, self.sflags = self.argsf()
            self.args = args
        return args

    def reset(self):
        self.resp = self.sent = self.args = None

    def __call__(self, status, headers, exc_info=None):
        if self.resp is not None:
            return self.resp.start_response(status, headers, exc_info)
        if exc_info:
            exc_info = None          # nothing is sent yet: replacing the response is allowed
        elif self.status is not None:
            raise AssertionError("start_response() called a second time without exc_info (PEP 3333)")
        self.status = status
        self.headers = headers
        return self.write

    def write(self, data):
        return self.response().write(data)

    def response(self, replay: bool = True) -> "Response":
        r = self.resp
        if r is None:
            r = self.resp = Response(*(self.args or self.prepare()))
            if replay and self.status is not None:
                r.start_response(self.status, self.headers)
        return r


class ThreadStart(Start):
    """The fast loops' per-thread Start (see Start): write() is bound once, not per call
    (a bound method per start_response call: ~300 instructions, bench/app_cost.py)."""

    def __init__(self, argsf):
        super().__init__(None, 0, argsf)
        self.write_ = self.write          # a cycle, but one long-lived object per thread

    def __call__(self, status, headers, exc_info=None):
        if self.resp is not None:
            return self.resp.start_response(status, headers, exc_info)
        if exc_info:
            exc_info = None          # nothing is sent yet: replacing the response is allowed
        elif self.status is not None:
            raise AssertionError("start_response() called a second time without exc_info (PEP 3333)")
        self.status = status
        self.headers = headers
        return self.write_


STATUS_500 = "500 Internal Server Error"
BODY_500 = b"Internal Server Error"


class Response:
    """start_response + write + the body loop for one request.

    http=True: HTTP/1.x semantics on a keep-alive connection (Content-Length or chunked,
    Connection header); http=False: uwsgi (nginx reads until we close). ukeep=True (with
    http=True): a persistent uwsgi connection from pyfront's front (docs/proxy.md): framed
    as HTTP/1.1, and "Connection: keep-alive" acknowledges the connection is kept.
    """

    __slots__ = ("fd", "io", "timeout", "proto", "status", "headers", "head_sent", "bytes_sent",
                 "head_bytes", "chunked", "keep_alive", "http", "method_head", "extra_headers", "has_length",
                 "ukeep")

    def __init__(self, fd, io_ctx, timeout_ms, proto, http=False, keep_alive=False, method_head=False, extra_headers=(),
                 ukeep=False):
        self.fd = fd
        self.io = io_ctx
        self.timeout = timeout_ms
        self.proto = proto
        self.status = self.headers = None
        self.head_sent = self.chunked = self.has_length = False
        self.bytes_sent = self.head_bytes = 0
        self.http = http
        self.keep_alive = keep_alive
        self.method_head = method_head
        self.extra_headers = extra_headers
        self.ukeep = ukeep

    def start_response(self, status, headers, exc_info=None):
        if exc_info:
            try:
                if self.head_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response() called a second time without exc_info (PEP 3333)")
        if type(status) is not str:
            raise TypeError(f"status must be str, not {type(status).__name__}")
        if len(status) < 4 or not status[:3].isdigit() or status[3] != " ":
            raise ValueError(f"status {status!r} is not 'NNN Reason'")
        if type(headers) is not list:
            raise TypeError("response headers must be a list of (name, value) tuples")
        self.status = status
        self.headers = headers
        return self.write

    def _head(self, body_len: int | None) -> bytes:
        """Status line + headers. body_len: known total length when no Content-Length was set."""
        headers = self.headers
        if self.extra_headers:
            headers = headers + list(self.extra_headers)
        try:
            h = "\r\n".join(map(": ".join, headers))
        except TypeError:
            raise TypeError("response headers must be (str, str) tuples") from None
        n = len(headers)
        if n and (h.count("\n") != n - 1 or h.count("\r") != n - 1):
            raise ValueError("a response header contains CR or LF (header injection)")
        if self.http:
            low = "\n" + h.lower()
            self.has_length = "\ncontent-length:" in low
            extra = ""
            if not self.has_length and self.status[:3] not in ("204", "304") and not self.status.startswith("1"):
                if body_len is not None:
                    extra += f"\r\nContent-Length: {body_len}"
                    self.has_length = True
                elif self.proto == "HTTP/1.1":
                    extra += "\r\nTransfer-Encoding: chunked"
                    self.chunked = True
                else:
                    self.keep_alive = False   # HTTP/1.0 without length: close delimits the body
            if "\nconnection: close" in low:
                self.keep_alive = False
            if self.keep_alive:
                if self.proto == "HTTP/1.0" or self.ukeep:
                    extra += "\r\nConnection: keep-alive"
            else:
                extra += "\r\nConnection: close"
            h = h + extra if h else extra[2:]      # no app header: extra starts the field block
            if self.status[:3] in ("204", "304") or self.status.startswith("1"):
                self.method_head = True     # RFC 9112 §6.3: no body, whatever the app yields
            if self.method_head:
                self.chunked = False
        head = f"{self.proto} {self.status}\r\n{h}\r\n\r\n" if h else f"{self.proto} {self.status}\r\n\r\n"
        data = head.encode("latin-1")
        self.head_bytes = len(data)
        return data

    def write(self, data: bytes) -> None:
        if self.status is None:
            raise AssertionError("write() before start_response()")
        if type(data) is not bytes:
            if isinstance(data, (bytearray, memoryview)):
                data = bytes(data)
            else:
                raise TypeError(f"the body must be bytes, not {type(data).__name__}")
        if not self.head_sent:
            head = self._head(None)
            self.head_sent = True
            self._send(head, data)
        elif data:
            self._send(b"", data)

    def _send(self, head: bytes, data: bytes) -> None:
        if self.method_head:
            data = b""
        elif self.chunked and data:
            data = b"%x\r\n%b\r\n" % (len(data), data)
        if head or data:
            self.io.send(self.fd, head, data, self.timeout)
        self.bytes_sent += len(data)

    def finish(self) -> None:
        if not self.head_sent:
            self.head_sent = True
            self.io.send(self.fd, self._head(0), b"", self.timeout)
        elif self.chunked:
            self.io.send(self.fd, b"0\r\n\r\n", b"", self.timeout)

    def send_result(self, result) -> None:
        """Iterate the app's return value (close() is the caller's job)."""
        if type(result) is list and len(result) == 1 and type(result[0]) is bytes \
                and self.status is not None and not self.head_sent:
            # the common case: one body string, length known; head + body in one writev
            body = result[0]
            head = self._head(len(body))
            self.head_sent = True
            if self.method_head:
                body = b""
            r = _send2(self.fd, head, len(head), body, len(body), self.timeout, self.io.err)
            if r < 0:
                self.io.send_failed(r, self.timeout)
            self.bytes_sent = len(body)
            return
        if isinstance(result, FileWrapper) and self.status is not None and not self.method_head:
            info = result.fileno_size()
            if info is not None:
                fd, off, count = info
                if not self.head_sent:
                    self.head_sent = True
                    head = self._head(count)
                    self.io.send(self.fd, head, b"", self.timeout)
                n = self.io.sendfile(self.fd, fd, off, count, self.timeout)
                self.bytes_sent += n
                return
        for chunk in result:
            if chunk:
                self.write(chunk)
            elif self.status is None:
                raise AssertionError("the app yielded before calling start_response()")
        if self.status is None:
            raise AssertionError("the app returned without calling start_response()")
        self.finish()

    def error_500(self) -> None:
        """The app failed before any byte was sent: answer 500 (as uWSGI does)."""
        self.status, self.headers = STATUS_500, [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY_500)))]
        self.extra_headers = ()
        self.chunked = False
        head = self._head(len(BODY_500))
        self.head_sent = True
        self._send(head, BODY_500)


def log_exception(errors, where: str) -> None:
    try:
        errors.write(f"{where}\n{traceback.format_exc()}")
        errors.flush()
    except Exception:
        pass


class DateCache:
    """uWSGI's request-log timestamp, formatted once per second."""

    def __init__(self):
        self._t = -1
        self._s = ""

    def now(self) -> str:
        t = int(time.time())
        if t != self._t:
            self._t, self._s = t, time.strftime("%a %b %e %H:%M:%S %Y", time.localtime(t))
        return self._s
