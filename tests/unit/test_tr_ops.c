/* train: the operation layer of the CPU reference trainer (train/tr_ops.h).
 *
 * - Every backward pass is checked against central finite differences of the forward pass:
 *   for random inputs and a random projection R, L = sum(out * R) (in double); the analytic
 *   gradient (the backward pass fed dout = R) of every input and every parameter must match
 *   (L(x + h) - L(x - h)) / 2h to max |analytic - numeric| / max(1, |numeric|) < FD_TOL
 *   (3e-3; h = 1e-3, or 1e-2 for the scalar losses). The forward passes run in float, so the
 *   tolerance covers the float rounding of L divided by 2h. Parameter gradients start from random
 * values and the increment is compared (they must accumulate); input gradients start as NaN (they
 * must be written, not accumulated).
 * - Forward passes are compared with plain loops in double (GEMM in all four transpose
 *   combinations with odd sizes and padded leading dimensions, attention, RMSNorm, RoPE,
 *   cross-entropy, the balance loss), bf16 rounding with known bit patterns.
 * - Properties: the causal mask, grouped-query heads equal duplicated heads, the router's
 *   tie-breaking and a bias that changes the selection but not the gates, the bias update
 *   balancing a skewed router (and not with gamma 0).
 * - Thread counts: attention, cross-entropy, gradient norm and clipping give bit-identical
 *   results for 1, 2 and 3 threads on shapes big enough to be split; a split GEMM (past
 *   TR_GEMM_SPLIT_MACS, block counts that do not divide evenly, along M and along N) matches
 *   the reference for 1, 2 and 3 threads and repeats its bits at each count.
 * Shapes are small so the whole file runs in about a second. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tm_err.h"
#include "tm_log.h"
#include "tm_rand.h"
#include "tr_ops.h"

/* Finite differences. FD_STEP is h for the ops with tensor outputs; FD_STEP_LOSS for the losses
 * (cross-entropy, balance loss), which come back as one float scalar whose rounding (~1e-7
 * relative) divided by 2h would dominate with h = 1e-3. FD_TOL bounds
 * max |analytic - numeric| / max(1, |numeric|); the worst value measured over all checks is
 * 3.6e-4 (the balance loss; printed per check), so the bound has an eightfold margin while a
 * missing term of a gradient (errors of order 0.1) is far above it. */
#define FD_STEP      1e-3f
#define FD_STEP_LOSS 1e-2f
#define FD_TOL       3e-3

/* ---- helpers ------------------------------------------------------------------------------- */

static uint64_t rng_state = 42;

/* Uniform in [-1, 1). */
static float frand(void)
{
    return (float)((tm_splitmix64(&rng_state) >> 40) * (2.0 / (1 << 24)) - 1.0);
}

static float *rand_buf(size_t n, float scale)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = scale * frand();
    return p;
}

static float *nan_buf(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = NAN;
    return p;
}

static float *copy_buf(const float *x, size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(p);
    memcpy(p, x, n * sizeof(float));
    return p;
}

static uint32_t bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof(u));
    return u;
}

static float from_bits(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof(x));
    return x;
}

/* A forward pass under test: reads its inputs from ctx, writes its output into out. */
typedef void (*fwd_fn)(void *ctx, float *out);

static double project(const float *out, const float *R, size_t n)
{
    double l = 0.0;
    for (size_t i = 0; i < n; i++)
        l += (double)out[i] * R[i];
    return l;
}

/* Checks grad (n values, the analytic dL/dx) against central differences of L = sum(f(ctx) *
 * R) over each x[i]; x is restored. out is scratch of nout floats. */
static void fd_check(const char *name, fwd_fn f, void *ctx, float *out, const float *R, size_t nout,
                     float *x, const float *grad, size_t n, float h)
{
    double worst = 0.0, gmax = 0.0;
    size_t worst_i = 0;
    for (size_t i = 0; i < n; i++) {
        float keep = x[i];
        x[i] = keep + h;
        f(ctx, out);
        double lp = project(out, R, nout);
        x[i] = keep - h;
        f(ctx, out);
        double lm = project(out, R, nout);
        x[i] = keep;
        /* The step actually taken, as float rounding of keep +- h leaves it. */
        double num = (lp - lm) / ((double)(keep + h) - (double)(keep - h));
        double err = fabs(grad[i] - num) / fmax(1.0, fabs(num));
        if (!(err <= worst)) { /* also catches a NaN gradient */
            worst = err;
            worst_i = i;
        }
        gmax = fmax(gmax, fabs(grad[i]));
    }
    print_message("fd %-18s worst %.2e (max |grad| %.2e)\n", name, worst, gmax);
    if (!(worst < FD_TOL) || gmax < 1e-4)
        print_error("%s: worst relative error %.3g at %zu (analytic %.6g), max |grad| %.3g\n", name,
                    worst, worst_i, (double)grad[worst_i], gmax);
    assert_true(worst < FD_TOL);
    assert_true(gmax >= 1e-4); /* a gradient that is all zero would pass vacuously */
}

/* grad -= init: turns an accumulated parameter gradient into the increment of this call. */
static void sub_init(float *grad, const float *init, size_t n)
{
    for (size_t i = 0; i < n; i++)
        grad[i] -= init[i];
}

/* ---- bf16 ---------------------------------------------------------------------------------- */

static void test_bf16_round(void **state)
{
    (void)state;
    static const struct {
        uint32_t in, want;
    } cases[] = {
        {0x3f800000u, 0x3f800000u}, /* 1.0 exact */
        {0x3f807fffu, 0x3f800000u}, /* just under half an ulp: down */
        {0x3f808000u, 0x3f800000u}, /* tie, kept part even: stays */
        {0x3f808001u, 0x3f810000u}, /* just over half: up */
        {0x3f818000u, 0x3f820000u}, /* tie, kept part odd: up to even */
        {0xbf808000u, 0xbf800000u}, /* negative tie: magnitude to even */
        {0xbf818000u, 0xbf820000u}, {0x00000000u, 0x00000000u}, /* +0 */
        {0x80000000u, 0x80000000u},                             /* -0 */
        {0x00008000u, 0x00000000u},                             /* subnormal tie to even (zero) */
        {0x00018000u, 0x00020000u},                             /* subnormal tie, odd: up */
        {0x7f7f7fffu, 0x7f7f0000u},                             /* largest bf16 stays */
        {0x7f7f8000u, 0x7f800000u}, /* tie past the largest bf16: to Inf (even) */
        {0x7f7fffffu, 0x7f800000u}, /* FLT_MAX rounds to Inf */
        {0x7f800000u, 0x7f800000u}, /* +Inf */
        {0xff800000u, 0xff800000u}, /* -Inf */
        {0x7fc00000u, 0x7fc00000u}, /* quiet NaN */
        {0xffc00001u, 0xffc00000u}, /* negative NaN keeps its sign */
        {0x7f800001u, 0x7fc00000u}, /* NaN whose payload is all in the dropped bits */
        {0x7fffffffu, 0x7fff0000u}, /* would carry into the sign if rounded like a number */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint32_t got = bits(tr_bf16_round(from_bits(cases[i].in)));
        if (got != cases[i].want)
            print_error("bf16(0x%08x) = 0x%08x, want 0x%08x\n", cases[i].in, got, cases[i].want);
        assert_true(got == cases[i].want);
    }
    assert_true(isnan(tr_bf16_round(NAN)));

    /* The array version, in place, agrees with the scalar one. */
    float x[64], y[64];
    for (int i = 0; i < 64; i++)
        x[i] = y[i] = 100.0f * frand();
    tr_bf16_round_array(y, y, 64);
    for (int i = 0; i < 64; i++) {
        assert_true(bits(y[i]) == bits(tr_bf16_round(x[i])));
        assert_true((bits(y[i]) & 0xffffu) == 0);
        assert_true(fabsf(y[i] - x[i]) <= fabsf(x[i]) * (1.0f / 256.0f)); /* half a bf16 ulp */
    }
}

/* ---- GEMM ---------------------------------------------------------------------------------- */

/* Runs tr_gemm in `mode` against tr_gemm_ref on inputs pre-rounded to bf16 when mode is BF16,
 * for one shape, transpose pair and beta, with padded leading dimensions. The bound per element
 * is 1e-5 * (|alpha| sum_k |a b| + |beta c|): the float accumulation error for K <= 65. */
