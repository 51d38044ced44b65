/*
 * app_io.c — the app worker's socket I/O, so a request costs Python one call to
 * read + parse and one call to write.
 *
 * Client sockets are non-blocking (accept4 SOCK_NONBLOCK): every read/write is tried
 * first and poll()ed only on EAGAIN, so the common case is one syscall. cffi releases
 * the GIL around these calls, so worker threads block here, not in Python.
 * Errors are returned (PF_APP_* plus errno in *err) for Python to log by syscall name.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <unistd.h>

#include "pf.h"

/* Wait until fd is ready for `events` or the timeout passes. */
static int wait_fd(int fd, short events, int timeout_ms, int *err)
{
    struct pollfd pfd = { .fd = fd, .events = events };
    for (;;) {
        int r = poll(&pfd, 1, timeout_ms);
        if (r > 0)
            return 0;
        if (r == 0)
            return PF_APP_TIMEOUT;
        if (errno == EINTR)
            continue;   /* a signal for the master-side handler; retry the wait */
        *err = errno;
        return PF_APP_IOERR;
    }
}

/* accept4 on one listener: fd, PF_APP_AGAIN (nothing there / lost the race), or IOERR. */
static int try_accept(int lfd, int *err)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0)
        return fd;
    switch (errno) {
    case EAGAIN: case EINTR: case ECONNABORTED: case EPROTO:
        return PF_APP_AGAIN;   /* another thread/process won the race, or the client left */
    default:
        *err = errno;          /* EMFILE/ENFILE/ENOBUFS: Python logs "accept4() failed" and backs off */
        return PF_APP_IOERR;
    }
}

int pf_app_accept(const int *lfds, int n, int wakefd, int timeout_ms, int *which, int *err)
{
    struct pollfd pfd[PF_APP_MAX_LISTEN + 1];
    if (n < 1 || n > PF_APP_MAX_LISTEN) {
        *err = EINVAL;
        return PF_APP_IOERR;
    }
    /* Listeners are non-blocking: under load a connection is already queued, so try
     * accept4() first and poll() only when every queue is empty (1 syscall, not 2). */
    for (int i = 0; i < n; i++) {
        int fd = try_accept(lfds[i], err);
        if (fd != PF_APP_AGAIN) {
            *which = i;
            return fd;
        }
    }
    for (int i = 0; i < n; i++)
        pfd[i] = (struct pollfd){ .fd = lfds[i], .events = POLLIN };
    pfd[n] = (struct pollfd){ .fd = wakefd, .events = POLLIN };
    int r = poll(pfd, (nfds_t)n + 1, timeout_ms);
    if (r < 0) {
        if (errno == EINTR)
            return PF_APP_AGAIN;
        *err = errno;
        return PF_APP_IOERR;
    }
    if (pfd[n].revents & (POLLIN | POLLHUP | POLLERR))
        return PF_APP_STOP;
    for (int i = 0; i < n; i++) {
        if (!(pfd[i].revents & POLLIN))
            continue;
        int fd = try_accept(lfds[i], err);
        if (fd != PF_APP_AGAIN) {
            *which = i;
            return fd;
        }
    }
    return PF_APP_AGAIN;
}

int pf_app_recv(int fd, char *buf, size_t len, int timeout_ms, int *err)
{
    for (;;) {
        ssize_t n = recv(fd, buf, len, 0);
        if (n >= 0)
            return (int)n;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN) {
            *err = errno;
            return PF_APP_IOERR;
        }
        if (!(fcntl(fd, F_GETFL) & O_NONBLOCK))
            return PF_APP_TIMEOUT;    /* blocking socket: SO_RCVTIMEO expired */
        int w = wait_fd(fd, POLLIN, timeout_ms, err);
        if (w < 0)
            return w;
    }
}

/* Keep-alive connections: a blocking socket with SO_RCVTIMEO/SO_SNDTIMEO makes waiting
 * for the next request one recv() instead of recv(EAGAIN) + poll() + recv() — measured
 * 4 -> 2 syscalls per request with wrk keep-alive. */
int pf_app_blocking(int fd, int rcv_timeout_ms, int snd_timeout_ms, int *err)
{
    struct timeval rt = { rcv_timeout_ms / 1000, (rcv_timeout_ms % 1000) * 1000 };
    struct timeval st = { snd_timeout_ms / 1000, (snd_timeout_ms % 1000) * 1000 };
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0
        || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rt, sizeof rt) < 0
        || setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &st, sizeof st) < 0) {
        *err = errno;
        return PF_APP_IOERR;
    }
    return 0;
}

