/*
 * conn.c — the client connection state machine.
 *
 *   FREE -> IDLE            accepted (deadline: client_header_timeout)
 *   IDLE -> READ_HEAD       bytes arrived: take a buffer from the free list now, never
 *                           while idle (an idle keep-alive connection holds no buffer:
 *                           its cost is sizeof(pf_conn) + the kernel socket)
 *   READ_HEAD -> WRITE      head parsed, routed, response head built
 *   READ_HEAD -> DISCARD_BODY  the request has a body we do not use: read and drop it
 *   DISCARD_BODY -> WRITE   body dropped
 *   WRITE -> READ_HEAD      response sent, keep-alive, the next pipelined request is
 *                           already in the buffer
 *   WRITE -> IDLE           response sent, keep-alive, nothing buffered: buffers released
 *   WRITE -> LINGER         response sent, closing: shut down writing, drain input
 *                           briefly so the client reads our response instead of an RST
 *   any -> FREE             close (error, timeout, EOF)
 *   UPSTREAM                reserved for the proxy leg (issue 4): READ_HEAD -> UPSTREAM
 *                           -> WRITE, with the upstream fd in the same loop
 *
 * Edge-triggered epoll: each connection is registered once (IN|OUT|RDHUP|ET) and keeps
 * readable/writable flags, cleared on EAGAIN or a short read/write (nginx's ready
 * flags), so a keep-alive request costs recv + send (+ stat) and no epoll_ctl.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include "pf_int.h"

static const rt_conf *addr_conf(pf_worker *w, pf_conn *c)
{
    int a = w->ls[c->listener].addr;
    const pf_router *r = w->rt;
    uint32_t s = (a >= 0 && (uint32_t)a < r->naddr) ? r->addr[a].default_server : 0;
    return &r->conf[r->server[s].conf];
}

/* The one place a connection changes state; checks the transition is a legal edge. */
static void conn_to(pf_worker *w, pf_conn *c, int to)
{
    int from = c->state, ok = 0;
    switch (from) {
    case CS_FREE:         ok = to == CS_IDLE; break;
    case CS_IDLE:         ok = to == CS_READ_HEAD || to == CS_FREE; break;
    case CS_READ_HEAD:    ok = to == CS_WRITE || to == CS_DISCARD_BODY || to == CS_UPSTREAM || to == CS_FREE; break;
    case CS_DISCARD_BODY: ok = to == CS_WRITE || to == CS_FREE; break;
    case CS_WRITE:        ok = to == CS_IDLE || to == CS_READ_HEAD || to == CS_LINGER || to == CS_FREE; break;
    case CS_LINGER:       ok = to == CS_FREE; break;
    case CS_UPSTREAM:     ok = to == CS_WRITE || to == CS_FREE; break;
    default:              PF_ASSERT(!"bad connection state"); break;
    }
    PF_ASSERT(ok);
    if (from == CS_IDLE) w->idle--;
    if (to == CS_IDLE) w->idle++;
    /* stub_status: Reading = request head, Writing = request being answered */
    if (from == CS_READ_HEAD) w->reading--;
    if (to == CS_READ_HEAD) w->reading++;
    if (from == CS_DISCARD_BODY || from == CS_WRITE || from == CS_UPSTREAM) w->writing--;
    if (to == CS_DISCARD_BODY || to == CS_WRITE || to == CS_UPSTREAM) w->writing++;
    c->state = (uint8_t)to;
}

/* for proxy.c: READ_HEAD -> UPSTREAM -> WRITE */
void pf_conn_set_state(pf_worker *w, pf_conn *c, int to) { conn_to(w, c, to); }

