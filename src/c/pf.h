/*
 * pf.h — the whole C <-> Python contract of pyfront's core.
 *
 * Only the region between PF_CDEF_BEGIN and PF_CDEF_END is read by cffi
 * (src/pyfront/_build/ffi_build.py), so it holds plain declarations: fixed-width
 * integer types, POD structs, opaque handles, integer #defines. Each concern owns
 * one section below; add declarations to your own section only.
 *
 * Status convention for every parser: return >= 0 = bytes consumed (complete),
 * PF_NEED_MORE = feed more bytes, other negatives = a PF_E* error code.
 */
#ifndef PF_H
#define PF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* PF_CDEF_BEGIN */

/* ---- common ---------------------------------------------------------- */
#define PF_ABI_VERSION 1
#define PF_NEED_MORE -1

const char *pf_version(void);
int pf_abi_version(void);

/* ---- http parser (http_parser.c, http_response.c, http_chunked.c) ------ */
/*
 * Zero-copy, stateless HTTP/1.x head parsers (picohttpparser's model): the
 * caller keeps the bytes of a connection in one buffer and calls again with
 * the WHOLE buffer (from the first byte of the message) whenever more bytes
 * arrive. Nothing is allocated or copied: every pf_span is an offset/length
 * into that buffer, valid while the buffer is. No globals; safe in any thread.
 *
 * Return contract of pf_http_parse_request / pf_http_parse_response:
 *   > 0            the head is complete; the value is its length in bytes
 *                  (through the blank line, including any leading empty lines
 *                  skipped before a request line). The body / the next
 *                  pipelined request starts at buf + value.
 *   PF_NEED_MORE   every byte so far is valid but the head is not complete.
 *                  When the caller's buffer is full at this point it answers
 *                  400 "Request Header Or Cookie Too Large" (as nginx does
 *                  when large_client_header_buffers run out); a too-long
 *                  request line is already reported here as PF_E_URI_TOO_LONG.
 *   PF_E_*         the message is invalid; ->error holds a PF_HTTP_WHY_* code
 *                  (pf_http_why_text() gives the log text) and ->error_off the
 *                  offset of the offending line. The connection must be closed
 *                  after the error response (RFC 9112 §2.2, §11.2).
 * Decisions depend only on bytes already seen, so feeding any prefix of an
 * input gives PF_NEED_MORE or exactly the result of the whole input.
 * Strict RFC 9112: every line ends in CRLF (a bare LF or bare CR anywhere in
 * the head is an error — the bare-LF tolerance of RFC 9112 §2.2 is refused
 * because parsers disagreeing on it is a request-smuggling vector).
 */
typedef struct { uint32_t off; uint32_t len; } pf_span;
typedef struct { pf_span name; pf_span value; } pf_http_header;   /* value: OWS trimmed */

#define PF_HTTP_MAX_HEADERS 100   /* a 101st field line -> PF_E_HEADER_TOO_LARGE */

/* errors (negative, distinct from PF_NEED_MORE); each maps to the status nginx sends */
#define PF_E_BAD_REQUEST      -400   /* 400 */
#define PF_E_URI_TOO_LONG     -414   /* 414 (request line longer than limits->max_request_line) */
#define PF_E_HEADER_TOO_LARGE -431   /* sent as nginx's 400 "Request Header Or Cookie Too Large" */
#define PF_E_VERSION          -505   /* 505: HTTP/2.0, HTTP/3.0, HTTP/11.1 ... (major > 1) */
#define PF_E_NOT_IMPLEMENTED  -501   /* 501: a Transfer-Encoding other than "chunked" */
#define PF_E_BAD_GATEWAY      -502   /* response parser: the upstream sent garbage */

/* why a message was refused (->error); text via pf_http_why_text() */
#define PF_HTTP_WHY_NONE               0
#define PF_HTTP_WHY_BARE_CR            1
#define PF_HTTP_WHY_BARE_LF            2
#define PF_HTTP_WHY_NUL                3
#define PF_HTTP_WHY_BAD_REQUEST_LINE   4   /* spacing / missing parts of the request line */
#define PF_HTTP_WHY_BAD_METHOD         5
#define PF_HTTP_WHY_BAD_TARGET         6
#define PF_HTTP_WHY_BAD_VERSION        7
#define PF_HTTP_WHY_VERSION_UNSUPPORTED 8
#define PF_HTTP_WHY_REQUEST_LINE_TOO_LONG 9
#define PF_HTTP_WHY_HEADER_LINE_TOO_LONG 10
#define PF_HTTP_WHY_TOO_MANY_HEADERS  11
#define PF_HTTP_WHY_OBS_FOLD          12   /* field line starting with SP/HTAB */
#define PF_HTTP_WHY_SPACE_BEFORE_COLON 13
#define PF_HTTP_WHY_NO_COLON          14
#define PF_HTTP_WHY_BAD_FIELD_NAME    15
#define PF_HTTP_WHY_BAD_FIELD_VALUE   16
#define PF_HTTP_WHY_NO_HOST           17
#define PF_HTTP_WHY_DUP_HOST          18
#define PF_HTTP_WHY_BAD_HOST          19
#define PF_HTTP_WHY_DUP_CONTENT_LENGTH 20
#define PF_HTTP_WHY_BAD_CONTENT_LENGTH 21
#define PF_HTTP_WHY_CL_AND_TE         22
#define PF_HTTP_WHY_DUP_TE            23
#define PF_HTTP_WHY_TE_HTTP10         24
#define PF_HTTP_WHY_UNKNOWN_TE        25
#define PF_HTTP_WHY_BAD_STATUS_LINE   26
#define PF_HTTP_WHY_BAD_CHUNK_SIZE    27
#define PF_HTTP_WHY_CHUNK_SIZE_OVERFLOW 28
#define PF_HTTP_WHY_BAD_CHUNK_EXT     29
#define PF_HTTP_WHY_CHUNK_LINE_TOO_LONG 30
#define PF_HTTP_WHY_BAD_CHUNK_END     31   /* chunk data not followed by CRLF */
#define PF_HTTP_WHY_BAD_TRAILER       32
#define PF_HTTP_WHY_TRAILERS_TOO_LARGE 33
#define PF_HTTP_WHY_MAX               34

/* method ids (method_id); anything else that is a valid token is PF_M_OTHER */
#define PF_M_OTHER   0
#define PF_M_GET     1
#define PF_M_HEAD    2
#define PF_M_POST    3
#define PF_M_PUT     4
#define PF_M_DELETE  5
#define PF_M_OPTIONS 6
#define PF_M_PATCH   7
#define PF_M_TRACE   8
#define PF_M_CONNECT 9

