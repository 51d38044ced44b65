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
                       capture_output=True, text=True, timeout=30)
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
    # nginx reports a few post-parse errors without a location; pyfront adds it on purpose.
    pf_cmp = [(lv, msg, f, ln) if any(n[1] == msg and n[2] is not None for n in ngx) else (lv, msg, None, None)
              for lv, msg, f, ln in pf]
    ngx_cmp = [(lv, msg, f, ln) if f is not None else (lv, msg, None, None) for lv, msg, f, ln in ngx]
    assert pf_cmp == ngx_cmp


CASES = {
    "seed_block": SEED_BLOCK,
    "unknown_directive": "server {\n    listen 8080;\n    foo bar;\n}\n",
    "missing_semicolon_eof": "server {\n    listen 8080\n",
    "extra_brace": "server {\n    listen 8080;\n}\n}\n",
    "missing_brace": "server {\n    listen 8080;\n    location / {\n    }\n",
    "brace_at_start": "server {\n    {\n    }\n}\n",
    "lone_semicolon": "server {\n    listen 8080;\n    ;\n}\n",
    "listen_no_args": "server {\n    listen;\n}\n",
    "flag_invalid": "server {\n    listen 8080;\n    sendfile maybe;\n}\n",
    "size_invalid": "server {\n    listen 8080;\n    client_max_body_size 1x;\n}\n",
    "time_invalid": "server {\n    listen 8080;\n    keepalive_timeout 1x;\n}\n",
    "unknown_log_format": "server {\n    listen 8080;\n    access_log /tmp/pf-never.log nosuch;\n}\n",
    "duplicate_flag": "server {\n    listen 8080;\n    sendfile on;\n    sendfile off;\n}\n",
    "duplicate_location": "server {\n    listen 8080;\n    location /a { }\n    location /a { }\n}\n",
    "duplicate_listen": "server {\n    listen 8080;\n    listen 8080;\n}\n",
    "duplicate_default_server": "server {\n    listen 8080 default_server;\n}\nserver {\n    listen 8080 default_server;\n}\n",
    "server_name_invalid": "server {\n    listen 8080;\n    server_name *a;\n}\n",
    "quote_then_char": 'server {\n    listen 8080;\n    root "a"b;\n}\n',
    "uwsgi_pass_in_server": "server {\n    listen 8080;\n    uwsgi_pass 127.0.0.1:3031;\n}\n",
    "uwsgi_pass_no_upstream": "server {\n    listen 8080;\n    location / {\n        uwsgi_pass backend;\n    }\n}\n",
    "upstream_empty": "upstream b {\n}\n",
    "upstream_bad_param": "upstream b {\n    server 127.0.0.1:3031 foo=1;\n}\n",
    "unknown_variable": "server {\n    listen 8080;\n    location / {\n        return 200 $nosuchvar;\n    }\n}\n",
    "types_brace": "types {\n    text/html html {\n    }\n}\n",
    "not_terminated": "server {\n    listen 8080;\n    add_header X a{c};\n}\n",
    "location_outside": "server {\n    listen 8080;\n    location /a {\n        location /b { }\n    }\n}\n",
    "named_nested": "server {\n    listen 8080;\n    location /a {\n        location @b { }\n    }\n}\n",
    "location_modifier": "server {\n    listen 8080;\n    location x /a { }\n}\n",
    "balance_redefined": "upstream u {\n    server 127.0.0.1:1;\n    least_conn;\n    ip_hash;\n}\n",
    "types_duplicate_ext": "types {\n    text/html htmlx;\n    text/plain htmlx;\n}\n",
    "conflicting_name": "server {\n    listen 8080;\n    server_name a;\n}\nserver {\n    listen 8080;\n    server_name a;\n}\n",
    "error_log_level": "server {\n    listen 8080;\n    error_log /tmp/pf-never.log bogus;\n}\n",
    "comp_level": "server {\n    listen 8080;\n    gzip_comp_level 10;\n}\n",
    "listen_port": "server {\n    listen 99999;\n}\n",
    "listen_param": "server {\n    listen 8080 foo;\n}\n",
    "error_page_code": "server {\n    listen 8080;\n    error_page 200 /x;\n}\n",
    "include_missing": "server {\n    listen 8080;\n    include nonexist.conf;\n}\n",
    "proxy_pass_prefix": "server {\n    listen 8080;\n    location / {\n        proxy_pass localhost;\n    }\n}\n",
    "upstream_keepalive_zero": "upstream u {\n    server 127.0.0.1:1;\n    keepalive 0;\n}\n",
    "expires_daily": "server {\n    listen 8080;\n    expires @25h;\n}\n",
    "main_directive_in_http": "worker_processes 2;\n",
    "events_in_http": "events { }\n",
    "try_files_one_arg": "server {\n    listen 8080;\n    try_files $uri;\n}\n",
    "return_bad_code": "server {\n    listen 8080;\n    return abc;\n}\n",
    "add_header_bad_param": "server {\n    listen 8080;\n    add_header X y sometimes;\n}\n",
    "uwsgi_param_bad_flag": "server {\n    listen 8080;\n    uwsgi_param A b if_empty;\n}\n",
    "unix_no_path": "server {\n    listen 8080;\n    location / {\n        uwsgi_pass unix:;\n    }\n}\n",
    "uwsgi_next_upstream_502": "server {\n    location / {\n        uwsgi_next_upstream error http_502;\n    }\n}\n",
    "proxy_next_upstream_bad": "server {\n    location / {\n        proxy_next_upstream error http_999;\n    }\n}\n",
    "gzip_proxied_bad": "server {\n    gzip_proxied expired sometimes;\n}\n",
    "alias_and_root": "server {\n    location /a/ {\n        root /tmp;\n        alias /tmp/;\n    }\n}\n",
    "alias_in_server": "server {\n    alias /tmp/;\n}\n",
    "alias_named": "server {\n    location @n {\n        alias /tmp/;\n    }\n}\n",
    "root_twice": "server {\n    root /a;\n    root /b;\n}\n",
    "index_empty": 'server {\n    index "";\n}\n',
    "charset_twice": "server {\n    charset utf-8;\n    charset off;\n}\n",
    "log_format_dup": "log_format combined '$remote_addr';\n",
    "log_format_in_server": "server {\n    log_format x '$remote_addr';\n}\n",
    "access_log_bad_param": "server {\n    access_log /tmp/pf-never.log combined foo=bar;\n}\n",
    "keepalive_timeout_3": "server {\n    keepalive_timeout 1 2 3;\n}\n",
    "upstream_dup": "upstream a {\n    server 127.0.0.1:1;\n}\nupstream a {\n    server 127.0.0.1:2;\n}\n",
    "upstream_weight_zero": "upstream a {\n    server 127.0.0.1:1 weight=0;\n}\n",
    "upstream_hash_bad": "upstream a {\n    hash $remote_addr sticky;\n    server 127.0.0.1:1;\n}\n",
    "server_in_location": "server {\n    location / {\n        server {\n        }\n    }\n}\n",
    "location_in_http": "location / {\n}\n",
    "quoted_escapes": "server {\n    add_header X \"a\\\"b\";\n    add_header Y 'c\\'d';\n    return 200 \"x\\ty\";\n}\n",
    "comment_hash_in_word": "server {\n    add_header X a#b;\n}\n",
    "variable_brace": "server {\n    add_header X ${host}a;\n    add_header Y a\\${host};\n}\n",
    "unterminated_quote": 'server {\n    add_header X "abc;\n}\n',
    "listen_unix": "server {\n    listen unix:/tmp/pf-x.sock;\n    listen unix:/tmp/pf-x.sock;\n}\n",
    "listen_options_twice": "server {\n    listen 8081 backlog=10;\n}\nserver {\n    listen 8081 backlog=20;\n}\n",
    "location_exact_nested": "server {\n    location = /a {\n        location /a { }\n    }\n}\n",
    "return_in_http": "return 200;\n",
    "stub_status_args": "server {\n    location / {\n        stub_status a b;\n    }\n}\n",
    "expires_modified": "server {\n    expires modified +1h;\n    location / {\n        expires epoch;\n    }\n}\n",
    "error_page_no_code": "server {\n    error_page =200 /x;\n}\n",
    "worker_processes_in_events": "server {\n    worker_connections 10;\n}\n",
    "prefix_in_regex_location": "server {\n    location ~ /a {\n        location /a/b { }\n    }\n}\n",
    "location_empty_exact": "server {\n    location = {\n    }\n}\n",
    "nested_exact_and_caret": "server {\n    location /a {\n        location = /a/x { }\n        location ^~ /a/y { }\n    }\n}\n",
    "listen_dup_then_default": "server {\n    listen 8080;\n    listen 8080 default_server;\n}\n",
    "listen_wildcard_and_addr": "server {\n    listen 80;\n}\nserver {\n    listen 127.0.0.1:80;\n}\n",
    "index_absolute_not_last": "server {\n    location / {\n        index a /b c;\n    }\n}\n",
    "alias_twice": "server {\n    root /a;\n    location / {\n        alias /b/;\n        alias /c/;\n    }\n}\n",
    "favicon_idiom": "server {\n    location = /favicon.ico {\n        log_not_found off;\n        access_log off;\n    }\n    absolute_redirect off;\n    port_in_redirect off;\n    server_name_in_redirect on;\n}\n",
    "log_not_found_bad": "server {\n    log_not_found yes;\n}\n",
    "var_dollar_at_end": 'server {\n    return 200 "a$";\n}\n',
    "var_open_brace": 'server {\n    return 200 "a${b";\n}\n',
    "var_empty_brace": 'server {\n    add_header X "a${}";\n}\n',
    "var_dollar_dash": 'server {\n    add_header X "a$-";\n}\n',
    "var_captures": 'server {\n    return 200 "$1x$2";\n}\n',
    "gzip_types_dup": "server {\n    gzip_types text/css text/css;\n}\n",
    "charset_types_dup_case": "server {\n    charset_types text/css TEXT/css;\n}\n",
    "types_twice_same_level": "server {\n    types {\n        text/a aa;\n    }\n    types {\n        text/b aa;\n    }\n}\n",
    "named_captures_are_variables": 'server {\n    server_name ~^(?<user>.+)\\.ex\\.net$;\n    location ~ ^/(?<sec>[a-z]+)/ {\n        return 200 "$user $sec $2";\n    }\n}\n',
    "upstream_host_not_found": "upstream u {\n    server nosuchhost.invalid:80;\n}\n",
    "pass_host_not_found": "server {\n    location / {\n        uwsgi_pass nosuchhost.invalid:80;\n    }\n}\n",
    "proxy_redirect_twice": "server {\n    location / {\n        proxy_redirect off;\n        proxy_redirect default;\n    }\n}\n",
    "bom": "\ufeffserver {\n}\n",
    "valid_full": """\
upstream app {
    least_conn;
    server 127.0.0.1:3031 weight=3 max_fails=2 fail_timeout=5s;
    server unix:/tmp/pf-app.sock backup;
    server 127.0.0.1:3033 down;
    keepalive 16;
}
upstream hashed {
    hash $request_uri consistent;
    server 127.0.0.1:3034;
}
server {
    listen 127.0.0.1:8080 default_server reuseport backlog=1024;
    listen [::1]:8080;
    server_name example.com *.example.com www.example.* .example.org ~^(?<u>.+)\\.example\\.net$ "";
    root /tmp/pf-www;
    index index.html index.htm;
    charset utf-8;
    gzip on;
    gzip_types text/css application/json;
    gzip_min_length 100;
    gzip_comp_level 5;
    gzip_vary on;
    gzip_static on;
    expires 1h;
    etag on;
    if_modified_since before;
    add_header X-Frame-Options DENY always;
    error_page 404 /404.html;
    error_page 500 502 503 504 =200 @fallback;
    client_max_body_size 10m;
    client_body_buffer_size 128k;
    client_body_timeout 30s;
    client_header_timeout 1m;
    large_client_header_buffers 8 16k;
    keepalive_timeout 30s 25;
    keepalive_requests 500;
    send_timeout 1m30s;
    open_file_cache max=1000 inactive=20s;
    open_file_cache_valid 30s;
    tcp_nopush on;
    server_tokens off;
    location = /exact { return 204; }
    location ^~ /static/ { alias /tmp/pf-static/; expires max; }
    location ~* \\.(png|jpg)$ { expires 30d; access_log off; }
    location / {
        try_files $uri $uri/ @app;
    }
    location @app {
        include uwsgi_params;
        uwsgi_param HTTP_X_REQUEST_START "t=${msec}";
        uwsgi_pass app;
        uwsgi_read_timeout 300;
        uwsgi_next_upstream error timeout http_503;
        uwsgi_next_upstream http_500;
        uwsgi_next_upstream_tries 3;
        uwsgi_buffering off;
        uwsgi_intercept_errors on;
        uwsgi_hide_header X-Powered-By;
    }
    location @fallback { return 200 "fallback\\n"; }
    location /proxy/ {
        proxy_pass http://127.0.0.1:9000/;
        proxy_http_version 1.1;
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header Connection "";
        proxy_redirect off;
    }
    location = /status { stub_status; }
    location /unix/ { uwsgi_pass unix:///tmp/pf-x.sock; }
    location /u2/ { uwsgi_pass uwsgi://127.0.0.1:3035; }
}
""",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_diagnostics_match_nginx(name, tmp_path):
    nginx = need_peer("nginx")
    site = CASES[name]
    ngx = _nginx_check(nginx, tmp_path, site)
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
                       capture_output=True, text=True, timeout=30)
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
