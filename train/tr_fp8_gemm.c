/* tr_fp8_gemm: the FP8 GEMM with Hopper's limited accumulation precision and DeepSeek-V3's
 * promotion to FP32, emulated exactly (see tr_fp8.h for the model). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tm_err.h"
#include "tm_log.h"
#include "tm_mem.h"
#include "tr_fp8.h"
#include "tr_internal.h"

/* One WGMMA step: acc and the products a[i] b[i], i < n (n <= TR_FP8_WGMMA_K), aligned to the
 * largest exponent among them and truncated to `bits` significant bits of it, then added
 * exactly. Products of FP8 values are exact in float (at most 4 + 4 significant bits).
 * Truncation is done on integers: with e the largest exponent (2^e <= max < 2^(e + 1)), every
 * term times 2^(bits - 1 - e) is below 2^bits in magnitude, and its integer part (conversion
 * truncates toward zero) is the term's kept bits. The sum of 33 such integers stays below
 * 2^(bits + 6) <= 2^30, exact in int32, and the result, an integer times a power of two with at
 * most 30 significant bits, is rounded to float once when bits > 18 (never below that). */
TR_INLINE float wgmma_step(float acc, const float *a, const float *b, int n, int bits)
{
    /* Eight lanes of products and maxima, so the loops vectorize without reordering anything
     * (the max of non-negative numbers is exact in any order). The terms are finite: callers
     * send rows holding a NaN or an infinity to plain_sum() instead. */
    /* The maximum runs on the bit patterns of |p| as unsigned integers: for non-negative floats
     * their order is the values' order, and an integer max vectorizes where a float comparison
     * in a reduction does not. */
    float p[TR_FP8_WGMMA_K];
    uint32_t m8[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) {
            float v = a[i + k] * b[i + k];
            uint32_t u;
            p[i + k] = v;
            memcpy(&u, &v, sizeof(u));
            u &= 0x7fffffffu;
            m8[k] = u > m8[k] ? u : m8[k];
        }
    for (; i < n; i++) {
        p[i] = a[i] * b[i];
        uint32_t u;
        memcpy(&u, &p[i], sizeof(u));
        u &= 0x7fffffffu;
        m8[0] = u > m8[0] ? u : m8[0];
    }
    float fa = fabsf(acc);
    uint32_t mb;
    memcpy(&mb, &fa, sizeof(mb));
    for (int k = 0; k < 8; k++)
        mb = m8[k] > mb ? m8[k] : mb;
    if (mb == 0)
        return acc;
    /* The largest term is a normal float (FP8 products are at least 2^-32), so its exponent
     * field is e + 127; the two powers of two are built the same way (both stay inside the
     * normal range). */
    int e = (int)(mb >> 23) - 127;
    uint32_t ub = (uint32_t)(127 + bits - 1 - e) << 23, db = (uint32_t)(127 + e - bits + 1) << 23;
    float up, down;
    memcpy(&up, &ub, sizeof(up));
    memcpy(&down, &db, sizeof(down));
    int32_t s8[8] = {0};
    i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            s8[k] += (int32_t)(p[i + k] * up);
    int32_t sum = (int32_t)(acc * up);
    for (; i < n; i++)
        sum += (int32_t)(p[i] * up);
    for (int k = 0; k < 8; k++)
        sum += s8[k];
    return (float)sum * down;
}

