/*
 * proxy.c — the upstream leg of a client connection (uwsgi_pass / proxy_pass).
 *
 * The client connection stays in CS_UPSTREAM while this runs; phases of the request:
 *
 *   BODY -> CONNECT     body read and checked (body.c), packet encoded (proxy_encode.c)
 *   CONNECT -> SEND     non-blocking connect finished (unix sockets usually at once)
 *   SEND -> HEAD        packet + body written (one writev, then sendfile for a temp file)
 *   HEAD -> RELAY       response head parsed and rewritten for the client
 *   RELAY -> DONE       body relayed; conn.c's WRITE state then logs and keeps alive
 *   CONNECT|SEND|HEAD -> CONNECT   next upstream server (uwsgi_next_upstream rules)
 *   any -> DONE         error page (502/504/413/...) queued for the client, or close
 *
 * Nothing reaches an upstream before the whole request (head and body) is read and
 * validated, so a request the parser refuses (CL+TE, bad chunk sizes, ...) never does.
 * Relay: a bounded ring of pooled buffers (uwsgi_buffers worth with buffering on, one
 * buffer with it off): the upstream is read only while the ring has room, so a slow
 * client never makes the worker hold more than that, and a fast backend is drained
 * into it ahead of the client.
 */
#include <assert.h>
#include <stddef.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include "pf_int.h"

void pf_conn_set_state(pf_worker *w, pf_conn *c, int to);

/* ---- small helpers ------------------------------------------------------- */
static const rt_upstream *ups_of(pf_worker *w, pf_up *u) { return &w->rt->upstream[u->pc->upstream]; }
static const rt_peer *peer_of(pf_worker *w, pf_up *u)
{
    const rt_upstream *ups = ups_of(w, u);
    return u->peer >= 0 ? &w->rt->peer[ups->peers.first + (uint32_t)u->peer] : NULL;
}

static pf_up *up_get(pf_worker *w)
{
    pf_px *px = pf_px_get(w);
    if (!px) return NULL;
    pf_up *u = px->free_ups;
    if (u) { px->free_ups = u->next_free; px->nfree_ups--; }
    else if (!(u = malloc(sizeof *u))) return NULL;
    memset(u, 0, offsetof(pf_up, resp));
    memset(&u->status, 0, sizeof *u - offsetof(pf_up, status));
    u->body_fd = -1;
    u->fd = -1;
    u->peer = -1;
    u->last_peer = -1;
    pf_lb_ctx_init(&u->lb);
    return u;
}

static void up_close_fd(pf_worker *w, pf_up *u)
{
    if (u->fd < 0) return;
    if (close(u->fd) < 0)
        pf_log_error(w, PF_LOG_ALERT, NULL, NULL, "close() upstream failed (%d: %s)", errno, strerror(errno));
    u->fd = -1;
    u->registered = 0;
    u->cached = 0;
}

static void ring_release(pf_worker *w, pf_up *u)
{
    for (uint32_t i = 0; i < u->rcount; i++) {
        pf_buf *b = u->ring[(u->rhead + i) % PX_RING];
        if (b != u->hbuf) pf_buf_put(w, b);
    }
    u->rcount = u->rhead = 0;
    pf_buf_put(w, u->hbuf);
    u->hbuf = NULL;
    u->hlen = 0;
}

static void stat_set(pf_worker *w, pf_up *u, uint32_t st)
{
    pf_px *px = w->px;
    if (!px || u->stat_state == st) return;
    if (u->stat_state == 1) px->reading--;
    if (u->stat_state == 2) px->writing--;
    if (st == 1) px->reading++;
    if (st == 2) px->writing++;
    u->stat_state = st;
}

void pf_proxy_release(pf_worker *w, pf_req *q)
{
    pf_up *u = q->up;
    if (!u) return;
    if (u->peer >= 0 && u->phase != PXP_DONE) pf_ups_free_peer(w, u->pc->upstream, u->peer, 0);
    up_close_fd(w, u);
    pf_body_release(w, u);
    ring_release(w, u);
    pf_px_pkt_put(w, u->pkt);
    u->pkt = NULL;
    stat_set(w, u, 0);
    q->up = NULL;
    pf_px *px = w->px;
    if (px->nfree_ups >= 64) { free(u); return; }
    u->next_free = px->free_ups;
    px->free_ups = u;
    px->nfree_ups++;
}

/* ", upstream: "..."" for pf_log_error (nginx's ngx_http_log_error_handler) */
size_t pf_proxy_log_upstream(pf_worker *w, pf_req *q, char *out, size_t cap)
{
    pf_up *u = q ? q->up : NULL;
    const rt_peer *p = u ? peer_of(w, u) : NULL;
    if (!p || cap < 16) return 0;
    const char *name = RT_S(w->rt, p->name);
    int is_unix = p->name.len > 5 && memcmp(name, "unix:", 5) == 0;
    int n;
    if (u->pc->handler == PX_UWSGI)
        n = snprintf(out, cap, ", upstream: \"uwsgi://%.*s%s\"", (int)p->name.len, name, is_unix ? ":" : "");
    else
        n = snprintf(out, cap, ", upstream: \"http://%.*s%s%.*s\"", (int)p->name.len, name, is_unix ? ":" : "",
                     u->pkt ? (int)u->uri_len : 0, u->pkt ? u->pkt->data + u->uri_off : "");
    return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

/* ---- finishing ------------------------------------------------------------ */
/* Answer with a page of ours (502, 504, 413, ...): the upstream side is dropped. */
static int respond(pf_worker *w, pf_conn *c, pf_req *q, int status)
{
    pf_up *u = q->up;
    if (u->peer >= 0 && u->phase != PXP_DONE) pf_ups_free_peer(w, u->pc->upstream, u->peer, 0);
    u->phase = PXP_DONE;
    up_close_fd(w, u);
    ring_release(w, u);
    stat_set(w, u, 0);
    if (status == 413 || status == 400) q->keep_alive = 0;
    pf_buf_put(w, q->wbuf);
    q->wbuf = NULL;
    q->wlen = q->wpos = 0;
    pf_respond_error(w, c, q, status);
    pf_timer_del(w, c);
    pf_conn_set_state(w, c, CS_WRITE);
    return 1;
}

static int close_client(pf_worker *w, pf_conn *c, pf_req *q, int status)
{
    if (status) q->status = status;
    pf_alog_write(w, c, q);
    pf_conn_close(w, c);
    return -1;
}

/* ---- connect --------------------------------------------------------------- */
/* the epoll data of an upstream fd owned by client connection c (loop.c dispatches it) */
static uint64_t up_tag(pf_worker *w, pf_conn *c)
{
    return PF_EV_UPSTREAM | ((uint64_t)(c - w->conns) << 32) | c->gen;
}

/* op: EPOLL_CTL_ADD for a new connection; EPOLL_CTL_MOD for one taken from the keep-alive
 * cache, which stayed registered (under its previous owner's tag) while parked. */
static int up_register(pf_worker *w, pf_conn *c, pf_up *u, int op)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.u64 = up_tag(w, c)};
    if (epoll_ctl(w->epfd, op, u->fd, &ev) < 0) {
        pf_log_error(w, PF_LOG_ALERT, c, c->req, "epoll_ctl(%s, upstream %d) failed (%d: %s)",
                     op == EPOLL_CTL_MOD ? "MOD" : "ADD", u->fd, errno, strerror(errno));
        return -1;
    }
    u->registered = 1;
    return 0;
}

/* POST, LOCK, PATCH are not retried once sent, unless non_idempotent (nginx 1.9.13) */
static int is_non_idempotent(pf_conn *c, pf_req *q)
{
    if (q->h.method_id == PF_M_POST || q->h.method_id == PF_M_PATCH) return 1;
    return q->h.method.len == 4 && memcmp(pf_req_base(c) + q->h.method.off, "LOCK", 4) == 0;
}

/* A unix-socket app refused the connection: during an app
 * swap (new app master taking over, a worker respawning) that is a moment, not a failure.
 * Wait and try the same peer again, backing off 25, 50, 100, 200, 200... ms, for up to
 * PX_HOLD_MS since the first try; only when nothing was answered yet and the request may be
 * sent twice (not POST/PATCH/LOCK once sent, not a streamed body). 1 = holding. */
