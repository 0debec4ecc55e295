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

/* ---- The rank map (tok_enc_ranks.c) ----------------------------------------------------------
 * bytes -> rank for the BPE's questions: single bytes and pairs in direct tables, tokens of 3 to
 * TOK_RANK_KEY_MAX bytes inline in an open-addressing table, longer ones through the
 * vocabulary. Immutable once built and shared by reference between an encoder and its clones
 * (any thread may read it); about 8 MiB for o200k. */
#define TOK_RANK_KEY_MAX 8

struct tok_rank_slot {
    uint64_t key; /* the token's bytes, tok_rank_key() */
    uint32_t rank;
    uint32_t len; /* 0: empty */
};

struct tok_rankmap {
    _Atomic int refs;
    uint32_t byte[256];
    uint32_t pair[65536]; /* [b0 << 8 | b1] */
    struct tok_rank_slot *slots;
    size_t mask;
    unsigned shift; /* 64 - log2(number of slots) */
    const struct tok_vocab *vocab;
};

/* Builds the map of `v` (borrowed: it must outlive the map) with one reference. Errors:
 * TM_ERR_NOMEM (logged). */
int tok_rankmap_new(const struct tok_vocab *v, struct tok_rankmap **out);
/* Adds a reference; returns m. Thread-safe. */
struct tok_rankmap *tok_rankmap_ref(struct tok_rankmap *m);
/* Drops a reference, freeing the map with the last one. NULL is ignored. Thread-safe. */
void tok_rankmap_unref(struct tok_rankmap *m);

static inline uint32_t tok_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* p[0..n) as a number, 3 <= n <= 8: two overlapping 4-byte loads (n >= 4), so no loop. The
 * length is compared apart from the key. */
static inline uint64_t tok_rank_key(const unsigned char *p, size_t n)
{
    if (n < 4)
        return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16;
    return (uint64_t)tok_le32(p) | (uint64_t)tok_le32(p + n - 4) << (8 * (n - 4));
}

static inline size_t tok_rank_slot(uint64_t key, size_t n, unsigned shift)
{
    return (size_t)(((key ^ ((uint64_t)n << 56)) * 0x9E3779B97F4A7C15ull) >> shift);
}

/* The rank of p[0..n), or TOK_NO_RANK. */
static inline uint32_t tok_rankmap_get(const struct tok_rankmap *m, const unsigned char *p,
                                       size_t n)
{
    if (n == 2)
        return m->pair[p[0] << 8 | p[1]];
    if (n > TOK_RANK_KEY_MAX)
        return tok_vocab_rank_or_none(m->vocab, p, n);
    if (n < 2)
        return n ? m->byte[p[0]] : TOK_NO_RANK;
    uint64_t k = tok_rank_key(p, n);
    for (size_t i = tok_rank_slot(k, n, m->shift);; i = (i + 1) & m->mask) {
        const struct tok_rank_slot *s = &m->slots[i];
        if (s->len == n && s->key == k)
            return s->rank;
        if (!s->len)
            return TOK_NO_RANK;
    }
}

/* ---- The byte-pair merge (tok_bpe.c) --------------------------------------------------------- */

/* The merge's scratch space, reused across pieces. */
struct tok_bpe_scratch {
    void *mem;
    size_t cap; /* pieces up to this many bytes fit */
};

void tok_bpe_scratch_release(struct tok_bpe_scratch *s);
/* tok_bpe_encode_piece() with a reused scratch and, when `m` is not NULL, the rank map of `v`
 * for the questions. */
int tok_bpe_encode_with(const struct tok_vocab *v, const struct tok_rankmap *m,
                        const unsigned char *piece, size_t len, struct tok_bpe_scratch *s,
                        struct tok_ids *out);

/* Makes room for k more ids in `ids` (TM_ERR_TOOBIG past its cap, logged), so a caller can
 * write ids->v[ids->n .. ids->n + k) and add k to ids->n. */
int tok_ids_reserve(struct tok_ids *ids, size_t k);

/* The end of the pre-token that pattern `pat` matches at text[off] (off < len), found without
 * PCRE2; 0 when a byte >= 0x80 could change the match (ask PCRE2 then). The subject is
 * text[0..len): its end is what `\z` and the look-aheads see. Equal to PCRE2's match wherever
 * it is not 0. Thread-safe (pure). */
size_t tok_scan_ascii(enum tok_pattern pat, const unsigned char *text, size_t len, size_t off);

/* Calls fn(ctx, start, end) for every pre-token of text[0..len) in order, treating special
 * token texts as text, with the ASCII scanner and PCRE2 (use_scan) or PCRE2 alone; stops at the
 * first non-zero return and returns it. For tests. */
typedef int (*tok_piece_fn)(void *ctx, size_t start, size_t end);
int tok_pretokenize(struct tok_encoder *e, const unsigned char *text, size_t len, int use_scan,
                    tok_piece_fn fn, void *ctx);

/* The PCRE2 source of an encoding's pattern, as compiled (for tests and diagnostics). */
const char *tok_pattern_source(enum tok_pattern pat);

/* The offset of the first invalid UTF-8 sequence in s[0..len) (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF), or len when all of it is valid. */
size_t tok_utf8_invalid_at(const unsigned char *s, size_t len);

/* The i-th special token of the published encoding `pat` (tiktoken_ext/openai_public.py):
 * 1 with *text (static) and *id set, 0 past the last. */
int tok_builtin_special(enum tok_pattern pat, size_t i, const char **text, uint32_t *id);

/* ---- The compiled pattern of an encoding (tok_pattern.c) ---------------------------------- */

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

/* A pattern compiled with PCRE2 (UTF, UCP, the JIT when available) and what matching it needs.
 * PCRE2's default match limit (10 million) is reached by one long run of whitespace, which
 * `\s+(?!\S)` and `\s*[\r\n]` scan and back off once per match; the patterns do linear work
 * per match, so the limit guards nothing and is lifted. The JIT stack is only used for nested
 * backtracking, which these patterns do not grow with input; 1 MiB is ample. Caller-owned
 * storage; one per thread (the match data is scratch). */
struct tok_matcher {
    pcre2_code *code;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit_stack;
};

/* Compiles pattern `pat`; `who` prefixes log messages ("tokenize", "train-vocab"). TM_OK,
 * TM_ERR_USAGE (unknown pattern), TM_ERR_INTERNAL (PCRE2 refused it, logged), TM_ERR_NOMEM.
 * On error *m is released. */
int tok_matcher_init(struct tok_matcher *m, enum tok_pattern pat, const char *who);
void tok_matcher_release(struct tok_matcher *m);

#endif
