"""nginx syntax → FrontConfig: values, CONF_DIR rules and nginx's inheritance rules."""
import os

import pytest

from pyfront.config.confdir import load_confdir
from pyfront.config.diagnostics import ConfigError
from pyfront.config.nginx import load_nginx, load_nginx_files, load_nginx_text


def load(text, tmp_path=None):
    cfg, diags = load_nginx_text(text, "site.conf", prefix=str(tmp_path) if tmp_path else "/srv/conf")
    return cfg


def emerg(text):
    with pytest.raises(ConfigError) as e:
        load_nginx_text(text, "site.conf", prefix="/srv/conf")
    return [d for d in e.value.diagnostics if d.level == "emerg"][0]


def loc(cfg, path, srv=0):
    def walk(locs):
        for l in locs:
            if l.path == path:
                return l
            r = walk(l.locations)
            if r:
                return r
    return walk(cfg.http.servers[srv].locations)


# ---------------------------------------------------------------- prelude and CONF_DIR

def test_prelude_defaults_and_override_without_duplicate():
    cfg = load("server { listen 8080; }")
    h = cfg.http.settings
    assert h.sendfile is True and h.keepalive_timeout_ms == 65000
    assert h.default_type == "application/octet-stream"
    assert dict(h.types)["css"] == "text/css"
    assert {f.name for f in cfg.http.log_formats} >= {"combined", "main"}
    cfg = load("sendfile off;\nkeepalive_timeout 5s;\nserver { listen 8080; }")
    assert cfg.http.settings.sendfile is False and cfg.http.settings.keepalive_timeout_ms == 5000


def test_main_log_format_may_be_redefined_once():
    cfg = load("log_format main '$remote_addr';\nserver { listen 8080; access_log /tmp/a.log main; }")
    assert cfg.http.servers[0].settings.access_logs[0].format.format == "$remote_addr"
    assert emerg("log_format main 'a';\nlog_format main 'b';").message == 'duplicate "log_format" name "main"'


def test_confdir_files_in_name_order_and_nginx_conf_main(tmp_path):
    (tmp_path / "b.conf").write_text("server { listen 8081; }\n")
    (tmp_path / "a.conf").write_text("server { listen 8080; }\n")
    (tmp_path / "nginx.conf").write_text("worker_processes 3;\npid run/x.pid;\nevents { worker_connections 99; }\n")
    cfg, _ = load_nginx(load_confdir(str(tmp_path)))
    assert [s.listens[0].address.port for s in cfg.http.servers] == [8080, 8081]
    assert cfg.main.worker_processes == 3 and cfg.main.pid == str(tmp_path / "run/x.pid")
    assert cfg.events.worker_connections == 99
    assert cfg.main_file == str(tmp_path / "nginx.conf")
    assert cfg.http.settings.sendfile is True        # implicit http {} with the prelude


def test_nginx_conf_with_http_gets_the_other_files_at_its_end(tmp_path):
    (tmp_path / "site.conf").write_text("server { listen 8080; }\n")
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "x.conf").write_text("server { listen 8079; }\n")
    (tmp_path / "nginx.conf").write_text("events {}\nhttp {\n    include inc/*.conf;\n    gzip on;\n}\n")
    cfg, _ = load_nginx(load_confdir(str(tmp_path)))
    assert [s.listens[0].address.port for s in cfg.http.servers] == [8079, 8080]
    assert cfg.http.settings.gzip is True
    assert cfg.http.settings.sendfile is False       # no prelude: nginx.conf is complete


def test_nginx_conf_including_a_confdir_file_reads_it_once(tmp_path):
    (tmp_path / "site.conf").write_text("server { listen 8080; }\n")
    (tmp_path / "nginx.conf").write_text("events {}\nhttp {\n    include site.conf;\n}\n")
    cfg, _ = load_nginx(load_confdir(str(tmp_path)))
    assert len(cfg.http.servers) == 1