/* request-target forms (RFC 9112 §3.2); authority-form is refused with 400 as nginx does */
#define PF_TARGET_ORIGIN   0   /* "/path?query" */
#define PF_TARGET_ABSOLUTE 1   /* "http://host[:port]/path?query" (http/https only) */
#define PF_TARGET_ASTERISK 2   /* "*", OPTIONS only */

/* message body framing (RFC 9112 §6.3) */
#define PF_BODY_NONE    0   /* no body: request without CL/TE; 1xx/204/304 response */
#define PF_BODY_LENGTH  1   /* content_length bytes follow (may be 0) */
#define PF_BODY_CHUNKED 2   /* decode with pf_chunked_feed */
#define PF_BODY_CLOSE   3   /* response only: body runs until the upstream closes */

typedef struct {
    pf_span method, target;   /* target: raw, undecoded (nginx's $request_uri) */
    pf_span path;             /* target up to the first '?' or '#'; for absolute-form the part
                                 after the authority; len 0 means "/" (e.g. "http://h" or "*") */
    pf_span query;            /* after '?' up to '#' (or end), no '?'; len 0 when none */
    pf_span host;             /* absolute-form authority if any (RFC 9112 §3.2.2: it wins),
                                 else the Host value; may include ":port"; len 0 when none */
    int method_id;            /* PF_M_* */
    int target_form;          /* PF_TARGET_* */
    int version_minor;        /* 0 or 1: "HTTP/1.2".."HTTP/1.9" are served as 1.1 (RFC 9110
                                 §2.5, like nginx) */
    uint32_t nheaders;
    pf_http_header headers[PF_HTTP_MAX_HEADERS];
    /* framing and connection facts (RFC 9112 §6, §9.3) */
    int64_t content_length;   /* -1 when absent */
    int body;                 /* PF_BODY_NONE / LENGTH / CHUNKED */
    int chunked;              /* Transfer-Encoding: chunked */
    int keep_alive;           /* 1.1: unless "Connection: close"; 1.0: only "keep-alive" */
    int expect_continue;      /* "Expect: 100-continue" on HTTP/1.1 */
    int upgrade;              /* Connection has "upgrade" and an Upgrade header is present */
    int host_index;           /* index into headers of Host, -1 if none */
    int error;                /* PF_HTTP_WHY_* when the result is an error, else 0 */
    uint32_t error_off;       /* offset of the line holding the error (the request line when
                                 the error is about the whole head, e.g. a missing Host) */
} pf_http_request;

typedef struct {
    uint32_t max_request_line;   /* bytes before the request line's CRLF (leading empty lines
                                    included); more -> PF_E_URI_TOO_LONG. 0 = no limit */
    uint32_t max_header_line;    /* bytes of one field line before its CRLF; more ->
                                    PF_E_HEADER_TOO_LARGE (502 for responses). 0 = no limit */
} pf_http_limits;

/* limits may be NULL: 8192 / 8192 (nginx's large_client_header_buffers 4 8k). */
int pf_http_parse_request(const char *buf, size_t len, const pf_http_limits *limits,
                          pf_http_request *req);

typedef struct {
    int version_minor;        /* HTTP/1.0 or 1.x (x >= 1 -> 1) */
    int status;               /* 100..999 */
    pf_span reason;           /* may be empty ("HTTP/1.1 200\r\n" is accepted, as nginx does) */
    uint32_t nheaders;
    pf_http_header headers[PF_HTTP_MAX_HEADERS];
    int64_t content_length;   /* -1 when absent */
    int body;                 /* PF_BODY_*; assumes a non-HEAD request: after HEAD the caller
                                 treats every response as PF_BODY_NONE */
    int chunked;              /* final transfer coding is chunked */
    int keep_alive;           /* the upstream connection may be reused after the body */
    int error;                /* PF_HTTP_WHY_* when the result is an error */
    uint32_t error_off;
} pf_http_response;

/* Upstream response head; same contract, every error is PF_E_BAD_GATEWAY. limits may be
 * NULL (defaults as above; max_request_line bounds the status line). A 1xx other than 101
 * is an interim head: the caller skips it (return value) and parses again. */
int pf_http_parse_response(const char *buf, size_t len, const pf_http_limits *limits,
                           pf_http_response *resp);

/* CGI-style response head (no status line; fields through the blank line), which nginx's
 * uwsgi/scgi modules accept when the status line does not parse: status from "Status: NNN
 * [reason]", else 302 with a Location field, else 200; version_minor is 1 and keep_alive is
 * computed as for HTTP/1.1. Same contract as pf_http_parse_response. */
int pf_http_parse_cgi_response(const char *buf, size_t len, const pf_http_limits *limits,
                               pf_http_response *resp);

/* Log text for a PF_HTTP_WHY_* code, e.g. "invalid line ending: bare LF (CRLF required)". */
const char *pf_http_why_text(int why);

/* Index of the first header at index >= from whose name equals name[0..name_len)
 * case-insensitively (name need not be lower case), or -1. Works on req->headers and
 * resp->headers alike; call again with from = found + 1 for repeated fields. */
int pf_http_header_index(const char *buf, const pf_http_header *headers, uint32_t nheaders,
                         const char *name, size_t name_len, uint32_t from);

/*
 * Incremental chunked-body decoder (RFC 9112 §7.1), caller-owned state, no copies.
 * Unlike the head parsers it is stateful: feed each byte once. One call consumes framing
 * bytes and at most ONE run of payload bytes; it returns the bytes consumed (>= 0) and sets
 * (*data_off, *data_len) to the payload inside buf[0 .. consumed) (length 0 = framing only).
 * Loop while bytes remain and !*done; a call with len > 0 before done consumes >= 1 byte.
 * *done = 1 once the last chunk and the trailers (read, checked, discarded) are consumed;
 * bytes after that (a pipelined request) are left unconsumed, later calls return 0.
 * Errors: PF_E_BAD_REQUEST (c->error = PF_HTTP_WHY_*) — sticky; a proxy maps it to 502 for
 * an upstream body. Size: 1*HEXDIG, < 2^63; the size line (with extensions) is at most
 * PF_CHUNK_LINE_MAX bytes with its CRLF, the trailer section at most PF_CHUNK_TRAILERS_MAX.
 * c->total counts payload bytes so far (for client_max_body_size).
 */
