"""Instructions per request of one app worker, under valgrind's callgrind.

Wall-clock figures on a shared 2-core machine wander by ±30 %; instruction counts do
not. This runs `pyfront app` (or uWSGI, bjoern) under callgrind, drives exactly N1 and
then, in a second run, N2 hello-world requests with a small exact-count client, and
reports (Ir(N2) - Ir(N1)) / (N2 - N1) for the worker process — user space only (the
kernel's share is what `CPU µs/req` in app.py adds). With --top, the per-function
self cost per request is printed (the same difference, function by function).

    python bench/app_cost.py http            # pyfront --http-socket, keep-alive, 32 connections
    python bench/app_cost.py uwsgi           # pyfront --socket (unix), nginx-like uwsgi packets
    python bench/app_cost.py http --server bjoern|uwsgi --top 30

Bounded: every run sends a fixed number of requests and stops the server by pid.
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from app import HELLO, PY, VENV_BIN  # noqa: E402
from common import free_port  # noqa: E402

HTTP_REQ = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"   # what wrk sends


def uwsgi_packet(remote_port: int = 50312) -> bytes:
    """The vars nginx 1.22 sends for wrk's GET / with Debian's uwsgi_params (REMOTE_PORT is
    the client's port: it changes from one wrk connection to the next)."""
    pairs = [("QUERY_STRING", ""), ("REQUEST_METHOD", "GET"), ("CONTENT_TYPE", ""), ("CONTENT_LENGTH", ""),
             ("REQUEST_URI", "/"), ("PATH_INFO", "/"), ("DOCUMENT_ROOT", "/usr/share/nginx/html"),
             ("SERVER_PROTOCOL", "HTTP/1.1"), ("REQUEST_SCHEME", "http"), ("REMOTE_ADDR", "127.0.0.1"),
             ("REMOTE_PORT", str(remote_port)), ("SERVER_PORT", "8080"), ("SERVER_NAME", ""),
             ("HTTP_HOST", "127.0.0.1")]
    body = b"".join(struct.pack("<H", len(k)) + k.encode() + struct.pack("<H", len(v)) + v.encode()
                    for k, v in pairs)
    return struct.pack("<BHB", 0, len(body), 0) + body


def drive_http(port: int, n: int, conns: int = 32) -> None:
    """Exactly n keep-alive requests over `conns` connections, one in flight per connection."""
    sel = selectors.DefaultSelector()
    resp_len = None
    sent = done = 0
    socks = []
    for _ in range(min(conns, n)):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        socks.append(s)
        s.sendall(HTTP_REQ)
        sent += 1
        sel.register(s, selectors.EVENT_READ, bytearray())
    deadline = time.monotonic() + 600
    while done < n and time.monotonic() < deadline:
        for key, _ in sel.select(5):
            s, buf = key.fileobj, key.data
            chunk = s.recv(65536)
            if not chunk:
                raise SystemExit("server closed a keep-alive connection")
            buf += chunk
            if resp_len is None:
                end = buf.find(b"\r\n\r\n")
                m = re.search(rb"(?i)content-length: *(\d+)", bytes(buf[:end]))
                if end < 0 or not m:
                    continue
                resp_len = end + 4 + int(m.group(1))
            while len(buf) >= resp_len:
                del buf[:resp_len]
                done += 1
                if sent < n:
                    s.sendall(HTTP_REQ)
                    sent += 1
    for s in socks:
        s.close()
    if done < n:
        raise SystemExit(f"only {done} of {n} responses")


def drive_uwsgi(path: str, n: int, conc: int = 8) -> None:
    """Exactly n uwsgi requests (one per connection, as nginx does), `conc` at a time; the
    client port cycles through 32 values as wrk -c 32's connections would."""
    pkts = [uwsgi_packet(50312 + i) for i in range(32)]
    sel = selectors.DefaultSelector()
    sent = done = 0

    def start():
        nonlocal sent
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        s.sendall(pkts[sent % 32])
        sent += 1
        sel.register(s, selectors.EVENT_READ, bytearray())

    for _ in range(min(conc, n)):
        start()
    deadline = time.monotonic() + 600
    while done < n and time.monotonic() < deadline:
        for key, _ in sel.select(5):
            s, buf = key.fileobj, key.data
            chunk = s.recv(65536)
            if chunk:
                buf += chunk
                continue
            sel.unregister(s)
            s.close()
            if not buf.startswith(b"HTTP/1.1 200"):
                raise SystemExit(f"bad response {bytes(buf[:80])!r}")
            done += 1
            if sent < n:
                start()
    if done < n:
        raise SystemExit(f"only {done} of {n} responses")


LOG = False      # --log: keep the per-request log line (stderr, discarded)


def server_argv(server: str, mode: str, addr: str) -> list[str]:
    if server == "pyfront":
        flag = "--http-socket" if mode == "http" else "--socket"
        return [PY, "-m", "pyfront", "app", flag, addr, "--wsgi-file", "hello.py",
                *([] if LOG else ["--disable-logging"])]
    if server == "uwsgi":
        flag = "--http-socket" if mode == "http" else "--socket"
        extra = ["--http-keepalive"] if mode == "http" else []
        return [os.path.join(VENV_BIN, "uwsgi"), flag, addr, "--wsgi-file", "hello.py", "--disable-logging",
                "--master", "--processes", "1", *extra]
    if server == "bjoern" and mode == "http":
        host, port = addr.rsplit(":", 1)
        return [PY, "-c", f"import bjoern, hello; bjoern.run(hello.application, '{host}', {port})"]
    raise SystemExit(f"no {mode} mode for {server}")


def one_run(server: str, mode: str, n: int, base: str, tag: str) -> list[str]:
    """Run the server under callgrind for n requests; every process's callgrind file, in pid order."""
    outdir = os.path.join(base, tag)
    os.makedirs(outdir)
    if mode == "http":
        port = free_port()
        addr = f"127.0.0.1:{port}"
    else:
        addr = os.path.join(base, f"{tag}.sock")
    argv = ["valgrind", "--tool=callgrind", "--trace-children=yes", "--dump-instr=no",
            f"--callgrind-out-file={outdir}/cg.%p", *server_argv(server, mode, addr)]
    p = subprocess.Popen(argv, cwd=base, start_new_session=True, stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(outdir, "stderr"), "w"))
    try:
        end = time.monotonic() + 300
        while time.monotonic() < end:
            try:
                if mode == "http":
                    socket.create_connection(("127.0.0.1", port), 1).close()
                else:
                    c = socket.socket(socket.AF_UNIX)
                    c.connect(addr)
                    c.close()
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise SystemExit(f"{server} did not start; see {outdir}/stderr")
        time.sleep(3)     # every worker has loaded the app (probe connections are harmless)
        (drive_http if mode == "http" else drive_uwsgi)(port if mode == "http" else addr, n)
    finally:
        os.kill(p.pid, signal.SIGINT)
        try:
            p.wait(120)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)
    return sorted(glob.glob(os.path.join(outdir, "cg.*")), key=lambda f: int(f.rsplit(".", 1)[1]))


