/*
 * stub_status.c — nginx's basic status page, byte for byte:
 *   "Active connections: N \nserver accepts handled requests\n A H R \nReading: r Writing: w Waiting: k \n"
 * The pure formatter (tests/c); static.c's do_stub_status serves the page.
 */
#include <stdio.h>
#include <string.h>
#include "pf_int.h"

int pf_stub_status_body(uint64_t active, uint64_t accepts, uint64_t handled, uint64_t requests, uint64_t reading,
                        uint64_t writing, uint64_t waiting, char *out, size_t cap)
{
    int n = snprintf(out, cap,
                     "Active connections: %llu \nserver accepts handled requests\n %llu %llu %llu \n"
                     "Reading: %llu Writing: %llu Waiting: %llu \n",
                     (unsigned long long)active, (unsigned long long)accepts, (unsigned long long)handled,
                     (unsigned long long)requests, (unsigned long long)reading, (unsigned long long)writing,
                     (unsigned long long)waiting);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}
