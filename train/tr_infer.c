/* tr_infer.c: the key/value cache and the incremental forward pass of the main model (see
 * tr_infer.h). The block below follows tr_block_fwd() (tr_moe.c) step for step, with the same
 * ops in the same order, so that it agrees with training's forward pass to float rounding;
 * what differs is that keys and values come from the cache and new queries sit at an offset. */
#include "tr_infer.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tm_err.h"
#include "tm_log.h"
#include "tm_mem.h"

int tr_kv_cache_init(struct tr_kv_cache *kv, const struct tr_model *m, int context)
{
    const struct tr_config *c = &m->cfg;
    memset(kv, 0, sizeof(*kv));
    if (context == 0)
        context = c->context;
    if (context < 1 || context > c->context) {
        tm_log_error("kv cache: context %d outside 1 .. the model's context %d", context,
                     c->context);
        return TM_ERR_USAGE;
    }
    int kv_dim = c->n_kv_heads * c->head_dim;
    size_t rows, numel, bytes;
    if (tm_mul_overflow((size_t)c->layers, (size_t)context, &rows) ||
        tm_mul_overflow(rows, (size_t)kv_dim, &numel) ||
        tm_mul_overflow(numel, sizeof(float), &bytes)) {
        tm_log_error("kv cache: %d layers x %d positions x %d floats overflows", c->layers, context,
                     kv_dim);
        return TM_ERR_TOOBIG;
    }
    /* Plain malloc, not tm_xmalloc: the size follows the configuration (a long context on a big
     * model is gigabytes), so running out is an error to report, not a crash. */
    kv->k = malloc(bytes);
    kv->v = malloc(bytes);
    if (!kv->k || !kv->v) {
        tm_log_error("kv cache: cannot allocate 2 x %zu bytes (%d layers, context %d)", bytes,
                     c->layers, context);
        tr_kv_cache_release(kv);
        return TM_ERR_NOMEM;
    }
    kv->layers = c->layers;
    kv->context = context;
    kv->kv_dim = kv_dim;
    return TM_OK;
}

void tr_kv_cache_release(struct tr_kv_cache *kv)
{
    if (!kv)
        return;
    free(kv->k);
    free(kv->v);
    memset(kv, 0, sizeof(*kv));
}

void tr_kv_cache_reset(struct tr_kv_cache *kv)
{
    kv->len = 0;
}

/* The scratch of one step, carved from two allocations (floats and ints). */
struct step_buf {
    float *x, *xn, *tmp; /* [n, D]: residual stream, its norm, a branch's output */
    float *rstd;         /* [n] */
    float *q, *att;      /* [n, H hd] */
    float *S;            /* [n, L] scores of one head, L = positions after the step */
    float *wa, *wb;      /* [n, W], W = max(F, K De): FFN gate and up projections */
    float *u, *s;        /* [n, E] router logits and affinities */
    float *gate;         /* [n, K] */
    float *ex, *ey;      /* [n K, D] gathered expert inputs and outputs */
    float *xf;           /* [D] the last row's final norm */
    int32_t *sel;        /* [n, K] */
    int32_t *disp;       /* [n K] (token, slot) pairs grouped by expert */
    int32_t *eoff;       /* [E + 1] */
    int32_t *next;       /* [E] */
    float *fmem;
    int32_t *imem;
};

/* *total += a * b, 0 or -1 on overflow. */
static int add_prod(size_t *total, size_t a, size_t b)
{
    size_t p;
    if (tm_mul_overflow(a, b, &p) || *total > SIZE_MAX - p)
        return -1;
    *total += p;
    return 0;
}

