"""One app worker process: `threads` threads accepting on the inherited sockets.

The main thread serves nobody: it owns signals (Python runs handlers only there) and
watches the master (PR_SET_PDEATHSIG, plus EOF on the death pipe whose write end only
the master holds), the retire conditions (max-worker-lifetime, reload-on-rss). Serving
threads block in C (GIL released) in pf_app_accept, which also watches the wake pipe:
writing one byte there stops every thread's accepting at once.

Worker signals (sent by its master only): TERM/QUIT = graceful (stop accepting, finish
in-flight requests within worker-reload-mercy), INT = exit now, USR2 = dump every
thread's Python stack to the log (harakiri's evidence, via faulthandler).
"""
from __future__ import annotations

import ctypes
import faulthandler
import os
import random
import select
import signal
import struct
import sys
import threading
import time
import traceback

from pyfront._native import ffi, lib
from pyfront.app import scoreboard as sb
from pyfront.app.wsgi import (ClientGone, DateCache, Errors, FileWrapper, Input, IOCtx,
                              Response, Start, ThreadStart, base_environ, log_exception)

EXIT_BOOT_ERROR = 4      # the app failed to load: the master must not respawn in a loop
NEED_MORE = lib.PF_NEED_MORE
STOP, AGAIN = lib.PF_APP_STOP, lib.PF_APP_AGAIN
UWSGI_ERRORS = {lib.PF_E_UWSGI_TOO_BIG, lib.PF_E_UWSGI_HTTP, lib.PF_E_UWSGI_MODIFIER,
                lib.PF_E_UWSGI_VAR, lib.PF_E_UWSGI_TOO_MANY}
HTTP_STATUS = {lib.PF_E_BAD_REQUEST: "400 Bad Request", lib.PF_E_URI_TOO_LONG: "414 Request-URI Too Large",
               lib.PF_E_HEADER_TOO_LARGE: "400 Request Header Or Cookie Too Large",
               lib.PF_E_VERSION: "505 HTTP Version Not Supported",
               lib.PF_E_NOT_IMPLEMENTED: "501 Not Implemented"}
PR_SET_PDEATHSIG = 1
_unpack_requests = struct.Struct("=Q").unpack_from
_unpack = ffi.unpack
_read_uwsgi = lib.pf_app_read_uwsgi
_monotonic = time.monotonic
_step = lib.pf_app_loop_step
_send_simple = lib.pf_app_send_simple
_hot_step = lib.pf_app_hot_step
_uwsgi_step = lib.pf_app_uwsgi_step
SLOWREQ, SENDFAIL, NEWVARY = lib.PF_APP_SLOWREQ, lib.PF_APP_SENDFAIL, lib.PF_APP_NEWVARY
_VHALF = lib.PF_APP_VALS_MAX // 2    # pf_app_uwsgi_step's varying values: u->vals + _VHALF
BADHEAD, BIGHEAD = lib.PF_APP_BADHEAD, lib.PF_APP_BIGHEAD
_Z = "\0"
_NULL = ffi.NULL     # "no response to send" for the step calls (cffi takes no None for char *)
UWSGI_READY, BADREQ = lib.PF_APP_UWSGI, lib.PF_APP_BADREQ
UWSGI_BAD = lib.PF_APP_UWSGI_BAD
U_SLOW, U_HTTPS, U_BODY = lib.PF_UWSGI_SLOW, lib.PF_UWSGI_HTTPS, lib.PF_UWSGI_BODY
U_PERSIST, U_NOBODY = lib.PF_UWSGI_PERSIST, lib.PF_UWSGI_NOBODY
# a persistent uwsgi connection answers framed as HTTP/1.1, acknowledged with Connection: keep-alive
SEND_UKEEP = lib.PF_SEND_HTTP | lib.PF_SEND_HTTP11 | lib.PF_SEND_UKEEP
SEND_UKEEP_BIT = lib.PF_SEND_UKEEP
NEWSHAPE = lib.PF_UWSGI_NEWSHAPE
BODY_NONE, BODY_CHUNKED = lib.PF_BODY_NONE, lib.PF_BODY_CHUNKED


