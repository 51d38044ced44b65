"""Checks that need the whole http block (as nginx does them after parsing it), and
pyfront's own warnings about configs that nginx accepts but that do not do what they say.

nginx's post-parse checks keep nginx's wording: `duplicate location "/a"`,
`no port in upstream "backend"`, `unknown "foo" variable`, `conflicting server name ...`.
pyfront's own warnings carry a hint starting with "pyfront's own check:" so an operator
can tell them from nginx's.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace

from pyfront.config.diagnostics import Report
from pyfront.config.model import FrontConfig, Location, ServerName, Settings

OWN = "pyfront's own check: "

# Variables pyfront evaluates (front and access log). Prefix families are listed apart.
VARIABLES = frozenset("""
args binary_remote_addr body_bytes_sent bytes_sent connection connection_requests content_length
content_type document_root document_uri host hostname http_host https is_args is_request_port
msec nginx_version pid pipe proxy_add_x_forwarded_for proxy_host proxy_port query_string
realpath_root remote_addr remote_port remote_user request request_body request_completion
request_filename request_id request_length request_method request_port request_time request_uri
scheme sent_http_content_type server_addr server_name server_port server_protocol status
time_iso8601 time_local uri upstream_addr upstream_connect_time upstream_header_time
upstream_response_length upstream_response_time upstream_status
""".split())
VARIABLE_PREFIXES = ("http_", "sent_http_", "cookie_", "arg_", "upstream_http_", "sent_trailer_")
# Variables nginx has that pyfront does not evaluate: an emerg naming them as unsupported.
NGINX_ONLY_VARIABLES = frozenset("""
ssl_protocol ssl_cipher ssl_client_cert ssl_client_s_dn ssl_server_name ssl_session_id
upstream_cache_status gzip_ratio limit_rate realip_remote_addr realip_remote_port
geoip_country_code invalid_referer secure_link uid_got uid_set upstream_bytes_received
upstream_bytes_sent upstream_trailer_ tcpinfo_rtt fastcgi_script_name fastcgi_path_info
""".split())

# `$1x` is capture 1 then "x" (nginx reads one digit after `$`)
_VAR = re.compile(r"\$(?:([0-9])|\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))")


def variables_in(text: str) -> list[str]:
    return [a or b or c for a, b, c in _VAR.findall(text)]


def is_supported_variable(name: str) -> bool:
    return name in VARIABLES or name.isdigit() or name.startswith(VARIABLE_PREFIXES)


# ---------------------------------------------------------------- nginx's post-parse checks

def check_http_end(p) -> None:
    """Run when the http block is complete: nginx's init_main_conf / init_locations order."""
    h = p.http
    for u in h.upstreams.values():
        # round-robin initialisation needs a primary server (ip_hash/hash/random drop backups)
        primaries = [sv for sv in u.servers if not sv.backup]
        if not primaries:
            hint = (f'"{u.method}" does not support "backup" servers; remove "backup" or the balancing method'
                    if u.backup_conflict else 'every server is "backup"; make one a primary server')
            p.emerg(f'no servers in upstream "{u.name}"', file=u.file, line=u.line, hint=hint)
    # upstream names: a pass target without a port names an upstream block; proxy_pass
    # falls back to the host on port 80, uwsgi_pass has no default port
    from pyfront.config.nginx_parser import resolve
    resolved = {}
    for orig in h.passes:
        t, a = orig, orig.address
        if t.upstream is not None and t.upstream not in h.upstreams:
            if t.scheme != "http":
                p.emerg(f'no port in upstream "{t.upstream}"', file=t.file, line=t.line)
            a = replace(a, port=80, text=f"[{a.host}]:80" if ":" in a.host else f"{a.host}:80")
            t = replace(t, address=a, upstream=None)
        if t.upstream is None and a is not None and a.kind == "name":
            ips = resolve(a.host, a.port)
            if not ips:
                p.emerg(f'host not found in upstream "{a.host}"', file=t.file, line=t.line)
            t = replace(t, address=replace(a, resolved=ips))
        if t is not orig:
            resolved[id(orig)] = t
    if resolved:
        for lvl in _levels(p):
            hd = lvl.handler if hasattr(lvl, "handler") else None
            if hd is not None and hd.target is not None and id(hd.target) in resolved:
                lvl.handler = replace(hd, target=resolved[id(hd.target)])
    # uwsgi_param / proxy_set_header values are compiled when nginx merges the levels,
    # after the upstreams are initialised
    from pyfront.config.nginx_parser import var_syntax_error
    for text, file, line in p.deferred_vars:
        err = var_syntax_error(text)
        if err:
            p.emerg(err, file=file, line=line)
        p.pending_vars.append((text, file, line))
    for srv in h.servers:
        _check_locations(p, srv.level.locations)
    # variables (nginx checks them last, without a location; pyfront adds where they were used)
    captures = _named_captures(p)
    for text, file, line in p.pending_vars:
        for name in variables_in(text):
            if is_supported_variable(name) or name in captures:
                continue
            if name in NGINX_ONLY_VARIABLES or name.startswith(("ssl_", "geoip_", "upstream_cache")):
                p.emerg(f'"${name}" variable is not supported by pyfront', file=file, line=line,
                        hint="remove it or use a supported variable; docs/reference-nginx.md lists them")
            p.emerg(f'unknown "{name}" variable', file=file, line=line)
    _check_server_names(p)


