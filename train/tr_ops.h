/* tr_ops: the operations the CPU reference trainer builds its model from, each with a forward
 * and a backward pass, and the one GEMM entry point every matrix product goes through.
 * Internal to train/ (not part of train.h); the model, the trainer loop and the tests use it.
 *
 * Conventions for every function below:
 * - Tensors are float32, row-major, densely packed unless a leading dimension says otherwise.
 *   Shapes are written [outer, ..., inner]: q [B, T, H, hd] holds q[b][t][h][i] at
 *   ((b * T + t) * H + h) * hd + i. N is a number of rows (tokens), usually B * T, with the
 *   token of sequence b at position t in row b * T + t.
 * - Dimensions are int (the BLAS interface's type) and must be >= 0 unless stated; element
 *   counts are computed in size_t. A function that multiplies matrices checks that the counts
 *   it needs fit and returns TM_ERR_TOOBIG otherwise.
 * - Backward passes take the gradient of the loss with respect to the forward output (dy,
 *   dout, ...; never modified) and the tensors the forward pass read or saved.
 *   Gradients of INPUTS (activations) are WRITTEN (=): the old contents are ignored, so the
 *   caller need not zero them, and where one activation feeds two branches (a residual) the
 *   caller sums the two gradients with tr_add(). Gradients of PARAMETERS (weights, tables,
 *   norm scales) are ACCUMULATED (+=) so several micro-batches, or several uses of one weight
 *   (a shared embedding), add up; the caller zeroes them once per optimizer step. An input
 *   gradient pointer documented as "may be NULL" skips that gradient.
 * - Every array is borrowed for the duration of the call and owned by the caller; nothing is
 *   kept after a call returns. Outputs must not overlap inputs unless a function says so.
 * - Functions that return int return TM_OK or a negative tm_err code (core/tm_err.h) and log
 *   the reason (tm_log_error) with the shape or index involved; on error the outputs are
 *   unspecified. Functions returning void have no failure mode: their preconditions (non-NULL
 *   arrays of the stated sizes) are the caller's.
 * - Threading: every function is reentrant and may be called from several threads on
 *   disjoint outputs. The functions that take a thread count (tr_gemm() through its
 *   configuration, tr_attn_*, tr_xent(), tr_grad_norm()/tr_grad_clip()) split their work among
 *   that many workers (tm_run_threads); all others run on the calling thread. Attention, the
 *   cross-entropy and the norm cut their work by the data, never by the thread count, and
 *   compute each output in one piece or combine pieces in a fixed order, so their results are
 *   bit-identical for every thread count; tr_gemm()'s low bits depend on it (see there).
 *   "Deterministic" below always means: the same inputs and thread counts give the same bits. */
#ifndef TR_OPS_H
#define TR_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "tr_fp8.h"

/* ==== GEMM ================================================================================= */

/* How a product is computed. Every matrix product of the model goes through tr_gemm() with
 * one of these, so a reduced-precision or GPU path is a new mode, not a new call site. */
enum tr_gemm_mode {
    /* FP32 inputs, FP32 accumulation: cblas_sgemm (OpenBLAS). */
    TR_GEMM_F32 = 0,
    /* Both inputs rounded to bfloat16 (round to nearest, ties to even: tr_bf16_round()), then
     * multiplied with FP32 accumulation; C stays FP32. The product of two bf16 numbers is
     * exact in FP32 (8 + 8 significant bits), so this emulates a bf16 tensor-core GEMM up to
     * the order of the FP32 sums. */
    TR_GEMM_BF16 = 1,
    /* DeepSeek-V3's FP8 GEMM, emulated (tr_fp8.h): op(A) is quantized along K in 1 x 128 tiles
     * (128 x 128 blocks for a weight operand, see tr_gemm_op()), op(B) likewise along K, both
     * to g->fp8_fmt with g->fp8_pow2 scales, each from the FP32 values as stored (an operand
     * needed along its other axis is quantized along that axis, never transposed after
     * quantization); the product is accumulated as g->fp8_acc says. Only the Linear layers use
     * it: products that stay in higher precision go through tr_gemm_high(). */
    TR_GEMM_FP8 = 2,
};

/* A GEMM configuration: which mode, the workers a product may use, and the FP8 settings.
 * Owned by the model; borrowed by each call. */
