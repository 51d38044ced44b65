/*
 * app_head.c — the response head of a WSGI app's common answer (status, a header list,
 * one body string), built and sent in C so the worker's Python does one join + encode
 * instead of ~100 bytecodes of string work per request (bench/app_cost.py: about
 * 5,000 instructions per request).
 *
 * Input: "PROTO NNN Reason\0Name\0Value\0Name\0Value..." (latin-1, from the app's status
 * and headers) and the number of headers. A NUL, CR or LF inside a name or value shows
 * up as a wrong field count or is found by the scan, and nothing is sent: CR/LF would
 * let an app (or a value it copied from a request) inject headers (CWE-113).
 *
 * HTTP mode (http-socket, and persistent uwsgi connections: PF_SEND_UKEEP) adds what the
 * connection needs, as wsgi.py's Response does: Content-Length when the app gave none (not
 * for 1xx/204/304, which never carry a body), "Connection: close" when the connection
 * ends, "Connection: keep-alive" for a kept HTTP/1.0 client and, on a persistent uwsgi
 * connection, as the acknowledgement pyfront's front waits for (docs/proxy.md).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "pf.h"

#define HEAD_MAX 16384

typedef struct { char *p; size_t len, cap; int over; } out_t;

__attribute__((noinline)) static void put(out_t *o, const char *s, size_t n)
{
    if (o->over || n > o->cap - o->len) {
        o->over = 1;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static int ieq(const char *s, size_t n, const char *lower)
{
    size_t m = strlen(lower);
    return n == m && strncasecmp(s, lower, m) == 0;
}

static int has_crlf(const char *s, size_t n)
{
    return memchr(s, '\r', n) != NULL || memchr(s, '\n', n) != NULL;
}

/* The status line "PROTO NNN Reason": the status must be three digits and a space. */
static int status_code(const char *s, size_t n, size_t *code_off)
{
    const char *sp = memchr(s, ' ', n);
    if (!sp || has_crlf(s, n))
        return -1;
    size_t off = (size_t)(sp - s) + 1;
    if (n - off < 4 || sp[4] != ' ')
        return -1;
    int code = 0;
    for (int i = 1; i <= 3; i++) {
        if (sp[i] < '0' || sp[i] > '9')
            return -1;
        code = code * 10 + (sp[i] - '0');
    }
    *code_off = off;
    return code;
}

int pf_app_send_simple(int fd, int flags, const char *sh, size_t shlen, uint32_t nheaders,
                       const char *body, size_t blen, int timeout_ms, int *err)
{
    char buf[HEAD_MAX];
    out_t o = { .p = buf, .len = 0, .cap = sizeof buf, .over = 0 };
    const char *end = sh + shlen;
    const char *nul = memchr(sh, 0, shlen);
    size_t slen = nul ? (size_t)(nul - sh) : shlen;
    size_t code_off;
    int code = status_code(sh, slen, &code_off);
    if (code < 0)
        return PF_APP_BADHEAD;
    put(&o, sh, slen);
    put(&o, "\r\n", 2);
    int has_length = 0, close_asked = 0;
    const char *p = nul ? nul + 1 : end;      /* the header fields, NUL-separated */
    if (nheaders == 0 && p != end)
        return PF_APP_BADHEAD;
    for (uint32_t i = 0; i < nheaders; i++) {
        const char *nm = p;
        const char *z = memchr(nm, 0, (size_t)(end - nm));
        if (!z)
            return PF_APP_BADHEAD;          /* too few fields: a name without a value */
        const char *val = z + 1;
        const char *z2 = memchr(val, 0, (size_t)(end - val));
        if ((i + 1 < nheaders) != (z2 != NULL))
            return PF_APP_BADHEAD;          /* more or fewer fields: a NUL inside a name or value */
        const char *vend = z2 ? z2 : end;
        size_t nlen = (size_t)(z - nm), vlen = (size_t)(vend - val);
        if (has_crlf(nm, nlen) || has_crlf(val, vlen))
            return PF_APP_BADHEAD;
        if (ieq(nm, nlen, "content-length"))
            has_length = 1;
        else if (ieq(nm, nlen, "connection") && vlen >= 5 && strncasecmp(val, "close", 5) == 0)
            close_asked = 1;
        put(&o, nm, nlen);
        put(&o, ": ", 2);
        put(&o, val, vlen);
        put(&o, "\r\n", 2);
        p = z2 ? z2 + 1 : end;
    }
    int keep = 0;
    if (flags & PF_SEND_HTTP) {
        keep = (flags & PF_SEND_KEEP) && !close_asked;
        if (!has_length && code >= 200 && code != 204 && code != 304) {
            char cl[40];
            int k = snprintf(cl, sizeof cl, "Content-Length: %zu\r\n", blen);
            put(&o, cl, (size_t)k);
        }
        if (!keep)
            put(&o, "Connection: close\r\n", 19);
        else if (!(flags & PF_SEND_HTTP11) || (flags & PF_SEND_UKEEP))
            put(&o, "Connection: keep-alive\r\n", 24);   /* UKEEP: the front's acknowledgement */
        if (code < 200 || code == 204 || code == 304)
            blen = 0;          /* RFC 9112 §6.3: no body, whatever the app returned (it would desync the connection) */
    }
    put(&o, "\r\n", 2);
    if (o.over)
        return PF_APP_BIGHEAD;
    if (flags & PF_SEND_HEAD)
        blen = 0;
    int r = pf_app_send2(fd, buf, o.len, body, blen, timeout_ms, err);
    if (r < 0)
        return r;
    return (int)(o.len << 1) | keep;
}