static pf_req *req_get(pf_worker *w)
{
    pf_req *q = w->free_reqs;
    if (q) { w->free_reqs = q->next_free; w->nreqs_free--; }
    else if (!(q = malloc(sizeof *q))) return NULL;
    q->next_free = NULL;
    q->h.method.len = 0;
    q->h.nheaders = 0;
    q->h.host.len = 0;
    q->head_len = 0;
    q->server = q->conf = q->loc = -1;
    q->uri_len = 0; q->uri[0] = 0;
    q->fname_len = 0; q->fname[0] = 0;
    q->status = 0; q->keep_alive = 0; q->header_only = 0; q->redirects = 0;
    q->err_page_done = 0; q->forced_status = 0; q->close_now = 0; q->body_too_large = 0; q->underscores = 0;
    q->start_ms = w->now_ms;
    q->discard_left = 0; q->discard_chunked = 0;
    q->wbuf = NULL; q->wlen = q->wpos = 0;
    q->fent = NULL; q->body_fd = -1; q->body_off = q->body_end = 0;
    q->mem = NULL; q->mem_len = q->mem_pos = 0;
    q->gz = NULL;
    q->bytes_sent = q->header_bytes = 0;
    q->content_type_set = 0;
    q->nranges = q->range_i = 0;
    q->up = NULL;
    q->rid_set = 0;
    return q;
}

static void req_release(pf_worker *w, pf_conn *c)
{
    pf_req *q = c->req;
    if (!q) return;
    if (q->fent) pf_fent_release(w, q->fent);
    if (q->up) pf_proxy_release(w, q);
    pf_gzip_free(q);
    pf_buf_put(w, q->wbuf);
    c->req = NULL;
    if (w->nreqs_free >= 32 + (w->active - w->idle)) { free(q); return; }   /* bounded pool */
    q->next_free = w->free_reqs;
    w->free_reqs = q;
    w->nreqs_free++;
}

void pf_conn_close(pf_worker *w, pf_conn *c)
{
    if (c->state == CS_FREE) return;
    pf_timer_del(w, c);
    req_release(w, c);
    pf_buf_put(w, c->rbuf);
    c->rbuf = NULL;
    if (c->fd >= 0 && close(c->fd) < 0)
        pf_log_error(w, PF_LOG_ALERT, c, NULL, "close() failed (%d: %s)", errno, strerror(errno));
    c->fd = -1;
    conn_to(w, c, CS_FREE);
    c->gen++;                         /* events still queued for this slot are now stale */
    c->next_free = w->free_conns;
    w->free_conns = c;
    w->nfree++;
    w->active--;
    pf_worker_conn_freed(w);
}

static void idle_timer(pf_worker *w, pf_conn *c, uint32_t ms)
{
    int64_t d = w->now_ms + ms;
    if ((c->close_after || w->draining) && w->drain_deadline < d) d = w->drain_deadline;
    pf_timer_set(w, c, d);
}

void pf_conn_accepted(pf_worker *w, pf_conn *c)
{
    conn_to(w, c, CS_IDLE);
    c->writable = 1;
    c->close_after = (uint8_t)w->draining;
    idle_timer(w, c, addr_conf(w, c)->client_header_timeout_ms);
}

void pf_conn_drain(pf_worker *w, pf_conn *c)
{
    c->close_after = 1;
    if (c->state == CS_IDLE || (c->state == CS_READ_HEAD && c->rlen == c->rpos)) {
        if (c->heap_idx < 0 || c->deadline > w->drain_deadline) pf_timer_set(w, c, w->drain_deadline);
    }
}

