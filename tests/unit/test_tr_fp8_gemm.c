/* train: fine-grained FP8 scaling and the emulated FP8 GEMM (train/tr_fp8.h).
 *
 * - Scales: amax / 448 (E4M3) or amax / 57344 (E5M2); powers of two with pow2; 1 for a zero
 *   tile; NaN for a NaN or infinite amax.
 * - Quantize / dequantize, per tile, for both formats and both scale kinds: every element
 *   within max(2^-(m+1) |x|, scale 2^-(s+1)) of its value (m mantissa bits, 2^-s the smallest
 *   subnormal: half an ulp of the format, relative in the normal range, absolute in the
 *   subnormal range); the tile maximum within that of 448 s (E4M3); the logical transpose
 *   (trans 1, 128 x 1 tiles of the stored matrix) equal bit for bit to quantizing an explicit
 *   transposed copy; block scales from each 128 x 128 block's max-abs.
 * - The GEMM against an FP64 reference over the dequantized operands (so only accumulation
 *   error is measured): with the ideal accumulator (bits 0) within 2^-20 of sum |a b| per
 *   element; with DeepSeek-V3's (14 bits, promotion every 128) within 2^-9 of sum |a b| (the
 *   truncation of 33 terms per step to 14 bits, bound derived in the test), and measured
 *   worst case printed; bit-identical for 1 and 3 threads, and to the one-at-a-time model of
 *   tr_fp8_dot() per promoted stretch; a NaN reaches exactly the outputs of its row; bad
 *   arguments refused.
 * - Promotion (the seed's finding): dot products of K positive E4M3 values, K from 128 to
 *   16,384: with promotion every 128 the relative error stays flat (under 2^-10 at every K);
 *   without promotion it grows with K (at K 16,384 more than 8x its K 128 value and above 1%).
 */
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
#include "tr_fp8.h"

static uint64_t rng = 12345;

static uint64_t next64(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1) times 2^(a random exponent in [-spread, spread]). */
static float rnd(int spread)
{
    float u = (float)(next64() >> 40) / (float)(1u << 24) * 2.0f - 1.0f;
    int e = spread ? (int)(next64() % (uint64_t)(2 * spread + 1)) - spread : 0;
    return ldexpf(u, e);
}

static float *rand_mat(size_t n, int spread)
{
    float *x = malloc(n * sizeof(float));
    assert_non_null(x);
    for (size_t i = 0; i < n; i++)
        x[i] = rnd(spread);
    return x;
}

static float mat_scale(const struct tr_fp8_mat *m, int r, int k)
{
    int t = k / TR_FP8_TILE;
    return m->kind == TR_FP8_TILES ? m->scale[(size_t)r * m->kt + t]
                                   : m->scale[(size_t)(r / TR_FP8_TILE) * m->kt + t];
}

static int is_pow2(float s)
{
    int e;
    return frexpf(s, &e) == 0.5f;
}

static void test_scale(void **state)
{
    (void)state;
    assert_true(tr_fp8_scale(448.0f, TR_FP8_E4M3, 0) == 1.0f);
    assert_true(tr_fp8_scale(57344.0f, TR_FP8_E5M2, 0) == 1.0f);
    assert_true(tr_fp8_scale(1.0f, TR_FP8_E4M3, 0) == 1.0f / 448.0f);
    assert_true(tr_fp8_scale(1.0f, TR_FP8_E4M3, 1) == 1.0f / 256.0f); /* 1/448 -> 2^-8 */
    assert_true(tr_fp8_scale(448.0f, TR_FP8_E4M3, 1) == 1.0f);        /* already 2^0 */
    assert_true(tr_fp8_scale(449.0f, TR_FP8_E4M3, 1) == 2.0f);
    assert_true(tr_fp8_scale(0.0f, TR_FP8_E4M3, 0) == 1.0f);
    assert_true(isnan(tr_fp8_scale(NAN, TR_FP8_E4M3, 0)));
    assert_true(isnan(tr_fp8_scale(INFINITY, TR_FP8_E4M3, 1)));
    assert_true(tr_fp8_scale(1e-42f, TR_FP8_E4M3, 0) > 0.0f); /* never a zero scale */
}

