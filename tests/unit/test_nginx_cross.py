"""Cross-layer checks: uwsgi_pass / proxy_pass targets against the app servers of CONF_DIR."""
from pyfront.config.diagnostics import Report
from pyfront.config.nginx import load_nginx_text
from pyfront.config.nginx_validate import OWN, Endpoint, cross_check, endpoints_from_apps


def check(text, endpoints):
    cfg, _ = load_nginx_text(text, "site.conf", prefix="/srv")
    r = Report()
    cross_check(cfg, endpoints, r)
    return [(d.level, d.message, d.line) for d in r.diagnostics], r.diagnostics


SEED = ("server {\n    listen 80;\n    location / {\n        include uwsgi_params;\n"
        "        uwsgi_pass unix:///var/www/script/uwsgi.sock;\n    }\n}\n")


def test_seed_mismatch_names_both_files():
    ep = Endpoint("uwsgi", "http", None, "127.0.0.1", 8080, "127.0.0.1:8080", 0, "/srv/uwsgi.ini", 1)
    got, diags = check(SEED, [ep])
    assert got == [("warn", '"uwsgi_pass" target "unix:///var/www/script/uwsgi.sock" is served by no app '
                    "in this directory", 5)]
    assert "/srv/uwsgi.ini:1" in diags[0].hint and "http-socket=127.0.0.1:8080" in diags[0].hint
    assert diags[0].hint.startswith(OWN)


def test_matching_unix_socket_is_quiet_and_slashes_do_not_matter():
    ep = Endpoint("app", "uwsgi", "/var/www/script/uwsgi.sock", address="/var/www/script/uwsgi.sock",
                  file="/srv/app.ini", line=1)
    assert check(SEED, [ep])[0] == []


def test_protocol_mismatch_is_an_error():
    ep = Endpoint("app", "http", None, "0.0.0.0", 8080, ":8080", 0, "/srv/app.ini", 3)
    got, _ = check("server {\n location / {\n  uwsgi_pass 127.0.0.1:8080;\n }\n}\n", [ep])
    assert got == [("error", '"uwsgi_pass" speaks uwsgi to "127.0.0.1:8080", but app "app" serves HTTP '
                    "(http-socket= / http=) there (/srv/app.ini:3)", 3)]
    ep = Endpoint("app", "uwsgi", None, "127.0.0.1", 3031, "127.0.0.1:3031", 0, "/srv/app.ini", 3)
    got, _ = check("server {\n location / {\n  proxy_pass http://localhost:3031;\n }\n}\n", [ep])
    assert got[0][0] == "error" and "speaks http" in got[0][1]


def test_upstream_servers_and_harakiri():
    ep = Endpoint("app", "uwsgi", "/run/a.sock", address="/run/a.sock", harakiri_s=90, file="/srv/a.ini", line=1)
    got, _ = check("upstream u {\n server unix:/run/a.sock;\n}\nserver {\n location / {\n  uwsgi_pass u;\n }\n"
                   " location /slow {\n  uwsgi_read_timeout 5m;\n  uwsgi_pass u;\n }\n}\n", [ep])
    assert got == [("warn", '"uwsgi_read_timeout" (60s) is shorter than harakiri 90 of app "app" (/srv/a.ini:1)', 5)]


def test_endpoints_from_app_configs():
    import socket
    from types import SimpleNamespace as NS
    app = NS(name="a", file="/srv/a.ini", line=2, harakiri=30, listen=(
        NS(address="/run/a.sock", protocol="uwsgi", family=socket.AF_UNIX, target="/run/a.sock"),
        NS(address=":8000", protocol="http", family=socket.AF_INET, target=("0.0.0.0", 8000))))
    eps = endpoints_from_apps([app])
    assert [(e.protocol, e.unix_path, e.port, e.harakiri_s) for e in eps] == [
        ("uwsgi", "/run/a.sock", None, 30), ("http", None, 8000, 30)]


def test_seed_confdir_end_to_end_with_the_app_layer(tmp_path):
    """The seed's nginx block and uwsgi.ini in one CONF_DIR: the mismatch is reported with both places."""
    from pyfront.app.options import load_app
    from pyfront.config.confdir import load_confdir
    from pyfront.config.nginx import load_nginx
    (tmp_path / "site.conf").write_text(SEED)
    (tmp_path / "uwsgi.ini").write_text("[uwsgi]\nhttp=127.0.0.1:8080\nchdir=%d\nwsgi-file=app.py\n"
                                        "processes=4\nthreads=2\nmaster=True\n")
    (tmp_path / "app.py").write_text("def application(e, s):\n    s('200 OK', [])\n    return [b'']\n")
    cd = load_confdir(str(tmp_path))
    r = Report()
    apps = [a for a in (load_app(s, r) for s in cd.uwsgi_sections) if a is not None]
    cfg, _ = load_nginx(cd)
    cross_check(cfg, endpoints_from_apps(apps), r)
    w = [d for d in r.diagnostics if "served by no app" in d.message]
    assert len(w) == 1 and w[0].line == 5 and f"{tmp_path}/uwsgi.ini:1" in w[0].hint
