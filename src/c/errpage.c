/*
 * errpage.c — status lines and nginx-shaped error pages (ngx_http_special_response.c
 * layout, CRLF line ends) with the product token "pyfront" (server_tokens off) or
 * "pyfront/VERSION" (on).
 */
#include <stdio.h>
#include <string.h>
#include "pf_int.h"

#define PF_PRODUCT "pyfront/0.1.0"

typedef struct { int code; const char *line; const char *title; } status_t;

/* Reason phrases as nginx 1.22 writes them (ngx_http_status_lines); "title" is the
 * error page heading when it differs (302 page says "Found", 494 is a 400 on the wire). */
static const status_t statuses[] = {
    {200, "200 OK", NULL}, {201, "201 Created", NULL}, {202, "202 Accepted", NULL},
    {204, "204 No Content", NULL}, {206, "206 Partial Content", NULL},
    {301, "301 Moved Permanently", NULL}, {302, "302 Moved Temporarily", "302 Found"},
    {303, "303 See Other", NULL}, {304, "304 Not Modified", NULL},
    {307, "307 Temporary Redirect", NULL}, {308, "308 Permanent Redirect", NULL},
    {400, "400 Bad Request", NULL}, {401, "401 Unauthorized", NULL}, {402, "402 Payment Required", NULL},
    {403, "403 Forbidden", NULL}, {404, "404 Not Found", NULL}, {405, "405 Not Allowed", NULL},
    {406, "406 Not Acceptable", NULL}, {408, "408 Request Time-out", NULL}, {409, "409 Conflict", NULL},
    {410, "410 Gone", NULL}, {411, "411 Length Required", NULL}, {412, "412 Precondition Failed", NULL},
    {413, "413 Request Entity Too Large", NULL}, {414, "414 Request-URI Too Large", NULL},
    {415, "415 Unsupported Media Type", NULL}, {416, "416 Requested Range Not Satisfiable", NULL},
    {421, "421 Misdirected Request", NULL}, {429, "429 Too Many Requests", NULL},
    {494, "400 Bad Request", "400 Request Header Or Cookie Too Large"},
    {500, "500 Internal Server Error", NULL}, {501, "501 Not Implemented", NULL},
    {502, "502 Bad Gateway", NULL}, {503, "503 Service Temporarily Unavailable", NULL},
    {504, "504 Gateway Time-out", NULL}, {505, "505 HTTP Version Not Supported", NULL},
    {507, "507 Insufficient Storage", NULL},
};

static const status_t *find(int code)
{
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        if (statuses[i].code == code) return &statuses[i];
    return NULL;
}

const char *pf_status_line(int status, size_t *len)
{
    const status_t *s = find(status);
    if (!s) { *len = 0; return NULL; }
    *len = strlen(s->line);
    return s->line;
}

const char *pf_server_token(int server_tokens) { return server_tokens ? PF_PRODUCT : "pyfront"; }

/* Returns the page length, or 0 for statuses nginx sends without a page. */
int pf_errpage_body(int status, int server_tokens, char *out, size_t cap)
{
    const status_t *s = find(status);
    if (!s || status < 300 || status == 304) return 0;
    const char *t = s->title ? s->title : s->line;
    int n = snprintf(out, cap,
                     "<html>\r\n<head><title>%s</title></head>\r\n<body>\r\n<center><h1>%s</h1></center>\r\n"
                     "<hr><center>%s</center>\r\n</body>\r\n</html>\r\n",
                     t, t, pf_server_token(server_tokens));
    return n < 0 || (size_t)n >= cap ? 0 : n;
}
