/* train: the model trainer's public interface (prefix tr_).
 *
 * The trainer has a plain C reference for every GPU kernel and a CUDA path that is tested
 * against it (STYLE.md rule 9). This header is plain C: callers never see CUDA types, and the
 * same declarations link whether or not the build has CUDA. Without CUDA, or on a machine with
 * no usable device, the *_cuda functions return TM_ERR_UNSUPPORTED and tr_gpu_available()
 * returns 0.
 *
 * Threading: the *_ref functions are pure and may run on any thread. The *_cuda functions use
 * the calling thread's current CUDA device and the default stream; they may be called from
 * several threads, but each call synchronizes before returning. */
#ifndef TRAIN_H
#define TRAIN_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" { /* the CUDA side is compiled as C++ */
#endif

/* Width of one scaling tile along the inner (column) dimension. DeepSeek-V3 (arXiv 2412.19437,
 * section 3.3.2) quantizes activations to FP8 with one scale per 1x128 tile, so the per-tile
 * max-abs below is the statistic that scale is computed from. */
#define TR_AMAX_TILE 128

/* Returns 1 when a CUDA device is present and can run this build's kernels, 0 otherwise
 * (built without CUDA, no driver, no device, or no kernel image for the device's
 * architecture). Never crashes or exits when the driver is missing; the reason for a 0 is
 * logged at debug level. */
int tr_gpu_available(void);

/* Number of tiles per row: ceil(cols / TR_AMAX_TILE); 0 when cols is 0. */
size_t tr_tile_amax_tiles(size_t cols);

/* Per-tile max-abs of a row-major matrix, C reference.
 *
 * x:    rows * cols floats, row-major; borrowed for the call. May be NULL when rows or cols is 0.
 * amax: receives rows * tr_tile_amax_tiles(cols) floats, row-major: amax[r * tiles + t] is
 *       max |x[r][c]| over c in [t * TR_AMAX_TILE, min((t + 1) * TR_AMAX_TILE, cols)). The last
 *       tile of a row is partial when cols is not a multiple of TR_AMAX_TILE; it covers only
 *       the real columns (no padding is read). Caller-owned.
 *
 * Values: the result is exact (max-abs involves no rounding). A tile of zeros gives +0. An
 * infinity gives +Inf. NaN propagates: a tile containing any NaN gives NaN (payload
 * unspecified), so a diverging activation surfaces as a NaN scale instead of being silently
 * ignored, as fmaxf() alone would do. */
void tr_tile_amax_ref(const float *x, size_t rows, size_t cols, float *amax);

/* Same result as tr_tile_amax_ref(), bit for bit except NaN payloads, computed on the GPU.
 *
 * x and amax are host arrays with the layout above; x is copied to the device, the kernel runs,
 * and amax is copied back before the call returns. Both are borrowed for the call. Device
 * memory is allocated and freed inside the call.
 *
 * Returns TM_OK; TM_ERR_USAGE when x or amax is NULL for a non-empty matrix;
 * TM_ERR_TOOBIG when rows * cols overflows size_t; TM_ERR_UNSUPPORTED when built without CUDA
 * or no usable device exists; TM_ERR_NOMEM when device memory runs out; TM_ERR_INTERNAL for any
 * other CUDA failure. Every error is logged with the shape and the CUDA error name. On error
 * the contents of amax are unspecified. */
int tr_tile_amax_cuda(const float *x, size_t rows, size_t cols, float *amax);

/* `tokenmill train` (tr_cmd.c). */
struct tm_command;
extern const struct tm_command tr_train_command;
/* `tokenmill generate` (tr_gen_cmd.c). */
extern const struct tm_command tr_generate_command;

#ifdef __cplusplus
}
#endif

#endif
