"""`pip wheel .` builds a wheel that installs into a fresh venv and serves (issue 2 point 1).

Slow (a wheel build and a venv): marked slow, still part of `make test`.
"""
import http.client
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import ROOT, Proc, free_port, wait_for_port

pytestmark = pytest.mark.slow

SKIP_DIRS = {".venv", ".git", "build", "dist", "__pycache__", ".hypothesis", ".pytest_cache", "run", "logs"}


def _copy_tree(dst):
    def ignore(d, names):
        return [n for n in names if n in SKIP_DIRS or n.endswith((".so", ".o", ".egg-info"))
                or n in ("_pf.c", ".build-stamp")]
    shutil.copytree(ROOT, dst, ignore=ignore, symlinks=True)


def _data_files():
    """Every non-Python file the package must ship (mime.types, uwsgi_params, example, dashboard)."""
    pkg = os.path.join(ROOT, "src", "pyfront")
    out = []
    for sub in ("data", "examples", os.path.join("control", "dashboard")):
        base = os.path.join(pkg, sub)
        for d, dirs, files in os.walk(base):
            dirs[:] = [x for x in dirs if x not in SKIP_DIRS]
            for f in files:
                if not f.endswith((".pyc",)):
                    out.append(os.path.relpath(os.path.join(d, f), os.path.join(ROOT, "src")))
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src-copy"
    _copy_tree(src)
    wheels = tmp / "wheels"
    # --no-build-isolation: build with this venv's setuptools/cffi (no network needed for the build).
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                        "-w", str(wheels), str(src)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    (whl,) = wheels.glob("pyfront-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", str(whl)], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return whl, venv


def test_wheel_ships_the_extension_and_data(installed):
    whl, _ = installed
    names = set(zipfile.ZipFile(whl).namelist())
    assert any(n.startswith("pyfront/_pf") and n.endswith(".so") for n in names)
    assert "pyfront/examples/site/site.conf" in names
    assert "pyfront/examples/site/html/index.html" in names
    missing = [f for f in _data_files() if f not in names]
    assert not missing


def test_installed_wheel_serves_a_file(installed, tmp_path):
    _, venv = installed
    pyfront = str(venv / "bin" / "pyfront")
    out = subprocess.run([pyfront, "--version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.startswith("pyfront ")
    port = free_port()
    conf = tmp_path / "conf"
    (conf / "html").mkdir(parents=True)
    (conf / "html" / "hello.txt").write_text("hello from the wheel\n")
    (conf / "site.conf").write_text(
        f"server {{\n    listen 127.0.0.1:{port};\n    root html;\n    access_log off;\n}}\n")
    # Run from a directory without the source tree, so only the installed copy can answer.
    check = subprocess.run([pyfront, "check", str(conf)], capture_output=True, text=True, timeout=60,
                           cwd=str(tmp_path))
    assert check.returncode == 0, check.stderr
    assert f"pyfront: configuration file {conf} test is successful" in check.stderr
    bundled = subprocess.run([pyfront, "check"], capture_output=True, text=True, timeout=60, cwd=str(tmp_path))
    assert bundled.returncode == 0, bundled.stderr        # the example site inside the wheel
    assert "site-packages/pyfront/examples/site test is successful" in bundled.stderr
    p = Proc([pyfront, "serve", str(conf)], cwd=str(tmp_path))
    try:
        wait_for_port(port, proc=p.p)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/hello.txt")
        r = c.getresponse()
        assert (r.status, r.read()) == (200, b"hello from the wheel\n")
        c.close()
    finally:
        out = p.stop(15)
    assert "Traceback" not in out
