"""The sequential nginx-syntax parser: statements → per-level raw values (nginx's order and messages).

`Parser` reads statements from nginx_lexer one at a time and dispatches each through the
directive table (nginx_directives): context, terminator and argument-count checks in
nginx's order, then the handler. Block directives (http, events, server, location,
upstream, types) recurse; `include` parses another file in the same context. The first
emerg raises `_Stop` after recording it in `report` (nginx stops there too).
The raw values are turned into the frozen model by nginx_build.
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
from pyfront.config.diagnostics import ConfigError, Report
from pyfront.config.model import (Address, Handler, Listen, LogFormat, PassTarget, ServerName,
                                  UpstreamServer)
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


def regex_error(pattern: str, caseless: bool = False) -> str | None:
    from pyfront.config.nginx_match import regex_error as _e
    return _e(pattern, caseless)


def compile_regex(pattern: str, caseless: bool) -> "re.Pattern":
    """Compile an nginx (PCRE) regex with Python's re (named groups translated)."""
    from pyfront.config.nginx_match import compile_regex as _c
    return _c(pattern, caseless)


class _Stop(Exception):
    """An emerg was recorded; unwind to the top (nginx stops at the first one)."""


def _printable(msg: str) -> str:
    """Messages may quote bytes that are not UTF-8 (kept as surrogates in values): print them as U+FFFD."""
    return msg.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _where_allowed(entries) -> str | None:
    """What to do about a directive in the wrong block (pyfront's hint after nginx's message)."""
    ctx = set().union(*(e.contexts for e in entries))
    if ctx == {ND.MAIN}:
        return "move it to nginx.conf's main context"
    if ctx == {ND.EVENTS}:
        return "move it into events {} in nginx.conf"
    names = {ND.HTTP: "at the http level, outside server {}", ND.SRV: "in server {}", ND.LOC: "in location {}",
             ND.UPS: "in upstream {}"}
    where = [names[c] for c in (ND.HTTP, ND.SRV, ND.LOC, ND.UPS) if c in ctx]
    return "use it " + " or ".join(where) if where else None


