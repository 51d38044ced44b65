"""Process model of `pyfront app`: threads, processes, harakiri, max-requests, kill -9, reload."""
import os
import signal
import threading
import time

from tests.conftest import free_port
from tests.integration.app_support import (alive, http_request, start_app, wait_until,
                                           write_test_app)


def http_app(procs, tmp_path, extra: str = "", processes=2, threads=2):
    appfile = write_test_app(tmp_path)
    port = free_port()
    addr = f"127.0.0.1:{port}"
    app = start_app(procs, tmp_path, f"""
        http-socket = {addr}
        wsgi-file = {appfile}
        processes = {processes}
        threads = {threads}
        master = true
        {extra}
    """, addr)
    return app, port


def get(port, path, **kw):
    return http_request(port, "GET", path, **kw)


def test_processes_and_threads_serve_concurrently(procs, tmp_path):
    app, port = http_app(procs, tmp_path)
    wait_until(lambda: len(app.worker_pids()) == 2, what="2 workers")
    rdir = tmp_path / "rv"
    rdir.mkdir()
    results = []

    def one():
        results.append(get(port, f"/rendezvous?n=4&dir={rdir}"))

    ts = [threading.Thread(target=one) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    bodies = [r[2].decode().split() for r in results]
    assert len(bodies) == 4 and all(r[0] == 200 for r in results)
    # all four requests were inside the app at the same time...
    assert all(b[2] == "overlap" for b in bodies), bodies
    # ... on 2 processes x 2 threads
    assert len({b[0] for b in bodies}) == 2
    assert len({(b[0], b[1]) for b in bodies}) == 4
    assert {int(b[0]) for b in bodies} == set(app.worker_pids())


def test_process_titles(procs, tmp_path):
    app, port = http_app(procs, tmp_path, processes=2, threads=1)
    with open(f"/proc/{app.pid}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[0].startswith(b"pyfront: app master app")
    titles = set()
    for pid in app.worker_pids():
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            titles.add(f.read().split(b"\0")[0].decode())
    assert titles == {"pyfront: app worker 1 (app)", "pyfront: app worker 2 (app)"}


def test_harakiri_logs_request_and_stack_then_respawns(procs, tmp_path):
    app, port = http_app(procs, tmp_path, "harakiri = 1", processes=1, threads=1)
    before = app.worker_pids()
    try:
        status, _, _ = get(port, "/sleep?s=30", timeout=20)
    except (ConnectionError, OSError) as e:      # http-socket: the worker died mid-request
        status = type(e).__name__
    assert status != 200
    log = app.wait_log("killed by harakiri")
    assert "HARAKIRI ON WORKER 1" in log
    assert "GET /sleep?s=30" in log
    assert "stuck_in_the_app" in log          # the Python stack of the stuck thread
    wait_until(lambda: app.worker_pids() and app.worker_pids() != before, what="respawn")
    app.wait_log("spawned pyfront worker 1")
    status, _, body = get(port, "/pid")
    assert status == 200


def test_max_requests_recycles_one_at_a_time_without_errors(procs, tmp_path):
    app, port = http_app(procs, tmp_path, "max-requests = 15\ndisable-logging = true", processes=2, threads=1)
    pids = set()
    # Bounded by count and time; stops once workers were recycled twice. A recycle takes
    # the master ~1 s (spawn, load, ready, graceful stop), and 3000 requests can take less.
    deadline = time.monotonic() + 60
    for i in range(100000):
        if time.monotonic() > deadline:
            break
        status, _, body = get(port, "/pid")
        assert status == 200, (i, status)
        pids.add(int(body.split()[0]))
        if len(pids) >= 4:
            break
    assert len(pids) >= 4                      # workers were recycled...
    log = app.wait_log("retiring it gracefully")
    # ... each time the replacement was accepting before the old one was asked to stop
    assert "max-requests reached: replacement pid" in log
    assert "DAMN" not in log


def test_kill_9_worker_is_respawned(procs, tmp_path):
    app, port = http_app(procs, tmp_path, processes=2, threads=1)
    pids = wait_until(lambda: len(app.worker_pids()) == 2 and app.worker_pids(), what="2 workers")
    os.kill(pids[0], signal.SIGKILL)
    new = wait_until(lambda: (len(app.worker_pids()) == 2 and pids[0] not in app.worker_pids()
                              and app.worker_pids()), what="respawned worker")
    assert pids[1] in new
    app.wait_log("died, killed by signal 9")
    for _ in range(10):
        assert get(port, "/pid")[0] == 200


def test_kill_9_master_leaves_no_worker(procs, tmp_path):
    app, port = http_app(procs, tmp_path, processes=2, threads=2)
    pids = wait_until(lambda: len(app.worker_pids()) == 2 and app.worker_pids(), what="2 workers")
    os.kill(app.pid, signal.SIGKILL)
    wait_until(lambda: not any(alive(p) for p in pids), timeout=10, what="workers to exit with their master")


def test_sigterm_graceful_stop_finishes_inflight_request(procs, tmp_path):
    app, port = http_app(procs, tmp_path, processes=1, threads=1)
    pids = app.worker_pids()
    result = []
    t = threading.Thread(target=lambda: result.append(get(port, "/sleep?s=1")))
    t.start()
    app.wait_log("spawned")
    time.sleep(0.3)          # let the request reach the app (not an assertion)
    os.kill(app.pid, signal.SIGTERM)
    t.join(20)
    assert result and result[0][0] == 200 and result[0][2] == b"woke"
    assert app.proc.p.wait(20) == 0
    assert not any(alive(p) for p in pids)


def test_sigint_fast_stop(procs, tmp_path):
    app, port = http_app(procs, tmp_path, processes=2, threads=1)
    pids = app.worker_pids()
    os.kill(app.pid, signal.SIGINT)
    app.proc.p.wait(10)
    wait_until(lambda: not any(alive(p) for p in pids), timeout=5, what="workers gone")


def test_sighup_reload_serves_every_request(procs, tmp_path):
    app, port = http_app(procs, tmp_path, "disable-logging = true", processes=2, threads=1)
    old = set(app.worker_pids())
    errors, done = [], []
    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            try:
                st, _, _ = get(port, "/pid", timeout=10)
                (done if st == 200 else errors).append(st)
            except OSError as e:
                errors.append(repr(e))

    ts = [threading.Thread(target=hammer) for _ in range(2)]
    for t in ts:
        t.start()
    wait_until(lambda: len(done) > 20, what="traffic")
    os.kill(app.pid, signal.SIGHUP)
    wait_until(lambda: (set(app.worker_pids()) & old) == set() and len(app.worker_pids()) == 2,
               timeout=30, what="new generation only")
    n = len(done)
    wait_until(lambda: len(done) > n + 20, what="traffic after reload")
    stop.set()
    for t in ts:
        t.join(20)
    assert errors == []
    app.wait_log("generation 1 is accepting")


def test_graceful_stop_deadline_kills_a_stuck_worker_group(procs, tmp_path):
    app, port = http_app(procs, tmp_path, "reload-mercy = 1\nworker-reload-mercy = 1", processes=1, threads=1)
    pids = app.worker_pids()
    t = threading.Thread(target=lambda: _swallow(lambda: get(port, "/sleep?s=60", timeout=30)))
    t.daemon = True
    t.start()
    time.sleep(0.3)          # let the request reach the app (not an assertion)
    os.kill(app.pid, signal.SIGTERM)
    app.proc.p.wait(30)      # bounded: reload-mercy 1s, then SIGKILL
    assert not any(alive(p) for p in pids)
    log = app.log()
    assert "still busy after worker-reload-mercy" in log or "SIGKILL" in log


def _swallow(fn):
    try:
        fn()
    except Exception:
        pass
