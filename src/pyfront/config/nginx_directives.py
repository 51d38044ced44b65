"""The nginx directive table: one entry per directive pyfront understands.

Each entry says where the directive may appear (nginx's contexts), how many arguments it
takes (nginx's NGX_CONF_* argument flags), how its arguments are parsed into the level's
slots, its default, and its documentation. The parser (nginx.py) checks context, the
terminator and the argument count exactly in nginx's order, then calls the handler.
docs/reference-nginx.md is generated from this table:

    python -m pyfront.config.nginx_directives --markdown > docs/reference-nginx.md

A handler returns None on success or a string `rv` that nginx would print as
`"NAME" directive RV` (e.g. "is duplicate", "invalid value"); for other messages it calls
`p.emerg(message)` (raises) or `p.warn(message)`.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Callable

from pyfront.config import nginx_values as V
from pyfront.config.model import (AccessLog, AddHeader, ErrorLog, ErrorPage, Expires, LogFormat,
                                  OpenFileCache, Param, Return)

# contexts
MAIN, EVENTS, HTTP, SRV, LOC, UPS, ANY = "main", "events", "http", "server", "location", "upstream", "any"
HSL = frozenset({HTTP, SRV, LOC})
HS = frozenset({HTTP, SRV})

LEVELS = ("emerg", "alert", "crit", "error", "warn", "notice", "info", "debug")


@dataclass(frozen=True)
class Directive:
    name: str
    contexts: frozenset[str]
    args: str                     # "0" | "1" | "12" | "123" | "1234" | "2" | "23" | "1+" | "2+" | "flag" | "any"
    handler: Callable[..., Any] | None
    syntax: str                   # as nginx.org documents it, without the name
    default: str = ""             # "" = none
    doc: str = ""
    block: bool = False           # takes a `{ ... }` block
    differs: str = ""             # a deliberate difference from nginx, documented

    def args_ok(self, n: int) -> bool:
        """n = number of arguments (words after the name), with nginx's flag semantics."""
        a = self.args
        if a == "any":
            return True
        if a == "flag":
            return n == 1
        if a == "1+":
            return n >= 1
        if a == "2+":
            return n >= 2
        if n > 7:
            return False
        return str(n) in a


TABLE: dict[str, Directive] = {}


def d(name, contexts, args, handler, syntax, default="", doc="", block=False, differs=""):
    ctx = frozenset(contexts) if not isinstance(contexts, str) else frozenset({contexts})
    TABLE[name] = Directive(name, ctx, args, handler, syntax, default, doc, block, differs)


# ---------------------------------------------------------------- generic slot handlers
# They mirror ngx_conf_set_*_slot: the same duplicate rule and the same messages.

def _dup(p, slot) -> bool:
    return slot in p.level.v


def flag(slot):
    def h(p, st, a):
        if _dup(p, slot):
            return "is duplicate"
        v = V.parse_flag(a[0])
        if v is None:
            p.emerg(f'invalid value "{a[0]}" in "{st.name}" directive, it must be "on" or "off"')
        p.level.v[slot] = v
    return h


def size(slot):
    def h(p, st, a):
        if _dup(p, slot):
            return "is duplicate"
        v = V.parse_size(a[0])
        if v is None:
            return "invalid value"
        p.level.v[slot] = v
    return h


def msec(slot, seconds_only=False):
    def h(p, st, a):
        if _dup(p, slot):
            return "is duplicate"
        v = V.parse_time_ms(a[0], seconds_only)
        if v is None:
            return "invalid value"
        p.level.v[slot] = v
    return h


def num(slot):
    def h(p, st, a):
        if _dup(p, slot):
            return "is duplicate"
        v = V.parse_int(a[0])
        if v is None:
            return "invalid number"
        p.level.v[slot] = v
    return h


def enum(slot, choices):
    def h(p, st, a):
        if _dup(p, slot):
            return "is duplicate"
        v = a[0].lower()
        if v not in choices:
            p.emerg(f'invalid value "{a[0]}"')
        p.level.v[slot] = v
    return h


def string(slot):
    def h(p, st, a):
        if _dup(p, slot):
            return "is duplicate"
        p.level.v[slot] = a[0]
    return h


def noop(p, st, a):
    """Accepted for compatibility; nothing in pyfront needs it (documented per directive)."""
    return None


def bufs(slot):
    def h(p, st, a):
        if _dup(p, slot):
            return "is duplicate"
        n, s = V.parse_int(a[0]), V.parse_size(a[1])
        if n is None or s is None or n == 0 or s == 0:
            return "invalid value"            # ngx_conf_set_bufs_slot
        p.level.v[slot] = (n, s)
    return h


def bitmask(slot, choices):
    def h(p, st, a):
        out = list(p.level.v.get(slot, ()))   # repeated directives add up, as nginx's bitmask slots
        for x in a:
            if x.lower() not in choices:
                p.emerg(f'invalid value "{x}"')
            if x.lower() not in out:
                out.append(x.lower())
        p.level.v[slot] = tuple(out)
    return h


# ---------------------------------------------------------------- main context

def h_worker_processes(p, st, a):
    if _dup(p, "worker_processes"):
        return "is duplicate"
    if a[0] == "auto":
        p.level.v["worker_processes"] = "auto"
        return None
    n = V.parse_int(a[0])
    if n is None:
        return "invalid value"
    p.level.v["worker_processes"] = n


def h_worker_cpu_affinity(p, st, a):
    if _dup(p, "worker_cpu_affinity"):
        return "is duplicate"
    auto = a[0] == "auto"
    if auto and len(a) > 2:
        p.emerg('invalid number of arguments in "worker_cpu_affinity" directive')
    masks = []
    for m in a[1:] if auto else a:
        if len(m) > 64:
            p.emerg('"worker_cpu_affinity" supports up to 64 CPUs only')
        bad = next((c for c in reversed(m) if c not in "01"), None)   # nginx reads masks right to left
        if bad is not None:
            p.emerg(f'invalid character "{bad}" in "worker_cpu_affinity"')
        masks.append(int(m, 2) if m else 0)
    p.level.v["worker_cpu_affinity"] = (auto, tuple(masks))


def h_pid(p, st, a):
    if _dup(p, "pid"):
        return "is duplicate"
    p.level.v["pid"] = p.path(a[0])


def _error_log_value(p, st, a):
    path = a[0]
    level = "error"
    if len(a) > 1:
        lv = a[1]
        if lv not in LEVELS:
            p.emerg(f'invalid log level "{lv}"')
        level = lv
        if len(a) > 2:
            p.emerg(f'invalid log level "{a[2]}"')
    if path == "stderr" or path.startswith(("syslog:", "memory:")):
        full = path
    else:
        full = p.path(path)
    return ErrorLog(full, level, False, p.file, st.line)


def h_error_log(p, st, a):
    p.level.v.setdefault("error_logs", [])
    p.level.v["error_logs"].append(_error_log_value(p, st, a))


def h_rlimit(p, st, a):
    return num("worker_rlimit_nofile")(p, st, a)


def h_user(p, st, a):
    if _dup(p, "user"):
        return "is duplicate"
    p.level.v["user"] = (a[0], a[1] if len(a) > 1 else a[0])


d("worker_processes", MAIN, "1", h_worker_processes, "number | auto", "1",
  "How many front worker processes serve connections; `auto` = the number of CPUs.")
d("worker_cpu_affinity", MAIN, "1+", h_worker_cpu_affinity, "cpumask ... | auto [cpumask]", "",
  "Pin each worker to CPUs: one bitmask per worker (last one repeats), or `auto` (worker i on the i-th allowed CPU).")
d("pid", MAIN, "1", h_pid, "file", "",
  "File holding the `pyfront serve` master's pid (relative paths resolve against CONF_DIR).",
  differs="nginx defaults to logs/nginx.pid; pyfront writes its pid file in its run directory when `pid` is absent.")
d("error_log", frozenset({MAIN, HTTP, SRV, LOC}), "1+", h_error_log, "file [level]", "logs/error.log error",
  "Where errors are logged and from which level (debug info notice warn error crit alert emerg). `stderr` is allowed.")
