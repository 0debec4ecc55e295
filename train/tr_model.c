/* tr_model.c: the parameter layout and initialization, the activations, the bias update, and
 * the forward and backward passes of the whole network (embedding, blocks, head, MTP). The
 * blocks themselves (attention, dense FFN, MoE) are in tr_moe.c. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tm_err.h"
#include "tm_log.h"
#include "tm_mem.h"
#include "tm_rand.h"
#include "tr_model.h"

/* ---- layout -------------------------------------------------------------------------------- */

enum init_kind { INIT_NORMAL, INIT_OUT, INIT_ONES };

struct layout {
    struct tr_model *m;
    unsigned char *kinds; /* per tensor */
    int cap;
};

/* Appends tensor "<prefix>.<suffix>" (or "<suffix>" for an empty prefix). */
static size_t add_tensor(struct layout *L, enum init_kind kind, int ndim, int d0, int d1, int d2,
                         const char *prefix, const char *suffix)
{
    struct tr_model *m = L->m;
    if (m->n_tensors == L->cap) {
        L->cap = L->cap ? 2 * L->cap : 64;
        m->tensors = tm_xreallocarray(m->tensors, (size_t)L->cap, sizeof(*m->tensors));
        L->kinds = tm_xreallocarray(L->kinds, (size_t)L->cap, 1);
    }
    struct tr_tensor *t = &m->tensors[m->n_tensors];
    memset(t, 0, sizeof(*t));
    snprintf(t->name, sizeof(t->name), "%s%s%s", prefix, *prefix ? "." : "", suffix);
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = ndim > 1 ? d1 : 0;
    t->shape[2] = ndim > 2 ? d2 : 0;
    t->numel = (size_t)d0 * (size_t)(ndim > 1 ? d1 : 1) * (size_t)(ndim > 2 ? d2 : 1);
    t->offset = m->n_params;
    m->n_params += t->numel;
    L->kinds[m->n_tensors++] = (unsigned char)kind;
    return t->offset;
}

#define TEN1(kind, d0, suffix)         add_tensor(L, kind, 1, d0, 0, 0, prefix, suffix)
#define TEN2(kind, d0, d1, suffix)     add_tensor(L, kind, 2, d0, d1, 0, prefix, suffix)
#define TEN3(kind, d0, d1, d2, suffix) add_tensor(L, kind, 3, d0, d1, d2, prefix, suffix)

static void layout_block(struct layout *L, struct tr_block_off *o, const char *prefix, int moe,
                         int moe_index)
{
    const struct tr_config *c = &L->m->cfg;
    int D = c->d_model, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    memset(o, 0xff, sizeof(*o)); /* every offset SIZE_MAX until set */
    o->moe = moe;
    o->moe_index = moe ? moe_index : -1;
    o->attn_norm = TEN1(INIT_ONES, D, "attn_norm");
    o->wq = TEN2(INIT_NORMAL, qd, D, "attn.wq");
    o->wk = TEN2(INIT_NORMAL, kvd, D, "attn.wk");
    o->wv = TEN2(INIT_NORMAL, kvd, D, "attn.wv");
    o->wo = TEN2(INIT_OUT, D, qd, "attn.wo");
    o->ffn_norm = TEN1(INIT_ONES, D, "ffn_norm");
    if (!moe) {
        o->w1 = TEN2(INIT_NORMAL, c->d_ff, D, "ffn.w1");
        o->w3 = TEN2(INIT_NORMAL, c->d_ff, D, "ffn.w3");
        o->w2 = TEN2(INIT_OUT, D, c->d_ff, "ffn.w2");
        return;
    }
    int E = c->n_routed_experts, S = c->n_shared_experts, De = c->d_expert;
    o->router = TEN2(INIT_NORMAL, E, D, "moe.router");
    if (S > 0) {
        o->sw1 = TEN3(INIT_NORMAL, S, De, D, "moe.shared.w1");
        o->sw3 = TEN3(INIT_NORMAL, S, De, D, "moe.shared.w3");
        o->sw2 = TEN3(INIT_OUT, S, D, De, "moe.shared.w2");
    }
    o->ew1 = TEN3(INIT_NORMAL, E, De, D, "moe.experts.w1");
    o->ew3 = TEN3(INIT_NORMAL, E, De, D, "moe.experts.w3");
    o->ew2 = TEN3(INIT_OUT, E, D, De, "moe.experts.w2");
}

