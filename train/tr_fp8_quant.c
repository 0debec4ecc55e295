/* tr_fp8_quant: fine-grained scaling, 1 x 128 tiles and 128 x 128 blocks (see tr_fp8.h). */
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tm_err.h"
#include "tm_log.h"
#include "tm_mem.h"
#include "tr_fp8.h"
#include "tr_internal.h"

/* ---- decoding table -------------------------------------------------------------------------- */

static float decoded[2][256];
static pthread_once_t decoded_once = PTHREAD_ONCE_INIT;

static void build_decoded(void)
{
    for (int f = 0; f < 2; f++)
        for (int c = 0; c < 256; c++)
            decoded[f][c] = tr_fp8_to_float((uint8_t)c, f);
}

static const float *table_of(int fmt)
{
    pthread_once(&decoded_once, build_decoded);
    return decoded[fmt == TR_FP8_E5M2 ? 1 : 0];
}

/* ---- scales ---------------------------------------------------------------------------------- */

float tr_fp8_scale(float amax, int fmt, int pow2)
{
    if (!isfinite(amax))
        return NAN;
    if (amax == 0.0f)
        return 1.0f;
    float s = amax / tr_fp8_max(fmt);
    if (s < FLT_MIN) /* a tile of float subnormals: keep the scale normal (x / s stays finite) */
        s = FLT_MIN;
    if (pow2) {
        int e;
        float m = frexpf(s, &e); /* s = m 2^e, m in [0.5, 1) */
        s = m == 0.5f ? s : ldexpf(1.0f, e);
    }
    return s;
}

/* ---- matrices -------------------------------------------------------------------------------- */

static int tiles(int n)
{
    return (n + TR_FP8_TILE - 1) / TR_FP8_TILE;
}

int tr_fp8_mat_init(struct tr_fp8_mat *m, int rows, int K, int kind, int fmt)
{
    memset(m, 0, sizeof(*m));
    if (rows < 0 || K < 0 || (kind != TR_FP8_TILES && kind != TR_FP8_BLOCKS) ||
        (fmt != TR_FP8_E4M3 && fmt != TR_FP8_E5M2)) {
        tm_log_error("fp8: bad matrix %d x %d (kind %d, format %d)", rows, K, kind, fmt);
        return TM_ERR_USAGE;
    }
    size_t n, ns;
    int kt = tiles(K), sr = kind == TR_FP8_TILES ? rows : tiles(rows);
    if (tm_mul_overflow((size_t)rows, (size_t)K, &n) || n > SIZE_MAX / sizeof(float) ||
        tm_mul_overflow((size_t)sr, (size_t)kt, &ns) || ns > SIZE_MAX / sizeof(float)) {
        tm_log_error("fp8: a %d x %d matrix overflows size_t", rows, K);
        return TM_ERR_TOOBIG;
    }
    m->rows = rows;
    m->K = K;
    m->kind = kind;
    m->fmt = fmt;
    m->kt = kt;
    m->val = tm_xmalloc((n ? n : 1) * sizeof(float));
    m->scale = tm_xmalloc((ns ? ns : 1) * sizeof(float));
    return TM_OK;
}

void tr_fp8_mat_release(struct tr_fp8_mat *m)
{
    free(m->val);
    free(m->scale);
    memset(m, 0, sizeof(*m));
}

/* ---- quantization ---------------------------------------------------------------------------- */

struct quant_job {
    struct tr_fp8_mat *m;
    const float *X;
    int trans, ld, pow2;
    const float *table;
};

static float elem(const struct quant_job *j, int r, int k)
{
    return j->trans ? j->X[(size_t)k * j->ld + r] : j->X[(size_t)r * j->ld + k];
}

/* max |x| over a span, NaN-propagating (a NaN anywhere makes the result NaN). */
static float amax_span(float amax, float x)
{
    float a = fabsf(x);
    return (a > amax || isnan(a)) ? a : amax;
}

/* Quantizes rows r0..r1 of column tile t with one scale each (TILES) or one for all (BLOCKS). */
static void quant_rows(const struct quant_job *j, int r0, int r1, int t)
{
    struct tr_fp8_mat *m = j->m;
    int k0 = t * TR_FP8_TILE, k1 = k0 + TR_FP8_TILE < m->K ? k0 + TR_FP8_TILE : m->K;
    float buf[TR_FP8_TILE];
    uint8_t codes[TR_FP8_TILE];
    float block_scale = 0.0f;
    if (m->kind == TR_FP8_BLOCKS) {
        float amax = 0.0f;
        for (int r = r0; r < r1; r++)
            for (int k = k0; k < k1; k++)
                amax = amax_span(amax, elem(j, r, k));
        block_scale = tr_fp8_scale(amax, m->fmt, j->pow2);
        m->scale[(size_t)(r0 / TR_FP8_TILE) * m->kt + t] = block_scale;
    }
    for (int r = r0; r < r1; r++) {
        float amax = 0.0f;
        for (int k = k0; k < k1; k++) {
            buf[k - k0] = elem(j, r, k);
            amax = amax_span(amax, buf[k - k0]);
        }
        float s = block_scale;
        if (m->kind == TR_FP8_TILES) {
            s = tr_fp8_scale(amax, m->fmt, j->pow2);
            m->scale[(size_t)r * m->kt + t] = s;
        }
        tr_fp8_quantize_array(codes, buf, (size_t)(k1 - k0), s, m->fmt);
        float *v = m->val + (size_t)r * m->K + k0;
        for (int k = 0; k < k1 - k0; k++)
            v[k] = j->table[codes[k]];
    }
}

/* Piece i: TILES: one row (all its tiles); BLOCKS: one band of 128 rows. */
static void quant_piece(void *ctx, size_t i)
{
    const struct quant_job *j = ctx;
    const struct tr_fp8_mat *m = j->m;
    int r0 = m->kind == TR_FP8_TILES ? (int)i : (int)i * TR_FP8_TILE;
    int r1 = m->kind == TR_FP8_TILES ? r0 + 1 : r0 + TR_FP8_TILE;
    if (r1 > m->rows)
        r1 = m->rows;
    for (int t = 0; t < m->kt; t++)
        quant_rows(j, r0, r1, t);
}

void tr_fp8_quantize(struct tr_fp8_mat *m, const float *X, int trans, int ld, int pow2, int threads)
{
    struct quant_job j = {m, X, trans, ld, pow2, table_of(m->fmt)};
    size_t pieces = m->kind == TR_FP8_TILES ? (size_t)m->rows : (size_t)tiles(m->rows);
    if ((size_t)m->rows * (size_t)m->K < 65536)
        threads = 1;
    tr_parallel_for(threads, m->K > 0 ? pieces : 0, quant_piece, &j);
}

void tr_fp8_dequantize(float *out, int ld, const struct tr_fp8_mat *m)
{
    for (int r = 0; r < m->rows; r++)
        for (int k = 0; k < m->K; k++) {
            int t = k / TR_FP8_TILE;
            float s = m->kind == TR_FP8_TILES ? m->scale[(size_t)r * m->kt + t]
                                              : m->scale[(size_t)(r / TR_FP8_TILE) * m->kt + t];
            out[(size_t)r * ld + k] = m->val[(size_t)r * m->K + k] * s;
        }
}
