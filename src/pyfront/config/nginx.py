"""nginx-syntax configuration → FrontConfig, with nginx's diagnostics.

Entry points:
    load_nginx(confdir)                -> (FrontConfig, warnings)   raises ConfigError
    load_nginx_files(paths, main=None) -> (FrontConfig, warnings)   for tests and tools

CONF_DIR rules (design.md §2):
- conf.d-style files (everything but nginx.conf) are read in name order as if inside
  nginx's `http {}`, after nginx.conf's usual defaults (the "prelude": `include mime.types;
  default_type application/octet-stream; sendfile on; keepalive_timeout 65;` and
  `log_format main ...`). The prelude is an outer level, so a file may override any of
  those values without nginx's "is duplicate" error.
- a file named nginx.conf holds a full main config. CONF_DIR files it does not include
  itself are read at the end of its `http {}` block, or inside an implicit one (with the
  prelude) when it has none.

Like nginx, the parser acts on each statement as it is read and stops at the first
emerg; warnings met before it are reported with it. Errors name nginx's `file:line`
(the line of the statement's `;`, `{` or `}`), in nginx's words.
"""
from __future__ import annotations

import glob
import os
import re
import socket
from importlib import resources
from typing import Iterator

from pyfront.config import nginx_directives as ND
from pyfront.config import nginx_values as V
from pyfront.config.diagnostics import ConfigError, Diagnostic, Report
from pyfront.config.model import (AccessLog, Address, CpuAffinity, Events, FrontConfig, Handler, Http,
                                  Listen, Location, LogFormat, Main, Param, PassTarget, Return, Server,
                                  ServerName, Settings, Upstream, UpstreamOptions, UpstreamServer)
from pyfront.config.nginx_lexer import Stmt, statements

PRELUDE_FILE = "<pyfront prelude>"
PRELUDE = """\
include mime.types;
default_type application/octet-stream;
sendfile on;
keepalive_timeout 65;
"""
COMBINED = ('$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
            '"$http_referer" "$http_user_agent"')
MAIN_FORMAT = ('$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
               '"$http_referer" "$http_user_agent" "$http_x_forwarded_for"')
BUILTIN_FILES = ("mime.types", "uwsgi_params")
MAX_INCLUDE_DEPTH = 32

SERVER_ONLY = ("client_header_timeout_ms", "client_header_buffer_size", "large_client_header_buffers",
               "ignore_invalid_headers", "underscores_in_headers", "merge_slashes")
NOT_INHERITED = ("try_files",)
PROXY_DEFAULT_HEADERS = (("Host", "$proxy_host"), ("Connection", "close"))


def compile_regex(pattern: str, caseless: bool) -> "re.Pattern":
    """Compile an nginx (PCRE) regex with Python's re (named groups translated)."""
    from pyfront.config.nginx_match import compile_regex as _c
    return _c(pattern, caseless)


class _Stop(Exception):
    """An emerg was recorded; unwind to the top (nginx stops at the first one)."""


class Level:
    """Raw values of one http/server/location level while parsing (slot → value)."""

    def __init__(self, kind: str, parent: "Level | None", named: bool = False):
        self.kind = kind
        self.parent = parent
        self.named = named
        self.v: dict = {}
        self.own: set = set()
        self.locations: list[LocState] = []
        self.handler: Handler | None = None


class LocState:
    def __init__(self, modifier, path, level, file, line):
        self.modifier, self.path, self.level, self.file, self.line = modifier, path, level, file, line


class ServerState:
    def __init__(self, level, file, line):
        self.level, self.file, self.line = level, file, line
        self.listens: list[Listen] = []
        self.names: list[ServerName] = []


class UpstreamState:
    def __init__(self, name, file, line, implicit=False):
        self.name, self.file, self.line, self.implicit = name, file, line, implicit
        self.servers: list[UpstreamServer] = []
        self.v: dict = {}
        self.method = None
        self.hash_key = None
        self.hash_consistent = False


class HttpState:
    def __init__(self):
        self.log_formats: dict[str, LogFormat] = {
            "combined": LogFormat("combined", COMBINED, "default", None, 0),
            "main": LogFormat("main", MAIN_FORMAT, "default", PRELUDE_FILE, 0),
        }
        self.upstreams: dict[str, UpstreamState] = {}
        self.servers: list[ServerState] = []
        self.passes: list[PassTarget] = []
        self.listen_addrs: dict[str, dict] = {}
        self.level: Level | None = None
        self.file: str | None = None
        self.line = 0


