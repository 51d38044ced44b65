"""The links between the layers of a CONF_DIR, for `pyfront check` (issue 6 point 3).

Each layer validates itself while it loads (stack.load_stack); the front <-> app protocol
and timeout checks are in config.proxy_check.cross_layer. This module adds what only the
whole directory can tell, each as a Diagnostic naming `file:line` and the fix:

  - every root/alias directory of a static location exists           (warn: may be made later)
  - every [uwsgi] app imports (wsgi-file/module, in a forked child)  (emerg: serve would fail)
  - every [program:x] command is found and executable                (warn: serve starts, the
                                                                      program goes FATAL, as in supervisord)
  - no address is bound twice across layers (front listen, app socket, control server)
  - every app's buffer-size holds the request heads the front accepts (warn)

The virtualenv of an app (present, made for this Python) is checked by the app loader
itself (app.options.load_app) and so fails the check before this runs.
"""
from __future__ import annotations

import os
import signal
import socket
from dataclasses import fields, is_dataclass

from pyfront.config.diagnostics import Diagnostic

OWN = "pyfront"


def _where(f, ln) -> str:
    return f"{f}:{ln}" if f and ln else (f or "?")


# ---------------------------------------------------------------- static dirs
def static_dirs(cfg) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    seen: set[str] = set()
    for srv, loc in cfg.locations():
        if loc.handler is not None or loc.return_ is not None or srv.return_ is not None:
            continue
        s = loc.settings
        directive, path = ("alias", s.alias) if s.alias else ("root", s.root)
        if not path or "$" in path or path in seen:
            continue
        seen.add(path)
        if not os.path.isdir(path):
            why = "does not exist" if not os.path.exists(path) else "is not a directory"
            out.append(Diagnostic("warn", f'{directive} "{path}" of location "{loc.name}" {why}', loc.file, loc.line,
                                  hint=f"{OWN}: create it, or fix the {directive} path (requests there get 404)"))
    return out


# ---------------------------------------------------------------- apps import
def apps_import(apps) -> list[Diagnostic]:
    from pyfront.app.loader import check_app
    out: list[Diagnostic] = []
    for app in apps:
        err = check_app(app)
        if err is None:
            continue
        last = [ln for ln in err.strip().splitlines() if ln.strip()][-1:] or ["(no message)"]
        last = [last[0].strip().removeprefix("unable to load app: ")]
        which = "wsgi-file" if getattr(app, "wsgi_file", None) else "module"
        f, ln = app.location(which)
        out.append(Diagnostic("emerg", f'app "{app.name}" does not load: {last[0].strip()}', f, ln,
                              hint=f"{OWN}: run `pyfront app --ini {app.file}` to see the whole traceback, "
                                   f"then fix the app or its chdir/{which}/virtualenv"))
    return out


# ---------------------------------------------------------------- program commands
def program_commands(sup) -> list[Diagnostic]:
    from pyfront.supervise.osapi import OSApi, SpawnError
    out: list[Diagnostic] = []
    for g in sup.groups:
        for p in g.processes:
            if not p.argv:
                continue
            argv0 = p.argv[0]
            if "/" in argv0 and not os.path.isabs(argv0) and p.directory:
                argv0 = os.path.join(p.directory, argv0)
            try:
                OSApi.resolve_command(None, argv0, dict(p.environment).get("PATH", os.environ.get("PATH")))
            except SpawnError as e:
                out.append(Diagnostic("warn", f'program "{p.namespec}": {e.message}', p.file or None, p.line,
                                      hint=f"{OWN}: it would go FATAL; fix `command =` (an absolute path, or a "
                                           "name on PATH), or install the program"))
    return out


# ---------------------------------------------------------------- addresses bound twice
def _front_binds(cfg):
    for srv in cfg.http.servers:
        for ln in srv.listens:
            a = ln.address
            if a.kind == "unix":
                yield ("unix", os.path.normpath(a.unix_path)), f"listen {a.text}", ln.file, ln.line
            elif a.kind == "inet" and a.port:
                fam = socket.AF_INET6 if ":" in (a.host or "") else socket.AF_INET
                yield (fam, a.host or "0.0.0.0", a.port), f"listen {a.text}", ln.file, ln.line


def _app_binds(apps):
    for app in apps:
        for ls in app.listen:
            opt = "socket" if ls.protocol == "uwsgi" else "http-socket"
            f, ln = app.location(opt)
            if ls.family == socket.AF_UNIX:
                yield ("unix", os.path.normpath(ls.target)), f'app "{app.name}" {opt} = {ls.address}', f, ln
            else:
                host, port = ls.target[0], ls.target[1]
                yield (ls.family, host or ("::" if ls.family == socket.AF_INET6 else "0.0.0.0"), port), \
                    f'app "{app.name}" {opt} = {ls.address}', f, ln


def _control_binds(sup):
    for srv, kind in ((sup.inet, "inet"), (sup.unix, "unix")):
        if srv is None:
            continue
        f, _, ln = (srv.where or "").rpartition(":")
        line = int(ln) if ln.isdigit() else 0
        if kind == "unix" and srv.file:
            yield ("unix", os.path.normpath(srv.file)), f"[unix_http_server] file = {srv.file}", f or None, line
        elif kind == "inet" and srv.port:
            host = srv.host or "0.0.0.0"
            fam = socket.AF_INET6 if ":" in host else socket.AF_INET
            yield (fam, host, srv.port), f"[inet_http_server] port = {srv.host}:{srv.port}", f or None, line