def _named_captures(p) -> set:
    """Named groups of server_name and location regexes: nginx makes them variables."""
    from pyfront.config.nginx_match import compile_regex
    names: set = set()
    stack = []
    for srv in p.http.servers:
        for n in srv.names:
            if n.kind == "regex":
                names.update(compile_regex(n.pattern, False).groupindex)
        stack.extend(srv.level.locations)
    while stack:
        ls = stack.pop()
        if ls.modifier in ("~", "~*"):
            names.update(compile_regex(ls.path, ls.modifier == "~*").groupindex)
        stack.extend(ls.level.locations)
    return names


def _check_locations(p, locs) -> None:
    seen: dict[tuple[bool, str], object] = {}
    for ls in locs:
        if ls.modifier in ("~", "~*", "@"):
            pass
        else:
            key = (ls.modifier == "=", ls.path)
            if key in seen:
                p.emerg(f'duplicate location "{ls.path}"', file=ls.file, line=ls.line)
            seen[key] = ls
        _check_locations(p, ls.level.locations)


def _check_server_names(p) -> None:
    by_addr: dict[str, dict[str, object]] = {}
    for srv in p.http.servers:
        addrs = [ln.address.text for ln in srv.listens] or ["0.0.0.0:80"]
        for a in addrs:
            names = by_addr.setdefault(a, {})
            for sn in srv.names or [ServerName("", "exact")]:   # no server_name: ""
                if sn.kind == "regex":
                    continue
                if sn.text in names and names[sn.text] is not srv:
                    p.warn(f'conflicting server name "{sn.text}" on {a}, ignored', file=None, line=0)
                else:
                    names[sn.text] = srv


# ---------------------------------------------------------------- pyfront's own warnings

def _walk(locs, parent_settings):
    for loc in locs:
        yield loc, parent_settings
        yield from _walk(loc.locations, loc.settings)


def warnings(cfg: FrontConfig, report: Report, p=None) -> None:
    http = cfg.http
    if p is not None:
        _gzip_types_check(p, report)
    for srv in http.servers:
        _uwsgi_param_check(srv, http.settings, report)
        for loc, parent in _walk(srv.locations, srv.settings):
            _alias_check(loc, report)
            _uwsgi_param_check(loc, parent, report)


def _levels(p):
    yield p.http.level
    stack = []
    for srv in p.http.servers:
        yield srv.level
        stack.extend(srv.level.locations)
    while stack:
        ls = stack.pop(0)
        yield ls.level
        stack.extend(ls.level.locations)


def _gzip_types_check(p, report: Report) -> None:
    from pyfront.config.nginx_build import _effective
    cache: dict = {}
    for lvl in _levels(p):
        where = lvl.v.get("_where_gzip_types")
        if where is None:
            continue
        if _effective(lvl, cache).get("gzip", False):
            continue
        report.warn('"gzip_types" has no effect because "gzip" is off', where[0], where[1],
                    hint=OWN + 'add "gzip on;" at the same level, or remove "gzip_types"')


def _alias_check(loc: Location, report: Report) -> None:
    alias = loc.settings.alias
    if alias is None or loc.modifier not in ("", "^~") or "$" in alias:
        return
    if not loc.path.endswith("/") and alias.endswith("/"):
        report.warn(f'location "{loc.path}" has no trailing slash but its alias "{alias}" has one',
                    loc.file, loc.line,
                    hint=OWN + f'with nginx, "{loc.path}../" reaches outside {alias} (path traversal); '
                    f'write "location {loc.path}/" (pyfront itself never serves outside the alias)')


def _uwsgi_param_check(node, parent: Settings, report: Report) -> None:
    """A level with its own uwsgi_param loses every inherited one (nginx's rule): warn when
    some inherited names are not set again at this level."""
    own = node.settings.uwsgi
    if own.params_inherited or not own.params or not parent.uwsgi.params:
        return
    names = {p.name for p in own.params}
    dropped = [p.name for p in parent.uwsgi.params if p.name not in names]
    if not dropped:
        return
    first = own.params[0]
    where = f'location "{node.name}"' if isinstance(node, Location) else "this server"
    shown = ", ".join(dropped[:4]) + (", ..." if len(dropped) > 4 else "")
    report.warn(f'"uwsgi_param" in {where} drops {len(dropped)} uwsgi_param inherited from the outer level '
                f'({shown})', first.file, first.line,
                hint=OWN + "nginx inherits uwsgi_param only by levels that have none; "
                "repeat `include uwsgi_params;` at this level")