def _data_path(name: str) -> str:
    return str(resources.files("pyfront").joinpath("data", name))


class Parser:
    def __init__(self, prefix: str):
        self.prefix = prefix
        self.report = Report()
        self.file: str | None = None
        self.line = 0
        self.level: Level | None = None
        self.main: dict = {}
        self.events: dict = {}
        self.events_where: tuple = (None, 0)
        self.http: HttpState | None = None
        self.upstream_state: UpstreamState | None = None
        self.files: list[str] = []
        self.depth = 0
        self._stream: Iterator[Stmt] | None = None
        self.pending_vars: list[tuple[str, str | None, int]] = []
        self._loc_of: dict = {}
        self._current_server = None

    # ------------------------------------------------------------ diagnostics
    def emerg(self, msg: str, hint: str | None = None, file=..., line=None):
        self.report.add("emerg", msg, self.file if file is ... else file, self.line if line is None else line, hint)
        raise _Stop()

    def warn(self, msg: str, hint: str | None = None, file=..., line=None):
        self.report.add("warn", msg, self.file if file is ... else file, self.line if line is None else line, hint)

    def path(self, p: str) -> str:
        if p.startswith("/") or "$" in p[:1]:
            return p
        return os.path.normpath(os.path.join(self.prefix, p)) + ("/" if p.endswith("/") else "")

    def check_vars(self, text: str) -> None:
        """Check `$name` / `${name}` syntax now (as nginx's script compiler does in the handler);
        whether each name exists is checked when the http block is complete."""
        if "$" not in text:
            return
        i, n = 0, len(text)
        while True:
            i = text.find("$", i)
            if i < 0:
                break
            i += 1
            if i < n and text[i] == "{":
                j = i + 1
                while j < n and (text[j].isalnum() or text[j] == "_") and text[j].isascii():
                    j += 1
                if j == i + 1:
                    self.emerg("invalid variable name")
                if j >= n or text[j] != "}":
                    self.emerg(f'the closing bracket in "{text[i + 1:j]}" variable is missing')
                i = j + 1
            elif i < n and (text[i].isalnum() or text[i] == "_") and text[i].isascii():
                i += 1
            else:
                self.emerg("invalid variable name")
        self.pending_vars.append((text, self.file, self.line))

    # ------------------------------------------------------------ reading
    def parse_text(self, text: str, file: str | None, ctx: str) -> None:
        """Parse a whole file's text in context `ctx` (a file cannot close an outer block)."""
        saved = (self.file, self._stream)
        self.file = file
        self._stream = statements(text, file)
        try:
            self._parse(ctx, block=False)
        except ConfigError as e:   # lexer errors
            for dg in e.diagnostics:
                self.report.diagnostics.append(dg)
            raise _Stop() from None
        finally:
            self.file, self._stream = saved

    def parse_file(self, path: str, ctx: str) -> None:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            self.emerg(f'open() "{path}" failed ({e.errno}: {e.strerror})')
        self.files.append(path)
        self.parse_text(data.decode("utf-8", "surrogateescape"), path, ctx)

    def _parse(self, ctx: str, block: bool) -> None:
        while True:
            try:
                st = next(self._stream)
            except StopIteration:   # pragma: no cover - the lexer always ends with end=""
                return
            self.line = st.line
            if st.end == "}":
                if not block:
                    self.emerg('unexpected "}"')
                return
            if st.end == "":
                if block:
                    self.emerg('unexpected end of file, expecting "}"')
                return
            if ctx == "types":
                self._types_entry(st)
                continue
            self._handle(st, ctx)

    def _parse_block(self, ctx: str) -> None:
        self._parse(ctx, block=True)

    # ------------------------------------------------------------ dispatch
    def _handle(self, st: Stmt, ctx: str) -> None:
        name = st.name
        entries = ND.lookup(name)
        if not entries:
            if name in ND.NGINX_DIRECTIVE_NAMES:
                self.emerg(f'"{name}" directive is not supported by pyfront', hint=ND.hint_for_unsupported(name))
            self.emerg(f'unknown directive "{name}"')
        ent = next((e for e in entries if ctx in e.contexts or ND.ANY in e.contexts), None)
        if ent is None:
            self.emerg(f'"{name}" directive is not allowed here')
        if not ent.block and st.end != ";":
            self.emerg(f'directive "{name}" is not terminated by ";"')
        if ent.block and st.end != "{":
            self.emerg(f'directive "{name}" has no opening "{{"')
        if not ent.args_ok(len(st.words) - 1):
            self.emerg(f'invalid number of arguments in "{name}" directive')
        args = st.args
        if name == "include":
            self.include(args[0], ctx)
            return
        block_handler = {"http": self._http, "events": self._events, "server": self._server,
                         "location": self._location, "upstream": self._upstream}.get(name) if ent.block else None
        if block_handler is not None:
            block_handler(st, args)
            return
        if ctx == ND.MAIN or ctx == ND.EVENTS:
            target = self.main if ctx == ND.MAIN else self.events
            saved = self.level
            self.level = _DictLevel(target)
            try:
                rv = ent.handler(self, st, args)
            finally:
                self.level = saved
        else:
            rv = ent.handler(self, st, args)
        if rv:
            self.emerg(f'"{name}" directive {rv}')

    # ------------------------------------------------------------ include
    def include(self, pattern: str, ctx: str) -> None:
        if self.depth >= MAX_INCLUDE_DEPTH:
            self.emerg(f'include nesting too deep ("{pattern}")', hint="an included file includes itself")
        base = os.path.dirname(self.file) if self.file and os.path.isabs(self.file) else self.prefix
        full = pattern if os.path.isabs(pattern) else os.path.join(base, pattern)
        if any(c in pattern for c in "*?["):
            paths = sorted(p for p in glob.glob(full) if os.path.isfile(p))
        else:
            paths = [full]
            if not os.path.exists(full) and os.path.basename(full) in BUILTIN_FILES:
                paths = [_data_path(os.path.basename(full))]
        self.depth += 1
        try:
            for p in paths:
                self.parse_file(p, ctx)
        finally:
            self.depth -= 1

    # ------------------------------------------------------------ blocks
    def _events(self, st, args):
        if self.events_where[0] is not None or self.events_where[1]:
            self.emerg('"events" directive is duplicate')
        self.events_where = (self.file, st.line)
        self._parse_block(ND.EVENTS)

    def _http(self, st, args):
        if self.http is not None:
            self.emerg('"http" directive is duplicate')
        self.begin_http(None, self.file, st.line)
        self._parse_block(ND.HTTP)
        self.after_http_block()
        self.level = None

    def begin_http(self, prelude_level: Level | None, file, line):
        self.http = HttpState()
        self.http.level = Level(ND.HTTP, prelude_level)
        self.http.file, self.http.line = file, line
        self.level = self.http.level

    def after_http_block(self):
        """Hook: the loader reads CONF_DIR files not included by nginx.conf here."""
        cb = getattr(self, "on_http_end", None)
        if cb:
            cb()

    def _server(self, st, args):
        lvl = Level(ND.SRV, self.http.level)
        srv = ServerState(lvl, self.file, st.line)
        self.http.servers.append(srv)
        saved = self.level
        self.level = lvl
        self._current_server = srv
        self._parse_block(ND.SRV)
        self.level = saved

    def _location(self, st, args):
        parent = self.level
        if len(args) == 2:
            mod, path = args
            if mod not in ("=", "~", "~*", "^~"):
                self.emerg(f'invalid location modifier "{mod}"')
        else:
            a = args[0]
            if a.startswith("="):
                mod, path = "=", a[1:]
            elif a.startswith("^~"):
                mod, path = "^~", a[2:]
            elif a.startswith("~*"):
                mod, path = "~*", a[2:]
            elif a.startswith("~"):
                mod, path = "~", a[1:]
            elif a.startswith("@"):
                mod, path = "@", a[1:]
            else:
                mod, path = "", a
        if mod in ("~", "~*"):
            try:
                compile_regex(path, mod == "~*")
            except re.error as e:
                self.emerg(f'pcre2_compile() failed: {e.msg} in "{path}"')
        if parent.kind == ND.LOC:
            pl = self._loc_of[id(parent)]
            if pl.modifier == "=":
                self.emerg(f'location "{path}" cannot be inside the exact location "{pl.path}"')
            if pl.modifier == "@":
                self.emerg(f'location "{path}" cannot be inside the named location "@{pl.path}"')
            if mod == "@":
                self.emerg(f'named location "@{path}" can be on the server level only')
            if mod in ("", "=", "^~") and pl.modifier in ("", "^~") and not path.startswith(pl.path):
                self.emerg(f'location "{path}" is outside location "{pl.path}"')
        lvl = Level(ND.LOC, parent, named=(mod == "@"))
        ls = LocState(mod, path, lvl, self.file, st.line)
        if not hasattr(self, "_loc_of"):
            self._loc_of = {}
        self._loc_of[id(lvl)] = ls
        parent.locations.append(ls)
        self.level = lvl
        self._parse_block(ND.LOC)
        self.level = parent

    def _upstream(self, st, args):
        name = args[0]
        prev = self.http.upstreams.get(name)
        if prev is not None and not prev.implicit:
            self.emerg(f'duplicate upstream "{name}"')
        up = UpstreamState(name, self.file, st.line)
        self.http.upstreams[name] = up
        self.upstream_state = up
        self._parse_block(ND.UPS)
        self.upstream_state = None
        if not up.servers:
            self.emerg("no servers are inside upstream")

    def parse_types_block(self, types: dict) -> None:
        self._parse_block("types")

    def _types_entry(self, st: Stmt) -> None:
        if st.end == "{":
            self.emerg('unexpected "{"')
        if st.name == "include":
            if len(st.words) != 2:
                self.emerg('invalid number of arguments in "include" directive')
            self.include(st.args[0], "types")
            return
        ctype = st.name
        types = self.level.v["types"]
        for ext in st.args:
            ext = ext.lower()
            if ext in types:
                old = types[ext]
                self.warn(f'duplicate extension "{ext}", content type: "{ctype}", previous content type: "{old}"')
            types[ext] = ctype

    # ------------------------------------------------------------ server-level directives
    def add_listen(self, st, a):
        text = a[0]
        try:
            addr = V.parse_address(text, default_port=80, allow_wildcard=True)
        except V.AddrError as e:
            msg = str(e)
            if msg == "invalid port":
                self.emerg(f'invalid port in "{text}" of the "listen" directive')
            if msg == "no path in the unix domain socket":
                self.emerg(f'no path in the unix domain socket in "{text}" of the "listen" directive')
            self.emerg(f'invalid host in "{text}" of the "listen" directive')
        if addr.kind == "name":
            try:
                infos = socket.getaddrinfo(addr.host, addr.port, socket.AF_INET, socket.SOCK_STREAM)
                host = infos[0][4][0]
            except (socket.gaierror, IndexError, UnicodeError):
                self.emerg(f'host not found in "{text}" of the "listen" directive')
            addr = Address("inet", host=host, port=addr.port, text=f"{host}:{addr.port}")
        opts = dict(default_server=False, reuseport=False, backlog=511, ipv6only=True, rcvbuf=None, sndbuf=None)
        has_opts = False
        for x in a[1:]:
            if x in ("default_server", "default"):
                opts["default_server"] = True
            elif x == "reuseport":
                opts["reuseport"] = True
                has_opts = True
            elif x.startswith("backlog="):
                n = V.parse_int(x[8:])
                if n is None or n == 0:
                    self.emerg(f'invalid backlog "{x[8:]}"')
                opts["backlog"] = n
                has_opts = True
            elif x.startswith(("rcvbuf=", "sndbuf=")):
                n = V.parse_size(x[7:])
                if n is None:
                    self.emerg(f'invalid {x[:6]} "{x[7:]}"')
                opts[x[:6]] = n
                has_opts = True
            elif x.startswith("ipv6only="):
                v = V.parse_flag(x[9:])
                if v is None:
                    self.emerg(f'invalid ipv6only flags "{x[9:]}"')
                opts["ipv6only"] = v
                has_opts = True
            elif x in ("bind", "deferred") or x.startswith(("so_keepalive=", "fastopen=")):
                has_opts = True
            elif x in ("ssl", "http2", "quic", "proxy_protocol", "http3"):
                self.emerg(f'the "{x}" parameter of "listen" is not supported by pyfront',
                           hint="pyfront serves plain HTTP/1.x; terminate TLS/HTTP2 in front of it")
            else:
                self.emerg(f'invalid parameter "{x}"')
        srv = self._current_server
        key = addr.text
        for ln in srv.listens:
            if ln.address.text == key:
                self.emerg(f"a duplicate listen {key}")
        info = self.http.listen_addrs.setdefault(key, {"default": None, "opts": None})
        if opts["default_server"]:
            if info["default"] is not None:
                self.emerg(f"a duplicate default server for {key}")
            info["default"] = (self.file, st.line)
        if has_opts:
            if info["opts"] is not None:
                self.emerg(f"duplicate listen options for {key}")
            info["opts"] = (self.file, st.line)
        srv.listens.append(Listen(addr, file=self.file, line=st.line, **opts))

    def add_server_names(self, st, a):
        srv = self._current_server
        for x in a:
            if not x:
                kind, text = "exact", ""
            else:
                ch = x[0]
                if (ch == "*" and (len(x) < 3 or x[1] != ".")) or (ch == "." and len(x) < 2):
                    self.emerg(f'server name "{x}" is invalid')
                if "/" in x:
                    self.warn(f'server name "{x}" has suspicious symbols')
                if ch == "~":
                    if len(x) < 2:
                        self.emerg(f'server name "{x}" is invalid')
                    try:
                        compile_regex(x[1:], False)
                    except re.error as e:
                        self.emerg(f'pcre2_compile() failed: {e.msg} in "{x[1:]}"')
                    kind, text = "regex", x
                elif x == "$hostname":
                    kind, text = "exact", socket.gethostname().lower()
                else:
                    text = x.lower()
                    if text.startswith("*.") or text.startswith("."):
                        kind = "prefix"
                    elif text.endswith(".*"):
                        kind = "suffix"
                    else:
                        kind = "exact"
            srv.names.append(ServerName(text, kind, kind == "prefix" and text.startswith("."), self.file, st.line))

    def set_pass(self, kind: str, st, target: str) -> None:
        lvl = self.level
        name = f"{kind}_pass"
        if lvl.handler is not None and lvl.handler.kind == kind:
            self.emerg(f'"{name}" directive is duplicate')
        if lvl.handler is not None:
            self.warn(f'"{name}" replaces "{lvl.handler.kind}_pass" of this location',
                      hint="pyfront's own check: keep one of them")
        if "$" in target:
            pt = PassTarget("uwsgi" if kind == "uwsgi" else "http", None, None, None, target, True, self.file, st.line)
            self.check_vars(target)
        elif kind == "uwsgi":
            pt = self._parse_uwsgi_target(target, st)
        else:
            pt = self._parse_proxy_target(target, st)
        self.http.passes.append(pt)
        lvl.handler = Handler(kind if kind == "uwsgi" else "proxy", pt, self.file, st.line)

    def _parse_uwsgi_target(self, target, st) -> PassTarget:
        scheme, rest = "uwsgi", target
        low = target.lower()
        if low.startswith("uwsgi://"):
            rest = target[8:]
        elif low.startswith("suwsgi://"):
            self.emerg('"uwsgi_pass" with "suwsgi://" is not supported by pyfront',
                       hint="TLS to the app server is not implemented; use unix: or uwsgi://")
        return self._target(scheme, rest, target, None, st)

    def _parse_proxy_target(self, target, st) -> PassTarget:
        low = target.lower()
        if low.startswith("https://"):
            self.emerg('"proxy_pass" to "https://" is not supported by pyfront',
                       hint="TLS to upstreams is not implemented; use http://")
        if not low.startswith("http://"):
            self.emerg("invalid URL prefix")
        rest = target[7:]
        uri = None
        if rest.startswith("unix:"):
            # http://unix:/path/to.sock:/uri — the socket path ends at the next ':'
            colon = rest.find(":", 5)
            hostpart, uri = (rest, None) if colon < 0 else (rest[:colon], rest[colon + 1:] or None)
        else:
            slash = rest.find("/")
            hostpart, uri = (rest, None) if slash < 0 else (rest[:slash], rest[slash:])
        return self._target("http", hostpart, target, uri, st)

    def _target(self, scheme, hostpart, text, uri, st) -> PassTarget:
        try:
            addr = V.parse_address(hostpart, default_port=None)
        except V.AddrError as e:
            msg = str(e)
            if msg == "no path in the unix domain socket":
                self.emerg(f'no path in the unix domain socket in upstream "{hostpart}"')
            if msg == "invalid port":
                self.emerg(f'invalid port in upstream "{hostpart}"')
            self.emerg(f'invalid host in upstream "{hostpart}"')
        upstream = None
        if addr.kind == "name" and addr.port is None:
            upstream = addr.host
        elif addr.kind == "inet" and addr.port is None:
            addr = Address(addr.kind, addr.host, 80 if scheme == "http" else None, None, addr.text)
        return PassTarget(scheme, addr, upstream, uri, text, False, self.file, st.line)

    def set_stub_status(self, st) -> None:
        self.level.handler = Handler("stub_status", None, self.file, st.line)

    def add_upstream_server(self, st, a):
        up = self.upstream_state
        try:
            addr = V.parse_address(a[0], default_port=80)
        except V.AddrError as e:
            msg = str(e)
            if msg == "invalid port":
                self.emerg(f'invalid port in upstream "{a[0]}"')
            if msg == "no path in the unix domain socket":
                self.emerg(f'no path in the unix domain socket in upstream "{a[0]}"')
            self.emerg(f'invalid host in upstream "{a[0]}"')
        kw = dict(weight=1, max_fails=1, fail_timeout_ms=10000, max_conns=0, backup=False, down=False)
        for x in a[1:]:
            k, eq, v = x.partition("=")
            if eq and k in ("weight", "max_fails", "max_conns"):
                n = V.parse_int(v)
                if n is None or (k == "weight" and n == 0):
                    self.emerg(f'invalid parameter "{x}"')
                kw[k] = n
            elif eq and k == "fail_timeout":
                t = V.parse_time_ms(v, seconds_only=True)
                if t is None:
                    self.emerg(f'invalid parameter "{x}"')
                kw["fail_timeout_ms"] = t
            elif x in ("backup", "down"):
                kw[x] = True
            else:
                self.emerg(f'invalid parameter "{x}"')
        up.servers.append(UpstreamServer(addr, file=self.file, line=st.line, **kw))

    def set_balance(self, st, method, a):
        up = self.upstream_state
        if up.method is not None:
            self.warn("load balancing method redefined")
        up.method = method
        if method == "hash":
            up.hash_key = a[0]
            self.check_vars(a[0])
            if len(a) == 2:
                if a[1] != "consistent":
                    self.emerg(f'invalid parameter "{a[1]}"')
                up.hash_consistent = True


