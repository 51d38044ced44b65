import subprocess

from pyfront import __version__
from tests.conftest import pyfront_cmd


def test_version_is_the_package_version():
    out = subprocess.run(pyfront_cmd("--version"), capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"pyfront {__version__}"


def test_unknown_command_exits_2_with_usage():
    r = subprocess.run(pyfront_cmd("frobnicate"), capture_output=True, text=True)
    assert r.returncode == 2
    assert "unknown command 'frobnicate'" in r.stderr and "usage: pyfront" in r.stderr
