"""Test fixture process: one front worker (run_worker) on inherited listen fds.

argv: BLOB_PATH SHUTDOWN_S ADDR=FD [ADDR=FD ...]. Used by tests/integration/frontfix.py
until/besides `pyfront serve` (the master helper's arbiter does the same in production).
"""
import mmap
import os
import sys

from pyfront.worker.front import run_worker, shm_size
from pyfront.worker.spec import FrontWorkerSpec, ListenSocket


def main() -> None:
    blob = open(sys.argv[1], "rb").read()
    shutdown = float(sys.argv[2])
    listeners = []
    for item in sys.argv[3:]:
        addr, fd = item.rsplit("=", 1)
        listeners.append(ListenSocket(address=addr, fd=int(fd)))
    spec = FrontWorkerSpec(index=0, generation=0, master_pid=os.getppid(), listeners=tuple(listeners),
                           route_blob=blob, shm=mmap.mmap(-1, shm_size(1)),
                           error_log=os.environ.get("PF_TEST_ERROR_LOG"), error_log_level="info",
                           shutdown_timeout_s=shutdown)
    run_worker(spec)


if __name__ == "__main__":
    main()
