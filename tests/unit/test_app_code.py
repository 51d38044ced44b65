"""What a HUP compares for an [uwsgi] app (pyfront.app_code): effective config and code on disk."""
import os

from pyfront import app_code
from pyfront.app.options import load_app
from pyfront.config.diagnostics import Report
from pyfront.config.ini import read_ini


def app(tmp_path, body, name="site.ini"):
    p = tmp_path / name
    p.write_text(body)
    sec = [s for s in read_ini(p.read_text(), str(p), "uwsgi") if s.name == "uwsgi"][0]
    r = Report()
    cfg = load_app(sec, r, in_serve=True)
    assert cfg is not None, [d.format() for d in r.diagnostics]
    return cfg


def project(tmp_path):
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "wsgi.py").write_text("application = None\n")
    (src / "pkg" / "views.py").write_text("x = 1\n")
    (src / "pkg" / "templates").mkdir()
    (src / "pkg" / "templates" / "page.html").write_text("<p>\n")
    (src / "db.sqlite3").write_text("data")
    (src / "__pycache__").mkdir()
    (src / "__pycache__" / "wsgi.cpython-311.pyc").write_text("")
    (src / ".git").mkdir()
    (src / ".git" / "hook.py").write_text("")
    (src / "venv").mkdir()
    (src / "venv" / "pyvenv.cfg").write_text("home = /usr\n")
    (src / "venv" / "big.py").write_text("")
    return src


def bump(path):
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))


def test_snapshot_covers_source_files_under_chdir_and_the_ini_only(tmp_path):
    src = project(tmp_path)
    cfg = app(tmp_path, f"[uwsgi]\nchdir = {src}\nwsgi-file = wsgi.py\nsocket = {tmp_path}/s.sock\n")
    snap = app_code.snapshot(cfg)
    rel = sorted(os.path.relpath(p, tmp_path) for p in snap)
    assert rel == ["site.ini", "src/pkg/templates/page.html", "src/pkg/views.py", "src/wsgi.py"]


def test_code_changes_names_the_changed_files(tmp_path):
    src = project(tmp_path)
    cfg = app(tmp_path, f"[uwsgi]\nchdir = {src}\nwsgi-file = wsgi.py\nsocket = {tmp_path}/s.sock\n")
    before = app_code.snapshot(cfg)
    assert app_code.code_changes(before, app_code.snapshot(cfg)) == []
    (src / "db.sqlite3").write_text("more data")              # not code: no change
    bump(src / "__pycache__" / "wsgi.cpython-311.pyc")
    assert app_code.code_changes(before, app_code.snapshot(cfg)) == []
    bump(src / "pkg" / "views.py")
    (src / "pkg" / "new.py").write_text("")
    assert app_code.code_changes(before, app_code.snapshot(cfg)) == [str(src / "pkg" / "new.py"),
                                                                     str(src / "pkg" / "views.py")]
    assert app_code.code_changes(None, before) is None


def test_too_many_files_is_unknown(tmp_path, monkeypatch):
    src = project(tmp_path)
    cfg = app(tmp_path, f"[uwsgi]\nchdir = {src}\nwsgi-file = wsgi.py\nsocket = {tmp_path}/s.sock\n")
    monkeypatch.setattr(app_code, "MAX_FILES", 2)
    assert app_code.snapshot(cfg) is None


def test_config_changes_ignore_the_section_line_but_not_values(tmp_path):
    src = project(tmp_path)
    body = f"[uwsgi]\nchdir = {src}\nwsgi-file = wsgi.py\nsocket = {tmp_path}/s.sock\nprocesses = 2\n"
    a = app(tmp_path, body)
    b = app(tmp_path, "; a comment moves the section down\n\n" + body)
    assert a.line != b.line and app_code.config_changes(a, b) == []
    c = app(tmp_path, body.replace("processes = 2", "processes = 3"))
    assert app_code.config_changes(a, c) == ["processes"]


def test_module_package_and_pythonpath_are_roots(tmp_path):
    lib = tmp_path / "lib"
    (lib / "mypkg").mkdir(parents=True)
    (lib / "mypkg" / "__init__.py").write_text("application = None\n")
    cfg = app(tmp_path, f"[uwsgi]\npythonpath = {lib}\nmodule = mypkg:application\nsocket = {tmp_path}/s.sock\n")
    assert app_code.roots(cfg) == [str(lib)]
    assert str(lib / "mypkg" / "__init__.py") in app_code.snapshot(cfg)
