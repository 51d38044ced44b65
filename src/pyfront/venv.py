"""`pyfront venv mk|ls|rm|workon` — virtualenvwrapper's everyday commands on $WORKON_HOME.

virtualenvwrapper names: mkvirtualenv → `venv mk`, lsvirtualenv → `venv ls`,
rmvirtualenv → `venv rm`, workon → `venv workon`. `[uwsgi] virtualenv = NAME`
resolves a bare name on the same $WORKON_HOME (pyfront.app.venv).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys


from pyfront.app.venv import _version_of, workon_home  # the one resolver, shared with [uwsgi] virtualenv=


def _valid_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\0" not in name


def _version(path: str) -> str:
    ver = _version_of(path)
    return f"{ver[0]}.{ver[1]}" if ver else "?"


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
        print(f"{name}\t{_version(os.path.join(workon_home(), name))}" if args.long else name)
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