def test_include_relative_to_including_file_glob_and_builtins(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "p1.conf").write_text("uwsgi_param A 1;\n")
    (sub / "p2.conf").write_text("uwsgi_param B 2;\n")
    (sub / "loc.conf").write_text("location / { include p*.conf; uwsgi_pass 127.0.0.1:3031; }\n")
    (tmp_path / "site.conf").write_text("server { listen 8080; include sub/loc.conf;\n"
                                        " location /u { include uwsgi_params; uwsgi_pass 127.0.0.1:1; } }\n")
    cfg, _ = load_nginx_files([str(tmp_path / "site.conf")])
    assert [p.name for p in loc(cfg, "/").settings.uwsgi.params] == ["A", "B"]
    names = [p.name for p in loc(cfg, "/u").settings.uwsgi.params]
    assert names[:3] == ["QUERY_STRING", "REQUEST_METHOD", "CONTENT_TYPE"] and names[-1] == "SERVER_NAME"
    assert [p.name for p in loc(cfg, "/u").settings.uwsgi.params if p.if_not_empty] == ["HTTPS"]


def test_include_missing_file_is_nginx_open_error(tmp_path):
    (tmp_path / "site.conf").write_text("server {\n include nope.conf;\n}\n")
    with pytest.raises(ConfigError) as e:
        load_nginx_files([str(tmp_path / "site.conf")])
    d = e.value.diagnostics[-1]
    assert d.message == f'open() "{tmp_path}/nope.conf" failed (2: No such file or directory)'
    assert (d.file, d.line) == (str(tmp_path / "site.conf"), 2)


def test_include_loop_is_an_error_not_a_crash(tmp_path):
    (tmp_path / "a.conf").write_text("include a.conf;\n")
    with pytest.raises(ConfigError) as e:
        load_nginx_files([str(tmp_path / "a.conf")])
    assert "include nesting too deep" in e.value.diagnostics[-1].message


# ---------------------------------------------------------------- values

def test_main_and_events_values(tmp_path):
    (tmp_path / "nginx.conf").write_text(
        "worker_processes auto;\nworker_cpu_affinity auto;\nworker_rlimit_nofile 8192;\n"
        "worker_shutdown_timeout 1m;\nerror_log stderr warn;\nuser www-data;\n"
        "events { accept_mutex on; accept_mutex_delay 100ms; multi_accept on; use epoll; }\n")
    cfg, _ = load_nginx(load_confdir(str(tmp_path)))
    m = cfg.main
    assert m.worker_processes_auto and m.worker_processes == len(os.sched_getaffinity(0))
    assert m.worker_cpu_affinity.auto and m.worker_cpu_affinity.cpus_for(1, 4) == (1,)
    assert m.worker_rlimit_nofile == 8192 and m.worker_shutdown_timeout_ms == 60000
    assert (m.error_logs[0].path, m.error_logs[0].level) == ("stderr", "warn")
    assert m.user == ("www-data", "www-data")
    e = cfg.events
    assert (e.accept_mutex, e.accept_mutex_delay_ms, e.multi_accept, e.use) == (True, 100, True, "epoll")


def test_cpu_affinity_masks():
    from pyfront.config.model import CpuAffinity
    a = CpuAffinity(False, (0b0101, 0b1010))
    assert a.cpus_for(0, 4) == (0, 2) and a.cpus_for(1, 4) == (1, 3) and a.cpus_for(5, 4) == (1, 3)


def test_listen_forms():
    cfg = load("server { listen 80; listen *:81; listen 127.0.0.1; listen [::]:82 ipv6only=off;"
               " listen [::1]:83 default_server reuseport backlog=100; listen unix:/run/x.sock;"
               " listen localhost:84; }")
    ls = cfg.http.servers[0].listens
    assert [l.text for l in ls] == ["0.0.0.0:80", "0.0.0.0:81", "127.0.0.1:80", "[::]:82", "[::1]:83",
                                    "unix:/run/x.sock", "127.0.0.1:84"]
    assert ls[3].ipv6only is False
    assert (ls[4].default_server, ls[4].reuseport, ls[4].backlog) == (True, True, 100)
    assert ls[5].address.unix_path == "/run/x.sock"
    assert ls[0].line == 1 and ls[0].file == "site.conf"


