"""Compile the front's effective configuration into the route-table blob read by C.

Two layers:
- a *plan* (ServerPlan / LocationPlan / ConfPlan below): plain frozen data with nginx's
  defaults, one ConfPlan per server and per location holding the EFFECTIVE settings;
- `build_blob(servers, log_formats)` serialises a plan into the versioned, pointer-free
  blob (docs/route-table.md) that src/c/router.c checks and copies.

`compile_front(config)` adapts the config helper's frozen FrontConfig to a plan and
builds the blob. The C side never calls back into Python per request.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

MAGIC = 0x54524650          # "PFRT"
VERSION = 1
NONE = 0xFFFFFFFF

SEC_STR, SEC_IDX, SEC_LIST, SEC_ADDR, SEC_SERVER, SEC_NAME, SEC_LOC, SEC_CONF, SEC_MIME, \
    SEC_TPL, SEC_TPLOP, SEC_LOGFILE, SEC_ACCLOG, SEC_ERRPAGE, SEC_HEADER = range(1, 16)

NAME_EXACT, NAME_WILD_HEAD, NAME_WILD_TAIL, NAME_REGEX = 1, 2, 3, 4
LOC_KINDS = {"": 1, "^~": 2, "=": 3, "~": 4, "~*": 5, "@": 6}

F_SENDFILE, F_ETAG, F_GZIP, F_GZIP_STATIC, F_GZIP_VARY, F_SERVER_TOKENS, F_LOG_NOT_FOUND, \
    F_TCP_NOPUSH, F_MSIE_PADDING, F_ABS_REDIRECT, F_PORT_IN_REDIRECT, F_GZIP_TYPES_ANY, \
    F_TCP_NODELAY, F_ADD_HEADER_INHERIT, F_GZIP_DISABLE_MSIE6, F_SERVER_NAME_IN_REDIRECT, \
    F_UNDERSCORES_IN_HEADERS, F_GZIP_PROXIED_ANY, F_GZIP_HTTP10, F_STUB_STATUS = (1 << i for i in range(20))
EXPIRES_MODES = {"off": 0, "epoch": 1, "max": 2, "access": 3, "modified": 4}
IMS_MODES = {"off": 0, "exact": 1, "before": 2}
ESCAPES = {"default": 1, "json": 2, "none": 3}
LOG_LEVELS = {"emerg": 0, "alert": 1, "crit": 2, "error": 3, "warn": 4, "notice": 5, "info": 6, "debug": 7}

# $variables understood by the C core (src/c/pf_int.h enum pf_var; same order).
VARIABLES = [
    None, "remote_addr", "remote_user", "time_local", "request", "status",
    "body_bytes_sent", "bytes_sent", None, "request_time", "request_method", "request_uri",
    "uri", "host", "server_name", "server_port", "server_addr", "remote_port", "msec",
    "time_iso8601", "connection", "connection_requests", "pid", "scheme", "server_protocol",
    "args", "is_args", "request_length", "content_length", "content_type", "document_root",
    "request_filename", None, "hostname", "nginx_version",
    # proxy variables (src/c/vars_proxy.c)
    "proxy_add_x_forwarded_for", "proxy_host", "proxy_port", "request_id", "https", "is_request_port",
    "request_port", "upstream_addr", "upstream_status", "upstream_response_time", "upstream_connect_time",
    "upstream_header_time", "upstream_response_length", "binary_remote_addr", "realpath_root", "pipe",
    "request_completion", None,
]
VAR_IDS = {name: i for i, name in enumerate(VARIABLES) if name}
VAR_IDS["document_uri"] = VAR_IDS["uri"]
VAR_IDS["query_string"] = VAR_IDS["args"]
V_HTTP = 8
V_ARG = 32
V_UPSTREAM_HTTP = VARIABLES.index("request_completion") + 1

COMBINED = ('$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
            '"$http_referer" "$http_user_agent"')
MAIN = ('$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
        '"$http_referer" "$http_user_agent" "$http_x_forwarded_for"')

DEFAULT_CHARSET_TYPES = ("text/html", "text/xml", "text/plain", "text/vnd.wap.wml",
                         "application/javascript", "application/rss+xml")


class CompileError(ValueError):
    """A setting the C core cannot serve (unknown $variable, bad regex, ...)."""


@dataclass(frozen=True)
class ConfPlan:
    """Effective settings of one server or location (nginx defaults; sizes bytes, times ms)."""
    root: str = "html"
    alias: bool = False
    loc_prefix: str = ""            # the location's literal prefix, for alias mapping
    index: tuple[str, ...] = ("index.html",)
    try_files: tuple[str, ...] = ()
    return_code: int = -1
    return_text: str | None = None
    error_pages: tuple[tuple[int, int, str], ...] = ()   # (code, overwrite -1 none / 0 "=" / N, uri)
    add_headers: tuple[tuple[str, str, bool], ...] = ()
    expires: str = "off"            # off | epoch | max | access | modified
    expires_s: int = 0
    charset: str = ""               # "" = off
    charset_types: tuple[str, ...] = DEFAULT_CHARSET_TYPES
    sendfile: bool = False
    tcp_nopush: bool = False
    tcp_nodelay: bool = True
    etag: bool = True
    server_tokens: bool = True
    log_not_found: bool = True
    msie_padding: bool = True
    absolute_redirect: bool = True
    port_in_redirect: bool = True
    server_name_in_redirect: bool = False
    underscores_in_headers: bool = False
    gzip_proxied_any: bool = False                  # gzip_proxied any (other values: as off)
    gzip_http10: bool = False                       # gzip_http_version 1.0
    stub_status: bool = False                       # the location answers nginx's stub_status page
    gzip: bool = False
    gzip_static: bool = False
    gzip_vary: bool = False
    gzip_comp_level: int = 1
    gzip_min_length: int = 20
    gzip_types: tuple[str, ...] = ("text/html",)
    gzip_disable_msie6: bool = False
    types: tuple[tuple[str, str], ...] = ()     # (ext, type)
    default_type: str = "text/plain"
    keepalive_timeout_ms: int = 75000
    keepalive_requests: int = 1000
    send_timeout_ms: int = 60000
    client_header_timeout_ms: int = 60000
    client_header_buffer_size: int = 1024
    large_header_buffer_size: int = 8192
    large_header_buffers: int = 4
    access_logs: tuple[tuple[str, str], ...] = ()   # (path, format name); () = off
    open_file_cache_valid_ms: int = 0               # 0: revalidate with one stat() per request
    if_modified_since: str = "exact"
    lingering_timeout_ms: int = 5000
    keepalive_header_s: int = 0                     # keepalive_timeout's 2nd argument: "Keep-Alive: timeout=N"
    client_max_body_size: int = 1048576             # 0 = unlimited (413 beyond it, as nginx)
    client_body_timeout_ms: int = 60000
    error_log: tuple[str, str] | None = None        # (path, level) of this level's error_log; None = the worker's
    proxy: object = None            # compile_proxy.ProxyPlan for uwsgi_pass / proxy_pass / stub_status


@dataclass(frozen=True)
class LocationPlan:
    modifier: str                   # "", "=", "^~", "~", "~*", "@"
    pattern: str
    conf: ConfPlan
    children: tuple["LocationPlan", ...] = ()


@dataclass(frozen=True)
class ServerPlan:
    listen: tuple[tuple[str, bool], ...]     # (normalised address, default_server)
    names: tuple[str, ...]
    conf: ConfPlan
    locations: tuple[LocationPlan, ...] = ()


# ---------------------------------------------------------------- regexes

_CLASS_OUT = {"d": "[0-9]", "D": "[^0-9]", "w": "[[:alnum:]_]", "W": "[^[:alnum:]_]",
              "s": "[[:space:]]", "S": "[^[:space:]]"}
_CLASS_IN = {"d": "0-9", "w": "[:alnum:]_", "s": "[:space:]"}


def pcre_to_ere(pattern: str) -> str:
    """The PCRE idioms nginx configs use, rewritten for POSIX ERE (regcomp): \\d \\w \\s
    (and negations outside brackets), (?:...) groups. Anything else is passed through and
    regcomp judges it (docs/differences.md)."""
    out, i, in_br = [], 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nx = pattern[i + 1]
            if not in_br and nx in _CLASS_OUT:
                out.append(_CLASS_OUT[nx])
            elif in_br and nx in _CLASS_IN:
                out.append(_CLASS_IN[nx])
            elif in_br:
                out.append(nx if nx not in "]^-" else "\\" + nx)
            else:
                out.append("\\" + nx)
            i += 2
            continue
        if not in_br and pattern.startswith("(?:", i):
            out.append("(")
            i += 3
            continue
        if ch == "[" and not in_br:
            in_br = True
            out.append(ch)
            # a leading "^" and/or "]" belong to the bracket expression
            if pattern.startswith("^", i + 1):
                out.append("^")
                i += 1
            if pattern.startswith("]", i + 1):
                out.append("]")
                i += 1
            i += 1
            continue
        if ch == "]" and in_br:
            in_br = False
        out.append(ch)
        i += 1
    return "".join(out)


# ---------------------------------------------------------------- templates

_VAR_RE = re.compile(r"\$(?:\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))")


def parse_template(text: str) -> list[tuple[int, bytes]]:
    """'$remote_addr - x' -> [(var id, arg), (0, literal)]; raises CompileError."""
    ops: list[tuple[int, bytes]] = []
    pos = 0
    for m in _VAR_RE.finditer(text):
        if m.start() > pos:
            ops.append((0, text[pos:m.start()].encode()))
        name = m.group(1) or m.group(2)
        if name.startswith("http_"):
            ops.append((V_HTTP, name[5:].replace("_", "-").lower().encode()))
        elif name.startswith("upstream_http_"):
            ops.append((V_UPSTREAM_HTTP, name[14:].replace("_", "-").lower().encode()))
        elif name.startswith("arg_"):
            ops.append((V_ARG, name[4:].encode()))
        elif name in VAR_IDS:
            ops.append((VAR_IDS[name], b""))
        else:
            raise CompileError(f'unknown "{name}" variable')
        pos = m.end()
    if pos < len(text):
        ops.append((0, text[pos:].encode()))
    return ops


# ---------------------------------------------------------------- blob writer

_CONF_FIELDS = ("str:root I:alias str:loc_prefix rng:index rng:try_files i:return_code I:return_tpl "
                "rng:error_pages rng:add_headers I:expires_mode i:expires_s str:charset "
                "rng:charset_types I:flags I:gzip_comp_level I:gzip_min_length rng:gzip_types "
                "rng:mime str:default_type I:keepalive_timeout_ms I:keepalive_requests "
                "I:send_timeout_ms I:client_header_timeout_ms I:client_header_buffer_size "
                "I:large_header_buffer_size I:large_header_buffers rng:access_logs "
                "I:open_file_cache_valid_ms I:if_modified_since I:lingering_timeout_ms I:keepalive_header_s I:max_body_lo I:max_body_hi I:error_log_file I:error_log_level I:client_body_timeout_ms").split()
_CONF_FMT = "<" + "".join({"str": "II", "rng": "II", "I": "I", "i": "i"}[f.split(":")[0]] for f in _CONF_FIELDS)


class _Blob:
    def __init__(self) -> None:
        self.strs = bytearray()
        self._str_ids: dict[bytes, tuple[int, int]] = {}
        self.sec: dict[int, list[bytes]] = {k: [] for k in range(SEC_IDX, SEC_HEADER + 1)}
        self._tpl_ids: dict[tuple[str, bool], int] = {}
        self._mime_ids: dict[tuple, tuple[int, int]] = {}
        self._logfile_ids: dict[str, int] = {}
        from pyfront.config.compile_proxy import ProxySections
        self.px = ProxySections(self)          # proxy sections (compile_proxy.py)

    def s(self, text: str | bytes) -> tuple[int, int]:
        b = text.encode() if isinstance(text, str) else text
        if b not in self._str_ids:
            self._str_ids[b] = (len(self.strs), len(b))
            self.strs += b
        return self._str_ids[b]

    def add(self, kind: int, rec: bytes) -> int:
        self.sec[kind].append(rec)
        return len(self.sec[kind]) - 1

    def idx_range(self, values) -> tuple[int, int]:
        first = len(self.sec[SEC_IDX])
        for v in values:
            self.add(SEC_IDX, struct.pack("<I", v))
        return first, len(self.sec[SEC_IDX]) - first

    def list_range(self, items) -> tuple[int, int]:
        first = len(self.sec[SEC_LIST])
        for it in items:
            self.add(SEC_LIST, struct.pack("<II", *self.s(it)))
        return first, len(self.sec[SEC_LIST]) - first

    def tpl(self, text: str) -> int:
        key = (text, False)
        if key not in self._tpl_ids:
            ops = parse_template(text)
            first = len(self.sec[SEC_TPLOP])
            for var, arg in ops:
                self.add(SEC_TPLOP, struct.pack("<III", var, *self.s(arg)))
            self._tpl_ids[key] = self.add(SEC_TPL, struct.pack("<II", first, len(ops)))
        return self._tpl_ids[key]

    def mime(self, types) -> tuple[int, int]:
        key = tuple(types)
        if key not in self._mime_ids:
            table: dict[bytes, str] = {}
            for ext, typ in types:
                table[ext.lower().encode()] = typ        # later entries win, as in nginx's types{}
            first = len(self.sec[SEC_MIME])
            for ext in sorted(table):
                self.add(SEC_MIME, struct.pack("<IIII", *self.s(ext), *self.s(table[ext])))
            self._mime_ids[key] = (first, len(table))
        return self._mime_ids[key]

    def logfile(self, path: str) -> int:
        if path not in self._logfile_ids:
            self._logfile_ids[path] = self.add(SEC_LOGFILE, struct.pack("<II", *self.s(path)))
        return self._logfile_ids[path]

    def finish(self) -> bytes:
        sections = [(SEC_STR, bytes(self.strs), len(self.strs), 1)]
        for kind in range(SEC_IDX, SEC_HEADER + 1):
            recs = self.sec[kind]
            size = _RECSIZE[kind]
            for r in recs:
                assert len(r) == size, (kind, len(r), size)
            sections.append((kind, b"".join(recs), len(recs), size))
        sections += self.px.sections()
        header_len = 16 + 16 * len(sections)
        body = bytearray()
        table = []
        off = header_len
        for kind, data, count, size in sections:
            pad = (-off) % 8
            body += b"\0" * pad
            off += pad
            table.append(struct.pack("<IIII", kind, off, count, size))
            body += data
            off += len(data)
        total = header_len + len(body)
        return struct.pack("<IIII", MAGIC, VERSION, total, len(sections)) + b"".join(table) + bytes(body)


_RECSIZE = {SEC_IDX: 4, SEC_LIST: 8, SEC_ADDR: 20, SEC_SERVER: 36, SEC_NAME: 16, SEC_LOC: 24,
            SEC_CONF: struct.calcsize(_CONF_FMT), SEC_MIME: 16, SEC_TPL: 8, SEC_TPLOP: 12,
            SEC_LOGFILE: 8, SEC_ACCLOG: 12, SEC_ERRPAGE: 16, SEC_HEADER: 16}


def _conf_record(b: _Blob, c: ConfPlan, log_formats: dict[str, str]) -> bytes:
    flags = 0
    for on, bit in ((c.sendfile, F_SENDFILE), (c.etag, F_ETAG), (c.gzip, F_GZIP),
                    (c.gzip_static, F_GZIP_STATIC), (c.gzip_vary, F_GZIP_VARY),
                    (c.server_tokens, F_SERVER_TOKENS), (c.log_not_found, F_LOG_NOT_FOUND),
                    (c.tcp_nopush, F_TCP_NOPUSH), (c.msie_padding, F_MSIE_PADDING),
                    (c.absolute_redirect, F_ABS_REDIRECT), (c.port_in_redirect, F_PORT_IN_REDIRECT),
                    ("*" in c.gzip_types, F_GZIP_TYPES_ANY), (c.tcp_nodelay, F_TCP_NODELAY),
                    (c.gzip_disable_msie6, F_GZIP_DISABLE_MSIE6),
                    (c.server_name_in_redirect, F_SERVER_NAME_IN_REDIRECT),
                    (c.underscores_in_headers, F_UNDERSCORES_IN_HEADERS),
                    (c.gzip_proxied_any, F_GZIP_PROXIED_ANY), (c.gzip_http10, F_GZIP_HTTP10),
                    (c.stub_status, F_STUB_STATUS)):
        if on:
            flags |= bit
    ep_first = len(b.sec[SEC_ERRPAGE])
    for code, over, uri in c.error_pages:
        b.add(SEC_ERRPAGE, struct.pack("<IiII", code, over, *b.s(uri)))
    hd_first = len(b.sec[SEC_HEADER])
    for name, value, always in c.add_headers:
        b.add(SEC_HEADER, struct.pack("<IIII", *b.s(name), b.tpl(value), int(always)))
    al_first = len(b.sec[SEC_ACCLOG])
    for path, fmt in c.access_logs:
        if fmt not in log_formats:
            raise CompileError(f'unknown log format "{fmt}"')
        text, escape = log_formats[fmt] if isinstance(log_formats[fmt], tuple) else (log_formats[fmt], "default")
        b.add(SEC_ACCLOG, struct.pack("<III", b.logfile(path), b.tpl(text), ESCAPES[escape]))
    if c.if_modified_since not in IMS_MODES or c.expires not in EXPIRES_MODES:
        raise CompileError("bad if_modified_since/expires mode")
    values = dict(
        root=b.s(c.root), alias=int(c.alias), loc_prefix=b.s(c.loc_prefix),
        index=b.list_range(c.index), try_files=b.idx_range(b.tpl(t) for t in c.try_files),
        return_code=c.return_code,
        return_tpl=NONE if c.return_text is None else b.tpl(c.return_text),
        error_pages=(ep_first, len(c.error_pages)), add_headers=(hd_first, len(c.add_headers)),
        expires_mode=EXPIRES_MODES[c.expires], expires_s=c.expires_s, charset=b.s(c.charset),
        charset_types=b.list_range(c.charset_types), flags=flags,
        gzip_comp_level=c.gzip_comp_level, gzip_min_length=c.gzip_min_length,
        gzip_types=b.list_range(c.gzip_types), mime=b.mime(c.types), default_type=b.s(c.default_type),
        keepalive_timeout_ms=c.keepalive_timeout_ms, keepalive_requests=c.keepalive_requests,
        send_timeout_ms=c.send_timeout_ms, client_header_timeout_ms=c.client_header_timeout_ms,
        client_header_buffer_size=c.client_header_buffer_size,
        large_header_buffer_size=c.large_header_buffer_size,
        large_header_buffers=c.large_header_buffers, access_logs=(al_first, len(c.access_logs)),
        open_file_cache_valid_ms=c.open_file_cache_valid_ms,
        if_modified_since=IMS_MODES[c.if_modified_since], lingering_timeout_ms=c.lingering_timeout_ms,
        keepalive_header_s=c.keepalive_header_s, max_body_lo=c.client_max_body_size & 0xFFFFFFFF,
        max_body_hi=c.client_max_body_size >> 32,
        error_log_file=NONE if c.error_log is None else b.logfile(c.error_log[0]),
        error_log_level=0 if c.error_log is None else LOG_LEVELS[c.error_log[1]],
        client_body_timeout_ms=c.client_body_timeout_ms)
    args: list[int] = []
    for f in _CONF_FIELDS:
        kind, name = f.split(":")
        v = values[name]
        args.extend(v if kind in ("str", "rng") else (v,))
    return struct.pack(_CONF_FMT, *args)


def _server_name_records(b: _Blob, names, server_index: int) -> list[bytes]:
    recs = []
    for n in names:
        if n.startswith("~"):
            recs.append((NAME_REGEX, pcre_to_ere(n[1:])))
        elif n.startswith("*."):
            recs.append((NAME_WILD_HEAD, n[1:].lower()))
        elif n.startswith("."):
            recs.append((NAME_EXACT, n[1:].lower()))
            recs.append((NAME_WILD_HEAD, n.lower()))
        elif n.endswith(".*"):
            recs.append((NAME_WILD_TAIL, n[:-1].lower()))
        elif n:
            recs.append((NAME_EXACT, n.lower()))
    return [struct.pack("<IIII", kind, *b.s(text), server_index) for kind, text in recs]


def build_blob(servers: list[ServerPlan] | tuple[ServerPlan, ...],
               log_formats: dict[str, str | tuple[str, str]] | None = None) -> bytes:
    """Serialise a plan. Location ids (pf_router_find_location) are assigned in
    depth-first order: server 0's locations first, each followed by its children."""
    formats = {"combined": COMBINED, "main": MAIN, **(log_formats or {})}
    b = _Blob()
    loc_recs: list[bytes | None] = []
    conf_recs: list[bytes] = []

    def add_conf(c: ConfPlan) -> int:
        conf_recs.append(_conf_record(b, c, formats))
        b.px.conf_record(c.proxy)
        return len(conf_recs) - 1

    def add_loc(loc: LocationPlan) -> int:
        if loc.modifier not in LOC_KINDS:
            raise CompileError(f"bad location modifier {loc.modifier!r}")
        me = len(loc_recs)
        loc_recs.append(None)
        conf = add_conf(loc.conf)
        kids = [add_loc(ch) for ch in loc.children]
        pattern = pcre_to_ere(loc.pattern) if loc.modifier in ("~", "~*") else loc.pattern
        loc_recs[me] = (LOC_KINDS[loc.modifier], pattern, kids, conf)
        return me

    server_recs = []
    addr_servers: dict[str, list[int]] = {}
    addr_default: dict[str, int] = {}
    for si, srv in enumerate(servers):
        conf = add_conf(srv.conf)
        tops = [add_loc(l) for l in srv.locations if l.modifier != "@"]
        named = [add_loc(l) for l in srv.locations if l.modifier == "@"]
        server_recs.append((srv, conf, tops, named))
        for addr, default in srv.listen:
            addr_servers.setdefault(addr, []).append(si)
            if default and addr not in addr_default:
                addr_default[addr] = si
    # locations: children ranges go to IDX; patterns to STR
    packed_locs = []
    for kind, pattern, kids, conf in loc_recs:
        packed_locs.append(struct.pack("<IIIIII", kind, *b.s(pattern), *b.idx_range(kids), conf))
    for rec in packed_locs:
        b.add(SEC_LOC, rec)
    for i, rec in enumerate(conf_recs):
        b.add(SEC_CONF, rec)
    for si, (srv, conf, tops, named) in enumerate(server_recs):
        nfirst = len(b.sec[SEC_NAME])
        for rec in _server_name_records(b, srv.names, si):
            b.add(SEC_NAME, rec)
        names = (nfirst, len(b.sec[SEC_NAME]) - nfirst)
        name0 = srv.names[0] if srv.names else ""
        b.add(SEC_SERVER, struct.pack("<IIIIIIIII", *names, *b.idx_range(tops), *b.idx_range(named),
                                      conf, *b.s(name0)))
    for addr, sids in addr_servers.items():
        b.add(SEC_ADDR, struct.pack("<IIIII", *b.s(addr), addr_default.get(addr, sids[0]),
                                    *b.idx_range(sids)))
    return b.finish()


