"""The supervision layer inside `pyfront serve`: SIGHUP applies only program changes, SIGUSR1
reopens program logs, and `pyfront ctl` explains FATAL programs and works with -s/-u/-p."""
import os
import signal
import subprocess
import sys
import time
import xmlrpc.client

import pytest

from tests.conftest import ROOT
from tests.integration.supervise_util import pyctl, start_pyfront, state_of, wait_status, write_conf

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def _wait(pred, timeout=20.0, what=""):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out: {what}")


PROGS = """
[program:keep]
command = sleep 1000
startsecs = 0

[program:edit]
command = sleep 1000
startsecs = 0
stdout_logfile = {run}/edit.log
"""


def test_sighup_restarts_changed_programs_only_and_usr1_reopens_logs(tmp_path, procs):
    d, run = str(tmp_path / "conf"), str(tmp_path / "run")
    conf, port = write_conf(d, run, PROGS)
    master = start_pyfront(procs, d, run, port)
    rpc = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}/RPC2")
    _wait(lambda: all(rpc.supervisor.getProcessInfo(n)["statename"] == "RUNNING" for n in ("keep", "edit")),
          what="both RUNNING")
    keep_pid = rpc.supervisor.getProcessInfo("keep")["pid"]
    edit_pid = rpc.supervisor.getProcessInfo("edit")["pid"]
    write_conf(d, run, PROGS.replace("[program:edit]\ncommand = sleep 1000", "[program:edit]\ncommand = sleep 1001")
               + "\n[program:added]\ncommand = sleep 1000\nstartsecs = 0\n", port=port)
    os.kill(master.pid, signal.SIGHUP)
    _wait(lambda: (i := rpc.supervisor.getProcessInfo("edit"))["pid"] not in (0, edit_pid)
          and i["statename"] == "RUNNING", what="edit restarted")
    _wait(lambda: rpc.supervisor.getProcessInfo("added")["statename"] == "RUNNING", what="added started")
    assert rpc.supervisor.getProcessInfo("keep")["pid"] == keep_pid       # unchanged: untouched

    # SIGUSR1: logrotate moved the file away; the program's next output goes to a new file
    log = os.path.join(run, "edit.log")
    os.rename(log, log + ".old")
    os.kill(master.pid, signal.SIGUSR1)
    _wait(lambda: os.path.exists(log), what="edit.log reopened")
    # and the same through `pyfront ctl reopen`
    os.rename(log, log + ".old2")
    assert pyctl(d, "reopen") == (0, "Reopened log files\n")
    _wait(lambda: os.path.exists(log), what="edit.log reopened by ctl")


