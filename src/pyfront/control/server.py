"""The control server: HTTP/1.1 on the master's Loop, inet and unix, never blocking.

Routes (behind HTTP basic auth, realm "default", when a username is configured):
  POST /RPC2                      XML-RPC (rpc.py), marshalled by the stdlib
  GET  /logtail/NAME[/stdout|stderr]  chunked text/plain tail -f of a program log
  GET  /mainlogtail               the same for the master's log
  GET  /  /index.html  /static/*  the dashboard (control/dashboard/)
  GET  /api/status, POST /api/action   JSON for the dashboard

Why it cannot stall supervision: every socket is non-blocking and only touched when the
loop reports it ready; a request is bounded (64 KiB of headers, 4 MiB of body) and must
arrive within REQUEST_TIMEOUT; an idle keep-alive connection is closed after
IDLE_TIMEOUT; each read handles at most one recv() worth of data; a slow reader only
grows its own output buffer, which is capped (the connection is dropped past it).
"""
from __future__ import annotations

import base64
import email.utils
import errno
import json
import os
import socket
import stat
import xmlrpc.client
from typing import Callable
from urllib.parse import unquote, urlsplit, parse_qs

from pyfront.component import Loop, ProcessStatus, Timer
from pyfront.control import faults as F
from pyfront.control.faults import RPCError
from pyfront.control.master_api import MasterControl
from pyfront.control.rpc import NOT_DONE_YET, Deferred, RPCInterface
from pyfront.supervise.component import SupervisorComponent, split_namespec
from pyfront.supervise.config import ServerConfig, SupervisorConfig, password_matches

MAX_HEAD = 64 * 1024
MAX_BODY = 4 * 1024 * 1024
MAX_OUT = 8 * 1024 * 1024
REQUEST_TIMEOUT = 10.0
IDLE_TIMEOUT = 60.0
DEFERRED_POLL = 0.05
TAIL_POLL = 0.2
DASHBOARD_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dashboard")


class ControlServerError(Exception):
    """The control server cannot listen as configured (message says what to do)."""


def bind_host(cfg: ServerConfig) -> str:
    """Supervisor binds all interfaces for `port = :9001`; pyfront binds 127.0.0.1 unless a
    password protects it. A non-loopback bind without a password is refused."""
    host = cfg.host
    if host == "":
        return "0.0.0.0" if cfg.password else "127.0.0.1"
    return host


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


class Listener:
    def __init__(self, server: "ControlServer", cfg: ServerConfig):
        self.server, self.cfg = server, cfg
        self.sock: socket.socket | None = None
        self.address = ""

    def open(self) -> None:
        cfg = self.cfg
        if cfg.kind == "inet":
            host = bind_host(cfg)
            if not _is_loopback(host) and not cfg.password:
                raise ControlServerError(
                    f"refusing to serve the control API on {host}:{cfg.port} without a password "
                    f"([inet_http_server] in {cfg.where}): set username and password, or bind 127.0.0.1")
            fam = socket.AF_INET6 if ":" in host else socket.AF_INET
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, cfg.port))
            except OSError as e:
                s.close()
                raise ControlServerError(f"cannot bind the control server to {host}:{cfg.port}: {e.strerror} "
                                         f"([inet_http_server] in {cfg.where})") from None
            self.address = f"http://{host}:{cfg.port}"
        else:
            path = cfg.file
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            if os.path.exists(path):
                probe = socket.socket(socket.AF_UNIX)
                try:
                    probe.connect(path)
                    probe.close()
                    raise ControlServerError(f"another server is already listening on {path} "
                                             f"([unix_http_server] in {cfg.where})")
                except (ConnectionRefusedError, FileNotFoundError):
                    os.unlink(path)
                except OSError:
                    os.unlink(path)
                finally:
                    probe.close()
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.bind(path)
                os.chmod(path, cfg.chmod)
                if cfg.chown:
                    import grp
                    import pwd
                    user, _, group = cfg.chown.partition(":")
                    uid = pwd.getpwnam(user).pw_uid
                    gid = grp.getgrnam(group).gr_gid if group else -1
                    os.chown(path, uid, gid)
            except (OSError, KeyError) as e:
                s.close()
                raise ControlServerError(f"cannot create the control socket {path}: {e} "
                                         f"([unix_http_server] in {cfg.where})") from None
            self.address = f"unix://{path}"
        s.listen(128)
        s.setblocking(False)
        self.sock = s
        self.server.loop.add_reader(s.fileno(), self.accept)

    def accept(self) -> None:
        for _ in range(32):   # bounded work per loop turn
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self.server.log("error", f"control server accept(): {e.strerror}")
                return
            conn.setblocking(False)
            Connection(self.server, conn, self)

    def close(self) -> None:
        if self.sock is not None:
            self.server.loop.remove(self.sock.fileno())
            self.sock.close()
            self.sock = None
            if self.cfg.kind == "unix":
                try:
                    os.unlink(self.cfg.file)
                except OSError:
                    pass


