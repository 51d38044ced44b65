"""Helpers for the app-server integration tests: start `pyfront app` and a real nginx."""
from __future__ import annotations

import os
import socket
import subprocess
import textwrap
import time

from tests.conftest import free_port, need_peer, pyfront_cmd, wait_for_port, wait_for_unix

# nginx conf/uwsgi_params, verbatim (reference §2.2), so the test does not depend on /etc/nginx.
UWSGI_PARAMS = """
uwsgi_param  QUERY_STRING       $query_string;
uwsgi_param  REQUEST_METHOD     $request_method;
uwsgi_param  CONTENT_TYPE       $content_type;
uwsgi_param  CONTENT_LENGTH     $content_length;

uwsgi_param  REQUEST_URI        $request_uri;
uwsgi_param  PATH_INFO          $document_uri;
uwsgi_param  DOCUMENT_ROOT      $document_root;
uwsgi_param  SERVER_PROTOCOL    $server_protocol;
uwsgi_param  REQUEST_SCHEME     $scheme;
uwsgi_param  HTTPS              $https if_not_empty;

uwsgi_param  REMOTE_ADDR        $remote_addr;
uwsgi_param  REMOTE_PORT        $remote_port;
uwsgi_param  SERVER_PORT        $server_port;
uwsgi_param  SERVER_NAME        $server_name;
"""


class App:
    def __init__(self, proc, log_path: str, address: str):
        self.proc, self.log_path, self.address = proc, log_path, address

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_log(self, needle: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log()
            if needle in text:
                return text
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} not in the app log:\n{self.log()[-4000:]}")

    def worker_pids(self) -> list[int]:
        return children(self.pid)


def children(pid: int) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(name))
        except (OSError, IndexError, ValueError):
            continue
    return sorted(out)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(pred, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def start_app(procs, tmp_path, ini: str, address: str, name: str = "app.ini", extra_args=(), env=None,
              wait: bool = True, prefix=()) -> App:
    """Write `ini` (a [uwsgi] section body) to tmp_path/name and run `pyfront app --ini` on it.

    `address` is the listen address to wait for (unix path or host:port). Logs go to
    tmp_path/app.log (logto), never to a pipe that could fill up.
    """
    log_path = str(tmp_path / (name + ".log"))
    ini_path = tmp_path / name
    ini_path.write_text("[uwsgi]\n" + textwrap.dedent(ini).strip() + f"\nlogto = {log_path}\n")
    full_env = dict(os.environ)
    full_env.update(env or {})
    p = procs([*prefix, *pyfront_cmd("app", "--ini", str(ini_path), *extra_args)], env=full_env,
              stdout=subprocess.DEVNULL, stderr=open(str(tmp_path / (name + ".stderr")), "wb"))
    app = App(p, log_path, address)
    if wait:
        if address.startswith("/"):
            wait_for_unix(address, proc=p.p)
        else:
            host, port = address.rsplit(":", 1)
            wait_for_port(int(port), host=host, proc=p.p)
        app.wait_log(" ready: ")
    return app


class Nginx:
    def __init__(self, proc, port: int, prefix: str):
        self.proc, self.port, self.prefix = proc, port, prefix

    def error_log(self) -> str:
        with open(os.path.join(self.prefix, "error.log"), errors="replace") as f:
            return f.read()


def start_nginx(procs, tmp_path, locations: str, extra_http: str = "") -> Nginx:
    """A real nginx (foreground, temp prefix) with one server on a free port."""
    binary = need_peer("nginx")
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    (prefix / "uwsgi_params").write_text(UWSGI_PARAMS)
    port = free_port()
    user = "user root;" if os.geteuid() == 0 else ""
    conf = f"""
        {user}
        worker_processes 1;
        daemon off;
        pid {prefix}/nginx.pid;
        error_log {prefix}/error.log info;
        events {{ worker_connections 256; }}
        http {{
            access_log {prefix}/access.log;
            client_body_temp_path {prefix}/client_body;
            proxy_temp_path {prefix}/proxy;
            fastcgi_temp_path {prefix}/fastcgi;
            uwsgi_temp_path {prefix}/uwsgi;
            scgi_temp_path {prefix}/scgi;
            client_max_body_size 64m;
            {extra_http}
            server {{
                listen 127.0.0.1:{port};
                server_name test.local;
                {locations}
            }}
        }}
    """
    (prefix / "nginx.conf").write_text(textwrap.dedent(conf))
    p = procs([binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "error.log")],
              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, proc=p.p)
    return Nginx(p, port, str(prefix))


