/*
 * http_parser.c — stateless zero-copy HTTP/1.x request-head parser (RFC 9112).
 *
 * Contract in pf.h. Shape: skip leading empty lines (RFC 9112 §2.2), find and check
 * the request line, parse the field lines (http_head.c), then derive framing and
 * connection facts from the fields (RFC 9112 §6, §9). Strict where nginx is lenient;
 * where nginx is stricter than the RFC (duplicate Content-Length, unknown TE -> 501,
 * authority-form) we follow nginx. docs/http-parser.md lists every decision.
 */
#include <string.h>

#include "http_head.h"

static int method_id(const uint8_t *m, uint32_t n)
{
    static const struct { const char *name; uint32_t len; int id; } known[] = {
        {"GET", 3, PF_M_GET}, {"HEAD", 4, PF_M_HEAD}, {"POST", 4, PF_M_POST},
        {"PUT", 3, PF_M_PUT}, {"DELETE", 6, PF_M_DELETE}, {"OPTIONS", 7, PF_M_OPTIONS},
        {"PATCH", 5, PF_M_PATCH}, {"TRACE", 5, PF_M_TRACE}, {"CONNECT", 7, PF_M_CONNECT},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)   /* methods are case-sensitive */
        if (known[i].len == n && memcmp(m, known[i].name, n) == 0)
            return known[i].id;
    return PF_M_OTHER;
}

/* Splits [s, t) (starting at '/' or empty) into path and query; '#' ends both, as nginx
 * drops a fragment that a client should never have sent. */
static void split_path(const uint8_t *b, uint32_t s, uint32_t t, pf_http_request *r)
{
    uint32_t i = s;

    while (i < t && b[i] != '?' && b[i] != '#')
        i++;
    r->path.off = s;
    r->path.len = i - s;
    r->query.off = i;
    r->query.len = 0;
    if (i < t && b[i] == '?') {
        uint32_t q = ++i;
        while (i < t && b[i] != '#')
            i++;
        r->query.off = q;
        r->query.len = i - q;
    }
}

/* absolute-form: scheme "://" authority [path-abempty] ["?" query]; http/https only. */
static int parse_absolute(const uint8_t *b, uint32_t s, uint32_t t, pf_http_request *r)
{
    uint32_t i = s;

    while (i < t && ((b[i] | 0x20) >= 'a' && (b[i] | 0x20) <= 'z'))
        i++;
    uint32_t n = i - s;
    if (!(PF_IEQ(b + s, n, "http") || PF_IEQ(b + s, n, "https")))
        return -1;
    if (t - i < 3 || b[i] != ':' || b[i + 1] != '/' || b[i + 2] != '/')
        return -1;
    uint32_t a = i + 3;
    i = a;
    while (i < t && b[i] != '/' && b[i] != '?' && b[i] != '#')
        i++;
    /* userinfo ("user@host") is not in the host class: refused, as nginx does */
    if (!pf_host_ok(b + a, i - a))
        return -1;
    r->host.off = a;
    r->host.len = i - a;
    split_path(b, i, t, r);
    return 0;
}

/* Version "HTTP/" DIGIT "." DIGIT; major > 1 is 505 as in nginx (HTTP/2.0 over an
 * HTTP/1 connection), HTTP/1.2..1.9 are served as 1.1. Multi-digit minors and "HTTP/0.x"
 * are 400 (nginx accepts "HTTP/1.10"; RFC 9112 §2.3 allows one digit). */
static int parse_version(const uint8_t *b, uint32_t s, uint32_t t, pf_http_request *r,
                         const pf_errsink *e)
{
    uint32_t i = s + 5, maj, min;

    if (t - s < 8 || memcmp(b + s, "HTTP/", 5) != 0)
        return pf_fail(e, e->bad, PF_HTTP_WHY_BAD_VERSION, s);
    for (maj = i; i < t && b[i] >= '0' && b[i] <= '9'; i++)
        ;
    uint32_t majn = i - maj;
    if (majn == 0 || i == t || b[i] != '.')
        return pf_fail(e, e->bad, PF_HTTP_WHY_BAD_VERSION, s);
    for (min = ++i; i < t && b[i] >= '0' && b[i] <= '9'; i++)
        ;
    if (i != t || i == min || b[maj] == '0')
        return pf_fail(e, e->bad, PF_HTTP_WHY_BAD_VERSION, s);
    if (majn > 1 || b[maj] != '1')
        return pf_fail(e, PF_E_VERSION, PF_HTTP_WHY_VERSION_UNSUPPORTED, s);
    if (t - min != 1)
        return pf_fail(e, e->bad, PF_HTTP_WHY_BAD_VERSION, s);
    r->version_minor = b[min] == '0' ? 0 : 1;
    return 0;
}