class Connection:
    """One client. States: READING -> (WAITING ->) WRITING -> READING | STREAMING -> CLOSED."""

    def __init__(self, server: "ControlServer", sock: socket.socket, listener: "Listener"):
        self.server, self.sock, self.listener = server, sock, listener
        self.fd = sock.fileno()
        self.inbuf = b""
        self.out = bytearray()
        self.state = "READING"
        self.keep_alive = True
        self.close_after = False
        self.timer: Timer | None = None
        self.poll_timer: Timer | None = None
        self.tail: _Tail | None = None
        self.events = 0
        server.conns.add(self)
        self._set_events(True, False)
        self._arm(REQUEST_TIMEOUT)

    @property
    def cfg(self) -> ServerConfig:
        """The listener's current settings (a reload's new password applies to open connections)."""
        return self.listener.cfg

    # -- plumbing ---------------------------------------------------------------------------
    def _arm(self, secs: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.server.loop.call_later(secs, self._timeout)

    def _timeout(self) -> None:
        if self.state in ("READING", "WRITING"):
            self.close()

    def _set_events(self, read: bool, write: bool) -> None:
        import selectors
        ev = (selectors.EVENT_READ if read else 0) | (selectors.EVENT_WRITE if write else 0)
        if ev == self.events:
            return
        loop = self.server.loop
        if self.events == 0 and ev:
            loop.selector.register(self.fd, ev, self._on_event)
        elif ev == 0:
            loop.remove(self.fd)
        else:
            loop.selector.modify(self.fd, ev, self._on_event)
        self.events = ev

    def _on_event(self) -> None:
        if self.state == "CLOSED":
            return
        if self.out:
            self.on_writable()
        if self.state != "CLOSED" and self.events & 1:   # selectors.EVENT_READ
            self.on_readable()

    def close(self) -> None:
        if self.state == "CLOSED":
            return
        self.state = "CLOSED"
        for t in (self.timer, self.poll_timer):
            if t is not None:
                t.cancel()
        if self.tail is not None:
            self.tail.close()
        self.server.loop.remove(self.fd)
        self.events = 0
        try:
            self.sock.close()
        except OSError:
            pass
        self.server.conns.discard(self)

    # -- reading ------------------------------------------------------------------------------
    def on_readable(self) -> None:
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        if not data:
            self.close()
            return
        if self.state != "READING":
            if self.state == "STREAMING":
                return   # tail -f clients may send nothing useful; ignore
            self.inbuf += data
            if len(self.inbuf) > MAX_HEAD + MAX_BODY:
                self.close()
            return
        self.inbuf += data
        self.try_request()

    def try_request(self) -> None:
        end = self.inbuf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.inbuf) > MAX_HEAD:
                self.respond(431, b"request header too large\n", close=True)
            return
        head = self.inbuf[:end].decode("latin-1")
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            self.respond(400, b"bad request line\n", close=True)
            return
        method, target, version = parts
        headers: dict[str, str] = {}
        for ln in lines[1:]:
            k, sep, v = ln.partition(":")
            if not sep:
                self.respond(400, b"bad header line\n", close=True)
                return
            headers[k.strip().lower()] = v.strip()
        if "transfer-encoding" in headers:
            self.respond(411, b"chunked requests are not supported; send Content-Length\n", close=True)
            return
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            self.respond(400, b"bad Content-Length\n", close=True)
            return
        if length < 0 or length > MAX_BODY:
            self.respond(413, b"request body too large\n", close=True)
            return
        if len(self.inbuf) < end + 4 + length:
            return
        body = self.inbuf[end + 4:end + 4 + length]
        self.inbuf = self.inbuf[end + 4 + length:]
        conn_hdr = headers.get("connection", "").lower()
        self.keep_alive = (version == "HTTP/1.1" and conn_hdr != "close") or conn_hdr == "keep-alive"
        self.version = version
        self.server.handle(self, method, target, headers, body)

    # -- writing ------------------------------------------------------------------------------
    def respond(self, code: int, body: bytes, ctype: str = "text/plain", close: bool = False,
                extra: dict | None = None) -> None:
        reason = _REASONS.get(code, "OK")
        hdrs = {"Server": "pyfront", "Date": email.utils.formatdate(usegmt=True),
                "Content-Type": ctype, "Content-Length": str(len(body))}
        if extra:
            hdrs.update(extra)
        if close or not self.keep_alive:
            hdrs["Connection"] = "close"
            self.close_after = True
        head = f"HTTP/1.1 {code} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
        if self.state == "CLOSED":
            return
        self.state = "WRITING"
        self._arm(REQUEST_TIMEOUT)
        self.send(head.encode("latin-1") + body)

    def send(self, data: bytes) -> None:
        if self.state == "CLOSED":
            return
        self.out += data
        if len(self.out) > MAX_OUT:
            self.close()
            return
        self.on_writable()

    def on_writable(self) -> None:
        while self.out:
            try:
                n = self.sock.send(self.out[:262144])
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.close()
                return
            del self.out[:n]
        if self.out:
            self._set_events(True, True)
            return
        # everything written
        if self.state == "WRITING":
            if self.close_after:
                self.close()
                return
            self.state = "READING"
            self._arm(IDLE_TIMEOUT)
            self._set_events(True, False)
            if self.inbuf:
                self.try_request()
        else:
            self._set_events(True, False)


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 415: "Unsupported Media Type",
            411: "Length Required", 413: "Payload Too Large", 431: "Request Header Fields Too Large",
            500: "Internal Server Error"}


