/*
 * router.c — load and check the route-table blob; server and location lookup.
 *
 * The blob (docs/route-table.md) is pointer-free: sections of fixed-size records that
 * refer to each other by index and to a string pool by (offset, length). Every
 * reference is bounds-checked once here, so the request path can index without checks.
 * Regexes are POSIX EREs (regcomp): PCRE2 headers are not on the build machines we
 * target; docs/differences.md lists what that changes (no \d, lazy quantifiers, ...).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <ctype.h>
#include "pf_int.h"

typedef struct { uint32_t magic, version, total_len, nsec; } rt_header_t;
typedef struct { uint32_t kind, off, count, recsize; } rt_sec_t;

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); goto fail; } while (0)

static int str_ok(const pf_router *r, rt_str s) { return s.off <= r->nstr && s.len <= r->nstr - s.off; }
static int range_ok(rt_range g, uint32_t n) { return g.first <= n && g.count <= n - g.first; }

static int bind_sections(pf_router *r, char *err, size_t errlen)
{
    const rt_header_t *h = (const rt_header_t *)r->blob;
    if (r->len < sizeof *h) FAIL("route table: %zu bytes is too short", r->len);
    if (h->magic != PF_RT_MAGIC) FAIL("route table: bad magic 0x%08x", h->magic);
    if (h->version != PF_RT_VERSION)
        FAIL("route table: version %u, this core reads %u (rebuild)", h->version, PF_RT_VERSION);
    if (h->total_len != r->len) FAIL("route table: length %u != %zu", h->total_len, r->len);
    if (h->nsec > 64 || sizeof *h + (size_t)h->nsec * sizeof(rt_sec_t) > r->len)
        FAIL("route table: bad section count %u", h->nsec);
    static const uint32_t recsize[RT_SEC_MAX] = {
        [RT_SEC_STR] = 1, [RT_SEC_IDX] = 4, [RT_SEC_LIST] = sizeof(rt_str),
        [RT_SEC_ADDR] = sizeof(rt_addr), [RT_SEC_SERVER] = sizeof(rt_server),
        [RT_SEC_NAME] = sizeof(rt_name), [RT_SEC_LOC] = sizeof(rt_loc),
        [RT_SEC_CONF] = sizeof(rt_conf), [RT_SEC_MIME] = sizeof(rt_mime),
        [RT_SEC_TPL] = sizeof(rt_tpl), [RT_SEC_TPLOP] = sizeof(rt_tplop),
        [RT_SEC_LOGFILE] = sizeof(rt_logfile), [RT_SEC_ACCLOG] = sizeof(rt_acclog),
        [RT_SEC_ERRPAGE] = sizeof(rt_errpage), [RT_SEC_HEADER] = sizeof(rt_header),
        [RT_SEC_PXCONF] = sizeof(rt_pxconf), [RT_SEC_UPSTREAM] = sizeof(rt_upstream),
        [RT_SEC_PEER] = sizeof(rt_peer), [RT_SEC_PARAM] = sizeof(rt_param),
    };
    const rt_sec_t *sec = (const rt_sec_t *)(r->blob + sizeof *h);
    for (uint32_t i = 0; i < h->nsec; i++) {
        const rt_sec_t *s = &sec[i];
        if (s->kind == 0 || s->kind >= RT_SEC_MAX) FAIL("route table: unknown section %u", s->kind);
        if (s->recsize != recsize[s->kind])
            FAIL("route table: section %u record size %u != %u (core and compiler disagree)",
                 s->kind, s->recsize, recsize[s->kind]);
        if (s->off % 4 || s->off > r->len || (uint64_t)s->count * s->recsize > r->len - s->off)
            FAIL("route table: section %u out of bounds", s->kind);
        const void *p = r->blob + s->off;
        switch (s->kind) {
        case RT_SEC_STR: r->str = p; r->nstr = s->count; break;
        case RT_SEC_IDX: r->idx = p; r->nidx = s->count; break;
        case RT_SEC_LIST: r->list = p; r->nlist = s->count; break;
        case RT_SEC_ADDR: r->addr = p; r->naddr = s->count; break;
        case RT_SEC_SERVER: r->server = p; r->nserver = s->count; break;
        case RT_SEC_NAME: r->name = p; r->nname = s->count; break;
        case RT_SEC_LOC: r->loc = p; r->nloc = s->count; break;
        case RT_SEC_CONF: r->conf = p; r->nconf = s->count; break;
        case RT_SEC_MIME: r->mime = p; r->nmime = s->count; break;
        case RT_SEC_TPL: r->tpl = p; r->ntpl = s->count; break;
        case RT_SEC_TPLOP: r->tplop = p; r->ntplop = s->count; break;
        case RT_SEC_LOGFILE: r->logfile = p; r->nlogfile = s->count; break;
        case RT_SEC_ACCLOG: r->acclog = p; r->nacclog = s->count; break;
        case RT_SEC_ERRPAGE: r->errpage = p; r->nerrpage = s->count; break;
        case RT_SEC_HEADER: r->header = p; r->nheader = s->count; break;
        case RT_SEC_PXCONF: r->pxconf = p; r->npxconf = s->count; break;     /* proxy.c checks them */
        case RT_SEC_UPSTREAM: r->upstream = p; r->nupstream = s->count; break;
        case RT_SEC_PEER: r->peer = p; r->npeer = s->count; break;
        case RT_SEC_PARAM: r->param = p; r->nparam = s->count; break;
        default: FAIL("route table: section %u", s->kind);
        }
    }
    if (!r->str && r->nstr == 0) { static const char empty[1] = ""; r->str = empty; }
    return 0;
