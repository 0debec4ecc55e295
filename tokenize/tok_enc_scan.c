/* tok_enc_scan.c: the pre-tokenization patterns matched by hand while only ASCII decides.
 *
 * Calling pcre2_match() once per pre-token costs more than the rest of encoding a cached word
 * (measured with perf on bench/out/tok_mix.txt). On ASCII the patterns of tok_pattern.c reduce
 * to a few runs of character classes, written out below alternative by alternative, in the
 * order PCRE2 tries them. Every byte the scanner looks at is ASCII or it gives up (returns 0),
 * and it looks at every byte the regex's decision depends on: the byte that ends each run, and
 * the byte after a one-character prefix. Outside ASCII the classes (\p{L}, \p{N}, White_Space,
 * case folding of 's' to U+017F) need Unicode tables, so those pre-tokens go to PCRE2.
 * test_tok_bpe.c compares the scanner with PCRE2 on random strings over adversarial alphabets,
 * non-ASCII bytes included: 200,000 per pattern by default, 5,000,000 per pattern with
 * TOKENMILL_SCAN_ITERS=5000000 when it was written. Rerun that after changing the patterns. */
#include "tok_internal.h"

/* ASCII classes as the patterns see them. White_Space in ASCII is \t \n \v \f \r and space;
 * \p{L} is A-Z a-z (Lu and Ll only); \p{N} is 0-9. Callers pass bytes below 0x80. */
static inline int is_alpha(unsigned c)
{
    return ((c | 0x20u) - 'a') < 26u;
}

static inline int is_upper(unsigned c)
{
    return (c - 'A') < 26u;
}

static inline int is_lower(unsigned c)
{
    return (c - 'a') < 26u;
}

static inline int is_digit(unsigned c)
{
    return (c - '0') < 10u;
}

static inline int is_ws(unsigned c)
{
    return c == ' ' || (c - '\t') < 5u;
}

static inline int is_crlf(unsigned c)
{
    return c == '\r' || c == '\n';
}

/* [^White_Space \p{L} \p{N}] */
static inline int is_other(unsigned c)
{
    return c < 0x80 && !is_alpha(c) && !is_digit(c) && !is_ws(c);
}

#define HIGH(c) ((c) >= 0x80u)

/* Each run helper returns the end of the run from i, or 0 when the byte that ends it is not
 * ASCII (it might belong to the class). A run never ends at 0 since it starts at i >= 0 and
 * callers only use it where a match starting before it is known, so 0 is free as "give up". */
static inline size_t run_alpha(const unsigned char *s, size_t len, size_t i)
{
    while (i < len && is_alpha(s[i]))
        i++;
    return i < len && HIGH(s[i]) ? 0 : i;
}

static inline size_t run_digit(const unsigned char *s, size_t len, size_t i)
{
    while (i < len && is_digit(s[i]))
        i++;
    return i < len && HIGH(s[i]) ? 0 : i;
}

static inline size_t run_other(const unsigned char *s, size_t len, size_t i)
{
    while (i < len && is_other(s[i]))
        i++;
    return i < len && HIGH(s[i]) ? 0 : i;
}

static inline size_t run_ws(const unsigned char *s, size_t len, size_t i)
{
    while (i < len && is_ws(s[i]))
        i++;
    return i < len && HIGH(s[i]) ? 0 : i;
}

/* Up to 3 digits (\p{N}{1,3}); gives up when fewer than 3 are followed by a non-ASCII byte,
 * which could be a digit of another script. */
static inline size_t run_digit3(const unsigned char *s, size_t len, size_t off)
{
    size_t i = off + 1;
    while (i < len && i < off + 3 && is_digit(s[i]))
        i++;
    return i < off + 3 && i < len && HIGH(s[i]) ? 0 : i;
}

/* The end of the last CR or LF in s[off..end), or 0 when there is none. */
static inline size_t last_crlf(const unsigned char *s, size_t off, size_t end)
{
    for (size_t q = end; q > off; q--)
        if (is_crlf(s[q - 1]))
            return q;
    return 0;
}

/* cl100k:
 *   '(?i:[sdmt]|ll|ve|re) | [^\r\n\p{L}\p{N}]?+\p{L}++ | \p{N}{1,3}+ |
 *    ?[^\s\p{L}\p{N}]++[\r\n]*+ | \s++\z | \s*[\r\n] | \s+(?!\S) | \s */
static size_t scan_cl100k(const unsigned char *s, size_t len, size_t off)
{
    unsigned c = s[off];
    if (HIGH(c))
        return 0;
    unsigned c1 = off + 1 < len ? s[off + 1] : 0; /* 0: none, or a NUL, which is "other" */
    int has1 = off + 1 < len;
    if (has1 && HIGH(c1))
        return 0; /* every alternative below may depend on it */
    if (c == '\'' && has1) {
        unsigned l1 = c1 | 0x20u;
        if (l1 == 's' || l1 == 'd' || l1 == 'm' || l1 == 't')
            return off + 2;
        if ((l1 == 'l' || l1 == 'v' || l1 == 'r') && off + 2 < len) {
            unsigned c2 = s[off + 2];
            if (HIGH(c2))
                return 0;
            unsigned l2 = c2 | 0x20u;
            if ((l1 == 'l' && l2 == 'l') || (l1 != 'l' && l2 == 'e'))
                return off + 3;
        }
    }
    if (is_alpha(c))
        return run_alpha(s, len, off + 1);
    /* The possessive prefix takes any non-CR/LF, non-digit byte here; then letters must follow. */
    if (!is_crlf(c) && !is_digit(c) && has1 && is_alpha(c1))
        return run_alpha(s, len, off + 2);
    if (is_digit(c))
        return run_digit3(s, len, off);
    size_t p;
    if (c == ' ' && has1 && is_other(c1))
        p = run_other(s, len, off + 2);
    else if (is_other(c))
        p = run_other(s, len, off + 1);
    else
        goto space;
    if (!p)
        return 0;
    while (p < len && is_crlf(s[p]))
        p++;
    return p;
space:
    p = run_ws(s, len, off + 1);
    if (!p)
        return 0;
    if (p == len)
        return p; /* \s++\z */
    size_t q = last_crlf(s, off, p);
    if (q)
        return q;                          /* \s*[\r\n]: backs off to the last line break */
    return p - off >= 2 ? p - 1 : off + 1; /* \s+(?!\S) leaves one space to the next word; \s */
}

