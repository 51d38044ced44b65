/*
 * proxy_conf.c — the proxy sections of the route table (written by
 * pyfront.config.compile_proxy): bounds-checked once at load, like router.c's.
 */
#include <stdio.h>
#include <sys/socket.h>
#include "pf_int.h"

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)

static int str_ok(const pf_router *r, rt_str s) { return s.off <= r->nstr && s.len <= r->nstr - s.off; }
static int range_ok(rt_range g, uint32_t n) { return g.first <= n && g.count <= n - g.first; }

int pf_px_check_refs(const pf_router *r, char *err, size_t errlen)
{
    if (r->npxconf && r->npxconf != r->nconf) FAIL("proxy: %u proxy records for %u confs", r->npxconf, r->nconf);
    for (uint32_t i = 0; i < r->nparam; i++)
        if (!str_ok(r, r->param[i].name) || r->param[i].tpl >= r->ntpl) FAIL("proxy param %u: bad record", i);
    for (uint32_t i = 0; i < r->npeer; i++) {
        const rt_peer *p = &r->peer[i];
        if (!str_ok(r, p->name) || !str_ok(r, p->sa) || p->sa.len < sizeof(sa_family_t)
            || p->sa.len > sizeof(struct sockaddr_storage))
            FAIL("upstream peer %u: bad record", i);
    }
    for (uint32_t i = 0; i < r->nupstream; i++) {
        const rt_upstream *u = &r->upstream[i];
        if (!str_ok(r, u->name) || !range_ok(u->peers, r->npeer) || u->peers.count == 0
            || u->peers.count > PF_LB_MAX_PEERS || u->nprimary == 0 || u->nprimary > u->peers.count
            || u->method > PF_LB_RANDOM || (u->hash_tpl != RT_NONE && u->hash_tpl >= r->ntpl))
            FAIL("upstream %u: bad record", i);
    }
    for (uint32_t i = 0; i < r->npxconf; i++) {
        const rt_pxconf *c = &r->pxconf[i];
        if (c->handler > PX_STUB_STATUS || !range_ok(c->params, r->nparam) || !range_ok(c->hide, r->nlist)
            || !str_ok(r, c->temp_path) || !str_ok(r, c->uri) || !str_ok(r, c->match_prefix)
            || !str_ok(r, c->proxy_host) || !str_ok(r, c->redirect_from) || !str_ok(r, c->redirect_to)
            || c->modifier1 > 255 || c->modifier2 > 255
            || ((c->handler == PX_UWSGI || c->handler == PX_HTTP) && c->upstream >= r->nupstream))
            FAIL("proxy conf %u: bad record", i);
    }
    return 0;
}

const rt_pxconf *pf_px_conf(const pf_router *r, int conf)
{
    if (conf < 0 || (uint32_t)conf >= r->npxconf) return NULL;
    const rt_pxconf *c = &r->pxconf[conf];
    return c->handler == PX_NONE ? NULL : c;
}
