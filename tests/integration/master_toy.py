"""Test-only driver: runs the real Arbiter + FrontPool with a toy Python front worker.

Used by tests/integration/test_master_*.py to exercise the master (signals, respawn,
reload, listeners, pid file) independently of the C front worker. Never product code.

    python master_toy.py PLAN.json     # PLAN: {"confdir", "pid", "workers", "listens": [...],
                                       #        "error_log", "invalid": bool, "tag": str}
The plan file is re-read on every reload; "invalid": true makes the reload fail validation.
"""
import json
import os
import selectors
import signal
import socket
import sys
import threading
import time

from pyfront.arbiter import Arbiter
from pyfront.config.confdir import load_confdir
from pyfront.config.diagnostics import ConfigError, Diagnostic
from pyfront.front_pool import FrontPlan, FrontPool
from pyfront.listeners import ListenPlan
from pyfront.stack import Stack


def toy_worker(spec):
    """HTTP/1.0-ish: GET /info -> "pid gen tag"; GET /big?N -> N MiB slowly. QUIT drains."""
    state = {"quit": False, "active": 0}
    lock = threading.Lock()
    tag, _, mode = spec.route_blob.decode().partition("|")
    if mode == "crash":
        os._exit(3)
    if mode == "slow-start":      # a worker still setting up when signals arrive
        time.sleep(0.3)
    if mode == "ignore-term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGQUIT, lambda *a: state.__setitem__("quit", True))
    signal.signal(signal.SIGUSR1, lambda *a: None)
    socks = [socket.socket(fileno=ls.fd) for ls in spec.listeners]
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)

    def handle(conn):
        try:
            conn.setblocking(True)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            path = data.split(b" ", 2)[1].decode()
            if path.startswith("/big"):
                mib = int(path.partition("?")[2] or 4)
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % (mib << 20))
                block = b"x" * 65536
                for _ in range(mib * 16):
                    conn.sendall(block)
                    time.sleep(0.01)
            else:
                body = f"{os.getpid()} {spec.generation} {tag}\n".encode()
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        except OSError:
            pass
        finally:
            conn.close()
            with lock:
                state["active"] -= 1

    while not state["quit"]:
        for key, _ in sel.select(0.05):
            try:
                conn, _ = key.fileobj.accept()
            except (BlockingIOError, InterruptedError):
                continue
            with lock:
                state["active"] += 1
            threading.Thread(target=handle, args=(conn,), daemon=True).start()
    for s in socks:
        s.close()
    while state["active"] > 0:
        time.sleep(0.02)
    os._exit(0)


def load(plan_path):
    with open(plan_path) as f:
        p = json.load(f)
    if p.get("invalid"):
        raise ConfigError(Diagnostic("emerg", 'unknown directive "bogus"', p["confdir"] + "/site.conf", 3))
    plan = FrontPlan(
        listens=tuple(ListenPlan(**lp) for lp in p["listens"]),
        route_blob=(p.get("tag", "v1") + "|" + p.get("mode", "")).encode(),
        worker_processes=p.get("workers", 1),
        cpus=tuple(tuple(c) for c in p["cpus"]) if p.get("cpus") else None,
        shutdown_timeout_s=p.get("shutdown_timeout_s", 30.0))
    cd = load_confdir(p["confdir"])
    return Stack(cd.path, cd, cd.path + "/run", p["pid"], p.get("error_log"), "info", {"front": plan})


def main():
    plan_path = sys.argv[1]
    stack = load(plan_path)
    factories = {"front": lambda cfg, arb: FrontPool(cfg, arb.emit, entry=toy_worker, shm_size=lambda n: 4096)}

    def ready(arb):
        print("READY", flush=True)

    return Arbiter(stack, ["serve", stack.path], factories=factories,
                   loader=lambda path: load(plan_path), on_ready=ready).run()


if __name__ == "__main__":
    sys.exit(main())