def http_request(port: int, method: str, path: str, headers: dict | None = None, body: bytes | None = None,
                 host: str = "127.0.0.1", timeout: float = 30.0):
    """(status, headers list, body) via http.client."""
    import http.client
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.getheaders(), r.read()
    finally:
        c.close()


def raw_exchange(address: str, data: bytes, timeout: float = 10.0, half_close: bool = True) -> bytes:
    """Send bytes to a unix path or host:port (then shut down our sending side), read until the peer closes."""
    if address.startswith("/"):
        s = socket.socket(socket.AF_UNIX)
        s.connect(address)
    else:
        host, port = address.rsplit(":", 1)
        s = socket.create_connection((host, int(port)))
    s.settimeout(timeout)
    try:
        if data:
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass
        if half_close:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


# A WSGI app exercising every part of the server; wrapped in wsgiref.validate.validator.
TEST_APP = r'''
import hashlib, json, os, threading, time
from urllib.parse import parse_qs
from wsgiref.validate import validator


def _q(env):
    return {k: v[0] for k, v in parse_qs(env.get("QUERY_STRING", "")).items()}


def _text(start_response, body, status="200 OK", extra=()):
    if isinstance(body, str):
        body = body.encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))] + list(extra))
    return [body]


class Closing:
    def __init__(self, items, marker):
        self.items, self.marker = items, marker
    def __iter__(self):
        return iter(self.items)
    def close(self):
        if self.marker:
            open(self.marker, "w").write("closed")


def raw_app(env, start_response):
    path = env["PATH_INFO"]
    q = _q(env)
    if path == "/echo":
        keys = {k: v for k, v in env.items() if isinstance(v, str)}
        keys["wsgi.url_scheme"] = env["wsgi.url_scheme"]
        body = json.dumps(keys).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/upload":
        h = hashlib.sha256()
        n = 0
        inp = env["wsgi.input"]
        while True:
            chunk = inp.read(65536)
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
        return _text(start_response, f"{n} {h.hexdigest()}")
    if path == "/lines":
        lines = list(iter(env["wsgi.input"].readline, b""))
        return _text(start_response, f"{len(lines)} {sum(map(len, lines))}")
    if path == "/stream":
        def gen():
            yield b"first\n"
            flag = q["flag"]
            for _ in range(400):
                if os.path.exists(flag):
                    break
                time.sleep(0.025)
            yield b"second " + (b"saw-flag" if os.path.exists(flag) else b"no-flag") + b"\n"
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Accel-Buffering", "no")])
        return gen()
    if path == "/cookies":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Set-Cookie", "a=1; Path=/"),
                                  ("Set-Cookie", "b=2; Path=/"), ("Set-Cookie", "c=3; HttpOnly"),
                                  ("Content-Length", "2")])
        return [b"ok"]
    if path == "/error":
        raise RuntimeError("boom from the test app")
    if path == "/cookie-len":
        return _text(start_response, str(len(env.get("HTTP_COOKIE", ""))))
    if path == "/pid":
        return _text(start_response, f"{os.getpid()} {threading.get_ident()}")
    if path == "/rendezvous":
        d, n = q["dir"], int(q["n"])
        mine = os.path.join(d, f"{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}")
        open(mine, "w").close()
        ok = False
        for _ in range(800):
            if len(os.listdir(d)) >= n:
                ok = True
                break
            time.sleep(0.0125)
        return _text(start_response, f"{os.getpid()} {threading.get_ident()} {'overlap' if ok else 'alone'}")
    if path == "/sleep":
        def stuck_in_the_app(seconds):
            time.sleep(seconds)
        stuck_in_the_app(float(q.get("s", "30")))
        return _text(start_response, "woke")
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"via-write ")
        return [b"and-iterable"]
    if path == "/file":
        f = open(q["path"], "rb")
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return env["wsgi.file_wrapper"](f, 8192)
    if path == "/close":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Closing([b"a", b"b"], q.get("marker"))
    if path == "/exc-after-start":
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("late")
        except ValueError:
            import sys
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"recovered"]
    return _text(start_response, "not found", "404 Not Found")


application = validator(raw_app)
'''


def write_test_app(tmp_path, name: str = "testapp.py") -> str:
    p = tmp_path / name
    p.write_text(TEST_APP)
    return str(p)
