/*
 * uwsgi.c — uwsgi packet decode/encode (the protocol nginx's uwsgi_pass speaks).
 *
 * Wire format (uwsgi-docs Protocol.rst; nginx ngx_http_uwsgi_create_request):
 *   uint8 modifier1 | uint16le datasize | uint8 modifier2
 *   datasize bytes of vars: { uint16le klen, key, uint16le vlen, value }*
 *   then the request body (length = CONTENT_LENGTH), not counted in datasize.
 *
 * The parser is pure: it reads (buf, len), fills caller-owned output and returns
 * bytes consumed (4 + datasize), PF_NEED_MORE, or a PF_E_UWSGI_* code. No
 * allocation, no globals, every length checked against the end of the block.
 */
#include <string.h>

#include "pf.h"

static inline uint32_t rd16(const unsigned char *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8); }

/* The 4 header bytes spell an HTTP method: someone sent HTTP to a uwsgi socket
 * (uWSGI then logs "invalid request block size: 21573", 0x5445 = "ET" of "GET ";
 * uwsgi-docs ThingsToKnow.rst). We recognise every common method so the caller
 * can log a precise hint instead of a size error. */
static int looks_like_http(const unsigned char *p)
{
    static const char *const methods[] = {
        "GET ", "POST", "HEAD", "PUT ", "DELE", "OPTI", "PATC", "CONN", "TRAC", "PRI ",
    };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (memcmp(p, methods[i], 4) == 0)
            return 1;
    return 0;
}

/* Does a key equal to base[koff, koff+klen) occur in the vars block before koff? */
static int has_key(const unsigned char *base, uint32_t start, uint32_t koff, uint32_t klen)
{
    uint32_t pos = start;
    while (pos + 2 < koff) {        /* vars before this one (koff - 2); validated already */
        uint32_t kl = rd16(base + pos);
        if (kl == klen && memcmp(base + pos + 2, base + koff, klen) == 0)
            return 1;
        pos += 2 + kl;
        pos += 2 + rd16(base + pos);
    }
    return 0;
}

/* Walk the vars block [p, p+size). Optionally fill spans (offsets are relative to
 * `base`, the start of the caller's buffer) and/or the flat "k\0v\0k\0v" copy. */
static int walk_vars(const unsigned char *base, uint32_t start, uint32_t size, pf_uwsgi_packet *pkt,
                     pf_uwsgi_var *vars, uint32_t max_vars, char *flat, size_t flat_cap)
{
    uint32_t pos = start, end = start + size, n = 0;
    size_t flen = 0;
    int nul = 0, dup = 0;
    uint64_t seen[4] = { 0, 0, 0, 0 };   /* 256-bit filter of key fingerprints */
    while (pos < end) {
        if (end - pos < 2)
            return PF_E_UWSGI_VAR;
        uint32_t klen = rd16(base + pos);
        pos += 2;
        if (klen > end - pos)
            return PF_E_UWSGI_VAR;       /* key runs past the end of the block */
        uint32_t koff = pos;
        pos += klen;
        if (end - pos < 2)
            return PF_E_UWSGI_VAR;       /* a key without its value length */
        uint32_t vlen = rd16(base + pos);
        pos += 2;
        if (vlen > end - pos)
            return PF_E_UWSGI_VAR;       /* value runs past the end of the block */
        uint32_t voff = pos;
        pos += vlen;
        if (vars) {
            if (n >= max_vars)
                return PF_E_UWSGI_TOO_MANY;
            vars[n].key_off = koff;
            vars[n].key_len = klen;
            vars[n].val_off = voff;
            vars[n].val_len = vlen;
        }
        if (flat) {
            /* 4 length bytes become at most 2 separators, so flat_cap >= size always fits. */
            size_t need = flen + (n ? 1 : 0) + klen + 1 + vlen;
            if (need > flat_cap)
                return PF_E_UWSGI_TOO_BIG;
            if (n)
                flat[flen++] = '\0';
            memcpy(flat + flen, base + koff, klen);
            flen += klen;
            flat[flen++] = '\0';
            memcpy(flat + flen, base + voff, vlen);
            flen += vlen;
            if (!nul && (memchr(base + koff, 0, klen) || memchr(base + voff, 0, vlen)))
                nul = 1;
            /* Repeated keys: nginx before 1.23 sends a repeated request header as two
             * HTTP_X vars (captured in tests/corpus/uwsgi/repeated-headers.uwsgi); the
             * caller joins them instead of keeping the last. Fingerprint filter first, an
             * exact scan only on a hit, so the usual packet costs no O(n^2) work. */
            if (!dup && klen) {
                unsigned fp = (klen * 31u + base[koff + klen - 1] * 7u + base[koff + klen / 2]) & 255u;
                if (seen[fp >> 6] & (1ull << (fp & 63)))
                    dup = has_key(base, start, koff, klen);
                seen[fp >> 6] |= 1ull << (fp & 63);
            }
        }
        n++;
    }
    pkt->nvars = n;
    pkt->flat_len = (uint32_t)flen;
    pkt->flat_nul = nul;
    pkt->flat_dup = dup;
    return 0;
}

