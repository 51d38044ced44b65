"""The master (arbiter + front pool) with a toy Python front worker: process model and signals.

These run the real Arbiter, FrontPool and Listeners in a real process tree; only the
front worker's body is a small Python accept loop (master_toy.py), so the master's
behaviour is tested independently of the C worker. test_master_serve.py runs the same
scenarios through `pyfront serve` with the real front worker.
"""
import http.client
import json
import os
import signal
import socket
import sys
import threading
import time

import pytest

from tests.conftest import free_port

HERE = os.path.dirname(os.path.abspath(__file__))
TOY = os.path.join(HERE, "master_toy.py")


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def title(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:   # a zombie is not alive for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(cond, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def get(port, path="/info", host="127.0.0.1", timeout=10.0):
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


class Master:
    def __init__(self, tmp_path, procs, **plan):
        self.tmp = tmp_path
        self.port = plan.pop("port", None) or free_port()
        confdir = tmp_path / "conf"
        confdir.mkdir(exist_ok=True)
        self.plan = {"confdir": str(confdir), "pid": str(tmp_path / "run" / "pyfront.pid"),
                     "workers": 2, "listens": [{"address": f"127.0.0.1:{self.port}"}],
                     "error_log": str(tmp_path / "error.log"), "tag": "v1"}
        self.plan.update(plan)
        self.plan_path = tmp_path / "plan.json"
        self.write()
        self.proc = procs([sys.executable, TOY, str(self.plan_path)])
        self.pid = self.proc.pid
        line = self.proc.p.stdout.readline()
        assert line.strip() == b"READY", line + self.proc.p.stdout.read()

    def write(self, **changes):
        self.plan.update(changes)
        self.plan_path.write_text(json.dumps(self.plan))

    def workers(self):
        return [p for p in children(self.pid) if title(p) == "pyfront: worker process"]

    def log(self):
        try:
            return open(self.plan["error_log"]).read()
        except OSError:
            return ""

    def signal(self, sig):
        os.kill(self.pid, sig)


@pytest.fixture
def master(tmp_path, procs):
    return lambda **plan: Master(tmp_path, procs, **plan)


def test_worker_count_and_titles(master):
    m = master(workers=3)
    ws = wait_until(lambda: len(m.workers()) == 3 and m.workers(), what="3 workers")
    assert len(children(m.pid)) == 3
    assert title(m.pid).startswith("pyfront: master process pyfront serve ")
    assert open(m.plan["pid"]).read() == f"{m.pid}\n"
    pids = {int(get(m.port)[1].split()[0]) for _ in range(30)}
    assert pids <= set(ws)


def test_kill9_worker_is_respawned_while_requests_flow(master):
    m = master(workers=2)
    victim = wait_until(lambda: len(m.workers()) == 2 and m.workers()[0], what="workers")
    results = {"ok": 0, "fail": 0}
    stop = threading.Event()

    def client():
        while not stop.is_set():
            try:
                status, _ = get(m.port, timeout=5)
                results["ok" if status == 200 else "fail"] += 1
            except OSError:
                results["fail"] += 1

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    wait_until(lambda: results["ok"] > 50, what="traffic")
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: victim not in m.workers() and len(m.workers()) == 2, what="respawn")
    before = results["ok"]
    wait_until(lambda: results["ok"] > before + 50, what="traffic after respawn")
    stop.set()
    for t in threads:
        t.join()
    # Only a request the victim itself held can fail: at most one per client thread.
    assert results["fail"] <= len(threads)
    assert f"worker process {victim} exited on signal 9" in m.log()


def test_reload_under_load_has_zero_failures(master):
    m = master(workers=2)
    results = {"ok": 0, "fail": 0, "tags": set()}
    stop = threading.Event()

    def client():
        while not stop.is_set():
            try:
                status, body = get(m.port, timeout=5)
                results["ok" if status == 200 else "fail"] += 1
                results["tags"].add(body.split()[2])
            except OSError:
                results["fail"] += 1

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    old = set(wait_until(lambda: len(m.workers()) == 2 and m.workers(), what="workers"))
    for n in range(2, 5):
        m.write(tag=f"v{n}")
        m.signal(signal.SIGHUP)
        wait_until(lambda: (w := set(m.workers())) and len(w) == 2 and not (w & old), what="new generation")
        old = set(m.workers())
        wait_until(lambda: f"v{n}".encode() in results["tags"], what=f"v{n} served")
    stop.set()
    for t in threads:
        t.join()
    assert results["fail"] == 0
    assert results["ok"] > 100
    assert {b"v1", b"v4"} <= results["tags"]


def test_failed_reload_keeps_old_config(master):
    m = master(workers=1)
    w = wait_until(lambda: m.workers(), what="worker")
    m.write(invalid=True, tag="v2")
    m.signal(signal.SIGHUP)
    wait_until(lambda: "keeping the old configuration" in m.log(), what="reload failure logged")
    assert 'unknown directive "bogus" in ' in m.log()
    assert get(m.port)[1].split()[2] == b"v1"
    assert m.workers() == w
    m.write(invalid=False)          # fixed: the next reload goes through
    m.signal(signal.SIGHUP)
    wait_until(lambda: get(m.port)[1].split()[2] == b"v2", what="fixed reload")


