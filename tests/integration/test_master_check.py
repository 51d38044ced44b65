"""`pyfront check`: nginx -t's lines and exit codes for good and bad conf dirs."""
import subprocess

import pytest

from tests.conftest import pyfront_cmd



def check(*args):
    return subprocess.run(pyfront_cmd("check", *map(str, args)), capture_output=True, text=True, timeout=60)


def good(d):
    d.mkdir()
    (d / "html").mkdir()
    (d / "site.conf").write_text("server {\n    listen 127.0.0.1:8999;\n    root html;\n}\n")
    return d


def test_good_dir_prints_nginx_t_lines(tmp_path):
    d = good(tmp_path / "good")
    r = check(d)
    assert r.returncode == 0
    assert r.stderr.splitlines()[-2:] == [
        f"pyfront: the configuration file {d} syntax is ok",
        f"pyfront: configuration file {d} test is successful"]


def test_quiet_suppresses_success_lines(tmp_path):
    d = good(tmp_path / "good")
    r = check("-q", d)
    assert r.returncode == 0 and "successful" not in r.stderr


def test_dump_prints_every_file(tmp_path):
    d = good(tmp_path / "good")
    r = check("-T", d)
    assert r.returncode == 0
    assert f"# configuration file {d}/site.conf:\n" in r.stdout
    assert "listen 127.0.0.1:8999;" in r.stdout
    assert "# effective nginx configuration" in r.stdout


def test_bad_dir_prints_file_line_and_test_failed(tmp_path):
    d = tmp_path / "bad"
    d.mkdir()
    (d / "site.conf").write_text("server {\n    listen 127.0.0.1:8999;\n    pid /run/x.pid;\n}\n")
    r = check(d)
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert lines[0].startswith(f'pyfront: [emerg] "pid" directive is not allowed here in {d}/site.conf:3')
    assert lines[-1] == f"pyfront: configuration file {d} test failed"
    assert "Traceback" not in r.stderr


def test_missing_dir(tmp_path):
    r = check(tmp_path / "nope")
    assert r.returncode == 1
    assert f'pyfront: [emerg] configuration directory "{tmp_path}/nope" does not exist' in r.stderr
    assert r.stderr.splitlines()[-1] == f"pyfront: configuration file {tmp_path}/nope test failed"


def test_every_layer_is_checked(tmp_path):
    d = good(tmp_path / "all")
    (d / "app.ini").write_text("[uwsgi]\nprocesses = many\n")
    (d / "programs.conf").write_text("[program:x]\ncommand=/bin/true\nautorestart=sometimes\n")
    r = check(d)
    assert r.returncode == 1
    assert f"{d}/app.ini:2" in r.stderr
    assert f"{d}/programs.conf:3" in r.stderr
    assert r.stderr.splitlines()[-1] == f"pyfront: configuration file {d} test failed"
