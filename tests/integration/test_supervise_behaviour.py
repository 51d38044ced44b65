"""Supervision behaviour on real processes, driven through the control API."""
import base64
import os
import signal
import socket
import subprocess
import sys
import time
import xmlrpc.client

import pytest

from tests.integration.supervise_util import ctl, start_pyfront, state_of, wait_status, write_conf

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def _proxy(port, user=None, pw=None):
    auth = f"{user}:{pw}@" if user else ""
    return xmlrpc.client.ServerProxy(f"http://{auth}127.0.0.1:{port}/RPC2")


def _wait(pred, timeout=20.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached within {timeout}s")


def _setup(tmp_path, procs, programs, **kw):
    d, run = str(tmp_path / "conf"), str(tmp_path / "run")
    conf, port = write_conf(d, run, programs, **kw)
    start_pyfront(procs, d, run, port)
    return conf, port, run


def test_crash_loop_goes_fatal_with_supervisors_description(tmp_path, procs):
    conf, port, run = _setup(tmp_path, procs, """
[program:crash]
command = /bin/sh -c "echo 'cannot bind 0.0.0.0:80' >&2; exit 2"
startsecs = 1
startretries = 2
""")
    out = wait_status(conf, lambda o: state_of(o, "crash") == "FATAL")
    assert "Exited too quickly (process log may have details)" in out
    info = _proxy(port).supervisor.getProcessInfo("crash")
    assert (info["statename"], info["state"], info["spawnerr"]) == (
        "FATAL", 200, "Exited too quickly (process log may have details)")
    log = open(os.path.join(run, "supervisord.log")).read()
    assert log.count("exited: crash (exit status 2; not expected)") == 3
    assert "gave up: crash entered FATAL state, too many start retries too quickly" in log
    # pyfront's richer view names the concrete cause and the last stderr line
    details = {d["name"]: d for d in _proxy(port).pyfront.getAllProcessDetails()}
    assert "cannot bind 0.0.0.0:80" in details["crash"]["cause"]


def test_kill_9_restarts_with_a_new_pid(tmp_path, procs):
    conf, port, run = _setup(tmp_path, procs, """
[program:svc]
command = sleep 1000
startsecs = 0
autorestart = true
""")
    s = _proxy(port)
    old = _wait(lambda: s.supervisor.getProcessInfo("svc")["pid"], what="first pid")
    os.kill(old, signal.SIGKILL)
    new = _wait(lambda: (i := s.supervisor.getProcessInfo("svc"))["statename"] == "RUNNING"
                and i["pid"] != old and i["pid"], what="new pid")
    assert new != old and _alive(new)
    log = open(os.path.join(run, "supervisord.log")).read()
    assert "exited: svc (terminated by SIGKILL; not expected)" in log


def test_stop_removes_grandchild_that_ignores_sigterm(tmp_path, procs):
    script = tmp_path / "forker.py"
    script.write_text(
        "import os, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"           # a grandchild escaping the process group too
        "        os.write(1, b'grandchild %d\\n' % os.getpid())\n"
        "        time.sleep(1000)\n"
        "    time.sleep(1000)\n"
        "os.write(1, b'child %d\\n' % pid)\n"
        "time.sleep(1000)\n")
    conf, port, run = _setup(tmp_path, procs, f"""
[program:forker]
command = {sys.executable} {script}
startsecs = 1
stopwaitsecs = 1
stdout_logfile = {{run}}/forker.out
""")
    s = _proxy(port)
    _wait(lambda: s.supervisor.getProcessInfo("forker")["statename"] == "RUNNING", what="RUNNING")
    out = _wait(lambda: (t := open(os.path.join(run, "forker.out")).read()).count("\n") >= 2 and t,
                what="both pids printed")
    pids = [int(line.split()[1]) for line in out.splitlines()] + [s.supervisor.getProcessInfo("forker")["pid"]]
    assert all(_alive(p) for p in pids)
    assert s.supervisor.stopProcess("forker") is True
    _wait(lambda: not any(_alive(p) for p in pids), timeout=10, what="whole tree gone")
    log = open(os.path.join(run, "supervisord.log")).read()
    assert "killing 'forker'" in log and "with SIGKILL" in log


def test_log_rotation_at_maxbytes_keeps_backups(tmp_path, procs):
    conf, port, run = _setup(tmp_path, procs, f"""
[program:chatty]
command = {sys.executable} -c "import sys; [sys.stdout.write('x' * 99 + chr(10)) for _ in range(300)]; import time; time.sleep(1000)"
startsecs = 0
stdout_logfile = {{run}}/chatty.log
stdout_logfile_maxbytes = 5KB
stdout_logfile_backups = 2
""")
    base = os.path.join(run, "chatty.log")
    _wait(lambda: os.path.exists(base + ".2"), what="two backups")
    time.sleep(0.5)
    assert not os.path.exists(base + ".3")
    for p in (base + ".1", base + ".2"):
        assert os.path.getsize(p) == 5120
    assert os.path.getsize(base) < 5120


def test_wrong_password_is_refused(tmp_path, procs):
    conf, port, run = _setup(tmp_path, procs, """
[program:p]
command = sleep 1000
""", user="admin", password="s3cret-long")
    wait_status(conf, lambda o: state_of(o, "p") == "RUNNING")
    exe = os.path.join(os.path.dirname(sys.executable), "supervisorctl")
    r = subprocess.run([exe, "-s", f"http://127.0.0.1:{port}", "-u", "admin", "-p", "wrong", "status"],
                       capture_output=True, text=True, timeout=30)
    assert "Server requires authentication" in r.stdout + r.stderr
    # raw HTTP: 401 with Supervisor's realm
    with socket.create_connection(("127.0.0.1", port)) as c:
        c.sendall(b"POST /RPC2 HTTP/1.0\r\nContent-Length: 0\r\n\r\n")
        head = c.recv(4096).decode()
    assert head.startswith("HTTP/1.1 401") and 'WWW-Authenticate: Basic realm="default"' in head
    assert _proxy(port, "admin", "s3cret-long").supervisor.getAPIVersion() == "3.0"


def test_bad_clients_do_not_delay_autorestart(tmp_path, procs):
    conf, port, run = _setup(tmp_path, procs, """
[program:svc]
command = sleep 1000
startsecs = 0
autorestart = true
""")
    s = _proxy(port)
    old = _wait(lambda: s.supervisor.getProcessInfo("svc")["pid"], what="first pid")
    # a client that connects and sends nothing, and one that sends half a request
    silent = socket.create_connection(("127.0.0.1", port))
    half = socket.create_connection(("127.0.0.1", port))
    half.sendall(b"POST /RPC2 HTTP/1.1\r\nContent-Length: 100000\r\n\r\n<?xml")
    os.kill(old, signal.SIGKILL)
    bad = 0
    for i in range(1000):
        with socket.create_connection(("127.0.0.1", port)) as c:
            body = b"<methodCall><methodName>%d</methodName><params><param><value><int>x" % i
            c.sendall(b"POST /RPC2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
                      + body)
            if c.recv(100).startswith(b"HTTP/1.1 400"):
                bad += 1
    assert bad == 1000
    # size caps answer instead of buffering without bound
    with socket.create_connection(("127.0.0.1", port)) as c:
        c.sendall(b"POST /RPC2 HTTP/1.1\r\nContent-Length: 50000000\r\n\r\n")
        assert c.recv(100).startswith(b"HTTP/1.1 413")
    with socket.create_connection(("127.0.0.1", port)) as c:
        c.sendall(b"GET / HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 70000 + b"\r\n")
        assert c.recv(100).startswith(b"HTTP/1.1 431")
    # the restart happened while the flood and the stalled clients were there
    new = _wait(lambda: (i := s.supervisor.getProcessInfo("svc"))["pid"] not in (0, old) and i["pid"],
                what="restarted")
    assert _alive(new)
    log = open(os.path.join(run, "supervisord.log")).read()
    spawn_line = f"spawned: 'svc' with pid {new}"
    assert spawn_line in log
    silent.close()
    half.close()


def test_logtail_streams_like_tail_f(tmp_path, procs):
    conf, port, run = _setup(tmp_path, procs, f"""
[program:ticker]
command = {sys.executable} -u -c "import time,itertools; [print('tick', i, flush=True) or time.sleep(0.1) for i in itertools.count()]"
startsecs = 0
stdout_logfile = {{run}}/ticker.log
""")
    wait_status(conf, lambda o: state_of(o, "ticker") == "RUNNING")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(b"GET /logtail/ticker HTTP/1.1\r\nHost: x\r\n\r\n")
        buf = b""
        while buf.count(b"tick") < 15:
            buf += c.recv(4096)
    head = buf.split(b"\r\n\r\n")[0].decode()
    assert "Transfer-Encoding: chunked" in head and "text/plain;charset=utf-8" in head
    # the real supervisorctl's tail -f uses this endpoint
    exe = os.path.join(os.path.dirname(sys.executable), "supervisorctl")
    p = subprocess.Popen([exe, "-c", conf, "tail", "-f", "ticker"], stdout=subprocess.PIPE, text=True)
    try:
        first = p.stdout.readline()
        lines = [p.stdout.readline() for _ in range(5)]
    finally:
        p.kill()
        p.wait()
    assert first.startswith("==> Press Ctrl-C to exit <==")
    assert all("tick" in ln for ln in lines[1:])
    # pyfront ctl: tail -f and maintail -f print the same way
    for args, needle in ((["tail", "-f", "ticker"], "tick"), (["maintail", "-f"], "spawned: 'ticker'")):
        p = subprocess.Popen([sys.executable, "-m", "pyfront", "ctl", "-c", conf, *args], stdout=subprocess.PIPE,
                             text=True)
        try:
            first = p.stdout.readline()
            got = [p.stdout.readline() for _ in range(2)]
        finally:
            p.kill()
            p.wait()
        assert first.startswith("==> Press Ctrl-C to exit <==")
        assert any(needle in ln for ln in got), got


def test_unix_socket_server_with_real_supervisorctl(tmp_path, procs):
    d, run = str(tmp_path / "conf"), str(tmp_path / "run")
    os.makedirs(d)
    sock = str(tmp_path / "run" / "ctl.sock")
    with open(os.path.join(d, "programs.conf"), "w") as f:
        f.write(f"""[unix_http_server]
file = {sock}
username = u
password = p

[program:p]
command = sleep 1000
startsecs = 0
""")
    from tests.conftest import wait_for_unix
    p = procs([sys.executable, "-m", "pyfront", "serve", d])
    wait_for_unix(sock, proc=p.p)
    assert oct(os.stat(sock).st_mode & 0o777) == "0o700"
    exe = os.path.join(os.path.dirname(sys.executable), "supervisorctl")
    _wait(lambda: "RUNNING" in subprocess.run([exe, "-s", f"unix://{sock}", "-u", "u", "-p", "p", "status"],
                                               capture_output=True, text=True).stdout, what="RUNNING over unix")
    r = subprocess.run([exe, "-s", f"unix://{sock}", "-u", "u", "-p", "p", "stop", "p"], capture_output=True, text=True)
    assert r.stdout == "p: stopped\n"


def test_send_process_stdin_reaches_the_program(tmp_path, procs):
    conf, port, run = _setup(tmp_path, procs, f"""
[program:echo]
command = cat
startsecs = 0
stdout_logfile = {{run}}/echo.log
""")
    s = _proxy(port)
    _wait(lambda: s.supervisor.getProcessInfo("echo")["statename"] == "RUNNING", what="RUNNING")
    assert s.supervisor.sendProcessStdin("echo", "hello stdin\n") is True
    _wait(lambda: "hello stdin" in open(os.path.join(run, "echo.log")).read(), what="echoed")
    # pyfront ctl fg: typed lines go to the program, its output comes back
    r = subprocess.run([sys.executable, "-m", "pyfront", "ctl", "-s", f"http://127.0.0.1:{port}", "fg", "echo"],
                       input="via fg\n", capture_output=True, text=True, timeout=30)
    assert r.stdout.startswith("==> Press Ctrl-C to exit <==") and r.stdout.rstrip().endswith("Exiting foreground")
    _wait(lambda: "via fg" in open(os.path.join(run, "echo.log")).read(), what="fg input echoed")
    s.supervisor.stopProcess("echo")
    with pytest.raises(xmlrpc.client.Fault) as e:
        s.supervisor.sendProcessStdin("echo", "late\n")
    assert e.value.faultCode == 70