struct tr_gemm_cfg {
    int mode;    /* enum tr_gemm_mode */
    int threads; /* workers a product may be split among; <= 1: the calling thread alone */
    /* TR_GEMM_FP8 only: */
    int fp8_fmt;                 /* enum tr_fp8_format (DeepSeek-V3: E4M3 everywhere) */
    int fp8_pow2;                /* 1: power-of-two scales */
    struct tr_fp8_accum fp8_acc; /* TR_FP8_ACCUM_DEFAULT: 14 bits, promoted every 128 */
    /* When not NULL, every Linear product (tr_linear_fwd/bwd) is also computed in FP32 and in
     * the FP8 emulation, from the same FP32 operands, and the difference recorded here (the
     * products the model uses are not changed). Not thread-safe: one model at a time. */
    struct tr_gemm_probe *probe;
};

/* The three products of a Linear layer (DeepSeek-V3's names): Fprop y = x W^T, Dgrad
 * dx = dy W, Wgrad dW = dy^T x. */
enum tr_gemm_role { TR_ROLE_FPROP = 0, TR_ROLE_DGRAD = 1, TR_ROLE_WGRAD = 2, TR_N_ROLES = 3 };

/* What FP8 does to the Linear products, per role: the sums over all products of
 * ||C_fp8 - C_fp32||^2 and ||C_fp32||^2 (Frobenius, in double), so sqrt(err2 / ref2) is the
 * relative error of the FP8 product against FP32; C_fp8 is computed with the configuration's
 * FP8 settings (for Wgrad, from the FP8-cached copy of x, as TR_GEMM_FP8 mode does). */
struct tr_gemm_probe {
    double err2[TR_N_ROLES], ref2[TR_N_ROLES];
    long products[TR_N_ROLES];
};

/* The configuration for a product that stays in higher precision in the FP8 recipe (the output
 * head, the MoE router, the attention core; DeepSeek-V3 section 3.3.1): *tmp filled with g's
 * settings, TR_GEMM_FP8 replaced by TR_GEMM_BF16 and no probe (these products are never FP8),
 * and returned; NULL for a NULL g. */
const struct tr_gemm_cfg *tr_gemm_high(const struct tr_gemm_cfg *g, struct tr_gemm_cfg *tmp);

/* C = alpha * op(A) * op(B) + beta * C, row-major, where op(X) is X or X^T.
 *
 * g:      the configuration; NULL means TR_GEMM_F32.
 * transA: 0: A is stored as op(A), M x K, element (m, k) at A[m * lda + k], lda >= max(1, K);
 *         1: A is stored as K x M, op(A)(m, k) = A[k * lda + m], lda >= max(1, M).
 * transB: 0: B is stored as K x N, (k, n) at B[k * ldb + n], ldb >= max(1, N);
 *         1: B is stored as N x K, op(B)(k, n) = B[n * ldb + k], ldb >= max(1, K).
 * C:      M x N, (m, n) at C[m * ldc + n], ldc >= max(1, N). Must not overlap A or B.
 * As in BLAS, beta == 0 means C is not read (NaN in it does not propagate). M or N == 0 is a
 * no-op; K == 0 gives C = beta * C. The leading dimensions let a caller multiply a strided
 * sub-matrix (one head of a [T, H, hd] tensor has ld H * hd) without copying.
 *
 * TR_GEMM_BF16 allocates scratch for the rounded copies of A and B on each call (tm_xmalloc,
 * freed before returning).
 *
 * Returns TM_OK; TM_ERR_USAGE for an unknown mode, a negative dimension, a leading dimension
 * below its minimum, a trans flag other than 0/1, or a NULL matrix whose size is not zero;
 * TM_ERR_TOOBIG when a matrix's element or byte count overflows size_t.
 *
 * Threading: a product of at least TR_GEMM_SPLIT_MACS multiply-adds (M N K) is cut along the
 * longer of M and N into g->threads pieces of whole 64-row (or column) blocks, each computed
 * by single-threaded OpenBLAS on its own worker (tr_gemm() sets OpenBLAS to one thread on
 * first use, so the two never oversubscribe the cores). Reentrant: the workers of another
 * split (tr_attn_*) call it with threads 1.
 *
 * Reproducibility: the same call with the same g->threads gives the same bits every time. A
 * different thread count may not: OpenBLAS's kernels compute a tile at the edge of a piece
 * (fewer rows than the kernel's unroll) with other code than a full one, so the low bits of
 * elements near a cut change when the cut moves (OpenBLAS 0.3.21 on Zen: row cuts at
 * multiples of 12 rows give identical bits, column cuts never do). */