/* method SP request-target SP HTTP-version, single SPs (RFC 9112 §3). */
static int parse_request_line(const uint8_t *b, const pf_line *ln, pf_http_request *r,
                              const pf_errsink *e)
{
    uint32_t s = ln->start, t = ln->end, i = s;

    if (memchr(b + s, '\r', t - s))   /* a CR inside the line (pf_find_line only finds LFs) */
        return pf_fail(e, e->bad, PF_HTTP_WHY_BARE_CR, s);
    while (i < t && pf_is(b[i], PF_CC_TCHAR))
        i++;
    if (i == s)
        return pf_fail(e, e->bad, b[i] == 0 ? PF_HTTP_WHY_NUL : PF_HTTP_WHY_BAD_METHOD, s);
    if (i == t || b[i] != ' ')
        return pf_fail(e, e->bad, i == t || b[i] == '\t' ? PF_HTTP_WHY_BAD_REQUEST_LINE
                       : b[i] == 0 ? PF_HTTP_WHY_NUL : PF_HTTP_WHY_BAD_METHOD, s);
    r->method.off = s;
    r->method.len = i - s;
    r->method_id = method_id(b + s, i - s);

    uint32_t ts = ++i;
    while (i < t && pf_is(b[i], PF_CC_TARGET))
        i++;
    if (i == ts || i == t)   /* "GET  /", or HTTP/0.9's "GET /" (refused, unlike nginx) */
        return pf_fail(e, e->bad, PF_HTTP_WHY_BAD_REQUEST_LINE, s);
    if (b[i] != ' ')
        return pf_fail(e, e->bad, b[i] == 0 ? PF_HTTP_WHY_NUL : PF_HTTP_WHY_BAD_TARGET, s);
    r->target.off = ts;
    r->target.len = i - ts;

    int rc = parse_version(b, i + 1, t, r, e);
    if (rc != 0)
        return rc;

    if (b[ts] == '/') {
        r->target_form = PF_TARGET_ORIGIN;
        split_path(b, ts, i, r);
    } else if (b[ts] == '*' && i - ts == 1) {
        if (r->method_id != PF_M_OPTIONS)   /* RFC 9112 §3.2.4 */
            return pf_fail(e, e->bad, PF_HTTP_WHY_BAD_TARGET, s);
        r->target_form = PF_TARGET_ASTERISK;
        r->path.off = r->query.off = i;
    } else {
        r->target_form = PF_TARGET_ABSOLUTE;
        if (parse_absolute(b, ts, i, r) != 0)   /* includes authority-form: 400 as nginx */
            return pf_fail(e, e->bad, PF_HTTP_WHY_BAD_TARGET, s);
    }
    return 0;
}

static int name_is(const uint8_t *b, const pf_http_header *h, const char *lit, uint32_t n)
{
    return pf_ieq(b + h->name.off, h->name.len, lit, n);
}
#define NAME_IS(b, h, lit) name_is((b), (h), (lit), sizeof(lit) - 1)

/* Framing and connection semantics, checked in nginx's order: Host, Content-Length,
 * Transfer-Encoding (ngx_http_process_request_header). */
