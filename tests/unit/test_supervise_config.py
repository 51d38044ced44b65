"""[program:x] and friends: Supervisor's defaults, expansions, and file:line diagnostics."""
import os
import signal
import subprocess
import sys

from pyfront.config.diagnostics import Report
from pyfront.config.ini import read_ini
from pyfront.supervise.config import parse_supervisor_sections, password_matches, render_docs
from tests.conftest import ROOT


def parse(text, here="/srv/app", environ=None, file=None):
    file = file or os.path.join(here, "progs.conf")
    r = Report()
    cfg = parse_supervisor_sections(read_ini(text, file), here, r, run_dir="/run/pf", environ=environ)
    return cfg, r


def test_supervisors_defaults():
    cfg, r = parse("[program:web]\ncommand = /usr/bin/web --port 1\n")
    assert not r.failed
    p = cfg.groups[0].processes[0]
    assert (p.autostart, p.autorestart, p.startsecs, p.startretries, p.exitcodes, p.stopsignal, p.stopwaitsecs,
            p.stopasgroup, p.killasgroup, p.priority, p.redirect_stderr, p.stdout_logfile_maxbytes,
            p.stdout_logfile_backups) == (True, "unexpected", 1, 3, (0,), signal.SIGTERM, 10, False, False, 999,
                                         False, 50 * 1024 * 1024, 10)
    assert p.argv == ("/usr/bin/web", "--port", "1")
    assert p.stdout_logfile == "/run/pf/logs/web-stdout---supervisor.log"
    assert cfg.supervisord.logfile == "/run/pf/supervisord.log"


def test_expansions_and_numprocs():
    cfg, r = parse("[program:w]\ncommand = %(ENV_HOME)s/bin/w --n %(process_num)02d --g %(group_name)s %(here)s\n"
                   "process_name = %(program_name)s_%(process_num)02d\nnumprocs = 2\nnumprocs_start = 1\n"
                   "[group:pool]\nprograms = w\n", environ={"HOME": "/home/u"})
    assert not r.failed, r.diagnostics
    names = [p.name for p in cfg.groups[0].processes]
    assert names == ["w_01", "w_02"]
    assert cfg.groups[0].processes[1].argv == ("/home/u/bin/w", "--n", "02", "--g", "pool", "/srv/app")
    assert cfg.groups[0].processes[0].namespec == "pool:w_01"


def test_expansion_error_names_the_key_and_line():
    cfg, r = parse("[program:w]\n\ncommand = run %(ENV_NOPE)s\n", environ={})
    assert r.failed
    d = r.diagnostics[-1]
    assert d.line == 3 and "'command'" in d.message and "ENV_NOPE" in d.message


def test_numprocs_needs_process_num():
    cfg, r = parse("[program:w]\ncommand = x\nnumprocs = 3\n")
    assert r.failed and "%(process_num) must be present within process_name" in r.diagnostics[-1].message


def test_bad_values_report_file_line_and_keep_going():
    cfg, r = parse("[program:w]\ncommand = x\nautostart = maybe\nautorestart = sometimes\nstopsignal = NOPE\n"
                   "startsecs = soon\n")
    msgs = [(d.line, d.message) for d in r.diagnostics if d.is_error]
    assert sorted(m[0] for m in msgs) == [3, 4, 5, 6]
    msgs.sort()
    assert "not a valid boolean value: 'maybe'" in msgs[0][1]
    assert "invalid 'autorestart' value 'sometimes'" in msgs[1][1]


def test_missing_command_and_unknown_key():
    cfg, r = parse("[program:w]\ncomand = x\n")
    kinds = {(d.level, d.line) for d in r.diagnostics}
    assert ("warn", 2) in kinds and ("emerg", 1) in kinds
    assert any("does not specify a command" in d.message for d in r.diagnostics)


def test_seed_traps(tmp_path):
    (tmp_path / "uwsgi.ini").write_text("[uwsgi]\nsocket = app.sock\ndaemonize = /var/log/uwsgi.log\n")
    text = ("  [program:webnote]\ncommand=uwsgi --ini uwsgi.ini\ndirectory = %s\nstartsecs=0\nstopwaitsecs=0\n"
            "autostart=true\nautorestart=true\n\n[inet_http_server]\nport = :9001\nusername = admin\n"
            "password = 123\n\n[rpcinterface:supervisor]supervisor.rpcinterface_factory = "
            "supervisor.rpcinterface:make_main_rpcinterface\n") % tmp_path
    cfg, r = parse(text, here=str(tmp_path))
    assert not r.failed
    warns = {d.line: d.message for d in r.diagnostics if d.level == "warn"}
    assert "daemonize" in warns[2]
    assert "stopwaitsecs=0 without killasgroup" in warns[5]
    assert "weak password" in warns[10]
    assert "text after the section header [rpcinterface:supervisor]" in warns[14]


def test_control_port_without_host_binds_loopback_unless_password():
    from pyfront.control.server import bind_host
    cfg, r = parse("[inet_http_server]\nport = :9001\n")
    assert bind_host(cfg.inet) == "127.0.0.1" and any("binds 127.0.0.1" in d.message for d in r.diagnostics)
    cfg, r = parse("[inet_http_server]\nport = 0.0.0.0:9001\n")
    assert r.failed and "without a password" in r.diagnostics[-1].message
    cfg, r = parse("[inet_http_server]\nport = :9001\nusername = u\npassword = a-long-password\n")
    assert bind_host(cfg.inet) == "0.0.0.0" and not r.failed


def test_incomplete_auth_and_sha_passwords():
    cfg, r = parse("[inet_http_server]\nport = 127.0.0.1:9001\nusername = u\n")
    assert r.failed and "incomplete authentication" in r.diagnostics[-1].message
    assert password_matches("{SHA}" + "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3", "test")
    assert not password_matches("{SHA}" + "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3", "tes")
    assert password_matches("plain", "plain") and not password_matches("plain", "Plain")


def test_environment_and_groups():
    cfg, r = parse('[program:a]\ncommand=x\nenvironment=A="1,2",B=two\npriority=5\n'
                   "[program:b]\ncommand=y\n[group:g]\nprograms=a,b\npriority=7\n")
    assert not r.failed
    g = cfg.group("g")
    assert [p.name for p in g.processes] == ["a", "b"] and g.priority == 7
    assert dict(g.processes[0].environment) == {"A": "1,2", "B": "two"}


def test_include_files(tmp_path):
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "x.ini").write_text("[program:inc]\ncommand = x\n")
    cfg, r = parse("[include]\nfiles = conf.d/*.ini\n", here=str(tmp_path), file=str(tmp_path / "main.conf"))
    assert not r.failed and cfg.group("inc") is not None


def test_reference_doc_is_current():
    path = os.path.join(ROOT, "docs", "reference-supervisor.md")
    with open(path) as f:
        assert f.read() == render_docs(), "regenerate: python -m pyfront.supervise.config --docs > " + path
