"""`pyfront venv mk|ls|rm|workon` — virtualenvwrapper's everyday commands on $WORKON_HOME.

virtualenvwrapper names: mkvirtualenv → `venv mk`, lsvirtualenv → `venv ls`,
rmvirtualenv → `venv rm`, workon → `venv workon`. Also the resolver that `[uwsgi]
virtualenv = NAME` uses: a bare name is looked up on $WORKON_HOME (default ~/.virtualenvs).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass


def workon_home() -> str:
    return os.path.abspath(os.path.expanduser(os.environ.get("WORKON_HOME") or "~/.virtualenvs"))


def _valid_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\0" not in name


def resolve(name_or_path: str, base_dir: str | None = None) -> str:
    """A venv path from `virtualenv =`: a path (relative to base_dir) or a bare name on WORKON_HOME."""
    if os.sep in name_or_path or name_or_path.startswith((".", "~")):
        p = os.path.expanduser(name_or_path)
        return os.path.abspath(os.path.join(base_dir or os.getcwd(), p))
    return os.path.join(workon_home(), name_or_path)


@dataclass(frozen=True)
class VenvInfo:
    path: str
    version: str | None        # "3.11.7" from pyvenv.cfg, None when it is not a venv
    site_packages: str | None

    @property
    def major_minor(self) -> str | None:
        return ".".join(self.version.split(".")[:2]) if self.version else None


def info(path: str) -> VenvInfo:
    cfg = os.path.join(path, "pyvenv.cfg")
    version = None
    try:
        with open(cfg, encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition("=")
                if key.strip() in ("version", "version_info"):
                    version = value.strip()
                    break
    except OSError:
        return VenvInfo(path, None, None)
    site = None
    if version:
        mm = ".".join(version.split(".")[:2])
        cand = os.path.join(path, "lib", f"python{mm}", "site-packages")
        site = cand if os.path.isdir(cand) else None
    return VenvInfo(path, version, site)


def check_compatible(path: str) -> str | None:
    """None if the venv can be used by this interpreter, else the reason (for an error message)."""
    vi = info(path)
    if vi.version is None:
        if not os.path.isdir(path):
            return f'virtualenv "{path}" does not exist (create it with `pyfront venv mk {os.path.basename(path)}`)'
        return f'"{path}" is not a virtualenv (no pyvenv.cfg)'
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if vi.major_minor != here:
        return (f'virtualenv "{path}" was built for Python {vi.version}, but pyfront runs on Python {here}; '
                f"recreate it with `pyfront venv mk -p python{here} {os.path.basename(path)}`")
    return None


def _list() -> list[str]:
    home = workon_home()
    if not os.path.isdir(home):
        return []
    return sorted(n for n in os.listdir(home) if os.path.isfile(os.path.join(home, n, "pyvenv.cfg")))


def cmd_mk(args) -> int:
    if not _valid_name(args.name):
        print(f"pyfront venv: invalid name {args.name!r}", file=sys.stderr)
        return 2
    target = os.path.join(workon_home(), args.name)
    if os.path.exists(target):
        print(f"pyfront venv: {target} already exists", file=sys.stderr)
        return 1
    os.makedirs(workon_home(), exist_ok=True)
    python = args.python or sys.executable
    if shutil.which(python) is None and not os.path.isfile(python):
        print(f"pyfront venv: no such interpreter: {python}", file=sys.stderr)
        return 1
    r = subprocess.run([python, "-m", "venv", target])
    if r.returncode != 0:
        shutil.rmtree(target, ignore_errors=True)
        print(f"pyfront venv: creating {target} failed", file=sys.stderr)
        return 1
    for req in args.requirements or []:
        r = subprocess.run([os.path.join(target, "bin", "python"), "-m", "pip", "install", "-q", "-r", req])
        if r.returncode != 0:
            print(f"pyfront venv: installing {req} into {target} failed (the venv is kept)", file=sys.stderr)
            return 1
    print(target)
    return 0


def cmd_ls(args) -> int:
    for name in _list():
        vi = info(os.path.join(workon_home(), name))
        print(f"{name}\t{vi.version or '?'}" if args.long else name)
    return 0


def cmd_rm(args) -> int:
    target = os.path.join(workon_home(), args.name)
    if not _valid_name(args.name) or not os.path.isfile(os.path.join(target, "pyvenv.cfg")):
        print(f"pyfront venv: no virtualenv named {args.name!r} in {workon_home()}", file=sys.stderr)
        return 1
    if os.environ.get("VIRTUAL_ENV") == target:
        print(f"pyfront venv: {args.name} is active in this shell; deactivate it first", file=sys.stderr)
        return 1
    shutil.rmtree(target)
    print(f"Removing {args.name}...")
    return 0


def cmd_workon(args) -> int:
    if not args.name:
        return cmd_ls(argparse.Namespace(long=False))
    target = os.path.join(workon_home(), args.name)
    if not _valid_name(args.name) or not os.path.isfile(os.path.join(target, "pyvenv.cfg")):
        print(f"pyfront venv: no virtualenv named {args.name!r} in {workon_home()}", file=sys.stderr)
        return 1
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        # A child process cannot change its parent shell: print the line to eval.
        print(f"source {target}/bin/activate")
        return 0
    env = dict(os.environ, VIRTUAL_ENV=target, PATH=f"{target}/bin{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("PYTHONHOME", None)
    try:
        return subprocess.run(command, env=env).returncode
    except FileNotFoundError:
        print(f"pyfront venv: command not found: {command[0]}", file=sys.stderr)
        return 127


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="pyfront venv", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("mk", help="create a virtualenv on $WORKON_HOME (mkvirtualenv)")
    p.add_argument("-p", "--python", help="interpreter to build it with (default: pyfront's own)")
    p.add_argument("-r", "--requirements", action="append", help="requirements file to install (repeatable)")
    p.add_argument("name")
    p.set_defaults(fn=cmd_mk)
    p = sub.add_parser("ls", help="list virtualenvs (lsvirtualenv)")
    p.add_argument("-l", "--long", action="store_true", help="also show each Python version")
    p.set_defaults(fn=cmd_ls)
    p = sub.add_parser("rm", help="remove a virtualenv (rmvirtualenv)")
    p.add_argument("name")
    p.set_defaults(fn=cmd_rm)
    p = sub.add_parser("workon", help="print the activation line, or run a command inside the venv")
    p.add_argument("name", nargs="?")
    p.add_argument("command", nargs=argparse.REMAINDER)
    p.set_defaults(fn=cmd_workon)
    args = ap.parse_args(argv)
    return args.fn(args)
