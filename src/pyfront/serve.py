"""`pyfront serve [CONF_DIR]`: run front, apps and programs in the foreground.

With no CONF_DIR it runs the bundled example (src/pyfront/examples/site, shipped in the
wheel): the static site on http://127.0.0.1:8080/, a stdlib WSGI app at /app/, one supervised
program and the dashboard on 127.0.0.1:9001 with a generated password, printed at start. Configuration and startup errors are printed
nginx-style (`pyfront: [emerg] ... in file:line`) and exit 1 — never a traceback.
"""
from __future__ import annotations

import os
import sys

from pyfront.config.diagnostics import ConfigError
from pyfront.stack import BUNDLED_SITE, EXAMPLE_PASSWORD_ENV, load_stack

USAGE = """usage: pyfront serve [CONF_DIR]

Run every layer configured in CONF_DIR (nginx *.conf, [uwsgi] and [program:x] sections)
in the foreground. Without CONF_DIR, run the bundled example: a static site on
127.0.0.1:8080, a WSGI app at /app/, a supervised program and the dashboard on
127.0.0.1:9001 (user admin, password printed at start; PYFRONT_EXAMPLE_PASSWORD sets it).
Signals: HUP reload, QUIT graceful stop, TERM/INT fast stop, USR1 reopen logs."""


def _url(address: str) -> str:
    if address.startswith("unix:"):
        return f"http+{address}"
    host, _, port = address.rpartition(":")
    if host in ("0.0.0.0", "*", ""):
        host = "127.0.0.1"
    elif host == "[::]":
        host = "[::1]"
    return f"http://{host}:{port}/"


def listen_urls(stack) -> list[str]:
    """The front's addresses as URLs (what `pyfront serve` prints once it is ready)."""
    return [_url(lp.address) for lp in getattr(stack.layers.get("front"), "listens", ())]


def other_urls(arbiter) -> list[str]:
    """Apps speaking HTTP themselves (`http-socket`) and the control server."""
    out = []
    for app in arbiter.stack.layers.get("apps", ()):
        for ls in app.listen:
            kind = "http" if ls.protocol == "http" else "uwsgi"
            shown = _url(ls.address) if kind == "http" else ls.address
            out.append(f"app {app.name} ({kind}) on {shown}")
    control = arbiter.components.get("control")
    for addr in getattr(control, "addresses", lambda: [])():
        out.append(f"control server (supervisorctl -s {addr}) on {addr}")
    return out


def main(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return 0
    if len(argv) > 1 or (argv and argv[0].startswith("-")):
        print(USAGE, file=sys.stderr)
        return 2
    bundled = not argv
    path = argv[0] if argv else BUNDLED_SITE
    try:
        stack = load_stack(path, bundled=bundled)
    except ConfigError as e:
        for d in e.diagnostics:
            print(d.format(), file=sys.stderr)
        return 1
    except Exception as e:   # a loader bug: one nginx-shaped line (PYFRONT_DEBUG=1 for the traceback)
        if os.environ.get("PYFRONT_DEBUG"):
            raise
        print(f"pyfront: [emerg] cannot load {path}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    for d in stack.diagnostics:
        print(d.format(), file=sys.stderr)

    from pyfront.arbiter import Arbiter

    def ready(arbiter: Arbiter) -> None:
        what = "the bundled example site" if bundled else stack.path
        for url in listen_urls(stack):
            print(f"pyfront: serving {what} on {url}", flush=True)
        for line in other_urls(arbiter):
            print(f"pyfront: {line}", flush=True)
        if not listen_urls(stack):
            print(f"pyfront: running {what}", flush=True)
        ctl = stack.layers.get("control")
        if bundled and ctl is not None and ctl.inet is not None:
            print(f"pyfront: dashboard on http://{ctl.inet.host or '127.0.0.1'}:{ctl.inet.port}/"
                  f" (user {ctl.inet.username}, password {os.environ.get(EXAMPLE_PASSWORD_ENV)};"
                  f" set {EXAMPLE_PASSWORD_ENV} to choose it)", flush=True)

    # nginx's implicit `access_log logs/access.log` resolves to RUN_DIR/logs (stack.py): make it.
    try:
        os.makedirs(os.path.join(stack.run_dir, "logs"), exist_ok=True)
    except OSError as e:
        print(f'pyfront: [emerg] mkdir() "{stack.run_dir}/logs" failed ({e.errno}: {e.strerror})',
              file=sys.stderr)
        return 1
    args = ["serve", *argv]
    return Arbiter(stack, args, on_ready=ready).run()