static void gemm_case(int mode, int ta, int tb, int M, int N, int K, float beta, int threads)
{
    const int pad = 3;
    int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
    int lda = ac + pad, ldb = bc + pad, ldc = N + pad;
    float alpha = 0.7f;
    float *A = rand_buf((size_t)ar * lda, 1.0f), *Bm = rand_buf((size_t)br * ldb, 1.0f);
    float *C = rand_buf((size_t)M * ldc, 1.0f);
    float *Cref = copy_buf(C, (size_t)M * ldc);
    if (beta == 0.0f)
        for (size_t i = 0; i < (size_t)M * ldc; i++)
            if (i % ldc < (size_t)N)
                C[i] = NAN; /* beta == 0: C must not be read */
    float *Ar = copy_buf(A, (size_t)ar * lda), *Br = copy_buf(Bm, (size_t)br * ldb);
    if (mode == TR_GEMM_BF16) {
        tr_bf16_round_array(Ar, Ar, (size_t)ar * lda);
        tr_bf16_round_array(Br, Br, (size_t)br * ldb);
    }
    struct tr_gemm_cfg g = {.mode = mode, .threads = threads};
    assert_int_equal(tr_gemm(&g, ta, tb, M, N, K, alpha, A, lda, Bm, ldb, beta, C, ldc), TM_OK);
    float *C0 = copy_buf(Cref, (size_t)M * ldc);
    tr_gemm_ref(ta, tb, M, N, K, alpha, Ar, lda, Br, ldb, beta, Cref, ldc);
    for (int m = 0; m < M; m++) {
        for (int n = 0; n < ldc; n++) {
            size_t i = (size_t)m * ldc + n;
            if (n >= N) { /* the padding is never written */
                assert_true(bits(C[i]) == bits(C0[i]));
                continue;
            }
            double mag = 0.0;
            for (int k = 0; k < K; k++) {
                double a = ta ? Ar[(size_t)k * lda + m] : Ar[(size_t)m * lda + k];
                double b = tb ? Br[(size_t)n * ldb + k] : Br[(size_t)k * ldb + n];
                mag += fabs(a * b);
            }
            double bound = 1e-5 * (fabs(alpha) * mag + fabs(beta * C0[i])) + 1e-30;
            if (!(fabs(C[i] - Cref[i]) <= bound))
                print_error("mode %d ta %d tb %d %dx%dx%d beta %g: C[%d][%d] %.9g ref %.9g\n", mode,
                            ta, tb, M, N, K, beta, m, n, C[i], Cref[i]);
            assert_true(fabs(C[i] - Cref[i]) <= bound);
        }
    }
    free(A);
    free(Bm);
    free(C);
    free(Cref);
    free(C0);
    free(Ar);
    free(Br);
}

static void test_gemm_vs_ref(void **state)
{
    (void)state;
    static const int shapes[][3] = {{1, 1, 1}, {7, 5, 3}, {13, 17, 11}, {33, 9, 65}, {4, 31, 2}};
    for (int mode = TR_GEMM_F32; mode <= TR_GEMM_BF16; mode++)
        for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++)
            for (int ta = 0; ta < 2; ta++)
                for (int tb = 0; tb < 2; tb++) {
                    gemm_case(mode, ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], 0.0f, 1);
                    gemm_case(mode, ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], 1.3f, 1);
                }
}

/* Products big enough to be split (M N K >= TR_GEMM_SPLIT_MACS): along M (M >= N) and along N,
 * with a last block of odd size. At 1, 2 and 3 threads the result matches the reference, and a
 * second call with the same count repeats its bits. */
static void test_gemm_threads(void **state)
{
    (void)state;
    static const int shapes[][3] = {{200, 130, 97}, {97, 300, 80}, {129, 65, 257}};
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        assert_true((double)M * N * K >= TR_GEMM_SPLIT_MACS);
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int th = 1; th <= 3; th++) {
                    gemm_case(TR_GEMM_F32, ta, tb, M, N, K, 0.5f, th);
                    gemm_case(TR_GEMM_BF16, ta, tb, M, N, K, 0.0f, th);
                }
        size_t csz = (size_t)M * N;
        float *A = rand_buf((size_t)M * K, 1.0f), *Bm = rand_buf((size_t)K * N, 1.0f);
        float *C1 = calloc(csz, sizeof(float)), *C2 = calloc(csz, sizeof(float));
        struct tr_gemm_cfg g = {.mode = TR_GEMM_F32, .threads = 2};
        assert_int_equal(tr_gemm(&g, 0, 0, M, N, K, 1.0f, A, K, Bm, N, 0.0f, C1, N), TM_OK);
        assert_int_equal(tr_gemm(&g, 0, 0, M, N, K, 1.0f, A, K, Bm, N, 0.0f, C2, N), TM_OK);
        assert_memory_equal(C1, C2, csz * sizeof(float));
        free(A);
        free(Bm);
        free(C1);
        free(C2);
    }
}

/* BF16 mode really rounds: on random inputs it differs from the FP32 product, and equals the
 * FP32 product of the rounded inputs bit for bit (same BLAS call on the same values). */
static void test_gemm_bf16_rounds(void **state)
{
    (void)state;
    enum { M = 9, N = 11, K = 16 };
    float *A = rand_buf(M * K, 1.0f), *Bm = rand_buf(K * N, 1.0f);
    float C32[M * N], C16[M * N], Cr[M * N];
    struct tr_gemm_cfg f32 = {.mode = TR_GEMM_F32}, bf16 = {.mode = TR_GEMM_BF16};
    assert_int_equal(tr_gemm(&f32, 0, 0, M, N, K, 1.0f, A, K, Bm, N, 0.0f, C32, N), TM_OK);
    assert_int_equal(tr_gemm(&bf16, 0, 0, M, N, K, 1.0f, A, K, Bm, N, 0.0f, C16, N), TM_OK);
    tr_bf16_round_array(A, A, M * K);
    tr_bf16_round_array(Bm, Bm, K * N);
    assert_int_equal(tr_gemm(&f32, 0, 0, M, N, K, 1.0f, A, K, Bm, N, 0.0f, Cr, N), TM_OK);
    int differ = 0;
    for (int i = 0; i < M * N; i++) {
        differ += C16[i] != C32[i];
        assert_true(bits(C16[i]) == bits(Cr[i]));
    }
    assert_true(differ > M * N / 2);
    free(A);
    free(Bm);
}

static void test_gemm_edges(void **state)
{
    (void)state;
    float A[6] = {1, 2, 3, 4, 5, 6}, Bm[6] = {1, 0, 0, 1, 1, 1}, C[4] = {1, 2, 3, 4};
    struct tr_gemm_cfg bad = {.mode = 99};
    FILE *q = fopen("/dev/null", "w");
    tm_log_set_stream(q, 0);
    assert_int_equal(tr_gemm(&bad, 0, 0, 2, 2, 3, 1.0f, A, 3, Bm, 2, 0.0f, C, 2), TM_ERR_USAGE);
    assert_int_equal(tr_gemm(NULL, 0, 0, -1, 2, 3, 1.0f, A, 3, Bm, 2, 0.0f, C, 2), TM_ERR_USAGE);
    assert_int_equal(tr_gemm(NULL, 0, 0, 2, 2, 3, 1.0f, A, 2, Bm, 2, 0.0f, C, 2), TM_ERR_USAGE);
    assert_int_equal(tr_gemm(NULL, 2, 0, 2, 2, 3, 1.0f, A, 3, Bm, 2, 0.0f, C, 2), TM_ERR_USAGE);
    assert_int_equal(tr_gemm(NULL, 0, 0, 2, 2, 3, 1.0f, NULL, 3, Bm, 2, 0.0f, C, 2), TM_ERR_USAGE);
    tm_log_set_stream(NULL, -1);
    fclose(q);
    /* NULL cfg is FP32: [[1 2 3] [4 5 6]] x [[1 0] [0 1] [1 1]]. */
    assert_int_equal(tr_gemm(NULL, 0, 0, 2, 2, 3, 1.0f, A, 3, Bm, 2, 0.0f, C, 2), TM_OK);
    assert_true(C[0] == 4 && C[1] == 5 && C[2] == 10 && C[3] == 11);
    /* K == 0: C = beta C; M == 0: nothing happens (NULL arrays allowed). */
    assert_int_equal(tr_gemm(NULL, 0, 0, 2, 2, 0, 1.0f, NULL, 1, NULL, 2, 0.5f, C, 2), TM_OK);
    assert_true(C[0] == 2 && C[1] == 2.5f && C[2] == 5 && C[3] == 5.5f);
    assert_int_equal(tr_gemm(NULL, 0, 0, 0, 2, 3, 1.0f, NULL, 3, Bm, 2, 0.0f, NULL, 2), TM_OK);
}