#define PF_CHUNK_LINE_MAX     4096
#define PF_CHUNK_TRAILERS_MAX 16384
typedef struct {
    int state;
    int error;
    uint64_t remaining;       /* payload bytes left in the current chunk */
    uint64_t total;           /* payload bytes decoded so far */
    uint32_t line;            /* bytes of the current size line / trailer section */
} pf_chunked;
void pf_chunked_init(pf_chunked *c);
int pf_chunked_feed(pf_chunked *c, const char *buf, size_t len,
                    size_t *data_off, size_t *data_len, int *done);

/* ---- uwsgi packets (uwsgi.c) ------------------------------------------ */
/* Header: uint8 modifier1 | uint16le datasize | uint8 modifier2; then datasize bytes
 * of {uint16le klen, key, uint16le vlen, value}; the body follows (not counted). */
#define PF_UWSGI_HEAD 4
/* modifier2 values with which pyfront's front marks a packet to pyfront's own app server
 * (modifier1 0 or 30): "answer framed (Content-Length or chunked, plus Connection:
 * keep-alive) and keep the connection". A real uWSGI dispatches on modifier1 only and its
 * WSGI plugin never reads modifier2, so a marked packet to it is served as usual and the
 * response ends with a close (docs/proxy.md). KEEP_HEAD: the front treats the response as
 * having no body (HEAD), so the app sends none. */
#define PF_UWSGI_KEEP      0x4b    /* 'K' */
#define PF_UWSGI_KEEP_HEAD 0x48    /* 'H' */
#define PF_E_UWSGI_TOO_BIG   -601  /* datasize > caller's max (uWSGI buffer-size), or output too small */
#define PF_E_UWSGI_HTTP      -602  /* header bytes spell an HTTP method: HTTP sent to a uwsgi socket */
#define PF_E_UWSGI_MODIFIER  -603  /* modifier1 is neither 0 (WSGI) nor 30 (WSGI, strip SCRIPT_NAME) */
#define PF_E_UWSGI_VAR       -604  /* a key/value length runs past the end of the vars block */
#define PF_E_UWSGI_TOO_MANY  -605  /* more vars than the caller's span array holds */

/* One var: offsets are into the caller's buffer (zero copy). */
typedef struct { uint32_t key_off, key_len, val_off, val_len; } pf_uwsgi_var;

typedef struct {
    uint8_t modifier1, modifier2;
    uint16_t datasize;   /* bytes in the vars block */
    uint32_t nvars;
    uint32_t flat_len;   /* bytes written to `flat` ("k\0v\0k\0v", no trailing NUL) */
    int flat_nul;        /* 1: a key or value contains NUL, so `flat` is ambiguous: use spans */
    int flat_dup;        /* 1: a key occurs twice (nginx < 1.23 repeats request headers) */
} pf_uwsgi_packet;

/* >= 0: 4 + datasize (the body starts there); PF_NEED_MORE; or PF_E_UWSGI_*.
 * vars may be NULL (no spans wanted), flat may be NULL (no flat copy wanted);
 * flat_cap >= datasize always suffices. */
int pf_uwsgi_parse(const char *buf, size_t len, uint32_t max_datasize, pf_uwsgi_packet *pkt,
                   pf_uwsgi_var *vars, uint32_t max_vars, char *flat, size_t flat_cap);

/* Header + vars (offsets into src) into out; returns bytes written or PF_E_UWSGI_TOO_BIG
 * (vars block over 65535 bytes, as nginx's "uwsgi request is too big", or cap too small). */
int pf_uwsgi_encode(uint8_t modifier1, uint8_t modifier2, const char *src, const pf_uwsgi_var *vars,
                    uint32_t nvars, char *out, size_t cap);

/* ---- event loop (loop.c) ---------------------------------------------- */
/* The loop lives inside pf_worker (worker.c); see that section for the entry points. */


/* ---- accept mutex (accept_mutex.c) ------------------------------------ */
/* Shared block set up by the master before fork (pyfront.worker.front.shm_size).
 * Word 0 is the accept mutex: 0 = free, else the owner's pid (as nginx's ngx_shmtx),
 * so a lock whose owner died can be freed by anyone who sees that pid is gone. */
size_t pf_shm_size(int nworkers);
int pf_shmtx_trylock(void *shm, int pid);          /* 1 = acquired */
void pf_shmtx_unlock(void *shm, int pid);
int pf_shmtx_force_unlock(void *shm, int pid);     /* master: a reaped worker's lock; 1 if it held it */
int pf_shmtx_owner(void *shm);
/* per-worker counters in the shared block (slot = worker index) */
typedef struct {
    uint64_t heartbeat_ms;      /* CLOCK_MONOTONIC ms of the last loop turn */
    uint64_t accepted;
    uint64_t requests;
    uint32_t active;            /* open client connections */
    uint32_t idle;              /* of which waiting in keep-alive */
    uint32_t pid;
    uint32_t generation;
    uint32_t reading;           /* reading a request head (stub_status "Reading") */
    uint32_t writing;           /* request read, response being produced/sent ("Writing") */
} pf_shm_slot;
int pf_shm_read_slot(void *shm, int index, pf_shm_slot *out);


/* ---- router / route table (router.c) ---------------------------------- */
/* The route-table blob (docs/route-table.md, built by pyfront.config.compile) is
 * validated and copied by pf_router_load; the router is immutable afterwards. */
#define PF_RT_MAGIC   0x54524650        /* "PFRT" little-endian */
#define PF_RT_VERSION 1
typedef struct pf_router pf_router;
pf_router *pf_router_load(const void *blob, size_t len, char *err, size_t errlen);
void pf_router_free(pf_router *r);
int pf_router_addr_index(const pf_router *r, const char *addr, size_t len);   /* -1 if unknown */
/* server index for (listen address, Host value as sent: may carry :port / trailing dot) */
int pf_router_find_server(const pf_router *r, int addr, const char *host, size_t hlen);
/* location id (as compiled) for a normalised URI in that server; -1 = none (server level) */
int pf_router_find_location(const pf_router *r, int server, const char *uri, size_t len);

/* ---- URI path normalisation (path.c) ----------------------------------- */
/* Decode %XX, merge slashes, resolve . and .. ; out gets a NUL-terminated path that
 * starts with '/'. Returns its length, or PF_E_BAD_REQUEST for a bad escape, a NUL,
 * a path not starting with '/', or a '..' above the root. out may not alias in. */
int pf_path_normalize(const char *in, size_t len, char *out, size_t cap);
/* base + rest for alias/root mapping; refuses (PF_E_BAD_REQUEST) a join whose first
 * segment becomes '..' (the `location /static { alias /dir/; }` leak). */
int pf_path_join(const char *base, size_t blen, const char *rest, size_t rlen, char *out, size_t cap);


/* ---- static files (static.c) ------------------------------------------ */

