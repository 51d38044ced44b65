"""Supervisor's INI sections → frozen dataclasses, with Supervisor's defaults and rules.

Parsing (pyfront.config.ini) keeps file:line for every key; this module types and
validates the values (with `%(name)s` expansion as Supervisor does it) and reports every
problem through a `Report` as `[level] message in file:line (what to do)`. Nothing here
starts processes: runtime lives in process.py / component.py.

SETTINGS is the one table of every option: validation uses it to reject unknown keys and
docs/reference-supervisor.md is generated from it (`python -m pyfront.supervise.config --docs`).
"""
from __future__ import annotations

import glob
import hashlib
import os
import platform
import pwd
import shlex
import signal
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from pyfront.config.diagnostics import Report
from pyfront.config.ini import IniEntry, IniSection, IniSyntaxError, read_ini


class ValueProblem(ValueError):
    """A value that cannot be converted; the message is Supervisor's wording where it has one."""


# --------------------------------------------------------------------------- converters

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def to_bool(v: str) -> bool:
    s = v.strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise ValueProblem(f"not a valid boolean value: {v!r}")


def to_int(v: str) -> int:
    try:
        return int(v.strip())
    except ValueError:
        raise ValueProblem(f"not an integer: {v!r}") from None


def to_nonneg_int(v: str) -> int:
    n = to_int(v)
    if n < 0:
        raise ValueProblem(f"must be 0 or more, not {n}")
    return n


def to_bytes(v: str) -> int:
    s = v.strip().lower()
    mult = 1
    for suffix, m in (("kb", 1024), ("mb", 1024 ** 2), ("gb", 1024 ** 3)):
        if s.endswith(suffix):
            s, mult = s[: -len(suffix)], m
            break
    try:
        n = int(s) * mult
    except ValueError:
        raise ValueProblem(f"not a size (use a number with an optional KB, MB or GB suffix): {v!r}") from None
    if n < 0:
        raise ValueProblem(f"size must be 0 or more: {v!r}")
    return n


AUTORESTART_VALUES = ("false", "unexpected", "true")


def to_autorestart(v: str) -> str:
    s = v.strip().lower()
    if s in _FALSE:
        return "false"
    if s == "unexpected":
        return "unexpected"
    if s in _TRUE:
        return "true"
    raise ValueProblem(f"invalid 'autorestart' value {v!r}")


def to_exitcodes(v: str) -> tuple[int, ...]:
    try:
        codes = tuple(int(x.strip()) for x in v.split(",") if x.strip())
    except ValueError:
        raise ValueProblem(f"not a valid list of exit codes: {v!r}") from None
    if any(c < 0 or c > 255 for c in codes):
        raise ValueProblem(f"exit codes must be between 0 and 255: {v!r}")
    return codes


_SIGNUMS = {s.value for s in signal.Signals}


def to_signal(v: str) -> int:
    try:
        num = int(v)
    except ValueError:
        name = v.strip().upper()
        if not name.startswith("SIG"):
            name = "SIG" + name
        num = getattr(signal, name, None)
        if not isinstance(num, int):
            raise ValueProblem(f"value {v!r} is not a valid signal name") from None
    if num not in _SIGNUMS:
        raise ValueProblem(f"value {v!r} is not a valid signal number")
    return int(num)


def to_octal(v: str) -> int:
    try:
        return int(v.strip(), 8)
    except ValueError:
        raise ValueProblem(f"{v!r} can not be converted to an octal type") from None


def to_uid(v: str) -> int:
    try:
        return int(v)
    except ValueError:
        pass
    try:
        return pwd.getpwnam(v.strip()).pw_uid
    except (KeyError, ValueError):
        raise ValueProblem(f"Invalid user name {v!r}") from None


def to_environment(v: str) -> tuple[tuple[str, str], ...]:
    """KEY="val",KEY2=val2 → pairs (Supervisor: shlex with a few extra word chars)."""
    lexer = shlex.shlex(v, posix=False)
    lexer.wordchars += "/.+-():"
    try:
        tokens = list(lexer)
    except ValueError as e:
        raise ValueProblem(f"cannot parse key/value pairs in {v!r}: {e}") from None
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(tokens):
        kv = tokens[i:i + 3]
        if len(kv) != 3 or kv[1] != "=":
            raise ValueProblem(f"Unexpected end of key/value pairs in value '{v}'")
        out.append((kv[0], kv[2].strip("'\"")))
        i += 4
    return tuple(out)


def to_port(v: str) -> tuple[str, int]:
    """`[host]:port` → (host, port); empty host or `*` means all interfaces (Supervisor)."""
    s = v.strip()
    host = ""
    if ":" in s:
        host, s = s.rsplit(":", 1)
        host = host.lower().strip("[]")
        if not s:
            raise ValueProblem(f"no port number specified in {v!r}")
    try:
        port = int(s)
    except ValueError:
        raise ValueProblem(f"not a valid port number: {v!r}") from None
    if not 0 < port < 65536:
        raise ValueProblem(f"port number out of range: {v!r}")
    if host == "*":
        host = ""
    return host, port


