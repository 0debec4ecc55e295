/* tok_train.h: byte-level BPE vocabulary training (internal to tokenize; the command is
 * `tokenmill tokenize train-vocab`, tok_train_cmd.c).
 *
 * Three parts, used in this order:
 *   struct tok_pretok    splits text into pre-tokens with one of the encodings' patterns
 *                        (PCRE2 UTF|UCP + JIT, matched as tok_encode.c matches them, with the
 *                        encoder's ASCII matcher tok_scan_ascii() first). One per thread.
 *   struct tok_wordtab   counts of unique pre-tokens ("words"): bytes -> weighted count, with a
 *                        cap on the number of words (pruning, below). One per thread; the
 *                        threads' tables are merged into one at the end.
 *   tok_train_bpe()      learns the merges from the weighted word list.
 *
 * The training rule (what the reference implementation in tests/unit/test_tok_train.c does in
 * the obvious O(words * merges) way, and tok_train_bpe() does with a pair index and a heap):
 *   - Token ids 0..255 are the single bytes, in byte order. Every word starts as its bytes.
 *   - A pair's count is the sum over words of (occurrences of the adjacent pair in the word)
 *     * (the word's count).
 *   - Each step picks the pair with the highest count; among equal counts, the smallest
 *     (left id, right id), compared as numbers, left first.
 *   - The new token's bytes are left's bytes followed by right's. When a token with those bytes
 *     already exists (two different pairs can spell the same bytes: "ab"+"c" and "a"+"bc"), the
 *     step merges into that token and adds no id ("aliased" merge; tiktoken files need unique
 *     bytes). Otherwise the new token gets the next id. (With left-to-right merging this seems
 *     not to happen at all: a throwaway search through tok_train_bpe() over 200000 random
 *     corpora on 1-3 letter alphabets, 7.9 million merges, found none. The rule stays so
 *     that unique token bytes never rest on that.)
 *   - The merge is applied in every word left to right without overlap ("aaa" -> "Z a").
 *   - Training stops when the vocabulary has `vocab_size` tokens, when no pair is left, or
 *     when the best pair's count is below `min_count`.
 * So rank == id == merge order, and every token >= 256 is the concatenation of two tokens of
 * lower id.
 *
 * Counts are integers: a document's pre-tokens count `multiplier` each, where the multiplier
 * is its domain's weight in thousandths (round(weight * 1000)) divided by the greatest common
 * divisor of the weights in use (so with equal weights every pre-token counts 1). Integral
 * counts keep the result exact and independent of summation order, hence of threads.
 *
 * Errors are tm_err codes, logged where they happen; nothing prints to stdout or exits. */
#ifndef TOK_TRAIN_H
#define TOK_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "tokenize.h"

struct tm_buf;
struct tm_progress;

/* The longest pre-token counted. Longer ones (runs of thousands of letters or spaces) are
 * skipped and counted in tok_pretok_stats.long_skipped: no published vocabulary has a token
 * over 128 bytes (o200k), and the cap keeps every trained token within
 * TOK_VOCAB_MAX_TOKEN_LEN, so the file loads with tok_vocab_load(). */
#define TOK_TRAIN_MAX_PIECE 256

/* Largest vocabulary (mergeable tokens, the 256 bytes included): what tok_vocab_load()
 * accepts. */
#define TOK_TRAIN_MAX_VOCAB TOK_VOCAB_MAX_TOKENS

/* Domain weights are kept in thousandths. */
#define TOK_TRAIN_WEIGHT_SCALE 1000

/* ---- Pre-token counts ------------------------------------------------------------------- */

/* One unique pre-token and its weighted count. `bytes` is borrowed (from the table that made
 * it, or from the caller). */
struct tok_word {
    const unsigned char *bytes;
    uint32_t len;
    uint64_t count;
};

struct tok_wordtab_stats {
    uint64_t prunes;       /* times the cap was reached */
    uint64_t pruned_words; /* unique words dropped by pruning */
    uint64_t pruned_count; /* the sum of their counts */
};

struct tok_wordtab;

/* A new empty table that holds at most `max_words` (>= 1) unique words. When an insertion
 * would pass the cap, the table is pruned: every word with count <= `prune_unit` (one
 * occurrence at the smallest multiplier in use: "seen once") is dropped; while that leaves the
 * table more than 3/4 full the threshold doubles and it prunes again. So memory is bounded by
 * the cap, not by the corpus, and frequent words survive; the words dropped are counted in the
 * stats. Pruning depends on the order words arrive in, so a pruned result may differ with the
 * thread count; one that never pruned does not. Free with tok_wordtab_free(). Not thread-safe:
 * one thread fills a table. */
struct tok_wordtab *tok_wordtab_new(size_t max_words, uint64_t prune_unit);
void tok_wordtab_free(struct tok_wordtab *t);

/* Changes the cap (e.g. raised before merging the threads' tables); prunes now when the
 * table holds more. */
void tok_wordtab_set_max(struct tok_wordtab *t, size_t max_words);

/* Adds `count` to word bytes[0..len) (len 1..TOK_TRAIN_MAX_PIECE), inserting it when new
 * (count 0 adds nothing). May prune (see tok_wordtab_new). TM_OK or TM_ERR_USAGE (len out of
 * range). */
int tok_wordtab_add(struct tok_wordtab *t, const unsigned char *bytes, size_t len, uint64_t count);

