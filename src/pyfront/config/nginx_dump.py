"""`pyfront check -T`: the EFFECTIVE nginx configuration, after includes and inheritance.

nginx -T prints the files it read; pyfront can do better and print what each server and
location will actually use, in nginx syntax, with `# file:line` of every block. Only
values that differ from nginx's defaults are printed, so the output reads like a
hand-written config; a location lists what it inherits as well as what it sets.

    render_effective(cfg) -> str
"""
from __future__ import annotations

from pyfront.config.model import FrontConfig, Location, Settings, UpstreamOptions
from pyfront.config.nginx_lexer import quote_word
from pyfront.config.nginx_values import format_size, format_time

_DEFAULT = Settings()
_UDEF = UpstreamOptions()


def _q(v: str) -> str:
    safe = v and all(c.isalnum() or c in "/._-:$@=*~^+,[]()" for c in v)
    return v if safe else quote_word(v)


def _flag(b: bool) -> str:
    return "on" if b else "off"


def _where(file, line) -> str:
    return f"  # {file}:{line}" if file else ""


def _settings_lines(s: Settings, types_default: tuple) -> list[str]:
    out: list[str] = []
    d = _DEFAULT
    if s.alias is not None:
        out.append(f"alias {_q(s.alias)};")
    elif s.root != d.root:
        out.append(f"root {_q(s.root)};")
    if s.index != d.index:
        out.append("index " + " ".join(_q(x) for x in s.index) + ";")
    if s.try_files:
        out.append("try_files " + " ".join(_q(x) for x in s.try_files) + ";")
    if s.types != types_default:
        out.append(f"# types: {len(s.types)} extensions of its own")
    for name in ("default_type", "if_modified_since", "server_tokens", "gzip_http_version", "gzip_static"):
        if getattr(s, name) != getattr(d, name):
            out.append(f"{name} {getattr(s, name)};")
    for name in ("sendfile", "tcp_nopush", "tcp_nodelay", "etag", "msie_padding", "log_not_found",
                 "absolute_redirect", "port_in_redirect", "server_name_in_redirect", "gzip", "gzip_vary",
                 "open_file_cache_errors"):
        if getattr(s, name) != getattr(d, name):
            out.append(f"{name} {_flag(getattr(s, name))};")
    for name, field in (("keepalive_timeout", "keepalive_timeout_ms"), ("send_timeout", "send_timeout_ms"),
                        ("client_body_timeout", "client_body_timeout_ms"),
                        ("open_file_cache_valid", "open_file_cache_valid_ms")):
        if getattr(s, field) != getattr(d, field):
            extra = f" {s.keepalive_header_timeout_s}" if name == "keepalive_timeout" and s.keepalive_header_timeout_s else ""
            out.append(f"{name} {format_time(getattr(s, field))}{extra};")
    for name in ("client_max_body_size", "client_body_buffer_size", "gzip_min_length"):
        if getattr(s, name) != getattr(d, name):
            out.append(f"{name} {format_size(getattr(s, name))};")
    for name in ("keepalive_requests", "gzip_comp_level", "open_file_cache_min_uses"):
        if getattr(s, name) != getattr(d, name):
            out.append(f"{name} {getattr(s, name)};")
    if s.open_file_cache is not None:
        out.append(f"open_file_cache max={s.open_file_cache.max} inactive={format_time(s.open_file_cache.inactive_ms)};")
    if s.expires is not None:
        e = s.expires
        val = {"epoch": "epoch", "max": "max"}.get(e.kind) or (
            ("@" if e.kind == "daily" else "modified " if e.kind == "modified" else "")
            + ("-" if e.ms < 0 else "") + format_time(abs(e.ms)))
        out.append(f"expires {val};")
    if s.charset is not None:
        out.append(f"charset {s.charset};")
    if s.charset_types != d.charset_types:
        out.append("charset_types " + " ".join(s.charset_types) + ";")
    if s.gzip_types != d.gzip_types:
        out.append("gzip_types " + " ".join(s.gzip_types) + ";")
    if s.gzip_proxied != d.gzip_proxied:
        out.append("gzip_proxied " + " ".join(s.gzip_proxied) + ";")
    for h in s.add_headers:
        out.append(f"add_header {_q(h.name)} {_q(h.value)}{' always' if h.always else ''};")
    for e in s.error_pages:
        ow = f" ={e.overwrite}" if e.overwrite is not None else (" =" if e.overwrite_from_upstream else "")
        out.append("error_page " + " ".join(map(str, e.codes)) + f"{ow} {_q(e.uri)};")
    if s.access_log_off:
        out.append("access_log off;")
    else:
        for a in s.access_logs:
            extra = (f" buffer={format_size(a.buffer)}" if a.buffer else "") + (
                f" flush={format_time(a.flush_ms)}" if a.flush_ms else "")
            out.append(f"access_log {_q(a.path)} {a.format.name}{extra};" + ("  # default" if a.implicit else ""))
    for e in s.error_logs:
        out.append(f"error_log {_q(e.path)} {e.level};")
    for prefix, opts in (("uwsgi", s.uwsgi), ("proxy", s.proxy)):
        out += _upstream_opts(prefix, opts)
    return out


