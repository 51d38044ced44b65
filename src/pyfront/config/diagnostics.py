"""Config diagnostics shared by every layer: nginx-shaped `[level] message in file:line`."""
from __future__ import annotations

from dataclasses import dataclass, field

LEVELS = ("emerg", "alert", "crit", "error", "warn", "notice", "info", "debug")


@dataclass(frozen=True)
class Diagnostic:
    level: str          # one of LEVELS; "emerg"/"error" fail a check, the rest do not
    message: str        # nginx's own wording where nginx has one
    file: str | None = None
    line: int | None = None
    hint: str | None = None   # what to do; printed in parentheses after the location

    def format(self, prog: str = "pyfront") -> str:
        where = f" in {self.file}:{self.line}" if self.file and self.line else (f" in {self.file}" if self.file else "")
        tail = f" ({self.hint})" if self.hint else ""
        return f"{prog}: [{self.level}] {self.message}{where}{tail}"

    @property
    def is_error(self) -> bool:
        return self.level in ("emerg", "alert", "crit", "error")


class ConfigError(Exception):
    """Raised when a configuration cannot be used; carries every diagnostic found."""

    def __init__(self, diagnostics: list[Diagnostic] | Diagnostic):
        self.diagnostics = [diagnostics] if isinstance(diagnostics, Diagnostic) else list(diagnostics)
        super().__init__("\n".join(d.format() for d in self.diagnostics))


@dataclass
class Report:
    """Collects diagnostics while a layer is parsed and validated."""
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def add(self, level: str, message: str, file: str | None = None, line: int | None = None,
            hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(level, message, file, line, hint))

    def emerg(self, message, file=None, line=None, hint=None):
        self.add("emerg", message, file, line, hint)

    def warn(self, message, file=None, line=None, hint=None):
        self.add("warn", message, file, line, hint)

    @property
    def failed(self) -> bool:
        return any(d.is_error for d in self.diagnostics)

    def raise_if_failed(self) -> None:
        if self.failed:
            raise ConfigError(self.diagnostics)
