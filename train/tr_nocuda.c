/* tr_nocuda: the CUDA entry points for builds without CUDA (compiled only when TM_HAVE_CUDA is
 * off), so callers link the same symbols in every configuration and decide at run time. */
#include "train.h"
#include "tr_fp8.h"

#include "tm_err.h"
#include "tm_log.h"

int tr_gpu_available(void)
{
    tm_log_debug("gpu: this build has no CUDA support");
    return 0;
}

int tr_tile_amax_cuda(const float *x, size_t rows, size_t cols, float *amax)
{
    (void)x;
    (void)amax;
    tm_log_error("tile amax (cuda): %zu x %zu: this build has no CUDA support", rows, cols);
    return TM_ERR_UNSUPPORTED;
}

int tr_fp8_from_float_cuda(const float *x, size_t n, int fmt, uint8_t *q)
{
    (void)x;
    (void)q;
    tm_log_error("fp8 convert (cuda): %zu values, format %d: this build has no CUDA support", n,
                 fmt);
    return TM_ERR_UNSUPPORTED;
}
