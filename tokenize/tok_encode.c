/* tok_encode.c: the encoder (special tokens, pre-tokenization, BPE) and the streaming decoder.
 */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "tm_err.h"
#include "tm_log.h"
#include "tm_mem.h"

/* Special tokens of each encoding (tiktoken_ext/openai_public.py, tiktoken 0.14). */
struct builtin_special {
    const char *text;
    uint32_t id;
};

#define TOK_BUILTIN_SPECIALS 8

static const struct builtin_special builtin_specials[TOK_PAT_COUNT][TOK_BUILTIN_SPECIALS] = {
    [TOK_PAT_R50K] = {{"<|endoftext|>", 50256}},
    [TOK_PAT_CL100K] = {{"<|endoftext|>", 100257},
                        {"<|fim_prefix|>", 100258},
                        {"<|fim_middle|>", 100259},
                        {"<|fim_suffix|>", 100260},
                        {"<|endofprompt|>", 100276}},
    [TOK_PAT_O200K] = {{"<|endoftext|>", 199999}, {"<|endofprompt|>", 200018}},
};

int tok_builtin_special(enum tok_pattern pat, size_t i, const char **text, uint32_t *id)
{
    if ((unsigned)pat >= TOK_PAT_COUNT || i >= TOK_BUILTIN_SPECIALS ||
        !builtin_specials[pat][i].text)
        return 0;
    *text = builtin_specials[pat][i].text;
    *id = builtin_specials[pat][i].id;
    return 1;
}

/* One special token of an encoder; `text` is owned by the encoder. */
struct tok_special {
    char *text;
    size_t len;
    uint32_t id;
};

/* The piece cache: most pre-tokens are words that repeat, and looking their ids up costs one
 * cache line where the merge costs a rank lookup per pair. Direct-mapped with replacement, so
 * its size is fixed: 2^16 slots of 64 bytes, 4 MiB per encoder. Misses on the 12.0 M pieces of
 * bench/out/tok_mix.txt with o200k: 703 K with 2^14 slots, 513 K with 2^15, 377 K with 2^16,
 * 288 K with 2^17. A piece is cached when it is 2..TOK_CACHE_KEY bytes and encodes to at most
 * TOK_CACHE_IDS ids, which covers nearly all pieces of text and code (7 K of the 12.0 M are
 * longer); single bytes use byte_rank[], longer pieces are merged every time. */
#define TOK_CACHE_BITS 16
#define TOK_CACHE_KEY  32
#define TOK_CACHE_IDS  7

struct cache_slot {
    uint64_t key[TOK_CACHE_KEY / 8]; /* the piece, zero-padded */
    uint8_t len;                     /* 0: empty */
    uint8_t nids;
    uint32_t ids[TOK_CACHE_IDS];
};

struct tok_encoder {
    const struct tok_vocab *vocab;
    enum tok_pattern pat;
    uint32_t byte_rank[256];     /* rank of each single byte, TOK_NO_RANK when none */
    struct cache_slot *cache;    /* [1 << TOK_CACHE_BITS], 64-byte aligned */
    struct tok_rankmap *ranks;   /* shared with clones */
    struct tok_special *special; /* [nspecial], owned */
    size_t nspecial;
    uint64_t allowed;    /* bit i: special i is split out and encoded as its id */
    uint64_t disallowed; /* bit i: special i in the text is an error */
    struct tok_matcher m;
    struct tok_bpe_scratch scratch;
};

static void free_specials(struct tok_special *sp, size_t n)
{
    if (!sp)
        return;
    for (size_t i = 0; i < n; i++)
        free(sp[i].text);
    free(sp);
}

/* The set of the first n specials. */
static uint64_t all_specials(size_t n)
{
    return n >= 64 ? UINT64_MAX : ((uint64_t)1 << n) - 1;
}