def test_ctl_explains_fatal_programs_and_accepts_server_options(tmp_path, procs):
    d, run = str(tmp_path / "conf"), str(tmp_path / "run")
    conf, port = write_conf(d, run, f"""
[program:nofile]
command = /nonexistent/bin/app --serve
startretries = 0

[program:badcwd]
command = sleep 1000
directory = {tmp_path}/missing-dir
startretries = 0

[program:crashy]
command = /bin/sh -c "echo 'ImportError: No module named flask' >&2; exit 1"
startretries = 0

[program:noexec]
command = {tmp_path}/not-executable.sh
startretries = 0
""", user="ops", password="a-long-password")
    (tmp_path / "not-executable.sh").write_text("#!/bin/sh\nsleep 100\n")
    start_pyfront(procs, d, run, port)
    rc, out = _wait(lambda: (r := pyctl(d, "status")) and all(
        state_of(r[1], n) == "FATAL" for n in ("nofile", "badcwd", "crashy", "noexec")) and r, what="all FATAL")
    assert rc == 3
    lines = out.splitlines()

    def cause(name):
        i = next(i for i, ln in enumerate(lines) if ln.startswith(name + " "))
        return lines[i + 1].strip()
    assert cause("nofile").startswith("└ cause: can't find command '/nonexistent/bin/app'")
    assert "couldn't chdir to" in cause("badcwd") and "missing-dir" in cause("badcwd")
    assert cause("noexec").startswith("└ cause: command at '") and "is not executable" in cause("noexec")
    assert "exit status 1" in cause("crashy") and "ImportError: No module named flask" in cause("crashy")
    # -s/-u/-p instead of -c, and the wrong password
    base = [sys.executable, "-m", "pyfront", "ctl", "-s", f"http://127.0.0.1:{port}"]
    r = subprocess.run(base + ["-u", "ops", "-p", "a-long-password", "pid", "nofile"], capture_output=True,
                       text=True, cwd=ROOT)
    assert (r.returncode, r.stdout) == (7, "0\n")
    r = subprocess.run(base + ["-u", "ops", "-p", "nope", "status"], capture_output=True, text=True, cwd=ROOT)
    assert "Server requires authentication" in r.stdout and r.returncode != 0
    # the interactive shell: commands from stdin, then EOF
    r = subprocess.run([sys.executable, "-m", "pyfront", "ctl", "-c", d], input="status crashy\nversion\nquit\n",
                       capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert "crashy" in r.stdout and "FATAL" in r.stdout and "supervisor> " in r.stdout
    # nothing listening
    r = subprocess.run([sys.executable, "-m", "pyfront", "ctl", "-s", "unix:///nonexistent.sock", "status"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.stdout == "unix:///nonexistent.sock no such file\n" and r.returncode == 4


SEED = """  [program:webnote]
command=uwsgi --ini uwsgi.ini
directory = {d}
startsecs=0
stopwaitsecs=0
autostart=true
autorestart=true
# the seed's comments between keys
stdout_logfile={d}/supervisord.log
stderr_logfile={d}/supervisord.err

[supervisord]
loglevel=info

[inet_http_server]
port = :9001
username = admin
password = 123

[supervisorctl]
serverurl = http://127.0.0.1:9001
username = admin
password = 123

[rpcinterface:supervisor]supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
"""


def test_pyfront_check_reports_the_seeds_supervisor_traps(tmp_path):
    d = tmp_path / "seed"
    d.mkdir()
    (d / "bbs_supervisor.conf").write_text(SEED.format(d=d))
    (d / "uwsgi.ini").write_text("[uwsgi]\nsocket = app.sock\ndaemonize = /tmp/uwsgi.log\nwsgi-file = app.py\n")
    (d / "app.py").write_text("def application(environ, start_response):\n    return []\n")
    r = subprocess.run([sys.executable, "-m", "pyfront", "check", str(d)], capture_output=True, text=True, cwd=ROOT)
    conf = d / "bbs_supervisor.conf"
    err = r.stderr
    assert r.returncode == 0, err
    assert f"text after the section header [rpcinterface:supervisor] is ignored" in err and f"{conf}:25" in err
    assert f"stopwaitsecs=0 without killasgroup" in err and f"{conf}:5" in err
    assert "weak password" in err and f"{conf}:16" in err
    assert '"daemonize"' in err and f"{d / 'uwsgi.ini'}:3" in err


def test_front_workers_are_read_only_groups_in_status(tmp_path, procs):
    from tests.conftest import free_port
    d, run = str(tmp_path / "conf"), str(tmp_path / "run")
    conf, port = write_conf(d, run, "[program:p]\ncommand = sleep 1000\nstartsecs = 0\n")
    web = free_port()
    os.makedirs(os.path.join(d, "html"))
    os.makedirs(os.path.join(d, "logs"))      # nginx's default access/error log directory
    with open(os.path.join(d, "site.conf"), "w") as f:
        f.write(f"server {{\n    listen 127.0.0.1:{web};\n    root html;\n}}\n")
    start_pyfront(procs, d, run, port)
    rpc = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}/RPC2")
    _wait(lambda: any(i["group"] == "front" for i in rpc.supervisor.getAllProcessInfo()), what="front rows")
    out = wait_status(conf, lambda o: state_of(o, "front:worker-0") == "RUNNING" and state_of(o, "p") == "RUNNING")
    assert "front:worker-0" in out
    info = rpc.supervisor.getProcessInfo("front:worker-0")
    assert info["statename"] == "RUNNING" and info["pid"] > 0
    rc, text = pyctl(d, "stop", "front:worker-0")
    assert "front:worker-0" in text and "read-only" in text and rc == 1
    details = {f"{r['group']}:{r['name']}": r for r in rpc.pyfront.getAllProcessDetails()}
    assert details["front:worker-0"]["read_only"] is True and details["p:p"]["read_only"] is False


def test_reload_applies_a_new_password_to_the_control_server(tmp_path, procs):
    d, run = str(tmp_path / "conf"), str(tmp_path / "run")
    conf, port = write_conf(d, run, "[program:p]\ncommand = sleep 1000\nstartsecs = 0\n", user="u",
                            password="first-password")
    master = start_pyfront(procs, d, run, port)
    assert xmlrpc.client.ServerProxy(f"http://u:first-password@127.0.0.1:{port}/RPC2").supervisor.getAPIVersion()
    write_conf(d, run, "[program:p]\ncommand = sleep 1000\nstartsecs = 0\n", port=port, user="u",
               password="second-password")
    os.kill(master.pid, signal.SIGHUP)

    def new_password_works():
        try:
            return xmlrpc.client.ServerProxy(f"http://u:second-password@127.0.0.1:{port}/RPC2"
                                             ).supervisor.getAPIVersion() == "3.0"
        except xmlrpc.client.ProtocolError:
            return False
    _wait(new_password_works, what="new password accepted")
    with pytest.raises(xmlrpc.client.ProtocolError) as e:
        xmlrpc.client.ServerProxy(f"http://u:first-password@127.0.0.1:{port}/RPC2").supervisor.getAPIVersion()
    assert e.value.errcode == 401


def test_dev_stdout_log_needs_no_maxbytes_zero(tmp_path, procs):
    d, run = str(tmp_path / "conf"), str(tmp_path / "run")
    conf, port = write_conf(d, run, """
[program:talk]
command = /bin/sh -c "echo container-log-line; exec sleep 1000"
startsecs = 0
stdout_logfile = /dev/stdout
""")
    master = start_pyfront(procs, d, run, port)
    wait_status(conf, lambda o: state_of(o, "talk") == "RUNNING")
    time.sleep(0.3)
    out = master.stop()
    assert "container-log-line" in out
    assert "Illegal seek" not in out