static int hold(pf_worker *w, pf_conn *c, pf_req *q, pf_up *u)
{
    if (u->peer < 0 || u->hlen != 0 || u->body_streamed || (u->request_sent && is_non_idempotent(c, q)))
        return 0;
    int64_t step = 25ll << (u->holds < 3 ? u->holds : 3);
    if (w->now_ms + step - u->first_try_ms > PX_HOLD_MS) return 0;
    up_close_fd(w, u);
    u->holds++;
    u->phase = PXP_CONNECT;
    u->fd = PX_FD_HOLD;
    u->out_pos = 0;
    u->request_sent = 0;
    u->up_eof = 0;
    u->up_deadline = w->now_ms + step;
    return 1;
}

/* Failures hold() may wait out: the app's socket refusing at connect() (ECONNREFUSED: bound
 * but nobody listening; EAGAIN: its backlog is full), so nothing was sent yet, when the
 * upstream has no other server to fail over to. A connection the app accepted and then
 * dropped is not held: the app may have run the request (nginx's next_upstream decides). */
static void mark_holdable(pf_worker *w, pf_up *u, int err)
{
    const rt_peer *p = peer_of(w, u);
    const struct sockaddr *sa = (const struct sockaddr *)RT_S(w->rt, p->sa);
    u->holdable = sa->sa_family == AF_UNIX && ups_of(w, u)->peers.count == 1
                  && (err == ECONNREFUSED || err == EAGAIN);
}

/* The current try failed with ft (NU_*): next server, or the final error page. */
static int up_next(pf_worker *w, pf_conn *c, pf_req *q, pf_up *u, int ft, int status)
{
    const rt_pxconf *pc = u->pc;
    /* A kept-alive connection that failed before any response byte: retried on a new
     * connection, not counted as a failure — when the upstream never read the request
     * (send failed, or a reset: a socket closed with unread bytes resets, so a closing app's
     * idle connection never ends cleanly under a request). A clean EOF means the upstream
     * read the request and then died (killed, harakiri): as nginx, not retried for
     * POST/PATCH/LOCK, which may have run. */
    int ran = u->eof_after_send && u->request_sent && is_non_idempotent(c, q);
    u->eof_after_send = 0;
    if (u->cached && ft == NU_ERROR && u->hlen == 0 && !u->body_streamed && !ran) {
        up_close_fd(w, u);
        u->phase = PXP_CONNECT;
        u->out_pos = 0;
        u->request_sent = 0;
        u->fd = -2;                      /* tells up_connect to reuse u->peer */
        return 1;
    }
    if (u->holdable) {
        u->holdable = 0;
        if (hold(w, c, q, u)) return 1;
    }
    if (u->peer >= 0) pf_ups_free_peer(w, pc->upstream, u->peer, ft != NU_403 && ft != NU_404);
    up_close_fd(w, u);
    ring_release(w, u);
    u->final_status = status;
    if (u->body_streamed) { u->peer = -1; return respond(w, c, q, status); }   /* the body cannot be sent again */
    int ft_type = ft;
    if (u->request_sent && is_non_idempotent(c, q)) ft_type |= NU_NON_IDEMPOTENT;
    int timed_out = pc->next_timeout_ms && w->now_ms - u->first_try_ms >= pc->next_timeout_ms;
    int no_tries = pc->next_tries && u->tries >= pc->next_tries;
    if ((pc->next_upstream & (uint32_t)ft_type) != (uint32_t)ft_type || timed_out || no_tries
        || u->lb.ntried >= pf_balancer_tries(w->px->ups[pc->upstream].lb)) {
        u->peer = -1;
        return respond(w, c, q, status);
    }
    u->peer = -1;
    u->phase = PXP_CONNECT;
    u->fd = -1;
    u->out_pos = 0;
    u->request_sent = 0;
    u->up_eof = 0;
    return 1;
}

static void errno_text(int e, char *out, size_t cap) { snprintf(out, cap, "%d: %s", e, strerror(e)); }

static int up_connect(pf_worker *w, pf_conn *c, pf_req *q, pf_up *u)
{
    const rt_pxconf *pc = u->pc;
    const rt_upstream *ups = ups_of(w, u);
    int reuse = u->fd == -2;
    u->fd = -1;
    if (!reuse) {
        char key[1024];
        size_t klen = 0;
        if (ups->method == PF_LB_IP_HASH) {
            if (c->peer.sa.sa_family == AF_INET) { memcpy(key, &c->peer.in4.sin_addr, 4); klen = 4; }
            else if (c->peer.sa.sa_family == AF_INET6) { memcpy(key, &c->peer.in6.sin6_addr, 16); klen = 16; }
        } else if (ups->method == PF_LB_HASH && ups->hash_tpl != RT_NONE) {
            klen = pf_tpl_expand(w, c, q, ups->hash_tpl, 0, key, sizeof key);
        }
        int peer = pf_ups_get_peer(w, pc->upstream, &u->lb, key, klen);
        if (peer < 0) {
            pf_log_error(w, PF_LOG_ERR, c, q, "no live upstreams while connecting to upstream");
            return respond(w, c, q, u->final_status ? u->final_status : 502);
        }
        u->peer = peer;
        u->last_peer = peer;
        u->tries++;
        if (ups->keepalive) {
            uint32_t reqs = 0;
            uint64_t tag = up_tag(w, c);
            int fd = pf_ka_take(w, pc->upstream, peer, &reqs, &tag);
            u->ka_requests = 0;
            if (fd >= 0) {
                u->fd = fd;
                u->cached = 1;
                u->ka_requests = reqs;
                if (tag == up_tag(w, c)) u->registered = 1;       /* already ours: no re-tag */
                else if (up_register(w, c, u, EPOLL_CTL_MOD) < 0) return up_next(w, c, q, u, NU_ERROR, 502);
                u->up_writable = 1;
                u->phase = PXP_SEND;
                return 1;
            }
        }
    }
    const rt_peer *p = peer_of(w, u);
    const struct sockaddr *sa = (const struct sockaddr *)RT_S(w->rt, p->sa);
    struct sockaddr_storage ss;
    memcpy(&ss, sa, p->sa.len);
    u->connect_start_ms = w->now_ms;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        pf_log_error(w, PF_LOG_ALERT, c, q, "socket() failed (%d: %s) while connecting to upstream", errno,
                     strerror(errno));
        return respond(w, c, q, 502);
    }
    u->fd = fd;
    if (ss.ss_family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    int rc = connect(fd, (struct sockaddr *)&ss, p->sa.len);
    if (rc < 0 && errno != EINPROGRESS) {
        int cerr = errno;
        char e[128];
        errno_text(cerr, e, sizeof e);
        pf_log_error(w, PF_LOG_ERR, c, q, "connect() to %.*s failed (%s) while connecting to upstream",
                     (int)p->name.len, RT_S(w->rt, p->name), e);
        mark_holdable(w, u, cerr);
        return up_next(w, c, q, u, NU_ERROR, 502);
    }
    if (up_register(w, c, u, EPOLL_CTL_ADD) < 0) return up_next(w, c, q, u, NU_ERROR, 502);
    if (rc == 0) {
        u->up_writable = 1;
        u->phase = PXP_SEND;
        u->t_connect = w->now_ms - u->first_try_ms;
    } else {
        u->phase = PXP_CONNECT;
        u->up_deadline = w->now_ms + pc->connect_timeout_ms;
    }
    return 1;
}

static int connect_done(pf_worker *w, pf_conn *c, pf_req *q, pf_up *u)
{
    if (!u->up_writable) return 0;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    if (err) {
        const rt_peer *p = peer_of(w, u);
        char e[128];
        errno_text(err, e, sizeof e);
        pf_log_error(w, PF_LOG_ERR, c, q, "connect() to %.*s failed (%s) while connecting to upstream",
                     (int)p->name.len, RT_S(w->rt, p->name), e);
        mark_holdable(w, u, err);
        return up_next(w, c, q, u, NU_ERROR, 502);
    }
    u->t_connect = w->now_ms - u->first_try_ms;
    u->phase = PXP_SEND;
    return 1;
}

