/* raw.c — a waPC guest written against the bare ABI (no SDK): operation
 * "ok" answers "raw ok", "zero" returns 0 without __guest_error, anything
 * else calls __guest_error. Built as a reactor. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define IMPORT(m, n) __attribute__((import_module(m), import_name(n)))
IMPORT("wapc", "__guest_request") void guest_request(uint8_t *op, uint8_t *payload);
IMPORT("wapc", "__guest_response") void guest_response(const uint8_t *p, uint32_t n);
IMPORT("wapc", "__guest_error") void guest_error(const uint8_t *p, uint32_t n);

__attribute__((export_name("__guest_call"))) int guest_call(int op_len, int payload_len)
{
    uint8_t *op = malloc((size_t)op_len + 1), *pl = malloc((size_t)payload_len + 1);
    guest_request(op, pl);
    int rc = 1;
    if (op_len == 2 && memcmp(op, "ok", 2) == 0)
        guest_response((const uint8_t *)"raw ok", 6);
    else if (op_len == 4 && memcmp(op, "zero", 4) == 0)
        rc = 0;
    else {
        guest_error((const uint8_t *)"raw: no such op", 15);
        rc = 0;
    }
    free(op);
    free(pl);
    return rc;
}
