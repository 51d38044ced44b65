"""The proxy part of the route table: uwsgi_pass / proxy_pass / stub_status locations,
upstream blocks and their peers (src/c/proxy_int.h records; docs/proxy.md).

`proxy_plan(settings, location, http, prefix)` turns a location's effective settings into
a frozen ProxyPlan (or None); compile.build_blob calls `conf_record` once per conf (so the
PXCONF section lines up with CONF) and `finish` to emit UPSTREAM / PEER / PARAM.
Host names in upstream addresses are resolved here, once, as nginx resolves them when it
reads its configuration.
"""
from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, replace

SEC_PXCONF, SEC_UPSTREAM, SEC_PEER, SEC_PARAM = 16, 17, 18, 19
NONE = 0xFFFFFFFF

HANDLERS = {"uwsgi": 1, "proxy": 2, "stub_status": 3}
PXF_PASS_HEADERS, PXF_PASS_BODY, PXF_BUFFERING, PXF_REQ_BUFFERING, PXF_INTERCEPT, PXF_HTTP11, \
    PXF_HAS_URI = (1 << i for i in range(7))
NEXT_BITS = {"error": 1, "timeout": 2, "invalid_header": 4, "non_idempotent": 8, "http_500": 16,
             "http_502": 32, "http_503": 64, "http_504": 128, "http_403": 256, "http_404": 512,
             "http_429": 1024, "updating": 0, "off": 0}
METHODS = {"round_robin": 0, "least_conn": 1, "ip_hash": 2, "hash": 3, "random": 4}

# response headers nginx hides by default (ngx_http_uwsgi_hide_headers / ngx_http_proxy_hide_headers)
X_ACCEL = ("x-accel-expires", "x-accel-redirect", "x-accel-limit-rate", "x-accel-buffering", "x-accel-charset")
HIDE_DEFAULT = {"uwsgi": X_ACCEL, "proxy": ("date", "server", "x-pad") + X_ACCEL}

PXCONF_FMT = "<" + "I" * 35
UPSTREAM_FMT = "<" + "I" * 12
PEER_FMT = "<" + "I" * 10
PARAM_FMT = "<IIII"
RECSIZE = {SEC_PXCONF: struct.calcsize(PXCONF_FMT), SEC_UPSTREAM: struct.calcsize(UPSTREAM_FMT),
           SEC_PEER: struct.calcsize(PEER_FMT), SEC_PARAM: struct.calcsize(PARAM_FMT)}


class ProxyCompileError(ValueError):
    pass


@dataclass(frozen=True)
class PeerPlan:
    name: str                   # nginx's spelling: "127.0.0.1:8000", "unix:/x.sock"
    sockaddr: bytes             # struct sockaddr_{un,in,in6} as connect() takes it
    weight: int = 1
    max_fails: int = 1
    fail_timeout_ms: int = 10000
    max_conns: int = 0
    backup: bool = False
    down: bool = False


@dataclass(frozen=True)
class UpstreamPlan:
    name: str
    peers: tuple[PeerPlan, ...]          # primaries first, then backups
    method: str = "round_robin"
    hash_key: str | None = None
    consistent: bool = False
    keepalive: int = 0
    keepalive_requests: int = 1000
    keepalive_timeout_ms: int = 60000
    pyfront_app: bool = False            # every server is a uwsgi socket of a [uwsgi] app of CONF_DIR


@dataclass(frozen=True)
class ProxyPlan:
    handler: str                         # "uwsgi" | "proxy" | "stub_status"
    upstream: UpstreamPlan | None = None
    params: tuple[tuple[str, str, bool], ...] = ()   # (name, value template, if_not_empty)
    pass_request_headers: bool = True
    pass_request_body: bool = True
    buffering: bool = True
    request_buffering: bool = True
    intercept_errors: bool = False
    http11: bool = False
    next_upstream: tuple[str, ...] = ("error", "timeout")
    next_tries: int = 0
    next_timeout_ms: int = 0
    connect_timeout_ms: int = 60000
    read_timeout_ms: int = 60000
    send_timeout_ms: int = 60000
    buffer_size: int = 4096
    buffers_total: int = 8 * 4096
    hide: tuple[str, ...] = X_ACCEL
    modifier1: int = 0
    modifier2: int = 0
    client_max_body_size: int = 1048576
    client_body_buffer_size: int = 16384
    client_body_timeout_ms: int = 60000
    temp_path: str = "/tmp"
    uri: str | None = None               # proxy_pass URI part
    match_prefix: str = ""
    proxy_host: str = ""
    proxy_port: int = 0
    redirect_from: str = ""              # proxy_redirect default: Location prefix -> redirect_to
    redirect_to: str = ""


