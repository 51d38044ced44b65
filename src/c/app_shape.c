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
        t->gen++;
    }
    int i = t->nshapes++;
    t->hash[i] = h;
    t->len[i] = (uint32_t)kl;
    t->off[i] = t->used;
    memcpy(t->store + t->used, keys, kl);
    t->used += (uint32_t)kl;
    t->shape = i;
    *is_new = 1;
    return (int)vl;
}