def _conf_from_settings(st, server, loc=None, ret=None, http=None, temp=None) -> ConfPlan:
    """model.Settings (effective values) -> ConfPlan."""
    from pyfront.config.diagnostics import ConfigError, Diagnostic
    alias = st.alias if loc is not None else None
    exp = st.expires
    if exp is None or exp.kind == "off":
        expires, expires_s = "off", 0
    elif exp.kind in ("epoch", "max"):
        expires, expires_s = exp.kind, 0
    elif exp.kind == "time":
        expires, expires_s = "access", exp.ms // 1000
    elif exp.kind == "modified":
        expires, expires_s = "modified", exp.ms // 1000
    else:
        raise ConfigError(Diagnostic("emerg", f'"expires {exp.kind}" is not supported by pyfront yet',
                                     exp.file, exp.line, hint="use a relative time, epoch, max or modified"))
    pages = []
    for ep in st.error_pages:
        over = ep.overwrite if ep.overwrite is not None else (0 if ep.overwrite_from_upstream else -1)
        pages += [(code, over, ep.uri) for code in ep.codes]
    for al in () if st.access_log_off else st.access_logs:
        why = ("variables in its path" if "$" in al.path else "syslog" if al.path.startswith("syslog:")
               else "if=" if al.if_condition else "gzip=" if al.gzip_level else None)
        if why:
            raise ConfigError(Diagnostic("emerg", f'"access_log" with {why} is not supported by pyfront yet',
                                         al.file, al.line, hint="log to a plain file path"))
    logs = () if st.access_log_off else tuple((al.path, al.format.name) for al in st.access_logs)
    where = loc if loc is not None else server
    if not server.merge_slashes:
        raise ConfigError(Diagnostic("emerg", '"merge_slashes off" is not supported by pyfront yet',
                                     server.file, server.line))
    other = [d for d in st.gzip_disable if d != "msie6"]
    if other:
        raise ConfigError(Diagnostic("emerg", f'"gzip_disable {other[0]}" is not supported by pyfront yet '
                                     '(only "msie6")', where.file, where.line))
    for name, value in (("root", st.root), ("alias", alias)):
        if value and "$" in value:
            raise ConfigError(Diagnostic("emerg", f'variables in "{name}" are not supported by pyfront yet',
                                         where.file, where.line, hint="use a literal path"))
    code, text = -1, None
    if ret is not None:
        code, text = ret.code, ret.text
    from pyfront.config import compile_proxy
    handler = getattr(loc, "handler", None) if loc is not None else None
    stub = handler is not None and handler.kind == "stub_status"     # static.c's do_stub_status
    try:
        proxy = compile_proxy.proxy_plan(st, loc, http, temp or "/tmp") if code < 0 and not stub else None
    except compile_proxy.ProxyCompileError as e:
        raise ConfigError(Diagnostic("emerg", str(e), getattr(handler, "file", None),
                                     getattr(handler, "line", 0))) from None
    return ConfPlan(
        proxy=proxy,
        root=alias if alias is not None else st.root, alias=alias is not None,
        loc_prefix=loc.path if (alias is not None and loc.modifier in ("", "^~", "=")) else "",
        index=tuple(st.index), try_files=tuple(st.try_files or ()), return_code=code, return_text=text,
        error_pages=tuple(pages),
        add_headers=tuple((h.name, h.value, h.always) for h in st.add_headers),
        expires=expires, expires_s=expires_s, charset=st.charset or "",
        charset_types=tuple(st.charset_types), sendfile=st.sendfile, tcp_nopush=st.tcp_nopush,
        tcp_nodelay=st.tcp_nodelay, etag=st.etag, server_tokens=st.server_tokens != "off",
        msie_padding=st.msie_padding, log_not_found=st.log_not_found, absolute_redirect=st.absolute_redirect,
        port_in_redirect=st.port_in_redirect, server_name_in_redirect=st.server_name_in_redirect,
        underscores_in_headers=server.underscores_in_headers, gzip=st.gzip,
        gzip_proxied_any="any" in st.gzip_proxied, gzip_http10=st.gzip_http_version == "1.0",
        client_body_timeout_ms=st.client_body_timeout_ms, stub_status=stub, gzip_static=st.gzip_static != "off",
        gzip_vary=st.gzip_vary, gzip_comp_level=st.gzip_comp_level, gzip_min_length=st.gzip_min_length,
        gzip_types=tuple(st.gzip_types), gzip_disable_msie6="msie6" in st.gzip_disable, types=tuple(st.types), default_type=st.default_type,
        keepalive_timeout_ms=st.keepalive_timeout_ms, keepalive_requests=st.keepalive_requests,
        send_timeout_ms=st.send_timeout_ms, client_header_timeout_ms=server.client_header_timeout_ms,
        client_header_buffer_size=server.client_header_buffer_size,
        large_header_buffers=server.large_client_header_buffers[0],
        large_header_buffer_size=server.large_client_header_buffers[1],
        access_logs=logs,
        open_file_cache_valid_ms=st.open_file_cache_valid_ms if st.open_file_cache is not None else 0,
        if_modified_since=st.if_modified_since, keepalive_header_s=st.keepalive_header_timeout_s or 0,
        client_max_body_size=st.client_max_body_size, error_log=_error_log(st))


