"""Cross-layer checks between the nginx layer's uwsgi_pass / proxy_pass targets and the
[uwsgi] apps of the same CONF_DIR (`pyfront check`; issue 4 point 3):

- a uwsgi_pass to a unix socket (or host:port) that no app in CONF_DIR serves, while
  CONF_DIR does define apps (the seed's `uwsgi_pass unix:...sock` with `http=127.0.0.1:8080`);
- a target served by an app that speaks the other protocol (uwsgi_pass -> http-socket,
  proxy_pass -> socket): uWSGI logs "invalid request block size" and nginx answers 502;
- the front's read timeout shorter than the app's harakiri (unbit/uwsgi#1567): the client
  gets a 504 while the app keeps working.
Every finding is a warning carrying both places (file:line of the pass, and of the app's
option), since a socket may also be served by something outside CONF_DIR.
"""
from __future__ import annotations

import os
import socket

from pyfront.config.diagnostics import Diagnostic

OWN = "pyfront's own check"


def _where(file, line) -> str:
    return f"{file}:{line}" if file and line else (file or "?")


def _targets(cfg, target):
    """Addresses a PassTarget reaches (an upstream block's servers, or the address)."""
    if target.upstream is not None:
        up = cfg.http.upstream(target.upstream)
        return [s.address for s in up.servers] if up is not None else []
    return [target.address] if target.address is not None else []


def _match(addr, listen) -> bool:
    if addr.kind == "unix":
        return listen.family == socket.AF_UNIX and os.path.normpath(addr.unix_path) == listen.target
    if listen.family == socket.AF_UNIX or addr.port is None:
        return False
    host, port = listen.target
    if port != addr.port:
        return False
    wild = host in ("0.0.0.0", "", "::")
    local = addr.host in ("127.0.0.1", "localhost", "::1")
    return wild and local or host == addr.host or (host == "localhost" and addr.host == "127.0.0.1")


def _app_option_where(app, listen):
    for opt in ("socket", "uwsgi-socket", "http-socket", "http"):
        for name, f, ln in app.where:
            if name == opt:
                return f, ln
    return app.file, app.line


def cross_layer(stack) -> list[Diagnostic]:
    cfg = getattr(stack, "front_config", None)
    apps = tuple(getattr(stack, "layers", {}).get("apps", ()) or ())
    if cfg is None or not apps:
        return []
    out: list[Diagnostic] = []
    for srv, loc, target in cfg.pass_targets():
        kind = "uwsgi" if loc.handler.kind == "uwsgi" else "http"
        directive = "uwsgi_pass" if kind == "uwsgi" else "proxy_pass"
        pf, pl = target.file, target.line
        for addr in _targets(cfg, target):
            served = [(a, ls) for a in apps for ls in a.listen if _match(addr, ls)]
            if not served:
                if kind != "uwsgi":
                    continue
                others = "; ".join(
                    f'app "{a.name}" listens on {ls.address} ({"HTTP" if ls.protocol == "http" else "uwsgi"}) '
                    f'in {_where(*_app_option_where(a, ls))}' for a in apps for ls in a.listen)
                out.append(Diagnostic(
                    "warn", f'"{directive} {target.text}" reaches no [uwsgi] app of this directory ({others})',
                    pf, pl, hint=f"{OWN}: point {directive} at an app's `socket =`, or give the app "
                                 f"`socket = {os.path.normpath(addr.unix_path) if addr.kind == 'unix' else addr.text}`"))
                continue
            for app, ls in served:
                af, al = _app_option_where(app, ls)
                if ls.protocol != kind:
                    speaks = "HTTP (http-socket/http)" if ls.protocol == "http" else "the uwsgi protocol (socket)"
                    fix = "proxy_pass http://..." if ls.protocol == "http" else "uwsgi_pass"
                    out.append(Diagnostic(
                        "warn", f'"{directive} {target.text}" reaches app "{app.name}" which speaks {speaks} '
                                f"on {ls.address} in {_where(af, al)}", pf, pl,
                        hint=f"{OWN}: use {fix}, or make the app listen with "
                             f"{'socket' if kind == 'uwsgi' else 'http-socket'} ="))
                harakiri = getattr(app, "harakiri", 0) or 0
                opts = loc.settings.uwsgi if kind == "uwsgi" else loc.settings.proxy
                if harakiri and opts.read_timeout_ms < harakiri * 1000:
                    hf, hl = app.location("harakiri")
                    out.append(Diagnostic(
                        "warn", f'"{kind if kind == "uwsgi" else "proxy"}_read_timeout" of location "{loc.name}" '
                                f"({opts.read_timeout_ms // 1000}s) is shorter than harakiri = {harakiri} of app "
                                f'"{app.name}" in {_where(hf, hl)}', pf, pl,
                        hint=f"{OWN}: the client gets 504 while the app keeps working; raise the read timeout "
                             f"above harakiri"))
    return out