/* Half an ulp of the format: relative 2^-(m+1) in the normal range, absolute half the smallest
 * subnormal below it. */
static double half_ulp_bound(double x, double s, int fmt)
{
    double rel = fmt == TR_FP8_E4M3 ? 1.0 / 16 : 1.0 / 8;
    double sub = fmt == TR_FP8_E4M3 ? ldexp(1.0, -10) : ldexp(1.0, -17);
    double b = rel * fabs(x), a = sub * s;
    return (b > a ? b : a) * (1.0 + 1e-6);
}

static void check_quant(int rows, int K, int kind, int fmt, int pow2)
{
    size_t n = (size_t)rows * K;
    float *x = rand_mat(n, 12);
    struct tr_fp8_mat m;
    assert_int_equal(tr_fp8_mat_init(&m, rows, K, kind, fmt), TM_OK);
    tr_fp8_quantize(&m, x, 0, K, pow2, 2);
    float *d = malloc(n * sizeof(float));
    assert_non_null(d);
    tr_fp8_dequantize(d, K, &m);
    for (int r = 0; r < rows; r++)
        for (int k = 0; k < K; k++) {
            size_t i = (size_t)r * K + k;
            float s = mat_scale(&m, r, k);
            if (pow2)
                assert_true(is_pow2(s));
            if (!(fabs((double)d[i] - x[i]) <= half_ulp_bound(x[i], s, fmt)))
                fail_msg("kind %d fmt %d pow2 %d: x[%d][%d] %.9g dequantized %.9g scale %g", kind,
                         fmt, pow2, r, k, x[i], d[i], s);
        }
    /* Each scale is its tile's (or block's) max-abs over the format's largest value. */
    int br = kind == TR_FP8_TILES ? 1 : TR_FP8_TILE;
    for (int r0 = 0; r0 < rows; r0 += br)
        for (int t = 0; t < m.kt; t++) {
            float amax = 0.0f;
            for (int r = r0; r < r0 + br && r < rows; r++)
                for (int k = t * TR_FP8_TILE; k < (t + 1) * TR_FP8_TILE && k < K; k++)
                    amax = fmaxf(amax, fabsf(x[(size_t)r * K + k]));
            assert_true(mat_scale(&m, r0, t * TR_FP8_TILE) == tr_fp8_scale(amax, fmt, pow2));
        }
    tr_fp8_mat_release(&m);
    free(x);
    free(d);
}

static void test_quantize_bounds(void **state)
{
    (void)state;
    for (int fmt = TR_FP8_E4M3; fmt <= TR_FP8_E5M2; fmt++)
        for (int pow2 = 0; pow2 < 2; pow2++) {
            check_quant(7, 300, TR_FP8_TILES, fmt, pow2);
            check_quant(130, 257, TR_FP8_BLOCKS, fmt, pow2);
            check_quant(1, 1, TR_FP8_TILES, fmt, pow2);
        }
}

/* Quantizing along the other axis (trans 1) is quantizing the transposed FP32 copy, bit for
 * bit, and differs from a transpose of the row-wise quantization. */
