/*
 * fuzz_front.c — fuzz target for the front's own parsers: URI normalisation + root/alias
 * joins (path.c) and the route-table loader (router.c). First byte picks the target.
 *
 * Path contract checked on every input: a successful result starts with '/', holds no
 * NUL, no "//", no "." or ".." segment; an alias join never yields a first segment "..".
 * Router contract: a blob either loads or is refused with a message; a loaded one
 * answers lookups without touching memory outside it (ASan).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pf.h"
#include "pf_int.h"

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "fuzz_front: %s:%d: %s\n", \
                        __FILE__, __LINE__, #cond); abort(); } } while (0)

static void check_path(const uint8_t *d, size_t n)
{
    char out[256];
    int r = pf_path_normalize((const char *)d, n, out, sizeof out);
    CHECK(r == PF_E_BAD_REQUEST || r == PF_E_URI_TOO_LONG || (r > 0 && r < (int)sizeof out));
    if (r <= 0) return;
    CHECK(out[0] == '/' && out[r] == 0 && (int)strlen(out) == r);
    CHECK(!strstr(out, "//"));
    for (const char *s = out; s; s = strchr(s + 1, '/')) {
        const char *seg = s + 1, *e = strchr(seg, '/');
        size_t len = e ? (size_t)(e - seg) : strlen(seg);
        CHECK(!(len == 1 && seg[0] == '.'));
        CHECK(!(len == 2 && seg[0] == '.' && seg[1] == '.'));
    }
    /* alias join at every possible location prefix of the result */
    for (int cut = 1; cut <= r; cut++) {
        char j[512];
        int jr = pf_path_join("/srv/alias/", 11, out + cut, (size_t)(r - cut), j, sizeof j);
        if (jr < 0) continue;
        const char *rest = j + 11;
        CHECK(!(rest[0] == '.' && rest[1] == '.' && (rest[2] == '/' || rest[2] == 0)));
    }
}

static void check_router(const uint8_t *d, size_t n)
{
    char err[256];
    pf_router *r = pf_router_load(d, n, err, sizeof err);
    if (!r) { CHECK(err[0] != 0); return; }
    for (int a = -1; a < 3; a++)
        for (int s = 0; s < 3; s++) {
            pf_router_find_server(r, a, "example.com", 11);
            pf_router_find_location(r, s, "/a/b/x.txt", 10);
        }
    pf_router_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    if (data[0] & 1) check_router(data + 1, size - 1);
    else check_path(data + 1, size - 1);
    return 0;
}
