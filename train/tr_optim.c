/* tr_optim.c: AdamW with decoupled weight decay and the warmup + cosine learning-rate
 * schedule. The formulas are in tr_train.h; this file only adds why the details are as they
 * are. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tm_mem.h"
#include "tr_internal.h"
#include "tr_ops.h"
#include "tr_train.h"

static const double tr_pi = 3.14159265358979323846;

double tr_lr_at(const struct tr_train_cfg *t, int64_t s)
{
    if (s < 0)
        s = 0;
    if (s < t->warmup) /* (s + 1): the first update already moves, with lr / warmup */
        return t->lr * (double)(s + 1) / (double)t->warmup;
    int64_t span = (int64_t)t->steps - t->warmup;
    if (span < 1)
        span = 1;
    double p = (double)(s - t->warmup) / (double)span;
    if (p > 1.0)
        p = 1.0;
    return t->min_lr + (t->lr - t->min_lr) * 0.5 * (1.0 + cos(tr_pi * p));
}

TR_VECTOR_CLONES void tr_adamw_update(float *p, const float *g, float *m, float *v, size_t n,
                                      float lr, float wd, float b1, float b2, float eps,
                                      float gscale, int64_t t)
{
    /* The bias corrections in double: b2^t for b2 = 0.999 and small t is 1 - tiny, where float
     * would lose most of the digits of 1 - b2^t. */
    float c1 = (float)(1.0 / (1.0 - pow((double)b1, (double)t)));
    float c2 = (float)(1.0 / (1.0 - pow((double)b2, (double)t)));
    float decay = 1.0f - lr * wd;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * gscale;
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float upd = (mi * c1) / (sqrtf(vi * c2) + eps);
        p[i] = p[i] * decay - lr * upd;
    }
}

int tr_tensor_decays(const struct tr_tensor *t)
{
    return t->ndim >= 2 && strcmp(t->name, "embed") != 0;
}

/* One piece of the update: n values of one tensor starting at off. */
struct adam_piece {
    size_t off, n;
    float wd;
};

struct adam_job {
    struct adam_piece *pieces;
    float *params, *mom, *vel;
    const float *grads;
    float lr, b1, b2, eps, gscale;
    int64_t update;
    int bf16_moments;
};

#define ADAM_PIECE ((size_t)1 << 16)

static void adam_run_piece(void *ctx, size_t i)
{
    const struct adam_job *j = ctx;
    const struct adam_piece *pc = &j->pieces[i];
    tr_adamw_update(j->params + pc->off, j->grads + pc->off, j->mom + pc->off, j->vel + pc->off,
                    pc->n, j->lr, pc->wd, j->b1, j->b2, j->eps, j->gscale, j->update);
    if (j->bf16_moments) { /* stored as BF16: the next update reads the rounded values */
        tr_bf16_round_array(j->mom + pc->off, j->mom + pc->off, pc->n);
        tr_bf16_round_array(j->vel + pc->off, j->vel + pc->off, pc->n);
    }
}

void tr_optim_step(struct tr_model *m, const float *grads, float *mom, float *vel,
                   const struct tr_train_cfg *t, float lr, float gscale, int64_t update)
{
    /* Elementwise, so cutting each tensor into pieces on t->threads workers changes nothing. */
    size_t n = 0;
    for (int i = 0; i < m->n_tensors; i++)
        n += (m->tensors[i].numel + ADAM_PIECE - 1) / ADAM_PIECE;
    struct adam_job j = {
        .pieces = tm_xmalloc((n ? n : 1) * sizeof(struct adam_piece)),
        .params = m->params,
        .mom = mom,
        .vel = vel,
        .grads = grads,
        .lr = lr,
        .b1 = (float)t->beta1,
        .b2 = (float)t->beta2,
        .eps = (float)t->eps,
        .gscale = gscale,
        .update = update,
        .bf16_moments = tr_train_moments_bf16(t),
    };
    size_t k = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const struct tr_tensor *tt = &m->tensors[i];
        float wd = tr_tensor_decays(tt) ? (float)t->weight_decay : 0.0f;
        for (size_t off = 0; off < tt->numel; off += ADAM_PIECE)
            j.pieces[k++] = (struct adam_piece){
                tt->offset + off, tt->numel - off < ADAM_PIECE ? tt->numel - off : ADAM_PIECE, wd};
    }
    tr_parallel_for(t->threads, n, adam_run_piece, &j);
    free(j.pieces);
}
