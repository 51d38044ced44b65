/*
 * pf_int.h — declarations shared by the front worker's C files (not part of the cffi
 * contract: Python never sees these). One section per file.
 */
#ifndef PF_INT_H
#define PF_INT_H

#include <stdint.h>
#include <stddef.h>
#include <regex.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include "pf.h"

/* Always-on invariant check (Python's CFLAGS carry -DNDEBUG, which would silence
 * assert()): a broken state machine edge is a bug; the worker aborts with the location
 * and the master respawns it, instead of serving from a corrupt state. */
void pf_assert_fail(const char *what, const char *file, int line) __attribute__((noreturn));
#define PF_ASSERT(x) do { if (!(x)) pf_assert_fail(#x, __FILE__, __LINE__); } while (0)

#define PF_PATH_MAX 4096
#define PF_URI_MAX  8192    /* a request line may be 8k (large_client_header_buffers) */

/* ---- route table (router.c); format in docs/route-table.md -------------- */
typedef struct { uint32_t off, len; } rt_str;
typedef struct { uint32_t first, count; } rt_range;
#define RT_NONE 0xffffffffu

enum rt_section {
    RT_SEC_STR = 1, RT_SEC_IDX, RT_SEC_LIST, RT_SEC_ADDR, RT_SEC_SERVER, RT_SEC_NAME,
    RT_SEC_LOC, RT_SEC_CONF, RT_SEC_MIME, RT_SEC_TPL, RT_SEC_TPLOP, RT_SEC_LOGFILE,
    RT_SEC_ACCLOG, RT_SEC_ERRPAGE, RT_SEC_HEADER,
    RT_SEC_PXCONF, RT_SEC_UPSTREAM, RT_SEC_PEER, RT_SEC_PARAM,   /* proxy (docs/proxy.md) */
    RT_SEC_MAX
};
typedef struct { rt_str addr; uint32_t default_server; rt_range servers; } rt_addr;
typedef struct { rt_range names; rt_range locs; rt_range named; uint32_t conf; rt_str name0; } rt_server;
enum { RT_NAME_EXACT = 1, RT_NAME_WILD_HEAD, RT_NAME_WILD_TAIL, RT_NAME_REGEX };
typedef struct { uint32_t kind; rt_str name; uint32_t server; } rt_name;
enum { RT_LOC_PREFIX = 1, RT_LOC_NOREGEX, RT_LOC_EXACT, RT_LOC_REGEX, RT_LOC_REGEX_I, RT_LOC_NAMED };
typedef struct { uint32_t kind; rt_str pattern; rt_range children; uint32_t conf; } rt_loc;
typedef struct { uint32_t code; int32_t overwrite; rt_str uri; } rt_errpage;
typedef struct { rt_str name; uint32_t value_tpl; uint32_t always; } rt_header;
typedef struct { rt_str ext; rt_str type; } rt_mime;
typedef struct { rt_range ops; } rt_tpl;
typedef struct { uint32_t var; rt_str arg; } rt_tplop;
typedef struct { rt_str path; } rt_logfile;
typedef struct { uint32_t file; uint32_t tpl; uint32_t escape; } rt_acclog;   /* escape: 1 default, 2 json, 3 none */

enum {
    RT_F_SENDFILE = 1, RT_F_ETAG = 2, RT_F_GZIP = 4, RT_F_GZIP_STATIC = 8, RT_F_GZIP_VARY = 16,
    RT_F_SERVER_TOKENS = 32, RT_F_LOG_NOT_FOUND = 64, RT_F_TCP_NOPUSH = 128,
    RT_F_MSIE_PADDING = 256, RT_F_ABS_REDIRECT = 512, RT_F_PORT_IN_REDIRECT = 1024,
    RT_F_GZIP_TYPES_ANY = 2048, RT_F_TCP_NODELAY = 4096, RT_F_ADD_HEADER_INHERIT = 8192,
    RT_F_GZIP_DISABLE_MSIE6 = 16384, RT_F_SERVER_NAME_IN_REDIRECT = 32768, RT_F_UNDERSCORES = 65536,
    RT_F_GZIP_PROXIED_ANY = 131072, RT_F_GZIP_HTTP10 = 262144, RT_F_STUB_STATUS = 524288,
};
enum { RT_EXP_OFF = 0, RT_EXP_EPOCH, RT_EXP_MAX, RT_EXP_ACCESS, RT_EXP_MODIFIED };