int pf_app_read_uwsgi(int fd, char *buf, size_t cap, uint32_t max_datasize, int timeout_ms,
                      pf_uwsgi_packet *pkt, char *flat, size_t flat_cap, size_t *nread, int *err)
{
    size_t have = *nread;
    for (;;) {
        if (have) {
            int rc = pf_uwsgi_parse(buf, have, max_datasize, pkt, NULL, 0, flat, flat_cap);
            if (rc != PF_NEED_MORE) {
                *nread = have;
                return rc;
            }
        }
        if (have == cap) {   /* caller's buffer is smaller than 4 + buffer-size: a caller bug */
            *nread = have;
            return PF_E_UWSGI_TOO_BIG;
        }
        int n = pf_app_recv(fd, buf + have, cap - have, timeout_ms, err);
        if (n <= 0) {
            *nread = have;
            return n == 0 ? PF_APP_CLOSED : n;
        }
        have += (size_t)n;
    }
}

int pf_app_send2(int fd, const char *a, size_t alen, const char *b, size_t blen, int timeout_ms, int *err)
{
    struct iovec iov[2] = { { (void *)a, alen }, { (void *)b, blen } };
    int iovcnt = 2, first = 0;
    if (!blen)
        iovcnt = 1;
    while (first < iovcnt) {
        ssize_t n = writev(fd, iov + first, iovcnt - first);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN) {
                *err = errno;
                return PF_APP_IOERR;
            }
            if (!(fcntl(fd, F_GETFL) & O_NONBLOCK))
                return PF_APP_TIMEOUT;    /* blocking socket: SO_SNDTIMEO expired */
            int w = wait_fd(fd, POLLOUT, timeout_ms, err);
            if (w < 0)
                return w;
            continue;
        }
        size_t left = (size_t)n;
        while (first < iovcnt && left >= iov[first].iov_len) {
            left -= iov[first].iov_len;
            first++;
        }
        if (first < iovcnt) {
            iov[first].iov_base = (char *)iov[first].iov_base + left;
            iov[first].iov_len -= left;
        }
    }
    return 0;
}

int64_t pf_app_sendfile(int out_fd, int in_fd, int64_t offset, int64_t count, int timeout_ms, int *err)
{
    off_t off = (off_t)offset;
    int64_t sent = 0;
    while (count < 0 || sent < count) {
        size_t want = (count < 0 || count - sent > (1 << 30)) ? (1 << 30) : (size_t)(count - sent);
        ssize_t n = sendfile(out_fd, in_fd, &off, want);
        if (n > 0) {
            sent += n;
            continue;
        }
        if (n == 0)
            break;                        /* end of file */
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN) {
            *err = errno;
            return PF_APP_IOERR;
        }
        if (!(fcntl(out_fd, F_GETFL) & O_NONBLOCK))
            return PF_APP_TIMEOUT;
        int w = wait_fd(out_fd, POLLOUT, timeout_ms, err);
        if (w < 0)
            return w;
    }
    return sent;
}

int pf_app_peer(int fd, char *out, size_t cap, int *err)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0) {
        *err = errno;
        return PF_APP_IOERR;
    }
    char host[INET6_ADDRSTRLEN] = "";
    unsigned port = 0;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
    }
    int n = port ? snprintf(out, cap, "%s%c%u", host, 0, port) : snprintf(out, cap, "%c", 0);
    return (n < 0 || (size_t)n >= cap) ? PF_APP_IOERR : n;
}

/* The vars the scoreboard line and the response's status line need (values in flat). */
typedef struct { const char *method, *uri, *path, *addr; size_t mlen, ulen, plen, alen; } board_vars;

static void note_var(pf_app_uconn *u, board_vars *bv, const char *k, size_t klen, const char *v, size_t vlen)
{
    switch (klen) {
    case 9:
        if (memcmp(k, "PATH_INFO", 9) == 0)
            bv->path = v, bv->plen = vlen;
        break;
    case 11:
        if (memcmp(k, "REQUEST_URI", 11) == 0)
            bv->uri = v, bv->ulen = vlen;
        else if (memcmp(k, "REMOTE_ADDR", 11) == 0)
            bv->addr = v, bv->alen = vlen;
        break;
    case 14:
        if (memcmp(k, "REQUEST_METHOD", 14) == 0)
            bv->method = v, bv->mlen = vlen;
        break;
    case 15:
        if (memcmp(k, "SERVER_PROTOCOL", 15) == 0)
            u->proto = v, u->proto_len = (uint32_t)vlen;
        break;
    default:
        break;
    }
}

