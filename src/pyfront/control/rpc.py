"""The XML-RPC methods: Supervisor's `supervisor.*` and `system.*`, plus `pyfront.*` extras.

Semantics follow supervisor/rpcinterface.py (read, not copied): the same fault codes and
fault strings, the same group/all result structs, and the same blocking behaviour — a
method may return a `Deferred`, which the HTTP server polls from loop timers until it
yields a value (start waits for RUNNING, stop for a stopped state). Marshalling is the
stdlib's xmlrpc (the server calls xmlrpc.client.dumps on what `call` returns).
"""
from __future__ import annotations

import inspect
import os
import signal as _signal
from typing import Any, Callable

from pyfront import __version__
from pyfront.component import ProcessStatus
from pyfront.config.diagnostics import ConfigError
from pyfront.control import faults as F
from pyfront.control.faults import RPCError
from pyfront.control.master_api import MasterControl
from pyfront.supervise.component import SupervisorComponent, describe, split_namespec
from pyfront.supervise.config import SupervisorConfig, to_signal, ValueProblem
from pyfront.supervise.logs import read_tail, tail_from
from pyfront.supervise.osapi import SpawnError
from pyfront.supervise.process import Subprocess
from pyfront.supervise.states import RUNNING_STATES, SIGNALLABLE_STATES, STOPPED_STATES, ProcessState

API_VERSION = "3.0"
NOT_DONE_YET = object()


class Deferred:
    """A pending answer: `poll()` returns NOT_DONE_YET or the value (or raises RPCError)."""

    def __init__(self, poll: Callable[[], Any]):
        self.poll = poll


# (return type, param types...) — system.methodSignature, and what methodHelp documents.
SIGNATURES: dict[str, tuple[list[str], str]] = {
    "supervisor.getAPIVersion": (["string"], "Return the version of the RPC API used by supervisorctl (\"3.0\")."),
    "supervisor.getVersion": (["string"], "Deprecated alias of getAPIVersion."),
    "supervisor.getSupervisorVersion": (["string"], "Return the version of pyfront serving this API."),
    "supervisor.getIdentification": (["string"], "Return the [supervisord] identifier."),
    "supervisor.getState": (["struct"], "Return {statecode, statename} of the pyfront master."),
    "supervisor.getPID": (["int"], "Return the pid of the pyfront master."),
    "supervisor.readLog": (["string", "int", "int"], "Read length bytes of the main log from offset (negative offset: from the end)."),
    "supervisor.readMainLog": (["string", "int", "int"], "Alias of readLog."),
    "supervisor.clearLog": (["boolean"], "Truncate the main log."),
    "supervisor.shutdown": (["boolean"], "Stop every layer and exit (like SIGQUIT)."),
    "supervisor.restart": (["boolean"], "Reload every layer (like SIGHUP)."),
    "supervisor.reloadConfig": (["array"], "Re-read the configuration; return [[added, changed, removed]] group names."),
    "supervisor.addProcessGroup": (["boolean", "string"], "Start managing a group from the last configuration read."),
    "supervisor.removeProcessGroup": (["boolean", "string"], "Stop managing a stopped group."),
    "supervisor.startProcess": (["boolean", "string", "boolean"], "Start a process (name, group:name or group:*); with wait, answer once it is RUNNING."),
    "supervisor.startProcessGroup": (["array", "string", "boolean"], "Start every process of a group; return a status struct per process."),
    "supervisor.startAllProcesses": (["array", "boolean"], "Start every process, in priority order."),
    "supervisor.stopProcess": (["boolean", "string", "boolean"], "Stop a process; with wait, answer once it is stopped."),
    "supervisor.stopProcessGroup": (["array", "string", "boolean"], "Stop every process of a group."),
    "supervisor.stopAllProcesses": (["array", "boolean"], "Stop every process, in reverse priority order."),
    "supervisor.signalProcess": (["boolean", "string", "string"], "Send a signal (name or number) to a process."),
    "supervisor.signalProcessGroup": (["array", "string", "string"], "Send a signal to every process of a group."),
    "supervisor.signalAllProcesses": (["array", "string"], "Send a signal to every process."),
    "supervisor.getAllConfigInfo": (["array"], "Return the configuration of every process from the last read."),
    "supervisor.getProcessInfo": (["struct", "string"], "Return the status struct of one process."),
    "supervisor.getAllProcessInfo": (["array"], "Return the status struct of every process."),
    "supervisor.readProcessLog": (["string", "string", "int", "int"], "Alias of readProcessStdoutLog."),
    "supervisor.readProcessStdoutLog": (["string", "string", "int", "int"], "Read a process's stdout log."),
    "supervisor.readProcessStderrLog": (["string", "string", "int", "int"], "Read a process's stderr log."),
    "supervisor.tailProcessLog": (["array", "string", "int", "int"], "Alias of tailProcessStdoutLog."),
    "supervisor.tailProcessStdoutLog": (["array", "string", "int", "int"], "Return [bytes, offset, overflow] of the stdout log after offset."),
    "supervisor.tailProcessStderrLog": (["array", "string", "int", "int"], "Return [bytes, offset, overflow] of the stderr log after offset."),
    "supervisor.clearProcessLogs": (["boolean", "string"], "Empty a process's log files and drop their backups."),
    "supervisor.clearProcessLog": (["boolean", "string"], "Alias of clearProcessLogs."),
    "supervisor.clearAllProcessLogs": (["array"], "Empty every process's log files."),
    "supervisor.sendProcessStdin": (["boolean", "string", "string"], "Send characters to a running process's stdin."),
    "supervisor.sendRemoteCommEvent": (["boolean", "string", "string"], "Accepted; pyfront has no event listeners."),
    "system.listMethods": (["array"], "Return the names of every method."),
    "system.methodHelp": (["string", "string"], "Return the documentation of a method."),
    "system.methodSignature": (["array", "string"], "Return [return type, param types...] of a method."),
    "system.multicall": (["array", "array"], "Run [{methodName, params}, ...]; return each result or a fault struct."),
    "pyfront.getConnections": (["struct"], "the front's stub_status numbers: active, accepts, handled, requests, reading, writing, waiting ({} without a front)."),
    "pyfront.getAllProcessDetails": (["array"], "getAllProcessInfo rows plus pyfront's extras: read_only, rss, requests, cause, last stderr lines."),
    "pyfront.reopenLogs": (["boolean"], "Reopen every log file (like SIGUSR1)."),
}


