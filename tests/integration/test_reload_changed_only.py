"""One reload applies only what changed (issue #6 point 2): with two [uwsgi] apps, a HUP that
changes nothing keeps every app process; a HUP after app b's code or ini changed restarts b
only (new workers accepting before the old ones retire: zero failed requests to either app
under a request stream); a removed app is stopped and its socket closed, an added one starts.
The log says what was reloaded and what was left, one line per app."""
import os
import signal
import socket
import threading

from tests.conftest import free_port, wait_for_port
from tests.integration.test_master_apps import APP, get, serve
from tests.integration.test_master_process import alive, children, title, wait_until


def write_app(conf, name, port, version="v1", processes=2, code_dir=None):
    code = code_dir or conf / name
    code.mkdir(exist_ok=True)
    (code / "app.py").write_text(APP.format(version=version, extra=""))
    (conf / f"{name}.ini").write_text(f"[uwsgi]\nhttp-socket = 127.0.0.1:{port}\nchdir = {code}\n"
                                      f"wsgi-file = app.py\nprocesses = {processes}\nmaster = true\n")


def app_tree(serve_pid, name):
    """{app master pid: sorted worker pids} of app NAME (only the app masters not retiring)."""
    out = {}
    for c in children(serve_pid):
        if title(c) == f"pyfront: app master {name}":
            out[c] = sorted(children(c))
    return out


def settled(serve_pid, name, processes):
    """The app's tree once exactly one app master with all its workers runs."""
    t = app_tree(serve_pid, name)
    if len(t) == 1 and len(next(iter(t.values()))) == processes:
        return t
    return None


class Stream:
    """Fresh-connection GETs to each port until stopped; every non-200 or error is kept."""

    def __init__(self, ports):
        self.ports, self.stop = ports, threading.Event()
        self.ok = {p: 0 for p in ports}
        self.failures = []
        self.threads = [threading.Thread(target=self.run, args=(p,), daemon=True) for p in ports for _ in (0, 1)]

    def run(self, port):
        while not self.stop.is_set():
            try:
                status, body = get(port)
                if status == 200:
                    self.ok[port] += 1
                else:
                    self.failures.append((port, status, body[:100]))
            except Exception as e:     # OSError, or http.client's own (a torn response)
                self.failures.append((port, repr(e)))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def more(self, n=50):
        start = dict(self.ok)
        try:
            wait_until(lambda: all(self.ok[p] - start[p] >= n for p in self.ports), timeout=60,
                       what=f"{n} more requests to every app")
        except AssertionError:
            raise AssertionError(f"{n} more requests: ok {self.ok} (from {start}), failures "
                                 f"{self.failures[:5]}, threads alive "
                                 f"{sum(t.is_alive() for t in self.threads)}") from None


def reloads_done(p, n):
    try:
        wait_until(lambda: p.output().count("reload finished") >= n, timeout=60, what=f"reload {n} finished")
    except AssertionError:
        raise AssertionError(f"reload {n} did not finish; the master's log:\n" + "\n".join(
            ln for ln in p.output().splitlines() if "] " in ln and "GET /" not in ln)) from None


