/*
 * fcache.c — the fd/stat cache ("open_file_cache by design"): a direct-mapped table of
 * open fds with their fstat and, for files up to 8 KiB, their bytes.
 *
 * With open_file_cache_valid 0 (the default here) an entry is revalidated by ONE stat()
 * per request: same inode, size and mtime -> reuse the fd and bytes; so a changed file is
 * seen at once, unlike nginx's open_file_cache (stale up to open_file_cache_valid, 60 s by
 * default). With `open_file_cache ...; open_file_cache_valid Ns;` the stat is skipped for
 * N s, as nginx. Entries are shared by requests (refs); an entry evicted while in use is
 * freed by its last user.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "pf_int.h"

#define SMALL_FILE 8192            /* cached bytes per file: a 1 KiB page goes out in one send */
#define SMALL_TOTAL (4u << 20)     /* cached bytes per worker */

static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)p[i]; h *= 1099511628211ull; }
    return h;
}

static void fent_free(pf_worker *w, pf_fent *e)
{
    if (e->fd >= 0) close(e->fd);
    if (e->body) { w->small_total -= e->body_len; free(e->body); }
    free(e->path);
    free(e);
}

void pf_fent_release(pf_worker *w, pf_fent *e)
{
    if (!e) return;
    if (e->refs > 0) e->refs--;
    if (e->refs == 0 && e->hash == 0) fent_free(w, e);     /* hash 0 = evicted while in use */
}

static void fent_fill(pf_worker *w, pf_fent *e, const struct stat *st, int err)
{
    e->err = err;
    e->is_dir = 0;
    if (err) return;
    e->size = st->st_size; e->mtime = st->st_mtime; e->ino = st->st_ino; e->dev = st->st_dev;
    if (S_ISDIR(st->st_mode)) { e->is_dir = 1; return; }
    if (!S_ISREG(st->st_mode)) { e->err = EACCES; return; }   /* devices, fifos: nginx 403s them */
    e->fd = open(e->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (e->fd < 0) { e->err = errno; return; }
    struct stat fst;
    if (fstat(e->fd, &fst) < 0) { e->err = errno; return; }
    e->size = fst.st_size; e->mtime = fst.st_mtime; e->ino = fst.st_ino; e->dev = fst.st_dev;
    if (e->size > 0 && e->size <= SMALL_FILE && w->small_total + e->size <= SMALL_TOTAL) {
        e->body = malloc((size_t)e->size);
        if (e->body) {
            ssize_t n = pread(e->fd, e->body, (size_t)e->size, 0);
            if (n == e->size) { e->body_len = (uint32_t)n; w->small_total += e->body_len; }
            else { free(e->body); e->body = NULL; }
        }
    }
}

pf_fent *pf_fcache_get(pf_worker *w, const char *path, size_t plen, uint32_t valid_ms)
{
    uint64_t h = fnv1a(path, plen) | 1;
    pf_fent **slot = &w->fcache[h % PF_FCACHE_SLOTS];
    pf_fent *e = *slot;
    struct stat st;
    if (e && e->hash == h && e->plen == plen && memcmp(e->path, path, plen) == 0) {
        if (valid_ms && w->now_ms - e->checked_ms < valid_ms) { e->refs++; return e; }
        int err = stat(path, &st) < 0 ? errno : 0;
        int same = err ? (e->err == err)
                       : (!e->err && e->ino == st.st_ino && e->dev == st.st_dev && e->size == st.st_size
                          && e->mtime == st.st_mtime && e->is_dir == !!S_ISDIR(st.st_mode));
        if (same) { e->checked_ms = w->now_ms; e->refs++; return e; }
        /* changed: evict and refill below with the stat we already have */
        *slot = NULL;
        e->hash = 0;
        if (e->refs == 0) fent_free(w, e);
        e = calloc(1, sizeof *e);
        if (!e) return NULL;
        e->path = malloc(plen + 1);
        if (!e->path) { free(e); return NULL; }
        memcpy(e->path, path, plen);
        e->path[plen] = 0;
        e->plen = (uint32_t)plen; e->fd = -1; e->hash = h;
        fent_fill(w, e, &st, err);
    } else {
        if (e) { *slot = NULL; e->hash = 0; if (e->refs == 0) fent_free(w, e); }
        e = calloc(1, sizeof *e);
        if (!e) return NULL;
        e->path = malloc(plen + 1);
        if (!e->path) { free(e); return NULL; }
        memcpy(e->path, path, plen);
        e->path[plen] = 0;
        e->plen = (uint32_t)plen; e->fd = -1; e->hash = h;
        int err = stat(e->path, &st) < 0 ? errno : 0;
        fent_fill(w, e, &st, err);
    }
    if (e->err && e->fd >= 0) { close(e->fd); e->fd = -1; }
    e->checked_ms = w->now_ms;
    e->refs = 1;                 /* refs counts requests using it; the slot holds it while hash != 0 */
    *slot = e;
    return e;
}