/* ---- embedding ----------------------------------------------------------------------------- */

enum { EB = 2, ET = 5, EN = EB * ET, ED = 16, EV = 50 };

struct embed_ctx {
    int32_t ids[EN];
    float *table;
};

static void embed_fwd(void *vctx, float *out)
{
    struct embed_ctx *c = vctx;
    assert_int_equal(tr_embed_fwd(out, c->ids, c->table, EN, EV, ED), TM_OK);
}

static void test_embed(void **state)
{
    (void)state;
    struct embed_ctx c;
    for (int i = 0; i < EN; i++)
        c.ids[i] = (int32_t)(tm_splitmix64(&rng_state) % 8); /* repeats: scatter-add matters */
    c.table = rand_buf(EV * ED, 1.0f);
    float out[EN * ED];
    embed_fwd(&c, out);
    for (int i = 0; i < EN; i++)
        assert_memory_equal(out + i * ED, c.table + c.ids[i] * ED, ED * sizeof(float));

    float *R = rand_buf(EN * ED, 1.0f), *g0 = rand_buf(EV * ED, 1.0f);
    float *dt = copy_buf(g0, EV * ED);
    assert_int_equal(tr_embed_bwd(dt, R, c.ids, EN, EV, ED), TM_OK);
    sub_init(dt, g0, EV * ED);
    fd_check("embed dtable", embed_fwd, &c, out, R, EN * ED, c.table, dt, EV * ED, FD_STEP);

    FILE *q = fopen("/dev/null", "w");
    tm_log_set_stream(q, 0);
    c.ids[3] = EV;
    assert_int_equal(tr_embed_fwd(out, c.ids, c.table, EN, EV, ED), TM_ERR_USAGE);
    c.ids[3] = -1;
    memcpy(dt, g0, EV * ED * sizeof(float));
    assert_int_equal(tr_embed_bwd(dt, R, c.ids, EN, EV, ED), TM_ERR_USAGE);
    assert_memory_equal(dt, g0, EV * ED * sizeof(float)); /* nothing written */
    tm_log_set_stream(NULL, -1);
    fclose(q);
    free(c.table);
    free(R);
    free(g0);
    free(dt);
}

/* ---- linear -------------------------------------------------------------------------------- */

struct linear_ctx {
    int N, in, out;
    float *x, *W;
};

static void linear_fwd(void *vctx, float *out)
{
    struct linear_ctx *c = vctx;
    assert_int_equal(tr_linear_fwd(NULL, out, c->x, c->W, c->N, c->in, c->out), TM_OK);
}

static void test_linear(void **state)
{
    (void)state;
    struct linear_ctx c = {.N = 10, .in = 16, .out = 24};
    size_t nx = (size_t)c.N * c.in, nw = (size_t)c.out * c.in, ny = (size_t)c.N * c.out;
    c.x = rand_buf(nx, 1.0f);
    c.W = rand_buf(nw, 0.5f);
    float *y = malloc(ny * sizeof(float)), *R = rand_buf(ny, 1.0f);
    float *dx = nan_buf(nx), *g0 = rand_buf(nw, 1.0f), *dW = copy_buf(g0, nw);

    /* Forward against the reference: y[n][o] = sum_i x[n][i] W[o][i]. */
    linear_fwd(&c, y);
    for (int n = 0; n < c.N; n++)
        for (int o = 0; o < c.out; o++) {
            double r = 0;
            for (int i = 0; i < c.in; i++)
                r += (double)c.x[n * c.in + i] * c.W[o * c.in + i];
            assert_true(fabs(y[n * c.out + o] - r) < 1e-5);
        }
    assert_int_equal(tr_linear_bwd(NULL, dx, dW, R, c.x, c.W, c.N, c.in, c.out), TM_OK);
    sub_init(dW, g0, nw);
    fd_check("linear dx", linear_fwd, &c, y, R, ny, c.x, dx, nx, FD_STEP);
    fd_check("linear dW", linear_fwd, &c, y, R, ny, c.W, dW, nw, FD_STEP);
    /* The GEMM mode reaches the op: BF16 equals FP32 on inputs rounded to bf16, bit for bit. */
    struct tr_gemm_cfg bf16 = {.mode = TR_GEMM_BF16};
    float *y16 = malloc(ny * sizeof(float)), *yr = malloc(ny * sizeof(float));
    float *xr = copy_buf(c.x, nx), *Wr = copy_buf(c.W, nw);
    tr_bf16_round_array(xr, xr, nx);
    tr_bf16_round_array(Wr, Wr, nw);
    assert_int_equal(tr_linear_fwd(&bf16, y16, c.x, c.W, c.N, c.in, c.out), TM_OK);
    assert_int_equal(tr_linear_fwd(NULL, yr, xr, Wr, c.N, c.in, c.out), TM_OK);
    assert_memory_equal(y16, yr, ny * sizeof(float));
    free(y16);
    free(yr);
    free(xr);
    free(Wr);
    /* dx NULL skips the data gradient and still accumulates dW. */
    float *dW2 = copy_buf(g0, nw);
    assert_int_equal(tr_linear_bwd(NULL, NULL, dW2, R, c.x, c.W, c.N, c.in, c.out), TM_OK);
    sub_init(dW2, g0, nw);
    assert_memory_equal(dW2, dW, nw * sizeof(float));
    free(c.x);
    free(c.W);
    free(y);
    free(R);
    free(dx);
    free(g0);
    free(dW);
    free(dW2);
}

/* ---- RMSNorm ------------------------------------------------------------------------------- */

#define RMS_EPS 1e-6f

struct rms_ctx {
    int N, D;
    float *x, *w, *rstd;
};

static void rms_fwd(void *vctx, float *out)
{
    struct rms_ctx *c = vctx;
    tr_rmsnorm_fwd(out, c->rstd, c->x, c->w, c->N, c->D, RMS_EPS);
}

static void test_rmsnorm(void **state)
{
    (void)state;
    struct rms_ctx c = {.N = 10, .D = 24};
    size_t n = (size_t)c.N * c.D;
    c.x = rand_buf(n, 1.0f);
    c.w = rand_buf(c.D, 1.0f);
    c.rstd = malloc(c.N * sizeof(float));
    float *y = malloc(n * sizeof(float)), *R = rand_buf(n, 1.0f);
    rms_fwd(&c, y);
    for (int i = 0; i < c.N; i++) {
        double ss = 0;
        for (int j = 0; j < c.D; j++)
            ss += (double)c.x[i * c.D + j] * c.x[i * c.D + j];
        double r = 1.0 / sqrt(ss / c.D + RMS_EPS);
        assert_true(fabs(c.rstd[i] - r) <= 1e-6 * r);
        for (int j = 0; j < c.D; j++)
            assert_true(fabs(y[i * c.D + j] - c.x[i * c.D + j] * r * c.w[j]) < 1e-5);
    }
    float *dx = nan_buf(n), *g0 = rand_buf(c.D, 1.0f), *dw = copy_buf(g0, c.D);
    tr_rmsnorm_bwd(dx, dw, R, c.x, c.w, c.rstd, c.N, c.D);
    sub_init(dw, g0, c.D);
    fd_check("rmsnorm dx", rms_fwd, &c, y, R, n, c.x, dx, n, FD_STEP);
    fd_check("rmsnorm dw", rms_fwd, &c, y, R, n, c.w, dw, c.D, FD_STEP);
    /* dx may overwrite dy. */
    float *d2 = copy_buf(R, n), *dw2 = calloc(c.D, sizeof(float));
    tr_rmsnorm_bwd(d2, dw2, d2, c.x, c.w, c.rstd, c.N, c.D);
    assert_memory_equal(d2, dx, n * sizeof(float));
    free(c.x);
    free(c.w);
    free(c.rstd);
    free(y);
    free(R);
    free(dx);
    free(g0);
    free(dw);
    free(d2);
    free(dw2);
}

/* ---- RoPE ---------------------------------------------------------------------------------- */

#define ROPE_THETA 10000.0

struct rope_ctx {
    int B, T, heads, hd, pos0;
    float *x;
};