/* ---- front worker (worker.c, conn.c) ---------------------------------- */
typedef struct pf_worker pf_worker;
typedef struct {
    int index;                  /* worker index (shm slot) */
    int max_connections;        /* worker_connections */
    int accept_mutex;           /* 0 = off (EPOLLEXCLUSIVE), 1 = on (shared lock) */
    int accept_mutex_delay_ms;
    int multi_accept;
    int wakeup_fd;              /* signal.set_wakeup_fd pipe, -1 = none */
    int error_log_fd;           /* -1 = stderr */
    int error_log_level;        /* PF_LOG_* */
    void *shm;                  /* shared block or NULL */
    size_t shm_len;
    int nworkers;
    int generation;             /* reload generation, published in the shm slot */
} pf_worker_conf;
#define PF_LOG_EMERG 0
#define PF_LOG_ALERT 1
#define PF_LOG_CRIT 2
#define PF_LOG_ERR 3
#define PF_LOG_WARN 4
#define PF_LOG_NOTICE 5
#define PF_LOG_INFO 6
#define PF_LOG_DEBUG 7
/* pf_worker_run results */
#define PF_RUN_WAKEUP 1          /* the wake-up fd is readable: Python handles signals */
#define PF_RUN_DRAINED 2         /* drain finished: no connections left */
#define PF_RUN_TICK 3            /* max_ms elapsed */
pf_worker *pf_worker_new(const pf_worker_conf *conf, const void *blob, size_t blob_len,
                         char *err, size_t errlen);
int pf_worker_add_listener(pf_worker *w, int fd, const char *addr, int reuseport);
int pf_worker_run(pf_worker *w, int max_ms);
void pf_worker_drain(pf_worker *w, int deadline_ms);   /* QUIT: stop accepting, close after next response */
int pf_worker_reopen_logs(pf_worker *w);
void pf_worker_free(pf_worker *w);                    /* flushes logs, closes every connection */
typedef struct {
    uint64_t accepted, requests;
    uint32_t active, idle, buffers_total, buffers_free;
} pf_worker_stats;
void pf_worker_get_stats(pf_worker *w, pf_worker_stats *out);
size_t pf_conn_size(void);                            /* sizeof the per-connection struct */


/* ---- access log (access_log.c) ---------------------------------------- */

/* ---- proxy (proxy.c, upstream.c, proxy_encode.c, body.c, stub_status.c) ---- */
/* Balancer (upstream.c): nginx's peer selection, usable on its own (tests) and per worker.
 * Peers 0..nprimary-1 are primaries, the rest backups. State is per process (as nginx
 * without a `zone`). */
#define PF_LB_ROUND_ROBIN 0      /* smooth weighted round-robin (ngx_http_upstream_round_robin.c) */
#define PF_LB_LEAST_CONN  1
#define PF_LB_IP_HASH     2
#define PF_LB_HASH        3      /* `hash KEY [consistent]` */
#define PF_LB_RANDOM      4
#define PF_LB_NO_LIVE    -1      /* nginx: "no live upstreams" */
#define PF_LB_MAX_PEERS 256
typedef struct {
    const char *name; uint32_t name_len;   /* "host:port" / "unix:/x": consistent hash points */
    uint32_t weight, max_fails, fail_timeout_ms, max_conns;
    int backup, down;
} pf_peer_conf;
typedef struct {                 /* one request's tries; init with pf_lb_ctx_init */
    uint32_t hash, rehash, tries, ntried, backup;
    uint64_t tried[4];
} pf_lb_ctx;
typedef struct pf_balancer pf_balancer;
pf_balancer *pf_balancer_new(int method, int consistent, const pf_peer_conf *peers, uint32_t n);
void pf_balancer_free(pf_balancer *b);
void pf_lb_ctx_init(pf_lb_ctx *ctx);
/* key: ip_hash = address bytes (4 or 16), hash = the expanded key; ignored otherwise.
 * Returns the peer index (its `conns` is counted) or PF_LB_NO_LIVE. */
int pf_balancer_get(pf_balancer *b, pf_lb_ctx *ctx, int64_t now_ms, const char *key, size_t klen);
/* The request on `peer` ended; failed = 1 counts toward max_fails. Returns 1 when this
 * failure just disabled the peer for fail_timeout (the caller logs nginx's warning). */
int pf_balancer_done(pf_balancer *b, int peer, int failed, int64_t now_ms);
uint32_t pf_balancer_tries(const pf_balancer *b);   /* peers a request may try (nginx's tries) */

/* Encoders (proxy_encode.c), pure: caller-owned output, no allocation. */
typedef struct { const char *name; uint32_t name_len; const char *value; uint32_t value_len; } pf_kv;
/* The uwsgi request packet (header + vars) exactly as nginx's uwsgi module builds it:
 * params in order (the caller already dropped if_not_empty ones that expanded empty), then
 * host (when host != NULL and no param is named HTTP_HOST: nginx >= 1.29.5's default
 * HTTP_HOST = $host$is_request_port$request_port), then when pass_headers, one HTTP_<NAME>
 * per distinct request header name (duplicates joined with ", ", "; " for Cookie), except
 * names an HTTP_* param already covers and names with '_' (underscores_in_headers off).
 * Returns bytes written, or PF_E_UWSGI_TOO_BIG (vars over 65535: "uwsgi request is too big"). */
int pf_uwsgi_request(uint8_t modifier1, uint8_t modifier2, const pf_kv *params, uint32_t nparams,
                     const char *host, uint32_t host_len, const char *head, const pf_http_request *req,
                     int pass_headers, char *out, size_t cap);
/* An HTTP/1.x request head for proxy_pass: line (e.g. "GET /x HTTP/1.0"), then the
 * proxy_set_header fields (value "" = not sent), Content-Length when body_len >= 0, then the
 * client's fields except those named by `set` and the hop-by-hop ones nginx replaces
 * (Connection, Keep-Alive, TE, Expect, Upgrade, Content-Length, Transfer-Encoding, Host).
 * Returns bytes written or PF_E_HEADER_TOO_LARGE. */
int pf_http_upstream_request(const char *line, uint32_t line_len, const pf_kv *set, uint32_t nset,
                             int64_t body_len, const char *head, const pf_http_request *req,
                             int pass_headers, char *out, size_t cap);
/* stub_status body, nginx's exact text; bytes written. */
int pf_stub_status_body(uint64_t active, uint64_t accepts, uint64_t handled, uint64_t requests,
                        uint64_t reading, uint64_t writing, uint64_t waiting, char *out, size_t cap);

