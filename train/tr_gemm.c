/* tr_gemm: the single entry point for the trainer's matrix products, its naive reference, and
 * bfloat16 rounding (see tr_ops.h). */
#include "tr_ops.h"

#include <cblas.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tm_err.h"
#include "tm_log.h"
#include "tm_mem.h"
#include "tr_internal.h"

/* ---- bfloat16 -------------------------------------------------------------------------------- */

#define BF16_DROP_MASK 0x0000ffffu /* the 16 mantissa bits a bf16 drops */
#define F32_EXP_MASK   0x7f800000u
#define F32_QUIET_BIT  0x00400000u /* top mantissa bit: set in a quiet NaN, kept by bf16 */

float tr_bf16_round(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof(u));
    if ((u & 0x7fffffffu) > F32_EXP_MASK) {
        /* NaN: rounding could carry into the exponent or drop every set payload bit (giving
         * Inf); setting the quiet bit keeps it a NaN after truncation. */
        u = (u | F32_QUIET_BIT) & ~BF16_DROP_MASK;
    } else {
        /* Round to nearest, ties to even: add just under half an ulp of the kept part, plus
         * one when the kept part is odd, then truncate. A carry into the exponent is the
         * correct rounding, up to Inf for values past the largest finite bf16. */
        u += 0x7fffu + ((u >> 16) & 1u);
        u &= ~BF16_DROP_MASK;
    }
    memcpy(&x, &u, sizeof(x));
    return x;
}

void tr_bf16_round_array(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = tr_bf16_round(x[i]);
}

/* ---- threads --------------------------------------------------------------------------------- */

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

/* tr_gemm() splits products itself; OpenBLAS's own pool would oversubscribe the cores and spin
 * (sched_yield) while the trainer's other work runs. */
static void blas_single_thread(void)
{
    openblas_set_num_threads(1);
}

/* One split product: pieces of whole GEMM_BLOCK-row blocks of C (split_m) or column blocks,
 * piece i covering blocks [i * n_blocks / parts, (i + 1) * n_blocks / parts). */
struct gemm_split {
    enum CBLAS_TRANSPOSE ta, tb;
    int transA, transB, M, N, K, lda, ldb, ldc;
    float alpha, beta;
    const float *A, *B;
    float *C;
    int split_m, n_blocks, parts;
};

enum { GEMM_BLOCK = 64 };

static void gemm_piece(void *ctx, size_t i)
{
    const struct gemm_split *s = ctx;
    int total = s->split_m ? s->M : s->N;
    long b0 = (long)i * s->n_blocks / s->parts, b1 = (long)(i + 1) * s->n_blocks / s->parts;
    int lo = (int)(b0 * GEMM_BLOCK), hi = (int)(b1 * GEMM_BLOCK);
    if (hi > total)
        hi = total;
    if (lo >= hi)
        return;
    if (s->split_m) {
        /* Rows lo..hi of op(A) and of C. */
        const float *a = s->transA ? s->A + lo : s->A + (size_t)lo * s->lda;
        cblas_sgemm(CblasRowMajor, s->ta, s->tb, hi - lo, s->N, s->K, s->alpha, a, s->lda, s->B,
                    s->ldb, s->beta, s->C + (size_t)lo * s->ldc, s->ldc);
    } else {
        /* Columns lo..hi of op(B) and of C. */
        const float *b = s->transB ? s->B + (size_t)lo * s->ldb : s->B + lo;
        cblas_sgemm(CblasRowMajor, s->ta, s->tb, s->M, hi - lo, s->K, s->alpha, s->A, s->lda, b,
                    s->ldb, s->beta, s->C + lo, s->ldc);
    }
}