class _Tail:
    """tail -f of one file into a chunked response; follows rotation (inode change) and
    truncation like Supervisor's tail_f_producer."""

    def __init__(self, conn: Connection, path: str, head: int = 1024):
        self.conn, self.path = conn, path
        self.f = open(path, "rb")
        self.ino = os.fstat(self.f.fileno()).st_ino
        size = os.fstat(self.f.fileno()).st_size
        self.pos = max(0, size - head)
        self.timer: Timer | None = None
        self.pump()

    def pump(self) -> None:
        self.timer = None
        if self.conn.state == "CLOSED":
            self.close()
            return
        try:
            st = os.stat(self.path)
            if st.st_ino != self.ino:
                self.f.close()
                self.f = open(self.path, "rb")
                self.ino = os.fstat(self.f.fileno()).st_ino
                self.pos = 0
        except OSError:
            pass
        size = os.fstat(self.f.fileno()).st_size
        if size < self.pos:
            self.pos = 0
            self._chunk(b"==> File truncated <==\n")
        if size > self.pos and len(self.conn.out) < MAX_OUT // 2:
            self.f.seek(self.pos)
            data = self.f.read(min(size - self.pos, 1 << 20))
            self.pos += len(data)
            self._chunk(data)
        if self.conn.state != "CLOSED":
            self.timer = self.conn.server.loop.call_later(TAIL_POLL, self.pump)

    def _chunk(self, data: bytes) -> None:
        if data:
            self.conn.send(b"%x\r\n" % len(data) + data + b"\r\n")

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        try:
            self.f.close()
        except OSError:
            pass