def to_str(v: str) -> str:
    return v


def to_list(v: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in v.replace("\n", ",").split(",") if x.strip())


LOGLEVELS = ("critical", "error", "warn", "info", "debug", "trace", "blather")


def to_loglevel(v: str) -> str:
    s = v.strip().lower()
    if s == "warning":
        s = "warn"
    if s not in LOGLEVELS:
        raise ValueProblem(f"bad logging level name {v!r} (use one of {', '.join(LOGLEVELS)})")
    return s


# --------------------------------------------------------------------------- settings table

@dataclass(frozen=True)
class Setting:
    section: str           # "program", "group", "supervisord", "inet_http_server", ...
    key: str
    convert: Callable[[str], object]
    default: str | None    # as written in an ini file; None = no default
    doc: str
    per_process: bool = False   # expanded with process_num (Supervisor's per-process keys)
    expand: bool = True


def _s(section, key, convert, default, doc, **kw) -> Setting:
    return Setting(section, key, convert, default, doc, **kw)


SETTINGS: tuple[Setting, ...] = (
    # [program:x]
    _s("program", "command", to_str, None, "Command to run; split like a shell (no shell is used). Required.", per_process=True),
    _s("program", "process_name", to_str, "%(program_name)s", "Name of each process; must contain %(process_num)... when numprocs > 1.", expand=False),
    _s("program", "numprocs", to_nonneg_int, "1", "How many copies of the program to run."),
    _s("program", "numprocs_start", to_nonneg_int, "0", "First value of %(process_num)."),
    _s("program", "priority", to_int, "999", "Start order (low first), stop order (high first)."),
    _s("program", "autostart", to_bool, "true", "Start when pyfront starts."),
    _s("program", "autorestart", to_autorestart, "unexpected", "false, unexpected (exit code not in exitcodes) or true."),
    _s("program", "startsecs", to_nonneg_int, "1", "Seconds the program must stay up to count as started (RUNNING)."),
    _s("program", "startretries", to_nonneg_int, "3", "Failed starts (BACKOFF) allowed before FATAL; waits 1, 2, 3... s between them."),
    _s("program", "exitcodes", to_exitcodes, "0", "Expected exit codes, comma separated."),
    _s("program", "stopsignal", to_signal, "TERM", "Signal sent by stop: TERM, HUP, INT, QUIT, KILL, USR1, USR2 or a number."),
    _s("program", "stopwaitsecs", to_nonneg_int, "10", "Seconds to wait after stopsignal before SIGKILL (pyfront kills the whole process group and every descendant)."),
    _s("program", "stopasgroup", to_bool, "false", "Send stopsignal to the whole process group."),
    _s("program", "killasgroup", to_bool, None, "Send SIGKILL to the whole process group (default: stopasgroup). pyfront always kills leftovers of the tree after the program exits."),
    _s("program", "user", to_uid, None, "Run as this user (pyfront must run as root)."),
    _s("program", "redirect_stderr", to_bool, "false", "Send stderr to the stdout log."),
    _s("program", "stdout_logfile", to_str, "AUTO", "Path, AUTO (a file in childlogdir), NONE, or /dev/stdout (rotation is then disabled).", per_process=True),
    _s("program", "stdout_logfile_maxbytes", to_bytes, "50MB", "Rotate the stdout log at this size; 0 = never."),
    _s("program", "stdout_logfile_backups", to_nonneg_int, "10", "Rotated stdout logs kept (NAME.1 ... NAME.N)."),
    _s("program", "stdout_capture_maxbytes", to_bytes, "0", "Accepted for compatibility (capture mode is for event listeners)."),
    _s("program", "stdout_events_enabled", to_bool, "false", "Accepted for compatibility."),
    _s("program", "stdout_syslog", to_bool, "false", "Accepted for compatibility; not implemented."),
    _s("program", "stderr_logfile", to_str, "AUTO", "Like stdout_logfile, for stderr.", per_process=True),
    _s("program", "stderr_logfile_maxbytes", to_bytes, "50MB", "Rotate the stderr log at this size; 0 = never."),
    _s("program", "stderr_logfile_backups", to_nonneg_int, "10", "Rotated stderr logs kept."),
    _s("program", "stderr_capture_maxbytes", to_bytes, "0", "Accepted for compatibility."),
    _s("program", "stderr_events_enabled", to_bool, "false", "Accepted for compatibility."),
    _s("program", "stderr_syslog", to_bool, "false", "Accepted for compatibility; not implemented."),
    _s("program", "environment", to_environment, "", 'KEY="val",KEY2="val2" added to the inherited environment.', per_process=True),
    _s("program", "directory", to_str, None, "Working directory of the program.", per_process=True),
    _s("program", "umask", to_octal, None, "Octal umask of the program (e.g. 022)."),
    _s("program", "serverurl", to_str, "AUTO", "SUPERVISOR_SERVER_URL given to the program.", per_process=True),
    # [group:x]
    _s("group", "programs", to_list, None, "Comma-separated [program:x] names in this group. Required."),
    _s("group", "priority", to_int, "999", "Start/stop order of the group."),
    # [supervisord]
    _s("supervisord", "logfile", to_str, "supervisord.log", "Main log (pyfront: relative to the run directory)."),
    _s("supervisord", "logfile_maxbytes", to_bytes, "50MB", "Rotate the main log at this size."),
    _s("supervisord", "logfile_backups", to_nonneg_int, "10", "Rotated main logs kept."),
    _s("supervisord", "loglevel", to_loglevel, "info", "critical, error, warn, info, debug, trace or blather."),
    _s("supervisord", "pidfile", to_str, "supervisord.pid", "Accepted; the nginx `pid` file names the pyfront master."),
    _s("supervisord", "childlogdir", to_str, None, "Directory for AUTO child logs (default: the run directory's logs/)."),
    _s("supervisord", "identifier", to_str, "supervisor", "Returned by supervisor.getIdentification()."),
    _s("supervisord", "minfds", to_nonneg_int, "1024", "Raise RLIMIT_NOFILE to at least this."),
    _s("supervisord", "minprocs", to_nonneg_int, "200", "Accepted for compatibility."),
    _s("supervisord", "umask", to_octal, "022", "Accepted for compatibility."),
    _s("supervisord", "nodaemon", to_bool, "false", "Accepted; pyfront serve always stays in the foreground."),
    _s("supervisord", "silent", to_bool, "false", "Accepted for compatibility."),
    _s("supervisord", "user", to_str, None, "Accepted for compatibility."),
    _s("supervisord", "directory", to_str, None, "Accepted for compatibility."),
    _s("supervisord", "strip_ansi", to_bool, "false", "Accepted for compatibility."),
    _s("supervisord", "environment", to_environment, "", "Added to every program's environment."),
    _s("supervisord", "nocleanup", to_bool, "false", "Accepted for compatibility."),
    # [include]
    _s("include", "files", to_str, None, "Space-separated globs, relative to the including file."),
    # [inet_http_server]
    _s("inet_http_server", "port", to_port, None, "host:port of the control server; a bare :port binds 127.0.0.1 unless a password is set. Required."),
    _s("inet_http_server", "username", to_str, None, "Basic auth user."),
    _s("inet_http_server", "password", to_str, None, "Basic auth password, plain or {SHA}sha1hex."),
    # [unix_http_server]
    _s("unix_http_server", "file", to_str, None, "Path of the control socket. Required."),
    _s("unix_http_server", "chmod", to_octal, "0700", "Mode of the socket file."),
    _s("unix_http_server", "chown", to_str, None, "user[:group] owning the socket file."),
    _s("unix_http_server", "username", to_str, None, "Basic auth user."),
    _s("unix_http_server", "password", to_str, None, "Basic auth password, plain or {SHA}sha1hex."),
    # [supervisorctl]
    _s("supervisorctl", "serverurl", to_str, "http://localhost:9001", "http://host:port or unix:///path used by `pyfront ctl`."),
    _s("supervisorctl", "username", to_str, None, "User sent by `pyfront ctl`."),
    _s("supervisorctl", "password", to_str, None, "Password sent by `pyfront ctl`."),
    _s("supervisorctl", "prompt", to_str, "supervisor", "Interactive prompt."),
    _s("supervisorctl", "history_file", to_str, None, "readline history file."),
    # [rpcinterface:x]
    _s("rpcinterface", "supervisor.rpcinterface_factory", to_str, None, "Accepted; pyfront always serves the supervisor namespace."),
)

