"""Accepting with two workers: accept_mutex on (shared lock), off (EPOLLEXCLUSIVE), and
`listen ... reuseport` (a socket per worker). Every connection is served."""
from __future__ import annotations

import pytest

from tests.conftest import free_port, pyfront_cmd, wait_for_port
from tests.integration.httpraw import request


@pytest.mark.parametrize("events,listen_opt", [
    ("accept_mutex on; accept_mutex_delay 50ms;", ""),
    ("accept_mutex off;", ""),
    ("", " reuseport"),
])
def test_two_workers_serve_every_connection(tmp_path, procs, events, listen_opt):
    root = tmp_path / "root"
    root.mkdir()
    (root / "a.txt").write_bytes(b"ok\n")
    port = free_port()
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "nginx.conf").write_text(
        "worker_processes 2;\npid %s/pf.pid;\nevents { worker_connections 128; %s }\n"
        "http {\n access_log off;\n server {\n  listen 127.0.0.1:%d%s;\n  root %s;\n }\n}\n"
        % (tmp_path, events, port, listen_opt, root))
    p = procs(pyfront_cmd("serve", str(conf)))
    wait_for_port(port, proc=p.p)
    for i in range(60):                      # a new connection each time
        r = request(port, "GET", "/a.txt")
        assert r.status == 200 and r.body == b"ok\n"
