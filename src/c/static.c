/*
 * static.c — what a location does with a request: return, try_files, index, static
 * files (fd/stat cache, ETag, conditionals, Range, gzip_static), error_page, and the
 * response head. Everything is written into the request's wbuf; conn.c sends it.
 * Files come from the fd/stat cache (fcache.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/stat.h>
#include "pf_int.h"


/* ---- response head ------------------------------------------------------- */
typedef struct {
    const char *ctype; size_t ctype_len; int charset;
    int64_t clen;                 /* -1: none */
    time_t lastmod;               /* 0: none */
    const char *location; size_t location_len;
    int chunked;
    char etag[64];                /* "" none */
    char mpctype[64];             /* multipart/byteranges; boundary=... */
    int accept_ranges;
    char crange[80];
    int gzip;                     /* Content-Encoding: gzip */
    int vary;
    int expires;                  /* apply expires */
} meta_t;

typedef struct { char *p; size_t left; int overflow; } hb_t;

static void hb_put(hb_t *b, const char *s, size_t n)
{
    if (n > b->left) { b->overflow = 1; n = b->left; }
    memcpy(b->p, s, n);
    b->p += n;
    b->left -= n;
}
#define HB_LIT(b, s) hb_put(b, s, sizeof(s) - 1)
static void hb_fmt(hb_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
static void hb_fmt(hb_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p, b->left, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= b->left) { b->overflow = 1; n = (int)b->left; }
    b->p += n;
    b->left -= (size_t)n;
}

static const rt_conf *qconf(pf_worker *w, pf_req *q) { return q->conf >= 0 ? &w->rt->conf[q->conf] : NULL; }

static int status_gets_headers(int s)
{
    /* add_header (without `always`) and expires apply to these statuses only */
    return s == 200 || s == 201 || s == 204 || s == 206 || s == 301 || s == 302 || s == 303
           || s == 304 || s == 307 || s == 308;
}

static int decide_keepalive(pf_worker *w, pf_conn *c, pf_req *q)
{
    const rt_conf *cf = qconf(w, q);
    if (!q->keep_alive || c->close_after || w->draining) return 0;
    if (cf && (cf->keepalive_timeout_ms == 0 || c->nreq >= cf->keepalive_requests)) return 0;
    switch (q->status) {               /* nginx drops keep-alive after these errors */
    case 400: case 408: case 413: case 414: case 494: case 500: case 501: return 0;
    default: return 1;
    }
}

static int write_head(pf_worker *w, pf_conn *c, pf_req *q, const meta_t *m)
{
    const rt_conf *cf = qconf(w, q);
    int tokens = cf ? !!(cf->flags & RT_F_SERVER_TOKENS) : 1;
    if (!q->wbuf && !(q->wbuf = pf_buf_get(w))) return -1;
    hb_t b = {q->wbuf->data, q->wbuf->cap, 0};
    if (q->forced_status && q->status == 200) q->status = q->forced_status;
    size_t sl;
    const char *line = pf_status_line(q->status, &sl);
    HB_LIT(&b, "HTTP/1.1 ");
    if (line) hb_put(&b, line, sl);
    else hb_fmt(&b, "%03d ", q->status % 1000);    /* a code without a reason phrase */
    HB_LIT(&b, "\r\nServer: ");
    const char *tok = pf_server_token(tokens);
    hb_put(&b, tok, strlen(tok));
    HB_LIT(&b, "\r\nDate: ");
    hb_put(&b, w->date_hdr, strlen(w->date_hdr));
    HB_LIT(&b, "\r\n");
    if (m->ctype_len) {
        HB_LIT(&b, "Content-Type: ");
        hb_put(&b, m->ctype, m->ctype_len);
        if (m->charset && cf && cf->charset.len && pf_rt_list_has(w->rt, cf->charset_types, m->ctype, m->ctype_len)) {
            HB_LIT(&b, "; charset=");
            hb_put(&b, RT_S(w->rt, cf->charset), cf->charset.len);
        }
        HB_LIT(&b, "\r\n");
    }
    if (m->clen >= 0) hb_fmt(&b, "Content-Length: %lld\r\n", (long long)m->clen);
    /* nginx's header filter drops Last-Modified unless the status is 200, 206 or 304 */
    if (m->lastmod && (q->status == 200 || q->status == 206 || q->status == 304)) {
        char d[40];
        pf_http_date(m->lastmod, d);
        hb_fmt(&b, "Last-Modified: %s\r\n", d);
    }
    if (m->location_len) {
        HB_LIT(&b, "Location: ");
        hb_put(&b, m->location, m->location_len);
        HB_LIT(&b, "\r\n");
    }
    if (m->chunked) HB_LIT(&b, "Transfer-Encoding: chunked\r\n");
    q->keep_alive = decide_keepalive(w, c, q);
    if (q->keep_alive) {
        HB_LIT(&b, "Connection: keep-alive\r\n");
        if (cf && cf->keepalive_header_s) hb_fmt(&b, "Keep-Alive: timeout=%u\r\n", cf->keepalive_header_s);
    }
    else HB_LIT(&b, "Connection: close\r\n");
    if (m->vary) HB_LIT(&b, "Vary: Accept-Encoding\r\n");
    if (m->etag[0]) hb_fmt(&b, "ETag: %s\r\n", m->etag);
    if (m->crange[0]) hb_fmt(&b, "Content-Range: %s\r\n", m->crange);
    if (m->gzip) HB_LIT(&b, "Content-Encoding: gzip\r\n");
    if (cf && m->expires && cf->expires_mode != RT_EXP_OFF && status_gets_headers(q->status)) {
        char d[40];
        if (cf->expires_mode == RT_EXP_EPOCH) {
            HB_LIT(&b, "Expires: Thu, 01 Jan 1970 00:00:01 GMT\r\nCache-Control: no-cache\r\n");
        } else if (cf->expires_mode == RT_EXP_MAX) {
            HB_LIT(&b, "Expires: Thu, 31 Dec 2037 23:55:55 GMT\r\nCache-Control: max-age=315360000\r\n");
        } else {
            time_t base = cf->expires_mode == RT_EXP_MODIFIED && m->lastmod ? m->lastmod : w->now_s;
            time_t exp = base + cf->expires_s;
            long maxage = (long)(exp - w->now_s);
            pf_http_date(exp, d);
            hb_fmt(&b, "Expires: %s\r\n", d);
            if (cf->expires_s < 0 || maxage < 0) HB_LIT(&b, "Cache-Control: no-cache\r\n");
            else hb_fmt(&b, "Cache-Control: max-age=%ld\r\n", maxage);
        }
    }
    if (m->accept_ranges) HB_LIT(&b, "Accept-Ranges: bytes\r\n");
    if (cf) {
        for (uint32_t i = 0; i < cf->add_headers.count; i++) {
            const rt_header *h = &w->rt->header[cf->add_headers.first + i];
            if (!h->always && !status_gets_headers(q->status)) continue;
            char val[2048];
            size_t vn = pf_tpl_expand(w, c, q, h->value_tpl, 0, val, sizeof val);
            if (vn == 0) continue;          /* nginx skips a header whose value is empty */
            hb_put(&b, RT_S(w->rt, h->name), h->name.len);
            HB_LIT(&b, ": ");
            hb_put(&b, val, vn);
            HB_LIT(&b, "\r\n");
        }
    }
    HB_LIT(&b, "\r\n");
    if (b.overflow) return -1;
    q->wpos = 0;
    q->wlen = (uint32_t)(b.p - q->wbuf->data);
    q->header_bytes = q->wlen;
    return 0;
}