def worker_files(run1: list[str], run2: list[str]) -> tuple[str, str]:
    """The worker's file in each run: the process (same fork position in both runs) whose
    count grew the most with the number of requests. Not "the busiest process": after a
    short run a master that imported as much can have executed more than its worker."""
    if len(run1) != len(run2):
        raise SystemExit(f"the two runs forked differently ({len(run1)} vs {len(run2)} processes)")
    i = max(range(len(run1)), key=lambda i: total_ir(run2[i]) - total_ir(run1[i]))
    return run1[i], run2[i]


def total_ir(path: str) -> int:
    with open(path) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    return 0


def by_function(path: str) -> dict[str, int]:
    out = subprocess.run(["callgrind_annotate", "--threshold=100", "--inclusive=no", path],
                         capture_output=True, text=True).stdout
    res: dict[str, int] = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*)$", line)
        if m and ":" in m.group(2) and not m.group(2).startswith("=>"):
            name = re.sub(r"^/tmp/python-build[^/]*/Python-[\d.]+/", "", m.group(2).split(" [")[0])
            name = re.sub(r"'\d+$", "", name)
            res[name] = res.get(name, 0) + int(m.group(1).replace(",", ""))
    return res


CATEGORIES = [   # (label, test on the "file:function" name), first match wins
    ("pyfront C (parse, environ, head, loop)", lambda k: "src/c/" in k),
    ("cffi calls (argument conversion, cdata)", lambda k: k.startswith("???:")),
    ("GIL release/take around C calls", lambda k: "ceval_gil" in k or "nptl" in k or "PyEval_SaveThread" in k
     or "PyEval_RestoreThread" in k),
    ("bytecode interpreter (ceval)", lambda k: "Python/ceval.c" in k),
    ("str: decode, split, join, hash", lambda k: "unicodeobject" in k or "stringlib" in k or "pyhash" in k
     or "unicode" in k),
    ("dict: copy, update, lookups", lambda k: "dictobject" in k),
    ("allocation and refcounting", lambda k: "obmalloc" in k or "Objects/object.c" in k or "pycore_object" in k
     or "gcmodule" in k),
    ("calls, frames, tuples, lists, ints", lambda k: any(x in k for x in ("call.c", "frame.c", "tupleobject",
                                                                           "listobject", "longobject", "classobject",
                                                                           "typeobject", "getargs", "bltinmodule",
                                                                           "methodobject", "descrobject",
                                                                           "pystate", "Include/"))),
    ("libc (memcpy, memchr, syscall wrappers)", lambda k: k.startswith("./")),
]


