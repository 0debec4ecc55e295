/* tr_amax: C reference for the per-tile max-abs used by FP8 activation scaling. */
#include "train.h"
#include "tr_internal.h"

#include <math.h>
#include <stdint.h>

#include "tm_err.h"
#include "tm_log.h"

size_t tr_tile_amax_tiles(size_t cols)
{
    /* Written without cols + TILE - 1 so a cols near SIZE_MAX cannot wrap. */
    return cols / TR_AMAX_TILE + (cols % TR_AMAX_TILE != 0);
}

int tr_tile_amax_check(const char *what, const float *x, size_t rows, size_t cols,
                       const float *amax, size_t *n_elems, size_t *n_tiles)
{
    *n_elems = 0;
    *n_tiles = 0;
    if (rows == 0 || cols == 0)
        return TM_OK;
    if (rows > SIZE_MAX / cols || rows * cols > SIZE_MAX / sizeof(float)) {
        tm_log_error("%s: %zu x %zu matrix overflows size_t", what, rows, cols);
        return TM_ERR_TOOBIG;
    }
    if (x == NULL || amax == NULL) {
        tm_log_error("%s: NULL %s for a %zu x %zu matrix", what, x == NULL ? "x" : "amax", rows,
                     cols);
        return TM_ERR_USAGE;
    }
    *n_elems = rows * cols;
    /* Cannot overflow: tiles <= cols, so rows * tiles <= rows * cols. */
    *n_tiles = rows * tr_tile_amax_tiles(cols);
    return TM_OK;
}

void tr_tile_amax_ref(const float *x, size_t rows, size_t cols, float *amax)
{
    size_t tiles = tr_tile_amax_tiles(cols);

    for (size_t r = 0; r < rows; r++) {
        const float *row = x + r * cols;
        for (size_t t = 0; t < tiles; t++) {
            size_t begin = t * TR_AMAX_TILE;
            size_t end = begin + TR_AMAX_TILE < cols ? begin + TR_AMAX_TILE : cols;
            float m = 0.0f;
            for (size_t c = begin; c < end; c++) {
                float a = fabsf(row[c]);
                /* NaN must win (see train.h); a plain `a > m` would skip it. */
                if (isnan(a)) {
                    m = a;
                    break;
                }
                if (a > m)
                    m = a;
            }
            amax[r * tiles + t] = m;
        }
    }
}