/* Append bytes to the wbuf after the head (small bodies travel in the same send). */
static int wbuf_append(pf_req *q, const char *p, size_t n)
{
    if (q->wlen + n > q->wbuf->cap) return -1;
    memcpy(q->wbuf->data + q->wlen, p, n);
    q->wlen += (uint32_t)n;
    return 0;
}

static void reset_body(pf_worker *w, pf_req *q)
{
    if (q->fent) { pf_fent_release(w, q->fent); q->fent = NULL; }
    q->body_fd = -1;
    q->body_off = q->body_end = 0;
    q->mem = NULL;
    q->mem_len = q->mem_pos = 0;
    pf_gzip_free(q);
}

static int handle_errpage(pf_worker *w, pf_conn *c, pf_req *q, int status);

/* A response whose body is nginx's page for the status (errors, redirects). */
static void respond_page(pf_worker *w, pf_conn *c, pf_req *q, int status, const char *loc, size_t loclen)
{
    const rt_conf *cf = qconf(w, q);
    char page[1024];
    reset_body(w, q);
    q->status = status;
    int n = pf_errpage_body(status, cf ? !!(cf->flags & RT_F_SERVER_TOKENS) : 1, page, sizeof page);
    if (n > 0 && status >= 400 && (!cf || (cf->flags & RT_F_MSIE_PADDING))) {
        /* msie_padding: MSIE and Chrome replace error pages shorter than 512 bytes with
         * their own; nginx appends six comment lines to keep the server's page */
        size_t ul;
        const char *ua = pf_req_header(c, q, "user-agent", 10, &ul);
        if (ua && (memmem(ua, ul, "MSIE ", 5) || memmem(ua, ul, "Chrome/", 7))) {
            static const char pad[] = "<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n";
            for (int i = 0; i < 6 && (size_t)n + sizeof pad < sizeof page; i++) {
                memcpy(page + n, pad, sizeof pad - 1);
                n += (int)(sizeof pad - 1);
            }
        }
    }
    meta_t m = {0};
    m.clen = n;
    if (n > 0) { m.ctype = "text/html"; m.ctype_len = 9; m.charset = 1; }
    else if (status == 204 || status == 304) m.clen = -1;
    m.location = loc;
    m.location_len = loclen;
    if (write_head(w, c, q, &m) < 0) { q->status = 500; q->wlen = 0; q->keep_alive = 0; return; }
    if (!q->header_only && n > 0) wbuf_append(q, page, (size_t)n);
}

void pf_respond_error(pf_worker *w, pf_conn *c, pf_req *q, int status)
{
    if (status >= 400 && handle_errpage(w, c, q, status)) return;
    respond_page(w, c, q, status, NULL, 0);
}

/* Location: absolute as nginx builds it (absolute_redirect on): scheme://host[:port]/uri */
static void respond_redirect(pf_worker *w, pf_conn *c, pf_req *q, int status, const char *uri, size_t ulen)
{
    const rt_conf *cf = qconf(w, q);
    char loc[PF_URI_MAX + 300];
    size_t n = 0;
    if (ulen && uri[0] == '/' && (!cf || (cf->flags & RT_F_ABS_REDIRECT))) {
        char host[300];
        rt_tplop op = {V_HOST, {0, 0}};
        (void)op;
        /* $host: Host header without port, else the server's first name */
        size_t hl = 0;
        if (q->h.host.len && !(cf && (cf->flags & RT_F_SERVER_NAME_IN_REDIRECT))) {
            const char *h = pf_req_base(c) + q->h.host.off;
            size_t e = q->h.host.len;
            if (h[0] != '[') { const char *colon = memchr(h, ':', e); if (colon) e = (size_t)(colon - h); }
            else { const char *rb = memchr(h, ']', e); if (rb) e = (size_t)(rb - h) + 1; }
            hl = e < sizeof host ? e : sizeof host - 1;
            memcpy(host, h, hl);
        } else if (q->server >= 0) {
            rt_str s = w->rt->server[q->server].name0;
            hl = s.len < sizeof host ? s.len : sizeof host - 1;
            memcpy(host, RT_S(w->rt, s), hl);
        }
        int port = w->ls[c->listener].port;
        n = (size_t)snprintf(loc, sizeof loc, "http://%.*s", (int)hl, host);
        if (port != 80 && (!cf || (cf->flags & RT_F_PORT_IN_REDIRECT)))
            n += (size_t)snprintf(loc + n, sizeof loc - n, ":%d", port);
    }
    if (n + ulen >= sizeof loc) ulen = sizeof loc - n - 1;
    memcpy(loc + n, uri, ulen);
    n += ulen;
    respond_page(w, c, q, status, loc, n);
}

