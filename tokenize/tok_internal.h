/* tok_internal.h: what the tokenize files share and tests may reach; not part of the contract
 * in tokenize.h. */
#ifndef TOK_INTERNAL_H
#define TOK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tokenize.h"

#define TOK_NO_RANK UINT32_MAX

/* The hash used by the rank map (XXH3 64-bit). */
uint64_t tok_hash(const void *bytes, size_t len);

/* The longest token in the vocabulary: a concatenation longer than this has no rank, so the
 * BPE skips hashing it. */
size_t tok_vocab_max_len(const struct tok_vocab *v);

/* tok_vocab_rank() returning TOK_NO_RANK instead of an error code, for the BPE's inner loop. */
uint32_t tok_vocab_rank_or_none(const struct tok_vocab *v, const unsigned char *bytes, size_t len);

/* The byte-pair merge over a caller-provided scratch, reused across pieces. */
struct tok_bpe_scratch {
    void *mem;
    size_t cap; /* pieces up to this many bytes fit */
};

void tok_bpe_scratch_release(struct tok_bpe_scratch *s);
int tok_bpe_encode_with(const struct tok_vocab *v, const unsigned char *piece, size_t len,
                        struct tok_bpe_scratch *s, struct tok_ids *out);

/* The PCRE2 source of an encoding's pattern, as compiled (for tests and diagnostics). */
const char *tok_pattern_source(enum tok_pattern pat);

#endif