static void rope_fwd(void *vctx, float *out)
{
    struct rope_ctx *c = vctx;
    tr_rope_fwd(out, c->x, c->B, c->T, c->heads, c->hd, ROPE_THETA, c->pos0);
}

static void test_rope(void **state)
{
    (void)state;
    struct rope_ctx c = {.B = 2, .T = 6, .heads = 3, .hd = 8, .pos0 = 5};
    size_t n = (size_t)c.B * c.T * c.heads * c.hd;
    int half = c.hd / 2;
    c.x = rand_buf(n, 1.0f);
    float *y = malloc(n * sizeof(float)), *R = rand_buf(n, 1.0f);
    rope_fwd(&c, y);
    /* Against the formula, pair (i, i + hd/2) at position pos0 + t. */
    for (int b = 0; b < c.B; b++)
        for (int t = 0; t < c.T; t++)
            for (int h = 0; h < c.heads; h++)
                for (int i = 0; i < half; i++) {
                    size_t o = (((size_t)b * c.T + t) * c.heads + h) * c.hd;
                    double ang = (c.pos0 + t) * pow(ROPE_THETA, -2.0 * i / c.hd);
                    double x0 = c.x[o + i], x1 = c.x[o + i + half];
                    assert_true(fabs(y[o + i] - (x0 * cos(ang) - x1 * sin(ang))) < 1e-6);
                    assert_true(fabs(y[o + i + half] - (x0 * sin(ang) + x1 * cos(ang))) < 1e-6);
                }
    /* The backward pass inverts the forward one (in place). */
    float *z = copy_buf(y, n);
    tr_rope_bwd(z, z, c.B, c.T, c.heads, c.hd, ROPE_THETA, c.pos0);
    for (size_t i = 0; i < n; i++)
        assert_true(fabsf(z[i] - c.x[i]) < 1e-6f);
    /* pos0 = 2 over positions t >= 0 equals pos0 = 0 over positions t >= 2: only the absolute
     * position matters (what a KV cache relies on). */
    struct rope_ctx full = c, tail = c;
    full.pos0 = 0;
    tail.pos0 = 2;
    tail.T = c.T - 2;
    float *yf = malloc(n * sizeof(float)), *xt = malloc(n * sizeof(float));
    float *yt = malloc(n * sizeof(float));
    rope_fwd(&full, yf);
    size_t row = (size_t)c.heads * c.hd;
    for (int b = 0; b < c.B; b++)
        memcpy(xt + b * tail.T * row, c.x + (b * c.T + 2) * row, tail.T * row * sizeof(float));
    tail.x = xt;
    rope_fwd(&tail, yt);
    for (int b = 0; b < c.B; b++)
        for (size_t i = 0; i < tail.T * row; i++)
            assert_true(fabsf(yt[b * tail.T * row + i] - yf[(b * c.T + 2) * row + i]) < 1e-6f);

    float *dx = nan_buf(n);
    tr_rope_bwd(dx, R, c.B, c.T, c.heads, c.hd, ROPE_THETA, c.pos0);
    fd_check("rope dx", rope_fwd, &c, y, R, n, c.x, dx, n, FD_STEP);
    free(c.x);
    free(y);
    free(R);
    free(z);
    free(yf);
    free(xt);
    free(yt);
    free(dx);
}

/* ---- attention ----------------------------------------------------------------------------- */

struct attn_ctx {
    int B, T, H, Hkv, hd, threads;
    float scale;
    float *q, *k, *v, *lse;
};

static size_t q_len(const struct attn_ctx *c)
{
    return (size_t)c->B * c->T * c->H * c->hd;
}

static size_t kv_len(const struct attn_ctx *c)
{
    return (size_t)c->B * c->T * c->Hkv * c->hd;
}

static void attn_fwd(void *vctx, float *out)
{
    struct attn_ctx *c = vctx;
    assert_int_equal(tr_attn_fwd(NULL, out, c->lse, c->q, c->k, c->v, c->B, c->T, c->H, c->Hkv,
                                 c->hd, c->scale, c->threads),
                     TM_OK);
}

static void attn_init(struct attn_ctx *c, int B, int T, int H, int Hkv, int hd)
{
    *c = (struct attn_ctx){.B = B, .T = T, .H = H, .Hkv = Hkv, .hd = hd, .threads = 2};
    c->scale = 1.0f / sqrtf((float)hd);
    c->q = rand_buf(q_len(c), 1.5f);
    c->k = rand_buf(kv_len(c), 1.5f);
    c->v = rand_buf(kv_len(c), 1.0f);
    c->lse = malloc((size_t)B * H * T * sizeof(float));
}

static void attn_free(struct attn_ctx *c)
{
    free(c->q);
    free(c->k);
    free(c->v);
    free(c->lse);
}

/* The definition, in double: for each (b, h, t), softmax over s <= t of scale q.k, times v. */
static void attn_naive(const struct attn_ctx *c, double *out)
{
    int g = c->H / c->Hkv;
    double *p = malloc(c->T * sizeof(double));
    for (int b = 0; b < c->B; b++)
        for (int h = 0; h < c->H; h++)
            for (int t = 0; t < c->T; t++) {
                const float *qr = c->q + (((size_t)b * c->T + t) * c->H + h) * c->hd;
                double mx = -INFINITY, sum = 0;
                for (int s = 0; s <= t; s++) {
                    const float *kr = c->k + (((size_t)b * c->T + s) * c->Hkv + h / g) * c->hd;
                    double d = 0;
                    for (int i = 0; i < c->hd; i++)
                        d += (double)qr[i] * kr[i];
                    p[s] = c->scale * d;
                    mx = fmax(mx, p[s]);
                }
                for (int s = 0; s <= t; s++)
                    sum += p[s] = exp(p[s] - mx);
                double *o = out + (((size_t)b * c->T + t) * c->H + h) * c->hd;
                for (int i = 0; i < c->hd; i++) {
                    double acc = 0;
                    for (int s = 0; s <= t; s++)
                        acc += p[s] / sum *
                               c->v[(((size_t)b * c->T + s) * c->Hkv + h / g) * c->hd + i];
                    o[i] = acc;
                }
            }
    free(p);
}

static void test_attn_forward(void **state)
{
    (void)state;
    struct attn_ctx c;
    attn_init(&c, 2, 7, 4, 2, 8);
    size_t n = q_len(&c);
    float *out = malloc(n * sizeof(float));
    double *ref = malloc(n * sizeof(double));
    attn_fwd(&c, out);
    attn_naive(&c, ref);
    for (size_t i = 0; i < n; i++)
        assert_true(fabs(out[i] - ref[i]) < 1e-5);
    /* Position 0 attends to itself only: its output is its value row. */
    for (int h = 0; h < c.H; h++)
        for (int i = 0; i < c.hd; i++)
            assert_true(out[h * c.hd + i] == c.v[(h / 2) * c.hd + i]);
    /* Large scores do not overflow (max subtraction): scale the queries by 1000. */
    for (size_t i = 0; i < n; i++)
        c.q[i] *= 1000.0f;
    attn_fwd(&c, out);
    for (size_t i = 0; i < n; i++)
        assert_true(isfinite(out[i]));
    free(out);
    free(ref);
    attn_free(&c);
}

/* Changing the query, key and value of position t0 leaves every output before t0 unchanged. */
static void test_attn_causal(void **state)
{
    (void)state;
    struct attn_ctx c;
    attn_init(&c, 2, 8, 4, 2, 8);
    size_t n = q_len(&c);
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
    attn_fwd(&c, a);
    const int t0 = 5;
    for (int bb = 0; bb < c.B; bb++) {
        for (int i = 0; i < c.H * c.hd; i++)
            c.q[((size_t)bb * c.T + t0) * c.H * c.hd + i] += 3.0f;
        for (int i = 0; i < c.Hkv * c.hd; i++) {
            c.k[((size_t)bb * c.T + t0) * c.Hkv * c.hd + i] -= 2.0f;
            c.v[((size_t)bb * c.T + t0) * c.Hkv * c.hd + i] += 5.0f;
        }
    }
    attn_fwd(&c, b);
    size_t row = (size_t)c.H * c.hd;
    for (int bb = 0; bb < c.B; bb++)
        for (int t = 0; t < c.T; t++) {
            int same = memcmp(a + (bb * c.T + t) * row, b + (bb * c.T + t) * row,
                              row * sizeof(float)) == 0;
            assert_int_equal(same, t < t0); /* earlier: bit-identical; t0 and later: changed */
        }
    free(a);
    free(b);
    attn_free(&c);
}

