/*
 * pf.h — the whole C <-> Python contract of pyfront's core.
 *
 * Only the region between PF_CDEF_BEGIN and PF_CDEF_END is read by cffi
 * (src/pyfront/_build/ffi_build.py), so it holds plain declarations: fixed-width
 * integer types, POD structs, opaque handles, integer #defines. Each concern owns
 * one section below; add declarations to your own section only.
 *
 * Status convention for every parser: return >= 0 = bytes consumed (complete),
 * PF_NEED_MORE = feed more bytes, other negatives = a PF_E* error code.
 */
#ifndef PF_H
#define PF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* PF_CDEF_BEGIN */

/* ---- common ---------------------------------------------------------- */
#define PF_ABI_VERSION 1
#define PF_NEED_MORE -1

const char *pf_version(void);
int pf_abi_version(void);

/* ---- http parser (http_parser.c, http_response.c, http_chunked.c) ------ */
/*
 * Zero-copy, stateless HTTP/1.x head parsers (picohttpparser's model): the
 * caller keeps the bytes of a connection in one buffer and calls again with
 * the WHOLE buffer (from the first byte of the message) whenever more bytes
 * arrive. Nothing is allocated or copied: every pf_span is an offset/length
 * into that buffer, valid while the buffer is. No globals; safe in any thread.
 *
 * Return contract of pf_http_parse_request / pf_http_parse_response:
 *   > 0            the head is complete; the value is its length in bytes
 *                  (through the blank line, including any leading empty lines
 *                  skipped before a request line). The body / the next
 *                  pipelined request starts at buf + value.
 *   PF_NEED_MORE   every byte so far is valid but the head is not complete.
 *                  When the caller's buffer is full at this point it answers
 *                  400 "Request Header Or Cookie Too Large" (as nginx does
 *                  when large_client_header_buffers run out); a too-long
 *                  request line is already reported here as PF_E_URI_TOO_LONG.
 *   PF_E_*         the message is invalid; ->error holds a PF_HTTP_WHY_* code
 *                  (pf_http_why_text() gives the log text) and ->error_off the
 *                  offset of the offending line. The connection must be closed
 *                  after the error response (RFC 9112 §2.2, §11.2).
 * Decisions depend only on bytes already seen, so feeding any prefix of an
 * input gives PF_NEED_MORE or exactly the result of the whole input.
 * Strict RFC 9112: every line ends in CRLF (a bare LF or bare CR anywhere in
 * the head is an error — the bare-LF tolerance of RFC 9112 §2.2 is refused
 * because parsers disagreeing on it is a request-smuggling vector).
 */
typedef struct { uint32_t off; uint32_t len; } pf_span;
typedef struct { pf_span name; pf_span value; } pf_http_header;   /* value: OWS trimmed */

#define PF_HTTP_MAX_HEADERS 100   /* a 101st field line -> PF_E_HEADER_TOO_LARGE */

/* errors (negative, distinct from PF_NEED_MORE); each maps to the status nginx sends */
#define PF_E_BAD_REQUEST      -400   /* 400 */
#define PF_E_URI_TOO_LONG     -414   /* 414 (request line longer than limits->max_request_line) */
#define PF_E_HEADER_TOO_LARGE -431   /* sent as nginx's 400 "Request Header Or Cookie Too Large" */
#define PF_E_VERSION          -505   /* 505: HTTP/2.0, HTTP/3.0, HTTP/11.1 ... (major > 1) */
#define PF_E_NOT_IMPLEMENTED  -501   /* 501: a Transfer-Encoding other than "chunked" */
#define PF_E_BAD_GATEWAY      -502   /* response parser: the upstream sent garbage */

