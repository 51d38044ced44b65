"""`pyfront signal reload|stop|quit|reopen CONF_DIR`: like `nginx -s`, via the pid file.

The pid file is found as the master finds it (the nginx `pid` directive, else the run
directory). `reload` first tests the configuration, as `nginx -s reload` does, so a typo is
reported here instead of only in the master's log; stop/quit/reopen do not need a valid
configuration (you must always be able to stop a server whose files you just broke).
"""
from __future__ import annotations

import os
import re
import signal
import sys

from pyfront.config.diagnostics import ConfigError
from pyfront.pidfile import PidFileError, default_run_dir, read_pid
from pyfront.stack import BUNDLED_SITE, load_stack

SIGNALS = {"reload": signal.SIGHUP, "stop": signal.SIGTERM, "quit": signal.SIGQUIT,
           "reopen": signal.SIGUSR1}
USAGE = "usage: pyfront signal reload|stop|quit|reopen [CONF_DIR]"


_PID = re.compile(r"^\s*pid\s+(\"[^\"]+\"|'[^']+'|[^;\s]+)\s*;")


def _pid_from_broken(confdir: str) -> str | None:
    """The main-context `pid` of CONF_DIR/nginx.conf, read leniently (the file may be broken
    somewhere else, and we still must find the master to stop it)."""
    conf = os.path.join(confdir, "nginx.conf")
    try:
        with open(conf, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    depth = 0
    for line in lines:
        code = line.split("#", 1)[0]
        m = _PID.match(code) if depth == 0 else None
        if m:
            p = m.group(1).strip("\"'")
            return p if os.path.isabs(p) else os.path.join(confdir, p)
        depth += code.count("{") - code.count("}")
    return None


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help") or len(argv) > 2:
        print(USAGE, file=sys.stderr if not argv or len(argv) > 2 else sys.stdout)
        return 2 if not argv or len(argv) > 2 else 0
    what = argv[0]
    if what not in SIGNALS:
        print(f'pyfront: invalid option: "-s {what}"\n{USAGE}', file=sys.stderr)
        return 2
    bundled = len(argv) == 1
    path = os.path.abspath(argv[1] if not bundled else BUNDLED_SITE)
    try:
        pid_path = load_stack(path, bundled=bundled).pid_path
    except ConfigError as e:
        for d in e.diagnostics:
            print(d.format(), file=sys.stderr)
        if what == "reload":
            print(f"pyfront: configuration file {path} test failed; reload not sent", file=sys.stderr)
            return 1
        pid_path = _pid_from_broken(path) or os.path.join(default_run_dir(path, bundled), "pyfront.pid")
    try:
        pid = read_pid(pid_path)
    except PidFileError as e:
        print(f"pyfront: [error] {e}", file=sys.stderr)
        return 1
    try:
        os.kill(pid, SIGNALS[what])
    except OSError as e:
        print(f"pyfront: [alert] kill({pid}, {int(SIGNALS[what])}) failed ({e.errno}: {e.strerror})",
              file=sys.stderr)
        return 1
    return 0