d("worker_rlimit_nofile", MAIN, "1", h_rlimit, "number", "",
  "RLIMIT_NOFILE for worker processes.")
d("worker_shutdown_timeout", MAIN, "1", msec("worker_shutdown_timeout_ms"), "time", "",
  "Deadline for a graceful worker shutdown; after it, remaining connections are closed.")
d("user", MAIN, "12", h_user, "user [group]", "nobody nobody",
  "Credentials of worker processes when the master runs as root.")
d("daemon", MAIN, "flag", flag("daemon"), "on | off", "on",
  "Parsed for compatibility.", differs="`pyfront serve` always stays in the foreground (use systemd or `&`).")
d("master_process", MAIN, "flag", flag("master_process"), "on | off", "on",
  "Parsed for compatibility.", differs="pyfront always runs a master.")
d("events", MAIN, "0", None, "{ ... }", "", "Connection processing settings.", block=True,
  differs="optional in pyfront (nginx requires the block in a main config).")
d("http", MAIN, "0", None, "{ ... }", "", "HTTP server settings. CONF_DIR files are read inside it.", block=True)

# ---------------------------------------------------------------- events

def h_worker_connections(p, st, a):
    if _dup(p, "worker_connections"):
        return "is duplicate"
    v = V.parse_int(a[0])
    if v is None:
        p.emerg(f'invalid number "{a[0]}"')
    p.level.v["worker_connections"] = v


d("worker_connections", EVENTS, "1", h_worker_connections, "number", "512",
  "Connections per worker (clients and upstreams together).")
d("accept_mutex", EVENTS, "flag", flag("accept_mutex"), "on | off", "off",
  "Workers take turns accepting, using a lock in shared memory (owner pid in the lock word). Off: EPOLLEXCLUSIVE.")
d("accept_mutex_delay", EVENTS, "1", msec("accept_mutex_delay_ms"), "time", "500ms",
  "How long a worker waits before trying the accept mutex again.")
d("multi_accept", EVENTS, "flag", flag("multi_accept"), "on | off", "off",
  "Accept every pending connection per readiness event, not one.")


def h_use(p, st, a):
    if _dup(p, "use"):
        return "is duplicate"
    if a[0] != "epoll":
        p.emerg(f'invalid event type "{a[0]}"', hint="pyfront's event loop is epoll; remove the line or write `use epoll;`")
    p.level.v["use"] = a[0]


d("use", EVENTS, "1", h_use, "method", "epoll", "Connection processing method; only `epoll` exists in pyfront.")

# ---------------------------------------------------------------- http / server / location: files


def h_root(p, st, a):
    if "root" in p.level.own:
        return "is duplicate"
    if "alias" in p.level.own:
        p.emerg('"root" directive is duplicate, "alias" directive was specified earlier')
    path = a[0]
    if "$document_root" in path or "$realpath_root" in path:
        p.emerg(f'the $document_root variable cannot be used in the "{st.name}" directive')
    p.check_vars(path)
    p.level.own.add("root")
    p.level.v["root"] = p.path(path) if "$" not in path[:1] else path
    p.level.v["alias"] = None


def h_alias(p, st, a):
    if "alias" in p.level.own:
        return "is duplicate"
    if "root" in p.level.own:
        p.emerg('"alias" directive is duplicate, "root" directive was specified earlier')
    if p.level.named:
        p.emerg('the "alias" directive cannot be used inside the named location')
    path = a[0]
    if "$document_root" in path or "$realpath_root" in path:
        p.emerg(f'the $document_root variable cannot be used in the "{st.name}" directive')
    p.check_vars(path)
    p.level.own.add("alias")
    p.level.v["alias"] = p.path(path) if "$" not in path[:1] else path
    p.level.v["alias_line"] = (p.file, st.line)


def h_index(p, st, a):
    lst = p.level.v.setdefault("index", [])
    for i, x in enumerate(a):
        if not x:
            p.emerg(f'index "{x}" in "index" directive is invalid')
        if x.startswith("/") and i != len(a) - 1:
            p.warn('only the last index in "index" directive should be absolute')
        p.check_vars(x)
        lst.append(x)


def h_try_files(p, st, a):
    if "try_files" in p.level.v:
        return "is duplicate"
    last = a[-1]
    if last.startswith("=") and last[1:]:
        code = V.parse_int(last[1:])
        if code is None or not (1 <= code <= 999):
            p.emerg(f'invalid code "{last}"')
    for x in a:
        p.check_vars(x)
    p.level.v["try_files"] = tuple(a)


def h_types(p, st, a):
    # Several `types` blocks at one level add up (ngx_http_core_types). conf.d files share the
    # http level with the prelude's `include mime.types` in nginx, so the http level starts
    # from the prelude's map (the prelude is pyfront's outer level, see nginx.py).
    if "types" not in p.level.v:
        parent = getattr(p.level, "parent", None)
        inherited = parent.v.get("types") if parent is not None and p.level.kind == HTTP else None
        p.level.v["types"] = dict(inherited or {})
    p.parse_types_block(p.level.v["types"])


def h_default_type(p, st, a):
    return string("default_type")(p, st, a)


d("root", frozenset({HTTP, SRV, LOC}), "1", h_root, "path", "html",
  "Document root; a request's file is root + URI. Relative paths resolve against CONF_DIR.",
  differs="nginx resolves relative roots against its prefix; pyfront's prefix is CONF_DIR.")
d("alias", LOC, "1", h_alias, "path", "",
  "Replace the location's prefix with this path. pyfront never lets `location /x { alias /d/; }` reach outside /d/.",
  differs="nginx lets `/x../` escape the alias directory when the location lacks the trailing slash; pyfront refuses and `pyfront check` warns.")
d("index", HSL, "1+", h_index, "file ...", "index.html", "Files tried when a URI ends with `/`.")
d("try_files", frozenset({SRV, LOC}), "2+", h_try_files, "file ... uri | file ... =code", "",
  "Try files in order; the last argument is the fallback URI, @named location or =code.")
d("types", HSL, "0", h_types, "{ type ext ...; }", "text/html html; image/gif gif; image/jpeg jpg;",
  "Extension → MIME type map. `include mime.types;` loads nginx's standard list (shipped).", block=True)
d("default_type", HSL, "1", h_default_type, "mime-type", "text/plain",
  "Type of responses whose extension is not in `types`.")
d("sendfile", HSL, "flag", flag("sendfile"), "on | off", "off", "Use sendfile(2) for static files.")
d("tcp_nopush", HSL, "flag", flag("tcp_nopush"), "on | off", "off", "TCP_CORK while sending headers and file (with sendfile).")
d("tcp_nodelay", HSL, "flag", flag("tcp_nodelay"), "on | off", "on", "TCP_NODELAY on keep-alive connections.")


def h_open_file_cache(p, st, a):
    if "open_file_cache" in p.level.v:
        return "is duplicate"
    mx, inactive, off = None, 60000, False
    for x in a:
        if x.startswith("max="):
            mx = V.parse_int(x[4:])
            if mx is None or mx == 0:
                p.emerg(f'invalid "open_file_cache" parameter "{x}"')
        elif x.startswith("inactive="):
            inactive = V.parse_time_ms(x[9:], seconds_only=True)
            if inactive is None:
                p.emerg(f'invalid "open_file_cache" parameter "{x}"')
        elif x == "off":
            off = True
        else:
            p.emerg(f'invalid "open_file_cache" parameter "{x}"')
    if off:
        p.level.v["open_file_cache"] = None
        return None
    if mx is None:
        p.emerg('"open_file_cache" must have the "max" parameter')
    p.level.v["open_file_cache"] = OpenFileCache(mx, inactive)


d("open_file_cache", HSL, "12", h_open_file_cache, "off | max=N [inactive=time]", "off",
  "Cache open descriptors, sizes and mtimes of static files.")
