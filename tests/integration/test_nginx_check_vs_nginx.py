"""pyfront's nginx diagnostics against the real `nginx -t`, config by config.

Each case is a conf.d-style file. The real nginx reads it inside an `http {}` that starts
with pyfront's prelude (nginx.conf's usual lines), from a temporary prefix (`-p`, `-c`,
`-e`, every path under tmp, so nothing is written elsewhere). pyfront reads the same file
from a CONF_DIR. Both must give the same diagnostics: level, message and line (file names
compared by base name; `nginx:` vs `pyfront:` prefixes ignored). pyfront's own warnings
(hint "pyfront's own check: ...") are not nginx's and are left out of the comparison;
tests/unit/test_nginx_diagnostics.py checks them.
"""
from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from pyfront.config.confdir import load_confdir
from pyfront.config.diagnostics import ConfigError
from pyfront.config.nginx import load_nginx
from pyfront.config.nginx_validate import OWN
from tests.conftest import need_peer

pytestmark = pytest.mark.peer

SEED = "/work/shared/reference/seed-nginx-uwsgi-supervisor.txt"
_LINE = re.compile(r"^nginx: \[(\w+)\] (.*?)(?: in (\S+):(\d+))?$")

PRELUDE = """\
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    keepalive_timeout 65;
    log_format main '$remote_addr - $remote_user [$time_local] "$request" '
                    '$status $body_bytes_sent "$http_referer" '
                    '"$http_user_agent" "$http_x_forwarded_for"';
"""

SEED_BLOCK = """\
server {
    listen 80; # 我要监听那个端口
    server_name www.cnblogs.com/zzqit; # 你访问的路径前面的url名称ip地址也可以
    pid        /var/run/nginx.pid;    #进程文件
    error_log  /var/log/nginx/error.log; #错误日志定义等级,[ debug | info | notice | warn | error | crit ]
    access_log /var/log/nginx/access.log main; # Nginx日志配置
    charset utf-8; # Nginx编码
    gzip_types text/plain application/x-javascript text/css text/javascript application/x-httpd-php application/json text/json image/jpeg image/gif image/png application/octet-stream; # 支持压缩的类型

    # 指定项目路径uwsgi
    location / { # 这个location就和咱们Django的url(r'^admin/', admin.site.urls),
        include uwsgi_params; # 导入一个Nginx模块他是用来和uWSGI进行通讯的
        uwsgi_connect_timeout 30; # 设置连接uWSGI超时时间
        uwsgi_pass unix:///var/www/script/uwsgi.sock; # 指定uwsgi的sock文件所有动态请求就会直接丢给他
    }

    # 指定静态文件路径
    location /static/ {
        alias /var/www/orange_web/static/;
    }
}
"""


