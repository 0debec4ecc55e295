/* train: FP8 conversion (train/tr_fp8.h, tr_fp8_cvt.c) for E4M3 and E5M2, against references
 * written here from the format definitions. Tolerance: none; codes must be equal bit for bit,
 * decoded values equal as doubles with the same sign (NaN: any quiet NaN with the code's sign).
 * - Decoding: all 256 codes of each format against ldexp() of the fields; the non-negative
 *   finite codes must be strictly increasing in value (the encoder reference relies on it).
 * - Round trip: from_float(to_float(c)) == c for every non-NaN code; E5M2's infinities
 *   saturate to the largest finite code of their sign.
 * - Rounding boundaries: for every pair of adjacent non-negative finite values, both values,
 *   their midpoint (exact in float; must give the even code) and the floats just below and just
 *   above it, with both signs; the same past the largest finite value, where everything
 *   saturates.
 * - Specials: overflow, infinities, NaNs of several payloads and signs, float subnormals,
 *   FLT_MIN, half the smallest FP8 subnormal (-> signed zero) and the float just above it.
 * - Brute force: ref_encode() (a binary search over the decoded values, exact comparisons in
 *   double) against tr_fp8_from_float() on random float bit patterns and on a strided sweep of
 *   every binade from 1/8 of the smallest subnormal to 4x the largest value, both signs:
 *   about 6 million inputs (printed).
 * - tr_fp8_quantize_array() equals the per-element conversion of x[i] / scale, with x chosen
 *   so that some quotients sit on or next to rounding boundaries (a reciprocal-multiply
 *   shortcut fails this).
 * - An unknown format number behaves as E4M3.
 * Runtime: about 0.2 s in a RelWithDebInfo (-O2) build, 0.6 s under ASan + UBSan (TM_SANITIZE);
 * time build-fp8/tests/test_tr_fp8_cvt. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tm_rand.h"
#include "tr_fp8.h"

#define N_CODES    256
#define SIGN_BIT   0x80u
#define NAN_CODE   0x7fu      /* what every NaN input becomes (tr_fp8.h) */
#define N_RANDOM   (1u << 20) /* random float bit patterns per format */
#define SWEEP_STEP 257u       /* odd, so the sweep reaches every low mantissa bit pattern */
#define QUANT_N    4096

/* A format as its definition states it (tr_fp8.h), independent of the implementation. */
struct fmt_def {
    int fmt; /* enum tr_fp8_format */
    const char *name;
    int exp_bits;
    int mant_bits;
    int bias;
    int ieee_specials; /* 1: all-ones exponent is Inf/NaN (E5M2); 0: only S.1111.111 is NaN */
    unsigned max_mag;  /* magnitude code of the largest finite value */
    double max;
};

static const struct fmt_def defs[] = {
    {TR_FP8_E4M3, "E4M3", 4, 3, 7, 0, 0x7e, 448.0},
    {TR_FP8_E5M2, "E5M2", 5, 2, 15, 1, 0x7b, 57344.0},
};
#define N_FMTS (sizeof defs / sizeof defs[0])

/* pos_val[f][c]: the value of non-negative finite code c (0 <= c <= max_mag) of defs[f]. */
static double pos_val[N_FMTS][128];

static uint64_t rng_state = 0x5eed0f8u;

