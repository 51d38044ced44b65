/*
 * accept_mutex.c — the shared block: accept mutex word + per-worker counters.
 *
 * Lock word = owner's pid, 0 when free (the model is nginx's ngx_shmtx.c with atomics):
 * a worker that dies holding it (SIGKILL between trylock and unlock) would otherwise
 * stop every other worker from accepting. The master frees it when it reaps the pid
 * (pf_shmtx_force_unlock), and a contender that finds the owner gone (kill(pid, 0) ==
 * ESRCH) frees it too, so a lost lock costs at most one failed trylock.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include "pf_int.h"

#define SHM_HEADER 64

size_t pf_shm_size(int nworkers)
{
    if (nworkers < 1) nworkers = 1;
    return SHM_HEADER + (size_t)nworkers * sizeof(pf_shm_slot);
}

static volatile uint64_t *lock_word(void *shm) { return (volatile uint64_t *)shm; }

int pf_shmtx_trylock(void *shm, int pid)
{
    uint64_t expected = 0;
    if (__atomic_compare_exchange_n(lock_word(shm), &expected, (uint64_t)pid, 0,
                                    __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return 1;
    if (expected != 0 && expected != (uint64_t)pid && kill((pid_t)expected, 0) < 0 && errno == ESRCH) {
        /* the owner is gone: free its lock (only if it is still that owner's) */
        if (__atomic_compare_exchange_n(lock_word(shm), &expected, 0, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED)) {
            expected = 0;
            return __atomic_compare_exchange_n(lock_word(shm), &expected, (uint64_t)pid, 0,
                                               __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
        }
    }
    return expected == (uint64_t)pid;
}

void pf_shmtx_unlock(void *shm, int pid)
{
    uint64_t expected = (uint64_t)pid;
    __atomic_compare_exchange_n(lock_word(shm), &expected, 0, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}

int pf_shmtx_force_unlock(void *shm, int pid)
{
    uint64_t expected = (uint64_t)pid;
    return __atomic_compare_exchange_n(lock_word(shm), &expected, 0, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}

int pf_shmtx_owner(void *shm)
{
    return (int)__atomic_load_n(lock_word(shm), __ATOMIC_ACQUIRE);
}

int pf_shm_read_slot(void *shm, int index, pf_shm_slot *out)
{
    if (index < 0) return -1;
    memcpy(out, (char *)shm + SHM_HEADER + (size_t)index * sizeof(pf_shm_slot), sizeof *out);
    return 0;
}
