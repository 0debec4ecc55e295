/* tr_ops: the elementwise, normalization, embedding, linear, loss and helper operations of the
 * reference trainer (see tr_ops.h). Attention is in tr_attn.c, the MoE router in tr_router.c,
 * the GEMM in tr_gemm.c. */
#include "tr_ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tm_err.h"
#include "tm_log.h"
#include "tm_mem.h"
#include "tr_internal.h"

/* ---- embedding ------------------------------------------------------------------------------- */

static int check_ids(const char *what, const int32_t *ids, int N, int V)
{
    for (int i = 0; i < N; i++) {
        if (ids[i] < 0 || ids[i] >= V) {
            tm_log_error("%s: id %d at row %d is outside the vocabulary [0, %d)", what, (int)ids[i],
                         i, V);
            return TM_ERR_USAGE;
        }
    }
    return TM_OK;
}

int tr_embed_fwd(float *out, const int32_t *ids, const float *table, int N, int V, int D)
{
    int rc = check_ids("tr_embed_fwd", ids, N, V);
    if (rc != TM_OK)
        return rc;
    for (int i = 0; i < N; i++)
        memcpy(out + (size_t)i * D, table + (size_t)ids[i] * D, (size_t)D * sizeof(float));
    return TM_OK;
}

int tr_embed_bwd(float *dtable, const float *dout, const int32_t *ids, int N, int V, int D)
{
    /* Checked before any write, so a bad id leaves dtable as it was. */
    int rc = check_ids("tr_embed_bwd", ids, N, V);
    if (rc != TM_OK)
        return rc;
    for (int i = 0; i < N; i++) {
        float *row = dtable + (size_t)ids[i] * D;
        const float *d = dout + (size_t)i * D;
        for (int j = 0; j < D; j++)
            row[j] += d[j];
    }
    return TM_OK;
}

/* ---- linear ---------------------------------------------------------------------------------- */

/* The FP8 copy of x [N, in] that the forward pass caches for the backward pass, as the backward
 * pass reads it: quantized in 1 x 128 tiles along `in`, dequantized (allocated; the caller
 * frees it), or NULL with *rc set. */
static float *fp8_cached(const struct tr_gemm_cfg *g, const float *x, int N, int in, int *rc)
{
    struct tr_fp8_mat q;
    if ((*rc = tr_fp8_mat_init(&q, N, in, TR_FP8_TILES, g->fp8_fmt)) != TM_OK)
        return NULL;
    tr_fp8_quantize(&q, x, 0, in, g->fp8_pow2, g->threads);
    float *c = tm_xmalloc((size_t)N * (size_t)in * sizeof(float));
    tr_fp8_dequantize(c, in, &q);
    tr_fp8_mat_release(&q);
    return c;
}

/* The probe (tr_gemm_probe): the product of one role computed in FP32 and in FP8 from the same
 * operands (beta 0), their difference added to g->probe. B is the weight operand for Fprop and
 * Dgrad; for Wgrad, B is x and enters the FP8 product as its cached FP8 copy. */
static int probe_product(const struct tr_gemm_cfg *g, int role, int transA, int transB, int M,
                         int N, int K, const float *A, int lda, const float *B, int ldb)
{
    if (M == 0 || N == 0 || K == 0)
        return TM_OK;
    size_t n = (size_t)M * (size_t)N;
    float *ref = tm_xmalloc((n ? n : 1) * sizeof(float)),
          *q = tm_xmalloc((n ? n : 1) * sizeof(float));
    struct tr_gemm_cfg f32 = *g, f8 = *g;
    f32.mode = TR_GEMM_F32;
    f32.probe = f8.probe = NULL;
    f8.mode = TR_GEMM_FP8;
    int kindB = role == TR_ROLE_WGRAD ? TR_FP8_TILES : TR_FP8_BLOCKS;
    int rc = tr_gemm_op(&f32, TR_FP8_TILES, kindB, transA, transB, M, N, K, 1.0f, A, lda, B, ldb,
                        0.0f, ref, N);
    float *cached = NULL;
    if (rc == TM_OK && role == TR_ROLE_WGRAD) /* B is x [tokens, in], untransposed */
        B = cached = fp8_cached(g, B, K, N, &rc);
    if (rc == TM_OK)
        rc = tr_gemm_op(&f8, TR_FP8_TILES, kindB, transA, transB, M, N, K, 1.0f, A, lda, B, ldb,
                        0.0f, q, N);
    if (rc == TM_OK) {
        double e2 = 0.0, r2 = 0.0;
        for (size_t i = 0; i < n; i++) {
            double d = (double)q[i] - ref[i];
            e2 += d * d;
            r2 += (double)ref[i] * ref[i];
        }
        g->probe->err2[role] += e2;
        g->probe->ref2[role] += r2;
        g->probe->products[role]++;
    }
    free(cached);
    free(ref);
    free(q);
    return rc;
}

