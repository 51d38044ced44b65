"""The front's configuration as typed, frozen dataclasses (what nginx syntax parses into).

Conventions (every consumer relies on them):
- sizes are bytes (int), times are milliseconds (int); `None` means "not set / off" where
  the field says so; booleans are bool; enumerations are lower-case str.
- variables stay text (`"$remote_addr"`); `has_vars(s)` tells whether a value needs
  run-time expansion. Supported variable names: pyfront.config.nginx_validate.VARIABLES.
- every node carries `file` and `line` of the directive that made it (for a block, the
  line of its `{`, as nginx reports it); implicit defaults carry file=None, line=0.
- `Location.settings` / `Server.settings` are the EFFECTIVE values after nginx's
  inheritance and merge rules (http → server → location → nested location), so the front
  compiler never re-implements inheritance. Per-directive rules are in nginx_directives.py.
"""
from __future__ import annotations

from dataclasses import dataclass

# ---------------------------------------------------------------- shared leaves


def has_vars(text: str) -> bool:
    """True if `text` holds an nginx variable reference (`$name` or `${name}`)."""
    return "$" in text


@dataclass(frozen=True)
class Param:
    """One `uwsgi_param NAME VALUE [if_not_empty]` or `proxy_set_header NAME VALUE`."""
    name: str
    value: str                  # text with variables, e.g. "$query_string"
    if_not_empty: bool = False  # uwsgi_param only: skip the param when VALUE expands empty
    file: str | None = None
    line: int = 0


@dataclass(frozen=True)
class LogFormat:
    name: str
    format: str                 # the argument strings concatenated, as nginx does
    escape: str = "default"     # "default" | "json" | "none"
    file: str | None = None
    line: int = 0


@dataclass(frozen=True)
class AccessLog:
    path: str                   # absolute, or "syslog:..." kept as written; may hold variables
    format: LogFormat
    buffer: int = 0             # bytes; 0 = unbuffered (nginx: buffer= / gzip implies 64k)
    flush_ms: int = 0           # 0 = no timed flush
    gzip_level: int = 0         # 0 = no gzip
    if_condition: str | None = None   # `if=$var` text
    implicit: bool = False      # True: nginx's default "logs/access.log combined" (no access_log seen)
    file: str | None = None
    line: int = 0


@dataclass(frozen=True)
class ErrorLog:
    path: str                   # absolute, "stderr", or "syslog:..."/"memory:..." as written
    level: str = "error"        # emerg alert crit error warn notice info debug
    implicit: bool = False
    file: str | None = None
    line: int = 0


@dataclass(frozen=True)
class AddHeader:
    name: str
    value: str
    always: bool = False
    file: str | None = None
    line: int = 0


@dataclass(frozen=True)
class ErrorPage:
    codes: tuple[int, ...]
    uri: str                    # "/50x.html", "@named", or an absolute URL (redirect)
    overwrite: int | None = None     # `=CODE`
    overwrite_from_upstream: bool = False  # bare `=`: the status of the redirected request
    file: str | None = None
    line: int = 0


@dataclass(frozen=True)
class Return:
    code: int                   # 444 = close the connection; 301/302/303/307/308 take a URL
    text: str | None = None     # URL for redirects, body text otherwise; may hold variables
    file: str | None = None
    line: int = 0


@dataclass(frozen=True)
class Expires:
    kind: str                   # "off" | "epoch" | "max" | "time" | "daily" | "modified"
    ms: int = 0                 # "time"/"modified": offset (may be negative); "daily": ms after midnight
    file: str | None = None
    line: int = 0


@dataclass(frozen=True)
class OpenFileCache:
    max: int                    # entries
    inactive_ms: int = 60000


@dataclass(frozen=True)
class Address:
    """A socket address as written in `listen`, `uwsgi_pass`, `proxy_pass`, upstream `server`."""
    kind: str                   # "inet" | "unix" | "name" (an upstream block or a host to resolve)
    host: str | None = None     # "127.0.0.1", "::1" (no brackets), "example.com"; "0.0.0.0" / "::" for wildcard listens
    port: int | None = None
    unix_path: str | None = None  # everything after "unix:" verbatim ("///var/x.sock" stays; the kernel resolves it)
    text: str = ""              # nginx's rendering: "127.0.0.1:8080", "[::1]:80", "unix:/run/x.sock", "backend"
    resolved: tuple[str, ...] = ()  # kind "name" with a port: the IPs found at load time (nginx resolves once, too)

    def __str__(self) -> str:
        return self.text


