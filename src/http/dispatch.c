/* dispatch.c — where a request's guest code runs: inline, on the event loop
 * thread that parsed the request (no hand-off between threads, which on
 * this kind of machine costs more than a short guest call), or on a worker
 * thread (workers run at a lower scheduling priority, so a CPU-bound or
 * waiting component can neither stall the other connections of a loop nor
 * take the CPU from the loops).
 *
 * A component runs inline only once it has shown it is cheap: its last
 * KEEL_HTTP_FAST_STREAK requests each cost at most the inline budget, and
 * none cost more within the hold period. Cost is the request's CPU time,
 * or its wall time when the guest waited (sleeping, blocked in WASI), but
 * never time it was merely preempted: a fast component stays fast on a
 * busy machine. So a component Keel knows nothing about yet (just loaded)
 * starts on the workers, and one that turns slow is sent back there after
 * its first expensive requests.
 *
 * Reading CPU time costs two system calls, so a request is measured by
 * wall time alone while that proves it cheap (its cost is at most its wall
 * time); a request that ran long only flags its component, and the next
 * request of that component is measured exactly. State: three atomics per
 * component. */
#include "http/srv_int.h"

#include <stdlib.h>

struct http_placement {
    _Alignas(64) _Atomic uint64_t slow_until_ns;   /* no inline before this */
    _Atomic uint32_t cheap_streak;                 /* consecutive cheap requests */
    _Atomic bool verify;                           /* measure the next one's cost */
};

void http_placement_init(srv *s)
{
    size_t n = 0;
    void *hc = s->ops->pin ? s->ops->pin(s->hctx) : s->hctx;
    while (s->ops->component(hc, n) != NULL)
        n++;
    if (s->ops->unpin)
        s->ops->unpin(s->hctx, hc);
    s->nplacements = n;
    s->placements = n ? aligned_alloc(64, n * sizeof *s->placements) : NULL;
    if (n && s->placements == NULL)
        abort();
    for (size_t i = 0; i < n; i++) {
        atomic_init(&s->placements[i].slow_until_ns, 0);
        atomic_init(&s->placements[i].cheap_streak, 0);
        atomic_init(&s->placements[i].verify, false);
    }
}

void http_placement_free(srv *s)
{
    free(s->placements);
    s->placements = NULL;
    s->nplacements = 0;
}

bool http_run_inline(srv *s, size_t comp, uint64_t now_ns)
{
    if (s->nworkers == 0)
        return true;
    if (comp >= s->nplacements)
        return false;
    const http_placement *p = &s->placements[comp];
    return atomic_load_explicit(&p->cheap_streak, memory_order_relaxed) >=
               KEEL_HTTP_FAST_STREAK &&
           atomic_load_explicit(&p->slow_until_ns, memory_order_relaxed) <= now_ns;
}

void http_placement_note(srv *s, size_t comp, uint64_t cost_ns)
{
    if (comp >= s->nplacements)
        return;
    http_placement *p = &s->placements[comp];
    if (cost_ns <= KEEL_HTTP_INLINE_BUDGET_NS) {
        if (atomic_load_explicit(&p->cheap_streak, memory_order_relaxed) < KEEL_HTTP_FAST_STREAK)
            atomic_fetch_add_explicit(&p->cheap_streak, 1, memory_order_relaxed);
        return;
    }
    atomic_store_explicit(&p->cheap_streak, 0, memory_order_relaxed);
    atomic_store_explicit(&p->slow_until_ns, http_now_ns() + KEEL_HTTP_SLOW_HOLD_NS,
                          memory_order_relaxed);
}

bool http_placement_wants_cost(srv *s, size_t comp)
{
    if (comp >= s->nplacements)
        return false;
    http_placement *p = &s->placements[comp];
    return atomic_load_explicit(&p->verify, memory_order_relaxed) &&
           atomic_exchange_explicit(&p->verify, false, memory_order_relaxed);
}

void http_placement_note_wall(srv *s, size_t comp, uint64_t wall_ns)
{
    if (comp >= s->nplacements)
        return;
    if (wall_ns <= KEEL_HTTP_INLINE_BUDGET_NS)   /* cost <= wall: cheap for sure */
        http_placement_note(s, comp, wall_ns);
    else                                         /* slow, or only preempted? */
        atomic_store_explicit(&s->placements[comp].verify, true, memory_order_relaxed);
}