int tr_linear_fwd(const struct tr_gemm_cfg *g, float *y, const float *x, const float *W, int N,
                  int in, int out)
{
    int rc = tr_gemm_op(g, TR_FP8_TILES, TR_FP8_BLOCKS, 0, 1, N, out, in, 1.0f, x, in, W, in, 0.0f,
                        y, out);
    if (rc == TM_OK && g && g->probe)
        rc = probe_product(g, TR_ROLE_FPROP, 0, 1, N, out, in, x, in, W, in);
    return rc;
}

int tr_linear_bwd(const struct tr_gemm_cfg *g, float *dx, float *dW, const float *dy,
                  const float *x, const float *W, int N, int in, int out)
{
    int rc = TM_OK;
    if (dx) {
        rc = tr_gemm_op(g, TR_FP8_TILES, TR_FP8_BLOCKS, 0, 0, N, in, out, 1.0f, dy, out, W, in,
                        0.0f, dx, in);
        if (rc == TM_OK && g && g->probe)
            rc = probe_product(g, TR_ROLE_DGRAD, 0, 0, N, in, out, dy, out, W, in);
    }
    if (rc == TM_OK && g && g->probe)
        rc = probe_product(g, TR_ROLE_WGRAD, 1, 0, out, in, N, dy, out, x, in);
    if (rc != TM_OK)
        return rc;
    float *cached = NULL;
    if (g && g->mode == TR_GEMM_FP8 && N > 0 && in > 0) {
        /* The FP8 copy of x the forward pass would have cached, as the backward pass sees it. */
        if (!(cached = fp8_cached(g, x, N, in, &rc)))
            return rc;
        x = cached;
    }
    rc = tr_gemm(g, 1, 0, out, in, N, 1.0f, dy, out, x, in, 1.0f, dW, in);
    free(cached);
    return rc;
}

/* ---- RMSNorm --------------------------------------------------------------------------------- */

void tr_rmsnorm_fwd(float *y, float *rstd, const float *x, const float *w, int N, int D, float eps)
{
    for (int i = 0; i < N; i++) {
        const float *xr = x + (size_t)i * D;
        float *yr = y + (size_t)i * D;
        double ss = 0.0;
        for (int j = 0; j < D; j++)
            ss += (double)xr[j] * xr[j];
        float r = (float)(1.0 / sqrt(ss / D + eps));
        rstd[i] = r;
        for (int j = 0; j < D; j++)
            yr[j] = xr[j] * r * w[j];
    }
}

void tr_rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x, const float *w,
                    const float *rstd, int N, int D)
{
    for (int i = 0; i < N; i++) {
        const float *xr = x + (size_t)i * D, *dyr = dy + (size_t)i * D;
        float *dxr = dx + (size_t)i * D;
        float r = rstd[i];
        /* mean(dy * w * xhat) first: dx may overwrite dy. */
        double dot = 0.0;
        for (int j = 0; j < D; j++) {
            float xhat = xr[j] * r;
            dot += (double)dyr[j] * w[j] * xhat;
            dw[j] += dyr[j] * xhat;
        }
        float m = (float)(dot / D);
        for (int j = 0; j < D; j++)
            dxr[j] = r * (dyr[j] * w[j] - xr[j] * r * m);
    }
}

/* ---- RoPE ------------------------------------------------------------------------------------ */

/* Rotates every head of x by sign * angle into y. The cos/sin table ([T][hd/2]) is built once
 * per call, in double, so long positions keep their accuracy. */
static void rope(float *y, const float *x, int B, int T, int heads, int hd, double theta, int pos0,
                 double sign)
{
    int half = hd / 2;
    if (B <= 0 || T <= 0 || heads <= 0 || half <= 0)
        return;
    float *cs = tm_xmalloc((size_t)T * half * 2 * sizeof(float));
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < half; i++) {
            double ang = sign * ((double)pos0 + t) * pow(theta, -2.0 * i / hd);
            cs[((size_t)t * half + i) * 2] = (float)cos(ang);
            cs[((size_t)t * half + i) * 2 + 1] = (float)sin(ang);
        }
    }
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            const float *c = cs + (size_t)t * half * 2;
            for (int h = 0; h < heads; h++) {
                size_t off = (((size_t)b * T + t) * heads + h) * hd;
                const float *xr = x + off;
                float *yr = y + off;
                for (int i = 0; i < half; i++) {
                    float x0 = xr[i], x1 = xr[i + half];
                    float co = c[2 * i], si = c[2 * i + 1];
                    yr[i] = x0 * co - x1 * si;
                    yr[i + half] = x0 * si + x1 * co;
                }
            }
        }
    }
    free(cs);
}

void tr_rope_fwd(float *y, const float *x, int B, int T, int heads, int hd, double theta, int pos0)
{
    rope(y, x, B, T, heads, hd, theta, pos0, 1.0);
}

void tr_rope_bwd(float *dx, const float *dy, int B, int T, int heads, int hd, double theta,
                 int pos0)
{
    rope(dx, dy, B, T, heads, hd, theta, pos0, -1.0);
}

/* ---- SwiGLU ---------------------------------------------------------------------------------- */

