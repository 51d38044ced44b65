"""The bundled example's fixed ports (8080, 8081, 9001): when one is taken, `pyfront serve`
names the port, what the example runs there and how to choose others (`--port`), and exits
1 without a traceback; `pyfront serve --port P` runs the example on P, P+1 and P+2."""
import socket
import subprocess

from tests.conftest import ROOT, free_port, pyfront_cmd
from tests.integration.test_master_serve import get
from tests.integration.test_master_process import wait_until

PORTS = (8080, 8081, 9001)


def hold(port):
    """A listening socket on 127.0.0.1:port, or None when someone else already has it."""
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        return None
    s.listen(1)
    return s


def three_free_ports():
    for _ in range(50):
        base = free_port()
        if base > 65530:
            continue
        held = [hold(base + i) for i in range(3)]
        for s in held:
            if s is not None:
                s.close()
        if all(held):
            return base
    raise AssertionError("no three consecutive free ports")


def serve(*args):
    return subprocess.run(pyfront_cmd("serve", *args), capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_a_taken_example_port_is_named_with_the_way_out():
    port = 8080
    held = hold(port)          # None: another program holds it already, which is as good
    try:
        r = serve()
    finally:
        if held is not None:
            held.close()
    assert r.returncode == 1
    assert f"pyfront: [emerg] port {port} is already in use (98: Address already in use)" in r.stderr
    assert "bundled example's front listens there" in r.stderr and "site.conf:" in r.stderr
    assert "pyfront serve --port 8090" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_port_option_moves_the_example_and_names_a_taken_one(procs):
    base = three_free_ports()
    blocker = hold(base + 1)
    try:
        r = serve("--port", str(base))
    finally:
        blocker.close()
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"port {base + 1} is already in use" in r.stderr and "example's app server" in r.stderr
    assert f"example-site-{base}/app.ini:" in r.stderr

    p = procs(pyfront_cmd("serve", "--port", str(base)), cwd=ROOT)
    lines = []
    while not any(ln.startswith("pyfront: dashboard on") for ln in lines):
        ln = p.p.stdout.readline().decode()
        assert ln, "pyfront serve exited:\n" + "".join(lines)
        lines.append(ln)
    out = "".join(lines)
    assert f"on http://127.0.0.1:{base}/" in out and f"dashboard on http://127.0.0.1:{base + 2}/" in out
    st, body = get(base, "/")
    assert st == 200 and b"pyfront is serving this page" in body and f"127.0.0.1:{base + 2}".encode() in body
    wait_until(lambda: get(base, "/app/hello")[0] == 200, timeout=30, what="the example app")
    assert serve("--port", "0").returncode == 2 and serve("--port", "8080", "somedir").returncode == 2
    p.stop()
