"""A recording backend for the proxy tests: speaks uwsgi (as an app server) or HTTP/1.x,
records every request it receives, answers with a fixed or scripted response."""
from __future__ import annotations

import os
import socket
import struct
import threading


class Recorder:
    def __init__(self, path: str | None = None, mode: str = "uwsgi", response: bytes | None = None):
        self.mode = mode
        self.requests: list[tuple[dict, bytes]] = []
        self.raw: list[bytes] = []
        self.response = response or b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
        if path:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.bind(path)
            self.address = path
        else:
            self.sock = socket.socket()
            self.sock.bind(("127.0.0.1", 0))
            self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.sock.listen(64)
        self.connections = 0
        self.hangup = False                    # True: read the request, close without answering
        self.hold = False                      # True: answer, then wait until the front closes
        self.closed_by_front = threading.Event()
        self.close_after = False               # True: close after each response (garbage tests)
        self.lock = threading.Lock()
        self.stopping = False
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def recv_exact(self, c, n, buf):
        while len(buf) < n:
            d = c.recv(65536)
            if not d:
                raise EOFError
            buf += d
        return buf

    def serve(self, c):
        c.settimeout(10)
        try:
            if self.mode == "uwsgi":
                buf = self.recv_exact(c, 4, b"")
                size = struct.unpack("<H", buf[1:3])[0]
                buf = self.recv_exact(c, 4 + size, buf)
                vars_, i, block = {}, 4, buf
                while i < 4 + size:
                    kl = struct.unpack("<H", block[i:i + 2])[0]
                    k = block[i + 2:i + 2 + kl]
                    i += 2 + kl
                    vl = struct.unpack("<H", block[i:i + 2])[0]
                    v = block[i + 2:i + 2 + vl]
                    i += 2 + vl
                    vars_[k.decode("latin-1")] = v.decode("latin-1")
                cl = int(vars_.get("CONTENT_LENGTH") or 0)
                body = self.recv_exact(c, 4 + size + cl, buf)[4 + size:]
                with self.lock:
                    self.requests.append((vars_, body))
                if self.hangup:
                    return
                c.sendall(self.response)
                if self.hold:
                    c.settimeout(30)
                    while c.recv(4096):
                        pass
                    self.closed_by_front.set()
            else:
                while True:
                    buf = b""
                    while b"\r\n\r\n" not in buf:
                        d = c.recv(65536)
                        if not d:
                            return
                        buf += d
                    head, _, rest = buf.partition(b"\r\n\r\n")
                    lines = head.decode("latin-1").split("\r\n")
                    hdrs = {}
                    for ln in lines[1:]:
                        k, _, v = ln.partition(":")
                        hdrs.setdefault(k.strip().lower(), v.strip())
                    cl = int(hdrs.get("content-length") or 0)
                    body = self.recv_exact(c, cl, rest)
                    hdrs["_line"] = lines[0]
                    with self.lock:
                        self.requests.append((hdrs, body[:cl]))
                        self.raw.append(head)
                    c.sendall(self.response)
                    if self.close_after:
                        return
                    if hdrs.get("connection", "").lower() == "close" or "HTTP/1.0" in lines[0]:
                        return
        except (EOFError, OSError, ValueError, struct.error):
            pass
        finally:
            c.close()

    def close(self):
        self.stopping = True
        self.sock.close()
        if self.mode == "uwsgi" and os.path.exists(self.address):
            os.unlink(self.address)