def _result(namespec_group: str, name: str, code: int, text: str) -> dict:
    return {"name": name, "group": namespec_group, "status": code, "description": text}


class RPCInterface:
    def __init__(self, supervisor: SupervisorComponent, master: MasterControl):
        self.sup = supervisor
        self.master = master
        self.loaded: SupervisorConfig = supervisor.config   # last configuration read (avail/add)

    # -- dispatch -----------------------------------------------------------------------------
    def call(self, method: str, params: tuple) -> Any:
        if method not in SIGNATURES:
            raise RPCError(F.UNKNOWN_METHOD)
        fn = getattr(self, "_" + method.replace(".", "_"))
        try:
            inspect.signature(fn).bind(*params)
        except TypeError:
            raise RPCError(F.INCORRECT_PARAMETERS) from None
        return fn(*params)

    def _update(self) -> None:
        if self.master.state() != "RUNNING":
            raise RPCError(F.SHUTDOWN_STATE)

    # -- system.* -------------------------------------------------------------------------------
    def _system_listMethods(self):
        return sorted(SIGNATURES)

    def _system_methodHelp(self, name):
        if name not in SIGNATURES:
            raise RPCError(F.SIGNATURE_UNSUPPORTED)
        return SIGNATURES[name][1]

    def _system_methodSignature(self, name):
        if name not in SIGNATURES:
            raise RPCError(F.SIGNATURE_UNSUPPORTED)
        return list(SIGNATURES[name][0])   # flat [return, params...], as Supervisor answers

    def _system_multicall(self, calls):
        remaining = list(calls)
        results: list = []
        pending: list[Deferred] = []

        def step():
            if pending:
                try:
                    v = pending[0].poll()
                except RPCError as e:
                    v = {"faultCode": e.code, "faultString": e.text}
                if v is NOT_DONE_YET:
                    return NOT_DONE_YET
                pending.pop()
                results.append(v)
            while not pending and remaining:
                c = remaining.pop(0)
                name = c.get("methodName") if isinstance(c, dict) else None
                params = c.get("params", []) if isinstance(c, dict) else []
                try:
                    if name is None:
                        raise RPCError(F.INCORRECT_PARAMETERS, "No methodName")
                    if name == "system.multicall":
                        raise RPCError(F.INCORRECT_PARAMETERS, "Recursive system.multicall forbidden")
                    v = self.call(name, tuple(params))
                except RPCError as e:
                    v = {"faultCode": e.code, "faultString": e.text}
                except Exception as e:  # noqa: BLE001 - a fault per call, never a dead server
                    v = {"faultCode": F.FAILED, "faultString": f"FAILED: {type(e).__name__}:{e}"}
                if isinstance(v, Deferred):
                    pending.append(v)
                    return step()
                results.append(v)
            return NOT_DONE_YET if pending else results

        v = step()
        return Deferred(step) if v is NOT_DONE_YET else v

    # -- daemon ---------------------------------------------------------------------------------
    def _supervisor_getAPIVersion(self):
        return API_VERSION

    _supervisor_getVersion = _supervisor_getAPIVersion

    def _supervisor_getSupervisorVersion(self):
        return __version__

    def _supervisor_getIdentification(self):
        return self.master.identification()

    def _supervisor_getState(self):
        name = self.master.state()
        code = {"FATAL": 2, "RUNNING": 1, "RESTARTING": 0, "SHUTDOWN": -1}[name]
        return {"statecode": code, "statename": name}

    def _supervisor_getPID(self):
        return os.getpid()

    def _main_log(self) -> str | None:
        return self.sup.main_log_path() or self.master.main_log_path()

    def _supervisor_readLog(self, offset, length):
        self._update()
        path = self._main_log()
        if not path or not os.path.exists(path):
            raise RPCError(F.NO_FILE, path)
        data, fault = read_tail(path, offset, length)
        if fault:
            raise RPCError(fault)
        return data.decode("utf-8", "replace")

    _supervisor_readMainLog = _supervisor_readLog

    def _supervisor_clearLog(self):
        self._update()
        path = self._main_log()
        if not path or not os.path.exists(path):
            raise RPCError(F.NO_FILE)
        try:
            if self.sup.mainlog is not None and path == self.sup.mainlog.path:
                self.sup.mainlog.clear()
            else:
                os.truncate(path, 0)
        except OSError as e:
            raise RPCError(F.FAILED, e.strerror) from None
        return True

    def _supervisor_shutdown(self):
        self._update()
        self.master.request_shutdown()
        return True

    def _supervisor_restart(self):
        self._update()
        self.master.request_reload()
        return True

    def _supervisor_reloadConfig(self):
        self._update()
        try:
            new = self.master.load_supervisor_config()
        except ConfigError as e:
            raise RPCError(F.CANT_REREAD, "; ".join(d.format() for d in e.diagnostics)) from None
        except (OSError, ValueError) as e:
            raise RPCError(F.CANT_REREAD, str(e)) from None
        self.loaded = new
        added, changed, removed = self.sup.diff(new)
        return [[added, changed, removed]]

    def _supervisor_addProcessGroup(self, name):
        self._update()
        g = self.loaded.group(name)
        if g is None:
            raise RPCError(F.BAD_NAME, name)
        if not self.sup.add_group(g):
            raise RPCError(F.ALREADY_ADDED, name)
        return True

    def _supervisor_removeProcessGroup(self, name):
        self._update()
        if name not in self.sup.groups:
            raise RPCError(F.BAD_NAME, name)
        if not self.sup.remove_group(name):
            raise RPCError(F.STILL_RUNNING, name)
        return True

    # -- lookup ---------------------------------------------------------------------------------
    def _find(self, name: str):
        group_name, proc_name = split_namespec(name)
        g = self.sup.groups.get(group_name)
        if g is None:
            if self._worker_row(name) is not None or any(r.group == group_name for r in self._worker_rows()):
                raise RPCError(F.FAILED, f"{name} is run by pyfront itself (read-only)")
            raise RPCError(F.BAD_NAME, name)
        if proc_name is None:
            return g, None
        p = g.processes.get(proc_name)
        if p is None:
            raise RPCError(F.BAD_NAME, name)
        return g, p

    def _worker_rows(self) -> list[ProcessStatus]:
        try:
            return list(self.master.worker_status())
        except Exception:  # noqa: BLE001 - status must always answer
            return []

    def _worker_row(self, name: str) -> ProcessStatus | None:
        g, n = split_namespec(name)
        return next((r for r in self._worker_rows() if r.group == g and r.name == n), None)

    # -- start / stop / signal --------------------------------------------------------------------
    def _supervisor_startProcess(self, name, wait=True):
        self._update()
        g, p = self._find(name)
        if p is None:
            return self._supervisor_startProcessGroup(g.name, wait)
        try:
            p.check_command()
        except SpawnError as e:
            raise RPCError(F.NO_FILE if e.fault == "NO_FILE" else F.NOT_EXECUTABLE, e.message) from None
        if p.state in RUNNING_STATES:
            raise RPCError(F.ALREADY_STARTED, name)
        if p.state == ProcessState.UNKNOWN:
            raise RPCError(F.FAILED, f"{name} is in an unknown process state")
        p.spawn()
        if p.spawnerr:
            raise RPCError(F.SPAWN_ERROR, name)
        p.transition(self.sup.now())
        if wait and p.state != ProcessState.RUNNING:
            def poll():
                if p.spawnerr:
                    raise RPCError(F.SPAWN_ERROR, name)
                if p.state not in (ProcessState.STARTING, ProcessState.RUNNING):
                    raise RPCError(F.ABNORMAL_TERMINATION, name)
                return True if p.state == ProcessState.RUNNING else NOT_DONE_YET
            return Deferred(poll)
        return True

    def _group_procs(self, group_name: str) -> list[tuple[str, Subprocess]]:
        g = self.sup.groups.get(group_name)
        if g is None:
            raise RPCError(F.BAD_NAME, group_name)
        return [(g.name, p) for p in g.sorted_processes()]

    def _all_procs(self) -> list[tuple[str, Subprocess]]:
        return [(p.group, p) for p in self.sup.all_processes_by_priority()]

    def _allfunc(self, procs, predicate, func, *args):
        """Run func(namespec, *args) on each matching process at once; collect one status
        struct per process as each finishes (Supervisor's make_allfunc behaviour)."""
        results: list[dict] = []
        waiting: list[tuple[str, Subprocess, Deferred]] = []
        for gname, p in procs:
            if not predicate(p):
                continue
            spec = p.namespec
            try:
                v = func(spec, *args)
            except RPCError as e:
                results.append(_result(gname, p.name, e.code, e.text))
                continue
            if isinstance(v, Deferred):
                waiting.append((gname, p, v))
            else:
                results.append(_result(gname, p.name, F.SUCCESS, "OK"))

        def poll():
            for item in list(waiting):
                gname, p, d = item
                try:
                    v = d.poll()
                except RPCError as e:
                    results.append(_result(gname, p.name, e.code, e.text))
                    waiting.remove(item)
                    continue
                if v is NOT_DONE_YET:
                    continue
                results.append(_result(gname, p.name, F.SUCCESS, "OK"))
                waiting.remove(item)
            return NOT_DONE_YET if waiting else results

        v = poll()
        return Deferred(poll) if v is NOT_DONE_YET else v

    def _supervisor_startProcessGroup(self, name, wait=True):
        self._update()
        return self._allfunc(self._group_procs(name), lambda p: p.state not in RUNNING_STATES,
                             self._supervisor_startProcess, wait)

    def _supervisor_startAllProcesses(self, wait=True):
        self._update()
        return self._allfunc(self._all_procs(), lambda p: p.state not in RUNNING_STATES,
                             self._supervisor_startProcess, wait)

    def _supervisor_stopProcess(self, name, wait=True):
        self._update()
        g, p = self._find(name)
        if p is None:
            return self._supervisor_stopProcessGroup(g.name, wait)
        if p.state not in RUNNING_STATES:
            raise RPCError(F.NOT_RUNNING, name)
        msg = p.stop()
        if msg is not None:
            raise RPCError(F.FAILED, msg)
        if wait and p.state not in STOPPED_STATES:
            def poll():
                p.stop_report()
                return True if p.state in STOPPED_STATES else NOT_DONE_YET
            return Deferred(poll)
        return True

    def _supervisor_stopProcessGroup(self, name, wait=True):
        self._update()
        return self._allfunc(list(reversed(self._group_procs(name))), lambda p: p.state in RUNNING_STATES,
                             self._supervisor_stopProcess, wait)

    def _supervisor_stopAllProcesses(self, wait=True):
        self._update()
        return self._allfunc(list(reversed(self._all_procs())), lambda p: p.state in RUNNING_STATES,
                             self._supervisor_stopProcess, wait)

    def _supervisor_signalProcess(self, name, signal):
        self._update()
        g, p = self._find(name)
        if p is None:
            return self._supervisor_signalProcessGroup(g.name, signal)
        try:
            sig = to_signal(str(signal))
        except ValueProblem:
            raise RPCError(F.BAD_SIGNAL, signal) from None
        if p.state not in SIGNALLABLE_STATES:
            raise RPCError(F.NOT_RUNNING, name)
        msg = p.signal(sig)
        if msg is not None:
            raise RPCError(F.FAILED, msg)
        return True

    def _supervisor_signalProcessGroup(self, name, signal):
        self._update()
        return self._allfunc(self._group_procs(name), lambda p: p.state in SIGNALLABLE_STATES,
                             self._supervisor_signalProcess, signal)

    def _supervisor_signalAllProcesses(self, signal):
        self._update()
        return self._allfunc(self._all_procs(), lambda p: p.state in SIGNALLABLE_STATES,
                             self._supervisor_signalProcess, signal)

    # -- info -------------------------------------------------------------------------------------
    def _supervisor_getAllConfigInfo(self):
        self._update()
        out = []
        for g in self.loaded.groups:
            inuse = g.name in self.sup.groups
            for c in g.processes:
                d = {"autostart": c.autostart, "directory": c.directory, "uid": c.uid, "command": c.command,
                     "exitcodes": list(c.exitcodes), "group": g.name, "group_prio": g.priority,
                     "inuse": inuse, "killasgroup": c.killasgroup, "name": c.name,
                     "process_prio": c.priority, "redirect_stderr": c.redirect_stderr,
                     "startretries": c.startretries, "startsecs": c.startsecs,
                     "stdout_capture_maxbytes": 0, "stdout_events_enabled": False,
                     "stdout_logfile": c.stdout_logfile,
                     "stdout_logfile_backups": c.stdout_logfile_backups,
                     "stdout_logfile_maxbytes": c.stdout_logfile_maxbytes, "stdout_syslog": False,
                     "stopsignal": int(c.stopsignal), "stopwaitsecs": c.stopwaitsecs,
                     "stderr_capture_maxbytes": 0, "stderr_events_enabled": False,
                     "stderr_logfile": c.stderr_logfile,
                     "stderr_logfile_backups": c.stderr_logfile_backups,
                     "stderr_logfile_maxbytes": c.stderr_logfile_maxbytes, "stderr_syslog": False,
                     "serverurl": c.serverurl}
                if c.autorestart == "unexpected":
                    d["autorestart"] = "unexpected"
                else:
                    d["autorestart"] = c.autorestart == "true"
                out.append({k: ("none" if v is None else v) for k, v in d.items()})
        out.sort(key=lambda r: r["name"])
        return out

    def _info(self, p: Subprocess) -> dict:
        info = p.info()
        info["description"] = describe(info)
        return info

    def _row_info(self, r: ProcessStatus) -> dict:
        now = int(self.sup.os.wall())
        state = ProcessState[r.state] if r.state in ProcessState.__members__ else ProcessState.UNKNOWN
        info = {"name": r.name, "group": r.group, "start": int(r.start), "stop": 0, "now": now,
                "state": int(state), "statename": state.name, "spawnerr": "", "exitstatus": 0,
                "logfile": "", "stdout_logfile": "", "stderr_logfile": "", "pid": r.pid}
        info["description"] = r.description or describe(info)
        return info

    def _supervisor_getProcessInfo(self, name):
        self._update()
        row = None
        group_name, proc_name = split_namespec(name)
        if group_name not in self.sup.groups:
            row = self._worker_row(name)
        if row is not None:
            return self._row_info(row)
        g, p = self._find(name)
        if p is None:
            raise RPCError(F.BAD_NAME, name)
        return self._info(p)

    def _supervisor_getAllProcessInfo(self):
        self._update()
        out = [self._info(p) for p in self.sup.all_processes()]
        rows = [r for r in self._worker_rows() if r.group not in self.sup.groups]
        out.extend(self._row_info(r) for r in rows)
        out.sort(key=lambda i: (i["group"], i["name"]))
        return out

    def _pyfront_getAllProcessDetails(self):
        self._update()
        out = []
        for p in self.sup.all_processes():
            info = self._info(p)
            info.update(read_only=False, rss=self.sup.os.rss(p.pid) if p.pid else 0, requests=0,
                        cause=p.cause() if p.state in (ProcessState.FATAL, ProcessState.BACKOFF) else "",
                        stderr_tail=p.stderr.last_lines())
            out.append(info)
        for r in self._worker_rows():
            info = self._row_info(r)
            info.update(read_only=r.read_only, rss=r.rss, requests=r.requests, cause="",
                        stderr_tail=[], busy=r.busy, current_request=r.current_request)
            out.append(info)
        out.sort(key=lambda i: (i["group"], i["name"]))
        return out

    def _pyfront_getConnections(self):
        self._update()
        get = getattr(self.master, "front_connections", None)
        return dict(get()) if get is not None else {}

    def _pyfront_reopenLogs(self):
        self._update()
        self.master.reopen_logs()
        return True

    # -- logs -------------------------------------------------------------------------------------
    def _logpath(self, name: str, channel: str) -> str | None:
        g, p = self._find(name)
        if p is None:
            raise RPCError(F.BAD_NAME, name)
        if channel == "stderr" and p.config.redirect_stderr:
            return None
        return p.config.stdout_logfile if channel == "stdout" else p.config.stderr_logfile

    def _read_process_log(self, name, offset, length, channel):
        self._update()
        path = self._logpath(name, channel)
        if path is None or not os.path.exists(path):
            raise RPCError(F.NO_FILE, path)
        data, fault = read_tail(path, offset, length)
        if fault:
            raise RPCError(F.CODES[fault])
        return data.decode("utf-8", "replace")

    def _supervisor_readProcessStdoutLog(self, name, offset, length):
        return self._read_process_log(name, offset, length, "stdout")

    _supervisor_readProcessLog = _supervisor_readProcessStdoutLog

    def _supervisor_readProcessStderrLog(self, name, offset, length):
        return self._read_process_log(name, offset, length, "stderr")

    def _tail_process_log(self, name, offset, length, channel):
        self._update()
        path = self._logpath(name, channel)
        if path is None or not os.path.exists(path):
            return ["", 0, False]
        data, newoff, overflow = tail_from(path, offset, length)
        return [data.decode("utf-8", "replace"), newoff, overflow]

    def _supervisor_tailProcessStdoutLog(self, name, offset, length):
        return self._tail_process_log(name, offset, length, "stdout")

    _supervisor_tailProcessLog = _supervisor_tailProcessStdoutLog

    def _supervisor_tailProcessStderrLog(self, name, offset, length):
        return self._tail_process_log(name, offset, length, "stderr")

    def _supervisor_clearProcessLogs(self, name):
        self._update()
        g, p = self._find(name)
        if p is None:
            raise RPCError(F.BAD_NAME, name)
        try:
            for ch in (p.stdout, p.stderr):
                if ch.log is not None:
                    ch.log.clear()
        except OSError as e:
            raise RPCError(F.FAILED, f"{p.name}: {e}") from None
        return True

    def _supervisor_clearProcessLog(self, name):
        return self._supervisor_clearProcessLogs(name)

    def _supervisor_clearAllProcessLogs(self):
        self._update()
        return self._allfunc(self._all_procs(), lambda p: True, self._supervisor_clearProcessLogs)

    def _supervisor_sendProcessStdin(self, name, chars):
        self._update()
        g, p = self._find(name)
        if p is None:
            raise RPCError(F.BAD_NAME, name)
        if not p.pid or p.state not in RUNNING_STATES or p.killing:
            raise RPCError(F.NOT_RUNNING, name)
        if not isinstance(chars, (str, bytes)):
            raise RPCError(F.INCORRECT_PARAMETERS, "chars must be a string")
        msg = p.write_stdin(chars.encode("utf-8") if isinstance(chars, str) else chars)
        if msg is not None:
            raise RPCError(F.FAILED, f"{name}: {msg}")
        return True

    def _supervisor_sendRemoteCommEvent(self, type, data):
        self._update()
        return True
