/*
 * app_shape.c — split a flat "k\0v\0k\0v" environ into its values and its key sequence
 * ("shape"), kept in a small per-thread table.
 *
 * Why: a client (or nginx's uwsgi_params) sends the same keys in the same order on every
 * request, so Python keeps one tuple of interned key strings per shape and builds the
 * environ from the values alone: no key string is created or hashed per request
 * (bench/app_cost.py: ~4,000 instructions per nginx request). Exact: a hit is a memcmp
 * of the whole key sequence, the hash only picks the candidate. A full table is emptied
 * and refilled (the new shape gets index 0 and *is_new is set: the caller drops its
 * tuples), so hostile key sequences cost speed, never correctness.
 */
#include <string.h>

#include "pf.h"

/* The common case: the request has the key sequence of the thread's previous request.
 * Compare its keys in place against shape i while copying the values: no key copy, no
 * hash (bench/app_cost.py: ~1,000 instructions less per nginx request). -1: another shape
 * (or too long): the caller takes the general way. */
static int split_same(const pf_app_shapes *t, int i, const char *flat, size_t len, char *vals, size_t half)
{
    const char *k = t->store + t->off[i], *kend = k + t->len[i];
    size_t pos = 0, vl = 0;
    int is_key = 1;
    while (len) {
        const char *z = memchr(flat + pos, 0, len - pos);
        size_t n = z ? (size_t)(z - (flat + pos)) : len - pos;
        if (is_key) {
            if ((size_t)(kend - k) < n + 1 || k[n] != 0 || memcmp(k, flat + pos, n) != 0)
                return -1;
            k += n + 1;
        } else {
            if (vl + n + 1 > half)
                return -1;
            memcpy(vals + vl, flat + pos, n);
            vl += n;
            vals[vl++] = 0;
        }
        is_key = !is_key;
        if (!z)
            break;
        pos += n + 1;
    }
    if (k != kend)
        return -1;
    return (int)(vl ? vl - 1 : 0);                /* values: no trailing separator */
}

static void plan_shape(pf_app_shapes *t, int i);

int pf_app_shape_split(pf_app_shapes *t, const char *flat, size_t len, char *vals, size_t vcap, int *is_new)
{
    if (t->nshapes > 0 && t->shape >= 0 && t->shape < t->nshapes) {
        int v = split_same(t, t->shape, flat, len, vals, vcap / 2);
        if (v >= 0) {
            *is_new = 0;
            return v;
        }
    }
    size_t half = vcap / 2, pos = 0, vl = 0, kl = 0;
    char *keys = vals + half;                        /* scratch: the second half of vals */
    int is_key = 1;
    *is_new = 0;
    while (len) {
        const char *z = memchr(flat + pos, 0, len - pos);
        size_t n = z ? (size_t)(z - (flat + pos)) : len - pos;
        char *dst = is_key ? keys : vals;
        size_t *dl = is_key ? &kl : &vl;
        if (*dl + n + 1 > half)
            return -1;
        memcpy(dst + *dl, flat + pos, n);
        *dl += n;
        dst[(*dl)++] = 0;
        is_key = !is_key;
        if (!z)
            break;
        pos += n + 1;
    }
    if (vl)
        vl--;                                        /* values: no trailing separator */
    uint64_t h = 1469598103934665603ull;            /* FNV-1a: a candidate filter only */
    for (size_t i = 0; i < kl; i++)
        h = (h ^ (unsigned char)keys[i]) * 1099511628211ull;
    for (int i = 0; i < t->nshapes; i++) {
        if (t->hash[i] == h && t->len[i] == kl && memcmp(t->store + t->off[i], keys, kl) == 0) {
            t->shape = i;
            return (int)vl;
        }
    }
    if (kl > sizeof t->store)
        return -1;
    if (t->nshapes == PF_APP_SHAPES || t->used + kl > sizeof t->store) {
        t->nshapes = 0;                              /* full: start over */
        t->used = 0;
        t->snap_used = 0;
        t->gen++;
    }
    int i = t->nshapes++;
    t->hash[i] = h;
    t->len[i] = (uint32_t)kl;
    t->off[i] = t->used;
    memcpy(t->store + t->used, keys, kl);
    t->used += (uint32_t)kl;
    t->shape = i;
    plan_shape(t, i);
    t->snap_n[i] = PF_APP_UNTRACKED;                 /* until pf_app_shape_snap */
    t->vary[i] = ~0ull;
    *is_new = 1;
    return (int)vl;
}