d("open_file_cache_valid", HSL, "1", msec("open_file_cache_valid_ms", True), "time", "60s",
  "How often cached file information is re-checked.")
d("open_file_cache_min_uses", HSL, "1", num("open_file_cache_min_uses"), "number", "1",
  "Uses within `inactive` for an entry to stay cached.")
d("open_file_cache_errors", HSL, "flag", flag("open_file_cache_errors"), "on | off", "off",
  "Cache file lookup errors too.")
d("etag", HSL, "flag", flag("etag"), "on | off", "on", 'Send `ETag: "<mtime hex>-<size hex>"` for static files.')
d("if_modified_since", HSL, "1", enum("if_modified_since", ("off", "exact", "before")), "off | exact | before",
  "exact", "How If-Modified-Since is compared with the file's mtime.")


def h_expires(p, st, a):
    if "expires" in p.level.v:
        return "is duplicate"
    args = list(a)
    modified = False
    if len(args) == 2:
        if args[0] != "modified":
            return "invalid value"
        modified = True
        args = args[1:]
    v = args[0]
    if "$" in v:
        p.check_vars(v)
        p.emerg('"expires" with variables is not supported by pyfront', hint="use a fixed time, epoch, max or off")
    if v == "epoch":
        e = Expires("epoch", 0, p.file, st.line)
    elif v == "max":
        e = Expires("max", 0, p.file, st.line)
    elif v == "off":
        e = None
    else:
        daily = v.startswith("@")
        t = v[1:] if daily else v
        neg = t.startswith("-")
        if t.startswith(("-", "+")):
            t = t[1:]
        ms = V.parse_time_ms(t, seconds_only=True)
        if ms is None:
            return "invalid value"
        if daily:
            if neg or ms >= 86400000:
                return "daily time value must be less than 24 hours"
            e = Expires("daily", ms, p.file, st.line)
        else:
            e = Expires("modified" if modified else "time", -ms if neg else ms, p.file, st.line)
    p.level.v["expires"] = e


d("expires", frozenset({HTTP, SRV, LOC}), "12", h_expires, "[modified] time | epoch | max | off", "off",
  "Add Expires and Cache-Control: max-age to 200, 201, 204, 206, 301, 302, 303, 304, 307, 308 responses.")


def h_add_header(p, st, a):
    p.check_vars(a[1])          # nginx compiles the value before it looks at "always"
    if len(a) == 3 and a[2] != "always":
        p.emerg(f'invalid parameter "{a[2]}"')
    lst = p.level.v.setdefault("add_headers", [])
    lst.append(AddHeader(a[0], a[1], len(a) == 3, p.file, st.line))


d("add_header", HSL, "23", h_add_header, "name value [always]", "",
  "Add a response header to 200, 201, 204, 206, 301, 302, 303, 304, 307, 308 responses (any status with `always`). "
  "A level with its own add_header drops every inherited one (nginx's rule).")


def h_charset(p, st, a):
    if "charset" in p.level.v:
        return "is duplicate"
    if a[0].startswith("$"):
        name = a[0][1:]
        if not name or not all(c.isalnum() or c == "_" for c in name) or not name.isascii():
            p.emerg(f'invalid variable name "{a[0]}"')
        p.emerg('"charset" from a variable is not supported by pyfront', hint="name the charset, e.g. `charset utf-8;`")
    p.level.v["charset"] = None if a[0] == "off" else a[0]


d("charset", HSL, "1", h_charset, "charset | off", "off",
  "Append `; charset=X` to the Content-Type of `charset_types` responses.")


def h_mime_list(slot, always=()):
    def h(p, st, a):
        if slot in p.level.v:
            return "is duplicate"
        seen = list(always)          # nginx pre-adds its default keys: an explicit one is a duplicate
        for x in a:
            x = x.lower()
            if x == "*":               # ngx_http_types_slot: "*" = any type, the rest is not read
                seen = ["*"]
                break
            if x in seen:
                p.warn(f'duplicate MIME type "{x}"')
                continue
            seen.append(x)
        p.level.v[slot] = tuple(seen)
        p.level.v["_where_" + slot] = (p.file, st.line)
    return h


d("charset_types", HSL, "1+", h_mime_list("charset_types"), "mime-type ...",
  "text/html text/xml text/plain text/vnd.wap.wml application/javascript application/rss+xml",
  "Types `charset` applies to (`*` = any).")


def h_error_page(p, st, a):
    args = list(a)
    uri = args.pop()
    p.check_vars(uri)           # nginx compiles the uri before it reads the codes
    overwrite = None
    from_upstream = False
    if args and args[-1].startswith("="):
        if len(args) == 1:
            p.emerg(f'invalid value "{args[0]}"')
        ow = args.pop()
        if ow == "=":
            from_upstream = True
        else:
            overwrite = V.parse_int(ow[1:])
            if overwrite is None:
                p.emerg(f'invalid value "{ow}"')
    codes = []
    for c in args:
        code = V.parse_int(c)
        if code is None:
            p.emerg(f'invalid value "{c}"')
        if not (300 <= code <= 599) or code == 499:
            p.emerg(f'value "{c}" must be between 300 and 599')
        codes.append(code)
    lst = p.level.v.setdefault("error_pages", [])
    lst.append(ErrorPage(tuple(codes), uri, overwrite, from_upstream, p.file, st.line))


d("error_page", frozenset({HTTP, SRV, LOC}), "2+", h_error_page, "code ... [=[response]] uri", "",
  "Internal redirect (or redirect, for URLs) on these status codes. Inherited only by levels that have none.")


def h_server_tokens(p, st, a):
    return enum("server_tokens", ("on", "off", "build"))(p, st, a)


d("server_tokens", HSL, "1", h_server_tokens, "on | off | build", "on",
  "Product version in `Server:` and error pages.",
  differs="the product token is `pyfront` (nginx-exact mode for tests).")
d("log_not_found", HSL, "flag", flag("log_not_found"), "on | off", "on",
  "Log \"file not found\" errors in the error log.")
d("absolute_redirect", HSL, "flag", flag("absolute_redirect"), "on | off", "on",
  "Redirects issued by the front (e.g. a directory without its slash) carry an absolute URL.")
d("port_in_redirect", HSL, "flag", flag("port_in_redirect"), "on | off", "on",
  "Absolute redirects include the listen port.")
d("server_name_in_redirect", HSL, "flag", flag("server_name_in_redirect"), "on | off", "off",
  "Absolute redirects use the first server_name instead of the Host header.")
d("msie_padding", HSL, "flag", flag("msie_padding"), "on | off", "on", "Pad error pages for MSIE/Chrome.")

# ---------------------------------------------------------------- timeouts, sizes


def h_keepalive_timeout(p, st, a):
    if "keepalive_timeout_ms" in p.level.v:
        return "is duplicate"
    ms = V.parse_time_ms(a[0])
    if ms is None:
        return "invalid value"
    hdr = None
    if len(a) == 2:
        hms = V.parse_time_ms(a[1], seconds_only=True)
        if hms is None:
            return "invalid value"
        hdr = hms // 1000
    p.level.v["keepalive_timeout_ms"] = ms
    p.level.v["keepalive_header_timeout_s"] = hdr


d("keepalive_timeout", HSL, "12", h_keepalive_timeout, "timeout [header_timeout]", "75s",
  "Idle time a keep-alive client connection stays open (0 disables keep-alive); optional `Keep-Alive: timeout=` value.")
d("keepalive_requests", HSL, "1", num("keepalive_requests"), "number", "1000",
  "Requests served on one keep-alive connection.")
d("client_header_timeout", HS, "1", msec("client_header_timeout_ms"), "time", "60s",
  "Time to receive the whole request header (408 after it).")
d("client_header_buffer_size", HS, "1", size("client_header_buffer_size"), "size", "1k",
  "Buffer for the request header; bigger ones use large_client_header_buffers.")