def _error_log(st) -> tuple[str, str] | None:
    """The level's own error_log (server/location), as nginx writes request errors there."""
    for el in st.error_logs:
        if el.implicit:
            continue
        if el.path in ("stderr", "/dev/stderr"):
            return None
        if el.path.startswith(("syslog:", "memory:")):
            from pyfront.config.diagnostics import ConfigError, Diagnostic
            raise ConfigError(Diagnostic("emerg", f'"error_log {el.path}" is not supported by pyfront yet',
                                         el.file, el.line, hint="log to a file or stderr"))
        return (el.path, el.level)
    return None


def _location_plan(loc, server, http=None, temp=None) -> LocationPlan:
    pattern = "@" + loc.path if loc.modifier == "@" else loc.path
    return LocationPlan(modifier=loc.modifier, pattern=pattern,
                        conf=_conf_from_settings(loc.settings, server, loc, loc.return_ or server.return_, http, temp),
                        children=tuple(_location_plan(ch, server, http, temp) for ch in loc.locations))


def plan_from_config(config) -> tuple[list[ServerPlan], dict[str, str]]:
    """FrontConfig (pyfront.config.model) -> (servers, log formats)."""
    from pyfront.config.compile_proxy import default_temp_path
    servers = []
    http, temp = config.http, default_temp_path(config.prefix)
    for srv in config.http.servers:
        listen = tuple((ln.address.text, ln.default_server) for ln in srv.listens)
        names = tuple(sn.text for sn in srv.server_names)
        servers.append(ServerPlan(listen=listen, names=names,
                                  conf=_conf_from_settings(srv.settings, srv, None, srv.return_),
                                  locations=tuple(_location_plan(l, srv, http, temp) for l in srv.locations)))
    formats = {lf.name: (lf.format, lf.escape) for lf in config.http.log_formats}
    return servers, formats


