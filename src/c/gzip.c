/*
 * gzip.c — on-the-fly gzip (zlib) of a static body for gzip_types, streamed as HTTP/1.1
 * chunks: each call deflates up to one wbuf of input into one chunk, so memory per
 * compressing connection is zlib's state plus the wbuf, whatever the file size.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include "pf_int.h"

typedef struct { z_stream z; int finished; int started; char in[8192]; } gz_t;

int pf_gzip_start(pf_req *q, int level)
{
    gz_t *g = calloc(1, sizeof *g);
    if (!g) return -1;
    /* windowBits 15 + 16 = gzip wrapper; memLevel 8 as nginx's default gzip_buffers use */
    if (deflateInit2(&g->z, level < 1 ? 1 : level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        free(g);
        return -1;
    }
    g->started = 1;
    q->gz = g;
    return 0;
}

void pf_gzip_free(pf_req *q)
{
    gz_t *g = q->gz;
    if (!g) return;
    deflateEnd(&g->z);
    free(g);
    q->gz = NULL;
}

/* Writes one chunk ("hex\r\n" data "\r\n", plus "0\r\n\r\n" at the end) into out. */
long pf_gzip_produce(pf_worker *w, pf_req *q, char *out, size_t cap, int *finished)
{
    gz_t *g = q->gz;
    *finished = 0;
    if (!g || g->finished) { *finished = 1; return 0; }
    if (cap < 64) return -1;
    char *data = out + 10;                   /* room for "xxxxxxxx\r\n" */
    size_t room = cap - 10 - 2 - 5;          /* CRLF after data, final "0\r\n\r\n" */
    g->z.next_out = (Bytef *)data;
    g->z.avail_out = (uInt)room;
    while (g->z.avail_out > 0 && !g->finished) {
        if (g->z.avail_in == 0) {
            off_t left = q->body_end - q->body_off;
            if (left > 0) {
                size_t want = left < (off_t)sizeof g->in ? (size_t)left : sizeof g->in;
                if (q->mem) {
                    memcpy(g->in, q->mem + q->body_off, want);
                } else {
                    ssize_t n = pread(q->body_fd, g->in, want, q->body_off);
                    if (n <= 0) return -1;
                    want = (size_t)n;
                }
                q->body_off += (off_t)want;
                g->z.next_in = (Bytef *)g->in;
                g->z.avail_in = (uInt)want;
            }
        }
        int flush = q->body_off >= q->body_end && g->z.avail_in == 0 ? Z_FINISH : Z_NO_FLUSH;
        int rc = deflate(&g->z, flush);
        if (rc == Z_STREAM_END) g->finished = 1;
        else if (rc != Z_OK && rc != Z_BUF_ERROR) return -1;
        if (flush == Z_NO_FLUSH && g->z.avail_in == 0 && q->body_off >= q->body_end) continue;
        if (rc == Z_BUF_ERROR) break;
    }
    size_t n = room - g->z.avail_out;
    size_t pos = 0;
    if (n > 0) {
        char hex[12];
        int hl = snprintf(hex, sizeof hex, "%zx\r\n", n);
        memmove(out + hl, data, n);
        memcpy(out, hex, (size_t)hl);
        pos = (size_t)hl + n;
        memcpy(out + pos, "\r\n", 2);
        pos += 2;
    }
    if (g->finished) {
        memcpy(out + pos, "0\r\n\r\n", 5);
        pos += 5;
        *finished = 1;
    }
    return (long)pos;
}
