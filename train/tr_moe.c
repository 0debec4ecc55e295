/* tr_moe.c: one transformer block, forward and backward: attention, the dense SwiGLU FFN, and
 * the Mixture-of-Experts FFN with its expert dispatch (gather the tokens routed to each expert,
 * run the expert on them as one block of rows, scatter the gated outputs back). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tm_err.h"
#include "tm_log.h"
#include "tm_mem.h"
#include "tr_model.h"

/* The counting sort of (token, slot) pairs by expert: rows of one expert are contiguous, and
 * within an expert they are in token order, so the dispatch is a pure function of sel. */
static void dispatch(int32_t *disp, int32_t *eoff, const int32_t *sel, int N, int K, int E)
{
    memset(eoff, 0, (size_t)(E + 1) * sizeof(*eoff));
    for (int i = 0; i < N * K; i++)
        eoff[sel[i] + 1]++;
    for (int e = 0; e < E; e++)
        eoff[e + 1] += eoff[e];
    int32_t *next = tm_xmalloc((size_t)E * sizeof(*next));
    memcpy(next, eoff, (size_t)E * sizeof(*next));
    for (int i = 0; i < N * K; i++)
        disp[next[sel[i]]++] = i;
    free(next);
}

/* SwiGLU expert: y = (silu(x w1^T) * (x w3^T)) w2^T over n rows, saving a, b, g. */
static int swiglu_fwd(const struct tr_gemm_cfg *g, float *y, float *fa, float *fb, float *fg,
                      const float *x, const float *w1, const float *w3, const float *w2, int n,
                      int D, int F)
{
    int rc;
    if ((rc = tr_linear_fwd(g, fa, x, w1, n, D, F)) != TM_OK ||
        (rc = tr_linear_fwd(g, fb, x, w3, n, D, F)) != TM_OK)
        return rc;
    tr_swiglu_fwd(fg, fa, fb, (size_t)n * F);
    return tr_linear_fwd(g, y, fg, w2, n, F, D);
}

/* Its backward pass: dx [n, D] written, weight gradients accumulated. tmp [n, D] and
 * da, db, dg [n, F] are scratch; dy is only read. */
static int swiglu_bwd(const struct tr_gemm_cfg *g, float *dx, float *tmp, float *da, float *db,
                      float *dg, float *gw1, float *gw3, float *gw2, const float *dy,
                      const float *x, const float *fa, const float *fb, const float *fg,
                      const float *w1, const float *w3, const float *w2, int n, int D, int F)
{
    int rc;
    if ((rc = tr_linear_bwd(g, dg, gw2, dy, fg, w2, n, F, D)) != TM_OK)
        return rc;
    tr_swiglu_bwd(da, db, dg, fa, fb, (size_t)n * F);
    if ((rc = tr_linear_bwd(g, dx, gw1, da, x, w1, n, D, F)) != TM_OK ||
        (rc = tr_linear_bwd(g, tmp, gw3, db, x, w3, n, D, F)) != TM_OK)
        return rc;
    tr_add(dx, dx, tmp, (size_t)n * D);
    return TM_OK;
}