def test_implicit_listen():
    l = load("server { }").http.servers[0].listens[0]
    assert l.implicit and l.address.port == (80 if os.geteuid() == 0 else 8000)


def test_server_names():
    s = load('server { server_name Example.COM *.a.com .b.org www.c.* ~^(?<u>.+)\\.d\\.net$ _ ""; }').http.servers[0]
    assert [(n.text, n.kind, n.dot_form) for n in s.server_names] == [
        ("example.com", "exact", False), ("*.a.com", "prefix", False), (".b.org", "prefix", True),
        ("www.c.*", "suffix", False), ("~^(?<u>.+)\\.d\\.net$", "regex", False), ("_", "exact", False),
        ("", "exact", False)]
    assert s.server_names[4].pattern == "^(?<u>.+)\\.d\\.net$"
    assert load("server { }").http.servers[0].server_names[0].text == ""


def test_locations_modifiers_and_nesting():
    cfg = load("server { location = /x { } location ^~ /s/ { } location ~* \\.png$ { } location @n { }"
               " location /a/ { location /a/b/ { } location ~ ^/a/c { } } }")
    locs = cfg.http.servers[0].locations
    assert [(l.modifier, l.path) for l in locs] == [("=", "/x"), ("^~", "/s/"), ("~*", "\\.png$"), ("@", "n"), ("", "/a/")]
    assert [l.name for l in locs[4].locations] == ["/a/b/", "~ ^/a/c"]
    assert locs[3].name == "@n" and locs[2].is_regex
    assert load("server { location =/y { } }").http.servers[0].locations[0].modifier == "="


def test_sizes_and_times():
    s = load("server { client_max_body_size 10m; client_body_buffer_size 128k; large_client_header_buffers 8 16k;"
             " keepalive_timeout 1m30s 25; send_timeout 500ms; client_header_timeout 2h; }").http.servers[0]
    assert s.settings.client_max_body_size == 10 * 1024 * 1024
    assert s.settings.client_body_buffer_size == 128 * 1024
    assert s.large_client_header_buffers == (8, 16384)
    assert (s.settings.keepalive_timeout_ms, s.settings.keepalive_header_timeout_s) == (90000, 25)
    assert s.settings.send_timeout_ms == 500 and s.client_header_timeout_ms == 7200000


def test_defaults_are_nginx():
    s = load("server { location / { } }").http.servers[0].locations[0].settings
    assert s.etag and s.tcp_nodelay and not s.gzip and s.gzip_types == ("text/html",)
    assert s.client_max_body_size == 1048576 and s.keepalive_requests == 1000
    assert s.index == ("index.html",) and s.root == "/srv/conf/html" and s.server_tokens == "on"
    assert s.uwsgi.next_upstream == ("error", "timeout") and s.uwsgi.read_timeout_ms == 60000
    assert s.access_logs[0].implicit and s.access_logs[0].format.name == "combined"


