/*
 * fuzz_uwsgi.c — fuzz target for the uwsgi packet parser (src/c/uwsgi.c), libFuzzer entry.
 * Without clang, tests/fuzz/driver.c supplies main() (tests/fuzz/test_fuzz_uwsgi.py).
 *
 * Beyond "no crash": the status is a documented one, every span stays inside the head,
 * the flat copy has exactly the spans' bytes, any shorter prefix says "need more" or the
 * same error, and re-encoding the spans gives the original head back.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pf.h"

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "fuzz_uwsgi: %s:%d: %s\n", \
                        __FILE__, __LINE__, #cond); abort(); } } while (0)

#define MAXV 16384

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static __thread pf_uwsgi_var vars[MAXV];
    static __thread char flat[65536], enc[65536 + 8];
    pf_uwsgi_packet pkt, p2;
    const char *buf = (const char *)data;
    uint32_t maxds = size ? (uint32_t)data[0] * 257u : 4096;
    int rc = pf_uwsgi_parse(buf, size, maxds, &pkt, vars, MAXV, flat, sizeof flat);
    CHECK(rc >= 0 || rc == PF_NEED_MORE || rc == PF_E_UWSGI_TOO_BIG || rc == PF_E_UWSGI_HTTP
          || rc == PF_E_UWSGI_MODIFIER || rc == PF_E_UWSGI_VAR || rc == PF_E_UWSGI_TOO_MANY);
    if (rc < 0)
        return 0;
    CHECK((size_t)rc <= size && rc == PF_UWSGI_HEAD + pkt.datasize && pkt.datasize <= maxds);
    size_t fl = 0;
    for (uint32_t i = 0; i < pkt.nvars; i++) {
        CHECK((size_t)vars[i].key_off + vars[i].key_len <= (size_t)rc);
        CHECK((size_t)vars[i].val_off + vars[i].val_len <= (size_t)rc);
        fl += (i ? 1 : 0) + vars[i].key_len + 1 + vars[i].val_len;
    }
    CHECK(fl == pkt.flat_len);
    for (size_t cut = 0; cut < (size_t)rc; cut += 1 + cut / 8) {
        int r2 = pf_uwsgi_parse(buf, cut, maxds, &p2, NULL, 0, NULL, 0);
        CHECK(r2 == PF_NEED_MORE);
    }
    int n = pf_uwsgi_encode(pkt.modifier1, pkt.modifier2, buf, vars, pkt.nvars, enc, sizeof enc);
    CHECK(n == rc && memcmp(enc, buf, (size_t)n) == 0);
    return 0;
}