/* sigmoid without overflow: exp of a non-positive number only. */
static float sigmoidf(float a)
{
    if (a >= 0.0f)
        return 1.0f / (1.0f + expf(-a));
    float e = expf(a);
    return e / (1.0f + e);
}

void tr_swiglu_fwd(float *out, const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = a[i] * sigmoidf(a[i]) * b[i];
}

void tr_swiglu_bwd(float *da, float *db, const float *dout, const float *a, const float *b,
                   size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float s = sigmoidf(a[i]);
        float d = dout[i]; /* read before writing: da or db may be dout */
        float bi = b[i];
        db[i] = d * a[i] * s;
        da[i] = d * bi * s * (1.0f + a[i] * (1.0f - s));
    }
}

/* ---- shape helpers --------------------------------------------------------------------------- */

void tr_concat_fwd(float *out, const float *a, const float *b, int N, int Da, int Db)
{
    size_t w = (size_t)Da + Db;
    for (int i = 0; i < N; i++) {
        memcpy(out + i * w, a + (size_t)i * Da, (size_t)Da * sizeof(float));
        memcpy(out + i * w + Da, b + (size_t)i * Db, (size_t)Db * sizeof(float));
    }
}

void tr_concat_bwd(float *da, float *db, const float *dout, int N, int Da, int Db)
{
    size_t w = (size_t)Da + Db;
    for (int i = 0; i < N; i++) {
        memcpy(da + (size_t)i * Da, dout + i * w, (size_t)Da * sizeof(float));
        memcpy(db + (size_t)i * Db, dout + i * w + Da, (size_t)Db * sizeof(float));
    }
}

void tr_add(float *out, const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}

/* ---- gradient clipping ----------------------------------------------------------------------- */

/* The pieces of a span list: piece p covers values [off, off + n) of span `span`. */
struct norm_piece {
    int span;
    size_t off, n;
};

#define NORM_PIECE ((size_t)1 << 16)

struct norm_job {
    const struct tr_span *spans;
    struct norm_piece *pieces;
    double *partial; /* sum of squares per piece (tr_grad_norm) */
    float factor;    /* the clipping factor (scale pass) */
};

static struct norm_piece *cut_pieces(const struct tr_span *spans, int n_spans, size_t *n_pieces)
{
    size_t n = 0;
    for (int s = 0; s < n_spans; s++)
        n += (spans[s].n + NORM_PIECE - 1) / NORM_PIECE;
    struct norm_piece *pc = tm_xmalloc((n ? n : 1) * sizeof(*pc));
    size_t k = 0;
    for (int s = 0; s < n_spans; s++)
        for (size_t off = 0; off < spans[s].n; off += NORM_PIECE)
            pc[k++] = (struct norm_piece){
                s, off, spans[s].n - off < NORM_PIECE ? spans[s].n - off : NORM_PIECE};
    *n_pieces = n;
    return pc;
}

TR_VECTOR_CLONES static void norm_piece_sum(void *ctx, size_t i)
{
    const struct norm_job *j = ctx;
    const struct norm_piece *pc = &j->pieces[i];
    const float *p = j->spans[pc->span].p + pc->off;
    double acc[4] = {0}; /* four chains: the adds overlap instead of waiting on each other */
    size_t k = 0;
    for (; k + 4 <= pc->n; k += 4)
        for (int l = 0; l < 4; l++)
            acc[l] += (double)p[k + l] * p[k + l];
    for (; k < pc->n; k++)
        acc[0] += (double)p[k] * p[k];
    j->partial[i] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

TR_VECTOR_CLONES static void norm_piece_scale(void *ctx, size_t i)
{
    const struct norm_job *j = ctx;
    const struct norm_piece *pc = &j->pieces[i];
    float *p = j->spans[pc->span].p + pc->off;
    for (size_t k = 0; k < pc->n; k++)
        p[k] *= j->factor;
}

static double norm_of(struct norm_job *j, size_t n_pieces, int threads)
{
    j->partial = tm_xmalloc((n_pieces ? n_pieces : 1) * sizeof(double));
    tr_parallel_for(threads, n_pieces, norm_piece_sum, j);
    double ss = 0.0;
    for (size_t i = 0; i < n_pieces; i++)
        ss += j->partial[i];
    free(j->partial);
    return sqrt(ss);
}

double tr_grad_norm(const struct tr_span *spans, int n_spans, int threads)
{
    size_t n;
    struct norm_job j = {.spans = spans, .pieces = cut_pieces(spans, n_spans, &n)};
    double norm = norm_of(&j, n, threads);
    free(j.pieces);
    return norm;
}

double tr_grad_clip(const struct tr_span *spans, int n_spans, double max_norm, int threads)
{
    size_t n;
    struct norm_job j = {.spans = spans, .pieces = cut_pieces(spans, n_spans, &n)};
    double norm = norm_of(&j, n, threads);
    if (isfinite(norm) && max_norm > 0.0 && norm > max_norm) {
        j.factor = (float)(max_norm / norm);
        tr_parallel_for(threads, n, norm_piece_scale, &j);
    }
    free(j.pieces);
    return norm;
}