/* recv into the read buffer: >0 bytes, 0 EOF, -1 would block, -2 error */
static int conn_recv(pf_worker *w, pf_conn *c)
{
    pf_buf *b = c->rbuf;
    if (c->rpos > 0 && c->rlen == b->cap) {       /* make room: move the unread tail down */
        memmove(b->data, b->data + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos;
        c->rpos = 0;
    }
    size_t room = b->cap - c->rlen;
    if (room == 0) return -3;
    for (;;) {
        ssize_t n = recv(c->fd, b->data + c->rlen, room, 0);
        if (n > 0) {
            c->rlen += (uint32_t)n;
            /* a short read drained the socket, unless the peer's FIN came with the data
             * (EPOLLRDHUP in the same edge): then the next recv must see the EOF, as no
             * further event will come (nginx's pending_eof) */
            if ((size_t)n < room && !c->eof_pending) c->readable = 0;
            return (int)n;
        }
        if (n == 0) return 0;
        if (errno == EINTR) continue;
        if (errno == EAGAIN) { c->readable = 0; return -1; }
        pf_log_error(w, PF_LOG_INFO, c, NULL, "recv() failed (%d: %s)", errno, strerror(errno));
        return -2;
    }
}

static void start_error(pf_worker *w, pf_conn *c, pf_req *q, int rc)
{
    int status = rc == PF_E_URI_TOO_LONG ? 414 : rc == PF_E_HEADER_TOO_LARGE ? 494
               : rc == PF_E_VERSION ? 505 : rc == PF_E_NOT_IMPLEMENTED ? 501 : 400;
    if (q->h.error) pf_log_error(w, PF_LOG_INFO, c, NULL, "%s", pf_http_why_text(q->h.error));
    q->h.method.len = 0;               /* the head is invalid: do not log spans from it */
    q->h.host.len = 0;
    q->h.nheaders = 0;
    q->head_len = c->rlen - c->rpos;
    q->keep_alive = 0;
    q->err_page_done = 1;
    q->conf = -1;
    q->server = -1;
    {
        /* the default server's settings (server_tokens, ...) still apply */
        int a = w->ls[c->listener].addr;
        if (a >= 0 && (uint32_t)a < w->rt->naddr) {
            q->server = (int)w->rt->addr[a].default_server;
            q->conf = (int)w->rt->server[q->server].conf;
        }
    }
    pf_respond_error(w, c, q, status);
    q->keep_alive = 0;
    c->nreq++;
    w->requests++;
    pf_timer_del(w, c);
    conn_to(w, c, CS_WRITE);
}

static void start_request(pf_worker *w, pf_conn *c, pf_req *q, int head_len)
{
    q->head_len = (uint32_t)head_len;
    q->start_ms = w->now_ms;
    q->rid_set = 0;
    q->keep_alive = q->h.keep_alive;
    c->nreq++;
    w->requests++;
    pf_timer_del(w, c);
    if (q->h.body == PF_BODY_LENGTH && q->h.content_length > 0) q->discard_left = q->h.content_length;
    else if (q->h.body == PF_BODY_CHUNKED) { q->discard_chunked = 1; pf_chunked_init(&q->chunk); }
    pf_handle_request(w, c, q);
    if (q->close_now) { pf_alog_write(w, c, q); pf_conn_close(w, c); return; }
    if (q->body_too_large) {                       /* 413: answer, then close; never read it */
        q->discard_left = 0;
        q->discard_chunked = 0;
        q->keep_alive = 0;
    }
    if (q->up) {                      /* proxy.c reads the body itself */
        q->discard_left = 0;
        q->discard_chunked = 0;
        pf_proxy_begin(w, c, q);
        return;
    }
    if (q->discard_left || q->discard_chunked) {
        /* a client waiting for "100 Continue" would never send the body we must drain
         * (nginx's discard path sends it too); 25 bytes into an empty socket buffer */
        if (q->h.expect_continue && c->rlen - c->rpos == q->head_len
            && send(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25, MSG_NOSIGNAL) < 0 && errno != EAGAIN)
            pf_log_error(w, PF_LOG_INFO, c, q, "send() failed (%d: %s)", errno, strerror(errno));
        conn_to(w, c, CS_DISCARD_BODY);
        pf_timer_set(w, c, w->now_ms + (q->conf >= 0 ? w->rt->conf[q->conf].client_body_timeout_ms : 60000));
    } else {
        conn_to(w, c, CS_WRITE);
    }
}

/* READ_HEAD: 1 = state changed, 0 = wait for an event, -1 = closed */
static int do_read_head(pf_worker *w, pf_conn *c)
{
    if (!c->req && !(c->req = req_get(w))) { pf_conn_close(w, c); return -1; }
    pf_req *q = c->req;
    const rt_conf *ac = addr_conf(w, c);
    pf_http_limits lim = {ac->large_header_buffer_size, ac->large_header_buffer_size};
    for (;;) {
        size_t avail = c->rlen - c->rpos;
        if (avail > 0) {
            int rc = pf_http_parse_request(c->rbuf->data + c->rpos, avail, &lim, &q->h);
            if (rc > 0) { start_request(w, c, q, rc); return c->state == CS_FREE ? -1 : 1; }
            if (rc != PF_NEED_MORE) { start_error(w, c, q, rc); return 1; }
            size_t limit = (size_t)ac->large_header_buffers * ac->large_header_buffer_size;
            if (avail == c->rbuf->cap && c->rbuf->cap < limit) {
                /* large_client_header_buffers: a head may use number x size bytes (4 x 8k);
                 * only such rare requests get a bigger, unpooled buffer */
                pf_buf *big = malloc(sizeof *big + limit);
                if (!big) { pf_conn_close(w, c); return -1; }
                big->cap = (uint32_t)limit;
                memcpy(big->data, c->rbuf->data + c->rpos, avail);
                pf_buf_put(w, c->rbuf);
                c->rbuf = big;
                c->rpos = 0;
                c->rlen = (uint32_t)avail;
            }
            if (avail == c->rbuf->cap) {
                /* buffer full: 414 while still in the request line, else nginx's 494 page */
                start_error(w, c, q, memchr(c->rbuf->data + c->rpos, '\n', avail) ? PF_E_HEADER_TOO_LARGE
                                                                                   : PF_E_URI_TOO_LONG);
                return 1;
            }
        }
        if (!c->readable) return 0;
        int n = conn_recv(w, c);
        if (n == 0 || n == -2) {
            if (avail > 0)
                pf_log_error(w, PF_LOG_INFO, c, NULL, "client prematurely closed connection while reading client request headers");
            pf_conn_close(w, c);
            return -1;
        }
        if (n == -1) return 0;
    }
}

/* DISCARD_BODY: drop the body bytes that follow the head; keep what follows the body. */
static int do_discard(pf_worker *w, pf_conn *c)
{
    pf_req *q = c->req;
    for (;;) {
        char *p = c->rbuf->data + c->rpos + q->head_len;
        size_t avail = c->rlen - c->rpos - q->head_len;
        size_t used = 0;
        if (avail > 0) {
            if (q->discard_chunked) {
                size_t doff, dlen;
                int done = 0;
                while (used < avail && !done) {
                    int n = pf_chunked_feed(&q->chunk, p + used, avail - used, &doff, &dlen, &done);
                    if (n < 0) {
                        pf_log_error(w, PF_LOG_INFO, c, q, "client sent invalid chunked body");
                        pf_conn_close(w, c);
                        return -1;
                    }
                    if (n == 0) break;
                    used += (size_t)n;
                }
                if (done) q->discard_chunked = 0;
            } else {
                used = avail < (uint64_t)q->discard_left ? avail : (size_t)q->discard_left;
                q->discard_left -= (int64_t)used;
            }
            memmove(p, p + used, avail - used);
            c->rlen -= (uint32_t)used;
        }
        if (!q->discard_left && !q->discard_chunked) {
            pf_timer_del(w, c);
            conn_to(w, c, CS_WRITE);
            return 1;
        }
        if (!c->readable) return 0;
        int n = conn_recv(w, c);
        if (n == 0 || n == -2 || n == -3) { pf_conn_close(w, c); return -1; }
        if (n == -1) return 0;
        /* client_body_timeout is the gap between two reads, as nginx's */
        pf_timer_set(w, c, w->now_ms + (q->conf >= 0 ? w->rt->conf[q->conf].client_body_timeout_ms : 60000));
    }
}

static int send_some(pf_worker *w, pf_conn *c, pf_req *q, const char *p, size_t len, int more, size_t *sent)
{
    for (;;) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
        if (n >= 0) {
            /* A short write does not prove the socket is full (and an edge-triggered
             * EPOLLOUT may never come if it is not): only EAGAIN clears writable. */
            *sent = (size_t)n;
            q->bytes_sent += (uint64_t)n;
            return 0;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN) { c->writable = 0; *sent = 0; return 0; }
        pf_log_error(w, PF_LOG_INFO, c, q, "send() failed (%d: %s)", errno, strerror(errno));
        return -1;
    }
}