/* ---- file mapping ------------------------------------------------------- */
static int map_path(pf_worker *w, pf_req *q, const rt_conf *cf, const char *uri, size_t ulen, char *out, size_t cap)
{
    const char *base = RT_S(w->rt, cf->root);
    size_t blen = cf->root.len;
    if (cf->alias) {
        size_t pl = cf->loc_prefix.len;
        if (ulen >= pl && memcmp(uri, RT_S(w->rt, cf->loc_prefix), pl) == 0) { uri += pl; ulen -= pl; }
        else { uri = ""; ulen = 0; }          /* regex location + alias: the alias is the file */
    }
    return pf_path_join(base, blen, uri, ulen, out, cap);
}

static int set_uri(pf_req *q, const char *u, size_t n)
{
    char tmp[PF_URI_MAX];
    const char *qm = memchr(u, '?', n);
    if (qm) n = (size_t)(qm - u);            /* "?args" of an internal redirect: ignored */
    int r = pf_path_normalize(u, n, tmp, sizeof tmp);
    if (r < 0) return r;
    memcpy(q->uri, tmp, (size_t)r + 1);
    q->uri_len = (uint32_t)r;
    return 0;
}

static int accepts_gzip(pf_conn *c, pf_req *q, const rt_conf *cf)
{
    size_t vl;
    const char *v = pf_req_header(c, q, "accept-encoding", 15, &vl);
    if (!v || (q->h.version_minor < 1 && !(cf->flags & RT_F_GZIP_HTTP10))) return 0;   /* gzip_http_version */
    for (size_t i = 0; i + 4 <= vl; i++)
        if (strncasecmp(v + i, "gzip", 4) == 0) {
            /* refuse "gzip;q=0" (RFC 9110 §12.5.3) */
            const char *p = v + i + 4, *e = v + vl;
            while (p < e && (*p == ' ' || *p == '\t')) p++;
            if (p < e && *p == ';') {
                const char *qv = memchr(p, '=', (size_t)(e - p));
                if (qv && qv + 1 < e && qv[1] == '0') {
                    int nonzero = 0;
                    for (const char *z = qv + 2; z < e && *z != ','; z++) if (*z >= '1' && *z <= '9') nonzero = 1;
                    if (!nonzero) return 0;
                }
            }
            return 1;
        }
    return 0;
}

/* If-None-Match list vs our ETag, weak comparison (RFC 9110 §13.1.2) */
static int etag_list_match(const char *v, size_t vl, const char *etag, int weak)
{
    const char *e = etag;
    size_t el = strlen(etag);
    if (weak && el > 2 && e[0] == 'W' && e[1] == '/') { e += 2; el -= 2; }
    const char *p = v, *end = v + vl;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == ',' || *p == '\t')) p++;
        if (p < end && *p == '*') return 1;
        const char *s = p;
        while (p < end && *p != ',') p++;
        const char *t = p;
        while (t > s && (t[-1] == ' ' || t[-1] == '\t')) t--;
        if (weak && t - s > 2 && s[0] == 'W' && s[1] == '/') s += 2;
        if ((size_t)(t - s) == el && memcmp(s, e, el) == 0) return 1;
    }
    return 0;
}

/* 0 = send it, 304, 412 */
static int conditional(pf_conn *c, pf_req *q, const rt_conf *cf, const char *etag, time_t mtime)
{
    size_t vl;
    const char *v;
    time_t t;
    if ((v = pf_req_header(c, q, "if-unmodified-since", 19, &vl)) && pf_parse_http_date(v, vl, &t) == 0
        && mtime > t) return 412;
    if ((v = pf_req_header(c, q, "if-match", 8, &vl)) && !etag_list_match(v, vl, etag, 0)) return 412;
    int ims_present = 0, inm_present = 0;
    if (cf->if_modified_since && (v = pf_req_header(c, q, "if-modified-since", 17, &vl))) {
        ims_present = 1;
        if (pf_parse_http_date(v, vl, &t) < 0) return 0;
        if (cf->if_modified_since == 1 ? t != mtime : t < mtime) return 0;
    }
    if ((v = pf_req_header(c, q, "if-none-match", 13, &vl))) {
        inm_present = 1;
        if (!etag[0] || !etag_list_match(v, vl, etag, 1)) return 0;
    }
    return (ims_present || inm_present) ? 304 : 0;
}

static const char *skip_sp(const char *p, const char *e) { while (p < e && *p == ' ') p++; return p; }

static const char *parse_num(const char *p, const char *e, long long *out)
{
    if (p >= e || *p < '0' || *p > '9') return NULL;
    long long n = 0;
    while (p < e && *p >= '0' && *p <= '9') {
        n = n * 10 + (*p++ - '0');
        if (n > (1ll << 60)) return NULL;
    }
    *out = n;
    return p;
}

/* Range (nginx's ngx_http_range_parse): 0 = serve the whole file (no/ignored Range, or
 * ranges adding up to more than the file), 416, or 206 with q->rstart/rend filled.
 * More than PF_MAX_RANGES ranges: the whole file (nginx's max_ranges behaviour). */
