"""`pyfront serve` with no directory: the bundled example (issue 6 point 5) — a static site, a
stdlib WSGI app behind uwsgi_pass, one supervised program and the password-protected dashboard
on loopback, with the URLs printed at start. Its fixed ports (8080, 8081, 9001) are the
example's; when another process holds one of them the test checks the clean bind error."""
import base64
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import pyfront_cmd
from tests.integration.test_master_serve import get

PORTS = (8080, 8081, 9001)


def busy(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def test_embedded_default_answers_on_its_urls(procs):
    taken = [p for p in PORTS if busy(p)]
    env = dict(os.environ)
    env.pop("PYFRONT_EXAMPLE_PASSWORD", None)
    p = procs(pyfront_cmd("serve"), env=env)
    if taken:
        assert p.p.wait(30) == 1
        out = p.p.stdout.read().decode()
        assert "Address already in use" in out, out
        assert "Traceback" not in out
        return
    lines = []
    while not any(ln.startswith("pyfront: dashboard on") for ln in lines):
        ln = p.p.stdout.readline().decode()
        assert ln, "pyfront serve exited:\n" + "".join(lines)
        lines.append(ln)
    out = "".join(lines)
    assert "pyfront: serving the bundled example site on http://127.0.0.1:8080/" in out
    assert "app app (uwsgi) on 127.0.0.1:8081" in out
    m = re.search(r"dashboard on http://127\.0\.0\.1:9001/ \(user admin, password (\S+);", out)
    assert m, out
    password = m.group(1)
    assert len(password) >= 16

    st, body = get(8080, "/")
    assert st == 200 and b"pyfront is serving this page" in body
    assert get(8080, "/static/hello.txt") == (200, b"Hello from pyfront.\n")
    deadline = time.monotonic() + 30
    while True:                                    # the app may still be loading
        st, body = get(8080, "/app/hello?x=1")
        if st == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert st == 200 and b"Hello from a WSGI app" in body and b"<td>/app/hello</td>" in body

    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen("http://127.0.0.1:9001/", timeout=10)
    assert e.value.code == 401
    auth = base64.b64encode(f"admin:{password}".encode()).decode()
    req = urllib.request.Request("http://127.0.0.1:9001/", headers={"Authorization": f"Basic {auth}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200 and b"<html" in r.read().lower()

    ctl = [sys.executable, "-m", "pyfront", "ctl", "-s", "http://127.0.0.1:9001", "-u", "admin", "-p", password]
    deadline = time.monotonic() + 30
    while True:
        r = subprocess.run(ctl + ["status"], capture_output=True, text=True, timeout=30)
        if re.search(r"^ticker\s+RUNNING", r.stdout, re.M) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert re.search(r"^ticker\s+RUNNING", r.stdout, re.M), r.stdout + r.stderr
    assert re.search(r"^app-app:master\s+RUNNING", r.stdout, re.M), r.stdout
    wrong = subprocess.run(ctl[:-1] + ["wrong"] + ["status"], capture_output=True, text=True, timeout=30)
    assert wrong.returncode != 0 and "ticker" not in wrong.stdout
    p.stop()
