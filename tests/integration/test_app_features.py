"""Options with visible effects: reload-on-rss, touch-reload, static-map, chmod-socket, USR1,
and the run_app_master() entry used by `pyfront serve`."""
import os
import signal
import socket
import stat
import time

from pyfront.app import packet
from tests.conftest import free_port
from tests.integration.app_support import (http_request, raw_exchange, start_app, wait_until,
                                           write_test_app)


def test_reload_on_rss_replaces_the_worker(procs, tmp_path):
    port = free_port()
    app = start_app(procs, tmp_path, f"""
        http-socket = 127.0.0.1:{port}
        wsgi-file = {write_test_app(tmp_path)}
        reload-on-rss = 1
    """, f"127.0.0.1:{port}")
    first = app.worker_pids()
    app.wait_log("reload-on-rss reached: replacement pid")
    wait_until(lambda: app.worker_pids() and app.worker_pids() != first, what="replacement")
    assert http_request(port, "GET", "/pid")[0] == 200


def test_touch_reload(procs, tmp_path):
    port = free_port()
    touch = tmp_path / "touchme"
    touch.write_text("1")
    app = start_app(procs, tmp_path, f"""
        http-socket = 127.0.0.1:{port}
        wsgi-file = {write_test_app(tmp_path)}
        touch-reload = {touch}
    """, f"127.0.0.1:{port}")
    first = app.worker_pids()
    os.utime(touch, (time.time() + 5, time.time() + 5))
    app.wait_log("has been touched... graceful reload")
    wait_until(lambda: app.worker_pids() and not set(app.worker_pids()) & set(first), what="new generation")
    assert http_request(port, "GET", "/pid")[0] == 200


def test_static_map(procs, tmp_path):
    port = free_port()
    static = tmp_path / "static"
    static.mkdir()
    (static / "style.css").write_text("body{}")
    (tmp_path / "secret.txt").write_text("no")
    app = start_app(procs, tmp_path, f"""
        http-socket = 127.0.0.1:{port}
        wsgi-file = {write_test_app(tmp_path)}
        static-map = /static={static}
    """, f"127.0.0.1:{port}")
    status, headers, body = http_request(port, "GET", "/static/style.css")
    assert (status, body) == (200, b"body{}")
    assert ("Content-Type", "text/css") in headers
    assert http_request(port, "GET", "/static/../secret.txt")[0] == 404   # falls through to the app
    assert http_request(port, "GET", "/static/%2e%2e/secret.txt")[0] == 404


def test_chmod_socket_and_usr1_reopen(procs, tmp_path):
    sock = str(tmp_path / "app.sock")
    app = start_app(procs, tmp_path, f"""
        socket = {sock}
        wsgi-file = {write_test_app(tmp_path)}
        chmod-socket = 660
    """, sock)
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o660
    os.rename(app.log_path, app.log_path + ".1")
    os.kill(app.pid, signal.SIGUSR1)
    wait_until(lambda: os.path.exists(app.log_path), what="log reopened")


def test_run_app_master_with_given_socket_and_ready_fd(tmp_path):
    from pyfront.app.master import run_app_master
    from pyfront.app.options import load_app
    from pyfront.config.diagnostics import Report
    from pyfront.config.ini import read_ini
    sock_path = str(tmp_path / "given.sock")
    ini = tmp_path / "app.ini"
    ini.write_text(f"[uwsgi]\nsocket = {sock_path}\nwsgi-file = {write_test_app(tmp_path)}\nprocesses = 2\n"
                   f"logto = {tmp_path}/log\n")
    cfg = load_app([s for s in read_ini(ini.read_text(), str(ini), "uwsgi")][0], Report())
    lsock = socket.socket(socket.AF_UNIX)
    lsock.bind(sock_path)
    lsock.listen(64)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        run_app_master(cfg, [lsock], w)      # never returns
    os.close(w)
    try:
        assert os.read(r, 1) == b"1"         # every worker accepts now
        out = raw_exchange(sock_path, packet.encode({b"REQUEST_METHOD": b"GET", b"PATH_INFO": b"/pid",
                                                     b"SERVER_PROTOCOL": b"HTTP/1.0", b"SERVER_NAME": b"x",
                                                     b"SERVER_PORT": b"0"}))
        assert out.startswith(b"HTTP/1.0 200 OK")
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            assert f.read().startswith(b"pyfront: app master app")
    except AssertionError:
        raise
    finally:
        os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
        lsock.close()
    assert os.waitstatus_to_exitcode(status) == 0


def test_uwsgi_and_http_sockets_in_one_app(procs, tmp_path):
    sock = str(tmp_path / "app.sock")
    port = free_port()
    app = start_app(procs, tmp_path, f"""
        socket = {sock}
        http-socket = 127.0.0.1:{port}
        wsgi-file = {write_test_app(tmp_path)}
        threads = 2
    """, sock)
    assert http_request(port, "GET", "/pid")[0] == 200
    out = raw_exchange(sock, packet.encode({b"REQUEST_METHOD": b"GET", b"PATH_INFO": b"/pid",
                                            b"SERVER_PROTOCOL": b"HTTP/1.1", b"SERVER_NAME": b"x",
                                            b"SERVER_PORT": b"0"}))
    assert out.startswith(b"HTTP/1.1 200 OK")
