/* tokenize: tiktoken-compatible byte-level BPE (encoding and decoding).
 *
 * Three objects:
 *   struct tok_vocab    the mergeable ranks of a `.tiktoken` file (base64 token, space, rank per
 *                       line): bytes -> rank and rank -> bytes. Immutable once loaded; may be
 *                       shared read-only by any number of threads.
 *   struct tok_encoder  a vocabulary (borrowed) + one of the pre-tokenization patterns (r50k =
 *                       GPT-2, cl100k, o200k, compiled with PCRE2 UTF|UCP and the JIT) + that
 *                       encoding's special tokens + scratch space. One per thread.
 *   struct tok_decoder  a streaming decoder that holds back an incomplete UTF-8 sequence at the
 *                       end of what it has seen so far.
 * Token ids equal tiktoken's for the same file and encoding (tests/unit/test_tok_bpe.c compares
 * against golden ids produced by tiktoken 0.14). Every function returns TM_OK or a tm_err and
 * logs the detail; none prints to stdout or exits. */
#ifndef TOKENIZE_H
#define TOKENIZE_H

#include <stddef.h>
#include <stdint.h>

#include "tm_opt.h"

/* ---- Vocabulary ------------------------------------------------------------------------- */

/* Caps for loading (STYLE.md rule 6): the largest real file (o200k) has 199998 tokens of at
 * most 128 bytes; these leave room for bigger vocabularies without trusting a file blindly. */
#define TOK_VOCAB_MAX_TOKENS    (1u << 22)
#define TOK_VOCAB_MAX_TOKEN_LEN 1024
#define TOK_VOCAB_MAX_FILE      ((size_t)256 << 20)

struct tok_vocab;

/* Loads a .tiktoken file. Every line is `base64 SP rank`; ranks must be unique and below
 * TOK_VOCAB_MAX_TOKENS, tokens unique, non-empty and at most TOK_VOCAB_MAX_TOKEN_LEN bytes. On
 * success *out is a new vocabulary the caller frees with tok_vocab_free(). Errors: TM_ERR_IO
 * (open/read, errno logged), TM_ERR_FORMAT (bad line: logged as file:line and why),
 * TM_ERR_TOOBIG (a cap passed). */
int tok_vocab_load(const char *path, struct tok_vocab **out);

/* The same from memory; `name` is used in error messages only. `data` is borrowed for the call. */
int tok_vocab_load_mem(const char *name, const char *data, size_t len, struct tok_vocab **out);

void tok_vocab_free(struct tok_vocab *v);

/* Number of tokens in the file. */
size_t tok_vocab_count(const struct tok_vocab *v);

/* One past the highest rank in the file. */
uint32_t tok_vocab_end(const struct tok_vocab *v);

/* Stores the rank of token bytes[0..len) in *rank and returns TM_OK, or TM_ERR_NOTFOUND. */
int tok_vocab_rank(const struct tok_vocab *v, const void *bytes, size_t len, uint32_t *rank);

/* The bytes of token `rank` (borrowed until tok_vocab_free) with their length in *len, or NULL
 * when no token has that rank. */
const unsigned char *tok_vocab_bytes(const struct tok_vocab *v, uint32_t rank, size_t *len);

/* ---- Token id lists ----------------------------------------------------------------------- */

/* A growable array of ids with a cap on its length (0: no cap). Caller-owned storage. */
struct tok_ids {
    uint32_t *v;
    size_t n, cap, max;
};

void tok_ids_init(struct tok_ids *ids, size_t max);
void tok_ids_release(struct tok_ids *ids);
/* Appends one id; TM_ERR_TOOBIG past `max`. */
int tok_ids_push(struct tok_ids *ids, uint32_t id);

/* Byte-pair encodes one pre-token with tiktoken's rule (repeatedly merge the adjacent pair whose
 * concatenation has the lowest rank, leftmost on ties; a piece that is itself a token is that
 * token) in O(n log n) time. Appends the ids to `out`. Errors: TM_ERR_FORMAT when a single
 * byte of the piece has no rank (a vocabulary that is not byte-complete), TM_ERR_TOOBIG from
 * `out`. Thread-safe (allocates its own scratch). */
