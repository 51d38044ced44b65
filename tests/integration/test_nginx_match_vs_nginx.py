"""pyfront.config.nginx_match (server and location selection) against a running real nginx.

One nginx serves a config whose every location answers its own name; the same config is
loaded into pyfront's model and the reference matcher must name the same server and
location for every (address, Host, URI) probe.
"""
from __future__ import annotations

import http.client
import socket

import pytest

from pyfront.config.nginx import load_nginx_text
from pyfront.config.nginx_match import find_location, find_server
from tests.conftest import free_port, need_peer, wait_for_port

pytestmark = pytest.mark.peer

S1_LOCATIONS = [
    ("= /", None), ("/", None), ("/docs/", ["/docs/api/", "~ \\.txt$"]), ("^~ /static/", None),
    ("~* \\.(png|jpg)$", None), ("~ ^/docs/v[0-9]", None), ("/images/", None), ("= /exact", None),
    ("@named", None), ("/a", ["/ab", "~ /a.*z$"]),
]
NAMES = [("S2", "*.b.test"), ("S3", ".c.test"), ("S4", "www.d.*"), ("S5", "~^(?<x>\\w+)\\.e\\.test$"),
         ("S6", "_"), ("S7", '""'), ("S8", "x.b.test"), ("S9", "*.sub.b.test")]


def _label(text):
    return text.replace('"', "").replace("\\", "").replace("$", "")


def _location(spec, srv, nested):
    body = f'return 200 "{srv} {_label(spec)}";'
    inner = "".join(_location(n, srv, None) for n in (nested or ()))
    return f"        location {spec} {{ {body} {inner}}}\n"


def _config(p1, p2):
    out = [f"server {{\n    listen 127.0.0.1:{p1};\n    server_name a.test;\n    root /nonexistent-pyfront;\n"
           "    add_header X-Srv S1 always;\n"]
    out += [_location(spec, "S1", nested) for spec, nested in S1_LOCATIONS]
    out.append("}\n")
    for sid, name in NAMES:
        default = " default_server" if sid == "S6" else ""
        out.append(f"server {{\n    listen 127.0.0.1:{p1}{default};\n    server_name {name};\n"
                   f'    location / {{ return 200 "{sid} /"; }}\n}}\n')
    out.append(f'server {{\n    listen {p2};\n    server_name w.test;\n    location / {{ return 200 "W1 /"; }}\n}}\n')
    out.append(f'server {{\n    listen 127.0.0.1:{p2};\n    server_name other.test;\n'
               f'    location / {{ return 200 "W2 /"; }}\n}}\n')
    return "".join(out)


def _ask(port, host, uri):
    if host is None:   # HTTP/1.0 without a Host header
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(f"GET {uri} HTTP/1.0\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head.split()[1])
        srv = next((l.split(b":", 1)[1].strip().decode() for l in head.split(b"\r\n") if l.lower().startswith(b"x-srv:")), None)
        return status, body.decode(), srv
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.putrequest("GET", uri, skip_host=True)
    c.putheader("Host", host)
    c.endheaders()
    r = c.getresponse()
    body = r.read().decode()
    c.close()
    return r.status, body, r.getheader("X-Srv")


PROBES = [
    ("a.test", "/"), ("a.test", "/x"), ("a.test", "/docs/"), ("a.test", "/docs/a.txt"), ("a.test", "/docs/api/x"),
    ("a.test", "/docs/api/a.txt"), ("a.test", "/docs/v2/x"), ("a.test", "/static/a.png"), ("a.test", "/images/a.PNG"),
    ("a.test", "/images/x"), ("a.test", "/exact"), ("a.test", "/exact/"), ("a.test", "/a"), ("a.test", "/abc"),
    ("a.test", "/abz"), ("a.test", "/az"), ("a.test", "/docsx"), ("A.TEST:80", "/x"), ("a.test.", "/x"),
    ("q.b.test", "/"), ("x.b.test", "/"), ("y.sub.b.test", "/"), ("b.test", "/"), ("c.test", "/"), ("z.c.test", "/"),
    ("www.d.org", "/"), ("www.d", "/"), ("foo.e.test", "/"), ("unknown.test", "/"), (None, "/"),
]


def test_server_and_location_selection_matches_nginx(tmp_path, procs):
    nginx = need_peer("nginx")
    p1, p2 = free_port(), free_port()
    text = _config(p1, p2)
    d = tmp_path
    (d / "logs").mkdir()
    temp = "".join(f"    {n}_temp_path {d}/{n};\n" for n in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (d / "nginx.conf").write_text(
        f"pid {d}/nginx.pid;\nerror_log {d}/logs/error.log;\nevents {{ worker_connections 64; }}\n"
        f"http {{\n    access_log off;\n{temp}    include {d}/site.conf;\n}}\n")
    (d / "site.conf").write_text(text)
    proc = procs([nginx, "-p", f"{d}/", "-c", f"{d}/nginx.conf", "-e", f"{d}/logs/error.log",
                  "-g", "daemon off; master_process off;"])
    wait_for_port(p1, proc=proc.p)
    wait_for_port(p2, proc=proc.p)
    cfg, _ = load_nginx_text(text, "site.conf", prefix=str(d))
    sid = {id(s): ("S1" if i == 0 else NAMES[i - 1][0] if i <= len(NAMES) else ("W1", "W2")[i - len(NAMES) - 1])
           for i, s in enumerate(cfg.http.servers)}
    probes = [(p1, h, u) for h, u in PROBES] + [(p2, "w.test", "/"), (p2, "other.test", "/")]
    mismatches = []
    for port, host, uri in probes:
        status, body, xsrv = _ask(port, host, uri)
        got = body if status == 200 else f"{xsrv} none {status}"
        srv = find_server(cfg, f"127.0.0.1:{port}", host)
        loc = find_location(srv, uri)
        want = f"{sid[id(srv)]} {_label(loc.name)}" if loc is not None else f"{sid[id(srv)]} none 404"
        if got != want:
            mismatches.append((host, uri, got, want))
    assert mismatches == []
