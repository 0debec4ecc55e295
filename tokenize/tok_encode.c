/* tok_encode.c: the encoder (special tokens, pre-tokenization, BPE) and the streaming decoder.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "tm_err.h"
#include "tm_log.h"
#include "tm_mem.h"

/* Special tokens of each encoding (tiktoken_ext/openai_public.py, tiktoken 0.14). */
struct tok_special {
    const char *text;
    uint32_t id;
};

#define TOK_MAX_SPECIALS 8

static const struct tok_special specials[TOK_PAT_COUNT][TOK_MAX_SPECIALS] = {
    [TOK_PAT_R50K] = {{"<|endoftext|>", 50256}},
    [TOK_PAT_CL100K] = {{"<|endoftext|>", 100257},
                        {"<|fim_prefix|>", 100258},
                        {"<|fim_middle|>", 100259},
                        {"<|fim_suffix|>", 100260},
                        {"<|endofprompt|>", 100276}},
    [TOK_PAT_O200K] = {{"<|endoftext|>", 199999}, {"<|endofprompt|>", 200018}},
};

/* PCRE2's default match limit (10 million) is reached by one long run of whitespace, which
 * `\s+(?!\S)` and `\s*[\r\n]` scan and back off once per match. The patterns do linear work
 * per match, so the limit guards nothing here; it is lifted. The JIT stack is only used for
 * nested backtracking, which these patterns do not grow with input; 1 MiB is ample. */
#define TOK_JIT_STACK_START (32 * 1024)
#define TOK_JIT_STACK_MAX   (1024 * 1024)

struct tok_encoder {
    const struct tok_vocab *vocab;
    enum tok_pattern pat;
    const struct tok_special *special; /* specials[pat] */
    size_t nspecial;
    unsigned allowed;    /* bit i: special i is split out and encoded as its id */
    unsigned disallowed; /* bit i: special i in the text is an error */
    pcre2_code *code;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit_stack;
    struct tok_bpe_scratch scratch;
};

int tok_encoder_new(const struct tok_vocab *vocab, enum tok_pattern pat, struct tok_encoder **out)
{
    *out = NULL;
    if ((unsigned)pat >= TOK_PAT_COUNT) {
        tm_log_error("tokenize: unknown pattern %d", (int)pat);
        return TM_ERR_USAGE;
    }
    struct tok_encoder *e = tm_xcalloc(1, sizeof(*e));
    e->vocab = vocab;
    e->pat = pat;
    e->special = specials[pat];
    while (e->nspecial < TOK_MAX_SPECIALS && e->special[e->nspecial].text)
        e->nspecial++;
    e->disallowed = (1u << e->nspecial) - 1;
    int err;
    PCRE2_SIZE erroff;
    e->code = pcre2_compile((PCRE2_SPTR)tok_pattern_source(pat), PCRE2_ZERO_TERMINATED,
                            PCRE2_UTF | PCRE2_UCP, &err, &erroff, NULL);
    if (!e->code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof(msg));
        tm_log_error("tokenize: pattern %s: %s at offset %zu", tok_pattern_names[pat],
                     (const char *)msg, (size_t)erroff);
        tok_encoder_free(e);
        return TM_ERR_INTERNAL;
    }
    /* Without the JIT PCRE2 still matches correctly, only slower: a warning, not an error. */
    if (pcre2_jit_compile(e->code, PCRE2_JIT_COMPLETE) != 0)
        tm_log_warn("tokenize: PCRE2 JIT unavailable; matching with the interpreter");
    e->md = pcre2_match_data_create_from_pattern(e->code, NULL);
    e->mctx = pcre2_match_context_create(NULL);
    e->jit_stack = pcre2_jit_stack_create(TOK_JIT_STACK_START, TOK_JIT_STACK_MAX, NULL);
    if (!e->md || !e->mctx || !e->jit_stack) {
        tok_encoder_free(e);
        return TM_ERR_NOMEM;
    }
    pcre2_set_match_limit(e->mctx, UINT32_MAX);
    pcre2_jit_stack_assign(e->mctx, NULL, e->jit_stack);
    *out = e;
    return TM_OK;
}

void tok_encoder_free(struct tok_encoder *e)
{
    if (!e)
        return;
    tok_bpe_scratch_release(&e->scratch);
    pcre2_jit_stack_free(e->jit_stack);
    pcre2_match_context_free(e->mctx);
    pcre2_match_data_free(e->md);
    pcre2_code_free(e->code);
    free(e);
}