static void test_quantize_transposed(void **state)
{
    (void)state;
    const int R = 200, C = 150; /* stored R x C; logical C x R */
    float *x = rand_mat((size_t)R * C, 6), *xt = malloc((size_t)R * C * sizeof(float));
    assert_non_null(xt);
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++)
            xt[(size_t)c * R + r] = x[(size_t)r * C + c];
    for (int kind = TR_FP8_TILES; kind <= TR_FP8_BLOCKS; kind++) {
        struct tr_fp8_mat a, b;
        assert_int_equal(tr_fp8_mat_init(&a, C, R, kind, TR_FP8_E4M3), TM_OK);
        assert_int_equal(tr_fp8_mat_init(&b, C, R, kind, TR_FP8_E4M3), TM_OK);
        tr_fp8_quantize(&a, x, 1, C, 0, 3);
        tr_fp8_quantize(&b, xt, 0, R, 0, 1);
        assert_memory_equal(a.val, b.val, (size_t)R * C * sizeof(float));
        size_t ns = (size_t)(kind == TR_FP8_TILES ? C : (C + 127) / 128) * a.kt;
        assert_memory_equal(a.scale, b.scale, ns * sizeof(float));
        tr_fp8_mat_release(&a);
        tr_fp8_mat_release(&b);
    }
    /* Row-wise tiles of the stored matrix, transposed, are another (worse-fitted) quantization:
     * the scales differ, so the values do. */
    struct tr_fp8_mat rw, cw;
    assert_int_equal(tr_fp8_mat_init(&rw, R, C, TR_FP8_TILES, TR_FP8_E4M3), TM_OK);
    assert_int_equal(tr_fp8_mat_init(&cw, C, R, TR_FP8_TILES, TR_FP8_E4M3), TM_OK);
    tr_fp8_quantize(&rw, x, 0, C, 0, 1);
    tr_fp8_quantize(&cw, x, 1, C, 0, 1);
    int differ = 0;
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++)
            differ += rw.val[(size_t)r * C + c] * mat_scale(&rw, r, c) !=
                      cw.val[(size_t)c * R + r] * mat_scale(&cw, c, r);
    assert_true(differ > R * C / 4);
    tr_fp8_mat_release(&rw);
    tr_fp8_mat_release(&cw);
    free(x);
    free(xt);
}

/* ---- GEMM ---------------------------------------------------------------------------------- */

static void gemm_check(int M, int N, int K, int kindB, struct tr_fp8_accum acc, double tol,
                       double *worst)
{
    float *a = rand_mat((size_t)M * K, 3), *b = rand_mat((size_t)N * K, 3);
    struct tr_fp8_mat A, B;
    assert_int_equal(tr_fp8_mat_init(&A, M, K, TR_FP8_TILES, TR_FP8_E4M3), TM_OK);
    assert_int_equal(tr_fp8_mat_init(&B, N, K, kindB, TR_FP8_E4M3), TM_OK);
    tr_fp8_quantize(&A, a, 0, K, 0, 1);
    tr_fp8_quantize(&B, b, 0, K, 0, 1);
    float *da = malloc((size_t)M * K * sizeof(float)), *db = malloc((size_t)N * K * sizeof(float));
    float *C1 = malloc((size_t)M * N * sizeof(float)), *C3 = malloc((size_t)M * N * sizeof(float));
    assert_true(da && db && C1 && C3);
    tr_fp8_dequantize(da, K, &A);
    tr_fp8_dequantize(db, K, &B);
    for (size_t i = 0; i < (size_t)M * N; i++)
        C1[i] = C3[i] = 1.0f;
    assert_int_equal(tr_fp8_gemm(C1, N, &A, &B, 0.5f, 2.0f, &acc, 1), TM_OK);
    assert_int_equal(tr_fp8_gemm(C3, N, &A, &B, 0.5f, 2.0f, &acc, 3), TM_OK);
    assert_memory_equal(C1, C3, (size_t)M * N * sizeof(float));
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double ref = 0.0, mag = 0.0;
            for (int k = 0; k < K; k++) {
                double p = (double)da[(size_t)m * K + k] * db[(size_t)n * K + k];
                ref += p;
                mag += fabs(p);
            }
            double err = fabs(C1[(size_t)m * N + n] - (0.5 * ref + 2.0)) / (0.5 * mag + 1e-30);
            if (err > *worst)
                *worst = err;
            if (!(err <= tol))
                fail_msg("%dx%dx%d bits %d promote %d: C[%d][%d] %.9g ref %.9g (err %.3g of "
                         "sum |ab|)",
                         M, N, K, acc.bits, acc.promote, m, n, C1[(size_t)m * N + n],
                         0.5 * ref + 2.0, err);
        }
    tr_fp8_mat_release(&A);
    tr_fp8_mat_release(&B);
    free(a);
    free(b);
    free(da);
    free(db);
    free(C1);
    free(C3);
}

