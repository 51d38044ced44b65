/*
 * vars.c — $variables for log_format, return, add_header and try_files templates.
 * Templates are compiled in Python (pyfront.config.compile.parse_template) to a list of
 * (variable id, argument) ops; expansion here is a switch, no lookups by name.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include "pf_int.h"

const char *pf_req_base(pf_conn *c) { return c->rbuf ? c->rbuf->data + c->rpos : ""; }

static int under_eq(const char *h, const char *name, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char a = h[i], b = name[i];
        if (a >= 'A' && a <= 'Z') a += 32;
        if (a == '_' && b == '-') continue;
        if (a != b) return 0;
    }
    return 1;
}

const char *pf_req_header(pf_conn *c, pf_req *q, const char *name, size_t nlen, size_t *vlen)
{
    if (!q || !c->rbuf) return NULL;
    const char *b = pf_req_base(c);
    for (uint32_t i = 0; i < q->h.nheaders; i++) {
        pf_span n = q->h.headers[i].name;
        /* underscores_in_headers off (nginx's default): such headers are ignored — names we
         * look up never hold '_', so they cannot match; on: "X_Real_IP" is $http_x_real_ip */
        if (n.len == nlen && (strncasecmp(b + n.off, name, nlen) == 0 || (q->underscores && under_eq(b + n.off, name, nlen)))) {
            *vlen = q->h.headers[i].value.len;
            return b + q->h.headers[i].value.off;
        }
    }
    return NULL;
}

typedef struct { char *p; size_t left; int escape; } sink;

/* escape: 0 raw (return, add_header), 1 log default, 2 log json, 3 log none */
static void put_esc(sink *s, const char *e, size_t n)
{
    if (s->left < n) { s->left = 0; return; }
    memcpy(s->p, e, n);
    s->p += n;
    s->left -= n;
}

static void put(sink *s, const char *v, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    if (s->escape == 0 || s->escape == 3) {
        if (n > s->left) n = s->left;
        memcpy(s->p, v, n);
        s->p += n;
        s->left -= n;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)v[i];
        char e[8];
        if (s->escape == 1) {
            /* nginx's default log escaping: '"', '\\', control and non-ASCII bytes as \xXX */
            if (ch == '"' || ch == '\\' || ch < 0x20 || ch >= 0x7f) {
                e[0] = '\\'; e[1] = 'x'; e[2] = hex[ch >> 4]; e[3] = hex[ch & 15];
                put_esc(s, e, 4);
                continue;
            }
        } else if (ch == '"' || ch == '\\') {          /* escape=json (nginx 1.11.8+) */
            e[0] = '\\'; e[1] = (char)ch;
            put_esc(s, e, 2);
            continue;
        } else if (ch < 0x20) {
            const char *m = ch == '\n' ? "\\n" : ch == '\r' ? "\\r" : ch == '\t' ? "\\t"
                          : ch == '\b' ? "\\b" : ch == '\f' ? "\\f" : NULL;
            if (m) { put_esc(s, m, 2); continue; }
            e[0] = '\\'; e[1] = 'u'; e[2] = '0'; e[3] = '0'; e[4] = hex[ch >> 4]; e[5] = hex[ch & 15];
            put_esc(s, e, 6);
            continue;
        }
        if (!s->left) return;
        *s->p++ = (char)ch;
        s->left--;
    }
}

static void putf(sink *s, const char *fmt, long long v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, fmt, v);
    put(s, tmp, (size_t)n);
}

static void unset(sink *s) { if (s->escape == 1) put(s, "-", 1); }   /* json/none: empty */