/* ---- send ---------------------------------------------------------------- */
static int up_send(pf_worker *w, pf_conn *c, pf_req *q, pf_up *u)
{
    u->request_sent = 1;
    uint64_t mem_total = u->pkt_len;
    int send_body = (u->pc->flags & PXF_PASS_BODY) != 0 && !u->streaming;
    if (send_body && u->body_fd < 0)
        for (uint32_t i = 0; i < u->nbody; i++) mem_total += i + 1 == u->nbody ? u->body_last_len : u->body[i]->cap;
    for (;;) {
        if (!u->up_writable) {
            u->up_deadline = w->now_ms + u->pc->send_timeout_ms;
            return 0;
        }
        ssize_t n;
        if (u->out_pos < mem_total) {
            struct iovec iov[PX_RING + 1];
            int k = 0;
            uint64_t pos = 0;
            if (u->out_pos < u->pkt_len) {
                iov[k].iov_base = u->pkt->data + u->out_pos;
                iov[k++].iov_len = u->pkt_len - u->out_pos;
            }
            pos = u->pkt_len;
            for (uint32_t i = 0; send_body && u->body_fd < 0 && i < u->nbody; i++) {
                uint64_t bl = i + 1 == u->nbody ? u->body_last_len : u->body[i]->cap;
                if (u->out_pos < pos + bl) {
                    uint64_t skip = u->out_pos > pos ? u->out_pos - pos : 0;
                    iov[k].iov_base = u->body[i]->data + skip;
                    iov[k++].iov_len = bl - skip;
                }
                pos += bl;
            }
            struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)k};
            n = sendmsg(u->fd, &mh, MSG_NOSIGNAL);
        } else if (send_body && u->body_fd >= 0 && u->out_pos < u->pkt_len + u->body_len) {
            off_t off = (off_t)(u->out_pos - u->pkt_len);
            size_t want = u->pkt_len + u->body_len - u->out_pos;
            if (want > (1u << 20)) want = 1u << 20;
            n = sendfile(u->fd, u->body_fd, &off, want);
        } else {
            u->phase = u->streaming ? PXP_STREAM : PXP_HEAD;
            u->up_deadline = w->now_ms + u->pc->read_timeout_ms;
            return 1;
        }
        if (n > 0) { u->out_pos += (uint64_t)n; continue; }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) { u->up_writable = 0; continue; }
        char e[128];
        errno_text(n < 0 ? errno : EPIPE, e, sizeof e);
        /* a kept-alive connection the upstream closed meanwhile (an app reload closes its idle
         * ones): up_next retries on a new connection, so this is no error of the request */
        pf_log_error(w, u->cached ? PF_LOG_INFO : PF_LOG_ERR, c, q, "%s() failed (%s) while sending request to upstream",
                     u->out_pos < mem_total ? "writev" : "sendfile", e);
        return up_next(w, c, q, u, NU_ERROR, 502);
    }
}

/* ---- request body without buffering ------------------------------------------- */
static int stream_body(pf_worker *w, pf_conn *c, pf_req *q, pf_up *u)
{
    for (;;) {
        if (u->body_left == 0) {
            u->body_done = 1;
            u->phase = PXP_HEAD;
            u->up_deadline = w->now_ms + u->pc->read_timeout_ms;
            return 1;
        }
        char *p = c->rbuf->data + c->rpos + q->head_len;
        size_t avail = c->rlen - c->rpos - q->head_len;
        if (avail == 0) {
            if (!u->continue_sent && q->h.expect_continue) {
                u->continue_sent = 1;
                if (send(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25, MSG_NOSIGNAL) < 0 && errno != EAGAIN)
                    return close_client(w, c, q, 0);
            }
            if (!c->readable) { u->up_deadline = w->now_ms + u->pc->body_timeout_ms; return 0; }
            if (c->rpos > 0) {                       /* room for the body behind the head */
                memmove(c->rbuf->data, c->rbuf->data + c->rpos, c->rlen - c->rpos);
                c->rlen -= c->rpos;
                c->rpos = 0;
                p = c->rbuf->data + q->head_len;
            }
            size_t room = c->rbuf->cap - c->rlen;
            if (room == 0) return respond(w, c, q, 500);
            if ((uint64_t)u->body_left < room) room = (size_t)u->body_left;   /* never past the body */
            ssize_t n = recv(c->fd, p, room, 0);
            if (n == 0) {
                pf_log_error(w, PF_LOG_INFO, c, q, "client prematurely closed connection while sending body to upstream");
                return close_client(w, c, q, 400);
            }
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN) { c->readable = 0; continue; }
                return close_client(w, c, q, 400);
            }
            c->rlen += (uint32_t)n;
            continue;
        }
        if (!u->up_writable) { u->up_deadline = w->now_ms + u->pc->send_timeout_ms; return 0; }
        size_t want = avail < (uint64_t)u->body_left ? avail : (size_t)u->body_left;
        ssize_t n = send(u->fd, p, want, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) { u->up_writable = 0; continue; }
        if (n <= 0) {
            char e[128];
            errno_text(n < 0 ? errno : EPIPE, e, sizeof e);
            pf_log_error(w, PF_LOG_ERR, c, q, "send() failed (%s) while sending request body to upstream", e);
            return respond(w, c, q, 502);              /* part of the body is gone: no retry */
        }
        u->body_streamed = 1;
        memmove(p, p + n, avail - (size_t)n);
        c->rlen -= (uint32_t)n;
        u->body_left -= n;
        u->body_len += (uint64_t)n;
    }
}

/* ---- persistent uwsgi connections to pyfront's own app server ---------------------- */
/* uwsgi_pass to an upstream whose every server is a [uwsgi] app of this CONF_DIR
 * (RT_UPS_PYFRONT_APP), with a keep-alive cache and no modifier2 of the operator's:
 * the packet carries PF_UWSGI_KEEP(_HEAD) and a framed answer keeps the connection. */
static int ukeep_wanted(pf_worker *w, pf_up *u)
{
    const rt_pxconf *pc = u->pc;
    const rt_upstream *ups = ups_of(w, u);
    return pc->handler == PX_UWSGI && (ups->flags & RT_UPS_PYFRONT_APP) && ups->keepalive
           && pc->modifier2 == 0 && (pc->modifier1 == 0 || pc->modifier1 == 30);
}

/* The app's acknowledgement: "Connection: keep-alive", which pyfront's app sends only in
 * answer to a marked packet (a real uWSGI never adds it: its answer stays close-delimited
 * and the connection is not reused). "Connection: close" (the app asked) is refused by
 * the parser's keep_alive. */
static int ukeep_acked(const pf_up *u)
{
    const pf_http_response *r = &u->resp;
    if (!r->keep_alive) return 0;
    for (int i = pf_http_header_index(u->hbuf->data, r->headers, r->nheaders, "connection", 10, 0); i >= 0;
         i = pf_http_header_index(u->hbuf->data, r->headers, r->nheaders, "connection", 10, (uint32_t)i + 1)) {
        const pf_http_header *h = &r->headers[i];
        if (h->value.len == 10 && strncasecmp(u->hbuf->data + h->value.off, "keep-alive", 10) == 0) return 1;
    }
    return 0;
}

/* ---- response head ----------------------------------------------------------- */
static int looks_http(const char *p, size_t n)
{
    static const char pre[] = "HTTP/";
    size_t k = n < 5 ? n : 5;
    return memcmp(p, pre, k) == 0;
}

static int hidden(pf_worker *w, const rt_pxconf *pc, const char *name, size_t nl)
{
    if (nl == 7 && strncasecmp(name, "upgrade", 7) == 0 && pc == NULL) return 0;
    static const char *const always[] = {"connection", "keep-alive", "transfer-encoding", "content-length",
                                         "proxy-connection", "upgrade", "status", NULL};
    for (int i = 0; always[i]; i++)
        if (strlen(always[i]) == nl && strncasecmp(always[i], name, nl) == 0)
            return !(nl == 6 && pc && pc->handler == PX_HTTP);   /* CGI "Status:" is a uwsgi thing */
    return pf_rt_list_has(w->rt, pc->hide, name, nl);
}

