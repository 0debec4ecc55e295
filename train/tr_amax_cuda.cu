/* tr_amax_cuda: CUDA device detection and the per-tile max-abs kernel (FP8 activation scaling).
 *
 * One warp reduces one 1x128 tile: each lane reads TR_AMAX_TILE / 32 floats with coalesced
 * loads, then the warp combines them with xor shuffles. The reduction runs on the IEEE bit
 * patterns of |x| as unsigned integers: for non-negative floats the bit order equals the value
 * order, and every NaN pattern sorts above +Inf, so an integer max is exact and makes NaN
 * propagate, which fmaxf() would not (it returns the non-NaN operand). */
#include <cuda_runtime.h>

#include "tr_cuda.cuh"

#include <stddef.h>
#include <stdint.h>

#include "train.h"
#include "tr_internal.h"

/* core/ headers are plain C without C++ guards. */
extern "C" {
#include "tm_err.h"
#include "tm_log.h"
}

namespace
{

constexpr unsigned kWarpSize = 32;
constexpr unsigned kFullMask = 0xffffffffu;
constexpr unsigned kAbsMask = 0x7fffffffu; /* clears the IEEE-754 sign bit */
constexpr unsigned kLoadsPerLane = TR_AMAX_TILE / kWarpSize;
static_assert(TR_AMAX_TILE % kWarpSize == 0, "a tile must split evenly across a warp");

/* 8 warps (256 threads) per block is a common occupancy sweet spot for a memory-bound kernel
 * with no shared memory; the tile count per block follows from it. */
constexpr unsigned kWarpsPerBlock = 8;
constexpr unsigned kThreadsPerBlock = kWarpsPerBlock * kWarpSize;
/* Enough blocks to fill any current GPU many times over; larger inputs are covered by the
 * grid-stride loop rather than by a bigger grid. */
constexpr size_t kMaxBlocks = 65536;

__global__ void tile_amax_kernel(const float *__restrict__ x, size_t cols, size_t tiles_per_row,
                                 size_t n_tiles, float *__restrict__ amax)
{
    const unsigned lane = threadIdx.x % kWarpSize;
    const size_t stride = (size_t)gridDim.x * kWarpsPerBlock;

    /* `tile` is the same for every lane of a warp, so the loop and the full-mask shuffles below
     * are warp-uniform. */
    for (size_t tile = (size_t)blockIdx.x * kWarpsPerBlock + threadIdx.x / kWarpSize;
         tile < n_tiles; tile += stride) {
        const size_t row = tile / tiles_per_row;
        const size_t begin = (tile % tiles_per_row) * TR_AMAX_TILE;
        const size_t width = cols - begin < TR_AMAX_TILE ? cols - begin : TR_AMAX_TILE;
        const float *p = x + row * cols + begin;

        unsigned m = 0; /* bits of +0.0f */
        for (unsigned k = 0; k < kLoadsPerLane; k++) {
            const size_t c = lane + k * kWarpSize;
            if (c < width)
                m = max(m, __float_as_uint(__ldg(p + c)) & kAbsMask);
        }
        for (unsigned offset = kWarpSize / 2; offset > 0; offset /= 2)
            m = max(m, __shfl_xor_sync(kFullMask, m, offset));
        if (lane == 0)
            amax[tile] = __uint_as_float(m);
    }
}

int cuda_fail(cudaError_t e, const char *call, size_t rows, size_t cols)
{
    tm_log_error("tile amax (cuda): %zu x %zu: %s failed: %s (%s)", rows, cols, call,
                 cudaGetErrorName(e), cudaGetErrorString(e));
    return tr_cuda_errcode(e);
}

/* cudaSuccess when a device exists and this build's kernels have an image it can run. Probing a
 * real kernel catches a device older than the compiled architectures, which a bare device
 * count would report as usable. */
cudaError_t gpu_probe(void)
{
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e == cudaSuccess && count == 0)
        e = cudaErrorNoDevice;
    if (e == cudaSuccess) {
        cudaFuncAttributes attr;
        e = cudaFuncGetAttributes(&attr, tile_amax_kernel);
    }
    /* These errors are not sticky; clear them so a later unrelated check does not see them. */
    (void)cudaGetLastError();
    return e;
}

} // namespace

int tr_gpu_available(void)
{
    cudaError_t e = gpu_probe();
    if (e != cudaSuccess) {
        tm_log_debug("gpu: no usable CUDA device: %s (%s)", cudaGetErrorName(e),
                     cudaGetErrorString(e));
        return 0;
    }
    return 1;
}

int tr_tile_amax_cuda(const float *x, size_t rows, size_t cols, float *amax)
{
    float *d_x = NULL;
    float *d_amax = NULL;
    size_t n_elems = 0;
    size_t n_tiles = 0;
    size_t blocks = 0;
    cudaError_t e = cudaSuccess;
    int rc = TM_OK;

    e = gpu_probe();
    if (e != cudaSuccess)
        return cuda_fail(e, "device probe", rows, cols);
    rc = tr_tile_amax_check("tile amax (cuda)", x, rows, cols, amax, &n_elems, &n_tiles);
    if (rc != TM_OK || n_tiles == 0)
        return rc;

    e = cudaMalloc((void **)&d_x, n_elems * sizeof(float));
    if (e != cudaSuccess) {
        rc = cuda_fail(e, "cudaMalloc(x)", rows, cols);
        goto out;
    }
    e = cudaMalloc((void **)&d_amax, n_tiles * sizeof(float));
    if (e != cudaSuccess) {
        rc = cuda_fail(e, "cudaMalloc(amax)", rows, cols);
        goto out_x;
    }
    e = cudaMemcpy(d_x, x, n_elems * sizeof(float), cudaMemcpyHostToDevice);
    if (e != cudaSuccess) {
        rc = cuda_fail(e, "cudaMemcpy(x)", rows, cols);
        goto out_amax;
    }

    blocks = (n_tiles + kWarpsPerBlock - 1) / kWarpsPerBlock;
    if (blocks > kMaxBlocks)
        blocks = kMaxBlocks;
    tile_amax_kernel<<<(unsigned)blocks, kThreadsPerBlock>>>(d_x, cols, tr_tile_amax_tiles(cols),
                                                             n_tiles, d_amax);
    e = cudaGetLastError();
    if (e != cudaSuccess) {
        rc = cuda_fail(e, "kernel launch", rows, cols);
        goto out_amax;
    }
    /* A blocking copy on the default stream also waits for the kernel and reports its faults. */
    e = cudaMemcpy(amax, d_amax, n_tiles * sizeof(float), cudaMemcpyDeviceToHost);
    if (e != cudaSuccess) {
        rc = cuda_fail(e, "kernel or cudaMemcpy(amax)", rows, cols);
        goto out_amax;
    }

out_amax:
    cudaFree(d_amax);
out_x:
    cudaFree(d_x);
out:
    return rc;
}
