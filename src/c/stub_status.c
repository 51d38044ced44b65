/*
 * stub_status.c — nginx's basic status page, byte for byte:
 *   "Active connections: N \nserver accepts handled requests\n A H R \nReading: r Writing: w Waiting: k \n"
 * Counts are summed over every worker's shared-memory slot (accepts = handled: a
 * connection pyfront accepts is always handled); Reading/Writing/Waiting: this worker's
 * own states plus the other workers' busy/idle split.
 */
#include <stdio.h>
#include <string.h>
#include "pf_int.h"

int pf_stub_status_body(uint64_t active, uint64_t accepts, uint64_t handled, uint64_t requests, uint64_t reading,
                        uint64_t writing, uint64_t waiting, char *out, size_t cap)
{
    int n = snprintf(out, cap,
                     "Active connections: %llu \nserver accepts handled requests\n %llu %llu %llu \n"
                     "Reading: %llu Writing: %llu Waiting: %llu \n",
                     (unsigned long long)active, (unsigned long long)accepts, (unsigned long long)handled,
                     (unsigned long long)requests, (unsigned long long)reading, (unsigned long long)writing,
                     (unsigned long long)waiting);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

void pf_stub_status(pf_worker *w, pf_conn *c, pf_req *q)
{
    uint64_t active = w->active, accepted = w->accepted, requests = w->requests, idle = w->idle;
    uint64_t reading = 0;
    for (int i = 0; i < w->conf.max_connections; i++)
        if (w->conns[i].state == CS_READ_HEAD && &w->conns[i] != c) reading++;
    uint64_t writing = active - idle - reading;
    for (int k = 0; w->conf.shm && k < w->conf.nworkers; k++) {
        pf_shm_slot s;
        if (k == w->conf.index || pf_shm_read_slot(w->conf.shm, k, &s) < 0 || !s.pid) continue;
        active += s.active;
        accepted += s.accepted;
        requests += s.requests;
        idle += s.idle;
        writing += s.active - s.idle;
    }
    char body[512];
    int bl = pf_stub_status_body(active, accepted, accepted, requests, reading, writing, idle, body, sizeof body);
    if (!q->wbuf && !(q->wbuf = pf_buf_get(w))) { q->close_now = 1; return; }
    const rt_conf *cf = q->conf >= 0 ? &w->rt->conf[q->conf] : NULL;
    int keep = q->keep_alive && !c->close_after && !w->draining && (!cf || (cf->keepalive_timeout_ms
                                                                             && c->nreq < cf->keepalive_requests));
    q->keep_alive = keep;
    q->status = 200;
    int n = snprintf(q->wbuf->data, q->wbuf->cap,
                     "HTTP/1.1 200 OK\r\nServer: %s\r\nDate: %s\r\nContent-Type: text/plain\r\n"
                     "Content-Length: %d\r\nConnection: %s\r\n\r\n",
                     pf_server_token(cf ? !!(cf->flags & RT_F_SERVER_TOKENS) : 1), w->date_hdr, bl,
                     keep ? "keep-alive" : "close");
    q->header_bytes = (uint64_t)n;
    if (!q->header_only && n + bl <= (int)q->wbuf->cap) { memcpy(q->wbuf->data + n, body, (size_t)bl); n += bl; }
    q->wpos = 0;
    q->wlen = (uint32_t)n;
}
