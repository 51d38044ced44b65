"""The seed's location block, verbatim, under `pyfront serve` with its [uwsgi] app."""
import time

from tests.conftest import free_port, pyfront_cmd, wait_for_port
from tests.integration.app_support import http_request

SITE = """server {{
    listen 127.0.0.1:{port};
    server_name localhost;
    location / {{ include uwsgi_params; uwsgi_connect_timeout 30; uwsgi_pass unix://{sock}; }}
}}
"""


def test_seed_location_verbatim_with_three_slashes(procs, tmp_path):
    port = free_port()
    sock = str(tmp_path / "uwsgi.sock")            # "unix://" + "/abs" = nginx's unix:///path form
    (tmp_path / "site.conf").write_text(SITE.format(port=port, sock=sock))
    (tmp_path / "app.py").write_text(
        'def application(environ, start_response):\n'
        '    start_response("200 OK", [("Content-Type", "text/plain")])\n'
        '    return [("hello " + environ["PATH_INFO"] + " " + environ["SERVER_NAME"]).encode()]\n')
    (tmp_path / "uwsgi.ini").write_text(f"[uwsgi]\nsocket={sock}\nchdir={tmp_path}\nwsgi-file=app.py\n"
                                        "processes=2\nthreads=2\nmaster=True\n")
    (tmp_path / "logs").mkdir()                     # nginx's default logs/access.log lives there
    p = procs(pyfront_cmd("serve", str(tmp_path)))
    wait_for_port(port, proc=p.p)
    deadline = time.monotonic() + 20
    while True:                                      # the app may still be loading: 502 until then
        status, _, body = http_request(port, "GET", "/seed", headers={"Host": "localhost"})
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert (status, body) == (200, b"hello /seed localhost")
