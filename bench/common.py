"""Shared benchmark plumbing: pinned processes, wrk runs, RSS readings, result tables.

Server processes are pinned to CPU 0 and the load generator to CPU 1 (taskset), the
contenders run alternately in the same session, and medians are reported. Every load
run is bounded by wrk's -d; every process started here is stopped by pid.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

SERVER_CPU = os.environ.get("BENCH_SERVER_CPU", "0")
LOAD_CPU = os.environ.get("BENCH_LOAD_CPU", "1")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 15.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"port {port} not listening")


def pinned(argv: list[str], cpu: str) -> list[str]:
    return ["taskset", "-c", cpu, *argv]


class Server:
    """A server under test, started pinned, in its own session, stopped by pid."""

    def __init__(self, name: str, argv: list[str], port: int, env=None, cwd=None):
        self.name, self.port = name, port
        self.proc = subprocess.Popen(pinned(argv, SERVER_CPU), env=env, cwd=cwd, start_new_session=True,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_port(port)

    def worker_pids(self) -> list[int]:
        """Children of the server's master (the workers whose RSS we report)."""
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.proc.pid)], capture_output=True, text=True)
        return [int(x) for x in out.stdout.split()]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


@dataclass
class WrkResult:
    requests_per_s: float
    transfer_per_s: float      # bytes/s
    p50_ms: float
    p99_ms: float
    errors: int                # socket errors + non-2xx/3xx
    raw: str


_UNITS = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3}
_TIME = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    return float(m.group(1)) * _TIME[m.group(2)] if m else float("nan")


def wrk(url: str, connections: int, duration_s: int = 10, threads: int = 1, script: str | None = None) -> WrkResult:
    argv = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration_s}s", "--latency", url]
    if script:
        argv[1:1] = ["-s", script]
    out = subprocess.run(pinned(argv, LOAD_CPU), capture_output=True, text=True,
                         timeout=duration_s + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    tps = float(m.group(1)) * _UNITS.get(m.group(2), 1) if m else 0.0
    p50 = _ms(re.search(r"50%\s+(\S+)", out).group(1))
    p99 = _ms(re.search(r"99%\s+(\S+)", out).group(1))
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    return WrkResult(rps, tps, p50, p99, errors, out)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def write_table(path: str, title: str, intro: str, header: list[str], rows: list[list[str]]) -> None:
    lines = [f"# {title}", "", intro, "", "| " + " | ".join(header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def need(program: str) -> str:
    p = shutil.which(program) or shutil.which(program, path="/usr/sbin")
    if not p:
        sys.exit(f"bench: {program} is not installed")
    return p


def machine_line() -> str:
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{time.strftime('%Y-%m-%d')} · {os.cpu_count()} CPUs ({cpu}) · server on CPU {SERVER_CPU}, wrk on CPU {LOAD_CPU}"
