"""`pyfront serve [CONF_DIR]`: run front, apps and programs in the foreground.

With no CONF_DIR it runs the bundled example (src/pyfront/examples/site, shipped in the
wheel): the static site on http://127.0.0.1:8080/, a stdlib WSGI app at /app/, one supervised
program and the dashboard on 127.0.0.1:9001 with a generated password, printed at start. Configuration and startup errors are printed
nginx-style (`pyfront: [emerg] ... in file:line`) and exit 1 — never a traceback.
"""
from __future__ import annotations

import errno
import os
import shutil
import socket
import sys

from pyfront.config.diagnostics import ConfigError
from pyfront.stack import BUNDLED_SITE, EXAMPLE_PASSWORD_ENV, load_stack

USAGE = """usage: pyfront serve [CONF_DIR]
       pyfront serve [--port PORT]

Run every layer configured in CONF_DIR (nginx *.conf, [uwsgi] and [program:x] sections)
in the foreground. Without CONF_DIR, run the bundled example: a static site on
127.0.0.1:8080, a WSGI app at /app/ (its app server on 127.0.0.1:8081), a supervised
program and the dashboard on 127.0.0.1:9001 (user admin, password printed at start;
PYFRONT_EXAMPLE_PASSWORD sets it).
--port PORT runs the bundled example on PORT, PORT+1 and PORT+2 instead: it is copied,
with those ports, to a per-user directory (printed), an ordinary CONF_DIR from then on.
Signals: HUP reload, QUIT graceful stop, TERM/INT fast stop, USR1 reopen logs."""

# The bundled example's ports: (port, what listens there). --port P maps them to P, P+1, P+2.
EXAMPLE_PORTS = ((8080, "front", "site.conf"), (8081, "app server", "app.ini"),
                 (9001, "dashboard and control server", "programs.conf"))
EXAMPLE_FILES = ("site.conf", "app.ini", "programs.conf", "html/index.html")


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


def _port_arg(argv: list[str]) -> tuple[list[str], int | None, str | None]:
    """(argv without --port, the port or None, an error text or None)."""
    rest, port = [], None
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--port" or a.startswith("--port="):
            val = a.partition("=")[2] if "=" in a else (argv[i + 1] if i + 1 < len(argv) else "")
            i += 1 if "=" in a else 2
            if not val.isdigit() or not 1 <= int(val) <= 65533:
                return rest, None, f'invalid --port "{val}" (a number from 1 to 65533: the example uses it and the next two)'
            port = int(val)
            continue
        rest.append(a)
        i += 1
    return rest, port, None


def example_copy(port: int) -> str:
    """The bundled example copied to a per-user directory with its ports moved to PORT,
    PORT+1, PORT+2 and the dashboard password written in (it is an ordinary CONF_DIR from
    then on: `pyfront signal reload DIR` and `pyfront ctl -c DIR` work on it)."""
    from pyfront.pidfile import default_run_dir
    dest = os.path.join(os.path.dirname(default_run_dir(BUNDLED_SITE, True)), f"example-site-{port}")
    shutil.copytree(BUNDLED_SITE, dest, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("run", "__pycache__"))
    password = os.environ.get(EXAMPLE_PASSWORD_ENV)
    if not password:
        import secrets
        password = secrets.token_urlsafe(12)
    for name in EXAMPLE_FILES:
        f = os.path.join(dest, name)
        with open(BUNDLED_SITE + "/" + name, encoding="utf-8") as src:
            text = src.read()
        for i, (old, _, _) in enumerate(EXAMPLE_PORTS):
            text = text.replace(f"127.0.0.1:{old}", f"127.0.0.1:\0{port + i}")
        text = text.replace("\0", "").replace(f"%(ENV_{EXAMPLE_PASSWORD_ENV})s", password)
        with open(f, "w", encoding="utf-8") as out:
            out.write(text)
    os.chmod(os.path.join(dest, "programs.conf"), 0o600)     # it holds the dashboard password
    return dest


def busy_example_port(path: str, shift: int | None) -> str | None:
    """The bundled example's fixed ports are the likeliest to be taken on a developer's
    machine: say which one, what the example runs there and how to choose others, instead of
    a bind error from deep inside the boot."""
    for i, (default, what, name) in enumerate(EXAMPLE_PORTS):
        port = default if shift is None else shift + i
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            continue
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                continue          # let the real bind report anything else
            err = e
        finally:
            s.close()
        where = ""
        try:
            with open(os.path.join(path, name), encoding="utf-8") as f:
                n = next((k for k, ln in enumerate(f, 1) if f"127.0.0.1:{port}" in ln), None)
            where = f" ({os.path.join(path, name)}:{n})" if n else ""
        except OSError:
            pass
        other = 8090 if shift is None or shift != 8090 else 8100
        return (f"pyfront: [emerg] port {port} is already in use ({err.errno}: {err.strerror}): the bundled "
                f"example's {what} listens there{where}\n"
                f"pyfront: run the example on other ports with `pyfront serve --port {other}` (it uses {other}, "
                f"{other + 1} and {other + 2}), or stop the program holding port {port} "
                f"(`ss -ltnp 'sport = :{port}'` shows it)")
    return None


def main(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return 0
    argv, port, bad = _port_arg(argv)
    if bad:
        print(f"pyfront: {bad}\n\n{USAGE}", file=sys.stderr)
        return 2
    if len(argv) > 1 or (argv and argv[0].startswith("-")) or (argv and port is not None):
        print(USAGE, file=sys.stderr)
        return 2
    bundled = not argv
    path = argv[0] if argv else BUNDLED_SITE
    if bundled:
        if port is not None:
            try:
                path = example_copy(port)
            except OSError as e:
                print(f"pyfront: [emerg] cannot copy the bundled example ({e})", file=sys.stderr)
                return 1
        msg = busy_example_port(path, port)
        if msg:
            print(msg, file=sys.stderr)
            return 1
    try:
        stack = load_stack(path, bundled=bundled and port is None)
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
        what = "the bundled example site" if bundled and port is None else stack.path
        if port is not None:
            print(f"pyfront: the bundled example, copied to {stack.path} with ports {port}, {port + 1} and "
                  f"{port + 2} (reload it with `pyfront signal reload {stack.path}`)", flush=True)
        for url in listen_urls(stack):
            print(f"pyfront: serving {what} on {url}", flush=True)
        for line in other_urls(arbiter):
            print(f"pyfront: {line}", flush=True)
        if not listen_urls(stack):
            print(f"pyfront: running {what}", flush=True)
        ctl = stack.layers.get("control")
        if bundled and ctl is not None and ctl.inet is not None:
            print(f"pyfront: dashboard on http://{ctl.inet.host or '127.0.0.1'}:{ctl.inet.port}/"
                  f" (user {ctl.inet.username}, password {ctl.inet.password or os.environ.get(EXAMPLE_PASSWORD_ENV)};"
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
