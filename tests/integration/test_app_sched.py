"""sched-batch: app workers run under SCHED_BATCH unless told otherwise or started under another policy."""
import os
import shutil

import pytest

from tests.conftest import free_port
from tests.integration.app_support import http_request, start_app, wait_until, write_test_app


def policies(pid: int) -> set[int]:
    """The scheduling policy of every thread of pid."""
    return {os.sched_getscheduler(int(t)) for t in os.listdir(f"/proc/{pid}/task")}


def serve(procs, tmp_path, extra: str = "", prefix=()):
    port = free_port()
    addr = f"127.0.0.1:{port}"
    app = start_app(procs, tmp_path, f"""
        http-socket = {addr}
        wsgi-file = {write_test_app(tmp_path)}
        threads = 3
        {extra}
    """, addr, prefix=prefix)
    assert http_request(port, "GET", "/pid")[0] == 200     # the worker is serving
    wait_until(lambda: len(app.worker_pids()) == 1, what="1 worker")
    (worker,) = app.worker_pids()
    wait_until(lambda: len(os.listdir(f"/proc/{worker}/task")) >= 4, what="3 serving threads")
    return app, worker


def test_workers_default_to_sched_batch_master_does_not(procs, tmp_path):
    app, worker = serve(procs, tmp_path)
    assert policies(worker) == {os.SCHED_BATCH}
    assert os.sched_getparam(worker).sched_priority == 0
    assert policies(app.pid) == {os.SCHED_OTHER}     # the master is not a request server


def test_sched_batch_false_keeps_the_default_policy(procs, tmp_path):
    _, worker = serve(procs, tmp_path, "sched-batch = false")
    assert policies(worker) == {os.SCHED_OTHER}


def test_a_policy_chosen_by_the_operator_is_kept(procs, tmp_path):
    chrt = shutil.which("chrt")
    if chrt is None:
        pytest.skip("chrt (util-linux) not installed")
    _, worker = serve(procs, tmp_path, prefix=(chrt, "--idle", "0"))
    assert policies(worker) == {os.SCHED_IDLE}
    assert os.getpriority(os.PRIO_PROCESS, worker) == 0