def test_reload_adds_and_removes_listeners(master):
    m = master(workers=1)
    p2 = free_port()
    m.write(listens=[{"address": f"127.0.0.1:{p2}"}])
    m.signal(signal.SIGHUP)
    wait_until(lambda: _serves(p2), what="new port")

    def old_closed():
        try:
            socket.create_connection(("127.0.0.1", m.port), timeout=1).close()
            return False
        except ConnectionRefusedError:
            return True
    wait_until(old_closed, what="old port closed")


def _serves(port):
    try:
        return get(port, timeout=2)[0] == 200
    except OSError:
        return False


def test_sigquit_lets_a_large_transfer_finish(master):
    m = master(workers=1)
    wait_until(lambda: m.workers(), what="worker")
    s = socket.create_connection(("127.0.0.1", m.port))
    s.sendall(b"GET /big?8 HTTP/1.0\r\n\r\n")
    got = s.recv(65536)
    m.signal(signal.SIGQUIT)
    while True:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        got += chunk
    head, _, body = got.partition(b"\r\n\r\n")
    assert len(body) == 8 << 20
    assert m.proc.p.wait(30) == 0
    assert not os.path.exists(m.plan["pid"])


def test_sigterm_leaves_nothing_behind(master):
    m = master(workers=3)
    ws = wait_until(lambda: len(m.workers()) == 3 and m.workers(), what="workers")
    s = socket.create_connection(("127.0.0.1", m.port))
    s.sendall(b"GET /big?64 HTTP/1.0\r\n\r\n")   # a busy worker must not hold the stop up
    s.recv(100)
    m.signal(signal.SIGTERM)
    m.proc.p.wait(5)
    wait_until(lambda: not any(alive(p) for p in ws), timeout=5, what="workers gone")
    assert not os.path.exists(m.plan["pid"])
    s.close()


def test_sigint_is_a_fast_stop_too(master):
    m = master(workers=1)
    ws = wait_until(lambda: m.workers(), what="workers")
    m.signal(signal.SIGINT)
    m.proc.p.wait(5)
    wait_until(lambda: not any(alive(p) for p in ws), timeout=5, what="workers gone")


def test_sigusr1_reopens_the_error_log(master):
    m = master(workers=1)
    w = wait_until(lambda: m.workers(), what="worker")[0]
    log = m.plan["error_log"]
    os.rename(log, log + ".1")
    m.signal(signal.SIGUSR1)
    wait_until(lambda: os.path.exists(log), what="log reopened")
    os.kill(w, signal.SIGKILL)
    wait_until(lambda: f"worker process {w} exited on signal 9" in open(log).read(), what="line in new log")
    assert f"worker process {w} exited" not in open(log + ".1").read()


def test_second_master_on_same_pid_file_is_refused(master, tmp_path, procs):
    m = master(workers=1)
    wait_until(lambda: m.workers(), what="worker")
    other = tmp_path / "other"
    other.mkdir()
    p2 = free_port()
    plan = dict(m.plan, listens=[{"address": f"127.0.0.1:{p2}"}], error_log=None)
    (other / "plan.json").write_text(json.dumps(plan))
    pr = procs([sys.executable, TOY, str(other / "plan.json")])
    assert pr.p.wait(10) == 1
    out = pr.p.stdout.read().decode()
    assert f"another pyfront master (pid {m.pid}) is running" in out
    assert "Traceback" not in out
    assert open(m.plan["pid"]).read() == f"{m.pid}\n"


def test_busy_port_fails_boot_cleanly(tmp_path, procs):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    plan = {"confdir": str(tmp_path), "pid": str(tmp_path / "x.pid"), "workers": 1,
            "listens": [{"address": f"127.0.0.1:{port}"}]}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    pr = procs([sys.executable, TOY, str(tmp_path / "plan.json")])
    assert pr.p.wait(10) == 1
    out = pr.p.stdout.read().decode()
    assert "[emerg]" in out
    assert f"bind() to 127.0.0.1:{port} failed (98: Address already in use)" in out
    assert "Traceback" not in out
    assert not os.path.exists(tmp_path / "x.pid")
    busy.close()


def test_reuseport_gives_each_worker_its_own_socket(master):
    m = master(workers=2, listens=[{"address": "127.0.0.1:%d" % free_port(), "reuseport": True}])
    port = int(m.plan["listens"][0]["address"].rsplit(":", 1)[1])
    ws = wait_until(lambda: len(m.workers()) == 2 and m.workers(), what="workers")

    def listen_inodes(pid):
        out = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                t = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if t.startswith("socket:"):
                out.add(t)
        return out
    a, b = (listen_inodes(p) for p in ws)
    assert a and b and not (a & b)
    seen = {int(get(port)[1].split()[0]) for _ in range(60)}
    assert seen <= set(ws)
    os.kill(ws[0], signal.SIGKILL)
    wait_until(lambda: len(m.workers()) == 2 and ws[0] not in m.workers(), what="respawn")
    assert get(port)[0] == 200


