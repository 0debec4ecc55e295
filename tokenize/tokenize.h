/* tokenize: tiktoken-compatible byte-level BPE (encoding, decoding, vocabulary training) and
 * the token shards the trainer reads.
 *
 * The encoder's objects:
 *   struct tok_vocab    the mergeable ranks of a `.tiktoken` file (base64 token, space, rank per
 *                       line): bytes -> rank and rank -> bytes. Immutable once loaded; may be
 *                       shared read-only by any number of threads.
 *   struct tok_encoder  a vocabulary (borrowed) + one of the pre-tokenization patterns (r50k =
 *                       GPT-2, cl100k, o200k, compiled with PCRE2 UTF|UCP and the JIT, with a
 *                       hand-written matcher for the pieces only ASCII decides) + that
 *                       encoding's special tokens + a rank map (about 8 MiB for o200k, shared
 *                       with the encoder's clones) + a 4 MiB cache of piece -> ids + scratch
 *                       space. One per thread; tok_batch runs several.
 *   struct tok_decoder  a streaming decoder that holds back an incomplete UTF-8 sequence at the
 *                       end of what it has seen so far.
 * Token ids equal tiktoken's for the same file and encoding (tests/unit/test_tok_bpe.c and
 * test_tok_unicode.c compare against golden ids produced by tiktoken 0.14, whose regex engine
 * has Unicode 16 tables: tok_pattern.c adds the code points Unicode 15 and 16 assigned, which
 * PCRE2's Unicode 14 tables lack). The corpus side (below): struct tok_tokenizer (a vocabulary
 * with its pattern, special tokens and identity hash), the shard writer, struct tok_shard and
 * struct tok_corpus (the reader the trainer and eval use). Vocabulary training is internal
 * (tok_train.h; `tokenmill tokenize train-vocab`). Every function returns TM_OK or a tm_err
 * and logs the detail; none prints to stdout or exits. */
#ifndef TOKENIZE_H
#define TOKENIZE_H

#include <stddef.h>
#include <stdint.h>

#include "tm_doc.h"
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

/* Compiles the pattern of encoding `pat` and attaches its special tokens (those whose id is
 * not a rank of `vocab`: a vocabulary trained by tokenmill may use them; see
 * tok_encoder_set_specials()). `vocab` is borrowed and must outlive the encoder. Initially no
 * special token is allowed and all are disallowed (tiktoken's encode() defaults). *out is freed
 * with tok_encoder_free(). An encoder holds about 4 MiB of cache and builds a rank map of the
 * vocabulary (8 MiB for o200k, a few ms); tok_encoder_clone() shares the map. Errors:
 * TM_ERR_USAGE (unknown pattern), TM_ERR_NOMEM, TM_ERR_INTERNAL (PCRE2 refused the pattern),
 * all logged. */
int tok_encoder_new(const struct tok_vocab *vocab, enum tok_pattern pat, struct tok_encoder **out);
void tok_encoder_free(struct tok_encoder *e);

/* Sets which special tokens are recognized in encoded text (`allowed`) and which make encoding
 * fail when their text occurs (`disallowed`). Each is NULL or "" (none), "all", or a
 * comma-separated list of special token texts; "all" for `disallowed` means every special not
 * allowed, as in tiktoken. Errors: TM_ERR_USAGE for a name that is not a special token of this
 * encoder (logged). */
int tok_encoder_set_special(struct tok_encoder *e, const char *allowed, const char *disallowed);

/* The most special tokens an encoder holds (tok_encoder_set_specials()); each needs one bit in
 * the allowed and disallowed sets. */
#define TOK_MAX_SPECIALS 64

