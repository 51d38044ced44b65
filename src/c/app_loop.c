/*
 * app_loop.c — the app worker's HTTP connection multiplexer (http-socket mode).
 *
 * Why: thread-per-connection cannot serve keep-alive clients — with `threads = 1` one
 * idle keep-alive client would hold the worker for http-timeout while every other client
 * waits in the accept queue (gunicorn sync/gthread and uWSGI http-socket share this
 * limit). Here an epoll set holds every connection; pf_app_loop_next() returns only a
 * connection whose request head is complete (read and parsed in C), so Python runs the
 * app and nothing else. Measured on this machine (wrk -c 32, one pinned worker):
 * blocking per-connection threads 46 µs CPU/request, this loop ~15 µs.
 *
 * threads == 1: level-triggered, batches of up to PF_APP_BATCH events per epoll_wait
 * (bjoern's model: ~2 syscalls per keep-alive request). threads > 1: EPOLLONESHOT, one
 * event per epoll_wait, re-armed in pf_app_loop_done, so each connection belongs to one
 * thread at a time. A mutex guards the connection table (accept, close, idle sweep).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pf.h"

#define TAG_LISTEN (1ull << 32)
#define TAG_WAKE   (2ull << 32)
#define SWEEP_MS   1000
#define DRAIN_TICK_MS 100   /* a draining worker closes connections quiet for this long */

typedef struct {
    int fd;
    int listener;
    int busy;              /* handed to Python (between next() and done()) */
    int64_t last_ms;       /* last activity, for http-timeout */
    uint32_t have;
    uint32_t peer_len;
    char peer[64];         /* "addr\0port" (REMOTE_ADDR, REMOTE_PORT), formatted once per connection */
    char buf[];
} conn_t;

struct pf_app_loop {
    int ep, wakefd, n, oneshot, idle_ms;
    int lfds[PF_APP_MAX_LISTEN];
    int is_http[PF_APP_MAX_LISTEN];
    uint32_t bufsize;
    int max_conns;
    conn_t **conns;        /* by fd */
    pthread_mutex_t lock;
    int64_t next_sweep;
    int draining;          /* graceful stop: no more accepts; serve what is buffered, then STOP */
    int nconns;
    pf_http_limits limits;
    int graceful;          /* pf_app_loop_graceful: answers stop offering keep-alive */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int arm(pf_app_loop *l, int fd, int op)
{
    struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | (l->oneshot ? EPOLLONESHOT : 0), .data.u64 = (uint64_t)fd };
    return epoll_ctl(l->ep, op, fd, &ev);
}

pf_app_loop *pf_app_loop_new(const int *lfds, const int *is_http, int n, int wakefd, uint32_t bufsize,
                             int threads, int idle_ms, int *err)
{
    if (n < 1 || n > PF_APP_MAX_LISTEN) {
        *err = EINVAL;
        return NULL;
    }
    pf_app_loop *l = calloc(1, sizeof *l);
    if (!l) {
        *err = ENOMEM;
        return NULL;
    }
    struct rlimit rl;
    l->max_conns = (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536) ? (int)rl.rlim_cur : 65536;
    l->conns = calloc((size_t)l->max_conns, sizeof *l->conns);
    l->ep = epoll_create1(EPOLL_CLOEXEC);
    if (!l->conns || l->ep < 0) {
        *err = l->ep < 0 ? errno : ENOMEM;
        if (l->ep >= 0)
            close(l->ep);
        free(l->conns);
        free(l);
        return NULL;
    }
    pthread_mutex_init(&l->lock, NULL);
    l->n = n;
    l->wakefd = wakefd;
    l->bufsize = bufsize;
    l->oneshot = threads > 1;
    l->idle_ms = idle_ms;
    l->limits.max_request_line = bufsize;
    l->limits.max_header_line = bufsize;
    l->next_sweep = now_ms() + SWEEP_MS;
    for (int i = 0; i < n; i++) {
        l->lfds[i] = lfds[i];
        l->is_http[i] = is_http[i];
        if (is_http[i]) {
            /* accept() only once the request's first bytes are in (TCP only; EOPNOTSUPP
             * on unix sockets is fine): the accepting thread can serve it at once. */
            int secs = 1;
            setsockopt(lfds[i], IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs, sizeof secs);
        }
        /* EPOLLEXCLUSIVE: one waiter per new connection across threads and processes */
        struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.u64 = TAG_LISTEN | (uint64_t)i };
        if (epoll_ctl(l->ep, EPOLL_CTL_ADD, lfds[i], &ev) < 0)
            goto fail;
    }
    struct epoll_event wev = { .events = EPOLLIN, .data.u64 = TAG_WAKE };
    if (epoll_ctl(l->ep, EPOLL_CTL_ADD, wakefd, &wev) < 0)
        goto fail;
    return l;