static int step_buf_init(struct step_buf *sb, const struct tr_config *c, int n, int L)
{
    size_t D = (size_t)c->d_model, qd = (size_t)c->n_heads * c->head_dim, N = (size_t)n;
    size_t E = (size_t)c->n_routed_experts, K = (size_t)c->top_k;
    size_t W = (size_t)c->d_ff, kde = K * (size_t)c->d_expert;
    if (kde > W)
        W = kde;
    /* The float blocks in carving order: {count per row (times n), fixed count}. */
    size_t per_row[] = {D, D, D, 1, qd, qd, (size_t)L, W, W, E, E, K, K * D, K * D, 0};
    size_t fixed[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, D};
    float **dst[] = {&sb->x,  &sb->xn, &sb->tmp, &sb->rstd, &sb->q,  &sb->att, &sb->S, &sb->wa,
                     &sb->wb, &sb->u,  &sb->s,   &sb->gate, &sb->ex, &sb->ey,  &sb->xf};
    enum { NBLK = sizeof(dst) / sizeof(dst[0]) };
    size_t fl = 0, in = 0;
    int bad = 0;
    for (int i = 0; i < NBLK; i++)
        bad |= add_prod(&fl, per_row[i], N) | add_prod(&fl, fixed[i], 1);
    bad |= add_prod(&in, 2 * K, N) | add_prod(&in, 2 * E + 1, 1);
    if (bad || fl > SIZE_MAX / sizeof(float) || in > SIZE_MAX / sizeof(int32_t)) {
        tm_log_error("infer step: scratch for %d tokens over %d positions overflows", n, L);
        return TM_ERR_TOOBIG;
    }
    memset(sb, 0, sizeof(*sb));
    sb->fmem = malloc(fl * sizeof(float));
    sb->imem = malloc(in * sizeof(int32_t));
    if (!sb->fmem || !sb->imem) {
        tm_log_error("infer step: cannot allocate %zu bytes of scratch for %d tokens",
                     fl * sizeof(float) + in * sizeof(int32_t), n);
        free(sb->fmem);
        free(sb->imem);
        return TM_ERR_NOMEM;
    }
    float *p = sb->fmem;
    for (int i = 0; i < NBLK; i++) {
        *dst[i] = p;
        p += per_row[i] * N + fixed[i];
    }
    sb->sel = sb->imem;
    sb->disp = sb->sel + K * N;
    sb->eoff = sb->disp + K * N;
    sb->next = sb->eoff + E + 1;
    return TM_OK;
}

static void step_buf_release(struct step_buf *sb)
{
    free(sb->fmem);
    free(sb->imem);
}

/* SwiGLU over n rows: y = (silu(x w1^T) * (x w3^T)) w2^T; a and b [n, F] are scratch. */
static int swiglu(const struct tr_gemm_cfg *g, float *y, float *a, float *b, const float *x,
                  const float *w1, const float *w3, const float *w2, int n, int D, int F)
{
    int rc;
    if ((rc = tr_linear_fwd(g, a, x, w1, n, D, F)) != TM_OK ||
        (rc = tr_linear_fwd(g, b, x, w3, n, D, F)) != TM_OK)
        return rc;
    tr_swiglu_fwd(a, a, b, (size_t)n * F);
    return tr_linear_fwd(g, y, a, w2, n, F, D);
}

/* The MoE FFN of sb->xn into sb->tmp: shared experts, then the routed ones. Like training it
 * groups the (token, slot) pairs by expert with a counting sort, so each expert multiplies one
 * block of rows, and it adds the gated outputs back in that order. */
