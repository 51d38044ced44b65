/*
 * proxy_int.h — the front's proxy leg: route-table records written by
 * pyfront.config.compile_proxy, per-worker upstream state, per-request upstream state.
 * Included from pf_int.h (not part of the cffi contract).
 */
#ifndef PF_PROXY_INT_H
#define PF_PROXY_INT_H

#include <stdint.h>
#include <sys/uio.h>

/* ---- route-table records (docs/proxy.md) ------------------------------- */
enum { PX_NONE = 0, PX_UWSGI = 1, PX_HTTP = 2, PX_STUB_STATUS = 3 };
enum {
    PXF_PASS_HEADERS = 1, PXF_PASS_BODY = 2, PXF_BUFFERING = 4, PXF_REQ_BUFFERING = 8,
    PXF_INTERCEPT = 16, PXF_HTTP11 = 32, PXF_HAS_URI = 64, PXF_HOST_PARAM = 128,
};
/* uwsgi_next_upstream / proxy_next_upstream bits (nginx's NGX_HTTP_UPSTREAM_FT_*) */
enum {
    NU_ERROR = 1, NU_TIMEOUT = 2, NU_INVALID_HEADER = 4, NU_NON_IDEMPOTENT = 8, NU_500 = 16,
    NU_502 = 32, NU_503 = 64, NU_504 = 128, NU_403 = 256, NU_404 = 512, NU_429 = 1024,
};

typedef struct rt_pxconf {
    uint32_t handler;               /* PX_* */
    uint32_t upstream;              /* UPSTREAM index (RT_NONE for stub_status) */
    rt_range params;                /* PARAM: uwsgi_param / proxy_set_header, file order */
    uint32_t flags;                 /* PXF_* */
    uint32_t next_upstream;         /* NU_* ; 0 = off */
    uint32_t next_tries, next_timeout_ms;
    uint32_t connect_timeout_ms, read_timeout_ms, send_timeout_ms;
    uint32_t buffer_size;           /* biggest response head accepted (uwsgi_buffer_size) */
    uint32_t buffers_total;         /* read-ahead bound for the body (uwsgi_buffers n x size) */
    rt_range hide;                  /* LIST: lower-case response header names not passed */
    uint32_t modifier1, modifier2;
    uint32_t max_body_lo, max_body_hi;   /* client_max_body_size; 0 = unlimited */
    uint32_t body_buffer_size, body_timeout_ms;
    rt_str temp_path;               /* client_body_temp_path (directory) */
    rt_str uri;                     /* proxy_pass URI part (PXF_HAS_URI) */
    rt_str match_prefix;            /* the location's prefix, replaced by uri */
    rt_str proxy_host;              /* $proxy_host */
    rt_str redirect_from, redirect_to;   /* proxy_redirect default: Location prefix rewrite */
    uint32_t proxy_port, pad;
} rt_pxconf;

typedef struct rt_upstream {
    rt_str name;
    rt_range peers;                 /* PEER: primaries first, then backups */
    uint32_t nprimary;
    uint32_t method;                /* PF_LB_* */
    uint32_t hash_tpl;              /* `hash KEY`: template; RT_NONE otherwise */
    uint32_t consistent;
    uint32_t keepalive, keepalive_requests, keepalive_timeout_ms;
    uint32_t flags;                 /* RT_UPS_* */
} rt_upstream;
/* Every server of the upstream is a uwsgi socket of a [uwsgi] app of the same CONF_DIR
 * (pyfront.config.compile_proxy.mark_app_links): uwsgi_pass marks its packets (modifier2
 * PF_UWSGI_KEEP / PF_UWSGI_KEEP_HEAD) and reuses connections whose response came framed
 * (docs/proxy.md "Persistent connections to pyfront's own app server"). */
#define RT_UPS_PYFRONT_APP 1

enum { RT_PEER_BACKUP = 1, RT_PEER_DOWN = 2 };
typedef struct rt_peer {
    rt_str name;                    /* "127.0.0.1:8000", "unix:/x.sock" (nginx's spelling) */
    rt_str sa;                      /* struct sockaddr bytes */
    uint32_t weight, max_fails, fail_timeout_ms, max_conns, flags, pad;
} rt_peer;