_BY_SECTION: dict[str, dict[str, Setting]] = {}
for _st in SETTINGS:
    _BY_SECTION.setdefault(_st.section, {})[_st.key] = _st


def settings_for(section_kind: str) -> dict[str, Setting]:
    return _BY_SECTION.get(section_kind, {})


# --------------------------------------------------------------------------- the model

@dataclass(frozen=True)
class ProcessConfig:
    name: str                   # process name (process_name expanded)
    group: str
    program: str                # [program:NAME]
    command: str
    argv: tuple[str, ...]
    directory: str | None
    umask: int | None
    priority: int
    autostart: bool
    autorestart: str            # "false" | "unexpected" | "true"
    startsecs: int
    startretries: int
    uid: int | None
    stdout_logfile: str | None  # None = NONE; "/dev/stdout" kept as is
    stdout_logfile_maxbytes: int
    stdout_logfile_backups: int
    stderr_logfile: str | None
    stderr_logfile_maxbytes: int
    stderr_logfile_backups: int
    stopsignal: int
    stopwaitsecs: int
    stopasgroup: bool
    killasgroup: bool
    exitcodes: tuple[int, ...]
    redirect_stderr: bool
    environment: tuple[tuple[str, str], ...]
    serverurl: str | None
    file: str = field(default="", compare=False)   # where it was defined: not part of "changed"
    line: int = field(default=0, compare=False)

    @property
    def namespec(self) -> str:
        return self.name if self.group == self.name else f"{self.group}:{self.name}"


