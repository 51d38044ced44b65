/*
 * http_response.c — stateless zero-copy parser for an upstream's HTTP/1.x response head
 * (the proxy's side). Same contract as the request parser (pf.h); anything malformed is
 * PF_E_BAD_GATEWAY so a broken backend becomes a 502, never a crash or a desync.
 */
#include <string.h>

#include "http_head.h"

/* HTTP/1.x SP 3DIGIT [SP reason-phrase]; the missing " reason" that some backends send
 * is accepted, as nginx's ngx_http_parse_status_line does. */
static int parse_status_line(const uint8_t *b, const pf_line *ln, pf_http_response *r,
                             const pf_errsink *e)
{
    uint32_t s = ln->start, t = ln->end;

    if (memchr(b + s, '\r', t - s))
        return pf_fail(e, e->bad, PF_HTTP_WHY_BARE_CR, s);
    if (t - s < 12 || memcmp(b + s, "HTTP/1.", 7) != 0 || b[s + 7] < '0' || b[s + 7] > '9'
        || b[s + 8] != ' ')
        return pf_fail(e, e->bad, PF_HTTP_WHY_BAD_STATUS_LINE, s);
    r->version_minor = b[s + 7] == '0' ? 0 : 1;
    const uint8_t *d = b + s + 9;
    if (d[0] < '1' || d[0] > '9' || d[1] < '0' || d[1] > '9' || d[2] < '0' || d[2] > '9')
        return pf_fail(e, e->bad, PF_HTTP_WHY_BAD_STATUS_LINE, s);
    r->status = (d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0');
    uint32_t i = s + 12;
    r->reason.off = i;
    r->reason.len = 0;
    if (i == t)
        return 0;
    if (b[i] != ' ')
        return pf_fail(e, e->bad, PF_HTTP_WHY_BAD_STATUS_LINE, s);
    for (uint32_t j = i + 1; j < t; j++)
        if (!pf_is(b[j], PF_CC_VALUE))
            return pf_fail(e, e->bad, b[j] == 0 ? PF_HTTP_WHY_NUL : PF_HTTP_WHY_BAD_STATUS_LINE, s);
    r->reason.off = i + 1;
    r->reason.len = t - (i + 1);
    return 0;
}

static int name_is(const uint8_t *b, const pf_http_header *h, const char *lit, uint32_t n)
{
    return pf_ieq(b + h->name.off, h->name.len, lit, n);
}
#define NAME_IS(b, h, lit) name_is((b), (h), (lit), sizeof(lit) - 1)

/* RFC 9112 §6.3 framing for a response to a non-HEAD request. */
static int response_semantics(const uint8_t *b, pf_http_response *r, const pf_errsink *e)
{
    int conn_close = 0, conn_ka = 0, have_te = 0;
    pf_span last_coding = {0, 0};

    for (uint32_t k = 0; k < r->nheaders; k++) {
        const pf_http_header *h = &r->headers[k];
        const uint8_t *v = b + h->value.off;
        uint32_t vl = h->value.len;

        if (NAME_IS(b, h, "content-length")) {
            int64_t n = pf_parse_length(v, vl);
            if (n < 0)
                return pf_fail(e, e->bad, PF_HTTP_WHY_BAD_CONTENT_LENGTH, h->name.off);
            /* identical repeats are harmless (RFC 9110 §8.6); differing ones are a 502 */
            if (r->content_length >= 0 && r->content_length != n)
                return pf_fail(e, e->bad, PF_HTTP_WHY_DUP_CONTENT_LENGTH, h->name.off);
            r->content_length = n;
        } else if (NAME_IS(b, h, "transfer-encoding")) {
            /* several TE lines form one list (RFC 9110 §5.3); the final coding decides */
            have_te = 1;
            last_coding = pf_list_last(b, h->value.off, vl);
        } else if (NAME_IS(b, h, "connection")) {
            conn_close |= pf_list_has(v, vl, "close", 5);
            conn_ka |= pf_list_has(v, vl, "keep-alive", 10);
        }
    }
    if (have_te && r->content_length >= 0)   /* nginx: "upstream sent both" -> 502 */
        return pf_fail(e, e->bad, PF_HTTP_WHY_CL_AND_TE, 0);

    r->keep_alive = r->version_minor >= 1 ? !conn_close : (conn_ka && !conn_close);
    if (r->status < 200 || r->status == 204 || r->status == 304) {
        r->body = PF_BODY_NONE;
    } else if (have_te) {
        r->chunked = PF_IEQ(b + last_coding.off, last_coding.len, "chunked");
        r->body = r->chunked ? PF_BODY_CHUNKED : PF_BODY_CLOSE;   /* RFC 9112 §6.3 (4) */
    } else if (r->content_length >= 0) {
        r->body = PF_BODY_LENGTH;
    } else {
        r->body = PF_BODY_CLOSE;
    }
    if (r->body == PF_BODY_CLOSE)
        r->keep_alive = 0;
    return 0;
}

static void response_reset(pf_http_response *resp)
{
    memset(resp, 0, offsetof(pf_http_response, headers));
    resp->content_length = -1;
    resp->body = PF_BODY_NONE;
    resp->chunked = resp->keep_alive = 0;
    resp->error = PF_HTTP_WHY_NONE;
    resp->error_off = 0;
}

/* "Status: NNN [reason]" of a CGI-style head; 0 or -1. */
static int cgi_status(const uint8_t *b, const pf_http_header *h, pf_http_response *r)
{
    const uint8_t *v = b + h->value.off;
    uint32_t n = h->value.len;

    if (n < 3 || v[0] < '1' || v[0] > '9' || v[1] < '0' || v[1] > '9' || v[2] < '0' || v[2] > '9')
        return -1;
    if (n > 3 && v[3] != ' ')
        return -1;
    r->status = (v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0');
    r->reason.off = h->value.off + (n > 3 ? 4 : 3);
    r->reason.len = n > 3 ? n - 4 : 0;
    return 0;
}

int pf_http_parse_cgi_response(const char *buf, size_t len, const pf_http_limits *limits,
                               pf_http_response *resp)
{
    const uint8_t *b = (const uint8_t *)buf;
    uint32_t n = pf_clamp_len(len);
    uint32_t max_hl = pf_limit_or(limits ? limits->max_header_line : 0, PF_HTTP_DEFAULT_LINE, limits);
    pf_errsink e = { PF_E_BAD_GATEWAY, PF_E_BAD_GATEWAY, &resp->error, &resp->error_off };
    int rc, status = -1, location = -1;

    response_reset(resp);
    rc = pf_parse_fields(b, n, 0, max_hl, resp->headers, &resp->nheaders, &e);
    if (rc < 0)
        return rc;
    int head = rc;
    for (uint32_t k = 0; k < resp->nheaders; k++) {
        if (NAME_IS(b, &resp->headers[k], "status") && status < 0)
            status = (int)k;
        else if (NAME_IS(b, &resp->headers[k], "location") && location < 0)
            location = (int)k;
    }
    resp->version_minor = 1;
    resp->reason.off = 0;
    if (status >= 0) {
        if (cgi_status(b, &resp->headers[status], resp) != 0)
            return pf_fail(&e, e.bad, PF_HTTP_WHY_BAD_STATUS_LINE, resp->headers[status].name.off);
    } else {
        resp->status = location >= 0 ? 302 : 200;   /* as ngx_http_uwsgi_process_header */
    }
    rc = response_semantics(b, resp, &e);
    if (rc != 0)
        return rc;
    return head;
}

int pf_http_parse_response(const char *buf, size_t len, const pf_http_limits *limits,
                           pf_http_response *resp)
{
    const uint8_t *b = (const uint8_t *)buf;
    uint32_t n = pf_clamp_len(len);
    uint32_t max_sl = pf_limit_or(limits ? limits->max_request_line : 0, PF_HTTP_DEFAULT_LINE, limits);
    uint32_t max_hl = pf_limit_or(limits ? limits->max_header_line : 0, PF_HTTP_DEFAULT_LINE, limits);
    pf_errsink e = { PF_E_BAD_GATEWAY, PF_E_BAD_GATEWAY, &resp->error, &resp->error_off };
    pf_line ln = {0, 0, 0};
    int rc;

    response_reset(resp);
    rc = pf_find_line(b, n, 0, 0, max_sl, PF_E_BAD_GATEWAY, PF_HTTP_WHY_BAD_STATUS_LINE, &e, &ln);
    if (rc != 0)
        return rc;
    rc = parse_status_line(b, &ln, resp, &e);
    if (rc != 0)
        return rc;
    rc = pf_parse_fields(b, n, ln.next, max_hl, resp->headers, &resp->nheaders, &e);
    if (rc < 0)
        return rc;
    int head = rc;
    rc = response_semantics(b, resp, &e);
    if (rc != 0)
        return rc;
    return head;
}