static int request_semantics(const uint8_t *b, pf_http_request *r, const pf_errsink *e)
{
    int cl = -1, te = -1, conn_close = 0, conn_ka = 0, conn_up = 0, upgrade_hdr = 0;

    for (uint32_t k = 0; k < r->nheaders; k++) {
        const pf_http_header *h = &r->headers[k];
        const uint8_t *v = b + h->value.off;
        uint32_t vl = h->value.len;

        if (NAME_IS(b, h, "host")) {
            if (r->host_index >= 0)
                return pf_fail(e, e->bad, PF_HTTP_WHY_DUP_HOST, h->name.off);
            if (!pf_host_ok(v, vl))
                return pf_fail(e, e->bad, PF_HTTP_WHY_BAD_HOST, h->name.off);
            r->host_index = (int)k;
        } else if (NAME_IS(b, h, "content-length")) {
            /* any duplicate, even identical, is refused: RFC 9112 §6.3 allows it, nginx does
             * it, and it removes the "which one wins" ambiguity behind CL.CL smuggling */
            if (cl >= 0)
                return pf_fail(e, e->bad, PF_HTTP_WHY_DUP_CONTENT_LENGTH, h->name.off);
            cl = (int)k;
        } else if (NAME_IS(b, h, "transfer-encoding")) {
            if (te >= 0)   /* nginx: duplicate header line; TE.TE obfuscation defence */
                return pf_fail(e, e->bad, PF_HTTP_WHY_DUP_TE, h->name.off);
            te = (int)k;
        } else if (NAME_IS(b, h, "connection")) {
            conn_close |= pf_list_has(v, vl, "close", 5);
            conn_ka |= pf_list_has(v, vl, "keep-alive", 10);
            conn_up |= pf_list_has(v, vl, "upgrade", 7);
        } else if (NAME_IS(b, h, "expect")) {
            /* RFC 9110 §10.1.1: ignore 100-continue from an HTTP/1.0 client */
            if (PF_IEQ(v, vl, "100-continue") && r->version_minor >= 1)
                r->expect_continue = 1;
        } else if (NAME_IS(b, h, "upgrade")) {
            upgrade_hdr = 1;
        }
    }

    if (r->host_index < 0 && r->version_minor >= 1)   /* RFC 9112 §3.2 */
        return pf_fail(e, e->bad, PF_HTTP_WHY_NO_HOST, r->method.off);
    if (r->target_form != PF_TARGET_ABSOLUTE && r->host_index >= 0)
        r->host = r->headers[r->host_index].value;

    if (cl >= 0) {
        const pf_http_header *h = &r->headers[cl];
        r->content_length = pf_parse_length(b + h->value.off, h->value.len);
        if (r->content_length < 0)
            return pf_fail(e, e->bad, PF_HTTP_WHY_BAD_CONTENT_LENGTH, h->name.off);
        r->body = PF_BODY_LENGTH;
    }
    if (te >= 0) {
        const pf_http_header *h = &r->headers[te];
        if (r->version_minor == 0)   /* RFC 9112 §6.1: 1.0 has no TE; nginx: 400 */
            return pf_fail(e, e->bad, PF_HTTP_WHY_TE_HTTP10, h->name.off);
        if (cl >= 0)                 /* RFC 9112 §6.1: the CL.TE / TE.CL smuggling pair */
            return pf_fail(e, e->bad, PF_HTTP_WHY_CL_AND_TE, h->name.off);
        /* exactly "chunked" (case-insensitive, OWS trimmed): "gzip, chunked" would need a
         * content decoder and "chunked, identity" has no reliable length; nginx answers
         * 501 to all of them, and so do we */
        if (!PF_IEQ(b + h->value.off, h->value.len, "chunked"))
            return pf_fail(e, PF_E_NOT_IMPLEMENTED, PF_HTTP_WHY_UNKNOWN_TE, h->name.off);
        r->chunked = 1;
        r->body = PF_BODY_CHUNKED;
    }

    r->keep_alive = r->version_minor >= 1 ? !conn_close : (conn_ka && !conn_close);
    r->upgrade = conn_up && upgrade_hdr;
    return 0;
}

static void request_reset(pf_http_request *r)
{
    memset(r, 0, offsetof(pf_http_request, headers));
    r->content_length = -1;
    r->body = PF_BODY_NONE;
    r->chunked = r->keep_alive = r->expect_continue = r->upgrade = 0;
    r->host_index = -1;
    r->error = PF_HTTP_WHY_NONE;
    r->error_off = 0;
}

int pf_http_parse_request(const char *buf, size_t len, const pf_http_limits *limits,
                          pf_http_request *req)
{
    const uint8_t *b = (const uint8_t *)buf;
    uint32_t n = pf_clamp_len(len), pos = 0;
    uint32_t max_rl = pf_limit_or(limits ? limits->max_request_line : 0, PF_HTTP_DEFAULT_LINE, limits);
    uint32_t max_hl = pf_limit_or(limits ? limits->max_header_line : 0, PF_HTTP_DEFAULT_LINE, limits);
    pf_errsink e = { PF_E_BAD_REQUEST, PF_E_HEADER_TOO_LARGE, &req->error, &req->error_off };
    pf_line ln = {0, 0, 0};
    int rc;

    request_reset(req);
    for (;;) {   /* empty lines before the request line are skipped (RFC 9112 §2.2) */
        rc = pf_find_line(b, n, pos, 0, max_rl, PF_E_URI_TOO_LONG,
                          PF_HTTP_WHY_REQUEST_LINE_TOO_LONG, &e, &ln);
        if (rc != 0)
            return rc;
        if (ln.end != ln.start)
            break;
        pos = ln.next;
    }
    rc = parse_request_line(b, &ln, req, &e);
    if (rc != 0)
        return rc;
    rc = pf_parse_fields(b, n, ln.next, max_hl, req->headers, &req->nheaders, &e);
    if (rc < 0)
        return rc;
    int head = rc;
    rc = request_semantics(b, req, &e);
    if (rc != 0)
        return rc;
    return head;
}
