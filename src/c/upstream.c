/*
 * upstream.c — peer selection as nginx does it, and the worker's upstream state.
 *
 * Balancer: smooth weighted round-robin (ngx_http_upstream_round_robin.c: every pick adds
 * each usable peer's effective weight to its current weight, takes the largest and
 * subtracts the total), least_conn (fewest conns/weight, ties by round-robin), ip_hash
 * (first three octets of IPv4 / all of IPv6, nginx's 89/113/6271 hash, 20 rehashes then
 * round-robin), hash KEY (crc32, rehash with the try number) and `hash KEY consistent`
 * (ketama-style points, 160 per weight), random (weighted).
 * Failures: fails >= max_fails within fail_timeout -> the peer is skipped until
 * fail_timeout has passed, then tried once; a success after that resets fails. A single
 * peer (nginx's `single`: one server, no backup) is never skipped for failures.
 * Backups are used only when no primary is usable.
 *
 * State is per worker process, as nginx's without a `zone`.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include "pf_int.h"

typedef struct {
    pf_peer_conf conf;
    int fails, conns;
    int64_t accessed, checked;
    int64_t current, effective;
} lb_peer;

typedef struct { uint32_t hash; uint32_t peer; } lb_point;

struct pf_balancer {
    int method, consistent;
    uint32_t n, nprimary;
    uint32_t total_primary_weight;
    uint32_t seed;
    lb_peer *p;
    lb_point *points; uint32_t npoints;
};

/* ---- crc32 (the IEEE polynomial nginx's ngx_crc32 uses) ------------------- */
static uint32_t crc_table[256];
static void crc_init(void)
{
    if (crc_table[1]) return;
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}
static uint32_t crc_update(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return crc;
}

static int point_cmp(const void *a, const void *b)
{
    uint32_t x = ((const lb_point *)a)->hash, y = ((const lb_point *)b)->hash;
    return x < y ? -1 : x > y;
}

/* ketama points: for each peer, 160 x weight points hashed from "host\0port" + previous hash */
static int build_points(pf_balancer *b)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < b->nprimary; i++) total += 160ull * b->p[i].conf.weight;
    if (total == 0 || total > (1u << 22)) return -1;
    b->points = malloc(sizeof(lb_point) * total);
    if (!b->points) return -1;
    for (uint32_t i = 0; i < b->nprimary; i++) {
        const pf_peer_conf *pc = &b->p[i].conf;
        const char *name = pc->name ? pc->name : "";
        size_t hl = pc->name_len, pl = 0;
        const char *port = "";
        const char *colon = NULL;
        if (hl >= 5 && memcmp(name, "unix:", 5) == 0) colon = NULL;
        else for (size_t k = hl; k > 0; k--) if (name[k - 1] == ':') { colon = name + k - 1; break; }
        if (colon) { port = colon + 1; pl = hl - (size_t)(colon + 1 - name); hl = (size_t)(colon - name); }
        uint32_t base = crc_update(0xffffffffu, name, hl);
        base = crc_update(base, "", 1);
        base = crc_update(base, port, pl);
        uint32_t prev = 0;
        for (uint32_t j = 0; j < 160u * pc->weight; j++) {
            unsigned char pb[4] = {prev & 0xff, (prev >> 8) & 0xff, (prev >> 16) & 0xff, prev >> 24};
            uint32_t h = crc_update(base, pb, 4) ^ 0xffffffffu;
            b->points[b->npoints].hash = h;
            b->points[b->npoints].peer = i;
            b->npoints++;
            prev = h;
        }
    }
    qsort(b->points, b->npoints, sizeof(lb_point), point_cmp);
    return 0;
}

pf_balancer *pf_balancer_new(int method, int consistent, const pf_peer_conf *peers, uint32_t n)
{
    if (n == 0 || n > PF_LB_MAX_PEERS || method < PF_LB_ROUND_ROBIN || method > PF_LB_RANDOM) return NULL;
    crc_init();
    pf_balancer *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->p = calloc(n, sizeof(lb_peer));
    if (!b->p) { free(b); return NULL; }
    b->method = method;
    b->consistent = consistent;
    b->n = n;
    b->seed = (uint32_t)getpid() * 2654435761u;
    for (uint32_t i = 0; i < n; i++) {
        b->p[i].conf = peers[i];
        if (b->p[i].conf.weight == 0) b->p[i].conf.weight = 1;
        b->p[i].effective = b->p[i].conf.weight;
        if (!peers[i].backup) {
            b->nprimary = i + 1;
            b->total_primary_weight += b->p[i].conf.weight;
        }
    }
    if (method == PF_LB_HASH && consistent && build_points(b) < 0) { pf_balancer_free(b); return NULL; }
    return b;
}