static int moe_fwd(struct tr_model *m, const struct tr_block_off *o, struct tr_block_acts *ba,
                   float *out, int B, int T, float *bal)
{
    struct tr_gemm_cfg hp; /* higher precision: head, router, attention core */
    const struct tr_config *c = &m->cfg;
    const float *P = m->params;
    int N = B * T, D = c->d_model, E = c->n_routed_experts, K = c->top_k, S = c->n_shared_experts;
    int De = c->d_expert, rc;
    size_t ND = (size_t)N * D, NDe = (size_t)N * De, eD = (size_t)De * D;

    if ((rc = tr_linear_fwd(tr_gemm_high(&m->gemm, &hp), ba->u, ba->xn2, P + o->router, N, D, E)) !=
        TM_OK)
        return rc;
    const float *bias = m->router_bias + (size_t)o->moe_index * E;
    rc = tr_router_fwd(ba->s, ba->sel, ba->gate, ba->u, bias, N, E, K, c->route_scale);
    if (rc != TM_OK)
        return rc;
    int64_t *load = tm_xcalloc((size_t)E, sizeof(*load));
    tr_router_count_load(load, ba->sel, N, K, E);
    int64_t *acc = m->load + (size_t)o->moe_index * E;
    for (int e = 0; e < E; e++)
        acc[e] += load[e];
    free(load);
    if (c->balance_alpha > 0) {
        float lb = 0.0f;
        rc = tr_router_balance(&lb, ba->du_bal, ba->s, ba->sel, B, T, E, K, c->balance_alpha);
        if (rc != TM_OK)
            return rc;
        *bal += lb;
    }

    /* Shared experts first, using ey as the [N, D] scratch it is before the routed ones run. */
    memset(out, 0, ND * sizeof(float));
    for (int s = 0; s < S; s++) {
        rc = swiglu_fwd(&m->gemm, ba->ey, ba->sa + s * NDe, ba->sb + s * NDe, ba->sg + s * NDe,
                        ba->xn2, P + o->sw1 + s * eD, P + o->sw3 + s * eD, P + o->sw2 + s * eD, N,
                        D, De);
        if (rc != TM_OK)
            return rc;
        tr_add(out, out, ba->ey, ND);
    }

    dispatch(ba->disp, ba->eoff, ba->sel, N, K, E);
    for (int r = 0; r < N * K; r++)
        memcpy(ba->ex + (size_t)r * D, ba->xn2 + (size_t)(ba->disp[r] / K) * D,
               (size_t)D * sizeof(float));
    for (int e = 0; e < E; e++) {
        size_t r0 = (size_t)ba->eoff[e];
        int cnt = ba->eoff[e + 1] - ba->eoff[e];
        if (cnt == 0)
            continue;
        rc = swiglu_fwd(&m->gemm, ba->ey + r0 * D, ba->ea + r0 * De, ba->eb + r0 * De,
                        ba->eg + r0 * De, ba->ex + r0 * D, P + o->ew1 + e * eD, P + o->ew3 + e * eD,
                        P + o->ew2 + e * eD, cnt, D, De);
        if (rc != TM_OK)
            return rc;
    }
    /* Scatter in dispatch order (a fixed order, so the sums are deterministic). */
    for (int r = 0; r < N * K; r++) {
        int i = ba->disp[r];
        float gw = ba->gate[i];
        float *dst = out + (size_t)(i / K) * D;
        const float *y = ba->ey + (size_t)r * D;
        for (int d = 0; d < D; d++)
            dst[d] += gw * y[d];
    }
    return TM_OK;
}

/* d(loss)/d(ffn output) in dy [N, D] -> d(loss)/d(xn2) written to dxn [N, D]. */
static int moe_bwd(struct tr_model *m, const struct tr_block_off *o, struct tr_block_acts *ba,
                   struct tr_acts *a, float *grads, float *dxn, const float *dy, int N)
{
    struct tr_gemm_cfg hp; /* higher precision: head, router, attention core */
    const struct tr_config *c = &m->cfg;
    const float *P = m->params;
    int D = c->d_model, E = c->n_routed_experts, K = c->top_k, S = c->n_shared_experts;
    int De = c->d_expert, rc;
    size_t ND = (size_t)N * D, NDe = (size_t)N * De, eD = (size_t)De * D;

    memset(dxn, 0, ND * sizeof(float));
    for (int s = 0; s < S; s++) {
        rc = swiglu_bwd(&m->gemm, a->d_b, a->d_c, a->d_wide1, a->d_wide2, a->d_wide3,
                        grads + o->sw1 + s * eD, grads + o->sw3 + s * eD, grads + o->sw2 + s * eD,
                        dy, ba->xn2, ba->sa + s * NDe, ba->sb + s * NDe, ba->sg + s * NDe,
                        P + o->sw1 + s * eD, P + o->sw3 + s * eD, P + o->sw2 + s * eD, N, D, De);
        if (rc != TM_OK)
            return rc;
        tr_add(dxn, dxn, a->d_b, ND);
    }

