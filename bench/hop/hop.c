/* hop.c — the cost of one in-process component call, measured inside one
 * process without HTTP: loads a manifest with keel_host_new and runs
 * keel_host_handle on two routes alternately, in batches — "/single" (one
 * component answering) and "/chain" (A calls B calls C, the same module) —
 * and prints p50 and p99 per request of each, and the hop cost
 * (chain - single) / 2. The HTTP version of this measurement
 * (bench/http/run.sh, section hop) adds loopback and scheduling noise of
 * tens of microseconds; this one isolates what Keel adds per call: the
 * __host_call, getting the callee's instance, its WASI state, the guest
 * call and the release.
 *
 *   bash bench/hop/run.sh          (builds this, the guests and a manifest)
 *   build/bench-hop keel.yaml [requests]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/manifest.h"
#include "host/host.h"

#include "../bench_util.h"


/* One request through route path; its duration in ns, or 0 on a failed
 * response (the benchmark stops then: it measures working calls only). */
static uint64_t one(keel_host *h, const char *path)
{
    keel_route_match m;
    if (keel_host_match(h, "GET", 3, path, strlen(path), &m) != 0)
        return 0;
    keel_request req = {
        .method = "GET", .method_len = 3, .path = path, .path_len = strlen(path),
        .query = "", .uri = path, .uri_len = strlen(path), .body = "",
        .remote_addr = "127.0.0.1", .server_name = "127.0.0.1", .server_port = 0,
        .protocol = "HTTP/1.1", .request_id = "bench",
    };
    keel_response resp;
    uint64_t t0 = now_ns();
    keel_host_handle(h, &m, &req, &resp);
    uint64_t t = now_ns() - t0;
    keel_host_tidy();   /* as the server does once the response is sent */
    bool ok = resp.status == 200 && resp.body_len == 5 && !memcmp(resp.body, "hello", 5);
    keel_response_free(&resp);
    return ok ? t : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s keel.yaml [requests]\n", argv[0]);
        return 2;
    }
    size_t n = argc > 2 ? strtoul(argv[2], NULL, 10) : 200000;
    if (n < 1000)
        n = 1000;
    char err[1024];
    keel_manifest *mf;
    if (keel_manifest_load(argv[1], &mf, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    keel_host_opts o = { 0 };
    o.engine.tier = KEEL_TIER_OPT;
    keel_host *h;
    if (keel_host_new(mf, &o, &h, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    uint64_t *single = malloc(n * sizeof *single), *chain = malloc(n * sizeof *chain);
    if (!single || !chain)
        return 1;
    /* Warm both paths, then alternate batches so drift hits both alike. */
    for (int i = 0; i < 2000; i++)
        if (!one(h, "/single") || !one(h, "/chain")) {
            fprintf(stderr, "hop: a request failed (see the log above)\n");
            return 1;
        }
    const size_t batch = 1000;
    for (size_t done = 0; done < n; done += batch) {
        size_t k = n - done < batch ? n - done : batch;
        for (size_t i = 0; i < k; i++)
            if (!(single[done + i] = one(h, "/single")))
                return 1;
        for (size_t i = 0; i < k; i++)
            if (!(chain[done + i] = one(h, "/chain")))
                return 1;
    }
    qsort(single, n, sizeof *single, cmp_u64);
    qsort(chain, n, sizeof *chain, cmp_u64);
    double s50 = single[n / 2] / 1e3, s99 = single[n * 99 / 100] / 1e3;
    double c50 = chain[n / 2] / 1e3, c99 = chain[n * 99 / 100] / 1e3;
    printf("requests\t%zu each\n", n);
    printf("single\tp50 %.2f us\tp99 %.2f us\n", s50, s99);
    printf("chain\tp50 %.2f us\tp99 %.2f us\n", c50, c99);
    printf("hop\tp50 %.2f us\n", (c50 - s50) / 2);
    free(single);
    free(chain);
    keel_host_free(h);
    keel_manifest_free(mf);
    return 0;
}
