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
 * tiktoken matches each stretch between special tokens separately, and so do we (the subject
 * handed to PCRE2 ends at the next special token), so `\z` and the look-ahead see the same
 * end. */
#include <string.h>

#include "tok_internal.h"

/* White_Space: 0009..000D, 0020, 0085, 00A0, 1680, 2000..200A, 2028, 2029, 202F, 205F, 3000. */
#define WS                                                                                         \
    "\\t\\n\\x{0B}\\f\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"       \
    "\\x{202F}\\x{205F}\\x{3000}"
#define S    "[" WS "]"
#define NOTS "[^" WS "]"

static const char *const pattern_src[TOK_PAT_COUNT] = {
    [TOK_PAT_R50K] = "'(?:[sdmt]|ll|ve|re)| ?\\p{L}++| ?\\p{N}++| ?[^" WS "\\p{L}\\p{N}]++|" S
                     "++\\z|" S "+(?!" NOTS ")|" S,
    [TOK_PAT_CL100K] =
        "'(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}++|\\p{N}{1,3}+| "
        "?[^" WS "\\p{L}\\p{N}]++[\\r\\n]*+|" S "++\\z|" S "*[\\r\\n]|" S "+(?!" NOTS ")|" S,
    [TOK_PAT_O200K] =
        "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
        "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*"
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
        "|\\p{N}{1,3}"
        "| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n/]*"
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