def _upstream_opts(prefix: str, o: UpstreamOptions) -> list[str]:
    out = []
    pname = "uwsgi_param" if prefix == "uwsgi" else "proxy_set_header"
    for p in o.params:
        if prefix == "proxy" and p.file is None:
            continue      # nginx's built-in Host / Connection defaults
        out.append(f"{pname} {_q(p.name)} {_q(p.value)}{' if_not_empty' if p.if_not_empty else ''};")
    for name in ("connect_timeout_ms", "read_timeout_ms", "send_timeout_ms", "next_upstream_timeout_ms"):
        if getattr(o, name) != getattr(_UDEF, name):
            out.append(f"{prefix}_{name[:-3]} {format_time(getattr(o, name))};")
    for name in ("pass_request_headers", "pass_request_body", "buffering", "request_buffering", "intercept_errors"):
        if getattr(o, name) != getattr(_UDEF, name):
            out.append(f"{prefix}_{name} {_flag(getattr(o, name))};")
    if o.next_upstream != _UDEF.next_upstream:
        out.append(f"{prefix}_next_upstream " + " ".join(o.next_upstream) + ";")
    if o.next_upstream_tries:
        out.append(f"{prefix}_next_upstream_tries {o.next_upstream_tries};")
    for h in o.hide_headers:
        out.append(f"{prefix}_hide_header {h};")
    for h in o.pass_headers:
        out.append(f"{prefix}_pass_header {h};")
    if prefix == "proxy" and o.http_version != _UDEF.http_version:
        out.append(f"proxy_http_version {o.http_version};")
    return out


def _block(lines: list[str], depth: int) -> list[str]:
    pad = "    " * depth
    return [pad + line for line in lines]


def _location(loc: Location, depth: int, types_default) -> list[str]:
    out = ["    " * depth + f"location {loc.name} {{" + _where(loc.file, loc.line)]
    body = []
    if loc.return_ is not None:
        body.append(f"return {loc.return_.code}" + (f" {_q(loc.return_.text)}" if loc.return_.text else "") + ";")
    if loc.handler is not None:
        h = loc.handler
        body.append("stub_status;" if h.kind == "stub_status" else
                    f"{'uwsgi_pass' if h.kind == 'uwsgi' else 'proxy_pass'} {h.target.text};")
    body += _settings_lines(loc.settings, types_default)
    out += _block(body, depth + 1)
    for child in loc.locations:
        out += _location(child, depth + 1, types_default)
    out.append("    " * depth + "}")
    return out


def render_effective(cfg: FrontConfig) -> str:
    m, e, h = cfg.main, cfg.events, cfg.http
    out = [f"# effective nginx configuration of {cfg.prefix} (after includes and inheritance)",
           f"worker_processes {'auto' if m.worker_processes_auto else m.worker_processes};"
           + ("  # = " + str(m.worker_processes) if m.worker_processes_auto else "")]
    if m.pid:
        out.append(f"pid {m.pid};")
    for el in m.error_logs:
        out.append(f"error_log {el.path} {el.level};")
    if m.worker_rlimit_nofile:
        out.append(f"worker_rlimit_nofile {m.worker_rlimit_nofile};")
    if m.worker_shutdown_timeout_ms is not None:
        out.append(f"worker_shutdown_timeout {format_time(m.worker_shutdown_timeout_ms)};")
    out += ["events {", f"    worker_connections {e.worker_connections};",
            f"    accept_mutex {_flag(e.accept_mutex)};", f"    multi_accept {_flag(e.multi_accept)};", "}",
            "http {"]
    types_default = h.settings.types
    out.append(f"    # types: {len(types_default)} extensions (mime.types)")
    for lf in h.log_formats:
        if lf.name == "combined":
            continue
        out.append(f"    log_format {lf.name} {quote_word(lf.format)};")
    for u in h.upstreams:
        out.append(f"    upstream {u.name} {{" + _where(u.file, u.line))
        if u.method != "round_robin":
            out.append(f"        {u.method}" + (f" {u.hash_key}" if u.hash_key else "")
                       + (" consistent" if u.hash_consistent else "") + ";")
        for s in u.servers:
            opts = (f" weight={s.weight}" if s.weight != 1 else "") + (f" max_fails={s.max_fails}" if s.max_fails != 1 else "") \
                + (f" fail_timeout={format_time(s.fail_timeout_ms)}" if s.fail_timeout_ms != 10000 else "") \
                + (" backup" if s.backup else "") + (" down" if s.down else "")
            out.append(f"        server {s.address.text}{opts};")
        if u.keepalive:
            out.append(f"        keepalive {u.keepalive};")
        out.append("    }")
    for srv in h.servers:
        out.append("    server {" + _where(srv.file, srv.line))
        for ln in srv.listens:
            opts = (" default_server" if ln.default_server else "") + (" reuseport" if ln.reuseport else "") \
                + (f" backlog={ln.backlog}" if ln.backlog != 511 else "")
            out.append(f"        listen {ln.address.text}{opts};" + ("  # implicit" if ln.implicit else ""))
        out.append("        server_name " + " ".join(_q(n.text) if n.text else '""' for n in srv.server_names) + ";")
        if srv.return_ is not None:
            out.append(f"        return {srv.return_.code}" + (f" {_q(srv.return_.text)}" if srv.return_.text else "") + ";")
        out += _block(_settings_lines(srv.settings, types_default), 2)
        for loc in srv.locations:
            out += _location(loc, 2, types_default)
        out.append("    }")
    out.append("}")
    return "\n".join(out) + "\n"