def _mark_app_links(servers, links):
    """uwsgi_pass upstreams served by this CONF_DIR's own apps get marked (compile_proxy.
    mark_app_upstream): every ConfPlan's ProxyPlan, in servers and nested locations."""
    from dataclasses import replace

    from pyfront.config.compile_proxy import mark_app_upstream

    def conf(c: ConfPlan) -> ConfPlan:
        p = c.proxy
        if p is None or p.handler != "uwsgi" or p.upstream is None:
            return c
        up = mark_app_upstream(p.upstream, links)
        return c if up is p.upstream else replace(c, proxy=replace(p, upstream=up))

    def loc(lp: LocationPlan) -> LocationPlan:
        return replace(lp, conf=conf(lp.conf), children=tuple(loc(ch) for ch in lp.children))

    return [replace(s, conf=conf(s.conf), locations=tuple(loc(lp) for lp in s.locations)) for s in servers]


def compile_front(config, app_links=()) -> bytes:
    """FrontConfig (pyfront.config.model) -> route-table blob; ConfigError if C cannot serve it.
    app_links: the uwsgi sockets of the same CONF_DIR's apps (compile_proxy.AppLink)."""
    from pyfront.config.diagnostics import ConfigError, Diagnostic
    servers, formats = plan_from_config(config)
    if app_links:
        servers = _mark_app_links(servers, tuple(app_links))
    try:
        blob = build_blob(servers, formats)
    except CompileError as e:
        raise ConfigError(Diagnostic("emerg", str(e), config.main_file, None)) from None
    problem = check_blob(blob)
    if problem:
        raise ConfigError(Diagnostic("emerg", problem, config.main_file, None))
    return blob


def check_blob(blob: bytes) -> str | None:
    """Load the blob with the C router (as a worker will) and report why it refuses, if it does:
    a regex regcomp rejects is caught here, in the master, not in a crash-looping worker."""
    from pyfront._native import ffi, lib
    err = ffi.new("char[512]")
    r = lib.pf_router_load(blob, len(blob), err, 512)
    if r == ffi.NULL:
        return ffi.string(err).decode(errors="replace")
    lib.pf_router_free(r)
    return None
