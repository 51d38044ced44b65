/*
 * app_hot.c — the app worker's per-request bookkeeping and the http-socket thread's one
 * call per request, in C.
 *
 * Why: every Python-level step of the request loop costs 100–1,000 instructions. The
 * scoreboard write (start time + "METHOD URI" for harakiri and `pyfront ctl status`), its
 * clearing, the request counter and the max-requests check were ~5,000 instructions per
 * request in Python (struct.pack_into, an f-string, three env lookups, an encode; measured
 * with bench/app_cost.py); here they are a counter add, two memcpy and a clock read. The
 * request's facts Python would read field by field (framing flags, head length) stay in
 * pf_app_hot, and the response leaves from there: one cffi call per request answers the
 * current request and takes the next one.
 */
#include <string.h>
#include <time.h>

#include "pf.h"

/* The status line's protocol prefix + the app's status and headers, copied once. */
#define HOT_HEAD_MAX 16384

static void board_count(pf_app_board *b)
{
    if (!b->requests)
        return;
    uint64_t n = __atomic_add_fetch(b->requests, 1, __ATOMIC_RELAXED);
    if (b->retire_at && n >= b->retire_at && b->retire && __atomic_load_n(b->retire, __ATOMIC_RELAXED) == 0) {
        int32_t zero = 0;      /* keep a reason the main thread set first (lifetime, rss) */
        __atomic_compare_exchange_n(b->retire, &zero, 1, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    }
}

void pf_app_board_begin(pf_app_board *b, const char *method, size_t mlen, const char *uri, size_t ulen)
{
    board_count(b);
    if (!b->core)
        return;
    char *line = b->core + sizeof(double);
    size_t n = mlen < PF_APP_BOARD_LINE ? mlen : PF_APP_BOARD_LINE;
    memcpy(line, method, n);
    if (n < PF_APP_BOARD_LINE)
        line[n++] = ' ';
    size_t u = ulen < PF_APP_BOARD_LINE - n ? ulen : PF_APP_BOARD_LINE - n;
    memcpy(line + n, uri, u);
    n += u;
    memset(line + n, 0, PF_APP_BOARD_LINE - n);
    /* time.monotonic()'s clock, so the master compares it with its own */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double t = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    memcpy(b->core, &t, sizeof t);     /* written last: the line is complete when it shows */
}

void pf_app_board_end(pf_app_board *b)
{
    if (b->core) {
        double zero = 0.0;
        memcpy(b->core, &zero, sizeof zero);
    }
}

/* pf_app_send_simple for the current request: the next `back`, or a PF_APP_* error. */
static int respond(pf_app_hot *h, const char *st, size_t stlen, uint32_t nheaders, const char *body, size_t blen)
{
    char sh[HOT_HEAD_MAX];
    int fl = h->sflags;
    if (!pf_app_loop_keeps(h->loop))
        fl &= ~PF_SEND_KEEP;
    if (stlen > sizeof sh - 9)
        return PF_APP_BIGHEAD;
    memcpy(sh, (fl & PF_SEND_HTTP11) ? "HTTP/1.1 " : "HTTP/1.0 ", 9);
    memcpy(sh + 9, st, stlen);
    int r = pf_app_send_simple(h->ctx->fd, fl, sh, stlen + 9, nheaders, body, blen, h->timeout_ms, &h->err);
    if (r < 0)
        return r;
    return (r & 1) ? (int)h->head_len : -1;
}

int pf_app_hot_step(pf_app_hot *h, const char *st, size_t stlen, uint32_t nheaders, const char *body, size_t blen)
{
    int back = h->back;
    if (st) {
        back = respond(h, st, stlen, nheaders, body, blen);
        if (back == PF_APP_BADHEAD || back == PF_APP_BIGHEAD)
            return back;
        if (back < -1) {
            h->n = back;
            h->back = -1;
            return PF_APP_SENDFAIL;
        }
    }
    h->back = -1;
    pf_app_ready *ctx = h->ctx;
    pf_app_board_end(&h->board);
    int n = pf_app_loop_step(h->loop, ctx, back >= 0 ? (uint32_t)back : 0, back >= 0, h->flat, h->flat_cap,
                             h->info, &h->err);
    if (n < 0) {
        if (n == PF_APP_UWSGI)
            board_count(&h->board);        /* Python reads the packet and writes the line */
        return n;
    }
    const pf_http_request *req = &ctx->req;
    pf_app_board_begin(&h->board, ctx->buf + req->method.off, req->method.len, ctx->buf + req->target.off,
                       req->target.len);
    const int64_t *info = h->info;
    int fl = (int)info[4];
    h->head_len = (uint32_t)info[1];
    h->sflags = (fl & (PF_SEND_KEEP | PF_SEND_HTTP11 | PF_SEND_HEAD)) | PF_SEND_HTTP;
    if (h->nofast || info[2] != PF_BODY_NONE || (fl & 16) || info[9] || n >= (1 << 22)) {
        h->n = n;
        return PF_APP_SLOWREQ;
    }
    return (n << 9) | ((int)info[5] << 5) | (int)info[8];
}
