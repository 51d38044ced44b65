/*
 * worker.c — a front worker: connection pool sized by worker_connections, listeners,
 * accept (EPOLLEXCLUSIVE or the shared accept mutex), the run loop that returns to
 * Python when the signal wake-up fd is readable, drain for graceful stop, error log.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include "pf_int.h"

#define EV_LISTENER (1ull << 63)
#define EV_WAKEUP   (1ull << 62)

static const char *level_names[] = {"emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"};

/* append to a fixed line; *n never passes cap - 1 (room for the newline) */
static void lappend(char *line, size_t cap, size_t *n, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void lappend(char *line, size_t cap, size_t *n, const char *fmt, ...)
{
    if (*n >= cap - 1) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line + *n, cap - 1 - *n, fmt, ap);
    va_end(ap);
    if (k > 0) *n = *n + (size_t)k < cap - 1 ? *n + (size_t)k : cap - 2;
}

void pf_log_error(pf_worker *w, int level, pf_conn *c, pf_req *q, const char *fmt, ...)
{
    /* a request's errors go to its server/location error_log when it has one (nginx) */
    int fd = w->conf.error_log_fd >= 0 ? w->conf.error_log_fd : 2;
    int max = w->conf.error_log_level;
    if (q && q->conf >= 0 && w->rt->conf[q->conf].error_log_file != RT_NONE) {
        const rt_conf *cf = &w->rt->conf[q->conf];
        if (w->alogs && w->alogs[cf->error_log_file].fd >= 0) {
            fd = w->alogs[cf->error_log_file].fd;
            max = (int)cf->error_log_level;
        }
    }
    if (level > max) return;
    char line[2048];
    size_t n = 0;
    struct tm tm;
    time_t now = time(NULL);
    localtime_r(&now, &tm);
    lappend(line, sizeof line, &n, "%04d/%02d/%02d %02d:%02d:%02d [%s] %d#0: ", tm.tm_year + 1900, tm.tm_mon + 1,
         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, level_names[level & 7], w->pid);
    if (c) lappend(line, sizeof line, &n, "*%llu ", (unsigned long long)c->id);
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line + n, sizeof line - n, fmt, ap);
    va_end(ap);
    if (k > 0) n = n + (size_t)k < sizeof line ? n + (size_t)k : sizeof line - 1;
    if (c) {
        char a[64] = "-";
        if (c->peer.sa.sa_family == AF_INET) inet_ntop(AF_INET, &c->peer.in4.sin_addr, a, sizeof a);
        else if (c->peer.sa.sa_family == AF_INET6) inet_ntop(AF_INET6, &c->peer.in6.sin6_addr, a, sizeof a);
        lappend(line, sizeof line, &n, ", client: %s", a);
        if (q && q->server >= 0) {
            const rt_server *s = &w->rt->server[q->server];
            lappend(line, sizeof line, &n, ", server: %.*s", (int)s->name0.len, RT_S(w->rt, s->name0));
        }
        if (q && c->rbuf && q->h.method.len) {
            const char *b = c->rbuf->data + c->rpos;
            size_t rl = q->h.target.off + q->h.target.len + 9 - q->h.method.off;
            lappend(line, sizeof line, &n, ", request: \"%.*s\"", (int)rl, b + q->h.method.off);
            if (q->up && n < sizeof line - 1)
                n += pf_proxy_log_upstream(w, q, line + n, sizeof line - 1 - n);   /* upstream: "..." */
            if (q->h.host_index >= 0) {
                pf_span v = q->h.headers[q->h.host_index].value;
                lappend(line, sizeof line, &n, ", host: \"%.*s\"", (int)v.len, b + v.off);
            }
        }
    }
    line[n++] = '\n';                 /* logf keeps n <= sizeof line - 1 */
    if (write(fd, line, n) < 0) { /* nowhere left to report it */ }
}

void pf_assert_fail(const char *what, const char *file, int line)
{
    char msg[256];
    int n = snprintf(msg, sizeof msg, "pyfront: [alert] %d#0: assertion \"%s\" failed at %s:%d\n",
                     (int)getpid(), what, file, line);
    if (write(2, msg, n > 0 && n < (int)sizeof msg ? (size_t)n : sizeof msg - 1) < 0) { /* aborting anyway */ }
    abort();
}

