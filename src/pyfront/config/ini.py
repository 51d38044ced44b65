"""INI reader that keeps every key with its file:line, repeated keys included.

Two flavours, because the tools differ:
- "supervisor": Python configparser's rules as Supervisor uses them — indented lines
  after a key continue its value, inline `;`/`#` comments need whitespace before them.
- "uwsgi": uWSGI's core/ini.c rules — every line stands alone (leading blanks are
  stripped), comments only at line start, keys may repeat (list options).
Values are raw text; each layer expands %(...)s / %d etc. with its own rules.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_SECTION = re.compile(r"^\[(?P<name>[^\]]+)\](?P<rest>.*)$")
_INLINE_COMMENT = re.compile(r"\s[;#].*$")


@dataclass(frozen=True)
class IniEntry:
    key: str
    value: str
    file: str
    line: int


@dataclass(frozen=True)
class IniSection:
    name: str
    file: str
    line: int
    entries: tuple[IniEntry, ...]
    trailing: str = ""   # text after `]` on the header line (the seed's run-together rpcinterface line)

    def get(self, key: str, default: str | None = None) -> str | None:
        """Last value of `key` (configparser keeps the last; uWSGI list options use getall)."""
        for e in reversed(self.entries):
            if e.key == key:
                return e.value
        return default

    def getall(self, key: str) -> list[str]:
        return [e.value for e in self.entries if e.key == key]

    def entry(self, key: str) -> IniEntry | None:
        for e in reversed(self.entries):
            if e.key == key:
                return e
        return None


class IniSyntaxError(ValueError):
    def __init__(self, message: str, file: str, line: int):
        self.file, self.line, self.message = file, line, message
        super().__init__(f"{message} in {file}:{line}")


def read_ini(text: str, file: str, flavor: str = "supervisor") -> list[IniSection]:
    if flavor not in ("supervisor", "uwsgi"):
        raise ValueError(f"unknown ini flavour {flavor!r}")
    sections: list[IniSection] = []
    cur_name = cur_trailing = None
    cur_line = 0
    entries: list[list] = []      # [key, value, line] while the section is open
    last_indent = -1

    def close():
        if cur_name is not None:
            sections.append(IniSection(cur_name, file, cur_line,
                                       tuple(IniEntry(k, v.strip(), file, ln) for k, v, ln in entries),
                                       cur_trailing or ""))

    for lineno, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped[0] in "#;":
            continue
        indent = len(raw) - len(raw.lstrip())
        if flavor == "supervisor" and entries and indent > last_indent and cur_name is not None:
            # configparser continuation line: appended to the previous value
            value = _INLINE_COMMENT.sub("", stripped)
            entries[-1][1] += "\n" + value
            continue
        m = _SECTION.match(stripped)
        if m:
            close()
            cur_name, cur_line, cur_trailing = m.group("name").strip(), lineno, m.group("rest").strip()
            entries = []
            last_indent = indent
            continue
        if cur_name is None:
            raise IniSyntaxError("key outside of any [section]", file, lineno)
        if flavor == "supervisor":
            stripped = _INLINE_COMMENT.sub("", stripped)
        sep = _first_separator(stripped, flavor)
        if sep < 0:
            raise IniSyntaxError(f"line {stripped!r} is not 'key = value'", file, lineno)
        key, value = stripped[:sep].strip(), stripped[sep + 1:]
        if not key:
            raise IniSyntaxError("empty key", file, lineno)
        if flavor == "supervisor":
            key = key.lower()
        entries.append([key, value, lineno])
        last_indent = indent
    close()
    return sections


def _first_separator(line: str, flavor: str) -> int:
    eq = line.find("=")
    if flavor == "uwsgi":
        return eq
    colon = line.find(":")
    if eq < 0:
        return colon
    if colon < 0:
        return eq
    return min(eq, colon)