/* ---- one pass from the raw uwsgi packet (pf_app_uwsgi_fused) -------------------------
 * Why: for nginx's usual GET the general way walks the vars three times (pf_uwsgi_parse
 * copies them into flat, tidy_flat drops/flags/notes, split_same compares the keys and
 * copies the values): ~6,700 instructions per request of bench/app_cost.py's nginx packet
 * under callgrind (parse 2,118, memchr ~950, memcpy ~530, split 1,112, tidy 827, strnlen 724,
 * memcmp 259, note_var 175). When the packet has the thread's current key sequence, one walk
 * over the packet does all of it: the keys are compared against the shape's stored keys
 * (lengths and where the noted keys are precomputed when the shape was added: no strlen, no
 * literal memcmp), the values are copied and checked for NUL by whole words, and anything
 * unusual returns -1 so the general way (the reference, with every error and log line)
 * handles it. Measured: ~1,460 instructions for the same packet. */

/* which var a key is to the walk: its fuse_at slot (PF_APP_UV_* first) */
enum { R_HTTPS = 5, R_SCHEME = 6, R_CLEN = 7, R_NONE = 8, R_DROPPED = 9 };

static int key_role(const char *k, size_t n)
{
    static const struct { const char *name; size_t len; int role; } names[] = {
        { "REQUEST_METHOD", 14, PF_APP_UV_METHOD }, { "REQUEST_URI", 11, PF_APP_UV_URI },
        { "PATH_INFO", 9, PF_APP_UV_PATH }, { "REMOTE_ADDR", 11, PF_APP_UV_ADDR },
        { "SERVER_PROTOCOL", 15, PF_APP_UV_PROTO }, { "HTTPS", 5, R_HTTPS },
        { "REQUEST_SCHEME", 14, R_SCHEME }, { "CONTENT_LENGTH", 14, R_CLEN },
        /* tidy_flat drops these before a shape is made: a shape holding one is not walked */
        { "HTTP_CONTENT_TYPE", 17, R_DROPPED }, { "HTTP_CONTENT_LENGTH", 19, R_DROPPED },
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (n == names[i].len && memcmp(k, names[i].name, n) == 0)
            return names[i].role;
    return R_NONE;
}

/* Once per new shape (not per request): key lengths and where the noted keys are. */
static void plan_shape(pf_app_shapes *t, int i)
{
    const char *k = t->store + t->off[i], *end = k + t->len[i];
    uint16_t n = 0;
    t->fuse_n[i] = PF_APP_NOFUSE;
    for (int r = 0; r < 8; r++)
        t->fuse_at[i][r] = -1;
    while (k < end) {
        const char *z = memchr(k, 0, (size_t)(end - k));
        if (!z || n == PF_APP_FUSE_KEYS)
            return;                              /* (every stored key ends in NUL) / too many keys */
        int role = key_role(k, (size_t)(z - k));
        if (role == R_DROPPED)
            return;
        if (role != R_NONE) {
            if (t->fuse_at[i][role] >= 0)
                return;                          /* twice: cannot be (flat_dup), but never guess */
            t->fuse_at[i][role] = (int8_t)n;
        }
        t->fuse_klen[i][n] = (uint16_t)(z - k);  /* < sizeof store */
        n++;
        k = z + 1;
    }
    t->fuse_n[i] = n;
}

static inline uint32_t rd16(const unsigned char *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8); }
static inline uint64_t ld64(const void *p) { uint64_t x; memcpy(&x, p, 8); return x; }
static inline uint32_t ld32(const void *p) { uint32_t x; memcpy(&x, p, 4); return x; }
static inline uint16_t ld16(const void *p) { uint16_t x; memcpy(&x, p, 2); return x; }