/* H = 4 query heads over Hkv = 2 key/value heads equals H = 4 over 4 heads where k, v heads
 * 2j and 2j + 1 are copies of head j; dq is the same and dk, dv of head j are the sums over its
 * copies. */
static void test_attn_gqa(void **state)
{
    (void)state;
    struct attn_ctx g, f;
    attn_init(&g, 2, 6, 4, 2, 8);
    attn_init(&f, 2, 6, 4, 4, 8);
    size_t n = q_len(&g), nkv = kv_len(&g), nf = kv_len(&f);
    memcpy(f.q, g.q, n * sizeof(float));
    for (int bt = 0; bt < g.B * g.T; bt++)
        for (int h = 0; h < 4; h++) {
            memcpy(f.k + ((size_t)bt * 4 + h) * 8, g.k + ((size_t)bt * 2 + h / 2) * 8,
                   8 * sizeof(float));
            memcpy(f.v + ((size_t)bt * 4 + h) * 8, g.v + ((size_t)bt * 2 + h / 2) * 8,
                   8 * sizeof(float));
        }
    float *og = malloc(n * sizeof(float)), *of = malloc(n * sizeof(float));
    attn_fwd(&g, og);
    attn_fwd(&f, of);
    for (size_t i = 0; i < n; i++)
        assert_true(fabsf(og[i] - of[i]) <= 1e-6f);

    float *R = rand_buf(n, 1.0f);
    float *dqg = malloc(n * sizeof(float)), *dkg = malloc(nkv * sizeof(float));
    float *dvg = malloc(nkv * sizeof(float)), *dqf = malloc(n * sizeof(float));
    float *dkf = malloc(nf * sizeof(float)), *dvf = malloc(nf * sizeof(float));
    assert_int_equal(tr_attn_bwd(NULL, dqg, dkg, dvg, R, g.q, g.k, g.v, g.lse, g.B, g.T, g.H, g.Hkv,
                                 g.hd, g.scale, 2),
                     TM_OK);
    assert_int_equal(tr_attn_bwd(NULL, dqf, dkf, dvf, R, f.q, f.k, f.v, f.lse, f.B, f.T, f.H, f.Hkv,
                                 f.hd, f.scale, 2),
                     TM_OK);
    for (size_t i = 0; i < n; i++)
        assert_true(fabsf(dqg[i] - dqf[i]) <= 1e-5f);
    for (int bt = 0; bt < g.B * g.T; bt++)
        for (int j = 0; j < 2; j++)
            for (int i = 0; i < 8; i++) {
                size_t gi = ((size_t)bt * 2 + j) * 8 + i;
                size_t f0 = ((size_t)bt * 4 + 2 * j) * 8 + i, f1 = f0 + 8;
                assert_true(fabsf(dkg[gi] - (dkf[f0] + dkf[f1])) <= 1e-5f);
                assert_true(fabsf(dvg[gi] - (dvf[f0] + dvf[f1])) <= 1e-5f);
            }
    free(og);
    free(of);
    free(R);
    free(dqg);
    free(dkg);
    free(dvg);
    free(dqf);
    free(dkf);
    free(dvf);
    attn_free(&g);
    attn_free(&f);
}

static void test_attn_grad(void **state)
{
    (void)state;
    struct attn_ctx c;
    attn_init(&c, 2, 6, 4, 2, 8);
    size_t n = q_len(&c), nkv = kv_len(&c);
    float *out = malloc(n * sizeof(float)), *R = rand_buf(n, 1.0f);
    float *dq = nan_buf(n), *dk = nan_buf(nkv), *dv = nan_buf(nkv);
    attn_fwd(&c, out);
    assert_int_equal(tr_attn_bwd(NULL, dq, dk, dv, R, c.q, c.k, c.v, c.lse, c.B, c.T, c.H, c.Hkv,
                                 c.hd, c.scale, 2),
                     TM_OK);
    fd_check("attention dq", attn_fwd, &c, out, R, n, c.q, dq, n, FD_STEP);
    fd_check("attention dk", attn_fwd, &c, out, R, n, c.k, dk, nkv, FD_STEP);
    fd_check("attention dv", attn_fwd, &c, out, R, n, c.v, dv, nkv, FD_STEP);
    free(out);
    free(R);
    free(dq);
    free(dk);
    free(dv);
    attn_free(&c);
}

/* 1, 2 and 3 threads give bit-identical outputs and gradients (no sums across workers). */
static void test_attn_threads(void **state)
{
    (void)state;
    struct attn_ctx c;
    attn_init(&c, 2, 8, 4, 2, 8);
    size_t n = q_len(&c), nkv = kv_len(&c);
    float *R = rand_buf(n, 1.0f);
    float *out[3], *dq[3], *dk[3], *dv[3], *lse[3];
    size_t nl = (size_t)c.B * c.H * c.T;
    for (int t = 0; t < 3; t++) {
        out[t] = malloc(n * sizeof(float));
        dq[t] = malloc(n * sizeof(float));
        dk[t] = malloc(nkv * sizeof(float));
        dv[t] = malloc(nkv * sizeof(float));
        lse[t] = malloc(nl * sizeof(float));
        assert_int_equal(tr_attn_fwd(NULL, out[t], lse[t], c.q, c.k, c.v, c.B, c.T, c.H, c.Hkv,
                                     c.hd, c.scale, t + 1),
                         TM_OK);
        assert_int_equal(tr_attn_bwd(NULL, dq[t], dk[t], dv[t], R, c.q, c.k, c.v, lse[t], c.B, c.T,
                                     c.H, c.Hkv, c.hd, c.scale, t + 1),
                         TM_OK);
    }
    for (int t = 1; t < 3; t++) {
        assert_memory_equal(out[t], out[0], n * sizeof(float));
        assert_memory_equal(lse[t], lse[0], nl * sizeof(float));
        assert_memory_equal(dq[t], dq[0], n * sizeof(float));
        assert_memory_equal(dk[t], dk[0], nkv * sizeof(float));
        assert_memory_equal(dv[t], dv[0], nkv * sizeof(float));
    }
    for (int t = 0; t < 3; t++) {
        free(out[t]);
        free(dq[t]);
        free(dk[t]);
        free(dv[t]);
        free(lse[t]);
    }
    /* A bad shape is refused. */
    FILE *q = fopen("/dev/null", "w");
    tm_log_set_stream(q, 0);
    assert_int_equal(tr_attn_fwd(NULL, R, c.lse, c.q, c.k, c.v, 2, 8, 4, 3, 8, c.scale, 1),
                     TM_ERR_USAGE);
    tm_log_set_stream(NULL, -1);
    fclose(q);
    free(R);
    attn_free(&c);
}

/* ---- SwiGLU -------------------------------------------------------------------------------- */

enum { SW_N = 160 };

struct swiglu_ctx {
    float *a, *b;
};

static void swiglu_fwd(void *vctx, float *out)
{
    struct swiglu_ctx *c = vctx;
    tr_swiglu_fwd(out, c->a, c->b, SW_N);
}

static void test_swiglu(void **state)
{
    (void)state;
    struct swiglu_ctx c = {rand_buf(SW_N, 4.0f), rand_buf(SW_N, 1.0f)};
    c.a[0] = -100.0f; /* sigmoid must not overflow either way */
    c.a[1] = 100.0f;
    float out[SW_N], *R = rand_buf(SW_N, 1.0f), *da = nan_buf(SW_N), *db = nan_buf(SW_N);
    swiglu_fwd(&c, out);
    for (int i = 0; i < SW_N; i++) {
        double a = c.a[i];
        assert_true(fabs(out[i] - a / (1.0 + exp(-a)) * c.b[i]) <= 1e-6 * fmax(1.0, fabs(a)));
    }
    tr_swiglu_bwd(da, db, R, c.a, c.b, SW_N);
    fd_check("swiglu da", swiglu_fwd, &c, out, R, SW_N, c.a, da, SW_N, FD_STEP);
    fd_check("swiglu db", swiglu_fwd, &c, out, R, SW_N, c.b, db, SW_N, FD_STEP);
    free(c.a);
    free(c.b);
    free(R);
    free(da);
    free(db);
}

/* ---- cross-entropy ------------------------------------------------------------------------- */

enum { XN = 10, XV = 50 };

struct xent_ctx {
    float *logits;
    int32_t targets[XN];
};

