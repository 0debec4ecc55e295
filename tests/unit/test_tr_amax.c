/* Unit tests for the C reference of the per-tile max-abs (train/tr_amax.c), against values
 * computed by hand. Runs everywhere; the CUDA kernel is compared with it in tests/gpu/. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "tm_err.h"
#include "train.h"

/* Fills x[i] with a small value whose magnitude never beats the planted maxima below. */
static void fill_small(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (i % 2 ? -0.25f : 0.5f) * (float)(i % 3);
}

static void test_tiles(void **state)
{
    (void)state;
    assert_int_equal(tr_tile_amax_tiles(0), 0);
    assert_int_equal(tr_tile_amax_tiles(1), 1);
    assert_int_equal(tr_tile_amax_tiles(127), 1);
    assert_int_equal(tr_tile_amax_tiles(128), 1);
    assert_int_equal(tr_tile_amax_tiles(129), 2);
    assert_int_equal(tr_tile_amax_tiles(300), 3);
    assert_true(tr_tile_amax_tiles(SIZE_MAX) == SIZE_MAX / 128 + 1);
}

/* One row of 300 columns: tiles [0,128), [128,256) and the partial [256,300). */
static void test_partial_last_tile(void **state)
{
    (void)state;
    float x[300];
    float amax[3] = {-1.0f, -1.0f, -1.0f};

    fill_small(x, 300);
    x[5] = -7.5f; /* a negative wins by magnitude */
    x[100] = 7.0f;
    x[128] = 3.0f;   /* first column of tile 1 */
    x[255] = -3.25f; /* last column of tile 1 */
    x[299] = -9.0f;  /* last real column of the partial tile */
    tr_tile_amax_ref(x, 1, 300, amax);
    assert_true(amax[0] == 7.5f);
    assert_true(amax[1] == 3.25f);
    assert_true(amax[2] == 9.0f);
}

/* Two rows: tiles never mix rows, and each row's partial tile stops at its own end. */
static void test_rows_do_not_mix(void **state)
{
    (void)state;
    enum { ROWS = 2, COLS = 130 };
    float x[ROWS * COLS] = {0};
    float amax[ROWS * 2];

    x[0 * COLS + 129] = -100.0f; /* row 0, partial tile */
    x[1 * COLS + 0] = 2.0f;      /* row 1, first tile; directly after row 0's partial tile */
    x[1 * COLS + 128] = -0.5f;   /* row 1, partial tile */
    tr_tile_amax_ref(x, ROWS, COLS, amax);
    assert_true(amax[0] == 0.0f);
    assert_true(amax[1] == 100.0f);
    assert_true(amax[2] == 2.0f);
    assert_true(amax[3] == 0.5f);
}

static void test_all_negative_and_zero(void **state)
{
    (void)state;
    float neg[3] = {-1.0f, -4.0f, -2.0f};
    float zeros[4] = {-0.0f, 0.0f, -0.0f, 0.0f};
    float amax = -1.0f;

    tr_tile_amax_ref(neg, 1, 3, &amax);
    assert_true(amax == 4.0f);
    tr_tile_amax_ref(zeros, 1, 4, &amax);
    assert_true(amax == 0.0f);
    assert_false(signbit(amax)); /* |-0| is +0 */
}

static void test_inf_and_nan(void **state)
{
    (void)state;
    float x[256];
    float amax[2];

    fill_small(x, 256);
    x[3] = -INFINITY;
    x[130] = NAN;
    x[131] = INFINITY; /* NaN still wins over a later infinity */
    tr_tile_amax_ref(x, 1, 256, amax);
    assert_true(isinf(amax[0]) && amax[0] > 0);
    assert_true(isnan(amax[1]));
}

static void test_empty(void **state)
{
    (void)state;
    float amax = 42.0f;

    tr_tile_amax_ref(NULL, 0, 128, &amax);
    tr_tile_amax_ref(NULL, 5, 0, &amax);
    assert_true(amax == 42.0f); /* nothing written */
}

/* The CUDA entry point either works (GPU present) or says it is unsupported; never crashes. */
static void test_cuda_entry_without_gpu(void **state)
{
    (void)state;
    float x[2] = {1.0f, -2.0f};
    float amax = 0.0f;

    if (tr_gpu_available()) {
        assert_int_equal(tr_tile_amax_cuda(x, 1, 2, &amax), TM_OK);
        assert_true(amax == 2.0f);
    } else {
        assert_int_equal(tr_tile_amax_cuda(x, 1, 2, &amax), TM_ERR_UNSUPPORTED);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiles),
        cmocka_unit_test(test_partial_last_tile),
        cmocka_unit_test(test_rows_do_not_mix),
        cmocka_unit_test(test_all_negative_and_zero),
        cmocka_unit_test(test_inf_and_nan),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_cuda_entry_without_gpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