/* ---- app server I/O (app_io.c) ---------------------------------------- */
/* Blocking-style I/O on non-blocking fds (try, then poll on EAGAIN); errno in *err. */
#define PF_APP_STOP    -2   /* pf_app_accept: the wake fd is readable (worker is stopping) */
#define PF_APP_AGAIN   -3   /* pf_app_accept: nothing accepted this time (race, EINTR, timeout) */
#define PF_APP_CLOSED  -4   /* peer closed before a complete request head */
#define PF_APP_TIMEOUT -5   /* poll() timed out */
#define PF_APP_IOERR   -6   /* a syscall failed: errno in *err */

#define PF_APP_MAX_LISTEN 16
/* Wait on n listening fds and wakefd; >= 0: accepted fd (non-blocking, close-on-exec),
 * *which = index of its listener; or PF_APP_STOP/AGAIN/IOERR. */
int pf_app_accept(const int *lfds, int n, int wakefd, int timeout_ms, int *which, int *err);
/* > 0 bytes read, 0 = EOF, PF_APP_TIMEOUT/IOERR. */
int pf_app_recv(int fd, char *buf, size_t len, int timeout_ms, int *err);
/* Read until a whole uwsgi head is in buf. *nread: bytes already in buf on entry, total
 * on return (may include body bytes past the head). Returns pf_uwsgi_parse's result,
 * PF_APP_CLOSED, PF_APP_TIMEOUT or PF_APP_IOERR. */
int pf_app_read_uwsgi(int fd, char *buf, size_t cap, uint32_t max_datasize, int timeout_ms,
                      pf_uwsgi_packet *pkt, char *flat, size_t flat_cap, size_t *nread, int *err);
#define PF_APP_SHAPES 32
#define PF_APP_VALS_MAX 131072
/* Key sequences of flat environs, per worker thread (app_shape.c): keys of shape i are
 * "k\0k\0...k\0" at store + off[i], len[i] bytes. */
#define PF_APP_FUSE_KEYS 64    /* keys a shape may have for pf_app_uwsgi_fused (nginx's uwsgi_params: 15 + headers) */
#define PF_APP_NOFUSE 0xffff   /* fuse_n[i]: shape i is not walked in one pass (too many keys, odd names) */
typedef struct {
    int shape, nshapes;
    uint32_t gen, used;
    uint64_t hash[PF_APP_SHAPES];
    uint32_t off[PF_APP_SHAPES];
    uint32_t len[PF_APP_SHAPES];
    char store[16384];
    /* Set when shape i is added, for pf_app_uwsgi_fused: its key count (or PF_APP_NOFUSE),
     * each key's length, and the index of the keys the walk looks at (-1 = absent; private
     * to app_shape.c: PF_APP_UV_* first, then HTTPS, REQUEST_SCHEME, CONTENT_LENGTH). */
    uint16_t fuse_n[PF_APP_SHAPES];
    uint16_t fuse_klen[PF_APP_SHAPES][PF_APP_FUSE_KEYS];
    int8_t fuse_at[PF_APP_SHAPES][8];
    /* pf_app_shape_snap / pf_app_shape_vary: the values of shape i's first request (the
     * snapshot: snap_n values at snap + snap_off[i], value j from snap_at[i][j] to
     * snap_at[i][j + 1] - 1) and vary[i], bit j = value j has differed from it since
     * (values 64 and later always count as varying). snap_n[i] = PF_APP_UNTRACKED: no
     * snapshot, every value varies (vary[i] = all ones). */
    uint64_t vary[PF_APP_SHAPES];
    uint16_t snap_n[PF_APP_SHAPES];
    uint32_t snap_off[PF_APP_SHAPES];
    uint16_t snap_at[PF_APP_SHAPES][PF_APP_FUSE_KEYS + 1];
    uint32_t snap_used;
    char snap[16384];
} pf_app_shapes;
#define PF_APP_UNTRACKED 0xffff
/* Shape t->shape was just added and vals (vl bytes, "v\0v") are its first request's values:
 * keep them as its snapshot, vary = 0 (untracked when they do not fit: > 64 values, or the
 * snapshot store is full until the table is emptied). */
void pf_app_shape_snap(pf_app_shapes *t, const char *vals, size_t vl);
/* The values of a request of shape t->shape (vals, vl bytes) that the environ template
 * built from its snapshot does not already hold: the varying ones (vary bit set) and any
 * that differs from the snapshot (its bit is then added: *grew = 1), in order, "v\0v" into
 * out (cap >= vl); their length. An untracked shape copies every value. */
int pf_app_shape_vary(pf_app_shapes *t, const char *vals, size_t vl, char *out, size_t cap, int *grew);
/* Values of flat (len bytes, "k\0v\0k\0v") into vals ("v\0v", length returned; the second
 * half of vals is scratch) and the key sequence's index into t->shape; *is_new = 1 when it
 * was added (index 0: the table was emptied first). -1 when it does not fit. */
int pf_app_shape_split(pf_app_shapes *t, const char *flat, size_t len, char *vals, size_t vcap, int *is_new);
/* Where pf_app_uwsgi_fused found the vars the scoreboard, the request log and the status
 * line need: offset of the value in vals (-1 = absent) and its length. */
#define PF_APP_UV_METHOD 0     /* REQUEST_METHOD */
#define PF_APP_UV_URI    1     /* REQUEST_URI */
#define PF_APP_UV_PATH   2     /* PATH_INFO */
#define PF_APP_UV_ADDR   3     /* REMOTE_ADDR */
#define PF_APP_UV_PROTO  4     /* SERVER_PROTOCOL */
typedef struct { int32_t off[5]; uint32_t len[5]; } pf_app_uvars;
/* nginx's common packet in one pass: buf[0..len) holds a complete uwsgi packet, modifier1 0,
 * not marked (modifier2), datasize <= max_datasize, whose keys (besides at most one
 * HTTP_CONTENT_TYPE and one HTTP_CONTENT_LENGTH, which are dropped) are exactly the key
 * sequence of t->shape, no NUL in any value, no https, no body, flat copy <= flat_cap. Then
 * the values go to vals as pf_app_shape_split puts them, *pkt is set as pf_uwsgi_parse +
 * pf_app_uwsgi_tidy set it, *uv as above, and the values' length is returned. Anything
 * else: -1, *pkt untouched, vals and *uv clobbered: take the general way (parse, tidy,
 * split), which gives the same result for every packet this one accepts. */
int pf_app_uwsgi_fused(const pf_app_shapes *t, const char *buf, size_t len, uint32_t max_datasize, size_t flat_cap,
                       pf_uwsgi_packet *pkt, char *vals, size_t vcap, pf_app_uvars *uv);