class _DictLevel:
    """Main/events contexts store their values in a plain dict; handlers see `.v`."""

    def __init__(self, d):
        self.v = d
        self.own = set()
        self.named = False
        self.kind = "main"


# ---------------------------------------------------------------- merge and build

_SETTINGS_FIELDS = {f for f in Settings.__dataclass_fields__}
_UPS_FIELDS = {f for f in UpstreamOptions.__dataclass_fields__}


def _effective(level: Level | None, cache: dict) -> dict:
    """Raw effective values of a level: its own slots over its parent's (nginx's merge)."""
    if level is None:
        return {}
    key = id(level)
    if key in cache:
        return cache[key]
    base = dict(_effective(level.parent, cache))
    for k in NOT_INHERITED:
        base.pop(k, None)
    for k in ("uwsgi.params", "proxy.params"):
        if k in base:
            base[k + "#inherited"] = True
    for k, v in level.v.items():
        if k.startswith("_"):
            continue
        base[k] = v
        if k in ("uwsgi.params", "proxy.params"):
            base[k + "#inherited"] = False
    if level.v.get("access_logs") is not None and "access_log_off" not in level.v:
        base["access_log_off"] = False
    cache[key] = base
    return base


def _tuplify(v):
    if isinstance(v, list):
        return tuple(v)
    if isinstance(v, dict):
        return tuple(sorted(v.items()))
    return v


