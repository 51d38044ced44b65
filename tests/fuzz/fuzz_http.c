/*
 * fuzz_http.c — fuzz target for the HTTP parsers (libFuzzer entry point).
 *
 * Build with libFuzzer (clang): compile src/c/http_{head,parser,response,chunked}.c and this
 * file with -fsanitize=fuzzer,address,undefined -Isrc/c, then run it on tests/corpus/http.
 * Without clang, tests/fuzz/driver.c supplies main() with a small seeded mutator so the
 * same target runs under gcc + ASan/UBSan (tests/fuzz/test_fuzz_http.py does that).
 *
 * Beyond "no crash", every input checks the contract: the status is one of the documented
 * ones, spans stay inside the input, a shorter prefix never decides differently, and the
 * chunked decoder gives the same payload whether fed whole or in small pieces.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pf.h"

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "fuzz_http: %s:%d: %s\n", \
                        __FILE__, __LINE__, #cond); abort(); } } while (0)

static int known_status(int rc)
{
    return rc == PF_NEED_MORE || rc == PF_E_BAD_REQUEST || rc == PF_E_URI_TOO_LONG
        || rc == PF_E_HEADER_TOO_LARGE || rc == PF_E_VERSION || rc == PF_E_NOT_IMPLEMENTED;
}

static void span_ok(pf_span s, size_t size) { CHECK((size_t)s.off + s.len <= size); }

static void check_request(const uint8_t *d, size_t size, const pf_http_limits *lim)
{
    static __thread pf_http_request r, p;   /* big structs off the fuzzer's stack */
    int rc = pf_http_parse_request((const char *)d, size, lim, &r);

    CHECK(rc > 0 ? (size_t)rc <= size : known_status(rc));
    CHECK((rc < 0 && rc != PF_NEED_MORE) == (r.error != PF_HTTP_WHY_NONE));
    if (rc > 0) {
        span_ok(r.method, rc); span_ok(r.target, rc); span_ok(r.path, rc);
        span_ok(r.query, rc); span_ok(r.host, rc);
        CHECK(r.nheaders <= PF_HTTP_MAX_HEADERS);
        for (uint32_t i = 0; i < r.nheaders; i++) {
            span_ok(r.headers[i].name, rc);
            span_ok(r.headers[i].value, rc);
            CHECK(r.headers[i].name.len > 0);
        }
        CHECK(r.version_minor == 0 || r.version_minor == 1);
        CHECK(r.body != PF_BODY_LENGTH || r.content_length >= 0);
        CHECK(r.chunked == (r.body == PF_BODY_CHUNKED));
    }
    /* prefixes: NEED_MORE or the same decision */
    size_t cuts[3] = { size / 2, size ? size - 1 : 0, size / 3 };
    for (int k = 0; k < 3; k++) {
        int prc = pf_http_parse_request((const char *)d, cuts[k], lim, &p);
        CHECK(prc == PF_NEED_MORE || (prc == rc && p.error == r.error));
    }
}

static void check_response(const uint8_t *d, size_t size)
{
    static __thread pf_http_response r, p;
    int rc = pf_http_parse_response((const char *)d, size, NULL, &r);

    CHECK(rc > 0 ? (size_t)rc <= size : (rc == PF_NEED_MORE || rc == PF_E_BAD_GATEWAY));
    if (rc > 0) {
        CHECK(r.status >= 100 && r.status <= 999);
        span_ok(r.reason, rc);
        for (uint32_t i = 0; i < r.nheaders; i++)
            span_ok(r.headers[i].value, rc);
    }
    int prc = pf_http_parse_response((const char *)d, size / 2, NULL, &p);
    CHECK(prc == PF_NEED_MORE || prc == rc);

    rc = pf_http_parse_cgi_response((const char *)d, size, NULL, &r);
    CHECK(rc > 0 ? (size_t)rc <= size : (rc == PF_NEED_MORE || rc == PF_E_BAD_GATEWAY));
    if (rc > 0) {
        CHECK(r.status >= 100 && r.status <= 999);
        span_ok(r.reason, rc);
    }
    prc = pf_http_parse_cgi_response((const char *)d, size / 2, NULL, &p);
    CHECK(prc == PF_NEED_MORE || prc == rc);
}

/* Decodes d[0..size) in pieces of `step` (0 = whole); returns a hash of the payload. */
static uint64_t chunked_run(const uint8_t *d, size_t size, size_t step, int *result, uint64_t *total)
{
    pf_chunked c;
    uint64_t h = 1469598103934665603ull;
    size_t pos = 0;

    pf_chunked_init(&c);
    *result = 0;
    while (pos < size) {
        size_t n = step ? (size - pos < step ? size - pos : step) : size - pos, off, len;
        int done = 0, rc = pf_chunked_feed(&c, (const char *)d + pos, n, &off, &len, &done);
        if (rc < 0) { *result = c.error; break; }
        CHECK((size_t)rc <= n && off + len <= (size_t)rc);
        CHECK(rc > 0 || done);
        for (size_t i = 0; i < len; i++)
            h = (h ^ d[pos + off + i]) * 1099511628211ull;
        pos += (size_t)rc;
        if (done) { *result = -1; break; }
    }
    *total = c.total;
    return h;
}

static void check_chunked(const uint8_t *d, size_t size)
{
    int r1, r2;
    uint64_t t1, t2;
    uint64_t h1 = chunked_run(d, size, 0, &r1, &t1);
    uint64_t h2 = chunked_run(d, size, 1 + size % 7, &r2, &t2);
    CHECK(r1 == r2 && h1 == h2 && t1 == t2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pf_http_limits lim = { 64, 64 };

    check_request(data, size, NULL);
    check_request(data, size, &lim);
    check_response(data, size);
    check_chunked(data, size);
    /* a request head followed by its chunked body, as the front would see it */
    const uint8_t *sep = size >= 4 ? memmem(data, size, "\r\n\r\n", 4) : NULL;
    if (sep)
        check_chunked(sep + 4, size - (size_t)(sep + 4 - data));
    return 0;
}
