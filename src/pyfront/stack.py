"""Load and validate every layer of a CONF_DIR into one immutable Stack.

Used by `pyfront check` (print the diagnostics), by `pyfront serve` at boot and by every
reload (house rule 3: the whole new configuration is built and validated before anything
is touched). Each layer contributes a frozen config object; the arbiter hands each one to
the component that runs it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from pyfront.config.confdir import ConfDir, load_confdir
from pyfront.config.diagnostics import ConfigError, Diagnostic, Report
from pyfront.pidfile import default_run_dir

BUNDLED_SITE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "examples", "site")
# The bundled example's dashboard password (its programs.conf reads %(ENV_...)s): generated
# once per `pyfront serve`/`check` unless the operator sets it; serve.py prints it.
EXAMPLE_PASSWORD_ENV = "PYFRONT_EXAMPLE_PASSWORD"


@dataclass(frozen=True)
class Stack:
    path: str
    confdir: ConfDir
    run_dir: str
    pid_path: str
    error_log: str | None                 # master's error log path (None = stderr)
    error_log_level: str
    layers: dict = field(default_factory=dict)   # component name -> that layer's frozen config
    diagnostics: tuple[Diagnostic, ...] = ()
    front_config: object = None           # the parsed nginx model (for `check -T` and status)


def _resolve(confdir: str, path: str) -> str:
    return path if os.path.isabs(path) else os.path.join(confdir, path)


def _level_logs(cfg):
    """(directive, log) for every access_log and http/server/location error_log of the model."""
    def of(st):
        yield from (("access_log", al) for al in st.access_logs)
        yield from (("error_log", el) for el in st.error_logs)

    def walk(locs):
        for loc in locs:
            yield from of(loc.settings)
            yield from walk(loc.locations)
    yield from of(cfg.http.settings)
    for srv in cfg.http.servers:
        yield from of(srv.settings)
        yield from walk(srv.locations)


def _check_log_dirs(cfg, report: Report) -> None:
    """An explicit access_log / error_log (http, server, location level) in a missing
    directory is a config error at check/boot time (nginx -t says `open() ... failed`); left
    to the front workers it would crash-loop them."""
    # the master creates its error_log's directory (errorlog.py) before forking workers
    seen = {os.path.dirname(e.path) for e in cfg.main.error_logs
            if not e.implicit and e.path.startswith("/")}
    for name, log in _level_logs(cfg):
        d = os.path.dirname(log.path)
        if log.implicit or not log.path.startswith("/") or log.path.startswith("/dev/") or d in seen:
            continue
        seen.add(d)
        if not os.path.isdir(d):
            report.emerg(f'open() "{log.path}" failed (2: No such file or directory)', log.file, log.line,
                         hint=f'create the directory "{d}" or point {name} elsewhere')


def _load_front_model(cd: ConfDir, report: Report, run_dir: str | None = None):
    """(nginx model | None, compilable) — None when CONF_DIR has no nginx file.

    nginx's implicit access log goes to RUN_DIR/logs/access.log (created by `pyfront serve`)."""
    if not cd.nginx_files:
        return None, False
    from pyfront.config.nginx import load_nginx
    try:
        cfg, diags = load_nginx(cd, log_dir=os.path.join(run_dir, "logs") if run_dir else None)
    except ConfigError as e:
        report.diagnostics.extend(e.diagnostics)
        return None, False
    report.diagnostics.extend(diags)
    if not report.failed:
        _check_log_dirs(cfg, report)
    return cfg, not report.failed


def _compile_front(cd: ConfDir, cfg, report: Report, app_links=()):
    """FrontPlan | None: the route table, compiled once the apps are known (app_links)."""
    from pyfront.config.compile import compile_front
    from pyfront.front_plan import plan_from_config
    try:
        blob = compile_front(cfg, app_links)
    except ConfigError as e:
        report.diagnostics.extend(e.diagnostics)
        return None
    return plan_from_config(cfg, blob, cd.path)


def app_links(apps) -> tuple:
    """The uwsgi sockets this CONF_DIR's apps serve: uwsgi_pass to them is a link to pyfront's
    own app server, kept alive between requests (compile_proxy.mark_app_upstream)."""
    from pyfront.config.compile_proxy import AppLink
    out = []
    for a in apps:
        for ls in a.listen:
            if ls.protocol == "uwsgi":
                target = os.path.normpath(ls.target) if isinstance(ls.target, str) else tuple(ls.target)
                out.append(AppLink(ls.family, target, a.processes, max(1, a.http_timeout) * 1000))
    return tuple(out)


def load_stack(path: str, bundled: bool = False) -> Stack:
    """Every layer of CONF_DIR, validated; raises ConfigError carrying every diagnostic."""
    # a reload (arbiter) passes only the path: the bundled example still keeps its run dir
    # outside the installed package
    bundled = bundled or os.path.abspath(path) == BUNDLED_SITE
    if bundled:
        import secrets
        os.environ.setdefault(EXAMPLE_PASSWORD_ENV, secrets.token_urlsafe(12))
    cd = load_confdir(path)
    report = Report()
    for s in cd.ignored_sections:
        report.warn(f'section "[{s.name}]" is not used by any layer', s.file, s.line,
                    hint="pyfront reads [uwsgi], [program:x], [group:x] and Supervisor's own sections")
    run_dir = default_run_dir(cd.path, bundled)
    layers: dict = {}
    cfg, compilable = _load_front_model(cd, report, run_dir)
    apps = ()
    if cd.uwsgi_sections:
        from pyfront.app.options import load_app
        apps = []
        for sec in cd.uwsgi_sections:
            app = load_app(sec, report, in_serve=True)
            if app is not None:
                apps.append(app)
        names = [a.name for a in apps]
        for a in apps:
            if names.count(a.name) > 1:
                report.emerg(f'two [uwsgi] apps are named "{a.name}"', a.file, a.line,
                             hint="give each app's ini file its own name")
                break
        if apps and not report.failed:
            layers["apps"] = tuple(apps)
    if compilable:
        front = _compile_front(cd, cfg, report, app_links(layers.get("apps", ())))
        if front is not None:
            layers = {"front": front, **layers}
    if cd.supervisor_sections:
        from pyfront.supervise.config import parse_supervisor_sections
        sup = parse_supervisor_sections(cd.supervisor_sections, cd.path, report, run_dir=run_dir)
        if not report.failed:
            layers["programs"] = sup
            if sup.inet is not None or sup.unix is not None:
                layers["control"] = sup
    if not report.failed and not layers and not cd.uwsgi_sections and not cd.supervisor_sections:
        report.emerg(f'no configuration found in "{cd.path}"',
                     hint="put nginx *.conf, [uwsgi] or [program:x] files there")
    report.raise_if_failed()
    main = getattr(cfg, "main", None)
    pid = getattr(main, "pid", None)
    pid_path = _resolve(cd.path, pid) if pid else os.path.join(run_dir, "pyfront.pid")
    # No error_log in the config: the master's lines go to stderr at "info", since
    # `pyfront serve` runs in the foreground (nginx would write logs/error.log at "error").
    logs = [e for e in getattr(main, "error_logs", ()) if not e.implicit]
    err_path, err_level = None, "info"
    if logs:
        if logs[0].path not in ("stderr", "/dev/stderr"):
            err_path = _resolve(cd.path, logs[0].path)
        err_level = logs[0].level
    return Stack(cd.path, cd, run_dir, pid_path, err_path, err_level, layers,
                 tuple(report.diagnostics), cfg)