def set_pdeathsig(sig: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
            e = ctypes.get_errno()
            print(f"prctl(PR_SET_PDEATHSIG) failed ({e}: {os.strerror(e)})", file=sys.stderr)
    except OSError as exc:
        print(f"prctl unavailable: {exc}", file=sys.stderr)


def vary_keys(keys: tuple, mask: int) -> tuple:
    """The keys whose values a uwsgi fast request hands over (pf_app_shape_vary): bit j of
    mask, and every key from the 65th on."""
    return tuple(k for j, k in enumerate(keys) if j >= 64 or (mask >> j) & 1)


def set_sched_batch(log) -> None:
    """SCHED_BATCH for this process and the threads it starts (they inherit the policy).

    Why: behind nginx (or pyfront's front) on a shared core, a worker woken by each new
    connection preempts the event loop in the middle of its batch; measured with nginx +
    one worker on one core: ~0.4 involuntary switches of nginx per request under
    SCHED_OTHER, ~0.004 under SCHED_BATCH (bench/results/app.md). The scheduler still
    gives the worker its fair share; it only stops winning every wakeup."""
    try:
        if os.sched_getscheduler(0) != os.SCHED_OTHER:
            return                  # the operator chose a policy (chrt): keep it
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except (OSError, AttributeError) as exc:
        log(f"sched-batch: could not switch to SCHED_BATCH ({exc}); running under the default policy")


def set_title(title: str) -> None:
    try:
        import setproctitle
        setproctitle.setproctitle(title)
    except ImportError:
        pass


class Worker:
    def __init__(self, cfg, app, wid: int, slot: int, board: sb.Scoreboard, listeners, master_pid: int,
                 death_r: int, generation: int):
        self.cfg, self.app, self.wid, self.slot, self.board = cfg, app, wid, slot, board
        self.listeners = listeners            # [(socket, Listen)]
        self.master_pid, self.death_r, self.generation = master_pid, death_r, generation
        self.pid = os.getpid()
        self.retire_sent = False
        self.graceful = False
        self.wake_r, self.wake_w = os.pipe()
        self.errors = Errors()
        self.dates = DateCache()
        self.timeout_ms = max(1, cfg.socket_timeout) * 1000
        self.http_idle_ms = max(1, cfg.http_timeout) * 1000
        limit = cfg.max_requests
        if limit:
            # jitter so workers started together do not all retire together (gunicorn's
            # max_requests_jitter; uWSGI has none: unbit/uwsgi#2033); the master also
            # staggers the replacements one at a time.
            limit += wid * cfg.max_requests_delta + random.randint(0, max(1, limit // 10))
        self.max_requests = limit               # C counts and checks (app_hot.c pf_app_board)
        self.started = time.monotonic()
        self.harakiri = cfg.harakiri
        self.add_header = cfg.add_header
        self.req_off = board.off(slot) + 8
        self.bsize = cfg.buffer_size
        self.threads: list[threading.Thread] = []
        self.loop = None
        self.uconns: list = []        # uwsgi threads' pf_app_uconn: `stop` set on a graceful stop
        self.log_requests = not cfg.disable_logging
        self.static = cfg.static_map
        self.extras = bool(self.static)
        # the fast loops' inline path has no static-map or add-header (the request log is
        # written by C there: pf_app_log_request)
        self.nofast = int(bool(self.static or self.add_header))
        self.board_mem = ffi.from_buffer(board.mem)     # the scoreboard, written by C per request
        multithread = cfg.threads > 1
        self.bases = []
        for sock, ls in listeners:
            if isinstance(ls.target, tuple):
                host, port = sock.getsockname()[:2]
                name, sport = ls.target[0] if ls.target[0] not in ("", "0.0.0.0", "::") else host, str(port)
            else:
                name, sport = "localhost", ""
            self.bases.append(base_environ(multithread, cfg.processes > 1, self.errors, name, sport))

    # ------------------------------------------------------------------ lifecycle
    def run(self) -> int:
        fds = [s.fileno() for s, _ in self.listeners]
        # Connections are multiplexed in C (app_loop.c): HTTP keep-alive clients, and uwsgi
        # connections pyfront's front keeps open between requests (docs/proxy.md), so one
        # idle connection never holds a thread. A uwsgi-only worker starts with the cheaper
        # blocking loop (nginx: one connection per request) and a thread switches to the
        # multiplexer at its first marked packet (adopt_and_mux).
        self.http_listeners = any(ls.protocol == "http" for _, ls in self.listeners)
        err = ffi.new("int *")
        loop = lib.pf_app_loop_new(ffi.new("int[]", fds), ffi.new("int[]", [ls.protocol == "http" for _, ls in self.listeners]),
                                   len(fds), self.wake_r, max(self.cfg.buffer_size, 8192) + 4096,
                                   self.cfg.threads, self.http_idle_ms, err)
        if loop == ffi.NULL:
            raise OSError(err[0], f"epoll setup failed: {os.strerror(err[0])}")
        lib.pf_app_loop_uwsgi_limit(loop, self.bsize, self.timeout_ms)
        self.loop = loop
        if self.cfg.sched_batch:
            set_sched_batch(self.log)
        for core in range(self.cfg.threads):
            t = threading.Thread(target=self.serve_loop, args=(core, fds), name=f"core-{core}", daemon=True)
            t.start()
            self.threads.append(t)
        self.board.set_pid(self.slot, self.pid)
        self.board.set_state(self.slot, sb.READY)
        sig_r, sig_w = os.pipe()
        os.set_blocking(sig_w, False)
        signal.set_wakeup_fd(sig_w, warn_on_full_buffer=False)
        deadline = None
        while True:
            try:
                r, _, _ = select.select([self.death_r, sig_r], [], [], 1.0)
            except InterruptedError:
                r = []
            if self.death_r in r or os.getppid() != self.master_pid:
                os._exit(1)    # the master is gone: never outlive it (unbit/uwsgi#296)
            if sig_r in r:
                try:
                    os.read(sig_r, 512)
                except BlockingIOError:
                    pass
            if self.graceful and deadline is None:
                self.board.set_state(self.slot, sb.STOPPING)
                os.write(self.wake_w, b"x")
                deadline = time.monotonic() + max(1, self.cfg.worker_reload_mercy)
            if deadline is not None:
                if not any(t.is_alive() for t in self.threads):
                    return 0
                if time.monotonic() > deadline:
                    self.log(f"worker {self.wid} (pid: {self.pid}) still busy after worker-reload-mercy: exiting")
                    return 1
                for t in self.threads:
                    t.join(0.05)
                continue
            if not any(t.is_alive() for t in self.threads):
                return 1
            self.check_retire()

    def on_signal(self, signum, frame) -> None:
        if signum == signal.SIGINT:
            os._exit(0)
        self.graceful = True
        if self.loop is not None:
            lib.pf_app_loop_graceful(self.loop)     # answers stop offering keep-alive now
        for u in self.uconns:
            u.stop = 1                              # the thread stops after its current answer

    def check_retire(self) -> None:
        if self.retire_sent:
            return
        reason = sb.RETIRE_NONE
        if self.cfg.max_worker_lifetime and time.monotonic() - self.started > self.cfg.max_worker_lifetime:
            reason = sb.RETIRE_LIFETIME
        elif self.cfg.reload_on_rss and rss_mb() > self.cfg.reload_on_rss:
            reason = sb.RETIRE_RSS
        if reason:
            self.retire(reason)

    def retire(self, reason: int) -> None:
        """Ask the master for a replacement; keep serving until it tells us to stop."""
        if not self.retire_sent:
            self.retire_sent = True
            if not self.board.head(self.slot)[3]:      # C may have set max-requests first
                self.board.set_retire(self.slot, reason)

    def log(self, msg: str) -> None:
        try:
            os.write(2, (msg + "\n").encode("utf-8", "replace"))
        except OSError:
            pass

    # ------------------------------------------------------------------ serving
    def serve_loop(self, core: int, fds: list[int]) -> None:
        if self.http_listeners:
            return self.serve_loop_mux(core)
        lfds = ffi.new("int[]", fds)
        io = IOCtx(self.cfg.buffer_size)
        u = io.u = ffi.new("pf_app_uconn *")
        u.lfds, u.nlisten, u.wakefd, u.timeout_ms, u.max_datasize = lfds, len(fds), self.wake_r, self.timeout_ms, self.bsize
        u.buf, u.cap, u.flat, u.flat_cap, u.fd = io.buf, io.cap, io.flat, 65536, -1
        u.nofast = self.nofast
        self.set_board(u.board, core)
        self.set_log(u.log, core)
        io.pkt = ffi.addressof(u, "pkt")
        core_off = self.board.core_off(self.slot, core)
        handle, fast = self.handle_uwsgi, self.handle_uwsgi_fast
        shapes: list[tuple] = []
        # (varying keys, environ template holding the snapshot's values) by
        # https << 9 | listener << 5 | shape
        combos: list = [None] * 1024
        app, step, vals = self.app, _uwsgi_step, ffi.buffer(u.vals + _VHALF, _VHALF)
        sr = ThreadStart(lambda: self.uwsgi_args(u, io))     # this thread's, reused
        start_response = sr.__call__     # a bound method: the app's call skips slot_tp_call
        self.uconns.append(u)
        if self.graceful:
            u.stop = 1
        blob, blen, nh, body, bl = _NULL, 0, 0, b"", 0
        env = result = None
        while True:
            # answers the previous request (blob), closes it, accepts, reads the next packet
            r = step(u, blob, blen, nh, body, bl)
            blob = _NULL
            if r == NEWVARY:        # a value left its shape's snapshot: one more varying key
                r = self.vary_grew(u, shapes, combos)
            if r >= 0:
                # The fast path: C counted the request and wrote the scoreboard; a known
                # key sequence, no body (http or https: one template each); only the values
                # the template does not hold (app_shape.c pf_app_shape_vary). Inline: every
                # call here costs.
                try:
                    keys, base = combos[r & 1023]
                except (TypeError, IndexError):
                    log_exception(self.errors, f"worker {self.wid}: unexpected error")
                    continue
                env = base.copy()
                # (a slice of the buffer over u.vals: ~550 instructions less than ffi.unpack)
                env.update(zip(keys, vals[:r >> 10].decode("latin-1").split(_Z)))
                sr.status = None
                try:
                    result = app(env, start_response)
                except Exception as exc:
                    self.failed(env, sr, exc)
                    self.fast_log(env, sr, core, u.log)
                    sr.reset()
                    continue
                if type(result) is list and len(result) == 1 and sr.resp is None and (st := sr.status) is not None \
                        and type(body := result[0]) is bytes and type(hd := sr.headers) is list:
                    try:
                        blob = f"{st}\0{_Z.join(map(_Z.join, hd))}".encode("latin-1")
                    except (TypeError, UnicodeEncodeError):
                        pass
                    if blob is not _NULL:
                        blen, nh, bl = len(blob), len(hd), len(body)
                        continue                 # the next step sends it
                self.finish(env, sr, result)     # anything else
                self.fast_log(env, sr, core, u.log)
                sr.reset()
                continue
            try:
                if r == BADHEAD or r == BIGHEAD:     # the answer above needs the general path
                    self.finish(env, sr, result)
                    self.fast_log(env, sr, core, u.log)
                    sr.reset()
                elif r == SENDFAIL:
                    self.fast_send_failed(env, sr, io, u.n, u.err)
                    self.fast_log(env, sr, core, u.log)
                elif r == SLOWREQ:
                    fl = u.flags
                    if fl & NEWSHAPE:
                        self.new_shape_uwsgi(u, shapes, combos)
                    if fl & U_PERSIST:       # pyfront's front keeps its connection: multiplexed from now on
                        return self.adopt_and_mux(u, core)
                    if fl & ~NEWSHAPE:
                        handle(u.fd, io, core, core_off, u.which, u.head_len)
                    else:
                        fast(u, io, u.n, shapes[u.sh.shape], core, core_off)
                elif u.fd >= 0:
                    io.nread[0] = u.nread
                    io.err[0] = u.err
                    self.bad_packet(r, io, u.fd, u.which)
                elif r == STOP:
                    return
                elif r != AGAIN:
                    self.log(f"accept4() failed ({u.err}: {os.strerror(u.err)})")
                    time.sleep(0.1)
            except Exception:
                log_exception(self.errors, f"worker {self.wid}: unexpected error")

    def set_board(self, b, core: int) -> None:
        """Point C at this thread's scoreboard record and the slot's counters (pf_app_board)."""
        mem, off = self.board_mem, self.board.off(self.slot)
        b.core = mem + self.board.core_off(self.slot, core)
        b.requests = ffi.cast("uint64_t *", mem + off + 8)
        b.retire = ffi.cast("int32_t *", mem + off + 16)
        b.retire_at = self.max_requests or 0

    def set_log(self, lg, core: int) -> None:
        lg.fd, lg.pid, lg.core = (2 if self.log_requests else -1), self.pid, core

    def fast_log(self, env, sr: Start, core: int, lg) -> None:
        """The request log line of a fast-loop request that ended on the general path."""
        if self.log_requests:
            self.log_request(env, sr, core, lg.t0_ns / 1e9, lg.nvars, lg.datasize)

    def served(self) -> int:
        """Requests this worker has taken (C counts them in the scoreboard)."""
        return _unpack_requests(self.board.mem, self.req_off)[0]

    def uwsgi_args(self, u, io: IOCtx) -> tuple:
        """Start.argsf of a uwsgi thread: Response arguments and send flags of its current request."""
        proto = _unpack(u.proto, u.proto_len).decode("latin-1") if u.proto_len else "HTTP/1.0"
        return (u.fd, io, self.timeout_ms, proto, False, False, False, self.add_header), 0

    def fast_send_failed(self, env, sr: Start, io: IOCtx, rc: int, err: int) -> None:
        io.err[0] = err
        try:
            io.send_failed(rc, self.timeout_ms)
        except ClientGone as exc:
            self.failed(env, sr, exc)

    def begin(self, core_off: int, env: dict) -> None:
        # The paths C does not cover: uwsgi packets Python reads or finishes parsing
        # (handle_uwsgi, handle_uwsgi_mux); C clears the record at the thread's next step.
        line = f"{env.get('REQUEST_METHOD', '')} {env.get('REQUEST_URI') or env.get('PATH_INFO', '')}"
        struct.pack_into("=d120s", self.board.mem, core_off, time.monotonic(),
                         line.encode("latin-1", "replace")[:sb.URI_MAX])

    def bad_packet(self, rc: int, io: IOCtx, fd: int, li: int, pkt=None, got: int | None = None) -> None:
        if pkt is None:
            pkt, got = io.pkt, io.nread[0]
        ls = self.listeners[li][1]
        if rc == lib.PF_E_UWSGI_HTTP:
            self.log(f"invalid request block size: {pkt.datasize} (max {self.cfg.buffer_size})...skip: "
                     f"this is an HTTP request sent to the uwsgi socket {ls.address} — point nginx at it with "
                     f"`uwsgi_pass` + `include uwsgi_params;` (not proxy_pass), or serve HTTP clients with "
                     f"`http-socket = {ls.address}`")
            body = (f"This is a uwsgi protocol socket ({ls.address}), not HTTP.\n"
                    f"Use nginx `uwsgi_pass` with `include uwsgi_params;`, or configure `http-socket`.\n").encode()
            try:
                io.send(fd, b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                        b"Content-Length: %d\r\n\r\n" % len(body), body, 1000)
            except ClientGone:
                pass
        elif rc == lib.PF_E_UWSGI_TOO_BIG:
            self.log(f"invalid request block size: {pkt.datasize} (max {self.cfg.buffer_size})...skip: "
                     f"raise buffer-size (at most 65535) in {self.cfg.file}, and keep the front's header "
                     f"limit (nginx large_client_header_buffers) at or below it")
        elif rc == lib.PF_E_UWSGI_MODIFIER:
            self.log(f"unsupported uwsgi modifier1 {pkt.modifier1} (modifier2 {pkt.modifier2})...skip: "
                     f"pyfront serves WSGI (modifier1 0, or 30 to strip SCRIPT_NAME); check uwsgi_modifier1 in nginx")
        elif rc in UWSGI_ERRORS:
            self.log(f"invalid uwsgi packet (datasize {pkt.datasize}, {got} bytes read): a key or value "
                     f"length runs past the end of the vars block...skip")
        elif rc == lib.PF_APP_CLOSED:
            if got:
                self.log(f"truncated uwsgi packet: the peer closed after {got} bytes...skip")
        elif rc == lib.PF_APP_TIMEOUT:
            self.log(f"timed out after {self.cfg.socket_timeout}s reading a uwsgi packet ({got} bytes read)...skip")
        else:
            self.log(f"recv() failed ({io.err[0]}: {os.strerror(io.err[0])}) reading a uwsgi packet...skip")

    def handle_uwsgi_fast(self, u, io: IOCtx, n: int, keys: tuple, core: int, core_off: int) -> None:
        """A uwsgi request without body, https or oddities: nginx's GET. The key strings
        come from the shape table (one tuple per key sequence), only values are new."""
        t0 = _monotonic()
        env = self.bases[u.which].copy()
        env.update(zip(keys, _unpack(u.vals, n).decode("latin-1").split("\0")))
        sr = Start((u.fd, io, self.timeout_ms, env["SERVER_PROTOCOL"] or "HTTP/1.0", False, False, False,
                    self.add_header), 0)
        self.run_app(env, sr, core, core_off, t0, u.pkt.nvars, u.pkt.datasize)

    def new_shape(self, sh, shapes: list, combos: list | None = None) -> None:
        """C added a key sequence to its table (app_shape.c): keep its key strings, and
        for the fast loops (keys, base environ) at listener << 5 | shape."""
        i = sh.shape
        raw = _unpack(sh.store + sh.off[i], sh.len[i]).decode("latin-1")
        keys = tuple(sys.intern(k) for k in raw.split("\0")[:-1])
        del shapes[i:]          # index 0 again: C emptied its table
        shapes.append(keys)
        if combos is not None:  # every listener's entry for index i is replaced: no stale one
            for li, base in enumerate(self.bases):
                # The base environ with this shape's keys already in (values "", overwritten by
                # every request): the per-request copy + update then inserts no key, so the
                # dict is never resized (nginx's 14 vars made it grow: ~1,000 instructions).
                tmpl = base.copy()
                for k in keys:
                    tmpl.setdefault(k, "")
                combos[(li << 5) | i] = (keys, tmpl)

    def new_shape_uwsgi(self, u, shapes: list, combos: list) -> None:
        """new_shape for the uwsgi loop: the template holds the values of the shape's first
        request, which C kept as its snapshot (pf_app_shape_snap, only when this request
        is otherwise a fast one); the fast path then hands over the varying values only."""
        self.new_shape(u.sh, shapes)
        i = u.sh.shape
        keys = shapes[i]
        snap = None
        if u.sh.snap_n[i] != lib.PF_APP_UNTRACKED:
            snap = _unpack(u.vals, u.n).decode("latin-1").split("\0")
        varying = vary_keys(keys, u.sh.vary[i])
        for li, base in enumerate(self.bases):
            tmpl = base.copy()
            if snap is not None:
                tmpl.update(zip(keys, snap))
            else:
                for k in keys:
                    tmpl.setdefault(k, "")
            combos[(li << 5) | i] = (varying, tmpl)
            tmpl = tmpl.copy()              # behind TLS: REQUEST_SCHEME=https or HTTPS=on|1
            tmpl["wsgi.url_scheme"] = "https"
            combos[512 | (li << 5) | i] = (varying, tmpl)

    def vary_grew(self, u, shapes: list, combos: list) -> int:
        """PF_APP_NEWVARY: the shape's mask grew; the varying key tuple follows it, then the
        request goes the fast way (the step's result it would have had)."""
        i = u.sh.shape
        varying = vary_keys(shapes[i], u.sh.vary[i])
        for li in range(len(self.bases)):
            for idx in ((li << 5) | i, 512 | (li << 5) | i):
                entry = combos[idx]
                if entry is not None:
                    combos[idx] = (varying, entry[1])
        return (u.n << 10) | ((u.flags & U_HTTPS) << 9) | (u.which << 5) | i

    def handle_uwsgi(self, fd: int, io: IOCtx, core: int, core_off: int, li: int, rc: int | None = None) -> None:
        pkt = io.pkt
        if rc is None:
            nread = io.nread
            nread[0] = 0
            rc = _read_uwsgi(fd, io.buf, io.cap, self.bsize, self.timeout_ms, pkt, io.flat, 65536, nread, io.err)
            if rc < 0:
                self.bad_packet(rc, io, fd, li)
                return
            got = nread[0]
        else:
            got = io.u.nread
        t0 = _monotonic()
        env = self.bases[li].copy()
        begun = rc is None
        if pkt.flat_nul:
            from pyfront.app.packet import decode
            env.update((k.decode("latin-1"), v.decode("latin-1"))
                       for k, v in decode(_unpack(io.buf, rc), 65535).vars)
        elif pkt.flat_dup:
            s = _unpack(io.flat, pkt.flat_len).decode("latin-1").split("\0")
            join_repeated(env, s, set())
        else:
            it = iter(_unpack(io.flat, pkt.flat_len).decode("latin-1").split("\0"))
            env.update(zip(it, it))
        # nginx sends Content-Type/-Length twice (param + header); PEP 3333 wants no HTTP_ copies
        if "HTTP_CONTENT_LENGTH" in env:
            del env["HTTP_CONTENT_LENGTH"]
        if "HTTP_CONTENT_TYPE" in env:
            del env["HTTP_CONTENT_TYPE"]
        if env.get("REQUEST_SCHEME") == "https" or "HTTPS" in env and env["HTTPS"] in ("on", "1"):
            env["wsgi.url_scheme"] = "https"
        if pkt.modifier1 == 30:
            sn = env.get("SCRIPT_NAME", "")
            if sn and env["PATH_INFO"].startswith(sn):
                env["PATH_INFO"] = env["PATH_INFO"][len(sn):]
        cl = env["CONTENT_LENGTH"] if "CONTENT_LENGTH" in env else ""
        inp = None
        if cl and cl != "0":
            try:
                length = int(cl)
            except ValueError:
                self.log(f"invalid CONTENT_LENGTH {cl!r}...skip")
                return
            extra = got - rc
            inp = Input(fd, _unpack(io.buf + rc, min(extra, length)) if extra > 0 else b"", length, io, self.timeout_ms)
            env["wsgi.input"] = inp
        if begun:
            self.begin(core_off, env)
        sr = Start((fd, io, self.timeout_ms, env["SERVER_PROTOCOL"] or "HTTP/1.0", False, False, False,
                    self.add_header), 0)
        self.run_app(env, sr, core, core_off, t0, pkt.nvars, pkt.datasize)
        if inp is not None and inp._left > 0:
            # Unread body left in the socket: read it away before close(), or the kernel
            # answers with RST and nginx may lose the response we just sent.
            try:
                inp.drain()
            except ClientGone:
                pass

    def run_app(self, env, sr: "Start", core: int, core_off: int, t0: float, nvars: int, datasize: int) -> bool:
        """Call the app and send its response. False when the connection must be closed.
        (C counted the request and keeps the scoreboard: app_hot.c.)"""
        try:
            if self.extras and self.static and self.serve_static(env, sr.response()):
                return True
            result = self.app(env, sr)
        except Exception as exc:
            ok = self.failed(env, sr, exc)
        else:
            ok = self.finish(env, sr, result)
        finally:
            if self.log_requests:
                self.log_request(env, sr, core, t0, nvars, datasize)
        return ok

    def finish(self, env, sr: "Start", result) -> bool:
        """The app returned `result`: send it and close it. False when the connection must
        be closed. The common response — a list holding one bytes string, no write() — is
        sent by send_simple with a handful of Python operations; anything else goes through
        a full Response object (wsgi.py)."""
        try:
            try:
                if type(result) is list and len(result) == 1 and sr.resp is None and sr.status is not None \
                        and type(result[0]) is bytes:
                    return self.send_simple(sr, result[0])
                resp = sr.response()
                resp.send_result(result)
                return resp.keep_alive
            finally:
                if result is not None and type(result) is not list and hasattr(result, "close"):
                    try:
                        result.close()
                    except Exception:
                        log_exception(self.errors, "error in the response iterable's close()")
        except Exception as exc:
            return self.failed(env, sr, exc)

    def failed(self, env, sr: "Start", exc: Exception) -> bool:
        """Called in an `except` clause: log the error (uWSGI's words), answer 500 if nothing
        was sent yet. True when the connection may be kept."""
        if isinstance(exc, ClientGone):
            self.log(f"{env.get('REQUEST_METHOD')} {env.get('REQUEST_URI', env.get('PATH_INFO'))}: {exc}")
            return False
        log_exception(self.errors, f"Traceback for {env.get('REQUEST_METHOD')} "
                                   f"{env.get('REQUEST_URI', env.get('PATH_INFO'))}:")
        resp = sr.response(replay=False)
        if not resp.head_sent and sr.sent is None:
            try:
                resp.error_500()
                sr.sent = None
                return resp.http and resp.keep_alive
            except ClientGone:
                pass
        return False

    def send_simple(self, sr: "Start", body: bytes) -> bool:
        """The common response, head built and sent by C (app_head.c). Returns keep-alive."""
        args = sr.args or sr.prepare()
        headers = sr.headers
        if type(headers) is list and not args[7]:
            try:
                blob = f"{args[3]} {sr.status}\0{_Z.join(map(_Z.join, headers))}".encode("latin-1")
            except (TypeError, UnicodeEncodeError):
                blob = None
            if blob is not None:
                r = _send_simple(args[0], sr.sflags, blob, len(blob), len(headers), body, len(body), args[2], args[1].err)
                if r >= 0:
                    sr.sent = (0 if sr.sflags & 4 else len(body), r >> 1)
                    return r & 1
                if r != BADHEAD and r != BIGHEAD:
                    args[1].send_failed(r, args[2])
        # the general path: it raises the precise error for a bad status or header
        resp = sr.response()
        resp.send_result([body])
        return resp.keep_alive

    def log_request(self, env, sr: "Start", core: int, t0: float, nvars: int, datasize: int) -> None:
        ms = int((time.monotonic() - t0) * 1000)
        resp = sr.resp
        if sr.sent is not None:
            status, nh, (nbytes, head_bytes) = sr.status, len(sr.headers or ()), sr.sent
        elif resp is not None:
            status, nh, nbytes, head_bytes = resp.status, len(resp.headers or ()), resp.bytes_sent, resp.head_bytes
        else:
            status, nh, nbytes, head_bytes = None, 0, 0, 0
        status = (status or "500")[:3]
        n = self.served()
        line = (f"[pid: {self.pid}|app: 0|req: {n}/{n}] {env.get('REMOTE_ADDR', '')} () "
                f"{{{nvars} vars in {datasize} bytes}} [{self.dates.now()}] {env.get('REQUEST_METHOD', '')} "
                f"{env.get('REQUEST_URI') or env.get('PATH_INFO', '')} => generated {nbytes} bytes in "
                f"{ms} msecs ({env.get('SERVER_PROTOCOL', '')} {status}) {nh} headers in {head_bytes} bytes "
                f"(1 switches on core {core})\n")
        try:
            os.write(2, line.encode("latin-1", "replace"))
        except OSError:
            pass

    def serve_static(self, env, resp: Response) -> bool:
        path = env.get("PATH_INFO", "")
        for mount, directory in self.static:
            if path == mount or path.startswith(mount.rstrip("/") + "/"):
                rel = path[len(mount):].lstrip("/")
                full = os.path.realpath(os.path.join(directory, rel))
                if not (full == directory or full.startswith(os.path.realpath(directory) + os.sep)):
                    return False
                if not os.path.isfile(full):
                    return False
                import mimetypes
                ctype = mimetypes.guess_type(full)[0] or "application/octet-stream"
                f = open(full, "rb")
                resp.start_response("200 OK", [("Content-Type", ctype),
                                               ("Content-Length", str(os.fstat(f.fileno()).st_size))])
                try:
                    resp.send_result(FileWrapper(f))
                finally:
                    f.close()
                return True
        return False

    # ------------------------------------------------------------------ HTTP (http-socket)
    def adopt_and_mux(self, u, core: int) -> None:
        """A marked packet (pyfront's front keeps its connections, docs/proxy.md) reached the
        blocking uwsgi loop: its connection and bytes go to the C multiplexer, which serves
        it and every connection after it for this thread."""
        ctx = ffi.new("pf_app_ready *")
        if lib.pf_app_loop_adopt(self.loop, ctx, u.fd, u.which, u.buf, u.nread) < 0:
            self.log(f"worker {self.wid}: cannot take a kept uwsgi connection (fd {u.fd}): closing it")
            os.close(u.fd)
            ctx.fd = -1
        u.fd = -1
        return self.serve_loop_mux(core, ctx)

    def serve_loop_mux(self, core: int, ctx=None) -> None:
        """Threads of a worker with an HTTP listener, or serving pyfront's front: connections
        are multiplexed in C (app_loop.c). One C call per request (pf_app_hot_step) gives
        back the previous request and returns the next one's environ values; the common
        request and response are handled inline here, anything else by handle_http /
        handle_uwsgi_mux."""
        if ctx is None:
            ctx = ffi.new("pf_app_ready *")
            ctx.fd = -1
        io = IOCtx(self.cfg.buffer_size)
        h = ffi.new("pf_app_hot *")
        h.loop, h.ctx, h.flat, h.flat_cap, h.timeout_ms, h.nofast = \
            self.loop, ctx, io.flat, 65536, self.timeout_ms, self.nofast
        self.set_board(h.board, core)
        self.set_log(h.log, core)
        info = h.info
        core_off = self.board.core_off(self.slot, core)
        step, handle, app, vals = _hot_step, self.handle_http, self.app, ffi.buffer(ctx.vals)
        shapes: list[tuple] = []        # key strings of this thread's shape table (app_shape.c)
        combos: list = [None] * 512      # (keys, base environ) by listener << 5 | shape
        sr = ThreadStart(lambda: self.http_args(h, io))     # this thread's, reused
        start_response = sr.__call__     # a bound method: the app's call skips slot_tp_call
        h.back = -1
        blob, blen, nh, body, bl = _NULL, 0, 0, b"", 0
        env = result = None
        while True:     # a graceful stop drains in C (app_loop.c start_draining) and then returns STOP
            # answers the previous request (blob) or gives it back (h.back), takes the next
            r = step(h, blob, blen, nh, body, bl)
            blob = _NULL
            if r >= 0:
                # The fast path: C counted the request and wrote the scoreboard; a known
                # key sequence, no body. Inline: every call here costs.
                try:
                    keys, base = combos[r & 511]
                except (TypeError, IndexError):
                    log_exception(self.errors, f"worker {self.wid}: unexpected error")
                    continue
                env = base.copy()
                # (a slice of the buffer over ctx/u.vals: ~550 instructions less than ffi.unpack)
                env.update(zip(keys, vals[:r >> 9].decode("latin-1").split(_Z)))
                sr.status = None
                try:
                    result = app(env, start_response)
                except Exception as exc:
                    h.back = self.http_back(h, self.failed(env, sr, exc))
                    self.fast_log(env, sr, core, h.log)
                    sr.reset()
                    continue
                if type(result) is list and len(result) == 1 and sr.resp is None and (st := sr.status) is not None \
                        and type(body := result[0]) is bytes and type(hd := sr.headers) is list:
                    try:
                        blob = f"{st}\0{_Z.join(map(_Z.join, hd))}".encode("latin-1")
                    except (TypeError, UnicodeEncodeError):
                        pass
                    if blob is not _NULL:
                        blen, nh, bl = len(blob), len(hd), len(body)
                        continue                 # the next step sends it
                h.back = self.http_back(h, self.finish(env, sr, result))   # anything else
                self.fast_log(env, sr, core, h.log)
                sr.reset()
                continue
            if r == BADHEAD or r == BIGHEAD:     # the answer above needs the general path
                try:
                    h.back = self.http_back(h, self.finish(env, sr, result))
                    self.fast_log(env, sr, core, h.log)
                except Exception:
                    log_exception(self.errors, f"worker {self.wid}: unexpected error")
                sr.reset()
            elif r == SENDFAIL:
                self.fast_send_failed(env, sr, io, h.n, h.err)
                self.fast_log(env, sr, core, h.log)
            elif r == SLOWREQ:
                try:
                    consumed, keep = handle(ctx, h.n, info, io, shapes, core, core_off, combos)
                    h.back = consumed if keep else -1
                except Exception:
                    log_exception(self.errors, f"worker {self.wid}: unexpected error")
            elif r == UWSGI_READY:
                try:
                    consumed, keep = self.handle_uwsgi_mux(ctx, info, io, shapes, core, core_off, combos)
                    h.back = consumed if keep else -1
                except Exception:
                    log_exception(self.errors, f"worker {self.wid}: unexpected error")
            elif r == UWSGI_BAD:
                try:
                    self.bad_packet(ctx.status, io, ctx.fd, ctx.listener, ctx.pkt, ctx.have)
                except Exception:
                    log_exception(self.errors, f"worker {self.wid}: unexpected error")
            elif r == BADREQ:
                try:
                    self.http_error(ctx, io, ctx.status)
                except Exception:
                    log_exception(self.errors, f"worker {self.wid}: unexpected error")
            elif r == STOP:
                return
            elif r != AGAIN:
                self.log(f"epoll_wait() failed ({h.err}: {os.strerror(h.err)})")
                time.sleep(0.1)

    def handle_uwsgi_mux(self, ctx, info, io: IOCtx, shapes: list, core: int, core_off: int,
                         combos: list) -> tuple[int, int]:
        """One uwsgi request whose packet C has parsed (app_loop.c). Returns (bytes of ctx.buf
        used, keep): keep only for a packet pyfront's front marked (PF_UWSGI_PERSIST), whose
        answer is then framed like an HTTP/1.1 keep-alive response (docs/proxy.md); any
        other uwsgi connection is closed after its response, as nginx expects."""
        fd, head_len, fl, li, have, nvars, datasize, n, shape, new = _unpack(info, 10)
        t0 = _monotonic()
        env = self.bases[li].copy()
        if fl & U_SLOW:
            self.uwsgi_env_slow(env, ctx, io, head_len, n)
        else:
            if new:
                self.new_shape(ctx.sh, shapes, combos)   # the HTTP fast path shares the table
            env.update(zip(shapes[shape], _unpack(ctx.vals, n).decode("latin-1").split("\0")))
            if fl & U_HTTPS:
                env["wsgi.url_scheme"] = "https"
        inp = None
        take = 0
        cl = env["CONTENT_LENGTH"] if (fl & (U_BODY | U_SLOW)) and "CONTENT_LENGTH" in env else ""
        if cl and cl != "0":
            try:
                length = int(cl)
                if length < 0:
                    raise ValueError
            except ValueError:
                self.log(f"invalid CONTENT_LENGTH {cl!r}...skip")
                return 0, 0
            inbuf = have - head_len
            take = inbuf if inbuf < length else length
            inp = Input(fd, _unpack(ctx.buf + head_len, take) if take else b"", length, io, self.timeout_ms)
            env["wsgi.input"] = inp
        persist = fl & U_PERSIST
        if persist:
            kept = not self.graceful         # a stopping worker answers "Connection: close"
            nobody = bool(fl & U_NOBODY)
            sr = Start((fd, io, self.timeout_ms, "HTTP/1.1", True, kept, nobody, self.add_header, True),
                       SEND_UKEEP | (lib.PF_SEND_KEEP if kept else 0) | (lib.PF_SEND_HEAD if nobody else 0))
        else:
            sr = Start((fd, io, self.timeout_ms, env["SERVER_PROTOCOL"] or "HTTP/1.0", False, False, False,
                        self.add_header), 0)
        self.begin(core_off, env)      # C counted it (app_hot.c); the line is written here
        keep = self.run_app(env, sr, core, core_off, t0, nvars, datasize)
        if inp is not None and inp._left > 0:
            # Unread body: read it away, exactly (Input never reads past CONTENT_LENGTH), so a
            # kept connection's next packet starts where it should, and a closed one does not
            # answer the front's unread bytes with a RST that could lose our response.
            try:
                if not inp.drain():
                    return 0, 0
            except ClientGone:
                return 0, 0
        if not persist or not keep or self.graceful:
            return 0, 0
        return head_len + take, 1

    def uwsgi_env_slow(self, env: dict, ctx, io: IOCtx, head_len: int, n: int) -> None:
        """The general path: NUL bytes in the vars, repeated keys, or modifier1 30."""
        pkt = ctx.pkt
        if pkt.flat_nul:
            from pyfront.app.packet import decode
            env.update((k.decode("latin-1"), v.decode("latin-1"))
                       for k, v in decode(_unpack(ctx.buf, head_len), 65535).vars)
        elif pkt.flat_dup:
            join_repeated(env, _unpack(io.flat, n).decode("latin-1").split("\0"), set())
        else:
            it = iter(_unpack(io.flat, n).decode("latin-1").split("\0"))
            env.update(zip(it, it))
        # nginx sends Content-Type/-Length twice (param + header); PEP 3333 wants no HTTP_ copies
        env.pop("HTTP_CONTENT_LENGTH", None)
        env.pop("HTTP_CONTENT_TYPE", None)
        if env.get("REQUEST_SCHEME") == "https" or env.get("HTTPS") in ("on", "1"):
            env["wsgi.url_scheme"] = "https"
        if pkt.modifier1 == 30:
            sn = env.get("SCRIPT_NAME", "")
            if sn and env["PATH_INFO"].startswith(sn):
                env["PATH_INFO"] = env["PATH_INFO"][len(sn):]

    def http_args(self, h, io: IOCtx) -> tuple:
        """Start.argsf of an HTTP thread: Response arguments and send flags of its current request."""
        sf = h.sflags
        if sf & SEND_UKEEP_BIT:    # a kept uwsgi connection the fast loop took (app_hot.c uwsgi_fast)
            kept = bool(sf & lib.PF_SEND_KEEP) and not self.graceful
            nobody = bool(sf & lib.PF_SEND_HEAD)
            return ((h.ctx.fd, io, self.timeout_ms, "HTTP/1.1", True, kept, nobody, self.add_header, True),
                    SEND_UKEEP | (lib.PF_SEND_KEEP if kept else 0) | (lib.PF_SEND_HEAD if nobody else 0))
        fl = h.info[4]
        keep = bool(fl & 1) and not self.graceful
        return ((h.ctx.fd, io, self.timeout_ms, "HTTP/1.1" if fl & 2 else "HTTP/1.0", True, keep, bool(fl & 4),
                 self.add_header), (fl & (7 if keep else 6)) | 32)

    def http_back(self, h, keep: bool) -> int:
        """The fast loop's `back` after a general-path response."""
        return h.head_len if keep and not self.graceful else -1

    def handle_http(self, ctx, n: int, info, io: IOCtx, shapes: list, core: int, core_off: int,
                    combos: list | None = None) -> tuple[int, int]:
        """One request whose head and environ C has prepared. Returns (bytes of ctx.buf used, keep-alive)."""
        fd, head_len, body, clen, flags, li, have, _, shape, new = _unpack(info, 10)
        t0 = _monotonic()
        env = self.bases[li].copy()
        if flags & 16:
            join_repeated(env, _unpack(io.flat, n).decode("latin-1").split("\0"), set())
        else:
            if new:
                self.new_shape(ctx.sh, shapes, combos)
            env.update(zip(shapes[shape], _unpack(ctx.vals, n).decode("latin-1").split("\0")))
        if body == BODY_NONE:
            sr = Start((fd, io, self.timeout_ms, "HTTP/1.1" if flags & 2 else "HTTP/1.0", True,
                        flags & 1 and not self.graceful, flags & 4, self.add_header),
                       (flags & 7 if not self.graceful else flags & 6) | 32)
            keep = self.run_app(env, sr, core, core_off, t0, 0, head_len)
            return (head_len, 1) if keep and not self.graceful else (0, 0)
        inbuf = have - head_len
        if flags & 8 and not inbuf:
            try:
                io.send(fd, b"HTTP/1.1 100 Continue\r\n\r\n", b"", self.timeout_ms)
            except ClientGone:
                return 0, 0
        if body == BODY_CHUNKED:
            inp = Input(fd, _unpack(ctx.buf + head_len, inbuf) if inbuf else b"", -1, io, self.timeout_ms, chunked=True)
            used = inbuf
        else:
            take = inbuf if inbuf < clen else clen
            inp = Input(fd, _unpack(ctx.buf + head_len, take) if take else b"", clen, io, self.timeout_ms)
            used = take
        env["wsgi.input"] = inp
        sr = Start((fd, io, self.timeout_ms, "HTTP/1.1" if flags & 2 else "HTTP/1.0", True,
                    bool(flags & 1) and not self.graceful, bool(flags & 4), self.add_header),
                   (flags & 7 if not self.graceful else flags & 6) | 32)
        keep = self.run_app(env, sr, core, core_off, t0, 0, head_len)
        if not keep or self.graceful:
            return 0, 0
        if inp._left or inp._chunked:
            try:
                if not inp.drain():
                    return 0, 0
            except (ClientGone, ValueError):
                return 0, 0
            if inp._chunked:
                tail = inp.leftover()
                if tail and inp._recvd:
                    # bytes read past the chunked body from the socket: the next request's
                    ok = lib.pf_app_loop_set_rest(self.loop, ctx, tail, len(tail)) == 0
                    return 0, 1 if ok else 0
                used = inbuf - len(tail)
        return head_len + used, 1

    def http_error(self, ctx, io: IOCtx, rc: int) -> tuple[int, bool]:
        status_code = rc
        status = HTTP_STATUS.get(status_code, "400 Bad Request")
        req = ctx.req
        why = ffi.string(lib.pf_http_why_text(req.error)).decode() if req.error else "request head too large"
        peer = ffi.unpack(ctx.peer, ctx.peer_len).split(b"\0")[0].decode()
        self.log(f"{peer}: {status}: {why}")
        body = f"{status}\n".encode()
        try:
            io.send(ctx.fd, f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
                            f"Connection: close\r\n\r\n".encode(), body, 1000)
        except ClientGone:
            pass
        return 0, False


def join_repeated(env: dict, flat: list[str], seen: set) -> None:
    """Add K, V pairs; a repeated HTTP_ header is joined as RFC 9110 §5.3 allows
    (", "; "; " for Cookie, as nginx 1.23+ itself does), not overwritten."""
    for k, v in zip(flat[::2], flat[1::2]):
        if k in seen and k.startswith("HTTP_"):
            env[k] += ("; " if k == "HTTP_COOKIE" else ", ") + v
        else:
            env[k] = v
            seen.add(k)


def reopen_logto(path: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError as e:
        sys.stderr.write(f"open() {path} failed ({e.errno}: {e.strerror}): keeping the old log file\n")
        return
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def rss_mb() -> float:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1 << 20)
    except (OSError, ValueError, IndexError):
        return 0.0


def worker_main(cfg, app, wid: int, slot: int, board, listeners, master_pid: int, death_r: int,
                generation: int, close_fds: list[int]) -> None:
    """Entry point in the forked child. Never returns."""
    code = 1
    try:
        set_pdeathsig(signal.SIGKILL)
        if os.getppid() != master_pid:
            os._exit(1)
        for fd in close_fds:
            try:
                os.close(fd)
            except OSError:
                pass
        set_title(f"{cfg.procname_prefix}pyfront: app worker {wid} ({cfg.name})")
        for s in (signal.SIGHUP, signal.SIGUSR1):
            signal.signal(s, signal.SIG_IGN)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        faulthandler.register(signal.SIGUSR2, file=sys.stderr, all_threads=True)
        if app is None:
            from pyfront.app.loader import AppLoadError, load
            try:
                app = load(cfg)
            except AppLoadError as exc:
                sys.stderr.write(f"{exc.tb}{exc}\n--- no python application found, check your startup logs for errors ---\n")
                sys.stderr.flush()
                os._exit(EXIT_BOOT_ERROR)
        w = Worker(cfg, app, wid, slot, board, listeners, master_pid, death_r, generation)
        for s in (signal.SIGTERM, signal.SIGQUIT, signal.SIGINT):
            signal.signal(s, w.on_signal)
        if cfg.logto:
            # USR1 from the app master (log reopen): our stdout/stderr follow its new logto
            # file. Python runs this on the main thread, outside the signal context, and
            # dup2() swaps the fd atomically for the serving threads.
            signal.signal(signal.SIGUSR1, lambda signum, frame: reopen_logto(cfg.logto))
        code = w.run()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:
            pass
        os._exit(code)