# ---------------------------------------------------------------- proxying


@dataclass(frozen=True)
class PassTarget:
    """`uwsgi_pass X` / `proxy_pass X` after parsing."""
    scheme: str                 # "uwsgi" | "suwsgi" | "http" | "https"
    address: Address | None     # None when the target holds variables (resolved per request)
    upstream: str | None = None # name of an `upstream {}` block when the target names one
    uri: str | None = None      # proxy_pass only: the URI part after host[:port] ("/" in "http://b/"), None if absent
    text: str = ""              # as written
    has_vars: bool = False
    file: str | None = None
    line: int = 0


@dataclass(frozen=True)
class UpstreamOptions:
    """Effective `uwsgi_*` (or `proxy_*`) settings of one level. Defaults are nginx's."""
    params: tuple[Param, ...] = ()          # uwsgi_param / proxy_set_header after inheritance
    params_inherited: bool = True           # False: this level (or a parent below http) declared its own set
    pass_request_headers: bool = True
    pass_request_body: bool = True
    connect_timeout_ms: int = 60000
    read_timeout_ms: int = 60000
    send_timeout_ms: int = 60000
    buffering: bool = True
    request_buffering: bool = True
    buffer_size: int = 4096
    buffers: tuple[int, int] = (8, 4096)    # number, size
    next_upstream: tuple[str, ...] = ("error", "timeout")   # or ("off",)
    next_upstream_tries: int = 0            # 0 = unlimited
    next_upstream_timeout_ms: int = 0       # 0 = unlimited
    hide_headers: tuple[str, ...] = ()      # added to the module's built-in hidden set
    pass_headers: tuple[str, ...] = ()
    intercept_errors: bool = False
    http_version: str = "1.0"               # proxy_http_version ("1.0" | "1.1"); unused for uwsgi
    redirect: str = "default"               # proxy_redirect "default" | "off"; unused for uwsgi
    modifier1: int = 0                      # uwsgi_modifier1; unused for proxy
    modifier2: int = 0


@dataclass(frozen=True)
class Handler:
    """What a location does with a request besides static files."""
    kind: str                   # "uwsgi" | "proxy" | "stub_status"
    target: PassTarget | None = None
    file: str | None = None
    line: int = 0


@dataclass(frozen=True)
class UpstreamServer:
    address: Address
    weight: int = 1
    max_fails: int = 1
    fail_timeout_ms: int = 10000
    max_conns: int = 0          # 0 = unlimited
    backup: bool = False
    down: bool = False
    file: str | None = None
    line: int = 0


@dataclass(frozen=True)
class Upstream:
    name: str
    servers: tuple[UpstreamServer, ...]
    method: str = "round_robin"   # "round_robin" (smooth weighted) | "least_conn" | "ip_hash" | "hash" | "random"
    hash_key: str | None = None   # `hash KEY`: text with variables
    hash_consistent: bool = False # `hash KEY consistent` (ketama)
    keepalive: int = 0            # idle upstream connections cached per worker; 0 = none
    keepalive_requests: int = 1000
    keepalive_timeout_ms: int = 60000
    file: str | None = None
    line: int = 0


# ---------------------------------------------------------------- per-location settings


DEFAULT_CHARSET_TYPES = ("text/html", "text/xml", "text/plain", "text/vnd.wap.wml",
                         "application/javascript", "application/rss+xml")


