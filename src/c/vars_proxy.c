/*
 * vars_proxy.c — the $variables proxy configs use (uwsgi_param, proxy_set_header,
 * hash keys, log formats): $proxy_add_x_forwarded_for, $proxy_host, $request_id,
 * $request_port, $upstream_addr, ... vars.c hands every id it does not know here.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <sys/random.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "pf_int.h"

static size_t cpy(char *out, size_t cap, const char *s, size_t n)
{
    if (n > cap) n = cap;
    memcpy(out, s, n);
    return n;
}

static size_t remote_addr(pf_conn *c, char *out, size_t cap)
{
    char tmp[64];
    if (c->peer.sa.sa_family == AF_INET) inet_ntop(AF_INET, &c->peer.in4.sin_addr, tmp, sizeof tmp);
    else if (c->peer.sa.sa_family == AF_INET6) inet_ntop(AF_INET6, &c->peer.in6.sin6_addr, tmp, sizeof tmp);
    else strcpy(tmp, "unix:");
    return cpy(out, cap, tmp, strlen(tmp));
}

/* Host value split like nginx's ngx_http_validate_host: name (lower-cased, no trailing
 * dot) and the port after it ($request_port) */
static void host_parts(pf_conn *c, pf_req *q, const char **h, size_t *hl, const char **port, size_t *pl)
{
    *h = NULL; *hl = 0; *port = NULL; *pl = 0;
    if (!q || !c->rbuf || !q->h.host.len) return;
    const char *v = pf_req_base(c) + q->h.host.off;
    size_t n = q->h.host.len, e = n;
    if (v[0] == '[') { const char *rb = memchr(v, ']', n); if (rb) e = (size_t)(rb - v) + 1; }
    else { const char *colon = memchr(v, ':', n); if (colon) e = (size_t)(colon - v); }
    if (e < n && v[e] == ':') { *port = v + e + 1; *pl = n - e - 1; }
    while (e && v[e - 1] == '.') e--;
    *h = v;
    *hl = e;
}

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* $request_id: 16 random bytes as 32 hex digits, as nginx makes it (RAND_bytes there), made
 * once per request so the log line, the uwsgi param and the header agree. The bytes come
 * from a per-worker pool refilled by getrandom() 4 KiB at a time: one syscall per 256
 * requests instead of one per request. */
static void request_id(pf_worker *w, pf_conn *c, pf_req *q)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t b[16];
    if (w->rnd_left < sizeof b) {
        ssize_t n = getrandom(w->rnd, sizeof w->rnd, GRND_NONBLOCK);
        if (n < (ssize_t)sizeof b) {
            /* entropy pool not ready (early boot) or the call failed: ids stay unique, not
             * unpredictable */
            pf_log_error(w, PF_LOG_ALERT, c, q, "getrandom() failed (%d: %s) while making $request_id", errno,
                         strerror(errno));
            uint64_t x = mix(((uint64_t)w->pid << 40) ^ ((uint64_t)c->id << 16) ^ c->nreq);
            uint64_t y = mix(x ^ (uint64_t)q->start_ms);
            memcpy(w->rnd, &x, 8);
            memcpy(w->rnd + 8, &y, 8);
            n = 16;
        }
        w->rnd_left = (uint32_t)n;
    }
    w->rnd_left -= sizeof b;
    memcpy(b, w->rnd + w->rnd_left, sizeof b);
    for (size_t i = 0; i < sizeof b; i++) {
        q->rid[2 * i] = hex[b[i] >> 4];
        q->rid[2 * i + 1] = hex[b[i] & 15];
    }
    q->rid_set = 1;
}