static int moe(const struct tr_model *m, const struct tr_block_off *o, struct step_buf *sb, int n)
{
    struct tr_gemm_cfg hp; /* higher precision: head, router, attention core */
    const struct tr_config *c = &m->cfg;
    const float *P = m->params;
    int D = c->d_model, E = c->n_routed_experts, K = c->top_k, De = c->d_expert, rc;
    size_t ND = (size_t)n * D, eD = (size_t)De * D;

    if ((rc = tr_linear_fwd(tr_gemm_high(&m->gemm, &hp), sb->u, sb->xn, P + o->router, n, D, E)) !=
        TM_OK)
        return rc;
    const float *bias = m->router_bias + (size_t)o->moe_index * E;
    rc = tr_router_fwd(sb->s, sb->sel, sb->gate, sb->u, bias, n, E, K, c->route_scale);
    if (rc != TM_OK)
        return rc;

    memset(sb->tmp, 0, ND * sizeof(float));
    for (int s = 0; s < c->n_shared_experts; s++) {
        rc = swiglu(&m->gemm, sb->ey, sb->wa, sb->wb, sb->xn, P + o->sw1 + s * eD,
                    P + o->sw3 + s * eD, P + o->sw2 + s * eD, n, D, De);
        if (rc != TM_OK)
            return rc;
        tr_add(sb->tmp, sb->tmp, sb->ey, ND);
    }

    int nk = n * K;
    memset(sb->eoff, 0, (size_t)(E + 1) * sizeof(int32_t));
    for (int i = 0; i < nk; i++)
        sb->eoff[sb->sel[i] + 1]++;
    for (int e = 0; e < E; e++)
        sb->eoff[e + 1] += sb->eoff[e];
    memcpy(sb->next, sb->eoff, (size_t)E * sizeof(int32_t));
    for (int i = 0; i < nk; i++)
        sb->disp[sb->next[sb->sel[i]]++] = i;
    for (int r = 0; r < nk; r++)
        memcpy(sb->ex + (size_t)r * D, sb->xn + (size_t)(sb->disp[r] / K) * D,
               (size_t)D * sizeof(float));
    for (int e = 0; e < E; e++) {
        size_t r0 = (size_t)sb->eoff[e];
        int cnt = sb->eoff[e + 1] - sb->eoff[e];
        if (cnt == 0)
            continue;
        rc = swiglu(&m->gemm, sb->ey + r0 * D, sb->wa, sb->wb, sb->ex + r0 * D, P + o->ew1 + e * eD,
                    P + o->ew3 + e * eD, P + o->ew2 + e * eD, cnt, D, De);
        if (rc != TM_OK)
            return rc;
    }
    for (int r = 0; r < nk; r++) {
        int i = sb->disp[r];
        float gw = sb->gate[i];
        float *dst = sb->tmp + (size_t)(i / K) * D;
        const float *y = sb->ey + (size_t)r * D;
        for (int d = 0; d < D; d++)
            dst[d] += gw * y[d];
    }
    return TM_OK;
}

/* Causal attention of the n new queries (absolute positions pos0 ..) over the L = pos0 + n
 * cached positions of layer l, into sb->att. The softmax is the one of tr_attn_fwd(). */
static int attention(const struct tr_model *m, const struct tr_kv_cache *kv, struct step_buf *sb,
                     int l, int n, int pos0)
{
    struct tr_gemm_cfg hp; /* higher precision: head, router, attention core */
    const struct tr_config *c = &m->cfg;
    int H = c->n_heads, Hkv = c->n_kv_heads, hd = c->head_dim, qd = H * hd, kvd = kv->kv_dim;
    int L = pos0 + n, rc;
    float scale = 1.0f / sqrtf((float)hd);
    const float *kl = kv->k + (size_t)l * kv->context * kvd;
    const float *vl = kv->v + (size_t)l * kv->context * kvd;
    for (int h = 0; h < H; h++) {
        int kh = h / (H / Hkv);
        rc = tr_gemm(tr_gemm_high(&m->gemm, &hp), 0, 1, n, L, hd, scale, sb->q + (size_t)h * hd, qd,
                     kl + (size_t)kh * hd, kvd, 0.0f, sb->S, L);
        if (rc != TM_OK)
            return rc;
        for (int t = 0; t < n; t++) {
            float *row = sb->S + (size_t)t * L;
            int last = pos0 + t; /* the query's own position: it sees 0 .. last */
            float mx = row[0];
            for (int s = 1; s <= last; s++)
                mx = row[s] > mx ? row[s] : mx;
            double sum = 0.0;
            for (int s = 0; s <= last; s++) {
                row[s] = expf(row[s] - mx);
                sum += row[s];
            }
            float inv = (float)(1.0 / sum);
            for (int s = 0; s <= last; s++)
                row[s] *= inv;
            for (int s = last + 1; s < L; s++)
                row[s] = 0.0f;
        }
        rc = tr_gemm(tr_gemm_high(&m->gemm, &hp), 0, 0, n, hd, L, 1.0f, sb->S, L,
                     vl + (size_t)kh * hd, kvd, 0.0f, sb->att + (size_t)h * hd, qd);
        if (rc != TM_OK)
            return rc;
    }
    return TM_OK;
}

