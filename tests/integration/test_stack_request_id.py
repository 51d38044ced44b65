"""$request_id: set by the front (16 random bytes in hex, as nginx), shown by log_format and
passed to the app as HTTP_X_REQUEST_ID unless the client sent its own X-Request-Id."""
import http.client
import re
import signal

from tests.conftest import free_port, pyfront_cmd, wait_for_port
from tests.integration.test_master_process import wait_until

ECHO = """def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ.get("HTTP_X_REQUEST_ID", "-").encode()]
"""


def get(port, path="/", headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def test_request_id_reaches_the_app_and_the_access_log(tmp_path, procs):
    front = free_port()
    d = tmp_path / "c"
    d.mkdir()
    sock, log = d / "app.sock", d / "access.log"
    (d / "site.conf").write_text(f"""log_format rid '$request_id $status $request_uri';
server {{
    listen 127.0.0.1:{front};
    access_log {log} rid;
    location / {{ include uwsgi_params; uwsgi_pass unix:{sock}; }}
    location = /explicit {{ include uwsgi_params; uwsgi_param HTTP_X_REQUEST_ID fixed; uwsgi_pass unix:{sock}; }}
}}
""")
    (d / "app.py").write_text(ECHO)
    (d / "app.ini").write_text(f"[uwsgi]\nsocket = {sock}\nchdir = %d\nwsgi-file = app.py\n")
    p = procs(pyfront_cmd("serve", str(d)), stdout=open(tmp_path / "serve.out", "wb"))
    wait_for_port(front, proc=p.p)
    wait_until(lambda: get(front)[0] == 200, timeout=30, what="app through the front")

    st1, id1 = get(front, "/a")
    st2, id2 = get(front, "/b")
    assert (st1, st2) == (200, 200)
    assert re.fullmatch(r"[0-9a-f]{32}", id1) and re.fullmatch(r"[0-9a-f]{32}", id2)
    assert id1 != id2
    assert get(front, "/c", {"X-Request-Id": "client-chose-this"}) == (200, "client-chose-this")
    assert get(front, "/explicit") == (200, "fixed")

    def logged():
        return log.read_text() if log.exists() else ""
    wait_until(lambda: f"{id2} 200 /b" in logged(), what="access log flushed")   # buffered lines
    assert f"{id1} 200 /a\n" in logged()
    # the log shows the front's own id even when the client sent one (nginx's meaning)
    line_c = next(line for line in logged().splitlines() if line.endswith(" /c"))
    assert re.fullmatch(r"[0-9a-f]{32} 200 /c", line_c)
    p.p.send_signal(signal.SIGQUIT)
    assert p.p.wait(30) == 0
