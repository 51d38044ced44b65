"""`pyfront` command line: dispatches `pyfront SUBCOMMAND ...` to the module owning it.

Each subcommand module exposes `main(argv: list[str]) -> int`; they parse their own
arguments because their grammars differ (ctl mimics supervisorctl, app mimics uWSGI).
"""
import importlib
import sys

from pyfront import __version__

SUBCOMMANDS = {
    "serve": ("pyfront.serve", "run front, apps and programs from CONF_DIR (default: the bundled example)"),
    "check": ("pyfront.check", "test the configuration of every layer, like `nginx -t`"),
    "signal": ("pyfront.signal_cmd", "send reload|stop|quit|reopen to a running master, like `nginx -s`"),
    "ctl": ("pyfront.control.client", "supervisorctl-compatible control client"),
    "app": ("pyfront.app.cli", "standalone uWSGI-compatible WSGI app server"),
    "venv": ("pyfront.venv", "virtualenvwrapper-style mk|ls|rm|workon"),
}

USAGE = "usage: pyfront [--version] {" + ",".join(SUBCOMMANDS) + "} ...\n\n" + "\n".join(
    f"  {name:<8} {helptext}" for name, (_, helptext) in SUBCOMMANDS.items())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    if argv[0] in ("-v", "--version", "version"):
        print(f"pyfront {__version__}")
        return 0
    entry = SUBCOMMANDS.get(argv[0])
    if entry is None:
        print(f"pyfront: unknown command {argv[0]!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    module = importlib.import_module(entry[0])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