static void xent_fwd(void *vctx, float *out)
{
    struct xent_ctx *c = vctx;
    assert_int_equal(tr_xent(out, NULL, NULL, c->logits, c->targets, XN, XV, 1.0f, 1), TM_OK);
}

/* A vocabulary big enough to be split (N V >= 65536), logits spread over +-30 so that many
 * exponentials are tiny: loss and gradient match double-precision softmax closely (the
 * vectorized exponential), and are bit-identical for 1, 2 and 3 threads. */
static void test_xent_big(void **state)
{
    (void)state;
    enum { BN = 37, BV = 3001 };
    float *lg = rand_buf((size_t)BN * BV, 30.0f);
    int32_t tg[BN];
    for (int i = 0; i < BN; i++)
        tg[i] = (int32_t)(tm_splitmix64(&rng_state) % BV);
    tg[5] = TR_XENT_IGNORE;
    float *d1 = NULL, loss1 = 0.0f;
    for (int th = 1; th <= 3; th++) {
        float loss;
        int count;
        float *d = nan_buf((size_t)BN * BV);
        assert_int_equal(tr_xent(&loss, &count, d, lg, tg, BN, BV, 1.0f, th), TM_OK);
        assert_int_equal(count, BN - 1);
        if (th == 1) {
            d1 = d;
            loss1 = loss;
            double ref = 0.0, worst = 0.0;
            for (int i = 0; i < BN; i++) {
                if (tg[i] < 0)
                    continue;
                const float *l = lg + (size_t)i * BV;
                double mx = l[0], s = 0.0;
                for (int j = 1; j < BV; j++)
                    mx = fmax(mx, l[j]);
                for (int j = 0; j < BV; j++)
                    s += exp(l[j] - mx);
                ref += mx + log(s) - l[tg[i]];
                for (int j = 0; j < BV; j++) {
                    double p = exp(l[j] - mx) / s / (BN - 1) - (j == tg[i] ? 1.0 / (BN - 1) : 0);
                    double err = fabs(d[(size_t)i * BV + j] - p) / (fabs(p) + 1e-30);
                    if (fabs(p) > 1e-30 && err > worst)
                        worst = err;
                }
            }
            ref /= BN - 1;
            assert_true(fabs(loss - ref) <= 1e-6 * fabs(ref));
            assert_true(worst < 1e-5); /* a few float ulps, and p_t - 1 rounded in float */
            continue;
        }
        assert_true(loss == loss1);
        assert_memory_equal(d, d1, (size_t)BN * BV * sizeof(float));
        free(d);
    }
    free(d1);
    free(lg);
}

static void test_xent(void **state)
{
    (void)state;
    struct xent_ctx c;
    c.logits = rand_buf(XN * XV, 3.0f);
    for (int i = 0; i < XN; i++)
        c.targets[i] = (int32_t)(tm_splitmix64(&rng_state) % XV);
    c.targets[2] = c.targets[7] = TR_XENT_IGNORE;
    float loss;
    int count;
    float *dl = nan_buf(XN * XV);
    assert_int_equal(tr_xent(&loss, &count, dl, c.logits, c.targets, XN, XV, 1.0f, 1), TM_OK);
    assert_int_equal(count, XN - 2);
    double ref = 0;
    for (int i = 0; i < XN; i++) {
        if (c.targets[i] < 0)
            continue;
        double s = 0;
        for (int j = 0; j < XV; j++)
            s += exp(c.logits[i * XV + j]);
        ref += log(s) - c.logits[i * XV + c.targets[i]];
    }
    ref /= count;
    assert_true(fabs(loss - ref) < 1e-5);
    for (int j = 0; j < XV; j++)
        assert_true(dl[2 * XV + j] == 0.0f && dl[7 * XV + j] == 0.0f);
    float R = 1.0f;
    fd_check("xent dlogits", xent_fwd, &c, &loss, &R, 1, c.logits, dl, XN * XV, FD_STEP_LOSS);

    /* grad_scale scales the gradient; in place gives the same values. */
    float *dl2 = copy_buf(c.logits, XN * XV);
    assert_int_equal(tr_xent(&loss, NULL, dl2, dl2, c.targets, XN, XV, 0.25f, 1), TM_OK);
    for (int i = 0; i < XN * XV; i++)
        assert_true(fabsf(dl2[i] - 0.25f * dl[i]) <= 1e-7f);
    /* Huge logits stay finite (max subtraction). */
    for (int i = 0; i < XN * XV; i++)
        dl2[i] = c.logits[i] * 1e4f;
    assert_int_equal(tr_xent(&loss, NULL, dl, dl2, c.targets, XN, XV, 1.0f, 1), TM_OK);
    assert_true(isfinite(loss));
    /* Nothing counted: loss 0, zero gradient. */
    int32_t none[XN];
    for (int i = 0; i < XN; i++)
        none[i] = TR_XENT_IGNORE;
    assert_int_equal(tr_xent(&loss, &count, dl, c.logits, none, XN, XV, 1.0f, 1), TM_OK);
    assert_true(loss == 0.0f && count == 0);
    for (int i = 0; i < XN * XV; i++)
        assert_true(dl[i] == 0.0f);
    /* A target outside the vocabulary is refused. */
    FILE *q = fopen("/dev/null", "w");
    tm_log_set_stream(q, 0);
    c.targets[0] = XV;
    assert_int_equal(tr_xent(&loss, NULL, NULL, c.logits, c.targets, XN, XV, 1.0f, 1),
                     TM_ERR_USAGE);
    c.targets[0] = -2;
    assert_int_equal(tr_xent(&loss, NULL, NULL, c.logits, c.targets, XN, XV, 1.0f, 1),
                     TM_ERR_USAGE);
    tm_log_set_stream(NULL, -1);
    fclose(q);
    free(c.logits);
    free(dl);
    free(dl2);
}

/* ---- router -------------------------------------------------------------------------------- */

enum { RB = 2, RT = 8, RN = RB * RT, RE = 8, RK = 2 };
#define ROUTE_SCALE 2.5f /* DeepSeek-V3's routed scaling factor */
#define BAL_ALPHA   0.01f
/* For the finite-difference check of the balance loss: alpha is a plain factor, and at 0.01 the
 * gradient (~1e-5) would sit far below the absolute part of the tolerance. */
#define BAL_ALPHA_FD 100.0f

static void test_router_select(void **state)
{
    (void)state;
    float u[RE], s[RE], gate[RK], gate2[RK], bias[RE] = {0};
    int32_t sel[RK];
    /* Ties: all equal affinities pick the lowest indices, in order. */
    for (int e = 0; e < RE; e++)
        u[e] = 0.3f;
    assert_int_equal(tr_router_fwd(s, sel, gate, u, NULL, 1, RE, RK, 1.0f), TM_OK);
    assert_true(sel[0] == 0 && sel[1] == 1);
    assert_true(gate[0] == 0.5f && gate[1] == 0.5f);
    /* Distinct affinities: the two largest, largest first; gates = s / sum * scale. */
    for (int e = 0; e < RE; e++)
        u[e] = 0.1f * e - 0.3f;
    u[2] = 2.0f;
    u[6] = 2.0f; /* tie between 2 and 6: 2 first */
    assert_int_equal(tr_router_fwd(s, sel, gate, u, bias, 1, RE, RK, ROUTE_SCALE), TM_OK);
    assert_true(sel[0] == 2 && sel[1] == 6);
    for (int e = 0; e < RE; e++)
        assert_true(fabs(s[e] - 1.0 / (1.0 + exp(-u[e]))) < 1e-7);
    assert_true(fabsf(gate[0] - ROUTE_SCALE * 0.5f) < 1e-6f);
    /* A bias moves expert 0 (lowest affinity) into the top-K. Its gate comes from its own
     * affinity, not affinity + bias. */
    bias[0] = 1.5f;
    assert_int_equal(tr_router_fwd(s, sel, gate2, u, bias, 1, RE, RK, ROUTE_SCALE), TM_OK);
    assert_true(sel[0] == 0 && sel[1] == 2);
    double sum = (double)s[0] + s[2];
    assert_true(fabs(gate2[0] - ROUTE_SCALE * s[0] / sum) < 1e-6);
    assert_true(fabs(gate2[1] - ROUTE_SCALE * s[2] / sum) < 1e-6);
    /* A bias that keeps the selection (the same shift for every expert) keeps the gates bit for
     * bit. */
    for (int e = 0; e < RE; e++)
        bias[e] = 0.125f;
    assert_int_equal(tr_router_fwd(s, sel, gate2, u, bias, 1, RE, RK, ROUTE_SCALE), TM_OK);
    assert_true(sel[0] == 2 && sel[1] == 6);
    assert_memory_equal(gate2, gate, sizeof(gate));
    /* NaN affinities are never preferred to numbers. */
    u[2] = NAN;
    assert_int_equal(tr_router_fwd(s, sel, gate2, u, NULL, 1, RE, RK, 1.0f), TM_OK);
    assert_true(sel[0] == 6 && sel[1] == 7);
    FILE *q = fopen("/dev/null", "w");
    tm_log_set_stream(q, 0);
    assert_int_equal(tr_router_fwd(s, sel, gate, u, NULL, 1, RE, RE + 1, 1.0f), TM_ERR_USAGE);
    tm_log_set_stream(NULL, -1);
    fclose(q);
}