/* Replaces the encoder's special tokens (initially those of its encoding, e.g. cl100k's five)
 * with texts[i] -> ids[i] for i < n; n == 0 leaves none. Meant for vocabularies trained by
 * tokenmill, whose <|endoftext|> id is the vocabulary size. Resets the allowed and disallowed
 * sets to tiktoken's defaults (none allowed, all disallowed), as tok_encoder_new() does.
 * The texts are copied (`texts` and `ids` are borrowed for the call only). Each text must be
 * non-empty valid UTF-8 of at most TOK_VOCAB_MAX_TOKEN_LEN bytes; texts and ids must be
 * unique, and no id may be a rank of the vocabulary (tiktoken refuses overlapping ids too).
 * Errors (logged, the encoder unchanged): TM_ERR_USAGE (a rule above broken, n over
 * TOK_MAX_SPECIALS). Not thread-safe with other calls on the same encoder. */
int tok_encoder_set_specials(struct tok_encoder *e, const char *const *texts, const uint32_t *ids,
                             size_t n);

/* Stores the id of special token `text` (NUL-terminated) of this encoder in *id and returns
 * TM_OK, or TM_ERR_NOTFOUND (not logged) when the encoder has no such special token. Whether the
 * token is allowed does not matter. Read-only: may be called from several threads at once. */
int tok_encoder_special_id(const struct tok_encoder *e, const char *text, uint32_t *id);

/* Encodes UTF-8 text: splits at allowed special tokens, pre-tokenizes each stretch between them
 * with the pattern and byte-pair encodes every piece; appends ids to `out`. Errors:
 * TM_ERR_FORMAT (invalid UTF-8, or a disallowed special token's text occurs: both logged with
 * the byte offset), TM_ERR_TOOBIG (from `out`), TM_ERR_INTERNAL (a PCRE2 matching error).
 * Time is O(n log n) in the text length, including long runs of one character. */
int tok_encode(struct tok_encoder *e, const char *text, size_t len, struct tok_ids *out);

/* Like tok_encode() but treats special token texts as ordinary text (tiktoken's
 * encode_ordinary). */
int tok_encode_ordinary(struct tok_encoder *e, const char *text, size_t len, struct tok_ids *out);

/* Makes a new encoder like `e`: the same vocabulary (borrowed), pattern, special tokens and
 * allowed/disallowed sets, and the same rank map (shared, read-only); its own scratch space
 * and cache, so it may run on another thread. Cheaper than tok_encoder_new() for the threads
 * of one job.
 * `e` is only read (not concurrently with a call that changes it). *out is freed with
 * tok_encoder_free(). Errors: as tok_encoder_new(). */
int tok_encoder_clone(const struct tok_encoder *e, struct tok_encoder **out);

/* The bytes of id `id` (a mergeable token or a special token of the encoder), borrowed for the
 * encoder's lifetime, with the length in *len; NULL for an unknown id. */
const unsigned char *tok_token_bytes(const struct tok_encoder *e, uint32_t id, size_t *len);

/* ---- Batches: many documents on several threads ------------------------------------------ */

/* A batch encoder: one encoder per thread, all copies of a template. Documents are handed out to
 * the threads one at a time, so the output equals encoding each document on its own in order,
 * whatever the thread count. */
struct tok_batch;

/* Flags of tok_batch_encode(). */
#define TOK_BATCH_ORDINARY 1u /* encode as tok_encode_ordinary(): special texts are text */

/* Makes a batch encoder of `threads` threads (0: one per online core; capped at
 * TM_MAX_THREADS) whose encoders are tok_encoder_clone()s of `tmpl` as it is now (special
 * tokens and allowed/disallowed sets included). `tmpl` is borrowed for the call only; its
 * vocabulary must outlive the batch. Each thread's encoder holds a 4 MiB cache; the rank map is
 * shared. *out is freed with tok_batch_free(). Errors: as tok_encoder_new(). */
int tok_batch_new(const struct tok_encoder *tmpl, int threads, struct tok_batch **out);
void tok_batch_free(struct tok_batch *b);

/* The number of threads (and encoders) of the batch. */
int tok_batch_threads(const struct tok_batch *b);