/* Facts the WSGI environ needs from nginx's vars, found in C so the Python fast path
 * does no per-key work: drop HTTP_CONTENT_LENGTH / HTTP_CONTENT_TYPE (nginx sends the
 * request headers as HTTP_* besides the CONTENT_* params; PEP 3333 wants no HTTP_
 * copies), flag https (REQUEST_SCHEME=https or HTTPS=on|1) and a request body
 * (CONTENT_LENGTH not empty and not "0"); note the scoreboard's and the status line's vars.
 * Keys are told apart by length first: one memcmp per key, not five. */
static void tidy_flat(char *f, uint32_t *flat_len, int *flags, pf_app_uconn *u, board_vars *bv)
{
    size_t len = *flat_len, pos = 0, out = 0;
    int last_dropped = 0;
    while (pos < len) {
        size_t klen = strnlen(f + pos, len - pos);
        size_t voff = pos + klen + 1;
        size_t vlen = voff <= len ? strnlen(f + voff, len - voff) : 0;
        size_t next = voff + vlen + 1;      /* past the value's NUL (or past the end) */
        const char *k = f + pos, *v = f + voff;
        int drop = 0;
        switch (klen) {
        case 5:
            if (memcmp(k, "HTTPS", 5) == 0 && ((vlen == 2 && memcmp(v, "on", 2) == 0) || (vlen == 1 && v[0] == '1')))
                *flags |= PF_UWSGI_HTTPS;
            break;
        case 14:
            if (memcmp(k, "REQUEST_SCHEME", 14) == 0) {
                if (vlen == 5 && memcmp(v, "https", 5) == 0)
                    *flags |= PF_UWSGI_HTTPS;
            } else if (memcmp(k, "CONTENT_LENGTH", 14) == 0) {
                if (vlen && !(vlen == 1 && v[0] == '0'))
                    *flags |= PF_UWSGI_BODY;
            }
            break;
        case 17:
            drop = memcmp(k, "HTTP_CONTENT_TYPE", 17) == 0;
            break;
        case 19:
            drop = memcmp(k, "HTTP_CONTENT_LENGTH", 19) == 0;
            break;
        default:
            break;
        }
        last_dropped = drop;
        if (!drop) {
            size_t n = (next <= len ? next : len) - pos;
            if (out != pos)
                memmove(f + out, f + pos, n);
            if (bv)
                note_var(u, bv, f + out, klen, f + out + klen + 1, vlen);
            out += n;
        }
        pos = next;
    }
    if (last_dropped && out)
        out--;                              /* the kept pair before it brought its separator */
    *flat_len = (uint32_t)out;
}

static void tidy_vars(pf_app_uconn *u, board_vars *bv)
{
    tidy_flat(u->flat, &u->pkt.flat_len, &u->flags, u, bv);
}

void pf_app_uwsgi_tidy(char *flat, uint32_t *flat_len, int *flags)
{
    tidy_flat(flat, flat_len, flags, NULL, NULL);
}

/* The same notes for a packet the general path handles (NUL in a value, repeated keys). */
static void scan_vars(pf_app_uconn *u, board_vars *bv)
{
    const char *f = u->flat;
    size_t len = u->pkt.flat_len, pos = 0;
    while (pos < len) {
        size_t klen = strnlen(f + pos, len - pos);
        size_t voff = pos + klen + 1;
        size_t vlen = voff <= len ? strnlen(f + voff, len - voff) : 0;
        note_var(u, bv, f + pos, klen, f + voff, vlen);
        pos = voff + vlen + 1;
    }
}

