"""nginx's inheritance rules in pyfront's model, checked against a running nginx.

Seeded random configs put `add_header`, `uwsgi_param` (with `include uwsgi_params`),
`expires`, `charset` and `uwsgi_hide_header` at the http, server, location and
nested-location levels; every location
`uwsgi_pass`es to a tiny uwsgi echo server that answers with the names of the vars it got.
For each location, the headers nginx adds and the vars it sends must be exactly the
effective values in pyfront's model (Settings.add_headers, Settings.uwsgi.params,
Settings.expires, Settings.charset, Settings.uwsgi.hide_headers) — the front compiler relies on them and never re-implements inheritance.
"""
from __future__ import annotations

import http.client
import random
import socket
import struct
import threading

import pytest

from pyfront.config.nginx import load_nginx_text
from pyfront.config.nginx_match import find_location
from tests.conftest import free_port, need_peer, wait_for_port

pytestmark = pytest.mark.peer


class UwsgiEcho:
    """Answers every uwsgi request with the var names it received, one per line, in order."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _recv(self, c, n):
        buf = b""
        while len(buf) < n:
            chunk = c.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("short read")
            buf += chunk
        return buf

    def _run(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                try:
                    _, size, _ = struct.unpack("<BHB", self._recv(c, 4))
                    data = self._recv(c, size)
                    names, i = [], 0
                    while i < len(data):
                        (kl,) = struct.unpack_from("<H", data, i)
                        key = data[i + 2:i + 2 + kl].decode("latin-1")
                        i += 2 + kl
                        (vl,) = struct.unpack_from("<H", data, i)
                        i += 2 + vl
                        names.append(key)
                    body = "\n".join(names).encode()
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nBackend-A: 1\r\nBackend-B: 1\r\n"
                              b"Content-Length: "
                              + str(len(body)).encode() + b"\r\n\r\n" + body)
                except (OSError, ConnectionError, struct.error):
                    pass

    def close(self):
        self.stop = True
        self.sock.close()


LOCATIONS = ["/a/", "/b/", "/b/c/"]


def _level(r: random.Random, tag: str) -> str:
    out = []
    if r.random() < 0.5:
        out += [f"add_header X-{tag}-{i} v{i};" for i in range(r.randint(1, 2))]
    if r.random() < 0.3:
        out.append("include uwsgi_params;")
    if r.random() < 0.4:
        out += [f"uwsgi_param P_{tag}_{i} x{i};" for i in range(r.randint(1, 2))]
    if r.random() < 0.3:
        out.append(r.choice(["expires 1h;", "expires epoch;", "expires max;", "expires off;"]))
    if r.random() < 0.3:
        out.append(r.choice(["charset utf-8;", "charset off;", "charset koi8-r;"]))
    if r.random() < 0.3:
        out += [f"uwsgi_hide_header {h};" for h in r.sample(["Backend-A", "Backend-B"], r.randint(1, 2))]
    return " ".join(out)


def _config(seed: int, port: int, backend: int) -> str:
    r = random.Random(seed)
    pass_ = f"uwsgi_pass 127.0.0.1:{backend};"
    return (f"{_level(r, 'H')}\nserver {{\n    listen 127.0.0.1:{port};\n    {_level(r, 'S')}\n"
            f"    location /a/ {{ {pass_} {_level(r, 'A')} }}\n"
            f"    location /b/ {{ {pass_} {_level(r, 'B')}\n"
            f"        location /b/c/ {{ {pass_} {_level(r, 'C')} }}\n    }}\n}}\n")


def _start_nginx(nginx, d, site, procs):
    (d / "logs").mkdir()
    temp = "".join(f"    {n}_temp_path {d}/{n};\n" for n in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (d / "site.conf").write_text(site)
    # a real nginx install has uwsgi_params next to its config; pyfront ships the same file
    from importlib import resources
    (d / "uwsgi_params").write_bytes(resources.files("pyfront").joinpath("data", "uwsgi_params").read_bytes())
    (d / "nginx.conf").write_text(
        f"pid {d}/nginx.pid;\nerror_log {d}/logs/error.log;\nevents {{ worker_connections 64; }}\n"
        f"http {{\n    access_log off;\n{temp}    include {d}/site.conf;\n}}\n")
    return procs([nginx, "-p", f"{d}/", "-c", f"{d}/nginx.conf", "-e", f"{d}/logs/error.log",
                  "-g", "daemon off; master_process off;"])


def _get(port, uri):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", uri)
    r = c.getresponse()
    body = r.read().decode()
    headers = r.getheaders()
    c.close()
    return r.status, headers, body


def _expires_kind(headers):
    h = {k.lower(): v for k, v in headers}
    if "expires" not in h:
        return None
    cc = h.get("cache-control", "")
    if cc == "no-cache":
        return "epoch"
    if cc == "max-age=315360000":
        return "max"
    return "time"


@pytest.mark.parametrize("chunk", range(2))
def test_inheritance_matches_nginx(chunk, tmp_path, procs):
    nginx = need_peer("nginx")
    echo = UwsgiEcho()
    try:
        for i in range(8):
            seed = chunk * 100 + i
            port = free_port()
            site = _config(seed, port, echo.port)
            d = tmp_path / str(i)
            d.mkdir()
            proc = _start_nginx(nginx, d, site, procs)
            try:
                wait_for_port(port, proc=proc.p)
            except RuntimeError:
                pytest.fail(f"nginx did not start: {proc.stop()}\n{site}")
            cfg, _ = load_nginx_text(site, "site.conf", prefix=str(d))
            srv = cfg.http.servers[0]
            for uri in LOCATIONS:
                status, headers, body = _get(port, uri + "x")
                assert status == 200, (seed, uri, status)
                st = find_location(srv, uri + "x").settings
                got_h = [k for k, _ in headers if k.lower().startswith("x-")]
                want_h = [h.name for h in st.add_headers]
                got_p = [n for n in body.split("\n") if n and not n.startswith("HTTP_")]
                want_p = [p.name for p in st.uwsgi.params if not p.name.startswith("HTTP_")
                          and not (p.if_not_empty and p.name == "HTTPS")]
                want_e = None if st.expires is None or st.expires.kind == "off" else st.expires.kind
                ctype = dict((k.lower(), v) for k, v in headers)["content-type"]
                want_ct = "text/plain" + (f"; charset={st.charset}" if st.charset else "")
                got_b = sorted(k for k, _ in headers if k.lower().startswith("backend-"))
                want_b = sorted(b for b in ("Backend-A", "Backend-B") if b not in st.uwsgi.hide_headers)
                assert (got_h, got_p, _expires_kind(headers), ctype, got_b) == \
                    (want_h, want_p, want_e, want_ct, want_b), f"seed {seed} {uri}\n{site}"
            proc.stop()
    finally:
        echo.close()
