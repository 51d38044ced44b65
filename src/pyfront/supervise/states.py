"""Supervisor's process and daemon states, with its numeric codes (supervisor/states.py)."""
from __future__ import annotations

import enum


class ProcessState(enum.IntEnum):
    STOPPED = 0
    STARTING = 10
    RUNNING = 20
    BACKOFF = 30
    STOPPING = 40
    EXITED = 100
    FATAL = 200
    UNKNOWN = 1000


STOPPED_STATES = (ProcessState.STOPPED, ProcessState.EXITED, ProcessState.FATAL, ProcessState.UNKNOWN)
RUNNING_STATES = (ProcessState.RUNNING, ProcessState.BACKOFF, ProcessState.STARTING)
SIGNALLABLE_STATES = (ProcessState.RUNNING, ProcessState.STARTING, ProcessState.STOPPING)

# Every transition Supervisor makes; change_state asserts the pair is in here.
ALLOWED = {
    ProcessState.STOPPED: {ProcessState.STARTING},
    ProcessState.EXITED: {ProcessState.STARTING},
    ProcessState.FATAL: {ProcessState.STARTING},
    ProcessState.UNKNOWN: {ProcessState.STARTING, ProcessState.STOPPED},
    ProcessState.STARTING: {ProcessState.RUNNING, ProcessState.BACKOFF, ProcessState.STOPPING},
    ProcessState.RUNNING: {ProcessState.STOPPING, ProcessState.EXITED},
    ProcessState.BACKOFF: {ProcessState.STARTING, ProcessState.FATAL, ProcessState.STOPPED},
    ProcessState.STOPPING: {ProcessState.STOPPED},
}
for _s in ProcessState:   # a failed kill() may land in UNKNOWN from anywhere
    ALLOWED.setdefault(_s, set()).add(ProcessState.UNKNOWN)


class SupervisorState(enum.IntEnum):
    """getState(): the daemon's own state."""
    FATAL = 2
    RUNNING = 1
    RESTARTING = 0
    SHUTDOWN = -1


def signame(sig: int) -> str:
    import signal
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"