def _nginx_check(nginx: str, tmp, site: str, main_extra: str = "") -> list[tuple]:
    d = tmp / "ngx"
    (d / "logs").mkdir(parents=True, exist_ok=True)
    (d / "tmp").mkdir(exist_ok=True)
    conf = d / "conf"
    conf.mkdir(exist_ok=True)
    (conf / "site.conf").write_text(site)
    # a real nginx install has uwsgi_params next to nginx.conf; pyfront ships the same file
    (conf / "uwsgi_params").write_bytes(_data("uwsgi_params"))
    temp = "".join(f"    {n}_temp_path {d}/tmp/{n};\n" for n in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    main = (f"{main_extra}\npid {d}/logs/nginx.pid;\nerror_log {d}/logs/error.log;\nevents {{}}\n"
            f"http {{\n{PRELUDE}    access_log {d}/logs/access.log;\n{temp}    include {conf}/site.conf;\n}}\n")
    (conf / "nginx.conf").write_text(main)
    p = subprocess.run([nginx, "-t", "-p", f"{d}/", "-c", f"{conf}/nginx.conf", "-e", f"{d}/logs/error.log"],
                       capture_output=True, text=True, errors="replace", timeout=30)
    out = []
    for line in p.stderr.splitlines():
        m = _LINE.match(line)
        if not m or m.group(1) not in ("emerg", "alert", "crit", "error", "warn", "notice"):
            continue
        file = os.path.basename(m.group(3)) if m.group(3) else None
        out.append((m.group(1), m.group(2).replace(str(d), "D"), file, int(m.group(4)) if m.group(4) else None))
    return out


def _data(name: str) -> bytes:
    from importlib import resources
    return resources.files("pyfront").joinpath("data", name).read_bytes()


def _pyfront_check(tmp, site: str, main_conf: str | None = None) -> list[tuple]:
    d = tmp / "pf" / "conf"
    d.mkdir(parents=True, exist_ok=True)
    (d / "site.conf").write_text(site)
    if main_conf is not None:
        (d / "nginx.conf").write_text(main_conf)
    try:
        _, diags = load_nginx(load_confdir(str(d)))
    except ConfigError as e:
        diags = e.diagnostics
    return [(g.level, g.message.replace(str(d), "D/conf").replace(str(tmp / "ngx" / "conf"), "D/conf"),
             os.path.basename(g.file) if g.file else None, g.line or None)
            for g in diags if not (g.hint or "").startswith(OWN)]


def _same(ngx: list[tuple], pf: list[tuple]) -> None:
    # nginx reports a few post-parse errors without a location, or at the end of the http
    # block of the harness's own nginx.conf (uwsgi_param values are compiled there); pyfront
    # names the directive's file:line on purpose. Those compare by level and message only.
    ngx = [(lv, msg, None, None) if f in (None, "nginx.conf") else (lv, msg, f, ln) for lv, msg, f, ln in ngx]
    pf_cmp = [(lv, msg, f, ln) if any(n[1] == msg and n[2] is not None for n in ngx) else (lv, msg, None, None)
              for lv, msg, f, ln in pf]
    assert pf_cmp == ngx


# The cases live in tests/corpus/nginx-conf/NAME.conf, with the real nginx's diagnostics
# recorded in NAME.expected (one JSON list per line) so tests/unit/test_nginx_corpus.py can
# check pyfront without nginx; here both are compared with the live nginx.
CORPUS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "corpus", "nginx-conf")
CASES = {n[:-5]: open(os.path.join(CORPUS, n), encoding="utf-8").read()
         for n in sorted(os.listdir(CORPUS)) if n.endswith(".conf")}


def _expected(name: str) -> list[tuple]:
    with open(os.path.join(CORPUS, name + ".expected"), encoding="utf-8") as f:
        return [tuple(json.loads(line)) for line in f if line.strip()]


@pytest.mark.parametrize("name", sorted(CASES))
def test_diagnostics_match_nginx(name, tmp_path):
    nginx = need_peer("nginx")
    site = CASES[name]
    ngx = _nginx_check(nginx, tmp_path, site)
    assert ngx == _expected(name), "the recorded corpus no longer matches nginx"
    pf = _pyfront_check(tmp_path, site)
    _same(ngx, pf)


def test_seed_block_diagnostics_exact(tmp_path):
    """The seed's server block, copied verbatim from the guide, gives exactly nginx's two lines."""
    nginx = need_peer("nginx")
    if os.path.exists(SEED):   # the guide itself is not shipped; SEED_BLOCK is its verbatim copy
        lines = open(SEED, encoding="utf-8").read().splitlines()[137:158]
        assert "\n".join(lines) + "\n" == SEED_BLOCK
    block = SEED_BLOCK
    ngx = _nginx_check(nginx, tmp_path, block)
    assert ngx == [("warn", 'server name "www.cnblogs.com/zzqit" has suspicious symbols', "site.conf", 3),
                   ("emerg", '"pid" directive is not allowed here', "site.conf", 4)]
    assert _pyfront_check(tmp_path, block) == ngx


def test_seed_block_passes_once_pid_is_moved(tmp_path):
    """Move `pid` to nginx.conf's main context (log paths under tmp): only the warning is left."""
    nginx = need_peer("nginx")
    logs = tmp_path / "var"
    logs.mkdir()
    block = SEED_BLOCK.replace("    pid        /var/run/nginx.pid;    #进程文件\n", "")
    block = block.replace("/var/log/nginx/", f"{logs}/")
    main = f"pid {logs}/nginx.pid;\n"
    ngx = _nginx_check(nginx, tmp_path, block, main_extra="")
    pf = _pyfront_check(tmp_path, block, main_conf=main)
    expected = [("warn", 'server name "www.cnblogs.com/zzqit" has suspicious symbols', "site.conf", 3)]
    assert ngx == expected
    assert pf == expected