enum { RT_PARAM_IF_NOT_EMPTY = 1 };
typedef struct rt_param { rt_str name; uint32_t tpl; uint32_t flags; } rt_param;

struct pf_router;
int pf_px_check_refs(const struct pf_router *r, char *err, size_t errlen);
const rt_pxconf *pf_px_conf(const struct pf_router *r, int conf);   /* NULL: not a proxy location */


/* ---- per-request upstream state (proxy.c) ------------------------------- */
#define PX_RING 64
enum px_phase {
    PXP_BODY = 1,       /* reading (and checking) the request body */
    PXP_CONNECT,        /* non-blocking connect in progress */
    PXP_SEND,           /* sending the packet/request + body */
    PXP_STREAM,         /* uwsgi_request_buffering off: client body -> upstream as it comes */
    PXP_HEAD,           /* reading the response head */
    PXP_RELAY,          /* streaming the response body to the client */
    PXP_TUNNEL,         /* 101 Switching Protocols: bytes both ways until one side closes */
    PXP_DONE,
};

typedef struct pf_up {
    struct pf_up *next_free;
    const rt_pxconf *pc;
    int phase;
    /* request body (body.c) */
    pf_buf *body[PX_RING]; uint32_t nbody;   /* memory chain, each buffer filled to cap */
    uint32_t body_last_len;                  /* bytes in body[nbody-1] */
    int body_fd;                             /* temp file once over client_body_buffer_size */
    uint64_t body_len;                       /* bytes buffered so far */
    int64_t body_left;                       /* Content-Length bytes still to read; -1 chunked */
    int body_started, body_chunked, body_done, continue_sent, streaming, body_streamed;
    pf_chunked chunk;
    /* upstream connection */
    int fd, cached, registered;
    uint32_t ka_requests;                    /* requests already served on a cached connection */
    int peer;                                /* index in the upstream's peers, -1 none */
    int last_peer;                           /* the last one tried ($upstream_addr after a failure) */
    pf_lb_ctx lb;
    uint32_t tries;
    int64_t first_try_ms, connect_start_ms;
    int request_sent;
    /* outgoing request */
    pf_buf *pkt;                             /* packet / request head (64 KiB class) */
    uint32_t pkt_len;
    uint32_t uri_off, uri_len;               /* proxy_pass: the URI in pkt (for logs) */
    uint64_t out_pos;                        /* bytes of pkt + body sent */
    /* response */
    pf_buf *hbuf; uint32_t hlen;             /* head bytes (and the first body bytes) */
    pf_http_response resp;
    int status;
    int resp_mode;                           /* PF_BODY_* of the upstream body */
    uint64_t resp_left;                      /* LENGTH: bytes still expected */
    pf_chunked rchunk;
    int up_eof, up_error, keep_upstream;
    uint64_t resp_bytes;                     /* body bytes received ($upstream_response_length) */
    /* relay ring of pooled buffers: data [s, e) each */
    pf_buf *ring[PX_RING]; uint32_t rs[PX_RING], re[PX_RING];
    uint32_t rhead, rcount, rmax;
    int client_chunked, last_chunk_sent, header_sent;
    char frame[24]; uint32_t frame_len, frame_pos;   /* chunk-size line being sent */
    int in_chunk;                                      /* 1: payload of the current frame pending */
    uint32_t chunk_left;                               /* payload bytes of the current frame */
    int trailer_pending;                               /* "\r\n" after a chunk payload */
    int64_t up_deadline, cl_deadline;
    int64_t t_connect, t_header;             /* ms offsets for $upstream_*_time */
    uint32_t stat_state;                     /* 1 reading (body), 2 writing */
    int up_readable, up_writable, client_gone_checked;
    int final_status;                        /* 502/504 when the last try fails */
    int tunnel, client_eof;                  /* upgraded connection (WebSocket) */
    int holdable;                            /* the failure just seen may be an app swapping (proxy.c hold) */
    int ukeep;                               /* marked uwsgi packet sent: pyfront app, framed response */
    int eof_after_send;                      /* a kept connection ended cleanly after the request:
                                                the upstream read it (unread bytes would reset it) */
    uint32_t holds;                          /* reconnects to the same peer so far */
} pf_up;
/* Hold and retry (docs/differences.md): a unix-socket upstream that refuses, or resets /
 * closes before any response byte, is tried again — same peer — for up to PX_HOLD_MS,
 * before nginx's failover / 502. */
