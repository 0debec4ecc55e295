/* tr_cuda: what the CUDA translation units of train/ share. CUDA C++ only. */
#ifndef TR_CUDA_CUH
#define TR_CUDA_CUH

#include <cuda_runtime.h>

#include <stddef.h>

/* core/ headers are plain C without C++ guards. */
extern "C" {
#include "tm_err.h"
}

/* The tm_err code for a failed CUDA call: out of memory, no usable device or kernel image
 * (TM_ERR_UNSUPPORTED, so callers fall back to the CPU), anything else TM_ERR_INTERNAL. A
 * table, so new mappings are one line (STYLE.md rule 7). Also clears the error state, so that
 * a non-sticky error does not surface again in a later, unrelated check. */
static inline int tr_cuda_errcode(cudaError_t e)
{
    static const struct {
        cudaError_t cuda;
        int tm;
    } map[] = {
        {cudaErrorMemoryAllocation, TM_ERR_NOMEM},
        {cudaErrorNoDevice, TM_ERR_UNSUPPORTED},
        {cudaErrorInsufficientDriver, TM_ERR_UNSUPPORTED},
        {cudaErrorInvalidDevice, TM_ERR_UNSUPPORTED},
        {cudaErrorNoKernelImageForDevice, TM_ERR_UNSUPPORTED},
        {cudaErrorUnsupportedPtxVersion, TM_ERR_UNSUPPORTED},
    };
    (void)cudaGetLastError();
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (map[i].cuda == e)
            return map[i].tm;
    return TM_ERR_INTERNAL;
}

#endif
