"""The master's signal queue: a burst of child exits never pushes an operator's signal out."""
import signal

from pyfront.arbiter import Arbiter
from pyfront.stack import Stack


def test_chld_burst_keeps_a_queued_hup(tmp_path):
    a = Arbiter(Stack(str(tmp_path), None, str(tmp_path), str(tmp_path / "pid"), None, "info"), ["serve"])
    a._on_signal(signal.SIGHUP, None)
    for _ in range(200):          # e.g. a group of 200 programs stopping at once
        a._on_signal(signal.SIGCHLD, None)
    a._on_signal(signal.SIGQUIT, None)
    assert list(a._signals) == [signal.SIGHUP, signal.SIGQUIT]
