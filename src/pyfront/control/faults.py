"""Supervisor's XML-RPC fault codes (supervisor/xmlrpc.py `Faults`), stable numbers."""
from __future__ import annotations

UNKNOWN_METHOD = 1
INCORRECT_PARAMETERS = 2
BAD_ARGUMENTS = 3
SIGNATURE_UNSUPPORTED = 4
SHUTDOWN_STATE = 6
BAD_NAME = 10
BAD_SIGNAL = 11
NO_FILE = 20
NOT_EXECUTABLE = 21
FAILED = 30
ABNORMAL_TERMINATION = 40
SPAWN_ERROR = 50
ALREADY_STARTED = 60
NOT_RUNNING = 70
SUCCESS = 80
ALREADY_ADDED = 90
STILL_RUNNING = 91
CANT_REREAD = 92

NAMES = {v: k for k, v in dict(globals()).items() if k.isupper() and isinstance(v, int)}
CODES = {v: k for k, v in NAMES.items()}


class RPCError(Exception):
    """faultString is "NAME" or "NAME: extra", as Supervisor formats it."""

    def __init__(self, code: int | str, extra: object = None):
        self.code = CODES[code] if isinstance(code, str) else code
        self.text = NAMES.get(self.code, "UNKNOWN")
        if extra is not None:
            self.text = f"{self.text}: {extra}"
        super().__init__(self.code, self.text)
