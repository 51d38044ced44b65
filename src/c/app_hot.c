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
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
    if (h->log.fd >= 0)
        pf_app_log_request(&h->log, &h->board, st, stlen, nheaders, (fl & PF_SEND_HEAD) ? 0 : blen, (size_t)(r >> 1));
    return (r & 1) ? (int)h->head_len : -1;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Python's log_request line, byte for byte (worker.py), formatted here so a request log
 * does not send every request down the general path. */
void pf_app_log_request(pf_app_log *lg, const pf_app_board *b, const char *st, size_t stlen, uint32_t nheaders,
                        size_t nbytes, size_t head_bytes)
{
    if (lg->fd < 0)
        return;
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    if (wall.tv_sec != lg->date_sec) {
        struct tm tm;
        time_t t = wall.tv_sec;
        localtime_r(&t, &tm);
        if (!strftime(lg->date, sizeof lg->date, "%a %b %e %H:%M:%S %Y", &tm))
            lg->date[0] = 0;
        lg->date_sec = wall.tv_sec;
    }
    long long ms = (mono_ns() - lg->t0_ns) / 1000000;
    unsigned long long n = b->requests ? __atomic_load_n(b->requests, __ATOMIC_RELAXED) : 0;
    const char *uri = lg->ulen ? lg->uri : "";
    size_t ulen = lg->ulen;
    /* defaults of the base environ when a var is absent: REQUEST_METHOD GET, SERVER_PROTOCOL HTTP/1.0 */
    const char *method = lg->method ? lg->method : "GET";
    size_t mlen = lg->method ? lg->mlen : 3;
    const char *proto = lg->proto ? lg->proto : "HTTP/1.0";
    size_t plen = lg->proto ? lg->plen : 8;
    size_t slen = stlen < 3 ? stlen : 3;
    const char *nul = memchr(st, 0, slen);
    if (nul)
        slen = (size_t)(nul - st);
    char line[16384];
    int k = snprintf(line, sizeof line,
                     "[pid: %d|app: 0|req: %llu/%llu] %.*s () {%u vars in %u bytes} [%s] %.*s %.*s => generated %zu "
                     "bytes in %lld msecs (%.*s %.*s) %u headers in %zu bytes (1 switches on core %d)\n",
                     lg->pid, n, n, (int)lg->alen, lg->addr ? lg->addr : "", lg->nvars, lg->datasize, lg->date,
                     (int)mlen, method, (int)(ulen > 8192 ? 8192 : ulen), uri, nbytes, ms, (int)(plen > 64 ? 64 : plen),
                     proto, (int)slen, st, nheaders, head_bytes, lg->core);
    if (k <= 0)
        return;
    size_t len = (size_t)k < sizeof line ? (size_t)k : sizeof line - 1;
    if ((size_t)k >= sizeof line)
        line[len - 1] = '\n';
    ssize_t w = write(lg->fd, line, len);   /* a log line lost to a full disk is not an error to report */
    (void)w;
}

/* A request on a connection pyfront's front keeps (app_loop.c's PF_APP_UWSGI) that the
 * fast loop can answer as it answers HTTP: no body, no https, no general-path oddity, a
 * key sequence Python already has. The scoreboard line and the log's facts come from the
 * values, walked beside the shape's keys. Otherwise n (PF_APP_UWSGI) goes to Python. */
