/*
 * body.c — the request body, read whole and checked before anything goes upstream
 * (nginx's uwsgi_request_buffering on): client_max_body_size -> 413 (on Content-Length at
 * once, on a chunked body as soon as the decoded size passes it), chunked bodies decoded
 * (RFC 9112 §7.1; the upstream gets the payload and a length), bodies larger than
 * client_body_buffer_size spilled to an unlinked temp file under client_body_temp_path,
 * client_body_timeout between two reads.
 *
 * Memory: a chain of pooled 16 KiB buffers up to client_body_buffer_size; nothing is
 * allocated per request once the pools are warm.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include "pf_int.h"

#define BODY_MEM_MAX ((uint64_t)PX_RING * PF_BUF_SIZE)

static uint64_t max_body(const rt_pxconf *pc) { return ((uint64_t)pc->max_body_hi << 32) | pc->max_body_lo; }

static int mkdirs(const char *path)
{
    char tmp[PF_PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof tmp) return -1;
    memcpy(tmp, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] != '/' && tmp[i] != 0) continue;
        char save = tmp[i];
        tmp[i] = 0;
        if (mkdir(tmp, 0700) < 0 && errno != EEXIST) return -1;
        tmp[i] = save;
    }
    return 0;
}

static int open_temp(pf_worker *w, pf_conn *c, pf_req *q, const rt_pxconf *pc)
{
    char dir[PF_PATH_MAX];
    snprintf(dir, sizeof dir, "%.*s", (int)pc->temp_path.len, RT_S(w->rt, pc->temp_path));
    if (!dir[0]) snprintf(dir, sizeof dir, "/tmp");
    for (int attempt = 0; attempt < 2; attempt++) {
        /* O_TMPFILE: the file has no name, so nothing is left behind by a crash */
        int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd >= 0) return fd;
        if (errno == ENOENT && attempt == 0 && mkdirs(dir) == 0) continue;
        if (errno == EOPNOTSUPP || errno == EISDIR) {
            char path[PF_PATH_MAX + 32];
            snprintf(path, sizeof path, "%s/pfbodyXXXXXX", dir);
            fd = mkostemp(path, O_CLOEXEC);
            if (fd >= 0) { unlink(path); return fd; }
        }
        pf_log_error(w, PF_LOG_CRIT, c, q, "open() \"%s\" failed (%d: %s)", dir, errno, strerror(errno));
        return -1;
    }
    return -1;
}