# ---------------------------------------------------------------- links to pyfront's own apps
UPS_PYFRONT_APP = 1                      # rt_upstream.flags (proxy_int.h RT_UPS_PYFRONT_APP)
APP_KEEPALIVE = 128                      # the implicit cache (docs/proxy.md: why not nginx's usual 32)


@dataclass(frozen=True)
class AppLink:
    """A uwsgi-protocol socket served by a [uwsgi] app of the same CONF_DIR (stack.app_links)."""
    family: int                          # socket.AF_UNIX / AF_INET / AF_INET6
    target: object                       # normalised path, or (host, port)
    processes: int                       # the app's worker processes
    idle_timeout_ms: int                 # how long the app keeps an idle connection (http-timeout)


def _peer_served(peer: PeerPlan, link: AppLink) -> bool:
    fam = struct.unpack_from("=H", peer.sockaddr)[0]
    if fam == socket.AF_UNIX or link.family == socket.AF_UNIX:
        if fam != link.family:
            return False
        path = peer.sockaddr[2:].split(b"\0", 1)[0].decode(errors="replace")
        import os
        return os.path.normpath(path) == link.target
    host, port = link.target
    if fam == socket.AF_INET:
        pport, paddr = struct.unpack_from(">H", peer.sockaddr, 2)[0], socket.inet_ntop(fam, peer.sockaddr[4:8])
    elif fam == socket.AF_INET6:
        pport, paddr = struct.unpack_from(">H", peer.sockaddr, 2)[0], socket.inet_ntop(fam, peer.sockaddr[8:24])
    else:
        return False
    if pport != port:
        return False
    if host in ("", "0.0.0.0", "::"):
        return paddr in ("127.0.0.1", "::1") or paddr == host
    return paddr == host or (host == "localhost" and paddr in ("127.0.0.1", "::1"))


def mark_app_upstream(up: UpstreamPlan, links: tuple[AppLink, ...]) -> UpstreamPlan:
    """An upstream whose every server is a uwsgi socket of this CONF_DIR's apps talks to
    pyfront's own app server: mark it, so uwsgi_pass keeps its connections alive.

    Without an explicit `keepalive N` the cache is implicit (APP_KEEPALIVE connections,
    dropped a second before the app's own idle timeout would close them), and only for
    apps with one worker process: a persistent connection belongs to the process that
    accepted it, so with several processes a request could wait behind a busy one while
    another is idle (close-delimited connections go to whichever process accepts first).
    An explicit `keepalive N` in the upstream{} block opts in for any app."""
    served = []
    for p in up.peers:
        ls = next((ln for ln in links if _peer_served(p, ln)), None)
        if ls is None:
            return up
        served.append(ls)
    if up.keepalive:
        return replace(up, pyfront_app=True)
    if any(ln.processes != 1 for ln in served):
        return up
    idle = min(ln.idle_timeout_ms for ln in served)
    timeout = max(1000, min(up.keepalive_timeout_ms, idle - 1000))
    return replace(up, pyfront_app=True, keepalive=APP_KEEPALIVE, keepalive_timeout_ms=timeout)


# ---------------------------------------------------------------- addresses

def sockaddr_unix(path: str) -> bytes:
    raw = path.encode()
    if len(raw) >= 108:
        raise ProxyCompileError(f'unix socket path "{path}" is too long (max 107 bytes)')
    return struct.pack("=H", socket.AF_UNIX) + raw + b"\0"