static void test_gemm_vs_fp64(void **state)
{
    (void)state;
    /* Ideal accumulator: float rounding of K additions only. */
    double w0 = 0.0, w14 = 0.0;
    gemm_check(37, 29, 1000, TR_FP8_BLOCKS, (struct tr_fp8_accum){0, 128}, ldexp(1.0, -20), &w0);
    gemm_check(5, 200, 300, TR_FP8_TILES, (struct tr_fp8_accum){0, 32}, ldexp(1.0, -20), &w0);
    /* DeepSeek-V3's accumulator: per WGMMA step, 33 terms each lose less than 2^-13 of the
     * step's largest term (at most sum |ab| of the step plus the carried accumulator), so a
     * promoted stretch loses under 33 * 2^-13 * (its sum |ab|) summed over 4 steps -- bounded
     * here by 2^-9 of the whole sum |ab| with the float additions of the promotions. */
    gemm_check(37, 29, 1000, TR_FP8_BLOCKS, TR_FP8_ACCUM_DEFAULT, ldexp(1.0, -9), &w14);
    gemm_check(64, 130, 257, TR_FP8_TILES, TR_FP8_ACCUM_DEFAULT, ldexp(1.0, -9), &w14);
    fprintf(stderr, "fp8 gemm: worst error / sum|ab|: ideal accumulator %.3g, 14 bits %.3g\n", w0,
            w14);
    assert_true(w14 > w0); /* the truncation is really there */
}

/* The GEMM (8 dot products per vector, lanes side by side) computes each element with the same
 * bits as the one-at-a-time model of tr_fp8_dot() applied per promoted stretch with the two
 * tiles' scales, for both scale kinds and every promotion interval, with K not a multiple of
 * the WGMMA step. */
static void test_gemm_equals_dot(void **state)
{
    (void)state;
    const int M = 9, N = 21, K = 300;
    float *a = rand_mat((size_t)M * K, 4), *b = rand_mat((size_t)N * K, 4);
    float *C = malloc((size_t)M * N * sizeof(float));
    assert_non_null(C);
    static const int promotes[] = {32, 64, 128};
    for (int kind = TR_FP8_TILES; kind <= TR_FP8_BLOCKS; kind++)
        for (int pi = 0; pi < 3; pi++) {
            struct tr_fp8_accum acc = {14, promotes[pi]}, once = {14, 0};
            struct tr_fp8_mat A, B;
            assert_int_equal(tr_fp8_mat_init(&A, M, K, TR_FP8_TILES, TR_FP8_E4M3), TM_OK);
            assert_int_equal(tr_fp8_mat_init(&B, N, K, kind, TR_FP8_E4M3), TM_OK);
            tr_fp8_quantize(&A, a, 0, K, 0, 1);
            tr_fp8_quantize(&B, b, 0, K, 0, 1);
            assert_int_equal(tr_fp8_gemm(C, N, &A, &B, 1.0f, 0.0f, &acc, 2), TM_OK);
            for (int m = 0; m < M; m++)
                for (int n = 0; n < N; n++) {
                    float c = 0.0f;
                    for (int k = 0; k < K; k += acc.promote) {
                        int w = K - k < acc.promote ? K - k : acc.promote;
                        float s = mat_scale(&A, m, k) * mat_scale(&B, n, k);
                        c += tr_fp8_dot(A.val + (size_t)m * K + k, B.val + (size_t)n * K + k, w, s,
                                        &once);
                    }
                    if (memcmp(&c, &C[(size_t)m * N + n], sizeof(c)) != 0)
                        fail_msg("kind %d promote %d: C[%d][%d] %.9g, one at a time %.9g", kind,
                                 acc.promote, m, n, C[(size_t)m * N + n], c);
                }
            tr_fp8_mat_release(&A);
            tr_fp8_mat_release(&B);
        }
    /* A NaN in an operand row reaches exactly the outputs it touches. */
    struct tr_fp8_mat A, B;
    assert_int_equal(tr_fp8_mat_init(&A, M, K, TR_FP8_TILES, TR_FP8_E4M3), TM_OK);
    assert_int_equal(tr_fp8_mat_init(&B, N, K, TR_FP8_TILES, TR_FP8_E4M3), TM_OK);
    a[2 * K + 5] = NAN;
    tr_fp8_quantize(&A, a, 0, K, 0, 1);
    tr_fp8_quantize(&B, b, 0, K, 0, 1);
    assert_int_equal(tr_fp8_gemm(C, N, &A, &B, 1.0f, 0.0f, &TR_FP8_ACCUM_DEFAULT, 1), TM_OK);
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++)
            assert_true(isnan(C[(size_t)m * N + n]) == (m == 2));
    tr_fp8_mat_release(&A);
    tr_fp8_mat_release(&B);
    free(a);
    free(b);
    free(C);
}

