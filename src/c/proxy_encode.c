/*
 * proxy_encode.c — what goes upstream: the uwsgi packet (ngx_http_uwsgi_create_request's
 * layout) and the HTTP/1.x request head for proxy_pass (ngx_http_proxy_create_request's).
 *
 * The two pf_* encoders are pure (caller-owned output, no allocation) so tests/c can
 * check them byte by byte; pf_px_encode expands the location's params for one request
 * and calls them, writing into the request's pooled 64 KiB packet buffer.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "pf_int.h"

/* ---- uwsgi ---------------------------------------------------------------- */
typedef struct { unsigned char *o; size_t pos, cap; int over; } wr;

static void w_bytes(wr *w, const void *p, size_t n)
{
    if (w->over || n > w->cap - w->pos) { w->over = 1; return; }
    memcpy(w->o + w->pos, p, n);
    w->pos += n;
}
static void w_u16(wr *w, size_t v)
{
    unsigned char b[2] = {(unsigned char)(v & 0xff), (unsigned char)(v >> 8)};
    if (v > 0xffff) { w->over = 1; return; }
    w_bytes(w, b, 2);
}

/* header name vs HTTP_* param key: case-insensitive, '-' == '_' (nginx hashes both so) */
static int name_eq_key(const char *name, size_t nl, const char *key, size_t kl)
{
    if (kl != nl + 5 || strncasecmp(key, "HTTP_", 5) != 0) return 0;
    for (size_t i = 0; i < nl; i++) {
        char a = name[i], b = key[5 + i];
        if (a == '-') a = '_';
        if (a >= 'a' && a <= 'z') a = (char)(a - 32);
        if (b >= 'a' && b <= 'z') b = (char)(b - 32);
        if (a != b) return 0;
    }
    return 1;
}

static int covered_by_param(const pf_kv *params, uint32_t n, const char *name, size_t nl)
{
    for (uint32_t i = 0; i < n; i++)
        if (name_eq_key(name, nl, params[i].name, params[i].name_len)) return 1;
    return 0;
}

static int same_name(const char *head, const pf_http_header *a, const pf_http_header *b)
{
    return a->name.len == b->name.len && strncasecmp(head + a->name.off, head + b->name.off, a->name.len) == 0;
}

static int has_underscore(const char *p, size_t n) { return memchr(p, '_', n) != NULL; }

int pf_uwsgi_request(uint8_t m1, uint8_t m2, const pf_kv *params, uint32_t nparams, const char *host,
                     uint32_t host_len, const char *head, const pf_http_request *req, int pass_headers,
                     char *out, size_t cap)
{
    wr w = {(unsigned char *)out, 4, cap, cap < 4};
    for (uint32_t i = 0; i < nparams; i++) {
        w_u16(&w, params[i].name_len);
        w_bytes(&w, params[i].name, params[i].name_len);
        w_u16(&w, params[i].value_len);
        w_bytes(&w, params[i].value, params[i].value_len);
    }
    int host_param = 0;
    for (uint32_t i = 0; i < nparams; i++)
        if (params[i].name_len == 9 && strncasecmp(params[i].name, "HTTP_HOST", 9) == 0) host_param = 1;
    if (host && !host_param && host_len) {
        w_u16(&w, 9);
        w_bytes(&w, "HTTP_HOST", 9);
        w_u16(&w, host_len);
        w_bytes(&w, host, host_len);
    }
    int skip_host = host && !host_param;   /* the default HTTP_HOST param covers the Host field */
    for (uint32_t i = 0; pass_headers && req && i < req->nheaders; i++) {
        const pf_http_header *h = &req->headers[i];
        const char *name = head + h->name.off;
        size_t nl = h->name.len;
        if (has_underscore(name, nl)) continue;              /* underscores_in_headers off */
        if (skip_host && nl == 4 && strncasecmp(name, "host", 4) == 0) continue;
        if (covered_by_param(params, nparams, name, nl)) continue;
        int dup = 0;
        for (uint32_t k = 0; k < i && !dup; k++) dup = same_name(head, &req->headers[k], h);
        if (dup) continue;                                   /* joined into the first one */
        /* value length: this one + every later field of the same name */
        int cookie = nl == 6 && strncasecmp(name, "cookie", 6) == 0;
        size_t vl = h->value.len;
        for (uint32_t k = i + 1; k < req->nheaders; k++)
            if (same_name(head, &req->headers[k], h)) vl += 2 + req->headers[k].value.len;
        w_u16(&w, 5 + nl);
        w_bytes(&w, "HTTP_", 5);
        if (!w.over && nl <= w.cap - w.pos) {
            for (size_t k = 0; k < nl; k++) {
                char ch = name[k];
                if (ch >= 'a' && ch <= 'z') ch = (char)(ch - 32);
                else if (ch == '-') ch = '_';
                w.o[w.pos + k] = (unsigned char)ch;
            }
            w.pos += nl;
        } else {
            w.over = 1;
        }
        w_u16(&w, vl);
        w_bytes(&w, head + h->value.off, h->value.len);
        for (uint32_t k = i + 1; k < req->nheaders; k++) {
            if (!same_name(head, &req->headers[k], h)) continue;
            w_bytes(&w, cookie ? "; " : ", ", 2);
            w_bytes(&w, head + req->headers[k].value.off, req->headers[k].value.len);
        }
        if (w.over) break;
    }
    if (w.over || w.pos - 4 > 0xffff) return PF_E_UWSGI_TOO_BIG;
    size_t size = w.pos - 4;
    unsigned char *o = (unsigned char *)out;
    o[0] = m1;
    o[1] = (unsigned char)(size & 0xff);
    o[2] = (unsigned char)(size >> 8);
    o[3] = m2;
    return (int)w.pos;
}