/* a == b over n bytes: whole words, the last one overlapping (no call, no byte loop) */
static inline int same_bytes(const unsigned char *a, const unsigned char *b, size_t n)
{
    if (n >= 8) {
        uint64_t d = (ld64(a) ^ ld64(b)) | (ld64(a + n - 8) ^ ld64(b + n - 8));
        for (size_t i = 8; i + 8 < n; i += 8)     /* (most names are 9..16 bytes: no turn) */
            d |= ld64(a + i) ^ ld64(b + i);
        return d == 0;
    }
    if (n >= 4)
        return ((ld32(a) ^ ld32(b)) | (ld32(a + n - 4) ^ ld32(b + n - 4))) == 0;
    if (n >= 2)
        return ((ld16(a) ^ ld16(b)) | (ld16(a + n - 2) ^ ld16(b + n - 2))) == 0;
    return n == 0 || a[0] == b[0];
}

/* Non-zero when a word has a zero byte (exact as a yes/no: the borrow only blurs which byte). */
#define ZB64(x) (((x) - 0x0101010101010101ull) & ~(x) & 0x8080808080808080ull)
#define ZB32(x) (((x) - 0x01010101u) & ~(x) & 0x80808080u)

/* Copy n bytes (d and s do not overlap); non-zero when one of them is NUL. */
static inline uint64_t copy_nonul(unsigned char *d, const unsigned char *s, size_t n)
{
    if (n >= 8) {
        uint64_t x = ld64(s), y = ld64(s + n - 8), z = ZB64(x) | ZB64(y);
        memcpy(d, &x, 8);
        memcpy(d + n - 8, &y, 8);
        for (size_t i = 8; i + 8 < n; i += 8) {
            x = ld64(s + i);
            z |= ZB64(x);
            memcpy(d + i, &x, 8);
        }
        return z;
    }
    if (n >= 4) {
        uint32_t a = ld32(s), b = ld32(s + n - 4);
        memcpy(d, &a, 4);
        memcpy(d + n - 4, &b, 4);
        return ZB32(a) | ZB32(b);
    }
    if (n == 0)
        return 0;
    /* 1..3 bytes: first, middle, last (they cover all of them; no loop) */
    unsigned char a = s[0], b = s[n / 2], c = s[n - 1];
    d[0] = a, d[n / 2] = b, d[n - 1] = c;
    return (a == 0) | (b == 0) | (c == 0);
}