def test_hup_restarts_only_the_app_that_changed(tmp_path, procs):
    conf = tmp_path / "c"
    conf.mkdir()
    pa, pb = free_port(), free_port()
    write_app(conf, "a", pa)
    write_app(conf, "b", pb)
    p = serve(procs, conf)
    wait_for_port(pa, proc=p.p)
    wait_for_port(pb, proc=p.p)
    a0 = wait_until(lambda: settled(p.pid, "a", 2), timeout=30, what="app a up")
    b0 = wait_until(lambda: settled(p.pid, "b", 2), timeout=30, what="app b up")
    with Stream([pa, pb]) as s:
        s.more()
        # (1) nothing changed: every app keeps its app master and its workers
        os.kill(p.pid, signal.SIGHUP)
        reloads_done(p, 1)
        s.more()
        assert app_tree(p.pid, "a") == a0 and app_tree(p.pid, "b") == b0
        out = p.output()
        assert "app a: unchanged" in out and "app b: unchanged" in out

        # (2) b's code changed: b restarts with its new code, a is untouched
        (conf / "b" / "app.py").write_text(APP.format(version="v2", extra=""))
        os.kill(p.pid, signal.SIGHUP)
        reloads_done(p, 2)
        wait_until(lambda: get(pb)[1].startswith(b"v2"), timeout=30, what="b serves v2")
        b1 = wait_until(lambda: settled(p.pid, "b", 2), timeout=30, what="old b retired")
        s.more()
        assert set(b1).isdisjoint(b0) and not any(alive(x) for x in b0)
        assert app_tree(p.pid, "a") == a0
        out = p.output()
        assert out.count("app a: unchanged") == 2
        assert "app b: code changed (app.py); reloading" in out

        # (3) b's ini changed (processes 2 -> 3): b restarts, a is untouched
        (conf / "b.ini").write_text((conf / "b.ini").read_text().replace("processes = 2", "processes = 3"))
        os.kill(p.pid, signal.SIGHUP)
        reloads_done(p, 3)
        b2 = wait_until(lambda: settled(p.pid, "b", 3), timeout=30, what="b with 3 workers")
        s.more()
        assert set(b2).isdisjoint(b1)
        assert app_tree(p.pid, "a") == a0
        out = p.output()
        assert out.count("app a: unchanged") == 3
        assert "app b: config changed (processes); reloading" in out

        # (4) `touch b.ini` forces b's reload with nothing else changed (documented escape hatch)
        st = os.stat(conf / "b.ini")
        os.utime(conf / "b.ini", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        os.kill(p.pid, signal.SIGHUP)
        reloads_done(p, 4)
        b3 = wait_until(lambda: (t := settled(p.pid, "b", 3)) and set(t).isdisjoint(b2) and t,
                        timeout=30, what="b reloaded by touch")
        s.more()
        assert app_tree(p.pid, "a") == a0
        assert "app b: code changed (b.ini); reloading" in p.output()
    assert s.failures == []
    assert b3
    assert app_tree(p.pid, "a") == a0
    os.kill(p.pid, signal.SIGQUIT)
    assert p.p.wait(30) == 0


def test_hup_stops_a_removed_app_and_starts_an_added_one(tmp_path, procs):
    conf = tmp_path / "c"
    conf.mkdir()
    pa, pc = free_port(), free_port()
    sock = str(tmp_path / "b.sock")
    write_app(conf, "a", pa)
    (conf / "b").mkdir()
    (conf / "b" / "app.py").write_text(APP.format(version="b", extra=""))
    (conf / "b.ini").write_text(f"[uwsgi]\nsocket = {sock}\nchdir = {conf / 'b'}\nwsgi-file = app.py\n"
                                "vacuum = true\n")
    p = serve(procs, conf)
    wait_for_port(pa, proc=p.p)
    a0 = wait_until(lambda: settled(p.pid, "a", 2), timeout=30, what="app a up")
    b0 = wait_until(lambda: settled(p.pid, "b", 1), timeout=30, what="app b up")
    assert os.path.exists(sock)
    (conf / "b.ini").unlink()
    write_app(conf, "c", pc, version="c")
    with Stream([pa]) as s:
        s.more()
        os.kill(p.pid, signal.SIGHUP)
        reloads_done(p, 1)
        wait_until(lambda: get(pc)[1].startswith(b"c "), timeout=30, what="added app c answers")
        wait_until(lambda: not any(alive(x) for x in b0) and not os.path.exists(sock), timeout=30,
                   what="removed app b stopped, its socket file unlinked")
        s.more()
    assert s.failures == []
    assert app_tree(p.pid, "a") == a0 and app_tree(p.pid, "b") == {}
    probe = socket.socket(socket.AF_UNIX)
    try:
        assert probe.connect_ex(sock) != 0
    finally:
        probe.close()
    out = p.output()
    assert "app a: unchanged" in out and "app b: removed; stopping it" in out and "app c: added; starting it" in out


def test_supervisorctl_reload_with_nothing_changed_keeps_every_process(tmp_path, procs):
    """`pyfront ctl reload` (supervisor.restart() over XML-RPC, as `supervisorctl reload`) is the
    same reload as HUP: nothing changed, so the app and the program keep their processes."""
    import subprocess
    import sys

    from tests.conftest import ROOT
    conf = tmp_path / "c"
    conf.mkdir()
    pa, ctl = free_port(), free_port()
    write_app(conf, "a", pa)
    (conf / "programs.conf").write_text(f"[program:sleeper]\ncommand = sleep 1003\nstartsecs = 0\n"
                                        f"[inet_http_server]\nport = 127.0.0.1:{ctl}\n"
                                        f"[supervisorctl]\nserverurl = http://127.0.0.1:{ctl}\n")
    p = serve(procs, conf)
    wait_for_port(pa, proc=p.p)
    wait_for_port(ctl, proc=p.p)
    a0 = wait_until(lambda: settled(p.pid, "a", 2), timeout=30, what="app a up")
    sleeper = wait_until(lambda: [c for c in children(p.pid) if "sleep 1003" in title(c)], what="program up")
    r = subprocess.run([sys.executable, "-m", "pyfront", "ctl", "-c", str(conf), "reload"], capture_output=True,
                       text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    reloads_done(p, 1)
    assert get(pa)[0] == 200
    assert app_tree(p.pid, "a") == a0
    assert [c for c in children(p.pid) if "sleep 1003" in title(c)] == sleeper
    out = p.output()
    assert "app a: unchanged" in out and "program group sleeper: unchanged" in out
