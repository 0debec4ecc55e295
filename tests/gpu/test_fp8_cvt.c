/* GPU test: tr_fp8_from_float() (the C emulation) against the device's own conversion,
 * __nv_cvt_float_to_fp8(x, __NV_SATFINITE, fmt) (tr_fp8_from_float_cuda()), for E4M3 and E5M2
 * over every one of the 2^32 float bit patterns: NaNs, infinities, subnormals and all rounding
 * boundaries included. Tolerance: none, the codes must be equal bit for bit.
 * Exits 77 (ctest "skipped") without a usable device, or when the device or this build's kernel
 * image lacks the hardware FP8 conversion (sm_89 or later). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tm_err.h"
#include "tr_fp8.h"
#include "train.h"

#define SKIP_EXIT    77                /* ctest SKIP_RETURN_CODE, see tests/CMakeLists.txt */
#define CHUNK        ((size_t)1 << 26) /* 256 MiB of floats per device call */
#define ALL_PATTERNS ((uint64_t)1 << 32)
#define MAX_PRINTED  8 /* mismatches printed per format */

static const struct {
    int fmt;
    const char *name;
} formats[] = {
    {TR_FP8_E4M3, "E4M3"},
    {TR_FP8_E5M2, "E5M2"},
};
#define N_FORMATS (sizeof formats / sizeof formats[0])

int main(void)
{
    float *x = NULL;
    uint8_t *q = NULL;
    uint64_t mismatches[N_FORMATS] = {0};
    float one = 1.0f;
    uint8_t probe = 0;
    int failed = 0;
    int rc;

    if (!tr_gpu_available()) {
        printf("skipped: no GPU\n");
        return SKIP_EXIT;
    }
    rc = tr_fp8_from_float_cuda(&one, 1, TR_FP8_E4M3, &probe);
    if (rc == TM_ERR_UNSUPPORTED) {
        printf("skipped: no hardware FP8 conversion (needs sm_89 or later, see the log)\n");
        return SKIP_EXIT;
    }
    if (rc != TM_OK) {
        fprintf(stderr, "probe: tr_fp8_from_float_cuda returned %d\n", rc);
        return EXIT_FAILURE;
    }

    x = malloc(CHUNK * sizeof(float));
    q = malloc(CHUNK);
    if (x == NULL || q == NULL) {
        fprintf(stderr, "out of host memory for %zu floats\n", CHUNK);
        failed = 1;
        goto out;
    }
    for (uint64_t base = 0; base < ALL_PATTERNS && !failed; base += CHUNK) {
        for (size_t i = 0; i < CHUNK; i++) {
            const uint32_t bits = (uint32_t)(base + i);
            memcpy(&x[i], &bits, sizeof bits);
        }
        for (size_t f = 0; f < N_FORMATS; f++) {
            rc = tr_fp8_from_float_cuda(x, CHUNK, formats[f].fmt, q);
            if (rc != TM_OK) {
                fprintf(stderr, "%s: chunk at 0x%08llx: tr_fp8_from_float_cuda returned %d\n",
                        formats[f].name, (unsigned long long)base, rc);
                failed = 1;
                break;
            }
            for (size_t i = 0; i < CHUNK; i++) {
                const uint8_t want = tr_fp8_from_float(x[i], formats[f].fmt);
                if (q[i] == want)
                    continue;
                if (mismatches[f]++ < MAX_PRINTED)
                    fprintf(stderr, "%s: x = %a (bits 0x%08llx): device 0x%02x, C 0x%02x\n",
                            formats[f].name, (double)x[i], (unsigned long long)(base + i), q[i],
                            want);
            }
        }
    }
    for (size_t f = 0; f < N_FORMATS && !failed; f++)
        printf("%s %s: %llu of %llu float bit patterns differ\n", mismatches[f] ? "FAIL" : "ok  ",
               formats[f].name, (unsigned long long)mismatches[f],
               (unsigned long long)ALL_PATTERNS);
    for (size_t f = 0; f < N_FORMATS; f++)
        failed |= mismatches[f] != 0;
out:
    free(q);
    free(x);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
