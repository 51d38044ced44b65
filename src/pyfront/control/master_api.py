"""What the control server needs from the pyfront master (arbiter.py implements it).

Wiring, done once by the master after it has parsed CONF_DIR:

    from pyfront.supervise.config import parse_supervisor_sections
    from pyfront.supervise import build_components

    report = Report()
    sup_cfg = parse_supervisor_sections(confdir.supervisor_sections, confdir.path, report)
    report.raise_if_failed()                 # ConfigError with file:line diagnostics
    supervisor, control = build_components(sup_cfg, master=self, log=self.log)
    # both are Components: start(loop), child_exited(pid, status), reload(new_cfg),
    # reopen_logs(), stop(graceful), stopped(), status()

Rules the master follows for these two components:
- It reaps every child (waitpid(-1, WNOHANG) on SIGCHLD) and offers each (pid, status)
  to `supervisor.child_exited`; grandchildren re-parented to the master (it is made a
  child subreaper by `supervisor.start`) are reaped the same way and simply ignored.
- On SIGHUP it re-parses CONF_DIR and calls `supervisor.reload(new_cfg)` and
  `control.reload(new_cfg)` only after the whole new config validated (house rule 3).
- On shutdown it calls `control.stop()` last, after every other layer reports stopped(),
  so `supervisorctl shutdown` gets its answer first.
- `log(level, message)`: level is one of "crit", "error", "warn", "info", "debug"; the
  master writes `YYYY-MM-DD HH:MM:SS,mmm LEVL message` lines (Supervisor's main-log format)
  to its error log, which `main_log_path()` names for `maintail`/`readLog`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from pyfront.component import ProcessStatus

if TYPE_CHECKING:  # pragma: no cover
    from pyfront.supervise.config import SupervisorConfig


class MasterControl(Protocol):
    """Implemented by the pyfront master; every method is called on the master's thread
    from a Loop callback, so each must return quickly (no blocking, no waiting)."""

    def worker_status(self) -> list[ProcessStatus]:
        """Rows for the processes the master runs itself, as read-only groups:
        group "front" name "worker-0", group "app-NAME" name "worker-1", ... Programs are
        NOT included (the supervisor component reports those)."""

    def load_supervisor_config(self) -> "SupervisorConfig":
        """Re-read CONF_DIR now and return its parsed supervisor layer (for `reread`/`update`).
        Raises pyfront.config.diagnostics.ConfigError when any file fails to parse; the
        control API turns it into Supervisor's CANT_REREAD fault with the file:line text."""

    def request_reload(self) -> None:
        """`supervisorctl reload` (supervisor.restart()): as if SIGHUP arrived — schedule a
        graceful reload of every layer after the current callback returns."""

    def request_shutdown(self) -> None:
        """`supervisorctl shutdown`: as if SIGQUIT arrived — graceful stop of everything."""

    def reopen_logs(self) -> None:
        """`pyfront ctl reopen`: as if SIGUSR1 arrived (every layer reopens its logs)."""

    def main_log_path(self) -> str | None:
        """Path of the master's own log file (for `maintail` / readLog); None if it logs
        only to stderr."""

    def state(self) -> str:
        """Supervisor getState() name: "RUNNING", "RESTARTING" (reload in progress) or
        "SHUTDOWN" (stopping)."""

    def identification(self) -> str:
        """[supervisord] identifier (default "supervisor"); the master may just return
        the one from the SupervisorConfig it loaded."""


class NullMaster:
    """A MasterControl for tests and for running the supervision layer alone: no front or
    app workers, reloads/shutdowns recorded as flags for the host loop to act on."""

    def __init__(self, loader=None, main_log: str | None = None, identifier: str = "supervisor"):
        self._loader = loader
        self._main_log = main_log
        self._identifier = identifier
        self.reload_requested = False
        self.shutdown_requested = False
        self.reopen_requested = False

    def worker_status(self) -> list[ProcessStatus]:
        return []

    def load_supervisor_config(self):
        if self._loader is None:
            raise RuntimeError("no configuration source")
        return self._loader()

    def request_reload(self) -> None:
        self.reload_requested = True

    def request_shutdown(self) -> None:
        self.shutdown_requested = True

    def reopen_logs(self) -> None:
        self.reopen_requested = True

    def main_log_path(self) -> str | None:
        return self._main_log

    def state(self) -> str:
        if self.shutdown_requested:
            return "SHUTDOWN"
        return "RESTARTING" if self.reload_requested else "RUNNING"

    def identification(self) -> str:
        return self._identifier
