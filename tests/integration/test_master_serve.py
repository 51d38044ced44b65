"""`pyfront serve` end to end with the real front worker: process model, signals, pid file,
`pyfront signal`, and the bundled example."""
import http.client
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from tests.conftest import free_port, pyfront_cmd, wait_for_port
from tests.integration.test_master_process import alive, children, title, wait_until


BIG = 48 << 20


def write_conf(d, port, workers=2, extra_main="", server_extra="", listen_extra=""):
    d.mkdir(exist_ok=True)
    html = d / "html"
    html.mkdir(exist_ok=True)
    (html / "index.html").write_text("<h1>v1</h1>\n")
    (html / "a.txt").write_text("A\n")
    if not (html / "big.bin").exists():
        with open(html / "big.bin", "wb") as f:
            f.truncate(BIG)
    (d / "nginx.conf").write_text(f"""
worker_processes {workers};
pid run/test.pid;
error_log logs/error.log info;
{extra_main}
events {{ worker_connections 256; }}
http {{
    include mime.types;
    default_type application/octet-stream;
    access_log logs/access.log main;
    server {{
        listen 127.0.0.1:{port}{listen_extra};
        root html;
        {server_extra}
    }}
}}
""")
    return d


class Serve:
    def __init__(self, procs, conf, port):
        self.conf, self.port = conf, port
        self.proc = procs(pyfront_cmd("serve", str(conf)))
        self.pid = self.proc.pid
        wait_for_port(port, proc=self.proc.p)
        wait_until(lambda: os.path.exists(conf / "run" / "test.pid"), what="pid file")

    def workers(self):
        return [p for p in children(self.pid) if title(p).startswith("pyfront: worker process")]

    def log(self):
        try:
            return (self.conf / "logs" / "error.log").read_text()
        except OSError:
            return ""


