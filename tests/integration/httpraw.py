"""A tiny raw HTTP/1.x client for tests: exact bytes out, parsed response in."""
from __future__ import annotations

import socket
from dataclasses import dataclass, field


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    raw_head: bytes = b""

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


def parse_responses(data: bytes, head_only: bool = False) -> list[Response]:
    """Split a byte stream into responses (Content-Length / chunked / until close)."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        r = Response(int(parts[1]), parts[2].decode() if len(parts) > 2 else "", raw_head=head)
        for ln in lines[1:]:
            k, _, v = ln.partition(b":")
            r.headers.append((k.decode(), v.strip().decode("latin-1")))
        cl = r.header("content-length")
        if head_only or r.status in (204, 304) or 100 <= r.status < 200:
            data = rest
        elif (r.header("transfer-encoding") or "").lower() == "chunked":
            body = b""
            while True:
                size_line, _, rest = rest.partition(b"\r\n")
                n = int(size_line.split(b";")[0], 16)
                if n == 0:
                    _, _, rest = rest.partition(b"\r\n")
                    break
                body += rest[:n]
                rest = rest[n + 2:]
            r.body = body
            data = rest
        elif cl is not None:
            r.body = rest[:int(cl)]
            data = rest[int(cl):]
        else:
            r.body = rest
            data = b""
        out.append(r)
    return out


def exchange(port: int, data: bytes, timeout: float = 5.0, host: str = "127.0.0.1",
             half_close: bool = False) -> bytes:
    """Send data, read until the server closes (half_close: shut our side down first)."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            got += chunk
        return got
    finally:
        s.close()


def request(port: int, method: str, path: str, headers: dict | None = None, version: str = "1.1",
            body: bytes = b"", host: str = "localhost") -> Response:
    hdrs = {"Host": host, "Connection": "close", **(headers or {})}
    if version == "1.0":
        hdrs.pop("Host", None) if host is None else None
    lines = [f"{method} {path} HTTP/{version}"] + [f"{k}: {v}" for k, v in hdrs.items() if v is not None]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    rs = parse_responses(exchange(port, data), head_only=method == "HEAD")
    if not rs:
        raise ConnectionError(f"no response to {method} {path}")
    return rs[0]
