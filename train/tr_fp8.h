/* tr_fp8: the FP8 numerics of the DeepSeek-V3 recipe (arXiv 2412.19437, section 3.3), emulated
 * exactly on the CPU: the E4M3 and E5M2 formats, fine-grained scaling (1x128 tiles for
 * activations and their gradients, 128x128 blocks for weights), and a GEMM that multiplies the
 * quantized operands with the limited accumulation precision of Hopper's tensor cores, promoted
 * to FP32 every 128 elements of K.
 *
 * Internal to train/ (not part of train.h); the GEMM layer (tr_gemm.c), the tests and the
 * benchmarks use it. Plain C, included from both the C and the CUDA translation units.
 * Conventions as in tr_ops.h: row-major, int dimensions, TM_OK or a negative tm_err code. Every
 * function is reentrant; the ones taking `threads` split their work as documented there. */
#ifndef TR_FP8_H
#define TR_FP8_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ==== Formats ============================================================================== */

/* The two FP8 formats of the OCP 8-bit floating point specification (and of Hopper):
 * E4M3: 1 sign, 4 exponent (bias 7), 3 mantissa bits; no infinity; S.1111.111 is NaN; largest
 *       finite 448 (S.1111.110), smallest normal 2^-6, smallest subnormal 2^-9.
 * E5M2: 1 sign, 5 exponent (bias 15), 2 mantissa bits; IEEE-like: S.11111.00 is infinity,
 *       S.11111.{01,10,11} NaN; largest finite 57344, smallest normal 2^-14, smallest
 *       subnormal 2^-16.
 * DeepSeek-V3 uses E4M3 for every tensor (forward and backward), relying on fine-grained
 * scaling for range; E5M2 is provided for comparison. */
enum tr_fp8_format {
    TR_FP8_E4M3 = 0,
    TR_FP8_E5M2 = 1,
};

#define TR_FP8_E4M3_MAX 448.0f
#define TR_FP8_E5M2_MAX 57344.0f

/* The largest finite value of a format (448 or 57344). */
float tr_fp8_max(int fmt);

/* x converted to FP8, bit for bit what CUDA's __nv_cvt_float_to_fp8(x, __NV_SATFINITE, fmt)
 * returns (the PTX cvt.rn.satfinite instruction on sm_89 and later):
 * - rounding to nearest, ties to the even code, on the exact value of x, through the subnormal
 *   range (a value at or below half the smallest subnormal becomes a zero of x's sign);
 * - saturation: any |x| beyond the largest finite value, infinities included, becomes the
 *   largest finite value with x's sign (0x7E / 0xFE for E4M3, 0x7B / 0xFB for E5M2);
 * - NaN (any sign or payload) becomes 0x7F in both formats.
 * fmt is an enum tr_fp8_format; any other value is treated as E4M3. */
uint8_t tr_fp8_from_float(float x, int fmt);

/* The value of an FP8 code, exact in float: every code of both formats is representable.
 * E4M3 0x7F / 0xFF and E5M2's NaN codes give a quiet NaN (with the code's sign); E5M2 0x7C /
 * 0xFC give +-Inf; 0x80 gives -0. */
float tr_fp8_to_float(uint8_t code, int fmt);

/* q[i] = tr_fp8_from_float(x[i] / scale) for i < n: the quantization of one tile (the division
 * is the IEEE float quotient, rounded once, as a GPU kernel computing x / s would; a zero scale
 * gives +-Inf, which saturates, and a NaN scale gives NaN codes). */
void tr_fp8_quantize_array(uint8_t *q, const float *x, size_t n, float scale, int fmt);

/* Runs CUDA's __nv_cvt_float_to_fp8(x[i], __NV_SATFINITE, fmt) on the device for i < n and
 * writes the codes to q (n bytes), so that a test can compare them with tr_fp8_from_float().
 * x and q are borrowed for the call; n 0 returns TM_OK. Returns TM_OK; TM_ERR_UNSUPPORTED when
 * built without CUDA, without a usable device, or when the device (or the kernel image it
 * would run) is older than sm_89, where the hardware conversion starts; TM_ERR_NOMEM /
 * TM_ERR_INTERNAL for CUDA failures (logged). */
int tr_fp8_from_float_cuda(const float *x, size_t n, int fmt, uint8_t *q);

/* ==== Fine-grained scaling ================================================================= */

/* The tile length along K, and the side of a weight block (DeepSeek-V3: 128). */
#define TR_FP8_TILE 128

/* How a matrix is scaled (DeepSeek-V3, section 3.3.2, figure 7a). */
enum tr_fp8_kind {
    TR_FP8_TILES = 0,  /* one scale per 1 x 128 tile along K: activations and their gradients */
    TR_FP8_BLOCKS = 1, /* one scale per 128 x 128 block: weights */
};

/* The scale of a tile whose max-abs is amax: amax / tr_fp8_max(fmt) (the quotient rounded once),
 * so that the tile's largest value maps to the format's largest finite value; with pow2, the
 * smallest power of two at or above that (scaling by it is exact, at the cost of up to one bit
 * of range). A quotient below FLT_MIN (a tile of float subnormals) is raised to FLT_MIN.
 * amax 0 gives 1 (a tile of zeros quantizes to zeros under any scale); a NaN or
 * infinite amax gives NaN, so the tile dequantizes to NaN and the divergence shows. */
