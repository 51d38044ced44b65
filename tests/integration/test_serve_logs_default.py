"""nginx's implicit `access_log logs/access.log` on a CONF_DIR without logs/: pyfront puts it in
the run directory (created at start) instead of crash-looping the front workers; an explicit
access_log in a missing directory is a check/startup error naming file:line."""
import subprocess

from tests.conftest import free_port, pyfront_cmd, wait_for_port
from tests.integration.test_master_serve import get
from tests.integration.test_master_process import wait_until


def _site(d, port, extra=""):
    (d / "html").mkdir(parents=True)
    (d / "html" / "index.html").write_text("hello\n")
    (d / "site.conf").write_text(f"server {{\n    listen 127.0.0.1:{port};\n    root html;\n{extra}}}\n")
    return d


def test_implicit_access_log_goes_to_run_dir_logs(tmp_path, procs):
    port = free_port()
    conf = _site(tmp_path / "conf", port)
    p = procs(pyfront_cmd("serve", str(conf)))
    wait_for_port(port, proc=p.p)
    assert get(port, "/index.html") == (200, b"hello\n")
    log = conf / "run" / "logs" / "access.log"
    wait_until(lambda: log.exists() and "GET /index.html" in log.read_text(), what="access log line")
    assert not (conf / "logs").exists()
    assert p.p.poll() is None
    out = p.stop()
    assert "failed" not in out and "exited with code 1" not in out, out


def test_explicit_access_log_in_missing_dir_is_a_check_error(tmp_path):
    port = free_port()
    conf = _site(tmp_path / "conf", port, "    access_log /nonexistent-dir/a.log;\n")
    for cmd in ("check", "serve"):
        r = subprocess.run(pyfront_cmd(cmd, str(conf)), capture_output=True, text=True, timeout=30)
        assert r.returncode == 1, (cmd, r.stdout, r.stderr)
        assert (f'pyfront: [emerg] open() "/nonexistent-dir/a.log" failed (2: No such file or directory) '
                f'in {conf}/site.conf:4') in r.stderr, (cmd, r.stderr)
        assert 'create the directory "/nonexistent-dir"' in r.stderr


def test_server_error_log_in_missing_dir_is_a_check_error(tmp_path):
    port = free_port()
    conf = _site(tmp_path / "conf", port, "    error_log /nonexistent-dir/e.log;\n")
    r = subprocess.run(pyfront_cmd("check", str(conf)), capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, r.stderr
    assert (f'pyfront: [emerg] open() "/nonexistent-dir/e.log" failed (2: No such file or directory) '
            f'in {conf}/site.conf:4 (create the directory "/nonexistent-dir" or point error_log elsewhere)'
            ) in r.stderr, r.stderr


def test_log_dir_created_by_the_masters_error_log_is_fine(tmp_path):
    """`error_log logs/error.log` in nginx.conf: the master creates logs/, so an access_log
    next to it is not an error (the layout of a copied /etc/nginx)."""
    port = free_port()
    conf = _site(tmp_path / "conf", port, "    access_log logs/access.log;\n")
    (conf / "nginx.conf").write_text("error_log logs/error.log;\n")
    r = subprocess.run(pyfront_cmd("check", str(conf)), capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
