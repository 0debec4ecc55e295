/* tm_thread: the worker threads of a batch (see tm_thread.h). */
#include "tm_thread.h"

#include <pthread.h>
#include <unistd.h>

int tm_thread_count(long requested)
{
    long n = requested > 0 ? requested : sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    return n > TM_MAX_THREADS ? TM_MAX_THREADS : (int)n;
}

struct thread_arg {
    void (*fn)(void *ctx, int idx);
    void *ctx;
    int idx;
};

static void *thread_main(void *varg)
{
    struct thread_arg *a = varg;
    a->fn(a->ctx, a->idx);
    return NULL;
}

void tm_run_threads(int n, void (*fn)(void *ctx, int idx), void *ctx)
{
    if (n > TM_MAX_THREADS)
        n = TM_MAX_THREADS;
    pthread_t tids[TM_MAX_THREADS];
    struct thread_arg args[TM_MAX_THREADS];
    int started = 0;
    for (int t = 1; t < n; t++) {
        args[t] = (struct thread_arg){fn, ctx, t};
        if (pthread_create(&tids[t], NULL, thread_main, &args[t]) != 0)
            break; /* fewer threads: the workers share what is left */
        started = t;
    }
    fn(ctx, 0);
    for (int t = 1; t <= started; t++)
        pthread_join(tids[t], NULL);
}