def h_large_bufs(p, st, a):
    if "large_client_header_buffers" in p.level.v:
        return "is duplicate"
    n, s = V.parse_int(a[0]), V.parse_size(a[1])
    if n is None or s is None or n == 0 or s == 0:
        return "invalid value"                # ngx_conf_set_bufs_slot
    p.level.v["large_client_header_buffers"] = (n, s)


d("large_client_header_buffers", HS, "2", h_large_bufs, "number size", "4 8k",
  "Max number and size of buffers for long request lines/headers (414 / 400 beyond).")
d("send_timeout", HSL, "1", msec("send_timeout_ms"), "time", "60s",
  "Time between two successive writes to the client before the connection is closed.")
d("client_max_body_size", HSL, "1", size("client_max_body_size"), "size", "1m",
  "Largest request body (413 beyond); 0 = unlimited.")
d("client_body_buffer_size", HSL, "1", size("client_body_buffer_size"), "size", "16k",
  "Request bodies larger than this spill to a temporary file under the run directory.")
d("client_body_timeout", HSL, "1", msec("client_body_timeout_ms"), "time", "60s",
  "Time between two successive reads of the request body (408 after it).")
d("ignore_invalid_headers", HS, "flag", flag("ignore_invalid_headers"), "on | off", "on",
  "Drop request headers with invalid names.")
d("underscores_in_headers", HS, "flag", flag("underscores_in_headers"), "on | off", "off",
  "Accept underscores in request header names.")
d("merge_slashes", HS, "flag", flag("merge_slashes"), "on | off", "on", "Merge `//` in URIs before location matching.")

# ---------------------------------------------------------------- logs

ESCAPES = ("default", "json", "none")


def h_log_format(p, st, a):
    name = a[0]
    args = list(a[1:])
    escape = "default"
    if args and args[0].startswith("escape="):
        escape = args.pop(0)[7:]
        if escape not in ESCAPES:
            p.emerg(f'unknown log format escaping "{escape}"')
    if not args:
        p.emerg('invalid number of arguments in "log_format" directive')
    prev = p.http.log_formats.get(name)
    if prev is not None and not getattr(prev, "_overridable", False) and prev.file != "<pyfront prelude>":
        p.emerg(f'duplicate "log_format" name "{name}"')
    p.http.log_formats[name] = LogFormat(name, "".join(args), escape, p.file, st.line)
    p.check_vars("".join(args))


d("log_format", HTTP, "2+", h_log_format, "name [escape=default|json|none] string ...", "combined \"...\"",
  "Define an access log format. `combined` is built in; pyfront also predefines `main` (nginx.org's sample).",
  differs="a conf.d file may redefine `main` once (pyfront's prelude defines it, as nginx.conf would).")


def h_access_log(p, st, a):
    lst = p.level.v.setdefault("access_logs", [])
    if a[0] == "off":
        if len(a) > 1:
            p.emerg(f'invalid parameter "{a[1]}"')
        p.level.v["access_log_off"] = True
        return None
    p.check_vars(a[0])          # nginx compiles the path before it looks the format up
    fmt_name = a[1] if len(a) > 1 else "combined"     # the 2nd argument is always the format
    fmt = p.http.log_formats.get(fmt_name)
    if fmt is None:
        p.emerg(f'unknown log format "{fmt_name}"')
    buffer = flush = gz = 0
    cond = None
    for x in a[2:]:
        if x.startswith("buffer="):
            buffer = V.parse_size(x[7:])
            if buffer is None:
                p.emerg(f'invalid buffer size "{x[7:]}"')
        elif x.startswith("flush="):
            flush = V.parse_time_ms(x[6:])
            if flush is None or flush == 0:
                p.emerg(f'invalid flush time "{x[6:]}"')
        elif x == "gzip" or x.startswith("gzip="):
            gz = 1 if x == "gzip" else (V.parse_int(x[5:]) or 0)
            if not 1 <= gz <= 9:
                p.emerg(f'invalid compression level "{x[5:]}"')
        elif x.startswith("if="):
            cond = x[3:]
            p.check_vars(cond)
        else:
            p.emerg(f'invalid parameter "{x}"')
    if (flush or gz) and not buffer:
        buffer = 64 * 1024
    path = a[0]
    if not path.startswith(("syslog:",)):
        path = p.path(path) if not path.startswith("$") else path
    lst.append(AccessLog(path, fmt, buffer, flush, gz, cond, False, p.file, st.line))


d("access_log", HSL, "1+", h_access_log, "path [format [buffer=size] [gzip[=level]] [flush=time] [if=condition]] | off",
  "logs/access.log combined",
  "Where requests are logged. The format must be defined before use (`combined` and `main` always are).")

# ---------------------------------------------------------------- gzip

d("gzip", HSL, "flag", flag("gzip"), "on | off", "off", "Compress responses of `gzip_types` on the fly.")
d("gzip_types", HSL, "1+", h_mime_list("gzip_types", ("text/html",)), "mime-type ...", "text/html",
  "Types compressed besides text/html (`*` = any).")
d("gzip_min_length", HSL, "1", size("gzip_min_length"), "length", "20",
  "Minimum Content-Length to compress.")


def h_comp_level(p, st, a):
    if "gzip_comp_level" in p.level.v:
        return "is duplicate"
    v = V.parse_int(a[0])
    if v is None:
        return "invalid number"
    if not 1 <= v <= 9:
        p.emerg("value must be between 1 and 9")
    p.level.v["gzip_comp_level"] = v


d("gzip_comp_level", HSL, "1", h_comp_level, "level", "1", "zlib compression level 1-9.")
d("gzip_vary", HSL, "flag", flag("gzip_vary"), "on | off", "off", "Add `Vary: Accept-Encoding`.")
d("gzip_proxied", HSL, "1+", bitmask("gzip_proxied", ("off", "expired", "no-cache", "no-store", "private",
                                                     "no_last_modified", "no_etag", "auth", "any")),
  "off | expired | no-cache | no-store | private | no_last_modified | no_etag | auth | any ...", "off",
  "Compress responses to proxied requests (those with a Via header) under these conditions.")
d("gzip_http_version", HSL, "1", enum("gzip_http_version", ("1.0", "1.1")), "1.0 | 1.1", "1.1",
  "Minimum HTTP version of a request to compress its response.")
d("gzip_buffers", HSL, "2", bufs("gzip_buffers"), "number size", "32 4k", "Compression buffers.")


def h_gzip_disable(p, st, a):
    from pyfront.config.nginx_match import regex_error
    lst = p.level.v.setdefault("gzip_disable", [])
    for x in a:
        if x not in ("msie6", "degradation"):
            err = regex_error(x, True)      # nginx compiles them caseless
            if err:
                p.emerg(err)
        lst.append(x)


d("gzip_disable", HSL, "1+", h_gzip_disable, "regex ...", "",
  "Do not compress for User-Agents matching any regex (`msie6` = MSIE 4-6).")
d("gzip_static", HSL, "1", enum("gzip_static", ("on", "off", "always")), "on | off | always", "off",
  "Serve FILE.gz when it exists and the client accepts gzip (`always`: regardless).")

# ---------------------------------------------------------------- server / listen / location / return


def h_listen(p, st, a):
    p.add_listen(st, a)


def h_server_name(p, st, a):
    p.add_server_names(st, a)


d("server", HTTP, "0", None, "{ ... }", "", "A virtual server.", block=True)
d("listen", SRV, "1+", h_listen,
  "address[:port] | port | unix:path [default_server] [reuseport] [backlog=N] [rcvbuf=size] [sndbuf=size] "
  "[ipv6only=on|off] [bind] [deferred] [so_keepalive=...]", "*:80 | *:8000",
  "Address the server accepts on. Without `listen`: *:80 as root, *:8000 otherwise.")
d("server_name", SRV, "1+", h_server_name, "name ...", '""',
  "Names this server answers: exact, `*.example.com`, `www.example.*`, `.example.com`, `~regex`, `_` (no match).")
d("location", frozenset({SRV, LOC}), "12", None, "[ = | ~ | ~* | ^~ ] uri { ... } | @name { ... }", "",
  "Settings for a URI; matching: exact `=`, then the longest prefix (stop if `^~`), then the first regex in order, else the longest prefix.",
  block=True)