@dataclass(frozen=True)
class GroupConfig:
    name: str
    priority: int
    processes: tuple[ProcessConfig, ...]


@dataclass(frozen=True)
class ServerConfig:
    kind: str                    # "inet" | "unix"
    host: str = ""               # inet: bind host ("" = not given)
    port: int = 0
    file: str = ""               # unix: socket path
    chmod: int = 0o700
    chown: str | None = None
    username: str | None = None
    password: str | None = None
    where: str = ""              # "file:line" of the section


@dataclass(frozen=True)
class CtlConfig:
    serverurl: str = "http://localhost:9001"
    username: str | None = None
    password: str | None = None
    prompt: str = "supervisor"
    history_file: str | None = None


@dataclass(frozen=True)
class SupervisordConfig:
    logfile: str | None = "supervisord.log"   # parse_supervisor_sections makes it absolute
    logfile_maxbytes: int = 50 * 1024 * 1024
    logfile_backups: int = 10
    loglevel: str = "info"
    pidfile: str = "supervisord.pid"
    childlogdir: str = field(default_factory=tempfile.gettempdir)
    identifier: str = "supervisor"
    minfds: int = 1024
    environment: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SupervisorConfig:
    here: str
    supervisord: SupervisordConfig
    groups: tuple[GroupConfig, ...]
    inet: ServerConfig | None = None
    unix: ServerConfig | None = None
    ctl: CtlConfig = CtlConfig()

    def group(self, name: str) -> GroupConfig | None:
        return next((g for g in self.groups if g.name == name), None)


# --------------------------------------------------------------------------- expansion

def expand(value: str, expansions: dict[str, object], key: str) -> str:
    try:
        return value % expansions
    except KeyError as e:
        names = ", ".join(sorted(expansions))
        raise ValueProblem(f"Format string {value!r} for {key!r} contains names ({e}) which cannot be "
                           f"expanded. Available names: {names}") from None
    except Exception as e:  # TypeError, ValueError: bad format characters
        raise ValueProblem(f"Format string {value!r} for {key!r} is badly formatted: {e}") from None


def env_expansions(environ: dict[str, str] | None = None) -> dict[str, str]:
    env = os.environ if environ is None else environ
    return {f"ENV_{k}": v for k, v in env.items()}


# --------------------------------------------------------------------------- parsing

class _SectionReader:
    """Typed access to one section's keys with file:line diagnostics."""

    def __init__(self, section: IniSection, kind: str, report: Report, expansions: dict):
        self.s, self.kind, self.report, self.exp = section, kind, report, expansions
        self.ok = True

    def where(self, key: str | None = None) -> tuple[str, int]:
        e = self.s.entry(key) if key else None
        return (e.file, e.line) if e else (self.s.file, self.s.line)

    def raw(self, key: str) -> str | None:
        return self.s.get(key)

    def get(self, key: str, extra: dict | None = None, default: str | None = "__table__"):
        st = settings_for(self.kind)[key]
        v = self.s.get(key)
        if v is None:
            v = st.default if default == "__table__" else default
            if v is None:
                return None
            from_file = False
        else:
            from_file = True
        try:
            if st.expand:
                v = expand(v, {**self.exp, **(extra or {})}, key)
            return st.convert(v)
        except ValueProblem as e:
            f, ln = self.where(key if from_file else None)
            self.report.emerg(f"invalid value for \"{key}\" in [{self.s.name}]: {e}", f, ln,
                              hint=st.doc)
            self.ok = False
            return st.convert(st.default) if st.default is not None else None

    def check_unknown(self) -> None:
        known = settings_for(self.kind)
        for e in self.s.entries:
            if e.key not in known:
                self.report.warn(f"unknown key \"{e.key}\" in [{self.s.name}] is ignored", e.file, e.line,
                                 hint="check the spelling; see docs/reference-supervisor.md")


def _section_kind(name: str) -> str | None:
    if name.startswith("program:"):
        return "program"
    if name.startswith("group:"):
        return "group"
    if name.startswith("rpcinterface:"):
        return "rpcinterface"
    if name in ("supervisord", "inet_http_server", "unix_http_server", "supervisorctl", "include"):
        return name
    return None


def expand_includes(sections: Sequence[IniSection], report: Report) -> list[IniSection]:
    """[include] files= globs, relative to the including file (Supervisor's rule)."""
    out: list[IniSection] = []
    seen: set[str] = set()

    def walk(secs: Sequence[IniSection], depth: int):
        for s in secs:
            out.append(s)
            if s.name != "include" or depth > 10:
                continue
            files = s.get("files")
            e = s.entry("files")
            if not files:
                report.emerg("[include] section must define a \"files\" key", s.file, s.line)
                continue
            base = os.path.dirname(s.file)
            for pattern in files.split():
                pattern = expand(pattern, {"here": base, **env_expansions()}, "files") if "%(" in pattern else pattern
                matches = sorted(glob.glob(os.path.join(base, pattern)))
                if not matches:
                    report.warn(f"[include] pattern {pattern!r} matched no files", e.file, e.line)
                for path in matches:
                    path = os.path.abspath(path)
                    if path in seen:
                        continue
                    seen.add(path)
                    try:
                        text = open(path, encoding="utf-8", errors="replace").read()
                        walk(read_ini(text, path, "supervisor"), depth + 1)
                    except IniSyntaxError as ex:
                        report.emerg(ex.message, ex.file, ex.line)
                    except OSError as ex:
                        report.emerg(f"could not read included file {path}: {ex.strerror}", e.file, e.line)

    walk(sections, 0)
    return out


