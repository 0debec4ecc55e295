/* ddp_minhash: text normalization, shingles, MinHash signatures, LSH band keys and Jaccard
 * similarity for the dedup stage.
 *
 * Definitions (the contract both the fast and the reference code follow):
 *   - normalization (each step configurable): Unicode-aware case folding of Latin, Greek and
 *     Cyrillic letters (ASCII, Latin-1 Supplement, Latin Extended-A, Greek and Coptic, Cyrillic;
 *     other scripts unchanged), punctuation stripped (ASCII punctuation and the General
 *     Punctuation block U+2000..U+206F, plus U+00A1..U+00BF), whitespace runs collapsed to one
 *     space and trimmed. Invalid UTF-8 bytes are kept as they are.
 *   - shingles: word n-grams of the normalized text (words split on single spaces; a text with
 *     fewer than n words is one shingle of all its words; an empty text has no shingle), or
 *     character n-grams for code: every run of n consecutive code points (UTF-8 sequences; an
 *     invalid byte counts as one) of the normalized text, a shorter text being one shingle.
 *   - base hash: XXH3_64bits of the shingle's bytes (words joined by one space).
 *   - permutation i of nperm: with x32 = (uint32_t)(h ^ (h >> 32)) of the base hash h,
 *     p_i(x) = a_i * x32 + b_i (mod 2^32), a_i odd; a_i, b_i drawn from one splitmix64 state
 *     seeded with the configured seed: for i = 0, 1, ...: a_i = the high 32 bits of the next
 *     output with the low bit set, then b_i = the high 32 bits of the following one (so the
 *     first k permutations are the same whatever nperm). The signature's component i is the minimum
 * of p_i over all shingles (UINT32_MAX for a text without shingles). Computed shingle by shingle
 * with a running minimum (never a shingles x permutations matrix); AVX2 when the CPU has it
 * (checked at run time), a portable path otherwise, with identical results.
 *   - band keys: for band b of `bands` (rows `rows` each, bands * rows <= nperm), XXH3_64bits of
 *     the rows' uint32 values (little-endian) seeded with b, so equal rows in different bands
 *     give different keys.
 *   - exact hash: XXH3_128bits of the normalized text.
 * Threading: a struct ddp_params is immutable once made and may be shared; a struct ddp_work
 * is one thread's scratch. */
#ifndef DDP_MINHASH_H
#define DDP_MINHASH_H

#include <stddef.h>
#include <stdint.h>

#define DDP_MAX_PERM 1024

enum ddp_shingle_kind { DDP_SHINGLE_WORDS = 0, DDP_SHINGLE_CHARS = 1 };

struct ddp_norm {
    int casefold;    /* default 1 */
    int strip_punct; /* default 1 */
    int collapse_ws; /* default 1 */
};

struct ddp_params {
    struct ddp_norm norm;
    enum ddp_shingle_kind kind;                /* default words */
    unsigned n;                                /* shingle size: words (default 5) or code points */
    unsigned nperm;                            /* default 112 */
    unsigned bands, rows;                      /* default 14 x 8 */
    uint64_t seed;                             /* default 1 */
    uint32_t a[DDP_MAX_PERM], b[DDP_MAX_PERM]; /* filled by ddp_params_init */
};

/* Fills p with the defaults above. */
void ddp_params_default(struct ddp_params *p);
/* Validates (n >= 1, 1 <= nperm <= DDP_MAX_PERM, bands * rows <= nperm, bands >= 1, rows >= 1)
 * and draws the permutation coefficients from the seed. TM_OK or TM_ERR_USAGE (logged). */
int ddp_params_init(struct ddp_params *p);

/* Per-thread working memory. */
struct ddp_work;
struct ddp_work *ddp_work_new(void);
void ddp_work_free(struct ddp_work *w);

/* Normalizes text[0..n) into the work's buffer; returns it (valid until the next call on w) and
 * its length in *len. */
const char *ddp_normalize(struct ddp_work *w, const struct ddp_norm *norm, const char *text,
                          size_t n, size_t *len);
/* The exact-duplicate hash of text: XXH3-128 of its normalized form, as two uint64 (high, low). */
void ddp_exact_hash(struct ddp_work *w, const struct ddp_params *p, const char *text, size_t n,
                    uint64_t out[2]);
/* The signature sig[p->nperm] of text[0..n) (normalized here). Returns the number of shingles. */
size_t ddp_signature(struct ddp_work *w, const struct ddp_params *p, const char *text, size_t n,
                     uint32_t *sig);
/* ddp_signature, and also the exact hash (as ddp_exact_hash computes it) into exact[2] when not
 * NULL, normalizing the text once for both. */
size_t ddp_signature_exact(struct ddp_work *w, const struct ddp_params *p, const char *text,
                           size_t n, uint32_t *sig, uint64_t exact[2]);
/* The same, computed plainly (no SIMD, every shingle hashed and permuted in the most obvious
 * way): the reference the tests compare against. */
size_t ddp_signature_reference(const struct ddp_params *p, const char *text, size_t n,
                               uint32_t *sig);
/* Band keys keys[p->bands] of a signature. */
void ddp_band_keys(const struct ddp_params *p, const uint32_t *sig, uint64_t *keys);
/* Estimated Jaccard similarity: the fraction of equal components of two signatures. */
double ddp_jaccard_estimate(const struct ddp_params *p, const uint32_t *s1, const uint32_t *s2);
/* Exact Jaccard similarity of the shingle sets (by base hash) of two texts; 1 when both have no
 * shingle. */
double ddp_jaccard_exact(struct ddp_work *w, const struct ddp_params *p, const char *t1, size_t n1,
                         const char *t2, size_t n2);
/* Whether the fast (AVX2) path is in use on this CPU. */
int ddp_have_simd(void);

#endif
