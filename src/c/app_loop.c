/*
 * app_loop.c — the app worker's connection multiplexer: HTTP keep-alive clients
 * (http-socket) and uwsgi connections, which pyfront's front keeps open between requests
 * when it marks its packets (docs/proxy.md "Persistent connections to pyfront's own app");
 * an unmarked uwsgi connection (nginx's) is closed after its response.
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
    int uwsgi;             /* a uwsgi-protocol connection (docs/proxy.md: persistent when the packet is marked) */
    int armed;             /* in the epoll set (a uwsgi connection joins it only when it must wait) */
    int ended;             /* uwsgi, a packet cut short: PF_APP_CLOSED (peer closed) or PF_APP_TIMEOUT */
    int busy;              /* handed to Python (between next() and done()) */
    int64_t last_ms;       /* last activity, for http-timeout */
    uint32_t cap;          /* bytes of buf: the loop's bufsize, more for an adopted connection */
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
    uint32_t max_datasize; /* uwsgi buffer-size (pf_app_loop_uwsgi_limit) */
    int packet_ms;         /* uwsgi socket-timeout: a packet started must be complete within it */
    int hot;               /* uwsgi listener that just gave a connection (threads == 1), -1: none */
    int hot_runs;          /* accepts in a row without an epoll_wait */
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
    l->max_datasize = bufsize > PF_UWSGI_HEAD ? bufsize - PF_UWSGI_HEAD : 0;
    l->packet_ms = idle_ms;
    l->hot = -1;
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

/* Close keep-alive connections idle for longer than http-timeout. A uwsgi packet started
 * but not finished within socket-timeout goes to Python (pending) to be logged as uWSGI
 * does ("timed out ... reading a uwsgi packet"), then closed. */
