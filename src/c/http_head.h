/*
 * http_head.h — pieces shared by the request and response head parsers
 * (private to src/c/http_*.c; the public contract is in pf.h).
 */
#ifndef PF_HTTP_HEAD_H
#define PF_HTTP_HEAD_H

#include "pf.h"
#include "http_chars.h"

/* Where one CRLF-terminated line ends. */
typedef struct {
    uint32_t start;   /* first byte of the line */
    uint32_t end;     /* index of its CR (content is [start, end)) */
    uint32_t next;    /* index after its LF */
} pf_line;

/* Error sink: the status to return for this message kind and where to note why. */
typedef struct {
    int bad;          /* PF_E_BAD_REQUEST or PF_E_BAD_GATEWAY */
    int too_large;    /* PF_E_HEADER_TOO_LARGE or PF_E_BAD_GATEWAY */
    int *why;
    uint32_t *why_off;
} pf_errsink;

static inline int pf_fail(const pf_errsink *e, int status, int why, uint32_t off)
{
    *e->why = why;
    *e->why_off = off;
    return status;
}

/* Finds the line starting at `start`: 0 and *ln filled, PF_NEED_MORE, or an error.
 * `counted_from` is where the length limit starts counting (the line's start, or 0 for a
 * request line so that leading empty lines count). */
int pf_find_line(const uint8_t *b, uint32_t len, uint32_t start, uint32_t counted_from,
                 uint32_t max, int over_status, int over_why, const pf_errsink *e, pf_line *ln);

/* PF_HTTP_WHY_BARE_CR for '\r', PF_HTTP_WHY_NUL for NUL, else `otherwise`. */
int pf_byte_why(uint8_t c, int otherwise);

/* Parses field lines from `pos` through the empty line; returns the index after it,
 * PF_NEED_MORE or an error. Fills hdrs[0..*nh). */
int pf_parse_fields(const uint8_t *b, uint32_t len, uint32_t pos, uint32_t max_line,
                    pf_http_header *hdrs, uint32_t *nh, const pf_errsink *e);

/* "1*DIGIT" without sign or spaces, < 2^63: the value, or -1. */
int64_t pf_parse_length(const uint8_t *b, uint32_t n);

/* Does the comma-separated list b[0..n) contain `tok` (lower-case) as an element? */
int pf_list_has(const uint8_t *b, uint32_t n, const char *tok, uint32_t toklen);

/* The last element of a comma-separated list, OWS trimmed (may be empty). */
pf_span pf_list_last(const uint8_t *b, uint32_t off, uint32_t n);

/* A Host value or absolute-form authority: non-empty, host bytes only, no "..". */
int pf_host_ok(const uint8_t *b, uint32_t n);

/* Clamp for sizes: spans are 32-bit and return values are int. */
#define PF_HTTP_MAX_BUF 0x7fffffffu

static inline uint32_t pf_clamp_len(size_t len)
{
    return len > PF_HTTP_MAX_BUF ? PF_HTTP_MAX_BUF : (uint32_t)len;
}

static inline uint32_t pf_limit_or(uint32_t v, uint32_t dflt, const pf_http_limits *l)
{
    if (!l)
        return dflt;
    return v ? v : PF_HTTP_MAX_BUF;
}

#define PF_HTTP_DEFAULT_LINE 8192

#endif /* PF_HTTP_HEAD_H */