static int parse_range(pf_conn *c, pf_req *q, off_t size, const char *etag, time_t mtime)
{
    size_t vl;
    const char *v = pf_req_header(c, q, "range", 5, &vl);
    q->nranges = 0;
    if (!v || vl < 6 || strncasecmp(v, "bytes=", 6) != 0) return 0;
    const char *ir;
    size_t irl;
    if ((ir = pf_req_header(c, q, "if-range", 8, &irl))) {
        time_t t;
        if (irl && ir[0] == '"') { if (irl != strlen(etag) || memcmp(ir, etag, irl) != 0) return 0; }
        else if (pf_parse_http_date(ir, irl, &t) < 0 || t != mtime) return 0;
    }
    const char *p = v + 6, *e = v + vl;
    long long total = 0;
    for (;;) {
        long long start = 0, end = 0;
        int suffix = 0;
        p = skip_sp(p, e);
        if (p < e && *p == '-') {
            suffix = 1;
            p++;
        } else {
            if (!(p = parse_num(p, e, &start))) return 416;
            p = skip_sp(p, e);
            if (p >= e || *p++ != '-') return 416;
            p = skip_sp(p, e);
            if (p == e || *p == ',') { end = size; goto found; }
        }
        if (!(p = parse_num(p, e, &end))) return 416;
        p = skip_sp(p, e);
        if (p != e && *p != ',') return 416;
        if (suffix) { start = end < size ? size - end : 0; end = size - 1; }
        if (start > end) return 416;
        end = end >= size ? size : end + 1;
    found:
        if (start < end) {
            if (q->nranges == PF_MAX_RANGES) return 0;
            q->rstart[q->nranges] = start;
            q->rend[q->nranges] = end;
            q->nranges++;
            total += end - start;
        } else if (start == 0) {
            return 0;
        }
        if (p == e) break;
        p++;                                  /* ',' */
    }
    if (q->nranges == 0) return 416;
    if (total > size) { q->nranges = 0; return 0; }   /* overlapping ranges: the whole file */
    return 206;
}

/* One multipart/byteranges part head (RFC 9110 §14.6), as nginx lays it out. */
static int part_head(pf_req *q, int i, off_t size, char *out, size_t cap)
{
    return snprintf(out, cap, "\r\n--%s\r\nContent-Type: %.*s\r\nContent-Range: bytes %lld-%lld/%lld\r\n\r\n",
                    q->boundary, (int)q->part_ctype_len, q->part_ctype, (long long)q->rstart[i],
                    (long long)q->rend[i] - 1, (long long)size);
}

/* write_out calls this when a part's body is sent: set up the next part or the closing
 * boundary. 1 = more to send, 0 = multipart body complete. */
int pf_next_part(pf_req *q)
{
    if (q->range_i > q->nranges) return 0;
    int n;
    if (q->range_i == q->nranges) {
        n = snprintf(q->wbuf->data, q->wbuf->cap, "\r\n--%s--\r\n", q->boundary);
    } else {
        n = part_head(q, q->range_i, q->part_size, q->wbuf->data, q->wbuf->cap);
        q->body_off = q->rstart[q->range_i];
        q->body_end = q->rend[q->range_i];
        if (q->mem) { q->mem_pos = (uint32_t)q->body_off; q->mem_len = (uint32_t)q->body_end; }
    }
    q->range_i++;
    q->wpos = 0;
    q->wlen = (uint32_t)n;
    return 1;
}

/* nginx's gzip header filter: 0 = not compressible; 1 = compressible (gzip_vary then
 * adds Vary whatever the client accepts); 2 = compress for this client. HEAD is skipped
 * (header_only), so its head keeps Content-Length. */
static int gzip_wanted(pf_worker *w, pf_conn *c, pf_req *q, const rt_conf *cf, const char *ct, size_t ctl, off_t len)
{
    if (!(cf->flags & RT_F_GZIP) || q->header_only) return 0;
    if (q->status != 200 && q->status != 403 && q->status != 404) return 0;
    if (len < (off_t)cf->gzip_min_length) return 0;
    if (!(cf->flags & RT_F_GZIP_TYPES_ANY) && !pf_rt_list_has(w->rt, cf->gzip_types, ct, ctl)) return 0;
    size_t vl;
    if (!accepts_gzip(c, q, cf)) return 1;
    if (!(cf->flags & RT_F_GZIP_PROXIED_ANY) && pf_req_header(c, q, "via", 3, &vl)) return 1;   /* gzip_proxied off */
    if (cf->flags & RT_F_GZIP_DISABLE_MSIE6) {
        /* nginx's "msie6": MSIE 4-6 without SV1 (its gzip handling was broken) */
        const char *ua = pf_req_header(c, q, "user-agent", 10, &vl);
        const char *m = ua ? memmem(ua, vl, "MSIE ", 5) : NULL;
        if (m && (size_t)(ua + vl - m) > 6 && m[5] >= '4' && m[5] <= '6' && m[6] == '.'
            && !memmem(ua, vl, "; SV1", 5))
            return 1;
    }
    return 2;
}

/* gzip_static (nginx's handler): with gzip_vary, an existing .gz adds "Vary" even for a
 * client that does not accept gzip; it is served only to those that do. Returns the file
 * to send (e itself, or the .gz entry with e released). */
static pf_fent *pick_gzip_static(pf_worker *w, pf_conn *c, pf_req *q, const rt_conf *cf, pf_fent *e, meta_t *m)
{
    int acc = accepts_gzip(c, q, cf);
    if (!(cf->flags & RT_F_GZIP_STATIC) || !(acc || (cf->flags & RT_F_GZIP_VARY))
        || q->fname_len + 4 >= sizeof q->fname)
        return e;
    char gz[PF_PATH_MAX];
    memcpy(gz, q->fname, q->fname_len);
    memcpy(gz + q->fname_len, ".gz", 4);
    pf_fent *g = pf_fcache_get(w, gz, q->fname_len + 3, cf->open_file_cache_valid_ms);
    if (!g) return e;
    if (g->err || g->is_dir) { pf_fent_release(w, g); return e; }
    m->vary = !!(cf->flags & RT_F_GZIP_VARY);
    if (!acc) { pf_fent_release(w, g); return e; }
    pf_fent_release(w, e);
    m->gzip = 1;
    return g;
}

