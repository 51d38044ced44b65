"""The seed's whole deployment from one CONF_DIR (issue 6 point 1).

The three snippets of the seed are stored as written in tests/corpus/seed/ (its conf.d server
block, its [uwsgi] ini, its supervisor.conf). The test copies them into one CONF_DIR with
small, visible text replacements — the seed's absolute paths moved under a temp dir, `listen 80`
to a free loopback port, the `pid` line moved to nginx.conf's main context as `pyfront check`
says — builds the seed's Django project and virtualenv, and runs `pyfront serve`. The Django
pages and the static files are served through the front, and the real supervisorctl, reading
the seed's own [supervisorctl] section, sees the program and the app and front worker groups.
"""
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port, pyfront_cmd, wait_for_port
from tests.integration.test_master_process import wait_until

SEED = Path(__file__).resolve().parents[1] / "corpus" / "seed"
SUPERVISORCTL = os.path.join(os.path.dirname(sys.executable), "supervisorctl")
PID_LINE = "    pid        /var/run/nginx.pid;    #进程文件\n"


def replace(text: str, old: str, new: str) -> str:
    assert old in text, f"the seed no longer holds {old!r}"
    return text.replace(old, new)


def build_seed(root: Path, port: int, ctl_port: int) -> Path:
    """The seed's files in CONF_DIR=root/conf; every absolute path of the seed lives under root."""
    conf = root / "conf"
    conf.mkdir()
    site = (SEED / "orange_web.conf").read_text()
    site = replace(site, "listen 80;", f"listen 127.0.0.1:{port};")
    site = replace(site, PID_LINE, "")                       # `pyfront check`: move it to nginx.conf
    site = replace(site, " /var/", f" {root}/var/")          # error_log, access_log, alias
    site = replace(site, "unix:///var/", f"unix://{root}/var/")
    (conf / "orange_web.conf").write_text(site)
    (conf / "nginx.conf").write_text(f"pid {root}/var/run/nginx.pid;\n")
    for d in ("var/run", "var/log/nginx", "var/www/script", "var/www/orange_web/static/css",
              "home/xe/Desktop/webnote"):
        (root / d).mkdir(parents=True)
    (root / "var/www/orange_web/static/css/site.css").write_text("body { color: orange; }\n")

    ini = (SEED / "uwsgi.ini").read_text()
    ini = replace(ini, "#socket=127.0.0.1:8080", f"socket={root}/var/www/script/uwsgi.sock")  # = uwsgi_pass
    ini = replace(ini, "\nhttp=127.0.0.1:8080", "\n#http=127.0.0.1:8080")   # the front serves HTTP now
    ini = replace(ini, "/home/shuan/", f"{root}/home/shuan/")               # chdir and virtualenv
    (conf / "uwsgi.ini").write_text(ini)

    sup = (SEED / "supervisor.conf").read_text()
    # The seed's program runs `uwsgi --ini uwsgi.ini`: under pyfront the [uwsgi] layer already
    # serves that app, and a second app server would fight it for the same socket. The test
    # keeps a real, harmless long-running program in its place so the supervision of it shows.
    sup = replace(sup, "command=uwsgi --ini uwsgi.ini", "command=sh -c 'echo webnote up; exec sleep 3600'")
    sup = replace(sup, "port = :9001", f"port = 127.0.0.1:{ctl_port}")
    sup = replace(sup, "http://127.0.0.1:9001", f"http://127.0.0.1:{ctl_port}")
    sup = replace(sup, "/home/xe/", f"{root}/home/xe/")
    (conf / "supervisor.conf").write_text(sup)
    return conf


