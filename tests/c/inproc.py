"""A front worker (the C loop) running in a thread of the test process.

pf_worker_run releases the GIL (cffi), so the test thread talks to it over 127.0.0.1
while it serves. Keeps static/HTTP tests in tests/c, which `make test-asan` runs
against the AddressSanitizer build."""
from __future__ import annotations

import os
import socket
import tempfile
import threading

from pyfront.config.compile import ServerPlan, build_blob
from pyfront.worker.front import FrontWorker
from tests.integration.frontfix import conf


class InProc:
    def __init__(self, servers_fn, log_formats=None, max_connections=64, shm=None):
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(128)
        self.port = self.ls.getsockname()[1]
        self.addr = f"127.0.0.1:{self.port}"
        fd, self.error_log = tempfile.mkstemp(prefix="pf-err-")
        self.errfd = fd
        self.w = FrontWorker(build_blob(servers_fn(self.addr), log_formats), max_connections=max_connections,
                             error_log_fd=fd, error_log_level="info", shm=shm)
        self.w.add_listener(self.ls.fileno(), self.addr)
        self._stop = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self._stop:
            self.w.run(20)

    def connect(self, timeout=5.0):
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def errors(self) -> str:
        return open(self.error_log).read()

    def close(self):
        self._stop = True
        self.t.join(10)
        self.w.close()
        self.ls.close()
        os.close(self.errfd)
        os.unlink(self.error_log)


def site(root, names=("localhost",), locations=(), **kw):
    def make(addr):
        return [ServerPlan(listen=((addr, True),), names=names, conf=conf(root=root, **kw), locations=locations)]
    return make