typedef struct { char *p; size_t left; int over; } hb;
static void hb_put(hb *b, const char *s, size_t n)
{
    if (n > b->left) { b->over = 1; n = b->left; }
    memcpy(b->p, s, n);
    b->p += n;
    b->left -= n;
}
#define HB_LIT(b, s) hb_put(b, s, sizeof(s) - 1)

/* decimal digits of v (at least `width`, zero-padded): no printf on the per-response path
 * (snprintf's format parsing was ~1.5 % of the front's CPU per proxied response, perf) */
static void hb_dec(hb *b, uint64_t v, int width)
{
    char d[24];
    int n = 0;
    do { d[sizeof d - 1 - n++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (n < width && n < (int)sizeof d) d[sizeof d - 1 - n++] = '0';
    hb_put(b, d + sizeof d - n, (size_t)n);
}

static int want_keepalive(pf_worker *w, pf_conn *c, pf_req *q)
{
    const rt_conf *cf = q->conf >= 0 ? &w->rt->conf[q->conf] : NULL;
    if (!q->keep_alive || c->close_after || w->draining) return 0;
    if (cf && (cf->keepalive_timeout_ms == 0 || c->nreq >= cf->keepalive_requests)) return 0;
    return 1;
}

static int has_errpage(pf_worker *w, pf_req *q, int status)
{
    const rt_conf *cf = q->conf >= 0 ? &w->rt->conf[q->conf] : NULL;
    if (!cf || q->err_page_done) return 0;
    for (uint32_t i = 0; i < cf->error_pages.count; i++)
        if ((int)w->rt->errpage[cf->error_pages.first + i].code == status) return 1;
    return 0;
}

/* The client's response head from the upstream's: nginx's header filter order. */
static int build_head(pf_worker *w, pf_conn *c, pf_req *q, pf_up *u)
{
    const rt_pxconf *pc = u->pc;
    const rt_conf *cf = q->conf >= 0 ? &w->rt->conf[q->conf] : NULL;
    const char *hp = u->hbuf->data;
    const pf_http_response *r = &u->resp;
    if (!q->wbuf && !(q->wbuf = pf_buf_get(w))) return -1;
    hb b = {q->wbuf->data, q->wbuf->cap, 0};
    char tmp[64];
    HB_LIT(&b, "HTTP/1.1 ");
    if (r->reason.len) {
        hb_dec(&b, (uint64_t)r->status, 3);
        HB_LIT(&b, " ");
        hb_put(&b, hp + r->reason.off, r->reason.len);
    } else {
        size_t sl;
        const char *line = pf_status_line(r->status, &sl);
        if (line && sl) hb_put(&b, line, sl);
        else hb_dec(&b, (uint64_t)r->status, 3);
    }
    HB_LIT(&b, "\r\n");
    int server_i = -1, date_i = -1, ctype_i = -1, lm_i = -1, loc_i = -1;
    for (uint32_t i = 0; i < r->nheaders; i++) {
        const char *n = hp + r->headers[i].name.off;
        size_t nl = r->headers[i].name.len;
        if (nl == 6 && strncasecmp(n, "server", 6) == 0 && server_i < 0) server_i = (int)i;
        else if (nl == 4 && strncasecmp(n, "date", 4) == 0 && date_i < 0) date_i = (int)i;
        else if (nl == 12 && strncasecmp(n, "content-type", 12) == 0 && ctype_i < 0) ctype_i = (int)i;
        else if (nl == 13 && strncasecmp(n, "last-modified", 13) == 0 && lm_i < 0) lm_i = (int)i;
        else if (nl == 8 && strncasecmp(n, "location", 8) == 0 && loc_i < 0) loc_i = (int)i;
    }
#define HV(i) (hp + r->headers[i].value.off), (r->headers[i].value.len)
    HB_LIT(&b, "Server: ");
    if (server_i >= 0 && !hidden(w, pc, "server", 6)) hb_put(&b, HV(server_i));
    else { const char *t = pf_server_token(cf ? !!(cf->flags & RT_F_SERVER_TOKENS) : 1); hb_put(&b, t, strlen(t)); }
    HB_LIT(&b, "\r\nDate: ");
    if (date_i >= 0 && !hidden(w, pc, "date", 4)) hb_put(&b, HV(date_i));
    else hb_put(&b, w->date_hdr, strlen(w->date_hdr));
    HB_LIT(&b, "\r\n");
    if (ctype_i >= 0) {
        HB_LIT(&b, "Content-Type: ");
        const char *v = hp + r->headers[ctype_i].value.off;
        size_t vl = r->headers[ctype_i].value.len;
        hb_put(&b, v, vl);
        /* charset filter: add "; charset=X" to a listed type that has none */
        size_t tl = 0;
        while (tl < vl && v[tl] != ';' && v[tl] != ' ') tl++;
        if (cf && cf->charset.len && !memmem(v, vl, "charset=", 8)
            && pf_rt_list_has(w->rt, cf->charset_types, v, tl)) {
            HB_LIT(&b, "; charset=");
            hb_put(&b, RT_S(w->rt, cf->charset), cf->charset.len);
        }
        HB_LIT(&b, "\r\n");
    }
    int no_body = q->header_only || r->status == 204 || r->status == 304 || (r->status >= 100 && r->status < 200);
    /* HEAD: the upstream's Content-Length is passed, as nginx does (its body is not) */
    if ((u->resp_mode == PF_BODY_LENGTH || (q->header_only && r->body == PF_BODY_LENGTH)) && r->status != 204) {
        HB_LIT(&b, "Content-Length: ");
        hb_dec(&b, (uint64_t)r->content_length, 1);
        HB_LIT(&b, "\r\n");
    }
    if (lm_i >= 0 && !hidden(w, pc, "last-modified", 13)) { HB_LIT(&b, "Last-Modified: "); hb_put(&b, HV(lm_i)); HB_LIT(&b, "\r\n"); }
    if (loc_i >= 0 && !hidden(w, pc, "location", 8)) {
        HB_LIT(&b, "Location: ");
        const char *v = hp + r->headers[loc_i].value.off;
        size_t vl = r->headers[loc_i].value.len, fl = pc->redirect_from.len;
        if (fl && vl >= fl && strncasecmp(v, RT_S(w->rt, pc->redirect_from), fl) == 0) {
            /* proxy_redirect default: the proxy_pass URL becomes the location prefix, and a
             * relative result absolute again as nginx's header filter does (absolute_redirect) */
            if (pc->redirect_to.len && RT_S(w->rt, pc->redirect_to)[0] == '/' && cf
                && (cf->flags & RT_F_ABS_REDIRECT)) {
                char host[300];
                size_t hl = pf_proxy_var(w, c, q, V_HOST, NULL, 0, host, sizeof host);
                HB_LIT(&b, "http://");
                hb_put(&b, host, hl);
                int port = w->ls[c->listener].port;
                if (port != 80 && (cf->flags & RT_F_PORT_IN_REDIRECT))
                    hb_put(&b, tmp, (size_t)snprintf(tmp, sizeof tmp, ":%d", port));
            }
            hb_put(&b, RT_S(w->rt, pc->redirect_to), pc->redirect_to.len);
            hb_put(&b, v + fl, vl - fl);
        } else {
            hb_put(&b, v, vl);
        }
        HB_LIT(&b, "\r\n");
    }
    int unknown_len = !no_body && (u->resp_mode == PF_BODY_CLOSE || u->resp_mode == PF_BODY_CHUNKED);
    u->client_chunked = unknown_len && q->h.version_minor >= 1;
    if (u->client_chunked) HB_LIT(&b, "Transfer-Encoding: chunked\r\n");
    q->keep_alive = want_keepalive(w, c, q) && !(unknown_len && !u->client_chunked);
    if (u->tunnel) {
        q->keep_alive = 0;
        HB_LIT(&b, "Connection: upgrade\r\n");
    } else if (q->keep_alive) {
        HB_LIT(&b, "Connection: keep-alive\r\n");
        if (cf && cf->keepalive_header_s)
            hb_put(&b, tmp, (size_t)snprintf(tmp, sizeof tmp, "Keep-Alive: timeout=%u\r\n", cf->keepalive_header_s));
    } else {
        HB_LIT(&b, "Connection: close\r\n");
    }
    for (uint32_t i = 0; i < r->nheaders; i++) {
        if ((int)i == server_i || (int)i == date_i || (int)i == ctype_i || (int)i == lm_i || (int)i == loc_i) continue;
        const char *n = hp + r->headers[i].name.off;
        size_t nl = r->headers[i].name.len;
        if (hidden(w, u->tunnel && nl == 7 && strncasecmp(n, "upgrade", 7) == 0 ? NULL : pc, n, nl)) continue;
        if ((nl == 6 && strncasecmp(n, "server", 6) == 0) || (nl == 4 && strncasecmp(n, "date", 4) == 0)) continue;
        hb_put(&b, n, nl);
        HB_LIT(&b, ": ");
        hb_put(&b, HV(i));
        HB_LIT(&b, "\r\n");
    }
#undef HV
    if (cf) {
        int s = r->status;
        int ok = s == 200 || s == 201 || s == 204 || s == 206 || s == 301 || s == 302 || s == 303 || s == 304
                 || s == 307 || s == 308;
        for (uint32_t i = 0; i < cf->add_headers.count; i++) {
            const rt_header *h = &w->rt->header[cf->add_headers.first + i];
            if (!h->always && !ok) continue;
            char val[2048];
            size_t vn = pf_tpl_expand(w, c, q, h->value_tpl, 0, val, sizeof val);
            if (vn == 0) continue;
            hb_put(&b, RT_S(w->rt, h->name), h->name.len);
            HB_LIT(&b, ": ");
            hb_put(&b, val, vn);
            HB_LIT(&b, "\r\n");
        }
    }
    HB_LIT(&b, "\r\n");
    if (b.over) return -1;
    q->wpos = 0;
    q->wlen = (uint32_t)(b.p - q->wbuf->data);
    q->header_bytes = q->wlen;
    if (no_body) u->resp_mode = PF_BODY_NONE;
    return 0;
}

/* Raw upstream body bytes just placed at buf[at .. at+n): account for them per framing,
 * decoding chunked in place. Returns the payload bytes now at buf[at ..). */
static size_t body_bytes(pf_worker *w, pf_conn *c, pf_req *q, pf_up *u, char *buf, size_t at, size_t n)
{
    switch (u->resp_mode) {
    case PF_BODY_LENGTH:
        if (n > u->resp_left) { n = (size_t)u->resp_left; u->keep_upstream = 0; u->up_eof = 1; }
        u->resp_left -= n;
        if (u->resp_left == 0) u->up_eof = 1;
        u->resp_bytes += n;
        return n;
    case PF_BODY_CLOSE:
        u->resp_bytes += n;
        return n;
    case PF_BODY_CHUNKED: {
        size_t used = 0, out = at;
        while (used < n && u->up_eof == 0) {
            size_t doff, dlen;
            int done = 0;
            int k = pf_chunked_feed(&u->rchunk, buf + at + used, n - used, &doff, &dlen, &done);
            if (k < 0) {
                pf_log_error(w, PF_LOG_ERR, c, q, "upstream sent invalid chunked response while reading upstream");
                u->up_error = 1;
                u->up_eof = 1;
                break;
            }
            if (dlen) { memmove(buf + out, buf + at + used + doff, dlen); out += dlen; }
            used += (size_t)k;
            if (done) { u->up_eof = 1; if (used < n) u->keep_upstream = 0; }
            if (k == 0) break;
        }
        u->resp_bytes += out - at;
        return out - at;
    }
    default:
        u->up_eof = 1;
        u->keep_upstream = 0;
        return 0;
    }
}

/* X-Accel-Redirect: the upstream hands the request back to the front (protected
 * downloads): the upstream is released and the URI matched again as GET (HEAD stays) */
static int accel_redirect(pf_worker *w, pf_conn *c, pf_req *q, pf_up *u, int hi)
{
    char uri[PF_URI_MAX];
    size_t n = u->resp.headers[hi].value.len;
    if (n >= sizeof uri) n = sizeof uri - 1;
    memcpy(uri, u->hbuf->data + u->resp.headers[hi].value.off, n);
    if (u->peer >= 0) pf_ups_free_peer(w, u->pc->upstream, u->peer, 0);
    u->peer = -1;
    u->phase = PXP_DONE;
    pf_proxy_release(w, q);                       /* u is gone from here on */
    if (q->h.method_id != PF_M_HEAD) q->h.method_id = PF_M_GET;
    q->h.body = PF_BODY_NONE;                     /* the body was consumed by the first leg */
    q->h.content_length = -1;
    q->err_page_done = 1;                         /* one redirect, no loop through error_page */
    pf_buf_put(w, q->wbuf);
    q->wbuf = NULL;
    q->wlen = q->wpos = 0;
    if (pf_internal_redirect(w, c, q, uri, n) < 0) {
        pf_log_error(w, PF_LOG_ERR, c, q, "invalid X-Accel-Redirect \"%.*s\" from upstream", (int)n, uri);
        pf_respond_error(w, c, q, 500);
    }
    if (q->up) return 1;                          /* proxied again: the new leg starts in BODY */
    pf_timer_del(w, c);
    pf_conn_set_state(w, c, CS_WRITE);
    return 1;
}

static int head_done(pf_worker *w, pf_conn *c, pf_req *q, pf_up *u, int head_len)
{
    const rt_pxconf *pc = u->pc;
    int st = u->resp.status;
    u->status = st;
    u->t_header = w->now_ms - u->first_try_ms;
    /* uwsgi/proxy_next_upstream http_5xx/403/404/429: another server, if one is left */
    int ft = st == 500 ? NU_500 : st == 502 ? NU_502 : st == 503 ? NU_503 : st == 504 ? NU_504
           : st == 403 ? NU_403 : st == 404 ? NU_404 : st == 429 ? NU_429 : 0;
    if (ft && (pc->next_upstream & ft) && u->lb.ntried < pf_balancer_tries(w->px->ups[pc->upstream].lb)
        && !(u->request_sent && is_non_idempotent(c, q) && !(pc->next_upstream & NU_NON_IDEMPOTENT))
        && !(pc->next_tries && u->tries >= pc->next_tries))
        return up_next(w, c, q, u, ft, st);
    if (st == 101) {
        if (!q->h.upgrade) {          /* nginx: a 101 the client did not ask for is an error */
            pf_log_error(w, PF_LOG_ERR, c, q, "upstream sent unexpected 101 Switching Protocols while reading response header from upstream");
            return up_next(w, c, q, u, NU_INVALID_HEADER, 502);
        }
        u->tunnel = 1;
    }
    int xar = pf_http_header_index(u->hbuf->data, u->resp.headers, u->resp.nheaders, "x-accel-redirect", 16, 0);
    if (xar >= 0 && u->resp.headers[xar].value.len && !q->err_page_done)
        return accel_redirect(w, c, q, u, xar);
    if ((pc->flags & PXF_INTERCEPT) && st >= 300 && has_errpage(w, q, st)) {
        if (u->peer >= 0) pf_ups_free_peer(w, pc->upstream, u->peer, 0);
        u->peer = -1;
        return respond(w, c, q, st);
    }
    u->resp_mode = q->header_only ? PF_BODY_NONE : u->resp.body;
    u->resp_left = u->resp.content_length > 0 ? (uint64_t)u->resp.content_length : 0;
    if (u->resp_mode == PF_BODY_CHUNKED) pf_chunked_init(&u->rchunk);
    if (u->ukeep)                     /* HEAD: the app was told (PF_UWSGI_KEEP_HEAD) and sends no body */
        u->keep_upstream = ukeep_acked(u) && u->resp.body != PF_BODY_CLOSE;
    else
        u->keep_upstream = pc->handler == PX_HTTP && (pc->flags & PXF_HTTP11) && u->resp.keep_alive
                           && ups_of(w, u)->keepalive && !q->header_only;
    if (build_head(w, c, q, u) < 0) {
        pf_log_error(w, PF_LOG_ERR, c, q, "upstream sent too big header while reading response header from upstream");
        return up_next(w, c, q, u, NU_INVALID_HEADER, 502);
    }
    q->status = st;
    if (u->resp_mode == PF_BODY_LENGTH && u->resp_left == 0) u->resp_mode = PF_BODY_NONE;
    /* body bytes that came with the head: first buffer of the relay ring */
    size_t extra = u->hlen - (size_t)head_len;
    u->ring[0] = u->hbuf;
    u->rhead = 0;
    u->rcount = 1;
    u->rs[0] = (uint32_t)head_len;
    u->re[0] = (uint32_t)head_len;
    if (u->resp_mode == PF_BODY_NONE) {
        u->up_eof = 1;
        if (extra) u->keep_upstream = 0;          /* bytes after a bodiless answer: out of step, never reused */
    } else if (extra) {
        u->re[0] += (uint32_t)body_bytes(w, c, q, u, u->hbuf->data, (size_t)head_len, extra);
    }
    int buffering = !!(pc->flags & PXF_BUFFERING);
    int xab = pf_http_header_index(u->hbuf->data, u->resp.headers, u->resp.nheaders, "x-accel-buffering", 17, 0);
    if (xab >= 0) {                   /* the upstream decides per response (nginx honours it by default) */
        const char *v = u->hbuf->data + u->resp.headers[xab].value.off;
        size_t vl = u->resp.headers[xab].value.len;
        if (vl == 2 && strncasecmp(v, "no", 2) == 0) buffering = 0;
        if (vl == 3 && strncasecmp(v, "yes", 3) == 0) buffering = 1;
    }
    uint32_t nb = buffering ? (pc->buffers_total + PF_BUF_SIZE - 1) / PF_BUF_SIZE : 1;
    u->rmax = nb < 1 ? 1 : nb > PX_RING ? PX_RING : nb;
    u->phase = PXP_RELAY;
    if (u->tunnel) {
        u->phase = PXP_TUNNEL;
        u->resp_mode = PF_BODY_CLOSE;
        u->up_eof = 0;
        u->keep_upstream = 0;
        u->rmax = 1;
    }
    stat_set(w, u, 2);
    return 1;
}

static int read_head(pf_worker *w, pf_conn *c, pf_req *q, pf_up *u)
{
    const rt_pxconf *pc = u->pc;
    if (!u->hbuf && !(u->hbuf = pf_buf_get(w))) return respond(w, c, q, 500);
    uint32_t limit = pc->buffer_size && pc->buffer_size < u->hbuf->cap ? pc->buffer_size : u->hbuf->cap;
    pf_http_limits lim = {limit, limit};
    for (;;) {
        if (u->hlen > 0) {
            int rc;
            if (pc->handler == PX_HTTP || looks_http(u->hbuf->data, u->hlen))
                rc = pf_http_parse_response(u->hbuf->data, u->hlen, &lim, &u->resp);
            else
                rc = pf_http_parse_cgi_response(u->hbuf->data, u->hlen, &lim, &u->resp);
            if (rc > 0 && u->resp.status >= 100 && u->resp.status < 200 && u->resp.status != 101) {
                memmove(u->hbuf->data, u->hbuf->data + rc, u->hlen - (uint32_t)rc);   /* interim: skip */
                u->hlen -= (uint32_t)rc;
                continue;
            }
            if (rc > 0) return head_done(w, c, q, u, rc);
            if (rc != PF_NEED_MORE) {
                pf_log_error(w, PF_LOG_ERR, c, q, "upstream sent invalid header while reading response header from upstream");
                return up_next(w, c, q, u, NU_INVALID_HEADER, 502);
            }
            if (u->hlen >= limit) {
                pf_log_error(w, PF_LOG_ERR, c, q, "upstream sent too big header while reading response header from upstream");
                return up_next(w, c, q, u, NU_INVALID_HEADER, 502);
            }
        }
        if (!u->up_readable) return 0;
        ssize_t n = recv(u->fd, u->hbuf->data + u->hlen, limit - u->hlen, 0);
        if (n > 0) {
            u->hlen += (uint32_t)n;           /* readable stays set until EAGAIN: with edge-triggered
                                                 epoll a FIN that came with the data has no event of its own */
            u->up_deadline = w->now_ms + pc->read_timeout_ms;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) { u->up_readable = 0; return 0; }
        if (n == 0) {
            u->eof_after_send = u->cached && u->hlen == 0;
            if (u->eof_after_send && !(u->request_sent && is_non_idempotent(c, q)))
                return up_next(w, c, q, u, NU_ERROR, 502);     /* retried quietly */
            pf_log_error(w, PF_LOG_ERR, c, q,
                         "upstream prematurely closed connection while reading response header from upstream");
        } else {
            char e[128];
            errno_text(errno, e, sizeof e);
            pf_log_error(w, u->cached && u->hlen == 0 ? PF_LOG_INFO : PF_LOG_ERR, c, q,
                         "recv() failed (%s) while reading response header from upstream", e);
        }
        return up_next(w, c, q, u, NU_ERROR, 502);
    }
}

/* ---- relay ------------------------------------------------------------------ */
/* Read upstream body bytes into the ring while it has room. 1 progress, 0 none. */
static int relay_read(pf_worker *w, pf_conn *c, pf_req *q, pf_up *u)
{
    int progress = 0;
    while (!u->up_eof && u->up_readable) {
        uint32_t ti = (u->rhead + u->rcount - 1) % PX_RING;
        pf_buf *b = u->rcount ? u->ring[ti] : NULL;
        if (!b || u->re[ti] == b->cap) {
            if (b && u->rs[ti] == u->re[ti] && u->rcount == 1) {
                u->rs[ti] = u->re[ti] = 0;          /* drained: reuse it from the start */
            } else {
                if (u->rcount >= u->rmax) break;    /* back-pressure: the client is slower */
                if (!(b = pf_buf_get(w))) return -1;
                ti = (u->rhead + u->rcount) % PX_RING;
                u->ring[ti] = b;
                u->rs[ti] = u->re[ti] = 0;
                u->rcount++;
            }
        }
        size_t room = b->cap - u->re[ti];
        ssize_t n = recv(u->fd, b->data + u->re[ti], room, 0);
        if (n > 0) {
            u->re[ti] += (uint32_t)body_bytes(w, c, q, u, b->data, u->re[ti], (size_t)n);
            u->up_deadline = w->now_ms + u->pc->read_timeout_ms;
            progress = 1;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) { u->up_readable = 0; break; }
        if (n == 0 && u->resp_mode == PF_BODY_CLOSE) { u->up_eof = 1; progress = 1; break; }
        if (n == 0) pf_log_error(w, PF_LOG_ERR, c, q, "upstream prematurely closed connection while reading upstream");
        else {
            char e[128];
            errno_text(errno, e, sizeof e);
            pf_log_error(w, PF_LOG_ERR, c, q, "recv() failed (%s) while reading upstream", e);
        }
        u->up_eof = 1;
        u->up_error = 1;
        progress = 1;
    }
    return progress;
}

/* Send ring data (chunk-framed for HTTP/1.1 clients when the length is unknown).
 * 1 progress, 0 blocked/nothing, -1 client error. */
static int relay_write(pf_worker *w, pf_conn *c, pf_req *q, pf_up *u)
{
    int progress = 0;
    for (;;) {
        if (!c->writable) return progress;
        struct iovec iov[4];                   /* head, chunk-size line, data, CRLF */
        int k = 0;
        if (q->wpos < q->wlen) {                    /* the response head first */
            iov[k].iov_base = q->wbuf->data + q->wpos;
            iov[k++].iov_len = q->wlen - q->wpos;
        }
        uint32_t hi = u->rhead;
        size_t avail = u->rcount ? u->re[hi] - u->rs[hi] : 0;
        int finishing = u->up_eof && !u->up_error && u->client_chunked && !u->last_chunk_sent
                        && (u->rcount == 0 || (u->rcount == 1 && avail == 0)) && !u->in_chunk;
        if (u->client_chunked && !u->in_chunk && avail > 0) {
            u->frame_len = (uint32_t)snprintf(u->frame, sizeof u->frame, "%zx\r\n", avail);
            u->frame_pos = 0;
            u->chunk_left = (uint32_t)avail;
            u->in_chunk = 1;
            u->trailer_pending = 1;
        } else if (finishing) {
            memcpy(u->frame, "0\r\n\r\n", 5);
            u->frame_len = 5;
            u->frame_pos = 0;
            u->chunk_left = 0;
            u->in_chunk = 1;
            u->trailer_pending = 0;
            u->last_chunk_sent = 1;
        }
        if (u->in_chunk) {
            if (u->frame_pos < u->frame_len) {
                iov[k].iov_base = u->frame + u->frame_pos;
                iov[k++].iov_len = u->frame_len - u->frame_pos;
            }
            size_t d = u->chunk_left < avail ? u->chunk_left : avail;
            if (d) { iov[k].iov_base = u->ring[hi]->data + u->rs[hi]; iov[k++].iov_len = d; }
            if (u->chunk_left == d && u->trailer_pending) { iov[k].iov_base = (char *)"\r\n"; iov[k++].iov_len = 2; }
        } else if (avail) {
            iov[k].iov_base = u->ring[hi]->data + u->rs[hi];
            iov[k++].iov_len = avail;
        }
        if (k == 0) return progress;
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)k};
        ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) { c->writable = 0; return progress; }
            char e[128];
            errno_text(errno, e, sizeof e);
            pf_log_error(w, PF_LOG_INFO, c, q, "writev() failed (%s) while sending to client", e);
            return -1;
        }
        q->bytes_sent += (uint64_t)n;
        size_t left = (size_t)n, total = 0;
        for (int i = 0; i < k; i++) total += iov[i].iov_len;
        if ((size_t)n < total) c->writable = 0;
        progress = 1;
        /* consume: head, frame, data, CRLF (the iov order) */
        if (q->wpos < q->wlen) {
            size_t t = q->wlen - q->wpos < left ? q->wlen - q->wpos : left;
            q->wpos += (uint32_t)t;
            left -= t;
        }
        if (u->in_chunk) {
            size_t f = u->frame_len - u->frame_pos < left ? u->frame_len - u->frame_pos : left;
            u->frame_pos += (uint32_t)f;
            left -= f;
        }
        if (left && avail) {
            size_t d = u->in_chunk ? (u->chunk_left < avail ? u->chunk_left : avail) : avail;
            size_t t = d < left ? d : left;
            u->rs[hi] += (uint32_t)t;
            if (u->in_chunk) u->chunk_left -= (uint32_t)t;
            left -= t;
        }
        if (u->in_chunk && u->chunk_left == 0 && u->frame_pos == u->frame_len) {
            if (!u->trailer_pending) u->in_chunk = 0;
            else if (left >= 2) { left -= 2; u->trailer_pending = 0; u->in_chunk = 0; }
            else if (left == 1) { memcpy(u->frame, "\n", 1); u->frame_len = 1; u->frame_pos = 0; u->trailer_pending = 0; left = 0; }
        }
        /* a drained buffer goes back to the pool (the last one is kept for reading) */
        while (u->rcount > 1 && u->rs[u->rhead] == u->re[u->rhead]
               && !(u->in_chunk && u->chunk_left)) {
            pf_buf *b = u->ring[u->rhead];
            if (b == u->hbuf) u->hbuf = NULL;
            pf_buf_put(w, b);
            u->rhead = (u->rhead + 1) % PX_RING;
            u->rcount--;
        }
    }
}