/* A worker thread's scoreboard record and its slot's counters (scoreboard.py HEAD/CORE in
 * the shared mmap), kept by C so the per-request Python does no bookkeeping (app_hot.c).
 * NULL pointers: nothing is written. */
typedef struct {
    char *core;            /* double start (CLOCK_MONOTONIC s, 0 = idle), then char line[120] */
    uint64_t *requests;    /* the worker's request counter (atomic add: every thread counts) */
    int32_t *retire;       /* set to 1 (RETIRE_MAX_REQUESTS) when requests reach retire_at, if 0 */
    uint64_t retire_at;    /* 0 = never */
} pf_app_board;
#define PF_APP_BOARD_LINE 120
/* A request starts: count it, check max-requests, and when b->core is set write the line
 * "METHOD URI" (cut at 120 bytes, zero-padded) and then the start time. */
void pf_app_board_begin(pf_app_board *b, const char *method, size_t mlen, const char *uri, size_t ulen);
/* The thread is idle again: start = 0 (harakiri stops watching it). */
void pf_app_board_end(pf_app_board *b);
/* uWSGI's request log line for a request answered by the fast path (app_hot.c): the
 * step functions fill the request's part, the answer adds status, sizes and time. */
typedef struct {
    int fd;                /* in: where lines go (2), -1 = no request log */
    int pid, core;         /* in */
    int64_t t0_ns;         /* out: CLOCK_MONOTONIC when the request was taken */
    const char *method, *uri, *addr, *proto;   /* out: NULL = absent */
    uint32_t mlen, ulen, alen, plen;
    uint32_t nvars, datasize;
    int64_t date_sec;      /* private: the timestamp, formatted once a second */
    char date[40];
} pf_app_log;
/* Write "[pid: P|app: 0|req: N/N] ADDR () {V vars in D bytes} [DATE] METHOD URI =>
 * generated B bytes in MS msecs (PROTO SSS) H headers in HB bytes (1 switches on core C)"
 * when lg->fd >= 0. st: the status ("NNN Reason..."). */
void pf_app_log_request(pf_app_log *lg, const pf_app_board *b, const char *st, size_t stlen, uint32_t nheaders,
                        size_t nbytes, size_t head_bytes);
/* A uwsgi-socket worker thread's state for pf_app_uwsgi_next (set the inputs once, fd = -1). */
typedef struct {
    const int *lfds;
    int nlisten, wakefd, timeout_ms;
    uint32_t max_datasize;
    char *buf;                 /* >= 4 + buffer-size bytes */
    size_t cap;
    char *flat;
    size_t flat_cap;
    int fd;                    /* out: the connection (closed by the next call), -1 = none */
    int which;                 /* out: its listener */
    size_t nread;              /* out: bytes in buf (head + maybe body) */
    int err;                   /* out: errno of a failed syscall */
    pf_uwsgi_packet pkt;       /* out; flat has HTTP_CONTENT_LENGTH/_TYPE removed */
    uint32_t head_len;         /* out: 4 + datasize (body bytes follow in buf up to nread) */
    int flags;                 /* out: PF_UWSGI_* */
    /* Without PF_UWSGI_SLOW the result is the length of vals ("v\0v\0...") and sh.shape
     * the index of the key sequence (app_shape.c). */
    pf_app_shapes sh;
    char vals[PF_APP_VALS_MAX];
    pf_app_board board;        /* in: the thread's scoreboard record (begun/ended by next) */
    int nofast;                /* in: pf_app_uwsgi_step never gives the fast result (request log, static-map, add-header) */
    int n;                     /* out of pf_app_uwsgi_step: see there */
    const char *proto;         /* out: SERVER_PROTOCOL's value (in flat, or in vals when fused), for the status line */
    uint32_t proto_len;
    int stop;                  /* in, set by another thread: pf_app_uwsgi_step returns PF_APP_STOP
                                  after answering (graceful stop) */
    pf_app_log log;            /* the fast path's request log */
    int nofuse;                /* in: 1 = never pf_app_uwsgi_fused (tests compare both ways) */
    int fused;                 /* out: 1 = this packet took pf_app_uwsgi_fused: u->flat was not
                                  written, proto and the log's vars point into vals */
} pf_app_uconn;
#define PF_UWSGI_HTTPS 1       /* REQUEST_SCHEME=https or HTTPS=on/1: wsgi.url_scheme https */
#define PF_UWSGI_BODY  2       /* CONTENT_LENGTH is set and not 0 */
#define PF_UWSGI_SLOW  4       /* NUL in the vars, repeated keys or modifier1 30: general path */
#define PF_UWSGI_NEWSHAPE 8    /* shape was added to the table (index 0: the table was emptied) */
#define PF_UWSGI_PERSIST 16    /* marked packet (modifier2 PF_UWSGI_KEEP/_HEAD): frame the answer, keep the connection */
#define PF_UWSGI_NOBODY  32    /* PF_UWSGI_KEEP_HEAD: the front expects no body (HEAD) */
/* Drop HTTP_CONTENT_LENGTH / HTTP_CONTENT_TYPE from flat vars in place, add PF_UWSGI_HTTPS /
 * PF_UWSGI_BODY to *flags (as pf_app_uwsgi_next does). */
void pf_app_uwsgi_tidy(char *flat, uint32_t *flat_len, int *flags);
/* Close u->fd if >= 0 (and end the scoreboard record); accept (as pf_app_accept:
 * STOP/AGAIN/IOERR with u->fd = -1); read + parse the packet (errors as pf_app_read_uwsgi,
 * u->fd >= 0: the caller answers or logs). Success: with PF_UWSGI_SLOW the flat vars'
 * length (u->pkt.flat_len), else the length of u->vals; u->head_len and u->flags set; the
 * request is counted and its scoreboard record begun; u->proto = SERVER_PROTOCOL's value;
 * PF_UWSGI_PERSIST for a packet pyfront's front marked (the caller hands the connection to
 * app_loop.c). u->flat holds the vars (tidied unless PF_UWSGI_SLOW) whenever u->flags is
 * not 0; when it is 0 the packet may have taken pf_app_uwsgi_fused (u->fused = 1), which
 * leaves u->flat alone. */
int pf_app_uwsgi_next(pf_app_uconn *u);
/* pf_app_uwsgi_next after its accept: read + parse the packet on u->fd (set by the caller). */
int pf_app_uwsgi_take(pf_app_uconn *u);
#define PF_APP_SLOWREQ  -20   /* a request for the general path: u->n / h->n hold the usual result */
#define PF_APP_SENDFAIL -21   /* writing the response failed: u->n / h->n = PF_APP_TIMEOUT/IOERR, err set */
#define PF_APP_NEWVARY  -22   /* the fast case, but a value left the shape's snapshot (pf_app_shape_vary):
                                 the varying values' length in u->n, in u->vals + PF_APP_VALS_MAX / 2 */
