/* tr_attn: causal grouped-query self-attention, forward and backward (see tr_ops.h).
 *
 * Each (sequence, head) is a pair of small GEMMs on strided views of the [B, T, heads, hd]
 * tensors, with the row softmax in between. Workers take whole pairs from an atomic counter,
 * and no value is ever summed across workers, which is what makes the results independent of
 * the thread count. */
#include "tr_ops.h"

#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "tm_err.h"
#include "tm_log.h"
#include "tm_mem.h"
#include "tm_thread.h"

struct attn_job {
    const struct tr_gemm_cfg *g; /* the caller's, then &g1 (run()) */
    struct tr_gemm_cfg g1;       /* its copy with threads 1 */
    int B, T, H, Hkv, hd;
    float scale;
    /* forward */
    float *out, *lse_out;
    /* backward */
    float *dq, *dk, *dv;
    const float *dout, *lse;
    const float *q, *k, *v;
    int n_items;
    atomic_int next;
    atomic_int err; /* the first error a worker met; TM_OK while none */
};

static int check_shape(const char *what, int B, int T, int H, int Hkv, int hd)
{
    if (B <= 0 || T <= 0 || H <= 0 || Hkv <= 0 || hd <= 0 || H % Hkv != 0) {
        tm_log_error("%s: bad shape B %d T %d H %d Hkv %d hd %d (H must be a multiple of Hkv)",
                     what, B, T, H, Hkv, hd);
        return TM_ERR_USAGE;
    }
    /* Work items are counted in int; the backward scratch is 2 T x T floats. */
    if ((size_t)B * (size_t)H > (size_t)INT_MAX ||
        (size_t)T * (size_t)T > SIZE_MAX / (2 * sizeof(float))) {
        tm_log_error("%s: B %d x H %d work items or a %d x %d score matrix is too big", what, B, H,
                     T, T);
        return TM_ERR_TOOBIG;
    }
    return TM_OK;
}

static void set_err(struct attn_job *j, int rc)
{
    int expect = TM_OK;
    atomic_compare_exchange_strong(&j->err, &expect, rc);
}

/* Offsets of head h of sequence b in a [B, T, heads, hd] tensor, and its row stride. */
static size_t head_off(int b, int h, int T, int heads, int hd)
{
    return (size_t)b * T * heads * hd + (size_t)h * hd;
}

/* S = scale * q_h k_kh^T, T x T. */
static int scores(const struct attn_job *j, float *S, int b, int h, int kh)
{
    return tr_gemm(j->g, 0, 1, j->T, j->T, j->hd, j->scale,
                   j->q + head_off(b, h, j->T, j->H, j->hd), j->H * j->hd,
                   j->k + head_off(b, kh, j->T, j->Hkv, j->hd), j->Hkv * j->hd, 0.0f, S, j->T);
}

static void fwd_worker(void *ctx, int idx)
{
    struct attn_job *j = ctx;
    int T = j->T;
    float *S = NULL;
    int item;
    while (atomic_load(&j->err) == TM_OK && (item = atomic_fetch_add(&j->next, 1)) < j->n_items) {
        if (!S)
            S = tm_xmalloc((size_t)T * T * sizeof(float));
        int b = item / j->H, h = item % j->H, kh = h / (j->H / j->Hkv);
        int rc = scores(j, S, b, h, kh);
        if (rc != TM_OK) {
            set_err(j, rc);
            break;
        }
        float *lse = j->lse_out + ((size_t)b * j->H + h) * T;
        for (int t = 0; t < T; t++) {
            float *row = S + (size_t)t * T;
            float mx = row[0];
            for (int s = 1; s <= t; s++)
                mx = row[s] > mx ? row[s] : mx;
            double sum = 0.0;
            for (int s = 0; s <= t; s++) {
                row[s] = expf(row[s] - mx);
                sum += row[s];
            }
            float inv = (float)(1.0 / sum);
            for (int s = 0; s <= t; s++)
                row[s] *= inv;
            for (int s = t + 1; s < T; s++)
                row[s] = 0.0f; /* the causal mask */
            lse[t] = (float)(mx + log(sum));
        }
        rc = tr_gemm(j->g, 0, 0, T, j->hd, T, 1.0f, S, T, j->v + head_off(b, kh, T, j->Hkv, j->hd),
                     j->Hkv * j->hd, 0.0f, j->out + head_off(b, h, T, j->H, j->hd), j->H * j->hd);
        if (rc != TM_OK) {
            set_err(j, rc);
            break;
        }
    }
    free(S);
    (void)idx;
}

static int run(struct attn_job *j, void (*fn)(void *, int), int threads)
{
    /* Each worker computes its pairs' small products alone: the split is over the pairs. */
    j->g1 = j->g ? *j->g : (struct tr_gemm_cfg){.mode = TR_GEMM_F32};
    j->g1.threads = 1;
    j->g = &j->g1;
    atomic_init(&j->next, 0);
    atomic_init(&j->err, TM_OK);
    if (threads < 1)
        threads = 1;
    if (threads > j->n_items)
        threads = j->n_items;
    tm_run_threads(threads, fn, j);
    return atomic_load(&j->err);
}

