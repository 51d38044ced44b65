"""Helpers for the proxy tests: a pyfront front worker on an nginx-syntax config, echo apps."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time

from tests.conftest import ROOT, SRC_PATH, free_port, wait_for_port
from tests.integration.app_support import raw_exchange

ECHO_APP = r'''
import hashlib, json, time

def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path.startswith("/stream"):
        # first chunk at once; the second only after the test creates the flag file
        flag = environ.get("QUERY_STRING")
        start_response("200 OK", [("Content-Type", "text/plain")])
        def gen():
            yield b"first\n"
            for _ in range(600):
                if __import__("os").path.exists(flag):
                    break
                time.sleep(0.05)
            yield b"second\n"
        return gen()
    if "/slow" in path:
        time.sleep(float(environ.get("QUERY_STRING") or "3"))
    if path.startswith("/cookies"):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Set-Cookie", "a=1; Path=/"),
                                  ("Set-Cookie", "b=2; Path=/"), ("X-Accel-Buffering", "no")])
        return [b"cookies"]
    if path.startswith("/big"):
        n = int(environ.get("QUERY_STRING") or "1048576")
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(n))])
        return [b"x" * n]
    if path.startswith("/status/"):
        code = path.rsplit("/", 1)[1]
        start_response(code + " Whatever", [("Content-Type", "text/plain")])
        return [b"status " + code.encode()]
    body = environ["wsgi.input"].read()
    env = {k: v for k, v in environ.items() if isinstance(v, str)}
    env["_body_sha256"] = hashlib.sha256(body).hexdigest()
    env["_body_len"] = len(body)
    env["_pid"] = __import__("os").getpid()
    env["_app"] = __import__("os").environ.get("APP_ID", "")
    out = json.dumps(env, sort_keys=True).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(out)))])
    return [out]
'''


def write_echo(tmp_path) -> str:
    p = tmp_path / "echo.py"
    p.write_text(ECHO_APP)
    return str(p)


class Procs:
    """Module-scoped process list (tests.conftest.Proc), stopped by pid at teardown."""

    def __init__(self):
        self.started = []

    def __call__(self, argv, **kw):
        from tests.conftest import Proc
        p = Proc(argv, **kw)
        self.started.append(p)
        return p

    def stop_all(self):
        for p in reversed(self.started):
            p.stop()
        self.started.clear()


class PyFront:
    def __init__(self, proc, port: int, prefix: str):
        self.proc, self.port, self.prefix = proc, port, prefix

    @property
    def pid(self) -> int:
        return self.proc.pid

    def error_log(self) -> str:
        try:
            with open(os.path.join(self.prefix, "error.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""


def start_pyfront(procs, tmp_path, locations: str, extra_http: str = "", port: int | None = None,
                  name: str = "pf", app_links=()) -> PyFront:
    """A pyfront front worker (front_child) on the same server block start_nginx writes.
    app_links: uwsgi sockets to treat as pyfront's own apps (compile_proxy.AppLink)."""
    from pyfront.config.compile import compile_front
    from pyfront.config.nginx import load_nginx_files
    prefix = tmp_path / name
    prefix.mkdir()
    port = port or free_port()
    conf = f"""
        client_max_body_size 64m;
        client_body_temp_path {prefix}/client_body;
        access_log {prefix}/access.log;
        {extra_http}
        server {{
            listen 127.0.0.1:{port};
            server_name test.local;
            {locations}
        }}
    """
    path = prefix / "site.conf"
    path.write_text(textwrap.dedent(conf))
    cfg, diags = load_nginx_files([str(path)], prefix=str(prefix))
    blob = compile_front(cfg, app_links)
    blob_path = prefix / "routes.blob"
    blob_path.write_bytes(blob)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(511)
    env = dict(os.environ, PF_TEST_ERROR_LOG=str(prefix / "error.log"),
               PYTHONPATH=os.pathsep.join([*SRC_PATH, ROOT, os.environ.get("PYTHONPATH", "")]))
    p = procs([sys.executable, "-m", "tests.integration.front_child", str(blob_path), "5",
               f"127.0.0.1:{port}={ls.fileno()}"], pass_fds=[ls.fileno()], cwd=ROOT, env=env,
              stdout=subprocess.DEVNULL, stderr=open(str(prefix / "stderr"), "wb"))
    ls.close()
    wait_for_port(port, proc=p.p)
    return PyFront(p, port, str(prefix))


def start_uwsgi(procs, tmp_path, socket_path: str, wsgi_file: str, name: str = "uwsgi", extra=()):
    """The real uWSGI (pip's, in the venv) on a unix socket."""
    from tests.conftest import need_peer, wait_for_unix
    binary = need_peer("uwsgi")
    log = tmp_path / f"{name}.log"
    p = procs([binary, "--socket", socket_path, "--wsgi-file", wsgi_file, "--master", "--processes", "1",
               "--threads", "4", "--logto", str(log), "--die-on-term", "--buffer-size", "32768", *extra],
              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_unix(socket_path, proc=p.p)
    return p


def dechunk(body: bytes) -> bytes:
    out = b""
    while True:
        line, _, rest = body.partition(b"\r\n")
        n = int(line.split(b";")[0], 16)
        if n == 0:
            return out
        out += rest[:n]
        body = rest[n + 2:]


def response_body(raw: bytes) -> bytes:
    """The body of one raw response (chunked decoded)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    return dechunk(body) if b"Transfer-Encoding: chunked" in head else body


def request(port: int, data: bytes, timeout: float = 30.0) -> bytes:
    """Raw bytes in, everything until the server closes out."""
    return raw_exchange(f"127.0.0.1:{port}", data, timeout, half_close=False)