/* Encodes document i, texts[i][0..lens[i]), appending its ids to outs[i] (caller-owned,
 * initialized with tok_ids_init(); each keeps its own cap), for i < n, on the batch's threads.
 * `flags`: 0 (tok_encode() with the template's special sets) or TOK_BATCH_ORDINARY. When `errs`
 * is not NULL, errs[i] receives document i's result (TM_OK or an error of tok_encode()); a
 * failed document's outs[i] is truncated back to its length before the call, and the other
 * documents are still encoded. Returns TM_OK when every document was encoded, else the error
 * of the first failed document in input order (its cause is logged by the encoder, without the
 * document's index: use `errs` to find it). The texts and lens are borrowed for the call and
 * read from several threads. One call at a time per batch. */
int tok_batch_encode(struct tok_batch *b, const char *const *texts, const size_t *lens, size_t n,
                     unsigned flags, struct tok_ids *outs, int *errs);

/* tok_batch_new(), tok_batch_encode(), tok_batch_free() in one call, for a single batch. */
int tok_encode_batch(const struct tok_encoder *tmpl, const char *const *texts, const size_t *lens,
                     size_t n, int threads, unsigned flags, struct tok_ids *outs, int *errs);

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

/* ---- Token shards, the corpus reader, and tokenizers as the corpus commands load them ------
 *
 * A workdir's tokens live in WORKDIR/tokens/shard-NNNNNN/, one LMDB environment each, written
 * once by `tokenmill tokenize` (in shard-NNNNNN.partial/, renamed when complete) and never
 * changed after. Inside, three named databases:
 *   meta    "shard" -> record "TMTS" version 1 (struct tok_shard_meta, little-endian)
 *   tokens  split byte, domain byte, big-endian u64 chunk number -> chunk_tokens ids (the last
 *           chunk of a stream may be shorter), little-endian uint16 or uint32 (meta.dtype)
 *   docs    split byte, domain byte, big-endian u64 ordinal -> u64 document id, u64 first
 *           token's position in the stream, u32 token count including the end-of-text token
 * A stream is one (split, domain): its documents in id order, each followed by the end-of-text
 * token. The values of `tokens` and `docs` carry no header of their own: their format is the
 * shard's version. Token values are read in place from the memory map (zero-copy), so the
 * reader requires a little-endian host. */
#define TOK_SHARD_FORMAT 1

enum tok_split { TOK_SPLIT_TRAIN = 0, TOK_SPLIT_VAL = 1, TOK_SPLIT_COUNT };

/* "train", "val" (NULL-terminated). */
extern const char *const tok_split_names[];

/* ---- Tokenizers -------------------------------------------------------------------------- */

#define TOK_MAX_SPECIAL_TOKENS 16

/* A vocabulary with its pattern and special tokens, as a corpus is tokenized with it. */
struct tok_tokenizer {
    struct tok_vocab *vocab; /* owned */
    enum tok_pattern pat;
    size_t nspecial;
    char *special_text[TOK_MAX_SPECIAL_TOKENS]; /* owned */
    uint32_t special_id[TOK_MAX_SPECIAL_TOKENS];
    uint32_t eot;    /* the id of <|endoftext|> */
    uint32_t id_end; /* one past the highest id, special tokens included */
    uint64_t hash;   /* identity: the ranks and bytes of every token, the pattern, the specials */
};

/* Loads `path` (a .tiktoken file). The pattern and special tokens come from, in order: `pat`
 * when >= 0; the sidecar PATH.json that `tokenmill tokenize train-vocab` writes ("pattern",
 * "special_tokens"); the published encoding with this many tokens (r50k, cl100k, o200k).
 * Without any of them the pattern must be given and <|endoftext|> gets the id after the last
 * token. Errors: those of tok_vocab_load(), TM_ERR_FORMAT (a sidecar that does not parse, or
 * without <|endoftext|>), TM_ERR_USAGE (no way to know the pattern). Caller-owned storage:
 * release with tok_tokenizer_release() (also after an error). */
int tok_tokenizer_load(const char *path, int pat, struct tok_tokenizer *t);
void tok_tokenizer_release(struct tok_tokenizer *t);

/* A new encoder for the tokenizer, its special tokens set (none allowed, none disallowed:
 * documents are data, a special token's text in them is encoded as text). The tokenizer must
 * outlive it. */