pf_buf *pf_buf_get(pf_worker *w)
{
    pf_buf *b = w->free_bufs;
    if (b) {
        w->free_bufs = b->next;
        w->nbufs_free--;
        return b;
    }
    b = malloc(sizeof *b + PF_BUF_SIZE);
    if (!b) {
        pf_log_error(w, PF_LOG_ALERT, NULL, NULL, "malloc(%d) failed", PF_BUF_SIZE);
        return NULL;
    }
    b->cap = PF_BUF_SIZE;
    w->nbufs++;
    return b;
}

void pf_buf_put(pf_worker *w, pf_buf *b)
{
    if (!b) return;
    if (b->cap != PF_BUF_SIZE) { free(b); return; }      /* a large header buffer: not pooled */
    /* keep a bounded free list so a burst does not pin memory forever: idle keep-alive
     * connections never need one, so only the busy ones count */
    if (w->nbufs_free >= 32 + 2 * (w->active - w->idle)) {
        free(b);
        w->nbufs--;
        return;
    }
    b->next = w->free_bufs;
    w->free_bufs = b;
    w->nbufs_free++;
}

pf_worker *pf_worker_new(const pf_worker_conf *conf, const void *blob, size_t blob_len, char *err, size_t errlen)
{
    pf_worker *w = calloc(1, sizeof *w);
    if (!w) { snprintf(err, errlen, "calloc: out of memory"); return NULL; }
    w->conf = *conf;
    if (w->conf.max_connections < 4) w->conf.max_connections = 4;
    if (w->conf.accept_mutex_delay_ms <= 0) w->conf.accept_mutex_delay_ms = 500;
    w->pid = getpid();
    w->epfd = -1;
    gethostname(w->hostname, sizeof w->hostname - 1);
    w->rt = pf_router_load(blob, blob_len, err, errlen);
    if (!w->rt) goto fail;
    int n = w->conf.max_connections;
    w->conns = calloc((size_t)n, sizeof(pf_conn));
    w->heap = calloc((size_t)n, sizeof(pf_conn *));
    if (!w->conns || !w->heap) { snprintf(err, errlen, "calloc(%d connections): out of memory", n); goto fail; }
    for (int i = n - 1; i >= 0; i--) {
        w->conns[i].fd = -1;
        w->conns[i].heap_idx = -1;
        w->conns[i].next_free = w->free_conns;
        w->free_conns = &w->conns[i];
    }
    w->nfree = n;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epfd < 0) { snprintf(err, errlen, "epoll_create1() failed (%d: %s)", errno, strerror(errno)); goto fail; }
    if (w->conf.wakeup_fd >= 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = EV_WAKEUP};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->conf.wakeup_fd, &ev) < 0) {
            snprintf(err, errlen, "epoll_ctl(wakeup fd %d) failed (%d: %s)", w->conf.wakeup_fd, errno, strerror(errno));
            goto fail;
        }
    }
    pf_update_time(w);
    if (pf_alog_open_all(w) < 0) { snprintf(err, errlen, "cannot open an access log (see the error log)"); goto fail; }
    w->next_flush_ms = w->now_ms + 1000;
    return w;
fail:
    pf_worker_free(w);
    return NULL;
}

static int listener_register(pf_worker *w, pf_listener *l, int on)
{
    if (l->registered == on || l->fd < 0) return 0;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = EV_LISTENER | (uint64_t)(l - w->ls)};
    /* accept_mutex off: EPOLLEXCLUSIVE wakes one waiting worker per connection (Linux
     * 4.5+), which is what nginx does since 1.11.3. reuseport sockets are ours alone. */
    if (!w->conf.accept_mutex && !l->reuseport) ev.events |= EPOLLEXCLUSIVE;
    if (epoll_ctl(w->epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, l->fd, &ev) < 0) {
        pf_log_error(w, PF_LOG_ALERT, NULL, NULL, "epoll_ctl(%s, listener %s) failed (%d: %s)",
                     on ? "ADD" : "DEL", l->name, errno, strerror(errno));
        return -1;
    }
    l->registered = on;
    return 0;
}

