"""upstream {} with three `pyfront app` servers behind pyfront's front: failover without a
failed GET, weights, backup, ip_hash (issue 4)."""
from __future__ import annotations

import collections
import http.client
import json
import os
import signal
import socket
import time

import pytest

from tests.integration.app_support import children, start_app
from tests.integration.proxy_support import start_pyfront, write_echo


def apps(procs, tmp_path, n=3):
    echo = write_echo(tmp_path)
    out = []
    for i in range(n):
        sock = str(tmp_path / f"app{i}.sock")
        a = start_app(procs, tmp_path, f"socket = {sock}\nwsgi-file = {echo}\nprocesses = 1\nthreads = 4\n",
                      sock, name=f"app{i}.ini", env={"APP_ID": str(i)})
        out.append((sock, a))
    return out


def which(conn, path="/") -> str:
    conn.request("GET", path, headers={"Host": "test.local"})
    r = conn.getresponse()
    body = r.read()
    assert r.status == 200, (r.status, body[:300])
    return json.loads(body)["_app"]


def kill_app(app):
    for pid in children(app.pid) + [app.pid]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    app.proc.p.wait(5)


def test_weights_within_5_percent_over_1000(procs, tmp_path):
    a = apps(procs, tmp_path)
    up = "upstream backend { " + " ".join(f"server unix:{s} weight={w};" for (s, _), w in zip(a, (5, 3, 2))) + " }"
    pf = start_pyfront(procs, tmp_path, "location / { include uwsgi_params; uwsgi_pass backend; }", extra_http=up)
    conn = http.client.HTTPConnection("127.0.0.1", pf.port, timeout=10)
    c = collections.Counter(which(conn) for _ in range(1000))
    for app_id, share in (("0", 0.5), ("1", 0.3), ("2", 0.2)):
        assert abs(c[app_id] / 1000 - share) <= 0.05, c


def test_kill_one_during_a_10s_stream_no_failed_get(procs, tmp_path):
    a = apps(procs, tmp_path)
    up = "upstream backend { " + " ".join(f"server unix:{s};" for s, _ in a) + " }"
    pf = start_pyfront(procs, tmp_path, "location / { include uwsgi_params; uwsgi_pass backend; }", extra_http=up)
    conn = http.client.HTTPConnection("127.0.0.1", pf.port, timeout=10)
    seen = collections.Counter()
    failures = []
    start = time.monotonic()
    killed = False
    n = 0
    while time.monotonic() - start < 10 and n < 20000:        # bounded stream
        n += 1
        if not killed and time.monotonic() - start > 2:
            kill_app(a[1][1])
            killed = True
            after = collections.Counter()
        try:
            got = which(conn, f"/r{n}")
        except Exception as e:  # noqa: BLE001 - any failure is what the test counts
            failures.append(repr(e))
            conn = http.client.HTTPConnection("127.0.0.1", pf.port, timeout=10)
            continue
        seen[got] += 1
        if killed:
            after[got] += 1
    assert killed and failures == []
    assert set(seen) == {"0", "1", "2"}
    assert after["1"] == 0 and after["0"] > 0 and after["2"] > 0
    assert "upstream server temporarily disabled" in pf.error_log() or "connect()" in pf.error_log()


def test_backup_only_when_primaries_are_down(procs, tmp_path):
    a = apps(procs, tmp_path)
    up = (f"upstream backend {{ server unix:{a[0][0]}; server unix:{a[1][0]}; "
          f"server unix:{a[2][0]} backup; }}")
    pf = start_pyfront(procs, tmp_path, "location / { include uwsgi_params; uwsgi_pass backend; }", extra_http=up)
    conn = http.client.HTTPConnection("127.0.0.1", pf.port, timeout=10)
    assert set(which(conn) for _ in range(60)) == {"0", "1"}
    kill_app(a[0][1])
    assert set(which(conn) for _ in range(30)) == {"1"}
    kill_app(a[1][1])
    assert set(which(conn) for _ in range(30)) == {"2"}


def from_source(port, src) -> str:
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(src, 0))
    s.sendall(b"GET / HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n")
    out = b""
    while True:
        c = s.recv(65536)
        if not c:
            break
        out += c
    s.close()
    return json.loads(out.split(b"\r\n\r\n", 1)[1])["_app"]


def test_ip_hash_stable_per_client_network(procs, tmp_path):
    a = apps(procs, tmp_path)
    up = "upstream backend { ip_hash; " + " ".join(f"server unix:{s};" for s, _ in a) + " }"
    pf = start_pyfront(procs, tmp_path, "location / { include uwsgi_params; uwsgi_pass backend; }", extra_http=up)
    mapping = {}
    for net in range(1, 13):
        got = {from_source(pf.port, f"127.{net}.0.{h}") for h in (1, 2, 3)}   # one /24: one server
        assert len(got) == 1, (net, got)
        mapping[net] = got.pop()
    assert len(set(mapping.values())) >= 2                   # different networks spread
    for net in range(1, 13):
        assert from_source(pf.port, f"127.{net}.0.9") == mapping[net]