static float bits_float(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static uint32_t float_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

/* The value of a code from its fields: NaN and +-Inf per the format's rules, otherwise
 * m * 2^(1 - bias - mant_bits) for exponent field 0, (2^mant_bits + m) * 2^(e - bias -
 * mant_bits) otherwise. The sign of a NaN is not represented here (callers check it apart). */
static double ref_decode(unsigned code, const struct fmt_def *d)
{
    const int e = (int)(code >> d->mant_bits) & ((1 << d->exp_bits) - 1);
    const int m = (int)code & ((1 << d->mant_bits) - 1);
    const int e_ones = (1 << d->exp_bits) - 1;
    const int m_ones = (1 << d->mant_bits) - 1;
    double v;

    if (d->ieee_specials && e == e_ones)
        v = m == 0 ? INFINITY : NAN;
    else if (!d->ieee_specials && e == e_ones && m == m_ones)
        v = NAN;
    else if (e == 0)
        v = ldexp(m, 1 - d->bias - d->mant_bits);
    else
        v = ldexp((1 << d->mant_bits) + m, e - d->bias - d->mant_bits);
    return (code & SIGN_BIT) ? -v : v;
}

/* The FP8 code for x as tr_fp8.h specifies it, by search rather than bit manipulation:
 * NaN -> 0x7F; |x| past the largest finite value -> it, with x's sign; otherwise the nearest
 * non-negative finite value to |x| (compared exactly in double: 2|x| against the sum of the two
 * neighbours), a tie going to the even code, with x's sign (so tiny values give a signed
 * zero). */
static unsigned ref_encode(float x, size_t f)
{
    const struct fmt_def *d = &defs[f];
    const double *val = pos_val[f];
    const unsigned sign = signbit(x) ? SIGN_BIT : 0u;
    const double v = fabs((double)x);
    unsigned lo = 0, hi = d->max_mag + 1; /* val[lo] <= v; every code >= hi is > v */

    if (isnan(x))
        return NAN_CODE;
    if (v > d->max)
        return sign | d->max_mag;
    while (hi - lo > 1) {
        const unsigned mid = (lo + hi) / 2;
        if (val[mid] <= v)
            lo = mid;
        else
            hi = mid;
    }
    if (lo == d->max_mag || val[lo] == v)
        return sign | lo;
    if (2.0 * v < val[lo] + val[lo + 1])
        return sign | lo;
    if (2.0 * v > val[lo] + val[lo + 1])
        return sign | (lo + 1);
    return sign | ((lo & 1u) == 0 ? lo : lo + 1);
}

static void expect_code(float x, size_t f, unsigned want)
{
    const unsigned got = tr_fp8_from_float(x, defs[f].fmt);
    if (got != want)
        fail_msg("%s: x = %a (%.9g, bits 0x%08x): got 0x%02x, want 0x%02x", defs[f].name, (double)x,
                 (double)x, float_bits(x), got, want);
}

/* Fills pos_val and checks that it is strictly increasing, which ref_encode()'s binary search
 * needs. */
static int setup_tables(void **state)
{
    (void)state;
    for (size_t f = 0; f < N_FMTS; f++) {
        for (unsigned c = 0; c <= defs[f].max_mag; c++) {
            pos_val[f][c] = ref_decode(c, &defs[f]);
            if (!isfinite(pos_val[f][c]) || (c > 0 && !(pos_val[f][c] > pos_val[f][c - 1]))) {
                fprintf(stderr, "%s: decoded values not increasing at 0x%02x\n", defs[f].name, c);
                return -1;
            }
        }
        if (pos_val[f][defs[f].max_mag] != defs[f].max)
            return -1;
    }
    return 0;
}

/* ---- decoding ------------------------------------------------------------------------------ */

static void test_decode_all_codes(void **state)
{
    (void)state;
    for (size_t f = 0; f < N_FMTS; f++) {
        const struct fmt_def *d = &defs[f];
        for (unsigned c = 0; c < N_CODES; c++) {
            const float got = tr_fp8_to_float((uint8_t)c, d->fmt);
            const double want = ref_decode(c, d);
            const int want_neg = (c & SIGN_BIT) != 0;
            if (isnan(want)) {
                /* quiet NaN with the code's sign */
                if (!isnan(got) || !!signbit(got) != want_neg || !(float_bits(got) & 0x400000u))
                    fail_msg("%s: code 0x%02x: got %a, want a quiet NaN of sign %d", d->name, c,
                             (double)got, want_neg);
            } else if ((double)got != want || !!signbit(got) != want_neg) {
                fail_msg("%s: code 0x%02x: got %a, want %a", d->name, c, (double)got, want);
            }
        }
        assert_true(tr_fp8_max(d->fmt) == (float)d->max);
    }

    /* Landmarks from the format descriptions in tr_fp8.h, spelled out. */
    assert_true(tr_fp8_to_float(0x7e, TR_FP8_E4M3) == 448.0f);
    assert_true(tr_fp8_to_float(0xfe, TR_FP8_E4M3) == -448.0f);
    assert_true(tr_fp8_to_float(0x08, TR_FP8_E4M3) == 0x1p-6f); /* smallest normal */
    assert_true(tr_fp8_to_float(0x01, TR_FP8_E4M3) == 0x1p-9f); /* smallest subnormal */
    assert_true(tr_fp8_to_float(0x07, TR_FP8_E4M3) == 7 * 0x1p-9f);
    assert_true(tr_fp8_to_float(0x38, TR_FP8_E4M3) == 1.0f);
    assert_true(isnan(tr_fp8_to_float(0x7f, TR_FP8_E4M3)));
    assert_true(isnan(tr_fp8_to_float(0xff, TR_FP8_E4M3)) &&
                signbit(tr_fp8_to_float(0xff, TR_FP8_E4M3)));
    assert_true(tr_fp8_to_float(0x7b, TR_FP8_E5M2) == 57344.0f);
    assert_true(tr_fp8_to_float(0x04, TR_FP8_E5M2) == 0x1p-14f);
    assert_true(tr_fp8_to_float(0x01, TR_FP8_E5M2) == 0x1p-16f);
    assert_true(tr_fp8_to_float(0x3c, TR_FP8_E5M2) == 1.0f);
    assert_true(tr_fp8_to_float(0x7c, TR_FP8_E5M2) == INFINITY);
    assert_true(tr_fp8_to_float(0xfc, TR_FP8_E5M2) == -INFINITY);
    for (unsigned c = 0x7d; c <= 0x7f; c++) {
        assert_true(isnan(tr_fp8_to_float((uint8_t)c, TR_FP8_E5M2)));
        assert_true(signbit(tr_fp8_to_float((uint8_t)(c | SIGN_BIT), TR_FP8_E5M2)));
    }
    for (size_t f = 0; f < N_FMTS; f++) {
        assert_int_equal(float_bits(tr_fp8_to_float(0x00, defs[f].fmt)), 0x00000000u);
        assert_int_equal(float_bits(tr_fp8_to_float(0x80, defs[f].fmt)), 0x80000000u);
    }
}

/* ---- encoding ------------------------------------------------------------------------------ */

static void test_round_trip(void **state)
{
    (void)state;
    for (size_t f = 0; f < N_FMTS; f++) {
        const struct fmt_def *d = &defs[f];
        for (unsigned c = 0; c < N_CODES; c++) {
            const float v = tr_fp8_to_float((uint8_t)c, d->fmt);
            if (isnan(v))
                continue;
            /* E5M2's infinities are past the largest finite value: they saturate. */
            expect_code(v, f, isinf(v) ? (c & SIGN_BIT) | d->max_mag : c);
        }
    }
}

/* Both adjacent values, their midpoint and its two float neighbours, with both signs. */
static void test_rounding_boundaries(void **state)
{
    (void)state;
    for (size_t f = 0; f < N_FMTS; f++) {
        const struct fmt_def *d = &defs[f];
        for (unsigned k = 0; k < d->max_mag; k++) {
            const float lo = (float)pos_val[f][k];
            const float hi = (float)pos_val[f][k + 1];
            const double mid_exact = (pos_val[f][k] + pos_val[f][k + 1]) / 2;
            const float mid = (float)mid_exact;
            const unsigned even = (k & 1u) == 0 ? k : k + 1;

            assert_true((double)mid == mid_exact); /* the midpoint must be a float */
            for (unsigned s = 0; s <= SIGN_BIT; s += SIGN_BIT) {
                const float sg = s ? -1.0f : 1.0f;
                expect_code(sg * lo, f, s | k);
                expect_code(sg * hi, f, s | (k + 1));
                expect_code(sg * mid, f, s | even);
                expect_code(sg * nextafterf(mid, 0.0f), f, s | k);
                expect_code(sg * nextafterf(mid, INFINITY), f, s | (k + 1));
            }
        }

        /* Past the largest value: the next value the format would have (one more mantissa
         * step: 480 for E4M3, 65536 for E5M2), the midpoint to it and its neighbours all
         * saturate. */
        const double step = pos_val[f][d->max_mag] - pos_val[f][d->max_mag - 1];
        const float next = (float)(d->max + step);
        const float mid = (float)(d->max + step / 2);
        const float probes[] = {
            nextafterf((float)d->max, INFINITY),
            nextafterf(mid, 0.0f),
            mid,
            nextafterf(mid, INFINITY),
            next,
            nextafterf(next, INFINITY),
        };
        for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
            expect_code(probes[i], f, d->max_mag);
            expect_code(-probes[i], f, SIGN_BIT | d->max_mag);
        }
    }
}