def get(port, path="/index.html", timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


@pytest.fixture
def serve(tmp_path, procs):
    def start(**kw):
        port = free_port()
        conf = write_conf(tmp_path / "conf", port, **kw)
        return Serve(procs, conf, port)
    return start


def test_worker_processes_and_titles(serve):
    s = serve(workers=2)
    ws = wait_until(lambda: len(s.workers()) == 2 and s.workers(), what="2 workers")
    assert len(ws) == 2
    assert title(s.pid) == f"pyfront: master process pyfront serve {s.conf}"
    assert (s.conf / "run" / "test.pid").read_text() == f"{s.pid}\n"
    assert get(s.port) == (200, b"<h1>v1</h1>\n")


def test_kill9_worker_respawned_while_requests_flow(serve):
    s = serve(workers=2)
    ws = wait_until(lambda: len(s.workers()) == 2 and s.workers(), what="workers")
    res = {"ok": 0, "fail": 0}
    stop = threading.Event()

    def client():
        while not stop.is_set():
            try:
                res["ok" if get(s.port, "/a.txt", timeout=5)[0] == 200 else "fail"] += 1
            except OSError:
                res["fail"] += 1
    ts = [threading.Thread(target=client) for _ in range(3)]
    for t in ts:
        t.start()
    wait_until(lambda: res["ok"] > 50, what="traffic")
    os.kill(ws[0], signal.SIGKILL)
    wait_until(lambda: len(s.workers()) == 2 and ws[0] not in s.workers(), what="respawn")
    n = res["ok"]
    wait_until(lambda: res["ok"] > n + 50, what="traffic after respawn")
    stop.set()
    for t in ts:
        t.join()
    assert res["fail"] <= len(ts)     # only what the killed worker itself held
    assert f"worker process {ws[0]} exited on signal 9" in s.log()


def test_reload_under_concurrent_clients_zero_failures(serve):
    s = serve(workers=2)
    res = {"ok": 0, "fail": 0, "bodies": set()}
    stop = threading.Event()

    def client():
        while not stop.is_set():
            try:
                st, body = get(s.port, "/", timeout=5)
                res["ok" if st == 200 else "fail"] += 1
                res["bodies"].add(body)
            except OSError:
                res["fail"] += 1
    ts = [threading.Thread(target=client) for _ in range(4)]
    for t in ts:
        t.start()
    deadline = time.monotonic() + 4
    n = 1
    while time.monotonic() < deadline:
        n += 1
        (s.conf / "html" / f"v{n}.html").write_text(f"<h1>v{n}</h1>\n")
        write_conf(s.conf, s.port, server_extra=f"index v{n}.html;")
        old = set(s.workers())
        os.kill(s.pid, signal.SIGHUP)
        wait_until(lambda: (w := set(s.workers())) and not (w & old) and len(w) == 2, what="new generation")
        wait_until(lambda: f"<h1>v{n}</h1>\n".encode() in res["bodies"], what=f"v{n}")
    stop.set()
    for t in ts:
        t.join()
    assert res["fail"] == 0 and res["ok"] > 100


def test_broken_reload_keeps_old_config_and_logs_why(serve):
    s = serve(workers=1)
    ws = wait_until(lambda: s.workers(), what="worker")
    write_conf(s.conf, s.port, server_extra="bogus_directive on;")
    os.kill(s.pid, signal.SIGHUP)
    wait_until(lambda: "keeping the old configuration" in s.log(), what="failure logged")
    assert 'unknown directive "bogus_directive"' in s.log()
    assert f"{s.conf}/nginx.conf:" in s.log()
    assert get(s.port)[0] == 200 and s.workers() == ws


def test_sigquit_while_large_file_is_sent(serve):
    s = serve(workers=1)
    c = socket.create_connection(("127.0.0.1", s.port))
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    c.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    got = c.recv(65536)
    os.kill(s.pid, signal.SIGQUIT)
    time.sleep(0.3)   # let the QUIT reach the worker while most of the file is unsent
    while True:
        chunk = c.recv(1 << 20)
        if not chunk:
            break
        got += chunk
    head, _, body = got.partition(b"\r\n\r\n")
    assert b" 200 " in head.split(b"\r\n")[0]
    assert len(body) == BIG
    assert s.proc.p.wait(30) == 0
    assert not (s.conf / "run" / "test.pid").exists()


def test_sigterm_everything_gone_within_5s(serve):
    s = serve(workers=2)
    ws = wait_until(lambda: len(s.workers()) == 2 and s.workers(), what="workers")
    c = socket.create_connection(("127.0.0.1", s.port))
    c.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    c.recv(100)
    os.kill(s.pid, signal.SIGTERM)
    s.proc.p.wait(5)
    wait_until(lambda: not any(alive(p) for p in ws), timeout=5, what="workers gone")
    assert not (s.conf / "run" / "test.pid").exists()
    c.close()


def test_sigusr1_reopens_logs_after_rename(serve):
    s = serve(workers=1)
    access = s.conf / "logs" / "access.log"
    assert get(s.port, "/a.txt")[0] == 200
    wait_until(lambda: access.exists() and "/a.txt" in access.read_text(), what="access line")
    os.rename(access, str(access) + ".1")
    os.rename(s.conf / "logs" / "error.log", s.conf / "logs" / "error.log.1")
    os.kill(s.pid, signal.SIGUSR1)
    wait_until(lambda: access.exists() and (s.conf / "logs" / "error.log").exists(), what="reopened")
    assert get(s.port, "/index.html?after")[0] == 200
    wait_until(lambda: "/index.html?after" in access.read_text(), what="line in the new access log")
    assert "?after" not in (s.conf / "logs" / "access.log.1").read_text()


def test_pyfront_signal_reload_reopen_quit(serve):
    s = serve(workers=1)
    old = wait_until(lambda: s.workers(), what="worker")
    r = subprocess.run(pyfront_cmd("signal", "reload", str(s.conf)), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    wait_until(lambda: s.workers() and not set(s.workers()) & set(old), what="new generation")
    r = subprocess.run(pyfront_cmd("signal", "reopen", str(s.conf)), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    wait_until(lambda: "reopening logs" in s.log(), what="reopen")
    write_conf(s.conf, s.port, server_extra="bogus_directive on;")
    r = subprocess.run(pyfront_cmd("signal", "reload", str(s.conf)), capture_output=True, text=True)
    assert r.returncode == 1
    assert 'unknown directive "bogus_directive"' in r.stderr and "reload not sent" in r.stderr
    r = subprocess.run(pyfront_cmd("signal", "quit", str(s.conf)), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr       # quit works with broken files
    assert s.proc.p.wait(30) == 0
    r = subprocess.run(pyfront_cmd("signal", "stop", str(s.conf)), capture_output=True, text=True)
    assert r.returncode == 1
    assert f'pyfront: [error] open() "{s.conf}/run/test.pid" failed (2: No such file or directory)' in r.stderr


def test_pyfront_signal_stop(serve):
    s = serve(workers=2)
    ws = wait_until(lambda: len(s.workers()) == 2 and s.workers(), what="workers")
    r = subprocess.run(pyfront_cmd("signal", "stop", str(s.conf)), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    s.proc.p.wait(5)
    wait_until(lambda: not any(alive(p) for p in ws), timeout=5, what="gone")


def test_startup_error_is_nginx_shaped_without_traceback(tmp_path, procs):
    port = free_port()
    conf = write_conf(tmp_path / "c", port, server_extra="bogus_directive on;")
    r = subprocess.run(pyfront_cmd("serve", str(conf)), capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert f'pyfront: [emerg] unknown directive "bogus_directive" in {conf}/nginx.conf:' in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_busy_port_startup_error(tmp_path):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    conf = write_conf(tmp_path / "c", port)
    r = subprocess.run(pyfront_cmd("serve", str(conf)), capture_output=True, text=True, timeout=30)
    busy.close()
    assert r.returncode == 1
    msg = f"bind() to 127.0.0.1:{port} failed (98: Address already in use)"
    assert f"pyfront: [emerg] {msg}" in r.stderr              # on the terminal...
    assert msg in (conf / "logs" / "error.log").read_text()   # ...and in the error_log
    assert "Traceback" not in r.stderr + r.stdout
    assert not (conf / "run" / "test.pid").exists()


def test_serve_without_argument_runs_the_bundled_site(procs):
    try:
        probe = socket.create_connection(("127.0.0.1", 8080), timeout=0.5)
        probe.close()
        busy = True
    except OSError:
        busy = False
    p = procs(pyfront_cmd("serve"))
    if busy:   # someone else has :8080 on this machine: the error must still be clean
        assert p.p.wait(30) == 1
        out = p.p.stdout.read().decode()
        assert "bind() to 127.0.0.1:8080 failed (98: Address already in use)" in out
        assert "Traceback" not in out
        return
    line = p.p.stdout.readline().decode()
    while "serving" not in line:
        assert line, "pyfront serve exited"
        line = p.p.stdout.readline().decode()
    assert "http://127.0.0.1:8080/" in line
    st, body = get(8080, "/")
    assert st == 200 and b"pyfront is serving this page" in body
    assert get(8080, "/static/hello.txt") == (200, b"Hello from pyfront.\n")


def test_listen_variants_affinity_and_reuseport(tmp_path, procs):
    """IPv6, unix and reuseport listeners opened by the master, workers pinned by
    `worker_cpu_affinity auto`, all served by the real front workers."""
    p4, p6 = free_port(), free_port(socket.AF_INET6, "::1")
    sock = tmp_path / "front.sock"
    d = tmp_path / "c"
    write_conf(d, p4, workers=2, extra_main="worker_cpu_affinity auto;",
               listen_extra=f" reuseport;\n        listen [::1]:{p6};\n        listen unix:{sock}")
    s = Serve(procs, d, p4)
    ws = wait_until(lambda: len(s.workers()) == 2 and s.workers(), what="workers")
    ncpu = os.cpu_count() or 1
    pinned = sorted(tuple(os.sched_getaffinity(w)) for w in ws)
    assert pinned == sorted([(0,), (1 % ncpu,)])
    assert get(p4, "/a.txt") == (200, b"A\n")
    c6 = http.client.HTTPConnection("::1", p6, timeout=10)
    c6.request("GET", "/a.txt")
    assert c6.getresponse().read() == b"A\n"
    c6.close()
    u = socket.socket(socket.AF_UNIX)
    u.connect(str(sock))
    u.sendall(b"GET /a.txt HTTP/1.0\r\nHost: x\r\n\r\n")
    data = b""
    while chunk := u.recv(4096):
        data += chunk
    assert data.endswith(b"\r\n\r\nA\n")
    os.kill(s.pid, signal.SIGQUIT)
    assert s.proc.p.wait(30) == 0
    assert not sock.exists()


def test_reload_with_keepalive_clients_zero_failures(serve):
    """Busy keep-alive connections across reloads: the old workers answer their next request
    with `Connection: close` (http.client then reconnects), so no client sees an error."""
    s = serve(workers=2)
    res = {"ok": 0, "fail": 0, "errors": []}
    stop = threading.Event()

    def client():
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
        while not stop.is_set():
            try:
                c.request("GET", "/a.txt")
                r = c.getresponse()
                body = r.read()
                res["ok" if (r.status, body) == (200, b"A\n") else "fail"] += 1
            except (OSError, http.client.HTTPException) as e:
                res["fail"] += 1
                res["errors"].append(repr(e))
                c.close()
        c.close()
    ts = [threading.Thread(target=client) for _ in range(4)]
    for t in ts:
        t.start()
    for _ in range(4):
        old = set(wait_until(lambda: len(s.workers()) == 2 and s.workers(), what="workers"))
        os.kill(s.pid, signal.SIGHUP)
        wait_until(lambda: (w := set(s.workers())) and len(w) == 2 and not (w & old), what="new generation")
        n = res["ok"]
        wait_until(lambda: res["ok"] > n + 100, what="traffic on the new generation")
    stop.set()
    for t in ts:
        t.join()
    assert res["fail"] == 0, res["errors"][:5]


def test_idle_keepalive_connection_survives_a_reload(serve):
    """A keep-alive connection idle during a reload still gets its next request answered
    (by the draining old worker, with `Connection: close`), not a reset."""
    s = serve(workers=1)
    old = wait_until(lambda: s.workers(), what="worker")
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
    c.request("GET", "/a.txt")
    r = c.getresponse()
    assert r.read() == b"A\n" and not r.will_close
    os.kill(s.pid, signal.SIGHUP)
    wait_until(lambda: f"old worker processes drain: {old[0]}" in s.log(), what="old worker draining")
    time.sleep(0.2)                     # let the QUIT reach it
    c.request("GET", "/a.txt")          # same connection, held by the old, draining worker
    r = c.getresponse()
    assert (r.status, r.read()) == (200, b"A\n")
    assert r.getheader("Connection", "").lower() == "close"
    c.close()