def categorize(diff: dict[str, float]) -> list[tuple[str, float]]:
    out = {label: 0.0 for label, _ in CATEGORIES}
    out["other"] = 0.0
    for k, v in diff.items():
        for label, test in CATEGORIES:
            if test(k):
                out[label] += v
                break
        else:
            out["other"] += v
    return sorted(out.items(), key=lambda kv: -kv[1])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["http", "uwsgi"])
    ap.add_argument("--server", default="pyfront", choices=["pyfront", "uwsgi", "bjoern"])
    ap.add_argument("--n1", type=int, default=500)
    ap.add_argument("--n2", type=int, default=3500)
    ap.add_argument("--top", type=int, default=0, help="print the N costliest functions per request")
    ap.add_argument("--keep", action="store_true", help="keep the callgrind files")
    ap.add_argument("--categories", action="store_true", help="per-request instructions by kind of work")
    ap.add_argument("--log", action="store_true", help="pyfront with its request log on (uWSGI's line per request)")
    args = ap.parse_args()
    global LOG
    LOG = args.log
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed")
    base = tempfile.mkdtemp(prefix="pyfront-cost-")
    with open(os.path.join(base, "hello.py"), "w") as f:
        f.write(HELLO)
    f1, f2 = worker_files(one_run(args.server, args.mode, args.n1, base, "n1"),
                          one_run(args.server, args.mode, args.n2, base, "n2"))
    per = (total_ir(f2) - total_ir(f1)) / (args.n2 - args.n1)
    print(f"{args.server} {args.mode}: {per:,.0f} instructions per request (worker, user space)")
    if args.top or args.categories:
        a, b = by_function(f1), by_function(f2)
        diff = {k: (b.get(k, 0) - a.get(k, 0)) / (args.n2 - args.n1) for k in set(a) | set(b)}
        for k, v in sorted(diff.items(), key=lambda kv: -kv[1])[:args.top]:
            print(f"{v:10,.0f}  {v / per * 100:5.1f}%  {k}")
        if args.categories:
            for label, v in categorize(diff):
                print(f"{v:10,.0f}  {v / per * 100:5.1f}%  {label}")
    if args.keep:
        print(f"callgrind files: {f1} {f2}")
    else:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