def test_upstream_block():
    cfg = load("upstream app { least_conn; server 127.0.0.1:3031 weight=3 max_fails=2 fail_timeout=5s;"
               " server unix:/tmp/a.sock backup; server 10.0.0.1 down max_conns=7; keepalive 8; }\n"
               "upstream h { hash $request_uri consistent; server 127.0.0.1:1; }\n"
               "server { location / { uwsgi_pass app; } location /h { proxy_pass http://h/x; } }")
    app = cfg.http.upstream("app")
    assert app.method == "least_conn" and app.keepalive == 8
    s0, s1, s2 = app.servers
    assert (s0.address.text, s0.weight, s0.max_fails, s0.fail_timeout_ms) == ("127.0.0.1:3031", 3, 2, 5000)
    assert s1.address.unix_path == "/tmp/a.sock" and s1.backup
    assert s2.address.port == 80 and s2.down and s2.max_conns == 7
    h = cfg.http.upstream("h")
    assert (h.method, h.hash_key, h.hash_consistent) == ("hash", "$request_uri", True)
    t = loc(cfg, "/").handler.target
    assert (t.upstream, t.scheme) == ("app", "uwsgi")
    t = loc(cfg, "/h").handler.target
    assert (t.upstream, t.uri, t.scheme) == ("h", "/x", "http")


@pytest.mark.parametrize("target,kind,text,path,port", [
    ("unix:/run/a.sock", "unix", "unix:/run/a.sock", "/run/a.sock", None),
    ("unix:///var/www/x.sock", "unix", "unix:///var/www/x.sock", "///var/www/x.sock", None),
    ("127.0.0.1:3031", "inet", "127.0.0.1:3031", None, 3031),
    ("uwsgi://127.0.0.1:3031", "inet", "127.0.0.1:3031", None, 3031),
    ("[::1]:3031", "inet", "[::1]:3031", None, 3031),
    ("localhost:3031", "name", "localhost:3031", None, 3031),
])
def test_uwsgi_pass_forms(target, kind, text, path, port):
    h = load(f"server {{ location / {{ uwsgi_pass {target}; }} }}").http.servers[0].locations[0].handler
    a = h.target.address
    assert (h.kind, a.kind, a.text, a.unix_path, a.port) == ("uwsgi", kind, text, path, port)


def test_proxy_pass_forms():
    cfg = load("server { location /a { proxy_pass http://127.0.0.1:9000/; }"
               " location /b { proxy_pass http://unix:/tmp/b.sock:/app/; } location /c { proxy_pass http://127.0.0.1; } }")
    a, b, c = (l.handler.target for l in cfg.http.servers[0].locations)
    assert (a.address.text, a.uri) == ("127.0.0.1:9000", "/")
    assert (b.address.unix_path, b.uri) == ("/tmp/b.sock", "/app/")
    assert (c.address.port, c.uri) == (80, None)


def test_stub_status_and_return():
    cfg = load('server { return 301 https://x$request_uri; location = /s { stub_status; }'
               ' location /r { return 404; } location /t { return 200 "ok\\n"; } }')
    srv = cfg.http.servers[0]
    assert (srv.return_.code, srv.return_.text) == (301, "https://x$request_uri")
    assert srv.locations[0].handler.kind == "stub_status"
    assert srv.locations[1].return_.code == 404 and srv.locations[2].return_.text == "ok\n"


# ---------------------------------------------------------------- inheritance (nginx's merge rules)

def test_add_header_level_with_own_drops_inherited():
    cfg = load("add_header H1 a;\nserver { add_header S1 b always;"
               " location /own { add_header L1 c; } location /inh { } }")
    assert [h.name for h in loc(cfg, "/own").settings.add_headers] == ["L1"]
    inh = loc(cfg, "/inh").settings.add_headers
    assert [(h.name, h.always) for h in inh] == [("S1", True)]


def test_uwsgi_param_level_with_own_drops_inherited_and_warns():
    cfg, diags = load_nginx_text("server {\n include uwsgi_params;\n location / {\n  uwsgi_param X 1;\n"
                                 "  uwsgi_pass 127.0.0.1:1;\n }\n location /b { uwsgi_pass 127.0.0.1:1; }\n}\n",
                                 "site.conf", prefix="/srv")
    own = loc(cfg, "/").settings.uwsgi
    assert [p.name for p in own.params] == ["X"] and own.params_inherited is False
    inh = loc(cfg, "/b").settings.uwsgi
    assert len(inh.params) == 14 and inh.params_inherited is True
    w = [d for d in diags if "drops" in d.message]
    assert len(w) == 1 and (w[0].file, w[0].line) == ("site.conf", 4)
    assert w[0].message.startswith('"uwsgi_param" in location "/" drops 14 uwsgi_param inherited')
    assert w[0].hint.startswith("pyfront's own check:")


