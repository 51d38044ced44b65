"""`pyfront check`: the cross-layer checks between uwsgi_pass/proxy_pass and [uwsgi] apps."""
import subprocess

from tests.conftest import pyfront_cmd

SEED_LOCATION = """server {{
    listen 127.0.0.1:18080;
    server_name localhost;
    location / {{
        include uwsgi_params;
        uwsgi_connect_timeout 30;
        uwsgi_pass unix://{sock};
    }}
}}
"""


def check(d) -> tuple[int, str]:
    p = subprocess.run(pyfront_cmd("check", str(d)), capture_output=True, text=True, timeout=60)
    return p.returncode, p.stderr


def write(d, ini):
    (d / "app.py").write_text('def application(e, s):\n    s("200 OK", [])\n    return [b"hi"]\n')
    (d / "site.conf").write_text(SEED_LOCATION.format(sock=str(d / "uwsgi.sock")))
    (d / "uwsgi.ini").write_text("[uwsgi]\n" + ini.format(d=d))


def test_seed_mismatch_uwsgi_pass_vs_http_app_names_both_places(tmp_path):
    write(tmp_path, "http=127.0.0.1:8080\nchdir={d}\nwsgi-file=app.py\nprocesses=4\nthreads=2\nmaster=True\n")
    rc, err = check(tmp_path)
    assert rc == 0, err
    line = [ln for ln in err.splitlines() if "reaches no [uwsgi] app" in ln]
    assert line, err
    assert f"in {tmp_path}/site.conf:7" in line[0]
    assert f"listens on 127.0.0.1:8080 (HTTP) in {tmp_path}/uwsgi.ini:2" in line[0]


def test_matching_socket_is_quiet(tmp_path):
    write(tmp_path, "socket={d}/uwsgi.sock\nchdir={d}\nwsgi-file=app.py\n")
    rc, err = check(tmp_path)
    assert rc == 0 and "reaches" not in err and "harakiri" not in err, err


def test_app_speaking_http_on_the_socket(tmp_path):
    write(tmp_path, "http-socket={d}/uwsgi.sock\nchdir={d}\nwsgi-file=app.py\n")
    rc, err = check(tmp_path)
    assert 'which speaks HTTP (http-socket/http)' in err and f"uwsgi.ini:2" in err and "site.conf:7" in err, err


def test_read_timeout_shorter_than_harakiri(tmp_path):
    write(tmp_path, "socket={d}/uwsgi.sock\nchdir={d}\nwsgi-file=app.py\nharakiri=120\n")
    rc, err = check(tmp_path)
    assert rc == 0
    assert '"uwsgi_read_timeout" of location "/" (60s) is shorter than harakiri = 120' in err, err
    assert "uwsgi.ini:5" in err and "site.conf:7" in err