# ---------------------------------------------------------------- cross-layer: front → app servers

@dataclass(frozen=True)
class Endpoint:
    """One socket an app server of CONF_DIR listens on (built from the [uwsgi] layer's config)."""
    app: str                    # the app's name
    protocol: str               # "uwsgi" | "http"
    unix_path: str | None       # normalised absolute path, or None for TCP
    host: str | None = None
    port: int | None = None
    address: str = ""           # as written in the ini (for messages)
    harakiri_s: int = 0
    file: str | None = None
    line: int = 0


def endpoints_from_apps(apps) -> list[Endpoint]:
    """Adapter for pyfront.app.options.AppConfig objects (duck-typed: name, file, line, listen, harakiri)."""
    import socket as _s
    out = []
    for app in apps:
        for ln in getattr(app, "listen", ()):
            if ln.family == _s.AF_UNIX:
                out.append(Endpoint(app.name, ln.protocol, ln.target, address=ln.address,
                                    harakiri_s=getattr(app, "harakiri", 0) or 0, file=app.file, line=app.line))
            else:
                host, port = ln.target
                out.append(Endpoint(app.name, ln.protocol, None, host, port, ln.address,
                                    getattr(app, "harakiri", 0) or 0, app.file, app.line))
    return out


_WILDCARD = ("0.0.0.0", "::", "", "*")
_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _same_socket(addr, ep: Endpoint) -> bool:
    if addr.kind == "unix":
        return ep.unix_path is not None and os.path.normpath(addr.unix_path) == os.path.normpath(ep.unix_path)
    if ep.unix_path is not None or addr.port != ep.port:
        return False
    hosts = {addr.host, *addr.resolved}
    return ep.host in hosts or ep.host in _WILDCARD or (ep.host in _LOOPBACK and hosts & set(_LOOPBACK))


def cross_check(cfg: FrontConfig, endpoints: list[Endpoint], report: Report) -> None:
    """Every uwsgi_pass / proxy_pass against the app servers of CONF_DIR (issue 4 point 3).

    - a target no app serves: warn (it may be an app outside CONF_DIR), naming the apps that exist;
    - a target an app serves with the other protocol (uwsgi_pass to `http-socket`, proxy_pass to
      `socket`): error, with both file:line;
    - a front read timeout shorter than the app's harakiri: warn (the client gets a 504 while the
      request still runs).
    """
    seen: set = set()
    for srv, loc, t in cfg.pass_targets():
        want = "uwsgi" if t.scheme in ("uwsgi", "suwsgi") else "http"
        if t.upstream is not None:
            up = cfg.http.upstream(t.upstream)
            addrs = [(s.address, s.file, s.line) for s in up.servers] if up else []
        elif t.address is not None:
            addrs = [(t.address, t.file, t.line)]
        else:
            continue       # variables: resolved per request
        timeout = (loc.settings.uwsgi if want == "uwsgi" else loc.settings.proxy).read_timeout_ms
        directive = "uwsgi_pass" if want == "uwsgi" else "proxy_pass"
        for addr, file, line in addrs:
            key = (addr.text, file, line, loc.file, loc.line)
            if key in seen:
                continue
            seen.add(key)
            match = [ep for ep in endpoints if _same_socket(addr, ep)]
            if not match:
                if endpoints:
                    apps = "; ".join(f"[uwsgi] {ep.app} ({ep.file}:{ep.line}) listens on "
                                     f"{'socket' if ep.protocol == 'uwsgi' else 'http-socket'}={ep.address}"
                                     for ep in endpoints)
                    report.warn(f'"{directive}" target "{addr.text}" is served by no app in this directory',
                                file, line, hint=OWN + f"{apps}; make the two addresses the same")
                continue
            for ep in match:
                if ep.protocol != want:
                    kind = "uwsgi (socket=)" if ep.protocol == "uwsgi" else "HTTP (http-socket= / http=)"
                    fix = ("use proxy_pass http://" + addr.text if want == "uwsgi"
                           else "use uwsgi_pass " + addr.text)
                    report.add("error", f'"{directive}" speaks {want} to "{addr.text}", but app "{ep.app}" '
                               f'serves {kind} there ({ep.file}:{ep.line})', file, line,
                               hint=OWN + f"{fix}, or change the app to "
                               + ("socket=" if want == "uwsgi" else "http-socket="))
                elif ep.harakiri_s and timeout < ep.harakiri_s * 1000:
                    report.warn(f'"{directive[:-5]}_read_timeout" ({timeout // 1000}s) is shorter than harakiri '
                                f'{ep.harakiri_s} of app "{ep.app}" ({ep.file}:{ep.line})', loc.file, loc.line,
                                hint=OWN + "the client gets 504 while the request still runs; raise the timeout "
                                "above harakiri")