fail:
    return -1;
}

static int idx_range_ok(const pf_router *r, rt_range g, uint32_t target_n)
{
    if (!range_ok(g, r->nidx)) return 0;
    for (uint32_t i = 0; i < g.count; i++)
        if (r->idx[g.first + i] >= target_n) return 0;
    return 1;
}

static int check_refs(pf_router *r, char *err, size_t errlen)
{
    uint32_t i;
    for (i = 0; i < r->nlist; i++) if (!str_ok(r, r->list[i])) FAIL("list %u: bad string", i);
    for (i = 0; i < r->naddr; i++) {
        const rt_addr *a = &r->addr[i];
        if (!str_ok(r, a->addr) || a->default_server >= r->nserver || a->servers.count == 0
            || !idx_range_ok(r, a->servers, r->nserver)) FAIL("address %u: bad record", i);
    }
    for (i = 0; i < r->nserver; i++) {
        const rt_server *s = &r->server[i];
        if (!range_ok(s->names, r->nname) || !idx_range_ok(r, s->locs, r->nloc)
            || !idx_range_ok(r, s->named, r->nloc) || s->conf >= r->nconf || !str_ok(r, s->name0))
            FAIL("server %u: bad record", i);
    }
    for (i = 0; i < r->nname; i++) {
        const rt_name *n = &r->name[i];
        if (n->kind < RT_NAME_EXACT || n->kind > RT_NAME_REGEX || !str_ok(r, n->name) || n->server >= r->nserver)
            FAIL("server name %u: bad record", i);
    }
    for (i = 0; i < r->nloc; i++) {
        const rt_loc *l = &r->loc[i];
        if (l->kind < RT_LOC_PREFIX || l->kind > RT_LOC_NAMED || !str_ok(r, l->pattern)
            || !idx_range_ok(r, l->children, r->nloc) || l->conf >= r->nconf)
            FAIL("location %u: bad record", i);
        for (uint32_t k = 0; k < l->children.count; k++)
            if (r->idx[l->children.first + k] <= i) FAIL("location %u: children must follow it", i);
    }
    for (i = 0; i < r->nmime; i++)
        if (!str_ok(r, r->mime[i].ext) || !str_ok(r, r->mime[i].type)) FAIL("mime %u: bad record", i);
    for (i = 0; i < r->ntpl; i++) if (!range_ok(r->tpl[i].ops, r->ntplop)) FAIL("template %u: bad ops", i);
    for (i = 0; i < r->ntplop; i++)
        if (r->tplop[i].var >= V_MAX || !str_ok(r, r->tplop[i].arg)) FAIL("template op %u: bad", i);
    for (i = 0; i < r->nlogfile; i++) if (!str_ok(r, r->logfile[i].path)) FAIL("log file %u: bad", i);
    for (i = 0; i < r->nacclog; i++)
        if (r->acclog[i].file >= r->nlogfile || r->acclog[i].tpl >= r->ntpl || r->acclog[i].escape < 1 || r->acclog[i].escape > 3) FAIL("access_log %u: bad", i);
    for (i = 0; i < r->nerrpage; i++)
        if (!str_ok(r, r->errpage[i].uri) || r->errpage[i].code < 300 || r->errpage[i].code > 599)
            FAIL("error_page %u: bad", i);
    for (i = 0; i < r->nheader; i++)
        if (!str_ok(r, r->header[i].name) || r->header[i].value_tpl >= r->ntpl) FAIL("add_header %u: bad", i);
    for (i = 0; i < r->nconf; i++) {
        const rt_conf *c = &r->conf[i];
        if (!str_ok(r, c->root) || !str_ok(r, c->loc_prefix) || !range_ok(c->index, r->nlist)
            || !idx_range_ok(r, c->try_files, r->ntpl)
            || (c->return_tpl != RT_NONE && c->return_tpl >= r->ntpl)
            || !range_ok(c->error_pages, r->nerrpage) || !range_ok(c->add_headers, r->nheader)
            || !str_ok(r, c->charset) || !range_ok(c->charset_types, r->nlist)
            || !range_ok(c->gzip_types, r->nlist) || !range_ok(c->mime, r->nmime)
            || !str_ok(r, c->default_type) || !range_ok(c->access_logs, r->nacclog)
            || c->root.len >= PF_PATH_MAX || c->gzip_comp_level > 9
            || (c->error_log_file != RT_NONE && c->error_log_file >= r->nlogfile) || c->error_log_level > 7)
            FAIL("conf %u: bad record", i);
    }
    if (pf_px_check_refs(r, err, errlen) < 0) goto fail;
    return 0;
fail:
    return -1;
}

