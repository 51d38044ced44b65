"""docs/reference-nginx.md is generated from the directive table and must not drift."""
import os

from pyfront.config import nginx_directives as ND

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_committed_reference_equals_generated():
    with open(os.path.join(ROOT, "docs", "reference-nginx.md"), encoding="utf-8") as f:
        committed = f.read()
    assert committed == ND.markdown(), "run: python -m pyfront.config.nginx_directives --markdown > docs/reference-nginx.md"


def test_every_entry_is_documented_and_a_real_nginx_directive():
    for key, d in ND.TABLE.items():
        assert d.doc and d.contexts and d.args, key
        assert key.split("@")[0] in ND.NGINX_DIRECTIVE_NAMES, key


def test_argument_flags():
    t = ND.TABLE
    assert t["sendfile"].args_ok(1) and not t["sendfile"].args_ok(2)
    assert t["listen"].args_ok(5) and not t["listen"].args_ok(0)
    assert t["try_files"].args_ok(2) and not t["try_files"].args_ok(1)
    assert t["location"].args_ok(1) and t["location"].args_ok(2) and not t["location"].args_ok(3)
    assert t["http"].args_ok(0) and not t["http"].args_ok(1)
