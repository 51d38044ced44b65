"""Startup: need-app, virtualenv (path / WORKON_HOME name / wrong Python), seed-style layout."""
import os
import subprocess
import sys
import venv

import pytest

from tests.conftest import free_port, pyfront_cmd
from tests.integration.app_support import http_request, start_app


def run_app(args, timeout=30, env=None, cwd=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run(pyfront_cmd("app", *args), capture_output=True, text=True, timeout=timeout, env=e, cwd=cwd)


def test_need_app_failure_stops_with_traceback(tmp_path):
    bad = tmp_path / "broken.py"
    bad.write_text("import this_module_does_not_exist_anywhere\napplication = None\n")
    ini = tmp_path / "app.ini"
    ini.write_text(f"[uwsgi]\nhttp-socket = 127.0.0.1:{free_port()}\nwsgi-file = broken.py\nprocesses = 2\n")
    r = run_app(["--ini", str(ini)])
    assert r.returncode == 1
    out = r.stdout + r.stderr
    assert "ModuleNotFoundError: No module named 'this_module_does_not_exist_anywhere'" in out
    assert "Traceback" in out
    assert "--- no python application found, check your startup logs for errors ---" in out
    assert "need-app" in out


def test_missing_wsgi_file_is_a_config_error_with_location(tmp_path):
    ini = tmp_path / "app.ini"
    ini.write_text(f"[uwsgi]\nchdir = {tmp_path}\nsocket = {tmp_path}/s.sock\nwsgi-file = nope/wsgi.py\nprocesses = 4\n")
    r = run_app(["--ini", str(ini)])
    assert r.returncode == 1
    assert f'wsgi-file "{tmp_path}/nope/wsgi.py" does not exist in {ini}:4' in r.stderr
    assert "relative to chdir" in r.stderr


def test_unknown_option_warns_with_closest(tmp_path):
    app = tmp_path / "a.py"
    app.write_text("def application(e, s):\n    s('200 OK', [])\n    return [b'']\n")
    ini = tmp_path / "app.ini"
    ini.write_text(f"[uwsgi]\nsocket = {tmp_path}/s.sock\nwsgi-file = a.py\nproceses = 4\nstrict = true\n")
    r = run_app(["--ini", str(ini)])
    assert r.returncode == 1
    assert f'unknown [uwsgi] option "proceses" in {ini}:4 (did you mean "processes"?)' in r.stderr


def _make_venv(path):
    venv.EnvBuilder(with_pip=False, symlinks=True).create(str(path))
    site = path / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    (site / "only_in_this_venv.py").write_text("MARK = 'from-the-venv'\n")


APP_USING_VENV = """
import only_in_this_venv
def application(env, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [only_in_this_venv.MARK.encode()]
"""


@pytest.mark.parametrize("how", ["path", "workon-name"])
def test_virtualenv_package_only_installed_there(procs, tmp_path, how):
    home = tmp_path / "virtualenvs"
    home.mkdir()
    _make_venv(home / "bj18_py3")
    (tmp_path / "app.py").write_text(APP_USING_VENV)
    port = free_port()
    value = str(home / "bj18_py3") if how == "path" else "bj18_py3"
    app = start_app(procs, tmp_path, f"""
        http-socket = 127.0.0.1:{port}
        wsgi-file = app.py
        virtualenv = {value}
    """, f"127.0.0.1:{port}", env={"WORKON_HOME": str(home)})
    status, _, body = http_request(port, "GET", "/")
    assert (status, body) == (200, b"from-the-venv")


def test_virtualenv_for_another_python_is_refused(tmp_path):
    fake = tmp_path / "old_env"
    (fake / "lib" / "python2.7" / "site-packages").mkdir(parents=True)
    (fake / "pyvenv.cfg").write_text("home = /usr/bin\nversion = 2.7.18\n")
    (tmp_path / "a.py").write_text("application = None\n")
    ini = tmp_path / "app.ini"
    ini.write_text(f"[uwsgi]\nsocket = {tmp_path}/s.sock\nwsgi-file = a.py\nvirtualenv = {fake}\n")
    r = run_app(["--ini", str(ini)])
    assert r.returncode == 1
    mine = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert f'virtualenv "{fake}" was built for Python 2.7, but pyfront runs on Python {mine} in {ini}:4' in r.stderr


def test_missing_virtualenv_names_workon_home(tmp_path):
    (tmp_path / "a.py").write_text("application = None\n")
    ini = tmp_path / "app.ini"
    ini.write_text(f"[uwsgi]\nsocket = {tmp_path}/s.sock\nwsgi-file = a.py\nhome = nosuchenv\n")
    r = run_app(["--ini", str(ini)], env={"WORKON_HOME": str(tmp_path / "venvs")})
    assert r.returncode == 1
    assert f'virtualenv "{tmp_path}/venvs/nosuchenv" does not exist' in r.stderr
    assert "WORKON_HOME" in r.stderr


def test_command_line_flags_and_pidfile(procs, tmp_path):
    (tmp_path / "a.py").write_text("def app(env, sr):\n    sr('200 OK', [('Content-Type', 'text/plain')])\n"
                                   "    return [env['PATH_INFO'].encode()]\n")
    port = free_port()
    pidfile = tmp_path / "app.pid"
    p = procs(pyfront_cmd("app", f"--http-socket=127.0.0.1:{port}", "--chdir", str(tmp_path), "--module", "a:app",
                          "-p", "1", "--threads", "2", "--master", "--pidfile", str(pidfile), "--vacuum",
                          "--disable-logging"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    from tests.conftest import wait_for_port
    wait_for_port(port, proc=p.p)
    assert http_request(port, "GET", "/x/y")[2] == b"/x/y"
    assert int(pidfile.read_text()) == p.pid
    p.stop()
    assert not pidfile.exists()     # vacuum


def test_address_in_use_is_reported_like_nginx(tmp_path):
    import socket as _s
    busy = _s.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    (tmp_path / "a.py").write_text("application = lambda e, s: []\n")
    ini = tmp_path / "app.ini"
    ini.write_text(f"[uwsgi]\nhttp-socket = 127.0.0.1:{port}\nwsgi-file = a.py\n")
    r = run_app(["--ini", str(ini)])
    busy.close()
    assert r.returncode == 1
    assert f"pyfront: [emerg] bind() to 127.0.0.1:{port} failed (98: Address already in use)" in r.stderr