static int compile_re(const pf_router *r, regex_t *re, rt_str pat, int icase, char *err, size_t errlen)
{
    char buf[1024];
    if (pat.len >= sizeof buf) { snprintf(err, errlen, "regex too long"); return -1; }
    memcpy(buf, RT_S(r, pat), pat.len);
    buf[pat.len] = 0;
    int rc = regcomp(re, buf, REG_EXTENDED | REG_NOSUB | (icase ? REG_ICASE : 0));
    if (rc != 0) {
        char msg[128];
        regerror(rc, re, msg, sizeof msg);
        snprintf(err, errlen, "regex \"%s\": %s (POSIX ERE syntax, see docs/differences.md)", buf, msg);
        return -1;
    }
    return 0;
}

pf_router *pf_router_load(const void *blob, size_t len, char *err, size_t errlen)
{
    pf_router *r = calloc(1, sizeof *r);
    if (!r) { snprintf(err, errlen, "calloc: out of memory"); return NULL; }
    r->blob = malloc(len ? len : 1);            /* copy: Python's bytes may go away */
    if (!r->blob) { snprintf(err, errlen, "malloc(%zu): out of memory", len); free(r); return NULL; }
    memcpy(r->blob, blob, len);
    r->len = len;
    if (((uintptr_t)r->blob) % 8) { snprintf(err, errlen, "misaligned"); goto fail; }
    if (bind_sections(r, err, errlen) < 0 || check_refs(r, err, errlen) < 0) goto fail;
    r->name_re = calloc(r->nname + 1, sizeof(regex_t));
    r->loc_re = calloc(r->nloc + 1, sizeof(regex_t));
    if (!r->name_re || !r->loc_re) { snprintf(err, errlen, "calloc: out of memory"); goto fail; }
    for (uint32_t i = 0; i < r->nname; i++)
        if (r->name[i].kind == RT_NAME_REGEX && compile_re(r, &r->name_re[i], r->name[i].name, 0, err, errlen) < 0)
            goto fail;
    for (uint32_t i = 0; i < r->nloc; i++) {
        uint32_t k = r->loc[i].kind;
        if ((k == RT_LOC_REGEX || k == RT_LOC_REGEX_I)
            && compile_re(r, &r->loc_re[i], r->loc[i].pattern, k == RT_LOC_REGEX_I, err, errlen) < 0)
            goto fail;
    }
    return r;
fail:
    pf_router_free(r);
    return NULL;
}

