"""Test harness (not product code): runs the supervision layer + control server in a Loop
with master-style reaping, for integration tests before `pyfront serve` hosts them.

    python -m tests.integration.supervise_host CONF_DIR RUN_DIR

SIGCHLD → waitpid(-1) loop → child_exited; SIGTERM/SIGINT → stop, exit when stopped;
SIGHUP → reload; supervisor.shutdown()/restart() act like the master would.
"""
import os
import signal
import sys
import time

from pyfront.component import Loop
from pyfront.config.confdir import load_confdir
from pyfront.config.diagnostics import ConfigError, Report
from pyfront.control.master_api import NullMaster
from pyfront.supervise import build_components
from pyfront.supervise.config import parse_supervisor_sections

LEVELS = {"critical": "CRIT", "crit": "CRIT", "error": "ERRO", "warn": "WARN", "info": "INFO", "debug": "DEBG"}


def main(conf_dir: str, run_dir: str) -> int:
    os.makedirs(run_dir, exist_ok=True)
    main_log = os.path.join(run_dir, "main.log")
    logf = open(main_log, "a", buffering=1)

    def log(level, msg):
        t = time.time()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) + ",%03d" % int((t % 1) * 1000)
        logf.write(f"{stamp} {LEVELS.get(level, level.upper()[:4])} {msg}\n")

    def load():
        cd = load_confdir(conf_dir)
        r = Report()
        cfg = parse_supervisor_sections(cd.supervisor_sections, cd.path, r, run_dir=run_dir)
        r.raise_if_failed()
        return cfg

    try:
        cfg = load()
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 1
    master = NullMaster(loader=load, main_log=main_log, identifier=cfg.supervisord.identifier)
    loop = Loop()
    sup, ctl = build_components(cfg, master, log=log)
    rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wfd)
    pending = []
    for s in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, lambda n, f: pending.append(n))

    def drain():
        try:
            while os.read(rfd, 512):
                pass
        except BlockingIOError:
            pass

    loop.add_reader(rfd, drain)
    ctl.start(loop)
    sup.start(loop)
    log("info", "supervise_host started with pid %d" % os.getpid())
    print("READY " + " ".join(ctl.addresses()), flush=True)
    stopping = False
    while True:
        loop.run_once(0.5)
        sigs, pending[:] = list(pending), []
        if signal.SIGCHLD in sigs or True:
            while True:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                sup.child_exited(pid, status)
        if (signal.SIGTERM in sigs or signal.SIGINT in sigs or master.shutdown_requested) and not stopping:
            stopping = True
            log("warn", "received SIGTERM indicating exit request" if not master.shutdown_requested
                else "shutting down")
            sup.stop()
        if (signal.SIGHUP in sigs or master.reload_requested) and not stopping:
            master.reload_requested = False
            try:
                new = load()
                sup.reload(new)
                ctl.reload(new)
            except ConfigError as e:
                log("error", f"reload failed, keeping the old configuration: {e}")
        if stopping and sup.stopped():
            # let the shutdown() answer reach the client
            end = time.monotonic() + 0.3
            while time.monotonic() < end:
                loop.run_once(0.05)
            ctl.stop()
            return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
