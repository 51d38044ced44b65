"""Raw per-level values → the frozen FrontConfig, applying nginx's inheritance (merge) rules.

One rule covers almost every directive, as in nginx's merge_loc_conf functions: a level's
own value, else its parent's. Lists (add_header, uwsgi_param, proxy_set_header,
error_page, access_log, index, types, ...) follow the same rule as a whole: a level with
any of its own drops every inherited one. try_files is not inherited. root and alias
travel together (nginx merges alias into nested locations). proxy_set_header always ends
with nginx's built-in Host/Connection defaults unless they are set.
"""
from __future__ import annotations

import os

from pyfront.config.model import (AccessLog, Address, CpuAffinity, Events, Listen,
                                  Location, LogFormat, Main, Param, Server, ServerName, Settings,
                                  Upstream, UpstreamOptions)
from pyfront.config.nginx_parser import (COMBINED, NOT_INHERITED, PROXY_DEFAULT_HEADERS, SERVER_ONLY, Level,
                                         LocState, ServerState, UpstreamState)

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


def _build_settings(eff: dict, prefix: str, log_dir: str | None = None) -> Settings:
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
        # nginx's implicit default is <prefix>/logs/access.log; pyfront puts it in the run
        # directory's logs/ (which `pyfront serve` creates) so a CONF_DIR without logs/ works.
        kw["access_logs"] = (AccessLog(os.path.join(log_dir or os.path.join(prefix, "logs"), "access.log"),
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


def _build_location(ls: LocState, cache, prefix, log_dir=None) -> Location:
    eff = _effective(ls.level, cache)
    return Location(
        modifier=ls.modifier, path=ls.path, settings=_build_settings(eff, prefix, log_dir),
        handler=ls.level.handler, return_=ls.level.v.get("_return"),
        locations=tuple(_build_location(c, cache, prefix, log_dir) for c in ls.level.locations),
        file=ls.file, line=ls.line)


def _build_server(s: ServerState, cache, prefix, log_dir=None) -> Server:
    eff = _effective(s.level, cache)
    listens = tuple(s.listens)
    if not listens:
        port = 80 if os.geteuid() == 0 else 8000
        listens = (Listen(Address("inet", "0.0.0.0", port, None, f"0.0.0.0:{port}"), implicit=True,
                          file=s.file, line=s.line),)
    names = tuple(s.names) or (ServerName("", "exact", False, s.file, s.line),)
    srv_kw = {k: _tuplify(eff[k]) for k in SERVER_ONLY if k in eff}
    return Server(listens=listens, server_names=names,
                  locations=tuple(_build_location(c, cache, prefix, log_dir) for c in s.level.locations),
                  settings=_build_settings(eff, prefix, log_dir), return_=s.level.v.get("_return"),
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