    /* Per dispatch row: the expert output's gradient is gate * dy of its token, and the gate's
     * gradient is dy . expert output (in double: D terms of mixed sign). */
    for (int r = 0; r < N * K; r++) {
        int i = ba->disp[r];
        const float *g = dy + (size_t)(i / K) * D;
        const float *y = ba->ey + (size_t)r * D;
        float *dst = a->d_ex + (size_t)r * D;
        double dot = 0.0;
        for (int d = 0; d < D; d++) {
            dst[d] = ba->gate[i] * g[d];
            dot += (double)g[d] * y[d];
        }
        a->d_gate[i] = (float)dot;
    }
    for (int e = 0; e < E; e++) {
        size_t r0 = (size_t)ba->eoff[e];
        int cnt = ba->eoff[e + 1] - ba->eoff[e];
        if (cnt == 0)
            continue;
        /* dx lands in d_b's first cnt rows (cnt <= N: a token picks an expert at most once),
         * then replaces the consumed dy rows of d_ex. */
        rc = swiglu_bwd(&m->gemm, a->d_b, a->d_c, a->d_wide1, a->d_wide2, a->d_wide3,
                        grads + o->ew1 + e * eD, grads + o->ew3 + e * eD, grads + o->ew2 + e * eD,
                        a->d_ex + r0 * D, ba->ex + r0 * D, ba->ea + r0 * De, ba->eb + r0 * De,
                        ba->eg + r0 * De, P + o->ew1 + e * eD, P + o->ew3 + e * eD,
                        P + o->ew2 + e * eD, cnt, D, De);
        if (rc != TM_OK)
            return rc;
        memcpy(a->d_ex + r0 * D, a->d_b, (size_t)cnt * D * sizeof(float));
    }
    for (int r = 0; r < N * K; r++) {
        float *dst = dxn + (size_t)(ba->disp[r] / K) * D;
        tr_add(dst, dst, a->d_ex + (size_t)r * D, (size_t)D);
    }

    tr_router_bwd(a->d_u, a->d_gate, ba->s, ba->sel, N, E, K, c->route_scale);
    if (c->balance_alpha > 0)
        tr_add(a->d_u, a->d_u, ba->du_bal, (size_t)N * E);
    rc = tr_linear_bwd(tr_gemm_high(&m->gemm, &hp), a->d_b, grads + o->router, a->d_u, ba->xn2,
                       P + o->router, N, D, E);
    if (rc != TM_OK)
        return rc;
    tr_add(dxn, dxn, a->d_b, ND);
    return TM_OK;
}

int tr_block_fwd(struct tr_model *m, const struct tr_block_off *o, struct tr_block_acts *ba,
                 float *out, int B, int T, float *bal)
{
    struct tr_gemm_cfg hp; /* higher precision: head, router, attention core */
    const struct tr_config *c = &m->cfg;
    const float *P = m->params;
    int N = B * T, D = c->d_model, H = c->n_heads, Hkv = c->n_kv_heads, hd = c->head_dim;
    int qd = H * hd, kvd = Hkv * hd, rc;
    size_t ND = (size_t)N * D;

    tr_rmsnorm_fwd(ba->xn1, ba->rstd1, ba->x_in, P + o->attn_norm, N, D, c->norm_eps);
    if ((rc = tr_linear_fwd(&m->gemm, ba->q, ba->xn1, P + o->wq, N, D, qd)) != TM_OK ||
        (rc = tr_linear_fwd(&m->gemm, ba->k, ba->xn1, P + o->wk, N, D, kvd)) != TM_OK ||
        (rc = tr_linear_fwd(&m->gemm, ba->v, ba->xn1, P + o->wv, N, D, kvd)) != TM_OK)
        return rc;
    tr_rope_fwd(ba->q, ba->q, B, T, H, hd, c->rope_theta, 0);
    tr_rope_fwd(ba->k, ba->k, B, T, Hkv, hd, c->rope_theta, 0);
    rc = tr_attn_fwd(tr_gemm_high(&m->gemm, &hp), ba->att, ba->lse, ba->q, ba->k, ba->v, B, T, H,
                     Hkv, hd, 1.0f / sqrtf((float)hd), m->threads);
    if (rc != TM_OK)
        return rc;
    if ((rc = tr_linear_fwd(&m->gemm, ba->x_mid, ba->att, P + o->wo, N, qd, D)) != TM_OK)
        return rc;
    tr_add(ba->x_mid, ba->x_mid, ba->x_in, ND);
    tr_rmsnorm_fwd(ba->xn2, ba->rstd2, ba->x_mid, P + o->ffn_norm, N, D, c->norm_eps);
    if (o->moe)
        rc = moe_fwd(m, o, ba, out, B, T, bal);
    else
        rc = swiglu_fwd(&m->gemm, out, ba->fa, ba->fb, ba->fg, ba->xn2, P + o->w1, P + o->w3,
                        P + o->w2, N, D, c->d_ff);
    if (rc != TM_OK)
        return rc;
    tr_add(out, out, ba->x_mid, ND);
    return TM_OK;
}

