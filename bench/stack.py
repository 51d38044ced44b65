"""Full stack: pyfront serve (front + app, one worker each) vs real nginx + real uWSGI.

The same nginx server block drives both fronts: `location /` passes to a hello-world WSGI
app over a unix socket (uwsgi protocol), `location /static/` serves a 1 KiB file. Every
process of a stack is pinned to CPU 0 (as "both processes pinned to one core"), wrk to
CPU 1; stacks alternate round by round; medians of req/s and p99 at 64 connections.
Writes bench/results/stack.md.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (ROOT, SERVER_CPU, free_port, machine_line, median, need, pinned,  # noqa: E402
                    wait_port, write_table, wrk)

HELLO = '''def application(environ, start_response):
    body = b"Hello, World!"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''
SERVER = """
    server {{
        listen 127.0.0.1:{port};
        location / {{ include {params}; uwsgi_pass unix:{sock}; }}
        location /static/ {{ alias {static}/; }}
    }}
"""
NGINX_MAIN = """worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 4096; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    access_log off;
    keepalive_requests 1000000;
{server}
}}
"""
PYFRONT_MAIN = """worker_processes 1;
pid {d}/pyfront.pid;
error_log {d}/error.log;
events {{ worker_connections 4096; }}
http {{
    include mime.types;
    default_type application/octet-stream;
    sendfile on;
    access_log off;
    keepalive_requests 1000000;
{server}
}}
"""
PYFRONT_APP = """[uwsgi]
socket = {sock}
chdir = {app}
wsgi-file = hello.py
processes = 1
threads = 1
master = true
disable-logging = true
"""


class Stack:
    def __init__(self, name: str, argvs: list[tuple[list[str], str]], port: int):
        self.name, self.port, self.procs = name, port, []
        for argv, cwd in argvs:
            self.procs.append(subprocess.Popen(pinned(argv, SERVER_CPU), cwd=cwd, start_new_session=True,
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(0.5)
        wait_port(port)
        time.sleep(1.0)   # app workers finish loading

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGINT)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)


def start(kind: str, base: str, rnd: int) -> Stack:
    d = os.path.join(base, f"{kind}-{rnd}")
    os.makedirs(d)
    os.chmod(d, 0o755)
    sock = os.path.join(d, "app.sock")
    port = free_port()
    params = "uwsgi_params" if kind == "pyfront" else "/etc/nginx/uwsgi_params"
    server = SERVER.format(port=port, sock=sock, static=os.path.join(base, "static"), params=params)
    app_dir = os.path.join(base, "app")
    if kind == "pyfront":
        conf = os.path.join(d, "conf")
        os.makedirs(conf)
        with open(os.path.join(conf, "nginx.conf"), "w") as f:
            f.write(PYFRONT_MAIN.format(d=d, server=server))
        with open(os.path.join(conf, "app.ini"), "w") as f:
            f.write(PYFRONT_APP.format(sock=sock, app=app_dir))
        return Stack(kind, [([os.path.join(ROOT, ".venv", "bin", "pyfront"), "serve", conf], d)], port)
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(NGINX_MAIN.format(d=d, server=server))
    uwsgi = [os.path.join(ROOT, ".venv", "bin", "uwsgi"), "--socket", sock, "--chmod-socket=666",
             "--wsgi-file", "hello.py", "--processes", "1", "--threads", "1", "--master",
             "--disable-logging", "--die-on-term"]
    nginx = [need("nginx"), "-p", d, "-c", os.path.join(d, "nginx.conf"), "-e", os.path.join(d, "stderr.log"),
             "-g", "daemon off;"]
    return Stack(kind, [(uwsgi, app_dir), (nginx, d)], port)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "stack.md"))
    args = ap.parse_args()
    kinds = ["nginx+uwsgi", "pyfront"]
    res = {k: {"app": [], "app_p99": [], "static": [], "static_p99": [], "errors": 0} for k in kinds}
    with tempfile.TemporaryDirectory(prefix="pf-stack-") as base:
        os.chmod(base, 0o755)
        os.makedirs(os.path.join(base, "app"))
        with open(os.path.join(base, "app", "hello.py"), "w") as f:
            f.write(HELLO)
        os.makedirs(os.path.join(base, "static"))
        with open(os.path.join(base, "static", "1k.txt"), "wb") as f:
            f.write(b"x" * 1023 + b"\n")
        for rnd in range(args.rounds):
            for kind in kinds:
                st = start(kind, base, rnd)
                try:
                    r = wrk(f"http://127.0.0.1:{st.port}/", 64, args.duration)
                    res[kind]["app"].append(r.requests_per_s)
                    res[kind]["app_p99"].append(r.p99_ms)
                    res[kind]["errors"] += r.errors
                    r = wrk(f"http://127.0.0.1:{st.port}/static/1k.txt", 64, args.duration)
                    res[kind]["static"].append(r.requests_per_s)
                    res[kind]["static_p99"].append(r.p99_ms)
                    res[kind]["errors"] += r.errors
                finally:
                    st.stop()
                print(f"round {rnd} {kind}: app {res[kind]['app'][-1]:.0f} req/s, "
                      f"static {res[kind]['static'][-1]:.0f} req/s", flush=True)
    ref = "nginx+uwsgi"
    rows = []
    for kind in kinds:
        r = res[kind]
        rows.append([kind, f"{median(r['app']):,.0f}", f"{median(r['app']) / median(res[ref]['app']):.2f}",
                     f"{median(r['app_p99']):.2f}", f"{median(r['static']):,.0f}",
                     f"{median(r['static']) / median(res[ref]['static']):.2f}", f"{median(r['static_p99']):.2f}",
                     str(r["errors"])])
    write_table(args.out, "Full stack: pyfront serve vs nginx + uWSGI",
                f"{machine_line()}. Every process of a stack pinned to CPU {SERVER_CPU}; one front worker and "
                f"one app worker (one thread) each; hello-world WSGI over a unix socket (uwsgi protocol) and a "
                f"1 KiB static file through the same front; wrk -c 64, {args.rounds} alternating rounds of "
                f"{args.duration} s, medians. Request logging off in both. Produced by `bench/stack.py`.",
                ["stack", "app req/s", "× nginx+uWSGI", "app p99 ms", "static req/s", "× nginx+uWSGI",
                 "static p99 ms", "errors"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