#define PX_HOLD_MS 1000
#define PX_FD_HOLD (-3)                      /* u->fd while waiting for the next try */
#define PF_EV_UPSTREAM (1ull << 61)          /* epoll data: an upstream fd of connection slot/gen */

typedef struct {
    int fd; int peer; int64_t since; uint32_t requests;
    uint64_t tag;                            /* its epoll registration's data (the last owner) */
} pf_ka_conn;

typedef struct {
    pf_balancer *lb;
    pf_ka_conn *ka; uint32_t nka;            /* idle keep-alive connections (proxy_pass 1.1) */
} pf_ups_state;

typedef struct pf_px pf_px;
struct pf_px {
    pf_ups_state *ups; uint32_t nups;
    pf_up *free_ups; uint32_t nfree_ups;
    pf_buf *free_pkts; uint32_t nfree_pkts;
    uint32_t reading, writing;               /* stub_status: requests in those phases */
    uint32_t seed;
    int temp_ok;                             /* temp dir made */
    char scratch[32768];                     /* param expansion for the request being encoded */
};

struct pf_worker; struct pf_conn; struct pf_req;
/* proxy.c: called from static.c (content phase), conn.c (run/timeout/release), loop.c */
int pf_proxy_location(struct pf_worker *w, struct pf_conn *c, struct pf_req *q);   /* 1 = taken */
void pf_proxy_begin(struct pf_worker *w, struct pf_conn *c, struct pf_req *q);
int pf_proxy_run(struct pf_worker *w, struct pf_conn *c);          /* conn_run contract */
void pf_proxy_upstream_event(struct pf_worker *w, struct pf_conn *c, int readable, int writable);
void pf_proxy_timeout(struct pf_worker *w, struct pf_conn *c);
void pf_proxy_release(struct pf_worker *w, struct pf_req *q);
void pf_proxy_free(struct pf_worker *w);
size_t pf_proxy_log_upstream(struct pf_worker *w, struct pf_req *q, char *out, size_t cap);
size_t pf_proxy_var(struct pf_worker *w, struct pf_conn *c, struct pf_req *q, uint32_t var,
                    const char *arg, size_t alen, char *out, size_t cap);
int pf_proxy_content_length(struct pf_req *q, int64_t *len);          /* 1: buffered body length */
/* upstream.c */
struct pf_px *pf_px_get(struct pf_worker *w);
int pf_ups_get_peer(struct pf_worker *w, uint32_t ups, pf_lb_ctx *ctx, const char *key, size_t klen);
void pf_ups_free_peer(struct pf_worker *w, uint32_t ups, int peer, int failed);
pf_buf *pf_px_pkt_get(struct pf_worker *w);
void pf_px_pkt_put(struct pf_worker *w, pf_buf *b);
/* Idle connections stay registered in the worker's epoll set while parked (their stale
 * tag routes a late event to a connection that ignores it), so a reuse costs one
 * EPOLL_CTL_MOD, not DEL at park + ADD at take. */
/* pf_ka_take: *tag in = the caller's epoll tag (its own parked connection is preferred),
 * out = the taken connection's registration: re-tag it (EPOLL_CTL_MOD) when they differ. */
int pf_ka_take(struct pf_worker *w, uint32_t ups, int peer, uint32_t *requests, uint64_t *tag);
void pf_ka_park(struct pf_worker *w, uint32_t ups, int peer, int fd, uint32_t requests, uint64_t tag);
/* body.c: read the request body; 1 done, 0 wait, <0: -status to answer, or -1 close */
int pf_body_read(struct pf_worker *w, struct pf_conn *c, struct pf_req *q, pf_up *u);
void pf_body_release(struct pf_worker *w, pf_up *u);
/* proxy_encode.c: the outgoing packet / request head into u->pkt; 0 or -status */
int pf_px_encode(struct pf_worker *w, struct pf_conn *c, struct pf_req *q, pf_up *u);
/* static.c */
int pf_internal_redirect(struct pf_worker *w, struct pf_conn *c, struct pf_req *q, const char *uri, size_t len);
#define PX_PKT_SIZE (65536 + 4096)

#endif