void pf_router_free(pf_router *r)
{
    if (!r) return;
    if (r->name_re)
        for (uint32_t i = 0; i < r->nname; i++)
            if (r->name[i].kind == RT_NAME_REGEX && r->name_re[i].re_nsub != (size_t)-1) regfree(&r->name_re[i]);
    if (r->loc_re)
        for (uint32_t i = 0; i < r->nloc; i++)
            if (r->loc[i].kind == RT_LOC_REGEX || r->loc[i].kind == RT_LOC_REGEX_I) regfree(&r->loc_re[i]);
    free(r->name_re);
    free(r->loc_re);
    free(r->blob);
    free(r);
}

int pf_router_addr_index(const pf_router *r, const char *addr, size_t len)
{
    for (uint32_t i = 0; i < r->naddr; i++)
        if (r->addr[i].addr.len == len && memcmp(RT_S(r, r->addr[i].addr), addr, len) == 0)
            return (int)i;
    return -1;
}

/* Host header -> lower-case name without port and trailing dot (nginx ngx_http_validate_host). */
static size_t host_key(const char *h, size_t n, char *out, size_t cap)
{
    size_t end = n;
    if (n && h[0] == '[') {
        const char *rb = memchr(h, ']', n);
        end = rb ? (size_t)(rb - h) + 1 : n;
    } else {
        const char *colon = memchr(h, ':', n);
        if (colon) end = (size_t)(colon - h);
    }
    while (end && h[end - 1] == '.') end--;
    if (end >= cap) return 0;
    for (size_t i = 0; i < end; i++) out[i] = (char)tolower((unsigned char)h[i]);
    out[end] = 0;
    return end;
}

int pf_router_find_server(const pf_router *r, int addr, const char *host, size_t hlen)
{
    if (addr < 0 || (uint32_t)addr >= r->naddr) return r->naddr ? (int)r->addr[0].default_server : -1;
    const rt_addr *a = &r->addr[addr];
    char key[256];
    size_t klen = host ? host_key(host, hlen, key, sizeof key) : 0;
    if (klen == 0) return (int)a->default_server;
    int head = -1, tail = -1, rex = -1;
    uint32_t headlen = 0, taillen = 0;
    for (uint32_t i = 0; i < a->servers.count; i++) {
        uint32_t si = r->idx[a->servers.first + i];
        const rt_server *s = &r->server[si];
        for (uint32_t k = 0; k < s->names.count; k++) {
            uint32_t ni = s->names.first + k;
            const rt_name *n = &r->name[ni];
            const char *p = RT_S(r, n->name);
            switch (n->kind) {
            case RT_NAME_EXACT:
                if (n->name.len == klen && memcmp(p, key, klen) == 0) return (int)si;
                break;
            case RT_NAME_WILD_HEAD:     /* stored ".example.com": host must be longer */
                if (klen > n->name.len && memcmp(key + klen - n->name.len, p, n->name.len) == 0
                    && n->name.len > headlen) { head = (int)si; headlen = n->name.len; }
                break;
            case RT_NAME_WILD_TAIL:     /* stored "www.": host must be longer */
                if (klen > n->name.len && memcmp(key, p, n->name.len) == 0 && n->name.len > taillen) {
                    tail = (int)si; taillen = n->name.len;
                }
                break;
            case RT_NAME_REGEX:
                if (rex < 0 && regexec(&r->name_re[ni], key, 0, NULL, 0) == 0) rex = (int)si;
                break;
            default:
                break;
            }
        }
    }
    if (head >= 0) return head;
    if (tail >= 0) return tail;
    if (rex >= 0) return rex;
    return (int)a->default_server;
}

enum { FIND_DECLINED = 0, FIND_AGAIN = 1, FIND_OK = 2 };

/* Mirrors nginx's ngx_http_core_find_location: exact, longest prefix (recursing into its
 * nested locations), then this level's regexes in order unless the prefix was ^~. */
