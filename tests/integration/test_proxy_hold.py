"""The front holds and retries a request whose unix-socket app refuses the
connection — an app being swapped — instead of answering 502 at once
(docs/differences.md "Hold and retry"); it gives up after a short bounded window."""
import http.client
import signal
import socket
import threading

from tests.conftest import free_port, pyfront_cmd, wait_for_port
from tests.integration.test_master_process import wait_until


def start_front(tmp_path, procs):
    front = free_port()
    d = tmp_path / "c"
    d.mkdir()
    sock = d / "app.sock"
    (d / "site.conf").write_text(f"""error_log {d}/error.log info;
server {{
    listen 127.0.0.1:{front};
    access_log off;
    location / {{ include uwsgi_params; uwsgi_pass unix:{sock}; }}
}}
""")
    p = procs(pyfront_cmd("serve", str(d)), stdout=open(tmp_path / "serve.out", "wb"))
    wait_for_port(front, proc=p.p)
    return p, d, front, sock


def request(port, method="GET", body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        c.request(method, "/x", body=body)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def errors(d):
    f = d / "error.log"
    return f.read_text(errors="replace") if f.exists() else ""


def serve_one(listener):
    conn, _ = listener.accept()
    with conn:
        head = conn.recv(4, socket.MSG_WAITALL)
        size = head[1] | head[2] << 8
        conn.recv(size, socket.MSG_WAITALL)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nheld")


def test_refused_unix_app_is_retried_until_it_listens(tmp_path, procs):
    p, d, front, sock = start_front(tmp_path, procs)
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(sock))              # bound, not listening: connect() gets ECONNREFUSED
    for method, body in (("GET", None), ("POST", b"a=1")):   # nothing was sent yet: POST may retry too
        res = {}
        t = threading.Thread(target=lambda: res.update(r=request(front, method, body)), daemon=True)
        before = errors(d).count("(111: Connection refused)")
        t.start()
        wait_until(lambda: errors(d).count("(111: Connection refused)") > before, what="a refused try")
        listener.listen(8)
        serve_one(listener)
        t.join(20)
        assert res["r"] == (200, b"held"), (res, errors(d))
        listener.close()
        listener = socket.socket(socket.AF_UNIX)
        sock.unlink()
        listener.bind(str(sock))
    listener.close()
    p.p.send_signal(signal.SIGQUIT)
    assert p.p.wait(30) == 0


def test_hold_is_bounded_then_502(tmp_path, procs):
    p, d, front, sock = start_front(tmp_path, procs)
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(sock))              # never listens
    st, _ = request(front)
    assert st == 502
    assert errors(d).count(f"connect() to unix:{sock} failed (111: Connection refused)") >= 2
    listener.close()
    sock.unlink()
    # no socket file at all: nothing is being swapped there, 502 at the first try (nginx's way)
    n = errors(d).count("connect() to")
    assert request(front)[0] == 502
    wait_until(lambda: "(2: No such file or directory)" in errors(d), what="ENOENT logged")
    assert errors(d).count("connect() to") == n + 1
    p.p.send_signal(signal.SIGQUIT)
    assert p.p.wait(30) == 0