static void test_gemm_errors(void **state)
{
    (void)state;
    struct tr_fp8_mat A, B;
    assert_int_equal(tr_fp8_mat_init(&A, 2, 300, TR_FP8_TILES, TR_FP8_E4M3), TM_OK);
    assert_int_equal(tr_fp8_mat_init(&B, 3, 300, TR_FP8_TILES, TR_FP8_E4M3), TM_OK);
    float C[6];
    FILE *q = fopen("/dev/null", "w");
    tm_log_set_stream(q, 0);
    struct tr_fp8_accum never = {14, 0}, odd = {14, 100}, wide = {25, 128};
    assert_int_equal(tr_fp8_gemm(C, 3, &A, &B, 1.0f, 0.0f, &never, 1), TM_ERR_USAGE);
    assert_int_equal(tr_fp8_gemm(C, 3, &A, &B, 1.0f, 0.0f, &odd, 1), TM_ERR_USAGE);
    assert_int_equal(tr_fp8_gemm(C, 3, &A, &B, 1.0f, 0.0f, &wide, 1), TM_ERR_USAGE);
    assert_int_equal(tr_fp8_gemm(C, 2, &A, &B, 1.0f, 0.0f, &TR_FP8_ACCUM_DEFAULT, 1), TM_ERR_USAGE);
    tr_fp8_mat_release(&A);
    tr_fp8_mat_release(&B);
    assert_int_equal(tr_fp8_mat_init(&A, -1, 3, TR_FP8_TILES, TR_FP8_E4M3), TM_ERR_USAGE);
    tm_log_set_stream(NULL, -1);
    fclose(q);
}

/* ---- promotion ----------------------------------------------------------------------------- */

/* Mean relative error of K-long dot products of positive E4M3 values (uniform in (0, 448)),
 * over `reps` random vectors, against the exact (double) sum. */
static double dot_error(int K, struct tr_fp8_accum acc, int reps)
{
    float *a = malloc((size_t)K * sizeof(float)), *b = malloc((size_t)K * sizeof(float));
    assert_true(a && b);
    double total = 0.0;
    for (int r = 0; r < reps; r++) {
        double exact = 0.0;
        for (int k = 0; k < K; k++) {
            a[k] = tr_fp8_to_float(tr_fp8_from_float(448.0f * (0.5f * rnd(0) + 0.5f), 0), 0);
            b[k] = tr_fp8_to_float(tr_fp8_from_float(448.0f * (0.5f * rnd(0) + 0.5f), 0), 0);
            exact += (double)a[k] * b[k];
        }
        total += fabs(tr_fp8_dot(a, b, K, 1.0f, &acc) - exact) / exact;
    }
    free(a);
    free(b);
    return total / reps;
}

static void test_promotion(void **state)
{
    (void)state;
    struct tr_fp8_accum with = TR_FP8_ACCUM_DEFAULT, without = {14, 0};
    double first_without = 0.0, last_without = 0.0;
    for (int K = 128; K <= 16384; K *= 2) {
        double ew = dot_error(K, with, 8), en = dot_error(K, without, 8);
        fprintf(stderr, "fp8 dot K %5d: relative error with promotion %.3g, without %.3g\n", K, ew,
                en);
        assert_true(ew < ldexp(1.0, -10));
        if (K == 128)
            first_without = en;
        last_without = en;
    }
    assert_true(last_without > 8.0 * first_without);
    assert_true(last_without > 0.01);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scale),
        cmocka_unit_test(test_quantize_bounds),
        cmocka_unit_test(test_quantize_transposed),
        cmocka_unit_test(test_gemm_vs_fp64),
        cmocka_unit_test(test_gemm_equals_dot),
        cmocka_unit_test(test_gemm_errors),
        cmocka_unit_test(test_promotion),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