@dataclass(frozen=True)
class Settings:
    """Effective http/server/location-level settings. Defaults are nginx's (1.22 / master)."""
    # files
    root: str = "html"                       # absolute after loading (relative → prefix = CONF_DIR); may hold variables
    alias: str | None = None                 # location only, not inherited
    index: tuple[str, ...] = ("index.html",)
    try_files: tuple[str, ...] | None = None # last item is the fallback: "/uri", "@name" or "=404"
    types: tuple[tuple[str, str], ...] = ()  # (extension lower-case, mime type), sorted by extension
    default_type: str = "text/plain"
    sendfile: bool = False
    tcp_nopush: bool = False
    tcp_nodelay: bool = True
    open_file_cache: OpenFileCache | None = None
    open_file_cache_valid_ms: int = 60000
    open_file_cache_min_uses: int = 1
    open_file_cache_errors: bool = False
    etag: bool = True
    if_modified_since: str = "exact"         # "off" | "exact" | "before"
    expires: Expires | None = None           # None = off (no Expires / Cache-Control added)
    add_headers: tuple[AddHeader, ...] = ()  # nginx rule: a level with its own add_header drops inherited ones
    charset: str | None = None               # None = off
    charset_types: tuple[str, ...] = DEFAULT_CHARSET_TYPES
    error_pages: tuple[ErrorPage, ...] = ()  # inherited only if the level has none of its own
    server_tokens: str = "on"                # "on" | "off" | "build"
    msie_padding: bool = True
    log_not_found: bool = True
    absolute_redirect: bool = True
    port_in_redirect: bool = True
    server_name_in_redirect: bool = False
    # connections and timeouts
    keepalive_timeout_ms: int = 75000
    keepalive_header_timeout_s: int | None = None   # 2nd arg: "Keep-Alive: timeout=N" header
    keepalive_requests: int = 1000
    send_timeout_ms: int = 60000
    client_max_body_size: int = 1048576      # 0 = unlimited
    client_body_buffer_size: int = 16384
    client_body_timeout_ms: int = 60000
    client_body_temp_path: str | None = None # None = pyfront's run directory
    # logs
    access_logs: tuple[AccessLog, ...] = () # empty + access_log_off=False cannot happen after loading
    access_log_off: bool = False
    error_logs: tuple[ErrorLog, ...] = ()    # empty = inherited from main
    # gzip
    gzip: bool = False
    gzip_types: tuple[str, ...] = ("text/html",)   # "*" = any; text/html is always included
    gzip_min_length: int = 20
    gzip_comp_level: int = 1
    gzip_vary: bool = False
    gzip_proxied: tuple[str, ...] = ("off",)
    gzip_http_version: str = "1.1"
    gzip_buffers: tuple[int, int] = (32, 4096)
    gzip_disable: tuple[str, ...] = ()
    gzip_static: str = "off"                 # "off" | "on" | "always"
    # proxying (effective options; the location's Handler says whether it proxies at all)
    uwsgi: UpstreamOptions = UpstreamOptions()
    proxy: UpstreamOptions = UpstreamOptions()


# ---------------------------------------------------------------- blocks


@dataclass(frozen=True)
class Location:
    modifier: str               # "=" exact | "^~" prefix, no regex after | "" prefix | "~" regex | "~*" regex, case-insensitive | "@" named
    path: str                   # URI prefix / exact URI / regex source / name without "@"
    settings: Settings
    handler: Handler | None = None           # None = static files from root/alias
    return_: Return | None = None            # `return` at this level (rewrite phase, not inherited)
    locations: tuple["Location", ...] = ()   # nested, in file order
    file: str | None = None
    line: int = 0

    @property
    def is_regex(self) -> bool:
        return self.modifier in ("~", "~*")

    @property
    def name(self) -> str:
        """nginx's spelling of the location: '= /x', '^~ /s/', '/p', '~* \\.php$', '@fallback'."""
        if self.modifier == "@":
            return "@" + self.path
        return f"{self.modifier} {self.path}" if self.modifier else self.path


@dataclass(frozen=True)
class Listen:
    address: Address            # inet listens always have host ("0.0.0.0" for `listen 80`, "::" for [::]:80) and port
    default_server: bool = False
    reuseport: bool = False
    backlog: int = 511          # nginx's NGX_LISTEN_BACKLOG on Linux
    ipv6only: bool = True
    rcvbuf: int | None = None
    sndbuf: int | None = None
    implicit: bool = False      # no `listen` in the server: nginx's *:80 as root, *:8000 otherwise
    file: str | None = None
    line: int = 0

    @property
    def text(self) -> str:
        return self.address.text


@dataclass(frozen=True)
class ServerName:
    """One `server_name` entry.

    Selection (nginx server_names.xml), per listen address, for the request's Host:
      1. exact name ("exact", also "" which matches requests without Host);
      2. longest wildcard starting with an asterisk ("prefix": "*.example.com"; the dot form
         ".example.com" also matches "example.com" itself, `dot_form=True`);
      3. longest wildcard ending with an asterisk ("suffix": "mail.*");
      4. first regular expression in file order ("regex", Python/PCRE-compatible source);
      5. the listen's default_server, else the first server with that listen.
    "_" is an ordinary exact name that matches nothing real (the catch-all idiom).
    """
    text: str                   # lower-cased as nginx stores it (regex source kept as written)
    kind: str                   # "exact" | "prefix" | "suffix" | "regex"
    dot_form: bool = False
    file: str | None = None
    line: int = 0

    @property
    def pattern(self) -> str:
        return self.text[1:] if self.kind == "regex" else self.text