/* ---- HTTP (proxy_pass) ------------------------------------------------------ */
static const char *const hop[] = {"connection", "keep-alive", "te", "expect", "upgrade", "content-length",
                                  "transfer-encoding", "host", NULL};

static int set_has(const pf_kv *set, uint32_t n, const char *name, size_t nl)
{
    for (uint32_t i = 0; i < n; i++)
        if (set[i].name_len == nl && strncasecmp(set[i].name, name, nl) == 0) return 1;
    return 0;
}

int pf_http_upstream_request(const char *line, uint32_t line_len, const pf_kv *set, uint32_t nset,
                             int64_t body_len, const char *head, const pf_http_request *req, int pass_headers,
                             char *out, size_t cap)
{
    wr w = {(unsigned char *)out, 0, cap, 0};
    w_bytes(&w, line, line_len);
    w_bytes(&w, "\r\n", 2);
    for (uint32_t i = 0; i < nset; i++) {
        if (set[i].value_len == 0) continue;               /* an empty value removes the field */
        w_bytes(&w, set[i].name, set[i].name_len);
        w_bytes(&w, ": ", 2);
        w_bytes(&w, set[i].value, set[i].value_len);
        w_bytes(&w, "\r\n", 2);
    }
    if (body_len >= 0 && !set_has(set, nset, "content-length", 14)) {
        char cl[40];
        int n = snprintf(cl, sizeof cl, "Content-Length: %lld\r\n", (long long)body_len);
        w_bytes(&w, cl, (size_t)n);
    }
    for (uint32_t i = 0; pass_headers && req && i < req->nheaders; i++) {
        const pf_http_header *h = &req->headers[i];
        const char *name = head + h->name.off;
        size_t nl = h->name.len;
        if (has_underscore(name, nl) || set_has(set, nset, name, nl)) continue;
        int skip = 0;
        for (int k = 0; hop[k] && !skip; k++) skip = strlen(hop[k]) == nl && strncasecmp(hop[k], name, nl) == 0;
        if (skip) continue;
        w_bytes(&w, name, nl);
        w_bytes(&w, ": ", 2);
        w_bytes(&w, head + h->value.off, h->value.len);
        w_bytes(&w, "\r\n", 2);
    }
    w_bytes(&w, "\r\n", 2);
    return w.over ? PF_E_HEADER_TOO_LARGE : (int)w.pos;
}

/* ---- per request ------------------------------------------------------------ */
#define PX_MAX_PARAMS 128