/* Parses "", "all" or a comma-separated list of special texts into a bit set. */
static int parse_special_set(const struct tok_encoder *e, const char *spec, unsigned *set)
{
    *set = 0;
    if (!spec || !*spec)
        return TM_OK;
    if (strcmp(spec, "all") == 0) {
        *set = (1u << e->nspecial) - 1;
        return TM_OK;
    }
    const char *p = spec;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        size_t i = 0;
        while (i < e->nspecial &&
               !(strlen(e->special[i].text) == n && memcmp(e->special[i].text, p, n) == 0))
            i++;
        if (i == e->nspecial) {
            tm_log_error("tokenize: '%.*s' is not a special token of %s", (int)n, p,
                         tok_pattern_names[e->pat]);
            return TM_ERR_USAGE;
        }
        *set |= 1u << i;
        p += n + (comma ? 1 : 0);
    }
    return TM_OK;
}

int tok_encoder_set_special(struct tok_encoder *e, const char *allowed, const char *disallowed)
{
    unsigned a, d;
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
            *len = strlen(e->special[i].text);
            return (const unsigned char *)e->special[i].text;
        }
    return NULL;
}

/* Returns the offset of the first invalid UTF-8 sequence (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF), or len when the text is valid. */
static size_t utf8_invalid_at(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c < 0x80) {
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

/* Pre-tokenizes text[0..len) and byte-pair encodes each piece. The subject ends at `len`, so
 * `\z` and the look-ahead see the end of this stretch, as in tiktoken. */
static int encode_stretch(struct tok_encoder *e, const unsigned char *text, size_t len, size_t base,
                          struct tok_ids *out)
{
    size_t off = 0;
    while (off < len) {
        int m = pcre2_match(e->code, text, len, off, PCRE2_NO_UTF_CHECK, e->md, e->mctx);
        if (m == PCRE2_ERROR_NOMATCH)
            return TM_OK; /* tiktoken's find_iter also skips what nothing matches */
        if (m < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(m, msg, sizeof(msg));
            tm_log_error("tokenize: matching at byte %zu: %s", base + off, (const char *)msg);
            return TM_ERR_INTERNAL;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(e->md);
        if (ov[1] <= ov[0]) {
            tm_log_error("tokenize: empty match at byte %zu", base + ov[0]);
            return TM_ERR_INTERNAL;
        }
        int rc = tok_bpe_encode_with(e->vocab, text + ov[0], ov[1] - ov[0], &e->scratch, out);
        if (rc != TM_OK)
            return rc;
        off = ov[1];
    }
    return TM_OK;
}

/* Finds the earliest occurrence at or after `from` of a special in `set`; returns its offset
 * (len when none) and the special's index in *which. `next` caches each special's next
 * occurrence so a text with many specials is still scanned in linear time. */
static size_t next_special(const struct tok_encoder *e, const char *text, size_t len, size_t from,
                           unsigned set, size_t *next, size_t *which)
{
    size_t best = len;
    for (size_t i = 0; i < e->nspecial; i++) {
        if (!(set & (1u << i)))
            continue;
        if (next[i] == SIZE_MAX || next[i] < from) {
            const char *p =
                memmem(text + from, len - from, e->special[i].text, strlen(e->special[i].text));
            next[i] = p ? (size_t)(p - text) : len;
        }
        if (next[i] < best) {
            best = next[i];
            *which = i;
        }
    }
    return best;
}

static int encode(struct tok_encoder *e, const char *text, size_t len, unsigned allowed,
                  unsigned disallowed, struct tok_ids *out)
{
    size_t bad = utf8_invalid_at((const unsigned char *)text, len);
    if (bad < len) {
        tm_log_error("tokenize: invalid UTF-8 at byte %zu", bad);
        return TM_ERR_FORMAT;
    }
    size_t which = 0;
    if (disallowed) {
        size_t at = len;
        for (size_t i = 0; i < e->nspecial; i++) {
            if (!(disallowed & (1u << i)))
                continue;
            const char *p = memmem(text, len, e->special[i].text, strlen(e->special[i].text));
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
        int rc = encode_stretch(e, (const unsigned char *)text + start, at - start, start, out);
        if (rc != TM_OK)
            return rc;
        if (at == len)
            return TM_OK;
        rc = tok_ids_push(out, e->special[which].id);
        if (rc != TM_OK)
            return rc;
        start = at + strlen(e->special[which].text);
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