static void test_specials(void **state)
{
    (void)state;
    /* NaN payloads: quiet, signalling, all-ones, negative ones. */
    static const uint32_t nans[] = {0x7fc00000u, 0x7f800001u, 0x7fffffffu, 0x7fa5a5a5u,
                                    0xffc00000u, 0xff800001u, 0xffffffffu, 0xffc0ffeeu};

    for (size_t f = 0; f < N_FMTS; f++) {
        const struct fmt_def *d = &defs[f];
        const float max = (float)d->max;
        const float big[] = {max * 1.0001f, 2 * max, 1e30f, FLT_MAX, INFINITY};
        /* Half the smallest subnormal: a tie between 0 and the smallest subnormal. */
        const float half_min = (float)(pos_val[f][1] / 2);
        const float tiny[] = {0.0f,    bits_float(1u), bits_float(0x007fffffu),
                              FLT_MIN, 0x1p-100f,      half_min};

        for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++)
            expect_code(bits_float(nans[i]), f, NAN_CODE);
        for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
            expect_code(big[i], f, d->max_mag);
            expect_code(-big[i], f, SIGN_BIT | d->max_mag);
        }
        for (size_t i = 0; i < sizeof tiny / sizeof tiny[0]; i++) {
            expect_code(tiny[i], f, 0x00);
            expect_code(-tiny[i], f, SIGN_BIT);
        }
        expect_code(nextafterf(half_min, 1.0f), f, 0x01);
        expect_code(-nextafterf(half_min, 1.0f), f, SIGN_BIT | 0x01);
        expect_code(max, f, d->max_mag);
        expect_code(-max, f, SIGN_BIT | d->max_mag);
    }
}