int tr_gemm(const struct tr_gemm_cfg *g, int transA, int transB, int M, int N, int K, float alpha,
            const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* tr_gemm() with the kind of each operand for the FP8 mode: TR_FP8_TILES (an activation or a
 * gradient: 1 x 128 tiles along K) or TR_FP8_BLOCKS (a weight: 128 x 128 blocks, which are the
 * same blocks whichever axis K runs along). Other modes ignore the kinds. tr_gemm() is
 * tr_gemm_op() with TR_FP8_TILES for both. In FP8 mode the product runs as tr_fp8_gemm() on
 * g->threads workers (bit-identical for every count) and allocates the two quantized copies
 * for the call; an FP8 product over K > 128 needs fp8_acc.promote > 0 (TM_ERR_USAGE otherwise). */
int tr_gemm_op(const struct tr_gemm_cfg *g, int kindA, int kindB, int transA, int transB, int M,
               int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
               float beta, float *C, int ldc);

/* The naive triple loop with the same arguments and semantics as tr_gemm() (beta == 0: C not
 * read), always on unrounded FP32 inputs, accumulating each dot product in double and rounding
 * once. For tests: the reference every mode and path is compared with. Arguments are not
 * validated. Reentrant. */
void tr_gemm_ref(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc);

/* Products of fewer multiply-adds than this (M N K) run on the calling thread: below it,
 * starting a worker costs about as much as it saves (a 2^21 product takes about 0.1 ms on one
 * core). */
#define TR_GEMM_SPLIT_MACS (1 << 21)

/* x rounded to the nearest bfloat16 (the top 16 bits of a float32), ties to even, returned as
 * a float32 whose low 16 bits are zero. Finite values beyond the largest bf16 round to +-Inf
 * as IEEE rounding does; +-Inf and +-0 are kept; a NaN stays a NaN (its sign and top payload
 * bits are kept and the quiet bit is set, so the truncation cannot turn it into Inf). */
float tr_bf16_round(float x);

/* y[i] = tr_bf16_round(x[i]) for i < n. y may equal x (in place); other overlaps are not
 * allowed. */
void tr_bf16_round_array(float *y, const float *x, size_t n);

/* ==== Embedding ============================================================================ */

/* out[i] = table[ids[i]]: out [N, D], ids [N], table [V, D].
 * Returns TM_OK; TM_ERR_USAGE (logged with the row and the id) when an id is outside [0, V),
 * e.g. token shards written with a bigger vocabulary than the model's. */
int tr_embed_fwd(float *out, const int32_t *ids, const float *table, int N, int V, int D);

/* dtable[ids[i]] += dout[i] for every row i, in row order (rows sharing an id add up, in a
 * fixed order, so the result is deterministic). dtable [V, D] is accumulated.
 * Returns TM_OK; TM_ERR_USAGE for an id outside [0, V) (nothing is written then). */
int tr_embed_bwd(float *dtable, const float *dout, const int32_t *ids, int N, int V, int D);

/* ==== Linear =============================================================================== */

/* y = x W^T, no bias: x [N, in], W [out, in] (PyTorch's layout: row o holds the weights of
 * output o), y [N, out]. One tr_gemm_op() call, W the weight operand. Returns tr_gemm()'s
 * codes. */
int tr_linear_fwd(const struct tr_gemm_cfg *g, float *y, const float *x, const float *W, int N,
                  int in, int out);

/* dx = dy W (written; dx may be NULL to skip it, e.g. when x is not trainable), and
 * dW += dy^T x (accumulated). dy [N, out], x [N, in], W [out, in], dW [out, in].
 * Two tr_gemm_op() calls with the same configuration as the forward pass, so a
 * reduced-precision mode applies to the data-gradient and weight-gradient products too (as
 * DeepSeek-V3 runs Fprop, Dgrad and Wgrad in FP8). In TR_GEMM_FP8 mode x enters the
 * weight-gradient product as the forward pass's FP8 copy of it would be cached (DeepSeek-V3
 * caches Linear inputs in FP8 for the backward pass): quantized in 1 x 128 tiles along `in`,
 * dequantized, then quantized along the tokens for the product (scratch of N in floats).
 * Returns tr_gemm()'s codes. */
int tr_linear_bwd(const struct tr_gemm_cfg *g, float *dx, float *dW, const float *dy,
                  const float *x, const float *W, int N, int in, int out);

/* ==== RMSNorm ============================================================================== */

/* y = x / sqrt(mean(x^2) + eps) * w, per row: x, y [N, D], w [D]. Saves rstd [N] =
 * 1 / sqrt(mean(x^2) + eps) for the backward pass (the mean is accumulated in double).
 * y may equal x (in place). eps > 0 keeps an all-zero row finite. */
void tr_rmsnorm_fwd(float *y, float *rstd, const float *x, const float *w, int N, int D, float eps);

/* With xhat = x * rstd: dw += sum over rows of dy * xhat (accumulated), and
 * dx = rstd * (dy * w - xhat * mean(dy * w * xhat)) (written). rstd is the forward pass's.
 * dx may equal dy. */
void tr_rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x, const float *w,
                    const float *rstd, int N, int D);