def var_syntax_error(text: str) -> str | None:
    """nginx's script-compiler message for a malformed `$name` / `${name}` in `text`, or None."""
    i, n = 0, len(text)
    while True:
        i = text.find("$", i)
        if i < 0:
            return None
        i += 1
        if i < n and text[i] == "{":
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] == "_") and text[j].isascii():
                j += 1
            if j == i + 1:
                return "invalid variable name"
            if j >= n or text[j] != "}":
                return f'the closing bracket in "{text[i + 1:j]}" variable is missing'
            i = j + 1
        elif i < n and (text[i].isalnum() or text[i] == "_") and text[i].isascii():
            i += 1
        else:
            return "invalid variable name"


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
        self.backup_conflict = False
        self.peer_init_set = False


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
        self.deferred_vars: list[tuple[str, str | None, int]] = []
        self._loc_of: dict = {}
        self._current_server = None

    # ------------------------------------------------------------ diagnostics
    def emerg(self, msg: str, hint: str | None = None, file=..., line=None):
        self.report.add("emerg", _printable(msg), self.file if file is ... else file, self.line if line is None else line, hint)
        raise _Stop()

    def warn(self, msg: str, hint: str | None = None, file=..., line=None):
        self.report.add("warn", _printable(msg), self.file if file is ... else file, self.line if line is None else line, hint)

    def path(self, p: str) -> str:
        if p.startswith("/") or "$" in p[:1]:
            return p
        return os.path.normpath(os.path.join(self.prefix, p)) + ("/" if p.endswith("/") else "")

    def check_vars(self, text: str) -> None:
        """Check `$name` / `${name}` syntax now (as nginx's script compiler does in the handler);
        whether each name exists is checked when the http block is complete."""
        if "$" not in text:
            return
        err = var_syntax_error(text)
        if err:
            self.emerg(err)
        self.pending_vars.append((text, self.file, self.line))

    def check_vars_later(self, text: str) -> None:
        """uwsgi_param / proxy_set_header values: nginx compiles them when it merges the
        levels, after the whole http block, so their syntax errors come after parse errors."""
        if "$" in text:
            self.deferred_vars.append((text, self.file, self.line))

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
            if name.startswith("\ufeff") and self.line == 1:
                self.emerg(f'unknown directive "{name}"',
                           hint="the file starts with a UTF-8 byte order mark; save it without one")
            if name in ND.NGINX_DIRECTIVE_NAMES:
                self.emerg(f'"{name}" directive is not supported by pyfront', hint=ND.hint_for_unsupported(name))
            self.emerg(f'unknown directive "{name}"')
        ent = next((e for e in entries if ctx in e.contexts or ND.ANY in e.contexts), None)
        if ent is None:
            self.emerg(f'"{name}" directive is not allowed here', hint=_where_allowed(entries))
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
        """`include`: relative paths are tried against the including file's directory, then
        against CONF_DIR (nginx's rule: its prefix), so both `include uwsgi_params;` next to a
        conf.d file and Debian's `include snippets/x.conf;` from sites-enabled/ work.
        `mime.types` and `uwsgi_params` fall back to pyfront's built-in copies."""
        if self.depth >= MAX_INCLUDE_DEPTH:
            self.emerg(f'include nesting too deep ("{pattern}")', hint="an included file includes itself")
        here = os.path.dirname(self.file) if self.file and os.path.isabs(self.file) else self.prefix
        bases = [""] if os.path.isabs(pattern) else list(dict.fromkeys([here, self.prefix]))
        is_glob = any(c in pattern for c in "*?[")
        paths: list[str] = []
        for base in bases:
            full = os.path.join(base, pattern)
            if is_glob:
                paths = sorted(p for p in glob.glob(full) if os.path.isfile(p))
            elif os.path.exists(full):
                paths = [full]
            if paths:
                break
        if not paths and not is_glob:
            name = os.path.basename(pattern)
            # nginx names the path under its prefix in the error
            paths = [_data_path(name)] if name in BUILTIN_FILES else [os.path.join(bases[-1], pattern)]
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
            err = regex_error(path, mod == "~*")
            if err:
                self.emerg(err)
        if parent.kind == ND.LOC:
            pl = self._loc_of[id(parent)]
            cname = "@" + path if mod == "@" else path      # nginx's name of the nested location
            if pl.modifier == "=":
                self.emerg(f'location "{cname}" cannot be inside the exact location "{pl.path}"')
            if pl.modifier == "@":
                self.emerg(f'location "{cname}" cannot be inside the named location "@{pl.path}"')
            if mod == "@":
                self.emerg(f'named location "@{path}" can be on the server level only')
            # nginx compares the names as text, whatever the parent's kind (even a regex parent)
            if mod in ("", "=", "^~") and not path.startswith(pl.path):
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
                    self.emerg(f'invalid backlog "{x}"')
                opts["backlog"] = n
                has_opts = True
            elif x.startswith(("rcvbuf=", "sndbuf=")):
                n = V.parse_size(x[7:])
                if n is None:
                    self.emerg(f'invalid {x[:6]} "{x}"')
                opts[x[:6]] = n
                has_opts = True
            elif x.startswith("ipv6only="):
                v = V.parse_flag(x[9:])
                if v is None or x[9:] not in ("on", "off"):
                    self.emerg(f'invalid parameter "{x}"')
                opts["ipv6only"] = v
                has_opts = True
            elif x.startswith("so_keepalive="):
                v = x[13:]
                if v not in ("on", "off") and not re.fullmatch(r"(\d+[smhd]?)?:(\d+[smhd]?)?:(\d+)?", v):
                    self.emerg(f'invalid so_keepalive value: "{v}"')
                has_opts = True
            elif x in ("bind", "deferred") or x.startswith("fastopen="):
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
                    err = regex_error(x[1:])
                    if err:
                        self.emerg(err)
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
        # Without a port the target names an upstream block. If there is none, nginx takes
        # http's port 80 for proxy_pass; uwsgi has no default port ("no port in upstream").
        upstream = None
        if addr.port is None and addr.kind != "unix":
            upstream = addr.host if addr.kind == "name" else addr.text
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
        if addr.kind == "name":
            ips = resolve(addr.host, addr.port)
            if not ips:
                self.emerg(f'host not found in upstream "{a[0]}"')
            addr = Address(addr.kind, addr.host, addr.port, None, addr.text, ips)
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
                if x == "backup" and up.method in ("ip_hash", "hash", "random"):
                    self.emerg('balancing method does not support parameter "backup"')
                kw[x] = True
            else:
                self.emerg(f'invalid parameter "{x}"')
        up.servers.append(UpstreamServer(addr, file=self.file, line=st.line, **kw))

    def set_balance(self, st, method, a):
        up = self.upstream_state
        if up.method is not None or up.peer_init_set:
            self.warn("load balancing method redefined")
        up.method = method
        up.peer_init_set = True
        if method == "random" and a:
            self.emerg('"random two" is not supported by pyfront', hint="use `random;` or `least_conn;`")
        if method in ("ip_hash", "hash", "random") and any(s.backup for s in up.servers):
            up.backup_conflict = True       # nginx fails when it initialises the upstream
        if method == "hash":
            up.hash_key = a[0]
            self.check_vars(a[0])
            if len(a) == 2:
                if a[1] != "consistent":
                    self.emerg(f'invalid parameter "{a[1]}"')
                up.hash_consistent = True


def resolve(host: str, port: int | None) -> tuple[str, ...]:
    """IPv4 and IPv6 addresses of a host name, in resolver order, without duplicates."""
    try:
        infos = socket.getaddrinfo(host, port or 80, 0, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        return ()
    out: list[str] = []
    for info in infos:
        ip = info[4][0]
        if ip not in out:
            out.append(ip)
    return tuple(out)


class _DictLevel:
    """Main/events contexts store their values in a plain dict; handlers see `.v`."""

    def __init__(self, d):
        self.v = d
        self.own = set()
        self.named = False
        self.kind = "main"