/* WRITE: 1 = response complete, 0 = socket full, -1 = error */
static int write_out(pf_worker *w, pf_conn *c, pf_req *q)
{
    const rt_conf *cf = q->conf >= 0 ? &w->rt->conf[q->conf] : NULL;
    int use_sendfile = cf && (cf->flags & RT_F_SENDFILE);
    for (;;) {
        size_t sent;
        if (q->wpos < q->wlen) {
            if (!c->writable) return 0;
            int more = !q->header_only && !q->gz && q->body_fd >= 0 && q->body_off < q->body_end && use_sendfile;
            if (send_some(w, c, q, q->wbuf->data + q->wpos, q->wlen - q->wpos, more, &sent) < 0) return -1;
            q->wpos += (uint32_t)sent;
            continue;
        }
        if (q->header_only) return 1;
        if (q->gz) {
            int fin;
            long n = pf_gzip_produce(w, q, q->wbuf->data, q->wbuf->cap, &fin);
            if (n < 0) { pf_log_error(w, PF_LOG_ERR, c, q, "gzip failed"); return -1; }
            q->wpos = 0;
            q->wlen = (uint32_t)n;
            if (n == 0 && fin) return 1;
            continue;
        }
        if (q->mem && q->mem_pos < q->mem_len) {
            if (!c->writable) return 0;
            if (send_some(w, c, q, q->mem + q->mem_pos, q->mem_len - q->mem_pos, 0, &sent) < 0) return -1;
            q->mem_pos += (uint32_t)sent;
            if (q->mem_pos == q->mem_len) q->body_off = q->body_end;
            continue;
        }
        if (q->body_fd >= 0 && q->body_off < q->body_end) {
            if (!c->writable) return 0;
            off_t left = q->body_end - q->body_off;
            if (use_sendfile) {
                size_t want = left > (1 << 21) ? (1 << 21) : (size_t)left;
                ssize_t n = sendfile(c->fd, q->body_fd, &q->body_off, want);
                if (n < 0) {
                    if (errno == EINTR) continue;
                    if (errno == EAGAIN) { c->writable = 0; return 0; }
                    pf_log_error(w, PF_LOG_INFO, c, q, "sendfile() failed (%d: %s)", errno, strerror(errno));
                    return -1;
                }
                if (n == 0) {
                    pf_log_error(w, PF_LOG_ALERT, c, q, "sendfile() reported that \"%s\" was truncated", q->fname);
                    return -1;
                }
                q->bytes_sent += (uint64_t)n;
                continue;                     /* short: try again; EAGAIN decides (see send_some) */
            }
            size_t want = left > (off_t)q->wbuf->cap ? q->wbuf->cap : (size_t)left;
            ssize_t n = pread(q->body_fd, q->wbuf->data, want, q->body_off);
            if (n <= 0) {
                pf_log_error(w, PF_LOG_ALERT, c, q, "pread() \"%s\" failed (%d: %s)", q->fname, errno, strerror(errno));
                return -1;
            }
            q->body_off += n;
            q->wpos = 0;
            q->wlen = (uint32_t)n;
            continue;
        }
        if (q->nranges > 1 && pf_next_part(q)) continue;    /* multipart/byteranges */
        return 1;
    }
}

