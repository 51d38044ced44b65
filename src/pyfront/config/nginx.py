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

import os

from pyfront.config import nginx_directives as ND
from pyfront.config import nginx_validate
from pyfront.config.diagnostics import ConfigError, Diagnostic
from pyfront.config.model import FrontConfig, Http
from pyfront.config.nginx_build import (_build_events, _build_main, _build_server, _build_settings,
                                        _build_upstream, _cpu_count, _effective)
from pyfront.config.nginx_lexer import statements
from pyfront.config.nginx_parser import (PRELUDE, PRELUDE_FILE, Level, Parser, _Stop, compile_regex,
                                         resolve)

__all__ = ["load_nginx", "load_nginx_files", "load_nginx_text", "salvage_pid", "compile_regex", "resolve",
           "ConfigError"]


def _implicit_http(p: Parser, read) -> None:
    """An `http {}` around conf.d files: the prelude as an outer level, then `read()`."""
    prelude = Level(ND.HTTP, None)
    p.begin_http(prelude, None, 0)
    p.level = prelude
    p.parse_text(PRELUDE, PRELUDE_FILE, ND.HTTP)
    p.level = p.http.level
    read()


def _run(p: Parser, prefix: str, main: str | None, parse, log_dir: str | None = None
         ) -> tuple[FrontConfig, list[Diagnostic]]:
    """parse() fills the parser; then nginx's post-parse checks, the model, pyfront's warnings."""
    try:
        parse()
        nginx_validate.check_http_end(p)
        cfg = _finish(p, prefix, main, log_dir)
    except _Stop:
        raise ConfigError(p.report.diagnostics) from None
    nginx_validate.warnings(cfg, p.report, p)
    return cfg, list(p.report.diagnostics)


def _load(files: list[str], main: str | None, prefix: str, log_dir: str | None = None
          ) -> tuple[FrontConfig, list[Diagnostic]]:
    p = Parser(prefix)
    rest = [f for f in files if f != main]

    def read_rest():
        for f in rest:
            if f not in p.files:       # nginx.conf may include CONF_DIR files itself
                p.parse_file(f, ND.HTTP)

    def parse():
        if main is None:
            _implicit_http(p, read_rest)
            return
        p.on_http_end = read_rest      # files nginx.conf did not include go at the end of its http {}
        p.level = None
        p.parse_file(main, ND.MAIN)
        p.on_http_end = None
        if p.http is None:
            p.file, p.line = None, 0
            _implicit_http(p, read_rest)

    return _run(p, prefix, main, parse, log_dir)


def _finish(p: Parser, prefix: str, main: str | None, log_dir: str | None = None) -> FrontConfig:
    cache: dict = {}
    h = p.http
    servers = tuple(_build_server(s, cache, prefix, log_dir) for s in h.servers)
    http = Http(servers=servers, upstreams=tuple(_build_upstream(u) for u in h.upstreams.values()),
                log_formats=tuple(h.log_formats.values()),
                settings=_build_settings(_effective(h.level, cache), prefix, log_dir), file=h.file, line=h.line)
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


def load_nginx(confdir, log_dir: str | None = None) -> tuple[FrontConfig, list[Diagnostic]]:
    """The nginx layer of a CONF_DIR (pyfront.config.confdir.ConfDir).

    `log_dir`: where nginx's implicit `access_log logs/access.log` goes (pyfront serve passes
    RUN_DIR/logs); None keeps nginx's <prefix>/logs."""
    return _load(list(confdir.nginx_files), confdir.nginx_main, confdir.path, log_dir)


def load_nginx_text(text: str, name: str = "site.conf", prefix: str | None = None
                    ) -> tuple[FrontConfig, list[Diagnostic]]:
    """Parse one conf.d-style text without touching the disk (includes still read files)."""
    prefix = os.path.abspath(prefix or os.getcwd())
    p = Parser(prefix)
    return _run(p, prefix, None, lambda: _implicit_http(p, lambda: p.parse_text(text, name, ND.HTTP)))


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
