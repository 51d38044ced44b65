/*
 * driver.c — main() for fuzz_http.c when libFuzzer (clang) is not available: runs every
 * seed file given on the command line, then a fixed number of seeded random mutations
 * (bit flips, byte insert/delete/overwrite with HTTP-significant bytes, splices between
 * seeds). Each input is copied into an exact-size heap block so ASan sees any over-read.
 *
 *   driver ITERATIONS SEED_FILE...
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT 16384

typedef struct { uint8_t *d; size_t n; } blob;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;   /* fixed seed: reproducible runs */

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static const uint8_t interesting[] = { '\r', '\n', ' ', '\t', ':', ';', ',', '0', 'f', 'F',
                                       '\0', 0x7f, 0xff, '/', '?', '#', '"', '=', 'x' };

static size_t mutate(uint8_t *buf, size_t n, const blob *seeds, size_t nseeds)
{
    int rounds = 1 + (int)(rnd() % 4);
    for (int r = 0; r < rounds; r++) {
        size_t at = n ? rnd() % n : 0;
        switch (rnd() % 6) {
        case 0: if (n) buf[at] ^= (uint8_t)(1u << (rnd() % 8)); break;
        case 1: if (n) buf[at] = interesting[rnd() % sizeof interesting]; break;
        case 2: if (n) { memmove(buf + at, buf + at + 1, n - at - 1); n--; } break;
        case 3:
            if (n < MAX_INPUT) {
                memmove(buf + at + 1, buf + at, n - at);
                buf[at] = interesting[rnd() % sizeof interesting];
                n++;
            }
            break;
        case 4: {   /* splice: tail of another seed */
            const blob *s = &seeds[rnd() % nseeds];
            size_t from = s->n ? rnd() % s->n : 0, take = s->n - from;
            if (at + take > MAX_INPUT)
                take = MAX_INPUT - at;
            memcpy(buf + at, s->d + from, take);
            n = at + take;
            break;
        }
        default: if (n) n = rnd() % n; break;   /* truncate */
        }
    }
    return n;
}

static void run(const uint8_t *d, size_t n)
{
    uint8_t *exact = malloc(n ? n : 1);
    if (!exact) { perror("malloc"); exit(2); }
    memcpy(exact, d, n);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s ITERATIONS SEED_FILE...\n", argv[0]);
        return 2;
    }
    long iterations = strtol(argv[1], NULL, 10);
    size_t nseeds = (size_t)(argc - 2);
    blob *seeds = calloc(nseeds, sizeof *seeds);
    static uint8_t buf[MAX_INPUT];

    for (size_t i = 0; i < nseeds; i++) {
        FILE *f = fopen(argv[i + 2], "rb");
        if (!f) { perror(argv[i + 2]); return 2; }
        seeds[i].d = malloc(MAX_INPUT);
        seeds[i].n = fread(seeds[i].d, 1, MAX_INPUT, f);
        fclose(f);
        run(seeds[i].d, seeds[i].n);
    }
    for (long it = 0; it < iterations; it++) {
        const blob *s = &seeds[rnd() % nseeds];
        memcpy(buf, s->d, s->n);
        run(buf, mutate(buf, s->n, seeds, nseeds));
    }
    printf("fuzz_http: %zu seeds, %ld mutations, no failures\n", nseeds, iterations);
    return 0;
}