int tok_bpe_encode_piece(const struct tok_vocab *v, const unsigned char *piece, size_t len,
                         struct tok_ids *out);

/* ---- Encodings: patterns and special tokens ----------------------------------------------- */

enum tok_pattern {
    TOK_PAT_R50K = 0, /* GPT-2 / r50k_base */
    TOK_PAT_CL100K,
    TOK_PAT_O200K,
    TOK_PAT_COUNT,
};

/* NULL-terminated names in enum order ("r50k", "cl100k", "o200k"), for option tables. */
extern const char *const tok_pattern_names[];

/* The encoding whose .tiktoken file has `ntokens` lines (50256, 100256, 199998), or -1. */
int tok_pattern_guess(size_t ntokens);

struct tok_encoder;

/* Compiles the pattern of encoding `pat` and attaches its special tokens. `vocab` is borrowed
 * and must outlive the encoder. Initially no special token is allowed and all are disallowed
 * (tiktoken's encode() defaults). *out is freed with tok_encoder_free(). Errors: TM_ERR_USAGE
 * (unknown pattern), TM_ERR_INTERNAL (PCRE2 refused the pattern, logged). */
int tok_encoder_new(const struct tok_vocab *vocab, enum tok_pattern pat, struct tok_encoder **out);
void tok_encoder_free(struct tok_encoder *e);

/* Sets which special tokens are recognized in encoded text (`allowed`) and which make encoding
 * fail when their text occurs (`disallowed`). Each is NULL or "" (none), "all", or a
 * comma-separated list of special token texts; "all" for `disallowed` means every special not
 * allowed, as in tiktoken. Errors: TM_ERR_USAGE for a name that is not a special token of this
 * encoding (logged). */
int tok_encoder_set_special(struct tok_encoder *e, const char *allowed, const char *disallowed);

/* Encodes UTF-8 text: splits at allowed special tokens, pre-tokenizes each stretch between them
 * with the pattern and byte-pair encodes every piece; appends ids to `out`. Errors:
 * TM_ERR_FORMAT (invalid UTF-8, or a disallowed special token's text occurs: both logged with
 * the byte offset), TM_ERR_TOOBIG (from `out`), TM_ERR_INTERNAL (a PCRE2 matching error).
 * Time is O(n log n) in the text length, including long runs of one character. */
int tok_encode(struct tok_encoder *e, const char *text, size_t len, struct tok_ids *out);

/* Like tok_encode() but treats special token texts as ordinary text (tiktoken's
 * encode_ordinary). */
int tok_encode_ordinary(struct tok_encoder *e, const char *text, size_t len, struct tok_ids *out);

/* The bytes of id `id` (a mergeable token or a special token of the encoder), borrowed for the
 * encoder's lifetime, with the length in *len; NULL for an unknown id. */
const unsigned char *tok_token_bytes(const struct tok_encoder *e, uint32_t id, size_t *len);

/* ---- Decoding ------------------------------------------------------------------------------ */

/* Streaming decoder: feed ids one at a time; complete bytes go to `emit`, an incomplete UTF-8
 * sequence at the end is held back (at most 3 bytes) until more ids complete it or
 * tok_decoder_finish() flushes it. Bytes that can never be valid UTF-8 are passed through
 * unchanged, so concatenating all output reproduces the decoded bytes exactly.
 * Caller-owned storage; `enc` is borrowed. */
typedef int (*tok_emit_fn)(void *ctx, const unsigned char *bytes, size_t len);

struct tok_decoder {
    const struct tok_encoder *enc;
    tok_emit_fn emit;
    void *ctx;
    unsigned char held[4];
    size_t nheld;
};

void tok_decoder_init(struct tok_decoder *d, const struct tok_encoder *enc, tok_emit_fn emit,
                      void *ctx);
/* Errors: TM_ERR_NOTFOUND (unknown id, logged), or whatever `emit` returned (non-zero). */
int tok_decoder_push(struct tok_decoder *d, uint32_t id);
/* Emits what is held back, valid or not. */
int tok_decoder_finish(struct tok_decoder *d);

/* ---- Commands ------------------------------------------------------------------------------ */

extern const struct tm_command tok_encode_command;
extern const struct tm_command tok_decode_command;

#endif