static void to_linger(pf_worker *w, pf_conn *c)
{
    if (shutdown(c->fd, SHUT_WR) < 0) { pf_conn_close(w, c); return; }
    req_release(w, c);
    pf_buf_put(w, c->rbuf);
    c->rbuf = NULL;
    conn_to(w, c, CS_LINGER);
    pf_timer_set(w, c, w->now_ms + addr_conf(w, c)->lingering_timeout_ms);
}

/* the response is out: log it, then keep-alive, pipeline or close */
static int finish_request(pf_worker *w, pf_conn *c)
{
    pf_req *q = c->req;
    pf_alog_write(w, c, q);
    int keep = q->keep_alive && !c->close_after;
    int status = q->status;
    uint32_t ka = q->conf >= 0 ? w->rt->conf[q->conf].keepalive_timeout_ms : 0;
    uint32_t consumed = q->head_len;
    pf_timer_del(w, c);
    if (!keep) {
        int unread = c->rlen > c->rpos + consumed || c->readable;
        if (status >= 400 || unread) { to_linger(w, c); return c->state == CS_FREE ? -1 : 1; }
        pf_conn_close(w, c);
        return -1;
    }
    req_release(w, c);
    c->rpos += consumed;
    if (c->rpos < c->rlen) {                     /* WRITE -> READ_HEAD: pipelined request */
        conn_to(w, c, CS_READ_HEAD);
        pf_timer_set(w, c, w->now_ms + addr_conf(w, c)->client_header_timeout_ms);
        return 1;
    }
    pf_buf_put(w, c->rbuf);                      /* WRITE -> IDLE: no buffer while idle */
    c->rbuf = NULL;
    c->rpos = c->rlen = 0;
    conn_to(w, c, CS_IDLE);
    idle_timer(w, c, ka);
    return 1;
}

