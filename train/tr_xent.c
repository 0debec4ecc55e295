/* tr_xent: softmax cross-entropy over a large vocabulary (see tr_ops.h), the trainer's widest
 * non-GEMM operation: with V = 50257 it touches more values than every other op of a small
 * model together, so its rows run on several threads and its exponentials are vectorized. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tm_err.h"
#include "tm_log.h"
#include "tm_mem.h"
#include "tr_internal.h"
#include "tr_ops.h"

/* Lanes of the partial sums and maxima: the loops below keep LANES independent accumulators,
 * which the compiler maps onto vector registers without reassociating anything, so the result
 * is the same with and without vectorization. */
#define LANES 8

/* Below this many logits (N V) the rows run on the calling thread. */
#define XENT_SPLIT_VALUES (1 << 16)

/* e^x for x <= 0, in float, branch-free so that loops calling it vectorize: x = n ln2 + r with
 * n = round(x / ln2) (rounded by adding 1.5 * 2^23) and |r| <= ln2 / 2, ln2 split in two parts
 * (Cody and Waite) so that r is exact; e^r by its Taylor series to degree 7 (truncation error
 * under 2^-27 relative), scaled by 2^n built in the exponent field. Relative error within a
 * few float ulps. x < -87 (past float's normal range) gives 0; NaN stays NaN. */
TR_INLINE float exp_nonpos(float x)
{
    const float round_magic = 12582912.0f; /* 1.5 * 2^23 */
    float xc = x < -87.0f ? -87.0f : x;
    float t = xc * 1.44269504088896341f + round_magic;
    float n = t - round_magic;
    int32_t ti;
    memcpy(&ti, &t, sizeof(ti));
    int32_t ni = ti - 0x4B400000;          /* the integer n: round_magic's bits subtracted */
    float r = xc - n * 0.693145751953125f; /* ln2's top bits: n * hi is exact */
    r = r - n * 1.428606765330187e-06f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits = (ni + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof(scale));
    float e = p * scale;
    return x < -87.0f ? 0.0f : e;
}

TR_INLINE float row_max(const float *l, int V)
{
    float m[LANES];
    for (int k = 0; k < LANES; k++)
        m[k] = l[0];
    int j = 0;
    for (; j + LANES <= V; j += LANES)
        for (int k = 0; k < LANES; k++)
            m[k] = l[j + k] > m[k] ? l[j + k] : m[k];
    for (; j < V; j++)
        m[0] = l[j] > m[0] ? l[j] : m[0];
    float mx = m[0];
    for (int k = 1; k < LANES; k++)
        mx = m[k] > mx ? m[k] : mx;
    return mx;
}

/* Values per chunk of row_sum_exp(): the exponentials go to a local buffer first, which the
 * compiler knows aliases nothing, so the loop vectorizes even when e is the row itself. */
#define EXP_CHUNK 512

/* Sum of e^(l[j] - mx), also stored to e[] when e is not NULL (e may equal l). */
TR_INLINE double row_sum_exp(float *e, const float *l, float mx, int V)
{
    float acc[LANES] = {0};
    float buf[EXP_CHUNK];
    for (int j0 = 0; j0 < V; j0 += EXP_CHUNK) {
        int n = V - j0 < EXP_CHUNK ? V - j0 : EXP_CHUNK;
        for (int k = 0; k < n; k++)
            buf[k] = exp_nonpos(l[j0 + k] - mx);
        if (e)
            memcpy(e + j0, buf, (size_t)n * sizeof(float));
        int k = 0;
        for (; k + LANES <= n; k += LANES)
            for (int q = 0; q < LANES; q++)
                acc[q] += buf[k + q];
        for (; k < n; k++)
            acc[0] += buf[k];
    }
    double sum = 0.0;
    for (int q = 0; q < LANES; q++)
        sum += acc[q];
    return sum;
}

struct xent_job {
    const float *logits;
    float *dlogits;
    const int32_t *targets;
    int V;
    double gscale;
    double *row_loss;
};

/* One row: its loss into row_loss[i], its gradient row into dlogits (may equal logits). */
TR_VECTOR_CLONES static void xent_row(void *ctx, size_t i)
{
    const struct xent_job *j = ctx;
    int V = j->V;
    const float *l = j->logits + i * (size_t)V;
    float *d = j->dlogits ? j->dlogits + i * (size_t)V : NULL;
    int32_t tg = j->targets[i];
    if (tg == TR_XENT_IGNORE) {
        j->row_loss[i] = 0.0;
        if (d)
            memset(d, 0, (size_t)V * sizeof(float));
        return;
    }
    float mx = row_max(l, V);
    float lt = l[tg]; /* read before d (which may be logits) is written */
    double sum = row_sum_exp(d, l, mx, V);
    double lse = (double)mx + log(sum);
    j->row_loss[i] = lse - lt;
    if (d) {
        /* d holds e^(l - mx); softmax = that / sum. */
        double p_t = d[tg] / sum;
        float f = (float)(j->gscale / sum);
        for (int k = 0; k < V; k++)
            d[k] *= f;
        d[tg] = (float)(j->gscale * (p_t - 1.0));
    }
}

int tr_xent(float *loss, int *n_counted, float *dlogits, const float *logits,
            const int32_t *targets, int N, int V, float grad_scale, int threads)
{
    int count = 0;
    for (int i = 0; i < N; i++) {
        if (targets[i] == TR_XENT_IGNORE)
            continue;
        if (targets[i] < 0 || targets[i] >= V) {
            tm_log_error("tr_xent: target %d at row %d is outside [0, %d)", (int)targets[i], i, V);
            return TM_ERR_USAGE;
        }
        count++;
    }
    struct xent_job j = {
        .logits = logits,
        .dlogits = dlogits,
        .targets = targets,
        .V = V,
        /* The gradient of a mean over count positions; 0 when none counts (no division by 0). */
        .gscale = count ? (double)grad_scale / count : 0.0,
        .row_loss = tm_xmalloc((N > 0 ? (size_t)N : 1) * sizeof(double)),
    };
    if ((double)N * V < XENT_SPLIT_VALUES)
        threads = 1;
    tr_parallel_for(threads, N > 0 ? (size_t)N : 0, xent_row, &j);
    double total = 0.0;
    for (int i = 0; i < N; i++) /* in row order, whatever thread computed each row */
        total += j.row_loss[i];
    free(j.row_loss);
    *loss = count ? (float)(total / count) : 0.0f;
    if (n_counted)
        *n_counted = count;
    return TM_OK;
}