static int relay_finished(pf_up *u, pf_req *q)
{
    if (!u->up_eof || q->wpos < q->wlen) return 0;
    if (u->rcount && u->re[u->rhead] > u->rs[u->rhead]) return 0;
    if (u->rcount > 1) return 0;
    if (u->in_chunk) return 0;
    if (u->client_chunked && !u->up_error && !u->last_chunk_sent) return 0;
    return 1;
}

static int relay(pf_worker *w, pf_conn *c, pf_req *q, pf_up *u)
{
    for (;;) {
        int r = relay_read(w, c, q, u);
        if (r < 0) return close_client(w, c, q, 0);
        int s = relay_write(w, c, q, u);
        if (s < 0) return close_client(w, c, q, 499);
        if (relay_finished(u, q)) break;
        if (!r && !s) {
            /* waiting: on the client (send_timeout) or on the upstream (read_timeout) */
            const rt_conf *cf = q->conf >= 0 ? &w->rt->conf[q->conf] : NULL;
            int64_t d = -1;
            if (!c->writable) d = w->now_ms + (cf ? cf->send_timeout_ms : 60000);
            u->cl_deadline = d;
            if (!u->up_eof && !u->up_readable) {
                if (d < 0 || u->up_deadline < d) d = u->up_deadline;
            }
            if (d >= 0) pf_timer_set(w, c, d);
            return 0;
        }
    }
    /* the response is complete (or the upstream failed after the head was sent) */
    int ok = !u->up_error;
    if (u->peer >= 0) pf_ups_free_peer(w, u->pc->upstream, u->peer, 0);
    u->phase = PXP_DONE;
    if (ok && u->keep_upstream && u->fd >= 0 && u->resp_mode != PF_BODY_CLOSE) {
        pf_ka_park(w, u->pc->upstream, u->peer, u->fd, u->ka_requests + 1, up_tag(w, c));   /* stays in epoll */
        u->fd = -1;
    }
    up_close_fd(w, u);
    ring_release(w, u);
    stat_set(w, u, 0);
    if (!ok) return close_client(w, c, q, 0);      /* truncated: the client must see a close */
    pf_timer_del(w, c);
    q->wpos = q->wlen;
    q->header_only = 1;                           /* conn.c's WRITE: nothing left to send */
    pf_conn_set_state(w, c, CS_WRITE);
    return 1;
}

