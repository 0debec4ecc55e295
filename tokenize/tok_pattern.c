/* tok_pattern.c: the pre-tokenization patterns and special tokens of each encoding.
 *
 * The patterns are tiktoken's (tiktoken_ext/openai_public.py, tiktoken 0.14), rewritten for
 * PCRE2 in two places where PCRE2 and tiktoken's Rust regex engine disagree:
 *   - `\s`: under PCRE2_UCP it also matches U+180E (MONGOLIAN VOWEL SEPARATOR, a format
 *     character since Unicode 6.3); Rust's `\s` is exactly the White_Space property. Every
 *     `\s` is spelled as that property's 25 code points (PropList.txt, stable since 6.3), and
 *     `\S` as its complement.
 *   - `$`: Rust's `$` (no multi-line flag) is the end of the haystack; PCRE2's also matches
 *     before a final newline. Spelled `\z`.
 *   - Unicode versions: PCRE2 10.42's property tables are Unicode 14.0, tiktoken's are 16.0,
 *     so letters, digits and marks assigned since (Kawi, Garay, CJK Extensions H and I, ...)
 *     would fall in PCRE2's "other" class. Every property class is written with the ranges that
 *     tok_unicode_ranges.h (generated) adds to it, negated classes included (no code point has
 *     to leave a class: the generator checks).
 * tiktoken matches each stretch between special tokens separately, and so do we (the subject
 * handed to PCRE2 ends at the next special token), so `\z` and the look-ahead see the same
 * end. */
#include <string.h>

#include "tok_internal.h"
#include "tm_err.h"
#include "tm_log.h"
#include "tok_unicode_ranges.h"

/* White_Space: 0009..000D, 0020, 0085, 00A0, 1680, 2000..200A, 2028, 2029, 202F, 205F, 3000. */
#define WS                                                                                         \
    "\\t\\n\\x{0B}\\f\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"       \
    "\\x{202F}\\x{205F}\\x{3000}"
#define S    "[" WS "]"
#define NOTS "[^" WS "]"

/* The property classes as tiktoken's Unicode 16 tables have them: PCRE2's property, or one of
 * the code points tok_unicode_ranges.h adds to it. The ranges stay in a class of their own,
 * tried second, because PCRE2's JIT rejects a character outside a ranges-only class with one
 * comparison against its bounds, while a class mixing properties and ranges compares every
 * character that fails it against every range. Merged, the ranges doubled the instructions
 * PCRE2 spends matching o200k on English text; kept apart, they add at most a sixth (callgrind,
 * the three patterns over English and over mixed-script text). */
#define LETTER "(?:\\p{L}|[" TOK_UNI_NEW_L "])"
#define NUMBER "(?:\\p{N}|[" TOK_UNI_NEW_N "])"
/* One character that is neither a letter nor a number, nor white space (OTHER) or \r and \n
 * (OTHER_NL). The look-behind keeps the new letters and numbers out. */
#define NOT_NEW_LN "(?<![" TOK_UNI_NEW_L TOK_UNI_NEW_N "])"
#define OTHER      "(?:[^" WS "\\p{L}\\p{N}]" NOT_NEW_LN ")"
#define OTHER_NL   "(?:[^\\r\\n\\p{L}\\p{N}]" NOT_NEW_LN ")"
/* o200k: a word is upper/title/modifier/other letters or marks, then lower/modifier/other ones. */
#define UPPER "(?:[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]|[" TOK_UNI_NEW_O200K_UPPER "])"
#define LOWER "(?:[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]|[" TOK_UNI_NEW_O200K_LOWER "])"

static const char *const pattern_src[TOK_PAT_COUNT] = {
    [TOK_PAT_R50K] = "'(?:[sdmt]|ll|ve|re)| ?" LETTER "++| ?" NUMBER "++| ?" OTHER "++|" S
                     "++\\z|" S "+(?!" NOTS ")|" S,
    [TOK_PAT_CL100K] = "'(?i:[sdmt]|ll|ve|re)|" OTHER_NL "?+" LETTER "++|" NUMBER "{1,3}+| ?" OTHER
                       "++[\\r\\n]*+|" S "++\\z|" S "*[\\r\\n]|" S "+(?!" NOTS ")|" S,
    [TOK_PAT_O200K] = "" OTHER_NL "?" UPPER "*" LOWER "+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
                      "|" OTHER_NL "?" UPPER "+" LOWER "*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
                      "|" NUMBER "{1,3}"
                      "| ?" OTHER "+[\\r\\n/]*"
                      "|" S "*[\\r\\n]+"
                      "|" S "+(?!" NOTS ")"
                      "|" S "+",
};

const char *const tok_pattern_names[] = {"r50k", "cl100k", "o200k", NULL};

const char *tok_pattern_source(enum tok_pattern pat)
{
    return (unsigned)pat < TOK_PAT_COUNT ? pattern_src[pat] : NULL;
}

int tok_pattern_guess(size_t ntokens)
{
    /* Line counts of the published files (their SHA-256 in ../shared/vocab/README.md). */
    static const size_t counts[TOK_PAT_COUNT] = {50256, 100256, 199998};
    for (int i = 0; i < TOK_PAT_COUNT; i++)
        if (counts[i] == ntokens)
            return i;
    return -1;
}

#define TOK_JIT_STACK_START (32 * 1024)
#define TOK_JIT_STACK_MAX   (1024 * 1024)

int tok_matcher_init(struct tok_matcher *m, enum tok_pattern pat, const char *who)
{
    memset(m, 0, sizeof(*m));
    const char *src = tok_pattern_source(pat);
    if (!src) {
        tm_log_error("%s: unknown pattern %d", who, (int)pat);
        return TM_ERR_USAGE;
    }
    int err;
    PCRE2_SIZE erroff;
    m->code = pcre2_compile((PCRE2_SPTR)src, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err,
                            &erroff, NULL);
    if (!m->code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof(msg));
        tm_log_error("%s: pattern %s: %s at offset %zu", who, tok_pattern_names[pat],
                     (const char *)msg, (size_t)erroff);
        return TM_ERR_INTERNAL;
    }
    /* Without the JIT PCRE2 still matches correctly, only slower: a warning, not an error. */
    if (pcre2_jit_compile(m->code, PCRE2_JIT_COMPLETE) != 0)
        tm_log_warn("%s: PCRE2 JIT unavailable; matching with the interpreter", who);
    m->md = pcre2_match_data_create_from_pattern(m->code, NULL);
    m->mctx = pcre2_match_context_create(NULL);
    m->jit_stack = pcre2_jit_stack_create(TOK_JIT_STACK_START, TOK_JIT_STACK_MAX, NULL);
    if (!m->md || !m->mctx || !m->jit_stack) {
        tok_matcher_release(m);
        return TM_ERR_NOMEM;
    }
    pcre2_set_match_limit(m->mctx, UINT32_MAX);
    pcre2_jit_stack_assign(m->mctx, NULL, m->jit_stack);
    return TM_OK;
}

void tok_matcher_release(struct tok_matcher *m)
{
    pcre2_jit_stack_free(m->jit_stack);
    pcre2_match_context_free(m->mctx);
    pcre2_match_data_free(m->md);
    pcre2_code_free(m->code);
    memset(m, 0, sizeof(*m));
}