void pf_balancer_free(pf_balancer *b)
{
    if (!b) return;
    free(b->points);
    free(b->p);
    free(b);
}

void pf_lb_ctx_init(pf_lb_ctx *ctx) { memset(ctx, 0, sizeof *ctx); ctx->hash = 89; }

uint32_t pf_balancer_tries(const pf_balancer *b) { return b->n; }

static int is_tried(const pf_lb_ctx *x, uint32_t i) { return (x->tried[i / 64] >> (i % 64)) & 1; }
static void set_tried(pf_lb_ctx *x, uint32_t i) { x->tried[i / 64] |= 1ull << (i % 64); x->ntried++; }

static int usable(const lb_peer *p, int64_t now)
{
    if (p->conf.down) return 0;
    if (p->conf.max_fails && p->fails >= (int)p->conf.max_fails && now - p->checked <= p->conf.fail_timeout_ms)
        return 0;
    if (p->conf.max_conns && p->conns >= (int)p->conf.max_conns) return 0;
    return 1;
}

static void picked(pf_balancer *b, pf_lb_ctx *x, uint32_t i, int64_t now)
{
    lb_peer *p = &b->p[i];
    set_tried(x, i);
    if (now - p->checked > p->conf.fail_timeout_ms) p->checked = now;
    p->conns++;
}

/* smooth weighted round-robin over [from, to) */
static int rr_best(pf_balancer *b, pf_lb_ctx *x, uint32_t from, uint32_t to, int64_t now)
{
    lb_peer *best = NULL;
    int64_t total = 0;
    uint32_t bi = 0;
    for (uint32_t i = from; i < to; i++) {
        lb_peer *p = &b->p[i];
        if (is_tried(x, i) || !usable(p, now)) continue;
        p->current += p->effective;
        total += p->effective;
        if (p->effective < p->conf.weight) p->effective++;
        if (!best || p->current > best->current) { best = p; bi = i; }
    }
    if (!best) return -1;
    best->current -= total;
    picked(b, x, bi, now);
    return (int)bi;
}

static int least_conn_best(pf_balancer *b, pf_lb_ctx *x, uint32_t from, uint32_t to, int64_t now)
{
    lb_peer *best = NULL;
    int many = 0;
    uint32_t bi = 0;
    for (uint32_t i = from; i < to; i++) {
        lb_peer *p = &b->p[i];
        if (is_tried(x, i) || !usable(p, now)) continue;
        /* conns/weight compared without division, as nginx */
        if (!best || (int64_t)p->conns * best->conf.weight < (int64_t)best->conns * p->conf.weight) {
            best = p; bi = i; many = 0;
        } else if ((int64_t)p->conns * best->conf.weight == (int64_t)best->conns * p->conf.weight) {
            many = 1;
        }
    }
    if (!best) return -1;
    if (many) {   /* ties: smooth weighted round-robin among the least loaded */
        int64_t total = 0;
        lb_peer *tie = NULL;
        uint32_t ti = bi;
        for (uint32_t i = bi; i < to; i++) {
            lb_peer *p = &b->p[i];
            if (is_tried(x, i) || !usable(p, now)) continue;
            if ((int64_t)p->conns * best->conf.weight != (int64_t)best->conns * p->conf.weight) continue;
            p->current += p->effective;
            total += p->effective;
            if (p->effective < p->conf.weight) p->effective++;
            if (!tie || p->current > tie->current) { tie = p; ti = i; }
        }
        tie->current -= total;
        bi = ti;
    }
    picked(b, x, bi, now);
    return (int)bi;
}

static int by_weight(pf_balancer *b, uint32_t w)
{
    uint32_t i = 0;
    while (i + 1 < b->nprimary && w >= b->p[i].conf.weight) { w -= b->p[i].conf.weight; i++; }
    return (int)i;
}