/* The uwsgi worker thread's one call per request. st != NULL: first answer the current
 * request with pf_app_send_simple (status line SERVER_PROTOCOL or HTTP/1.0 + " " + st,
 * st = "NNN Reason\0Name\0Value..."); PF_APP_BADHEAD/BIGHEAD: nothing was sent, nothing
 * else done (answer it the general way, then call with st = NULL); PF_APP_SENDFAIL: log,
 * then call with st = NULL. Then pf_app_uwsgi_next, and
 *   >= 0: the fast case (flags 0 or PF_UWSGI_HTTPS, !nofast):
 *         (length << 10) | (https << 9) | (listener << 5) | shape, the values the shape's
 *         snapshot does not hold (pf_app_shape_vary) at u->vals + PF_APP_VALS_MAX / 2
 *         (every value stays in u->vals);
 *   PF_APP_NEWVARY: the same, after the shape's vary mask grew (length in u->n);
 *   PF_APP_SLOWREQ: u->n = pf_app_uwsgi_next's result (flags set);
 *   PF_APP_STOP when u->stop is set (the connection is closed);
 *   otherwise pf_app_uwsgi_next's negative result. */
int pf_app_uwsgi_step(pf_app_uconn *u, const char *st, size_t stlen, uint32_t nheaders,
                      const char *body, size_t blen);
/* Answer as pf_app_uwsgi_step does, without taking the next request: 0 or its errors. */
int pf_app_uwsgi_respond(pf_app_uconn *u, const char *st, size_t stlen, uint32_t nheaders,
                         const char *body, size_t blen);
/* Make fd blocking with SO_RCVTIMEO/SO_SNDTIMEO (keep-alive HTTP); 0 or PF_APP_IOERR. */
int pf_app_blocking(int fd, int rcv_timeout_ms, int snd_timeout_ms, int *err);
/* Send a then b completely (writev); 0 or PF_APP_TIMEOUT/IOERR. */
int pf_app_send2(int fd, const char *a, size_t alen, const char *b, size_t blen, int timeout_ms, int *err);
/* The common WSGI response (app_head.c): sh = "PROTO NNN Reason\0Name\0Value\0..." with
 * nheaders pairs; builds the head (HTTP mode: Content-Length if missing, Connection) and
 * writes head + body in one writev. Returns (head bytes << 1) | keep-alive, or
 * PF_APP_BADHEAD (bad status, CR/LF/NUL in a header: nothing sent), PF_APP_BIGHEAD (head
 * over 16 KiB: nothing sent, use the general path), PF_APP_TIMEOUT/IOERR. */
#define PF_APP_BADHEAD -9
#define PF_APP_BIGHEAD -10
#define PF_SEND_KEEP   1     /* the request allows keep-alive (= info[4] bit 1) */
#define PF_SEND_HTTP11 2     /* HTTP/1.1 client (= info[4] bit 2) */
#define PF_SEND_HEAD   4     /* HEAD request: no body (= info[4] bit 4) */
#define PF_SEND_HTTP   32    /* http-socket: add framing headers */
#define PF_SEND_UKEEP  64    /* with PF_SEND_HTTP: a persistent uwsgi connection: "Connection: keep-alive"
                                acknowledges it to the front; no body for 1xx/204/304 */
int pf_app_send_simple(int fd, int flags, const char *sh, size_t shlen, uint32_t nheaders,
                       const char *body, size_t blen, int timeout_ms, int *err);
/* sendfile() count bytes (-1: to EOF) from offset; bytes sent or PF_APP_TIMEOUT/IOERR. */
int64_t pf_app_sendfile(int out_fd, int in_fd, int64_t offset, int64_t count, int timeout_ms, int *err);

/* CGI vars of an HTTP request in uwsgi.c's flat "K\0V\0..." form (http-socket mode). */
typedef struct {
    uint32_t flat_len;
    uint32_t npairs;
    int dup;        /* a header name repeats: the caller joins the values */
    int dropped;    /* headers dropped because their name contains '_' */
} pf_app_env;
/* Bytes written, or PF_E_HEADER_TOO_LARGE when cap is too small. */
int pf_app_http_environ(const char *buf, const pf_http_request *req, char *out, size_t cap, pf_app_env *env);
/* Peer address of a connected socket as "addr\0port" (unix: "\0"); bytes written or PF_APP_IOERR. */
int pf_app_peer(int fd, char *out, size_t cap, int *err);

/* HTTP connection multiplexer for http-socket workers (app_loop.c). */
#define PF_APP_BATCH 64
#define PF_APP_READY_HTTP  1    /* ctx holds a parsed request head (status > 0) or a PF_E_* status */
#define PF_APP_READY_UWSGI 2    /* ctx->fd is a new uwsgi-protocol connection: serve it, close it */
typedef struct pf_app_loop pf_app_loop;
typedef struct {
    int fd;                /* the connection */
    int listener;          /* index of its listener */
    int kind;              /* PF_APP_READY_* */
    int status;            /* > 0: head length; PF_E_*: a bad request (answer it, then done(keep=0)) */
    const char *buf;       /* the connection's bytes, valid until pf_app_loop_done */
    uint32_t have;         /* bytes in buf (head, maybe body and pipelined requests) */
    const char *peer;      /* "addr\0port" of the client */
    uint32_t peer_len;
    pf_http_request req;
    int npending, ipending;            /* private to app_loop.c */
    uint64_t pending[PF_APP_BATCH];
    pf_app_shapes sh;                  /* pf_app_loop_step: key sequences of this thread */
    char vals[PF_APP_VALS_MAX];        /* pf_app_loop_step: the request's values */
    pf_uwsgi_packet pkt;               /* pf_app_loop_step, uwsgi: the parsed packet */
} pf_app_ready;
/* lfds/is_http: n listeners; threads decides level-triggered (1) vs one-shot (>1); idle_ms =
 * http-timeout. NULL on failure (errno in *err). */
pf_app_loop *pf_app_loop_new(const int *lfds, const int *is_http, int n, int wakefd, uint32_t bufsize,
                             int threads, int idle_ms, int *err);
