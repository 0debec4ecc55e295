/* GPU test: the CUDA per-tile max-abs against the C reference. Tolerance: exact equality (max-abs
 * does no arithmetic that rounds); NaN tiles must be NaN on both sides, payload aside.
 * Exits 77 (ctest "skipped") when no usable CUDA device exists. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tm_err.h"
#include "train.h"

#define SKIP_EXIT 77 /* ctest SKIP_RETURN_CODE, see tests/CMakeLists.txt */

struct shape {
    size_t rows;
    size_t cols;
    int specials; /* plant NaN, Inf and signed zeros */
};

/* Covers: a single element, a partial tile alone, exact tile multiples, a partial last tile
 * with several rows, rows=1 with many tiles, and sizes big enough to need many blocks and the
 * grid-stride loop (7168 is DeepSeek-V3's hidden size). */
static const struct shape shapes[] = {
    {1, 1, 0},       {1, 127, 0},     {1, 128, 0},      {1, 129, 0},
    {3, 300, 0},     {1, 100000, 0},  {17, 1000, 1},    {64, 7168, 1},
    {4096, 7168, 0}, {3000, 4100, 1}, {600000, 130, 0},
};

/* xorshift64*: a fixed-seed generator so a failure reproduces. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

/* Signed values over a wide exponent range, so tiles have distinct maxima in every position. */
static float rng_float(void)
{
    uint64_t r = rng_next();
    float mant = (float)(r >> 40) / (float)(1u << 24);
    int exp = (int)((r >> 8) % 40) - 20;
    float v = ldexpf(mant, exp);
    return (r & 1) ? -v : v;
}

static void fill(float *x, size_t n, int specials)
{
    for (size_t i = 0; i < n; i++)
        x[i] = rng_float();
    if (!specials)
        return;
    for (size_t i = 0; i < n; i += 977) {
        switch ((i / 977) % 4) {
        case 0:
            x[i] = NAN;
            break;
        case 1:
            x[i] = -INFINITY;
            break;
        case 2:
            x[i] = -0.0f;
            break;
        default:
            x[i] = -NAN;
            break;
        }
    }
}

static int same(float a, float b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return a == b;
}

static int check_shape(const struct shape *s)
{
    size_t n = s->rows * s->cols;
    size_t tiles = s->rows * tr_tile_amax_tiles(s->cols);
    float *x = malloc(n * sizeof(float));
    float *want = malloc(tiles * sizeof(float));
    float *got = malloc(tiles * sizeof(float));
    int failed = 0;
    int rc;

    if (x == NULL || want == NULL || got == NULL) {
        fprintf(stderr, "out of host memory for %zu x %zu\n", s->rows, s->cols);
        failed = 1;
        goto out;
    }
    fill(x, n, s->specials);
    /* A sentinel that no real result can equal, so unwritten entries are caught. */
    for (size_t i = 0; i < tiles; i++)
        got[i] = -1.0f;
    tr_tile_amax_ref(x, s->rows, s->cols, want);
    rc = tr_tile_amax_cuda(x, s->rows, s->cols, got);
    if (rc != TM_OK) {
        fprintf(stderr, "%zu x %zu: tr_tile_amax_cuda returned %d\n", s->rows, s->cols, rc);
        failed = 1;
        goto out;
    }
    for (size_t i = 0; i < tiles; i++) {
        if (!same(want[i], got[i])) {
            fprintf(stderr, "%zu x %zu: tile %zu: want %a, got %a\n", s->rows, s->cols, i,
                    (double)want[i], (double)got[i]);
            failed = 1;
            break;
        }
    }
    printf("%s %zu x %zu (%zu tiles)\n", failed ? "FAIL" : "ok  ", s->rows, s->cols, tiles);
out:
    free(got);
    free(want);
    free(x);
    return failed;
}

int main(void)
{
    int failed = 0;
    float dummy = 0.0f;

    if (!tr_gpu_available()) {
        printf("skipped: no GPU\n");
        return SKIP_EXIT;
    }
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        failed |= check_shape(&shapes[i]);
    /* An empty matrix is a successful no-op. */
    if (tr_tile_amax_cuda(NULL, 0, 128, &dummy) != TM_OK) {
        fprintf(stderr, "empty matrix: expected TM_OK\n");
        failed = 1;
    }
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