/* 304: the validators and the caching headers, no body (nginx's not_modified filter) */
static int respond_304(pf_worker *w, pf_conn *c, pf_req *q, const meta_t *m)
{
    meta_t n = {0};
    q->status = 304;
    n.lastmod = m->lastmod;
    memcpy(n.etag, m->etag, sizeof n.etag);
    n.clen = -1;
    n.expires = 1;
    n.vary = m->vary;
    n.gzip = m->gzip;
    q->header_only = 1;
    return write_head(w, c, q, &n);
}

static int respond_416(pf_worker *w, pf_conn *c, pf_req *q, const rt_conf *cf, off_t size)
{
    char page[1024];
    meta_t u = {0};
    q->status = 416;
    int pn = pf_errpage_body(416, !!(cf->flags & RT_F_SERVER_TOKENS), page, sizeof page);
    u.ctype = "text/html"; u.ctype_len = 9; u.clen = pn;
    snprintf(u.crange, sizeof u.crange, "bytes */%lld", (long long)size);
    if (write_head(w, c, q, &u) < 0) return -1;
    if (!q->header_only) wbuf_append(q, page, (size_t)pn);
    return 0;
}

/* several ranges: multipart/byteranges; nginx's boundary is a counter zero-padded to 20
 * digits (%0muA). The parts are produced by pf_next_part as the body is written. */
static int respond_multipart(pf_worker *w, pf_conn *c, pf_req *q, const rt_conf *cf, pf_fent *e, meta_t *m)
{
    const char *ct = m->ctype;
    size_t ctl = m->ctype_len;
    q->status = 206;
    snprintf(q->boundary, sizeof q->boundary, "%020llu", (unsigned long long)++w->boundary_seq);
    if (cf->charset.len && pf_rt_list_has(w->rt, cf->charset_types, ct, ctl))
        snprintf(q->part_ctype_buf, sizeof q->part_ctype_buf, "%.*s; charset=%.*s", (int)ctl, ct,
                 (int)cf->charset.len, RT_S(w->rt, cf->charset));
    else
        snprintf(q->part_ctype_buf, sizeof q->part_ctype_buf, "%.*s", (int)ctl, ct);
    q->part_ctype = q->part_ctype_buf;
    q->part_ctype_len = strlen(q->part_ctype_buf);
    q->part_size = e->size;
    int64_t len = 0;
    char tmp[512];
    for (int i = 0; i < q->nranges; i++)
        len += part_head(q, i, e->size, tmp, sizeof tmp) + (q->rend[i] - q->rstart[i]);
    len += 4 + (int64_t)strlen(q->boundary) + 4;          /* "\r\n--" B "--\r\n" */
    m->clen = len;
    snprintf(m->mpctype, sizeof m->mpctype, "multipart/byteranges; boundary=%s", q->boundary);
    m->ctype = m->mpctype;
    m->ctype_len = strlen(m->mpctype);
    m->charset = 0;
    if (write_head(w, c, q, m) < 0) return -1;
    if (q->header_only) { q->nranges = 0; return 0; }
    q->body_fd = e->fd;
    if (e->body) q->mem = e->body;
    q->range_i = 0;
    q->body_off = q->body_end = 0;
    q->mem_pos = q->mem_len = 0;
    return 0;
}

/* the body source after the head: cached bytes (appended to the head when they fit, so
 * head and body leave in one send), the fd (sendfile/pread), or the gzip stream */
static int setup_body(pf_req *q, const rt_conf *cf, pf_fent *e, off_t start, off_t end, int gz)
{
    q->body_fd = e->fd;
    q->body_off = start;
    q->body_end = end;
    if (e->body) {
        q->mem = e->body;
        q->mem_pos = (uint32_t)start;
        q->mem_len = (uint32_t)end;
    }
    if (gz) return pf_gzip_start(q, (int)cf->gzip_comp_level);
    if (q->mem && q->wlen + (q->mem_len - q->mem_pos) <= q->wbuf->cap) {
        wbuf_append(q, q->mem + q->mem_pos, q->mem_len - q->mem_pos);
        q->mem_pos = q->mem_len;
        q->body_off = q->body_end;
    }
    return 0;
}

static void serve_file(pf_worker *w, pf_conn *c, pf_req *q, const rt_conf *cf, pf_fent *e)
{
    if (q->h.method_id != PF_M_GET && q->h.method_id != PF_M_HEAD) {
        pf_fent_release(w, e);
        pf_respond_error(w, c, q, 405);
        return;
    }
    meta_t m = {0};
    m.ctype = pf_mime_lookup(w->rt, cf, q->uri, q->uri_len, &m.ctype_len);
    m.charset = 1;
    m.expires = 1;
    e = pick_gzip_static(w, c, q, cf, e, &m);
    q->fent = e;
    q->status = 200;
    m.lastmod = e->mtime;
    if (cf->flags & RT_F_ETAG)
        snprintf(m.etag, sizeof m.etag, "\"%llx-%llx\"", (unsigned long long)e->mtime, (unsigned long long)e->size);
    int plain = q->forced_status == 0 || q->forced_status == 200;   /* not an error_page body */
    int cond = plain ? conditional(c, q, cf, m.etag, e->mtime) : 0;
    if (cond == 412) { pf_respond_error(w, c, q, 412); return; }
    if (cond == 304) { if (respond_304(w, c, q, &m) < 0) goto fail; return; }
    off_t start = 0, end = e->size;
    int gzw = m.gzip ? 0 : gzip_wanted(w, c, q, cf, m.ctype, m.ctype_len, e->size);
    int gz = gzw == 2;
    if (gzw == 1 && (cf->flags & RT_F_GZIP_VARY)) m.vary = 1;
    if (gz) {
        m.clen = -1;
        m.chunked = 1;
        m.gzip = 1;
        m.vary = !!(cf->flags & RT_F_GZIP_VARY);
        if (m.etag[0]) {                       /* the body changes: the ETag becomes weak */
            char weak[64];
            snprintf(weak, sizeof weak, "W/%.60s", m.etag);
            snprintf(m.etag, sizeof m.etag, "%s", weak);
        }
    } else {
        m.accept_ranges = 1;
        int r = plain ? parse_range(c, q, e->size, m.etag, e->mtime) : 0;
        if (r == 416) { if (respond_416(w, c, q, cf, e->size) < 0) goto fail; return; }
        if (r == 206 && q->nranges > 1) { if (respond_multipart(w, c, q, cf, e, &m) < 0) goto fail; return; }
        if (r == 206) {
            q->status = 206;
            start = q->rstart[0];
            end = q->rend[0];
            q->nranges = 0;
            snprintf(m.crange, sizeof m.crange, "bytes %lld-%lld/%lld", (long long)start,
                     (long long)end - 1, (long long)e->size);
        }
        m.clen = end - start;
    }
    if (write_head(w, c, q, &m) < 0) goto fail;
    if (q->header_only) return;
    if (setup_body(q, cf, e, start, end, gz) < 0) goto fail;
    return;
fail:
    pf_log_error(w, PF_LOG_ERR, c, q, "response head too large");
    q->keep_alive = 0;
    respond_page(w, c, q, 500, NULL, 0);
}