fail:
    *err = errno;
    close(l->ep);
    free(l->conns);
    free(l);
    return NULL;
}

/* Caller holds l->lock. */
static void close_conn_locked(pf_app_loop *l, conn_t *c)
{
    l->conns[c->fd] = NULL;
    l->nconns--;
    close(c->fd);          /* also removes it from the epoll set */
    free(c);
}

void pf_app_loop_free(pf_app_loop *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->lock);
    for (int fd = 0; fd < l->max_conns; fd++)
        if (l->conns[fd])
            close_conn_locked(l, l->conns[fd]);
    pthread_mutex_unlock(&l->lock);
    close(l->ep);
    free(l->conns);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

/* Close keep-alive connections idle for longer than http-timeout. */
static void sweep(pf_app_loop *l, int64_t now)
{
    pthread_mutex_lock(&l->lock);
    if (now >= l->next_sweep) {
        l->next_sweep = now + SWEEP_MS;
        for (int fd = 0; fd < l->max_conns; fd++) {
            conn_t *c = l->conns[fd];
            if (c && !c->busy && now - c->last_ms > l->idle_ms)
                close_conn_locked(l, c);
        }
    }
    pthread_mutex_unlock(&l->lock);
}

static int serve_conn(pf_app_loop *l, int fd, pf_app_ready *ctx);

static uint32_t format_peer(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "";
    unsigned port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
    }
    int n = snprintf(out, cap, "%s%c%u", host, 0, port);
    return (n < 0 || (size_t)n >= cap) ? 0 : (uint32_t)n;
}

/* Accept one connection from listener i. HTTP connections join the epoll set; a uwsgi
 * connection is returned for Python to serve (one request per connection). One per
 * wake-up, not a drained queue: only a free thread waits in epoll_wait, so connections
 * spread over the processes that have a free thread (draining 16 at once put four slow
 * requests on one process of two, measured by test_processes_and_threads_serve_concurrently).
 * The listener is level-triggered: what is left wakes the next free waiter. */