int tr_block_bwd(struct tr_model *m, const struct tr_block_off *o, struct tr_block_acts *ba,
                 struct tr_acts *a, float *grads, int B, int T)
{
    struct tr_gemm_cfg hp; /* higher precision: head, router, attention core */
    const struct tr_config *c = &m->cfg;
    const float *P = m->params;
    int N = B * T, D = c->d_model, H = c->n_heads, Hkv = c->n_kv_heads, hd = c->head_dim;
    int qd = H * hd, kvd = Hkv * hd, rc;
    size_t ND = (size_t)N * D;

    /* FFN branch: d_res is d(out) = d(ffn output) = the residual's share of d(x_mid). */
    if (o->moe)
        rc = moe_bwd(m, o, ba, a, grads, a->d_a, a->d_res, N);
    else
        rc = swiglu_bwd(&m->gemm, a->d_a, a->d_b, a->d_wide1, a->d_wide2, a->d_wide3, grads + o->w1,
                        grads + o->w3, grads + o->w2, a->d_res, ba->xn2, ba->fa, ba->fb, ba->fg,
                        P + o->w1, P + o->w3, P + o->w2, N, D, c->d_ff);
    if (rc != TM_OK)
        return rc;
    tr_rmsnorm_bwd(a->d_b, grads + o->ffn_norm, a->d_a, ba->x_mid, P + o->ffn_norm, ba->rstd2, N,
                   D);
    tr_add(a->d_res, a->d_res, a->d_b, ND);

    /* Attention branch: d_res is now d(x_mid). */
    rc = tr_linear_bwd(&m->gemm, a->d_wide1, grads + o->wo, a->d_res, ba->att, P + o->wo, N, qd, D);
    if (rc != TM_OK)
        return rc;
    rc = tr_attn_bwd(tr_gemm_high(&m->gemm, &hp), a->d_q, a->d_k, a->d_v, a->d_wide1, ba->q, ba->k,
                     ba->v, ba->lse, B, T, H, Hkv, hd, 1.0f / sqrtf((float)hd), m->threads);
    if (rc != TM_OK)
        return rc;
    tr_rope_bwd(a->d_q, a->d_q, B, T, H, hd, c->rope_theta, 0);
    tr_rope_bwd(a->d_k, a->d_k, B, T, Hkv, hd, c->rope_theta, 0);
    if ((rc = tr_linear_bwd(&m->gemm, a->d_a, grads + o->wq, a->d_q, ba->xn1, P + o->wq, N, D,
                            qd)) != TM_OK)
        return rc;
    if ((rc = tr_linear_bwd(&m->gemm, a->d_b, grads + o->wk, a->d_k, ba->xn1, P + o->wk, N, D,
                            kvd)) != TM_OK)
        return rc;
    tr_add(a->d_a, a->d_a, a->d_b, ND);
    if ((rc = tr_linear_bwd(&m->gemm, a->d_b, grads + o->wv, a->d_v, ba->xn1, P + o->wv, N, D,
                            kvd)) != TM_OK)
        return rc;
    tr_add(a->d_a, a->d_a, a->d_b, ND);
    tr_rmsnorm_bwd(a->d_b, grads + o->attn_norm, a->d_a, ba->x_in, P + o->attn_norm, ba->rstd1, N,
                   D);
    tr_add(a->d_res, a->d_res, a->d_b, ND);
    return TM_OK;
}