static int ip_hash_pick(pf_balancer *b, pf_lb_ctx *x, int64_t now, const unsigned char *a, size_t alen)
{
    size_t n = alen == 4 ? 3 : alen;      /* IPv4: a /24 maps to one server */
    uint32_t hash = x->hash;
    for (;;) {
        for (size_t i = 0; i < n; i++) hash = (hash * 113 + a[i]) % 6271;
        int p = by_weight(b, hash % b->total_primary_weight);
        if (!is_tried(x, (uint32_t)p) && usable(&b->p[p], now)) {
            x->hash = hash;
            picked(b, x, (uint32_t)p, now);
            return p;
        }
        if (++x->tries > 20) { x->hash = hash; return -2; }
    }
}

static int hash_pick(pf_balancer *b, pf_lb_ctx *x, int64_t now, const char *key, size_t klen)
{
    for (;;) {
        uint32_t h = 0xffffffffu;
        if (x->rehash > 0) {
            char num[16];
            int nl = 0;
            uint32_t v = x->rehash;
            char rev[16];
            do { rev[nl++] = (char)('0' + v % 10); v /= 10; } while (v);
            for (int i = 0; i < nl; i++) num[i] = rev[nl - 1 - i];
            h = crc_update(h, num, (size_t)nl);
        }
        h = crc_update(h, key, klen) ^ 0xffffffffu;
        h = (h >> 16) & 0x7fff;
        x->hash += h;
        x->rehash++;
        int p = by_weight(b, x->hash % b->total_primary_weight);
        if (!is_tried(x, (uint32_t)p) && usable(&b->p[p], now)) {
            picked(b, x, (uint32_t)p, now);
            return p;
        }
        if (++x->tries > 20) return -2;
    }
}

static int chash_pick(pf_balancer *b, pf_lb_ctx *x, int64_t now, const char *key, size_t klen)
{
    uint32_t h = crc_update(0xffffffffu, key, klen) ^ 0xffffffffu;
    uint32_t lo = 0, hi = b->npoints;
    while (lo < hi) {                                   /* first point >= h */
        uint32_t mid = lo + (hi - lo) / 2;
        if (b->points[mid].hash < h) lo = mid + 1; else hi = mid;
    }
    for (uint32_t k = 0; k < b->npoints; k++) {
        uint32_t p = b->points[(lo + k + x->rehash) % b->npoints].peer;
        if (!is_tried(x, p) && usable(&b->p[p], now)) {
            picked(b, x, p, now);
            return (int)p;
        }
        if (++x->tries > 20) return -2;
    }
    return -2;
}

static int random_pick(pf_balancer *b, pf_lb_ctx *x, int64_t now)
{
    for (int k = 0; k < 20; k++) {
        b->seed = b->seed * 1103515245u + 12345u;
        int p = by_weight(b, (b->seed >> 8) % b->total_primary_weight);
        if (!is_tried(x, (uint32_t)p) && usable(&b->p[p], now)) { picked(b, x, (uint32_t)p, now); return p; }
    }
    return -2;
}

int pf_balancer_get(pf_balancer *b, pf_lb_ctx *x, int64_t now, const char *key, size_t klen)
{
    if (b->n == 1) {                   /* nginx's `single`: failures never make it unusable */
        lb_peer *p = &b->p[0];
        if (is_tried(x, 0) || p->conf.down || (p->conf.max_conns && p->conns >= (int)p->conf.max_conns))
            return PF_LB_NO_LIVE;
        set_tried(x, 0);
        p->conns++;
        return 0;
    }
    int r = -2;
    if (!x->backup) {
        switch (b->method) {
        case PF_LB_IP_HASH:
            if (x->tries <= 20 && (klen == 4 || klen == 16))
                r = ip_hash_pick(b, x, now, (const unsigned char *)key, klen);
            break;
        case PF_LB_HASH:
            if (x->tries <= 20 && klen > 0)
                r = b->consistent ? chash_pick(b, x, now, key, klen) : hash_pick(b, x, now, key, klen);
            break;
        case PF_LB_RANDOM:
            r = random_pick(b, x, now);
            break;
        case PF_LB_LEAST_CONN:
            r = least_conn_best(b, x, 0, b->nprimary, now);
            break;
        default:
            break;
        }
        if (r == -2 || (r == -1 && b->method != PF_LB_LEAST_CONN)) r = rr_best(b, x, 0, b->nprimary, now);
        if (r >= 0) return r;
        if (b->nprimary == b->n) return PF_LB_NO_LIVE;
        x->backup = 1;                 /* every primary tried or unusable: the backups */
    }
    r = b->method == PF_LB_LEAST_CONN ? least_conn_best(b, x, b->nprimary, b->n, now)
                                      : rr_best(b, x, b->nprimary, b->n, now);
    return r >= 0 ? r : PF_LB_NO_LIVE;
}