typedef struct {
    rt_str root; uint32_t alias; rt_str loc_prefix;
    rt_range index;                 /* LIST */
    rt_range try_files;             /* IDX -> TPL */
    int32_t return_code; uint32_t return_tpl;
    rt_range error_pages;           /* ERRPAGE */
    rt_range add_headers;           /* HEADER */
    uint32_t expires_mode; int32_t expires_s;
    rt_str charset; rt_range charset_types;   /* LIST */
    uint32_t flags;
    uint32_t gzip_comp_level, gzip_min_length; rt_range gzip_types;   /* LIST */
    rt_range mime; rt_str default_type;       /* MIME, sorted by ext */
    uint32_t keepalive_timeout_ms, keepalive_requests, send_timeout_ms, client_header_timeout_ms;
    uint32_t client_header_buffer_size, large_header_buffer_size, large_header_buffers;
    rt_range access_logs;           /* ACCLOG; count 0 = off */
    uint32_t open_file_cache_valid_ms;
    uint32_t if_modified_since;     /* 0 off, 1 exact, 2 before */
    uint32_t lingering_timeout_ms;
    uint32_t keepalive_header_s;    /* 0: no Keep-Alive header */
    uint32_t max_body_lo, max_body_hi;   /* client_max_body_size, 0 = unlimited */
    uint32_t error_log_file, error_log_level;   /* RT_NONE: the worker's error log */
    uint32_t client_body_timeout_ms;
} rt_conf;

struct pf_router {
    char *blob; size_t len;
    const char *str; uint32_t nstr;
    const uint32_t *idx; uint32_t nidx;
    const rt_str *list; uint32_t nlist;
    const rt_addr *addr; uint32_t naddr;
    const rt_server *server; uint32_t nserver;
    const rt_name *name; uint32_t nname;
    const rt_loc *loc; uint32_t nloc;
    const rt_conf *conf; uint32_t nconf;
    const rt_mime *mime; uint32_t nmime;
    const rt_tpl *tpl; uint32_t ntpl;
    const rt_tplop *tplop; uint32_t ntplop;
    const rt_logfile *logfile; uint32_t nlogfile;
    const rt_acclog *acclog; uint32_t nacclog;
    const rt_errpage *errpage; uint32_t nerrpage;
    const rt_header *header; uint32_t nheader;
    const struct rt_pxconf *pxconf; uint32_t npxconf;   /* proxy: one per CONF, or none */
    const struct rt_upstream *upstream; uint32_t nupstream;
    const struct rt_peer *peer; uint32_t npeer;
    const struct rt_param *param; uint32_t nparam;
    regex_t *name_re;               /* per NAME (regex kinds compiled) */
    regex_t *loc_re;                /* per LOC */
};
#define RT_S(r, s) ((r)->str + (s).off)
/* location lookup that also reports the matched loc record (for alias prefix) */
int pf_router_match(const pf_router *r, int server, const char *uri, size_t len, int *loc_out);
int pf_router_named(const pf_router *r, int server, const char *name, size_t len);
const char *pf_mime_lookup(const pf_router *r, const rt_conf *cf, const char *path, size_t len, size_t *tlen);
int pf_rt_list_has(const pf_router *r, rt_range list, const char *s, size_t len);

/* ---- template variables (vars.c) ---------------------------------------- */
enum pf_var {
    V_LITERAL = 0, V_REMOTE_ADDR, V_REMOTE_USER, V_TIME_LOCAL, V_REQUEST, V_STATUS,
    V_BODY_BYTES_SENT, V_BYTES_SENT, V_HTTP, V_REQUEST_TIME, V_REQUEST_METHOD, V_REQUEST_URI,
    V_URI, V_HOST, V_SERVER_NAME, V_SERVER_PORT, V_SERVER_ADDR, V_REMOTE_PORT, V_MSEC,
    V_TIME_ISO8601, V_CONNECTION, V_CONNECTION_REQUESTS, V_PID, V_SCHEME, V_SERVER_PROTOCOL,
    V_ARGS, V_IS_ARGS, V_REQUEST_LENGTH, V_CONTENT_LENGTH, V_CONTENT_TYPE, V_DOCUMENT_ROOT,
    V_REQUEST_FILENAME, V_ARG, V_HOSTNAME, V_NGINX_VERSION,
    /* proxy (proxy.c / vars_proxy.c) */
    V_PROXY_ADD_XFF, V_PROXY_HOST, V_PROXY_PORT, V_REQUEST_ID, V_HTTPS, V_IS_REQUEST_PORT,
    V_REQUEST_PORT, V_UPSTREAM_ADDR, V_UPSTREAM_STATUS, V_UPSTREAM_RESPONSE_TIME,
    V_UPSTREAM_CONNECT_TIME, V_UPSTREAM_HEADER_TIME, V_UPSTREAM_RESPONSE_LENGTH, V_BINARY_REMOTE_ADDR,
    V_REALPATH_ROOT, V_PIPE, V_REQUEST_COMPLETION, V_UPSTREAM_HTTP,
    V_MAX
};
struct pf_conn; struct pf_req; struct pf_worker;
/* Appends the expansion of template tpl; escape=1 applies access-log escaping.
 * Returns bytes written (truncates at cap). */
