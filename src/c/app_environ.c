/*
 * app_environ.c — the CGI part of a WSGI environ for an HTTP request (http-socket mode),
 * written in the same flat "K\0V\0K\0V" form uwsgi.c produces, so the Python side builds
 * the dict with one decode + split + update whatever the protocol.
 *
 * Names follow CGI/PEP 3333 and uWSGI's http-socket: REQUEST_METHOD, REQUEST_URI (raw),
 * PATH_INFO (percent-decoded), QUERY_STRING, SERVER_PROTOCOL, SERVER_NAME (Host without
 * port), CONTENT_TYPE/CONTENT_LENGTH (without the HTTP_ copies: PEP 3333 and
 * wsgiref.validate forbid them), HTTP_<NAME> for every other header. Header names with
 * '_' are dropped: "X_User" and "X-User" would both become HTTP_X_USER, a spoofing
 * vector (nginx: underscores_in_headers off; gunicorn CVE-2024-1135 class).
 */
#include <string.h>

#include "pf.h"

typedef struct { char *out; size_t cap, len; int n; int overflow; } flat_t;

static void put(flat_t *f, const char *p, size_t n)
{
    if (f->overflow || f->len + n > f->cap) {
        f->overflow = 1;
        return;
    }
    memcpy(f->out + f->len, p, n);
    f->len += n;
}

static void sep(flat_t *f) { put(f, "", 1); }

static void pair(flat_t *f, const char *k, const char *v, size_t vlen)
{
    if (f->n++)
        sep(f);
    put(f, k, strlen(k));
    sep(f);
    put(f, v, vlen);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decode into f. "%00" stays encoded: a NUL would make the flat form ambiguous
 * and no filesystem path may contain one. Invalid escapes are kept literally. */
static void put_decoded(flat_t *f, const char *p, size_t n)
{
    if (!memchr(p, '%', n)) {
        put(f, p, n);          /* the common path: nothing to decode, one copy */
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '%' && i + 2 < n) {
            int hi = hexval((unsigned char)p[i + 1]);
            int lo = hexval((unsigned char)p[i + 2]);
            if (hi >= 0 && lo >= 0 && (hi | lo)) {
                char d = (char)(hi * 16 + lo);
                put(f, &d, 1);
                i += 2;
                continue;
            }
        }
        put(f, &c, 1);
    }
}

static int same_name(const char *buf, const pf_http_header *a, const pf_http_header *b)
{
    if (a->name.len != b->name.len)
        return 0;
    return strncasecmp(buf + a->name.off, buf + b->name.off, a->name.len) == 0;
}

static int name_is(const char *buf, const pf_http_header *h, const char *lower)
{
    size_t n = strlen(lower);
    return h->name.len == n && strncasecmp(buf + h->name.off, lower, n) == 0;
}