/* ---- the location's content handler ----------------------------------- */
enum { LOC_DONE = 0, LOC_REDIRECT = 1, LOC_NAMED = 2 };

static int file_error(pf_worker *w, pf_conn *c, pf_req *q, const rt_conf *cf, int err)
{
    if (err == ENOENT || err == ENOTDIR || err == ENAMETOOLONG) {
        if (cf->flags & RT_F_LOG_NOT_FOUND)
            pf_log_error(w, PF_LOG_ERR, c, q, "open() \"%s\" failed (%d: %s)", q->fname, err, strerror(err));
        pf_respond_error(w, c, q, 404);
    } else if (err == EACCES || err == EPERM) {
        pf_log_error(w, PF_LOG_ERR, c, q, "open() \"%s\" failed (%d: %s)", q->fname, err, strerror(err));
        pf_respond_error(w, c, q, 403);
    } else {
        pf_log_error(w, PF_LOG_CRIT, c, q, "open() \"%s\" failed (%d: %s)", q->fname, err, strerror(err));
        pf_respond_error(w, c, q, 500);
    }
    return LOC_DONE;
}

static int do_index(pf_worker *w, pf_conn *c, pf_req *q, const rt_conf *cf)
{
    char path[PF_PATH_MAX];
    int n = map_path(w, q, cf, q->uri, q->uri_len, path, sizeof path);
    if (n < 0) { pf_respond_error(w, c, q, n == PF_E_URI_TOO_LONG ? 404 : 400); return LOC_DONE; }
    for (uint32_t i = 0; i < cf->index.count; i++) {
        rt_str ix = w->rt->list[cf->index.first + i];
        if ((size_t)n + ix.len >= sizeof path || q->uri_len + ix.len >= PF_URI_MAX) continue;
        memcpy(path + n, RT_S(w->rt, ix), ix.len);
        path[n + ix.len] = 0;
        pf_fent *e = pf_fcache_get(w, path, (size_t)n + ix.len, cf->open_file_cache_valid_ms);
        int ok = e && !e->err && !e->is_dir;
        int err = e ? e->err : ENOMEM;
        if (e) pf_fent_release(w, e);
        if (ok) {                            /* internal redirect to uri + index (re-matched) */
            memcpy(q->uri + q->uri_len, RT_S(w->rt, ix), ix.len);
            q->uri_len += ix.len;
            q->uri[q->uri_len] = 0;
            return LOC_REDIRECT;
        }
        if (err != ENOENT && err != ENOTDIR) {
            memcpy(q->fname, path, (size_t)n + ix.len + 1);
            q->fname_len = (uint32_t)(n + ix.len);
            return file_error(w, c, q, cf, err);
        }
    }
    path[n] = 0;
    memcpy(q->fname, path, (size_t)n + 1);
    q->fname_len = (uint32_t)n;
    pf_fent *d = pf_fcache_get(w, path, (size_t)n, cf->open_file_cache_valid_ms);
    int isdir = d && !d->err && d->is_dir;
    if (d) pf_fent_release(w, d);
    if (isdir) {
        pf_log_error(w, PF_LOG_ERR, c, q, "directory index of \"%s\" is forbidden", path);
        pf_respond_error(w, c, q, 403);
    } else {
        pf_log_error(w, PF_LOG_ERR, c, q, "\"%s\" is not found (2: No such file or directory)", path);
        pf_respond_error(w, c, q, 404);
    }
    return LOC_DONE;
}

static int serve_uri(pf_worker *w, pf_conn *c, pf_req *q, const rt_conf *cf)
{
    if (q->uri_len && q->uri[q->uri_len - 1] == '/') return do_index(w, c, q, cf);
    int n = map_path(w, q, cf, q->uri, q->uri_len, q->fname, sizeof q->fname);
    if (n == PF_E_URI_TOO_LONG) {             /* longer than PATH_MAX: nginx's ENAMETOOLONG -> 404 */
        pf_log_error(w, PF_LOG_ERR, c, q, "open() failed (36: File name too long)");
        pf_respond_error(w, c, q, 404);
        return LOC_DONE;
    }
    if (n < 0) { pf_respond_error(w, c, q, 400); return LOC_DONE; }
    q->fname_len = (uint32_t)n;
    pf_fent *e = pf_fcache_get(w, q->fname, (size_t)n, cf->open_file_cache_valid_ms);
    if (!e) { pf_respond_error(w, c, q, 500); return LOC_DONE; }
    if (e->err) { int err = e->err; pf_fent_release(w, e); return file_error(w, c, q, cf, err); }
    if (e->is_dir) {
        pf_fent_release(w, e);
        char loc[PF_URI_MAX + 2];
        size_t ln = q->uri_len;
        memcpy(loc, q->uri, ln);
        loc[ln++] = '/';
        size_t extra = q->h.query.len;
        char full[PF_URI_MAX * 2];
        memcpy(full, loc, ln);
        if (extra && ln + 1 + extra < sizeof full) {
            full[ln++] = '?';
            memcpy(full + ln, pf_req_base(c) + q->h.query.off, extra);
            ln += extra;
        }
        respond_redirect(w, c, q, 301, full, ln);
        return LOC_DONE;
    }
    serve_file(w, c, q, cf, e);
    return LOC_DONE;
}