/* One block over the n new rows of sb->x (updated in place), appending layer l's keys and
 * values at positions pos0 .. pos0 + n - 1. */
static int block_step(const struct tr_model *m, const struct tr_block_off *o,
                      struct tr_kv_cache *kv, struct step_buf *sb, int l, int n, int pos0)
{
    const struct tr_config *c = &m->cfg;
    const float *P = m->params;
    int D = c->d_model, H = c->n_heads, Hkv = c->n_kv_heads, hd = c->head_dim;
    int qd = H * hd, kvd = kv->kv_dim, rc;
    size_t ND = (size_t)n * D;
    float *kn = kv->k + ((size_t)l * kv->context + pos0) * kvd;
    float *vn = kv->v + ((size_t)l * kv->context + pos0) * kvd;

    tr_rmsnorm_fwd(sb->xn, sb->rstd, sb->x, P + o->attn_norm, n, D, c->norm_eps);
    if ((rc = tr_linear_fwd(&m->gemm, sb->q, sb->xn, P + o->wq, n, D, qd)) != TM_OK ||
        (rc = tr_linear_fwd(&m->gemm, kn, sb->xn, P + o->wk, n, D, kvd)) != TM_OK ||
        (rc = tr_linear_fwd(&m->gemm, vn, sb->xn, P + o->wv, n, D, kvd)) != TM_OK)
        return rc;
    tr_rope_fwd(sb->q, sb->q, 1, n, H, hd, c->rope_theta, pos0);
    tr_rope_fwd(kn, kn, 1, n, Hkv, hd, c->rope_theta, pos0);
    if ((rc = attention(m, kv, sb, l, n, pos0)) != TM_OK)
        return rc;
    if ((rc = tr_linear_fwd(&m->gemm, sb->tmp, sb->att, P + o->wo, n, qd, D)) != TM_OK)
        return rc;
    tr_add(sb->x, sb->tmp, sb->x, ND);
    tr_rmsnorm_fwd(sb->xn, sb->rstd, sb->x, P + o->ffn_norm, n, D, c->norm_eps);
    if (o->moe)
        rc = moe(m, o, sb, n);
    else
        rc = swiglu(&m->gemm, sb->tmp, sb->wa, sb->wb, sb->xn, P + o->w1, P + o->w3, P + o->w2, n,
                    D, c->d_ff);
    if (rc != TM_OK)
        return rc;
    tr_add(sb->x, sb->tmp, sb->x, ND);
    return TM_OK;
}