/* ---- upgraded connections (WebSocket): bytes both ways, one buffer each -------- */
static int tunnel(pf_worker *w, pf_conn *c, pf_req *q, pf_up *u)
{
    for (;;) {
        int progress = 0;
        int r = relay_read(w, c, q, u);                 /* upstream -> ring (one buffer) */
        if (r < 0) return close_client(w, c, q, 0);
        int s = relay_write(w, c, q, u);                /* head, then ring -> client */
        if (s < 0) return close_client(w, c, q, 0);
        progress = r || s;
        /* client -> upstream through the read buffer, behind the request head */
        char *p = c->rbuf->data + c->rpos + q->head_len;
        size_t avail = c->rlen - c->rpos - q->head_len;
        if (avail && u->up_writable) {
            ssize_t n = send(u->fd, p, avail, MSG_NOSIGNAL);
            if (n > 0) {
                memmove(p, p + n, avail - (size_t)n);
                c->rlen -= (uint32_t)n;
                progress = 1;
            } else if (n < 0 && errno == EAGAIN) {
                u->up_writable = 0;
            } else if (!(n < 0 && errno == EINTR)) {
                return close_client(w, c, q, 0);
            }
        } else if (!avail && c->readable && !u->client_eof) {
            if (c->rpos > 0) {
                memmove(c->rbuf->data, c->rbuf->data + c->rpos, c->rlen - c->rpos);
                c->rlen -= c->rpos;
                c->rpos = 0;
                p = c->rbuf->data + q->head_len;
            }
            ssize_t n = recv(c->fd, p, c->rbuf->cap - c->rlen, 0);
            if (n > 0) { c->rlen += (uint32_t)n; progress = 1; }
            else if (n == 0) { u->client_eof = 1; progress = 1; }
            else if (errno == EAGAIN) c->readable = 0;
            else if (errno != EINTR) return close_client(w, c, q, 0);
        }
        int up_done = u->up_eof && q->wpos == q->wlen && (!u->rcount || u->re[u->rhead] == u->rs[u->rhead]);
        if ((u->client_eof && c->rlen - c->rpos == q->head_len) || up_done)
            return close_client(w, c, q, 0);            /* one side is finished: so is the tunnel */
        if (!progress) {
            pf_timer_set(w, c, w->now_ms + u->pc->read_timeout_ms);
            return 0;
        }
    }
}