size_t pf_tpl_expand(struct pf_worker *w, struct pf_conn *c, struct pf_req *q, uint32_t tpl,
                     int escape, char *out, size_t cap);

/* ---- worker internals (worker.c, conn.c, loop.c) ------------------------- */
typedef struct pf_buf { struct pf_buf *next; uint32_t cap; char data[]; } pf_buf;

/* fd + stat cache entry (static.c) */
typedef struct pf_fent {
    uint64_t hash; uint32_t plen; int refs;
    int fd; int err; int is_dir;
    off_t size; time_t mtime; ino_t ino; dev_t dev;
    int64_t checked_ms;
    char *path;
    char *body; uint32_t body_len;     /* small-file bytes, NULL if not cached */
} pf_fent;

typedef struct pf_req {
    struct pf_req *next_free;
    pf_http_request h;
    uint32_t head_len;
    int server, conf, loc;
    uint32_t uri_len; char uri[PF_URI_MAX];          /* normalised $uri */
    uint32_t fname_len; char fname[PF_PATH_MAX];     /* $request_filename */
    int status; int keep_alive; int header_only; int redirects;
    int err_page_done; int forced_status; int close_now; int body_too_large; int underscores;
    int64_t start_ms;
    int64_t discard_left; int discard_chunked; pf_chunked chunk;
    /* response */
    pf_buf *wbuf; uint32_t wlen, wpos;
    pf_fent *fent; int body_fd; off_t body_off, body_end;
    const char *mem; uint32_t mem_len, mem_pos;      /* cached small body */
    void *gz;                                        /* gzip.c state when compressing */
    uint64_t bytes_sent, header_bytes;
    int content_type_set;
    /* multipart/byteranges (static.c) */
    uint8_t nranges, range_i; char boundary[24];
    off_t rstart[16], rend[16]; off_t part_size;
    const char *part_ctype; size_t part_ctype_len; char part_ctype_buf[256];
    struct pf_up *up;                                /* proxy leg (proxy.c), NULL otherwise */
    uint8_t rid_set; char rid[32];                   /* $request_id, made on first use (vars_proxy.c) */
} pf_req;
#define PF_MAX_RANGES 16

enum pf_conn_state {
    CS_FREE = 0,        /* in the free list */
    CS_IDLE,            /* keep-alive wait: no buffers held */
    CS_READ_HEAD,       /* reading/parsing a request head */
    CS_DISCARD_BODY,    /* reading and dropping a request body we do not use */
    CS_WRITE,           /* sending the response (headers, then memory/file/gzip body) */
    CS_LINGER,          /* write side shut down, draining input before close */
    CS_UPSTREAM,        /* reserved for the proxy leg (issue 4): waiting on an upstream */
    CS_STATE_MAX
};

typedef struct pf_conn {
    int fd; uint32_t gen;
    uint8_t state; uint8_t readable; uint8_t writable; uint8_t close_after;
    uint16_t listener; uint8_t eof_pending; uint8_t pad;
    uint32_t nreq;
    int heap_idx; int64_t deadline;
    pf_buf *rbuf; uint32_t rlen, rpos;
    pf_req *req;
    struct pf_conn *next_free;
    union { struct sockaddr sa; struct sockaddr_in in4; struct sockaddr_in6 in6; } peer;
    uint64_t id;
} pf_conn;

typedef struct { int fd; int addr; int reuseport; int registered; char name[108]; int port; } pf_listener;
typedef struct { int fd; char *buf; uint32_t len, cap; char *path; } pf_alog;