int pf_balancer_done(pf_balancer *b, int peer, int failed, int64_t now)
{
    if (peer < 0 || (uint32_t)peer >= b->n) return 0;
    lb_peer *p = &b->p[peer];
    if (p->conns > 0) p->conns--;
    if (b->n == 1) return 0;
    if (failed) {
        p->fails++;
        p->accessed = now;
        p->checked = now;
        if (p->conf.max_fails) {
            p->effective -= p->conf.weight / p->conf.max_fails;
            if (p->effective < 0) p->effective = 0;
            return p->fails == (int)p->conf.max_fails;
        }
        return 0;
    }
    if (p->accessed < p->checked) p->fails = 0;
    return 0;
}

/* ---- the worker's upstream state ------------------------------------------ */
static pf_balancer *balancer_for(const pf_router *r, const rt_upstream *u)
{
    pf_peer_conf pc[PF_LB_MAX_PEERS];
    uint32_t n = u->peers.count;
    if (n > PF_LB_MAX_PEERS) n = PF_LB_MAX_PEERS;
    for (uint32_t i = 0; i < n; i++) {
        const rt_peer *p = &r->peer[u->peers.first + i];
        pc[i].name = RT_S(r, p->name);
        pc[i].name_len = p->name.len;
        pc[i].weight = p->weight;
        pc[i].max_fails = p->max_fails;
        pc[i].fail_timeout_ms = p->fail_timeout_ms;
        pc[i].max_conns = p->max_conns;
        pc[i].backup = !!(p->flags & RT_PEER_BACKUP);
        pc[i].down = !!(p->flags & RT_PEER_DOWN);
    }
    return pf_balancer_new((int)u->method, (int)u->consistent, pc, n);
}

pf_px *pf_px_get(pf_worker *w)
{
    if (w->px) return w->px;
    pf_px *px = calloc(1, sizeof *px);
    if (!px) return NULL;
    const pf_router *r = w->rt;
    px->nups = r->nupstream;
    px->ups = calloc(px->nups + 1, sizeof(pf_ups_state));
    if (!px->ups) { free(px); return NULL; }
    for (uint32_t i = 0; i < px->nups; i++) {
        px->ups[i].lb = balancer_for(r, &r->upstream[i]);
        if (!px->ups[i].lb) {
            pf_log_error(w, PF_LOG_ALERT, NULL, NULL, "upstream \"%.*s\": cannot set up its balancer",
                         (int)r->upstream[i].name.len, RT_S(r, r->upstream[i].name));
            continue;
        }
        if (r->upstream[i].keepalive)
            px->ups[i].ka = calloc(r->upstream[i].keepalive, sizeof(pf_ka_conn));
    }
    w->px = px;
    return px;
}

void pf_proxy_free(pf_worker *w)
{
    pf_px *px = w->px;
    if (!px) return;
    for (uint32_t i = 0; i < px->nups; i++) {
        for (uint32_t k = 0; k < px->ups[i].nka; k++) close(px->ups[i].ka[k].fd);
        free(px->ups[i].ka);
        pf_balancer_free(px->ups[i].lb);
    }
    free(px->ups);
    while (px->free_ups) { pf_up *u = px->free_ups; px->free_ups = u->next_free; free(u); }
    while (px->free_pkts) { pf_buf *b = px->free_pkts; px->free_pkts = b->next; free(b); }
    free(px);
    w->px = NULL;
}

int pf_ups_get_peer(pf_worker *w, uint32_t ups, pf_lb_ctx *ctx, const char *key, size_t klen)
{
    pf_px *px = pf_px_get(w);
    if (!px || ups >= px->nups || !px->ups[ups].lb) return PF_LB_NO_LIVE;
    return pf_balancer_get(px->ups[ups].lb, ctx, w->now_ms, key, klen);
}

void pf_ups_free_peer(pf_worker *w, uint32_t ups, int peer, int failed)
{
    pf_px *px = w->px;
    if (!px || ups >= px->nups || !px->ups[ups].lb) return;
    if (pf_balancer_done(px->ups[ups].lb, peer, failed, w->now_ms)) {
        const rt_upstream *u = &w->rt->upstream[ups];
        const rt_peer *p = &w->rt->peer[u->peers.first + (uint32_t)peer];
        pf_log_error(w, PF_LOG_WARN, NULL, NULL, "upstream server temporarily disabled: %.*s",
                     (int)p->name.len, RT_S(w->rt, p->name));
    }
}