def _build_settings(eff: dict, prefix: str) -> Settings:
    kw = {}
    ups = {"uwsgi": {}, "proxy": {}}
    for k, v in eff.items():
        if "." in k:
            mod, _, f = k.partition(".")
            if f.endswith("#inherited"):
                ups[mod]["params_inherited"] = v
            elif f in _UPS_FIELDS:
                ups[mod][f] = _tuplify(v)
        elif k in _SETTINGS_FIELDS:
            kw[k] = _tuplify(v)
    if not kw.get("access_logs") and not kw.get("access_log_off"):
        kw["access_logs"] = (AccessLog(os.path.join(prefix, "logs/access.log"),
                                       LogFormat("combined", COMBINED), implicit=True),)
    proxy_params = list(ups["proxy"].get("params", ()))
    names = {p.name.lower() for p in proxy_params}
    for n, val in PROXY_DEFAULT_HEADERS:
        if n.lower() not in names:
            proxy_params.append(Param(n, val))
    ups["proxy"]["params"] = tuple(proxy_params)
    root = kw.get("root", "html")
    if not root.startswith("/") and not root.startswith("$"):
        kw["root"] = os.path.join(prefix, root)
    kw["uwsgi"] = UpstreamOptions(**ups["uwsgi"])
    kw["proxy"] = UpstreamOptions(**ups["proxy"])
    return Settings(**kw)


