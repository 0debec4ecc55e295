/* tm_thread: the worker threads of a stage's batch.
 *
 * A batch runs fn(ctx, idx) on up to n threads, idx 0 on the calling thread. Workers share the
 * work through the context (an atomic counter of items), never by assuming how many threads run:
 * when a thread cannot be created the batch runs on fewer, with the same results. */
#ifndef TM_THREAD_H
#define TM_THREAD_H

/* The most worker threads a stage uses. */
#define TM_MAX_THREADS 256

/* The thread count for a --threads value: the value itself, or one per online core for 0 (or
 * less); always 1..TM_MAX_THREADS. */
int tm_thread_count(long requested);

/* Runs fn(ctx, idx) for idx 0..n-1 (n clamped to 1..TM_MAX_THREADS) and returns when all have
 * returned. */
void tm_run_threads(int n, void (*fn)(void *ctx, int idx), void *ctx);

#endif