/* A request was taken (either way): scoreboard line, request counter, the log's vars. */
static void begin_request(pf_app_uconn *u, board_vars *bv)
{
    /* the line uWSGI and Python showed: METHOD, then REQUEST_URI or else PATH_INFO */
    if (!bv->ulen)
        bv->uri = bv->path, bv->ulen = bv->plen;
    pf_app_board_begin(&u->board, bv->method ? bv->method : "", bv->mlen, bv->uri ? bv->uri : "", bv->ulen);
    if (u->log.fd >= 0) {
        pf_app_log *lg = &u->log;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        lg->t0_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
        lg->method = bv->method, lg->mlen = (uint32_t)bv->mlen;
        lg->uri = bv->uri, lg->ulen = (uint32_t)bv->ulen;
        lg->addr = bv->addr, lg->alen = (uint32_t)bv->alen;
        lg->proto = u->proto, lg->plen = u->proto_len;
        lg->nvars = u->pkt.nvars, lg->datasize = u->pkt.datasize;
    }
}

/* The common packet in one pass (pf_app_uwsgi_fused): 1 when taken, 0 = the general way. */
static int take_fused(pf_app_uconn *u, int *result)
{
    pf_app_uvars uv;
    int n = pf_app_uwsgi_fused(&u->sh, u->buf, u->nread, u->max_datasize, u->flat_cap, &u->pkt, u->vals,
                               sizeof u->vals, &uv);
    if (n < 0)
        return 0;
    const char *v = u->vals;
    board_vars bv = {
        .method = uv.off[PF_APP_UV_METHOD] >= 0 ? v + uv.off[PF_APP_UV_METHOD] : NULL,
        .uri = uv.off[PF_APP_UV_URI] >= 0 ? v + uv.off[PF_APP_UV_URI] : NULL,
        .path = uv.off[PF_APP_UV_PATH] >= 0 ? v + uv.off[PF_APP_UV_PATH] : NULL,
        .addr = uv.off[PF_APP_UV_ADDR] >= 0 ? v + uv.off[PF_APP_UV_ADDR] : NULL,
        .mlen = uv.len[PF_APP_UV_METHOD], .ulen = uv.len[PF_APP_UV_URI],
        .plen = uv.len[PF_APP_UV_PATH], .alen = uv.len[PF_APP_UV_ADDR],
    };
    u->head_len = PF_UWSGI_HEAD + (uint32_t)u->pkt.datasize;
    u->flags = 0;                       /* fused only when the general way would set none */
    u->proto = uv.off[PF_APP_UV_PROTO] >= 0 ? v + uv.off[PF_APP_UV_PROTO] : NULL;
    u->proto_len = uv.len[PF_APP_UV_PROTO];
    u->fused = 1;
    begin_request(u, &bv);
    *result = n;
    return 1;
}

int pf_app_uwsgi_take(pf_app_uconn *u)
{
    u->nread = 0;
    u->fused = 0;
    if (u->cap && !u->nofuse) {
        /* The first recv() here, not in pf_app_read_uwsgi: nginx writes the whole packet
         * right after connect(), so this one read usually has it and the one-pass walk
         * takes it; else pf_app_read_uwsgi goes on from the bytes read (nread), exactly as
         * if it had read them itself. */
        int r = pf_app_recv(u->fd, u->buf, u->cap, u->timeout_ms, &u->err);
        if (r <= 0)
            return r == 0 ? PF_APP_CLOSED : r;
        u->nread = (size_t)r;
        int n;
        if (take_fused(u, &n))
            return n;
    }
    int rc = pf_app_read_uwsgi(u->fd, u->buf, u->cap, u->max_datasize, u->timeout_ms, &u->pkt, u->flat,
                               u->flat_cap, &u->nread, &u->err);
    if (rc < 0)
        return rc;
    u->head_len = (uint32_t)rc;
    u->flags = 0;
    if (u->pkt.modifier2 == PF_UWSGI_KEEP || u->pkt.modifier2 == PF_UWSGI_KEEP_HEAD)
        u->flags |= PF_UWSGI_PERSIST;       /* pyfront's front: the caller hands it to app_loop.c */
    u->proto = NULL;
    u->proto_len = 0;
    board_vars bv = { 0 };
    if (u->pkt.flat_nul || u->pkt.flat_dup) {
        u->flags |= PF_UWSGI_SLOW;          /* Python takes the general path */
        scan_vars(u, &bv);
    } else {
        tidy_vars(u, &bv);
    }
    begin_request(u, &bv);
    if (u->pkt.modifier1 == 30)
        u->flags |= PF_UWSGI_SLOW;
    if (u->flags & PF_UWSGI_SLOW)
        return (int)u->pkt.flat_len;
    int is_new = 0;
    int n = pf_app_shape_split(&u->sh, u->flat, u->pkt.flat_len, u->vals, sizeof u->vals, &is_new);
    if (n < 0)
        return PF_E_UWSGI_TOO_BIG;
    if (is_new)
        u->flags |= PF_UWSGI_NEWSHAPE;
    return n;
}

