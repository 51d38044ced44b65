/*
 * pf.h — the whole C <-> Python contract of pyfront's core.
 *
 * Only the region between PF_CDEF_BEGIN and PF_CDEF_END is read by cffi
 * (src/pyfront/_build/ffi_build.py), so it holds plain declarations: fixed-width
 * integer types, POD structs, opaque handles, integer #defines. Each concern owns
 * one section below; add declarations to your own section only.
 *
 * Status convention for every parser: return >= 0 = bytes consumed (complete),
 * PF_NEED_MORE = feed more bytes, other negatives = a PF_E* error code.
 */
#ifndef PF_H
#define PF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* PF_CDEF_BEGIN */

/* ---- common ---------------------------------------------------------- */
#define PF_ABI_VERSION 1
#define PF_NEED_MORE -1

const char *pf_version(void);
int pf_abi_version(void);

/* ---- http parser (http_parser.c) -------------------------------------- */

/* ---- uwsgi packets (uwsgi.c) ------------------------------------------ */

/* ---- event loop (loop.c) ---------------------------------------------- */
/* The loop lives inside pf_worker (worker.c); see that section for the entry points. */


/* ---- accept mutex (accept_mutex.c) ------------------------------------ */
/* Shared block set up by the master before fork (pyfront.worker.front.shm_size).
 * Word 0 is the accept mutex: 0 = free, else the owner's pid (as nginx's ngx_shmtx),
 * so a lock whose owner died can be freed by anyone who sees that pid is gone. */
size_t pf_shm_size(int nworkers);
int pf_shmtx_trylock(void *shm, int pid);          /* 1 = acquired */
void pf_shmtx_unlock(void *shm, int pid);
int pf_shmtx_force_unlock(void *shm, int pid);     /* master: a reaped worker's lock; 1 if it held it */
int pf_shmtx_owner(void *shm);
/* per-worker counters in the shared block (slot = worker index) */
typedef struct {
    uint64_t heartbeat_ms;      /* CLOCK_MONOTONIC ms of the last loop turn */
    uint64_t accepted;
    uint64_t requests;
    uint32_t active;            /* open client connections */
    uint32_t idle;              /* of which waiting in keep-alive */
    uint32_t pid;
    uint32_t generation;
} pf_shm_slot;
int pf_shm_read_slot(void *shm, int index, pf_shm_slot *out);


/* ---- router / route table (router.c) ---------------------------------- */
/* The route-table blob (docs/route-table.md, built by pyfront.config.compile) is
 * validated and copied by pf_router_load; the router is immutable afterwards. */
#define PF_RT_MAGIC   0x54524650        /* "PFRT" little-endian */
#define PF_RT_VERSION 1
typedef struct pf_router pf_router;
pf_router *pf_router_load(const void *blob, size_t len, char *err, size_t errlen);
void pf_router_free(pf_router *r);
int pf_router_addr_index(const pf_router *r, const char *addr, size_t len);   /* -1 if unknown */
/* server index for (listen address, Host value as sent: may carry :port / trailing dot) */
int pf_router_find_server(const pf_router *r, int addr, const char *host, size_t hlen);
/* location id (as compiled) for a normalised URI in that server; -1 = none (server level) */
int pf_router_find_location(const pf_router *r, int server, const char *uri, size_t len);

/* ---- URI path normalisation (path.c) ----------------------------------- */
/* Decode %XX, merge slashes, resolve . and .. ; out gets a NUL-terminated path that
 * starts with '/'. Returns its length, or PF_E_BAD_REQUEST for a bad escape, a NUL,
 * a path not starting with '/', or a '..' above the root. out may not alias in. */
int pf_path_normalize(const char *in, size_t len, char *out, size_t cap);
/* base + rest for alias/root mapping; refuses (PF_E_BAD_REQUEST) a join whose first
 * segment becomes '..' (the `location /static { alias /dir/; }` leak). */
int pf_path_join(const char *base, size_t blen, const char *rest, size_t rlen, char *out, size_t cap);


/* ---- static files (static.c) ------------------------------------------ */

/* ---- front worker (worker.c, conn.c) ---------------------------------- */
typedef struct pf_worker pf_worker;
typedef struct {
    int index;                  /* worker index (shm slot) */
    int max_connections;        /* worker_connections */
    int accept_mutex;           /* 0 = off (EPOLLEXCLUSIVE), 1 = on (shared lock) */
    int accept_mutex_delay_ms;
    int multi_accept;
    int wakeup_fd;              /* signal.set_wakeup_fd pipe, -1 = none */
    int error_log_fd;           /* -1 = stderr */
    int error_log_level;        /* PF_LOG_* */
    void *shm;                  /* shared block or NULL */
    size_t shm_len;
    int nworkers;
} pf_worker_conf;
#define PF_LOG_EMERG 0
#define PF_LOG_ALERT 1
#define PF_LOG_CRIT 2
#define PF_LOG_ERR 3
#define PF_LOG_WARN 4
#define PF_LOG_NOTICE 5
#define PF_LOG_INFO 6
#define PF_LOG_DEBUG 7
/* pf_worker_run results */
#define PF_RUN_WAKEUP 1          /* the wake-up fd is readable: Python handles signals */
#define PF_RUN_DRAINED 2         /* drain finished: no connections left */
#define PF_RUN_TICK 3            /* max_ms elapsed */
pf_worker *pf_worker_new(const pf_worker_conf *conf, const void *blob, size_t blob_len,
                         char *err, size_t errlen);
int pf_worker_add_listener(pf_worker *w, int fd, const char *addr, int reuseport);
int pf_worker_run(pf_worker *w, int max_ms);
void pf_worker_drain(pf_worker *w, int deadline_ms);   /* QUIT: stop accepting, close after next response */
int pf_worker_reopen_logs(pf_worker *w);
void pf_worker_free(pf_worker *w);                    /* flushes logs, closes every connection */
typedef struct {
    uint64_t accepted, requests;
    uint32_t active, idle, buffers_total, buffers_free;
} pf_worker_stats;
void pf_worker_get_stats(pf_worker *w, pf_worker_stats *out);
size_t pf_conn_size(void);                            /* sizeof the per-connection struct */


/* ---- access log (access_log.c) ---------------------------------------- */

/* ---- proxy (proxy.c) -------------------------------------------------- */

/* ---- app server I/O (app_io.c) ---------------------------------------- */

/* PF_CDEF_END */

#endif /* PF_H */