def h_return(p, st, a):
    if p.level.v.get("_return") is not None:
        return None           # nginx: later `return`s at one level are unreachable, not an error
    if len(a) == 1:
        code = V.parse_int(a[0])
        if code is None:
            if a[0].startswith(("http://", "https://", "$scheme")):
                p.level.v["_return"] = Return(302, a[0], p.file, st.line)
                return None
            p.emerg(f'invalid return code "{a[0]}"')
        p.level.v["_return"] = Return(code, None, p.file, st.line)
        return None
    code = V.parse_int(a[0])
    if code is None or code > 999:
        p.emerg(f'invalid return code "{a[0]}"')
    p.check_vars(a[1])
    p.level.v["_return"] = Return(code, a[1], p.file, st.line)


d("return", frozenset({SRV, LOC}), "12", h_return, "code [text] | code URL | URL", "",
  "Stop processing and answer: a status with optional body text, or a redirect. Not inherited.")

# ---------------------------------------------------------------- uwsgi / proxy


def h_pass(kind):
    def h(p, st, a):
        p.set_pass(kind, st, a[0])
    return h


def h_param(slot):
    def h(p, st, a):
        if slot == "uwsgi.params":
            if len(a) == 3 and a[2] != "if_not_empty":
                p.emerg(f'invalid parameter "{a[2]}"')
        p.check_vars_later(a[1])
        lst = p.level.v.setdefault(slot, [])
        lst.append(Param(a[0], a[1], len(a) == 3, p.file, st.line))
    return h


# ngx_http_{uwsgi,proxy}_next_upstream_masks: uwsgi has no http_502 / http_504.
NEXT_UPSTREAM = {
    "uwsgi": ("error", "timeout", "invalid_header", "non_idempotent", "http_500", "http_503", "http_403",
              "http_404", "http_429", "updating", "off"),
    "proxy": ("error", "timeout", "invalid_header", "non_idempotent", "http_500", "http_502", "http_503",
              "http_504", "http_403", "http_404", "http_429", "updating", "off"),
}


def h_next_upstream(slot):
    allowed = NEXT_UPSTREAM[slot.split(".")[0]]

    def h(p, st, a):
        # a bitmask slot (ngx_conf_set_bitmask_slot): repeated directives add up
        vals = list(p.level.v.get(slot, ()))
        for x in a:
            if x.lower() not in allowed:
                p.emerg(f'invalid value "{x}"')
            if x.lower() not in vals:
                vals.append(x.lower())
        if "off" in vals:
            vals = ["off"]
        p.level.v[slot] = tuple(vals)
    return h


def h_header_list(slot):
    def h(p, st, a):
        p.level.v.setdefault(slot, []).append(a[0])
    return h


def h_modifier(slot):
    def h(p, st, a):
        if slot in p.level.v:
            return "is duplicate"
        v = V.parse_int(a[0])
        if v is None:
            return "invalid number"
        if v > 255:
            p.emerg("value must be between 0 and 255")
        p.level.v[slot] = v
    return h


def h_http_version(p, st, a):
    return enum("proxy.http_version", ("1.0", "1.1"))(p, st, a)


def _proxy_set(prefix, label, param_directive, param_doc):
    L = frozenset({HTTP, SRV, LOC})
    d(f"{label}_pass", LOC, "1", h_pass(label), "address" if label == "uwsgi" else "URL", "",
      ("Send requests to an uwsgi server: `unix:/path`, `unix:///path`, `host:port`, `uwsgi://host:port` or an upstream name."
       if label == "uwsgi" else
       "Send requests to an HTTP server: `http://host[:port][/uri]`, `http://unix:/path:[/uri]` or `http://upstream_name`."))
    d(param_directive, L, "23" if label == "uwsgi" else "2", h_param(f"{prefix}.params"),
      "parameter value [if_not_empty]" if label == "uwsgi" else "field value", "" if label == "uwsgi" else "Host $proxy_host; Connection close",
      param_doc)
    d(f"{label}_pass_request_headers", L, "flag", flag(f"{prefix}.pass_request_headers"), "on | off", "on",
      "Pass the client's request headers (uwsgi: as HTTP_* vars).")
    d(f"{label}_pass_request_body", L, "flag", flag(f"{prefix}.pass_request_body"), "on | off", "on",
      "Pass the client's request body.")
    d(f"{label}_connect_timeout", L, "1", msec(f"{prefix}.connect_timeout_ms"), "time", "60s",
      "Time to establish the upstream connection (then the next server, or 504).")
    d(f"{label}_read_timeout", L, "1", msec(f"{prefix}.read_timeout_ms"), "time", "60s",
      "Time between two reads from the upstream (504 before the header).")
    d(f"{label}_send_timeout", L, "1", msec(f"{prefix}.send_timeout_ms"), "time", "60s",
      "Time between two writes to the upstream.")
    d(f"{label}_buffering", L, "flag", flag(f"{prefix}.buffering"), "on | off", "on",
      "Buffer the upstream response (`X-Accel-Buffering: no` from the upstream turns it off per response).")
    d(f"{label}_request_buffering", L, "flag", flag(f"{prefix}.request_buffering"), "on | off", "on",
      "Read the whole request body before contacting the upstream.")
    d(f"{label}_buffer_size", L, "1", size(f"{prefix}.buffer_size"), "size", "4k",
      "Buffer for the first part of the upstream response (the header).")
    d(f"{label}_buffers", L, "2", bufs(f"{prefix}.buffers"), "number size", "8 4k",
      "Buffers for the upstream response body, per connection.")
    d(f"{label}_next_upstream", L, "1+", h_next_upstream(f"{prefix}.next_upstream"),
      " | ".join(NEXT_UPSTREAM[label]) + " ...",
      "error timeout", "When a request moves to the next upstream server. Non-idempotent requests only with `non_idempotent`.")
    d(f"{label}_next_upstream_tries", L, "1", num(f"{prefix}.next_upstream_tries"), "number", "0",
      "Most servers tried for one request (0 = no limit).")
    d(f"{label}_next_upstream_timeout", L, "1", msec(f"{prefix}.next_upstream_timeout_ms"), "time", "0",
      "Time limit for trying servers (0 = no limit).")
    d(f"{label}_hide_header", L, "1", h_header_list(f"{prefix}.hide_headers"), "field", "",
      "Do not pass this upstream response header to the client.")
    d(f"{label}_pass_header", L, "1", h_header_list(f"{prefix}.pass_headers"), "field", "",
      "Pass a header hidden by default (X-Accel-*).")
    d(f"{label}_intercept_errors", L, "flag", flag(f"{prefix}.intercept_errors"), "on | off", "off",
      "Answer upstream responses with status >= 300 with `error_page`.")


_proxy_set("uwsgi", "uwsgi", "uwsgi_param",
           "Add an uwsgi var. A level with any uwsgi_param drops every inherited one (nginx's rule; "
           "`pyfront check` warns). `if_not_empty`: skip when the value is empty.")
_proxy_set("proxy", "proxy", "proxy_set_header",
           "Set a request header sent upstream. A level with any proxy_set_header drops every inherited one; "
           "Host and Connection keep nginx's defaults unless set.")
def h_proxy_redirect(p, st, a):
    # ngx_http_proxy_redirect: `off` / `default` are single values at a level; a second one is a duplicate
    if "proxy.redirect" in p.level.v and p.level.v["proxy.redirect"] in ("off", "default"):
        return "is duplicate"
    if len(a) == 1 and a[0] in ("off", "default"):
        p.level.v["proxy.redirect"] = a[0]
        return None
    if len(a) == 1 and a[0] == "false":
        p.level.v["proxy.redirect"] = "off"
        return None
    if len(a) == 1:
        p.emerg(f'invalid parameter "{a[0]}"')
    p.emerg('"proxy_redirect" with a replacement is not supported by pyfront',
            hint="use `proxy_redirect default;` or `off;`, or send relative Location headers from the app")


