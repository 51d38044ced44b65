"""examples/flask and examples/django: each CONF_DIR checks clean and serves (copied to a temp
dir with its two ports replaced by free ones, so the test never needs 8080/8081)."""
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import free_port, pyfront_cmd, wait_for_port
from tests.integration.test_master_serve import get

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def copy_with_ports(name, dst):
    shutil.copytree(EXAMPLES / name, dst, ignore=shutil.ignore_patterns("run", "__pycache__"))
    port, app_port = free_port(), free_port()
    for f in ("site.conf", "app.ini"):
        p = dst / f
        p.write_text(p.read_text().replace("127.0.0.1:8080", f"127.0.0.1:{port}")
                     .replace("127.0.0.1:8081", f"127.0.0.1:{app_port}"))
    return port


def get_when_loaded(port, path, deadline_s=30):
    deadline = time.monotonic() + deadline_s
    while True:
        st, body = get(port, path)
        if st != 502 or time.monotonic() > deadline:
            return st, body
        time.sleep(0.1)


@pytest.mark.parametrize("name", ["flask", "django"])
def test_example_checks_clean(name):
    pytest.importorskip(name)
    r = subprocess.run(pyfront_cmd("check", str(EXAMPLES / name)), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "[warn]" not in r.stderr, r.stderr
    assert "test is successful" in r.stderr


def test_flask_example_serves(tmp_path, procs):
    pytest.importorskip("flask")
    port = copy_with_ports("flask", tmp_path / "flask")
    p = procs(pyfront_cmd("serve", str(tmp_path / "flask")))
    wait_for_port(port, proc=p.p)
    st, body = get_when_loaded(port, "/")
    assert st == 200 and b"Hello from Flask behind pyfront" in body
    st, body = get(port, "/api/echo?x=1")
    assert st == 200 and b'"path":"/api/echo"' in body.replace(b" ", b"")


def test_django_example_serves_pages_and_static(tmp_path, procs):
    pytest.importorskip("django")
    port = copy_with_ports("django", tmp_path / "django")
    p = procs(pyfront_cmd("serve", str(tmp_path / "django")))
    wait_for_port(port, proc=p.p)
    st, body = get_when_loaded(port, "/")
    assert st == 200 and b"Hello from Django behind pyfront" in body
    assert get(port, "/static/site.css") == (200, b"body { font-family: sans-serif; }\n")
