"""`pyfront check` across the layers: each link between front, apps, programs and the control
server, broken on purpose in a conf dir, gives one exact message (and exit 1 when serve
would fail); `-T` dumps the effective configuration of every layer."""
import subprocess
import sys

from tests.conftest import free_port, pyfront_cmd

APP = 'def application(e, s):\n    s("200 OK", [])\n    return [b"x"]\n'


def check(*args):
    return subprocess.run(pyfront_cmd("check", *map(str, args)), capture_output=True, text=True, timeout=120)


def good(d, front=None, ctl=None):
    """A conf dir that passes: front (static + uwsgi_pass), app, program, control server."""
    front, ctl = front or free_port(), ctl or free_port()
    d.mkdir()
    (d / "static").mkdir()
    (d / "site.conf").write_text(f"""server {{
    listen 127.0.0.1:{front};
    location /static/ {{ alias {d}/static/; }}
    location / {{ include uwsgi_params; uwsgi_pass unix:{d}/app.sock; }}
}}
""")
    (d / "app.py").write_text(APP)
    (d / "app.ini").write_text(f"[uwsgi]\nsocket = {d}/app.sock\nchdir = %d\nwsgi-file = app.py\n"
                               "buffer-size = 32768\n")
    (d / "programs.conf").write_text(f"[program:worker]\ncommand=/bin/sleep 100\n\n"
                                     f"[inet_http_server]\nport=127.0.0.1:{ctl}\n")
    return d


def lines(r):
    return r.stderr.splitlines()


def test_good_dir_passes_with_no_message(tmp_path):
    d = good(tmp_path / "c")
    r = check(d)
    assert r.returncode == 0, r.stderr
    assert lines(r) == [f"pyfront: the configuration file {d} syntax is ok",
                        f"pyfront: configuration file {d} test is successful"]


def test_missing_alias_dir(tmp_path):
    d = good(tmp_path / "c")
    (d / "static").rmdir()
    r = check(d)
    assert r.returncode == 0
    assert lines(r)[0] == (f'pyfront: [warn] alias "{d}/static/" of location "/static/" does not exist in '
                           f"{d}/site.conf:3 (pyfront: create it, or fix the alias path (requests there get 404))")


def test_app_that_does_not_import(tmp_path):
    d = good(tmp_path / "c")
    (d / "app.py").write_text("import no_such_module_pyfront\n" + APP)
    r = check(d)
    assert r.returncode == 1
    assert lines(r)[0] == (f"pyfront: [emerg] app \"app\" does not load: ModuleNotFoundError: No module named "
                           f"'no_such_module_pyfront' in {d}/app.ini:4 (pyfront: run `pyfront app --ini "
                           f"{d}/app.ini` to see the whole traceback, then fix the app or its "
                           f"chdir/wsgi-file/virtualenv)")
    assert lines(r)[-1] == f"pyfront: configuration file {d} test failed"


def test_program_command_not_found(tmp_path):
    d = good(tmp_path / "c")
    (d / "programs.conf").write_text("[program:worker]\ncommand=no-such-command-pyfront --x\n")
    r = check(d)
    assert r.returncode == 0       # serve would start; the program would go FATAL (supervisord's way)
    assert lines(r)[0] == (f"pyfront: [warn] program \"worker\": can't find command 'no-such-command-pyfront' "
                           f"in {d}/programs.conf:1 (pyfront: it would go FATAL; fix `command =` (an absolute "
                           f"path, or a name on PATH), or install the program)")


def test_program_command_not_executable(tmp_path):
    d = good(tmp_path / "c")
    (d / "run.sh").write_text("echo hi\n")
    (d / "programs.conf").write_text(f"[program:worker]\ncommand={d}/run.sh\n")
    r = check(d)
    assert r.returncode == 0
    assert lines(r)[0].startswith(f"pyfront: [warn] program \"worker\": command at '{d}/run.sh' is not "
                                  f"executable in {d}/programs.conf:1 ")


def test_address_bound_twice_front_and_control(tmp_path):
    port = free_port()
    d = good(tmp_path / "c", front=port, ctl=port)
    r = check(d)
    assert r.returncode == 1
    assert lines(r)[0] == (f'pyfront: [emerg] "[inet_http_server] port = 127.0.0.1:{port}" binds the same address '
                           f'as "listen 127.0.0.1:{port}" ({d}/site.conf:2) in {d}/programs.conf:4 (pyfront: give '
                           f'each layer its own address (the second bind would fail with "Address already in '
                           f'use"))')