int tok_encoder_set_specials(struct tok_encoder *e, const char *const *texts, const uint32_t *ids,
                             size_t n)
{
    if (n > TOK_MAX_SPECIALS) {
        tm_log_error("tokenize: %zu special tokens, more than the %d an encoder holds", n,
                     TOK_MAX_SPECIALS);
        return TM_ERR_USAGE;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(texts[i]);
        if (len == 0 || len > TOK_VOCAB_MAX_TOKEN_LEN ||
            tok_utf8_invalid_at((const unsigned char *)texts[i], len) < len) {
            tm_log_error("tokenize: special token %zu is empty, over %d bytes or not UTF-8", i,
                         TOK_VOCAB_MAX_TOKEN_LEN);
            return TM_ERR_USAGE;
        }
        size_t blen;
        if (tok_vocab_bytes(e->vocab, ids[i], &blen)) {
            tm_log_error("tokenize: special token %s has id %u, a rank of the vocabulary", texts[i],
                         ids[i]);
            return TM_ERR_USAGE;
        }
        for (size_t k = 0; k < i; k++)
            if (ids[k] == ids[i] || strcmp(texts[k], texts[i]) == 0) {
                tm_log_error("tokenize: special tokens %s (%u) and %s (%u) repeat a text or id",
                             texts[k], ids[k], texts[i], ids[i]);
                return TM_ERR_USAGE;
            }
    }
    struct tok_special *sp = n ? tm_xcalloc(n, sizeof(*sp)) : NULL;
    for (size_t i = 0; i < n; i++) {
        sp[i].len = strlen(texts[i]);
        sp[i].text = tm_xmalloc(sp[i].len + 1);
        memcpy(sp[i].text, texts[i], sp[i].len + 1);
        sp[i].id = ids[i];
    }
    free_specials(e->special, e->nspecial);
    e->special = sp;
    e->nspecial = n;
    e->allowed = 0;
    e->disallowed = all_specials(n);
    return TM_OK;
}

int tok_encoder_special_id(const struct tok_encoder *e, const char *text, uint32_t *id)
{
    for (size_t i = 0; i < e->nspecial; i++)
        if (strcmp(e->special[i].text, text) == 0) {
            *id = e->special[i].id;
            return TM_OK;
        }
    return TM_ERR_NOTFOUND;
}

/* tok_encoder_new() that shares `ranks` (a reference is taken) or builds its own (NULL). */
static int encoder_new(const struct tok_vocab *vocab, enum tok_pattern pat,
                       struct tok_rankmap *ranks, struct tok_encoder **out)
{
    *out = NULL;
    if ((unsigned)pat >= TOK_PAT_COUNT) {
        tm_log_error("tokenize: unknown pattern %d", (int)pat);
        return TM_ERR_USAGE;
    }
    struct tok_encoder *e = tm_xcalloc(1, sizeof(*e));
    e->vocab = vocab;
    e->pat = pat;
    for (int b = 0; b < 256; b++) {
        unsigned char c = (unsigned char)b;
        e->byte_rank[b] = tok_vocab_rank_or_none(vocab, &c, 1);
    }
    if (ranks) {
        e->ranks = tok_rankmap_ref(ranks);
    } else {
        int rc = tok_rankmap_new(vocab, &e->ranks);
        if (rc != TM_OK) {
            tok_encoder_free(e);
            return rc;
        }
    }
    e->cache = aligned_alloc(64, sizeof(struct cache_slot) << TOK_CACHE_BITS);
    if (!e->cache) {
        tm_log_error("tokenize: no memory for the piece cache");
        tok_encoder_free(e);
        return TM_ERR_NOMEM;
    }
    memset(e->cache, 0, sizeof(struct cache_slot) << TOK_CACHE_BITS);
    const char *texts[TOK_BUILTIN_SPECIALS];
    uint32_t ids[TOK_BUILTIN_SPECIALS];
    size_t n = 0;
    /* A vocabulary trained by tokenmill may use these ids as ranks: such a special is left out
     * rather than failing, since the caller replaces the specials anyway. */
    for (size_t i = 0; i < TOK_BUILTIN_SPECIALS && builtin_specials[pat][i].text; i++) {
        size_t blen;
        if (tok_vocab_bytes(vocab, builtin_specials[pat][i].id, &blen))
            continue;
        texts[n] = builtin_specials[pat][i].text;
        ids[n++] = builtin_specials[pat][i].id;
    }
    int rc = tok_encoder_set_specials(e, texts, ids, n);
    if (rc != TM_OK) {
        tok_encoder_free(e);
        return rc;
    }
    if ((rc = tok_matcher_init(&e->m, pat, "tokenize"))) {
        tok_encoder_free(e);
        return rc;
    }
    *out = e;
    return TM_OK;
}