/* ==== RoPE ================================================================================= */

/* Rotary position embedding on x [B, T, heads, hd] (q or k), hd even, into y (y may equal x).
 * Pairs are the two halves of each head, (i, i + hd/2) for i < hd/2 (the "rotate half" layout
 * of GPT-NeoX and Hugging Face LLaMA/DeepSeek, not interleaved (2i, 2i+1) pairs). Position
 * p = pos0 + t, pair i turns by angle p * theta^(-2i / hd) (theta 10000 in RoFormer and LLaMA):
 *   y[i]        = x[i] cos - x[i + hd/2] sin
 *   y[i + hd/2] = x[i] sin + x[i + hd/2] cos
 * pos0 is the position of t = 0 (nonzero when appending to a KV cache). Angles and their
 * sines and cosines are computed in double. */
void tr_rope_fwd(float *y, const float *x, int B, int T, int heads, int hd, double theta, int pos0);

/* The backward pass: a rotation is orthogonal, so dx = rotation by -angle of dy (written).
 * Same arguments as the forward pass; dx may equal dy. Also inverts tr_rope_fwd(). */
void tr_rope_bwd(float *dx, const float *dy, int B, int T, int heads, int hd, double theta,
                 int pos0);

/* ==== Causal self-attention, grouped-query ================================================= */

/* out = softmax(scale * q k^T + causal mask) v per sequence and query head.
 *
 * q [B, T, H, hd]; k, v [B, T, Hkv, hd]; out [B, T, H, hd]. H % Hkv == 0: query head h reads
 * key/value head h / (H / Hkv) (consecutive query heads share one, as in LLaMA-2's GQA).
 * Position t attends to positions 0..t of its own sequence. scale is usually 1 / sqrt(hd).
 * The softmax subtracts each row's maximum before exponentiating, so large scores do not
 * overflow. Saves lse [B, H, T], the log-sum-exp of each row's scaled, unmasked scores, from
 * which the backward pass recomputes the probabilities (O(B H T) memory instead of the
 * O(B H T^2) of saving them).
 *
 * The two products per (b, h) (scores = q_h k^T, out = P v) go through tr_gemm() with g, on
 * the strided heads in place. Work is split over (b, h) pairs among `threads` workers
 * (tm_run_threads, an atomic counter of pairs); each pair is computed by one worker alone,
 * so the result is bit-identical for every thread count. Each worker allocates 4 * T * T
 * bytes of scratch.
 *
 * Returns TM_OK; TM_ERR_USAGE for H % Hkv != 0, hd < 1 or other non-positive sizes;
 * TM_ERR_TOOBIG when B * H passes INT_MAX or the T x T scratch overflows size_t; or a
 * tr_gemm() error (the first one any worker met; the others stop at their next pair). */
int tr_attn_fwd(const struct tr_gemm_cfg *g, float *out, float *lse, const float *q, const float *k,
                const float *v, int B, int T, int H, int Hkv, int hd, float scale, int threads);

/* The backward pass of tr_attn_fwd(): dq [B, T, H, hd], dk, dv [B, T, Hkv, hd], all written.
 * dout [B, T, H, hd]; q, k, v, lse and the arguments as in the forward pass. With
 * P = exp(scale * q k^T - lse) (masked), dP = dout v^T, dS = P * (dP - rowsum(P * dP)):
 * dv = P^T dout, dq = scale * dS k, dk = scale * dS^T q, each k/v head summing over the query
 * heads that share it. Work is split over (b, kv head) pairs: the worker owning a pair sums
 * its query heads in head order, so the result is bit-identical for every thread count.
 * Each worker allocates 8 * T * T bytes of scratch. Returns as tr_attn_fwd(). */