# ---------------------------------------------------------------- full nginx.conf (main context)

def _temp_paths(d) -> str:
    return "".join(f"    {n}_temp_path {d}/tmp/{n};\n" for n in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))


MAIN_CASES = {
    "worker_processes_bad": "worker_processes abc;\nevents {}\n",
    "worker_processes_auto": "worker_processes auto;\nworker_rlimit_nofile 4096;\nevents {\n    worker_connections 64;\n    multi_accept on;\n    accept_mutex on;\n    accept_mutex_delay 100ms;\n    use epoll;\n}\n",
    "use_kqueue": "events {\n    use kqueue;\n}\n",
    "worker_connections_bad": "events {\n    worker_connections abc;\n}\n",
    "http_twice": "events {}\nhttp {\n{TEMP}}\nhttp {\n}\n",
    "pid_twice": "pid {D}/a.pid;\npid {D}/b.pid;\nevents {}\n",
    "listen_in_main": "listen 80;\nevents {}\n",
    "accept_mutex_bad": "events {\n    accept_mutex maybe;\n}\n",
    "cpu_affinity": "worker_processes 2;\nworker_cpu_affinity 01 10;\nevents {}\n",
    "cpu_affinity_auto": "worker_processes 2;\nworker_cpu_affinity auto;\nevents {}\n",
    "error_log_levels": "error_log {D}/logs/e.log warn;\nevents {}\n",
    "shutdown_timeout": "worker_shutdown_timeout 10s;\nevents {}\n",
    "server_in_main": "server {\n}\nevents {}\n",
    "cpu_affinity_bad_char": "worker_processes 2;\nworker_cpu_affinity 0102;\nevents {}\n",
    "cpu_affinity_auto_two_masks": "worker_cpu_affinity auto 01 10;\nevents {}\n",
    "cpu_affinity_auto_mask": "worker_processes 2;\nworker_cpu_affinity auto 0110;\nevents {}\n",
    "http_with_server": "events {}\nhttp {\n{TEMP}    access_log off;\n    server {\n        listen 8082;\n        location / {\n            return 200;\n        }\n    }\n}\n",
}


def _main_run(nginx, tmp, text):
    d = tmp / "ngxm"
    (d / "logs").mkdir(parents=True, exist_ok=True)
    (d / "tmp").mkdir(exist_ok=True)
    body = text.replace("{D}", str(d)).replace("{TEMP}", _temp_paths(d))
    if "pid " not in body:
        body = f"pid {d}/logs/nginx.pid;\n" + body.replace("\n", "\n", 1)
        first_shift = 1
    else:
        first_shift = 0
    (d / "nginx.conf").write_text(body)
    p = subprocess.run([nginx, "-t", "-p", f"{d}/", "-c", f"{d}/nginx.conf", "-e", f"{d}/logs/error.log"],
                       capture_output=True, text=True, errors="replace", timeout=30)
    ngx = []
    for line in p.stderr.splitlines():
        m = _LINE.match(line)
        if m and m.group(1) in ("emerg", "alert", "crit", "error", "warn", "notice"):
            ngx.append((m.group(1), m.group(2).replace(str(d), "D"),
                        os.path.basename(m.group(3)) if m.group(3) else None,
                        int(m.group(4)) - first_shift if m.group(4) else None))
    c = tmp / "pfm"
    c.mkdir()
    (c / "nginx.conf").write_text(text.replace("{D}", str(d)).replace("{TEMP}", _temp_paths(d)))
    try:
        _, diags = load_nginx(load_confdir(str(c)))
    except ConfigError as e:
        diags = e.diagnostics
    pf = [(g.level, g.message.replace(str(d), "D"), os.path.basename(g.file) if g.file else None, g.line or None)
          for g in diags if not (g.hint or "").startswith(OWN)]
    return ngx, pf


@pytest.mark.parametrize("name", sorted(MAIN_CASES))
def test_main_context_matches_nginx(name, tmp_path):
    nginx = need_peer("nginx")
    ngx, pf = _main_run(nginx, tmp_path, MAIN_CASES[name])
    _same(ngx, pf)
