"""[uwsgi] option parsing: uWSGI's value rules, expansion, unknown keys, validation."""
import os
import socket

import pytest

from pyfront.app import options
from pyfront.app.options import load_app, opt_true, parse_address
from pyfront.config.diagnostics import Report
from pyfront.config.ini import read_ini

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def section(tmp_path, body, name="site.ini"):
    p = tmp_path / name
    p.write_text("[uwsgi]\n" + body)
    (tmp_path / "wsgi.py").write_text("application = None\n")
    return [s for s in read_ini(p.read_text(), str(p), "uwsgi") if s.name == "uwsgi"][0]


def load(tmp_path, body, **kw):
    r = Report()
    cfg = load_app(section(tmp_path, body, **kw), r)
    return cfg, r


@pytest.mark.parametrize("v,expected", [("true", True), ("True", True), ("1", True), ("yes", True), ("", True),
                                        ("anything", True), ("false", False), ("OFF", False), ("no", False),
                                        ("0", False)])
def test_uwsgi_opt_true(v, expected):
    assert opt_true(v) is expected


def test_seed_config(tmp_path):
    proj = tmp_path / "dailiyfresh"
    (proj / "dailiyfresh").mkdir(parents=True)
    (proj / "dailiyfresh" / "wsgi.py").write_text("application = None\n")
    cfg, r = load(tmp_path, f"""#socket=127.0.0.1:8080
http=127.0.0.1:8080
chdir={proj}
wsgi-file=dailiyfresh/wsgi.py
processes=4
threads=2
master=True
pidfile=uwsgi.pid
daemonize=uwsgi.log
""")
    assert cfg is not None, [d.format() for d in r.diagnostics]
    assert cfg.listen[0].protocol == "http" and cfg.listen[0].target == ("127.0.0.1", 8080)
    assert cfg.wsgi_file == str(proj / "dailiyfresh" / "wsgi.py")
    assert (cfg.processes, cfg.threads) == (4, 2)
    assert cfg.pidfile == str(tmp_path / "uwsgi.pid")          # relative to the ini file
    assert cfg.logto == str(tmp_path / "uwsgi.log")            # daemonize -> log there, no fork
    warn = [d for d in r.diagnostics if "daemonize" in d.message]
    assert warn and warn[0].line == 10 and warn[0].level == "warn"


def test_magic_vars_and_placeholders(tmp_path, monkeypatch):
    monkeypatch.setenv("PYFRONT_TEST_VAR", "hv")
    cfg, r = load(tmp_path, """base = %d
socket = %(base)%n.sock
wsgi-file = %dwsgi.py
env = CORES=%k
env = SECTION=%x
env = FILE=%s
env = PCT=100%%
env = HOMEVAR=$(PYFRONT_TEST_VAR)
""", name="myapp.ini")
    assert cfg is not None, [d.format() for d in r.diagnostics]
    assert cfg.listen[0].target == str(tmp_path / "myapp.sock")
    env = dict(cfg.env)
    assert env["CORES"] == str(os.cpu_count())
    assert env["SECTION"] == "uwsgi" and env["FILE"] == "myapp.ini" and env["PCT"] == "100%"
    assert env["HOMEVAR"] == "hv"
    assert not [d for d in r.diagnostics if "unknown" in d.message]    # `base` is a placeholder


def test_repeated_keys_lists_and_last_scalar_wins(tmp_path):
    cfg, _ = load(tmp_path, f"""socket = {tmp_path}/a.sock
socket = 127.0.0.1:9000
http-socket = [::1]:9001
wsgi-file = wsgi.py
processes = 2
processes = 3
env = A=1
env = B=2=3
""")
    assert [l.target for l in cfg.listen] == [str(tmp_path / "a.sock"), ("127.0.0.1", 9000), ("::1", 9001)]
    assert cfg.listen[2].family == socket.AF_INET6
    assert cfg.processes == 3
    assert cfg.env == (("A", "1"), ("B", "2=3"))


