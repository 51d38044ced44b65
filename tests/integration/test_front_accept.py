"""Accepting with two workers: accept_mutex on (shared lock), off (EPOLLEXCLUSIVE), and
`listen ... reuseport` (a socket per worker). Every connection is served."""
from __future__ import annotations

import os
import signal
import time

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


def _children(pid):
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        kids.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return kids


def test_accept_mutex_survives_a_killed_holder(tmp_path, procs):
    """SIGKILL both workers (one holds the accept mutex in its epoll wait): the lock word
    names a dead pid, the replacements free it and serve."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "a.txt").write_bytes(b"ok\n")
    port = free_port()
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "nginx.conf").write_text(
        "worker_processes 2;\npid %s/pf.pid;\nevents { accept_mutex on; }\n"
        "http {\n access_log off;\n server {\n  listen 127.0.0.1:%d;\n  root %s;\n }\n}\n" % (tmp_path, port, root))
    p = procs(pyfront_cmd("serve", str(conf)))
    wait_for_port(port, proc=p.p)
    deadline = time.monotonic() + 10
    while len(_children(p.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    old = _children(p.pid)
    for pid in old:
        os.kill(pid, signal.SIGKILL)
    for i in range(30):
        r = request(port, "GET", "/a.txt")
        assert r.status == 200
    assert not set(old) & set(_children(p.pid))