#define PF_MAX_LISTENERS 64
#define PF_BUF_SIZE 16384
#define PF_WBUF_SIZE 16384
#define PF_FCACHE_SLOTS 1024

struct pf_worker {
    pf_worker_conf conf;
    int epfd;
    pf_router *rt;
    pf_conn *conns; pf_conn *free_conns; int nfree;
    pf_conn **heap; int heap_n;
    pf_buf *free_bufs; uint32_t nbufs, nbufs_free;
    pf_req *free_reqs; uint32_t nreqs_free;
    pf_listener ls[PF_MAX_LISTENERS]; int nls; int accepting;
    int draining; int64_t drain_deadline;
    int holds_mutex; int accept_paused;
    int64_t now_ms; time_t now_s;
    char date_hdr[40]; char time_local[48]; char time_iso[48]; time_t date_for;
    pf_alog *alogs; uint32_t nalogs; int64_t next_flush_ms;
    pf_fent *fcache[PF_FCACHE_SLOTS]; size_t small_total;
    uint64_t accepted, requests, conn_seq, boundary_seq; uint32_t active, idle, reading, writing;
    int pid;
    char hostname[256];
    struct pf_px *px;                                /* proxy state (upstream.c), lazily made */
    uint8_t rnd[4096]; uint32_t rnd_left;            /* getrandom() pool for $request_id (vars_proxy.c) */
};

/* loop.c */
int64_t pf_now_ms(void);
void pf_update_time(struct pf_worker *w);
void pf_timer_set(struct pf_worker *w, pf_conn *c, int64_t deadline);
void pf_timer_del(struct pf_worker *w, pf_conn *c);
int pf_loop_poll(struct pf_worker *w, int max_ms);
/* conn.c */
void pf_conn_accepted(struct pf_worker *w, pf_conn *c);
void pf_conn_event(struct pf_worker *w, pf_conn *c, int readable, int writable, int hup);
void pf_conn_timeout(struct pf_worker *w, pf_conn *c);
void pf_conn_drain(struct pf_worker *w, pf_conn *c);
void pf_conn_close(struct pf_worker *w, pf_conn *c);
pf_buf *pf_buf_get(struct pf_worker *w);
void pf_buf_put(struct pf_worker *w, pf_buf *b);
/* worker.c */
void pf_accept_ready(struct pf_worker *w, pf_listener *l);
void pf_worker_conn_freed(struct pf_worker *w);
void pf_log_error(struct pf_worker *w, int level, pf_conn *c, pf_req *q, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* static.c: fills q's response (status, wbuf headers, body source) */
void pf_handle_request(struct pf_worker *w, pf_conn *c, pf_req *q);
void pf_fent_release(struct pf_worker *w, pf_fent *e);
pf_fent *pf_fcache_get(struct pf_worker *w, const char *path, size_t plen, uint32_t valid_ms);   /* fcache.c */
int pf_next_part(pf_req *q);
/* errpage.c */
const char *pf_status_line(int status, size_t *len);
int pf_errpage_body(int status, int server_tokens, char *out, size_t cap);
const char *pf_server_token(int server_tokens);
/* request helpers (vars.c) */
const char *pf_req_header(struct pf_conn *c, struct pf_req *q, const char *name, size_t nlen, size_t *vlen);
const char *pf_req_base(struct pf_conn *c);
/* response header helpers (static.c) */
void pf_respond_error(struct pf_worker *w, pf_conn *c, pf_req *q, int status);
/* gzip.c */
int pf_gzip_start(pf_req *q, int level);
/* fills out with compressed bytes from q's body source; returns bytes, 0 at end, -1 error */
long pf_gzip_produce(struct pf_worker *w, pf_req *q, char *out, size_t cap, int *finished);
void pf_gzip_free(pf_req *q);
/* access_log.c */
int pf_alog_open_all(struct pf_worker *w);
void pf_alog_write(struct pf_worker *w, pf_conn *c, pf_req *q);
void pf_alog_flush_all(struct pf_worker *w);
void pf_alog_close_all(struct pf_worker *w);
/* time formatting (loop.c) */
size_t pf_http_date(time_t t, char *out);   /* 29 chars, RFC 9110 IMF-fixdate */
int pf_parse_http_date(const char *s, size_t len, time_t *out);

/* ---- proxy (proxy.c, upstream.c, proxy_encode.c, body.c, stub_status.c) ----- */
#include "proxy_int.h"

#endif