def test_unknown_key_warns_with_location_and_closest(tmp_path):
    cfg, r = load(tmp_path, f"socket = {tmp_path}/s.sock\nwsgi-file = wsgi.py\nharakri = 30\n")
    assert cfg is not None
    d = [d for d in r.diagnostics if "harakri" in d.message][0]
    assert d.level == "warn" and d.line == 4 and d.hint == 'did you mean "harakiri"?'


def test_strict_makes_unknown_keys_errors(tmp_path):
    cfg, r = load(tmp_path, f"socket = {tmp_path}/s.sock\nwsgi-file = wsgi.py\nstrict = true\nworkerz = 2\n")
    assert cfg is None and r.failed


def test_aliases_and_module_callable(tmp_path):
    cfg, r = load(tmp_path, f"uwsgi-socket = {tmp_path}/s.sock\nmodule = pkg.wsgi:app\nworkers = 5\nb = 65535\n")
    assert (cfg.module, cfg.callable, cfg.processes, cfg.buffer_size) == ("pkg.wsgi", "app", 5, 65535)


@pytest.mark.parametrize("body,needle", [
    ("wsgi-file = wsgi.py\n", "no socket configured"),
    ("socket = /tmp/x.sock\n", "no python application configured"),
    ("socket = /tmp/x.sock\nwsgi-file = wsgi.py\nbuffer-size = 70000\n", "buffer-size 70000 out of range"),
    ("socket = /tmp/x.sock\nwsgi-file = wsgi.py\nprocesses = zero\n", 'invalid value for "processes"'),
    ("socket = /tmp/x.sock\nwsgi-file = wsgi.py\nthreads = 0\n", "threads must be at least 1"),
    ("socket = /tmp/x.sock\nwsgi-file = wsgi.py\nchdir = /nonexistent/dir\n", "does not exist"),
    ("socket = 1.2.3.4:99999\nwsgi-file = wsgi.py\n", "port 99999 out of range"),
])
def test_errors(tmp_path, body, needle):
    cfg, r = load(tmp_path, body)
    assert cfg is None
    assert any(needle in d.message for d in r.diagnostics), [d.format() for d in r.diagnostics]


def test_die_on_term_is_accepted(tmp_path):
    cfg, r = load(tmp_path, "socket = /tmp/x.sock\nwsgi-file = wsgi.py\ndie-on-term = true\nplugins = python3\n")
    assert cfg is not None
    assert any("die-on-term" in d.message and d.level == "notice" for d in r.diagnostics)


def test_addresses(tmp_path):
    assert parse_address(":8000", "http", "/").target == ("0.0.0.0", 8000)
    assert parse_address("@abstract", "uwsgi", "/").target == "\0abstract"
    assert parse_address("unix:///run/x.sock", "uwsgi", "/").target == "/run/x.sock"
    assert parse_address("rel.sock", "uwsgi", "/srv").target == "/srv/rel.sock"


def test_reference_doc_is_current():
    with open(os.path.join(ROOT, "docs", "reference-uwsgi.md"), encoding="utf-8") as f:
        assert f.read() == options.markdown(), "run: python -m pyfront.app.options --markdown > docs/reference-uwsgi.md"


def test_every_option_documented_once():
    names = [o.name for o in options.OPTIONS]
    aliases = [a for o in options.OPTIONS for a in o.aliases]
    assert len(set(names + aliases)) == len(names + aliases)
    for o in options.OPTIONS:
        assert o.status in ("yes", "differs", "no-op", "pyfront")
        assert o.status == "yes" or o.note, o.name


def test_check_app_imports_in_a_child(tmp_path):
    from pyfront.app.loader import check_app
    cfg, _ = load(tmp_path, f"socket = {tmp_path}/s.sock\nwsgi-file = wsgi.py\n")
    (tmp_path / "wsgi.py").write_text("def application(e, s):\n    return []\n")
    assert check_app(cfg) is None
    (tmp_path / "wsgi.py").write_text("raise ImportError('no such thing')\n")
    err = check_app(cfg)
    assert "ImportError: no such thing" in err and "Traceback" in err
    (tmp_path / "wsgi.py").write_text("app = 1\n")
    assert 'has no callable "application"' in check_app(cfg)
    (tmp_path / "wsgi.py").write_text("application = None\n")
    assert '"application" is not callable' in check_app(cfg)
