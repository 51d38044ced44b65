"""One reload for the whole stack: a steady request stream through the front (to an app over
uwsgi and to static files) sees zero failed requests across a reload that changes a route,
one that changes the app's code and one that changes a program's command.

Client behaviour: a request sent on a REUSED keep-alive connection that the server closed
while it was idle (the old front worker retiring) fails before any response byte; every HTTP
client retries such a request once on a new connection (RFC 9112 §9.3.1, browsers, urllib3),
and so does this one. It is counted separately (`stale_retries`); a failure on a NEW
connection, or any non-2xx status, is a failure.
"""
import http.client
import os
import signal
import threading
import time

from tests.conftest import free_port, pyfront_cmd, wait_for_port
from tests.integration.test_master_process import children, wait_until

APP = """import os
VERSION = {version!r}
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("%s %d\\n" % (VERSION, os.getpid())).encode()]
"""

PHASE_REQUESTS = 1300        # per phase (before, after each of 3 reloads): >= 5,200 in total
DEADLINE = 240.0


def site(front, sock, static, extra=""):
    return f"""server {{
    listen 127.0.0.1:{front};
    access_log off;
    location /static/ {{ alias {static}/; }}
    location / {{ include uwsgi_params; uwsgi_pass unix:{sock}; }}
    {extra}
}}
"""


def programs(ctl, a_cmd):
    return f"""[program:a]
command={a_cmd}
[program:b]
command=sleep 1001
[inet_http_server]
port=127.0.0.1:{ctl}
"""


def build(d, front, ctl):
    sock = str(d / "app.sock")
    static = d / "static"
    static.mkdir(parents=True)
    (static / "x.txt").write_text("static\n")
    (d / "site.conf").write_text(site(front, sock, static))
    (d / "app.py").write_text(APP.format(version="v1"))
    (d / "app.ini").write_text(f"[uwsgi]\nsocket = {sock}\nchdir = %d\nwsgi-file = app.py\n"
                               "processes = 2\nmaster = true\n")
    (d / "programs.conf").write_text(programs(ctl, "sleep 1000"))
    return sock, static


class Stream:
    def __init__(self, port):
        self.port = port
        self.lock = threading.Lock()
        self.codes: dict[int, int] = {}
        self.errors: list[str] = []
        self.stale_retries = 0
        self.total = 0
        self.stop = threading.Event()

    def record(self, status=None, error=None):
        with self.lock:
            self.total += 1
            if error is not None:
                self.errors.append(error)
            else:
                self.codes[status] = self.codes.get(status, 0) + 1

    def one(self, conn, path):
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        return r.status, r.will_close

    def client(self, keepalive, paths):
        conn, reused, i = None, False, 0
        while not self.stop.is_set():
            path = paths[i % len(paths)]
            i += 1
            if conn is None:
                conn, reused = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15), False
            try:
                try:
                    status, will_close = self.one(conn, path)
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                    if not reused:
                        raise
                    with self.lock:
                        self.stale_retries += 1
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
                    status, will_close = self.one(conn, path)
                self.record(status=status)
                reused = True
                if will_close or not keepalive:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                self.record(error=f"{time.monotonic():.3f} {path} {e!r}")
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def wait_for(self, n):
        start = self.total
        wait_until(lambda: self.total - start >= n, timeout=DEADLINE / 4, what=f"{n} more requests")


def get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def pid_of(master_pid, needle):
    for k in children(master_pid):
        try:
            if needle in open(f"/proc/{k}/cmdline", "rb").read().replace(b"\0", b" ").decode():
                return k
        except OSError:
            pass
    return None


def test_reload_of_route_app_code_and_program_loses_no_request(tmp_path, procs):
    front, ctl = free_port(), free_port()
    d = tmp_path / "c"
    sock, static = build(d, front, ctl)
    p = procs(pyfront_cmd("serve", str(d)), stdout=open(tmp_path / "serve.out", "wb"))
    wait_for_port(front, proc=p.p)
    wait_until(lambda: get(front, "/")[1].startswith(b"v1"), timeout=30, what="app v1 through the front")
    prog_a = wait_until(lambda: pid_of(p.pid, "sleep 1000"), what="program a")
    prog_b = wait_until(lambda: pid_of(p.pid, "sleep 1001"), what="program b")

    s = Stream(front)
    threads = [threading.Thread(target=s.client, args=(ka, paths), daemon=True)
               for ka, paths in ((True, ["/", "/static/x.txt"]), (False, ["/"]),
                                 (True, ["/"]), (False, ["/static/x.txt", "/"]))]
    for t in threads:
        t.start()
    try:
        s.wait_for(PHASE_REQUESTS)
        # (1) a route changes
        (d / "site.conf").write_text(site(front, sock, static, 'location = /new { return 200 "new route\\n"; }'))
        os.kill(p.pid, signal.SIGHUP)
        wait_until(lambda: get(front, "/new") == (200, b"new route\n"), timeout=30, what="new route")
        s.wait_for(PHASE_REQUESTS)
        # (2) the app's code changes: HUP reloads the code (uWSGI's meaning)
        (d / "app.py").write_text(APP.format(version="v2"))
        os.kill(p.pid, signal.SIGHUP)
        wait_until(lambda: get(front, "/")[1].startswith(b"v2"), timeout=30, what="new code")
        s.wait_for(PHASE_REQUESTS)
        # (3) a program's command changes
        (d / "programs.conf").write_text(programs(ctl, "sleep 1002"))
        os.kill(p.pid, signal.SIGHUP)
        new_a = wait_until(lambda: pid_of(p.pid, "sleep 1002"), timeout=30, what="program a restarted")
        s.wait_for(PHASE_REQUESTS)
    finally:
        s.stop.set()
        for t in threads:
            t.join(30)
    assert s.errors == []
    assert set(s.codes) == {200}, s.codes
    assert s.total >= 5000
    assert new_a != prog_a and pid_of(p.pid, "sleep 1000") is None
    assert pid_of(p.pid, "sleep 1001") == prog_b
    assert get(front, "/new") == (200, b"new route\n")
    assert get(front, "/")[1].startswith(b"v2")
    print(f"requests {s.total} codes {s.codes} stale keep-alive retries {s.stale_retries}")
    os.kill(p.pid, signal.SIGQUIT)
    assert p.p.wait(30) == 0