def _build_location(ls: LocState, cache, prefix) -> Location:
    eff = _effective(ls.level, cache)
    return Location(
        modifier=ls.modifier, path=ls.path, settings=_build_settings(eff, prefix),
        handler=ls.level.handler, return_=ls.level.v.get("_return"),
        locations=tuple(_build_location(c, cache, prefix) for c in ls.level.locations),
        file=ls.file, line=ls.line)


def _build_server(s: ServerState, cache, prefix) -> Server:
    eff = _effective(s.level, cache)
    listens = tuple(s.listens)
    if not listens:
        port = 80 if os.geteuid() == 0 else 8000
        listens = (Listen(Address("inet", "0.0.0.0", port, None, f"0.0.0.0:{port}"), implicit=True,
                          file=s.file, line=s.line),)
    names = tuple(s.names) or (ServerName("", "exact", False, s.file, s.line),)
    srv_kw = {k: _tuplify(eff[k]) for k in SERVER_ONLY if k in eff}
    return Server(listens=listens, server_names=names,
                  locations=tuple(_build_location(c, cache, prefix) for c in s.level.locations),
                  settings=_build_settings(eff, prefix), return_=s.level.v.get("_return"),
                  file=s.file, line=s.line, **srv_kw)


def _build_upstream(u: UpstreamState) -> Upstream:
    return Upstream(u.name, tuple(u.servers), u.method or "round_robin", u.hash_key, u.hash_consistent,
                    u.v.get("keepalive", 0), u.v.get("keepalive_requests", 1000),
                    u.v.get("keepalive_timeout_ms", 60000), u.file, u.line)