d("proxy_redirect", HSL, "12", h_proxy_redirect, "default | off", "default",
  "Rewrite the Location and Refresh headers of proxied responses: `default` replaces the proxy_pass URL "
  "with the location's prefix; `off` passes them unchanged.",
  differs="explicit `redirect replacement` pairs are not supported.")
d("uwsgi_modifier1", HSL, "1", h_modifier("uwsgi.modifier1"), "number", "0", "modifier1 of the uwsgi packet.")
d("uwsgi_modifier2", HSL, "1", h_modifier("uwsgi.modifier2"), "number", "0", "modifier2 of the uwsgi packet.")
d("proxy_http_version", HSL, "1", h_http_version, "1.0 | 1.1", "1.0",
  "HTTP version to the upstream; 1.1 (with `proxy_set_header Connection \"\"`) allows upstream keep-alive.")


def h_stub_status(p, st, a):
    p.set_stub_status(st)


d("stub_status", frozenset({SRV, LOC}), "01", h_stub_status, "", "",
  "Answer with nginx's basic status text (active connections, accepts, handled, requests, reading/writing/waiting).")

# ---------------------------------------------------------------- upstream


def h_upstream_server(p, st, a):
    p.add_upstream_server(st, a)


def h_balance(method):
    def h(p, st, a):
        p.set_balance(st, method, a)
    return h


d("upstream", HTTP, "1", None, "name { ... }", "", "A group of servers for uwsgi_pass / proxy_pass.", block=True)
d("server@upstream", UPS, "1+", h_upstream_server,
  "address [weight=N] [max_fails=N] [fail_timeout=time] [max_conns=N] [backup] [down]", "",
  "An upstream server (`server` inside `upstream`). Defaults: weight=1 max_fails=1 fail_timeout=10s.")
d("least_conn", UPS, "0", h_balance("least_conn"), "", "", "Pick the server with the fewest active connections (then weights).")
d("ip_hash", UPS, "0", h_balance("ip_hash"), "", "", "Pick by the client address (first three octets of IPv4).")
d("hash", UPS, "12", h_balance("hash"), "key [consistent]", "", "Pick by a key with variables; `consistent` = ketama.")
d("random", UPS, "012", h_balance("random"), "", "", "Pick a random server (weighted).",
  differs="`random two [method]` is not supported.")


def h_up_keepalive(p, st, a):
    if "keepalive" in p.upstream_state.v:
        return "is duplicate"
    n = V.parse_int(a[0])
    if n is None or n == 0:
        p.emerg(f'invalid value "{a[0]}" in "keepalive" directive')
    p.upstream_state.v["keepalive"] = n
    p.upstream_state.peer_init_set = True     # nginx's keepalive wraps the balancer set so far


def h_up_num(slot, is_time=False):
    def h(p, st, a):
        if slot in p.upstream_state.v:
            return "is duplicate"
        v = V.parse_time_ms(a[0]) if is_time else V.parse_int(a[0])
        if v is None:
            return "invalid value" if is_time else "invalid number"
        p.upstream_state.v[slot] = v
    return h


d("keepalive", UPS, "1", h_up_keepalive, "connections", "",
  "Idle connections to keep per worker for reuse (HTTP upstreams; uwsgi has no keep-alive).")
d("keepalive_requests@upstream", UPS, "1", h_up_num("keepalive_requests"), "number", "1000",
  "Requests per cached upstream connection (`keepalive_requests` inside `upstream`).")
d("keepalive_timeout@upstream", UPS, "1", h_up_num("keepalive_timeout_ms", True), "time", "60s",
  "Idle time of a cached upstream connection (`keepalive_timeout` inside `upstream`).")
d("zone", UPS, "12", noop, "name [size]", "",
  "Accepted and ignored: upstream state (failures, round-robin position) is kept per worker, "
  "as nginx does without a zone.")

def h_temp_path(slot):
    def h(p, st, a):
        # ngx_conf_set_path_slot: up to three hashing levels, each 1..10 (measured with nginx 1.22)
        if _dup(p, slot):
            return "is duplicate"
        for lv in a[1:]:
            n = V.parse_int(lv)
            if not n or n > 10:
                return "invalid value"
        p.level.v[slot] = p.path(a[0])
    return h


d("client_body_temp_path", HSL, "1234", h_temp_path("client_body_temp_path"), "path [level1 [level2 [level3]]]",
  "client_body_temp", "Directory for request bodies larger than client_body_buffer_size.",
  differs="the level arguments are accepted and ignored (pyfront unlinks each temp file at once).")
for _n in ("proxy", "uwsgi", "fastcgi", "scgi"):
    d(f"{_n}_temp_path", HSL, "1234", h_temp_path(f"_{_n}_temp_path"), "path [level1 [level2 [level3]]]",
      f"{_n}_temp", "Accepted and ignored: pyfront streams upstream responses and never spills them to disk.")

# ---------------------------------------------------------------- no-ops accepted for compatibility
for _name, _ctx in (("types_hash_max_size", HSL), ("types_hash_bucket_size", HSL),
                    ("server_names_hash_max_size", HTTP), ("server_names_hash_bucket_size", HTTP),
                    ("variables_hash_max_size", HTTP), ("variables_hash_bucket_size", HTTP),
                    ("map_hash_max_size", HTTP), ("map_hash_bucket_size", HTTP),
                    ("proxy_headers_hash_max_size", HSL), ("proxy_headers_hash_bucket_size", HSL)):
    d(_name, _ctx, "1", num("_" + _name), "size", "",
      "Accepted (checked as a number) and ignored: pyfront's C tables have no hash buckets to size.")

d("include", ANY, "1", None, "file | mask", "",
  "Read another file (or every file matching a glob, in name order) here. `mime.types` and `uwsgi_params` "
  "are built in.",
  differs="a relative path is tried against the including file's directory first, then against CONF_DIR "
  "(nginx's prefix, its only rule).")

