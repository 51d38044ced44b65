"""WSGI app servers: pyfront app vs bjoern, granian, uWSGI and gunicorn, one worker each.

(a) hello world directly over HTTP keep-alive (wrk -c 32);
(b) hello world behind a real nginx over a unix socket (uwsgi protocol): pyfront app vs uWSGI.
Servers are pinned to CPU 0 (nginx too, in (b)), wrk to CPU 1; contenders alternate round
by round and the medians are reported, with each server's CPU time per request (utime +
stime of its processes / requests), which is less sensitive to a busy machine than req/s.
Missing contenders are skipped with a note (pip install granian gunicorn bjoern-binary).
Writes bench/results/app.md.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (ROOT, SERVER_CPU, free_port, machine_line, median, need, pinned,  # noqa: E402
                    wait_port, write_table, wrk)

HELLO = '''
def application(environ, start_response):
    body = b"Hello, World!"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
PY = os.path.join(VENV_BIN, "python")


def have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def tree_cpu(pid: int) -> float:
    """CPU seconds of pid and its children (still running)."""
    total = 0.0
    tck = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        pids.append(int(name))
            except (OSError, ValueError, IndexError):
                pass
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tck
        except (OSError, ValueError, IndexError):
            pass
    return total


class Proc:
    def __init__(self, argv, cwd, port=None, unix=None):
        self.p = subprocess.Popen(pinned(argv, SERVER_CPU), cwd=cwd, start_new_session=True,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if port:
            wait_port(port)
        if unix:
            end = time.monotonic() + 15
            while not os.path.exists(unix) and time.monotonic() < end:
                time.sleep(0.05)
        time.sleep(1.0)   # let every worker finish loading the app

    def stop(self):
        import signal
        if self.p.poll() is None:
            os.kill(self.p.pid, signal.SIGINT)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait(5)


def direct_argv(kind: str, port: int) -> list[str] | None:
    addr = f"127.0.0.1:{port}"
    if kind == "pyfront":
        return [PY, "-m", "pyfront", "app", "--http-socket", addr, "--wsgi-file", "hello.py", "--disable-logging"]
    if kind == "bjoern" and have("bjoern"):
        return [PY, "-c", f"import bjoern, hello; bjoern.run(hello.application, '127.0.0.1', {port})"]
    if kind == "granian" and have("granian"):
        return [os.path.join(VENV_BIN, "granian"), "--interface", "wsgi", "--host", "127.0.0.1", "--port",
                str(port), "--workers", "1", "--no-log", "hello:application"]
    if kind == "uwsgi" and shutil.which("uwsgi", path=VENV_BIN):
        # --http11-socket is uWSGI's keep-alive HTTP socket (--http-keepalive only applies to
        # the --http router): with --http-socket every wrk request needs a new connection.
        return [os.path.join(VENV_BIN, "uwsgi"), "--http11-socket", addr, "--wsgi-file", "hello.py",
                "--disable-logging", "--master", "--processes", "1"]
    if kind.startswith("gunicorn") and have("gunicorn"):
        extra = ["-k", "gthread", "--threads", "4"] if kind == "gunicorn-gthread" else []
        return [os.path.join(VENV_BIN, "gunicorn"), "-w", "1", *extra, "-b", addr, "hello:application"]
    return None


NGINX_CONF = """worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        location / {{ include {params}; uwsgi_pass unix:{sock}; }}
    }}
}}
"""


def run_nginx(base: str, kind: str, sock: str) -> tuple[Proc, int]:
    d = os.path.join(base, f"nginx-{kind}")
    os.makedirs(d, exist_ok=True)
    port = free_port()
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        user = "user root;\n" if os.geteuid() == 0 else ""
        f.write(user + NGINX_CONF.format(d=d, port=port, sock=sock, params="/etc/nginx/uwsgi_params"))
    return Proc([need("nginx"), "-p", d, "-c", os.path.join(d, "nginx.conf"), "-e", os.path.join(d, "stderr.log")],
                base, port=port), port


BEHIND = {   # (b) contenders: the defaults, then each with the other's scheduling policy
    "pyfront": "nginx + pyfront (default: sched-batch)",
    "uwsgi": "nginx + uWSGI (default)",
    "pyfront-other": "nginx + pyfront, sched-batch = false",
    "uwsgi-batch": "nginx + uWSGI under chrt -b (SCHED_BATCH)",
}


def behind_argv(kind: str, sock: str) -> list[str] | None:
    if kind.startswith("pyfront"):
        return [PY, "-m", "pyfront", "app", "--socket", sock, "--wsgi-file", "hello.py", "--disable-logging",
                *(["--sched-batch=false"] if kind == "pyfront-other" else [])]
    if kind.startswith("uwsgi") and shutil.which("uwsgi", path=VENV_BIN):
        return [*(["chrt", "-b", "0"] if kind == "uwsgi-batch" else []), os.path.join(VENV_BIN, "uwsgi"),
                "--socket", sock, "--wsgi-file", "hello.py", "--disable-logging", "--master", "--processes", "1"]
    return None


def measure(proc: Proc, url: str, conns: int, seconds: int, extra_pid: int | None = None):
    c0 = tree_cpu(proc.p.pid)
    r = wrk(url, conns, seconds)
    c1 = tree_cpu(proc.p.pid)
    reqs = r.requests_per_s * seconds
    return r.requests_per_s, (c1 - c0) / reqs * 1e6 if reqs else float("nan"), r.errors, r.p99_ms


PROFILE_MARK = "## Where the time goes"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--only-b", action="store_true", help="run table (b) only and print it (results file untouched)")
    args = ap.parse_args()
    need("wrk")
    base = tempfile.mkdtemp(prefix="pyfront-bench-app-")
    with open(os.path.join(base, "hello.py"), "w") as f:
        f.write(HELLO)
    direct = [] if args.only_b else ["pyfront", "bjoern", "granian", "uwsgi", "gunicorn-sync", "gunicorn-gthread"]
    results: dict[str, list[tuple[float, float, int]]] = {k: [] for k in direct}
    behind: dict[str, list] = {k: [] for k in BEHIND}
    skipped = []
    for rnd in range(args.rounds):
        for kind in direct:
            port = free_port()
            argv = direct_argv(kind, port)
            if argv is None:
                if rnd == 0:
                    skipped.append(kind)
                continue
            p = Proc(argv, base, port=port)
            try:
                results[kind].append(measure(p, f"http://127.0.0.1:{port}/", args.conns, args.seconds))
            finally:
                p.stop()
        for kind in behind:
            sock = os.path.join(base, f"{kind}.sock")
            if os.path.exists(sock):
                os.unlink(sock)
            argv = behind_argv(kind, sock)
            if argv is None:
                continue
            app = Proc(argv, base, unix=sock)
            os.chmod(sock, 0o666)
            ngx, port = run_nginx(base, kind, sock)
            try:
                behind[kind].append(measure(app, f"http://127.0.0.1:{port}/", args.conns, args.seconds))
            finally:
                ngx.stop()
                app.stop()
    rows = []
    ref = {k: median([r[0] for r in v]) for k, v in results.items() if v}
    for kind, v in results.items():
        if not v:
            continue
        rps = median([r[0] for r in v])
        rows.append([kind, f"{rps:,.0f}", f"{median([r[1] for r in v]):.1f}", str(sum(r[2] for r in v)),
                     f"{ref['pyfront'] / rps:.2f}×" if kind != "pyfront" else "1.00×"])
    rows_b = []
    for kind, v in behind.items():
        if not v:
            continue
        rps = median([r[0] for r in v])
        rows_b.append([BEHIND[kind], f"{rps:,.0f}", f"{median([r[3] for r in v]):.2f}",
                       f"{median([r[1] for r in v]):.1f}", str(sum(r[2] for r in v)),
                       f"{median([r[0] for r in behind['pyfront']]) / rps:.2f}×" if behind["pyfront"] else "-"])
    if args.only_b:
        for r in rows_b:
            print("| " + " | ".join(r) + " |")
        shutil.rmtree(base, ignore_errors=True)
        return 0
    out = os.path.join(ROOT, "bench", "results", "app.md")
    keep = ""      # the hand-written profile section survives a re-run (made with app_cost.py)
    if os.path.exists(out):
        text = open(out).read()
        if PROFILE_MARK in text:
            keep = text[text.index(PROFILE_MARK):]
    intro = (f"{machine_line()} · {args.rounds} alternating rounds × {args.seconds}s, wrk -c {args.conns} "
             f"keep-alive · one worker process, one thread each (gunicorn gthread: 4 threads) · "
             f"CPU µs/req = server processes' utime+stime ÷ requests (nginx's own CPU not included in (b)) · "
             f"ratio = pyfront req/s ÷ contender req/s" + (f" · not installed: {', '.join(skipped)}" if skipped else ""))
    write_table(out, "WSGI app servers: hello world", intro + "\n\n## (a) HTTP keep-alive, direct",
                ["server", "req/s (median)", "CPU µs/req", "errors", "pyfront ÷ this"], rows)
    with open(out, "a") as f:
        f.write("\n## (b) behind nginx, uwsgi protocol over a unix socket\n\n"
                "| stack | req/s (median) | p99 ms | app CPU µs/req | errors | pyfront ÷ this |\n"
                "|---|---|---|---|---|---|\n")
        for r in rows_b:
            f.write("| " + " | ".join(r) + " |\n")
        load = os.getloadavg()
        f.write(f"\nLoad average at the end of the run: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} "
                f"({os.cpu_count()} CPUs). errors = wrk socket errors + non-2xx responses. Every server "
                f"runs without a per-request log (pyfront and uWSGI --disable-logging, granian --no-log; "
                f"bjoern and gunicorn log nothing by default). uWSGI's HTTP row uses --http11-socket, its "
                f"keep-alive socket: one sync worker serves one connection at a time there.\n")
        if keep:
            f.write("\n" + keep)
    print(open(out).read())
    shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
