"""The master hosting the other layers: programs and the control server under `pyfront serve`."""
import os
import signal
import subprocess

from tests.conftest import free_port, need_peer, pyfront_cmd, wait_for_port
from tests.integration.test_master_process import alive, children, wait_until


def conf_with_program(d, port):
    d.mkdir()
    (d / "programs.conf").write_text(f"""
[program:sleeper]
command=sleep 1000

[inet_http_server]
port=127.0.0.1:{port}
username=u
password=p
""")
    return d


def ctl(port, *args):
    exe = need_peer("supervisorctl")
    return subprocess.run([exe, "-s", f"http://127.0.0.1:{port}", "-u", "u", "-p", "p", *args],
                          capture_output=True, text=True, timeout=30)


def test_programs_and_control_server_run_and_shut_down(tmp_path, procs):
    port = free_port()
    d = conf_with_program(tmp_path / "c", port)
    p = procs(pyfront_cmd("serve", str(d)))
    wait_for_port(port, proc=p.p)
    out = wait_until(lambda: "RUNNING" in (r := ctl(port, "status")).stdout and r.stdout, what="RUNNING")
    assert out.startswith("sleeper")
    kids = children(p.pid)
    assert len(kids) == 1
    assert (d / "run" / "pyfront.pid").read_text() == f"{p.pid}\n"
    r = ctl(port, "shutdown")
    assert "Shut down" in r.stdout
    assert p.p.wait(20) == 0
    assert not any(alive(k) for k in kids)
    assert not (d / "run" / "pyfront.pid").exists()


def test_sigterm_stops_programs_too(tmp_path, procs):
    port = free_port()
    d = conf_with_program(tmp_path / "c", port)
    p = procs(pyfront_cmd("serve", str(d)))
    wait_for_port(port, proc=p.p)
    kids = wait_until(lambda: children(p.pid), what="program started")
    os.kill(p.pid, signal.SIGTERM)
    p.p.wait(5)
    wait_until(lambda: not any(alive(k) for k in kids), timeout=5, what="program gone")


def test_reload_from_supervisorctl_goes_through_the_master(tmp_path, procs):
    port = free_port()
    d = conf_with_program(tmp_path / "c", port)
    p = procs(pyfront_cmd("serve", str(d)))
    wait_for_port(port, proc=p.p)
    wait_until(lambda: "RUNNING" in ctl(port, "status").stdout, what="RUNNING")
    with open(d / "programs.conf", "a") as f:
        f.write("\n[program:second]\ncommand=sleep 999\n")
    r = ctl(port, "reload")
    assert r.returncode == 0, r.stdout + r.stderr
    out = wait_until(lambda: (s := ctl(port, "status").stdout).count("RUNNING") == 2 and s, what="both RUNNING")
    assert "second" in out
    log = p.stop(signal.SIGTERM)
    assert "reload requested through the control API" in log


def test_sigterm_within_5s_even_when_a_program_ignores_term(tmp_path, procs):
    port = free_port()
    d = tmp_path / "c"
    d.mkdir()
    (d / "programs.conf").write_text(f"""
[program:stubborn]
command=/bin/sh -c "trap '' TERM; sleep 1000 & wait"
stopwaitsecs=30
startsecs=0

[inet_http_server]
port=127.0.0.1:{port}
""")
    p = procs(pyfront_cmd("serve", str(d)))
    wait_for_port(port, proc=p.p)
    kids = wait_until(lambda: children(p.pid), what="program started")
    grandkids = wait_until(lambda: children(kids[0]), what="its child")
    os.kill(p.pid, signal.SIGTERM)
    p.p.wait(5)
    wait_until(lambda: not any(alive(k) for k in kids + grandkids), timeout=5, what="program tree gone")


def test_layers_added_and_removed_by_reload(tmp_path, procs):
    front, ctl_port = free_port(), free_port()
    d = tmp_path / "c"
    (d / "html").mkdir(parents=True)
    (d / "site.conf").write_text(f"server {{ listen 127.0.0.1:{front}; root html; access_log off; }}\n")
    p = procs(pyfront_cmd("serve", str(d)), stdout=open(tmp_path / "out", "wb"))
    wait_for_port(front, proc=p.p)
    conf_with_program(tmp_path / "tmp", ctl_port)
    (d / "programs.conf").write_text((tmp_path / "tmp" / "programs.conf").read_text())
    os.kill(p.pid, signal.SIGHUP)
    wait_until(lambda: "RUNNING" in ctl(ctl_port, "status").stdout, what="programs layer started")
    program = [k for k in children(p.pid) if "sleep" in open(f"/proc/{k}/cmdline").read()]
    assert len(program) == 1
    busy = __import__("socket").socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    (d / "app.ini").write_text(f"[uwsgi]\nhttp-socket = 127.0.0.1:{busy.getsockname()[1]}\n"
                               "chdir = %d\nwsgi-file = app.py\n")
    (d / "app.py").write_text("def application(e, s):\n    s('200 OK', [])\n    return [b'x']\n")
    os.kill(p.pid, signal.SIGHUP)
    out = tmp_path / "out"
    wait_until(lambda: "reload failed; keeping the old configuration" in out.read_text(), what="failed reload")
    assert "Address already in use" in out.read_text()
    busy.close()
    (d / "app.ini").unlink()
    (d / "programs.conf").unlink()
    os.kill(p.pid, signal.SIGHUP)
    wait_until(lambda: not alive(program[0]), what="program stopped with its layer")

    def refused():
        try:
            __import__("socket").create_connection(("127.0.0.1", ctl_port), timeout=1).close()
            return False
        except ConnectionRefusedError:
            return True
    wait_until(refused, what="control server closed")
    os.kill(p.pid, signal.SIGQUIT)
    assert p.p.wait(20) == 0