int tr_attn_bwd(const struct tr_gemm_cfg *g, float *dq, float *dk, float *dv, const float *dout,
                const float *q, const float *k, const float *v, const float *lse, int B, int T,
                int H, int Hkv, int hd, float scale, int threads);

/* ==== SwiGLU =============================================================================== */

/* out = silu(a) * b elementwise over n values, silu(a) = a * sigmoid(a) (Shazeer, "GLU
 * Variants Improve Transformer", 2020); a and b are the gate and up projections. out may
 * equal a or b. */
void tr_swiglu_fwd(float *out, const float *a, const float *b, size_t n);

/* da = dout * b * silu'(a), db = dout * silu(a), with silu'(a) = s (1 + a (1 - s)) and
 * s = sigmoid(a); both written. da and db must not overlap a, b or each other; either may
 * equal dout. */
void tr_swiglu_bwd(float *da, float *db, const float *dout, const float *a, const float *b,
                   size_t n);

/* ==== Softmax cross-entropy ================================================================ */

/* The value used in targets for a position that does not count (padding, a document
 * boundary). */
#define TR_XENT_IGNORE (-1)

/* Mean cross-entropy of softmax(logits) against targets.
 *
 * logits [N, V]; targets [N], each in [0, V) or TR_XENT_IGNORE.
 * *loss:      the mean of -log softmax(logits[i])[targets[i]] over the counted positions; 0
 *             when none counts. Each row subtracts its maximum, sums exp(l - max) in float
 *             (a vectorized exponential accurate to a few ulps, eight partial sums combined
 *             in double) and takes its log-sum-exp in double; rows are summed in row order.
 * *n_counted: the number of counted positions (may be NULL).
 * dlogits:    [N, V], written when not NULL: grad_scale * d(*loss)/d(logits), i.e.
 *             grad_scale * (softmax - onehot(target)) / n_counted for counted rows and zero
 *             rows for ignored ones (all zero when none counts). grad_scale carries a loss
 *             weight (the MTP lambda) or 1. dlogits may equal logits (in place).
 * threads:    rows are split among this many workers when N V >= 65536 (each row computed by
 *             one worker: the result does not depend on the count).
 * Allocates N doubles of scratch. Returns TM_OK; TM_ERR_USAGE (logged with the row) for a
 * target outside [0, V) that is not TR_XENT_IGNORE. */
int tr_xent(float *loss, int *n_counted, float *dlogits, const float *logits,
            const int32_t *targets, int N, int V, float grad_scale, int threads);

/* ==== MoE router, DeepSeek-V3 style ======================================================== */

/* DeepSeek-V3 (arXiv 2412.19437, section 2.1.2): a token's affinity to routed expert e is
 * s_e = sigmoid(u_e), u = x W_r^T (computed by the caller with tr_linear_fwd, u [N, E]). Each
 * token goes to the K experts with the largest s_e + bias_e; the bias (auxiliary-loss-free
 * balancing, section 2.1.2) affects only this selection. The gate weights are the selected
 * affinities normalized to sum to one, times route_scale:
 *   g_k = route_scale * s_{sel_k} / sum_j s_{sel_j}.
 * The node-limited (group) routing of DeepSeek-V3 is not implemented (one group).
 *
 * u [N, E]; bias [E] (NULL means zero); 1 <= K <= E.
 * s    [N, E] written: the affinities, saved for the backward pass and the balance loss.
 * sel  [N, K] written: the selected experts per token, by descending s + bias; among equal
 *      scores the lower expert index comes first (a NaN score is never preferred to a number),
 *      so the selection is a pure function of the inputs.
 * gate [N, K] written: the gate weight of sel[i][k] (all 0 in the degenerate case where the
 *      selected affinities sum to 0, which needs every selected u below about -100).
 * Returns TM_OK; TM_ERR_USAGE for K outside [1, E] or N < 0 (N == 0 does nothing). */
int tr_router_fwd(float *s, int32_t *sel, float *gate, const float *u, const float *bias, int N,
                  int E, int K, float route_scale);

