"""CONF_DIR: which file belongs to which layer (design.md §2).

Files are read in name order. nginx syntax: `*.conf` whose first meaningful token is
not `[`. INI: `*.ini`, and `*.conf` whose first meaningful line is a `[section]`.
INI sections are split by name: `[uwsgi]` (and any section named by `--ini f:section`)
go to the app layer, Supervisor's sections to the supervision layer.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from pyfront.config.diagnostics import ConfigError, Diagnostic
from pyfront.config.ini import IniSection, IniSyntaxError, read_ini

SUPERVISOR_PREFIXES = ("program:", "group:", "fcgi-program:", "eventlistener:", "rpcinterface:")
SUPERVISOR_SECTIONS = ("supervisord", "inet_http_server", "unix_http_server", "supervisorctl", "include")


@dataclass(frozen=True)
class ConfDir:
    path: str
    nginx_files: tuple[str, ...]          # absolute paths, name order
    nginx_main: str | None                # the nginx.conf holding a full main config, if any
    uwsgi_sections: tuple[IniSection, ...]
    supervisor_sections: tuple[IniSection, ...]
    ignored_sections: tuple[IniSection, ...]  # INI sections no layer claims (warned about)


def _first_meaningful(text: str) -> str:
    for line in text.splitlines():
        s = line.strip()
        if s and not s.startswith(("#", ";")):
            return s
    return ""


def classify(path: str) -> str:
    """'nginx', 'ini' or 'other' for one file."""
    name = os.path.basename(path)
    if name.endswith(".ini"):
        return "ini"
    if name.endswith(".conf"):
        with open(path, encoding="utf-8", errors="replace") as f:
            first = _first_meaningful(f.read())
        return "ini" if first.startswith("[") else "nginx"
    return "other"


def load_confdir(path: str) -> ConfDir:
    path = os.path.abspath(path)
    if not os.path.isdir(path):
        raise ConfigError(Diagnostic("emerg", f'configuration directory "{path}" does not exist',
                                     hint="pass the folder holding your *.conf / *.ini files"))
    nginx_files: list[str] = []
    uwsgi: list[IniSection] = []
    sup: list[IniSection] = []
    other: list[IniSection] = []
    errors: list[Diagnostic] = []
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if not os.path.isfile(full):
            continue
        kind = classify(full)
        if kind == "nginx":
            nginx_files.append(full)
        elif kind == "ini":
            text = open(full, encoding="utf-8", errors="replace").read()
            try:
                sup_view = read_ini(text, full, "supervisor")
                uwsgi_view = read_ini(text, full, "uwsgi")
            except IniSyntaxError as e:
                errors.append(Diagnostic("emerg", e.message, e.file, e.line))
                continue
            # Same file, two readers: [uwsgi] sections use uWSGI's line rules, the rest configparser's.
            uwsgi.extend(s for s in uwsgi_view if s.name == "uwsgi")
            for s in sup_view:
                if s.name == "uwsgi":
                    continue
                if s.name in SUPERVISOR_SECTIONS or s.name.startswith(SUPERVISOR_PREFIXES):
                    sup.append(s)
                else:
                    other.append(s)
    if errors:
        raise ConfigError(errors)
    main = next((f for f in nginx_files if os.path.basename(f) == "nginx.conf"), None)
    return ConfDir(path, tuple(nginx_files), main, tuple(uwsgi), tuple(sup), tuple(other))