int pf_worker_add_listener(pf_worker *w, int fd, const char *addr, int reuseport)
{
    if (w->nls >= PF_MAX_LISTENERS) return -1;
    pf_listener *l = &w->ls[w->nls];
    memset(l, 0, sizeof *l);
    l->fd = fd;
    l->reuseport = reuseport;
    snprintf(l->name, sizeof l->name, "%s", addr);
    l->addr = pf_router_addr_index(w->rt, addr, strlen(addr));
    const char *colon = strrchr(addr, ':');
    l->port = (colon && strncmp(addr, "unix:", 5) != 0) ? atoi(colon + 1) : 80;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        pf_log_error(w, PF_LOG_ALERT, NULL, NULL, "fcntl(O_NONBLOCK, %s) failed (%d: %s)", addr, errno, strerror(errno));
        return -1;
    }
    w->nls++;
    if (!w->conf.accept_mutex || reuseport) return listener_register(w, l, 1);
    return 0;
}

static void update_shm(pf_worker *w)
{
    if (!w->conf.shm) return;
    size_t off = 64 + (size_t)w->conf.index * sizeof(pf_shm_slot);
    if (off + sizeof(pf_shm_slot) > w->conf.shm_len) return;
    pf_shm_slot *s = (pf_shm_slot *)((char *)w->conf.shm + off);
    s->heartbeat_ms = (uint64_t)w->now_ms;
    s->accepted = w->accepted;
    s->requests = w->requests;
    s->active = w->active;
    s->idle = w->idle;
    s->pid = (uint32_t)w->pid;
    s->generation = (uint32_t)w->conf.generation;
    s->reading = w->reading;
    s->writing = w->writing;
}

void pf_accept_ready(pf_worker *w, pf_listener *l)
{
    for (int k = 0; k < 64; k++) {
        union { struct sockaddr sa; struct sockaddr_in in4; struct sockaddr_in6 in6; struct sockaddr_storage ss; } peer;
        socklen_t plen = sizeof peer;
        if (!w->free_conns) {
            /* nginx: "worker_connections are not enough". Leave the rest in the backlog and
             * stop listening until a connection closes (a level-triggered listener would
             * otherwise wake us in a busy loop); pf_worker_conn_freed resumes. */
            pf_log_error(w, PF_LOG_ALERT, NULL, NULL, "%d worker_connections are not enough", w->conf.max_connections);
            for (int i = 0; i < w->nls; i++) listener_register(w, &w->ls[i], 0);
            w->accept_paused = 1;
            return;
        }
        int fd = accept4(l->fd, &peer.sa, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) return;
            pf_log_error(w, errno == EMFILE || errno == ENFILE ? PF_LOG_CRIT : PF_LOG_ALERT, NULL, NULL,
                         "accept4() failed (%d: %s)", errno, strerror(errno));
            return;
        }
        pf_conn *c = w->free_conns;
        w->free_conns = c->next_free;
        w->nfree--;
        uint32_t gen = c->gen + 1;
        memset(c, 0, sizeof *c);
        c->gen = gen;
        c->fd = fd;
        c->heap_idx = -1;
        c->listener = (uint16_t)(l - w->ls);
        c->id = ++w->conn_seq;
        if (peer.sa.sa_family == AF_INET) c->peer.in4 = peer.in4;
        else if (peer.sa.sa_family == AF_INET6) c->peer.in6 = peer.in6;
        else c->peer.sa.sa_family = AF_UNIX;
        if (peer.sa.sa_family != AF_UNIX) {
            int one = 1;
            if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
                pf_log_error(w, PF_LOG_WARN, c, NULL, "setsockopt(TCP_NODELAY) failed (%d: %s)", errno, strerror(errno));
        }
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                 .data.u64 = ((uint64_t)(c - w->conns) << 32) | c->gen};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            pf_log_error(w, PF_LOG_ALERT, c, NULL, "epoll_ctl(ADD, %d) failed (%d: %s)", fd, errno, strerror(errno));
            close(fd);
            c->fd = -1;
            c->state = CS_FREE;
            c->gen++;
            c->next_free = w->free_conns;
            w->free_conns = c;
            w->nfree++;
            continue;
        }
        w->accepted++;
        w->active++;
        pf_conn_accepted(w, c);
        if (!w->conf.multi_accept) return;
    }
}

void pf_worker_conn_freed(pf_worker *w)
{
    if (!w->accept_paused || w->draining) return;
    w->accept_paused = 0;
    for (int i = 0; i < w->nls; i++)
        if (!w->conf.accept_mutex || w->ls[i].reuseport) listener_register(w, &w->ls[i], 1);
}