/* cblas_sgemm, split among up to `threads` workers when the product is big enough. */
static void sgemm_split(int threads, int transA, int transB, int M, int N, int K, float alpha,
                        const float *A, int lda, const float *B, int ldb, float beta, float *C,
                        int ldc)
{
    struct gemm_split s = {
        .ta = transA ? CblasTrans : CblasNoTrans,
        .tb = transB ? CblasTrans : CblasNoTrans,
        .transA = transA,
        .transB = transB,
        .M = M,
        .N = N,
        .K = K,
        .lda = lda,
        .ldb = ldb,
        .ldc = ldc,
        .alpha = alpha,
        .beta = beta,
        .A = A,
        .B = B,
        .C = C,
        .split_m = M >= N,
    };
    int total = s.split_m ? M : N;
    s.n_blocks = (total + GEMM_BLOCK - 1) / GEMM_BLOCK;
    s.parts = threads < s.n_blocks ? threads : s.n_blocks;
    if (s.parts < 1 || (double)M * N * K < (double)TR_GEMM_SPLIT_MACS)
        s.parts = 1;
    tr_parallel_for(s.parts, (size_t)s.parts, gemm_piece, &s);
}

/* ---- the reference --------------------------------------------------------------------------- */

void tr_gemm_ref(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc)
{
    for (int m = 0; m < M; m++) {
        for (int n = 0; n < N; n++) {
            double acc = 0.0;
            if (alpha != 0.0f) {
                for (int k = 0; k < K; k++) {
                    double a = transA ? A[(size_t)k * lda + m] : A[(size_t)m * lda + k];
                    double b = transB ? B[(size_t)n * ldb + k] : B[(size_t)k * ldb + n];
                    acc += a * b;
                }
            }
            float *c = &C[(size_t)m * ldc + n];
            double r = (double)alpha * acc;
            if (beta != 0.0f)
                r += (double)beta * *c; /* beta == 0: C is not read, as in BLAS */
            *c = (float)r;
        }
    }
}

/* ---- tr_gemm --------------------------------------------------------------------------------- */

/* Checks one stored matrix of rows x cols with leading dimension ld and computes the number
 * of floats it spans, (rows - 1) * ld + cols (0 when empty). */
static int check_matrix(const char *name, const float *p, int rows, int cols, int ld, size_t *span)
{
    *span = 0;
    if (ld < (cols > 1 ? cols : 1)) {
        tm_log_error("tr_gemm: leading dimension of %s is %d, below %d", name, ld,
                     cols > 1 ? cols : 1);
        return TM_ERR_USAGE;
    }
    if (rows == 0 || cols == 0)
        return TM_OK;
    size_t s;
    if (tm_mul_overflow((size_t)(rows - 1), (size_t)ld, &s) || s > SIZE_MAX - (size_t)cols ||
        s + (size_t)cols > SIZE_MAX / sizeof(float)) {
        tm_log_error("tr_gemm: %s (%d x %d, ld %d) overflows size_t", name, rows, cols, ld);
        return TM_ERR_TOOBIG;
    }
    if (p == NULL) {
        tm_log_error("tr_gemm: NULL %s for a %d x %d matrix", name, rows, cols);
        return TM_ERR_USAGE;
    }
    *span = s + (size_t)cols;
    return TM_OK;
}

/* Copies a rows x cols matrix with leading dimension ld into a packed one, rounding each
 * value to bf16. */
static void pack_bf16(float *dst, const float *src, int rows, int cols, int ld)
{
    for (int r = 0; r < rows; r++)
        tr_bf16_round_array(dst + (size_t)r * cols, src + (size_t)r * ld, (size_t)cols);
}

/* C = beta * C, the whole product when K == 0 (some BLAS builds skip the scaling then). */
static void scale_c(float *C, int M, int N, int ldc, float beta)
{
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++)
            C[(size_t)m * ldc + n] = beta == 0.0f ? 0.0f : beta * C[(size_t)m * ldc + n];
}

const struct tr_gemm_cfg *tr_gemm_high(const struct tr_gemm_cfg *g, struct tr_gemm_cfg *tmp)
{
    if (!g)
        return g;
    *tmp = *g;
    if (tmp->mode == TR_GEMM_FP8)
        tmp->mode = TR_GEMM_BF16;
    tmp->probe = NULL; /* these products are not FP8 candidates */
    return tmp;
}

/* The FP8 product: op(A) as M x K and op(B) as N x K (both K contiguous), each quantized from
 * the stored FP32 values along K, then the emulated GEMM. */