/* why a message was refused (->error); text via pf_http_why_text() */
#define PF_HTTP_WHY_NONE               0
#define PF_HTTP_WHY_BARE_CR            1
#define PF_HTTP_WHY_BARE_LF            2
#define PF_HTTP_WHY_NUL                3
#define PF_HTTP_WHY_BAD_REQUEST_LINE   4   /* spacing / missing parts of the request line */
#define PF_HTTP_WHY_BAD_METHOD         5
#define PF_HTTP_WHY_BAD_TARGET         6
#define PF_HTTP_WHY_BAD_VERSION        7
#define PF_HTTP_WHY_VERSION_UNSUPPORTED 8
#define PF_HTTP_WHY_REQUEST_LINE_TOO_LONG 9
#define PF_HTTP_WHY_HEADER_LINE_TOO_LONG 10
#define PF_HTTP_WHY_TOO_MANY_HEADERS  11
#define PF_HTTP_WHY_OBS_FOLD          12   /* field line starting with SP/HTAB */
#define PF_HTTP_WHY_SPACE_BEFORE_COLON 13
#define PF_HTTP_WHY_NO_COLON          14
#define PF_HTTP_WHY_BAD_FIELD_NAME    15
#define PF_HTTP_WHY_BAD_FIELD_VALUE   16
#define PF_HTTP_WHY_NO_HOST           17
#define PF_HTTP_WHY_DUP_HOST          18
#define PF_HTTP_WHY_BAD_HOST          19
#define PF_HTTP_WHY_DUP_CONTENT_LENGTH 20
#define PF_HTTP_WHY_BAD_CONTENT_LENGTH 21
#define PF_HTTP_WHY_CL_AND_TE         22
#define PF_HTTP_WHY_DUP_TE            23
#define PF_HTTP_WHY_TE_HTTP10         24
#define PF_HTTP_WHY_UNKNOWN_TE        25
#define PF_HTTP_WHY_BAD_STATUS_LINE   26
#define PF_HTTP_WHY_BAD_CHUNK_SIZE    27
#define PF_HTTP_WHY_CHUNK_SIZE_OVERFLOW 28
#define PF_HTTP_WHY_BAD_CHUNK_EXT     29
#define PF_HTTP_WHY_CHUNK_LINE_TOO_LONG 30
#define PF_HTTP_WHY_BAD_CHUNK_END     31   /* chunk data not followed by CRLF */
#define PF_HTTP_WHY_BAD_TRAILER       32
#define PF_HTTP_WHY_TRAILERS_TOO_LARGE 33
#define PF_HTTP_WHY_MAX               34

/* method ids (method_id); anything else that is a valid token is PF_M_OTHER */
#define PF_M_OTHER   0
#define PF_M_GET     1
#define PF_M_HEAD    2
#define PF_M_POST    3
#define PF_M_PUT     4
#define PF_M_DELETE  5
#define PF_M_OPTIONS 6
#define PF_M_PATCH   7
#define PF_M_TRACE   8
#define PF_M_CONNECT 9

/* request-target forms (RFC 9112 §3.2); authority-form is refused with 400 as nginx does */
#define PF_TARGET_ORIGIN   0   /* "/path?query" */
#define PF_TARGET_ABSOLUTE 1   /* "http://host[:port]/path?query" (http/https only) */
#define PF_TARGET_ASTERISK 2   /* "*", OPTIONS only */

/* message body framing (RFC 9112 §6.3) */
#define PF_BODY_NONE    0   /* no body: request without CL/TE; 1xx/204/304 response */
#define PF_BODY_LENGTH  1   /* content_length bytes follow (may be 0) */
#define PF_BODY_CHUNKED 2   /* decode with pf_chunked_feed */
#define PF_BODY_CLOSE   3   /* response only: body runs until the upstream closes */

typedef struct {
    pf_span method, target;   /* target: raw, undecoded (nginx's $request_uri) */
    pf_span path;             /* target up to the first '?' or '#'; for absolute-form the part
                                 after the authority; len 0 means "/" (e.g. "http://h" or "*") */
    pf_span query;            /* after '?' up to '#' (or end), no '?'; len 0 when none */
    pf_span host;             /* absolute-form authority if any (RFC 9112 §3.2.2: it wins),
                                 else the Host value; may include ":port"; len 0 when none */
    int method_id;            /* PF_M_* */
    int target_form;          /* PF_TARGET_* */
    int version_minor;        /* 0 or 1: "HTTP/1.2".."HTTP/1.9" are served as 1.1 (RFC 9110
                                 §2.5, like nginx) */
    uint32_t nheaders;
    pf_http_header headers[PF_HTTP_MAX_HEADERS];
    /* framing and connection facts (RFC 9112 §6, §9.3) */
    int64_t content_length;   /* -1 when absent */
    int body;                 /* PF_BODY_NONE / LENGTH / CHUNKED */
    int chunked;              /* Transfer-Encoding: chunked */
    int keep_alive;           /* 1.1: unless "Connection: close"; 1.0: only "keep-alive" */
    int expect_continue;      /* "Expect: 100-continue" on HTTP/1.1 */
    int upgrade;              /* Connection has "upgrade" and an Upgrade header is present */
    int host_index;           /* index into headers of Host, -1 if none */
    int error;                /* PF_HTTP_WHY_* when the result is an error, else 0 */
    uint32_t error_off;       /* offset of the line holding the error */
} pf_http_request;