static int accept_some(pf_app_loop *l, int i, pf_app_ready *ctx, int *err)
{
    for (int k = 0; k < 1; k++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(l->lfds[i], (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                return 0;
            *err = errno;
            return PF_APP_IOERR;
        }
        if (!l->is_http[i]) {
            ctx->fd = fd;
            ctx->listener = i;
            ctx->kind = PF_APP_READY_UWSGI;
            return 1;
        }
        conn_t *c = fd < l->max_conns ? malloc(sizeof *c + l->bufsize) : NULL;
        if (!c) {
            close(fd);     /* over the fd table or out of memory: refuse this one */
            continue;
        }
        c->fd = fd;
        c->listener = i;
        c->busy = 0;
        c->have = 0;
        c->last_ms = now_ms();
        c->peer_len = format_peer(&ss, c->peer, sizeof c->peer);
        pthread_mutex_lock(&l->lock);
        l->conns[fd] = c;
        l->nconns++;
        pthread_mutex_unlock(&l->lock);
        if (arm(l, fd, EPOLL_CTL_ADD) < 0) {
            pthread_mutex_lock(&l->lock);
            close_conn_locked(l, c);
            pthread_mutex_unlock(&l->lock);
            continue;
        }
        /* The accepting thread is free: serve the request now if it is already here
         * (TCP_DEFER_ACCEPT makes that the rule on TCP), so a connection is not parked
         * in a process whose threads are all busy. */
        return serve_conn(l, fd, ctx);
    }
    return 0;
}

/* A readable connection: read, parse; 1 = a complete head (or a parse error) in ctx. */
static int serve_conn(pf_app_loop *l, int fd, pf_app_ready *ctx)
{
    pthread_mutex_lock(&l->lock);
    conn_t *c = fd < l->max_conns ? l->conns[fd] : NULL;
    if (c && c->busy)
        c = NULL;          /* a stale event for a connection another thread holds */
    if (c)
        c->busy = 1;       /* claimed: the idle sweep leaves it alone */
    pthread_mutex_unlock(&l->lock);
    if (!c)
        return 0;
    for (;;) {
        if (c->have) {
            int rc = pf_http_parse_request(c->buf, c->have, &l->limits, &ctx->req);
            if (rc == PF_NEED_MORE && c->have >= l->bufsize)
                rc = PF_E_HEADER_TOO_LARGE;
            if (rc != PF_NEED_MORE) {
                ctx->fd = fd;
                ctx->listener = c->listener;
                ctx->kind = PF_APP_READY_HTTP;
                ctx->status = rc;
                ctx->buf = c->buf;
                ctx->have = c->have;
                ctx->peer = c->peer;
                ctx->peer_len = c->peer_len;
                return 1;
            }
        }
        ssize_t r = recv(fd, c->buf + c->have, l->bufsize - c->have, 0);
        if (r > 0) {
            c->have += (uint32_t)r;
            c->last_ms = now_ms();
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        pthread_mutex_lock(&l->lock);
        if (r < 0 && errno == EAGAIN) {
            c->busy = 0;
            if (l->oneshot && arm(l, fd, EPOLL_CTL_MOD) < 0)
                close_conn_locked(l, c);
        } else {
            close_conn_locked(l, c);   /* EOF or reset: the client is gone */
        }
        pthread_mutex_unlock(&l->lock);
        return 0;
    }
}

/* Graceful stop (the wake fd): stop accepting, keep serving requests already on their
 * way, close keep-alive connections once they are quiet. Old workers draining this way
 * while the new generation accepts is what makes a reload lose no request. */
static void start_draining(pf_app_loop *l)
{
    pthread_mutex_lock(&l->lock);
    if (!l->draining) {
        l->draining = 1;
        for (int i = 0; i < l->n; i++)
            epoll_ctl(l->ep, EPOLL_CTL_DEL, l->lfds[i], NULL);
        epoll_ctl(l->ep, EPOLL_CTL_DEL, l->wakefd, NULL);
    }
    pthread_mutex_unlock(&l->lock);
}

/* Draining and nothing arrived for a tick: idle connections will not get a response. */
static void close_idle(pf_app_loop *l)
{
    pthread_mutex_lock(&l->lock);
    for (int fd = 0; fd < l->max_conns; fd++) {
        conn_t *c = l->conns[fd];
        if (c && !c->busy && !c->have)
            close_conn_locked(l, c);
    }
    pthread_mutex_unlock(&l->lock);
}

static int drained(pf_app_loop *l)
{
    pthread_mutex_lock(&l->lock);
    int done = l->nconns == 0;
    pthread_mutex_unlock(&l->lock);
    return done;
}

int pf_app_loop_next(pf_app_loop *l, pf_app_ready *ctx, int timeout_ms, int *err)
{
    struct epoll_event evs[PF_APP_BATCH];
    for (;;) {
        while (ctx->ipending < ctx->npending) {
            uint64_t tag = ctx->pending[ctx->ipending++];
            int r;
            if (tag == TAG_WAKE) {
                start_draining(l);
                continue;
            }
            if (tag & TAG_LISTEN)
                r = accept_some(l, (int)(tag & 0xffffffffu), ctx, err);
            else
                r = serve_conn(l, (int)tag, ctx);
            if (r != 0)
                return r;
        }
        int64_t now = now_ms();
        if (now >= l->next_sweep)
            sweep(l, now);
        int wait = timeout_ms < 0 || timeout_ms > SWEEP_MS ? SWEEP_MS : timeout_ms;
        if (l->draining) {
            if (drained(l))
                return PF_APP_STOP;
            wait = DRAIN_TICK_MS;
        }
        int n = epoll_wait(l->ep, evs, l->oneshot ? 1 : PF_APP_BATCH, wait);
        if (n < 0) {
            if (errno == EINTR)
                return PF_APP_AGAIN;
            *err = errno;
            return PF_APP_IOERR;
        }
        if (n == 0) {
            if (l->draining)
                close_idle(l);
            else if (timeout_ms >= 0)
                return PF_APP_AGAIN;
            continue;
        }
        ctx->npending = n;
        ctx->ipending = 0;
        for (int i = 0; i < n; i++)
            ctx->pending[i] = evs[i].data.u64;
    }
}

void pf_app_loop_done(pf_app_loop *l, pf_app_ready *ctx, uint32_t consumed, int keep)
{
    int fd = ctx->fd;
    pthread_mutex_lock(&l->lock);
    conn_t *c = fd >= 0 && fd < l->max_conns ? l->conns[fd] : NULL;
    if (!c) {
        pthread_mutex_unlock(&l->lock);
        return;
    }
    if (!keep || consumed > c->have || l->draining) {
        close_conn_locked(l, c);
        pthread_mutex_unlock(&l->lock);
        return;
    }
    c->have -= consumed;
    if (c->have)
        memmove(c->buf, c->buf + consumed, c->have);   /* a pipelined request */
    c->last_ms = now_ms();
    c->busy = 0;
    pthread_mutex_unlock(&l->lock);
    if (c->have && ctx->ipending > 0) {
        ctx->pending[--ctx->ipending] = (uint64_t)fd;  /* parse it next, before new events */
    } else if (c->have && ctx->npending < PF_APP_BATCH && ctx->ipending == ctx->npending) {
        ctx->pending[0] = (uint64_t)fd;
        ctx->ipending = 0;
        ctx->npending = 1;
    } else if (l->oneshot) {
        if (arm(l, fd, EPOLL_CTL_MOD) < 0) {
            pthread_mutex_lock(&l->lock);
            if (l->conns[fd] == c)
                close_conn_locked(l, c);
            pthread_mutex_unlock(&l->lock);
        }
    }
}

int pf_app_loop_set_rest(pf_app_loop *l, pf_app_ready *ctx, const char *rest, uint32_t len)
{
    int fd = ctx->fd;
    if (fd < 0 || fd >= l->max_conns || len > l->bufsize)
        return -1;
    pthread_mutex_lock(&l->lock);
    conn_t *c = l->conns[fd];
    if (c) {
        memcpy(c->buf, rest, len);   /* the thread holds the connection (busy): nobody else reads buf */
        c->have = len;
    }
    pthread_mutex_unlock(&l->lock);
    return c ? 0 : -1;
}

/* One call per keep-alive request for the Python side: give back the previous request
 * (unless ctx->fd < 0 or it was a uwsgi connection, which Python closes), wait for the
 * next one and, for HTTP, write its flat environ + info[] (pf_app_ready_environ).
 * Each cffi call releases and re-takes the GIL and converts its arguments: measured
 * with bench/app_cost.py, done + next + environ as three calls cost ~3,000 more
 * instructions per request than this one. */
int pf_app_loop_step(pf_app_loop *l, pf_app_ready *ctx, uint32_t consumed, int keep,
                     char *out, size_t cap, int64_t *info, int *err)
{
    if (ctx->fd >= 0 && ctx->kind == PF_APP_READY_HTTP)
        pf_app_loop_done(l, ctx, consumed, keep);
    ctx->fd = -1;
    int r = pf_app_loop_next(l, ctx, -1, err);
    if (r != 1)
        return r;
    if (ctx->kind == PF_APP_READY_UWSGI)
        return PF_APP_UWSGI;
    if (ctx->status < 0)
        return PF_APP_BADREQ;
    int n = pf_app_ready_environ(ctx, out, cap, info);
    if (n < 0) {
        ctx->status = n;       /* the environ does not fit: answered as a too large head */
        return PF_APP_BADREQ;
    }
    info[8] = info[9] = 0;
    if (info[4] & 16)
        return n;              /* repeated header names: Python joins them from the flat form */
    int is_new = 0;
    int v = pf_app_shape_split(&ctx->sh, out, (size_t)n, ctx->vals, sizeof ctx->vals, &is_new);
    if (v < 0) {
        ctx->status = PF_E_HEADER_TOO_LARGE;
        return PF_APP_BADREQ;
    }
    info[8] = ctx->sh.shape;
    info[9] = is_new;
    return v;
}

/* Called from the worker's signal handler (main thread) the moment a graceful stop is
 * asked, before the wake byte reaches epoll: responses in flight then already say
 * "Connection: close" instead of promising a keep-alive the drain would break. */
void pf_app_loop_graceful(pf_app_loop *l)
{
    __atomic_store_n(&l->graceful, 1, __ATOMIC_RELAXED);
}

int pf_app_loop_keeps(const pf_app_loop *l)
{
    return !__atomic_load_n(&l->graceful, __ATOMIC_RELAXED) && !__atomic_load_n(&l->draining, __ATOMIC_RELAXED);
}
