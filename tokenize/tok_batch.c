/* tok_batch.c: encoding many documents on several threads.
 *
 * Each thread owns one encoder (its PCRE2 match data and piece cache are not shareable) and
 * takes the next document from an atomic counter, so a thread that drew short documents takes
 * more of them; each document's ids go to its own output, so the result does not depend on
 * which thread encoded what. */
#include <stdatomic.h>
#include <stdlib.h>

#include "tok_internal.h"
#include "tm_err.h"
#include "tm_mem.h"
#include "tm_thread.h"

struct tok_batch {
    int threads;
    struct tok_encoder **enc; /* [threads] */
};

int tok_batch_new(const struct tok_encoder *tmpl, int threads, struct tok_batch **out)
{
    *out = NULL;
    struct tok_batch *b = tm_xcalloc(1, sizeof(*b));
    b->threads = tm_thread_count(threads);
    b->enc = tm_xcalloc((size_t)b->threads, sizeof(*b->enc));
    for (int i = 0; i < b->threads; i++) {
        int rc = tok_encoder_clone(tmpl, &b->enc[i]);
        if (rc != TM_OK) {
            tok_batch_free(b);
            return rc;
        }
    }
    *out = b;
    return TM_OK;
}

void tok_batch_free(struct tok_batch *b)
{
    if (!b)
        return;
    for (int i = 0; i < b->threads; i++)
        tok_encoder_free(b->enc[i]);
    free(b->enc);
    free(b);
}

int tok_batch_threads(const struct tok_batch *b)
{
    return b->threads;
}

struct batch_job {
    struct tok_batch *b;
    const char *const *texts;
    const size_t *lens;
    size_t n;
    unsigned flags;
    struct tok_ids *outs;
    int *errs;          /* [n], always set (the caller's or our own) */
    atomic_size_t next; /* the next document to take */
};

static void batch_worker(void *ctx, int idx)
{
    struct batch_job *j = ctx;
    struct tok_encoder *e = j->b->enc[idx];
    for (;;) {
        size_t i = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (i >= j->n)
            return;
        size_t before = j->outs[i].n;
        int rc = j->flags & TOK_BATCH_ORDINARY
                     ? tok_encode_ordinary(e, j->texts[i], j->lens[i], &j->outs[i])
                     : tok_encode(e, j->texts[i], j->lens[i], &j->outs[i]);
        if (rc != TM_OK)
            j->outs[i].n = before;
        j->errs[i] = rc;
    }
}

int tok_batch_encode(struct tok_batch *b, const char *const *texts, const size_t *lens, size_t n,
                     unsigned flags, struct tok_ids *outs, int *errs)
{
    if (n == 0)
        return TM_OK;
    int *own = errs ? NULL : tm_xcalloc(n, sizeof(*own));
    struct batch_job j = {b, texts, lens, n, flags, outs, errs ? errs : own, 0};
    atomic_init(&j.next, 0);
    /* No more threads than documents: starting a thread costs more than a short document. */
    int threads = (size_t)b->threads < n ? b->threads : (int)n;
    tm_run_threads(threads, batch_worker, &j);
    int rc = TM_OK;
    for (size_t i = 0; i < n && rc == TM_OK; i++)
        rc = j.errs[i];
    free(own);
    return rc;
}

int tok_encode_batch(const struct tok_encoder *tmpl, const char *const *texts, const size_t *lens,
                     size_t n, int threads, unsigned flags, struct tok_ids *outs, int *errs)
{
    struct tok_batch *b;
    int rc = tok_batch_new(tmpl, threads, &b);
    if (rc != TM_OK)
        return rc;
    rc = tok_batch_encode(b, texts, lens, n, flags, outs, errs);
    tok_batch_free(b);
    return rc;
}
