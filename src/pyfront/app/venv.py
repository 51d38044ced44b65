"""virtualenv / home / venv: find the venv, check it matches this interpreter, list its site dirs.

An embedded app server can only import packages built for its own interpreter, so a venv
made for another Python version is refused up front (uWSGI would fail later with an
ImportError or, worse, load mismatched C extensions). A bare name is looked up on
$WORKON_HOME as virtualenvwrapper's `workon NAME` does (default ~/.virtualenvs).
"""
from __future__ import annotations

import glob
import os
import re
import sys


class VenvError(ValueError):
    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


def workon_home() -> str:
    return os.path.expanduser(os.environ.get("WORKON_HOME") or "~/.virtualenvs")


def _version_of(path: str) -> tuple[int, int] | None:
    cfg = os.path.join(path, "pyvenv.cfg")
    if os.path.isfile(cfg):
        with open(cfg, encoding="utf-8", errors="replace") as f:
            for line in f:
                k, _, v = line.partition("=")
                if k.strip() in ("version_info", "version"):
                    m = re.match(r"\s*(\d+)\.(\d+)", v)
                    if m:
                        return int(m.group(1)), int(m.group(2))
    libs = [os.path.basename(p) for p in glob.glob(os.path.join(path, "lib", "python[0-9].*"))]
    for name in libs:
        m = re.match(r"python(\d+)\.(\d+)$", name)
        if m:
            return int(m.group(1)), int(m.group(2))
    return None


def resolve(value: str, base_dir: str) -> tuple[str, list[str]]:
    """(absolute venv path, site-packages dirs) or VenvError."""
    value = os.path.expanduser(value)
    if os.sep in value or value.startswith("."):
        path = os.path.normpath(os.path.join(base_dir, value))
    else:
        path = os.path.join(workon_home(), value)
        if not os.path.isdir(path) and os.path.isdir(os.path.join(base_dir, value)):
            path = os.path.join(base_dir, value)
    if not os.path.isdir(path):
        raise VenvError(f'virtualenv "{path}" does not exist',
                        hint=f"create it (python{sys.version_info[0]}.{sys.version_info[1]} -m venv {path}) "
                             f"or fix the path; bare names are looked up in $WORKON_HOME ({workon_home()})")
    ver = _version_of(path)
    mine = sys.version_info[:2]
    if ver is None:
        raise VenvError(f'"{path}" is not a virtualenv (no pyvenv.cfg, no lib/pythonX.Y)')
    if ver != mine:
        raise VenvError(
            f'virtualenv "{path}" was built for Python {ver[0]}.{ver[1]}, but pyfront runs on Python {mine[0]}.{mine[1]}',
            hint=f"recreate it with python{mine[0]}.{mine[1]} -m venv, or install pyfront into a Python {ver[0]}.{ver[1]}")
    sites = sorted(glob.glob(os.path.join(path, "lib", f"python{mine[0]}.{mine[1]}", "site-packages")))
    sites += sorted(glob.glob(os.path.join(path, "lib64", f"python{mine[0]}.{mine[1]}", "site-packages")))
    seen, out = set(), []
    for s in sites:
        r = os.path.realpath(s)
        if r not in seen:
            seen.add(r)
            out.append(s)
    return path, out


def activate(path: str, sites: list[str] | tuple[str, ...]) -> None:
    """Make the venv's packages importable in this process (before the app loads), ahead of ours."""
    import site
    before = list(sys.path)
    for s in sites:
        site.addsitedir(s)      # processes .pth files too (editable installs)
    added = [p for p in sys.path if p not in before]
    sys.path[:] = added + before
    os.environ["VIRTUAL_ENV"] = path
    os.environ["PATH"] = os.path.join(path, "bin") + os.pathsep + os.environ.get("PATH", "")
