"""One status: `pyfront ctl status` shows the front's connections (stub_status numbers), each
front and app worker (idle/busy, current request, RSS, requests served) and the programs;
the real supervisorctl still parses it (the extras are in the description field)."""
import json
import re
import signal
import subprocess
import threading

from tests.conftest import free_port, http_get as get, need_peer, pyfront_cmd, wait_for_port
from tests.integration.test_master_process import wait_until

APP = """import time
def application(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        open({flag!r}, "w").close()
        time.sleep(4)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"""


def test_ctl_status_shows_every_layer(tmp_path, procs):
    front, ctl = free_port(), free_port()
    d = tmp_path / "c"
    d.mkdir()
    sock, flag = d / "app.sock", tmp_path / "slow.flag"
    (d / "site.conf").write_text(f"""server {{
    listen 127.0.0.1:{front};
    access_log off;
    location / {{ include uwsgi_params; uwsgi_pass unix:{sock}; }}
}}
""")
    (d / "app.py").write_text(APP.format(flag=str(flag)))
    (d / "app.ini").write_text(f"[uwsgi]\nsocket = {sock}\nchdir = %d\nwsgi-file = app.py\nprocesses = 2\n")
    (d / "programs.conf").write_text(f"[program:sleeper]\ncommand=sleep 1000\n"
                                     f"[inet_http_server]\nport=127.0.0.1:{ctl}\n")
    p = procs(pyfront_cmd("serve", str(d)), stdout=open(tmp_path / "serve.out", "wb"))
    wait_for_port(front, proc=p.p)
    wait_until(lambda: get(front)[0] == 200, timeout=30, what="app through the front")
    sv = need_peer("supervisorctl")

    def ctl_status(*argv):
        return subprocess.run([*argv, "-s", f"http://127.0.0.1:{ctl}", "status"], capture_output=True, text=True,
                              timeout=30).stdout
    wait_until(lambda: re.search(r"^app-app:master +RUNNING.*\n(.|\n)*^sleeper +RUNNING", ctl_status(sv), re.M),
               timeout=30, what="app and program RUNNING")
    for _ in range(5):
        assert get(front) == (200, b"ok")
    slow = threading.Thread(target=get, args=(front, "/slow"), daemon=True)
    slow.start()
    wait_until(flag.exists, what="slow request running")

    def app_served(out):
        return sum(int(m) for m in re.findall(r"^app-app:worker-\d.*, requests (\d+)", out, re.M))
    # app workers publish their request count once per tick (not per request: hot path)
    wait_until(lambda: app_served(ctl_status(*pyfront_cmd("ctl"))) >= 6, timeout=10, what="app counts published")
    out = ctl_status(*pyfront_cmd("ctl"))
    lines = out.splitlines()
    m = re.search(r"^front connections: active (\d+), accepts (\d+), handled (\d+), requests (\d+), "
                  r"reading (\d+), writing (\d+), waiting (\d+)$", out, re.M)
    assert m, out
    active, accepts, handled, requests, reading, writing, waiting = map(int, m.groups())
    assert active >= 1 and writing >= 1 and accepts >= 7 and requests >= 7 and handled == accepts
    front_rows = [ln for ln in lines if ln.startswith("front:worker-")]
    assert front_rows and all(re.search(r"RUNNING +pid \d+, uptime \d+:\d\d:\d\d, (idle|busy), requests \d+, "
                                        r"active \d+ \(reading \d+, writing \d+, waiting \d+\), rss \d+K$", ln)
                              for ln in front_rows), out
    app_rows = [ln for ln in lines if ln.startswith("app-app:worker-")]
    assert len(app_rows) == 2, out
    busy = [ln for ln in app_rows if ", busy, " in ln]
    assert len(busy) == 1 and busy[0].endswith(", request GET /slow"), out
    idle = [ln for ln in app_rows if ", idle, " in ln][0]
    assert re.search(r"pid \d+, idle, requests \d+, rss [1-9]\d*K$", idle), out
    served = sum(int(re.search(r"requests (\d+)", ln).group(1)) for ln in app_rows)
    assert served >= 6     # the readiness probe(s) and the five requests; /slow is not done yet
    assert re.search(r"^sleeper +RUNNING +pid \d+, uptime", out, re.M), out

    # the dashboard's JSON carries the same numbers
    st, body = get(ctl, "/api/status")
    assert st == 200
    data = json.loads(body)
    assert data["connections"]["writing"] >= 1 and data["connections"]["accepts"] >= 7
    rows = {f"{r['group']}:{r['name']}": r for r in data["processes"]}
    assert any(r["busy"] and r["current_request"] == "GET /slow" and r["rss"] > 0
               for k, r in rows.items() if k.startswith("app-app:worker-")), rows
    assert all(r["rss"] > 0 and r["requests"] >= 0 for k, r in rows.items() if k.startswith("front:worker-"))

    # the real supervisorctl parses the same rows (extras in the description field)
    real = ctl_status(sv)
    assert re.search(r"^app-app:worker-\d +RUNNING +pid \d+, busy, requests \d+, rss \d+K, request GET /slow$",
                     real, re.M), real
    assert re.search(r"^sleeper +RUNNING +pid \d+, uptime", real, re.M), real
    assert "front connections" not in real
    slow.join(20)
    p.p.send_signal(signal.SIGQUIT)
    assert p.p.wait(30) == 0