/* A standard normal draw by Box-Muller from two 53-bit uniforms; u1 in (0, 1] keeps log finite. */
static double normal(uint64_t *st)
{
    double u1 = ((double)(tm_splitmix64(st) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
    double u2 = (double)(tm_splitmix64(st) >> 11) * (1.0 / 9007199254740992.0);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

int tr_model_init(struct tr_model *m, const struct tr_config *cfg)
{
    memset(m, 0, sizeof(*m));
    m->cfg = *cfg;
    if (tr_config_check(&m->cfg) != TM_OK)
        return TM_ERR_USAGE;
    const struct tr_config *c = &m->cfg;
    int D = c->d_model, V = c->vocab_size;
    struct layout Lv = {m, NULL, 0}, *L = &Lv;
    const char *prefix = "";

    m->embed = add_tensor(L, INIT_NORMAL, 2, V, D, 0, "", "embed");
    m->blocks = tm_xcalloc((size_t)c->layers, sizeof(*m->blocks));
    for (int l = 0; l < c->layers; l++) {
        char name[32];
        snprintf(name, sizeof(name), "layers.%d", l);
        int moe = l >= c->dense_layers;
        layout_block(L, &m->blocks[l], name, moe, m->n_moe_layers);
        m->n_moe_layers += moe;
    }
    m->norm = add_tensor(L, INIT_ONES, 1, D, 0, 0, "", "norm");
    m->head = add_tensor(L, INIT_NORMAL, 2, V, D, 0, "", "head");
    if (c->mtp_depth) {
        prefix = "mtp";
        m->mtp_norm_h = TEN1(INIT_ONES, D, "norm_h");
        m->mtp_norm_e = TEN1(INIT_ONES, D, "norm_e");
        m->mtp_proj = TEN2(INIT_NORMAL, D, 2 * D, "proj");
        layout_block(L, &m->mtp_block, "mtp.block", 0, -1);
        m->mtp_norm = TEN1(INIT_ONES, D, "norm");
    } else {
        memset(&m->mtp_block, 0xff, sizeof(m->mtp_block));
        m->mtp_norm_h = m->mtp_norm_e = m->mtp_proj = m->mtp_norm = SIZE_MAX;
    }
    if (m->n_params != tr_config_param_count(c)) {
        tm_log_error("model: layout has %zu parameters, the closed form %zu", m->n_params,
                     tr_config_param_count(c));
        free(Lv.kinds);
        tr_model_release(m);
        return TM_ERR_INTERNAL;
    }

    m->params = tm_xmalloc(m->n_params * sizeof(float));
    uint64_t st = c->seed;
    float std_out = c->init_std / sqrtf(2.0f * (float)c->layers);
    for (int i = 0; i < m->n_tensors; i++) {
        const struct tr_tensor *t = &m->tensors[i];
        float *p = m->params + t->offset;
        for (size_t j = 0; j < t->numel; j++) {
            if (Lv.kinds[i] == INIT_ONES)
                p[j] = 1.0f;
            else
                p[j] = (float)normal(&st) * (Lv.kinds[i] == INIT_OUT ? std_out : c->init_std);
        }
    }
    free(Lv.kinds);
    size_t nb = (size_t)m->n_moe_layers * (size_t)c->n_routed_experts;
    m->router_bias = tm_xcalloc(nb ? nb : 1, sizeof(float));
    m->load = tm_xcalloc(nb ? nb : 1, sizeof(int64_t));
    m->gemm.mode = TR_GEMM_F32;
    m->gemm.threads = 1;
    m->threads = 1;
    return TM_OK;
}

void tr_model_release(struct tr_model *m)
{
    if (!m)
        return;
    free(m->params);
    free(m->tensors);
    free(m->blocks);
    free(m->router_bias);
    free(m->load);
    memset(m, 0, sizeof(*m));
}

const struct tr_tensor *tr_model_tensor(const struct tr_model *m, const char *name)
{
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name))
            return &m->tensors[i];
    return NULL;
}

void tr_model_load_clear(struct tr_model *m)
{
    memset(m->load, 0, (size_t)m->n_moe_layers * (size_t)m->cfg.n_routed_experts * sizeof(int64_t));
}

void tr_model_bias_update(struct tr_model *m, float gamma)
{
    int E = m->cfg.n_routed_experts;
    for (int l = 0; l < m->n_moe_layers; l++)
        tr_router_bias_update(m->router_bias + (size_t)l * E, m->load + (size_t)l * E, E, gamma);
    tr_model_load_clear(m);
}

/* ---- activations ---------------------------------------------------------------------------- */

/* One zeroed buffer of n elements of `size` bytes, recorded for release; NULL (nothing
 * allocated) when n * size overflows. */
static void *acts_alloc(struct tr_acts *a, size_t n, size_t size, int *bad)
{
    size_t bytes;
    if (tm_mul_overflow(n ? n : 1, size, &bytes) != 0) {
        *bad = 1;
        return NULL;
    }
    a->allocs = tm_xreallocarray(a->allocs, (size_t)a->n_allocs + 1, sizeof(*a->allocs));
    void *p = tm_xcalloc(1, bytes);
    a->allocs[a->n_allocs++] = p;
    return p;
}

static size_t mul3(size_t x, size_t y, size_t z, int *bad)
{
    size_t r;
    if (tm_mul_overflow(x, y, &r) || tm_mul_overflow(r, z, &r)) {
        *bad = 1;
        return 0;
    }
    return r;
}

static void block_acts_init(struct tr_acts *a, struct tr_block_acts *b, const struct tr_config *c,
                            int moe, size_t N, int *bad)
{
    size_t D = (size_t)c->d_model, qd = (size_t)c->n_heads * (size_t)c->head_dim;
    size_t kvd = (size_t)c->n_kv_heads * (size_t)c->head_dim, F = (size_t)c->d_ff;
    size_t E = (size_t)c->n_routed_experts, K = (size_t)c->top_k, De = (size_t)c->d_expert;
    size_t S = (size_t)c->n_shared_experts;
    memset(b, 0, sizeof(*b));
    b->x_in = acts_alloc(a, mul3(N, D, 1, bad), sizeof(float), bad);
    b->xn1 = acts_alloc(a, mul3(N, D, 1, bad), sizeof(float), bad);
    b->rstd1 = acts_alloc(a, N, sizeof(float), bad);
    b->q = acts_alloc(a, mul3(N, qd, 1, bad), sizeof(float), bad);
    b->k = acts_alloc(a, mul3(N, kvd, 1, bad), sizeof(float), bad);
    b->v = acts_alloc(a, mul3(N, kvd, 1, bad), sizeof(float), bad);
    b->att = acts_alloc(a, mul3(N, qd, 1, bad), sizeof(float), bad);
    b->lse = acts_alloc(a, mul3(N, (size_t)c->n_heads, 1, bad), sizeof(float), bad);
    b->x_mid = acts_alloc(a, mul3(N, D, 1, bad), sizeof(float), bad);
    b->xn2 = acts_alloc(a, mul3(N, D, 1, bad), sizeof(float), bad);
    b->rstd2 = acts_alloc(a, N, sizeof(float), bad);
    if (!moe) {
        b->fa = acts_alloc(a, mul3(N, F, 1, bad), sizeof(float), bad);
        b->fb = acts_alloc(a, mul3(N, F, 1, bad), sizeof(float), bad);
        b->fg = acts_alloc(a, mul3(N, F, 1, bad), sizeof(float), bad);
        return;
    }
    b->u = acts_alloc(a, mul3(N, E, 1, bad), sizeof(float), bad);
    b->s = acts_alloc(a, mul3(N, E, 1, bad), sizeof(float), bad);
    b->sel = acts_alloc(a, mul3(N, K, 1, bad), sizeof(int32_t), bad);
    b->gate = acts_alloc(a, mul3(N, K, 1, bad), sizeof(float), bad);
    if (c->balance_alpha > 0)
        b->du_bal = acts_alloc(a, mul3(N, E, 1, bad), sizeof(float), bad);
    b->sa = acts_alloc(a, mul3(S, N, De, bad), sizeof(float), bad);
    b->sb = acts_alloc(a, mul3(S, N, De, bad), sizeof(float), bad);
    b->sg = acts_alloc(a, mul3(S, N, De, bad), sizeof(float), bad);
    b->disp = acts_alloc(a, mul3(N, K, 1, bad), sizeof(int32_t), bad);
    b->eoff = acts_alloc(a, E + 1, sizeof(int32_t), bad);
    b->ex = acts_alloc(a, mul3(N, K, D, bad), sizeof(float), bad);
    b->ea = acts_alloc(a, mul3(N, K, De, bad), sizeof(float), bad);
    b->eb = acts_alloc(a, mul3(N, K, De, bad), sizeof(float), bad);
    b->eg = acts_alloc(a, mul3(N, K, De, bad), sizeof(float), bad);
    b->ey = acts_alloc(a, mul3(N, K, D, bad), sizeof(float), bad);
}

int tr_acts_init(struct tr_acts *a, const struct tr_model *m, size_t max_tokens)
{
    memset(a, 0, sizeof(*a));
    if (max_tokens < 1 || max_tokens > INT32_MAX / (size_t)m->cfg.top_k) {
        tm_log_error("model activations: max_tokens %zu outside 1 .. %d", max_tokens,
                     INT32_MAX / m->cfg.top_k);
        return TM_ERR_USAGE;
    }
    const struct tr_config *c = &m->cfg;
    int bad = 0;
    size_t N = max_tokens, D = (size_t)c->d_model, V = (size_t)c->vocab_size;
    size_t K = (size_t)c->top_k, E = (size_t)c->n_routed_experts;
    size_t qd = (size_t)c->n_heads * (size_t)c->head_dim;
    size_t kvd = (size_t)c->n_kv_heads * (size_t)c->head_dim;
    size_t wide = (size_t)c->d_ff;
    if (K * (size_t)c->d_expert > wide)
        wide = K * (size_t)c->d_expert;
    if (qd > wide)
        wide = qd;
    a->max_tokens = max_tokens;
    a->ids = acts_alloc(a, N, sizeof(int32_t), &bad);
    a->targets = acts_alloc(a, N, sizeof(int32_t), &bad);
    a->ids_mtp = acts_alloc(a, N, sizeof(int32_t), &bad);
    a->tgt_mtp = acts_alloc(a, N, sizeof(int32_t), &bad);
    a->blk = acts_alloc(a, (size_t)c->layers, sizeof(*a->blk), &bad);
    for (int l = 0; l < c->layers && !bad; l++)
        block_acts_init(a, &a->blk[l], c, m->blocks[l].moe, N, &bad);
    a->h_last = acts_alloc(a, mul3(N, D, 1, &bad), sizeof(float), &bad);
    a->xf = acts_alloc(a, mul3(N, D, 1, &bad), sizeof(float), &bad);
    a->rstdf = acts_alloc(a, N, sizeof(float), &bad);
    a->logits = acts_alloc(a, mul3(N, V, 1, &bad), sizeof(float), &bad);
    if (c->mtp_depth && !bad) {
        block_acts_init(a, &a->mblk, c, 0, N, &bad);
        a->m_h = acts_alloc(a, mul3(N, D, 1, &bad), sizeof(float), &bad);
        a->m_nh = acts_alloc(a, mul3(N, D, 1, &bad), sizeof(float), &bad);
        a->m_rh = acts_alloc(a, N, sizeof(float), &bad);
        a->m_e = acts_alloc(a, mul3(N, D, 1, &bad), sizeof(float), &bad);
        a->m_ne = acts_alloc(a, mul3(N, D, 1, &bad), sizeof(float), &bad);
        a->m_re = acts_alloc(a, N, sizeof(float), &bad);
        a->m_cat = acts_alloc(a, mul3(N, 2 * D, 1, &bad), sizeof(float), &bad);
        a->m_out = acts_alloc(a, mul3(N, D, 1, &bad), sizeof(float), &bad);
        a->m_xf = acts_alloc(a, mul3(N, D, 1, &bad), sizeof(float), &bad);
        a->m_rf = acts_alloc(a, N, sizeof(float), &bad);
        a->m_logits = acts_alloc(a, mul3(N, V, 1, &bad), sizeof(float), &bad);
    }
    a->d_res = acts_alloc(a, mul3(N, D, 1, &bad), sizeof(float), &bad);
    a->d_a = acts_alloc(a, mul3(N, D, 1, &bad), sizeof(float), &bad);
    a->d_b = acts_alloc(a, mul3(N, D, 1, &bad), sizeof(float), &bad);
    a->d_c = acts_alloc(a, mul3(N, 2 * D, 1, &bad), sizeof(float), &bad);
    a->d_wide1 = acts_alloc(a, mul3(N, wide, 1, &bad), sizeof(float), &bad);
    a->d_wide2 = acts_alloc(a, mul3(N, wide, 1, &bad), sizeof(float), &bad);
    a->d_wide3 = acts_alloc(a, mul3(N, wide, 1, &bad), sizeof(float), &bad);
    a->d_q = acts_alloc(a, mul3(N, qd, 1, &bad), sizeof(float), &bad);
    a->d_k = acts_alloc(a, mul3(N, kvd, 1, &bad), sizeof(float), &bad);
    a->d_v = acts_alloc(a, mul3(N, kvd, 1, &bad), sizeof(float), &bad);
    a->d_gate = acts_alloc(a, mul3(N, K, 1, &bad), sizeof(float), &bad);
    a->d_ex = acts_alloc(a, mul3(N, K, D, &bad), sizeof(float), &bad);
    a->d_u = acts_alloc(a, mul3(N, E, 1, &bad), sizeof(float), &bad);
    if (bad) {
        tm_log_error("model activations: buffers for %zu tokens overflow the address space",
                     max_tokens);
        tr_acts_release(a);
        return TM_ERR_TOOBIG;
    }
    return TM_OK;
}

void tr_acts_release(struct tr_acts *a)
{
    if (!a)
        return;
    for (int i = 0; i < a->n_allocs; i++)
        free(a->allocs[i]);
    free(a->allocs);
    memset(a, 0, sizeof(*a));
}

/* ---- forward and backward ------------------------------------------------------------------- */

int tr_model_forward(struct tr_model *m, struct tr_acts *a, const int32_t *ids,
                     const int32_t *targets, int B, int T, float *loss_main, float *loss_mtp)
{
    struct tr_gemm_cfg hp; /* higher precision: head, router, attention core */
    const struct tr_config *c = &m->cfg;
    int D = c->d_model, V = c->vocab_size, rc;
    if (B < 1 || T < 1 || T > c->context || (size_t)B * (size_t)T > a->max_tokens) {
        tm_log_error("model forward: B %d x T %d outside 1 .. max_tokens %zu with T <= context %d",
                     B, T, a->max_tokens, c->context);
        return TM_ERR_USAGE;
    }
    int N = B * T;
    a->B = B;
    a->T = T;
    memcpy(a->ids, ids, (size_t)N * sizeof(*ids));
    memcpy(a->targets, targets, (size_t)N * sizeof(*targets));
    float bal = 0.0f;
    const float *P = m->params;

    if ((rc = tr_embed_fwd(a->blk[0].x_in, ids, P + m->embed, N, V, D)) != TM_OK)
        return rc;
    for (int l = 0; l < c->layers; l++) {
        float *out = l + 1 < c->layers ? a->blk[l + 1].x_in : a->h_last;
        if ((rc = tr_block_fwd(m, &m->blocks[l], &a->blk[l], out, B, T, &bal)) != TM_OK)
            return rc;
    }
    tr_rmsnorm_fwd(a->xf, a->rstdf, a->h_last, P + m->norm, N, D, c->norm_eps);
    if ((rc = tr_linear_fwd(tr_gemm_high(&m->gemm, &hp), a->logits, a->xf, P + m->head, N, D, V)) !=
        TM_OK)
        return rc;
    float lm = 0.0f, lt = 0.0f;
    /* With grad_in_forward, the gradients of the two losses are written over their logits here
     * (the MTP one weighted by lambda, as the backward pass would). */
    int fuse = a->grad_in_forward;
    a->logits_hold_grad = 0;
    rc = tr_xent(&lm, NULL, fuse ? a->logits : NULL, a->logits, targets, N, V, 1.0f, m->threads);
    if (rc != TM_OK)
        return rc;

    if (c->mtp_depth && T >= 2) {
        /* The MTP sequence is the main one shifted by one: position t (< T - 1) sees h_L[t] and
         * the embedding of token t + 1, and predicts targets[t + 1]. */
        int T1 = T - 1, N1 = B * T1;
        for (int b = 0; b < B; b++) {
            memcpy(a->m_h + (size_t)b * T1 * D, a->h_last + (size_t)b * T * D,
                   (size_t)T1 * D * sizeof(float));
            for (int t = 0; t < T1; t++) {
                a->ids_mtp[b * T1 + t] = ids[b * T + t + 1];
                a->tgt_mtp[b * T1 + t] = targets[b * T + t + 1];
            }
        }
        tr_rmsnorm_fwd(a->m_nh, a->m_rh, a->m_h, P + m->mtp_norm_h, N1, D, c->norm_eps);
        if ((rc = tr_embed_fwd(a->m_e, a->ids_mtp, P + m->embed, N1, V, D)) != TM_OK)
            return rc;
        tr_rmsnorm_fwd(a->m_ne, a->m_re, a->m_e, P + m->mtp_norm_e, N1, D, c->norm_eps);
        tr_concat_fwd(a->m_cat, a->m_nh, a->m_ne, N1, D, D);
        rc = tr_linear_fwd(&m->gemm, a->mblk.x_in, a->m_cat, P + m->mtp_proj, N1, 2 * D, D);
        if (rc != TM_OK)
            return rc;
        if ((rc = tr_block_fwd(m, &m->mtp_block, &a->mblk, a->m_out, B, T1, &bal)) != TM_OK)
            return rc;
        tr_rmsnorm_fwd(a->m_xf, a->m_rf, a->m_out, P + m->mtp_norm, N1, D, c->norm_eps);
        if ((rc = tr_linear_fwd(tr_gemm_high(&m->gemm, &hp), a->m_logits, a->m_xf, P + m->head, N1,
                                D, V)) != TM_OK)
            return rc;
        rc = tr_xent(&lt, NULL, fuse ? a->m_logits : NULL, a->m_logits, a->tgt_mtp, N1, V,
                     c->mtp_lambda, m->threads);
        if (rc != TM_OK)
            return rc;
    }
    a->logits_hold_grad = fuse;
    a->loss_main = lm;
    a->loss_mtp = lt;
    a->loss_bal = bal;
    a->loss_total = lm + (c->mtp_depth ? c->mtp_lambda * lt : 0.0f) + bal;
    if (loss_main)
        *loss_main = lm;
    if (loss_mtp)
        *loss_mtp = lt;
    return TM_OK;
}

int tr_model_backward(struct tr_model *m, struct tr_acts *a, float *grads)
{
    struct tr_gemm_cfg hp; /* higher precision: head, router, attention core */
    const struct tr_config *c = &m->cfg;
    int D = c->d_model, V = c->vocab_size, B = a->B, T = a->T, N = B * T, rc;
    const float *P = m->params;
    float dummy;

    if (c->mtp_depth && T >= 2) {
        int T1 = T - 1, N1 = B * T1;
        if (!a->logits_hold_grad) {
            rc = tr_xent(&dummy, NULL, a->m_logits, a->m_logits, a->tgt_mtp, N1, V, c->mtp_lambda,
                         m->threads);
            if (rc != TM_OK)
                return rc;
        }
        rc = tr_linear_bwd(tr_gemm_high(&m->gemm, &hp), a->d_a, grads + m->head, a->m_logits,
                           a->m_xf, P + m->head, N1, D, V);
        if (rc != TM_OK)
            return rc;
        tr_rmsnorm_bwd(a->d_res, grads + m->mtp_norm, a->d_a, a->m_out, P + m->mtp_norm, a->m_rf,
                       N1, D);
        if ((rc = tr_block_bwd(m, &m->mtp_block, &a->mblk, a, grads, B, T1)) != TM_OK)
            return rc;
        rc = tr_linear_bwd(&m->gemm, a->d_c, grads + m->mtp_proj, a->d_res, a->m_cat,
                           P + m->mtp_proj, N1, 2 * D, D);
        if (rc != TM_OK)
            return rc;
        tr_concat_bwd(a->d_a, a->d_b, a->d_c, N1, D, D);
        /* m_nh is not needed any more (m_cat held it): it receives d(loss)/d(h_L rows). */
        tr_rmsnorm_bwd(a->m_nh, grads + m->mtp_norm_h, a->d_a, a->m_h, P + m->mtp_norm_h, a->m_rh,
                       N1, D);
        tr_rmsnorm_bwd(a->d_res, grads + m->mtp_norm_e, a->d_b, a->m_e, P + m->mtp_norm_e, a->m_re,
                       N1, D);
        if ((rc = tr_embed_bwd(grads + m->embed, a->d_res, a->ids_mtp, N1, V, D)) != TM_OK)
            return rc;
    }

    if (!a->logits_hold_grad) {
        rc = tr_xent(&dummy, NULL, a->logits, a->logits, a->targets, N, V, 1.0f, m->threads);
        if (rc != TM_OK)
            return rc;
    }
    a->logits_hold_grad = 0; /* the gradients are consumed below */
    rc = tr_linear_bwd(tr_gemm_high(&m->gemm, &hp), a->d_a, grads + m->head, a->logits, a->xf,
                       P + m->head, N, D, V);
    if (rc != TM_OK)
        return rc;
    tr_rmsnorm_bwd(a->d_res, grads + m->norm, a->d_a, a->h_last, P + m->norm, a->rstdf, N, D);
    if (c->mtp_depth && T >= 2) {
        int T1 = T - 1;
        for (int b = 0; b < B; b++)
            tr_add(a->d_res + (size_t)b * T * D, a->d_res + (size_t)b * T * D,
                   a->m_nh + (size_t)b * T1 * D, (size_t)T1 * D);
    }
    for (int l = c->layers - 1; l >= 0; l--)
        if ((rc = tr_block_bwd(m, &m->blocks[l], &a->blk[l], a, grads, B, T)) != TM_OK)
            return rc;
    return tr_embed_bwd(grads + m->embed, a->d_res, a->ids, N, V, D);
}
