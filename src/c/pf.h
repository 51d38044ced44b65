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

/* ---- accept mutex (accept_mutex.c) ------------------------------------ */

/* ---- router / route table (router.c) ---------------------------------- */

/* ---- static files (static.c) ------------------------------------------ */

/* ---- front worker (worker.c, conn.c) ---------------------------------- */

/* ---- access log (access_log.c) ---------------------------------------- */

/* ---- proxy (proxy.c) -------------------------------------------------- */

/* ---- app server I/O (app_io.c) ---------------------------------------- */

/* PF_CDEF_END */

#endif /* PF_H */
