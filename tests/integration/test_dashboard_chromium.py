"""The dashboard in a real browser: headless Chromium driven over the DevTools protocol
(a tiny stdlib websocket client, no extra dependency) clicks Stop and Start on a program
and reads the state change from the page; a screenshot is kept in tests/artifacts/."""
import base64
import json
import os
import socket
import struct
import time
import urllib.request
import xmlrpc.client

import pytest

from tests.conftest import ROOT, free_port, need_peer
from tests.integration.supervise_util import start_pyfront, state_of, wait_status, write_conf

pytestmark = [pytest.mark.peer, pytest.mark.slow, pytest.mark.timeout(180)]


class CDP:
    """Minimal RFC 6455 client: masked text frames out, unmasked frames in."""

    def __init__(self, ws_url: str):
        rest = ws_url.split("://", 1)[1]
        hostport, path = rest.split("/", 1)
        host, port = hostport.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head
        self.next_id = 0

    def _send(self, text: str) -> None:
        data = text.encode()
        mask = os.urandom(4)
        n = len(data)
        hdr = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else
                               bytes([0x80 | 126]) + struct.pack(">H", n) if n < 65536 else
                               bytes([0x80 | 127]) + struct.pack(">Q", n))
        self.sock.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("devtools closed")
            buf += chunk
        return buf

    def _recv(self) -> str:
        parts = b""
        while True:
            b0, b1 = self._exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._exact(8))[0]
            payload = self._exact(n)
            if b0 & 0x0F in (0x1, 0x0):
                parts += payload
                if b0 & 0x80:
                    return parts.decode()

    def call(self, method: str, **params):
        self.next_id += 1
        my = self.next_id
        self._send(json.dumps({"id": my, "method": method, "params": params}))
        while True:
            msg = json.loads(self._recv())
            if msg.get("id") == my:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def js(self, expr: str):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        return r.get("result", {}).get("value")


def _wait(pred, timeout=30.0, what=""):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_dashboard_stop_and_start_in_chromium(tmp_path, procs):
    exe = need_peer("chromium")
    d, run = str(tmp_path / "conf"), str(tmp_path / "run")
    conf, port = write_conf(d, run, """
[program:svc]
command = sleep 1000
startsecs = 0

[program:other]
command = /bin/sh -c "echo hello-from-other; exec sleep 1000"
startsecs = 0
""", user="admin", password="dash-board-pass")
    start_pyfront(procs, d, run, port)
    wait_status(conf, lambda o: state_of(o, "svc") == "RUNNING")
    dbg = free_port()
    procs([exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
           f"--user-data-dir={tmp_path / 'chrome-profile'}", f"--remote-debugging-port={dbg}",
           "--remote-allow-origins=*", "--window-size=1200,700", "about:blank"],
          stdout=open(os.devnull, "wb"), stderr=open(tmp_path / "chromium.log", "wb"))

    def targets():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{dbg}/json/list", timeout=2) as r:
                return [t for t in json.load(r) if t.get("type") == "page"]
        except OSError:
            return None
    page = _wait(targets, what="chromium devtools")[0]
    cdp = CDP(page["webSocketDebuggerUrl"])
    cdp.call("Network.enable")
    # the dashboard is behind the control server's basic auth: send the credentials
    cred = base64.b64encode(b"admin:dash-board-pass").decode()
    cdp.call("Network.setExtraHTTPHeaders", headers={"Authorization": f"Basic {cred}"})
    cdp.call("Page.enable")
    cdp.call("Page.navigate", url=f"http://127.0.0.1:{port}/")
    _wait(lambda: cdp.js("document.body && document.body.dataset.loaded === '1'"), what="dashboard loaded")
    state = lambda: cdp.js("(document.querySelector('tr[data-name=\"svc\"] td.state')||{}).textContent")
    assert state() == "RUNNING"
    pid_before = cdp.js("document.querySelector('tr[data-name=\"svc\"] td.pid').textContent")
    assert pid_before.isdigit()

    cdp.js("document.querySelector('tr[data-name=\"svc\"] button.act-stop').click()")
    _wait(lambda: state() == "STOPPED", what="svc STOPPED in the page")
    rpc = xmlrpc.client.ServerProxy(f"http://admin:dash-board-pass@127.0.0.1:{port}/RPC2")
    assert rpc.supervisor.getProcessInfo("svc")["statename"] == "STOPPED"
    assert rpc.supervisor.getProcessInfo("other")["statename"] == "RUNNING"

    cdp.js("document.querySelector('tr[data-name=\"svc\"] button.act-start').click()")
    _wait(lambda: state() == "RUNNING", what="svc RUNNING again in the page")
    info = rpc.supervisor.getProcessInfo("svc")
    assert info["statename"] == "RUNNING" and str(info["pid"]) != pid_before
    _wait(lambda: "OK" in (cdp.js("document.querySelector('#message').textContent") or ""), what="message")

    # live tail of another program's stdout, streamed from /logtail/
    cdp.js("document.querySelector('tr[data-name=\"other\"] button.act-tail').click()")
    _wait(lambda: "hello-from-other" in (cdp.js("document.querySelector('#tailtext').textContent") or ""),
          what="tail text")
    shot = cdp.call("Page.captureScreenshot", format="png")["data"]
    os.makedirs(os.path.join(ROOT, "tests", "artifacts"), exist_ok=True)
    with open(os.path.join(ROOT, "tests", "artifacts", "dashboard.png"), "wb") as f:
        f.write(base64.b64decode(shot))

    # without credentials the page is refused like the RPC endpoint
    with socket.create_connection(("127.0.0.1", port)) as c:
        c.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert c.recv(100).startswith(b"HTTP/1.1 401")
