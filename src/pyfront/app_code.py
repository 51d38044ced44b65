"""What a reload compares for an [uwsgi] app: its effective config and its code on disk.

uWSGI's HUP reloads the app's code; pyfront keeps that meaning but leaves an app alone when
neither its config nor its code changed (issue #6: one reload applies only what changed).
"Code" is found without asking the workers (no per-request cost, nothing to report back):

- the ini file itself (so `touch app.ini` + HUP forces that app's reload),
- source files (SOURCE_SUFFIXES) under the app's code roots: `chdir`, the `wsgi-file`'s
  directory, every `pythonpath` entry, and a `module=` package found in those or in the
  directory `pyfront serve` runs from,
- each site-packages directory of its `virtualenv`, one level deep (pip install/upgrade/remove
  creates or deletes *.dist-info entries there).

Each file is recorded as (mtime_ns, size); the snapshot is taken just before the app master
is forked, so a file edited while the workers import it is seen as changed at the next HUP
(a spurious reload, never a missed one). A tree too large to scan (MAX_FILES) gives None:
"unknown", and such an app is reloaded on every HUP, as before.
"""
from __future__ import annotations

import dataclasses
import os

SOURCE_SUFFIXES = (".py", ".so", ".pth", ".html", ".htm", ".jinja", ".jinja2", ".j2", ".mo")
MAX_FILES = 20000                       # stat()s per app per snapshot (~0.1 s on a warm cache)
MAX_DIRS = 5000                         # directories listed per app per snapshot (chdir = / ...)
SKIP_DIRS = {"__pycache__", "node_modules"}


class TooManyFiles(Exception):
    pass


def effective(cfg):
    """The part of an AppConfig that a reload compares: every field but the section's line
    number (a comment added above [uwsgi] changes nothing the app sees)."""
    if dataclasses.is_dataclass(cfg) and hasattr(cfg, "line"):
        return dataclasses.replace(cfg, line=0)
    return cfg


def config_changes(old, new) -> list[str]:
    """Names of the AppConfig fields (as uWSGI options) that differ."""
    a, b = effective(old), effective(new)
    if a == b:
        return []
    if not dataclasses.is_dataclass(a):
        return ["config"]
    return [f.name.replace("_", "-") for f in dataclasses.fields(a)
            if f.compare and getattr(a, f.name) != getattr(b, f.name)] or ["config"]


def _skip_dir(path: str, name: str) -> bool:
    return name.startswith(".") or name in SKIP_DIRS or os.path.exists(os.path.join(path, name, "pyvenv.cfg"))


def _add(out: dict, path: str) -> None:
    try:
        st = os.stat(path)
    except OSError:
        out[path] = None          # missing: appearing later is a change too
        return
    out[path] = (st.st_mtime_ns, st.st_size)
    if len(out) > MAX_FILES:
        raise TooManyFiles(path)


def _walk(out: dict, root: str) -> None:
    if os.path.isfile(root):
        _add(out, root)
        return
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        out["\0dirs"] = out.get("\0dirs", 0) + 1
        if out["\0dirs"] > MAX_DIRS:
            raise TooManyFiles(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not _skip_dir(dirpath, d))
        for f in filenames:
            if f.endswith(SOURCE_SUFFIXES):
                _add(out, os.path.join(dirpath, f))


def _module_root(cfg, dirs: list[str]) -> str | None:
    top = (cfg.module or "").partition(":")[0].split(".")[0]
    if not top:
        return None
    for d in dirs:
        for cand in (os.path.join(d, top), os.path.join(d, top + ".py")):
            if os.path.exists(cand):
                return cand
    return None


def roots(cfg) -> list[str]:
    """Directories (walked) and files whose source files make up the app's code."""
    out: list[str] = []
    chdir = getattr(cfg, "chdir", None)
    if chdir:
        out.append(chdir)
    wsgi_file = getattr(cfg, "wsgi_file", None)
    if wsgi_file:
        out.append(os.path.dirname(os.path.join(chdir or os.getcwd(), wsgi_file)))
    pythonpath = [os.path.join(chdir or os.getcwd(), p) for p in getattr(cfg, "pythonpath", ())]
    out.extend(pythonpath)
    if getattr(cfg, "module", None):
        m = _module_root(cfg, pythonpath + [chdir or os.getcwd()])
        if m:
            out.append(m)
    # a root inside another one is walked once
    norm = sorted({os.path.abspath(r) for r in out})
    return [r for r in norm if not any(r != o and r.startswith(o.rstrip("/") + "/") for o in norm)]


def snapshot(cfg) -> dict | None:
    """{path: (mtime_ns, size) or None} of the app's code, or None if it is too large to scan."""
    out: dict = {}
    try:
        if getattr(cfg, "file", None) and os.path.isabs(cfg.file):
            _add(out, cfg.file)
        for r in roots(cfg):
            _walk(out, r)
        for site in getattr(cfg, "venv_site", ()):
            _add(out, site)
            try:
                names = sorted(os.listdir(site))
            except OSError:
                continue
            for n in names:
                _add(out, os.path.join(site, n))
    except TooManyFiles:
        return None
    out.pop("\0dirs", None)
    return out


def code_changes(old: dict | None, new: dict | None) -> list[str] | None:
    """Paths that differ between two snapshots ([] = same code); None when either is unknown."""
    if old is None or new is None:
        return None
    return sorted(p for p in old.keys() | new.keys() if old.get(p, "absent") != new.get(p, "absent"))
