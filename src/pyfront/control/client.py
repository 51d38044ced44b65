"""`pyfront ctl`: a supervisorctl-compatible client (same commands, output and exit codes).

    pyfront ctl [-c CONF_DIR|FILE] [-s URL] [-u USER] [-p PASS] [-i] [command [args...]]

With no command it opens an interactive shell. It talks XML-RPC to pyfront (or to a real
supervisord) over http:// or unix://. Where it says more than supervisorctl: `status` adds,
under each FATAL/BACKOFF process, the concrete cause and the last stderr lines (when the
server is pyfront), and `reopen` asks every layer to reopen its log files.
"""
from __future__ import annotations

import base64
import cmd
import errno
import http.client
import os
import shlex
import socket
import sys
import xmlrpc.client
from typing import Callable

from pyfront.control import faults as F
from pyfront.supervise.states import STOPPED_STATES

# supervisorctl's exit codes (LSB init / LSB status)
SUCCESS, GENERIC, INVALID_ARGS, UNIMPLEMENTED, INSUFFICIENT_PRIV, NOT_INSTALLED, NOT_RUNNING_INIT = 0, 1, 2, 3, 4, 5, 7
STATUS_NOT_RUNNING, STATUS_UNKNOWN = 3, 4
DEAD_PROGRAM_FAULTS = (F.SPAWN_ERROR, F.ABNORMAL_TERMINATION, F.NOT_RUNNING)


# --------------------------------------------------------------------------- transport

class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None = None):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if self.timeout is not None:
            s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock = s


class Transport(xmlrpc.client.Transport):
    """http://host:port or unix:///path, Basic auth when a username is given."""

    def __init__(self, serverurl: str, username: str | None, password: str | None):
        super().__init__()
        self.serverurl, self.username, self.password = serverurl, username, password

    def make_connection(self, host):
        if self._connection and self._connection[0] == host:
            return self._connection[1]
        if self.serverurl.startswith("unix://"):
            conn = _UnixConnection(self.serverurl[len("unix://"):])
        else:
            u = xmlrpc.client.urllib.parse.urlsplit(self.serverurl)
            conn = http.client.HTTPConnection(u.hostname or "localhost", u.port or 80)
        self._connection = host, conn
        return conn

    def send_headers(self, connection, headers):
        if self.username:
            cred = base64.b64encode(f"{self.username}:{self.password or ''}".encode()).decode()
            headers = list(headers) + [("Authorization", f"Basic {cred}")]
        super().send_headers(connection, headers)


def server_proxy(serverurl: str, username: str | None, password: str | None) -> xmlrpc.client.ServerProxy:
    return xmlrpc.client.ServerProxy("http://127.0.0.1/RPC2", transport=Transport(serverurl, username, password),
                                     allow_none=False)


def make_namespec(group: str, name: str) -> str:
    return name if group == name else f"{group}:{name}"


def split_namespec(spec: str) -> tuple[str, str | None]:
    if ":" in spec:
        g, n = spec.split(":", 1)
        return g, (None if n in ("", "*") else n)
    return spec, spec


# --------------------------------------------------------------------------- the controller