int tr_infer_step(const struct tr_model *m, struct tr_kv_cache *kv, const int32_t *ids, int n,
                  float *logits_last)
{
    struct tr_gemm_cfg hp; /* higher precision: head, router, attention core */
    const struct tr_config *c = &m->cfg;
    int D = c->d_model, V = c->vocab_size, rc;
    if (kv->layers != c->layers || kv->kv_dim != c->n_kv_heads * c->head_dim ||
        kv->context > c->context || !kv->k) {
        tm_log_error("infer step: cache of %d layers x %d floats (context %d) does not fit a "
                     "model of %d layers x %d floats (context %d)",
                     kv->layers, kv->kv_dim, kv->context, c->layers, c->n_kv_heads * c->head_dim,
                     c->context);
        return TM_ERR_USAGE;
    }
    if (n < 1) {
        tm_log_error("infer step: %d new tokens, need at least 1", n);
        return TM_ERR_USAGE;
    }
    if (n > kv->context - kv->len) {
        tm_log_error("infer step: %d cached + %d new tokens exceed the context of %d", kv->len, n,
                     kv->context);
        return TM_ERR_TOOBIG;
    }
    /* Ids are checked before anything is written, so a bad one leaves the cache as it was. */
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= V) {
            tm_log_error("infer step: token %d (position %d) is %d, outside the vocabulary of %d",
                         i, kv->len + i, (int)ids[i], V);
            return TM_ERR_USAGE;
        }
    }
    int pos0 = kv->len;
    struct step_buf sb;
    if ((rc = step_buf_init(&sb, c, n, pos0 + n)) != TM_OK)
        return rc;
    const float *P = m->params;
    if ((rc = tr_embed_fwd(sb.x, ids, P + m->embed, n, V, D)) != TM_OK)
        goto out;
    for (int l = 0; l < c->layers; l++)
        if ((rc = block_step(m, &m->blocks[l], kv, &sb, l, n, pos0)) != TM_OK)
            goto out;
    /* Only the last row's logits are wanted: rows are independent after the blocks. */
    tr_rmsnorm_fwd(sb.xf, sb.rstd, sb.x + (size_t)(n - 1) * D, P + m->norm, 1, D, c->norm_eps);
    if ((rc = tr_linear_fwd(tr_gemm_high(&m->gemm, &hp), logits_last, sb.xf, P + m->head, 1, D,
                            V)) != TM_OK)
        goto out;
    kv->len = pos0 + n;
out:
    step_buf_release(&sb);
    return rc;
}

int tr_generate(const struct tr_model *m, struct tr_kv_cache *kv, const int32_t *prompt,
                int n_prompt, int max_new, const struct tr_sampler *s, int32_t eot_id,
                tr_token_fn on_token, void *ctx, int *n_new, enum tr_stop *why)
{
    int V = m->cfg.vocab_size, done = 0, rc;
    enum tr_stop stop = TR_STOP_MAX_NEW;
    if (n_new)
        *n_new = 0;
    if (n_prompt < 1 || max_new < 0) {
        tm_log_error("generate: prompt of %d tokens (need >= 1), max_new %d (need >= 0)", n_prompt,
                     max_new);
        return TM_ERR_USAGE;
    }
    struct tr_sampler smp = *s; /* s is only read: the same call repeats the same draws */
    float *logits = malloc((size_t)V * sizeof(float));
    if (!logits) {
        tm_log_error("generate: cannot allocate %d logits", V);
        return TM_ERR_NOMEM;
    }
    tr_kv_cache_reset(kv);
    if ((rc = tr_infer_step(m, kv, prompt, n_prompt, logits)) != TM_OK)
        goto out;
    while (done < max_new) {
        int32_t id;
        int nv = smp.n_valid > 0 && smp.n_valid < V ? smp.n_valid : V;
        if ((rc = tr_sample(&smp, logits, nv, &id)) != TM_OK)
            goto out;
        if (id == eot_id) {
            stop = TR_STOP_EOT;
            break;
        }
        done++;
        if (on_token && on_token(ctx, id) != 0) {
            stop = TR_STOP_CALLBACK;
            break;
        }
        if (done == max_new)
            break; /* no need to run the last token: nothing would read its logits */
        if (kv->len == kv->context) {
            stop = TR_STOP_CONTEXT;
            break;
        }
        if ((rc = tr_infer_step(m, kv, &id, 1, logits)) != TM_OK)
            goto out;
    }
    if (why)
        *why = stop;
out:
    if (n_new)
        *n_new = done;
    free(logits);
    return rc;
}