int tok_encoder_new(const struct tok_vocab *vocab, enum tok_pattern pat, struct tok_encoder **out)
{
    return encoder_new(vocab, pat, NULL, out);
}

int tok_encoder_clone(const struct tok_encoder *e, struct tok_encoder **out)
{
    int rc = encoder_new(e->vocab, e->pat, e->ranks, out);
    if (rc != TM_OK)
        return rc;
    struct tok_encoder *c = *out;
    const char *texts[TOK_MAX_SPECIALS];
    uint32_t ids[TOK_MAX_SPECIALS];
    for (size_t i = 0; i < e->nspecial; i++) {
        texts[i] = e->special[i].text;
        ids[i] = e->special[i].id;
    }
    rc = tok_encoder_set_specials(c, texts, ids, e->nspecial);
    if (rc != TM_OK) {
        tok_encoder_free(c);
        *out = NULL;
        return rc;
    }
    c->allowed = e->allowed;
    c->disallowed = e->disallowed;
    return TM_OK;
}

void tok_encoder_free(struct tok_encoder *e)
{
    if (!e)
        return;
    free_specials(e->special, e->nspecial);
    free(e->cache);
    tok_rankmap_unref(e->ranks);
    tok_bpe_scratch_release(&e->scratch);
    tok_matcher_release(&e->m);
    free(e);
}

/* Parses "", "all" or a comma-separated list of special texts into a bit set. */
static int parse_special_set(const struct tok_encoder *e, const char *spec, uint64_t *set)
{
    *set = 0;
    if (!spec || !*spec)
        return TM_OK;
    if (strcmp(spec, "all") == 0) {
        *set = all_specials(e->nspecial);
        return TM_OK;
    }
    const char *p = spec;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        size_t i = 0;
        while (i < e->nspecial &&
               !(e->special[i].len == n && memcmp(e->special[i].text, p, n) == 0))
            i++;
        if (i == e->nspecial) {
            tm_log_error("tokenize: '%.*s' is not a special token of %s", (int)n, p,
                         tok_pattern_names[e->pat]);
            return TM_ERR_USAGE;
        }
        *set |= (uint64_t)1 << i;
        p += n + (comma ? 1 : 0);
    }
    return TM_OK;
}

int tok_encoder_set_special(struct tok_encoder *e, const char *allowed, const char *disallowed)
{
    uint64_t a, d;
    int rc = parse_special_set(e, allowed, &a);
    if (rc == TM_OK)
        rc = parse_special_set(e, disallowed, &d);
    if (rc != TM_OK)
        return rc;
    if (disallowed && strcmp(disallowed, "all") == 0)
        d &= ~a;
    e->allowed = a;
    e->disallowed = d & ~a;
    return TM_OK;
}

const unsigned char *tok_token_bytes(const struct tok_encoder *e, uint32_t id, size_t *len)
{
    const unsigned char *b = tok_vocab_bytes(e->vocab, id, len);
    if (b)
        return b;
    for (size_t i = 0; i < e->nspecial; i++)
        if (e->special[i].id == id) {
            *len = e->special[i].len;
            return (const unsigned char *)e->special[i].text;
        }
    return NULL;
}

/* Returns the offset of the first invalid UTF-8 sequence (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF), or len when the text is valid. */
size_t tok_utf8_invalid_at(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c < 0x80) {
            /* Most text is ASCII: skip it a word at a time. */
            uint64_t w;
            while (len - i >= 8 && (memcpy(&w, s + i, 8), (w & 0x8080808080808080ull) == 0))
                i += 8;
            while (i < len && s[i] < 0x80)
                i++;
            continue;
        }
        size_t n;
        unsigned lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF)
            n = 2;
        else if (c >= 0xE0 && c <= 0xEF) {
            n = 3;
            if (c == 0xE0)
                lo = 0xA0;
            else if (c == 0xED)
                hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 4;
            if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F;
        } else
            return i;
        if (len - i < n || s[i + 1] < lo || s[i + 1] > hi)
            return i;
        for (size_t k = 2; k < n; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
        i += n;
    }
    return len;
}

