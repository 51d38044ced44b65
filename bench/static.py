"""Static files: pyfront vs real nginx (stock, and tuned with open_file_cache), one pinned worker.

Scenarios (issue 2): 1 KiB file over 64 keep-alive connections, 1 MiB file over 16,
10,000 idle keep-alive connections (worker RSS per connection), and errors seen by wrk
across a reload every 2 s. The same nginx.conf drives every contender.
Writes bench/results/static.md.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (ROOT, Server, free_port, machine_line, median, need, rss_kib,  # noqa: E402
                    write_table, wrk)

CONF = """worker_processes 1;
pid {run}/{name}.pid;
error_log {run}/{name}-error.log;
worker_rlimit_nofile 30000;
events {{ worker_connections 20000; }}
http {{
    include mime.types;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    access_log off;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    {extra}
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        root {docroot};
    }}
}}
"""


def make_tree(base: str) -> str:
    os.chmod(base, 0o755)  # nginx workers run as nobody when started as root
    docroot = os.path.join(base, "www")
    os.makedirs(docroot)
    with open(os.path.join(docroot, "1k.txt"), "wb") as f:
        f.write(b"x" * 1023 + b"\n")
    with open(os.path.join(docroot, "1m.bin"), "wb") as f:
        f.write(os.urandom(1 << 20))
    return docroot


def write_conf(base: str, name: str, port: int, docroot: str, extra: str = "") -> str:
    d = os.path.join(base, name)
    os.makedirs(d, exist_ok=True)
    shutil.copy("/etc/nginx/mime.types", os.path.join(d, "mime.types"))
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(CONF.format(run=base, name=name, port=port, docroot=docroot, extra=extra))
    return d


def start(kind: str, base: str, docroot: str) -> Server:
    port = free_port()
    if kind == "pyfront":
        d = write_conf(base, kind, port, docroot)
        return Server(kind, [os.path.join(ROOT, ".venv", "bin", "pyfront"), "serve", d], port)
    extra = "open_file_cache max=1000;" if kind == "nginx-tuned" else ""
    d = write_conf(base, kind, port, docroot, extra)
    return Server(kind, [need("nginx"), "-p", d, "-c", os.path.join(d, "nginx.conf"), "-e",
                         os.path.join(base, f"{kind}-stderr.log"), "-g", "daemon off;"], port)


def idle_rss_per_conn(server: Server, n: int) -> tuple[float, int]:
    """(KiB of worker RSS per idle keep-alive connection, worker RSS KiB with them open).

    Both figures, because a server that preallocates its connection slots shows ~0 growth
    while its base RSS is what the memory actually costs."""
    worker = server.worker_pids()[0]
    req = f"GET /1k.txt HTTP/1.1\r\nHost: b\r\n\r\n".encode()
    warm = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(100)]
    for s in warm:
        s.sendall(req)
        s.recv(4096)
    before = rss_kib(worker)
    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", server.port))
            s.sendall(req)
            socks.append(s)
        for s in socks:
            got = b""
            while b"\n\n" not in got.replace(b"\r", b"") or len(got) < 1100:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        time.sleep(0.5)
        after = rss_kib(worker)
    finally:
        for s in socks + warm:
            s.close()
    return (after - before) / n, after


def reload_errors(server: Server, seconds: int, every: float) -> tuple[int, int]:
    """wrk errors while the master gets SIGHUP every `every` s; returns (errors, reloads)."""
    stop = threading.Event()
    reloads = 0

    def hup():
        nonlocal reloads
        while not stop.wait(every):
            os.kill(server.proc.pid, signal.SIGHUP)
            reloads += 1

    t = threading.Thread(target=hup)
    t.start()
    try:
        r = wrk(f"http://127.0.0.1:{server.port}/1k.txt", 64, seconds)
    finally:
        stop.set()
        t.join()
    return r.errors, reloads


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--idle", type=int, default=10000)
    ap.add_argument("--reload-seconds", type=int, default=20)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "static.md"))
    args = ap.parse_args()
    kinds = ["nginx", "nginx-tuned", "pyfront"]
    small = {k: [] for k in kinds}
    big = {k: [] for k in kinds}
    big_bw = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory(prefix="pf-bench-") as base:
        docroot = make_tree(base)
        for rnd in range(args.rounds):
            for kind in kinds:           # alternate contenders inside each round
                srv = start(kind, base, docroot)
                try:
                    r = wrk(f"http://127.0.0.1:{srv.port}/1k.txt", 64, args.duration)
                    small[kind].append(r.requests_per_s)
                    r = wrk(f"http://127.0.0.1:{srv.port}/1m.bin", 16, args.duration)
                    big[kind].append(r.requests_per_s)
                    big_bw[kind].append(r.transfer_per_s)
                finally:
                    srv.stop()
                print(f"round {rnd} {kind}: 1k {small[kind][-1]:.0f} req/s, 1m {big[kind][-1]:.0f} req/s", flush=True)
        idle = {}
        errs = {}
        for kind in ("nginx", "pyfront"):
            srv = start(kind, base, docroot)
            try:
                idle[kind] = idle_rss_per_conn(srv, args.idle)
                errs[kind] = reload_errors(srv, args.reload_seconds, 2.0)
            finally:
                srv.stop()
    tuned = "nginx-tuned"
    rows = []
    for kind in kinds:
        rows.append([kind, f"{median(small[kind]):,.0f}", f"{median(small[kind]) / median(small[tuned]):.2f}",
                     f"{median(big[kind]):,.0f}", f"{median(big_bw[kind]) / 1e9:.2f}",
                     f"{median(big[kind]) / median(big[tuned]):.2f}",
                     f"{idle[kind][0]:.2f}" if kind in idle else "—",
                     f"{idle[kind][1] / 1024:.1f}" if kind in idle else "—",
                     f"{errs[kind][0]} in {errs[kind][1]} reloads" if kind in errs else "—"])
    write_table(args.out, "Static files: pyfront vs nginx",
                f"{machine_line()}. One worker each, {args.rounds} alternating rounds of {args.duration} s, medians. "
                f"Ratios are against nginx with `open_file_cache max=1000`. Idle: growth of worker RSS per idle "
                f"keep-alive connection over {args.idle} connections, and the worker's whole RSS with them open. Reload errors: wrk socket errors + non-2xx "
                f"over {args.reload_seconds} s with SIGHUP every 2 s. Produced by `bench/static.py`.",
                ["server", "1 KiB req/s (64 conns)", "× tuned", "1 MiB req/s (16 conns)", "1 MiB GB/s", "× tuned",
                 "idle KiB/conn", "worker RSS MiB (10k idle)", "reload errors"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