def test_uwsgi_param_reincluded_or_server_level():
    _, diags = load_nginx_text("server {\n include uwsgi_params;\n location / {\n  uwsgi_param X 1;\n"
                               "  include uwsgi_params;\n  uwsgi_pass 127.0.0.1:1;\n }\n}\n", "site.conf", prefix="/srv")
    assert not [d for d in diags if "drops" in d.message]
    _, diags = load_nginx_text("include uwsgi_params;\nserver {\n uwsgi_param X 1;\n}\n", "site.conf", prefix="/srv")
    assert [d.message[:40] for d in diags if "drops" in d.message] == ['"uwsgi_param" in this server drops 14 uw']


def test_proxy_set_header_defaults():
    cfg = load("server { location /a { proxy_pass http://127.0.0.1:1; }"
               " location /b { proxy_set_header Host $host; proxy_set_header X-Real-IP $remote_addr;"
               " proxy_pass http://127.0.0.1:1; } }")
    assert [(p.name, p.value) for p in loc(cfg, "/a").settings.proxy.params] == [
        ("Host", "$proxy_host"), ("Connection", "close")]
    assert [(p.name, p.value) for p in loc(cfg, "/b").settings.proxy.params] == [
        ("Host", "$host"), ("X-Real-IP", "$remote_addr"), ("Connection", "close")]


def test_root_alias_inheritance():
    cfg = load("root /www;\nserver { location /a/ { alias /data/a/; location /a/b/ { } }"
               " location /c/ { root /c; } location /d/ { } }")
    assert loc(cfg, "/a/").settings.alias == "/data/a/"
    assert loc(cfg, "/a/b/").settings.alias == "/data/a/"       # nginx merges alias into nested locations
    assert loc(cfg, "/c/").settings.root == "/c" and loc(cfg, "/c/").settings.alias is None
    assert loc(cfg, "/d/").settings.root == "/www"


def test_try_files_and_return_not_inherited():
    cfg = load("server { try_files $uri =404; return 403; location / { } }")
    srv = cfg.http.servers[0]
    assert srv.settings.try_files == ("$uri", "=404")
    assert srv.locations[0].settings.try_files is None and srv.locations[0].return_ is None


def test_error_page_access_log_and_types_inheritance():
    cfg = load("error_page 404 /404.html;\nserver { access_log off; location /a { error_page 500 =200 @x; }"
               " location /b { access_log /tmp/b.log main buffer=32k flush=5s; } location /c { types { text/x c; } } }")
    assert [e.codes for e in loc(cfg, "/a").settings.error_pages] == [(500,)]
    assert loc(cfg, "/a").settings.error_pages[0].overwrite == 200
    assert [e.codes for e in cfg.http.servers[0].settings.error_pages] == [(404,)]
    assert cfg.http.servers[0].settings.access_log_off and loc(cfg, "/a").settings.access_log_off
    b = loc(cfg, "/b").settings
    assert not b.access_log_off and (b.access_logs[0].buffer, b.access_logs[0].flush_ms) == (32768, 5000)
    assert loc(cfg, "/c").settings.types == (("c", "text/x"),)


def test_gzip_types_and_expires():
    cfg = load("server { gzip on; gzip_types text/css application/json; expires 1h;"
               " location /e { expires epoch; } location /m { expires modified -30s; } location /d { expires @15h30m; } }")
    s = cfg.http.servers[0].settings
    assert s.gzip_types == ("text/html", "text/css", "application/json")
    assert (s.expires.kind, s.expires.ms) == ("time", 3600000)
    assert loc(cfg, "/e").settings.expires.kind == "epoch"
    assert (loc(cfg, "/m").settings.expires.kind, loc(cfg, "/m").settings.expires.ms) == ("modified", -30000)
    assert (loc(cfg, "/d").settings.expires.kind, loc(cfg, "/d").settings.expires.ms) == ("daily", 55800000)