# ---------------------------------------------------------------- nginx directives pyfront does not implement
# Names only (nginx's and NGINX Plus's, as crossplane's analyzer lists them); any of them is an emerg
# `"x" directive is not supported by pyfront`, never silently ignored.
NGINX_DIRECTIVE_NAMES = frozenset("""
absolute_redirect accept_mutex accept_mutex_delay access_log add_after_body add_before_body
add_header add_trailer addition_types aio aio_write alias allow ancient_browser
ancient_browser_value api auth_basic auth_basic_user_file auth_delay auth_http auth_http_header
auth_http_pass_client_cert auth_http_timeout auth_jwt auth_jwt_claim_set auth_jwt_header_set
auth_jwt_key_file auth_jwt_key_request auth_jwt_leeway auth_request auth_request_set autoindex
autoindex_exact_size autoindex_format autoindex_localtime break charset charset_map charset_types
chunked_transfer_encoding client_body_buffer_size client_body_in_file_only
client_body_in_single_buffer client_body_temp_path client_body_timeout client_header_buffer_size
client_header_timeout client_max_body_size connection_pool_size create_full_put_path daemon
dav_access dav_methods debug_connection debug_points default_type deny directio directio_alignment
disable_symlinks empty_gif env error_log error_page etag events expires f4f f4f_buffer_size
fastcgi_bind fastcgi_buffer_size fastcgi_buffering fastcgi_buffers fastcgi_busy_buffers_size
fastcgi_cache fastcgi_cache_background_update fastcgi_cache_bypass fastcgi_cache_key
fastcgi_cache_lock fastcgi_cache_lock_age fastcgi_cache_lock_timeout fastcgi_cache_max_range_offset
fastcgi_cache_methods fastcgi_cache_min_uses fastcgi_cache_path fastcgi_cache_purge
fastcgi_cache_revalidate fastcgi_cache_use_stale fastcgi_cache_valid fastcgi_catch_stderr
fastcgi_connect_timeout fastcgi_force_ranges fastcgi_hide_header fastcgi_ignore_client_abort
fastcgi_ignore_headers fastcgi_index fastcgi_intercept_errors fastcgi_keep_conn fastcgi_limit_rate
fastcgi_max_temp_file_size fastcgi_next_upstream fastcgi_next_upstream_timeout
fastcgi_next_upstream_tries fastcgi_no_cache fastcgi_param fastcgi_pass fastcgi_pass_header
fastcgi_pass_request_body fastcgi_pass_request_headers fastcgi_read_timeout
fastcgi_request_buffering fastcgi_send_lowat fastcgi_send_timeout fastcgi_socket_keepalive
fastcgi_split_path_info fastcgi_store fastcgi_store_access fastcgi_temp_file_write_size
fastcgi_temp_path flv geo geoip_city geoip_country geoip_org geoip_proxy geoip_proxy_recursive
google_perftools_profiles grpc_bind grpc_buffer_size grpc_connect_timeout grpc_hide_header
grpc_ignore_headers grpc_intercept_errors grpc_next_upstream grpc_next_upstream_timeout
grpc_next_upstream_tries grpc_pass grpc_pass_header grpc_read_timeout grpc_send_timeout
grpc_set_header grpc_socket_keepalive grpc_ssl_certificate grpc_ssl_certificate_key grpc_ssl_ciphers
grpc_ssl_conf_command grpc_ssl_crl grpc_ssl_name grpc_ssl_password_file grpc_ssl_protocols
grpc_ssl_server_name grpc_ssl_session_reuse grpc_ssl_trusted_certificate grpc_ssl_verify
grpc_ssl_verify_depth gunzip gunzip_buffers gzip gzip_buffers gzip_comp_level gzip_disable
gzip_http_version gzip_min_length gzip_proxied gzip_static gzip_types gzip_vary hash health_check
health_check_timeout hls hls_buffers hls_forward_args hls_fragment hls_mp4_buffer_size
hls_mp4_max_buffer_size http http2 http2_body_preread_size http2_chunk_size http2_idle_timeout
http2_max_concurrent_pushes http2_max_concurrent_streams http2_max_field_size http2_max_header_size
http2_max_requests http2_push http2_push_preload http2_recv_buffer_size http2_recv_timeout http3
http3_hq http3_max_concurrent_streams http3_stream_buffer_size if if_modified_since
ignore_invalid_headers image_filter image_filter_buffer image_filter_interlace
image_filter_jpeg_quality image_filter_sharpen image_filter_transparency image_filter_webp_quality
imap_auth imap_capabilities imap_client_buffer include index internal ip_hash js_access
js_body_filter js_content js_fetch_buffer_size js_fetch_ciphers js_fetch_max_response_buffer_size
js_fetch_protocols js_fetch_timeout js_fetch_trusted_certificate js_fetch_verify
js_fetch_verify_depth js_filter js_header_filter js_import js_include js_path js_preload_object
js_preread js_set js_var keepalive keepalive_disable keepalive_requests keepalive_time
keepalive_timeout keyval keyval_zone large_client_header_buffers least_conn least_time limit_conn
limit_conn_dry_run limit_conn_log_level limit_conn_status limit_conn_zone limit_except limit_rate
limit_rate_after limit_req limit_req_dry_run limit_req_log_level limit_req_status limit_req_zone
limit_zone lingering_close lingering_time lingering_timeout listen load_module location lock_file
log_format log_not_found log_subrequest mail map map_hash_bucket_size map_hash_max_size
master_process match max_ranges memcached_bind memcached_buffer_size memcached_connect_timeout
memcached_force_ranges memcached_gzip_flag memcached_next_upstream memcached_next_upstream_timeout
memcached_next_upstream_tries memcached_pass memcached_read_timeout memcached_send_timeout
memcached_socket_keepalive merge_slashes min_delete_depth mirror mirror_request_body modern_browser
modern_browser_value mp4 mp4_buffer_size mp4_limit_rate mp4_limit_rate_after mp4_max_buffer_size
msie_padding msie_refresh multi_accept ntlm open_file_cache open_file_cache_errors
open_file_cache_min_uses open_file_cache_valid open_log_file_cache output_buffers override_charset
pcre_jit perl perl_modules perl_require perl_set pid pop3_auth pop3_capabilities port_in_redirect
postpone_output preread_buffer_size preread_timeout protocol proxy_bind proxy_buffer
proxy_buffer_size proxy_buffering proxy_buffers proxy_busy_buffers_size proxy_cache
proxy_cache_background_update proxy_cache_bypass proxy_cache_convert_head proxy_cache_key
proxy_cache_lock proxy_cache_lock_age proxy_cache_lock_timeout proxy_cache_max_range_offset
proxy_cache_methods proxy_cache_min_uses proxy_cache_path proxy_cache_purge proxy_cache_revalidate
proxy_cache_use_stale proxy_cache_valid proxy_connect_timeout proxy_cookie_domain proxy_cookie_flags
proxy_cookie_path proxy_download_rate proxy_force_ranges proxy_half_close
proxy_headers_hash_bucket_size proxy_headers_hash_max_size proxy_hide_header proxy_http_version
proxy_ignore_client_abort proxy_ignore_headers proxy_intercept_errors proxy_limit_rate
proxy_max_temp_file_size proxy_method proxy_next_upstream proxy_next_upstream_timeout
proxy_next_upstream_tries proxy_no_cache proxy_pass proxy_pass_error_message proxy_pass_header
proxy_pass_request_body proxy_pass_request_headers proxy_protocol proxy_protocol_timeout
proxy_read_timeout proxy_redirect proxy_request_buffering proxy_requests proxy_responses
proxy_send_lowat proxy_send_timeout proxy_set_body proxy_set_header proxy_smtp_auth
proxy_socket_keepalive proxy_ssl proxy_ssl_certificate proxy_ssl_certificate_key proxy_ssl_ciphers
proxy_ssl_conf_command proxy_ssl_crl proxy_ssl_name proxy_ssl_password_file proxy_ssl_protocols
proxy_ssl_server_name proxy_ssl_session_reuse proxy_ssl_trusted_certificate proxy_ssl_verify
proxy_ssl_verify_depth proxy_store proxy_store_access proxy_temp_file_write_size proxy_temp_path
proxy_timeout proxy_upload_rate queue random random_index read_ahead real_ip_header
real_ip_recursive recursive_error_pages referer_hash_bucket_size referer_hash_max_size
request_pool_size reset_timedout_connection resolver resolver_timeout return rewrite rewrite_log
root satisfy scgi_bind scgi_buffer_size scgi_buffering scgi_buffers scgi_busy_buffers_size
scgi_cache scgi_cache_background_update scgi_cache_bypass scgi_cache_key scgi_cache_lock
scgi_cache_lock_age scgi_cache_lock_timeout scgi_cache_max_range_offset scgi_cache_methods
scgi_cache_min_uses scgi_cache_path scgi_cache_purge scgi_cache_revalidate scgi_cache_use_stale
scgi_cache_valid scgi_connect_timeout scgi_force_ranges scgi_hide_header scgi_ignore_client_abort
scgi_ignore_headers scgi_intercept_errors scgi_limit_rate scgi_max_temp_file_size scgi_next_upstream
scgi_next_upstream_timeout scgi_next_upstream_tries scgi_no_cache scgi_param scgi_pass
scgi_pass_header scgi_pass_request_body scgi_pass_request_headers scgi_read_timeout
scgi_request_buffering scgi_send_timeout scgi_socket_keepalive scgi_store scgi_store_access
scgi_temp_file_write_size scgi_temp_path secure_link secure_link_md5 secure_link_secret send_lowat
send_timeout sendfile sendfile_max_chunk server server_name server_name_in_redirect
server_names_hash_bucket_size server_names_hash_max_size server_tokens session_log
session_log_format session_log_zone set set_real_ip_from slice smtp_auth smtp_capabilities
smtp_client_buffer smtp_greeting_delay source_charset spdy_chunk_size spdy_headers_comp
split_clients ssi ssi_last_modified ssi_min_file_chunk ssi_silent_errors ssi_types ssi_value_length
ssl ssl_buffer_size ssl_certificate ssl_certificate_key ssl_ciphers ssl_client_certificate
ssl_conf_command ssl_crl ssl_dhparam ssl_early_data ssl_ecdh_curve ssl_engine ssl_handshake_timeout
ssl_password_file ssl_prefer_server_ciphers ssl_preread ssl_protocols ssl_reject_handshake
ssl_session_cache ssl_session_ticket_key ssl_session_tickets ssl_session_timeout ssl_stapling
ssl_stapling_file ssl_stapling_responder ssl_stapling_verify ssl_trusted_certificate
ssl_verify_client ssl_verify_depth starttls state status status_format status_zone sticky
sticky_cookie_insert stream stub_status sub_filter sub_filter_last_modified sub_filter_once
sub_filter_types subrequest_output_buffer_size tcp_nodelay tcp_nopush thread_pool timeout
timer_resolution try_files types types_hash_bucket_size types_hash_max_size underscores_in_headers
uninitialized_variable_warn upstream upstream_conf use user userid userid_domain userid_expires
userid_flags userid_mark userid_name userid_p3p userid_path userid_service uwsgi_bind
uwsgi_buffer_size uwsgi_buffering uwsgi_buffers uwsgi_busy_buffers_size uwsgi_cache
uwsgi_cache_background_update uwsgi_cache_bypass uwsgi_cache_key uwsgi_cache_lock
uwsgi_cache_lock_age uwsgi_cache_lock_timeout uwsgi_cache_max_range_offset uwsgi_cache_methods
uwsgi_cache_min_uses uwsgi_cache_path uwsgi_cache_purge uwsgi_cache_revalidate uwsgi_cache_use_stale
uwsgi_cache_valid uwsgi_connect_timeout uwsgi_force_ranges uwsgi_hide_header
uwsgi_ignore_client_abort uwsgi_ignore_headers uwsgi_intercept_errors uwsgi_limit_rate
uwsgi_max_temp_file_size uwsgi_modifier1 uwsgi_modifier2 uwsgi_next_upstream
uwsgi_next_upstream_timeout uwsgi_next_upstream_tries uwsgi_no_cache uwsgi_param uwsgi_pass
uwsgi_pass_header uwsgi_pass_request_body uwsgi_pass_request_headers uwsgi_read_timeout
uwsgi_request_buffering uwsgi_send_timeout uwsgi_socket_keepalive uwsgi_ssl_certificate
uwsgi_ssl_certificate_key uwsgi_ssl_ciphers uwsgi_ssl_conf_command uwsgi_ssl_crl uwsgi_ssl_name
uwsgi_ssl_password_file uwsgi_ssl_protocols uwsgi_ssl_server_name uwsgi_ssl_session_reuse
uwsgi_ssl_trusted_certificate uwsgi_ssl_verify uwsgi_ssl_verify_depth uwsgi_store uwsgi_store_access
uwsgi_temp_file_write_size uwsgi_temp_path valid_referers variables_hash_bucket_size
variables_hash_max_size worker_aio_requests worker_connections worker_cpu_affinity worker_priority
worker_processes worker_rlimit_core worker_rlimit_nofile worker_shutdown_timeout working_directory
xclient xml_entities xslt_last_modified xslt_param xslt_string_param xslt_stylesheet xslt_types zone
zone_sync zone_sync_buffers zone_sync_connect_retry_interval zone_sync_connect_timeout
zone_sync_interval zone_sync_recv_buffer_size zone_sync_server zone_sync_ssl
zone_sync_ssl_certificate zone_sync_ssl_certificate_key zone_sync_ssl_ciphers zone_sync_ssl_crl
zone_sync_ssl_name zone_sync_ssl_password_file zone_sync_ssl_protocols zone_sync_ssl_server_name
zone_sync_ssl_trusted_certificate zone_sync_ssl_verify zone_sync_ssl_verify_depth zone_sync_timeout
""".split())