/* $host$is_request_port$request_port (nginx >= 1.29.5's default HTTP_HOST) */
static size_t default_host(pf_worker *w, pf_conn *c, pf_req *q, char *out, size_t cap)
{
    size_t n = pf_proxy_var(w, c, q, V_HOST, NULL, 0, out, cap);
    n += pf_proxy_var(w, c, q, V_IS_REQUEST_PORT, NULL, 0, out + n, cap - n);
    n += pf_proxy_var(w, c, q, V_REQUEST_PORT, NULL, 0, out + n, cap - n);
    return n;
}

/* Appends name = $request_id to kv unless the client sent X-Request-Id or kv has name
 * already; returns the scratch bytes used. */
static size_t add_request_id(pf_worker *w, pf_conn *c, pf_req *q, pf_kv *kv, uint32_t *n, const char *name,
                             uint32_t name_len, char *scratch, size_t used, size_t cap)
{
    if (*n >= PX_MAX_PARAMS || cap - used < 32)
        return used;
    size_t cl = 0;
    if (pf_req_header(c, q, "x-request-id", 12, &cl) != NULL)
        return used;
    for (uint32_t i = 0; i < *n; i++)
        if (kv[i].name_len == name_len && strncasecmp(kv[i].name, name, name_len) == 0)
            return used;
    size_t vl = pf_proxy_var(w, c, q, V_REQUEST_ID, NULL, 0, scratch + used, cap - used);
    kv[*n] = (pf_kv){ name, name_len, scratch + used, (uint32_t)vl };
    (*n)++;
    return used + vl;
}

static int encode(pf_worker *w, pf_conn *c, pf_req *q, pf_up *u, const pf_kv *kv, uint32_t n, size_t used);

int pf_px_encode(pf_worker *w, pf_conn *c, pf_req *q, pf_up *u)
{
    const pf_router *r = w->rt;
    const rt_pxconf *pc = u->pc;
    pf_px *px = pf_px_get(w);
    if (!px) return -500;
    char *scratch = px->scratch;                 /* expansion space, reused by every request */
    pf_kv kv[PX_MAX_PARAMS];
    uint32_t n = 0;
    size_t used = 0;
    for (uint32_t i = 0; i < pc->params.count && n < PX_MAX_PARAMS; i++) {
        const rt_param *p = &r->param[pc->params.first + i];
        size_t vl = pf_tpl_expand(w, c, q, p->tpl, 0, scratch + used, sizeof px->scratch - used);
        if (vl == 0 && (p->flags & RT_PARAM_IF_NOT_EMPTY)) continue;
        kv[n].name = RT_S(r, p->name);
        kv[n].name_len = p->name.len;
        kv[n].value = scratch + used;
        kv[n].value_len = (uint32_t)vl;
        used += vl;
        n++;
    }
    /* Deliberate addition (docs/differences.md): the upstream learns $request_id, the id
     * the access log can show — uwsgi apps as HTTP_X_REQUEST_ID, proxy_pass upstreams as
     * `X-Request-Id:` — unless the client sent an X-Request-Id (passed as is with the other
     * headers) or the config sets it itself (uwsgi_param / proxy_set_header; an empty
     * proxy_set_header removes the field, as for any other). */
    if (pc->handler == PX_UWSGI)
        used = add_request_id(w, c, q, kv, &n, "HTTP_X_REQUEST_ID", 17, scratch, used, sizeof px->scratch);
    else if (pc->handler == PX_HTTP)
        used = add_request_id(w, c, q, kv, &n, "X-Request-Id", 12, scratch, used, sizeof px->scratch);
    /* A pooled 16 KiB buffer holds nearly every packet; the 64 KiB+ class (vars may reach
     * 65535 bytes) only when that one is too small. Measured: with one 68 KiB buffer per
     * request and 64 requests in flight, malloc/free of it was ~1 % of the front's CPU. */
    if (!u->pkt && !(u->pkt = pf_buf_get(w))) return -500;
    for (;;) {
        int rc = encode(w, c, q, u, kv, n, used);
        if (rc >= 0 || u->pkt->cap >= PX_PKT_SIZE) return rc;
        pf_px_pkt_put(w, u->pkt);
        if (!(u->pkt = pf_px_pkt_get(w))) return -500;
    }
}

/* kv[0..n) expanded: the packet / request head into u->pkt; 0, -1 when it does not fit in
 * u->pkt (a bigger buffer may be tried), or -status. */
