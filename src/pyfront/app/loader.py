"""Load the WSGI callable named by an AppConfig (wsgi-file or module[:callable]).

Order as uWSGI: env, chdir, virtualenv, pythonpath, then import. The chdir directory
goes first on sys.path (uWSGI inserts "." there), so `wsgi-file = project/wsgi.py`
with Django's `DJANGO_SETTINGS_MODULE = "project.settings"` works as in the seed.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys

from pyfront.app import venv as venvmod


class AppLoadError(Exception):
    """The app could not be loaded; str() is the message, .tb the formatted traceback."""

    def __init__(self, message: str, tb: str = ""):
        super().__init__(message)
        self.tb = tb


def prepare(cfg) -> None:
    for k, v in cfg.env:
        os.environ[k] = v
    if cfg.chdir:
        os.chdir(cfg.chdir)
    if cfg.virtualenv:
        venvmod.activate(cfg.virtualenv, cfg.venv_site)
    for p in reversed(cfg.pythonpath):
        if p not in sys.path:
            sys.path.insert(0, p)
    here = os.path.abspath(cfg.chdir or os.getcwd())
    if here not in sys.path:
        sys.path.insert(0, here)


def load(cfg):
    """Return the WSGI callable or raise AppLoadError (with the import traceback)."""
    import traceback
    try:
        if cfg.wsgi_file:
            name = "uwsgi_file_" + "".join(c if c.isalnum() else "_" for c in cfg.wsgi_file)
            spec = importlib.util.spec_from_file_location(name, cfg.wsgi_file)
            if spec is None or spec.loader is None:
                raise AppLoadError(f'unable to load wsgi-file "{cfg.wsgi_file}"')
            mod = importlib.util.module_from_spec(spec)
            sys.modules[name] = mod
            filedir = os.path.dirname(cfg.wsgi_file)
            if filedir not in sys.path:
                sys.path.append(filedir)
            spec.loader.exec_module(mod)
            what = f'wsgi-file "{cfg.wsgi_file}"'
        elif cfg.module:
            mod = importlib.import_module(cfg.module)
            what = f'module "{cfg.module}"'
        else:
            raise AppLoadError("no python application configured (set wsgi-file= or module=)")
    except AppLoadError:
        raise
    except BaseException as exc:  # SystemExit in a settings module included
        raise AppLoadError(f"unable to load app: {type(exc).__name__}: {exc}", traceback.format_exc()) from None
    if not hasattr(mod, cfg.callable):
        raise AppLoadError(f'{what} has no callable "{cfg.callable}" '
                           f"(set callable= or module=pkg.mod:name)")
    app = getattr(mod, cfg.callable)
    if not callable(app):
        raise AppLoadError(f'{what}: "{cfg.callable}" is not callable')
    return app


def check_app(cfg, timeout: float = 60.0) -> str | None:
    """Import the app the way a worker would, in a forked child (so nothing leaks into the
    caller). None when it loads; else the error text with the traceback. Used by `pyfront check`."""
    import select
    import signal
    import time
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(r)
            prepare(cfg)
            load(cfg)
        except AppLoadError as exc:
            os.write(w, (exc.tb + str(exc)).encode("utf-8", "replace"))
            code = 1
        except BaseException as exc:  # prepare() failing: chdir, venv
            os.write(w, f"{type(exc).__name__}: {exc}".encode("utf-8", "replace"))
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                chunks.append(f"importing the app took longer than {timeout:.0f}s".encode())
                break
            d = os.read(r, 65536)
            if not d:
                break
            chunks.append(d)
    finally:
        os.close(r)
        _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 0 and not chunks:
        return None
    return b"".join(chunks).decode("utf-8", "replace") or f"the import check exited with status {status}"