/* The uwsgi-socket worker's one call per request: close the previous connection, accept
 * the next and read + parse its packet (nginx writes the whole packet right after
 * connect(), so the first recv() usually has it: accept4 + recv, no poll). One cffi call
 * instead of accept + read + os.close: each call re-takes the GIL and converts its
 * arguments (bench/app_cost.py). */
int pf_app_uwsgi_next(pf_app_uconn *u)
{
    if (u->fd >= 0) {
        close(u->fd);       /* the response is complete: nginx reads until EOF */
        pf_app_board_end(&u->board);
    }
    u->fd = -1;
    u->nread = 0;
    int fd = pf_app_accept(u->lfds, u->nlisten, u->wakefd, -1, &u->which, &u->err);
    if (fd < 0)
        return fd;
    u->fd = fd;
    return pf_app_uwsgi_take(u);
}

/* The status line's protocol (SERVER_PROTOCOL, else HTTP/1.0) + the app's status and headers. */
#define UWSGI_HEAD_MAX 16384

int pf_app_uwsgi_respond(pf_app_uconn *u, const char *st, size_t stlen, uint32_t nheaders,
                         const char *body, size_t blen)
{
    char sh[UWSGI_HEAD_MAX];
    const char *proto = u->proto_len ? u->proto : "HTTP/1.0";
    size_t plen = u->proto_len ? u->proto_len : 8;
    if (plen + 1 + stlen > sizeof sh)
        return PF_APP_BIGHEAD;
    memcpy(sh, proto, plen);
    sh[plen] = ' ';
    memcpy(sh + plen + 1, st, stlen);
    int r = pf_app_send_simple(u->fd, 0, sh, plen + 1 + stlen, nheaders, body, blen, u->timeout_ms, &u->err);
    if (r < 0)
        return r;
    if (u->log.fd >= 0)
        pf_app_log_request(&u->log, &u->board, st, stlen, nheaders, blen, (size_t)(r >> 1));
    return 0;
}

/* The worker thread's one cffi call per request: answer the current request (when st is
 * given), then pf_app_uwsgi_next. A cffi call costs ~1,000 instructions before any work
 * (argument conversion, GIL release and re-take: bench/app_cost.py), so respond + next
 * are one. */
int pf_app_uwsgi_step(pf_app_uconn *u, const char *st, size_t stlen, uint32_t nheaders,
                      const char *body, size_t blen)
{
    if (st) {
        int r = pf_app_uwsgi_respond(u, st, stlen, nheaders, body, blen);
        if (r == PF_APP_BADHEAD || r == PF_APP_BIGHEAD)
            return r;
        if (r < 0) {
            u->n = r;
            return PF_APP_SENDFAIL;
        }
    }
    if (__atomic_load_n(&u->stop, __ATOMIC_RELAXED)) {
        if (u->fd >= 0) {
            close(u->fd);
            pf_app_board_end(&u->board);
            u->fd = -1;
        }
        return PF_APP_STOP;
    }
    int n = pf_app_uwsgi_next(u);
    if (n < 0)
        return n;
    /* https (nginx behind TLS: REQUEST_SCHEME=https, HTTPS=on) is a fast request too: the
     * template of that scheme differs only in wsgi.url_scheme */
    int fl = u->flags & ~PF_UWSGI_HTTPS;
    if (fl == PF_UWSGI_NEWSHAPE && !u->nofast && n < (1 << 21))
        pf_app_shape_snap(&u->sh, u->vals, (size_t)n);   /* Python's template gets these values */
    if (fl || u->nofast || n >= (1 << 21)) {
        u->n = n;
        return PF_APP_SLOWREQ;
    }
    int grew;
    int m = pf_app_shape_vary(&u->sh, u->vals, (size_t)n, u->vals + PF_APP_VALS_MAX / 2, PF_APP_VALS_MAX / 2, &grew);
    if (m < 0) {                 /* (cannot be: the values came from the first half) */
        u->n = n;
        return PF_APP_SLOWREQ;
    }
    if (grew) {
        u->n = m;
        return PF_APP_NEWVARY;
    }
    return (m << 10) | ((u->flags & PF_UWSGI_HTTPS) << 9) | (u->which << 5) | u->sh.shape;
}
