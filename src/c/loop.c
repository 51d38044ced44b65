/*
 * loop.c — the epoll loop of a front worker: cached time, a min-heap of connection
 * deadlines, event dispatch with a stale-event guard, and the wake-up fd.
 *
 * Stale events: one epoll_wait batch can hold an event for a connection that an earlier
 * event of the same batch closed (and maybe reused for a new accept). Each event carries
 * (slot << 32 | generation); a slot's generation bumps on every close, so the old event
 * no longer matches and is dropped (nginx does the same with its "instance" bit).
 */
#include <errno.h>
#include <string.h>
#include <stdio.h>
#include <time.h>
#include <sys/epoll.h>
#include "pf_int.h"

#define EV_LISTENER (1ull << 63)
#define EV_WAKEUP   (1ull << 62)

int64_t pf_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *wday[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

size_t pf_http_date(time_t t, char *out)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    return (size_t)sprintf(out, "%s, %02d %s %04d %02d:%02d:%02d GMT", wday[tm.tm_wday], tm.tm_mday,
                           mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* IMF-fixdate only ("Sun, 06 Nov 1994 08:49:37 GMT"), the form every current client
 * sends; the obsolete RFC 850/asctime forms are treated as absent (RFC 9110 §5.6.7
 * lets a recipient ignore an invalid date: the request is then unconditional). */
int pf_parse_http_date(const char *s, size_t len, time_t *out)
{
    char buf[40];
    struct tm tm;
    if (len < 29 || len >= sizeof buf) return -1;
    memcpy(buf, s, len);
    buf[len] = 0;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end) return -1;
    *out = timegm(&tm);
    return 0;
}

void pf_update_time(pf_worker *w)
{
    w->now_ms = pf_now_ms();
    time_t now = time(NULL);
    if (now == w->date_for) return;
    w->date_for = now;
    w->now_s = now;
    pf_http_date(now, w->date_hdr);
    struct tm tm;
    localtime_r(&now, &tm);
    long off = tm.tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    if (off < 0) off = -off;
    snprintf(w->time_local, sizeof w->time_local, "%02d/%s/%d:%02d:%02d:%02d %c%02ld%02ld", tm.tm_mday,
             mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, sign, off / 60, off % 60);
    snprintf(w->time_iso, sizeof w->time_iso, "%04d-%02d-%02dT%02d:%02d:%02d%c%02ld:%02ld", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, sign, off / 60, off % 60);
}

/* ---- deadline heap ------------------------------------------------------ */
static void heap_swap(pf_worker *w, int a, int b)
{
    pf_conn *t = w->heap[a];
    w->heap[a] = w->heap[b];
    w->heap[b] = t;
    w->heap[a]->heap_idx = a;
    w->heap[b]->heap_idx = b;
}

static void heap_up(pf_worker *w, int i)
{
    while (i > 0) {
        int p = (i - 1) / 2;
        if (w->heap[p]->deadline <= w->heap[i]->deadline) break;
        heap_swap(w, p, i);
        i = p;
    }
}

static void heap_down(pf_worker *w, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < w->heap_n && w->heap[l]->deadline < w->heap[m]->deadline) m = l;
        if (r < w->heap_n && w->heap[r]->deadline < w->heap[m]->deadline) m = r;
        if (m == i) break;
        heap_swap(w, i, m);
        i = m;
    }
}

void pf_timer_del(pf_worker *w, pf_conn *c)
{
    int i = c->heap_idx;
    if (i < 0) return;
    w->heap_n--;
    if (i != w->heap_n) {
        w->heap[i] = w->heap[w->heap_n];
        w->heap[i]->heap_idx = i;
        heap_up(w, i);
        heap_down(w, i);
    }
    c->heap_idx = -1;
}

void pf_timer_set(pf_worker *w, pf_conn *c, int64_t deadline)
{
    if (c->heap_idx >= 0) {
        int64_t old = c->deadline;
        c->deadline = deadline;
        if (deadline < old) heap_up(w, c->heap_idx); else heap_down(w, c->heap_idx);
        return;
    }
    c->deadline = deadline;
    c->heap_idx = w->heap_n;
    w->heap[w->heap_n++] = c;
    heap_up(w, c->heap_idx);
}

static void expire_timers(pf_worker *w)
{
    while (w->heap_n > 0 && w->heap[0]->deadline <= w->now_ms) {
        pf_conn *c = w->heap[0];
        pf_timer_del(w, c);
        pf_conn_timeout(w, c);
    }
}

/* One loop turn: wait for events (at most max_ms), dispatch them, run due timers.
 * Returns PF_RUN_WAKEUP when the signal wake-up fd became readable. */
int pf_loop_poll(pf_worker *w, int max_ms)
{
    struct epoll_event ev[512];
    int timeout = max_ms;
    if (w->heap_n > 0) {
        int64_t d = w->heap[0]->deadline - w->now_ms;
        if (d < timeout) timeout = d < 0 ? 0 : (int)d;
    }
    if (w->nalogs) {
        int64_t d = w->next_flush_ms - w->now_ms;
        if (d < timeout) timeout = d < 0 ? 0 : (int)d;
    }
    int n = epoll_wait(w->epfd, ev, 512, timeout);
    int wake = 0;
    if (n < 0) {
        if (errno != EINTR) {
            pf_log_error(w, PF_LOG_ALERT, NULL, NULL, "epoll_wait() failed (%d: %s)", errno, strerror(errno));
            return -1;
        }
        n = 0;
        wake = 1;              /* a signal interrupted us: let Python look at it */
    }
    pf_update_time(w);
    for (int i = 0; i < n; i++) {
        uint64_t d = ev[i].data.u64;
        uint32_t e = ev[i].events;
        if (d & EV_LISTENER) {
            pf_accept_ready(w, &w->ls[d & 0xffff]);
        } else if (d & EV_WAKEUP) {
            wake = 1;
        } else if (d & PF_EV_UPSTREAM) {                     /* proxy.c's upstream fd */
            uint32_t slot = (uint32_t)((d & ~PF_EV_UPSTREAM) >> 32), gen = (uint32_t)d;
            if (slot >= (uint32_t)w->conf.max_connections) continue;
            pf_conn *c = &w->conns[slot];
            if (c->gen != gen || c->state == CS_FREE) continue;     /* stale event */
            pf_proxy_upstream_event(w, c, (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0,
                                    (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0);
        } else {
            uint32_t slot = (uint32_t)(d >> 32), gen = (uint32_t)d;
            if (slot >= (uint32_t)w->conf.max_connections) continue;
            pf_conn *c = &w->conns[slot];
            if (c->gen != gen || c->state == CS_FREE) continue;     /* stale event */
            pf_conn_event(w, c, (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0,
                          (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0,
                          (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
        }
    }
    expire_timers(w);
    if (w->nalogs && w->now_ms >= w->next_flush_ms) {
        pf_alog_flush_all(w);
        w->next_flush_ms = w->now_ms + 1000;
    }
    return wake ? PF_RUN_WAKEUP : 0;
}