static int encode(pf_worker *w, pf_conn *c, pf_req *q, pf_up *u, const pf_kv *kv, uint32_t n, size_t used)
{
    const pf_router *r = w->rt;
    const rt_pxconf *pc = u->pc;
    int big = u->pkt->cap >= PX_PKT_SIZE;
    const char *head = pf_req_base(c);
    int pass = !!(pc->flags & PXF_PASS_HEADERS);
    int rc;
    if (pc->handler == PX_UWSGI) {
        char host[512];
        size_t hl = default_host(w, c, q, host, sizeof host);
        uint8_t m2 = (uint8_t)pc->modifier2;
        if (u->ukeep) m2 = q->header_only ? PF_UWSGI_KEEP_HEAD : PF_UWSGI_KEEP;   /* proxy.c ukeep_wanted */
        rc = pf_uwsgi_request((uint8_t)pc->modifier1, m2, kv, n, host, (uint32_t)hl, head,
                              &q->h, pass, u->pkt->data, u->pkt->cap);
        if (rc < 0) {
            if (!big) return -1;
            pf_log_error(w, PF_LOG_ALERT, c, q, "uwsgi request is too big: %u", (unsigned)(used + 4096));
            return -500;
        }
    } else {
        /* request line: method, URI (proxy_pass URI replaces the location prefix), version */
        char line[PF_URI_MAX * 2 + 64];
        size_t ll = 0;
        memcpy(line, head + q->h.method.off, q->h.method.len);
        ll = q->h.method.len;
        line[ll++] = ' ';
        if (pc->flags & PXF_HAS_URI) {
            const char *uri = RT_S(r, pc->uri);
            size_t ul = pc->uri.len, pl = pc->match_prefix.len;
            memcpy(line + ll, uri, ul);
            ll += ul;
            /* the rest of the normalised URI after the location prefix, escaped minimally */
            size_t rest = q->uri_len > pl ? q->uri_len - pl : 0;
            for (size_t i = 0; i < rest && ll + 3 < PF_URI_MAX; i++) {
                unsigned char ch = (unsigned char)q->uri[pl + i];
                if (ch <= ' ' || ch == '%' || ch == '?' || ch == '#' || ch >= 0x7f) {
                    ll += (size_t)snprintf(line + ll, 4, "%%%02X", ch);
                } else {
                    line[ll++] = (char)ch;
                }
            }
            if (q->h.query.len && ll + 1 + q->h.query.len < PF_URI_MAX) {
                line[ll++] = '?';
                memcpy(line + ll, head + q->h.query.off, q->h.query.len);
                ll += q->h.query.len;
            }
        } else {
            /* no URI part: the client's request URI as sent (origin-form) */
            if (q->h.target_form == PF_TARGET_ORIGIN) {
                memcpy(line + ll, head + q->h.target.off, q->h.target.len);
                ll += q->h.target.len;
            } else {
                size_t pl = q->h.path.len ? q->h.path.len : 1;
                memcpy(line + ll, q->h.path.len ? head + q->h.path.off : "/", pl);
                ll += pl;
                if (q->h.query.len) {
                    line[ll++] = '?';
                    memcpy(line + ll, head + q->h.query.off, q->h.query.len);
                    ll += q->h.query.len;
                }
            }
        }
        u->uri_off = q->h.method.len + 1;
        u->uri_len = (uint32_t)(ll - u->uri_off);
        memcpy(line + ll, (pc->flags & PXF_HTTP11) ? " HTTP/1.1" : " HTTP/1.0", 9);
        ll += 9;
        int64_t blen = -1;
        if (q->h.body != PF_BODY_NONE && (pc->flags & PXF_PASS_BODY))
            blen = u->body_done ? (int64_t)u->body_len : q->h.content_length;   /* streamed: as announced */
        rc = pf_http_upstream_request(line, (uint32_t)ll, kv, n, blen, head, &q->h, pass, u->pkt->data,
                                      u->pkt->cap);
        if (rc < 0) {
            if (!big) return -1;
            pf_log_error(w, PF_LOG_ALERT, c, q, "proxy request is too big");
            return -500;
        }
    }
    u->pkt_len = (uint32_t)rc;
    return 0;
}