def _build_main(m: dict, ncpu: int) -> Main:
    wp = m.get("worker_processes", 1)
    aff = m.get("worker_cpu_affinity")
    return Main(
        worker_processes=ncpu if wp == "auto" else wp, worker_processes_auto=(wp == "auto"),
        worker_cpu_affinity=CpuAffinity(aff[0], aff[1]) if aff else None,
        pid=m.get("pid"), error_logs=tuple(m.get("error_logs", ())),
        worker_rlimit_nofile=m.get("worker_rlimit_nofile"),
        worker_shutdown_timeout_ms=m.get("worker_shutdown_timeout_ms"),
        user=m.get("user"), daemon=m.get("daemon", True), master_process=m.get("master_process", True))


def _build_events(e: dict, where) -> Events:
    return Events(worker_connections=e.get("worker_connections", 512),
                  accept_mutex=e.get("accept_mutex", False),
                  accept_mutex_delay_ms=e.get("accept_mutex_delay_ms", 500),
                  multi_accept=e.get("multi_accept", False), use=e.get("use"),
                  file=where[0], line=where[1])


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# ---------------------------------------------------------------- loading

def _is_nginx_main(path: str) -> bool:
    return os.path.basename(path) == "nginx.conf"


def _load(files: list[str], main: str | None, prefix: str) -> tuple[FrontConfig, list[Diagnostic]]:
    from pyfront.config import nginx_validate   # validation is a separate module (cross-checks)
    p = Parser(prefix)
    rest = [f for f in files if f != main]

    def read_rest():
        for f in rest:
            if f not in p.files:
                p.parse_file(f, ND.HTTP)

    def implicit_http():
        prelude = Level(ND.HTTP, None)
        p.begin_http(prelude, None, 0)
        p.level = prelude
        p.parse_text(PRELUDE, PRELUDE_FILE, ND.HTTP)
        p.level = p.http.level
        read_rest()

    try:
        if main is not None:
            p.on_http_end = read_rest
            p.level = None
            p.parse_file(main, ND.MAIN)
            p.on_http_end = None
            if p.http is None:
                p.file, p.line = None, 0
                implicit_http()
        else:
            implicit_http()
        cfg = _finish(p, prefix, main)
        nginx_validate.check_after_parse(p, cfg)
    except _Stop:
        raise ConfigError(p.report.diagnostics) from None
    nginx_validate.warnings(cfg, p.report, p)
    return cfg, list(p.report.diagnostics)