static void put_host(pf_worker *w, pf_conn *c, pf_req *q, sink *s)
{
    if (q && c->rbuf && q->h.host.len) {
        const char *h = pf_req_base(c) + q->h.host.off;
        size_t n = q->h.host.len, e = n;
        if (h[0] != '[') { const char *colon = memchr(h, ':', n); if (colon) e = (size_t)(colon - h); }
        else { const char *rb = memchr(h, ']', n); if (rb) e = (size_t)(rb - h) + 1; }
        while (e && h[e - 1] == '.') e--;
        char low[256];
        if (e > sizeof low) e = sizeof low;
        for (size_t i = 0; i < e; i++) low[i] = (char)((h[i] >= 'A' && h[i] <= 'Z') ? h[i] + 32 : h[i]);
        put(s, low, e);
        return;
    }
    if (q && q->server >= 0) {
        rt_str n = w->rt->server[q->server].name0;
        put(s, RT_S(w->rt, n), n.len);
    }
}

static void expand_var(pf_worker *w, pf_conn *c, pf_req *q, const rt_tplop *op, sink *s)
{
    const pf_router *r = w->rt;
    const char *b = pf_req_base(c);
    int have = q && c->rbuf && q->h.method.len;
    char tmp[128];
    switch (op->var) {
    case V_LITERAL: { int e = s->escape; s->escape = 0; put(s, RT_S(r, op->arg), op->arg.len); s->escape = e; break; }
    case V_REMOTE_ADDR:
        if (c->peer.sa.sa_family == AF_INET) inet_ntop(AF_INET, &c->peer.in4.sin_addr, tmp, sizeof tmp);
        else if (c->peer.sa.sa_family == AF_INET6) inet_ntop(AF_INET6, &c->peer.in6.sin6_addr, tmp, sizeof tmp);
        else strcpy(tmp, "unix:");
        put(s, tmp, strlen(tmp));
        break;
    case V_REMOTE_PORT:
        if (c->peer.sa.sa_family == AF_INET) putf(s, "%lld", ntohs(c->peer.in4.sin_port));
        else if (c->peer.sa.sa_family == AF_INET6) putf(s, "%lld", ntohs(c->peer.in6.sin6_port));
        else unset(s);
        break;
    case V_REMOTE_USER: unset(s); break;
    case V_TIME_LOCAL: put(s, w->time_local, strlen(w->time_local)); break;
    case V_TIME_ISO8601: put(s, w->time_iso, strlen(w->time_iso)); break;
    case V_MSEC: {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int n = snprintf(tmp, sizeof tmp, "%lld.%03ld", (long long)ts.tv_sec, ts.tv_nsec / 1000000);
        put(s, tmp, (size_t)n);
        break;
    }
    case V_REQUEST:
        if (!have) { unset(s); break; }
        {
            const char *start = b + q->h.method.off;
            const char *end = memchr(start, '\r', q->head_len - q->h.method.off);
            put(s, start, end ? (size_t)(end - start) : q->h.method.len);
        }
        break;
    case V_STATUS: putf(s, "%03lld", q ? (q->status == 494 ? 400 : q->status) : 0); break;
    case V_BODY_BYTES_SENT:
        putf(s, "%lld", q && q->bytes_sent > q->header_bytes ? (long long)(q->bytes_sent - q->header_bytes) : 0);
        break;
    case V_BYTES_SENT: putf(s, "%lld", q ? (long long)q->bytes_sent : 0); break;
    case V_HTTP: {
        size_t vl;
        const char *v = pf_req_header(c, q, RT_S(r, op->arg), op->arg.len, &vl);
        if (v) put(s, v, vl); else unset(s);
        break;
    }
    case V_REQUEST_TIME: {
        int64_t ms = q ? w->now_ms - q->start_ms : 0;
        int n = snprintf(tmp, sizeof tmp, "%lld.%03lld", (long long)(ms / 1000), (long long)(ms % 1000));
        put(s, tmp, (size_t)n);
        break;
    }
    case V_REQUEST_METHOD: if (have) put(s, b + q->h.method.off, q->h.method.len); else unset(s); break;
    case V_REQUEST_URI: if (have) put(s, b + q->h.target.off, q->h.target.len); else unset(s); break;
    case V_URI: if (q && q->uri_len) put(s, q->uri, q->uri_len); else unset(s); break;
    case V_HOST: put_host(w, c, q, s); break;
    case V_SERVER_NAME:
        if (q && q->server >= 0) put(s, RT_S(r, r->server[q->server].name0), r->server[q->server].name0.len);
        break;
    case V_SERVER_PORT: putf(s, "%lld", w->ls[c->listener].port); break;
    case V_SERVER_ADDR: {
        const char *n = w->ls[c->listener].name, *colon = strrchr(n, ':');
        put(s, n, colon ? (size_t)(colon - n) : strlen(n));
        break;
    }
    case V_CONNECTION: putf(s, "%lld", (long long)c->id); break;
    case V_CONNECTION_REQUESTS: putf(s, "%lld", c->nreq); break;
    case V_PID: putf(s, "%lld", w->pid); break;
    case V_SCHEME: put(s, "http", 4); break;
    case V_SERVER_PROTOCOL:
        if (have) put(s, q->h.version_minor ? "HTTP/1.1" : "HTTP/1.0", 8); else unset(s);
        break;
    case V_ARGS: if (have && q->h.query.len) put(s, b + q->h.query.off, q->h.query.len); else unset(s); break;
    case V_IS_ARGS: if (have && q->h.query.len) put(s, "?", 1); break;
    case V_REQUEST_LENGTH: putf(s, "%lld", q ? (long long)q->head_len : 0); break;
    case V_CONTENT_LENGTH: {
        int64_t bl;
        if (pf_proxy_content_length(q, &bl)) { putf(s, "%lld", bl); break; }   /* decoded chunked body */
        size_t vl;
        const char *v = pf_req_header(c, q, "content-length", 14, &vl);
        if (v) put(s, v, vl); else unset(s);
        break;
    }
    case V_CONTENT_TYPE: {
        size_t vl;
        const char *v = pf_req_header(c, q, "content-type", 12, &vl);
        if (v) put(s, v, vl); else unset(s);
        break;
    }
    case V_DOCUMENT_ROOT:
        if (q && q->conf >= 0) put(s, RT_S(r, r->conf[q->conf].root), r->conf[q->conf].root.len); else unset(s);
        break;
    case V_REQUEST_FILENAME: if (q && q->fname_len) put(s, q->fname, q->fname_len); else unset(s); break;
    case V_ARG: {
        if (!have || !q->h.query.len) { unset(s); break; }
        const char *p = b + q->h.query.off, *end = p + q->h.query.len;
        size_t an = op->arg.len;
        const char *name = RT_S(r, op->arg);
        while (p < end) {
            const char *amp = memchr(p, '&', (size_t)(end - p));
            const char *e = amp ? amp : end;
            if ((size_t)(e - p) > an && p[an] == '=' && strncasecmp(p, name, an) == 0) {
                put(s, p + an + 1, (size_t)(e - p - an - 1));
                return;
            }
            p = e + 1;
        }
        unset(s);
        break;
    }
    case V_HOSTNAME: put(s, w->hostname, strlen(w->hostname)); break;
    case V_NGINX_VERSION: put(s, "1.22.1", 6); break;
    default: {                   /* proxy variables ($proxy_add_x_forwarded_for, $upstream_*, ...) */
        char big[2048];
        size_t n = pf_proxy_var(w, c, q, op->var, RT_S(r, op->arg), op->arg.len, big, sizeof big);
        if (n) put(s, big, n); else unset(s);
        break;
    }
    }
}

size_t pf_tpl_expand(pf_worker *w, pf_conn *c, pf_req *q, uint32_t tpl, int escape, char *out, size_t cap)
{
    if (tpl == RT_NONE || tpl >= w->rt->ntpl) return 0;
    sink s = {out, cap, escape};
    rt_range ops = w->rt->tpl[tpl].ops;
    for (uint32_t i = 0; i < ops.count; i++) expand_var(w, c, q, &w->rt->tplop[ops.first + i], &s);
    return cap - s.left;
}
