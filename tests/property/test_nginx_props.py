"""Hypothesis properties of the nginx reader.

- tokenizer round trip: tokens → rendered text → the same tokens;
- any text is either a config or a ConfigError, never another exception;
- reflowing whitespace / comments, or moving statements into an included file, gives the
  same model (file and line fields aside).
"""
import dataclasses
import os
import tempfile

from hypothesis import HealthCheck, given, settings, strategies as st

from pyfront.config.diagnostics import ConfigError
from pyfront.config.nginx import load_nginx_files, load_nginx_text
from pyfront.config.nginx_lexer import render, tokens

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

word_text = st.text(st.characters(blacklist_categories=("Cs",), max_codepoint=0x2FF), max_size=12)


@st.composite
def token_lists(draw, depth=0):
    out = []
    for _ in range(draw(st.integers(0, 4))):
        words = draw(st.lists(word_text, min_size=1, max_size=4))
        block = depth < 2 and draw(st.booleans())
        out.extend(("quoted", w) for w in words)
        if block:
            out.append(("{", ""))
            out.extend(draw(token_lists(depth + 1)))
            out.append(("}", ""))
        else:
            out.append((";", ""))
    return out


@SETTINGS
@given(token_lists())
def test_tokenizer_round_trip(toks):
    assert tokens(render(toks)) == toks


VOCAB = ["server", "location", "upstream", "types", "http", "events", "{", "}", ";", " ", "\n", "#", '"', "'",
         "\\", "$", "${", "root", "alias", "/a/", "/b", "~", "=", "^~", "@x", "uwsgi_pass", "proxy_pass",
         "unix:/s", "127.0.0.1:1", "http://localhost", "add_header", "X", "always", "return", "200", "error_page",
         "404", "=", "gzip", "on", "off", "gzip_types", "text/css", "expires", "1h", "server_name",
         "*.a", ".b", "a/b", "~^x", "keepalive_timeout", "10s", "uwsgi_param", "if_not_empty", "try_files",
         "$uri", "=404", "access_log", "main", "log_format", "hash", "least_conn", "keepalive", "weight=2",
         "client_max_body_size", "1m", "pid", "worker_processes", "index", "charset", "utf-8", "0", "-1",
         "\x00", "é", "stub_status", "open_file_cache", "max=1"]


@SETTINGS
@given(st.lists(st.sampled_from(VOCAB), max_size=40).map(" ".join) | st.text(max_size=80))
def test_arbitrary_text_is_config_or_config_error(text):
    try:
        load_nginx_text(text, "fuzz.conf", prefix=tempfile.gettempdir() + "/pyfront-no-such-dir")
    except ConfigError as e:
        assert e.diagnostics and e.diagnostics[-1].level == "emerg"


# ---------------------------------------------------------------- reflow / include invariance

STATEMENTS = [
    "gzip on;", "gzip_types text/css application/json;", "sendfile off;", "charset utf-8;",
    "add_header X-A 1;", "error_page 404 /404.html;", "expires 1h;", "client_max_body_size 2m;",
    "upstream app { server 127.0.0.1:3031 weight=2; server unix:/tmp/a.sock backup; }"
    " server { listen 127.0.0.1:8080; server_name a.example *.b.example; root /srv/www;"
    " location / { try_files $uri @app; } location @app { include uwsgi_params; uwsgi_pass app; } }",
    "server { listen 127.0.0.1:8081 default_server; location = /s { stub_status; }"
    " location /p/ { proxy_set_header Host $host; proxy_pass http://127.0.0.1:9000/; add_header X-P 2 always; } }",
    "server { listen 127.0.0.1:8082; location ^~ /static/ { alias /srv/static/; expires max; }"
    " location ~* \\.png$ { access_log off; } }",
]


def _strip(obj):
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        kw = {}
        for f in dataclasses.fields(obj):
            v = getattr(obj, f.name)
            if f.name == "line":
                v = 0
            elif f.name in ("file", "files", "main_file"):
                v = None
            else:
                v = _strip(v)
            kw[f.name] = v
        return type(obj)(**kw)
    if isinstance(obj, tuple):
        return tuple(_strip(x) for x in obj)
    return obj


def _reflow(text, seps):
    out, i = [], 0
    for ch in text:
        if ch == " ":
            out.append(seps[i % len(seps)])
            i += 1
        else:
            out.append(ch)
    return "".join(out)


SEPS = st.lists(st.sampled_from([" ", "  ", "\n", "\t", " # comment ;{}\n", "\r\n", "\n\n  "]), min_size=1, max_size=6)


@SETTINGS
@given(st.lists(st.sampled_from(range(len(STATEMENTS))), min_size=1, max_size=6, unique=True), SEPS,
       st.integers(0, 6))
def test_reflow_and_include_give_the_same_model(idx, seps, cut):
    stmts = [STATEMENTS[i] for i in idx]
    text = " ".join(stmts)
    base, _ = load_nginx_text(text, "a.conf", prefix="/srv")
    reflowed, _ = load_nginx_text(_reflow(text, seps), "a.conf", prefix="/srv")
    assert _strip(reflowed) == _strip(base)
    cut = min(cut, len(stmts))
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "part.inc"), "w") as f:
            f.write("\n".join(stmts[:cut]))
        with open(os.path.join(d, "site.conf"), "w") as f:
            f.write("include part.inc;\n" + "\n".join(stmts[cut:]))
        included, _ = load_nginx_files([os.path.join(d, "site.conf")], prefix="/srv")
    assert _strip(included) == _strip(base)
