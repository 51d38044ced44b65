"""`pyfront app`: the standalone uWSGI-compatible app server.

    pyfront app --ini FILE[:section] [--option value ...]
    pyfront app --socket /run/app.sock --wsgi-file app.py --processes 2 --threads 2 --master

Every option of the [uwsgi] table (docs/reference-uwsgi.md) is also a flag: `--name value`,
`--name=value`, or a bare `--name` for booleans; command-line flags come after the ini's
keys (so a scalar flag overrides the file). Exit status: 0 after a clean stop, 1 on a
configuration error or when the app cannot be loaded (need-app).
"""
from __future__ import annotations

import os
import sys

from pyfront.app.options import BY_NAME, load_app
from pyfront.config.diagnostics import Report
from pyfront.config.ini import IniEntry, IniSection, IniSyntaxError, read_ini

USAGE = """usage: pyfront app --ini FILE[:section] [--OPTION VALUE ...]
       pyfront app (--socket ADDR | --http-socket ADDR) (--wsgi-file F | --module M[:callable]) [...]

Options are uWSGI's ([uwsgi] keys as flags); see docs/reference-uwsgi.md. Common ones:
  --socket/-s ADDR        uwsgi protocol (nginx uwsgi_pass)     --http-socket ADDR   HTTP
  --wsgi-file F           --module M[:callable]  --callable NAME --chdir DIR
  --processes/-p N        --threads N            --master        --virtualenv/-H PATH|NAME
  --harakiri S            --max-requests N       --buffer-size N --need-app/--no-need-app
"""


class UsageError(Exception):
    pass


def parse_argv(argv: list[str]) -> tuple[list[IniSection], list[IniEntry]]:
    sections: list[IniSection] = []
    flags: list[IniEntry] = []
    i = 0
    pos = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        pos += 1
        if not a.startswith("-") or a in ("-", "--"):
            raise UsageError(f"unexpected argument {a!r}")
        name, eq, value = a.lstrip("-").partition("=")
        if name == "ini":
            if not eq:
                if i >= len(argv):
                    raise UsageError("--ini needs FILE[:section]")
                value = argv[i]
                i += 1
            sections.append(_read_ini_arg(value))
            continue
        negate = False
        if name.startswith("no-") and name not in BY_NAME and name[3:] in BY_NAME:
            name, negate = name[3:], True
        opt = BY_NAME.get(name)
        if opt is None:
            raise UsageError(f"unknown option --{name}")
        if not eq:
            if opt.kind == "bool":
                value = "false" if negate else "true"
            elif opt.kind == "octal" and (i >= len(argv) or argv[i].startswith("-")):
                value = ""
            else:
                if i >= len(argv):
                    raise UsageError(f"--{name} needs a value")
                value = argv[i]
                i += 1
        flags.append(IniEntry(name, value, "<command line>", pos))
    return sections, flags


def _read_ini_arg(value: str) -> IniSection:
    path, section = value, "uwsgi"
    if ":" in value and not os.path.exists(value):
        path, section = value.rsplit(":", 1)
    try:
        text = open(path, encoding="utf-8").read()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    try:
        found = [s for s in read_ini(text, os.path.abspath(path), "uwsgi") if s.name == section]
    except IniSyntaxError as exc:
        raise UsageError(str(exc)) from None
    if not found:
        raise UsageError(f"no [{section}] section in {path}")
    entries = tuple(e for s in found for e in s.entries)
    return IniSection(section, os.path.abspath(path), found[0].line, entries)


def build_section(argv: list[str]) -> IniSection:
    sections, flags = parse_argv(argv)
    if sections:
        base = sections[0]
        entries = tuple(e for s in sections for e in s.entries) + tuple(flags)
        return IniSection(base.name, base.file, base.line, entries)
    return IniSection("uwsgi", os.path.join(os.getcwd(), "<command line>"), 0, tuple(flags))


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    try:
        section = build_section(argv)
    except UsageError as exc:
        print(f"pyfront app: {exc}\n\n{USAGE}", file=sys.stderr)
        return 2
    report = Report()
    name = None
    if section.file.endswith("<command line>"):
        name = "app"
    cfg = load_app(section, report, name=name)
    for d in report.diagnostics:
        print(d.format(), file=sys.stderr)
    if cfg is None:
        return 1
    from pyfront.app.master import AppMaster
    try:
        return AppMaster(cfg).run()
    except OSError as exc:
        print(f"pyfront: [emerg] {exc.strerror or exc}", file=sys.stderr)
        return 1
