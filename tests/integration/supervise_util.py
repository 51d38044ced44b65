"""Helpers shared by the supervision integration tests (not product code)."""
import os
import re
import subprocess
import sys
import time

from tests.conftest import ROOT, VENV_BIN, free_port, need_peer, wait_for_port

CONF = """\
[supervisord]
logfile = {run}/supervisord.log
pidfile = {run}/supervisord.pid
childlogdir = {run}
loglevel = info
nodaemon = true

[inet_http_server]
port = 127.0.0.1:{port}
{auth}
[supervisorctl]
serverurl = http://127.0.0.1:{port}
{ctlauth}
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

{programs}
"""


def write_conf(dirpath: str, run: str, programs: str, port: int | None = None, user: str | None = None,
               password: str | None = None) -> tuple[str, int]:
    os.makedirs(dirpath, exist_ok=True)
    os.makedirs(run, exist_ok=True)
    port = port or free_port()
    auth = f"username = {user}\npassword = {password}\n" if user else ""
    path = os.path.join(dirpath, "supervisord.conf")
    with open(path, "w") as f:
        f.write(CONF.format(run=run, port=port, auth=auth, ctlauth=auth, programs=programs.format(run=run)))
    return path, port


def start_pyfront(procs, conf_dir: str, run: str, port: int):
    """`pyfront serve CONF_DIR`, ready once the control server accepts."""
    p = procs([sys.executable, "-m", "pyfront", "serve", conf_dir], cwd=ROOT)
    wait_for_port(port, proc=p.p)
    return p


def start_supervisord(procs, conf_file: str, port: int):
    exe = need_peer("supervisord")
    p = procs([exe, "-n", "-c", conf_file])
    wait_for_port(port, proc=p.p)
    return p


def ctl(conf_file: str, *args: str, timeout: float = 60) -> tuple[int, str]:
    exe = need_peer("supervisorctl")
    r = subprocess.run([exe, "-c", conf_file, *args], capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout + r.stderr


def pyctl(conf_dir: str, *args: str, timeout: float = 60) -> tuple[int, str]:
    r = subprocess.run([sys.executable, "-m", "pyfront", "ctl", "-c", conf_dir, *args],
                       capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    return r.returncode, r.stdout + r.stderr


_NORMALIZE = [
    (re.compile(r"pid \d+, uptime [\d:]+( days?, [\d:]+)?"), "pid N, uptime T"),
    (re.compile(r"uptime \d+ days?, [\d:]+"), "uptime T"),
    (re.compile(r"[A-Z][a-z]{2} \d\d \d\d:\d\d [AP]M"), "DATE"),
    (re.compile(r"^\d+$", re.M), "N"),
]


def normalize(text: str) -> str:
    for rx, repl in _NORMALIZE:
        text = rx.sub(repl, text)
    return text


def wait_status(conf_file: str, predicate, timeout: float = 20.0, runner=None) -> str:
    runner = runner or ctl
    deadline = time.monotonic() + timeout
    out = ""
    while time.monotonic() < deadline:
        _, out = runner(conf_file, "status")
        if predicate(out):
            return out
        time.sleep(0.1)
    raise AssertionError(f"status never matched; last:\n{out}")


def state_of(status_out: str, name: str) -> str | None:
    for line in status_out.splitlines():
        parts = line.split()
        if parts and parts[0] == name:
            return parts[1]
    return None