/* Whether any of x[0..n) is a NaN or an infinity. */
static int nonfinite(const float *x, int n)
{
    for (int i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 1;
    return 0;
}

/* The limited accumulator over a[0..n) b[0..n), in WGMMA steps, from zero. bits 0: plain float
 * accumulation in K order (callers also send inputs holding a NaN or an infinity here, so that
 * they propagate as IEEE arithmetic does; wgmma_step() assumes finite terms). */
TR_INLINE float limited_sum(const float *a, const float *b, int n, int bits)
{
    float acc = 0.0f;
    if (bits == 0) {
        for (int i = 0; i < n; i++)
            acc += a[i] * b[i];
        return acc;
    }
    for (int k = 0; k < n; k += TR_FP8_WGMMA_K) {
        int w = n - k < TR_FP8_WGMMA_K ? n - k : TR_FP8_WGMMA_K;
        acc = wgmma_step(acc, a + k, b + k, w, bits);
    }
    return acc;
}

float tr_fp8_dot(const float *a, const float *b, int K, float scale, const struct tr_fp8_accum *acc)
{
    int bits = nonfinite(a, K) || nonfinite(b, K) ? 0 : acc->bits;
    if (acc->promote == 0)
        return limited_sum(a, b, K, bits) * scale;
    float c = 0.0f;
    for (int k = 0; k < K; k += acc->promote) {
        int w = K - k < acc->promote ? K - k : acc->promote;
        c += limited_sum(a + k, b + k, w, bits) * scale;
    }
    return c;
}

/* Outputs computed side by side: the GEMM runs 8 dot products (one row of A against 8 rows of
 * B) in the 8 lanes of a vector, each lane its own accumulator, so every step of the model is
 * vertical (no reduction across lanes) and vectorizes. The integer sums are exact, so a lane
 * computes the same bits as wgmma_step() on its own dot product. */
#define PANEL 8

struct gemm_job {
    float *C;
    int ldc;
    const struct tr_fp8_mat *A, *B;
    float alpha, beta;
    struct tr_fp8_accum acc;
    unsigned char *b_nonfinite; /* per row of B: holds a NaN or an infinity */
    float *bp;                  /* B in panels: panel q holds rows 8q .. 8q + 7 as [K][8] */
    float *bs;                  /* their scales: [panel][kt][8] (1 for padding rows) */
    int panels;
};

static float scale_of(const struct tr_fp8_mat *m, int r, int t)
{
    return m->kind == TR_FP8_TILES ? m->scale[(size_t)r * m->kt + t]
                                   : m->scale[(size_t)(r / TR_FP8_TILE) * m->kt + t];
}

/* Powers of two 2^(bits - 1 - e) and 2^(e - bits + 1) for the exponent e of the largest term
 * (bit pattern mb; a zero maximum leaves every term zero, any finite factors do). */
TR_INLINE void step_factors(uint32_t mb, int bits, float *up, float *down)
{
    int e = mb ? (int)(mb >> 23) - 127 : 0;
    uint32_t ub = (uint32_t)(127 + bits - 1 - e) << 23, db = (uint32_t)(127 + e - bits + 1) << 23;
    memcpy(up, &ub, sizeof(*up));
    memcpy(down, &db, sizeof(*down));
}

/* GCC vector extensions: 8 lanes (two SSE registers in the baseline variant, one AVX2 register
 * in the other). Casts between them reinterpret bits; __builtin_convertvector converts values
 * (float to int truncates toward zero, as the scalar cast does). */
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef uint32_t v8u __attribute__((vector_size(32)));

/* One row of A against panel q: the 8 dot products through the limited accumulator, promoted
 * every `promote` elements with the two scales. out[l] receives the FP32 sum of lane l. */
TR_INLINE void panel_dots(const struct gemm_job *j, int m, int q, float out[PANEL])
{
    const struct tr_fp8_mat *A = j->A;
    int K = A->K, bits = j->acc.bits, promote = j->acc.promote ? j->acc.promote : K;
    const float *a = A->val + (size_t)m * K;
    const float *bp = j->bp + (size_t)q * K * PANEL;
    const v8u absmask = (v8u){0} + 0x7fffffffu;
    v8f c = {0};
    for (int k0 = 0; k0 < K; k0 += promote) {
        int w = K - k0 < promote ? K - k0 : promote;
        v8f acc = {0};
        for (int k1 = k0; k1 < k0 + w; k1 += TR_FP8_WGMMA_K) {
            int n = k0 + w - k1 < TR_FP8_WGMMA_K ? k0 + w - k1 : TR_FP8_WGMMA_K;
            /* |term| bit patterns fit in 31 bits, so a signed comparison orders them; two
             * running maxima (even and odd i) halve the chain of dependent compares. */
            v8f p[TR_FP8_WGMMA_K];
            v8i mx = (v8i)((v8u)acc & absmask), mx1 = mx;
            int i = 0;
            for (; i + 2 <= n; i += 2) {
                v8f b0, b1;
                memcpy(&b0, bp + (size_t)(k1 + i) * PANEL, sizeof(b0));
                memcpy(&b1, bp + (size_t)(k1 + i + 1) * PANEL, sizeof(b1));
                p[i] = a[k1 + i] * b0;
                p[i + 1] = a[k1 + i + 1] * b1;
                v8i u0 = (v8i)((v8u)p[i] & absmask), u1 = (v8i)((v8u)p[i + 1] & absmask);
                v8i g0 = u0 > mx, g1 = u1 > mx1; /* all ones where the new term is larger */
                mx = (u0 & g0) | (mx & ~g0);
                mx1 = (u1 & g1) | (mx1 & ~g1);
            }
            for (; i < n; i++) {
                v8f b0;
                memcpy(&b0, bp + (size_t)(k1 + i) * PANEL, sizeof(b0));
                p[i] = a[k1 + i] * b0;
                v8i u0 = (v8i)((v8u)p[i] & absmask), g0 = u0 > mx;
                mx = (u0 & g0) | (mx & ~g0);
            }
            v8i g = mx1 > mx;
            mx = (mx1 & g) | (mx & ~g);
            /* The exponent e of each lane's largest term (0 for a lane of zeros), and the two
             * powers of two 2^(bits - 1 - e) and 2^(e - bits + 1) built in the exponent field. */
            v8i e = ((mx >> 23) - 127) & (mx != 0);
            v8f up = (v8f)((127 + bits - 1 - e) << 23), down = (v8f)((127 + e - bits + 1) << 23);
            v8i sum = __builtin_convertvector(acc * up, v8i);
            for (i = 0; i < n; i++)
                sum += __builtin_convertvector(p[i] * up, v8i);
            acc = __builtin_convertvector(sum, v8f) * down;
        }
        int t = k0 / TR_FP8_TILE;
        v8f sb;
        memcpy(&sb, j->bs + ((size_t)q * A->kt + t) * PANEL, sizeof(sb));
        c += acc * (scale_of(A, m, t) * sb);
    }
    memcpy(out, &c, sizeof(c));
}

/* The dot product of row m of A and row n of B, one at a time: for the ideal accumulator and for
 * rows holding a NaN or an infinity. */
static float single_dot(const struct gemm_job *j, int m, int n, int bits)
{
    const struct tr_fp8_mat *A = j->A, *B = j->B;
    int K = A->K, promote = j->acc.promote ? j->acc.promote : K;
    const float *a = A->val + (size_t)m * K, *b = B->val + (size_t)n * K;
    float c = 0.0f;
    for (int k = 0; k < K; k += promote) {
        int w = K - k < promote ? K - k : promote;
        int t = k / TR_FP8_TILE; /* promote divides the tile, so one tile covers [k, k + w) */
        float s = scale_of(A, m, t) * scale_of(B, n, t);
        c += limited_sum(a + k, b + k, w, bits) * s;
    }
    return c;
}

/* Row m of C. */
TR_VECTOR_CLONES static void gemm_row(void *ctx, size_t mi)
{
    const struct gemm_job *j = ctx;
    const struct tr_fp8_mat *A = j->A, *B = j->B;
    int m = (int)mi;
    float *crow = j->C + (size_t)m * j->ldc;
    int a_bad = nonfinite(A->val + (size_t)m * A->K, A->K);
    for (int q = 0; q < j->panels; q++) {
        float c[PANEL];
        if (j->acc.bits > 0 && !a_bad)
            panel_dots(j, m, q, c);
        for (int l = 0; l < PANEL && q * PANEL + l < B->rows; l++) {
            int n = q * PANEL + l;
            if (j->acc.bits == 0 || a_bad || j->b_nonfinite[n])
                c[l] = single_dot(j, m, n, 0);
            float r = j->alpha * c[l];
            crow[n] = j->beta == 0.0f ? r : r + j->beta * crow[n];
        }
    }
}

/* Packs B into panels of 8 rows, K-major ([K][8]), rows past B's end zero with scale 1. */
static void pack_panels(struct gemm_job *j)
{
    const struct tr_fp8_mat *B = j->B;
    int K = B->K;
    j->panels = (B->rows + PANEL - 1) / PANEL;
    size_t np = j->panels > 0 ? (size_t)j->panels : 1;
    j->bp = tm_xcalloc(np * (size_t)(K > 0 ? K : 1) * PANEL, sizeof(float));
    j->bs = tm_xmalloc(np * (size_t)(B->kt > 0 ? B->kt : 1) * PANEL * sizeof(float));
    for (int q = 0; q < j->panels; q++)
        for (int l = 0; l < PANEL; l++) {
            int n = q * PANEL + l;
            for (int t = 0; t < B->kt; t++)
                j->bs[((size_t)q * B->kt + t) * PANEL + l] = n < B->rows ? scale_of(B, n, t) : 1.0f;
            if (n >= B->rows)
                continue;
            for (int k = 0; k < K; k++)
                j->bp[((size_t)q * K + k) * PANEL + l] = B->val[(size_t)n * K + k];
        }
}

int tr_fp8_gemm(float *C, int ldc, const struct tr_fp8_mat *A, const struct tr_fp8_mat *B,
                float alpha, float beta, const struct tr_fp8_accum *acc, int threads)
{
    int p = acc->promote;
    if (A->K != B->K || acc->bits < 0 || acc->bits > 24 ||
        (p != 0 && p != 32 && p != 64 && p != 128) || (p == 0 && A->K > TR_FP8_TILE) ||
        ldc < (B->rows > 1 ? B->rows : 1)) {
        tm_log_error("fp8 gemm: A %d x %d, B %d x %d, ldc %d, accumulation bits %d promote %d: "
                     "unsupported",
                     A->rows, A->K, B->rows, B->K, ldc, acc->bits, p);
        return TM_ERR_USAGE;
    }
    struct gemm_job j = {
        .C = C, .ldc = ldc, .A = A, .B = B, .alpha = alpha, .beta = beta, .acc = *acc};
    j.b_nonfinite = tm_xmalloc(B->rows > 0 ? (size_t)B->rows : 1);
    for (int n = 0; n < B->rows; n++)
        j.b_nonfinite[n] = (unsigned char)nonfinite(B->val + (size_t)n * B->K, B->K);
    pack_panels(&j);
    if ((double)A->rows * B->rows * A->K < (double)(1 << 18))
        threads = 1;
    tr_parallel_for(threads, A->rows > 0 ? (size_t)A->rows : 0, gemm_row, &j);
    free(j.b_nonfinite);
    free(j.bp);
    free(j.bs);
    return TM_OK;
}