def test_open_file_cache():
    s = load("open_file_cache max=1000 inactive=20s;\nopen_file_cache_valid 30s;\nserver { }").http.servers[0].settings
    assert (s.open_file_cache.max, s.open_file_cache.inactive_ms, s.open_file_cache_valid_ms) == (1000, 20000, 30000)
    assert load("server { open_file_cache off; }").http.servers[0].settings.open_file_cache is None


def test_model_is_frozen_and_hashable():
    cfg = load("server { location / { add_header A b; } }")
    with pytest.raises(Exception):
        cfg.http.servers[0].settings.sendfile = False
    hash(cfg)


def test_every_node_has_file_and_line():
    cfg = load("server {\n listen 8080;\n location / {\n  uwsgi_pass 127.0.0.1:1;\n }\n}\n")
    s = cfg.http.servers[0]
    assert (s.file, s.line) == ("site.conf", 1)
    assert (s.locations[0].file, s.locations[0].line) == ("site.conf", 3)
    assert (s.locations[0].handler.file, s.locations[0].handler.line) == ("site.conf", 4)


def test_front_config_helpers():
    cfg = load("upstream u { server 127.0.0.1:1; }\nserver { listen 8080; location / { uwsgi_pass unix:/a.sock;"
               " location /x/ { proxy_pass http://u; } } }\nserver { listen 8080; listen 8081; }")
    assert [l.path for _, l in cfg.locations()] == ["/", "/x/"]
    assert [t.text for _, _, t in cfg.pass_targets()] == ["unix:/a.sock", "http://u"]
    assert cfg.listen_addresses() == ("0.0.0.0:8080", "0.0.0.0:8081")


def test_reference_matcher_order():
    from pyfront.config.nginx_match import find_location, find_server, named_location
    cfg = load("server { listen 127.0.0.1:8080; server_name a.test *.b.test; location = / { } location / { }"
               " location ^~ /s/ { } location ~ \\.png$ { } location /d/ { location ~ \\.txt$ { } } location @n { } }\n"
               "server { listen 127.0.0.1:8080 default_server; server_name ~^(?<x>.+)\\.r\\.test$; }")
    s0, s1 = cfg.http.servers
    assert find_server(cfg, "127.0.0.1:8080", "A.TEST:8080") is s0
    assert find_server(cfg, "127.0.0.1:8080", "x.b.test") is s0
    assert find_server(cfg, "127.0.0.1:8080", "q.r.test") is s1
    assert find_server(cfg, "127.0.0.1:8080", "nope") is s1          # default_server
    assert find_server(cfg, "127.0.0.1:9", "a.test") is None
    name = lambda uri: find_location(s0, uri).name
    assert name("/") == "= /" and name("/x") == "/" and name("/s/a.png") == "^~ /s/"
    assert name("/a.png") == "~ \\.png$" and name("/d/a.txt") == "~ \\.txt$" and name("/d/a.png") == "~ \\.png$"
    assert named_location(s0, "@n").path == "n" and find_location(s1, "/") is None