int tok_tokenizer_encoder(const struct tok_tokenizer *t, struct tok_encoder **out);

/* ---- One shard ---------------------------------------------------------------------------- */

struct tok_shard_meta {
    uint32_t dtype;        /* bytes per token: 2 (uint16) or 4 (uint32) */
    uint32_t chunk_tokens; /* ids per `tokens` value */
    uint64_t tokenizer_hash;
    uint32_t eot, id_end;
    uint32_t val_ppm; /* validation fraction, in millionths */
    uint32_t first_gen, last_gen;
    uint64_t first_doc, next_doc; /* document ids [first_doc, next_doc) were considered */
    uint64_t tokens[TOK_SPLIT_COUNT][TM_DOMAIN_COUNT];
    uint64_t docs[TOK_SPLIT_COUNT][TM_DOMAIN_COUNT];
};

struct tok_shard_writer;

/* Creates the environment in directory `dir` (which must not exist) for tokens of the given
 * dtype, chunk size and tokenizer (fields dtype, chunk_tokens, tokenizer_hash, eot, id_end,
 * val_ppm of `init`; the rest is counted). TM_OK, TM_ERR_IO, TM_ERR_DB. */
int tok_shard_writer_new(const char *dir, const struct tok_shard_meta *init,
                         struct tok_shard_writer **out);

/* Appends document `doc_id`'s ids, then the end-of-text token, to stream (split, domain).
 * Documents must come in increasing id order. TM_OK, TM_ERR_USAGE (an id >= id_end), or a
 * database error. */
int tok_shard_writer_add(struct tok_shard_writer *w, int split, int domain, uint64_t doc_id,
                         const uint32_t *ids, size_t n);

/* Tokens written so far, all streams. */
uint64_t tok_shard_writer_tokens(const struct tok_shard_writer *w);

/* Writes what is buffered and the meta record (with the generation and document ranges
 * given), syncs, closes and removes the lock file. The directory is then complete; the caller
 * renames it into place. TM_OK or a database / I/O error. Frees the writer in every case. */
int tok_shard_writer_finish(struct tok_shard_writer *w, uint32_t first_gen, uint32_t last_gen,
                            uint64_t first_doc, uint64_t next_doc);

/* Abandons a writer (the directory stays for the caller to remove). Accepts NULL. */
void tok_shard_writer_free(struct tok_shard_writer *w);

struct tok_shard;

/* Opens a complete shard read-only (no lock file: published shards never change) and maps
 * it. TM_OK, TM_ERR_NOTFOUND, TM_ERR_FORMAT / TM_ERR_VERSION (logged with the path),
 * TM_ERR_DB. Any number of processes and threads may read one shard at once. */
int tok_shard_open(const char *dir, struct tok_shard **out);
void tok_shard_free(struct tok_shard *s);
const struct tok_shard_meta *tok_shard_get_meta(const struct tok_shard *s);

/* Copies ids [pos, pos + n) of stream (split, domain) into out[0..n). TM_OK or TM_ERR_USAGE
 * (past the stream's end). */
int tok_shard_read(const struct tok_shard *s, int split, int domain, uint64_t pos, size_t n,
                   uint32_t *out);

/* Zero-copy: a pointer into the map at id `pos` of the stream (uint16 or uint32 as
 * meta.dtype, aligned for that type), valid until tok_shard_free(), when [pos, pos + n) lies in
 * one chunk stored aligned (every full chunk of at least half a page is); NULL otherwise. The
 * range must be inside the stream. */
const void *tok_shard_span(const struct tok_shard *s, int split, int domain, uint64_t pos,
                           size_t n);

/* The same without the alignment promise (the bytes are little-endian ids), for copying. */
const unsigned char *tok_shard_bytes(const struct tok_shard *s, int split, int domain, uint64_t pos,
                                     size_t n);

/* The stream's documents in order: fn(ctx, doc_id, pos, ntokens) for each. A non-zero return
 * stops and is returned. */
int tok_shard_foreach_doc(const struct tok_shard *s, int split, int domain,
                          int (*fn)(void *ctx, uint64_t doc_id, uint64_t pos, uint32_t ntokens),
                          void *ctx);