def test_address_bound_twice_front_and_app(tmp_path):
    port = free_port()
    d = good(tmp_path / "c", front=port)
    (d / "app.ini").write_text(f"[uwsgi]\nhttp-socket = 0.0.0.0:{port}\nchdir = %d\nwsgi-file = app.py\n")
    r = check(d)
    assert r.returncode == 1
    assert f'pyfront: [emerg] "app "app" http-socket = 0.0.0.0:{port}" binds the same address as ' \
           f'"listen 127.0.0.1:{port}" ({d}/site.conf:2) in {d}/app.ini:2 ' in r.stderr


def test_timeouts_front_read_timeout_shorter_than_harakiri(tmp_path):
    d = good(tmp_path / "c")
    (d / "app.ini").write_text((d / "app.ini").read_text() + "harakiri = 120\n")
    r = check(d)
    assert r.returncode == 0
    assert lines(r)[0] == (f'pyfront: [warn] "uwsgi_read_timeout" of location "/" (60s) is shorter than harakiri '
                           f'= 120 of app "app" in {d}/app.ini:6 in {d}/site.conf:4 (pyfront\'s own check: the client gets 504 '
                           f'while the app keeps working; raise the read timeout above harakiri)')


def test_buffer_size_smaller_than_the_front_accepts(tmp_path):
    d = good(tmp_path / "c")
    (d / "app.ini").write_text((d / "app.ini").read_text().replace("buffer-size = 32768\n", ""))
    r = check(d)
    assert r.returncode == 0
    assert lines(r)[0] == (f'pyfront: [warn] app "app" buffer-size = 4096 is smaller than the request heads the '
                           f"front accepts (large_client_header_buffers 4 8k of the server in {d}/site.conf:1) in "
                           f"{d}/app.ini:1 (pyfront: requests with a larger head (big cookies) would get 502; set "
                           f"buffer-size = 32768 in the app (the setting to align), or lower "
                           f"large_client_header_buffers)")


def test_uwsgi_pass_to_an_http_socket(tmp_path):
    d = good(tmp_path / "c")
    (d / "app.ini").write_text(f"[uwsgi]\nhttp-socket = {d}/app.sock\nchdir = %d\nwsgi-file = app.py\n"
                               "buffer-size = 32768\n")
    r = check(d)
    assert lines(r)[0].startswith(f'pyfront: [warn] "uwsgi_pass unix:{d}/app.sock" reaches app "app" which speaks '
                                  f"HTTP (http-socket/http) on {d}/app.sock in {d}/app.ini:2 in {d}/site.conf:4 ")


def test_missing_virtualenv(tmp_path):
    d = good(tmp_path / "c")
    (d / "app.ini").write_text((d / "app.ini").read_text() + f"virtualenv = {tmp_path}/nope\n")
    r = check(d)
    assert r.returncode == 1
    assert f"{d}/app.ini:6" in r.stderr and f"{tmp_path}/nope" in r.stderr


def test_virtualenv_of_another_python(tmp_path):
    d = good(tmp_path / "c")
    v = tmp_path / "oldvenv"
    (v / "bin").mkdir(parents=True)
    (v / "lib" / "python3.6" / "site-packages").mkdir(parents=True)
    (v / "pyvenv.cfg").write_text("home = /usr/bin\nversion = 3.6.15\n")
    (d / "app.ini").write_text((d / "app.ini").read_text() + f"virtualenv = {v}\n")
    r = check(d)
    assert r.returncode == 1
    assert f"{d}/app.ini:6" in r.stderr and "3.6" in r.stderr
    assert f"{sys.version_info[0]}.{sys.version_info[1]}" in r.stderr


def test_dump_shows_every_layer_effective(tmp_path):
    d = good(tmp_path / "c")
    r = check("-T", d)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "# effective nginx configuration" in out
    app = out[out.index("# effective [uwsgi] app app"):]
    assert f"\nsocket = {d}/app.sock\n" in app and "\nprocesses = 1\n" in app and "\nbuffer-size = 32768\n" in app
    prog = out[out.index("# effective [program:worker] process worker"):]
    assert "\ncommand = /bin/sleep 100\n" in prog and "\nstopsignal = TERM\n" in prog
    assert "\nstartsecs = 1\n" in prog