int pf_app_uwsgi_fused(const pf_app_shapes *t, const char *buf, size_t len, uint32_t max_datasize, size_t flat_cap,
                       pf_uwsgi_packet *pkt, char *vals, size_t vcap, pf_app_uvars *uv)
{
    const unsigned char *p = (const unsigned char *)buf;
    int i = t->shape;
    if (len < PF_UWSGI_HEAD || p[0] != 0 || i < 0 || i >= t->nshapes || t->fuse_n[i] > PF_APP_FUSE_KEYS)
        return -1;                       /* modifier1 30 (SCRIPT_NAME), another plugin, HTTP: general */
    uint32_t size = rd16(p + 1), mod2 = p[3];
    if (mod2 == PF_UWSGI_KEEP || mod2 == PF_UWSGI_KEEP_HEAD || size > max_datasize
        || len - PF_UWSGI_HEAD < size)
        return -1;                       /* pyfront's front (adopted), too big, incomplete */
    const unsigned char *q = p + PF_UWSGI_HEAD, *end = q + size;
    const unsigned char *key = (const unsigned char *)t->store + t->off[i];
    const uint16_t *klens = t->fuse_klen[i];
    uint32_t nk = t->fuse_n[i], j = 0, nvars = 0;
    uint32_t at[PF_APP_FUSE_KEYS + 1];   /* where value j starts in vals */
    unsigned char *out = (unsigned char *)vals;
    size_t vl = 0, half = vcap / 2;
    int seen_type = 0, seen_len = 0;
    while (q < end) {
        if (end - q < 2)
            return -1;
        size_t klen = rd16(q);
        q += 2;
        if ((size_t)(end - q) < klen + 2)
            return -1;
        const unsigned char *k = q;
        q += klen;
        size_t vlen = rd16(q);
        q += 2;
        if ((size_t)(end - q) < vlen)
            return -1;
        const unsigned char *v = q;
        q += vlen;
        nvars++;
        if (j < nk && klen == klens[j] && same_bytes(k, key, klen)) {
            if (vl + vlen + 1 > half || copy_nonul(out + vl, v, vlen))
                return -1;               /* (split_same's limit) / NUL: flat would be ambiguous */
            out[vl + vlen] = 0;
            at[j++] = (uint32_t)vl;
            vl += vlen + 1;
            key += klen + 1;
        } else if (klen == 17 && same_bytes(k, (const unsigned char *)"HTTP_CONTENT_TYPE", 17)) {
            if (seen_type++ || memchr(v, 0, vlen))
                return -1;               /* repeated (flat_dup) / NUL (flat_nul) */
        } else if (klen == 19 && same_bytes(k, (const unsigned char *)"HTTP_CONTENT_LENGTH", 19)) {
            if (seen_len++ || memchr(v, 0, vlen))
                return -1;
        } else {
            return -1;                   /* another key sequence (or NUL in a key) */
        }
    }
    /* pairs are 4 length bytes + key + value; flat has 2 NULs per pair, one fewer at the end */
    if (j != nk || (nvars && size - 2 * (size_t)nvars - 1 > flat_cap))
        return -1;                       /* keys missing / walk_vars's flat limit */
    at[nk] = (uint32_t)vl;
    const int8_t *pos = t->fuse_at[i];
#define VAL(r) (out + at[pos[r]])
#define VLEN(r) (at[pos[r] + 1] - at[pos[r]] - 1)
    /* tidy_flat's flags: with any of them Python reads flat, so the general way makes it */
    if (pos[R_HTTPS] >= 0 && ((VLEN(R_HTTPS) == 2 && VAL(R_HTTPS)[0] == 'o' && VAL(R_HTTPS)[1] == 'n')
                              || (VLEN(R_HTTPS) == 1 && VAL(R_HTTPS)[0] == '1')))
        return -1;
    if (pos[R_SCHEME] >= 0 && VLEN(R_SCHEME) == 5 && memcmp(VAL(R_SCHEME), "https", 5) == 0)
        return -1;
    if (pos[R_CLEN] >= 0 && VLEN(R_CLEN) && !(VLEN(R_CLEN) == 1 && VAL(R_CLEN)[0] == '0'))
        return -1;
    for (int r = 0; r < 5; r++) {
        uv->off[r] = pos[r] >= 0 ? (int32_t)at[pos[r]] : -1;
        uv->len[r] = pos[r] >= 0 ? VLEN(r) : 0;
    }
#undef VAL
#undef VLEN
    size_t kept = t->len[i] + vl;        /* the kept pairs' keys + values + 2 NULs each */
    pkt->modifier1 = 0;
    pkt->modifier2 = (uint8_t)mod2;
    pkt->datasize = (uint16_t)size;
    pkt->nvars = nvars;
    pkt->flat_len = (uint32_t)(kept ? kept - 1 : 0);   /* tidy_flat's length: no trailing NUL */
    pkt->flat_nul = 0;
    pkt->flat_dup = 0;
    return (int)(vl ? vl - 1 : 0);
}