struct router_ctx {
    float *u, *bias, *s;
    int32_t sel0[RN * RK], sel[RN * RK];
    int flipped;
};

/* out = gates; the selection must stay the one of the unperturbed inputs. */
static void router_fwd(void *vctx, float *out)
{
    struct router_ctx *c = vctx;
    assert_int_equal(tr_router_fwd(c->s, c->sel, out, c->u, c->bias, RN, RE, RK, ROUTE_SCALE),
                     TM_OK);
    c->flipped |= memcmp(c->sel, c->sel0, sizeof(c->sel)) != 0;
}

/* out = the balance loss with the selection held at sel0. */
static void balance_fwd(void *vctx, float *out)
{
    struct router_ctx *c = vctx;
    float gate[RN * RK];
    assert_int_equal(tr_router_fwd(c->s, c->sel, gate, c->u, c->bias, RN, RE, RK, ROUTE_SCALE),
                     TM_OK);
    assert_int_equal(tr_router_balance(out, NULL, c->s, c->sel0, RB, RT, RE, RK, BAL_ALPHA_FD),
                     TM_OK);
}

static void test_router_grad(void **state)
{
    (void)state;
    struct router_ctx c = {.flipped = 0};
    c.u = rand_buf(RN * RE, 2.0f);
    c.bias = rand_buf(RE, 0.1f);
    c.s = malloc(RN * RE * sizeof(float));
    float gate[RN * RK], *R = rand_buf(RN * RK, 1.0f), *du = nan_buf(RN * RE);
    assert_int_equal(tr_router_fwd(c.s, c.sel0, gate, c.u, c.bias, RN, RE, RK, ROUTE_SCALE), TM_OK);
    tr_router_bwd(du, R, c.s, c.sel0, RN, RE, RK, ROUTE_SCALE);
    fd_check("router du (gates)", router_fwd, &c, gate, R, RN * RK, c.u, du, RN * RE, FD_STEP);
    assert_false(c.flipped); /* the step never crossed a selection boundary */
    /* Experts not selected get no gradient from the gates. */
    for (int i = 0; i < RN; i++)
        for (int e = 0; e < RE; e++)
            if (e != c.sel0[i * RK] && e != c.sel0[i * RK + 1])
                assert_true(du[i * RE + e] == 0.0f);

    /* The balance loss against eqs. 17-20 written out, then its gradient. */
    float loss, *dub = nan_buf(RN * RE);
    assert_int_equal(tr_router_balance(&loss, dub, c.s, c.sel0, RB, RT, RE, RK, BAL_ALPHA), TM_OK);
    double ref = 0;
    for (int b = 0; b < RB; b++)
        for (int e = 0; e < RE; e++) {
            double cnt = 0, P = 0;
            for (int t = 0; t < RT; t++) {
                int i = b * RT + t;
                cnt += (c.sel0[i * RK] == e) + (c.sel0[i * RK + 1] == e);
                double sum = 0;
                for (int j = 0; j < RE; j++)
                    sum += c.s[i * RE + j];
                P += c.s[i * RE + e] / sum / RT;
            }
            ref += BAL_ALPHA * (double)RE / (RK * RT) * cnt * P / RB;
        }
    assert_true(fabs(loss - ref) <= 1e-6 * ref);
    assert_int_equal(tr_router_balance(&loss, dub, c.s, c.sel0, RB, RT, RE, RK, BAL_ALPHA_FD),
                     TM_OK);
    float one = 1.0f;
    fd_check("balance du", balance_fwd, &c, &loss, &one, 1, c.u, dub, RN * RE, FD_STEP_LOSS);
    free(c.u);
    free(c.bias);
    free(c.s);
    free(R);
    free(du);
    free(dub);
}

static void test_bias_update_rule(void **state)
{
    (void)state;
    int64_t load[4] = {10, 30, 20, 20}; /* mean 20 */
    float bias[4] = {0, 0, 0, 0.5f};
    tr_router_bias_update(bias, load, 4, 0.001f);
    assert_true(bias[0] == 0.001f);  /* underloaded: more attractive */
    assert_true(bias[1] == -0.001f); /* overloaded: less */
    assert_true(bias[2] == 0.0f && bias[3] == 0.5f);
    int32_t sel[6] = {0, 1, 1, 3, 3, 9}; /* 9 is out of range: not counted */
    tr_router_count_load(load, sel, 3, 2, 4);
    assert_true(load[0] == 1 && load[1] == 2 && load[2] == 0 && load[3] == 2);
}

/* Auxiliary-loss-free balancing, simulated: 1024 tokens with affinities skewed toward the
 * high experts (u = skew_e + noise, skew from -1 to +1) are routed every step, and the bias is
 * updated from the loads with gamma = 0.002. Within BAL_STEPS steps every expert's load comes
 * within 10% of the mean and stays there through step 2 * BAL_STEPS; with gamma = 0 the top
 * expert stays more than 50% over the mean. */
#define BAL_TOKENS 1024
#define BAL_GAMMA  0.002f
#define BAL_STEPS  400

static double max_imbalance(const int64_t *load)
{
    double mean = (double)BAL_TOKENS * RK / RE, worst = 0;
    for (int e = 0; e < RE; e++)
        worst = fmax(worst, fabs(load[e] - mean) / mean);
    return worst;
}

static void test_bias_update_balances(void **state)
{
    (void)state;
    float *u = malloc(BAL_TOKENS * RE * sizeof(float)),
          *s = malloc(BAL_TOKENS * RE * sizeof(float));
    float *gate = malloc(BAL_TOKENS * RK * sizeof(float));
    int32_t *sel = malloc(BAL_TOKENS * RK * sizeof(int32_t));
    for (int i = 0; i < BAL_TOKENS; i++)
        for (int e = 0; e < RE; e++)
            u[i * RE + e] = -1.0f + 2.0f * e / (RE - 1) + (frand() + frand() + frand()) * 0.6f;
    for (int run = 0; run < 2; run++) {
        float gamma = run == 0 ? BAL_GAMMA : 0.0f, bias[RE] = {0};
        int64_t load[RE];
        int first_ok = -1, stays = 1;
        double start = 0, end = 0;
        for (int step = 0; step <= 2 * BAL_STEPS; step++) {
            assert_int_equal(tr_router_fwd(s, sel, gate, u, bias, BAL_TOKENS, RE, RK, 1.0f), TM_OK);
            tr_router_count_load(load, sel, BAL_TOKENS, RK, RE);
            double imb = max_imbalance(load);
            if (step == 0)
                start = imb;
            end = imb;
            if (imb <= 0.10 && first_ok < 0)
                first_ok = step;
            if (first_ok >= 0 && imb > 0.10)
                stays = 0;
            tr_router_bias_update(bias, load, RE, gamma);
        }
        print_message("bias update gamma %g: imbalance %.3f -> %.3f, within 10%% from step %d\n",
                      gamma, start, end, first_ok);
        assert_true(start > 0.5);
        if (run == 0) {
            assert_true(first_ok >= 0 && first_ok <= BAL_STEPS);
            assert_true(stays);
        } else {
            assert_true(end > 0.5);
        }
    }
    free(u);
    free(s);
    free(gate);
    free(sel);
}

/* ---- concat, the MTP combine, add, clipping ----------------------------------------------- */

enum { CN = 10, CD = 16 };

struct concat_ctx {
    float *a, *b;
};

static void concat_fwd(void *vctx, float *out)
{
    struct concat_ctx *c = vctx;
    tr_concat_fwd(out, c->a, c->b, CN, CD, CD + 3);
}