class Controller(cmd.Cmd):
    def __init__(self, serverurl: str, username: str | None, password: str | None, prompt: str = "supervisor",
                 interactive: bool = False, out=None):
        super().__init__(stdout=out or sys.stdout)
        self.serverurl, self.username, self.password = serverurl, username, password
        self.prompt = f"{prompt}> "
        self.interactive = interactive
        self.exitstatus = SUCCESS
        self._proxy = None

    # -- plumbing ----------------------------------------------------------------------------
    def out(self, text: str) -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()

    @property
    def sv(self):
        if self._proxy is None:
            self._proxy = server_proxy(self.serverurl, self.username, self.password)
        return self._proxy.supervisor

    @property
    def proxy(self):
        self.sv
        return self._proxy

    def _fault_exit(self, code: int, ignored: int | None = None) -> None:
        if code in (ignored, F.SUCCESS):
            return
        self.exitstatus = NOT_RUNNING_INIT if code in DEAD_PROGRAM_FAULTS else GENERIC

    def upcheck(self) -> bool:
        try:
            api = self.sv.getVersion()
            if api != "3.0":
                self.out(f"Sorry, this version of pyfront ctl expects to talk to a server with API version 3.0, "
                         f"but the remote version is {api}.")
                self.exitstatus = NOT_INSTALLED
                return False
        except xmlrpc.client.Fault as e:
            if e.faultCode == F.UNKNOWN_METHOD:
                self.out("Sorry, the server responded but did not recognize the supervisor namespace commands. "
                         "Please check that the [rpcinterface:supervisor] section is enabled.")
                self.exitstatus = UNIMPLEMENTED
                return False
            self.exitstatus = GENERIC
            raise
        except OSError as e:
            if e.errno == errno.ECONNREFUSED:
                self.out(f"{self.serverurl} refused connection")
                self.exitstatus = INSUFFICIENT_PRIV
                return False
            if e.errno == errno.ENOENT:
                self.out(f"{self.serverurl} no such file")
                self.exitstatus = NOT_RUNNING_INIT
                return False
            self.exitstatus = GENERIC
            raise
        return True

    def emptyline(self):
        return False

    _NAME_COMMANDS = ("status", "start", "stop", "restart", "signal", "pid", "tail", "clear", "fg",
                      "add", "remove", "update")

    def completedefault(self, text, line, begidx, endidx):
        """Tab completion of process and group names (readline), like supervisorctl's."""
        if line.split(" ", 1)[0] not in self._NAME_COMMANDS:
            return []
        try:
            infos = self.sv.getAllProcessInfo()
        except (OSError, xmlrpc.client.Error, http.client.HTTPException):
            return []
        names = {make_namespec(i["group"], i["name"]) for i in infos} | {f"{i['group']}:*" for i in infos}
        names.add("all")
        return sorted(n for n in names if n.startswith(text))

    def default(self, line):
        self.out(f"*** Unknown syntax: {line}")
        self.exitstatus = GENERIC

    def onecmd(self, line):
        name, arg, line = self.parseline(line)
        if not line:
            return self.emptyline()
        if name in ("quit", "exit", "EOF"):
            return True
        fn = getattr(self, "do_" + name, None) if name else None
        if fn is None:
            return self.default(line)
        try:
            return fn(arg or "")
        except xmlrpc.client.ProtocolError as e:
            if e.errcode == 401:
                self.out("Server requires authentication")
            else:
                self.out(f"error: {e.errcode} {e.errmsg}")
            self.exitstatus = GENERIC
        except OSError as e:
            if e.errno == errno.ECONNREFUSED:
                self.out(f"{self.serverurl} refused connection")
            elif e.errno == errno.ENOENT:
                self.out(f"{self.serverurl} no such file")
            else:
                self.out(f"error: {e}")
            self.exitstatus = GENERIC
        except xmlrpc.client.Fault as e:
            self.out(f"error: {e.faultString}")
            self.exitstatus = GENERIC
        except (http.client.HTTPException, xmlrpc.client.Error) as e:
            self.out(f"error: {type(e).__name__}: {e}")
            self.exitstatus = GENERIC
        return False

    # -- status -------------------------------------------------------------------------------
    def do_status(self, arg):
        if not self.upcheck():
            self.exitstatus = STATUS_UNKNOWN
            return
        infos = self._details()
        names = arg.split()
        if names and "all" not in names:
            chosen = []
            for name in names:
                g, n = split_namespec(name)
                hits = [i for i in infos if i["group"] == g and (n is None or i["name"] == n)]
                if not hits:
                    self.out(f"{g}: ERROR (no such group)" if n is None else f"{name}: ERROR (no such process)")
                    self.exitstatus = STATUS_UNKNOWN
                chosen.extend(hits)
            infos = chosen
        width = max([30] + [len(make_namespec(i["group"], i["name"])) for i in infos]) + 3
        for i in infos:
            self.out(f"{make_namespec(i['group'], i['name']):<{width}}{i['statename']:<10}{i['description']}")
            for extra in self._explain(i):
                self.out(" " * width + extra)
        if not names or "all" in names:
            for line in self._connections():
                self.out(line)
        if any(i["state"] in [int(s) for s in STOPPED_STATES] for i in infos):
            self.exitstatus = STATUS_NOT_RUNNING

    def _details(self) -> list[dict]:
        try:
            return self.proxy.pyfront.getAllProcessDetails()
        except xmlrpc.client.Fault as e:
            if e.faultCode != F.UNKNOWN_METHOD:
                raise
            return self.sv.getAllProcessInfo()   # a real supervisord

    def _connections(self) -> list[str]:
        """The front's stub_status numbers under the rows (pyfront only)."""
        try:
            c = self.proxy.pyfront.getConnections()
        except xmlrpc.client.Fault:
            return []      # a real supervisord, or a pyfront without it
        if not c:
            return []
        return [f"front connections: active {c['active']}, accepts {c['accepts']}, handled {c['handled']}, "
                f"requests {c['requests']}, reading {c['reading']}, writing {c['writing']}, waiting {c['waiting']}"]

    @staticmethod
    def _explain(info: dict) -> list[str]:
        if info.get("statename") not in ("FATAL", "BACKOFF") or not info.get("cause"):
            return []
        return [f"└ cause: {info['cause']}"]

    # -- start / stop / restart / signal --------------------------------------------------------
    def _result_line(self, r: dict, success: str) -> str:
        name = make_namespec(r["group"], r["name"])
        code = r["status"]
        if code == F.SUCCESS:
            return f"{name}: {success}"
        text = {F.BAD_NAME: "no such process", F.NO_FILE: "no such file", F.NOT_EXECUTABLE: "file is not executable",
                F.ALREADY_STARTED: "already started", F.SPAWN_ERROR: "spawn error",
                F.ABNORMAL_TERMINATION: "abnormal termination", F.BAD_SIGNAL: "bad signal name",
                F.NOT_RUNNING: "not running"}.get(code)
        if code == F.FAILED and success != "started":
            return r["description"]
        return f"{name}: ERROR ({text or r['description']})"

    def _each(self, names: list[str], single: Callable, group: Callable, all_: Callable, success: str,
              ignored: int, bad_group_exit: int) -> None:
        if "all" in names:
            for r in all_():
                self.out(self._result_line(r, success))
                self._fault_exit(r["status"], ignored)
            return
        for name in names:
            g, n = split_namespec(name)
            if n is None:
                try:
                    for r in group(g):
                        self.out(self._result_line(r, success))
                        self._fault_exit(r["status"], ignored)
                except xmlrpc.client.Fault as e:
                    if e.faultCode != F.BAD_NAME:
                        self.exitstatus = GENERIC
                        raise
                    self.out(f"{g}: ERROR (no such group)")
                    self.exitstatus = bad_group_exit
                continue
            try:
                single(name)
            except xmlrpc.client.Fault as e:
                r = {"status": e.faultCode, "name": n, "group": g, "description": e.faultString}
                self.out(self._result_line(r, success))
                self._fault_exit(e.faultCode, ignored)
            else:
                self.out(f"{make_namespec(g, n)}: {success}")

    def do_start(self, arg):
        if not self.upcheck():
            return
        names = arg.split()
        if not names:
            self.out("Error: start requires a process name")
            self.exitstatus = INVALID_ARGS
            self.help_start()
            return
        self._each(names, self.sv.startProcess, self.sv.startProcessGroup, self.sv.startAllProcesses,
                   "started", F.ALREADY_STARTED, INVALID_ARGS)

    def do_stop(self, arg):
        if not self.upcheck():
            return
        names = arg.split()
        if not names:
            self.out("Error: stop requires a process name")
            self.exitstatus = GENERIC
            self.help_stop()
            return
        self._each(names, self.sv.stopProcess, self.sv.stopProcessGroup, self.sv.stopAllProcesses,
                   "stopped", F.NOT_RUNNING, GENERIC)

    def do_restart(self, arg):
        names = arg.split()
        if not names:
            self.out("Error: restart requires a process name")
            self.exitstatus = GENERIC
            self.help_restart()
            return
        self.do_stop(arg)
        self.do_start(arg)

    def do_signal(self, arg):
        if not self.upcheck():
            return
        args = arg.split()
        if len(args) < 2:
            self.out("Error: signal requires a signal name and a process name")
            self.help_signal()
            self.exitstatus = GENERIC
            return
        sig, names = args[0], args[1:]
        self._each(names, lambda n: self.sv.signalProcess(n, sig), lambda g: self.sv.signalProcessGroup(g, sig),
                   lambda: self.sv.signalAllProcesses(sig), "signalled", F.SUCCESS, GENERIC)

    # -- pid / tail / clear --------------------------------------------------------------------------
    def do_pid(self, arg):
        if not self.upcheck():
            return
        names = arg.split()
        if not names:
            self.out(str(self.sv.getPID()))
        elif "all" in names:
            for i in self.sv.getAllProcessInfo():
                self.out(str(i["pid"]))
        else:
            for name in names:
                try:
                    pid = self.sv.getProcessInfo(name)["pid"]
                except xmlrpc.client.Fault as e:
                    self.exitstatus = GENERIC
                    if e.faultCode != F.BAD_NAME:
                        raise
                    self.out(f"No such process {name}")
                    continue
                self.out(str(pid))
                if pid == 0:
                    self.exitstatus = NOT_RUNNING_INIT

    def do_tail(self, arg):
        if not self.upcheck():
            return
        args = arg.split()
        if not args:
            self.out("Error: too few arguments")
            self.exitstatus = GENERIC
            self.help_tail()
            return
        if len(args) > 3:
            self.out("Error: too many arguments")
            self.exitstatus = GENERIC
            self.help_tail()
            return
        modifier = args.pop(0) if args[0].startswith("-") else None
        if not args:
            self.out("Error: tail requires process name")
            self.exitstatus = GENERIC
            return
        name = args[0]
        channel = args[-1].lower() if len(args) > 1 else "stdout"
        if channel not in ("stdout", "stderr"):
            self.out(f"Error: bad channel {channel!r}")
            self.exitstatus = GENERIC
            return
        nbytes: int | None = 1600
        if modifier is not None:
            if modifier[1:] == "f":
                nbytes = None
            else:
                try:
                    nbytes = int(modifier[1:])
                except ValueError:
                    self.out(f"Error: bad argument {modifier}")
                    self.exitstatus = GENERIC
                    return
        if nbytes is None:
            return self._follow(f"/logtail/{name}/{channel}")
        try:
            reader = self.sv.readProcessStdoutLog if channel == "stdout" else self.sv.readProcessStderrLog
            text = reader(name, -nbytes, 0)
        except xmlrpc.client.Fault as e:
            self.exitstatus = GENERIC
            msg = {F.NO_FILE: "no log file", F.FAILED: "unknown error reading log",
                   F.BAD_NAME: "no such process name"}.get(e.faultCode)
            if msg is None:
                raise
            self.out(f"{name}: ERROR ({msg})")
            return
        self.out(text)

    def do_maintail(self, arg):
        if not self.upcheck():
            return
        args = arg.split()
        if len(args) > 1:
            self.out("Error: too many arguments")
            self.exitstatus = GENERIC
            return
        nbytes: int | None = 1600
        if args:
            if args[0] == "-f":
                return self._follow("/mainlogtail")
            if not args[0].startswith("-"):
                self.out(f"Error: bad argument {args[0]}")
                self.exitstatus = GENERIC
                return
            try:
                nbytes = int(args[0][1:])
            except ValueError:
                self.out(f"Error: bad argument {args[0]}")
                self.exitstatus = GENERIC
                return
        try:
            self.out(self.sv.readLog(-nbytes, 0))
        except xmlrpc.client.Fault as e:
            self.exitstatus = GENERIC
            if e.faultCode == F.NO_FILE:
                self.out("supervisord: ERROR (no log file)")
            else:
                self.out("supervisord: ERROR (unknown error reading log)")

    def _follow(self, path: str) -> None:
        """tail -f: a plain HTTP GET of the chunked /logtail endpoint until Ctrl-C."""
        self.out("==> Press Ctrl-C to exit <==")
        conn = Transport(self.serverurl, self.username, self.password).make_connection("x")
        try:
            resp = self._get(conn, path)
            if resp.status == 401:
                self.out("Server requires authentication")
                self.exitstatus = GENERIC
                return
            if resp.status != 200:
                self.out(f"Error: {resp.status} {resp.reason}")
                self.exitstatus = GENERIC
                return
            while True:
                data = resp.read1(65536)
                if not data:
                    break
                self.stdout.write(data.decode("utf-8", "replace"))
                self.stdout.flush()
        except KeyboardInterrupt:
            self.out("")
        finally:
            conn.close()

    def do_clear(self, arg):
        if not self.upcheck():
            return
        names = arg.split()
        if not names:
            self.out("Error: clear requires a process name")
            self.exitstatus = GENERIC
            self.help_clear()
            return

        def line(r):
            name = make_namespec(r["group"], r["name"])
            if r["status"] == F.SUCCESS:
                return f"{name}: cleared"
            return f"{name}: ERROR ({'no such process' if r['status'] == F.BAD_NAME else 'failed'})"
        if "all" in names:
            for r in self.sv.clearAllProcessLogs():
                self.out(line(r))
                self._fault_exit(r["status"])
            return
        for name in names:
            g, n = split_namespec(name)
            try:
                self.sv.clearProcessLogs(name)
            except xmlrpc.client.Fault as e:
                self.out(line({"status": e.faultCode, "name": n or g, "group": g}))
                self._fault_exit(e.faultCode)
            else:
                self.out(f"{make_namespec(g, n or g)}: cleared")

    # -- config ----------------------------------------------------------------------------------------
    def _shutdown_guard(self, e: xmlrpc.client.Fault, msg: str = "ERROR: already shutting down") -> None:
        self.exitstatus = GENERIC
        if e.faultCode == F.SHUTDOWN_STATE:
            self.out(msg)
        else:
            raise e

    def do_avail(self, arg):
        if arg.strip():
            self.out("Error: avail accepts no arguments")
            self.exitstatus = GENERIC
            return
        try:
            infos = self.sv.getAllConfigInfo()
        except xmlrpc.client.Fault as e:
            return self._shutdown_guard(e, "ERROR: supervisor shutting down")
        for c in infos:
            name = make_namespec(c["group"], c["name"])
            self.out(f"{name:<32} {'in use' if c['inuse'] else 'avail':<9} "
                     f"{'auto' if c['autostart'] else 'manual':<9} {c['group_prio']}:{c['process_prio']}")

    def do_reread(self, arg):
        if arg.strip():
            self.out("Error: reread accepts no arguments")
            self.exitstatus = GENERIC
            return
        try:
            added, changed, removed = self.sv.reloadConfig()[0]
        except xmlrpc.client.Fault as e:
            self.exitstatus = GENERIC
            if e.faultCode == F.SHUTDOWN_STATE:
                self.out("ERROR: supervisor shutting down")
            elif e.faultCode == F.CANT_REREAD:
                self.out(f"ERROR: {e.faultString}")
            else:
                raise
            return
        self._changes(added, changed, removed)

    def _changes(self, added, changed, removed) -> None:
        what = {**{n: "available" for n in added}, **{n: "changed" for n in changed},
                **{n: "disappeared" for n in removed}}
        if not what:
            self.out("No config updates to processes")
        for n in sorted(what):
            self.out(f"{n}: {what[n]}")

    def do_add(self, arg):
        for name in arg.split():
            try:
                self.sv.addProcessGroup(name)
            except xmlrpc.client.Fault as e:
                if e.faultCode == F.SHUTDOWN_STATE:
                    self.out("ERROR: shutting down")
                    self.exitstatus = GENERIC
                elif e.faultCode == F.ALREADY_ADDED:
                    self.out("ERROR: process group already active")
                elif e.faultCode == F.BAD_NAME:
                    self.out(f"ERROR: no such process/group: {name}")
                    self.exitstatus = GENERIC
                else:
                    self.exitstatus = GENERIC
                    raise
            else:
                self.out(f"{name}: added process group")

    def do_remove(self, arg):
        for name in arg.split():
            try:
                self.sv.removeProcessGroup(name)
            except xmlrpc.client.Fault as e:
                self.exitstatus = GENERIC
                if e.faultCode == F.STILL_RUNNING:
                    self.out(f"ERROR: process/group still running: {name}")
                elif e.faultCode == F.BAD_NAME:
                    self.out(f"ERROR: no such process/group: {name}")
                else:
                    raise
            else:
                self.out(f"{name}: removed process group")

    def do_update(self, arg):
        try:
            added, changed, removed = self.sv.reloadConfig()[0]
        except xmlrpc.client.Fault as e:
            return self._shutdown_guard(e)
        wanted = set(arg.split())
        if "all" in wanted:
            wanted = set()
        if wanted:
            known = {i["group"] for i in self.sv.getAllProcessInfo()} | set(added)
            for g in sorted(wanted - known):
                self.out(f"ERROR: no such group: {g}")
                self.exitstatus = GENERIC
        pick = (lambda g: not wanted or g in wanted)
        for g in filter(pick, removed):
            results = self.sv.stopProcessGroup(g)
            self.out(f"{g}: stopped")
            if any(r["status"] == F.FAILED for r in results):
                self.out(f"{g}: has problems; not removing")
                self.exitstatus = GENERIC
                continue
            self.sv.removeProcessGroup(g)
            self.out(f"{g}: removed process group")
        for g in filter(pick, changed):
            self.sv.stopProcessGroup(g)
            self.out(f"{g}: stopped")
            self.sv.removeProcessGroup(g)
            self.sv.addProcessGroup(g)
            self.out(f"{g}: updated process group")
        for g in filter(pick, added):
            self.sv.addProcessGroup(g)
            self.out(f"{g}: added process group")

    # -- daemon ------------------------------------------------------------------------------------------
    def _confirm(self, question: str) -> bool:
        if not self.interactive:
            return True
        try:
            return input(question).strip().lower() in ("y", "yes")
        except EOFError:
            return False

    def do_reload(self, arg):
        if arg.strip():
            self.out("Error: reload accepts no arguments")
            self.exitstatus = GENERIC
            return
        if not self._confirm("Really restart the remote supervisord process y/N? "):
            return
        try:
            self.sv.restart()
        except xmlrpc.client.Fault as e:
            return self._shutdown_guard(e)
        self.out("Restarted supervisord")

    def do_shutdown(self, arg):
        if arg.strip():
            self.out("Error: shutdown accepts no arguments")
            self.exitstatus = GENERIC
            return
        if not self._confirm("Really shut the remote supervisord process down y/N? "):
            return
        try:
            self.sv.shutdown()
        except xmlrpc.client.Fault as e:
            return self._shutdown_guard(e)
        except OSError as e:
            self.exitstatus = GENERIC
            if e.errno == errno.ECONNREFUSED:
                self.out(f"ERROR: {self.serverurl} refused connection (already shut down?)")
                return
            raise
        self.out("Shut down")

    def do_reopen(self, arg):
        """pyfront extra: reopen every log file (like SIGUSR1)."""
        try:
            self.proxy.pyfront.reopenLogs()
        except xmlrpc.client.Fault as e:
            if e.faultCode == F.UNKNOWN_METHOD:
                self.out("ERROR: the server does not support reopen (send supervisord SIGUSR2 instead)")
                self.exitstatus = GENERIC
                return
            raise
        self.out("Reopened log files")

    def do_version(self, arg):
        if arg.strip():
            self.out("Error: version accepts no arguments")
            self.exitstatus = GENERIC
            return
        if not self.upcheck():
            return
        self.out(self.sv.getSupervisorVersion())

    def do_open(self, arg):
        url = arg.strip()
        if not url.startswith(("http://", "unix://")):
            self.out("ERROR: url must be http:// or unix://")
            self.exitstatus = GENERIC
            return
        self.serverurl, self._proxy = url, None
        self.do_status("")

    def do_fg(self, arg):
        """fg <process>: follow a process's output and send typed lines to its stdin."""
        if not self.upcheck():
            return
        names = arg.split()
        if not names:
            self.out("ERROR: no process name supplied")
            self.exitstatus = GENERIC
            return
        if len(names) > 1:
            self.out("ERROR: too many process names supplied")
            self.exitstatus = GENERIC
            return
        name = names[0]
        try:
            info = self.sv.getProcessInfo(name)
        except xmlrpc.client.Fault as e:
            self.exitstatus = GENERIC
            self.out("ERROR: bad process name supplied" if e.faultCode == F.BAD_NAME else f"ERROR: {e.faultString}")
            return
        if info["state"] != 20:
            self.out("ERROR: process not running")
            self.exitstatus = GENERIC
            return
        self.out("==> Press Ctrl-C to exit <==")
        import threading
        # The followers write from their own threads: "Exiting foreground" must be the last
        # line, so they write under a lock and stop once `done` is set.
        self._fg_lock, self._fg_done = threading.Lock(), threading.Event()
        followers = [threading.Thread(target=self._stream, args=(f"/logtail/{name}/{ch}",), daemon=True)
                     for ch in ("stdout", "stderr")]
        for t in followers:
            t.start()
        try:
            for line in sys.stdin:
                try:
                    self.sv.sendProcessStdin(name, line)
                except xmlrpc.client.Fault as e:
                    self.out("Process got killed" if e.faultCode == F.NOT_RUNNING else f"ERROR: {e.faultString}")
                    break
        except KeyboardInterrupt:
            pass
        with self._fg_lock:
            self._fg_done.set()
            self.out("Exiting foreground")

    def _get(self, conn, path: str):
        """GET path on conn with the server's credentials; the response, body unread."""
        headers = {}
        if self.username:
            headers["Authorization"] = "Basic " + base64.b64encode(
                f"{self.username}:{self.password or ''}".encode()).decode()
        conn.request("GET", path, headers=headers)
        return conn.getresponse()

    def _stream(self, path: str) -> None:
        conn = Transport(self.serverurl, self.username, self.password).make_connection("x")
        try:
            resp = self._get(conn, path)
            if resp.status != 200:
                return
            while True:
                data = resp.read1(65536)
                if not data:
                    return
                with self._fg_lock:
                    if self._fg_done.is_set():
                        return
                    self.stdout.write(data.decode("utf-8", "replace"))
                    self.stdout.flush()
        except (OSError, http.client.HTTPException):
            return

    # -- help --------------------------------------------------------------------------------------------
    def help_start(self):
        self.out("start <name>\t\tStart a process\nstart <gname>:*\t\tStart all processes in a group\n"
                 "start <name> <name>\tStart multiple processes or groups\nstart all\t\tStart all processes")

    def help_stop(self):
        self.out("stop <name>\t\tStop a process\nstop <gname>:*\t\tStop all processes in a group\n"
                 "stop <name> <name>\tStop multiple processes or groups\nstop all\t\tStop all processes")

    def help_restart(self):
        self.out("restart <name>\t\tRestart a process\nrestart <gname>:*\tRestart all processes in a group\n"
                 "restart all\t\tRestart all processes\nNote: restart does not reread config files. For that, "
                 "see reread and update.")

    def help_signal(self):
        self.out("signal <signal name> <name>\t\tSignal a process\nsignal <signal name> <gname>:*\t\t"
                 "Signal all processes in a group\nsignal <signal name> all\t\tSignal all processes")

    def help_tail(self):
        self.out("tail [-f] <name> [stdout|stderr] (default stdout)\nEx:\ntail -f <name>\t\tContinuous tail of "
                 "named process stdout\n\t\t\tCtrl-C to exit.\ntail -100 <name>\tlast 100 *bytes* of process "
                 "stdout\ntail <name> stderr\tlast 1600 *bytes* of process stderr")

    def help_clear(self):
        self.out("clear <name>\t\tClear a process' log files.\nclear all\t\tClear all process' log files")

    def do_help(self, arg):
        if arg:
            fn = getattr(self, "help_" + arg, None)
            if fn:
                fn()
            elif getattr(self, "do_" + arg, None) and getattr(self, "do_" + arg).__doc__:
                self.out(getattr(self, "do_" + arg).__doc__)
            else:
                self.out(f"*** No help on {arg}")
            return
        names = sorted(n[3:] for n in dir(self) if n.startswith("do_") and n != "do_EOF")
        self.out("\ndefault commands (type help <topic>):\n" + "=" * 40)
        self.out("  ".join(names + ["exit", "quit"]))


