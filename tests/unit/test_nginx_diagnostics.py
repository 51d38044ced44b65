"""Diagnostics: nginx's wording and order, plus pyfront's own warnings (marked as such)."""
import pytest

from pyfront.config.diagnostics import ConfigError
from pyfront.config.nginx import load_nginx_text
from pyfront.config.nginx_validate import OWN


def run(text):
    try:
        _, diags = load_nginx_text(text, "site.conf", prefix="/srv")
    except ConfigError as e:
        diags = e.diagnostics
    return [(d.level, d.message, d.line) for d in diags], diags


def test_first_emerg_stops_and_keeps_earlier_warnings():
    got, _ = run('server {\n server_name a/b;\n pid /x;\n foo;\n}\n')
    assert got == [("warn", 'server name "a/b" has suspicious symbols', 2),
                   ("emerg", '"pid" directive is not allowed here', 3)]


def test_format_is_nginx_like():
    _, diags = run("server {\n lisen 80;\n}\n")
    assert diags[-1].format() == 'pyfront: [emerg] unknown directive "lisen" in site.conf:2'


def test_unsupported_nginx_directive_is_an_error_with_a_hint():
    got, diags = run("server {\n listen 8080;\n ssl_certificate /x.pem;\n}\n")
    assert got == [("emerg", '"ssl_certificate" directive is not supported by pyfront', 3)]
    assert "TLS" in diags[-1].hint
    got, diags = run("server {\n location / {\n  rewrite ^ /x;\n }\n}\n")
    assert got[-1][1] == '"rewrite" directive is not supported by pyfront' and diags[-1].hint


def test_unknown_directive():
    assert run("server {\n lisen 80;\n}\n")[0] == [("emerg", 'unknown directive "lisen"', 2)]


def test_listen_ssl_is_unsupported_not_ignored():
    got, _ = run("server {\n listen 443 ssl;\n}\n")
    assert got == [("emerg", 'the "ssl" parameter of "listen" is not supported by pyfront', 2)]


def test_gzip_types_without_gzip_is_a_pyfront_warning():
    got, diags = run("server {\n gzip_types text/css;\n}\n")
    assert got == [("warn", '"gzip_types" has no effect because "gzip" is off', 2)]
    assert diags[0].hint.startswith(OWN)
    assert run("gzip on;\nserver {\n gzip_types text/css;\n}\n")[0] == []


def test_alias_trailing_slash_mismatch_is_a_pyfront_warning():
    got, diags = run("server {\n location /static {\n  alias /var/www/static/;\n }\n}\n")
    assert got == [("warn", 'location "/static" has no trailing slash but its alias "/var/www/static/" has one', 2)]
    assert diags[0].hint.startswith(OWN) and "traversal" in diags[0].hint
    assert run("server {\n location /static/ {\n  alias /var/www/static/;\n }\n}\n")[0] == []


def test_seed_block_warnings():
    seed = ("server {\n    listen 80;\n    server_name www.cnblogs.com/zzqit;\n"
            "    error_log  /var/log/nginx/error.log;\n    access_log /var/log/nginx/access.log main;\n"
            "    charset utf-8;\n    gzip_types text/plain image/png;\n"
            "    location / {\n        include uwsgi_params;\n        uwsgi_connect_timeout 30;\n"
            "        uwsgi_pass unix:///var/www/script/uwsgi.sock;\n    }\n"
            "    location /static/ {\n        alias /var/www/orange_web/static/;\n    }\n}\n")
    got, _ = run(seed)
    assert got == [("warn", 'server name "www.cnblogs.com/zzqit" has suspicious symbols', 3),
                   ("warn", '"gzip_types" has no effect because "gzip" is off', 7)]


def test_unknown_and_unsupported_variables():
    assert run("server {\n return 200 $nope;\n}\n")[0] == [("emerg", 'unknown "nope" variable', 2)]
    got, _ = run("server {\n add_header X $ssl_protocol;\n}\n")
    assert got == [("emerg", '"$ssl_protocol" variable is not supported by pyfront', 2)]
    assert run("server {\n add_header X $http_x_y$arg_q$cookie_c$1;\n}\n")[0] == []


def test_arbitrary_garbage_is_a_config_error():
    for text in ("\x00", "}", "{", '"', "server { location }", "server {{", "a 'b", "$", "server { listen ; }"):
        got, _ = run(text)
        assert got and got[-1][0] == "emerg", text


def test_non_utf8_bytes_in_messages_are_printable(tmp_path):
    from pyfront.config.nginx import load_nginx_files
    (tmp_path / "a.conf").write_bytes(b"server {\n \xff\xfe on;\n}\n")
    with pytest.raises(ConfigError) as e:
        load_nginx_files([str(tmp_path / "a.conf")])
    line = e.value.diagnostics[-1].format()
    line.encode("utf-8")          # printable on a UTF-8 terminal
    assert "unknown directive" in line and line.endswith("a.conf:2")


def test_bom_gets_a_hint():
    got, diags = run("\ufeffserver {\n}\n")
    assert got[0][1] == 'unknown directive "\ufeffserver"' and "byte order mark" in diags[0].hint


def test_not_allowed_here_says_where_it_belongs():
    _, diags = run("server {\n pid /var/run/nginx.pid;\n}\n")
    assert diags[-1].format() == ('pyfront: [emerg] "pid" directive is not allowed here in site.conf:2 '
                                  "(move it to nginx.conf's main context)")
    _, diags = run("server {\n uwsgi_pass 127.0.0.1:1;\n}\n")
    assert diags[-1].hint == "use it in location {}"
