"""`pyfront check [-q] [-T] CONF_DIR`: test every layer's configuration, like `nginx -t`.

Output (stderr, as nginx): every diagnostic as `pyfront: [level] message in file:line (hint)`,
then `pyfront: the configuration file DIR syntax is ok` and
`pyfront: configuration file DIR test is successful` — or `... test failed` and exit 1.
-q suppresses the two success lines (nginx -q); -T also dumps every configuration file read
to stdout after a successful test (nginx -T), then the effective nginx configuration.
"""
from __future__ import annotations

import os
import sys

from pyfront.config.confdir import classify
from pyfront.config.diagnostics import ConfigError
from pyfront.stack import BUNDLED_SITE, load_stack

USAGE = "usage: pyfront check [-q] [-T] [CONF_DIR]"


def _dump(stack) -> None:
    files = list(getattr(stack.front_config, "files", ()) or ())
    for name in sorted(os.listdir(stack.path)):
        full = os.path.join(stack.path, name)
        if os.path.isfile(full) and classify(full) != "other" and full not in files:
            files.append(full)
    for f in files:
        sys.stdout.write(f"# configuration file {f}:\n")
        try:
            with open(f, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        except OSError as e:
            text = f"# open() failed ({e.errno}: {e.strerror})\n"
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.write("\n")
    if stack.front_config is not None:
        from pyfront.config.nginx_dump import render_effective
        sys.stdout.write("# effective nginx configuration (includes expanded, inheritance applied):\n")
        sys.stdout.write(render_effective(stack.front_config))
    from pyfront.stack_check import render_layers
    sys.stdout.write(render_layers(stack))


def main(argv: list[str]) -> int:
    quiet = dump = False
    rest = []
    for a in argv:
        if a in ("-h", "--help"):
            print(USAGE)
            return 0
        if a.startswith("-") and len(a) > 1:
            for ch in a[1:]:
                if ch == "q":
                    quiet = True
                elif ch == "T":
                    dump = True
                elif ch == "t":
                    pass   # `pyfront check -t DIR` for nginx muscle memory
                else:
                    print(f"pyfront: invalid option: \"{a}\"\n{USAGE}", file=sys.stderr)
                    return 2
        else:
            rest.append(a)
    if len(rest) > 1:
        print(USAGE, file=sys.stderr)
        return 2
    path = os.path.abspath(rest[0] if rest else BUNDLED_SITE)
    err = sys.stderr
    try:
        stack = load_stack(path, bundled=not rest)
    except ConfigError as e:
        for d in e.diagnostics:
            print(d.format(), file=err)
        print(f"pyfront: configuration file {path} test failed", file=err)
        return 1
    except Exception as e:   # a loader bug must still end in nginx's shape, not a traceback
        print(f"pyfront: [emerg] {type(e).__name__}: {e}", file=err)
        print(f"pyfront: configuration file {path} test failed", file=err)
        return 1
    for d in stack.diagnostics:
        print(d.format(), file=err)
    from pyfront.config.proxy_check import cross_layer      # front <-> [uwsgi] apps (issue 4)
    from pyfront.stack_check import stack_links              # links between every layer (issue 6)
    links = cross_layer(stack) + stack_links(stack)
    for d in links:
        print(d.format(), file=err)
    if any(d.level in ("emerg", "error") for d in links):
        print(f"pyfront: configuration file {path} test failed", file=err)
        return 1
    if not quiet:
        print(f"pyfront: the configuration file {path} syntax is ok", file=err)
        print(f"pyfront: configuration file {path} test is successful", file=err)
    err.flush()
    if dump:
        _dump(stack)
    return 0
