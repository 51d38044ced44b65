"""Raw XML-RPC against pyfront and a real supervisord on the same conf: system.* methods,
structs, fault codes."""
import xmlrpc.client

import pytest

from tests.integration.supervise_util import start_pyfront, start_supervisord, state_of, wait_status, write_conf

pytestmark = [pytest.mark.peer, pytest.mark.timeout(120)]

PROGRAMS = """\
[program:p]
command = /bin/sh -c "echo out-line; exec sleep 1000"
startsecs = 0
"""


@pytest.fixture
def servers(tmp_path, procs):
    out = {}
    for which in ("real", "ours"):
        d, run = str(tmp_path / which), str(tmp_path / f"{which}-run")
        conf, port = write_conf(d, run, PROGRAMS)
        if which == "real":
            start_supervisord(procs, conf, port)
        else:
            start_pyfront(procs, d, run, port)
        wait_status(conf, lambda o: state_of(o, "p") == "RUNNING")
        out[which] = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}/RPC2")
    return out["real"], out["ours"]


def _fault(call):
    try:
        call()
    except xmlrpc.client.Fault as e:
        return e.faultCode, e.faultString
    return None


def test_system_methods_match(servers):
    real, ours = servers
    real_methods = real.system.listMethods()
    our_methods = ours.system.listMethods()
    assert set(real_methods) <= set(our_methods)
    assert all(m.startswith("pyfront.") for m in set(our_methods) - set(real_methods))
    for m in real_methods:
        assert ours.system.methodSignature(m) == real.system.methodSignature(m), m
        assert isinstance(ours.system.methodHelp(m), str) and ours.system.methodHelp(m)
    assert _fault(lambda: ours.system.methodHelp("nope")) == _fault(lambda: real.system.methodHelp("nope"))
    assert _fault(lambda: ours.supervisor.nope()) == _fault(lambda: real.supervisor.nope())


def test_multicall_matches(servers):
    real, ours = servers
    calls = [{"methodName": "supervisor.getAPIVersion", "params": []},
             {"methodName": "supervisor.getProcessInfo", "params": ["nosuch"]},
             {"methodName": "system.multicall", "params": [[]]},
             {"params": []},
             {"methodName": "supervisor.stopProcess", "params": ["p"]},
             {"methodName": "supervisor.startProcess", "params": ["p"]},
             {"methodName": "supervisor.getState", "params": []}]
    assert ours.system.multicall(calls) == real.system.multicall(calls)


def test_structs_and_faults_match(servers):
    real, ours = servers
    ri, oi = real.supervisor.getProcessInfo("p"), ours.supervisor.getProcessInfo("p")
    assert sorted(ri) == sorted(oi)
    assert (oi["statename"], oi["state"], oi["spawnerr"], oi["group"]) == (
        ri["statename"], ri["state"], ri["spawnerr"], ri["group"])
    rc, oc = real.supervisor.getAllConfigInfo(), ours.supervisor.getAllConfigInfo()
    # Supervisor 4.3+ added "autorestart" (the reference snapshot has it); older peers lack it
    assert set(rc[0]) <= set(oc[0]) and set(oc[0]) - set(rc[0]) <= {"autorestart"}
    for key in ("autostart", "exitcodes", "group", "group_prio", "inuse", "killasgroup", "name",
                "process_prio", "redirect_stderr", "startretries", "startsecs", "stopsignal", "stopwaitsecs",
                "stdout_logfile_maxbytes", "stdout_logfile_backups", "serverurl", "uid", "directory"):
        assert oc[0][key] == rc[0][key], key
    assert ours.supervisor.getState() == real.supervisor.getState()
    assert ours.supervisor.getIdentification() == real.supervisor.getIdentification()
    assert ours.supervisor.getAPIVersion() == real.supervisor.getAPIVersion() == "3.0"
    for call in (lambda s: s.supervisor.readProcessStdoutLog("p", -10, 5),
                 lambda s: s.supervisor.readProcessStdoutLog("nosuch", 0, 0),
                 lambda s: s.supervisor.startProcess("p"),
                 lambda s: s.supervisor.signalProcess("p", "NOPE"),
                 lambda s: s.supervisor.addProcessGroup("p"),
                 lambda s: s.supervisor.removeProcessGroup("p"),
                 lambda s: s.supervisor.startProcessGroup("nosuch"),
                 lambda s: s.supervisor.getAPIVersion("extra")):
        assert _fault(lambda: call(ours)) == _fault(lambda: call(real))
    for s in (ours, real):   # a wrong-typed argument: both answer HTTP 500, and keep serving
        with pytest.raises(xmlrpc.client.ProtocolError) as e:
            s.supervisor.getProcessInfo(1)
        assert e.value.errcode == 500
    assert ours.supervisor.readProcessStdoutLog("p", 0, 0) == real.supervisor.readProcessStdoutLog("p", 0, 0)
    assert ours.supervisor.tailProcessStdoutLog("p", 0, 3) == real.supervisor.tailProcessStdoutLog("p", 0, 3)
    assert ours.supervisor.tailProcessStdoutLog("p", 2, 100) == real.supervisor.tailProcessStdoutLog("p", 2, 100)
    assert ours.supervisor.signalProcess("p", "CONT") is real.supervisor.signalProcess("p", "CONT") is True