static int gemm_fp8(const struct tr_gemm_cfg *g, int kindA, int kindB, int transA, int transB,
                    int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                    int ldb, float beta, float *C, int ldc)
{
    struct tr_fp8_mat qa, qb;
    int rc = tr_fp8_mat_init(&qa, M, K, kindA, g->fp8_fmt);
    if (rc != TM_OK)
        return rc;
    if ((rc = tr_fp8_mat_init(&qb, N, K, kindB, g->fp8_fmt)) != TM_OK) {
        tr_fp8_mat_release(&qa);
        return rc;
    }
    /* op(A) (m, k) is A[m lda + k] untransposed; op(B) as N x K is B[n ldb + k] when transB. */
    tr_fp8_quantize(&qa, A, transA, lda, g->fp8_pow2, g->threads);
    tr_fp8_quantize(&qb, B, !transB, ldb, g->fp8_pow2, g->threads);
    rc = tr_fp8_gemm(C, ldc, &qa, &qb, alpha, beta, &g->fp8_acc, g->threads);
    tr_fp8_mat_release(&qa);
    tr_fp8_mat_release(&qb);
    return rc;
}

int tr_gemm(const struct tr_gemm_cfg *g, int transA, int transB, int M, int N, int K, float alpha,
            const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    return tr_gemm_op(g, TR_FP8_TILES, TR_FP8_TILES, transA, transB, M, N, K, alpha, A, lda, B, ldb,
                      beta, C, ldc);
}

int tr_gemm_op(const struct tr_gemm_cfg *g, int kindA, int kindB, int transA, int transB, int M,
               int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
               float beta, float *C, int ldc)
{
    int mode = g ? g->mode : TR_GEMM_F32;
    if (mode != TR_GEMM_F32 && mode != TR_GEMM_BF16 && mode != TR_GEMM_FP8) {
        tm_log_error("tr_gemm: unknown mode %d", mode);
        return TM_ERR_USAGE;
    }
    if ((transA != 0 && transA != 1) || (transB != 0 && transB != 1) || M < 0 || N < 0 || K < 0) {
        tm_log_error("tr_gemm: bad arguments transA %d transB %d M %d N %d K %d", transA, transB, M,
                     N, K);
        return TM_ERR_USAGE;
    }
    /* Stored shapes: op(A) is M x K, so A is stored K x M when transposed; likewise B. */
    int a_rows = transA ? K : M, a_cols = transA ? M : K;
    int b_rows = transB ? N : K, b_cols = transB ? K : N;
    size_t a_span, b_span, c_span;
    int rc = check_matrix("A", A, a_rows, a_cols, lda, &a_span);
    if (rc == TM_OK)
        rc = check_matrix("B", B, b_rows, b_cols, ldb, &b_span);
    if (rc == TM_OK)
        rc = check_matrix("C", C, M, N, ldc, &c_span);
    if (rc != TM_OK)
        return rc;
    if (M == 0 || N == 0)
        return TM_OK;
    if (K == 0) {
        scale_c(C, M, N, ldc, beta);
        return TM_OK;
    }

    if (mode == TR_GEMM_FP8)
        return gemm_fp8(g, kindA, kindB, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C,
                        ldc);
    pthread_once(&blas_once, blas_single_thread);
    int threads = g ? g->threads : 1;
    if (mode == TR_GEMM_F32) {
        sgemm_split(threads, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return TM_OK;
    }

    /* BF16: round packed copies (the spans were checked above, so the packed sizes, which are
     * no larger, fit too), then the FP32 product of the rounded values. */
    size_t a_n = (size_t)a_rows * (size_t)a_cols, b_n = (size_t)b_rows * (size_t)b_cols;
    if (a_n > SIZE_MAX / sizeof(float) - b_n) {
        tm_log_error("tr_gemm: bf16 scratch for %zu + %zu floats overflows size_t", a_n, b_n);
        return TM_ERR_TOOBIG;
    }
    float *ra = tm_xmalloc((a_n + b_n) * sizeof(float));
    float *rb = ra + a_n;
    pack_bf16(ra, A, a_rows, a_cols, lda);
    pack_bf16(rb, B, b_rows, b_cols, ldb);
    sgemm_split(threads, transA, transB, M, N, K, alpha, ra, a_cols, rb, b_cols, beta, C, ldc);
    free(ra);
    return TM_OK;
}