/* An unknown format number is E4M3 (tr_fp8.h). */
static void test_unknown_format(void **state)
{
    (void)state;
    static const int unknown[] = {-1, 2, 99};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        assert_true(tr_fp8_max(unknown[i]) == TR_FP8_E4M3_MAX);
        for (unsigned c = 0; c < N_CODES; c++) {
            const float v = tr_fp8_to_float((uint8_t)c, unknown[i]);
            assert_int_equal(float_bits(v), float_bits(tr_fp8_to_float((uint8_t)c, TR_FP8_E4M3)));
            assert_int_equal(tr_fp8_from_float(v * 1.03f, unknown[i]),
                             tr_fp8_from_float(v * 1.03f, TR_FP8_E4M3));
        }
    }
}

/* ref_encode() against tr_fp8_from_float() on random bit patterns (mostly huge, tiny or NaN)
 * and on a sweep through every binade where rounding happens, with a stride over the bit
 * patterns, both signs. */
static void test_brute_force(void **state)
{
    (void)state;
    size_t total = 0;

    for (size_t f = 0; f < N_FMTS; f++) {
        const struct fmt_def *d = &defs[f];
        const uint32_t sweep_lo = float_bits((float)(pos_val[f][1] / 8));
        const uint32_t sweep_hi = float_bits((float)(d->max * 4));
        size_t n = 0;

        for (uint32_t i = 0; i < N_RANDOM; i++, n++) {
            const float x = bits_float((uint32_t)tm_splitmix64(&rng_state));
            expect_code(x, f, ref_encode(x, f));
        }
        for (uint32_t u = sweep_lo; u < sweep_hi; u += SWEEP_STEP, n += 2) {
            const float x = bits_float(u);
            expect_code(x, f, ref_encode(x, f));
            expect_code(-x, f, ref_encode(-x, f));
        }
        printf("%s: %zu inputs match the reference\n", d->name, n);
        total += n;
    }
    assert_true(total >= 2000000);
}

