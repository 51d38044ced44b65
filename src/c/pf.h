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
/* Header: uint8 modifier1 | uint16le datasize | uint8 modifier2; then datasize bytes
 * of {uint16le klen, key, uint16le vlen, value}; the body follows (not counted). */
#define PF_UWSGI_HEAD 4
#define PF_E_UWSGI_TOO_BIG   -601  /* datasize > caller's max (uWSGI buffer-size), or output too small */
#define PF_E_UWSGI_HTTP      -602  /* header bytes spell an HTTP method: HTTP sent to a uwsgi socket */
#define PF_E_UWSGI_MODIFIER  -603  /* modifier1 is neither 0 (WSGI) nor 30 (WSGI, strip SCRIPT_NAME) */
#define PF_E_UWSGI_VAR       -604  /* a key/value length runs past the end of the vars block */
#define PF_E_UWSGI_TOO_MANY  -605  /* more vars than the caller's span array holds */

/* One var: offsets are into the caller's buffer (zero copy). */
typedef struct { uint32_t key_off, key_len, val_off, val_len; } pf_uwsgi_var;

typedef struct {
    uint8_t modifier1, modifier2;
    uint16_t datasize;   /* bytes in the vars block */
    uint32_t nvars;
    uint32_t flat_len;   /* bytes written to `flat` ("k\0v\0k\0v", no trailing NUL) */
    int flat_nul;        /* 1: a key or value contains NUL, so `flat` is ambiguous: use spans */
} pf_uwsgi_packet;

/* >= 0: 4 + datasize (the body starts there); PF_NEED_MORE; or PF_E_UWSGI_*.
 * vars may be NULL (no spans wanted), flat may be NULL (no flat copy wanted);
 * flat_cap >= datasize always suffices. */
int pf_uwsgi_parse(const char *buf, size_t len, uint32_t max_datasize, pf_uwsgi_packet *pkt,
                   pf_uwsgi_var *vars, uint32_t max_vars, char *flat, size_t flat_cap);

/* Header + vars (offsets into src) into out; returns bytes written or PF_E_UWSGI_TOO_BIG
 * (vars block over 65535 bytes, as nginx's "uwsgi request is too big", or cap too small). */
int pf_uwsgi_encode(uint8_t modifier1, uint8_t modifier2, const char *src, const pf_uwsgi_var *vars,
                    uint32_t nvars, char *out, size_t cap);

/* ---- event loop (loop.c) ---------------------------------------------- */

/* ---- accept mutex (accept_mutex.c) ------------------------------------ */

/* ---- router / route table (router.c) ---------------------------------- */

/* ---- static files (static.c) ------------------------------------------ */

/* ---- front worker (worker.c, conn.c) ---------------------------------- */

/* ---- access log (access_log.c) ---------------------------------------- */

/* ---- proxy (proxy.c) -------------------------------------------------- */

/* ---- app server I/O (app_io.c) ---------------------------------------- */
/* Blocking-style I/O on non-blocking fds (try, then poll on EAGAIN); errno in *err. */
#define PF_APP_STOP    -2   /* pf_app_accept: the wake fd is readable (worker is stopping) */
#define PF_APP_AGAIN   -3   /* pf_app_accept: nothing accepted this time (race, EINTR, timeout) */
#define PF_APP_CLOSED  -4   /* peer closed before a complete request head */
#define PF_APP_TIMEOUT -5   /* poll() timed out */
#define PF_APP_IOERR   -6   /* a syscall failed: errno in *err */

/* >= 0: accepted fd (non-blocking, close-on-exec); or PF_APP_STOP/AGAIN/IOERR. */
int pf_app_accept(int lfd, int wakefd, int timeout_ms, int *err);
/* > 0 bytes read, 0 = EOF, PF_APP_TIMEOUT/IOERR. */
int pf_app_recv(int fd, char *buf, size_t len, int timeout_ms, int *err);
/* Read until a whole uwsgi head is in buf. *nread: bytes already in buf on entry, total
 * on return (may include body bytes past the head). Returns pf_uwsgi_parse's result,
 * PF_APP_CLOSED, PF_APP_TIMEOUT or PF_APP_IOERR. */
int pf_app_read_uwsgi(int fd, char *buf, size_t cap, uint32_t max_datasize, int timeout_ms,
                      pf_uwsgi_packet *pkt, char *flat, size_t flat_cap, size_t *nread, int *err);
/* Send a then b completely (writev); 0 or PF_APP_TIMEOUT/IOERR. */
int pf_app_send2(int fd, const char *a, size_t alen, const char *b, size_t blen, int timeout_ms, int *err);
/* sendfile() count bytes (-1: to EOF) from offset; bytes sent or PF_APP_TIMEOUT/IOERR. */
int64_t pf_app_sendfile(int out_fd, int in_fd, int64_t offset, int64_t count, int timeout_ms, int *err);

/* PF_CDEF_END */

#endif /* PF_H */