/* ---- entry points ------------------------------------------------------------ */
int pf_proxy_location(pf_worker *w, pf_conn *c, pf_req *q)
{
    const rt_pxconf *pc = pf_px_conf(w->rt, q->conf);
    if (!pc) return 0;
    if (pc->handler == PX_STUB_STATUS) return 0;                   /* static.c serves stub_status */
    if (q->up) { pf_respond_error(w, c, q, 502); return 1; }   /* error_page into a proxy: no loop */
    pf_up *u = up_get(w);
    if (!u) { pf_respond_error(w, c, q, 500); return 1; }
    u->pc = pc;
    u->phase = PXP_BODY;
    q->up = u;
    return 1;
}

void pf_proxy_begin(pf_worker *w, pf_conn *c, pf_req *q)
{
    stat_set(w, q->up, 1);
    pf_conn_set_state(w, c, CS_UPSTREAM);
}

/* a client that went away while we wait on the upstream: close both (nginx 499) */
static int client_gone(pf_worker *w, pf_conn *c, pf_req *q)
{
    if (!c->readable) return 0;
    char b;
    ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) { c->readable = 0; return 0; }            /* pipelined bytes: later */
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) { c->readable = 0; return 0; }
    pf_log_error(w, PF_LOG_INFO, c, q, "client prematurely closed connection, so upstream connection is closed too");
    return 1;
}

