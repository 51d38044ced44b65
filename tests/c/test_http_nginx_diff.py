"""The real nginx against the request corpus: each case's `nginx` field records the statuses
nginx answers to the same bytes; this test keeps that record honest, so the documented
differences (docs/http-parser.md) are facts about nginx, not guesses."""
import json
import os
import socket

import pytest

from tests.c.http_support import NEED_MORE, parse_response
from tests.c.test_http_parser import CORPUS, cases, load
from tests.conftest import free_port, need_peer, wait_for_port

CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {d}/cbt; proxy_temp_path {d}/pt; fastcgi_temp_path {d}/ft;
  uwsgi_temp_path {d}/ut; scgi_temp_path {d}/st;
  server {{ listen 127.0.0.1:{port}; location / {{ return 200 "ok\\n"; }} }}
}}
"""


def statuses(port: int, raw: bytes) -> list[int]:
    """Sends raw bytes, half-closes, and returns the status of every response nginx sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(raw)
        s.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            data += chunk
    out = []
    if data and not data.startswith(b"HTTP/"):
        return [9]                     # nginx answered as HTTP/0.9: a bare body, recorded as 9
    while data:
        rc, resp, why = parse_response(data)
        assert rc > 0, (rc, why, data[:200])
        if resp["status"] < 200:       # interim (100 Continue): not an answer
            data = data[rc:]
            continue
        out.append(resp["status"])
        assert resp["body_kind"] == "length"
        data = data[rc + resp["content_length"]:]
    return out


@pytest.fixture(scope="module")
def nginx_port(tmp_path_factory):
    nginx = need_peer("nginx")
    d = tmp_path_factory.mktemp("nginx")
    port = free_port()
    (d / "nginx.conf").write_text(CONF.format(d=d, port=port))
    import subprocess
    p = subprocess.Popen([nginx, "-p", str(d), "-c", str(d / "nginx.conf")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(port, proc=p)
        yield port
    finally:
        p.terminate()
        p.wait(10)


RECORDED = [c for c in cases("valid") + cases("invalid") if "nginx" in load(c.values[0])[1]]


@pytest.mark.peer
@pytest.mark.parametrize("path", RECORDED)
def test_nginx_answers_as_recorded(nginx_port, path):
    raw, exp = load(path)
    if exp.get("limits"):
        pytest.skip("case uses limits smaller than nginx's buffers")
    assert statuses(nginx_port, raw) == exp["nginx"]


def record(port: int) -> None:   # pragma: no cover - run by hand to refresh the `nginx` fields
    for c in cases("valid") + cases("invalid"):
        path = c.values[0]
        raw, exp = load(path)
        if exp.get("limits"):
            continue
        exp["nginx"] = statuses(port, raw)
        with open(path[:-5] + ".json", "w", encoding="utf-8") as f:
            json.dump(exp, f, indent=1, ensure_ascii=False)
            f.write("\n")
