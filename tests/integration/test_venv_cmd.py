"""`pyfront venv` against a real $WORKON_HOME: create, list, run inside, remove."""
import os
import subprocess
import sys

import pytest

from pyfront.app import venv as appvenv
from tests.conftest import pyfront_cmd


def run(*args, home, **kw):
    env = dict(os.environ, WORKON_HOME=str(home))
    return subprocess.run(pyfront_cmd("venv", *args), capture_output=True, text=True, env=env, **kw)


def test_mk_ls_workon_rm_cycle(tmp_path):
    home = tmp_path / "envs"
    r = run("mk", "site1", home=home)
    assert r.returncode == 0, r.stderr
    assert (home / "site1" / "pyvenv.cfg").is_file()
    assert run("ls", home=home).stdout.split() == ["site1"]
    ver = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert ver in run("ls", "-l", home=home).stdout
    # workon NAME prints the activation line; workon NAME -- cmd runs inside the venv
    assert run("workon", "site1", home=home).stdout.strip() == f"source {home}/site1/bin/activate"
    r = run("workon", "site1", "--", "python", "-c", "import sys; print(sys.prefix)", home=home)
    assert r.returncode == 0 and r.stdout.strip() == str(home / "site1")
    assert run("mk", "site1", home=home).returncode == 1      # exists already
    assert run("rm", "site1", home=home).returncode == 0
    assert not (home / "site1").exists()
    assert run("rm", "site1", home=home).returncode == 1


def test_mk_installs_requirements(tmp_path):
    home = tmp_path / "envs"
    # a local package only: no network needed
    pkg = tmp_path / "onlyhere"
    (pkg / "onlyhere").mkdir(parents=True)
    (pkg / "onlyhere" / "__init__.py").write_text("MARK = 'venv-only'\n")
    (pkg / "pyproject.toml").write_text('[project]\nname="onlyhere"\nversion="1"\n'
                                        '[build-system]\nrequires=["setuptools"]\nbuild-backend="setuptools.build_meta"\n')
    req = tmp_path / "req.txt"
    req.write_text(f"{pkg}\n")
    r = run("mk", "-r", str(req), "withpkg", home=home)
    assert r.returncode == 0, r.stderr
    r = run("workon", "withpkg", "--", "python", "-c", "import onlyhere; print(onlyhere.MARK)", home=home)
    assert r.stdout.strip() == "venv-only"


def test_rm_refuses_non_venv_and_bad_names(tmp_path):
    home = tmp_path / "envs"
    (home / "notavenv").mkdir(parents=True)
    assert run("rm", "notavenv", home=home).returncode == 1
    assert (home / "notavenv").exists()
    assert run("rm", "..", home=home).returncode == 1
    assert run("mk", "a/b", home=home).returncode == 2


def test_bare_name_resolves_on_workon_home_and_other_python_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKON_HOME", str(tmp_path))
    r = run("mk", "bj18_py3", home=tmp_path)
    assert r.returncode == 0, r.stderr
    path, sites = appvenv.resolve("bj18_py3", "/nonexistent")
    assert path == str(tmp_path / "bj18_py3") and sites and sites[0].endswith("site-packages")
    fake = tmp_path / "old"
    (fake / "lib" / "python2.7" / "site-packages").mkdir(parents=True)
    (fake / "pyvenv.cfg").write_text("home = /usr/bin\nversion = 2.7.18\n")
    with pytest.raises(appvenv.VenvError, match="built for Python 2.7"):
        appvenv.resolve("old", "/nonexistent")