def _collide(a, b) -> bool:
    if a[0] == "unix" or b[0] == "unix":
        return a == b
    if a[2] != b[2]:
        return False
    wild = ("0.0.0.0", "::", "*", "")
    if a[0] == b[0]:
        return a[1] == b[1] or a[1] in wild or b[1] in wild
    # an IPv6 wildcard also takes IPv4 unless ipv6only (nginx sets ipv6only=on by default)
    return False


def bound_twice(cfg, apps, sup) -> list[Diagnostic]:
    binds: list[tuple] = []
    if cfg is not None:
        front = {}
        for key, what, f, ln in _front_binds(cfg):
            front.setdefault(key, (key, what, f, ln, "front"))   # several servers may share a listen
        binds.extend(front.values())
    binds.extend((k, w, f, ln, "app") for k, w, f, ln in _app_binds(apps or ()))
    if sup is not None:
        binds.extend((k, w, f, ln, "control") for k, w, f, ln in _control_binds(sup))
    out: list[Diagnostic] = []
    for i, (ka, wa, fa, la, _layer) in enumerate(binds):
        for kb, wb, fb, lb, _ in binds[:i]:
            if _collide(ka, kb):
                out.append(Diagnostic("emerg", f'"{wa}" binds the same address as "{wb}" ({_where(fb, lb)})', fa, la,
                                      hint=f"{OWN}: give each layer its own address (the second bind would fail "
                                           "with \"Address already in use\")"))
                break
    return out


# ---------------------------------------------------------------- buffer sizes
def buffer_sizes(cfg, apps) -> list[Diagnostic]:
    """A uwsgi packet carries the request head (plus the CGI vars); the app drops a packet
    larger than its buffer-size (uWSGI: "invalid request block size"), which the client sees
    as 502. The front accepts a header line up to large_client_header_buffers' size."""
    from pyfront.config.proxy_check import _match, _targets
    out: list[Diagnostic] = []
    done: set[tuple[str, str]] = set()
    for srv, loc, target in cfg.pass_targets():
        if loc.handler.kind != "uwsgi":
            continue
        nbuf, size = getattr(srv, "large_client_header_buffers", (4, 8192))
        for addr in _targets(cfg, target):
            for app in apps:
                if (app.name, srv.file or "") in done:
                    continue
                if not any(_match(addr, ls) for ls in app.listen):
                    continue
                if app.buffer_size < size:
                    done.add((app.name, srv.file or ""))
                    f, ln = app.location("buffer-size")
                    out.append(Diagnostic(
                        "warn", f'app "{app.name}" buffer-size = {app.buffer_size} is smaller than the request '
                                f"heads the front accepts (large_client_header_buffers {nbuf} {size // 1024}k of "
                                f"the server in {_where(srv.file, srv.line)})", f, ln,
                        hint=f"{OWN}: requests with a larger head (big cookies) would get 502; set "
                             f"buffer-size = {min(65535, nbuf * size)} in the app (the setting to align), "
                             f"or lower large_client_header_buffers"))
    return out


def stack_links(stack, *, import_apps: bool = True) -> list[Diagnostic]:
    cfg = getattr(stack, "front_config", None)
    layers = getattr(stack, "layers", {})
    apps = tuple(layers.get("apps", ()) or ())
    sup = layers.get("programs")
    out: list[Diagnostic] = []
    if cfg is not None:
        out += static_dirs(cfg)
    out += bound_twice(cfg, apps, sup)
    if cfg is not None and apps:
        out += buffer_sizes(cfg, apps)
    if sup is not None:
        out += program_commands(sup)
    if apps and import_apps:
        out += apps_import(apps)
    return out


# ---------------------------------------------------------------- -T: effective config
def _render_value(v) -> str:
    if isinstance(v, (tuple, list)):
        return " ".join(_render_value(x) for x in v) if v else "(none)"
    if v is None:
        return "(none)"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def render_layers(stack) -> str:
    """[uwsgi] and [program:x] sections as pyfront runs them: every option with its value
    after defaults, %(here)s expansion and path resolution."""
    layers = getattr(stack, "layers", {})
    lines: list[str] = []
    for app in layers.get("apps", ()) or ():
        lines.append(f"# effective [uwsgi] app {app.name} (from {app.file}):")
        lines.append("[uwsgi]")
        for fl in fields(app):
            if fl.name in ("where", "file", "line", "name", "venv_site"):
                continue
            v = getattr(app, fl.name)
            if fl.name == "listen":
                for ls in v:
                    lines.append(f"{'socket' if ls.protocol == 'uwsgi' else 'http-socket'} = {ls.address}")
                continue
            lines.append(f"{fl.name.replace('_', '-')} = {_render_value(v)}")
        lines.append("")
    sup = layers.get("programs")
    if sup is not None:
        for g in sup.groups:
            for p in g.processes:
                lines.append(f"# effective [program:{p.program}] process {p.namespec} (from {p.file}):")
                lines.append(f"[program:{p.program}]")
                for fl in fields(p):
                    if fl.name in ("file", "line", "name", "group", "program", "argv"):
                        continue
                    v = getattr(p, fl.name)
                    if fl.name == "environment":
                        v = tuple(f"{k}={val}" for k, val in v)
                    elif fl.name == "stopsignal":
                        v = signal.Signals(v).name[3:]
                    lines.append(f"{fl.name} = {_render_value(v) if not is_dataclass(v) else v}")
                lines.append("")
    return "\n".join(lines) + ("\n" if lines else "")