int pf_uwsgi_parse(const char *buf, size_t len, uint32_t max_datasize, pf_uwsgi_packet *pkt,
                   pf_uwsgi_var *vars, uint32_t max_vars, char *flat, size_t flat_cap)
{
    const unsigned char *p = (const unsigned char *)buf;
    memset(pkt, 0, sizeof *pkt);
    if (len < PF_UWSGI_HEAD)
        return PF_NEED_MORE;
    pkt->modifier1 = p[0];
    pkt->datasize = (uint16_t)rd16(p + 1);
    pkt->modifier2 = p[3];
    if (looks_like_http(p))
        return PF_E_UWSGI_HTTP;
    /* modifier1 0 = WSGI; 30 = WSGI with SCRIPT_NAME stripped from PATH_INFO (uWSGI,
     * deprecated but still emitted by old configs). Anything else is another plugin. */
    if (pkt->modifier1 != 0 && pkt->modifier1 != 30)
        return PF_E_UWSGI_MODIFIER;
    if (pkt->datasize > max_datasize)
        return PF_E_UWSGI_TOO_BIG;
    if (len < (size_t)PF_UWSGI_HEAD + pkt->datasize)
        return PF_NEED_MORE;
    int rc = walk_vars(p, PF_UWSGI_HEAD, pkt->datasize, pkt, vars, max_vars, flat, flat_cap);
    if (rc < 0)
        return rc;
    return PF_UWSGI_HEAD + pkt->datasize;
}

int pf_uwsgi_encode(uint8_t modifier1, uint8_t modifier2, const char *src, const pf_uwsgi_var *vars,
                    uint32_t nvars, char *out, size_t cap)
{
    size_t size = 0;
    for (uint32_t i = 0; i < nvars; i++) {
        if (vars[i].key_len > 0xffff || vars[i].val_len > 0xffff)
            return PF_E_UWSGI_TOO_BIG;
        size += 4 + (size_t)vars[i].key_len + vars[i].val_len;
        if (size > 0xffff)
            return PF_E_UWSGI_TOO_BIG;   /* nginx: "uwsgi request is too big" */
    }
    if (cap < PF_UWSGI_HEAD + size)
        return PF_E_UWSGI_TOO_BIG;
    unsigned char *o = (unsigned char *)out;
    o[0] = modifier1;
    o[1] = (unsigned char)(size & 0xff);
    o[2] = (unsigned char)(size >> 8);
    o[3] = modifier2;
    size_t pos = PF_UWSGI_HEAD;
    for (uint32_t i = 0; i < nvars; i++) {
        uint32_t kl = vars[i].key_len, vl = vars[i].val_len;
        o[pos++] = (unsigned char)(kl & 0xff);
        o[pos++] = (unsigned char)(kl >> 8);
        memcpy(o + pos, src + vars[i].key_off, kl);
        pos += kl;
        o[pos++] = (unsigned char)(vl & 0xff);
        o[pos++] = (unsigned char)(vl >> 8);
        memcpy(o + pos, src + vars[i].val_off, vl);
        pos += vl;
    }
    return (int)pos;
}
