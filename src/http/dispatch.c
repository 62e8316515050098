/* dispatch.c — where a request's guest code runs. By default inline, on the
 * event loop thread that parsed the request: no hand-off between threads,
 * which on this kind of machine costs more than a short guest call. A
 * component whose request cost more than the inline budget (its CPU time,
 * or its wall time when the guest waited — sleeping, blocked in WASI —
 * but never time it was merely preempted: a fast component stays fast on
 * a busy machine) is "slow" for a hold period (renewed by every further long
 * request): its requests go
 * to the worker threads, which run at a lower scheduling priority, so a
 * CPU-bound component cannot stall the connections of a loop nor take the
 * CPU from the loops. State is one atomic timestamp per component. */
#include "http/srv_int.h"

#include <stdlib.h>

struct http_placement {
    _Alignas(64) _Atomic uint64_t slow_until_ns;   /* 0: fast */
};

void http_placement_init(srv *s)
{
    size_t n = 0;
    while (s->ops->component(s->hctx, n) != NULL)
        n++;
    s->nplacements = n;
    s->placements = n ? aligned_alloc(64, n * sizeof *s->placements) : NULL;
    if (n && s->placements == NULL)
        abort();
    for (size_t i = 0; i < n; i++)
        atomic_init(&s->placements[i].slow_until_ns, 0);
}

void http_placement_free(srv *s)
{
    free(s->placements);
    s->placements = NULL;
    s->nplacements = 0;
}

bool http_run_inline(srv *s, size_t comp, uint64_t now_ns)
{
    if (comp >= s->nplacements || s->nworkers == 0)
        return s->nworkers == 0;
    return atomic_load_explicit(&s->placements[comp].slow_until_ns, memory_order_relaxed) <= now_ns;
}

void http_placement_note(srv *s, size_t comp, uint64_t cost_ns)
{
    if (comp >= s->nplacements || cost_ns <= KEEL_HTTP_INLINE_BUDGET_NS)
        return;
    atomic_store_explicit(&s->placements[comp].slow_until_ns,
                          http_now_ns() + KEEL_HTTP_SLOW_HOLD_NS, memory_order_relaxed);
}