# --------------------------------------------------------------------------- options

def _ctl_settings(conf: str) -> tuple[str | None, str | None, str | None, str]:
    """(serverurl, username, password, prompt) from a CONF_DIR or a supervisord.conf file."""
    from pyfront.config.confdir import load_confdir
    from pyfront.config.diagnostics import Report
    from pyfront.config.ini import read_ini
    from pyfront.supervise.config import parse_supervisor_sections
    if os.path.isdir(conf):
        sections = load_confdir(conf).supervisor_sections
        here = os.path.abspath(conf)
    else:
        with open(conf, encoding="utf-8", errors="replace") as f:
            sections = tuple(read_ini(f.read(), os.path.abspath(conf), "supervisor"))
        here = os.path.dirname(os.path.abspath(conf))
    cfg = parse_supervisor_sections(sections, here, Report())
    has_ctl = any(s.name == "supervisorctl" for s in sections)
    if has_ctl:
        return cfg.ctl.serverurl, cfg.ctl.username, cfg.ctl.password, cfg.ctl.prompt
    from pyfront.control.server import serve_address_for_ctl
    srv = cfg.unix or cfg.inet
    return serve_address_for_ctl(cfg), srv.username if srv else None, srv.password if srv else None, cfg.ctl.prompt


USAGE = """usage: pyfront ctl [-c CONF_DIR|FILE] [-s URL] [-u USER] [-p PASS] [-i] [command [args]]

-c  CONF_DIR (or a supervisord.conf) whose [supervisorctl] (or control server) to use
-s  server URL: http://host:port or unix:///path/to.sock (default http://localhost:9001)
-u  username, -p password (Basic auth)
-i  interactive shell after the command
With no command: an interactive shell. Commands: status start stop restart signal pid tail
maintail clear avail reread update add remove reload shutdown version reopen open fg help quit"""


