/*
 * http_chars.h — byte classes shared by the HTTP parsers (private to src/c/http_*.c).
 * One const table, no state. Classes follow RFC 9110 §5.1/§5.5 and RFC 3986.
 */
#ifndef PF_HTTP_CHARS_H
#define PF_HTTP_CHARS_H

#include <stdint.h>

#define PF_CC_TCHAR  0x01  /* token: ALPHA DIGIT ! # $ % & ' * + - . ^ _ ` | ~ */
#define PF_CC_VALUE  0x02  /* field-value byte: HTAB SP VCHAR obs-text (no CTL, no DEL) */
#define PF_CC_TARGET 0x04  /* request-target byte: VCHAR obs-text (no SP, CTL, DEL); nginx
                              also accepts raw UTF-8 in the target, browsers' curl's do send it */
#define PF_CC_HOST   0x08  /* reg-name / IP-literal / port: unreserved sub-delims % : [ ] */
#define PF_CC_HEX    0x10

#define PF_CC_RANGE(a, b, f) [a ... b] = (f)

/* Designated range initialisers (GNU C); later entries override earlier ones per byte,
 * so the table is built up from the widest class. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverride-init"
static const uint8_t pf_cc[256] = {
    PF_CC_RANGE(0x21, 0x7e, PF_CC_VALUE | PF_CC_TARGET),
    PF_CC_RANGE(0x80, 0xff, PF_CC_VALUE | PF_CC_TARGET),
    [' '] = PF_CC_VALUE, ['\t'] = PF_CC_VALUE,
    PF_CC_RANGE('0', '9', PF_CC_VALUE | PF_CC_TARGET | PF_CC_TCHAR | PF_CC_HOST | PF_CC_HEX),
    PF_CC_RANGE('a', 'f', PF_CC_VALUE | PF_CC_TARGET | PF_CC_TCHAR | PF_CC_HOST | PF_CC_HEX),
    PF_CC_RANGE('A', 'F', PF_CC_VALUE | PF_CC_TARGET | PF_CC_TCHAR | PF_CC_HOST | PF_CC_HEX),
    PF_CC_RANGE('g', 'z', PF_CC_VALUE | PF_CC_TARGET | PF_CC_TCHAR | PF_CC_HOST),
    PF_CC_RANGE('G', 'Z', PF_CC_VALUE | PF_CC_TARGET | PF_CC_TCHAR | PF_CC_HOST),
    /* tchar and host */
    ['!'] = 0x0f, ['$'] = 0x0f, ['%'] = 0x0f, ['&'] = 0x0f, ['\''] = 0x0f, ['*'] = 0x0f,
    ['+'] = 0x0f, ['-'] = 0x0f, ['.'] = 0x0f, ['_'] = 0x0f, ['~'] = 0x0f,
    /* tchar only */
    ['#'] = 0x07, ['^'] = 0x07, ['`'] = 0x07, ['|'] = 0x07,
    /* host only (sub-delims, port and IP-literal punctuation) */
    ['('] = 0x0e, [')'] = 0x0e, [','] = 0x0e, [';'] = 0x0e, ['='] = 0x0e,
    [':'] = 0x0e, ['['] = 0x0e, [']'] = 0x0e,
};
#pragma GCC diagnostic pop

static inline int pf_is(uint8_t c, uint8_t cls) { return (pf_cc[c] & cls) != 0; }

static inline uint8_t pf_lower(uint8_t c) { return (c >= 'A' && c <= 'Z') ? (uint8_t)(c | 0x20) : c; }

/* case-insensitive compare of b[0..n) with a lower-case literal of length n */
static inline int pf_ieq(const uint8_t *b, uint32_t n, const char *lit, uint32_t litlen)
{
    if (n != litlen)
        return 0;
    for (uint32_t i = 0; i < n; i++)
        if (pf_lower(b[i]) != (uint8_t)lit[i])
            return 0;
    return 1;
}
#define PF_IEQ(b, n, lit) pf_ieq((b), (n), (lit), sizeof(lit) - 1)

#endif /* PF_HTTP_CHARS_H */
