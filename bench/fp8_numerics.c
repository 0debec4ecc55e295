/* fp8_numerics.c: the error of a K-long FP8 dot product against K, with and without promotion
 * to FP32 every 128 elements (DeepSeek-V3, section 3.3.2), through the trainer's emulation
 * (train/tr_fp8.h). Not part of ctest; bench/fp8_study.sh builds and runs it.
 *
 * Build by hand against a build directory (paths from the repo root):
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Itrain -Icore bench/fp8_numerics.c build/train/libtm_train.a \
 *      build/tokenize/libtm_tokenize.a build/core/libtm_core.a \
 *      $(pkg-config --libs openblas lmdb libcjson libpcre2-8 libxxhash inih) -lm -lpthread \
 *      -o /tmp/fp8_numerics
 * Run: /tmp/fp8_numerics [REPS]   (default 64 vectors per K and distribution)
 *
 * For K = 128, 256, ..., 16384 and two distributions of the inputs (positive: uniform in
 * (0, 1), as after a ReLU-like activation, where every product adds up; normal: N(0, 1), where
 * they cancel), each vector is quantized to E4M3 with one scale (its max-abs / 448) and the
 * dot product computed by three accumulators: 14 bits promoted every 128 (DeepSeek-V3's
 * recipe), 14 bits never promoted (the whole K in the tensor core), and an ideal FP32
 * accumulator. The error is measured against the exact (double) dot product of the quantized
 * values, so quantization itself is not counted: relative to |exact| for the positive inputs,
 * relative to sum |a b| for the normal ones (whose exact sum can be near zero). Mean and max over
 * the vectors. Prints one JSON object. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "tr_fp8.h"

static uint64_t rng = 20261129;

static double uniform(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return ((double)(z >> 11) + 0.5) / 9007199254740992.0; /* (0, 1) */
}

static double normal(void)
{
    return sqrt(-2.0 * log(uniform())) * cos(6.283185307179586 * uniform());
}

/* Quantizes x[0..K) to E4M3 values (unscaled) in place with one scale, returned. */
static float quantize(float *x, int K)
{
    float amax = 0.0f;
    for (int i = 0; i < K; i++)
        amax = fmaxf(amax, fabsf(x[i]));
    float s = tr_fp8_scale(amax, TR_FP8_E4M3, 0);
    for (int i = 0; i < K; i++)
        x[i] = tr_fp8_to_float(tr_fp8_from_float(x[i] / s, TR_FP8_E4M3), TR_FP8_E4M3);
    return s;
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 64;
    if (reps < 1)
        reps = 1;
    static const char *const dist_names[2] = {"positive", "normal"};
    static const char *const acc_names[3] = {"promote128", "no_promotion", "ideal_fp32"};
    const struct tr_fp8_accum accs[3] = {{14, 128}, {14, 0}, {0, 0}};
    float *a = malloc(16384 * sizeof(float)), *b = malloc(16384 * sizeof(float));
    if (!a || !b)
        return 1;
    printf("{\"format\": \"e4m3\", \"accum_bits\": 14, \"reps\": %d, \"results\": [", reps);
    int first = 1;
    for (int dist = 0; dist < 2; dist++)
        for (int K = 128; K <= 16384; K *= 2) {
            double sum_err[3] = {0}, max_err[3] = {0};
            for (int r = 0; r < reps; r++) {
                for (int i = 0; i < K; i++) {
                    a[i] = (float)(dist == 0 ? uniform() : normal());
                    b[i] = (float)(dist == 0 ? uniform() : normal());
                }
                float sa = quantize(a, K), sb = quantize(b, K);
                double exact = 0.0, mag = 0.0;
                for (int i = 0; i < K; i++) {
                    exact += (double)a[i] * b[i];
                    mag += fabs((double)a[i] * b[i]);
                }
                double denom = dist == 0 ? fabs(exact) : mag;
                for (int c = 0; c < 3; c++) {
                    /* The scales apply to both sides alike; compare unscaled. */
                    double got = tr_fp8_dot(a, b, K, 1.0f, &accs[c]);
                    double e = fabs(got - exact) / denom;
                    sum_err[c] += e;
                    if (e > max_err[c])
                        max_err[c] = e;
                }
                (void)sa;
                (void)sb;
            }
            for (int c = 0; c < 3; c++) {
                printf("%s\n  {\"inputs\": \"%s\", \"K\": %d, \"accumulator\": \"%s\", "
                       "\"mean_rel_err\": %.4g, \"max_rel_err\": %.4g}",
                       first ? "" : ",", dist_names[dist], K, acc_names[c], sum_err[c] / reps,
                       max_err[c]);
                first = 0;
            }
        }
    printf("\n]}\n");
    free(a);
    free(b);
    return 0;
}
