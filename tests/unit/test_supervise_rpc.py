"""The XML-RPC method layer over a fake OS and NullMaster: fault codes, deferred answers."""
import signal

import pytest

from pyfront.config.diagnostics import ConfigError, Diagnostic, Report
from pyfront.config.ini import read_ini
from pyfront.control import faults as F
from pyfront.control.faults import RPCError
from pyfront.control.master_api import NullMaster
from pyfront.control.rpc import NOT_DONE_YET, Deferred, RPCInterface
from pyfront.supervise.config import parse_supervisor_sections
from tests.unit.test_supervise_process import make

TEXT = ("[program:a]\ncommand=x\nstartsecs=0\nstdout_logfile=NONE\nstderr_logfile=NONE\n"
        "[program:b]\ncommand=y\nstartsecs=0\nautostart=false\nstdout_logfile=NONE\nstderr_logfile=NONE\n"
        "[group:g]\nprograms=a,b\n")


def setup(loader=None):
    sup, fos, loop, lines = make(TEXT)
    loop.advance(0.5)
    master = NullMaster(loader=loader)
    return RPCInterface(sup, master), sup, fos, loop, master


def fault(fn):
    with pytest.raises(RPCError) as e:
        fn()
    return e.value.code, e.value.text


def test_faults_and_names():
    rpc, sup, fos, loop, master = setup()
    assert fault(lambda: rpc.call("supervisor.startProcess", ("g:a",))) == (F.ALREADY_STARTED, "ALREADY_STARTED: g:a")
    assert fault(lambda: rpc.call("supervisor.startProcess", ("nope",))) == (F.BAD_NAME, "BAD_NAME: nope")
    assert fault(lambda: rpc.call("supervisor.stopProcess", ("g:b",))) == (F.NOT_RUNNING, "NOT_RUNNING: g:b")
    assert fault(lambda: rpc.call("supervisor.nope", ())) == (F.UNKNOWN_METHOD, "UNKNOWN_METHOD")
    assert fault(lambda: rpc.call("supervisor.getPID", (1,))) == (F.INCORRECT_PARAMETERS, "INCORRECT_PARAMETERS")
    assert fault(lambda: rpc.call("supervisor.signalProcess", ("g:a", "NOPE"))) == (F.BAD_SIGNAL, "BAD_SIGNAL: NOPE")
    assert rpc.call("system.methodSignature", ("supervisor.startProcess",)) == ["boolean", "string", "boolean"]


def test_stop_waits_for_the_exit_then_group_results():
    rpc, sup, fos, loop, master = setup()
    pid = sup.find("g:a")[1].pid
    d = rpc.call("supervisor.stopProcessGroup", ("g",))
    assert isinstance(d, Deferred) and d.poll() is NOT_DONE_YET
    assert (pid, signal.SIGTERM) in fos.kills
    sup.child_exited(pid, signal.SIGTERM)
    assert d.poll() == [{"name": "a", "group": "g", "status": F.SUCCESS, "description": "OK"}]


def test_start_with_startsecs_zero_answers_at_once_and_multicall_collects():
    rpc, sup, fos, loop, master = setup()
    out = rpc.call("system.multicall", ([{"methodName": "supervisor.startProcess", "params": ["g:b"]},
                                         {"methodName": "supervisor.startProcess", "params": ["g:b"]},
                                         {"methodName": "system.multicall", "params": [[]]}],))
    assert out == [True, {"faultCode": F.ALREADY_STARTED, "faultString": "ALREADY_STARTED: g:b"},
                   {"faultCode": F.INCORRECT_PARAMETERS,
                    "faultString": "INCORRECT_PARAMETERS: Recursive system.multicall forbidden"}]


def test_shutdown_state_and_reload_config():
    new_text = TEXT.replace("command=y", "command=y2") + "[program:c]\ncommand=z\nstdout_logfile=NONE\n" \
        "stderr_logfile=NONE\n"

    def loader():
        r = Report()
        return parse_supervisor_sections(read_ini(new_text, "/etc/x/progs.conf"), "/etc/x", r,
                                         run_dir="/tmp/pyfront-unit-run")
    rpc, sup, fos, loop, master = setup(loader)
    assert rpc.call("supervisor.reloadConfig", ()) == [[["c"], ["g"], []]]
    assert [c["name"] for c in rpc.call("supervisor.getAllConfigInfo", ())] == ["a", "b", "c"]
    assert rpc.call("supervisor.addProcessGroup", ("c",)) is True
    assert fault(lambda: rpc.call("supervisor.addProcessGroup", ("c",))) == (F.ALREADY_ADDED, "ALREADY_ADDED: c")

    def broken():
        raise ConfigError(Diagnostic("emerg", "bad", "/etc/x/progs.conf", 3))
    master._loader = broken
    code, text = fault(lambda: rpc.call("supervisor.reloadConfig", ()))
    assert code == F.CANT_REREAD and "/etc/x/progs.conf:3" in text
    assert rpc.call("supervisor.shutdown", ()) is True and master.shutdown_requested
    assert fault(lambda: rpc.call("supervisor.getAllProcessInfo", ())) == (F.SHUTDOWN_STATE, "SHUTDOWN_STATE")
    assert rpc.call("supervisor.getState", ()) == {"statecode": -1, "statename": "SHUTDOWN"}