@dataclass(frozen=True)
class Server:
    listens: tuple[Listen, ...]
    server_names: tuple[ServerName, ...]     # first one is $server_name (SERVER_NAME)
    locations: tuple[Location, ...]          # top level, file order (named ones included)
    settings: Settings                       # effective server-level settings (used when no location matches)
    return_: Return | None = None            # server-level `return` (runs before location matching)
    # server-only settings (nginx reads these from the server that owns the address)
    client_header_timeout_ms: int = 60000
    client_header_buffer_size: int = 1024
    large_client_header_buffers: tuple[int, int] = (4, 8192)
    ignore_invalid_headers: bool = True
    underscores_in_headers: bool = False
    merge_slashes: bool = True
    file: str | None = None
    line: int = 0


@dataclass(frozen=True)
class Http:
    servers: tuple[Server, ...]
    upstreams: tuple[Upstream, ...] = ()
    log_formats: tuple[LogFormat, ...] = ()  # includes the predefined "combined" and "main"
    settings: Settings = Settings()          # effective http-level settings
    file: str | None = None
    line: int = 0

    def upstream(self, name: str) -> Upstream | None:
        return next((u for u in self.upstreams if u.name == name), None)

    def log_format(self, name: str) -> LogFormat | None:
        return next((f for f in self.log_formats if f.name == name), None)


@dataclass(frozen=True)
class CpuAffinity:
    auto: bool = False
    masks: tuple[int, ...] = ()  # bitmask per worker (last one repeats), bit i = CPU i; with auto: the allowed set (0 = all)

    def cpus_for(self, worker: int, ncpu: int) -> tuple[int, ...]:
        """CPUs worker number `worker` should be pinned to (nginx's rules for auto and masks)."""
        if self.auto:
            allowed = [c for c in range(ncpu) if not self.masks or (self.masks[0] >> c) & 1]
            return (allowed[worker % len(allowed)],) if allowed else ()
        if not self.masks:
            return ()
        m = self.masks[min(worker, len(self.masks) - 1)]
        return tuple(c for c in range(max(ncpu, m.bit_length())) if (m >> c) & 1)


@dataclass(frozen=True)
class Events:
    worker_connections: int = 512
    accept_mutex: bool = False
    accept_mutex_delay_ms: int = 500
    multi_accept: bool = False
    use: str | None = None       # only "epoll" is accepted
    file: str | None = None
    line: int = 0


@dataclass(frozen=True)
class Main:
    worker_processes: int = 1            # `auto` resolved to the CPU count at load time
    worker_processes_auto: bool = False
    worker_cpu_affinity: CpuAffinity | None = None
    pid: str | None = None               # absolute; None = not set (the master picks its run dir)
    error_logs: tuple[ErrorLog, ...] = ()  # empty = nginx's default (logs/error.log, error) — master decides
    worker_rlimit_nofile: int | None = None
    worker_shutdown_timeout_ms: int | None = None
    user: tuple[str, str] | None = None  # (user, group)
    daemon: bool = True                  # parsed; pyfront serve always stays in the foreground
    master_process: bool = True


@dataclass(frozen=True)
class FrontConfig:
    main: Main
    events: Events
    http: Http
    prefix: str                          # CONF_DIR: relative paths in the config resolve here
    files: tuple[str, ...] = ()          # every file read, in read order (includes expanded)
    main_file: str | None = None         # the nginx.conf holding a full main config, if any

    def locations(self):
        """Every (server, location) pair, nested ones included, in file order."""
        def walk(srv, locs):
            for loc in locs:
                yield srv, loc
                yield from walk(srv, loc.locations)
        for srv in self.http.servers:
            yield from walk(srv, srv.locations)

    def pass_targets(self):
        """Every (server, location, PassTarget) of uwsgi_pass / proxy_pass, for cross-layer checks."""
        for srv, loc in self.locations():
            if loc.handler is not None and loc.handler.target is not None:
                yield srv, loc, loc.handler.target

    def listen_addresses(self) -> tuple[str, ...]:
        """Distinct listen addresses (nginx's text form), in first-seen order."""
        seen: dict[str, None] = {}
        for srv in self.http.servers:
            for ln in srv.listens:
                seen.setdefault(ln.address.text, None)
        return tuple(seen)
