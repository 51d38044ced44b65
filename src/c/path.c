/*
 * path.c — URI path normalisation and root/alias joins that cannot leave the root.
 *
 * Why here and not in the parser: the parser is zero-copy and keeps the raw target;
 * mapping a URI to a file needs a decoded, canonical copy. nginx decodes %XX and then
 * treats a decoded '/' or '.' like the literal one (ngx_http_parse_complex_uri), so
 * "%2e%2e" is "..": we do the same, and answer 400 for any '..' that would climb
 * above "/" (nginx also answers 400 there). Decoded NUL is refused (CWE-158).
 */
#include <string.h>
#include "pf.h"
#include "pf_int.h"

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Close the segment out[seg..o): drop ".", pop on "..". Returns the new length or -1. */
static int close_segment(char *out, size_t seg, size_t o)
{
    size_t n = o - seg;
    if (n == 1 && out[seg] == '.')
        return (int)seg;
    if (n == 2 && out[seg] == '.' && out[seg + 1] == '.') {
        if (seg <= 1)
            return -1;                       /* ".." above the root */
        size_t p = seg - 1;                  /* the '/' before this segment */
        while (p > 0 && out[p - 1] != '/')
            p--;
        return (int)p;
    }
    return (int)o;
}

int pf_path_normalize(const char *in, size_t len, char *out, size_t cap)
{
    if (len == 0 || in[0] != '/' || cap < 2)
        return PF_E_BAD_REQUEST;
    size_t o = 0, seg = 1;
    out[o++] = '/';
    for (size_t i = 1; i <= len; i++) {
        int c;
        if (i == len) {
            c = -1;                          /* end of input closes the last segment */
        } else if (in[i] == '%') {
            int h, l;
            if (i + 2 >= len) return PF_E_BAD_REQUEST;
            h = hexval((unsigned char)in[i + 1]);
            l = hexval((unsigned char)in[i + 2]);
            if (h < 0 || l < 0) return PF_E_BAD_REQUEST;
            c = (h << 4) | l;
            i += 2;
        } else {
            c = (unsigned char)in[i];
        }
        if (c == 0) return PF_E_BAD_REQUEST;
        if (c == '/' || c == -1) {
            int r = close_segment(out, seg, o);
            if (r < 0) return PF_E_BAD_REQUEST;
            int dropped = (size_t)r != o;
            o = (size_t)r;
            /* keep one '/' after a real segment, and after a dot segment (nginx: "/a/." -> "/a/") */
            if (o == 0 || out[o - 1] != '/') {
                if (c == '/' || dropped) {
                    if (o + 1 >= cap) return PF_E_URI_TOO_LONG;
                    out[o++] = '/';
                }
            }
            seg = o;
            continue;
        }
        if (o + 1 >= cap) return PF_E_URI_TOO_LONG;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return (int)o;
}

int pf_path_join(const char *base, size_t blen, const char *rest, size_t rlen, char *out, size_t cap)
{
    int base_slash = blen > 0 && base[blen - 1] == '/';
    if (rlen > 0 && rest[0] == '/') {
        if (base_slash) { rest++; rlen--; }
    } else if (rlen > 0 && !base_slash) {
        /* alias "/dir" + "x" would name the sibling "/dirx": outside the alias. */
        return PF_E_BAD_REQUEST;
    }
    /* the first segment after the join point must not be ".." (alias misconfig leak) */
    const char *r = rest;
    size_t rl = rlen;
    if (rl > 0 && r[0] == '/') { r++; rl--; }
    if (rl >= 2 && r[0] == '.' && r[1] == '.' && (rl == 2 || r[2] == '/'))
        return PF_E_BAD_REQUEST;
    if (blen + rlen + 1 > cap)
        return PF_E_URI_TOO_LONG;
    memcpy(out, base, blen);
    memcpy(out + blen, rest, rlen);
    out[blen + rlen] = '\0';
    return (int)(blen + rlen);
}