/* The pre-token that PCRE2 matches at or after `off` in text[0..len): [*start, *end), or
 * *end == 0 when nothing matches (tiktoken's find_iter skips what nothing matches too). The
 * subject ends at `len`, so `\z` and the look-ahead see the end of this stretch, as in
 * tiktoken. `base` is the stretch's offset in the text, for messages. */
static int pcre_piece(struct tok_encoder *e, const unsigned char *text, size_t len, size_t off,
                      size_t base, size_t *start, size_t *end)
{
    int m = pcre2_match(e->m.code, text, len, off, PCRE2_NO_UTF_CHECK, e->m.md, e->m.mctx);
    if (m == PCRE2_ERROR_NOMATCH) {
        *start = *end = 0;
        return TM_OK;
    }
    if (m < 0) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(m, msg, sizeof(msg));
        tm_log_error("tokenize: matching at byte %zu: %s", base + off, (const char *)msg);
        return TM_ERR_INTERNAL;
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(e->m.md);
    if (ov[1] <= ov[0]) {
        tm_log_error("tokenize: empty match at byte %zu", base + ov[0]);
        return TM_ERR_INTERNAL;
    }
    *start = ov[0];
    *end = ov[1];
    return TM_OK;
}

/* The next pre-token at or after `off`: the ASCII scanner's when it can decide, else PCRE2's. */
static inline int next_piece(struct tok_encoder *e, int scan, const unsigned char *text, size_t len,
                             size_t off, size_t base, size_t *start, size_t *end)
{
    if (scan) {
        size_t q = tok_scan_ascii(e->pat, text, len, off);
        if (q) {
            *start = off;
            *end = q;
            return TM_OK;
        }
    }
    return pcre_piece(e, text, len, off, base, start, end);
}

int tok_pretokenize(struct tok_encoder *e, const unsigned char *text, size_t len, int use_scan,
                    tok_piece_fn fn, void *ctx)
{
    size_t off = 0;
    while (off < len) {
        size_t start, end;
        int rc = next_piece(e, use_scan, text, len, off, 0, &start, &end);
        if (rc != TM_OK)
            return rc;
        if (!end)
            return TM_OK;
        rc = fn(ctx, start, end);
        if (rc != TM_OK)
            return rc;
        off = end;
    }
    return TM_OK;
}

/* Loads piece p[0..n) (n <= TOK_CACHE_KEY) zero-padded into k. `limit` is the end of the
 * caller's buffer: when 32 bytes are there to read, whole words are loaded and masked instead
 * of copying n bytes (a measurable share of a cache hit). */
static inline void load_key(const unsigned char *p, size_t n, const unsigned char *limit,
                            uint64_t k[TOK_CACHE_KEY / 8])
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if ((size_t)(limit - p) >= TOK_CACHE_KEY) {
        memcpy(k, p, TOK_CACHE_KEY);
        for (size_t i = 0; i < TOK_CACHE_KEY / 8; i++) {
            size_t have = n > 8 * i ? n - 8 * i : 0;
            if (have < 8)
                k[i] &= have ? ((uint64_t)1 << (8 * have)) - 1 : 0;
        }
        return;
    }
#endif
    (void)limit;
    memset(k, 0, TOK_CACHE_KEY);
    memcpy(k, p, n);
}

/* A multiply-xorshift mix of the key words: cheap, and good enough for a cache index. */
static inline size_t cache_index(const uint64_t k[TOK_CACHE_KEY / 8], size_t n)
{
    uint64_t h = (k[0] * 0x9E3779B97F4A7C15ull) ^ (k[1] * 0xC2B2AE3D27D4EB4Full) ^
                 (k[2] * 0x165667B19E3779F9ull) ^ (k[3] * 0xD6E8FEB86659FD93ull) ^ n;
    h ^= h >> 32;
    h *= 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> (64 - TOK_CACHE_BITS));
}

