"""compile_front on configs parsed by pyfront.config.nginx: the C router sees what nginx would."""
import pytest

from pyfront._native import ffi, lib
from pyfront.config.compile import compile_front, plan_from_config
from pyfront.config.diagnostics import ConfigError
from pyfront.config.nginx import load_nginx_text

SITE = r"""
server {
    listen 127.0.0.1:8080;
    server_name example.com *.example.org;
    root /srv/www;
    location = / { return 200 "root"; }
    location / { }
    location ^~ /static/ { alias /srv/static/; expires 1h; }
    location ~ ^/api/\d+$ { return 204; }
    location ~* \.(png|jpg)$ { expires max; }
    location /nested/ { location ~ \.txt$ { } }
    location @fallback { return 404; }
}
server { listen 127.0.0.1:8080 default_server; server_name _; return 444; }
"""


def router(blob):
    err = ffi.new("char[512]")
    r = lib.pf_router_load(blob, len(blob), err, 512)
    assert r != ffi.NULL, ffi.string(err)
    return r


def test_locations_and_servers_from_nginx_syntax(tmp_path):
    cfg, diags = load_nginx_text(SITE, prefix=str(tmp_path))
    assert not [d for d in diags if d.is_error], diags
    blob = compile_front(cfg)
    servers, _ = plan_from_config(cfg)
    r = router(blob)
    a = lib.pf_router_addr_index(r, b"127.0.0.1:8080", 14)
    assert a >= 0
    assert lib.pf_router_find_server(r, a, b"example.com", 11) == 0
    assert lib.pf_router_find_server(r, a, b"x.example.org", 13) == 0
    assert lib.pf_router_find_server(r, a, b"other", 5) == 1          # default_server
    order = [l.pattern for l in servers[0].locations if l.modifier != "@"]

    def loc(uri):
        b = uri.encode()
        i = lib.pf_router_find_location(r, 0, b, len(b))
        return i

    ids = {}
    n = 0
    for l in servers[0].locations:
        if l.modifier == "@":
            continue
        ids[(l.modifier, l.pattern)] = n
        n += 1 + len(l.children)
    assert loc("/") == ids[("=", "/")]
    assert loc("/x.html") == ids[("", "/")]
    assert loc("/static/a.png") == ids[("^~", "/static/")]
    assert loc("/api/12") == ids[("~", r"^/api/\d+$")]
    assert loc("/api/x") == ids[("", "/")]
    assert loc("/img/A.PNG") == ids[("~*", r"\.(png|jpg)$")]
    assert loc("/nested/a.txt") == ids[("", "/nested/")] + 1
    assert order
    lib.pf_router_free(r)


def test_variables_in_root_are_refused(tmp_path):
    cfg, diags = load_nginx_text("server { listen 8080; root /srv/$host; }", prefix=str(tmp_path))
    with pytest.raises(ConfigError, match='variables in "root" are not supported'):
        compile_front(cfg)