int pf_app_http_environ(const char *buf, const pf_http_request *req, char *out, size_t cap, pf_app_env *env)
{
    flat_t f = { out, cap, 0, 0, 0 };
    memset(env, 0, sizeof *env);
    pair(&f, "REQUEST_METHOD", buf + req->method.off, req->method.len);
    pair(&f, "REQUEST_URI", buf + req->target.off, req->target.len);
    if (f.n++)
        sep(&f);
    put(&f, "PATH_INFO", 9);
    sep(&f);
    if (req->path.len)
        put_decoded(&f, buf + req->path.off, req->path.len);
    else
        put(&f, "/", 1);
    pair(&f, "QUERY_STRING", buf + req->query.off, req->query.len);
    pair(&f, "SERVER_PROTOCOL", req->version_minor ? "HTTP/1.1" : "HTTP/1.0", 8);
    if (req->host.len) {
        const char *h = buf + req->host.off;
        size_t n = req->host.len;
        if (h[0] == '[') {                       /* [v6]:port -> [v6] */
            const char *e = memchr(h, ']', n);
            if (e)
                n = (size_t)(e - h) + 1;
        } else {
            const char *c = memchr(h, ':', n);
            if (c)
                n = (size_t)(c - h);
        }
        pair(&f, "SERVER_NAME", h, n);
    }
    for (uint32_t i = 0; i < req->nheaders; i++) {
        const pf_http_header *hd = &req->headers[i];
        const char *name = buf + hd->name.off;
        if (memchr(name, '_', hd->name.len)) {
            env->dropped++;
            continue;
        }
        const char *val = buf + hd->value.off;
        if (name_is(buf, hd, "content-type")) {
            pair(&f, "CONTENT_TYPE", val, hd->value.len);
        } else if (name_is(buf, hd, "content-length")) {
            pair(&f, "CONTENT_LENGTH", val, hd->value.len);
        } else {
            if (f.n++)
                sep(&f);
            put(&f, "HTTP_", 5);
            if (!f.overflow && f.len + hd->name.len <= f.cap) {
                /* in place, not one put() per byte (~20 instructions each) */
                char *o = f.out + f.len;
                for (uint32_t k = 0; k < hd->name.len; k++) {
                    char c = name[k];
                    o[k] = (c == '-') ? '_' : (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
                }
                f.len += hd->name.len;
            } else {
                f.overflow = 1;
            }
            sep(&f);
            put(&f, val, hd->value.len);
        }
        /* Repeated headers must be joined (", ", "; " for Cookie) — rare: Python does it. */
        for (uint32_t j = 0; j < i && !env->dup; j++)
            if (same_name(buf, hd, &req->headers[j]))
                env->dup = 1;
    }
    if (f.overflow)
        return PF_E_HEADER_TOO_LARGE;
    env->flat_len = (uint32_t)f.len;
    env->npairs = (uint32_t)f.n;
    return (int)f.len;
}

/* One call per HTTP request for the Python side: the flat environ (with REMOTE_ADDR and
 * REMOTE_PORT from the accepted address) and the request's framing facts in info[], read
 * back with a single ffi.unpack instead of a dozen struct-field reads (~60 ns each). */
int pf_app_ready_environ(const pf_app_ready *ctx, char *out, size_t cap, int64_t *info)
{
    pf_app_env env;
    const pf_http_request *req = &ctx->req;
    if (ctx->status < 0)
        return ctx->status;      /* a bad request head: the caller answers it */
    int n = pf_app_http_environ(ctx->buf, req, out, cap, &env);
    if (n < 0)
        return n;
    /* "REMOTE_ADDR\0addr\0REMOTE_PORT\0port" from ctx->peer ("addr\0port") */
    const char *port = memchr(ctx->peer, 0, ctx->peer_len);
    size_t alen = port ? (size_t)(port - ctx->peer) : ctx->peer_len;
    size_t plen = port ? ctx->peer_len - alen - 1 : 0;
    size_t need = (size_t)n + 1 + 11 + 1 + alen + 1 + 11 + 1 + plen;
    if (need > cap)
        return PF_E_HEADER_TOO_LARGE;
    char *o = out + n;
    memcpy(o, "\0REMOTE_ADDR\0", 13);
    o += 13;
    memcpy(o, ctx->peer, alen);
    o += alen;
    memcpy(o, "\0REMOTE_PORT\0", 13);
    o += 13;
    if (plen)
        memcpy(o, port + 1, plen);
    o += plen;
    n = (int)(o - out);
    info[0] = ctx->fd;
    info[1] = ctx->status;
    info[2] = req->body;
    info[3] = req->content_length;
    info[4] = (req->keep_alive ? 1 : 0) | (req->version_minor ? 2 : 0) | (req->method_id == PF_M_HEAD ? 4 : 0)
            | (req->expect_continue ? 8 : 0) | (env.dup ? 16 : 0);
    info[5] = ctx->listener;
    info[6] = ctx->have;
    info[7] = n;
    return n;
}