float tr_fp8_scale(float amax, int fmt, int pow2);

/* A quantized matrix of rows x K, K contiguous (the layout Hopper's FP8 GEMM reads both operands
 * in). The codes are kept decoded: val holds each element's FP8 value as a float (exact: every
 * FP8 value is a float), unscaled; the element's real value is val * its tile's scale. */
struct tr_fp8_mat {
    int rows, K;
    int kind;     /* enum tr_fp8_kind */
    int fmt;      /* enum tr_fp8_format */
    int kt;       /* tiles along K: ceil(K / TR_FP8_TILE) */
    float *val;   /* [rows, K], owned */
    float *scale; /* TILES: [rows, kt]; BLOCKS: [ceil(rows / TR_FP8_TILE), kt]; owned */
};

/* Allocates a rows x K matrix of the kind and format (tm_xmalloc; contents unset). Returns
 * TM_OK, TM_ERR_USAGE for negative sizes or an unknown kind, TM_ERR_TOOBIG when the sizes
 * overflow. */
int tr_fp8_mat_init(struct tr_fp8_mat *m, int rows, int K, int kind, int fmt);

/* Frees the buffers; accepts a zeroed or released struct. */
void tr_fp8_mat_release(struct tr_fp8_mat *m);

/* Quantizes X into m (m's shape, kind and format): element (r, k) of the logical rows x K matrix
 * is X[r * ld + k] when trans is 0, X[k * ld + r] when trans is 1. trans 1 is how an operand is
 * quantized along its other axis: the 1 x 128 tiles of the logical matrix are 128 x 1 tiles of
 * the stored one, computed from the FP32 values, never by reusing a quantization along the
 * stored rows. Each tile (or block) gets tr_fp8_scale() of its own max-abs, and each element
 * the code of x / scale (tr_fp8_quantize_array()). Rows are split among `threads` workers; the
 * result does not depend on the count. */
void tr_fp8_quantize(struct tr_fp8_mat *m, const float *X, int trans, int ld, int pow2,
                     int threads);

/* out[r * ld + k] = m->val[r][k] * its scale: the values the quantized matrix stands for. */
void tr_fp8_dequantize(float *out, int ld, const struct tr_fp8_mat *m);

/* ==== Emulated FP8 GEMM ==================================================================== */

/* The K of one Hopper FP8 WGMMA instruction: the tensor core adds 32 products per step. */
#define TR_FP8_WGMMA_K 32

/* How products are accumulated (DeepSeek-V3, section 3.3.2, "Increasing Accumulation
 * Precision"). Model of the tensor core, per WGMMA step of 32 products: the accumulator and the
 * 32 exact products are aligned to the largest exponent among them, each is truncated (toward
 * zero) to `bits` significant bits of that exponent (bits below 2^(e - bits + 1) dropped, e the
 * largest exponent), and the truncated values are added exactly. DeepSeek-V3 measured about 14
 * bits on H800. Every `promote` elements of K the accumulator is promoted: multiplied by the
 * two operands' scales for that stretch of K and added into an FP32 accumulator (float
 * multiply, then float add, round to nearest), then cleared. */
struct tr_fp8_accum {
    int bits;    /* 1 .. 24 bits kept per WGMMA step; 0: no truncation (each product added in
                    float, in K order: an ideal FP32 accumulator) */
    int promote; /* K elements between promotions: 32, 64 or 128 (DeepSeek-V3: 128 = 4
                    WGMMAs); 0: never (the whole K in the limited accumulator) */
};

/* The accumulation DeepSeek-V3 trains with: 14 bits, promoted every 128 elements. */
#define TR_FP8_ACCUM_DEFAULT ((struct tr_fp8_accum){14, 128})

/* C = alpha * A B^T + beta * C: A is M x K, B is N x K (quantized, K contiguous: C[m][n] is the
 * dot product of row m of A and row n of B), C is M x N with leading dimension ldc (beta 0: C
 * not read). Each dot product runs through the accumulator model of acc, each promoted stretch
 * scaled by A's tile scale and B's tile (or block) scale covering it. Rows of C are split among
 * `threads` workers; every element is computed by one worker alone, so the result does not
 * depend on the count.
 * Returns TM_OK; TM_ERR_USAGE (logged) when the K differ, acc is out of range, or promote is 0
 * while K spans more than one tile (the scales change along K, so the accumulator must be
 * promoted at least once per tile). */
int tr_fp8_gemm(float *C, int ldc, const struct tr_fp8_mat *A, const struct tr_fp8_mat *B,
                float alpha, float beta, const struct tr_fp8_accum *acc, int threads);

/* The dot product of a and b (K values each, already on the FP8 grid of their format, unscaled)
 * through the accumulator model of acc, times scale (applied at each promotion, or once at the
 * end when promote is 0). For the study of accumulation error against K: with one scale the
 * promote-0 case is defined for any K. */
float tr_fp8_dot(const float *a, const float *b, int K, float scale,
                 const struct tr_fp8_accum *acc);

#ifdef __cplusplus
}
#endif

#endif