typedef struct {
    uint32_t max_request_line;   /* bytes before the request line's CRLF (leading empty lines
                                    included); more -> PF_E_URI_TOO_LONG. 0 = no limit */
    uint32_t max_header_line;    /* bytes of one field line before its CRLF; more ->
                                    PF_E_HEADER_TOO_LARGE (502 for responses). 0 = no limit */
} pf_http_limits;

/* limits may be NULL: 8192 / 8192 (nginx's large_client_header_buffers 4 8k). */
int pf_http_parse_request(const char *buf, size_t len, const pf_http_limits *limits,
                          pf_http_request *req);

typedef struct {
    int version_minor;        /* HTTP/1.0 or 1.x (x >= 1 -> 1) */
    int status;               /* 100..999 */
    pf_span reason;           /* may be empty ("HTTP/1.1 200\r\n" is accepted, as nginx does) */
    uint32_t nheaders;
    pf_http_header headers[PF_HTTP_MAX_HEADERS];
    int64_t content_length;   /* -1 when absent */
    int body;                 /* PF_BODY_*; assumes a non-HEAD request: after HEAD the caller
                                 treats every response as PF_BODY_NONE */
    int chunked;              /* final transfer coding is chunked */
    int keep_alive;           /* the upstream connection may be reused after the body */
    int error;                /* PF_HTTP_WHY_* when the result is an error */
    uint32_t error_off;
} pf_http_response;

/* Upstream response head; same contract, every error is PF_E_BAD_GATEWAY. limits may be
 * NULL (defaults as above; max_request_line bounds the status line). A 1xx other than 101
 * is an interim head: the caller skips it (return value) and parses again. */
int pf_http_parse_response(const char *buf, size_t len, const pf_http_limits *limits,
                           pf_http_response *resp);

/* Log text for a PF_HTTP_WHY_* code, e.g. "invalid line ending: bare LF (CRLF required)". */
const char *pf_http_why_text(int why);

/* Index of the first header at index >= from whose name equals name[0..name_len)
 * case-insensitively (name need not be lower case), or -1. Works on req->headers and
 * resp->headers alike; call again with from = found + 1 for repeated fields. */
int pf_http_header_index(const char *buf, const pf_http_header *headers, uint32_t nheaders,
                         const char *name, size_t name_len, uint32_t from);

/*
 * Incremental chunked-body decoder (RFC 9112 §7.1), caller-owned state, no copies.
 * Unlike the head parsers it is stateful: feed each byte once. One call consumes framing
 * bytes and at most ONE run of payload bytes; it returns the bytes consumed (>= 0) and sets
 * (*data_off, *data_len) to the payload inside buf[0 .. consumed) (length 0 = framing only).
 * Loop while bytes remain and !*done; a call with len > 0 before done consumes >= 1 byte.
 * *done = 1 once the last chunk and the trailers (read, checked, discarded) are consumed;
 * bytes after that (a pipelined request) are left unconsumed, later calls return 0.
 * Errors: PF_E_BAD_REQUEST (c->error = PF_HTTP_WHY_*) — sticky; a proxy maps it to 502 for
 * an upstream body. Size: 1*HEXDIG, < 2^63; the size line (with extensions) is at most
 * PF_CHUNK_LINE_MAX bytes and the trailer section at most PF_CHUNK_TRAILERS_MAX bytes.
 * c->total counts payload bytes so far (for client_max_body_size).
 */
#define PF_CHUNK_LINE_MAX     4096
#define PF_CHUNK_TRAILERS_MAX 16384
typedef struct {
    int state;
    int error;
    uint64_t remaining;       /* payload bytes left in the current chunk */
    uint64_t total;           /* payload bytes decoded so far */
    uint32_t line;            /* bytes of the current size line / trailer section */
} pf_chunked;
void pf_chunked_init(pf_chunked *c);
int pf_chunked_feed(pf_chunked *c, const char *buf, size_t len,
                    size_t *data_off, size_t *data_len, int *done);

/* ---- uwsgi packets (uwsgi.c) ------------------------------------------ */

/* ---- event loop (loop.c) ---------------------------------------------- */

/* ---- accept mutex (accept_mutex.c) ------------------------------------ */

/* ---- router / route table (router.c) ---------------------------------- */

/* ---- static files (static.c) ------------------------------------------ */

/* ---- front worker (worker.c, conn.c) ---------------------------------- */

/* ---- access log (access_log.c) ---------------------------------------- */

/* ---- proxy (proxy.c) -------------------------------------------------- */

/* ---- app server I/O (app_io.c) ---------------------------------------- */

/* PF_CDEF_END */

#endif /* PF_H */