static int write_all(pf_worker *w, pf_conn *c, pf_req *q, int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            pf_log_error(w, PF_LOG_CRIT, c, q, "write() to the client body temp file failed (%d: %s)", errno,
                         strerror(errno));
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Keep len bytes of body: memory while it fits, else the temp file. 0 or -500. */
static int body_append(pf_worker *w, pf_conn *c, pf_req *q, pf_up *u, const char *p, size_t len)
{
    const rt_pxconf *pc = u->pc;
    uint64_t cap = pc->body_buffer_size < BODY_MEM_MAX ? pc->body_buffer_size : BODY_MEM_MAX;
    if (u->body_fd < 0 && u->body_len + len > cap) {
        u->body_fd = open_temp(w, c, q, pc);
        if (u->body_fd < 0) return -500;
        pf_log_error(w, PF_LOG_WARN, c, q, "a client request body is buffered to a temporary file %.*s",
                     (int)pc->temp_path.len, RT_S(w->rt, pc->temp_path));
        for (uint32_t i = 0; i < u->nbody; i++) {
            uint32_t n = i + 1 == u->nbody ? u->body_last_len : u->body[i]->cap;
            if (write_all(w, c, q, u->body_fd, u->body[i]->data, n) < 0) return -500;
            pf_buf_put(w, u->body[i]);
            u->body[i] = NULL;
        }
        u->nbody = 0;
        u->body_last_len = 0;
    }
    if (u->body_fd >= 0) {
        if (write_all(w, c, q, u->body_fd, p, len) < 0) return -500;
        u->body_len += len;
        return 0;
    }
    while (len > 0) {
        if (u->nbody == 0 || u->body_last_len == u->body[u->nbody - 1]->cap) {
            pf_buf *b = pf_buf_get(w);
            if (!b) return -500;
            u->body[u->nbody++] = b;
            u->body_last_len = 0;
        }
        pf_buf *b = u->body[u->nbody - 1];
        size_t k = b->cap - u->body_last_len;
        if (k > len) k = len;
        memcpy(b->data + u->body_last_len, p, k);
        u->body_last_len += (uint32_t)k;
        u->body_len += k;
        p += k;
        len -= k;
    }
    return 0;
}

void pf_body_release(pf_worker *w, pf_up *u)
{
    for (uint32_t i = 0; i < u->nbody; i++) pf_buf_put(w, u->body[i]);
    u->nbody = 0;
    u->body_last_len = 0;
    if (u->body_fd >= 0) close(u->body_fd);
    u->body_fd = -1;
}

static int too_large(pf_worker *w, pf_conn *c, pf_req *q, uint64_t n, int chunked)
{
    pf_log_error(w, PF_LOG_ERR, c, q, "client intended to send too large %sbody: %llu%s bytes",
                 chunked ? "chunked " : "", (unsigned long long)n, chunked ? "+" : "");
    return -413;
}

/* Consume body bytes at p[0..avail): returns bytes used (>= 0) or -status. */
static long consume(pf_worker *w, pf_conn *c, pf_req *q, pf_up *u, const char *p, size_t avail)
{
    if (!u->body_chunked) {
        size_t k = avail < (uint64_t)u->body_left ? avail : (size_t)u->body_left;
        int rc = body_append(w, c, q, u, p, k);
        if (rc < 0) return rc;
        u->body_left -= (int64_t)k;
        if (u->body_left == 0) u->body_done = 1;
        return (long)k;
    }
    size_t used = 0;
    uint64_t limit = max_body(u->pc);
    while (used < avail && !u->body_done) {
        size_t doff, dlen;
        int done = 0;
        int n = pf_chunked_feed(&u->chunk, p + used, avail - used, &doff, &dlen, &done);
        if (n < 0) {
            pf_log_error(w, PF_LOG_INFO, c, q, "client sent invalid chunked body (%s)", pf_http_why_text(u->chunk.error));
            return -400;
        }
        if (limit && u->chunk.total > limit) return too_large(w, c, q, u->chunk.total, 1);
        if (dlen) {
            int rc = body_append(w, c, q, u, p + used + doff, dlen);
            if (rc < 0) return rc;
        }
        used += (size_t)n;
        if (done) u->body_done = 1;
        if (n == 0) break;
    }
    return (long)used;
}

/* 1 = body complete, 0 = wait for the client, -1 = connection gone, -status = answer it */
int pf_body_read(pf_worker *w, pf_conn *c, pf_req *q, pf_up *u)
{
    const rt_pxconf *pc = u->pc;
    if (u->body_done) return 1;
    if (!u->body_started) {                                  /* first call: set up */
        u->body_started = 1;
        if (q->h.body == PF_BODY_NONE || (q->h.body == PF_BODY_LENGTH && q->h.content_length == 0)) {
            u->body_done = 1;
            return 1;
        }
        if (q->h.body == PF_BODY_LENGTH) {
            uint64_t limit = max_body(pc);
            if (limit && (uint64_t)q->h.content_length > limit)
                return too_large(w, c, q, (uint64_t)q->h.content_length, 0);
            u->body_left = q->h.content_length;
        } else {
            u->body_chunked = 1;
            pf_chunked_init(&u->chunk);
        }
    }
    for (;;) {
        /* bytes already behind the head in the read buffer */
        char *p = c->rbuf->data + c->rpos + q->head_len;
        size_t avail = c->rlen - c->rpos - q->head_len;
        if (avail > 0) {
            long used = consume(w, c, q, u, p, avail);
            if (used < 0) return (int)used;
            memmove(p, p + used, avail - (size_t)used);     /* keep a pipelined request */
            c->rlen -= (uint32_t)used;
        }
        if (u->body_done) return 1;
        if (!u->continue_sent && q->h.expect_continue) {
            /* the client waits for this before sending the body (RFC 9110 §10.1.1) */
            u->continue_sent = 1;
            if (send(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25, MSG_NOSIGNAL) < 0 && errno != EAGAIN) {
                pf_log_error(w, PF_LOG_INFO, c, q, "send() failed (%d: %s)", errno, strerror(errno));
                return -1;
            }
        }
        if (!c->readable) return 0;
        /* read straight into a stack buffer; a Content-Length body is never over-read */
        char tmp[16384];
        size_t want = sizeof tmp;
        if (!u->body_chunked && (uint64_t)u->body_left < want) want = (size_t)u->body_left;
        ssize_t n = recv(c->fd, tmp, want, 0);
        if (n == 0) {
            pf_log_error(w, PF_LOG_INFO, c, q, "client prematurely closed connection");
            return -1;
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) { c->readable = 0; return 0; }
            pf_log_error(w, PF_LOG_INFO, c, q, "recv() failed (%d: %s) while reading client request body", errno,
                         strerror(errno));
            return -1;
        }
        if ((size_t)n < want) c->readable = 0;
        long used = consume(w, c, q, u, tmp, (size_t)n);
        if (used < 0) return (int)used;
        if ((size_t)used < (size_t)n) {
            /* a chunked body ended and the next request's bytes came with it: keep them
             * behind the head if they fit, else give up keep-alive for this connection */
            size_t extra = (size_t)n - (size_t)used;
            if (c->rlen + extra <= c->rbuf->cap) {
                memcpy(c->rbuf->data + c->rlen, tmp + used, extra);
                c->rlen += (uint32_t)extra;
            } else {
                q->keep_alive = 0;
            }
        }
        if (u->body_done) return 1;
    }
}