def _finish(p: Parser, prefix: str, main: str | None) -> FrontConfig:
    from pyfront.config import nginx_validate
    nginx_validate.check_http_end(p)
    cache: dict = {}
    h = p.http
    servers = tuple(_build_server(s, cache, prefix) for s in h.servers)
    http = Http(servers=servers, upstreams=tuple(_build_upstream(u) for u in h.upstreams.values()),
                log_formats=tuple(h.log_formats.values()),
                settings=_build_settings(_effective(h.level, cache), prefix), file=h.file, line=h.line)
    return FrontConfig(main=_build_main(p.main, _cpu_count()), events=_build_events(p.events, p.events_where),
                       http=http, prefix=prefix, files=tuple(p.files), main_file=main)


def load_nginx_files(paths, main: str | None = None, prefix: str | None = None
                     ) -> tuple[FrontConfig, list[Diagnostic]]:
    """Load nginx-syntax files: `paths` as conf.d files (in the given order), `main` as nginx.conf."""
    paths = [os.path.abspath(x) for x in paths]
    main = os.path.abspath(main) if main else None
    if prefix is None:
        first = main or (paths[0] if paths else os.getcwd())
        prefix = os.path.dirname(first) if os.path.isfile(first) else first
    return _load(paths, main, os.path.abspath(prefix))


