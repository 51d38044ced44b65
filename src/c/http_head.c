/*
 * http_head.c — line framing and field-section parsing shared by the request and
 * response parsers, plus the small value grammars (lengths, lists, hosts).
 *
 * A line is located first (CRLF-terminated, within its length limit) and only then
 * validated. Everything decided depends on bytes already seen, which is what makes
 * "any prefix gives NEED_MORE or the final answer" hold for the stateless parsers.
 */
#include <string.h>

#include "http_head.h"

static const char *const why_text[PF_HTTP_WHY_MAX] = {
    [PF_HTTP_WHY_NONE] = "no error",
    [PF_HTTP_WHY_BARE_CR] = "invalid line ending: bare CR",
    [PF_HTTP_WHY_BARE_LF] = "invalid line ending: bare LF (CRLF required)",
    [PF_HTTP_WHY_NUL] = "NUL byte",
    [PF_HTTP_WHY_BAD_REQUEST_LINE] = "invalid request line",
    [PF_HTTP_WHY_BAD_METHOD] = "invalid method",
    [PF_HTTP_WHY_BAD_TARGET] = "invalid request target",
    [PF_HTTP_WHY_BAD_VERSION] = "invalid HTTP version",
    [PF_HTTP_WHY_VERSION_UNSUPPORTED] = "unsupported HTTP version",
    [PF_HTTP_WHY_REQUEST_LINE_TOO_LONG] = "too long URI",
    [PF_HTTP_WHY_HEADER_LINE_TOO_LONG] = "too long header line",
    [PF_HTTP_WHY_TOO_MANY_HEADERS] = "too many header lines",
    [PF_HTTP_WHY_OBS_FOLD] = "obsolete line folding",
    [PF_HTTP_WHY_SPACE_BEFORE_COLON] = "whitespace between header name and colon",
    [PF_HTTP_WHY_NO_COLON] = "header line without colon",
    [PF_HTTP_WHY_BAD_FIELD_NAME] = "invalid header name",
    [PF_HTTP_WHY_BAD_FIELD_VALUE] = "invalid header value",
    [PF_HTTP_WHY_NO_HOST] = "HTTP/1.1 request without \"Host\" header",
    [PF_HTTP_WHY_DUP_HOST] = "duplicate \"Host\" header",
    [PF_HTTP_WHY_BAD_HOST] = "invalid host",
    [PF_HTTP_WHY_DUP_CONTENT_LENGTH] = "duplicate \"Content-Length\" header",
    [PF_HTTP_WHY_BAD_CONTENT_LENGTH] = "invalid \"Content-Length\" header",
    [PF_HTTP_WHY_CL_AND_TE] = "\"Content-Length\" and \"Transfer-Encoding\" headers at the same time",
    [PF_HTTP_WHY_DUP_TE] = "duplicate \"Transfer-Encoding\" header",
    [PF_HTTP_WHY_TE_HTTP10] = "HTTP/1.0 request with \"Transfer-Encoding\" header",
    [PF_HTTP_WHY_UNKNOWN_TE] = "unknown \"Transfer-Encoding\"",
    [PF_HTTP_WHY_BAD_STATUS_LINE] = "invalid status line",
    [PF_HTTP_WHY_BAD_CHUNK_SIZE] = "invalid chunk size",
    [PF_HTTP_WHY_CHUNK_SIZE_OVERFLOW] = "chunk size overflow",
    [PF_HTTP_WHY_BAD_CHUNK_EXT] = "invalid chunk extension",
    [PF_HTTP_WHY_CHUNK_LINE_TOO_LONG] = "too long chunk size line",
    [PF_HTTP_WHY_BAD_CHUNK_END] = "chunk data not followed by CRLF",
    [PF_HTTP_WHY_BAD_TRAILER] = "invalid trailer line",
    [PF_HTTP_WHY_TRAILERS_TOO_LARGE] = "too large trailer section",
};

const char *pf_http_why_text(int why)
{
    if (why < 0 || why >= PF_HTTP_WHY_MAX || !why_text[why])
        return "unknown error";
    return why_text[why];
}

int pf_find_line(const uint8_t *b, uint32_t len, uint32_t start, uint32_t counted_from,
                 uint32_t max, int over_status, int over_why, const pf_errsink *e, pf_line *ln)
{
    /* Content may occupy [counted_from, counted_from + max), then CR, then LF: an LF is
     * looked for in at most max + 2 bytes. memchr is what makes this fast (it was half of
     * the parse time as a byte loop); a stray CR inside the content is reported as
     * BARE_CR by the validators, which reject '\r' as content. */
    uint64_t cap = (uint64_t)counted_from + max + 2;
    uint32_t stop = cap < len ? (uint32_t)cap : len;
    const uint8_t *lf = start < stop ? memchr(b + start, '\n', stop - start) : NULL;

    if (!lf) {
        if ((uint64_t)stop == cap)
            return pf_fail(e, over_status, over_why, start);
        return PF_NEED_MORE;
    }
    uint32_t j = (uint32_t)(lf - b);
    if (j == start || b[j - 1] != '\r')   /* RFC 9112 §2.2 lets a recipient accept a bare LF;
                                             parsers disagreeing on it is how smuggling works */
        return pf_fail(e, e->bad, PF_HTTP_WHY_BARE_LF, start);
    ln->start = start;
    ln->end = j - 1;
    ln->next = j + 1;
    return 0;
}

/* The reason for a byte that is not allowed where it stands. */
int pf_byte_why(uint8_t c, int otherwise)
{
    return c == '\r' ? PF_HTTP_WHY_BARE_CR : c == 0 ? PF_HTTP_WHY_NUL : otherwise;
}

