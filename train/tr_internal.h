/* tr_internal: declarations shared by the train/ sources, not part of the public contract.
 * Plain C, included from both the C and the CUDA translation units. */
#ifndef TR_INTERNAL_H
#define TR_INTERNAL_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Validates the arguments of a tile-amax call and computes the element and tile counts, so the
 * C and CUDA paths reject the same inputs with the same errors. `what` names the caller in log
 * lines. Returns TM_OK, TM_ERR_USAGE (NULL array for a non-empty matrix) or TM_ERR_TOOBIG
 * (rows * cols, or the byte size of x, overflows size_t). */
int tr_tile_amax_check(const char *what, const float *x, size_t rows, size_t cols,
                       const float *amax, size_t *n_elems, size_t *n_tiles);

#ifdef __cplusplus
}
#endif

#endif