def _split_command(command: str) -> tuple[str, ...]:
    try:
        return tuple(shlex.split(command))
    except ValueError as e:
        raise ValueProblem(f"can't parse command {command!r}: {e}") from None


def parse_supervisor_sections(sections: Sequence[IniSection], here: str, report: Report,
                              run_dir: str | None = None,
                              environ: dict[str, str] | None = None) -> SupervisorConfig:
    """Build the supervision layer's config. Problems go to `report` (check report.failed)."""
    sections = expand_includes(sections, report)
    env_exp = env_expansions(environ)
    host_node_name = platform.node()

    # [supervisord]
    sd_sec = next((s for s in sections if s.name == "supervisord"), None)
    base_dir = run_dir or here
    sd = SupervisordConfig(childlogdir=os.path.join(run_dir, "logs") if run_dir else tempfile.gettempdir(),
                           logfile=os.path.join(base_dir, "supervisord.log"))
    if sd_sec is not None:
        r = _SectionReader(sd_sec, "supervisord", report, {"here": os.path.dirname(sd_sec.file), **env_exp})
        r.check_unknown()
        childlogdir = r.get("childlogdir")
        sd = SupervisordConfig(
            logfile=_main_logfile(r.get("logfile"), base_dir), logfile_maxbytes=r.get("logfile_maxbytes"),
            logfile_backups=r.get("logfile_backups"), loglevel=r.get("loglevel"),
            pidfile=r.get("pidfile"), childlogdir=childlogdir or sd.childlogdir,
            identifier=r.get("identifier"), minfds=r.get("minfds"),
            environment=r.get("environment") or ())

    # servers and ctl
    inet = unix = None
    ctl = CtlConfig()
    for s in sections:
        kind = _section_kind(s.name)
        exp = {"here": os.path.dirname(s.file), **env_exp}
        if kind == "inet_http_server":
            r = _SectionReader(s, kind, report, exp)
            r.check_unknown()
            if s.get("port") is None:
                report.emerg("section [inet_http_server] has no port value", s.file, s.line,
                             hint="add e.g. port = 127.0.0.1:9001")
                continue
            host, port = r.get("port") or ("", 0)
            user, pw = r.get("username"), r.get("password")
            _check_auth_pair(s, user, pw, report)
            inet = ServerConfig("inet", host=host, port=port, username=user, password=pw,
                                where=f"{s.file}:{s.line}")
            _check_exposure(s, host, pw, report)
        elif kind == "unix_http_server":
            r = _SectionReader(s, kind, report, exp)
            r.check_unknown()
            path = r.get("file")
            if not path:
                report.emerg("section [unix_http_server] has no file value", s.file, s.line,
                             hint="add e.g. file = %(here)s/run/supervisor.sock")
                continue
            user, pw = r.get("username"), r.get("password")
            _check_auth_pair(s, user, pw, report)
            unix = ServerConfig("unix", file=os.path.abspath(os.path.join(os.path.dirname(s.file), path)),
                                chmod=r.get("chmod"), chown=r.get("chown"), username=user, password=pw,
                                where=f"{s.file}:{s.line}")
        elif kind == "supervisorctl":
            r = _SectionReader(s, kind, report, exp)
            r.check_unknown()
            ctl = CtlConfig(serverurl=r.get("serverurl"), username=r.get("username"),
                            password=r.get("password"), prompt=r.get("prompt"),
                            history_file=r.get("history_file"))
        elif kind == "rpcinterface":
            if s.trailing:
                report.warn(f"text after the section header [{s.name}] is ignored: {s.trailing!r}", s.file, s.line,
                            hint="put the key on its own line; real supervisord stops here with "
                                 f"'section [{s.name}] does not specify a supervisor.rpcinterface_factory'")
            elif s.get("supervisor.rpcinterface_factory") is None and s.name == "rpcinterface:supervisor":
                report.warn(f"section [{s.name}] does not specify a supervisor.rpcinterface_factory", s.file, s.line,
                            hint="pyfront serves the supervisor namespace anyway; real supervisord would refuse to start")
        elif kind is None and s.name.startswith(("eventlistener:", "fcgi-program:")):
            report.warn(f"[{s.name}] is not supported by pyfront and is ignored", s.file, s.line,
                        hint="run it as a [program:x]; for FastCGI, serve the app with an [uwsgi] section")
        elif kind is None:
            report.warn(f"unknown section [{s.name}] is ignored", s.file, s.line)

    # programs
    program_secs = [s for s in sections if s.name.startswith("program:")]
    group_secs = [s for s in sections if s.name.startswith("group:")]
    names_seen: dict[str, IniSection] = {}
    for s in program_secs + group_secs:
        if s.name in names_seen:
            report.emerg(f"duplicate section [{s.name}]", s.file, s.line,
                         hint=f"first defined in {names_seen[s.name].file}:{names_seen[s.name].line}")
        names_seen[s.name] = s
    programs: dict[str, tuple[IniSection, list[ProcessConfig]]] = {}
    grouped: dict[str, str] = {}
    for g in group_secs:
        gname = g.name.split(":", 1)[1]
        for p in to_list(g.get("programs") or ""):
            grouped[p] = gname
    for s in program_secs:
        pname = s.name.split(":", 1)[1].strip()
        if not _valid_name(pname, s, report):
            continue
        group_name = grouped.get(pname, pname)
        procs = _program(s, pname, group_name, sd, env_exp, host_node_name, report)
        programs[pname] = (s, procs)

    groups: list[GroupConfig] = []
    used: set[str] = set()
    for g in group_secs:
        gname = g.name.split(":", 1)[1].strip()
        if not _valid_name(gname, g, report):
            continue
        r = _SectionReader(g, "group", report, {"here": os.path.dirname(g.file), **env_exp})
        r.check_unknown()
        members = r.get("programs")
        if not members:
            report.emerg(f"[{g.name}] has no programs", g.file, g.line, hint="add programs = name1,name2")
            continue
        procs: list[ProcessConfig] = []
        for m in members:
            if m not in programs:
                e = g.entry("programs")
                report.emerg(f"[{g.name}] names unknown program {m!r}", e.file, e.line,
                             hint=f"define [program:{m}]")
                continue
            used.add(m)
            procs.extend(programs[m][1])
        groups.append(GroupConfig(gname, r.get("priority"), tuple(sorted(procs, key=lambda p: (p.priority, p.name)))))
    for pname, (s, procs) in programs.items():
        if pname in used:
            continue
        prio = procs[0].priority if procs else 999
        groups.append(GroupConfig(pname, prio, tuple(procs)))
    groups.sort(key=lambda g: (g.priority, g.name))
    _check_unique_logfiles(groups, report)
    return SupervisorConfig(here=here, supervisord=sd, groups=tuple(groups), inet=inet, unix=unix, ctl=ctl)


