"""nginx's request → server → location selection, over the frozen model (reference implementation).

The front's C router (router.c) is the implementation that serves requests; this module is
the executable specification it is tested against, checked itself against a real nginx
(tests/integration/test_nginx_match_vs_nginx.py).

Server (ngx_http_find_virtual_server, server_names.xml):
  candidates are the servers listening on the connection's local address when any server
  listens on that exact address, else those on the wildcard address of that port; then
  1. an exact name (Host lower-cased, port and one trailing dot removed; "" = no Host),
  2. the longest `*.name` / `.name` wildcard, 3. the longest `name.*` wildcard,
  4. the first matching regex (servers in file order, names in order),
  5. the default_server of the address, else the first server listening on it.

Location (ngx_http_core_find_location), at each level:
  1. an `=` location equal to the URI wins at once;
  2. the longest matching prefix (`^~` or plain) is remembered and its nested locations
     are searched the same way (a final match there wins);
  3. unless that prefix is `^~`, the level's regex locations are tried in file order; the
     first match wins (its nested regex locations are searched first);
  4. else the remembered prefix, else no location (the server's own settings apply).
Named locations (@x) are never matched by URI.
"""
from __future__ import annotations

import re
from functools import lru_cache

from pyfront.config.model import FrontConfig, Location, Server

_PCRE_NAMED = re.compile(r"\(\?(?:<([A-Za-z_][A-Za-z0-9_]*)>|'([A-Za-z_][A-Za-z0-9_]*)')")


@lru_cache(maxsize=1024)
def compile_regex(pattern: str, caseless: bool) -> re.Pattern:
    """Compile an nginx (PCRE) regex with Python's re: `(?<name>...)`/`(?'name'...)` → `(?P<name>...)`."""
    py = _PCRE_NAMED.sub(lambda m: f"(?P<{m.group(1) or m.group(2)}>", pattern)
    return re.compile(py, re.I if caseless else 0)


# Python re's messages for the common mistakes, in pcre2's words, and whether pcre2 reports
# the offset where it stopped (nginx prints ` at "REST"` when that offset is inside the pattern).
_PCRE_WORDS = {
    "missing ), unterminated subpattern": ("missing closing parenthesis", False),
    "unbalanced parenthesis": ("unmatched closing parenthesis", True),
    "unterminated character set": ("missing terminating ] for character class", False),
    "nothing to repeat": ("quantifier does not follow a repeatable item", True),
    "multiple repeat": ("quantifier does not follow a repeatable item", True),
    "bad escape (end of pattern)": ("\\ at end of pattern", False),
}


def regex_error(pattern: str, caseless: bool = False) -> str | None:
    """nginx's `pcre2_compile() failed: ...` message for a bad regex, or None if it compiles."""
    try:
        compile_regex(pattern, caseless)
        return None
    except re.error as e:
        words, at = _PCRE_WORDS.get(e.msg, (e.msg, e.pos is not None))
        tail = f' at "{pattern[e.pos:]}"' if at and e.pos is not None and e.pos < len(pattern) else ""
        return f'pcre2_compile() failed: {words} in "{pattern}"{tail}'


# ---------------------------------------------------------------- location

_OK, _AGAIN, _DECLINED = "ok", "again", "declined"


def _find(locs: tuple[Location, ...], uri: str) -> tuple[Location | None, str]:
    for loc in locs:
        if loc.modifier == "=" and loc.path == uri:
            return loc, _OK
    best = None
    for loc in locs:
        if loc.modifier in ("", "^~") and uri.startswith(loc.path):
            if best is None or len(loc.path) > len(best.path):
                best = loc
    found, rc, noregex = None, _DECLINED, False
    if best is not None:
        found, rc, noregex = best, _AGAIN, best.modifier == "^~"
        nested, nrc = _find(best.locations, uri)
        if nrc == _OK:
            return nested, _OK
        if nested is not None:
            found = nested
    if not noregex:
        for loc in locs:
            if loc.modifier in ("~", "~*") and compile_regex(loc.path, loc.modifier == "~*").search(uri):
                nested, _ = _find(loc.locations, uri)
                return (nested or loc), _OK
    return found, rc


def find_location(server: Server, uri: str) -> Location | None:
    """The location nginx would pick for a normalised URI (None: the server level applies)."""
    return _find(server.locations, uri)[0]


def named_location(server: Server, name: str) -> Location | None:
    """`@name` (with or without the @) at the server level."""
    name = name[1:] if name.startswith("@") else name
    return next((l for l in server.locations if l.modifier == "@" and l.path == name), None)


# ---------------------------------------------------------------- server

def normalise_host(host: str | None) -> str:
    if not host:
        return ""
    h = host.strip().lower()
    if h.startswith("["):
        end = h.find("]")
        h = h[:end + 1] if end >= 0 else h
    elif ":" in h:
        h = h.rsplit(":", 1)[0]
    if h.endswith("."):
        h = h[:-1]
    return h


def servers_for_address(cfg: FrontConfig, local: str) -> list[tuple[Server, bool]]:
    """(server, is_default) candidates for a connection accepted on `local` ("127.0.0.1:80", "[::1]:80", "unix:/x")."""
    def on(text):
        return [(s, ln.default_server) for s in cfg.http.servers for ln in s.listens if ln.address.text == text]
    exact = on(local)
    if exact or local.startswith("unix:"):
        return exact
    port = local.rsplit(":", 1)[1]
    return on(f"[::]:{port}") if local.startswith("[") else on(f"0.0.0.0:{port}")


def find_server(cfg: FrontConfig, local: str, host: str | None) -> Server | None:
    cands = servers_for_address(cfg, local)
    if not cands:
        return None
    h = normalise_host(host)
    servers = []
    for s, _ in cands:
        if s not in servers:
            servers.append(s)
    for s in servers:
        for n in s.server_names:
            if n.kind == "exact" and n.text == h:
                return s
    best, blen = None, -1
    for s in servers:
        for n in s.server_names:
            if n.kind != "prefix":
                continue
            suffix = n.text if n.dot_form else n.text[1:]          # ".example.com" for both forms
            ok = (h.endswith(suffix) and len(h) > len(suffix)) or (n.dot_form and h == n.text[1:])
            if ok and len(n.text) > blen:
                best, blen = s, len(n.text)
    if best is not None:
        return best
    for s in servers:
        for n in s.server_names:
            if n.kind != "suffix":
                continue
            head = n.text[:-1]                                     # "www.example."
            if h.startswith(head) and len(h) > len(head) and len(n.text) > blen:
                best, blen = s, len(n.text)
    if best is not None:
        return best
    for s in servers:
        for n in s.server_names:
            if n.kind == "regex" and compile_regex(n.pattern, False).search(h):
                return s
    for s, default in cands:
        if default:
            return s
    return cands[0][0]