/* Why the field name stopping at b[i] (not ':') is wrong: "Name : v" is the RFC 9112 §5.1
 * whitespace-before-colon case (a smuggling classic), "two words" has no colon at all. */
static int bad_name_why(const uint8_t *b, uint32_t i, uint32_t t)
{
    if (b[i] == 0 || b[i] == '\r')
        return pf_byte_why(b[i], 0);
    if (b[i] == ' ' || b[i] == '\t') {
        uint32_t j = i;
        while (j < t && (b[j] == ' ' || b[j] == '\t'))
            j++;
        if (j < t && b[j] == ':')
            return PF_HTTP_WHY_SPACE_BEFORE_COLON;
    }
    return memchr(b + i, ':', t - i) ? PF_HTTP_WHY_BAD_FIELD_NAME : PF_HTTP_WHY_NO_COLON;
}

/* Validates one field line [s, t) and records it. */
static int parse_field_line(const uint8_t *b, uint32_t s, uint32_t t, pf_http_header *h,
                            const pf_errsink *e)
{
    uint32_t i = s;

    if (b[s] == ' ' || b[s] == '\t')   /* obs-fold, or whitespace before the first field:
                                          RFC 9112 §5.2 allows rejecting; we always do */
        return pf_fail(e, e->bad, PF_HTTP_WHY_OBS_FOLD, s);
    while (i < t && pf_is(b[i], PF_CC_TCHAR))
        i++;
    if (i == t)
        return pf_fail(e, e->bad, PF_HTTP_WHY_NO_COLON, s);
    if (b[i] != ':')
        return pf_fail(e, e->bad, bad_name_why(b, i, t), s);
    if (i == s)
        return pf_fail(e, e->bad, PF_HTTP_WHY_BAD_FIELD_NAME, s);
    h->name.off = s;
    h->name.len = i - s;

    uint32_t v = i + 1;
    while (v < t && (b[v] == ' ' || b[v] == '\t'))
        v++;
    for (uint32_t j = v; j < t; j++)
        if (!pf_is(b[j], PF_CC_VALUE))
            return pf_fail(e, e->bad, pf_byte_why(b[j], PF_HTTP_WHY_BAD_FIELD_VALUE), s);
    uint32_t w = t;
    while (w > v && (b[w - 1] == ' ' || b[w - 1] == '\t'))
        w--;
    h->value.off = v;
    h->value.len = w - v;
    return 0;
}

int pf_parse_fields(const uint8_t *b, uint32_t len, uint32_t pos, uint32_t max_line,
                    pf_http_header *hdrs, uint32_t *nh, const pf_errsink *e)
{
    *nh = 0;
    for (;;) {
        pf_line ln = {0, 0, 0};
        int rc = pf_find_line(b, len, pos, pos, max_line, e->too_large,
                              PF_HTTP_WHY_HEADER_LINE_TOO_LONG, e, &ln);
        if (rc != 0)
            return rc;
        if (ln.end == ln.start)
            return (int)ln.next;            /* the empty line ending the head */
        if (*nh == PF_HTTP_MAX_HEADERS)
            return pf_fail(e, e->too_large, PF_HTTP_WHY_TOO_MANY_HEADERS, ln.start);
        rc = parse_field_line(b, ln.start, ln.end, &hdrs[*nh], e);
        if (rc != 0)
            return rc;
        (*nh)++;
        pos = ln.next;
    }
}

int64_t pf_parse_length(const uint8_t *b, uint32_t n)
{
    int64_t v = 0;

    if (n == 0)
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        if (b[i] < '0' || b[i] > '9')
            return -1;
        if (v > (INT64_MAX - 9) / 10)   /* nginx's ngx_atoof bound; overflow is a 400 */
            return -1;
        v = v * 10 + (b[i] - '0');
    }
    return v;
}

static inline int is_ows(uint8_t c) { return c == ' ' || c == '\t'; }

int pf_list_has(const uint8_t *b, uint32_t n, const char *tok, uint32_t toklen)
{
    uint32_t i = 0;

    while (i <= n) {
        uint32_t s = i, t;
        while (i < n && b[i] != ',')
            i++;
        t = i;
        while (s < t && is_ows(b[s]))
            s++;
        while (t > s && is_ows(b[t - 1]))
            t--;
        if (pf_ieq(b + s, t - s, tok, toklen))
            return 1;
        i++;   /* past the comma (or past the end) */
    }
    return 0;
}

pf_span pf_list_last(const uint8_t *b, uint32_t off, uint32_t n)
{
    uint32_t s = n, t = n;
    pf_span sp;

    while (s > 0 && b[off + s - 1] != ',')
        s--;
    while (s < t && is_ows(b[off + s]))
        s++;
    while (t > s && is_ows(b[off + t - 1]))
        t--;
    sp.off = off + s;
    sp.len = t - s;
    return sp;
}

int pf_host_ok(const uint8_t *b, uint32_t n)
{
    if (n == 0)                       /* nginx: empty Host is "invalid host header" */
        return 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!pf_is(b[i], PF_CC_HOST))
            return 0;
        if (b[i] == '.' && i + 1 < n && b[i + 1] == '.')   /* as nginx: $host may name a dir */
            return 0;
    }
    return 1;
}

int pf_http_header_index(const char *buf, const pf_http_header *headers, uint32_t nheaders,
                         const char *name, size_t name_len, uint32_t from)
{
    const uint8_t *b = (const uint8_t *)buf;

    for (uint32_t k = from; k < nheaders; k++) {
        const pf_http_header *h = &headers[k];
        if (h->name.len != name_len)
            continue;
        uint32_t i = 0;
        while (i < name_len && pf_lower(b[h->name.off + i]) == pf_lower((uint8_t)name[i]))
            i++;
        if (i == name_len)
            return (int)k;
    }
    return -1;
}
