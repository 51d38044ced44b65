/*
 * access_log.c — access log lines formatted in C from the compiled log_format, appended
 * to a per-file 64 KiB buffer, written with one write(2) when the buffer fills, on the
 * 1 s flush timer (loop.c), on reopen (USR1) and at exit. nginx writes each line
 * unbuffered unless `buffer=` is given; buffering by default saves a syscall per request
 * and the timer bounds the delay an operator sees with `tail -f`.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "pf_int.h"

#define ALOG_BUF (64 * 1024)
#define ALOG_LINE_MAX 8192

int pf_alog_open_all(pf_worker *w)
{
    const pf_router *r = w->rt;
    if (!w->alogs && r->nlogfile) {
        w->alogs = calloc(r->nlogfile, sizeof(pf_alog));
        if (!w->alogs) return -1;
        for (uint32_t i = 0; i < r->nlogfile; i++) w->alogs[i].fd = -1;
    }
    w->nalogs = r->nlogfile;
    int rc = 0;
    for (uint32_t i = 0; i < r->nlogfile; i++) {
        pf_alog *a = &w->alogs[i];
        char path[PF_PATH_MAX];
        rt_str p = r->logfile[i].path;
        if (p.len >= sizeof path) { rc = -1; continue; }
        memcpy(path, RT_S(r, p), p.len);
        path[p.len] = 0;
        if (strcmp(path, "/dev/stdout") == 0) a->fd = dup(1);
        else if (strcmp(path, "/dev/stderr") == 0) a->fd = dup(2);
        else a->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (a->fd < 0) {
            pf_log_error(w, PF_LOG_EMERG, NULL, NULL, "open() \"%s\" failed (%d: %s)", path, errno, strerror(errno));
            rc = -1;
            continue;
        }
        if (!a->buf) {
            a->buf = malloc(ALOG_BUF);
            a->cap = ALOG_BUF;
            a->len = 0;
            if (!a->buf) rc = -1;
        }
    }
    return rc;
}

static void flush_one(pf_worker *w, pf_alog *a)
{
    uint32_t off = 0;
    while (a->fd >= 0 && off < a->len) {
        ssize_t n = write(a->fd, a->buf + off, a->len - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            pf_log_error(w, PF_LOG_ALERT, NULL, NULL, "write() to access log failed (%d: %s)", errno, strerror(errno));
            break;
        }
        off += (uint32_t)n;
    }
    a->len = 0;
}

void pf_alog_flush_all(pf_worker *w)
{
    for (uint32_t i = 0; i < w->nalogs; i++) if (w->alogs[i].len) flush_one(w, &w->alogs[i]);
}

void pf_alog_close_all(pf_worker *w)
{
    for (uint32_t i = 0; i < w->nalogs; i++) {
        pf_alog *a = &w->alogs[i];
        if (a->fd >= 0 && close(a->fd) < 0)
            pf_log_error(w, PF_LOG_ALERT, NULL, NULL, "close() access log failed (%d: %s)", errno, strerror(errno));
        a->fd = -1;
        if (a->buf) { free(a->buf); a->buf = NULL; }
    }
}

void pf_alog_write(pf_worker *w, pf_conn *c, pf_req *q)
{
    if (!q || q->conf < 0) return;
    const rt_conf *cf = &w->rt->conf[q->conf];
    for (uint32_t i = 0; i < cf->access_logs.count; i++) {
        const rt_acclog *al = &w->rt->acclog[cf->access_logs.first + i];
        pf_alog *a = &w->alogs[al->file];
        if (!a->buf) continue;
        if (a->cap - a->len < ALOG_LINE_MAX + 1) flush_one(w, a);
        size_t n = pf_tpl_expand(w, c, q, al->tpl, (int)al->escape, a->buf + a->len, ALOG_LINE_MAX);
        a->len += (uint32_t)n;
        a->buf[a->len++] = '\n';
    }
}