/* Appends the ids of one pre-token p[0..n); `limit` is the end of the text buffer. */
static int encode_piece(struct tok_encoder *e, const unsigned char *p, size_t n,
                        const unsigned char *limit, struct tok_ids *out)
{
    if (n == 1 && e->byte_rank[p[0]] != TOK_NO_RANK)
        return tok_ids_push(out, e->byte_rank[p[0]]);
    if (n > TOK_CACHE_KEY)
        return tok_bpe_encode_with(e->vocab, e->ranks, p, n, &e->scratch, out);
    uint64_t k[TOK_CACHE_KEY / 8];
    load_key(p, n, limit, k);
    struct cache_slot *slot = &e->cache[cache_index(k, n)];
    if (slot->len == n && slot->key[0] == k[0] && slot->key[1] == k[1] && slot->key[2] == k[2] &&
        slot->key[3] == k[3]) {
        int rc = tok_ids_reserve(out, slot->nids);
        if (rc != TM_OK)
            return rc;
        memcpy(out->v + out->n, slot->ids, slot->nids * sizeof(uint32_t));
        out->n += slot->nids;
        return TM_OK;
    }
    size_t before = out->n;
    int rc = tok_bpe_encode_with(e->vocab, e->ranks, p, n, &e->scratch, out);
    if (rc != TM_OK)
        return rc;
    size_t nids = out->n - before;
    if (nids <= TOK_CACHE_IDS) {
        memcpy(slot->key, k, sizeof(slot->key));
        slot->len = (uint8_t)n;
        slot->nids = (uint8_t)nids;
        memcpy(slot->ids, out->v + before, nids * sizeof(uint32_t));
    }
    return TM_OK;
}

/* Pre-tokenizes text[0..len) and byte-pair encodes each piece. `limit` is the end of the
 * caller's whole text (encode_piece may read up to there). Prefetching the cache slots of the
 * next 16 pieces before encoding them was tried and measured no faster on tok_mix.txt. */
static int encode_stretch(struct tok_encoder *e, const unsigned char *text, size_t len, size_t base,
                          const unsigned char *limit, struct tok_ids *out)
{
    size_t off = 0;
    while (off < len) {
        size_t start, end;
        int rc = next_piece(e, 1, text, len, off, base, &start, &end);
        if (rc != TM_OK)
            return rc;
        if (!end)
            return TM_OK;
        rc = encode_piece(e, text + start, end - start, limit, out);
        if (rc != TM_OK)
            return rc;
        off = end;
    }
    return TM_OK;
}

/* Finds the earliest occurrence at or after `from` of a special in `set`; returns its offset
 * (len when none) and the special's index in *which. `next` caches each special's next
 * occurrence so a text with many specials is still scanned in linear time. */
static size_t next_special(const struct tok_encoder *e, const char *text, size_t len, size_t from,
                           uint64_t set, size_t *next, size_t *which)
{
    size_t best = len;
    for (size_t i = 0; i < e->nspecial; i++) {
        if (!(set & ((uint64_t)1 << i)))
            continue;
        if (next[i] == SIZE_MAX || next[i] < from) {
            const char *p = memmem(text + from, len - from, e->special[i].text, e->special[i].len);
            next[i] = p ? (size_t)(p - text) : len;
        }
        if (next[i] < best) {
            best = next[i];
            *which = i;
        }
    }
    return best;
}

