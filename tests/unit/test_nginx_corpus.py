"""pyfront against the recorded diagnostics of the real nginx (tests/corpus/nginx-conf).

Each NAME.conf is a conf.d file; NAME.expected holds what `nginx -t` 1.22 printed for it
(level, message, file, line), recorded and re-checked live by
tests/integration/test_nginx_check_vs_nginx.py. This test needs no nginx.
"""
import json
import os

import pytest

from pyfront.config.confdir import load_confdir
from pyfront.config.diagnostics import ConfigError
from pyfront.config.nginx import load_nginx
from pyfront.config.nginx_validate import OWN

CORPUS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "corpus", "nginx-conf")
NAMES = sorted(n[:-5] for n in os.listdir(CORPUS) if n.endswith(".conf"))


def test_corpus_is_not_empty():
    assert len(NAMES) > 50


@pytest.mark.parametrize("name", NAMES)
def test_pyfront_gives_nginx_recorded_diagnostics(name, tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    with open(os.path.join(CORPUS, name + ".conf"), encoding="utf-8") as f:
        (conf / "site.conf").write_text(f.read(), encoding="utf-8")
    with open(os.path.join(CORPUS, name + ".expected"), encoding="utf-8") as f:
        expected = [tuple(json.loads(line)) for line in f if line.strip()]
    try:
        _, diags = load_nginx(load_confdir(str(conf)))
    except ConfigError as e:
        diags = e.diagnostics
    got = [(d.level, d.message.replace(str(conf), "D/conf"), os.path.basename(d.file) if d.file else None,
            d.line or None) for d in diags if not (d.hint or "").startswith(OWN)]
    # nginx names no file:line for a few post-parse errors (or the end of the harness's http
    # block in its nginx.conf); pyfront names the directive on purpose
    expected = [(lv, m, None, None) if f in (None, "nginx.conf") else (lv, m, f, ln) for lv, m, f, ln in expected]
    got = [g if any(e[1] == g[1] and e[2] is not None for e in expected) else (g[0], g[1], None, None) for g in got]
    assert got == expected
