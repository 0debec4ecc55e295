/* tr_par: the trainer's parallel loop over numbered pieces of work (see tr_internal.h). */
#include <stdatomic.h>
#include <stddef.h>

#include "tm_thread.h"
#include "tr_internal.h"

struct par_job {
    void (*fn)(void *ctx, size_t i);
    void *ctx;
    size_t n;
    atomic_size_t next;
};

static void par_worker(void *vjob, int idx)
{
    struct par_job *j = vjob;
    (void)idx;
    for (;;) {
        size_t i = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (i >= j->n)
            break;
        j->fn(j->ctx, i);
    }
}

void tr_parallel_for(int threads, size_t n, void (*fn)(void *ctx, size_t i), void *ctx)
{
    if (threads <= 1 || n <= 1) {
        for (size_t i = 0; i < n; i++)
            fn(ctx, i);
        return;
    }
    struct par_job j = {.fn = fn, .ctx = ctx, .n = n};
    atomic_init(&j.next, 0);
    tm_run_threads(threads > (int)(n < 256 ? n : 256) ? (int)n : threads, par_worker, &j);
}
