"""Small pieces of the master: pid file, run dir, listen addresses, error log lines, titles."""
import os
import re
import socket
import subprocess
import sys

import pytest

from pyfront import proctitle
from pyfront.errorlog import ErrorLog
from pyfront.listeners import ListenError, ListenPlan, Listeners, open_listener, parse_address
from pyfront.pidfile import PidFileError, default_run_dir, read_pid, remove_pid, running_master, write_pid
from pyfront.signal_cmd import _pid_from_broken


def test_pid_file_lifecycle(tmp_path):
    p = tmp_path / "run" / "x.pid"
    write_pid(str(p), 4242)
    assert p.read_text() == "4242\n"
    assert read_pid(str(p)) == 4242
    remove_pid(str(p), 1)            # not ours: kept
    assert p.exists()
    remove_pid(str(p), 4242)
    assert not p.exists()
    remove_pid(str(p), 4242)         # already gone: fine


def test_pid_file_errors_are_nginx_worded(tmp_path):
    with pytest.raises(PidFileError, match=r'open\(\) ".*/none.pid" failed \(2: No such file or directory\)'):
        read_pid(str(tmp_path / "none.pid"))
    bad = tmp_path / "bad.pid"
    bad.write_text("abc\n")
    with pytest.raises(PidFileError, match=r'invalid PID number "abc" in '):
        read_pid(str(bad))


def test_running_master_ignores_stale_and_foreign_pids(tmp_path):
    p = tmp_path / "x.pid"
    write_pid(str(p), 2 ** 22 + 12345)   # beyond pid_max on default kernels: no such process
    assert running_master(str(p)) is None
    other = subprocess.Popen(["sleep", "30"])   # alive, but not a pyfront master (pid reused)
    try:
        write_pid(str(p), other.pid)
        assert running_master(str(p)) is None
    finally:
        other.kill()
        other.wait()
    master = subprocess.Popen([sys.executable, "-c", "import setproctitle, time; "
                               "setproctitle.setproctitle('pyfront: master process pyfront serve x'); "
                               "print(flush=True); time.sleep(30)"], stdout=subprocess.PIPE)
    try:
        master.stdout.readline()
        write_pid(str(p), master.pid)
        assert running_master(str(p)) == master.pid
    finally:
        master.kill()
        master.wait()


def test_default_run_dir(tmp_path):
    assert default_run_dir(str(tmp_path)) == str(tmp_path / "run")
    bundled = default_run_dir(str(tmp_path), bundled=True)
    assert bundled != str(tmp_path / "run") and f"pyfront-{os.getuid()}" in bundled
    assert bundled != default_run_dir(str(tmp_path / "other"), bundled=True)


def test_parse_address():
    assert parse_address("127.0.0.1:80") == (socket.AF_INET, ("127.0.0.1", 80))
    assert parse_address("*:80") == (socket.AF_INET, ("0.0.0.0", 80))
    assert parse_address("[::1]:8080") == (socket.AF_INET6, ("::1", 8080))
    assert parse_address("unix:/run/x.sock") == (socket.AF_UNIX, "/run/x.sock")
    with pytest.raises(ListenError):
        parse_address("nonsense")


def test_listeners_keep_sockets_across_ensure_and_close_removed(tmp_path):
    ls = Listeners()
    a = ListenPlan("127.0.0.1:0")
    u = ListenPlan(f"unix:{tmp_path}/s.sock")
    opened = ls.ensure((a, u), 2)
    assert len(opened) == 2
    fd = ls.socks[("127.0.0.1:0", -1)].fileno()
    assert ls.ensure((a, u), 2) == []                 # unchanged: same sockets
    assert ls.socks[("127.0.0.1:0", -1)].fileno() == fd
    ls.close_except({("127.0.0.1:0", -1)})
    assert not (tmp_path / "s.sock").exists()         # removed unix listener is unlinked
    ls.close_all()


def test_reuseport_keys_one_per_worker():
    keys = Listeners.keys_for((ListenPlan("127.0.0.1:80", reuseport=True), ListenPlan("127.0.0.1:81")), 3)
    assert keys == [("127.0.0.1:80", 0), ("127.0.0.1:80", 1), ("127.0.0.1:80", 2), ("127.0.0.1:81", -1)]


def test_unix_listener_in_use_is_refused(tmp_path):
    path = tmp_path / "busy.sock"
    holder = socket.socket(socket.AF_UNIX)
    holder.bind(str(path))
    holder.listen()
    with pytest.raises(ListenError, match=r"bind\(\) to unix:.*busy.sock failed \(98: Address already in use\)"):
        open_listener(ListenPlan(f"unix:{path}"))
    holder.close()


def test_error_log_format_level_and_reopen(tmp_path):
    path = tmp_path / "e.log"
    log = ErrorLog(str(path), "notice")
    log("info", "hidden")
    log("alert", "worker process 12 exited on signal 9")
    os.rename(path, str(path) + ".1")
    log.reopen()
    log("notice", "after")
    old = (tmp_path / "e.log.1").read_text()
    assert re.fullmatch(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[alert\] (\d+)#\1: worker process 12 exited on signal 9\n",
                        old)
    assert "after" in path.read_text() and "hidden" not in old + path.read_text()
    log.close()


def test_titles():
    assert proctitle.master(["serve", "/etc/pyfront"]) == "pyfront: master process pyfront serve /etc/pyfront"
    assert proctitle.FRONT_WORKER == "pyfront: worker process"
    assert proctitle.app_master("blog") == "pyfront: app master blog"


def test_pid_directive_found_in_a_broken_nginx_conf(tmp_path):
    (tmp_path / "nginx.conf").write_text(
        "worker_processes 2;\n# pid /commented;\nhttp {\n  server { pid /inner; }\n}\npid 'run/p.pid';\nbroken {\n")
    assert _pid_from_broken(str(tmp_path)) == str(tmp_path / "run" / "p.pid")
    (tmp_path / "nginx.conf").write_text("http { }\n")
    assert _pid_from_broken(str(tmp_path)) is None