# hints for common unsupported directives: what to do instead
UNSUPPORTED_HINTS = {
    "ssl_certificate": "pyfront serves plain HTTP; terminate TLS in front of it or keep nginx for TLS",
    "ssl": "pyfront serves plain HTTP; terminate TLS in front of it",
    "if": "use separate locations, `return`, or `try_files`",
    "rewrite": "use `return 301 URL` for redirects, or `try_files` for internal rewrites",
    "map": "set fixed values, or compute them in the application",
    "fastcgi_pass": "pyfront speaks uwsgi and HTTP to backends: use uwsgi_pass or proxy_pass",
    "proxy_cache": "caching is not implemented; remove the line",
    "load_module": "pyfront has no dynamic modules; remove the line",
    "autoindex": "directory listings are not implemented; add an index file",
}


def hint_for_unsupported(name: str) -> str:
    if name in UNSUPPORTED_HINTS:
        return UNSUPPORTED_HINTS[name]
    if name.startswith("ssl_"):
        return UNSUPPORTED_HINTS["ssl"]
    return "remove the line; docs/reference-nginx.md lists what pyfront implements"


def lookup(name: str) -> list[Directive]:
    """Every entry for a directive name (`server` and `keepalive_*` exist in two contexts)."""
    out = [TABLE[name]] if name in TABLE else []
    for suffix in ("@upstream",):
        if name + suffix in TABLE:
            out.append(TABLE[name + suffix])
    return out


# ---------------------------------------------------------------- generated reference

_CTX_ORDER = (MAIN, EVENTS, HTTP, UPS, SRV, LOC, ANY)


def markdown() -> str:
    from pyfront.config import nginx_validate as NV
    out = ["# nginx directives supported by pyfront", "",
           "Generated from `src/pyfront/config/nginx_directives.py` by "
           "`python -m pyfront.config.nginx_directives --markdown`; do not edit by hand "
           "(a test compares this file with the generator's output).", "",
           "## How pyfront reads nginx syntax", "",
           "- CONF_DIR files other than `nginx.conf` are read in name order as if inside `http {}`, after "
           "nginx.conf's usual lines (`include mime.types; default_type application/octet-stream; "
           "sendfile on; keepalive_timeout 65;` and `log_format main`), which they may override.",
           "- A `nginx.conf` in CONF_DIR holds a full main config; CONF_DIR files it does not include are read "
           "at the end of its `http {}` (or in an implicit one).",
           "- Relative paths in `root`, `alias`, `access_log`, `error_log`, `pid` resolve against CONF_DIR.",
           "- Sizes take k/m/g; times ms/s/m/h/d/w/M/y, combinable (`1h30m`); a bare number is seconds.",
           "- Every other nginx directive is an error `\"x\" directive is not supported by pyfront` "
           "(never ignored); a name nginx does not know is `unknown directive \"x\"`.",
           "- Why the reader is hand-written and not crossplane: docs/config-parser.md.", "",
           "## Variables", "",
           "Supported: " + ", ".join(f"`${v}`" for v in sorted(NV.VARIABLES)) + ", and the families "
           + ", ".join(f"`${p}*`" for p in NV.VARIABLE_PREFIXES) + ", plus regex captures `$1`..`$9`.", "",
           "## Directives", ""]
    for dname in sorted(TABLE, key=lambda n: n.replace("@", " ")):
        dd = TABLE[dname]
        shown = dname.split("@")[0]
        ctx = ", ".join(c for c in _CTX_ORDER if c in dd.contexts)
        out.append(f"### {shown}" + (f" (in {dname.split('@')[1]})" if "@" in dname else ""))
        out.append("")
        end = "" if dd.block else ";"
        out.append(f"- Syntax: `{shown}{' ' + dd.syntax if dd.syntax else ''}{end}`")
        out.append(f"- Default: {('`' + dd.default + '`') if dd.default else '—'}")
        out.append(f"- Context: {ctx}")
        if dd.differs:
            out.append(f"- Differs from nginx: {dd.differs}")
        out.append("")
        out.append(dd.doc)
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--markdown"]:
        sys.stdout.write(markdown())
        return 0
    print("usage: python -m pyfront.config.nginx_directives --markdown", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