/* Reads the meta record of the shard in `dir` without keeping it open. */
int tok_shard_read_meta(const char *dir, struct tok_shard_meta *meta);

/* ---- The corpus: every shard of a workdir -------------------------------------------------- */

struct tok_corpus;

/* Opens every shard of WORKDIR/tokens. `tokenizer_hash` non-zero: the shards must have been
 * made with that tokenizer (TM_ERR_USAGE otherwise, logged with both hashes). The shards must
 * agree with each other (tokenizer, dtype, chunk size). TM_OK, TM_ERR_NOTFOUND (no shards:
 * "run tokenmill tokenize first"), TM_ERR_FORMAT, TM_ERR_VERSION, TM_ERR_USAGE, TM_ERR_DB.
 * Once open, reads never call into LMDB: they are pointer arithmetic on the maps, safe from
 * any number of threads. */
int tok_corpus_open(const char *workdir, uint64_t tokenizer_hash, struct tok_corpus **out);
void tok_corpus_free(struct tok_corpus *c);

size_t tok_corpus_shards(const struct tok_corpus *c);
/* The i-th shard (i < tok_corpus_shards()), in shard order; borrowed. */
const struct tok_shard *tok_corpus_shard(const struct tok_corpus *c, size_t i);
/* The meta of the first shard: tokenizer, dtype, end-of-text id. */
const struct tok_shard_meta *tok_corpus_meta(const struct tok_corpus *c);

/* Tokens of stream (split, domain) over all shards. */
uint64_t tok_corpus_tokens(const struct tok_corpus *c, int split, int domain);
uint64_t tok_corpus_docs(const struct tok_corpus *c, int split, int domain);

/* Copies ids [pos, pos + n) of the stream (positions run across shards in shard order).
 * TM_OK or TM_ERR_USAGE (past the end). */
int tok_corpus_read(const struct tok_corpus *c, int split, int domain, uint64_t pos, size_t n,
                    uint32_t *out);

/* Zero-copy: *ids points at ids [pos, pos + n) in the map (uint16 or uint32 as meta.dtype,
 * aligned), valid until tok_corpus_free(). TM_OK, or TM_ERR_NOTFOUND when the range crosses a
 * chunk or shard boundary or lies in a chunk stored unaligned (see tok_shard_span(); use
 * tok_corpus_read then), TM_ERR_USAGE past the end. */
int tok_corpus_span(const struct tok_corpus *c, int split, int domain, uint64_t pos, size_t n,
                    const void **ids);

/* A training window: n consecutive ids of split `split`, from a domain drawn with probability
 * weights[d] / sum of the weights of the domains holding at least n tokens (weights NULL: in
 * proportion to their token counts, i.e. every position equally likely), starting at a uniform
 * position of that domain's stream. The choice is a pure function of (seed, step, index):
 * the same arguments give the same window in any process, whatever was read before. Stores
 * the domain in *domain when not NULL. TM_OK, TM_ERR_NOTFOUND (no domain with weight > 0
 * holds n tokens). Thread-safe. */
int tok_corpus_window(const struct tok_corpus *c, int split, const double *weights, uint64_t seed,
                      uint64_t step, uint64_t index, size_t n, uint32_t *out, int *domain);

/* The numbers of the complete shards in directory `tokens_dir` (names "shard-" and digits),
 * ascending, in *nums (caller frees; NULL when none) and their count in *n. TM_OK, or
 * TM_ERR_NOTFOUND when the directory does not exist. */
int tok_corpus_list(const char *tokens_dir, uint64_t **nums, size_t *n);

/* ---- Commands ------------------------------------------------------------------------------ */

extern const struct tm_command tok_encode_command;
extern const struct tm_command tok_decode_command;
extern const struct tm_command tok_tokenize_command;        /* tokenize (tok_corpus_cmd.c) */
extern const struct tm_command tok_export_megatron_command; /* export megatron */
extern const struct tm_command tok_train_vocab_command;     /* tokenize train-vocab */

#endif