static void close_listeners(pf_worker *w)
{
    for (int i = 0; i < w->nls; i++) {
        pf_listener *l = &w->ls[i];
        listener_register(w, l, 0);
        if (l->fd >= 0 && close(l->fd) < 0)
            pf_log_error(w, PF_LOG_ALERT, NULL, NULL, "close(listener %s) failed (%d: %s)", l->name, errno, strerror(errno));
        l->fd = -1;
    }
}

/* accept_mutex on: only the holder has the shared listeners in its epoll set. */
static int mutex_turn(pf_worker *w)
{
    if (!w->conf.accept_mutex || w->draining || !w->conf.shm) return -1;
    /* nginx's accept_disabled: a worker over 7/8 of its pool stops competing */
    if (w->nfree < w->conf.max_connections / 8) goto release;
    if (pf_shmtx_trylock(w->conf.shm, w->pid)) {
        w->holds_mutex = 1;
        for (int i = 0; i < w->nls; i++) if (!w->ls[i].reuseport) listener_register(w, &w->ls[i], 1);
        return -1;
    }
release:
    for (int i = 0; i < w->nls; i++) if (!w->ls[i].reuseport) listener_register(w, &w->ls[i], 0);
    return w->conf.accept_mutex_delay_ms;
}

int pf_worker_run(pf_worker *w, int max_ms)
{
    int64_t until = pf_now_ms() + (max_ms < 0 ? 3600 * 1000 : max_ms);
    for (;;) {
        pf_update_time(w);
        if (w->draining && w->active == 0) return PF_RUN_DRAINED;
        int left = (int)(until - w->now_ms);
        if (left <= 0) return PF_RUN_TICK;
        int wait = left > 1000 ? 1000 : left;      /* heartbeat at least once a second */
        int d = mutex_turn(w);
        if (d >= 0 && d < wait) wait = d;
        int rc = pf_loop_poll(w, wait);
        if (w->holds_mutex) {
            pf_shmtx_unlock(w->conf.shm, w->pid);
            w->holds_mutex = 0;
        }
        update_shm(w);
        if (rc < 0) return rc;
        if (rc == PF_RUN_WAKEUP) return PF_RUN_WAKEUP;
    }
}

void pf_worker_drain(pf_worker *w, int deadline_ms)
{
    if (w->draining) return;
    w->draining = 1;
    pf_update_time(w);
    w->drain_deadline = w->now_ms + (deadline_ms < 0 ? 0 : deadline_ms);
    close_listeners(w);
    for (int i = 0; i < w->conf.max_connections; i++)
        if (w->conns[i].state != CS_FREE) pf_conn_drain(w, &w->conns[i]);
}

int pf_worker_reopen_logs(pf_worker *w)
{
    pf_alog_flush_all(w);
    pf_alog_close_all(w);
    return pf_alog_open_all(w);
}

void pf_worker_free(pf_worker *w)
{
    if (!w) return;
    if (w->conns) {
        for (int i = 0; i < w->conf.max_connections; i++)
            if (w->conns[i].state != CS_FREE) pf_conn_close(w, &w->conns[i]);
    }
    pf_alog_flush_all(w);
    pf_alog_close_all(w);
    pf_proxy_free(w);
    for (int i = 0; i < PF_FCACHE_SLOTS; i++) {
        pf_fent *e = w->fcache[i];
        if (e) { e->hash = 0; e->refs = 1; pf_fent_release(w, e); }
        w->fcache[i] = NULL;
    }
    while (w->free_bufs) { pf_buf *b = w->free_bufs; w->free_bufs = b->next; free(b); }
    while (w->free_reqs) { pf_req *q = w->free_reqs; w->free_reqs = q->next_free; free(q); }
    if (w->epfd >= 0) close(w->epfd);
    free(w->alogs);
    free(w->conns);
    free(w->heap);
    pf_router_free(w->rt);
    free(w);
}

void pf_worker_get_stats(pf_worker *w, pf_worker_stats *out)
{
    out->accepted = w->accepted;
    out->requests = w->requests;
    out->active = w->active;
    out->idle = w->idle;
    out->buffers_total = w->nbufs;
    out->buffers_free = w->nbufs_free;
}

size_t pf_conn_size(void) { return sizeof(pf_conn); }