int tr_attn_fwd(const struct tr_gemm_cfg *g, float *out, float *lse, const float *q, const float *k,
                const float *v, int B, int T, int H, int Hkv, int hd, float scale, int threads)
{
    int rc = check_shape("tr_attn_fwd", B, T, H, Hkv, hd);
    if (rc != TM_OK)
        return rc;
    struct attn_job j = {.g = g,
                         .B = B,
                         .T = T,
                         .H = H,
                         .Hkv = Hkv,
                         .hd = hd,
                         .scale = scale,
                         .out = out,
                         .lse_out = lse,
                         .q = q,
                         .k = k,
                         .v = v,
                         .n_items = B * H};
    rc = run(&j, fwd_worker, threads);
    if (rc != TM_OK)
        tm_log_error("tr_attn_fwd: B %d T %d H %d Hkv %d hd %d failed", B, T, H, Hkv, hd);
    return rc;
}

/* One (sequence, kv head): every query head of its group in head order, so dk and dv of the
 * pair are sums in a fixed order. */
static int bwd_pair(struct attn_job *j, float *P, float *dP, int b, int kh)
{
    int T = j->T, hd = j->hd, group = j->H / j->Hkv;
    int ldq = j->H * hd, ldk = j->Hkv * hd;
    size_t kvo = head_off(b, kh, T, j->Hkv, hd);
    for (int gi = 0; gi < group; gi++) {
        int h = kh * group + gi;
        size_t qo = head_off(b, h, T, j->H, hd);
        float beta = gi == 0 ? 0.0f : 1.0f; /* the first head writes dk, dv; the rest add */
        int rc = scores(j, P, b, h, kh);
        if (rc == TM_OK) /* dP = dout_h v^T */
            rc = tr_gemm(j->g, 0, 1, T, T, hd, 1.0f, j->dout + qo, ldq, j->v + kvo, ldk, 0.0f, dP,
                         T);
        if (rc != TM_OK)
            return rc;
        const float *lse = j->lse + ((size_t)b * j->H + h) * T;
        for (int t = 0; t < T; t++) {
            float *p = P + (size_t)t * T, *dp = dP + (size_t)t * T;
            double rowdot = 0.0;
            for (int s = 0; s <= t; s++) {
                p[s] = expf(p[s] - lse[t]);
                rowdot += (double)p[s] * dp[s];
            }
            for (int s = 0; s <= t; s++)
                dp[s] = p[s] * (dp[s] - (float)rowdot); /* dS, in place of dP */
            for (int s = t + 1; s < T; s++)
                p[s] = dp[s] = 0.0f;
        }
        /* dv += P^T dout_h; dq_h = scale dS k; dk += scale dS^T q_h. */
        rc = tr_gemm(j->g, 1, 0, T, hd, T, 1.0f, P, T, j->dout + qo, ldq, beta, j->dv + kvo, ldk);
        if (rc == TM_OK)
            rc = tr_gemm(j->g, 0, 0, T, hd, T, j->scale, dP, T, j->k + kvo, ldk, 0.0f, j->dq + qo,
                         ldq);
        if (rc == TM_OK)
            rc = tr_gemm(j->g, 1, 0, T, hd, T, j->scale, dP, T, j->q + qo, ldq, beta, j->dk + kvo,
                         ldk);
        if (rc != TM_OK)
            return rc;
    }
    return TM_OK;
}

static void bwd_worker(void *ctx, int idx)
{
    struct attn_job *j = ctx;
    float *P = NULL;
    int item;
    while (atomic_load(&j->err) == TM_OK && (item = atomic_fetch_add(&j->next, 1)) < j->n_items) {
        if (!P)
            P = tm_xmalloc((size_t)2 * j->T * j->T * sizeof(float));
        int rc = bwd_pair(j, P, P + (size_t)j->T * j->T, item / j->Hkv, item % j->Hkv);
        if (rc != TM_OK) {
            set_err(j, rc);
            break;
        }
    }
    free(P);
    (void)idx;
}

int tr_attn_bwd(const struct tr_gemm_cfg *g, float *dq, float *dk, float *dv, const float *dout,
                const float *q, const float *k, const float *v, const float *lse, int B, int T,
                int H, int Hkv, int hd, float scale, int threads)
{
    int rc = check_shape("tr_attn_bwd", B, T, H, Hkv, hd);
    if (rc != TM_OK)
        return rc;
    struct attn_job j = {.g = g,
                         .B = B,
                         .T = T,
                         .H = H,
                         .Hkv = Hkv,
                         .hd = hd,
                         .scale = scale,
                         .dq = dq,
                         .dk = dk,
                         .dv = dv,
                         .dout = dout,
                         .lse = lse,
                         .q = q,
                         .k = k,
                         .v = v,
                         .n_items = B * Hkv};
    rc = run(&j, bwd_worker, threads);
    if (rc != TM_OK)
        tm_log_error("tr_attn_bwd: B %d T %d H %d Hkv %d hd %d failed", B, T, H, Hkv, hd);
    return rc;
}
