"""Real Flask and Django apps under nginx -> pyfront app, laid out as in the seed."""
import http.cookiejar
import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request

import pytest

from tests.integration.app_support import http_request, start_app, start_nginx

pytestmark = pytest.mark.peer

FLASK_APP = '''
from flask import Flask, request, jsonify, session
from wsgiref.validate import validator

app = Flask(__name__)
app.secret_key = "test"

@app.route("/hello/<name>")
def hello(name):
    return jsonify(name=name, q=request.args.get("q"), ua=request.headers.get("User-Agent"))

@app.route("/form", methods=["POST"])
def form():
    session["n"] = session.get("n", 0) + 1
    return jsonify(fields=request.form.to_dict(), files={k: len(v.read()) for k, v in request.files.items()},
                   n=session["n"])

application = validator(app)
'''


def test_flask_behind_nginx(procs, tmp_path):
    pytest.importorskip("flask")
    (tmp_path / "flaskapp.py").write_text(FLASK_APP)
    sock = str(tmp_path / "flask.sock")
    start_app(procs, tmp_path, f"""
        socket = {sock}
        chdir = {tmp_path}
        module = flaskapp:application
        processes = 2
        threads = 2
        master = true
    """, sock)
    nginx = start_nginx(procs, tmp_path, f"location / {{ include uwsgi_params; uwsgi_pass unix:{sock}; }}")
    status, _, body = http_request(nginx.port, "GET", "/hello/w%C3%B6rld?q=1", {"User-Agent": "t/1"})
    assert status == 200
    import json
    assert json.loads(body) == {"name": "wörld", "q": "1", "ua": "t/1"}
    boundary = "XyZ"
    payload = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nb\r\n"
               f"--{boundary}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.bin\"\r\n"
               f"Content-Type: application/octet-stream\r\n\r\n").encode() + b"\0" * 100000 + \
              f"\r\n--{boundary}--\r\n".encode()
    status, headers, body = http_request(nginx.port, "POST", "/form",
                                         {"Content-Type": f"multipart/form-data; boundary={boundary}"}, payload)
    assert status == 200
    assert json.loads(body) == {"fields": {"a": "b"}, "files": {"f": 100000}, "n": 1}
    assert any(k.lower() == "set-cookie" and v.startswith("session=") for k, v in headers)


@pytest.fixture(scope="module")
def django_project(tmp_path_factory):
    pytest.importorskip("django")
    root = tmp_path_factory.mktemp("django")
    proj = root / "dailiyfresh"
    proj.mkdir()
    env = dict(os.environ, DJANGO_SUPERUSER_PASSWORD="s3cret-pass", DJANGO_SUPERUSER_USERNAME="admin",
               DJANGO_SUPERUSER_EMAIL="a@example.org")
    subprocess.run([sys.executable, "-m", "django", "startproject", "dailiyfresh", str(proj)], check=True, env=env)
    for args in (["migrate", "--noinput"], ["createsuperuser", "--noinput"]):
        subprocess.run([sys.executable, "manage.py", *args], cwd=proj, check=True, env=env,
                       stdout=subprocess.DEVNULL)
    return proj


def test_django_admin_login_with_csrf(procs, tmp_path, django_project):
    sock = str(tmp_path / "dj.sock")
    # the seed's layout: chdir to the project, wsgi-file relative to it
    start_app(procs, tmp_path, f"""
        socket = {sock}
        chdir = {django_project}
        wsgi-file = dailiyfresh/wsgi.py
        processes = 2
        threads = 2
        master = True
        die-on-term = true
    """, sock)
    nginx = start_nginx(procs, tmp_path, f"location / {{ include uwsgi_params; uwsgi_pass unix:{sock}; }}")
    base = f"http://127.0.0.1:{nginx.port}"
    jar = http.cookiejar.CookieJar()

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **kw):
            return None

    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
    page = opener.open(base + "/admin/login/?next=/admin/", timeout=30).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    assert any(c.name == "csrftoken" for c in jar)
    # without the token: 403 from Django's CSRF middleware
    bad = urllib.parse.urlencode({"username": "admin", "password": "s3cret-pass"}).encode()
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.build_opener(NoRedirect).open(urllib.request.Request(base + "/admin/login/", data=bad), timeout=30)
    assert e.value.code == 403
    form = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "username": "admin", "password": "s3cret-pass",
                                   "next": "/admin/"}).encode()
    req = urllib.request.Request(base + "/admin/login/?next=/admin/", data=form,
                                 headers={"Referer": base + "/admin/login/", "Origin": base})
    try:
        r = opener.open(req, timeout=30)
        code, location = r.status, r.headers.get("Location")
    except urllib.error.HTTPError as exc:
        code, location = exc.code, exc.headers.get("Location")
    assert code == 302 and location == "/admin/"
    assert any(c.name == "sessionid" for c in jar)
    page = opener.open(base + "/admin/", timeout=30).read().decode()
    assert "Site administration" in page and "admin" in page