static int find_loc(const pf_router *r, rt_range locs, const char *uri, size_t len, int *cur, int depth)
{
    int best = -1, noregex = 0, rc = FIND_DECLINED;
    uint32_t bestlen = 0;
    if (depth > 16) return FIND_DECLINED;
    for (uint32_t i = 0; i < locs.count; i++) {
        uint32_t li = r->idx[locs.first + i];
        const rt_loc *l = &r->loc[li];
        const char *p = RT_S(r, l->pattern);
        if (l->kind == RT_LOC_EXACT) {
            if (l->pattern.len == len && memcmp(p, uri, len) == 0) { *cur = (int)li; return FIND_OK; }
        } else if (l->kind == RT_LOC_PREFIX || l->kind == RT_LOC_NOREGEX) {
            if (l->pattern.len <= len && memcmp(p, uri, l->pattern.len) == 0
                && (best < 0 || l->pattern.len > bestlen)) { best = (int)li; bestlen = l->pattern.len; }
        }
    }
    if (best >= 0) {
        *cur = best;
        noregex = r->loc[best].kind == RT_LOC_NOREGEX;
        rc = find_loc(r, r->loc[best].children, uri, len, cur, depth + 1);
        if (rc == FIND_DECLINED) rc = FIND_AGAIN;
    }
    if (rc == FIND_OK) return rc;
    if (!noregex) {
        for (uint32_t i = 0; i < locs.count; i++) {
            uint32_t li = r->idx[locs.first + i];
            const rt_loc *l = &r->loc[li];
            if ((l->kind == RT_LOC_REGEX || l->kind == RT_LOC_REGEX_I)
                && regexec(&r->loc_re[li], uri, 0, NULL, 0) == 0) {
                *cur = (int)li;
                find_loc(r, l->children, uri, len, cur, depth + 1);
                return FIND_OK;
            }
        }
    }
    return rc;
}

int pf_router_match(const pf_router *r, int server, const char *uri, size_t len, int *loc_out)
{
    int cur = -1;
    if (server < 0 || (uint32_t)server >= r->nserver) return -1;
    /* regexec needs a NUL-terminated subject: uri[len] must be 0 (normalised URIs are). */
    find_loc(r, r->server[server].locs, uri, len, &cur, 0);
    if (loc_out) *loc_out = cur;
    return cur < 0 ? (int)r->server[server].conf : (int)r->loc[cur].conf;
}

int pf_router_find_location(const pf_router *r, int server, const char *uri, size_t len)
{
    char buf[PF_URI_MAX];
    int loc = -1;
    if (len >= sizeof buf) return -1;
    memcpy(buf, uri, len);
    buf[len] = 0;
    pf_router_match(r, server, buf, len, &loc);
    return loc;
}

int pf_router_named(const pf_router *r, int server, const char *name, size_t len)
{
    const rt_server *s = &r->server[server];
    for (uint32_t i = 0; i < s->named.count; i++) {
        uint32_t li = r->idx[s->named.first + i];
        if (r->loc[li].pattern.len == len && memcmp(RT_S(r, r->loc[li].pattern), name, len) == 0)
            return (int)li;
    }
    return -1;
}

const char *pf_mime_lookup(const pf_router *r, const rt_conf *cf, const char *path, size_t len, size_t *tlen)
{
    size_t i = len;
    while (i > 0 && path[i - 1] != '.' && path[i - 1] != '/') i--;
    if (i > 0 && path[i - 1] == '.' && len - i > 0 && len - i < 32) {
        char ext[32];
        size_t n = len - i;
        for (size_t k = 0; k < n; k++) ext[k] = (char)tolower((unsigned char)path[i + k]);
        uint32_t lo = cf->mime.first, hi = cf->mime.first + cf->mime.count;
        while (lo < hi) {                       /* compile.py sorts by ext (bytewise) */
            uint32_t mid = lo + (hi - lo) / 2;
            const rt_mime *m = &r->mime[mid];
            size_t ml = m->ext.len < n ? m->ext.len : n;
            int c = memcmp(RT_S(r, m->ext), ext, ml);
            if (c == 0) c = (m->ext.len > n) - (m->ext.len < n);
            if (c == 0) { *tlen = m->type.len; return RT_S(r, m->type); }
            if (c < 0) lo = mid + 1; else hi = mid;
        }
    }
    *tlen = cf->default_type.len;
    return RT_S(r, cf->default_type);
}

int pf_rt_list_has(const pf_router *r, rt_range list, const char *s, size_t len)
{
    for (uint32_t i = 0; i < list.count; i++) {
        rt_str e = r->list[list.first + i];
        if (e.len == len && strncasecmp(RT_S(r, e), s, len) == 0) return 1;
    }
    return 0;
}