int pf_proxy_run(pf_worker *w, pf_conn *c)
{
    pf_req *q = c->req;
    for (;;) {
        int rc;
        pf_up *u = q->up;                        /* X-Accel-Redirect may have replaced it */
        if (!u) return close_client(w, c, q, 500);
        switch (u->phase) {
        case PXP_BODY:
            if (!u->body_started && !(u->pc->flags & PXF_REQ_BUFFERING) && (u->pc->flags & PXF_PASS_BODY)
                && q->h.body == PF_BODY_LENGTH && q->h.content_length > 0) {
                /* request buffering off: the head goes upstream now, the body as it arrives
                 * (chunked bodies are still read whole first, as nginx does for uwsgi) */
                uint64_t limit = ((uint64_t)u->pc->max_body_hi << 32) | u->pc->max_body_lo;
                if (limit && (uint64_t)q->h.content_length > limit) {
                    pf_log_error(w, PF_LOG_ERR, c, q, "client intended to send too large body: %lld bytes",
                                 (long long)q->h.content_length);
                    return respond(w, c, q, 413);
                }
                u->body_started = 1;
                u->streaming = 1;
                u->body_left = q->h.content_length;
                rc = 1;
            } else {
                rc = pf_body_read(w, c, q, u);
            }
            if (rc == 0) {
                pf_timer_set(w, c, w->now_ms + u->pc->body_timeout_ms);
                return 0;
            }
            if (rc == -1) return close_client(w, c, q, 400);
            if (rc < 0) return respond(w, c, q, -rc);
            pf_timer_del(w, c);
            u->ukeep = ukeep_wanted(w, u);
            if ((rc = pf_px_encode(w, c, q, u)) < 0) return respond(w, c, q, -rc);
            u->first_try_ms = w->now_ms;
            stat_set(w, u, 2);
            u->phase = PXP_CONNECT;
            u->fd = -1;
            rc = up_connect(w, c, q, u);
            break;
        case PXP_CONNECT:
            if (u->fd == PX_FD_HOLD) {
                if (w->now_ms < u->up_deadline) { rc = 0; break; }   /* the timer brings us back */
                u->fd = -2;                                           /* same peer again */
            }
            if (u->fd == -1 || u->fd == -2) rc = up_connect(w, c, q, u);
            else rc = connect_done(w, c, q, u);
            break;
        case PXP_SEND:
            rc = up_send(w, c, q, u);
            break;
        case PXP_STREAM:
            rc = stream_body(w, c, q, u);
            break;
        case PXP_HEAD:
            if (client_gone(w, c, q)) return close_client(w, c, q, 499);
            rc = read_head(w, c, q, u);
            break;
        case PXP_RELAY:
            if (client_gone(w, c, q)) return close_client(w, c, q, 499);
            return relay(w, c, q, u);
        case PXP_TUNNEL:
            return tunnel(w, c, q, u);
        case PXP_DONE:
            return 1;
        default:
            assert(!"bad proxy phase");
            return -1;
        }
        if (c->state != CS_UPSTREAM) return c->state == CS_FREE ? -1 : 1;
        if (rc <= 0) {
            u = q->up;
            if (u && u->phase >= PXP_CONNECT && u->phase <= PXP_HEAD) pf_timer_set(w, c, u->up_deadline);
            return rc;
        }
    }
}

void pf_proxy_upstream_event(pf_worker *w, pf_conn *c, int readable, int writable)
{
    pf_req *q = c->req;
    if (c->state != CS_UPSTREAM || !q || !q->up) return;
    if (readable) q->up->up_readable = 1;
    if (writable) q->up->up_writable = 1;
    pf_conn_event(w, c, 0, 0, 0);
}

void pf_proxy_timeout(pf_worker *w, pf_conn *c)
{
    pf_req *q = c->req;
    pf_up *u = q ? q->up : NULL;
    if (!u) { pf_conn_close(w, c); return; }
    switch (u->phase) {
    case PXP_BODY:
        pf_log_error(w, PF_LOG_INFO, c, q, "client timed out (110: Connection timed out) while reading client request body");
        respond(w, c, q, 408);
        q->keep_alive = 0;
        break;
    case PXP_CONNECT:
        if (u->fd == PX_FD_HOLD) break;                 /* hold() wait over: try again */
        pf_log_error(w, PF_LOG_ERR, c, q, "upstream timed out (110: Connection timed out) while connecting to upstream");
        up_next(w, c, q, u, NU_TIMEOUT, 504);
        break;
    case PXP_SEND:
        pf_log_error(w, PF_LOG_ERR, c, q, "upstream timed out (110: Connection timed out) while sending request to upstream");
        up_next(w, c, q, u, NU_TIMEOUT, 504);
        break;
    case PXP_STREAM:
        if (!c->readable && c->rlen - c->rpos == q->head_len) {
            pf_log_error(w, PF_LOG_INFO, c, q, "client timed out (110: Connection timed out) while reading client request body");
            close_client(w, c, q, 408);
            return;
        }
        pf_log_error(w, PF_LOG_ERR, c, q, "upstream timed out (110: Connection timed out) while sending request to upstream");
        respond(w, c, q, 504);
        break;
    case PXP_HEAD:
        pf_log_error(w, PF_LOG_ERR, c, q,
                     "upstream timed out (110: Connection timed out) while reading response header from upstream");
        up_next(w, c, q, u, NU_TIMEOUT, 504);
        break;
    case PXP_TUNNEL:
        close_client(w, c, q, 0);                       /* idle upgraded connection */
        return;
    case PXP_RELAY:
        if (u->cl_deadline >= 0 && u->cl_deadline <= w->now_ms)
            pf_log_error(w, PF_LOG_INFO, c, q, "client timed out (110: Connection timed out) while sending to client");
        else
            pf_log_error(w, PF_LOG_ERR, c, q, "upstream timed out (110: Connection timed out) while reading upstream");
        close_client(w, c, q, 0);
        return;
    default:
        pf_conn_close(w, c);
        return;
    }
    if (c->state != CS_FREE) pf_conn_event(w, c, 0, 0, 0);
}

int pf_proxy_content_length(pf_req *q, int64_t *len)
{
    pf_up *u = q ? q->up : NULL;
    if (!u || !u->body_done || q->h.body != PF_BODY_CHUNKED) return 0;
    *len = (int64_t)u->body_len;
    return 1;
}
