/* tr_gemm: the single entry point for the trainer's matrix products, its naive reference, and
 * bfloat16 rounding (see tr_ops.h). */
#include "tr_ops.h"

#include <cblas.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tm_err.h"
#include "tm_log.h"
#include "tm_mem.h"
#include "tm_thread.h"

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

void tr_gemm_set_threads(int n)
{
    openblas_set_num_threads(n > 0 ? n : tm_thread_count(0));
}

int tr_gemm_threads(void)
{
    return openblas_get_num_threads();
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

int tr_gemm(const struct tr_gemm_cfg *g, int transA, int transB, int M, int N, int K, float alpha,
            const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    int mode = g ? g->mode : TR_GEMM_F32;
    if (mode != TR_GEMM_F32 && mode != TR_GEMM_BF16) {
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

    enum CBLAS_TRANSPOSE ta = transA ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE tb = transB ? CblasTrans : CblasNoTrans;
    if (mode == TR_GEMM_F32) {
        cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
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
    cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, ra, a_cols, rb, b_cols, beta, C, ldc);
    free(ra);
    return TM_OK;
}