def build_django(root: Path, env: dict) -> None:
    """The seed's project: chdir=/home/shuan/dailiyfresh, wsgi-file=dailiyfresh/wsgi.py, and its
    virtualenv bj18_py3 on WORKON_HOME=/home/shuan/.virtualenvs (made with `pyfront venv mk`)."""
    pytest.importorskip("django")
    proj = root / "home/shuan/dailiyfresh"
    proj.mkdir(parents=True)
    subprocess.run([sys.executable, "-m", "django", "startproject", "dailiyfresh", str(proj)], check=True)
    (proj / "dailiyfresh" / "views.py").write_text(
        "from django.http import HttpResponse\n"
        "import seedhelper\n\n"
        "def hello(request):\n"
        "    return HttpResponse(f'dailiyfresh {seedhelper.WHERE} {request.path}')\n")
    urls = proj / "dailiyfresh" / "urls.py"
    urls.write_text(urls.read_text() + "\nfrom dailiyfresh.views import hello\n"
                    "urlpatterns += [path('hello/', hello)]\n")
    r = subprocess.run(pyfront_cmd("venv", "mk", "bj18_py3"), env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    venv = Path(r.stdout.strip())
    assert venv == root / "home/shuan/.virtualenvs/bj18_py3"
    # Django itself comes from the interpreter running pyfront (the app server is embedded);
    # this module exists only in the venv, so the page proves `virtualenv=` is on sys.path.
    site = next(venv.glob("lib/python3*/site-packages"))
    (site / "seedhelper.py").write_text("WHERE = 'from-the-venv'\n")


def fetch(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def fetch_until_ok(url, deadline_s=60):
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            return fetch(url)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture
def seed(tmp_path):
    port, ctl_port = free_port(), free_port()
    env = dict(os.environ, WORKON_HOME=str(tmp_path / "home/shuan/.virtualenvs"))
    conf = build_seed(tmp_path, port, ctl_port)
    build_django(tmp_path, env)
    return conf, port, ctl_port, env


def test_check_prints_the_seeds_traps_as_warnings(seed):
    conf, _, _, env = seed
    r = subprocess.run(pyfront_cmd("check", str(conf)), capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    err = r.stderr
    sup, ini = conf / "supervisor.conf", conf / "uwsgi.ini"
    assert f"[warn] text after the section header [rpcinterface:supervisor] is ignored" in err
    assert f"stopwaitsecs=0 without killasgroup" in err and f"{sup}:9" in err
    assert f'"daemonize" ignored' in err and f"{ini}:18" in err
    assert 'server name "www.cnblogs.com/zzqit" has suspicious symbols' in err
    assert '"gzip_types" has no effect because "gzip" is off' in err
    assert "syntax is ok" in err and "test is successful" in err


def test_seed_serves_django_and_static_and_supervisorctl_sees_everything(seed, procs):
    conf, port, ctl_port, env = seed
    p = procs(pyfront_cmd("serve", str(conf)), env=env)
    wait_for_port(port, proc=p.p)
    base = f"http://127.0.0.1:{port}"
    assert fetch_until_ok(base + "/hello/") == (200, b"dailiyfresh from-the-venv /hello/")
    status, body = fetch(base + "/admin/login/")           # a real Django page, through uwsgi_pass
    assert status == 200 and b"csrfmiddlewaretoken" in body
    assert fetch(base + "/static/css/site.css") == (200, b"body { color: orange; }\n")   # the alias
    ctl = [SUPERVISORCTL, "-c", str(conf / "supervisor.conf")]
    deadline = time.monotonic() + 30
    while True:
        r = subprocess.run(ctl + ["status"], capture_output=True, text=True, timeout=30)
        if "webnote" in r.stdout and "RUNNING" in r.stdout or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    lines = r.stdout.splitlines()
    assert any(ln.startswith("webnote") and "RUNNING" in ln for ln in lines), r.stdout
    names = {ln.split()[0]: ln.split()[1] for ln in lines if ln.strip()}
    # the [uwsgi] app (named after uwsgi.ini): its master and processes=4 workers; the front worker
    assert {n for n in names if n.startswith("app-uwsgi:")} == {
        "app-uwsgi:master", *(f"app-uwsgi:worker-{i}" for i in range(1, 5))}, r.stdout
    assert names.get("front:worker-0") == "RUNNING", r.stdout
    out_log = conf.parent / "home/xe/Desktop/webnote/supervisord.log"     # the seed's stdout_logfile
    wait_until(lambda: out_log.exists() and "webnote up" in out_log.read_text(), what="webnote's log")
    tail = subprocess.run(ctl + ["tail", "webnote"], capture_output=True, text=True, timeout=30)
    assert "webnote up" in tail.stdout
    access = conf.parent / "var/log/nginx/access.log"          # flushed by the front's 1 s timer
    wait_until(lambda: "GET /hello/" in access.read_text(), what="the access log line")


def test_check_tells_where_the_seeds_pid_line_goes(tmp_path):
    """The seed's block as written (only its port changed): the one error, and its fix."""
    conf = tmp_path / "conf"
    conf.mkdir()
    site = replace((SEED / "orange_web.conf").read_text(), "listen 80;", f"listen 127.0.0.1:{free_port()};")
    (conf / "orange_web.conf").write_text(site)
    r = subprocess.run(pyfront_cmd("check", str(conf)), capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert (f'pyfront: [emerg] "pid" directive is not allowed here in {conf}/orange_web.conf:4 '
            "(move it to nginx.conf's main context)") in r.stderr, r.stderr
