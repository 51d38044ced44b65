"""Keep-alive clients across repeated reloads of `pyfront serve`: zero failed requests.

nginx closes idle keep-alive connections when old workers exit, so a request racing the
FIN fails (nginx/nginx#437; ~550 read errors per 20 s of wrk under reloads every 2 s).
pyfront's old workers answer each connection's next request with `Connection: close`
and keep idle ones open until their keepalive timeout or the drain deadline."""
from __future__ import annotations

import http.client
import os
import signal
import threading
import time

from tests.conftest import free_port, pyfront_cmd, wait_for_port


def test_reloads_under_keepalive_load_drop_nothing(tmp_path, procs):
    root = tmp_path / "root"
    root.mkdir()
    (root / "a.txt").write_bytes(b"x" * 1024)
    port = free_port()
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "site.conf").write_text(
        "access_log off;\nserver {\n listen 127.0.0.1:%d;\n server_name localhost;\n root %s;\n}\n" % (port, root))
    p = procs(pyfront_cmd("serve", str(conf)))
    wait_for_port(port, proc=p.p)

    stop = threading.Event()
    ok, failures = [0], []

    def client():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while not stop.is_set():
            try:
                c.request("GET", "/a.txt")
                r = c.getresponse()
                body = r.read()
                if r.status != 200 or len(body) != 1024:
                    failures.append(f"status {r.status} len {len(body)}")
                ok[0] += 1
                if r.getheader("connection", "").lower() == "close":
                    c.close()
            except Exception as e:          # noqa: BLE001 - every client-visible error counts
                failures.append(repr(e))
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    try:
        for _ in range(5):                 # bounded: five reloads
            time.sleep(0.6)
            os.kill(p.pid, signal.SIGHUP)
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join(20)
    assert ok[0] > 100
    assert failures == []