def _main_logfile(value: str | None, base_dir: str) -> str | None:
    """[supervisord] logfile: NONE disables it; a relative path is under the run directory
    (Supervisor uses its cwd, which for pyfront serve is arbitrary)."""
    if value is None or value.strip().upper() in ("NONE", "OFF", ""):
        return None
    v = os.path.expanduser(value.strip())
    return v if os.path.isabs(v) else os.path.join(base_dir, v)


def _valid_name(name: str, s: IniSection, report: Report) -> bool:
    bad = [c for c in ":/ " if c in name] or ([] if name else [""])
    if bad:
        report.emerg(f"invalid name {name!r} in [{s.name}]", s.file, s.line,
                     hint="names may not be empty or contain ':', '/' or spaces")
        return False
    return True


def _check_auth_pair(s: IniSection, user, pw, report: Report) -> None:
    if (user is None) != (pw is None):
        report.emerg(f"Section [{s.name}] contains incomplete authentication: If a username or a password "
                     "is specified, both the username and password must be specified", s.file, s.line)


_WEAK = 8


def _check_exposure(s: IniSection, host: str, pw: str | None, report: Report) -> None:
    e = s.entry("port")
    loopback = host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")
    if host == "" and pw is None:
        report.warn(f"\"port\" has no host: pyfront binds 127.0.0.1 (Supervisor would listen on all interfaces)",
                    e.file, e.line, hint="write port = 127.0.0.1:PORT to make this explicit")
    elif not loopback and pw is None:
        report.emerg(f"control server on {host or 'all interfaces'} without a password", e.file, e.line,
                     hint="set username and password, or bind 127.0.0.1 (CVE-2017-11610 class exposure)")
    elif not loopback and pw is not None and not pw.startswith("{SHA}") and len(pw) < _WEAK:
        report.warn(f"control server on {host or 'all interfaces'} with a weak password "
                    f"({len(pw)} characters)", e.file, e.line,
                    hint="use a long random password or a {SHA} hash, or bind 127.0.0.1")