/* Closes every connection it still holds. */
void pf_app_loop_free(pf_app_loop *l);
/* 1: ctx is ready (see kind); PF_APP_STOP (wake fd); PF_APP_AGAIN (timeout/EINTR); PF_APP_IOERR. */
int pf_app_loop_next(pf_app_loop *l, pf_app_ready *ctx, int timeout_ms, int *err);
/* Give an HTTP connection back: `consumed` bytes of buf were used; keep = 0 closes it. */
void pf_app_loop_done(pf_app_loop *l, pf_app_ready *ctx, uint32_t consumed, int keep);
/* Flat environ of ctx's request incl. REMOTE_ADDR/REMOTE_PORT; info[8] = fd, head length,
 * body kind (PF_BODY_*), content length, flags (1 keep-alive, 2 HTTP/1.1, 4 HEAD, 8 Expect:
 * 100-continue, 16 repeated header names), listener, bytes buffered, flat length.
 * Returns the flat length, ctx->status when that is an error, or PF_E_HEADER_TOO_LARGE. */
int pf_app_ready_environ(const pf_app_ready *ctx, char *out, size_t cap, int64_t *info);
/* Replace the connection's buffered bytes (bytes read past a chunked body belong to the next
 * request); then call done(consumed = 0). 0, or -1 when it does not fit. */
int pf_app_loop_set_rest(pf_app_loop *l, pf_app_ready *ctx, const char *rest, uint32_t len);
/* done(consumed, keep) for the previous HTTP request in ctx (skipped when ctx->fd < 0 or it
 * was a uwsgi connection), then next(timeout -1), then the environ: >= 0 = an HTTP request
 * whose flat environ and info[0..7] are written as by pf_app_ready_environ; then, unless
 * info[4] has 16 (repeated names: the flat length is returned), the values are split into
 * ctx->vals (length returned), info[8] = shape index in ctx->sh, info[9] = 1 if new (info
 * has 10 entries);
 * PF_APP_UWSGI = ctx->fd is a new uwsgi connection (the caller closes it); PF_APP_BADREQ =
 * a bad request head (ctx->status, or an environ over cap: answer it, then step(keep=0));
 * PF_APP_STOP / PF_APP_AGAIN / PF_APP_IOERR as pf_app_loop_next. Set ctx->fd = -1 before
 * the first call. */
#define PF_APP_UWSGI   -7
#define PF_APP_BADREQ  -8
#define PF_APP_UWSGI_BAD -11
/* uwsgi connections are table entries too (docs/proxy.md): step() returns PF_APP_UWSGI when a
 * packet head is complete: its flat vars were parsed into out and tidied
 * (pf_app_uwsgi_tidy), info[10] = fd, head length (4 + datasize), PF_UWSGI_* flags,
 * listener, bytes buffered (ctx->buf), nvars, datasize, n, shape, is_new: without
 * PF_UWSGI_SLOW n is the length of ctx->vals and shape/is_new as for HTTP, with it n is the
 * flat length in out. PF_APP_UWSGI_BAD: the packet is refused (ctx->status = PF_E_UWSGI_*,
 * ctx->pkt as far as parsed): log it, step(keep = 0). Give a uwsgi request back with
 * step(consumed, keep) like an HTTP one: keep = 1 only for PF_UWSGI_PERSIST. */
/* buffer-size of the app: the largest uwsgi vars block accepted (default: bufsize - 4), and
 * socket-timeout: a packet begun must be complete within it (default idle_ms), else it is
 * reported as PF_APP_UWSGI_BAD with ctx->status PF_APP_TIMEOUT (PF_APP_CLOSED: the peer
 * closed in the middle of one; ctx->have = bytes received). */
void pf_app_loop_uwsgi_limit(pf_app_loop *l, uint32_t max_datasize, int packet_timeout_ms);
/* A uwsgi-only worker thread serves nginx's one-connection-per-request packets with the
 * blocking pf_app_uwsgi_next (cheaper: accept first, no table); the first marked packet
 * (PF_UWSGI_PERSIST in u->flags) hands its connection and the bytes read (len) to the loop
 * and the thread continues with pf_app_loop_step on a fresh ctx. 0, or -1 (fd not taken). */
int pf_app_loop_adopt(pf_app_loop *l, pf_app_ready *ctx, int fd, int listener, const char *bytes, uint32_t len);
int pf_app_loop_step(pf_app_loop *l, pf_app_ready *ctx, uint32_t consumed, int keep,
                     char *out, size_t cap, int64_t *info, int *err);
/* Graceful stop asked (a signal handler, any thread): responses stop offering keep-alive. */
void pf_app_loop_graceful(pf_app_loop *l);
/* 1 while connections may be kept (no graceful stop asked, not draining). */
int pf_app_loop_keeps(const pf_app_loop *l);

/* The http-socket worker thread's per-request call (app_hot.c): pf_app_loop_step with its
 * arguments kept here, the request counted and its scoreboard record begun / ended. */
typedef struct {
    pf_app_loop *loop;     /* in */
    pf_app_ready *ctx;     /* in (ctx->fd = -1 before the first call) */
    char *flat;            /* in: flat environ buffer of flat_cap bytes */
    size_t flat_cap;
    int timeout_ms;        /* in: socket-timeout for the response */
    int nofast;            /* in: 1 = never the fast result (request log, static-map, add-header) */
    int back;              /* in: for a call without st, the previous request's bytes of buffer
                              used, keep-alive (>= 0), or -1 = close it; reset to -1 by each call */
    int n;                 /* out with PF_APP_SLOWREQ / PF_APP_SENDFAIL */
    int err;               /* out: errno of a failed syscall */
    int sflags;            /* out: PF_SEND_* of the request */
    uint32_t head_len;     /* out: the request head's length */
    int64_t info[10];      /* out: as pf_app_loop_step */
    pf_app_board board;    /* in */
    pf_app_log log;        /* the fast path's request log */
} pf_app_hot;
/* st != NULL: first answer the current request with pf_app_send_simple (status line
 * "HTTP/1.x " + st, framing from h->sflags, keep-alive only while pf_app_loop_keeps);
 * PF_APP_BADHEAD/BIGHEAD: nothing was sent, nothing else done (answer it the general way,
 * set h->back, call with st = NULL); PF_APP_SENDFAIL: log, call with st = NULL (the
 * connection is closed). st == NULL: h->back says what to do with the previous request.
 * Then pf_app_loop_step and
 *   >= 0: a request without body whose shape is known (not nofast): (vals length << 9) |
 *         (listener << 5) | shape, values in ctx->vals;
 *   PF_APP_SLOWREQ: any other HTTP request, h->n and h->info as pf_app_loop_step;
 *   otherwise pf_app_loop_step's negative results. */
int pf_app_hot_step(pf_app_hot *h, const char *st, size_t stlen, uint32_t nheaders, const char *body, size_t blen);

/* PF_CDEF_END */

#endif /* PF_H */
