"""The supervision layer ([program:x]) and its wiring with the control server."""
from __future__ import annotations


def build_components(config, master, log=None, osapi=None):
    """(SupervisorComponent, ControlServer) for a parsed SupervisorConfig; both run in the
    master's Loop. `master` implements pyfront.control.master_api.MasterControl."""
    from pyfront.control.server import ControlServer
    from pyfront.supervise.component import SupervisorComponent
    sup = SupervisorComponent(config, log=log, osapi=osapi)
    return sup, ControlServer(config, sup, master, log=log)