def _program(s: IniSection, pname: str, group_name: str, sd: SupervisordConfig, env_exp: dict,
             host_node_name: str, report: Report) -> list[ProcessConfig]:
    here = os.path.dirname(s.file)
    common = {"here": here, "program_name": pname, "host_node_name": host_node_name,
              "group_name": group_name, **env_exp}
    r = _SectionReader(s, "program", report, common)
    r.check_unknown()
    priority = r.get("priority")
    autostart = r.get("autostart")
    autorestart = r.get("autorestart")
    startsecs = r.get("startsecs")
    startretries = r.get("startretries")
    stopsignal = r.get("stopsignal")
    stopwaitsecs = r.get("stopwaitsecs")
    stopasgroup = r.get("stopasgroup")
    killasgroup = r.get("killasgroup", default="true" if stopasgroup else "false")
    exitcodes = r.get("exitcodes")
    redirect_stderr = r.get("redirect_stderr")
    numprocs = r.get("numprocs")
    numprocs_start = r.get("numprocs_start")
    uid = r.get("user")
    umask = r.get("umask")
    process_name = s.get("process_name") or "%(program_name)s"
    if numprocs is not None and numprocs > 1 and "%(process_num)" not in process_name:
        f, ln = r.where("numprocs")
        report.emerg("%(process_num) must be present within process_name when numprocs > 1", f, ln,
                     hint="add process_name=%(program_name)s_%(process_num)02d")
        return []
    if stopasgroup and not killasgroup:
        f, ln = r.where("killasgroup")
        report.emerg("Cannot set stopasgroup=true and killasgroup=false", f, ln)
    if s.get("command") is None:
        report.emerg(f"program section [{s.name}] does not specify a command", s.file, s.line,
                     hint="add command = /path/to/program args")
        return []
    if stopwaitsecs == 0 and not killasgroup:
        f, ln = r.where("stopwaitsecs")
        report.warn("stopwaitsecs=0 without killasgroup: real supervisord SIGKILLs only the main process on "
                    "the next tick, orphaning its children (e.g. uWSGI workers)", f, ln,
                    hint="give the program time to stop (stopwaitsecs=10) and set stopasgroup=true; "
                         "pyfront kills the whole tree anyway")
    _check_daemonize(s, r, report)
    for key in _COMPAT_KEYS:      # accepted, unused: still validated so typos in values show up
        if s.get(key) is not None:
            r.get(key)
    procs: list[ProcessConfig] = []
    for num in range(numprocs_start or 0, (numprocs_start or 0) + (numprocs if numprocs is not None else 1)):
        extra = {"process_num": num, "numprocs": numprocs}
        pexp = {**common, **extra}
        try:
            name = expand(process_name, pexp, "process_name")
        except ValueProblem as e:
            f, ln = r.where("process_name")
            report.emerg(str(e), f, ln)
            return []
        env = r.get("environment", extra) or ()
        exp_env = {**extra, **{f"ENV_{k}": v for k, v in env}}
        command = r.get("command", exp_env)
        if command is None:
            return []
        try:
            argv = _split_command(command)
            if not argv:
                raise ValueProblem("command is empty")
        except ValueProblem as e:
            f, ln = r.where("command")
            report.emerg(str(e), f, ln)
            return []
        directory = r.get("directory", exp_env)
        logs = {}
        for ch in ("stdout", "stderr"):
            raw = r.get(f"{ch}_logfile", exp_env)
            logs[ch] = _logfile(raw, name, ch, sd, s, r, report)
        out_max, err_max = r.get("stdout_logfile_maxbytes"), r.get("stderr_logfile_maxbytes")
        if redirect_stderr:
            if s.get("stderr_logfile") not in (None,) and (s.get("stderr_logfile") or "").upper() not in ("AUTO", "NONE"):
                f, ln = r.where("stderr_logfile")
                report.warn(f"For [{s.name}], redirect_stderr=true but stderr_logfile has also been set to a "
                            "filename, the filename has been ignored", f, ln)
            logs["stderr"] = None
        serverurl = r.get("serverurl", exp_env)
        if serverurl and serverurl.strip().upper() == "AUTO":
            serverurl = None
        procs.append(ProcessConfig(
            name=name, group=group_name, program=pname, command=command, argv=argv,
            directory=directory, umask=umask, priority=priority, autostart=autostart,
            autorestart=autorestart, startsecs=startsecs, startretries=startretries, uid=uid,
            stdout_logfile=logs["stdout"], stdout_logfile_maxbytes=out_max,
            stdout_logfile_backups=r.get("stdout_logfile_backups"),
            stderr_logfile=logs["stderr"], stderr_logfile_maxbytes=err_max,
            stderr_logfile_backups=r.get("stderr_logfile_backups"),
            stopsignal=stopsignal, stopwaitsecs=stopwaitsecs, stopasgroup=stopasgroup,
            killasgroup=killasgroup, exitcodes=exitcodes, redirect_stderr=redirect_stderr,
            environment=tuple(sd.environment) + tuple(env), serverurl=serverurl,
            file=s.file, line=s.line))
    return procs


_COMPAT_KEYS = tuple(f"{ch}_{k}" for ch in ("stdout", "stderr")
                     for k in ("capture_maxbytes", "events_enabled", "syslog"))
_DAEMON_FLAGS = ("--daemonize", "--daemonize2", "-d", "--daemon")