class ControlServer:
    """A Component: owns the listeners and connections; no children of its own."""

    name = "control"

    def __init__(self, config: SupervisorConfig, supervisor: SupervisorComponent, master: MasterControl,
                 log: Callable[[str, str], None] | None = None):
        self.config = config
        self.sup = supervisor
        self.master = master
        self.rpc = RPCInterface(supervisor, master)
        self._log = log or (lambda level, msg: None)
        self.loop: Loop | None = None
        self.listeners: list[Listener] = []
        self.conns: set[Connection] = set()

    def log(self, level: str, msg: str) -> None:
        self._log(level, msg)

    # -- Component -------------------------------------------------------------------------------
    def start(self, loop: Loop) -> None:
        self.loop = loop
        self._open(self.config)

    def _open(self, config: SupervisorConfig) -> None:
        for cfg in (config.inet, config.unix):
            if cfg is None:
                continue
            lst = Listener(self, cfg)
            lst.open()
            self.listeners.append(lst)
            if not cfg.username:
                self.log("crit", f"Server '{'inet' if cfg.kind == 'inet' else 'unix'}_http_server' running "
                                 "without any HTTP authentication checking")
            self.log("info", f"control server listening on {lst.address}")

    def addresses(self) -> list[str]:
        return [lst.address for lst in self.listeners]

    def child_exited(self, pid: int, status: int) -> bool:
        return False

    def reload(self, new: object) -> None:
        """New auth applies to the next request; a changed address re-binds, and a failed
        re-bind keeps serving on the old address (logged) rather than going dark."""
        assert isinstance(new, SupervisorConfig)
        old = self.config
        self.config = new
        self.rpc.loaded = new
        wanted = [c for c in (new.inet, new.unix) if c is not None]
        same = [lst for lst in self.listeners for c in wanted if _same_address(lst.cfg, c)]
        if len(same) == len(self.listeners) == len(wanted):
            for lst in self.listeners:
                lst.cfg = next(c for c in wanted if _same_address(lst.cfg, c))
            return
        kept, self.listeners = self.listeners, []
        for lst in kept:
            lst.close()
        try:
            self._open(new)
        except ControlServerError as e:
            for lst in self.listeners:
                lst.close()
            self.listeners = []
            self.log("error", f"{e}; keeping the previous control server address")
            self.config = old
            self._open(old)

    def reopen_logs(self) -> None:
        pass

    def stop(self, graceful: bool = True) -> None:
        for lst in self.listeners:
            lst.close()
        self.listeners = []
        for c in list(self.conns):
            if c.state in ("READING", "STREAMING") or not graceful:
                c.close()

    def stopped(self) -> bool:
        return not self.listeners

    def status(self) -> list[ProcessStatus]:
        return []

    # -- requests --------------------------------------------------------------------------------
    def _authorized(self, conn: Connection, headers: dict[str, str]) -> bool:
        cfg = conn.cfg
        if not cfg.username:
            return True
        auth = headers.get("authorization", "")
        scheme, _, cred = auth.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, pw = base64.b64decode(cred.strip(), validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return user == cfg.username and password_matches(cfg.password or "", pw)

    def handle(self, conn: Connection, method: str, target: str, headers: dict[str, str], body: bytes) -> None:
        if not self._authorized(conn, headers):
            conn.respond(401, b"<html><body>Unauthorized</body></html>", "text/html",
                         extra={"WWW-Authenticate": 'Basic realm="default"'})
            return
        path = urlsplit(target).path
        if method == "POST" and not self._same_origin(headers):
            # a browser page from another site posting to the control API (CSRF): refuse
            conn.respond(403, b"cross-origin request refused\n", close=True)
            return
        try:
            if path.startswith("/RPC2"):
                if method != "POST":
                    conn.respond(405, b"XML-RPC needs POST\n")
                    return
                self.handle_rpc(conn, body)
            elif path.startswith("/logtail/"):
                self.handle_tail(conn, method, unquote(path[len("/logtail/"):]))
            elif path == "/mainlogtail":
                self.handle_tail(conn, method, None)
            elif path.startswith("/api/"):
                self.handle_api(conn, method, path, target, body, headers)
            else:
                self.handle_static(conn, method, path)
        except Exception as e:  # noqa: BLE001 - a bug answers 500, never kills the master
            self.log("error", f"control server: {type(e).__name__}: {e}")
            if conn.state != "CLOSED":
                conn.respond(500, b"internal error\n", close=True)

    @staticmethod
    def _same_origin(headers: dict[str, str]) -> bool:
        """Browsers send Origin on cross-site POSTs; XML-RPC clients and supervisorctl do not."""
        origin = headers.get("origin")
        if origin is None:
            return True
        return urlsplit(origin).netloc == headers.get("host", "")

    def handle_rpc(self, conn: Connection, body: bytes) -> None:
        try:
            params, method = xmlrpc.client.loads(body, use_builtin_types=False)
        except Exception:  # noqa: BLE001 - expat/ValueError/... on garbage: 400
            conn.respond(400, b"bad XML-RPC request\n")
            return
        if method is None:
            conn.respond(400, b"not an XML-RPC call\n")
            return
        try:
            value = self.rpc.call(method, params)
        except RPCError as e:
            self._send_rpc(conn, fault=e)
            return
        if isinstance(value, Deferred):
            conn.state = "WAITING"
            if conn.timer is not None:
                conn.timer.cancel()
            self._poll_deferred(conn, value)
            return
        self._send_rpc(conn, value=value)

    def _poll_deferred(self, conn: Connection, d: Deferred) -> None:
        conn.poll_timer = None
        if conn.state == "CLOSED":
            return
        try:
            v = d.poll()
        except RPCError as e:
            self._send_rpc(conn, fault=e)
            return
        except Exception as e:  # noqa: BLE001
            self._send_rpc(conn, fault=RPCError(F.FAILED, f"{type(e).__name__}:{e}"))
            return
        if v is NOT_DONE_YET:
            conn.poll_timer = self.loop.call_later(DEFERRED_POLL, lambda: self._poll_deferred(conn, d))
            return
        self._send_rpc(conn, value=v)

    def _send_rpc(self, conn: Connection, value=None, fault: RPCError | None = None) -> None:
        if fault is not None:
            body = xmlrpc.client.dumps(xmlrpc.client.Fault(fault.code, fault.text), methodresponse=True,
                                       allow_none=False)
        else:
            try:
                body = xmlrpc.client.dumps((value,), methodresponse=True, allow_none=False)
            except (TypeError, OverflowError) as e:
                body = xmlrpc.client.dumps(xmlrpc.client.Fault(F.FAILED, f"FAILED: cannot marshal: {e}"),
                                           methodresponse=True)
        conn.state = "READING"  # respond() sets WRITING
        conn.respond(200, body.encode("utf-8"), "text/xml")

    def handle_tail(self, conn: Connection, method: str, spec: str | None) -> None:
        if method != "GET":
            conn.respond(400, b"GET only\n")
            return
        if spec is None:
            path = self.sup.main_log_path() or self.master.main_log_path()
        else:
            name, _, channel = spec.partition("/")
            channel = channel or "stdout"
            g, p = self.sup.find(name)
            path = None
            if p is not None and channel in ("stdout", "stderr"):
                path = p.config.stdout_logfile if channel == "stdout" else (
                    None if p.config.redirect_stderr else p.config.stderr_logfile)
        if not path or not os.path.exists(path):
            conn.respond(404, b"no such log\n")
            return
        mtime = os.stat(path).st_mtime
        head = ("HTTP/1.1 200 OK\r\nServer: pyfront\r\nContent-Type: text/plain;charset=utf-8\r\n"
                f"Last-Modified: {email.utils.formatdate(mtime, usegmt=True)}\r\n"
                "X-Accel-Buffering: no\r\nTransfer-Encoding: chunked\r\n\r\n")
        conn.state = "STREAMING"
        if conn.timer is not None:
            conn.timer.cancel()
        conn.send(head.encode("latin-1"))
        conn.tail = _Tail(conn, path)

    # -- dashboard ---------------------------------------------------------------------------------
    def handle_static(self, conn: Connection, method: str, path: str) -> None:
        if method not in ("GET", "HEAD"):
            conn.respond(405, b"GET only\n")
            return
        name = "index.html" if path in ("/", "/index.html") else path.lstrip("/")
        if name.startswith("static/"):
            name = name[len("static/"):]
        if "/" in name or name.startswith(".") or not name:
            conn.respond(404, b"not found\n")
            return
        full = os.path.join(DASHBOARD_DIR, name)
        try:
            with open(full, "rb") as f:
                data = f.read()
        except OSError:
            conn.respond(404, b"not found\n")
            return
        ctype = {"html": "text/html; charset=utf-8", "js": "application/javascript", "css": "text/css"}.get(
            name.rsplit(".", 1)[-1], "application/octet-stream")
        conn.respond(200, data if method == "GET" else b"", ctype, extra={"Cache-Control": "no-cache"})

    def handle_api(self, conn: Connection, method: str, path: str, target: str, body: bytes,
                   headers: dict[str, str]) -> None:
        if path == "/api/status":
            rows = self.rpc.call("pyfront.getAllProcessDetails", ())
            payload = {"identification": self.master.identification(), "state": self.master.state(),
                       "processes": rows, "connections": self.rpc.call("pyfront.getConnections", ())}
            conn.respond(200, json.dumps(payload).encode(), "application/json", extra={"Cache-Control": "no-cache"})
            return
        if path == "/api/action" and method == "POST":
            if not headers.get("content-type", "").startswith("application/json"):
                conn.respond(415, b'{"error": "send application/json"}', "application/json")
                return
            try:
                req = json.loads(body or b"{}")
                action, name = req.get("action"), req.get("name", "")
            except (ValueError, AttributeError):
                conn.respond(400, b'{"error": "bad json"}', "application/json")
                return
            calls = {
                "start": [("supervisor.startProcess", (name, True))],
                "stop": [("supervisor.stopProcess", (name, True))],
                "restart": [("supervisor.stopProcess", (name, True)), ("supervisor.startProcess", (name, True))],
                "clear": [("supervisor.clearProcessLogs", (name,))],
                "stopall": [("supervisor.stopAllProcesses", (True,))],
                "restartall": [("supervisor.stopAllProcesses", (True,)), ("supervisor.startAllProcesses", (True,))],
            }.get(action)
            if calls is None:
                conn.respond(400, b'{"error": "unknown action"}', "application/json")
                return
            mc = [{"methodName": m, "params": list(p)} for m, p in calls]
            value = self.rpc.call("system.multicall", (mc,))

            def finish(v):
                msgs = []
                for r in v:
                    if isinstance(r, dict) and "faultCode" in r:
                        if action == "restart" and r["faultCode"] == F.NOT_RUNNING:
                            continue
                        msgs.append(r["faultString"])
                conn.state = "READING"
                conn.respond(200, json.dumps({"ok": not msgs, "message": "; ".join(msgs) or "OK"}).encode(),
                             "application/json")

            if isinstance(value, Deferred):
                conn.state = "WAITING"
                if conn.timer is not None:
                    conn.timer.cancel()

                def poll():
                    conn.poll_timer = None
                    if conn.state == "CLOSED":
                        return
                    v = value.poll()
                    if v is NOT_DONE_YET:
                        conn.poll_timer = self.loop.call_later(DEFERRED_POLL, poll)
                    else:
                        finish(v)
                poll()
            else:
                finish(value)
            return
        conn.respond(404, b'{"error": "not found"}', "application/json")


def _same_address(a: ServerConfig, b: ServerConfig) -> bool:
    return (a.kind, a.host, a.port, a.file, a.chmod, a.chown) == (b.kind, b.host, b.port, b.file, b.chmod, b.chown) \
        and bool(a.password) == bool(b.password)    # a password changes where a bare :port binds


def serve_address_for_ctl(config: SupervisorConfig) -> str:
    """The URL `pyfront ctl -c CONF_DIR` should use when [supervisorctl] is absent."""
    if config.unix is not None:
        return f"unix://{config.unix.file}"
    if config.inet is not None:
        host = bind_host(config.inet)
        host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"http://{host}:{config.inet.port}"
    return config.ctl.serverurl