def test_unix_listener_stale_file_is_replaced_and_removed_at_exit(master, tmp_path):
    path = tmp_path / "front.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()                       # the file stays: a crashed server's leftover
    m = master(workers=1, listens=[{"address": f"unix:{path}"}])
    wait_until(lambda: m.workers(), what="worker")
    c = socket.socket(socket.AF_UNIX)
    c.connect(str(path))
    c.sendall(b"GET /info HTTP/1.0\r\n\r\n")
    assert b"200 OK" in c.recv(4096)
    c.close()
    m.signal(signal.SIGQUIT)
    assert m.proc.p.wait(15) == 0
    assert not path.exists()


def test_cpu_affinity_pins_workers(master):
    m = master(workers=2, cpus=[[0], [1 % (os.cpu_count() or 1)]])
    ws = wait_until(lambda: len(m.workers()) == 2 and m.workers(), what="workers")
    sets = sorted(tuple(sorted(os.sched_getaffinity(p))) for p in ws)
    assert sets == sorted([(0,), (1 % (os.cpu_count() or 1),)])


def test_reload_whose_new_workers_crash_is_rolled_back(master):
    m = master(workers=2)
    old = set(wait_until(lambda: len(m.workers()) == 2 and m.workers(), what="workers"))
    m.write(tag="v2", mode="crash")
    m.signal(signal.SIGHUP)
    wait_until(lambda: "reload failed: new worker process" in m.log(), what="rollback logged")
    assert "keeping the old configuration" in m.log()
    time.sleep(1.5)   # past the respawn delay: the old generation must still be the one serving
    assert set(m.workers()) == old
    assert {get(m.port)[1].split()[2] for _ in range(10)} == {b"v1"}


def test_reload_with_a_busy_new_port_keeps_old_config(master):
    m = master(workers=1)
    w = wait_until(lambda: m.workers(), what="worker")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    p2 = busy.getsockname()[1]
    m.write(tag="v2", listens=[{"address": f"127.0.0.1:{m.port}"}, {"address": f"127.0.0.1:{p2}"}])
    m.signal(signal.SIGHUP)
    wait_until(lambda: "reload failed; keeping the old configuration" in m.log(), what="failure")
    assert f"bind() to 127.0.0.1:{p2} failed (98: Address already in use)" in m.log()
    assert get(m.port)[1].split()[2] == b"v1" and m.workers() == w
    busy.close()


def test_sigterm_kills_a_worker_that_ignores_it(master):
    m = master(workers=2, mode="ignore-term")
    ws = wait_until(lambda: len(m.workers()) == 2 and m.workers(), what="workers")
    m.signal(signal.SIGTERM)
    m.proc.p.wait(5)
    wait_until(lambda: not any(alive(p) for p in ws), timeout=5, what="workers gone")
    assert "did not exit in time, sending SIGKILL" in m.log()


def test_master_killed_takes_its_workers_along(master):
    m = master(workers=2)
    ws = wait_until(lambda: len(m.workers()) == 2 and m.workers(), what="workers")
    os.kill(m.pid, signal.SIGKILL)
    m.proc.p.wait(5)
    wait_until(lambda: not any(alive(p) for p in ws), timeout=5, what="orphans gone")


def test_sd_notify_ready_reloading_stopping(tmp_path, procs):
    """The systemd hook: READY=1 once booted, RELOADING=1/READY=1 around a reload, STOPPING=1."""
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(10)
    port = free_port()
    plan = {"confdir": str(tmp_path), "pid": str(tmp_path / "x.pid"), "workers": 1,
            "listens": [{"address": f"127.0.0.1:{port}"}]}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    env = dict(os.environ, NOTIFY_SOCKET=str(tmp_path / "notify.sock"))
    pr = procs([sys.executable, TOY, str(tmp_path / "plan.json")], env=env)
    assert notify.recv(100) == b"READY=1"
    os.kill(pr.pid, signal.SIGHUP)
    assert notify.recv(100) == b"RELOADING=1"
    assert notify.recv(100) == b"READY=1"
    os.kill(pr.pid, signal.SIGQUIT)
    assert notify.recv(100) == b"STOPPING=1"
    assert pr.p.wait(15) == 0


def test_reopen_right_after_fork_does_not_kill_new_workers(master):
    """USR1 forwarded to a worker forked an instant earlier (before it installed its own
    handler) must not kill it: the child ignores USR1/HUP until it takes over."""
    m = master(workers=2, mode="slow-start")
    for _ in range(3):
        ws = wait_until(lambda: len(m.workers()) == 2 and m.workers(), what="workers")
        os.kill(ws[0], signal.SIGKILL)
        for _ in range(10):
            m.signal(signal.SIGUSR1)
            time.sleep(0.005)
    wait_until(lambda: len(m.workers()) == 2, what="workers")
    assert "exited on signal 10" not in m.log()
