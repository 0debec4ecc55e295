/* tr_fp8_cuda: CUDA's own float -> FP8 conversion run on the device, so that tr_fp8_from_float()
 * (the C emulation, tr_fp8_cvt.c) can be checked against the hardware bit for bit.
 *
 * __nv_cvt_float_to_fp8(x, __NV_SATFINITE, fmt) compiles to the cvt.rn.satfinite instruction
 * only in device code built for sm_89 or later; an older image (this build also carries sm_80)
 * gets cuda_fp8.hpp's software fallback instead. A comparison with that fallback would not be a
 * check of the hardware, so the entry point refuses unless both the device and the kernel image
 * it would run are sm_89 or later. */
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include "tr_cuda.cuh"

#include <stddef.h>
#include <stdint.h>

#include "train.h"
#include "tr_fp8.h"

/* core/ headers are plain C without C++ guards. */
extern "C" {
#include "tm_err.h"
#include "tm_log.h"
}

namespace
{

/* The first compute capability (major * 10 + minor) with the FP8 conversion instruction
 * (PTX ISA: cvt with .e4m3x2/.e5m2x2 destinations requires sm_89). */
constexpr int kFp8MinArch = 89;

/* A memory-bound elementwise kernel: 256 threads per block and a grid capped well above what
 * fills any current GPU; the grid-stride loop covers larger inputs (as in tr_amax_cuda.cu). */
constexpr unsigned kThreadsPerBlock = 256;
constexpr size_t kMaxBlocks = 65536;

__global__ void fp8_cvt_kernel(const float *__restrict__ x, size_t n,
                               __nv_fp8_interpretation_t interp, uint8_t *__restrict__ q)
{
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        q[i] = __nv_cvt_float_to_fp8(__ldg(x + i), __NV_SATFINITE, interp);
}

int cuda_fail(cudaError_t e, const char *call, size_t n, int fmt)
{
    tm_log_error("fp8 convert (cuda): %zu values, format %d: %s failed: %s (%s)", n, fmt, call,
                 cudaGetErrorName(e), cudaGetErrorString(e));
    return tr_cuda_errcode(e);
}

/* TM_OK when the current device and the kernel image it would run both have the hardware
 * conversion; TM_ERR_UNSUPPORTED (logged) when either lacks it. */
int check_fp8_device(size_t n, int fmt)
{
    int dev = 0;
    cudaDeviceProp prop;
    cudaFuncAttributes attr;
    cudaError_t e = cudaSuccess;

    if (!tr_gpu_available()) {
        tm_log_error("fp8 convert (cuda): %zu values, format %d: no usable CUDA device", n, fmt);
        return TM_ERR_UNSUPPORTED;
    }
    e = cudaGetDevice(&dev);
    if (e != cudaSuccess)
        return cuda_fail(e, "cudaGetDevice", n, fmt);
    e = cudaGetDeviceProperties(&prop, dev);
    if (e != cudaSuccess)
        return cuda_fail(e, "cudaGetDeviceProperties", n, fmt);
    if (prop.major * 10 + prop.minor < kFp8MinArch) {
        tm_log_error("fp8 convert (cuda): %zu values, format %d: device %d (%s) is sm_%d%d; the "
                     "FP8 conversion needs sm_%d or later",
                     n, fmt, dev, prop.name, prop.major, prop.minor, kFp8MinArch);
        return TM_ERR_UNSUPPORTED;
    }
    e = cudaFuncGetAttributes(&attr, fp8_cvt_kernel);
    if (e != cudaSuccess)
        return cuda_fail(e, "cudaFuncGetAttributes", n, fmt);
    /* binaryVersion is the architecture of the image the device will run, JIT included. */
    if (attr.binaryVersion < kFp8MinArch) {
        tm_log_error("fp8 convert (cuda): %zu values, format %d: the kernel image for device %d "
                     "is sm_%d, which has no FP8 conversion instruction; rebuild with "
                     "TM_CUDA_ARCHS including 89 or later",
                     n, fmt, dev, attr.binaryVersion);
        return TM_ERR_UNSUPPORTED;
    }
    return TM_OK;
}

} // namespace

int tr_fp8_from_float_cuda(const float *x, size_t n, int fmt, uint8_t *q)
{
    /* As in tr_fp8_from_float(), any fmt other than E5M2 is E4M3. */
    const __nv_fp8_interpretation_t interp = fmt == TR_FP8_E5M2 ? __NV_E5M2 : __NV_E4M3;
    float *d_x = NULL;
    uint8_t *d_q = NULL;
    size_t blocks = 0;
    cudaError_t e = cudaSuccess;
    int rc = check_fp8_device(n, fmt);

    if (rc != TM_OK || n == 0)
        return rc;

    e = cudaMalloc((void **)&d_x, n * sizeof(float));
    if (e != cudaSuccess) {
        rc = cuda_fail(e, "cudaMalloc(x)", n, fmt);
        goto out;
    }
    e = cudaMalloc((void **)&d_q, n);
    if (e != cudaSuccess) {
        rc = cuda_fail(e, "cudaMalloc(q)", n, fmt);
        goto out_x;
    }
    e = cudaMemcpy(d_x, x, n * sizeof(float), cudaMemcpyHostToDevice);
    if (e != cudaSuccess) {
        rc = cuda_fail(e, "cudaMemcpy(x)", n, fmt);
        goto out_q;
    }

    blocks = (n + kThreadsPerBlock - 1) / kThreadsPerBlock;
    if (blocks > kMaxBlocks)
        blocks = kMaxBlocks;
    fp8_cvt_kernel<<<(unsigned)blocks, kThreadsPerBlock>>>(d_x, n, interp, d_q);
    e = cudaGetLastError();
    if (e != cudaSuccess) {
        rc = cuda_fail(e, "kernel launch", n, fmt);
        goto out_q;
    }
    /* A blocking copy on the default stream also waits for the kernel and reports its faults. */
    e = cudaMemcpy(q, d_q, n, cudaMemcpyDeviceToHost);
    if (e != cudaSuccess) {
        rc = cuda_fail(e, "kernel or cudaMemcpy(q)", n, fmt);
        goto out_q;
    }

out_q:
    cudaFree(d_q);
out_x:
    cudaFree(d_x);
out:
    return rc;
}