static int do_try_files(pf_worker *w, pf_conn *c, pf_req *q, const rt_conf *cf)
{
    char t[PF_URI_MAX], path[PF_PATH_MAX];
    for (uint32_t i = 0; i < cf->try_files.count; i++) {
        uint32_t tpl = w->rt->idx[cf->try_files.first + i];
        size_t n = pf_tpl_expand(w, c, q, tpl, 0, t, sizeof t - 1);
        t[n] = 0;
        if (i + 1 == cf->try_files.count) {
            if (n > 1 && t[0] == '=') { pf_respond_error(w, c, q, atoi(t + 1)); return LOC_DONE; }
            if (n > 1 && t[0] == '@') {
                int l = pf_router_named(w->rt, q->server, t, n);
                if (l < 0) { pf_respond_error(w, c, q, 500); return LOC_DONE; }
                q->loc = l;
                return LOC_NAMED;
            }
            if (set_uri(q, t, n) < 0) { pf_respond_error(w, c, q, 400); return LOC_DONE; }
            return LOC_REDIRECT;
        }
        if (n == 0 || t[0] != '/') continue;
        int want_dir = t[n - 1] == '/';
        int pn = map_path(w, q, cf, t, n, path, sizeof path);
        if (pn < 0) continue;
        pf_fent *e = pf_fcache_get(w, path, (size_t)pn, cf->open_file_cache_valid_ms);
        int hit = e && !e->err && (want_dir ? e->is_dir : !e->is_dir);
        if (e) pf_fent_release(w, e);
        if (!hit) continue;
        if (set_uri(q, t, n) < 0) continue;
        if (pf_proxy_location(w, c, q)) return LOC_DONE;   /* try_files hit in a proxied location: nginx proxies it */
        return serve_uri(w, c, q, cf);
    }
    return LOC_DONE;
}

static int do_return(pf_worker *w, pf_conn *c, pf_req *q, const rt_conf *cf)
{
    int code = cf->return_code;
    char text[PF_URI_MAX];
    size_t n = cf->return_tpl != RT_NONE ? pf_tpl_expand(w, c, q, cf->return_tpl, 0, text, sizeof text) : 0;
    if (code == 444) { q->status = 444; q->keep_alive = 0; q->wlen = 0; q->close_now = 1; return LOC_DONE; }
    if (code == 301 || code == 302 || code == 303 || code == 307 || code == 308) {
        respond_redirect(w, c, q, code, text, n);
        return LOC_DONE;
    }
    if (cf->return_tpl == RT_NONE) { pf_respond_error(w, c, q, code); return LOC_DONE; }
    reset_body(w, q);
    q->status = code;
    meta_t m = {0};
    m.ctype = RT_S(w->rt, cf->default_type);
    m.ctype_len = cf->default_type.len;
    m.charset = 1;
    m.clen = (int64_t)n;
    if (write_head(w, c, q, &m) < 0 || (!q->header_only && wbuf_append(q, text, n) < 0)) {
        q->keep_alive = 0;
        respond_page(w, c, q, 500, NULL, 0);
    }
    return LOC_DONE;
}

/* stub_status: nginx's counters, summed over this generation's workers (shm slots);
 * this worker's own counters are live, the others' are at most one loop turn old */
static int do_stub_status(pf_worker *w, pf_conn *c, pf_req *q, const rt_conf *cf)
{
    if (q->h.method_id != PF_M_GET && q->h.method_id != PF_M_HEAD) { pf_respond_error(w, c, q, 405); return LOC_DONE; }
    uint64_t active = w->active, accepted = w->accepted, requests = w->requests;
    /* this request's head is read: it counts as Writing, as in nginx (our state only
     * moves READ_HEAD -> WRITE once this handler has built the response) */
    uint64_t reading = w->reading ? w->reading - 1 : 0, writing = w->writing + 1, waiting = w->idle;
    if (w->conf.shm && w->conf.shm_len > 64) {
        size_t nslots = (w->conf.shm_len - 64) / sizeof(pf_shm_slot);
        for (size_t i = 0; i < nslots; i++) {
            pf_shm_slot sl;
            if ((int)i == w->conf.index) continue;
            pf_shm_read_slot(w->conf.shm, (int)i, &sl);
            if (!sl.pid) continue;
            active += sl.active; accepted += sl.accepted; requests += sl.requests;
            reading += sl.reading; writing += sl.writing; waiting += sl.idle;
        }
    }
    char body[512];
    int n = snprintf(body, sizeof body,
                     "Active connections: %llu \nserver accepts handled requests\n %llu %llu %llu \n"
                     "Reading: %llu Writing: %llu Waiting: %llu \n",
                     (unsigned long long)active, (unsigned long long)accepted, (unsigned long long)accepted,
                     (unsigned long long)requests, (unsigned long long)reading, (unsigned long long)writing,
                     (unsigned long long)waiting);
    q->status = 200;
    meta_t m = {0};
    m.ctype = "text/plain";
    m.ctype_len = 10;
    m.charset = 1;
    m.clen = n;
    if (write_head(w, c, q, &m) < 0 || (!q->header_only && wbuf_append(q, body, (size_t)n) < 0)) {
        q->keep_alive = 0;
        respond_page(w, c, q, 500, NULL, 0);
    }
    return LOC_DONE;
}