def test_render_effective_is_loadable_and_shows_inherited_values():
    from pyfront.config.nginx_dump import render_effective
    text = ("upstream app { least_conn; server 127.0.0.1:3031 weight=2; keepalive 4; }\n"
            "server {\n listen 127.0.0.1:8080 default_server;\n server_name a.test;\n add_header X-A 1 always;\n"
            " include uwsgi_params;\n uwsgi_read_timeout 5m;\n"
            " location / { uwsgi_pass app; }\n location /s/ { alias /srv/s/; expires 1d; gzip on; }\n}\n")
    cfg = load(text)
    out = render_effective(cfg)
    assert "uwsgi_read_timeout 5m;" in out and "least_conn;" in out
    loc_block = out[out.index("location / {"):out.index("location /s/")]
    assert "add_header X-A 1 always;" in loc_block and "uwsgi_pass app;" in loc_block
    body = out.split("http {", 1)[1].rsplit("}", 1)[0]
    again = load(body)
    assert [l.name for _, l in again.locations()] == [l.name for _, l in cfg.locations()]
    assert loc(again, "/").settings.uwsgi.read_timeout_ms == 300000


def test_http_level_types_add_to_mime_types_and_blocks_add_up():
    cfg = load("types { application/wasm wasm; }\nserver { types { text/a a; } types { text/b b; } }")
    t = dict(cfg.http.settings.types)
    assert t["wasm"] == "application/wasm" and t["css"] == "text/css"
    assert dict(cfg.http.servers[0].settings.types) == {"a": "text/a", "b": "text/b"}


def test_salvage_pid_from_a_broken_nginx_conf(tmp_path):
    from pyfront.config.nginx import salvage_pid
    (tmp_path / "nginx.conf").write_text("worker_processes 1;\npid run/x.pid;\nhttp {\n bogus on;\n server { pid /no; }\n}\n")
    cd = load_confdir(str(tmp_path))
    with pytest.raises(ConfigError):
        load_nginx(cd)
    assert salvage_pid(cd) == str(tmp_path / "run/x.pid")


def test_host_names_resolved_at_load_as_nginx_does():
    cfg = load("upstream u { server localhost:3031; }\nserver { location / { uwsgi_pass localhost:3032; } }")
    assert "127.0.0.1" in cfg.http.upstream("u").servers[0].address.resolved
    assert "127.0.0.1" in cfg.http.servers[0].locations[0].handler.target.address.resolved
    assert emerg("upstream u {\n server nosuchhost.invalid:80;\n}").message == \
        'host not found in upstream "nosuchhost.invalid:80"'
    d = emerg("server {\n location / {\n  uwsgi_pass nosuchhost.invalid:80;\n }\n}")
    assert (d.message, d.line) == ('host not found in upstream "nosuchhost.invalid"', 3)


def test_proxy_pass_without_port_uses_80_unless_an_upstream_has_the_name():
    cfg = load("upstream b { server 127.0.0.1:9; }\nserver { location /a { proxy_pass http://localhost; }"
               " location /b { proxy_pass http://b; } location /c { proxy_pass http://127.0.0.1; } }")
    a, b, c = (l.handler.target for l in cfg.http.servers[0].locations)
    assert (a.upstream, a.address.text, a.address.port) == (None, "localhost:80", 80) and "127.0.0.1" in a.address.resolved
    assert (b.upstream, b.address.port) == ("b", None)
    assert (c.upstream, c.address.text) == (None, "127.0.0.1:80")
    assert emerg("server {\n location / {\n  uwsgi_pass 127.0.0.1;\n }\n}").message == 'no port in upstream "127.0.0.1"'


def test_include_falls_back_to_confdir_like_nginx(tmp_path):
    """Debian layout: sites-enabled/x includes snippets/y.conf, which nginx finds under its prefix."""
    (tmp_path / "snippets").mkdir()
    (tmp_path / "snippets" / "y.conf").write_text("add_header X-Snippet 1;\n")
    (tmp_path / "sites-enabled").mkdir()
    (tmp_path / "sites-enabled" / "x").write_text("server {\n listen 8080;\n include snippets/y.conf;\n}\n")
    (tmp_path / "nginx.conf").write_text("events {}\nhttp {\n include sites-enabled/*;\n}\n")
    cfg, _ = load_nginx(load_confdir(str(tmp_path)))
    assert [h.name for h in cfg.http.servers[0].settings.add_headers] == ["X-Snippet"]