static int uwsgi_fast(pf_app_hot *h, pf_app_ready *ctx, int n)
{
    const int64_t *info = h->info;
    int fl = (int)info[2];
    if (h->nofast || !(fl & PF_UWSGI_PERSIST) || (fl & (PF_UWSGI_SLOW | PF_UWSGI_BODY | PF_UWSGI_HTTPS))
        || info[9] || info[7] < 0 || info[7] >= (1 << 22) || info[3] >= 16)
        return n;
    const pf_app_shapes *t = &ctx->sh;
    int s = (int)info[8];
    const char *k = t->store + t->off[s], *kend = k + t->len[s];
    const char *v = ctx->vals, *vend = ctx->vals + info[7];
    const char *method = NULL, *uri = NULL, *path = NULL, *addr = NULL, *proto = NULL;
    size_t mlen = 0, ulen = 0, plen = 0, alen = 0, prlen = 0;
    while (k < kend && v <= vend) {
        size_t kl = strnlen(k, (size_t)(kend - k));
        const char *z = memchr(v, 0, (size_t)(vend - v));
        size_t vl = z ? (size_t)(z - v) : (size_t)(vend - v);
        switch (kl) {
        case 9:
            if (memcmp(k, "PATH_INFO", 9) == 0) path = v, plen = vl;
            break;
        case 11:
            if (memcmp(k, "REQUEST_URI", 11) == 0) uri = v, ulen = vl;
            else if (memcmp(k, "REMOTE_ADDR", 11) == 0) addr = v, alen = vl;
            break;
        case 14:
            if (memcmp(k, "REQUEST_METHOD", 14) == 0) method = v, mlen = vl;
            break;
        case 15:
            if (memcmp(k, "SERVER_PROTOCOL", 15) == 0) proto = v, prlen = vl;
            break;
        default:
            break;
        }
        k += kl + 1;
        v += vl + 1;
    }
    if (!ulen)
        uri = path, ulen = plen;
    pf_app_board_begin(&h->board, method ? method : "", mlen, uri ? uri : "", ulen);
    if (h->log.fd >= 0) {
        pf_app_log *lg = &h->log;
        lg->t0_ns = mono_ns();
        lg->method = method, lg->mlen = (uint32_t)mlen;
        lg->uri = uri, lg->ulen = (uint32_t)ulen;
        lg->addr = addr, lg->alen = (uint32_t)alen;
        lg->proto = proto, lg->plen = (uint32_t)prlen;
        lg->nvars = (uint32_t)info[5], lg->datasize = (uint32_t)info[6];
    }
    h->head_len = (uint32_t)info[1];
    /* framed as HTTP/1.1 and acknowledged with Connection: keep-alive (app_head.c) */
    h->sflags = PF_SEND_HTTP | PF_SEND_HTTP11 | PF_SEND_UKEEP | PF_SEND_KEEP | ((fl & PF_UWSGI_NOBODY) ? PF_SEND_HEAD : 0);
    return (int)((info[7] << 9) | (info[3] << 5) | s);
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
        if (n == PF_APP_UWSGI) {
            int r = uwsgi_fast(h, ctx, n);
            if (r >= 0)
                return r;
            board_count(&h->board);        /* Python reads the packet and writes the line */
        }
        return n;
    }
    const pf_http_request *req = &ctx->req;
    pf_app_board_begin(&h->board, ctx->buf + req->method.off, req->method.len, ctx->buf + req->target.off,
                       req->target.len);
    const int64_t *info = h->info;
    int fl = (int)info[4];
    if (h->log.fd >= 0) {
        pf_app_log *lg = &h->log;
        lg->t0_ns = mono_ns();
        lg->method = ctx->buf + req->method.off, lg->mlen = req->method.len;
        lg->uri = ctx->buf + req->target.off, lg->ulen = req->target.len;
        const char *z = memchr(ctx->peer, 0, ctx->peer_len);
        lg->addr = ctx->peer, lg->alen = z ? (uint32_t)(z - ctx->peer) : ctx->peer_len;
        lg->proto = (fl & 2) ? "HTTP/1.1" : "HTTP/1.0", lg->plen = 8;
        lg->nvars = 0, lg->datasize = (uint32_t)info[1];
    }
    h->head_len = (uint32_t)info[1];
    h->sflags = (fl & (PF_SEND_KEEP | PF_SEND_HTTP11 | PF_SEND_HEAD)) | PF_SEND_HTTP;
    if (h->nofast || info[2] != PF_BODY_NONE || (fl & 16) || info[9] || n >= (1 << 22)) {
        h->n = n;
        return PF_APP_SLOWREQ;
    }
    return (n << 9) | ((int)info[5] << 5) | (int)info[8];
}
