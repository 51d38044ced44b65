"""One log story: SIGUSR1 (or `pyfront signal reopen`) reopens every log of every layer at
once — the front's access log, the app's logto file (master and workers) and a program's
stdout log — so logrotate's rename + signal works for the whole stack."""
import os
import signal
import subprocess

from tests.conftest import free_port, http_get as get, pyfront_cmd, wait_for_port
from tests.integration.test_master_process import wait_until

APP = """def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"""


def text(path):
    return path.read_text(errors="replace") if path.exists() else ""


def setup(tmp_path, procs):
    front = free_port()
    d = tmp_path / "c"
    d.mkdir()
    logs = tmp_path / "logs"
    logs.mkdir()
    sock = d / "app.sock"
    access, applog, progout = logs / "access.log", logs / "app.log", logs / "ticker.out"
    (d / "site.conf").write_text(f"""server {{
    listen 127.0.0.1:{front};
    access_log {access};
    location / {{ include uwsgi_params; uwsgi_pass unix:{sock}; }}
}}
""")
    (d / "app.py").write_text(APP)
    (d / "app.ini").write_text(f"[uwsgi]\nsocket = {sock}\nchdir = %d\nwsgi-file = app.py\nprocesses = 2\n"
                               f"logto = {applog}\n")
    (d / "programs.conf").write_text(f"[program:ticker]\ncommand=sh -c 'while :; do echo tick; sleep 0.2; done'\n"
                                     f"stdout_logfile={progout}\n")
    p = procs(pyfront_cmd("serve", str(d)), stdout=open(tmp_path / "serve.out", "wb"))
    wait_for_port(front, proc=p.p)
    wait_until(lambda: get(front)[0] == 200, timeout=30, what="app through the front")
    return p, d, front, access, applog, progout


def rotate_and_check(p, front, access, applog, progout, reopen):
    wait_until(lambda: "GET / " in text(access) and "GET /" in text(applog) and "tick" in text(progout),
               what="all three logs written")
    for f in (access, applog, progout):
        os.rename(f, f.with_name(f.name + ".1"))
    reopen()
    wait_until(lambda: progout.exists() and "tick" in text(progout), what="program log recreated")
    wait_until(applog.exists, what="app log recreated")
    for _ in range(6):      # both app workers serve some: each must write to the new file
        assert get(front, "/after") == (200, b"ok")
    wait_until(lambda: "GET /after" in text(access), what="access log recreated")
    wait_until(lambda: text(applog).count("GET /after") == 6, what="app request lines in the new log")
    assert "GET /after" not in text(applog.with_name("app.log.1"))
    assert "GET /after" not in text(access.with_name("access.log.1"))


def test_sigusr1_reopens_every_layers_logs(tmp_path, procs):
    p, d, front, access, applog, progout = setup(tmp_path, procs)
    rotate_and_check(p, front, access, applog, progout, lambda: os.kill(p.pid, signal.SIGUSR1))
    p.p.send_signal(signal.SIGQUIT)
    assert p.p.wait(30) == 0


def test_signal_reopen_command_does_the_same(tmp_path, procs):
    p, d, front, access, applog, progout = setup(tmp_path, procs)

    def reopen():
        r = subprocess.run(pyfront_cmd("signal", "reopen", str(d)), capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0, r.stderr
    rotate_and_check(p, front, access, applog, progout, reopen)
    p.p.send_signal(signal.SIGQUIT)
    assert p.p.wait(30) == 0