/* ---- values the environ template already holds (pf_app_shape_snap / _vary) ------------
 * Why: most of nginx's values repeat request after request — DOCUMENT_ROOT, SERVER_NAME,
 * SERVER_PORT, SERVER_PROTOCOL, REQUEST_SCHEME, REMOTE_ADDR, HTTP_HOST, the empty
 * CONTENT_* — and each one Python turns into a str and stores in the environ costs ~300
 * instructions (decode, split, zip, dict update, free; bench/app_cost.py). Python builds a
 * shape's template from its first request's values (the snapshot); C then hands over only
 * the values that differ from it or have differed before (REMOTE_PORT, REQUEST_URI, ...).
 * A value is compared, never assumed: the template holds exactly the bytes the request
 * sent. The mask only grows (at most 64 times per shape), so Python rebuilds its key tuple
 * rarely, and a shape whose snapshot cannot be kept simply hands over every value. */

void pf_app_shape_snap(pf_app_shapes *t, const char *vals, size_t vl)
{
    int i = t->shape;
    if (i < 0 || i >= t->nshapes)
        return;
    t->snap_n[i] = PF_APP_UNTRACKED;
    t->vary[i] = ~0ull;
    if (vl + 1 > sizeof t->snap - t->snap_used)
        return;                                      /* store full until the table is emptied */
    uint16_t *at = t->snap_at[i];
    size_t pos = 0;
    unsigned n = 0;
    for (;;) {
        if (n == PF_APP_FUSE_KEYS)
            return;                                  /* > 64 values: the mask cannot say */
        at[n++] = (uint16_t)pos;                     /* < sizeof snap */
        const char *z = memchr(vals + pos, 0, vl - pos);
        if (!z)
            break;
        pos = (size_t)(z - vals) + 1;
    }
    at[n] = (uint16_t)(vl + 1);                      /* as if the last value had its NUL */
    t->snap_off[i] = t->snap_used;
    memcpy(t->snap + t->snap_used, vals, vl);
    t->snap_used += (uint32_t)vl + 1;
    t->snap_n[i] = (uint16_t)n;
    t->vary[i] = 0;
}

int pf_app_shape_vary(pf_app_shapes *t, const char *vals, size_t vl, char *out, size_t cap, int *grew)
{
    int i = t->shape;
    *grew = 0;
    if (vl + 1 > cap)
        return -1;
    if (i < 0 || i >= t->nshapes || t->snap_n[i] == PF_APP_UNTRACKED) {
        memcpy(out, vals, vl);
        return (int)vl;
    }
    const unsigned char *snap = (const unsigned char *)t->snap + t->snap_off[i];
    const uint16_t *at = t->snap_at[i];
    uint64_t vary = t->vary[i], add = 0;
    unsigned n = t->snap_n[i], j = 0;
    size_t pos = 0, o = 0;
    int odd = 0;
    for (;;) {
        const char *z = memchr(vals + pos, 0, vl - pos);
        size_t len = z ? (size_t)(z - (vals + pos)) : vl - pos;
        if (j == n) {
            odd = 1;                                 /* more values than the shape has keys */
            break;
        }
        if (!((vary >> j) & 1)) {
            if (len == (size_t)(at[j + 1] - at[j] - 1)
                && same_bytes(snap + at[j], (const unsigned char *)vals + pos, len))
                goto next;                           /* the template holds this value */
            add |= 1ull << j;
        }
        memcpy(out + o, vals + pos, len);            /* o + len + 1 <= pos + len + 1 <= vl + 1 */
        o += len;
        out[o++] = 0;
    next:
        j++;
        if (!z)
            break;
        pos += len + 1;
    }
    if (odd || j != n) {
        /* values and keys disagree (cannot be for a shape's own values): hand over every
         * value from now on, and say so (Python's key tuple must follow) */
        t->snap_n[i] = PF_APP_UNTRACKED;
        t->vary[i] = ~0ull;
        *grew = 1;
        memcpy(out, vals, vl);
        return (int)vl;
    }
    if (add) {
        t->vary[i] = vary | add;
        *grew = 1;
    }
    return (int)(o ? o - 1 : 0);
}
