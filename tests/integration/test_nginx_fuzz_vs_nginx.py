"""Random configs built from pyfront's directive table, checked by the real nginx and by pyfront.

Seeded (reproducible) generator of plausible conf.d files: servers, nested locations and
upstreams holding random directives with random arguments. Both must report the same
first error (and the warnings before it), as in test_nginx_check_vs_nginx.py. Excluded on
purpose: `proxy_redirect A B` (an emerg "not supported by pyfront") and http-level
directives that nginx would find duplicated by the harness's own nginx.conf lines.
"""
from __future__ import annotations

import random

import pytest

from pyfront.config import nginx_directives as ND
from tests.conftest import need_peer
from tests.integration.test_nginx_check_vs_nginx import _nginx_check, _pyfront_check, _same

pytestmark = pytest.mark.peer

HARNESS_HTTP = {"client_body_temp_path", "proxy_temp_path", "fastcgi_temp_path", "uwsgi_temp_path",
                "scgi_temp_path", "keepalive_timeout", "sendfile", "default_type", "access_log"}
NAMES = sorted({k.split("@")[0] for k in ND.TABLE} - {"include", "http", "events", "server", "upstream",
                                                     "location", "types", "proxy_redirect"})
# ASCII only: nginx prints single bytes of a multi-byte character in some messages
ARGS = ["on", "off", "1", "0", "10", "1k", "1m", "10s", "1h30m", "500ms", "-1", "x", "/a", "/a/", "a/b", "$uri",
        "$host", "${host}x", "main", "combined", "=404", "@x", "always", "if_not_empty", "text/css", "*", "auto",
        "127.0.0.1:1", "unix:/s", "http://localhost", "http://127.0.0.1:1/", "epoch", "max", "modified", "1d", "@10h",
        "error", "timeout", "http_500", "http_502", "default_server", "backlog=5", "exact", "before", "build",
        "1.1", "=200", "500", "302", "https://x", "escape=json", "buffer=1k", "weight=2", "consistent", "'q q'",
        '"a b"', "$", "${x"]


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)

    def stmt(self, top=False):
        names = [n for n in NAMES if not (top and n in HARNESS_HTTP)]
        n = self.r.choice(names)
        d = ND.TABLE.get(n) or ND.TABLE.get(n + "@upstream")
        if d.default and self.r.random() < 0.5 and not any(c in d.default for c in '|."'):
            return f"{n} {d.default};"      # a valid value: gets the config past this line
        return n + "".join(" " + self.r.choice(ARGS) for _ in range(self.r.randint(0, 3))) + ";"

    def location(self, depth):
        mod = self.r.choice(["", "= ", "^~ ", "~ ", "~* ", ""])
        path = self.r.choice(["/", "/a/", "/a", "\\.png$", "/b/c", "@n", "/a/b"])
        body = " ".join(self.stmt() if self.r.random() < 0.8 or depth > 1 else self.location(depth + 1)
                        for _ in range(self.r.randint(0, 4)))
        return f"location {mod}{path} {{ {body} }}"

    def server(self):
        listen = self.r.choice(["8080", "8081", "127.0.0.1:8080", "[::1]:8080", "unix:/tmp/pf-x.sock"])
        body = [f"listen {listen}{self.r.choice(['', ' default_server'])};"]
        body += [self.stmt() if self.r.random() < 0.6 else self.location(0) for _ in range(self.r.randint(0, 5))]
        return "server {\n" + "\n".join(body) + "\n}\n"

    def upstream(self):
        lines = [self.r.choice([f"server 127.0.0.1:{self.r.randint(1, 3)}"
                                + self.r.choice(["", " weight=2", " backup", " down", " max_fails=3", " fail_timeout=5s"]) + ";",
                                "least_conn;", "ip_hash;", "hash $uri;", "keepalive 4;", "random;"])
                 for _ in range(self.r.randint(0, 4))]
        return f"upstream u{self.r.randint(0, 1)} {{\n" + "\n".join(lines) + "\n}\n"

    def config(self):
        parts = [self.r.choice([self.server, self.server, self.upstream, lambda: self.stmt(top=True) + "\n"])()
                 for _ in range(self.r.randint(1, 3))]
        return "".join(parts)


@pytest.mark.parametrize("chunk", range(4))
def test_random_configs_match_nginx(chunk, tmp_path):
    nginx = need_peer("nginx")
    for i in range(40):
        seed = chunk * 1000 + i
        text = Gen(seed).config()
        d = tmp_path / str(i)
        d.mkdir()
        ngx = _nginx_check(nginx, d, text)
        pf = _pyfront_check(d, text)
        try:
            _same(ngx, pf)
        except AssertionError:
            pytest.fail(f"seed {seed}:\n{text}\nnginx:   {ngx}\npyfront: {pf}")


# ---------------------------------------------------------------- full nginx.conf files

MAIN_NAMES = sorted(k for k, d in ND.TABLE.items() if ND.MAIN in d.contexts
                    and k not in ("events", "http", "include", "pid", "error_log", "user", "daemon", "master_process"))
EVENT_NAMES = sorted(k for k, d in ND.TABLE.items() if ND.EVENTS in d.contexts)


def _main_stmt(r, names):
    n = r.choice(names)
    d = ND.TABLE[n]
    if d.default and r.random() < 0.5 and not any(c in d.default for c in '|."'):
        return f"{n} {d.default};"
    return n + "".join(" " + r.choice(ARGS) for _ in range(r.randint(0, 3))) + ";"


def main_config(seed: int) -> str:
    r, g = random.Random(seed), Gen(seed)
    parts = [_main_stmt(r, MAIN_NAMES) for _ in range(r.randint(0, 3))]
    parts.append("events {\n" + "\n".join(_main_stmt(r, EVENT_NAMES) for _ in range(r.randint(0, 3))) + "\n}")
    if r.random() < 0.7:
        parts.append("http {\n{TEMP}" + g.config().replace("unix:/tmp/pf-x.sock", "8082") + "}")
    parts += [_main_stmt(r, MAIN_NAMES) for _ in range(r.randint(0, 2))]
    return "\n".join(parts) + "\n"


@pytest.mark.parametrize("chunk", range(2))
def test_random_main_configs_match_nginx(chunk, tmp_path):
    from tests.integration.test_nginx_check_vs_nginx import _main_run
    nginx = need_peer("nginx")
    for i in range(40):
        seed = 500000 + chunk * 1000 + i
        text = main_config(seed)
        d = tmp_path / str(i)
        d.mkdir()
        ngx, pf = _main_run(nginx, d, text)
        try:
            _same(ngx, pf)
        except AssertionError:
            pytest.fail(f"seed {seed}:\n{text}\nnginx:   {ngx}\npyfront: {pf}")