size_t pf_proxy_var(pf_worker *w, pf_conn *c, pf_req *q, uint32_t var, const char *arg, size_t alen, char *out,
                    size_t cap)
{
    pf_up *u = q ? q->up : NULL;
    const rt_pxconf *pc = u ? u->pc : (q ? pf_px_conf(w->rt, q->conf) : NULL);
    const char *h, *port;
    size_t hl, pl;
    switch (var) {
    case V_HOST: {
        host_parts(c, q, &h, &hl, &port, &pl);
        if (hl) {
            size_t n = hl < cap ? hl : cap;
            for (size_t i = 0; i < n; i++) out[i] = (char)((h[i] >= 'A' && h[i] <= 'Z') ? h[i] + 32 : h[i]);
            return n;
        }
        if (q && q->server >= 0) {
            rt_str s = w->rt->server[q->server].name0;
            return cpy(out, cap, RT_S(w->rt, s), s.len);
        }
        return 0;
    }
    case V_REQUEST_PORT:
        host_parts(c, q, &h, &hl, &port, &pl);
        return cpy(out, cap, port ? port : "", pl);
    case V_IS_REQUEST_PORT:
        host_parts(c, q, &h, &hl, &port, &pl);
        return pl ? cpy(out, cap, ":", 1) : 0;
    case V_PROXY_ADD_XFF: {
        size_t n = 0, vl;
        const char *v = pf_req_header(c, q, "x-forwarded-for", 15, &vl);
        if (v) {
            /* every X-Forwarded-For field, joined, then ours */
            const char *b = pf_req_base(c);
            for (uint32_t i = 0; i < q->h.nheaders; i++) {
                pf_span nm = q->h.headers[i].name;
                if (nm.len != 15 || strncasecmp(b + nm.off, "x-forwarded-for", 15) != 0) continue;
                n += cpy(out + n, cap - n, b + q->h.headers[i].value.off, q->h.headers[i].value.len);
                n += cpy(out + n, cap - n, ", ", 2);
            }
        }
        return n + remote_addr(c, out + n, cap - n);
    }
    case V_PROXY_HOST: return pc ? cpy(out, cap, RT_S(w->rt, pc->proxy_host), pc->proxy_host.len) : 0;
    case V_PROXY_PORT: return pc && pc->proxy_port ? (size_t)snprintf(out, cap, "%u", pc->proxy_port) : 0;
    case V_REQUEST_ID:
        if (!q || cap < 32) return 0;
        if (!q->rid_set) request_id(w, c, q);
        return cpy(out, cap, q->rid, 32);
    case V_HTTPS: return 0;
    case V_BINARY_REMOTE_ADDR:
        if (c->peer.sa.sa_family == AF_INET) return cpy(out, cap, (const char *)&c->peer.in4.sin_addr, 4);
        if (c->peer.sa.sa_family == AF_INET6) return cpy(out, cap, (const char *)&c->peer.in6.sin6_addr, 16);
        return 0;
    case V_UPSTREAM_ADDR: {
        int pi = u ? (u->peer >= 0 ? u->peer : u->last_peer) : -1;
        if (pi < 0) return 0;
        const rt_upstream *up = &w->rt->upstream[u->pc->upstream];
        const rt_peer *p = &w->rt->peer[up->peers.first + (uint32_t)pi];
        return cpy(out, cap, RT_S(w->rt, p->name), p->name.len);
    }
    case V_UPSTREAM_STATUS:
        if (!u) return 0;
        return (size_t)snprintf(out, cap, "%d", u->status ? u->status : u->final_status ? u->final_status : 502);
    case V_UPSTREAM_RESPONSE_TIME:
        if (!u || !u->first_try_ms) return 0;
        return (size_t)snprintf(out, cap, "%.3f", (double)(w->now_ms - u->first_try_ms) / 1000.0);
    case V_UPSTREAM_CONNECT_TIME:
        return u && u->first_try_ms ? (size_t)snprintf(out, cap, "%.3f", (double)u->t_connect / 1000.0) : 0;
    case V_UPSTREAM_HEADER_TIME:
        return u && u->t_header ? (size_t)snprintf(out, cap, "%.3f", (double)u->t_header / 1000.0) : 0;
    case V_UPSTREAM_RESPONSE_LENGTH:
        return u ? (size_t)snprintf(out, cap, "%llu", (unsigned long long)u->resp_bytes) : 0;
    case V_REALPATH_ROOT:
        if (q && q->conf >= 0) return cpy(out, cap, RT_S(w->rt, w->rt->conf[q->conf].root), w->rt->conf[q->conf].root.len);
        return 0;
    case V_PIPE: return cpy(out, cap, c->rbuf && c->rlen > c->rpos + (q ? q->head_len : 0) ? "p" : ".", 1);
    case V_REQUEST_COMPLETION: return q && q->status && (!u || u->phase == PXP_DONE) ? cpy(out, cap, "OK", 2) : 0;
    case V_UPSTREAM_HTTP: {
        if (!u || !u->hbuf || u->phase != PXP_RELAY) return 0;
        int i = pf_http_header_index(u->hbuf->data, u->resp.headers, u->resp.nheaders, arg, alen, 0);
        if (i < 0) return 0;
        return cpy(out, cap, u->hbuf->data + u->resp.headers[i].value.off, u->resp.headers[i].value.len);
    }
    default:
        return 0;
    }
}