static int encode(struct tok_encoder *e, const char *text, size_t len, uint64_t allowed,
                  uint64_t disallowed, struct tok_ids *out)
{
    size_t bad = tok_utf8_invalid_at((const unsigned char *)text, len);
    if (bad < len) {
        tm_log_error("tokenize: invalid UTF-8 at byte %zu", bad);
        return TM_ERR_FORMAT;
    }
    size_t which = 0;
    if (disallowed) {
        size_t at = len;
        for (size_t i = 0; i < e->nspecial; i++) {
            if (!(disallowed & ((uint64_t)1 << i)))
                continue;
            const char *p = memmem(text, len, e->special[i].text, e->special[i].len);
            if (p && (size_t)(p - text) < at) {
                at = (size_t)(p - text);
                which = i;
            }
        }
        if (at < len) {
            tm_log_error("tokenize: disallowed special token %s at byte %zu",
                         e->special[which].text, at);
            return TM_ERR_FORMAT;
        }
    }
    /* SIZE_MAX: not searched yet, so the first look searches from `start`. */
    size_t next[TOK_MAX_SPECIALS];
    for (size_t i = 0; i < TOK_MAX_SPECIALS; i++)
        next[i] = SIZE_MAX;
    size_t start = 0;
    for (;;) {
        size_t at = len;
        if (allowed)
            at = next_special(e, text, len, start, allowed, next, &which);
        int rc = encode_stretch(e, (const unsigned char *)text + start, at - start, start,
                                (const unsigned char *)text + len, out);
        if (rc != TM_OK)
            return rc;
        if (at == len)
            return TM_OK;
        rc = tok_ids_push(out, e->special[which].id);
        if (rc != TM_OK)
            return rc;
        start = at + e->special[which].len;
    }
}

int tok_encode(struct tok_encoder *e, const char *text, size_t len, struct tok_ids *out)
{
    return encode(e, text, len, e->allowed, e->disallowed, out);
}

int tok_encode_ordinary(struct tok_encoder *e, const char *text, size_t len, struct tok_ids *out)
{
    return encode(e, text, len, 0, 0, out);
}

/* ---- Streaming decoder ------------------------------------------------------------------- */

void tok_decoder_init(struct tok_decoder *d, const struct tok_encoder *enc, tok_emit_fn emit,
                      void *ctx)
{
    memset(d, 0, sizeof(*d));
    d->enc = enc;
    d->emit = emit;
    d->ctx = ctx;
}

/* Length of the UTF-8 sequence a lead byte starts, or 0 for a byte that starts none. */
static size_t utf8_seq_len(unsigned char c)
{
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return 2;
    if (c >= 0xE0 && c <= 0xEF)
        return 3;
    if (c >= 0xF0 && c <= 0xF4)
        return 4;
    return 0;
}

/* How many bytes at the end of b[0..n) are the start of a sequence that more bytes could
 * still complete (0..3). */
static size_t incomplete_tail(const unsigned char *b, size_t n)
{
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        unsigned char c = b[n - k];
        if ((c & 0xC0) == 0x80)
            continue; /* continuation byte: look further back for the lead */
        size_t need = utf8_seq_len(c);
        return need > k ? k : 0;
    }
    return 0;
}

int tok_decoder_push(struct tok_decoder *d, uint32_t id)
{
    size_t len;
    const unsigned char *b = tok_token_bytes(d->enc, id, &len);
    if (!b) {
        tm_log_error("tokenize: unknown token id %u", id);
        return TM_ERR_NOTFOUND;
    }
    int rc;
    /* Feed the held bytes one byte of the token at a time until they stop being the start of
     * an incomplete sequence; then the rest of the token is handled on its own. */
    while (d->nheld && len) {
        d->held[d->nheld++] = *b++;
        len--;
        size_t tail = incomplete_tail(d->held, d->nheld);
        if (tail == d->nheld)
            continue;
        rc = d->emit(d->ctx, d->held, d->nheld - tail);
        if (rc)
            return rc;
        memmove(d->held, d->held + d->nheld - tail, tail);
        d->nheld = tail;
    }
    if (!len)
        return TM_OK;
    size_t tail = incomplete_tail(b, len);
    if (len > tail) {
        rc = d->emit(d->ctx, b, len - tail);
        if (rc)
            return rc;
    }
    memcpy(d->held, b + len - tail, tail);
    d->nheld = tail;
    return TM_OK;
}

int tok_decoder_finish(struct tok_decoder *d)
{
    int rc = d->nheld ? d->emit(d->ctx, d->held, d->nheld) : TM_OK;
    d->nheld = 0;
    return rc;
}