/* Adds every word of `src` to `dst` (src is unchanged). */
void tok_wordtab_merge(struct tok_wordtab *dst, const struct tok_wordtab *src);

/* Unique words held. */
size_t tok_wordtab_size(const struct tok_wordtab *t);

/* Pruning so far. */
const struct tok_wordtab_stats *tok_wordtab_get_stats(const struct tok_wordtab *t);

/* The words as a new array of tok_wordtab_size() entries (caller frees with free()), in no
 * particular order; their bytes are borrowed from the table until it is changed or freed. */
struct tok_word *tok_wordtab_words(const struct tok_wordtab *t, size_t *n);

/* ---- Pre-tokenization ------------------------------------------------------------------- */

struct tok_pretok_stats {
    uint64_t pieces;       /* pre-tokens counted */
    uint64_t long_skipped; /* pre-tokens over TOK_TRAIN_MAX_PIECE bytes, skipped */
    uint64_t scanned;      /* pre-tokens the ASCII matcher decided (the rest: PCRE2) */
};

struct tok_pretok;

/* Compiles the pattern of encoding `pat` (UTF | UCP, JIT, match limit lifted, a JIT stack: as
 * tok_encode.c). *out is freed with tok_pretok_free(). Errors: TM_ERR_USAGE (unknown pattern),
 * TM_ERR_INTERNAL (PCRE2 refused the pattern), TM_ERR_NOMEM. One per thread. */
int tok_pretok_new(enum tok_pattern pat, struct tok_pretok **out);
void tok_pretok_free(struct tok_pretok *p);

/* Whether to try the ASCII matcher (tok_scan_ascii, equal to PCRE2 wherever it decides) before
 * PCRE2; on by default. Off is for tests that compare the two. */
void tok_pretok_set_scan(struct tok_pretok *p, int on);

/* Splits text[0..len) into pre-tokens (the subject ends at `len`, so `\z` and look-aheads
 * see the end of the text, as in tiktoken) and adds each to `t` with `count`. Adds to *st.
 * Errors: TM_ERR_FORMAT (the text is not valid UTF-8: nothing is counted; the caller logs which
 * document), TM_ERR_INTERNAL (a PCRE2 matching error, logged). */
int tok_pretok_count(struct tok_pretok *p, const char *text, size_t len, uint64_t count,
                     struct tok_wordtab *t, struct tok_pretok_stats *st);

/* ---- Training --------------------------------------------------------------------------- */

struct tok_train_params {
    uint32_t vocab_size; /* tokens wanted, the 256 bytes included: 256..TOK_TRAIN_MAX_VOCAB */
    uint64_t min_count;  /* stop when the best pair's count is below this (0 or 1: never) */
};

/* One step: pair (left, right) became token `id`, which is new (id == the number of tokens
 * before the step) or, for an aliased merge, an existing token with the same bytes. */
struct tok_merge {
    uint32_t left, right, id;
    uint64_t count; /* the pair's count when chosen */
};

enum tok_train_stop {
    TOK_STOP_VOCAB = 0, /* reached vocab_size */
    TOK_STOP_NO_PAIRS,  /* every word is one token */
    TOK_STOP_MIN_COUNT, /* the best pair fell below min_count */
};

/* The result. Caller-owned storage: tok_trained_release(). */
struct tok_trained {
    uint32_t ntokens;     /* tokens: ids 0..ntokens-1 */
    unsigned char *bytes; /* every token's bytes, back to back */
    uint64_t *off;        /* [ntokens] token id -> offset into bytes */
    uint32_t *len;        /* [ntokens] token id -> length */
    struct tok_merge *merges;
    size_t nmerges;  /* steps taken, aliased ones included */
    size_t naliased; /* steps that added no token */
    enum tok_train_stop stop;
    uint64_t last_count;    /* count of the last pair merged (0 when none) */
    uint64_t symbols;       /* sum of word lengths at the start */
    uint64_t initial_pairs; /* distinct adjacent pairs at the start */
    uint64_t peak_pairs;    /* the most pairs with a count > 0 between two steps */
};

void tok_trained_release(struct tok_trained *r);

/* Learns merges from words[0..n) (duplicates allowed: their counts add up; words with count 0
 * are ignored; every word 1..TOK_VOCAB_MAX_TOKEN_LEN bytes) under the rule above, into *out
 * (which the function initializes). `prog`, when not NULL, gets one item per new token (its
 * thread only). Time: the initial pair count is linear in the total word length; each step costs
 * the length of the words containing the chosen pair plus heap operations. Memory: the words'
 * symbols, the pairs, and for each pair the words containing it. Errors: TM_ERR_USAGE (a
 * parameter or word length out of range, logged), TM_ERR_INTERNAL (pair counts found
 * inconsistent after a step: a bug, logged); on error *out is released. The words are
 * only read, so one word list may be trained on by several threads at once. */
int tok_train_bpe(const struct tok_word *words, size_t n, const struct tok_train_params *p,
                  struct tm_progress *prog, struct tok_trained *out);

/* Appends the .tiktoken rendering of the result (base64(token bytes) SP id LF, for ids
 * 0..ntokens-1) to `out`. TM_OK or TM_ERR_TOOBIG (out's cap). */
int tok_trained_write_tiktoken(const struct tok_trained *r, struct tm_buf *out);

#endif