static int in_location(pf_worker *w, pf_conn *c, pf_req *q)
{
    const rt_conf *cf = &w->rt->conf[q->conf];
    uint64_t max = ((uint64_t)cf->max_body_hi << 32) | cf->max_body_lo;
    if (max && q->h.content_length > 0 && (uint64_t)q->h.content_length > max && !q->err_page_done) {
        /* nginx checks client_max_body_size when the location is chosen: 413, then close */
        pf_log_error(w, PF_LOG_ERR, c, q, "client intended to send too large body: %lld bytes",
                     (long long)q->h.content_length);
        q->body_too_large = 1;
        pf_respond_error(w, c, q, 413);
        return LOC_DONE;
    }
    if (cf->return_code >= 0) return do_return(w, c, q, cf);
    if (cf->flags & RT_F_STUB_STATUS) return do_stub_status(w, c, q, cf);
    if (cf->try_files.count) return do_try_files(w, c, q, cf);
    if (pf_proxy_location(w, c, q)) return LOC_DONE;       /* uwsgi_pass / proxy_pass / stub_status */
    return serve_uri(w, c, q, cf);
}

/* Location matching + content, following internal redirects (index, try_files,
 * error_page) as nginx does, with its limit of 10 ("rewrite or internal redirection cycle"). */
static void run_locations(pf_worker *w, pf_conn *c, pf_req *q, int named)
{
    for (;;) {
        if (++q->redirects > 10) {
            pf_log_error(w, PF_LOG_ERR, c, q, "rewrite or internal redirection cycle while processing \"%.*s\"",
                         (int)q->uri_len, q->uri);
            q->err_page_done = 1;
            respond_page(w, c, q, 500, NULL, 0);
            return;
        }
        if (named) q->conf = (int)w->rt->loc[q->loc].conf;
        else q->conf = pf_router_match(w->rt, q->server, q->uri, q->uri_len, &q->loc);
        int rc = in_location(w, c, q);
        if (rc == LOC_DONE) return;
        named = rc == LOC_NAMED;
    }
}

/* error_page: an internal redirect to the page's URI (method becomes GET), status kept
 * unless "=code" overrides it. A failure while serving the page gets the built-in page. */
static int handle_errpage(pf_worker *w, pf_conn *c, pf_req *q, int status)
{
    const rt_conf *cf = qconf(w, q);
    if (!cf || q->err_page_done || q->server < 0) return 0;
    for (uint32_t i = 0; i < cf->error_pages.count; i++) {
        const rt_errpage *ep = &w->rt->errpage[cf->error_pages.first + i];
        if ((int)ep->code != status) continue;
        q->err_page_done = 1;
        const char *u = RT_S(w->rt, ep->uri);
        size_t ul = ep->uri.len;
        /* the page is sent with the error's status, or "=code", or (bare "=") its own */
        q->forced_status = ep->overwrite > 0 ? ep->overwrite : ep->overwrite == 0 ? 0 : status;
        if (ul > 7 && (strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0)) {
            respond_redirect(w, c, q, ep->overwrite > 0 ? ep->overwrite : 302, u, ul);
            return 1;
        }
        q->h.method_id = q->h.method_id == PF_M_HEAD ? PF_M_HEAD : PF_M_GET;
        if (u[0] == '@') {
            int l = pf_router_named(w->rt, q->server, u, ul);
            if (l < 0) return 0;
            q->loc = l;
            run_locations(w, c, q, 1);
        } else {
            if (set_uri(q, u, ul) < 0) return 0;
            run_locations(w, c, q, 0);
        }
        return 1;
    }
    return 0;
}

/* for proxy.c: X-Accel-Redirect from an upstream — an internal redirect to uri ("/x" or
 * "@named"), as error_page does; 0, or -1 when the URI is invalid */
int pf_internal_redirect(pf_worker *w, pf_conn *c, pf_req *q, const char *uri, size_t len)
{
    if (len && uri[0] == '@') {
        int l = pf_router_named(w->rt, q->server, uri, len);
        if (l < 0) return -1;
        q->loc = l;
        run_locations(w, c, q, 1);
        return 0;
    }
    if (set_uri(q, uri, len) < 0) return -1;
    run_locations(w, c, q, 0);
    return 0;
}

void pf_handle_request(pf_worker *w, pf_conn *c, pf_req *q)
{
    const pf_router *r = w->rt;
    const char *base = pf_req_base(c);
    q->server = pf_router_find_server(r, w->ls[c->listener].addr, q->h.host.len ? base + q->h.host.off : NULL,
                                      q->h.host.len);
    if (q->server < 0) { q->conf = -1; respond_page(w, c, q, 500, NULL, 0); return; }
    q->conf = (int)r->server[q->server].conf;
    q->underscores = !!(r->conf[q->conf].flags & RT_F_UNDERSCORES);
    q->header_only = q->h.method_id == PF_M_HEAD;
    /* nginx's request-line rules on top of RFC 9112's: a method is upper-case letters, '_'
     * and '-' only ("get" is a 400 there, not an unknown method), and the asterisk-form
     * ("OPTIONS *") is refused with 400 */
    int bad = q->h.target_form == PF_TARGET_ASTERISK;
    for (uint32_t i = 0; i < q->h.method.len && !bad; i++) {
        char ch = base[q->h.method.off + i];
        bad = !((ch >= 'A' && ch <= 'Z') || ch == '_' || ch == '-');
    }
    if (bad) {
        pf_log_error(w, PF_LOG_INFO, c, q, "client sent invalid request");
        q->err_page_done = 1;
        respond_page(w, c, q, 400, NULL, 0);
        return;
    }
    int n;
    if (q->h.path.len == 0) { q->uri[0] = '/'; q->uri[1] = 0; n = 1; }
    else n = pf_path_normalize(base + q->h.path.off, q->h.path.len, q->uri, sizeof q->uri);
    if (n < 0) {
        q->uri_len = 0;
        pf_log_error(w, PF_LOG_INFO, c, q, "client sent invalid request path");
        q->err_page_done = 1;
        respond_page(w, c, q, n == PF_E_URI_TOO_LONG ? 414 : 400, NULL, 0);
        return;
    }
    q->uri_len = (uint32_t)n;
    run_locations(w, c, q, 0);
}