def main(argv: list[str]) -> int:
    conf = url = user = pw = None
    interactive = False
    args = list(argv)
    rest: list[str] = []
    while args:
        a = args.pop(0)
        if a in ("-h", "--help"):
            print(USAGE)
            return 0
        if a in ("-c", "--configuration", "-s", "--serverurl", "-u", "--username", "-p", "--password"):
            if not args:
                print(f"pyfront ctl: option {a} needs a value\n\n{USAGE}", file=sys.stderr)
                return 2
            v = args.pop(0)
            if a in ("-c", "--configuration"):
                conf = v
            elif a in ("-s", "--serverurl"):
                url = v
            elif a in ("-u", "--username"):
                user = v
            else:
                pw = v
        elif a in ("-i", "--interactive"):
            interactive = True
        elif a.startswith("-") and not rest:
            print(f"pyfront ctl: unknown option {a}\n\n{USAGE}", file=sys.stderr)
            return 2
        else:
            rest = [a] + args
            break
    prompt = "supervisor"
    if conf is not None or url is None:
        conf = conf or _default_conf()
        if conf is not None:
            try:
                c_url, c_user, c_pw, prompt = _ctl_settings(conf)
            except Exception as e:  # noqa: BLE001 - a broken config still lets -s work
                if url is None:
                    print(f"pyfront ctl: cannot read {conf}: {e}", file=sys.stderr)
                    return 2
                c_url = c_user = c_pw = None
            url = url or c_url
            user = user if user is not None else c_user
            pw = pw if pw is not None else c_pw
    url = url or "http://localhost:9001"
    ctl = Controller(url, user, pw, prompt=prompt, interactive=interactive or not rest)
    if rest:
        ctl.onecmd(" ".join(shlex.quote(x) if " " in x else x for x in rest))
        if not interactive:
            return ctl.exitstatus
    ctl.interactive = True
    if not rest:
        ctl.do_status("")
    try:
        ctl.cmdloop()
    except KeyboardInterrupt:
        print()
    return ctl.exitstatus


def _default_conf() -> str | None:
    for c in ("supervisord.conf", "etc/supervisord.conf", "/etc/supervisord.conf",
              "/etc/supervisor/supervisord.conf"):
        if os.path.exists(c):
            return c
    return None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
