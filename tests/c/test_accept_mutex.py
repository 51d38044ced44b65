"""The accept mutex word holds the owner's pid; a dead owner's lock is freed."""
import mmap
import os

from pyfront._native import ffi, lib
from pyfront.worker.front import shm_size


def shm():
    m = mmap.mmap(-1, shm_size(2))
    return m, ffi.from_buffer(m)


def test_lock_unlock_owner():
    m, p = shm()
    me = os.getpid()
    assert lib.pf_shmtx_owner(p) == 0
    assert lib.pf_shmtx_trylock(p, me) == 1
    assert lib.pf_shmtx_owner(p) == me
    assert lib.pf_shmtx_trylock(p, 1) == 0          # held by a live process (pid 1 exists)
    lib.pf_shmtx_unlock(p, 1)                        # not the owner: no effect
    assert lib.pf_shmtx_owner(p) == me
    lib.pf_shmtx_unlock(p, me)
    assert lib.pf_shmtx_owner(p) == 0


def test_dead_owner_is_freed():
    m, p = shm()
    pid = os.fork()
    if pid == 0:
        lib.pf_shmtx_trylock(p, os.getpid())
        os._exit(0)                                  # dies holding the lock
    os.waitpid(pid, 0)
    assert lib.pf_shmtx_owner(p) == pid
    assert lib.pf_shmtx_trylock(p, os.getpid()) == 1
    assert lib.pf_shmtx_owner(p) == os.getpid()


def test_master_force_unlock():
    m, p = shm()
    assert lib.pf_shmtx_trylock(p, 4242) == 1 or lib.pf_shmtx_owner(p) == 4242
    assert lib.pf_shmtx_force_unlock(p, 999) == 0
    assert lib.pf_shmtx_force_unlock(p, 4242) == 1
    assert lib.pf_shmtx_owner(p) == 0


def test_python_helpers_for_the_master():
    from pyfront.worker.front import read_worker_slot, release_dead_worker_lock
    m, p = shm()
    assert lib.pf_shmtx_trylock(p, 31337) == 1
    assert release_dead_worker_lock(m, 31337) is True
    assert release_dead_worker_lock(m, 31337) is False
    assert read_worker_slot(m, 1)["requests"] == 0