static void test_concat(void **state)
{
    (void)state;
    const int Db = CD + 3, W = CD + Db;
    struct concat_ctx c = {rand_buf(CN * CD, 1.0f), rand_buf(CN * Db, 1.0f)};
    float *out = malloc(CN * W * sizeof(float)), *R = rand_buf(CN * W, 1.0f);
    float *da = nan_buf(CN * CD), *db = nan_buf(CN * Db);
    concat_fwd(&c, out);
    for (int i = 0; i < CN; i++) {
        assert_memory_equal(out + i * W, c.a + i * CD, CD * sizeof(float));
        assert_memory_equal(out + i * W + CD, c.b + i * Db, Db * sizeof(float));
    }
    tr_concat_bwd(da, db, R, CN, CD, Db);
    fd_check("concat da", concat_fwd, &c, out, R, CN * W, c.a, da, CN * CD, FD_STEP);
    fd_check("concat db", concat_fwd, &c, out, R, CN * W, c.b, db, CN * Db, FD_STEP);
    free(c.a);
    free(c.b);
    free(out);
    free(R);
    free(da);
    free(db);
}

/* The multi-token-prediction combine of DeepSeek-V3: out = W [rmsnorm(h; w1) ++ rmsnorm(e; w2)]
 * with W [D, 2D], composed from the ops the way the model will compose them. */
struct mtp_ctx {
    float *h, *e, *w1, *w2, *W;
    float n1[CN * CD], n2[CN * CD], r1[CN], r2[CN], cat[CN * 2 * CD];
};

static void mtp_fwd(void *vctx, float *out)
{
    struct mtp_ctx *c = vctx;
    tr_rmsnorm_fwd(c->n1, c->r1, c->h, c->w1, CN, CD, RMS_EPS);
    tr_rmsnorm_fwd(c->n2, c->r2, c->e, c->w2, CN, CD, RMS_EPS);
    tr_concat_fwd(c->cat, c->n1, c->n2, CN, CD, CD);
    assert_int_equal(tr_linear_fwd(NULL, out, c->cat, c->W, CN, 2 * CD, CD), TM_OK);
}

static void test_mtp_combine(void **state)
{
    (void)state;
    struct mtp_ctx *c = malloc(sizeof(*c));
    c->h = rand_buf(CN * CD, 1.0f);
    c->e = rand_buf(CN * CD, 1.0f);
    c->w1 = rand_buf(CD, 1.0f);
    c->w2 = rand_buf(CD, 1.0f);
    c->W = rand_buf(CD * 2 * CD, 0.3f);
    float out[CN * CD], *R = rand_buf(CN * CD, 1.0f);
    float dcat[CN * 2 * CD], dn1[CN * CD], dn2[CN * CD], dh[CN * CD], de[CN * CD];
    float dw1[CD] = {0}, dw2[CD] = {0}, *dW = calloc(CD * 2 * CD, sizeof(float));
    mtp_fwd(c, out);
    assert_int_equal(tr_linear_bwd(NULL, dcat, dW, R, c->cat, c->W, CN, 2 * CD, CD), TM_OK);
    tr_concat_bwd(dn1, dn2, dcat, CN, CD, CD);
    tr_rmsnorm_bwd(dh, dw1, dn1, c->h, c->w1, c->r1, CN, CD);
    tr_rmsnorm_bwd(de, dw2, dn2, c->e, c->w2, c->r2, CN, CD);
    fd_check("mtp dh", mtp_fwd, c, out, R, CN * CD, c->h, dh, CN * CD, FD_STEP);
    fd_check("mtp demb", mtp_fwd, c, out, R, CN * CD, c->e, de, CN * CD, FD_STEP);
    fd_check("mtp dw1", mtp_fwd, c, out, R, CN * CD, c->w1, dw1, CD, FD_STEP);
    fd_check("mtp dw2", mtp_fwd, c, out, R, CN * CD, c->w2, dw2, CD, FD_STEP);
    fd_check("mtp dW", mtp_fwd, c, out, R, CN * CD, c->W, dW, CD * 2 * CD, FD_STEP);
    free(c->h);
    free(c->e);
    free(c->w1);
    free(c->w2);
    free(c->W);
    free(c);
    free(R);
    free(dW);
}

static void test_add_and_clip(void **state)
{
    (void)state;
    float a[5] = {1, 2, 3, 4, 5}, b[5] = {0.5f, -2, 0, 1, 1};
    tr_add(a, a, b, 5); /* in place */
    assert_true(a[0] == 1.5f && a[1] == 0 && a[2] == 3 && a[3] == 5 && a[4] == 6);

    float g1[2] = {3, 0}, g2[1] = {4}; /* norm 5 */
    struct tr_span sp[2] = {{g1, 2}, {g2, 1}};
    assert_true(tr_grad_norm(sp, 2, 1) == 5.0);
    assert_true(tr_grad_clip(sp, 2, 10.0, 1) == 5.0); /* under the limit: untouched */
    assert_true(g1[0] == 3 && g2[0] == 4);
    assert_true(tr_grad_clip(sp, 2, 1.0, 1) == 5.0);
    assert_true(fabsf(g1[0] - 0.6f) < 1e-7f && fabsf(g2[0] - 0.8f) < 1e-7f);
    assert_true(fabs(tr_grad_norm(sp, 2, 1) - 1.0) < 1e-6);
    g2[0] = INFINITY; /* not finite: reported, nothing scaled */
    assert_true(isinf(tr_grad_clip(sp, 2, 1.0, 1)));
    assert_true(fabsf(g1[0] - 0.6f) < 1e-7f);
    assert_true(tr_grad_norm(sp, 0, 1) == 0.0);

    /* Spans of several pieces (2^16 values each): the same norm and the same clipped values for
     * 1, 2 and 3 threads, and the norm matches a plain double sum. */
    size_t n1 = 200003, n2 = 70001;
    float *b1 = rand_buf(n1, 1.0f), *b2 = rand_buf(n2, 1.0f);
    double ss = 0.0;
    for (size_t i = 0; i < n1; i++)
        ss += (double)b1[i] * b1[i];
    for (size_t i = 0; i < n2; i++)
        ss += (double)b2[i] * b2[i];
    float *ref1 = NULL, *ref2 = NULL;
    double norm1 = 0.0;
    for (int th = 1; th <= 3; th++) {
        float *c1 = copy_buf(b1, n1), *c2 = copy_buf(b2, n2);
        struct tr_span big[2] = {{c1, n1}, {c2, n2}};
        double nm = tr_grad_norm(big, 2, th);
        assert_true(fabs(nm - sqrt(ss)) <= 1e-12 * sqrt(ss));
        assert_true(tr_grad_clip(big, 2, 1.0, th) == nm);
        if (th == 1) {
            ref1 = c1;
            ref2 = c2;
            norm1 = nm;
            continue;
        }
        assert_true(nm == norm1);
        assert_memory_equal(c1, ref1, n1 * sizeof(float));
        assert_memory_equal(c2, ref2, n2 * sizeof(float));
        free(c1);
        free(c2);
    }
    struct tr_span after[2] = {{ref1, n1}, {ref2, n2}};
    assert_true(fabs(tr_grad_norm(after, 2, 2) - 1.0) < 1e-5);
    free(ref1);
    free(ref2);
    free(b1);
    free(b2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bf16_round),
        cmocka_unit_test(test_gemm_vs_ref),
        cmocka_unit_test(test_gemm_bf16_rounds),
        cmocka_unit_test(test_gemm_edges),
        cmocka_unit_test(test_gemm_threads),
        cmocka_unit_test(test_embed),
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_rmsnorm),
        cmocka_unit_test(test_rope),
        cmocka_unit_test(test_attn_forward),
        cmocka_unit_test(test_attn_causal),
        cmocka_unit_test(test_attn_gqa),
        cmocka_unit_test(test_attn_grad),
        cmocka_unit_test(test_attn_threads),
        cmocka_unit_test(test_swiglu),
        cmocka_unit_test(test_xent),
        cmocka_unit_test(test_xent_big),
        cmocka_unit_test(test_router_select),
        cmocka_unit_test(test_router_grad),
        cmocka_unit_test(test_bias_update_rule),
        cmocka_unit_test(test_bias_update_balances),
        cmocka_unit_test(test_concat),
        cmocka_unit_test(test_mtp_combine),
        cmocka_unit_test(test_add_and_clip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