/* Puts x = mid * scale and its two float neighbours into x[0..3 * max_mag) for every midpoint
 * mid between adjacent non-negative values of defs[f], alternating signs, so that x / scale
 * lands on or next to a rounding boundary and a quotient off by one ulp (a multiplication by
 * the reciprocal, say) changes codes. */
static size_t fill_near_boundaries(float *x, size_t f, float scale)
{
    size_t n = 0;
    for (unsigned k = 0; k < defs[f].max_mag; k++) {
        const float mid = (float)((pos_val[f][k] + pos_val[f][k + 1]) / 2 * scale);
        const float sg = (k & 1u) ? -1.0f : 1.0f;
        x[n++] = sg * nextafterf(mid, 0.0f);
        x[n++] = sg * mid;
        x[n++] = sg * nextafterf(mid, INFINITY);
    }
    return n;
}

/* q[i] == tr_fp8_from_float(x[i] / scale) for scales that are and are not powers of two,
 * including ones that push values past the largest finite value, for specials in x, values
 * whose quotient is next to a rounding boundary and random values. */
static void test_quantize_array(void **state)
{
    (void)state;
    static float x[QUANT_N];
    static uint8_t q[QUANT_N];
    static const float specials[] = {0.0f,      -0.0f,   NAN,     -NAN,     INFINITY,
                                     -INFINITY, FLT_MAX, FLT_MIN, 0x1p-140f};
    const size_t n_specials = sizeof specials / sizeof specials[0];
    const size_t random_from = n_specials + 3 * 128; /* after the specials and the boundaries */
    float amax = 0.0f;

    memcpy(x, specials, sizeof specials);
    for (size_t i = random_from; i < QUANT_N; i++) {
        /* uniform mantissa, exponent over [-24, 24), random sign */
        const uint64_t r = tm_splitmix64(&rng_state);
        const float v = ldexpf(1.0f + (float)(r >> 41) / (float)(1u << 23), (int)(r % 48) - 24);
        x[i] = (r >> 6) & 1 ? -v : v;
        amax = v > amax ? v : amax;
    }

    for (size_t f = 0; f < N_FMTS; f++) {
        const int fmt = defs[f].fmt;
        /* The last is the scale of a DeepSeek-V3 tile: its max-abs over the largest value. */
        const float scales[] = {1.0f, 3.0f, 0.1f, 1e-3f, 1e4f, 0x1p-20f, amax / tr_fp8_max(fmt)};
        for (size_t s = 0; s < sizeof scales / sizeof scales[0]; s++) {
            const size_t n_near = fill_near_boundaries(x + n_specials, f, scales[s]);
            for (size_t i = n_specials + n_near; i < random_from; i++)
                x[i] = 1.0f;
            memset(q, 0xaa, sizeof q);
            tr_fp8_quantize_array(q, x, QUANT_N, scales[s], fmt);
            for (size_t i = 0; i < QUANT_N; i++) {
                const unsigned want = tr_fp8_from_float(x[i] / scales[s], fmt);
                if (q[i] != want)
                    fail_msg("%s: scale %a: x[%zu] = %a: got 0x%02x, want 0x%02x", defs[f].name,
                             (double)scales[s], i, (double)x[i], q[i], want);
            }
        }
        /* n == 0 writes nothing. */
        memset(q, 0xaa, sizeof q);
        tr_fp8_quantize_array(q, x, 0, 1.0f, fmt);
        assert_int_equal(q[0], 0xaa);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_all_codes),    cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_rounding_boundaries), cmocka_unit_test(test_specials),
        cmocka_unit_test(test_unknown_format),      cmocka_unit_test(test_brute_force),
        cmocka_unit_test(test_quantize_array),
    };
    return cmocka_run_group_tests(tests, setup_tables, NULL);
}