def sockaddr_inet(host: str, port: int) -> list[tuple[str, bytes]]:
    """(nginx's peer name, sockaddr) for a literal or a host name (every address it resolves to)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise ProxyCompileError(f'host not found in upstream "{host}:{port}" ({e.strerror})') from None
    out, seen = [], set()
    for fam, _, _, _, sa in infos:
        if fam == socket.AF_INET:
            raw = struct.pack("=H", fam) + struct.pack(">H", sa[1]) + socket.inet_aton(sa[0]) + b"\0" * 8
            name = f"{sa[0]}:{sa[1]}"
        elif fam == socket.AF_INET6:
            raw = (struct.pack("=H", fam) + struct.pack(">HI", sa[1], 0) + socket.inet_pton(fam, sa[0])
                   + struct.pack("=I", sa[3]))
            name = f"[{sa[0]}]:{sa[1]}"
        else:
            continue
        if name not in seen:
            seen.add(name)
            out.append((name, raw))
    if not out:
        raise ProxyCompileError(f'host not found in upstream "{host}:{port}"')
    return out


def peers_for(address, **kw) -> list[PeerPlan]:
    if address.kind == "unix":
        return [PeerPlan(address.text, sockaddr_unix(address.unix_path), **kw)]
    if address.port is None:
        raise ProxyCompileError(f'no port in upstream "{address.text}"')
    return [PeerPlan(name, raw, **kw) for name, raw in sockaddr_inet(address.host, address.port)]


def upstream_plan(target, http) -> UpstreamPlan:
    if target.has_vars:
        raise ProxyCompileError(f'"{target.text}": a pass target with variables is not supported by pyfront '
                                f'(name the server or an upstream block)')
    if target.upstream is not None:
        up = http.upstream(target.upstream) if http is not None else None
        if up is None:
            raise ProxyCompileError(f'no port in upstream "{target.upstream}"')
        prim, back = [], []
        for s in up.servers:
            peers = peers_for(s.address, weight=s.weight, max_fails=s.max_fails, fail_timeout_ms=s.fail_timeout_ms,
                              max_conns=s.max_conns, backup=s.backup, down=s.down)
            (back if s.backup else prim).extend(peers)
        if not prim:
            raise ProxyCompileError(f'upstream "{up.name}" has no primary server')
        if len(prim) + len(back) > 256:
            raise ProxyCompileError(f'upstream "{up.name}": more than 256 servers')
        return UpstreamPlan(up.name, tuple(prim + back), up.method if up.method in METHODS else "round_robin",
                            up.hash_key, up.hash_consistent, up.keepalive, up.keepalive_requests,
                            up.keepalive_timeout_ms)
    peers = peers_for(target.address)
    return UpstreamPlan(target.address.text, tuple(peers))


def _proxy_host(target) -> tuple[str, int]:
    if target.upstream is not None:
        return target.upstream, 80
    a = target.address
    if a.kind == "unix":
        return "localhost", 0
    host = f"[{a.host}]" if a.host and ":" in a.host else (a.host or "")
    port = a.port or 80
    return (host if port == 80 else f"{host}:{port}"), port


def proxy_plan(st, loc, http, temp_default: str) -> ProxyPlan | None:
    """The location's effective settings (model.Settings) -> ProxyPlan, or None for static."""
    handler = getattr(loc, "handler", None) if loc is not None else None
    if handler is None:
        return None
    if handler.kind == "stub_status":
        return ProxyPlan("stub_status")
    kind = "uwsgi" if handler.kind == "uwsgi" else "proxy"
    o = st.uwsgi if kind == "uwsgi" else st.proxy
    target = handler.target
    up = upstream_plan(target, http)
    hide = [h for h in HIDE_DEFAULT[kind] if h not in {p.lower() for p in o.pass_headers}]
    hide += [h.lower() for h in o.hide_headers if h.lower() not in hide]
    uri = getattr(target, "uri", None) if kind == "proxy" else None
    prefix = loc.path if (uri is not None and loc.modifier in ("", "^~", "=")) else ""
    host, port = _proxy_host(target) if kind == "proxy" else ("", 0)
    nbuf, size = o.buffers
    rfrom = rto = ""
    if kind == "proxy" and getattr(o, "redirect", "default") == "default":
        # nginx's ngx_http_proxy_merge_loc_conf: with a URI part, "proxy_pass URL" -> location
        # name; without, "URL/" -> "/" (regex and named locations: no default rewrite)
        if uri is not None and loc.modifier in ("", "^~", "="):
            rfrom, rto = target.text, loc.path
        elif uri is None and loc.modifier != "@":
            rfrom, rto = target.text.rstrip("/") + "/", "/"
    return ProxyPlan(
        handler=kind, upstream=up,
        params=tuple((p.name, p.value, p.if_not_empty) for p in o.params),
        pass_request_headers=o.pass_request_headers, pass_request_body=o.pass_request_body,
        buffering=o.buffering, request_buffering=o.request_buffering, intercept_errors=o.intercept_errors,
        http11=o.http_version == "1.1", next_upstream=tuple(o.next_upstream), next_tries=o.next_upstream_tries,
        next_timeout_ms=o.next_upstream_timeout_ms, connect_timeout_ms=o.connect_timeout_ms,
        read_timeout_ms=o.read_timeout_ms, send_timeout_ms=o.send_timeout_ms, buffer_size=o.buffer_size,
        buffers_total=nbuf * size, hide=tuple(hide), modifier1=o.modifier1, modifier2=o.modifier2,
        client_max_body_size=st.client_max_body_size, client_body_buffer_size=st.client_body_buffer_size,
        client_body_timeout_ms=st.client_body_timeout_ms,
        temp_path=st.client_body_temp_path or temp_default, uri=uri, match_prefix=prefix,
        proxy_host=host, proxy_port=port, redirect_from=rfrom, redirect_to=rto)


