"""The master hosting [uwsgi] apps: sockets owned by the master, reload = new app master on
the same sockets then graceful retirement of the old one, boot failures, respawn."""
import http.client
import os
import signal
import threading
import time

from tests.conftest import free_port, pyfront_cmd, wait_for_port
from tests.integration.test_master_process import alive, children, title, wait_until

APP = """import os
VERSION = {version!r}
{extra}
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("%s %d\\n" % (VERSION, os.getpid())).encode()]
"""


def write_app(d, port, version="v1", extra=""):
    d.mkdir(exist_ok=True)
    (d / "app.py").write_text(APP.format(version=version, extra=extra))
    (d / "app.ini").write_text(f"[uwsgi]\nhttp-socket = 127.0.0.1:{port}\nchdir = %d\nwsgi-file = app.py\n"
                               "processes = 2\nmaster = true\n")
    return d


def get(port, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", "/")
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def serve(procs, d):
    """`pyfront serve d` with its output in a file: the apps log every request, and a pipe
    nobody reads would fill up and block them."""
    out = open(d / "serve.out", "wb")
    p = procs(pyfront_cmd("serve", str(d)), stdout=out)
    p.output = lambda: (d / "serve.out").read_text(errors="replace")
    return p


def wait_ready(p, n=1):
    wait_until(lambda: p.output().count("[notice]") and p.output().count(": app app ready (app master pid") >= n,
               timeout=30, what="app ready")


def tree(pid):
    out = []
    for c in children(pid):
        out.append(c)
        out.extend(tree(c))
    return out


def test_app_reload_under_load_zero_failures(tmp_path, procs):
    port = free_port()
    d = write_app(tmp_path / "c", port)
    p = serve(procs, d)
    wait_for_port(port, proc=p.p)
    wait_until(lambda: get(port)[1].startswith(b"v1"), what="v1")
    app_master = children(p.pid)[0]
    assert title(app_master) == "pyfront: app master app"
    res = {"ok": 0, "fail": 0, "versions": set()}
    stop = threading.Event()

    def client():
        while not stop.is_set():
            try:
                st, body = get(port, timeout=10)
                res["ok" if st == 200 else "fail"] += 1
                res["versions"].add(body.split()[0])
            except OSError as e:
                res["fail"] += 1
                res.setdefault("errors", []).append((time.monotonic(), repr(e)))
    ts = [threading.Thread(target=client) for _ in range(3)]
    for t in ts:
        t.start()
    for v in ("v2", "v3.0"):  # different sizes: a same-size rewrite within a second reuses the .pyc
        write_app(d, port, version=v)
        os.kill(p.pid, signal.SIGHUP)
        wait_until(lambda: v.encode() in res["versions"], timeout=30, what=v)
    time.sleep(0.5)
    stop.set()
    for t in ts:
        t.join()
    assert res["fail"] == 0 and res["ok"] > 20, res.get("errors")
    wait_until(lambda: len(children(p.pid)) == 1, what="old app master retired")
    assert not alive(app_master)


def test_broken_app_on_reload_keeps_the_running_one(tmp_path, procs):
    port = free_port()
    d = write_app(tmp_path / "c", port)
    p = serve(procs, d)
    wait_for_port(port, proc=p.p)
    wait_ready(p)
    old = children(p.pid)
    write_app(d, port, version="v2", extra="import no_such_module_xyz")
    os.kill(p.pid, signal.SIGHUP)
    log = []
    # the new app master gives up; the old one must still answer with v1
    wait_until(lambda: len(children(p.pid)) == 1 and children(p.pid) == old and time.sleep(0.5) is None
               and children(p.pid) == old, timeout=30, what="rollback")
    assert get(port)[1].startswith(b"v1")
    p.stop(signal.SIGTERM)
    log = p.output()
    assert "reload of app app failed" in log and "keeping the running one" in log


def test_app_that_cannot_import_fails_serve(tmp_path, procs):
    port = free_port()
    d = write_app(tmp_path / "c", port, extra="import no_such_module_xyz")
    p = serve(procs, d)
    assert p.p.wait(60) == 1
    out = p.output()
    assert "no_such_module_xyz" in out
    assert "app app could not start" in out
    assert not (d / "run" / "pyfront.pid").exists()


def test_app_master_killed_is_replaced_and_sigterm_leaves_nothing(tmp_path, procs):
    port = free_port()
    d = write_app(tmp_path / "c", port)
    p = serve(procs, d)
    wait_for_port(port, proc=p.p)
    wait_ready(p)
    (am,) = children(p.pid)
    os.kill(am, signal.SIGKILL)
    wait_until(lambda: (c := children(p.pid)) and c != [am] and get(port)[0] == 200, timeout=30,
               what="app master replaced")
    # one worker answering does not mean both are forked yet: wait for the whole tree
    wait_until(lambda: len(tree(p.pid)) == 3, timeout=30, what="app master + 2 workers")
    everything = tree(p.pid)
    os.kill(p.pid, signal.SIGTERM)
    p.p.wait(5)
    wait_until(lambda: not any(alive(x) for x in everything), timeout=5, what="all gone")


def test_quick_successive_reloads_leave_exactly_one_app_master(tmp_path, procs):
    port = free_port()
    d = write_app(tmp_path / "c", port)
    p = serve(procs, d)
    wait_for_port(port, proc=p.p)
    wait_ready(p)
    for v in ("v2", "v3.0", "v4.00"):
        write_app(d, port, version=v)
        os.kill(p.pid, signal.SIGHUP)
    wait_until(lambda: get(port)[1].startswith(b"v4.00"), timeout=30, what="last version")
    wait_until(lambda: len(children(p.pid)) == 1, timeout=30, what="one app master")
    time.sleep(1)
    assert len(children(p.pid)) == 1
    assert len(tree(p.pid)) == 3