/* 64 KiB+ buffers for the outgoing packet (uwsgi vars may reach 65535 bytes) */
pf_buf *pf_px_pkt_get(pf_worker *w)
{
    pf_px *px = pf_px_get(w);
    if (px && px->free_pkts) {
        pf_buf *b = px->free_pkts;
        px->free_pkts = b->next;
        px->nfree_pkts--;
        return b;
    }
    pf_buf *b = malloc(sizeof *b + PX_PKT_SIZE);
    if (!b) { pf_log_error(w, PF_LOG_ALERT, NULL, NULL, "malloc(%d) failed", PX_PKT_SIZE); return NULL; }
    b->cap = PX_PKT_SIZE;
    return b;
}

void pf_px_pkt_put(pf_worker *w, pf_buf *b)
{
    if (!b) return;
    if (b->cap == PF_BUF_SIZE) { pf_buf_put(w, b); return; }   /* the pooled size (proxy_encode.c) */
    pf_px *px = w->px;
    if (!px || px->nfree_pkts >= 8) { free(b); return; }
    b->next = px->free_pkts;
    px->free_pkts = b;
    px->nfree_pkts++;
}

/* ---- upstream keep-alive cache (proxy_pass with HTTP/1.1 and `keepalive N`, and
 * uwsgi_pass to pyfront's own app: docs/proxy.md) ------------------------------------ */
/* closed by the upstream while parked? a 1-byte peek tells (EOF or junk): 1 = usable */
static int ka_alive(int fd)
{
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static void ka_close(pf_worker *w, int fd)
{
    if (close(fd) < 0)
        pf_log_error(w, PF_LOG_ALERT, NULL, NULL, "close() failed (%d: %s)", errno, strerror(errno));
}

int pf_ka_take(pf_worker *w, uint32_t ups, int peer, uint32_t *requests, uint64_t *tag)
{
    pf_px *px = w->px;
    if (!px || ups >= px->nups) return -1;
    pf_ups_state *s = &px->ups[ups];
    const rt_upstream *u = &w->rt->upstream[ups];
    /* First the connection this client connection used last, if it is parked: it is still
     * registered under this very epoll tag, so no EPOLL_CTL_MOD is needed (keep-alive
     * clients mostly find theirs: one syscall less per request). */
    for (uint32_t i = s->nka; i-- > 0;) {
        pf_ka_conn k = s->ka[i];
        if (k.tag != *tag || k.peer != peer || w->now_ms - k.since > u->keepalive_timeout_ms) continue;
        memmove(s->ka + i, s->ka + i + 1, sizeof(pf_ka_conn) * (s->nka - i - 1));
        s->nka--;
        if (ka_alive(k.fd)) { *requests = k.requests; return k.fd; }
        ka_close(w, k.fd);
        break;
    }
    for (uint32_t i = s->nka; i-- > 0;) {          /* most recent first (LIFO, as nginx) */
        pf_ka_conn k = s->ka[i];
        int stale = w->now_ms - k.since > u->keepalive_timeout_ms;
        if (!stale && k.peer != peer) continue;    /* another server's: keep it */
        memmove(s->ka + i, s->ka + i + 1, sizeof(pf_ka_conn) * (s->nka - i - 1));
        s->nka--;
        if (!stale && ka_alive(k.fd)) { *requests = k.requests; *tag = k.tag; return k.fd; }
        ka_close(w, k.fd);
    }
    return -1;
}

void pf_ka_park(pf_worker *w, uint32_t ups, int peer, int fd, uint32_t requests, uint64_t tag)
{
    pf_px *px = w->px;
    const rt_upstream *u = &w->rt->upstream[ups];
    if (!px || ups >= px->nups || !px->ups[ups].ka || requests >= u->keepalive_requests) { close(fd); return; }
    pf_ups_state *s = &px->ups[ups];
    if (s->nka == u->keepalive) {                  /* full: drop the oldest */
        close(s->ka[0].fd);
        memmove(s->ka, s->ka + 1, sizeof(pf_ka_conn) * (s->nka - 1));
        s->nka--;
    }
    s->ka[s->nka].fd = fd;
    s->ka[s->nka].peer = peer;
    s->ka[s->nka].since = w->now_ms;
    s->ka[s->nka].requests = requests;
    s->ka[s->nka].tag = tag;
    s->nka++;
}
