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

/* Marks a hot loop function to be compiled twice, for AVX2 and for the baseline, the variant
 * chosen at load time by the CPU (GCC's target_clones, through an ifunc). The loops so marked
 * keep explicit per-lane accumulators and contract nothing (-std=c11 leaves FMA contraction
 * off), so both variants compute the same bits; the AVX2 one does twice the lanes at once. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
#define TR_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define TR_VECTOR_CLONES
#endif

/* For the helpers of a TR_VECTOR_CLONES function: inlined into each variant, so that they are
 * compiled for its target too (a called function would run the baseline code). */
#if defined(__GNUC__)
#define TR_INLINE static inline __attribute__((always_inline))
#else
#define TR_INLINE static inline
#endif

/* Runs fn(ctx, i) once for every i in [0, n), on up to `threads` workers (tm_run_threads) that
 * take the next i from a shared atomic counter, and returns when all are done. threads <= 1 (or
 * n <= 1) runs the loop on the calling thread in order. Which worker runs which i is not fixed,
 * so fn must write only what piece i owns; results that do not depend on the thread count come
 * from pieces cut by the data (never by `threads`) and combined in index order afterwards. */
void tr_parallel_for(int threads, size_t n, void (*fn)(void *ctx, size_t i), void *ctx);

#ifdef __cplusplus
}
#endif

#endif