static int do_linger(pf_worker *w, pf_conn *c)
{
    char sink[4096];
    while (c->readable) {
        ssize_t n = recv(c->fd, sink, sizeof sink, 0);
        if (n > 0) continue;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) { c->readable = 0; return 0; }
        pf_conn_close(w, c);
        return -1;
    }
    return 0;
}

/* Drive the connection until it must wait for an event. */
static void conn_run(pf_worker *w, pf_conn *c)
{
    for (;;) {
        int rc;
        switch (c->state) {
        case CS_IDLE:
            if (!c->readable) return;
            if (!c->rbuf && !(c->rbuf = pf_buf_get(w))) { pf_conn_close(w, c); return; }
            c->rpos = c->rlen = 0;
            conn_to(w, c, CS_READ_HEAD);
            continue;
        case CS_READ_HEAD:
            rc = do_read_head(w, c);
            break;
        case CS_DISCARD_BODY:
            rc = do_discard(w, c);
            break;
        case CS_WRITE:
            rc = write_out(w, c, c->req);
            if (rc < 0) { pf_alog_write(w, c, c->req); pf_conn_close(w, c); return; }
            if (rc == 0) {
                uint32_t st = c->req->conf >= 0 ? w->rt->conf[c->req->conf].send_timeout_ms : 60000;
                pf_timer_set(w, c, w->now_ms + st);
                return;
            }
            rc = finish_request(w, c);
            break;
        case CS_LINGER:
            rc = do_linger(w, c);
            break;
        case CS_FREE:
            return;
        case CS_UPSTREAM:
            rc = pf_proxy_run(w, c);  /* client and upstream events both land here */
            break;
        default:
            PF_ASSERT(!"bad connection state");
            return;
        }
        if (rc <= 0) return;
    }
}

void pf_conn_event(pf_worker *w, pf_conn *c, int readable, int writable, int hup)
{
    if (readable) c->readable = 1;
    if (writable) c->writable = 1;
    if (hup) c->eof_pending = 1;
    conn_run(w, c);
}

void pf_conn_timeout(pf_worker *w, pf_conn *c)
{
    switch (c->state) {
    case CS_IDLE:
        pf_conn_close(w, c);          /* keep-alive expired (or drain deadline): silent close */
        break;
    case CS_READ_HEAD:
        pf_log_error(w, PF_LOG_INFO, c, NULL, "client timed out (110: Connection timed out) while reading client request headers");
        pf_conn_close(w, c);
        break;
    case CS_DISCARD_BODY:
        pf_log_error(w, PF_LOG_INFO, c, c->req, "client timed out (110: Connection timed out) while reading client request body");
        pf_conn_close(w, c);
        break;
    case CS_WRITE:
        pf_log_error(w, PF_LOG_INFO, c, c->req, "client timed out (110: Connection timed out) while sending response to client");
        pf_alog_write(w, c, c->req);
        pf_conn_close(w, c);
        break;
    case CS_UPSTREAM:
        pf_proxy_timeout(w, c);
        break;
    case CS_LINGER:
        pf_conn_close(w, c);
        break;
    default:
        PF_ASSERT(!"timer on a free connection");
        break;
    }
}