/* The optional contraction after an o200k word: (?i:'s|'t|'re|'ve|'m|'ll|'d)?. Returns the end
 * with or without it, or 0 to give up. */
static inline size_t o200k_contraction(const unsigned char *s, size_t len, size_t p)
{
    if (p + 1 >= len || s[p] != '\'')
        return p;
    unsigned d = s[p + 1];
    if (HIGH(d))
        return 0;
    d |= 0x20u;
    if (d == 's' || d == 't' || d == 'm' || d == 'd')
        return p + 2;
    if ((d == 'r' || d == 'v' || d == 'l') && p + 2 < len) {
        unsigned e = s[p + 2];
        if (HIGH(e))
            return 0;
        e |= 0x20u;
        if ((d == 'l' && e == 'l') || (d != 'l' && e == 'e'))
            return p + 3;
    }
    return p;
}

/* o200k:
 *   [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|...)? |
 *   [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|...)? |
 *   \p{N}{1,3} |  ?[^\s\p{L}\p{N}]+[\r\n/]* | \s*[\r\n]+ | \s+(?!\S) | \s+
 * In ASCII the two word alternatives are one: [prefix] upper* lower* with at least one letter,
 * both runs maximal (the first when a lower-case letter follows the capitals, else the second),
 * then the contraction. */
static size_t scan_o200k(const unsigned char *s, size_t len, size_t off)
{
    unsigned c = s[off];
    if (HIGH(c))
        return 0;
    unsigned c1 = off + 1 < len ? s[off + 1] : 0;
    int has1 = off + 1 < len;
    if (has1 && HIGH(c1))
        return 0;
    size_t w = SIZE_MAX; /* where the letters of a word start */
    if (is_alpha(c))
        w = off;
    else if (!is_crlf(c) && !is_digit(c) && has1 && is_alpha(c1))
        w = off + 1;
    if (w != SIZE_MAX) {
        size_t u = w;
        while (u < len && is_upper(s[u]))
            u++;
        size_t l = u;
        while (l < len && is_lower(s[l]))
            l++;
        if (l < len && HIGH(s[l]))
            return 0;
        return o200k_contraction(s, len, l);
    }
    if (is_digit(c))
        return run_digit3(s, len, off);
    size_t p;
    if (c == ' ' && has1 && is_other(c1))
        p = run_other(s, len, off + 2);
    else if (is_other(c))
        p = run_other(s, len, off + 1);
    else
        goto space;
    if (!p)
        return 0;
    while (p < len && (is_crlf(s[p]) || s[p] == '/'))
        p++;
    return p;
space:
    p = run_ws(s, len, off + 1);
    if (!p)
        return 0;
    size_t q = last_crlf(s, off, p);
    if (q)
        return q; /* \s*[\r\n]+ */
    if (p == len || p - off == 1)
        return p; /* \s+(?!\S) at the end, or \s+ */
    return p - 1; /* \s+(?!\S) */
}

/* r50k: '(?:[sdmt]|ll|ve|re) |  ?\p{L}++ |  ?\p{N}++ |  ?[^\s\p{L}\p{N}]++ | \s++\z |
 *        \s+(?!\S) | \s */
static size_t scan_r50k(const unsigned char *s, size_t len, size_t off)
{
    unsigned c = s[off];
    if (HIGH(c))
        return 0;
    unsigned c1 = off + 1 < len ? s[off + 1] : 0;
    int has1 = off + 1 < len;
    if (has1 && HIGH(c1))
        return 0;
    if (c == '\'' && has1) {
        if (c1 == 's' || c1 == 'd' || c1 == 'm' || c1 == 't')
            return off + 2;
        if ((c1 == 'l' || c1 == 'v' || c1 == 'r') && off + 2 < len) {
            unsigned c2 = s[off + 2];
            if ((c1 == 'l' && c2 == 'l') || (c1 != 'l' && c2 == 'e'))
                return off + 3;
        }
    }
    size_t start = off;
    if (c == ' ' && has1 && !is_ws(c1)) {
        start = off + 1; /* the optional space before a word, number or punctuation */
        c = c1;
    }
    if (is_alpha(c))
        return run_alpha(s, len, start + 1);
    if (is_digit(c))
        return run_digit(s, len, start + 1);
    if (is_other(c))
        return run_other(s, len, start + 1);
    size_t p = run_ws(s, len, off + 1);
    if (!p)
        return 0;
    if (p == len)
        return p;
    return p - off >= 2 ? p - 1 : off + 1;
}

size_t tok_scan_ascii(enum tok_pattern pat, const unsigned char *s, size_t len, size_t off)
{
    switch (pat) {
    case TOK_PAT_CL100K:
        return scan_cl100k(s, len, off);
    case TOK_PAT_O200K:
        return scan_o200k(s, len, off);
    case TOK_PAT_R50K:
        return scan_r50k(s, len, off);
    default:
        return 0;
    }
}