def default_temp_path(prefix: str) -> str:
    from pyfront.pidfile import default_run_dir
    return default_run_dir(prefix) + "/client_body_temp"


# ---------------------------------------------------------------- blob records

class ProxySections:
    """Collects PXCONF (one per conf, in conf order), UPSTREAM, PEER, PARAM for a _Blob."""

    def __init__(self, blob) -> None:
        self.b = blob
        self.pxconf: list[bytes] = []
        self.upstreams: list[bytes] = []
        self.peers: list[bytes] = []
        self.params: list[bytes] = []
        self._ups_ids: dict[UpstreamPlan, int] = {}
        self.any = False

    def _upstream(self, up: UpstreamPlan) -> int:
        if up in self._ups_ids:
            return self._ups_ids[up]
        b = self.b
        first = len(self.peers)
        nprimary = 0
        for p in up.peers:
            flags = (1 if p.backup else 0) | (2 if p.down else 0)
            if not p.backup:
                nprimary += 1
            self.peers.append(struct.pack(PEER_FMT, *b.s(p.name), *b.s(p.sockaddr), p.weight, p.max_fails,
                                          p.fail_timeout_ms, p.max_conns, flags, 0))
        hash_tpl = b.tpl(up.hash_key) if up.method == "hash" and up.hash_key else NONE
        self.upstreams.append(struct.pack(UPSTREAM_FMT, *b.s(up.name), first, len(up.peers), nprimary,
                                          METHODS[up.method], hash_tpl, int(up.consistent), up.keepalive,
                                          up.keepalive_requests, up.keepalive_timeout_ms,
                                          UPS_PYFRONT_APP if up.pyfront_app else 0))
        self._ups_ids[up] = len(self.upstreams) - 1
        return self._ups_ids[up]

    def conf_record(self, plan: ProxyPlan | None) -> None:
        b = self.b
        if plan is None:
            self.pxconf.append(struct.pack(PXCONF_FMT, *([0, NONE] + [0] * 33)))
            return
        self.any = True
        ups = self._upstream(plan.upstream) if plan.upstream is not None else NONE
        pfirst = len(self.params)
        for name, value, if_not_empty in plan.params:
            self.params.append(struct.pack(PARAM_FMT, *b.s(name), b.tpl(value), int(if_not_empty)))
        flags = 0
        for on, bit in ((plan.pass_request_headers, PXF_PASS_HEADERS), (plan.pass_request_body, PXF_PASS_BODY),
                        (plan.buffering, PXF_BUFFERING), (plan.request_buffering, PXF_REQ_BUFFERING),
                        (plan.intercept_errors, PXF_INTERCEPT), (plan.http11, PXF_HTTP11),
                        (plan.uri is not None, PXF_HAS_URI)):
            if on:
                flags |= bit
        nu = 0
        for x in plan.next_upstream:
            nu |= NEXT_BITS.get(x, 0)
        mb = plan.client_max_body_size
        self.pxconf.append(struct.pack(
            PXCONF_FMT, HANDLERS[plan.handler], ups, pfirst, len(plan.params), flags, nu, plan.next_tries,
            plan.next_timeout_ms, plan.connect_timeout_ms, plan.read_timeout_ms, plan.send_timeout_ms,
            plan.buffer_size, plan.buffers_total, *b.list_range(plan.hide), plan.modifier1, plan.modifier2,
            mb & 0xFFFFFFFF, mb >> 32, plan.client_body_buffer_size, plan.client_body_timeout_ms,
            *b.s(plan.temp_path), *b.s(plan.uri or ""), *b.s(plan.match_prefix), *b.s(plan.proxy_host),
            *b.s(plan.redirect_from), *b.s(plan.redirect_to), plan.proxy_port, 0))

    def sections(self) -> list[tuple[int, bytes, int, int]]:
        """(kind, data, count, recsize) for _Blob.finish; nothing when no location proxies."""
        if not self.any:
            return []
        return [(SEC_PXCONF, b"".join(self.pxconf), len(self.pxconf), RECSIZE[SEC_PXCONF]),
                (SEC_UPSTREAM, b"".join(self.upstreams), len(self.upstreams), RECSIZE[SEC_UPSTREAM]),
                (SEC_PEER, b"".join(self.peers), len(self.peers), RECSIZE[SEC_PEER]),
                (SEC_PARAM, b"".join(self.params), len(self.params), RECSIZE[SEC_PARAM])]