static void sweep(pf_app_loop *l, int64_t now, pf_app_ready *ctx)
{
    pthread_mutex_lock(&l->lock);
    if (now >= l->next_sweep) {
        l->next_sweep = now + SWEEP_MS;
        for (int fd = 0; fd < l->max_conns; fd++) {
            conn_t *c = l->conns[fd];
            if (!c || c->busy)
                continue;
            if (c->uwsgi && c->have && !c->ended && now - c->last_ms > l->packet_ms
                && ctx->ipending == ctx->npending && ctx->npending < PF_APP_BATCH) {
                c->ended = PF_APP_TIMEOUT;
                ctx->pending[ctx->npending++] = (uint64_t)fd;
            } else if (now - c->last_ms > l->idle_ms && !c->ended) {
                close_conn_locked(l, c);
            }
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
        l->hot = fd >= 0 && !l->is_http[i] && !l->oneshot ? i : -1;
        if (fd < 0) {
            if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                return 0;
            *err = errno;
            return PF_APP_IOERR;
        }
        conn_t *c = fd < l->max_conns ? malloc(sizeof *c + l->bufsize) : NULL;
        if (!c) {
            close(fd);     /* over the fd table or out of memory: refuse this one */
            continue;
        }
        c->fd = fd;
        c->cap = l->bufsize;
        c->listener = i;
        c->uwsgi = !l->is_http[i];
        c->armed = 0;
        c->ended = 0;
        c->busy = 0;
        c->have = 0;
        c->last_ms = now_ms();
        /* uwsgi: REMOTE_ADDR comes in the packet (from the front), nothing to format */
        c->peer_len = c->uwsgi ? 0 : format_peer(&ss, c->peer, sizeof c->peer);
        pthread_mutex_lock(&l->lock);
        l->conns[fd] = c;
        l->nconns++;
        pthread_mutex_unlock(&l->lock);
        if (c->uwsgi && ss.ss_family != AF_UNIX) {
            /* a kept connection carries many responses; a streamed one is several writes, and
             * Nagle would hold its last chunk for the front's delayed ACK (up to 40 ms) */
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        if (c->uwsgi)
            return serve_conn(l, fd, ctx);   /* nginx writes the packet right after connect(): it is
                                                usually here, and the connection joins the epoll set
                                                only if it must wait (serve_conn) or is kept (done) */
        c->armed = 1;
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

/* A uwsgi connection's buffer holds a whole packet head (4 + datasize bytes), or one the
 * parser will refuse anyway (HTTP bytes, another modifier1, over buffer-size): step()
 * parses it once, writing the flat vars straight into the caller's buffer. */
static int uwsgi_ready(const pf_app_loop *l, const conn_t *c)
{
    if (c->have < PF_UWSGI_HEAD)
        return 0;
    const unsigned char *p = (const unsigned char *)c->buf;
    uint32_t datasize = (uint32_t)p[1] | ((uint32_t)p[2] << 8);
    if ((p[0] != 0 && p[0] != 30) || datasize > l->max_datasize)
        return 1;
    return c->have >= PF_UWSGI_HEAD + datasize || c->have >= c->cap;
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
        if (c->uwsgi && c->have && (c->ended || uwsgi_ready(l, c))) {
            ctx->fd = fd;
            ctx->listener = c->listener;
            ctx->kind = PF_APP_READY_UWSGI;
            ctx->status = c->ended;          /* 0, or a cut-short packet for Python to log */
            ctx->buf = c->buf;
            ctx->have = c->have;
            ctx->peer = c->peer;
            ctx->peer_len = 0;
            return 1;
        }
        if (c->have && !c->uwsgi) {
            int rc = pf_http_parse_request(c->buf, c->have, &l->limits, &ctx->req);
            if (rc == PF_NEED_MORE && c->have >= c->cap)
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
        ssize_t r = recv(fd, c->buf + c->have, c->cap - c->have, 0);
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
            if (!c->armed) {
                c->armed = 1;
                if (arm(l, fd, EPOLL_CTL_ADD) < 0)
                    close_conn_locked(l, c);
            } else if (l->oneshot && arm(l, fd, EPOLL_CTL_MOD) < 0) {
                close_conn_locked(l, c);
            }
        } else if (c->uwsgi && c->have) {
            c->ended = PF_APP_CLOSED;  /* a packet cut short: Python logs it, then done() closes */
            pthread_mutex_unlock(&l->lock);
            continue;
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
        /* One connection per request (nginx -> uwsgi): while the listener keeps giving
         * connections and no other connection is open, accept the next one at once instead
         * of asking epoll first (the old blocking loop's accept-first: one epoll_wait less
         * per request, measured with strace -c); bounded so the wake fd is seen. */
        if (l->hot >= 0 && !l->draining && l->nconns == 0 && l->hot_runs < PF_APP_BATCH) {
            l->hot_runs++;
            int r = accept_some(l, l->hot, ctx, err);
            if (r != 0)
                return r;
            continue;
        }
        l->hot = -1;
        l->hot_runs = 0;
        int64_t now = now_ms();
        if (now >= l->next_sweep) {
            ctx->npending = ctx->ipending = 0;
            sweep(l, now, ctx);
            if (ctx->npending)
                continue;                /* cut-short uwsgi packets to report */
        }
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
    /* a kept uwsgi connection served at accept time joins the epoll set now; with bytes
     * left (pipelined) it is parsed from pending first and serve_conn arms it on EAGAIN */
    int add = !c->armed && !c->have, armed = c->armed;
    uint32_t have = c->have;
    if (add)
        c->armed = 1;
    pthread_mutex_unlock(&l->lock);
    if (have && ctx->ipending > 0) {
        ctx->pending[--ctx->ipending] = (uint64_t)fd;  /* parse it next, before new events */
    } else if (have && ctx->npending < PF_APP_BATCH && ctx->ipending == ctx->npending) {
        ctx->pending[0] = (uint64_t)fd;
        ctx->ipending = 0;
        ctx->npending = 1;
    } else if (add || l->oneshot || !armed) {
        pthread_mutex_lock(&l->lock);
        if (l->conns[fd] == c) {        /* not closed meanwhile (draining's close_idle) */
            int op = c->armed && !add ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
            c->armed = 1;
            if (arm(l, fd, op) < 0)
                close_conn_locked(l, c);
        }
        pthread_mutex_unlock(&l->lock);
    }
}

/* A uwsgi connection the blocking loop accepted and read (app_io.c pf_app_uwsgi_next), whose
 * packet turned out marked: it joins the table with the bytes read so far, first in
 * ctx->pending, so the next step() serves it from here on. */
int pf_app_loop_adopt(pf_app_loop *l, pf_app_ready *ctx, int fd, int listener, const char *bytes, uint32_t len)
{
    uint32_t cap = len > l->bufsize ? len : l->bufsize;
    conn_t *c = fd >= 0 && fd < l->max_conns && listener >= 0 && listener < l->n ? malloc(sizeof *c + cap) : NULL;
    if (!c)
        return -1;
    c->fd = fd;
    c->cap = cap;
    c->listener = listener;
    c->uwsgi = 1;
    c->armed = 0;
    c->ended = 0;
    c->busy = 0;
    c->have = len;
    memcpy(c->buf, bytes, len);
    c->last_ms = now_ms();
    c->peer_len = 0;
    int one = 1;               /* TCP: see accept_some (on a unix socket this fails harmlessly) */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    pthread_mutex_lock(&l->lock);
    l->conns[fd] = c;
    l->nconns++;
    pthread_mutex_unlock(&l->lock);
    ctx->fd = -1;
    ctx->pending[0] = (uint64_t)fd;
    ctx->ipending = 0;
    ctx->npending = 1;
    return 0;
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

void pf_app_loop_uwsgi_limit(pf_app_loop *l, uint32_t max_datasize, int packet_timeout_ms)
{
    l->max_datasize = max_datasize;
    l->packet_ms = packet_timeout_ms;
}

/* A complete uwsgi packet head in ctx->buf: parse it once, its flat vars into out (tidied
 * as pf_app_uwsgi_next does), the values split by shape; info as pf.h describes. */
static int uwsgi_environ(pf_app_loop *l, pf_app_ready *ctx, char *out, size_t cap, int64_t *info)
{
    pf_uwsgi_packet *pkt = &ctx->pkt;
    if (ctx->status < 0)
        return PF_APP_UWSGI_BAD;        /* cut short: PF_APP_CLOSED / PF_APP_TIMEOUT */
    int rc = pf_uwsgi_parse(ctx->buf, ctx->have, l->max_datasize, pkt, NULL, 0, out, cap);
    if (rc == PF_NEED_MORE)
        rc = PF_E_UWSGI_TOO_BIG;        /* the buffer is full and the head still incomplete */
    if (rc < 0) {
        ctx->status = rc;
        return PF_APP_UWSGI_BAD;
    }
    int flags = 0;
    if (pkt->modifier2 == PF_UWSGI_KEEP || pkt->modifier2 == PF_UWSGI_KEEP_HEAD)
        flags |= PF_UWSGI_PERSIST | (pkt->modifier2 == PF_UWSGI_KEEP_HEAD ? PF_UWSGI_NOBODY : 0);
    if (pkt->flat_nul || pkt->flat_dup || pkt->modifier1 == 30)
        flags |= PF_UWSGI_SLOW;         /* Python takes the general path */
    else
        pf_app_uwsgi_tidy(out, &pkt->flat_len, &flags);
    int n = (int)pkt->flat_len, shape = 0, is_new = 0;
    if (!(flags & PF_UWSGI_SLOW)) {
        n = pf_app_shape_split(&ctx->sh, out, pkt->flat_len, ctx->vals, sizeof ctx->vals, &is_new);
        if (n < 0) {
            ctx->status = PF_E_UWSGI_TOO_BIG;
            return PF_APP_UWSGI_BAD;
        }
        shape = ctx->sh.shape;
    }
    info[0] = ctx->fd;
    info[1] = rc;
    info[2] = flags;
    info[3] = ctx->listener;
    info[4] = ctx->have;
    info[5] = pkt->nvars;
    info[6] = pkt->datasize;
    info[7] = n;
    info[8] = shape;
    info[9] = is_new;
    return PF_APP_UWSGI;
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
    if (ctx->fd >= 0)
        pf_app_loop_done(l, ctx, consumed, keep);
    ctx->fd = -1;
    int r = pf_app_loop_next(l, ctx, -1, err);
    if (r != 1)
        return r;
    if (ctx->kind == PF_APP_READY_UWSGI)
        return uwsgi_environ(l, ctx, out, cap, info);
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