def load_nginx(confdir) -> tuple[FrontConfig, list[Diagnostic]]:
    """The nginx layer of a CONF_DIR (pyfront.config.confdir.ConfDir)."""
    return _load(list(confdir.nginx_files), confdir.nginx_main, confdir.path)


def load_nginx_text(text: str, name: str = "site.conf", prefix: str | None = None
                    ) -> tuple[FrontConfig, list[Diagnostic]]:
    """Parse one conf.d-style text without touching the disk (includes still read files)."""
    prefix = os.path.abspath(prefix or os.getcwd())
    p = Parser(prefix)
    from pyfront.config import nginx_validate
    try:
        prelude = Level(ND.HTTP, None)
        p.begin_http(prelude, None, 0)
        p.level = prelude
        p.parse_text(PRELUDE, PRELUDE_FILE, ND.HTTP)
        p.level = p.http.level
        p.parse_text(text, name, ND.HTTP)
        cfg = _finish(p, prefix, None)
        nginx_validate.check_after_parse(p, cfg)
    except _Stop:
        raise ConfigError(p.report.diagnostics) from None
    nginx_validate.warnings(cfg, p.report, p)
    return cfg, list(p.report.diagnostics)


def salvage_pid(confdir) -> str | None:
    """The main-context `pid` of CONF_DIR's nginx.conf even when the config has errors.

    For `pyfront signal quit|stop|reopen` on a broken config (a deliberate difference from
    nginx -s, which refuses): the statements of nginx.conf are read up to the first syntax
    error and a top-level `pid X;` is returned, resolved against CONF_DIR. None if absent.
    """
    main = getattr(confdir, "nginx_main", None)
    if not main:
        return None
    try:
        with open(main, "rb") as f:
            text = f.read().decode("utf-8", "surrogateescape")
    except OSError:
        return None
    depth, pid = 0, None
    try:
        for st in statements(text, main):
            if st.end == "{":
                depth += 1
            elif st.end == "}":
                depth -= 1
            elif st.end == ";" and depth == 0 and st.name == "pid" and len(st.words) == 2:
                pid = st.words[1].value
    except ConfigError:
        pass
    if pid is None:
        return None
    return pid if os.path.isabs(pid) else os.path.normpath(os.path.join(confdir.path, pid))
