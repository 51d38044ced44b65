/*
 * http_chunked.c — incremental chunked transfer-coding decoder (RFC 9112 §7.1).
 *
 * Stateful (unlike the head parsers) because a body can be far larger than any buffer:
 * the caller feeds each byte once and gets spans of payload inside its own buffer.
 * Strict CRLF everywhere; extensions and trailers are bounded (CVE-2024-22019 was an
 * unbounded chunk-extension read in Node.js) and discarded.
 *
 *   SIZE0 -hex-> SIZE -';'-> EXT -CR-> SIZE_LF -LF-> DATA (size > 0) | TRAILER (size 0)
 *   SIZE -SP/HT-> SIZE_WS -';'-> EXT          SIZE -CR-> SIZE_LF
 *   DATA -remaining==0-> DATA_CR -CR-> DATA_LF -LF-> SIZE0
 *   TRAILER -CR-> FINAL_LF -LF-> DONE        TRAILER -tchar-> T_NAME -':'-> T_VALUE
 *   T_VALUE -CR-> T_LF -LF-> TRAILER          any -invalid-> ERROR (sticky)
 */
#include <assert.h>

#include "pf.h"
#include "http_chars.h"

enum {
    CS_SIZE0 = 0, CS_SIZE, CS_SIZE_WS, CS_EXT, CS_SIZE_LF,
    CS_DATA, CS_DATA_CR, CS_DATA_LF,
    CS_TRAILER, CS_T_NAME, CS_T_VALUE, CS_T_LF, CS_FINAL_LF,
    CS_DONE, CS_ERROR,
};

void pf_chunked_init(pf_chunked *c)
{
    c->state = CS_SIZE0;
    c->error = PF_HTTP_WHY_NONE;
    c->remaining = 0;
    c->total = 0;
    c->line = 0;
}

static int fail(pf_chunked *c, int why)
{
    c->state = CS_ERROR;
    c->error = why;
    return PF_E_BAD_REQUEST;
}

static int hexval(uint8_t ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch |= 0x20;
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* One framing byte; returns 0 or an error. Sets the next state. */
static int step(pf_chunked *c, uint8_t ch)
{
    int in_trailer = c->state >= CS_TRAILER && c->state <= CS_FINAL_LF;

    if (++c->line > (in_trailer ? PF_CHUNK_TRAILERS_MAX : PF_CHUNK_LINE_MAX))
        return fail(c, in_trailer ? PF_HTTP_WHY_TRAILERS_TOO_LARGE : PF_HTTP_WHY_CHUNK_LINE_TOO_LONG);

    switch (c->state) {
    case CS_SIZE0:
        if (hexval(ch) < 0)   /* empty size, "-1", " 5", "0x5": all invalid */
            return fail(c, PF_HTTP_WHY_BAD_CHUNK_SIZE);
        c->remaining = (uint64_t)hexval(ch);
        c->state = CS_SIZE;
        return 0;
    case CS_SIZE:
        if (hexval(ch) >= 0) {
            if (c->remaining >> 59)   /* the next digit would pass 2^63 - 1 */
                return fail(c, PF_HTTP_WHY_CHUNK_SIZE_OVERFLOW);
            c->remaining = (c->remaining << 4) | (uint64_t)hexval(ch);
        } else if (ch == ';') {
            c->state = CS_EXT;
        } else if (ch == ' ' || ch == '\t') {   /* BWS before ';' (RFC 9112 §7.1.1) */
            c->state = CS_SIZE_WS;
        } else if (ch == '\r') {
            c->state = CS_SIZE_LF;
        } else {
            return fail(c, ch == '\n' ? PF_HTTP_WHY_BARE_LF : PF_HTTP_WHY_BAD_CHUNK_SIZE);
        }
        return 0;
    case CS_SIZE_WS:
        if (ch == ';')
            c->state = CS_EXT;
        else if (ch != ' ' && ch != '\t')   /* "5 \r\n" has BWS with no extension */
            return fail(c, PF_HTTP_WHY_BAD_CHUNK_SIZE);
        return 0;
    case CS_EXT:
        if (ch == '\r')
            c->state = CS_SIZE_LF;
        else if (!pf_is(ch, PF_CC_VALUE))
            return fail(c, ch == '\n' ? PF_HTTP_WHY_BARE_LF : PF_HTTP_WHY_BAD_CHUNK_EXT);
        return 0;
    case CS_SIZE_LF:
        if (ch != '\n')
            return fail(c, PF_HTTP_WHY_BARE_CR);
        c->line = 0;
        c->state = c->remaining ? CS_DATA : CS_TRAILER;
        return 0;
    case CS_DATA_CR:
        if (ch != '\r')
            return fail(c, PF_HTTP_WHY_BAD_CHUNK_END);
        c->state = CS_DATA_LF;
        return 0;
    case CS_DATA_LF:
        if (ch != '\n')
            return fail(c, PF_HTTP_WHY_BAD_CHUNK_END);
        c->line = 0;
        c->state = CS_SIZE0;
        return 0;
    case CS_TRAILER:
        if (ch == '\r')
            c->state = CS_FINAL_LF;
        else if (pf_is(ch, PF_CC_TCHAR))
            c->state = CS_T_NAME;
        else
            return fail(c, ch == ' ' || ch == '\t' ? PF_HTTP_WHY_OBS_FOLD
                        : ch == '\n' ? PF_HTTP_WHY_BARE_LF : PF_HTTP_WHY_BAD_TRAILER);
        return 0;
    case CS_T_NAME:
        if (ch == ':')
            c->state = CS_T_VALUE;
        else if (!pf_is(ch, PF_CC_TCHAR))
            return fail(c, PF_HTTP_WHY_BAD_TRAILER);
        return 0;
    case CS_T_VALUE:
        if (ch == '\r')
            c->state = CS_T_LF;
        else if (!pf_is(ch, PF_CC_VALUE))
            return fail(c, ch == '\n' ? PF_HTTP_WHY_BARE_LF : PF_HTTP_WHY_BAD_TRAILER);
        return 0;
    case CS_T_LF:
        if (ch != '\n')
            return fail(c, PF_HTTP_WHY_BARE_CR);
        c->state = CS_TRAILER;
        return 0;
    case CS_FINAL_LF:
        if (ch != '\n')
            return fail(c, PF_HTTP_WHY_BARE_CR);
        c->state = CS_DONE;
        return 0;
    default:
        assert(!"pf_chunked: step() in a non-framing state");
        return fail(c, PF_HTTP_WHY_BAD_CHUNK_SIZE);
    }
}

int pf_chunked_feed(pf_chunked *c, const char *buf, size_t len,
                    size_t *data_off, size_t *data_len, int *done)
{
    const uint8_t *b = (const uint8_t *)buf;
    size_t i = 0;

    if (len > 0x7fffffff)   /* the return value is an int */
        len = 0x7fffffff;
    *data_off = 0;
    *data_len = 0;
    *done = c->state == CS_DONE;
    if (c->state == CS_ERROR)
        return PF_E_BAD_REQUEST;
    while (i < len) {
        if (c->state == CS_DONE)
            break;
        if (c->state == CS_DATA) {
            size_t n = len - i;
            if (n > c->remaining)
                n = (size_t)c->remaining;
            *data_off = i;
            *data_len = n;
            c->remaining -= n;
            c->total += n;
            i += n;
            if (c->remaining == 0)
                c->state = CS_DATA_CR;
            break;   /* one payload run per call */
        }
        if (step(c, b[i]) != 0)
            return PF_E_BAD_REQUEST;
        i++;
    }
    *done = c->state == CS_DONE;
    return (int)i;
}