def _check_daemonize(s: IniSection, r: _SectionReader, report: Report) -> None:
    """A supervised program must stay in the foreground. uWSGI's `daemonize=` (in the ini the
    command loads) makes supervisord see `exit status 0; not expected` / spawn error while
    the daemonized workers keep running outside its control (Supervisor#941, the seed)."""
    raw = s.get("command") or ""
    try:
        argv = shlex.split(raw)
    except ValueError:
        return
    f, ln = r.where("command")
    hint = "remove it: a program run under supervision must stay in the foreground (log with logto= instead)"
    for a in argv:
        if a in _DAEMON_FLAGS or a.startswith(("--daemonize=", "--daemonize2=")):
            report.warn(f"[{s.name}] command daemonizes ({a})", f, ln, hint=hint)
            return
    if not argv or "uwsgi" not in os.path.basename(argv[0]):
        return
    base = (s.get("directory") or os.path.dirname(s.file))
    for i, a in enumerate(argv):
        ini = None
        if a in ("--ini", "-i") and i + 1 < len(argv):
            ini = argv[i + 1]
        elif a.startswith("--ini="):
            ini = a.split("=", 1)[1]
        elif a.endswith(".ini") and i == 1:
            ini = a
        if not ini:
            continue
        path = ini if os.path.isabs(ini) else os.path.join(base, ini)
        try:
            text = open(path, encoding="utf-8", errors="replace").read()
        except OSError:
            continue
        try:
            secs = read_ini(text, path, "uwsgi")
        except IniSyntaxError:
            continue
        for sec in secs:
            e = sec.entry("daemonize") or sec.entry("daemonize2") if sec.name == "uwsgi" else None
            if e is not None:
                report.warn(f"[{s.name}] runs {ini}, whose \"{e.key}\" ({e.file}:{e.line}) detaches uWSGI "
                            "from the supervisor", f, ln, hint=hint)
                return


def _logfile(raw: str | None, name: str, channel: str, sd: SupervisordConfig, s: IniSection,
             r: _SectionReader, report: Report) -> str | None:
    if raw is None:
        return None
    v = raw.strip()
    if v.lower() in ("none", "off", ""):
        return None
    if v.lower() == "auto":
        # Supervisor: NAME-CHANNEL---IDENTIFIER-RANDOM.log; pyfront drops the random part so the
        # path is stable across restarts (and reread sees no change).
        return os.path.join(sd.childlogdir, f"{name}-{channel}---{sd.identifier}.log")
    if v.lower() == "syslog":
        f, ln = r.where(f"{channel}_logfile")
        report.warn(f"{channel}_logfile=syslog is not supported; logging is disabled for this channel", f, ln)
        return None
    path = os.path.join(os.path.dirname(s.file), os.path.expanduser(v))
    d = os.path.dirname(path)
    if not os.path.isdir(d):
        f, ln = r.where(f"{channel}_logfile")
        report.emerg(f"The directory named as part of the path {path} does not exist", f, ln,
                     hint="create the directory or change the path")
    return os.path.normpath(path) if not v.startswith("/dev/") else v


def _check_unique_logfiles(groups: Iterable[GroupConfig], report: Report) -> None:
    seen: dict[str, ProcessConfig] = {}
    for g in groups:
        for p in g.processes:
            for path in (p.stdout_logfile, p.stderr_logfile):
                if not path or path.startswith("/dev/"):
                    continue
                other = seen.get(path)
                if other is not None and other is not p:
                    report.warn(f"log file {path} is used by both {other.namespec} and {p.namespec}",
                                p.file, p.line, hint="give each program its own log file")
                seen[path] = p


# --------------------------------------------------------------------------- auth helper

def password_matches(configured: str, given: str) -> bool:
    """Plain text, or `{SHA}` + sha1 hex digest (Supervisor's two forms)."""
    import hmac
    if configured.startswith("{SHA}"):
        digest = hashlib.sha1(given.encode("utf-8")).hexdigest()
        return hmac.compare_digest(configured[5:].lower(), digest)
    return hmac.compare_digest(configured.encode("utf-8"), given.encode("utf-8"))


# --------------------------------------------------------------------------- docs

def render_docs() -> str:
    lines = ["# Supervisor-style settings (reference)", "",
             "Generated from `SETTINGS` in `src/pyfront/supervise/config.py` by",
             "`python -m pyfront.supervise.config --docs`; a test keeps it current.", "",
             "Values may use `%(ENV_X)s`, `%(here)s`, `%(program_name)s`, `%(group_name)s`,",
             "`%(host_node_name)s`, and in per-process keys `%(process_num)d`/`%(numprocs)d`.", ""]
    current = None
    for st in SETTINGS:
        if st.section != current:
            current = st.section
            header = {"program": "[program:x]", "group": "[group:x]", "rpcinterface": "[rpcinterface:x]"}.get(current, f"[{current}]")
            lines += ["", f"## {header}", "", "| key | default | meaning |", "|---|---|---|"]
        default = "—" if st.default is None else (f"`{st.default}`" if st.default else '""')
        lines.append(f"| `{st.key}` | {default} | {st.doc.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    import sys
    if sys.argv[1:] == ["--docs"]:
        sys.stdout.write(render_docs())