/* The backward pass of the gate weights, with the selection held fixed (it is a discrete
 * choice and has no gradient): from dgate [N, K] to du [N, E] (written), through the
 * normalization and the sigmoid:
 *   ds_{sel_k} = route_scale / S * (dgate_k - sum_j dgate_j s_{sel_j} / S), S = sum_j s_{sel_j},
 *   du_e = ds_e * s_e (1 - s_e), zero for experts not selected.
 * s, sel as the forward pass wrote them. */
void tr_router_bwd(float *du, const float *dgate, const float *s, const int32_t *sel, int N, int E,
                   int K, float route_scale);

/* The sequence-wise balance loss of DeepSeek-V3 (arXiv 2412.19437, eqs. 17-20), averaged over
 * the B sequences of T tokens each (N = B T rows, sequence b in rows b T .. b T + T - 1):
 *   f_i = E / (K T) * (number of tokens of the sequence that selected expert i),
 *   P_i = (1 / T) * sum over its tokens of s_i / sum_j s_j,
 *   L_b = alpha * sum_i f_i P_i,    *loss = (1 / B) sum_b L_b.
 * f is a count of discrete choices and carries no gradient; du [N, E], when not NULL, is
 * written with d(*loss)/du through P and the sigmoid (add it to the gate path's du with
 * tr_add()). s and sel as tr_router_fwd() wrote them.
 * Returns TM_OK; TM_ERR_USAGE for a selected expert outside [0, E). */
int tr_router_balance(float *loss, float *du, const float *s, const int32_t *sel, int B, int T,
                      int E, int K, float alpha);

/* load[e] = number of (token, slot) pairs in sel [N, K] that chose expert e, for e < E
 * (written; sums to N K). Entries of sel outside [0, E) are not counted. */
void tr_router_count_load(int64_t *load, const int32_t *sel, int N, int K, int E);

/* The auxiliary-loss-free bias update of DeepSeek-V3 (section 2.1.2), once per step:
 * bias[i] += gamma * sign(mean_load - load[i]), with mean_load the mean of load[0..E) and
 * sign(0) = 0: overloaded experts become less attractive, underloaded ones more. load is the
 * step's count per expert (tr_router_count_load, summed over data-parallel ranks). DeepSeek-V3
 * uses gamma = 0.001 for most of training. */
void tr_router_bias_update(float *bias, const int64_t *load, int E, float gamma);

/* ==== Shape helpers ======================================================================== */

/* out [N, Da + Db] = a [N, Da] next to b [N, Db] along the feature axis (row i is a[i] then
 * b[i]). The multi-token-prediction module combines rmsnorm(h) with rmsnorm(emb) this way
 * before its [2D -> D] projection (DeepSeek-V3, section 2.2). */
void tr_concat_fwd(float *out, const float *a, const float *b, int N, int Da, int Db);

/* The backward pass: splits dout [N, Da + Db] into da [N, Da] and db [N, Db] (written). */
void tr_concat_bwd(float *da, float *db, const float *dout, int N, int Da, int Db);

/* out = a + b over n values; out may equal a or b. The residual connection; its backward
 * pass hands dout to both branches unchanged, and this same function sums the gradients
 * where two branches meet. */
void tr_add(float *out, const float *a, const float *b, size_t n);

/* ==== Gradient clipping ==================================================================== */

/* One buffer of a list: n floats at p (borrowed). */
struct tr_span {
    float *p;
    size_t n;
};

/* The global L2 norm of every value of the n_spans buffers: sqrt of the sum of squares. Each
 * buffer is cut into pieces of 2^16 values whose sums of squares (in double) run on up to
 * `threads` workers and are added in list order, so the result is deterministic and does not
 * depend on `threads`. */
double tr_grad_norm(const struct tr_span *spans, int n_spans, int threads);

/* Global-norm clipping: computes the norm as tr_grad_norm() and, when it exceeds max_norm,
 * multiplies every value by max_norm / norm (on `threads` workers), so the norm becomes
 * max_norm. A norm that is not finite (an overflowed or NaN gradient) leaves the buffers
 * untouched: the caller sees it in the return value and decides (skip the step). max_norm <= 0
 * disables the scaling. Returns the norm before clipping. Allocates scratch for one double
 * per piece. */
double tr_grad_clip(const struct tr_span *spans, int n_spans, double max_norm, int threads);

#endif
